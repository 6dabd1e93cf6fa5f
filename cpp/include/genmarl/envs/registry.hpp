// Names -> batched environment factories. Adding a scenario is one header
// plus one line in cpp/src/registry.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/spec.hpp"
#include "genmarl/env/vector_env.hpp"

namespace genmarl {

struct EnvEntry {
  std::string name;
  std::string family;
  std::vector<ParamSpec> params;
  std::function<std::unique_ptr<BatchedEnv>(const Params& resolved, int num_envs, int num_threads, std::uint64_t seed)>
      make;
};

template <class Scenario>
EnvEntry make_entry(std::string family) {
  return EnvEntry{Scenario::kName, std::move(family), Scenario::param_specs(),
                  [](const Params& p, int num_envs, int num_threads, std::uint64_t seed) -> std::unique_ptr<BatchedEnv> {
                    return std::make_unique<VectorEnv<Scenario>>(Scenario(p), num_envs, num_threads, seed);
                  }};
}

const std::vector<EnvEntry>& env_registry();
std::vector<std::string> list_envs();
const EnvEntry& find_env(const std::string& name);  // throws InvalidArgument naming the known envs

// Creates a batched env; unknown or missing arguments raise InvalidArgument.
std::unique_ptr<BatchedEnv> make_env(const std::string& name, const Params& params, int num_envs, int num_threads,
                                     std::uint64_t seed);

}  // namespace genmarl
