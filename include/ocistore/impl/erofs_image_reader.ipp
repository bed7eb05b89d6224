// Non-template bodies for ocistore/erofs/image_reader.hpp.
#pragma once

#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/erofs/image_reader.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {
namespace detail::erofs_reader_impl {

using namespace ocistore::erofs;

inline constexpr std::uint32_t reader_known_incompat = 0x7F;
inline constexpr std::uint16_t reader_chunk_blkbits_mask = 0x1F, reader_chunk_indexes = 0x20;
inline constexpr std::uint32_t reader_slot_size = 128;
/// Metadata reads longer than this bypass the block cache.
inline constexpr std::size_t reader_cache_bypass = 16 * block_size;
inline constexpr std::uint32_t reader_no_block = 0xFFFFFFFF; // never below info.blocks

inline std::string hex32(std::uint32_t v)
{
    static char const digits[] = "0123456789abcdef";
    std::string s = "0x";
    for (int i = 7; i >= 0; --i) s += digits[(v >> (4 * i)) & 15];
    return s;
}

inline std::string num(std::uint64_t v) { return std::to_string(v); }

inline void errno_fail(error_code& ec, std::string* why, int err, std::string const& what)
{
    ec = error_code(err, std::system_category());
    if (why) *why = what;
}

/// Reads exactly `out.size()` bytes at `offset`; a short file is `truncated`.
inline bool pread_exact(int fd, std::uint64_t offset, std::span<std::byte> out, error_code& ec, std::string* why,
                        char const* what)
{
    while (!out.empty()) {
        ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            errno_fail(ec, why, errno, std::string("reading ") + what + " at byte " + num(offset));
            return false;
        }
        if (n == 0) {
            detail::fail(ec, why, error::truncated,
                         std::string(what) + ": the file ends at byte " + num(offset) + ", " + num(out.size()) +
                             " bytes short");
            return false;
        }
        out = out.subspan(static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// Fails with `invalid_archive` unless `size` bytes at `offset` lie inside the image's blocks.
inline bool in_image(erofs_image_info const& info, std::uint64_t offset, std::size_t size, error_code& ec,
                     std::string* why, char const* what)
{
    std::uint64_t const image_bytes = std::uint64_t(info.blocks) * block_size;
    if (offset <= image_bytes && size <= image_bytes - offset) return true;
    detail::fail(ec, why, error::invalid_archive,
                 std::string(what) + " (" + num(size) + " bytes at byte " + num(offset) + ") lies beyond the image's " +
                     num(info.blocks) + " blocks");
    return false;
}

/// Decodes `n` device slots from `table`.
inline std::vector<erofs_device_slot> parse_slots(std::span<std::byte const> table, std::size_t n)
{
    std::vector<erofs_device_slot> slots(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::byte const* s = table.data() + i * reader_slot_size;
        std::size_t len = 0;
        while (len < 64 && s[len] != std::byte{0}) ++len;
        slots[i].tag.assign(reinterpret_cast<char const*>(s), len);
        slots[i].blocks = load_le32(s + 64);
        slots[i].mapped_blkaddr = load_le32(s + 68);
    }
    return slots;
}

/// The prefix of xattr name index `index`, or nullptr when unknown.
inline char const* xattr_prefix(std::uint8_t index) noexcept
{
    switch (index) {
    case 1: return "user.";
    case 2: return "system.posix_acl_access";
    case 3: return "system.posix_acl_default";
    case 4: return "trusted.";
    case 5: return "lustre.";
    case 6: return "security.";
    default: return nullptr;
    }
}

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

inline std::string quote(std::string_view s)
{
    std::string out = "\"";
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
            static char const digits[] = "0123456789abcdef";
            out += "\\x";
            out += digits[u >> 4];
            out += digits[u & 15];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

inline std::uint64_t inode_offset(erofs_image_info const& info, std::uint64_t nid) noexcept
{
    return std::uint64_t(info.meta_blkaddr) * block_size + nid * slot_size;
}

/// A buffer of `size` bytes: `small` when it fits, else `large` resized.
template <std::size_t N>
std::span<std::byte> scratch(std::array<std::byte, N>& small, std::vector<std::byte>& large, std::size_t size)
{
    if (size <= N) return std::span(small.data(), size);
    large.resize(size);
    return large;
}

} // namespace detail::erofs_reader_impl

namespace detail {

/// The metadata blocks of one image: at most max_cached_blocks, the oldest replaced first.
struct erofs_reader_cache {
    static constexpr std::size_t arena_blocks = 16; ///< blocks allocated at once
    static_assert(erofs_image_reader::max_cached_blocks % arena_blocks == 0);

    std::mutex mutex;
    std::unordered_map<std::uint32_t, std::uint32_t> slot_of; ///< block → slot
    std::vector<std::uint32_t> block_of;                      ///< slot → block (reader_no_block: none)
    std::vector<std::unique_ptr<std::byte[]>> arenas;         ///< slot s: block s % arena_blocks of arena s / arena_blocks
    std::size_t victim = 0;                                   ///< the slot replaced next once all exist
    std::size_t last = 0;                                     ///< the slot found last

    std::byte* data(std::size_t slot) const noexcept
    {
        return arenas[slot / arena_blocks].get() + slot % arena_blocks * erofs::block_size;
    }

    /// Block `block`, or nullptr when not cached. Call with `mutex` held.
    std::byte const* find(std::uint32_t block)
    {
        if (last < block_of.size() && block_of[last] == block) return data(last);
        auto it = slot_of.find(block);
        if (it == slot_of.end()) return nullptr;
        last = it->second;
        return data(last);
    }

    /// Reads block `block` of `fd` into a slot; nullptr on failure. Call with `mutex` held.
    std::byte const* load(int fd, std::uint32_t block, error_code& ec, std::string* why, char const* what)
    {
        using namespace erofs_reader_impl;
        std::uint64_t const at = std::uint64_t(block) * block_size;
        std::size_t slot;
        if (block_of.size() < erofs_image_reader::max_cached_blocks) {
            slot = block_of.size();
            if (slot / arena_blocks == arenas.size())
                arenas.push_back(std::make_unique_for_overwrite<std::byte[]>(arena_blocks * block_size));
            if (!pread_exact(fd, at, std::span(data(slot), block_size), ec, why, what)) return nullptr;
            block_of.push_back(block);
        } else {
            slot = victim;
            if (block_of[slot] != reader_no_block) slot_of.erase(block_of[slot]);
            block_of[slot] = reader_no_block;
            if (!pread_exact(fd, at, std::span(data(slot), block_size), ec, why, what)) return nullptr;
            block_of[slot] = block;
            victim = (victim + 1) % block_of.size();
        }
        slot_of.emplace(block, static_cast<std::uint32_t>(slot));
        last = slot;
        return data(slot);
    }
};

OCISTORE_DECL void erofs_reader_cache_deleter::operator()(erofs_reader_cache* cache) const noexcept { delete cache; }

} // namespace detail

OCISTORE_DECL erofs_image_info parse_erofs_superblock(std::span<std::byte const> first_block, error_code& ec,
                                                      std::string* why)
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    erofs_image_info info;
    auto bad = [&](std::string msg) {
        detail::fail(ec, why, error::invalid_archive, "EROFS superblock: " + msg);
        return erofs_image_info{};
    };
    if (first_block.size() < block_size) {
        detail::fail(ec, why, error::truncated,
                     "EROFS superblock: the image is " + num(first_block.size()) + " bytes, shorter than one 4096-byte block");
        return {};
    }
    std::byte const* p = first_block.data() + superblock_offset;
    if (std::uint32_t m = load_le32(p); m != magic)
        return bad("bad magic " + hex32(m) + " (expected " + hex32(magic) + ")");
    if (auto bits = std::to_integer<unsigned>(p[0x0C]); bits != block_size_bits)
        return bad("block size 2^" + num(bits) + " is not supported (only 4096-byte blocks)");
    info.feature_compat = load_le32(p + 0x08);
    if (info.feature_compat & feature_compat_sb_chksum) {
        std::array<std::byte, block_size - superblock_offset> copy;
        std::memcpy(copy.data(), p, copy.size());
        std::memset(copy.data() + 4, 0, 4);
        std::uint32_t const want = load_le32(p + 4);
        std::uint32_t const got = crc32c(0xFFFFFFFFu, copy);
        if (want != got)
            return bad("checksum " + hex32(want) + " does not match the computed CRC32C " + hex32(got));
    }
    std::uint32_t const sb_size = superblock_size + 16u * std::to_integer<std::uint32_t>(p[0x0D]);
    if (superblock_offset + sb_size > block_size)
        return bad("sb_extslots " + num(std::to_integer<unsigned>(p[0x0D])) + " extends the superblock past block 0");
    info.root_nid = load_le16(p + 0x0E);
    info.inodes = load_le64(p + 0x10);
    info.build_time = load_le64(p + 0x18);
    info.build_time_nsec = load_le32(p + 0x20);
    info.blocks = load_le32(p + 0x24);
    info.meta_blkaddr = load_le32(p + 0x28);
    info.xattr_blkaddr = load_le32(p + 0x2C);
    std::memcpy(info.uuid.data(), p + 0x30, 16);
    std::memcpy(info.volume_name.data(), p + 0x40, 16);
    info.feature_incompat = load_le32(p + 0x50);
    std::uint16_t const extra_devices = load_le16(p + 0x56);
    info.devt_slotoff = load_le16(p + 0x58);
    unsigned const dirblkbits = std::to_integer<unsigned>(p[0x5A]);

    if (info.feature_incompat & ~reader_known_incompat)
        return bad("unsupported incompatible features " + hex32(info.feature_incompat & ~reader_known_incompat));
    if (dirblkbits != 0) return bad("dirblkbits " + num(dirblkbits) + " is not supported (only 0)");
    if (info.build_time_nsec >= 1000000000u) return bad("build_time_nsec " + num(info.build_time_nsec) + " is not below 10^9");
    if (info.blocks == 0) return bad("blocks is 0");
    std::uint64_t const image_bytes = std::uint64_t(info.blocks) * block_size;
    if (info.meta_blkaddr >= info.blocks)
        return bad("meta_blkaddr " + num(info.meta_blkaddr) + " is not below blocks " + num(info.blocks));
    if (info.xattr_blkaddr >= info.blocks)
        return bad("xattr_blkaddr " + num(info.xattr_blkaddr) + " is not below blocks " + num(info.blocks));
    if (inode_offset(info, info.root_nid) + compact_inode_size > image_bytes)
        return bad("root_nid " + num(info.root_nid) + " lies beyond the image's " + num(info.blocks) + " blocks");
    if (info.feature_incompat & erofs_incompat_device_table) {
        info.extra_devices = extra_devices;
        std::uint64_t const start = std::uint64_t(info.devt_slotoff) * reader_slot_size;
        std::uint64_t const end = start + std::uint64_t(extra_devices) * reader_slot_size;
        if (extra_devices && start < superblock_offset + sb_size)
            return bad("devt_slotoff " + num(info.devt_slotoff) + " places the device table inside the superblock");
        if (end > image_bytes)
            return bad("the device table (" + num(extra_devices) + " slots at byte " + num(start) +
                       ") lies beyond the image's " + num(info.blocks) + " blocks");
        if (end <= first_block.size()) info.devices = parse_slots(first_block.subspan(start), extra_devices);
    }
    return info;
}

OCISTORE_DECL erofs_image_info parse_erofs_superblock(std::span<std::byte const> first_block)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return parse_erofs_superblock(first_block, ec, why); });
}

OCISTORE_DECL erofs_image_reader::erofs_image_reader(erofs_image_reader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), owned_(std::exchange(other.owned_, false)), info_(std::move(other.info_)),
      cache_(std::move(other.cache_))
{
}

OCISTORE_DECL erofs_image_reader& erofs_image_reader::operator=(erofs_image_reader&& other) noexcept
{
    if (this != &other) {
        if (owned_ && fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        owned_ = std::exchange(other.owned_, false);
        info_ = std::move(other.info_);
        cache_ = std::move(other.cache_);
    }
    return *this;
}

OCISTORE_DECL erofs_image_reader::~erofs_image_reader()
{
    if (owned_ && fd_ >= 0) ::close(fd_);
}

OCISTORE_DECL erofs_image_reader erofs_image_reader::open_fd(int fd, bool owned, error_code& ec, std::string* why)
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    erofs_image_reader r;
    r.fd_ = fd;
    r.owned_ = owned;
    if (fd < 0) {
        r.owned_ = false;
        detail::fail(ec, why, error::invalid_argument, "erofs_image_reader: invalid file descriptor");
        return {};
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        errno_fail(ec, why, errno, "EROFS image: fstat");
        return {};
    }
    std::uint64_t const file_size = static_cast<std::uint64_t>(st.st_size);
    std::vector<std::byte> block0(block_size);
    if (file_size < block_size) {
        detail::fail(ec, why, error::truncated,
                     "EROFS image: the file is " + num(file_size) + " bytes, shorter than one 4096-byte block");
        return {};
    }
    if (!pread_exact(fd, 0, block0, ec, why, "EROFS superblock")) return {};
    r.info_ = parse_erofs_superblock(block0, ec, why);
    if (ec) return {};
    std::uint64_t const image_bytes = std::uint64_t(r.info_.blocks) * block_size;
    if (file_size < image_bytes) {
        detail::fail(ec, why, error::truncated,
                     "EROFS image: the file is " + num(file_size) + " bytes but the superblock declares " +
                         num(r.info_.blocks) + " blocks (" + num(image_bytes) + " bytes)");
        return {};
    }
    if (r.info_.extra_devices && r.info_.devices.size() != r.info_.extra_devices) {
        std::vector<std::byte> table(std::size_t(r.info_.extra_devices) * reader_slot_size);
        if (!r.read_image(std::uint64_t(r.info_.devt_slotoff) * reader_slot_size, table, ec, why, "the device table"))
            return {};
        r.info_.devices = parse_slots(table, r.info_.extra_devices);
    }
    r.cache_.reset(new detail::erofs_reader_cache());
    return r;
}

OCISTORE_DECL erofs_image_reader erofs_image_reader::open(std::filesystem::path const& path, error_code& ec,
                                                          std::string* why)
{
    ec.clear();
    if (why) why->clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        detail::erofs_reader_impl::errno_fail(ec, why, errno, "opening " + path.string());
        return {};
    }
    auto r = open_fd(fd, true, ec, why);
    if (ec && why) *why = path.string() + ": " + *why;
    return r;
}

OCISTORE_DECL erofs_image_reader erofs_image_reader::open(std::filesystem::path const& path)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return open(path, ec, why); });
}

OCISTORE_DECL erofs_image_reader erofs_image_reader::from_fd(int fd, error_code& ec, std::string* why)
{
    return open_fd(fd, false, ec, why);
}

OCISTORE_DECL erofs_image_reader erofs_image_reader::from_fd(int fd)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return from_fd(fd, ec, why); });
}

OCISTORE_DECL bool erofs_image_reader::read_image(std::uint64_t offset, std::span<std::byte> out, error_code& ec,
                                                  std::string* why, char const* what) const
{
    using namespace detail::erofs_reader_impl;
    return in_image(info_, offset, out.size(), ec, why, what) && pread_exact(fd_, offset, out, ec, why, what);
}

OCISTORE_DECL bool erofs_image_reader::read_meta(std::uint64_t offset, std::span<std::byte> out, error_code& ec,
                                                 std::string* why, char const* what) const
{
    using namespace detail::erofs_reader_impl;
    if (!cache_ || out.size() > reader_cache_bypass) return read_image(offset, out, ec, why, what);
    if (!in_image(info_, offset, out.size(), ec, why, what)) return false;
    auto& cache = *cache_;
    std::lock_guard lock(cache.mutex);
    while (!out.empty()) {
        auto const block = static_cast<std::uint32_t>(offset / block_size);
        std::size_t const within = static_cast<std::size_t>(offset % block_size);
        std::size_t const k = std::min<std::size_t>(out.size(), block_size - within);
        std::byte const* data = cache.find(block);
        if (!data && !(data = cache.load(fd_, block, ec, why, what))) return false;
        std::memcpy(out.data(), data + within, k);
        out = out.subspan(k);
        offset += k;
    }
    return true;
}

OCISTORE_DECL erofs_inode_info erofs_image_reader::inode(std::uint64_t nid, error_code& ec, std::string* why) const
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    if (!is_open()) {
        detail::fail(ec, why, error::invalid_argument, "erofs_image_reader: not open");
        return {};
    }
    auto who = [&] { return "inode nid " + num(nid); };
    auto bad = [&](std::string msg) {
        detail::fail(ec, why, error::invalid_archive, who() + ": " + msg);
        return erofs_inode_info{};
    };
    std::uint64_t const image_bytes = std::uint64_t(info_.blocks) * block_size;
    if (nid > image_bytes / slot_size || inode_offset(info_, nid) + compact_inode_size > image_bytes)
        return bad("lies beyond the image's " + num(info_.blocks) + " blocks");
    std::uint64_t const off = inode_offset(info_, nid);
    std::array<std::byte, extended_inode_size> rec{};
    if (!read_meta(off, std::span(rec.data(), compact_inode_size), ec, why, "an inode record")) return {};
    std::uint16_t const format = load_le16(rec.data());
    if (format & ~0xFu) return bad("unknown i_format bits " + hex32(format));
    erofs_inode_info n;
    n.nid = nid;
    n.extended = (format & 1) != 0;
    unsigned const layout = (format >> 1) & 7;
    if (layout == 1 || layout == 3) return bad("compressed inodes are not supported");
    if (layout != 0 && layout != 2 && layout != 4) return bad("unknown data layout " + num(layout));
    n.layout = static_cast<data_layout>(layout);
    if (n.extended && !read_meta(off, rec, ec, why, "an extended inode record")) return {};
    std::byte const* p = rec.data();
    std::uint16_t const icount = load_le16(p + 0x02);
    n.mode = load_le16(p + 0x04);
    std::uint32_t const i_u = load_le32(p + 0x10);
    n.ino = load_le32(p + 0x14);
    if (n.extended) {
        n.size = load_le64(p + 0x08);
        n.uid = load_le32(p + 0x18);
        n.gid = load_le32(p + 0x1C);
        n.mtime = static_cast<std::int64_t>(load_le64(p + 0x20));
        n.mtime_nsec = load_le32(p + 0x28);
        n.nlink = load_le32(p + 0x2C);
    } else {
        n.nlink = load_le16(p + 0x06);
        n.size = load_le32(p + 0x08);
        // Newer writers store the mtime as an offset from build_time in the formerly reserved word.
        n.mtime = static_cast<std::int64_t>(info_.build_time + load_le32(p + 0x0C));
        n.mtime_nsec = info_.build_time_nsec;
        n.uid = load_le16(p + 0x18);
        n.gid = load_le16(p + 0x1A);
    }
    if (n.mtime_nsec >= 1000000000u) return bad("mtime_nsec " + num(n.mtime_nsec) + " is not below 10^9");
    if (type_of(n.mode) == file_type::unknown) return bad("mode 0" + [&] {
        std::string s;
        for (int i = 5; i >= 0; --i) s += static_cast<char>('0' + ((n.mode >> (3 * i)) & 7));
        return s;
    }() + " has no known file type");

    std::uint32_t const isize = n.extended ? extended_inode_size : compact_inode_size;
    n.xattr_ibody_size = icount ? xattr_ibody_header_size + 4u * (icount - 1u) : 0;
    std::uint64_t const body = off + isize + n.xattr_ibody_size; // end of the inode and its xattrs
    if (body > image_bytes) return bad("its xattrs (" + num(n.xattr_ibody_size) + " bytes) run past the image");

    switch (n.type()) {
    case s_ifchr:
    case s_ifblk: n.rdev = i_u; break;
    case s_ififo:
    case s_ifsock: break;
    default: {
        std::uint64_t const nblocks = n.size / block_size + (n.size % block_size != 0);
        if (n.layout == data_layout::flat_plain || n.layout == data_layout::flat_inline) {
            n.raw_blkaddr = i_u;
            std::uint64_t const full = n.layout == data_layout::flat_inline && nblocks ? nblocks - 1 : nblocks;
            if (full && std::uint64_t(i_u) + full > info_.blocks)
                return bad("data blocks " + num(i_u) + ".." + num(std::uint64_t(i_u) + full - 1) +
                           " lie beyond the image's " + num(info_.blocks) + " blocks");
            if (n.layout == data_layout::flat_inline && nblocks) {
                std::uint64_t const tail = n.size - full * block_size;
                if (body % block_size + tail > block_size)
                    return bad("its inline tail of " + num(tail) + " bytes crosses a block boundary");
                if (body + tail > image_bytes) return bad("its inline tail runs past the image");
            }
        } else { // chunk_based
            std::uint16_t const cformat = static_cast<std::uint16_t>(i_u & 0xFFFF);
            if (cformat & ~(reader_chunk_blkbits_mask | reader_chunk_indexes))
                return bad("unknown chunk format bits " + hex32(cformat));
            n.chunk_bits = block_size_bits + (cformat & reader_chunk_blkbits_mask);
            std::uint64_t const nchunks = n.size ? ((n.size - 1) >> n.chunk_bits) + 1 : 0;
            if (nchunks > max_chunks) {
                detail::fail(ec, why, error::limit_exceeded,
                             who() + ": " + num(nchunks) + " chunks exceed the reader's cap of " + num(max_chunks));
                return {};
            }
            bool const indexes = (cformat & reader_chunk_indexes) != 0;
            std::uint64_t const unit = indexes ? 8 : 4;
            std::uint64_t const pos = (body + unit - 1) / unit * unit;
            if (pos + nchunks * unit > image_bytes)
                return bad(num(nchunks) + " chunk indexes at byte " + num(pos) + " run past the image");
            std::array<std::byte, 256> small;
            std::vector<std::byte> large;
            auto const table = scratch(small, large, static_cast<std::size_t>(nchunks * unit));
            if (!read_meta(pos, table, ec, why, "a chunk index table")) return {};
            std::uint32_t const mask = std::bit_ceil(std::uint32_t(info_.extra_devices) + 1) - 1;
            n.chunks.resize(static_cast<std::size_t>(nchunks));
            for (std::size_t i = 0; i < n.chunks.size(); ++i) {
                erofs_chunk& c = n.chunks[i];
                if (indexes) {
                    c.device_id = static_cast<std::uint16_t>(load_le16(table.data() + 8 * i + 2) & mask);
                    c.block = load_le32(table.data() + 8 * i + 4);
                } else {
                    c.block = load_le32(table.data() + 4 * i);
                }
                if (c.block == null_addr) continue;
                if (c.device_id != 0 && n.type() != s_ifreg)
                    return bad("chunk " + num(i) + " of a non-regular inode lies on device " + num(c.device_id) +
                               " (only regular files may use extra devices)");
                if (c.device_id > info_.extra_devices)
                    return bad("chunk " + num(i) + " names device " + num(c.device_id) + " but the image has " +
                               num(info_.extra_devices) + " extra devices");
                std::uint64_t const from = std::uint64_t(i) << n.chunk_bits;
                std::uint64_t const len = std::min<std::uint64_t>(std::uint64_t(1) << n.chunk_bits, n.size - from);
                std::uint64_t const need = (len + block_size - 1) / block_size;
                std::uint64_t const limit = c.device_id ? info_.devices[c.device_id - 1].blocks : info_.blocks;
                if (limit != 0 && std::uint64_t(c.block) + need > limit) // a 0-block slot (erofs-utils 1.5) is unbounded
                    return bad("chunk " + num(i) + " (blocks " + num(c.block) + ".." + num(c.block + need - 1) +
                               " of device " + num(c.device_id) + ") runs past the device's " + num(limit) + " blocks");
            }
        }
        break;
    }
    }

    if (n.xattr_ibody_size) {
        std::array<std::byte, 512> small;
        std::vector<std::byte> large;
        auto const ibody = scratch(small, large, n.xattr_ibody_size);
        if (!read_meta(off + isize, ibody, ec, why, "an inline xattr area")) return {};
        std::size_t const shared = std::to_integer<std::size_t>(ibody[4]);
        n.xattr_shared_count = static_cast<std::uint8_t>(shared);
        if (xattr_ibody_header_size + 4 * shared > ibody.size())
            return bad(num(shared) + " shared xattr ids do not fit its " + num(ibody.size()) + "-byte xattr area");
        // Decodes the entry at `e` (header already known to fit in `avail` bytes).
        auto decode = [&](std::byte const* e, std::size_t avail, char const* where,
                          std::pair<std::string, std::string>& out) -> std::size_t {
            std::size_t const name_len = std::to_integer<std::size_t>(e[0]);
            std::uint8_t const index = std::to_integer<std::uint8_t>(e[1]);
            std::size_t const value_len = load_le16(e + 2);
            std::size_t const need = xattr_entry_size(name_len, value_len);
            if (need > avail) {
                bad(std::string(where) + " xattr entry of " + num(need) + " bytes overruns its area (" + num(avail) +
                    " bytes left)");
                return 0;
            }
            if (index & 0x80) {
                bad("long xattr name prefixes are not supported (name index " + hex32(index) + ")");
                return 0;
            }
            char const* prefix = xattr_prefix(index);
            if (!prefix) {
                bad(std::string(where) + " xattr has unknown name index " + num(index));
                return 0;
            }
            std::string_view suffix(reinterpret_cast<char const*>(e + 4), name_len);
            if (name_len == 0 && index != xattr_index_posix_acl_access && index != xattr_index_posix_acl_default) {
                bad(std::string(where) + " xattr with prefix \"" + prefix + "\" has an empty name");
                return 0;
            }
            if (suffix.find('\0') != std::string_view::npos) {
                bad(std::string(where) + " xattr name " + quote(suffix) + " contains a NUL byte");
                return 0;
            }
            out.first = std::string(prefix).append(suffix);
            out.second.assign(reinterpret_cast<char const*>(e + 4 + name_len), value_len);
            return need;
        };
        std::size_t pos = xattr_ibody_header_size + 4 * shared;
        while (pos < ibody.size()) {
            if (ibody.size() - pos < xattr_entry_header_size)
                return bad("a partial xattr entry header at the end of its xattr area");
            std::pair<std::string, std::string> x;
            std::size_t used = decode(ibody.data() + pos, ibody.size() - pos, "an inline", x);
            if (!used) return {};
            if (n.xattrs.size() >= max_xattrs) {
                detail::fail(ec, why, error::limit_exceeded, who() + ": more than " + num(max_xattrs) + " xattrs");
                return {};
            }
            n.xattrs.push_back(std::move(x));
            pos += used;
        }
        std::array<std::byte, 512> entry_small;
        std::vector<std::byte> entry_large;
        for (std::size_t i = 0; i < shared; ++i) {
            std::uint32_t const id = load_le32(ibody.data() + xattr_ibody_header_size + 4 * i);
            std::uint64_t const at = std::uint64_t(info_.xattr_blkaddr) * block_size + std::uint64_t(id) * 4;
            if (at + xattr_entry_header_size > image_bytes)
                return bad("shared xattr id " + num(id) + " lies beyond the image");
            std::array<std::byte, xattr_entry_header_size> head;
            if (!read_meta(at, head, ec, why, "a shared xattr entry")) return {};
            std::size_t const size =
                xattr_entry_size(std::to_integer<std::size_t>(head[0]), load_le16(head.data() + 2));
            if (at + size > image_bytes) return bad("shared xattr id " + num(id) + " runs past the image");
            auto const entry = scratch(entry_small, entry_large, size);
            if (!read_meta(at, entry, ec, why, "a shared xattr entry")) return {};
            std::pair<std::string, std::string> x;
            if (!decode(entry.data(), entry.size(), "a shared", x)) return {};
            if (n.xattrs.size() >= max_xattrs) {
                detail::fail(ec, why, error::limit_exceeded, who() + ": more than " + num(max_xattrs) + " xattrs");
                return {};
            }
            n.xattrs.push_back(std::move(x));
        }
    }
    return n;
}

OCISTORE_DECL erofs_inode_info erofs_image_reader::inode(std::uint64_t nid) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return inode(nid, ec, why); });
}

OCISTORE_DECL std::size_t erofs_image_reader::read_impl(erofs_inode_info const& file, std::uint64_t offset,
                                                        std::span<std::byte> out, error_code& ec, std::string* why,
                                                        std::span<int const> devices, bool meta) const
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    if (!is_open()) {
        detail::fail(ec, why, error::invalid_argument, "erofs_image_reader: not open");
        return 0;
    }
    if (offset >= file.size) return 0;
    std::size_t const n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), file.size - offset));
    auto who = [&] { return "inode nid " + num(file.nid); };
    auto fetch = [&](std::uint64_t at, std::span<std::byte> to, char const* what) {
        return meta ? read_meta(at, to, ec, why, what) : read_image(at, to, ec, why, what);
    };
    std::size_t done = 0;
    if (file.layout != data_layout::chunk_based && offset >= (std::uint64_t(info_.blocks) + 1) * block_size) {
        detail::fail(ec, why, error::invalid_archive,
                     who() + ": byte " + num(offset) + " of a flat inode lies beyond the image's " + num(info_.blocks) +
                         " blocks");
        return 0;
    }
    switch (file.layout) {
    case data_layout::flat_plain:
        if (!fetch(std::uint64_t(file.raw_blkaddr) * block_size + offset, out.first(n), "file data")) return 0;
        return n;
    case data_layout::flat_inline: {
        std::uint64_t const full = (file.size - 1) / block_size * block_size; // bytes in whole blocks
        if (offset < full) {
            std::size_t const k = static_cast<std::size_t>(std::min<std::uint64_t>(n, full - offset));
            if (!fetch(std::uint64_t(file.raw_blkaddr) * block_size + offset, out.first(k), "file data")) return 0;
            done = k;
        }
        if (done < n) {
            std::uint64_t const tail_at = inode_offset(info_, file.nid) +
                                          (file.extended ? extended_inode_size : compact_inode_size) +
                                          file.xattr_ibody_size;
            if (!fetch(tail_at + (offset + done - full), out.subspan(done, n - done), "inline file data")) return 0;
        }
        return n;
    }
    case data_layout::chunk_based: {
        if (file.chunk_bits < block_size_bits || file.chunk_bits > block_size_bits + reader_chunk_blkbits_mask) {
            detail::fail(ec, why, error::invalid_archive,
                         who() + ": chunk size 2^" + num(file.chunk_bits) + " is invalid");
            return 0;
        }
        std::uint64_t const chunk = std::uint64_t(1) << file.chunk_bits;
        while (done < n) {
            std::uint64_t const pos = offset + done;
            std::uint64_t const index = pos >> file.chunk_bits;
            std::uint64_t const within = pos & (chunk - 1);
            std::size_t const k = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, chunk - within));
            auto piece = out.subspan(done, k);
            if (index >= file.chunks.size()) {
                detail::fail(ec, why, error::invalid_archive,
                             who() + ": byte " + num(pos) + " lies in chunk " + num(index) + " but the file has " +
                                 num(file.chunks.size()) + " chunks");
                return 0;
            }
            erofs_chunk const& c = file.chunks[index];
            if (c.block == null_addr) {
                std::memset(piece.data(), 0, piece.size());
            } else if (c.device_id == 0 && (devices.empty() || devices[0] < 0)) {
                if (!fetch(std::uint64_t(c.block) * block_size + within, piece, "chunk data")) return 0;
            } else {
                if (c.device_id >= devices.size() || devices[c.device_id] < 0) {
                    detail::fail(ec, why, error::invalid_argument,
                                 who() + ": chunk " + num(index) + " lies on device " + num(c.device_id) +
                                     ", whose descriptor was not given");
                    return 0;
                }
                std::uint64_t const limit = c.device_id == 0 ? info_.blocks
                                            : c.device_id <= info_.devices.size()
                                                ? info_.devices[c.device_id - 1].blocks
                                                : 0;
                std::uint64_t const at = std::uint64_t(c.block) * block_size + within;
                if (limit != 0 && at + k > limit * block_size) {
                    detail::fail(ec, why, error::invalid_archive,
                                 who() + ": chunk " + num(index) + " runs past device " + num(c.device_id) + "'s " +
                                     num(limit) + " blocks");
                    return 0;
                }
                if (!pread_exact(devices[c.device_id], at, piece, ec, why, "chunk data")) return 0;
            }
            done += k;
        }
        return n;
    }
    }
    detail::fail(ec, why, error::invalid_archive, who() + ": unknown data layout");
    return 0;
}

OCISTORE_DECL std::size_t erofs_image_reader::read(erofs_inode_info const& file, std::uint64_t offset,
                                                   std::span<std::byte> out, error_code& ec,
                                                   std::span<int const> devices) const
{
    return read_impl(file, offset, out, ec, nullptr, devices, false);
}

OCISTORE_DECL std::size_t erofs_image_reader::read(erofs_inode_info const& file, std::uint64_t offset,
                                                   std::span<std::byte> out, std::span<int const> devices) const
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return read_impl(file, offset, out, ec, why, devices, false); });
}

OCISTORE_DECL bool erofs_image_reader::read_meta_data(erofs_inode_info const& file, std::uint64_t offset,
                                                      std::span<std::byte> out, error_code& ec, std::string* why) const
{
    std::size_t got = read_impl(file, offset, out, ec, why, {}, true);
    if (ec) return false;
    if (got != out.size()) {
        detail::fail(ec, why, error::invalid_archive,
                     "inode nid " + std::to_string(file.nid) + ": data ends before byte " +
                         std::to_string(offset + out.size()));
        return false;
    }
    return true;
}

OCISTORE_DECL std::size_t erofs_image_reader::read_dir_into(erofs_inode_info const& dir,
                                                            std::vector<erofs_dirent_info>& out, error_code& ec,
                                                            std::string* why) const
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    auto who = [&] { return "directory nid " + num(dir.nid); };
    if (!dir.is_dir()) {
        detail::fail(ec, why, error::invalid_argument, "inode nid " + num(dir.nid) + " is not a directory");
        return 0;
    }
    if (dir.size > max_dir_size) {
        detail::fail(ec, why, error::limit_exceeded,
                     who() + ": " + num(dir.size) + " bytes exceed the reader's cap of " + num(max_dir_size));
        return 0;
    }
    auto bad = [&](std::string msg) {
        detail::fail(ec, why, error::invalid_archive, who() + ": " + msg);
        return std::size_t(0);
    };
    if (dir.size == 0) return bad("size is 0 (no \".\" entry)");
    std::size_t filled = 0;
    std::array<std::byte, block_size> buf;
    std::uint64_t const nblocks = (dir.size + block_size - 1) / block_size;
    for (std::uint64_t b = 0; b < nblocks; ++b) {
        std::size_t const len = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, dir.size - b * block_size));
        if (!read_meta_data(dir, b * block_size, std::span(buf.data(), len), ec, why)) return 0;
        auto where = [&] { return "block " + num(b); };
        if (len < dirent_size) return bad(where() + " holds " + num(len) + " bytes, less than one dirent");
        std::size_t const first = load_le16(buf.data() + 8);
        if (first < dirent_size || first % dirent_size || first >= len)
            return bad(where() + ": the first nameoff " + num(first) + " is not a valid dirent table size");
        std::size_t const count = first / dirent_size;
        if (b == 0) out.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            std::byte const* d = buf.data() + i * dirent_size;
            std::size_t const nameoff = load_le16(d + 8);
            std::size_t const end = i + 1 < count ? load_le16(d + dirent_size + 8) : len;
            if (nameoff < first || nameoff >= end || end > len)
                return bad(where() + ", dirent " + num(i) + ": nameoff " + num(nameoff) + " (next " + num(end) +
                           ") is out of order or outside the block");
            std::string_view name(reinterpret_cast<char const*>(buf.data()) + nameoff, end - nameoff);
            if (i + 1 == count) name = name.substr(0, name.find('\0'));
            if (name.empty()) return bad(where() + ", dirent " + num(i) + ": empty name");
            if (name.size() > max_name_length)
                return bad(where() + ", dirent " + num(i) + ": a name of " + num(name.size()) + " bytes exceeds 255");
            if (name.find('\0') != std::string_view::npos)
                return bad(where() + ", dirent " + num(i) + ": name " + quote(name) + " contains a NUL byte");
            if (name.find('/') != std::string_view::npos)
                return bad(where() + ", dirent " + num(i) + ": name " + quote(name) + " contains '/'");
            unsigned const type = std::to_integer<unsigned>(d[10]);
            if (type > static_cast<unsigned>(file_type::symlink))
                return bad(where() + ", dirent " + num(i) + " (" + quote(name) + "): unknown file type " + num(type));
            if (filled && !(out[filled - 1].name < name))
                return bad(where() + ": name " + quote(name) + " does not sort after " + quote(out[filled - 1].name));
            if (filled == out.size()) out.emplace_back();
            erofs_dirent_info& e = out[filled++];
            e.name.assign(name);
            e.nid = load_le64(d);
            e.type = static_cast<file_type>(type);
        }
    }
    return filled;
}

OCISTORE_DECL std::vector<erofs_dirent_info> erofs_image_reader::read_dir(erofs_inode_info const& dir, error_code& ec,
                                                                          std::string* why) const
{
    std::vector<erofs_dirent_info> out;
    std::size_t const n = read_dir_into(dir, out, ec, why);
    if (ec) return {};
    out.resize(n);
    return out;
}

OCISTORE_DECL std::vector<erofs_dirent_info> erofs_image_reader::read_dir(erofs_inode_info const& dir) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return read_dir(dir, ec, why); });
}

OCISTORE_DECL std::string erofs_image_reader::read_link(erofs_inode_info const& link, error_code& ec,
                                                        std::string* why) const
{
    using namespace detail::erofs_reader_impl;
    ec.clear();
    if (why) why->clear();
    auto who = [&] { return "symlink nid " + num(link.nid); };
    if (!link.is_symlink()) {
        detail::fail(ec, why, error::invalid_argument, "inode nid " + num(link.nid) + " is not a symlink");
        return {};
    }
    if (link.size == 0) {
        detail::fail(ec, why, error::invalid_archive, who() + ": empty target");
        return {};
    }
    if (link.size > max_symlink_size) {
        detail::fail(ec, why, error::limit_exceeded,
                     who() + ": a target of " + num(link.size) + " bytes exceeds " + num(max_symlink_size));
        return {};
    }
    std::string target(static_cast<std::size_t>(link.size), '\0');
    if (!read_meta_data(link, 0, std::as_writable_bytes(std::span(target.data(), target.size())), ec, why)) return {};
    if (target.find('\0') != std::string::npos) {
        detail::fail(ec, why, error::invalid_archive, who() + ": the target contains a NUL byte");
        return {};
    }
    return target;
}

OCISTORE_DECL std::string erofs_image_reader::read_link(erofs_inode_info const& link) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return read_link(link, ec, why); });
}

OCISTORE_DECL std::string erofs_image_reader::type_mismatch(erofs_dirent_info const& d, erofs_inode_info const& n)
{
    auto const want = detail::erofs_reader_impl::type_of(n.mode);
    if (d.type == want) return {};
    return "the dirent's file type " + std::to_string(static_cast<unsigned>(d.type)) +
           " does not match the inode's type " + std::to_string(static_cast<unsigned>(want));
}

} // namespace ocistore
