// ocistore/atomic_file.hpp: files that appear at their final name complete, or not at all.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <sys/types.h>

namespace ocistore {

/// How an atomic_file creates and publishes its file.
struct atomic_file_options {
    /// Permission bits of the file, applied exactly: the process umask does not reduce them.
    ::mode_t mode = 0644;
    /** Whether commit() syncs the file before the rename and the directory after it. Without
        it the file is still never seen half-written by other processes, but after a power
        loss the target may hold its old content, nothing, or a truncated file. Turn it off
        for data that can be fetched or rebuilt again. */
    bool durable = true;
};

/** A file written under a temporary name and renamed onto its target by commit().

    open() creates `.<name>.tmp.<random>` in the target's directory (`O_CREAT|O_EXCL|O_CLOEXEC`),
    so the rename never crosses a file system. commit() syncs the file (when durable), renames
    it over the target, which readers then see replaced in one step, and syncs the directory.
    The destructor, abandon(), and a failed commit() remove the temporary: nothing
    half-written ever reaches the target name.

    A write() failure is sticky: commit() then fails with the same code instead of publishing
    a partial file. Callers that stream through native_handle() are responsible for checking
    their own writes. Failures are errno values in `std::system_category()`; using a closed
    file is `error::invalid_argument`.

    @code
    ocistore::atomic_file f(root / "index.json");
    f.write(json_text);
    f.commit();
    @endcode
*/
class atomic_file {
public:
    /// Not open.
    atomic_file() noexcept = default;
    /// Opens a temporary for `target`. @throws system_error on failure.
    explicit atomic_file(std::filesystem::path target, atomic_file_options const& options = {})
    {
        open(std::move(target), options);
    }
    atomic_file(atomic_file&& other) noexcept
        : target_(std::move(other.target_)),
          temp_(std::exchange(other.temp_, {})),
          fd_(std::exchange(other.fd_, -1)),
          durable_(other.durable_),
          failed_(std::exchange(other.failed_, {}))
    {
    }
    /// Abandons the file held by `*this`, then takes over `other`'s.
    atomic_file& operator=(atomic_file&& other) noexcept
    {
        if (this != &other) {
            abandon();
            target_ = std::move(other.target_);
            temp_ = std::exchange(other.temp_, {});
            fd_ = std::exchange(other.fd_, -1);
            durable_ = other.durable_;
            failed_ = std::exchange(other.failed_, {});
        }
        return *this;
    }
    atomic_file(atomic_file const&) = delete;
    atomic_file& operator=(atomic_file const&) = delete;
    /// Abandons the file unless it was committed.
    ~atomic_file() { abandon(); }

    /** Creates the temporary for `target` (abandoning any file already open). Fails with
        `error::invalid_argument` when `target` has no file name, and with the errno of
        open(2) otherwise (ENOENT: the directory does not exist; EACCES: it is not writable). */
    OCISTORE_DECL void open(std::filesystem::path target, atomic_file_options const& options, error_code& ec);
    void open(std::filesystem::path target, error_code& ec) { open(std::move(target), atomic_file_options{}, ec); }
    /// @throws system_error naming the target.
    OCISTORE_DECL void open(std::filesystem::path target, atomic_file_options const& options = {});

    /// Whether a temporary is open, i.e. open() succeeded and neither commit() nor abandon() ran since.
    bool is_open() const noexcept { return fd_ >= 0; }
    /// The temporary's descriptor (write-only), or -1. Owned by this object: do not close it.
    int native_handle() const noexcept { return fd_; }
    /// The final name given to open().
    std::filesystem::path const& target_path() const noexcept { return target_; }
    /// The temporary's name while open; empty otherwise.
    std::filesystem::path const& temp_path() const noexcept { return temp_; }

    /// Appends all of `bytes`, retrying short writes and EINTR.
    OCISTORE_DECL void write(std::span<std::byte const> bytes, error_code& ec);
    void write(std::string_view text, error_code& ec) { write(std::as_bytes(std::span(text.data(), text.size())), ec); }
    /// @throws system_error naming the temporary.
    OCISTORE_DECL void write(std::span<std::byte const> bytes);
    void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }

    /** Publishes the file: fsync (when durable), close, rename onto the target, fsync the
        directory (when durable). Afterwards the object is closed whether or not it succeeded;
        on failure before the rename the temporary is removed and the target is untouched. If
        only the final directory sync fails, the new content is already at the target but
        may not survive a crash, and `ec` reports the errno. */
    OCISTORE_DECL void commit(error_code& ec);
    /// @throws system_error naming the step and the path that failed.
    OCISTORE_DECL void commit();

    /// Closes and removes the temporary; no-op when not open.
    OCISTORE_DECL void abandon() noexcept;

private:
    OCISTORE_DECL void open_impl(std::filesystem::path target, atomic_file_options const& options, error_code& ec,
                                 std::string* why);
    OCISTORE_DECL void write_impl(std::span<std::byte const> bytes, error_code& ec, std::string* why);
    OCISTORE_DECL void commit_impl(error_code& ec, std::string* why);

    std::filesystem::path target_;
    std::filesystem::path temp_;
    int fd_ = -1;
    bool durable_ = true;
    error_code failed_;
};

/// Writes `bytes` to `target` through an atomic_file: the target holds either its old content or all of `bytes`.
OCISTORE_DECL void write_file_atomically(std::filesystem::path const& target, std::span<std::byte const> bytes,
                                         atomic_file_options const& options, error_code& ec);
inline void write_file_atomically(std::filesystem::path const& target, std::span<std::byte const> bytes,
                                  error_code& ec)
{
    write_file_atomically(target, bytes, atomic_file_options{}, ec);
}
inline void write_file_atomically(std::filesystem::path const& target, std::string_view text,
                                  atomic_file_options const& options, error_code& ec)
{
    write_file_atomically(target, std::as_bytes(std::span(text.data(), text.size())), options, ec);
}
inline void write_file_atomically(std::filesystem::path const& target, std::string_view text, error_code& ec)
{
    write_file_atomically(target, text, atomic_file_options{}, ec);
}
/// @throws system_error naming the step and the path that failed.
OCISTORE_DECL void write_file_atomically(std::filesystem::path const& target, std::span<std::byte const> bytes,
                                         atomic_file_options const& options = {});
inline void write_file_atomically(std::filesystem::path const& target, std::string_view text,
                                  atomic_file_options const& options = {})
{
    write_file_atomically(target, std::as_bytes(std::span(text.data(), text.size())), options);
}

/** fsync(2) on the directory `dir`, making renames and creations inside it durable. A file
    system that cannot sync directories (EINVAL) is not an error. */
OCISTORE_DECL void fsync_directory(std::filesystem::path const& dir, error_code& ec);
/// @throws system_error naming the directory.
OCISTORE_DECL void fsync_directory(std::filesystem::path const& dir);

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/atomic_file.ipp>
#endif
