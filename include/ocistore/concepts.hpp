// ocistore/concepts.hpp: the policy concepts of basic_image_store. Light on purpose: no
// Boost, no Crypto++. One page per concept in docs/concepts/.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>
#include <ocistore/reference.hpp>
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

} // namespace ocistore
