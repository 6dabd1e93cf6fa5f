// Out-of-line parts of Warehouse (included by warehouse.hpp): move resolution and state import.
#pragma once

namespace genmarl::rware {

// networkx's resolution on the move graph, without networkx: nodes are cells, inserted in
// first-appearance order over (start_0, target_0, start_1, target_1, ...); each robot adds one
// edge start -> target. Components are found by iterating the nodes in that order, each by a BFS
// (successor first, then predecessors in edge order) that inserts into a CPython set; with a
// cycle of length 1 or >= 3 its robots move, a 2-cycle freezes the component; without a cycle
// the robots on the longest path into the sink move, ties broken by the order networkx iterates
// the component copy's predecessor lists (a CPython set's slot order when the component holds
// fewer than half the nodes, else node insertion order).
inline void Warehouse::resolve_moves(State& s, std::int64_t* act) const {
  struct Scratch {
    std::vector<int> node_of;  // cell -> node, -1
    std::vector<int> nx, ny, succ, npred, comp, height, rank;
    std::vector<std::array<int, 6>> pred;
    std::vector<int> order, members, level, next, visited;
    PySet c, c2;
  };
  thread_local Scratch tls;
  Scratch& t = tls;  // one TLS lookup per call
  const std::size_t cells = static_cast<std::size_t>(H_) * W_;
  if (t.node_of.size() < cells) t.node_of.assign(cells, -1);
  const int max_nodes = 2 * n_;
  if (static_cast<int>(t.nx.size()) < max_nodes) {
    for (auto* v : {&t.nx, &t.ny, &t.succ, &t.npred, &t.comp, &t.height, &t.rank}) v->resize(max_nodes);
    t.pred.resize(max_nodes);
  }
  int nodes = 0;
  auto node = [&](int x, int y) {
    int& k = t.node_of[static_cast<std::size_t>(y) * W_ + x];
    if (k < 0) {
      k = nodes++;
      t.nx[k] = x;
      t.ny[k] = y;
      t.succ[k] = -1;
      t.npred[k] = 0;
      t.comp[k] = -1;
    }
    return k;
  };
  for (int i = 0; i < n_; ++i) {
    auto [tx, ty] = target(s, i, act[i]);
    const int sx = s.ax[i], sy = s.ay[i];
    if (s.carrying[i] && (tx != sx || ty != sy)) {
      const std::size_t cell = static_cast<std::size_t>(ty) * W_ + tx;
      const std::int32_t other = s.grid_agent[cell];
      if (s.grid_shelf[cell] != 0 && !(other != 0 && s.carrying[other - 1] != 0)) {
        act[i] = kNoop;  // a loaded robot cannot drive into a standing shelf
        tx = sx;
        ty = sy;
      }
    }
    const int a = node(sx, sy), b = node(tx, ty);
    t.succ[a] = b;
    t.pred[b][t.npred[b]++] = a;
  }
  // The common case, decided without the graph walk: no robot heads into a cell another robot
  // starts from or heads into. Every component is then one edge into a free cell (or a robot
  // standing still), and every robot moves as requested.
  bool simple = true;
  for (int i = 0; i < n_ && simple; ++i) {
    const int a = t.node_of[static_cast<std::size_t>(s.ay[i]) * W_ + s.ax[i]];
    const int b = t.succ[a];
    simple = t.npred[b] == 1 && (b == a || t.succ[b] < 0);
  }
  if (simple) {
    for (int k = 0; k < nodes; ++k) t.node_of[static_cast<std::size_t>(t.ny[k]) * W_ + t.nx[k]] = -1;
    return;
  }
  auto agent_at = [&](int k) { return s.grid_agent[static_cast<std::size_t>(t.ny[k]) * W_ + t.nx[k]]; };
  auto hash = [&](int k) { return tuple_hash(static_cast<std::uint64_t>(t.nx[k]), static_cast<std::uint64_t>(t.ny[k])); };
  std::uint64_t committed = 0;  // bit i: robot i moves as requested
  int components = 0;
  for (int v = 0; v < nodes; ++v) {
    if (t.comp[v] >= 0) continue;
    const int cid = components++;
    // BFS into a CPython set (its slot order is used below when the component is small).
    t.c.clear();
    t.members.clear();
    t.comp[v] = cid;
    t.c.add(v, hash(v));
    t.members.push_back(v);
    t.level.assign(1, v);
    while (!t.level.empty()) {
      t.next.clear();
      for (int w : t.level) {
        auto visit = [&](int u) {
          if (t.comp[u] == cid) return;
          t.comp[u] = cid;
          t.c.add(u, hash(u));
          t.members.push_back(u);
          t.next.push_back(u);
        };
        if (t.succ[w] >= 0) visit(t.succ[w]);
        for (int k = 0; k < t.npred[w]; ++k) visit(t.pred[w][k]);
      }
      t.level.swap(t.next);
    }
    // A cycle? Follow successors from v.
    t.visited.clear();
    int p = v, cycle_start = -1;
    while (t.succ[p] >= 0) {
      auto it = std::find(t.visited.begin(), t.visited.end(), p);
      if (it != t.visited.end()) {
        cycle_start = static_cast<int>(it - t.visited.begin());
        break;
      }
      t.visited.push_back(p);
      p = t.succ[p];
    }
    if (cycle_start >= 0) {
      const int len = static_cast<int>(t.visited.size()) - cycle_start;
      if (len == 2) continue;  // a head-on swap: nothing in this component moves
      for (int k = cycle_start; k < static_cast<int>(t.visited.size()); ++k) {
        committed |= std::uint64_t{1} << (agent_at(t.visited[k]) - 1);
      }
      continue;
    }
    // No cycle: p is the sink. Tie order of predecessors.
    const int size = static_cast<int>(t.members.size());
    int r = 0;
    if (2 * size < nodes) {
      t.c2.clear();
      t.c.for_each([&](int k) { t.c2.add(k, hash(k)); });
      t.c2.for_each([&](int k) { t.rank[k] = r++; });
    } else {
      for (int k = 0; k < nodes; ++k) if (t.comp[k] == cid) t.rank[k] = r++;
    }
    // Heights (longest chain of predecessors), members in BFS order from the sink reversed.
    for (int k : t.members) t.height[k] = -1;
    auto height = [&](auto&& self, int k) -> int {
      if (t.height[k] >= 0) return t.height[k];
      int h = 0;
      for (int q = 0; q < t.npred[k]; ++q) h = std::max(h, 1 + self(self, t.pred[k][q]));
      return t.height[k] = h;
    };
    int at = p;
    while (t.npred[at] > 0) {
      int best = -1;
      for (int q = 0; q < t.npred[at]; ++q) {
        const int u = t.pred[at][q];
        const int hu = height(height, u);
        if (best < 0) {
          best = u;
          continue;
        }
        const int hb = height(height, best);
        if (hu > hb || (hu == hb && t.rank[u] < t.rank[best])) best = u;
      }
      committed |= std::uint64_t{1} << (agent_at(best) - 1);
      at = best;
    }
  }
  for (int i = 0; i < n_; ++i) {
    if (!((committed >> i) & 1)) act[i] = kNoop;  // only FORWARD robots can fail
  }
  for (int k = 0; k < nodes; ++k) t.node_of[static_cast<std::size_t>(t.ny[k]) * W_ + t.nx[k]] = -1;
}

inline void Warehouse::import_states(std::vector<State>& states, const std::vector<StateArray>& arrays) {
  const auto* ax = state_array<std::int64_t>(arrays, "agent_x");
  const auto* ay = state_array<std::int64_t>(arrays, "agent_y");
  const auto* dir = state_array<std::int64_t>(arrays, "agent_dir");
  const auto* carrying = state_array<std::int64_t>(arrays, "carrying");
  const auto* delivered = state_array<std::int64_t>(arrays, "has_delivered");
  const auto* sx = state_array<std::int64_t>(arrays, "shelf_x");
  const auto* sy = state_array<std::int64_t>(arrays, "shelf_y");
  const auto* queue = state_array<std::int64_t>(arrays, "request_queue");
  const auto* action = state_array<std::int64_t>(arrays, "action");
  const auto* message = state_array<std::int64_t>(arrays, "message");
  const auto* reward = state_array<double>(arrays, "reward");
  const auto* steps = state_array<std::int64_t>(arrays, "steps");
  const auto* inactive = state_array<std::int64_t>(arrays, "inactive_steps");
  const auto* rng = state_array<std::uint64_t>(arrays, "rng");
  auto bad = [](const std::string& what) { throw InvalidArgument("set_state: " + what); };
  if (states.empty()) return;
  const std::size_t A = states.front().ax.size(), S = states.front().sx.size(), Q = states.front().queue.size();
  const std::int64_t H = states.front().H, W = states.front().W;
  const std::int64_t messages = std::int64_t{1} << states.front().msg_bits;
  std::vector<std::uint8_t> used(static_cast<std::size_t>(H * W));
  for (std::size_t e = 0; e < states.size(); ++e) {
    for (std::size_t i = 0; i < A; ++i) {
      if (ax[e * A + i] < 0 || ax[e * A + i] >= W || ay[e * A + i] < 0 || ay[e * A + i] >= H) {
        bad("robots must lie on the " + std::to_string(H) + " x " + std::to_string(W) + " grid");
      }
    }
    std::fill(used.begin(), used.end(), 0);
    for (std::size_t j = 0; j < S; ++j) {
      const std::int64_t x = sx[e * S + j], y = sy[e * S + j];
      if (x < 0 || x >= W || y < 0 || y >= H) bad("shelves must lie on the grid");
      if (used[y * W + x]++) bad("two shelves share a cell");
    }
    for (std::size_t i = 0; i < A; ++i) {
      if (dir[e * A + i] < 0 || dir[e * A + i] > 3) bad("'agent_dir' must be in [0, 4)");
      if (delivered[e * A + i] < 0 || delivered[e * A + i] > 1) bad("'has_delivered' must be 0 or 1");
      if (action[e * A + i] < 0 || action[e * A + i] >= kNumActions) bad("'action' must be in [0, 5)");
      if (message[e * A + i] < 0 || message[e * A + i] >= messages) {
        bad("'message' must be in [0, " + std::to_string(messages) + ") (msg_bits bits)");
      }
      if (!std::isfinite(reward[e * A + i])) bad("'reward' must be finite");
      const std::int64_t c = carrying[e * A + i];
      if (c < 0 || c > static_cast<std::int64_t>(S)) bad("'carrying' must be 0 or a shelf id in [1, " + std::to_string(S) + "]");
      if (c > 0 && (sx[e * S + c - 1] != ax[e * A + i] || sy[e * S + c - 1] != ay[e * A + i])) {
        bad("a carried shelf must be where its robot is");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (ax[e * A + j] == ax[e * A + i] && ay[e * A + j] == ay[e * A + i]) bad("two robots share a cell");
        if (c > 0 && carrying[e * A + j] == c) bad("two robots carry one shelf");
      }
    }
    for (std::size_t q = 0; q < Q; ++q) {
      const std::int64_t id = queue[e * Q + q];
      if (id < 1 || id > static_cast<std::int64_t>(S)) bad("'request_queue' holds shelf ids in [1, " + std::to_string(S) + "]");
      for (std::size_t r = 0; r < q; ++r) if (queue[e * Q + r] == id) bad("'request_queue' must not repeat a shelf");
    }
    if (steps[e] < 0 || inactive[e] < 0) bad("'steps' and 'inactive_steps' must be non-negative");
    if ((rng[6 * e + 3] & 1) == 0) bad("'rng': the PCG64 increment must be odd");
    if (rng[6 * e + 4] > 1 || rng[6 * e + 5] > 0xFFFFFFFFULL) bad("'rng': has_uint32 must be 0 or 1 and uinteger a 32-bit value");
  }
  for (std::size_t e = 0; e < states.size(); ++e) {
    State& s = states[e];
    for (std::size_t i = 0; i < A; ++i) {
      s.ax[i] = static_cast<std::int32_t>(ax[e * A + i]);
      s.ay[i] = static_cast<std::int32_t>(ay[e * A + i]);
      s.dir[i] = static_cast<std::int32_t>(dir[e * A + i]);
      s.carrying[i] = static_cast<std::int32_t>(carrying[e * A + i]);
      s.has_delivered[i] = static_cast<std::uint8_t>(delivered[e * A + i]);
      s.action[i] = action[e * A + i];
      s.message[i] = static_cast<std::uint32_t>(message[e * A + i]);
      s.reward[i] = reward[e * A + i];
    }
    for (std::size_t j = 0; j < S; ++j) {
      s.sx[j] = static_cast<std::int32_t>(sx[e * S + j]);
      s.sy[j] = static_cast<std::int32_t>(sy[e * S + j]);
    }
    for (std::size_t q = 0; q < Q; ++q) s.queue[q] = static_cast<std::int32_t>(queue[e * Q + q]);
    s.steps = steps[e];
    s.inactive = inactive[e];
    const std::uint64_t* r = rng + 6 * e;
    s.rng.state = (static_cast<unsigned __int128>(r[0]) << 64) | r[1];
    s.rng.inc = (static_cast<unsigned __int128>(r[2]) << 64) | r[3];
    s.rng.has_uint32 = r[4];
    s.rng.uinteger = r[5];
    recalc(s);
  }
}

}  // namespace genmarl::rware
