// Whole-episode storage for many parallel envs, sampled as fixed-length
// sequences (world-model training).
//
// Each env owns a ring of T = capacity_steps / num_envs consecutive steps
// (storage is env-major, so a window is one or two contiguous copies per
// field). An episode ends after a step in which any boundary field
// (done/terminated/truncated, or group/...) is set, or when end_episode() is
// called; the env's next step starts a new episode. Per-step metadata (episode
// number, first-step flag) lets sampling flag or mask episode boundaries:
//  * kPad: a window starts at any stored step and is cut at the end of its
//    episode (or the newest step); the rest is zero-filled, mask = false.
//  * kStitch: a window is any L consecutive stored steps of one env; it may run
//    into the next episode, whose first step has is_first = true (mask all true).
// Same locking and memory contract as ReplayBuffer: storage and metadata are
// reserved after the memory check and committed as steps arrive.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "genmarl/buffer/memory.hpp"
#include "genmarl/buffer/schema.hpp"
#include "genmarl/buffer/serialize.hpp"
#include "genmarl/core/rng.hpp"

namespace genmarl::buffer {

enum class SequenceMode : std::uint8_t { kPad = 0, kStitch = 1 };

class EpisodeBuffer {
 public:
  static constexpr std::uint64_t kStream = 0x45504953ULL;  // "EPIS"

  EpisodeBuffer(Schema schema, std::int64_t capacity_steps, std::int64_t num_envs, std::uint64_t seed)
      : schema_(std::move(schema)), num_envs_(num_envs), seed_(seed), rng_(seed, kStream, 0) {
    if (num_envs <= 0) throw InvalidArgument("num_envs must be positive, got " + std::to_string(num_envs));
    if (capacity_steps < num_envs) {
      throw InvalidArgument("capacity_steps (" + std::to_string(capacity_steps) + ") must be at least num_envs (" +
                            std::to_string(num_envs) + ")");
    }
    steps_per_env_ = capacity_steps / num_envs;
    const std::int64_t slots = steps_per_env_ * num_envs;
    check_memory(bytes_for(schema_, slots), "an EpisodeBuffer of capacity_steps " + std::to_string(slots));
    store_ = ColumnStore(schema_, slots);
    episode_ = LazyZeroArray<std::int64_t>(static_cast<std::size_t>(slots));
    first_ = LazyZeroArray<std::uint8_t>(static_cast<std::size_t>(slots));
    envs_.assign(static_cast<std::size_t>(num_envs), EnvState{});
    for (std::size_t f = 0; f < schema_.size(); ++f) {
      if (is_boundary_field(schema_[f].name)) boundary_.push_back(static_cast<int>(f));
    }
  }

  // Bytes reserved for `slots` steps: storage plus per-slot metadata (saturating).
  static std::uint64_t bytes_for(const Schema& schema, std::int64_t slots) noexcept {
    if (slots <= 0) return 0;
    return saturating_mul(saturating_add(schema.row_bytes(), sizeof(std::int64_t) + 1), static_cast<std::uint64_t>(slots));
  }

  const Schema& schema() const noexcept { return schema_; }
  std::int64_t num_envs() const noexcept { return num_envs_; }
  std::int64_t steps_per_env() const noexcept { return steps_per_env_; }
  std::int64_t capacity() const noexcept { return steps_per_env_ * num_envs_; }
  std::size_t nbytes() const noexcept {
    return store_.nbytes() + episode_.size() * sizeof(std::int64_t) + first_.size();
  }
  // Stored steps over all envs.
  std::int64_t size() const {
    std::lock_guard lock(mutex_);
    std::int64_t n = 0;
    for (const auto& e : envs_) n += e.count;
    return n;
  }
  // Episodes finished so far (over all envs, including ones since overwritten).
  std::int64_t num_episodes() const {
    std::lock_guard lock(mutex_);
    std::int64_t n = 0;
    for (const auto& e : envs_) n += e.episode;
    return n;
  }

  // Adds one step for n envs: src[f] holds n items in the order of env_ids
  // (nullptr: n == num_envs and item k belongs to env k).
  void add_step(const void* const* src, const std::int64_t* env_ids, std::int64_t n) {
    if (env_ids) {
      check_env_ids(env_ids, n);
    } else if (n != num_envs_) {
      throw InvalidArgument("add_step without env_ids needs one item per env (" + std::to_string(num_envs_) +
                            "), got " + std::to_string(n));
    }
    std::lock_guard lock(mutex_);
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t e = env_ids ? env_ids[k] : k;
      EnvState& s = envs_[static_cast<std::size_t>(e)];
      const std::int64_t row = e * steps_per_env_ + s.pos;
      for (std::size_t f = 0; f < schema_.size(); ++f) {
        const std::size_t rb = store_.row_bytes(f);
        std::memcpy(store_.row(f, row), static_cast<const std::byte*>(src[f]) + rb * k, rb);
      }
      episode_[static_cast<std::size_t>(row)] = s.episode;
      first_[static_cast<std::size_t>(row)] = s.in_episode ? 0 : 1;
      s.in_episode = 1;
      bool ended = false;
      for (int f : boundary_) ended = ended || any_set(schema_[f].dtype, store_.row(f, row), schema_[f].elements());
      if (ended) close_episode(s);
      s.pos = (s.pos + 1) % steps_per_env_;
      s.count = std::min(steps_per_env_, s.count + 1);
    }
  }

  // The given envs' next steps start new episodes (e.g. after a manual reset).
  void end_episode(const std::int64_t* env_ids, std::int64_t n) {
    check_env_ids(env_ids, n);
    std::lock_guard lock(mutex_);
    for (std::int64_t k = 0; k < n; ++k) {
      EnvState& s = envs_[static_cast<std::size_t>(env_ids[k])];
      if (s.in_episode) close_episode(s);
    }
  }

  // Samples batch windows of `length` steps. out[f] is [batch, length, ...],
  // mask and is_first are [batch, length]; env_out/start_out (optional) get
  // each window's env and the logical position of its first step (0 = oldest stored).
  void sample_sequences(std::int64_t batch, std::int64_t length, SequenceMode mode, void* const* out, bool* mask,
                        bool* is_first, std::int64_t* env_out = nullptr, std::int64_t* start_out = nullptr) {
    if (batch <= 0) throw InvalidArgument("batch_size must be positive, got " + std::to_string(batch));
    if (length <= 0) throw InvalidArgument("length must be positive, got " + std::to_string(length));
    if (length > steps_per_env_) {
      throw InvalidArgument("length " + std::to_string(length) + " is longer than each env's storage (" +
                            std::to_string(steps_per_env_) + " steps = capacity_steps / num_envs)");
    }
    std::lock_guard lock(mutex_);
    // Valid start positions per env, as a prefix sum for uniform sampling.
    std::vector<std::int64_t> prefix(static_cast<std::size_t>(num_envs_) + 1, 0);
    for (std::int64_t e = 0; e < num_envs_; ++e) {
      const std::int64_t c = envs_[static_cast<std::size_t>(e)].count;
      const std::int64_t starts = mode == SequenceMode::kStitch ? std::max<std::int64_t>(0, c - length + 1) : c;
      prefix[static_cast<std::size_t>(e) + 1] = prefix[static_cast<std::size_t>(e)] + starts;
    }
    const std::int64_t total = prefix.back();
    if (total == 0) {
      throw InvalidArgument(mode == SequenceMode::kStitch
                                ? "no env holds " + std::to_string(length) + " consecutive steps yet (add more steps or use mode='pad')"
                                : std::string("cannot sample from an empty buffer (add steps first)"));
    }
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto u = static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(total)));
      const std::int64_t e = std::upper_bound(prefix.begin(), prefix.end(), u) - prefix.begin() - 1;
      const std::int64_t j = u - prefix[static_cast<std::size_t>(e)];
      const EnvState& s = envs_[static_cast<std::size_t>(e)];
      const std::int64_t oldest = (s.pos - s.count + steps_per_env_) % steps_per_env_;
      const std::int64_t base = e * steps_per_env_;
      // Valid length of this window.
      std::int64_t valid = std::min(length, s.count - j);
      const std::int64_t slot0 = (oldest + j) % steps_per_env_;
      if (mode == SequenceMode::kPad) {
        const std::int64_t ep = episode_[static_cast<std::size_t>(base + slot0)];
        for (std::int64_t t = 1; t < valid; ++t) {
          if (episode_[static_cast<std::size_t>(base + (slot0 + t) % steps_per_env_)] != ep) {
            valid = t;
            break;
          }
        }
      }
      copy_window(base, slot0, valid, length, b, out);
      for (std::int64_t t = 0; t < length; ++t) {
        const std::size_t o = static_cast<std::size_t>(b * length + t);
        mask[o] = t < valid;
        is_first[o] = t < valid && first_[static_cast<std::size_t>(base + (slot0 + t) % steps_per_env_)] != 0;
      }
      if (env_out) env_out[b] = e;
      if (start_out) start_out[b] = j;
    }
  }

  void save(const std::string& path) const {
    std::lock_guard lock(mutex_);
    FileWriter w(path);
    w.header(BufferKind::kEpisode, schema_);
    w.value(steps_per_env_);
    w.value(num_envs_);
    w.value(seed_);
    w.value(rng_.counter());
    w.vector(envs_);
    for (std::int64_t e = 0; e < num_envs_; ++e) {
      const std::int64_t base = e * steps_per_env_, c = envs_[static_cast<std::size_t>(e)].count;
      // A ring that has not wrapped holds slots [0, count).
      write_rows(w, store_, base, c);
      w.bytes(episode_.data() + base, sizeof(std::int64_t) * static_cast<std::size_t>(c));
      w.bytes(first_.data() + base, static_cast<std::size_t>(c));
    }
    w.commit();
  }

  static EpisodeBuffer load(const std::string& path) {
    FileReader r(path);
    Schema schema = r.header(BufferKind::kEpisode);
    const auto steps = r.value<std::int64_t>();
    const auto num_envs = r.value<std::int64_t>();
    const auto seed = r.value<std::uint64_t>();
    const auto counter = r.value<std::uint64_t>();
    if (steps <= 0 || num_envs <= 0 || num_envs > (std::int64_t{1} << 40) / steps) r.corrupt("buffer state");
    auto envs = r.vector<EnvState>(static_cast<std::size_t>(num_envs));
    if (static_cast<std::int64_t>(envs.size()) != num_envs) r.corrupt("env count");
    std::uint64_t need = 0;
    for (const auto& s : envs) {
      if (s.count < 0 || s.count > steps || s.pos < 0 || s.pos >= steps || (s.count < steps && s.pos != s.count) ||
          s.episode < 0 || s.in_episode > 1) {
        r.corrupt("env state");
      }
      need = saturating_add(need, saturating_mul(schema.row_bytes() + sizeof(std::int64_t) + 1,
                                                 static_cast<std::uint64_t>(s.count)));
    }
    r.expect_remaining(need);
    check_memory(bytes_for(schema, steps * num_envs),
                 "'" + r.path() + "' holds an EpisodeBuffer of capacity_steps " + std::to_string(steps * num_envs) +
                     ", which");
    EpisodeBuffer b(std::move(schema), steps * num_envs, num_envs, seed);
    b.rng_.set_counter(counter);
    b.envs_ = std::move(envs);
    for (std::int64_t e = 0; e < num_envs; ++e) {
      const std::int64_t base = e * steps, c = b.envs_[static_cast<std::size_t>(e)].count;
      read_rows(r, b.store_, base, c);
      r.bytes(b.episode_.data() + base, sizeof(std::int64_t) * static_cast<std::size_t>(c));
      r.bytes(b.first_.data() + base, static_cast<std::size_t>(c));
    }
    r.finish();
    return b;
  }

  EpisodeBuffer(EpisodeBuffer&& o) noexcept
      : schema_(std::move(o.schema_)), store_(std::move(o.store_)), num_envs_(o.num_envs_),
        steps_per_env_(o.steps_per_env_), seed_(o.seed_), rng_(o.rng_), episode_(std::move(o.episode_)),
        first_(std::move(o.first_)), envs_(std::move(o.envs_)), boundary_(std::move(o.boundary_)) {}

 private:
  struct EnvState {
    std::int64_t pos = 0;      // next slot to write
    std::int64_t count = 0;    // stored steps
    std::int64_t episode = 0;  // number of the current (or next) episode
    std::uint8_t in_episode = 0;  // 1 when the current episode has stored steps
    std::uint8_t pad[7] = {};
  };

  static void close_episode(EnvState& s) noexcept {
    s.in_episode = 0;
    ++s.episode;
  }

  void check_env_ids(const std::int64_t* env_ids, std::int64_t n) const {
    if (n <= 0) throw InvalidArgument("at least one env id is needed, got " + std::to_string(n));
    std::vector<bool> seen(static_cast<std::size_t>(num_envs_), false);
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t e = env_ids[k];
      if (e < 0 || e >= num_envs_) {
        throw InvalidArgument("env id " + std::to_string(e) + " is out of range; valid ids are 0.." +
                              std::to_string(num_envs_ - 1));
      }
      if (seen[static_cast<std::size_t>(e)]) throw InvalidArgument("env id " + std::to_string(e) + " is listed twice");
      seen[static_cast<std::size_t>(e)] = true;
    }
  }

  void copy_window(std::int64_t base, std::int64_t slot0, std::int64_t valid, std::int64_t length, std::int64_t b,
                   void* const* out) const noexcept {
    const std::int64_t run1 = std::min(valid, steps_per_env_ - slot0);
    for (std::size_t f = 0; f < schema_.size(); ++f) {
      const std::size_t rb = store_.row_bytes(f);
      auto* dst = static_cast<std::byte*>(out[f]) + rb * static_cast<std::size_t>(b * length);
      std::memcpy(dst, store_.row(f, base + slot0), rb * static_cast<std::size_t>(run1));
      if (valid > run1) std::memcpy(dst + rb * run1, store_.row(f, base), rb * static_cast<std::size_t>(valid - run1));
      if (valid < length) std::memset(dst + rb * valid, 0, rb * static_cast<std::size_t>(length - valid));
    }
  }

  Schema schema_;
  ColumnStore store_;
  std::int64_t num_envs_;
  std::int64_t steps_per_env_ = 0;
  std::uint64_t seed_;
  CounterRng rng_;
  LazyZeroArray<std::int64_t> episode_;  // per slot: the env's episode number
  LazyZeroArray<std::uint8_t> first_;    // per slot: first step of its episode
  std::vector<EnvState> envs_;
  std::vector<int> boundary_;
  mutable std::mutex mutex_;
};

}  // namespace genmarl::buffer
