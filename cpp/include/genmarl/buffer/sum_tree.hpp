// A 16-ary sum tree with a min tree alongside, for proportional prioritized
// sampling. Each level stores ceil(n / 16^k) nodes contiguously, so a lookup
// reads one or two cache lines per level (5 levels for a million items) and
// capacity needs no power-of-two padding.
//
// Every level starts as zero pages (LazyZeroArray), so a large tree costs
// resident memory only where leaves are set. A min node holds the smallest
// positive leaf below it, 0 when there is none, and the leaf level serves as
// its own min level.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "genmarl/buffer/memory.hpp"

namespace genmarl::buffer {

class SumMinTree {
 public:
  static constexpr std::int64_t kFanout = 16;

  explicit SumMinTree(std::int64_t n) : n_(n) {
    std::int64_t size = n;
    for (;;) {
      sums_.emplace_back(static_cast<std::size_t>(size));
      mins_.emplace_back(sums_.size() == 1 ? 0 : static_cast<std::size_t>(size));
      if (size == 1) break;
      size = size / kFanout + (size % kFanout != 0);  // ceil, without overflow
    }
  }

  // Bytes a tree over n leaves allocates (saturating; 0 for n <= 0).
  static std::uint64_t bytes_for(std::int64_t n) noexcept {
    std::uint64_t b = 0;
    for (std::int64_t size = n, level = 0; size > 0; ++level) {
      b = saturating_add(b, saturating_mul(static_cast<std::uint64_t>(size), level == 0 ? 8 : 16));
      if (size == 1) break;
      size = size / kFanout + (size % kFanout != 0);  // ceil, without overflow
    }
    return b;
  }

  std::int64_t size() const noexcept { return n_; }
  double total() const noexcept { return sums_.back()[0]; }
  // Smallest positive leaf value (infinity when there is none).
  double min() const noexcept {
    const double m = sums_.size() == 1 ? sums_[0][0] : mins_.back()[0];
    return m > 0.0 ? m : kInf;
  }
  double get(std::int64_t i) const noexcept { return sums_[0][static_cast<std::size_t>(i)]; }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(bytes_for(n_)); }

  // Sets leaf i to value v >= 0 and updates its ancestors.
  void set(std::int64_t i, double v) noexcept {
    sums_[0][static_cast<std::size_t>(i)] = v;
    for (std::size_t l = 1; l < sums_.size(); ++l) {
      i /= kFanout;
      refresh(l, i);
    }
  }

  // Sets leaves [begin, end) to v and updates each ancestor once.
  void set_range(std::int64_t begin, std::int64_t end, double v) noexcept {
    if (begin >= end) return;
    std::fill(sums_[0].begin() + begin, sums_[0].begin() + end, v);
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

  // find() for n masses at once: descends kLanes lookups level by level,
  // prefetching every lane's child block first so the cache misses overlap.
  void find_many(const double* masses, std::int64_t n, std::int64_t* out) const noexcept {
    constexpr std::int64_t kLanes = 16;
    for (std::int64_t g = 0; g < n; g += kLanes) {
      const std::int64_t lanes = std::min(kLanes, n - g);
      std::int64_t node[kLanes];
      double mass[kLanes];
      for (std::int64_t k = 0; k < lanes; ++k) node[k] = 0, mass[k] = masses[g + k];
      for (std::size_t l = sums_.size() - 1; l-- > 0;) {
        const double* level = sums_[l].data();
        const auto level_size = static_cast<std::int64_t>(sums_[l].size());
        for (std::int64_t k = 0; k < lanes; ++k) {
          __builtin_prefetch(level + node[k] * kFanout);
          __builtin_prefetch(level + node[k] * kFanout + 8);
        }
        for (std::int64_t k = 0; k < lanes; ++k) {
          const std::int64_t begin = node[k] * kFanout;
          const std::int64_t end = std::min(begin + kFanout, level_size);
          std::int64_t pick = -1, last_nonzero = begin;
          double m = mass[k];
          for (std::int64_t c = begin; c < end; ++c) {
            const double v = level[c];
            if (v > 0.0) last_nonzero = c;
            if (m < v) {
              pick = c;
              break;
            }
            m -= v;
          }
          if (pick < 0) {
            pick = last_nonzero;
            m = level[pick] * 0.5;
          }
          node[k] = pick;
          mass[k] = m;
        }
      }
      for (std::int64_t k = 0; k < lanes; ++k) out[g + k] = node[k];
    }
  }

  // Sets leaves idx[k] to values[k] (all >= 0), then refreshes each touched
  // ancestor once per level.
  void set_many(const std::int64_t* idx, const double* values, std::int64_t n) {
    std::vector<std::int64_t>& nodes = scratch_;
    nodes.assign(idx, idx + n);
    for (std::int64_t k = 0; k < n; ++k) __builtin_prefetch(sums_[0].data() + idx[k], 1);
    for (std::int64_t k = 0; k < n; ++k) sums_[0][static_cast<std::size_t>(idx[k])] = values[k];
    // Parents of a sorted list stay sorted: sort once, then only drop repeats.
    std::sort(nodes.begin(), nodes.end());
    for (std::size_t l = 1; l < sums_.size(); ++l) {
      for (auto& i : nodes) i /= kFanout;
      nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
      const auto count = static_cast<std::int64_t>(nodes.size());
      for (std::int64_t k = 0; k < count; ++k) {
        if (k + 8 < count) {  // the children blocks a few refreshes ahead
          const std::size_t c = static_cast<std::size_t>(nodes[static_cast<std::size_t>(k + 8)] * kFanout);
          __builtin_prefetch(sums_[l - 1].data() + c);
          __builtin_prefetch(sums_[l - 1].data() + c + 8);
          __builtin_prefetch(min_level(l - 1) + c);
          __builtin_prefetch(min_level(l - 1) + c + 8);
        }
        refresh(l, nodes[static_cast<std::size_t>(k)]);
      }
    }
  }

  const double* leaves() const noexcept { return sums_[0].data(); }

 private:
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  // Level l of the min tree (the leaves themselves for l = 0).
  const double* min_level(std::size_t l) const noexcept { return l == 0 ? sums_[0].data() : mins_[l].data(); }

  void refresh(std::size_t l, std::int64_t i) noexcept {
    const double* below_s = sums_[l - 1].data();
    const double* below_m = min_level(l - 1);
    const std::int64_t begin = i * kFanout;
    const std::int64_t end = std::min<std::int64_t>(begin + kFanout, static_cast<std::int64_t>(sums_[l - 1].size()));
    double s = 0.0, m = 0.0;  // m: smallest positive value, 0 = none
    for (std::int64_t c = begin; c < end; ++c) {
      s += below_s[c];
      const double v = below_m[c];
      if (v > 0.0 && !(m > 0.0 && m <= v)) m = v;
    }
    sums_[l][static_cast<std::size_t>(i)] = s;
    mins_[l][static_cast<std::size_t>(i)] = m;
  }

  std::int64_t n_;
  std::vector<LazyZeroArray<double>> sums_, mins_;  // level 0 = leaves; mins_[0] is unused (empty)
  std::vector<std::int64_t> scratch_;
};

}  // namespace genmarl::buffer
