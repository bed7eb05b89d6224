// ocistore/file_source.hpp: a *ByteSource* over a file (replaying .part downloads, local blobs).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace ocistore {

/** Reads a file sequentially from an offset with read(2), as a *ByteSource*.

    Owns its descriptor (O_RDONLY | O_CLOEXEC); move-only. Reads are handed straight to the
    caller's span: no buffering, so large spans mean few system calls. Short reads and EINTR
    are handled; failures are errno codes (`ec == condition::storage` for EIO, EACCES, …).
*/
class file_source {
public:
    file_source() noexcept = default;
    /// Opens `path` at `offset`. @throws system_error naming the path.
    explicit file_source(std::filesystem::path const& path, std::uint64_t offset = 0) { open(path, offset); }
    file_source(file_source&& other) noexcept;
    file_source& operator=(file_source&& other) noexcept;
    file_source(file_source const&) = delete;
    file_source& operator=(file_source const&) = delete;
    ~file_source() { close(); }

    /// Opens `path` positioned at `offset` (which may lie past the end: the source is then empty).
    OCISTORE_DECL void open(std::filesystem::path const& path, std::uint64_t offset, error_code& ec);
    /// @throws system_error naming the path.
    OCISTORE_DECL void open(std::filesystem::path const& path, std::uint64_t offset = 0);
    OCISTORE_DECL void close() noexcept;
    bool is_open() const noexcept { return fd_ >= 0; }

    /// *ByteSource*: up to `buffer.size()` bytes; 0 with `ec` clear at the end of the file.
    OCISTORE_DECL std::size_t read_some(std::span<std::byte> buffer, error_code& ec);

    /// The file offset of the next byte read_some() returns.
    std::uint64_t offset() const noexcept { return offset_; }
    /// The file's size when it was opened.
    std::uint64_t size() const noexcept { return size_; }
    int native_handle() const noexcept { return fd_; }

private:
    int fd_ = -1;
    std::uint64_t offset_ = 0;
    std::uint64_t size_ = 0;
};

inline file_source::file_source(file_source&& other) noexcept : fd_(other.fd_), offset_(other.offset_), size_(other.size_)
{
    other.fd_ = -1;
}

inline file_source& file_source::operator=(file_source&& other) noexcept
{
    if (this != &other) {
        close();
        fd_ = other.fd_;
        offset_ = other.offset_;
        size_ = other.size_;
        other.fd_ = -1;
    }
    return *this;
}

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/file_source.ipp>
#endif
