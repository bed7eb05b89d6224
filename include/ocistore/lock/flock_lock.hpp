// ocistore/lock/flock_lock.hpp: the default *TryStoreLock*, flock(2) on one file per key.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ocistore {

/** Named reader/writer locks shared between processes: key `k` is `flock(2)` on the file
    `directory()/k.lock`. Models *TryStoreLock* (docs/concepts/store_lock.md).

    - `acquire` opens the lock file, creating it (mode 0644, whatever the umask) and any
      missing parent directories (mode 0755) on first use, then takes `LOCK_SH` or `LOCK_EX`,
      waiting as long as it takes; `try_acquire` returns an empty optional with `ec` clear
      when the lock is held elsewhere.
    - Every guard owns its own open file description, so guards exclude each other across
      threads of one process exactly as across processes. Locks are not recursive: a thread
      that holds a key exclusively and asks for it again waits forever.
    - Lock files are never deleted: a process may hold or be opening the file, and a
      deleted-then-recreated file would let two holders lock different inodes under one name.
    - The kernel releases a lock when its holder dies. Descriptors are `O_CLOEXEC`; a child
      created by `fork()` shares its parent's open guards until it exits or closes them.
    - Failures: a key outside the grammar gives `error::invalid_argument`; file-system
      failures give their errno in `std::system_category()` (`ec == condition::storage` for
      EACCES, ENOSPC, EROFS, ...). A key whose non-final component ends in ".lock" can collide
      with the lock file of a shorter key; the file system then reports ENOTDIR or EISDIR.
*/
class flock_lock {
public:
    /// Holds one lock; closes its descriptor (releasing the lock) on destruction or unlock().
    class guard {
    public:
        /// Holds nothing.
        guard() noexcept = default;
        guard(guard&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
        /// Releases the lock held by `*this`, then takes over `other`'s.
        guard& operator=(guard&& other) noexcept
        {
            if (this != &other) {
                unlock();
                fd_ = other.fd_;
                other.fd_ = -1;
            }
            return *this;
        }
        guard(guard const&) = delete;
        guard& operator=(guard const&) = delete;
        ~guard() { unlock(); }

        bool owns_lock() const noexcept { return fd_ >= 0; }
        explicit operator bool() const noexcept { return owns_lock(); }
        /// Releases the lock now; no-op when nothing is held.
        OCISTORE_DECL void unlock() noexcept;
        /// The locked file's descriptor, or -1. Owned by the guard: do not close it.
        int native_handle() const noexcept { return fd_; }

    private:
        friend class flock_lock;
        explicit guard(int fd) noexcept : fd_(fd) {}
        int fd_ = -1;
    };

    /// Locks live in `directory`, which need not exist yet. Touches no file.
    explicit flock_lock(std::filesystem::path directory) : directory_(std::move(directory)) {}

    std::filesystem::path const& directory() const noexcept { return directory_; }

    /// The lock file of `key`: `directory()/key.lock`. Fails (error::invalid_argument) for an
    /// invalid key, or when directory() is empty (a moved-from lock).
    OCISTORE_DECL std::filesystem::path lock_file(std::string_view key, error_code& ec) const;
    /// @throws system_error naming the broken key rule.
    OCISTORE_DECL std::filesystem::path lock_file(std::string_view key) const;

    /** Blocks until `key` is held in `mode`. On failure sets `ec` and returns an empty guard;
        clears `ec` on success. */
    OCISTORE_DECL guard acquire(std::string_view key, lock_mode mode, error_code& ec);
    /// @throws system_error (with the key, the path and the reason in what()) on failure.
    OCISTORE_DECL guard acquire(std::string_view key, lock_mode mode);

    /** Takes `key` in `mode` if that is possible without waiting. Returns an empty optional
        with `ec` clear when another guard or process holds a conflicting lock, and an empty
        optional with `ec` set on failure. */
    OCISTORE_DECL std::optional<guard> try_acquire(std::string_view key, lock_mode mode, error_code& ec);
    /// Empty when held elsewhere. @throws system_error on failure.
    OCISTORE_DECL std::optional<guard> try_acquire(std::string_view key, lock_mode mode);

private:
    OCISTORE_DECL guard lock(std::string_view key, lock_mode mode, bool wait, error_code& ec, std::string* why);

    std::filesystem::path directory_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/flock_lock.ipp>
#endif
