// Multi-Robot Warehouse with the semantics of the rware 2.0.0 package
// (rware/warehouse.py, Warehouse): generated or custom (text) layouts, message bits, flattened
// or image observations.
//
// Robots (agents) drive a grid of shelf blocks and highways: FORWARD moves one cell in the
// robot's direction, LEFT/RIGHT turn, TOGGLE_LOAD lifts the shelf under an unloaded robot or
// puts a carried shelf down (only on a shelf cell, not on a highway). A requested shelf carried
// onto a goal is delivered: its carrier earns 1 (INDIVIDUAL), everyone 1 (GLOBAL), or 0.5 now
// and 0.5 at the next drop (TWO_STAGE), and a random unrequested shelf replaces it in the
// request queue, in the same slot. The reference's rules are reproduced exactly:
//   - a loaded robot may not drive into a cell holding a standing shelf (its move becomes NOOP);
//   - moves are resolved on the move graph (one edge per robot, from its cell to its target):
//     in each weakly connected component, a cycle of length 1 (a standing robot) or >= 3 (a
//     rotation) moves and everything queued into it stays; a 2-cycle (two robots swapping)
//     freezes the whole component; a cycle-free component moves the robots on its longest path
//     into the free cell. Ties between equally long queues follow networkx's traversal order,
//     which comes from CPython's set layout: genmarl emulates the tuple hash and the set table
//     (grid cells are (x, y) tuples), so even the tie-breaks match;
//   - deliveries are checked goal by goal every step (a shelf still on a goal and re-requested is
//     delivered again); the replacement is drawn with numpy's PCG64 and Generator.integers
//     algorithm from a per-env PCG64 state, which genmarl seeds from its own counter-based
//     stream at reset (parity tests copy the reference's generator state);
//   - the time limit (max_steps) and the inactivity limit (max_inactivity_steps) end the
//     episode; the reference reports both as done=True, truncated=False; genmarl reports them
//     as truncation (no terminal state exists in this task).
// Observations (float32, per robot), FLATTENED: x, y (or x/(W-1), y/(H-1) with
// normalised_coordinates), carrying, direction one-hot (UP, DOWN, LEFT, RIGHT), on_highway; then
// for each cell of the (2r+1)^2 window around it, row by row: has_robot, the robot's direction
// one-hot (UP for an empty cell, as the reference), the robot's message bits (zeros for an empty
// cell), has_shelf, shelf_requested. IMAGE: [layers, 2r+1, 2r+1], the chosen ImageLayers of the
// window (zero outside the grid), rotated to the robot's heading when directional. The
// reference writes its AGENT_DIRECTION and AGENT_LOAD layers transposed (layer[x, y], which
// raises IndexError on a grid that is not square); genmarl writes them at (y, x) like the other
// layers -- the one documented difference.
// Message bits (msg_bits = B > 0): the reference's action is MultiDiscrete([5, 2, ..., 2]);
// genmarl's is Discrete(5 * 2**B), its row-major index (numpy.ravel_multi_index): move =
// a >> B, bit k = (a >> (B - 1 - k)) & 1. A robot's message is the bits of its last action.
// Layouts: the generated one (shelf_columns, column_height, shelf_rows) or `layout`, text rows
// of 'x' (shelf), '.' (corridor) and 'g' (goal), case-insensitive, spaces ignored.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/spec.hpp"

namespace genmarl::rware {

enum Action : std::int64_t { kNoop = 0, kForward = 1, kLeft = 2, kRight = 3, kToggleLoad = 4 };
enum Direction : std::int32_t { kUp = 0, kDown = 1, kLeftDir = 2, kRightDir = 3 };
enum RewardType : int { kGlobal = 0, kIndividual = 1, kTwoStage = 2 };
enum ImageLayer : int { kShelves = 0, kRequests = 1, kAgents = 2, kAgentDirection = 3, kAgentLoad = 4, kGoals = 5, kAccessible = 6 };
inline constexpr int kNumActions = 5;  // moves; with B message bits an action is one of 5 * 2**B
inline constexpr int kMaxAgents = 64;
inline constexpr int kMaxMsgBits = 8;
inline constexpr int kMaxLayoutSide = 1000;

// numpy's PCG64 bit generator with the 32-bit buffer numpy's Generator keeps, and
// Generator.integers(0, n) for n < 2**32 (Lemire's method on 32-bit draws).
struct Pcg64 {
  unsigned __int128 state = 0, inc = 1;
  std::uint64_t has_uint32 = 0, uinteger = 0;

  std::uint64_t next64() {
    static constexpr unsigned __int128 kMult =
        (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) + 4865540595714422341ULL;
    state = state * kMult + inc;
    const auto hi = static_cast<std::uint64_t>(state >> 64), lo = static_cast<std::uint64_t>(state);
    const unsigned rot = static_cast<unsigned>(hi >> 58);
    const std::uint64_t x = hi ^ lo;
    return (x >> rot) | (x << ((64 - rot) & 63));
  }
  std::uint32_t next32() {
    if (has_uint32) {
      has_uint32 = 0;
      return static_cast<std::uint32_t>(uinteger);
    }
    const std::uint64_t v = next64();
    has_uint32 = 1;
    uinteger = v >> 32;
    return static_cast<std::uint32_t>(v);
  }
  // A value in [0, n), n >= 1: numpy's Generator.integers(0, n) (and choice over n items).
  std::uint64_t integers(std::uint64_t n) {
    const std::uint64_t rng = n - 1;
    if (rng == 0) return 0;
    const std::uint64_t excl = rng + 1;
    std::uint64_t m = static_cast<std::uint64_t>(next32()) * excl;
    auto left = static_cast<std::uint32_t>(m);
    if (left < excl) {
      const std::uint64_t threshold = (0xFFFFFFFFULL - rng) % excl;
      while (left < threshold) {
        m = static_cast<std::uint64_t>(next32()) * excl;
        left = static_cast<std::uint32_t>(m);
      }
    }
    return m >> 32;
  }
};

// CPython 3.11 (64-bit) hash of the tuple (x, y) of small non-negative ints, and an insert-only
// set whose slot order is CPython's: networkx's traversal order over grid cells comes from it.
inline std::uint64_t tuple_hash(std::uint64_t x, std::uint64_t y) {
  constexpr std::uint64_t kP1 = 11400714785074694791ULL, kP2 = 14029467366897019727ULL, kP5 = 2870177450012600261ULL;
  std::uint64_t acc = kP5;
  for (std::uint64_t lane : {x, y}) {
    acc += lane * kP2;
    acc = (acc << 31) | (acc >> 33);
    acc *= kP1;
  }
  acc += 2ULL ^ (kP5 ^ 3527539ULL);
  return acc == ~0ULL ? 1546275796ULL : acc;
}

class PySet {
 public:
  void clear() {
    mask_ = 7;
    fill_ = used_ = 0;
    table_.assign(8, Entry{});
  }
  void add(int key, std::uint64_t h) {
    std::size_t i = h & mask_;
    std::uint64_t perturb = h;
    while (true) {
      const std::size_t probes = i + 9 <= mask_ ? 9 : 0;
      for (std::size_t j = i; j <= i + probes; ++j) {
        Entry& e = table_[j];
        if (e.key < 0) {
          e = Entry{key, h};
          ++fill_;
          ++used_;
          if (fill_ * 5 >= mask_ * 3) resize(used_ > 50000 ? used_ * 2 : used_ * 4);
          return;
        }
        if (e.hash == h && e.key == key) return;
      }
      perturb >>= 5;
      i = (i * 5 + 1 + perturb) & mask_;
    }
  }
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const auto& e : table_) if (e.key >= 0) fn(e.key);
  }

 private:
  struct Entry {
    int key = -1;
    std::uint64_t hash = 0;
  };
  void resize(std::size_t minused) {
    std::size_t size = 8;
    while (size <= minused) size <<= 1;
    old_.swap(table_);
    table_.assign(size, Entry{});
    mask_ = size - 1;
    for (const auto& e : old_) {
      if (e.key < 0) continue;
      std::size_t i = e.hash & mask_;
      std::uint64_t perturb = e.hash;
      bool placed = false;
      while (!placed) {
        if (table_[i].key < 0) {
          table_[i] = e;
          placed = true;
          break;
        }
        if (i + 9 <= mask_) {
          for (std::size_t j = 1; j <= 9 && !placed; ++j) {
            if (table_[i + j].key < 0) {
              table_[i + j] = e;
              placed = true;
            }
          }
        }
        perturb >>= 5;
        i = (i * 5 + 1 + perturb) & mask_;
      }
    }
  }
  std::vector<Entry> table_ = std::vector<Entry>(8), old_;
  std::size_t mask_ = 7, fill_ = 0, used_ = 0;
};

class Warehouse {
 public:
  static constexpr const char* kName = "rware";

  struct State {
    std::vector<std::int32_t> ax, ay, dir, carrying;  // [agents]; carrying: shelf id (1-based) or 0
    std::vector<std::uint8_t> has_delivered;           // [agents]
    std::vector<std::int32_t> sx, sy;                  // [shelves]
    std::vector<std::int32_t> queue;                   // [request_queue_size] shelf ids, ordered
    std::vector<std::int64_t> action;                  // [agents] the next step's moves
    std::vector<std::uint32_t> message;                // [agents] message bits (bit B-1-k is bit k)
    std::vector<double> reward;                        // [agents] the last step's rewards
    std::int64_t steps = 0, inactive = 0;
    std::int64_t deliveries = 0;  // in the last step (transient, read by the metrics after the step)
    std::int32_t H = 0, W = 0;    // fixed by the scenario (not part of the exported state)
    std::int32_t msg_bits = 0;    // likewise
    Pcg64 rng;
    // derived (rebuilt by recalc()): robot / shelf id per cell (0: none), requested flag per shelf
    std::vector<std::int32_t> grid_agent, grid_shelf;
    std::vector<std::uint8_t> requested;
  };

  static std::vector<ParamSpec> param_specs() {
    return {
        {"shelf_columns", ParamKind::kInt, 3, "shelf columns (odd)"},
        {"column_height", ParamKind::kInt, 8, "shelves per column"},
        {"shelf_rows", ParamKind::kInt, 1, "rows of shelf blocks"},
        {"n_agents", ParamKind::kInt, 2, "robots"},
        {"msg_bits", ParamKind::kInt, 0, "communication bits B in [0, 8]: actions become Discrete(5 * 2**B)"},
        {"sensor_range", ParamKind::kInt, 1, "observation radius r: a (2r+1)^2 window"},
        {"request_queue_size", ParamKind::kInt, 2, "shelves requested at a time"},
        {"max_inactivity_steps", ParamKind::kOptionalInt, genmarl::kNone, "end after this many steps without a delivery (None: never)"},
        {"max_steps", ParamKind::kInt, 500, "time limit (truncation)"},
        {"reward_type", ParamKind::kInt, kIndividual, "GLOBAL=0, INDIVIDUAL=1, TWO_STAGE=2 (rware.RewardType)"},
        {"observation_type", ParamKind::kInt, 1, "rware.ObservationType: FLATTENED=1 or IMAGE=2 (DICT, IMAGE_DICT: no)"},
        {"normalised_coordinates", ParamKind::kBool, 0, "observe x/(W-1), y/(H-1) instead of x, y"},
        {"layout", ParamKind::kString, 0, "custom layout: rows of x (shelf), . (corridor), g (goal); replaces "
                                           "shelf_columns, column_height, shelf_rows ('': generated)", 0, {}, ""},
        {"image_observation_layers", ParamKind::kIntTuple, 0, "IMAGE: rware.ImageLayer channels, in order", 0,
         {kShelves, kRequests, kAgents, kGoals, kAccessible}},
        {"image_observation_directional", ParamKind::kBool, 1, "IMAGE: rotate the window to the robot's heading"},
    };
  }

  explicit Warehouse(const Params& p)
      : shelf_columns_(p.get_int("shelf_columns")),
        column_height_(p.get_int("column_height")),
        shelf_rows_(p.get_int("shelf_rows")),
        n_(p.get_int("n_agents")),
        sensor_(p.get_int("sensor_range")),
        queue_size_(p.get_int("request_queue_size")),
        max_inactive_(p.get_optional_int("max_inactivity_steps")),
        max_steps_(p.get_int("max_steps")),
        reward_type_(p.get_int("reward_type")),
        normalised_(p.get_bool("normalised_coordinates")),
        msg_bits_(p.get_int("msg_bits")),
        image_(p.get_int("observation_type") == 2),
        directional_(p.get_bool("image_observation_directional")),
        layers_(p.get_ints("image_observation_layers")) {
    auto fail = [](const std::string& what) { throw InvalidArgument("rware: " + what); };
    if (msg_bits_ < 0 || msg_bits_ > kMaxMsgBits) fail("msg_bits must be in [0, 8], got " + std::to_string(msg_bits_));
    const int obs_type = p.get_int("observation_type");
    if (obs_type != 1 && obs_type != 2) {
      fail("observation_type must be 1 (FLATTENED) or 2 (IMAGE); DICT (0) and IMAGE_DICT (3) are nested dicts, which "
           "genmarl's array observations do not carry (FLATTENED holds DICT's values), got " + std::to_string(obs_type));
    }
    for (int l : layers_) {
      if (l < kShelves || l > kAccessible) fail("image_observation_layers holds rware.ImageLayer values in [0, 6], got " + std::to_string(l));
    }
    const std::string& layout = p.get_string("layout");
    if (layout.empty()) {
      if (shelf_columns_ < 1 || shelf_columns_ % 2 == 0 || shelf_columns_ > 99) {
        fail("shelf_columns must be odd and in [1, 99], got " + std::to_string(shelf_columns_));
      }
      if (column_height_ < 1 || column_height_ > 99) fail("column_height must be in [1, 99], got " + std::to_string(column_height_));
      if (shelf_rows_ < 1 || shelf_rows_ > 99) fail("shelf_rows must be in [1, 99], got " + std::to_string(shelf_rows_));
      make_layout();
    } else {
      parse_layout(layout);
    }
    if (sensor_ < 0 || sensor_ > 20) fail("sensor_range must be in [0, 20], got " + std::to_string(sensor_));
    if (max_steps_ < 1) fail("max_steps must be >= 1, got " + std::to_string(max_steps_));
    if (max_inactive_ == 0 || max_inactive_ < -1) fail("max_inactivity_steps must be a positive integer or None");
    if (reward_type_ < 0 || reward_type_ > 2) fail("reward_type must be 0 (GLOBAL), 1 (INDIVIDUAL) or 2 (TWO_STAGE), got " + std::to_string(reward_type_));
    if (n_ < 1 || n_ > kMaxAgents) fail("n_agents must be in [1, 64], got " + std::to_string(n_));
    if (n_ > H_ * W_) fail("n_agents (" + std::to_string(n_) + ") must fit on the " + std::to_string(H_ * W_) + " cells");
    const int shelves = static_cast<int>(home_x_.size());
    if (queue_size_ < 0 || (queue_size_ > 0 && queue_size_ > shelves - 1)) {
      fail("request_queue_size must be in [0, " + std::to_string(std::max(0, shelves - 1)) +
           "] (a delivery draws its replacement among the shelves not requested), got " + std::to_string(queue_size_));
    }
  }

  // The reference's registered ids: rware-{tiny,small,medium,large}-{N}ag{-easy,,-hard}-v2.
  static std::optional<Params> parse_alias(const std::string& id) {
    static const std::regex re(R"(rware-(tiny|small|medium|large)-(\d+)ag(-easy|-hard)?-v2)");
    std::smatch m;
    if (!std::regex_match(id, m, re)) return std::nullopt;
    const int agents = std::stoi(m[2].str());
    if (agents < 1 || agents > 19) return std::nullopt;
    const std::string size = m[1].str();
    const int rows = size == "tiny" ? 1 : size == "large" ? 3 : 2;
    const int cols = size == "tiny" || size == "small" ? 3 : 5;
    const std::string diff = m[3].matched ? m[3].str() : "";
    const int queue = diff == "-easy" ? 2 * agents : diff == "-hard" ? agents / 2 : agents;
    Params p;
    p.set("column_height", 8);
    p.set("shelf_rows", rows);
    p.set("shelf_columns", cols);
    p.set("n_agents", agents);
    p.set("msg_bits", 0);
    p.set("sensor_range", 1);
    p.set("request_queue_size", queue);
    p.set("max_inactivity_steps", genmarl::kNone);
    p.set("max_steps", 500);
    p.set("reward_type", kIndividual);
    return p;
  }

  int height() const { return H_; }
  int width() const { return W_; }
  int num_shelves() const { return static_cast<int>(home_x_.size()); }
  int window() const { return 2 * sensor_ + 1; }
  int obs_dim() const {
    return image_ ? static_cast<int>(layers_.size()) * window() * window() : 8 + window() * window() * (7 + msg_bits_);
  }

  EnvSpec spec() const {
    EnvSpec s;
    s.name = kName;
    s.family = "rware";
    s.max_cycles = max_steps_;
    s.metric_names = {"deliveries"};
    for (int i = 0; i < n_; ++i) {
      AgentSpec a;
      a.name = "agent_" + std::to_string(i);
      a.group = "agent";
      a.obs_shape = {obs_dim()};
      if (image_) {
        const int cells = window() * window();
        a.obs_shape = {static_cast<int>(layers_.size()), window(), window()};
        a.obs_low.assign(obs_dim(), 0.0f);
        for (int l : layers_) {
          a.obs_high.insert(a.obs_high.end(), cells, l == kAgentDirection ? 4.0f : 1.0f);  // directions as 1 + Direction
        }
      }
      a.action = ActionSpace{false, kNumActions << msg_bits_, 0.0f, 0.0f};
      s.agents.push_back(a);
    }
    s.finalize();
    return s;
  }

  void init_state(State& s) const {
    s.H = H_;
    s.W = W_;
    s.msg_bits = msg_bits_;
    s.message.assign(n_, 0);
    s.ax.assign(n_, 0);
    s.ay.assign(n_, 0);
    s.dir.assign(n_, kUp);
    s.carrying.assign(n_, 0);
    s.has_delivered.assign(n_, 0);
    s.sx = home_x_;
    s.sy = home_y_;
    s.queue.assign(queue_size_, 0);
    s.action.assign(n_, kNoop);
    s.reward.assign(n_, 0.0);
    s.grid_agent.assign(static_cast<std::size_t>(H_) * W_, 0);
    s.grid_shelf.assign(static_cast<std::size_t>(H_) * W_, 0);
    s.requested.assign(home_x_.size(), 0);
  }

  // Same distributions as the reference's reset (distinct uniform cells, uniform directions,
  // distinct uniform requests), drawn from genmarl's stream; the delivery generator is seeded
  // from it too.
  void reset(State& s, CounterRng& rng) const {
    s.sx = home_x_;
    s.sy = home_y_;
    std::fill(s.carrying.begin(), s.carrying.end(), 0);
    std::fill(s.has_delivered.begin(), s.has_delivered.end(), 0);
    std::fill(s.reward.begin(), s.reward.end(), 0.0);
    std::fill(s.action.begin(), s.action.end(), kNoop);
    std::fill(s.message.begin(), s.message.end(), 0U);
    s.steps = 0;
    s.inactive = 0;
    const int cells = H_ * W_;
    for (int i = 0; i < n_; ++i) {
      while (true) {
        const int c = static_cast<int>(rng.below(cells));
        bool taken = false;
        for (int j = 0; j < i; ++j) taken = taken || (s.ay[j] * W_ + s.ax[j] == c);
        if (!taken) {
          s.ax[i] = c % W_;
          s.ay[i] = c / W_;
          break;
        }
      }
      s.dir[i] = static_cast<std::int32_t>(rng.below(4));
    }
    const int shelves = num_shelves();
    for (int k = 0; k < queue_size_; ++k) {
      while (true) {
        const int id = 1 + static_cast<int>(rng.below(shelves));
        if (std::find(s.queue.begin(), s.queue.begin() + k, id) == s.queue.begin() + k) {
          s.queue[k] = id;
          break;
        }
      }
    }
    s.rng.state = (static_cast<unsigned __int128>(rng.next_u64()) << 64) | rng.next_u64();
    s.rng.inc = ((static_cast<unsigned __int128>(rng.next_u64()) << 64) | rng.next_u64()) | 1;
    s.rng.has_uint32 = 0;
    s.rng.uinteger = 0;
    recalc(s);
  }

  void apply_actions(State& s, const std::int64_t* discrete, const float*, int) const {
    const std::int64_t bits = (std::int64_t{1} << msg_bits_) - 1;
    for (int i = 0; i < n_; ++i) {
      s.action[i] = discrete[i] >> msg_bits_;
      s.message[i] = static_cast<std::uint32_t>(discrete[i] & bits);
    }
  }

  void step(State& s, CounterRng&) const {
    std::int64_t act[kMaxAgents];
    std::copy(s.action.begin(), s.action.end(), act);
    resolve_moves(s, act);
    std::fill(s.reward.begin(), s.reward.end(), 0.0);
    // Apply, against the grid of the step's start (pick-ups read it).
    for (int i = 0; i < n_; ++i) {
      switch (act[i]) {
        case kForward: {
          const auto [x, y] = target(s, i, kForward);
          s.ax[i] = x;
          s.ay[i] = y;
          if (s.carrying[i]) {
            s.sx[s.carrying[i] - 1] = x;
            s.sy[s.carrying[i] - 1] = y;
          }
          break;
        }
        case kLeft: s.dir[i] = turn(s.dir[i], -1); break;
        case kRight: s.dir[i] = turn(s.dir[i], +1); break;
        case kToggleLoad: {
          const std::size_t cell = static_cast<std::size_t>(s.ay[i]) * W_ + s.ax[i];
          if (!s.carrying[i]) {
            if (s.grid_shelf[cell]) s.carrying[i] = s.grid_shelf[cell];
          } else if (!highway_[cell]) {
            s.carrying[i] = 0;
            if (s.has_delivered[i] && reward_type_ == kTwoStage) s.reward[i] += 0.5;
            s.has_delivered[i] = 0;
          }
          break;
        }
        default: break;
      }
    }
    recalc(s);
    // Deliveries, goal by goal: a chained delivery (the replacement sits on a later goal) counts.
    bool delivered = false;
    s.deliveries = 0;
    for (const auto& [gx, gy] : goals_) {
      const std::size_t cell = static_cast<std::size_t>(gy) * W_ + gx;
      const std::int32_t sid = s.grid_shelf[cell];
      if (sid == 0 || !s.requested[sid - 1]) continue;
      delivered = true;
      ++s.deliveries;
      const std::uint64_t candidates = static_cast<std::uint64_t>(num_shelves() - queue_size_);
      std::uint64_t k = s.rng.integers(candidates);
      std::int32_t replacement = 0;
      for (int j = 0; j < num_shelves(); ++j) {
        if (s.requested[j]) continue;
        if (k == 0) {
          replacement = j + 1;
          break;
        }
        --k;
      }
      for (auto& q : s.queue) {
        if (q == sid) {
          q = replacement;
          break;
        }
      }
      s.requested[sid - 1] = 0;
      s.requested[replacement - 1] = 1;
      const std::int32_t aid = s.grid_agent[cell];
      if (reward_type_ == kGlobal) {
        for (int i = 0; i < n_; ++i) s.reward[i] += 1.0;
      } else if (aid > 0 && reward_type_ == kIndividual) {
        s.reward[aid - 1] += 1.0;
      } else if (aid > 0) {
        s.has_delivered[aid - 1] = 1;
        s.reward[aid - 1] += 0.5;
      }
    }
    s.inactive = delivered ? 0 : s.inactive + 1;
    s.steps += 1;
  }

  void rewards(State& s, double* out) const { std::copy(s.reward.begin(), s.reward.end(), out); }
  bool is_terminal(const State&) const { return false; }

  // The fixed layout: highway [rows, cols] (corridor cells, true where no shelf is at home) and
  // goals [n, 2] as (x, y) in the reference's order.
  std::vector<StateArray> layout() const {
    StateArrays out;
    bool* highway = out.add<bool>("highway", {H_, W_});
    for (std::size_t k = 0; k < highway_.size(); ++k) highway[k] = highway_[k] != 0;
    auto* goals = out.add<std::int64_t>("goals", {static_cast<std::int64_t>(goals_.size()), 2});
    for (std::size_t k = 0; k < goals_.size(); ++k) {
      goals[2 * k] = goals_[k].first;
      goals[2 * k + 1] = goals_[k].second;
    }
    return out.take();
  }
  bool is_truncated(const State& s) const { return max_inactive_ > 0 && s.inactive >= max_inactive_; }
  std::int64_t steps(const State& s) const { return s.steps; }

  // deliveries: requested shelves delivered in the episode.
  void update_metrics(const State& s, double* acc) const { acc[0] += static_cast<double>(s.deliveries); }

  void observe(const State& s, int i, float* out) const {
    if (image_) {
      observe_image(s, i, out);
      return;
    }
    const int x = s.ax[i], y = s.ay[i];
    out[0] = normalised_ ? static_cast<float>(x) / static_cast<float>(W_ - 1) : static_cast<float>(x);
    out[1] = normalised_ ? static_cast<float>(y) / static_cast<float>(H_ - 1) : static_cast<float>(y);
    out[2] = s.carrying[i] ? 1.0f : 0.0f;
    for (int d = 0; d < 4; ++d) out[3 + d] = s.dir[i] == d ? 1.0f : 0.0f;
    out[7] = highway_[static_cast<std::size_t>(y) * W_ + x] ? 1.0f : 0.0f;
    float* o = out + 8;
    for (int dy = -sensor_; dy <= sensor_; ++dy) {
      for (int dx = -sensor_; dx <= sensor_; ++dx) {
        const int cx = x + dx, cy = y + dy;
        const bool inside = cx >= 0 && cx < W_ && cy >= 0 && cy < H_;
        const std::size_t cell = inside ? static_cast<std::size_t>(cy) * W_ + cx : 0;
        const std::int32_t aid = inside ? s.grid_agent[cell] : 0;
        const std::int32_t sid = inside ? s.grid_shelf[cell] : 0;
        // has_robot and its direction one-hot (an empty cell reads as facing UP)
        static constexpr float kRobot[5][5] = {{0, 1, 0, 0, 0}, {1, 1, 0, 0, 0}, {1, 0, 1, 0, 0}, {1, 0, 0, 1, 0}, {1, 0, 0, 0, 1}};
        std::memcpy(o, kRobot[aid ? 1 + s.dir[aid - 1] : 0], 5 * sizeof(float));
        o += 5;
        const std::uint32_t msg = aid ? s.message[aid - 1] : 0U;
        for (int k = 0; k < msg_bits_; ++k) o[k] = static_cast<float>((msg >> (msg_bits_ - 1 - k)) & 1U);
        o += msg_bits_;
        o[0] = sid ? 1.0f : 0.0f;
        o[1] = sid && s.requested[sid - 1] ? 1.0f : 0.0f;
        o += 2;
      }
    }
  }

  // IMAGE: out[l][r][c] for each chosen layer l, the window cell (r, c) after the rotation
  // np.rot90(window, k, axes=(1, 2)) with k = 0 (UP), 1 (RIGHT), 2 (DOWN), 3 (LEFT) when
  // directional.
  void observe_image(const State& s, int i, float* out) const {
    const int n = window(), x0 = s.ax[i] - sensor_, y0 = s.ay[i] - sensor_;
    const int k = !directional_ ? 0 : s.dir[i] == kRightDir ? 1 : s.dir[i] == kDown ? 2 : s.dir[i] == kLeftDir ? 3 : 0;
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) {
        // rot90 by k: out[r][c] = window[a][b]
        const int a = k == 0 ? r : k == 1 ? c : k == 2 ? n - 1 - r : n - 1 - c;
        const int b = k == 0 ? c : k == 1 ? n - 1 - r : k == 2 ? n - 1 - c : r;
        const int cx = x0 + b, cy = y0 + a;
        const bool inside = cx >= 0 && cx < W_ && cy >= 0 && cy < H_;
        const std::size_t cell = inside ? static_cast<std::size_t>(cy) * W_ + cx : 0;
        const std::int32_t aid = inside ? s.grid_agent[cell] : 0;
        const std::int32_t sid = inside ? s.grid_shelf[cell] : 0;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
          float v = 0.0f;
          switch (layers_[l]) {
            case kShelves: v = sid ? 1.0f : 0.0f; break;
            case kRequests: v = sid && s.requested[sid - 1] ? 1.0f : 0.0f; break;
            case kAgents: v = aid ? 1.0f : 0.0f; break;
            case kAgentDirection: v = aid ? static_cast<float>(s.dir[aid - 1] + 1) : 0.0f; break;
            case kAgentLoad: v = aid && s.carrying[aid - 1] ? 1.0f : 0.0f; break;
            case kGoals: v = inside && goal_[cell] ? 1.0f : 0.0f; break;
            default: v = inside && !aid ? 1.0f : 0.0f; break;  // kAccessible
          }
          out[(l * n + r) * n + c] = v;
        }
      }
    }
  }

  // State arrays: agent_x, agent_y, agent_dir, carrying (shelf id, 0: none), has_delivered
  // [E, agents]; shelf_x, shelf_y [E, shelves]; request_queue [E, queue] (shelf ids, ordered);
  // action (moves), message (bits) [E, agents]; reward [E, agents] <f8; steps, inactive_steps [E]; rng [E, 6] <u8:
  // PCG64 state (high, low), inc (high, low), has_uint32, uinteger (numpy's bit_generator.state).
  static std::vector<StateArray> export_states(const std::vector<State>& states) {
    const auto E = static_cast<std::int64_t>(states.size());
    const State& s0 = states.front();
    const auto A = static_cast<std::int64_t>(s0.ax.size()), S = static_cast<std::int64_t>(s0.sx.size()),
               Q = static_cast<std::int64_t>(s0.queue.size());
    StateArrays out;
    auto* ax = out.add<std::int64_t>("agent_x", {E, A});
    auto* ay = out.add<std::int64_t>("agent_y", {E, A});
    auto* dir = out.add<std::int64_t>("agent_dir", {E, A});
    auto* carrying = out.add<std::int64_t>("carrying", {E, A});
    auto* delivered = out.add<std::int64_t>("has_delivered", {E, A});
    auto* sx = out.add<std::int64_t>("shelf_x", {E, S});
    auto* sy = out.add<std::int64_t>("shelf_y", {E, S});
    auto* queue = out.add<std::int64_t>("request_queue", {E, Q});
    auto* action = out.add<std::int64_t>("action", {E, A});
    auto* message = out.add<std::int64_t>("message", {E, A});
    auto* reward = out.add<double>("reward", {E, A});
    auto* steps = out.add<std::int64_t>("steps", {E});
    auto* inactive = out.add<std::int64_t>("inactive_steps", {E});
    auto* rng = out.add<std::uint64_t>("rng", {E, 6});
    for (std::int64_t e = 0; e < E; ++e) {
      const State& s = states[e];
      for (std::int64_t i = 0; i < A; ++i) {
        ax[e * A + i] = s.ax[i];
        ay[e * A + i] = s.ay[i];
        dir[e * A + i] = s.dir[i];
        carrying[e * A + i] = s.carrying[i];
        delivered[e * A + i] = s.has_delivered[i];
        action[e * A + i] = s.action[i];
        message[e * A + i] = s.message[i];
        reward[e * A + i] = s.reward[i];
      }
      for (std::int64_t j = 0; j < S; ++j) {
        sx[e * S + j] = s.sx[j];
        sy[e * S + j] = s.sy[j];
      }
      for (std::int64_t q = 0; q < Q; ++q) queue[e * Q + q] = s.queue[q];
      steps[e] = s.steps;
      inactive[e] = s.inactive;
      std::uint64_t* r = rng + 6 * e;
      r[0] = static_cast<std::uint64_t>(s.rng.state >> 64);
      r[1] = static_cast<std::uint64_t>(s.rng.state);
      r[2] = static_cast<std::uint64_t>(s.rng.inc >> 64);
      r[3] = static_cast<std::uint64_t>(s.rng.inc);
      r[4] = s.rng.has_uint32;
      r[5] = s.rng.uinteger;
    }
    return out.take();
  }

  // Values are checked (a state the rules cannot produce raises InvalidArgument naming it).
  static void import_states(std::vector<State>& states, const std::vector<StateArray>& arrays);

 private:
  // The reference's _make_layout_from_str: strip, drop spaces, one row per line.
  void parse_layout(const std::string& text) {
    auto fail = [](const std::string& what) { throw InvalidArgument("rware: layout " + what); };
    const auto first = text.find_first_not_of(" \t\n\r\f\v"), last = text.find_last_not_of(" \t\n\r\f\v");
    std::vector<std::string> rows(1);
    if (first != std::string::npos) {
      for (char ch : text.substr(first, last - first + 1)) {
        if (ch == ' ') continue;
        if (ch == '\n') rows.emplace_back();
        else rows.back() += ch;
      }
    }
    if (rows.front().empty()) fail("must not be empty");
    H_ = static_cast<int>(rows.size());
    W_ = static_cast<int>(rows.front().size());
    if (H_ > kMaxLayoutSide || W_ > kMaxLayoutSide) fail("may have at most 1000 rows and columns");
    highway_.assign(static_cast<std::size_t>(H_) * W_, 0);
    goals_.clear();
    for (int y = 0; y < H_; ++y) {
      if (static_cast<int>(rows[y].size()) != W_) {
        fail("must be rectangular: row " + std::to_string(y) + " has " + std::to_string(rows[y].size()) + " cells, row 0 has " + std::to_string(W_));
      }
      for (int x = 0; x < W_; ++x) {
        const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(rows[y][x])));
        if (ch != 'x' && ch != '.' && ch != 'g') {
          fail("holds only 'x' (shelf), '.' (corridor) and 'g' (goal); row " + std::to_string(y) + " column " + std::to_string(x) +
               " is '" + std::string(1, rows[y][x]) + "'");
        }
        const std::size_t cell = static_cast<std::size_t>(y) * W_ + x;
        highway_[cell] = ch != 'x';
        if (ch == 'g') goals_.emplace_back(x, y);
      }
    }
    if (goals_.empty()) fail("needs at least one goal ('g')");
    finish_layout();
  }

  void make_layout() {
    H_ = (column_height_ + 1) * shelf_rows_ + 2;
    W_ = 3 * shelf_columns_ + 1;
    goals_ = {{W_ / 2 - 1, H_ - 1}, {W_ / 2, H_ - 1}};
    highway_.assign(static_cast<std::size_t>(H_) * W_, 0);
    for (int y = 0; y < H_; ++y) {
      for (int x = 0; x < W_; ++x) {
        const bool vertical = x % 3 == 0, horizontal = y % (column_height_ + 1) == 0, delivery = y == H_ - 1;
        const bool queue = y > H_ - (column_height_ + 3) && (x == W_ / 2 - 1 || x == W_ / 2);
        highway_[static_cast<std::size_t>(y) * W_ + x] = vertical || horizontal || delivery || queue;
      }
    }
    finish_layout();
  }

  // From highway_ and goals_ (either layout): the goal cells' map and the shelves' home cells.
  void finish_layout() {
    goal_.assign(highway_.size(), 0);
    for (const auto& [gx, gy] : goals_) goal_[static_cast<std::size_t>(gy) * W_ + gx] = 1;
    home_x_.clear();
    home_y_.clear();
    for (int y = 0; y < H_; ++y) {
      for (int x = 0; x < W_; ++x) {
        if (!highway_[static_cast<std::size_t>(y) * W_ + x]) {
          home_x_.push_back(x);
          home_y_.push_back(y);
        }
      }
    }
  }

 public:
  // Rebuilds the derived arrays (the reference's _recalc_grid, plus the requested flags).
  static void recalc(State& s) {
    std::fill(s.grid_agent.begin(), s.grid_agent.end(), 0);
    std::fill(s.grid_shelf.begin(), s.grid_shelf.end(), 0);
    for (std::size_t j = 0; j < s.sx.size(); ++j) s.grid_shelf[static_cast<std::size_t>(s.sy[j]) * s.W + s.sx[j]] = static_cast<std::int32_t>(j + 1);
    for (std::size_t i = 0; i < s.ax.size(); ++i) s.grid_agent[static_cast<std::size_t>(s.ay[i]) * s.W + s.ax[i]] = static_cast<std::int32_t>(i + 1);
    std::fill(s.requested.begin(), s.requested.end(), 0);
    for (auto q : s.queue) s.requested[q - 1] = 1;
  }

 private:
  static std::int32_t turn(std::int32_t dir, int by) {
    static constexpr std::int32_t kCycle[4] = {kUp, kRightDir, kDown, kLeftDir};  // clockwise
    int k = 0;
    while (kCycle[k] != dir) ++k;
    return kCycle[(k + by + 4) % 4];
  }

  std::pair<int, int> target(const State& s, int i, std::int64_t action) const {
    const int x = s.ax[i], y = s.ay[i];
    if (action != kForward) return {x, y};
    switch (s.dir[i]) {
      case kUp: return {x, std::max(0, y - 1)};
      case kDown: return {x, std::min(H_ - 1, y + 1)};
      case kLeftDir: return {std::max(0, x - 1), y};
      default: return {std::min(W_ - 1, x + 1), y};
    }
  }

  // The reference's conflict resolution (networkx on the move graph), see the header comment.
  void resolve_moves(State& s, std::int64_t* act) const;

  int shelf_columns_, column_height_, shelf_rows_, n_, sensor_, queue_size_, max_inactive_, max_steps_, reward_type_;
  bool normalised_;
  int msg_bits_;
  bool image_, directional_;
  std::vector<int> layers_;  // IMAGE: ImageLayer per channel
  int H_ = 0, W_ = 0;
  std::vector<std::pair<int, int>> goals_;  // (x, y), in the reference's order
  std::vector<std::uint8_t> highway_, goal_;
  std::vector<std::int32_t> home_x_, home_y_;
};

}  // namespace genmarl::rware

#include "genmarl/envs/rware/warehouse_impl.hpp"
