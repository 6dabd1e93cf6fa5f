// genmarl::torch world model: imagined rollouts and planning in C++ with the world model of a
// generative agent exported by `genmarl export` (EXPORT_DIR/world_model.pt2).
//
//   auto wm = std::make_shared<genmarl::torch::WorldModel>(dir);
//   genmarl::torch::Planner planner(wm, /*K=*/16, /*H=*/0 /* the agent's */, /*seed=*/0);
//   auto joint = planner.act(observations, reset);          // [E, N] int64, agents group by group
//
// Categorical draws (actions, latents) go through genmarl's C++ sampling kernels on CPU tensors
// (counter-based: the same draws for any thread count) and through torch on CUDA tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/output_buffers.hpp"
#include "genmarl/torch/package.hpp"

namespace genmarl::torch {

// The agent's planning settings at export time.
struct PlanSettings {
  double gamma = 0.99, lambda = 0.95;
  int horizon = 15;       // imagination horizon
  int plan = 0;           // K the agent was trained / configured with (0: acts with its policy)
  int plan_horizon = 0;   // 0: horizon
  double plan_unimix = 0.0;
  bool latent_mode = false;  // plan_latents == "mode"
  // "latent": imagined steps are scored by the step graph's reward (the world model's head). "obs": by
  // the obs_reward graph (the agent's reward network on the observations the model predicts), so
  // imagination carries predicted observations from the start states' real ones.
  std::string reward_from = "latent";
};

class WorldModel {
 public:
  explicit WorldModel(const std::string& export_dir);

  const ExportInfo& info() const { return info_; }
  const PlanSettings& plan_settings() const { return plan_; }
  int num_agents() const { return N_; }
  int num_actions() const { return A_; }
  int deter_size() const { return deter_; }
  int stoch_size() const { return stoch_; }
  int classes() const { return classes_; }
  c10::Device device() const { return filter_.device(); }
  // [N, A] bool: the actions each agent has (a group with fewer actions than A is masked).
  const at::Tensor& valid_actions() const { return valid_; }

  struct StepOut {
    at::Tensor h_next, prior, reward, cont;
  };
  struct ObsRewardOut {
    std::vector<at::Tensor> obs;  // per group [B, n_g, d_g]: the observations predicted for (h, z)
    at::Tensor reward;            // [B, N]
  };
  // obs[g] [B, n_g, d_g], h [B, N, deter], reset [B] bool -> (h, posterior log-probs [B, N, S, C]).
  std::pair<at::Tensor, at::Tensor> filter(const std::vector<at::Tensor>& obs, const at::Tensor& h, const at::Tensor& reset) const;
  at::Tensor actor(const at::Tensor& h, const at::Tensor& z) const;      // logits [B, N, A]
  StepOut step(const at::Tensor& h, const at::Tensor& z, const at::Tensor& action) const;
  at::Tensor value(const at::Tensor& h, const at::Tensor& z) const;      // [B, N] (target critic)
  at::Tensor behaviour(const at::Tensor& h, const at::Tensor& z) const;  // [B, N, N, A] probabilities
  // Exports with reward_from == "obs" only: the previous observations (real or predicted) and the
  // state after a step -> the observations predicted for that state and the reward read from them.
  bool rewards_from_obs() const { return plan_.reward_from == "obs"; }
  ObsRewardOut obs_reward(const std::vector<at::Tensor>& prev_obs, const at::Tensor& h, const at::Tensor& z) const;
  // A zero recurrent state [B, N, deter] on the model's device (pass reset = true with it).
  at::Tensor zero_state(std::int64_t batch) const;

 private:
  ExportInfo info_;
  PlanSettings plan_;
  int N_ = 0, A_ = 0, deter_ = 0, stoch_ = 0, classes_ = 0;
  at::Tensor valid_;
  Package filter_, actor_, step_, value_, behaviour_;
  std::unique_ptr<Package> obs_reward_;  // reward_from == "obs"
};

// Draws one index per row of logits [..., k]: genmarl's C++ kernels for CPU tensors (seed, stream),
// torch.multinomial on other devices. `mode` takes the argmax instead.
class CategoricalSampler {
 public:
  explicit CategoricalSampler(std::uint64_t seed = 0) : seed_(seed) {}
  at::Tensor draw(const at::Tensor& logits, bool mode = false);
  // The draws of draw() as float32 one-hots [..., k] (on CPU written by the kernel directly).
  at::Tensor draw_one_hot(const at::Tensor& logits, bool mode = false);
  std::uint64_t stream() const { return stream_; }

 private:
  std::uint64_t seed_, stream_ = 0;
};

// One-hot latents [..., S * C] of indices [..., S].
at::Tensor latent_one_hot(const at::Tensor& index, int classes);

// Logits of (1 - unimix) * softmax(logits) + unimix * uniform over each agent's valid actions
// (invalid actions stay at -1e9); what planning samples its candidates from.
at::Tensor mix_valid(const at::Tensor& logits, const at::Tensor& valid, double unimix);

// TD(lambda) returns [H, ...] of rewards/discounts [H, ...] and values [H + 1, ...] (as Python's
// genmarl.generative.imagination.lambda_returns).
at::Tensor lambda_returns(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& discounts, double lambda);

struct Imagined {
  at::Tensor h;        // [H + 1, S, N, deter]
  at::Tensor z;        // [H + 1, S, N, stoch * classes]
  at::Tensor actions;  // [H, S, N] int64
  at::Tensor rewards;  // [H, S, N]
  at::Tensor cont;     // [H, S, N] probability that the episode continues after the step
  at::Tensor values;   // [H + 1, S, N] target-critic values of every state
};

struct ImagineOptions {
  double action_unimix = 0.0;  // mix the policy with uniform valid actions (planning candidates)
  bool latent_mode = false;    // each latent is the prior's mode instead of a draw
  bool greedy_actions = false; // each action is the policy's argmax instead of a draw
  bool keep_states = true;     // false: leave Imagined::h and z undefined and value each step as it
                               // comes (what planning needs: no copies of the whole trajectory)
  // The start states' observations per group [S, n_g, d_g]: required when the model reads rewards
  // from predicted observations (WorldModel::rewards_from_obs), ignored otherwise.
  std::vector<at::Tensor> start_obs;
};

// Batched imagined rollouts: S start states x N agents for H steps, one call per graph per step.
class ImaginationRollout {
 public:
  ImaginationRollout(std::shared_ptr<const WorldModel> model, std::uint64_t seed = 0) : model_(std::move(model)), sampler_(seed) {}
  // h [S, N, deter], z [S, N, stoch * classes] (e.g. a filter step's state and latent).
  Imagined rollout(const at::Tensor& h, const at::Tensor& z, int horizon, const ImagineOptions& options = {});
  CategoricalSampler& sampler() { return sampler_; }

 private:
  std::shared_ptr<const WorldModel> model_;
  CategoricalSampler sampler_;
};

// Proactive planning with the world model: K candidate joint action sequences per env, drawn from
// the policy mixed with `unimix` of uniform valid actions, rolled H steps; acts on the first joint
// action of the candidate with the best predicted lambda-return (mean over agents), as the Python
// GenerativeAgent.plan does.
class Planner {
 public:
  // horizon 0: the export's plan_horizon (or its imagination horizon); unimix < 0: the export's.
  Planner(std::shared_ptr<const WorldModel> model, int K, int horizon = 0, std::uint64_t seed = 0, double unimix = -1.0,
          int latent_mode = -1);
  // The first joint action [E, N] int64 of the best candidate for filter states h, z [E, N, ...] (`obs`:
  // the observations they filtered, per group [E, n_g, d_g]; required when the model reads rewards
  // from predicted observations).
  at::Tensor plan(const at::Tensor& h, const at::Tensor& z, const std::vector<at::Tensor>& obs = {});
  // The acting loop: filters obs (restarting where reset [E] bool, on the first call and when E
  // changes), plans, and advances the state with the chosen action. Returns per group int64 [E, n_g].
  std::vector<at::Tensor> act(const std::vector<at::Tensor>& obs, const at::Tensor& reset = {});
  int K() const { return K_; }
  int horizon() const { return H_; }
  const at::Tensor& last_scores() const { return scores_; }  // [E, K]

 private:
  std::shared_ptr<const WorldModel> model_;
  ImaginationRollout imagine_;
  int K_, H_;
  double unimix_;
  bool latent_mode_;
  at::Tensor h_, fresh_, scores_;
  std::int64_t batch_ = -1;
};

// Splits a joint action [E, N] into per-group tensors [E, n_g] (agents group by group).
std::vector<at::Tensor> split_groups(const ExportInfo& info, const at::Tensor& joint);

// Planning with the true simulator (an oracle): each env of `env` is copied K times into a scratch
// env (get_state/set_state), candidates from the policy (filtering the scratch env's real
// observations) are rolled H steps through the real C++ simulator, scored by discounted real
// reward (mean over agents, nothing after the episode ends) plus the discounted target value of
// where they end. The acted-in env is only read, never changed.
class SimulatorPlanner {
 public:
  SimulatorPlanner(std::shared_ptr<const WorldModel> model, int K, int horizon, std::uint64_t seed = 0, double unimix = -1.0,
                   int num_threads = 1);
  // h, z [E, N, ...]: the acting filter's state for env's E envs. Returns the best first joint action [E, N].
  at::Tensor plan(const BatchedEnv& env, const at::Tensor& h, const at::Tensor& z);
  std::int64_t env_steps() const { return env_steps_; }  // simulator steps spent planning
  const at::Tensor& last_scores() const { return scores_; }

 private:
  std::shared_ptr<const WorldModel> model_;
  CategoricalSampler sampler_;
  int K_, H_, threads_;
  double unimix_;
  std::int64_t env_steps_ = 0;
  std::unique_ptr<BatchedEnv> scratch_;
  std::unique_ptr<OutputBuffers> buffers_;
  at::Tensor scores_;
};

}  // namespace genmarl::torch
