// An engine's loop, entirely in C++: a batch of genmarl C++ envs stands in for the engine's world,
// and an agent exported by `genmarl export` acts in it every frame (its policy, or with --plan K
// planning over K imagined futures through the exported world model of a genrl agent).
//
//   embed_policy EXPORT_DIR [NUM_ENVS=16] [EPISODES=100] [--plan K] [--deterministic]
//
// Prints the episodes' returns; the last line is mean_return=<mean episode return per agent>.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "genmarl/env/output_buffers.hpp"
#include "genmarl/envs/registry.hpp"
#include "genmarl/torch/policy.hpp"
#include "genmarl/torch/world_model.hpp"

namespace gt = genmarl::torch;

static int positive(const char* text, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > 1 << 20) {
    std::fprintf(stderr, "embed_policy: %s must be a positive integer, got '%s'\n", what, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  int plan = 0;
  bool deterministic = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--plan" && i + 1 < argc) {
      plan = positive(argv[++i], "--plan K");
    } else if (a == "--deterministic") {
      deterministic = true;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.empty() || pos.size() > 3) {
    std::fprintf(stderr, "usage: embed_policy EXPORT_DIR [NUM_ENVS] [EPISODES] [--plan K] [--deterministic]\n");
    return 2;
  }
  const int num_envs = pos.size() > 1 ? positive(pos[1].c_str(), "NUM_ENVS") : 16;
  const int episodes = pos.size() > 2 ? positive(pos[2].c_str(), "EPISODES") : 100;
  at::set_num_threads(1);
  try {
    gt::Policy policy(pos[0], /*seed=*/1);
    const auto& info = policy.info();
    std::shared_ptr<gt::WorldModel> wm;
    std::unique_ptr<gt::Planner> planner;
    if (plan > 0) {
      wm = std::make_shared<gt::WorldModel>(pos[0]);  // ExportError for a policy-only (MAPPO) export
      planner = std::make_unique<gt::Planner>(wm, plan, 0, /*seed=*/2);
    }
    // the "engine": the env the export was trained on, made from the export's own metadata
    auto env = genmarl::make_env(info.env, info.env_params, num_envs, /*num_threads=*/1, /*seed=*/20261130);
    info.check_env(env->spec());
    genmarl::OutputBuffers buffers(*env);
    env->reset(20261130, buffers.out);
    std::printf("embed_policy: %s %s on %s, %d envs, %s\n", info.algo.c_str(), pos[0].c_str(), info.env.c_str(), num_envs,
                plan > 0 ? ("planning over " + std::to_string(plan) + " imagined futures, H=" + std::to_string(planner->horizon())).c_str()
                         : (deterministic ? "greedy policy" : "sampled policy"));
    double sum = 0.0;
    int finished = 0;
    long frames = 0;
    const int A = env->spec().num_agents();
    const auto t0 = std::chrono::steady_clock::now();
    while (finished < episodes) {
      if (planner) {
        at::Tensor reset = at::from_blob(buffers.done.get(), {num_envs}, at::TensorOptions().dtype(at::kBool)).clone();
        if (frames == 0) reset.fill_(false);
        gt::write_actions(*env, planner->act(gt::observation_views(*env, buffers), reset));
      } else {
        policy.act_in(*env, buffers, deterministic, /*after_step=*/frames > 0);
      }
      env->step(buffers.out);
      ++frames;
      for (int e = 0; e < num_envs && finished < episodes; ++e) {
        if (!buffers.done[e]) continue;
        double r = 0.0;
        for (int i = 0; i < A; ++i) r += buffers.final_return[static_cast<std::size_t>(e) * A + i];
        sum += r / A;
        ++finished;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("episodes=%d frames=%ld decisions/s=%.0f\n", finished, frames, frames * static_cast<double>(num_envs) / secs);
    std::printf("mean_return=%.4f\n", sum / finished);
  } catch (const gt::ExportError& e) {
    std::fprintf(stderr, "embed_policy: %s\n", e.what());
    return 3;
  } catch (const genmarl::InvalidArgument& e) {
    std::fprintf(stderr, "embed_policy: %s\n", e.what());
    return 3;
  }
  return 0;
}
