// simple_push: a good agent heads for the goal landmark while an adversary,
// who does not know which landmark it is, pushes it away.
// mpe2: mpe2/simple_push/simple_push.py (simple_push_v3).
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimplePush : public MpeScenario<SimplePush> {
 public:
  static constexpr const char* kName = "simple_push";
  static constexpr int kNumAdversaries = 1;
  static constexpr int kNumGood = 1;
  static constexpr int kNumAgents = kNumAdversaries + kNumGood;
  static constexpr int kNumLandmarks = 2;
  static constexpr int kDimC = 2;
  static constexpr double kLandmarkBase = 0.1, kLandmarkTint = 0.8;  // landmark l: base + tint on channel l + 1
  static constexpr double kAgentBase = 0.25, kGoalTint = 0.5;        // good agent: base + tint on the goal's channel
  static constexpr int kAuxGoal = 0;  // aux_i: index of the goal landmark
  static constexpr int kNumAuxI = 1;

  static std::vector<ParamSpec> scenario_params() { return {}; }

  explicit SimplePush(const Params& p) : MpeScenario(p) {}

  static bool is_adversary(int i) { return i < kNumAdversaries; }

  std::vector<std::string> agent_names() const { return {"adversary_0", "agent_0"}; }

  void make_world(World& w) const {
    w.init(kNumAgents, kNumLandmarks, kDimC, 0, kNumAuxI);
    for (int i = 0; i < kNumAgents; ++i) {
      w.agent(i).collide = true;
      w.agent(i).silent = true;
    }
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).color = {kLandmarkBase, kLandmarkBase, kLandmarkBase};
      w.landmark(l).color[l + 1] += kLandmarkTint;
    }
    const auto goal = static_cast<std::int64_t>(rng.below(kNumLandmarks));
    w.aux_i[kAuxGoal] = goal;
    for (int i = 0; i < kNumAgents; ++i) {
      w.agent(i).color = {kAgentBase, kAgentBase, kAgentBase};
      if (is_adversary(i)) w.agent(i).color = {0.75, 0.25, 0.25};
      else w.agent(i).color[goal + 1] += kGoalTint;
    }
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  static int goal_entity(const World& w) { return w.num_agents + static_cast<int>(w.aux_i[kAuxGoal]); }

  double reward(const World& w, int i) const {
    const int goal = goal_entity(w);
    if (!is_adversary(i)) return -w.distance(i, goal);
    double closest = 0.0;
    for (int g = kNumAdversaries; g < kNumAgents; ++g) {
      const double d = w.distance(g, goal);
      if (g == kNumAdversaries || d < closest) closest = d;
    }
    return closest - w.distance(goal, i);
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    if (!is_adversary(i)) {
      out.put(w.entities[goal_entity(w)].pos - me.pos);
      out.put(me.color);
    }
    for (int l = 0; l < kNumLandmarks; ++l) out.put(w.landmark(l).pos - me.pos);
    if (!is_adversary(i)) {
      for (int l = 0; l < kNumLandmarks; ++l) out.put(w.landmark(l).color);
    }
    for (int a = 0; a < kNumAgents; ++a) {
      if (a != i) out.put(w.agent(a).pos - me.pos);
    }
  }

  static void check_state(const World& w) {
    if (w.aux_i[kAuxGoal] < 0 || w.aux_i[kAuxGoal] >= kNumLandmarks)
      throw InvalidArgument("set_state: simple_push aux_i[0] (goal landmark) must be in [0, 2)");
  }
};

}  // namespace genmarl::mpe
