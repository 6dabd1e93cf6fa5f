// Fills an EpisodeBuffer and a ReplayBuffer from a batch of simple_spread envs
// stepped in C++ (no Python), then samples transitions and world-model
// sequences and prints what it got.
//
//   ./build-cpp/examples/cpp/replay_buffer [num_envs] [steps]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "genmarl/buffer/all.hpp"
#include "genmarl/core/rng.hpp"
#include "genmarl/env/output_buffers.hpp"
#include "genmarl/envs/registry.hpp"

using namespace genmarl::buffer;

int main(int argc, char** argv) {
  const int num_envs = argc > 1 ? std::atoi(argv[1]) : 64;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 200;
  if (num_envs <= 0 || steps <= 0) {
    std::fprintf(stderr, "usage: replay_buffer [num_envs > 0] [steps > 0]\n");
    return 2;
  }
  auto env = genmarl::make_env("simple_spread", genmarl::Params{}, num_envs, 1, 0);
  const int A = env->spec().num_agents();
  const int D = env->spec().groups[0].obs_dim;
  genmarl::OutputBuffers io(*env);
  env->reset(0, io.out);

  const Schema schema({{"obs", {A, D}, DType::kFloat32},
                       {"action", {A}, DType::kInt64},
                       {"reward", {A}, DType::kFloat32},
                       {"truncated", {A}, DType::kBool},
                       {"next_obs", {A, D}, DType::kFloat32}});
  ReplayBuffer replay(schema, static_cast<std::int64_t>(num_envs) * steps, /*seed=*/0, num_envs);
  EpisodeBuffer episodes(schema, static_cast<std::int64_t>(num_envs) * steps, num_envs, /*seed=*/0);

  genmarl::CounterRng rng(0, 0, 0);
  auto current = [&io] {  // the group's float32 observations, copied out of the env's buffer
    const auto v = std::as_const(io.obs[0]).view<float>();
    return std::vector<float>(v.begin(), v.end());
  };
  std::vector<float> obs = current(), next_obs(obs.size());
  std::vector<std::int64_t> actions(static_cast<std::size_t>(num_envs) * A);
  for (int t = 0; t < steps; ++t) {
    for (std::size_t i = 0; i < actions.size(); ++i) actions[i] = static_cast<std::int64_t>(rng.below(5));
    std::memcpy(env->discrete_actions(), actions.data(), actions.size() * sizeof(std::int64_t));
    env->step(io.out);
    // The true successor of a finished env is its final observation (it was reset in the step).
    next_obs = current();
    for (int e = 0; e < num_envs; ++e) {
      if (!io.done[e]) continue;
      const std::size_t row = static_cast<std::size_t>(e) * A * D;
      std::memcpy(next_obs.data() + row, std::as_const(io.final_obs[0]).view<float>().data() + row, sizeof(float) * A * D);
    }
    const void* batch[] = {obs.data(), actions.data(), io.rewards.data(), io.truncated.get(), next_obs.data()};
    replay.add(batch, num_envs);
    episodes.add_step(batch, nullptr, num_envs);
    obs = current();
  }

  const int B = 256;
  std::vector<float> s_obs(B * A * D), s_rew(B * A), s_next(B * A * D), discount(B);
  std::vector<std::int64_t> s_act(B * A), idx(B);
  std::vector<std::uint8_t> s_trunc(B * A);
  void* out[] = {s_obs.data(), s_act.data(), s_rew.data(), s_trunc.data(), s_next.data()};
  replay.sample_n_step(B, 3, 0.99, out, discount.data(), idx.data());
  double mean_return = 0.0;
  for (float r : s_rew) mean_return += r / (B * A);
  std::printf("replay: %lld transitions stored, 3-step return of %d samples: mean %.3f\n",
              static_cast<long long>(replay.size()), B, mean_return);

  const int L = 32;
  std::vector<float> q_obs(B * L * A * D), q_rew(B * L * A), q_next(B * L * A * D);
  std::vector<std::int64_t> q_act(B * L * A);
  std::vector<std::uint8_t> q_trunc(B * L * A), mask(B * L), first(B * L);
  void* seq[] = {q_obs.data(), q_act.data(), q_rew.data(), q_trunc.data(), q_next.data()};
  episodes.sample_sequences(B, L, SequenceMode::kStitch, seq, reinterpret_cast<bool*>(mask.data()),
                            reinterpret_cast<bool*>(first.data()));
  int resets = 0;
  for (auto f : first) resets += f;
  std::printf("episodes: %lld steps, %lld finished episodes; %d sequences of %d steps hold %d episode starts\n",
              static_cast<long long>(episodes.size()), static_cast<long long>(episodes.num_episodes()), B, L, resets);
  return 0;
}
