// ocistore/descriptor.hpp: OCI content descriptors (media type, digest, size, …) and their JSON form.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/json.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/platform.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/** A reference to content by digest: an entry of a manifest's `config`/`layers`, an index's
    `manifests`, or a `subject` (OCI image spec, descriptor.md).

    JSON: `mediaType` (required, `type/subtype`), `digest` (required, see ocistore::digest),
    `size` (required, integer >= 0), and optional `urls`, `annotations`, `platform`,
    `artifactType`, `data`. Unknown members are ignored; absent and null optional members
    read as empty. Writing omits empty optional members. */
struct descriptor {
    std::string media_type;
    ocistore::digest digest;
    std::int64_t size = 0;
    std::vector<std::string> urls;                   ///< alternative download locations (foreign layers)
    std::map<std::string, std::string> annotations;
    std::optional<ocistore::platform> platform;      ///< index entries only
    std::string artifact_type;                       ///< "artifactType"
    std::string data;                                ///< "data": embedded content, base64 as written

    friend bool operator==(descriptor const&, descriptor const&) = default;
};

/// Writes the JSON object of `d`.
OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, descriptor const& d);
/// Validated read. @throws system_error (error::invalid_manifest) naming the field at fault.
OCISTORE_DECL descriptor tag_invoke(boost::json::value_to_tag<descriptor>, boost::json::value const& jv);

namespace detail {
/// Validated read of a descriptor object at `path` (e.g. "layers[2]").
OCISTORE_DECL bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, descriptor& out);
/// The JSON object of `d`.
OCISTORE_DECL boost::json::object descriptor_to_json(descriptor const& d);
/// Empty if `text` is a `type/subtype` media type (RFC 6838 restricted names), else the reason.
OCISTORE_DECL std::string media_type_syntax_error(std::string_view text);
} // namespace detail

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/descriptor.ipp>
#endif
