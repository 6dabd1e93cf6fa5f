// The env module: registers the scenarios of this project with genmarl at run time
// (genmarl.register_module("custom_envs"), or genmarl.make("custom_envs:gridworld")).
#include <genmarl/env/module.hpp>

#include "gridworld.hpp"

GENMARL_ENV_MODULE(m) { m.add<custom::GridWorld>("gridworld"); }
