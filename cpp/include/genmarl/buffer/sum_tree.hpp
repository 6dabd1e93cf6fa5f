// A 16-ary sum tree with a min tree alongside, for proportional prioritized
// sampling. Each level stores ceil(n / 16^k) nodes contiguously, so a lookup
// reads one or two cache lines per level (5 levels for a million items) and
// capacity needs no power-of-two padding.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

namespace genmarl::buffer {

// Allocates with 128-byte alignment, so a node's 16 children (128 bytes) sit
// in exactly two cache lines.
template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <class U>
  BlockAllocator(const BlockAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{128})); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{128}); }
  template <class U>
  bool operator==(const BlockAllocator<U>&) const noexcept { return true; }
};

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
    for (std::int64_t k = 0; k < n; ++k) {
      sums_[0][static_cast<std::size_t>(idx[k])] = values[k];
      mins_[0][static_cast<std::size_t>(idx[k])] = values[k] > 0.0 ? values[k] : kInf;
    }
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
          __builtin_prefetch(mins_[l - 1].data() + c);
          __builtin_prefetch(mins_[l - 1].data() + c + 8);
        }
        refresh(l, nodes[static_cast<std::size_t>(k)]);
      }
    }
  }

  const double* leaves() const noexcept { return sums_[0].data(); }

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
  using Level = std::vector<double, BlockAllocator<double>>;
  std::vector<Level> sums_, mins_;  // level 0 = leaves
  std::vector<std::int64_t> scratch_;
};

}  // namespace genmarl::buffer
