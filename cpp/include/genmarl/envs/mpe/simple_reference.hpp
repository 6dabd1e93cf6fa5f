// simple_reference: two agents each tell the other which landmark to go to;
// each is rewarded by how close the other gets to the landmark it was given.
// mpe2: mpe2/simple_reference/simple_reference.py (simple_reference_v3).
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleReference : public MpeScenario<SimpleReference> {
 public:
  static constexpr const char* kName = "simple_reference";
  static constexpr int kNumAgents = 2;
  static constexpr int kNumLandmarks = 3;
  static constexpr int kDimC = 10;
  // aux_i[i]: the landmark (goal_b) that agent i wants the other agent (goal_a) to reach.
  static constexpr int kNumAuxI = kNumAgents;
  static constexpr std::array<std::array<double, 3>, kNumLandmarks> kLandmarkColors{
      {{0.75, 0.25, 0.25}, {0.25, 0.75, 0.25}, {0.25, 0.25, 0.75}}};

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"local_ratio", ParamKind::kFloat, 0.5, "weight of the agent's own reward; 1 - it weights the mean reward"},
    };
  }

  explicit SimpleReference(const Params& p) : MpeScenario(p), local_ratio_(p.get("local_ratio")) {
    if (!(local_ratio_ >= 0.0 && local_ratio_ <= 1.0))
      throw InvalidArgument("simple_reference: local_ratio is a proportion and must be in [0, 1]");
  }

  std::vector<std::string> agent_names() const { return {"agent_0", "agent_1"}; }

  void make_world(World& w) const {
    w.init(kNumAgents, kNumLandmarks, kDimC, 0, kNumAuxI);
    for (int i = 0; i < kNumAgents; ++i) w.agent(i).collide = false;
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
    }
  }

  static int partner(int i) { return kNumAgents - 1 - i; }
  static int goal_b(const World& w, int i) { return w.num_agents + static_cast<int>(w.aux_i[i]); }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < kNumAgents; ++i) w.aux_i[i] = static_cast<std::int64_t>(rng.below(kNumLandmarks));
    for (int i = 0; i < kNumAgents; ++i) w.agent(i).color = {0.25, 0.25, 0.25};
    for (int l = 0; l < kNumLandmarks; ++l) w.landmark(l).color = kLandmarkColors[l];
    // Each agent wears the colour of the landmark its partner wants it to reach.
    for (int i = 0; i < kNumAgents; ++i) w.agent(partner(i)).color = w.entities[goal_b(w, i)].color;
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  double local_ratio() const { return local_ratio_; }

  double reward(const World& w, int i) const { return -w.distance(partner(i), goal_b(w, i)); }

  double global_reward(const World& w) const {
    double sum = 0.0;
    for (int i = 0; i < kNumAgents; ++i) sum += reward(w, i);
    return sum / kNumAgents;
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    for (int l = 0; l < kNumLandmarks; ++l) out.put(w.landmark(l).pos - me.pos);
    out.put(w.entities[goal_b(w, i)].color);
    for (int a = 0; a < kNumAgents; ++a) {
      if (a != i) out.put(w.agent_comm(a), w.dim_c);
    }
  }

  static void check_state(const World& w) {
    for (int i = 0; i < kNumAgents; ++i) {
      if (w.aux_i[i] < 0 || w.aux_i[i] >= kNumLandmarks)
        throw InvalidArgument("set_state: simple_reference aux_i (goal landmarks) must be in [0, 3)");
    }
  }

 private:
  double local_ratio_;
};

}  // namespace genmarl::mpe
