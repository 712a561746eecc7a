// The C interface of vcycle's SentencePiece plugin (libvcycle_sentencepiece.so, built from
// sentencepiece_plugin.cpp), which src/data/sentencepiece_tokenizer.cpp loads at run time.
//
// Why a plugin and not a plain link: Debian's libsentencepiece carries its own copy of protobuf-lite
// 3.14 and exports its symbols; linked into a process that also holds LibTorch's libprotobuf 3.21,
// one copy interposes on the other and the process dies in a static initialiser before main. Loaded
// with dlopen(RTLD_LOCAL | RTLD_DEEPBIND), the plugin and libsentencepiece resolve protobuf inside
// their own scope and LibTorch never sees their copy. Only C types cross the boundary; results come
// back through a sink callback, so no allocation made on one side is freed on the other.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

// Receives one result: bytes (a model, a text) or int32 ids (len counts elements).
typedef void (*vcycle_spm_sink)(void* context, const void* data, size_t len);

// Every call returns 0 on success; otherwise it writes a NUL-terminated message into err[0..err_cap).
typedef int (*vcycle_spm_train_fn)(const char* text, size_t text_len, const char* const* option_keys,
                                   const char* const* option_values, size_t n_options, vcycle_spm_sink model_sink,
                                   void* context, char* err, size_t err_cap);
typedef int (*vcycle_spm_load_fn)(const char* model, size_t model_len, void** processor, char* err, size_t err_cap);
typedef void (*vcycle_spm_free_fn)(void* processor);
typedef int64_t (*vcycle_spm_vocab_fn)(const void* processor);
typedef int (*vcycle_spm_encode_fn)(const void* processor, const char* text, size_t text_len, vcycle_spm_sink ids_sink,
                                    void* context, char* err, size_t err_cap);
typedef int (*vcycle_spm_decode_fn)(const void* processor, const int32_t* ids, size_t n_ids, vcycle_spm_sink text_sink,
                                    void* context, char* err, size_t err_cap);

}  // extern "C"

// The exported names, one per function type above.
#define VCYCLE_SPM_TRAIN "vcycle_spm_train"
#define VCYCLE_SPM_LOAD "vcycle_spm_load"
#define VCYCLE_SPM_FREE "vcycle_spm_free"
#define VCYCLE_SPM_VOCAB "vcycle_spm_vocab"
#define VCYCLE_SPM_ENCODE "vcycle_spm_encode"
#define VCYCLE_SPM_DECODE "vcycle_spm_decode"
