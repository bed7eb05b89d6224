// Test support for EROFS images: layer images from tar bytes, layers described entry by entry
// with the tree they must produce, images seen as trees through erofs_image_reader,
// pseudo-random content, shell commands (fsck.erofs, dump.erofs, mount), and kernel loop
// mounts undone by a guard.
#pragma once

#include <ocistore/atomic_file.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/tar_reader.hpp>

#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/tree_snapshot.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ocistore_test {

/// The sha256 digest string of `s`.
inline std::string sha(std::string const& s) { return ocistore::digest_of<ocistore::sha256_hasher>(s).str(); }

/// `n` deterministic pseudo-random bytes.
inline std::string noise(std::size_t n, std::uint64_t seed)
{
    std::string s(n, '\0');
    for (auto& c : s) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c = static_cast<char>(seed >> 56);
    }
    return s;
}

/// The bytes of file `p`.
inline std::string read_all(std::filesystem::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Replaces file `p` with `bytes`.
inline void write_all(std::filesystem::path const& p, std::string const& bytes)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) throw std::runtime_error("write_all: cannot write " + p.string());
}

/// Runs a shell command; returns its exit status and output (stdout and stderr).
inline std::pair<int, std::string> run(std::string const& cmd)
{
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) throw std::runtime_error("popen failed: " + cmd);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

/// Feeds every entry of `tar` to an erofs_layer_writer over `image` (published through atomic_file).
inline ocistore::layer_data_map build_layer(std::string const& tar, std::filesystem::path const& image,
                                            ocistore::erofs_layer_options options = {},
                                            std::vector<ocistore::build_warning>* warnings = nullptr,
                                            std::size_t chunk = 100000)
{
    ocistore::atomic_file file(image, {.mode = 0644, .durable = false});
    ocistore::erofs_layer_writer w(file.native_handle(), std::move(options));
    memory_source src(tar, chunk);
    ocistore::basic_tar_reader<memory_source> reader(src);
    ocistore::tar_entry e;
    while (reader.next(e)) w.add_entry(e, reader);
    auto map = w.finish();
    if (warnings) *warnings = w.warnings();
    file.commit();
    return map;
}

/// A tar header of type `type` ('0' file, '3'/'4' device, ...) with permission bits `mode`.
inline tar_header hdr(std::uint32_t mode = 0644, char type = '0')
{
    tar_header h;
    h.mode = mode;
    h.type = type;
    return h;
}

/// A layer written entry by entry, and the tree (tree_snapshot form) it must produce.
struct layer_spec {
    tar_writer tar;
    tree_snapshot expect;

    /// Expects a node at `path` with tar_header's default owner, mtime and one link.
    void node(std::string const& path, char type, std::uint32_t mode, std::uint64_t size = 0,
              std::string const& content = {})
    {
        tree_node n;
        n.type = type;
        n.mode = type == 'l' ? 0 : mode;
        n.mtime = tar_header{}.mtime;
        n.nlink = 1;
        n.size = size;
        if (type == 'f') n.content = sha(content);
        expect[path] = n;
    }
    void file(std::string const& path, std::string const& content, std::uint32_t mode = 0644)
    {
        tar.file(path, content, hdr(mode));
        node(path, 'f', mode, content.size(), content);
    }
    void dir(std::string const& path, std::uint32_t mode = 0755)
    {
        tar.dir(path + "/", mode);
        node(path, 'd', mode);
    }
    /// A character ('3') or block ('4') device, mode 0666.
    void device(std::string const& path, char type, std::uint32_t major, std::uint32_t minor)
    {
        tar_header h = hdr(0666, type);
        h.name = path;
        h.devmajor = major;
        h.devminor = minor;
        tar.header(h);
        node(path, type == '3' ? 'c' : 'b', 0666);
        expect[path].major = major;
        expect[path].minor = minor;
    }

    // Groups of entries that cover one awkward case each.

    /** "etc" holding "etc/conf" (mode 0700, xattrs `conf_xattrs`) and "etc/passwd" under two
        more names, "etc/passwd.link" and "etc/conf/another". */
    void hardlinks(std::vector<std::pair<std::string, std::string>> conf_xattrs)
    {
        dir("etc");
        std::vector<std::pair<std::string, std::string>> pax;
        for (auto const& [name, value] : conf_xattrs) pax.emplace_back("SCHILY.xattr." + name, value);
        tar.pax(pax);
        tar.dir("etc/conf/", 0700);
        node("etc/conf", 'd', 0700);
        std::sort(conf_xattrs.begin(), conf_xattrs.end());
        expect["etc/conf"].xattrs = std::move(conf_xattrs);
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        tar.hardlink("etc/passwd.link", "etc/passwd");
        tar.hardlink("etc/conf/another", "etc/passwd");
        expect["etc/passwd.link"] = expect["etc/conf/another"] = expect["etc/passwd"];
        for (auto p : {"etc/passwd", "etc/passwd.link", "etc/conf/another"}) {
            expect[p].nlink = 3;
            expect[p].link_group = "etc/conf/another";
        }
    }
    /// "dev": character and block devices (one with a 12-bit major and 20-bit minor) and a fifo.
    void devices()
    {
        dir("dev");
        device("dev/null", '3', 1, 3);
        device("dev/sda", '4', 8, 0);
        device("dev/wide", '3', 300, 70000);
        tar.fifo("dev/fifo");
        node("dev/fifo", 'p', 0644);
    }
    /// "long": a file with a 255-byte name, symlinks with 300- and 4095-byte targets.
    void long_names()
    {
        dir("long");
        std::string const name255(255, 'n');
        tar.pax({{"path", "long/" + name255}});
        tar.file("placeholder", "long name", hdr());
        node("long/" + name255, 'f', 0644, 9, "long name");
        std::string const t300(300, 't'), t4095(4095, 'u');
        for (auto [p, t] : {std::pair{"long/l300", &t300}, std::pair{"long/l4095", &t4095}}) {
            tar.pax({{"linkpath", *t}});
            tar.symlink(p, "x");
            node(p, 'l', 0);
            expect[p].link = *t;
        }
    }
    /// "owners": ids over 65535, an mtime with nanoseconds, an mtime other than the default.
    void owners()
    {
        dir("owners");
        tar.pax({{"uid", "100000"}, {"gid", "70000"}});
        file("owners/big-ids", "ids");
        expect["owners/big-ids"].uid = 100000;
        expect["owners/big-ids"].gid = 70000;
        tar.pax({{"mtime", "1700000000.123456789"}});
        file("owners/nsec", "nsec");
        expect["owners/nsec"].mtime_nsec = 123456789;
        tar_header old = hdr();
        old.mtime = 1600000000;
        tar.file("owners/old", "old", old);
        node("owners/old", 'f', 0644, 3, "old");
        expect["owners/old"].mtime = 1600000000;
    }
    /// "implicit/a/b/file", whose directories no entry describes.
    void implicit_dirs()
    {
        tar.file("implicit/a/b/file", "deep", hdr());
        node("implicit", 'd', 0755);
        node("implicit/a", 'd', 0755);
        node("implicit/a/b", 'd', 0755);
        node("implicit/a/b/file", 'f', 0644, 4, "deep");
    }
    /// "wh": a whiteout ("wh/gone", a 0:0 character device) and an opaque directory "wh/opq".
    void whiteouts()
    {
        dir("wh");
        tar.file("wh/.wh.gone", "", hdr(0));
        node("wh/gone", 'c', 0);
        dir("wh/opq");
        tar.file("wh/opq/.wh..wh..opq", "", hdr(0));
        expect["wh/opq"].xattrs = {{"trusted.overlay.opaque", "y"}};
        file("wh/opq/keep", "kept");
    }
};

/** What `r` holds, in tree_snapshot form ("." = the root), walked by erofs_image_reader:
    `content(inode)` gives a regular file's bytes; `inodes`, when given, receives each path's inode. */
template <class Content>
tree_snapshot snapshot_erofs(ocistore::erofs_image_reader const& r, Content&& content,
                             std::map<std::string, ocistore::erofs_inode_info>* inodes = nullptr)
{
    namespace erofs = ocistore::erofs;
    tree_snapshot out;
    std::map<std::uint64_t, std::vector<std::string>> groups;
    r.walk([&](std::string_view path, ocistore::erofs_inode_info const& n, ocistore::error_code&) {
        std::string const p = path.empty() ? "." : std::string(path);
        tree_node t;
        t.mode = n.mode & 07777;
        t.uid = n.uid;
        t.gid = n.gid;
        t.mtime = n.mtime;
        t.mtime_nsec = n.mtime_nsec;
        t.nlink = n.nlink;
        t.xattrs = n.xattrs;
        std::sort(t.xattrs.begin(), t.xattrs.end());
        switch (n.type()) {
        case erofs::s_ifreg:
            t.type = 'f';
            t.size = n.size;
            t.content = sha(content(n));
            break;
        case erofs::s_ifdir: t.type = 'd'; break;
        case erofs::s_iflnk:
            t.type = 'l';
            t.mode = 0;
            t.link = r.read_link(n);
            break;
        case erofs::s_ifchr:
        case erofs::s_ifblk:
            t.type = n.type() == erofs::s_ifchr ? 'c' : 'b';
            t.major = n.rdev_major();
            t.minor = n.rdev_minor();
            break;
        case erofs::s_ififo: t.type = 'p'; break;
        default: t.type = 's'; break;
        }
        if (t.type != 'd' && n.nlink > 1) groups[n.nid].push_back(p);
        out[p] = t;
        if (inodes) (*inodes)[p] = n;
    });
    for (auto const& [nid, paths] : groups)
        for (auto const& p : paths) out[p].link_group = *std::min_element(paths.begin(), paths.end());
    return out;
}

/// Whether the kernel mount checks can run at all: root and loop devices.
inline bool loop_mount_possible() { return ::geteuid() == 0 && std::filesystem::exists("/dev/loop-control"); }

/// A read-only EROFS loop mount of an image, undone on destruction.
struct mount_guard {
    std::string dir;
    bool mounted = false;

    /// Mounts `image` on `dir` (`mount -t erofs -o loop,ro`); returns the status and output.
    std::pair<int, std::string> mount(std::filesystem::path const& image)
    {
        auto r = run("mount -t erofs -o loop,ro " + image.string() + " " + dir);
        mounted = r.first == 0;
        return r;
    }
    ~mount_guard()
    {
        if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

/// Loop-mounts `image` on `guard.dir` (created); "" when mounted, else why it cannot be.
inline std::string mount_image(mount_guard& guard, std::filesystem::path const& image)
{
    if (!loop_mount_possible()) return "not root or no loop devices";
    std::filesystem::create_directories(guard.dir);
    auto [rc, out] = guard.mount(image);
    return rc == 0 ? std::string() : "mount -t erofs failed: " + out;
}

/** The differences between `expect` and the tree that fsck.erofs --extract (erofs-utils 1.5)
    wrote at `extracted`, leaving out what that extraction loses: xattrs, hardlinks (each name
    becomes a copy) and the setuid and setgid bits of regular files (chown after chmod clears them). */
inline std::string diff_extracted(tree_snapshot expect, std::filesystem::path const& extracted)
{
    tree_compare how;
    how.xattrs = false;
    how.nlink = false;
    for (auto& [path, n] : expect) {
        n.link_group.clear();
        if (n.type == 'f') n.mode &= ~06000u;
    }
    return diff_trees(expect, snapshot_tree(extracted), how);
}

} // namespace ocistore_test
