// Batched categorical distributions over rows of float32 logits: sampling,
// log-probabilities and entropies, as a world model's imagined rollouts need
// them on the CPU path.
//
// Each of `rows` rows holds `k` logits (row-major, contiguous). The
// distribution of a row is
//
//   p = (1 - unimix) * softmax(logits) + unimix / k,     unimix in [0, 1)
//
// (unimix = 0 is the plain softmax; DreamerV3 mixes in 1% uniform).
//
// Row r's draw is CounterRng(seed, stream, 0, /*counter=*/r).uniform(), so the
// result does not depend on the thread count or on how rows are split. With
// probability unimix the draw is uniform over the k outcomes, otherwise it is
// inverse-CDF over the softmax weights with prefix sums in double; it never
// lands on an outcome of probability zero (a -inf logit with unimix = 0).
//
// Rows are processed in tiles of up to kTileElems logits (L1-sized scratch on
// the stack), stored transposed, so that every per-row step (max, prefix sums,
// the draw, sums for the entropy) is a loop across rows that the compiler
// vectorises whatever k is, and exp / log are branch-free polynomials over the
// whole tile (libm's expf is not vectorised without -ffast-math). The kernels
// are compiled for the baseline ISA and, on x86-64, also for AVX2 and AVX-512,
// picked at run time. Nothing is allocated unless a tile outgrows the stack
// (k > 64; then once per task).
//
// The kernels trust their input (validate at the boundary): k >= 1, finite or
// -inf logits (no NaN, no +inf), no row of only -inf logits, 0 <= unimix < 1,
// 0 <= index < k.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <cpuid.h>
#endif

#include "genmarl/core/rng.hpp"
#include "genmarl/core/thread_pool.hpp"

namespace genmarl::sampling {

// Rows per thread-pool task: tens of microseconds of work at small k, so
// scheduling costs stay small.
inline constexpr std::int64_t kRowsPerTask = 2048;
// Logits per tile: the scratch (two float and one double array of this size, 16 KiB) stays
// in L1.
inline constexpr std::int64_t kTileElems = 1024;

namespace detail {

// The building blocks are forced inline into each per-ISA copy of the kernels (see below), so
// each copy is compiled for its own instruction set.
#if defined(__GNUC__) || defined(__clang__)
#define GENMARL_SAMPLING_INLINE inline __attribute__((always_inline))
#else
#define GENMARL_SAMPLING_INLINE inline
#endif

inline constexpr float kLog2e = 1.44269504088896341f;
// ln 2 split so that n * kLn2Hi is exact for |n| < 2^11 (Cody-Waite reduction).
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
// Adding 1.5 * 2^23 rounds a float of magnitude < 2^22 to an integer, which then sits in the
// low mantissa bits.
inline constexpr float kRoundMagic = 12582912.0f;
// exp(x) is flushed to zero below this (e^-87 = 1.6e-38, the bottom of the
// normal floats); such a weight is below float resolution next to the row's
// maximum, whose weight is 1.
inline constexpr float kExpCutoff = -87.0f;
inline constexpr float kSqrt2 = 1.41421356237309505f;
inline constexpr float kMinNormal = std::numeric_limits<float>::min();
inline constexpr float kTwo23 = 8388608.0f;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(x) for x <= 0, including -inf (-> 0). Branch-free, ~1 ulp: x = n ln2 + r
// with |r| <= ln2 / 2, exp(r) by its Taylor series to degree 7 (the first term
// left out, r^8 / 8!, is below 2^-27), times 2^n assembled in the exponent bits.
GENMARL_SAMPLING_INLINE float exp_nonpositive(float x) noexcept {
  // Branch-free by construction: the cut-off is a bit mask (for x <= 0 a larger magnitude is
  // a larger unsigned pattern), not a float comparison and select, which GCC turns into a
  // branch around trapping arithmetic and then cannot vectorise.
  const std::uint32_t x_bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t flushed = -static_cast<std::uint32_t>(x_bits > std::bit_cast<std::uint32_t>(kExpCutoff));
  const float xc = std::bit_cast<float>((x_bits & ~flushed) | (std::bit_cast<std::uint32_t>(kExpCutoff) & flushed));
  // n = round(xc / ln 2) sits in the low mantissa bits of `rounded` (no float-to-int conversion,
  // which would be undefined for a NaN from a caller that broke the contract).
  const float rounded = xc * kLog2e + kRoundMagic;
  const float n = rounded - kRoundMagic;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n with n >= -126 (a normal float): the biased exponent n + 127 shifted into place.
  const std::uint32_t biased = std::bit_cast<std::uint32_t>(rounded) - std::bit_cast<std::uint32_t>(kRoundMagic) + 127u;
  const float y = p * std::bit_cast<float>(biased << 23);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(y) & ~flushed);
}

// log(x) for finite x >= 0 (0 -> -inf, subnormals handled). Branch-free, ~1 ulp:
// x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(t), t = (m-1)/(m+1),
// |t| <= 0.172, by its series to t^9 (the first term left out is below 2^-29 t).
GENMARL_SAMPLING_INLINE float log_nonnegative(float x) noexcept {
  // Branch-free as exp_nonpositive: masks on the bits instead of float comparisons.
  const std::uint32_t x_bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t tiny = -static_cast<std::uint32_t>(x_bits < std::bit_cast<std::uint32_t>(kMinNormal));
  const std::uint32_t bits = (std::bit_cast<std::uint32_t>(x * kTwo23) & tiny) | (x_bits & ~tiny);
  const std::uint32_t mantissa = bits & 0x007FFFFFu;
  const std::uint32_t high = -static_cast<std::uint32_t>(mantissa > (std::bit_cast<std::uint32_t>(kSqrt2) & 0x007FFFFFu));
  // m = mantissa in [1, 2), halved (exponent 126 instead of 127) when above sqrt(2).
  const float m = std::bit_cast<float>(mantissa | (0x3F800000u - (high & 0x00800000u)));
  const std::int32_t exponent = static_cast<std::int32_t>(bits >> 23) - 127 - static_cast<std::int32_t>(tiny & 23u) +
                                static_cast<std::int32_t>(high & 1u);
  const float e = static_cast<float>(exponent);
  const float t = (m - 1.0f) / (m + 1.0f);
  const float t2 = t * t;
  float s = 1.0f / 9.0f;
  s = s * t2 + 1.0f / 7.0f;
  s = s * t2 + 1.0f / 5.0f;
  s = s * t2 + 1.0f / 3.0f;
  const float log_m = 2.0f * t + 2.0f * t * t2 * s;
  const float y = e * kLn2Hi + (e * kLn2Lo + log_m);
  const std::uint32_t zero = -static_cast<std::uint32_t>((x_bits & 0x7FFFFFFFu) == 0);
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(y) & ~zero) | (std::bit_cast<std::uint32_t>(kNegInf) & zero));
}

GENMARL_SAMPLING_INLINE void exp_all(const float* __restrict in, float* __restrict out, std::int64_t n) noexcept {
  for (std::int64_t j = 0; j < n; ++j) out[j] = exp_nonpositive(in[j]);
}

GENMARL_SAMPLING_INLINE void log_all(const float* __restrict in, float* __restrict out, std::int64_t n) noexcept {
  for (std::int64_t j = 0; j < n; ++j) out[j] = log_nonnegative(in[j]);
}

// A float's bits as an int32 that orders like the float (for non-NaN values), and back. An
// integer max vectorises; a float max may not be reordered by the compiler.
GENMARL_SAMPLING_INLINE std::int32_t order_key(float x) noexcept {
  const auto bits = std::bit_cast<std::int32_t>(x);
  return bits ^ ((bits >> 31) & 0x7FFFFFFF);
}
GENMARL_SAMPLING_INLINE float from_order_key(std::int32_t key) noexcept {
  return std::bit_cast<float>(key ^ ((key >> 31) & 0x7FFFFFFF));
}

// Scratch for one tile of `rows` rows, stored column-major (outcome i of tile row t at
// [i * rows + t]) so that every per-row reduction is a vertical operation across rows that
// vectorises whatever k is. On the stack when the tile fits kTileElems, else one heap block
// per task.
class Tile {
 public:
  Tile(std::int64_t k, std::int64_t max_rows) : k_(k) {
    // Enough rows for the vertical loops to fill vectors; fewer for very large k, so that the
    // heap block stays within kMaxHeapElems per array.
    rows_ = k <= kTileElems ? std::clamp(kTileElems / k, kMinTileRows, kMaxTileRows)
                            : std::clamp(kMaxHeapElems / k, std::int64_t{1}, kMinTileRows);
    rows_ = std::min(rows_, std::max<std::int64_t>(max_rows, 1));
    const std::int64_t elems = rows_ * k;
    if (elems <= kTileElems) {
      a_ = stack_a_;
      b_ = stack_b_;
      wide_ = stack_wide_;
    } else {
      heap_.resize(static_cast<std::size_t>(2 * elems));
      heap_wide_.resize(static_cast<std::size_t>(elems));
      a_ = heap_.data();
      b_ = a_ + elems;
      wide_ = heap_wide_.data();
    }
  }
  Tile(const Tile&) = delete;
  Tile& operator=(const Tile&) = delete;

  std::int64_t rows() const noexcept { return rows_; }
  float* a() noexcept { return a_; }        // [k, rows]
  float* b() noexcept { return b_; }        // [k, rows]
  double* wide() noexcept { return wide_; }  // [k, rows]
  // Per-row scratch, [rows] each.
  std::int32_t* keys() noexcept { return keys_; }
  double* sums() noexcept { return sums_; }
  double* sums2() noexcept { return sums2_; }
  std::int64_t* index() noexcept { return index_; }
  float* row_a() noexcept { return row_a_; }
  float* row_b() noexcept { return row_b_; }

  // Loads `n` <= rows() rows of logits, transposed, and shifts each by its max: a[i, t] =
  // logits[t, i] - max_i logits[t, i] (<= 0, or -inf).
  GENMARL_SAMPLING_INLINE void load_shifted(const float* __restrict logits, std::int64_t n) noexcept {
    float* __restrict s = a_;
    std::int32_t* __restrict key = keys_;
    for (std::int64_t i = 0; i < k_; ++i) {
      for (std::int64_t t = 0; t < n; ++t) s[i * n + t] = logits[t * k_ + i];
    }
    for (std::int64_t t = 0; t < n; ++t) key[t] = std::numeric_limits<std::int32_t>::min();
    for (std::int64_t i = 0; i < k_; ++i) {
      for (std::int64_t t = 0; t < n; ++t) {
        const std::int32_t ki = order_key(s[i * n + t]);
        key[t] = ki > key[t] ? ki : key[t];
      }
    }
    float* __restrict m = row_a_;
    for (std::int64_t t = 0; t < n; ++t) m[t] = from_order_key(key[t]);
    for (std::int64_t i = 0; i < k_; ++i) {
      for (std::int64_t t = 0; t < n; ++t) s[i * n + t] -= m[t];
    }
  }

 private:
  static constexpr std::int64_t kMinTileRows = 16;
  static constexpr std::int64_t kMaxTileRows = 256;
  static constexpr std::int64_t kMaxHeapElems = std::int64_t{1} << 16;

  std::int64_t k_;
  std::int64_t rows_;
  float* a_;
  float* b_;
  double* wide_;
  float stack_a_[kTileElems];
  float stack_b_[kTileElems];
  double stack_wide_[kTileElems];
  std::int32_t keys_[kMaxTileRows];
  double sums_[kMaxTileRows];
  double sums2_[kMaxTileRows];
  std::int64_t index_[kMaxTileRows];
  float row_a_[kMaxTileRows];
  float row_b_[kMaxTileRows];
  std::vector<float> heap_;
  std::vector<double> heap_wide_;
};

// log p[index[t]] for a tile's n rows, from the shifted logits, their exp weights and each row's
// total S (as float; `row_total` is overwritten): p = (1 - unimix) e / S + unimix / k.
GENMARL_SAMPLING_INLINE void index_log_probs(const float* __restrict shifted, const float* __restrict weights,
                                             float* __restrict row_total, float* __restrict scratch,
                                             const std::int64_t* __restrict index, std::int64_t n, std::int64_t k,
                                             float unimix, float* __restrict out) {
  if (unimix == 0.0f) {
    // log p = shifted logit - log S: exact for tiny p, and -inf only for a -inf logit.
    log_all(row_total, scratch, n);
    for (std::int64_t t = 0; t < n; ++t) out[t] = shifted[index[t] * n + t] - scratch[t];
  } else {
    // p = (1 - unimix) e / S + unimix / k >= unimix / k.
    const float keep_f = 1.0f - unimix;
    const float mix_per_k_f = unimix / static_cast<float>(k);
    for (std::int64_t t = 0; t < n; ++t) scratch[t] = keep_f * weights[index[t] * n + t] / row_total[t] + mix_per_k_f;
    log_all(scratch, out, n);
  }
}

// The kernels over rows [first, end). Written once and compiled per ISA below.
GENMARL_SAMPLING_INLINE void sample_rows(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                                         std::uint64_t seed, std::uint64_t stream, float unimix,
                                         std::int64_t* out_index, float* out_log_prob, float* out_one_hot) {
  Tile tile(k, end - first);
  const CounterRng base(seed, stream, 0);
  const double mix = unimix;
  const double inv_keep = 1.0 / (1.0 - mix);
  const double k_over_mix = mix > 0.0 ? static_cast<double>(k) / mix : 0.0;
  for (std::int64_t r0 = first; r0 < end; r0 += tile.rows()) {
    const std::int64_t n = std::min(tile.rows(), end - r0);
    tile.load_shifted(logits + r0 * k, n);
    const float* __restrict shifted = tile.a();
    float* __restrict weights = tile.b();
    exp_all(shifted, weights, n * k);
    // Prefix sums of each row's softmax weights in double; the last is the row total S.
    double* __restrict prefix = tile.wide();
    double* __restrict total = tile.sums();
    for (std::int64_t t = 0; t < n; ++t) total[t] = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t t = 0; t < n; ++t) {
        total[t] += weights[i * n + t];
        prefix[i * n + t] = total[t];
      }
    }
    // p is a mixture: with probability unimix an outcome uniformly at random, otherwise a draw
    // from the softmax at target = v S with v = (u - unimix) / (1 - unimix) uniform in [0, 1).
    double* __restrict uniform = tile.sums2();
    for (std::int64_t t = 0; t < n; ++t) {
      CounterRng rng = base;
      rng.set_counter(static_cast<std::uint64_t>(r0 + t));
      uniform[t] = rng.uniform();
    }
    // The softmax draw is the first i with prefix[i] > target, i.e. the number of i with
    // prefix[i] <= target (prefixes do not decrease): a count, not a search with unpredictable
    // branches. An outcome of weight zero repeats the previous prefix, so it never comes first.
    std::int64_t* __restrict index = tile.index();
    for (std::int64_t t = 0; t < n; ++t) {
      index[t] = 0;
      total[t] *= (uniform[t] - mix) * inv_keep;  // now the target (negative on the uniform branch)
    }
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t t = 0; t < n; ++t) index[t] += prefix[i * n + t] <= total[t] ? 1 : 0;
    }
    for (std::int64_t t = 0; t < n; ++t) {
      const double u = uniform[t];
      std::int64_t drawn = index[t];
      if (u < mix) {
        drawn = std::min(k - 1, static_cast<std::int64_t>(u * k_over_mix));  // u / unimix uniform in [0, 1)
      } else if (drawn == k) {
        // Rounding put the target at S: the draw belongs to the last outcome of weight > 0.
        drawn = k - 1;
        while (drawn > 0 && weights[drawn * n + t] == 0.0f) --drawn;
      }
      out_index[r0 + t] = drawn;
      index[t] = drawn;
    }
    if (out_log_prob != nullptr) {
      float* __restrict row_total = tile.row_a();
      for (std::int64_t t = 0; t < n; ++t) row_total[t] = static_cast<float>(prefix[(k - 1) * n + t]);
      index_log_probs(shifted, weights, row_total, tile.row_b(), index, n, k, unimix, out_log_prob + r0);
    }
    if (out_one_hot != nullptr) {
      float* oh = out_one_hot + r0 * k;
      std::memset(oh, 0, static_cast<std::size_t>(n * k) * sizeof(float));
      for (std::int64_t t = 0; t < n; ++t) oh[t * k + index[t]] = 1.0f;
    }
  }
}

GENMARL_SAMPLING_INLINE void log_prob_rows(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                                           const std::int64_t* index, float unimix, float* out) {
  Tile tile(k, end - first);
  for (std::int64_t r0 = first; r0 < end; r0 += tile.rows()) {
    const std::int64_t n = std::min(tile.rows(), end - r0);
    tile.load_shifted(logits + r0 * k, n);
    const float* __restrict shifted = tile.a();
    float* __restrict weights = tile.b();
    exp_all(shifted, weights, n * k);
    double* __restrict total = tile.sums();
    for (std::int64_t t = 0; t < n; ++t) total[t] = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t t = 0; t < n; ++t) total[t] += weights[i * n + t];
    }
    float* __restrict row_total = tile.row_a();
    for (std::int64_t t = 0; t < n; ++t) row_total[t] = static_cast<float>(total[t]);
    index_log_probs(shifted, weights, row_total, tile.row_b(), index + r0, n, k, unimix, out + r0);
  }
}

GENMARL_SAMPLING_INLINE void entropy_rows(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                                          float unimix, float* out) {
  Tile tile(k, end - first);
  const float keep_f = 1.0f - unimix;
  const float mix_per_k_f = unimix / static_cast<float>(k);
  const auto cutoff_bits = std::bit_cast<std::uint32_t>(kExpCutoff);
  for (std::int64_t r0 = first; r0 < end; r0 += tile.rows()) {
    const std::int64_t n = std::min(tile.rows(), end - r0);
    tile.load_shifted(logits + r0 * k, n);
    float* __restrict shifted = tile.a();
    float* __restrict weights = tile.b();
    exp_all(shifted, weights, n * k);
    double* __restrict total = tile.sums();
    double* __restrict acc = tile.sums2();
    for (std::int64_t t = 0; t < n; ++t) total[t] = acc[t] = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t t = 0; t < n; ++t) total[t] += weights[i * n + t];
    }
    float* __restrict row_value = tile.row_a();
    float* __restrict row_log = tile.row_b();
    if (unimix == 0.0f) {
      // H = log S - sum_i e_i s_i / S (S = sum_i e_i, s_i the shifted logit). Where e_i = 0 the
      // logit is clamped to the exp cut-off (a bit mask, as in exp_nonpositive) so the term is 0.
      for (std::int64_t i = 0; i < k; ++i) {
        for (std::int64_t t = 0; t < n; ++t) {
          const std::uint32_t bits = std::bit_cast<std::uint32_t>(shifted[i * n + t]);
          const std::uint32_t low = -static_cast<std::uint32_t>(bits > cutoff_bits);
          const float s = std::bit_cast<float>((bits & ~low) | (cutoff_bits & low));
          acc[t] += static_cast<double>(weights[i * n + t]) * s;
        }
      }
      for (std::int64_t t = 0; t < n; ++t) row_value[t] = static_cast<float>(total[t]);
      log_all(row_value, row_log, n);
      for (std::int64_t t = 0; t < n; ++t) out[r0 + t] = row_log[t] - static_cast<float>(acc[t] / total[t]);
    } else {
      // H = -sum_i p_i log p_i with every p_i = (1 - unimix) e_i / S + unimix / k > 0.
      for (std::int64_t t = 0; t < n; ++t) row_value[t] = keep_f / static_cast<float>(total[t]);
      float* __restrict probs = shifted;  // the shifted logits are not needed any more
      for (std::int64_t i = 0; i < k; ++i) {
        for (std::int64_t t = 0; t < n; ++t) probs[i * n + t] = weights[i * n + t] * row_value[t] + mix_per_k_f;
      }
      float* __restrict log_probs = weights;
      log_all(probs, log_probs, n * k);
      for (std::int64_t i = 0; i < k; ++i) {
        for (std::int64_t t = 0; t < n; ++t) acc[t] -= static_cast<double>(probs[i * n + t]) * log_probs[i * n + t];
      }
      for (std::int64_t t = 0; t < n; ++t) out[r0 + t] = static_cast<float>(acc[t]);
    }
  }
}

// One compiled copy of the kernels per ISA: the baseline (SSE2 on x86-64) and, on x86-64 with
// GCC or Clang, AVX2+FMA and AVX-512, picked once at run time (2-3x faster than SSE2 on the
// development machine). Every copy inlines the same code above, so they agree up to the
// rounding of fused multiply-adds, and each is bitwise independent of the thread count.
#define GENMARL_SAMPLING_KERNELS(suffix, attr)                                                        \
  attr inline void sample_rows_##suffix(const float* logits, std::int64_t first, std::int64_t end,   \
                                        std::int64_t k, std::uint64_t seed, std::uint64_t stream,    \
                                        float unimix, std::int64_t* out_index, float* out_log_prob,  \
                                        float* out_one_hot) {                                         \
    sample_rows(logits, first, end, k, seed, stream, unimix, out_index, out_log_prob, out_one_hot);   \
  }                                                                                                   \
  attr inline void log_prob_rows_##suffix(const float* logits, std::int64_t first, std::int64_t end, \
                                          std::int64_t k, const std::int64_t* index, float unimix,   \
                                          float* out) {                                               \
    log_prob_rows(logits, first, end, k, index, unimix, out);                                         \
  }                                                                                                   \
  attr inline void entropy_rows_##suffix(const float* logits, std::int64_t first, std::int64_t end,  \
                                         std::int64_t k, float unimix, float* out) {                  \
    entropy_rows(logits, first, end, k, unimix, out);                                                 \
  }

GENMARL_SAMPLING_KERNELS(baseline, )

enum class Isa { kBaseline, kAvx2, kAvx512 };

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define GENMARL_SAMPLING_DISPATCH 1
GENMARL_SAMPLING_KERNELS(avx2, __attribute__((target("avx2,fma"))))
GENMARL_SAMPLING_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))))

// CPUID and XGETBV directly (not __builtin_cpu_supports: its __cpu_model symbol does not link
// into a shared library under every toolchain, e.g. zig's clang targeting an older glibc): the
// instructions must exist and the OS must save the YMM (and for AVX-512, ZMM/opmask) state.
inline Isa detect_isa() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::kBaseline;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!osxsave || !avx) return Isa::kBaseline;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u;     // SSE and AVX state
  const bool zmm_state = (xcr0_lo & 0xe6u) == 0xe6u;   // plus opmask and ZMM state
  if (!ymm_state || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::kBaseline;
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512dq = b & (1u << 17);
  const bool avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  if (zmm_state && avx512f && avx512bw && avx512dq && avx512vl) return Isa::kAvx512;
  if (avx2 && fma) return Isa::kAvx2;
  return Isa::kBaseline;
}
#else
inline Isa detect_isa() noexcept { return Isa::kBaseline; }
#endif
#undef GENMARL_SAMPLING_KERNELS

inline Isa isa() noexcept {
  static const Isa detected = detect_isa();
  return detected;
}

// Calls fn(first_row, end_row) over [0, rows) in chunks of kRowsPerTask, on the pool when
// there is one and more than one chunk.
template <class Fn>
void for_row_chunks(std::int64_t rows, ThreadPool* pool, Fn&& fn) {
  const std::int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  if (pool == nullptr || pool->num_threads() <= 1 || tasks <= 1) {
    fn(std::int64_t{0}, rows);
    return;
  }
  pool->run(static_cast<std::size_t>(tasks), [&](std::size_t task) {
    const std::int64_t first = static_cast<std::int64_t>(task) * kRowsPerTask;
    fn(first, std::min(rows, first + kRowsPerTask));
  });
}

// The kernels on rows [first, end) in the copy for this machine's ISA.
inline void sample_rows_isa(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                            std::uint64_t seed, std::uint64_t stream, float unimix, std::int64_t* out_index,
                            float* out_log_prob, float* out_one_hot) {
#ifdef GENMARL_SAMPLING_DISPATCH
  switch (isa()) {
    case Isa::kAvx512:
      return sample_rows_avx512(logits, first, end, k, seed, stream, unimix, out_index, out_log_prob, out_one_hot);
    case Isa::kAvx2:
      return sample_rows_avx2(logits, first, end, k, seed, stream, unimix, out_index, out_log_prob, out_one_hot);
    case Isa::kBaseline: break;
  }
#endif
  sample_rows_baseline(logits, first, end, k, seed, stream, unimix, out_index, out_log_prob, out_one_hot);
}

inline void log_prob_rows_isa(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                              const std::int64_t* index, float unimix, float* out) {
#ifdef GENMARL_SAMPLING_DISPATCH
  switch (isa()) {
    case Isa::kAvx512: return log_prob_rows_avx512(logits, first, end, k, index, unimix, out);
    case Isa::kAvx2: return log_prob_rows_avx2(logits, first, end, k, index, unimix, out);
    case Isa::kBaseline: break;
  }
#endif
  log_prob_rows_baseline(logits, first, end, k, index, unimix, out);
}

inline void entropy_rows_isa(const float* logits, std::int64_t first, std::int64_t end, std::int64_t k,
                             float unimix, float* out) {
#ifdef GENMARL_SAMPLING_DISPATCH
  switch (isa()) {
    case Isa::kAvx512: return entropy_rows_avx512(logits, first, end, k, unimix, out);
    case Isa::kAvx2: return entropy_rows_avx2(logits, first, end, k, unimix, out);
    case Isa::kBaseline: break;
  }
#endif
  entropy_rows_baseline(logits, first, end, k, unimix, out);
}

}  // namespace detail

// Which instruction set the kernels run with on this machine: "avx512", "avx2" or "baseline".
inline const char* isa_name() noexcept {
  switch (detail::isa()) {
    case detail::Isa::kAvx512: return "avx512";
    case detail::Isa::kAvx2: return "avx2";
    case detail::Isa::kBaseline: break;
  }
  return "baseline";
}

// Draws one outcome per row: out_index[r] in [0, k), out_log_prob[r] = log p[r, index]
// (skipped when null), out_one_hot[r, :] = one-hot of the index (skipped when null).
// Rows are split over `pool` when it is given and has more than one thread; the
// result is identical either way.
inline void sample(const float* logits, std::int64_t rows, std::int64_t k, std::uint64_t seed,
                   std::uint64_t stream, float unimix, std::int64_t* out_index, float* out_log_prob,
                   float* out_one_hot, ThreadPool* pool = nullptr) {
  detail::for_row_chunks(rows, pool, [&](std::int64_t first, std::int64_t end) {
    detail::sample_rows_isa(logits, first, end, k, seed, stream, unimix, out_index, out_log_prob, out_one_hot);
  });
}

// out[r] = log p[r, index[r]] (-inf for a -inf logit when unimix = 0).
inline void log_prob(const float* logits, std::int64_t rows, std::int64_t k, const std::int64_t* index,
                     float unimix, float* out, ThreadPool* pool = nullptr) {
  detail::for_row_chunks(rows, pool, [&](std::int64_t first, std::int64_t end) {
    detail::log_prob_rows_isa(logits, first, end, k, index, unimix, out);
  });
}

// out[r] = -sum_i p[r, i] log p[r, i] (terms with p = 0 count as 0).
inline void entropy(const float* logits, std::int64_t rows, std::int64_t k, float unimix, float* out,
                    ThreadPool* pool = nullptr) {
  detail::for_row_chunks(rows, pool, [&](std::int64_t first, std::int64_t end) {
    detail::entropy_rows_isa(logits, first, end, k, unimix, out);
  });
}

#undef GENMARL_SAMPLING_INLINE

}  // namespace genmarl::sampling
