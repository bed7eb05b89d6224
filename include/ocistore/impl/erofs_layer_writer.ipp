// Non-template bodies for ocistore/erofs/layer_writer.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/erofs_metadata.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/erofs/layer_writer.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <fcntl.h>

namespace ocistore {
namespace detail::erofs_writer_impl {

inline constexpr std::uint32_t no_node = erofs_meta::no_node;

inline std::string quote_name(std::string_view s) { return "\"" + std::string(s) + "\""; }

} // namespace detail::erofs_writer_impl

struct erofs_layer_writer::state {
    using node = detail::erofs_meta::node;

    int fd = -1;
    erofs_layer_options options;
    std::vector<node> nodes;        ///< nodes[0] is the root
    std::set<std::uint32_t> opaque; ///< directories with a `.wh..wh..opq` entry
    std::uint64_t data_block = 1;   ///< next free data block
    std::uint64_t written_back = 0; ///< bytes whose writeback was started
    static constexpr std::size_t stage_size = 256 * 1024; ///< a multiple of the block size
    std::vector<std::byte> stage;   ///< data blocks not yet written, from stage_block
    std::size_t stage_fill = 0;     ///< bytes staged: whole blocks between files
    std::uint64_t stage_block = 1;  ///< the block of stage[0]
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

    /** Streams `size` bytes of `data` to the next free blocks. Data is gathered in `stage`
        (blocks [stage_block, stage_block + stage_fill / 4096), each file zero-padded to a
        whole block) and written stage_size bytes at a time: one write for many small files,
        instead of one or more each. */
    bool write_data(tar_entry const& e, byte_source_ref data, node& n, error_code& ec, std::string* why)
    {
        using namespace erofs;
        std::uint64_t const blocks = (e.size + block_size - 1) / block_size;
        if (data_block + blocks > 0xFFFFFFF0ull)
            return fail(ec, why, error::limit_exceeded,
                        "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": the image would exceed 2^32 blocks");
        n.size = e.size;
        n.start_block = blocks ? static_cast<std::uint32_t>(data_block) : null_addr;
        if (blocks == 0) return true;
        if (stage.empty()) stage.resize(stage_size);
        std::uint64_t done = 0;
        while (done < e.size) {
            if (stage_fill == stage.size() && !flush_stage(ec, why)) return false;
            std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(stage.size() - stage_fill, e.size - done));
            std::size_t const got = data.read_some(std::span(stage.data() + stage_fill, want), ec);
            if (ec)
                return fail_ec(ec, why, "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": reading data: " + ec.message());
            if (got == 0)
                return fail(ec, why, error::truncated,
                            "entry " + detail::erofs_writer_impl::quote_name(e.path) + ": data ended after " +
                                std::to_string(done) + " of " + std::to_string(e.size) + " bytes");
            stage_fill += got;
            done += got;
        }
        std::size_t const pad = (block_size - stage_fill % block_size) % block_size;
        std::memset(stage.data() + stage_fill, 0, pad); // stage.size() is a multiple of block_size
        stage_fill += pad;
        data_block += blocks;
        return true;
    }

    /// Writes the staged blocks, then starts their writeback when start_writeback_every is due.
    bool flush_stage(error_code& ec, std::string* why)
    {
        if (stage_fill == 0) return true;
        std::uint64_t const offset = stage_block * erofs::block_size;
        if (!detail::erofs_meta::pwrite_all(fd, std::span<std::byte const>(stage.data(), stage_fill), offset, ec, why))
            return fail_ec(ec, why, why ? *why : ec.message());
        stage_block += stage_fill / erofs::block_size;
        stage_fill = 0;
        std::uint64_t const end = stage_block * erofs::block_size;
        if (auto const every = options.start_writeback_every; every && end - written_back >= every) {
            // Advisory: a write error resurfaces in the caller's fsync().
            (void)::sync_file_range(fd, static_cast<off_t>(written_back), static_cast<off_t>(end - written_back),
                                    SYNC_FILE_RANGE_WRITE);
            written_back = end;
        }
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
            opaque.insert(dir);
            return;
        }
        if (name.starts_with(".wh..wh.")) {
            warnings.push_back({e.path, "overlay metadata entry skipped", make_error_code(error::unsupported_entry)});
            return;
        }
        if (name == ".wh.." || name == ".wh...") {
            fail(ec, why, error::unsafe_path,
                 "entry " + quote_name(e.path) + ": whiteout names " + quote_name(name.substr(4)));
            return;
        }
        node w;
        if (!set_meta(w, e, s_ifchr, ec, why)) return;
        w.xattrs.clear();
        std::uint32_t const id = new_node(std::move(w)); // before naming nodes[dir]: new_node may reallocate
        nodes[dir].children.insert_or_assign(name.substr(4), id);
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
    namespace meta = detail::erofs_meta;
    layer_data_map map;
    if (!flush_stage(ec, why)) return layer_data_map{};
    std::vector<std::byte>().swap(stage);
    for (std::uint32_t d : opaque) {
        auto& xs = nodes[d].xattrs;
        auto it = std::find_if(xs.begin(), xs.end(), [](auto const& x) { return x.name == "trusted.overlay.opaque"; });
        if (it != xs.end()) it->value = "y";
        else xs.push_back({"trusted.overlay.opaque", "y"});
    }
    meta::metadata_options mo;
    mo.meta_blkaddr = data_block;
    mo.record_implicit = true;
    mo.on_name = [&](std::string const& path, std::uint32_t id) {
        if (nodes[id].is_regular()) map.files.emplace(path, file_extent{nodes[id].start_block, nodes[id].size});
    };
    auto r = meta::write_metadata(fd, nodes, mo, ec, why);
    if (ec) return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
    erofs::superblock sb = meta::superblock_for(r, data_block);
    sb.uuid = meta::uuid_from(options.uuid_seed);
    if (!meta::write_block0(fd, sb, {}, ec, why)) return fail_ec(ec, why, why ? *why : ec.message()), layer_data_map{};
    map.total_blocks = r.total_blocks;
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
