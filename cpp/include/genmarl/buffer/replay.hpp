// Uniform experience replay over a fixed-capacity ring, with optional n-step
// returns computed at sample time.
//
// Items are added in batches (wrap-around). When the batch rows are one step
// of `num_envs` parallel envs (row r's next step is row r + num_envs), n-step
// returns follow each env's own time line and stop at episode boundaries.
//
// Thread safety (the contract of every buffer): each public method locks the
// buffer's mutex for its whole duration, so any two calls on one buffer may run
// from different threads; they are serialised, and a sample sees an add
// entirely or not at all. Sequences of calls are not atomic. The core never
// takes the GIL, so a binding may wait for the mutex with or without it.
//
// Memory: see memory.hpp. The constructor checks the bytes it reserves against
// memory_limit() before allocating; storage pages are committed as items arrive.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "genmarl/buffer/memory.hpp"
#include "genmarl/buffer/schema.hpp"
#include "genmarl/buffer/serialize.hpp"
#include "genmarl/core/rng.hpp"

namespace genmarl::buffer {

// The field roles n-step sampling uses (see schema.hpp's name conventions).
struct NStepFields {
  std::vector<int> reward, terminal, boundary, next;

  explicit NStepFields(const Schema& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto& name = s[i].name;
      const int k = static_cast<int>(i);
      if (is_reward_field(name)) reward.push_back(k);
      if (is_terminal_field(name)) terminal.push_back(k);
      if (is_boundary_field(name)) boundary.push_back(k);
      if (is_next_field(name)) next.push_back(k);
    }
  }
};

class ReplayBuffer {
 public:
  static constexpr std::uint64_t kStream = 0x5245504C4159ULL;  // "REPLAY"

  ReplayBuffer(Schema schema, std::int64_t capacity, std::uint64_t seed, std::int64_t num_envs = 1)
      : ReplayBuffer(std::move(schema), capacity, seed, num_envs, 0, "ReplayBuffer") {}

  // Bytes of field storage for `rows` items (saturating).
  static std::uint64_t storage_bytes(const Schema& schema, std::int64_t rows) noexcept {
    return rows <= 0 ? 0 : saturating_mul(schema.row_bytes(), static_cast<std::uint64_t>(rows));
  }

  const Schema& schema() const noexcept { return schema_; }
  std::int64_t capacity() const noexcept { return capacity_; }
  std::int64_t num_envs() const noexcept { return num_envs_; }
  std::int64_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }
  std::size_t nbytes() const noexcept { return store_.nbytes(); }

  // Adds n items; src[f] points at n contiguous items of field f.
  void add(const void* const* src, std::int64_t n) {
    check_add(n);
    std::lock_guard lock(mutex_);
    add_locked(src, n);
  }

  // Draws batch uniform indices in [0, size) and gathers the items into out[f]
  // ([batch, ...] per field); indices_out (optional) receives the slots.
  void sample(std::int64_t batch, void* const* out, std::int64_t* indices_out = nullptr) {
    std::vector<std::int64_t> idx(static_cast<std::size_t>(batch));
    {
      std::lock_guard lock(mutex_);
      check_sample(batch);
      for (auto& i : idx) i = static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(size_)));
      store_.gather(idx.data(), batch, out);
    }
    if (indices_out) std::memcpy(indices_out, idx.data(), idx.size() * sizeof(std::int64_t));
  }

  // n-step sampling: as sample(), but every reward field holds the discounted
  // sum of up to n rewards along the item's env, stopping after a step where a
  // boundary field (done/terminated/truncated) is set or at the newest item;
  // next_* and boundary fields come from the last step of that window, the
  // others from the first. discount[k] = gamma^m (m = steps summed), or 0 when
  // the window ended on a terminal field (done/terminated).
  void sample_n_step(std::int64_t batch, std::int64_t n_step, double gamma, void* const* out, float* discount,
                     std::int64_t* indices_out = nullptr) {
    const NStepFields roles(schema_);
    if (n_step < 1) throw InvalidArgument("n_step must be >= 1, got " + std::to_string(n_step));
    if (!(gamma >= 0.0 && gamma <= 1.0)) throw InvalidArgument("gamma must be in [0, 1], got " + std::to_string(gamma));
    if (roles.reward.empty()) {
      throw InvalidArgument("n-step returns need a 'reward' field (or 'group/reward'); the spec has: " +
                            schema_.names());
    }
    for (int f : roles.reward) {
      if (schema_[f].dtype != DType::kFloat32) {
        throw InvalidArgument("n-step returns need float32 reward fields; '" + schema_[f].name + "' is " +
                              dtype_name(schema_[f].dtype));
      }
    }
    std::vector<std::int64_t> first(static_cast<std::size_t>(batch)), last(first.size());
    std::lock_guard lock(mutex_);
    check_sample(batch);
    const std::int64_t oldest = size_ < capacity_ ? 0 : pos_;
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::int64_t r0 = static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(size_)));
      first[k] = r0;
      std::int64_t r = r0;
      std::int64_t age = (r0 - oldest + capacity_) % capacity_;
      double scale = 1.0;
      bool terminal = false;
      // Reward sums in double, written as float32 at the end.
      for (int f : roles.reward) {
        const auto* src = reinterpret_cast<const float*>(store_.row(f, r0));
        auto* dst = reinterpret_cast<float*>(static_cast<std::byte*>(out[f]) + store_.row_bytes(f) * k);
        std::memcpy(dst, src, store_.row_bytes(f));
      }
      for (std::int64_t m = 1;; ++m) {
        bool ended = false;
        for (int f : roles.boundary) ended = ended || any_set(schema_[f].dtype, store_.row(f, r), schema_[f].elements());
        if (ended) {
          for (int f : roles.terminal) terminal = terminal || any_set(schema_[f].dtype, store_.row(f, r), schema_[f].elements());
        }
        if (ended || m == n_step || age + num_envs_ >= size_) {
          last[k] = r;
          discount[k] = terminal ? 0.0f : static_cast<float>(std::pow(gamma, static_cast<double>(m)));
          break;
        }
        r = (r + num_envs_) % capacity_;
        age += num_envs_;
        scale *= gamma;
        for (int f : roles.reward) {
          const auto* src = reinterpret_cast<const float*>(store_.row(f, r));
          auto* dst = reinterpret_cast<float*>(static_cast<std::byte*>(out[f]) + store_.row_bytes(f) * k);
          const auto e = schema_[f].elements();
          for (std::int64_t j = 0; j < e; ++j) dst[j] = static_cast<float>(dst[j] + scale * src[j]);
        }
      }
    }
    for (std::size_t f = 0; f < schema_.size(); ++f) {
      if (is_reward_field(schema_[f].name)) continue;
      const bool from_last = is_next_field(schema_[f].name) || is_boundary_field(schema_[f].name);
      store_.gather_field(f, from_last ? last.data() : first.data(), batch, out[f]);
    }
    if (indices_out) std::memcpy(indices_out, first.data(), first.size() * sizeof(std::int64_t));
  }

  void save(const std::string& path) const {
    std::lock_guard lock(mutex_);
    FileWriter w(path);
    w.header(BufferKind::kReplay, schema_);
    write_state(w);
    w.commit();
  }

  static ReplayBuffer load(const std::string& path) {
    FileReader r(path);
    Schema schema = r.header(BufferKind::kReplay);
    ReplayBuffer b = read_state(r, std::move(schema));
    r.finish();
    return b;
  }

  ReplayBuffer(ReplayBuffer&& o) noexcept
      : schema_(std::move(o.schema_)), store_(std::move(o.store_)), capacity_(o.capacity_), num_envs_(o.num_envs_),
        seed_(o.seed_), rng_(o.rng_), pos_(o.pos_), size_(o.size_) {}

 protected:
  // extra_bytes: what a derived buffer reserves beside the storage (counted
  // in the memory check before anything is allocated); kind names it in errors.
  ReplayBuffer(Schema schema, std::int64_t capacity, std::uint64_t seed, std::int64_t num_envs,
               std::uint64_t extra_bytes, const char* kind)
      : schema_(std::move(schema)), store_(schema_, checked_capacity(schema_, capacity, extra_bytes, kind)),
        capacity_(capacity), num_envs_(num_envs), seed_(seed), rng_(seed, kStream, 0) {
    if (num_envs <= 0) throw InvalidArgument("num_envs must be positive, got " + std::to_string(num_envs));
    if (capacity % num_envs != 0) {
      throw InvalidArgument("capacity (" + std::to_string(capacity) + ") must be a multiple of num_envs (" +
                            std::to_string(num_envs) + ") so each env's steps stay num_envs rows apart");
    }
  }

  static std::int64_t checked_capacity(const Schema& schema, std::int64_t capacity, std::uint64_t extra_bytes,
                                       const char* kind) {
    if (capacity > 0) {
      check_memory(saturating_add(storage_bytes(schema, capacity), extra_bytes),
                   std::string("a ") + kind + " of capacity " + std::to_string(capacity));
    }
    return capacity;
  }

  void check_add(std::int64_t n) const {
    if (n <= 0) throw InvalidArgument("add needs at least one item, got a batch of " + std::to_string(n));
    if (n > capacity_) {
      throw InvalidArgument("a batch of " + std::to_string(n) + " items is larger than the capacity " +
                            std::to_string(capacity_));
    }
    if (n % num_envs_ != 0) {
      throw InvalidArgument("add needs whole steps of num_envs=" + std::to_string(num_envs_) +
                            " items (batch of " + std::to_string(n) + ")");
    }
  }
  void check_sample(std::int64_t batch) const {
    if (size_ == 0) throw InvalidArgument("cannot sample from an empty buffer (add items first)");
    if (batch <= 0) throw InvalidArgument("batch_size must be positive, got " + std::to_string(batch));
  }
  // Writes n items at the head; returns the first slot written.
  std::int64_t add_locked(const void* const* src, std::int64_t n) {
    const std::int64_t at = pos_;
    store_.write_ring(src, 0, pos_, n);
    pos_ = (pos_ + n) % capacity_;
    size_ = std::min(capacity_, size_ + n);
    return at;
  }

  void write_state(FileWriter& w) const {
    w.value(capacity_);
    w.value(num_envs_);
    w.value(seed_);
    w.value(rng_.counter());
    w.value(pos_);
    w.value(size_);
    // Slots [0, size) are the filled ones (the ring starts at slot 0).
    write_rows(w, store_, 0, size_);
  }
  // extra_bytes(capacity): what the caller allocates beside the storage, for
  // the memory check on the file's claimed capacity (before any allocation).
  static ReplayBuffer read_state(FileReader& r, Schema schema, const char* kind = "ReplayBuffer",
                                 std::uint64_t (*extra_bytes)(std::int64_t) = nullptr) {
    const auto capacity = r.value<std::int64_t>();
    const auto num_envs = r.value<std::int64_t>();
    const auto seed = r.value<std::uint64_t>();
    const auto counter = r.value<std::uint64_t>();
    const auto pos = r.value<std::int64_t>();
    const auto size = r.value<std::int64_t>();
    if (capacity <= 0 || num_envs <= 0 || capacity % num_envs != 0 || size < 0 || size > capacity || pos < 0 ||
        pos >= capacity || (size < capacity && pos != size % capacity)) {
      r.corrupt("buffer state");
    }
    r.expect_remaining(saturating_mul(schema.row_bytes(), static_cast<std::uint64_t>(size)));
    check_memory(saturating_add(storage_bytes(schema, capacity), extra_bytes ? extra_bytes(capacity) : 0),
                 "'" + r.path() + "' holds a " + kind + " of capacity " + std::to_string(capacity) + ", which");
    ReplayBuffer b(std::move(schema), capacity, seed, num_envs);
    b.rng_.set_counter(counter);
    b.pos_ = pos;
    b.size_ = size;
    read_rows(r, b.store_, 0, size);
    return b;
  }

  Schema schema_;
  ColumnStore store_;
  std::int64_t capacity_;
  std::int64_t num_envs_;
  std::uint64_t seed_;
  CounterRng rng_;
  std::int64_t pos_ = 0;   // next slot to write
  std::int64_t size_ = 0;  // filled slots
  mutable std::mutex mutex_;
};

}  // namespace genmarl::buffer
