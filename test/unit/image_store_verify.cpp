#include <ocistore/basic_image_store.hpp>

#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/test/memory_transport.hpp>

#include <support/temp_dir.hpp>
#include <support/test_image.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace ocistore;
using namespace ocistore_test;
using ocistore::test::memory_transport;
using ocistore::test::request_kind;
namespace fs = std::filesystem;

namespace {

using erofs_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, erofs_builder>;
using rootfs_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, rootfs_builder>;
using blob_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, null_builder>;

static_assert(verifiable_artifact_builder<erofs_builder>);
static_assert(verifiable_artifact_builder<rootfs_builder>);
static_assert(verifiable_artifact_builder<null_builder>);

platform const amd64{"linux", "amd64", "", "", {}};

pull_options opts()
{
    pull_options o;
    o.platform = amd64;
    o.retry_backoff = std::chrono::milliseconds(1);
    return o;
}

std::string read_file(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// XORs byte `at` of `p` with `mask`, in place (same size, same inode).
void flip(fs::path const& p, std::uint64_t at, unsigned char mask = 0x01)
{
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.get(c);
    REQUIRE(f);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(static_cast<unsigned char>(c) ^ mask));
    f.close();
    REQUIRE(f);
}

fs::path blob_path(fs::path const& root, digest const& d) { return root / "blobs" / "sha256" / std::string(d.encoded()); }

/// Where the inode of `path` lies in the EROFS image `image`.
std::uint64_t inode_offset(fs::path const& image, std::string_view path)
{
    auto const reader = erofs_image_reader::open(image);
    std::uint64_t nid = 0;
    reader.walk([&](std::string_view p, erofs_inode_info const& n, error_code&) {
        if (p == path) nid = n.nid;
    });
    REQUIRE(nid != 0);
    return std::uint64_t(reader.info().meta_blkaddr) * 4096 + nid * 32;
}

/// Three layers of several files: gzip, zstd and uncompressed.
std::vector<test_layer> layers()
{
    return {{make_layer_tar(1, 3, 9000), layer_compression::gzip},
            {make_layer_tar(2, 4, 70000), layer_compression::zstd},
            {make_layer_tar(3, 2, 5000), layer_compression::none}};
}

/// A cache holding lib/app:v1 built by `Store`'s builder.
template <class Store> struct cache {
    temp_dir root{"ocistore-verify"};
    memory_transport t;
    test_image img = publish_image(t, "lib/app", "v1", layers());
    image_reference ref = image_reference::parse("lib/app:v1");
    Store store = make();

    Store make()
    {
        using builder = typename Store::builder_type;
        if constexpr (std::is_same_v<builder, null_builder>)
            return Store(root.path(), t, flock_lock(root / "locks"), null_builder{});
        else
            return Store(root.path(), t, flock_lock(root / "locks"), builder(root.path()));
    }

    pull_result pull() { return store.pull(ref, opts()); }
};

/// The report of a whole-cache verify() that must succeed.
template <class Store> verify_report verify_all(Store& store, verify_options const& o = {})
{
    error_code ec;
    std::string why;
    auto r = store.verify(o, ec, &why);
    INFO("why: ", why);
    REQUIRE_FALSE(ec);
    return r;
}

std::string describe(verify_report const& r)
{
    std::string s;
    for (auto const& f : r.findings)
        s += std::string(to_string(f.kind)) + " " + f.path.string() + ": " + f.reason + " [" + f.error.message() + "]\n";
    for (auto const& k : r.skipped) s += "skipped: " + k + "\n";
    return s;
}

/** The one finding of `r`: of `kind`, at `path`, with `error`, evicted to tmp/evicted/<same
    relative path> (gone from its final name), or with `evicted` false, left alone. */
verify_finding only_finding(verify_report const& r, fs::path const& root, verify_kind kind, fs::path const& path,
                                   error_code const& error, bool evicted = true)
{
    INFO(describe(r));
    REQUIRE(r.findings.size() == 1);
    auto const& f = r.findings[0];
    CHECK(f.kind == kind);
    CHECK(f.path == path);
    CHECK(f.error == error);
    CHECK_FALSE(f.reason.empty());
    CHECK(f.evicted == evicted);
    if (evicted) {
        CHECK(f.evicted_to == root / "tmp" / "evicted" / path.lexically_relative(root));
        CHECK(fs::exists(f.evicted_to));
        CHECK_FALSE(fs::exists(path));
        CHECK(r.evicted() == 1);
    } else {
        CHECK(f.evicted_to.empty());
    }
    return f;
}

} // namespace

TEST_CASE("a clean cache verifies clean, as a whole and by name, and a name not recorded is not_found")
{
    cache<erofs_store> c;
    auto const pulled = c.pull();
    auto r = verify_all(c.store);
    INFO(describe(r));
    CHECK(r.clean());
    CHECK(r.images == 1);
    CHECK(r.blobs == 5); // manifest, config, three layer blobs
    CHECK(r.layer_artifacts == 3);
    CHECK(r.image_artifacts == 2); // fsmeta and VMDK
    CHECK(r.bytes >= c.img.total_blob_bytes);
    CHECK(r.skipped.empty());
    CHECK(r.evicted() == 0);

    auto named = c.store.verify(c.ref);
    CHECK(named.clean());
    CHECK(named.images == 1);
    verify_options o;
    o.platform = platform{"linux", "arm64", "", "", {}};
    error_code ec;
    std::string why;
    c.store.verify(c.ref, o, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("no image named " + c.ref.str() + " for linux/arm64") != std::string::npos);
    c.store.verify("lib/other:v1", {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("lib/other:v1") != std::string::npos);
    CHECK_THROWS_WITH_AS(c.store.verify(std::string_view("lib/other:v1")), doctest::Contains("no image named lib/other:v1"),
                         system_error);

    // An empty root: nothing to check, nothing found.
    temp_dir empty;
    erofs_store fresh(empty.path(), c.t, flock_lock(empty / "locks"), erofs_builder(empty.path()));
    CHECK(verify_all(fresh).clean());
    CHECK(c.pull().cached);
    static_cast<void>(pulled);
}

TEST_CASE("a flipped byte in any item is reported as exactly that item, evicted, and repaired by the next pull")
{
    cache<erofs_store> c;
    auto const first = c.pull();
    fs::path const root = c.root.path();
    auto const& img = c.img;
    fs::path const fsmeta = first.image_artifacts.at(0), vmdk = first.image_artifacts.at(1);
    fs::path const layer1 = first.layers.at(1).artifacts.at(0);
    auto const layer1_bytes = read_file(layer1);
    std::uint64_t expect_download = 0;

    SUBCASE("a layer blob")
    {
        fs::path const p = blob_path(root, img.blobs[1]);
        flip(p, img.blob_bytes[1].size() / 2);
        auto const f = only_finding(verify_all(c.store), root, verify_kind::blob, p, make_error_code(error::digest_mismatch));
        CHECK(f.key == img.blobs[1].str());
        CHECK(f.reason.find("content hashes to sha256:") != std::string::npos);
        expect_download = img.blob_bytes[1].size();
        error_code ec;
        c.store.inspect(c.ref, amd64, ec);
        CHECK(ec == error::not_cached); // the fast path does not answer while the blob is away
    }
    SUBCASE("an uncompressed layer blob whose tar still parses")
    {
        fs::path const p = blob_path(root, img.blobs[2]);
        flip(p, 1024 + 100); // inside the first file's data (after the directory's and the file's headers)
        only_finding(verify_all(c.store), root, verify_kind::blob, p, make_error_code(error::digest_mismatch));
        expect_download = img.blob_bytes[2].size();
    }
    SUBCASE("the manifest blob")
    {
        fs::path const p = blob_path(root, img.manifest_digest);
        flip(p, 10, 0x20);
        auto const f = only_finding(verify_all(c.store), root, verify_kind::manifest, p, make_error_code(error::digest_mismatch));
        CHECK(f.key == img.manifest_digest.str());
    }
    SUBCASE("the config blob")
    {
        fs::path const p = blob_path(root, img.config_digest);
        flip(p, 5, 0x20);
        only_finding(verify_all(c.store), root, verify_kind::config, p, make_error_code(error::digest_mismatch));
    }
    SUBCASE("a layer image, in file data")
    {
        flip(layer1, 4096 + 10);
        auto const f = only_finding(verify_all(c.store), root, verify_kind::layer_artifact, layer1,
                                     make_error_code(error::digest_mismatch));
        CHECK(f.key == img.diff_ids[1].str());
        CHECK(f.reason.find("at byte 4106 (block 1, data of \"layer2/f") != std::string::npos);
    }
    SUBCASE("a layer image, in its metadata")
    {
        flip(layer1, inode_offset(layer1, "layer2/f1") + 20); // the inode's i_ino: structurally harmless
        auto const f = only_finding(verify_all(c.store), root, verify_kind::layer_artifact, layer1,
                                     make_error_code(error::digest_mismatch));
        CHECK(f.reason.find("metadata: inodes, directories, xattrs") != std::string::npos);
    }
    SUBCASE("the fsmeta")
    {
        flip(fsmeta, inode_offset(fsmeta, "layer3/f1") + 20);
        auto const f = only_finding(verify_all(c.store), root, verify_kind::image_artifact, fsmeta,
                                     make_error_code(error::digest_mismatch));
        CHECK(f.key == first.manifest_digest.str());
        CHECK(f.reason.find("fsmeta differs from the one re-derived from its 3 layer images at byte") != std::string::npos);
    }
    SUBCASE("the VMDK")
    {
        auto const text = read_file(vmdk);
        auto const at = text.find("RW ");
        REQUIRE(at != std::string::npos);
        flip(vmdk, at + 4, 0x01); // a digit of the first extent's sector count
        auto const f = only_finding(verify_all(c.store), root, verify_kind::image_artifact, vmdk,
                                     make_error_code(error::digest_mismatch));
        CHECK(f.reason.find("VMDK differs from the descriptor re-derived from its fsmeta and layers at line ") !=
              std::string::npos);
    }
    SUBCASE("index.json")
    {
        flip(root / "index.json", 0, 0x20); // '{' becomes '['
        auto const f =
            only_finding(verify_all(c.store), root, verify_kind::index, root / "index.json", make_error_code(error::metadata_corrupt));
        CHECK(f.key.empty());
    }

    // The fast path misses, the next pull repairs, and verify is clean again.
    c.t.reset_counters();
    auto const repaired = c.pull();
    CHECK_FALSE(repaired.cached);
    CHECK(repaired.downloaded_bytes == expect_download);
    CHECK(repaired.manifest_digest == img.manifest_digest);
    CHECK(repaired.image_artifacts == first.image_artifacts);
    CHECK(read_file(layer1) == layer1_bytes); // re-derived: the same bytes
    for (std::size_t i = 0; i < img.blobs.size(); ++i) CHECK(read_file(blob_path(root, img.blobs[i])) == img.blob_bytes[i]);
    auto const after = verify_all(c.store);
    INFO(describe(after));
    CHECK(after.clean());
    CHECK(after.layer_artifacts == 3);
    CHECK(after.image_artifacts == 2);
    c.t.reset_counters();
    CHECK(c.pull().cached);
    CHECK(c.t.requests() == 0);
}

TEST_CASE("check_only reports and leaves every file as it was")
{
    cache<erofs_store> c;
    auto const first = c.pull();
    fs::path const root = c.root.path();
    fs::path const blob = blob_path(root, c.img.blobs[0]);
    fs::path const fsmeta = first.image_artifacts.at(0);
    flip(blob, 100);
    flip(fsmeta, fs::file_size(fsmeta) - 10);
    auto const blob_bytes = read_file(blob), fsmeta_bytes = read_file(fsmeta);
    verify_options o;
    o.evict = false;
    for (int round = 0; round < 2; ++round) {
        auto const r = verify_all(c.store, o);
        INFO(describe(r));
        REQUIRE(r.findings.size() == 2);
        CHECK(r.findings[0].kind == verify_kind::blob);
        CHECK(r.findings[0].path == blob);
        CHECK(r.findings[1].kind == verify_kind::image_artifact);
        CHECK(r.findings[1].path == fsmeta);
        CHECK(r.evicted() == 0);
        for (auto const& f : r.findings) CHECK(f.evicted_to.empty());
        CHECK(read_file(blob) == blob_bytes);
        CHECK(read_file(fsmeta) == fsmeta_bytes);
        CHECK_FALSE(fs::exists(root / "tmp" / "evicted"));
    }
    // Evicting now and pulling repairs both.
    auto const r = verify_all(c.store);
    CHECK(r.evicted() == 2);
    CHECK_FALSE(c.pull().cached);
    CHECK(verify_all(c.store).clean());
}

TEST_CASE("a missing manifest or config is reported and not evicted, and an unreferenced damaged blob is found when verifying everything")
{
    cache<erofs_store> c;
    c.pull();
    fs::path const root = c.root.path();
    fs::path const config = blob_path(root, c.img.config_digest);
    fs::remove(config);
    auto r = verify_all(c.store);
    only_finding(r, root, verify_kind::config, config, make_error_code(error::not_found), false);
    CHECK(r.findings[0].reason.find("is missing") != std::string::npos);
    c.pull();
    CHECK(verify_all(c.store).clean());

    // A stray blob that does not hash to its name.
    auto const stray = digest_of<sha256_hasher>(std::string("stray"));
    fs::path const stray_path = blob_path(root, stray);
    write_test_file(stray_path, "strax");
    only_finding(verify_all(c.store), root, verify_kind::blob, stray_path, make_error_code(error::digest_mismatch));
    // ... but not when verifying one image.
    write_test_file(stray_path, "strax");
    CHECK(c.store.verify(c.ref).clean());
}

TEST_CASE("a lock held elsewhere is waited for at most lock_timeout: the item is skipped, never blocked on")
{
    cache<erofs_store> c;
    c.pull();
    flock_lock other(c.root / "locks");
    verify_options o;
    o.lock_timeout = std::chrono::milliseconds(50);
    {
        auto held = other.acquire("blobs/sha256/" + std::string(c.img.blobs[0].encoded()), lock_mode::exclusive);
        auto const t0 = std::chrono::steady_clock::now();
        auto r = verify_all(c.store, o);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
        INFO(describe(r));
        CHECK(r.clean());
        REQUIRE(r.skipped.size() == 1);
        CHECK(r.skipped[0].find("blob " + c.img.blobs[0].str() + ": its lock stayed held longer than 50 ms") == 0);
        CHECK(r.blobs == 4);
        CHECK(r.layer_artifacts == 2); // the layer of that blob waits for it
    }
    {
        auto held = other.acquire("gc", lock_mode::exclusive); // a prune is running
        error_code ec;
        std::string why;
        c.store.verify(o, ec, &why);
        CHECK(ec == error::lock_failed);
        CHECK(why.find("stayed locked for pruning longer than 50 ms") != std::string::npos);
    }
    CHECK(verify_all(c.store).clean());
}

TEST_CASE("rootfs: damaged image.json and layer.json are metadata findings that the next pull repairs")
{
    cache<rootfs_store> c;
    auto const first = c.pull();
    fs::path const root = c.root.path();
    auto const clean = verify_all(c.store);
    INFO(describe(clean));
    CHECK(clean.clean());
    CHECK(clean.layer_artifacts == 3);
    CHECK(clean.image_artifacts == 1);
    fs::path const image_dir = first.image_artifacts.at(0);
    fs::path const layer_dir = first.layers.at(0).artifacts.at(0);

    SUBCASE("image.json")
    {
        flip(image_dir / "image.json", 0, 0x20);
        auto const f = only_finding(verify_all(c.store), root, verify_kind::metadata, image_dir / "image.json",
                                     make_error_code(error::metadata_corrupt));
        CHECK(f.reason.find("image.json is not valid JSON at byte ") != std::string::npos);
        CHECK(f.key == first.manifest_digest.str());
    }
    SUBCASE("layer.json")
    {
        auto const text = read_file(layer_dir / "layer.json");
        auto at = text.find("\"diff_id\":\"sha256:");
        REQUIRE(at != std::string::npos);
        at += 18;
        while (text.at(at) < '0' || text.at(at) > '9') ++at;
        flip(layer_dir / "layer.json", at); // a digit of the diff_id it names: another digit
        auto const f = only_finding(verify_all(c.store), root, verify_kind::metadata, layer_dir / "layer.json",
                                     make_error_code(error::metadata_corrupt));
        CHECK(f.reason.find("layer.json names diff_id sha256:") != std::string::npos);
    }
    SUBCASE("a composed tree lost its rootfs/")
    {
        fs::remove_all(image_dir / "rootfs");
        auto const f = only_finding(verify_all(c.store), root, verify_kind::image_artifact, image_dir,
                                     make_error_code(error::not_found));
        CHECK(f.reason == "image tree has no rootfs/ directory");
    }
    c.t.reset_counters();
    auto const repaired = c.pull();
    CHECK_FALSE(repaired.cached);
    CHECK(repaired.downloaded_bytes == 0);
    CHECK(fs::exists(image_dir / "rootfs" / "layer1" / "f0"));
    CHECK(verify_all(c.store).clean());
    CHECK(c.pull().cached);
}

TEST_CASE("blobs only: a damaged layer blob is evicted and fetched again")
{
    cache<blob_store> c;
    c.pull();
    fs::path const root = c.root.path();
    CHECK(verify_all(c.store).clean());
    fs::path const p = blob_path(root, c.img.blobs[0]);
    flip(p, 7);
    only_finding(verify_all(c.store), root, verify_kind::blob, p, make_error_code(error::digest_mismatch));
    c.t.reset_counters();
    auto const r = c.pull();
    CHECK_FALSE(r.cached);
    CHECK(r.downloaded_bytes == c.img.blob_bytes[0].size());
    CHECK(verify_all(c.store).clean());
    CHECK_FALSE(fs::exists(root / "tmp" / "evicted" / "blobs" / "sha256" / std::string(c.img.blobs[0].encoded())));
}

TEST_CASE("erofs: an evicted layer blob is fetched again though its layer image is held, unless blobs are not kept")
{
    cache<erofs_store> c;
    c.pull();
    fs::path const root = c.root.path();
    fs::path const p = blob_path(root, c.img.blobs[2]);
    fs::path const record = root / "tmp" / "evicted" / "blobs" / "sha256" / std::string(c.img.blobs[2].encoded());

    SUBCASE("kept: fetched again")
    {
        flip(p, 9);
        only_finding(verify_all(c.store), root, verify_kind::blob, p, make_error_code(error::digest_mismatch));
        CHECK(fs::exists(record));
        c.t.reset_counters();
        auto const r = c.pull();
        CHECK_FALSE(r.cached);
        CHECK(c.t.bytes_served(c.img.blobs[2]) == c.img.blob_bytes[2].size());
        CHECK(read_file(p) == c.img.blob_bytes[2]);
        CHECK_FALSE(fs::exists(record));
    }
    SUBCASE("not kept: the held layer image serves, and the eviction is forgotten")
    {
        flip(p, 9);
        verify_all(c.store);
        c.t.reset_counters();
        auto o = opts();
        o.keep_layer_blobs = false;
        auto const r = c.store.pull(c.ref, o);
        CHECK_FALSE(r.cached);
        CHECK(c.t.bytes_served(c.img.blobs[2]) == 0);
        CHECK_FALSE(fs::exists(record));
        CHECK_FALSE(fs::exists(p));
        CHECK(c.store.pull(c.ref, o).cached);
    }
    CHECK(verify_all(c.store).clean()); // an absent layer blob is not a finding
}

TEST_CASE("verify while another image is being pulled finds nothing wrong: what is not done yet is not at a final name")
{
    cache<erofs_store> c;
    c.pull();
    publish_image(c.t, "lib/other", "v1",
                  {{make_layer_tar(5, 6, 60000), layer_compression::gzip}, {make_layer_tar(6, 6, 60000), layer_compression::zstd}});
    c.t.inject({.kind = request_kind::open_blob, .repository = "lib/other", .times = 0,
                .read_delay = std::chrono::milliseconds(20)});
    std::atomic<bool> done{false};
    error_code pull_ec;
    std::jthread puller([&] {
        c.store.pull(image_reference::parse("lib/other:v1"), opts(), pull_ec);
        done = true;
    });
    verify_options o;
    o.lock_timeout = std::chrono::milliseconds(20);
    int rounds = 0;
    while (!done.load()) {
        auto const r = verify_all(c.store, o);
        INFO(describe(r));
        CHECK(r.clean());
        ++rounds;
    }
    puller.join();
    REQUIRE_FALSE(pull_ec);
    auto const r = verify_all(c.store);
    INFO(describe(r));
    CHECK(r.clean());
    CHECK(r.images == 2);
    CHECK(r.layer_artifacts == 5);
    MESSAGE(rounds << " verify runs while the pull ran");
}
