// simple_formation: N agents form a circle of radius 0.5 around a landmark.
// mpe2: mpe2/simple_formation/simple_formation.py (simple_formation_v1).
//
// The target circle is recomputed every step from the current positions (anchored
// at the smallest polar angle of an agent around the landmark), so there is no
// scenario state beyond the entities.
#pragma once

#include <cmath>
#include <numbers>

#include "genmarl/envs/mpe/assignment.hpp"
#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleFormation : public TargetMatchingScenario<SimpleFormation> {
 public:
  static constexpr const char* kName = "simple_formation";
  static constexpr double kAgentSize = 0.05, kLandmarkSize = 0.03;
  static constexpr double kTargetRadius = 0.5;
  static constexpr double kLandmarkRange = 0.5;   // the landmark starts in U[-this, this]^2
  static constexpr double kTwoPi = 2 * std::numbers::pi;

  explicit SimpleFormation(const Params& p) : TargetMatchingScenario(p) {}

  void make_world(World& w) const {
    w.init(n_, 1, 0);
    for (int i = 0; i < n_; ++i) {
      w.agent(i).collide = true;
      w.agent(i).silent = true;
      w.agent(i).size = kAgentSize;
    }
    w.landmark(0).collide = false;
    w.landmark(0).movable = false;
    w.landmark(0).size = kLandmarkSize;
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < n_; ++i) w.agent(i).color = {0.35, 0.35, 0.85};
    w.landmark(0).color = {0.25, 0.25, 0.25};
    w.zero_motion();
    for (int i = 0; i < n_; ++i) w.agent(i).pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
    w.landmark(0).pos = Vec2{rng.uniform(-kLandmarkRange, kLandmarkRange), rng.uniform(-kLandmarkRange, kLandmarkRange)};
  }

  // Polar angle in [0, 2*pi), mpe2's _find_angle.
  static double angle(Vec2 p) {
    double a = std::atan2(p.y, p.x);
    if (a < 0) a += kTwoPi;
    return a;
  }

  // N points on a circle around the landmark, starting at the smallest agent angle (mpe2's).
  void targets(const World& w, Vec2* out) const {
    const Vec2 center = w.landmark(0).pos;
    double theta_min = 0.0;
    for (int i = 0; i < n_; ++i) {
      const double a = angle(w.agent(i).pos - center);
      if (i == 0 || a < theta_min) theta_min = a;
    }
    const double ideal_sep = kTwoPi / n_;
    for (int i = 0; i < n_; ++i) {
      const double t = theta_min + i * ideal_sep;
      out[i] = center + Vec2{std::cos(t), std::sin(t)} * kTargetRadius;
    }
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    out.put(me.pos);
    out.put(w.landmark(0).pos - me.pos);
  }
};

}  // namespace genmarl::mpe
