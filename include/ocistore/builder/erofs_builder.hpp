// ocistore/builder/erofs_builder.hpp: the *ArtifactBuilder* that produces an EROFS image per layer, and a merged fsmeta and a VMDK per image.
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

/// Options of an erofs_builder.
struct erofs_builder_options {
    /// Where temporaries go; empty means `<root>/tmp`. Must be on the file system of `<root>`.
    std::filesystem::path work_dir;
    /** Name the extent files in the VMDK by absolute path (the root made absolute at
        construction, without resolving symbolic links) instead of relative to the VMDK's
        directory ("../fsmeta/...", "../layers/..."), which keeps the cache relocatable.
        Changes the VMDK only, so it is part of identity() but layer images are shared. */
    bool absolute_vmdk_paths = false;
    /// fsync every artifact before it is renamed into place and its directory after.
    bool durable = true;
};

/** An *ArtifactBuilder* that produces what a VM needs to boot an image from one block device:

    - `<root>/layers/<alg>_<hex>.erofs`: one standalone EROFS image per layer, keyed by
      diff_id and shared between images, written by erofs_layer_writer straight from the tar
      stream (UUID derived from the diff_id, so the same layer gives the same bytes);
    - `<root>/fsmeta/<alg>_<hex>.erofs`: per image (keyed by the platform manifest digest),
      the merged metadata-only EROFS written by write_fsmeta(), whose device table names the
      layers (tag = diff_id hex, at most 64 bytes) in order;
    - `<root>/vmdk/<alg>_<hex>.vmdk`: a `twoGbMaxExtentFlat` descriptor of fsmeta then
      layer 0..n-1, the disk the kernel mounts as EROFS in flat-device mode.

    Temporaries are files in the work directory; nothing reaches a final name before
    commit_layer() or compose(), which publish by rename. docs/erofs.md has the formats.

    Validity. A layer is held when its file is a regular file whose superblock parses, whose
    root inode reads as a directory, whose length is exactly `blocks × 4096`, and which has no
    device table. An image is held when its fsmeta is such an image with a device table, its
    VMDK lists the fsmeta and then one held layer per device slot, each slot's tag, block
    count and mapped block agree with that layer, and the VMDK's text equals the descriptor
    this builder would write now. Damaged or foreign artifacts are misses, never errors.

    Every member function may be called concurrently from several threads, for different
    diff_ids and keys. Sinks and prepared layers keep what they need of the builder, so they
    may outlive it.
*/
class erofs_builder {
    struct config;
    struct sink_state;

public:
    static constexpr std::string_view kind = "erofs";

    /// A held layer image.
    struct layer_result {
        digest diff_id;
        std::filesystem::path path; ///< `<root>/layers/<alg>_<hex>.erofs`
        std::uint32_t blocks = 0;   ///< image length / 4096

        friend bool operator==(layer_result const&, layer_result const&) = default;
    };

    /// A held image.
    struct image_result {
        digest key;                       ///< the platform manifest digest
        std::filesystem::path fsmeta;     ///< `<root>/fsmeta/<alg>_<hex>.erofs`
        std::filesystem::path vmdk;       ///< `<root>/vmdk/<alg>_<hex>.vmdk`
        std::uint32_t fsmeta_blocks = 0;  ///< fsmeta length / 4096
        std::vector<layer_result> layers; ///< bottom first, as in the fsmeta's device table

        friend bool operator==(image_result const&, image_result const&) = default;
    };

    /// A finished layer image in the work directory, not yet published. Destroying it removes it.
    class prepared_layer {
    public:
        OCISTORE_DECL prepared_layer(prepared_layer&& other) noexcept;
        OCISTORE_DECL prepared_layer& operator=(prepared_layer&& other) noexcept;
        prepared_layer(prepared_layer const&) = delete;
        prepared_layer& operator=(prepared_layer const&) = delete;
        OCISTORE_DECL ~prepared_layer();

        /// Whether this holds an image (false after a failed finish(), a commit, or a move).
        bool has_image() const noexcept { return !temp_.empty(); }
        digest const& diff_id() const noexcept { return diff_id_; }
        std::uint32_t blocks() const noexcept { return blocks_; }
        std::uint64_t entries() const noexcept { return entries_; }
        /// What the writer dropped or changed (unsupported xattrs, overlay metadata entries).
        std::vector<build_warning> const& warnings() const noexcept { return warnings_; }
        /// The temporary image file.
        std::filesystem::path const& temp_path() const noexcept { return temp_; }

    private:
        friend class erofs_builder;
        prepared_layer() = default;
        OCISTORE_DECL void discard() noexcept;

        std::shared_ptr<config const> config_;
        digest diff_id_;
        std::filesystem::path temp_;
        int fd_ = -1;
        std::uint32_t blocks_ = 0;
        std::uint64_t entries_ = 0;
        std::vector<build_warning> warnings_;
    };

    /** Writes one layer's entries as an EROFS image in the work directory. One thread at a
        time. Destroying it before finish() removes the temporary. */
    class layer_sink {
    public:
        OCISTORE_DECL layer_sink(layer_sink&& other) noexcept;
        OCISTORE_DECL layer_sink& operator=(layer_sink&& other) noexcept;
        layer_sink(layer_sink const&) = delete;
        layer_sink& operator=(layer_sink const&) = delete;
        OCISTORE_DECL ~layer_sink();

        /** Adds one entry; for a regular file reads exactly `entry.size` bytes of `data`.
            Failures are erofs_layer_writer's, all sticky; `invalid_argument` after finish(). */
        OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                     std::string* why = nullptr);
        /// @throws system_error naming the entry and the problem.
        OCISTORE_DECL void add_entry(tar_entry const& entry, byte_source_ref data);

        /** Writes the image's metadata and superblock and returns it, unpublished. After a
            failure reports it again and returns an empty prepared_layer. */
        OCISTORE_DECL prepared_layer finish(error_code& ec, std::string* why = nullptr);
        /// @throws system_error.
        OCISTORE_DECL prepared_layer finish();

        /// Warnings so far.
        OCISTORE_DECL std::vector<build_warning> const& warnings() const noexcept;

    private:
        friend class erofs_builder;
        OCISTORE_DECL explicit layer_sink(std::unique_ptr<sink_state> state) noexcept;
        std::unique_ptr<sink_state> state_;
    };

    /** A builder over the store root `root`: artifacts under `root / "layers"`, `"fsmeta"`
        and `"vmdk"`, temporaries under `options.work_dir` (default `root / "tmp"`). Does no
        I/O; directories are made on first use. */
    OCISTORE_DECL explicit erofs_builder(std::filesystem::path root, erofs_builder_options options = {});

    /// "erofs_builder/1", plus " vmdk_paths=absolute" with that option.
    OCISTORE_DECL std::string const& identity() const noexcept;
    /// `<root>/layers/<alg>_<hex>.erofs`, held or not.
    OCISTORE_DECL std::filesystem::path layer_path(digest const& diff_id) const;
    /// `<root>/fsmeta/<alg>_<hex>.erofs`, held or not.
    OCISTORE_DECL std::filesystem::path fsmeta_path(digest const& key) const;
    /// `<root>/vmdk/<alg>_<hex>.vmdk`, held or not.
    OCISTORE_DECL std::filesystem::path vmdk_path(digest const& key) const;
    /// The device-table tag of a layer: the hex of its diff_id, cut to 64 bytes.
    OCISTORE_DECL static std::string layer_tag(digest const& diff_id);

    /// The files of a held layer: {the layer image}.
    OCISTORE_DECL std::vector<std::filesystem::path> artifact_paths(layer_result const& layer) const;
    /// The files of a held image: {fsmeta, VMDK} (the layers are reported per layer).
    OCISTORE_DECL std::vector<std::filesystem::path> artifact_paths(image_result const& image) const;

    /** Deletes the layer images of diff_ids outside `live_layers` and the fsmeta and VMDK of
        keys outside `live_images` (or, with `options.dry_run`, only reports them), adding each
        to `report`. Models prunable_artifact_builder; the caller excludes concurrent pulls. */
    OCISTORE_DECL void prune_artifacts(std::span<digest const> live_layers, std::span<digest const> live_images,
                                       prune_options const& options, prune_report& report, error_code& ec);

    /// Starts a layer: creates its temporary file. Fails with an errno (e.g. the work directory is not writable).
    OCISTORE_DECL layer_sink begin_layer(layer_info const& info, error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL layer_sink begin_layer(layer_info const& info);

    /** Publishes a prepared layer under its diff_id. A held image already there wins and the
        prepared one is discarded; one that is not held is replaced in one step.
        `invalid_argument` for an empty prepared_layer. */
    OCISTORE_DECL layer_result commit_layer(prepared_layer&& prepared, error_code& ec, std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL layer_result commit_layer(prepared_layer&& prepared);

    /** Whether a valid layer image is held for `diff_id` (see the class comment). Missing or
        invalid is false with `ec` clear; `ec` reports only an I/O failure. */
    OCISTORE_DECL bool has_layer(digest const& diff_id, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL bool has_layer(digest const& diff_id);
    /// The held layer, checked like has_layer(), or empty.
    OCISTORE_DECL std::optional<layer_result> layer(digest const& diff_id, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL std::optional<layer_result> layer(digest const& diff_id);

    /** Writes the fsmeta of `layers` (bottom first; each held by this builder) and the VMDK
        of fsmeta + layers, and publishes both, replacing any image artifact for `key`.
        `not_found` names a layer that is not held; write_fsmeta()'s failures; errnos. */
    OCISTORE_DECL image_result compose(digest const& key, std::span<layer_result const> layers, error_code& ec,
                                       std::string* why = nullptr);
    /// @throws system_error.
    OCISTORE_DECL image_result compose(digest const& key, std::span<layer_result const> layers);

    /// The held image for `key` (see the class comment), or empty.
    OCISTORE_DECL std::optional<image_result> image(digest const& key, error_code& ec);
    /// @throws system_error.
    OCISTORE_DECL std::optional<image_result> image(digest const& key);

    /** The VMDK text this builder writes for an fsmeta of `fsmeta_blocks` blocks over
        `layers` under `key`. `invalid_argument` when a block count is 0. */
    OCISTORE_DECL std::string vmdk_text(digest const& key, std::uint32_t fsmeta_blocks,
                                        std::span<layer_result const> layers, error_code& ec,
                                        std::string* why = nullptr) const;

    /** Checks the layer image held for `diff_id`, if there is one (models
        verifiable_artifact_builder; docs/store.md, "Verify"). When `replay` has a source, the
        image is written again from the replayed entries into an unnamed scratch file, compared
        with the held one byte for byte as it grows (memory and scratch space stay bounded), and
        the first difference is named; without a source, or when the replay fails, the image is
        walked with erofs_image_reader (superblock, length, every inode and directory). */
    OCISTORE_DECL artifact_check verify_layer(digest const& diff_id, layer_replay const& replay, error_code& ec);
    /** Checks the fsmeta and the VMDK of `key`, those present. When every layer is intact the
        fsmeta is written again from the layer images and compared byte for byte, else walked
        and its device table matched against the layers; the VMDK must equal the descriptor
        this builder writes for that fsmeta and those layers (else it must parse and name them). */
    OCISTORE_DECL artifact_check verify_image(digest const& key, std::span<verified_layer const> layers, error_code& ec);

private:
    std::shared_ptr<config const> config_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/erofs_builder.ipp>
#  include <ocistore/impl/erofs_builder_verify.ipp>
#endif
