#include "genmarl/torch/world_model.hpp"

#include <filesystem>
#include <tuple>

#include <ATen/ATen.h>

#include "genmarl/envs/registry.hpp"
#include "genmarl/sampling/categorical.hpp"
#include "genmarl/torch/policy.hpp"

namespace genmarl::torch {
namespace {

constexpr double kMasked = -1e9;

std::string wm_path(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    throw ExportError(dir + " is not a directory; expected an export directory written by genmarl export");
  }
  auto path = std::filesystem::path(dir) / "world_model.pt2";
  if (!std::filesystem::exists(path)) {
    throw ExportError(dir + " holds no world_model.pt2: only exports of generative (genrl) agents have a world model");
  }
  return path.string();
}

// The planning horizon and candidate mix of a planner: the given ones, or the export's (horizon 0,
// unimix < 0); throws for K < 1, a negative horizon or unimix >= 1.
std::pair<int, double> plan_choices(const PlanSettings& ps, int K, int horizon, double unimix) {
  if (K < 1) throw ExportError("the number of plan candidates K must be >= 1, got " + std::to_string(K));
  if (horizon < 0) throw ExportError("the plan horizon must be >= 0 (0: the export's), got " + std::to_string(horizon));
  const int H = horizon > 0 ? horizon : (ps.plan_horizon > 0 ? ps.plan_horizon : ps.horizon);
  const double u = unimix >= 0 ? unimix : ps.plan_unimix;
  if (u >= 1.0) throw ExportError("unimix must be in [0, 1)");
  return {H, u};
}

}  // namespace

WorldModel::WorldModel(const std::string& export_dir)
    : filter_(wm_path(export_dir), "filter", "world_model.filter"),
      actor_(filter_.path(), "actor", "world_model.actor"),
      step_(filter_.path(), "step", "world_model.step"),
      value_(filter_.path(), "value", "world_model.value"),
      behaviour_(filter_.path(), "behaviour", "world_model.behaviour") {
  info_ = ExportInfo::from_metadata(filter_.metadata(), filter_.path());
  N_ = static_cast<int>(filter_.meta_int("genmarl.wm.num_agents"));
  A_ = static_cast<int>(filter_.meta_int("genmarl.wm.num_actions"));
  deter_ = static_cast<int>(filter_.meta_int("genmarl.wm.deter_size"));
  stoch_ = static_cast<int>(filter_.meta_int("genmarl.wm.stoch_size"));
  classes_ = static_cast<int>(filter_.meta_int("genmarl.wm.classes"));
  plan_.gamma = filter_.meta_double("genmarl.plan.gamma");
  plan_.lambda = filter_.meta_double("genmarl.plan.lambda");
  plan_.horizon = static_cast<int>(filter_.meta_int("genmarl.plan.horizon"));
  plan_.plan = static_cast<int>(filter_.meta_int("genmarl.plan.plan"));
  plan_.plan_horizon = static_cast<int>(filter_.meta_int("genmarl.plan.plan_horizon"));
  plan_.plan_unimix = filter_.meta_double("genmarl.plan.plan_unimix");
  plan_.latent_mode = filter_.meta("genmarl.plan.plan_latents") == "mode";
  const auto& md = filter_.metadata();
  if (auto it = md.find("genmarl.plan.reward_from"); it != md.end()) plan_.reward_from = it->second;  // older exports: latent
  if (plan_.reward_from == "obs") {
    obs_reward_ = std::make_unique<Package>(filter_.path(), "obs_reward", "world_model.obs_reward");
  } else if (plan_.reward_from != "latent") {
    throw ExportError(filter_.path() + ": unknown reward source '" + plan_.reward_from + "' (expected latent or obs)");
  }
  if (N_ != info_.num_agents() || A_ < 1 || deter_ < 1 || stoch_ < 1 || classes_ < 1) {
    throw ExportError(filter_.path() + ": inconsistent world-model sizes in the metadata");
  }
  valid_ = at::zeros({N_, A_}, at::TensorOptions().dtype(at::kBool));
  int agent = 0;
  for (const auto& g : info_.groups) {
    for (int i = 0; i < g.num_agents; ++i, ++agent) valid_[agent].slice(0, 0, g.act_n).fill_(true);
  }
  valid_ = valid_.to(device());
}

std::pair<at::Tensor, at::Tensor> WorldModel::filter(const std::vector<at::Tensor>& obs, const at::Tensor& h, const at::Tensor& reset) const {
  std::vector<at::Tensor> in(obs.begin(), obs.end());
  in.push_back(h);
  in.push_back(reset);
  auto out = filter_.run(std::move(in));
  return {out[0], out[1]};
}

at::Tensor WorldModel::actor(const at::Tensor& h, const at::Tensor& z) const { return actor_.run({h, z})[0]; }

WorldModel::StepOut WorldModel::step(const at::Tensor& h, const at::Tensor& z, const at::Tensor& action) const {
  auto out = step_.run({h, z, action});
  return {out[0], out[1], out[2], out[3]};
}

at::Tensor WorldModel::value(const at::Tensor& h, const at::Tensor& z) const { return value_.run({h, z})[0]; }

at::Tensor WorldModel::behaviour(const at::Tensor& h, const at::Tensor& z) const { return behaviour_.run({h, z})[0]; }

WorldModel::ObsRewardOut WorldModel::obs_reward(const std::vector<at::Tensor>& prev_obs, const at::Tensor& h, const at::Tensor& z) const {
  if (!obs_reward_) throw ExportError("obs_reward: this export's agent reads rewards from its world model's state (reward_from='latent')");
  if (prev_obs.size() != info_.groups.size()) {
    throw ExportError("obs_reward: expected observations of " + std::to_string(info_.groups.size()) + " agent group(s), got " +
                      std::to_string(prev_obs.size()));
  }
  std::vector<at::Tensor> in(prev_obs.begin(), prev_obs.end());
  in.push_back(h);
  in.push_back(z);
  auto out = obs_reward_->run(std::move(in));
  at::Tensor reward = out.back();
  out.pop_back();
  return {std::move(out), reward};
}

at::Tensor WorldModel::zero_state(std::int64_t batch) const {
  return at::zeros({batch, N_, deter_}, at::TensorOptions().dtype(at::kFloat).device(device()));
}

at::Tensor CategoricalSampler::draw(const at::Tensor& logits, bool mode) {
  if (mode) return logits.argmax(-1);
  const std::int64_t k = logits.size(-1);
  if (logits.device().is_cpu()) {
    at::Tensor x = logits.to(at::kFloat).contiguous();
    const std::int64_t rows = x.numel() / k;
    auto sizes = x.sizes().vec();
    sizes.pop_back();
    at::Tensor idx = at::empty(sizes, at::TensorOptions().dtype(at::kLong));
    sampling::sample(x.data_ptr<float>(), rows, k, seed_, stream_++, 0.0f, idx.data_ptr<std::int64_t>(), nullptr, nullptr);
    return idx;
  }
  auto sizes = logits.sizes().vec();
  sizes.pop_back();
  return at::multinomial(logits.softmax(-1).reshape({-1, k}), 1).reshape(sizes);
}

at::Tensor CategoricalSampler::draw_one_hot(const at::Tensor& logits, bool mode) {
  const std::int64_t k = logits.size(-1);
  if (mode || !logits.device().is_cpu()) return at::one_hot(draw(logits, mode), k).to(at::kFloat);
  at::Tensor x = logits.to(at::kFloat).contiguous();
  at::Tensor out = at::empty(x.sizes(), at::TensorOptions().dtype(at::kFloat));
  at::Tensor idx = at::empty({x.numel() / k}, at::TensorOptions().dtype(at::kLong));
  sampling::sample(x.data_ptr<float>(), x.numel() / k, k, seed_, stream_++, 0.0f, idx.data_ptr<std::int64_t>(), nullptr,
                   out.data_ptr<float>());
  return out;
}

at::Tensor latent_one_hot(const at::Tensor& index, int classes) {
  return at::one_hot(index, classes).to(at::kFloat).flatten(-2);
}

at::Tensor mix_valid(const at::Tensor& logits, const at::Tensor& valid, double unimix) {
  if (unimix <= 0) return logits;
  at::Tensor v = valid.to(logits.scalar_type());
  at::Tensor probs = (1.0 - unimix) * logits.softmax(-1) + unimix * v / v.sum(-1, true);
  return at::where(valid, probs.clamp_min(1e-30).log(), at::full_like(logits, kMasked));
}

at::Tensor lambda_returns(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& discounts, double lambda) {
  const std::int64_t H = rewards.size(0);
  if (values.size(0) != H + 1 || !discounts.sizes().equals(rewards.sizes())) {
    throw ExportError("lambda_returns needs rewards/discounts [H, ...] and values [H + 1, ...]");
  }
  std::vector<at::Tensor> out(H);
  at::Tensor ret = values[H];
  for (std::int64_t t = H - 1; t >= 0; --t) {
    ret = rewards[t] + discounts[t] * ((1.0 - lambda) * values[t + 1] + lambda * ret);
    out[t] = ret;
  }
  return at::stack(out, 0);
}

Imagined ImaginationRollout::rollout(const at::Tensor& h0, const at::Tensor& z0, int horizon, const ImagineOptions& options) {
  if (horizon < 1) throw ExportError("the imagination horizon must be >= 1, got " + std::to_string(horizon));
  const WorldModel& m = *model_;
  const bool obs_rewards = m.rewards_from_obs();
  if (obs_rewards && options.start_obs.empty()) {
    throw ExportError("this export's agent reads imagined rewards from predicted observations (reward_from='obs'): pass the start "
                      "states' observations in ImagineOptions::start_obs");
  }
  std::vector<at::Tensor> obs = options.start_obs;
  at::Tensor h = h0, z = z0;
  std::vector<at::Tensor> hs, zs, acts, rews, conts, values;
  for (int t = 0; t <= horizon; ++t) {
    if (options.keep_states) {
      hs.push_back(h);
      zs.push_back(z);
    } else {
      values.push_back(m.value(h, z));
    }
    if (t == horizon) break;
    at::Tensor logits = mix_valid(m.actor(h, z), m.valid_actions(), options.action_unimix);
    at::Tensor a = sampler_.draw(logits, options.greedy_actions).to(h.device());
    auto s = m.step(h, z, a);
    z = sampler_.draw_one_hot(s.prior, options.latent_mode).to(h.device()).flatten(-2);
    h = s.h_next;
    acts.push_back(a);
    if (obs_rewards) {
      auto o = m.obs_reward(obs, h, z);
      obs = std::move(o.obs);
      rews.push_back(o.reward);
    } else {
      rews.push_back(s.reward);
    }
    conts.push_back(s.cont);
  }
  Imagined out;
  out.actions = at::stack(acts);
  out.rewards = at::stack(rews);
  out.cont = at::stack(conts);
  if (options.keep_states) {
    out.h = at::stack(hs);
    out.z = at::stack(zs);
    const auto S = h0.size(0);
    out.values = m.value(out.h.flatten(0, 1), out.z.flatten(0, 1)).view({horizon + 1, S, m.num_agents()});
  } else {
    out.values = at::stack(values);
  }
  return out;
}

Planner::Planner(std::shared_ptr<const WorldModel> model, int K, int horizon, std::uint64_t seed, double unimix, int latent_mode)
    : model_(std::move(model)), imagine_(model_, seed), K_(K) {
  const auto& ps = model_->plan_settings();
  std::tie(H_, unimix_) = plan_choices(ps, K, horizon, unimix);
  latent_mode_ = latent_mode >= 0 ? latent_mode != 0 : ps.latent_mode;
}

at::Tensor Planner::plan(const at::Tensor& h, const at::Tensor& z, const std::vector<at::Tensor>& obs) {
  const WorldModel& m = *model_;
  const std::int64_t E = h.size(0), N = m.num_agents();
  ImagineOptions opt;
  opt.action_unimix = unimix_;
  opt.latent_mode = latent_mode_;
  opt.keep_states = false;
  if (m.rewards_from_obs()) {
    if (obs.empty()) {
      throw ExportError("Planner::plan: this export's agent reads rewards from predicted observations (reward_from='obs'); "
                        "pass the observations the filter states saw");
    }
    for (const auto& o : obs) opt.start_obs.push_back(o.to(h.device()).repeat_interleave(K_, 0));
  }
  Imagined traj = imagine_.rollout(h.repeat_interleave(K_, 0), z.repeat_interleave(K_, 0), H_, opt);
  const auto& ps = m.plan_settings();
  at::Tensor ret = lambda_returns(traj.rewards, traj.values, ps.gamma * traj.cont, ps.lambda);
  scores_ = ret[0].mean(-1).view({E, K_});
  at::Tensor best = scores_.argmax(-1);
  at::Tensor first = traj.actions[0].view({E, K_, N});
  return first.index({at::arange(E, best.options()), best});
}

std::vector<at::Tensor> Planner::act(const std::vector<at::Tensor>& obs, const at::Tensor& reset) {
  const WorldModel& m = *model_;
  if (obs.empty() || !obs[0].defined() || obs[0].dim() < 1) throw ExportError("Planner::act: observations must be [E, n, obs_dim] tensors");
  const std::int64_t E = obs[0].size(0);
  const auto bool_opts = at::TensorOptions().dtype(at::kBool);
  if (E != batch_) {
    batch_ = E;
    h_ = m.zero_state(E);
    fresh_ = at::ones({E}, bool_opts);
  }
  at::Tensor r = merge_reset(fresh_, reset, "Planner::act");
  auto [h, post] = m.filter(obs, h_, r);
  at::Tensor z = latent_one_hot(imagine_.sampler().draw(post).to(h.device()), m.classes());
  at::Tensor a = plan(h, z, obs).to(h.device());
  h_ = m.step(h, z, a).h_next;
  fresh_ = at::zeros({E}, bool_opts);
  return split_groups(m.info(), a);
}

std::vector<at::Tensor> split_groups(const ExportInfo& info, const at::Tensor& joint) {
  std::vector<at::Tensor> out;
  std::int64_t start = 0;
  for (const auto& g : info.groups) {
    out.push_back(joint.slice(1, start, start + g.num_agents).contiguous());
    start += g.num_agents;
  }
  return out;
}

SimulatorPlanner::SimulatorPlanner(std::shared_ptr<const WorldModel> model, int K, int horizon, std::uint64_t seed, double unimix,
                                   int num_threads)
    : model_(std::move(model)), sampler_(seed), K_(K), threads_(num_threads) {
  std::tie(H_, unimix_) = plan_choices(model_->plan_settings(), K, horizon, unimix);
  if (num_threads < 1) throw ExportError("num_threads must be >= 1");
}

at::Tensor SimulatorPlanner::plan(const BatchedEnv& env, const at::Tensor& h0, const at::Tensor& z0) {
  const WorldModel& m = *model_;
  m.info().check_env(env.spec());
  const std::int64_t E = env.num_envs(), rows = E * K_, N = m.num_agents();
  if (h0.size(0) != E || z0.size(0) != E) throw ExportError("SimulatorPlanner::plan: the filter state's batch differs from the env's");
  if (!scratch_ || scratch_->num_envs() != rows) {
    scratch_ = make_env(env.spec().name, m.info().env_params, static_cast<int>(rows), threads_, 0);
    buffers_ = std::make_unique<OutputBuffers>(*scratch_);
  }
  auto state = env.get_state();  // copies: the acted-in env is never changed
  for (auto& arr : state) {
    if (arr.shape.empty()) continue;
    const std::size_t row = arr.data.size() / static_cast<std::size_t>(arr.shape[0]);
    std::vector<unsigned char> data(arr.data.size() * static_cast<std::size_t>(K_));
    for (std::int64_t e = 0; e < arr.shape[0]; ++e) {
      for (int k = 0; k < K_; ++k) std::copy_n(arr.data.data() + e * row, row, data.data() + (e * K_ + k) * row);
    }
    arr.data = std::move(data);
    arr.shape[0] *= K_;
  }
  scratch_->set_state(state);
  scratch_->observe(buffers_->out);
  const auto dev = m.device();
  at::Tensor h = h0.repeat_interleave(K_, 0), z = z0.repeat_interleave(K_, 0);
  at::Tensor score = at::zeros({rows}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor ended = at::zeros({rows}, at::TensorOptions().dtype(at::kBool));
  at::Tensor no_reset = at::zeros({rows}, at::TensorOptions().dtype(at::kBool));
  at::Tensor first;
  double disc = 1.0;
  const int A = scratch_->spec().num_agents();
  for (int t = 0; t < H_; ++t) {
    if (t > 0) z = latent_one_hot(sampler_.draw(m.filter(observation_views(*scratch_, *buffers_), h, no_reset).second).to(dev), m.classes());
    at::Tensor a = sampler_.draw(mix_valid(m.actor(h, z), m.valid_actions(), unimix_)).to(dev);
    if (t == 0) first = a.to(at::kCPU).view({E, K_, N});
    write_actions(*scratch_, split_groups(m.info(), a));
    h = m.step(h, z, a).h_next;
    scratch_->step(buffers_->out);
    env_steps_ += rows;
    at::Tensor r = at::from_blob(buffers_->rewards.data(), {rows, A}, at::TensorOptions().dtype(at::kFloat)).to(at::kDouble).mean(-1);
    score += at::where(ended, at::zeros_like(r), disc * r);
    disc *= m.plan_settings().gamma;
    ended = ended.logical_or(at::from_blob(buffers_->done.get(), {rows}, at::TensorOptions().dtype(at::kBool)));
  }
  z = latent_one_hot(sampler_.draw(m.filter(observation_views(*scratch_, *buffers_), h, no_reset).second).to(dev), m.classes());
  at::Tensor v = m.value(h, z).mean(-1).to(at::kCPU).to(at::kDouble);
  score += at::where(ended, at::zeros_like(v), disc * v);
  scores_ = score.view({E, K_});
  at::Tensor best = scores_.argmax(-1);
  return first.index({at::arange(E, best.options()), best}).to(dev);
}

}  // namespace genmarl::torch
