// Target matching shared by simple_line and simple_formation: mpe2 assigns
// agents to target positions with scipy's linear_sum_assignment (an optimal
// assignment) on the Euclidean distance matrix, and rewards minus the mean of
// the matched distances clipped to [0, 2].
//
// Here the assignment is the Hungarian algorithm (potentials, O(n^3)) on
// fixed-size arrays, so nothing allocates; n is bounded by kMaxAssignment.
// When several assignments are optimal, the one chosen may differ from
// scipy's, but their total cost is the same.
#pragma once

#include <algorithm>
#include <limits>

#include "genmarl/envs/mpe/scenario_base.hpp"
#include "genmarl/envs/mpe/world.hpp"

namespace genmarl::mpe {

inline constexpr int kMaxAssignment = 32;
inline constexpr double kMatchClipMax = 2.0;  // matched distances are clipped to [0, this]

// Minimum-cost perfect matching of an n x n cost matrix (row-major, n <= kMaxAssignment):
// writes the column assigned to each row. Always terminates, even for non-finite costs.
inline void solve_assignment(const double* cost, int n, int* row_to_col) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // 1-based: index 0 is the virtual column / row of the classic formulation.
  double u[kMaxAssignment + 1], v[kMaxAssignment + 1], minv[kMaxAssignment + 1];
  int p[kMaxAssignment + 1], way[kMaxAssignment + 1];
  bool used[kMaxAssignment + 1];
  std::fill(u, u + n + 1, 0.0);
  std::fill(v, v + n + 1, 0.0);
  std::fill(p, p + n + 1, 0);
  std::fill(way, way + n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::fill(minv, minv + n + 1, kInf);
    std::fill(used, used + n + 1, false);
    do {
      used[j0] = true;
      const int i0 = p[j0];
      double delta = kInf;
      int j1 = -1;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (j1 < 0 || minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  for (int j = 1; j <= n; ++j) row_to_col[p[j] - 1] = j - 1;
}

// numpy's pairwise summation of a contiguous float64 array, for n <= 128 (one block):
// sequential below 8 elements, else eight interleaved partial sums.
inline double numpy_sum(const double* a, int n) {
  if (n < 8) {
    double res = 0.0;
    for (int i = 0; i < n; ++i) res += a[i];
    return res;
  }
  double r[8];
  for (int k = 0; k < 8; ++k) r[k] = a[k];
  int i = 8;
  for (; i < n - (n % 8); i += 8) {
    for (int k = 0; k < 8; ++k) r[k] += a[i + k];
  }
  double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) res += a[i];
  return res;
}

// Matches the first n agents to n targets: delta[i] is agent i's distance to its assigned
// target. Returns mpe2's joint reward, -mean(clip(delta, 0, kMatchClipMax)).
inline double match_targets(const World& w, const Vec2* targets, int n, double* delta) {
  double cost[kMaxAssignment * kMaxAssignment];
  int col[kMaxAssignment];
  for (int a = 0; a < n; ++a) {
    for (int t = 0; t < n; ++t) cost[a * n + t] = norm(w.agent(a).pos - targets[t]);
  }
  solve_assignment(cost, n, col);
  double clipped[kMaxAssignment];
  for (int a = 0; a < n; ++a) {
    delta[a] = cost[a * n + col[a]];
    clipped[a] = std::clamp(delta[a], 0.0, kMatchClipMax);
  }
  return -(numpy_sum(clipped, n) / n);
}

// What simple_line and simple_formation share: N agents ("agent_0".."agent_{N-1}") rewarded
// jointly (mpe2's local_ratio 0) by the optimal matching of agents to target positions, and
// optionally terminating when every matched distance is below kDistThreshold. Derived
// provides `void targets(const World&, Vec2* out) const` (N positions).
template <class Derived>
class TargetMatchingScenario : public MpeScenario<Derived> {
 public:
  static constexpr double kDistThreshold = 0.05;  // success: every matched distance below this

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"N", ParamKind::kInt, 4, "number of agents"},
        {"terminate_on_success", ParamKind::kBool, 0, "terminate when every agent is within 0.05 of its target"},
    };
  }

  explicit TargetMatchingScenario(const Params& p)
      : MpeScenario<Derived>(p), n_(p.get_int("N")), terminate_on_success_(p.get_bool("terminate_on_success")) {
    if (n_ < 1 || n_ > kMaxAssignment)
      throw InvalidArgument(std::string(Derived::kName) + ": N must be in [1, " + std::to_string(kMaxAssignment) +
                            "], got " + std::to_string(n_));
  }

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < n_; ++i) names.push_back("agent_" + std::to_string(i));
    return names;
  }

  // mpe2 uses local_ratio 0: every agent gets the joint reward.
  double local_ratio() const { return 0.0; }
  double global_reward(const World& w) const {
    double delta[kMaxAssignment];
    return match(w, delta);
  }
  double reward(const World&, int) const { return 0.0; }

  bool terminal(const World& w) const {
    if (!terminate_on_success_) return false;
    double delta[kMaxAssignment];
    match(w, delta);
    for (int i = 0; i < n_; ++i) {
      if (!(delta[i] < kDistThreshold)) return false;
    }
    return true;
  }

 protected:
  // The joint reward; writes each agent's matched (clipped) distance to delta.
  double match(const World& w, double* delta) const {
    Vec2 targets[kMaxAssignment];
    static_cast<const Derived&>(*this).targets(w, targets);
    return match_targets(w, targets, n_, delta);
  }

  int n_;
  bool terminate_on_success_;
};

}  // namespace genmarl::mpe
