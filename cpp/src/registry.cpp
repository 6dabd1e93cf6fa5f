#include "genmarl/envs/registry.hpp"

#include "genmarl/envs/lbf/foraging.hpp"
#include "genmarl/envs/mpe/all.hpp"

namespace genmarl {

const std::vector<EnvEntry>& env_registry() {
  static const std::vector<EnvEntry> entries = {
      make_entry<mpe::Simple>("mpe"),
      make_entry<mpe::SimpleSpread>("mpe"),
      make_entry<mpe::SimpleTag>("mpe"),
      make_entry<mpe::SimpleAdversary>("mpe"),
      make_entry<mpe::SimpleCrypto>("mpe"),
      make_entry<mpe::SimplePush>("mpe"),
      make_entry<mpe::SimpleReference>("mpe"),
      make_entry<mpe::SimpleSpeakerListener>("mpe"),
      make_entry<mpe::SimpleLine>("mpe"),
      make_entry<mpe::SimpleFormation>("mpe"),
      make_entry<mpe::SimpleWorldComm>("mpe"),
      make_entry<mpe::CollectTreasure>("mpe"),
      make_entry<lbf::Foraging>("lbf"),
  };
  return entries;
}

std::vector<std::string> list_envs() {
  std::vector<std::string> names;
  for (const auto& e : env_registry()) names.push_back(e.name);
  return names;
}

ResolvedEnv resolve_env(const std::string& name) {
  for (const auto& e : env_registry()) {
    if (e.name == name) return {&e, Params()};
  }
  for (const auto& e : env_registry()) {
    if (!e.parse_alias) continue;
    if (auto p = e.parse_alias(name)) return {&e, *p};
  }
  std::string known;
  for (const auto& e : env_registry()) known += (known.empty() ? "" : ", ") + e.name;
  throw InvalidArgument("unknown environment '" + name + "'; known: " + known +
                        " (and the registered ids of the reference packages, e.g. Foraging-8x8-2p-2f-coop-v3)");
}

const EnvEntry& find_env(const std::string& name) { return *resolve_env(name).entry; }

std::unique_ptr<BatchedEnv> make_env(const std::string& name, const Params& params, int num_envs, int num_threads,
                                     std::uint64_t seed) {
  ResolvedEnv r = resolve_env(name);
  // The caller's arguments override the alias's.
  Params merged = r.alias_params;
  for (const auto& [k, v] : params.values()) merged.set(k, v);
  for (const auto& [k, v] : params.tuples()) merged.set_tuple(k, v);
  return r.entry->make(merged.resolve(r.entry->params, r.entry->name), num_envs, num_threads, seed);
}

}  // namespace genmarl
