// Test helper: fills an env's action buffers with uniformly random valid actions.
#pragma once

#include <cstdint>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/batched_env.hpp"

namespace genmarl::testing {

inline void random_actions(BatchedEnv& env, CounterRng& rng) {
  const auto& spec = env.spec();
  const int E = env.num_envs(), A = spec.num_agents(), S = spec.max_action_dim;
  for (int e = 0; e < E; ++e) {
    for (int i = 0; i < A; ++i) {
      const auto& a = spec.agents[i].action;
      if (a.continuous) {
        for (int k = 0; k < a.n; ++k) env.continuous_actions()[(e * A + i) * S + k] = static_cast<float>(rng.uniform());
      } else {
        env.discrete_actions()[e * A + i] = static_cast<std::int64_t>(rng.below(a.n));
      }
    }
  }
}

}  // namespace genmarl::testing
