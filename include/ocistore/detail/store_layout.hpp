// ocistore/detail/store_layout.hpp: the cache root's file layout (an OCI image layout) and its index.json records.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/store_types.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore::detail {

/// Annotation keys of the store's index.json descriptors.
inline constexpr std::string_view annotation_ref_name = "org.opencontainers.image.ref.name";
inline constexpr std::string_view annotation_containerd_name = "io.containerd.image.name";
inline constexpr std::string_view annotation_index_digest = "io.ocistore.index.digest";

/** The paths of a cache root:
    `oci-layout`, `index.json`, `blobs/<alg>/<hex>`, `tmp/` (`tmp/blobs/<alg>_<hex>.part`
    downloads), `locks/`; the builder owns its own directories. */
struct store_layout {
    std::filesystem::path root;

    std::filesystem::path index_json() const { return root / "index.json"; }
    std::filesystem::path oci_layout() const { return root / "oci-layout"; }
    std::filesystem::path blobs() const { return root / "blobs"; }
    std::filesystem::path blob(digest const& d) const
    {
        return root / "blobs" / std::string(d.algorithm()) / std::string(d.encoded());
    }
    std::filesystem::path tmp() const { return root / "tmp"; }
    std::filesystem::path part(digest const& d) const { return root / "tmp" / "blobs" / (d.path_safe() + ".part"); }
    std::filesystem::path locks() const { return root / "locks"; }
    /// `tmp/evicted/`: what verify() moved off its final name, at its path relative to the root.
    std::filesystem::path evicted() const { return root / "tmp" / "evicted"; }
    /// Where an evicted blob `d` is kept; while it is there and `blob(d)` is absent, a pull re-fetches `d`.
    std::filesystem::path evicted_blob(digest const& d) const
    {
        return evicted() / "blobs" / std::string(d.algorithm()) / std::string(d.encoded());
    }
};

/// Lock keys (see *StoreLock*): `blobs/<alg>/<hex>`, `layers/<alg>/<hex>` (diff_id builds),
/// `images/<alg>/<hex>` (compose), `refs/<sha256 of the name>`, `index`, `gc`.
inline std::string blob_lock_key(digest const& d) { return "blobs/" + std::string(d.algorithm()) + "/" + std::string(d.encoded()); }
inline std::string layer_lock_key(digest const& d) { return "layers/" + std::string(d.algorithm()) + "/" + std::string(d.encoded()); }
inline std::string image_lock_key(digest const& d) { return "images/" + std::string(d.algorithm()) + "/" + std::string(d.encoded()); }
OCISTORE_DECL std::string reference_lock_key(std::string_view name, platform const& p);
inline constexpr std::string_view index_lock_key = "index";
inline constexpr std::string_view gc_lock_key = "gc";

/// One descriptor of the store's index.json: an image pulled under a name for a platform.
struct index_record {
    std::string name;
    ocistore::platform platform;
    digest manifest_digest;
    std::string media_type;
    std::uint64_t size = 0;
    std::optional<digest> index_digest;
};

/** Creates the root's directories and `oci-layout` if missing. Fails with the errno, or with
    error::invalid_argument when an existing `oci-layout` is not version 1.0.0. */
OCISTORE_DECL void ensure_store_layout(store_layout const& layout, bool durable, error_code& ec, std::string* why);

/** Reads index.json. Absent: empty, no error. Unreadable, malformed, or with entries that
    are not the store's: error::metadata_corrupt with the reason. */
OCISTORE_DECL std::vector<index_record> read_index_records(store_layout const& layout, error_code& ec,
                                                           std::string* why);

/// Writes index.json atomically (one descriptor per record, in order).
OCISTORE_DECL void write_index_records(store_layout const& layout, std::vector<index_record> const& records,
                                       bool durable, error_code& ec, std::string* why);

/// The size of a regular file (not followed through a symlink), or empty when it is absent or not regular.
OCISTORE_DECL std::optional<std::uint64_t> regular_file_size(std::filesystem::path const& path) noexcept;

/// Removes stale temporaries: entries of `tmp/` and `.*.tmp.*` files of the blob directories older than `grace`.
OCISTORE_DECL void collect_temporaries(store_layout const& layout, prune_options const& options,
                                       prune_report& report, error_code& ec);

/** Deletes the entries `<dir>/<alg>_<hex><suffix>` (files or trees) whose digest is not in
    `keep` (sorted), adding them to `report` and returning how many (in a dry run: would be).
    Entries whose name is not of that form are left alone. */
OCISTORE_DECL std::uint64_t prune_keyed_entries(std::filesystem::path const& dir, std::string_view suffix,
                                                std::span<digest const> keep, prune_options const& options,
                                                prune_report& report, error_code& ec);

/** Moves `path` (a file or a directory tree) off its final name in one rename, to
    `layout.evicted()` / its path relative to the root (`other/<name>` outside the root),
    replacing an earlier eviction there. Where it cannot be renamed (another file system) it
    is deleted instead. Returns where it went, empty when deleted. Absent: error::not_found. */
OCISTORE_DECL std::filesystem::path evict_path(store_layout const& layout, std::filesystem::path const& path, bool durable,
                                               error_code& ec);

/// The total size of a file or directory tree (not following symlinks); 0 when absent.
OCISTORE_DECL std::uint64_t tree_size(std::filesystem::path const& path) noexcept;

} // namespace ocistore::detail

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/store_layout.ipp>
#endif
