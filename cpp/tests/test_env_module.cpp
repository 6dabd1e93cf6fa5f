// A users' env module (examples/custom_env, built as its own shared library) loaded at run time:
// its envs step like built-in ones, and errors thrown in the module's code arrive as genmarl's
// own exception types with their messages (they cross the library boundary as values).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "genmarl/env/module.hpp"
#include "genmarl/env/output_buffers.hpp"

using namespace genmarl;

namespace {

void load() {
  const auto names = load_env_module(GENMARL_TEST_ENV_MODULE);
  ASSERT_EQ(names, std::vector<std::string>{"gridworld"});
}

template <class E>
std::string message_of(auto&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace

TEST(EnvModule, LoadsOnceAndSteps) {
  load();
  load();  // a second load returns the same names
  Params p;
  p.set("agents", 3);
  auto env = make_env("gridworld", p, 16, 2, 7);
  OutputBuffers b(*env);
  env->reset(7, b.out);
  for (int t = 0; t < 40; ++t) {
    std::fill_n(env->discrete_actions(), 16 * 3, 1);
    env->step(b.out);
  }
  EXPECT_EQ(env->spec().agents.size(), 3u);
  EXPECT_FALSE(env->get_state().empty());
}

TEST(EnvModule, ErrorsInModuleCodeArriveAsGenmarlExceptions) {
  load();
  Params bad;
  bad.set("agents", 99);
  EXPECT_EQ(message_of<InvalidArgument>([&] { make_env("gridworld", bad, 4, 1, 0); }),
            "gridworld: agents must be in [1, 16], got 99");

  auto env = make_env("gridworld", Params(), 4, 1, 0);
  OutputBuffers b(*env);
  env->reset(0, b.out);
  auto state = env->get_state();
  state.pop_back();  // a missing array: VectorEnv::set_state (module code) throws
  EXPECT_NE(message_of<InvalidArgument>([&] { env->set_state(state); }).find("set_state"), std::string::npos);
  env->discrete_actions()[0] = 99;  // an out-of-range action: check_actions (module code) throws
  EXPECT_NE(message_of<InvalidArgument>([&] { env->check_actions(); }).find("action"), std::string::npos);
  env->discrete_actions()[0] = 0;
  env->check_actions();  // the error was taken: the next call is clean
  env->step(b.out);
}

TEST(EnvModule, AbiTagNamesTheStandardLibrary) {
  const EnvModuleAbi abi = env_module_abi();
  EXPECT_EQ(abi.module_version, kEnvModuleVersion);
  const std::string d = describe(abi);
#if defined(_LIBCPP_VERSION)
  EXPECT_NE(d.find("libc++"), std::string::npos);
#elif defined(__GLIBCXX__)
  EXPECT_NE(d.find("libstdc++"), std::string::npos);
#endif
  EnvModuleAbi other = abi;
  other.stdlib_version += 1;  // another version of the same library loads
  EXPECT_TRUE(abi_compatible(other, abi));
  other.stdlib = abi.stdlib == 2 ? 1 : 2;  // another library does not
  EXPECT_FALSE(abi_compatible(other, abi));
}

// A group's observations may be uint8 (the example's image=True): the buffers hold that type, the
// scenario's uint8 observe() writes them, and asking for floats is refused.
TEST(EnvModule, Uint8ObservationsTravelAsTheirOwnType) {
  load();
  Params p;
  p.set("agents", 2);
  p.set("size", 4);
  p.set("image", 1);
  auto env = make_env("gridworld", p, 8, 2, 3);
  const auto& g = env->spec().groups.at(0);
  EXPECT_EQ(g.obs_dtype, ObsDtype::kUInt8);
  EXPECT_EQ(g.obs_shape, (std::vector<int>{3, 4, 4}));
  OutputBuffers b(*env);
  env->reset(3, b.out);
  for (int t = 0; t < 12; ++t) {
    const auto obs = std::as_const(b.obs[0]).view<std::uint8_t>();
    for (int e = 0; e < 8; ++e) {
      for (int i = 0; i < 2; ++i) {
        const std::uint8_t* o = obs.data() + (e * 2 + i) * 48;
        int own = 0, goal = 0, others = 0;
        for (int k = 0; k < 16; ++k) own += o[k], goal += o[16 + k], others += o[32 + k];
        EXPECT_EQ(own, 1);
        EXPECT_EQ(goal, 1);
        EXPECT_EQ(others, 1);
      }
    }
    std::fill_n(env->discrete_actions(), 16, 0);
    env->step(b.out);
  }
  EXPECT_THROW((void)b.obs[0].view<float>(), std::logic_error);
}
