// Non-template bodies for ocistore/detail/erofs_metadata.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/erofs_metadata.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <tuple>
#include <utility>

#include <unistd.h>

namespace ocistore::detail::erofs_meta {
namespace erofs_metadata_impl {

using namespace ocistore::erofs;

/// One xattr as stored: prefix index, name suffix, value.
struct stored_xattr {
    std::uint8_t index = 0;
    std::string suffix;
    std::string value;

    std::uint32_t entry_size() const noexcept { return xattr_entry_size(suffix.size(), value.size()); }
    auto key() const noexcept { return std::tuple<std::uint8_t, std::string_view, std::string_view>(index, suffix, value); }
};

/// A node as placed: what the layout pass computes for one inode record.
struct placed {
    std::uint32_t node = 0;
    std::uint32_t parent = 0;        ///< directories: the parent directory's node
    std::uint32_t nlink = 0;
    bool compact = false;
    data_layout layout = data_layout::flat_plain;
    std::uint64_t size = 0;          ///< i_size
    std::vector<stored_xattr> xattrs;
    std::vector<std::uint32_t> shared; ///< indexes into the shared list
    std::vector<std::size_t> inline_xattrs; ///< indexes into `xattrs` stored in the ibody
    std::uint32_t ibody = 0;         ///< xattr ibody bytes
    std::uint32_t tail = 0;          ///< inline tail bytes
    std::uint32_t chunk_pad = 0;     ///< bytes between the ibody and the chunk index array
    std::uint32_t blocks = 0;        ///< full blocks in the trailing area (dirs, symlinks, resident files)
    std::uint32_t start_block = null_addr;
    std::uint64_t offset = 0;        ///< byte offset in the metadata area
    /// Directories: entries sorted by name ("." and ".." included) and where each block starts.
    std::vector<std::pair<std::string_view, std::uint32_t>> dirents;
    std::vector<std::size_t> block_starts;
};

/// A shared xattr: where it first occurred and where it is stored.
struct shared_xattr {
    std::size_t owner = 0;           ///< index in the order of the first inode carrying it
    std::size_t xattr = 0;           ///< index in that inode's xattrs
    std::uint64_t offset = 0;        ///< byte offset in the metadata area
};

inline void append_entry(std::vector<std::byte>& out, stored_xattr const& x)
{
    std::size_t at = out.size();
    out.resize(at + x.entry_size(), std::byte{0});
    out[at] = std::byte(static_cast<std::uint8_t>(x.suffix.size()));
    out[at + 1] = std::byte(x.index);
    store_le16(out.data() + at + 2, static_cast<std::uint16_t>(x.value.size()));
    std::memcpy(out.data() + at + 4, x.suffix.data(), x.suffix.size());
    std::memcpy(out.data() + at + 4 + x.suffix.size(), x.value.data(), x.value.size());
}

inline std::uint64_t round_up(std::uint64_t v, std::uint64_t unit) { return (v + unit - 1) / unit * unit; }

} // namespace erofs_metadata_impl

OCISTORE_DECL bool parse_implicit_record(std::span<std::byte const> bytes, std::vector<std::uint64_t>& nids)
{
    nids.clear();
    if (bytes.size() < implicit_record_magic.size() || (bytes.size() - implicit_record_magic.size()) % 8 != 0)
        return false;
    if (std::memcmp(bytes.data(), implicit_record_magic.data(), implicit_record_magic.size()) != 0) return false;
    for (std::size_t at = implicit_record_magic.size(); at < bytes.size(); at += 8)
        nids.push_back(erofs::load_le64(bytes.data() + at));
    return true;
}

OCISTORE_DECL void errno_fail(error_code& ec, std::string* why, int err, std::string const& what)
{
    ec = error_code(err, std::system_category());
    if (why) *why = what + ": " + ec.message();
}

OCISTORE_DECL bool pwrite_all(int fd, std::span<std::byte const> bytes, std::uint64_t offset, error_code& ec,
                              std::string* why)
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

OCISTORE_DECL bool seq_writer::put(std::uint64_t offset, std::span<std::byte const> bytes, error_code& ec,
                                   std::string* why)
{
    std::uint64_t end = base_ + buf_.size();
    if (offset > end) buf_.resize(buf_.size() + static_cast<std::size_t>(offset - end), std::byte{0});
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    return buf_.size() < (1u << 20) || flush(ec, why);
}

OCISTORE_DECL bool seq_writer::flush(error_code& ec, std::string* why)
{
    if (!pwrite_all(fd_, buf_, base_, ec, why)) return false;
    base_ += buf_.size();
    buf_.clear();
    return true;
}

OCISTORE_DECL erofs::file_type type_of(std::uint16_t mode) noexcept
{
    using namespace erofs;
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

OCISTORE_DECL std::array<std::byte, 16> uuid_from(std::span<std::byte const> seed)
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
    erofs::store_le64(out.data(), mix(0xcbf29ce484222325ull));
    erofs::store_le64(out.data() + 8, mix(0x84222325cbf29ce4ull));
    out[6] = (out[6] & std::byte{0x0f}) | std::byte{0x40}; // version 4 layout (no randomness implied)
    out[8] = (out[8] & std::byte{0x3f}) | std::byte{0x80}; // RFC 4122 variant
    return out;
}

OCISTORE_DECL metadata_result write_metadata(int fd, std::vector<node>& nodes, metadata_options const& options,
                                             error_code& ec, std::string* why)
{
    using namespace erofs;
    using namespace erofs_metadata_impl;
    metadata_result res;

    // 1. Reachable inodes, breadth first from the root; link counts; parents.
    std::vector<placed> order;
    order.reserve(nodes.size()); // at most one record per node; growing would copy and fault in pages
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
            std::string child_path;
            bool const is_dir = nodes[child].is_dir();
            if (options.on_name || is_dir) child_path = path.empty() ? name : path + "/" + name;
            if (slot[child] == no_node) {
                slot[child] = static_cast<std::uint32_t>(order.size());
                order.push_back({});
                order.back().node = child;
                order.back().parent = dir;
                if (is_dir) queue.emplace_back(child, child_path);
            }
            if (is_dir) ++subdirs;
            ++order[slot[child]].nlink;
            if (options.on_name) options.on_name(child_path, child);
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

    // 2b. The implicit-directory record goes first, at NID 0.
    std::size_t implicit_dirs = 0;
    if (options.record_implicit)
        for (auto const& p : order)
            if (nodes[p.node].implicit && nodes[p.node].is_dir()) ++implicit_dirs;
    std::uint32_t record = no_node;
    if (implicit_dirs) {
        node r;
        r.mode = s_ifreg;
        r.implicit = true;
        r.mtime = build.first;
        r.mtime_nsec = build.second;
        r.resident = true;
        r.target.assign(implicit_record_magic);
        r.target.resize(implicit_record_magic.size() + 8 * implicit_dirs, '\0');
        nodes.push_back(std::move(r));
        record = static_cast<std::uint32_t>(nodes.size() - 1);
        placed p;
        p.node = record;
        p.nlink = 1;
        order.insert(order.begin(), std::move(p));
        slot.assign(nodes.size(), no_node);
        for (std::size_t i = 0; i < order.size(); ++i) slot[order[i].node] = static_cast<std::uint32_t>(i);
    }

    // 3. Xattrs; those that are cheaper shared go to the shared area, in order of first use.
    for (auto& p : order)
        for (auto const& x : nodes[p.node].xattrs) {
            auto split_name = split_xattr_name(x.name);
            if (!split_name || x.value.size() > 0xFFFF) {
                detail::fail(ec, why, error::unsupported_entry,
                             "xattr \"" + x.name + "\": EROFS has no short name prefix for it or its value exceeds 65535 bytes");
                return {};
            }
            p.xattrs.push_back({split_name->index, std::string(split_name->suffix), x.value});
        }
    std::map<std::tuple<std::uint8_t, std::string_view, std::string_view>, std::uint64_t> uses;
    for (auto const& p : order)
        for (auto const& x : p.xattrs) ++uses[x.key()];
    std::vector<shared_xattr> shared;
    std::map<std::tuple<std::uint8_t, std::string_view, std::string_view>, std::uint32_t> shared_index;
    for (std::size_t i = 0; i < order.size(); ++i) {
        placed& p = order[i];
        for (std::size_t k = 0; k < p.xattrs.size(); ++k) {
            auto const& x = p.xattrs[k];
            std::uint64_t const n = uses[x.key()], e = x.entry_size();
            bool const cheaper = n >= 2 && e * n > e + 4 * n;
            if (!cheaper || p.shared.size() == 255) {
                p.inline_xattrs.push_back(k);
                continue;
            }
            auto [it, fresh] = shared_index.emplace(x.key(), static_cast<std::uint32_t>(shared.size()));
            if (fresh) shared.push_back({i, k, 0});
            p.shared.push_back(it->second);
        }
        std::uint64_t ibody = 4ull * p.shared.size();
        for (auto k : p.inline_xattrs) ibody += p.xattrs[k].entry_size();
        if (!p.xattrs.empty()) ibody += xattr_ibody_header_size;
        if (ibody > xattr_ibody_header_size + 4ull * 65534) {
            detail::fail(ec, why, error::limit_exceeded,
                         "an inode's xattrs take " + std::to_string(ibody) + " bytes, over EROFS's limit");
            return {};
        }
        p.ibody = static_cast<std::uint32_t>(ibody);
    }

    // 4. Sizes and layouts.
    for (auto& p : order) {
        node const& n = nodes[p.node];
        bool tailable = false;
        switch (n.mode & s_ifmt) {
        case s_ifreg:
            p.size = n.resident ? n.target.size() : n.size;
            tailable = n.resident;
            if (n.chunked) p.layout = data_layout::chunk_based;
            else if (!n.resident) p.start_block = n.start_block;
            break;
        case s_iflnk:
            p.size = n.target.size();
            tailable = true;
            break;
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
            tailable = true;
            break;
        }
        default: p.size = 0; break;
        }

        p.compact = n.uid <= 0xFFFF && n.gid <= 0xFFFF && p.nlink <= 0xFFFF && p.size <= 0xFFFFFFFFu &&
                    n.mtime == build.first && n.mtime_nsec == build.second;
        std::uint32_t const head = (p.compact ? compact_inode_size : extended_inode_size) + p.ibody;
        std::uint32_t const tail = static_cast<std::uint32_t>(p.size % block_size);
        if (p.layout == data_layout::chunk_based) {
            p.chunk_pad = static_cast<std::uint32_t>(round_up(head, chunk_index_size) - head);
        } else if (tailable) {
            if (tail != 0 && head + tail <= block_size) {
                p.layout = data_layout::flat_inline;
                p.tail = tail;
                p.blocks = static_cast<std::uint32_t>(p.size / block_size);
            } else {
                p.blocks = static_cast<std::uint32_t>((p.size + block_size - 1) / block_size);
            }
        }
    }

    // 5. Place the inode records; no record smaller than a block crosses one. Then the shared
    //    xattrs, none crossing a block, then the directory and symlink blocks.
    std::uint64_t const meta_blkaddr = options.meta_blkaddr;
    std::uint64_t cursor = 0;
    for (auto& p : order) {
        std::uint64_t rec = (p.compact ? compact_inode_size : extended_inode_size) + p.ibody + p.tail;
        if (p.layout == data_layout::chunk_based)
            rec += p.chunk_pad + std::uint64_t(chunk_index_size) * nodes[p.node].chunks.size();
        cursor = round_up(cursor, slot_size);
        if (cursor % block_size + rec > block_size) cursor = round_up(cursor, block_size);
        p.offset = cursor;
        cursor += rec;
    }
    if (!shared.empty()) {
        cursor = round_up(cursor, 4);
        for (auto& s : shared) {
            std::uint32_t const e = order[s.owner].xattrs[s.xattr].entry_size();
            if (cursor % block_size + e > block_size) cursor = round_up(cursor, block_size);
            s.offset = cursor;
            cursor += e;
        }
        if (cursor / 4 > 0xFFFFFFFFull) {
            detail::fail(ec, why, error::limit_exceeded, "the shared xattrs lie beyond what a 32-bit id can address");
            return {};
        }
        res.xattr_blkaddr = static_cast<std::uint32_t>(meta_blkaddr);
    }
    std::uint64_t block = meta_blkaddr + (cursor + block_size - 1) / block_size;
    for (auto& p : order)
        if (p.blocks) {
            p.start_block = static_cast<std::uint32_t>(std::min<std::uint64_t>(block, 0xFFFFFFFFu));
            block += p.blocks;
        }
    if (block >= 0xFFFFFFFFull) {
        detail::fail(ec, why, error::limit_exceeded, "the image would exceed 2^32 blocks");
        return {};
    }

    auto nid_of = [&](std::uint32_t node_id) { return order[slot[node_id]].offset / slot_size; };
    if (record != no_node) {
        std::size_t at = implicit_record_magic.size();
        for (auto const& p : order)
            if (p.node != record && nodes[p.node].implicit && nodes[p.node].is_dir()) {
                store_le64(reinterpret_cast<std::byte*>(nodes[record].target.data() + at), nid_of(p.node));
                at += 8;
            }
    }
    res.root_nid = nid_of(0);
    if (res.root_nid > 0xFFFF) {
        detail::fail(ec, why, error::limit_exceeded, "the root's NID does not fit the superblock's 16 bits");
        return {};
    }
    res.total_blocks = static_cast<std::uint32_t>(block);
    res.inodes = order.size();
    res.build_time = build.first;
    res.build_time_nsec = build.second;
    auto const base = meta_blkaddr * block_size;

    // 6. Directory contents: one block at a time.
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
        default:
            f.i_u = p.layout == data_layout::chunk_based
                        ? chunk_format_indexes | (n.chunk_bits - block_size_bits)
                        : p.start_block;
            break;
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
            std::size_t const at = rec.size();
            rec.resize(at + xattr_ibody_header_size, std::byte{0});
            rec[at + 4] = std::byte(static_cast<std::uint8_t>(p.shared.size()));
            for (auto s : p.shared) {
                rec.resize(rec.size() + 4);
                store_le32(rec.data() + rec.size() - 4, static_cast<std::uint32_t>(shared[s].offset / 4));
            }
            for (auto k : p.inline_xattrs) append_entry(rec, p.xattrs[k]);
        }
        if (p.tail) {
            if (n.is_dir()) {
                dir_block(p, p.block_starts.size() - 1, content);
                rec.insert(rec.end(), content.begin(), content.end());
            } else {
                auto bytes = std::as_bytes(std::span(n.target.data() + std::size_t(p.blocks) * block_size, p.tail));
                rec.insert(rec.end(), bytes.begin(), bytes.end());
            }
        }
        if (p.layout == data_layout::chunk_based) {
            rec.resize(rec.size() + p.chunk_pad, std::byte{0});
            for (auto const& c : n.chunks) {
                rec.resize(rec.size() + chunk_index_size);
                encode_chunk_index(c.device_id, c.block,
                                   std::span<std::byte, chunk_index_size>(rec.data() + rec.size() - chunk_index_size,
                                                                          chunk_index_size));
            }
        }
        if (!meta.put(base + p.offset, rec, ec, why)) return {};
    }
    for (auto const& s : shared) {
        rec.clear();
        append_entry(rec, order[s.owner].xattrs[s.xattr]);
        if (!meta.put(base + s.offset, rec, ec, why)) return {};
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
                auto bytes = std::as_bytes(
                    std::span(n.target.data() + from, std::min<std::size_t>(block_size, n.target.size() - from)));
                content.assign(bytes.begin(), bytes.end());
            }
            if (!meta.put(at + std::uint64_t(b) * block_size, content, ec, why)) return {};
        }
    }
    if (!meta.flush(ec, why)) return {};
    ec.clear();
    return res;
}

OCISTORE_DECL erofs::superblock superblock_for(metadata_result const& r, std::uint64_t meta_blkaddr)
{
    erofs::superblock sb;
    sb.root_nid = static_cast<std::uint16_t>(r.root_nid);
    sb.inos = r.inodes;
    sb.build_time = static_cast<std::uint64_t>(r.build_time);
    sb.build_time_nsec = r.build_time_nsec;
    sb.blocks = r.total_blocks;
    sb.meta_blkaddr = static_cast<std::uint32_t>(meta_blkaddr);
    sb.xattr_blkaddr = r.xattr_blkaddr;
    return sb;
}

OCISTORE_DECL bool write_block0(int fd, erofs::superblock const& sb, std::span<std::byte const> after, error_code& ec,
                                std::string* why)
{
    using namespace erofs;
    std::size_t const first = superblock_offset + superblock_size;
    std::vector<std::byte> head((first + after.size() + block_size - 1) / block_size * block_size);
    encode_block0(sb, std::span<std::byte, block_size>(head.data(), block_size), after);
    if (after.size() > block_size - first)
        std::copy(after.begin() + static_cast<std::ptrdiff_t>(block_size - first), after.end(),
                  head.begin() + block_size);
    if (!pwrite_all(fd, head, 0, ec, why)) return false;
    if (::ftruncate(fd, static_cast<off_t>(std::uint64_t(sb.blocks) * block_size)) != 0) {
        errno_fail(ec, why, errno, "sizing the EROFS image");
        return false;
    }
    return true;
}

} // namespace ocistore::detail::erofs_meta
