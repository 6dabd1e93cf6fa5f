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
// (EnvEntry, BatchedEnv), so both must be built with the same C++ standard-library ABI; the
// loader checks an ABI tag before touching anything else and refuses a mismatch with a clear error.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "genmarl/envs/registry.hpp"

namespace genmarl {

// Bumped whenever EnvEntry, EnvSpec, StepOutputs or BatchedEnv change layout.
inline constexpr int kEnvModuleVersion = 1;

struct EnvModuleAbi {
  int module_version;
  int cxx11_abi;        // _GLIBCXX_USE_CXX11_ABI
  int string_size;      // sizeof(std::string)
  int vector_size;      // sizeof(std::vector<int>)
  int compiler_major;   // __GNUC__ (clang reports 4; libstdc++'s ABI is what matters)

  bool operator==(const EnvModuleAbi&) const = default;
};

inline EnvModuleAbi env_module_abi() {
#if defined(_GLIBCXX_USE_CXX11_ABI)
  const int cxx11 = _GLIBCXX_USE_CXX11_ABI;
#else
  const int cxx11 = -1;
#endif
#if defined(__GNUC__)
  const int major = __GNUC__;
#else
  const int major = 0;
#endif
  return {kEnvModuleVersion, cxx11, static_cast<int>(sizeof(std::string)), static_cast<int>(sizeof(std::vector<int>)),
          major};
}

inline std::string describe(const EnvModuleAbi& a) {
  return "module format " + std::to_string(a.module_version) + ", _GLIBCXX_USE_CXX11_ABI=" + std::to_string(a.cxx11_abi) +
         ", sizeof(std::string)=" + std::to_string(a.string_size);
}

// What a module's body fills: the scenarios it registers.
class EnvModule {
 public:
  template <class S>
    requires genmarl::Scenario<S>
  void add(std::string family) {
    entries_.push_back(make_entry<S>(std::move(family)));
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
  extern "C" __attribute__((visibility("default"))) void genmarl_env_module_abi_v1(::genmarl::EnvModuleAbi* out) { \
    *out = ::genmarl::env_module_abi();                                                                   \
  }                                                                                                      \
  extern "C" __attribute__((visibility("default"))) void genmarl_env_module_init_v1(::genmarl::EnvModule* out) { \
    genmarl_env_module_body_(*out);                                                                       \
  }                                                                                                      \
  static void genmarl_env_module_body_(::genmarl::EnvModule& m)
