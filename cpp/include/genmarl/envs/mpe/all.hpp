// Every MPE scenario.
#pragma once

#include "genmarl/envs/mpe/simple.hpp"
#include "genmarl/envs/mpe/simple_adversary.hpp"
#include "genmarl/envs/mpe/simple_crypto.hpp"
#include "genmarl/envs/mpe/simple_push.hpp"
#include "genmarl/envs/mpe/simple_reference.hpp"
#include "genmarl/envs/mpe/simple_spread.hpp"
#include "genmarl/envs/mpe/simple_tag.hpp"
#include "genmarl/envs/mpe/simple_speaker_listener.hpp"
#include "genmarl/envs/mpe/simple_line.hpp"
#include "genmarl/envs/mpe/simple_formation.hpp"
#include "genmarl/envs/mpe/simple_world_comm.hpp"
#include "genmarl/envs/mpe/collect_treasure.hpp"
