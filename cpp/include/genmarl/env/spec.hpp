// Static description of a multi-agent environment: parameters, agents,
// agent groups, observation and action spaces.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace genmarl {

// Raised for bad input at the API boundary (bad kwargs, bad actions, bad state).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class ParamKind { kInt, kFloat, kBool, kOptionalInt };

// One constructor argument of a scenario. Optional ints use kNone for None.
struct ParamSpec {
  std::string name;
  ParamKind kind;
  double default_value;
  std::string doc;
};

inline constexpr double kNone = -1.0;

// Scenario arguments by name; every accepted name is present after resolve().
class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, double> values) : values_(std::move(values)) {}

  void set(const std::string& name, double value) { values_[name] = value; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  double get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw InvalidArgument("missing scenario argument '" + name + "'");
    return it->second;
  }
  int get_int(const std::string& name) const { return static_cast<int>(get(name)); }
  bool get_bool(const std::string& name) const { return get(name) != 0.0; }
  // Optional int: returns -1 for None.
  int get_optional_int(const std::string& name) const { return static_cast<int>(get(name)); }
  const std::map<std::string, double>& values() const { return values_; }

  // Fills defaults and rejects unknown names.
  Params resolve(const std::vector<ParamSpec>& specs, const std::string& env_name) const {
    Params out;
    for (const auto& s : specs) out.values_[s.name] = s.default_value;
    for (const auto& [k, v] : values_) {
      bool known = false;
      for (const auto& s : specs) known = known || s.name == k;
      if (!known) {
        std::string accepted;
        for (const auto& s : specs) accepted += (accepted.empty() ? "" : ", ") + s.name;
        throw InvalidArgument(env_name + ": unknown argument '" + k + "'; accepted: " + accepted);
      }
      for (const auto& s : specs) {
        if (s.name == k && s.kind != ParamKind::kFloat) check_integral(env_name, s, v);
      }
      out.values_[k] = v;
    }
    return out;
  }

 private:
  // Int and bool arguments arrive as doubles: they must be whole numbers that fit in an int.
  static void check_integral(const std::string& env_name, const ParamSpec& s, double v) {
    const double lo = s.kind == ParamKind::kOptionalInt ? kNone : (s.kind == ParamKind::kBool ? 0.0 : -2147483648.0);
    const double hi = s.kind == ParamKind::kBool ? 1.0 : 2147483647.0;
    if (!(v >= lo && v <= hi) || v != std::floor(v)) {
      std::string what = s.kind == ParamKind::kBool ? "a bool (0 or 1)" : "an integer in [" + fmt(lo) + ", " + fmt(hi) + "]";
      throw InvalidArgument(env_name + ": argument '" + s.name + "' must be " + what + ", got " + fmt(v));
    }
  }
  static std::string fmt(double v) {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e18) return std::to_string(static_cast<long long>(v));
    return std::to_string(v);
  }

  std::map<std::string, double> values_;
};

// Action space of one agent: Discrete(n) or Box(low, high, (n,)) float32.
struct ActionSpace {
  bool continuous = false;
  int n = 0;  // number of discrete actions, or Box dimension
  float low = 0.0f;
  float high = 1.0f;
};

struct AgentSpec {
  std::string name;
  std::string group;
  int group_index = 0;  // index of the group in EnvSpec::groups
  int index_in_group = 0;
  int obs_dim = 0;
  ActionSpace action;
};

struct GroupSpec {
  std::string name;
  int first_agent = 0;  // agents of a group are contiguous
  int num_agents = 0;
  int obs_dim = 0;
  ActionSpace action;
};

struct EnvSpec {
  std::string name;
  std::vector<AgentSpec> agents;
  std::vector<GroupSpec> groups;
  int max_cycles = 25;
  int max_action_dim = 1;  // floats per agent in the continuous action buffer

  int num_agents() const { return static_cast<int>(agents.size()); }

  // Groups agents by name prefix ("adversary_0" -> "adversary") and checks that
  // the members of a group are contiguous and share spaces.
  void build_groups() {
    groups.clear();
    max_action_dim = 1;
    for (int i = 0; i < num_agents(); ++i) {
      auto& a = agents[i];
      auto pos = a.name.rfind('_');
      a.group = pos == std::string::npos ? a.name : a.name.substr(0, pos);
      if (groups.empty() || groups.back().name != a.group) {
        for (const auto& g : groups) {
          if (g.name == a.group) throw std::logic_error("agents of group " + a.group + " are not contiguous");
        }
        groups.push_back(GroupSpec{a.group, i, 0, a.obs_dim, a.action});
      }
      auto& g = groups.back();
      if (g.obs_dim != a.obs_dim || g.action.continuous != a.action.continuous || g.action.n != a.action.n) {
        throw std::logic_error("agents of group " + a.group + " differ in their spaces");
      }
      a.group_index = static_cast<int>(groups.size()) - 1;
      a.index_in_group = g.num_agents++;
      if (a.action.continuous && a.action.n > max_action_dim) max_action_dim = a.action.n;
    }
  }
};

}  // namespace genmarl
