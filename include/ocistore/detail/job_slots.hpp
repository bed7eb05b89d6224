// ocistore/detail/job_slots.hpp: how many layers of a pull download and build at once, so that a layer waiting for its fsyncs makes way for the next.
#pragma once

#include <ocistore/config.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>

namespace ocistore::detail {

/** A counting gate of `count` slots for the busy phase of a layer job (download, decompress,
    build). A job holds a slot while it uses the CPU and gives it back before it waits for
    the disk (fdatasync, fsync, rename), so that another layer starts meanwhile instead of
    the cores idling until the writeback ends. Thread-safe. */
class job_slots {
public:
    explicit job_slots(std::size_t count) noexcept : free_(std::max<std::size_t>(count, 1)) {}
    job_slots(job_slots const&) = delete;
    job_slots& operator=(job_slots const&) = delete;

    /// One slot: given back by release() or on destruction, whichever comes first.
    class slot {
    public:
        slot() = default;
        slot(slot&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)) {}
        slot& operator=(slot&& o) noexcept
        {
            if (this != &o) {
                release();
                owner_ = std::exchange(o.owner_, nullptr);
            }
            return *this;
        }
        ~slot() { release(); }

        /// Gives the slot back; later calls do nothing.
        void release() noexcept
        {
            if (owner_) owner_->give_back();
            owner_ = nullptr;
        }
        /// Whether this object still holds its slot.
        bool held() const noexcept { return owner_ != nullptr; }

    private:
        friend class job_slots;
        explicit slot(job_slots* owner) noexcept : owner_(owner) {}
        job_slots* owner_ = nullptr;
    };

    /// Blocks until a slot is free, then holds it.
    slot acquire()
    {
        std::unique_lock lock(mutex_);
        freed_.wait(lock, [&] { return free_ > 0; });
        --free_;
        return slot(this);
    }

    /// Slots free now.
    std::size_t available() const
    {
        std::lock_guard lock(mutex_);
        return free_;
    }

private:
    void give_back() noexcept
    {
        {
            std::lock_guard lock(mutex_);
            ++free_;
        }
        freed_.notify_one();
    }

    mutable std::mutex mutex_;
    std::condition_variable freed_;
    std::size_t free_;
};

} // namespace ocistore::detail
