// http_transport with mirrors (a pull-through registry) and HTTP proxies (CONNECT and absolute form).
#include <ocistore/transport/http_transport.hpp>

#include <support/fault_proxy.hpp>
#include <support/http_test.hpp>
#include <support/registry_fixture.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore_test;
using namespace std::chrono_literals;

namespace {

http_options test_options(std::vector<std::string> insecure = {"127.0.0.1", "localhost"})
{
    return ocistore_test::loopback_options(std::move(insecure));
}

using ocistore_test::drain;


/// A primary registry and a pull-through mirror of it, each behind a counting fault_proxy.
struct mirrored {
    registry_fixture primary;
    fault_proxy primary_front{"127.0.0.1", primary.port()};
    registry_fixture mirror{[this] {
        registry_config c;
        c.proxy_remote_url = primary.url();
        return c;
    }()};
    fault_proxy mirror_front{"127.0.0.1", mirror.port()};
    registry_pusher::image im;
    image_reference ref; ///< names the primary (through its counting front)

    mirrored()
    {
        registry_pusher push("127.0.0.1", primary.port());
        im = push.push_image("test/mirrored", "v1", random_bytes(40000, 11));
        ref = image_reference::parse(primary_front.host() + "/test/mirrored:v1");
    }

    http_options options(bool trusted) const
    {
        auto o = test_options();
        o.mirrors[ref.registry()] = {mirror_endpoint{"http://" + mirror_front.host(), trusted}};
        return o;
    }
};

} // namespace

TEST_CASE("http: mirrors serve blobs and digest-pinned manifests / tags only from trusted ones")
{
    OCISTORE_REQUIRE_REGISTRY();
    mirrored m;
    error_code ec;
    SUBCASE("untrusted mirror")
    {
        http_transport t(m.options(false));
        auto r = t.open_blob(m.ref, digest::parse(m.im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == m.im.layer);
        CHECK(m.mirror_front.count("/blobs/") == 1);
        CHECK(m.primary_front.count("/blobs/") == 0);

        auto pinned = m.ref.with_digest(digest::parse(m.im.manifest_digest));
        auto pm = t.fetch_manifest(pinned, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(pm.bytes == m.im.manifest);
        CHECK(m.mirror_front.count("/manifests/sha256:") == 1);
        CHECK(m.primary_front.count("/manifests/") == 0);

        auto tagged = t.fetch_manifest(m.ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(tagged.bytes == m.im.manifest);
        CHECK(m.mirror_front.count("/manifests/v1") == 0);
        CHECK(m.primary_front.count("/manifests/v1") == 1);
        (void)t.resolve(m.ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(m.mirror_front.count("/manifests/v1") == 0);
    }
    SUBCASE("trusted mirror")
    {
        http_transport t(m.options(true));
        auto tagged = t.fetch_manifest(m.ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(tagged.bytes == m.im.manifest);
        CHECK(m.mirror_front.count("/manifests/v1") == 1);
        CHECK(m.primary_front.count("/manifests/") == 0);
    }
}

TEST_CASE("http: a failing mirror falls back to the next endpoint")
{
    OCISTORE_REQUIRE_REGISTRY();
    mirrored m;
    error_code ec;
    SUBCASE("mirror down")
    {
        auto o = test_options();
        o.mirrors[m.ref.registry()] = {mirror_endpoint{"http://127.0.0.1:" + std::to_string(free_port())},
                                       mirror_endpoint{"http://" + m.mirror_front.host()}};
        http_transport t(o);
        auto r = t.open_blob(m.ref, digest::parse(m.im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == m.im.layer);
        CHECK(m.mirror_front.count("/blobs/") == 1); // the second mirror
        CHECK(m.primary_front.count("/blobs/") == 0);
    }
    SUBCASE("mirror answers 500, then 404: the primary serves")
    {
        http_transport t(m.options(false));
        m.mirror_front.fail_next("/blobs/", 500, 1);
        auto r = t.open_blob(m.ref, digest::parse(m.im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == m.im.layer);
        CHECK(m.mirror_front.count("/blobs/") == 1); // mirrors are not retried
        CHECK(m.primary_front.count("/blobs/") == 1);
        m.mirror_front.fail_next("/manifests/", 404, 1);
        auto pm = t.fetch_manifest(m.ref.with_digest(digest::parse(m.im.manifest_digest)), media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(pm.bytes == m.im.manifest);
        CHECK(m.primary_front.count("/manifests/") == 1);
    }
    SUBCASE("every endpoint fails: the primary's error")
    {
        http_transport t(m.options(false));
        (void)t.open_blob(m.ref, digest::parse(sha256_digest("absent")), 0, ec);
        CHECK(ec == error::not_found);
        CHECK(m.primary_front.count("/blobs/") == 1);
    }
}

TEST_CASE("http: mirror configuration errors are reported at construction")
{
    auto failure_of = [](std::string url) -> std::pair<error_code, std::string> {
        auto o = test_options({});
        o.mirrors["docker.io"] = {mirror_endpoint{std::move(url)}};
        try {
            http_transport t(o);
        } catch (system_error const& e) {
            return {e.code(), e.what()};
        }
        return {};
    };
    auto [ec1, why1] = failure_of("http://mirror.example");
    CHECK(ec1 == error::invalid_argument);
    CHECK(why1.find("insecure_hosts") != std::string::npos);
    CHECK(why1.find("http://mirror.example") != std::string::npos);
    auto [ec2, why2] = failure_of("ftp://mirror.example");
    CHECK(ec2 == error::invalid_argument);
    CHECK(why2.find("not an http(s) URL") != std::string::npos);
    auto [ec3, why3] = failure_of("https://user:hunter2@mirror.example");
    CHECK(ec3 == error::invalid_argument);
    CHECK(why3.find("hunter2") == std::string::npos);
    CHECK(failure_of("https://mirror.example/prefix").first == error_code{});

    auto o = test_options({});
    o.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_WITH_AS(http_transport{o}, doctest::Contains("/nonexistent/ca.pem"), system_error);
}

TEST_CASE("http: the registry's credentials never reach a mirror on another host")
{
    OCISTORE_REQUIRE_REGISTRY();
    registry_config pc;
    pc.auth = registry_auth::htpasswd;
    registry_fixture primary(pc);
    auto basic = "Basic " + base64_std(pc.user + ":" + pc.password);
    registry_pusher push("127.0.0.1", primary.port(), false, basic);
    auto im = push.push_image("test/private", "v1", random_bytes(20000, 13));
    // The mirror wants Basic auth too, and would accept the registry's credentials.
    registry_config mc;
    mc.auth = registry_auth::htpasswd;
    mc.proxy_remote_url = primary.url();
    mc.proxy_username = pc.user;
    mc.proxy_password = pc.password;
    registry_fixture mirror(mc);
    fault_proxy mirror_front("127.0.0.1", mirror.port());
    auto mirror_host = "localhost:" + std::to_string(mirror_front.port());

    auto o = test_options();
    o.credentials->set(primary.host(), credentials{pc.user, pc.password, {}});
    o.mirrors[primary.host()] = {mirror_endpoint{"http://" + mirror_host, true}};
    auto ref = image_reference::parse(primary.host() + "/test/private:v1");
    error_code ec;

    SUBCASE("no credentials for the mirror: it is asked anonymously, then the registry serves")
    {
        http_transport t(o);
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im.layer);
        auto seen = mirror_front.requests();
        CHECK(seen.size() >= 2);
        for (auto const& req : seen) {
            INFO(req.method << " " << req.target);
            CHECK(req.authorization.empty());
        }
    }
    SUBCASE("the mirror's own credentials are used for it")
    {
        o.credentials->set(mirror_host, credentials{pc.user, pc.password, {}});
        http_transport t(o);
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im.layer);
        auto seen = mirror_front.requests();
        REQUIRE_FALSE(seen.empty());
        CHECK(seen.back().authorization == basic);
    }
}

TEST_CASE("http: HTTPS through a proxy with CONNECT / HTTP in absolute form / NO_PROXY")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-pki");
    test_pki pki(dir.path());
    registry_config tc;
    tc.tls = true;
    registry_fixture tls_reg(tc, &pki);
    registry_pusher push_tls("127.0.0.1", tls_reg.port(), true);
    auto im_tls = push_tls.push_image("test/proxied", "v1", random_bytes(30000, 17));
    registry_fixture plain;
    registry_pusher push_plain("127.0.0.1", plain.port());
    auto im_plain = push_plain.push_image("test/proxied", "v1", random_bytes(30000, 19));
    error_code ec;

    SUBCASE("CONNECT for https")
    {
        forward_proxy fp;
        auto o = test_options({});
        o.ca_file = pki.ca_cert.string();
        o.proxy = proxy_config{"", fp.url(), {}, true};
        http_transport t(o);
        auto ref = image_reference::parse(tls_reg.host() + "/test/proxied:v1");
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im_tls.manifest);
        auto r = t.open_blob(ref, digest::parse(im_tls.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im_tls.layer);
        auto seen = fp.requests();
        REQUIRE_FALSE(seen.empty());
        CHECK(seen.front().method == "CONNECT");
        CHECK(seen.front().target == tls_reg.host());
    }
    SUBCASE("absolute-form requests for plain http")
    {
        forward_proxy fp;
        auto o = test_options({"127.0.0.1"});
        o.proxy = proxy_config{fp.url(), "", {}, true};
        http_transport t(o);
        auto ref = image_reference::parse(plain.host() + "/test/proxied:v1");
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im_plain.manifest);
        auto seen = fp.requests();
        REQUIRE(seen.size() == 1);
        CHECK(seen.front().target == "http://" + plain.host() + "/v2/test/proxied/manifests/v1");
    }
    SUBCASE("proxy credentials from the proxy URL")
    {
        forward_proxy fp("Basic " + base64_std("pxuser:px pass"));
        auto o = test_options({"127.0.0.1"});
        o.proxy = proxy_config{"http://pxuser:px%20pass@127.0.0.1:" + std::to_string(fp.port()), "", {}, true};
        http_transport t(o);
        auto ref = image_reference::parse(plain.host() + "/test/proxied:v1");
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        o.proxy = proxy_config{fp.url(), fp.url(), {}, true};
        http_transport without(o);
        (void)without.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized); // 407
        auto ot = test_options({});
        ot.proxy = o.proxy;
        ot.ca_file = pki.ca_cert.string();
        http_transport without_tls(ot);
        (void)without_tls.fetch_manifest(image_reference::parse(tls_reg.host() + "/test/proxied:v1"),
                                         media_types::default_accept, ec);
        CHECK(ec == error::unauthorized); // 407 to CONNECT
    }
    SUBCASE("NO_PROXY")
    {
        forward_proxy fp;
        auto o = test_options({"127.0.0.1"});
        o.proxy = proxy_config{fp.url(), fp.url(), {"127.0.0.1"}, true};
        http_transport t(o);
        auto m = t.fetch_manifest(image_reference::parse(plain.host() + "/test/proxied:v1"), media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im_plain.manifest);
        CHECK(fp.requests().empty());
    }
}
