// MpeScenario<Derived>: what every MPE scenario shares — the common
// constructor arguments, the spec derived from the world, action decoding,
// the physics step, local/global reward blending and state export/import.
//
// A scenario derives from it and defines:
//   static const char* kName;
//   static std::vector<ParamSpec> scenario_params();   // its own arguments
//   explicit Derived(const Params&);                   // reads them (resolved)
//   std::vector<std::string> agent_names() const;
//   void make_world(World&) const;                     // counts and fixed properties
//   void reset_world(World&, CounterRng&) const;
//   void observation(const World&, int agent, ObsWriter&) const;
//   double reward(const World&, int agent) const;
// and optionally global_reward, terminal, post_step, check_state, curriculum hooks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/spec.hpp"
#include "genmarl/envs/mpe/world.hpp"

namespace genmarl::mpe {

inline constexpr int kMaxObsDim = 1024;

template <class Derived>
class MpeScenario {
 public:
  using State = World;

  // Arguments every MPE scenario accepts, as in mpe2's SimpleEnv.
  static std::vector<ParamSpec> common_params() {
    return {
        {"max_cycles", ParamKind::kInt, 25, "steps until the episode is truncated"},
        {"continuous_actions", ParamKind::kBool, 0, "Box(0, 1) actions instead of Discrete"},
        {"dynamic_rescaling", ParamKind::kBool, 1, "rendering: scale entity sizes with the camera zoom"},
    };
  }
  static std::vector<ParamSpec> param_specs() {
    auto p = common_params();
    for (auto& s : Derived::scenario_params()) p.push_back(s);
    return p;
  }

  explicit MpeScenario(const Params& params)
      : max_cycles_(params.get_int("max_cycles")), continuous_(params.get_bool("continuous_actions")) {
    if (max_cycles_ <= 0) throw InvalidArgument("max_cycles must be a positive integer, got " + std::to_string(max_cycles_));
  }

  int max_cycles() const { return max_cycles_; }
  bool continuous() const { return continuous_; }

  // Builds the spec by making and resetting one world, as mpe2 does.
  EnvSpec spec() const {
    const Derived& self = derived();
    World w;
    init_state(w);
    CounterRng rng(0, 0, 0);
    reset(w, rng);
    EnvSpec s;
    s.name = Derived::kName;
    s.family = "mpe";
    s.max_cycles = max_cycles_;
    s.metric_names = self.metric_names();
    auto names = self.agent_names();
    if (static_cast<int>(names.size()) != w.num_agents) throw std::logic_error("agent_names does not match make_world");
    if (w.num_agents > 64) throw InvalidArgument(std::string(Derived::kName) + ": at most 64 agents are supported");
    std::vector<float> buf(kMaxObsDim);
    for (int i = 0; i < w.num_agents; ++i) {
      AgentSpec a;
      a.name = names[i];
      ObsWriter writer(buf.data());
      self.observation(w, i, writer);
      a.obs_shape = {writer.size()};
      a.action = w.action_space(i, continuous_);
      // MPE names agents "<group>_<index>" (mpe2's convention): the group is the prefix.
      const auto pos = a.name.rfind('_');
      a.group = pos == std::string::npos ? a.name : a.name.substr(0, pos);
      s.agents.push_back(a);
    }
    s.finalize();
    return s;
  }

  void init_state(World& w) const { derived().make_world(w); }

  void reset(World& w, CounterRng& rng) const {
    w.steps = 0;
    derived().reset_world(w, rng);
  }

  void apply_actions(World& w, const std::int64_t* discrete, const float* continuous, int stride) const {
    for (int i = 0; i < w.num_agents; ++i) {
      if (continuous_) {
        float clipped[64];
        const int n = w.action_space(i, true).n;
        for (int k = 0; k < n; ++k) clipped[k] = std::clamp(continuous[i * stride + k], 0.0f, 1.0f);
        w.set_continuous_action(i, clipped);
      } else {
        w.set_discrete_action(i, discrete[i]);
      }
    }
  }

  void step(World& w, CounterRng& rng) const {
    w.physics_step();
    derived().post_step(w, rng);
    w.steps += 1;
  }

  void rewards(World& w, double* out) const {
    const Derived& self = derived();
    const double lr = self.local_ratio();
    const double g = lr >= 0.0 ? self.global_reward(w) : 0.0;
    for (int i = 0; i < w.num_agents; ++i) {
      const double r = self.reward(w, i);
      out[i] = lr >= 0.0 ? g * (1.0 - lr) + r * lr : r;
    }
  }

  std::int64_t steps(const World& w) const { return w.steps; }

  // mpe2 checks the time limit first: a success on the last step is reported as truncation only.
  bool is_terminal(const World& w) const { return w.steps < max_cycles_ && derived().terminal(w); }

  void observe(const World& w, int agent, float* out) const {
    ObsWriter writer(out);
    derived().observation(w, agent, writer);
  }

  // Per-episode metrics (the info channel): metric_names() and, after every step,
  // update_metrics(world, acc) with acc zeroed at reset; acc's values at the end are reported;
  // final_metrics(world, acc) runs once on the episode's last state.
  std::vector<std::string> metric_names() const { return {}; }
  void update_metrics(const World&, double*) const {}
  void final_metrics(const World&, double*) const {}

  // Defaults a scenario may override.
  double local_ratio() const { return -1.0; }
  double global_reward(const World&) const { return 0.0; }
  bool terminal(const World&) const { return false; }
  void post_step(World&, CounterRng&) const {}
  int num_curriculum_stages() const { return 1; }
  int curriculum_stage() const { return 0; }
  void set_curriculum_stage(int) {}

  static std::vector<StateArray> export_states(const std::vector<World>& worlds) {
    const auto E = static_cast<std::int64_t>(worlds.size());
    const World& w0 = worlds.front();
    const std::int64_t N = w0.num_entities(), A = w0.num_agents, C = w0.dim_c;
    const std::int64_t F = static_cast<std::int64_t>(w0.aux_f.size()), I = static_cast<std::int64_t>(w0.aux_i.size());
    StateArrays out;
    auto* pos = out.add<double>("pos", {E, N, 2});
    auto* vel = out.add<double>("vel", {E, N, 2});
    auto* size = out.add<double>("size", {E, N});
    auto* mass = out.add<double>("mass", {E, N});
    auto* accel = out.add<double>("accel", {E, N});
    auto* max_speed = out.add<double>("max_speed", {E, N});
    auto* color = out.add<double>("color", {E, N, 3});
    auto* movable = out.add<bool>("movable", {E, N});
    auto* collide = out.add<bool>("collide", {E, N});
    auto* silent = out.add<bool>("silent", {E, N});
    auto* comm = out.add<double>("comm", {E, A, C});
    auto* aux_f = out.add<double>("aux_f", {E, F});
    auto* aux_i = out.add<std::int64_t>("aux_i", {E, I});
    auto* steps = out.add<std::int64_t>("steps", {E});
    for (std::int64_t e = 0; e < E; ++e) {
      const World& w = worlds[e];
      for (std::int64_t n = 0; n < N; ++n) {
        const Entity& x = w.entities[n];
        const std::int64_t k = e * N + n;
        pos[2 * k] = x.pos.x;
        pos[2 * k + 1] = x.pos.y;
        vel[2 * k] = x.vel.x;
        vel[2 * k + 1] = x.vel.y;
        size[k] = x.size;
        mass[k] = x.mass;
        accel[k] = x.accel == kUnset ? std::nan("") : x.accel;
        max_speed[k] = x.max_speed == kUnset ? std::nan("") : x.max_speed;
        for (int c = 0; c < 3; ++c) color[3 * k + c] = x.color[c];
        movable[k] = x.movable;
        collide[k] = x.collide;
        silent[k] = x.silent;
      }
      std::copy(w.comm.begin(), w.comm.end(), comm + e * A * C);
      std::copy(w.aux_f.begin(), w.aux_f.end(), aux_f + e * F);
      std::copy(w.aux_i.begin(), w.aux_i.end(), aux_i + e * I);
      steps[e] = w.steps;
    }
    return out.take();
  }

  // Shapes and dtypes were validated by VectorEnv::set_state; values are checked here.
  static void import_states(std::vector<World>& worlds, const std::vector<StateArray>& arrays) {
    const auto* pos = state_array<double>(arrays, "pos");
    const auto* vel = state_array<double>(arrays, "vel");
    const auto* size = state_array<double>(arrays, "size");
    const auto* mass = state_array<double>(arrays, "mass");
    const auto* accel = state_array<double>(arrays, "accel");
    const auto* max_speed = state_array<double>(arrays, "max_speed");
    const auto* color = state_array<double>(arrays, "color");
    const auto* movable = state_array<unsigned char>(arrays, "movable");
    const auto* collide = state_array<unsigned char>(arrays, "collide");
    const auto* silent = state_array<unsigned char>(arrays, "silent");
    const auto* comm = state_array<double>(arrays, "comm");
    const auto* aux_f = state_array<double>(arrays, "aux_f");
    const auto* aux_i = state_array<std::int64_t>(arrays, "aux_i");
    const auto* steps = state_array<std::int64_t>(arrays, "steps");
    const std::size_t E = worlds.size();
    const std::size_t N = worlds.front().entities.size(), A = worlds.front().num_agents,
                      C = worlds.front().dim_c, F = worlds.front().aux_f.size(), I = worlds.front().aux_i.size();
    auto check_finite = [](const char* name, const double* v, std::size_t count) {
      for (std::size_t k = 0; k < count; ++k) {
        if (!std::isfinite(v[k])) throw InvalidArgument(std::string("set_state: array '") + name + "' contains a non-finite value");
      }
    };
    check_finite("pos", pos, E * N * 2);
    check_finite("vel", vel, E * N * 2);
    check_finite("size", size, E * N);
    check_finite("mass", mass, E * N);
    check_finite("color", color, E * N * 3);
    check_finite("comm", comm, E * A * C);
    check_finite("aux_f", aux_f, E * F);
    for (std::size_t k = 0; k < E * N; ++k) {
      if (!(size[k] >= 0.0) || !(mass[k] > 0.0)) throw InvalidArgument("set_state: 'size' must be >= 0 and 'mass' > 0");
      if (!std::isnan(accel[k]) && !(accel[k] >= 0.0 && std::isfinite(accel[k])))
        throw InvalidArgument("set_state: 'accel' must be NaN (unset) or a finite value >= 0");
      if (!std::isnan(max_speed[k]) && !(max_speed[k] >= 0.0 && std::isfinite(max_speed[k])))
        throw InvalidArgument("set_state: 'max_speed' must be NaN (unset) or a finite value >= 0");
      if (movable[k] > 1 || collide[k] > 1 || silent[k] > 1) throw InvalidArgument("set_state: bool arrays must hold 0 or 1");
    }
    for (std::size_t e = 0; e < E; ++e) {
      if (steps[e] < 0) throw InvalidArgument("set_state: 'steps' must be non-negative");
      for (std::size_t n = 0; n < A; ++n) {
        const Entity& x = worlds[e].entities[n];
        if ((movable[e * N + n] != 0) != x.movable || (silent[e * N + n] != 0) != x.silent) {
          throw InvalidArgument("set_state: agents' 'movable' and 'silent' flags define the action spaces and cannot change");
        }
      }
    }
    for (std::size_t e = 0; e < E; ++e) {
      World& w = worlds[e];
      for (std::size_t n = 0; n < N; ++n) {
        Entity& x = w.entities[n];
        const std::size_t k = e * N + n;
        x.pos = Vec2{pos[2 * k], pos[2 * k + 1]};
        x.vel = Vec2{vel[2 * k], vel[2 * k + 1]};
        x.size = size[k];
        x.mass = mass[k];
        x.accel = std::isnan(accel[k]) ? kUnset : accel[k];
        x.max_speed = std::isnan(max_speed[k]) ? kUnset : max_speed[k];
        for (int c = 0; c < 3; ++c) x.color[c] = color[3 * k + c];
        x.movable = movable[k] != 0;
        x.collide = collide[k] != 0;
        x.silent = silent[k] != 0;
      }
      std::copy(comm + e * A * C, comm + (e + 1) * A * C, w.comm.begin());
      std::copy(aux_f + e * F, aux_f + (e + 1) * F, w.aux_f.begin());
      std::copy(aux_i + e * I, aux_i + (e + 1) * I, w.aux_i.begin());
      w.steps = steps[e];
    }
    for (const World& w : worlds) Derived::check_state(w);
  }

  // Checks the scenario's own part of an imported state (e.g. goal indices in aux_i) and
  // throws InvalidArgument; the env imports into a copy, so a bad state leaves it unchanged.
  static void check_state(const World&) {}

 protected:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }

  int max_cycles_;
  bool continuous_;
};

}  // namespace genmarl::mpe
