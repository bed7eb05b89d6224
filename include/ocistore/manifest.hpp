// ocistore/manifest.hpp: image manifests and indexes (OCI and Docker schema 2), parsing, platform selection.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/descriptor.hpp>
#include <ocistore/error.hpp>
#include <ocistore/platform.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ocistore {

/// Largest manifest or index accepted, in bytes; checked before parsing (error::too_large).
inline constexpr std::size_t max_manifest_size = 4 * 1024 * 1024;

/** A single-platform image manifest: OCI `application/vnd.oci.image.manifest.v1+json` or
    Docker `application/vnd.docker.distribution.manifest.v2+json`.

    JSON: `schemaVersion` (required, 2), `mediaType`, `artifactType`, `config` (required
    descriptor), `layers` (required array of descriptors, base layer first), `subject`,
    `annotations`. */
struct image_manifest {
    int schema_version = 2;
    std::string media_type;     ///< "mediaType" as written; may be empty in OCI manifests
    std::string artifact_type;  ///< "artifactType"
    descriptor config;
    std::vector<descriptor> layers;
    std::optional<descriptor> subject;
    std::map<std::string, std::string> annotations;

    friend bool operator==(image_manifest const&, image_manifest const&) = default;
};

/** A multi-platform index: OCI `application/vnd.oci.image.index.v1+json` or Docker
    `application/vnd.docker.distribution.manifest.list.v2+json`.

    JSON: `schemaVersion` (required, 2), `mediaType`, `artifactType`, `manifests` (required
    array of descriptors, usually with `platform`), `subject`, `annotations`. */
struct image_index {
    int schema_version = 2;
    std::string media_type;
    std::string artifact_type;
    std::vector<descriptor> manifests;
    std::optional<descriptor> subject;
    std::map<std::string, std::string> annotations;

    friend bool operator==(image_index const&, image_index const&) = default;
};

/** A parsed manifest or index together with the bytes it came from. Digests are computed
    over `raw`, never over re-serialised JSON. */
struct manifest_document {
    std::string raw;         ///< the bytes exactly as received
    std::string media_type;  ///< the resolved media type, one of the four default_accept types
    std::variant<image_manifest, image_index> document;

    bool is_index() const noexcept { return std::holds_alternative<image_index>(document); }
    /// Precondition: !is_index() (else throws std::bad_variant_access).
    image_manifest const& manifest() const { return std::get<image_manifest>(document); }
    /// Precondition: is_index() (else throws std::bad_variant_access).
    image_index const& index() const { return std::get<image_index>(document); }
};

/** Parses a manifest or index received with HTTP Content-Type `content_type`.

    In order:
    1. more than max_manifest_size bytes: error::too_large (before any parsing);
    2. a Docker schema 1 content type: error::unsupported_schema;
    3. malformed JSON: error::invalid_json with Boost.JSON's reason and the byte offset;
    4. the kind comes from the content type and the document's `mediaType`: when both are
       specific they must agree (else error::invalid_manifest); a generic content type
       (empty, application/json, application/octet-stream, text/plain) defers to
       `mediaType`; without either, a `manifests` member means an OCI index and
       `config` + `layers` an OCI manifest. Schema 1 in `mediaType` or `schemaVersion: 1`:
       error::unsupported_schema; another media type: error::unsupported_media_type;
    5. validation: `schemaVersion` must be 2 (another integer: error::unsupported_schema),
       required members present with the right JSON types, digests valid, sizes integers
       >= 0: error::invalid_manifest with the member path ("layers[2].digest: …"). A digest
       with an algorithm other than sha256/sha512 is error::unsupported_digest_algorithm.
    Duplicate JSON keys are accepted, the last one winning. */
OCISTORE_DECL manifest_document parse_manifest(std::string_view bytes, std::string_view content_type, error_code& ec,
                                               std::string* why = nullptr);
/// @throws system_error with the reason in what().
OCISTORE_DECL manifest_document parse_manifest(std::string_view bytes, std::string_view content_type);

/** The manifest of `index` to use on `wanted` (see platform_matcher for the rules): the
    lowest-ranked entry, the first one on ties. Attestation manifests (annotation
    `vnd.docker.reference.type: attestation-manifest`, or platform unknown/unknown) and
    entries without a platform are skipped. No match: error::no_matching_platform, and
    `*why` names the wanted platform and lists the available ones. */
OCISTORE_DECL descriptor select_manifest(image_index const& index, platform const& wanted, error_code& ec,
                                         std::string* why = nullptr);
/// @throws system_error (error::no_matching_platform) listing the available platforms.
OCISTORE_DECL descriptor select_manifest(image_index const& index, platform const& wanted);

/// True for the index entries select_manifest() always skips: attestations and unknown/unknown.
OCISTORE_DECL bool is_attestation_manifest(descriptor const& d) noexcept;

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_manifest const& m);
/// Validated read (no media type checks). @throws system_error (error::invalid_manifest, …).
OCISTORE_DECL image_manifest tag_invoke(boost::json::value_to_tag<image_manifest>, boost::json::value const& jv);
OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_index const& i);
/// Validated read (no media type checks). @throws system_error (error::invalid_manifest, …).
OCISTORE_DECL image_index tag_invoke(boost::json::value_to_tag<image_index>, boost::json::value const& jv);

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/manifest.ipp>
#endif
