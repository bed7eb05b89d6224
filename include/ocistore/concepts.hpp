// ocistore/concepts.hpp: the policy concepts of basic_image_store. Light on purpose: no
// Boost, no Crypto++. One page per concept in docs/concepts/.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/builder_types.hpp>
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/tar_entry.hpp>
#include <ocistore/transport_types.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace ocistore {

/** *ByteSource*: a pull stream of bytes (a blob body, a decompressor, a file).

    | expression                  | meaning                                                        |
    |-----------------------------|----------------------------------------------------------------|
    | `s.read_some(buffer, ec)`   | reads up to `buffer.size()` (> 0) bytes into `std::span<std::byte>`, returns how many; 0 with `ec` clear means the end of the stream; on failure sets `ec` (the stream is then unusable). Never throws for I/O. |

    See docs/concepts/byte_source.md.
*/
template <class S>
concept byte_source = requires(S& s, std::span<std::byte> buffer, error_code& ec) {
    { s.read_some(buffer, ec) } -> std::same_as<std::size_t>;
};

/** *BlobSource*: a *ByteSource* over a blob body opened at an offset, as a *Transport* returns.

    | expression   | meaning                                                                   |
    |--------------|---------------------------------------------------------------------------|
    | `r.offset()` | `std::uint64_t`: the offset the body **actually** starts at. 0 when a server ignored a Range request: resume logic must check it |
    | `r.size()`   | `std::optional<std::uint64_t>`: the blob's total size when the server said (Content-Range total, or offset + Content-Length) |
*/
template <class R>
concept blob_source = byte_source<R> && std::movable<R> && requires(R const& r) {
    { r.offset() } -> std::same_as<std::uint64_t>;
    { r.size() } -> std::same_as<std::optional<std::uint64_t>>;
};

/** *Transport*: how manifests and blobs reach the store (an instance policy; it holds
    endpoints, credentials and connections). Safe for concurrent calls from several threads.

    | expression                              | meaning |
    |-----------------------------------------|---------|
    | `typename T::blob_reader`               | models *BlobSource* |
    | `t.fetch_manifest(ref, accept, ec)`     | `fetched_manifest`: GET the manifest named by `ref.reference_for_fetch()` (a tag or a digest) with `accept` (`std::span<std::string_view const>`, the media types for the Accept header). Bodies over 4 MiB fail with `error::too_large` |
    | `t.resolve(ref, accept, ec)`            | `resolved_manifest`: HEAD the same; no body |
    | `t.open_blob(ref, digest, offset, ec)`  | `T::blob_reader` over blob `digest` of `ref`'s repository, asking to start at `offset` (check `offset()` on the result) |

    Failures set `ec` to `ocistore::error` values where the protocol says what happened
    (`not_found`, `unauthorized`, `denied`, `rate_limited`, `server_error`, `timeout`,
    `connection_failed`, `too_large`, `protocol_error`, …) so that `condition::transient`
    means "worth retrying". See docs/concepts/transport.md.
*/
template <class T>
concept transport = requires(T& t, image_reference const& ref, std::span<std::string_view const> accept,
                             digest const& d, std::uint64_t offset, error_code& ec) {
    typename T::blob_reader;
    requires blob_source<typename T::blob_reader>;
    { t.fetch_manifest(ref, accept, ec) } -> std::same_as<fetched_manifest>;
    { t.resolve(ref, accept, ec) } -> std::same_as<resolved_manifest>;
    { t.open_blob(ref, d, offset, ec) } -> std::same_as<typename T::blob_reader>;
};

/** *Hasher*: an incremental cryptographic hash, one fresh object per blob (a type policy).

    | expression          | meaning                                                        |
    |---------------------|----------------------------------------------------------------|
    | `H::algorithm`      | OCI algorithm id, e.g. "sha256"                                |
    | `H::digest_size`    | size of the raw digest in bytes                                |
    | `h.update(bytes)`   | feeds `std::span<std::byte const>`; never fails                |
    | `h.finish()`        | returns `std::array<std::byte, H::digest_size>`, then resets   |

    See docs/concepts/hasher.md.
*/
template <class H>
concept hasher = std::default_initializable<H> && std::movable<H> &&
    requires(H h, std::span<std::byte const> in) {
        { H::algorithm } -> std::convertible_to<std::string_view>;
        { H::digest_size } -> std::convertible_to<std::size_t>;
        h.update(in);
        { h.finish() } -> std::same_as<std::array<std::byte, H::digest_size>>;
    };

/// How a lock is held: many shared holders, or one exclusive holder.
enum class lock_mode { shared, exclusive };

/** *StoreLock*: named reader/writer locks (an instance policy; it holds e.g. a lock directory).

    | expression                    | meaning                                                    |
    |-------------------------------|------------------------------------------------------------|
    | `typename L::guard`           | movable, not copyable, default-constructible (holds nothing); releases on destruction |
    | `g.owns_lock()`               | whether `g` holds a lock                                   |
    | `g.unlock()`                  | releases early; no-op when it holds nothing                |
    | `l.acquire(key, mode, ec)`    | blocks until held; on failure sets `ec`, returns an empty guard |

    `key` is a store-relative path such as "blobs/sha256/<hex>": components of
    `[A-Za-z0-9._-]`, separated by '/', none "." or "..", at most 255 bytes in all; other keys
    fail with `error::invalid_argument`. See docs/concepts/store_lock.md.
*/
template <class L>
concept store_lock = std::movable<L> &&
    requires(L& l, std::string_view key, lock_mode mode, error_code& ec, typename L::guard& g) {
        requires std::movable<typename L::guard>;
        requires !std::copyable<typename L::guard>;
        requires std::default_initializable<typename L::guard>;
        { std::as_const(g).owns_lock() } -> std::convertible_to<bool>;
        g.unlock();
        { l.acquire(key, mode, ec) } -> std::same_as<typename L::guard>;
    };

/** *TryStoreLock*: a *StoreLock* that can also try without blocking.

    | expression                      | meaning                                                        |
    |---------------------------------|----------------------------------------------------------------|
    | `l.try_acquire(key, mode, ec)`  | `std::optional<guard>`: engaged when taken; empty with `ec` clear when held elsewhere; empty with `ec` set on failure |
*/
template <class L>
concept try_store_lock = store_lock<L> && requires(L& l, std::string_view key, lock_mode mode, error_code& ec) {
    { l.try_acquire(key, mode, ec) } -> std::same_as<std::optional<typename L::guard>>;
};

/** *LayerSink*: receives one layer's entries, in archive order, and prepares its artifact.
    Obtained from *ArtifactBuilder* `begin_layer`; used by one thread at a time.

    | expression                      | meaning |
    |---------------------------------|---------|
    | `s.add_entry(entry, data, ec)`  | takes one `tar_entry const&` and a `byte_source_ref` over its content (regular files; an empty stream otherwise). May read any part of `data`, including none: the caller discards what is left. On failure sets `ec`; the sink then stays failed |
    | `s.finish(ec)`                  | `Prepared`: the layer's artifact, complete but not yet published. After a failure, reports it again |

    Destroying a sink that was not finished discards everything it wrote.
*/
template <class S, class Prepared>
concept layer_sink = std::movable<S> && requires(S& s, tar_entry const& entry, byte_source_ref data, error_code& ec) {
    s.add_entry(entry, data, ec);
    { s.finish(ec) } -> std::same_as<Prepared>;
};

/** *ArtifactBuilder*: turns the layers of an image into artifacts (an instance policy; it holds
    its directories and options). A streaming sink: the store begins a layer, feeds each entry
    as the tar stream arrives, finishes it, verifies the blob digest and the diff_id, and only
    then commits it. Layer artifacts are keyed by diff_id and shared between images; the image
    artifact is composed from the ordered layers and keyed by the platform manifest digest.

    | expression                           | meaning |
    |--------------------------------------|---------|
    | `B::kind`                            | convertible to `std::string_view`: "erofs", "rootfs", "none"; names the artifacts in paths and metadata |
    | `cb.identity()`                      | convertible to `std::string_view`: name, format version and every option that changes the output. Part of the cache key: an artifact built under another identity is not held |
    | `typename B::layer_sink`             | models *LayerSink* with `B::prepared_layer` |
    | `typename B::prepared_layer`         | movable: a finished layer not yet published; destroying it discards it |
    | `typename B::layer_result`           | copyable: what compose needs of a held layer |
    | `typename B::image_result`           | movable: what compose produced |
    | `b.begin_layer(info, ec)`            | `B::layer_sink` for `layer_info const& info` |
    | `b.commit_layer(std::move(p), ec)`   | `B::layer_result`: publishes a prepared layer under its diff_id (replacing an artifact that is not held) |
    | `b.has_layer(diff_id, ec)`           | `bool`: whether a valid artifact built under this identity is held for `digest const& diff_id`, i.e. whether `b.layer(diff_id, ec)` has a value |
    | `b.layer(diff_id, ec)`               | `std::optional<B::layer_result>`: the held layer, checked, or empty |
    | `b.compose(key, layers, ec)`         | `B::image_result`: builds and publishes the image artifact for `digest const& key` (the platform manifest digest) from `std::span<B::layer_result const> layers`, bottom first |
    | `b.image(key, ec)`                   | `std::optional<B::image_result>`: the held image artifact for `key`, checked, or empty |

    Absent and invalid artifacts are not errors (empty result, `ec` clear); `ec` reports only
    failures to find out. Calls on different diff_ids and keys may run concurrently on several
    threads, in any order; the store serialises work on one diff_id or key with its locks.
    Nothing reaches a final name before commit_layer or compose. See docs/concepts/artifact_builder.md.
*/
template <class B>
concept artifact_builder = std::movable<B> && requires {
    typename B::layer_sink;
    typename B::prepared_layer;
    typename B::layer_result;
    typename B::image_result;
} && layer_sink<typename B::layer_sink, typename B::prepared_layer> && std::movable<typename B::prepared_layer> &&
    std::copyable<typename B::layer_result> && std::movable<typename B::image_result> &&
    requires(B& b, B const& cb, layer_info const& info, digest const& d, typename B::prepared_layer& prepared,
             std::span<typename B::layer_result const> layers, error_code& ec) {
        { B::kind } -> std::convertible_to<std::string_view>;
        { cb.identity() } -> std::convertible_to<std::string_view>;
        { b.begin_layer(info, ec) } -> std::same_as<typename B::layer_sink>;
        { b.commit_layer(std::move(prepared), ec) } -> std::same_as<typename B::layer_result>;
        { b.has_layer(d, ec) } -> std::same_as<bool>;
        { b.layer(d, ec) } -> std::same_as<std::optional<typename B::layer_result>>;
        { b.compose(d, layers, ec) } -> std::same_as<typename B::image_result>;
        { b.image(d, ec) } -> std::same_as<std::optional<typename B::image_result>>;
    };

} // namespace ocistore
