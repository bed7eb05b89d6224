// ocistore/tar_entry.hpp: the value type a tar reader produces per entry, and the reader's limits.
#pragma once

#include <ocistore/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/// What a tar entry is. Archive-internal headers (pax, GNU long names, volume labels) never
/// surface as entries. See docs/tar.md.
enum class entry_type {
    regular,      ///< '0', '\0' and '7' (contiguous); also pax 1.0 sparse files
    hardlink,     ///< '1': `link_target` names an earlier entry of the archive
    symlink,      ///< '2': `link_target` is the raw target
    char_device,  ///< '3'
    block_device, ///< '4'
    fifo,         ///< '6'
    directory,    ///< '5', or '0'/'\0' with a name ending in '/'
};

/// "regular", "hardlink", ... for messages.
constexpr std::string_view to_string(entry_type t) noexcept
{
    switch (t) {
    case entry_type::regular: return "regular";
    case entry_type::hardlink: return "hardlink";
    case entry_type::symlink: return "symlink";
    case entry_type::char_device: return "char_device";
    case entry_type::block_device: return "block_device";
    case entry_type::fifo: return "fifo";
    case entry_type::directory: return "directory";
    }
    return "unknown";
}

/// One extended attribute. `value` is binary-safe (may hold NUL bytes).
struct tar_xattr {
    std::string name;  ///< e.g. "security.capability"
    std::string value; ///< raw bytes

    friend bool operator==(tar_xattr const&, tar_xattr const&) = default;
};

/// One data extent of a sparse file: `length` bytes of data at logical `offset`.
struct sparse_extent {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;

    friend bool operator==(sparse_extent const&, sparse_extent const&) = default;
};

/** One archive member, with every extension header (pax, GNU long name/link) already applied.

    Paths are normalised (docs/tar.md, "Normalisation"): relative, no "." or ".." components,
    no empty components, no trailing '/'. The archive root ("./", ".") is the path ".".
*/
struct tar_entry {
    std::string path;                     ///< normalised; "." for the root directory
    entry_type type = entry_type::regular;
    std::uint32_t mode = 0;               ///< permission bits plus setuid/setgid/sticky (mask 07777)
    std::uint64_t uid = 0;
    std::uint64_t gid = 0;
    std::string uname;
    std::string gname;
    std::int64_t mtime = 0;               ///< seconds since the epoch (may be negative)
    std::uint32_t mtime_nsec = 0;         ///< 0..999'999'999, added to `mtime`
    std::uint64_t size = 0;               ///< logical size of a regular file; 0 for every other type
    std::string link_target;              ///< symlink: raw target; hardlink: normalised path
    std::uint32_t devmajor = 0;           ///< char/block devices only
    std::uint32_t devminor = 0;           ///< char/block devices only
    std::vector<tar_xattr> xattrs;        ///< in archive order; a repeated name replaces the value in place
    bool sparse = false;                  ///< a pax 1.0 sparse file; holes read as zeros
    std::vector<sparse_extent> sparse_map;///< data extents of a sparse file, ascending, disjoint

    /// Whether this is the archive's root directory (path ".").
    bool is_root() const noexcept { return path == "."; }

    /// The value of xattr `name`, or nullptr.
    std::string const* find_xattr(std::string_view name) const noexcept
    {
        for (auto const& x : xattrs)
            if (x.name == name) return &x.value;
        return nullptr;
    }
};

/// Resource limits of a tar reader; exceeding one is `error::limit_exceeded`. Defaults in docs/tar.md.
struct tar_limits {
    std::size_t max_path_length = 4096;             ///< bytes of a path, hardlink or symlink target, before normalisation
    std::size_t max_path_depth = 128;               ///< components of a normalised path
    std::uint64_t max_entries = 1'000'000;          ///< entries returned plus global pax headers and volume labels
    std::uint64_t max_entry_size = 64ull << 30;     ///< logical size of one regular file
    std::uint64_t max_total_size = 64ull << 30;     ///< sum of the logical sizes of all regular files
    std::size_t max_pax_header_size = 1u << 20;     ///< data of one pax header ('x' or 'g')
    std::size_t max_global_pax_size = 8u << 10;     ///< global pax state in effect (copied into every entry)
    std::size_t max_sparse_extents = 1u << 20;      ///< extents in one sparse map
};

} // namespace ocistore
