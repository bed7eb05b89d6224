// Fuzz target: parse_manifest (manifests and indexes) and parse_image_config on arbitrary bytes.
// Every input goes through all three readings: parse_manifest with a generic Content-Type,
// parse_manifest with a Content-Type picked by the input's length, and parse_image_config.
//
// Invariants: a rejection carries one of the documented codes and a reason; an accepted
// document keeps its raw bytes, resolves to one of the four manifest media types of the kind it
// holds, parses again with that media type as Content-Type to the same value, and written back
// as JSON parses again to the same value; select_manifest finds an entry for the platform of
// every non-attestation index entry. An accepted config written back parses to the same config.
#include <ocistore/image_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>

#include <support/fuzz_check.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace media_types = ocistore::media_types;
using ocistore::error;
using ocistore::error_code;
using ocistore_test::fuzz::describe;
using ocistore_test::fuzz::printable;

constexpr std::array<std::string_view, 9> content_types{
    "",
    "application/json",
    media_types::oci_manifest,
    media_types::oci_index,
    media_types::docker_manifest,
    media_types::docker_manifest_list,
    media_types::docker_schema1_signed_manifest,
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
    "text/html",
};

bool is_manifest_failure(error_code const& ec)
{
    for (error e : {error::too_large, error::unsupported_schema, error::invalid_json, error::invalid_manifest,
                    error::unsupported_media_type, error::unsupported_digest_algorithm})
        if (ec == e) return true;
    return false;
}

void check_descriptor(ocistore::descriptor const& d, std::string_view input)
{
    OCISTORE_FUZZ_CHECK(!d.digest.empty(), "descriptor without a digest in " + printable(input));
    OCISTORE_FUZZ_CHECK(d.size >= 0, "negative descriptor size in " + printable(input));
    OCISTORE_FUZZ_CHECK(!d.media_type.empty(), "descriptor without a media type in " + printable(input));
}

void check_manifest(std::string_view bytes, std::string_view content_type)
{
    error_code ec;
    std::string why;
    auto const doc = ocistore::parse_manifest(bytes, content_type, ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(is_manifest_failure(ec), describe(ec) + ": " + why);
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting " + printable(bytes));
        return;
    }
    OCISTORE_FUZZ_CHECK(doc.raw == bytes, "raw bytes not kept");
    bool known = false;
    for (auto mt : media_types::default_accept) known = known || doc.media_type == mt;
    OCISTORE_FUZZ_CHECK(known, "resolved media type " + printable(doc.media_type));
    OCISTORE_FUZZ_CHECK(doc.is_index() == ocistore::is_index_media_type(doc.media_type),
                        "kind disagrees with " + doc.media_type);

    // The resolved media type as Content-Type reads the same document.
    auto const again = ocistore::parse_manifest(bytes, doc.media_type, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "accepted with Content-Type " + printable(content_type) + ", rejected with " +
                                 doc.media_type + ": " + why);
    OCISTORE_FUZZ_CHECK(again.media_type == doc.media_type && again.document == doc.document,
                        "Content-Type " + doc.media_type + " reads a different document");

    std::string json;
    if (doc.is_index()) {
        auto const& index = doc.index();
        OCISTORE_FUZZ_CHECK(index.schema_version == 2, "schemaVersion");
        for (auto const& d : index.manifests) check_descriptor(d, bytes);
        if (index.subject) check_descriptor(*index.subject, bytes);
        json = boost::json::serialize(boost::json::value_from(index));
        for (auto const& d : index.manifests) {
            if (!d.platform || ocistore::is_attestation_manifest(d)) continue;
            auto const chosen = ocistore::select_manifest(index, *d.platform, ec, &why);
            OCISTORE_FUZZ_CHECK(!ec && chosen.platform,
                                "no manifest selected for the index's own platform " + d.platform->to_string() + ": " +
                                    why);
        }
        ocistore::select_manifest(index, ocistore::host_platform(), ec, &why);
        OCISTORE_FUZZ_CHECK(!ec || ec == error::no_matching_platform, describe(ec));
    } else {
        auto const& m = doc.manifest();
        OCISTORE_FUZZ_CHECK(m.schema_version == 2, "schemaVersion");
        check_descriptor(m.config, bytes);
        for (auto const& d : m.layers) check_descriptor(d, bytes);
        if (m.subject) check_descriptor(*m.subject, bytes);
        json = boost::json::serialize(boost::json::value_from(m));
    }
    auto const written = ocistore::parse_manifest(json, doc.media_type, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "written back as " + printable(json) + ", rejected: " + why);
    OCISTORE_FUZZ_CHECK(written.document == doc.document, "written back as " + printable(json) + ", reads differently");
}

void check_config(std::string_view bytes)
{
    error_code ec;
    std::string why;
    auto const doc = ocistore::parse_image_config(bytes, ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::too_large || ec == error::invalid_json || ec == error::invalid_config ||
                                ec == error::unsupported_digest_algorithm,
                            describe(ec) + ": " + why);
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting " + printable(bytes));
        return;
    }
    OCISTORE_FUZZ_CHECK(doc.raw == bytes, "raw bytes not kept");
    auto const& c = doc.image;
    OCISTORE_FUZZ_CHECK(c.rootfs.type == "layers", "rootfs.type " + printable(c.rootfs.type));
    for (auto const& d : c.rootfs.diff_ids) OCISTORE_FUZZ_CHECK(!d.empty(), "empty diff_id");
    std::string const json = boost::json::serialize(boost::json::value_from(c));
    auto const again = ocistore::parse_image_config(json, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "written back as " + printable(json) + ", rejected: " + why);
    OCISTORE_FUZZ_CHECK(again.image == c, "written back as " + printable(json) + ", reads differently");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const bytes = ocistore_test::fuzz::as_text(data, size);
    check_manifest(bytes, "");
    check_manifest(bytes, content_types[size % content_types.size()]);
    check_config(bytes);
    return 0;
}
