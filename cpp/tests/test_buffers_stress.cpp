// Multi-threaded stress test of the buffers' concurrency contract (replay.hpp):
// every public method of a buffer locks it, so any calls on one buffer may come
// from any threads; files written concurrently to one path are never mixed.
//
// Each test runs several threads that use a shared buffer plus buffers of their
// own, and checks that no sampled item is torn (all fields of an item encode
// the same id). Meant to run under ThreadSanitizer too:
//   cmake -S . -B build-tsan -G Ninja -DGENMARL_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
//     -DCMAKE_CXX_FLAGS="-fsanitize=thread -g" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
//   cmake --build build-tsan && ctest --test-dir build-tsan -R BufferStress
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "genmarl/buffer/all.hpp"

using namespace genmarl::buffer;

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 200;

// Two fields that both encode an item's id: "id" (int64 x2) and "x" (float32 x3).
Schema id_schema() { return Schema({{"id", {2}, DType::kInt64}, {"x", {3}, DType::kFloat32}}); }

struct Items {
  std::vector<std::int64_t> id;
  std::vector<float> x;
  std::vector<const void*> ptrs;
  Items(std::int64_t first, std::int64_t n) {
    for (std::int64_t i = first; i < first + n; ++i) {
      id.insert(id.end(), {i, i});
      x.insert(x.end(), {static_cast<float>(i), static_cast<float>(i), static_cast<float>(i)});
    }
    ptrs = {id.data(), x.data()};
  }
};

struct Sampled {
  std::vector<std::int64_t> id;
  std::vector<float> x;
  std::vector<void*> ptrs;
  explicit Sampled(std::int64_t n) : id(2 * n), x(3 * n) { ptrs = {id.data(), x.data()}; }
  // Items whose fields disagree (a torn read); zero-filled padding counts as item 0.
  int torn() const {
    int bad = 0;
    for (std::size_t k = 0; k < id.size() / 2; ++k) {
      const auto i = id[2 * k];
      bad += id[2 * k + 1] != i || x[3 * k] != static_cast<float>(i) || x[3 * k + 2] != static_cast<float>(i);
    }
    return bad;
  }
};

std::filesystem::path scratch_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() /
           (std::string("genmarl_stress_") + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

// A shared replay buffer and a shared prioritized buffer used by every thread
// (add, sample, n-step sample, update/get priorities, beta, save), plus each
// thread's own replay buffer saved to and loaded from its own path.
TEST(BufferStress, SharedReplayAndPrioritizedBuffers) {
  const auto dir = scratch_dir("replay");
  ReplayBuffer shared(id_schema(), 512, 1);
  PrioritizedReplayBuffer prioritized(id_schema(), 512, 0.6, 0.4, 1e-6, 2);
  {
    Items seed_items(0, 8);
    shared.add(seed_items.ptrs.data(), 8);
    prioritized.add(seed_items.ptrs.data(), 8);
  }
  std::atomic<int> torn{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ReplayBuffer own(id_schema(), 64, 100 + t);
      const auto own_path = (dir / ("own" + std::to_string(t) + ".gmb")).string();
      std::vector<double> prio(4);
      for (int r = 0; r < kRounds; ++r) {
        const std::int64_t first = (t + 1) * 100000 + 4 * r;
        Items items(first, 4);
        for (int k = 0; k < 4; ++k) prio[k] = 0.5 + (r + k) % 3;
        shared.add(items.ptrs.data(), 4);
        prioritized.add(items.ptrs.data(), 4, (r % 2) ? prio.data() : nullptr);
        own.add(items.ptrs.data(), 4);

        Sampled s(16);
        std::vector<std::int64_t> idx(16);
        std::vector<float> w(16);
        shared.sample(16, s.ptrs.data(), idx.data());
        torn += s.torn();
        prioritized.sample(16, s.ptrs.data(), idx.data(), w.data());
        torn += s.torn();
        std::vector<double> p(16, 1.0 + r % 5);
        prioritized.update_priorities(idx.data(), p.data(), 16);
        prioritized.get_priorities(idx.data(), p.data(), 16);
        prioritized.set_beta(0.4 + 0.1 * (r % 3));
        failures += !(prioritized.beta() >= 0.4 && prioritized.max_priority() >= 1.0);
        failures += shared.size() < 8 || shared.size() > 512;
        if (r % 50 == 0) {
          own.save(own_path);
          ReplayBuffer back = ReplayBuffer::load(own_path);
          failures += back.size() != own.size();
          prioritized.save((dir / ("prioritized" + std::to_string(t) + ".gmb")).string());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(shared.size(), 512);
  EXPECT_EQ(PrioritizedReplayBuffer::load((dir / "prioritized0.gmb").string()).capacity(), 512);
  std::filesystem::remove_all(dir);
}

// A shared episode buffer: each thread writes its own env's steps (add_step
// with env ids, end_episode) while all of them sample sequences; a shared
// rollout that one thread fills and resets while the others read it.
TEST(BufferStress, SharedEpisodeAndRolloutBuffers) {
  EpisodeBuffer episodes(Schema({{"id", {2}, DType::kInt64}, {"x", {3}, DType::kFloat32}, {"done", {}, DType::kBool}}),
                         kThreads * 64, kThreads, 3);
  RolloutBuffer rollout(id_schema(), 8, kThreads);
  std::atomic<int> torn{0}, failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::int64_t env = t;
      for (int r = 0; r < kRounds; ++r) {
        Items items((t + 1) * 100000 + r, 1);
        const bool done = r % 7 == 6;
        const void* step[3] = {items.id.data(), items.x.data(), &done};
        episodes.add_step(step, &env, 1);
        if (r % 11 == 10) episodes.end_episode(&env, 1);
        Sampled s(4 * 3);
        std::vector<std::uint8_t> done_out(12);
        void* out[3] = {s.id.data(), s.x.data(), done_out.data()};
        bool mask[12], first[12];
        try {
          episodes.sample_sequences(4, 3, (r % 2) ? SequenceMode::kStitch : SequenceMode::kPad, out, mask, first);
        } catch (const InvalidArgument&) {  // no env holds 3 consecutive steps yet
          continue;
        }
        torn += s.torn();
        failures += episodes.size() > kThreads * 64;
      }
    });
  }
  // The rollout: thread 0 of this group writes, the others read with the step
  // count they sized for (a changed count is a clean InvalidArgument).
  std::thread writer([&] {
    for (int r = 0; r < kRounds && !stop; ++r) {
      if (rollout.full()) rollout.reset();
      Items items(r * kThreads, kThreads);
      rollout.add(items.ptrs.data());
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        const std::int64_t steps = rollout.step();
        std::vector<std::int64_t> col(static_cast<std::size_t>(steps * kThreads * 2) + 1);
        try {
          rollout.copy_field(0, false, col.data(), steps);
        } catch (const InvalidArgument&) {
          // add/reset in between: a clean error, nothing written past col
        }
        if (steps > 0) {
          const std::int64_t row = 0;
          Sampled s(1);
          try {
            rollout.gather(&row, 1, s.ptrs.data(), nullptr);
            torn += s.torn();
          } catch (const InvalidArgument&) {
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  writer.join();
  for (auto& th : readers) th.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(failures.load(), 0);
}

// Threads save different buffers to one path many times while another thread
// loads it: every load succeeds and equals one writer's file, and no temp file
// is left behind.
TEST(BufferStress, ConcurrentSavesToOnePath) {
  const auto dir = scratch_dir("saves");
  const auto target = (dir / "shared.gmb").string();
  std::vector<std::string> expected;
  std::vector<ReplayBuffer> buffers;
  for (int t = 0; t < kThreads; ++t) {
    buffers.emplace_back(id_schema(), 256, t);
    Items items(t * 1000, 100 + t);
    buffers.back().add(items.ptrs.data(), 100 + t);
    const auto alone = (dir / ("alone" + std::to_string(t) + ".gmb")).string();
    buffers.back().save(alone);
    expected.push_back(read_file(alone));
  }
  buffers[0].save(target);
  std::atomic<int> writers_left{kThreads}, bad{0}, loads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 30; ++r) buffers[static_cast<std::size_t>(t)].save(target);
      --writers_left;
    });
  }
  std::thread reader([&] {
    while (writers_left > 0) {
      try {
        ReplayBuffer b = ReplayBuffer::load(target);
        bad += b.size() < 100 || b.size() >= 100 + kThreads;
        ++loads;
      } catch (const FileError&) {
        ++bad;
      }
    }
  });
  for (auto& th : threads) th.join();
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  const std::string final_bytes = read_file(target);
  EXPECT_NE(std::find(expected.begin(), expected.end(), final_bytes), expected.end());
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  std::filesystem::remove_all(dir);
}
