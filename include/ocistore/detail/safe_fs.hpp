// Internal: descriptor-relative file-system operations that never follow a symbolic link and
// never leave the directory they start from; the containment layer of the tree builders.
//
// Every path handed to these functions is relative to a directory descriptor ("the root") and
// has been checked by check_relative_path(). Directories are resolved with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) where the kernel has
// it, and otherwise by one openat(O_PATH | O_DIRECTORY | O_NOFOLLOW) per component; the last
// component is only ever used through *at() calls that do not follow it either. So a symbolic
// link inside a tree is data, never a way out of it.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace ocistore::detail::safe_fs {

using ocistore::detail::errno_code;

/** Reads a whole regular file of at most `limit` bytes, not following a final symbolic link.
    Absent (ENOENT, ENOTDIR): error::not_found; a symbolic link or not a regular file:
    error::unsafe_path; larger than `limit`: error::too_large; other failures: the errno. */
OCISTORE_DECL std::string read_small_file(std::string const& path, std::uint64_t limit, error_code& ec);

/** read_small_file() for a store's own metadata: false with `ec` clear when the file is
    absent, not a regular file or over `limit` (not something we wrote); `ec` only for I/O. */
inline bool read_own_file(std::string const& path, std::uint64_t limit, std::string& out, error_code& ec)
{
    out = read_small_file(path, limit, ec);
    if (ec == error::not_found || ec == error::unsafe_path || ec == error::too_large) ec.clear();
    else if (!ec) return true;
    return false;
}

/// Owns a file descriptor.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept
    {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    unique_fd(unique_fd const&) = delete;
    unique_fd& operator=(unique_fd const&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// Most components a path may have: tree walks hold two descriptors per level.
inline constexpr std::size_t max_depth = 256;
/// Most bytes a path or link target may have.
inline constexpr std::size_t max_path_bytes = 4096;

/// `"text"` with bytes outside printable ASCII as \xNN, cut after 200 bytes; for messages.
OCISTORE_DECL std::string quote(std::string_view text);

/** Checks a path relative to a tree root: "." (the root itself), or components separated by
    single '/', none empty, "." or ".."; not absolute, no NUL; at most `max_path_bytes` bytes and
    `max_depth` components. Fails with `error::unsafe_path` (or `limit_exceeded` for the
    bounds), `*why` naming `what`, the path and the rule. */
OCISTORE_DECL bool check_relative_path(std::string_view path, std::string_view what, error_code& ec,
                                       std::string* why);

/// "a/b/c" -> {"a/b", "c"}; "c" -> {"", "c"}.
inline std::pair<std::string_view, std::string_view> split_parent(std::string_view path) noexcept
{
    std::size_t const slash = path.rfind('/');
    if (slash == std::string_view::npos) return {std::string_view{}, path};
    return {path.substr(0, slash), path.substr(slash + 1)};
}

/// `parent` + '/' + `name`, where an empty or "." parent is the root.
inline std::string join(std::string_view parent, std::string_view name)
{
    if (parent.empty() || parent == ".") return std::string(name);
    std::string r(parent);
    r.push_back('/');
    r.append(name);
    return r;
}

/// Whether `path` is `ancestor` or lies below it ("." is everyone's ancestor).
inline bool is_within(std::string_view path, std::string_view ancestor) noexcept
{
    if (ancestor == ".") return true;
    return path.size() >= ancestor.size() && path.substr(0, ancestor.size()) == ancestor &&
        (path.size() == ancestor.size() || path[ancestor.size()] == '/');
}

/// Whether openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS works here (probed once).
OCISTORE_DECL bool openat2_available() noexcept;

/// How open_dir() ended.
enum class resolve_status {
    ok,            ///< `out` holds the directory
    missing,       ///< a component does not exist (and `create` was false)
    symlink,       ///< a component is a symbolic link
    not_directory, ///< a component exists but is neither a directory nor a symbolic link
    failed,        ///< another error; `err` holds the errno
};

/// Where open_dir() stopped.
struct resolve_error {
    std::string prefix; ///< the path up to and including the offending component
    int err = 0;        ///< errno for `failed`
};

/** Opens directory `rel` ("" or "." is `root` itself) beneath `root` as an O_PATH descriptor,
    following no symbolic link. With `create`, missing components are made (mode 0755 less the
    umask) and their paths appended to `*created`. `use_openat2` false forces the component
    walk. */
OCISTORE_DECL resolve_status open_dir(int root, std::string_view rel, bool use_openat2, bool create, unique_fd& out,
                                      resolve_error& where, std::vector<std::string>* created = nullptr);

/// Opens `name` in `dirfd` for reading as a directory (O_NOFOLLOW); -1 and errno on failure.
OCISTORE_DECL int open_dir_fd(int dirfd, char const* name) noexcept;

/// The names in directory `dirfd` (an O_PATH descriptor works), without "." and "..", sorted.
OCISTORE_DECL std::vector<std::string> list_dir(int dirfd, error_code& ec);

/// Removes `name` from `dirfd` with everything below it, following no link; absent is success.
OCISTORE_DECL void remove_entry(int dirfd, std::string const& name, error_code& ec);
/// Removes everything inside directory `dirfd`.
OCISTORE_DECL void clear_dir(int dirfd, error_code& ec);
/// Removes the tree at `path` (an absolute or working-directory-relative path); absent is success.
OCISTORE_DECL void remove_tree(std::string const& path, error_code& ec);

/// "/proc/self/fd/<dirfd>/<name>" (or without "/<name>"), to reach a node that cannot be opened.
OCISTORE_DECL std::string proc_path(int dirfd, std::string_view name);

/// An extended attribute: name and raw value.
struct xattr {
    std::string name;
    std::string value;
    friend bool operator==(xattr const&, xattr const&) = default;
};

/** A node for xattr calls: an open descriptor (`fd` >= 0, regular files and directories), or
    `name` in directory `dirfd` reached without following it (every other type). */
struct node_ref {
    int fd = -1;
    int dirfd = -1;
    std::string_view name;
};

/// The node's extended attributes, sorted by name. ENOTSUP/EOPNOTSUPP gives an empty list.
OCISTORE_DECL std::vector<xattr> list_xattrs(node_ref node, error_code& ec);
/// Sets one attribute; returns the errno (0 on success).
OCISTORE_DECL int set_xattr(node_ref node, std::string const& name, std::string const& value) noexcept;
/// Removes one attribute; returns the errno (0 on success).
OCISTORE_DECL int remove_xattr(node_ref node, std::string const& name) noexcept;

/** Copies `size` bytes of regular file `src` into the empty file `dst`: a reflink (FICLONE)
    where the file system shares extents, else copy_file_range over the data extents only
    (holes stay holes), else read/write. */
OCISTORE_DECL void copy_file_data(int src, int dst, std::uint64_t size, error_code& ec);

/// Reads symbolic link `name` in `dirfd`.
OCISTORE_DECL std::string read_link(int dirfd, char const* name, error_code& ec);

/** Renames `from` (in `from_dir`) to `to` (in `to_dir`) unless `to` exists
    (RENAME_NOREPLACE). Returns false with `ec` clear when it exists, false with `ec` set on
    failure. */
OCISTORE_DECL bool rename_noreplace(int from_dir, std::string const& from, int to_dir, std::string const& to,
                                    error_code& ec);

/** Swaps `a` (in `a_dir`) and `b` (in `b_dir`) in one step (RENAME_EXCHANGE), so `b`'s name is
    never empty; where the file system cannot, through a third name (`a` + ".old"), leaving `b`'s
    name empty for a moment. */
OCISTORE_DECL void rename_exchange(int a_dir, std::string const& a, int b_dir, std::string const& b, error_code& ec);

} // namespace ocistore::detail::safe_fs

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/safe_fs.ipp>
#endif
