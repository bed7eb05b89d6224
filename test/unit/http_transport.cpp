#include <ocistore/transport/http_transport.hpp>

#include <ocistore/manifest.hpp>
#include <ocistore/platform.hpp>

#include <ocistore/concepts.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>

#include <support/fault_proxy.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/bounded_wait.hpp>
#include <support/env_guard.hpp>
#include <support/http_test.hpp>
#include <support/registry_fixture.hpp>

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore_test;
using namespace std::chrono_literals;

static_assert(transport<http_transport>);
static_assert(blob_source<http_transport::blob_reader>);

namespace {

http_options test_options(std::vector<std::string> insecure = {"127.0.0.1", "localhost"})
{
    return ocistore_test::loopback_options(std::move(insecure));
}

image_reference ref_of(std::string const& host, std::string const& repo_tag)
{
    return image_reference::parse(host + "/" + repo_tag);
}

using ocistore_test::drain;


} // namespace

TEST_CASE("http: plain HTTP registry: manifest, HEAD, blob, ranges, 404")
{
    OCISTORE_REQUIRE_REGISTRY();
    registry_fixture reg;
    registry_pusher push("127.0.0.1", reg.port());
    auto layer = random_bytes(300 * 1024 + 17);
    auto im = push.push_image("test/plain", "v1", layer);

    http_transport t(test_options());
    auto ref = ref_of(reg.host(), "test/plain:v1");
    error_code ec;

    auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.bytes == im.manifest);
    CHECK(m.media_type == "application/vnd.oci.image.manifest.v1+json");
    REQUIRE(m.server_digest);
    CHECK(m.server_digest->str() == im.manifest_digest);

    auto r = t.resolve(ref, media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.manifest_digest.str() == im.manifest_digest);
    CHECK(r.size == im.manifest.size());

    auto d = digest::parse(im.layer_digest);
    auto reader = t.open_blob(ref, d, 0, ec);
    REQUIRE_FALSE(ec);
    CHECK(reader.offset() == 0);
    CHECK(reader.size() == layer.size());
    CHECK(drain(reader, ec) == layer);
    CHECK_FALSE(ec);
    CHECK(reader.read_some(std::span<std::byte>(), ec) == 0); // stays at its end

    SUBCASE("Range honoured: 206 from the offset")
    {
        auto part = t.open_blob(ref, d, 1000, ec);
        REQUIRE_FALSE(ec);
        CHECK(part.offset() == 1000);
        CHECK(part.size() == layer.size());
        CHECK(drain(part, ec, 777) == layer.substr(1000));
        CHECK_FALSE(ec);
    }
    SUBCASE("offset == size: 416 means complete")
    {
        auto end = t.open_blob(ref, d, layer.size(), ec);
        REQUIRE_FALSE(ec);
        CHECK(end.offset() == layer.size());
        CHECK(end.size() == layer.size());
        std::array<std::byte, 16> b{};
        CHECK(end.read_some(b, ec) == 0);
        CHECK_FALSE(ec);
    }
    SUBCASE("offset beyond the end")
    {
        (void)t.open_blob(ref, d, layer.size() + 10, ec);
        CHECK(ec == error::invalid_argument);
    }
    SUBCASE("unknown blob, tag and repository: not_found")
    {
        (void)t.open_blob(ref, digest::parse(sha256_digest("nope")), 0, ec);
        CHECK(ec == error::not_found);
        (void)t.fetch_manifest(ref_of(reg.host(), "test/plain:nope"), media_types::default_accept, ec);
        CHECK(ec == error::not_found);
        (void)t.resolve(ref_of(reg.host(), "test/nothing:v1"), media_types::default_accept, ec);
        CHECK(ec == error::not_found);
        CHECK_THROWS_AS((void)t.fetch_manifest(ref_of(reg.host(), "test/plain:nope")), system_error);
    }
    SUBCASE("by digest")
    {
        auto pinned = ref.with_digest(digest::parse(im.manifest_digest));
        auto pm = t.fetch_manifest(pinned, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(pm.bytes == im.manifest);
    }
}

namespace {

/// A registry with one small image, behind a fault_proxy.
struct faulty_registry {
    registry_fixture reg;
    fault_proxy proxy{"127.0.0.1", reg.port()};
    registry_pusher::image im;
    image_reference ref;
    digest layer;

    faulty_registry()
    {
        registry_pusher push("127.0.0.1", reg.port());
        im = push.push_image("test/faults", "v1", random_bytes(200 * 1000 + 3, 9));
        ref = ref_of(proxy.host(), "test/faults:v1");
        layer = digest::parse(im.layer_digest);
    }
};

} // namespace

TEST_CASE("http: retries 503 then succeeds / the attempts reach the server")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    f.proxy.fail_next("/blobs/", 503, 2);
    auto r = t.open_blob(f.ref, f.layer, 0, ec);
    REQUIRE_FALSE(ec);
    CHECK(drain(r, ec) == f.im.layer);
    CHECK(f.proxy.count("/blobs/") == 3);

    SUBCASE("500, 502, 504 and 408 are retried too; the last failure is reported")
    {
        auto o = test_options();
        o.retry.max_attempts = 3;
        http_transport t3(o);
        f.proxy.clear_log();
        f.proxy.fail_next("/manifests/", 502, 1);
        f.proxy.fail_next("/manifests/", 504, 1);
        f.proxy.fail_next("/manifests/", 500, 1);
        (void)t3.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK(ec == error::server_error);
        CHECK(ec == condition::transient);
        CHECK(f.proxy.count("/manifests/") == 3);
        f.proxy.clear_log();
        f.proxy.fail_next("/manifests/", 408, 1);
        auto m = t3.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(m.bytes == f.im.manifest);
        CHECK(f.proxy.count("/manifests/") == 2);
    }
}

TEST_CASE("http: 404, 403 and 401 are not retried")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    (void)t.open_blob(f.ref, digest::parse(sha256_digest("absent")), 0, ec);
    CHECK(ec == error::not_found);
    CHECK(f.proxy.count("/blobs/") == 1);

    f.proxy.fail_next("/manifests/", 403, 1);
    (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
    CHECK(ec == error::denied);
    CHECK(f.proxy.count("/manifests/") == 1);

    f.proxy.clear_log();
    f.proxy.fail_next("/manifests/", 501, 1);
    (void)t.resolve(f.ref, media_types::default_accept, ec);
    CHECK(ec == error::server_error);
    CHECK(f.proxy.count("/manifests/") == 1); // 501 is not in the retry set
}

TEST_CASE("http: 429 with Retry-After is honoured, within the cap")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    error_code ec;
    {
        http_transport t(test_options());
        f.proxy.fail_next("/manifests/", 429, 1, "1");
        auto t0 = steady_clock::now();
        auto m = t.fetch_manifest(f.ref, media_types::default_accept, ec);
        auto waited = steady_clock::now() - t0;
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == f.im.manifest);
        CHECK(waited >= 950ms); // the backoff alone would be ~10 ms
        CHECK(f.proxy.count("/manifests/") == 2);
    }
    {
        auto o = test_options();
        o.retry.max_retry_after = 200ms;
        http_transport t(o);
        f.proxy.fail_next("/manifests/", 429, 1, "Fri, 31 Dec 2100 23:59:59 GMT");
        auto t0 = steady_clock::now();
        (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(steady_clock::now() - t0 < 5s);
    }
    {
        auto o = test_options();
        o.retry.max_attempts = 2;
        http_transport t(o);
        f.proxy.fail_next("/manifests/", 429, 2, "0");
        (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK(ec == error::rate_limited);
    }
    {
        // A wait beyond the overall budget is not slept: the error comes back at once.
        auto o = test_options();
        o.overall_timeout = 2s;
        o.retry.max_retry_after = 60s;
        http_transport t(o);
        f.proxy.fail_next("/manifests/", 503, 1, "30");
        auto t0 = steady_clock::now();
        (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK(ec == error::server_error);
        CHECK(steady_clock::now() - t0 < 2s);
    }
}

TEST_CASE("http: a body cut short is a transient error, and resuming with Range completes it")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    f.proxy.cut_blobs_after(1000);
    auto r = t.open_blob(f.ref, f.layer, 0, ec);
    REQUIRE_FALSE(ec);
    auto got = drain(r, ec, 300);
    CHECK(ec == error::connection_failed);
    CHECK(ec == condition::transient);
    CHECK(got == f.im.layer.substr(0, 1000));
    std::array<std::byte, 8> b{};
    CHECK(r.read_some(b, ec) == 0); // stays failed
    CHECK(ec == error::connection_failed);

    auto rest = t.open_blob(f.ref, f.layer, got.size(), ec);
    REQUIRE_FALSE(ec);
    CHECK(rest.offset() == 1000);
    CHECK(drain(rest, ec) == f.im.layer.substr(1000));
    CHECK_FALSE(ec);
    auto reqs = f.proxy.requests();
    REQUIRE(!reqs.empty());
    CHECK(reqs.back().range == "bytes=1000-");
}

TEST_CASE("http: a server that ignores Range: the reader starts at 0")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    f.proxy.ignore_range(true);
    auto r = t.open_blob(f.ref, f.layer, 5000, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.offset() == 0);
    CHECK(r.size() == f.im.layer.size());
    CHECK(drain(r, ec) == f.im.layer);
}

TEST_CASE("http: a body longer than its Content-Length is a protocol error")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    f.proxy.trailing_bytes_on_blobs("GARBAGE");
    auto r = t.open_blob(f.ref, f.layer, 0, ec);
    REQUIRE_FALSE(ec);
    auto got = drain(r, ec);
    CHECK(got == f.im.layer);
    CHECK(ec == error::protocol_error);
}

TEST_CASE("http: manifests over the size cap are too_large, with or without Content-Length")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    f.proxy.oversize_manifests(max_manifest_size + 1, false);
    (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
    CHECK(ec == error::too_large);
    f.proxy.oversize_manifests(max_manifest_size + 1, true);
    (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
    CHECK(ec == error::too_large);
    f.proxy.oversize_manifests(max_manifest_size, true); // exactly the cap is fine
    auto m = t.fetch_manifest(f.ref, media_types::default_accept, ec);
    CHECK_FALSE(ec);
    CHECK(m.bytes.size() == max_manifest_size);
}

TEST_CASE("http: connections are kept alive and reused")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    http_transport t(test_options());
    error_code ec;
    for (int i = 0; i < 5; ++i) {
        (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        auto r = t.open_blob(f.ref, f.layer, 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec).size() == f.im.layer.size());
    }
    CHECK(f.proxy.connections() == 1);

    SUBCASE("an abandoned reader closes its connection")
    {
        {
            auto r = t.open_blob(f.ref, f.layer, 0, ec);
            std::array<std::byte, 10> b{};
            CHECK(r.read_some(b, ec) == 10);
        }
        (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(f.proxy.connections() == 2);
    }
}

TEST_CASE("http: at most max_connections_per_host at once / others wait for a free one")
{
    OCISTORE_REQUIRE_REGISTRY();
    faulty_registry f;
    auto o = test_options();
    o.max_connections_per_host = 1;
    o.attempt_timeout = 1s;
    o.overall_timeout = 2s;
    o.retry.max_attempts = 1;
    http_transport t(o);
    error_code ec;
    auto held = t.open_blob(f.ref, f.layer, 0, ec);
    REQUIRE_FALSE(ec);
    // The only connection is busy: a second request times out waiting for it.
    (void)t.fetch_manifest(f.ref, media_types::default_accept, ec);
    CHECK(ec == error::timeout);
    // Once the reader has read its body, the connection is free again.
    wait_counter done;
    bounded_thread other([&] {
        error_code e2;
        auto m = t.fetch_manifest(f.ref, media_types::default_accept, e2);
        CHECK_FALSE(e2);
        done.arrive();
    });
    CHECK_FALSE(done.wait_for_count(1, must_not_happen_for));
    CHECK(drain(held, ec).size() == f.im.layer.size());
    CHECK(done.wait_for_count(1, must_happen_within));
    other.join();
}

TEST_CASE("http: redirects: no Authorization to another host, Range kept")
{
    OCISTORE_REQUIRE_REGISTRY();
    registry_config cfg;
    cfg.auth = registry_auth::htpasswd;
    registry_fixture reg(cfg);
    auto basic = "Basic " + base64_std(cfg.user + ":" + cfg.password);
    registry_pusher push("127.0.0.1", reg.port(), false, basic);
    auto im = push.push_image("test/redirect", "v1", random_bytes(50000, 3));
    fault_proxy proxy("127.0.0.1", reg.port());
    proxy.redirect_blobs("localhost", basic);

    auto o = test_options();
    o.credentials->set(proxy.host(), credentials{cfg.user, cfg.password, {}});
    http_transport t(o);
    auto ref = ref_of(proxy.host(), "test/redirect:v1");
    error_code ec;
    (void)t.fetch_manifest(ref, media_types::default_accept, ec); // learns that the registry wants Basic
    REQUIRE_FALSE(ec);
    auto r = t.open_blob(ref, digest::parse(im.layer_digest), 100, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.offset() == 100);
    CHECK(drain(r, ec) == im.layer.substr(100));
    CHECK_FALSE(ec);

    bool saw_redirected = false, saw_authorized_blob = false;
    for (auto const& req : proxy.requests()) {
        INFO(req.method << " " << req.host << req.target);
        if (req.target.rfind("/_redirected/", 0) == 0) {
            saw_redirected = true;
            CHECK(req.host.rfind("localhost:", 0) == 0);
            CHECK(req.authorization.empty());
            CHECK(req.range == "bytes=100-");
        } else if (req.target.find("/blobs/") != std::string::npos) {
            CHECK(req.authorization == basic); // the registry itself did get the credentials
            CHECK(req.range == "bytes=100-");
            saw_authorized_blob = true;
        }
    }
    CHECK(saw_redirected);
    CHECK(saw_authorized_blob);
}

TEST_CASE("http: redirect loops end after 10 hops / plain-HTTP redirects need an insecure host")
{
    std::atomic<int> hits{0};
    loopback_http_server loop([&](http_request const& req) {
        ++hits;
        reply r;
        r.response.result(http::status::found);
        r.response.set(http::field::location, std::string(req.target()) + "x");
        return r;
    });
    http_transport t(test_options());
    auto ref = ref_of("127.0.0.1:" + std::to_string(loop.port()), "a/b:c");
    error_code ec;
    (void)t.fetch_manifest(ref, media_types::default_accept, ec);
    CHECK(ec == error::protocol_error);
    CHECK(hits == 11);

    loopback_http_server downgrade([&](http_request const&) {
        reply r;
        r.response.result(http::status::temporary_redirect);
        r.response.set(http::field::location, "http://10.255.255.1/elsewhere");
        return r;
    });
    (void)t.fetch_manifest(ref_of("127.0.0.1:" + std::to_string(downgrade.port()), "a/b:c"), media_types::default_accept,
                           ec);
    CHECK(ec == error::protocol_error);
}

TEST_CASE("http: connection failures and timeouts")
{
    auto o = test_options();
    o.retry.max_attempts = 2;
    o.attempt_timeout = 300ms;
    o.overall_timeout = 3s;
    http_transport t(o);
    error_code ec;
    SUBCASE("nothing listens: connection_failed")
    {
        (void)t.fetch_manifest(ref_of("127.0.0.1:" + std::to_string(free_port()), "a/b:c"), media_types::default_accept,
                               ec);
        CHECK(ec == error::connection_failed);
        CHECK(ec == condition::transient);
    }
    SUBCASE("no answer within the attempt timeout: timeout, retried")
    {
        std::atomic<int> hits{0};
        loopback_http_server slow([&](http_request const&) {
            ++hits;
            std::this_thread::sleep_for(1500ms);
            return reply{};
        });
        auto t0 = steady_clock::now();
        (void)t.fetch_manifest(ref_of("127.0.0.1:" + std::to_string(slow.port()), "a/b:c"), media_types::default_accept,
                               ec);
        CHECK(ec == error::timeout);
        CHECK(steady_clock::now() - t0 < 1500ms);
        CHECK(hits == 2);
    }
    SUBCASE("a header beyond max_header_size: protocol_error")
    {
        loopback_http_server big([&](http_request const&) {
            reply r;
            for (int i = 0; i < 4; ++i) r.response.set("X-Filler-" + std::to_string(i), std::string(30000, 'a'));
            return r;
        });
        (void)t.fetch_manifest(ref_of("127.0.0.1:" + std::to_string(big.port()), "a/b:c"), media_types::default_accept,
                               ec);
        CHECK(ec == error::protocol_error);
    }
    SUBCASE("HTTPS by default: a plain-HTTP server fails the TLS handshake")
    {
        OCISTORE_REQUIRE_REGISTRY();
        registry_fixture reg;
        http_transport secure(test_options({}));
        (void)secure.fetch_manifest(ref_of(reg.host(), "a/b:c"), media_types::default_accept, ec);
        CHECK(ec);
        CHECK(ec != condition::not_found);
    }
}

TEST_CASE("http: body framings: chunked and until-close blobs / HEAD without a digest header")
{
    std::string const blob = random_bytes(150000, 21);
    std::string const manifest = R"({"schemaVersion":2})";
    loopback_http_server srv([&](http_request const& req) {
        reply r;
        std::string target(req.target());
        if (target.find("/manifests/") != std::string::npos) {
            r.response.set(http::field::content_type, "application/vnd.oci.image.manifest.v1+json");
            r.response.body() = manifest; // no Docker-Content-Digest
        } else if (target.find("chunked") != std::string::npos) {
            r.response.body() = blob;
            r.response.chunked(true);
            r.keep_framing = true;
        } else {
            r.response.body() = blob; // neither Content-Length nor chunked: ends at close
            r.keep_framing = true;
            r.close = true;
        }
        return r;
    });
    http_transport t(test_options());
    auto host = "127.0.0.1:" + std::to_string(srv.port());
    auto d = digest::parse(sha256_digest(blob));
    error_code ec;
    for (auto repo : {"a/chunked:v1", "a/close:v1"}) {
        INFO(repo);
        auto r = t.open_blob(ref_of(host, repo), d, 0, ec);
        REQUIRE_FALSE(ec);
        CHECK_FALSE(r.size());
        CHECK(drain(r, ec, 1000) == blob);
        CHECK_FALSE(ec);
    }
    auto h = t.resolve(ref_of(host, "a/b:v1"), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(h.manifest_digest.str() == sha256_digest(manifest)); // hashed from a GET
    CHECK(h.size == manifest.size());
    auto pinned = ref_of(host, "a/b@" + sha256_digest("x"));
    CHECK(t.resolve(pinned, media_types::default_accept, ec).manifest_digest == *pinned.digest());
}

TEST_CASE("http: a body that trickles below the minimum rate is a timeout")
{
    std::string const blob = random_bytes(4000, 23);
    loopback_http_server srv([&](http_request const&) {
        reply r;
        r.response.body() = blob;
        r.trickle = 20;
        r.trickle_interval = 50ms;
        return r;
    });
    auto o = test_options();
    o.stall_min_bytes_per_second = 10000;
    o.stall_window = 400ms;
    http_transport t(o);
    error_code ec;
    auto r = t.open_blob(ref_of("127.0.0.1:" + std::to_string(srv.port()), "a/b:c"),
                         digest::parse(sha256_digest(blob)), 0, ec);
    REQUIRE_FALSE(ec);
    auto t0 = steady_clock::now();
    auto got = drain(r, ec);
    CHECK(ec == error::timeout);
    CHECK(got.size() < blob.size());
    CHECK(steady_clock::now() - t0 < 3s);

    SUBCASE("with stall detection off, a slow body arrives whole")
    {
        o.stall_min_bytes_per_second = 0;
        http_transport patient(o);
        std::string small = blob.substr(0, 200);
        loopback_http_server slow([&](http_request const&) {
            reply rr;
            rr.response.body() = small;
            rr.trickle = 50;
            rr.trickle_interval = 100ms;
            return rr;
        });
        auto r2 = patient.open_blob(ref_of("127.0.0.1:" + std::to_string(slow.port()), "a/b:c"),
                                    digest::parse(sha256_digest(small)), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r2, ec) == small);
        CHECK_FALSE(ec);
    }
}

TEST_CASE("http: concurrent downloads through one transport")
{
    OCISTORE_REQUIRE_REGISTRY();
    registry_fixture reg;
    registry_pusher push("127.0.0.1", reg.port());
    std::vector<registry_pusher::image> images;
    for (int i = 0; i < 4; ++i)
        images.push_back(push.push_image("test/concurrent", "v" + std::to_string(i), random_bytes(500000, 100 + i)));
    auto o = test_options();
    o.max_connections_per_host = 2;
    http_transport t(o);
    std::atomic<int> good{0};
    {
        std::vector<std::unique_ptr<bounded_thread>> threads;
        for (int i = 0; i < 8; ++i) {
            threads.push_back(std::make_unique<bounded_thread>([&, i] {
                auto const& im = images[i % 4];
                auto ref = ref_of(reg.host(), "test/concurrent:v" + std::to_string(i % 4));
                error_code e;
                auto m = t.fetch_manifest(ref, media_types::default_accept, e);
                if (e || m.bytes != im.manifest) return;
                auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, e);
                if (e) return;
                if (drain(r, e, 10000) == im.layer && !e) ++good;
            }));
        }
        for (auto& th : threads) th->join(60s, "a download thread");
    }
    CHECK(good == 8);
}

TEST_CASE("http: a multi-layer, multi-platform index pushed by skopeo from an OCI layout")
{
    OCISTORE_REQUIRE_REGISTRY();
    if (!have_program("skopeo")) {
        WARN_MESSAGE(false, "skopeo is not installed: skipped");
        return;
    }
    registry_fixture reg;
    temp_dir dir("ocistore-layout");
    oci_layout_writer w(dir.path() / "layout");
    // One image per platform, three layers each (the first shared by all), variants included.
    auto shared = w.add_blob(random_bytes(64 * 1024, 31), std::string(media_types::oci_layer_tar));
    platform const platforms[] = {{"linux", "amd64", "", "", {}},
                                  {"linux", "arm64", "v8", "", {}},
                                  {"linux", "arm", "v7", "", {}},
                                  {"linux", "arm", "v6", "", {}}};
    std::vector<descriptor> manifests;
    std::vector<std::vector<descriptor>> layers_of;
    unsigned seed = 100;
    for (auto const& p : platforms) {
        std::vector<descriptor> layers{shared};
        for (int i = 0; i < 2; ++i)
            layers.push_back(w.add_blob(random_bytes(16 * 1024 + seed, seed), std::string(media_types::oci_layer_tar))),
                ++seed;
        std::vector<digest> diff_ids;
        for (auto const& l : layers) diff_ids.push_back(l.digest);
        auto manifest = w.add_manifest(w.add_config(diff_ids, p), layers);
        manifest.platform = p;
        manifests.push_back(manifest);
        layers_of.push_back(layers);
    }
    auto index = w.add_index(manifests);
    w.tag(index, "v1");
    skopeo_push(w.path(), "v1", reg.host() + "/test/skopeo:v1");

    http_transport t(test_options());
    auto ref = ref_of(reg.host(), "test/skopeo:v1");
    error_code ec;
    auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.media_type == media_types::oci_index);
    CHECK(m.bytes == read_text_file(w.blob_path(index.digest)));
    auto h = t.resolve(ref, media_types::default_accept, ec);
    CHECK_FALSE(ec);
    CHECK(h.manifest_digest == index.digest);
    // Pick each platform from the served index, then fetch its manifest and every layer.
    auto const doc = parse_manifest(m.bytes, m.media_type);
    for (std::size_t i = 0; i < std::size(platforms); ++i) {
        CAPTURE(platforms[i].to_string());
        auto const chosen = select_manifest(doc.index(), platforms[i]);
        CHECK(chosen.digest == manifests[i].digest);
        auto pm = t.fetch_manifest(ref.with_digest(chosen.digest), media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(pm.bytes == read_text_file(w.blob_path(chosen.digest)));
        auto const layers = parse_manifest(pm.bytes, pm.media_type).manifest().layers;
        REQUIRE(layers.size() == 3);
        for (std::size_t l = 0; l < layers.size(); ++l) {
            CHECK(layers[l].digest == layers_of[i][l].digest);
            auto r = t.open_blob(ref, layers[l].digest, 0, ec);
            REQUIRE_FALSE(ec);
            CHECK(drain(r, ec) == read_text_file(w.blob_path(layers[l].digest)));
        }
    }
    // arm/v8 (32-bit) falls back to the v7 image.
    CHECK(select_manifest(doc.index(), platform::parse("linux/arm/v8")).digest == manifests[2].digest);
    // A manifest media type missing from Accept: distribution answers 404.
    std::string_view only_docker[] = {media_types::docker_manifest};
    (void)t.fetch_manifest(ref, only_docker, ec);
    CHECK(ec == error::not_found);
}

TEST_CASE("http: a malformed Docker config is reported, a missing one is not")
{
    temp_dir dir("ocistore-docker-config");
    {
        ocistore_test::env_guard env({{"DOCKER_CONFIG", dir.path().c_str()}});
        CHECK_NOTHROW(http_transport{});  // no config.json: anonymous
        write_text_file(dir / "config.json", "{\"auths\": [1, 2");
        CHECK_THROWS_WITH_AS(http_transport{}, doctest::Contains("config.json"), system_error);
        try {
            http_transport t;
        } catch (system_error const& e) {
            CHECK(e.code() == condition::invalid_input);
        }
        http_options explicit_store;
        explicit_store.credentials = credential_store{};  // given explicitly: the file is not read
        CHECK_NOTHROW(http_transport{explicit_store});
    }
}
