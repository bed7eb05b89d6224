// ocistore/digest.hpp: content digests, "algorithm:encoded" per the OCI image spec.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <compare>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/** A validated content digest such as `sha256:9f86d0…`.

    Grammar (OCI image spec, descriptor.md):
    `algorithm ::= component ([+._-] component)*`, `component ::= [a-z0-9]+`,
    `encoded ::= [a-zA-Z0-9=_-]+`. Only the registered algorithms we can verify are accepted:
    `sha256` (64 lowercase hex digits) and `sha512` (128); anything else grammatical is
    `error::unsupported_digest_algorithm`, anything ungrammatical `error::invalid_digest`.

    A default-constructed digest is empty(); every other value is valid by construction.
    Ordering and equality are by the canonical string.
*/
class digest {
public:
    digest() = default;

    /// Parses `text`. @throws system_error with a message naming the offending rule.
    static digest parse(std::string_view text);
    /** Parses `text`; on failure sets `ec`, stores a human-readable reason in `*why` when
        given, and returns an empty digest. */
    static digest parse(std::string_view text, error_code& ec, std::string* why = nullptr);

    /// Builds a digest from raw hash bytes, e.g. a hasher's output. Fails for an unsupported
    /// algorithm or a wrong length.
    static digest from_bytes(std::string_view algorithm, std::span<std::byte const> raw, error_code& ec);
    static digest from_bytes(std::string_view algorithm, std::span<std::byte const> raw);

    /// Parses the path-safe form produced by path_safe() ("sha256_<hex>").
    static digest from_path_safe(std::string_view name, error_code& ec);
    static digest from_path_safe(std::string_view name);

    bool empty() const noexcept { return value_.empty(); }
    /// "sha256:<hex>"
    std::string const& str() const noexcept { return value_; }
    /// "sha256"
    std::string_view algorithm() const noexcept { return std::string_view(value_).substr(0, sep_); }
    /// "<hex>"
    std::string_view encoded() const noexcept
    {
        return empty() ? std::string_view{} : std::string_view(value_).substr(sep_ + 1);
    }
    /// "sha256_<hex>": usable as a single file-name component (no ':' or '/').
    std::string path_safe() const { return empty() ? std::string{} : std::string(algorithm()) + '_' + std::string(encoded()); }
    /// The raw hash bytes (hex-decoded encoded part).
    std::vector<std::byte> bytes() const;

    friend bool operator==(digest const& a, digest const& b) noexcept { return a.value_ == b.value_; }
    friend std::strong_ordering operator<=>(digest const& a, digest const& b) noexcept
    {
        return a.value_.compare(b.value_) <=> 0;
    }

private:
    std::string value_;
    std::size_t sep_ = 0;
};

/// Number of hex digits the encoded part of a digest of `algorithm` has; 0 if unsupported.
OCISTORE_DECL std::size_t digest_hex_length(std::string_view algorithm) noexcept;

OCISTORE_DECL std::ostream& operator<<(std::ostream& os, digest const& d);

} // namespace ocistore

template <> struct std::hash<ocistore::digest> {
    std::size_t operator()(ocistore::digest const& d) const noexcept { return std::hash<std::string>{}(d.str()); }
};

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/digest.ipp>
#endif
