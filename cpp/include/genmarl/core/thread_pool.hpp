// A persistent pool of worker threads that runs one batched job at a time.
//
// `run(num_tasks, fn)` calls fn(task) for task in [0, num_tasks) spread over
// the workers and the calling thread, and returns when all are done. Between
// jobs, workers spin briefly on an atomic generation counter (a futex wake-up
// costs tens of microseconds on a VM, as long as a whole step of 64 envs) and
// then sleep on a condition variable. No allocation per job.
//
// Limits and failure: at most kMaxThreads threads; when the system cannot start
// every worker (thread or memory limits), the constructor stops the workers it
// started and throws ThreadStartError instead of aborting.
//
// fork(): a ThreadPool's workers do not exist in a forked child. ForkLocal<T>
// (ForkSafePool = ForkLocal<ThreadPool>) notices the new process id and makes a
// fresh object there, abandoning the inherited one (never destroyed: joining
// threads that do not exist would fail).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <pthread.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GENMARL_CPU_RELAX() _mm_pause()
#else
#define GENMARL_CPU_RELAX() std::this_thread::yield()
#endif

namespace genmarl {

// The most threads one pool may have (the calling thread included).
inline constexpr std::size_t kMaxThreads = 1024;

// The system could not start the requested worker threads.
class ThreadStartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws std::invalid_argument unless 1 <= num_threads <= kMaxThreads; `what` names the argument.
inline void check_num_threads(long long num_threads, const char* what = "num_threads") {
  if (num_threads < 1 || num_threads > static_cast<long long>(kMaxThreads)) {
    throw std::invalid_argument(std::string(what) + " must be an integer in [1, " + std::to_string(kMaxThreads) +
                                "], got " + std::to_string(num_threads));
  }
}

class ThreadPool {
 public:
  // How long an idle thread spins before sleeping.
  static constexpr std::chrono::microseconds kSpin{200};

  explicit ThreadPool(std::size_t num_threads) : num_threads_(num_threads == 0 ? 1 : num_threads) {
    check_num_threads(static_cast<long long>(num_threads_));
    workers_.reserve(num_threads_ - 1);
    try {
      for (std::size_t i = 0; i + 1 < num_threads_; ++i) {
        workers_.emplace_back([this] { worker_loop(); });
      }
    } catch (const std::system_error& e) {
      const std::size_t started = workers_.size() + 1;
      stop_workers();
      throw ThreadStartError("could not start " + std::to_string(num_threads_) + " threads (" +
                             std::to_string(started) + " running when the system refused: " + e.what() +
                             "); use fewer threads or raise the process's thread/memory limits");
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() { stop_workers(); }

  std::size_t num_threads() const noexcept { return num_threads_; }

  // Runs fn(task) for every task in [0, num_tasks). fn must not throw.
  void run(std::size_t num_tasks, const std::function<void(std::size_t)>& fn) {
    if (num_tasks == 0) return;
    if (workers_.empty() || num_tasks == 1) {
      for (std::size_t t = 0; t < num_tasks; ++t) fn(t);
      return;
    }
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one job at a time
    job_ = &fn;
    num_tasks_ = num_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    pending_workers_.store(workers_.size(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain(fn, num_tasks);
    // Wait for every worker to leave the job: spin first, then sleep.
    if (!spin_until([this] { return pending_workers_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_workers_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
  }

 private:
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true, std::memory_order_release);
      generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  template <class Pred>
  static bool spin_until(Pred&& pred) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1;; ++i) {
      if (pred()) return true;
      // Yield every few rounds so an oversubscribed machine still runs the thread being waited on.
      if ((i & 7u) == 0) std::this_thread::yield();
      else GENMARL_CPU_RELAX();
      if ((i & 63u) == 0 && std::chrono::steady_clock::now() > deadline) return pred();
    }
  }

  void drain(const std::function<void(std::size_t)>& fn, std::size_t num_tasks) {
    for (;;) {
      const std::size_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (t >= num_tasks) break;
      fn(t);
    }
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      auto ready = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, ready);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_.load(std::memory_order_acquire)) return;
      drain(*job_, num_tasks_);
      if (pending_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::size_t num_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t num_tasks_ = 0;
  std::atomic<std::size_t> pending_workers_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> next_task_{0};
};

namespace detail {

// This process's id without a system call per use (getpid() is one: two per step were ~8% of a
// one-env step). A fork handler refreshes it in the child; fork() runs it (os.fork and
// multiprocessing's fork start method included).
inline std::atomic<pid_t>& pid_slot() {
  static std::atomic<pid_t> pid{::getpid()};
  return pid;
}
inline pid_t current_pid() {
  static const bool registered = [] {
    pid_slot().store(::getpid(), std::memory_order_relaxed);
    ::pthread_atfork(nullptr, nullptr, [] { pid_slot().store(::getpid(), std::memory_order_relaxed); });
    return true;
  }();
  static_cast<void>(registered);
  return pid_slot().load(std::memory_order_relaxed);
}

}  // namespace detail

// Owns one T per process: get() in a forked child abandons the inherited object (never
// destroyed: a pool's threads or a mutex's owner do not exist there) and makes a new one from
// the same constructor arguments. Not thread-safe by itself: callers serialise get().
template <class T>
class ForkLocal {
 public:
  template <class... Args>
  explicit ForkLocal(Args... args)
      : make_([args...] { return std::make_unique<T>(args...); }), value_(make_()), pid_(detail::current_pid()) {}
  ForkLocal(const ForkLocal&) = delete;
  ForkLocal& operator=(const ForkLocal&) = delete;
  ~ForkLocal() {
    if (pid_ != detail::current_pid()) static_cast<void>(value_.release());
  }

  T& get() {
    const pid_t now = detail::current_pid();
    if (now != pid_) {
      auto fresh = make_();  // may throw: then retried next call
      static_cast<void>(value_.release());
      value_ = std::move(fresh);
      pid_ = now;
    }
    return *value_;
  }

 private:
  std::function<std::unique_ptr<T>()> make_;
  std::unique_ptr<T> value_;
  pid_t pid_;
};

// A ThreadPool that restarts itself in a forked child.
using ForkSafePool = ForkLocal<ThreadPool>;

}  // namespace genmarl
