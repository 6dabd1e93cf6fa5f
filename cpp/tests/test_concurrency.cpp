// Concurrency stress tests of the env core, meant to run under ThreadSanitizer (CI builds
// them with -DGENMARL_TSAN=ON): envs stepped from many threads, one env per thread;
// concurrent calls on one env rejected with ConcurrentCall and leaving it intact; envs and
// pools created and destroyed from many threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/core/thread_pool.hpp"
#include "genmarl/env/output_buffers.hpp"
#include "genmarl/envs/registry.hpp"
#include "random_actions.hpp"

using namespace genmarl;
using genmarl::testing::random_actions;

namespace {

// Steps `name` with random actions, round-tripping the state through get/set halfway; returns
// every observation and reward written.
std::vector<float> run(const std::string& name, int pool_threads, int steps) {
  auto env = make_env(name, Params{}, 37, pool_threads, 5);
  OutputBuffers b(*env);
  env->reset(5, b.out);
  CounterRng rng(7, 8, 9);
  std::vector<float> log;
  for (int t = 0; t < steps; ++t) {
    if (t == steps / 2) env->set_state(env->get_state());
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

bool same_state(const std::vector<StateArray>& a, const std::vector<StateArray>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k].name != b[k].name || a[k].data != b[k].data) return false;
  }
  return true;
}

}  // namespace

TEST(Concurrency, OneEnvPerThreadMatchesSequentialRuns) {
  const std::vector<std::string> names = {"simple_spread", "simple_tag", "simple_world_comm", "simple_crypto"};
  std::vector<std::vector<float>> reference;
  for (const auto& n : names) reference.push_back(run(n, 1, 30));
  std::vector<std::vector<float>> got(names.size() * 2);
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < got.size(); ++k) {
    threads.emplace_back([&, k] { got[k] = run(names[k % names.size()], 1 + static_cast<int>(k % 3), 30); });
  }
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto& want = reference[k % names.size()];
    ASSERT_EQ(got[k].size(), want.size());
    EXPECT_EQ(std::memcmp(got[k].data(), want.data(), want.size() * sizeof(float)), 0) << names[k % names.size()];
  }
}

TEST(Concurrency, ConcurrentCallsOnOneEnvAreRejectedAndChangeNothing) {
  // One thread steps with constant actions while another hammers the same env with
  // get_state / observe. Every call either completes or throws ConcurrentCall
  // before touching the env, so the env ends exactly where `steps` sequential steps take a
  // twin env.
  auto env = make_env("simple_spread", Params{}, 2048, 2, 11);
  auto twin = make_env("simple_spread", Params{}, 2048, 1, 11);
  OutputBuffers b(*env), tb(*twin), ob(*env);
  env->reset(11, b.out);
  twin->reset(11, tb.out);
  std::fill_n(env->discrete_actions(), 2048 * 3, 1);
  std::fill_n(twin->discrete_actions(), 2048 * 3, 1);

  std::atomic<bool> stop{false};
  std::atomic<int> rejected{0};
  int steps = 0;
  std::thread stepper([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      try {
        env->step(b.out);
        ++steps;
      } catch (const ConcurrentCall&) {
        rejected.fetch_add(1);
      }
      if (steps >= 40 && rejected.load() > 0) break;
    }
    stop.store(true);
  });
  int other_calls = 0;
  while (!stop.load()) {
    try {
      if (other_calls++ % 2 == 0) static_cast<void>(env->get_state());
      else env->observe(ob.out);
    } catch (const ConcurrentCall& e) {
      rejected.fetch_add(1);
      EXPECT_NE(std::string(e.what()).find("one call at a time"), std::string::npos) << e.what();
    }
  }
  stepper.join();
  EXPECT_GT(rejected.load(), 0) << "the two threads never overlapped";
  for (int t = 0; t < steps; ++t) twin->step(tb.out);
  EXPECT_TRUE(same_state(env->get_state(), twin->get_state()));
}

TEST(Concurrency, SetStateRacingStepIsRejectedNotTorn) {
  auto env = make_env("simple_world_comm", Params{}, 1024, 2, 3);
  OutputBuffers b(*env);
  env->reset(3, b.out);
  const auto snapshot = env->get_state();
  std::fill_n(env->discrete_actions(), 1024 * env->spec().num_agents(), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> restores{0}, rejected{0};
  std::thread restorer([&] {
    while (!stop.load()) {
      try {
        env->set_state(snapshot);
        restores.fetch_add(1);
      } catch (const ConcurrentCall&) {
        rejected.fetch_add(1);
      }
    }
  });
  for (int t = 0; t < 200; ++t) {
    try {
      env->step(b.out);
    } catch (const ConcurrentCall&) {
      rejected.fetch_add(1);
    }
  }
  stop.store(true);
  restorer.join();
  // Whatever interleaving happened, the env holds a consistent state: restoring the snapshot
  // and stepping gives the same as a fresh env from the same snapshot.
  auto fresh = make_env("simple_world_comm", Params{}, 1024, 1, 3);
  OutputBuffers fb(*fresh);
  fresh->set_state(snapshot);
  env->set_state(snapshot);
  std::fill_n(fresh->discrete_actions(), 1024 * fresh->spec().num_agents(), 0);
  env->step(b.out);
  fresh->step(fb.out);
  EXPECT_TRUE(same_state(env->get_state(), fresh->get_state()));
  EXPECT_GT(restores.load() + rejected.load(), 0);
}

TEST(Concurrency, EnvsAndPoolsCreatedAndDestroyedFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int k = 0; k < 6; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 10; ++i) {
        auto env = make_env(list_envs()[static_cast<std::size_t>(k + i) % list_envs().size()], Params{}, 16,
                            1 + (k + i) % 3, static_cast<std::uint64_t>(k));
        OutputBuffers b(*env);
        env->reset(static_cast<std::uint64_t>(i), b.out);
        env->step(b.out);
        ForkSafePool pool(1 + static_cast<std::size_t>(i % 3));
        std::atomic<int> n{0};
        pool.get().run(5, [&](std::size_t) { n.fetch_add(1); });
        if (n.load() == 5) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 60);
}

TEST(Concurrency, SharedPoolFromManyCallers) {
  ForkSafePool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 300; ++i) pool.get().run(7, [&](std::size_t t) { total.fetch_add(static_cast<long>(t)); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4L * 300L * 21L);
}

TEST(Concurrency, ThreadCountLimits) {
  EXPECT_THROW(ThreadPool(kMaxThreads + 1), std::invalid_argument);
  EXPECT_THROW(make_env("simple_spread", Params{}, 4, static_cast<int>(kMaxThreads) + 1, 0), InvalidArgument);
  EXPECT_THROW(make_env("simple_spread", Params{}, 4, 0, 0), InvalidArgument);
  try {
    check_num_threads(5000);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1024]"), std::string::npos) << e.what();
  }
}
