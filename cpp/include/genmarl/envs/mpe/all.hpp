// Every MPE scenario.
#pragma once

#include "genmarl/envs/mpe/simple.hpp"
#include "genmarl/envs/mpe/simple_spread.hpp"
#include "genmarl/envs/mpe/simple_tag.hpp"
#include "genmarl/envs/mpe/simple_world_comm.hpp"
#include "genmarl/envs/mpe/collect_treasure.hpp"
