// Batched env machinery through the registry, for every registered scenario.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/output_buffers.hpp"
#include "genmarl/envs/registry.hpp"
#include "random_actions.hpp"

using namespace genmarl;
using genmarl::testing::random_actions;

namespace {

std::vector<float> trajectory(const std::string& name, bool continuous, int threads, int steps) {
  Params p;
  if (find_env(name).family == "mpe") p.set("continuous_actions", continuous ? 1.0 : 0.0);
  auto env = make_env(name, p, 13, threads, 99);
  OutputBuffers b(*env);
  env->reset(99, b.out);
  CounterRng rng(1, 2, 3);
  std::vector<float> log;
  for (int t = 0; t < steps; ++t) {
    random_actions(*env, rng);
    env->step(b.out);
    for (auto& o : b.obs) {
      auto v = o.view<float>();
      log.insert(log.end(), v.begin(), v.end());
    }
    log.insert(log.end(), b.rewards.begin(), b.rewards.end());
  }
  return log;
}

}  // namespace

TEST(VectorEnv, EveryEnvIsDeterministicAcrossThreadCounts) {
  for (const auto& name : list_envs()) {
    for (bool cont : {false, true}) {
      if (cont && find_env(name).family != "mpe") continue;
      const auto ref = trajectory(name, cont, 1, 40);
      for (int threads : {2, 4}) {
        const auto got = trajectory(name, cont, threads, 40);
        ASSERT_EQ(ref.size(), got.size());
        EXPECT_EQ(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)), 0) << name << " threads=" << threads;
      }
    }
  }
}

TEST(VectorEnv, AutoResetAtMaxCycles) {
  Params p;
  p.set("max_cycles", 5);
  auto env = make_env("simple_spread", p, 4, 2, 0);
  OutputBuffers b(*env);
  env->reset(0, b.out);
  CounterRng rng(0, 0, 0);
  for (int t = 1; t <= 10; ++t) {
    random_actions(*env, rng);
    env->step(b.out);
    for (int e = 0; e < 4; ++e) {
      EXPECT_EQ(b.done[e], t % 5 == 0);
      if (b.done[e]) {
        EXPECT_EQ(b.final_length[e], 5);
      }
    }
  }
}

TEST(VectorEnv, StateRoundTrip) {
  auto env = make_env("simple_tag", Params{}, 3, 1, 4);
  OutputBuffers b(*env);
  env->reset(4, b.out);
  CounterRng rng(9, 9, 9);
  random_actions(*env, rng);
  env->step(b.out);
  const auto state = env->get_state();
  random_actions(*env, rng);
  const std::vector<std::int64_t> acts(env->discrete_actions(), env->discrete_actions() + 3 * 4);
  env->step(b.out);
  const auto first = b.obs;
  env->set_state(state);
  std::copy(acts.begin(), acts.end(), env->discrete_actions());
  env->step(b.out);
  EXPECT_EQ(first, b.obs);
}

TEST(VectorEnv, BadInputThrows) {
  EXPECT_THROW(make_env("nope", Params{}, 1, 1, 0), InvalidArgument);
  Params bad;
  bad.set("bogus", 1);
  EXPECT_THROW(make_env("simple", bad, 1, 1, 0), InvalidArgument);
  EXPECT_THROW(make_env("simple", Params{}, 0, 1, 0), InvalidArgument);
  EXPECT_THROW(make_env("simple", Params{}, 1, 0, 0), InvalidArgument);
  auto env = make_env("simple", Params{}, 2, 1, 0);
  OutputBuffers b(*env);
  env->discrete_actions()[1] = 5;
  EXPECT_THROW(env->step(b.out), InvalidArgument);
  auto state = env->get_state();
  state[0].shape[0] = 7;
  EXPECT_THROW(env->set_state(state), InvalidArgument);
}
