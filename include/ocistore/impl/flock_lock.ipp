// Non-template bodies for ocistore/lock/flock_lock.hpp.
#pragma once

#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/lock_key.hpp>

#include <cerrno>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {
namespace detail::flock_lock_impl {

using ocistore::detail::errno_code;

/// open(2), retried on EINTR.
inline int open_retry(char const* path, int flags, ::mode_t mode = 0) noexcept
{
    int fd;
    do fd = ::open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/// Creates `dir` and its missing ancestors, each with mode 0755 whatever the umask.
inline bool make_directories(std::filesystem::path const& dir, error_code& ec)
{
    if (dir.empty()) return true;
    if (::mkdir(dir.c_str(), 0755) != 0) {
        int e = errno;
        if (e == EEXIST) return true;
        if (e != ENOENT) return ec = errno_code(e), false;
        if (dir.parent_path() == dir || !make_directories(dir.parent_path(), ec)) {
            if (!ec) ec = errno_code(ENOENT);
            return false;
        }
        if (::mkdir(dir.c_str(), 0755) != 0) {
            e = errno;
            if (e == EEXIST) return true;
            return ec = errno_code(e), false;
        }
    }
    if (::chmod(dir.c_str(), 0755) != 0) return ec = errno_code(errno), false;
    return true;
}

/// Checks that `fd` is a regular file; when `created`, sets its mode to exactly 0644.
inline bool check_lock_file(int fd, bool created, error_code& ec) noexcept
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) return ec = errno_code(errno), false;
    if (S_ISDIR(st.st_mode)) return ec = errno_code(EISDIR), false;
    if (!S_ISREG(st.st_mode)) return ec = errno_code(EINVAL), false;
    if (created && (st.st_mode & 07777) != 0644 && ::fchmod(fd, 0644) != 0) return ec = errno_code(errno), false;
    return true;
}

/** Opens (creating as needed) the lock file `file`, read-only: flock needs no write access,
    so lock files created by another user stay usable. Returns -1 and sets `ec` on failure. */
inline int open_lock_file(std::filesystem::path const& file, error_code& ec)
{
    constexpr int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int last = ENOENT;
    // Bounded: each round only repeats when another process created or removed the file or
    // a directory concurrently.
    for (int round = 0; round < 16; ++round) {
        bool created = false;
        int fd = open_retry(file.c_str(), flags);
        if (fd < 0 && errno == ENOENT) {
            fd = open_retry(file.c_str(), flags | O_CREAT | O_EXCL, 0644);
            if (fd < 0 && (errno == EEXIST || errno == ENOENT)) {
                last = errno;
                if (last == ENOENT && !make_directories(file.parent_path(), ec)) return -1;
                continue;
            }
            created = fd >= 0;
        }
        if (fd < 0) return ec = errno_code(errno), -1;
        if (!check_lock_file(fd, created, ec)) {
            ::close(fd);
            return -1;
        }
        return fd;
    }
    ec = errno_code(last);
    return -1;
}

} // namespace detail::flock_lock_impl

OCISTORE_DECL void flock_lock::guard::unlock() noexcept
{
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

OCISTORE_DECL std::filesystem::path flock_lock::lock_file(std::string_view key, error_code& ec) const
{
    if (!detail::validate_lock_key(key, ec)) return {};
    if (directory_.empty()) {  // moved-from, or constructed with "": never lock relative to the cwd
        ec = make_error_code(error::invalid_argument);
        return {};
    }
    std::string name(key);
    name += ".lock";
    return directory_ / name;
}

OCISTORE_DECL std::filesystem::path flock_lock::lock_file(std::string_view key) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        if (!detail::validate_lock_key(key, ec, why)) return std::filesystem::path{};
        return lock_file(key, ec);
    });
}

OCISTORE_DECL flock_lock::guard flock_lock::lock(std::string_view key, lock_mode mode, bool wait, error_code& ec,
                                                 std::string* why)
{
    using namespace detail::flock_lock_impl;
    if (!detail::validate_lock_key(key, ec, why)) return {};
    std::filesystem::path const file = lock_file(key, ec);
    if (ec) {
        if (why) *why = "flock_lock: no lock directory (a moved-from or empty-path lock)";
        return {};
    }
    auto describe = [&](char const* what) {
        if (why) *why = std::string("flock_lock: cannot ") + what + " lock file " + file.string() + " for key " +
                detail::quote_lock_key(key);
    };
    int const fd = open_lock_file(file, ec);
    if (fd < 0) return describe("open"), guard{};
    int const op = (mode == lock_mode::exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
    while (::flock(fd, op) != 0) {
        int const e = errno;
        if (e == EINTR) continue;
        ::close(fd);
        if (e == EWOULDBLOCK && !wait) {
            ec.clear();
            return {};
        }
        ec = errno_code(e);
        return describe("lock"), guard{};
    }
    ec.clear();
    return guard(fd);
}

OCISTORE_DECL flock_lock::guard flock_lock::acquire(std::string_view key, lock_mode mode, error_code& ec)
{
    return lock(key, mode, true, ec, nullptr);
}

OCISTORE_DECL flock_lock::guard flock_lock::acquire(std::string_view key, lock_mode mode)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return lock(key, mode, true, ec, why); });
}

OCISTORE_DECL std::optional<flock_lock::guard> flock_lock::try_acquire(std::string_view key, lock_mode mode,
                                                                     error_code& ec)
{
    guard g = lock(key, mode, false, ec, nullptr);
    if (!g.owns_lock()) return std::nullopt;
    return std::optional<guard>(std::move(g));
}

OCISTORE_DECL std::optional<flock_lock::guard> flock_lock::try_acquire(std::string_view key, lock_mode mode)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        guard g = lock(key, mode, false, ec, why);
        if (!g.owns_lock()) return std::optional<guard>();
        return std::optional<guard>(std::move(g));
    });
}

} // namespace ocistore
