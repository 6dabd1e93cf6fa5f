#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "genmarl/core/thread_pool.hpp"
#include "genmarl/sampling/categorical.hpp"

namespace gs = genmarl::sampling;
using genmarl::ThreadPool;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Critical value of the chi-square distribution with `df` degrees of freedom at tail
// probability 1e-6 (Wilson-Hilferty; a little above the exact value, e.g. 32.8 vs 30.7 at df=3).
double chi_square_critical(int df) {
  constexpr double kZ = 4.7534;  // standard normal quantile at 1 - 1e-6
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + kZ * std::sqrt(a), 3.0);
}

// Probabilities of each row in double: (1 - unimix) softmax + unimix / k.
std::vector<double> probs(const float* x, std::int64_t k, double unimix) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < k; ++i) m = std::max(m, static_cast<double>(x[i]));
  std::vector<double> p(static_cast<std::size_t>(k));
  double s = 0.0;
  for (std::int64_t i = 0; i < k; ++i) s += p[i] = std::exp(static_cast<double>(x[i]) - m);
  for (auto& v : p) v = (1.0 - unimix) * v / s + unimix / static_cast<double>(k);
  return p;
}

// Rows of random logits, some entries -inf (never a whole row).
std::vector<float> random_logits(std::int64_t rows, std::int64_t k, std::uint32_t seed, double neg_inf_rate = 0.1,
                                 float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<float> x(static_cast<std::size_t>(rows * k));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < k; ++i) x[r * k + i] = (k > 1 && i > 0 && unit(gen) < neg_inf_rate) ? kNegInf : normal(gen);
  }
  return x;
}

// Chi-square statistic of the counts of `index` (rows draws) against expected probabilities.
double chi_square(const std::vector<std::int64_t>& index, const std::vector<double>& p, int* df) {
  std::vector<double> count(p.size(), 0.0);
  for (auto i : index) count[static_cast<std::size_t>(i)] += 1.0;
  double stat = 0.0;
  *df = -1;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      EXPECT_EQ(count[i], 0.0) << "outcome " << i << " has probability 0";
      continue;
    }
    const double expected = p[i] * static_cast<double>(index.size());
    stat += (count[i] - expected) * (count[i] - expected) / expected;
    ++*df;
  }
  return stat;
}

struct Draws {
  std::vector<std::int64_t> index;
  std::vector<float> log_prob, one_hot;
};

Draws draw(const std::vector<float>& x, std::int64_t k, std::uint64_t seed, std::uint64_t stream, float unimix,
           ThreadPool* pool = nullptr) {
  const auto rows = static_cast<std::int64_t>(x.size()) / k;
  Draws d{std::vector<std::int64_t>(rows), std::vector<float>(rows), std::vector<float>(x.size())};
  gs::sample(x.data(), rows, k, seed, stream, unimix, d.index.data(), d.log_prob.data(), d.one_hot.data(), pool);
  return d;
}

}  // namespace

TEST(Sampling, ExpAndLogMatchLibm) {
  double worst_exp = 0.0, worst_log = 0.0;
  for (float x = -87.0f; x <= 0.0f; x += 0.0137f) {
    const double ref = std::exp(static_cast<double>(x));
    worst_exp = std::max(worst_exp, std::abs(gs::detail::exp_nonpositive(x) - ref) / ref);
  }
  for (float x = 1e-30f; x < 1e30f; x *= 1.37f) {
    const double ref = std::log(static_cast<double>(x));
    worst_log = std::max(worst_log, std::abs(gs::detail::log_nonnegative(x) - ref) / std::max(1.0, std::abs(ref)));
  }
  EXPECT_LT(worst_exp, 3e-7);
  EXPECT_LT(worst_log, 3e-7);
  EXPECT_EQ(gs::detail::exp_nonpositive(kNegInf), 0.0f);
  EXPECT_EQ(gs::detail::exp_nonpositive(-100.0f), 0.0f);
  EXPECT_EQ(gs::detail::exp_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(gs::detail::exp_nonpositive(-0.0f), 1.0f);
  EXPECT_EQ(gs::detail::log_nonnegative(0.0f), kNegInf);
  EXPECT_EQ(gs::detail::log_nonnegative(1.0f), 0.0f);
  EXPECT_NEAR(gs::detail::log_nonnegative(1e-45f), std::log(1.4012984643e-45), 1e-4);  // subnormal
}

TEST(Sampling, FrequenciesMatchAKnownDistribution) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  const std::int64_t rows = 200000, k = 4;
  std::vector<float> x(static_cast<std::size_t>(rows * k));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < k; ++i) x[r * k + i] = static_cast<float>(std::log(p[i])) + 2.5f;  // shift-invariant
  }
  for (std::uint64_t seed : {0u, 1u, 2u}) {
    const Draws d = draw(x, k, seed, 0, 0.0f);
    int df = 0;
    const double stat = chi_square(d.index, p, &df);
    EXPECT_EQ(df, 3);
    EXPECT_LT(stat, chi_square_critical(df)) << "seed " << seed;
  }
}

TEST(Sampling, FrequenciesPerRowWithNegInfAndUnimix) {
  // Many independent draws of the same few rows (repeated), with -inf entries; k = 1, 5, 32.
  for (std::int64_t k : {1, 5, 32}) {
    for (float unimix : {0.0f, 0.01f, 0.3f}) {
      const std::vector<float> base = random_logits(3, k, static_cast<std::uint32_t>(k * 7), 0.3, 1.5f);
      const std::int64_t reps = 100000;
      std::vector<float> x;
      for (std::int64_t r = 0; r < reps; ++r) x.insert(x.end(), base.begin(), base.end());
      const Draws d = draw(x, k, 42, static_cast<std::uint64_t>(k), unimix);
      for (std::int64_t b = 0; b < 3; ++b) {
        std::vector<std::int64_t> idx;
        for (std::int64_t r = 0; r < reps; ++r) idx.push_back(d.index[static_cast<std::size_t>(r * 3 + b)]);
        const auto p = probs(base.data() + b * k, k, unimix);
        int df = 0;
        const double stat = chi_square(idx, p, &df);
        if (df > 0) {
          EXPECT_LT(stat, chi_square_critical(df)) << "k=" << k << " unimix=" << unimix << " row " << b;
        }
      }
    }
  }
}

TEST(Sampling, LogProbAndEntropyMatchADoublePrecisionFormula) {
  // Includes k = 1, k not a multiple of any vector width, and k above kTileElems (heap path).
  for (std::int64_t k : {1, 2, 3, 5, 8, 16, 33, 100, 1500, 70000}) {
    for (float unimix : {0.0f, 0.01f, 0.5f}) {
      const std::int64_t rows = k > 10000 ? 5 : k > 100 ? 37 : 1003;
      const std::vector<float> x = random_logits(rows, k, static_cast<std::uint32_t>(k) + static_cast<std::uint32_t>(1000.0f * unimix), 0.2, 4.0f);
      const Draws d = draw(x, k, 9, 1, unimix);
      std::vector<std::int64_t> index(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) index[r] = (r * 7) % k;
      std::vector<float> lp(static_cast<std::size_t>(rows)), ent(static_cast<std::size_t>(rows));
      gs::log_prob(x.data(), rows, k, index.data(), unimix, lp.data());
      gs::entropy(x.data(), rows, k, unimix, ent.data());
      for (std::int64_t r = 0; r < rows; ++r) {
        const auto p = probs(x.data() + r * k, k, unimix);
        double h = 0.0;
        for (double v : p) h -= v > 0.0 ? v * std::log(v) : 0.0;
        ASSERT_NEAR(ent[r], h, 1e-6 + 1e-5 * h) << "k=" << k << " unimix=" << unimix << " row " << r;
        const double want = std::log(p[static_cast<std::size_t>(index[r])]);
        if (std::isinf(want)) {
          ASSERT_EQ(lp[r], kNegInf);
        } else {
          ASSERT_NEAR(lp[r], want, 1e-6 + 1e-5 * std::abs(want)) << "k=" << k << " unimix=" << unimix << " row " << r;
        }
        // The sampled outcome's log_prob, and its one-hot row.
        const auto drawn = d.index[static_cast<std::size_t>(r)];
        ASSERT_GE(drawn, 0);
        ASSERT_LT(drawn, k);
        const double want_drawn = std::log(p[static_cast<std::size_t>(drawn)]);
        ASSERT_NEAR(d.log_prob[r], want_drawn, 1e-6 + 1e-5 * std::abs(want_drawn));
        for (std::int64_t i = 0; i < k; ++i) ASSERT_EQ(d.one_hot[r * k + i], i == drawn ? 1.0f : 0.0f);
      }
    }
  }
}

TEST(Sampling, NegInfLogitsAreNeverSampled) {
  // Rows with one finite logit among -inf ones, and rows where -inf sits next to a huge logit.
  const std::int64_t k = 7, rows = 50000;
  std::vector<float> x(static_cast<std::size_t>(rows * k), kNegInf);
  for (std::int64_t r = 0; r < rows; ++r) {
    x[r * k + r % k] = static_cast<float>(r % 13) - 6.0f;
    if (r % 2) x[r * k + (r + 3) % k] = 80.0f;
  }
  const Draws d = draw(x, k, 3, 0, 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    ASSERT_NE(x[r * k + d.index[static_cast<std::size_t>(r)]], kNegInf) << "row " << r;
    ASSERT_TRUE(std::isfinite(d.log_prob[r]));
  }
  // With unimix > 0 every outcome is possible, and its log_prob is log(unimix / k) or more.
  const Draws mixed = draw(x, k, 3, 0, 0.5f);
  bool saw_neg_inf = false;
  for (std::int64_t r = 0; r < rows; ++r) {
    saw_neg_inf |= x[r * k + mixed.index[static_cast<std::size_t>(r)]] == kNegInf;
    ASSERT_GE(mixed.log_prob[r], std::log(0.5f / k) - 1e-6f);
  }
  EXPECT_TRUE(saw_neg_inf);
}

TEST(Sampling, TinyProbabilitiesStayFiniteAndDrawsFollowTheHugeOnes) {
  // A spread of 170 in the logits: exp underflows for most outcomes, log_prob must not.
  const std::int64_t k = 3;
  const std::vector<float> x = {0.0f, -170.0f, -50.0f};
  std::vector<std::int64_t> index = {0, 1, 2};
  std::vector<float> rows3;
  for (int i = 0; i < 3; ++i) rows3.insert(rows3.end(), x.begin(), x.end());
  std::vector<float> lp(3);
  gs::log_prob(rows3.data(), 3, k, index.data(), 0.0f, lp.data());
  EXPECT_NEAR(lp[0], 0.0, 1e-6);
  EXPECT_NEAR(lp[1], -170.0, 1e-4);
  EXPECT_NEAR(lp[2], -50.0, 1e-5);
  const Draws d = draw(rows3, k, 1, 1, 0.0f);
  for (auto i : d.index) EXPECT_EQ(i, 0);
}

TEST(Sampling, IdenticalForAnyThreadCountAndStreamDependent) {
  for (std::int64_t k : {1, 5, 16, 1100}) {
    const std::int64_t rows = k > 1000 ? 300 : 3 * gs::kRowsPerTask + 17;
    const std::vector<float> x = random_logits(rows, k, 5);
    const Draws one = draw(x, k, 11, 2, 0.01f);
    for (std::size_t threads : {2u, 3u, 4u}) {
      ThreadPool pool(threads);
      const Draws many = draw(x, k, 11, 2, 0.01f, &pool);
      EXPECT_EQ(one.index, many.index) << "threads " << threads;
      EXPECT_EQ(one.log_prob, many.log_prob) << "threads " << threads;
      EXPECT_EQ(one.one_hot, many.one_hot) << "threads " << threads;
      std::vector<float> e1(static_cast<std::size_t>(rows)), e2(static_cast<std::size_t>(rows));
      gs::entropy(x.data(), rows, k, 0.01f, e1.data());
      gs::entropy(x.data(), rows, k, 0.01f, e2.data(), &pool);
      EXPECT_EQ(e1, e2);
    }
    // Same (seed, stream): same draws; another stream or seed: other draws.
    const Draws again = draw(x, k, 11, 2, 0.01f);
    EXPECT_EQ(one.index, again.index);
    if (k > 1) {
      const Draws other = draw(x, k, 11, 3, 0.01f);
      EXPECT_NE(one.index, other.index);
      const Draws other_seed = draw(x, k, 12, 2, 0.01f);
      EXPECT_NE(one.index, other_seed.index);
    }
  }
}

TEST(Sampling, RowDrawUsesCounterRngOfItsRow) {
  // k = 2 with equal logits: index = (uniform >= 0.5) for uniform = CounterRng(seed, stream, 0, r).
  const std::int64_t rows = 1000, k = 2;
  const std::vector<float> x(static_cast<std::size_t>(rows * k), 0.25f);
  const Draws d = draw(x, k, 77, 5, 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    genmarl::CounterRng rng(77, 5, 0, static_cast<std::uint64_t>(r));
    EXPECT_EQ(d.index[static_cast<std::size_t>(r)], rng.uniform() >= 0.5 ? 1 : 0) << "row " << r;
  }
}

TEST(Sampling, EveryInstructionSetAgrees) {
  // The per-ISA copies of the kernels agree up to the rounding of fused multiply-adds.
  const std::int64_t k = 9, rows = 4000;
  const std::vector<float> x = random_logits(rows, k, 8);
  std::vector<std::int64_t> i0(rows), i1(rows);
  std::vector<float> l0(rows), l1(rows);
  gs::detail::sample_rows_baseline(x.data(), 0, rows, k, 1, 2, 0.01f, i0.data(), l0.data(), nullptr);
  gs::sample(x.data(), rows, k, 1, 2, 0.01f, i1.data(), l1.data(), nullptr);
  int differ = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    differ += i0[r] != i1[r];
    if (i0[r] == i1[r]) {
      EXPECT_NEAR(l0[r], l1[r], 1e-6 + 1e-6 * std::abs(l0[r]));
    }
  }
  EXPECT_LE(differ, 1) << "dispatched ISA: " << gs::isa_name();
}

TEST(Sampling, EmptyAndSingleOutcome) {
  gs::sample(nullptr, 0, 5, 1, 0, 0.0f, nullptr, nullptr, nullptr);  // no rows: nothing touched
  const std::vector<float> x = {3.0f, -2.0f, 0.0f};
  const Draws d = draw(x, 1, 1, 0, 0.0f);
  for (std::size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(d.index[r], 0);
    EXPECT_EQ(d.log_prob[r], 0.0f);
  }
  std::vector<float> ent(3);
  gs::entropy(x.data(), 3, 1, 0.0f, ent.data());
  for (float h : ent) EXPECT_EQ(h, 0.0f);
}

TEST(Sampling, ConcurrentCallersShareAPool) {
  ThreadPool pool(3);
  const std::int64_t k = 6, rows = 5000;
  const std::vector<float> x = random_logits(rows, k, 21);
  const Draws want = draw(x, k, 4, 4, 0.01f);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (draw(x, k, 4, 4, 0.01f, &pool).index != want.index) mismatches.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}
