// Memory accounting shared by every buffer.
//
// Contract: a buffer computes the bytes it reserves up front (field storage,
// sum trees, per-slot metadata) before allocating anything, and refuses with a
// MemoryLimitError when that is more than this process can ever hold: the
// smallest of physical memory, the cgroup memory limit and RLIMIT_AS. Nothing
// reserved is touched at construction: storage is uninitialised and trees and
// metadata are zero pages (LazyZeroArray), so resident memory grows as items
// arrive, and a buffer that fits the limit but is never filled costs only
// address space. load() runs the same check on a file's claimed sizes.
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace genmarl::buffer {

// A buffer would reserve more memory than this process can hold.
class MemoryLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

// a * b and a + b, saturating at kNoLimit (byte counts of absurd sizes never wrap).
constexpr std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
  if (a != 0 && b > kNoLimit / a) return kNoLimit;
  return a * b;
}
constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return b > kNoLimit - a ? kNoLimit : a + b;
}

// "1.50 GiB (1610612736 bytes)".
inline std::string format_bytes(std::uint64_t n) {
  char buf[96];
  if (n == kNoLimit) return "more than 2^64 bytes";
  std::snprintf(buf, sizeof(buf), "%.2f GiB (%llu bytes)", static_cast<double>(n) / (1024.0 * 1024.0 * 1024.0),
                static_cast<unsigned long long>(n));
  return buf;
}

// The most memory this process can hold, and what sets it.
struct MemoryLimit {
  std::uint64_t bytes = kNoLimit;
  std::string source;
};

namespace detail {
inline std::uint64_t read_limit_file(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s.empty() || s == "max") return kNoLimit;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  return (end && *end == '\0' && v > 0) ? v : kNoLimit;
}
}  // namespace detail

inline MemoryLimit memory_limit() {
  MemoryLimit limit;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) {
    limit = {saturating_mul(static_cast<std::uint64_t>(pages), static_cast<std::uint64_t>(page)), "physical memory"};
  }
  // cgroup v2, then v1 (an unlimited v1 group reports a huge number, larger than RAM).
  for (const char* f : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const std::uint64_t v = detail::read_limit_file(f);
    if (v < limit.bytes) limit = {v, std::string("the cgroup memory limit (") + f + ")"};
  }
  rlimit as{};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && as.rlim_cur < limit.bytes) {
    limit = {static_cast<std::uint64_t>(as.rlim_cur), "the address-space limit (RLIMIT_AS)"};
  }
  return limit;
}

// Memory free for new allocations right now (for messages; 0 when unknown).
inline std::uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

// Throws MemoryLimitError when `bytes` is more than memory_limit(). `what`
// names the request, e.g. "a ReplayBuffer of capacity 1000000".
inline void check_memory(std::uint64_t bytes, const std::string& what) {
  const MemoryLimit limit = memory_limit();
  if (bytes <= limit.bytes) return;
  std::string msg = what + " needs " + format_bytes(bytes) +
                    " (field storage plus trees/metadata, reserved up front), more than " + limit.source + ": " +
                    format_bytes(limit.bytes);
  if (const std::uint64_t avail = available_memory()) msg += "; " + format_bytes(avail) + " is available now";
  throw MemoryLimitError(msg + ". Use a smaller capacity or fewer/smaller fields.");
}

// n zero-valued Ts, 128-byte aligned. Large arrays are anonymous mappings, so
// their pages are committed only when first written.
template <class T>
class LazyZeroArray {
  static_assert(std::is_trivially_copyable_v<T>, "zero bytes must be a valid T");

 public:
  static constexpr std::size_t kAlign = 128;
  static constexpr std::size_t kMapFrom = std::size_t{1} << 20;  // bytes

  LazyZeroArray() = default;
  explicit LazyZeroArray(std::size_t n) : n_(n) {
    if (n == 0) return;
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
    bytes_ = n * sizeof(T);
    if (bytes_ >= kMapFrom) {
      void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      mapped_ = true;
      data_ = static_cast<T*>(p);
    } else {
      data_ = static_cast<T*>(::operator new(bytes_, std::align_val_t{kAlign}));
      std::memset(static_cast<void*>(data_), 0, bytes_);
    }
  }
  LazyZeroArray(LazyZeroArray&& o) noexcept { swap(o); }
  LazyZeroArray& operator=(LazyZeroArray&& o) noexcept {
    LazyZeroArray tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  LazyZeroArray(const LazyZeroArray&) = delete;
  LazyZeroArray& operator=(const LazyZeroArray&) = delete;
  ~LazyZeroArray() {
    if (!data_) return;
    if (mapped_) {
      ::munmap(data_, bytes_);
    } else {
      ::operator delete(data_, std::align_val_t{kAlign});
    }
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return n_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + n_; }

 private:
  void swap(LazyZeroArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(n_, o.n_);
    std::swap(bytes_, o.bytes_);
    std::swap(mapped_, o.mapped_);
  }

  T* data_ = nullptr;
  std::size_t n_ = 0, bytes_ = 0;
  bool mapped_ = false;
};

}  // namespace genmarl::buffer
