// Names -> batched environment factories. Adding a scenario is one header
// plus one line in cpp/src/registry.cpp.
//
// Aliases: a scenario may define `static std::optional<Params> parse_alias(const std::string& id)`
// mapping registered ids of a reference package (e.g. "Foraging-8x8-2p-2f-coop-v3") to its own
// arguments; make_env accepts those ids, with the caller's arguments overriding the alias's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  std::function<std::optional<Params>(const std::string& id)> parse_alias;  // empty: no aliases
};

template <class Scenario>
  requires genmarl::Scenario<Scenario>
EnvEntry make_entry(std::string family) {
  EnvEntry entry{Scenario::kName, std::move(family), Scenario::param_specs(),
                 [](const Params& p, int num_envs, int num_threads, std::uint64_t seed) -> std::unique_ptr<BatchedEnv> {
                   return std::make_unique<VectorEnv<Scenario>>(Scenario(p), num_envs, num_threads, seed);
                 },
                 {}};
  if constexpr (requires(const std::string& id) { { Scenario::parse_alias(id) } -> std::same_as<std::optional<Params>>; }) {
    entry.parse_alias = [](const std::string& id) { return Scenario::parse_alias(id); };
  }
  return entry;
}

const std::vector<EnvEntry>& env_registry();  // the built-in scenarios
std::vector<std::string> list_envs();          // built-in and registered at run time (env/module.hpp)
const EnvEntry& find_env(const std::string& name);  // throws InvalidArgument naming the known envs

// An env name or alias resolved: the registered entry and the arguments the alias stands for
// (empty for a plain name). Throws InvalidArgument naming the known envs.
struct ResolvedEnv {
  const EnvEntry* entry;
  Params alias_params;
};
ResolvedEnv resolve_env(const std::string& name_or_alias);

// Creates a batched env from a name or alias; unknown or missing arguments raise InvalidArgument.
std::unique_ptr<BatchedEnv> make_env(const std::string& name, const Params& params, int num_envs, int num_threads,
                                     std::uint64_t seed);

}  // namespace genmarl
