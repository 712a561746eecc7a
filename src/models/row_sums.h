// Row sums for the fused CPU attention (fused_attention.cpp): kLanes partial
// sums, so that the loops vectorise without reassociating (the compiler may not reorder a single
// running sum), added up in a fixed order. Always inlined: fused_attention.cpp compiles its callers
// once per target (target_clones), and the helpers must be compiled for each target with them.
#pragma once

#include <cstdint>

// A namespace of their own, so that the header brings no kLanes into a file that has one.
namespace vcycle::row_sums {

constexpr int kLanes = 16;

// l[0] + l[1] + … + l[kLanes − 1], in that order.
template <class T>
inline __attribute__((always_inline)) T lanes_total(const T* l) {
  T s = 0;
  for (int i = 0; i < kLanes; ++i) s += l[i];
  return s;
}

// Σ x[0 .. n)
template <class T>
inline __attribute__((always_inline)) T sum(const T* __restrict x, int64_t n) {
  T l[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) l[i] += x[j + i];
  T s = lanes_total(l);
  for (; j < n; ++j) s += x[j];
  return s;
}

}  // namespace vcycle::row_sums
