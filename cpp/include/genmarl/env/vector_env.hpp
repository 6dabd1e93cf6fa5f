// VectorEnv<Scenario>: the batched machinery written once for every scenario.
//
// It owns num_envs scenario states, steps shards of them on a persistent
// thread pool, auto-resets finished envs in the same step (keeping the final
// observation), and writes results straight into caller-provided buffers.
// Random streams are keyed by (seed, env_index, episode_index), so results do
// not depend on num_threads. The hot loop neither allocates nor throws.
//
// The Scenario contract is stated (and checked) in env/scenario.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/core/thread_pool.hpp"
#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/scenario.hpp"

namespace genmarl {

template <class Scenario>
  requires genmarl::Scenario<Scenario>
class VectorEnv final : public BatchedEnv {
 public:
  using State = typename Scenario::State;

  VectorEnv(Scenario scenario, int num_envs, int num_threads, std::uint64_t seed)
      : scenario_(std::move(scenario)), spec_(scenario_.spec()) {
    if (num_envs <= 0) throw InvalidArgument("num_envs must be a positive integer, got " + std::to_string(num_envs));
    if (num_threads <= 0 || static_cast<std::size_t>(num_threads) > kMaxThreads) {
      throw InvalidArgument("num_threads must be an integer in [1, " + std::to_string(kMaxThreads) + "], got " +
                            std::to_string(num_threads));
    }
    num_envs_ = num_envs;
    num_agents_ = spec_.num_agents();
    if (num_agents_ > kMaxAgents) throw InvalidArgument("at most 64 agents are supported");
    for (const auto& g : spec_.groups) {
      if (!observes(g.obs_dtype)) {
        throw std::logic_error(spec_.name + ": group " + g.name + " has " + obs_dtype_name(g.obs_dtype) +
                               " observations but the scenario has no observe() for that type");
      }
    }
    states_.resize(num_envs);
    for (auto& s : states_) scenario_.init_state(s);
    rngs_.resize(num_envs);
    episode_.assign(num_envs, 0);
    num_metrics_ = static_cast<int>(spec_.metric_names.size());
    all_discrete_n_ = spec_.agents.empty() || spec_.agents.front().action.continuous ? 0 : spec_.agents.front().action.n;
    for (const auto& a : spec_.agents) {
      if (a.action.continuous || a.action.n != all_discrete_n_) all_discrete_n_ = 0;
    }
    for (const auto& a : spec_.agents) {
      const auto& g = spec_.groups[a.group_index];
      slots_.push_back({a.group_index, g.obs_dtype, a.action_mask,
                        static_cast<std::size_t>(g.num_agents) * g.obs_dim, static_cast<std::size_t>(a.index_in_group) * g.obs_dim,
                        static_cast<std::size_t>(g.num_agents) * g.action.n, static_cast<std::size_t>(a.index_in_group) * g.action.n});
    }
    metrics_.assign(static_cast<std::size_t>(num_envs) * num_metrics_, 0.0);
    returns_.assign(static_cast<std::size_t>(num_envs) * num_agents_, 0.0);
    discrete_.assign(static_cast<std::size_t>(num_envs) * num_agents_, 0);
    continuous_.assign(static_cast<std::size_t>(num_envs) * num_agents_ * spec_.max_action_dim, 0.0f);
    pool_ = std::make_unique<ForkSafePool>(static_cast<std::size_t>(std::min(num_threads, num_envs)));
    num_threads_ = num_threads;
    seed_ = seed;
    for (int e = 0; e < num_envs_; ++e) start_episode(e, 0);
  }

  const EnvSpec& spec() const override { return spec_; }
  int num_envs() const override { return num_envs_; }
  int num_threads() const override { return num_threads_; }
  std::uint64_t seed() const override { return seed_; }
  Scenario& scenario() { return scenario_; }
  std::vector<State>& states() { return states_; }

  std::int64_t* discrete_actions() override { return discrete_.data(); }
  float* continuous_actions() override { return continuous_.data(); }

  void check_actions() const override {
    if (all_discrete_n_ > 0) {  // every agent has Discrete(n) for one n: one pass over the buffer
      const std::int64_t n = all_discrete_n_;
      bool ok = true;
      for (const std::int64_t v : discrete_) ok &= v >= 0 && v < n;
      if (ok) return;
    }
    const int stride = spec_.max_action_dim;
    for (int e = 0; e < num_envs_; ++e) {
      for (int i = 0; i < num_agents_; ++i) {
        const auto& a = spec_.agents[i];
        if (a.action.continuous) {
          const float* v = continuous_.data() + (static_cast<std::size_t>(e) * num_agents_ + i) * stride;
          for (int k = 0; k < a.action.n; ++k) {
            if (!std::isfinite(v[k])) {
              throw InvalidArgument("action of agent '" + a.name + "' in env " + std::to_string(e) +
                                    " is not finite (" + std::to_string(v[k]) + "); continuous actions must be finite");
            }
          }
        } else {
          const std::int64_t v = discrete_[static_cast<std::size_t>(e) * num_agents_ + i];
          if (v < 0 || v >= a.action.n) {
            throw InvalidArgument("action of agent '" + a.name + "' in env " + std::to_string(e) + " is " +
                                  std::to_string(v) + "; expected an integer in [0, " + std::to_string(a.action.n) + ")");
          }
        }
      }
    }
  }

  void reset(std::uint64_t seed, const StepOutputs& out) override {
    CallGuard guard(busy_, "reset");
    seed_ = seed;
    run_shards([&](int e) {
      start_episode(e, 0);
      write_obs(e, out.obs);
      write_masks(e, out.action_mask);
    });
  }

  void reset_continue(const StepOutputs& out) override {
    CallGuard guard(busy_, "reset");
    run_shards([&](int e) {
      start_episode(e, episode_[e] + 1);
      write_obs(e, out.obs);
      write_masks(e, out.action_mask);
    });
  }

  void observe(const StepOutputs& out) override {
    CallGuard guard(busy_, "observe");
    run_shards([&](int e) {
      write_obs(e, out.obs);
      write_masks(e, out.action_mask);
    });
  }

  void step(const StepOutputs& out) override {
    CallGuard guard(busy_, "step");
    check_actions();
    run_shards([&](int e) {
      if constexpr (HasPrefetch<Scenario>) {
        if (e + 2 < num_envs_) scenario_.prefetch(states_[e + 2]);
      }
      step_one(e, out);
    });
  }

  std::vector<StateArray> get_state() const override {
    CallGuard guard(busy_, "get_state");
    return export_state();
  }

  void set_state(const std::vector<StateArray>& state) override {
    CallGuard guard(busy_, "set_state");
    import_state(state);
  }

  std::vector<StateArray> layout() const override {
    if constexpr (HasLayout<Scenario>) return scenario_.layout();
    else return {};
  }

  int num_curriculum_stages() const override {
    if constexpr (HasCurriculum<Scenario>) return scenario_.num_curriculum_stages();
    else return 1;
  }
  int curriculum_stage() const override {
    if constexpr (HasCurriculum<Scenario>) return scenario_.curriculum_stage();
    else return 0;
  }
  void set_curriculum_stage(int stage) override {
    CallGuard guard(busy_, "set_curriculum_stage");
    if constexpr (HasCurriculum<Scenario>) scenario_.set_curriculum_stage(stage);
  }

 private:
  std::vector<StateArray> export_state() const {
    std::vector<StateArray> arrays = Scenario::export_states(states_);
    arrays.push_back(make_array("episode", "<i8", {num_envs_}, episode_.data(), episode_.size() * 8));
    std::vector<std::uint64_t> counters(num_envs_);
    for (int e = 0; e < num_envs_; ++e) counters[e] = rngs_[e].counter();
    arrays.push_back(make_array("rng_counter", "<u8", {num_envs_}, counters.data(), counters.size() * 8));
    arrays.push_back(make_array("episode_return", "<f8", {num_envs_, num_agents_}, returns_.data(), returns_.size() * 8));
    if (num_metrics_ > 0) {
      arrays.push_back(make_array("episode_metrics", "<f8", {num_envs_, num_metrics_}, metrics_.data(), metrics_.size() * 8));
    }
    if constexpr (HasCurriculum<Scenario>) {
      const std::int64_t stage = scenario_.curriculum_stage();
      arrays.push_back(make_array("curriculum_stage", "<i8", {}, &stage, 8));
    }
    const std::uint64_t s = seed_;
    arrays.push_back(make_array("seed", "<u8", {}, &s, 8));
    return arrays;
  }

  void import_state(const std::vector<StateArray>& state) {
    std::vector<StateArray> expected = export_state();
    if (state.size() != expected.size()) {
      std::string names;
      for (const auto& a : expected) names += (names.empty() ? "" : ", ") + a.name;
      throw InvalidArgument("set_state expects exactly the arrays: " + names);
    }
    for (const auto& want : expected) {
      const StateArray* got = nullptr;
      for (const auto& a : state) if (a.name == want.name) got = &a;
      if (got == nullptr) throw InvalidArgument("set_state: missing array '" + want.name + "'");
      if (got->dtype != want.dtype || got->shape != want.shape || got->data.size() != want.data.size()) {
        throw InvalidArgument("set_state: array '" + want.name + "' must have dtype " + want.dtype + " and shape " +
                              shape_str(want.shape) + ", got dtype " + got->dtype + " and shape " + shape_str(got->shape));
      }
    }
    auto find = [&](const std::string& name) -> const StateArray& {
      for (const auto& a : state) if (a.name == name) return a;
      throw InvalidArgument("set_state: missing array '" + name + "'");
    };
    // Validate the scenario part into a copy first, so a bad array leaves the env unchanged.
    std::vector<State> next = states_;
    Scenario::import_states(next, state);
    const auto& ep = find("episode");
    const auto& ctr = find("rng_counter");
    const auto& ret = find("episode_return");
    const auto& sd = find("seed");
    const double* r = reinterpret_cast<const double*>(ret.data.data());
    for (std::size_t k = 0; k < ret.data.size() / 8; ++k) {
      if (!std::isfinite(r[k])) throw InvalidArgument("set_state: array 'episode_return' contains a non-finite value");
    }
    const StateArray* met = num_metrics_ > 0 ? &find("episode_metrics") : nullptr;
    if (met != nullptr) {
      const double* m = reinterpret_cast<const double*>(met->data.data());
      for (std::size_t k = 0; k < met->data.size() / 8; ++k) {
        if (!std::isfinite(m[k])) throw InvalidArgument("set_state: array 'episode_metrics' contains a non-finite value");
      }
    }
    for (int e = 0; e < num_envs_; ++e) {
      std::int64_t v;
      std::memcpy(&v, ep.data.data() + 8 * e, 8);
      if (v < 0) throw InvalidArgument("set_state: 'episode' must be non-negative");
    }
    std::int64_t stage = 0;
    if constexpr (HasCurriculum<Scenario>) {
      std::memcpy(&stage, find("curriculum_stage").data.data(), 8);
      if (stage < 0 || stage >= scenario_.num_curriculum_stages()) {
        throw InvalidArgument("set_state: 'curriculum_stage' must be in [0, " + std::to_string(scenario_.num_curriculum_stages()) + ")");
      }
    }
    states_ = std::move(next);
    if constexpr (HasCurriculum<Scenario>) scenario_.set_curriculum_stage(static_cast<int>(stage));
    std::memcpy(episode_.data(), ep.data.data(), ep.data.size());
    std::memcpy(returns_.data(), ret.data.data(), ret.data.size());
    if (met != nullptr) std::memcpy(metrics_.data(), met->data.data(), met->data.size());
    std::memcpy(&seed_, sd.data.data(), 8);
    for (int e = 0; e < num_envs_; ++e) {
      std::uint64_t c;
      std::memcpy(&c, ctr.data.data() + 8 * e, 8);
      rngs_[e] = CounterRng(seed_, static_cast<std::uint64_t>(e), static_cast<std::uint64_t>(episode_[e]), c);
    }
  }

  static std::string shape_str(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    if (shape.size() == 1) s += ",";
    return s + ")";
  }
  static StateArray make_array(std::string name, std::string dtype, std::vector<std::int64_t> shape, const void* src,
                               std::size_t bytes) {
    StateArray a{std::move(name), std::move(dtype), std::move(shape), std::vector<unsigned char>(bytes)};
    if (bytes) std::memcpy(a.data.data(), src, bytes);
    return a;
  }

  template <class Fn>
  void run_shards(Fn&& fn) {
    ThreadPool& pool = pool_->get();
    const int shards = static_cast<int>(pool.num_threads());
    const int per = (num_envs_ + shards - 1) / shards;
    pool.run(static_cast<std::size_t>(shards), [&](std::size_t shard) {
      const int begin = static_cast<int>(shard) * per;
      const int end = std::min(num_envs_, begin + per);
      for (int e = begin; e < end; ++e) fn(e);
    });
  }

  // Resets env e into the given episode: its random stream, state and running returns.
  void start_episode(int e, std::int64_t episode) {
    episode_[e] = episode;
    rngs_[e] = CounterRng(seed_, static_cast<std::uint64_t>(e), static_cast<std::uint64_t>(episode));
    scenario_.reset(states_[e], rngs_[e]);
    std::fill_n(returns_.data() + static_cast<std::size_t>(e) * num_agents_, num_agents_, 0.0);
    std::fill_n(metrics_.data() + static_cast<std::size_t>(e) * num_metrics_, num_metrics_, 0.0);
  }

  void write_masks(int e, const std::vector<bool*>& masks) const {
    if constexpr (HasActionMask<Scenario>) {
      if (masks.empty()) return;
      const State& s = states_[e];
      for (int i = 0; i < num_agents_; ++i) {
        const AgentSlot& a = slots_[i];
        bool* base = masks[a.group];
        if (!a.action_mask || base == nullptr) continue;
        scenario_.action_mask(s, i, base + static_cast<std::size_t>(e) * a.env_mask_size + a.mask_offset);
      }
    }
  }

  static bool observes(ObsDtype d) {
    return visit_obs_dtype(d, [](auto t) { return ObservesAs<Scenario, decltype(t)>; });
  }

  void write_obs(int e, const std::vector<void*>& obs) const {
    const State& s = states_[e];
    for (int i = 0; i < num_agents_; ++i) {
      const AgentSlot& a = slots_[i];
      const std::size_t offset = static_cast<std::size_t>(e) * a.env_obs_size + a.obs_offset;
      visit_obs_dtype(a.obs_dtype, [&](auto t) {  // checked at construction: the scenario observes every group's type
        using T = decltype(t);
        if constexpr (ObservesAs<Scenario, T>) scenario_.observe(s, i, static_cast<T*>(obs[a.group]) + offset);
      });
    }
  }

  void clear_obs_rows(int e, const std::vector<void*>& obs) const {
    for (std::size_t k = 0; k < spec_.groups.size(); ++k) {
      const auto& g = spec_.groups[k];
      const std::size_t row = static_cast<std::size_t>(g.num_agents) * g.obs_dim * obs_dtype_size(g.obs_dtype);
      std::memset(static_cast<unsigned char*>(obs[k]) + static_cast<std::size_t>(e) * row, 0, row);
    }
  }

  void step_one(int e, const StepOutputs& out) {
    State& s = states_[e];
    CounterRng& rng = rngs_[e];
    const std::size_t row = static_cast<std::size_t>(e) * num_agents_;
    scenario_.apply_actions(s, discrete_.data() + row, continuous_.data() + row * spec_.max_action_dim,
                            spec_.max_action_dim);
    scenario_.step(s, rng);
    double rew[kMaxAgents];
    scenario_.rewards(s, rew);
    if constexpr (HasMetrics<Scenario>) {
      scenario_.update_metrics(s, metrics_.data() + static_cast<std::size_t>(e) * num_metrics_);
    }
    // Gymnasium's rule: both may hold when the last step reaches a terminal state (then no
    // bootstrap value is needed). A family whose reference reports only the time limit in
    // that case says so in its is_terminal (MPE does).
    const bool terminated = scenario_.is_terminal(s);
    bool truncated = scenario_.steps(s) >= spec_.max_cycles;
    if constexpr (HasTruncation<Scenario>) truncated = truncated || scenario_.is_truncated(s);
    double* ret = returns_.data() + row;
    for (int i = 0; i < num_agents_; ++i) {
      out.rewards[row + i] = static_cast<float>(rew[i]);
      out.terminated[row + i] = terminated;
      out.truncated[row + i] = truncated;
      ret[i] += static_cast<double>(static_cast<float>(rew[i]));
    }
    const bool done = terminated || truncated;
    out.done[e] = done;
    if (!done) {
      write_obs(e, out.obs);
      write_masks(e, out.action_mask);
      if (out.clear_unfinished_final_obs) clear_obs_rows(e, out.final_obs);
      return;
    }
    write_obs(e, out.final_obs);
    for (int i = 0; i < num_agents_; ++i) out.final_return[row + i] = static_cast<float>(ret[i]);
    out.final_length[e] = static_cast<std::int32_t>(scenario_.steps(s));
    if constexpr (HasFinalMetrics<Scenario>) {
      scenario_.final_metrics(s, metrics_.data() + static_cast<std::size_t>(e) * num_metrics_);
    }
    if (out.final_metrics != nullptr && num_metrics_ > 0) {
      std::memcpy(out.final_metrics + static_cast<std::size_t>(e) * num_metrics_,
                  metrics_.data() + static_cast<std::size_t>(e) * num_metrics_, sizeof(double) * num_metrics_);
    }
    start_episode(e, episode_[e] + 1);
    write_obs(e, out.obs);
    write_masks(e, out.action_mask);
  }

 public:
  static constexpr int kMaxAgents = 64;

 private:
  Scenario scenario_;
  EnvSpec spec_;
  int num_envs_ = 0;
  int num_agents_ = 0;
  int num_threads_ = 1;
  std::uint64_t seed_ = 0;
  // Where each agent's observation and mask go, in elements of its group's arrays: a compact copy
  // of the spec for the per-env loops (an AgentSpec spans several cache lines).
  struct AgentSlot {
    int group;
    ObsDtype obs_dtype;
    bool action_mask;
    std::size_t env_obs_size, obs_offset;    // one env's row of the group; this agent's place in it
    std::size_t env_mask_size, mask_offset;
  };
  std::vector<AgentSlot> slots_;
  std::vector<State> states_;
  std::vector<CounterRng> rngs_;
  std::vector<std::int64_t> episode_;
  std::vector<double> returns_;
  int num_metrics_ = 0;
  std::int64_t all_discrete_n_ = 0;  // n when every agent's actions are Discrete(n), else 0
  std::vector<double> metrics_;  // [num_envs, num_metrics] the running episode's metrics
  std::vector<std::int64_t> discrete_;
  std::vector<float> continuous_;
  std::unique_ptr<ForkSafePool> pool_;
  mutable std::atomic<bool> busy_{false};
};

}  // namespace genmarl
