// Every buffer type: #include "genmarl/buffer/all.hpp".
#pragma once

#include "genmarl/buffer/episode.hpp"
#include "genmarl/buffer/prioritized.hpp"
#include "genmarl/buffer/replay.hpp"
#include "genmarl/buffer/rollout.hpp"
#include "genmarl/buffer/schema.hpp"
#include "genmarl/buffer/serialize.hpp"
#include "genmarl/buffer/sum_tree.hpp"
