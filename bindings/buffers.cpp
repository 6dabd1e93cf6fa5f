// Bindings of the experience buffers: thin adapters over genmarl::buffer.
//
// Batches cross as dicts of numpy arrays keyed by field name. Incoming arrays
// are checked (names, dtypes, shapes, equal batch sizes) and copied into the
// buffer's storage with the GIL held; sampling allocates fresh output arrays,
// then releases the GIL while C++ gathers straight into them, so a sampled
// batch is owned by the caller and never written again.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "genmarl/buffer/all.hpp"

namespace py = pybind11;
namespace gb = genmarl::buffer;
using gb::DType;
using gb::InvalidArgument;

namespace {

// genmarl's dtype names are numpy's.
py::dtype numpy_dtype(DType t) { return py::dtype(gb::dtype_name(t)); }

// True when array dtype d is exactly t in native byte order (no allocation).
bool dtype_is(const py::dtype& d, DType t) {
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (d.byteorder() == '>') return false;
  switch (t) {
    case DType::kFloat32: return kind == 'f' && size == 4;
    case DType::kFloat16: return kind == 'f' && size == 2;
    case DType::kInt64: return kind == 'i' && size == 8;
    case DType::kInt32: return kind == 'i' && size == 4;
    case DType::kUInt8: return kind == 'u' && size == 1;
    case DType::kBool: return kind == 'b' && size == 1;
  }
  return false;
}

DType parse_dtype(const py::handle& d, const std::string& field) {
  const py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(d));
  const std::string name = py::str(dt.attr("name"));
  for (int i = 0; i < gb::kNumDTypes; ++i) {
    if (name == gb::dtype_name(static_cast<DType>(i))) return static_cast<DType>(i);
  }
  throw py::type_error("field '" + field + "': dtype " + name +
                       " is not supported; use float32, float16, int64, int32, uint8 or bool");
}

// spec: list of (name, shape, dtype) as normalised by genmarl.buffers.
gb::Schema parse_schema(const py::list& spec) {
  std::vector<gb::Field> fields;
  for (const auto& item : spec) {
    const auto t = item.cast<py::tuple>();
    gb::Field f;
    f.name = t[0].cast<std::string>();
    f.shape = t[1].cast<std::vector<std::int64_t>>();
    f.dtype = parse_dtype(t[2], f.name);
    fields.push_back(std::move(f));
  }
  return gb::Schema(std::move(fields));
}

py::list schema_to_list(const gb::Schema& s) {
  py::list out;
  for (const auto& f : s.fields()) out.append(py::make_tuple(f.name, py::tuple(py::cast(f.shape)), gb::dtype_name(f.dtype)));
  return out;
}

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// Checked, C-contiguous views of one batch's fields in schema order.
struct InBatch {
  std::vector<py::array> arrays;  // keeps any contiguous copies alive
  std::vector<const void*> ptrs;
  std::int64_t n = -1;
};

// batch: dict name -> array [n, *shape] (leading dims `lead` entries when lead > 1).
InBatch parse_batch(const gb::Schema& schema, const py::handle& batch, int lead_dims, const char* what) {
  if (!py::isinstance<py::dict>(batch)) {
    throw py::type_error(std::string(what) + " must be a dict of arrays keyed by field name (" + schema.names() +
                         "), got " + std::string(py::str(py::type::handle_of(batch).attr("__name__"))));
  }
  const auto d = py::reinterpret_borrow<py::dict>(batch);
  InBatch out;
  std::size_t found = 0;
  std::vector<py::ssize_t> lead;
  for (const auto& f : schema.fields()) {
    PyObject* obj = PyDict_GetItemString(d.ptr(), f.name.c_str());
    if (!obj) {
      std::string missing;
      for (const auto& g : schema.fields()) {
        if (!d.contains(g.name)) missing += (missing.empty() ? "'" : ", '") + g.name + "'";
      }
      throw py::key_error(std::string(what) + " is missing fields " + missing + "; expected exactly: " + schema.names());
    }
    ++found;
    py::array a = py::isinstance<py::array>(obj) ? py::reinterpret_borrow<py::array>(obj)
                                                 : py::array::ensure(py::reinterpret_borrow<py::object>(obj));
    if (!a) {
      PyErr_Clear();
      throw py::type_error(std::string(what) + " field '" + f.name + "' must be an array, got " +
                           std::string(py::str(py::handle(obj).get_type().attr("__name__"))));
    }
    const DType want = f.dtype;
    if (!dtype_is(a.dtype(), want)) {
      std::string got = py::str(a.dtype());
      if (a.dtype().byteorder() == '>') got += " (big-endian)";
      throw py::type_error(std::string(what) + " field '" + f.name + "' has dtype " + got + "; expected " +
                           gb::dtype_name(want) + " in native byte order");
    }
    bool ok = a.ndim() == lead_dims + static_cast<py::ssize_t>(f.shape.size());
    for (std::size_t i = 0; ok && i < f.shape.size(); ++i) ok = a.shape(lead_dims + i) == f.shape[i];
    if (ok && lead.empty()) {
      for (int i = 0; i < lead_dims; ++i) lead.push_back(a.shape(i));
    }
    for (int i = 0; ok && i < lead_dims; ++i) ok = a.shape(i) == lead[static_cast<std::size_t>(i)];
    if (!ok) {
      std::string expect = "(";
      for (int i = 0; i < lead_dims; ++i) expect += (lead.empty() ? std::string(lead_dims == 1 ? "batch" : "num_envs") : std::to_string(lead[static_cast<std::size_t>(i)])) + ", ";
      for (std::size_t i = 0; i < f.shape.size(); ++i) expect += std::to_string(f.shape[i]) + (i + 1 < f.shape.size() ? ", " : "");
      if (f.shape.empty()) expect.resize(expect.size() - 1);
      expect += ")";
      throw py::value_error(std::string(what) + " field '" + f.name + "' has shape " + shape_of(a) + "; expected " +
                            expect);
    }
    if (!(a.flags() & py::array::c_style)) a = py::array::ensure(a, py::array::c_style);
    out.ptrs.push_back(a.data());
    out.arrays.push_back(std::move(a));
  }
  if (found != static_cast<std::size_t>(py::len(d))) {
    std::string extra;
    for (const auto& kv : d) {
      const auto k = py::str(kv.first).cast<std::string>();
      if (schema.find(k) < 0) extra += (extra.empty() ? "'" : ", '") + k + "'";
    }
    throw py::key_error(std::string(what) + " has unknown fields " + extra + "; expected exactly: " + schema.names());
  }
  out.n = lead.empty() ? 0 : lead[0];
  return out;
}

// Fresh output arrays [lead..., *shape] for each field.
struct OutBatch {
  std::vector<py::array> arrays;
  std::vector<void*> ptrs;
};

OutBatch new_batch(const gb::Schema& schema, const std::vector<py::ssize_t>& lead) {
  OutBatch out;
  for (const auto& f : schema.fields()) {
    std::vector<py::ssize_t> shape = lead;
    shape.insert(shape.end(), f.shape.begin(), f.shape.end());
    py::array a(numpy_dtype(f.dtype), shape);
    out.ptrs.push_back(a.mutable_data());
    out.arrays.push_back(std::move(a));
  }
  return out;
}

py::dict to_dict(const gb::Schema& schema, OutBatch& b, py::dict d = py::dict()) {
  for (std::size_t i = 0; i < schema.size(); ++i) d[py::str(schema[i].name)] = std::move(b.arrays[i]);
  return d;
}

std::int64_t positive(std::int64_t v, const char* name) {
  if (v <= 0) throw InvalidArgument(std::string(name) + " must be positive, got " + std::to_string(v));
  return v;
}

py::array_t<std::int64_t> index_array(const py::handle& h, const char* name) {
  py::array a = py::array::ensure(h);
  if (!a) throw py::type_error(std::string(name) + " must be an array of integers");
  if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be 1-D, got shape " + shape_of(a));
  const char kind = a.dtype().kind();
  if (a.size() > 0 && kind != 'i' && kind != 'u') {
    throw py::type_error(std::string(name) + " must hold integers, got dtype " + std::string(py::str(a.dtype().attr("name"))));
  }
  return py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
}

py::array_t<double> value_array(const py::handle& h, const char* name, py::ssize_t n) {
  py::array a = py::array::ensure(h);
  if (!a) throw py::type_error(std::string(name) + " must be an array of numbers");
  if (a.size() > 0 && a.dtype().kind() != 'f' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u') {
    throw py::type_error(std::string(name) + " must hold numbers, got dtype " + std::string(py::str(a.dtype().attr("name"))));
  }
  if (a.ndim() != 1 || a.shape(0) != n) {
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(n) + ",), got " + shape_of(a));
  }
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
}

gb::SequenceMode parse_mode(const std::string& mode) {
  if (mode == "pad") return gb::SequenceMode::kPad;
  if (mode == "stitch") return gb::SequenceMode::kStitch;
  throw InvalidArgument("mode must be 'pad' or 'stitch', got '" + mode + "'");
}

}  // namespace

void bind_buffers(py::module_& m) {
  py::register_exception<gb::FileError>(m, "BufferFileError", PyExc_OSError);
  py::register_exception<gb::MemoryLimitError>(m, "BufferMemoryError", PyExc_MemoryError);

  py::class_<gb::ReplayBuffer>(m, "ReplayBuffer")
      .def(py::init([](const py::list& spec, std::int64_t capacity, std::uint64_t seed, std::int64_t num_envs) {
             return gb::ReplayBuffer(parse_schema(spec), positive(capacity, "capacity"), seed, num_envs);
           }),
           py::arg("spec"), py::arg("capacity"), py::arg("seed"), py::arg("num_envs"))
      .def_property_readonly("spec", [](const gb::ReplayBuffer& b) { return schema_to_list(b.schema()); })
      .def_property_readonly("capacity", &gb::ReplayBuffer::capacity)
      .def_property_readonly("num_envs", &gb::ReplayBuffer::num_envs)
      .def_property_readonly("nbytes", &gb::ReplayBuffer::nbytes)
      .def("__len__", &gb::ReplayBuffer::size)
      .def("add",
           [](gb::ReplayBuffer& b, const py::handle& batch) {
             InBatch in = parse_batch(b.schema(), batch, 1, "batch");
             b.add(in.ptrs.data(), in.n);
           })
      .def("sample",
           [](gb::ReplayBuffer& b, std::int64_t batch_size, std::int64_t n_step, double gamma, bool indices) {
             positive(batch_size, "batch_size");
             OutBatch out = new_batch(b.schema(), {batch_size});
             py::array_t<std::int64_t> idx(batch_size);
             py::dict d;
             if (n_step == 0) {  // plain sampling
               py::gil_scoped_release release;
               b.sample(batch_size, out.ptrs.data(), idx.mutable_data());
             } else {
               py::array_t<float> disc(batch_size);
               {
                 py::gil_scoped_release release;
                 b.sample_n_step(batch_size, n_step, gamma, out.ptrs.data(), disc.mutable_data(), idx.mutable_data());
               }
               d["discount"] = disc;
             }
             if (indices) d["indices"] = idx;
             return to_dict(b.schema(), out, d);
           },
           py::arg("batch_size"), py::arg("n_step"), py::arg("gamma"), py::arg("indices"))
      .def("save", &gb::ReplayBuffer::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def_static("load", &gb::ReplayBuffer::load, py::arg("path"), py::call_guard<py::gil_scoped_release>());

  py::class_<gb::PrioritizedReplayBuffer>(m, "PrioritizedReplayBuffer")
      .def(py::init([](const py::list& spec, std::int64_t capacity, double alpha, double beta, double eps,
                       std::uint64_t seed) {
             return gb::PrioritizedReplayBuffer(parse_schema(spec), positive(capacity, "capacity"), alpha, beta, eps, seed);
           }),
           py::arg("spec"), py::arg("capacity"), py::arg("alpha"), py::arg("beta"), py::arg("eps"), py::arg("seed"))
      .def_property_readonly("spec", [](const gb::PrioritizedReplayBuffer& b) { return schema_to_list(b.schema()); })
      .def_property_readonly("capacity", &gb::PrioritizedReplayBuffer::capacity)
      .def_property_readonly("nbytes", &gb::PrioritizedReplayBuffer::nbytes)
      .def_property_readonly("alpha", &gb::PrioritizedReplayBuffer::alpha)
      .def_property("beta", &gb::PrioritizedReplayBuffer::beta, &gb::PrioritizedReplayBuffer::set_beta)
      .def_property_readonly("eps", &gb::PrioritizedReplayBuffer::eps)
      .def_property_readonly("max_priority", &gb::PrioritizedReplayBuffer::max_priority)
      .def("__len__", &gb::PrioritizedReplayBuffer::size)
      .def("add",
           [](gb::PrioritizedReplayBuffer& b, const py::handle& batch, const py::object& priorities) {
             InBatch in = parse_batch(b.schema(), batch, 1, "batch");
             if (priorities.is_none()) {
               b.add(in.ptrs.data(), in.n);
             } else {
               auto p = value_array(priorities, "priorities", in.n);
               b.add(in.ptrs.data(), in.n, p.data());
             }
           },
           py::arg("batch"), py::arg("priorities"))
      .def("sample",
           [](gb::PrioritizedReplayBuffer& b, std::int64_t batch_size, const std::optional<double>& beta) {
             positive(batch_size, "batch_size");
             OutBatch out = new_batch(b.schema(), {batch_size});
             py::array_t<std::int64_t> idx(batch_size);
             py::array_t<float> w(batch_size);
             {
               py::gil_scoped_release release;
               b.sample(batch_size, out.ptrs.data(), idx.mutable_data(), w.mutable_data(), beta);
             }
             py::dict d;
             d["indices"] = idx;
             d["weights"] = w;
             return to_dict(b.schema(), out, d);
           },
           py::arg("batch_size"), py::arg("beta"))
      .def("update_priorities",
           [](gb::PrioritizedReplayBuffer& b, const py::handle& indices, const py::handle& priorities) {
             auto idx = index_array(indices, "indices");
             auto p = value_array(priorities, "priorities", idx.shape(0));
             py::gil_scoped_release release;
             b.update_priorities(idx.data(), p.data(), idx.shape(0));
           },
           py::arg("indices"), py::arg("priorities"))
      .def("priorities",
           [](const gb::PrioritizedReplayBuffer& b, const py::handle& indices) {
             auto idx = index_array(indices, "indices");
             py::array_t<double> out(idx.shape(0));
             b.get_priorities(idx.data(), out.mutable_data(), idx.shape(0));
             return out;
           },
           py::arg("indices"))
      .def("save", &gb::PrioritizedReplayBuffer::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def_static("load", &gb::PrioritizedReplayBuffer::load, py::arg("path"),
                  py::call_guard<py::gil_scoped_release>());

  py::class_<gb::EpisodeBuffer>(m, "EpisodeBuffer")
      .def(py::init([](const py::list& spec, std::int64_t capacity_steps, std::int64_t num_envs, std::uint64_t seed) {
             return gb::EpisodeBuffer(parse_schema(spec), capacity_steps, num_envs, seed);
           }),
           py::arg("spec"), py::arg("capacity_steps"), py::arg("num_envs"), py::arg("seed"))
      .def_property_readonly("spec", [](const gb::EpisodeBuffer& b) { return schema_to_list(b.schema()); })
      .def_property_readonly("capacity", &gb::EpisodeBuffer::capacity)
      .def_property_readonly("num_envs", &gb::EpisodeBuffer::num_envs)
      .def_property_readonly("steps_per_env", &gb::EpisodeBuffer::steps_per_env)
      .def_property_readonly("nbytes", &gb::EpisodeBuffer::nbytes)
      .def_property_readonly("num_episodes", &gb::EpisodeBuffer::num_episodes)
      .def("__len__", &gb::EpisodeBuffer::size)
      .def("add_step",
           [](gb::EpisodeBuffer& b, const py::handle& step, const py::object& env_ids) {
             InBatch in = parse_batch(b.schema(), step, 1, "step");
             if (env_ids.is_none()) {
               b.add_step(in.ptrs.data(), nullptr, in.n);
             } else {
               auto ids = index_array(env_ids, "env_ids");
               if (ids.shape(0) != in.n) {
                 throw py::value_error("env_ids has " + std::to_string(ids.shape(0)) + " entries but the step holds " +
                                       std::to_string(in.n) + " items");
               }
               b.add_step(in.ptrs.data(), ids.data(), in.n);
             }
           },
           py::arg("step"), py::arg("env_ids"))
      .def("end_episode",
           [](gb::EpisodeBuffer& b, const py::handle& env_ids) {
             auto ids = index_array(env_ids, "env_ids");
             b.end_episode(ids.data(), ids.shape(0));
           },
           py::arg("env_ids"))
      .def("sample_sequences",
           [](gb::EpisodeBuffer& b, std::int64_t batch_size, std::int64_t length, const std::string& mode) {
             const auto m = parse_mode(mode);
             positive(batch_size, "batch_size");
             positive(length, "length");
             OutBatch out = new_batch(b.schema(), {batch_size, length});
             py::array_t<bool> mask({batch_size, length}), first({batch_size, length});
             py::array_t<std::int64_t> env({batch_size}), start({batch_size});
             {
               py::gil_scoped_release release;
               b.sample_sequences(batch_size, length, m, out.ptrs.data(), mask.mutable_data(), first.mutable_data(),
                                  env.mutable_data(), start.mutable_data());
             }
             py::dict d;
             d["mask"] = mask;
             d["is_first"] = first;
             d["env_ids"] = env;
             d["starts"] = start;
             return to_dict(b.schema(), out, d);
           },
           py::arg("batch_size"), py::arg("length"), py::arg("mode"))
      .def("save", &gb::EpisodeBuffer::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def_static("load", &gb::EpisodeBuffer::load, py::arg("path"), py::call_guard<py::gil_scoped_release>());

  py::class_<gb::RolloutBuffer>(m, "RolloutBuffer")
      .def(py::init([](const py::list& spec, std::int64_t num_steps, std::int64_t num_envs) {
             return gb::RolloutBuffer(parse_schema(spec), num_steps, num_envs);
           }),
           py::arg("spec"), py::arg("num_steps"), py::arg("num_envs"))
      .def_property_readonly("spec", [](const gb::RolloutBuffer& b) { return schema_to_list(b.schema()); })
      .def_property_readonly("derived_spec", [](const gb::RolloutBuffer& b) { return schema_to_list(b.derived_schema()); })
      .def_property_readonly("gae_prefixes", &gb::RolloutBuffer::gae_prefixes)
      .def_property_readonly("num_steps", &gb::RolloutBuffer::num_steps)
      .def_property_readonly("num_envs", &gb::RolloutBuffer::num_envs)
      .def_property_readonly("step", &gb::RolloutBuffer::step)
      .def_property_readonly("full", &gb::RolloutBuffer::full)
      .def_property_readonly("gae_ready", &gb::RolloutBuffer::gae_ready)
      .def_property_readonly("nbytes", &gb::RolloutBuffer::nbytes)
      .def("add",
           [](gb::RolloutBuffer& b, const py::handle& step) {
             InBatch in = parse_batch(b.schema(), step, 1, "step");
             if (in.n != b.num_envs()) {
               throw py::value_error("step holds " + std::to_string(in.n) + " items; expected one per env (" +
                                     std::to_string(b.num_envs()) + ")");
             }
             b.add(in.ptrs.data());
           },
           py::arg("step"))
      .def("reset", &gb::RolloutBuffer::reset)
      .def("compute_gae",
           [](gb::RolloutBuffer& b, const py::list& last_values, double gamma, double gae_lambda) {
             // last_values: one [num_envs, *reward shape] float32 array per GAE prefix (checked in Python).
             std::vector<py::array_t<float>> keep;
             std::vector<const float*> ptrs;
             for (const auto& v : last_values) {
               keep.push_back(v.cast<py::array_t<float, py::array::c_style | py::array::forcecast>>());
               ptrs.push_back(keep.back().data());
             }
             py::gil_scoped_release release;
             b.compute_gae(ptrs, gamma, gae_lambda);
           },
           py::arg("last_values"), py::arg("gamma"), py::arg("gae_lambda"))
      .def("gather",
           [](const gb::RolloutBuffer& b, const py::handle& rows, bool with_gae) {
             auto idx = index_array(rows, "rows");
             const py::ssize_t n = idx.shape(0);
             OutBatch out = new_batch(b.schema(), {n});
             OutBatch der = new_batch(b.derived_schema(), {n});
             if (with_gae && b.derived_schema().size() == 0) throw InvalidArgument("the spec has no reward field for GAE");
             {
               py::gil_scoped_release release;
               b.gather(idx.data(), n, out.ptrs.data(), with_gae ? der.ptrs.data() : nullptr);
             }
             py::dict d = to_dict(b.schema(), out);
             if (with_gae) to_dict(b.derived_schema(), der, d);
             return d;
           },
           py::arg("rows"), py::arg("with_gae"))
      .def("field",
           [](const gb::RolloutBuffer& b, const std::string& name) {
             int f = b.schema().find(name);
             bool derived = false;
             if (f < 0 && b.derived_schema().size() > 0) {
               f = b.derived_schema().find(name);
               derived = f >= 0;
             }
             if (f < 0) {
               std::string names = b.schema().names();
               if (b.derived_schema().size() > 0) names += ", " + b.derived_schema().names();
               throw py::key_error("no field '" + name + "'; the rollout has: " + names);
             }
             const auto& fd = (derived ? b.derived_schema() : b.schema())[static_cast<std::size_t>(f)];
             const std::int64_t steps = b.step();
             std::vector<py::ssize_t> shape = {steps, b.num_envs()};
             shape.insert(shape.end(), fd.shape.begin(), fd.shape.end());
             py::array a(numpy_dtype(fd.dtype), shape);
             b.copy_field(static_cast<std::size_t>(f), derived, a.mutable_data(), steps);
             return a;
           },
           py::arg("name"))
      .def("save", &gb::RolloutBuffer::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def_static("load", &gb::RolloutBuffer::load, py::arg("path"), py::call_guard<py::gil_scoped_release>());
}
