#include <ocistore/descriptor.hpp>

#include <doctest/doctest.h>

#include <support/failure.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <ostream>
#include <string>

using namespace ocistore;

namespace {

std::string const hex_a(64, 'a');

std::string const full = R"({
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1+json",
  "digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "size": 7682,
  "urls": ["https://example.com/blob", "https://mirror.example.com/blob"],
  "annotations": { "org.opencontainers.image.ref.name": "v1.0", "com.example.key": "" },
  "data": "e30=",
  "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
  "x-unknown-member": { "ignored": true }
})";

using ocistore_test::failure;

failure read_fail(std::string const& json)
{
    failure f;
    try {
        (void)boost::json::value_to<descriptor>(boost::json::parse(json));
        FAIL("no exception for " << json);
    } catch (system_error const& e) {
        f.ec = e.code();
        f.why = e.what();
    }
    return f;
}

std::string with(std::string const& members)
{
    return R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:)" + hex_a + R"(","size":1)" +
           members + "}";
}

} // namespace

TEST_CASE("a descriptor with every member reads into the model")
{
    auto d = boost::json::value_to<descriptor>(boost::json::parse(full));
    CHECK(d.media_type == "application/vnd.oci.image.manifest.v1+json");
    CHECK(d.artifact_type == "application/vnd.example.sbom.v1+json");
    CHECK(d.digest == digest::parse("sha256:" + hex_a));
    CHECK(d.size == 7682);
    REQUIRE(d.urls.size() == 2);
    CHECK(d.urls[1] == "https://mirror.example.com/blob");
    CHECK(d.annotations.size() == 2);
    CHECK(d.annotations.at("org.opencontainers.image.ref.name") == "v1.0");
    CHECK(d.annotations.at("com.example.key").empty());
    CHECK(d.data == "e30=");
    REQUIRE(d.platform.has_value());
    CHECK(d.platform->to_string() == "linux/arm64/v8");
}

TEST_CASE("descriptors round-trip and omit empty optional members")
{
    auto d = boost::json::value_to<descriptor>(boost::json::parse(full));
    auto jv = boost::json::value_from(d);
    CHECK(boost::json::value_to<descriptor>(jv) == d);
    CHECK_FALSE(jv.as_object().contains("x-unknown-member"));

    descriptor minimal;
    minimal.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    minimal.digest = digest::parse("sha256:" + hex_a);
    minimal.size = 0;
    CHECK(boost::json::serialize(boost::json::value_from(minimal)) ==
          R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:)" + hex_a + R"(","size":0})");
    CHECK(boost::json::value_to<descriptor>(boost::json::value_from(minimal)) == minimal);
}

TEST_CASE("null optional members read as absent")
{
    auto d = boost::json::value_to<descriptor>(
        boost::json::parse(with(R"(,"urls":null,"annotations":null,"platform":null,"artifactType":null)")));
    CHECK(d.urls.empty());
    CHECK(d.annotations.empty());
    CHECK_FALSE(d.platform.has_value());
    CHECK(d.artifact_type.empty());
}

TEST_CASE("invalid descriptors name the member at fault")
{
    struct row {
        std::string json;
        error expected;
        std::string why;
    };
    row const rows[] = {
        {"[]", error::invalid_manifest, "expected an object, got an array"},
        {R"({"digest":"sha256:)" + hex_a + R"(","size":1})", error::invalid_manifest, "mediaType: required field missing"},
        {R"({"mediaType":"a/b","size":1})", error::invalid_manifest, "digest: required field missing"},
        {R"({"mediaType":"a/b","digest":"sha256:)" + hex_a + R"("})", error::invalid_manifest, "size: required field missing"},
        {R"({"mediaType":"a/b","digest":"sha256:)" + hex_a + R"(","size":null})", error::invalid_manifest,
         "size: required field is null"},
        {R"({"mediaType":"a/b","digest":"sha256:)" + hex_a + R"(","size":-5})", error::invalid_manifest,
         "size: must be a non-negative integer, got -5"},
        {R"({"mediaType":"a/b","digest":"sha256:)" + hex_a + R"(","size":1e3})", error::invalid_manifest,
         "size: expected an integer, got a number with a fraction or exponent"},
        {R"({"mediaType":"a/b","digest":"sha256:)" + hex_a + R"(","size":"1"})", error::invalid_manifest,
         "size: expected an integer, got a string"},
        {R"({"mediaType":"a/b","digest":42,"size":1})", error::invalid_manifest, "digest: expected a string, got a number"},
        {R"({"mediaType":"a/b","digest":"sha256:xyz","size":1})", error::invalid_manifest, "digest: invalid digest \"sha256:xyz\""},
        {R"({"mediaType":"a/b","digest":"","size":1})", error::invalid_manifest, "digest: invalid digest: empty string"},
        {R"({"mediaType":"a/b","digest":"sha384:)" + hex_a + R"(","size":1})", error::unsupported_digest_algorithm,
         "digest: invalid digest \"sha384:"},
        {R"({"mediaType":"","digest":"sha256:)" + hex_a + R"(","size":1})", error::invalid_manifest,
         "mediaType: \"\" is not a media type: media type is empty"},
        {R"({"mediaType":"application/","digest":"sha256:)" + hex_a + R"(","size":1})", error::invalid_manifest,
         "mediaType: \"application/\" is not a media type: empty subtype"},
        {R"({"mediaType":"/json","digest":"sha256:)" + hex_a + R"(","size":1})", error::invalid_manifest,
         "mediaType: \"/json\" is not a media type: empty type"},
        {R"({"mediaType":"application/x y","digest":"sha256:)" + hex_a + R"(","size":1})", error::invalid_manifest,
         "byte 0x20 at position 13 is not allowed in the subtype"},
        {R"({"mediaType":"application/json; charset=utf-8","digest":"sha256:)" + hex_a + R"(","size":1})",
         error::invalid_manifest, "';' at position 16 is not allowed in the subtype"},
        {with(R"(,"urls":[1])"), error::invalid_manifest, "urls[0]: expected a string, got a number"},
        {with(R"(,"urls":{})"), error::invalid_manifest, "urls: expected an array, got an object"},
        {with(R"(,"annotations":[])"), error::invalid_manifest, "annotations: expected an object, got an array"},
        {with(R"(,"annotations":{"a":true})"), error::invalid_manifest, "annotations.a: expected a string, got a boolean"},
        {with(R"(,"platform":"linux/amd64")"), error::invalid_manifest, "platform: expected an object, got a string"},
        {with(R"(,"platform":{"os":"linux"})"), error::invalid_manifest, "platform.architecture: required field missing"},
        {with(R"(,"artifactType":1)"), error::invalid_manifest, "artifactType: expected a string, got a number"},
        {with(R"(,"data":false)"), error::invalid_manifest, "data: expected a string, got a boolean"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.json);
        auto f = read_fail(r.json);
        CHECK(f.ec == r.expected);
        CHECK(f.why.find(r.why) != std::string::npos);
    }
}

TEST_CASE("media type syntax follows RFC 6838 restricted names")
{
    CHECK(detail::media_type_syntax_error("application/vnd.oci.image.layer.v1.tar+gzip").empty());
    CHECK(detail::media_type_syntax_error("application/vnd.docker.distribution.manifest.v1+prettyjws").empty());
    CHECK(detail::media_type_syntax_error("text/plain").empty());
    CHECK(detail::media_type_syntax_error("a/b").empty());
    CHECK(detail::media_type_syntax_error("application/+json") == "'+' at position 12 is not allowed in the subtype");
    CHECK(detail::media_type_syntax_error("application/x/y") == "'/' at position 13 is not allowed in the subtype");
    CHECK(detail::media_type_syntax_error(std::string(128, 'a') + "/b") == "type longer than 127 characters");
}
