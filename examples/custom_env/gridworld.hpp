// A small cooperative grid world, written outside genmarl against its scenario contract
// (genmarl/env/scenario.hpp): N agents on a size x size grid each walk to their own goal.
//
// Actions Discrete(5): stay, north, south, west, east, with action masks (no stepping off the
// grid). Every step each agent gets -0.01 plus +1 the step it first reaches its goal; an agent
// on its goal stays there. The episode terminates when every agent is on its goal.
// Observation (float32): own (row, col), goal (row, col), then every other agent's offset,
// all divided by size; or, with image=True, a uint8 image [3, size, size] of 0/1 planes (own
// cell, own goal, the other agents' cells) -- a group's observations may be float32, uint8 or
// int32 (AgentSpec::obs_dtype, with one observe() overload per type used).
// Metric: agents_at_goal (the share at the end of the episode).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <genmarl/core/rng.hpp>
#include <genmarl/env/batched_env.hpp>
#include <genmarl/env/spec.hpp>

namespace custom {

using genmarl::InvalidArgument;

class GridWorld {
 public:
  static constexpr const char* kName = "gridworld";

  struct State {
    std::vector<std::int64_t> pos, goal;  // [agents, 2] (row, col)
    std::vector<std::int64_t> action;     // [agents]
    std::vector<std::uint8_t> arrived;    // [agents] reached its goal this step
    std::int64_t steps = 0;
    std::int64_t size = 0;                // the grid side (fixed; not exported)
  };

  static std::vector<genmarl::ParamSpec> param_specs() {
    return {
        {"agents", genmarl::ParamKind::kInt, 2, "number of agents"},
        {"size", genmarl::ParamKind::kInt, 5, "grid side"},
        {"max_steps", genmarl::ParamKind::kInt, 30, "time limit"},
        {"image", genmarl::ParamKind::kBool, 0, "observe a uint8 image [3, size, size] instead of coordinates"},
    };
  }

  explicit GridWorld(const genmarl::Params& p)
      : n_(p.get_int("agents")), size_(p.get_int("size")), max_steps_(p.get_int("max_steps")), image_(p.get_bool("image")) {
    if (n_ < 1 || n_ > 16) throw InvalidArgument("gridworld: agents must be in [1, 16], got " + std::to_string(n_));
    if (size_ < 2 || size_ > 64) throw InvalidArgument("gridworld: size must be in [2, 64], got " + std::to_string(size_));
    if (max_steps_ < 1) throw InvalidArgument("gridworld: max_steps must be >= 1");
  }

  genmarl::EnvSpec spec() const {
    genmarl::EnvSpec s;
    s.name = kName;
    s.family = "gridworld";
    s.max_cycles = max_steps_;
    s.metric_names = {"agents_at_goal"};
    for (int i = 0; i < n_; ++i) {
      genmarl::AgentSpec a;
      a.name = "walker_" + std::to_string(i);
      a.group = "walker";
      a.obs_shape = {4 + 2 * (n_ - 1)};
      if (image_) {
        a.obs_shape = {3, size_, size_};
        a.obs_dtype = genmarl::ObsDtype::kUInt8;
        a.obs_low.assign(3 * size_ * size_, 0.0f);
        a.obs_high.assign(3 * size_ * size_, 1.0f);
      }
      a.action = genmarl::ActionSpace{false, 5, 0.0f, 0.0f};
      a.action_mask = true;
      s.agents.push_back(a);
    }
    s.finalize();
    return s;
  }

  void init_state(State& s) const {
    s.size = size_;
    s.pos.assign(2 * n_, 0);
    s.goal.assign(2 * n_, 0);
    s.action.assign(n_, 0);
    s.arrived.assign(n_, 0);
  }

  void reset(State& s, genmarl::CounterRng& rng) const {
    for (int i = 0; i < 2 * n_; ++i) {
      s.pos[i] = static_cast<std::int64_t>(rng.below(size_));
      s.goal[i] = static_cast<std::int64_t>(rng.below(size_));
    }
    std::fill(s.arrived.begin(), s.arrived.end(), 0);
    s.steps = 0;
  }

  void apply_actions(State& s, const std::int64_t* discrete, const float*, int) const {
    std::copy(discrete, discrete + n_, s.action.begin());
  }

  void step(State& s, genmarl::CounterRng&) const {
    static constexpr int kDr[5] = {0, -1, 1, 0, 0}, kDc[5] = {0, 0, 0, -1, 1};
    for (int i = 0; i < n_; ++i) {
      const bool was = at_goal(s, i);
      if (!was) {
        s.pos[2 * i] = std::clamp<std::int64_t>(s.pos[2 * i] + kDr[s.action[i]], 0, size_ - 1);
        s.pos[2 * i + 1] = std::clamp<std::int64_t>(s.pos[2 * i + 1] + kDc[s.action[i]], 0, size_ - 1);
      }
      s.arrived[i] = !was && at_goal(s, i);
    }
    s.steps += 1;
  }

  void rewards(State& s, double* out) const {
    for (int i = 0; i < n_; ++i) out[i] = -0.01 + (s.arrived[i] ? 1.0 : 0.0);
  }

  bool is_terminal(const State& s) const {
    for (int i = 0; i < n_; ++i) if (!at_goal(s, i)) return false;
    return true;
  }
  std::int64_t steps(const State& s) const { return s.steps; }

  void observe(const State& s, int i, float* out) const {
    const float inv = 1.0f / static_cast<float>(size_);
    out[0] = s.pos[2 * i] * inv;
    out[1] = s.pos[2 * i + 1] * inv;
    out[2] = s.goal[2 * i] * inv;
    out[3] = s.goal[2 * i + 1] * inv;
    int k = 4;
    for (int j = 0; j < n_; ++j) {
      if (j == i) continue;
      out[k++] = (s.pos[2 * j] - s.pos[2 * i]) * inv;
      out[k++] = (s.pos[2 * j + 1] - s.pos[2 * i + 1]) * inv;
    }
  }

  void observe(const State& s, int i, std::uint8_t* out) const {
    const std::size_t plane = static_cast<std::size_t>(size_) * size_;
    std::memset(out, 0, 3 * plane);
    auto cell = [&](const std::vector<std::int64_t>& v, int j) { return static_cast<std::size_t>(v[2 * j] * size_ + v[2 * j + 1]); };
    out[cell(s.pos, i)] = 1;
    out[plane + cell(s.goal, i)] = 1;
    for (int j = 0; j < n_; ++j) {
      if (j != i) out[2 * plane + cell(s.pos, j)] = 1;
    }
  }

  void action_mask(const State& s, int i, bool* out) const {
    const std::int64_t r = s.pos[2 * i], c = s.pos[2 * i + 1];
    out[0] = true;
    out[1] = r > 0;
    out[2] = r < size_ - 1;
    out[3] = c > 0;
    out[4] = c < size_ - 1;
  }

  void update_metrics(const State& s, double* acc) const {
    int at = 0;
    for (int i = 0; i < n_; ++i) at += at_goal(s, i) ? 1 : 0;
    acc[0] = static_cast<double>(at) / n_;
  }

  // State arrays: pos, goal [E, agents, 2] <i8, steps [E] <i8 (actions and arrivals are per step).
  static std::vector<genmarl::StateArray> export_states(const std::vector<State>& states) {
    const auto E = static_cast<std::int64_t>(states.size());
    const auto A = static_cast<std::int64_t>(states.front().action.size());
    genmarl::StateArrays out;
    auto* pos = out.add<std::int64_t>("pos", {E, A, 2});
    auto* goal = out.add<std::int64_t>("goal", {E, A, 2});
    auto* steps = out.add<std::int64_t>("steps", {E});
    for (std::int64_t e = 0; e < E; ++e) {
      std::copy(states[e].pos.begin(), states[e].pos.end(), pos + e * A * 2);
      std::copy(states[e].goal.begin(), states[e].goal.end(), goal + e * A * 2);
      steps[e] = states[e].steps;
    }
    return out.take();
  }

  // Names, dtypes and shapes were checked by genmarl; the values are checked here.
  static void import_states(std::vector<State>& states, const std::vector<genmarl::StateArray>& arrays) {
    const auto* pos = genmarl::state_array<std::int64_t>(arrays, "pos");
    const auto* goal = genmarl::state_array<std::int64_t>(arrays, "goal");
    const auto* steps = genmarl::state_array<std::int64_t>(arrays, "steps");
    const std::size_t A = states.front().action.size();
    for (std::size_t k = 0; k < states.size() * A * 2; ++k) {
      if (pos[k] < 0 || goal[k] < 0 || pos[k] >= states.front().size || goal[k] >= states.front().size) {
        throw InvalidArgument("set_state: positions must be on the grid");
      }
    }
    for (std::size_t e = 0; e < states.size(); ++e) {
      std::copy(pos + e * A * 2, pos + (e + 1) * A * 2, states[e].pos.begin());
      std::copy(goal + e * A * 2, goal + (e + 1) * A * 2, states[e].goal.begin());
      states[e].steps = steps[e];
    }
  }

 private:
  bool at_goal(const State& s, int i) const {
    return s.pos[2 * i] == s.goal[2 * i] && s.pos[2 * i + 1] == s.goal[2 * i + 1];
  }

  int n_, size_, max_steps_;
  bool image_;
};

}  // namespace custom
