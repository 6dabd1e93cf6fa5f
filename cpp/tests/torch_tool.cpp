// genmarl_torch_tool: drives genmarl::torch from tests/test_export_cpp.py (C++ vs Python parity).
// Inputs and outputs are dicts of tensors written with torch.save / read with torch.load.
//
//   genmarl_torch_tool load DIR                    load policy (+ world model); prints "ok" or the error (rc 3)
//   genmarl_torch_tool act DIR IN OUT              Policy::act over T steps of obs/<g> [T, B, n, d], reset [T, B]
//                                                  (and mask/<g> [T, B, n, A] where given)
//   genmarl_torch_tool maskact DIR STEPS           Policy::act_in, stochastic, in the export's env: counts the
//                                                  actions the env's masks call invalid
//   genmarl_torch_tool graphs DIR IN OUT           every world-model graph on the given inputs
//   genmarl_torch_tool imagine DIR IN OUT          a greedy, latent-mode imagined rollout from h, z
//   genmarl_torch_tool simplan DIR K H             simulator planning leaves the acted-in env unchanged
//   genmarl_torch_tool badobs DIR                  Policy::act with a wrong observation shape and dtype
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <torch/serialize.h>
#include <torch/torch.h>

#include "genmarl/envs/registry.hpp"
#include "genmarl/torch/policy.hpp"
#include "genmarl/torch/world_model.hpp"

namespace gt = genmarl::torch;

namespace {

c10::Dict<c10::IValue, c10::IValue> read_dict(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return ::torch::pickle_load(data).toGenericDict();
}

at::Tensor get(const c10::Dict<c10::IValue, c10::IValue>& d, const std::string& key) { return d.at(key).toTensor(); }

void write_dict(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& items) {
  // a tuple of (name, tensor) pairs: plain data that torch.load(weights_only=True) reads
  std::vector<c10::IValue> pairs;
  for (const auto& [k, v] : items) pairs.emplace_back(c10::ivalue::Tuple::create({c10::IValue(k), c10::IValue(v.to(at::kCPU).contiguous())}));
  auto bytes = ::torch::pickle_save(c10::ivalue::Tuple::create(std::move(pairs)));
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

int act(const std::string& dir, const std::string& in, const std::string& out) {
  auto d = read_dict(in);
  gt::Policy policy(dir, static_cast<std::uint64_t>(get(d, "seed").item<std::int64_t>()));
  const bool det = get(d, "deterministic").item<bool>();
  at::Tensor reset = get(d, "reset");
  const auto T = reset.size(0);
  std::vector<std::vector<at::Tensor>> actions(policy.info().groups.size()), logits(policy.info().groups.size());
  for (std::int64_t t = 0; t < T; ++t) {
    std::vector<at::Tensor> obs;
    std::vector<at::Tensor> masks;
    for (const auto& g : policy.info().groups) {
      obs.push_back(get(d, "obs/" + g.name)[t].contiguous());
      masks.push_back(d.contains("mask/" + g.name) ? get(d, "mask/" + g.name)[t].contiguous() : at::Tensor());
    }
    auto a = policy.act(obs, det, reset[t].contiguous(), masks);
    for (std::size_t g = 0; g < a.size(); ++g) {
      actions[g].push_back(a[g]);
      logits[g].push_back(policy.last_logits()[g]);
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> items;
  for (std::size_t g = 0; g < actions.size(); ++g) {
    items.emplace_back("action/" + policy.info().groups[g].name, at::stack(actions[g]));
    items.emplace_back("logits/" + policy.info().groups[g].name, at::stack(logits[g]));
  }
  write_dict(out, items);
  return 0;
}

int graphs(const std::string& dir, const std::string& in, const std::string& out) {
  auto d = read_dict(in);
  gt::WorldModel wm(dir);
  std::vector<at::Tensor> obs;
  for (const auto& g : wm.info().groups) obs.push_back(get(d, "obs/" + g.name));
  auto [h, post] = wm.filter(obs, get(d, "h"), get(d, "reset"));
  at::Tensor z = get(d, "z");
  auto s = wm.step(h, z, get(d, "action"));
  write_dict(out, {{"h", h}, {"posterior", post}, {"logits", wm.actor(h, z)}, {"h_next", s.h_next}, {"prior", s.prior},
                   {"reward", s.reward}, {"cont", s.cont}, {"value", wm.value(h, z)}, {"behaviour", wm.behaviour(h, z)}});
  return 0;
}

int imagine(const std::string& dir, const std::string& in, const std::string& out) {
  auto d = read_dict(in);
  auto wm = std::make_shared<gt::WorldModel>(dir);
  gt::ImaginationRollout roll(wm, 0);
  gt::ImagineOptions opt;
  opt.latent_mode = true;
  opt.greedy_actions = true;
  for (const auto& g : wm->info().groups) {  // start observations: exports whose rewards are read from predicted ones
    if (d.contains("obs/" + g.name)) opt.start_obs.push_back(get(d, "obs/" + g.name));
  }
  auto r = roll.rollout(get(d, "h"), get(d, "z"), static_cast<int>(get(d, "horizon").item<std::int64_t>()), opt);
  write_dict(out, {{"h", r.h}, {"z", r.z}, {"actions", r.actions}, {"rewards", r.rewards}, {"cont", r.cont}, {"values", r.values}});
  return 0;
}

int simplan(const std::string& dir, int K, int H) {
  auto wm = std::make_shared<gt::WorldModel>(dir);
  const int E = 4;
  auto env = genmarl::make_env(wm->info().env, wm->info().env_params, E, 1, 7);
  genmarl::OutputBuffers buf(*env);
  env->reset(7, buf.out);
  gt::Policy policy(dir, 1);
  for (int t = 0; t < 3; ++t) {  // move off the initial state
    policy.act_in(*env, buf, false, t > 0);
    env->step(buf.out);
  }
  auto before = env->get_state();
  auto [h, post] = wm->filter(gt::observation_views(*env, buf), wm->zero_state(E), at::ones({E}, at::kBool));
  gt::CategoricalSampler sampler(3);
  at::Tensor z = gt::latent_one_hot(sampler.draw(post), wm->classes());
  gt::SimulatorPlanner planner(wm, K, H, 5);
  at::Tensor a = planner.plan(*env, h, z);
  auto after = env->get_state();
  bool same = before.size() == after.size();
  for (std::size_t i = 0; same && i < before.size(); ++i) same = before[i].data == after[i].data && before[i].shape == after[i].shape;
  std::printf("unchanged=%d env_steps=%lld action_shape=%lld,%lld scores_finite=%d\n", same ? 1 : 0,
              static_cast<long long>(planner.env_steps()), static_cast<long long>(a.size(0)), static_cast<long long>(a.size(1)),
              planner.last_scores().isfinite().all().item<bool>() ? 1 : 0);
  return same ? 0 : 1;
}

int maskact(const std::string& dir, int steps) {
  gt::Policy policy(dir, 5);
  const int E = 16;
  auto env = genmarl::make_env(policy.info().env, policy.info().env_params, E, 1, 3);
  genmarl::OutputBuffers buf(*env);
  env->reset(3, buf.out);
  const auto& spec = env->spec();
  long long invalid = 0, checked = 0, masked_out = 0;
  for (int t = 0; t < steps; ++t) {
    policy.act_in(*env, buf, false, t > 0);
    for (std::size_t g = 0; g < spec.groups.size(); ++g) {
      const bool* m = buf.action_mask[g].get();
      if (m == nullptr) continue;
      const auto& gs = spec.groups[g];
      for (int e = 0; e < E; ++e) {
        for (int i = 0; i < gs.num_agents; ++i) {
          const std::int64_t a = env->discrete_actions()[e * spec.num_agents() + gs.first_agent + i];
          const bool* row = m + (static_cast<std::int64_t>(e) * gs.num_agents + i) * gs.action.n;
          for (int k = 0; k < gs.action.n; ++k) masked_out += row[k] ? 0 : 1;
          invalid += row[a] ? 0 : 1;
          ++checked;
        }
      }
    }
    env->step(buf.out);
  }
  std::printf("takes_mask=%d checked=%lld masked_out=%lld invalid=%lld\n", policy.takes_mask(0) ? 1 : 0, checked, masked_out, invalid);
  return invalid == 0 ? 0 : 1;
}

int badobs(const std::string& dir) {
  gt::Policy policy(dir);
  const auto& g = policy.info().groups;
  int caught = 0;
  std::vector<at::Tensor> obs;
  for (const auto& gi : g) obs.push_back(at::zeros({2, gi.num_agents, gi.obs_dim + 1}));
  try {
    policy.act(obs, true);
  } catch (const gt::ExportError& e) {
    std::printf("shape: %s\n", e.what());
    ++caught;
  }
  obs.clear();
  for (const auto& gi : g) obs.push_back(at::zeros({2, gi.num_agents, gi.obs_dim}, at::kDouble));
  try {
    policy.act(obs, true);
  } catch (const gt::ExportError& e) {
    std::printf("dtype: %s\n", e.what());
    ++caught;
  }
  try {
    policy.act({}, true);
  } catch (const gt::ExportError& e) {
    std::printf("count: %s\n", e.what());
    ++caught;
  }
  auto other = genmarl::make_env(policy.info().env == "simple_spread" ? "simple_tag" : "simple_spread", genmarl::Params{}, 2, 1, 0);
  genmarl::OutputBuffers buf(*other);
  other->reset(0, buf.out);
  try {
    policy.act_in(*other, buf, true, false);
  } catch (const gt::ExportError& e) {
    std::printf("env: %s\n", e.what());
    ++caught;
  }
  std::printf("caught=%d\n", caught);
  return caught == 4 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "load" && argc == 3) {
      gt::Policy policy(argv[2]);
      if (policy.info().algo == "genrl") gt::WorldModel wm(argv[2]);
      std::printf("ok %s %s\n", policy.info().algo.c_str(), policy.info().env.c_str());
      return 0;
    }
    if (cmd == "act" && argc == 5) return act(argv[2], argv[3], argv[4]);
    if (cmd == "maskact" && argc == 4) return maskact(argv[2], std::stoi(argv[3]));
    if (cmd == "graphs" && argc == 5) return graphs(argv[2], argv[3], argv[4]);
    if (cmd == "imagine" && argc == 5) return imagine(argv[2], argv[3], argv[4]);
    if (cmd == "simplan" && argc == 5) return simplan(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
    if (cmd == "badobs" && argc == 3) return badobs(argv[2]);
  } catch (const gt::ExportError& e) {
    std::printf("ExportError: %s\n", e.what());
    return 3;
  }
  std::fprintf(stderr, "usage: genmarl_torch_tool load|act|maskact|graphs|imagine|simplan|badobs DIR ...\n");
  return 2;
}
