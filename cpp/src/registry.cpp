#include "genmarl/envs/registry.hpp"

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
  };
  return entries;
}

std::vector<std::string> list_envs() {
  std::vector<std::string> names;
  for (const auto& e : env_registry()) names.push_back(e.name);
  return names;
}

const EnvEntry& find_env(const std::string& name) {
  for (const auto& e : env_registry()) {
    if (e.name == name) return e;
  }
  std::string known;
  for (const auto& e : env_registry()) known += (known.empty() ? "" : ", ") + e.name;
  throw InvalidArgument("unknown environment '" + name + "'; known: " + known);
}

std::unique_ptr<BatchedEnv> make_env(const std::string& name, const Params& params, int num_envs, int num_threads,
                                     std::uint64_t seed) {
  const EnvEntry& entry = find_env(name);
  return entry.make(params.resolve(entry.params, name), num_envs, num_threads, seed);
}

}  // namespace genmarl
