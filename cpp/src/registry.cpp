#include "genmarl/envs/registry.hpp"

#include <dlfcn.h>

#include <deque>
#include <map>
#include <mutex>

#include "genmarl/env/module.hpp"

#include "genmarl/envs/lbf/foraging.hpp"
#include "genmarl/envs/mpe/all.hpp"
#include "genmarl/envs/rware/warehouse.hpp"

namespace genmarl {

namespace {

const std::vector<EnvEntry>& builtin_entries() {
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
      make_entry<rware::Warehouse>("rware"),
  };
  return entries;
}

// Built-in entries, then those registered at run time (users' modules). Entries are never
// removed and live in a deque, so the references handed out stay valid.
struct Registry {
  std::mutex mutex;
  std::deque<EnvEntry> added;
  std::map<std::string, std::vector<std::string>> modules;  // loaded library path -> its env names
};

Registry& registry() {
  static Registry r;
  return r;
}

// Every entry, built-in first; the caller holds r.mutex.
std::vector<const EnvEntry*> all_entries(const Registry& r) {
  std::vector<const EnvEntry*> out;
  for (const auto& e : builtin_entries()) out.push_back(&e);
  for (const auto& e : r.added) out.push_back(&e);
  return out;
}

std::vector<const EnvEntry*> snapshot() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return all_entries(r);
}

// Checks a batch of new entries against every registered one (names and aliases) and against
// each other, then adds them all, under one lock: a batch is registered whole or not at all.
std::vector<std::string> add_entries(std::vector<EnvEntry> batch, const std::string& source) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const std::vector<const EnvEntry*> existing = all_entries(r);
  std::vector<std::string> names;
  for (const auto& entry : batch) {
    if (entry.name.empty() || !entry.make) throw InvalidArgument(source + ": an env entry needs a name and a factory");
    for (const auto* e : existing) {
      if (e->name == entry.name) throw InvalidArgument("an environment named '" + entry.name + "' is already registered");
      if (e->parse_alias && e->parse_alias(entry.name)) {
        throw InvalidArgument("'" + entry.name + "' is already an alias of environment '" + e->name + "'");
      }
    }
    for (const auto& n : names) {
      if (n == entry.name) throw InvalidArgument(source + " registers '" + entry.name + "' twice");
    }
    names.push_back(entry.name);
  }
  for (auto& entry : batch) r.added.push_back(std::move(entry));
  return names;
}

[[noreturn]] void rethrow(ForeignError e) {
  switch (e.kind) {
    case ForeignError::kInvalidArgument:
      throw InvalidArgument(e.message);
    case ForeignError::kConcurrentCall:
      throw ConcurrentCall(e.message);
    case ForeignError::kThreadStart:
      throw ThreadStartError(e.message);
    case ForeignError::kBadAlloc:
      throw std::bad_alloc();
    case ForeignError::kStdInvalidArgument:
      throw std::invalid_argument(e.message);
    case ForeignError::kOutOfRange:
      throw std::out_of_range(e.message);
    default:
      throw std::runtime_error(e.message);
  }
}

// An env made by a module's factory (detail::ModuleEnv, env/module.hpp): forwards every call and
// turns the error the module kept into genmarl's own exception once the call has returned.
class ForeignEnv final : public BatchedEnv {
 public:
  explicit ForeignEnv(std::unique_ptr<BatchedEnv> env) : env_(std::move(env)) { check(); }
  const EnvSpec& spec() const override { return env_->spec(); }
  int num_envs() const override { return env_->num_envs(); }
  int num_threads() const override { return env_->num_threads(); }
  std::uint64_t seed() const override { return env_->seed(); }
  std::int64_t* discrete_actions() override { return env_->discrete_actions(); }
  float* continuous_actions() override { return env_->continuous_actions(); }
  void check_actions() const override {
    env_->check_actions();
    check();
  }
  void reset(std::uint64_t seed, const StepOutputs& out) override {
    env_->reset(seed, out);
    check();
  }
  void reset_continue(const StepOutputs& out) override {
    env_->reset_continue(out);
    check();
  }
  void step(const StepOutputs& out) override {
    env_->step(out);
    check();
  }
  void observe(const StepOutputs& out) override {
    env_->observe(out);
    check();
  }
  std::vector<StateArray> get_state() const override {
    auto state = env_->get_state();
    check();
    return state;
  }
  void set_state(const std::vector<StateArray>& state) override {
    env_->set_state(state);
    check();
  }
  std::vector<StateArray> layout() const override {
    auto arrays = env_->layout();
    check();
    return arrays;
  }
  int num_curriculum_stages() const override { return env_->num_curriculum_stages(); }
  int curriculum_stage() const override { return env_->curriculum_stage(); }
  void set_curriculum_stage(int stage) override {
    env_->set_curriculum_stage(stage);
    check();
  }

 private:
  void check() const {
    ForeignError e;
    if (env_->take_error(e)) rethrow(std::move(e));
  }
  std::unique_ptr<BatchedEnv> env_;
};

}  // namespace

const std::vector<EnvEntry>& env_registry() { return builtin_entries(); }

std::vector<std::string> list_envs() {
  std::vector<std::string> names;
  for (const auto* e : snapshot()) names.push_back(e->name);
  return names;
}

void register_env(EnvEntry entry) {
  std::vector<EnvEntry> batch;
  batch.push_back(std::move(entry));
  add_entries(std::move(batch), "register_env");
}

std::vector<std::string> load_env_module(const std::string& path) {
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.modules.find(path);
    if (it != r.modules.end()) return it->second;
  }
  // Never closed: the scenarios' code (factories, vtables) lives in the library.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    throw InvalidArgument("could not load env module '" + path + "': " + (err ? err : "unknown error"));
  }
  using AbiFn = void (*)(EnvModuleAbi*);
  using InitFn = void (*)(EnvModule*, ForeignError*);
  auto abi_fn = reinterpret_cast<AbiFn>(dlsym(handle, "genmarl_env_module_abi_v2"));
  auto init_fn = reinterpret_cast<InitFn>(dlsym(handle, "genmarl_env_module_init_v2"));
  if (abi_fn == nullptr || init_fn == nullptr) {
    if (dlsym(handle, "genmarl_env_module_abi_v1") != nullptr) {
      throw InvalidArgument("env module '" + path + "' was built against an older genmarl (module format 1); rebuild it "
                            "against this genmarl (genmarl.get_cmake_dir())");
    }
    throw InvalidArgument("'" + path + "' is not a genmarl env module (no GENMARL_ENV_MODULE in it)");
  }
  EnvModuleAbi theirs{};
  abi_fn(&theirs);
  const EnvModuleAbi ours = env_module_abi();
  if (!abi_compatible(theirs, ours)) {
    throw InvalidArgument("env module '" + path + "' was built with " + describe(theirs) + " but this genmarl has " +
                          describe(ours) + "; rebuild it against this genmarl (genmarl.get_cmake_dir()) with a compiler using the same C++ "
                          "standard library (see docs/environments.md, 'Env modules and the manylinux wheel')");
  }
  EnvModule module;
  ForeignError error;
  init_fn(&module, &error);
  if (error.kind != ForeignError::kNone) {
    throw InvalidArgument("env module '" + path + "' failed to register its environments: " + error.message);
  }
  for (auto& entry : module.entries()) {  // its envs report errors as values: rethrow them as ours
    entry.make = [make = std::move(entry.make)](const Params& p, int num_envs, int num_threads,
                                                 std::uint64_t seed) -> std::unique_ptr<BatchedEnv> {
      return std::make_unique<ForeignEnv>(make(p, num_envs, num_threads, seed));
    };
  }
  std::vector<std::string> names = add_entries(std::move(module.entries()), "env module '" + path + "'");
  std::lock_guard<std::mutex> lock(r.mutex);
  r.modules[path] = names;
  return names;
}

ResolvedEnv resolve_env(const std::string& name) {
  const auto entries = snapshot();
  for (const auto* e : entries) {
    if (e->name == name) return {e, Params()};
  }
  for (const auto* e : entries) {
    if (!e->parse_alias) continue;
    if (auto p = e->parse_alias(name)) return {e, *p};
  }
  std::string known;
  for (const auto* e : entries) known += (known.empty() ? "" : ", ") + e->name;
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
  for (const auto& [k, v] : params.strings()) merged.set_string(k, v);
  return r.entry->make(merged.resolve(r.entry->params, r.entry->name), num_envs, num_threads, seed);
}

}  // namespace genmarl
