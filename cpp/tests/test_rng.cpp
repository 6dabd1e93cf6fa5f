#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "genmarl/core/rng.hpp"

using genmarl::CounterRng;

TEST(CounterRng, SameKeySameStream) {
  CounterRng a(7, 3, 2), b(7, 3, 2);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(CounterRng, StreamsDiffer) {
  std::set<std::uint64_t> firsts;
  for (std::uint64_t seed = 0; seed < 4; ++seed)
    for (std::uint64_t env = 0; env < 16; ++env)
      for (std::uint64_t ep = 0; ep < 16; ++ep) firsts.insert(CounterRng(seed, env, ep).next_u64());
  EXPECT_EQ(firsts.size(), 4u * 16u * 16u);
}

TEST(CounterRng, CounterResumesStream) {
  CounterRng a(1, 2, 3);
  for (int i = 0; i < 10; ++i) a.next_u64();
  CounterRng b(1, 2, 3, a.counter());
  EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(CounterRng, UniformMomentsAndRange) {
  CounterRng r(42, 0, 0);
  const int n = 200000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform(-1.0, 1.0);
    ASSERT_GE(u, -1.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sq += u * u;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);          // sd of the mean ~ 0.0013
  EXPECT_NEAR(sq / n, 1.0 / 3.0, 0.01);     // variance of U(-1, 1)
}

TEST(CounterRng, BelowIsUniform) {
  CounterRng r(5, 1, 0);
  int counts[6] = {0};
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    auto k = r.below(6);
    ASSERT_LT(k, 6u);
    counts[k]++;
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / 6.0) * (c - n / 6.0) / (n / 6.0);
  EXPECT_LT(chi2, 20.5);  // chi-square, 5 dof, p = 0.001
}
