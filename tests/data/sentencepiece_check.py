"""Independent check of vcycle's SentencePiece token files, with Debian's python3-sentencepiece.

usage: sentencepiece_check.py TOKENIZER_MODEL VALID_BIN SOURCE_TEXT N EXPECTED_DECODE_FILE

Decodes the first N ids of VALID_BIN with Python's SentencePiece, checks that the text is a verbatim
piece of SOURCE_TEXT (the first validation sequence comes back exactly) and equal to vcycle's own
decoding (EXPECTED_DECODE_FILE), and that re-encoding the whole decoded validation text gives ids
that decode back to it.
"""
import sys

import numpy as np
import sentencepiece as spm

model, valid_bin, source, n, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sp = spm.SentencePieceProcessor(model_file=model)
ids = np.fromfile(valid_bin, dtype="<u2").astype(int).tolist()
text = open(source, encoding="utf-8").read()
first = sp.decode(ids[:n])
ours = open(expected, encoding="utf-8").read()
assert first == ours, f"python decodes {first!r}, vcycle {ours!r}"
assert len(first) > n, f"{n} subword ids decode to only {len(first)} characters"
assert first in text, f"the first validation sequence {first!r} is not in the source text"
whole = sp.decode(ids)
assert sp.decode(sp.encode(whole)) == whole, "the validation text does not round-trip"
print(f"ok: {n} ids -> {len(first)} characters found in the source; {len(ids)} validation ids round-trip")
