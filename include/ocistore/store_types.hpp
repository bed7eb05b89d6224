// ocistore/store_types.hpp: the values basic_image_store takes and returns: options, progress events, results.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/decompress_source.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/tar_entry.hpp>
#include <ocistore/tar_reader.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace ocistore {

/// When pull() contacts the registry.
enum class pull_policy {
    if_missing, ///< answer a fully cached reference from the cache; pull otherwise (the default)
    always,     ///< always resolve the reference on the registry; download only what is missing
    never,      ///< never contact the registry: answer from the cache or fail with error::not_cached
};

/// What a progress_event reports.
enum class progress_kind {
    resolving,         ///< the reference is being resolved (cache or registry)
    resolved,          ///< manifest and config known: `layers`, `total` (sum of layer blob sizes), `manifest_digest`
    download_progress, ///< layer `layer`: `current` of `total` blob bytes are in (replayed .part bytes included)
    download_complete, ///< layer `layer`: the blob is verified; `cached` when no byte came from the network
    build_started,     ///< layer `layer`: its artifact is being built while the blob streams in
    build_progress,    ///< layer `layer`: `current` uncompressed bytes and `entries` entries consumed
    build_complete,    ///< layer `layer`: the artifact is published; `cached` when it was already held
    compose_started,   ///< the image artifact is being composed
    compose_complete,  ///< the image artifact is published; `cached` when it was already held
    complete,          ///< the pull succeeded
    retry,             ///< a transient failure; `reason` says what; layer `layer` resumes at `current`
};

/** The cache root to use when none is given: `$OCISTORE_ROOT`, else `$XDG_CACHE_HOME/ocistore`,
    else `$HOME/.cache/ocistore` (empty values count as unset). No HOME either: error::not_found. */
OCISTORE_DECL std::filesystem::path default_store_root(error_code& ec);
/// @throws system_error.
OCISTORE_DECL std::filesystem::path default_store_root();

/// The name of `k`, e.g. "download_progress".
OCISTORE_DECL std::string_view to_string(progress_kind k) noexcept;

/** One progress report of a pull. Which members are meaningful depends on `kind` (see
    progress_kind); the others are zero or empty. */
struct progress_event {
    static constexpr std::size_t no_layer = static_cast<std::size_t>(-1);

    progress_kind kind = progress_kind::resolving;
    std::string reference;               ///< the reference being pulled, normalised (image_reference::str())
    std::size_t layer = no_layer;        ///< index of the layer, 0 = bottom
    std::size_t layers = 0;              ///< number of layers of the image (from `resolved` on)
    digest blob;                         ///< the layer's blob digest (layer events)
    digest manifest_digest;              ///< the platform manifest (from `resolved` on)
    std::uint64_t current = 0;           ///< bytes so far (see progress_kind)
    std::uint64_t total = 0;             ///< bytes expected (see progress_kind)
    std::uint64_t entries = 0;           ///< build events: tar entries consumed
    bool cached = false;                 ///< satisfied from the cache without doing the work
    std::string reason;                  ///< retry: the failure being retried
};

/** Receives progress events. Called from one thread at a time (never concurrently for one
    pull), never from inside the pipeline's hot path: a slow callback delays only other
    events, which are then coalesced (the newest progress per layer wins). */
using progress_callback = std::function<void(progress_event const&)>;

/// How basic_image_store::pull() runs.
struct pull_options {
    /// The platform to select from an index; empty: host_platform().
    std::optional<ocistore::platform> platform;
    pull_policy policy = pull_policy::if_missing;
    /// Ignore cached blobs and artifacts: download and verify every blob again (published
    /// artifacts are replaced only where the builder does not already hold a valid one).
    bool force = false;
    /// Layers downloaded and built at once; 0: min(hardware threads + 1, 4). Clamped to
    /// [1, 16]. A layer waiting for its fsyncs and renames does not count: as many again may.
    std::size_t jobs = 0;
    /// Keep verified layer blobs in `blobs/` (so the root stays a complete OCI layout and
    /// a rebuild needs no download). Manifests and configs are always kept.
    bool keep_layer_blobs = true;
    /** With a builder that builds nothing (kind "none"), also decompress each layer and check
        its diff_id while it downloads. Off by default: a blobs-only pull then verifies what
        `skopeo copy` verifies (each blob's size and digest) at a fraction of the CPU, and the
        diff_id is checked whenever a builder later consumes the kept blob. Builders that
        build always check diff_ids. */
    bool verify_diff_ids = false;
    progress_callback progress;
    /// Progress throttling: a download or build progress event at most every `progress_bytes`
    /// bytes or `progress_interval`, whichever comes first.
    std::uint64_t progress_bytes = 256 * 1024;
    std::chrono::milliseconds progress_interval{100};
    /// Mid-body transient failures (connection reset, timeout, 5xx on re-open) retried per
    /// layer, each resuming with a Range request where the blob stopped.
    unsigned body_retries = 3;
    /// Backoff before the first body retry; doubles after each.
    std::chrono::milliseconds retry_backoff{200};
    tar_limits limits{};
    decompress_options decompress{};
    /// Largest image config accepted.
    std::uint64_t max_config_size = 8 * 1024 * 1024;
    /// Cancels the pull: running layers stop at their next read with error::cancelled; the
    /// `.part` files stay for a later resume.
    std::stop_token stop;
};

/// How a basic_image_store writes its cache.
struct store_options {
    /** fsync blobs and metadata before publishing them, and their directories after (a
        pull's layer blobs share one fsync of the blob directory, before index.json records
        the pull), so that a power loss never leaves a published name with missing content
        nor a recorded image with a missing blob. Turn off only for caches that can be
        rebuilt. */
    bool durable = true;
};

/// One layer of a pulled image.
struct layer_record {
    digest blob;                                   ///< the layer blob's digest (manifest)
    digest diff_id;                                ///< the uncompressed layer's digest (config)
    std::uint64_t size = 0;                        ///< blob size in bytes (manifest)
    std::string media_type;                        ///< the blob's media type (manifest)
    std::vector<std::filesystem::path> artifacts;  ///< the builder's artifacts for this layer
    bool downloaded = false;                       ///< bytes came from the network in this pull
    bool built = false;                            ///< the artifact was built in this pull

    friend bool operator==(layer_record const&, layer_record const&) = default;
};

/// What pull() and inspect() return.
struct pull_result {
    image_reference reference;                     ///< as asked for, normalised
    ocistore::platform platform;                   ///< the platform selected (from the index entry or the config)
    std::optional<digest> index_digest;            ///< when the reference resolved to an index
    digest manifest_digest;                        ///< the platform manifest: the image's identity
    digest config_digest;
    std::string manifest_media_type;
    image_config config;
    std::vector<layer_record> layers;              ///< bottom first
    std::string artifact_kind;                     ///< the builder's kind ("erofs", "rootfs", "none")
    std::vector<std::filesystem::path> image_artifacts; ///< the composed artifacts (fsmeta and VMDK, a rootfs directory, ...)
    bool cached = false;                           ///< answered from the cache without any network access
    std::uint64_t downloaded_bytes = 0;            ///< blob bytes received from the network in this pull
};

/// One image recorded in the cache (a descriptor of index.json).
struct image_entry {
    std::string reference;            ///< the name it was pulled as (image_reference::str(), or an oci: name)
    ocistore::platform platform;
    digest manifest_digest;
    std::optional<digest> index_digest;
    std::string media_type;           ///< of the manifest
    std::uint64_t manifest_size = 0;
};

/// What remove() and prune() may delete.
struct prune_options {
    /// Report what would be deleted, delete nothing.
    bool dry_run = false;
    /// Temporaries and `.part` downloads younger than this are kept.
    std::chrono::seconds tmp_grace{24 * 3600};
};

/// What prune() deleted (or would delete, in a dry run).
struct prune_report {
    std::uint64_t blobs = 0;           ///< blobs not referenced by any recorded image
    std::uint64_t layer_artifacts = 0; ///< layer artifacts of diff_ids no recorded image uses
    std::uint64_t image_artifacts = 0; ///< image artifacts of manifests no longer recorded
    std::uint64_t temporaries = 0;     ///< stale entries of tmp/ and abandoned temporaries
    std::uint64_t bytes = 0;           ///< bytes reclaimed (reclaimable, in a dry run)
    std::vector<std::filesystem::path> removed; ///< every path deleted (or that would be)
};

/// What a verify() finding is about.
enum class verify_kind {
    index,          ///< the store's index.json
    metadata,       ///< a builder's metadata file (rootfs_builder's layer.json and image.json)
    manifest,       ///< a manifest or image index blob
    config,         ///< an image config blob
    blob,           ///< a layer blob, or any other blob when everything is verified
    layer_artifact, ///< a layer artifact (an EROFS layer image, a layer tree)
    image_artifact, ///< an image artifact (an fsmeta, a VMDK, a composed tree)
};

/// The name of `k`, e.g. "layer_artifact".
OCISTORE_DECL std::string_view to_string(verify_kind k) noexcept;

/// One damaged or missing item of the cache, as verify() reports it.
struct verify_finding {
    verify_kind kind = verify_kind::blob;
    std::filesystem::path path;       ///< the file or directory at fault
    std::string key;                  ///< the digest it is stored under: blob digest, diff_id, or manifest digest (image artifacts); empty for index.json
    error_code error;                 ///< what is wrong (docs/store.md, "Verify"): digest_mismatch, size_mismatch, not_found, metadata_corrupt, invalid_archive, ...
    std::string reason;               ///< one line naming the problem: which byte, field or entry
    std::filesystem::path evicted_to; ///< where verify() moved it, under `tmp/evicted/`; empty when left in place or deleted
    bool evicted = false;             ///< taken off its final name (moved to `evicted_to`, or deleted where it could not be moved)

    friend bool operator==(verify_finding const&, verify_finding const&) = default;
};

/// How verify() runs.
struct verify_options {
    /** Move each damaged item off its final name, into `tmp/evicted/` (under the item's lock),
        so that the next pull, under the default policy, fetches or rebuilds it. Off: report
        only, touch nothing (`ocistore verify --check-only`). Missing items are only reported. */
    bool evict = true;
    /// With a name: check only its record for this platform. Default: every platform recorded under the name.
    std::optional<ocistore::platform> platform;
    /** Check index.json and blobs. Off: only the builder's artifacts are checked; index.json,
        manifests and configs are read to find them (images whose metadata does not verify are
        passed over silently). For a second pass over the same root with another builder. */
    bool check_blobs = true;
    /** How long to wait for each lock (the `gc` lock, then one per item) when the *StoreLock*
        can try (models try_store_lock): an item whose lock stays held longer (a pull working
        on it) is listed in verify_report::skipped. A lock that cannot try is waited for. */
    std::chrono::milliseconds lock_timeout{std::chrono::seconds(30)};
};

/// What verify() examined and found.
struct verify_report {
    std::uint64_t images = 0;             ///< recorded images examined
    std::uint64_t blobs = 0;              ///< blobs hashed (manifests, configs, layer blobs, ...)
    std::uint64_t layer_artifacts = 0;    ///< layer artifacts examined
    std::uint64_t image_artifacts = 0;    ///< image artifact files or trees examined
    std::uint64_t bytes = 0;              ///< bytes read
    std::vector<verify_finding> findings; ///< damaged or missing items, in the order found
    std::vector<std::string> skipped;     ///< items left unchecked, each with the reason (a lock held too long, ...)

    /// Whether nothing was found.
    bool clean() const noexcept { return findings.empty(); }
    /// How many findings were evicted.
    std::uint64_t evicted() const noexcept
    {
        std::uint64_t n = 0;
        for (auto const& f : findings) n += f.evicted ? 1 : 0;
        return n;
    }
};

/// Receives one entry of a replayed layer (see layer_replay); may leave data unread.
using layer_entry_fn = std::function<void(tar_entry const& entry, byte_source_ref data, error_code& ec, std::string* why)>;

/** A layer's entries from a verified source, for a builder that re-derives its artifact in
    verify_layer(): `replay(add, ec, why)` feeds every entry of the layer's kept blob to `add`,
    in archive order, then checks the blob's size, digest and diff_id. Returns false with `ec`
    clear when there is no source (the blob is not kept). When `ec` is set (by the source, the
    checks, or `add`) the entries given so far prove nothing. */
using layer_replay = std::function<bool(layer_entry_fn const& add, error_code& ec, std::string* why)>;

/// A layer of an image, as a builder's verify_image() is told about it.
struct verified_layer {
    digest diff_id;
    bool intact = false; ///< its artifact was examined in this run and found undamaged (so it may be re-derived from)
};

/** What a builder's verify hook (verifiable_artifact_builder) examined and found. Absent
    artifacts are not findings; the store evicts what is reported. */
struct artifact_check {
    std::uint64_t checked = 0;            ///< artifact files or trees examined
    std::uint64_t bytes = 0;              ///< bytes read
    bool rederived = false;               ///< compared with a fresh derivation (else only structural checks)
    std::vector<verify_finding> findings; ///< damaged artifacts (`evicted_to` empty)
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/store_types.ipp>
#endif
