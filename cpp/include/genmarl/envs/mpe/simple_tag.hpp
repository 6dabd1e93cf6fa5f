// simple_tag: predator-prey. Slower adversaries chase faster good agents
// around static obstacles. mpe2: mpe2/simple_tag/simple_tag.py (simple_tag_v3).
#pragma once

#include <cmath>

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleTag : public MpeScenario<SimpleTag> {
 public:
  static constexpr const char* kName = "simple_tag";
  static constexpr double kAdversarySize = 0.075, kAdversaryAccel = 3.0, kAdversaryMaxSpeed = 1.0;
  static constexpr double kPreySize = 0.05, kPreyAccel = 4.0, kPreyMaxSpeed = 1.3;
  static constexpr double kObstacleSize = 0.2, kObstacleRange = 0.9;
  static constexpr double kCatchReward = 10.0;
  static constexpr double kPreySpeedFactor[3] = {0.5, 0.75, 1.0};  // curriculum stages
  static constexpr int kDimC = 2;

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"num_good", ParamKind::kInt, 1, "number of prey (good agents)"},
        {"num_adversaries", ParamKind::kInt, 3, "number of predators"},
        {"num_obstacles", ParamKind::kInt, 2, "number of static obstacles"},
        {"curriculum", ParamKind::kBool, 0, "prey speed 50% / 75% / 100% by stage (applied at reset)"},
        {"terminate_on_success", ParamKind::kBool, 0, "terminate when every prey is touched by an adversary"},
        {"num_agent_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest other agents (None: all)"},
        {"num_landmark_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest obstacles (None: all)"},
    };
  }

  explicit SimpleTag(const Params& p)
      : MpeScenario(p),
        num_good_(p.get_int("num_good")),
        num_adv_(p.get_int("num_adversaries")),
        num_obstacles_(p.get_int("num_obstacles")),
        curriculum_(p.get_bool("curriculum")),
        terminate_on_success_(p.get_bool("terminate_on_success")),
        agent_neighbors_(p.get_optional_int("num_agent_neighbors")),
        landmark_neighbors_(p.get_optional_int("num_landmark_neighbors")) {
    if (num_good_ < 0 || num_adv_ < 0 || num_good_ + num_adv_ < 1 || num_good_ + num_adv_ > 32)
      throw InvalidArgument("simple_tag: num_good and num_adversaries must be >= 0 with 1 to 32 agents in total");
    if (num_obstacles_ < 0 || num_obstacles_ > 32)
      throw InvalidArgument("simple_tag: num_obstacles must be in [0, 32], got " + std::to_string(num_obstacles_));
    if (agent_neighbors_ == 0 || agent_neighbors_ < -1)
      throw InvalidArgument("simple_tag: num_agent_neighbors must be a positive integer or None");
    if (landmark_neighbors_ == 0 || landmark_neighbors_ < -1)
      throw InvalidArgument("simple_tag: num_landmark_neighbors must be a positive integer or None");
  }

  int num_agents() const { return num_good_ + num_adv_; }
  bool is_adversary(int i) const { return i < num_adv_; }

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < num_adv_; ++i) names.push_back("adversary_" + std::to_string(i));
    for (int i = 0; i < num_good_; ++i) names.push_back("agent_" + std::to_string(i));
    return names;
  }

  void make_world(World& w) const {
    w.init(num_agents(), num_obstacles_, kDimC);
    for (int i = 0; i < num_agents(); ++i) {
      Entity& a = w.agent(i);
      a.collide = true;
      a.silent = true;
      a.size = is_adversary(i) ? kAdversarySize : kPreySize;
      a.accel = is_adversary(i) ? kAdversaryAccel : kPreyAccel;
      a.max_speed = is_adversary(i) ? kAdversaryMaxSpeed : kPreyMaxSpeed;
    }
    for (int l = 0; l < num_obstacles_; ++l) {
      w.landmark(l).collide = true;
      w.landmark(l).movable = false;
      w.landmark(l).size = kObstacleSize;
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < num_agents(); ++i) {
      w.agent(i).color = is_adversary(i) ? std::array<double, 3>{0.85, 0.35, 0.35} : std::array<double, 3>{0.35, 0.85, 0.35};
    }
    for (int l = 0; l < num_obstacles_; ++l) w.landmark(l).color = {0.25, 0.25, 0.25};
    w.zero_motion();
    for (int i = 0; i < num_agents(); ++i) w.agent(i).pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
    for (int l = 0; l < num_obstacles_; ++l) {
      w.landmark(l).pos = Vec2{rng.uniform(-kObstacleRange, kObstacleRange), rng.uniform(-kObstacleRange, kObstacleRange)};
    }
    if (curriculum_) {
      const double f = kPreySpeedFactor[stage_];
      for (int i = num_adv_; i < num_agents(); ++i) {
        w.agent(i).max_speed = kPreyMaxSpeed * f;
        w.agent(i).accel = kPreyAccel * f;
      }
    }
  }

  static double boundary_penalty(double x) {
    if (x < 0.9) return 0.0;
    if (x < 1.0) return (x - 0.9) * 10.0;
    return std::min(std::exp(2.0 * x - 2.0), 10.0);
  }

  double reward(const World& w, int i) const {
    double rew = 0.0;
    if (is_adversary(i)) {
      if (w.agent(i).collide) {
        for (int g = num_adv_; g < num_agents(); ++g) {
          for (int a = 0; a < num_adv_; ++a) {
            if (w.is_collision(g, a)) rew += kCatchReward;
          }
        }
      }
      return rew;
    }
    if (w.agent(i).collide) {
      for (int a = 0; a < num_adv_; ++a) {
        if (w.is_collision(a, i)) rew -= kCatchReward;
      }
    }
    rew -= boundary_penalty(std::abs(w.agent(i).pos.x));
    rew -= boundary_penalty(std::abs(w.agent(i).pos.y));
    return rew;
  }

  // tags: adversary-prey collisions summed over the episode's steps (each pays every adversary +10).
  std::vector<std::string> metric_names() const { return {"tags"}; }
  void update_metrics(const World& w, double* acc) const {
    for (int g = num_adv_; g < num_agents(); ++g) {
      for (int a = 0; a < num_adv_; ++a) acc[0] += w.is_collision(g, a) ? 1.0 : 0.0;
    }
  }

  bool terminal(const World& w) const {
    if (!terminate_on_success_) return false;
    for (int g = num_adv_; g < num_agents(); ++g) {
      bool caught = false;
      for (int a = 0; a < num_adv_; ++a) caught = caught || w.is_collision(g, a);
      if (!caught) return false;
    }
    return true;
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    out.put(me.pos);
    int landmarks[32], others[32], picked[32];
    landmark_indices(w, 0, num_obstacles_, landmarks);
    const int* chosen;
    put_relative_positions(w, i, landmarks, num_obstacles_, landmark_neighbors_, out, picked, &chosen);
    const int n_others = other_agents(w, i, others);
    const int m = put_relative_positions(w, i, others, n_others, agent_neighbors_, out, picked, &chosen);
    // Velocities of good agents: full observability lists only them; partial observability
    // keeps one slot per neighbour (zeros for adversaries) padded to the neighbour limit.
    const bool padded = agent_neighbors_ >= 0;
    for (int k = 0; k < m; ++k) {
      if (!is_adversary(chosen[k])) out.put(w.agent(chosen[k]).vel);
      else if (padded) out.zeros(kDimP);
    }
    if (padded) out.zeros(kDimP * (agent_neighbors_ - m));
  }

  int num_curriculum_stages() const { return 3; }
  int curriculum_stage() const { return stage_; }
  void set_curriculum_stage(int stage) { stage_ = std::clamp(stage, 0, 2); }

 private:
  int num_good_, num_adv_, num_obstacles_;
  bool curriculum_, terminate_on_success_;
  int agent_neighbors_, landmark_neighbors_;
  int stage_ = 0;
};

}  // namespace genmarl::mpe
