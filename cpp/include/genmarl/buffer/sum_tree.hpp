// A 16-ary sum tree with a min tree alongside, for proportional prioritized
// sampling. Each level stores ceil(n / 16^k) nodes contiguously, so a lookup
// reads one or two cache lines per level (5 levels for a million items) and
// capacity needs no power-of-two padding.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace genmarl::buffer {

class SumMinTree {
 public:
  static constexpr std::int64_t kFanout = 16;

  explicit SumMinTree(std::int64_t n) : n_(n) {
    std::int64_t size = n;
    for (;;) {
      sums_.emplace_back(static_cast<std::size_t>(size), 0.0);
      mins_.emplace_back(static_cast<std::size_t>(size), kInf);
      if (size == 1) break;
      size = (size + kFanout - 1) / kFanout;
    }
  }

  std::int64_t size() const noexcept { return n_; }
  double total() const noexcept { return sums_.back()[0]; }
  // Smallest positive leaf value (infinity when there is none).
  double min() const noexcept { return mins_.back()[0]; }
  double get(std::int64_t i) const noexcept { return sums_[0][static_cast<std::size_t>(i)]; }
  std::size_t nbytes() const noexcept {
    std::size_t b = 0;
    for (const auto& l : sums_) b += l.size() * sizeof(double) * 2;
    return b;
  }

  // Sets leaf i to value v >= 0 and updates its ancestors.
  void set(std::int64_t i, double v) noexcept {
    sums_[0][static_cast<std::size_t>(i)] = v;
    mins_[0][static_cast<std::size_t>(i)] = v > 0.0 ? v : kInf;
    for (std::size_t l = 1; l < sums_.size(); ++l) {
      i /= kFanout;
      refresh(l, i);
    }
  }

  // Sets leaves [begin, end) to v and updates each ancestor once.
  void set_range(std::int64_t begin, std::int64_t end, double v) noexcept {
    if (begin >= end) return;
    std::fill(sums_[0].begin() + begin, sums_[0].begin() + end, v);
    std::fill(mins_[0].begin() + begin, mins_[0].begin() + end, v > 0.0 ? v : kInf);
    std::int64_t lo = begin, hi = end - 1;
    for (std::size_t l = 1; l < sums_.size(); ++l) {
      lo /= kFanout;
      hi /= kFanout;
      for (std::int64_t i = lo; i <= hi; ++i) refresh(l, i);
    }
  }

  // The leaf whose prefix-sum interval contains mass (0 <= mass < total);
  // never a zero-valued leaf. Rounding at the top end picks the last non-zero leaf.
  std::int64_t find(double mass) const noexcept {
    std::int64_t node = 0;
    for (std::size_t l = sums_.size() - 1; l-- > 0;) {
      const auto& level = sums_[l];
      const std::int64_t begin = node * kFanout;
      const std::int64_t end = std::min<std::int64_t>(begin + kFanout, static_cast<std::int64_t>(level.size()));
      std::int64_t pick = -1, last_nonzero = begin;
      for (std::int64_t c = begin; c < end; ++c) {
        const double s = level[static_cast<std::size_t>(c)];
        if (s > 0.0) last_nonzero = c;
        if (mass < s) {
          pick = c;
          break;
        }
        mass -= s;
      }
      if (pick < 0) {  // rounding ran past the end of this block
        pick = last_nonzero;
        mass = level[static_cast<std::size_t>(pick)] * 0.5;
      }
      node = pick;
    }
    return node;
  }

  const std::vector<double>& leaves() const noexcept { return sums_[0]; }

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  void refresh(std::size_t l, std::int64_t i) noexcept {
    const auto& below_s = sums_[l - 1];
    const auto& below_m = mins_[l - 1];
    const std::int64_t begin = i * kFanout;
    const std::int64_t end = std::min<std::int64_t>(begin + kFanout, static_cast<std::int64_t>(below_s.size()));
    double s = 0.0, m = kInf;
    for (std::int64_t c = begin; c < end; ++c) {
      s += below_s[static_cast<std::size_t>(c)];
      m = std::min(m, below_m[static_cast<std::size_t>(c)]);
    }
    sums_[l][static_cast<std::size_t>(i)] = s;
    mins_[l][static_cast<std::size_t>(i)] = m;
  }

  std::int64_t n_;
  std::vector<std::vector<double>> sums_, mins_;  // level 0 = leaves
};

}  // namespace genmarl::buffer
