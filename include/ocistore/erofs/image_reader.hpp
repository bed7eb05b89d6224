// ocistore/erofs/image_reader.hpp: a bounds-checked reader of uncompressed EROFS images (layers and fsmeta).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/erofs/erofs_format.hpp>
#include <ocistore/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ocistore {

namespace detail {
struct erofs_reader_cache;
/// Deletes an erofs_reader_cache (a complete type only in impl/erofs_image_reader.ipp).
struct erofs_reader_cache_deleter {
    OCISTORE_DECL void operator()(erofs_reader_cache* cache) const noexcept;
};
} // namespace detail

/// One entry of the extra-device table.
struct erofs_device_slot {
    std::string tag;                   ///< the slot's tag up to its first NUL (at most 64 bytes)
    std::uint32_t blocks = 0;          ///< the device's length in blocks
    std::uint32_t mapped_blkaddr = 0;  ///< where the device starts in a flat (concatenated) address space

    friend bool operator==(erofs_device_slot const&, erofs_device_slot const&) = default;
};

/// A validated superblock.
struct erofs_image_info {
    std::uint32_t blocks = 0;          ///< image length in 4 KiB blocks (the primary device only)
    std::uint32_t meta_blkaddr = 0;    ///< block of NID 0
    std::uint32_t xattr_blkaddr = 0;   ///< block of shared xattr id 0
    std::uint64_t root_nid = 0;
    std::uint64_t inodes = 0;
    std::uint64_t build_time = 0;      ///< mtime of compact inodes
    std::uint32_t build_time_nsec = 0;
    std::array<std::byte, 16> uuid{};
    std::array<std::byte, 16> volume_name{};
    std::uint32_t feature_compat = 0, feature_incompat = 0;
    std::uint16_t extra_devices = 0;   ///< devices besides this image
    std::uint16_t devt_slotoff = 0;    ///< the device table starts at byte devt_slotoff · 128
    std::vector<erofs_device_slot> devices; ///< the extra-device table; slot 0 = device id 1
};

/// Incompatible feature bits the reader understands (compression-only bits are accepted; compressed inodes are not).
inline constexpr std::uint32_t erofs_incompat_zero_padding = 0x01, erofs_incompat_compr_cfgs = 0x02,
                               erofs_incompat_chunked_file = 0x04, erofs_incompat_device_table = 0x08,
                               erofs_incompat_ztailpacking = 0x10, erofs_incompat_fragments = 0x20,
                               erofs_incompat_xattr_prefixes = 0x40;

/** Parses and validates block 0 of an image: magic, 4 KiB blocks, the CRC32C when
    SB_CHKSUM is set, known incompatible features, and fields that must lie inside the
    image (meta_blkaddr, the root inode, the device table). `first_block` must hold at
    least the first 4096 bytes; `devices` is filled when the whole device table lies inside
    `first_block` (erofs_image_reader always fills it). Errors: `truncated` (fewer than 4096
    bytes), `invalid_archive` (anything else, `*why` names the field). */
OCISTORE_DECL erofs_image_info parse_erofs_superblock(std::span<std::byte const> first_block, error_code& ec,
                                                      std::string* why = nullptr);
/// @throws system_error.
OCISTORE_DECL erofs_image_info parse_erofs_superblock(std::span<std::byte const> first_block);

/// Where one chunk of a chunk-based file lives.
struct erofs_chunk {
    std::uint16_t device_id = 0;              ///< 0 = this image, n = device table slot n − 1
    std::uint32_t block = erofs::null_addr;   ///< first block on that device; `null_addr` = a hole (zeros)

    friend bool operator==(erofs_chunk const&, erofs_chunk const&) = default;
};

/// A validated inode.
struct erofs_inode_info {
    std::uint64_t nid = 0;
    std::uint16_t mode = 0;                  ///< type bits | permission bits
    std::uint32_t uid = 0, gid = 0, nlink = 0;
    std::uint64_t size = 0;
    std::int64_t mtime = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint32_t rdev = 0;                  ///< character and block devices: Linux new_encode_dev form
    std::uint32_t ino = 0;                   ///< the 32-bit i_ino field
    bool extended = false;                   ///< a 64-byte inode (else 32-byte compact)
    std::uint32_t xattr_ibody_size = 0;      ///< bytes of inline xattr area after the inode record
    std::uint8_t xattr_shared_count = 0;     ///< how many of `xattrs` come from the shared xattr area
    erofs::data_layout layout{};             ///< flat_plain, flat_inline or chunk_based
    std::uint32_t raw_blkaddr = 0;           ///< flat layouts: first data block (meaningless when no full block)
    std::uint32_t chunk_bits = 0;            ///< chunk-based: log2 of the chunk size in bytes
    std::vector<erofs_chunk> chunks;         ///< chunk-based: ceil(size / chunk size) entries
    std::vector<std::pair<std::string, std::string>> xattrs; ///< full names, inline then shared, in on-disk order

    std::uint16_t type() const noexcept { return static_cast<std::uint16_t>(mode & erofs::s_ifmt); }
    bool is_dir() const noexcept { return type() == erofs::s_ifdir; }
    bool is_regular() const noexcept { return type() == erofs::s_ifreg; }
    bool is_symlink() const noexcept { return type() == erofs::s_iflnk; }
    /// Device major and minor decoded from `rdev`.
    std::uint32_t rdev_major() const noexcept { return (rdev >> 8) & 0xfff; }
    std::uint32_t rdev_minor() const noexcept { return (rdev & 0xff) | ((rdev >> 12) & 0xfff00); }
};

/// One directory entry.
struct erofs_dirent_info {
    std::string name;
    std::uint64_t nid = 0;
    erofs::file_type type{};

    friend bool operator==(erofs_dirent_info const&, erofs_dirent_info const&) = default;
};

/** A reader of an uncompressed EROFS image with 4 KiB blocks, over a file descriptor (pread
    only; safe to share between threads). The metadata blocks it reads (inodes, xattrs,
    directories, symlink targets, chunk index tables) stay in memory, at most
    `max_cached_blocks` of them, the oldest replaced first; file data read by read() is never
    kept, and a change to the image after a block was kept is not seen. Every structure is
    validated before use: a hostile or damaged image yields `invalid_archive` (inconsistent
    structure), `truncated` (a structure or data beyond the end of the file) or `limit_exceeded`
    (a directory, xattr set, path depth or chunk table over the reader's caps), with `*why`
    naming the offending field — never a crash, an endless loop or an unbounded allocation.
    Reads never go beyond `info().blocks` blocks of the image, nor chunks beyond their device
    slot's `blocks` (a slot of 0 blocks, as erofs-utils 1.5 writes, bounds nothing: reading past
    that device's end is `truncated`). Chunk device ids are masked as the kernel does.
    Compressed inodes and long xattr name prefixes are reported as `invalid_archive` ("not
    supported"). */
class erofs_image_reader {
public:
    /// Caps applied to hostile input.
    static constexpr std::uint64_t max_dir_size = 64ull << 20;    ///< bytes of one directory
    static constexpr std::size_t max_xattrs = 4096;               ///< xattrs of one inode (inline + shared)
    static constexpr std::size_t max_chunks = std::size_t(1) << 24; ///< chunk indexes of one file
    static constexpr std::size_t max_depth = 4096;                ///< directory nesting in walk()
    static constexpr std::uint64_t max_symlink_size = 4095;
    /// Metadata blocks kept in memory per reader (16 MiB).
    static constexpr std::size_t max_cached_blocks = 4096;

    /// A reader of nothing; every operation fails with `invalid_argument`.
    erofs_image_reader() = default;
    OCISTORE_DECL erofs_image_reader(erofs_image_reader&& other) noexcept;
    OCISTORE_DECL erofs_image_reader& operator=(erofs_image_reader&& other) noexcept;
    erofs_image_reader(erofs_image_reader const&) = delete;
    erofs_image_reader& operator=(erofs_image_reader const&) = delete;
    OCISTORE_DECL ~erofs_image_reader();

    /** Opens `path` read-only and validates the superblock and device table; the reader
        owns the descriptor. Errors: an errno, `truncated` (the file is shorter than the
        superblock's block count), and parse_erofs_superblock's. */
    OCISTORE_DECL static erofs_image_reader open(std::filesystem::path const& path, error_code& ec,
                                                 std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL static erofs_image_reader open(std::filesystem::path const& path);
    /// As open(), over `fd` (not owned: it must outlive the reader).
    OCISTORE_DECL static erofs_image_reader from_fd(int fd, error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL static erofs_image_reader from_fd(int fd);

    bool is_open() const noexcept { return fd_ >= 0; }
    /// The descriptor read from (-1 when not open).
    int native_handle() const noexcept { return fd_; }
    erofs_image_info const& info() const noexcept { return info_; }

    /** Reads and validates inode `nid`: record inside the image, known format and type,
        data blocks (or chunk indexes) inside the image or its devices, an inline tail that
        does not cross a block, well-formed xattrs. */
    OCISTORE_DECL erofs_inode_info inode(std::uint64_t nid, error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error.
    OCISTORE_DECL erofs_inode_info inode(std::uint64_t nid) const;

    /** The entries of directory `dir`, "." and ".." included, in on-disk (name) order.
        Validates each block's dirent table and names: ascending name order across the
        directory, no duplicates, names of 1..255 bytes without '/' or NUL, known file types. */
    OCISTORE_DECL std::vector<erofs_dirent_info> read_dir(erofs_inode_info const& dir, error_code& ec,
                                                          std::string* why = nullptr) const;
    /// @throws system_error.
    OCISTORE_DECL std::vector<erofs_dirent_info> read_dir(erofs_inode_info const& dir) const;

    /// The target of symlink `link` (1..4095 bytes, no NUL).
    OCISTORE_DECL std::string read_link(erofs_inode_info const& link, error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error.
    OCISTORE_DECL std::string read_link(erofs_inode_info const& link) const;

    /** Reads up to `out.size()` bytes of `file`'s data at `offset`; returns the bytes read
        (fewer only at the end of the file, 0 at or past it). Flat inodes and chunks on
        device 0 are read from this image; a chunk on device id i needs `devices[i]` (an
        open descriptor of that device; `devices[0]`, when given and ≥ 0, replaces this
        image for device 0). Holes read as zeros. Errors: `invalid_argument` (a needed
        device descriptor missing), `truncated`, `invalid_archive`, an errno. */
    OCISTORE_DECL std::size_t read(erofs_inode_info const& file, std::uint64_t offset, std::span<std::byte> out,
                                   error_code& ec, std::span<int const> devices = {}) const;
    /// @throws system_error.
    OCISTORE_DECL std::size_t read(erofs_inode_info const& file, std::uint64_t offset, std::span<std::byte> out,
                                   std::span<int const> devices = {}) const;

    /** Depth-first walk from the root, children in name order: calls
        `visit(std::string_view path, erofs_inode_info const&, error_code&)` for every inode
        reached (the root with "", others as "a/b"; a hardlinked inode once per name).
        Stops at the first error, including one `visit` sets. Checks that "." and ".." name
        the directory and its parent, that each dirent's type matches its inode, that no
        directory is reached twice (`invalid_archive`, a cycle or a hardlinked directory)
        and that nesting stays within max_depth (`limit_exceeded`). */
    template <class Visit> void walk(Visit&& visit, error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error.
    template <class Visit> void walk(Visit&& visit) const
    {
        detail::throw_on_error([&](error_code& ec, std::string* why) {
            walk(visit, ec, why);
            return 0;
        });
    }

private:
    /// Reads exactly `out.size()` bytes at `offset` of the image's first info_.blocks blocks.
    OCISTORE_DECL bool read_image(std::uint64_t offset, std::span<std::byte> out, error_code& ec, std::string* why,
                                  char const* what) const;
    /// As read_image(), through the metadata block cache.
    OCISTORE_DECL bool read_meta(std::uint64_t offset, std::span<std::byte> out, error_code& ec, std::string* why,
                                 char const* what) const;
    /// Reads data of `file` (any layout; device 0 only) into `out`, exactly, through the cache.
    OCISTORE_DECL bool read_meta_data(erofs_inode_info const& file, std::uint64_t offset, std::span<std::byte> out,
                                      error_code& ec, std::string* why) const;
    /// read() with a reason; `meta` reads device 0 through the cache.
    OCISTORE_DECL std::size_t read_impl(erofs_inode_info const& file, std::uint64_t offset, std::span<std::byte> out,
                                        error_code& ec, std::string* why, std::span<int const> devices,
                                        bool meta) const;
    /** read_dir() into `out`, whose elements (and their names' storage) are reused; returns
        the entry count: `out[0, count)` are the entries, later elements are left over. */
    OCISTORE_DECL std::size_t read_dir_into(erofs_inode_info const& dir, std::vector<erofs_dirent_info>& out,
                                            error_code& ec, std::string* why) const;
    OCISTORE_DECL static erofs_image_reader open_fd(int fd, bool owned, error_code& ec, std::string* why);
    /// Checks a dirent's type against its inode's mode; "" when they agree, else the reason.
    OCISTORE_DECL static std::string type_mismatch(erofs_dirent_info const& d, erofs_inode_info const& n);

    int fd_ = -1;
    bool owned_ = false;
    erofs_image_info info_;
    std::unique_ptr<detail::erofs_reader_cache, detail::erofs_reader_cache_deleter> cache_; ///< set while open
};

template <class Visit> void erofs_image_reader::walk(Visit&& visit, error_code& ec, std::string* why) const
{
    ec.clear();
    if (why) why->clear();
    auto fail = [&](error e, std::string msg) { detail::fail(ec, why, e, std::move(msg)); };
    auto at = [](std::string_view path) {
        return path.empty() ? std::string("/") : "\"" + std::string(path) + "\"";
    };
    if (!is_open()) return fail(error::invalid_argument, "erofs_image_reader: not open");

    struct frame {
        std::uint64_t nid;
        std::size_t path_size; ///< the directory's path is path[0, path_size)
        std::size_t count;     ///< its entries are entries[depth][0, count)
        std::size_t next = 0;
    };
    std::unordered_set<std::uint64_t> dirs_seen;
    std::vector<frame> stack;
    std::vector<std::vector<erofs_dirent_info>> entries; // by depth, reused
    std::string path;                                    // the path of the inode being visited

    // Reads `dir` (already visited, named `path`) and pushes it; checks "." and "..".
    auto enter = [&](erofs_inode_info const& dir, std::uint64_t parent) {
        if (!dirs_seen.insert(dir.nid).second)
            return fail(error::invalid_archive, "directory " + at(path) + " (nid " + std::to_string(dir.nid) +
                                                    ") is reached twice: a directory cycle or hardlink");
        if (stack.size() >= max_depth)
            return fail(error::limit_exceeded, "directory " + at(path) + " is nested deeper than " +
                                                   std::to_string(max_depth) + " levels");
        if (entries.size() == stack.size()) entries.emplace_back();
        auto& list = entries[stack.size()];
        std::size_t const count = read_dir_into(dir, list, ec, why);
        if (ec) return;
        bool dot = false, dotdot = false;
        for (std::size_t i = 0; i < count; ++i) {
            erofs_dirent_info const& d = list[i];
            if (d.name == ".") {
                dot = true;
                if (d.nid != dir.nid)
                    return fail(error::invalid_archive, "directory " + at(path) + ": \".\" names nid " +
                                                            std::to_string(d.nid) + ", not itself (" +
                                                            std::to_string(dir.nid) + ")");
            } else if (d.name == "..") {
                dotdot = true;
                if (d.nid != parent)
                    return fail(error::invalid_archive, "directory " + at(path) + ": \"..\" names nid " +
                                                            std::to_string(d.nid) + ", not its parent (" +
                                                            std::to_string(parent) + ")");
            }
        }
        if (!dot || !dotdot)
            return fail(error::invalid_archive, "directory " + at(path) + " lacks its \".\" or \"..\" entry");
        stack.push_back(frame{dir.nid, path.size(), count});
    };

    auto root = inode(info_.root_nid, ec, why);
    if (ec) return;
    if (!root.is_dir()) return fail(error::invalid_archive, "the root inode is not a directory");
    visit(std::string_view(), static_cast<erofs_inode_info const&>(root), ec);
    if (ec) return;
    enter(root, root.nid);
    erofs_inode_info child;
    while (!ec && !stack.empty()) {
        frame& f = stack.back();
        if (f.next == f.count) {
            stack.pop_back();
            continue;
        }
        erofs_dirent_info const& d = entries[stack.size() - 1][f.next++];
        if (d.name == "." || d.name == "..") continue;
        path.resize(f.path_size);
        if (!path.empty()) path += '/';
        path += d.name;
        std::uint64_t const parent = f.nid; // `f` and `d` may dangle once a frame is pushed
        child = inode(d.nid, ec, why);
        if (ec) {
            if (why) *why = "entry \"" + path + "\": " + *why;
            return;
        }
        if (auto bad = type_mismatch(d, child); !bad.empty())
            return fail(error::invalid_archive, "entry \"" + path + "\": " + bad);
        visit(std::string_view(path), static_cast<erofs_inode_info const&>(child), ec);
        if (ec) return;
        if (child.is_dir()) enter(child, parent);
    }
}

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_image_reader.ipp>
#endif
