// ocistore/lock/mutex_lock.hpp: an in-process *TryStoreLock*, a reader/writer lock per key.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ocistore {

namespace detail {
struct mutex_lock_table;
struct mutex_lock_entry;
} // namespace detail

/** Named reader/writer locks between the threads of one process; invisible to other
    processes. Models *TryStoreLock* (docs/concepts/store_lock.md).

    - A `mutex_lock` is a handle to a table of keys; copies (and moved-from objects) share
      the table, so they exclude each other. Separately constructed locks are independent.
    - An entry exists only while a key is held or awaited, so memory stays proportional to
      the keys in use. Guards keep the table alive, even past the last `mutex_lock`.
    - Writers are preferred: while an exclusive request waits, new shared requests wait too
      (and `try_acquire(shared)` reports the key as held). Locks are not recursive.
    - The only failure is a key outside the grammar: `error::invalid_argument`.
*/
class mutex_lock {
public:
    /// Holds one lock; releases it on destruction or unlock().
    class guard {
    public:
        /// Holds nothing.
        guard() noexcept = default;
        guard(guard&& other) noexcept
            : table_(std::move(other.table_)), entry_(std::exchange(other.entry_, nullptr)), mode_(other.mode_)
        {
        }
        /// Releases the lock held by `*this`, then takes over `other`'s.
        guard& operator=(guard&& other) noexcept
        {
            if (this != &other) {
                unlock();
                table_ = std::move(other.table_);
                entry_ = std::exchange(other.entry_, nullptr);
                mode_ = other.mode_;
            }
            return *this;
        }
        guard(guard const&) = delete;
        guard& operator=(guard const&) = delete;
        ~guard() { unlock(); }

        bool owns_lock() const noexcept { return entry_ != nullptr; }
        explicit operator bool() const noexcept { return owns_lock(); }
        /// Releases the lock now; no-op when nothing is held.
        OCISTORE_DECL void unlock() noexcept;

    private:
        friend class mutex_lock;
        guard(std::shared_ptr<detail::mutex_lock_table> table, detail::mutex_lock_entry* entry, lock_mode mode) noexcept
            : table_(std::move(table)), entry_(entry), mode_(mode)
        {
        }
        std::shared_ptr<detail::mutex_lock_table> table_;
        detail::mutex_lock_entry* entry_ = nullptr;
        lock_mode mode_ = lock_mode::shared;
    };

    /// A new, empty table of keys.
    OCISTORE_DECL mutex_lock();
    mutex_lock(mutex_lock const&) = default;
    mutex_lock& operator=(mutex_lock const&) = default;
    /// Shares `other`'s table; `other` keeps it too and stays usable.
    mutex_lock(mutex_lock&& other) noexcept : table_(other.table_) {}
    mutex_lock& operator=(mutex_lock&& other) noexcept
    {
        table_ = other.table_;
        return *this;
    }
    ~mutex_lock() = default;

    /// Blocks until `key` is held in `mode`. On an invalid key sets `ec` and returns an empty guard.
    OCISTORE_DECL guard acquire(std::string_view key, lock_mode mode, error_code& ec);
    /// @throws system_error naming the broken key rule.
    OCISTORE_DECL guard acquire(std::string_view key, lock_mode mode);

    /** Takes `key` in `mode` if that is possible without waiting; an empty optional with `ec`
        clear when it is held (or, for `shared`, awaited by a writer). */
    OCISTORE_DECL std::optional<guard> try_acquire(std::string_view key, lock_mode mode, error_code& ec);
    /// Empty when held elsewhere. @throws system_error naming the broken key rule.
    OCISTORE_DECL std::optional<guard> try_acquire(std::string_view key, lock_mode mode);

    /// Number of keys currently held or awaited through this table (diagnostics, tests).
    OCISTORE_DECL std::size_t key_count() const;

private:
    OCISTORE_DECL guard lock(std::string_view key, lock_mode mode, bool wait, error_code& ec, std::string* why);

    std::shared_ptr<detail::mutex_lock_table> table_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/mutex_lock.ipp>
#endif
