// Steps a batch of simple_spread envs from C++ alone (no Python), with a
// scripted "go to the nearest landmark" policy, and prints throughput and the
// mean episode return. The seed of embedding genmarl in a simulation engine.
//
//   cmake -S . -B build-cpp -DGENMARL_BUILD_EXAMPLES=ON && cmake --build build-cpp
//   ./build-cpp/examples/cpp/step_batch [num_envs] [num_threads] [steps]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "genmarl/env/output_buffers.hpp"
#include "genmarl/envs/registry.hpp"

int main(int argc, char** argv) {
  const int num_envs = argc > 1 ? std::atoi(argv[1]) : 1024;
  const int num_threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 500;
  std::unique_ptr<genmarl::BatchedEnv> env;
  try {
    env = genmarl::make_env("simple_spread", genmarl::Params{}, num_envs, num_threads, 0);
  } catch (const genmarl::InvalidArgument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  const auto& spec = env->spec();
  const int A = spec.num_agents();
  const int obs_dim = spec.groups[0].obs_dim;
  genmarl::OutputBuffers buffers(*env);
  const genmarl::StepOutputs& out = buffers.out;
  const std::span<const float> obs = std::as_const(buffers.obs[0]).view<float>();  // one group: agent
  env->reset(0, out);

  double return_sum = 0.0;
  long episodes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < steps; ++t) {
    // Scripted policy: move along the larger axis towards landmark (agent index) — obs[4 + 2i].
    for (int e = 0; e < num_envs; ++e) {
      for (int i = 0; i < A; ++i) {
        const float* o = obs.data() + (static_cast<std::size_t>(e) * A + i) * obs_dim;
        const float dx = o[4 + 2 * i], dy = o[5 + 2 * i];
        const bool horizontal = std::abs(dx) > std::abs(dy);
        env->discrete_actions()[e * A + i] = horizontal ? (dx < 0 ? 1 : 2) : (dy < 0 ? 3 : 4);
      }
    }
    env->step(out);
    for (int e = 0; e < num_envs; ++e) {
      if (!buffers.done[e]) continue;
      for (int i = 0; i < A; ++i) return_sum += buffers.final_return[e * A + i] / A;
      ++episodes;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("simple_spread: %d envs x %d steps on %d threads: %.0f env-steps/s, %ld episodes, mean return per agent %.2f\n",
              num_envs, steps, num_threads, num_envs * static_cast<double>(steps) / secs, episodes,
              episodes ? return_sum / episodes : 0.0);
  return 0;
}
