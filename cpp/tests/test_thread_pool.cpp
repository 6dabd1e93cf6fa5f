#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "genmarl/core/thread_pool.hpp"

using genmarl::ThreadPool;

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (std::size_t threads : {1u, 2u, 4u, 8u}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 200; ++round) {
      const std::size_t n = 1 + (round * 7) % 97;
      std::vector<std::atomic<int>> hits(n);
      pool.run(n, [&](std::size_t t) { hits[t].fetch_add(1); });
      for (std::size_t t = 0; t < n; ++t) ASSERT_EQ(hits[t].load(), 1) << "threads=" << threads << " task=" << t;
    }
  }
}

TEST(ThreadPool, StressManySmallJobs) {
  ThreadPool pool(4);
  std::atomic<long> total{0};
  for (int round = 0; round < 20000; ++round) {
    pool.run(4, [&](std::size_t t) { total.fetch_add(static_cast<long>(t) + 1); });
  }
  EXPECT_EQ(total.load(), 20000L * 10L);
}

TEST(ThreadPool, ConcurrentCallersAreSerialised) {
  ThreadPool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) pool.run(5, [&](std::size_t) { total.fetch_add(1); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4L * 500L * 5L);
}

TEST(ThreadPool, CreateAndDestroyRepeatedly) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool pool(1 + i % 4);
    std::atomic<int> n{0};
    pool.run(3, [&](std::size_t) { n++; });
    ASSERT_EQ(n.load(), 3);
  }
}
