// On-policy rollout storage [num_steps, num_envs, ...] written one step of all
// envs at a time, with GAE / lambda-returns computed in C++.
//
// GAE works per reward field. For each field named "reward" or "P/reward" it
// reads, with the same prefix P: "value" (float32, the reward's shape),
// "terminated" and "truncated" (one flag per env, or one per reward element),
// and, where some step is truncated, "final_value": the value of the final
// observation of the episode that was truncated at that step. Next-state value
// of step t: 0 if terminated; final_value[t] if truncated; else value[t + 1]
// (or last_values after the final step). Results are stored as "P/advantage"
// and "P/return" (= advantage + value), float32, the reward's shape.
// Same locking and memory contract as ReplayBuffer.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "genmarl/buffer/memory.hpp"
#include "genmarl/buffer/schema.hpp"
#include "genmarl/buffer/serialize.hpp"

namespace genmarl::buffer {

class RolloutBuffer {
 public:
  RolloutBuffer(Schema schema, std::int64_t num_steps, std::int64_t num_envs)
      : schema_(std::move(schema)), num_steps_(num_steps), num_envs_(num_envs) {
    if (num_steps <= 0) throw InvalidArgument("num_steps must be positive, got " + std::to_string(num_steps));
    if (num_envs <= 0) throw InvalidArgument("num_envs must be positive, got " + std::to_string(num_envs));
    if (num_steps > (std::int64_t{1} << 40) / num_envs) throw InvalidArgument("num_steps * num_envs is too large");
    check_memory(bytes_for(schema_, num_steps * num_envs),
                 "a RolloutBuffer of " + std::to_string(num_steps) + " steps x " + std::to_string(num_envs) + " envs");
    store_ = ColumnStore(schema_, num_steps * num_envs);
    std::vector<Field> derived;
    for (std::size_t f = 0; f < schema_.size(); ++f) {
      const std::string& name = schema_[f].name;
      if (!is_reward_field(name)) continue;
      const std::string prefix = name.substr(0, name.size() - 6);
      for (const char* out : {"advantage", "return"}) {
        if (schema_.find(prefix + out) >= 0) {
          throw InvalidArgument("field '" + prefix + out + "' is computed by compute_gae(); remove it from the spec");
        }
        derived.push_back(Field{prefix + out, schema_[f].shape, DType::kFloat32});
      }
      prefixes_.push_back(prefix);
    }
    if (!derived.empty()) {
      derived_schema_ = Schema(std::move(derived));
      derived_ = ColumnStore(derived_schema_, num_steps * num_envs);
    }
  }

  // Bytes reserved for `rows` = num_steps * num_envs rows: the fields plus
  // "advantage" and "return" (float32) per reward field (saturating).
  static std::uint64_t bytes_for(const Schema& schema, std::int64_t rows) noexcept {
    std::uint64_t row_bytes = schema.row_bytes();
    for (const auto& f : schema.fields()) {
      if (is_reward_field(f.name)) row_bytes += 2 * sizeof(float) * static_cast<std::uint64_t>(f.elements());
    }
    return rows <= 0 ? 0 : saturating_mul(row_bytes, static_cast<std::uint64_t>(rows));
  }

  const Schema& schema() const noexcept { return schema_; }
  // The fields compute_gae() fills: "P/advantage", "P/return" for each reward field.
  const Schema& derived_schema() const noexcept { return derived_schema_; }
  // Prefixes ("" or "group/") of the reward fields, in spec order.
  const std::vector<std::string>& gae_prefixes() const noexcept { return prefixes_; }
  std::int64_t num_steps() const noexcept { return num_steps_; }
  std::int64_t num_envs() const noexcept { return num_envs_; }
  std::int64_t step() const {
    std::lock_guard lock(mutex_);
    return step_;
  }
  bool full() const {
    std::lock_guard lock(mutex_);
    return step_ == num_steps_;
  }
  bool gae_ready() const {
    std::lock_guard lock(mutex_);
    return gae_ready_;
  }
  std::size_t nbytes() const noexcept { return store_.nbytes() + derived_.nbytes(); }

  // Writes one step: src[f] holds num_envs items.
  void add(const void* const* src) {
    std::lock_guard lock(mutex_);
    if (step_ == num_steps_) {
      throw InvalidArgument("the rollout is full (" + std::to_string(num_steps_) + " steps); call reset() first");
    }
    store_.write_ring(src, 0, step_ * num_envs_, num_envs_);
    ++step_;
    gae_ready_ = false;
  }

  // Starts a new rollout (keeps the storage).
  void reset() {
    std::lock_guard lock(mutex_);
    step_ = 0;
    gae_ready_ = false;
  }

  // last_values[i]: [num_envs, *reward shape] values after the final step for
  // prefix gae_prefixes()[i]. Needs a full rollout.
  void compute_gae(const std::vector<const float*>& last_values, double gamma, double gae_lambda) {
    if (!(gamma >= 0.0 && gamma <= 1.0)) throw InvalidArgument("gamma must be in [0, 1], got " + std::to_string(gamma));
    if (!(gae_lambda >= 0.0 && gae_lambda <= 1.0)) {
      throw InvalidArgument("gae_lambda must be in [0, 1], got " + std::to_string(gae_lambda));
    }
    if (prefixes_.empty()) {
      throw InvalidArgument("compute_gae needs a 'reward' field (or 'group/reward'); the spec has: " + schema_.names());
    }
    if (last_values.size() != prefixes_.size()) {
      throw InvalidArgument("compute_gae needs " + std::to_string(prefixes_.size()) + " last_values arrays, got " +
                            std::to_string(last_values.size()));
    }
    std::vector<Roles> roles;
    for (const auto& p : prefixes_) roles.push_back(roles_for(p));
    std::lock_guard lock(mutex_);
    if (step_ != num_steps_) {
      throw InvalidArgument("compute_gae needs a full rollout: " + std::to_string(step_) + " of " +
                            std::to_string(num_steps_) + " steps were added");
    }
    for (std::size_t g = 0; g < roles.size(); ++g) check_truncations(roles[g], prefixes_[g]);
    const auto gam = static_cast<float>(gamma);
    const auto gl = static_cast<float>(gamma * gae_lambda);
    for (std::size_t g = 0; g < roles.size(); ++g) {
      const Roles& r = roles[g];
      const std::int64_t R = r.elements;
      auto* adv = reinterpret_cast<float*>(derived_.column(2 * g));
      auto* ret = reinterpret_cast<float*>(derived_.column(2 * g + 1));
      const auto* rew = reinterpret_cast<const float*>(store_.column(r.reward));
      const auto* val = reinterpret_cast<const float*>(store_.column(r.value));
      const auto* fin = r.final_value >= 0 ? reinterpret_cast<const float*>(store_.column(r.final_value)) : nullptr;
      for (std::int64_t e = 0; e < num_envs_; ++e) {
        for (std::int64_t j = 0; j < R; ++j) {
          float gae = 0.0f;
          for (std::int64_t t = num_steps_ - 1; t >= 0; --t) {
            const std::int64_t row = t * num_envs_ + e;
            const std::size_t i = static_cast<std::size_t>(row * R + j);
            const bool term = flag(r.terminated, r.flag_elements, row, j);
            const bool trunc = flag(r.truncated, r.flag_elements, row, j);
            float next_value;
            if (term) next_value = 0.0f;
            else if (trunc) next_value = fin[i];
            else if (t == num_steps_ - 1) next_value = last_values[g][e * R + j];
            else next_value = val[i + static_cast<std::size_t>(num_envs_ * R)];
            const float delta = rew[i] + gam * next_value - val[i];
            gae = delta + ((term || trunc) ? 0.0f : gl * gae);
            adv[i] = gae;
            ret[i] = gae + val[i];
          }
        }
      }
    }
    gae_ready_ = true;
  }

  // Gathers rows (flat index t * num_envs + e) of every field into out[f]
  // ([n, ...]) and, when GAE is computed, of the derived fields into derived_out.
  void gather(const std::int64_t* rows, std::int64_t n, void* const* out, void* const* derived_out) const {
    std::lock_guard lock(mutex_);
    const std::int64_t filled = step_ * num_envs_;
    for (std::int64_t k = 0; k < n; ++k) {
      if (rows[k] < 0 || rows[k] >= filled) {
        throw InvalidArgument("row " + std::to_string(rows[k]) + " is out of range; the rollout holds rows 0.." +
                              std::to_string(filled - 1));
      }
    }
    if (derived_out && !gae_ready_) throw InvalidArgument("call compute_gae() before reading advantages/returns");
    store_.gather(rows, n, out);
    if (derived_out) derived_.gather(rows, n, derived_out);
  }

  // Copies the filled steps [0, step) of field f (derived: a derived field) to
  // out. With steps >= 0, out holds that many steps (the step() its caller
  // read): checked under the lock, so a concurrent add/reset in another thread
  // raises instead of overrunning out.
  void copy_field(std::size_t f, bool derived, void* out, std::int64_t steps = -1) const {
    std::lock_guard lock(mutex_);
    if (steps >= 0 && steps != step_) {
      throw InvalidArgument("the rollout holds " + std::to_string(step_) + " steps, not " + std::to_string(steps) +
                            " (another thread called add() or reset() during this read)");
    }
    if (derived && !gae_ready_) throw InvalidArgument("call compute_gae() before reading advantages/returns");
    const ColumnStore& s = derived ? derived_ : store_;
    std::memcpy(out, s.column(f), s.row_bytes(f) * static_cast<std::size_t>(step_ * num_envs_));
  }

  void save(const std::string& path) const {
    std::lock_guard lock(mutex_);
    FileWriter w(path);
    w.header(BufferKind::kRollout, schema_);
    w.value(num_steps_);
    w.value(num_envs_);
    w.value(step_);
    w.value<std::uint8_t>(gae_ready_ ? 1 : 0);
    write_rows(w, store_, 0, step_ * num_envs_);
    if (gae_ready_) write_rows(w, derived_, 0, step_ * num_envs_);
    w.commit();
  }

  static RolloutBuffer load(const std::string& path) {
    FileReader r(path);
    Schema schema = r.header(BufferKind::kRollout);
    const auto T = r.value<std::int64_t>();
    const auto E = r.value<std::int64_t>();
    const auto step = r.value<std::int64_t>();
    const auto ready = r.value<std::uint8_t>();
    if (T <= 0 || E <= 0 || T > (std::int64_t{1} << 40) / E || step < 0 || step > T || ready > 1 ||
        (ready && step != T)) {
      r.corrupt("rollout state");
    }
    r.expect_remaining(saturating_mul(schema.row_bytes(), static_cast<std::uint64_t>(step * E)));
    check_memory(bytes_for(schema, T * E), "'" + r.path() + "' holds a RolloutBuffer of " + std::to_string(T) +
                                               " steps x " + std::to_string(E) + " envs, which");
    RolloutBuffer b = [&] {
      try {
        return RolloutBuffer(std::move(schema), T, E);
      } catch (const InvalidArgument&) {
        r.corrupt("spec (it names a field compute_gae() derives)");
      }
    }();
    if (ready && b.prefixes_.empty()) r.corrupt("rollout state");
    b.step_ = step;
    b.gae_ready_ = ready != 0;
    read_rows(r, b.store_, 0, step * E);
    if (ready) {
      r.expect_remaining(b.derived_schema_.row_bytes() * static_cast<std::size_t>(step * E));
      read_rows(r, b.derived_, 0, step * E);
    }
    r.finish();
    return b;
  }

  RolloutBuffer(RolloutBuffer&& o) noexcept
      : schema_(std::move(o.schema_)), derived_schema_(std::move(o.derived_schema_)), store_(std::move(o.store_)),
        derived_(std::move(o.derived_)), prefixes_(std::move(o.prefixes_)), num_steps_(o.num_steps_),
        num_envs_(o.num_envs_), step_(o.step_), gae_ready_(o.gae_ready_) {}

 private:
  struct Roles {
    int reward = -1, value = -1, terminated = -1, truncated = -1, final_value = -1;
    std::int64_t elements = 0, flag_elements = 0;
  };

  Roles roles_for(const std::string& p) const {
    Roles r;
    r.reward = schema_.find(p + "reward");
    const Field& rf = schema_[static_cast<std::size_t>(r.reward)];
    r.elements = rf.elements();
    auto need = [&](const std::string& name, bool required) {
      const int f = schema_.find(name);
      if (f < 0 && required) {
        throw InvalidArgument("compute_gae needs a field '" + name + "' next to '" + rf.name + "'; the spec has: " +
                              schema_.names());
      }
      return f;
    };
    r.value = need(p + "value", true);
    r.terminated = need(p + "terminated", true);
    r.truncated = need(p + "truncated", true);
    r.final_value = need(p + "final_value", false);
    for (int f : {r.value, r.final_value}) {
      if (f < 0) continue;
      const Field& v = schema_[static_cast<std::size_t>(f)];
      if (v.dtype != DType::kFloat32 || v.shape != rf.shape || rf.dtype != DType::kFloat32) {
        throw InvalidArgument("'" + v.name + "' and '" + rf.name + "' must both be float32 with the same shape; got " +
                              dtype_name(v.dtype) + shape_string(v.shape) + " and " + dtype_name(rf.dtype) +
                              shape_string(rf.shape));
      }
    }
    const Field& tf = schema_[static_cast<std::size_t>(r.terminated)];
    const Field& uf = schema_[static_cast<std::size_t>(r.truncated)];
    if (tf.shape != uf.shape || tf.dtype != uf.dtype || (tf.elements() != 1 && tf.elements() != r.elements)) {
      throw InvalidArgument("'" + tf.name + "' and '" + uf.name + "' must have the same dtype and shape, with one flag per env or one per element of '" +
                            rf.name + "' " + shape_string(rf.shape) + "; got " + shape_string(tf.shape) + " and " +
                            shape_string(uf.shape));
    }
    r.flag_elements = tf.elements();
    return r;
  }

  bool flag(int f, std::int64_t flag_elements, std::int64_t row, std::int64_t j) const noexcept {
    const Field& fd = schema_[static_cast<std::size_t>(f)];
    const std::int64_t k = flag_elements == 1 ? 0 : j;
    return any_set(fd.dtype, store_.row(static_cast<std::size_t>(f), row) + dtype_size(fd.dtype) * k, 1);
  }

  void check_truncations(const Roles& r, const std::string& prefix) const {
    if (r.final_value >= 0) {
      const auto* fin = reinterpret_cast<const float*>(store_.column(static_cast<std::size_t>(r.final_value)));
      const std::int64_t n = num_steps_ * num_envs_ * r.elements;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t row = i / r.elements, j = i % r.elements;
        if (flag(r.truncated, r.flag_elements, row, j) && !std::isfinite(fin[i])) {
          throw InvalidArgument("'" + prefix + "final_value' is not finite at step " + std::to_string(row / num_envs_) +
                                ", env " + std::to_string(row % num_envs_) + " where the episode was truncated");
        }
      }
      return;
    }
    for (std::int64_t row = 0; row < num_steps_ * num_envs_; ++row) {
      for (std::int64_t j = 0; j < r.flag_elements; ++j) {
        if (flag(r.truncated, r.flag_elements, row, j) && !flag(r.terminated, r.flag_elements, row, j)) {
          throw InvalidArgument("step " + std::to_string(row / num_envs_) + ", env " + std::to_string(row % num_envs_) +
                                " is truncated: add a '" + prefix +
                                "final_value' field (value of the final observation) so GAE can bootstrap from it");
        }
      }
    }
  }

  Schema schema_, derived_schema_;
  ColumnStore store_, derived_;
  std::vector<std::string> prefixes_;
  std::int64_t num_steps_, num_envs_;
  std::int64_t step_ = 0;
  bool gae_ready_ = false;
  mutable std::mutex mutex_;
};

}  // namespace genmarl::buffer
