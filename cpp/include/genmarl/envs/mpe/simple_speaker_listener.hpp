// simple_speaker_listener: a static speaker sees the goal landmark's colour and
// must tell a silent listener which of three landmarks to reach.
// mpe2: mpe2/simple_speaker_listener/simple_speaker_listener.py (simple_speaker_listener_v4).
//
// Scenario state: aux_i[0] is the goal landmark's index (mpe2's speaker.goal_b;
// the speaker's goal_a is always the listener).
#pragma once

#include <array>

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleSpeakerListener : public MpeScenario<SimpleSpeakerListener> {
 public:
  static constexpr const char* kName = "simple_speaker_listener";
  static constexpr int kSpeaker = 0, kListener = 1, kNumAgents = 2;
  static constexpr int kNumLandmarks = 3;
  static constexpr int kDimC = 3;
  static constexpr double kAgentSize = 0.075, kLandmarkSize = 0.04;
  static constexpr int kAuxGoal = 0;  // aux_i slot of the goal landmark index
  static constexpr double kGoalHighlight = 0.45;  // added to the goal's colour for the listener
  static constexpr std::array<double, 3> kAgentColor{0.25, 0.25, 0.25};
  static constexpr std::array<std::array<double, 3>, kNumLandmarks> kLandmarkColors{{
      {0.65, 0.15, 0.15},
      {0.15, 0.65, 0.15},
      {0.15, 0.15, 0.65},
  }};

  static std::vector<ParamSpec> scenario_params() { return {}; }

  explicit SimpleSpeakerListener(const Params& p) : MpeScenario(p) {}

  std::vector<std::string> agent_names() const { return {"speaker_0", "listener_0"}; }

  void make_world(World& w) const {
    w.init(kNumAgents, kNumLandmarks, kDimC, 0, 1);
    for (int i = 0; i < kNumAgents; ++i) {
      w.agent(i).collide = false;
      w.agent(i).size = kAgentSize;
    }
    w.agent(kSpeaker).movable = false;
    w.agent(kListener).silent = true;
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
      w.landmark(l).size = kLandmarkSize;
    }
  }

  static int goal(const World& w) { return static_cast<int>(w.aux_i[kAuxGoal]); }

  void reset_world(World& w, CounterRng& rng) const {
    w.aux_i[kAuxGoal] = static_cast<std::int64_t>(rng.below(kNumLandmarks));
    for (int i = 0; i < kNumAgents; ++i) w.agent(i).color = kAgentColor;
    for (int l = 0; l < kNumLandmarks; ++l) w.landmark(l).color = kLandmarkColors[l];
    const auto& gc = w.landmark(goal(w)).color;
    w.agent(kListener).color = {gc[0] + kGoalHighlight, gc[1] + kGoalHighlight, gc[2] + kGoalHighlight};
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  // Both agents get minus the squared listener-goal distance.
  double reward(const World& w, int) const {
    const Vec2 d = w.agent(kListener).pos - w.landmark(goal(w)).pos;
    return -(d.x * d.x + d.y * d.y);
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    if (i == kSpeaker) {
      out.put(w.landmark(goal(w)).color);
      return;
    }
    const Entity& me = w.agent(i);
    out.put(me.vel);
    for (int l = 0; l < kNumLandmarks; ++l) out.put(w.landmark(l).pos - me.pos);
    out.put(w.agent_comm(kSpeaker), w.dim_c);
  }

  static void check_state(const World& w) {
    if (w.aux_i[kAuxGoal] < 0 || w.aux_i[kAuxGoal] >= kNumLandmarks)
      throw InvalidArgument("set_state: simple_speaker_listener aux_i[0] (goal landmark) must be in [0, 3)");
  }
};

}  // namespace genmarl::mpe
