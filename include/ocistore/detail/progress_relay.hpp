// ocistore/detail/progress_relay.hpp: delivers a pull's progress events on a thread of their own, coalescing byte progress, so a slow callback never stalls the pipeline.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/store_types.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace ocistore::detail {

/** Queues events and calls the listeners from one delivery thread, in order. A
    download_progress or build_progress event replaces a queued one of the same kind and
    layer, so the queue stays small whatever the callback's speed. close() (or the
    destructor) delivers what is queued and joins the thread. Thread-safe.

    Byte progress is delivered in batches: after the first download_progress or
    build_progress event reaches an idle relay, the thread lets events gather for `gather`
    before it delivers all that are queued, and post() does not wake it meanwhile. Any
    other event (a layer done, compose started, a retry...) ends the gathering at once. So
    byte progress reaches the listeners at most `gather` (plus the listeners' own time)
    after it was posted, and a pull wakes the thread a few dozen times a second, not once
    per event: each wake of a thread costs tens of µs of the pipeline's CPU on a VM.
    close() ends the wait at once too. */
class progress_relay {
public:
    static constexpr std::chrono::milliseconds default_gather{20};

    explicit progress_relay(std::chrono::milliseconds gather = default_gather) : gather_(gather) {}
    progress_relay(progress_relay const&) = delete;
    progress_relay& operator=(progress_relay const&) = delete;
    ~progress_relay() { close(); }

    /// Adds a listener; the delivery thread starts with the first one.
    void add_listener(progress_callback cb)
    {
        if (!cb) return;
        std::lock_guard lock(mutex_);
        if (closed_) return;
        listeners_.push_back(std::move(cb));
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }

    bool active() const
    {
        std::lock_guard lock(mutex_);
        return !listeners_.empty();
    }

    void post(progress_event ev)
    {
        std::lock_guard lock(mutex_);
        if (listeners_.empty() || closed_) return;
        bool const bytes = ev.kind == progress_kind::download_progress || ev.kind == progress_kind::build_progress;
        if (bytes) {
            for (auto& q : queue_)
                if (q.kind == ev.kind && q.layer == ev.layer) {
                    q = std::move(ev);
                    return;
                }
        }
        queue_.push_back(std::move(ev));
        if (!bytes) urgent_ = true;
        if (idle_ || (gathering_ && urgent_)) {
            idle_ = gathering_ = false; // one wake per batch
            cv_.notify_one();
        }
    }

    /// Delivers what is queued, then stops the thread. Idempotent.
    void close()
    {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

private:
    void run()
    {
        std::unique_lock lock(mutex_);
        std::deque<progress_event> batch;
        for (;;) {
            if (queue_.empty() && !closed_) {
                idle_ = true;
                cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
                idle_ = false;
            }
            if (!closed_ && !urgent_) {
                gathering_ = true;
                cv_.wait_for(lock, gather_, [&] { return closed_ || urgent_; });
                gathering_ = false;
            }
            urgent_ = false;
            if (queue_.empty() && closed_) return;
            batch.swap(queue_);
            auto listeners = listeners_;
            lock.unlock();
            for (auto const& ev : batch)
                for (auto& l : listeners) {
                    try {
                        l(ev);
                    } catch (...) { // a listener's exception must not end the pull
                    }
                }
            batch.clear();
            lock.lock();
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<progress_event> queue_;
    std::vector<progress_callback> listeners_;
    std::chrono::milliseconds const gather_;
    std::thread thread_;
    bool closed_ = false;
    bool idle_ = false;      ///< the thread waits for a first event; post() wakes it
    bool gathering_ = false; ///< the thread lets byte progress gather; an urgent event wakes it
    bool urgent_ = false;    ///< an event other than byte progress is queued
};

/// Decides when byte progress is worth an event: every `step` bytes or `interval`.
class progress_throttle {
public:
    progress_throttle(std::uint64_t step, std::chrono::milliseconds interval) : step_(step), interval_(interval) {}
    bool due(std::uint64_t current)
    {
        auto const now = std::chrono::steady_clock::now();
        if (current - last_bytes_ >= step_ || now - last_time_ >= interval_) {
            last_bytes_ = current;
            last_time_ = now;
            return true;
        }
        return false;
    }

private:
    std::uint64_t step_;
    std::chrono::milliseconds interval_;
    std::uint64_t last_bytes_ = 0;
    std::chrono::steady_clock::time_point last_time_ = std::chrono::steady_clock::now();
};

} // namespace ocistore::detail
