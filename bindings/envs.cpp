// Bindings of the batched environments: a thin adapter over genmarl::BatchedEnv.
//
// Ownership rule: every call returns freshly allocated arrays that C++ wrote
// into directly; the env never writes into an array after handing it out.
// Incoming actions are validated and copied into the env's owned buffers while
// the GIL is held; the GIL is released while the envs step.
//
// Threads: calls on one env are serialised by a per-env mutex held from the
// moment actions are copied in until the results are out, so a step's actions
// are never overwritten by another thread's step. The mutex is taken with the
// GIL released (no lock-order deadlock with the GIL). After fork() the child
// starts with a fresh mutex (one inherited from a thread that does not exist
// there could never be unlocked); the env's thread pool restarts itself.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "genmarl/core/thread_pool.hpp"
#include "genmarl/env/module.hpp"
#include "genmarl/envs/registry.hpp"

namespace py = pybind11;
using genmarl::BatchedEnv;
using genmarl::StepOutputs;

namespace {

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

std::string shape_of(const std::vector<py::ssize_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() == 1) s += ",";
  return s + ")";
}

// Memory of large output arrays, recycled: a block freed with its array (numpy drops the capsule
// that owns it) serves the next array of the same size. Fresh memory from the allocator is often
// returned to the system between steps and page-faulted in again by the step's threads -- ~10%
// of a 1024-env LBF step. Guarded by the GIL (capsule destructors run with it held); never
// destroyed (arrays may outlive the interpreter's teardown of this module).
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{64} << 10;   // smaller arrays: numpy's allocator
  static constexpr std::size_t kMaxCached = std::size_t{512} << 20;  // beyond this, freed blocks are released
  static constexpr std::size_t kHeader = 64;                         // block size, then 64-byte aligned data

  static BlockCache& get() {
    static auto* cache = new BlockCache();
    return *cache;
  }
  // A block with room for `bytes` (its data starts kHeader bytes in).
  unsigned char* take(std::size_t bytes) {
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      unsigned char* b = it->second.back();
      it->second.pop_back();
      cached_ -= bytes;
      return b;
    }
    auto* b = static_cast<unsigned char*>(std::aligned_alloc(64, kHeader + ((bytes + 63) / 64) * 64));
    if (b == nullptr) throw std::bad_alloc();
    std::memcpy(b, &bytes, sizeof bytes);
    return b;
  }
  static void give_back(void* block) {
    auto* b = static_cast<unsigned char*>(block);
    std::size_t bytes;
    std::memcpy(&bytes, b, sizeof bytes);
    BlockCache& c = get();
    if (c.cached_ + bytes > kMaxCached) {
      std::free(b);
      return;
    }
    c.free_[bytes].push_back(b);
    c.cached_ += bytes;
  }

 private:
  std::unordered_map<std::size_t, std::vector<unsigned char*>> free_;
  std::size_t cached_ = 0;
};

// Fresh arrays and views through the numpy C API directly: pybind11's array constructors (shape
// and stride vectors, flag lookups) cost about as much as a one-env step itself, and a step
// returns a dozen arrays. Large ones take recycled memory (BlockCache).
py::array fresh_array(const py::dtype& dt, std::initializer_list<py::ssize_t> dims, const std::vector<int>& more = {}) {
  auto& api = py::detail::npy_api::get();
  Py_intptr_t d[32];
  int nd = 0;
  std::size_t bytes = static_cast<std::size_t>(dt.itemsize());
  for (auto v : dims) bytes *= static_cast<std::size_t>(d[nd++] = v);
  for (int v : more) bytes *= static_cast<std::size_t>(d[nd++] = v);
  PyObject* descr = dt.ptr();
  Py_INCREF(descr);  // stolen by PyArray_NewFromDescr
  if (bytes < BlockCache::kMinBytes) {
    PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, d, nullptr, nullptr, 0, nullptr);
    if (a == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::array>(a);
  }
  unsigned char* block = BlockCache::get().take(bytes);
  py::capsule owner(block, [](void* b) { BlockCache::give_back(b); });
  PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd, d, nullptr, block + BlockCache::kHeader,
                                          py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                                              py::detail::npy_api::NPY_ARRAY_WRITEABLE_,
                                          nullptr);
  if (a == nullptr) throw py::error_already_set();
  if (api.PyArray_SetBaseObject_(a, owner.release().ptr()) != 0) {  // steals the capsule
    Py_DECREF(a);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::array>(a);
}

// A view of x's memory (x's dtype and flags, without ownership) whose base is x, as numpy's
// basic slicing makes one.
py::array view_of(const py::handle& x, int nd, const Py_intptr_t* dims, const Py_intptr_t* strides, char* data) {
  auto& api = py::detail::npy_api::get();
  const auto* p = py::detail::array_proxy(x.ptr());
  Py_INCREF(p->descr);  // stolen by PyArray_NewFromDescr
  PyObject* v = api.PyArray_NewFromDescr_(api.PyArray_Type_, p->descr, nd, dims, strides, data,
                                          p->flags & ~py::detail::npy_api::NPY_ARRAY_OWNDATA_, nullptr);
  if (v == nullptr) throw py::error_already_set();
  Py_INCREF(x.ptr());
  if (api.PyArray_SetBaseObject_(v, x.ptr()) != 0) {  // steals the reference to x
    Py_DECREF(v);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::array>(v);
}

// x[:, j] of an array [E, n, ...]: a view [E, ...].
py::array column(const py::handle& x, int j) {
  const auto* p = py::detail::array_proxy(x.ptr());
  Py_intptr_t dims[32], strides[32];
  dims[0] = p->dimensions[0];
  strides[0] = p->strides[0];
  for (int k = 2; k < p->nd; ++k) {
    dims[k - 1] = p->dimensions[k];
    strides[k - 1] = p->strides[k];
  }
  return view_of(x, p->nd - 1, dims, strides, p->data + j * p->strides[1]);
}

// x[:, first:first + count] of an array [E, A]: a view [E, count] (x itself when it is all of x's
// columns, as in a one-group env).
py::object columns(const py::handle& x, int first, int count) {
  const auto* p = py::detail::array_proxy(x.ptr());
  if (first == 0 && count == p->dimensions[1]) return py::reinterpret_borrow<py::object>(x);
  const Py_intptr_t dims[2] = {p->dimensions[0], count}, strides[2] = {p->strides[0], p->strides[1]};
  return view_of(x, 2, dims, strides, p->data + first * p->strides[1]);
}

// One mutex per env, re-created in a forked child (ForkLocal): one inherited from a thread that
// does not exist there could never be unlocked. Called with the GIL held, which serialises the
// pid check between Python threads; waits for the mutex with the GIL released.
class EnvMutex {
 public:
  std::unique_lock<std::mutex> lock() {
    std::unique_lock<std::mutex> held(mutex_.get(), std::try_to_lock);
    if (!held.owns_lock()) {
      py::gil_scoped_release release;
      held.lock();
    }
    return held;
  }

 private:
  genmarl::ForkLocal<std::mutex> mutex_;
};

class PyBatchedEnv {
 public:
  static constexpr int kReleaseGilEnvs = 8;  // step() keeps the GIL below this many envs

  explicit PyBatchedEnv(std::unique_ptr<BatchedEnv> env) : env_(std::move(env)) {
    const auto& spec = env_->spec();
    for (const auto& g : spec.groups) {
      scratch_final_obs_.emplace_back(static_cast<std::size_t>(env_->num_envs()) * g.num_agents * g.obs_dim *
                                      genmarl::obs_dtype_size(g.obs_dtype));
      obs_dtypes_.push_back(numpy_dtype(g.obs_dtype));
    }
    scratch_final_metrics_.resize(static_cast<std::size_t>(env_->num_envs()) * spec.metric_names.size());
    scratch_final_return_.resize(static_cast<std::size_t>(env_->num_envs()) * spec.num_agents());
    scratch_final_length_.resize(static_cast<std::size_t>(env_->num_envs()));
    for (const auto& a : spec.agents) agent_keys_.emplace_back(a.name);
    for (const auto& g : spec.groups) group_keys_.emplace_back(g.name);
    done_key_ = py::str("done");
    action_mask_key_ = py::str("action_mask");
    has_masks_ = spec.any_action_mask();
  }

  BatchedEnv& env() { return *env_; }
  const genmarl::EnvSpec& spec() const { return env_->spec(); }

  py::list agents() const {
    py::list out;
    for (const auto& a : spec().agents) {
      py::dict d;
      d["name"] = a.name;
      d["group"] = a.group;
      d["obs_dim"] = a.obs_dim;
      d["obs_shape"] = py::tuple(py::cast(a.obs_shape));
      d["obs_dtype"] = genmarl::obs_dtype_name(a.obs_dtype);
      d["obs_low"] = py::cast(a.obs_low);
      d["obs_high"] = py::cast(a.obs_high);
      d["action_mask"] = a.action_mask;
      d["continuous"] = a.action.continuous;
      d["action_n"] = a.action.n;
      d["action_low"] = a.action.low;
      d["action_high"] = a.action.high;
      out.append(d);
    }
    return out;
  }

  py::list groups() const {
    py::list out;
    for (const auto& g : spec().groups) {
      py::dict d;
      d["name"] = g.name;
      d["first_agent"] = g.first_agent;
      d["num_agents"] = g.num_agents;
      d["obs_dim"] = g.obs_dim;
      d["obs_shape"] = py::tuple(py::cast(g.obs_shape));
      d["obs_dtype"] = genmarl::obs_dtype_name(g.obs_dtype);
      d["action_mask"] = g.action_mask;
      d["continuous"] = g.action.continuous;
      d["action_n"] = g.action.n;
      out.append(d);
    }
    return out;
  }

  // Both return (obs per group, action masks per group or None where a group has none).
  py::tuple reset(std::optional<std::uint64_t> seed) {
    auto held = mutex_.lock();
    std::vector<py::array> obs = new_obs();
    std::vector<py::object> masks = new_masks();
    StepOutputs out;
    for (auto& a : obs) out.obs.push_back(a.mutable_data());
    out.action_mask = mask_pointers(masks);
    {
      py::gil_scoped_release release;
      if (seed) env_->reset(*seed, out);
      else env_->reset_continue(out);
    }
    return py::make_tuple(to_list(obs), mask_list(masks));
  }

  py::tuple observe() {
    auto held = mutex_.lock();
    std::vector<py::array> obs = new_obs();
    std::vector<py::object> masks = new_masks();
    StepOutputs out;
    for (auto& a : obs) out.obs.push_back(a.mutable_data());
    out.action_mask = mask_pointers(masks);
    {
      py::gil_scoped_release release;
      env_->observe(out);
    }
    return py::make_tuple(to_list(obs), mask_list(masks));
  }

  // actions: one array per agent ([E] int or [E, act_dim] float) or, grouped,
  // one array per group ([E, n_g] int or [E, n_g, act_dim] float).
  py::tuple step(const py::sequence& actions, bool grouped) {
    const auto& sp = spec();
    const int E = env_->num_envs();
    const int A = sp.num_agents();
    const int stride = sp.max_action_dim;
    const std::size_t expected = grouped ? sp.groups.size() : static_cast<std::size_t>(A);
    if (static_cast<std::size_t>(py::len(actions)) != expected) {
      throw py::value_error("expected " + std::to_string(expected) + (grouped ? " group" : " agent") +
                            " action arrays, got " + std::to_string(py::len(actions)));
    }
    // Check and convert every array first (this may run Python code), then copy them in under the lock.
    std::vector<py::array> converted;
    converted.reserve(expected);
    for (std::size_t k = 0; k < expected; ++k) {
      const int first = grouped ? sp.groups[k].first_agent : static_cast<int>(k);
      const int count = grouped ? sp.groups[k].num_agents : 1;
      const auto& agent = sp.agents[first];
      // Named only when an error is raised: no string building on the hot path.
      auto who = [&] { return grouped ? "group '" + sp.groups[k].name + "'" : "agent '" + agent.name + "'"; };
      py::object obj = actions[k];
      py::array raw = py::array::ensure(obj);
      if (!raw) throw py::type_error("actions of " + who() + " must be array-like");
      std::vector<py::ssize_t> shape{E};
      if (grouped) shape.push_back(count);
      if (agent.action.continuous) shape.push_back(agent.action.n);
      bool shape_ok = raw.ndim() == static_cast<py::ssize_t>(shape.size());
      for (std::size_t d = 0; shape_ok && d < shape.size(); ++d) shape_ok = raw.shape(d) == shape[d];
      if (!shape_ok) {
        throw py::value_error("actions of " + who() + " must have shape " + shape_of(shape) + ", got " + shape_of(raw));
      }
      const char kind = raw.dtype().kind();
      if (agent.action.continuous) {
        if (kind != 'f') {
          throw py::type_error("actions of " + who() + " must be a float array (Box action space), got dtype " +
                               std::string(py::str(raw.dtype())));
        }
        converted.push_back(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(raw));
        if (!converted.back()) throw py::type_error("actions of " + who() + " could not be converted to float32");
      } else {
        if (kind != 'i' && kind != 'u') {
          throw py::type_error("actions of " + who() + " must be an integer array (Discrete action space), got dtype " +
                               std::string(py::str(raw.dtype())));
        }
        static const int kInt64 = py::dtype::of<std::int64_t>().num();
        const auto* p = py::detail::array_proxy(raw.ptr());
        const auto* descr = py::detail::array_descriptor_proxy(p->descr);
        const bool ready = descr->type_num == kInt64 && descr->byteorder != '>' &&
                           (p->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0 &&
                           (p->flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
        if (ready) {  // the common case: no conversion call
          converted.push_back(std::move(raw));
          continue;
        }
        converted.push_back(py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(raw));
        if (!converted.back()) throw py::type_error("actions of " + who() + " could not be converted to int64");
      }
    }

    auto held = mutex_.lock();  // held until the results are out: no other call touches the action buffers
    std::int64_t* disc = env_->discrete_actions();
    float* cont = env_->continuous_actions();
    for (std::size_t k = 0; k < expected; ++k) {
      const int first = grouped ? sp.groups[k].first_agent : static_cast<int>(k);
      const int count = grouped ? sp.groups[k].num_agents : 1;
      const auto& agent = sp.agents[first];
      if (agent.action.continuous) {
        const float* src = static_cast<const float*>(converted[k].data());
        for (int e = 0; e < E; ++e) {
          for (int j = 0; j < count; ++j) {
            std::memcpy(cont + (static_cast<std::size_t>(e) * A + first + j) * stride,
                        src + (static_cast<std::size_t>(e) * count + j) * agent.action.n, sizeof(float) * agent.action.n);
          }
        }
      } else {
        const std::int64_t* src = static_cast<const std::int64_t*>(converted[k].data());
        if (count == A) {  // one group holds every agent: the rows are contiguous in both
          std::memcpy(disc, src, sizeof(std::int64_t) * static_cast<std::size_t>(E) * A);
          continue;
        }
        for (int e = 0; e < E; ++e) {
          std::memcpy(disc + static_cast<std::size_t>(e) * A + first, src + static_cast<std::size_t>(e) * count,
                      sizeof(std::int64_t) * count);
        }
      }
    }

    std::vector<py::array> obs = new_obs();
    std::vector<py::object> masks = new_masks();
    const int M = static_cast<int>(sp.metric_names.size());
    py::array rewards = fresh_array(f32_, {E, A});
    py::array terminated = fresh_array(bool_, {E, A});
    py::array truncated = fresh_array(bool_, {E, A});
    py::array done = fresh_array(bool_, {E});
    StepOutputs out;
    for (auto& a : obs) out.obs.push_back(a.mutable_data());
    out.action_mask = mask_pointers(masks);
    out.final_metrics = scratch_final_metrics_.data();
    // Final observations: when the last step ended some episode (envs with short or staggered
    // episodes end some every step), into fresh arrays that the step's threads complete (zero
    // rows where nothing ended); otherwise into scratch, copied out in the rare step that ends one.
    std::vector<py::array> final_arrays;
    if (final_in_place_) {
      for (std::size_t g = 0; g < sp.groups.size(); ++g) {
        final_arrays.push_back(fresh_array(obs_dtypes_[g], {E, sp.groups[g].num_agents}, sp.groups[g].obs_shape));
        out.final_obs.push_back(final_arrays.back().mutable_data());
      }
      out.clear_unfinished_final_obs = true;
    } else {
      for (auto& s : scratch_final_obs_) out.final_obs.push_back(s.data());
    }
    out.rewards = static_cast<float*>(rewards.mutable_data());
    out.terminated = static_cast<bool*>(terminated.mutable_data());
    out.truncated = static_cast<bool*>(truncated.mutable_data());
    out.done = static_cast<bool*>(done.mutable_data());
    out.final_return = scratch_final_return_.data();
    out.final_length = scratch_final_length_.data();
    {
      // step() validates the actions (InvalidArgument -> ValueError) before anything changes.
      // A few envs step in well under a microsecond: releasing and retaking the GIL would cost
      // more than other Python threads gain.
      std::optional<py::gil_scoped_release> release;
      if (E >= kReleaseGilEnvs) release.emplace();
      env_->step(out);
    }
    // Final observations only when some env finished: fresh zero arrays, done rows copied in.
    const bool* d = static_cast<const bool*>(done.data());
    bool any = false;
    for (int e = 0; e < E; ++e) any = any || d[e];
    py::object final_obs = py::none();
    py::object final_metrics = py::none();
    py::object final_return = py::none();
    py::object final_length = py::none();
    const bool in_place = final_in_place_;
    final_in_place_ = any;
    if (any && in_place) {
      final_obs = to_list(final_arrays);
    } else if (any) {
      py::list lst;
      for (std::size_t g = 0; g < sp.groups.size(); ++g) {
        const auto& gs = sp.groups[g];
        py::array arr(obs_dtypes_[g], obs_shape(gs));
        auto* dst = static_cast<unsigned char*>(arr.mutable_data());
        const std::size_t row = static_cast<std::size_t>(gs.num_agents) * gs.obs_dim * genmarl::obs_dtype_size(gs.obs_dtype);
        for (int e = 0; e < E; ++e) {
          if (d[e]) std::memcpy(dst + e * row, scratch_final_obs_[g].data() + e * row, row);
          else std::memset(dst + e * row, 0, row);
        }
        lst.append(arr);
      }
      final_obs = lst;
    }
    if (any) {
      py::array_t<float> fr_arr({E, A});
      py::array_t<std::int32_t> fl_arr({E});
      py::array_t<double> fm_arr({E, M});
      float* fr = fr_arr.mutable_data();
      std::int32_t* fl = fl_arr.mutable_data();
      double* fm = fm_arr.mutable_data();
      for (int e = 0; e < E; ++e) {  // rows of envs that did not finish are zero
        const std::size_t ra = static_cast<std::size_t>(e) * A, rm = static_cast<std::size_t>(e) * M;
        if (!d[e]) {
          std::fill_n(fr + ra, A, 0.0f);
          std::fill_n(fm + rm, M, 0.0);
          fl[e] = 0;
          continue;
        }
        std::memcpy(fr + ra, scratch_final_return_.data() + ra, sizeof(float) * A);
        fl[e] = scratch_final_length_[e];
        if (M > 0) std::memcpy(fm + rm, scratch_final_metrics_.data() + rm, sizeof(double) * M);
      }
      final_return = fr_arr;
      final_length = fl_arr;
      final_metrics = fm_arr;
    }
    return py::make_tuple(to_list(obs), rewards, terminated, truncated, done, final_obs, final_return, final_length,
                          mask_list(masks), final_metrics);
  }

  // The per-agent API's step (VectorEnv.step), built here because it is the hot path of a
  // one-env Python loop. actions: a dict {agent: array} with exactly the env's agents (None is
  // returned otherwise, and Python names what is wrong). Returns (obs, rewards, terminated,
  // truncated, infos) keyed by agent -- views into the grouped arrays, infos holding the
  // agent's "action_mask" -- then (done, final_obs per group or None, final_return,
  // final_length, final_metrics) for the infos of finished episodes.
  py::object step_agents(const py::dict& actions) {
    const auto& sp = spec();
    const int A = sp.num_agents();
    const py::object arrays = values_in_order(actions, agent_keys_);
    if (arrays.is_none()) return py::none();
    py::tuple r = step(arrays, false);
    const py::list obs = r[0];
    const py::array rew = r[1], term = r[2], trunc = r[3];
    const py::object masks = r[8];
    py::dict obs_d, rew_d, term_d, trunc_d, infos;
    for (int i = 0; i < A; ++i) {
      const auto& a = sp.agents[i];
      const py::str& key = agent_keys_[i];
      obs_d[key] = column(obs[a.group_index], a.index_in_group);
      rew_d[key] = column(rew, i);
      term_d[key] = column(term, i);
      trunc_d[key] = column(trunc, i);
      py::dict info;
      if (!masks.is_none()) {
        const py::object m = py::reinterpret_borrow<py::list>(masks)[a.group_index];
        if (!m.is_none()) info[action_mask_key_] = column(m, a.index_in_group);
      }
      infos[key] = info;
    }
    return py::make_tuple(obs_d, rew_d, term_d, trunc_d, infos, r[4], r[5], r[6], r[7], r[9]);
  }

  // VectorEnv.step_grouped's dicts, built here like step_agents': actions {group: array} with
  // exactly the env's groups (else None). Returns (obs, rewards, terminated, truncated) keyed by
  // group -- rewards and dones are views of the group's columns -- then (infos with "done" and,
  // for envs with masks, "action_mask" {group: mask}, done, final_obs per group or None,
  // final_return, final_length, final_metrics).
  py::object step_groups(const py::dict& actions) {
    const auto& sp = spec();
    const int G = static_cast<int>(sp.groups.size());
    const py::object arrays = values_in_order(actions, group_keys_);
    if (arrays.is_none()) return py::none();
    py::tuple r = step(arrays, true);
    const py::list obs = r[0];
    const py::object masks = r[8];
    py::dict obs_d, rew_d, term_d, trunc_d, infos, mask_d;
    for (int k = 0; k < G; ++k) {
      const auto& g = sp.groups[k];
      const py::str& key = group_keys_[k];
      obs_d[key] = obs[k];
      rew_d[key] = columns(r[1], g.first_agent, g.num_agents);
      term_d[key] = columns(r[2], g.first_agent, g.num_agents);
      trunc_d[key] = columns(r[3], g.first_agent, g.num_agents);
      if (!masks.is_none() && g.action_mask) mask_d[key] = py::reinterpret_borrow<py::list>(masks)[k];
    }
    infos[done_key_] = r[4];
    if (!masks.is_none()) infos[action_mask_key_] = mask_d;
    return py::make_tuple(obs_d, rew_d, term_d, trunc_d, infos, r[4], r[5], r[6], r[7], r[9]);
  }

  py::dict get_state() {
    std::vector<genmarl::StateArray> state;
    {
      auto held = mutex_.lock();
      state = env_->get_state();
    }
    return to_dict(state);
  }

  // The scenario's fixed arrays (empty for scenarios without a layout).
  py::dict layout() {
    std::vector<genmarl::StateArray> arrays;
    {
      auto held = mutex_.lock();
      arrays = env_->layout();
    }
    return to_dict(arrays);
  }

  void set_state(const py::dict& state) {
    std::vector<genmarl::StateArray> arrays;
    for (auto item : state) {
      genmarl::StateArray a;
      a.name = py::cast<std::string>(item.first);
      py::array raw = py::array::ensure(py::reinterpret_borrow<py::object>(item.second));
      if (!raw) throw py::type_error("set_state: '" + a.name + "' must be a numpy array");
      py::array arr = py::array::ensure(raw, py::array::c_style);
      a.dtype = std::string(py::str(arr.dtype().attr("str")));
      for (py::ssize_t i = 0; i < arr.ndim(); ++i) a.shape.push_back(arr.shape(i));
      a.data.resize(static_cast<std::size_t>(arr.nbytes()));
      if (arr.nbytes()) std::memcpy(a.data.data(), arr.data(), static_cast<std::size_t>(arr.nbytes()));
      arrays.push_back(std::move(a));
    }
    auto held = mutex_.lock();
    env_->set_state(arrays);
  }

  int curriculum_stage() {
    auto held = mutex_.lock();
    return env_->curriculum_stage();
  }
  void set_curriculum_stage(int stage) {
    auto held = mutex_.lock();
    env_->set_curriculum_stage(stage);
  }

 private:
  // Named arrays (state or layout) -> a dict of fresh numpy arrays.
  static py::dict to_dict(const std::vector<genmarl::StateArray>& arrays) {
    py::dict out;
    for (const auto& a : arrays) {
      std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
      py::array arr{py::dtype(a.dtype), shape};
      if (!a.data.empty()) std::memcpy(arr.mutable_data(), a.data.data(), a.data.size());
      out[py::str(a.name)] = arr;
    }
    return out;
  }

  // [num_envs, agents_in_group, *obs_shape]
  std::vector<py::ssize_t> obs_shape(const genmarl::GroupSpec& g) const {
    std::vector<py::ssize_t> shape;
    shape.reserve(2 + g.obs_shape.size());
    shape.push_back(env_->num_envs());
    shape.push_back(g.num_agents);
    for (int d : g.obs_shape) shape.push_back(d);
    return shape;
  }
  std::vector<py::array> new_obs() const {
    std::vector<py::array> obs;
    const auto& groups = spec().groups;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      obs.push_back(fresh_array(obs_dtypes_[g], {env_->num_envs(), groups[g].num_agents}, groups[g].obs_shape));
    }
    return obs;
  }
  // d's values in the order of `keys` (a list), or None unless d's keys are exactly `keys`.
  static py::object values_in_order(const py::dict& d, const std::vector<py::str>& keys) {
    const auto n = static_cast<py::ssize_t>(keys.size());
    if (PyDict_Size(d.ptr()) != n) return py::none();
    py::list values(n);
    for (py::ssize_t k = 0; k < n; ++k) {
      PyObject* v = PyDict_GetItemWithError(d.ptr(), keys[k].ptr());
      if (v == nullptr) {
        if (PyErr_Occurred()) throw py::error_already_set();
        return py::none();
      }
      values[k] = py::reinterpret_borrow<py::object>(v);
    }
    return values;
  }

  static py::dtype numpy_dtype(genmarl::ObsDtype d) {
    return genmarl::visit_obs_dtype(d, [](auto t) { return py::dtype::of<decltype(t)>(); });
  }
  // None when no group has masks (the common case costs nothing), else a list per group.
  py::object mask_list(const std::vector<py::object>& masks) const {
    if (!has_masks_) return py::none();
    return to_list(masks);
  }
  // [num_envs, agents_in_group, action_n] bool per group with masks, None for the others.
  std::vector<py::object> new_masks() const {
    std::vector<py::object> masks;
    if (!has_masks_) return masks;
    for (const auto& g : spec().groups) {
      if (g.action_mask) masks.push_back(fresh_array(bool_, {env_->num_envs(), g.num_agents, g.action.n}));
      else masks.push_back(py::none());
    }
    return masks;
  }
  static std::vector<bool*> mask_pointers(std::vector<py::object>& masks) {
    std::vector<bool*> ptrs;
    for (auto& m : masks) ptrs.push_back(m.is_none() ? nullptr : static_cast<bool*>(py::reinterpret_borrow<py::array>(m).mutable_data()));
    return ptrs;
  }
  template <class T>
  static py::list to_list(const std::vector<T>& v) {
    py::list l;
    for (const auto& a : v) l.append(a);
    return l;
  }

  std::unique_ptr<BatchedEnv> env_;
  std::vector<std::vector<unsigned char>> scratch_final_obs_;  // written by step(), under the mutex
  std::vector<py::dtype> obs_dtypes_;                       // per group
  py::dtype f32_ = py::dtype::of<float>(), bool_ = py::dtype::of<bool>();
  std::vector<double> scratch_final_metrics_;          // likewise: [num_envs, num_metrics]
  std::vector<float> scratch_final_return_;            // likewise: [num_envs, num_agents]
  std::vector<std::int32_t> scratch_final_length_;     // likewise: [num_envs]
  bool final_in_place_ = false;                        // the last step ended an episode (under the mutex)
  std::vector<py::str> agent_keys_, group_keys_;       // the agents' and groups' names, as Python keys
  py::str done_key_;
  py::str action_mask_key_;
  bool has_masks_ = false;
  EnvMutex mutex_;
};

const char* kind_name(genmarl::ParamKind k) {
  switch (k) {
    case genmarl::ParamKind::kInt: return "int";
    case genmarl::ParamKind::kFloat: return "float";
    case genmarl::ParamKind::kBool: return "bool";
    case genmarl::ParamKind::kOptionalInt: return "optional_int";
    case genmarl::ParamKind::kIntTuple: return "int_tuple";
    case genmarl::ParamKind::kString: return "string";
    case genmarl::ParamKind::kOptionalIntList: return "optional_int_list";
  }
  return "?";
}

}  // namespace

void bind_envs(py::module_& m) {
  py::register_exception<genmarl::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);

  m.attr("MAX_THREADS") = genmarl::kMaxThreads;
  m.def("list_envs", &genmarl::list_envs, "Names of the registered environments.");
  m.def(
      "env_params",
      [](const std::string& name) {
        py::list out;
        for (const auto& p : genmarl::find_env(name).params) {
          py::object def = py::float_(p.default_value);
          if (p.kind == genmarl::ParamKind::kString) def = py::str(p.default_string);
          if ((p.kind == genmarl::ParamKind::kIntTuple && p.length == 0) || p.kind == genmarl::ParamKind::kOptionalIntList) {
            def = py::tuple(py::cast(p.default_list));
          }
          out.append(py::make_tuple(p.name, kind_name(p.kind), def, p.doc, p.length));
        }
        return out;
      },
      py::arg("name"),
      "Accepted arguments of an environment or alias: (name, kind, default, doc, tuple length, 0 for a list of any "
      "length); optional_int None is -1, optional_int_list None is (-1,).");
  m.def("load_env_module", &genmarl::load_env_module, py::arg("path"),
        "Loads a shared library of users' scenarios (GENMARL_ENV_MODULE) and registers them; returns their names.");
  m.def(
      "resolve_env",
      [](const std::string& name) {
        auto r = genmarl::resolve_env(name);
        py::dict args;
        for (const auto& [k, v] : r.alias_params.values()) args[py::str(k)] = v;
        for (const auto& [k, v] : r.alias_params.tuples()) args[py::str(k)] = py::tuple(py::cast(v));
        for (const auto& [k, v] : r.alias_params.strings()) args[py::str(k)] = py::str(v);
        return py::make_tuple(r.entry->name, r.entry->family, args);
      },
      py::arg("name"), "(registered name, family, the arguments an alias stands for) of a name or alias.");

  py::class_<PyBatchedEnv>(m, "BatchedEnv")
      .def(py::init([](const std::string& name, const std::map<std::string, double>& params,
                       const std::map<std::string, std::vector<double>>& tuples,
                       const std::map<std::string, std::string>& strings, int num_envs, int num_threads,
                       std::uint64_t seed) {
             return std::make_unique<PyBatchedEnv>(
                 genmarl::make_env(name, genmarl::Params(params, tuples, strings), num_envs, num_threads, seed));
           }),
           py::arg("name"), py::arg("params"), py::arg("tuples"), py::arg("strings"), py::arg("num_envs"),
           py::arg("num_threads"), py::arg("seed"))
      .def_property_readonly("name", [](PyBatchedEnv& s) { return s.spec().name; })
      .def_property_readonly("family", [](PyBatchedEnv& s) { return s.spec().family; })
      .def_property_readonly("metric_names", [](PyBatchedEnv& s) { return s.spec().metric_names; })
      .def_property_readonly("num_envs", [](PyBatchedEnv& s) { return s.env().num_envs(); })
      .def_property_readonly("num_threads", [](PyBatchedEnv& s) { return s.env().num_threads(); })
      .def_property_readonly("seed", [](PyBatchedEnv& s) { return s.env().seed(); })
      .def_property_readonly("max_cycles", [](PyBatchedEnv& s) { return s.spec().max_cycles; })
      .def_property_readonly("agents", &PyBatchedEnv::agents)
      .def_property_readonly("groups", &PyBatchedEnv::groups)
      .def("reset", &PyBatchedEnv::reset, py::arg("seed") = py::none())
      .def("observe", &PyBatchedEnv::observe)
      .def("step", &PyBatchedEnv::step, py::arg("actions"), py::arg("grouped"))
      .def("step_groups", &PyBatchedEnv::step_groups, py::arg("actions"),
           "VectorEnv.step_grouped: grouped dicts built in C++, or None when the keys are not exactly the groups")
      .def("step_agents", &PyBatchedEnv::step_agents, py::arg("actions"),
           "VectorEnv.step: per-agent dicts built in C++, or None when the keys are not exactly the agents")
      .def("get_state", &PyBatchedEnv::get_state)
      .def("set_state", &PyBatchedEnv::set_state, py::arg("state"))
      .def("layout", &PyBatchedEnv::layout)
      .def_property_readonly("num_curriculum_stages", [](PyBatchedEnv& s) { return s.env().num_curriculum_stages(); })
      .def_property("curriculum_stage", &PyBatchedEnv::curriculum_stage, &PyBatchedEnv::set_curriculum_stage);
}
