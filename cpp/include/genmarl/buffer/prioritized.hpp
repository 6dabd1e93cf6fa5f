// Proportional prioritized replay (Schaul et al. 2016) on a sum tree with a
// min tree for the importance-weight normaliser.
//
// P(i) = p_i^alpha / sum_j p_j^alpha with p_i = priority_i + eps; sampling is
// stratified (one draw per equal-mass segment, as in the paper); weights are
// w_i = (N P(i))^-beta / max_j (N P(j))^-beta. New items get the largest
// priority seen so far (1 before any update). Same locking as ReplayBuffer.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "genmarl/buffer/replay.hpp"
#include "genmarl/buffer/sum_tree.hpp"

namespace genmarl::buffer {

class PrioritizedReplayBuffer : public ReplayBuffer {
 public:
  PrioritizedReplayBuffer(Schema schema, std::int64_t capacity, double alpha, double beta, double eps,
                          std::uint64_t seed)
      : ReplayBuffer(std::move(schema), capacity, seed, 1, SumMinTree::bytes_for(capacity), "PrioritizedReplayBuffer"),
        tree_(capacity), alpha_(alpha), beta_(beta), eps_(eps) {
    if (!(alpha >= 0.0 && std::isfinite(alpha))) throw InvalidArgument("alpha must be a finite number >= 0, got " + std::to_string(alpha));
    check_beta(beta);
    if (!(eps >= 0.0 && std::isfinite(eps))) throw InvalidArgument("eps must be a finite number >= 0, got " + std::to_string(eps));
  }

  double alpha() const noexcept { return alpha_; }
  double beta() const {
    std::lock_guard lock(mutex_);
    return beta_;
  }
  double eps() const noexcept { return eps_; }
  void set_beta(double beta) {
    check_beta(beta);
    std::lock_guard lock(mutex_);
    beta_ = beta;
  }
  double max_priority() const {
    std::lock_guard lock(mutex_);
    return max_priority_;
  }
  std::size_t nbytes() const noexcept { return store_.nbytes() + tree_.nbytes(); }

  // Adds n items with the running max priority, or with priorities[k] when given.
  void add(const void* const* src, std::int64_t n, const double* priorities = nullptr) {
    check_add(n);
    if (priorities) check_priorities(priorities, n);
    std::lock_guard lock(mutex_);
    const std::int64_t at = add_locked(src, n);
    if (priorities) {
      for (std::int64_t k = 0; k < n; ++k) {
        const double p = priorities[k] + eps_;
        max_priority_ = std::max(max_priority_, p);
        tree_.set((at + k) % capacity_, std::pow(p, alpha_));
      }
    } else {
      const double v = std::pow(max_priority_, alpha_);
      const std::int64_t first = std::min(n, capacity_ - at);
      tree_.set_range(at, at + first, v);
      tree_.set_range(0, n - first, v);
    }
  }

  // Stratified proportional sample; indices_out and weights_out get [batch] values.
  // Without a beta, the buffer's beta is used.
  void sample(std::int64_t batch, void* const* out, std::int64_t* indices_out, float* weights_out,
              std::optional<double> beta_override = std::nullopt) {
    if (beta_override) check_beta(*beta_override);
    std::lock_guard lock(mutex_);
    check_sample(batch);
    const double beta = beta_override.value_or(beta_);
    const double total = tree_.total();
    if (!(total > 0.0)) throw InvalidArgument("every stored priority is zero; nothing can be sampled");
    const double segment = total / static_cast<double>(batch);
    std::vector<double>& masses = scratch_;
    masses.resize(static_cast<std::size_t>(batch));
    for (std::int64_t k = 0; k < batch; ++k) {
      masses[static_cast<std::size_t>(k)] = std::min((static_cast<double>(k) + rng_.uniform()) * segment, total);
    }
    tree_.find_many(masses.data(), batch, indices_out);
    store_.gather(indices_out, batch, out);
    // w_i / max_w = (p_i / p_min)^-beta.
    const double p_min = tree_.min();
    for (std::int64_t k = 0; k < batch; ++k) {
      weights_out[k] = static_cast<float>(std::pow(tree_.get(indices_out[k]) / p_min, -beta));
    }
  }

  // Sets new priorities (before alpha and eps) for the given slots. All inputs
  // are checked before anything changes.
  void update_priorities(const std::int64_t* indices, const double* priorities, std::int64_t n) {
    check_priorities(priorities, n);
    std::lock_guard lock(mutex_);
    for (std::int64_t k = 0; k < n; ++k) {
      if (indices[k] < 0 || indices[k] >= size_) {
        throw InvalidArgument("index " + std::to_string(indices[k]) + " (position " + std::to_string(k) +
                              ") is out of range; valid indices are 0.." + std::to_string(size_ - 1));
      }
    }
    std::vector<double>& values = scratch_;
    values.resize(static_cast<std::size_t>(n));
    for (std::int64_t k = 0; k < n; ++k) {
      const double p = priorities[k] + eps_;
      max_priority_ = std::max(max_priority_, p);
      values[static_cast<std::size_t>(k)] = std::pow(p, alpha_);
    }
    tree_.set_many(indices, values.data(), n);
  }

  // p_i^alpha of the given slots (what sampling uses).
  void get_priorities(const std::int64_t* indices, double* out, std::int64_t n) const {
    std::lock_guard lock(mutex_);
    for (std::int64_t k = 0; k < n; ++k) {
      if (indices[k] < 0 || indices[k] >= size_) {
        throw InvalidArgument("index " + std::to_string(indices[k]) + " is out of range; valid indices are 0.." +
                              std::to_string(size_ - 1));
      }
      out[k] = tree_.get(indices[k]);
    }
  }

  void save(const std::string& path) const {
    std::lock_guard lock(mutex_);
    FileWriter w(path);
    w.header(BufferKind::kPrioritized, schema_);
    write_state(w);
    w.value(alpha_);
    w.value(beta_);
    w.value(eps_);
    w.value(max_priority_);
    w.bytes(tree_.leaves(), sizeof(double) * static_cast<std::size_t>(size_));
    w.commit();
  }

  static PrioritizedReplayBuffer load(const std::string& path) {
    FileReader r(path);
    Schema schema = r.header(BufferKind::kPrioritized);
    ReplayBuffer base = read_state(r, std::move(schema), "PrioritizedReplayBuffer", &SumMinTree::bytes_for);
    const auto alpha = r.value<double>();
    const auto beta = r.value<double>();
    const auto eps = r.value<double>();
    const auto max_p = r.value<double>();
    if (!(alpha >= 0 && std::isfinite(alpha) && beta >= 0 && std::isfinite(beta) && eps >= 0 && std::isfinite(eps) &&
          max_p > 0 && std::isfinite(max_p) && std::isfinite(std::pow(max_p, alpha)))) {
      r.corrupt("prioritized settings");
    }
    r.expect_remaining(static_cast<std::size_t>(base.size()) * sizeof(double));
    std::vector<double> leaves(static_cast<std::size_t>(base.size()));
    r.bytes(leaves.data(), leaves.size() * sizeof(double));
    r.finish();
    PrioritizedReplayBuffer b(std::move(base), alpha, beta, eps);
    b.max_priority_ = max_p;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (!(leaves[i] >= 0 && std::isfinite(leaves[i]))) throw FileError("'" + path + "' holds invalid priorities");
    }
    if (!leaves.empty()) {
      std::vector<std::int64_t> idx(leaves.size());
      for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
      b.tree_.set_many(idx.data(), leaves.data(), static_cast<std::int64_t>(idx.size()));
    }
    return b;
  }

 private:
  PrioritizedReplayBuffer(ReplayBuffer&& base, double alpha, double beta, double eps)
      : ReplayBuffer(std::move(base)), tree_(capacity_), alpha_(alpha), beta_(beta), eps_(eps) {}

  static void check_beta(double beta) {
    if (!(beta >= 0.0 && std::isfinite(beta))) throw InvalidArgument("beta must be a finite number >= 0, got " + std::to_string(beta));
  }
  // Priorities must be finite, >= 0, and stay finite as (p + eps)^alpha.
  void check_priorities(const double* p, std::int64_t n) const {
    for (std::int64_t k = 0; k < n; ++k) {
      if (!std::isfinite(p[k]) || p[k] < 0.0) {
        throw InvalidArgument("priorities must be finite and >= 0; got " + std::to_string(p[k]) + " at position " +
                              std::to_string(k));
      }
      if (!std::isfinite(std::pow(p[k] + eps_, alpha_))) {
        throw InvalidArgument("priority " + std::to_string(p[k]) + " at position " + std::to_string(k) +
                              " overflows a double as (priority + eps)^alpha with alpha=" + std::to_string(alpha_));
      }
    }
  }

  SumMinTree tree_;
  std::vector<double> scratch_;
  double alpha_, beta_, eps_;
  double max_priority_ = 1.0;
};

}  // namespace genmarl::buffer
