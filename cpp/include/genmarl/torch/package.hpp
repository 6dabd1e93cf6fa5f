// genmarl::torch -- run agents exported by `genmarl export` (AOTInductor packages) from C++.
//
// Optional: built only when CMake finds Torch (GENMARL_WITH_TORCH=ON, or through the CMake
// package of a pip-installed genmarl); never part of the Python extension.
//
// A package (.pt2) holds one or more compiled graphs. Each carries flat "genmarl.*" metadata
// strings written by the exporter: the env, its arguments, agent groups, and every input and
// output as "name:dtype:B,d1,..." (B = the batch axis). Package checks every call against them,
// so a wrong shape, dtype or count raises ExportError instead of reaching compiled code.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include "genmarl/env/spec.hpp"

namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace genmarl::torch {

// Everything that goes wrong with an export directory or an input to it.
class ExportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One input or output of a graph; shape[i] == -1 is the batch axis.
struct TensorSpec {
  std::string name;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<std::int64_t> shape;
  std::string str() const;  // e.g. "obs/agent float32 [B, 3, 18]"
};

// An agent group as the export saw it.
struct GroupInfo {
  std::string name;
  int num_agents = 0;
  int obs_dim = 0;
  bool continuous = false;
  int act_n = 0;  // discrete: number of actions; continuous: action dimension
  float low = 0.0f, high = 0.0f;
};

// The facts of an export every package carries (metadata "genmarl.*").
struct ExportInfo {
  std::string path;
  std::string algo, env, device;
  Params env_params;
  std::vector<GroupInfo> groups;
  std::string genmarl_version, torch_version;

  int num_agents() const;
  static ExportInfo from_metadata(const std::map<std::string, std::string>& md, const std::string& path);
  // Throws ExportError unless `spec` (an env to act in) has this export's env name, groups,
  // observation sizes and action spaces.
  void check_env(const EnvSpec& spec) const;
};

// One compiled graph of a .pt2 package.
class Package {
 public:
  // Loads `model_name` of the package at `path` and checks that its metadata says `kind`
  // (e.g. "policy", "world_model.step"). Throws ExportError for a missing, damaged or foreign file.
  Package(const std::string& path, const std::string& model_name, const std::string& kind);
  ~Package();
  Package(Package&&) noexcept;
  Package& operator=(Package&&) noexcept;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& meta(const std::string& key) const;  // throws ExportError when absent
  // meta(key) as a whole integer / number; ExportError when absent or not one.
  long long meta_int(const std::string& key) const;
  double meta_double(const std::string& key) const;
  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  int input_index(const std::string& name) const;   // -1 when absent
  int output_index(const std::string& name) const;  // -1 when absent
  c10::Device device() const { return device_; }
  const std::string& path() const { return path_; }

  // Runs the graph. Inputs must match inputs() in count, dtype and shape, with one batch size
  // for all; they are moved to the package's device when they live elsewhere.
  std::vector<at::Tensor> run(std::vector<at::Tensor> inputs) const;

 private:
  std::string path_, name_;
  std::unique_ptr<::torch::inductor::AOTIModelPackageLoader> loader_;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorSpec> inputs_, outputs_;
  c10::Device device_{c10::kCPU};
};

// The items of a metadata list ("a;b;c" with sep ';'); an empty string has none.
std::vector<std::string> split_list(const std::string& s, char sep);

// The restart flags of an acting step: `fresh` [B] bool (CPU) or-ed with the caller's `reset`
// (undefined: none), which must be a bool tensor [B]; `who` names the caller in the error.
at::Tensor merge_reset(const at::Tensor& fresh, const at::Tensor& reset, const std::string& who);

// Uniform [0, 1) or standard normal float32 noise of `shape` from genmarl's counter-based RNG,
// keyed by (seed, stream): the same numbers on every machine and thread count.
at::Tensor counter_noise(const std::vector<std::int64_t>& shape, bool normal, std::uint64_t seed, std::uint64_t stream);

}  // namespace genmarl::torch
