// ocistore/hasher/digest_of.hpp: turning a *Hasher*'s output into a digest.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/digest.hpp>

#include <span>

namespace ocistore {

/// Finishes `h` (which resets it) and returns the digest of what it was fed.
template <hasher H>
digest finish_digest(H& h)
{
    auto const raw = h.finish();
    return digest::from_bytes(H::algorithm, raw);
}

/// The digest of `bytes` under hasher `H`, e.g. `digest_of<sha256_hasher>(as_bytes(span(s)))`.
template <hasher H>
digest digest_of(std::span<std::byte const> bytes)
{
    H h;
    h.update(bytes);
    return finish_digest(h);
}

/// The digest of a string's bytes under hasher `H`.
template <hasher H>
digest digest_of(std::string_view text)
{
    return digest_of<H>(std::as_bytes(std::span(text.data(), text.size())));
}

} // namespace ocistore
