#include <ocistore/cli_output.hpp>

#include <boost/json/parse.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore::cli;

namespace {

digest dg(char c) { return digest::parse("sha256:" + std::string(64, c)); }

pull_result sample(bool with_index)
{
    pull_result r;
    r.reference = image_reference::parse("example.com/app:v1");
    r.platform = platform::parse("linux/arm64");
    if (with_index) r.index_digest = dg('1');
    r.manifest_digest = dg('2');
    r.config_digest = dg('3');
    r.manifest_media_type = "application/vnd.oci.image.manifest.v1+json";
    r.artifact_kind = "erofs";
    r.cached = false;
    r.downloaded_bytes = 1500;
    r.layers.push_back(layer_record{dg('a'), dg('b'), 1000, "application/vnd.oci.image.layer.v1.tar+gzip",
                                    {"/c/layers/sha256_bb.erofs"}, true, true});
    r.layers.push_back(layer_record{dg('c'), dg('d'), 2048, "application/vnd.oci.image.layer.v1.tar", {"/c/layers/sha256_dd.erofs"},
                                    false, false});
    r.image_artifacts = {"/c/fsmeta/sha256_22.erofs", "/c/vmdk/sha256_22.vmdk"};
    return r;
}

} // namespace

TEST_CASE("cli output: a pull result as JSON names every digest and artifact path")
{
    auto r = sample(true);
    auto v = boost::json::parse(json_line(result_json(r, "oci:/l:v1")));
    auto const& o = v.as_object();
    CHECK(o.at("reference").as_string() == "oci:/l:v1"); // the recorded name, not the transport's reference
    CHECK(o.at("platform").as_string() == "linux/arm64/v8");
    CHECK(o.at("index_digest").as_string() == dg('1').str());
    CHECK(o.at("manifest_digest").as_string() == dg('2').str());
    CHECK(o.at("manifest_media_type").as_string() == "application/vnd.oci.image.manifest.v1+json");
    CHECK(o.at("config_digest").as_string() == dg('3').str());
    CHECK(o.at("artifact_kind").as_string() == "erofs");
    CHECK(o.at("cached").as_bool() == false);
    CHECK(o.at("downloaded_bytes").as_int64() == 1500);
    CHECK(o.at("size").as_int64() == 3048);
    auto const& layers = o.at("layers").as_array();
    REQUIRE(layers.size() == 2);
    CHECK(layers[0].at("blob").as_string() == dg('a').str());
    CHECK(layers[0].at("diff_id").as_string() == dg('b').str());
    CHECK(layers[0].at("size").as_int64() == 1000);
    CHECK(layers[0].at("media_type").as_string() == "application/vnd.oci.image.layer.v1.tar+gzip");
    CHECK(layers[0].at("downloaded").as_bool());
    CHECK(layers[0].at("built").as_bool());
    CHECK(layers[1].at("downloaded").as_bool() == false);
    CHECK(layers[1].at("artifacts").as_array().at(0).as_string() == "/c/layers/sha256_dd.erofs");
    auto const& ia = o.at("image_artifacts").as_array();
    REQUIRE(ia.size() == 2);
    CHECK(ia[0].as_string() == "/c/fsmeta/sha256_22.erofs");
    CHECK(ia[1].as_string() == "/c/vmdk/sha256_22.vmdk");

    auto plain = boost::json::parse(json_line(result_json(sample(false), ""))).as_object();
    CHECK(plain.at("index_digest").is_null());
    CHECK(plain.at("reference").as_string() == "example.com/app:v1"); // no name: the reference
    CHECK(json_line(result_json(r, "x")).ends_with("}\n"));
    CHECK(json_line(result_json(r, "x")).find('\n') == json_line(result_json(r, "x")).size() - 1); // one line
}

TEST_CASE("cli output: pull summary and inspect text")
{
    auto r = sample(true);
    auto s = pull_summary(r, "example.com/app:v1", std::chrono::milliseconds(1250));
    CHECK(s == "example.com/app:v1 (linux/arm64/v8): pulled, 2 layers, 2.98 KiB, 1.46 KiB downloaded, in 1.25 s\n"
               "  index     " + dg('1').str() + "\n"
               "  manifest  " + dg('2').str() + "\n"
               "  config    " + dg('3').str() + "\n"
               "  artifacts erofs\n"
               "            /c/fsmeta/sha256_22.erofs\n"
               "            /c/vmdk/sha256_22.vmdk\n");
    r.cached = true;
    r.downloaded_bytes = 0;
    r.index_digest.reset();
    auto c = pull_summary(r, "example.com/app:v1", std::nullopt);
    CHECK(c.starts_with("example.com/app:v1 (linux/arm64/v8): cached, 2 layers, 2.98 KiB\n  manifest  "));

    auto i = inspect_text(sample(false), "example.com/app:v1");
    CHECK(i.starts_with("reference       example.com/app:v1\nplatform        linux/arm64/v8\nmanifest        "));
    CHECK(i.find("index           ") == std::string::npos);
    CHECK(i.find("size            2.98 KiB in 2 layers\n") != std::string::npos);
    CHECK(i.find("  1  " + dg('c').str() + "  2.00 KiB  application/vnd.oci.image.layer.v1.tar\n     diff_id " + dg('d').str() +
                 "\n     /c/layers/sha256_dd.erofs\n") != std::string::npos);
    CHECK(i.find("artifacts       erofs\n                /c/fsmeta/sha256_22.erofs\n                /c/vmdk/sha256_22.vmdk\n") !=
          std::string::npos);
}

TEST_CASE("cli output: images table and JSON, prune reports")
{
    CHECK(images_table({}) == "no images in the cache\n");
    CHECK(images_json({}).empty());
    std::vector<image_row> rows(2);
    rows[0].entry.reference = "docker.io/library/alpine:3.20";
    rows[0].entry.platform = platform::parse("linux/amd64");
    rows[0].entry.manifest_digest = dg('e');
    rows[0].entry.index_digest = dg('f');
    rows[0].size = 3 * 1024 * 1024;
    rows[0].artifacts = {"erofs", "rootfs"};
    rows[1].entry.reference = "oci:/x:v1";
    rows[1].entry.platform = platform::parse("linux/arm/v7");
    rows[1].entry.manifest_digest = dg('9');
    auto sp = [](std::size_t n) { return std::string(n, ' '); };
    // Columns as wide as their widest cell, three spaces apart.
    CHECK(images_table(rows) ==
          "REFERENCE" + sp(23) + "PLATFORM" + sp(7) + "MANIFEST" + sp(7) + "SIZE" + sp(7) + "ARTIFACTS\n" +
              "docker.io/library/alpine:3.20" + sp(3) + "linux/amd64" + sp(4) + "eeeeeeeeeeee" + sp(3) + "3.00 MiB" + sp(3) +
              "erofs,rootfs\n" + "oci:/x:v1" + sp(23) + "linux/arm/v7" + sp(3) + "999999999999" + sp(3) + "-" + sp(10) +
              "-\n");
    auto a = images_json(rows);
    REQUIRE(a.size() == 2);
    CHECK(a[0].at("reference").as_string() == "docker.io/library/alpine:3.20");
    CHECK(a[0].at("platform").as_string() == "linux/amd64");
    CHECK(a[0].at("index_digest").as_string() == dg('f').str());
    CHECK(a[0].at("size").to_number<std::uint64_t>() == 3 * 1024 * 1024);
    CHECK(a[0].at("artifacts").as_array().size() == 2);
    CHECK(a[1].at("index_digest").is_null());
    CHECK(a[1].at("size").is_null());

    prune_report p;
    CHECK(prune_text(p, false) == "freed 0 B (0 bytes): 0 blobs, 0 temporaries\n");
    p.blobs = 1;
    p.temporaries = 1;
    p.bytes = 2048;
    CHECK(prune_text(p, true) == "would free 2.00 KiB (2048 bytes): 1 blob, 1 temporary\n");
    p.layer_artifacts = 2;
    p.image_artifacts = 1;
    CHECK(prune_text(p, false) == "freed 2.00 KiB (2048 bytes): 1 blob, 2 layer artifacts, 1 image artifact, 1 temporary\n");
}

TEST_CASE("cli output: verify lines, summary and JSON")
{
    verify_report r;
    r.images = 1;
    r.blobs = 5;
    r.layer_artifacts = 3;
    r.image_artifacts = 2;
    r.bytes = 3 * 1024 * 1024;
    CHECK(verify_text(r, false) ==
          "verified 1 image, 5 blobs, 3 layer artifacts, 2 image artifacts (3.00 MiB read): no damage found\n");
    r.findings.push_back(verify_finding{verify_kind::blob, "/c/blobs/sha256/aa", dg('a').str(),
                                        make_error_code(error::digest_mismatch), "layer blob content hashes to x, not to its name",
                                        "/c/tmp/evicted/blobs/sha256/aa", true});
    r.findings.push_back(verify_finding{verify_kind::config, "/c/blobs/sha256/bb", dg('b').str(), make_error_code(error::not_found),
                                        "config blob is missing", {}, false});
    r.skipped.push_back("blob sha256:cc: its lock stayed held longer than 30000 ms (a pull at work?)");
    CHECK(verify_text(r, false) ==
          "damaged blob /c/blobs/sha256/aa: layer blob content hashes to x, not to its name, moved to /c/tmp/evicted/blobs/sha256/aa\n"
          "missing config /c/blobs/sha256/bb: config blob is missing\n"
          "skipped: blob sha256:cc: its lock stayed held longer than 30000 ms (a pull at work?)\n"
          "verified 1 image, 5 blobs, 3 layer artifacts, 2 image artifacts (3.00 MiB read): 2 damaged or missing, 1 moved "
          "aside; pull again to repair; 1 skipped\n");
    r.findings[0].evicted_to.clear(); // deleted where it could not be moved
    CHECK(verify_finding_line(r.findings[0]) == "damaged blob /c/blobs/sha256/aa: layer blob content hashes to x, not to its name, deleted\n");
    r.findings[0].evicted = false;
    r.skipped.clear();
    CHECK(verify_text(r, true).ends_with("): 2 damaged or missing (--check-only: nothing moved)\n"));

    auto j = verify_json(r);
    CHECK(j.at("clean").as_bool() == false);
    CHECK(j.at("blobs").to_number<int>() == 5);
    CHECK(j.at("evicted").to_number<int>() == 0);
    auto const& f = j.at("findings").as_array();
    REQUIRE(f.size() == 2);
    CHECK(f[0].at("kind").as_string() == "blob");
    CHECK(f[0].at("key").as_string() == dg('a').str());
    CHECK(f[0].at("error").as_string() == make_error_code(error::digest_mismatch).message());
    CHECK(f[0].at("evicted").as_bool() == false);
    CHECK(f[0].at("evicted_to").is_null());
    CHECK(f[1].at("kind").as_string() == "config");
    CHECK(j.at("skipped").as_array().empty());
    CHECK(verify_json(verify_report{}).at("clean").as_bool());
}
