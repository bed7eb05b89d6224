// ocistore/lock/null_lock.hpp: the no-op *TryStoreLock*, for stores used by one thread only.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/lock_key.hpp>
#include <ocistore/error.hpp>

#include <optional>
#include <string_view>
#include <utility>

namespace ocistore {

/** Locks nothing: every acquire succeeds at once, and guards exclude nobody. Models
    *TryStoreLock* (docs/concepts/store_lock.md). Use it when one thread of one process owns
    the store.

    Keys are still validated (`error::invalid_argument`), so code written against `null_lock`
    keeps working when switched to `flock_lock` or `mutex_lock`; that check is one pass over
    at most 255 bytes and allocates nothing on success.
*/
class null_lock {
public:
    /// Holds nothing but the flag that it "holds" a lock.
    class guard {
    public:
        /// Holds nothing.
        guard() noexcept = default;
        guard(guard&& other) noexcept : owns_(std::exchange(other.owns_, false)) {}
        guard& operator=(guard&& other) noexcept
        {
            owns_ = std::exchange(other.owns_, false);
            return *this;
        }
        guard(guard const&) = delete;
        guard& operator=(guard const&) = delete;
        ~guard() = default;

        bool owns_lock() const noexcept { return owns_; }
        explicit operator bool() const noexcept { return owns_; }
        void unlock() noexcept { owns_ = false; }

    private:
        friend class null_lock;
        explicit guard(bool owns) noexcept : owns_(owns) {}
        bool owns_ = false;
    };

    /// Returns a guard that owns the lock; sets `ec` only for an invalid key.
    guard acquire(std::string_view key, lock_mode, error_code& ec) const
    {
        return guard(detail::validate_lock_key(key, ec));
    }
    /// @throws system_error naming the broken key rule.
    guard acquire(std::string_view key, lock_mode) const
    {
        return detail::throw_on_error(
            [&](error_code& ec, std::string* why) { return guard(detail::validate_lock_key(key, ec, why)); });
    }

    /// Never "held elsewhere": engaged unless the key is invalid.
    std::optional<guard> try_acquire(std::string_view key, lock_mode mode, error_code& ec) const
    {
        guard g = acquire(key, mode, ec);
        if (!g.owns_lock()) return std::nullopt;
        return std::optional<guard>(std::move(g));
    }
    /// @throws system_error naming the broken key rule.
    std::optional<guard> try_acquire(std::string_view key, lock_mode mode) const
    {
        return std::optional<guard>(acquire(key, mode));
    }
};

} // namespace ocistore
