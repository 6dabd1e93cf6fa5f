#include "genmarl/torch/policy.hpp"

#include <algorithm>
#include <filesystem>

#include <ATen/ATen.h>

namespace genmarl::torch {
namespace {

std::string policy_path(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    throw ExportError(dir + " is not a directory; expected an export directory written by genmarl export");
  }
  return (std::filesystem::path(dir) / "policy.pt2").string();
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

Policy::Policy(const std::string& export_dir, std::uint64_t seed)
    : package_(policy_path(export_dir), "model", "policy"),
      info_(ExportInfo::from_metadata(package_.metadata(), package_.path())),
      seed_(seed) {
  std::map<std::string, std::string> noise_kind;
  auto it = package_.metadata().find("genmarl.noise");
  if (it != package_.metadata().end()) {
    for (const auto& item : split_list(it->second, ';')) {
      auto eq = item.find('=');
      if (eq != std::string::npos) noise_kind[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  for (const auto& g : info_.groups) {
    int i = package_.input_index("obs/" + g.name);
    int a = package_.output_index("action/" + g.name);
    int l = package_.output_index("logits/" + g.name);
    if (i < 0 || a < 0 || l < 0) throw ExportError(package_.path() + ": the policy graph lacks obs/action/logits for group '" + g.name + "'");
    obs_index_.push_back(i);
    action_index_.push_back(a);
    logits_index_.push_back(l);
    mask_index_.push_back(package_.input_index("mask/" + g.name));
  }
  const auto& ins = package_.inputs();
  for (std::size_t i = 0; i < ins.size(); ++i) {
    const auto& name = ins[i].name;
    if (starts_with(name, "state/")) {
      int o = package_.output_index(name);
      if (o < 0) throw ExportError(package_.path() + ": the policy graph takes " + name + " but does not return it");
      state_index_.push_back(static_cast<int>(i));
      out_state_index_.push_back(o);
    } else if (starts_with(name, "noise/")) {
      auto k = noise_kind.find(name);
      if (k == noise_kind.end() || (k->second != "uniform" && k->second != "normal")) {
        throw ExportError(package_.path() + ": no uniform/normal kind for the input " + name);
      }
      noise_index_.push_back(static_cast<int>(i));
      noise_normal_.push_back(k->second == "normal");
    } else if (name == "reset") {
      reset_index_ = static_cast<int>(i);
    } else if (name == "deterministic") {
      det_index_ = static_cast<int>(i);
    } else if (!starts_with(name, "obs/") && !starts_with(name, "mask/")) {
      throw ExportError(package_.path() + ": unknown policy input " + name);
    }
  }
  if (reset_index_ < 0 || det_index_ < 0) throw ExportError(package_.path() + ": the policy graph lacks reset/deterministic inputs");
}

void Policy::reset_state() { batch_ = -1; }

std::vector<at::Tensor> Policy::act(const std::vector<at::Tensor>& obs, bool deterministic, const at::Tensor& reset,
                                    const std::vector<at::Tensor>& masks) {
  const auto& ins = package_.inputs();
  if (obs.size() != info_.groups.size()) {
    throw ExportError("Policy::act takes one observation tensor per agent group (" + std::to_string(info_.groups.size()) + "), got " +
                      std::to_string(obs.size()));
  }
  if (!obs[0].defined() || obs[0].dim() < 1) throw ExportError("Policy::act: observations must be [B, n, obs_dim] tensors");
  const std::int64_t B = obs[0].size(0);
  const auto cpu_bool = at::TensorOptions().dtype(at::kBool);
  if (B != batch_) {
    batch_ = B;
    state_.clear();
    for (int idx : state_index_) {
      std::vector<std::int64_t> shape = ins[idx].shape;
      shape[0] = B;
      state_.push_back(at::zeros(shape, at::TensorOptions().dtype(at::kFloat).device(package_.device())));
    }
    fresh_ = at::ones({B}, cpu_bool);
  }
  at::Tensor r = merge_reset(fresh_, reset, "Policy::act");
  std::vector<at::Tensor> inputs(ins.size());
  for (std::size_t g = 0; g < obs_index_.size(); ++g) inputs[obs_index_[g]] = obs[g];
  for (std::size_t s = 0; s < state_index_.size(); ++s) inputs[state_index_[s]] = state_[s];
  for (std::size_t k = 0; k < noise_index_.size(); ++k) {
    std::vector<std::int64_t> shape = ins[noise_index_[k]].shape;
    shape[0] = B;
    inputs[noise_index_[k]] = counter_noise(shape, noise_normal_[k], seed_, calls_ * 64 + k);
  }
  if (!masks.empty() && masks.size() != obs_index_.size()) {
    throw ExportError("Policy::act takes one action mask per agent group (" + std::to_string(obs_index_.size()) + ") or none, got " +
                      std::to_string(masks.size()));
  }
  for (std::size_t g = 0; g < mask_index_.size(); ++g) {
    const int idx = mask_index_[g];
    if (idx < 0) continue;
    if (!masks.empty() && masks[g].defined()) {
      inputs[idx] = masks[g];  // Package::run checks its shape and dtype
    } else {
      std::vector<std::int64_t> shape = ins[idx].shape;
      shape[0] = B;
      inputs[idx] = at::ones(shape, at::TensorOptions().dtype(at::kBool).device(package_.device()));
    }
  }
  inputs[reset_index_] = r;
  inputs[det_index_] = at::scalar_tensor(deterministic, cpu_bool);
  auto out = package_.run(std::move(inputs));  // validates every shape and dtype
  ++calls_;
  for (std::size_t s = 0; s < state_index_.size(); ++s) state_[s] = out[out_state_index_[s]];
  fresh_ = at::zeros({B}, cpu_bool);
  std::vector<at::Tensor> actions;
  logits_.clear();
  for (std::size_t g = 0; g < action_index_.size(); ++g) {
    actions.push_back(out[action_index_[g]]);
    logits_.push_back(out[logits_index_[g]]);
  }
  return actions;
}

std::vector<at::Tensor> observation_views(const BatchedEnv& env, const OutputBuffers& buffers) {
  std::vector<at::Tensor> obs;
  const auto& groups = env.spec().groups;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& o = buffers.obs[g];
    const at::ScalarType type = visit_obs_dtype(o.dtype(), [](auto t) { return c10::CppTypeToScalarType<decltype(t)>::value; });
    at::Tensor t = at::from_blob(const_cast<void*>(o.raw()), {env.num_envs(), groups[g].num_agents, groups[g].obs_dim},
                                 at::TensorOptions().dtype(type));
    obs.push_back(type == at::kFloat ? t : t.to(at::kFloat));  // integer observations: a float32 copy
  }
  return obs;
}

std::vector<at::Tensor> action_mask_views(const BatchedEnv& env, const OutputBuffers& buffers) {
  std::vector<at::Tensor> masks;
  const auto& groups = env.spec().groups;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    bool* m = g < buffers.action_mask.size() ? buffers.action_mask[g].get() : nullptr;
    if (m == nullptr) {
      masks.emplace_back();
      continue;
    }
    masks.push_back(at::from_blob(m, {env.num_envs(), groups[g].num_agents, groups[g].action.n}, at::TensorOptions().dtype(at::kBool)));
  }
  return masks;
}

void write_actions(BatchedEnv& env, const std::vector<at::Tensor>& actions) {
  const auto& spec = env.spec();
  if (actions.size() != spec.groups.size()) throw ExportError("write_actions: one action tensor per agent group expected");
  const std::int64_t E = env.num_envs(), A = spec.num_agents(), D = spec.max_action_dim;
  for (std::size_t gi = 0; gi < spec.groups.size(); ++gi) {
    const auto& g = spec.groups[gi];
    at::Tensor a = actions[gi].to(at::kCPU).contiguous();
    const bool ok = g.action.continuous ? (a.scalar_type() == at::kFloat && a.dim() == 3 && a.size(0) == E && a.size(1) == g.num_agents &&
                                           a.size(2) == g.action.n)
                                        : (a.scalar_type() == at::kLong && a.dim() == 2 && a.size(0) == E && a.size(1) == g.num_agents);
    if (!ok) throw ExportError("write_actions: the actions of group '" + g.name + "' do not fit the env's batch and action space");
    for (std::int64_t e = 0; e < E; ++e) {
      for (int i = 0; i < g.num_agents; ++i) {
        const std::int64_t agent = e * A + g.first_agent + i;
        if (g.action.continuous) {
          const float* src = a.data_ptr<float>() + (e * g.num_agents + i) * g.action.n;
          for (int k = 0; k < g.action.n; ++k) env.continuous_actions()[agent * D + k] = std::clamp(src[k], g.action.low, g.action.high);
        } else {
          env.discrete_actions()[agent] = a.data_ptr<std::int64_t>()[e * g.num_agents + i];
        }
      }
    }
  }
}

void Policy::act_in(BatchedEnv& env, const OutputBuffers& buffers, bool deterministic, bool after_step) {
  if (checked_env_ != &env.spec()) {
    info_.check_env(env.spec());
    checked_env_ = &env.spec();
  }
  at::Tensor reset;
  if (after_step) {
    reset = at::from_blob(buffers.done.get(), {env.num_envs()}, at::TensorOptions().dtype(at::kBool)).clone();
  }
  write_actions(env, act(observation_views(env, buffers), deterministic, reset, action_mask_views(env, buffers)));
}

}  // namespace genmarl::torch
