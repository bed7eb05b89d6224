// ocistore/erofs/erofs_format.hpp: the EROFS on-disk format (uncompressed subset): constants, record encoders, CRC32C.
#pragma once

#include <ocistore/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ocistore::detail {
/// The CRC32C (Castagnoli, reflected 0x82F63B78) byte table.
inline constexpr std::array<std::uint32_t, 256> erofs_crc32c_table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}();
} // namespace ocistore::detail

/** The subset of the EROFS on-disk format that ocistore writes: 4 KiB blocks, uncompressed
    flat inodes (plain and tail-inline), chunk-based inodes with a device table, compact and
    extended inodes, inline and shared xattrs, directories. Everything on disk is little-endian. The authoritative definition is the
    Linux kernel's fs/erofs/erofs_fs.h; the encoders here are written from it. */
namespace ocistore::erofs {

inline constexpr std::uint32_t block_size = 4096;            ///< the only block size written
inline constexpr std::uint8_t block_size_bits = 12;
inline constexpr std::uint32_t superblock_offset = 1024;     ///< byte offset of the superblock
inline constexpr std::uint32_t superblock_size = 128;
inline constexpr std::uint32_t magic = 0xE0F5E1E2;
inline constexpr std::uint32_t slot_size = 32;               ///< NID unit: inode n lives at meta_blkaddr·4096 + 32·n
inline constexpr std::uint32_t compact_inode_size = 32;
inline constexpr std::uint32_t extended_inode_size = 64;
inline constexpr std::uint32_t xattr_ibody_header_size = 12;
inline constexpr std::uint32_t xattr_entry_header_size = 4;
inline constexpr std::uint32_t dirent_size = 12;
inline constexpr std::uint32_t max_name_length = 255;
inline constexpr std::uint32_t null_addr = 0xFFFFFFFF;       ///< "no block"

inline constexpr std::uint32_t feature_compat_sb_chksum = 0x1;
inline constexpr std::uint32_t feature_incompat_chunked_file = 0x4; ///< chunk-based inodes
inline constexpr std::uint32_t feature_incompat_device_table = 0x8; ///< extra devices (devt_slotoff, extra_devices)

inline constexpr std::uint32_t devt_slot_size = 128;         ///< one extra-device table slot
inline constexpr std::uint32_t chunk_index_size = 8;         ///< {le16 advise, le16 device_id, le32 blkaddr}
inline constexpr std::uint16_t chunk_format_indexes = 0x20;  ///< i_u of a chunk-based inode: indexes | (chunkbits − 12)
inline constexpr std::uint32_t max_chunk_bits = block_size_bits + 31; ///< the 5-bit chunk blkbits field's limit

/// Data layouts (bits 1..3 of i_format).
enum class data_layout : std::uint16_t { flat_plain = 0, flat_inline = 2, chunk_based = 4 };

/// Directory entry file types (the generic FT_* values).
enum class file_type : std::uint8_t {
    unknown = 0, regular = 1, directory = 2, char_device = 3, block_device = 4, fifo = 5, socket = 6, symlink = 7
};

/// POSIX file type bits of i_mode.
inline constexpr std::uint16_t s_ifmt = 0170000, s_ifsock = 0140000, s_iflnk = 0120000, s_ifreg = 0100000,
                               s_ifblk = 0060000, s_ifdir = 0040000, s_ifchr = 0020000, s_ififo = 0010000;

/// Xattr name prefix indexes (e_name_index).
inline constexpr std::uint8_t xattr_index_user = 1, xattr_index_posix_acl_access = 2,
                              xattr_index_posix_acl_default = 3, xattr_index_trusted = 4,
                              xattr_index_security = 6;

/// Stores `v` little-endian at `p`.
inline void store_le16(std::byte* p, std::uint16_t v) noexcept
{
    p[0] = std::byte(v & 0xff);
    p[1] = std::byte(v >> 8);
}
inline void store_le32(std::byte* p, std::uint32_t v) noexcept
{
    for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}
inline void store_le64(std::byte* p, std::uint64_t v) noexcept
{
    for (int i = 0; i < 8; ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}
/// Loads a little-endian value from `p`.
inline std::uint16_t load_le16(std::byte const* p) noexcept
{
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
inline std::uint32_t load_le32(std::byte const* p) noexcept
{
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
    return v;
}
inline std::uint64_t load_le64(std::byte const* p) noexcept
{
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
    return v;
}


/** CRC32C (Castagnoli, reflected) of `bytes` continuing from `crc`, without the final
    inversion: the kernel's `crc32c(seed, ...)`. The superblock checksum is
    `crc32c(0xFFFFFFFF, block0[1024..4096))` with the checksum field zeroed. */
inline std::uint32_t crc32c(std::uint32_t crc, std::span<std::byte const> bytes) noexcept
{
    for (std::byte b : bytes) crc = ocistore::detail::erofs_crc32c_table[(crc ^ std::to_integer<std::uint32_t>(b)) & 0xff] ^ (crc >> 8);
    return crc;
}

/// Linux `new_encode_dev`: the i_u of a device inode.
constexpr std::uint32_t encode_dev(std::uint32_t major, std::uint32_t minor) noexcept
{
    return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffu) << 12);
}

/// The fields of the superblock ocistore sets; the rest are zero.
struct superblock {
    std::uint32_t feature_compat = feature_compat_sb_chksum;
    std::uint16_t root_nid = 0;
    std::uint64_t inos = 0;
    std::uint64_t build_time = 0;       ///< mtime of every compact inode (two's complement of a signed time)
    std::uint32_t build_time_nsec = 0;
    std::uint32_t blocks = 0;           ///< image length / 4096
    std::uint32_t meta_blkaddr = 0;     ///< block of NID 0
    std::uint32_t xattr_blkaddr = 0;
    std::array<std::byte, 16> uuid{};
    std::array<std::byte, 16> volume_name{};
    std::uint32_t feature_incompat = 0;
    std::uint16_t extra_devices = 0;    ///< device table slots
    std::uint16_t devt_slotoff = 0;     ///< device table byte offset / 128

    /// Encodes the 128 bytes at offset 1024 (checksum field zero).
    void encode(std::span<std::byte, superblock_size> out) const noexcept
    {
        std::byte* p = out.data();
        for (auto& b : out) b = std::byte{0};
        store_le32(p + 0x00, magic);
        store_le32(p + 0x08, feature_compat);
        p[0x0C] = std::byte(block_size_bits);
        store_le16(p + 0x0E, root_nid);
        store_le64(p + 0x10, inos);
        store_le64(p + 0x18, build_time);
        store_le32(p + 0x20, build_time_nsec);
        store_le32(p + 0x24, blocks);
        store_le32(p + 0x28, meta_blkaddr);
        store_le32(p + 0x2C, xattr_blkaddr);
        for (std::size_t i = 0; i < 16; ++i) p[0x30 + i] = uuid[i];
        for (std::size_t i = 0; i < 16; ++i) p[0x40 + i] = volume_name[i];
        store_le32(p + 0x50, feature_incompat);
        store_le16(p + 0x56, extra_devices);
        store_le16(p + 0x58, devt_slotoff);
    }
};

/** Encodes block 0 of an image: zeros, the superblock at 1024, the first bytes of `after`
    (e.g. device table slots) at 1152, and the CRC32C over [1024, 4096) (set when
    `sb.feature_compat` has SB_CHKSUM). */
inline void encode_block0(superblock const& sb, std::span<std::byte, block_size> out,
                          std::span<std::byte const> after = {}) noexcept
{
    for (auto& b : out) b = std::byte{0};
    sb.encode(out.subspan<superblock_offset, superblock_size>());
    std::size_t const room = block_size - superblock_offset - superblock_size;
    for (std::size_t i = 0; i < after.size() && i < room; ++i) out[superblock_offset + superblock_size + i] = after[i];
    if (sb.feature_compat & feature_compat_sb_chksum) {
        std::uint32_t crc = crc32c(0xFFFFFFFFu, std::span<std::byte const>(out.data() + superblock_offset,
                                                                          block_size - superblock_offset));
        store_le32(out.data() + superblock_offset + 4, crc);
    }
}

/// The fields of an inode record; `encode_compact` / `encode_extended` place them.
struct inode_fields {
    data_layout layout = data_layout::flat_plain;
    std::uint16_t xattr_icount = 0; ///< 0, or 1 + (ibody size − 12) / 4
    std::uint16_t mode = 0;         ///< type bits | permission bits
    std::uint64_t size = 0;
    std::uint32_t i_u = 0;          ///< raw_blkaddr (flat), rdev (devices), 0 otherwise
    std::uint32_t ino = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint64_t mtime = 0;        ///< extended only
    std::uint32_t mtime_nsec = 0;   ///< extended only
    std::uint32_t nlink = 1;
};

/// Encodes a 32-byte compact inode. Precondition: the fields fit (uid, gid, nlink < 2^16, size < 2^32).
inline void encode_compact(inode_fields const& f, std::span<std::byte, compact_inode_size> out) noexcept
{
    std::byte* p = out.data();
    for (auto& b : out) b = std::byte{0};
    store_le16(p + 0x00, static_cast<std::uint16_t>(static_cast<std::uint16_t>(f.layout) << 1));
    store_le16(p + 0x02, f.xattr_icount);
    store_le16(p + 0x04, f.mode);
    store_le16(p + 0x06, static_cast<std::uint16_t>(f.nlink));
    store_le32(p + 0x08, static_cast<std::uint32_t>(f.size));
    store_le32(p + 0x10, f.i_u);
    store_le32(p + 0x14, f.ino);
    store_le16(p + 0x18, static_cast<std::uint16_t>(f.uid));
    store_le16(p + 0x1A, static_cast<std::uint16_t>(f.gid));
}

/// Encodes a 64-byte extended inode.
inline void encode_extended(inode_fields const& f, std::span<std::byte, extended_inode_size> out) noexcept
{
    std::byte* p = out.data();
    for (auto& b : out) b = std::byte{0};
    store_le16(p + 0x00, static_cast<std::uint16_t>(1u | (static_cast<std::uint16_t>(f.layout) << 1)));
    store_le16(p + 0x02, f.xattr_icount);
    store_le16(p + 0x04, f.mode);
    store_le64(p + 0x08, f.size);
    store_le32(p + 0x10, f.i_u);
    store_le32(p + 0x14, f.ino);
    store_le32(p + 0x18, f.uid);
    store_le32(p + 0x1C, f.gid);
    store_le64(p + 0x20, f.mtime);
    store_le32(p + 0x28, f.mtime_nsec);
    store_le32(p + 0x2C, f.nlink);
}

/// Encodes an 8-byte chunk index.
inline void encode_chunk_index(std::uint16_t device_id, std::uint32_t blkaddr,
                               std::span<std::byte, chunk_index_size> out) noexcept
{
    store_le16(out.data(), 0);
    store_le16(out.data() + 2, device_id);
    store_le32(out.data() + 4, blkaddr);
}

/// Encodes a 128-byte device table slot: `tag` (truncated to 64 bytes, NUL-padded), blocks, mapped_blkaddr.
inline void encode_device_slot(std::string_view tag, std::uint32_t blocks, std::uint32_t mapped_blkaddr,
                               std::span<std::byte, devt_slot_size> out) noexcept
{
    for (auto& b : out) b = std::byte{0};
    for (std::size_t i = 0; i < tag.size() && i < 64; ++i) out[i] = std::byte(static_cast<unsigned char>(tag[i]));
    store_le32(out.data() + 64, blocks);
    store_le32(out.data() + 68, mapped_blkaddr);
}

/// Encodes a 12-byte directory entry.
inline void encode_dirent(std::uint64_t nid, std::uint16_t nameoff, file_type type,
                          std::span<std::byte, dirent_size> out) noexcept
{
    store_le64(out.data(), nid);
    store_le16(out.data() + 8, nameoff);
    out[10] = std::byte(static_cast<std::uint8_t>(type));
    out[11] = std::byte{0};
}

/// An xattr name split into its prefix index and the suffix stored on disk.
struct xattr_name {
    std::uint8_t index = 0;
    std::string_view suffix;
};

/** Splits `name` into a short prefix index and suffix: "user.", "trusted.", "security.",
    and the two POSIX ACL names. Empty for a name with no short prefix, or an empty or
    over-long suffix where one is required. */
inline std::optional<xattr_name> split_xattr_name(std::string_view name) noexcept
{
    if (name == "system.posix_acl_access") return xattr_name{xattr_index_posix_acl_access, {}};
    if (name == "system.posix_acl_default") return xattr_name{xattr_index_posix_acl_default, {}};
    struct prefix {
        std::string_view text;
        std::uint8_t index;
    };
    static constexpr prefix prefixes[] = {
        {"user.", xattr_index_user}, {"trusted.", xattr_index_trusted}, {"security.", xattr_index_security}};
    for (auto const& p : prefixes)
        if (name.starts_with(p.text)) {
            auto suffix = name.substr(p.text.size());
            if (suffix.empty() || suffix.size() > 255) return std::nullopt;
            return xattr_name{p.index, suffix};
        }
    return std::nullopt;
}

/// Bytes of one xattr entry: header, suffix, value, padded to 4.
constexpr std::uint32_t xattr_entry_size(std::size_t suffix_len, std::size_t value_len) noexcept
{
    return static_cast<std::uint32_t>((xattr_entry_header_size + suffix_len + value_len + 3) & ~std::size_t(3));
}

} // namespace ocistore::erofs
