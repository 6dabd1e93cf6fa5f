// Buffer files: a versioned header, the spec, the buffer's state and its
// columns, then a checksum of everything before it.
//
// Files are written to a unique temporary name next to the target, fsync'ed
// and renamed into place, so a crash never leaves a half-written file under
// the real name, and concurrent saves to one path never mix (see FileWriter).
// Reading first verifies the checksum over the whole file, then checks the
// magic, version, kind and every length as it parses.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
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

namespace detail {

// Rejects paths the OS would silently cut short (a NUL byte ends a C string).
inline void check_path(const std::string& path) {
  const auto nul = path.find('\0');
  if (nul != std::string::npos) {
    throw InvalidArgument("path contains a NUL byte at position " + std::to_string(nul) +
                          "; file names cannot hold one (got '" + path.substr(0, nul) + "\\0...')");
  }
  if (path.empty()) throw InvalidArgument("path is empty; expected a file name");
}

// The directory and file name of a path ("." when it has no directory part).
inline std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

inline std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Temporary files of a save to DIR/NAME are DIR/.TAG.tmp-PID-XXXXXXXXXXXXXXXX
// (TAG = NAME, or for a long NAME a prefix of it plus a hash of all of it, so
// the temp name fits NAME_MAX), created with O_EXCL. This is ".TAG.tmp-".
inline std::string temp_prefix(const std::string& dir, const std::string& name) {
  long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  if (name_max <= 0) name_max = 255;
  // '.' + TAG + ".tmp-" + pid (<= 10 digits) + '-' + 16 hex digits.
  const long budget = name_max - (1 + 5 + 10 + 1 + 16);
  std::string tag = name;
  if (static_cast<long>(name.size()) > budget) {
    std::size_t cut = static_cast<std::size_t>(std::max(0L, budget - 17));
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
    tag = name.substr(0, cut) + "~" + hex64(hash_block(name.data(), name.size(), 0x746D70));
  }
  return "." + tag + ".tmp-";
}

// The pid in a temp file name that is exactly PREFIX + PID + '-' + 16 hex
// digits, else -1.
inline long temp_owner(const char* entry, const std::string& prefix) {
  if (std::strncmp(entry, prefix.c_str(), prefix.size()) != 0) return -1;
  const char* p = entry + prefix.size();
  long pid = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9' && digits < 10; ++p, ++digits) pid = pid * 10 + (*p - '0');
  if (digits == 0 || *p != '-') return -1;
  ++p;
  for (int i = 0; i < 16; ++i, ++p) {
    if (!std::isxdigit(static_cast<unsigned char>(*p))) return -1;
  }
  return *p == '\0' ? pid : -1;
}

// Removes temp files of earlier saves to this target whose process no longer
// exists (a save killed before its rename). Files of live processes, including
// this one's other threads, are left alone.
inline void remove_stale_temps(const std::string& dir, const std::string& prefix) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const long self = static_cast<long>(::getpid());
  while (const dirent* e = ::readdir(d)) {
    const long pid = temp_owner(e->d_name, prefix);
    if (pid <= 0 || pid == self) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) {
      ::unlinkat(::dirfd(d), e->d_name, 0);
    }
  }
  ::closedir(d);
}

}  // namespace detail

// Writes a buffer file: to a fresh temp file next to the target (unique per
// process, thread and call, created with O_EXCL), fsync'ed, renamed into place,
// then the directory fsync'ed. Concurrent saves to one path (threads or
// processes) each write their own temp file; the last rename wins and the
// target is always one complete file. A save killed midway leaves only its temp
// file, which the next save to the same path removes.
class FileWriter {
 public:
  explicit FileWriter(const std::string& path) : path_(path) {
    detail::check_path(path);
    auto [dir, name] = detail::split_path(path);
    dir_ = std::move(dir);
    if (name.empty() || name == "." || name == "..") {
      throw FileError("cannot write '" + path + "': the path names a directory, not a file");
    }
    const std::string prefix = detail::temp_prefix(dir_, name);
    detail::remove_stale_temps(dir_, prefix);
    static std::atomic<std::uint64_t> counter{0};
    const std::uint64_t pid = static_cast<std::uint64_t>(::getpid());
    const std::uint64_t tid = std::hash<std::thread::id>{}(std::this_thread::get_id());
    int fd = -1;
    for (int attempt = 0; attempt < 64 && fd < 0; ++attempt) {
      const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      const std::uint64_t tag = mix64(mix64(now ^ (pid << 32)) ^ mix64(tid) ^ counter.fetch_add(1, std::memory_order_relaxed));
      tmp_ = (path.find('/') == std::string::npos ? std::string() : dir_ + "/") + prefix +
             std::to_string(pid) + "-" + detail::hex64(tag);
      fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0 && errno != EEXIST) throw FileError("cannot write '" + path + "': " + std::strerror(errno));
    }
    if (fd < 0) throw FileError("cannot write '" + path + "': no unused temporary file name next to it");
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp_.c_str());
      throw FileError("cannot write '" + path + "': " + std::strerror(err));
    }
  }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  ~FileWriter() {
    if (file_) {
      std::fclose(file_);
      ::unlink(tmp_.c_str());
    }
  }

  const std::string& temp_path() const noexcept { return tmp_; }

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

  // Writes the checksum, flushes the file to disk, renames it into place and
  // flushes the directory entry.
  void commit() {
    const std::uint64_t h = hash_.digest();
    if (std::fwrite(&h, 1, sizeof(h), file_) != sizeof(h) || std::fflush(file_) != 0) {
      throw FileError("cannot write '" + path_ + "': " + std::strerror(errno));
    }
    if (::fsync(::fileno(file_)) != 0) throw FileError("cannot write '" + path_ + "' (fsync): " + std::strerror(errno));
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) {
      ::unlink(tmp_.c_str());
      throw FileError("cannot write '" + path_ + "': " + std::strerror(errno));
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp_.c_str());
      throw FileError("cannot move the written file into place at '" + path_ + "': " + std::strerror(err));
    }
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      const bool failed = ::fsync(dfd) != 0 && errno == EIO;
      ::close(dfd);
      if (failed) throw FileError("'" + path_ + "' was written but its directory could not be flushed to disk (EIO)");
    }
  }

 private:
  std::string path_, dir_, tmp_;
  std::FILE* file_ = nullptr;
  StreamHash hash_;
};

class FileReader {
 public:
  explicit FileReader(const std::string& path) : path_(path) {
    detail::check_path(path);
    // O_NONBLOCK so that opening a FIFO cannot wait for a writer; only
    // regular files are read.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw FileError("cannot read '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const bool dir = S_ISDIR(st.st_mode);
      ::close(fd);
      throw FileError("'" + path + "' is " + (dir ? "a directory" : "not a regular file (a FIFO, socket or device)") +
                      ", not a genmarl buffer file");
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    // owned from here on: a check below that throws closes it (a throwing constructor runs no destructor)
    file_.reset(::fdopen(fd, "rb"));
    if (!file_) {
      const int err = errno;
      ::close(fd);
      throw FileError("cannot read '" + path + "': " + std::strerror(err));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < sizeof(kFileMagic) + 16 + sizeof(std::uint64_t)) {
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
        if (std::fread(chunk.data(), 1, n, file_.get()) != n) throw FileError("cannot read '" + path + "': short read");
        hash.update(chunk.data(), n);
        left -= n;
      }
      std::uint64_t stored;
      if (std::fread(&stored, 1, sizeof(stored), file_.get()) != sizeof(stored)) {
        throw FileError("cannot read '" + path + "': short read");
      }
      // Magic and version first (fixed offsets, nothing is allocated from
      // them), so a foreign or newer file gets the more useful message.
      char magic[sizeof(kFileMagic)];
      std::uint32_t version = 0;
      std::fseek(file_.get(), 0, SEEK_SET);
      if (std::fread(magic, 1, sizeof(magic), file_.get()) != sizeof(magic) ||
          std::memcmp(magic, kFileMagic, sizeof(kFileMagic)) != 0) {
        throw FileError("'" + path + "' is not a genmarl buffer file (bad magic bytes)");
      }
      if (std::fread(&version, 1, sizeof(version), file_.get()) != sizeof(version)) corrupt("version");
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

  const std::string& path() const noexcept { return path_; }

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
    } catch (const InvalidArgument& e) {
      throw FileError("'" + path_ + "' holds an invalid spec (" + e.what() + "); refusing to load it");
    }
  }

  // Bytes left before the checksum: check it before allocating from header values.
  std::size_t remaining() const noexcept { return end_ - pos_; }
  void expect_remaining(std::size_t n) const {
    if (n > remaining()) corrupt("size (the file is shorter than its header says)");
  }

  void bytes(void* out, std::size_t n) {
    if (n > end_ - pos_) corrupt("length");
    if (n && std::fread(out, 1, n, file_.get()) != n) corrupt("read");
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
  struct CloseFile {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, CloseFile> file_;
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
