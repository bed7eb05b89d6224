#include <ocistore/http/proxy_config.hpp>

#include <support/env_guard.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

using namespace ocistore;

namespace {

using ocistore_test::env_guard;

env_guard clear_proxy_env()
{
    return env_guard{{"http_proxy", nullptr}, {"HTTP_PROXY", nullptr}, {"https_proxy", nullptr},
                     {"HTTPS_PROXY", nullptr}, {"no_proxy", nullptr}, {"NO_PROXY", nullptr},
                     {"REQUEST_METHOD", nullptr}};
}

proxy_config with_no_proxy(std::vector<std::string> list)
{
    proxy_config c;
    c.http_proxy = "http://proxy:3128";
    c.https_proxy = "http://sproxy:3129";
    c.no_proxy = std::move(list);
    return c;
}

} // namespace

TEST_CASE("proxy_for picks the proxy of the scheme")
{
    proxy_config c;
    c.http_proxy = "http://p1:3128";
    c.https_proxy = "http://p2:3129";
    CHECK(c.proxy_for("http", "registry.example.com", 80) == std::optional<std::string>("http://p1:3128"));
    CHECK(c.proxy_for("https", "registry.example.com", 443) == std::optional<std::string>("http://p2:3129"));
    CHECK(c.proxy_for("HTTPS", "registry.example.com", 443) == std::optional<std::string>("http://p2:3129"));
    CHECK_FALSE(c.proxy_for("ftp", "registry.example.com", 21));
    CHECK_FALSE(c.proxy_for("", "registry.example.com", 21));
    c.https_proxy.clear();
    CHECK_FALSE(c.proxy_for("https", "registry.example.com", 443)); // no fallback to http_proxy
    CHECK_FALSE(proxy_config{}.proxy_for("http", "x", 80));
}

TEST_CASE("NO_PROXY matching")
{
    struct row {
        std::vector<std::string> no_proxy;
        char const* host;
        std::uint16_t port;
        bool proxied;
    };
    row const rows[] = {
        // nothing listed
        {{}, "example.com", 443, true},
        // '*'
        {{"*"}, "example.com", 443, false},
        {{"foo.org", " * "}, "example.com", 443, false},
        {{"*.com"}, "example.com", 443, false}, // "*." prefix: domain suffix
        // domains: the host itself and its subdomains, any case, optional leading '.'
        {{"example.com"}, "example.com", 443, false},
        {{"example.com"}, "foo.example.com", 443, false},
        {{"example.com"}, "a.b.example.com", 443, false},
        {{"example.com"}, "FOO.Example.COM", 443, false},
        {{"EXAMPLE.com"}, "foo.example.com", 443, false},
        {{".example.com"}, "foo.example.com", 443, false},
        {{".example.com"}, "example.com", 443, false},
        {{"*.example.com"}, "example.com", 443, false},
        {{"*.example.com"}, "x.example.com", 443, false},
        {{"example.com."}, "x.example.com", 443, false},
        {{"example.com"}, "x.example.com.", 443, false},
        {{"example.com"}, "badexample.com", 443, true},
        {{"example.com"}, "example.com.evil.org", 443, true},
        {{"example.com"}, "example.co", 443, true},
        {{".com"}, "example.com", 443, false},
        {{" example.com ", ""}, "example.com", 443, false},
        // ports
        {{"example.com:5000"}, "example.com", 5000, false},
        {{"example.com:5000"}, "example.com", 443, true},
        {{"example.com:5000"}, "a.example.com", 5000, false},
        {{"example.com:0"}, "example.com", 443, true},     // malformed: ignored
        {{"example.com:99999"}, "example.com", 443, true}, // malformed: ignored
        {{"example.com:x"}, "example.com", 443, true},     // malformed: ignored
        // IP addresses, literally
        {{"10.1.2.3"}, "10.1.2.3", 443, false},
        {{"10.1.2.3"}, "10.1.2.4", 443, true},
        {{"10.1.2.3:8443"}, "10.1.2.3", 8443, false},
        {{"10.1.2.3:8443"}, "10.1.2.3", 443, true},
        {{"10.1.2.3"}, "host.example.com", 443, true}, // names are not resolved
        {{"fd00::1"}, "fd00::1", 443, false},
        {{"fd00::1"}, "[fd00::1]", 443, false},
        {{"[fd00::1]"}, "fd00::1", 443, false},
        {{"[fd00::1]:5000"}, "[fd00::1]", 5000, false},
        {{"[fd00::1]:5000"}, "[fd00::1]", 443, true},
        {{"fd00:0:0::1"}, "FD00::1", 443, false}, // same address, other spelling
        {{"fd00::1"}, "fd00::2", 443, true},
        {{"10.1.2.3"}, "::ffff:10.1.2.3", 443, false}, // IPv4-mapped
        // CIDR ranges
        {{"10.0.0.0/8"}, "10.200.3.4", 443, false},
        {{"10.0.0.0/8"}, "11.0.0.1", 443, true},
        {{"192.168.1.0/24"}, "192.168.1.255", 443, false},
        {{"192.168.1.0/24"}, "192.168.2.1", 443, true},
        {{"192.168.1.128/25"}, "192.168.1.127", 443, true},
        {{"192.168.1.128/25"}, "192.168.1.129", 443, false},
        {{"0.0.0.0/0"}, "8.8.8.8", 443, false},
        {{"10.0.0.0/8"}, "10.example.com", 443, true},
        {{"10.0.0.0/8"}, "::ffff:10.9.9.9", 443, false},
        {{"fd00::/8"}, "fdab::1", 443, false},
        {{"fd00::/8"}, "fe80::1", 443, true},
        {{"2001:db8::/32"}, "[2001:db8:ffff::1]", 443, false},
        {{"fd00::/8"}, "10.0.0.1", 443, true}, // family mismatch
        {{"10.0.0.0/33"}, "10.0.0.1", 443, true}, // malformed: ignored
        {{"10.0.0.0/x"}, "10.0.0.1", 443, true},
        {{"nonsense/8"}, "10.0.0.1", 443, true},
        {{"[fd00::1"}, "fd00::1", 443, true},
        // loopback is never proxied (see the next test case for proxy_loopback)
        {{}, "localhost", 5000, false},
        {{}, "LOCALHOST", 5000, false},
        {{}, "registry.localhost", 5000, false},
        {{}, "127.0.0.1", 5000, false},
        {{}, "127.1.2.3", 5000, false},
        {{}, "::1", 5000, false},
        {{}, "[::1]", 5000, false},
        {{}, "::ffff:127.0.0.1", 5000, false},
        {{}, "localhost.example.com", 5000, true},
        {{}, "mylocalhost", 5000, true},
        {{}, "128.0.0.1", 5000, true},
    };
    for (auto const& r : rows) {
        auto const c = with_no_proxy(r.no_proxy);
        std::string list;
        for (auto const& e : r.no_proxy) list += "[" + e + "]";
        INFO("no_proxy " << list << " host " << r.host << " port " << r.port);
        CHECK(c.proxy_for("https", r.host, r.port).has_value() == r.proxied);
        CHECK(c.proxy_for("http", r.host, r.port).has_value() == r.proxied);
    }
}

TEST_CASE("proxy_loopback sends loopback destinations to the proxy unless listed")
{
    auto c = with_no_proxy({});
    c.proxy_loopback = true;
    CHECK(c.proxy_for("http", "localhost", 5000) == std::optional<std::string>("http://proxy:3128"));
    CHECK(c.proxy_for("http", "127.0.0.1", 5000) == std::optional<std::string>("http://proxy:3128"));
    CHECK(c.proxy_for("https", "::1", 5000) == std::optional<std::string>("http://sproxy:3129"));
    c.no_proxy = {"localhost", "127.0.0.0/8"};
    CHECK_FALSE(c.proxy_for("http", "localhost", 5000));
    CHECK_FALSE(c.proxy_for("http", "127.0.0.1", 5000));
    CHECK(c.proxy_for("https", "::1", 5000));
}

TEST_CASE("from_environment: lowercase wins, empty is unset, NO_PROXY is split")
{
    SUBCASE("nothing set")
    {
        auto g = clear_proxy_env();
        auto const c = proxy_config::from_environment();
        CHECK(c.http_proxy.empty());
        CHECK(c.https_proxy.empty());
        CHECK(c.no_proxy.empty());
    }
    SUBCASE("uppercase only")
    {
        auto g = clear_proxy_env();
        env_guard set{{"HTTP_PROXY", "http://up:1"}, {"HTTPS_PROXY", "http://ups:2"}, {"NO_PROXY", "a.com, .b.com,,10.0.0.0/8 "}};
        auto const c = proxy_config::from_environment();
        CHECK(c.http_proxy == "http://up:1");
        CHECK(c.https_proxy == "http://ups:2");
        CHECK(c.no_proxy == std::vector<std::string>{"a.com", ".b.com", "10.0.0.0/8"});
        CHECK_FALSE(c.proxy_for("https", "x.b.com", 443));
        CHECK(c.proxy_for("https", "c.com", 443) == std::optional<std::string>("http://ups:2"));
    }
    SUBCASE("both set: lowercase wins")
    {
        auto g = clear_proxy_env();
        env_guard set{{"HTTP_PROXY", "http://up:1"}, {"http_proxy", "http://low:1"},
                      {"HTTPS_PROXY", "http://ups:2"}, {"https_proxy", "http://lows:2"},
                      {"NO_PROXY", "upper.com"},       {"no_proxy", "lower.com"}};
        auto const c = proxy_config::from_environment();
        CHECK(c.http_proxy == "http://low:1");
        CHECK(c.https_proxy == "http://lows:2");
        CHECK(c.no_proxy == std::vector<std::string>{"lower.com"});
    }
    SUBCASE("an empty lowercase value counts as unset")
    {
        auto g = clear_proxy_env();
        env_guard set{{"https_proxy", ""}, {"HTTPS_PROXY", "http://ups:2"}};
        CHECK(proxy_config::from_environment().https_proxy == "http://ups:2");
    }
    SUBCASE("HTTP_PROXY is ignored under CGI (REQUEST_METHOD set), http_proxy is not")
    {
        auto g = clear_proxy_env();
        env_guard set{{"HTTP_PROXY", "http://attacker:1"}, {"REQUEST_METHOD", "GET"}};
        CHECK(proxy_config::from_environment().http_proxy.empty());
        env_guard low{{"http_proxy", "http://low:1"}};
        CHECK(proxy_config::from_environment().http_proxy == "http://low:1");
    }
}

TEST_CASE("parse_proxy_url accepts the usual forms")
{
    struct row {
        char const* text;
        char const* scheme;
        char const* host;
        std::uint16_t port;
        std::optional<std::string> user, password;
    };
    row const rows[] = {
        {"http://proxy.example.com:3128", "http", "proxy.example.com", 3128, {}, {}},
        {"http://proxy.example.com:3128/", "http", "proxy.example.com", 3128, {}, {}},
        {"proxy.example.com:3128", "http", "proxy.example.com", 3128, {}, {}},
        {"proxy", "http", "proxy", 80, {}, {}},
        {"http://proxy", "http", "proxy", 80, {}, {}},
        {"https://proxy", "https", "proxy", 443, {}, {}},
        {"HTTPS://Proxy.Example.COM:8443", "https", "proxy.example.com", 8443, {}, {}},
        {"  http://10.0.0.1:8080  ", "http", "10.0.0.1", 8080, {}, {}},
        {"http://[fd00::1]:3128", "http", "fd00::1", 3128, {}, {}},
        {"[::1]", "http", "::1", 80, {}, {}},
        {"http://user:secret@proxy:3128", "http", "proxy", 3128, "user", "secret"},
        {"http://user@proxy:3128", "http", "proxy", 3128, "user", {}},
        {"http://user:@proxy:3128", "http", "proxy", 3128, "user", ""},
        {"http://d%40main%5Cuser:p%40ss%3Aw0rd%2F@proxy:3128", "http", "proxy", 3128, "d@main\\user", "p@ss:w0rd/"},
        {"http://us@er:pa@ss@proxy:1", "http", "proxy", 1, "us@er", "pa@ss"},
        {"user:pw@proxy:65535", "http", "proxy", 65535, "user", "pw"},
        {"http://under_score.example:1", "http", "under_score.example", 1, {}, {}},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.text));
        error_code ec = make_error_code(error::io_error);
        std::string why;
        auto const u = parse_proxy_url(r.text, ec, &why);
        INFO(why);
        CHECK_FALSE(ec);
        CHECK(u.scheme == r.scheme);
        CHECK(u.host == r.host);
        CHECK(u.port == r.port);
        CHECK(u.user == r.user);
        CHECK(u.password == r.password);
    }
}

TEST_CASE("parse_proxy_url rejects malformed URLs without revealing the password")
{
    struct row {
        char const* text;
        char const* mentions;
    };
    row const rows[] = {
        {"", "empty"},
        {"   ", "empty"},
        {"socks5://proxy:1080", "unsupported scheme 'socks5' (only http and https)"},
        {"ftp://proxy", "unsupported scheme 'ftp'"},
        {"://proxy", "malformed scheme"},
        {"ht tp://proxy", "malformed scheme"},
        {"http://", "no host"},
        {"http://:3128", "no host"},
        {"http://user:secret@", "no host"},
        {"http://user:secret@:3128", "no host"},
        {"http://proxy:0", "the port is not a number in 1-65535"},
        {"http://proxy:65536", "the port is not a number in 1-65535"},
        {"http://proxy:", "the port is not a number"},
        {"http://proxy:-1", "the port is not a number"},
        {"http://proxy:3128x", "the port is not a number"},
        {"http://user:secret", "the port is not a number"},
        {"http://proxy:3128/path", "a path, query or fragment is not allowed"},
        {"http://proxy:3128?x=1", "a path, query or fragment is not allowed"},
        {"http://proxy:3128#f", "a path, query or fragment is not allowed"},
        {"http://user:sec/ret@proxy", "a path, query or fragment is not allowed"},
        {"http://pro xy:1", "byte 0x20 at position 3 of the host is not allowed"},
        {"http://pro%78y:1", "'%' at position 3 of the host"},
        {"http://fd00::1:3128", "several ':' in the host; write an IPv6 address in brackets"},
        {"http://user:secret:x", "several ':'"},
        {"http://[fd00::1:3128", "'[' of an IPv6 host has no matching ']'"},
        {"http://[10.0.0.1]:1", "\"10.0.0.1\" in brackets is not an IPv6 address"},
        {"http://[nothost]:1", "in brackets is not an IPv6 address"},
        {"http://[::1]x", "'x' after ']'"},
        {"http://us%4ger:secret@proxy", "malformed percent-escape in the user name"},
        {"http://user:secr%zzet@proxy", "malformed percent-escape in the password"},
        {"http://user:secret%@proxy", "malformed percent-escape in the password"},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.text));
        error_code ec;
        std::string why;
        auto const u = parse_proxy_url(r.text, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(u.host.empty());
        INFO("reason: " << why);
        CHECK(why.find("proxy URL: ") == 0);
        CHECK(why.find(r.mentions) != std::string::npos);
        CHECK(why.find("secret") == std::string::npos);
        CHECK(why.find("secr") == std::string::npos);
    }
    CHECK_THROWS_AS(parse_proxy_url("socks5://p:1"), system_error);
    CHECK(parse_proxy_url("p:1").port == 1);
}
