// ocistore/prefetch_source.hpp: a *ByteSource* that reads its upstream ahead on a thread of
// its own, so that pipeline stages (download + blob hash, inflate, diff_id + tar + build)
// run on different cores.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace ocistore {

/// Sizes of a prefetch_source's read-ahead.
struct prefetch_options {
    /// Bytes per buffer (> 0). 256 KiB: large enough that hand-offs cost nothing against the
    /// stages, small enough that glibc keeps a freed ring for the next one; 1 MiB buffers
    /// went back to the system after each layer, and faulting them in again cost a
    /// blobs-only pull 15% of its time (docs/benchmarks.md).
    std::size_t chunk_size = std::size_t(256) << 10;
    std::size_t depth = 4;                         ///< buffers in flight (>= 2)
    /// Where the buffers come from (`chunk_size` bytes each, max_align_t-aligned) and go back
    /// to on destruction; null: `std::pmr::get_default_resource()` at construction. Must
    /// outlive the prefetch_source. A pool shared by successive sources saves faulting in
    /// fresh pages for each (the store passes one per pull).
    std::pmr::memory_resource* memory = nullptr;
};

/** Reads `Source` ahead on a background thread into a bounded ring of buffers and serves
    the bytes, in order, as a *ByteSource*.

    From construction until the upstream ends, fails, or this object is destroyed, the
    upstream is used **only** by the background thread: do not touch it meanwhile. Once
    read_some() has returned the end (0 with `ec` clear) or an error, the thread has finished
    with the upstream, so its state (e.g. a hashing stage's digest) may be read.

    Memory is bounded by `depth × chunk_size`. An upstream failure is delivered after the
    bytes read before it, with the same code (and, for sources that have `why()`, the same
    reason). Destroying the object stops the thread after its current upstream read.
*/
template <byte_source Source>
class basic_prefetch_source {
public:
    explicit basic_prefetch_source(Source& upstream, prefetch_options options = {})
        : upstream_(upstream),
          options_{std::max<std::size_t>(options.chunk_size, 1), std::max<std::size_t>(options.depth, 2),
                   options.memory ? options.memory : std::pmr::get_default_resource()}
    {
        owned_.reserve(options_.depth);
        free_.reserve(options_.depth);
        try {
            for (std::size_t i = 0; i < options_.depth; ++i) {
                owned_.push_back(static_cast<std::byte*>(options_.memory->allocate(options_.chunk_size, buffer_align)));
                free_.push_back(chunk{owned_.back(), 0});
            }
            thread_ = std::thread([this] { produce(); });
        } catch (...) {
            release_buffers();
            throw;
        }
    }
    basic_prefetch_source(basic_prefetch_source const&) = delete;
    basic_prefetch_source& operator=(basic_prefetch_source const&) = delete;

    ~basic_prefetch_source()
    {
        {
            std::lock_guard lk(mutex_);
            stop_ = true;
        }
        space_cv_.notify_one();
        thread_.join();
        release_buffers();
    }

    /// *ByteSource*: the next bytes of the upstream, in order.
    std::size_t read_some(std::span<std::byte> buffer, error_code& ec)
    {
        ec.clear();
        while (current_pos_ == current_.size)
            if (!next_chunk(ec)) return 0; // finished: end or failure, after every filled buffer
        std::size_t const n = std::min(buffer.size(), current_.size - current_pos_);
        std::memcpy(buffer.data(), current_.data + current_pos_, n);
        current_pos_ += n;
        return n;
    }

    /** Hands every remaining byte to `f(std::span<std::byte const>)`, in order and without
        copying them (bytes already taken with read_some() are not repeated), until the
        upstream ends or fails; returns how many bytes it handed. Ends as read_some() does:
        `ec` clear at the end, or the upstream's failure after every byte read before it. A
        span is valid only during its call. */
    template <class F> std::uint64_t consume(F&& f, error_code& ec)
    {
        ec.clear();
        std::uint64_t total = 0;
        for (;;) {
            if (current_pos_ < current_.size) {
                std::span<std::byte const> const rest(current_.data + current_pos_, current_.size - current_pos_);
                f(rest);
                total += rest.size();
                current_pos_ = current_.size;
            }
            if (!next_chunk(ec)) return total;
        }
    }

    /** The upstream's reason for its failure, when it has one (empty otherwise, and while the
        producer has not reached the failure). A copy: the producer thread sets it, so it is
        read under the lock and may be called from any thread at any time. */
    std::string why() const
    {
        std::lock_guard lk(mutex_);
        return why_;
    }

private:
    static constexpr std::size_t buffer_align = alignof(std::max_align_t);

    struct chunk {
        std::byte* data = nullptr;  ///< one of owned_, or null
        std::size_t size = 0;       ///< bytes filled
    };

    void release_buffers() noexcept
    {
        for (std::byte* b : owned_) options_.memory->deallocate(b, options_.chunk_size, buffer_align);
        owned_.clear();
    }

    /** Consumer side: hands the exhausted current_ back and makes the next filled buffer
        current; false once the producer has finished and nothing is left, with `ec` set to
        its end (clear) or failure. Waking a thread
        costs far more than a hand-off (tens of µs on a VM), so a waiting side is woken only
        once `wake_batch()` buffers are ready for it, or at the end: each side then runs
        several buffers between waits instead of one. */
    bool next_chunk(error_code& ec)
    {
        std::unique_lock lk(mutex_);
        if (current_.data) {
            free_.push_back(current_);
            if (producer_waiting_ && free_.size() >= wake_batch()) space_cv_.notify_one();
        }
        current_ = {};
        current_pos_ = 0;
        if (filled_.empty() && !finished_) {
            consumer_waiting_ = true;
            data_cv_.wait(lk, [&] { return filled_.size() >= wake_batch() || finished_; });
            consumer_waiting_ = false;
        }
        if (filled_.empty()) return ec = failure_, false;
        current_ = filled_.front();
        filled_.pop_front();
        return true;
    }

    std::size_t wake_batch() const noexcept { return options_.depth / 2; }

    void produce()
    {
        for (;;) {
            chunk buf;
            {
                std::unique_lock lk(mutex_);
                if (free_.empty() && !stop_) {
                    producer_waiting_ = true;
                    space_cv_.wait(lk, [&] { return free_.size() >= wake_batch() || stop_; });
                    producer_waiting_ = false;
                }
                if (stop_) return;
                buf = free_.back();
                free_.pop_back();
            }
            std::size_t filled = 0;
            error_code ec;
            bool end = false;
            while (filled < options_.chunk_size) {
                std::size_t const n =
                    upstream_.read_some(std::span(buf.data + filled, options_.chunk_size - filled), ec);
                if (ec || n == 0) {
                    end = true;
                    break;
                }
                filled += n;
            }
            buf.size = filled;
            std::lock_guard lk(mutex_);
            if (filled) filled_.push_back(buf);
            else free_.push_back(buf);
            if (end) {
                failure_ = ec;
                if constexpr (requires { upstream_.why(); }) {
                    if (ec) why_ = std::string(upstream_.why());
                }
                finished_ = true;
                if (consumer_waiting_) data_cv_.notify_one();
                return;
            }
            if (consumer_waiting_ && filled_.size() >= wake_batch()) data_cv_.notify_one();
        }
    }

    Source& upstream_;
    prefetch_options const options_;  ///< memory never null
    std::vector<std::byte*> owned_;   ///< every buffer, returned to options_.memory on destruction
    mutable std::mutex mutex_;
    std::condition_variable data_cv_;   ///< the consumer waits here for filled buffers
    std::condition_variable space_cv_;  ///< the producer waits here for free buffers
    bool consumer_waiting_ = false;
    bool producer_waiting_ = false;
    std::vector<chunk> free_;
    std::deque<chunk> filled_;
    bool stop_ = false;
    bool finished_ = false;
    error_code failure_;
    std::string why_;
    chunk current_;
    std::size_t current_pos_ = 0;
    std::thread thread_;  // last: started after every other member is ready
};

} // namespace ocistore
