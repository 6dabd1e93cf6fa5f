#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <vector>

#include "genmarl/buffer/all.hpp"

using namespace genmarl::buffer;

namespace {

Schema transition_schema() {
  return Schema({{"obs", {3, 4}, DType::kFloat32},
                 {"action", {3}, DType::kInt64},
                 {"reward", {}, DType::kFloat32},
                 {"done", {}, DType::kBool},
                 {"next_obs", {3, 4}, DType::kFloat32}});
}

// n items whose every field encodes its item id (ids start at first).
struct Batch {
  std::vector<float> obs, reward, next_obs;
  std::vector<std::int64_t> action;
  std::vector<std::uint8_t> done;
  std::vector<const void*> ptrs;
  Batch(std::int64_t first, std::int64_t n, std::int64_t done_every = 0) {
    for (std::int64_t i = first; i < first + n; ++i) {
      for (int k = 0; k < 12; ++k) obs.push_back(static_cast<float>(i));
      for (int k = 0; k < 3; ++k) action.push_back(i);
      reward.push_back(static_cast<float>(i));
      done.push_back(done_every && (i % done_every == done_every - 1));
      for (int k = 0; k < 12; ++k) next_obs.push_back(static_cast<float>(i) + 0.5f);
    }
    ptrs = {obs.data(), action.data(), reward.data(), done.data(), next_obs.data()};
  }
};

struct Out {
  std::vector<float> obs, reward, next_obs;
  std::vector<std::int64_t> action;
  std::vector<std::uint8_t> done;
  std::vector<void*> ptrs;
  explicit Out(std::int64_t n) : obs(n * 12), reward(n), next_obs(n * 12), action(n * 3), done(n) {
    ptrs = {obs.data(), action.data(), reward.data(), done.data(), next_obs.data()};
  }
};

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("genmarl_test_") + name)).string();
}

}  // namespace

TEST(Schema, RejectsBadSpecs) {
  EXPECT_THROW(Schema(std::vector<Field>{}), InvalidArgument);
  EXPECT_THROW(Schema({{"a", {0}, DType::kFloat32}}), InvalidArgument);
  EXPECT_THROW(Schema({{"a", {2}, DType::kFloat32}, {"a", {2}, DType::kFloat32}}), InvalidArgument);
  EXPECT_EQ(transition_schema().row_bytes(), 48u + 24u + 4u + 1u + 48u);
}

TEST(ReplayBuffer, WrapsAndKeepsTheNewestItems) {
  ReplayBuffer rb(transition_schema(), 10, 1);
  Batch a(0, 7), b(7, 7);
  rb.add(a.ptrs.data(), 7);
  EXPECT_EQ(rb.size(), 7);
  rb.add(b.ptrs.data(), 7);
  EXPECT_EQ(rb.size(), 10);
  Out out(2000);
  std::vector<std::int64_t> idx(2000);
  rb.sample(2000, out.ptrs.data(), idx.data());
  std::vector<int> seen(14, 0);
  for (int k = 0; k < 2000; ++k) {
    const auto id = out.action[3 * k];
    ASSERT_GE(id, 4);
    ASSERT_EQ(out.obs[12 * k + 5], static_cast<float>(id));
    ASSERT_EQ(out.next_obs[12 * k], static_cast<float>(id) + 0.5f);
    ASSERT_EQ(out.reward[k], static_cast<float>(id));
    seen[id]++;
  }
  for (int id = 4; id < 14; ++id) EXPECT_GT(seen[id], 120) << id;  // ~200 each
  EXPECT_THROW(rb.add(a.ptrs.data(), 11), InvalidArgument);
}

TEST(ReplayBuffer, EmptySampleThrows) {
  ReplayBuffer rb(transition_schema(), 10, 1);
  Out out(1);
  EXPECT_THROW(rb.sample(1, out.ptrs.data()), InvalidArgument);
}

TEST(ReplayBuffer, NStepStopsAtEpisodeEnd) {
  // One env; done at ids 4, 9, ...; gamma 0.5, n = 3.
  ReplayBuffer rb(transition_schema(), 100, 7);
  Batch a(0, 20, 5);
  rb.add(a.ptrs.data(), 20);
  Out out(500);
  std::vector<float> disc(500);
  std::vector<std::int64_t> idx(500);
  rb.sample_n_step(500, 3, 0.5, out.ptrs.data(), disc.data(), idx.data());
  for (int k = 0; k < 500; ++k) {
    const std::int64_t i = idx[k];
    double ret = 0, scale = 1;
    std::int64_t last = i;
    bool terminal = false;
    for (std::int64_t t = i; t < i + 3 && t < 20; ++t) {
      ret += scale * static_cast<double>(t);
      last = t;
      if (t % 5 == 4) {
        terminal = true;
        break;
      }
      scale *= 0.5;
    }
    const int m = static_cast<int>(last - i + 1);
    EXPECT_FLOAT_EQ(out.reward[k], static_cast<float>(ret)) << i;
    EXPECT_EQ(out.next_obs[12 * k], static_cast<float>(last) + 0.5f);
    EXPECT_EQ(out.obs[12 * k], static_cast<float>(i));
    EXPECT_FLOAT_EQ(disc[k], terminal ? 0.0f : static_cast<float>(std::pow(0.5, m)));
  }
}

TEST(ReplayBuffer, NStepFollowsEachEnv) {
  // Two envs interleaved: rows 0,2,4.. are env 0 (ids 0,2,4..), rows 1,3,.. env 1.
  ReplayBuffer rb(transition_schema(), 40, 3, 2);
  Batch a(0, 40);
  rb.add(a.ptrs.data(), 40);
  Out out(200);
  std::vector<float> disc(200);
  std::vector<std::int64_t> idx(200);
  rb.sample_n_step(200, 2, 1.0, out.ptrs.data(), disc.data(), idx.data());
  for (int k = 0; k < 200; ++k) {
    const std::int64_t i = idx[k];
    if (i + 2 < 40) {
      EXPECT_EQ(out.reward[k], static_cast<float>(2 * i + 2));
      EXPECT_EQ(out.next_obs[12 * k], static_cast<float>(i + 2) + 0.5f);
    } else {
      EXPECT_EQ(out.reward[k], static_cast<float>(i));  // newest step of its env
    }
  }
}

TEST(SumMinTree, FindMatchesPrefixSums) {
  SumMinTree t(1000);
  std::vector<double> v(1000);
  for (int i = 0; i < 1000; ++i) {
    v[i] = (i % 7 == 0) ? 0.0 : 1.0 + (i % 13);
    t.set(i, v[i]);
  }
  const double total = std::accumulate(v.begin(), v.end(), 0.0);
  EXPECT_NEAR(t.total(), total, 1e-9);
  EXPECT_EQ(t.min(), 1.0);  // zeros are left out of the min
  double prefix = 0;
  for (int i = 0; i < 1000; ++i) {
    if (v[i] > 0) {
      EXPECT_EQ(t.find(prefix + 0.5 * v[i]), i);
    }
    prefix += v[i];
  }
  EXPECT_NE(t.find(total), 0);  // rounding at the top picks a non-zero leaf
  EXPECT_GT(t.get(t.find(total)), 0.0);
  t.set_range(990, 1000, 100.0);
  EXPECT_EQ(t.get(995), 100.0);
}

TEST(PrioritizedReplayBuffer, FrequenciesFollowPriorities) {
  PrioritizedReplayBuffer pb(transition_schema(), 8, 1.0, 1.0, 0.0, 11);
  Batch a(0, 8);
  pb.add(a.ptrs.data(), 8);
  std::vector<std::int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<double> p = {1, 2, 3, 4, 5, 6, 7, 8};
  pb.update_priorities(idx.data(), p.data(), 8);
  const int n = 36000;
  Out out(n);
  std::vector<std::int64_t> got(n);
  std::vector<float> w(n);
  pb.sample(n, out.ptrs.data(), got.data(), w.data());
  std::vector<int> counts(8, 0);
  for (int k = 0; k < n; ++k) {
    counts[got[k]]++;
    EXPECT_FLOAT_EQ(w[k], static_cast<float>(1.0 / (got[k] + 1)));  // (p / p_min)^-1
  }
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(counts[i], n * (i + 1) / 36.0, 5 * std::sqrt(n * (i + 1) / 36.0));
  std::vector<double> bad = {-1.0};
  EXPECT_THROW(pb.update_priorities(idx.data(), bad.data(), 1), InvalidArgument);
  std::vector<std::int64_t> bad_idx = {8};
  EXPECT_THROW(pb.update_priorities(bad_idx.data(), p.data(), 1), InvalidArgument);
}

TEST(EpisodeBuffer, WindowsNeverCrossEpisodesUnflagged) {
  // 2 envs, done every 5 steps, 30 steps each (ring of 16 per env wraps).
  EpisodeBuffer eb(transition_schema(), 32, 2, 5);
  for (int t = 0; t < 30; ++t) {
    Batch one(t, 1, 5);  // the same step (id t) for both envs
    Batch two(t, 2, 5);
    for (int k = 0; k < 12; ++k) two.obs[12 + k] = one.obs[k], two.next_obs[12 + k] = one.next_obs[k];
    two.action[3] = two.action[4] = two.action[5] = t;
    two.reward[1] = one.reward[0];
    two.done[1] = one.done[0];
    eb.add_step(two.ptrs.data(), nullptr, 2);
  }
  const int B = 300, L = 8;
  for (auto mode : {SequenceMode::kPad, SequenceMode::kStitch}) {
    Out out(B * L);
    std::vector<std::uint8_t> mask(B * L), first(B * L);
    eb.sample_sequences(B, L, mode, out.ptrs.data(), reinterpret_cast<bool*>(mask.data()),
                        reinterpret_cast<bool*>(first.data()));
    for (int b = 0; b < B; ++b) {
      const float t0 = out.reward[b * L];
      ASSERT_GE(t0, 14.0f);  // steps 0..13 were overwritten
      for (int t = 0; t < L; ++t) {
        const int o = b * L + t;
        if (!mask[o]) {
          ASSERT_EQ(mode, SequenceMode::kPad);
          ASSERT_EQ(out.reward[o], 0.0f);
          continue;
        }
        ASSERT_EQ(out.reward[o], t0 + t);  // consecutive steps of one env
        const bool starts = static_cast<int>(out.reward[o]) % 5 == 0;
        ASSERT_EQ(first[o] != 0, starts) << out.reward[o];
        if (mode == SequenceMode::kPad && t > 0) ASSERT_FALSE(starts);  // cut at the episode end
      }
    }
  }
}

TEST(RolloutBuffer, GaeMatchesRecursion) {
  Schema s({{"reward", {2}, DType::kFloat32},
            {"value", {2}, DType::kFloat32},
            {"terminated", {}, DType::kBool},
            {"truncated", {}, DType::kBool},
            {"final_value", {2}, DType::kFloat32}});
  const int T = 6, E = 3;
  RolloutBuffer rb(s, T, E);
  std::vector<float> rew(T * E * 2), val(T * E * 2), fin(T * E * 2);
  std::vector<std::uint8_t> term(T * E), trunc(T * E);
  for (int i = 0; i < T * E * 2; ++i) {
    rew[i] = std::sin(i * 1.3f);
    val[i] = std::cos(i * 0.7f);
    fin[i] = 0.25f * i;
  }
  for (int i = 0; i < T * E; ++i) {
    term[i] = i % 7 == 3;
    trunc[i] = i % 5 == 4;
  }
  for (int t = 0; t < T; ++t) {
    std::vector<const void*> p = {rew.data() + t * E * 2, val.data() + t * E * 2, term.data() + t * E,
                                  trunc.data() + t * E, fin.data() + t * E * 2};
    rb.add(p.data());
  }
  std::vector<float> last(E * 2, 2.0f);
  rb.compute_gae({last.data()}, 0.9, 0.8);
  std::vector<float> adv(T * E * 2), ret(T * E * 2);
  rb.copy_field(0, true, adv.data());
  rb.copy_field(1, true, ret.data());
  for (int e = 0; e < E; ++e) {
    for (int j = 0; j < 2; ++j) {
      double gae = 0;
      for (int t = T - 1; t >= 0; --t) {
        const int i = (t * E + e) * 2 + j, f = t * E + e;
        const double nv = term[f] ? 0.0 : trunc[f] ? fin[i] : t == T - 1 ? last[e * 2 + j] : val[i + E * 2];
        const bool done = term[f] || trunc[f];
        gae = rew[i] + 0.9 * nv - val[i] + (done ? 0.0 : 0.72 * gae);
        EXPECT_NEAR(adv[i], gae, 1e-5);
        EXPECT_NEAR(ret[i], gae + val[i], 1e-5);
      }
    }
  }
  EXPECT_THROW(rb.add({}), InvalidArgument);  // full
}

TEST(Persistence, RoundTripAndCorruption) {
  const std::string path = temp_path("replay.bin");
  PrioritizedReplayBuffer pb(transition_schema(), 50, 0.6, 0.4, 1e-6, 3);
  Batch a(0, 37);
  pb.add(a.ptrs.data(), 37);
  std::vector<std::int64_t> idx = {1, 5, 9};
  std::vector<double> p = {3, 0.5, 7};
  pb.update_priorities(idx.data(), p.data(), 3);
  pb.save(path);
  PrioritizedReplayBuffer back = PrioritizedReplayBuffer::load(path);
  EXPECT_EQ(back.size(), 37);
  Out o1(64), o2(64);
  std::vector<std::int64_t> i1(64), i2(64);
  std::vector<float> w1(64), w2(64);
  pb.sample(64, o1.ptrs.data(), i1.data(), w1.data());
  back.sample(64, o2.ptrs.data(), i2.data(), w2.data());
  EXPECT_EQ(i1, i2);
  EXPECT_EQ(w1, w2);
  EXPECT_EQ(o1.obs, o2.obs);
  EXPECT_THROW(ReplayBuffer::load(path), FileError);  // wrong kind
  // Flip one byte in the middle, then truncate.
  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::vector<char>& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  auto flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;
  write(flipped);
  EXPECT_THROW(PrioritizedReplayBuffer::load(path), FileError);
  write(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() - 9)));
  EXPECT_THROW(PrioritizedReplayBuffer::load(path), FileError);
  std::remove(path.c_str());
  EXPECT_THROW(PrioritizedReplayBuffer::load(path), FileError);  // missing
}

TEST(Concurrency, AddAndSampleFromTwoThreads) {
  ReplayBuffer rb(transition_schema(), 1000, 9);
  Batch first(0, 10);
  rb.add(first.ptrs.data(), 10);
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::thread writer([&] {
    for (int round = 0; round < 3000; ++round) {
      Batch b(round * 37, 37);
      rb.add(b.ptrs.data(), 37);
    }
    stop = true;
  });
  std::thread reader([&] {
    Out out(64);
    while (!stop) {
      rb.sample(64, out.ptrs.data());
      for (int k = 0; k < 64; ++k) {
        // Every field of a sampled item comes from the same add.
        const auto id = out.action[3 * k];
        if (out.obs[12 * k + 11] != static_cast<float>(id) || out.next_obs[12 * k] != static_cast<float>(id) + 0.5f) {
          bad++;
        }
      }
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(rb.size(), 1000);
}
