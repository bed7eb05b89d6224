// Non-template bodies for ocistore/detail/safe_fs.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/safe_fs.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

namespace ocistore::detail::safe_fs {
namespace safe_fs_impl {

inline int retry_open(int dirfd, char const* name, int flags, ::mode_t mode = 0) noexcept
{
    int fd;
    do fd = ::openat(dirfd, name, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

inline long raw_openat2(int dirfd, char const* path, std::uint64_t flags, std::uint64_t resolve) noexcept
{
    ::open_how how{};
    how.flags = flags;
    how.resolve = resolve;
    long r;
    do r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (r < 0 && errno == EINTR);
    return r;
}

inline constexpr std::uint64_t resolve_flags = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/// Classifies the component `name` of `dirfd` after an open with O_DIRECTORY|O_NOFOLLOW failed with ENOTDIR.
inline resolve_status classify_not_dir(int dirfd, char const* name, int& err) noexcept
{
    struct ::stat st;
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        err = errno;
        return err == ENOENT ? resolve_status::missing : resolve_status::failed;
    }
    if (S_ISLNK(st.st_mode)) return resolve_status::symlink;
    if (S_ISDIR(st.st_mode)) return resolve_status::failed; // raced with a rename
    return resolve_status::not_directory;
}

inline std::vector<xattr> sorted(std::vector<xattr> v)
{
    std::sort(v.begin(), v.end(), [](xattr const& a, xattr const& b) { return a.name < b.name; });
    return v;
}

} // namespace safe_fs_impl

OCISTORE_DECL std::string read_small_file(std::string const& path, std::uint64_t limit, error_code& ec)
{
    ec.clear();
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int const e = errno;
        ec = e == ENOENT || e == ENOTDIR ? make_error_code(error::not_found)
             : e == ELOOP                ? make_error_code(error::unsafe_path)
                                         : errno_code(e);
        return {};
    }
    unique_fd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return ec = errno_code(errno), std::string{};
    if (!S_ISREG(st.st_mode)) return ec = make_error_code(error::unsafe_path), std::string{};
    if (static_cast<std::uint64_t>(st.st_size) > limit) return ec = make_error_code(error::too_large), std::string{};
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t const n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return ec = errno_code(errno), std::string{};
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

OCISTORE_DECL std::string quote(std::string_view text)
{
    static char const hex[] = "0123456789abcdef";
    std::string out = "'";
    std::size_t const shown = std::min<std::size_t>(text.size(), 200);
    for (std::size_t i = 0; i < shown; ++i) {
        auto const u = static_cast<unsigned char>(text[i]);
        if (u >= 0x20 && u < 0x7f && u != '\'' && u != '\\') {
            out.push_back(text[i]);
        } else {
            out += "\\x";
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    if (shown < text.size()) out += "...";
    out.push_back('\'');
    return out;
}

OCISTORE_DECL bool check_relative_path(std::string_view path, std::string_view what, error_code& ec,
                                       std::string* why)
{
    ec.clear();
    auto reject = [&](error e, std::string const& rule) {
        fail(ec, why, e, std::string(what) + " " + quote(path) + ": " + rule);
        return false;
    };
    if (path == ".") return true;
    if (path.empty()) return reject(error::unsafe_path, "empty path");
    if (path.size() > max_path_bytes)
        return reject(error::limit_exceeded, std::to_string(path.size()) + " bytes, more than the limit of " +
                                                 std::to_string(max_path_bytes));
    if (path.find('\0') != std::string_view::npos)
        return reject(error::unsafe_path, "NUL byte at position " + std::to_string(path.find('\0')));
    if (path.front() == '/') return reject(error::unsafe_path, "absolute path");
    std::size_t depth = 0, start = 0;
    for (;;) {
        std::size_t const slash = path.find('/', start);
        std::string_view const c = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (c.empty())
            return reject(error::unsafe_path, slash == std::string_view::npos
                                                  ? "ends with '/'"
                                                  : "empty component at position " + std::to_string(start));
        if (c == "..") return reject(error::unsafe_path, "component \"..\" at position " + std::to_string(start));
        if (c == ".") return reject(error::unsafe_path, "component \".\" at position " + std::to_string(start));
        if (++depth > max_depth)
            return reject(error::limit_exceeded, "more than " + std::to_string(max_depth) + " components");
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return true;
}

OCISTORE_DECL bool openat2_available() noexcept
{
    static std::atomic<int> state{0}; // 0 unknown, 1 yes, 2 no
    int s = state.load(std::memory_order_relaxed);
    if (s == 0) {
        long const r = safe_fs_impl::raw_openat2(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (r >= 0) ::close(static_cast<int>(r));
        s = r >= 0 ? 1 : 2;
        state.store(s, std::memory_order_relaxed);
    }
    return s == 1;
}

OCISTORE_DECL resolve_status open_dir(int root, std::string_view rel, bool use_openat2, bool create, unique_fd& out,
                                      resolve_error& where, std::vector<std::string>* created)
{
    using namespace safe_fs_impl;
    where = {};
    out.reset();
    if (rel.empty() || rel == ".") {
        int const fd = retry_open(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return where.err = errno, resolve_status::failed;
        out.reset(fd);
        return resolve_status::ok;
    }
    std::string const path(rel);
    if (use_openat2 && openat2_available()) {
        long const r = raw_openat2(root, path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, resolve_flags);
        if (r >= 0) {
            out.reset(static_cast<int>(r));
            return resolve_status::ok;
        }
        // ELOOP (a symlink), ENOENT, ENOTDIR, EXDEV, EAGAIN: the walk below finds out which
        // component and creates what is missing.
        if (errno != ELOOP && errno != ENOENT && errno != ENOTDIR && errno != EXDEV && errno != EAGAIN)
            return where.err = errno, where.prefix = path, resolve_status::failed;
    }
    unique_fd cur(retry_open(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cur) return where.err = errno, resolve_status::failed;
    std::size_t start = 0;
    for (;;) {
        std::size_t const slash = path.find('/', start);
        std::size_t const end = slash == std::string::npos ? path.size() : slash;
        std::string const name = path.substr(start, end - start);
        where.prefix = path.substr(0, end);
        if (name.empty() || name == "." || name == "..") return where.err = EINVAL, resolve_status::failed;
        int fd = retry_open(cur.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
            if (::mkdirat(cur.get(), name.c_str(), 0755) == 0) {
                if (created) created->push_back(where.prefix);
            } else if (errno != EEXIST) {
                return where.err = errno, resolve_status::failed;
            }
            fd = retry_open(cur.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            int const e = errno;
            if (e == ENOENT) return resolve_status::missing;
            if (e == ENOTDIR || e == ELOOP) {
                resolve_status const st = classify_not_dir(cur.get(), name.c_str(), where.err);
                if (st == resolve_status::failed && where.err == 0) where.err = e;
                return st;
            }
            return where.err = e, resolve_status::failed;
        }
        cur.reset(fd);
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    where.prefix.clear();
    out = std::move(cur);
    return resolve_status::ok;
}

OCISTORE_DECL int open_dir_fd(int dirfd, char const* name) noexcept
{
    return safe_fs_impl::retry_open(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

OCISTORE_DECL std::vector<std::string> list_dir(int dirfd, error_code& ec)
{
    ec.clear();
    std::vector<std::string> names;
    int const fd = safe_fs_impl::retry_open(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        ec = errno_code(errno);
        return names;
    }
    ::DIR* d = ::fdopendir(fd);
    if (!d) {
        ec = errno_code(errno);
        ::close(fd);
        return names;
    }
    std::unique_ptr<::DIR, int (*)(::DIR*)> guard(d, ::closedir);
    for (;;) {
        errno = 0;
        ::dirent* e = ::readdir(d);
        if (!e) {
            if (errno != 0) ec = errno_code(errno);
            break;
        }
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        names.emplace_back(e->d_name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

namespace safe_fs_impl {

inline void remove_entry_at(int dirfd, std::string const& name, std::size_t depth, error_code& ec);

inline void clear_dir_at(int dirfd, std::size_t depth, error_code& ec)
{
    if (depth > 4 * max_depth) {
        ec = errno_code(ELOOP);
        return;
    }
    std::vector<std::string> const names = list_dir(dirfd, ec);
    if (ec) return;
    for (auto const& n : names) {
        remove_entry_at(dirfd, n, depth + 1, ec);
        if (ec) return;
    }
}

inline void remove_entry_at(int dirfd, std::string const& name, std::size_t depth, error_code& ec)
{
    ec.clear();
    struct ::stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) ec = errno_code(errno);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) ec = errno_code(errno);
        return;
    }
    if ((st.st_mode & 0700) != 0700) ::fchmodat(dirfd, name.c_str(), 0700, AT_SYMLINK_NOFOLLOW); // ours to delete
    unique_fd sub(retry_open(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
        if (errno != ENOENT) ec = errno_code(errno);
        return;
    }
    clear_dir_at(sub.get(), depth, ec);
    if (ec) return;
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) ec = errno_code(errno);
}

} // namespace safe_fs_impl

OCISTORE_DECL void remove_entry(int dirfd, std::string const& name, error_code& ec)
{
    safe_fs_impl::remove_entry_at(dirfd, name, 0, ec);
}

OCISTORE_DECL void clear_dir(int dirfd, error_code& ec)
{
    ec.clear();
    safe_fs_impl::clear_dir_at(dirfd, 0, ec);
}

OCISTORE_DECL void remove_tree(std::string const& path, error_code& ec)
{
    ec.clear();
    if (path.empty()) return;
    std::string parent = ".", name = path;
    std::size_t const slash = path.find_last_of('/');
    if (slash != std::string::npos) {
        parent = slash == 0 ? "/" : path.substr(0, slash);
        name = path.substr(slash + 1);
    }
    if (name.empty() || name == "." || name == "..") {
        ec = errno_code(EINVAL);
        return;
    }
    unique_fd dir(safe_fs_impl::retry_open(AT_FDCWD, parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        if (errno != ENOENT) ec = errno_code(errno);
        return;
    }
    remove_entry(dir.get(), name, ec);
}

OCISTORE_DECL std::string proc_path(int dirfd, std::string_view name)
{
    std::string p = "/proc/self/fd/" + std::to_string(dirfd);
    if (!name.empty()) {
        p.push_back('/');
        p.append(name);
    }
    return p;
}

OCISTORE_DECL std::vector<xattr> list_xattrs(node_ref node, error_code& ec)
{
    ec.clear();
    std::vector<xattr> out;
    std::string const path = node.fd >= 0 ? std::string() : proc_path(node.dirfd, node.name);
    auto list = [&](char* buf, std::size_t size) {
        return node.fd >= 0 ? ::flistxattr(node.fd, buf, size) : ::llistxattr(path.c_str(), buf, size);
    };
    auto get = [&](char const* name, void* buf, std::size_t size) {
        return node.fd >= 0 ? ::fgetxattr(node.fd, name, buf, size) : ::lgetxattr(path.c_str(), name, buf, size);
    };
    std::string names;
    for (int attempt = 0;; ++attempt) {
        ssize_t n = list(nullptr, 0);
        if (n < 0) {
            if (errno == ENOTSUP || errno == EOPNOTSUPP) return out;
            ec = errno_code(errno);
            return out;
        }
        if (n == 0) return out;
        names.resize(static_cast<std::size_t>(n));
        n = list(names.data(), names.size());
        if (n >= 0) {
            names.resize(static_cast<std::size_t>(n));
            break;
        }
        if (errno != ERANGE || attempt > 8) {
            ec = errno_code(errno);
            return out;
        }
    }
    for (std::size_t pos = 0; pos < names.size();) {
        std::size_t const end = names.find('\0', pos);
        std::string name = names.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        pos = end == std::string::npos ? names.size() : end + 1;
        if (name.empty()) continue;
        std::string value;
        for (int attempt = 0;; ++attempt) {
            ssize_t n = get(name.c_str(), nullptr, 0);
            if (n < 0) {
                if (errno == ENODATA) break; // removed meanwhile
                ec = errno_code(errno);
                return out;
            }
            value.resize(static_cast<std::size_t>(n));
            n = get(name.c_str(), value.data(), value.size());
            if (n >= 0) {
                value.resize(static_cast<std::size_t>(n));
                out.push_back({std::move(name), std::move(value)});
                break;
            }
            if (errno != ERANGE || attempt > 8) {
                ec = errno_code(errno);
                return out;
            }
        }
    }
    return safe_fs_impl::sorted(std::move(out));
}

OCISTORE_DECL int set_xattr(node_ref node, std::string const& name, std::string const& value) noexcept
{
    int r;
    if (node.fd >= 0) {
        r = ::fsetxattr(node.fd, name.c_str(), value.data(), value.size(), 0);
    } else {
        std::string const path = proc_path(node.dirfd, node.name);
        r = ::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0);
    }
    return r == 0 ? 0 : errno;
}

OCISTORE_DECL int remove_xattr(node_ref node, std::string const& name) noexcept
{
    int r;
    if (node.fd >= 0) {
        r = ::fremovexattr(node.fd, name.c_str());
    } else {
        std::string const path = proc_path(node.dirfd, node.name);
        r = ::lremovexattr(path.c_str(), name.c_str());
    }
    return r == 0 || errno == ENODATA ? 0 : errno;
}

namespace safe_fs_impl {

/// Copies [from, to) with copy_file_range, falling back to pread/pwrite; false with `ec` set on failure.
inline bool copy_range(int src, int dst, std::uint64_t from, std::uint64_t to, bool& use_cfr, error_code& ec)
{
    while (from < to) {
        std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(to - from, 1u << 30));
        if (use_cfr) {
            ::off64_t in = static_cast<::off64_t>(from), out = static_cast<::off64_t>(from);
            ssize_t const n = ::copy_file_range(src, &in, dst, &out, want, 0);
            if (n > 0) {
                from += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n == 0) return ec = errno_code(EIO), false; // the source shrank
            if (errno == EINTR) continue;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM)
                return ec = errno_code(errno), false;
            use_cfr = false;
        }
        static thread_local std::unique_ptr<char[]> buffer(new char[1 << 20]);
        std::size_t const chunk = std::min<std::size_t>(want, 1 << 20);
        ssize_t const n = ::pread(src, buffer.get(), chunk, static_cast<::off_t>(from));
        if (n < 0) {
            if (errno == EINTR) continue;
            return ec = errno_code(errno), false;
        }
        if (n == 0) return ec = errno_code(EIO), false;
        for (ssize_t done = 0; done < n;) {
            ssize_t const w = ::pwrite(dst, buffer.get() + done, static_cast<std::size_t>(n - done),
                                       static_cast<::off_t>(from + static_cast<std::uint64_t>(done)));
            if (w < 0) {
                if (errno == EINTR) continue;
                return ec = errno_code(errno), false;
            }
            done += w;
        }
        from += static_cast<std::uint64_t>(n);
    }
    return true;
}

} // namespace safe_fs_impl

OCISTORE_DECL void copy_file_data(int src, int dst, std::uint64_t size, error_code& ec)
{
    ec.clear();
    if (size == 0) return;
    if (::ioctl(dst, FICLONE, src) == 0) return;
    bool use_cfr = true;
    std::uint64_t pos = 0;
    while (pos < size) {
        ::off_t const data = ::lseek(src, static_cast<::off_t>(pos), SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) break; // only a hole is left
            // No SEEK_DATA support: copy everything.
            if (!safe_fs_impl::copy_range(src, dst, pos, size, use_cfr, ec)) return;
            pos = size;
            break;
        }
        ::off_t hole = ::lseek(src, data, SEEK_HOLE);
        if (hole < 0) hole = static_cast<::off_t>(size);
        std::uint64_t const from = static_cast<std::uint64_t>(data);
        std::uint64_t const to = std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), size);
        if (from >= size) break;
        if (!safe_fs_impl::copy_range(src, dst, from, to, use_cfr, ec)) return;
        pos = to;
    }
    if (::ftruncate(dst, static_cast<::off_t>(size)) != 0) ec = errno_code(errno);
}

OCISTORE_DECL std::string read_link(int dirfd, char const* name, error_code& ec)
{
    ec.clear();
    std::string target(256, '\0');
    for (;;) {
        ssize_t const n = ::readlinkat(dirfd, name, target.data(), target.size());
        if (n < 0) {
            ec = errno_code(errno);
            return {};
        }
        if (static_cast<std::size_t>(n) < target.size()) {
            target.resize(static_cast<std::size_t>(n));
            return target;
        }
        if (target.size() > 65536) {
            ec = errno_code(ENAMETOOLONG);
            return {};
        }
        target.resize(target.size() * 4);
    }
}

OCISTORE_DECL bool rename_noreplace(int from_dir, std::string const& from, int to_dir, std::string const& to,
                                    error_code& ec)
{
    ec.clear();
    if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) return true;
    if (errno == EEXIST) return false;
    if (errno != EINVAL && errno != ENOSYS) {
        ec = errno_code(errno);
        return false;
    }
    // No RENAME_NOREPLACE here: check, then rename (a directory never replaces a non-empty one).
    struct ::stat st;
    if (::fstatat(to_dir, to.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return false;
    if (::renameat(from_dir, from.c_str(), to_dir, to.c_str()) == 0) return true;
    if (errno == EEXIST || errno == ENOTEMPTY) return false;
    ec = errno_code(errno);
    return false;
}

OCISTORE_DECL void rename_exchange(int a_dir, std::string const& a, int b_dir, std::string const& b, error_code& ec)
{
    ec.clear();
    if (::renameat2(a_dir, a.c_str(), b_dir, b.c_str(), RENAME_EXCHANGE) == 0) return;
    if (errno != EINVAL && errno != ENOSYS) {
        ec = errno_code(errno);
        return;
    }
    std::string const aside = a + ".old";
    if (::renameat(b_dir, b.c_str(), a_dir, aside.c_str()) != 0 ||
        ::renameat(a_dir, a.c_str(), b_dir, b.c_str()) != 0 || ::renameat(a_dir, aside.c_str(), a_dir, a.c_str()) != 0)
        ec = errno_code(errno);
}

} // namespace ocistore::detail::safe_fs
