// ocistore/detail/buffer_pool.hpp: a memory resource that keeps freed blocks of one size for reuse.
#pragma once

#include <ocistore/config.hpp>

#include <cstddef>
#include <memory_resource>
#include <mutex>
#include <span>
#include <vector>

namespace ocistore::detail {

/** A thread-safe `std::pmr::memory_resource` that keeps every freed block of exactly
    `block_size` bytes (alignment at most `alignof(std::max_align_t)`) and hands it out again;
    other requests pass straight to `upstream`. What it holds is what was once in use at the
    same time, and it goes back to `upstream` on destruction, so a pool scoped to one pull
    reuses the read-ahead rings of its layers (freshly mapped memory costs a page fault per
    4 KiB, which a blobs-only pull pays at the rate bytes arrive). */
class buffer_pool final : public std::pmr::memory_resource {
public:
    explicit buffer_pool(std::size_t block_size,
                         std::pmr::memory_resource* upstream = std::pmr::new_delete_resource()) noexcept
        : block_size_(block_size), upstream_(upstream)
    {
    }
    buffer_pool(buffer_pool const&) = delete;
    buffer_pool& operator=(buffer_pool const&) = delete;
    ~buffer_pool() override
    {
        for (void* p : free_) upstream_->deallocate(p, block_size_, block_align);
    }

    std::size_t block_size() const noexcept { return block_size_; }

    /// Blocks held for reuse now.
    std::size_t idle_blocks() const
    {
        std::lock_guard lock(mutex_);
        return free_.size();
    }

private:
    static constexpr std::size_t block_align = alignof(std::max_align_t);

    bool pooled(std::size_t bytes, std::size_t align) const noexcept
    {
        return bytes == block_size_ && align <= block_align;
    }

    void* do_allocate(std::size_t bytes, std::size_t align) override
    {
        if (!pooled(bytes, align)) return upstream_->allocate(bytes, align);
        {
            std::lock_guard lock(mutex_);
            if (!free_.empty()) {
                void* p = free_.back();
                free_.pop_back();
                return p;
            }
        }
        void* p = upstream_->allocate(bytes, block_align);
        std::lock_guard lock(mutex_);
        try {
            free_.reserve(owned_ + 1); // room for every block: deallocation never allocates
        } catch (...) {
            upstream_->deallocate(p, bytes, block_align);
            throw;
        }
        ++owned_;
        return p;
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t align) override
    {
        if (!pooled(bytes, align)) return upstream_->deallocate(p, bytes, align);
        std::lock_guard lock(mutex_);
        free_.push_back(p); // within the capacity reserved when the block was made
    }

    bool do_is_equal(std::pmr::memory_resource const& other) const noexcept override { return this == &other; }

    std::size_t const block_size_;
    std::pmr::memory_resource* const upstream_;
    mutable std::mutex mutex_;
    std::vector<void*> free_;  ///< capacity >= owned_
    std::size_t owned_ = 0;    ///< blocks of block_size_ taken from upstream_
};

/// `size` bytes from a memory resource (max_align_t-aligned), given back on destruction.
class pooled_buffer {
public:
    pooled_buffer(std::pmr::memory_resource& memory, std::size_t size)
        : memory_(memory), data_(static_cast<std::byte*>(memory.allocate(size))), size_(size)
    {
    }
    pooled_buffer(pooled_buffer const&) = delete;
    pooled_buffer& operator=(pooled_buffer const&) = delete;
    ~pooled_buffer() { memory_.deallocate(data_, size_); }

    std::span<std::byte> span() const noexcept { return {data_, size_}; }

private:
    std::pmr::memory_resource& memory_;
    std::byte* const data_;
    std::size_t const size_;
};

} // namespace ocistore::detail
