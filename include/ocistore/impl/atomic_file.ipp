// Non-template bodies for ocistore/atomic_file.hpp.
#pragma once

#include <ocistore/atomic_file.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <cerrno>
#include <cstdint>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {
namespace detail::atomic_file_impl {

using ocistore::detail::errno_code;

inline int open_retry(char const* path, int flags, ::mode_t mode = 0) noexcept
{
    int fd;
    do fd = ::open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

inline int fsync_retry(int fd) noexcept
{
    int r;
    do r = ::fsync(fd);
    while (r != 0 && errno == EINTR);
    return r;
}

/// 48 random bits as 12 hex digits; differs between a process and its fork()ed children.
inline std::string random_suffix()
{
    thread_local std::mt19937_64 rng = [] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }();
    std::uint64_t v = rng() ^ (static_cast<std::uint64_t>(::getpid()) << 16);
    static char const hex[] = "0123456789abcdef";
    std::string out(12, '0');
    for (char& c : out) {
        c = hex[v & 15];
        v >>= 4;
    }
    return out;
}

/// Longest part of the target's name kept in the temporary's name, so that
/// "." + name + ".tmp." + 12 digits fits in NAME_MAX (255).
inline constexpr std::size_t max_name_in_temp = 255 - 1 - 5 - 12;

inline std::filesystem::path directory_of(std::filesystem::path const& target)
{
    std::filesystem::path dir = target.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}

} // namespace detail::atomic_file_impl

OCISTORE_DECL void atomic_file::open_impl(std::filesystem::path target, atomic_file_options const& options,
                                          error_code& ec, std::string* why)
{
    using namespace detail::atomic_file_impl;
    abandon();
    ec.clear();
    failed_.clear();
    durable_ = options.durable;
    target_ = std::move(target);
    std::string const name = target_.filename().string();
    if (name.empty() || name == "." || name == "..")
        return detail::fail(ec, why, error::invalid_argument,
                            "atomic_file: target \"" + target_.string() + "\" does not name a file");
    std::string const kept = name.substr(0, max_name_in_temp);
    ::mode_t const mode = options.mode & 07777;
    for (int attempt = 0; attempt < 64; ++attempt) {
        std::filesystem::path temp = target_.parent_path() / ("." + kept + ".tmp." + random_suffix());
        int const fd = open_retry(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            ec = errno_code(errno);
            if (why) *why = "atomic_file: cannot create a temporary file in " + directory_of(target_).string();
            return;
        }
        struct ::stat st {};
        if (::fstat(fd, &st) != 0 || ((st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0)) {
            ec = errno_code(errno);
            ::close(fd);
            ::unlink(temp.c_str());
            if (why) *why = "atomic_file: cannot set the mode of " + temp.string();
            return;
        }
        fd_ = fd;
        temp_ = std::move(temp);
        return;
    }
    ec = errno_code(EEXIST);
    if (why) *why = "atomic_file: no free temporary name in " + directory_of(target_).string();
}

OCISTORE_DECL void atomic_file::open(std::filesystem::path target, atomic_file_options const& options, error_code& ec)
{
    open_impl(std::move(target), options, ec, nullptr);
}

OCISTORE_DECL void atomic_file::open(std::filesystem::path target, atomic_file_options const& options)
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        open_impl(std::move(target), options, ec, why);
        return 0;
    });
}

OCISTORE_DECL void atomic_file::write_impl(std::span<std::byte const> bytes, error_code& ec, std::string* why)
{
    if (!is_open())
        return detail::fail(ec, why, error::invalid_argument, "atomic_file: write to a file that is not open");
    if (failed_) {
        ec = failed_;
        if (why) *why = "atomic_file: an earlier write to " + temp_.string() + " failed";
        return;
    }
    constexpr std::size_t max_chunk = std::size_t(1) << 30;
    while (!bytes.empty()) {
        ::ssize_t const n = ::write(fd_, bytes.data(), bytes.size() < max_chunk ? bytes.size() : max_chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            failed_ = ec = detail::errno_code(n < 0 ? errno : EIO);
            if (why) *why = "atomic_file: cannot write " + temp_.string();
            return;
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    ec.clear();
}

OCISTORE_DECL void atomic_file::write(std::span<std::byte const> bytes, error_code& ec)
{
    write_impl(bytes, ec, nullptr);
}

OCISTORE_DECL void atomic_file::write(std::span<std::byte const> bytes)
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        write_impl(bytes, ec, why);
        return 0;
    });
}

OCISTORE_DECL void atomic_file::commit_impl(error_code& ec, std::string* why)
{
    using namespace detail::atomic_file_impl;
    if (!is_open())
        return detail::fail(ec, why, error::invalid_argument, "atomic_file: commit of a file that is not open");
    auto give_up = [&](error_code code, std::string const& step) {
        ec = code;
        if (why) *why = "atomic_file: cannot " + step;
        abandon();
    };
    if (failed_) return give_up(failed_, "commit " + target_.string() + " after a failed write");
    if (durable_ && fsync_retry(fd_) != 0) return give_up(errno_code(errno), "fsync " + temp_.string());
    int const fd = std::exchange(fd_, -1);
    if (::close(fd) != 0 && errno != EINTR) return give_up(errno_code(errno), "close " + temp_.string());
    if (::rename(temp_.c_str(), target_.c_str()) != 0)
        return give_up(errno_code(errno), "rename " + temp_.string() + " to " + target_.string());
    temp_.clear();
    if (durable_) {
        std::filesystem::path const dir = directory_of(target_);
        fsync_directory(dir, ec);
        if (ec && why) *why = "atomic_file: renamed onto " + target_.string() + " but cannot fsync " + dir.string();
        return;
    }
    ec.clear();
}

OCISTORE_DECL void atomic_file::commit(error_code& ec) { commit_impl(ec, nullptr); }

OCISTORE_DECL void atomic_file::commit()
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        commit_impl(ec, why);
        return 0;
    });
}

OCISTORE_DECL void atomic_file::abandon() noexcept
{
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!temp_.empty()) {
        ::unlink(temp_.c_str());
        temp_.clear();
    }
    failed_.clear();
}

OCISTORE_DECL void write_file_atomically(std::filesystem::path const& target, std::span<std::byte const> bytes,
                                         atomic_file_options const& options, error_code& ec)
{
    atomic_file f;
    f.open(target, options, ec);
    if (!ec) f.write(bytes, ec);
    if (!ec) f.commit(ec);
}

OCISTORE_DECL void write_file_atomically(std::filesystem::path const& target, std::span<std::byte const> bytes,
                                         atomic_file_options const& options)
{
    atomic_file f(target, options);
    f.write(bytes);
    f.commit();
}

OCISTORE_DECL void fsync_directory(std::filesystem::path const& dir, error_code& ec)
{
    using namespace detail::atomic_file_impl;
    int const fd = open_retry(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return void(ec = errno_code(errno));
    int const r = fsync_retry(fd);
    int const e = errno;
    ::close(fd);
    if (r != 0 && e != EINVAL) return void(ec = errno_code(e));
    ec.clear();
}

OCISTORE_DECL void fsync_directory(std::filesystem::path const& dir)
{
    error_code ec;
    fsync_directory(dir, ec);
    if (ec) throw_error(ec, "fsync_directory: " + dir.string());
}

} // namespace ocistore
