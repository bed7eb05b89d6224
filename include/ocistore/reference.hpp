// ocistore/reference.hpp: image references ("ubuntu:22.04", "ghcr.io/o/r@sha256:…"), parsed and normalised.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>

#include <compare>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace ocistore {

/** A validated, normalised image reference: registry, repository, optional tag, optional digest.

    Grammar (github.com/distribution/reference), with Docker's normalisation applied:
    @code
    reference      ::= name [ ":" tag ] [ "@" digest ]
    name           ::= [ registry "/" ] path
    registry       ::= host [ ":" port ]
    host           ::= domain-comp ( "." domain-comp )* | "[" [a-fA-F0-9:]+ "]"
    domain-comp    ::= [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
    port           ::= [0-9]+
    path           ::= path-comp ( "/" path-comp )*        ; at most 255 characters
    path-comp      ::= [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag            ::= [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest         ::= see ocistore::digest (sha256 and sha512 only)
    @endcode
    The first '/'-separated component is the registry only if it contains '.' or ':', is
    exactly "localhost", or contains an uppercase letter; otherwise the registry is
    "docker.io". "index.docker.io" is rewritten to "docker.io", and a one-component Docker
    Hub path gets the "library/" prefix. A 64-digit lowercase hex string alone is rejected
    (it is an image ID). See docs/reference.md.

    A default-constructed reference is empty(); every other value is valid by construction.
    Equality, ordering and hashing are by the four components as stored, so "ubuntu" and
    "ubuntu:latest" are different values although their str() is the same.
*/
class image_reference {
public:
    /// The registry of names without one.
    static constexpr std::string_view default_registry = "docker.io";
    /// The host that serves the registry API for default_registry.
    static constexpr std::string_view default_api_host = "registry-1.docker.io";
    /// The tag assumed when a reference has neither tag nor digest.
    static constexpr std::string_view default_tag = "latest";
    /// Longest repository path (after normalisation, so "library/" counts).
    static constexpr std::size_t max_repository_length = 255;
    /// Longest tag.
    static constexpr std::size_t max_tag_length = 128;

    image_reference() = default;

    /// Parses and normalises `text`. @throws system_error (error::invalid_reference) whose
    /// what() names the offending character, its position and the rule it breaks.
    static image_reference parse(std::string_view text);
    /** Parses and normalises `text`; on failure sets `ec` to error::invalid_reference, stores
        a human-readable reason in `*why` when given, and returns an empty reference. */
    static image_reference parse(std::string_view text, error_code& ec, std::string* why = nullptr);

    /// True only for a default-constructed (or failed-to-parse) reference.
    bool empty() const noexcept { return repository_.empty(); }

    /// "docker.io", "localhost:5000", "[::1]:5000", "ghcr.io"; case kept as written.
    std::string const& registry() const noexcept { return registry_; }
    /// The host[:port] to contact: default_api_host for Docker Hub, registry() otherwise.
    OCISTORE_DECL std::string api_host() const;
    /// The repository path within the registry, e.g. "library/ubuntu".
    std::string const& repository() const noexcept { return repository_; }
    /// The tag as written; no default is filled in.
    std::optional<std::string> const& tag() const noexcept { return tag_; }
    /// The tag, or default_tag when none was written (even if a digest is present).
    OCISTORE_DECL std::string const& tag_or_default() const noexcept;
    /// The digest as written, if any.
    std::optional<ocistore::digest> const& digest() const noexcept { return digest_; }

    /// "registry/repository", e.g. "docker.io/library/ubuntu".
    OCISTORE_DECL std::string name() const;
    /** The canonical form: name()[":" tag]["@" digest], with ":latest" added only when there is
        neither tag nor digest, e.g. "docker.io/library/ubuntu:latest". parse(str()) yields the
        same str(). Empty for an empty reference. */
    OCISTORE_DECL std::string str() const;
    /** The short Docker form: like str() but without "docker.io/" and, for a one-component
        official image, without "library/", e.g. "ubuntu:latest", "bitnami/redis:7". */
    OCISTORE_DECL std::string familiar() const;
    /// What to ask the registry's manifest endpoint for: the digest if any, else tag_or_default().
    OCISTORE_DECL std::string reference_for_fetch() const;

    /// A copy pinned to `d` (the tag is kept). An empty `d` removes the digest.
    /// Precondition: !empty().
    OCISTORE_DECL image_reference with_digest(ocistore::digest d) const;
    /// A copy with tag `t` (the digest is kept). @throws system_error (error::invalid_reference)
    /// if `t` breaks the tag grammar. Precondition: !empty().
    OCISTORE_DECL image_reference with_tag(std::string_view t) const;
    /// As above; on failure sets `ec`, stores the reason in `*why` and returns an empty reference.
    OCISTORE_DECL image_reference with_tag(std::string_view t, error_code& ec, std::string* why = nullptr) const;
    /// A copy without a tag.
    image_reference without_tag() const
    {
        image_reference r = *this;
        r.tag_.reset();
        return r;
    }

    friend bool operator==(image_reference const&, image_reference const&) = default;
    friend std::strong_ordering operator<=>(image_reference const&, image_reference const&) = default;

private:
    std::string registry_;
    std::string repository_;
    std::optional<std::string> tag_;
    std::optional<ocistore::digest> digest_;
};

/// Writes str().
OCISTORE_DECL std::ostream& operator<<(std::ostream& os, image_reference const& r);

} // namespace ocistore

template <> struct std::hash<ocistore::image_reference> {
    std::size_t operator()(ocistore::image_reference const& r) const noexcept
    {
        std::hash<std::string> const h;
        std::size_t seed = h(r.registry());
        auto mix = [&seed](std::size_t v) { seed ^= v + static_cast<std::size_t>(0x9e3779b97f4a7c15ULL) + (seed << 6) + (seed >> 2); };
        mix(h(r.repository()));
        mix(r.tag() ? h(*r.tag()) : 0x5a5a5a5aU);
        mix(r.digest() ? h(r.digest()->str()) : 0xa5a5a5a5U);
        return seed;
    }
};

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/reference.ipp>
#endif
