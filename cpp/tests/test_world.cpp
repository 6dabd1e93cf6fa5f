// Physics checks against hand-computed values of mpe2's update rule.
#include <gtest/gtest.h>

#include <cmath>

#include "genmarl/envs/mpe/world.hpp"

using namespace genmarl::mpe;

namespace {
World two_agents() {
  World w;
  w.init(2, 0, 0);
  for (int i = 0; i < 2; ++i) {
    w.agent(i).silent = true;
    w.agent(i).size = 0.1;
  }
  return w;
}
}  // namespace

TEST(World, FreeMotionIntegratesOldVelocityThenDamps) {
  World w = two_agents();
  w.agent(0).pos = {0.0, 0.0};
  w.agent(1).pos = {5.0, 5.0};
  w.agent(0).vel = {1.0, -2.0};
  w.set_discrete_action(0, 2);  // +x, force 5
  w.set_discrete_action(1, 0);
  w.physics_step();
  EXPECT_DOUBLE_EQ(w.agent(0).pos.x, 0.1);
  EXPECT_DOUBLE_EQ(w.agent(0).pos.y, -0.2);
  EXPECT_NEAR(w.agent(0).vel.x, 1.0 * 0.75 + 5.0 * kDt, 1e-12);
  EXPECT_NEAR(w.agent(0).vel.y, -2.0 * 0.75, 1e-12);
}

TEST(World, ContactForceIsSymmetricSoftplus) {
  World w = two_agents();
  w.agent(0).pos = {0.0, 0.0};
  w.agent(1).pos = {0.15, 0.0};  // overlap 0.05
  w.set_discrete_action(0, 0);
  w.set_discrete_action(1, 0);
  w.physics_step();
  const double dist = 0.15, k = kContactMargin;
  const double pen = std::log1p(std::exp(-(-(dist - 0.2) / k))) * k + (-(dist - 0.2) / k) * k;
  const double f = kContactForce * pen;  // along -x on agent 0
  EXPECT_NEAR(w.agent(0).vel.x, -f * kDt, 1e-9);
  EXPECT_NEAR(w.agent(1).vel.x, +f * kDt, 1e-9);
  EXPECT_DOUBLE_EQ(w.agent(0).vel.y, 0.0);
}

TEST(World, MaxSpeedClamps) {
  World w = two_agents();
  w.agent(0).max_speed = 0.3;
  w.agent(1).pos = {3.0, 3.0};
  w.agent(0).vel = {10.0, 0.0};
  w.set_discrete_action(0, 0);
  w.set_discrete_action(1, 0);
  w.physics_step();
  EXPECT_NEAR(std::hypot(w.agent(0).vel.x, w.agent(0).vel.y), 0.3, 1e-12);
}

TEST(World, DiscreteActionWithMessage) {
  World w;
  w.init(1, 0, 3);
  w.agent(0).accel = 2.0;
  w.set_discrete_action(0, 3 + 5 * 2);  // move -y, say word 2
  EXPECT_DOUBLE_EQ(w.action_u[0], 0.0);
  EXPECT_DOUBLE_EQ(w.action_u[1], -2.0);
  EXPECT_DOUBLE_EQ(w.action_c[2], 1.0);
  EXPECT_DOUBLE_EQ(w.action_c[0] + w.action_c[1], 0.0);
  const auto space = w.action_space(0, false);
  EXPECT_EQ(space.n, 15);
  EXPECT_EQ(w.action_space(0, true).n, 8);
}
