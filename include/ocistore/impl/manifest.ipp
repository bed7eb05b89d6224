// Non-template bodies for ocistore/manifest.hpp.
#pragma once

#include <ocistore/manifest.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/json.hpp>
#include <ocistore/media_types.hpp>

#include <boost/json/monotonic_resource.hpp>

namespace ocistore {
namespace detail::manifest_impl {

inline std::string schema1_message(std::string_view how)
{
    return "Docker schema 1 manifests are not supported (" + std::string(how) +
           "); re-push the image with a current client (docker, skopeo, buildah) to convert it to "
           "Docker schema 2 or OCI";
}

inline std::string quote(std::string_view s) { return "\"" + std::string(s.substr(0, 200)) + "\""; }

/// schemaVersion: required integer 2; 1 is schema 1, anything else unsupported.
inline bool read_schema_version(json_reader& r, boost::json::object const& o, int& out)
{
    std::int64_t v = 0;
    if (!read_field(r, o, "schemaVersion", "", v, presence::required)) return false;
    if (v == 1) return r.fail(error::unsupported_schema, "", schema1_message("schemaVersion is 1"));
    if (v != 2)
        return r.fail(error::unsupported_schema, "schemaVersion",
                      "unsupported value " + std::to_string(v) + " (only 2 is supported)");
    out = 2;
    return true;
}

inline bool read_manifest(json_reader& r, boost::json::value const& v, image_manifest& out)
{
    auto const* o = json_as_object(r, v, "");
    if (!o) return false;
    image_manifest m;
    return read_schema_version(r, *o, m.schema_version) && read_field(r, *o, "mediaType", "", m.media_type) &&
           read_field(r, *o, "artifactType", "", m.artifact_type) &&
           read_field(r, *o, "config", "", m.config, presence::required) &&
           read_field(r, *o, "layers", "", m.layers, presence::required) &&
           read_field(r, *o, "subject", "", m.subject) && read_field(r, *o, "annotations", "", m.annotations) &&
           (out = std::move(m), true);
}

inline bool read_index(json_reader& r, boost::json::value const& v, image_index& out)
{
    auto const* o = json_as_object(r, v, "");
    if (!o) return false;
    image_index i;
    return read_schema_version(r, *o, i.schema_version) && read_field(r, *o, "mediaType", "", i.media_type) &&
           read_field(r, *o, "artifactType", "", i.artifact_type) &&
           read_field(r, *o, "manifests", "", i.manifests, presence::required) &&
           read_field(r, *o, "subject", "", i.subject) && read_field(r, *o, "annotations", "", i.annotations) &&
           (out = std::move(i), true);
}

inline boost::json::array descriptors_to_json(std::vector<descriptor> const& ds)
{
    boost::json::array a;
    a.reserve(ds.size());
    for (auto const& d : ds) a.emplace_back(descriptor_to_json(d));
    return a;
}

inline bool is_generic_content_type(std::string_view essence) noexcept
{
    return essence.empty() || essence == "application/json" || essence == "application/octet-stream" ||
           essence == "text/plain";
}

/// The canonical constant for a manifest or index media type, empty for any other.
inline std::string_view canonical_media_type(std::string_view media_type)
{
    std::string const e = media_type_essence(media_type);
    for (std::string_view k : media_types::default_accept)
        if (e == k) return k;
    return {};
}

} // namespace detail::manifest_impl

OCISTORE_DECL manifest_document parse_manifest(std::string_view bytes, std::string_view content_type, error_code& ec,
                                               std::string* why)
{
    using namespace detail::manifest_impl;
    using detail::fail;
    ec.clear();
    if (bytes.size() > max_manifest_size)
        return fail(ec, why, error::too_large,
                    "manifest is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                        std::to_string(max_manifest_size) + " bytes (4 MiB)"),
               manifest_document{};
    std::string const ct = media_type_essence(content_type);
    if (is_schema1_media_type(ct))
        return fail(ec, why, error::unsupported_schema, schema1_message("Content-Type " + quote(content_type))),
               manifest_document{};
    bool const generic = is_generic_content_type(ct);
    if (!generic && canonical_media_type(ct).empty())
        return fail(ec, why, error::unsupported_media_type,
                    "Content-Type " + quote(content_type) +
                        " is not a manifest or index media type (expected OCI or Docker schema 2)"),
               manifest_document{};

    boost::json::monotonic_resource mr;
    boost::json::value const jv = detail::parse_json_document(bytes, max_manifest_size, "manifest", &mr, ec, why);
    if (ec) return manifest_document{};
    detail::json_reader r{error::invalid_manifest, ec, why};
    auto const* o = detail::json_as_object(r, jv, "document");
    if (!o) return manifest_document{};

    // Schema 1 is recognised before anything else is required of the document.
    std::string field;
    if (!detail::read_field(r, *o, "mediaType", "", field)) return manifest_document{};
    if (is_schema1_media_type(field))
        return r.fail(error::unsupported_schema, "", schema1_message("mediaType " + quote(field))), manifest_document{};
    if (auto const* sv = o->if_contains("schemaVersion"); sv && ((sv->is_int64() && sv->get_int64() == 1) || (sv->is_uint64() && sv->get_uint64() == 1)))
        return r.fail(error::unsupported_schema, "", schema1_message("schemaVersion is 1")), manifest_document{};

    std::string_view resolved;
    if (!generic) {
        resolved = canonical_media_type(ct);
        if (!field.empty() && media_type_essence(field) != ct)
            return r.fail("mediaType", quote(field) + " disagrees with the Content-Type " + quote(content_type)),
                   manifest_document{};
    } else if (!field.empty()) {
        resolved = canonical_media_type(field);
        if (resolved.empty())
            return r.fail(error::unsupported_media_type, "mediaType",
                          quote(field) + " is not a manifest or index media type (expected OCI or Docker schema 2)"),
                   manifest_document{};
    } else {
        bool const has_manifests = o->contains("manifests");
        bool const has_image = o->contains("config") && o->contains("layers");
        if (has_manifests && has_image)
            return r.fail("", "cannot tell a manifest from an index: no mediaType, a generic Content-Type, and both "
                              "\"manifests\" and \"config\"/\"layers\" members"),
                   manifest_document{};
        if (!has_manifests && !has_image)
            return r.fail("", "cannot tell a manifest from an index: no mediaType, a generic Content-Type, and neither "
                              "a \"manifests\" member nor \"config\" and \"layers\" members"),
                   manifest_document{};
        resolved = has_manifests ? media_types::oci_index : media_types::oci_manifest;
    }

    manifest_document doc;
    doc.media_type.assign(resolved);
    if (is_index_media_type(resolved)) {
        // A document must not be readable as both kinds (compare CVE-2021-41190).
        for (std::string_view key : {"config", "layers"})
            if (o->contains(key))
                return r.fail(std::string(key), "not allowed in an index (" + std::string(resolved) + ")"),
                       manifest_document{};
        image_index i;
        if (!read_index(r, jv, i)) return manifest_document{};
        doc.document = std::move(i);
    } else {
        if (o->contains("manifests"))
            return r.fail("manifests", "not allowed in a manifest (" + std::string(resolved) + ")"),
                   manifest_document{};
        image_manifest m;
        if (!read_manifest(r, jv, m)) return manifest_document{};
        doc.document = std::move(m);
    }
    doc.raw.assign(bytes);
    return doc;
}

OCISTORE_DECL manifest_document parse_manifest(std::string_view bytes, std::string_view content_type)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return parse_manifest(bytes, content_type, ec, why); });
}

OCISTORE_DECL bool is_attestation_manifest(descriptor const& d) noexcept
{
    auto const it = d.annotations.find("vnd.docker.reference.type");
    if (it != d.annotations.end() && it->second == "attestation-manifest") return true;
    return d.platform && d.platform->os == "unknown" && d.platform->architecture == "unknown";
}

OCISTORE_DECL descriptor select_manifest(image_index const& index, platform const& wanted, error_code& ec,
                                         std::string* why)
{
    ec.clear();
    platform_matcher const matcher(wanted);
    std::size_t best = index.manifests.size(), best_rank = platform_matcher::no_match;
    std::size_t attestations = 0, without_platform = 0;
    std::string available;
    for (std::size_t i = 0; i < index.manifests.size(); ++i) {
        descriptor const& d = index.manifests[i];
        if (is_attestation_manifest(d)) {
            ++attestations;
            continue;
        }
        if (!d.platform) {
            ++without_platform;
            continue;
        }
        available.append(available.empty() ? "" : ", ").append(d.platform->to_string());
        std::size_t const rank = matcher.rank(*d.platform);
        if (rank < best_rank) best = i, best_rank = rank;
    }
    if (best < index.manifests.size()) return index.manifests[best];

    std::string msg = "no manifest for " + matcher.wanted().to_string() + " in the index; available: " +
                      (available.empty() ? std::string("none") : available);
    if (attestations) msg += "; skipped " + std::to_string(attestations) + " attestation manifest(s)";
    if (without_platform) msg += "; skipped " + std::to_string(without_platform) + " entry(ies) without a platform";
    detail::fail(ec, why, error::no_matching_platform, std::move(msg));
    return {};
}

OCISTORE_DECL descriptor select_manifest(image_index const& index, platform const& wanted)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return select_manifest(index, wanted, ec, why); });
}

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_manifest const& m)
{
    boost::json::object o;
    o["schemaVersion"] = m.schema_version;
    detail::put_if(o, "mediaType", m.media_type);
    detail::put_if(o, "artifactType", m.artifact_type);
    o["config"] = detail::descriptor_to_json(m.config);
    o["layers"] = detail::manifest_impl::descriptors_to_json(m.layers);
    if (m.subject) o["subject"] = detail::descriptor_to_json(*m.subject);
    detail::put_if(o, "annotations", m.annotations);
    jv = std::move(o);
}

OCISTORE_DECL image_manifest tag_invoke(boost::json::value_to_tag<image_manifest>, boost::json::value const& jv)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        ec.clear();
        image_manifest m;
        detail::json_reader r{error::invalid_manifest, ec, why};
        detail::manifest_impl::read_manifest(r, jv, m);
        return m;
    });
}

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_index const& i)
{
    boost::json::object o;
    o["schemaVersion"] = i.schema_version;
    detail::put_if(o, "mediaType", i.media_type);
    detail::put_if(o, "artifactType", i.artifact_type);
    o["manifests"] = detail::manifest_impl::descriptors_to_json(i.manifests);
    if (i.subject) o["subject"] = detail::descriptor_to_json(*i.subject);
    detail::put_if(o, "annotations", i.annotations);
    jv = std::move(o);
}

OCISTORE_DECL image_index tag_invoke(boost::json::value_to_tag<image_index>, boost::json::value const& jv)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        ec.clear();
        image_index i;
        detail::json_reader r{error::invalid_manifest, ec, why};
        detail::manifest_impl::read_index(r, jv, i);
        return i;
    });
}

} // namespace ocistore
