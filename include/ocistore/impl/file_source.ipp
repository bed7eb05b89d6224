// Non-template bodies for ocistore/file_source.hpp.
#pragma once

#include <ocistore/file_source.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {

OCISTORE_DECL void file_source::open(std::filesystem::path const& path, std::uint64_t offset, error_code& ec)
{
    close();
    ec.clear();
    int fd;
    do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return void(ec = error_code(errno, std::system_category()));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        ec = error_code(errno, std::system_category());
        ::close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        ec = error_code(S_ISDIR(st.st_mode) ? EISDIR : EINVAL, std::system_category());
        ::close(fd);
        return;
    }
    if (offset != 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
        ec = error_code(errno, std::system_category());
        ::close(fd);
        return;
    }
    fd_ = fd;
    offset_ = offset;
    size_ = static_cast<std::uint64_t>(st.st_size);
}

OCISTORE_DECL void file_source::open(std::filesystem::path const& path, std::uint64_t offset)
{
    error_code ec;
    open(path, offset, ec);
    if (ec) throw_error(ec, "file_source: cannot open " + path.string() + " at offset " + std::to_string(offset));
}

OCISTORE_DECL void file_source::close() noexcept
{
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

OCISTORE_DECL std::size_t file_source::read_some(std::span<std::byte> buffer, error_code& ec)
{
    ec.clear();
    if (fd_ < 0) return ec = make_error_code(error::invalid_argument), 0;
    for (;;) {
        ssize_t const n = ::read(fd_, buffer.data(), buffer.size());
        if (n >= 0) {
            offset_ += static_cast<std::uint64_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (errno != EINTR) return ec = error_code(errno, std::system_category()), 0;
    }
}

} // namespace ocistore
