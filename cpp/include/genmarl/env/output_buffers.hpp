// OutputBuffers: owned storage for the results of a BatchedEnv, for C++ callers.
// (The Python bindings hand numpy arrays to StepOutputs instead.)
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "genmarl/env/batched_env.hpp"

namespace genmarl {

// One group's observations, [num_envs, agents_in_group, obs_dim] of the group's obs_dtype:
// `view<float>()` for float32 groups (the default), `view<std::uint8_t>()` / `view<std::int32_t>()`
// for uint8 / int32 ones.
// Asking for another type than the group's throws std::logic_error.
class ObsArray {
 public:
  ObsArray(ObsDtype dtype, std::size_t count)
      : dtype_(dtype), count_(count), words_((count * obs_dtype_size(dtype) + 7) / 8) {}

  ObsDtype dtype() const { return dtype_; }
  std::size_t size() const { return count_; }  // elements
  void* raw() { return words_.data(); }
  const void* raw() const { return words_.data(); }

  template <class T>
  std::span<T> view() {
    check<T>();
    return {reinterpret_cast<T*>(words_.data()), count_};
  }
  template <class T>
  std::span<const T> view() const {
    check<T>();
    return {reinterpret_cast<const T*>(words_.data()), count_};
  }
  // Same dtype and equal values (padding beyond the last element is never written).
  bool operator==(const ObsArray& o) const {
    return dtype_ == o.dtype_ && count_ == o.count_ &&
           std::memcmp(words_.data(), o.words_.data(), count_ * obs_dtype_size(dtype_)) == 0;
  }

 private:
  template <class T>
  void check() const {
    if (obs_dtype_of<T>() != dtype_) {
      throw std::logic_error(std::string("ObsArray holds ") + obs_dtype_name(dtype_) + " observations, not " +
                             obs_dtype_name(obs_dtype_of<T>()));
    }
  }
  ObsDtype dtype_;
  std::size_t count_;
  std::vector<std::uint64_t> words_;  // 8-byte aligned storage, zeroed
};

struct OutputBuffers {
  std::vector<ObsArray> obs;        // per group [num_envs, agents_in_group, obs_dim]
  std::vector<ObsArray> final_obs;  // per group, rows valid where done
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
      obs.emplace_back(g.obs_dtype, E * g.num_agents * g.obs_dim);
      final_obs.emplace_back(g.obs_dtype, E * g.num_agents * g.obs_dim);
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
    for (auto& v : obs) out.obs.push_back(v.raw());
    for (auto& v : final_obs) out.final_obs.push_back(v.raw());
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
