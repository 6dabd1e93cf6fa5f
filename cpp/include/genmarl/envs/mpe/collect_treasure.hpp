// collect_treasure: collectors pick up treasures and deliver them to the
// deposit agent of the treasure's type; picked-up treasures respawn.
// mpe2: mpe2/collect_treasure/collect_treasure.py (collect_treasure_v1).
//
// Entities: collectors, then deposits (agents), then treasures (landmarks).
// Pickup, delivery and respawn run in post_step, between physics and rewards,
// as mpe2's overridden _execute_world_step does; the step's pickup and
// delivery rewards are cached in aux_f for the reward calls that follow.
//
// Scenario state (aux arrays):
//   aux_i: [holding per agent (-1: nothing; always -1 for deposits),
//           treasure type, treasure alive (0/1), pending respawn type]
//   aux_f: [step pickup reward, step delivery reward,
//           respawn probability, pending respawn draw u, pending x, pending y  (per treasure)]
//
// Respawn: mpe2 draws, for every treasure dead at the start of post_step,
// u ~ U[0, 1) and respawns it when u <= respawn_prob at a fresh position and
// type. genmarl draws the same quantities one step earlier (when the treasure
// dies or fails to respawn) into the pending slots and uses them when mpe2
// would draw — the same distribution, but the draws are part of the exported
// state, so a test can copy mpe2's upcoming draws in before the respawn step.
// (Rewards on a respawn step depend on the new position: a collector holding
// nothing is shaped toward the nearest live treasure, respawned ones included.)
#pragma once

#include <algorithm>
#include <array>
#include <cmath>

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class CollectTreasure : public MpeScenario<CollectTreasure> {
 public:
  static constexpr const char* kName = "collect_treasure";
  static constexpr int kDimC = 2;  // unused: every agent is silent
  static constexpr int kMaxAgentCount = 32, kMaxTreasures = 32;
  static constexpr double kCollectorSize = 0.05, kDepositSize = 0.075, kTreasureSize = 0.025;
  static constexpr double kAccel = 1.5, kMaxSpeed = 1.0;
  static constexpr double kCollectorMass = 1.0, kDepositMass = 2.25;
  static constexpr double kAgentRange = 1.0, kTreasureRange = 0.95;  // U[-range, range]^2
  static constexpr double kPickupReward = 5.0, kDeliveryReward = 5.0;  // global, per event
  static constexpr double kOverlapPenalty = 5.0;                       // per overlapping collector pair
  static constexpr double kShapingWeight = 0.1;
  static constexpr double kRespawnProb = 1.0;
  static constexpr double kDeadPos = -999.0;          // where picked-up treasures are parked
  static constexpr double kDeadSortKey = 1e6;         // dead treasures are observed last
  static constexpr double kDepositTint = 0.35, kHeldTint = 0.85;
  static constexpr std::array<double, 3> kCollectorColor{0.85, 0.85, 0.85};
  static constexpr int kMaxTypes = 6;
  static constexpr std::array<std::array<double, 3>, kMaxTypes> kTypeColors{{
      {0.212, 0.408, 0.776},
      {0.945, 0.553, 0.000},
      {0.169, 0.627, 0.173},
      {0.839, 0.149, 0.157},
      {0.580, 0.404, 0.741},
      {0.549, 0.337, 0.294},
  }};
  static constexpr std::int64_t kNothing = -1;

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"num_collectors", ParamKind::kInt, 6, "number of collector agents"},
        {"num_deposits", ParamKind::kInt, 2, "number of deposit agents, one per treasure type"},
        {"num_treasures", ParamKind::kInt, 6, "number of treasure landmarks"},
    };
  }

  explicit CollectTreasure(const Params& p)
      : MpeScenario(p),
        num_collectors_(p.get_int("num_collectors")),
        num_deposits_(p.get_int("num_deposits")),
        num_treasures_(p.get_int("num_treasures")) {
    if (num_collectors_ < 1) throw InvalidArgument("collect_treasure: num_collectors must be >= 1, got " + std::to_string(num_collectors_));
    if (num_deposits_ < 1 || num_deposits_ > kMaxTypes)
      throw InvalidArgument("collect_treasure: num_deposits must be in [1, 6] (one colour per treasure type), got " +
                            std::to_string(num_deposits_));
    if (num_collectors_ + num_deposits_ > kMaxAgentCount)
      throw InvalidArgument("collect_treasure: at most 32 agents (num_collectors + num_deposits) are supported");
    if (num_treasures_ < 1 || num_treasures_ > kMaxTreasures)
      throw InvalidArgument("collect_treasure: num_treasures must be in [1, 32], got " + std::to_string(num_treasures_));
  }

  int num_agents() const { return num_collectors_ + num_deposits_; }
  bool is_collector(int i) const { return i < num_collectors_; }
  int deposit_type(int i) const { return i - num_collectors_; }  // for deposits
  int treasure(int t) const { return num_agents() + t; }          // entity index

  // aux layout
  std::int64_t& holding(World& w, int i) const { return w.aux_i[i]; }
  std::int64_t holding(const World& w, int i) const { return w.aux_i[i]; }
  std::int64_t& type(World& w, int t) const { return w.aux_i[num_agents() + t]; }
  std::int64_t type(const World& w, int t) const { return w.aux_i[num_agents() + t]; }
  std::int64_t& alive(World& w, int t) const { return w.aux_i[num_agents() + num_treasures_ + t]; }
  bool alive(const World& w, int t) const { return w.aux_i[num_agents() + num_treasures_ + t] != 0; }
  std::int64_t& pending_type(World& w, int t) const { return w.aux_i[num_agents() + 2 * num_treasures_ + t]; }
  static constexpr int kPickupSlot = 0, kDeliverySlot = 1, kTreasureSlots = 2;
  double& respawn_prob(World& w, int t) const { return w.aux_f[kTreasureSlots + t]; }
  double& pending_u(World& w, int t) const { return w.aux_f[kTreasureSlots + num_treasures_ + t]; }
  double& pending_x(World& w, int t) const { return w.aux_f[kTreasureSlots + 2 * num_treasures_ + t]; }
  double& pending_y(World& w, int t) const { return w.aux_f[kTreasureSlots + 3 * num_treasures_ + t]; }

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < num_collectors_; ++i) names.push_back("collector_" + std::to_string(i));
    for (int d = 0; d < num_deposits_; ++d) names.push_back("deposit_" + std::to_string(d));
    return names;
  }

  void make_world(World& w) const {
    w.init(num_agents(), num_treasures_, kDimC, kTreasureSlots + 4 * num_treasures_, num_agents() + 3 * num_treasures_);
    for (int i = 0; i < num_agents(); ++i) {
      Entity& a = w.agent(i);
      a.collide = false;  // "ghost" agents: overlaps are penalised in the reward instead
      a.silent = true;
      a.size = is_collector(i) ? kCollectorSize : kDepositSize;
      a.accel = kAccel;
      a.max_speed = kMaxSpeed;
      a.mass = is_collector(i) ? kCollectorMass : kDepositMass;
      if (is_collector(i)) {
        a.color = kCollectorColor;
      } else {
        for (int c = 0; c < 3; ++c) a.color[c] = kTypeColors[deposit_type(i)][c] * kDepositTint;
      }
      holding(w, i) = kNothing;
    }
    for (int t = 0; t < num_treasures_; ++t) {
      Entity& e = w.entities[treasure(t)];
      e.collide = false;
      e.movable = false;
      e.size = kTreasureSize;
      e.color = kTypeColors[0];
      alive(w, t) = 1;
      respawn_prob(w, t) = kRespawnProb;
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    w.aux_f[kPickupSlot] = 0.0;
    w.aux_f[kDeliverySlot] = 0.0;
    w.zero_motion();
    for (int i = 0; i < num_agents(); ++i) {
      w.agent(i).pos = Vec2{rng.uniform(-kAgentRange, kAgentRange), rng.uniform(-kAgentRange, kAgentRange)};
      holding(w, i) = kNothing;
      if (is_collector(i)) w.agent(i).color = kCollectorColor;
    }
    for (int t = 0; t < num_treasures_; ++t) {
      type(w, t) = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(num_deposits_)));
      set_type_color(w, t);
      w.entities[treasure(t)].pos = Vec2{rng.uniform(-kTreasureRange, kTreasureRange), rng.uniform(-kTreasureRange, kTreasureRange)};
      alive(w, t) = 1;
      pending_type(w, t) = 0;
      pending_u(w, t) = pending_x(w, t) = pending_y(w, t) = 0.0;
    }
  }

  void set_type_color(World& w, int t) const {
    const std::int64_t k = type(w, t);
    if (k >= 0 && k < num_deposits_) w.entities[treasure(t)].color = kTypeColors[k];
  }

  // The draws mpe2 makes when a dead treasure is visited, taken one step early.
  void draw_respawn(World& w, int t, CounterRng& rng) const {
    pending_u(w, t) = rng.uniform();
    pending_x(w, t) = rng.uniform(-kTreasureRange, kTreasureRange);
    pending_y(w, t) = rng.uniform(-kTreasureRange, kTreasureRange);
    pending_type(w, t) = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(num_deposits_)));
  }

  // Pickup, respawn and delivery, in mpe2's order.
  void post_step(World& w, CounterRng& rng) const {
    double pickup = 0.0, delivery = 0.0;
    for (int t = 0; t < num_treasures_; ++t) {
      if (alive(w, t)) {
        for (int c = 0; c < num_collectors_; ++c) {
          if (holding(w, c) == kNothing && w.is_collision(treasure(t), c)) {
            pickup += kPickupReward;
            alive(w, t) = 0;
            holding(w, c) = type(w, t);
            for (int k = 0; k < 3; ++k) w.agent(c).color[k] = kHeldTint * w.entities[treasure(t)].color[k];
            w.entities[treasure(t)].pos = Vec2{kDeadPos, kDeadPos};
            draw_respawn(w, t, rng);
            break;
          }
        }
      } else if (pending_u(w, t) <= respawn_prob(w, t)) {
        w.entities[treasure(t)].pos = Vec2{pending_x(w, t), pending_y(w, t)};
        type(w, t) = pending_type(w, t);
        set_type_color(w, t);
        alive(w, t) = 1;
      } else {
        draw_respawn(w, t, rng);
      }
    }
    for (int c = 0; c < num_collectors_; ++c) {
      if (holding(w, c) == kNothing) continue;
      for (int d = num_collectors_; d < num_agents(); ++d) {
        if (deposit_type(d) == holding(w, c) && w.is_collision(c, d)) {
          delivery += kDeliveryReward;
          holding(w, c) = kNothing;
          w.agent(c).color = kCollectorColor;
          break;
        }
      }
    }
    w.aux_f[kPickupSlot] = pickup;
    w.aux_f[kDeliverySlot] = delivery;
  }

  double global_bonus(const World& w) const { return w.aux_f[kPickupSlot] + w.aux_f[kDeliverySlot]; }

  double reward(const World& w, int i) const {
    double rew = 0.0;
    if (is_collector(i)) {
      for (int o = 0; o < num_collectors_; ++o) {
        if (o != i && w.is_collision(i, o)) rew -= kOverlapPenalty;
      }
      bool any = false;
      double closest = 0.0;
      if (holding(w, i) == kNothing) {
        for (int t = 0; t < num_treasures_; ++t) {
          if (!alive(w, t)) continue;
          const double d = w.distance(treasure(t), i);
          if (!any || d < closest) closest = d;
          any = true;
        }
      } else {
        for (int d = num_collectors_; d < num_agents(); ++d) {
          if (deposit_type(d) != holding(w, i)) continue;
          const double dist = w.distance(d, i);
          if (!any || dist < closest) closest = dist;
          any = true;
        }
      }
      if (any) rew -= kShapingWeight * closest;
    } else {
      bool any = false;
      double closest = 0.0;
      for (int c = 0; c < num_collectors_; ++c) {
        if (holding(w, c) != deposit_type(i)) continue;
        const double d = w.distance(c, i);
        if (!any || d < closest) closest = d;
        any = true;
      }
      if (any) {
        rew -= kShapingWeight * closest;
      } else {
        Vec2 sum{};
        for (int c = 0; c < num_collectors_; ++c) sum = sum + w.agent(c).pos;
        const Vec2 centroid{sum.x / num_collectors_, sum.y / num_collectors_};
        rew -= kShapingWeight * norm(centroid - w.agent(i).pos);
      }
    }
    return rew + global_bonus(w);
  }

  // [pos, vel, (collectors) one-hot held type, other agents nearest first as
  // (relative pos, vel, one-hot deposit type, one-hot held type), treasures —
  // live ones nearest first, then dead ones as zeros — as (relative pos, one-hot type)].
  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.pos);
    out.put(me.vel);
    if (is_collector(i)) one_hot(out, holding(w, i));
    int others[kMaxAgentCount], picked[kMaxAgentCount];
    const int n_others = other_agents(w, i, others);
    nearest(w, i, others, n_others, n_others, picked);
    for (int k = 0; k < n_others; ++k) {
      const int o = picked[k];
      out.put(w.agent(o).pos - me.pos);
      out.put(w.agent(o).vel);
      one_hot(out, is_collector(o) ? kNothing : deposit_type(o));
      one_hot(out, is_collector(o) ? holding(w, o) : kNothing);
    }
    int order[kMaxTreasures];
    double key[kMaxTreasures];
    for (int t = 0; t < num_treasures_; ++t) {
      order[t] = t;
      key[t] = alive(w, t) ? w.distance(treasure(t), i) : kDeadSortKey;
    }
    std::stable_sort(order, order + num_treasures_, [&](int a, int b) { return key[a] < key[b]; });
    for (int k = 0; k < num_treasures_; ++k) {
      const int t = order[k];
      if (alive(w, t)) {
        out.put(w.entities[treasure(t)].pos - me.pos);
        one_hot(out, type(w, t));
      } else {
        out.zeros(kDimP);
        out.zeros(num_deposits_);
      }
    }
  }

 private:
  // One-hot over the treasure types; kNothing (or any out-of-range value) gives zeros.
  void one_hot(ObsWriter& out, std::int64_t k) const {
    for (int j = 0; j < num_deposits_; ++j) out.put(j == k ? 1.0 : 0.0);
  }

  int num_collectors_, num_deposits_, num_treasures_;
};

}  // namespace genmarl::mpe
