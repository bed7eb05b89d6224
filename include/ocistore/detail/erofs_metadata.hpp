// Internal: the metadata of an EROFS image (NIDs, inode records, xattrs, directories, block 0), shared by the layer and fsmeta writers.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/error.hpp>
#include <ocistore/tar_entry.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/** The metadata half of an image, written the same way for a layer and for an fsmeta:

    - NIDs breadth first from the root; inode records in 32-byte slots from `meta_blkaddr`,
      each the inode (compact where uid, gid, nlink, size and time allow, else extended),
      its xattr ibody, then its inline tail or its 8-byte-aligned chunk index array; a record
      that fits in a block never crosses one.
    - Shared xattrs: a name and value carried by several inodes goes once into the shared
      area (right after the records, `xattr_blkaddr = meta_blkaddr`) when that is smaller
      than the inline copies; inodes reference it by id (byte offset / 4).
    - Directories: ".", ".." and the children sorted by bytes, packed per block; the last
      partial block, like a symlink target, is tail-inlined when it fits the record's block.
    - The implicit-directory record (optional): a regular inode at NID 0, reachable from no
      directory, whose bytes are `implicit_record_magic` then the le64 NIDs of the
      directories no entry described. The root then follows it.
    - The build time is the most common (mtime, nsec) of the described inodes; implicit
      directories take it. */
namespace ocistore::detail::erofs_meta {

inline constexpr std::uint32_t no_node = std::numeric_limits<std::uint32_t>::max();

/// One chunk of a chunk-based regular file.
struct chunk_ref {
    std::uint16_t device_id = 0;              ///< 0 = this image, n = device table slot n − 1
    std::uint32_t block = erofs::null_addr;   ///< first block on that device; `null_addr` = a hole
};

/// One inode to write; node 0 is the root directory. Hardlinks are several names of one node.
struct node {
    std::uint16_t mode = 0;       ///< type bits | permission bits
    std::uint32_t uid = 0, gid = 0;
    std::int64_t mtime = 0;
    std::uint32_t mtime_nsec = 0;
    bool implicit = false;        ///< no entry described it: it takes the build time
    std::uint64_t size = 0;       ///< regular files
    std::uint32_t start_block = erofs::null_addr; ///< flat regular files: first data block in this image
    bool chunked = false;         ///< regular files: chunk-based (`chunks`, `chunk_bits`) instead of flat
    std::uint32_t chunk_bits = erofs::block_size_bits; ///< log2 of the chunk size in bytes, 12..max_chunk_bits
    std::vector<chunk_ref> chunks;///< ceil(size / chunk size) entries
    bool resident = false;        ///< a regular file whose bytes are `target`, stored like a symlink's
    std::uint32_t rdev = 0;       ///< devices: new_encode_dev form
    std::string target;           ///< symlinks (and resident files): the bytes
    std::vector<tar_xattr> xattrs;///< full names with a short EROFS prefix (split_xattr_name succeeds)
    std::map<std::string, std::uint32_t> children; ///< directories

    bool is_dir() const noexcept { return (mode & erofs::s_ifmt) == erofs::s_ifdir; }
    bool is_regular() const noexcept { return (mode & erofs::s_ifmt) == erofs::s_ifreg; }
};

/// The first bytes of an implicit-directory record.
inline constexpr std::string_view implicit_record_magic{"ocistore-idirs1\n", 16};

/** The NIDs listed by an implicit-directory record's bytes; false (and `nids` empty) when
    `bytes` is not such a record. */
OCISTORE_DECL bool parse_implicit_record(std::span<std::byte const> bytes, std::vector<std::uint64_t>& nids);

/// How write_metadata() lays the metadata out.
struct metadata_options {
    std::uint64_t meta_blkaddr = 1;   ///< first block of the metadata area; earlier blocks are the caller's
    bool record_implicit = false;     ///< write the implicit-directory record when a directory is implicit
    /// Called for every name reached, breadth first: the path ("a/b") and its node.
    std::function<void(std::string const& path, std::uint32_t node)> on_name;
};

/// What the superblock needs from write_metadata().
struct metadata_result {
    std::uint32_t total_blocks = 0;   ///< image length in blocks (block 0 up to the last metadata block)
    std::uint64_t inodes = 0;
    std::uint64_t root_nid = 0;
    std::uint32_t xattr_blkaddr = 0;  ///< 0 when no xattr is shared
    std::int64_t build_time = 0;
    std::uint32_t build_time_nsec = 0;
};

/** Writes the metadata of the tree rooted at `nodes[0]` to `fd` from block
    `options.meta_blkaddr`: inode records, shared xattrs, then directory and symlink blocks.
    Sets the build time on implicit nodes and may append the record node to `nodes`.
    Errors: `limit_exceeded` (an xattr set over EROFS's limit, an image beyond 2^32 blocks),
    an errno from writing. */
OCISTORE_DECL metadata_result write_metadata(int fd, std::vector<node>& nodes, metadata_options const& options,
                                             error_code& ec, std::string* why);

/** A superblock with the fields `r` determines (root NID, inode count, build time, blocks,
    xattr_blkaddr) and `meta_blkaddr`; the caller adds the UUID, features and devices. */
OCISTORE_DECL erofs::superblock superblock_for(metadata_result const& r, std::uint64_t meta_blkaddr);

/** Writes block 0 (the superblock, `after` from byte 1152, the CRC32C over [1024, 4096)),
    the rest of `after` into the following blocks, and sizes the file to `sb.blocks` blocks. */
OCISTORE_DECL bool write_block0(int fd, erofs::superblock const& sb, std::span<std::byte const> after, error_code& ec,
                                std::string* why);

/// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
OCISTORE_DECL bool pwrite_all(int fd, std::span<std::byte const> bytes, std::uint64_t offset, error_code& ec,
                              std::string* why);

/// Sets `ec` to `err` (an errno) and `*why` to "what: strerror".
OCISTORE_DECL void errno_fail(error_code& ec, std::string* why, int err, std::string const& what);

/// 16 bytes from `seed` (two FNV-1a/splitmix mixes, RFC 4122 version 4 and variant bits); all zero for an empty seed.
OCISTORE_DECL std::array<std::byte, 16> uuid_from(std::span<std::byte const> seed);

/// The dirent file type of `mode`.
OCISTORE_DECL erofs::file_type type_of(std::uint16_t mode) noexcept;

/// Sequential buffered writer: zero-fills gaps, flushes 1 MiB at a time with pwrite.
class seq_writer {
public:
    seq_writer(int fd, std::uint64_t start) : fd_(fd), base_(start) {}
    /// Places `bytes` at absolute `offset` (at or after everything placed before).
    OCISTORE_DECL bool put(std::uint64_t offset, std::span<std::byte const> bytes, error_code& ec, std::string* why);
    OCISTORE_DECL bool flush(error_code& ec, std::string* why);

private:
    int fd_;
    std::uint64_t base_;
    std::vector<std::byte> buf_;
};

} // namespace ocistore::detail::erofs_meta

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_metadata.ipp>
#endif
