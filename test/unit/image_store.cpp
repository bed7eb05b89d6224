#include <ocistore/basic_image_store.hpp>

#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/test/memory_transport.hpp>

#include <support/event_log.hpp>
#include <support/temp_dir.hpp>
#include <support/test_image.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <fstream>
#include <mutex>
#include <thread>

using namespace ocistore;
using namespace ocistore_test;
using ocistore::test::fault;
using ocistore::test::memory_transport;
using ocistore::test::request_kind;

namespace {

using blob_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, null_builder>;
using rootfs_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, rootfs_builder>;

platform const amd64{"linux", "amd64", "", "", {}};

blob_store make_blob_store(std::filesystem::path const& root, memory_transport t)
{
    return blob_store(root, std::move(t), flock_lock(root / "locks"), null_builder{});
}

rootfs_store make_rootfs_store(std::filesystem::path const& root, memory_transport t)
{
    return rootfs_store(root, std::move(t), flock_lock(root / "locks"), rootfs_builder(root));
}

descriptor desc(std::string media_type, digest d, std::int64_t size)
{
    descriptor out;
    out.media_type = std::move(media_type);
    out.digest = std::move(d);
    out.size = size;
    return out;
}

/// Publishes "lib/app:v1" with one layer stored as `blob`, declared as `media_type` and
/// `declared_size` bytes, and a config listing `diff_ids`: for images that lie.
digest publish_crafted(memory_transport& t, std::string const& blob, std::string media_type, std::int64_t declared_size,
                       std::vector<digest> diff_ids)
{
    ocistore::image_manifest m;
    m.media_type = std::string(media_types::oci_manifest);
    auto const d = t.add_blob("lib/app", blob);
    m.layers.push_back(desc(std::move(media_type), d, declared_size));
    auto config = make_image_config(std::move(diff_ids));
    m.config = desc(std::string(media_types::oci_config), t.add_blob("lib/app", config), static_cast<std::int64_t>(config.size()));
    t.tag("lib/app", "v1", t.add_manifest("lib/app", boost::json::serialize(boost::json::value_from(m)),
                                           std::string(media_types::oci_manifest)));
    return d;
}

pull_options opts_for(platform const& p = amd64)
{
    pull_options o;
    o.platform = p;
    o.retry_backoff = std::chrono::milliseconds(1);
    return o;
}

std::vector<test_layer> three_layers()
{
    return {{make_layer_tar(1), layer_compression::gzip},
            {make_layer_tar(2, 4, 200000), layer_compression::zstd},
            {make_layer_tar(3), layer_compression::none}};
}

std::string read_file(std::filesystem::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::filesystem::path> files_under(std::filesystem::path const& dir)
{
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::recursive_directory_iterator(); ++it)
        if (it->is_regular_file()) out.push_back(it->path());
    return out;
}

} // namespace

TEST_CASE("a cold pull verifies and keeps every blob, records the reference, and a second pull is answered from the cache")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "library/app", "v1", three_layers());
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("example.com/library/app:v1");
    // memory_transport ignores the registry; use a registry-less name too.
    auto const plain = image_reference::parse("library/app:v1");

    event_log log;
    auto o = opts_for();
    o.progress = log.callback();
    pull_result r = store.pull(plain, o);
    CHECK_FALSE(r.cached);
    CHECK(r.manifest_digest == img.manifest_digest);
    CHECK(r.config_digest == img.config_digest);
    CHECK_FALSE(r.index_digest);
    CHECK(r.platform == amd64);
    CHECK(r.artifact_kind == "none");
    REQUIRE(r.layers.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(r.layers[i].blob == img.blobs[i]);
        CHECK(r.layers[i].diff_id == img.diff_ids[i]);
        CHECK(r.layers[i].size == img.blob_bytes[i].size());
        CHECK(r.layers[i].downloaded);
        CHECK(read_file(root / "blobs" / "sha256" / std::string(img.blobs[i].encoded())) == img.blob_bytes[i]);
    }
    CHECK(r.downloaded_bytes == img.total_blob_bytes);
    CHECK(read_file(root / "blobs" / "sha256" / std::string(img.manifest_digest.encoded())) == img.manifest);
    CHECK(read_file(root / "oci-layout") == R"({"imageLayoutVersion":"1.0.0"})");
    CHECK(files_under(root / "tmp").empty());

    auto kinds = log.kinds();
    REQUIRE(kinds.size() >= 4);
    CHECK(kinds.front() == progress_kind::resolving);
    CHECK(kinds[1] == progress_kind::resolved);
    CHECK(kinds.back() == progress_kind::complete);
    CHECK(log.count(progress_kind::download_complete) == 3);
    CHECK(log.count(progress_kind::build_complete) == 0); // blobs only: nothing is built
    CHECK(log.count(progress_kind::compose_complete) == 1);

    auto listed = store.list();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].reference == plain.str());
    CHECK(listed[0].manifest_digest == img.manifest_digest);

    // Cached: no request at all, exactly resolving → resolved → complete.
    t.reset_counters();
    event_log log2;
    o.progress = log2.callback();
    pull_result again = store.pull(plain, o);
    CHECK(again.cached);
    CHECK(again.manifest_digest == img.manifest_digest);
    CHECK(again.layers == std::vector<layer_record>{
                              {img.blobs[0], img.diff_ids[0], img.blob_bytes[0].size(), r.layers[0].media_type, {}, false, false},
                              {img.blobs[1], img.diff_ids[1], img.blob_bytes[1].size(), r.layers[1].media_type, {}, false, false},
                              {img.blobs[2], img.diff_ids[2], img.blob_bytes[2].size(), r.layers[2].media_type, {}, false, false}});
    CHECK(t.requests() == 0);
    CHECK(log2.kinds() == std::vector<progress_kind>{progress_kind::resolving, progress_kind::resolved, progress_kind::complete});

    // inspect answers the same without the network.
    auto seen = store.inspect(plain, amd64);
    CHECK(seen.manifest_digest == img.manifest_digest);
    CHECK(t.requests() == 0);
    static_cast<void>(ref);
}

TEST_CASE("an index is resolved to the platform's manifest, and both digests are recorded")
{
    temp_dir root;
    memory_transport t;
    platform const arm64{"linux", "arm64", "v8", "", {}};
    auto a = publish_image(t, "lib/multi", "", {{make_layer_tar(1)}}, amd64);
    auto b = publish_image(t, "lib/multi", "", {{make_layer_tar(2)}}, arm64);
    auto index = publish_index(t, "lib/multi", "latest", {{a, amd64}, {b, arm64}});
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("lib/multi");

    auto r = store.pull(ref, opts_for(arm64));
    CHECK(r.manifest_digest == b.manifest_digest);
    REQUIRE(r.index_digest);
    CHECK(*r.index_digest == index);
    CHECK(r.platform.architecture == "arm64");
    CHECK(std::filesystem::exists(root / "blobs" / "sha256" / std::string(index.encoded())));
    CHECK(t.bytes_served(a.blobs[0]) == 0);

    // The other platform is a separate record of the same name.
    auto r2 = store.pull(ref, opts_for(amd64));
    CHECK(r2.manifest_digest == a.manifest_digest);
    CHECK(store.list().size() == 2);
    t.reset_counters();
    CHECK(store.pull(ref, opts_for(arm64)).cached);
    CHECK(store.pull(ref, opts_for(amd64)).cached);
    CHECK(t.requests() == 0);

    // No matching platform: a clear error naming what is offered.
    error_code ec;
    std::string why;
    store.pull(ref, opts_for(platform{"linux", "s390x", "", "", {}}), ec, &why);
    CHECK(ec == error::no_matching_platform);
    CHECK(why.find("s390x") != std::string::npos);
}

TEST_CASE("a pinned digest is verified over the raw manifest bytes")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
    auto store = make_blob_store(root.path(), t);
    auto r = store.pull(image_reference::parse("lib/app@" + img.manifest_digest.str()), opts_for());
    CHECK(r.manifest_digest == img.manifest_digest);

    // A registry serving other bytes for the digest is caught.
    temp_dir root2;
    memory_transport t2;
    auto other = publish_image(t2, "lib/app", "", {{make_layer_tar(2)}});
    t2.put_manifest("lib/app", img.manifest_digest, other.manifest, std::string(media_types::oci_manifest));
    auto store2 = make_blob_store(root2.path(), t2);
    error_code ec;
    std::string why;
    store2.pull(image_reference::parse("lib/app@" + img.manifest_digest.str()), opts_for(), ec, &why);
    CHECK(ec == error::digest_mismatch);
    CHECK(why.find(img.manifest_digest.str()) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(root2 / "index.json"));
}

TEST_CASE("a layer whose artifact is held for its diff_id is not downloaded, even from another image")
{
    temp_dir root;
    memory_transport t;
    std::string const shared = make_layer_tar(7);
    auto one = publish_image(t, "lib/one", "v1", {{shared}, {make_layer_tar(8)}});
    // Same layer content, compressed differently: another blob, the same diff_id.
    auto two = publish_image(t, "lib/two", "v1", {{shared, layer_compression::zstd}, {make_layer_tar(9)}});
    auto store = make_rootfs_store(root.path(), t);
    auto r1 = store.pull(image_reference::parse("lib/one:v1"), opts_for());
    CHECK(r1.artifact_kind == "rootfs");
    REQUIRE(r1.layers.size() == 2);
    REQUIRE(r1.layers[0].artifacts.size() == 1);
    CHECK(std::filesystem::is_directory(r1.layers[0].artifacts[0]));
    REQUIRE(r1.image_artifacts.size() == 1);
    CHECK(std::filesystem::exists(r1.image_artifacts[0] / "rootfs" / "layer7" / "f0"));

    auto r2 = store.pull(image_reference::parse("lib/two:v1"), opts_for());
    CHECK(t.bytes_served(two.blobs[0]) == 0);
    CHECK_FALSE(r2.layers[0].downloaded);
    CHECK_FALSE(r2.layers[0].built);
    CHECK(r2.layers[1].downloaded);
    CHECK(r2.layers[0].artifacts == r1.layers[0].artifacts);
    CHECK(r2.downloaded_bytes == two.blob_bytes[1].size());
    static_cast<void>(one);
}

TEST_CASE("a kept blob is rebuilt from the cache when the artifact is missing")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
    {
        auto store = make_blob_store(root.path(), t);
        store.pull(image_reference::parse("lib/app:v1"), opts_for());
    }
    t.reset_counters();
    auto store = make_rootfs_store(root.path(), t);
    auto r = store.pull(image_reference::parse("lib/app:v1"), opts_for());
    CHECK(t.bytes_served(img.blobs[0]) == 0);
    CHECK(r.layers[0].built);
    CHECK_FALSE(r.layers[0].downloaded);
    CHECK(std::filesystem::exists(r.image_artifacts.at(0) / "rootfs" / "layer1" / "f2"));
}

TEST_CASE("resume: an interrupted download leaves a .part that the next pull replays, asking only for the rest")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/big", "v1", {{make_layer_tar(5, 8, 300000), layer_compression::none}});
    auto const size = img.blob_bytes[0].size();
    auto store = make_blob_store(root.path(), t);
    auto o = opts_for();
    o.body_retries = 0;
    t.inject({.kind = request_kind::open_blob, .target = img.blobs[0].str(), .truncate_after = 1000000});
    error_code ec;
    std::string why;
    store.pull(image_reference::parse("lib/big:v1"), o, ec, &why);
    CHECK(ec == error::connection_failed);
    auto const part = root / "tmp" / "blobs" / (img.blobs[0].path_safe() + ".part");
    REQUIRE(std::filesystem::exists(part));
    CHECK(std::filesystem::file_size(part) == 1000000);
    CHECK_FALSE(std::filesystem::exists(root / "blobs" / "sha256" / std::string(img.blobs[0].encoded())));
    CHECK_FALSE(std::filesystem::exists(root / "index.json"));

    t.reset_counters();
    event_log log;
    o.progress = log.callback();
    auto r = store.pull(image_reference::parse("lib/big:v1"), o);
    CHECK(t.bytes_served(img.blobs[0]) == size - 1000000);
    auto requests = t.request_log();
    auto blob_req = std::find_if(requests.begin(), requests.end(), [](auto const& q) { return q.kind == request_kind::open_blob; });
    REQUIRE(blob_req != requests.end());
    CHECK(blob_req->offset == 1000000);
    CHECK(r.downloaded_bytes == size - 1000000);
    CHECK_FALSE(std::filesystem::exists(part));
    CHECK(read_file(root / "blobs" / "sha256" / std::string(img.blobs[0].encoded())) == img.blob_bytes[0]);
    CHECK(log.count(progress_kind::retry) == 1); // "resuming from a partial download"
}

TEST_CASE("resume decision table")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(5, 4, 100000), layer_compression::gzip}});
    auto const& blob = img.blob_bytes[0];
    auto const part = root / "tmp" / "blobs" / (img.blobs[0].path_safe() + ".part");
    auto const final_blob = root / "blobs" / "sha256" / std::string(img.blobs[0].encoded());
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("lib/app:v1");
    auto fresh = [&](std::string part_content) {
        std::filesystem::remove_all(root / "blobs");
        std::filesystem::remove(root / "index.json");
        std::filesystem::create_directories(part.parent_path());
        write_test_file(part, part_content);
        t.reset_counters();
    };

    SUBCASE("a correct prefix is replayed; the server honours the Range: 206 appends")
    {
        fresh(blob.substr(0, blob.size() / 2));
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == blob.size() - blob.size() / 2);
    }
    SUBCASE("the server ignores the Range: the .part is truncated and the blob restarts from 0")
    {
        fresh(blob.substr(0, blob.size() / 2));
        t.inject({.kind = request_kind::open_blob, .target = img.blobs[0].str(), .ignore_range = true});
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == blob.size());
    }
    SUBCASE("a .part longer than the descriptor says is discarded")
    {
        fresh(blob + "extra");
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == blob.size());
    }
    SUBCASE("a complete .part is verified without the network")
    {
        fresh(blob);
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == 0);
    }
    SUBCASE("a complete .part with a wrong digest is discarded and downloaded again")
    {
        std::string bad = blob;
        bad[bad.size() / 3] ^= 0x55;
        fresh(bad);
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == blob.size());
    }
    SUBCASE("a wrong prefix is caught by the digest and the blob is downloaded afresh")
    {
        std::string bad = blob.substr(0, blob.size() / 2);
        bad[10] ^= 0x55;
        fresh(bad);
        store.pull(ref, opts_for());
        CHECK(t.bytes_served(img.blobs[0]) == blob.size() - blob.size() / 2 + blob.size());
    }
    CHECK(read_file(final_blob) == blob);
    CHECK_FALSE(std::filesystem::exists(part));
}

TEST_CASE("a connection dropped mid-blob is resumed within the same pull, with a retry event")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(5, 4, 100000), layer_compression::none}});
    auto const size = img.blob_bytes[0].size();
    t.inject({.kind = request_kind::open_blob, .target = img.blobs[0].str(), .times = 2, .truncate_after = 50000});
    auto store = make_blob_store(root.path(), t);
    event_log log;
    auto o = opts_for();
    o.progress = log.callback();
    auto r = store.pull(image_reference::parse("lib/app:v1"), o);
    CHECK(r.layers[0].downloaded);
    CHECK(log.count(progress_kind::retry) == 2);
    CHECK(t.bytes_served(img.blobs[0]) == size);
    CHECK(t.requests(request_kind::open_blob) >= 3);

    // A truncation that ends the body "cleanly" is retried too.
    temp_dir root2;
    t.reset_counters();
    t.inject({.kind = request_kind::open_blob, .target = img.blobs[0].str(), .truncate_after = 70000, .truncate_mode = ocistore::test::truncation::eof});
    auto store2 = make_blob_store(root2.path(), t);
    store2.pull(image_reference::parse("lib/app:v1"), opts_for());
    CHECK(t.bytes_served(img.blobs[0]) == size);
}

TEST_CASE("bad content is never published: corrupt blob, wrong diff_id, oversized body, count mismatch")
{
    temp_dir root;
    memory_transport t;
    auto const ref = image_reference::parse("lib/app:v1");
    auto o = opts_for();
    o.body_retries = 0;
    auto nothing_published = [&] {
        CHECK_FALSE(std::filesystem::exists(root / "index.json"));
        for (auto const& f : files_under(root / "tmp")) FAIL_CHECK("left behind: " << f);
        for (auto const& f : files_under(root / "rootfs")) FAIL_CHECK("published: " << f);
    };

    SUBCASE("a corrupted byte")
    {
        auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
        t.inject({.kind = request_kind::open_blob, .target = img.blobs[0].str(), .corrupt_at = 100});
        auto store = make_rootfs_store(root.path(), t);
        error_code ec;
        std::string why;
        store.pull(ref, o, ec, &why);
        CHECK((ec == error::digest_mismatch || ec == condition::invalid_input));
        CHECK_FALSE(std::filesystem::exists(root / "blobs" / "sha256" / std::string(img.blobs[0].encoded())));
        nothing_published();
    }
    SUBCASE("a config that states another diff_id")
    {
        auto blob = gzip_compress(make_layer_tar(1));
        auto const d = publish_crafted(t, blob, std::string(media_types::oci_layer_tar_gzip),
                                       static_cast<std::int64_t>(blob.size()),
                                       {digest_of<sha256_hasher>(std::string("not the layer"))});
        auto store = make_rootfs_store(root.path(), t);
        error_code ec;
        std::string why;
        store.pull(ref, o, ec, &why);
        CHECK(ec == error::diff_id_mismatch);
        CHECK(why.find("diff_id") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(root / "blobs" / "sha256" / std::string(d.encoded())));
        nothing_published();
    }
    SUBCASE("a body longer than the descriptor: stopped at the declared size")
    {
        std::string tar = make_layer_tar(1);
        publish_crafted(t, tar, std::string(media_types::oci_layer_tar), static_cast<std::int64_t>(tar.size() - 1024),
                        {digest_of<sha256_hasher>(tar)});
        auto store = make_blob_store(root.path(), t);
        error_code ec;
        store.pull(ref, o, ec);
        CHECK(ec == condition::integrity);
        nothing_published();
    }
    SUBCASE("layer and diff_id counts disagree")
    {
        std::string tar = make_layer_tar(1);
        publish_crafted(t, tar, std::string(media_types::oci_layer_tar), static_cast<std::int64_t>(tar.size()), {});
        auto store = make_blob_store(root.path(), t);
        error_code ec;
        std::string why;
        store.pull(ref, o, ec, &why);
        CHECK(ec == error::invalid_config);
        CHECK(why.find("1 layers but the config lists 0") != std::string::npos);
        nothing_published();
    }
    SUBCASE("a layer of a media type that is not a layer")
    {
        std::string tar = make_layer_tar(1);
        publish_crafted(t, tar, "application/vnd.example.weights", static_cast<std::int64_t>(tar.size()),
                        {digest_of<sha256_hasher>(tar)});
        auto store = make_blob_store(root.path(), t);
        error_code ec;
        std::string why;
        store.pull(ref, o, ec, &why);
        CHECK(ec == error::unsupported_media_type);
        CHECK(why.find("application/vnd.example.weights") != std::string::npos);
    }
    SUBCASE("the throwing overload carries the reason")
    {
        auto store = make_blob_store(root.path(), t);
        CHECK_THROWS_WITH_AS(store.pull(image_reference::parse("lib/absent:v1"), o), doctest::Contains("lib/absent"),
                             system_error);
    }
}

TEST_CASE("blobs only, more layers than cores: every layer is verified whether it reads ahead or not")
{
    // The first layers to start get a read-ahead thread while a core idles; the rest read,
    // write and hash on their own job's thread. Both ways must check and publish alike.
    std::vector<test_layer> layers;
    for (unsigned i = 0; i < 2 * std::max(2u, std::thread::hardware_concurrency()) + 2; ++i)
        layers.push_back({make_layer_tar(40 + i, 6, 150000), layer_compression::gzip});
    auto o = opts_for();
    o.jobs = layers.size();
    o.body_retries = 0;
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", layers);
    SUBCASE("all good")
    {
        auto store = make_blob_store(root.path(), t);
        auto r = store.pull(image_reference::parse("lib/app:v1"), o);
        REQUIRE(r.layers.size() == layers.size());
        for (std::size_t i = 0; i < layers.size(); ++i)
            CHECK(read_file(root / "blobs" / "sha256" / std::string(img.blobs[i].encoded())) == img.blob_bytes[i]);
    }
    SUBCASE("the last layer corrupt")
    {
        auto const bad = img.blobs.back();
        t.inject({.kind = request_kind::open_blob, .target = bad.str(), .corrupt_at = 5000});
        auto store = make_blob_store(root.path(), t);
        error_code ec;
        std::string why;
        store.pull(image_reference::parse("lib/app:v1"), o, ec, &why);
        CHECK(ec == error::digest_mismatch);
        CHECK(why.find(bad.str()) != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(root / "blobs" / "sha256" / std::string(bad.encoded())));
        CHECK_FALSE(std::filesystem::exists(root / "index.json"));
        // Layers stopped by the failure keep their .part for a resume; the bad one keeps nothing.
        CHECK_FALSE(std::filesystem::exists(root / "tmp" / "blobs" / (bad.path_safe() + ".part")));
    }
}

namespace {

/** A rootfs_builder that records the order in which layers begin, and holds each layer's
    commit (the store's publication step, which waits for the disk) until the next layer has
    begun, or 5 s have passed. */
struct gated_builder {
    using layer_sink = rootfs_builder::layer_sink;
    using prepared_layer = rootfs_builder::prepared_layer;
    using layer_result = rootfs_builder::layer_result;
    using image_result = rootfs_builder::image_result;
    static constexpr std::string_view kind = rootfs_builder::kind;

    struct shared {
        std::mutex m;
        std::condition_variable cv;
        std::size_t layers = 0;
        std::vector<std::size_t> begun;
        std::size_t commits = 0;
        std::vector<bool> overlapped; ///< per commit: the next layer began while it was held
    };
    rootfs_builder inner;
    std::shared_ptr<shared> st = std::make_shared<shared>();

    std::string_view identity() const { return inner.identity(); }
    layer_sink begin_layer(layer_info const& info, error_code& ec)
    {
        {
            std::lock_guard lock(st->m);
            st->begun.push_back(info.index);
        }
        st->cv.notify_all();
        return inner.begin_layer(info, ec);
    }
    layer_result commit_layer(prepared_layer&& p, error_code& ec)
    {
        {
            std::unique_lock lock(st->m);
            std::size_t const k = st->commits++;
            std::size_t const want = std::min(k + 2, st->layers);
            st->overlapped.push_back(st->cv.wait_for(lock, std::chrono::seconds(5), [&] { return st->begun.size() >= want; }));
        }
        return inner.commit_layer(std::move(p), ec);
    }
    bool has_layer(digest const& d, error_code& ec) { return inner.has_layer(d, ec); }
    std::optional<layer_result> layer(digest const& d, error_code& ec) { return inner.layer(d, ec); }
    image_result compose(digest const& d, std::span<layer_result const> layers, error_code& ec)
    {
        return inner.compose(d, layers, ec);
    }
    std::optional<image_result> image(digest const& d, error_code& ec) { return inner.image(d, ec); }
};
static_assert(artifact_builder<gated_builder>);

} // namespace

TEST_CASE("jobs 1: layers start in manifest order, and the next starts while the previous one waits for the disk")
{
    temp_dir root;
    memory_transport t;
    std::vector<test_layer> layers;
    for (unsigned i = 0; i < 4; ++i) layers.push_back({make_layer_tar(60 + i), layer_compression::gzip});
    publish_image(t, "lib/app", "v1", layers);
    gated_builder builder{rootfs_builder(root.path())};
    builder.st->layers = layers.size();
    auto const st = builder.st;
    basic_image_store<memory_transport, sha256_hasher, flock_lock, gated_builder> store(
        root.path(), std::move(t), flock_lock(root / "locks"), std::move(builder));
    auto o = opts_for();
    o.jobs = 1;
    auto r = store.pull(image_reference::parse("lib/app:v1"), o);
    CHECK(r.layers.size() == layers.size());
    std::lock_guard lock(st->m);
    CHECK(st->begun == std::vector<std::size_t>{0, 1, 2, 3});
    // Each commit but the last was held until the next layer had begun: a layer publishing
    // (fsync, rename) no longer counts against jobs.
    REQUIRE(st->overlapped.size() == layers.size());
    for (std::size_t k = 0; k < layers.size(); ++k) CHECK_MESSAGE(st->overlapped[k], "commit " << k);
}

TEST_CASE("policies: never answers only from the cache, always re-resolves but downloads nothing new, force downloads again")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("lib/app:v1");
    auto o = opts_for();
    o.policy = pull_policy::never;
    error_code ec;
    std::string why;
    store.pull(ref, o, ec, &why);
    CHECK(ec == error::not_cached);
    CHECK(t.requests() == 0);
    o.policy = pull_policy::if_missing;
    store.pull(ref, o);
    t.reset_counters();
    o.policy = pull_policy::never;
    CHECK(store.pull(ref, o).cached);
    o.policy = pull_policy::always;
    auto r = store.pull(ref, o);
    CHECK_FALSE(r.cached);
    CHECK(t.requests(request_kind::fetch_manifest) == 1);
    CHECK(t.bytes_served(img.blobs[0]) == 0);
    o.policy = pull_policy::if_missing;
    o.force = true;
    store.pull(ref, o);
    CHECK(t.bytes_served(img.blobs[0]) == img.blob_bytes[0].size());
}

TEST_CASE("corrupt metadata is a miss that the next pull repairs")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("lib/app:v1");
    store.pull(ref, opts_for());

    SUBCASE("index.json is garbage")
    {
        write_test_file(root / "index.json", "{\"schemaVersion\": 2, \"manifests\": [");
        error_code ec;
        store.list(ec);
        CHECK(ec == error::metadata_corrupt);
        t.reset_counters();
        auto r = store.pull(ref, opts_for());
        CHECK_FALSE(r.cached);
        CHECK(t.bytes_served(img.blobs[0]) == 0); // the blob was still good
        CHECK(store.list().size() == 1);
        CHECK(std::filesystem::exists(root / "index.json.corrupt"));
    }
    SUBCASE("the cached manifest blob was altered")
    {
        auto const mpath = root / "blobs" / "sha256" / std::string(img.manifest_digest.encoded());
        write_test_file(mpath, img.manifest + " ");
        auto r = store.pull(ref, opts_for());
        CHECK_FALSE(r.cached);
        CHECK(read_file(mpath) == img.manifest);
    }
    SUBCASE("a layer blob disappeared")
    {
        std::filesystem::remove(root / "blobs" / "sha256" / std::string(img.blobs[0].encoded()));
        t.reset_counters();
        auto r = store.pull(ref, opts_for());
        CHECK_FALSE(r.cached);
        CHECK(t.bytes_served(img.blobs[0]) == img.blob_bytes[0].size());
    }
    CHECK(store.pull(ref, opts_for()).cached);
}

TEST_CASE("concurrent pulls in one process share the work: each blob is served once and every caller gets the result and progress")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", three_layers());
    auto other = publish_image(t, "lib/other", "v1", {{make_layer_tar(1)}, {make_layer_tar(2, 4, 200000), layer_compression::zstd}});
    t.inject({.kind = request_kind::open_blob, .times = 0, .read_delay = std::chrono::milliseconds(1)});
    auto store = make_rootfs_store(root.path(), t);
    std::vector<event_log> logs(6);
    std::vector<pull_result> results(6);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 6; ++i)
        threads.emplace_back([&, i] {
            auto o = opts_for();
            o.progress = logs[i].callback();
            results[i] = store.pull(image_reference::parse(i % 2 ? "lib/other:v1" : "lib/app:v1"), o);
        });
    for (auto& th : threads) th.join();
    for (std::size_t i = 0; i < 3; ++i) CHECK(t.bytes_served(img.blobs[i]) == img.blob_bytes[i].size());
    for (std::size_t i = 0; i < 2; ++i) CHECK(t.bytes_served(other.blobs[i]) == other.blob_bytes[i].size());
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(results[i].manifest_digest == (i % 2 ? other.manifest_digest : img.manifest_digest));
        CHECK(logs[i].count(progress_kind::complete) == 1);
    }
    CHECK(store.list().size() == 2);
}

TEST_CASE("remove and prune keep what remaining images use")
{
    temp_dir root;
    memory_transport t;
    std::string const shared = make_layer_tar(7);
    auto one = publish_image(t, "lib/one", "v1", {{shared}, {make_layer_tar(8)}});
    auto two = publish_image(t, "lib/two", "v1", {{shared}, {make_layer_tar(9)}});
    auto store = make_blob_store(root.path(), t);
    store.pull(image_reference::parse("lib/one:v1"), opts_for());
    store.pull(image_reference::parse("lib/two:v1"), opts_for());
    auto blob = [&](digest const& d) { return root / "blobs" / "sha256" / std::string(d.encoded()); };

    error_code ec;
    std::string why;
    CHECK(store.remove(image_reference::parse("lib/none:v1"), std::nullopt, ec, &why) == 0);
    CHECK(ec == error::not_found);
    CHECK(store.remove(image_reference::parse("lib/one:v1")) == 1);
    CHECK(store.list().size() == 1);
    CHECK(std::filesystem::exists(blob(one.blobs[1]))); // until prune

    auto dry = store.prune({.dry_run = true});
    CHECK(dry.blobs == 3); // one's manifest, config and unique layer
    CHECK(dry.bytes > one.blob_bytes[1].size());
    CHECK(std::filesystem::exists(blob(one.blobs[1])));

    auto report = store.prune();
    CHECK(report.blobs == 3);
    CHECK(report.bytes == dry.bytes);
    CHECK_FALSE(std::filesystem::exists(blob(one.blobs[1])));
    CHECK_FALSE(std::filesystem::exists(blob(one.manifest_digest)));
    CHECK(std::filesystem::exists(blob(one.blobs[0]))); // shared with two
    CHECK(std::filesystem::exists(blob(two.blobs[1])));
    t.reset_counters();
    CHECK(store.pull(image_reference::parse("lib/two:v1"), opts_for()).cached);

    // Stale temporaries go after the grace period only.
    std::filesystem::create_directories(root / "tmp" / "blobs");
    write_test_file(root / "tmp" / "blobs" / "sha256_x.part", "partial");
    // atomic_file temporaries a killed writer left beside blobs and beside index.json
    auto const blob_temp = blob(two.blobs[1]).parent_path() / ("." + std::string(two.blobs[1].encoded()) + ".tmp.Ab12Cd");
    auto const index_temp = root / ".index.json.tmp.Xy34Zw";
    write_test_file(blob_temp, "half a blob");
    write_test_file(index_temp, "{\"manifests\":[");
    CHECK(store.prune().temporaries == 0);
    CHECK(store.prune({.tmp_grace = std::chrono::seconds(0)}).temporaries == 3);
    CHECK_FALSE(std::filesystem::exists(root / "tmp" / "blobs" / "sha256_x.part"));
    CHECK_FALSE(std::filesystem::exists(blob_temp));
    CHECK_FALSE(std::filesystem::exists(index_temp));
    CHECK(std::filesystem::exists(root / "index.json"));
    CHECK(std::filesystem::exists(blob(two.blobs[1])));

    // A corrupt index.json deletes nothing.
    write_test_file(root / "index.json", "nonsense");
    store.prune(prune_options{}, ec, &why);
    CHECK(ec == error::metadata_corrupt);
    CHECK(std::filesystem::exists(blob(two.blobs[1])));
}

TEST_CASE("a stop request cancels a pull and keeps the .part for later")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(5, 8, 300000), layer_compression::none}});
    // Slow enough that the pull is still downloading when the first (batched) progress
    // event arrives, tens of ms after it was posted.
    t.inject({.kind = request_kind::open_blob, .times = 0, .read_delay = std::chrono::milliseconds(10)});
    auto store = make_blob_store(root.path(), t);
    std::stop_source stop;
    auto o = opts_for();
    o.stop = stop.get_token();
    std::atomic<bool> started{false};
    o.progress = [&](progress_event const& ev) {
        if (ev.kind == progress_kind::download_progress) started = true;
    };
    error_code ec;
    std::thread th([&] { store.pull(image_reference::parse("lib/app:v1"), o, ec); });
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop.request_stop();
    th.join();
    CHECK(ec == error::cancelled);
    auto const part = root / "tmp" / "blobs" / (img.blobs[0].path_safe() + ".part");
    CHECK(std::filesystem::exists(part));
    CHECK_FALSE(std::filesystem::exists(root / "index.json"));
}

TEST_CASE("without keep_layer_blobs the layer blobs are not kept, but manifests and configs are")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}});
    auto store = make_rootfs_store(root.path(), t);
    auto o = opts_for();
    o.keep_layer_blobs = false;
    store.pull(image_reference::parse("lib/app:v1"), o);
    CHECK_FALSE(std::filesystem::exists(root / "blobs" / "sha256" / std::string(img.blobs[0].encoded())));
    CHECK(std::filesystem::exists(root / "blobs" / "sha256" / std::string(img.config_digest.encoded())));
    CHECK(files_under(root / "tmp" / "blobs").empty());
    CHECK(store.pull(image_reference::parse("lib/app:v1"), o).cached);
}

TEST_CASE("progress is throttled")
{
    temp_dir root;
    memory_transport t;
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(5, 40, 100000), layer_compression::none}});
    auto store = make_blob_store(root.path(), t);
    event_log log;
    auto o = opts_for();
    o.progress = log.callback();
    o.progress_interval = std::chrono::hours(1);
    store.pull(image_reference::parse("lib/app:v1"), o);
    auto const size = img.blob_bytes[0].size();
    // At most one event per 256 KiB (plus the final one), however small the reads.
    CHECK(log.count(progress_kind::download_progress) <= size / (256 * 1024) + 2);
    CHECK(log.count(progress_kind::download_progress) >= 1);
    std::lock_guard lock(log.m);
    std::uint64_t last = 0;
    for (auto const& ev : log.events)
        if (ev.kind == progress_kind::download_progress) {
            CHECK(ev.current > last);
            CHECK(ev.total == size);
            last = ev.current;
        }
    CHECK(last == size);
}

TEST_CASE("the cache root is an OCI image layout that skopeo and umoci read")
{
    temp_dir root;
    memory_transport t;
    // Debian's umoci 0.4 reads no zstd layers: gzip and plain tar only.
    auto img = publish_image(t, "lib/app", "v1", {{make_layer_tar(1)}, {make_layer_tar(2), layer_compression::none},
                                                 {make_layer_tar(3)}});
    auto store = make_blob_store(root.path(), t);
    auto const ref = image_reference::parse("example.com/lib/app:v1");
    store.pull(image_reference::parse("lib/app:v1"), opts_for(), ref.str());
    CHECK(store.list().at(0).reference == "example.com/lib/app:v1");

    if (!has_command("skopeo")) {
        MESSAGE("skopeo not installed: skipping the skopeo read-back");
    } else {
        temp_dir out;
        std::string const cmd = "skopeo copy --quiet oci:" + root.path().string() + ":" + ref.str() + " dir:" +
                                (out / "x").string() + " 2>&1";
        std::string const log = filter_command(cmd, "");
        CHECK_MESSAGE(std::filesystem::exists(out / "x" / "manifest.json"), log);
        for (std::size_t i = 0; i < 3; ++i)
            CHECK(read_file(out / "x" / std::string(img.blobs[i].encoded())) == img.blob_bytes[i]);
    }
    if (!has_command("umoci")) {
        MESSAGE("umoci not installed: skipping the umoci read-back");
    } else {
        std::string const log = filter_command("umoci ls --layout " + root.path().string() + " 2>&1", "");
        CHECK_MESSAGE(log.find(ref.str()) != std::string::npos, log);
        temp_dir out;
        std::string const unpack = filter_command("umoci raw unpack --rootless --image " + root.path().string() + ":" +
                                                      ref.str() + " " + (out / "rootfs").string() + " 2>&1", "");
        CHECK_MESSAGE(std::filesystem::exists(out / "rootfs" / "layer3" / "f2"), unpack);
    }
}

TEST_CASE("prune deletes the artifacts no recorded image uses")
{
    temp_dir root;
    memory_transport t;
    std::string const shared = make_layer_tar(7);
    publish_image(t, "lib/one", "v1", {{shared}, {make_layer_tar(8)}});
    publish_image(t, "lib/two", "v1", {{shared}, {make_layer_tar(9)}});
    auto store = make_rootfs_store(root.path(), t);
    auto one = store.pull(image_reference::parse("lib/one:v1"), opts_for());
    auto two = store.pull(image_reference::parse("lib/two:v1"), opts_for());
    store.remove(image_reference::parse("lib/one:v1"));

    auto dry = store.prune({.dry_run = true});
    CHECK(dry.layer_artifacts == 1);
    CHECK(dry.image_artifacts == 1);
    CHECK(std::filesystem::exists(one.layers[1].artifacts.at(0)));

    auto report = store.prune();
    CHECK(report.layer_artifacts == 1);
    CHECK(report.image_artifacts == 1);
    CHECK(report.bytes == dry.bytes);
    CHECK_FALSE(std::filesystem::exists(one.layers[1].artifacts.at(0)));
    CHECK_FALSE(std::filesystem::exists(one.image_artifacts.at(0)));
    CHECK(std::filesystem::exists(one.layers[0].artifacts.at(0))); // shared with two
    t.reset_counters();
    CHECK(store.pull(image_reference::parse("lib/two:v1"), opts_for()).cached);
    CHECK(t.requests() == 0);
    static_cast<void>(two);
}

TEST_CASE("blobs only: diff_ids are checked when a builder consumes the blob, or at once with verify_diff_ids")
{
    memory_transport t;
    auto blob = gzip_compress(make_layer_tar(1));
    publish_crafted(t, blob, std::string(media_types::oci_layer_tar_gzip), static_cast<std::int64_t>(blob.size()),
                    {digest_of<sha256_hasher>(std::string("not the layer"))});
    auto const ref = image_reference::parse("lib/app:v1");
    temp_dir root;
    {
        auto store = make_blob_store(root.path(), t);
        CHECK_FALSE(store.pull(ref, opts_for()).cached); // the blob itself is what the manifest says
        temp_dir strict;
        auto checked = make_blob_store(strict.path(), t);
        auto o = opts_for();
        o.verify_diff_ids = true;
        error_code ec;
        checked.pull(ref, o, ec);
        CHECK(ec == error::diff_id_mismatch);
    }
    // A builder consuming the kept blob checks the diff_id, without downloading it again.
    t.reset_counters();
    auto store = make_rootfs_store(root.path(), t);
    error_code ec;
    std::string why;
    store.pull(ref, opts_for(), ec, &why);
    CHECK(ec == error::diff_id_mismatch);
    CHECK(t.bytes_served(digest_of<sha256_hasher>(blob)) == 0);
}

TEST_CASE("with erofs_builder: layer images, fsmeta and VMDK, shared across images and pruned with them")
{
    using erofs_store = basic_image_store<memory_transport, sha256_hasher, flock_lock, erofs_builder>;
    temp_dir root;
    memory_transport t;
    std::string const shared = make_layer_tar(7);
    publish_image(t, "lib/one", "v1", {{shared}, {make_layer_tar(8), layer_compression::zstd}});
    publish_image(t, "lib/two", "v1", {{shared, layer_compression::none}, {make_layer_tar(9)}});
    erofs_store store(root.path(), t, flock_lock(root / "locks"), erofs_builder(root.path()));
    auto one = store.pull(image_reference::parse("lib/one:v1"), opts_for());
    CHECK(one.artifact_kind == "erofs");
    REQUIRE(one.layers.size() == 2);
    for (auto const& l : one.layers) {
        REQUIRE(l.artifacts.size() == 1);
        CHECK(l.artifacts[0] == root / "layers" / (l.diff_id.path_safe() + ".erofs"));
        CHECK(std::filesystem::file_size(l.artifacts[0]) % 4096 == 0);
    }
    REQUIRE(one.image_artifacts.size() == 2);
    CHECK(one.image_artifacts[0] == root / "fsmeta" / (one.manifest_digest.path_safe() + ".erofs"));
    CHECK(one.image_artifacts[1] == root / "vmdk" / (one.manifest_digest.path_safe() + ".vmdk"));
    CHECK(read_file(one.image_artifacts[1]).find("twoGbMaxExtentFlat") != std::string::npos);

    // The shared layer (another blob, the same diff_id) is neither downloaded nor built again.
    auto two = store.pull(image_reference::parse("lib/two:v1"), opts_for());
    CHECK_FALSE(two.layers[0].downloaded);
    CHECK(two.layers[0].artifacts == one.layers[0].artifacts);
    t.reset_counters();
    auto cached = store.pull(image_reference::parse("lib/one:v1"), opts_for());
    CHECK(cached.cached);
    CHECK(cached.image_artifacts == one.image_artifacts);
    CHECK(t.requests() == 0);

    // A damaged fsmeta is a miss that the next pull repairs without downloading anything.
    std::filesystem::resize_file(one.image_artifacts[0], 4096);
    auto repaired = store.pull(image_reference::parse("lib/one:v1"), opts_for());
    CHECK_FALSE(repaired.cached);
    CHECK(repaired.downloaded_bytes == 0);
    CHECK(store.pull(image_reference::parse("lib/one:v1"), opts_for()).cached);

    store.remove(image_reference::parse("lib/one:v1"));
    auto report = store.prune();
    CHECK(report.layer_artifacts == 1);
    CHECK(report.image_artifacts == 1);
    CHECK_FALSE(std::filesystem::exists(one.layers[1].artifacts[0]));
    CHECK_FALSE(std::filesystem::exists(one.image_artifacts[0]));
    CHECK_FALSE(std::filesystem::exists(one.image_artifacts[1]));
    CHECK(std::filesystem::exists(one.layers[0].artifacts[0]));
    CHECK(store.pull(image_reference::parse("lib/two:v1"), opts_for()).cached);
}
