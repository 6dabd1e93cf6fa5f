// The multi-particle world shared by every MPE scenario: entities, actions,
// contact forces, integration and communication — written once.
//
// Semantics follow the `mpe2` package (1.1.x, `_mpe_utils/core.py` and
// `simple_env.py`), computed in double precision as mpe2 does.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/spec.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define GENMARL_ALWAYS_INLINE [[gnu::always_inline]]
#else
#define GENMARL_ALWAYS_INLINE
#endif

namespace genmarl::mpe {

inline constexpr int kDimP = 2;
inline constexpr double kDt = 0.1;
inline constexpr double kDamping = 0.25;
inline constexpr double kContactForce = 1e2;
inline constexpr double kContactMargin = 1e-3;
inline constexpr double kZeroForceGap = 0.75;  // exp(-0.75 / kContactMargin) == 0.0 in double
inline constexpr double kDefaultSensitivity = 5.0;  // action force scale when accel is unset
inline constexpr double kUnset = -1.0;              // "None" for accel / max_speed
inline constexpr int kMoveActions = 2 * kDimP + 1;  // no-op, -x, +x, -y, +y

struct Vec2 {
  double x = 0.0;
  double y = 0.0;
};
inline Vec2 operator-(Vec2 a, Vec2 b) { return {a.x - b.x, a.y - b.y}; }
inline Vec2 operator+(Vec2 a, Vec2 b) { return {a.x + b.x, a.y + b.y}; }
inline Vec2 operator*(Vec2 a, double s) { return {a.x * s, a.y * s}; }
inline double norm(Vec2 a) { return std::sqrt(a.x * a.x + a.y * a.y); }

// One particle: agents come first in World::entities, then landmarks.
struct Entity {
  Vec2 pos;
  Vec2 vel;
  double size = 0.05;
  double mass = 1.0;
  double accel = kUnset;      // action force scale; kUnset -> kDefaultSensitivity
  double max_speed = kUnset;  // kUnset -> no clamp
  std::array<double, 3> color{0.0, 0.0, 0.0};
  bool movable = false;
  bool collide = true;
  bool silent = false;  // agents only
};

// State of one environment instance. Sized once by the scenario's make_world;
// nothing here allocates during step().
struct World {
  int num_agents = 0;
  int num_landmarks = 0;
  int dim_c = 0;
  std::vector<Entity> entities;
  std::vector<double> comm;      // [num_agents, dim_c] agent.state.c
  std::vector<double> action_u;  // [num_agents, 2] physical action
  std::vector<double> action_c;  // [num_agents, dim_c] communication action
  std::vector<Vec2> force;       // [num_entities] scratch
  std::vector<double> aux_f;     // scenario-defined float state
  std::vector<std::int64_t> aux_i;  // scenario-defined integer state
  std::int64_t steps = 0;

  void init(int n_agents, int n_landmarks, int dim_comm, int n_aux_f = 0, int n_aux_i = 0) {
    num_agents = n_agents;
    num_landmarks = n_landmarks;
    dim_c = dim_comm;
    entities.assign(n_agents + n_landmarks, Entity{});
    for (int i = 0; i < n_agents; ++i) entities[i].movable = true;
    comm.assign(static_cast<std::size_t>(n_agents) * dim_c, 0.0);
    action_u.assign(static_cast<std::size_t>(n_agents) * kDimP, 0.0);
    action_c.assign(static_cast<std::size_t>(n_agents) * dim_c, 0.0);
    force.assign(entities.size(), Vec2{});
    aux_f.assign(n_aux_f, 0.0);
    aux_i.assign(n_aux_i, 0);
  }

  int num_entities() const { return static_cast<int>(entities.size()); }
  Entity& agent(int i) { return entities[i]; }
  const Entity& agent(int i) const { return entities[i]; }
  Entity& landmark(int i) { return entities[num_agents + i]; }
  const Entity& landmark(int i) const { return entities[num_agents + i]; }
  double* agent_comm(int i) { return comm.data() + static_cast<std::size_t>(i) * dim_c; }
  const double* agent_comm(int i) const { return comm.data() + static_cast<std::size_t>(i) * dim_c; }

  // Resets velocity and communication of every entity (positions are set by the scenario).
  void zero_motion() {
    for (auto& e : entities) e.vel = Vec2{};
    std::fill(comm.begin(), comm.end(), 0.0);
  }

  // The action space of agent i as mpe2 derives it from movable / silent / dim_c.
  ActionSpace action_space(int i, bool continuous) const {
    const Entity& a = entities[i];
    int dim = a.movable ? kMoveActions : (continuous ? 0 : 1);
    if (!a.silent) dim = continuous ? dim + dim_c : dim * dim_c;
    ActionSpace s;
    s.continuous = continuous;
    s.n = dim;
    return s;
  }

  // Decodes a discrete action of agent i into action_u / action_c.
  void set_discrete_action(int i, std::int64_t action) {
    const Entity& a = entities[i];
    double* u = action_u.data() + i * kDimP;
    double* c = action_c.data() + static_cast<std::size_t>(i) * dim_c;
    u[0] = u[1] = 0.0;
    std::fill(c, c + dim_c, 0.0);
    if (a.movable) {
      const std::int64_t move = action % kMoveActions;
      action /= kMoveActions;
      if (move == 1) u[0] = -1.0;
      if (move == 2) u[0] = +1.0;
      if (move == 3) u[1] = -1.0;
      if (move == 4) u[1] = +1.0;
      const double s = a.accel != kUnset ? a.accel : kDefaultSensitivity;
      u[0] *= s;
      u[1] *= s;
    }
    if (!a.silent && dim_c > 0) c[action] = 1.0;
  }

  // Decodes a continuous action (already clipped to [0, 1]) of agent i.
  void set_continuous_action(int i, const float* action) {
    const Entity& a = entities[i];
    double* u = action_u.data() + i * kDimP;
    double* c = action_c.data() + static_cast<std::size_t>(i) * dim_c;
    u[0] = u[1] = 0.0;
    std::fill(c, c + dim_c, 0.0);
    if (a.movable) {
      // mpe2 subtracts in the action's float32 precision, then widens.
      u[0] += static_cast<double>(action[2] - action[1]);
      u[1] += static_cast<double>(action[4] - action[3]);
      const double s = a.accel != kUnset ? a.accel : kDefaultSensitivity;
      u[0] *= s;
      u[1] *= s;
      action += kMoveActions;
    }
    if (!a.silent) {
      for (int k = 0; k < dim_c; ++k) c[k] = static_cast<double>(action[k]);
    }
  }

  // Softplus contact penetration, as numpy's logaddexp(0, x) computes it.
  static double log_add_exp0(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

  // One physics step: action forces, pairwise contact forces, integration,
  // communication update. Matches mpe2's World.step().
  void physics_step() {
    const int n = num_entities();
    for (int i = 0; i < n; ++i) force[i] = Vec2{};
    for (int i = 0; i < num_agents; ++i) {
      if (entities[i].movable) force[i] = Vec2{action_u[i * kDimP], action_u[i * kDimP + 1]};
    }
    for (int a = 0; a < n; ++a) {
      const Entity& ea = entities[a];
      if (!ea.collide) continue;
      for (int b = a + 1; b < n; ++b) {
        const Entity& eb = entities[b];
        if (!eb.collide) continue;
        const Vec2 delta = ea.pos - eb.pos;
        const double dist = std::sqrt(delta.x * delta.x + delta.y * delta.y);
        const double dist_min = ea.size + eb.size;
        // Beyond this gap exp() underflows to exactly 0, so the softplus and the force are
        // exactly 0 as in mpe2: skipping the pair changes no bit of the result.
        if (dist - dist_min > kZeroForceGap) continue;
        const double penetration = log_add_exp0(-(dist - dist_min) / kContactMargin) * kContactMargin;
        const Vec2 f = Vec2{kContactForce * delta.x / dist * penetration, kContactForce * delta.y / dist * penetration};
        if (ea.movable) force[a] = f + force[a];
        if (eb.movable) force[b] = Vec2{-f.x, -f.y} + force[b];
      }
    }
    for (int i = 0; i < n; ++i) {
      Entity& e = entities[i];
      if (!e.movable) continue;
      e.pos = e.pos + e.vel * kDt;
      e.vel = e.vel * (1.0 - kDamping);
      e.vel.x += (force[i].x / e.mass) * kDt;
      e.vel.y += (force[i].y / e.mass) * kDt;
      if (e.max_speed != kUnset) {
        const double speed = std::sqrt(e.vel.x * e.vel.x + e.vel.y * e.vel.y);
        if (speed > e.max_speed) {
          e.vel = Vec2{e.vel.x / speed * e.max_speed, e.vel.y / speed * e.max_speed};
        }
      }
    }
    for (int i = 0; i < num_agents; ++i) {
      double* c = agent_comm(i);
      const double* ac = action_c.data() + static_cast<std::size_t>(i) * dim_c;
      for (int k = 0; k < dim_c; ++k) c[k] = entities[i].silent ? 0.0 : ac[k];
    }
  }

  // True when two entities overlap (dist < size_a + size_b), mpe2's is_collision.
  bool is_collision(int a, int b) const {
    const Vec2 d = entities[a].pos - entities[b].pos;
    return std::sqrt(d.x * d.x + d.y * d.y) < entities[a].size + entities[b].size;
  }
  double distance(int a, int b) const {
    const Vec2 d = entities[a].pos - entities[b].pos;
    return std::sqrt(d.x * d.x + d.y * d.y);
  }
};

// Writes observation values into a float32 buffer, counting them.
class ObsWriter {
 public:
  explicit ObsWriter(float* out) : out_(out) {}
  void put(double v) { out_[n_++] = static_cast<float>(v); }
  void put(Vec2 v) {
    put(v.x);
    put(v.y);
  }
  void put(const double* v, int count) {
    for (int k = 0; k < count; ++k) put(v[k]);
  }
  void put(const std::array<double, 3>& c) { put(c.data(), 3); }
  void zeros(int count) {
    for (int k = 0; k < count; ++k) put(0.0);
  }
  int size() const { return n_; }

 private:
  float* out_;
  int n_ = 0;
};

// Indices of the `n` entities in `candidates` nearest to entity `self`,
// closest first (mpe2's nearest_entities; stable for ties). `count` <= 32.
inline int nearest(const World& w, int self, const int* candidates, int count, int n, int* out) {
  int order[64];
  double dist[64];
  for (int k = 0; k < count; ++k) {
    order[k] = k;
    dist[k] = w.distance(candidates[k], self);
  }
  std::stable_sort(order, order + count, [&](int a, int b) { return dist[a] < dist[b]; });
  const int m = std::min(n, count);
  for (int k = 0; k < m; ++k) out[k] = candidates[order[k]];
  return m;
}

// Every agent but `self`, in order; returns how many.
inline int other_agents(const World& w, int self, int* out) {
  int n = 0;
  for (int a = 0; a < w.num_agents; ++a) {
    if (a != self) out[n++] = a;
  }
  return n;
}

// Entity indices of the landmarks [first, first + count), for nearest()/put_relative_positions().
inline void landmark_indices(const World& w, int first, int count, int* out) {
  for (int l = 0; l < count; ++l) out[l] = w.num_agents + first + l;
}

// mpe2's padded_relative_positions: positions of `candidates` relative to entity `self` — all of
// them in order when `limit` < 0 (full observability), else the `limit` nearest, closest first,
// zero-padded to `limit` slots. Returns how many entities were used.
// Observations are the hot loop's largest part: this must inline into the scenario's
// observation() so the writer stays in registers (out of line it cost ~20% of a step).
// The full-observability path reads `candidates` directly; `*chosen` points at the list used.
GENMARL_ALWAYS_INLINE inline int put_relative_positions(const World& w, int self, const int* candidates, int count,
                                                        int limit, ObsWriter& out, int* scratch, const int** chosen) {
  const Vec2 me = w.entities[self].pos;
  if (limit < 0) {
    for (int k = 0; k < count; ++k) out.put(w.entities[candidates[k]].pos - me);
    *chosen = candidates;
    return count;
  }
  const int m = nearest(w, self, candidates, count, limit, scratch);
  for (int k = 0; k < m; ++k) out.put(w.entities[scratch[k]].pos - me);
  out.zeros(kDimP * (limit - m));
  *chosen = scratch;
  return m;
}

}  // namespace genmarl::mpe
