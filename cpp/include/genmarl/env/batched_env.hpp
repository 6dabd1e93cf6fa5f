// The type-erased interface of a batched multi-agent environment, as the
// Python bindings and C++ users see it. VectorEnv<Scenario> implements it.
//
// Concurrency contract: one call at a time per env. A call that starts while
// another call on the same env is running (reset, reset_continue, step, observe,
// get_state, set_state, set_curriculum_stage) throws ConcurrentCall and changes
// nothing. The caller also owns the action buffers between calls: writing them
// while step() runs is a data race. Different envs are independent, so one env
// per thread needs no locking. (The Python binding serialises calls instead.)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "genmarl/env/spec.hpp"

namespace genmarl {

// A call on an env started while another call on the same env was running.
class ConcurrentCall : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Marks an env busy for the duration of one call; throws ConcurrentCall if it already is.
class CallGuard {
 public:
  CallGuard(std::atomic<bool>& busy, const char* call) : busy_(busy) {
    if (busy_.exchange(true, std::memory_order_acquire)) {
      throw ConcurrentCall(std::string(call) +
                           ": another call on this env is running; an env takes one call at a time "
                           "(use one env per thread, or serialise the calls)");
    }
  }
  ~CallGuard() { busy_.store(false, std::memory_order_release); }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  std::atomic<bool>& busy_;
};

// Where step()/reset() write their results. Every pointer is caller-owned and
// sized for num_envs; obs/final_obs hold one pointer per agent group, each to a
// contiguous [num_envs, agents_in_group, obs_dim] block of the group's obs_dtype
// (float32 unless the scenario says otherwise).
struct StepOutputs {
  std::vector<void*> obs;
  // Per group [num_envs, agents_in_group, action_n] (nullptr for groups without masks, or
  // empty to skip masks): which actions are valid in the state of `obs`.
  std::vector<bool*> action_mask;
  float* rewards = nullptr;        // [num_envs, num_agents]
  bool* terminated = nullptr;      // [num_envs, num_agents]
  bool* truncated = nullptr;       // [num_envs, num_agents]
  bool* done = nullptr;            // [num_envs] the env finished and was auto-reset
  std::vector<void*> final_obs;    // per group, rows valid where done
  float* final_return = nullptr;   // [num_envs, num_agents] episode return, rows valid where done
  std::int32_t* final_length = nullptr;  // [num_envs] episode length, valid where done
  double* final_metrics = nullptr;  // [num_envs, spec().metric_names.size()], rows valid where done
  // step() also zeroes the final_obs rows of the envs that did not finish (in its threads), so
  // final_obs is complete without a pass over it afterwards.
  bool clear_unfinished_final_obs = false;
};

// One named array of the full simulator state: dtype is a numpy type string
// ("<f8", "<i8", "<u8", "|b1"), data is row-major with the env batch first.
struct StateArray {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> data;
};

// The numpy type string of a state array element type.
template <class T>
constexpr const char* state_dtype() {
  if constexpr (std::is_same_v<T, double>) return "<f8";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "<u8";
  else {
    static_assert(std::is_same_v<T, bool>, "state arrays hold double, int64, uint64 or bool");
    return "|b1";
  }
}

// Builds a scenario's export_states: add<T>(name, shape) appends a zeroed array and returns
// its data to fill.
class StateArrays {
 public:
  template <class T>
  T* add(std::string name, std::vector<std::int64_t> shape) {
    std::size_t count = sizeof(T);
    for (auto d : shape) count *= static_cast<std::size_t>(d);
    arrays_.push_back(StateArray{std::move(name), state_dtype<T>(), std::move(shape), std::vector<unsigned char>(count)});
    return reinterpret_cast<T*>(arrays_.back().data.data());
  }
  std::vector<StateArray> take() { return std::move(arrays_); }

 private:
  std::vector<StateArray> arrays_;
};

// The data of a named array in an import_states argument (names, dtypes and shapes were checked
// by VectorEnv::set_state against the env's own export).
template <class T>
const T* state_array(const std::vector<StateArray>& arrays, const char* name) {
  for (const auto& a : arrays) {
    if (a.name == name) return reinterpret_cast<const T*>(a.data.data());
  }
  throw InvalidArgument(std::string("set_state: missing array '") + name + "'");
}

// An exception of env code in another shared library, carried across the library boundary as a
// value (see env/module.hpp): exception types are not shared between libraries that each carry
// their own C++ runtime (a wheel built with zig's static libc++), so such an env catches its own
// exceptions and the loader's wrapper rethrows them as genmarl's types.
struct ForeignError {
  enum Kind { kNone, kInvalidArgument, kConcurrentCall, kThreadStart, kBadAlloc, kStdInvalidArgument, kOutOfRange, kOther };
  Kind kind = kNone;
  std::string message;
};

class BatchedEnv {
 public:
  virtual ~BatchedEnv() = default;

  virtual const EnvSpec& spec() const = 0;
  virtual int num_envs() const = 0;
  virtual int num_threads() const = 0;
  virtual std::uint64_t seed() const = 0;

  // Owned action buffers that step() reads: discrete [num_envs, num_agents]
  // int64 and continuous [num_envs, num_agents, spec().max_action_dim] float32.
  virtual std::int64_t* discrete_actions() = 0;
  virtual float* continuous_actions() = 0;

  // Throws InvalidArgument if an action in the buffers is out of range or not finite.
  virtual void check_actions() const = 0;

  // Resets every env with a new seed (episode counters restart at 0) and writes
  // the first observations into out.obs.
  virtual void reset(std::uint64_t seed, const StepOutputs& out) = 0;
  // Resets every env into its next episode without reseeding.
  virtual void reset_continue(const StepOutputs& out) = 0;
  // Steps every env with the actions in the buffers; finished envs auto-reset in the same step.
  virtual void step(const StepOutputs& out) = 0;
  // Writes the current observations (and action masks) without changing the state.
  virtual void observe(const StepOutputs& out) = 0;

  virtual std::vector<StateArray> get_state() const = 0;
  // Throws InvalidArgument naming the offending array if names, dtypes or shapes differ.
  virtual void set_state(const std::vector<StateArray>& state) = 0;

  // The scenario's fixed arrays (HasLayout; empty when it has none): constant for the env's life.
  virtual std::vector<StateArray> layout() const { return {}; }

  virtual int num_curriculum_stages() const = 0;
  virtual int curriculum_stage() const = 0;
  virtual void set_curriculum_stage(int stage) = 0;

  // The error of the last call, for envs that report errors as values instead of throwing (envs
  // from users' env modules); moves it into `out` and returns true if there was one. Built-in
  // envs throw and have nothing here.
  virtual bool take_error(ForeignError& out) const {
    (void)out;
    return false;
  }
};

}  // namespace genmarl
