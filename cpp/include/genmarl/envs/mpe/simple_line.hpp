// simple_line: N agents spread evenly along the segment between two landmarks.
// mpe2: mpe2/simple_line/simple_line.py (simple_line_v1).
//
// Scenario state: aux_f[2 * i], aux_f[2 * i + 1] is target position i on the line
// (mpe2's scenario._expected_positions), fixed at reset.
#pragma once

#include <cmath>
#include <numbers>

#include "genmarl/envs/mpe/assignment.hpp"
#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleLine : public TargetMatchingScenario<SimpleLine> {
 public:
  static constexpr const char* kName = "simple_line";
  static constexpr double kAgentSize = 0.03, kLandmarkSize = 0.02;
  static constexpr double kTotalSep = 1.25;         // distance between the two landmarks
  static constexpr double kAnchorRange = 0.25;      // landmark 0 starts in U[-this, this]^2
  static constexpr double kArenaHalfWidth = 1.0;    // landmark 1 must lie strictly inside
  static constexpr double kRotateStep = 5.0 * (std::numbers::pi / 180.0);  // np.radians(5)
  static constexpr int kMaxRotations = 72;          // a full turn; a valid direction always exists
  static constexpr int kNumLandmarks = 2;

  explicit SimpleLine(const Params& p) : TargetMatchingScenario(p) {}

  void make_world(World& w) const {
    w.init(n_, kNumLandmarks, 0, 2 * n_, 0);
    for (int i = 0; i < n_; ++i) {
      w.agent(i).collide = true;
      w.agent(i).silent = true;
      w.agent(i).size = kAgentSize;
    }
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
      w.landmark(l).size = kLandmarkSize;
    }
  }

  static bool inside(Vec2 p) { return std::abs(p.x) < kArenaHalfWidth && std::abs(p.y) < kArenaHalfWidth; }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < n_; ++i) w.agent(i).color = {0.35, 0.35, 0.85};
    for (int l = 0; l < kNumLandmarks; ++l) w.landmark(l).color = {0.25, 0.25, 0.25};
    w.zero_motion();
    for (int i = 0; i < n_; ++i) w.agent(i).pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
    const Vec2 anchor{rng.uniform(-kAnchorRange, kAnchorRange), rng.uniform(-kAnchorRange, kAnchorRange)};
    w.landmark(0).pos = anchor;
    // Landmark 1 lies kTotalSep away in a random direction, turned until it is inside the arena.
    double theta = rng.uniform(0, 2 * std::numbers::pi);
    Vec2 dir{std::cos(theta), std::sin(theta)};
    Vec2 loc = anchor + dir * kTotalSep;
    for (int k = 0; k < kMaxRotations && !inside(loc); ++k) {
      theta += kRotateStep;
      dir = Vec2{std::cos(theta), std::sin(theta)};
      loc = anchor + dir * kTotalSep;
    }
    w.landmark(1).pos = loc;
    const double ideal_sep = n_ > 1 ? kTotalSep / (n_ - 1) : 0.0;
    for (int i = 0; i < n_; ++i) {
      const Vec2 target = anchor + dir * (i * ideal_sep);
      w.aux_f[2 * i] = target.x;
      w.aux_f[2 * i + 1] = target.y;
    }
  }

  // The N points evenly spaced on the segment between the landmarks (fixed at reset, in aux_f).
  void targets(const World& w, Vec2* out) const {
    for (int i = 0; i < n_; ++i) out[i] = Vec2{w.aux_f[2 * i], w.aux_f[2 * i + 1]};
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    out.put(me.pos);
    for (int l = 0; l < kNumLandmarks; ++l) out.put(w.landmark(l).pos - me.pos);
  }
};

}  // namespace genmarl::mpe
