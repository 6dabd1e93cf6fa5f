// genmarl::torch::Policy -- a trained policy (MAPPO, IPPO or the generative agent) exported by
// `genmarl export`, acting on batches of grouped observations from C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/output_buffers.hpp"
#include "genmarl/torch/package.hpp"

namespace genmarl::torch {

class Policy {
 public:
  // Loads EXPORT_DIR/policy.pt2. `seed` keys the random draws of stochastic actions.
  explicit Policy(const std::string& export_dir, std::uint64_t seed = 0);

  const ExportInfo& info() const { return info_; }
  const Package& package() const { return package_; }
  bool recurrent() const { return !state_index_.empty(); }

  // Actions for grouped observations: obs[g] float32 [B, n_g, obs_dim_g] per agent group, in
  // the export's group order. Returns per group int64 [B, n_g] (discrete) or float32
  // [B, n_g, act_dim] (continuous, unclipped: clip to the action box before stepping an env,
  // as write_actions does). The recurrent state (if the policy has one) is kept per env row; it
  // restarts where `reset` [B] bool is true, on the first call, and whenever B changes.
  // `masks`: per group bool [B, n_g, action_n] (the env's action masks, OutputBuffers::action_mask),
  // or empty; a policy trained on an env that reports valid actions never picks an invalid one
  // where a mask is given (an undefined tensor, or no masks at all, counts every action as valid).
  // Policies without masked groups ignore them.
  std::vector<at::Tensor> act(const std::vector<at::Tensor>& obs, bool deterministic, const at::Tensor& reset = {},
                              const std::vector<at::Tensor>& masks = {});
  // Whether group g's graph takes the env's action mask.
  bool takes_mask(std::size_t group) const { return group < mask_index_.size() && mask_index_[group] >= 0; }
  // The logits (discrete) or means (continuous) per group of the last act().
  const std::vector<at::Tensor>& last_logits() const { return logits_; }
  // Every env starts fresh at the next act().
  void reset_state();

  // The engine loop's step: acts on the observations in `buffers` (written by env.reset/step),
  // restarting the state where buffers.done is set when `after_step`, and writes the actions into
  // the env's action buffers (continuous actions clipped to the box); the env's action masks in
  // `buffers` reach the policy. Checks the env once.
  void act_in(BatchedEnv& env, const OutputBuffers& buffers, bool deterministic, bool after_step);

 private:
  Package package_;
  ExportInfo info_;
  std::uint64_t seed_;
  std::uint64_t calls_ = 0;
  std::int64_t batch_ = -1;
  std::vector<int> obs_index_, state_index_, noise_index_, out_state_index_, action_index_, logits_index_;
  std::vector<int> mask_index_;  // per group: the graph's mask/<g> input, or -1
  std::vector<bool> noise_normal_;
  int reset_index_ = -1, det_index_ = -1;
  std::vector<at::Tensor> state_;
  at::Tensor fresh_;
  std::vector<at::Tensor> logits_;
  const EnvSpec* checked_env_ = nullptr;
};

// Copies `actions` (as Policy::act returns them) into env's action buffers, clipping continuous
// actions to each group's box. Throws ExportError when shapes do not fit the env.
void write_actions(BatchedEnv& env, const std::vector<at::Tensor>& actions);

// Grouped observation tensors (CPU, float32) viewing `buffers.obs` without copying (integer
// observations, see ObsDtype, are converted: a float32 copy made at the call).
std::vector<at::Tensor> observation_views(const BatchedEnv& env, const OutputBuffers& buffers);

// Per group bool [num_envs, n_g, action_n] views of `buffers.action_mask` (undefined tensors for
// groups without masks), what Policy::act takes.
std::vector<at::Tensor> action_mask_views(const BatchedEnv& env, const OutputBuffers& buffers);

}  // namespace genmarl::torch
