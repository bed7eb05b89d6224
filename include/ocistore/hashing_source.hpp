// ocistore/hashing_source.hpp: a *ByteSource* tee that hashes and counts what passes through,
// and drain() to read a source to its end.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hasher/digest_of.hpp>

#include <cstddef>
#include <cstdint>
#include <concepts>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace ocistore {

/** Passes the bytes of a *ByteSource* through unchanged while feeding them to a *Hasher* and
    counting them; itself a *ByteSource*.

    This is how a layer is verified in one pass: a tee over the blob body yields the blob
    digest, a tee over the decompressor yields the diff_id, and the tar reader pulls from
    the latter:

    @code
    basic_hashing_source blob(body, sha256_hasher{});                 // compressed bytes
    basic_decompress_source plain(blob, layer_compression::gzip);
    basic_hashing_source diff(plain, sha256_hasher{});                // uncompressed bytes
    basic_tar_reader tar(diff);
    // ... read the entries, then tar.drain() and drain(diff, ec) so every byte is hashed
    digest const blob_digest = blob.finish_digest(), diff_id = diff.finish_digest();
    @endcode

    Every byte read_some() returns has been hashed; nothing else is. A digest covers the
    whole stream only when the stream has been read to its end (see drain()).

    @tparam Source a *ByteSource*, held by reference.
    @tparam Hasher a *Hasher*; see docs/concepts/hasher.md.
*/
template <byte_source Source, hasher Hasher> class basic_hashing_source {
public:
    explicit basic_hashing_source(Source& src, Hasher h = Hasher{}) : src_(src), hasher_(std::move(h)) {}
    basic_hashing_source(basic_hashing_source const&) = delete;
    basic_hashing_source& operator=(basic_hashing_source const&) = delete;

    /// Reads from the source into `buf`, then hashes and counts the bytes read. Failures and
    /// the end of the stream pass through unchanged.
    std::size_t read_some(std::span<std::byte> buf, error_code& ec)
    {
        std::size_t const n = src_.read_some(buf, ec);
        if (n != 0) {
            hasher_.update(std::span<std::byte const>(buf.data(), n));
            bytes_ += n;
        }
        return n;
    }

    /// Bytes passed through so far (not reset by finish_digest()).
    std::uint64_t bytes() const noexcept { return bytes_; }

    /** The digest of every byte passed through since construction or the previous call;
        resets the hasher (*Hasher* `finish()` semantics). */
    digest finish_digest() { return ocistore::finish_digest(hasher_); }

    Hasher& hasher() noexcept { return hasher_; }
    Source& source() noexcept { return src_; }

private:
    Source& src_;
    Hasher hasher_;
    std::uint64_t bytes_ = 0;
};

template <class Source, class Hasher> basic_hashing_source(Source&, Hasher) -> basic_hashing_source<Source, Hasher>;

/** Reads `src` until it ends, discarding the bytes, and returns how many there were. Used to
    pull the rest of a stream (the zero blocks after a tar's end marker, the trailer of the
    last gzip member) through every stage `src` wraps, so that their digests cover it. On
    failure sets `ec` and returns the bytes read before it. (A basic_tar_reader's read_some()
    covers only the current entry: use its own drain() member.) */
template <byte_source Source> std::uint64_t drain(Source& src, error_code& ec)
{
    constexpr std::size_t chunk = 64 * 1024;
    auto const buf = std::make_unique_for_overwrite<std::byte[]>(chunk);
    std::uint64_t total = 0;
    ec.clear();
    while (std::size_t const n = src.read_some(std::span<std::byte>(buf.get(), chunk), ec)) total += n;
    return total;
}

/// @throws system_error with the source's code on failure (and its why() when it has one).
template <byte_source Source> std::uint64_t drain(Source& src)
{
    error_code ec;
    std::uint64_t const n = drain(src, ec);
    if (ec) {
        if constexpr (requires { { src.why() } -> std::convertible_to<std::string>; })
            throw_error(ec, src.why().empty() ? ec.message() : std::string(src.why()));
        throw_error(ec, "drain: " + ec.message());
    }
    return n;
}

} // namespace ocistore
