#include <ocistore/manifest.hpp>

#include <ocistore/media_types.hpp>

#include <doctest/doctest.h>

#include <support/failure.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <ostream>
#include <string>
#include <string_view>

using namespace ocistore;
namespace mt = ocistore::media_types;

namespace {

// Shaped after real registry responses (docker.io/library/alpine, an old Docker Hub manifest
// list, a BuildKit OCI manifest, a Windows Docker manifest with foreign layers).

std::string const oci_manifest_json = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b",
    "size": 1471
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:00c3fa0b14bf8fbaeb7645cf1b52d6af81e64e31abd07db58a613c671319412f",
      "size": 3623844
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:216b60996ae5804c85207ac2f3f4843df55b65eb1edf8cbc2948911146531f14",
      "size": 0
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar",
      "digest": "sha256:ec5e404060bbe95bc859f3dd14ae2c20bb7426a2016c34b299e8e41dbfcbd689",
      "size": 10240,
      "annotations": { "org.opencontainers.image.title": "extra.tar" }
    }
  ],
  "annotations": {
    "com.docker.official-images.bashbrew.arch": "amd64",
    "org.opencontainers.image.base.name": "scratch",
    "org.opencontainers.image.created": "2024-07-22T22:26:43Z"
  }
})";

std::string const docker_manifest_json = R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 3140,
      "digest": "sha256:274f0dcb2a6148558c55b4180340c9b8529f4d01b8d2e4a28e38752457c5504e"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 1654613376,
         "digest": "sha256:a2361294d71c77be06b55862d11a53fac7c94fdc395a7bd57e07c979937d87a7",
         "urls": [
            "https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:a2361294d71c77be06b55862d11a53fac7c94fdc395a7bd57e07c979937d87a7"
         ]
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 32,
         "digest": "sha256:fcad3413aad17d058c39a8e93010fe3a495697c06ea00aa8fdd9be7439f4dbe9"
      }
   ]
})";

std::string const oci_index_json = R"({
  "manifests": [
    {
      "annotations": {
        "com.docker.official-images.bashbrew.arch": "amd64",
        "org.opencontainers.image.revision": "9ae6b4b5a2d5a6d9b0b9f8f1cbb8dc0c0f0f0a0a"
      },
      "digest": "sha256:daeb148d2c349a6163782543dd5fd18b7ae8d43e33544c88ccd1e96c35f77541",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "amd64", "os": "linux" },
      "size": 1022
    },
    {
      "annotations": {
        "vnd.docker.reference.digest": "sha256:daeb148d2c349a6163782543dd5fd18b7ae8d43e33544c88ccd1e96c35f77541",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "digest": "sha256:df7e19b5a964bb08b2e7017d3baa22bcda67fec6193d8ed7dad16d945cf170d0",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "unknown", "os": "unknown" },
      "size": 839
    },
    {
      "digest": "sha256:94ea60714f5fe36e765ce1f0cb1b57b1a818060250d0c40295e273e91b52599f",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "arm", "os": "linux", "variant": "v6" },
      "size": 1025
    },
    {
      "digest": "sha256:e5f1ffc855717cfda0109ccd1a3810ae40dfaaa400cb11b32a8f3c62776f6faa",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "arm", "os": "linux", "variant": "v7" },
      "size": 1025
    },
    {
      "digest": "sha256:b33c4162ac36d2a8521f79c9659f4a4239598957b1b0a8393045d1c720f086c2",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
      "size": 1025
    },
    {
      "annotations": {
        "vnd.docker.reference.digest": "sha256:b33c4162ac36d2a8521f79c9659f4a4239598957b1b0a8393045d1c720f086c2",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "digest": "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "platform": { "architecture": "unknown", "os": "unknown" },
      "size": 839
    }
  ],
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "schemaVersion": 2
})";

std::string const docker_list_json = R"({
   "manifests": [
      {
         "digest": "sha256:00c3fa0b14bf8fbaeb7645cf1b52d6af81e64e31abd07db58a613c671319412f",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "amd64", "os": "linux" },
         "size": 527
      },
      {
         "digest": "sha256:216b60996ae5804c85207ac2f3f4843df55b65eb1edf8cbc2948911146531f14",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
         "size": 527
      },
      {
         "digest": "sha256:ec5e404060bbe95bc859f3dd14ae2c20bb7426a2016c34b299e8e41dbfcbd689",
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "platform": {
            "architecture": "amd64",
            "os": "windows",
            "os.version": "10.0.17763.5936",
            "os.features": ["win32k"]
         },
         "size": 1161
      }
   ],
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "schemaVersion": 2
})";

std::string const schema1_json = R"({
   "schemaVersion": 1,
   "name": "library/hello-world",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      { "blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4" }
   ],
   "history": [ { "v1Compatibility": "{}" } ],
   "signatures": []
})";

std::string const hex_a(64, 'a');
std::string const hex_b(64, 'b');

using ocistore_test::failure;

failure parse_fail(std::string_view bytes, std::string_view content_type)
{
    failure f;
    auto doc = parse_manifest(bytes, content_type, f.ec, &f.why);
    CHECK(doc.raw.empty());
    return f;
}

using ocistore_test::edited;

std::string manifest_with_layers(std::string const& layers)
{
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
           hex_a + R"(","size":2},"layers":)" + layers + "}";
}

std::string layer(std::string const& digest, std::string const& size = "1")
{
    return R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + digest + R"(","size":)" + size +
           "}";
}

descriptor entry(std::string const& p, char hex = 'a')
{
    descriptor d;
    d.media_type = std::string(mt::oci_manifest);
    d.digest = digest::parse("sha256:" + std::string(64, hex));
    d.size = 100;
    platform q;
    auto first = p.find('/'), second = p.find('/', first + 1);
    q.os = p.substr(0, first);
    q.architecture = p.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (second != std::string::npos) q.variant = p.substr(second + 1);
    d.platform = q;
    return d;
}

image_index index_of(std::initializer_list<descriptor> ds)
{
    image_index i;
    i.media_type = std::string(mt::oci_index);
    i.manifests = ds;
    return i;
}

} // namespace

TEST_CASE("an OCI image manifest parses into the model")
{
    auto doc = parse_manifest(oci_manifest_json, mt::oci_manifest);
    CHECK(doc.media_type == mt::oci_manifest);
    REQUIRE_FALSE(doc.is_index());
    image_manifest const& m = doc.manifest();
    CHECK(m.schema_version == 2);
    CHECK(m.media_type == mt::oci_manifest);
    CHECK(m.config.media_type == mt::oci_config);
    CHECK(m.config.digest.str() == "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b");
    CHECK(m.config.size == 1471);
    REQUIRE(m.layers.size() == 3);
    CHECK(layer_compression_of(m.layers[0].media_type) == layer_compression::gzip);
    CHECK(layer_compression_of(m.layers[1].media_type) == layer_compression::zstd);
    CHECK(layer_compression_of(m.layers[2].media_type) == layer_compression::none);
    CHECK(m.layers[0].size == 3623844);
    CHECK(m.layers[1].size == 0);
    CHECK(m.layers[2].annotations.at("org.opencontainers.image.title") == "extra.tar");
    CHECK(m.annotations.size() == 3);
    CHECK(m.annotations.at("org.opencontainers.image.base.name") == "scratch");
    CHECK_FALSE(m.subject.has_value());
    CHECK_THROWS_AS((void)doc.index(), std::bad_variant_access);
}

TEST_CASE("a Docker schema 2 manifest with foreign layers parses")
{
    auto doc = parse_manifest(docker_manifest_json, mt::docker_manifest);
    CHECK(doc.media_type == mt::docker_manifest);
    image_manifest const& m = doc.manifest();
    CHECK(m.media_type == mt::docker_manifest);
    CHECK(m.config.media_type == mt::docker_config);
    REQUIRE(m.layers.size() == 2);
    CHECK(m.layers[0].size == 1654613376);
    REQUIRE(m.layers[0].urls.size() == 1);
    CHECK(m.layers[0].urls[0].starts_with("https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:a236"));
    CHECK(layer_compression_of(m.layers[0].media_type) == layer_compression::gzip);
    CHECK(m.layers[1].urls.empty());
}

TEST_CASE("an OCI index with attestations and a Docker manifest list parse")
{
    auto doc = parse_manifest(oci_index_json, mt::oci_index);
    REQUIRE(doc.is_index());
    CHECK(doc.media_type == mt::oci_index);
    image_index const& i = doc.index();
    REQUIRE(i.manifests.size() == 6);
    REQUIRE(i.manifests[0].platform.has_value());
    CHECK(i.manifests[0].platform->to_string() == "linux/amd64");
    CHECK(i.manifests[0].annotations.at("com.docker.official-images.bashbrew.arch") == "amd64");
    CHECK(i.manifests[2].platform->variant == "v6");
    CHECK(is_attestation_manifest(i.manifests[1]));
    CHECK(is_attestation_manifest(i.manifests[5]));
    CHECK_FALSE(is_attestation_manifest(i.manifests[0]));

    auto list = parse_manifest(docker_list_json, mt::docker_manifest_list);
    REQUIRE(list.is_index());
    CHECK(list.media_type == mt::docker_manifest_list);
    auto const& w = list.index().manifests[2];
    REQUIRE(w.platform.has_value());
    CHECK(w.platform->os == "windows");
    CHECK(w.platform->os_version == "10.0.17763.5936");
    REQUIRE(w.platform->os_features.size() == 1);
    CHECK(w.platform->os_features[0] == "win32k");
    CHECK(w.media_type == mt::docker_manifest);
}

TEST_CASE("the raw bytes are kept exactly, not re-serialised")
{
    std::string const odd = "  \n" + oci_manifest_json + "\r\n\t ";
    auto doc = parse_manifest(odd, mt::oci_manifest);
    CHECK(doc.raw == odd);
    CHECK(doc.raw.size() == odd.size());
    auto reserialised = boost::json::serialize(boost::json::value_from(doc.manifest()));
    CHECK(reserialised != doc.raw);
    // Key order and spacing of the index survive too.
    auto idx = parse_manifest(oci_index_json, "");
    CHECK(idx.raw == oci_index_json);
}

TEST_CASE("content type parameters and case are ignored")
{
    auto doc = parse_manifest(oci_manifest_json, "Application/VND.OCI.image.manifest.v1+json ; charset=utf-8");
    CHECK(doc.media_type == mt::oci_manifest);
    CHECK_FALSE(doc.is_index());
}

TEST_CASE("a generic content type defers to mediaType, then to the document's structure")
{
    for (std::string_view ct : {"", "application/json", "application/json; charset=utf-8", "application/octet-stream",
                                "text/plain"}) {
        CAPTURE(ct);
        CHECK(parse_manifest(oci_manifest_json, ct).media_type == mt::oci_manifest);
        CHECK(parse_manifest(docker_manifest_json, ct).media_type == mt::docker_manifest);
        CHECK(parse_manifest(oci_index_json, ct).media_type == mt::oci_index);
        CHECK(parse_manifest(docker_list_json, ct).media_type == mt::docker_manifest_list);
    }
    // No mediaType anywhere: "manifests" means an index, "config" + "layers" a manifest.
    std::string const bare_manifest = edited(oci_manifest_json, R"("mediaType": "application/vnd.oci.image.manifest.v1+json",)", "");
    auto m = parse_manifest(bare_manifest, "application/json");
    CHECK(m.media_type == mt::oci_manifest);
    CHECK(m.manifest().media_type.empty());
    CHECK(m.manifest().layers.size() == 3);

    std::string const bare_index = edited(oci_index_json, R"("mediaType": "application/vnd.oci.image.index.v1+json",)", "");
    auto i = parse_manifest(bare_index, "");
    CHECK(i.media_type == mt::oci_index);
    CHECK(i.index().manifests.size() == 6);

    // A specific content type is enough without a mediaType member.
    CHECK(parse_manifest(bare_manifest, mt::docker_manifest).media_type == mt::docker_manifest);

    auto f = parse_fail(R"({"schemaVersion":2})", "application/json");
    CHECK(f.ec == error::invalid_manifest);
    CHECK(f.why.find("cannot tell a manifest from an index") != std::string::npos);

    auto both = parse_fail(R"({"schemaVersion":2,"manifests":[],"config":{},"layers":[]})", "");
    CHECK(both.ec == error::invalid_manifest);
    CHECK(both.why.find("both") != std::string::npos);
}

TEST_CASE("content type and mediaType must agree")
{
    auto f = parse_fail(oci_manifest_json, mt::oci_index);
    CHECK(f.ec == error::invalid_manifest);
    CHECK(f.why.find("mediaType") != std::string::npos);
    CHECK(f.why.find(std::string(mt::oci_manifest)) != std::string::npos);
    CHECK(f.why.find(std::string(mt::oci_index)) != std::string::npos);

    auto g = parse_fail(docker_manifest_json, mt::oci_manifest);
    CHECK(g.ec == error::invalid_manifest);
    CHECK(g.why.find("disagrees") != std::string::npos);

    auto h = parse_fail(docker_list_json, mt::oci_index);
    CHECK(h.ec == error::invalid_manifest);
}

TEST_CASE("a document cannot be both a manifest and an index")
{
    std::string const bare_manifest = edited(oci_manifest_json, R"("mediaType": "application/vnd.oci.image.manifest.v1+json",)", "");
    auto f = parse_fail(bare_manifest, mt::oci_index);
    CHECK(f.ec == error::invalid_manifest);
    CHECK(f.why.starts_with("config: not allowed in an index"));

    std::string const with_manifests = edited(oci_manifest_json, R"("schemaVersion": 2,)", R"("schemaVersion": 2, "manifests": [],)");
    auto g = parse_fail(with_manifests, mt::oci_manifest);
    CHECK(g.ec == error::invalid_manifest);
    CHECK(g.why.starts_with("manifests: not allowed in a manifest"));
}

TEST_CASE("Docker schema 1 is rejected with a clear message")
{
    for (std::string_view ct : {mt::docker_schema1_signed_manifest, mt::docker_schema1_manifest}) {
        auto f = parse_fail(schema1_json, ct);
        CHECK(f.ec == error::unsupported_schema);
        CHECK(f.why.starts_with("Docker schema 1 manifests are not supported"));
        CHECK(f.why.find(std::string(ct)) != std::string::npos);
    }
    // By schemaVersion alone, under a generic content type.
    auto g = parse_fail(schema1_json, "application/json");
    CHECK(g.ec == error::unsupported_schema);
    CHECK(g.why.starts_with("Docker schema 1 manifests are not supported"));
    CHECK(g.why.find("schemaVersion is 1") != std::string::npos);
    // By mediaType member.
    auto h = parse_fail(R"({"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"})", "");
    CHECK(h.ec == error::unsupported_schema);
    CHECK(h.why.find("mediaType") != std::string::npos);
    // schemaVersion 1 under a schema 2 content type is still schema 1.
    auto i = parse_fail(edited(oci_manifest_json, R"("schemaVersion": 2)", R"("schemaVersion": 1)"), mt::oci_manifest);
    CHECK(i.ec == error::unsupported_schema);
    CHECK(i.ec == condition::invalid_input);
}

TEST_CASE("other schemaVersions are unsupported or invalid")
{
    auto f = parse_fail(edited(oci_manifest_json, R"("schemaVersion": 2)", R"("schemaVersion": 3)"), mt::oci_manifest);
    CHECK(f.ec == error::unsupported_schema);
    CHECK(f.why == "schemaVersion: unsupported value 3 (only 2 is supported)");

    auto g = parse_fail(edited(oci_manifest_json, R"("schemaVersion": 2)", R"("schemaVersion": "2")"), mt::oci_manifest);
    CHECK(g.ec == error::invalid_manifest);
    CHECK(g.why == "schemaVersion: expected an integer, got a string");

    auto h = parse_fail(edited(oci_manifest_json, R"("schemaVersion": 2)", R"("schemaVersion": 2.5)"), mt::oci_manifest);
    CHECK(h.ec == error::invalid_manifest);
    CHECK(h.why.starts_with("schemaVersion: expected an integer"));

    auto i = parse_fail(edited(oci_manifest_json, R"("schemaVersion": 2,)", ""), mt::oci_manifest);
    CHECK(i.ec == error::invalid_manifest);
    CHECK(i.why == "schemaVersion: required field missing");
}

TEST_CASE("unknown media types are unsupported")
{
    auto f = parse_fail(oci_manifest_json, "text/html");
    CHECK(f.ec == error::unsupported_media_type);
    CHECK(f.why.find("\"text/html\"") != std::string::npos);

    auto g = parse_fail(oci_manifest_json, mt::oci_config);
    CHECK(g.ec == error::unsupported_media_type);

    auto h = parse_fail(edited(oci_manifest_json, "application/vnd.oci.image.manifest.v1+json",
                               "application/vnd.example.thing.v1+json"),
                        "application/json");
    CHECK(h.ec == error::unsupported_media_type);
    CHECK(h.why.starts_with("mediaType: \"application/vnd.example.thing.v1+json\""));
}

TEST_CASE("wrong JSON types and missing members name the member path")
{
    struct row {
        std::string doc;
        std::string content_type;
        error expected;
        std::string why;
    };
    std::string const cfg = R"("config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b",
    "size": 1471
  },)";
    std::string const ct(mt::oci_manifest);
    row const rows[] = {
        {"[1, 2]", ct, error::invalid_manifest, "document: expected an object, got an array"},
        {"\"manifest\"", ct, error::invalid_manifest, "document: expected an object, got a string"},
        {edited(oci_manifest_json, cfg, ""), ct, error::invalid_manifest, "config: required field missing"},
        {edited(oci_manifest_json, cfg, R"("config": null,)"), ct, error::invalid_manifest, "config: required field is null"},
        {edited(oci_manifest_json, cfg, R"("config": [],)"), ct, error::invalid_manifest, "config: expected an object, got an array"},
        {manifest_with_layers(R"({"a":1})"), ct, error::invalid_manifest, "layers: expected an array, got an object"},
        {manifest_with_layers("[" + layer("sha256:" + hex_a) + ", 7]"), ct, error::invalid_manifest,
         "layers[1]: expected an object, got a number"},
        {manifest_with_layers("[" + layer("sha256:" + hex_a, "\"12\"") + "]"), ct, error::invalid_manifest,
         "layers[0].size: expected an integer, got a string"},
        {manifest_with_layers("[" + layer("sha256:" + hex_a, "1.5") + "]"), ct, error::invalid_manifest,
         "layers[0].size: expected an integer, got a number with a fraction or exponent"},
        {manifest_with_layers("[" + layer("sha256:" + hex_a, "true") + "]"), ct, error::invalid_manifest,
         "layers[0].size: expected an integer, got a boolean"},
        {manifest_with_layers(R"([{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":1}])"), ct,
         error::invalid_manifest, "layers[0].digest: required field missing"},
        {manifest_with_layers(R"([{"digest":"sha256:)" + hex_a + R"(","size":1}])"), ct, error::invalid_manifest,
         "layers[0].mediaType: required field missing"},
        {manifest_with_layers(R"([{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:)" + hex_a +
                              R"("}])"),
         ct, error::invalid_manifest, "layers[0].size: required field missing"},
        {manifest_with_layers(R"([{"mediaType":5,"digest":"sha256:)" + hex_a + R"(","size":1}])"), ct,
         error::invalid_manifest, "layers[0].mediaType: expected a string, got a number"},
        {manifest_with_layers(R"([{"mediaType":"tarball","digest":"sha256:)" + hex_a + R"(","size":1}])"), ct,
         error::invalid_manifest, "layers[0].mediaType: \"tarball\" is not a media type: missing '/' between type and subtype"},
        {manifest_with_layers(R"([{"mediaType":"application/x","digest":"sha256:)" + hex_a +
                              R"(","size":1,"urls":"http://x"}])"),
         ct, error::invalid_manifest, "layers[0].urls: expected an array, got a string"},
        {manifest_with_layers(R"([{"mediaType":"application/x","digest":"sha256:)" + hex_a +
                              R"(","size":1,"annotations":{"k":1}}])"),
         ct, error::invalid_manifest, "layers[0].annotations.k: expected a string, got a number"},
        {edited(oci_manifest_json, R"("org.opencontainers.image.base.name": "scratch")",
                R"("org.opencontainers.image.base.name": null)"),
         ct, error::invalid_manifest, "annotations.org.opencontainers.image.base.name: expected a string, got null"},
        {edited(oci_manifest_json, R"("schemaVersion": 2,)", R"("schemaVersion": 2, "subject": "x",)"), ct,
         error::invalid_manifest, "subject: expected an object, got a string"},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}})",
         std::string(mt::oci_index), error::invalid_manifest, "manifests: expected an array, got an object"},
        {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})", std::string(mt::oci_index),
         error::invalid_manifest, "manifests: required field missing"},
        {R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
             hex_a + R"(","size":1,"platform":{"architecture":"amd64"}}]})",
         "", error::invalid_manifest, "manifests[0].platform.os: required field missing"},
        {R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
             hex_a + R"(","size":1,"platform":{"architecture":"amd64","os":"linux","os.features":"x"}}]})",
         "", error::invalid_manifest, "manifests[0].platform.os.features: expected an array, got a string"},
        {R"({"schemaVersion":2,"mediaType":7,"manifests":[]})", "", error::invalid_manifest,
         "mediaType: expected a string, got a number"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.doc);
        auto f = parse_fail(r.doc, r.content_type);
        CHECK(f.ec == r.expected);
        CHECK(f.why == r.why);
    }
}

TEST_CASE("sizes must be non-negative integers that fit in int64")
{
    auto f = parse_fail(manifest_with_layers("[" + layer("sha256:" + hex_a, "-1") + "]"), mt::oci_manifest);
    CHECK(f.ec == error::invalid_manifest);
    CHECK(f.why == "layers[0].size: must be a non-negative integer, got -1");

    auto g = parse_fail(manifest_with_layers("[" + layer("sha256:" + hex_a, "18446744073709551615") + "]"),
                        mt::oci_manifest);
    CHECK(g.ec == error::invalid_manifest);
    CHECK(g.why == "layers[0].size: integer 18446744073709551615 is out of range");

    auto ok = parse_manifest(manifest_with_layers("[" + layer("sha256:" + hex_a, "9223372036854775807") + "]"),
                             mt::oci_manifest);
    CHECK(ok.manifest().layers[0].size == 9223372036854775807LL);
}

TEST_CASE("digests are validated where they appear")
{
    std::string const layers = "[" + layer("sha256:" + hex_a) + "," + layer("sha256:" + hex_b) + "," +
                               layer("sha256:abc") + "]";
    auto f = parse_fail(manifest_with_layers(layers), mt::oci_manifest);
    CHECK(f.ec == error::invalid_manifest);
    CHECK(f.why.starts_with("layers[2].digest: invalid digest \"sha256:abc\""));
    CHECK(f.why.find("64 hex digits, got 3") != std::string::npos);

    auto g = parse_fail(manifest_with_layers("[" + layer("SHA256:" + hex_a) + "]"), mt::oci_manifest);
    CHECK(g.ec == error::invalid_manifest);
    CHECK(g.why.starts_with("layers[0].digest: invalid digest"));

    auto h = parse_fail(manifest_with_layers("[" + layer("md5:d41d8cd98f00b204e9800998ecf8427e") + "]"),
                        mt::oci_manifest);
    CHECK(h.ec == error::unsupported_digest_algorithm);
    CHECK(h.why.starts_with("layers[0].digest: "));
    CHECK(h.why.find("\"md5\" is not supported") != std::string::npos);

    auto i = parse_fail(edited(oci_manifest_json, "sha256:c59f6c4064ae", "sha256:zz9f6c4064ae"), mt::oci_manifest);
    CHECK(i.ec == error::invalid_manifest);
    CHECK(i.why.starts_with("config.digest: invalid digest"));
}

TEST_CASE("documents over 4 MiB are rejected before parsing")
{
    CHECK(max_manifest_size == 4u * 1024 * 1024);
    // Exactly at the limit: accepted (padding is insignificant white space).
    std::string at_limit = oci_manifest_json;
    at_limit.append(max_manifest_size - at_limit.size(), ' ');
    REQUIRE(at_limit.size() == max_manifest_size);
    auto doc = parse_manifest(at_limit, mt::oci_manifest);
    CHECK(doc.raw.size() == max_manifest_size);

    // One byte more fails even though the bytes are not JSON at all.
    std::string over(max_manifest_size + 1, '{');
    auto f = parse_fail(over, mt::oci_manifest);
    CHECK(f.ec == error::too_large);
    CHECK(f.why.find("4194305 bytes") != std::string::npos);
    CHECK(f.why.find("4194304") != std::string::npos);
    // Before the content type is even looked at.
    CHECK(parse_fail(over, "text/html").ec == error::too_large);
}

TEST_CASE("malformed JSON reports Boost.JSON's reason and the position")
{
    auto f = parse_fail(R"({"schemaVersion": 2,, "layers": []})", mt::oci_manifest);
    CHECK(f.ec == error::invalid_json);
    CHECK(f.why.starts_with("manifest is not valid JSON: "));
    CHECK(f.why.find("at offset 20 (line 1, column 21)") != std::string::npos);

    auto g = parse_fail("{\n  \"schemaVersion\": 2,\n  \"layers\": [\n", mt::oci_manifest);
    CHECK(g.ec == error::invalid_json);
    CHECK(g.why.find("incomplete") != std::string::npos);

    auto h = parse_fail(oci_manifest_json + " trailing", mt::oci_manifest);
    CHECK(h.ec == error::invalid_json);
    CHECK(h.why.find("extra data") != std::string::npos);

    CHECK(parse_fail("", mt::oci_manifest).ec == error::invalid_json);
    CHECK(parse_fail(R"({"schemaVersion": 2, /* comment */ "layers": []})", "").ec == error::invalid_json);
    CHECK(parse_fail("{\"a\": \"\xff\"}", "").ec == error::invalid_json); // invalid UTF-8
}

TEST_CASE("duplicate keys are accepted, the last one winning")
{
    auto doc = parse_manifest(edited(oci_manifest_json, R"("schemaVersion": 2,)", R"("schemaVersion": 7, "schemaVersion": 2,)"),
                              mt::oci_manifest);
    CHECK(doc.manifest().schema_version == 2);
}

TEST_CASE("manifests and indexes round-trip through serialisation")
{
    for (std::string const* src : {&oci_manifest_json, &docker_manifest_json, &oci_index_json, &docker_list_json}) {
        auto doc = parse_manifest(*src, "");
        std::string const out =
            doc.is_index() ? boost::json::serialize(boost::json::value_from(doc.index()))
                           : boost::json::serialize(boost::json::value_from(doc.manifest()));
        auto again = parse_manifest(out, doc.media_type);
        CHECK(again.media_type == doc.media_type);
        CHECK(again.document == doc.document);
        CHECK(again.raw == out);
    }
    // value_to is the inverse of value_from, subject and artifactType included.
    image_manifest m = parse_manifest(oci_manifest_json, "").manifest();
    m.artifact_type = "application/vnd.example.sbom.v1+json";
    m.subject = m.config;
    m.subject->media_type = std::string(mt::oci_manifest);
    auto jv = boost::json::value_from(m);
    CHECK(jv.at("artifactType").as_string() == "application/vnd.example.sbom.v1+json");
    CHECK(boost::json::value_to<image_manifest>(jv) == m);
    // Empty optional members are omitted.
    CHECK_FALSE(jv.at("layers").at(0).as_object().contains("annotations"));
    CHECK_FALSE(jv.at("layers").at(0).as_object().contains("urls"));
}

TEST_CASE("value_to on invalid JSON values throws system_error naming the member")
{
    auto jv = boost::json::parse(R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":"x","size":1},"layers":[]})");
    try {
        (void)boost::json::value_to<image_manifest>(jv);
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_manifest);
        CHECK(std::string(e.what()).find("config.digest: invalid digest") != std::string::npos);
    }
    auto ji = boost::json::parse(R"({"schemaVersion":3,"manifests":[]})");
    CHECK_THROWS_AS((void)boost::json::value_to<image_index>(ji), system_error);
}

TEST_CASE("the throwing parse_manifest carries the code and reason")
{
    try {
        (void)parse_manifest(schema1_json, mt::docker_schema1_signed_manifest);
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::unsupported_schema);
        CHECK(std::string(e.what()).find("Docker schema 1 manifests are not supported") != std::string::npos);
    }
    CHECK_NOTHROW((void)parse_manifest(oci_index_json, mt::oci_index));
}

TEST_CASE("error_code overloads clear a previous error on success")
{
    error_code ec = make_error_code(error::timeout);
    auto doc = parse_manifest(oci_manifest_json, mt::oci_manifest, ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(doc.raw.empty());
    ec = make_error_code(error::timeout);
    (void)select_manifest(index_of({entry("linux/amd64")}), platform::parse("linux/amd64"), ec);
    CHECK_FALSE(ec);
}

// --- platform selection -------------------------------------------------------------------

TEST_CASE("select_manifest picks the exact platform from a real-world index")
{
    image_index const idx = parse_manifest(oci_index_json, mt::oci_index).index();
    CHECK(select_manifest(idx, platform::parse("linux/amd64")).digest == idx.manifests[0].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm64/v8")).digest == idx.manifests[4].digest);
    CHECK(select_manifest(idx, platform::parse("linux/aarch64")).digest == idx.manifests[4].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm/v7")).digest == idx.manifests[3].digest);
    CHECK(select_manifest(idx, platform::parse("linux/armhf")).digest == idx.manifests[3].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm/v6")).digest == idx.manifests[2].digest);
    CHECK(select_manifest(idx, platform::parse("linux/x86_64")).digest == idx.manifests[0].digest);
    CHECK(select_manifest(idx, host_platform()).digest == idx.manifests[0].digest); // this machine: linux/amd64

    image_index const list = parse_manifest(docker_list_json, mt::docker_manifest_list).index();
    CHECK(select_manifest(list, platform::parse("linux/amd64")).digest == list.manifests[0].digest);
    CHECK(select_manifest(list, platform::parse("windows/amd64")).digest == list.manifests[2].digest);
}

TEST_CASE("an exact variant beats a compatible fallback, whatever the order")
{
    auto idx = index_of({entry("linux/arm/v5", '5'), entry("linux/arm/v6", '6'), entry("linux/arm/v7", '7')});
    CHECK(select_manifest(idx, platform::parse("linux/arm/v7")).digest == idx.manifests[2].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm/v6")).digest == idx.manifests[1].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm/v5")).digest == idx.manifests[0].digest);
    // arm/v8 (32-bit) falls back to the highest older variant.
    CHECK(select_manifest(idx, platform::parse("linux/arm/v8")).digest == idx.manifests[2].digest);
}

TEST_CASE("arm v7 falls back to v6, never upwards")
{
    auto idx = index_of({entry("linux/amd64", '1'), entry("linux/arm/v5", '5'), entry("linux/arm/v6", '6')});
    CHECK(select_manifest(idx, platform::parse("linux/arm/v7")).digest == idx.manifests[2].digest);
    CHECK(select_manifest(idx, platform::parse("linux/arm")).digest == idx.manifests[2].digest); // arm = arm/v7
    auto only_v7 = index_of({entry("linux/arm/v7")});
    error_code ec;
    std::string why;
    (void)select_manifest(only_v7, platform::parse("linux/arm/v6"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(why.find("linux/arm/v7") != std::string::npos);
}

TEST_CASE("arm64 v8 accepts an entry without variant, but prefers an explicit v8")
{
    auto no_variant = index_of({entry("linux/amd64", '1'), entry("linux/arm64", '2')});
    CHECK(select_manifest(no_variant, platform::parse("linux/arm64/v8")).digest == no_variant.manifests[1].digest);
    CHECK(select_manifest(no_variant, platform::parse("linux/arm64")).digest == no_variant.manifests[1].digest);

    auto both = index_of({entry("linux/arm64", '2'), entry("linux/arm64/v8", '3')});
    CHECK(select_manifest(both, platform::parse("linux/arm64/v8")).digest == both.manifests[1].digest);
    CHECK(select_manifest(both, platform::parse("linux/arm64")).digest == both.manifests[1].digest);

    // Newer arm64 variants fall back to v8; 32-bit arm is the last resort.
    auto v8 = index_of({entry("linux/arm/v7", '7'), entry("linux/arm64/v8", '8')});
    CHECK(select_manifest(v8, platform::parse("linux/arm64/v8.2")).digest == v8.manifests[1].digest);
    CHECK(select_manifest(v8, platform::parse("linux/arm64/v9")).digest == v8.manifests[1].digest);
    auto arm32 = index_of({entry("linux/arm/v6", '6'), entry("linux/arm/v7", '7')});
    CHECK(select_manifest(arm32, platform::parse("linux/arm64")).digest == arm32.manifests[1].digest);
}

TEST_CASE("amd64 accepts an empty or v1 variant, older microarchitecture levels, then 386")
{
    auto v1 = index_of({entry("linux/amd64/v1", '1')});
    CHECK(select_manifest(v1, platform::parse("linux/amd64")).digest == v1.manifests[0].digest);
    auto levels = index_of({entry("linux/amd64", '1'), entry("linux/amd64/v2", '2'), entry("linux/amd64/v4", '4')});
    CHECK(select_manifest(levels, platform::parse("linux/amd64/v3")).digest == levels.manifests[1].digest);
    CHECK(select_manifest(levels, platform::parse("linux/amd64")).digest == levels.manifests[0].digest);
    CHECK(select_manifest(levels, platform::parse("linux/amd64/v4")).digest == levels.manifests[2].digest);
    auto i386 = index_of({entry("linux/386", '3'), entry("linux/arm64", '8')});
    CHECK(select_manifest(i386, platform::parse("linux/amd64")).digest == i386.manifests[0].digest);
}

TEST_CASE("the os must match, and equal ranks keep index order")
{
    auto idx = index_of({entry("windows/amd64", '1'), entry("freebsd/amd64", '2')});
    error_code ec;
    std::string why;
    (void)select_manifest(idx, platform::parse("linux/amd64"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(select_manifest(idx, platform::parse("freebsd/amd64")).digest == idx.manifests[1].digest);

    auto twins = index_of({entry("linux/amd64", '1'), entry("linux/amd64", '2')});
    CHECK(select_manifest(twins, platform::parse("linux/amd64")).digest == twins.manifests[0].digest);
}

TEST_CASE("a wanted os.version prefers the entry built for it")
{
    auto a = entry("windows/amd64", '1');
    a.platform->os_version = "10.0.17763.5936";
    auto b = entry("windows/amd64", '2');
    b.platform->os_version = "10.0.20348.2527";
    auto idx = index_of({a, b});
    CHECK(select_manifest(idx, platform::parse("windows(10.0.20348.2527)/amd64")).digest == b.digest);
    CHECK(select_manifest(idx, platform::parse("windows/amd64")).digest == a.digest);
}

TEST_CASE("attestation manifests are never selected")
{
    // Annotated as an attestation but carrying a real platform: skipped anyway.
    auto att = entry("linux/amd64", 'f');
    att.annotations["vnd.docker.reference.type"] = "attestation-manifest";
    auto unknown = entry("unknown/unknown", 'e');
    auto idx = index_of({att, unknown, entry("linux/amd64", '1')});
    CHECK(select_manifest(idx, platform::parse("linux/amd64")).digest == idx.manifests[2].digest);

    auto only_att = index_of({att, unknown});
    error_code ec;
    std::string why;
    (void)select_manifest(only_att, platform::parse("linux/amd64"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(why == "no manifest for linux/amd64 in the index; available: none; skipped 2 attestation manifest(s)");
    // Even when asking for unknown/unknown.
    (void)select_manifest(only_att, platform::parse("unknown/unknown"), ec);
    CHECK(ec == error::no_matching_platform);
}

TEST_CASE("no match reports the wanted and the available platforms")
{
    image_index const idx = parse_manifest(oci_index_json, mt::oci_index).index();
    error_code ec;
    std::string why;
    auto d = select_manifest(idx, platform::parse("linux/s390x"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(ec == condition::not_found);
    CHECK(d.digest.empty());
    CHECK(why == "no manifest for linux/s390x in the index; available: linux/amd64, linux/arm/v6, linux/arm/v7, "
                 "linux/arm64/v8; skipped 2 attestation manifest(s)");

    auto no_platform = index_of({entry("linux/arm64/v8")});
    no_platform.manifests[0].platform.reset();
    (void)select_manifest(no_platform, platform::parse("linux/arm64"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(why.find("skipped 1 entry(ies) without a platform") != std::string::npos);

    (void)select_manifest(image_index{}, platform::parse("linux/amd64"), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(why.find("available: none") != std::string::npos);

    try {
        (void)select_manifest(idx, platform::parse("linux/riscv64"));
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::no_matching_platform);
        CHECK(std::string(e.what()).find("no manifest for linux/riscv64") != std::string::npos);
        CHECK(std::string(e.what()).find("linux/arm64/v8") != std::string::npos);
    }
}
