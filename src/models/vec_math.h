// Shared by the fused CPU kernels (fused_attention.cpp, fused_gelu.cpp): how a function is compiled
// once per x86-64 level and picked at load time, and an exp in plain arithmetic that vectorises.
#pragma once

#include <cstdint>
#include <cstring>

// The hot functions are compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline,
// chosen when the program loads, so the binary runs on any x86-64 CPU and uses the wide units
// where they exist.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(VCYCLE_NO_TARGET_CLONES)
#define VCYCLE_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VCYCLE_TARGET_CLONES
#endif
// Helpers are inlined into the cloned callers, so that they are compiled for each target too.
#define VCYCLE_INLINE inline __attribute__((always_inline))

namespace vcycle::vec_math {

// e^y for −87 ≤ y ≤ 0 (the caller clamps): 2^n · e^r with n = round(y·log2 e) and Cephes' degree-6
// polynomial for e^r, about 1 ulp. Plain arithmetic, so a loop of it vectorises, which std::exp's
// library call prevents.
VCYCLE_INLINE float exp_nonpositive(float y) {
  const int32_t ni = static_cast<int32_t>(y * 1.44269504088896341f - 0.5f);  // round(), as y ≤ 0
  const float nf = static_cast<float>(ni);
  const float r = (y - nf * 0.693359375f) - nf * -2.12194440e-4f;  // y − n·ln 2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// bf16 is the top half of a float: widening is a shift; narrowing rounds to nearest, ties to even,
// as LibTorch's c10::BFloat16 does, with NaN kept a (quiet) NaN. Plain arithmetic, so loops of
// them vectorise.
VCYCLE_INLINE float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
VCYCLE_INLINE uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t rounded = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  return f != f ? uint16_t{0x7FC0} : rounded;
}

}  // namespace vcycle::vec_math
