// simple_adversary: one adversary and N good agents around N landmarks, one of
// which is the goal. Good agents know the goal; the adversary does not.
// mpe2: mpe2/simple_adversary/simple_adversary.py (simple_adversary_v3).
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleAdversary : public MpeScenario<SimpleAdversary> {
 public:
  static constexpr const char* kName = "simple_adversary";
  static constexpr double kAgentSize = 0.15;
  static constexpr double kLandmarkSize = 0.08;
  static constexpr int kNumAdversaries = 1;
  static constexpr int kMaxN = 32;
  static constexpr int kDimC = 2;
  static constexpr int kAuxGoal = 0;  // aux_i: index of the goal landmark
  static constexpr int kNumAuxI = 1;

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"N", ParamKind::kInt, 2, "number of good agents and of landmarks"},
        {"num_agent_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest other agents (None: all)"},
        {"num_landmark_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest landmarks (None: all)"},
    };
  }

  explicit SimpleAdversary(const Params& p)
      : MpeScenario(p),
        n_(p.get_int("N")),
        agent_neighbors_(p.get_optional_int("num_agent_neighbors")),
        landmark_neighbors_(p.get_optional_int("num_landmark_neighbors")) {
    if (n_ < 1 || n_ > kMaxN)
      throw InvalidArgument("simple_adversary: N must be in [1, " + std::to_string(kMaxN) + "], got " + std::to_string(n_));
    if (agent_neighbors_ == 0 || agent_neighbors_ < -1)
      throw InvalidArgument("simple_adversary: num_agent_neighbors must be a positive integer or None");
    if (landmark_neighbors_ == 0 || landmark_neighbors_ < -1)
      throw InvalidArgument("simple_adversary: num_landmark_neighbors must be a positive integer or None");
  }

  int num_agents() const { return n_ + kNumAdversaries; }
  static bool is_adversary(int i) { return i < kNumAdversaries; }

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < kNumAdversaries; ++i) names.push_back("adversary_" + std::to_string(i));
    for (int i = 0; i < n_; ++i) names.push_back("agent_" + std::to_string(i));
    return names;
  }

  void make_world(World& w) const {
    w.init(num_agents(), n_, kDimC, 0, kNumAuxI);
    for (int i = 0; i < num_agents(); ++i) {
      w.agent(i).collide = false;
      w.agent(i).silent = true;
      w.agent(i).size = kAgentSize;
    }
    for (int l = 0; l < n_; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
      w.landmark(l).size = kLandmarkSize;
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < num_agents(); ++i) {
      w.agent(i).color = is_adversary(i) ? std::array<double, 3>{0.85, 0.35, 0.35} : std::array<double, 3>{0.35, 0.35, 0.85};
    }
    for (int l = 0; l < n_; ++l) w.landmark(l).color = {0.15, 0.15, 0.15};
    const auto goal = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n_)));
    w.aux_i[kAuxGoal] = goal;
    w.landmark(static_cast<int>(goal)).color = {0.15, 0.65, 0.15};
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  static int goal_entity(const World& w) { return w.num_agents + static_cast<int>(w.aux_i[kAuxGoal]); }

  double reward(const World& w, int i) const {
    const int goal = goal_entity(w);
    if (is_adversary(i)) return -w.distance(i, goal);
    double adv = 0.0;
    for (int a = 0; a < kNumAdversaries; ++a) adv += w.distance(a, goal);
    double closest = 0.0;
    for (int g = kNumAdversaries; g < num_agents(); ++g) {
      const double d = w.distance(g, goal);
      if (g == kNumAdversaries || d < closest) closest = d;
    }
    return -closest + adv;
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    if (!is_adversary(i)) out.put(w.entities[goal_entity(w)].pos - me.pos);
    int landmarks[kMaxN], others[kMaxN], picked[kMaxN];
    landmark_indices(w, 0, n_, landmarks);
    const int* chosen;
    put_relative_positions(w, i, landmarks, n_, landmark_neighbors_, out, picked, &chosen);
    const int n_others = other_agents(w, i, others);
    put_relative_positions(w, i, others, n_others, agent_neighbors_, out, picked, &chosen);
  }

  static void check_state(const World& w) {
    if (w.aux_i[kAuxGoal] < 0 || w.aux_i[kAuxGoal] >= w.num_landmarks)
      throw InvalidArgument("set_state: simple_adversary aux_i[0] (goal landmark) must be in [0, N)");
  }

 private:
  int n_;
  int agent_neighbors_;
  int landmark_neighbors_;
};

}  // namespace genmarl::mpe
