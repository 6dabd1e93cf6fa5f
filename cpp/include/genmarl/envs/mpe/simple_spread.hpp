// simple_spread: N agents cover N landmarks and avoid colliding.
// mpe2: mpe2/simple_spread/simple_spread.py (simple_spread_v3).
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleSpread : public MpeScenario<SimpleSpread> {
 public:
  static constexpr const char* kName = "simple_spread";
  static constexpr double kAgentSize = 0.15;
  static constexpr double kCaptureRadius = 0.1;  // an agent this close occupies a landmark
  static constexpr int kDimC = 2;

  static std::vector<ParamSpec> scenario_params() {
    return {
        {"N", ParamKind::kInt, 3, "number of agents and landmarks"},
        {"local_ratio", ParamKind::kFloat, 0.5, "weight of the local (collision) reward; 1 - it weights the global one"},
        {"curriculum", ParamKind::kBool, 0, "stage 0 has no collision penalty, stage 1 restores it"},
        {"terminate_on_success", ParamKind::kBool, 0, "terminate when every landmark is occupied"},
        {"num_agent_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest other agents (None: all)"},
        {"num_landmark_neighbors", ParamKind::kOptionalInt, kNone, "observe only the nearest landmarks (None: all)"},
    };
  }

  explicit SimpleSpread(const Params& p)
      : MpeScenario(p),
        n_(p.get_int("N")),
        local_ratio_(p.get("local_ratio")),
        curriculum_(p.get_bool("curriculum")),
        terminate_on_success_(p.get_bool("terminate_on_success")),
        agent_neighbors_(p.get_optional_int("num_agent_neighbors")),
        landmark_neighbors_(p.get_optional_int("num_landmark_neighbors")) {
    if (n_ < 1 || n_ > 32) throw InvalidArgument("simple_spread: N must be in [1, 32], got " + std::to_string(n_));
    if (!(local_ratio_ >= 0.0 && local_ratio_ <= 1.0))
      throw InvalidArgument("simple_spread: local_ratio is a proportion and must be in [0, 1]");
    if (agent_neighbors_ == 0 || agent_neighbors_ < -1)
      throw InvalidArgument("simple_spread: num_agent_neighbors must be a positive integer or None");
    if (landmark_neighbors_ == 0 || landmark_neighbors_ < -1)
      throw InvalidArgument("simple_spread: num_landmark_neighbors must be a positive integer or None");
  }

  std::vector<std::string> agent_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < n_; ++i) names.push_back("agent_" + std::to_string(i));
    return names;
  }

  void make_world(World& w) const {
    w.init(n_, n_, kDimC);
    for (int i = 0; i < n_; ++i) {
      w.agent(i).collide = true;
      w.agent(i).silent = true;
      w.agent(i).size = kAgentSize;
      w.landmark(i).collide = false;
      w.landmark(i).movable = false;
    }
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < n_; ++i) w.agent(i).color = {0.35, 0.35, 0.85};
    for (int i = 0; i < n_; ++i) w.landmark(i).color = {0.25, 0.25, 0.25};
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  double local_ratio() const { return local_ratio_; }

  double min_dist_to(const World& w, int landmark) const {
    double best = 0.0;
    for (int a = 0; a < n_; ++a) {
      const double d = w.distance(a, n_ + landmark);
      if (a == 0 || d < best) best = d;
    }
    return best;
  }

  double global_reward(const World& w) const {
    double rew = 0.0;
    for (int l = 0; l < n_; ++l) rew -= min_dist_to(w, l);
    return rew;
  }

  double reward(const World& w, int i) const {
    const bool penalty = !curriculum_ || stage_ >= 1;
    double rew = 0.0;
    if (w.agent(i).collide && penalty) {
      for (int a = 0; a < n_; ++a) {
        if (a != i && w.is_collision(a, i)) rew -= 1.0;
      }
    }
    return rew;
  }

  // mpe2's benchmark_data quantities: landmarks occupied (an agent within 0.1) and the sum of
  // the nearest agent's distance to each landmark, both at the last step, and the agent pairs
  // that overlapped, summed over the episode's steps.
  std::vector<std::string> metric_names() const { return {"occupied_landmarks", "min_dist_sum", "collisions"}; }
  void update_metrics(const World& w, double* acc) const {
    int collisions = 0;
    for (int a = 0; a < n_; ++a) {  // is_collision, compared on squares
      const Entity& ea = w.agent(a);
      for (int b = a + 1; b < n_; ++b) {
        const Entity& eb = w.agent(b);
        const double dx = ea.pos.x - eb.pos.x, dy = ea.pos.y - eb.pos.y, limit = ea.size + eb.size;
        collisions += dx * dx + dy * dy < limit * limit;
      }
    }
    acc[2] += collisions;
  }
  void final_metrics(const World& w, double* acc) const {
    double occupied = 0.0, dist_sum = 0.0;
    for (int l = 0; l < n_; ++l) {
      const double d = min_dist_to(w, l);
      occupied += d < kCaptureRadius ? 1.0 : 0.0;
      dist_sum += d;
    }
    acc[0] = occupied;
    acc[1] = dist_sum;
  }

  bool terminal(const World& w) const {
    if (!terminate_on_success_) return false;
    for (int l = 0; l < n_; ++l) {
      if (min_dist_to(w, l) >= kCaptureRadius) return false;
    }
    return true;
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    const Entity& me = w.agent(i);
    out.put(me.vel);
    out.put(me.pos);
    int landmarks[32], others[32], picked[32];
    landmark_indices(w, 0, n_, landmarks);
    const int* chosen;
    put_relative_positions(w, i, landmarks, n_, landmark_neighbors_, out, picked, &chosen);
    const int n_others = other_agents(w, i, others);
    const int m = put_relative_positions(w, i, others, n_others, agent_neighbors_, out, picked, &chosen);
    for (int k = 0; k < m; ++k) out.put(w.agent_comm(chosen[k]), w.dim_c);
    if (agent_neighbors_ >= 0) out.zeros(w.dim_c * (agent_neighbors_ - m));
  }

  int num_curriculum_stages() const { return 2; }
  int curriculum_stage() const { return stage_; }
  void set_curriculum_stage(int stage) { stage_ = std::clamp(stage, 0, num_curriculum_stages() - 1); }

 private:
  int n_;
  double local_ratio_;
  bool curriculum_;
  bool terminate_on_success_;
  int agent_neighbors_;
  int landmark_neighbors_;
  int stage_ = 0;
};

}  // namespace genmarl::mpe
