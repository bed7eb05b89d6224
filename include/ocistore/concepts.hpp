// ocistore/concepts.hpp: the policy concepts of basic_image_store. Light on purpose: no
// Boost, no Crypto++. One page per concept in docs/concepts/.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace ocistore {

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
