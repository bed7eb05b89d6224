// ocistore/erofs/layer_writer.hpp: writes one layer's tar entries as a standalone, uncompressed EROFS image.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/builder_types.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/error.hpp>
#include <ocistore/tar_entry.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ocistore {

/// Options of an erofs_layer_writer.
struct erofs_layer_options {
    /** Bytes the image UUID is derived from (e.g. the diff_id's raw digest); the same seed
        gives the same UUID. Empty: an all-zero UUID. */
    std::vector<std::byte> uuid_seed;
    /** When non-zero, writeback of the image's data is started (sync_file_range, not waited
        for) each time this many bytes have been written since the last start, so that a
        final fsync() finds little left to write. Output bytes do not depend on it. */
    std::uint64_t start_writeback_every = 0;
};

/// Where a regular file's data lives in a layer image.
struct file_extent {
    std::uint32_t start_block = erofs::null_addr; ///< first 4 KiB block; `null_addr` for an empty file
    std::uint64_t size = 0;                       ///< bytes; the data occupies ceil(size / 4096) contiguous blocks

    friend bool operator==(file_extent const&, file_extent const&) = default;
};

/// What a finished layer image holds, for an fsmeta that points at its blocks.
struct layer_data_map {
    std::uint32_t total_blocks = 0;            ///< image length / 4096
    std::map<std::string, file_extent> files;  ///< every regular-file path (each hardlink name too), relative, no leading '/'
};

/** A *LayerSink*-style writer of one layer as an EROFS image, straight from the tar entry
    stream: no extraction, no external tool. docs/erofs.md has the layout.

    Regular-file data is written to `fd` as it arrives, block-aligned and uncompressed
    (FLAT_PLAIN, never tail-inlined), in arrival order from block 1, gathered into 256 KiB
    writes (many small files per system call); only metadata and that buffer stay in
    memory. finish() appends the inodes (compact where the metadata fits, extended
    otherwise), the shared xattrs (a name and value carried by several inodes, where sharing
    is smaller), directory and symlink blocks, then writes the superblock with its CRC32C and
    sizes the file to a whole number of blocks. The same entries and options give the same
    bytes.

    Directories no entry described (missing parents, and the root without a "." entry) are
    listed in a record at NID 0 that no directory names (detail/erofs_metadata.hpp), so that
    write_fsmeta() keeps a lower layer's metadata for them; the mounted tree does not show it.

    Tar semantics: the last entry for a path wins (a directory over a directory keeps the
    children); missing parents are created (0755, root, the image build time); the "." entry
    sets the root's metadata; `.wh.<name>` becomes a 0:0 character device `<name>`,
    `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory, other `.wh..wh.*` are
    skipped; a hardlink shares its target's inode. Xattrs with a name outside `user.`,
    `trusted.`, `security.` and the POSIX ACL names are dropped with a warning.

    The caller owns `fd` (a new, empty, writable file; e.g. an atomic_file's handle) and
    publishes it after finish(). One thread at a time.
*/
class erofs_layer_writer {
    struct state;

public:
    /// A writer onto `fd`, which must stay open until finish() returns.
    OCISTORE_DECL explicit erofs_layer_writer(int fd, erofs_layer_options options = {});
    OCISTORE_DECL erofs_layer_writer(erofs_layer_writer&&) noexcept;
    OCISTORE_DECL erofs_layer_writer& operator=(erofs_layer_writer&&) noexcept;
    erofs_layer_writer(erofs_layer_writer const&) = delete;
    erofs_layer_writer& operator=(erofs_layer_writer const&) = delete;
    OCISTORE_DECL ~erofs_layer_writer();

    /** Adds one entry; for a regular file reads exactly `entry.size` bytes of `data`.
        Failures, all sticky: `invalid_archive` (a parent that is not a directory, a hardlink
        to nothing earlier or to a directory, a non-directory root), `unsafe_path` (an empty,
        "." or ".." component, a whiteout `.wh..` or `.wh...`), `unsupported_entry` (a name
        component over 255 bytes, uid or gid beyond 32 bits, a device number beyond 12/20
        bits), `limit_exceeded` (a symlink target over 4095 bytes, an image beyond 2^32
        blocks), `truncated` (data shorter than `entry.size`), the source's own error, an
        errno from writing. `invalid_argument` after finish(). */
    OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                 std::string* why = nullptr);
    /// @throws system_error naming the entry and the problem.
    OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data);

    /** Writes the metadata and the superblock; returns where each regular file's data is.
        After a failure reports it again. Calling it twice is `invalid_argument`. */
    OCISTORE_DECL layer_data_map finish(error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL layer_data_map finish();

    /// What was dropped or changed so far (unsupported xattrs, skipped overlay metadata entries).
    OCISTORE_DECL std::vector<build_warning> const& warnings() const noexcept;

private:
    std::unique_ptr<state> state_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_layer_writer.ipp>
#endif
