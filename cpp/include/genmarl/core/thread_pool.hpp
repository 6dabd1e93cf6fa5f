// A persistent pool of worker threads that runs one batched job at a time.
//
// `run(num_tasks, fn)` calls fn(task) for task in [0, num_tasks) spread over
// the workers and the calling thread, and returns when all are done. Between
// jobs, workers spin briefly on an atomic generation counter (a futex wake-up
// costs tens of microseconds on a VM, as long as a whole step of 64 envs) and
// then sleep on a condition variable. No allocation per job.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GENMARL_CPU_RELAX() _mm_pause()
#else
#define GENMARL_CPU_RELAX() std::this_thread::yield()
#endif

namespace genmarl {

class ThreadPool {
 public:
  // How long an idle thread spins before sleeping.
  static constexpr std::chrono::microseconds kSpin{200};

  explicit ThreadPool(std::size_t num_threads) : num_threads_(num_threads == 0 ? 1 : num_threads) {
    workers_.reserve(num_threads_ - 1);
    for (std::size_t i = 0; i + 1 < num_threads_; ++i) {
      workers_.emplace_back([this] { worker_loop(); });
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true, std::memory_order_release);
      generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

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

}  // namespace genmarl
