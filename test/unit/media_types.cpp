#include <ocistore/media_types.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <string>

using namespace ocistore;
namespace mt = ocistore::media_types;

TEST_CASE("media type constants are the registered strings")
{
    CHECK(mt::oci_manifest == "application/vnd.oci.image.manifest.v1+json");
    CHECK(mt::oci_index == "application/vnd.oci.image.index.v1+json");
    CHECK(mt::oci_config == "application/vnd.oci.image.config.v1+json");
    CHECK(mt::oci_empty == "application/vnd.oci.empty.v1+json");
    CHECK(mt::oci_layer_tar == "application/vnd.oci.image.layer.v1.tar");
    CHECK(mt::oci_layer_tar_gzip == "application/vnd.oci.image.layer.v1.tar+gzip");
    CHECK(mt::oci_layer_tar_zstd == "application/vnd.oci.image.layer.v1.tar+zstd");
    CHECK(mt::oci_layer_nondistributable_tar == "application/vnd.oci.image.layer.nondistributable.v1.tar");
    CHECK(mt::oci_layer_nondistributable_tar_gzip == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
    CHECK(mt::oci_layer_nondistributable_tar_zstd == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd");
    CHECK(mt::docker_manifest == "application/vnd.docker.distribution.manifest.v2+json");
    CHECK(mt::docker_manifest_list == "application/vnd.docker.distribution.manifest.list.v2+json");
    CHECK(mt::docker_config == "application/vnd.docker.container.image.v1+json");
    CHECK(mt::docker_layer_tar_gzip == "application/vnd.docker.image.rootfs.diff.tar.gzip");
    CHECK(mt::docker_foreign_layer_tar_gzip == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
    CHECK(mt::docker_schema1_manifest == "application/vnd.docker.distribution.manifest.v1+json");
    CHECK(mt::docker_schema1_signed_manifest == "application/vnd.docker.distribution.manifest.v1+prettyjws");
}

TEST_CASE("the default Accept list prefers indexes and never asks for schema 1")
{
    REQUIRE(mt::default_accept.size() == 4);
    CHECK(mt::default_accept[0] == mt::oci_index);
    CHECK(mt::default_accept[1] == mt::docker_manifest_list);
    CHECK(mt::default_accept[2] == mt::oci_manifest);
    CHECK(mt::default_accept[3] == mt::docker_manifest);
    std::string joined;
    for (auto m : mt::default_accept) joined.append(joined.empty() ? "" : ", ").append(m);
    CHECK(mt::default_accept_header == joined);
    CHECK(mt::default_accept_header.find("distribution.manifest.v1") == std::string_view::npos);
}

TEST_CASE("layer_compression_of maps every layer type")
{
    struct row {
        std::string_view media_type;
        layer_compression expected;
    };
    row const rows[] = {
        {mt::oci_layer_tar, layer_compression::none},
        {mt::oci_layer_tar_gzip, layer_compression::gzip},
        {mt::oci_layer_tar_zstd, layer_compression::zstd},
        {mt::oci_layer_nondistributable_tar, layer_compression::none},
        {mt::oci_layer_nondistributable_tar_gzip, layer_compression::gzip},
        {mt::oci_layer_nondistributable_tar_zstd, layer_compression::zstd},
        {mt::docker_layer_tar, layer_compression::none},
        {mt::docker_layer_tar_gzip, layer_compression::gzip},
        {mt::docker_layer_tar_zstd, layer_compression::zstd},
        {mt::docker_foreign_layer_tar, layer_compression::none},
        {mt::docker_foreign_layer_tar_gzip, layer_compression::gzip},
        {"Application/VND.OCI.Image.Layer.v1.tar+GZIP", layer_compression::gzip},
        {" application/vnd.oci.image.layer.v1.tar+zstd ; foo=bar", layer_compression::zstd},
    };
    for (auto const& r : rows) {
        CAPTURE(r.media_type);
        error_code ec = make_error_code(error::timeout);
        CHECK(layer_compression_of(r.media_type, ec) == r.expected);
        CHECK_FALSE(ec);
        CHECK(layer_compression_of(r.media_type) == r.expected);
        CHECK(is_layer_media_type(r.media_type));
    }
}

TEST_CASE("unknown layer media types are unsupported")
{
    for (std::string_view bad : {mt::oci_config, mt::oci_manifest, mt::docker_config, std::string_view("application/octet-stream"),
                                 std::string_view("application/vnd.oci.image.layer.v1.tar+bzip2"),
                                 std::string_view("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
                                 std::string_view("")}) {
        CAPTURE(bad);
        error_code ec;
        (void)layer_compression_of(bad, ec);
        CHECK(ec == error::unsupported_media_type);
        CHECK(ec == condition::invalid_input);
        CHECK_FALSE(is_layer_media_type(bad));
    }
    try {
        (void)layer_compression_of("application/vnd.oci.image.layer.v1.tar+bzip2");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::unsupported_media_type);
        CHECK(std::string(e.what()).find("\"application/vnd.oci.image.layer.v1.tar+bzip2\" is not a layer media type") !=
              std::string::npos);
    }
}

TEST_CASE("classification of manifest, index, config and schema 1 types")
{
    CHECK(is_manifest_media_type(mt::oci_manifest));
    CHECK(is_manifest_media_type(mt::docker_manifest));
    CHECK(is_manifest_media_type("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"));
    CHECK_FALSE(is_manifest_media_type(mt::oci_index));
    CHECK_FALSE(is_manifest_media_type(mt::docker_schema1_manifest));
    CHECK_FALSE(is_manifest_media_type("application/json"));

    CHECK(is_index_media_type(mt::oci_index));
    CHECK(is_index_media_type(mt::docker_manifest_list));
    CHECK_FALSE(is_index_media_type(mt::oci_manifest));
    CHECK_FALSE(is_index_media_type(""));

    CHECK(is_config_media_type(mt::oci_config));
    CHECK(is_config_media_type(mt::docker_config));
    CHECK_FALSE(is_config_media_type(mt::oci_layer_tar));

    CHECK(is_schema1_media_type(mt::docker_schema1_manifest));
    CHECK(is_schema1_media_type(mt::docker_schema1_signed_manifest));
    CHECK_FALSE(is_schema1_media_type(mt::docker_manifest));
}

TEST_CASE("media_type_essence strips parameters, white space and case")
{
    CHECK(media_type_essence("Application/JSON; charset=utf-8") == "application/json");
    CHECK(media_type_essence("  text/plain  ") == "text/plain");
    CHECK(media_type_essence("") == "");
    CHECK(media_type_essence(";x=y") == "");
    CHECK(media_type_essence(mt::oci_index) == mt::oci_index);
}

TEST_CASE("layer_compression names")
{
    CHECK(to_string(layer_compression::none) == "none");
    CHECK(to_string(layer_compression::gzip) == "gzip");
    CHECK(to_string(layer_compression::zstd) == "zstd");
}
