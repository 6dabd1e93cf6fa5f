// simple_crypto: Alice (speaker) encodes the goal colour with a private key,
// Bob (listener, who holds the key) decodes it, Eve (adversary) eavesdrops.
// Nobody moves; everything happens on the communication channel.
// mpe2: mpe2/simple_crypto/simple_crypto.py (simple_crypto_v3).
//
// mpe2's goal and key are landmark colours of length dim_c (one-hot of the
// landmark index). genmarl keeps the two landmark indices in aux_i and builds
// the one-hot vectors from them; entity colours hold the first three components.
#pragma once

#include "genmarl/envs/mpe/scenario_base.hpp"

namespace genmarl::mpe {

class SimpleCrypto : public MpeScenario<SimpleCrypto> {
 public:
  static constexpr const char* kName = "simple_crypto";
  static constexpr int kNumAgents = 3;
  static constexpr int kEve = 0, kBob = 1, kAlice = 2;  // adversary, listener, speaker
  static constexpr int kNumLandmarks = 2;
  static constexpr int kDimC = 4;
  static constexpr int kAuxGoal = 0;  // aux_i: landmark whose colour is the message
  static constexpr int kAuxKey = 1;   // aux_i: landmark whose colour is the key
  static constexpr int kNumAuxI = 2;

  static std::vector<ParamSpec> scenario_params() { return {}; }

  explicit SimpleCrypto(const Params& p) : MpeScenario(p) {}

  std::vector<std::string> agent_names() const { return {"eve_0", "bob_0", "alice_0"}; }

  void make_world(World& w) const {
    w.init(kNumAgents, kNumLandmarks, kDimC, 0, kNumAuxI);
    for (int i = 0; i < kNumAgents; ++i) {
      w.agent(i).collide = false;
      w.agent(i).movable = false;
    }
    for (int l = 0; l < kNumLandmarks; ++l) {
      w.landmark(l).collide = false;
      w.landmark(l).movable = false;
    }
  }

  // The first three components of the one-hot colour of landmark l.
  static std::array<double, 3> landmark_color(int l) {
    std::array<double, 3> c{0.0, 0.0, 0.0};
    if (l < 3) c[l] = 1.0;
    return c;
  }

  void reset_world(World& w, CounterRng& rng) const {
    for (int i = 0; i < kNumAgents; ++i) w.agent(i).color = {0.25, 0.25, 0.25};
    w.agent(kEve).color = {0.75, 0.25, 0.25};
    for (int l = 0; l < kNumLandmarks; ++l) w.landmark(l).color = landmark_color(l);
    w.aux_i[kAuxGoal] = static_cast<std::int64_t>(rng.below(kNumLandmarks));
    w.aux_i[kAuxKey] = static_cast<std::int64_t>(rng.below(kNumLandmarks));
    w.agent(kBob).color = landmark_color(static_cast<int>(w.aux_i[kAuxGoal]));
    w.zero_motion();
    for (int i = 0; i < w.num_entities(); ++i) w.entities[i].pos = Vec2{rng.uniform(-1, 1), rng.uniform(-1, 1)};
  }

  // Squared distance of agent i's message to the goal colour, or nothing
  // (returns false) when the agent has said nothing (all-zero c), as in mpe2.
  static bool message_error(const World& w, int i, double& err) {
    const double* c = w.agent_comm(i);
    bool silent = true;
    for (int k = 0; k < w.dim_c; ++k) silent = silent && c[k] == 0.0;
    if (silent) return false;
    const std::int64_t goal = w.aux_i[kAuxGoal];
    err = 0.0;
    for (int k = 0; k < w.dim_c; ++k) {
      const double d = c[k] - (k == goal ? 1.0 : 0.0);
      err += d * d;
    }
    return true;
  }

  double reward(const World& w, int i) const {
    double err = 0.0;
    if (i == kEve) return message_error(w, kEve, err) ? -err : 0.0;
    double good = 0.0, adv = 0.0;
    if (message_error(w, kBob, err)) good -= err;
    if (message_error(w, kEve, err)) adv += err;
    return adv + good;
  }

  static void put_one_hot(ObsWriter& out, std::int64_t index, int n) {
    for (int k = 0; k < n; ++k) out.put(k == index ? 1.0 : 0.0);
  }

  void observation(const World& w, int i, ObsWriter& out) const {
    if (i == kAlice) {
      put_one_hot(out, w.aux_i[kAuxGoal], w.dim_c);
      put_one_hot(out, w.aux_i[kAuxKey], w.dim_c);
      return;
    }
    if (i == kBob) put_one_hot(out, w.aux_i[kAuxKey], w.dim_c);
    out.put(w.agent_comm(kAlice), w.dim_c);
  }

  static void check_state(const World& w) {
    for (int k : {kAuxGoal, kAuxKey}) {
      if (w.aux_i[k] < 0 || w.aux_i[k] >= kNumLandmarks)
        throw InvalidArgument("set_state: simple_crypto aux_i (goal, key landmark) must be in [0, 2)");
    }
  }
};

}  // namespace genmarl::mpe
