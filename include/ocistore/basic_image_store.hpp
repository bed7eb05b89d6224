// ocistore/basic_image_store.hpp: the store: pulls images into a content-addressed cache and builds their artifacts, composed from four policies.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/blob_download.hpp>
#include <ocistore/detail/buffer_pool.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/inflight.hpp>
#include <ocistore/detail/job_slots.hpp>
#include <ocistore/detail/progress_relay.hpp>
#include <ocistore/detail/thread_budget.hpp>
#include <ocistore/detail/safe_fs.hpp>
#include <ocistore/detail/store_layout.hpp>
#include <ocistore/atomic_file.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/file_source.hpp>
#include <ocistore/hashing_source.hpp>
#include <ocistore/prefetch_source.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/ingest.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/store_types.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {

/** An *ArtifactBuilder* that can also delete the artifacts no recorded image uses:
    `b.prune_artifacts(live_layers, live_images, options, report, ec)` with
    `std::span<digest const>` diff_ids and platform manifest digests to keep, adding what it
    deletes (or would delete, in a dry run) to `prune_report& report`. */
template <class B>
concept prunable_artifact_builder =
    artifact_builder<B> && requires(B& b, std::span<digest const> keep, prune_options const& o, prune_report& r,
                                    error_code& ec) { b.prune_artifacts(keep, keep, o, r, ec); };

/** An *ArtifactBuilder* whose artifacts verify() can check (docs/store.md, "Verify"):

    | expression                        | meaning |
    |-----------------------------------|---------|
    | `b.verify_layer(diff_id, replay, ec)` | artifact_check: the layer artifact held for `digest const& diff_id`, if any, compared with one re-derived from `layer_replay const& replay` when that has a source, else checked structurally |
    | `b.verify_image(key, layers, ec)` | artifact_check: the image artifact for `digest const& key`, if any, over `std::span<verified_layer const> layers` (bottom first) |

    Absent artifacts are not findings; `ec` reports only failures to check (I/O). The store
    calls them under the layer's or the image's lock and evicts what they report. */
template <class B>
concept verifiable_artifact_builder =
    artifact_builder<B> && requires(B& b, digest const& d, layer_replay const& replay,
                                    std::span<verified_layer const> layers, error_code& ec) {
        { b.verify_layer(d, replay, ec) } -> std::same_as<artifact_check>;
        { b.verify_image(d, layers, ec) } -> std::same_as<artifact_check>;
    };

namespace detail {

/// The builder's artifact paths for a layer or image result, when it names them.
template <class B, class R>
std::vector<std::filesystem::path> artifact_paths_of(B const& b, R const& r)
{
    if constexpr (requires { { b.artifact_paths(r) } -> std::convertible_to<std::vector<std::filesystem::path>>; })
        return b.artifact_paths(r);
    else
        return {};
}

/// Whether a builder produces artifacts at all (null_builder does not).
template <class B> constexpr bool builds_artifacts() { return std::string_view(B::kind) != "none"; }

/// Counts what an entry sink consumes, for build progress.
template <class Sink, class OnProgress>
class counting_sink {
public:
    counting_sink(Sink& sink, OnProgress on_progress) : sink_(sink), on_progress_(std::move(on_progress)) {}

    void add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec, std::string* why)
    {
        if constexpr (requires { sink_.add_entry(entry, data, ec, why); })
            sink_.add_entry(entry, data, ec, why);
        else
            sink_.add_entry(entry, data, ec);
        ++entries_;
        bytes_ += entry.size;
        on_progress_(bytes_, entries_);
    }

private:
    Sink& sink_;
    OnProgress on_progress_;
    std::uint64_t entries_ = 0;
    std::uint64_t bytes_ = 0;
};

} // namespace detail

/** The image store: pulls OCI images into a cache root that is a valid OCI image layout,
    verifying every byte, and builds their artifacts, composed at compile time from:

    - `Transport` (*Transport*): where manifests and blobs come from;
    - `Hasher` (*Hasher*): the digest algorithm every blob is verified with;
    - `Lock` (*StoreLock*): how processes and threads sharing the root coordinate;
    - `ArtifactBuilder` (*ArtifactBuilder*): what is built from the layers.

    **Pull** (see pull()): resolve the reference (index → platform manifest) → config →
    layers, concurrently: each layer streams once through network → blob hash → `.part` →
    decompress → diff_id hash → tar → builder, and is published only once verified. A
    layer whose artifact is already held for its diff_id is not downloaded. Interrupted
    downloads resume from their `.part`. Then the image artifact is composed and the
    reference recorded in `index.json`.

    **Layout** (docs/store.md): `oci-layout`, `index.json` (one descriptor per pulled name and
    platform, annotated `org.opencontainers.image.ref.name`), `blobs/<alg>/<hex>`, the
    builder's directories, `locks/`, `tmp/`.

    **Concurrency.** Every member may be called from several threads at once. Pulls of one
    name and platform in one process share one run; layers shared by several pulls of one
    process are downloaded once. Across processes, locks (per reference, blob, diff_id
    build, compose, plus `index` and `gc`) serialise the same work, and each step re-checks
    the cache after taking its lock. A cached pull takes no lock and does no network I/O.

    Every operation has an `error_code&` overload (with an optional `std::string* why` for a
    one-line reason) and a throwing overload (system_error whose what() carries the reason).
*/
template <transport Transport, hasher Hasher, store_lock Lock, artifact_builder ArtifactBuilder>
class basic_image_store {
public:
    using transport_type = Transport;
    using hasher_type = Hasher;
    using lock_type = Lock;
    using builder_type = ArtifactBuilder;

    /// A store on `root` using the given policy instances (the lock and builder normally
    /// work below `root` too: `root/"locks"`, `root`). Does no I/O until the first operation.
    basic_image_store(std::filesystem::path root, Transport transport, Lock lock, ArtifactBuilder builder,
                      store_options options = {})
        requires std::move_constructible<Transport>
        : layout_{std::move(root)}, transport_(std::move(transport)), lock_(std::move(lock)),
          builder_(std::move(builder)), options_(options), shared_(std::make_unique<shared_state>())
    {
    }

    /// As above, with the transport constructed in place from `transport_args` (for
    /// transports that are neither copyable nor movable).
    template <class... Args>
        requires std::constructible_from<Transport, Args...>
    basic_image_store(std::filesystem::path root, Lock lock, ArtifactBuilder builder, store_options options,
                      std::in_place_t, Args&&... transport_args)
        : layout_{std::move(root)}, transport_(std::forward<Args>(transport_args)...), lock_(std::move(lock)),
          builder_(std::move(builder)), options_(options), shared_(std::make_unique<shared_state>())
    {
    }

    /// A store on `root` whose policies are built from it: `Transport{}`,
    /// `Lock(root / "locks")`, `ArtifactBuilder(root)`.
    explicit basic_image_store(std::filesystem::path root, store_options options = {})
        requires std::default_initializable<Transport> && std::constructible_from<Lock, std::filesystem::path> &&
                 std::constructible_from<ArtifactBuilder, std::filesystem::path>
        : layout_{root}, lock_(root / "locks"), builder_(root), options_(options),
          shared_(std::make_unique<shared_state>())
    {
    }

    basic_image_store(basic_image_store&&) noexcept = default;
    basic_image_store& operator=(basic_image_store&&) noexcept = default;

    std::filesystem::path const& root() const noexcept { return layout_.root; }
    Transport& transport() noexcept { return transport_; }
    Lock& lock() noexcept { return lock_; }
    ArtifactBuilder& builder() noexcept { return builder_; }
    store_options const& options() const noexcept { return options_; }

    // ---------------------------------------------------------------- pull

    /** Pulls `ref` and builds its artifacts; see the class comment and docs/store.md.

        `name` is what index.json records the image as (default `ref.str()`), e.g.
        "oci:/path:tag" for an import. Errors: those of the transport (condition::transient,
        not_found, unauthorized, …), of parsing (invalid_manifest, invalid_config,
        no_matching_platform, unsupported_media_type, …), of verification
        (digest_mismatch, size_mismatch, diff_id_mismatch: the temporary is deleted), of the
        builder, of storage (errno values), error::not_cached under policy `never`,
        error::cancelled on a stop request. On failure nothing unverified is published and
        `.part` downloads that are still good stay for a resume. */
    pull_result pull(image_reference const& ref, pull_options const& opts, error_code& ec, std::string* why = nullptr,
                     std::string_view name = {})
    {
        ec.clear();
        if (why) why->clear();
        std::string const record_name = name.empty() ? ref.str() : std::string(name);
        platform const wanted = (opts.platform ? *opts.platform : host_platform()).normalized();

        if (opts.policy != pull_policy::always && !opts.force) {
            error_code cec;
            if (auto hit = lookup(record_name, wanted, cec)) {
                hit->reference = ref;
                if (opts.progress) {
                    progress_event ev;
                    ev.reference = ref.str();
                    ev.kind = progress_kind::resolving;
                    opts.progress(ev);
                    ev.kind = progress_kind::resolved;
                    ev.layers = hit->layers.size();
                    ev.manifest_digest = hit->manifest_digest;
                    for (auto const& l : hit->layers) ev.total += l.size;
                    opts.progress(ev);
                    ev.kind = progress_kind::complete;
                    ev.cached = true;
                    opts.progress(ev);
                }
                return std::move(*hit);
            }
        }
        if (opts.policy == pull_policy::never) {
            ec = make_error_code(error::not_cached);
            if (why) *why = record_name + " (" + wanted.to_string() + ") is not in the cache and the policy is never";
            return {};
        }

        // One run per name and platform in this process: followers wait for the leader.
        std::string const key = record_name + '\n' + wanted.to_string();
        for (;;) {
            auto [job, leader] = shared_->pulls.join(key);
            if (!leader) {
                std::size_t sub = 0;
                if (opts.progress) sub = job->subscribe(opts.progress);
                auto r = job->wait(ec, why);
                job->unsubscribe(sub);
                if (ec == make_error_code(error::cancelled) && !opts.stop.stop_requested()) continue;
                if (ec || !r) return {};
                r->reference = ref;
                r->downloaded_bytes = 0;
                return std::move(*r);
            }
            detail::progress_relay relay;
            relay.add_listener(opts.progress);
            std::size_t const sub = job->subscribe([&relay](progress_event const& ev) { relay.post(ev); });
            std::string reason;
            auto r = pull_slow(ref, record_name, wanted, opts, *job, ec, &reason);
            job->unsubscribe(sub);
            relay.close();
            if (why) *why = reason;
            shared_->pulls.finish(key, job, ec ? std::nullopt : std::optional<pull_result>(r), ec, reason);
            return r;
        }
    }

    /// @throws system_error.
    pull_result pull(image_reference const& ref, pull_options const& opts = {}, std::string_view name = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return pull(ref, opts, ec, why, name); });
    }

    // ------------------------------------------------------------ queries

    /** The images recorded in index.json. A malformed index.json is error::metadata_corrupt
        (the next pull repairs it). */
    std::vector<image_entry> list(error_code& ec, std::string* why = nullptr) const
    {
        std::vector<image_entry> out;
        auto records = detail::read_index_records(layout_, ec, why);
        if (ec) return out;
        for (auto& r : records)
            out.push_back(image_entry{std::move(r.name), std::move(r.platform), std::move(r.manifest_digest),
                                      std::move(r.index_digest), std::move(r.media_type), r.size});
        return out;
    }
    /// @throws system_error.
    std::vector<image_entry> list() const
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return list(ec, why); });
    }

    /** The cached image recorded as `name` for `p` (default: the host's platform; an image
        recorded for one platform only is found whatever `p`), checked like a cached pull:
        the blobs it needs and its artifacts must be present and valid. Absent or incomplete:
        error::not_cached. No network access, no lock. */
    pull_result inspect(std::string_view name, std::optional<platform> p, error_code& ec,
                        std::string* why = nullptr)
    {
        ec.clear();
        platform const wanted = (p ? *p : host_platform()).normalized();
        error_code lec;
        auto hit = lookup(std::string(name), wanted, lec);
        if (!hit) {
            ec = make_error_code(error::not_cached);
            if (why) *why = std::string(name) + " is not in the cache (or is incomplete)";
            return {};
        }
        return std::move(*hit);
    }
    pull_result inspect(image_reference const& ref, std::optional<platform> p, error_code& ec, std::string* why = nullptr)
    {
        return inspect(ref.str(), std::move(p), ec, why);
    }
    /// @throws system_error.
    pull_result inspect(std::string_view name, std::optional<platform> p = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return inspect(name, p, ec, why); });
    }
    /// @throws system_error.
    pull_result inspect(image_reference const& ref, std::optional<platform> p = {}) { return inspect(ref.str(), p); }

    /** Forgets the image recorded as `name` (for platform `p`, or for every platform): its
        index.json descriptors go; blobs and artifacts stay until prune(). Returns how many
        descriptors were removed; none: error::not_found. */
    std::size_t remove(std::string_view name, std::optional<platform> p, error_code& ec, std::string* why = nullptr)
    {
        ec.clear();
        auto guard = lock_.acquire(detail::index_lock_key, lock_mode::exclusive, ec);
        if (ec) return detail::set_why(why, "cannot lock the index: " + ec.message()), 0;
        auto records = detail::read_index_records(layout_, ec, why);
        if (ec) return 0;
        auto const before = records.size();
        std::optional<platform> np;
        if (p) np = p->normalized();
        std::erase_if(records, [&](detail::index_record const& r) {
            return r.name == name && (!np || r.platform.normalized() == *np);
        });
        std::size_t const removed = before - records.size();
        if (removed == 0) {
            ec = make_error_code(error::not_found);
            return detail::set_why(why, "no image named " + std::string(name) + " in the cache"), 0;
        }
        detail::write_index_records(layout_, records, options_.durable, ec, why);
        return ec ? 0 : removed;
    }
    std::size_t remove(image_reference const& ref, std::optional<platform> p, error_code& ec, std::string* why = nullptr)
    {
        return remove(ref.str(), std::move(p), ec, why);
    }
    /// @throws system_error.
    std::size_t remove(std::string_view name, std::optional<platform> p = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return remove(name, p, ec, why); });
    }
    /// @throws system_error.
    std::size_t remove(image_reference const& ref, std::optional<platform> p = {}) { return remove(ref.str(), p); }

    /** Deletes what no recorded image uses: blobs outside every recorded image's manifest,
        config and layers (and index), layer artifacts of other diff_ids and image artifacts
        of other manifests (when the builder models prunable_artifact_builder), and stale
        temporaries and `.part` files older than `options.tmp_grace`. Waits for running pulls
        (in every process) to end and holds them off meanwhile. A malformed index.json is
        error::metadata_corrupt and nothing is deleted. */
    prune_report prune(prune_options const& options, error_code& ec, std::string* why = nullptr)
    {
        ec.clear();
        prune_report report;
        if (!std::filesystem::exists(layout_.root)) return report;
        auto gc = lock_.acquire(detail::gc_lock_key, lock_mode::exclusive, ec);
        if (ec) return detail::set_why(why, "cannot lock the cache for pruning: " + ec.message()), report;
        auto records = detail::read_index_records(layout_, ec, why);
        if (ec) return report;
        std::set<digest> live_blobs;
        std::set<digest> live_layers;
        std::set<digest> live_images;
        for (auto const& r : records) {
            live_blobs.insert(r.manifest_digest);
            live_images.insert(r.manifest_digest);
            if (r.index_digest) live_blobs.insert(*r.index_digest);
            error_code mec;
            auto text = detail::safe_fs::read_small_file(layout_.blob(r.manifest_digest), max_manifest_size, mec);
            if (mec) continue;
            auto doc = parse_manifest(text, r.media_type, mec);
            if (mec || doc.is_index()) continue;
            auto const& m = doc.manifest();
            live_blobs.insert(m.config.digest);
            for (auto const& l : m.layers) live_blobs.insert(l.digest);
            auto ctext = detail::safe_fs::read_small_file(layout_.blob(m.config.digest), max_config_default, mec);
            if (mec) continue;
            auto cfg = parse_image_config(ctext, mec);
            if (mec) continue;
            for (auto const& d : cfg.image.rootfs.diff_ids) live_layers.insert(d);
        }
        std::error_code it_ec;
        for (auto alg = std::filesystem::directory_iterator(layout_.blobs(), it_ec);
             !it_ec && alg != std::filesystem::directory_iterator(); alg.increment(it_ec)) {
            std::error_code fec;
            for (auto f = std::filesystem::directory_iterator(alg->path(), fec);
                 !fec && f != std::filesystem::directory_iterator(); f.increment(fec)) {
                auto const fname = f->path().filename().string();
                if (!fname.empty() && fname[0] == '.') continue; // temporaries: collect_temporaries
                error_code dec;
                auto d = digest::parse(alg->path().filename().string() + ":" + fname, dec);
                if (!dec && live_blobs.count(d)) continue;
                auto const size = detail::regular_file_size(f->path()).value_or(0);
                if (!options.dry_run) {
                    std::error_code rec;
                    std::filesystem::remove(f->path(), rec);
                    if (rec) {
                        ec = rec;
                        return detail::set_why(why, "cannot remove " + f->path().string() + ": " + rec.message()), report;
                    }
                }
                ++report.blobs;
                report.bytes += size;
                report.removed.push_back(f->path());
            }
        }
        if constexpr (prunable_artifact_builder<ArtifactBuilder>) {
            std::vector<digest> const keep_layers(live_layers.begin(), live_layers.end());
            std::vector<digest> const keep_images(live_images.begin(), live_images.end());
            builder_.prune_artifacts(std::span<digest const>(keep_layers), std::span<digest const>(keep_images),
                                     options, report, ec);
            if (ec) return detail::set_why(why, "cannot prune artifacts: " + ec.message()), report;
        }
        detail::collect_temporaries(layout_, options, report, ec);
        if (ec) detail::set_why(why, "cannot remove temporaries: " + ec.message());
        return report;
    }
    /// @throws system_error.
    prune_report prune(prune_options const& options = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return prune(options, ec, why); });
    }

    // ------------------------------------------------------------ verify

    /** Checks what the cache holds for the image recorded as `name` (each platform recorded
        under it, or only `options.platform`'s), without network access: index.json, the
        image's index, manifest and config blobs (size and digest), its kept layer blobs, and
        the builder's artifacts for it when the builder models verifiable_artifact_builder.
        With `options.evict` each damaged item is moved off its final name, under its lock,
        so that the next pull (policy if_missing) fetches or rebuilds it. docs/store.md,
        "Verify", lists what is checked and how.

        Findings are not errors. `ec` reports failures to verify or to evict (the report then
        holds what was found): error::not_found when nothing is recorded as `name`,
        error::lock_failed when the cache stays locked for pruning longer than
        `options.lock_timeout`, errno values. */
    verify_report verify(std::string_view name, verify_options const& options, error_code& ec, std::string* why = nullptr)
    {
        return verify_cache(std::string(name), options, ec, why);
    }
    verify_report verify(image_reference const& ref, verify_options const& options, error_code& ec,
                         std::string* why = nullptr)
    {
        return verify_cache(ref.str(), options, ec, why);
    }
    /** As above for the whole cache: every recorded image, then every other blob in `blobs/`
        (which must hash to its name). */
    verify_report verify(verify_options const& options, error_code& ec, std::string* why = nullptr)
    {
        return verify_cache(std::nullopt, options, ec, why);
    }
    /// @throws system_error.
    verify_report verify(std::string_view name, verify_options const& options = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return verify(name, options, ec, why); });
    }
    /// @throws system_error.
    verify_report verify(image_reference const& ref, verify_options const& options = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return verify(ref, options, ec, why); });
    }
    /// @throws system_error.
    verify_report verify(verify_options const& options = {})
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return verify(options, ec, why); });
    }

private:
    static constexpr std::uint64_t max_config_default = 8 * 1024 * 1024;

    using layer_result_t = typename ArtifactBuilder::layer_result;

    /// What one layer job produced.
    struct layer_outcome {
        std::optional<layer_result_t> result;
        bool downloaded = false;
        bool built = false;
        std::uint64_t network_bytes = 0;
    };

    struct shared_state {
        detail::inflight_table<pull_result> pulls;
        detail::inflight_table<layer_outcome> layers;
    };

    static progress_event event_of(progress_kind k)
    {
        progress_event ev;
        ev.kind = k;
        return ev;
    }

    bool verifiable(digest const& d) const { return d.algorithm() == std::string_view(Hasher::algorithm); }

    /// Reads a blob from the cache and checks its size and digest; empty when absent or bad.
    std::optional<std::string> read_cached_blob(digest const& d, std::uint64_t limit) const
    {
        if (!verifiable(d)) return std::nullopt;
        error_code ec;
        auto text = detail::safe_fs::read_small_file(layout_.blob(d), limit, ec);
        if (ec || digest_of<Hasher>(text) != d) return std::nullopt;
        return text;
    }

    /// Whether the blob file at `path` has `blob`'s size and digest.
    bool kept_blob_intact(std::filesystem::path const& path, descriptor const& blob) const
    {
        error_code ec;
        file_source src;
        src.open(path, 0, ec);
        if (ec) return false;
        basic_hashing_source<file_source, Hasher> hashed(src);
        drain(hashed, ec);
        return !ec && hashed.bytes() == static_cast<std::uint64_t>(blob.size) && hashed.finish_digest() == blob.digest;
    }

    /// Whether verify() evicted blob `d` and no pull has fetched it again yet.
    bool eviction_pending(digest const& d) const
    {
        struct stat st {};
        return ::lstat(layout_.evicted_blob(d).c_str(), &st) == 0 && ::lstat(layout_.blob(d).c_str(), &st) != 0;
    }

    /** Whether the builder holds diff_id's artifact (for null_builder: whether the blob is kept),
        and no blob of the layer awaits a re-fetch after verify() evicted it. */
    bool layer_held(descriptor const& blob, digest const& diff_id, std::optional<layer_result_t>& out)
    {
        if (eviction_pending(blob.digest)) return false;
        error_code ec;
        if constexpr (detail::builds_artifacts<ArtifactBuilder>()) {
            out = builder_.layer(diff_id, ec);
            return !ec && out.has_value();
        } else {
            auto size = detail::regular_file_size(layout_.blob(blob.digest));
            if (!size || *size != static_cast<std::uint64_t>(blob.size)) return false;
            out = layer_result_t{diff_id};
            return true;
        }
    }

    /** The cached image `name` for `wanted`, checked: manifest and config blobs verified,
        every layer and the image artifact held. Corrupt or missing pieces: empty (a miss). */
    std::optional<pull_result> lookup(std::string const& name, platform const& wanted, error_code& ec)
    {
        ec.clear();
        auto records = detail::read_index_records(layout_, ec, nullptr);
        if (ec) return std::nullopt;
        detail::index_record const* found = nullptr;
        std::size_t named = 0;
        detail::index_record const* only = nullptr;
        for (auto const& r : records) {
            if (r.name != name) continue;
            ++named;
            only = &r;
            if (r.platform.normalized() == wanted) found = &r;
        }
        if (!found && named == 1 && !only->index_digest) found = only; // a single-platform image
        if (!found) return std::nullopt;
        auto mtext = read_cached_blob(found->manifest_digest, max_manifest_size);
        if (!mtext) return std::nullopt;
        error_code pec;
        auto doc = parse_manifest(*mtext, found->media_type, pec);
        if (pec || doc.is_index()) return std::nullopt;
        auto const& m = doc.manifest();
        auto ctext = read_cached_blob(m.config.digest, max_config_default);
        if (!ctext) return std::nullopt;
        auto cfg = parse_image_config(*ctext, pec);
        if (pec || cfg.image.rootfs.diff_ids.size() != m.layers.size()) return std::nullopt;
        if (found->index_digest && !read_cached_blob(*found->index_digest, max_manifest_size)) return std::nullopt;

        pull_result r;
        r.platform = found->platform;
        r.index_digest = found->index_digest;
        r.manifest_digest = found->manifest_digest;
        r.config_digest = m.config.digest;
        r.manifest_media_type = doc.media_type;
        r.artifact_kind = std::string(ArtifactBuilder::kind);
        r.cached = true;
        std::vector<layer_result_t> held;
        for (std::size_t i = 0; i < m.layers.size(); ++i) {
            std::optional<layer_result_t> lr;
            if (!layer_held(m.layers[i], cfg.image.rootfs.diff_ids[i], lr)) return std::nullopt;
            layer_record rec{m.layers[i].digest, cfg.image.rootfs.diff_ids[i],
                             static_cast<std::uint64_t>(m.layers[i].size), m.layers[i].media_type,
                             detail::artifact_paths_of(builder_, *lr), false, false};
            r.layers.push_back(std::move(rec));
        }
        if constexpr (detail::builds_artifacts<ArtifactBuilder>()) {
            error_code iec;
            auto img = builder_.image(found->manifest_digest, iec);
            if (iec || !img) return std::nullopt;
            r.image_artifacts = detail::artifact_paths_of(builder_, *img);
        }
        r.config = std::move(cfg.image);
        return r;
    }

    /// Writes `bytes` as blob `d` unless a verified copy is there.
    void store_blob(digest const& d, std::string_view bytes, error_code& ec, std::string* why)
    {
        ec.clear();
        auto const path = layout_.blob(d);
        if (auto size = detail::regular_file_size(path); size && *size == bytes.size() &&
                                                         read_cached_blob(d, bytes.size()))
            return;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (!ec) write_file_atomically(path, bytes, atomic_file_options{.durable = options_.durable}, ec);
        if (ec) detail::set_why(why, "cannot write " + path.string() + ": " + ec.message());
    }

    /// Fetches a manifest and verifies it against `expected` (digest and size) when given.
    manifest_document fetch_document(image_reference const& ref, std::optional<descriptor> const& expected,
                                     digest& actual, error_code& ec, std::string* why)
    {
        auto const accept = std::span<std::string_view const>(media_types::default_accept);
        fetched_manifest fm = transport_.fetch_manifest(ref, accept, ec);
        if (ec) return detail::set_why(why, "cannot fetch the manifest of " + ref.str() + ": " + ec.message()), manifest_document{};
        actual = digest_of<Hasher>(fm.bytes);
        std::optional<digest> want = expected ? std::optional<digest>(expected->digest) : ref.digest();
        if (want) {
            if (!verifiable(*want)) {
                ec = make_error_code(error::unsupported_digest_algorithm);
                return detail::set_why(why, "cannot verify " + want->str() + " with " + std::string(Hasher::algorithm)),
                       manifest_document{};
            }
            if (actual != *want) {
                ec = make_error_code(error::digest_mismatch);
                return detail::set_why(why, "manifest of " + ref.str() + ": expected " + want->str() + ", content hashes to " +
                                           actual.str()),
                       manifest_document{};
            }
        }
        if (expected && static_cast<std::uint64_t>(expected->size) != fm.bytes.size()) {
            ec = make_error_code(error::size_mismatch);
            return detail::set_why(why, "manifest " + expected->digest.str() + ": index says " + std::to_string(expected->size) +
                                       " bytes, got " + std::to_string(fm.bytes.size())),
                   manifest_document{};
        }
        std::string pwhy;
        auto doc = parse_manifest(fm.bytes, fm.media_type, ec, &pwhy);
        if (ec) return detail::set_why(why, "manifest of " + ref.str() + ": " + (pwhy.empty() ? ec.message() : pwhy)), doc;
        return doc;
    }

    /// Reads the config blob (cache first), verified; `fetched`: it came from the transport
    /// (and is not stored yet).
    std::string fetch_config(image_reference const& ref, descriptor const& desc, pull_options const& opts,
                             bool& fetched, error_code& ec, std::string* why)
    {
        ec.clear();
        fetched = false;
        if (!verifiable(desc.digest)) {
            ec = make_error_code(error::unsupported_digest_algorithm);
            return detail::set_why(why, "cannot verify config " + desc.digest.str()), std::string{};
        }
        if (desc.size < 0 || static_cast<std::uint64_t>(desc.size) > opts.max_config_size) {
            ec = make_error_code(error::too_large);
            return detail::set_why(why, "config " + desc.digest.str() + " declares " + std::to_string(desc.size) +
                                       " bytes, over the limit of " + std::to_string(opts.max_config_size)),
                   std::string{};
        }
        if (!opts.force)
            if (auto cached = read_cached_blob(desc.digest, opts.max_config_size)) return std::move(*cached);
        auto reader = transport_.open_blob(ref, desc.digest, 0, ec);
        if (ec) return detail::set_why(why, "cannot fetch config " + desc.digest.str() + ": " + ec.message()), std::string{};
        std::string text;
        std::array<std::byte, 16384> buf;
        for (;;) {
            std::size_t n = reader.read_some(buf, ec);
            if (ec) return detail::set_why(why, "config " + desc.digest.str() + ": " + ec.message()), std::string{};
            if (n == 0) break;
            text.append(reinterpret_cast<char const*>(buf.data()), n);
            if (text.size() > static_cast<std::uint64_t>(desc.size)) break;
        }
        if (text.size() != static_cast<std::uint64_t>(desc.size)) {
            ec = make_error_code(error::size_mismatch);
            return detail::set_why(why, "config " + desc.digest.str() + ": expected " + std::to_string(desc.size) +
                                       " bytes, got " + (text.size() > static_cast<std::uint64_t>(desc.size) ? "more" : std::to_string(text.size()))),
                   std::string{};
        }
        if (auto const actual = digest_of<Hasher>(text); actual != desc.digest) {
            ec = make_error_code(error::digest_mismatch);
            return detail::set_why(why, "config: expected " + desc.digest.str() + ", content hashes to " + actual.str()),
                   std::string{};
        }
        fetched = true;
        return text;
    }

    struct layer_task {
        image_reference const* ref;
        descriptor const* blob;
        digest const* diff_id;
        std::size_t index;
        layer_compression compression;
        std::pmr::memory_resource* buffers;      ///< the pull's pool for read-ahead rings
        std::pmr::memory_resource* read_buffers; ///< the pull's pool of blob_read_size buffers
        detail::thread_budget* threads;          ///< the pull's threads against the cores
        /// The job's slot among the pull's busy layers, released before the layer waits for
        /// the disk (its fdatasync, fsyncs and renames); null: none to release.
        detail::job_slots::slot* slot = nullptr;

        void leave_busy() const noexcept
        {
            if (slot) slot->release();
        }
    };

    /// Bytes per read of a blob download that runs on its job's thread alone.
    static constexpr std::size_t blob_read_size = std::size_t(1) << 20;

    /// Streams one layer into the builder from `source`, then publishes (blob rename by `publish`, then the layer).
    template <class Source, class Publish>
    std::optional<layer_result_t> ingest_into_builder(Source& source, layer_task const& t, pull_options const& opts,
                                                      typename detail::inflight_table<layer_outcome>::job& job,
                                                      Publish&& publish, error_code& ec, std::string* why)
    {
        layer_info info{*t.diff_id, t.index};
        auto sink = builder_.begin_layer(info, ec);
        if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + ": cannot start the build: " + ec.message()), std::nullopt;
        progress_event started = layer_event(t, progress_kind::build_started);
        job.emit(started);
        detail::progress_throttle throttle(opts.progress_bytes, opts.progress_interval);
        auto on_build = [&](std::uint64_t bytes, std::uint64_t entries) {
            if (!throttle.due(bytes)) return;
            progress_event ev = layer_event(t, progress_kind::build_progress);
            ev.current = bytes;
            ev.entries = entries;
            job.emit(ev);
        };
        detail::counting_sink counted(sink, on_build);
        ingest_options io;
        io.compression = t.compression;
        io.expected_blob = t.blob->digest;
        io.expected_size = static_cast<std::uint64_t>(t.blob->size);
        io.expected_diff_id = *t.diff_id;
        io.limits = opts.limits;
        io.decompress = opts.decompress;
        io.prefetch.memory = t.buffers;
        std::string iwhy;
        auto measured = ingest_layer<Hasher>(source, counted, io, ec, &iwhy);
        if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + " (" + t.blob->digest.str() + "): " + iwhy), std::nullopt;
        std::string fwhy;
        auto prepared = [&] {
            if constexpr (requires { sink.finish(ec, &fwhy); })
                return sink.finish(ec, &fwhy);
            else
                return sink.finish(ec);
        }();
        if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + ": " + (fwhy.empty() ? ec.message() : fwhy)), std::nullopt;
        t.leave_busy(); // what remains waits for the disk
        publish(ec, why);
        if (ec) return std::nullopt;
        auto result = builder_.commit_layer(std::move(prepared), ec);
        if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + ": cannot publish: " + ec.message()), std::nullopt;
        progress_event done = layer_event(t, progress_kind::build_complete);
        done.current = measured.uncompressed_size;
        done.entries = measured.entries;
        job.emit(done);
        return result;
    }

    progress_event layer_event(layer_task const& t, progress_kind k) const
    {
        progress_event ev;
        ev.kind = k;
        ev.reference = t.ref->str();
        ev.layer = t.index;
        ev.blob = t.blob->digest;
        ev.total = static_cast<std::uint64_t>(t.blob->size);
        return ev;
    }

    /** Blobs only (a builder of kind "none" without verify_diff_ids): the blob is hashed and
        written as it arrives, and published once its size and digest check out. Network
        reads run ahead on a thread of their own while the pull's threads leave a core idle
        (t.threads), else on this thread. Its diff_id is verified when a builder consumes it
        (every build from a kept blob re-checks it). */
    template <class Source, class Publish>
    std::optional<layer_result_t> verify_blob_only(Source& source, layer_task const& t, Publish&& publish,
                                                   error_code& ec, std::string* why)
    {
        Hasher hasher;
        std::uint64_t bytes = 0;
        if (auto const lease = t.threads->take(2); lease.threads() >= 2) {
            prefetch_options po;
            po.memory = t.buffers;
            basic_prefetch_source<Source> ahead(source, po);
            bytes = ahead.consume([&](std::span<std::byte const> b) { hasher.update(b); }, ec);
        } else {
            // The cores are busy with other layers: read, write and hash on this thread, in
            // large reads (fewer system calls, no hand-offs between threads).
            detail::pooled_buffer const buf(*t.read_buffers, blob_read_size);
            for (;;) {
                std::size_t const n = source.read_some(buf.span(), ec);
                if (ec || n == 0) break;
                hasher.update(buf.span().first(n));
                bytes += n;
            }
        }
        if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + " (" + t.blob->digest.str() + "): " + ec.message()), std::nullopt;
        auto const size = static_cast<std::uint64_t>(t.blob->size);
        if (bytes != size) {
            ec = make_error_code(error::size_mismatch);
            return detail::set_why(why, "layer blob: expected " + std::to_string(size) + " bytes, read " + std::to_string(bytes)), std::nullopt;
        }
        if (auto const d = finish_digest(hasher); d != t.blob->digest) {
            ec = make_error_code(error::digest_mismatch);
            return detail::set_why(why, "layer blob: expected " + t.blob->digest.str() + ", content hashes to " + d.str()), std::nullopt;
        }
        t.leave_busy(); // what remains waits for the disk
        publish(ec, why);
        if (ec) return std::nullopt;
        if constexpr (detail::builds_artifacts<ArtifactBuilder>())
            return std::nullopt; // unreachable: only called for blobs-only builders
        else
            return layer_result_t{*t.diff_id};
    }

    /// The leader's work for one layer: reuse, build from a kept blob, or download (resuming).
    std::optional<layer_outcome> run_layer(layer_task const& t, pull_options const& opts, std::stop_token stop,
                                           typename detail::inflight_table<layer_outcome>::job& job, error_code& ec,
                                           std::string* why)
    {
        ec.clear();
        layer_outcome out;
        auto const& blob = *t.blob;
        auto const size = static_cast<std::uint64_t>(blob.size);
        auto reused = [&](std::optional<layer_result_t> lr) {
            out.result = std::move(lr);
            progress_event ev = layer_event(t, progress_kind::download_complete);
            ev.current = size;
            ev.cached = true;
            job.emit(ev);
            ev.kind = progress_kind::build_complete;
            job.emit(ev);
            return out;
        };
        std::optional<layer_result_t> held;
        if (!opts.force && layer_held(blob, *t.diff_id, held)) return reused(std::move(held));

        auto blob_guard = lock_.acquire(detail::blob_lock_key(blob.digest), lock_mode::exclusive, ec);
        if (ec) return detail::set_why(why, "cannot lock blob " + blob.digest.str() + ": " + ec.message()), std::nullopt;
        auto build_guard = lock_.acquire(detail::layer_lock_key(*t.diff_id), lock_mode::exclusive, ec);
        if (ec) return detail::set_why(why, "cannot lock layer " + t.diff_id->str() + ": " + ec.message()), std::nullopt;
        if (!opts.force && layer_held(blob, *t.diff_id, held)) return reused(std::move(held));

        auto const final_path = layout_.blob(blob.digest);
        // A verified blob in the cache: build from it, no download.
        if (!opts.force) {
            if (auto have = detail::regular_file_size(final_path); have && *have == size) {
                file_source src;
                src.open(final_path, 0, ec);
                if (!ec) {
                    std::string iwhy;
                    auto lr = ingest_into_builder(src, t, opts, job, [](error_code& e, std::string*) { e.clear(); }, ec, &iwhy);
                    if (!ec) {
                        out.result = std::move(lr);
                        out.built = true;
                        progress_event ev = layer_event(t, progress_kind::download_complete);
                        ev.current = size;
                        ev.cached = true;
                        job.emit(ev);
                        return out;
                    }
                    // A kept blob that still hashes right is bad content (a lying diff_id, a
                    // hostile archive): report it. Otherwise the copy was damaged: fetch again.
                    if (ec == condition::transient || ec == condition::storage || ec == make_error_code(error::cancelled) ||
                        kept_blob_intact(final_path, blob))
                        return detail::set_why(why, iwhy), std::nullopt;
                }
                std::error_code rec;
                std::filesystem::remove(final_path, rec); // corrupt: download again
            }
        }

        // Download, resuming from a .part when one is usable.
        auto const part = layout_.part(blob.digest);
        std::filesystem::create_directories(part.parent_path(), ec);
        if (ec) return detail::set_why(why, "cannot create " + part.parent_path().string() + ": " + ec.message()), std::nullopt;
        int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return ec = detail::errno_code(errno), detail::set_why(why, "cannot open " + part.string() + ": " + ec.message()), std::nullopt;
        detail::safe_fs::unique_fd part_fd(fd);
        struct stat st {};
        if (::fstat(fd, &st) != 0) return ec = detail::errno_code(errno), std::nullopt;
        std::uint64_t have = static_cast<std::uint64_t>(st.st_size);
        auto truncate_part = [&]() -> bool {
            if (::ftruncate(fd, 0) != 0) {
                ec = detail::errno_code(errno);
                detail::set_why(why, "cannot truncate " + part.string() + ": " + ec.message());
                return false;
            }
            have = 0;
            return true;
        };
        if ((opts.force || have > size) && have != 0 && !truncate_part()) return std::nullopt;

        for (int attempt = 0;; ++attempt) {
            std::optional<typename Transport::blob_reader> network;
            std::uint64_t replay = have;
            if (have < size) {
                auto reader = transport_.open_blob(*t.ref, blob.digest, have, ec);
                if (ec) return detail::set_why(why, "layer " + std::to_string(t.index) + ": cannot fetch " + blob.digest.str() + ": " + ec.message()), std::nullopt;
                if (reader.offset() != have) {
                    if (reader.offset() != 0) {
                        ec = make_error_code(error::protocol_error);
                        return detail::set_why(why, "blob " + blob.digest.str() + ": asked for offset " + std::to_string(have) +
                                                   ", served from " + std::to_string(reader.offset())),
                               std::nullopt;
                    }
                    if (have != 0 && !truncate_part()) return std::nullopt; // the server ignored the Range
                    replay = 0;
                }
                network.emplace(std::move(reader));
            }
            if (replay > 0) {
                progress_event ev = layer_event(t, progress_kind::retry);
                ev.current = replay;
                ev.reason = "resuming from a partial download of " + std::to_string(replay) + " bytes";
                job.emit(ev);
            }
            detail::progress_throttle throttle(opts.progress_bytes, opts.progress_interval);
            detail::blob_download_options dopts;
            dopts.retries = opts.body_retries;
            dopts.backoff = opts.retry_backoff;
            dopts.stop = stop;
            if (options_.durable) dopts.start_writeback_every = std::uint64_t(8) << 20;
            dopts.on_bytes = [&](std::uint64_t n) {
                if (!throttle.due(n) && n != size) return;
                progress_event ev = layer_event(t, progress_kind::download_progress);
                ev.current = n;
                job.emit(ev);
            };
            dopts.on_retry = [&](std::string const& reason, std::uint64_t at) {
                progress_event ev = layer_event(t, progress_kind::retry);
                ev.current = at;
                ev.reason = reason;
                job.emit(ev);
            };
            detail::blob_download_source<Transport> source(transport_, *t.ref, blob.digest, size, fd, replay,
                                                          std::move(network), std::move(dopts));
            auto publish = [&](error_code& pec, std::string* pwhy) {
                pec.clear();
                if (options_.durable && ::fdatasync(fd) != 0) {
                    pec = detail::errno_code(errno);
                    return detail::set_why(pwhy, "cannot sync " + part.string() + ": " + pec.message());
                }
                if (opts.keep_layer_blobs) {
                    // The content is durable; the name becomes so with the one fsync of the
                    // blob directory before index.json records the pull (until then a crash
                    // can only lose the blob, which the next pull fetches again).
                    if (::rename(part.c_str(), final_path.c_str()) != 0) {
                        pec = detail::errno_code(errno);
                        return detail::set_why(pwhy, "cannot publish " + final_path.string() + ": " + pec.message());
                    }
                } else {
                    ::unlink(part.c_str());
                }
                progress_event ev = layer_event(t, progress_kind::download_complete);
                ev.current = size;
                ev.cached = source.network_bytes() == 0;
                job.emit(ev);
            };
            std::string iwhy;
            std::optional<layer_result_t> lr;
            if constexpr (!detail::builds_artifacts<ArtifactBuilder>()) {
                if (!opts.verify_diff_ids)
                    lr = verify_blob_only(source, t, publish, ec, &iwhy);
                else
                    lr = ingest_into_builder(source, t, opts, job, publish, ec, &iwhy);
            } else {
                lr = ingest_into_builder(source, t, opts, job, publish, ec, &iwhy);
            }
            out.network_bytes += source.network_bytes();
            if (!ec) {
                out.result = std::move(lr);
                out.downloaded = source.network_bytes() > 0;
                out.built = true;
                return out;
            }
            // Network, cancellation and storage failures keep the .part (a good prefix) for a
            // resume. Anything else means bad content: never keep it; and since a replayed
            // prefix may be what was bad, try once more from scratch.
            bool const keep = ec == condition::transient || ec == make_error_code(error::cancelled) ||
                              ec == condition::storage;
            if (!keep) {
                bool const retry_fresh = replay > 0 && attempt == 0;
                if (!truncate_part()) return std::nullopt;
                ::unlink(part.c_str());
                if (retry_fresh) {
                    int const nfd = ::open(part.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
                    if (nfd < 0) return ec = detail::errno_code(errno), std::nullopt;
                    part_fd = detail::safe_fs::unique_fd(nfd);
                    fd = nfd;
                    continue;
                }
            }
            if (!source.write_failure().empty()) // the stages downstream see only a failed read
                iwhy = "layer " + std::to_string(t.index) + " (" + blob.digest.str() + "): " + part.string() + ": " +
                       source.write_failure();
            detail::set_why(why, iwhy);
            return std::nullopt;
        }
    }

    /// Runs (or joins) the job of one layer.
    std::optional<layer_outcome> layer_job(layer_task const& t, pull_options const& opts, std::stop_token stop,
                                           detail::progress_relay& relay, error_code& ec, std::string* why)
    {
        // Keyed by blob and diff_id: the same blob under a different builder state is still one download.
        std::string const key = t.blob->digest.str() + '\n' + t.diff_id->str();
        for (;;) {
            auto [job, leader] = shared_->layers.join(key);
            std::size_t const index = t.index;
            std::string const reference = t.ref->str();
            std::size_t const sub = job->subscribe([&relay, index, reference](progress_event const& ev) {
                progress_event copy = ev;
                copy.layer = index;
                copy.reference = reference;
                relay.post(std::move(copy));
            });
            if (!leader) {
                auto r = job->wait(ec, why);
                job->unsubscribe(sub);
                if (ec == make_error_code(error::cancelled) && !stop.stop_requested()) continue;
                if (r) r->network_bytes = 0, r->downloaded = false;
                return r;
            }
            std::string reason;
            auto r = run_layer(t, opts, stop, *job, ec, &reason);
            job->unsubscribe(sub);
            if (why) *why = reason;
            shared_->layers.finish(key, job, r, ec, reason);
            return r;
        }
    }

    pull_result pull_slow(image_reference const& ref, std::string const& record_name, platform const& wanted,
                          pull_options const& opts, typename detail::inflight_table<pull_result>::job& job,
                          error_code& ec, std::string* why)
    {
        pull_result r;
        r.reference = ref;
        r.artifact_kind = std::string(ArtifactBuilder::kind);
        auto emit = [&](progress_event ev) {
            ev.reference = ref.str();
            job.emit(ev);
        };
        emit(event_of(progress_kind::resolving));

        detail::ensure_store_layout(layout_, options_.durable, ec, why);
        if (ec) return r;
        auto gc = lock_.acquire(detail::gc_lock_key, lock_mode::shared, ec);
        if (ec) return detail::set_why(why, "cannot lock the cache: " + ec.message()), r;
        auto ref_guard = lock_.acquire(detail::reference_lock_key(record_name, wanted), lock_mode::exclusive, ec);
        if (ec) return detail::set_why(why, "cannot lock " + record_name + ": " + ec.message()), r;
        if (opts.policy == pull_policy::if_missing && !opts.force) {
            error_code cec;
            if (auto hit = lookup(record_name, wanted, cec)) { // another process finished it meanwhile
                hit->reference = ref;
                progress_event ev = event_of(progress_kind::resolved);
                ev.layers = hit->layers.size();
                ev.manifest_digest = hit->manifest_digest;
                emit(ev);
                progress_event done = event_of(progress_kind::complete);
                done.cached = true;
                emit(done);
                return std::move(*hit);
            }
        }

        // Resolve: manifest or index, then the platform manifest. The index, manifest and
        // config blobs are published on a thread of their own while the layers run (each costs
        // two fsyncs); index.json, the commit point, is written after they are in place.
        std::vector<std::pair<digest, std::string>> small_blobs;
        digest top;
        auto doc = fetch_document(ref, std::nullopt, top, ec, why);
        if (ec) return r;
        if (doc.is_index()) {
            r.index_digest = top;
            small_blobs.emplace_back(top, doc.raw);
            std::string swhy;
            descriptor chosen = select_manifest(doc.index(), wanted, ec, &swhy);
            if (ec) return detail::set_why(why, ref.str() + ": " + swhy), r;
            if (chosen.platform) r.platform = chosen.platform->normalized();
            digest actual;
            doc = fetch_document(ref.with_digest(chosen.digest), chosen, actual, ec, why);
            if (ec) return r;
            if (doc.is_index()) {
                ec = make_error_code(error::invalid_manifest);
                return detail::set_why(why, ref.str() + ": index entry " + chosen.digest.str() + " is itself an index"), r;
            }
            r.manifest_digest = actual;
        } else {
            r.manifest_digest = top;
        }
        r.manifest_media_type = doc.media_type;
        small_blobs.emplace_back(r.manifest_digest, doc.raw);
        image_manifest const manifest = doc.manifest();

        bool config_fetched = false;
        auto ctext = fetch_config(ref, manifest.config, opts, config_fetched, ec, why);
        if (ec) return r;
        r.config_digest = manifest.config.digest;
        std::string cwhy;
        auto cfg = parse_image_config(ctext, ec, &cwhy);
        if (ec) return detail::set_why(why, "config " + manifest.config.digest.str() + ": " + cwhy), r;
        if (!r.index_digest) r.platform = cfg.image.platform().normalized();
        auto const& diff_ids = cfg.image.rootfs.diff_ids;
        if (diff_ids.size() != manifest.layers.size()) {
            ec = make_error_code(error::invalid_config);
            return detail::set_why(why, ref.str() + ": the manifest has " + std::to_string(manifest.layers.size()) +
                                       " layers but the config lists " + std::to_string(diff_ids.size()) + " diff_ids"),
                   r;
        }
        // Read-ahead rings and read buffers, reused from layer to layer, and the count of
        // threads the layer jobs run; all outlive every layer job below.
        detail::buffer_pool buffers(prefetch_options{}.chunk_size);
        detail::buffer_pool read_buffers(blob_read_size);
        detail::thread_budget budget(std::thread::hardware_concurrency());
        std::vector<layer_task> tasks;
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < manifest.layers.size(); ++i) {
            auto const& l = manifest.layers[i];
            std::string mwhy;
            auto compression = layer_compression_of(l.media_type, ec);
            if (ec) return detail::set_why(why, "layer " + std::to_string(i) + ": unsupported media type \"" + l.media_type + "\""), r;
            for (digest const* d : {&l.digest, &diff_ids[i]})
                if (!verifiable(*d)) {
                    ec = make_error_code(error::unsupported_digest_algorithm);
                    return detail::set_why(why, "layer " + std::to_string(i) + ": cannot verify " + d->str() + " with " +
                                               std::string(Hasher::algorithm)),
                           r;
                }
            tasks.push_back(layer_task{&ref, &l, &diff_ids[i], i, compression, &buffers, &read_buffers, &budget});
            total += static_cast<std::uint64_t>(l.size);
        }
        {
            progress_event ev = event_of(progress_kind::resolved);
            ev.layers = tasks.size();
            ev.total = total;
            ev.manifest_digest = r.manifest_digest;
            emit(ev);
        }

        // A blob verify() evicted is fetched again (layer_held() misses), unless blobs are not kept.
        if (!opts.keep_layer_blobs)
            for (auto const& task : tasks) ::unlink(layout_.evicted_blob(task.blob->digest).c_str());

        if (config_fetched) small_blobs.emplace_back(manifest.config.digest, ctext);
        error_code publish_ec;
        std::string publish_why;
        std::jthread publisher([&] { // joined below, or by its destructor on an early return
            for (auto const& [d, bytes] : small_blobs) {
                store_blob(d, bytes, publish_ec, &publish_why);
                if (publish_ec) return;
            }
        });

        // Layers, concurrently.
        std::vector<std::optional<layer_outcome>> outcomes(tasks.size());
        std::stop_source stopper;
        std::stop_callback forward(opts.stop, [&stopper] { stopper.request_stop(); });
        std::atomic<std::size_t> next{0};
        std::mutex fail_mutex;
        error_code first_ec;
        std::string first_why;
        detail::progress_relay relay;
        relay.add_listener([&job](progress_event const& ev) { job.emit(ev); });
        // One more busy layer than cores, so that a core a layer leaves idle (waiting for the
        // network or a hand-off) has work. A layer leaves the busy ones before it waits for
        // its fsyncs: up to as many again then wait for the disk while others run.
        std::size_t busy = opts.jobs ? opts.jobs : std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()) + 1, 4);
        busy = std::clamp<std::size_t>(busy, 1, 16);
        detail::job_slots slots(busy);
        auto worker = [&] {
            for (;;) {
                if (next.load() >= tasks.size() || stopper.stop_requested()) return;
                // The slot first, then the layer: layers start in manifest order.
                auto slot = slots.acquire();
                std::size_t const i = next.fetch_add(1);
                if (i >= tasks.size() || stopper.stop_requested()) return;
                layer_task task = tasks[i];
                task.slot = &slot;
                error_code lec;
                std::string lwhy;
                outcomes[i] = layer_job(task, opts, stopper.get_token(), relay, lec, &lwhy);
                if (lec) {
                    std::lock_guard lock(fail_mutex);
                    if (!first_ec || (first_ec == make_error_code(error::cancelled) && lec != first_ec)) {
                        first_ec = lec;
                        first_why = lwhy;
                    }
                    stopper.request_stop();
                    return;
                }
            }
        };
        std::size_t const jobs = std::min(2 * busy, std::max<std::size_t>(tasks.size(), 1));
        {
            std::vector<std::jthread> threads;
            for (std::size_t k = 1; k < jobs; ++k) threads.emplace_back(worker);
            worker();
        }
        relay.close();
        if (!first_ec && opts.stop.stop_requested()) first_ec = make_error_code(error::cancelled);
        if (first_ec) {
            ec = first_ec;
            detail::set_why(why, first_why.empty() ? first_ec.message() : first_why);
            return r;
        }
        publisher.join();
        if (publish_ec) {
            ec = publish_ec;
            detail::set_why(why, publish_why);
            return r;
        }
        std::vector<layer_result_t> results;
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            auto& o = *outcomes[i];
            results.push_back(*o.result);
            r.downloaded_bytes += o.network_bytes;
            r.layers.push_back(layer_record{tasks[i].blob->digest, *tasks[i].diff_id,
                                            static_cast<std::uint64_t>(tasks[i].blob->size), tasks[i].blob->media_type,
                                            detail::artifact_paths_of(builder_, *o.result), o.downloaded, o.built});
            if (detail::regular_file_size(layout_.blob(tasks[i].blob->digest))) // fetched again: the eviction is settled
                ::unlink(layout_.evicted_blob(tasks[i].blob->digest).c_str());
        }

        // Compose.
        emit(event_of(progress_kind::compose_started));
        {
            auto compose_guard = lock_.acquire(detail::image_lock_key(r.manifest_digest), lock_mode::exclusive, ec);
            if (ec) return detail::set_why(why, "cannot lock image " + r.manifest_digest.str() + ": " + ec.message()), r;
            std::optional<typename ArtifactBuilder::image_result> img;
            bool cached = false;
            if constexpr (detail::builds_artifacts<ArtifactBuilder>()) {
                if (!opts.force) {
                    error_code iec;
                    img = builder_.image(r.manifest_digest, iec);
                    cached = img.has_value();
                }
            }
            if (!img) {
                std::string bwhy;
                if constexpr (requires { builder_.compose(r.manifest_digest, std::span<layer_result_t const>(results), ec, &bwhy); })
                    img = builder_.compose(r.manifest_digest, std::span<layer_result_t const>(results), ec, &bwhy);
                else
                    img = builder_.compose(r.manifest_digest, std::span<layer_result_t const>(results), ec);
                if (ec) return detail::set_why(why, "cannot compose " + ref.str() + ": " + (bwhy.empty() ? ec.message() : bwhy)), r;
            }
            r.image_artifacts = detail::artifact_paths_of(builder_, *img);
            progress_event ev = event_of(progress_kind::compose_complete);
            ev.cached = cached;
            emit(ev);
        }

        // Record: first make the names of the layer blobs durable (this pull's renames, and
        // those of a concurrent pull whose blobs this one reused), then index.json.
        if (options_.durable) {
            auto const dir = layout_.blobs() / std::string(Hasher::algorithm);
            fsync_directory(dir, ec);
            if (ec == std::errc::no_such_file_or_directory) ec.clear(); // no blob to keep
            if (ec) return detail::set_why(why, "cannot sync " + dir.string() + ": " + ec.message()), r;
        }
        {
            auto index_guard = lock_.acquire(detail::index_lock_key, lock_mode::exclusive, ec);
            if (ec) return detail::set_why(why, "cannot lock the index: " + ec.message()), r;
            error_code rec;
            auto records = detail::read_index_records(layout_, rec, nullptr);
            if (rec) { // corrupt: keep a copy for inspection, start afresh
                std::error_code cec;
                std::filesystem::rename(layout_.index_json(), layout_.root / "index.json.corrupt", cec);
                records.clear();
            }
            platform const recorded = r.platform.os.empty() ? wanted : r.platform;
            std::erase_if(records, [&](detail::index_record const& x) {
                return x.name == record_name && x.platform.normalized() == recorded;
            });
            records.push_back(detail::index_record{record_name, recorded, r.manifest_digest, r.manifest_media_type,
                                                   doc.raw.size(), r.index_digest});
            detail::write_index_records(layout_, records, options_.durable, ec, why);
            if (ec) return r;
        }
        r.platform = r.platform.os.empty() ? wanted : r.platform;
        r.config = std::move(cfg.image);
        progress_event done = event_of(progress_kind::complete);
        done.layers = r.layers.size();
        done.manifest_digest = r.manifest_digest;
        done.current = r.downloaded_bytes;
        emit(done);
        return r;
    }

    // ------------------------------------------------------------ verify (implementation)

    /// The state of one verify() run.
    struct verify_run {
        explicit verify_run(verify_options const& o) : options(o) {}

        verify_options const& options;
        verify_report report;
        std::map<digest, bool> blobs;  ///< blobs examined in this run: intact
        std::set<digest> blobs_tried;  ///< blobs examined or skipped (their lock stayed held)
        std::map<digest, bool> layers; ///< diff_ids whose artifact was examined: present and intact
        std::set<digest> images;       ///< image keys examined
        error_code failure;            ///< the first failure to verify or to evict
        std::string failure_why;

        void fail(error_code const& e, std::string reason)
        {
            if (failure) return;
            failure = e;
            failure_why = std::move(reason);
        }
        lock_mode mode() const noexcept { return options.evict ? lock_mode::exclusive : lock_mode::shared; }
    };

    /// What reading a blob file found.
    struct blob_check {
        bool present = false; ///< something is at the blob's name
        bool intact = false;  ///< a regular file of the right size and digest
        error_code error;
        std::string reason;
        std::uint64_t bytes = 0; ///< bytes read
        std::string text;        ///< the content, when asked for and intact
    };

    static std::string describe_ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

    /** Takes `key` for verify(): waits at most `timeout` when the lock can try, else blocks.
        Empty with `ec` clear when it stayed held elsewhere. */
    std::optional<typename Lock::guard> verify_lock(std::string_view key, lock_mode mode, std::chrono::milliseconds timeout,
                                                    error_code& ec)
    {
        if constexpr (try_store_lock<Lock>) {
            auto const until = std::chrono::steady_clock::now() + timeout;
            auto pause = std::chrono::milliseconds(1);
            for (;;) {
                auto g = lock_.try_acquire(key, mode, ec);
                if (ec || g) return g;
                if (std::chrono::steady_clock::now() >= until) return std::nullopt;
                std::this_thread::sleep_for(pause);
                pause = std::min(pause * 2, std::chrono::milliseconds(50));
            }
        } else {
            auto g = lock_.acquire(key, mode, ec);
            if (ec) return std::nullopt;
            return std::optional<typename Lock::guard>(std::move(g));
        }
    }

    /// verify_lock() for one item; a lock that stays held is noted in the report.
    std::optional<typename Lock::guard> verify_item_lock(std::string_view key, std::string const& what, verify_run& run)
    {
        error_code ec;
        auto g = verify_lock(key, run.mode(), run.options.lock_timeout, ec);
        if (ec) {
            run.fail(ec, "cannot lock " + what + ": " + ec.message());
            run.report.skipped.push_back(what + ": cannot lock it: " + ec.message());
        } else if (!g) {
            run.report.skipped.push_back(what + ": its lock stayed held longer than " + describe_ms(run.options.lock_timeout) +
                                         " (a pull at work?)");
        }
        return g;
    }

    /// Reports `f`; evicts `f.path` first when that is asked for and `evictable`.
    void verify_found(verify_run& run, verify_finding f, bool evictable)
    {
        if (evictable && run.options.evict) {
            error_code eec;
            f.evicted_to = detail::evict_path(layout_, f.path, options_.durable, eec);
            if (eec) {
                if (eec != make_error_code(error::not_found)) // else: gone already
                    run.fail(eec, "cannot evict " + f.path.string() + ": " + eec.message());
                f.evicted_to.clear();
            } else {
                f.evicted = true;
            }
        }
        run.report.findings.push_back(std::move(f));
    }

    /** Reads the blob file at `path` and checks it against `d` and `size` (when known); keeps
        its content in `text` when it is intact and at most `keep_limit` bytes. */
    blob_check check_blob_file(std::filesystem::path const& path, digest const& d, std::optional<std::uint64_t> size,
                               std::uint64_t keep_limit) const
    {
        blob_check c;
        detail::safe_fs::unique_fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) {
            int const e = errno;
            if (e == ENOENT) {
                c.error = make_error_code(error::not_found);
                c.reason = "is missing";
                return c;
            }
            c.present = true;
            c.error = detail::errno_code(e);
            c.reason = e == ELOOP ? "is a symbolic link" : "cannot be opened: " + c.error.message();
            return c;
        }
        c.present = true;
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            c.error = detail::errno_code(errno);
            c.reason = "cannot be examined: " + c.error.message();
            return c;
        }
        if (!S_ISREG(st.st_mode)) {
            c.error = make_error_code(error::invalid_argument);
            c.reason = "is not a regular file";
            return c;
        }
        auto const have = static_cast<std::uint64_t>(st.st_size);
        if (size && have != *size) {
            c.error = make_error_code(error::size_mismatch);
            c.reason = "is " + std::to_string(have) + " bytes, its descriptor says " + std::to_string(*size);
            return c;
        }
        bool const keep = have <= keep_limit;
        Hasher hasher;
        std::vector<std::byte> buffer(256 * 1024);
        for (;;) {
            ssize_t const n = ::read(fd.get(), buffer.data(), buffer.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                c.error = detail::errno_code(errno);
                c.reason = "cannot be read at byte " + std::to_string(c.bytes) + ": " + c.error.message();
                return c;
            }
            if (n == 0) break;
            auto const chunk = std::span<std::byte const>(buffer.data(), static_cast<std::size_t>(n));
            hasher.update(chunk);
            if (keep) c.text.append(reinterpret_cast<char const*>(chunk.data()), chunk.size());
            c.bytes += static_cast<std::uint64_t>(n);
        }
        if (size && c.bytes != *size) {
            c.error = make_error_code(error::size_mismatch);
            c.reason = "holds " + std::to_string(c.bytes) + " bytes, its descriptor says " + std::to_string(*size);
            return c;
        }
        if (auto const actual = finish_digest(hasher); actual != d) {
            c.error = make_error_code(error::digest_mismatch);
            c.reason = "content hashes to " + actual.str() + ", not to its name";
            c.text.clear();
            return c;
        }
        c.intact = true;
        return c;
    }

    /** Checks blob `d` (a manifest, index or config of a recorded image) under its lock and
        returns its content when it is intact. */
    std::optional<std::string> verify_small_blob(digest const& d, verify_kind kind, std::optional<std::uint64_t> size,
                                                 std::uint64_t limit, verify_run& run)
    {
        if (!verifiable(d)) {
            run.report.skipped.push_back(d.str() + ": cannot be verified with " + std::string(Hasher::algorithm));
            return std::nullopt;
        }
        if (!run.options.check_blobs) return read_cached_blob(d, limit);
        if (auto it = run.blobs.find(d); it != run.blobs.end())
            return it->second ? read_cached_blob(d, limit) : std::nullopt;
        auto const path = layout_.blob(d);
        if (!run.blobs_tried.insert(d).second) return std::nullopt; // skipped before
        auto guard = verify_item_lock(detail::blob_lock_key(d), "blob " + d.str(), run);
        if (!guard) return std::nullopt;
        auto c = check_blob_file(path, d, size, limit);
        ++run.report.blobs;
        run.report.bytes += c.bytes;
        run.blobs[d] = c.intact;
        if (c.intact) return std::move(c.text);
        std::string const what = kind == verify_kind::config ? "config" : "manifest";
        verify_found(run, verify_finding{kind, path, d.str(), c.error, what + " blob " + c.reason, {}, false}, c.present);
        return std::nullopt;
    }

    /** Streams the kept blob at `path` through the ingestion pipeline into `add`, checking its
        size, digest and diff_id; `bytes` is what was read. */
    bool replay_layer(std::filesystem::path const& path, descriptor const& blob, digest const& diff_id,
                      layer_compression compression, layer_entry_fn const& add, error_code& ec, std::string* why,
                      std::uint64_t& bytes)
    {
        file_source src;
        src.open(path, 0, ec);
        if (ec) return detail::set_why(why, "cannot open " + path.string() + ": " + ec.message()), false;
        struct forwarding_sink {
            layer_entry_fn const& add;
            void add_entry(tar_entry const& e, byte_source_ref data, error_code& aec, std::string* awhy)
            {
                add(e, data, aec, awhy);
            }
        } sink{add};
        ingest_options io;
        io.compression = compression;
        io.expected_blob = blob.digest;
        io.expected_size = static_cast<std::uint64_t>(blob.size);
        io.expected_diff_id = diff_id;
        auto const m = ingest_layer<Hasher>(src, sink, io, ec, why);
        bytes = m.blob_size;
        return !ec;
    }

    /** Checks one layer of a recorded image: its kept blob (if any) and, through the builder,
        its artifact, re-derived from the blob when that is kept. Returns whether the artifact
        is present and intact. */
    bool verify_layer_record(descriptor const& blob, digest const& diff_id, verify_run& run)
    {
        auto const seen_blob = run.blobs.find(blob.digest);
        bool const check_blob = run.options.check_blobs && run.blobs_tried.insert(blob.digest).second && verifiable(blob.digest);
        bool check_layer = false;
        if constexpr (verifiable_artifact_builder<ArtifactBuilder>) check_layer = run.layers.count(diff_id) == 0;
        if (!check_blob && !check_layer) {
            auto const it = run.layers.find(diff_id);
            return it != run.layers.end() && it->second;
        }
        auto const path = layout_.blob(blob.digest);
        // The order a pull takes them in: the blob, then the diff_id.
        auto blob_guard = verify_item_lock(detail::blob_lock_key(blob.digest), "blob " + blob.digest.str(), run);
        if (!blob_guard) return false;
        std::optional<typename Lock::guard> layer_guard;
        if (check_layer) {
            layer_guard = verify_item_lock(detail::layer_lock_key(diff_id), "layer " + diff_id.str(), run);
            check_layer = layer_guard.has_value();
        }
        bool const present = detail::regular_file_size(path).has_value();
        bool replayed_intact = false; // a replay read the whole blob and it verified
        std::uint64_t replay_bytes = 0;
        bool intact = false;
        if constexpr (verifiable_artifact_builder<ArtifactBuilder>) {
            if (check_layer) {
                error_code cec;
                auto compression = layer_compression_of(blob.media_type, cec);
                bool const source = present && !cec && verifiable(blob.digest) && verifiable(diff_id) &&
                                    (seen_blob == run.blobs.end() || seen_blob->second);
                layer_replay const replay = [&](layer_entry_fn const& add, error_code& rec, std::string* rwhy) {
                    rec.clear();
                    if (!source) return false;
                    replayed_intact = replay_layer(path, blob, diff_id, compression, add, rec, rwhy, replay_bytes);
                    return true;
                };
                cec.clear();
                artifact_check check = builder_.verify_layer(diff_id, replay, cec);
                if (cec) run.fail(cec, "cannot verify the artifact of layer " + diff_id.str() + ": " + cec.message());
                run.report.layer_artifacts += check.checked;
                run.report.bytes += check.bytes;
                intact = !cec && check.checked > 0 && check.findings.empty();
                run.layers[diff_id] = intact;
                for (auto& f : check.findings) verify_found(run, std::move(f), true);
            }
        }
        if (check_blob && present) {
            ++run.report.blobs;
            if (replayed_intact) {
                run.report.bytes += replay_bytes;
                run.blobs[blob.digest] = true;
            } else {
                auto c = check_blob_file(path, blob.digest, static_cast<std::uint64_t>(blob.size), 0);
                run.report.bytes += c.bytes;
                run.blobs[blob.digest] = c.intact;
                if (!c.intact)
                    verify_found(run, verify_finding{verify_kind::blob, path, blob.digest.str(), c.error, "layer blob " + c.reason, {}, false},
                                 c.present);
            }
        }
        return intact;
    }

    /// Checks one recorded image: its blobs, then its layers, then its image artifact.
    void verify_record(detail::index_record const& rec, verify_run& run)
    {
        ++run.report.images;
        if (rec.index_digest) verify_small_blob(*rec.index_digest, verify_kind::manifest, std::nullopt, max_manifest_size, run);
        auto const mtext = verify_small_blob(rec.manifest_digest, verify_kind::manifest, rec.size, max_manifest_size, run);
        if (!mtext) return;
        error_code pec;
        std::string pwhy;
        auto doc = parse_manifest(*mtext, rec.media_type, pec, &pwhy);
        if (!pec && doc.is_index()) {
            pec = make_error_code(error::invalid_manifest);
            pwhy = "it is an image index";
        }
        if (pec) {
            if (run.options.check_blobs)
                verify_found(run, verify_finding{verify_kind::manifest, layout_.blob(rec.manifest_digest), rec.manifest_digest.str(), pec,
                                                 "recorded for " + rec.name + " as a manifest, but " + pwhy, {}, false},
                             false);
            return;
        }
        auto const& m = doc.manifest();
        auto const ctext = verify_small_blob(m.config.digest, verify_kind::config, static_cast<std::uint64_t>(m.config.size),
                                             max_config_default, run);
        if (!ctext) return;
        auto cfg = parse_image_config(*ctext, pec, &pwhy);
        if (!pec && cfg.image.rootfs.diff_ids.size() != m.layers.size()) {
            pec = make_error_code(error::invalid_config);
            pwhy = "it lists " + std::to_string(cfg.image.rootfs.diff_ids.size()) + " diff_ids for " +
                   std::to_string(m.layers.size()) + " layers";
        }
        if (pec) {
            if (run.options.check_blobs)
                verify_found(run, verify_finding{verify_kind::config, layout_.blob(m.config.digest), m.config.digest.str(), pec,
                                                 "config of " + rec.name + ": " + pwhy, {}, false},
                             false);
            return;
        }
        std::vector<verified_layer> layers;
        for (std::size_t i = 0; i < m.layers.size(); ++i) {
            auto const& diff_id = cfg.image.rootfs.diff_ids[i];
            layers.push_back(verified_layer{diff_id, verify_layer_record(m.layers[i], diff_id, run)});
        }
        if constexpr (verifiable_artifact_builder<ArtifactBuilder>) {
            if (!run.images.insert(rec.manifest_digest).second) return;
            auto guard = verify_item_lock(detail::image_lock_key(rec.manifest_digest), "image " + rec.manifest_digest.str(), run);
            if (!guard) return;
            error_code cec;
            artifact_check check = builder_.verify_image(rec.manifest_digest, std::span<verified_layer const>(layers), cec);
            if (cec) run.fail(cec, "cannot verify the artifacts of image " + rec.manifest_digest.str() + ": " + cec.message());
            run.report.image_artifacts += check.checked;
            run.report.bytes += check.bytes;
            for (auto& f : check.findings) verify_found(run, std::move(f), true);
        }
    }

    /// Verifying everything: every blob not examined yet must hash to its name.
    void verify_other_blobs(verify_run& run)
    {
        std::vector<std::pair<digest, std::filesystem::path>> others;
        std::error_code it_ec;
        for (auto alg = std::filesystem::directory_iterator(layout_.blobs(), it_ec);
             !it_ec && alg != std::filesystem::directory_iterator(); alg.increment(it_ec)) {
            std::error_code fec;
            for (auto f = std::filesystem::directory_iterator(alg->path(), fec);
                 !fec && f != std::filesystem::directory_iterator(); f.increment(fec)) {
                auto const fname = f->path().filename().string();
                if (fname.empty() || fname[0] == '.') continue; // temporaries
                error_code dec;
                auto d = digest::parse(alg->path().filename().string() + ":" + fname, dec);
                if (dec || run.blobs_tried.count(d)) continue;
                others.emplace_back(std::move(d), f->path());
            }
        }
        std::sort(others.begin(), others.end());
        for (auto const& [d, path] : others) {
            if (!verifiable(d)) {
                run.report.skipped.push_back(path.string() + ": cannot be verified with " + std::string(Hasher::algorithm));
                continue;
            }
            auto guard = verify_item_lock(detail::blob_lock_key(d), "blob " + d.str(), run);
            if (!guard) continue;
            auto c = check_blob_file(path, d, std::nullopt, 0);
            if (!c.present) continue; // deleted meanwhile
            ++run.report.blobs;
            run.report.bytes += c.bytes;
            run.blobs[d] = c.intact;
            if (!c.intact) verify_found(run, verify_finding{verify_kind::blob, path, d.str(), c.error, "blob " + c.reason, {}, false}, true);
        }
    }

    verify_report verify_cache(std::optional<std::string> const& name, verify_options const& options, error_code& ec,
                               std::string* why)
    {
        ec.clear();
        if (why) why->clear();
        verify_run run(options);
        auto not_recorded = [&] {
            ec = make_error_code(error::not_found);
            detail::set_why(why, "no image named " + *name +
                                     (options.platform ? " for " + options.platform->normalized().to_string() : std::string()) +
                                     " in the cache " + layout_.root.string());
            return std::move(run.report);
        };
        std::error_code fec;
        if (!std::filesystem::exists(layout_.index_json(), fec) && !std::filesystem::exists(layout_.blobs(), fec)) {
            if (name) return not_recorded();
            return std::move(run.report);
        }
        // Pruning is held off while this runs; pulls go on, each item is checked under its lock.
        auto gc = verify_lock(detail::gc_lock_key, lock_mode::shared, options.lock_timeout, ec);
        if (ec) return detail::set_why(why, "cannot lock the cache: " + ec.message()), std::move(run.report);
        if (!gc) {
            ec = make_error_code(error::lock_failed);
            detail::set_why(why, "the cache " + layout_.root.string() + " stayed locked for pruning longer than " +
                                     describe_ms(options.lock_timeout));
            return std::move(run.report);
        }
        std::vector<detail::index_record> records;
        bool index_readable = true;
        {
            auto guard = verify_lock(detail::index_lock_key, run.mode(), options.lock_timeout, ec);
            if (ec) return detail::set_why(why, "cannot lock the index: " + ec.message()), std::move(run.report);
            if (!guard) {
                ec = make_error_code(error::lock_failed);
                detail::set_why(why, "index.json stayed locked longer than " + describe_ms(options.lock_timeout));
                return std::move(run.report);
            }
            error_code iec;
            std::string iwhy;
            records = detail::read_index_records(layout_, iec, &iwhy);
            if (iec) {
                index_readable = false;
                records.clear();
                std::string const prefix = layout_.index_json().string() + ": ";
                if (iwhy.starts_with(prefix)) iwhy.erase(0, prefix.size());
                if (options.check_blobs)
                    verify_found(run, verify_finding{verify_kind::index, layout_.index_json(), {}, iec, "index.json: " + iwhy, {}, false},
                                 true);
            }
        }
        std::optional<platform> wanted;
        if (options.platform) wanted = options.platform->normalized();
        std::size_t selected = 0;
        for (auto const& r : records) {
            if (name && (r.name != *name || (wanted && r.platform.normalized() != *wanted))) continue;
            ++selected;
            verify_record(r, run);
        }
        if (name && selected == 0 && index_readable) return not_recorded();
        if (!name && options.check_blobs) verify_other_blobs(run);
        if (run.failure) {
            ec = run.failure;
            detail::set_why(why, run.failure_why);
        }
        return std::move(run.report);
    }

    detail::store_layout layout_;
    Transport transport_;
    Lock lock_;
    ArtifactBuilder builder_;
    store_options options_;
    std::unique_ptr<shared_state> shared_;
};

} // namespace ocistore
