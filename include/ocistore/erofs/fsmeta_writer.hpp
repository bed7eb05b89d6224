// ocistore/erofs/fsmeta_writer.hpp: writes the merged, metadata-only EROFS image (fsmeta) of a stack of layer images.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ocistore {

/// Options of write_fsmeta().
struct fsmeta_options {
    /** Bytes the image UUID is derived from (e.g. the manifest digest's raw bytes); the same
        seed gives the same UUID. Empty: an all-zero UUID. */
    std::vector<std::byte> uuid_seed;
};

/// What write_fsmeta() wrote.
struct fsmeta_result {
    std::uint32_t total_blocks = 0;          ///< the fsmeta's length / 4096
    std::uint64_t inodes = 0;                ///< inodes in the merged tree
    std::vector<std::uint32_t> layer_blocks; ///< each layer's length / 4096, bottom first
    std::vector<std::uint32_t> mapped_blkaddr; ///< where each layer starts in the concatenation fsmeta ‖ layer 0 ‖ …

    friend bool operator==(fsmeta_result const&, fsmeta_result const&) = default;
};

/** Writes the merged metadata-only image of `layers` (bottom first; each an open image
    written by erofs_layer_writer) to `fd` (a new, empty, writable file the caller owns and
    publishes). docs/erofs.md has the layout.

    The merge applies the layers bottom to top as overlayfs and OCI do: a 0:0 character
    device removes the lower entry and is dropped; a directory carrying
    `trusted.overlay.opaque=y` hides the lower children (the marker is stripped; at a layer's
    root too); a directory over a directory merges, taking the upper's metadata and xattrs
    only when the upper layer declared it (directories the layer writer created as missing
    parents, and a root without a "./" entry, are recorded in the layer image and keep the
    lower metadata); anything else replaces the lower entry and its subtree. A directory
    declared by no layer is 0755 root:root with the build time. Names of one layer inode
    stay one inode (hardlinks); no inode is shared across layers.

    Regular files become chunk-based inodes pointing through the device table at their data
    in the layer images: device id i + 1 is layer i (tag `layer_tags[i]`, its block count,
    `mapped_blkaddr` = the fsmeta's blocks + the blocks of the layers below), each chunk
    index holds a block number inside that layer, and the chunk size is the file size
    rounded up to a power of two (at least 4 KiB, at most 2^43 bytes), so a file needs one
    index. Mounting `fsmeta ‖ layer 0 ‖ … ‖ layer n−1` as one device (no `device=` option)
    shows the merged tree. The same layers, tags and options give the same bytes.

    Errors: `invalid_argument` (a tag count other than the layer count, a tag over 64 bytes,
    a layer not open or itself multi-device), `unsupported_entry` (a regular file whose data
    is tail-inlined or on another device), `limit_exceeded` (over 65535 layers, a
    concatenation beyond 2^32 blocks), the readers' errors (named by layer), an errno from
    writing. */
OCISTORE_DECL fsmeta_result write_fsmeta(int fd, std::span<erofs_image_reader const> layers,
                                         std::span<std::string const> layer_tags, fsmeta_options const& options,
                                         error_code& ec, std::string* why = nullptr);
/// @throws system_error naming the layer and the problem.
OCISTORE_DECL fsmeta_result write_fsmeta(int fd, std::span<erofs_image_reader const> layers,
                                         std::span<std::string const> layer_tags, fsmeta_options const& options = {});

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_fsmeta_writer.ipp>
#endif
