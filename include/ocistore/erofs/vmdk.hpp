// ocistore/erofs/vmdk.hpp: the `twoGbMaxExtentFlat` VMDK descriptor that presents several image files as one disk.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/// One file of a flat VMDK disk, in disk order.
struct vmdk_extent {
    /** The file's name as the descriptor states it: relative names are resolved by readers
        against the descriptor's directory. Written as given (no normalisation); must not be
        empty nor contain `"`, a line break or a NUL byte. */
    std::string path;
    /// Bytes of the file that belong to the disk: a positive multiple of 512.
    std::uint64_t size = 0;

    friend bool operator==(vmdk_extent const&, vmdk_extent const&) = default;
};

/// The adapter a descriptor names; it also fixes the geometry's heads.
enum class vmdk_adapter {
    ide,       ///< "ide", 16 heads (the default, as qemu-img writes it)
    lsilogic,  ///< "lsilogic", 255 heads
    buslogic,  ///< "buslogic", 255 heads
    legacy_esx ///< "legacyESX", 255 heads
};

/// Options of vmdk_descriptor().
struct vmdk_options {
    /** The content ID. Empty: derived from the extent list (CRC32C of the extent lines), so
        the same extents always give the same bytes. `0xffffffff` means "no content ID" and is
        never derived. */
    std::optional<std::uint32_t> cid;
    vmdk_adapter adapter = vmdk_adapter::ide;
    /// `ddb.virtualHWVersion`.
    unsigned virtual_hw_version = 4;
};

/// Most 512-byte sectors one extent line covers: 2 GiB.
inline constexpr std::uint64_t vmdk_max_extent_sectors = 4194304;

/** The text of a `twoGbMaxExtentFlat` descriptor for the concatenation of `extents`.

    Layout (every line ends in '\n'):
    @code
    # Disk DescriptorFile
    version=1
    CID=<8 hex digits>
    parentCID=ffffffff
    createType="twoGbMaxExtentFlat"

    # Extent description
    RW <sectors> FLAT "<path>" <offset in sectors>      one line per piece of at most 2 GiB

    # The Disk Data Base
    #DDB
    ddb.virtualHWVersion = "4"
    ddb.geometry.cylinders = "<ceil(total sectors / (heads * 63))>"
    ddb.geometry.heads = "16"
    ddb.geometry.sectors = "63"
    ddb.adapterType = "ide"
    @endcode

    A file larger than vmdk_max_extent_sectors sectors is split over several lines naming the
    same file with increasing offsets. Sizes are not rounded: a size that is not a positive
    multiple of 512 is the caller's error (pad the file first). The same arguments give the
    same bytes.

    Failures, all `error::invalid_argument` with the reason in `*why`: no extents, an empty
    path, a path with `"`, CR, LF or NUL, a size of 0 or not a multiple of 512.

    qemu reads extent names of at most 511 bytes; longer names are written but qemu-img
    will not open the disk. */
OCISTORE_DECL std::string vmdk_descriptor(std::span<vmdk_extent const> extents, vmdk_options const& options,
                                          error_code& ec, std::string* why = nullptr);
/// @throws system_error with the reason.
OCISTORE_DECL std::string vmdk_descriptor(std::span<vmdk_extent const> extents, vmdk_options const& options = {});

/** The extents of a descriptor, in disk order: every `RW`/`RDONLY`/`NOACCESS` `FLAT` line,
    with the lines that continue the same file at the sector where its previous line ended
    merged into one extent (the inverse of vmdk_descriptor()'s split). Other lines are
    ignored. Failures, `error::invalid_argument` with the line number in `*why`: a text that
    does not start with "# Disk DescriptorFile", an extent line that is not
    `ACCESS <sectors> FLAT "<path>" <offset>` with decimal numbers and sectors > 0, an extent
    type other than FLAT, a line that starts a file anywhere but at sector 0 unless it
    continues the previous line's file, or no extent at all. */
OCISTORE_DECL std::vector<vmdk_extent> parse_vmdk_extents(std::string_view descriptor, error_code& ec,
                                                          std::string* why = nullptr);
/// @throws system_error with the reason.
OCISTORE_DECL std::vector<vmdk_extent> parse_vmdk_extents(std::string_view descriptor);

/// The string a descriptor uses for `a` ("ide", "lsilogic", "buslogic", "legacyESX").
OCISTORE_DECL std::string_view to_string(vmdk_adapter a) noexcept;

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_vmdk.ipp>
#endif
