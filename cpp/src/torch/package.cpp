#include "genmarl/torch/package.hpp"

#include <cmath>
#include <filesystem>
#include <sstream>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "genmarl/core/rng.hpp"
#include "genmarl/envs/registry.hpp"

namespace genmarl::torch {

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

namespace {

constexpr const char* kFormat = "1";

long long to_int(const std::string& s, const std::string& what) {
  try {
    std::size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw ExportError(what + ": '" + s + "' is not an integer");
}

double to_double(const std::string& s, const std::string& what) {
  try {
    std::size_t pos = 0;
    double v = std::stod(s, &pos);
    if (pos == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw ExportError(what + ": '" + s + "' is not a number");
}

c10::ScalarType parse_dtype(const std::string& s, const std::string& what) {
  if (s == "float32") return c10::ScalarType::Float;
  if (s == "int64") return c10::ScalarType::Long;
  if (s == "bool") return c10::ScalarType::Bool;
  throw ExportError(what + ": unknown dtype '" + s + "'");
}

const char* dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Bool: return "bool";
    default: return c10::toString(t);
  }
}

std::vector<TensorSpec> parse_specs(const std::string& s, const std::string& what) {
  std::vector<TensorSpec> out;
  for (const auto& item : split_list(s, ';')) {
    auto parts = split_list(item, ':');
    if (parts.size() != 3 && !(parts.size() == 2 && !item.empty() && item.back() == ':')) {
      throw ExportError(what + ": malformed tensor spec '" + item + "'");
    }
    TensorSpec spec;
    spec.name = parts[0];
    spec.dtype = parse_dtype(parts[1], what);
    if (parts.size() == 3) {
      for (const auto& d : split_list(parts[2], ',')) spec.shape.push_back(d == "B" ? -1 : to_int(d, what));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

std::string first_line(const std::string& s) {
  auto pos = s.find('\n');
  return pos == std::string::npos ? s : s.substr(0, pos);
}

}  // namespace

std::string TensorSpec::str() const {
  std::ostringstream os;
  os << name << ' ' << dtype_name(dtype) << " [";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    os << (i ? ", " : "");
    if (shape[i] < 0) {
      os << 'B';
    } else {
      os << shape[i];
    }
  }
  os << ']';
  return os.str();
}

int ExportInfo::num_agents() const {
  int n = 0;
  for (const auto& g : groups) n += g.num_agents;
  return n;
}

ExportInfo ExportInfo::from_metadata(const std::map<std::string, std::string>& md, const std::string& path) {
  auto get = [&](const std::string& key) -> const std::string& {
    auto it = md.find(key);
    if (it == md.end()) throw ExportError(path + " lacks the metadata '" + key + "'; expected a package written by genmarl export");
    return it->second;
  };
  ExportInfo info;
  info.path = path;
  info.algo = get("genmarl.algo");
  info.env = get("genmarl.env");
  info.device = get("genmarl.device");
  info.genmarl_version = get("genmarl.genmarl_version");
  info.torch_version = get("genmarl.torch_version");
  for (const auto& kv : split_list(get("genmarl.env_params"), ';')) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw ExportError(path + ": malformed env argument '" + kv + "'");
    info.env_params.set(kv.substr(0, eq), to_double(kv.substr(eq + 1), path + ": env argument"));
  }
  for (const auto& name : split_list(get("genmarl.groups"), ',')) {
    auto f = split_list(get("genmarl.group." + name), ',');
    if (f.size() != 6 || (f[2] != "discrete" && f[2] != "continuous")) {
      throw ExportError(path + ": malformed group metadata for '" + name + "'");
    }
    GroupInfo g;
    g.name = name;
    g.num_agents = static_cast<int>(to_int(f[0], path));
    g.obs_dim = static_cast<int>(to_int(f[1], path));
    g.continuous = f[2] == "continuous";
    g.act_n = static_cast<int>(to_int(f[3], path));
    g.low = static_cast<float>(to_double(f[4], path));
    g.high = static_cast<float>(to_double(f[5], path));
    if (g.num_agents < 1 || g.obs_dim < 1 || g.act_n < 1) throw ExportError(path + ": group '" + name + "' has non-positive sizes");
    info.groups.push_back(g);
  }
  if (info.groups.empty()) throw ExportError(path + " names no agent groups");
  return info;
}

void ExportInfo::check_env(const EnvSpec& spec) const {
  // a registered id (e.g. "Foraging-8x8-2p-2f-coop-v3") names its scenario's env ("lbf"); the
  // group checks below catch other arguments
  std::string scenario = env;
  try {
    scenario = resolve_env(env).entry->name;
  } catch (const InvalidArgument&) {  // not a built-in name or id: compared as it is
  }
  if (spec.name != scenario) {
    throw ExportError(path + " was exported for env '" + env + "', not '" + spec.name + "'");
  }
  if (spec.groups.size() != groups.size()) {
    throw ExportError(path + ": the env has " + std::to_string(spec.groups.size()) + " agent groups, the export " +
                      std::to_string(groups.size()) + " (other env arguments?)");
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& e = spec.groups[i];
    const auto& g = groups[i];
    if (e.name != g.name || e.num_agents != g.num_agents || e.obs_dim != g.obs_dim || e.action.continuous != g.continuous ||
        e.action.n != g.act_n) {
      throw ExportError(path + ": group '" + g.name + "' has " + std::to_string(g.num_agents) + " agents, obs_dim " +
                        std::to_string(g.obs_dim) + " and " + std::to_string(g.act_n) + " actions in the export, but the env's group '" +
                        e.name + "' has " + std::to_string(e.num_agents) + ", " + std::to_string(e.obs_dim) + " and " +
                        std::to_string(e.action.n) + " (other env arguments?)");
    }
  }
}

Package::Package(const std::string& path, const std::string& model_name, const std::string& kind) : path_(path), name_(model_name) {
  if (!std::filesystem::is_regular_file(path)) {
    throw ExportError(path + " is missing; expected a package written by genmarl export");
  }
  try {
    loader_ = std::make_unique<::torch::inductor::AOTIModelPackageLoader>(path, model_name);
    for (const auto& [k, v] : loader_->get_metadata()) metadata_[k] = v;
  } catch (const c10::Error& e) {
    throw ExportError(path + " cannot be loaded (" + first_line(e.what_without_backtrace()) +
                      "); expected an AOTInductor package written by genmarl export");
  } catch (const std::exception& e) {
    throw ExportError(path + " cannot be loaded (" + first_line(e.what()) + ")");
  }
  auto fmt = metadata_.find("genmarl.format");
  if (fmt == metadata_.end()) throw ExportError(path + " is not a genmarl export (no genmarl.format metadata)");
  if (fmt->second != kFormat) {
    throw ExportError(path + " is export format " + fmt->second + "; this genmarl::torch reads format " + kFormat);
  }
  if (meta("genmarl.kind") != kind) {
    throw ExportError(path + " holds a '" + meta("genmarl.kind") + "' graph where '" + kind + "' was expected");
  }
  inputs_ = parse_specs(meta("genmarl.inputs"), path);
  outputs_ = parse_specs(meta("genmarl.outputs"), path);
  const auto& dev = meta("genmarl.device");
  if (dev == "cuda") {
    device_ = c10::Device(c10::kCUDA, 0);
  } else if (dev != "cpu") {
    throw ExportError(path + ": unknown device '" + dev + "'");
  }
}

Package::~Package() = default;
Package::Package(Package&&) noexcept = default;
Package& Package::operator=(Package&&) noexcept = default;

const std::string& Package::meta(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) throw ExportError(path_ + " lacks the metadata '" + key + "'");
  return it->second;
}

long long Package::meta_int(const std::string& key) const { return to_int(meta(key), path_ + ": metadata " + key); }

double Package::meta_double(const std::string& key) const { return to_double(meta(key), path_ + ": metadata " + key); }

int Package::input_index(const std::string& name) const {
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Package::output_index(const std::string& name) const {
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if (outputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<at::Tensor> Package::run(std::vector<at::Tensor> inputs) const {
  const std::string where = path_ + " (" + name_ + ")";
  if (inputs.size() != inputs_.size()) {
    throw ExportError(where + " takes " + std::to_string(inputs_.size()) + " inputs, got " + std::to_string(inputs.size()));
  }
  std::int64_t batch = -1;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& spec = inputs_[i];
    auto& t = inputs[i];
    if (!t.defined()) throw ExportError(where + ": input " + spec.str() + " is undefined");
    if (t.scalar_type() != spec.dtype) {
      throw ExportError(where + ": input " + spec.str() + " got dtype " + dtype_name(t.scalar_type()));
    }
    bool ok = t.dim() == static_cast<std::int64_t>(spec.shape.size());
    for (std::size_t d = 0; ok && d < spec.shape.size(); ++d) {
      if (spec.shape[d] < 0) {
        if (t.size(d) < 1 || (batch >= 0 && t.size(d) != batch)) ok = false;
        batch = t.size(d);
      } else if (t.size(d) != spec.shape[d]) {
        ok = false;
      }
    }
    if (!ok) throw ExportError(where + ": input " + spec.str() + " got shape " + shape_str(t.sizes()) + " (one batch size B >= 1 for all)");
    if (t.device() != device_) t = t.to(device_);
    if (!t.is_contiguous()) t = t.contiguous();
  }
  try {
    return loader_->run(inputs);
  } catch (const c10::Error& e) {
    throw ExportError(where + " failed: " + first_line(e.what_without_backtrace()));
  }
}

at::Tensor merge_reset(const at::Tensor& fresh, const at::Tensor& reset, const std::string& who) {
  if (!reset.defined()) return fresh;
  const std::int64_t B = fresh.size(0);
  if (reset.scalar_type() != at::kBool || reset.dim() != 1 || reset.size(0) != B) {
    throw ExportError(who + ": reset must be a bool tensor of shape [" + std::to_string(B) + "]");
  }
  return fresh.logical_or(reset.to(at::kCPU));
}

at::Tensor counter_noise(const std::vector<std::int64_t>& shape, bool normal, std::uint64_t seed, std::uint64_t stream) {
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  float* p = out.data_ptr<float>();
  const std::int64_t n = out.numel();
  CounterRng rng(seed, stream, 0);
  if (!normal) {
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.uniform());
    return out;
  }
  for (std::int64_t i = 0; i < n; i += 2) {  // Box-Muller: two normals per pair of uniforms
    const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    p[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
  }
  return out;
}

}  // namespace genmarl::torch
