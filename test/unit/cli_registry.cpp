// The `ocistore` binary end to end: pulls from a real docker-registry on 127.0.0.1 behind a
// counting fault_proxy, cache commands, exit codes, OCI layout import, kill -9 resume with a
// Range request, and four processes pulling into one root at once.
#include <ocistore/cli_args.hpp>
#include <ocistore/progress_view.hpp>

#include <ocistore/digest.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>

#include <support/cli_process.hpp>
#include <support/fault_proxy.hpp>
#include <support/http_test.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/registry_fixture.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <boost/json.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace ocistore_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

/// A layer tar: a directory and `files` files of `size` pseudo-random bytes.
std::string layer_tar(int seed, int files, std::size_t size)
{
    tar_writer w;
    std::string const dir = "layer" + std::to_string(seed) + "/";
    w.dir(dir);
    for (int i = 0; i < files; ++i)
        w.file(dir + "f" + std::to_string(i), random_bytes(size, static_cast<std::uint64_t>(seed * 100 + i)));
    w.end();
    return w.str();
}

/// An image pushed to a registry: what the tests compare the CLI's output with.
struct pushed_image {
    ocistore::digest manifest_digest, config_digest;
    std::vector<ocistore::digest> blobs, diff_ids;
    std::uint64_t total = 0; ///< layer blob bytes
    std::string manifest;
};

/// Pushes an image of uncompressed tar layers (linux/amd64) as `repo:tag`.
pushed_image push_tar_image(registry_pusher& push, std::string const& repo, std::string const& tag,
                            std::vector<std::string> const& tars)
{
    pushed_image img;
    ocistore::image_manifest m;
    m.media_type = std::string(ocistore::media_types::oci_manifest);
    for (auto const& t : tars) {
        ocistore::descriptor d;
        d.media_type = std::string(ocistore::media_types::oci_layer_tar);
        d.digest = ocistore::digest::parse(push.push_blob(repo, t));
        d.size = static_cast<std::int64_t>(t.size());
        img.blobs.push_back(d.digest);
        img.diff_ids.push_back(d.digest); // uncompressed: blob == diff_id
        img.total += t.size();
        m.layers.push_back(std::move(d));
    }
    std::string const config = make_image_config(img.diff_ids);
    m.config.media_type = std::string(ocistore::media_types::oci_config);
    m.config.digest = ocistore::digest::parse(push.push_blob(repo, config));
    m.config.size = static_cast<std::int64_t>(config.size());
    img.config_digest = m.config.digest;
    img.manifest = json::serialize(json::value_from(m));
    img.manifest_digest =
        ocistore::digest::parse(push.push_manifest(repo, tag, img.manifest, std::string(ocistore::media_types::oci_manifest)));
    return img;
}

fs::path blob_file(fs::path const& root, ocistore::digest const& d)
{
    return root / "blobs" / std::string(d.algorithm()) / std::string(d.encoded());
}

fs::path part_file(fs::path const& root, ocistore::digest const& d) { return root / "tmp" / "blobs" / (d.path_safe() + ".part"); }

/// The index.json descriptors of a cache root.
json::array index_entries(fs::path const& root)
{
    auto v = json::parse(read_text_file(root / "index.json"));
    return v.as_object().at("manifests").as_array();
}

std::string blob_path_part(ocistore::digest const& d) { return "/blobs/" + d.str(); }

/// Requests the proxy saw for a blob, GETs only.
std::vector<logged_request> blob_gets(fault_proxy const& proxy, ocistore::digest const& d)
{
    std::vector<logged_request> out;
    for (auto const& r : proxy.requests())
        if (r.method == "GET" && r.target.find(blob_path_part(d)) != std::string::npos) out.push_back(r);
    return out;
}

/// Waits until `p` is a file of at least `bytes` bytes (or `timeout` passes); its size.
std::uint64_t wait_for_size(fs::path const& p, std::uint64_t bytes, std::chrono::milliseconds timeout)
{
    auto const until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::error_code ec;
        auto size = fs::file_size(p, ec);
        if (!ec && size >= bytes) return size;
        if (std::chrono::steady_clock::now() >= until) return ec ? 0 : size;
        std::this_thread::sleep_for(2ms);
    }
}

std::string ms(std::chrono::nanoseconds d)
{
    return std::to_string(std::chrono::duration<double, std::milli>(d).count()) + " ms";
}

} // namespace

TEST_CASE("cli: usage errors exit 2 with one line and a pointer to --help, --help and --version exit 0")
{
    temp_dir dir("ocistore-cli");
    auto r = run_cli({"pull"}, dir.path());
    CHECK(r.status == 2);
    CHECK(r.err == "ocistore: pull needs an image reference\nsee ocistore --help\n");
    CHECK(r.out.empty());
    r = run_cli({"--root", (dir.path() / "root").string(), "pull", "--jobs", "many", "alpine"}, dir.path());
    CHECK(r.status == 2);
    CHECK(r.err == "ocistore: --jobs must be a number from 1 to 16, not \"many\"\nsee ocistore --help\n");
    r = run_cli({"frobnicate"}, dir.path());
    CHECK(r.status == 2);
    CHECK(r.err == "ocistore: unknown command \"frobnicate\"\nsee ocistore --help\n");
    r = run_cli({"pull", "--platform", "linux", "alpine"}, dir.path());
    CHECK(r.status == 2);
    CHECK(r.err.starts_with("ocistore: invalid --platform \"linux\": "));
    CHECK(lines_of(r.err).size() == 2);
    CHECK_FALSE(fs::exists(dir.path() / "root")); // nothing touched

    r = run_cli({"--help"}, dir.path());
    CHECK(r.status == 0);
    CHECK(r.out == ocistore::cli::help_text());
    CHECK(r.err.empty());
    r = run_cli({"export-rootfs", "--help"}, dir.path());
    CHECK(r.status == 0);
    CHECK(r.out == ocistore::cli::help_text(ocistore::cli::command_kind::export_rootfs));
    r = run_cli({"--version"}, dir.path());
    CHECK(r.status == 0);
    CHECK(r.out == ocistore::cli::version_text());
}

TEST_CASE("cli: cold and cached pull, images, inspect, export-rootfs, erofs artifacts, rm and prune")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-cli");
    registry_fixture reg;
    fault_proxy proxy("127.0.0.1", reg.port());
    registry_pusher push("127.0.0.1", reg.port());
    auto const img = push_tar_image(push, "test/app", "v1",
                                    {layer_tar(1, 3, 10000), layer_tar(2, 4, 300000), layer_tar(3, 2, 5000)});
    std::string const ref = proxy.host() + "/test/app:v1";
    fs::path const root = dir.path() / "root";
    std::vector<std::string> const pull{"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1"};
    auto pull_with = [&](std::vector<std::string> extra) {
        auto args = pull;
        args.insert(args.end(), extra.begin(), extra.end());
        return run_cli(args, dir.path());
    };

    // Cold pull, blobs only.
    auto cold = pull_with({"--artifacts", "none", "--progress", "plain", "--json", ref});
    INFO("stderr: ", cold.err);
    REQUIRE(cold.status == 0);
    auto j = cold.json_out();
    CHECK(j.at("reference").as_string() == ref);
    CHECK(j.at("platform").as_string() == "linux/amd64");
    CHECK(j.at("index_digest").is_null());
    CHECK(j.at("manifest_digest").as_string() == img.manifest_digest.str());
    CHECK(j.at("config_digest").as_string() == img.config_digest.str());
    CHECK(j.at("artifact_kind").as_string() == "none");
    CHECK(j.at("cached").as_bool() == false);
    CHECK(j.at("downloaded_bytes").to_number<std::uint64_t>() == img.total);
    auto const& layers = j.at("layers").as_array();
    REQUIRE(layers.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        auto const& l = layers[i].as_object();
        CHECK(l.at("blob").as_string() == img.blobs[i].str());
        CHECK(l.at("diff_id").as_string() == img.diff_ids[i].str());
        CHECK(l.at("media_type").as_string() == ocistore::media_types::oci_layer_tar);
        CHECK(l.at("artifacts").as_array().empty());
        CHECK(fs::exists(blob_file(root, img.blobs[i])));
        CHECK(proxy.gets(blob_path_part(img.blobs[i])) == 1);
    }
    CHECK(j.at("image_artifacts").as_array().empty());
    CHECK(cold.err.starts_with("resolving " + ref + "\n"));
    CHECK(cold.err.find("complete: " + ref + ", ") != std::string::npos);
    CHECK(index_entries(root).size() == 1);

    // Cached: no request at all, "cached": true.
    proxy.clear_log();
    auto warm = pull_with({"--artifacts", "none", "--progress", "plain", "--json", ref});
    REQUIRE(warm.status == 0);
    auto w = warm.json_out();
    CHECK(w.at("cached").as_bool() == true);
    CHECK(w.at("downloaded_bytes").to_number<std::uint64_t>() == 0);
    CHECK(w.at("manifest_digest").as_string() == img.manifest_digest.str());
    CHECK(w.at("layers").as_array().size() == 3);
    CHECK(proxy.requests().empty());
    CHECK(warm.err == "resolving " + ref + "\nresolved " + ref + ": 3 layers, " +
                          ocistore::cli::format_bytes(img.total) + ", manifest " + img.manifest_digest.str() +
                          "\ncomplete: " + ref + " (cached)\n");
    auto human = pull_with({"--artifacts", "none", "--progress", "none", ref});
    REQUIRE(human.status == 0);
    CHECK(human.out.starts_with(ref + " (linux/amd64): cached, 3 layers, " + ocistore::cli::format_bytes(img.total) + ", in "));
    CHECK(human.out.find("  manifest  " + img.manifest_digest.str() + "\n") != std::string::npos);
    CHECK(human.err.empty());
    MESSAGE("cold pull (--artifacts none, " << img.total << " bytes): " << ms(cold.elapsed) << "; cached pull process: "
                                            << ms(warm.elapsed) << " (json), " << ms(human.elapsed) << " (human)");

    // images.
    auto images = run_cli({"--root", root.string(), "images"}, dir.path());
    REQUIRE(images.status == 0);
    auto rows = lines_of(images.out);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].starts_with("REFERENCE"));
    CHECK(rows[1].starts_with(ref + "   linux/amd64   " + std::string(img.manifest_digest.encoded().substr(0, 12))));
    CHECK(rows[1].ends_with(ocistore::cli::format_bytes(img.total) + "   -"));
    auto images_json = run_cli({"--root", root.string(), "images", "--json"}, dir.path());
    REQUIRE(images_json.status == 0);
    auto arr = json::parse(images_json.out).as_array();
    REQUIRE(arr.size() == 1);
    CHECK(arr[0].at("reference").as_string() == ref);
    CHECK(arr[0].at("manifest_digest").as_string() == img.manifest_digest.str());
    CHECK(arr[0].at("size").to_number<std::uint64_t>() == img.total);
    CHECK(arr[0].at("artifacts").as_array().empty());

    // export-rootfs builds from the kept blobs: no network.
    proxy.clear_log();
    fs::path const out_dir = dir.path() / "exported";
    auto ex = run_cli({"--root", root.string(), "export-rootfs", "--progress", "none", ref, out_dir.string()}, dir.path());
    INFO("export stderr: ", ex.err);
    REQUIRE(ex.status == 0);
    CHECK(ex.out == "exported " + ref + " (linux/amd64) to " + out_dir.string() + "\n");
    CHECK(proxy.requests().empty());
    CHECK(fs::file_size(out_dir / "layer2" / "f3") == 300000);
    CHECK(fs::file_size(out_dir / "layer3" / "f1") == 5000);
    CHECK(index_entries(root).size() == 1); // the record is as it was

    // EROFS artifacts, built from the kept blobs.
    auto erofs = pull_with({"--artifacts", "erofs", "--progress", "none", "--json", ref});
    INFO("erofs stderr: ", erofs.err);
    REQUIRE(erofs.status == 0);
    for (auto const& d : img.blobs) CHECK(proxy.gets(blob_path_part(d)) == 0);
    auto insp = run_cli({"--root", root.string(), "inspect", "--json", ref}, dir.path());
    REQUIRE(insp.status == 0);
    auto i = insp.json_out();
    CHECK(i.at("artifact_kind").as_string() == "erofs");
    CHECK(i.at("cached").as_bool() == true);
    CHECK(i.at("manifest_digest").as_string() == img.manifest_digest.str());
    std::vector<std::string> every_path;
    for (auto const& l : i.at("layers").as_array()) {
        auto const& a = l.at("artifacts").as_array();
        REQUIRE(a.size() == 1);
        std::string const p(a[0].as_string());
        CHECK(p.ends_with(".erofs"));
        CHECK(p.find(root.string() + "/layers/") == 0);
        CHECK(fs::is_regular_file(p));
        CHECK(fs::file_size(p) % 4096 == 0);
        every_path.push_back(p);
    }
    auto const& image_artifacts = i.at("image_artifacts").as_array();
    REQUIRE(image_artifacts.size() == 2);
    std::string const fsmeta(image_artifacts[0].as_string()), vmdk(image_artifacts[1].as_string());
    CHECK(fsmeta == (root / "fsmeta" / (img.manifest_digest.path_safe() + ".erofs")).string());
    CHECK(vmdk == (root / "vmdk" / (img.manifest_digest.path_safe() + ".vmdk")).string());
    CHECK(fs::is_regular_file(fsmeta));
    CHECK(read_text_file(vmdk).find("twoGbMaxExtentFlat") != std::string::npos);
    every_path.push_back(fsmeta);
    every_path.push_back(vmdk);
    auto insp_text = run_cli({"--root", root.string(), "inspect", ref}, dir.path());
    REQUIRE(insp_text.status == 0);
    CHECK(insp_text.out.starts_with("reference       " + ref + "\n"));
    CHECK(insp_text.out.find("artifacts       erofs\n") != std::string::npos);
    for (auto const& p : every_path) CHECK_MESSAGE(insp_text.out.find(p) != std::string::npos, p);
    images = run_cli({"--root", root.string(), "images"}, dir.path());
    CHECK(lines_of(images.out).at(1).ends_with("   erofs,rootfs")); // export-rootfs composed a rootfs too

    // prune: a stray blob is reclaimable, reported by a dry run and then deleted.
    auto stray = ocistore::digest::parse(sha256_digest("stray"));
    write_text_file(blob_file(root, stray), "stray");
    auto dry = run_cli({"--root", root.string(), "prune", "--dry-run"}, dir.path());
    REQUIRE(dry.status == 0);
    CHECK(dry.out == "would free 5 B (5 bytes): 1 blob, 0 temporaries\n");
    CHECK(fs::exists(blob_file(root, stray)));
    auto pr = run_cli({"--root", root.string(), "prune"}, dir.path());
    REQUIRE(pr.status == 0);
    CHECK(pr.out == "freed 5 B (5 bytes): 1 blob, 0 temporaries\n");
    CHECK_FALSE(fs::exists(blob_file(root, stray)));
    CHECK(fs::exists(blob_file(root, img.blobs[0])));

    // rm: the record goes, then every blob of the image (3 layers, config, manifest) and the
    // artifacts of both kinds it was built as (3 layers + 1 image each, erofs and rootfs).
    std::uint64_t artifact_bytes = 0;
    for (auto const& p : every_path) artifact_bytes += fs::file_size(p);
    auto rm = run_cli({"--root", root.string(), "rm", ref}, dir.path());
    INFO("rm stderr: ", rm.err);
    REQUIRE(rm.status == 0);
    std::uint64_t const blob_bytes = img.total + img.manifest.size() + make_image_config(img.diff_ids).size();
    auto const rm_lines = lines_of(rm.out);
    REQUIRE(rm_lines.size() == 2);
    CHECK(rm_lines[0] == "removed " + ref);
    CHECK(rm_lines[1].ends_with(" bytes): 5 blobs, 6 layer artifacts, 2 image artifacts, 0 temporaries"));
    // Bytes freed: the blobs, the EROFS files, and the rootfs trees (whose size is not known here).
    auto const open_paren = rm_lines[1].find(" (");
    REQUIRE(open_paren != std::string::npos);
    std::uint64_t const freed = std::stoull(rm_lines[1].substr(open_paren + 2));
    CHECK(freed > blob_bytes + artifact_bytes);
    for (auto const& p : every_path) CHECK_FALSE(fs::exists(p));
    CHECK(index_entries(root).empty());
    for (auto const& d : img.blobs) CHECK_FALSE(fs::exists(blob_file(root, d)));
    CHECK_FALSE(fs::exists(blob_file(root, img.manifest_digest)));
    pr = run_cli({"--root", root.string(), "prune"}, dir.path());
    CHECK(pr.status == 0);
    CHECK(pr.out == "freed 0 B (0 bytes): 0 blobs, 0 temporaries\n");

    // Gone: rm and inspect fail with one line.
    rm = run_cli({"--root", root.string(), "rm", ref}, dir.path());
    CHECK(rm.status == 1);
    CHECK(rm.err == "ocistore: no image named " + ref + " in the cache\n");
    insp = run_cli({"--root", root.string(), "inspect", ref}, dir.path());
    CHECK(insp.status == 1);
    CHECK(insp.err == "ocistore: " + ref + " is not in the cache " + root.string() + "\n");
    CHECK(insp.out.empty());
}

TEST_CASE("cli: runtime failures exit 1 with one line on stderr")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-cli");
    registry_fixture reg;
    registry_pusher push("127.0.0.1", reg.port());
    push_tar_image(push, "test/app", "v1", {layer_tar(1, 1, 1000)});
    fs::path const root = dir.path() / "root";

    auto missing = run_cli({"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1", "--progress", "none",
                            reg.host() + "/test/app:nope"},
                           dir.path());
    CHECK(missing.status == 1);
    CHECK(missing.out.empty());
    REQUIRE(lines_of(missing.err).size() == 1);
    CHECK(missing.err.starts_with("ocistore: cannot fetch the manifest of " + reg.host() + "/test/app:nope: "));
    CHECK(missing.err.find(ocistore::make_error_code(ocistore::error::not_found).message()) != std::string::npos);

    // With plain progress the failure is still one line, the last.
    auto plain = run_cli({"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1", reg.host() + "/test/nothing:v1"},
                         dir.path());
    CHECK(plain.status == 1);
    auto l = lines_of(plain.err);
    REQUIRE_FALSE(l.empty());
    CHECK(l.front() == "resolving " + reg.host() + "/test/nothing:v1");
    CHECK(l.back().starts_with("ocistore: cannot fetch the manifest of "));
    std::size_t reasons = 0;
    for (auto const& s : l) reasons += s.starts_with("ocistore: ");
    CHECK(reasons == 1);

    auto never = run_cli({"--root", root.string(), "pull", "--policy", "never", "--progress", "none", reg.host() + "/test/app:v1"},
                         dir.path());
    CHECK(never.status == 1);
    CHECK(never.err == "ocistore: " + reg.host() + "/test/app:v1 (" + ocistore::host_platform().to_string() +
                           ") is not in the cache and the policy is never\n");

    auto ca = run_cli({"--root", root.string(), "pull", "--ca-file", (dir.path() / "no-such.pem").string(), "--progress",
                       "none", reg.host() + "/test/app:v1"},
                      dir.path());
    CHECK(ca.status == 1);
    REQUIRE(lines_of(ca.err).size() == 1);
    CHECK(ca.err.find("no-such.pem") != std::string::npos);

    // Plain HTTP without --insecure-registry: HTTPS to a plain-HTTP registry fails, no fallback.
    auto tls = run_cli({"--root", root.string(), "pull", "--progress", "none", reg.host() + "/test/app:v1"}, dir.path());
    CHECK(tls.status == 1);
    CHECK(lines_of(tls.err).size() == 1);
}

TEST_CASE("cli: oci:PATH:NAME imports a local OCI layout")
{
    temp_dir dir("ocistore-cli");
    oci_layout_writer w(dir.path() / "layout");
    auto const t1 = layer_tar(1, 2, 4000), t2 = layer_tar(2, 1, 70000);
    auto l1 = w.add_blob(t1, std::string(ocistore::media_types::oci_layer_tar));
    auto l2 = w.add_blob(t2, std::string(ocistore::media_types::oci_layer_tar));
    auto cfg = w.add_config({l1.digest, l2.digest});
    auto man = w.add_manifest(cfg, {l1, l2});
    w.tag(man, "v1");
    w.tag(man, "example.com/app:v2");
    fs::path const root = dir.path() / "root";
    std::string const name = "oci:" + w.path().string() + ":v1";

    auto r = run_cli({"--root", root.string(), "pull", "--artifacts", "rootfs", "--progress", "none", "--json", name}, dir.path());
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    auto j = r.json_out();
    CHECK(j.at("reference").as_string() == name);
    CHECK(j.at("manifest_digest").as_string() == man.digest.str());
    CHECK(j.at("artifact_kind").as_string() == "rootfs");
    CHECK(j.at("cached").as_bool() == false);
    CHECK(j.at("downloaded_bytes").to_number<std::uint64_t>() == t1.size() + t2.size());
    auto const& ia = j.at("image_artifacts").as_array();
    REQUIRE_FALSE(ia.empty());
    CHECK(fs::is_directory(std::string(ia[0].as_string())));
    auto entries = index_entries(root);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].at("annotations").at("org.opencontainers.image.ref.name").as_string() == name);

    // A full-reference NAME, a relative path and a trailing '/' name the same layout.
    auto rel = fs::relative(w.path(), fs::current_path()).string() + "/";
    auto r2 = run_cli({"--root", root.string(), "pull", "--artifacts", "none", "--progress", "none", "--json",
                       "oci:" + rel + ":example.com/app:v2"},
                      dir.path());
    REQUIRE(r2.status == 0);
    CHECK(r2.json_out().at("reference").as_string() == "oci:" + w.path().string() + ":example.com/app:v2");
    CHECK(r2.json_out().at("manifest_digest").as_string() == man.digest.str());

    auto images = run_cli({"--root", root.string(), "images", "--json"}, dir.path());
    auto arr = json::parse(images.out).as_array();
    REQUIRE(arr.size() == 2);
    CHECK(arr[0].at("reference").as_string() == name);
    CHECK(arr[0].at("artifacts").as_array().size() == 1);
    CHECK(arr[0].at("artifacts").as_array()[0].as_string() == "rootfs");

    auto insp = run_cli({"--root", root.string(), "inspect", "--json", name}, dir.path());
    REQUIRE(insp.status == 0);
    CHECK(insp.json_out().at("artifact_kind").as_string() == "rootfs");
    CHECK(insp.json_out().at("layers").as_array().size() == 2);

    fs::path const out = dir.path() / "rootfs-out";
    auto ex = run_cli({"--root", root.string(), "export-rootfs", name, out.string()}, dir.path());
    REQUIRE(ex.status == 0);
    CHECK(read_text_file(out / "layer2" / "f0") == random_bytes(70000, 200));

    auto unknown = run_cli({"--root", root.string(), "pull", "--progress", "none", "oci:" + w.path().string() + ":v9"}, dir.path());
    CHECK(unknown.status == 1);
    CHECK(lines_of(unknown.err).size() == 1);
}

TEST_CASE("cli: kill -9 mid-blob leaves a .part, the next pull resumes it with a Range request, SIGINT exits 130")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-cli");
    registry_fixture reg;
    fault_proxy proxy("127.0.0.1", reg.port());
    registry_pusher push("127.0.0.1", reg.port());
    tar_writer tw;
    tw.file("big.bin", random_bytes(64u << 20, 7)); // incompressible
    tw.end();
    auto const img = push_tar_image(push, "test/big", "v1", {tw.str()});
    std::uint64_t const total = img.total;
    auto const blob = img.blobs[0];
    std::string const ref = proxy.host() + "/test/big:v1";
    fs::path const root = dir.path() / "root";
    std::vector<std::string> const args{"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1",
                                        "--artifacts", "none", "--progress", "plain", "--json", ref};
    fs::path const part = part_file(root, blob);

    // About 25 MB/s: slow enough to catch it mid-blob.
    proxy.throttle_blobs(256 * 1024, 10ms);
    std::uint64_t n = 0;
    {
        cli_process first(args, dir.path());
        auto const seen = wait_for_size(part, 8u << 20, 60s);
        REQUIRE_MESSAGE(seen >= (8u << 20), "the .part did not grow past 8 MiB: " << first.err());
        first.signal(SIGKILL);
        CHECK(first.wait() == 128 + SIGKILL);
    }
    REQUIRE(fs::exists(part));
    n = fs::file_size(part);
    CHECK(n > 0);
    CHECK(n < total);
    CHECK_FALSE(fs::exists(blob_file(root, blob)));
    CHECK_FALSE(fs::exists(root / "index.json"));

    proxy.throttle_blobs(0, 0ms);
    proxy.clear_log();
    auto second = run_cli(args, dir.path());
    INFO("second stderr: ", second.err);
    REQUIRE(second.status == 0);
    auto gets = blob_gets(proxy, blob);
    REQUIRE(gets.size() == 1);
    CHECK(gets[0].range == "bytes=" + std::to_string(n) + "-");
    CHECK(proxy.served_bytes(blob_path_part(blob)) == total - n);
    auto j = second.json_out();
    CHECK(j.at("downloaded_bytes").to_number<std::uint64_t>() == total - n);
    CHECK(j.at("cached").as_bool() == false);
    CHECK(second.err.find("retrying at " + ocistore::cli::format_bytes(n) + ": resuming from a partial download of " +
                          std::to_string(n) + " bytes") != std::string::npos);
    CHECK_FALSE(fs::exists(part));
    REQUIRE(fs::file_size(blob_file(root, blob)) == total);
    CHECK(sha256_digest(read_text_file(blob_file(root, blob))) == blob.str());
    MESSAGE("killed at " << n << " of " << total << " bytes; the resumed pull fetched " << total - n << " bytes in "
                         << ms(second.elapsed));

    // SIGINT: the pull stops, the .part stays, exit 130 with one reason line.
    fs::path const root2 = dir.path() / "root2";
    auto args2 = args;
    args2[1] = root2.string();
    proxy.throttle_blobs(256 * 1024, 10ms);
    cli_process third(args2, dir.path());
    REQUIRE(wait_for_size(part_file(root2, blob), 4u << 20, 60s) >= (4u << 20));
    third.signal(SIGINT);
    CHECK(third.wait() == 130);
    CHECK(third.out().empty());
    auto l = lines_of(third.err());
    REQUIRE_FALSE(l.empty());
    CHECK(l.back() == "ocistore: interrupted by SIGINT; a partial download is kept and resumes on the next pull");
    CHECK(fs::exists(part_file(root2, blob)));
    CHECK(fs::file_size(part_file(root2, blob)) >= (4u << 20));
    CHECK_FALSE(fs::exists(blob_file(root2, blob)));
}

TEST_CASE("cli: four processes pulling into one root at once download each blob once")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-cli");
    registry_fixture reg;
    fault_proxy proxy("127.0.0.1", reg.port());
    registry_pusher push("127.0.0.1", reg.port());
    auto const img = push_tar_image(push, "test/four", "v1",
                                    {layer_tar(11, 2, 600000), layer_tar(12, 3, 400000), layer_tar(13, 1, 900000),
                                     layer_tar(14, 4, 100000)});
    push.push_manifest("test/four", "v2", img.manifest, std::string(ocistore::media_types::oci_manifest));
    proxy.throttle_blobs(32 * 1024, 5ms); // about 6 MB/s: long enough for the four to overlap

    auto run_four = [&](fs::path const& root, std::vector<std::string> const& refs) {
        std::vector<std::unique_ptr<cli_process>> ps;
        for (auto const& ref : refs)
            ps.push_back(std::make_unique<cli_process>(
                std::vector<std::string>{"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1", "--artifacts",
                                         "erofs", "--progress", "none", "--json", ref},
                dir.path()));
        std::uint64_t downloaded = 0;
        int fresh = 0;
        for (auto& p : ps) {
            int const status = p->wait();
            INFO("stderr: ", p->err());
            REQUIRE(status == 0);
            auto j = json::parse(p->out()).as_object();
            CHECK(j.at("manifest_digest").as_string() == img.manifest_digest.str());
            CHECK(j.at("artifact_kind").as_string() == "erofs");
            downloaded += j.at("downloaded_bytes").to_number<std::uint64_t>();
            fresh += j.at("cached").as_bool() ? 0 : 1;
        }
        CHECK(downloaded == img.total); // every byte once, over all four
        for (auto const& d : img.blobs) CHECK_MESSAGE(proxy.gets(blob_path_part(d)) == 1, d.str());
        return fresh;
    };

    SUBCASE("one reference: one pull does the work, the others find it cached")
    {
        fs::path const root = dir.path() / "root";
        std::string const ref = proxy.host() + "/test/four:v1";
        CHECK(run_four(root, {ref, ref, ref, ref}) == 1);
        CHECK(proxy.gets(blob_path_part(img.config_digest)) == 1);
        CHECK(index_entries(root).size() == 1);
        auto insp = run_cli({"--root", root.string(), "inspect", "--json", ref}, dir.path());
        REQUIRE(insp.status == 0);
        auto j = insp.json_out();
        CHECK(j.at("artifact_kind").as_string() == "erofs");
        for (auto const& l : j.at("layers").as_array())
            CHECK(fs::is_regular_file(std::string(l.at("artifacts").as_array().at(0).as_string())));
        for (auto const& p : j.at("image_artifacts").as_array()) CHECK(fs::is_regular_file(std::string(p.as_string())));
        bool const parts_left = fs::exists(root / "tmp" / "blobs") && !fs::is_empty(root / "tmp" / "blobs");
        CHECK_FALSE(parts_left);
    }
    SUBCASE("two tags of one image, two processes each: the blob locks share the downloads")
    {
        fs::path const root = dir.path() / "root-tags";
        std::string const v1 = proxy.host() + "/test/four:v1", v2 = proxy.host() + "/test/four:v2";
        // One pull per name does the work (the config may be fetched by both: it has no lock).
        CHECK(run_four(root, {v1, v2, v1, v2}) == 2);
        CHECK(index_entries(root).size() == 2);
        for (auto const& ref : {v1, v2}) {
            auto insp = run_cli({"--root", root.string(), "inspect", "--json", ref}, dir.path());
            CHECK(insp.status == 0);
        }
    }
}
