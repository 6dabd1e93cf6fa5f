// Counter-based random numbers keyed by (seed, env_index, episode_index).
//
// Every draw is a pure function of (key, counter): the n-th draw of an
// episode does not depend on which thread steps the env or on any other env,
// so batched results are bitwise identical for any thread count.
#pragma once

#include <cmath>
#include <cstdint>

namespace genmarl {

// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class CounterRng {
 public:
  static constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

  CounterRng() = default;
  CounterRng(std::uint64_t seed, std::uint64_t stream, std::uint64_t episode,
             std::uint64_t counter = 0) noexcept
      : key_(make_key(seed, stream, episode)), counter_(counter) {}

  static constexpr std::uint64_t make_key(std::uint64_t seed, std::uint64_t stream,
                                          std::uint64_t episode) noexcept {
    return mix64(mix64(mix64(seed ^ 0x6A09E667F3BCC909ULL) ^ (stream * 0xD1B54A32D192ED03ULL)) ^
                 (episode * 0x8CB92BA72F3D8DD7ULL));
  }

  // The next 64 random bits.
  std::uint64_t next_u64() noexcept { return mix64(key_ + (++counter_) * kGamma); }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform double in [lo, hi).
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }

  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, bias < 2^-64 * n).
  std::uint64_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint64_t>((static_cast<__uint128_t>(next_u64()) * n) >> 64);
  }

  std::uint64_t counter() const noexcept { return counter_; }
  void set_counter(std::uint64_t c) noexcept { counter_ = c; }

 private:
  std::uint64_t key_ = 0;
  std::uint64_t counter_ = 0;
};

}  // namespace genmarl
