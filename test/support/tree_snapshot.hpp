// Test support: a snapshot of a directory tree (every path's type, mode, owner, size, content
// digest, link target, device numbers, xattrs, times and hardlink group), taken without
// following links, and a readable difference between two snapshots.
#pragma once

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace ocistore_test {

/// What a snapshot records of one path.
struct tree_node {
    char type = '?';          ///< 'f' regular, 'd' directory, 'l' symlink, 'c'/'b' device, 'p' fifo, 's' socket
    std::uint32_t mode = 0;   ///< permission bits, mask 07777
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint64_t size = 0;   ///< regular files
    std::string content;      ///< sha256 of a regular file's content
    std::string link;         ///< symlink target
    std::uint32_t major = 0;  ///< devices
    std::uint32_t minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs; ///< sorted by name
    std::int64_t mtime = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint64_t nlink = 0;
    std::string link_group;   ///< non-directories with nlink > 1: the smallest path sharing the inode
    std::uint64_t blocks = 0; ///< st_blocks, for sparse checks
};

using tree_snapshot = std::map<std::string, tree_node>;

namespace tree_snapshot_detail {

inline std::vector<std::pair<std::string, std::string>> xattrs_of(std::string const& path)
{
    std::vector<std::pair<std::string, std::string>> out;
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n <= 0) return out;
    std::string names(static_cast<std::size_t>(n), '\0');
    n = ::llistxattr(path.c_str(), names.data(), names.size());
    if (n <= 0) return out;
    names.resize(static_cast<std::size_t>(n));
    for (std::size_t pos = 0; pos < names.size();) {
        std::size_t const end = names.find('\0', pos);
        std::string const name = names.substr(pos, end - pos);
        pos = end + 1;
        ssize_t const vn = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
        std::string value(vn > 0 ? static_cast<std::size_t>(vn) : 0, '\0');
        if (vn > 0) ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
        out.emplace_back(name, value);
    }
    std::sort(out.begin(), out.end());
    return out;
}

inline std::string read_file(std::string const& path)
{
    int const fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("tree_snapshot: cannot open " + path);
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t const n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

inline void walk(std::string const& root, std::string const& rel, tree_snapshot& out,
                 std::map<std::pair<dev_t, ino_t>, std::vector<std::string>>& inodes)
{
    std::string const path = rel == "." ? root : root + "/" + rel;
    struct ::stat st;
    if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("tree_snapshot: cannot lstat " + path);
    tree_node n;
    n.mode = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.mtime = st.st_mtim.tv_sec;
    n.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
    n.nlink = st.st_nlink;
    n.blocks = static_cast<std::uint64_t>(st.st_blocks);
    n.xattrs = xattrs_of(path);
    switch (st.st_mode & S_IFMT) {
    case S_IFREG:
        n.type = 'f';
        n.size = static_cast<std::uint64_t>(st.st_size);
        n.content = ocistore::digest_of<ocistore::sha256_hasher>(read_file(path)).str();
        break;
    case S_IFDIR: n.type = 'd'; break;
    case S_IFLNK: {
        n.type = 'l';
        std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
        ssize_t const len = ::readlink(path.c_str(), target.data(), target.size());
        target.resize(len > 0 ? static_cast<std::size_t>(len) : 0);
        n.link = target;
        n.mode = 0;
        break;
    }
    case S_IFCHR:
    case S_IFBLK:
        n.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
        n.major = ::major(st.st_rdev);
        n.minor = ::minor(st.st_rdev);
        break;
    case S_IFIFO: n.type = 'p'; break;
    default: n.type = 's'; break;
    }
    if (n.type != 'd' && st.st_nlink > 1) inodes[{st.st_dev, st.st_ino}].push_back(rel);
    out[rel] = n;
    if (n.type != 'd') return;
    DIR* d = ::opendir(path.c_str());
    if (!d) throw std::runtime_error("tree_snapshot: cannot open directory " + path);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string const name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
    for (auto const& name : names) walk(root, rel == "." ? name : rel + "/" + name, out, inodes);
}

} // namespace tree_snapshot_detail

/// Snapshots the tree at `root` (the root itself is the path ".").
inline tree_snapshot snapshot_tree(std::filesystem::path const& root)
{
    tree_snapshot out;
    std::map<std::pair<dev_t, ino_t>, std::vector<std::string>> inodes;
    tree_snapshot_detail::walk(root.string(), ".", out, inodes);
    for (auto& [key, paths] : inodes) {
        std::string const first = *std::min_element(paths.begin(), paths.end());
        for (auto const& p : paths) out[p].link_group = first;
    }
    return out;
}

/// Which fields diff_trees() compares.
struct tree_compare {
    bool times = true;          ///< mtime of non-directories
    bool dir_times = true;      ///< mtime of directories
    bool nsec = true;           ///< nanoseconds of times
    bool owners = true;
    bool xattrs = true;
    bool nlink = true;
    std::vector<std::string> ignore; ///< paths left out (with everything below them)
};

/// Every difference between `a` and `b`, one per line; empty when they agree.
inline std::string diff_trees(tree_snapshot const& a, tree_snapshot const& b, tree_compare const& how = {})
{
    auto ignored = [&](std::string const& p) {
        for (auto const& i : how.ignore)
            if (p == i || (p.size() > i.size() && p.compare(0, i.size(), i) == 0 && p[i.size()] == '/')) return true;
        return false;
    };
    std::string out;
    auto field = [&](std::string const& p, char const* name, auto const& x, auto const& y) {
        if (!(x == y)) out += p + ": " + name + " " + std::to_string(x) + " != " + std::to_string(y) + "\n";
    };
    auto sfield = [&](std::string const& p, char const* name, std::string const& x, std::string const& y) {
        if (x != y) out += p + ": " + name + " '" + x + "' != '" + y + "'\n";
    };
    for (auto const& [p, x] : a) {
        if (ignored(p)) continue;
        auto it = b.find(p);
        if (it == b.end()) {
            out += p + ": only in the first tree\n";
            continue;
        }
        auto const& y = it->second;
        if (x.type != y.type) {
            out += p + ": type " + std::string(1, x.type) + " != " + std::string(1, y.type) + "\n";
            continue;
        }
        field(p, "mode", x.mode, y.mode);
        if (how.owners) {
            field(p, "uid", x.uid, y.uid);
            field(p, "gid", x.gid, y.gid);
        }
        field(p, "size", x.size, y.size);
        sfield(p, "content", x.content, y.content);
        sfield(p, "link", x.link, y.link);
        field(p, "major", x.major, y.major);
        field(p, "minor", x.minor, y.minor);
        if (how.xattrs && x.xattrs != y.xattrs) {
            auto show = [](auto const& v) {
                std::string s;
                for (auto const& [k, val] : v) s += k + "(" + std::to_string(val.size()) + ") ";
                return s;
            };
            out += p + ": xattrs [" + show(x.xattrs) + "] != [" + show(y.xattrs) + "]\n";
        }
        if (x.type == 'd' ? how.dir_times : how.times) {
            field(p, "mtime", x.mtime, y.mtime);
            if (how.nsec) field(p, "mtime_nsec", x.mtime_nsec, y.mtime_nsec);
        }
        if (how.nlink && x.type != 'd') field(p, "nlink", x.nlink, y.nlink);
        sfield(p, "link_group", x.link_group, y.link_group);
    }
    for (auto const& [p, y] : b)
        if (!ignored(p) && !a.count(p)) out += p + ": only in the second tree\n";
    return out;
}

/// The paths of a snapshot, for concise assertions.
inline std::vector<std::string> paths_of(tree_snapshot const& s)
{
    std::vector<std::string> out;
    for (auto const& [p, n] : s) out.push_back(p);
    return out;
}

} // namespace ocistore_test
