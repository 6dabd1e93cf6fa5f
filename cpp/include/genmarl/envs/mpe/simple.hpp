// simple: one agent, one landmark; reward is minus the squared distance.
// mpe2: mpe2/simple/simple.py (simple_v3).
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class Simple : public MpeScenario<Simple> {
 public:
  static constexpr const char* kName = "simple";
  static std::vector<ParamSpec> scenario_params() { return {}; }

  explicit Simple(const Params& p) : MpeScenario(p) {}

  std::vector<std::string> agent_names() const { return {"agent_0"}; }

  void make_world(World& w) const {
    w.init(1, 1, 0);
    w.agent(0).collide = false;
    w.agent(0).silent = true;
    w.landmark(0).collide = false;
    w.landmark(0).movable = false;
  }

  void reset_world(World& w, CounterRng& rng) const {
    w.agent(0).color = {0.25, 0.25, 0.25};
    w.landmark(0).color = {0.75, 0.25, 0.25};
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    out.put(w.agent(i).vel);
    for (int l = 0; l < w.num_landmarks; ++l) out.put(w.landmark(l).pos - w.agent(i).pos);
  }

  double reward(const World& w, int i) const {
    const Vec2 d = w.agent(i).pos - w.landmark(0).pos;
    return -(d.x * d.x + d.y * d.y);
  }
};

}  // namespace genmarl::mpe
