// Buffer files: a versioned header, the spec, the buffer's state and its
// columns, then a checksum of everything before it.
//
// Files are written to a temporary name next to the target and renamed into
// place, so a crash never leaves a half-written file under the real name.
// Reading first verifies the checksum over the whole file, then checks the
// magic, version, kind and every length as it parses.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "genmarl/buffer/schema.hpp"
#include "genmarl/core/rng.hpp"

namespace genmarl::buffer {

inline constexpr char kFileMagic[8] = {'G', 'M', 'R', 'L', 'B', 'U', 'F', '\0'};
inline constexpr std::uint32_t kFileVersion = 1;

enum class BufferKind : std::uint32_t { kReplay = 1, kPrioritized = 2, kEpisode = 3, kRollout = 4 };

inline const char* kind_name(BufferKind k) {
  switch (k) {
    case BufferKind::kReplay: return "ReplayBuffer";
    case BufferKind::kPrioritized: return "PrioritizedReplayBuffer";
    case BufferKind::kEpisode: return "EpisodeBuffer";
    case BufferKind::kRollout: return "RolloutBuffer";
  }
  return "unknown";
}

// Raised when a file cannot be written or read, or is not a valid buffer file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Word-wise hash of a block (4 independent lanes, then mixed). Every lane step
// is a bijection of the lane state, so changing any one word changes the hash.
inline std::uint64_t hash_block(const void* data, std::size_t n, std::uint64_t seed) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h[4] = {seed ^ 0x243F6A8885A308D3ULL, seed ^ 0x13198A2E03707344ULL, seed ^ 0xA4093822299F31D0ULL,
                        seed ^ 0x082EFA98EC4E6C89ULL};
  constexpr std::uint64_t kMul = 0x9FB21C651E98DF25ULL;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      h[l] = (h[l] ^ w) * kMul;
      h[l] ^= h[l] >> 29;
    }
  }
  std::uint64_t tail = n;
  for (int shift = 0; i < n; ++i, shift = (shift + 8) & 63) {
    tail = (tail ^ (std::uint64_t{p[i]} << shift)) * kMul;
  }
  return mix64(mix64(h[0] ^ mix64(h[1])) ^ mix64(h[2] ^ mix64(h[3] ^ mix64(tail))));
}

// Hash of a byte stream that does not depend on how the stream is split into
// writes: bytes are hashed in fixed 64 KiB chunks, chained.
class StreamHash {
 public:
  static constexpr std::size_t kChunk = std::size_t{1} << 16;

  StreamHash() : buf_(kChunk) {}

  void update(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    while (n > 0) {
      if (fill_ == 0 && n >= kChunk) {  // whole chunks straight from the source
        h_ = hash_block(p, kChunk, h_);
        p += kChunk;
        n -= kChunk;
        continue;
      }
      const std::size_t take = std::min(n, kChunk - fill_);
      std::memcpy(buf_.data() + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == kChunk) {
        h_ = hash_block(buf_.data(), kChunk, h_);
        fill_ = 0;
      }
    }
  }
  std::uint64_t digest() const noexcept { return hash_block(buf_.data(), fill_, h_ ^ 0x5851F42D4C957F2DULL); }

 private:
  std::vector<unsigned char> buf_;
  std::size_t fill_ = 0;
  std::uint64_t h_ = 0x6A09E667F3BCC908ULL;
};

class FileWriter {
 public:
  explicit FileWriter(const std::string& path) : path_(path) {
    tmp_ = path + ".tmp-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (!file_) throw FileError("cannot write '" + path + "': " + std::strerror(errno));
  }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  ~FileWriter() {
    if (file_) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }

  void bytes(const void* data, std::size_t n) {
    hash_.update(data, n);
    if (n && std::fwrite(data, 1, n, file_) != n) throw FileError("cannot write '" + path_ + "': disk full?");
  }
  template <class T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof(T));
  }
  void string(const std::string& s) {
    value<std::uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  template <class T>
  void vector(const std::vector<T>& v) {
    value<std::uint64_t>(v.size());
    bytes(v.data(), v.size() * sizeof(T));
  }

  void header(BufferKind kind, const Schema& schema) {
    bytes(kFileMagic, sizeof(kFileMagic));
    value(kFileVersion);
    value(static_cast<std::uint32_t>(kind));
    value<std::uint64_t>(schema.size());
    for (const auto& f : schema.fields()) {
      string(f.name);
      value(static_cast<std::uint8_t>(f.dtype));
      vector(f.shape);
    }
  }

  // Writes the checksum, flushes and renames the file into place.
  void commit() {
    const std::uint64_t h = hash_.digest();
    if (std::fwrite(&h, 1, sizeof(h), file_) != sizeof(h) || std::fflush(file_) != 0) {
      throw FileError("cannot write '" + path_ + "': disk full?");
    }
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) {
      std::remove(tmp_.c_str());
      throw FileError("cannot write '" + path_ + "'");
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) {
      std::remove(tmp_.c_str());
      throw FileError("cannot move the written file into place at '" + path_ + "': " + ec.message());
    }
  }

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  StreamHash hash_;
};

class FileReader {
 public:
  explicit FileReader(const std::string& path) : path_(path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      throw FileError("'" + path + "' is a directory, not a genmarl buffer file");
    }
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw FileError("cannot read '" + path + "': " + std::strerror(errno));
    std::fseek(file_, 0, SEEK_END);
    const long size = std::ftell(file_);
    std::fseek(file_, 0, SEEK_SET);
    if (size < static_cast<long>(sizeof(kFileMagic) + 16 + sizeof(std::uint64_t))) {
      throw FileError("'" + path + "' is not a genmarl buffer file (too short: " + std::to_string(size) + " bytes)");
    }
    end_ = static_cast<std::size_t>(size) - sizeof(std::uint64_t);
    // The checksum is verified before anything is parsed, so no field of a
    // damaged file (e.g. a capacity) is ever acted on.
    {
      StreamHash hash;
      std::vector<unsigned char> chunk(StreamHash::kChunk * 16);
      std::size_t left = end_;
      while (left > 0) {
        const std::size_t n = std::min(left, chunk.size());
        if (std::fread(chunk.data(), 1, n, file_) != n) throw FileError("cannot read '" + path + "': short read");
        hash.update(chunk.data(), n);
        left -= n;
      }
      std::uint64_t stored;
      if (std::fread(&stored, 1, sizeof(stored), file_) != sizeof(stored)) {
        throw FileError("cannot read '" + path + "': short read");
      }
      // Magic and version first (fixed offsets, nothing is allocated from
      // them), so a foreign or newer file gets the more useful message.
      char magic[sizeof(kFileMagic)];
      std::uint32_t version = 0;
      std::fseek(file_, 0, SEEK_SET);
      if (std::fread(magic, 1, sizeof(magic), file_) != sizeof(magic) ||
          std::memcmp(magic, kFileMagic, sizeof(kFileMagic)) != 0) {
        throw FileError("'" + path + "' is not a genmarl buffer file (bad magic bytes)");
      }
      if (std::fread(&version, 1, sizeof(version), file_) != sizeof(version)) corrupt("version");
      if (version != kFileVersion) {
        throw FileError("'" + path + "' has buffer file version " + std::to_string(version) +
                        "; this genmarl reads version " + std::to_string(kFileVersion));
      }
      if (stored != hash.digest()) {
        throw FileError("'" + path + "' is corrupted (checksum mismatch): truncated or damaged; refusing to load it");
      }
      pos_ = sizeof(magic) + sizeof(version);
    }
  }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  ~FileReader() {
    if (file_) std::fclose(file_);
  }

  // Checks the kind, then reads the spec.
  Schema header(BufferKind expected) {
    const auto kind = value<std::uint32_t>();
    if (kind != static_cast<std::uint32_t>(expected)) {
      throw FileError("'" + path_ + "' holds a " + kind_name(static_cast<BufferKind>(kind)) + ", not a " +
                      kind_name(expected));
    }
    const auto n = value<std::uint64_t>();
    if (n == 0 || n > Schema::kMaxFields) corrupt("field count");
    std::vector<Field> fields(n);
    for (auto& f : fields) {
      f.name = string();
      const auto dt = value<std::uint8_t>();
      if (dt >= kNumDTypes) corrupt("dtype");
      f.dtype = static_cast<DType>(dt);
      f.shape = vector<std::int64_t>(Schema::kMaxDims);
    }
    try {
      return Schema(std::move(fields));
    } catch (const InvalidArgument&) {
      corrupt("spec");
    }
  }

  // Bytes left before the checksum: check it before allocating from header values.
  std::size_t remaining() const noexcept { return end_ - pos_; }
  void expect_remaining(std::size_t n) const {
    if (n > remaining()) corrupt("size (the file is shorter than its header says)");
  }

  void bytes(void* out, std::size_t n) {
    if (n > end_ - pos_) corrupt("length");
    if (n && std::fread(out, 1, n, file_) != n) corrupt("read");
    pos_ += n;
  }
  template <class T>
  T value() {
    T v;
    bytes(&v, sizeof(T));
    return v;
  }
  std::string string() {
    const auto n = value<std::uint64_t>();
    if (n > 4096) corrupt("string length");
    std::string s(n, '\0');
    bytes(s.data(), n);
    return s;
  }
  template <class T>
  std::vector<T> vector(std::size_t max_size) {
    const auto n = value<std::uint64_t>();
    if (n > max_size || n * sizeof(T) > remaining()) corrupt("array length");
    std::vector<T> v(n);
    bytes(v.data(), n * sizeof(T));
    return v;
  }

  // Verifies that the whole file was consumed (the checksum was checked on open).
  void finish() {
    if (pos_ != end_) corrupt("length (trailing bytes)");
  }

  [[noreturn]] void corrupt(const std::string& what) const {
    throw FileError("'" + path_ + "' is truncated or corrupted (bad " + what + " at byte " + std::to_string(pos_) +
                    "); refusing to load it");
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::size_t pos_ = 0, end_ = 0;
};

// Rows [begin, begin + n) of every column.
inline void write_rows(FileWriter& w, const ColumnStore& store, std::int64_t begin, std::int64_t n) {
  for (std::size_t f = 0; f < store.num_fields(); ++f) {
    w.bytes(store.row(f, begin), store.row_bytes(f) * static_cast<std::size_t>(n));
  }
}
inline void read_rows(FileReader& r, ColumnStore& store, std::int64_t begin, std::int64_t n) {
  for (std::size_t f = 0; f < store.num_fields(); ++f) {
    r.bytes(store.row(f, begin), store.row_bytes(f) * static_cast<std::size_t>(n));
  }
}

}  // namespace genmarl::buffer
