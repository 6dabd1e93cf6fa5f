// The scenario contract: what VectorEnv<S> needs from one environment, as C++20 concepts.
//
// A scenario is a value type holding its (validated) arguments; its State is one env's
// simulator state. VectorEnv owns num_envs States, steps them on its thread pool and writes
// the results into the caller's buffers, so a scenario never sees batching, threads,
// auto-reset or output layout. Families (MPE, LBF, RWARE, a user's own) meet the same contract;
// nothing in env/, the bindings or the Python wrapper names a family.
//
// Required (checked by `concept Scenario`):
//   using State = ...;
//   static constexpr const char* kName;                 // the registered name
//   static std::vector<ParamSpec> param_specs();        // constructor arguments with defaults
//   explicit S(const Params& resolved);                 // validates them (InvalidArgument)
//   EnvSpec spec() const;                               // agents with explicit groups, obs shapes,
//                                                       // action spaces and masks, metric names
//   void init_state(State&) const;                      // sizes a state once
//   void reset(State&, CounterRng&) const;              // a new episode (steps = 0)
//   void apply_actions(State&, const int64_t* discrete, const float* continuous, int stride) const;
//   void step(State&, CounterRng&) const;               // one step; increments steps
//   void rewards(State&, double* out) const;            // one per agent
//   bool is_terminal(const State&) const;
//   std::int64_t steps(const State&) const;
//   void observe(const State&, int agent, T* out) const;   // spec().agents[agent].obs_dim values of
//       the agent's obs_dtype: T = float (float32, the default), std::uint8_t or std::int32_t;
//       one overload per dtype the scenario's groups use (at least one)
//   static std::vector<StateArray> export_states(const std::vector<State>&);
//   static void import_states(std::vector<State>&, const std::vector<StateArray>&);  // validates values
//
// Optional hooks (detected; a scenario without them behaves as described):
//   void action_mask(const State&, int agent, bool* out) const;  // for agents with
//       AgentSpec::action_mask; out[k] says whether action k is valid now (default: no masks)
//   void update_metrics(const State&, double* acc) const;  // after every step; acc has one
//       slot per spec().metric_names, zeroed at reset; its values at episode end are
//       reported as the episode's metrics (default: no metrics)
//   void final_metrics(const State&, double* acc) const;  // once, on the episode's last state,
//       before acc is reported: for quantities of the final state only, so they cost nothing
//       per step (default: none)
//   int num_curriculum_stages() const; int curriculum_stage() const; void set_curriculum_stage(int);
//       (default: one stage)
//   bool is_truncated(const State&) const;  // an episode cut short before max_cycles (e.g. an
//       inactivity limit); reported as truncation (default: only the time limit truncates)
//   void prefetch(const State&) const;  // hints the state's memory into cache: called for the
//       env two ahead of the one being stepped, so a large batch's states (each in its own heap
//       blocks) do not stall every step on memory (default: none)
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/spec.hpp"

namespace genmarl {

// Whether a scenario writes observations of element type T.
template <class S, class T>
concept ObservesAs = requires(const S cs, const typename S::State& cst, int agent, T* out) {
  cs.observe(cst, agent, out);
};

template <class S>
concept Scenario = std::copy_constructible<S> && std::constructible_from<S, const Params&> &&
    (ObservesAs<S, float> || ObservesAs<S, std::uint8_t> || ObservesAs<S, std::int32_t>) &&
    requires(const S cs, typename S::State& st, const typename S::State& cst, CounterRng& rng,
             const std::int64_t* discrete, const float* continuous, int stride, double* values,
             std::vector<typename S::State>& states, const std::vector<StateArray>& arrays) {
      typename S::State;
      requires std::copyable<typename S::State>;
      { S::kName } -> std::convertible_to<std::string_view>;
      { S::param_specs() } -> std::same_as<std::vector<ParamSpec>>;
      { cs.spec() } -> std::same_as<EnvSpec>;
      cs.init_state(st);
      cs.reset(st, rng);
      cs.apply_actions(st, discrete, continuous, stride);
      cs.step(st, rng);
      cs.rewards(st, values);
      { cs.is_terminal(cst) } -> std::convertible_to<bool>;
      { cs.steps(cst) } -> std::convertible_to<std::int64_t>;
      { S::export_states(states) } -> std::same_as<std::vector<StateArray>>;
      S::import_states(states, arrays);
    };

template <class S>
concept HasActionMask = requires(const S cs, const typename S::State& cst, int agent, bool* out) {
  cs.action_mask(cst, agent, out);
};

template <class S>
concept HasMetrics = requires(const S cs, const typename S::State& cst, double* acc) {
  cs.update_metrics(cst, acc);
};

template <class S>
concept HasFinalMetrics = requires(const S cs, const typename S::State& cst, double* acc) {
  cs.final_metrics(cst, acc);
};

template <class S>
concept HasTruncation = requires(const S cs, const typename S::State& cst) {
  { cs.is_truncated(cst) } -> std::convertible_to<bool>;
};

// The scenario's fixed arrays (grid size, goal cells, walls): what renderers and tools need beyond
// the state, constant for the scenario's life, so they are not part of get_state/set_state.
template <class S>
concept HasLayout = requires(const S cs) {
  { cs.layout() } -> std::same_as<std::vector<StateArray>>;
};

template <class S>
concept HasPrefetch = requires(const S cs, const typename S::State& cst) { cs.prefetch(cst); };

template <class S>
concept HasCurriculum = requires(S s, const S cs, int stage) {
  { cs.num_curriculum_stages() } -> std::convertible_to<int>;
  { cs.curriculum_stage() } -> std::convertible_to<int>;
  s.set_curriculum_stage(stage);
};

}  // namespace genmarl
