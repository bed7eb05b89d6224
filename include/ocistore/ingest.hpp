// ocistore/ingest.hpp: the one-pass layer pipeline: blob bytes → blob hash → decompress →
// diff_id hash → tar reader → an entry sink, with both digests verified at the end.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/decompress_source.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hashing_source.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/prefetch_source.hpp>
#include <ocistore/tar_entry.hpp>
#include <ocistore/tar_reader.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

namespace ocistore {

/// What ingest_layer expects of the layer and how it runs.
struct ingest_options {
    layer_compression compression = layer_compression::gzip;
    std::optional<digest> expected_blob;          ///< the descriptor's digest: verified when set
    std::optional<std::uint64_t> expected_size;   ///< the descriptor's size: verified when set
    std::optional<digest> expected_diff_id;       ///< the config's rootfs.diff_ids entry: verified when set
    tar_limits limits{};
    decompress_options decompress{};
    /// Run [blob → blob hash], [decompress] and [diff_id hash → tar → sink] on three threads
    /// joined by prefetch_source (bounded read-ahead), so a cold pull uses every core.
    bool pipelined = true;
    prefetch_options prefetch{};
};

/// What ingest_layer measured.
struct ingest_result {
    digest blob_digest;                 ///< of every byte read from the blob source
    std::uint64_t blob_size = 0;
    digest diff_id;                     ///< of the whole uncompressed stream, tar end blocks included
    std::uint64_t uncompressed_size = 0;
    std::uint64_t entries = 0;
};

/** *EntrySink*: receives the entries of one layer, e.g. an *ArtifactBuilder*'s layer sink:
    `s.add_entry(entry, data, ec)` or `s.add_entry(entry, data, ec, why)` (preferred when both
    exist; `why` is a `std::string*` for a human-readable reason). It may leave data unread. */
template <class S>
concept entry_sink =
    requires(S& s, tar_entry const& entry, byte_source_ref data, error_code& ec) { s.add_entry(entry, data, ec); } ||
    requires(S& s, tar_entry const& entry, byte_source_ref data, error_code& ec, std::string* why) {
        s.add_entry(entry, data, ec, why);
    };

namespace detail {

/// Reads every entry of `src` into `sink`, then drains the stream to its end (so that every
/// byte, tar padding and compressed trailers included, passes through the hashing stages).
template <byte_source Source, entry_sink Sink>
std::uint64_t ingest_entries(Source& src, Sink& sink, tar_limits const& limits, error_code& ec, std::string* why)
{
    basic_tar_reader<Source> tar(src, limits);
    tar_entry entry;
    std::uint64_t n = 0;
    while (tar.next(entry, ec, why)) {
        ++n;
        if constexpr (requires { sink.add_entry(entry, byte_source_ref(tar), ec, why); })
            sink.add_entry(entry, byte_source_ref(tar), ec, why);
        else
            sink.add_entry(entry, byte_source_ref(tar), ec);
        if (ec) {
            if (why && why->empty()) *why = "entry \"" + entry.path + "\": " + ec.message();
            return n;
        }
    }
    if (!ec) tar.drain(ec, why);
    return n;
}

/// Replaces a generic reason (the bare error message) with a stage's specific one.
template <class Stage> void prefer_reason(Stage const& stage, error_code const& ec, std::string* why)
{
    if constexpr (requires { stage.why(); }) {
        if (why && ec && !std::string(stage.why()).empty() && (why->empty() || why->find(ec.message()) != std::string::npos))
            *why = std::string(stage.why());
    }
}

} // namespace detail

/** Streams one layer blob through the whole ingestion pipeline in a single pass and verifies it.

    `blob` yields the compressed bytes (a transport's blob reader, a `.part` file being
    replayed, …). Every entry goes to `sink.add_entry(entry, data, ec)` in archive order, with
    `data` reading that entry's content; after the archive the stream is read to its end.
    Then, in this order: the blob size (`error::size_mismatch`), the blob digest
    (`error::digest_mismatch`) and the diff_id (`error::diff_id_mismatch`) are checked
    against the options. Nothing is published here: the caller finishes and commits the
    builder's layer only after this returns without error.

    Memory is bounded (decoder state, tar buffer, `prefetch.depth × prefetch.chunk_size` per
    pipelined stage) whatever the layer size. On failure `ec` (and `*why`) say which stage
    failed; the result then holds what was measured so far.

    @tparam Hasher the store's *Hasher* (one per digest)
*/
template <hasher Hasher, byte_source Source, entry_sink Sink>
ingest_result ingest_layer(Source& blob, Sink& sink, ingest_options const& options, error_code& ec,
                           std::string* why = nullptr)
{
    ec.clear();
    if (why) why->clear();
    ingest_result r;
    basic_hashing_source<Source, Hasher> blob_hash(blob);

    auto run = [&](auto& compressed) {
        using compressed_t = std::remove_reference_t<decltype(compressed)>;
        basic_decompress_source<compressed_t> plain(compressed, options.compression, options.decompress);
        auto consume = [&](auto& uncompressed) {
            using uncompressed_t = std::remove_reference_t<decltype(uncompressed)>;
            basic_hashing_source<uncompressed_t, Hasher> diff(uncompressed);
            r.entries = detail::ingest_entries(diff, sink, options.limits, ec, why);
            detail::prefer_reason(uncompressed, ec, why);
            r.uncompressed_size = diff.bytes();
            r.diff_id = diff.finish_digest();
        };
        if (options.pipelined) {
            basic_prefetch_source<decltype(plain)> ahead(plain, options.prefetch);
            consume(ahead);
        } else {
            consume(plain);
        }
        detail::prefer_reason(plain, ec, why);
    };
    if (options.pipelined) {
        basic_prefetch_source<decltype(blob_hash)> ahead(blob_hash, options.prefetch);
        run(ahead);
    } else {
        run(blob_hash);
    }
    // Every stage thread has ended here: the blob hash is ours to read.
    r.blob_size = blob_hash.bytes();
    r.blob_digest = blob_hash.finish_digest();
    if (ec) return r;

    auto mismatch = [&](error e, std::string msg) {
        ec = make_error_code(e);
        if (why) *why = std::move(msg);
    };
    if (options.expected_size && *options.expected_size != r.blob_size)
        mismatch(error::size_mismatch, "layer blob: expected " + std::to_string(*options.expected_size) +
                                           " bytes, read " + std::to_string(r.blob_size));
    else if (options.expected_blob && *options.expected_blob != r.blob_digest)
        mismatch(error::digest_mismatch,
                 "layer blob: expected " + options.expected_blob->str() + ", content hashes to " + r.blob_digest.str());
    else if (options.expected_diff_id && *options.expected_diff_id != r.diff_id)
        mismatch(error::diff_id_mismatch, "layer " + r.blob_digest.str() + ": config says diff_id " +
                                              options.expected_diff_id->str() + ", uncompressed content hashes to " +
                                              r.diff_id.str());
    return r;
}

/// @throws system_error with the reason in what().
template <hasher Hasher, byte_source Source, entry_sink Sink>
ingest_result ingest_layer(Source& blob, Sink& sink, ingest_options const& options)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return ingest_layer<Hasher>(blob, sink, options, ec, why); });
}

} // namespace ocistore
