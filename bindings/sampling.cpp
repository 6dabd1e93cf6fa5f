// Bindings of the categorical sampling kernels: thin adapters over genmarl::sampling.
//
// Logits arrive as C-contiguous float32 [..., k] arrays (genmarl.sampling converts
// anything else). With the GIL held they are copied into owned storage and checked
// there (no NaN, no +inf, no row of only -inf; indices in range); fresh output arrays
// are allocated; then the GIL is released while the kernel reads the copy and writes
// the outputs, so no borrowed numpy pointer is read after the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include "genmarl/core/thread_pool.hpp"
#include "genmarl/sampling/categorical.hpp"

namespace py = pybind11;
namespace gs = genmarl::sampling;

namespace {

// Copies up to this many elements go to a per-thread buffer that is reused between calls (no
// page faults on fresh memory each call); larger ones get a buffer of their own.
constexpr std::size_t kReusedElems = std::size_t{1} << 22;  // 16 MiB of float32

std::string shape_of(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::vector<py::ssize_t> shape_vector(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// "name[i, j, ...]" for flat element `flat` of an array of `shape`; `tail` replaces the last
// coordinate when given (":" names a whole row).
std::string element_name(const char* name, const std::vector<py::ssize_t>& shape, std::int64_t flat,
                         const char* tail = nullptr) {
  std::vector<std::int64_t> coords(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    coords[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = std::string(name) + "[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d) s += ", ";
    s += (tail != nullptr && d + 1 == shape.size()) ? std::string(tail) : std::to_string(coords[d]);
  }
  return s + "]";
}

// A buffer for a copy of n elements of T.
template <class T>
class OwnedBuffer {
 public:
  explicit OwnedBuffer(std::size_t n) {
    static thread_local std::vector<T> reused;
    std::vector<T>& buffer = n <= kReusedElems ? reused : own_;
    if (buffer.size() < n) buffer.resize(n);
    data_ = buffer.data();
  }
  T* data() noexcept { return data_; }

 private:
  std::vector<T> own_;
  T* data_ = nullptr;
};

// The logits argument: a C-contiguous float32 array of shape [..., k], k >= 1.
struct Logits {
  py::array array;
  std::vector<py::ssize_t> shape;
  std::int64_t rows = 0;
  std::int64_t k = 0;
};

Logits logits_arg(const py::handle& h) {
  if (!py::isinstance<py::array>(h)) {
    throw py::type_error("logits must be a numpy array of shape [..., k], got " +
                         std::string(py::str(py::type::handle_of(h).attr("__name__"))));
  }
  Logits in;
  in.array = py::reinterpret_borrow<py::array>(h);
  const py::dtype dt = in.array.dtype();
  if (dt.kind() != 'f' || dt.itemsize() != 4 || dt.byteorder() == '>') {
    throw py::type_error("logits must be float32 in native byte order, got dtype " + std::string(py::str(dt)));
  }
  in.shape = shape_vector(in.array);
  if (in.shape.empty()) throw py::value_error("logits must have shape [..., k] with at least one dimension, got a 0-d array");
  in.k = in.shape.back();
  if (in.k < 1) {
    throw py::value_error("logits must have k >= 1 outcomes in the last dimension, got shape " + shape_of(in.shape));
  }
  if (!(in.array.flags() & py::array::c_style)) throw py::value_error("logits must be C-contiguous");
  in.rows = static_cast<std::int64_t>(in.array.size()) / in.k;
  return in;
}

float unimix_arg(double unimix) {
  if (!(unimix >= 0.0 && unimix < 1.0)) {
    throw py::value_error("unimix must be in [0, 1), got " + std::string(py::str(py::float_(unimix))));
  }
  return static_cast<float>(unimix);
}

// Copies the logits into owned storage and checks the copy: every value finite or -inf, and no
// row of only -inf (its softmax is undefined: no outcome would have positive probability).
class CheckedLogits {
 public:
  explicit CheckedLogits(const Logits& in) : buffer_(static_cast<std::size_t>(in.array.size())) {
    constexpr std::uint32_t kPosInf = 0x7F800000u, kNegInf = 0xFF800000u;
    const auto* src = static_cast<const float*>(in.array.data());
    float* dst = buffer_.data();
    const auto n = static_cast<std::int64_t>(in.array.size());
    // One vectorisable pass that copies and checks the bits (memcpy: no aliasing games);
    // positions are looked up only when something is wrong.
    std::uint32_t any_bad = 0, any_neg_inf = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      std::uint32_t bits;
      std::memcpy(&bits, src + j, sizeof bits);
      std::memcpy(dst + j, &bits, sizeof bits);
      any_bad |= static_cast<std::uint32_t>((bits & 0x7FFFFFFFu) >= kPosInf && bits != kNegInf);
      any_neg_inf |= static_cast<std::uint32_t>(bits == kNegInf);
    }
    const float* x = buffer_.data();
    if (any_bad) {
      for (std::int64_t j = 0; j < n; ++j) {
        if (std::isnan(x[j])) throw py::value_error(element_name("logits", in.shape, j) + " is nan; logits must be finite or -inf");
        if (x[j] == std::numeric_limits<float>::infinity()) {
          throw py::value_error(element_name("logits", in.shape, j) + " is +inf; logits must be finite or -inf");
        }
      }
    }
    if (any_neg_inf) {
      for (std::int64_t r = 0; r < in.rows; ++r) {
        std::int64_t i = 0;
        while (i < in.k && x[r * in.k + i] == -std::numeric_limits<float>::infinity()) ++i;
        if (i == in.k) {
          throw py::value_error(element_name("logits", in.shape, r * in.k, ":") +
                                " is -inf everywhere: no outcome has positive probability");
        }
      }
    }
  }
  const float* data() noexcept { return buffer_.data(); }

 private:
  OwnedBuffer<float> buffer_;
};

// Pools shared by every call that asks for the same thread count, created on first use (a
// pool runs one job at a time, so concurrent callers queue). ForkSafePool restarts a pool
// inherited through fork() in the child.
genmarl::ThreadPool* shared_pool(int num_threads) {
  if (num_threads <= 1) return nullptr;
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<genmarl::ForkSafePool>> pools;
  std::lock_guard<std::mutex> lock(mutex);
  auto& entry = pools[num_threads];
  if (!entry) entry = std::make_unique<genmarl::ForkSafePool>(static_cast<std::size_t>(num_threads));
  return &entry->get();
}

py::tuple categorical_sample(const py::handle& logits, std::uint64_t seed, std::uint64_t stream, double unimix,
                             bool one_hot, int num_threads) {
  Logits in = logits_arg(logits);
  const float mix = unimix_arg(unimix);
  genmarl::check_num_threads(num_threads);
  CheckedLogits x(in);
  const std::vector<py::ssize_t> lead(in.shape.begin(), in.shape.end() - 1);
  py::array_t<std::int64_t> index(lead);
  py::array_t<float> log_prob(lead);
  py::array_t<float> hot = one_hot ? py::array_t<float>(in.shape) : py::array_t<float>(0);
  std::int64_t* index_ptr = index.mutable_data();
  float* log_prob_ptr = log_prob.mutable_data();
  float* hot_ptr = one_hot ? hot.mutable_data() : nullptr;
  genmarl::ThreadPool* pool = shared_pool(num_threads);
  {
    py::gil_scoped_release release;
    gs::sample(x.data(), in.rows, in.k, seed, stream, mix, index_ptr, log_prob_ptr, hot_ptr, pool);
  }
  if (one_hot) return py::make_tuple(index, log_prob, hot);
  return py::make_tuple(index, log_prob);
}

py::array_t<float> categorical_log_prob(const py::handle& logits, const py::handle& index, double unimix) {
  Logits in = logits_arg(logits);
  const float mix = unimix_arg(unimix);
  if (!py::isinstance<py::array>(index)) throw py::type_error("index must be a numpy array of int64");
  const auto idx = py::reinterpret_borrow<py::array>(index);
  const py::dtype dt = idx.dtype();
  if (dt.kind() != 'i' || dt.itemsize() != 8 || dt.byteorder() == '>') {
    throw py::type_error("index must be int64 in native byte order, got dtype " + std::string(py::str(dt)));
  }
  const std::vector<py::ssize_t> lead(in.shape.begin(), in.shape.end() - 1);
  if (shape_vector(idx) != lead) {
    throw py::value_error("index must have the shape of logits without its last dimension, " + shape_of(lead) +
                          ", got " + shape_of(shape_vector(idx)));
  }
  if (!(idx.flags() & py::array::c_style)) throw py::value_error("index must be C-contiguous");
  OwnedBuffer<std::int64_t> owned_index(static_cast<std::size_t>(in.rows));
  std::int64_t* ix = owned_index.data();
  if (in.rows > 0) std::memcpy(ix, idx.data(), static_cast<std::size_t>(in.rows) * sizeof(std::int64_t));
  for (std::int64_t r = 0; r < in.rows; ++r) {
    if (ix[r] < 0 || ix[r] >= in.k) {
      throw py::value_error(element_name("index", lead, r) + " = " + std::to_string(ix[r]) + " is out of range for k = " +
                            std::to_string(in.k) + " outcomes (expected 0 <= index < " + std::to_string(in.k) + ")");
    }
  }
  CheckedLogits x(in);
  py::array_t<float> out(lead);
  float* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    gs::log_prob(x.data(), in.rows, in.k, ix, mix, out_ptr);
  }
  return out;
}

py::array_t<float> categorical_entropy(const py::handle& logits, double unimix) {
  Logits in = logits_arg(logits);
  const float mix = unimix_arg(unimix);
  CheckedLogits x(in);
  const std::vector<py::ssize_t> lead(in.shape.begin(), in.shape.end() - 1);
  py::array_t<float> out(lead);
  float* out_ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    gs::entropy(x.data(), in.rows, in.k, mix, out_ptr);
  }
  return out;
}

}  // namespace

void bind_sampling(py::module_& m) {
  m.def("categorical_sample", &categorical_sample, py::arg("logits"), py::arg("seed"), py::arg("stream"),
        py::arg("unimix"), py::arg("one_hot"), py::arg("num_threads"),
        "Draws one outcome per row of float32 logits [..., k]: (index int64 [...], log_prob float32 [...]"
        "[, one_hot float32 [..., k]]). Row r uses CounterRng(seed, stream, 0, r).");
  m.def("categorical_log_prob", &categorical_log_prob, py::arg("logits"), py::arg("index"), py::arg("unimix"),
        "log p[..., index] as float32 [...] for float32 logits [..., k] and int64 index [...].");
  m.def("categorical_entropy", &categorical_entropy, py::arg("logits"), py::arg("unimix"),
        "Entropy in nats as float32 [...] for float32 logits [..., k].");
  m.def("categorical_isa", &gs::isa_name, "The instruction set the sampling kernels use on this machine.");
}
