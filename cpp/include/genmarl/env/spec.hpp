// Static description of a multi-agent environment: parameters, agents,
// agent groups, observation and action spaces.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace genmarl {

// Raised for bad input at the API boundary (bad kwargs, bad actions, bad state).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class ParamKind { kInt, kFloat, kBool, kOptionalInt, kIntTuple, kString, kOptionalIntList };

// One constructor argument of a scenario. Optional ints use kNone for None. A kIntTuple
// argument is `length` integers (e.g. a grid's (rows, cols)) whose default repeats
// default_value, or, with length 0, a list of any length (at least one) whose default is
// default_list. A kString argument (e.g. a layout drawn in text) defaults to default_string.
// A kOptionalIntList argument is None (stored as the list {kNone}), one integer or a non-empty
// list of integers (e.g. per-player levels where one value may stand for all); its default is
// default_list ({kNone} for None).
struct ParamSpec {
  std::string name;
  ParamKind kind;
  double default_value;
  std::string doc;
  int length = 0;                    // kIntTuple only; 0: any length
  std::vector<double> default_list = {};  // kIntTuple of any length and kOptionalIntList only
  std::string default_string = {};        // kString only
};

inline constexpr double kNone = -1.0;

// Scenario arguments by name; every accepted name is present after resolve().
class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, double> values, std::map<std::string, std::vector<double>> tuples = {},
                  std::map<std::string, std::string> strings = {})
      : values_(std::move(values)), tuples_(std::move(tuples)), strings_(std::move(strings)) {}

  // Setting a name replaces its previous value, scalar, tuple or string.
  void set(const std::string& name, double value) {
    tuples_.erase(name);
    strings_.erase(name);
    values_[name] = value;
  }
  void set_tuple(const std::string& name, std::vector<double> value) {
    values_.erase(name);
    strings_.erase(name);
    tuples_[name] = std::move(value);
  }
  void set_string(const std::string& name, std::string value) {
    values_.erase(name);
    tuples_.erase(name);
    strings_[name] = std::move(value);
  }
  bool has(const std::string& name) const {
    return values_.count(name) != 0 || tuples_.count(name) != 0 || strings_.count(name) != 0;
  }
  const std::string& get_string(const std::string& name) const {
    auto it = strings_.find(name);
    if (it == strings_.end()) throw InvalidArgument("missing scenario argument '" + name + "'");
    return it->second;
  }
  const std::map<std::string, std::string>& strings() const { return strings_; }
  std::vector<int> get_ints(const std::string& name) const {
    auto it = tuples_.find(name);
    if (it == tuples_.end()) throw InvalidArgument("missing scenario argument '" + name + "'");
    return std::vector<int>(it->second.begin(), it->second.end());
  }
  const std::map<std::string, std::vector<double>>& tuples() const { return tuples_; }
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
    for (const auto& s : specs) {
      if (s.kind == ParamKind::kIntTuple || s.kind == ParamKind::kOptionalIntList) {
        out.tuples_[s.name] = s.kind == ParamKind::kIntTuple && s.length > 0 ? std::vector<double>(s.length, s.default_value)
                                                                              : s.default_list;
      } else if (s.kind == ParamKind::kString) {
        out.strings_[s.name] = s.default_string;
      } else {
        out.values_[s.name] = s.default_value;
      }
    }
    auto find = [&](const std::string& k) -> const ParamSpec& {
      for (const auto& s : specs) if (s.name == k) return s;
      std::string accepted;
      for (const auto& s : specs) accepted += (accepted.empty() ? "" : ", ") + s.name;
      throw InvalidArgument(env_name + ": unknown argument '" + k + "'; accepted: " + accepted);
    };
    for (const auto& [k, v] : values_) {
      const ParamSpec& s = find(k);
      if (s.kind == ParamKind::kString) {
        throw InvalidArgument(env_name + ": argument '" + k + "' must be a string, got a number");
      }
      if (s.kind == ParamKind::kIntTuple || s.kind == ParamKind::kOptionalIntList) {
        // A single integer stands for every element, e.g. field_size=8 for (8, 8), or for a
        // list of one (None, kNone, too for an optional list).
        check_integral(env_name, s, v);
        out.tuples_[k] = std::vector<double>(s.kind == ParamKind::kIntTuple && s.length > 0 ? s.length : 1, v);
        continue;
      }
      if (s.kind != ParamKind::kFloat) check_integral(env_name, s, v);
      out.values_[k] = v;
    }
    for (const auto& [k, v] : tuples_) {
      const ParamSpec& s = find(k);
      const bool list = s.kind == ParamKind::kIntTuple || s.kind == ParamKind::kOptionalIntList;
      const bool fits = s.kind == ParamKind::kIntTuple && s.length > 0 ? static_cast<int>(v.size()) == s.length : !v.empty();
      if (!list || !fits) {
        const std::string want = !list ? (s.kind == ParamKind::kString ? "a string" : "a scalar")
                                 : s.kind == ParamKind::kIntTuple && s.length > 0 ? "a tuple of " + std::to_string(s.length) + " integers"
                                                                                  : "a non-empty list of integers";
        throw InvalidArgument(env_name + ": argument '" + k + "' must be " + want + ", got a sequence of " +
                              std::to_string(v.size()));
      }
      for (double x : v) check_integral(env_name, s, x);
      out.tuples_[k] = v;
    }
    for (const auto& [k, v] : strings_) {
      const ParamSpec& s = find(k);
      if (s.kind != ParamKind::kString) throw InvalidArgument(env_name + ": argument '" + k + "' must not be a string");
      out.strings_[k] = v;
    }
    return out;
  }

 private:
  // Int and bool arguments arrive as doubles: they must be whole numbers that fit in an int.
  static void check_integral(const std::string& env_name, const ParamSpec& s, double v) {
    const bool optional = s.kind == ParamKind::kOptionalInt || s.kind == ParamKind::kOptionalIntList;
    const double lo = optional ? kNone : (s.kind == ParamKind::kBool ? 0.0 : -2147483648.0);
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
  std::map<std::string, std::vector<double>> tuples_;
  std::map<std::string, std::string> strings_;
};

// Action space of one agent: Discrete(n) or Box(low, high, (n,)) float32.
struct ActionSpace {
  bool continuous = false;
  int n = 0;  // number of discrete actions, or Box dimension
  float low = 0.0f;
  float high = 1.0f;
};

// Element type of a group's observations (replay buffers store them as they are: uint8 images
// take a quarter of float32's memory). A scenario writes each through its observe() overload for
// that type (float*, std::uint8_t* or std::int32_t*).
enum class ObsDtype : int { kFloat32 = 0, kUInt8 = 1, kInt32 = 2 };

// fn(T{}) with the element type of `d` (float, std::uint8_t or std::int32_t): the one mapping from
// the enum to C++ types, for every layer that needs one (sizes, names, VectorEnv's observe
// dispatch, numpy and torch dtypes).
template <class Fn>
decltype(auto) visit_obs_dtype(ObsDtype d, Fn&& fn) {
  switch (d) {
    case ObsDtype::kUInt8: return fn(std::uint8_t{});
    case ObsDtype::kInt32: return fn(std::int32_t{});
    default: return fn(float{});
  }
}

inline std::size_t obs_dtype_size(ObsDtype d) {
  return visit_obs_dtype(d, [](auto t) { return sizeof(t); });
}

// The numpy name ("float32", "uint8", "int32").
inline const char* obs_dtype_name(ObsDtype d) {
  return visit_obs_dtype(d, [](auto t) -> const char* {
    using T = decltype(t);
    return std::is_same_v<T, float> ? "float32" : std::is_same_v<T, std::uint8_t> ? "uint8" : "int32";
  });
}

template <class T>
constexpr ObsDtype obs_dtype_of() {
  if constexpr (std::is_same_v<T, float>) return ObsDtype::kFloat32;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return ObsDtype::kUInt8;
  else {
    static_assert(std::is_same_v<T, std::int32_t>, "observations are float, uint8 or int32");
    return ObsDtype::kInt32;
  }
}

// One agent. `group` is set by the scenario: agents of a group are contiguous and share
// their observation and action spaces (and whether they have an action mask).
struct AgentSpec {
  std::string name;
  std::string group;
  int group_index = 0;  // index of the group in EnvSpec::groups (set by finalize())
  int index_in_group = 0;
  std::vector<int> obs_shape;  // one agent's observation, e.g. {18} or {3, 5, 5}
  ObsDtype obs_dtype = ObsDtype::kFloat32;
  int obs_dim = 0;             // product of obs_shape (set by finalize())
  std::vector<float> obs_low, obs_high;  // obs_dim bounds each, or empty for unbounded (the
                                         // dtype's range for integer types)
  ActionSpace action;
  bool action_mask = false;    // Discrete only: the scenario writes which actions are valid
};

struct GroupSpec {
  std::string name;
  int first_agent = 0;  // agents of a group are contiguous
  int num_agents = 0;
  std::vector<int> obs_shape;
  int obs_dim = 0;
  ActionSpace action;
  bool action_mask = false;
  ObsDtype obs_dtype = ObsDtype::kFloat32;
};

struct EnvSpec {
  std::string name;
  std::string family;  // e.g. the renderer and reference-sync hooks are looked up by it
  std::vector<AgentSpec> agents;
  std::vector<GroupSpec> groups;
  std::vector<std::string> metric_names;  // per-episode metrics the scenario computes (info channel)
  int max_cycles = 25;     // steps until the episode is truncated
  int max_action_dim = 1;  // floats per agent in the continuous action buffer

  int num_agents() const { return static_cast<int>(agents.size()); }
  bool any_action_mask() const {
    for (const auto& g : groups) if (g.action_mask) return true;
    return false;
  }

  // Builds the groups from the agents' explicit `group` fields, checking that the members of
  // a group are contiguous and share their spaces. Throws std::logic_error (a scenario bug).
  void finalize() {
    groups.clear();
    max_action_dim = 1;
    for (int i = 0; i < num_agents(); ++i) {
      auto& a = agents[i];
      if (a.group.empty()) throw std::logic_error(name + ": agent " + a.name + " has no group");
      if (a.obs_shape.empty()) throw std::logic_error(name + ": agent " + a.name + " has no observation shape");
      a.obs_dim = 1;
      for (int d : a.obs_shape) {
        if (d <= 0) throw std::logic_error(name + ": agent " + a.name + " has a non-positive observation dimension");
        a.obs_dim *= d;
      }
      if (a.action_mask && a.action.continuous) throw std::logic_error(name + ": action masks need Discrete actions");
      if ((!a.obs_low.empty() && static_cast<int>(a.obs_low.size()) != a.obs_dim) || a.obs_low.size() != a.obs_high.size()) {
        throw std::logic_error(name + ": agent " + a.name + " has observation bounds of the wrong size");
      }
      if (groups.empty() || groups.back().name != a.group) {
        for (const auto& g : groups) {
          if (g.name == a.group) throw std::logic_error(name + ": agents of group " + a.group + " are not contiguous");
        }
        groups.push_back(GroupSpec{a.group, i, 0, a.obs_shape, a.obs_dim, a.action, a.action_mask, a.obs_dtype});
      }
      auto& g = groups.back();
      if (g.obs_shape != a.obs_shape || g.obs_dtype != a.obs_dtype || g.action.continuous != a.action.continuous ||
          g.action.n != a.action.n || g.action_mask != a.action_mask) {
        throw std::logic_error(name + ": agents of group " + a.group + " differ in their spaces");
      }
      a.group_index = static_cast<int>(groups.size()) - 1;
      a.index_in_group = g.num_agents++;
      if (a.action.continuous && a.action.n > max_action_dim) max_action_dim = a.action.n;
    }
  }
};

}  // namespace genmarl
