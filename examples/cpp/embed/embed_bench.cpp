// Speed of an exported agent in C++ (genmarl::torch), printed as one JSON line for
// benchmarks/embed_throughput.py, which measures the Python paths side by side in the same run.
//
//   embed_bench EXPORT_DIR [K=16] [H=15] [ENVS=16]
//
// act_latency_us_b1: median wall time of one Policy::act on one env (what an engine pays per frame);
// act_rows_per_s_b1024: envs acted per second at a batch of 1024; for genrl exports also
// imagined_steps_per_s (ImaginationRollout, K*ENVS starts x H steps), planned_decisions_per_s
// (Planner::plan, K candidates x H steps per env) and graph_share: the fraction of a planning call
// spent inside the compiled graphs (actor, step, value: the matrix products) rather than in
// sampling, stacking and returns.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "genmarl/torch/policy.hpp"
#include "genmarl/torch/world_model.hpp"

namespace gt = genmarl::torch;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

static std::vector<at::Tensor> random_obs(const gt::ExportInfo& info, std::int64_t B) {
  std::vector<at::Tensor> obs;
  for (const auto& g : info.groups) obs.push_back(at::randn({B, g.num_agents, g.obs_dim}));
  return obs;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: embed_bench EXPORT_DIR [K] [H] [ENVS]\n");
    return 2;
  }
  const int K = argc > 2 ? std::atoi(argv[2]) : 16, H = argc > 3 ? std::atoi(argv[3]) : 15, E = argc > 4 ? std::atoi(argv[4]) : 16;
  at::set_num_threads(1);
  at::manual_seed(0);
  try {
    gt::Policy policy(argv[1]);
    auto obs1 = random_obs(policy.info(), 1);
    for (int i = 0; i < 50; ++i) policy.act(obs1, false);
    std::vector<double> lat;
    for (int i = 0; i < 2000; ++i) {
      auto t0 = Clock::now();
      policy.act(obs1, false);
      lat.push_back(seconds_since(t0));
    }
    std::nth_element(lat.begin(), lat.begin() + lat.size() / 2, lat.end());
    const double latency_us = lat[lat.size() / 2] * 1e6;
    auto obs_big = random_obs(policy.info(), 1024);
    for (int i = 0; i < 5; ++i) policy.act(obs_big, false);
    auto t0 = Clock::now();
    int calls = 0;
    while (seconds_since(t0) < 2.0) {
      policy.act(obs_big, false);
      ++calls;
    }
    const double rows_per_s = 1024.0 * calls / seconds_since(t0);
    std::printf("{\"algo\": \"%s\", \"act_latency_us_b1\": %.2f, \"act_rows_per_s_b1024\": %.0f", policy.info().algo.c_str(), latency_us,
                rows_per_s);
    if (policy.info().algo == "genrl") {
      auto wm = std::make_shared<gt::WorldModel>(argv[1]);
      const auto obs = random_obs(wm->info(), E);
      auto [h, post] = wm->filter(obs, wm->zero_state(E), at::ones({E}, at::kBool));
      gt::CategoricalSampler sampler(1);
      at::Tensor z = gt::latent_one_hot(sampler.draw(post), wm->classes());
      gt::ImaginationRollout roll(wm, 3);
      at::Tensor hs = h.repeat_interleave(K, 0), zs = z.repeat_interleave(K, 0);
      gt::ImagineOptions ropt;  // an agent reading rewards from predicted observations starts from real ones
      for (const auto& o : obs) ropt.start_obs.push_back(o.repeat_interleave(K, 0));
      roll.rollout(hs, zs, H, ropt);
      t0 = Clock::now();
      calls = 0;
      while (seconds_since(t0) < 2.0) {
        roll.rollout(hs, zs, H, ropt);
        ++calls;
      }
      const double imagined = static_cast<double>(K) * E * H * calls / seconds_since(t0);
      gt::Planner planner(wm, K, H, 4);
      planner.plan(h, z, obs);
      t0 = Clock::now();
      calls = 0;
      while (seconds_since(t0) < 2.0) {
        planner.plan(h, z, obs);
        ++calls;
      }
      const double plan_s = seconds_since(t0) / calls;
      // the same planning call's graph work alone: H actor + step calls and one value call on H + 1 states
      at::Tensor a = at::zeros({static_cast<std::int64_t>(K) * E, wm->num_agents()}, at::kLong);
      at::Tensor hv = hs.repeat({H + 1, 1, 1}), zv = zs.repeat({H + 1, 1, 1});
      auto per_call = [](auto&& fn) {
        fn();
        auto t = Clock::now();
        int n = 0;
        while (seconds_since(t) < 1.0) {
          fn();
          ++n;
        }
        return seconds_since(t) / n;
      };
      const double actor_s = per_call([&] { wm->actor(hs, zs); });
      const double step_s = per_call([&] { wm->step(hs, zs, a); });
      const double value_s = per_call([&] { wm->value(hv, zv); });
      double graph_s = H * (actor_s + step_s) + value_s;
      if (wm->rewards_from_obs()) graph_s += H * per_call([&] { wm->obs_reward(ropt.start_obs, hs, zs); });
      std::printf(", \"actor_ms\": %.3f, \"step_ms\": %.3f, \"value_ms\": %.3f", actor_s * 1e3, step_s * 1e3, value_s * 1e3);
      std::printf(", \"imagined_steps_per_s\": %.0f, \"planned_decisions_per_s\": %.1f, \"plan_ms\": %.3f, \"graph_ms\": %.3f, \"graph_share\": %.3f",
                  imagined, E / plan_s, plan_s * 1e3, graph_s * 1e3, graph_s / plan_s);
    }
    std::printf(", \"K\": %d, \"H\": %d, \"envs\": %d}\n", K, H, E);
  } catch (const gt::ExportError& e) {
    std::fprintf(stderr, "embed_bench: %s\n", e.what());
    return 3;
  }
  return 0;
}
