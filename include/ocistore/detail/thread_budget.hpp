// ocistore/detail/thread_budget.hpp: how many threads a pull's layer jobs keep running, so that a job adds helper threads only while a core would otherwise idle.
#pragma once

#include <ocistore/config.hpp>

#include <algorithm>
#include <atomic>
#include <utility>

namespace ocistore::detail {

/** Counts the threads that the layer jobs of one pull keep running, against `cores`.

    A job that could run its layer on several threads (read-ahead, pipeline stages) asks
    take(n) when it starts: while fewer threads than cores are running it gets all `n`,
    otherwise 1, its own thread. Once the cores are busy, a helper thread adds no throughput,
    only hand-offs between threads, and on a VM each wake of a thread costs tens of µs.
    Jobs that start while a core idles (the first ones, and any started as others finish)
    still get their helpers. Thread-safe. */
class thread_budget {
public:
    explicit thread_budget(unsigned cores) noexcept : cores_(std::max(cores, 1u)) {}
    thread_budget(thread_budget const&) = delete;
    thread_budget& operator=(thread_budget const&) = delete;

    /// A share of the budget: threads() threads, given back on destruction.
    class lease {
    public:
        lease() = default;
        lease(lease&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), threads_(std::exchange(o.threads_, 0)) {}
        lease& operator=(lease&& o) noexcept
        {
            if (this != &o) {
                release();
                owner_ = std::exchange(o.owner_, nullptr);
                threads_ = std::exchange(o.threads_, 0);
            }
            return *this;
        }
        ~lease() { release(); }

        /// Threads granted: the `wanted` of take(), or 1.
        unsigned threads() const noexcept { return threads_; }

    private:
        friend class thread_budget;
        lease(thread_budget* owner, unsigned threads) noexcept : owner_(owner), threads_(threads) {}
        void release() noexcept
        {
            if (owner_) owner_->busy_.fetch_sub(threads_, std::memory_order_relaxed);
            owner_ = nullptr;
            threads_ = 0;
        }
        thread_budget* owner_ = nullptr;
        unsigned threads_ = 0;
    };

    /// `wanted` threads (at least 1) while fewer than cores() are running, else 1.
    lease take(unsigned wanted) noexcept
    {
        wanted = std::max(wanted, 1u);
        unsigned busy = busy_.load(std::memory_order_relaxed);
        for (;;) {
            unsigned const grant = busy < cores_ ? wanted : 1;
            if (busy_.compare_exchange_weak(busy, busy + grant, std::memory_order_relaxed)) return lease(this, grant);
        }
    }

    unsigned cores() const noexcept { return cores_; }
    /// Threads granted and not yet given back.
    unsigned busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

private:
    unsigned const cores_;
    std::atomic<unsigned> busy_{0};
};

} // namespace ocistore::detail
