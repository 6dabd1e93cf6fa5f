// A persistent pool of worker threads that runs one batched job at a time.
//
// `run(num_tasks, fn)` calls fn(task) for task in [0, num_tasks) spread over
// the workers and the calling thread, and returns when all are done. Workers
// sleep on a condition variable between jobs; no allocation per job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace genmarl {

class ThreadPool {
 public:
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
      stopping_ = true;
      ++generation_;
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      num_tasks_ = num_tasks;
      next_task_.store(0, std::memory_order_relaxed);
      pending_workers_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    drain(fn, num_tasks);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_workers_ == 0; });
    job_ = nullptr;
  }

 private:
  void drain(const std::function<void(std::size_t)>& fn, std::size_t num_tasks) {
    for (;;) {
      std::size_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (t >= num_tasks) break;
      fn(t);
    }
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(std::size_t)>* job = nullptr;
      std::size_t num_tasks = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stopping_) return;
        job = job_;
        num_tasks = num_tasks_;
      }
      if (job != nullptr) drain(*job, num_tasks);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_workers_ == 0) done_.notify_one();
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
  std::size_t pending_workers_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::atomic<std::size_t> next_task_{0};
};

}  // namespace genmarl
