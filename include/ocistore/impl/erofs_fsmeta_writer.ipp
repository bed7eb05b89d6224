// Non-template bodies for ocistore/erofs/fsmeta_writer.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/erofs_metadata.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/erofs/fsmeta_writer.hpp>

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ocistore {
namespace detail::fsmeta_writer_impl {

using erofs_meta::node;

inline constexpr std::string_view opaque_xattr = "trusted.overlay.opaque";
inline constexpr std::uint64_t max_record_size = 64ull << 20;

inline bool is_whiteout(erofs_inode_info const& i) noexcept
{
    return i.type() == erofs::s_ifchr && i.rdev == 0;
}

inline bool is_opaque(erofs_inode_info const& i) noexcept
{
    for (auto const& [name, value] : i.xattrs)
        if (name == opaque_xattr && value == "y") return true;
    return false;
}

/// Copies the metadata of `i` (not data, not children) into `n`; directories lose the opaque marker.
inline void copy_meta(node& n, erofs_inode_info const& i)
{
    n.mode = i.mode;
    n.uid = i.uid;
    n.gid = i.gid;
    n.mtime = i.mtime;
    n.mtime_nsec = i.mtime_nsec;
    n.xattrs.clear();
    for (auto const& [name, value] : i.xattrs)
        if (!(i.is_dir() && name == opaque_xattr)) n.xattrs.push_back({name, value});
}

/// log2 of the smallest power of two ≥ `size`, within [12, max_chunk_bits].
inline std::uint32_t chunk_bits_for(std::uint64_t size) noexcept
{
    std::uint32_t b = erofs::block_size_bits;
    while (b < erofs::max_chunk_bits && (std::uint64_t(1) << b) < size) ++b;
    return b;
}

/// The NIDs of the directories `r`'s writer created implicitly (its NID 0 record), else none.
inline std::unordered_set<std::uint64_t> implicit_dirs(erofs_image_reader const& r)
{
    std::unordered_set<std::uint64_t> out;
    if (r.info().root_nid == 0) return out;
    error_code ec;
    auto rec = r.inode(0, ec);
    if (ec || !rec.is_regular() || rec.size > max_record_size) return out;
    std::vector<std::byte> bytes(static_cast<std::size_t>(rec.size));
    if (r.read(rec, 0, bytes, ec) != bytes.size() || ec) return out;
    std::vector<std::uint64_t> nids;
    if (erofs_meta::parse_implicit_record(bytes, nids)) out.insert(nids.begin(), nids.end());
    return out;
}

/// The merged tree under construction; nodes[0] is the root.
struct merger {
    std::vector<node> nodes;
    std::string why;   ///< the reason of a failure inside a walk

    merger()
    {
        node root;
        root.mode = static_cast<std::uint16_t>(erofs::s_ifdir | 0755);
        root.implicit = true;
        nodes.push_back(std::move(root));
    }

    std::uint32_t add(node n)
    {
        nodes.push_back(std::move(n));
        return static_cast<std::uint32_t>(nodes.size() - 1);
    }

    /// A merged non-directory for inode `i` of layer `layer`.
    bool leaf(erofs_image_reader const& r, std::size_t layer, std::string_view path, erofs_inode_info const& i,
              node& n, error_code& ec)
    {
        auto bad = [&](error e, std::string msg) {
            detail::fail(ec, &why, e, "\"" + std::string(path) + "\": " + msg);
            return false;
        };
        copy_meta(n, i);
        auto const device = static_cast<std::uint16_t>(layer + 1);
        switch (i.type()) {
        case erofs::s_ifreg:
            n.size = i.size;
            n.chunked = true;
            if (i.size == 0) break;
            if (i.layout == erofs::data_layout::flat_plain) {
                n.chunk_bits = chunk_bits_for(i.size);
                std::uint64_t const per = std::uint64_t(1) << (n.chunk_bits - erofs::block_size_bits);
                std::uint64_t const count = (i.size + (std::uint64_t(1) << n.chunk_bits) - 1) >> n.chunk_bits;
                for (std::uint64_t k = 0; k < count; ++k)
                    n.chunks.push_back({device, static_cast<std::uint32_t>(i.raw_blkaddr + k * per)});
            } else if (i.layout == erofs::data_layout::chunk_based) {
                n.chunk_bits = i.chunk_bits;
                for (auto const& c : i.chunks) {
                    if (c.block == erofs::null_addr) {
                        n.chunks.push_back({0, erofs::null_addr});
                        continue;
                    }
                    if (c.device_id != 0)
                        return bad(error::unsupported_entry,
                                   "its data lies on device " + std::to_string(c.device_id) + " of the layer image");
                    n.chunks.push_back({device, c.block});
                }
            } else {
                return bad(error::unsupported_entry, "its data is tail-inlined, so no chunk can point at it");
            }
            break;
        case erofs::s_iflnk:
            n.target = r.read_link(i, ec, &why);
            if (ec) {
                why = "\"" + std::string(path) + "\": " + why;
                return false;
            }
            break;
        case erofs::s_ifchr:
        case erofs::s_ifblk: n.rdev = i.rdev; break;
        default: break;
        }
        return true;
    }

    /// Applies layer `layer` (read by `r`) on top of the tree.
    void apply(erofs_image_reader const& r, std::size_t layer, error_code& ec)
    {
        why.clear();
        auto const implicit = implicit_dirs(r);
        std::unordered_map<std::uint64_t, std::uint32_t> linked; // layer NID → merged node (non-directories)
        struct frame {
            std::string path;
            std::uint32_t dir;
        };
        std::vector<frame> stack;
        std::string walk_why;
        r.walk(
            [&](std::string_view path, erofs_inode_info const& i, error_code& wec) {
                bool const described = !implicit.count(i.nid);
                if (path.empty()) {
                    if (is_opaque(i)) nodes[0].children.clear();
                    if (described) {
                        copy_meta(nodes[0], i);
                        nodes[0].implicit = false;
                    }
                    stack.assign(1, frame{std::string(), 0});
                    return;
                }
                auto const slash = path.rfind('/');
                std::string_view const parent = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
                std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
                while (!stack.empty() && stack.back().path != parent) stack.pop_back();
                if (stack.empty()) {
                    detail::fail(wec, &why, error::invalid_archive,
                                 "\"" + std::string(path) + "\" was reached before its directory");
                    return;
                }
                std::uint32_t const dir = stack.back().dir;
                if (is_whiteout(i)) {
                    nodes[dir].children.erase(name);
                    return;
                }
                if (i.is_dir()) {
                    auto it = nodes[dir].children.find(name);
                    std::uint32_t target;
                    if (it != nodes[dir].children.end() && nodes[it->second].is_dir()) {
                        target = it->second;
                        if (is_opaque(i)) nodes[target].children.clear();
                        if (described) {
                            copy_meta(nodes[target], i);
                            nodes[target].implicit = false;
                        }
                    } else {
                        node d;
                        copy_meta(d, i);
                        d.implicit = !described;
                        target = add(std::move(d));
                        nodes[dir].children.insert_or_assign(name, target);
                    }
                    stack.push_back(frame{std::string(path), target});
                    return;
                }
                auto [it, fresh] = linked.try_emplace(i.nid, erofs_meta::no_node);
                if (fresh) {
                    node n;
                    if (!leaf(r, layer, path, i, n, wec)) return;
                    it->second = add(std::move(n));
                }
                nodes[dir].children.insert_or_assign(std::move(name), it->second);
            },
            ec, &walk_why);
        if (ec && !why.empty()) walk_why = why;
        why = std::move(walk_why);
    }
};

} // namespace detail::fsmeta_writer_impl

OCISTORE_DECL fsmeta_result write_fsmeta(int fd, std::span<erofs_image_reader const> layers,
                                         std::span<std::string const> layer_tags, fsmeta_options const& options,
                                         error_code& ec, std::string* why)
{
    namespace meta = detail::erofs_meta;
    using namespace erofs;
    ec.clear();
    if (why) why->clear();
    fsmeta_result result;
    if (layer_tags.size() != layers.size()) {
        detail::fail(ec, why, error::invalid_argument,
                     "write_fsmeta: " + std::to_string(layers.size()) + " layers but " +
                         std::to_string(layer_tags.size()) + " tags");
        return {};
    }
    if (layers.size() > 0xFFFF) {
        detail::fail(ec, why, error::limit_exceeded,
                     "write_fsmeta: " + std::to_string(layers.size()) + " layers exceed EROFS's 65535 devices");
        return {};
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
        std::string const which = "layer " + std::to_string(i);
        if (layer_tags[i].size() > 64) {
            detail::fail(ec, why, error::invalid_argument,
                         which + ": tag of " + std::to_string(layer_tags[i].size()) + " bytes exceeds the 64-byte slot");
            return {};
        }
        if (!layers[i].is_open()) {
            detail::fail(ec, why, error::invalid_argument, which + ": the reader is not open");
            return {};
        }
        if (layers[i].info().extra_devices != 0) {
            detail::fail(ec, why, error::invalid_argument, which + ": the image has a device table of its own");
            return {};
        }
        result.layer_blocks.push_back(layers[i].info().blocks);
    }

    detail::fsmeta_writer_impl::merger m;
    std::uint64_t expected_nodes = 1; // the superblocks' counts, each bounded by what the image can hold
    for (auto const& l : layers)
        expected_nodes += std::min<std::uint64_t>(l.info().inodes, l.info().blocks * (block_size / 32));
    m.nodes.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected_nodes, std::uint64_t(1) << 22)));
    for (std::size_t i = 0; i < layers.size(); ++i) {
        m.apply(layers[i], i, ec);
        if (ec) {
            if (why) *why = "layer " + std::to_string(i) + ": " + (m.why.empty() ? ec.message() : m.why);
            return {};
        }
    }

    std::uint64_t const table = superblock_offset + superblock_size;
    std::uint64_t const meta_blkaddr = (table + std::uint64_t(devt_slot_size) * layers.size() + block_size - 1) / block_size;
    meta::metadata_options mo;
    mo.meta_blkaddr = meta_blkaddr;
    auto r = meta::write_metadata(fd, m.nodes, mo, ec, why);
    if (ec) return {};

    std::vector<std::byte> slots(std::size_t(devt_slot_size) * layers.size());
    std::uint64_t mapped = r.total_blocks;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        result.mapped_blkaddr.push_back(static_cast<std::uint32_t>(mapped));
        encode_device_slot(layer_tags[i], result.layer_blocks[i], static_cast<std::uint32_t>(mapped),
                           std::span<std::byte, devt_slot_size>(slots.data() + devt_slot_size * i, devt_slot_size));
        mapped += result.layer_blocks[i];
        if (mapped > 0xFFFFFFFFull) {
            detail::fail(ec, why, error::limit_exceeded,
                         "write_fsmeta: fsmeta and layers 0.." + std::to_string(i) + " exceed 2^32 blocks");
            return {};
        }
    }
    superblock sb = meta::superblock_for(r, meta_blkaddr);
    sb.uuid = meta::uuid_from(options.uuid_seed);
    if (!layers.empty()) {
        sb.feature_incompat = feature_incompat_chunked_file | feature_incompat_device_table;
        sb.extra_devices = static_cast<std::uint16_t>(layers.size());
        sb.devt_slotoff = static_cast<std::uint16_t>(table / devt_slot_size);
    }
    if (!meta::write_block0(fd, sb, slots, ec, why)) return {};
    result.total_blocks = r.total_blocks;
    result.inodes = r.inodes;
    ec.clear();
    return result;
}

OCISTORE_DECL fsmeta_result write_fsmeta(int fd, std::span<erofs_image_reader const> layers,
                                         std::span<std::string const> layer_tags, fsmeta_options const& options)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        return write_fsmeta(fd, layers, layer_tags, options, ec, why);
    });
}

} // namespace ocistore
