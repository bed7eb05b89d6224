// Non-template bodies for ocistore/erofs/layer_writer.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/erofs/layer_writer.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <span>
#include <string_view>
#include <utility>

#include <unistd.h>

namespace ocistore {
namespace detail::erofs_writer_impl {

using namespace ocistore::erofs;

inline constexpr std::uint32_t no_node = std::numeric_limits<std::uint32_t>::max();

/// One inode of the layer; directories hold their children by name.
struct node {
    std::uint16_t mode = 0;       ///< type bits | permission bits
    std::uint32_t uid = 0, gid = 0;
    std::int64_t mtime = 0;
    std::uint32_t mtime_nsec = 0;
    bool implicit = false;        ///< a directory no entry described: metadata is filled in at finish
    bool opaque = false;          ///< `.wh..wh..opq` seen in this directory
    std::uint64_t size = 0;       ///< regular files
    std::uint32_t start_block = null_addr;
    std::uint32_t rdev = 0;
    std::string target;           ///< symlinks
    std::vector<tar_xattr> xattrs;
    std::map<std::string, std::uint32_t> children;

    bool is_dir() const noexcept { return (mode & s_ifmt) == s_ifdir; }
};

/// What finish() computes per inode written.
struct placed {
    std::uint32_t node = 0;
    std::uint32_t parent = 0;        ///< directories: the parent directory's node
    std::uint32_t nlink = 0;
    bool compact = false;
    data_layout layout = data_layout::flat_plain;
    std::uint64_t size = 0;          ///< i_size
    std::uint32_t ibody = 0;         ///< xattr ibody bytes
    std::uint32_t tail = 0;          ///< inline tail bytes
    std::uint32_t blocks = 0;        ///< full blocks in the trailing area (dirs, symlinks)
    std::uint32_t start_block = null_addr;
    std::uint64_t offset = 0;        ///< byte offset in the metadata area
    std::vector<std::pair<std::uint8_t, std::pair<std::string, std::string>>> xattrs; ///< index, suffix, value
    /// Directories: entries sorted by name ("." and ".." included) and where each block starts.
    std::vector<std::pair<std::string_view, std::uint32_t>> dirents;
    std::vector<std::size_t> block_starts;
};

inline void errno_fail(error_code& ec, std::string* why, int err, std::string const& what)
{
    ec = error_code(err, std::system_category());
    if (why) *why = what + ": " + ec.message();
}

/// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
inline bool pwrite_all(int fd, std::span<std::byte const> bytes, std::uint64_t offset, error_code& ec, std::string* why)
{
    while (!bytes.empty()) {
        ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            errno_fail(ec, why, errno, "writing the EROFS image at offset " + std::to_string(offset));
            return false;
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// Sequential buffered writer: zero-fills gaps, flushes whole chunks with pwrite.
class seq_writer {
public:
    seq_writer(int fd, std::uint64_t start) : fd_(fd), base_(start) {}
    /// Places `bytes` at absolute `offset` (>= everything placed before).
    bool put(std::uint64_t offset, std::span<std::byte const> bytes, error_code& ec, std::string* why)
    {
        std::uint64_t end = base_ + buf_.size();
        if (offset > end) buf_.resize(buf_.size() + static_cast<std::size_t>(offset - end), std::byte{0});
        buf_.insert(buf_.end(), bytes.begin(), bytes.end());
        return buf_.size() < (1u << 20) || flush(ec, why);
    }
    /// Zero-fills up to `offset`.
    bool pad_to(std::uint64_t offset, error_code& ec, std::string* why) { return put(offset, {}, ec, why); }
    bool flush(error_code& ec, std::string* why)
    {
        if (!pwrite_all(fd_, buf_, base_, ec, why)) return false;
        base_ += buf_.size();
        buf_.clear();
        return true;
    }

private:
    int fd_;
    std::uint64_t base_;
    std::vector<std::byte> buf_;
};

inline file_type type_of(std::uint16_t mode) noexcept
{
    switch (mode & s_ifmt) {
    case s_ifreg: return file_type::regular;
    case s_ifdir: return file_type::directory;
    case s_ifchr: return file_type::char_device;
    case s_ifblk: return file_type::block_device;
    case s_ififo: return file_type::fifo;
    case s_ifsock: return file_type::socket;
    case s_iflnk: return file_type::symlink;
    default: return file_type::unknown;
    }
}

inline std::string quote_name(std::string_view s) { return "\"" + std::string(s) + "\""; }

/// 16 bytes from `seed` by two independent 64-bit mixes (FNV-1a fed through a splitmix finaliser).
inline std::array<std::byte, 16> uuid_from(std::vector<std::byte> const& seed)
{
    std::array<std::byte, 16> out{};
    if (seed.empty()) return out;
    auto mix = [&](std::uint64_t h) {
        for (std::byte b : seed) h = (h ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3ull;
        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebull;
        h ^= h >> 31;
        return h;
    };
    store_le64(out.data(), mix(0xcbf29ce484222325ull));
    store_le64(out.data() + 8, mix(0x84222325cbf29ce4ull));
    out[6] = (out[6] & std::byte{0x0f}) | std::byte{0x40}; // version 4 layout (no randomness implied)
    out[8] = (out[8] & std::byte{0x3f}) | std::byte{0x80}; // RFC 4122 variant
    return out;
}

} // namespace detail::erofs_writer_impl

struct erofs_layer_writer::state {
    using node = detail::erofs_writer_impl::node;

    int fd = -1;
    erofs_layer_options options;
    std::vector<node> nodes;        ///< nodes[0] is the root
    std::uint64_t data_block = 1;   ///< next free data block
    std::vector<std::byte> buffer;
    std::vector<build_warning> warnings;
    error_code failed;
    std::string failed_why;
    bool finished = false;

    bool fail(error_code& ec, std::string* why, error e, std::string msg)
    {
        detail::fail(ec, why, e, msg);
        failed = ec;
        failed_why = std::move(msg);
        return false;
    }
    bool fail_ec(error_code& ec, std::string* why, std::string msg)
    {
        failed = ec;
        failed_why = msg;
        if (why) *why = std::move(msg);
        return false;
    }

    /// Fills metadata common to every entry type; false on values EROFS cannot hold.
    bool set_meta(node& n, tar_entry const& e, std::uint16_t type, error_code& ec, std::string* why)
    {
        if (e.uid > 0xFFFFFFFFu || e.gid > 0xFFFFFFFFu)
            return fail(ec, why, error::unsupported_entry,
                        "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": uid " + std::to_string(e.uid) +
                            " / gid " + std::to_string(e.gid) + " does not fit EROFS's 32 bits");
        n.mode = static_cast<std::uint16_t>(type | (e.mode & 07777));
        n.uid = static_cast<std::uint32_t>(e.uid);
        n.gid = static_cast<std::uint32_t>(e.gid);
        n.mtime = e.mtime;
        n.mtime_nsec = e.mtime_nsec;
        n.xattrs.clear();
        for (auto const& x : e.xattrs) {
            auto name = erofs::split_xattr_name(x.name);
            if (!name || x.value.size() > 0xFFFF) {
                warnings.push_back({e.path,
                                    "xattr " + detail::erofs_writer_impl::quote_name(x.name) + " dropped: " +
                                        (name ? "value over 65535 bytes" : "EROFS has no name prefix for it"),
                                    make_error_code(error::unsupported_entry)});
                continue;
            }
            n.xattrs.push_back(x);
        }
        n.implicit = false;
        return true;
    }

    std::uint32_t new_node(node n)
    {
        nodes.push_back(std::move(n));
        return static_cast<std::uint32_t>(nodes.size() - 1);
    }

    /// Splits `path` into components, checking each.
    bool split(std::string_view path, std::vector<std::string_view>& parts, error_code& ec, std::string* why)
    {
        using detail::erofs_writer_impl::quote_name;
        parts.clear();
        std::size_t pos = 0;
        while (pos <= path.size()) {
            std::size_t slash = path.find('/', pos);
            if (slash == std::string_view::npos) slash = path.size();
            auto c = path.substr(pos, slash - pos);
            if (c.empty() || c == "." || c == "..")
                return fail(ec, why, error::unsafe_path,
                            "path " + quote_name(path) + ": component " + quote_name(c) + " is not a plain name");
            if (c.size() > erofs::max_name_length)
                return fail(ec, why, error::unsupported_entry,
                            "path " + quote_name(path) + ": a name of " + std::to_string(c.size()) +
                                " bytes exceeds EROFS's 255");
            parts.push_back(c);
            pos = slash + 1;
        }
        return true;
    }

    /// The directory holding the last component of `parts`, creating implicit parents.
    std::uint32_t parent_dir(std::string_view path, std::vector<std::string_view> const& parts, error_code& ec,
                             std::string* why)
    {
        std::uint32_t dir = 0;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            auto& kids = nodes[dir].children;
            auto it = kids.find(std::string(parts[i]));
            if (it == kids.end()) {
                node d;
                d.mode = static_cast<std::uint16_t>(erofs::s_ifdir | 0755);
                d.implicit = true;
                std::uint32_t id = new_node(std::move(d));
                nodes[dir].children.emplace(std::string(parts[i]), id);
                dir = id;
            } else if (!nodes[it->second].is_dir()) {
                fail(ec, why, error::invalid_archive,
                     "entry " + detail::erofs_writer_impl::quote_name(path) + ": parent " +
                         detail::erofs_writer_impl::quote_name(std::string_view(path.data(), static_cast<std::size_t>(
                                                                                             parts[i].end() - path.data()))) +
                         " is not a directory");
                return detail::erofs_writer_impl::no_node;
            } else {
                dir = it->second;
            }
        }
        return dir;
    }

    /// The node at `path` (no creation), or no_node.
    std::uint32_t lookup(std::string_view path)
    {
        if (path == "." || path.empty()) return 0;
        std::uint32_t cur = 0;
        std::size_t pos = 0;
        while (pos <= path.size()) {
            std::size_t slash = path.find('/', pos);
            if (slash == std::string_view::npos) slash = path.size();
            if (!nodes[cur].is_dir()) return detail::erofs_writer_impl::no_node;
            auto& kids = nodes[cur].children;
            auto it = kids.find(std::string(path.substr(pos, slash - pos)));
            if (it == kids.end()) return detail::erofs_writer_impl::no_node;
            cur = it->second;
            pos = slash + 1;
        }
        return cur;
    }

    /// Streams `size` bytes of `data` to the next free blocks.
    bool write_data(tar_entry const& e, byte_source_ref data, node& n, error_code& ec, std::string* why)
    {
        using namespace erofs;
        std::uint64_t const blocks = (e.size + block_size - 1) / block_size;
        if (data_block + blocks > 0xFFFFFFF0ull)
            return fail(ec, why, error::limit_exceeded,
                        "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": the image would exceed 2^32 blocks");
        n.size = e.size;
        n.start_block = blocks ? static_cast<std::uint32_t>(data_block) : null_addr;
        if (buffer.empty()) buffer.resize(256 * 1024);
        std::uint64_t done = 0, offset = data_block * block_size;
        while (done < e.size) {
            std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), e.size - done));
            std::size_t got = data.read_some(std::span(buffer.data(), want), ec);
            if (ec) return fail_ec(ec, why, "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": reading data: " + ec.message());
            if (got == 0)
                return fail(ec, why, error::truncated,
                            "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": data ended after " +
                                std::to_string(done) + " of " + std::to_string(e.size) + " bytes");
            if (!detail::erofs_writer_impl::pwrite_all(fd, std::span<std::byte const>(buffer.data(), got), offset + done,
                                                       ec, why))
                return fail_ec(ec, why, why ? *why : ec.message());
            done += got;
        }
        data_block += blocks;
        return true;
    }

    void add(tar_entry const& e, byte_source_ref data, error_code& ec, std::string* why);
    layer_data_map finish(error_code& ec, std::string* why);
};

OCISTORE_DECL void erofs_layer_writer::state::add(tar_entry const& e, byte_source_ref data, error_code& ec,
                                                  std::string* why)
{
    using namespace erofs;
    using detail::erofs_writer_impl::quote_name;
    if (e.is_root()) {
        if (e.type != entry_type::directory) {
            fail(ec, why, error::invalid_archive, "entry \".\": the root is a " + std::string(to_string(e.type)) +
                                                      ", not a directory");
            return;
        }
        set_meta(nodes[0], e, s_ifdir, ec, why);
        return;
    }
    std::vector<std::string_view> parts;
    if (!split(e.path, parts, ec, why)) return;
    std::uint32_t dir = parent_dir(e.path, parts, ec, why);
    if (dir == detail::erofs_writer_impl::no_node) return;
    std::string name(parts.back());

    if (e.type != entry_type::directory && name.starts_with(".wh.") && name.size() > 4) {
        if (name == ".wh..wh..opq") {
            nodes[dir].opaque = true;
            return;
        }
        if (name.starts_with(".wh..wh.")) {
            warnings.push_back({e.path, "overlay metadata entry skipped", make_error_code(error::unsupported_entry)});
            return;
        }
        node w;
        if (!set_meta(w, e, s_ifchr, ec, why)) return;
        w.xattrs.clear();
        nodes[dir].children.insert_or_assign(name.substr(4), new_node(std::move(w)));
        return;
    }

    node n;
    switch (e.type) {
    case entry_type::directory: {
        auto it = nodes[dir].children.find(name);
        if (it != nodes[dir].children.end() && nodes[it->second].is_dir()) {
            set_meta(nodes[it->second], e, s_ifdir, ec, why);
            return;
        }
        if (!set_meta(n, e, s_ifdir, ec, why)) return;
        break;
    }
    case entry_type::regular:
        if (!set_meta(n, e, s_ifreg, ec, why) || !write_data(e, data, n, ec, why)) return;
        break;
    case entry_type::symlink:
        if (e.link_target.size() > 4095) {
            fail(ec, why, error::limit_exceeded,
                 "entry " + quote_name(e.path) + ": symlink target of " + std::to_string(e.link_target.size()) +
                     " bytes exceeds 4095");
            return;
        }
        if (!set_meta(n, e, s_iflnk, ec, why)) return;
        n.target = e.link_target;
        break;
    case entry_type::char_device:
    case entry_type::block_device:
        if (e.devmajor > 0xfff || e.devminor > 0xfffff) {
            fail(ec, why, error::unsupported_entry,
                 "entry " + quote_name(e.path) + ": device " + std::to_string(e.devmajor) + ":" +
                     std::to_string(e.devminor) + " does not fit Linux's 12-bit major / 20-bit minor");
            return;
        }
        if (!set_meta(n, e, e.type == entry_type::char_device ? s_ifchr : s_ifblk, ec, why)) return;
        n.rdev = encode_dev(e.devmajor, e.devminor);
        break;
    case entry_type::fifo:
        if (!set_meta(n, e, s_ififo, ec, why)) return;
        break;
    case entry_type::hardlink: {
        std::uint32_t target = lookup(e.link_target);
        if (target == detail::erofs_writer_impl::no_node) {
            fail(ec, why, error::invalid_archive,
                 "entry " + quote_name(e.path) + ": hardlink target " + quote_name(e.link_target) +
                     " is not an earlier entry of the layer");
            return;
        }
        if (nodes[target].is_dir()) {
            fail(ec, why, error::invalid_archive,
                 "entry " + quote_name(e.path) + ": hardlink target " + quote_name(e.link_target) + " is a directory");
            return;
        }
        nodes[dir].children.insert_or_assign(name, target);
        return;
    }
    }
    std::uint32_t id = new_node(std::move(n));
    nodes[dir].children.insert_or_assign(std::move(name), id);
}

OCISTORE_DECL layer_data_map erofs_layer_writer::state::finish(error_code& ec, std::string* why)
{
    using namespace erofs;
    using namespace detail::erofs_writer_impl;
    layer_data_map map;

    // 1. Reachable inodes, breadth first from the root; link counts; data map; parents.
    std::vector<placed> order;
    std::vector<std::uint32_t> slot(nodes.size(), no_node); // node → index in order
    std::deque<std::pair<std::uint32_t, std::string>> queue;
    order.push_back({});
    order[0].node = 0;
    order[0].parent = 0;
    slot[0] = 0;
    queue.emplace_back(0, std::string());
    while (!queue.empty()) {
        auto [dir, path] = std::move(queue.front());
        queue.pop_front();
        std::uint32_t subdirs = 0;
        for (auto const& [name, child] : nodes[dir].children) {
            std::string child_path = path.empty() ? name : path + "/" + name;
            if (slot[child] == no_node) {
                slot[child] = static_cast<std::uint32_t>(order.size());
                order.push_back({});
                order.back().node = child;
                order.back().parent = dir;
                if (nodes[child].is_dir()) queue.emplace_back(child, child_path);
            }
            if (nodes[child].is_dir()) ++subdirs;
            ++order[slot[child]].nlink;
            if ((nodes[child].mode & s_ifmt) == s_ifreg)
                map.files.emplace(std::move(child_path), file_extent{nodes[child].start_block, nodes[child].size});
        }
        order[slot[dir]].nlink = 2 + subdirs;
    }

    // 2. Build time: the most common timestamp of described inodes, so most inodes are compact.
    std::map<std::pair<std::int64_t, std::uint32_t>, std::uint64_t> times;
    for (auto const& p : order)
        if (!nodes[p.node].implicit) ++times[{nodes[p.node].mtime, nodes[p.node].mtime_nsec}];
    std::pair<std::int64_t, std::uint32_t> build{0, 0};
    std::uint64_t best = 0;
    for (auto const& [t, n] : times)
        if (n > best) best = n, build = t;
    for (auto const& p : order)
        if (nodes[p.node].implicit) nodes[p.node].mtime = build.first, nodes[p.node].mtime_nsec = build.second;

    // 3. Sizes and layouts.
    for (auto& p : order) {
        node& n = nodes[p.node];
        std::vector<tar_xattr> xs = n.xattrs;
        if (n.opaque) {
            auto it = std::find_if(xs.begin(), xs.end(), [](auto const& x) { return x.name == "trusted.overlay.opaque"; });
            if (it != xs.end()) it->value = "y";
            else xs.push_back({"trusted.overlay.opaque", "y"});
        }
        std::uint64_t ibody = 0;
        for (auto const& x : xs) {
            auto split_name = split_xattr_name(x.name);
            p.xattrs.push_back({split_name->index, {std::string(split_name->suffix), x.value}});
            ibody += xattr_entry_size(split_name->suffix.size(), x.value.size());
        }
        if (!p.xattrs.empty()) ibody += xattr_ibody_header_size;
        if (ibody > xattr_ibody_header_size + 4ull * 65534) {
            fail(ec, why, error::limit_exceeded, "an inode's xattrs take " + std::to_string(ibody) + " bytes, over EROFS's limit");
            return {};
        }
        p.ibody = static_cast<std::uint32_t>(ibody);

        switch (n.mode & s_ifmt) {
        case s_ifreg: p.size = n.size; p.start_block = n.start_block; break;
        case s_iflnk: p.size = n.target.size(); break;
        case s_ifdir: {
            p.dirents.emplace_back(".", p.node);
            p.dirents.emplace_back("..", p.parent);
            for (auto const& [name, child] : n.children) p.dirents.emplace_back(name, child);
            std::sort(p.dirents.begin(), p.dirents.end(),
                      [](auto const& a, auto const& b) { return a.first < b.first; });
            std::uint64_t used = 0, total = 0;
            for (std::size_t i = 0; i < p.dirents.size(); ++i) {
                std::uint64_t need = dirent_size + p.dirents[i].first.size();
                if (p.block_starts.empty() || used + need > block_size) {
                    if (!p.block_starts.empty()) total += block_size;
                    p.block_starts.push_back(i);
                    used = 0;
                }
                used += need;
            }
            p.size = total + used;
            break;
        }
        default: p.size = 0; break;
        }

        bool const tailable = (n.mode & s_ifmt) == s_ifdir || (n.mode & s_ifmt) == s_iflnk;
        std::uint32_t const head_compact = compact_inode_size + p.ibody;
        auto const& t = n;
        p.compact = t.uid <= 0xFFFF && t.gid <= 0xFFFF && p.nlink <= 0xFFFF && p.size <= 0xFFFFFFFFu &&
                    t.mtime == build.first && t.mtime_nsec == build.second;
        std::uint32_t const head = p.compact ? head_compact : extended_inode_size + p.ibody;
        std::uint32_t const tail = static_cast<std::uint32_t>(p.size % block_size);
        if (tailable) {
            if (tail != 0 && head + tail <= block_size) {
                p.layout = data_layout::flat_inline;
                p.tail = tail;
                p.blocks = static_cast<std::uint32_t>(p.size / block_size);
            } else {
                p.blocks = static_cast<std::uint32_t>((p.size + block_size - 1) / block_size);
            }
        }
    }

    // 4. Place the inode records after the data; no record smaller than a block crosses one.
    std::uint64_t const meta_blkaddr = data_block;
    std::uint64_t cursor = 0;
    for (auto& p : order) {
        std::uint64_t rec = (p.compact ? compact_inode_size : extended_inode_size) + p.ibody + p.tail;
        cursor = (cursor + slot_size - 1) / slot_size * slot_size;
        if (cursor % block_size + rec > block_size) cursor = (cursor + block_size - 1) / block_size * block_size;
        p.offset = cursor;
        cursor += rec;
    }
    std::uint64_t block = meta_blkaddr + (cursor + block_size - 1) / block_size;
    for (auto& p : order)
        if (p.blocks) {
            p.start_block = static_cast<std::uint32_t>(std::min<std::uint64_t>(block, 0xFFFFFFFFu));
            block += p.blocks;
        }
    if (block >= 0xFFFFFFFFull) {
        fail(ec, why, error::limit_exceeded, "the image would exceed 2^32 blocks");
        return {};
    }
    map.total_blocks = static_cast<std::uint32_t>(block);

    auto nid_of = [&](std::uint32_t node_id) { return order[slot[node_id]].offset / slot_size; };
    auto base = meta_blkaddr * block_size;

    // 5. Directory contents: one block at a time.
    auto dir_block = [&](placed const& p, std::size_t b, std::vector<std::byte>& out) {
        std::size_t first = p.block_starts[b];
        std::size_t last = b + 1 < p.block_starts.size() ? p.block_starts[b + 1] : p.dirents.size();
        out.clear();
        std::size_t names = dirent_size * (last - first);
        out.resize(names);
        for (std::size_t i = first; i < last; ++i) {
            auto const& [name, child] = p.dirents[i];
            encode_dirent(nid_of(child), static_cast<std::uint16_t>(names), type_of(nodes[child].mode),
                          std::span<std::byte, dirent_size>(out.data() + dirent_size * (i - first), dirent_size));
            auto bytes = std::as_bytes(std::span(name.data(), name.size()));
            out.insert(out.end(), bytes.begin(), bytes.end());
            names += name.size();
        }
    };

    seq_writer meta(fd, base);
    std::vector<std::byte> rec, content;
    std::uint32_t ino = 0;
    for (auto& p : order) {
        node const& n = nodes[p.node];
        inode_fields f;
        f.layout = p.layout;
        f.xattr_icount = static_cast<std::uint16_t>(p.ibody ? (p.ibody - xattr_ibody_header_size) / 4 + 1 : 0);
        f.mode = n.mode;
        f.size = p.size;
        switch (n.mode & s_ifmt) {
        case s_ifchr:
        case s_ifblk: f.i_u = n.rdev; break;
        case s_ififo:
        case s_ifsock: f.i_u = 0; break;
        default: f.i_u = p.start_block; break;
        }
        f.ino = ++ino;
        f.uid = n.uid;
        f.gid = n.gid;
        f.mtime = static_cast<std::uint64_t>(n.mtime);
        f.mtime_nsec = n.mtime_nsec;
        f.nlink = p.nlink;
        rec.assign(p.compact ? compact_inode_size : extended_inode_size, std::byte{0});
        if (p.compact) encode_compact(f, std::span<std::byte, compact_inode_size>(rec.data(), compact_inode_size));
        else encode_extended(f, std::span<std::byte, extended_inode_size>(rec.data(), extended_inode_size));
        if (p.ibody) {
            rec.resize(rec.size() + xattr_ibody_header_size, std::byte{0});
            for (auto const& [index, kv] : p.xattrs) {
                std::size_t at = rec.size();
                rec.resize(at + xattr_entry_size(kv.first.size(), kv.second.size()), std::byte{0});
                rec[at] = std::byte(static_cast<std::uint8_t>(kv.first.size()));
                rec[at + 1] = std::byte(index);
                store_le16(rec.data() + at + 2, static_cast<std::uint16_t>(kv.second.size()));
                std::memcpy(rec.data() + at + 4, kv.first.data(), kv.first.size());
                std::memcpy(rec.data() + at + 4 + kv.first.size(), kv.second.data(), kv.second.size());
            }
        }
        if (p.tail) {
            if (n.is_dir()) {
                dir_block(p, p.block_starts.size() - 1, content);
                rec.insert(rec.end(), content.begin(), content.end());
            } else {
                auto bytes = std::as_bytes(std::span(n.target.data() + p.blocks * block_size, p.tail));
                rec.insert(rec.end(), bytes.begin(), bytes.end());
            }
        }
        if (!meta.put(base + p.offset, rec, ec, why)) return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
    }
    // Directory and symlink blocks, in the order they were assigned.
    for (auto& p : order) {
        if (!p.blocks) continue;
        node const& n = nodes[p.node];
        std::uint64_t at = std::uint64_t(p.start_block) * block_size;
        for (std::uint32_t b = 0; b < p.blocks; ++b) {
            if (n.is_dir()) {
                dir_block(p, b, content);
            } else {
                std::size_t from = std::size_t(b) * block_size;
                auto bytes = std::as_bytes(std::span(n.target.data() + from, std::min<std::size_t>(block_size, n.target.size() - from)));
                content.assign(bytes.begin(), bytes.end());
            }
            if (!meta.put(at + std::uint64_t(b) * block_size, content, ec, why))
                return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
        }
    }
    if (!meta.flush(ec, why)) return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};

    // 6. Superblock, then the length.
    superblock sb;
    sb.root_nid = 0;
    sb.inos = order.size();
    sb.build_time = static_cast<std::uint64_t>(build.first);
    sb.build_time_nsec = build.second;
    sb.blocks = map.total_blocks;
    sb.meta_blkaddr = static_cast<std::uint32_t>(meta_blkaddr);
    sb.uuid = uuid_from(options.uuid_seed);
    std::array<std::byte, block_size> block0;
    encode_block0(sb, block0);
    if (!pwrite_all(fd, block0, 0, ec, why)) return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
    if (::ftruncate(fd, static_cast<off_t>(std::uint64_t(map.total_blocks) * block_size)) != 0) {
        errno_fail(ec, why, errno, "sizing the EROFS image");
        return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
    }
    ec.clear();
    return map;
}

OCISTORE_DECL erofs_layer_writer::erofs_layer_writer(int fd, erofs_layer_options options)
    : state_(std::make_unique<state>())
{
    state_->fd = fd;
    state_->options = std::move(options);
    state::node root;
    root.mode = static_cast<std::uint16_t>(erofs::s_ifdir | 0755);
    root.implicit = true;
    state_->nodes.push_back(std::move(root));
}

OCISTORE_DECL erofs_layer_writer::erofs_layer_writer(erofs_layer_writer&&) noexcept = default;
OCISTORE_DECL erofs_layer_writer& erofs_layer_writer::operator=(erofs_layer_writer&&) noexcept = default;
OCISTORE_DECL erofs_layer_writer::~erofs_layer_writer() = default;

OCISTORE_DECL void erofs_layer_writer::add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                                 std::string* why)
{
    ec.clear();
    if (why) why->clear();
    if (!state_) {
        detail::fail(ec, why, error::invalid_argument, "erofs_layer_writer: moved-from writer");
        return;
    }
    if (state_->failed) {
        ec = state_->failed;
        if (why) *why = state_->failed_why;
        return;
    }
    if (state_->finished) {
        detail::fail(ec, why, error::invalid_argument, "erofs_layer_writer: add_entry after finish");
        return;
    }
    state_->add(entry, data, ec, why);
    if (ec && !state_->failed) {
        state_->failed = ec;
        state_->failed_why = why ? *why : ec.message();
    }
}

OCISTORE_DECL void erofs_layer_writer::add_entry(tar_entry const& entry, byte_source_ref data)
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        add_entry(entry, data, ec, why);
        return 0;
    });
}

OCISTORE_DECL layer_data_map erofs_layer_writer::finish(error_code& ec, std::string* why)
{
    ec.clear();
    if (why) why->clear();
    if (!state_) {
        detail::fail(ec, why, error::invalid_argument, "erofs_layer_writer: moved-from writer");
        return {};
    }
    if (state_->failed) {
        ec = state_->failed;
        if (why) *why = state_->failed_why;
        return {};
    }
    if (state_->finished) {
        detail::fail(ec, why, error::invalid_argument, "erofs_layer_writer: finish called twice");
        return {};
    }
    state_->finished = true;
    return state_->finish(ec, why);
}

OCISTORE_DECL layer_data_map erofs_layer_writer::finish()
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return finish(ec, why); });
}

OCISTORE_DECL std::vector<build_warning> const& erofs_layer_writer::warnings() const noexcept
{
    static std::vector<build_warning> const none;
    return state_ ? state_->warnings : none;
}

} // namespace ocistore
