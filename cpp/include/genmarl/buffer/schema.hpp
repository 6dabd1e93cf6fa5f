// Field specs and columnar ring storage shared by every buffer.
//
// A buffer stores named fields; each field has a per-item shape (the agent
// dimension is an ordinary leading entry, e.g. obs (3, 18)) and a dtype. The
// storage is one contiguous array per field ("column"), rows indexed by slot.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "genmarl/env/spec.hpp"

namespace genmarl::buffer {

using genmarl::InvalidArgument;

enum class DType : std::uint8_t { kFloat32 = 0, kFloat16 = 1, kInt64 = 2, kInt32 = 3, kUInt8 = 4, kBool = 5 };
inline constexpr int kNumDTypes = 6;

constexpr std::size_t dtype_size(DType t) noexcept {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kInt64: return 8;
    case DType::kInt32: return 4;
    case DType::kUInt8: return 1;
    case DType::kBool: return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) noexcept {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
    case DType::kBool: return "bool";
  }
  return "?";
}

// One stored field: name, per-item shape (no batch dimension) and dtype.
struct Field {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::kFloat32;

  std::int64_t elements() const noexcept {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  std::size_t row_bytes() const noexcept { return static_cast<std::size_t>(elements()) * dtype_size(dtype); }
  bool operator==(const Field&) const = default;
};

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// Field-name conventions used by n-step returns and GAE. A field belongs to a
// prefix ("" or "group/") and has a role given by the rest of its name.
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
// The part of a name after its last '/', e.g. "adversary/obs" -> "obs".
inline std::string_view base_name(std::string_view s) {
  auto p = s.rfind('/');
  return p == std::string_view::npos ? s : s.substr(p + 1);
}
inline bool is_reward_field(std::string_view s) { return base_name(s) == "reward"; }
inline bool is_terminal_field(std::string_view s) {
  auto b = base_name(s);
  return b == "terminated" || b == "done";
}
inline bool is_boundary_field(std::string_view s) { return is_terminal_field(s) || base_name(s) == "truncated"; }
inline bool is_next_field(std::string_view s) { return base_name(s).substr(0, 5) == "next_"; }

// True when s is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF), so that every field name converts to a Python str.
inline bool is_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned c = p[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr std::uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// An ordered, validated list of fields.
class Schema {
 public:
  static constexpr std::size_t kMaxFields = 256;
  static constexpr std::size_t kMaxDims = 8;
  static constexpr std::int64_t kMaxRowBytes = std::int64_t{1} << 30;

  Schema() = default;
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {
    if (fields_.empty()) throw InvalidArgument("a buffer spec needs at least one field");
    if (fields_.size() > kMaxFields) throw InvalidArgument("a buffer spec holds at most 256 fields");
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const Field& f = fields_[i];
      if (f.name.empty() || f.name.size() > 256) {
        throw InvalidArgument("field names must be 1..256 characters, got '" + f.name + "'");
      }
      if (!is_utf8(f.name)) {
        throw InvalidArgument("field name " + std::to_string(i) + " is not valid UTF-8; field names must be text");
      }
      if (f.name.find('\0') != std::string::npos) {
        throw InvalidArgument("field name " + std::to_string(i) + " contains a NUL character");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (fields_[j].name == f.name) throw InvalidArgument("field '" + f.name + "' is listed twice in the spec");
      }
      if (f.shape.size() > kMaxDims) {
        throw InvalidArgument("field '" + f.name + "': at most 8 dimensions, got shape " + shape_string(f.shape));
      }
      if (static_cast<int>(f.dtype) >= kNumDTypes) throw InvalidArgument("field '" + f.name + "': unknown dtype");
      // Item bytes, checked before each multiplication so nothing overflows.
      std::int64_t bytes = static_cast<std::int64_t>(dtype_size(f.dtype));
      for (auto d : f.shape) {
        if (d <= 0) {
          throw InvalidArgument("field '" + f.name + "': every dimension must be positive, got shape " +
                                shape_string(f.shape));
        }
        if (d > kMaxRowBytes / bytes) {
          throw InvalidArgument("field '" + f.name + "': one item of shape " + shape_string(f.shape) +
                                " is larger than 1 GiB");
        }
        bytes *= d;
      }
      row_bytes_ += f.row_bytes();
    }
  }

  const std::vector<Field>& fields() const noexcept { return fields_; }
  std::size_t size() const noexcept { return fields_.size(); }
  const Field& operator[](std::size_t i) const noexcept { return fields_[i]; }
  std::size_t row_bytes() const noexcept { return row_bytes_; }
  int find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (fields_[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }
  std::string names() const {
    std::string s;
    for (const auto& f : fields_) s += (s.empty() ? "" : ", ") + f.name;
    return s;
  }
  bool operator==(const Schema& o) const noexcept { return fields_ == o.fields_; }

 private:
  std::vector<Field> fields_;
  std::size_t row_bytes_ = 0;
};

// 64-byte aligned, uninitialised bytes (pages are touched on first write).
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(std::size_t n) : size_(n) {
    if (n) data_.reset(static_cast<std::byte*>(::operator new(n, std::align_val_t{64})));
  }
  std::byte* data() noexcept { return data_.get(); }
  const std::byte* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

// Columnar storage: one contiguous array of `rows` items per field.
class ColumnStore {
 public:
  ColumnStore() = default;
  ColumnStore(const Schema& schema, std::int64_t rows) : rows_(rows) {
    if (rows <= 0) throw InvalidArgument("buffer capacity must be positive, got " + std::to_string(rows));
    for (std::size_t i = 0; i < schema.size(); ++i) {
      const std::size_t rb = schema[i].row_bytes();
      if (static_cast<std::size_t>(rows) > (std::size_t{1} << 46) / rb) {
        throw InvalidArgument("buffer capacity " + std::to_string(rows) + " is too large for field '" +
                              schema[i].name + "'");
      }
      row_bytes_.push_back(rb);
      columns_.emplace_back(rb * static_cast<std::size_t>(rows));
    }
  }

  std::int64_t rows() const noexcept { return rows_; }
  std::size_t num_fields() const noexcept { return columns_.size(); }
  std::size_t row_bytes(std::size_t f) const noexcept { return row_bytes_[f]; }
  std::byte* column(std::size_t f) noexcept { return columns_[f].data(); }
  const std::byte* column(std::size_t f) const noexcept { return columns_[f].data(); }
  std::byte* row(std::size_t f, std::int64_t r) noexcept { return columns_[f].data() + row_bytes_[f] * r; }
  const std::byte* row(std::size_t f, std::int64_t r) const noexcept {
    return columns_[f].data() + row_bytes_[f] * r;
  }
  std::size_t nbytes() const noexcept {
    std::size_t n = 0;
    for (const auto& c : columns_) n += c.size();
    return n;
  }

  // Copies n source items (src[f] + offset items) into rows [dst, dst + n) of
  // every field, wrapping around the end of the storage.
  void write_ring(const void* const* src, std::int64_t offset, std::int64_t dst, std::int64_t n) noexcept {
    const std::int64_t first = std::min(n, rows_ - dst);
    for (std::size_t f = 0; f < columns_.size(); ++f) {
      const std::size_t rb = row_bytes_[f];
      const auto* s = static_cast<const std::byte*>(src[f]) + rb * offset;
      std::memcpy(row(f, dst), s, rb * first);
      if (n > first) std::memcpy(row(f, 0), s + rb * first, rb * (n - first));
    }
  }

  // out[f][k] = column f, row rows[k], for k in [0, n).
  void gather(const std::int64_t* rows, std::int64_t n, void* const* out) const noexcept {
    for (std::size_t f = 0; f < columns_.size(); ++f) gather_field(f, rows, n, out[f]);
  }

  // out[k] = column f, row rows[k], for k in [0, n).
  void gather_field(std::size_t f, const std::int64_t* rows, std::int64_t n, void* out) const noexcept {
    constexpr std::int64_t kAhead = 8;
    const std::size_t rb = row_bytes_[f];
    const std::byte* col = columns_[f].data();
    auto* dst = static_cast<std::byte*>(out);
    for (std::int64_t k = 0; k < n; ++k) {
      if (k + kAhead < n) __builtin_prefetch(col + rb * rows[k + kAhead]);
      std::memcpy(dst + rb * k, col + rb * rows[k], rb);
    }
  }

 private:
  std::int64_t rows_ = 0;
  std::vector<std::size_t> row_bytes_;
  std::vector<AlignedBytes> columns_;
};

// True when any element of one item is non-zero (a set flag; floats compare by value).
inline bool any_set(DType t, const std::byte* p, std::int64_t elements) noexcept {
  if (t == DType::kFloat32) {
    for (std::int64_t i = 0; i < elements; ++i) {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      if (v != 0.0f) return true;
    }
    return false;
  }
  if (t == DType::kFloat16) {  // +0 and -0 are the only zeros
    for (std::int64_t i = 0; i < elements; ++i) {
      std::uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      if ((v & 0x7FFF) != 0) return true;
    }
    return false;
  }
  const std::size_t n = static_cast<std::size_t>(elements) * dtype_size(t);
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return true;
  }
  return false;
}

}  // namespace genmarl::buffer
