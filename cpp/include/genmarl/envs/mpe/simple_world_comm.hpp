// simple_world_comm: simple_tag with food that good agents eat, forests that
// hide agents inside them, and a leader adversary that sees everything and
// speaks to the other adversaries.
// mpe2: mpe2/simple_world_comm/simple_world_comm.py (simple_world_comm_v3).
//
// Entities: agents (leader adversary, adversaries, good agents), then the
// landmarks: obstacles, food, forests. No scenario state beyond the entities.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleWorldComm : public MpeScenario<SimpleWorldComm> {
 public:
  static constexpr const char* kName = "simple_world_comm";
  static constexpr int kDimC = 4;
  static constexpr int kMaxCount = 32;  // per entity kind; agents in total
  static constexpr double kAdversarySize = 0.075, kAdversaryAccel = 3.0, kAdversaryMaxSpeed = 1.0;
  static constexpr double kGoodSize = 0.045, kGoodAccel = 4.0, kGoodMaxSpeed = 1.3;
  static constexpr double kObstacleSize = 0.2, kFoodSize = 0.03, kForestSize = 0.3;
  static constexpr double kLandmarkRange = 0.9;  // landmarks start in U[-0.9, 0.9]^2
  static constexpr double kCatchReward = 5.0;    // per (good, adversary) contact
  static constexpr double kFoodReward = 2.0;     // per food a good agent touches
  static constexpr double kFoodDistWeight = 0.05;
  static constexpr double kChaseDistWeight = 0.1;
  static constexpr double kBoundaryWeight = 2.0;
  static constexpr double kInForest = 1.0, kNotInForest = -1.0;
  static constexpr std::array<double, 3> kGoodColor{0.45, 0.95, 0.45}, kAdversaryColor{0.95, 0.45, 0.45};
  static constexpr double kLeaderDarken = 0.3;
  static constexpr std::array<double, 3> kObstacleColor{0.25, 0.25, 0.25}, kFoodColor{0.15, 0.15, 0.65},
      kForestColor{0.6, 0.9, 0.6};

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"num_good", ParamKind::kInt, 2, "number of good agents"},
        {"num_adversaries", ParamKind::kInt, 4, "number of adversaries, the first of them the speaking leader"},
        {"num_obstacles", ParamKind::kInt, 1, "number of static colliding obstacles"},
        {"num_food", ParamKind::kInt, 2, "number of food landmarks good agents are rewarded at"},
        {"num_forests", ParamKind::kInt, 2, "number of forests that hide the agents inside them"},
    };
  }

  explicit SimpleWorldComm(const Params& p)
      : MpeScenario(p),
        num_good_(p.get_int("num_good")),
        num_adv_(p.get_int("num_adversaries")),
        num_obstacles_(p.get_int("num_obstacles")),
        num_food_(p.get_int("num_food")),
        num_forests_(p.get_int("num_forests")) {
    // mpe2 fails in its rewards without good agents or food; without adversaries
    // its agent 0 becomes a speaking good "leadadversary" — both are rejected here.
    if (num_good_ < 1 || num_adv_ < 1 || num_good_ + num_adv_ > kMaxCount)
      throw InvalidArgument("simple_world_comm: num_good and num_adversaries must be >= 1 with at most 32 agents in total, got " +
                            std::to_string(num_good_) + " and " + std::to_string(num_adv_));
    if (num_obstacles_ < 0 || num_obstacles_ > kMaxCount)
      throw InvalidArgument("simple_world_comm: num_obstacles must be in [0, 32], got " + std::to_string(num_obstacles_));
    if (num_food_ < 1 || num_food_ > kMaxCount)
      throw InvalidArgument("simple_world_comm: num_food must be in [1, 32], got " + std::to_string(num_food_));
    if (num_forests_ < 0 || num_forests_ > kMaxCount)
      throw InvalidArgument("simple_world_comm: num_forests must be in [0, 32], got " + std::to_string(num_forests_));
  }

  int num_agents() const { return num_good_ + num_adv_; }
  int num_landmarks() const { return num_obstacles_ + num_food_ + num_forests_; }
  bool is_adversary(int i) const { return i < num_adv_; }
  static bool is_leader(int i) { return i == 0; }
  int food(int k) const { return num_agents() + num_obstacles_ + k; }                 // entity index
  int forest(int k) const { return num_agents() + num_obstacles_ + num_food_ + k; }  // entity index

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names{"leadadversary_0"};
    for (int i = 1; i < num_adv_; ++i) names.push_back("adversary_" + std::to_string(i - 1));
    for (int i = 0; i < num_good_; ++i) names.push_back("agent_" + std::to_string(i));
    return names;
  }

  void make_world(World& w) const {
    w.init(num_agents(), num_landmarks(), kDimC);
    for (int i = 0; i < num_agents(); ++i) {
      Entity& a = w.agent(i);
      a.collide = true;
      a.silent = !is_leader(i);
      a.size = is_adversary(i) ? kAdversarySize : kGoodSize;
      a.accel = is_adversary(i) ? kAdversaryAccel : kGoodAccel;
      a.max_speed = is_adversary(i) ? kAdversaryMaxSpeed : kGoodMaxSpeed;
    }
    for (int l = 0; l < num_landmarks(); ++l) {
      Entity& e = w.landmark(l);
      e.movable = false;
      const bool obstacle = l < num_obstacles_;
      const bool is_food = !obstacle && l < num_obstacles_ + num_food_;
      e.collide = obstacle;
      e.size = obstacle ? kObstacleSize : (is_food ? kFoodSize : kForestSize);
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < num_agents(); ++i) {
      auto c = is_adversary(i) ? kAdversaryColor : kGoodColor;
      if (is_leader(i)) {
        for (double& v : c) v -= kLeaderDarken;
      }
      w.agent(i).color = c;
    }
    for (int l = 0; l < num_obstacles_; ++l) w.landmark(l).color = kObstacleColor;
    for (int k = 0; k < num_food_; ++k) w.entities[food(k)].color = kFoodColor;
    for (int k = 0; k < num_forests_; ++k) w.entities[forest(k)].color = kForestColor;
    w.zero_motion();
    for (int i = 0; i < num_agents(); ++i) w.agent(i).pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
    for (int l = 0; l < num_landmarks(); ++l) {
      w.landmark(l).pos = Vec2{rng.uniform(-kLandmarkRange, kLandmarkRange), rng.uniform(-kLandmarkRange, kLandmarkRange)};
    }
  }

  static double boundary_penalty(double x) {
    if (x < 0.9) return 0.0;
    if (x < 1.0) return (x - 0.9) * 10.0;
    return std::min(std::exp(2.0 * x - 2.0), 10.0);
  }

  double reward(const World& w, int i) const { return is_adversary(i) ? adversary_reward(w, i) : good_reward(w, i); }

  double good_reward(const World& w, int i) const {
    double rew = 0.0;
    if (w.agent(i).collide) {
      for (int a = 0; a < num_adv_; ++a) {
        if (w.is_collision(a, i)) rew -= kCatchReward;
      }
    }
    rew -= kBoundaryWeight * boundary_penalty(std::abs(w.agent(i).pos.x));
    rew -= kBoundaryWeight * boundary_penalty(std::abs(w.agent(i).pos.y));
    double closest = 0.0;
    for (int k = 0; k < num_food_; ++k) {
      if (w.is_collision(i, food(k))) rew += kFoodReward;
    }
    for (int k = 0; k < num_food_; ++k) {
      const double d = w.distance(food(k), i);
      if (k == 0 || d < closest) closest = d;
    }
    rew -= kFoodDistWeight * closest;
    return rew;
  }

  double adversary_reward(const World& w, int i) const {
    double rew = 0.0;
    double closest = 0.0;
    for (int g = num_adv_; g < num_agents(); ++g) {
      const double d = w.distance(g, i);
      if (g == num_adv_ || d < closest) closest = d;
    }
    rew -= kChaseDistWeight * closest;
    if (w.agent(i).collide) {
      for (int g = num_adv_; g < num_agents(); ++g) {
        for (int a = 0; a < num_adv_; ++a) {
          if (w.is_collision(g, a)) rew += kCatchReward;
        }
      }
    }
    return rew;
  }

  // Layout: adversaries [vel, pos, landmarks, others' pos, good others' vel,
  // in_forest, leader comm]; good agents [vel, pos, landmarks, others' pos,
  // in_forest, good others' vel]. Another agent is seen when both share a
  // forest, or when neither is in any forest; the leader sees every agent.
  // Unseen agents read as zeros.
  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    out.put(me.pos);
    for (int l = 0; l < num_landmarks(); ++l) out.put(w.landmark(l).pos - me.pos);
    bool in_forest[kMaxCount];
    bool me_in_any = false;
    for (int f = 0; f < num_forests_; ++f) {
      in_forest[f] = w.is_collision(i, forest(f));
      me_in_any = me_in_any || in_forest[f];
    }
    bool seen[kMaxCount];
    for (int o = 0; o < num_agents(); ++o) {
      if (o == i) continue;
      bool shared = false, other_in_any = false;
      for (int f = 0; f < num_forests_; ++f) {
        const bool of = w.is_collision(o, forest(f));
        other_in_any = other_in_any || of;
        shared = shared || (in_forest[f] && of);
      }
      seen[o] = shared || (!me_in_any && !other_in_any) || is_leader(i);
      if (seen[o]) out.put(w.agent(o).pos - me.pos);
      else out.zeros(kDimP);
    }
    auto put_good_vels = [&] {
      for (int o = num_adv_; o < num_agents(); ++o) {
        if (o == i) continue;
        if (seen[o]) out.put(w.agent(o).vel);
        else out.zeros(kDimP);
      }
    };
    auto put_in_forest = [&] {
      for (int f = 0; f < num_forests_; ++f) out.put(in_forest[f] ? kInForest : kNotInForest);
    };
    if (is_adversary(i)) {
      put_good_vels();
      put_in_forest();
      out.put(w.agent_comm(0), w.dim_c);
    } else {
      put_in_forest();
      put_good_vels();
    }
  }

 private:
  int num_good_, num_adv_, num_obstacles_, num_food_, num_forests_;
};

}  // namespace genmarl::mpe
