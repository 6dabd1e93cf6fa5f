// Level-Based Foraging with the semantics of the lbforaging 2.0.0 package
// (lbforaging/foraging/environment.py, ForagingEnv).
//
// Players with levels walk a grid; food items have levels. A LOAD succeeds when the loading
// players adjacent to a food sum to at least its level: the food disappears and each of them
// earns level * food_level (divided by the sum of their levels and by the total food level
// spawned, when normalize_reward). The reference's rules are reproduced exactly:
//   - an action that is not valid now (moving off the grid or onto food, loading with no
//     adjacent food) becomes NONE; the action mask reports the valid ones;
//   - every player claims a cell (NONE and LOAD claim their own); a cell claimed by one
//     player is taken, a cell claimed by several is taken by none. So two players may swap,
//     and a player that stays because its target was contested can be joined on its cell by
//     one that moved in: as in the reference, two players can share a cell;
//   - loads are resolved one loading player at a time: its food is the first of north, south,
//     west, east holding food (with the reference's `row > 1` / `col > 1` tests), the group is
//     every loading player adjacent to that food. The reference pops players from a Python set
//     (memory-address order); genmarl takes them in agent order;
//   - a failed load costs each player of the group `penalty`;
//   - the episode terminates when no food is left; max_episode_steps is a time limit
//     (the reference reports it as done=True, truncated=False; genmarl reports truncated).
// Observations (float32), as the reference's: food (row, col, level) x max_num_food, then
// players (row, col[, level]) with self first, positions relative to the agent's clipped
// view window, (-1, -1, 0) for slots nothing fills; or, with grid_observation, three
// [2 * sight + 1]^2 layers (agent levels, food levels, accessible cells) around the agent.
// Reset draws with genmarl's own random streams (same distribution, different draws).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "genmarl/core/rng.hpp"
#include "genmarl/env/batched_env.hpp"
#include "genmarl/env/spec.hpp"

namespace genmarl::lbf {

enum Action : std::int64_t { kNone = 0, kNorth = 1, kSouth = 2, kWest = 3, kEast = 4, kLoad = 5 };
inline constexpr int kNumActions = 6;
inline constexpr int kMaxPlayers = 64;
inline constexpr int kSpawnAttempts = 1000;

class Foraging {
 public:
  static constexpr const char* kName = "lbf";

  struct State {
    std::vector<std::int32_t> field;   // [rows * cols] food level per cell, 0: none (int32: a
                                       // 1024-env batch's fields stay in cache)
    std::vector<std::int64_t> pos;     // [players, 2] (row, col)
    std::vector<std::int64_t> level;   // [players]
    std::vector<std::int64_t> action;  // [players] the actions of the next step
    std::vector<double> reward;        // [players] the last step's rewards
    double food_spawned = 0.0;         // total food level at reset (reward normaliser)
    std::int64_t steps = 0;
    std::int64_t rows = 0, cols = 0;   // fixed by the scenario (not part of the exported state)
    // derived from field (rebuilt on reset/import, kept on loads): the cells holding food in
    // ascending (row-major) order and their total level, so steps never scan the whole grid
    std::vector<std::int64_t> food_cells;
    double food_left = 0.0;
  };

  // Rebuilds the derived food list from the field.
  static void index_food(State& s) {
    s.food_cells.clear();
    s.food_left = 0.0;
    for (std::size_t k = 0; k < s.field.size(); ++k) {
      if (s.field[k] != 0) {
        s.food_cells.push_back(static_cast<std::int64_t>(k));
        s.food_left += static_cast<double>(s.field[k]);
      }
    }
  }

  static std::vector<ParamSpec> param_specs() {
    return {
        {"players", ParamKind::kInt, 2, "number of players (agents)"},
        {"min_player_level", ParamKind::kIntTuple, 0, "lowest player level: one for all, or one per player", 0, {1}},
        {"max_player_level", ParamKind::kIntTuple, 0, "highest player level: one for all, or one per player", 0, {2}},
        {"min_food_level", ParamKind::kIntTuple, 0, "lowest food level: one for all, or one per food item", 0, {1}},
        {"max_food_level", ParamKind::kOptionalIntList, genmarl::kNone,
         "highest food level: one for all, one per food item, or None (the sum of the three lowest player levels)", 0,
         {genmarl::kNone}},
        {"field_size", ParamKind::kIntTuple, 8, "grid (rows, cols); an int means square", 2},
        {"max_num_food", ParamKind::kInt, 2, "food items spawned per episode (fewer if they do not fit)"},
        {"sight", ParamKind::kInt, 8, "view radius in cells (field size: full observability)"},
        {"max_episode_steps", ParamKind::kInt, 50, "steps until the episode is truncated"},
        {"force_coop", ParamKind::kBool, 0, "every food gets max_food_level: loading needs several players"},
        {"normalize_reward", ParamKind::kBool, 1, "divide rewards by the group's level sum and the food spawned"},
        {"grid_observation", ParamKind::kBool, 0, "observe [3, 2*sight+1, 2*sight+1] layers instead of a vector"},
        {"observe_agent_levels", ParamKind::kBool, 1, "include player levels in observations"},
        {"penalty", ParamKind::kFloat, 0.0, "reward subtracted from each player of a failed load"},
    };
  }

  explicit Foraging(const Params& p)
      : players_(p.get_int("players")),
        max_num_food_(p.get_int("max_num_food")),
        sight_(p.get_int("sight")),
        max_episode_steps_(p.get_int("max_episode_steps")),
        force_coop_(p.get_bool("force_coop")),
        normalize_reward_(p.get_bool("normalize_reward")),
        grid_observation_(p.get_bool("grid_observation")),
        observe_levels_(p.get_bool("observe_agent_levels")),
        penalty_(p.get("penalty")) {
    const auto size = p.get_ints("field_size");
    rows_ = size[0];
    cols_ = size[1];
    auto fail = [](const std::string& what) { throw InvalidArgument("lbf: " + what); };
    if (rows_ < 3 || cols_ < 3 || rows_ > 1024 || cols_ > 1024) {
      fail("field_size must be (rows, cols) with each in [3, 1024] (food spawns away from the border), got (" +
           std::to_string(rows_) + ", " + std::to_string(cols_) + ")");
    }
    if (players_ < 1 || players_ > kMaxPlayers) fail("players must be in [1, 64], got " + std::to_string(players_));
    if (players_ > rows_ * cols_) {
      fail("players (" + std::to_string(players_) + ") must fit on the field_size grid (" + std::to_string(rows_ * cols_) +
           " cells)");
    }
    const int interior = (rows_ - 2) * (cols_ - 2);
    if (max_num_food_ < 1 || max_num_food_ > interior) {
      fail("max_num_food must be in [1, " + std::to_string(interior) + "] (cells away from the border), got " +
           std::to_string(max_num_food_));
    }
    // Levels: one value for all, or one per player / food item (the reference's lists).
    auto levels = [&](const char* name, int count, const char* per) {
      std::vector<int> v = p.get_ints(name);
      const std::size_t given = v.size();
      if (given == 1) {
        const int one = v[0];  // a copy: assign(n, v[0]) may free v[0] first (libc++ does)
        v.assign(count, one);
      }
      if (static_cast<int>(v.size()) != count) {
        fail(std::string(name) + " must be one integer or a list of " + std::to_string(count) + " (one per " + per +
             "), got a list of " + std::to_string(given));
      }
      return v;
    };
    min_player_level_ = levels("min_player_level", players_, "player");
    max_player_level_ = levels("max_player_level", players_, "player");
    for (int i = 0; i < players_; ++i) {
      if (min_player_level_[i] < 1 || max_player_level_[i] < min_player_level_[i] || max_player_level_[i] > (1 << 20)) {
        fail("player levels need 1 <= min_player_level <= max_player_level <= 2**20 for each player, got " +
             std::to_string(min_player_level_[i]) + " and " + std::to_string(max_player_level_[i]) + " for player " +
             std::to_string(i));
      }
    }
    min_food_level_ = levels("min_food_level", max_num_food_, "food item");
    const std::vector<int> max_food = p.get_ints("max_food_level");
    if (!(max_food.size() == 1 && max_food[0] == -1)) max_food_level_ = levels("max_food_level", max_num_food_, "food item");
    for (int k = 0; k < max_num_food_; ++k) {
      if (min_food_level_[k] < 1) fail("min_food_level must be >= 1, got " + std::to_string(min_food_level_[k]));
      if (!max_food_level_.empty() && max_food_level_[k] < min_food_level_[k]) {
        fail("max_food_level must be None or >= min_food_level for each food item, got " +
             std::to_string(max_food_level_[k]) + " (min_food_level " + std::to_string(min_food_level_[k]) + ")");
      }
    }
    auto all_equal = [](const std::vector<int>& v) {
      return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) == v.end();
    };
    uniform_players_ = all_equal(min_player_level_) && all_equal(max_player_level_);
    uniform_food_ = all_equal(min_food_level_) && all_equal(max_food_level_);
    if (sight_ < (grid_observation_ ? 1 : 0) || sight_ > 1024) {
      fail("sight must be in [" + std::string(grid_observation_ ? "1" : "0") + ", 1024], got " + std::to_string(sight_));
    }
    if (max_episode_steps_ < 1) fail("max_episode_steps must be >= 1, got " + std::to_string(max_episode_steps_));
    if (!std::isfinite(penalty_)) fail("penalty must be finite");
    auto table = std::make_shared<std::vector<std::int32_t>>(2 * static_cast<std::size_t>(rows_) * cols_);
    for (int k = 0; k < rows_ * cols_; ++k) {
      (*table)[k] = k / cols_;
      (*table)[static_cast<std::size_t>(rows_) * cols_ + k] = k % cols_;
    }
    cells_ = table;
    cell_row_ = table->data();
    cell_col_ = table->data() + static_cast<std::size_t>(rows_) * cols_;
  }

  // The reference's registered ids: Foraging[-2s]-{s}x{s}-{p}p-{f}f[-coop]-v3 (sight 2 with -2s,
  // else the field size) and, after lbforaging.register_grid_envs(),
  // Foraging-grid[-{k}s]-{s}x{s}-{p}p-{f}f[-coop]-v3 (grid observations with sight k).
  static std::optional<Params> parse_alias(const std::string& id) {
    static const std::regex vec_re(R"(Foraging(-2s)?-(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?-v3)");
    static const std::regex grid_re(R"(Foraging-grid(?:-(\d+)s)?-(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?-v3)");
    std::smatch m;
    Params p;
    if (std::regex_match(id, m, vec_re) || std::regex_match(id, m, grid_re)) {
      const bool grid = id.rfind("Foraging-grid", 0) == 0;
      const int s = std::stoi(m[2].str());
      if (s != std::stoi(m[3].str()) || s < 5 || s > 19) return std::nullopt;
      const int players = std::stoi(m[4].str()), food = std::stoi(m[5].str());
      if (players < 2 || players > 9 || food < 1 || food > 4) return std::nullopt;
      int sight = s;
      if (grid) {
        if (m[1].matched) sight = std::stoi(m[1].str());
        if (sight < 1 || sight >= s + (m[1].matched ? 0 : 1)) return std::nullopt;
      } else if (m[1].matched) {
        sight = 2;
      }
      p.set("players", players);
      p.set("min_player_level", 1);
      p.set("max_player_level", 2);
      p.set_tuple("field_size", {static_cast<double>(s), static_cast<double>(s)});
      p.set("min_food_level", 1);
      p.set("max_food_level", genmarl::kNone);
      p.set("max_num_food", food);
      p.set("sight", sight);
      p.set("max_episode_steps", 50);
      p.set("force_coop", m[6].matched ? 1 : 0);
      p.set("grid_observation", grid ? 1 : 0);
      p.set("penalty", 0.0);
      return p;
    }
    return std::nullopt;
  }

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int num_players() const { return players_; }
  int obs_dim() const {
    if (grid_observation_) return 3 * (2 * sight_ + 1) * (2 * sight_ + 1);
    return 3 * max_num_food_ + (observe_levels_ ? 3 : 2) * players_;
  }

  EnvSpec spec() const {
    EnvSpec s;
    s.name = kName;
    s.family = "lbf";
    s.max_cycles = max_episode_steps_;
    s.metric_names = {"food_collected"};
    for (int i = 0; i < players_; ++i) {
      AgentSpec a;
      a.name = "agent_" + std::to_string(i);
      a.group = "agent";
      if (grid_observation_) a.obs_shape = {3, 2 * sight_ + 1, 2 * sight_ + 1};
      else a.obs_shape = {obs_dim()};
      obs_bounds(a.obs_low, a.obs_high);
      a.action = ActionSpace{false, kNumActions, 0.0f, 0.0f};
      a.action_mask = true;
      s.agents.push_back(a);
    }
    s.finalize();
    return s;
  }

  // The reference's observation space bounds (its first coordinate is bounded by cols - 1).
  void obs_bounds(std::vector<float>& low, std::vector<float>& high) const {
    const float max_player = static_cast<float>(*std::max_element(max_player_level_.begin(), max_player_level_.end()));
    const float max_food = static_cast<float>(  // the highest food level possible (the reference's bound)
        max_food_level_.empty() ? sum_of_lowest_three(max_player_level_.data(), players_)
                                : *std::max_element(max_food_level_.begin(), max_food_level_.end()));
    low.clear();
    high.clear();
    if (grid_observation_) {
      const int cells = (2 * sight_ + 1) * (2 * sight_ + 1);
      const float layer_high[3] = {observe_levels_ ? max_player : 1.0f, max_food, 1.0f};
      for (float h : layer_high) {
        low.insert(low.end(), cells, 0.0f);
        high.insert(high.end(), cells, h);
      }
      return;
    }
    for (int k = 0; k < max_num_food_; ++k) {
      low.insert(low.end(), {-1.0f, -1.0f, 0.0f});
      high.insert(high.end(), {static_cast<float>(cols_ - 1), static_cast<float>(rows_ - 1), max_food});
    }
    for (int q = 0; q < players_; ++q) {
      low.insert(low.end(), {-1.0f, -1.0f});
      high.insert(high.end(), {static_cast<float>(cols_ - 1), static_cast<float>(rows_ - 1)});
      if (observe_levels_) {
        low.push_back(0.0f);
        high.push_back(max_player);
      }
    }
  }

  void init_state(State& s) const {
    s.rows = rows_;
    s.cols = cols_;
    s.food_cells.reserve(static_cast<std::size_t>(rows_) * cols_);
    s.field.assign(static_cast<std::size_t>(rows_) * cols_, 0);
    s.pos.assign(2 * static_cast<std::size_t>(players_), 0);
    s.level.assign(players_, 1);
    s.action.assign(players_, kNone);
    s.reward.assign(players_, 0.0);
  }

  void reset(State& s, CounterRng& rng) const {
    std::fill(s.field.begin(), s.field.end(), 0);
    std::fill(s.reward.begin(), s.reward.end(), 0.0);
    std::fill(s.action.begin(), s.action.end(), kNone);
    s.steps = 0;
    // Per-player level ranges go to the players in a random order, as the reference permutes them.
    std::array<int, kMaxPlayers> order{};
    for (int i = 0; i < players_; ++i) order[i] = i;
    if (!uniform_players_) shuffle(order.data(), players_, rng);
    // Players: a random free cell each (1,000 tries as the reference, then the first free cell).
    for (int i = 0; i < players_; ++i) {
      bool placed = false;
      for (int t = 0; t < kSpawnAttempts && !placed; ++t) {
        const auto r = static_cast<std::int64_t>(rng.below(rows_)), c = static_cast<std::int64_t>(rng.below(cols_));
        if (free_cell(s, r, c, i)) {
          s.pos[2 * i] = r;
          s.pos[2 * i + 1] = c;
          placed = true;
        }
      }
      for (std::int64_t k = 0; k < static_cast<std::int64_t>(rows_) * cols_ && !placed; ++k) {
        if (free_cell(s, k / cols_, k % cols_, i)) {
          s.pos[2 * i] = k / cols_;
          s.pos[2 * i + 1] = k % cols_;
          placed = true;
        }
      }
      const std::int64_t lo = min_player_level_[order[i]], hi = max_player_level_[order[i]];
      s.level[i] = lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(hi - lo + 1)));
    }
    // Food: 1,000 tries in all, away from the border and from other food. Without
    // max_food_level, every item's highest level is the sum of the three lowest player levels.
    const std::int64_t sum_lowest = max_food_level_.empty() ? sum_of_lowest_three(s.level.data(), players_) : 0;
    // Per-item level ranges go to the items in a random order (the k-th item placed takes range
    // food_order[k]), as the reference permutes them.
    std::vector<int> food_order;  // only drawn when the ranges differ
    if (!uniform_food_) {
      food_order.resize(max_num_food_);
      for (int k = 0; k < max_num_food_; ++k) food_order[k] = k;
      shuffle(food_order.data(), max_num_food_, rng);
    }
    int count = 0;
    for (int t = 0; t < kSpawnAttempts && count < max_num_food_; ++t) {
      const auto r = 1 + static_cast<std::int64_t>(rng.below(rows_ - 2)), c = 1 + static_cast<std::int64_t>(rng.below(cols_ - 2));
      if (food_near(s, r, c) || !free_cell(s, r, c, players_)) continue;
      const int k = uniform_food_ ? count : food_order[count];
      const std::int64_t hi = max_food_level_.empty() ? sum_lowest : max_food_level_[k];
      // force_coop: every item gets its highest level. A lowest level above the highest (only
      // possible without max_food_level) is clamped to it, where the reference would fail.
      const std::int64_t lo = force_coop_ ? hi : std::min<std::int64_t>(min_food_level_[k], hi);
      s.field[r * cols_ + c] = static_cast<std::int32_t>(lo == hi ? lo : lo + static_cast<std::int64_t>(rng.below(hi - lo + 1)));
      ++count;
    }
    index_food(s);
    s.food_spawned = s.food_left;
  }

  void apply_actions(State& s, const std::int64_t* discrete, const float*, int) const {
    for (int i = 0; i < players_; ++i) s.action[i] = discrete[i];  // a loop: a few values, no memmove call
  }

  void step(State& s, CounterRng&) const {
    s.steps += 1;
    std::int64_t act[kMaxPlayers], target[kMaxPlayers], target_r[kMaxPlayers], target_c[kMaxPlayers];
    for (int i = 0; i < players_; ++i) {
      s.reward[i] = 0.0;
      act[i] = allowed(around(s, i), s.action[i]) ? s.action[i] : kNone;
      const std::int64_t r = s.pos[2 * i], c = s.pos[2 * i + 1];
      target_r[i] = r + (act[i] == kNorth ? -1 : act[i] == kSouth ? 1 : 0);
      target_c[i] = c + (act[i] == kWest ? -1 : act[i] == kEast ? 1 : 0);
      target[i] = target_r[i] * cols_ + target_c[i];
    }
    // A cell claimed by exactly one player is taken; contested cells by none.
    for (int i = 0; i < players_; ++i) {
      int claims = 0;
      for (int j = 0; j < players_; ++j) claims += target[j] == target[i] ? 1 : 0;
      if (claims == 1) {
        s.pos[2 * i] = target_r[i];
        s.pos[2 * i + 1] = target_c[i];
      }
    }
    // Loads, one loading player (and the group around its food) at a time.
    std::uint64_t loading = 0;
    for (int i = 0; i < players_; ++i) loading |= act[i] == kLoad ? (std::uint64_t{1} << i) : 0;
    while (loading != 0) {
      const int p = std::countr_zero(loading);
      loading &= loading - 1;
      const std::int64_t cell = adjacent_food_location(s, s.pos[2 * p], s.pos[2 * p + 1]);
      if (cell < 0) continue;  // no food found (only for states the reference cannot reach)
      const std::int64_t fr = cell / cols_, fc = cell % cols_, food = s.field[cell];
      std::uint64_t group = 0;
      std::int64_t level_sum = 0;
      for (int j = 0; j < players_; ++j) {
        const std::int64_t dr = std::abs(s.pos[2 * j] - fr), dc = std::abs(s.pos[2 * j + 1] - fc);
        const bool adjacent = (dr == 1 && dc == 0) || (dc == 1 && dr == 0);
        if (adjacent && (j == p || (loading >> j) & 1)) {
          group |= std::uint64_t{1} << j;
          level_sum += s.level[j];
        }
      }
      loading &= ~group;
      if (level_sum < food) {
        for (int j = 0; j < players_; ++j) if ((group >> j) & 1) s.reward[j] -= penalty_;
        continue;
      }
      for (int j = 0; j < players_; ++j) {
        if (!((group >> j) & 1)) continue;
        double r = static_cast<double>(s.level[j] * food);
        if (normalize_reward_) r = r / (static_cast<double>(level_sum) * s.food_spawned);
        s.reward[j] = r;
      }
      s.field[cell] = 0;
      s.food_left -= static_cast<double>(food);
      auto it = std::find(s.food_cells.begin(), s.food_cells.end(), cell);
      if (it != s.food_cells.end()) s.food_cells.erase(it);  // no reallocation
    }
  }

  void rewards(State& s, double* out) const {
    for (int i = 0; i < players_; ++i) out[i] = s.reward[i];
  }

  // The step reads the players, their actions and the field around them, then the food list.
  void prefetch(const State& s) const {
    __builtin_prefetch(s.pos.data());
    __builtin_prefetch(s.action.data());
    __builtin_prefetch(s.level.data());
    __builtin_prefetch(s.food_cells.data());
    const char* f = reinterpret_cast<const char*>(s.field.data());
    const std::size_t bytes = s.field.size() * sizeof(std::int32_t);
    for (std::size_t k = 0; k < bytes; k += 64) __builtin_prefetch(f + k);
  }

  bool is_terminal(const State& s) const { return s.food_cells.empty(); }
  std::int64_t steps(const State& s) const { return s.steps; }

  void action_mask(const State& s, int agent, bool* out) const {
    const Around n = around(s, agent);
    for (int a = 0; a < kNumActions; ++a) out[a] = allowed(n, a);
  }

  // food_collected: the share of the spawned food level loaded so far (1 when all is eaten).
  void update_metrics(const State& s, double* acc) const {
    acc[0] = s.food_spawned > 0.0 ? 1.0 - s.food_left / s.food_spawned : 0.0;
  }

  void observe(const State& s, int agent, float* out) const {
    if (grid_observation_) observe_grid(s, agent, out);
    else observe_vector(s, agent, out);
  }

  // State arrays: field [E, rows, cols] <i8, pos [E, players, 2] <i8 (row, col), level [E, players]
  // <i8, action [E, players] <i8, reward [E, players] <f8, food_spawned [E] <f8, steps [E] <i8.
  static std::vector<StateArray> export_states(const std::vector<State>& states) {
    const auto E = static_cast<std::int64_t>(states.size());
    const State& s0 = states.front();
    const auto P = static_cast<std::int64_t>(s0.level.size());
    StateArrays out;
    auto* field = out.add<std::int64_t>("field", {E, s0.rows, s0.cols});
    auto* pos = out.add<std::int64_t>("pos", {E, P, 2});
    auto* level = out.add<std::int64_t>("level", {E, P});
    auto* action = out.add<std::int64_t>("action", {E, P});
    auto* reward = out.add<double>("reward", {E, P});
    auto* spawned = out.add<double>("food_spawned", {E});
    auto* steps = out.add<std::int64_t>("steps", {E});
    for (std::int64_t e = 0; e < E; ++e) {
      const State& s = states[e];
      std::copy(s.field.begin(), s.field.end(), field + e * s.rows * s.cols);
      std::copy(s.pos.begin(), s.pos.end(), pos + e * 2 * P);
      std::copy(s.level.begin(), s.level.end(), level + e * P);
      std::copy(s.action.begin(), s.action.end(), action + e * P);
      std::copy(s.reward.begin(), s.reward.end(), reward + e * P);
      spawned[e] = s.food_spawned;
      steps[e] = s.steps;
    }
    return out.take();
  }

  // Shapes and dtypes were validated by VectorEnv::set_state; values are checked here (a state
  // the rules cannot produce, e.g. a player on food, raises InvalidArgument; players may share a
  // cell, which the reference's move rule allows).
  static void import_states(std::vector<State>& states, const std::vector<StateArray>& arrays) {
    const auto* field = state_array<std::int64_t>(arrays, "field");
    const auto* pos = state_array<std::int64_t>(arrays, "pos");
    const auto* level = state_array<std::int64_t>(arrays, "level");
    const auto* action = state_array<std::int64_t>(arrays, "action");
    const auto* reward = state_array<double>(arrays, "reward");
    const auto* spawned = state_array<double>(arrays, "food_spawned");
    const auto* steps = state_array<std::int64_t>(arrays, "steps");
    auto bad = [](const std::string& what) { throw InvalidArgument("set_state: " + what); };
    for (std::size_t e = 0; e < states.size(); ++e) {
      State& s = states[e];
      const std::size_t cells = s.field.size(), P = s.level.size();
      double food_sum = 0.0;
      for (std::size_t k = 0; k < cells; ++k) {
        const std::int64_t f = field[e * cells + k];
        if (f < 0 || f > 2147483647) bad("'field' holds food levels: integers in [0, 2**31)");
        food_sum += static_cast<double>(f);
      }
      for (std::size_t i = 0; i < P; ++i) {
        const std::int64_t r = pos[e * 2 * P + 2 * i], c = pos[e * 2 * P + 2 * i + 1];
        if (r < 0 || r >= s.rows || c < 0 || c >= s.cols) bad("'pos' must lie on the grid");
        if (field[e * cells + r * s.cols + c] != 0) bad("a player cannot stand on food");
        const std::int64_t lv = level[e * P + i];
        if (lv < 1 || lv > (std::int64_t{1} << 20)) bad("'level' must be in [1, 2**20]");
        if (action[e * P + i] < 0 || action[e * P + i] >= kNumActions) bad("'action' must be in [0, 6)");
        if (!std::isfinite(reward[e * P + i])) bad("'reward' must be finite");
      }
      if (!std::isfinite(spawned[e]) || spawned[e] < food_sum || (food_sum > 0.0 && spawned[e] <= 0.0)) {
        bad("'food_spawned' must be finite and at least the food left on the field");
      }
      if (steps[e] < 0) bad("'steps' must be non-negative");
    }
    for (std::size_t e = 0; e < states.size(); ++e) {
      State& s = states[e];
      const std::size_t cells = s.field.size(), P = s.level.size();
      std::transform(field + e * cells, field + (e + 1) * cells, s.field.begin(),
                     [](std::int64_t f) { return static_cast<std::int32_t>(f); });  // checked above
      std::copy(pos + e * 2 * P, pos + (e + 1) * 2 * P, s.pos.begin());
      std::copy(level + e * P, level + (e + 1) * P, s.level.begin());
      std::copy(action + e * P, action + (e + 1) * P, s.action.begin());
      std::copy(reward + e * P, reward + (e + 1) * P, s.reward.begin());
      s.food_spawned = spawned[e];
      s.steps = steps[e];
      index_food(s);
    }
  }

 private:
  // The reference's highest food level without max_food_level: the sum of the three lowest of
  // n levels (the drawn ones at reset; the highest possible ones for the observation bounds).
  template <class T>
  static std::int64_t sum_of_lowest_three(const T* levels, int n) {
    std::array<std::int64_t, kMaxPlayers> sorted{};
    std::copy(levels, levels + n, sorted.begin());
    std::sort(sorted.begin(), sorted.begin() + n);
    std::int64_t sum = 0;
    for (int i = 0; i < std::min(3, n); ++i) sum += sorted[i];
    return sum;
  }

  // Fisher-Yates with the env's stream.
  static void shuffle(int* v, int n, CounterRng& rng) {
    for (int i = n - 1; i > 0; --i) std::swap(v[i], v[static_cast<int>(rng.below(static_cast<std::uint64_t>(i) + 1))]);
  }

  bool free_cell(const State& s, std::int64_t r, std::int64_t c, int placed_players) const {
    if (s.field[r * cols_ + c] != 0) return false;
    for (int j = 0; j < placed_players; ++j) {
      if (s.pos[2 * j] == r && s.pos[2 * j + 1] == c) return false;
    }
    return true;
  }

  // The reference's spawn test: food in the 3x3 block around (r, c), or in the plus of radius 2.
  bool food_near(const State& s, std::int64_t r, std::int64_t c) const {
    for (std::int64_t i = std::max<std::int64_t>(r - 1, 0); i < std::min<std::int64_t>(r + 2, rows_); ++i) {
      for (std::int64_t j = std::max<std::int64_t>(c - 1, 0); j < std::min<std::int64_t>(c + 2, cols_); ++j) {
        if (s.field[i * cols_ + j] > 0) return true;
      }
    }
    for (std::int64_t i = std::max<std::int64_t>(r - 2, 0); i < std::min<std::int64_t>(r + 3, rows_); ++i) {
      if (s.field[i * cols_ + c] > 0) return true;
    }
    for (std::int64_t j = std::max<std::int64_t>(c - 2, 0); j < std::min<std::int64_t>(c + 3, cols_); ++j) {
      if (s.field[r * cols_ + j] > 0) return true;
    }
    return false;
  }

  std::int64_t food_at(const State& s, std::int64_t r, std::int64_t c) const { return s.field[r * cols_ + c]; }

  // A player's cell and the food on its four sides (0 off the grid).
  struct Around {
    bool top, bottom, leftmost, rightmost;  // on the grid's border
    std::int64_t up, down, left, right;
  };
  Around around(const State& s, int agent) const {
    const std::int64_t r = s.pos[2 * agent], c = s.pos[2 * agent + 1];
    const std::int32_t* row = s.field.data() + r * cols_;
    return {r == 0, r == rows_ - 1, c == 0, c == cols_ - 1,
            r > 0 ? row[c - cols_] : 0, r < rows_ - 1 ? row[c + cols_] : 0, c > 0 ? row[c - 1] : 0, c < cols_ - 1 ? row[c + 1] : 0};
  }
  // The reference's _is_valid_action: the one rule behind action_mask() and step()'s
  // "an invalid action is NONE". LOAD reads the player's own (empty) cell off the grid, as the
  // reference's clamped indices do.
  static bool allowed(const Around& n, std::int64_t action) {
    switch (action) {
      case kNone: return true;
      case kNorth: return !n.top && n.up == 0;
      case kSouth: return !n.bottom && n.down == 0;
      case kWest: return !n.leftmost && n.left == 0;
      case kEast: return !n.rightmost && n.right == 0;
      case kLoad: return n.up + n.down + n.left + n.right > 0;
      default: return false;
    }
  }

  std::int64_t adjacent_food_location(const State& s, std::int64_t r, std::int64_t c) const {
    if (r > 1 && food_at(s, r - 1, c) > 0) return (r - 1) * cols_ + c;
    if (r < rows_ - 1 && food_at(s, r + 1, c) > 0) return (r + 1) * cols_ + c;
    if (c > 1 && food_at(s, r, c - 1) > 0) return r * cols_ + c - 1;
    if (c < cols_ - 1 && food_at(s, r, c + 1) > 0) return r * cols_ + c + 1;
    return -1;
  }

  void observe_vector(const State& s, int agent, float* out) const {
    const std::int64_t r = s.pos[2 * agent], c = s.pos[2 * agent + 1];
    const std::int64_t r0 = std::max<std::int64_t>(r - sight_, 0), r1 = std::min<std::int64_t>(r + sight_ + 1, rows_);
    const std::int64_t c0 = std::max<std::int64_t>(c - sight_, 0), c1 = std::min<std::int64_t>(c + sight_ + 1, cols_);
    for (int k = 0; k < max_num_food_; ++k) {
      out[3 * k] = -1.0f;
      out[3 * k + 1] = -1.0f;
      out[3 * k + 2] = 0.0f;
    }
    int k = 0;  // food in the window, row-major (the food list is in ascending cell order)
    for (const std::int64_t cell : s.food_cells) {
      const std::int64_t i = cell_row_[cell], j = cell_col_[cell];  // tables: no division per food
      if (i < r0 || i >= r1 || j < c0 || j >= c1 || k >= max_num_food_) continue;
      out[3 * k] = static_cast<float>(i - r0);
      out[3 * k + 1] = static_cast<float>(j - c0);
      out[3 * k + 2] = static_cast<float>(s.field[cell]);
      ++k;
    }
    const int width = observe_levels_ ? 3 : 2;
    float* pl = out + 3 * max_num_food_;
    for (int q = 0; q < players_; ++q) {
      pl[width * q] = -1.0f;
      pl[width * q + 1] = -1.0f;
      if (observe_levels_) pl[width * q + 2] = 0.0f;
    }
    // Self first, then the others in agent order. The reference's visibility test is
    // 0 <= offset from the clipped window's corner <= 2 * sight (not the window itself).
    int slot = 0;
    auto put = [&](int q) {
      const std::int64_t tr = s.pos[2 * q] - r0, tc = s.pos[2 * q + 1] - c0;
      if (std::min(tr, tc) < 0 || std::max(tr, tc) > 2 * static_cast<std::int64_t>(sight_)) return;
      pl[width * slot] = static_cast<float>(tr);
      pl[width * slot + 1] = static_cast<float>(tc);
      if (observe_levels_) pl[width * slot + 2] = static_cast<float>(s.level[q]);
      ++slot;
    };
    put(agent);
    for (int q = 0; q < players_; ++q) if (q != agent) put(q);
  }

  void observe_grid(const State& s, int agent, float* out) const {
    const std::int64_t w = 2 * static_cast<std::int64_t>(sight_) + 1;
    const std::int64_t top = s.pos[2 * agent] - sight_, left = s.pos[2 * agent + 1] - sight_;
    float* agents = out;
    float* foods = out + w * w;
    float* access = out + 2 * w * w;
    for (std::int64_t i = 0; i < w; ++i) {
      for (std::int64_t j = 0; j < w; ++j) {
        const std::int64_t r = top + i, c = left + j;
        const bool inside = r >= 0 && r < rows_ && c >= 0 && c < cols_;
        agents[i * w + j] = 0.0f;
        foods[i * w + j] = inside ? static_cast<float>(food_at(s, r, c)) : 0.0f;
        access[i * w + j] = inside && food_at(s, r, c) == 0 ? 1.0f : 0.0f;
      }
    }
    for (int q = 0; q < players_; ++q) {
      const std::int64_t i = s.pos[2 * q] - top, j = s.pos[2 * q + 1] - left;
      if (i < 0 || i >= w || j < 0 || j >= w) continue;
      agents[i * w + j] = observe_levels_ ? static_cast<float>(s.level[q]) : 1.0f;
      access[i * w + j] = 0.0f;
    }
  }

  int players_, max_num_food_, sight_, max_episode_steps_;
  // Level ranges per player and per food item (one value repeated when given once); no
  // max_food_level: empty (the sum of the three lowest player levels at each reset).
  std::vector<int> min_player_level_, max_player_level_, min_food_level_, max_food_level_;
  bool uniform_players_ = true, uniform_food_ = true;  // every range alike: no permutation drawn
  bool force_coop_, normalize_reward_, grid_observation_, observe_levels_;
  double penalty_;
  int rows_ = 0, cols_ = 0;
  // Row and column of each cell (shared by copies): an observation reads them per food, where a
  // 64-bit division each was a visible part of the step.
  std::shared_ptr<const std::vector<std::int32_t>> cells_;
  const std::int32_t* cell_row_ = nullptr;
  const std::int32_t* cell_col_ = nullptr;
};

}  // namespace genmarl::lbf
