// Level-Based Foraging and Multi-Robot Warehouse rules on hand-built states (the step-by-step comparison with the
// lbforaging package is tests/test_lbf.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "genmarl/env/output_buffers.hpp"
#include "genmarl/env/scenario.hpp"
#include "genmarl/envs/lbf/foraging.hpp"
#include "genmarl/envs/registry.hpp"

using namespace genmarl;
using lbf::Foraging;

static_assert(genmarl::Scenario<Foraging>);
static_assert(HasActionMask<Foraging> && HasMetrics<Foraging> && !HasCurriculum<Foraging>);

namespace {

Foraging make(int players, int rows, int cols, double penalty = 0.0, bool normalize = true) {
  Params p;
  p.set("players", players);
  p.set_tuple("field_size", {double(rows), double(cols)});
  p.set("penalty", penalty);
  p.set("normalize_reward", normalize ? 1 : 0);
  p.set("max_num_food", 1);
  return Foraging(p.resolve(Foraging::param_specs(), "lbf"));
}

struct World {
  Foraging sc;
  Foraging::State s;
  explicit World(Foraging f) : sc(std::move(f)) { sc.init_state(s); }
  void player(int i, int r, int c, int level) {
    s.pos[2 * i] = r;
    s.pos[2 * i + 1] = c;
    s.level[i] = level;
  }
  void food(int r, int c, int level) {
    s.field[r * sc.cols() + c] = level;
    s.food_spawned += level;
    Foraging::index_food(s);  // the derived food list, as reset and set_state rebuild it
  }
  void step(std::vector<std::int64_t> actions) {
    CounterRng rng(0, 0, 0);
    sc.apply_actions(s, actions.data(), nullptr, 0);
    sc.step(s, rng);
  }
  std::pair<std::int64_t, std::int64_t> at(int i) const { return {s.pos[2 * i], s.pos[2 * i + 1]}; }
};

}  // namespace

TEST(Lbf, ContestedCellIsTakenByNobodyButSwapsHappen) {
  World w(make(3, 6, 6));
  w.player(0, 2, 1, 1);
  w.player(1, 2, 3, 1);
  w.player(2, 4, 4, 1);
  w.food(1, 4, 1);
  w.step({lbf::kEast, lbf::kWest, lbf::kNone});  // both claim (2, 2)
  EXPECT_EQ(w.at(0), std::make_pair(std::int64_t{2}, std::int64_t{1}));
  EXPECT_EQ(w.at(1), std::make_pair(std::int64_t{2}, std::int64_t{3}));
  w.player(1, 2, 2, 1);
  w.step({lbf::kEast, lbf::kWest, lbf::kNone});  // swap through each other
  EXPECT_EQ(w.at(0), std::make_pair(std::int64_t{2}, std::int64_t{2}));
  EXPECT_EQ(w.at(1), std::make_pair(std::int64_t{2}, std::int64_t{1}));
}

TEST(Lbf, InvalidActionsActAsNone) {
  World w(make(1, 5, 5));
  w.player(0, 0, 0, 1);
  w.food(1, 1, 1);
  bool mask[6];
  w.sc.action_mask(w.s, 0, mask);
  EXPECT_TRUE(mask[lbf::kNone]);
  EXPECT_FALSE(mask[lbf::kNorth]);
  EXPECT_FALSE(mask[lbf::kWest]);
  EXPECT_FALSE(mask[lbf::kLoad]);
  w.step({lbf::kNorth});
  EXPECT_EQ(w.at(0), std::make_pair(std::int64_t{0}, std::int64_t{0}));
  w.step({lbf::kLoad});
  EXPECT_EQ(w.s.field[1 * 5 + 1], 1);
}

TEST(Lbf, CooperativeLoadSharesNormalisedRewards) {
  World w(make(3, 7, 7));
  w.player(0, 2, 3, 1);  // north of the food
  w.player(1, 3, 2, 2);  // west of the food
  w.player(2, 5, 5, 2);  // far away
  w.food(3, 3, 3);
  w.step({lbf::kLoad, lbf::kLoad, lbf::kLoad});  // player 2's LOAD is invalid: NONE
  EXPECT_EQ(w.s.field[3 * 7 + 3], 0);
  double r[3];
  w.sc.rewards(w.s, r);
  EXPECT_DOUBLE_EQ(r[0], 1.0 * 3 / (3.0 * 3));
  EXPECT_DOUBLE_EQ(r[1], 2.0 * 3 / (3.0 * 3));
  EXPECT_DOUBLE_EQ(r[2], 0.0);
  EXPECT_TRUE(w.sc.is_terminal(w.s));
  double acc[1] = {0};
  w.sc.update_metrics(w.s, acc);
  EXPECT_DOUBLE_EQ(acc[0], 1.0);
}

TEST(Lbf, FailedLoadCostsThePenalty) {
  World w(make(2, 6, 6, 0.25));
  w.player(0, 2, 3, 1);
  w.player(1, 0, 0, 1);
  w.food(3, 3, 2);
  w.step({lbf::kLoad, lbf::kNone});
  double r[2];
  w.sc.rewards(w.s, r);
  EXPECT_DOUBLE_EQ(r[0], -0.25);
  EXPECT_DOUBLE_EQ(r[1], 0.0);
  EXPECT_EQ(w.s.field[3 * 6 + 3], 2);
  EXPECT_FALSE(w.sc.is_terminal(w.s));
}

TEST(Lbf, AliasesResolveToTheReferenceArguments) {
  auto r = resolve_env("Foraging-2s-10x10-3p-3f-coop-v3");
  EXPECT_EQ(r.entry->name, "lbf");
  EXPECT_EQ(r.alias_params.get_int("players"), 3);
  EXPECT_EQ(r.alias_params.get_int("sight"), 2);
  EXPECT_TRUE(r.alias_params.get_bool("force_coop"));
  EXPECT_EQ(r.alias_params.get_ints("field_size"), (std::vector<int>{10, 10}));
  EXPECT_THROW(resolve_env("Foraging-4x4-2p-2f-v3"), InvalidArgument);
  EXPECT_THROW(resolve_env("Foraging-8x9-2p-2f-v3"), InvalidArgument);
}

TEST(Params, OptionalIntListTakesNoneOneValueOrAList) {
  const std::vector<ParamSpec> specs = {{"levels", ParamKind::kOptionalIntList, kNone, "", 0, {kNone}}};
  EXPECT_EQ(Params().resolve(specs, "t").get_ints("levels"), (std::vector<int>{-1}));  // the default: None
  Params p;
  p.set("levels", kNone);
  EXPECT_EQ(p.resolve(specs, "t").get_ints("levels"), (std::vector<int>{-1}));
  p.set("levels", 4);
  EXPECT_EQ(p.resolve(specs, "t").get_ints("levels"), (std::vector<int>{4}));
  p.set_tuple("levels", {3, 5});
  EXPECT_EQ(p.resolve(specs, "t").get_ints("levels"), (std::vector<int>{3, 5}));
  p.set_tuple("levels", {});
  EXPECT_THROW(p.resolve(specs, "t"), InvalidArgument);  // a list needs at least one value
  p.set("levels", 2.5);
  EXPECT_THROW(p.resolve(specs, "t"), InvalidArgument);
  p.set("levels", -2);
  EXPECT_THROW(p.resolve(specs, "t"), InvalidArgument);  // below None's encoding
}

TEST(Lbf, PerPlayerLevelRangesArePermutedAtEachReset) {
  Params p;
  p.set_tuple("min_player_level", {1, 4});
  p.set_tuple("max_player_level", {1, 4});
  p.set_tuple("min_food_level", {2, 7});
  p.set_tuple("max_food_level", {2, 7});
  const Foraging sc(p.resolve(Foraging::param_specs(), "lbf"));
  Foraging::State s;
  sc.init_state(s);
  int first_high = 0;
  for (std::uint64_t ep = 0; ep < 200; ++ep) {
    CounterRng rng(5, 0, ep);
    sc.reset(s, rng);
    const auto lo = std::min(s.level[0], s.level[1]), hi = std::max(s.level[0], s.level[1]);
    EXPECT_EQ(lo, 1);
    EXPECT_EQ(hi, 4);
    first_high += s.level[0] == 4;
    std::vector<std::int32_t> food;
    for (auto f : s.field) if (f) food.push_back(f);
    std::sort(food.begin(), food.end());
    EXPECT_EQ(food, (std::vector<std::int32_t>{2, 7}));
  }
  EXPECT_GT(first_high, 50);  // both orders, about half each
  EXPECT_LT(first_high, 150);
}

TEST(Lbf, TimeLimitIsTruncationAndFoodEatenIsTermination) {
  Params p;
  p.set("max_episode_steps", 3);
  auto env = make_env("lbf", p, 8, 2, 1);
  OutputBuffers b(*env);
  env->reset(1, b.out);
  for (int t = 1; t <= 3; ++t) {
    std::fill_n(env->discrete_actions(), 8 * 2, lbf::kNone);
    env->step(b.out);
  }
  for (int e = 0; e < 8; ++e) {
    EXPECT_TRUE(b.done[e]);
    EXPECT_TRUE(b.truncated[2 * e]);
    EXPECT_FALSE(b.terminated[2 * e]);
    EXPECT_DOUBLE_EQ(b.final_metrics[e], 0.0);
    for (int k = 0; k < 6; ++k) EXPECT_EQ(b.action_mask[0][(2 * e) * 6 + 0], true);
  }
}

// ---- Multi-Robot Warehouse rules on hand-built states (parity: tests/test_rware.py) ----
#include "genmarl/envs/rware/warehouse.hpp"

namespace {

struct Depot {
  rware::Warehouse sc;
  rware::Warehouse::State s;
  explicit Depot(int agents) : sc(make_depot(agents)) { sc.init_state(s); }
  static rware::Warehouse make_depot(int agents) {
    Params p;
    p.set("n_agents", agents);
    p.set("request_queue_size", 1);
    return rware::Warehouse(p.resolve(rware::Warehouse::param_specs(), "rware"));
  }
  void robot(int i, int x, int y, int dir) {
    s.ax[i] = x;
    s.ay[i] = y;
    s.dir[i] = dir;
  }
  void step(std::vector<std::int64_t> actions) {
    s.queue[0] = 1;
    rware::Warehouse::recalc(s);
    CounterRng rng(0, 0, 0);
    sc.apply_actions(s, actions.data(), nullptr, 0);
    sc.step(s, rng);
  }
  std::pair<int, int> at(int i) const { return {s.ax[i], s.ay[i]}; }
};

}  // namespace

static_assert(genmarl::Scenario<rware::Warehouse> && HasTruncation<rware::Warehouse> && !HasActionMask<rware::Warehouse> &&
              HasLayout<rware::Warehouse> && !HasLayout<Foraging>);

TEST(Rware, LayoutIsTheFixedGridAndGoalsThroughEveryEnvInterface) {
  Params p;
  p.set_string("layout", "x.g\n...\ng.x");
  p.set("n_agents", 1);
  p.set("request_queue_size", 1);
  VectorEnv<rware::Warehouse> env(rware::Warehouse(p.resolve(rware::Warehouse::param_specs(), "rware")), 2, 1, 0);
  const BatchedEnv& base = env;
  const auto layout = base.layout();
  ASSERT_EQ(layout.size(), 2u);
  EXPECT_EQ(layout[0].name, "highway");
  EXPECT_EQ(layout[0].dtype, "|b1");
  EXPECT_EQ(layout[0].shape, (std::vector<std::int64_t>{3, 3}));
  const std::vector<unsigned char> highway{0, 1, 1, 1, 1, 1, 1, 1, 0};
  EXPECT_EQ(layout[0].data, highway);
  EXPECT_EQ(layout[1].name, "goals");
  EXPECT_EQ(layout[1].shape, (std::vector<std::int64_t>{2, 2}));
  const auto* goals = reinterpret_cast<const std::int64_t*>(layout[1].data.data());
  EXPECT_EQ((std::vector<std::int64_t>(goals, goals + 4)), (std::vector<std::int64_t>{2, 0, 0, 2}));  // (x, y)
  VectorEnv<lbf::Foraging> foraging(lbf::Foraging(Params().resolve(lbf::Foraging::param_specs(), "lbf")), 1, 1, 0);
  EXPECT_TRUE(static_cast<const BatchedEnv&>(foraging).layout().empty());  // no HasLayout: nothing
}

TEST(Rware, HeadOnSwapFreezesItsComponentButRotationsMove) {
  Depot d(3);
  d.robot(0, 0, 0, rware::kRightDir);  // (0,0) -> (1,0)
  d.robot(1, 1, 0, rware::kLeftDir);   // (1,0) -> (0,0): a swap
  d.robot(2, 2, 0, rware::kLeftDir);   // queued behind robot 1
  d.step({rware::kForward, rware::kForward, rware::kForward});
  EXPECT_EQ(d.at(0), std::make_pair(0, 0));
  EXPECT_EQ(d.at(1), std::make_pair(1, 0));
  EXPECT_EQ(d.at(2), std::make_pair(2, 0));
  Depot r(4);  // a rotation around a 2x2 square moves
  r.robot(0, 0, 0, rware::kRightDir);
  r.robot(1, 1, 0, rware::kDown);
  r.robot(2, 1, 1, rware::kLeftDir);
  r.robot(3, 0, 1, rware::kUp);
  r.step({rware::kForward, rware::kForward, rware::kForward, rware::kForward});
  EXPECT_EQ(r.at(0), std::make_pair(1, 0));
  EXPECT_EQ(r.at(1), std::make_pair(1, 1));
  EXPECT_EQ(r.at(2), std::make_pair(0, 1));
  EXPECT_EQ(r.at(3), std::make_pair(0, 0));
}

TEST(Rware, QueueIntoAStandingRobotFailsAndTheLongerQueueWins) {
  Depot d(4);
  d.robot(0, 0, 5, rware::kUp);        // stands still (NOOP)
  d.robot(1, 0, 6, rware::kUp);        // queued into robot 0: fails
  d.robot(2, 3, 3, rware::kLeftDir);   // (3,3) -> (2,3)
  d.robot(3, 1, 3, rware::kRightDir);  // (1,3) -> (2,3): contested with robot 2
  d.step({rware::kNoop, rware::kForward, rware::kForward, rware::kForward});
  EXPECT_EQ(d.at(0), std::make_pair(0, 5));
  EXPECT_EQ(d.at(1), std::make_pair(0, 6));
  // exactly one of the two contenders took (2,3)
  EXPECT_TRUE((d.at(2) == std::make_pair(2, 3)) != (d.at(3) == std::make_pair(2, 3)));
}

TEST(Rware, LoadedRobotCannotEnterAStandingShelfAndDropsOnlyOffHighways) {
  Depot d(1);
  // (1,1) is a shelf cell of the tiny layout; (0,1) a highway next to it.
  d.robot(0, 1, 1, rware::kLeftDir);
  d.step({rware::kToggleLoad});
  ASSERT_NE(d.s.carrying[0], 0);
  d.step({rware::kForward});  // onto the highway (0,1)
  EXPECT_EQ(d.at(0), std::make_pair(0, 1));
  d.step({rware::kToggleLoad});  // on a highway: ignored
  EXPECT_NE(d.s.carrying[0], 0);
  d.s.dir[0] = rware::kRightDir;
  d.step({rware::kForward});     // back into (1,1): its own home, empty now
  EXPECT_EQ(d.at(0), std::make_pair(1, 1));
  d.step({rware::kForward});     // (2,1) holds a standing shelf: blocked
  EXPECT_EQ(d.at(0), std::make_pair(1, 1));
  d.step({rware::kToggleLoad});  // a shelf cell: dropped
  EXPECT_EQ(d.s.carrying[0], 0);
}

TEST(Rware, Pcg64MatchesNumpysAlgorithmShape) {
  // integers(0, 1) consumes nothing; the 32-bit buffer alternates.
  rware::Pcg64 g;
  g.state = 12345;
  g.inc = 67891;
  const auto before = g.state;
  EXPECT_EQ(g.integers(1), 0u);
  EXPECT_EQ(g.state, before);
  const auto a = g.integers(1000);
  EXPECT_LT(a, 1000u);
  EXPECT_EQ(g.has_uint32, 1u);
  g.integers(1000);
  EXPECT_EQ(g.has_uint32, 0u);
}

// A scenario that declares an observation type it has no observe() overload for is a scenario bug:
// VectorEnv refuses it at construction, naming the group and the type.
namespace {
struct ForagingAsUint8 : Foraging {
  using Foraging::Foraging;
  EnvSpec spec() const {
    EnvSpec s = Foraging::spec();
    for (auto& a : s.agents) a.obs_dtype = ObsDtype::kUInt8;
    s.finalize();
    return s;
  }
};
}  // namespace

TEST(ObsDtype, AMissingObserveOverloadIsRefused) {
  static_assert(ObservesAs<Foraging, float> && !ObservesAs<Foraging, std::uint8_t>);
  try {
    VectorEnv<ForagingAsUint8> env(ForagingAsUint8(Params().resolve(Foraging::param_specs(), "lbf")), 2, 1, 0);
    FAIL() << "expected std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("uint8 observations but the scenario has no observe()"), std::string::npos) << e.what();
  }
  EXPECT_EQ(obs_dtype_size(ObsDtype::kUInt8), 1u);
  EXPECT_STREQ(obs_dtype_name(ObsDtype::kInt32), "int32");
}
