// http_transport against real registries: TLS verification, htpasswd Basic auth, token auth.
#include <ocistore/transport/http_transport.hpp>

#include <support/http_test.hpp>
#include <support/registry_fixture.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore_test;
using namespace std::chrono_literals;

namespace {

http_options test_options(std::vector<std::string> insecure = {})
{
    return ocistore_test::loopback_options(std::move(insecure));
}

using ocistore_test::drain;


} // namespace

TEST_CASE("http: TLS: an unknown CA fails verification / the CA file makes it work")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-pki");
    test_pki pki(dir.path());
    registry_config cfg;
    cfg.tls = true;
    registry_fixture reg(cfg, &pki);
    registry_pusher push("127.0.0.1", reg.port(), true);
    auto im = push.push_image("test/tls", "v1", random_bytes(70000, 5));
    auto ref = image_reference::parse(reg.host() + "/test/tls:v1");
    error_code ec;

    SUBCASE("system CA store only: certificate verify failed, not transient")
    {
        http_transport t(test_options());
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE(ec);
        CHECK(ec.message().find("certificate verify failed") != std::string::npos);
        CHECK(ec != condition::transient);
    }
    SUBCASE("with ca_file: manifest and blob by IP and by host name")
    {
        auto o = test_options();
        o.ca_file = pki.ca_cert.string();
        http_transport t(o);
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 10, ec);
        REQUIRE_FALSE(ec);
        CHECK(r.offset() == 10);
        CHECK(drain(r, ec) == im.layer.substr(10));
        CHECK_FALSE(ec);
        auto by_name = image_reference::parse("localhost:" + std::to_string(reg.port()) + "/test/tls:v1");
        auto m2 = t.fetch_manifest(by_name, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(m2.bytes == im.manifest);
    }
    SUBCASE("a trusted certificate for another name fails host name verification")
    {
        registry_config wrong;
        wrong.tls = true;
        wrong.tls_cert = pki.wrong_name_cert;
        wrong.tls_key = pki.wrong_name_key;
        registry_fixture other(wrong, &pki);
        auto o = test_options();
        o.ca_file = pki.ca_cert.string();
        http_transport t(o);
        (void)t.fetch_manifest(image_reference::parse(other.host() + "/test/tls:v1"), media_types::default_accept, ec);
        REQUIRE(ec);
        CHECK(ec.message().find("certificate verify failed") != std::string::npos);
        CHECK(ec != condition::transient);
    }
    SUBCASE("a missing CA file is a configuration error")
    {
        auto o = test_options();
        o.ca_file = (dir.path() / "missing.pem").string();
        CHECK_THROWS_AS(http_transport{o}, system_error);
    }
}

TEST_CASE("http: htpasswd Basic auth: right, wrong and missing credentials")
{
    OCISTORE_REQUIRE_REGISTRY();
    registry_config cfg;
    cfg.auth = registry_auth::htpasswd;
    registry_fixture reg(cfg);
    registry_pusher push("127.0.0.1", reg.port(), false, "Basic " + base64_std(cfg.user + ":" + cfg.password));
    auto im = push.push_image("test/basic", "v1", random_bytes(1000, 1));
    auto ref = image_reference::parse(reg.host() + "/test/basic:v1");
    error_code ec;

    SUBCASE("right")
    {
        auto o = test_options({"127.0.0.1"});
        o.credentials->set(reg.host(), credentials{cfg.user, cfg.password, {}});
        http_transport t(o);
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im.layer);
        auto h = t.resolve(ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(h.manifest_digest.str() == im.manifest_digest);
    }
    SUBCASE("wrong")
    {
        auto o = test_options({"127.0.0.1"});
        o.credentials->set(reg.host(), credentials{cfg.user, "wrong", {}});
        http_transport t(o);
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
        CHECK(ec == condition::unauthorized);
    }
    SUBCASE("missing")
    {
        http_transport t(test_options({"127.0.0.1"}));
        (void)t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        CHECK(ec == error::unauthorized);
    }
}

TEST_CASE("http: token auth: anonymous, credentials, caching and refresh")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-pki");
    test_pki pki(dir.path());
    token_server tokens(pki);
    tokens.add_user("alice", "wonderland");
    registry_config cfg;
    cfg.auth = registry_auth::token;
    cfg.token_realm = tokens.realm();
    cfg.token_rootcertbundle = pki.token_cert;
    registry_fixture reg(cfg);
    registry_pusher push("127.0.0.1", reg.port(), false, "Bearer " + tokens.issue("test/tok", {"pull", "push"}));
    auto im = push.push_image("test/tok", "v1", random_bytes(3000, 2));
    registry_pusher push2("127.0.0.1", reg.port(), false, "Bearer " + tokens.issue("test/other", {"pull", "push"}));
    auto im2 = push2.push_image("test/other", "v1", random_bytes(3000, 4));
    auto ref = image_reference::parse(reg.host() + "/test/tok:v1");
    int const base_hits = tokens.hits();
    error_code ec;

    auto with_alice = [&] {
        auto o = test_options({"127.0.0.1"});
        o.credentials->set(reg.host(), credentials{"alice", "wonderland", {}});
        return o;
    };

    SUBCASE("credentials: one token per repository, cached across requests")
    {
        http_transport t(with_alice());
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        CHECK(tokens.hits() == base_hits + 1);
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im.layer);
        (void)t.resolve(ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(tokens.hits() == base_hits + 1);
        // The token server saw Basic credentials and the repository's pull scope.
        auto auths = tokens.authorizations();
        CHECK(auths.back() == "Basic " + base64_std("alice:wonderland"));
        CHECK(tokens.scopes().back() == "repository:test/tok:pull");
        // Another repository needs its own token.
        auto m2 = t.fetch_manifest(image_reference::parse(reg.host() + "/test/other:v1"), media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(m2.bytes == im2.manifest);
        CHECK(tokens.hits() == base_hits + 2);
        // Copies share the cache.
        http_transport copy = t;
        (void)copy.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK_FALSE(ec);
        CHECK(tokens.hits() == base_hits + 2);
    }
    SUBCASE("a token the registry rejects is refreshed once")
    {
        tokens.issue_expired = 1;
        http_transport t(with_alice());
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        CHECK(tokens.hits() == base_hits + 2);
    }
    SUBCASE("tokens that never work: unauthorized after one refresh")
    {
        tokens.issue_expired = 100;
        http_transport t(with_alice());
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
        CHECK(tokens.hits() == base_hits + 2); // the first token, then one refresh
        // A later request tries again with a new token (and fails again).
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
        tokens.issue_expired = 0;
    }
    SUBCASE("an identity token is exchanged with an OAuth2 POST")
    {
        tokens.set_refresh_token("refresh-me");
        auto o = test_options({"127.0.0.1"});
        o.credentials->set(reg.host(), credentials{"<token>", "", "refresh-me"});
        http_transport t(o);
        auto m = t.fetch_manifest(ref, media_types::default_accept, ec);
        REQUIRE_FALSE(ec);
        CHECK(m.bytes == im.manifest);
        CHECK(tokens.authorizations().back().empty()); // the refresh token went in the form, not a header
        auto o2 = test_options({"127.0.0.1"});
        o2.credentials->set(reg.host(), credentials{"<token>", "", "stale"});
        http_transport t2(o2);
        (void)t2.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
    }
    SUBCASE("wrong credentials: the token server's 401 is unauthorized")
    {
        auto o = test_options({"127.0.0.1"});
        o.credentials->set(reg.host(), credentials{"alice", "nope", {}});
        http_transport t(o);
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
    }
    SUBCASE("anonymous without pull access: unauthorized")
    {
        http_transport t(test_options({"127.0.0.1"}));
        (void)t.fetch_manifest(ref, media_types::default_accept, ec);
        CHECK(ec == error::unauthorized);
        CHECK(tokens.authorizations().back().empty());
    }
    SUBCASE("anonymous rejected by the token server: unauthorized")
    {
        tokens.reject_anonymous = true;
        http_transport t(test_options({"127.0.0.1"}));
        (void)t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        CHECK(ec == error::unauthorized);
        tokens.reject_anonymous = false;
    }
    SUBCASE("anonymous pull allowed")
    {
        tokens.anonymous_pull = true;
        http_transport t(test_options({"127.0.0.1"}));
        auto r = t.open_blob(ref, digest::parse(im.layer_digest), 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec) == im.layer);
        tokens.anonymous_pull = false;
    }
    SUBCASE("a plain-HTTP realm on a host that is not insecure is refused")
    {
        // The registry (127.0.0.1) is insecure, the realm host "127.0.0.1" too; list only
        // "localhost" and reach the registry by that name: the realm is then not allowed.
        auto o = test_options({"localhost"});
        o.credentials->set("localhost:" + std::to_string(reg.port()), credentials{"alice", "wonderland", {}});
        http_transport t(o);
        (void)t.fetch_manifest(image_reference::parse("localhost:" + std::to_string(reg.port()) + "/test/tok:v1"),
                               media_types::default_accept, ec);
        CHECK(ec == error::protocol_error);
        CHECK(tokens.hits() == base_hits);
    }
}
