// OutputBuffers: owned storage for the results of a BatchedEnv, for C++ callers.
// (The Python bindings hand numpy arrays to StepOutputs instead.)
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "genmarl/env/batched_env.hpp"

namespace genmarl {

struct OutputBuffers {
  std::vector<std::vector<float>> obs;        // per group [num_envs, agents_in_group, obs_dim]
  std::vector<std::vector<float>> final_obs;  // per group, rows valid where done
  std::vector<float> rewards;                 // [num_envs, num_agents]
  std::vector<float> final_return;            // [num_envs, num_agents]
  std::unique_ptr<bool[]> terminated, truncated;  // [num_envs, num_agents]
  std::unique_ptr<bool[]> done;                   // [num_envs]
  std::vector<std::int32_t> final_length;         // [num_envs]
  std::vector<std::unique_ptr<bool[]>> action_mask;  // per group [num_envs, agents_in_group, action_n]
  std::vector<double> final_metrics;              // [num_envs, num_metrics]
  StepOutputs out;                                // pointers into the above, for reset()/step()

  explicit OutputBuffers(const BatchedEnv& env) {
    const std::size_t E = static_cast<std::size_t>(env.num_envs());
    const std::size_t A = static_cast<std::size_t>(env.spec().num_agents());
    for (const auto& g : env.spec().groups) {
      obs.emplace_back(E * g.num_agents * g.obs_dim);
      final_obs.emplace_back(E * g.num_agents * g.obs_dim);
      action_mask.push_back(g.action_mask ? std::make_unique<bool[]>(E * g.num_agents * g.action.n) : nullptr);
      out.action_mask.push_back(action_mask.back().get());
    }
    final_metrics.resize(E * env.spec().metric_names.size());
    out.final_metrics = final_metrics.data();
    rewards.resize(E * A);
    final_return.resize(E * A);
    terminated = std::make_unique<bool[]>(E * A);
    truncated = std::make_unique<bool[]>(E * A);
    done = std::make_unique<bool[]>(E);
    final_length.resize(E);
    for (auto& v : obs) out.obs.push_back(v.data());
    for (auto& v : final_obs) out.final_obs.push_back(v.data());
    out.rewards = rewards.data();
    out.terminated = terminated.get();
    out.truncated = truncated.get();
    out.done = done.get();
    out.final_return = final_return.data();
    out.final_length = final_length.data();
  }
  OutputBuffers(const OutputBuffers&) = delete;
  OutputBuffers& operator=(const OutputBuffers&) = delete;
};

}  // namespace genmarl
