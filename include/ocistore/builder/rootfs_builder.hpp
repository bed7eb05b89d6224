// ocistore/builder/rootfs_builder.hpp: the *ArtifactBuilder* that applies layers into a root file system directory.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/builder_types.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/store_types.hpp>
#include <ocistore/tar_entry.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore {

/// Whether a rootfs_builder applies ownership, device nodes and privileged xattrs, or records them.
enum class ownership_mode {
    automatic, ///< `apply` when running as root (geteuid() == 0), `record` otherwise
    apply,     ///< lchown, mknod, and trusted.* / security.* / system.* xattrs applied to the tree
    record,    ///< the tree is owned by the builder's user; what it cannot apply is written to the metadata file
};

/// How a rootfs_builder resolves directories inside its trees (both follow no symbolic link).
enum class path_resolution {
    automatic,      ///< openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has it, else component_walk
    component_walk, ///< one openat(O_PATH | O_DIRECTORY | O_NOFOLLOW) per component
};

/// Options of a rootfs_builder.
struct rootfs_options {
    /// Where temporaries go; empty means `<root>/tmp`. Must be on the file system of `<root>`.
    std::filesystem::path work_dir;
    /// See ownership_mode; resolved once, at construction. Part of identity().
    ownership_mode ownership = ownership_mode::automatic;
    /// See path_resolution. Does not change the output, so not part of identity().
    path_resolution resolution = path_resolution::automatic;
    /// syncfs(2) a layer or image tree before publishing it, so that a published artifact
    /// survives a power loss. Off: faster, and a crash may leave a published tree incomplete.
    bool durable = true;
};

/** An *ArtifactBuilder* that produces a merged root file system directory per image.

    Each layer is extracted, as its tar stream arrives, into its own tree keyed by diff_id:
    `<root>/rootfs/layers/<alg>_<hex>/{tree/,layer.json}`. Whiteouts and opaque markers are not
    extracted but listed in `layer.json`, with the directories the layer created implicitly.
    compose() copies the layers bottom to top into
    `<root>/rootfs/images/<alg>_<hex>/{rootfs/,image.json}` with OCI whiteout semantics. Every
    tree is built under the work directory and renamed into place. docs/rootfs.md has the
    semantics, the containment rules and the metadata formats.

    Containment: no entry is ever written, changed or deleted outside the tree it belongs to.
    Paths are resolved beneath the tree's root without following any symbolic link; an entry
    whose path or hardlink target crosses a symbolic link, `..`, or an absolute path fails with
    `error::unsafe_path`.

    Every member function may be called concurrently from several threads, for different
    diff_ids and keys. Sinks and prepared layers keep what they need of the builder, so they
    may outlive it.
*/
class rootfs_builder {
    struct config;
    struct sink_state;

public:
    static constexpr std::string_view kind = "rootfs";

    /// A held layer.
    struct layer_result {
        digest diff_id;
        std::filesystem::path path;          ///< the layer directory: `tree/` and `layer.json`
        std::uint64_t entries = 0;           ///< entries the sink received
        std::vector<build_warning> warnings; ///< what could not be applied exactly

        friend bool operator==(layer_result const&, layer_result const&) = default;
    };

    /// A held image.
    struct image_result {
        digest key;                          ///< the platform manifest digest
        std::filesystem::path path;          ///< the image directory: `rootfs/` and `image.json`
        std::filesystem::path rootfs;        ///< the merged tree, `path / "rootfs"`
        std::vector<digest> layers;          ///< diff_ids, bottom first
        std::vector<build_warning> warnings; ///< what could not be applied exactly while composing
    };

    /// A finished layer tree in the work directory, not yet published. Destroying it removes it.
    class prepared_layer {
    public:
        prepared_layer(prepared_layer&& other) noexcept;
        OCISTORE_DECL prepared_layer& operator=(prepared_layer&& other) noexcept;
        prepared_layer(prepared_layer const&) = delete;
        prepared_layer& operator=(prepared_layer const&) = delete;
        OCISTORE_DECL ~prepared_layer();

        /// Whether this holds a tree (false after a failed finish(), a commit, or a move).
        bool has_tree() const noexcept { return !temp_.empty(); }
        digest const& diff_id() const noexcept { return diff_id_; }
        std::uint64_t entries() const noexcept { return entries_; }
        std::vector<build_warning> const& warnings() const noexcept { return warnings_; }
        /// The temporary layer directory.
        std::filesystem::path const& temp_path() const noexcept { return temp_; }

    private:
        friend class rootfs_builder;
        friend struct sink_state;
        prepared_layer() = default;

        std::shared_ptr<config const> config_;
        digest diff_id_;
        std::filesystem::path temp_;
        std::uint64_t entries_ = 0;
        std::vector<build_warning> warnings_;
    };

    /** Extracts one layer's entries into a tree in the work directory. One thread at a time.
        Destroying it before finish() removes everything it wrote. */
    class layer_sink {
    public:
        OCISTORE_DECL layer_sink(layer_sink&& other) noexcept;
        OCISTORE_DECL layer_sink& operator=(layer_sink&& other) noexcept;
        layer_sink(layer_sink const&) = delete;
        layer_sink& operator=(layer_sink const&) = delete;
        OCISTORE_DECL ~layer_sink();

        /** Applies one entry; for a regular file reads exactly `entry.size` bytes of `data`.
            Failures, all sticky: `unsafe_path` (a path or hardlink target that is not a plain
            relative path, crosses a symbolic link, or a whiteout naming "." or ".."),
            `invalid_archive` (a parent that is not a directory, a hardlink to nothing earlier in
            the layer or to a directory, a non-directory root), `truncated` (data shorter than
            `entry.size`), `unsupported_entry` (uid/gid beyond 32 bits with ownership applied),
            `limit_exceeded`, the source's own error, or an errno from the file system.
            `invalid_argument` after finish(). */
        OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                     std::string* why = nullptr);
        /// @throws system_error naming the entry and the problem.
        OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data);

        /** Applies the directories' modes and times, writes `layer.json`, and returns the tree.
            After a failure reports it again and returns an empty prepared_layer. */
        OCISTORE_DECL prepared_layer finish(error_code& ec, std::string* why = nullptr);
        /// @throws system_error.
        OCISTORE_DECL prepared_layer finish();

        /// Warnings so far.
        OCISTORE_DECL std::vector<build_warning> const& warnings() const noexcept;

    private:
        friend class rootfs_builder;
        explicit layer_sink(std::unique_ptr<sink_state> state) noexcept;
        std::unique_ptr<sink_state> state_;
    };

    /** A builder over the store root `root`: artifacts under `root / "rootfs"`, temporaries
        under `options.work_dir` (default `root / "tmp"`). Does no I/O; directories are made on
        first use. */
    OCISTORE_DECL explicit rootfs_builder(std::filesystem::path root, rootfs_options options = {});

    /// "rootfs_builder/1 ownership=apply" or "... ownership=record".
    OCISTORE_DECL std::string const& identity() const noexcept;
    /// The ownership mode in effect (`apply` or `record`; never `automatic`).
    OCISTORE_DECL ownership_mode ownership() const noexcept;
    /// Whether directories are resolved with openat2(2) (else the component walk).
    OCISTORE_DECL bool uses_openat2() const noexcept;
    /// `<root>/rootfs/layers/<alg>_<hex>`, held or not.
    OCISTORE_DECL std::filesystem::path layer_directory(digest const& diff_id) const;
    /// `<root>/rootfs/images/<alg>_<hex>`, held or not.
    OCISTORE_DECL std::filesystem::path image_directory(digest const& key) const;
    /// The files of a held layer: {its layer directory}.
    OCISTORE_DECL std::vector<std::filesystem::path> artifact_paths(layer_result const& layer) const;
    /// The files of a held image: {its image directory}.
    OCISTORE_DECL std::vector<std::filesystem::path> artifact_paths(image_result const& image) const;

    /** Deletes the layer trees of diff_ids outside `live_layers` and the image trees of keys
        outside `live_images` (or, with `options.dry_run`, only reports them), adding each to
        `report`. Models prunable_artifact_builder; the caller excludes concurrent pulls. */
    OCISTORE_DECL void prune_artifacts(std::span<digest const> live_layers, std::span<digest const> live_images,
                                       prune_options const& options, prune_report& report, error_code& ec);

    /// Starts a layer: makes its temporary directory. Fails with an errno (e.g. the work directory is not writable).
    OCISTORE_DECL layer_sink begin_layer(layer_info const& info, error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL layer_sink begin_layer(layer_info const& info);

    /** Publishes a prepared layer under its diff_id. An artifact already there that is held
        (valid, same identity) wins and the prepared one is discarded; one that is not held is
        replaced in one step. `invalid_argument` for an empty prepared_layer. */
    OCISTORE_DECL layer_result commit_layer(prepared_layer&& prepared, error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL layer_result commit_layer(prepared_layer&& prepared);

    /** Whether a valid layer built under this identity is held for `diff_id`: `layer.json`
        parses, names this diff_id, kind and identity, and `tree/` is a directory. Missing or
        invalid is false with `ec` clear; `ec` reports only an I/O failure. */
    OCISTORE_DECL bool has_layer(digest const& diff_id, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL bool has_layer(digest const& diff_id);
    /// The held layer, checked like has_layer(), or empty.
    OCISTORE_DECL std::optional<layer_result> layer(digest const& diff_id, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL std::optional<layer_result> layer(digest const& diff_id);

    /** Composes the image `key` from `layers` (bottom first; each held by this builder) into a
        new tree and publishes it, replacing any image artifact already there in one step.
        `not_found` names a layer that is not held. */
    OCISTORE_DECL image_result compose(digest const& key, std::span<layer_result const> layers, error_code& ec,
                                       std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL image_result compose(digest const& key, std::span<layer_result const> layers);

    /// The held image for `key` (valid `image.json`, same identity, `rootfs/` present), or empty.
    OCISTORE_DECL std::optional<image_result> image(digest const& key, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL std::optional<image_result> image(digest const& key);

    /** Copies the composed tree of image `key` to `target` (created; or an existing empty
        directory) with owners (when applied), modes, times, xattrs, device nodes and hardlinks.
        Recorded metadata stays in `image.json`. Returns what could not be copied exactly.
        `not_found` when the image is not held, `invalid_argument` when `target` exists and is
        not an empty directory. */
    OCISTORE_DECL std::vector<build_warning> export_rootfs(digest const& key, std::filesystem::path const& target,
                                                           error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL std::vector<build_warning> export_rootfs(digest const& key, std::filesystem::path const& target);

    /** Checks the layer held for `diff_id`, if there is one (models verifiable_artifact_builder;
        docs/store.md, "Verify"). Structural only (`replay` is not used): `layer.json` parses,
        has this builder's format and kind, names `diff_id`, and lists only plain relative
        whiteout and opaque paths; `tree/` is a directory; every path its records and implicit
        directories name exists in the tree. A layer built under another identity (the other
        ownership mode) is not this builder's and is passed over. */
    OCISTORE_DECL artifact_check verify_layer(digest const& diff_id, layer_replay const& replay, error_code& ec);
    /** Checks the image held for `key`, if there is one, likewise: `image.json` parses, names
        `key` and lists the diff_ids of `layers` in order; `rootfs/` is a directory; every path
        its records name exists in it. */
    OCISTORE_DECL artifact_check verify_image(digest const& key, std::span<verified_layer const> layers, error_code& ec);

private:
    std::shared_ptr<config const> config_;
};

inline rootfs_builder::prepared_layer::prepared_layer(prepared_layer&& other) noexcept
    : config_(std::move(other.config_)),
      diff_id_(std::move(other.diff_id_)),
      temp_(std::exchange(other.temp_, {})),
      entries_(other.entries_),
      warnings_(std::move(other.warnings_))
{
}

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/rootfs_builder.ipp>
#  include <ocistore/impl/rootfs_builder_verify.ipp>
#endif
