// Users' own C++ scenarios, loaded at run time without rebuilding genmarl.
//
// A user's project compiles its scenarios against the headers of the installed wheel into a
// shared library (CMake: genmarl_add_env_module(my_envs my_envs.cpp), see
// examples/custom_env) whose one source says
//
//   #include <genmarl/env/module.hpp>
//   GENMARL_ENV_MODULE(m) { m.add<my::GridWorld>("gridworld"); }   // scenario type, family
//
// and Python loads it with genmarl.register_module("my_envs") (or C++ with
// genmarl::load_env_module(path)): its scenarios join the registry, so genmarl.make, the
// PettingZoo adapters, training, evaluation and the CLI accept them, stepped by the same
// VectorEnv machinery as the built-in ones. The library and genmarl exchange C++ objects
// (EnvEntry, BatchedEnv), so both must be built with the same C++ standard library and ABI; the
// loader checks an ABI tag before touching anything else and refuses a mismatch with a clear error.
// Exceptions never cross the boundary: the module's envs catch their own and hand them over as
// values (ForeignError), which genmarl rethrows as its own types -- two libraries that each link
// a C++ runtime statically (genmarl's manylinux wheel is built with zig's libc++) do not share
// exception types.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "genmarl/core/thread_pool.hpp"
#include "genmarl/envs/registry.hpp"

namespace genmarl {

// Bumped whenever EnvEntry, EnvSpec, StepOutputs or BatchedEnv change layout.
// 2: BatchedEnv::take_error; errors cross the boundary as values.
// 3: string and any-length list arguments (Params, ParamSpec); per-group observation dtype
//    (AgentSpec, GroupSpec, StepOutputs' untyped obs pointers, clear_unfinished_final_obs).
// 4: BatchedEnv::layout (a scenario's fixed arrays).
inline constexpr int kEnvModuleVersion = 4;

struct EnvModuleAbi {
  int module_version;
  int stdlib;           // 1 libstdc++, 2 libc++, 0 another
  long stdlib_version;  // __GLIBCXX__ (a date) or _LIBCPP_VERSION
  int cxx11_abi;        // _GLIBCXX_USE_CXX11_ABI (-1 outside libstdc++)
  int string_size;      // sizeof(std::string)
  int vector_size;      // sizeof(std::vector<int>)

  bool operator==(const EnvModuleAbi&) const = default;
};

// Whether a module with tag `a` can be loaded by a genmarl with tag `b`: the same module format
// and standard library with the same layouts. The library's version may differ (libstdc++ and
// libc++ keep their ABI across versions; the version is reported in errors only).
inline bool abi_compatible(const EnvModuleAbi& a, const EnvModuleAbi& b) {
  return a.module_version == b.module_version && a.stdlib == b.stdlib && a.cxx11_abi == b.cxx11_abi &&
         a.string_size == b.string_size && a.vector_size == b.vector_size;
}

inline EnvModuleAbi env_module_abi() {
#if defined(_GLIBCXX_USE_CXX11_ABI)
  const int cxx11 = _GLIBCXX_USE_CXX11_ABI;
#else
  const int cxx11 = -1;
#endif
#if defined(_LIBCPP_VERSION)
  const int lib = 2;
  const long version = _LIBCPP_VERSION;
#elif defined(__GLIBCXX__)
  const int lib = 1;
  const long version = __GLIBCXX__;
#else
  const int lib = 0;
  const long version = 0;
#endif
  return {kEnvModuleVersion, lib, version, cxx11, static_cast<int>(sizeof(std::string)),
          static_cast<int>(sizeof(std::vector<int>))};
}

inline std::string describe(const EnvModuleAbi& a) {
  const std::string lib = a.stdlib == 2 ? "libc++ " + std::to_string(a.stdlib_version)
                          : a.stdlib == 1 ? "libstdc++ " + std::to_string(a.stdlib_version) + " (_GLIBCXX_USE_CXX11_ABI=" +
                                                std::to_string(a.cxx11_abi) + ")"
                                          : std::string("an unknown C++ standard library");
  return "module format " + std::to_string(a.module_version) + ", " + lib;
}

namespace detail {

// Called in a catch block of module code: the exception in flight, as a value.
inline void capture_error(ForeignError& e) noexcept {
  try {
    throw;
  } catch (const InvalidArgument& x) {
    e = {ForeignError::kInvalidArgument, x.what()};
  } catch (const ConcurrentCall& x) {
    e = {ForeignError::kConcurrentCall, x.what()};
  } catch (const ThreadStartError& x) {
    e = {ForeignError::kThreadStart, x.what()};
  } catch (const std::bad_alloc&) {
    e = {ForeignError::kBadAlloc, "out of memory"};
  } catch (const std::invalid_argument& x) {
    e = {ForeignError::kStdInvalidArgument, x.what()};
  } catch (const std::out_of_range& x) {
    e = {ForeignError::kOutOfRange, x.what()};
  } catch (const std::exception& x) {
    e = {ForeignError::kOther, x.what()};
  } catch (...) {
    e = {ForeignError::kOther, "an exception of unknown type in env module code"};
  }
}

// A module's VectorEnv<S> behind the error boundary: every call catches what the env throws and
// keeps it for take_error() (genmarl's ForeignEnv rethrows it after the call returns).
template <class S>
class ModuleEnv final : public BatchedEnv {
 public:
  ModuleEnv(const Params& p, int num_envs, int num_threads, std::uint64_t seed) noexcept {
    guard([&] { env_ = std::make_unique<VectorEnv<S>>(S(p), num_envs, num_threads, seed); });
  }
  const EnvSpec& spec() const override { return env_->spec(); }
  int num_envs() const override { return env_->num_envs(); }
  int num_threads() const override { return env_->num_threads(); }
  std::uint64_t seed() const override { return env_->seed(); }
  std::int64_t* discrete_actions() override { return env_->discrete_actions(); }
  float* continuous_actions() override { return env_->continuous_actions(); }
  void check_actions() const override {
    guard([&] { env_->check_actions(); });
  }
  void reset(std::uint64_t seed, const StepOutputs& out) override {
    guard([&] { env_->reset(seed, out); });
  }
  void reset_continue(const StepOutputs& out) override {
    guard([&] { env_->reset_continue(out); });
  }
  void step(const StepOutputs& out) override {
    guard([&] { env_->step(out); });
  }
  void observe(const StepOutputs& out) override {
    guard([&] { env_->observe(out); });
  }
  std::vector<StateArray> get_state() const override {
    std::vector<StateArray> state;
    guard([&] { state = env_->get_state(); });
    return state;
  }
  void set_state(const std::vector<StateArray>& state) override {
    guard([&] { env_->set_state(state); });
  }
  std::vector<StateArray> layout() const override {
    std::vector<StateArray> arrays;
    guard([&] { arrays = env_->layout(); });
    return arrays;
  }
  int num_curriculum_stages() const override { return env_->num_curriculum_stages(); }
  int curriculum_stage() const override { return env_->curriculum_stage(); }
  void set_curriculum_stage(int stage) override {
    guard([&] { env_->set_curriculum_stage(stage); });
  }
  bool take_error(ForeignError& out) const override {
    if (error_.kind == ForeignError::kNone) return false;
    out = std::move(error_);
    error_ = {};
    return true;
  }

 private:
  template <class F>
  void guard(F&& f) const noexcept {
    try {
      f();
    } catch (...) {
      capture_error(error_);
    }
  }

  std::unique_ptr<VectorEnv<S>> env_;
  mutable ForeignError error_;
};

}  // namespace detail

// What a module's body fills: the scenarios it registers, each behind the error boundary.
class EnvModule {
 public:
  template <class S>
    requires genmarl::Scenario<S>
  void add(std::string family) {
    EnvEntry entry = make_entry<S>(std::move(family));
    entry.make = [](const Params& p, int num_envs, int num_threads, std::uint64_t seed) -> std::unique_ptr<BatchedEnv> {
      return std::make_unique<detail::ModuleEnv<S>>(p, num_envs, num_threads, seed);
    };
    if constexpr (requires(const std::string& id) { S::parse_alias(id); }) {  // an alias the module cannot parse is no alias
      entry.parse_alias = [](const std::string& id) -> std::optional<Params> {
        try {
          return S::parse_alias(id);
        } catch (...) {
          return std::nullopt;
        }
      };
    }
    entries_.push_back(std::move(entry));
  }
  std::vector<EnvEntry>& entries() { return entries_; }

 private:
  std::vector<EnvEntry> entries_;
};

// Loads a shared library made with GENMARL_ENV_MODULE and registers its scenarios; returns
// their names. Throws InvalidArgument if the file cannot be loaded, is not a genmarl env module,
// was built with another ABI, or names an environment that already exists (nothing is then
// registered). A library is loaded once; loading it again returns its names.
std::vector<std::string> load_env_module(const std::string& path);

// Registers one scenario entry (the same checks as load_env_module's).
void register_env(EnvEntry entry);

}  // namespace genmarl

#define GENMARL_ENV_MODULE(m)                                                                            \
  static void genmarl_env_module_body_(::genmarl::EnvModule& m);                                         \
  extern "C" __attribute__((visibility("default"))) void genmarl_env_module_abi_v2(::genmarl::EnvModuleAbi* out) { \
    *out = ::genmarl::env_module_abi();                                                                   \
  }                                                                                                      \
  extern "C" __attribute__((visibility("default"))) void genmarl_env_module_init_v2(::genmarl::EnvModule* out,    \
                                                                                  ::genmarl::ForeignError* err) { \
    try {                                                                                                \
      genmarl_env_module_body_(*out);                                                                     \
    } catch (...) {                                                                                      \
      ::genmarl::detail::capture_error(*err);                                                             \
    }                                                                                                    \
  }                                                                                                      \
  static void genmarl_env_module_body_(::genmarl::EnvModule& m)
