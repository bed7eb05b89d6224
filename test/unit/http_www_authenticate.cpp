#include <ocistore/http/www_authenticate.hpp>

#include <doctest/doctest.h>

#include <array>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace ocistore;

namespace {

using param_list = std::vector<std::pair<std::string, std::string>>;

std::vector<auth_challenge> parse_ok(std::string_view s)
{
    error_code ec = make_error_code(error::io_error);
    std::string why;
    auto v = parse_www_authenticate(s, ec, &why);
    INFO("input: " << s << " reason: " << why);
    CHECK_FALSE(ec);
    return v;
}

struct failure {
    error_code ec;
    std::string why;
};

failure parse_fail(std::string_view s)
{
    failure f;
    auto v = parse_www_authenticate(s, f.ec, &f.why);
    CHECK(v.empty());
    return f;
}

} // namespace

TEST_CASE("real-world registry challenges")
{
    struct row {
        char const* registry;
        std::string header;
        std::string scheme;
        param_list params;
    };
    row const rows[] = {
        {"Docker Hub",
         R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull")",
         "bearer",
         {{"realm", "https://auth.docker.io/token"},
          {"service", "registry.docker.io"},
          {"scope", "repository:library/ubuntu:pull"}}},
        {"Docker Hub, insufficient scope",
         R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull",error="insufficient_scope")",
         "bearer",
         {{"realm", "https://auth.docker.io/token"},
          {"service", "registry.docker.io"},
          {"scope", "repository:library/ubuntu:pull"},
          {"error", "insufficient_scope"}}},
        {"GHCR",
         R"(Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octocat/hello-world:pull")",
         "bearer",
         {{"realm", "https://ghcr.io/token"}, {"service", "ghcr.io"}, {"scope", "repository:octocat/hello-world:pull"}}},
        {"Quay",
         R"(Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:coreos/etcd:pull")",
         "bearer",
         {{"realm", "https://quay.io/v2/auth"}, {"service", "quay.io"}, {"scope", "repository:coreos/etcd:pull"}}},
        {"GCR",
         R"(Bearer realm="https://gcr.io/v2/token",service="gcr.io",scope="repository:google-containers/pause:pull")",
         "bearer",
         {{"realm", "https://gcr.io/v2/token"}, {"service", "gcr.io"}, {"scope", "repository:google-containers/pause:pull"}}},
        {"Artifact Registry",
         R"(Bearer realm="https://us-docker.pkg.dev/v2/token",service="us-docker.pkg.dev",scope="repository:my-project/my-repo/app:pull")",
         "bearer",
         {{"realm", "https://us-docker.pkg.dev/v2/token"},
          {"service", "us-docker.pkg.dev"},
          {"scope", "repository:my-project/my-repo/app:pull"}}},
        {"ECR",
         R"(Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com")",
         "basic",
         {{"realm", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/"}, {"service", "ecr.amazonaws.com"}}},
        {"Harbor",
         R"(Bearer realm="https://harbor.example.com/service/token",service="harbor-registry",scope="repository:library/nginx:pull")",
         "bearer",
         {{"realm", "https://harbor.example.com/service/token"},
          {"service", "harbor-registry"},
          {"scope", "repository:library/nginx:pull"}}},
        {"distribution htpasswd", R"(Basic realm="Registry Realm")", "basic", {{"realm", "Registry Realm"}}},
        {"distribution token auth",
         R"(Bearer realm="https://127.0.0.1:5001/auth",service="Docker registry",scope="registry:catalog:*")",
         "bearer",
         {{"realm", "https://127.0.0.1:5001/auth"}, {"service", "Docker registry"}, {"scope", "registry:catalog:*"}}},
        {"ACR",
         R"(Bearer realm="https://myregistry.azurecr.io/oauth2/token",service="myregistry.azurecr.io")",
         "bearer",
         {{"realm", "https://myregistry.azurecr.io/oauth2/token"}, {"service", "myregistry.azurecr.io"}}},
        {"GitLab, two scopes in one value",
         R"(Bearer realm="https://gitlab.com/jwt/auth",service="container_registry",scope="repository:group/project:pull,push")",
         "bearer",
         {{"realm", "https://gitlab.com/jwt/auth"},
          {"service", "container_registry"},
          {"scope", "repository:group/project:pull,push"}}},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.registry));
        auto const v = parse_ok(r.header);
        REQUIRE(v.size() == 1);
        CHECK(v[0].scheme == r.scheme);
        CHECK(v[0].params == r.params);
        CHECK(v[0].token68.empty());
        CHECK(v[0].param("realm") == std::optional<std::string_view>(r.params[0].second));
    }
}

TEST_CASE("parameter lookup is case-insensitive and absent parameters are nullopt")
{
    auto const v = parse_ok(R"(BEARER Realm="https://x/token", SERVICE=reg)");
    REQUIRE(v.size() == 1);
    CHECK(v[0].scheme == "bearer");
    CHECK(v[0].params == param_list{{"realm", "https://x/token"}, {"service", "reg"}});
    CHECK(v[0].param("REALM") == std::optional<std::string_view>("https://x/token"));
    CHECK(v[0].param("Service") == std::optional<std::string_view>("reg"));
    CHECK_FALSE(v[0].param("scope"));
    CHECK_FALSE(v[0].param("realm2"));
}

TEST_CASE("several challenges in one value")
{
    SUBCASE("RFC 9110 example with escapes and commas in quotes")
    {
        auto const v = parse_ok(R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple")");
        REQUIRE(v.size() == 2);
        CHECK(v[0].scheme == "newauth");
        CHECK(v[0].params == param_list{{"realm", "apps"}, {"type", "1"}, {"title", "Login to \"apps\""}});
        CHECK(v[1].scheme == "basic");
        CHECK(v[1].params == param_list{{"realm", "simple"}});
    }
    SUBCASE("Basic then Bearer")
    {
        auto const v = parse_ok(R"(Basic realm="a,b", Bearer realm="https://t/x",service="s")");
        REQUIRE(v.size() == 2);
        CHECK(v[0].param("realm") == std::optional<std::string_view>("a,b"));
        CHECK(v[1].scheme == "bearer");
        CHECK(v[1].param("service") == std::optional<std::string_view>("s"));
        CHECK(find_challenge(v, "BEARER") == &v[1]);
        CHECK(find_challenge(v, "basic") == &v[0]);
        CHECK(find_challenge(v, "digest") == nullptr);
    }
    SUBCASE("token68 forms")
    {
        auto const v = parse_ok("Basic abc==, Negotiate YII+/x, Bearer realm=\"r\", Custom z=");
        REQUIRE(v.size() == 4);
        CHECK(v[0].scheme == "basic");
        CHECK(v[0].token68 == "abc==");
        CHECK(v[0].params.empty());
        CHECK(v[1].token68 == "YII+/x");
        CHECK(v[2].param("realm") == std::optional<std::string_view>("r"));
        CHECK(v[2].token68.empty());
        CHECK(v[3].token68 == "z=");
    }
    SUBCASE("schemes without parameters")
    {
        auto const v = parse_ok("Negotiate, NTLM,Basic realm=x");
        REQUIRE(v.size() == 3);
        CHECK(v[0].scheme == "negotiate");
        CHECK(v[0].params.empty());
        CHECK(v[1].scheme == "ntlm");
        CHECK(v[2].params == param_list{{"realm", "x"}});
    }
}

TEST_CASE("whitespace and empty list elements are tolerated")
{
    struct row {
        std::string input;
        std::size_t count;
    };
    row const rows[] = {
        {"Bearer realm=\"r\"", 1},
        {"  Bearer   realm = \"r\" ,\tservice\t=\t\"s\"  ", 1},
        {", ,Bearer realm=\"r\",,, service=\"s\",", 1},
        {"Bearer , realm=\"r\"", 1},
        {"Bearer realm=\"r\" , , Basic realm=\"b\"", 2},
        {"\tBasic\t", 1},
    };
    for (auto const& r : rows) {
        INFO(r.input);
        auto const v = parse_ok(r.input);
        CHECK(v.size() == r.count);
        REQUIRE(!v.empty());
        if (v[0].scheme == "bearer") CHECK(v[0].param("realm") == std::optional<std::string_view>("r"));
    }
    auto const v = parse_ok(", ,Bearer realm=\"r\",,, service=\"s\",");
    CHECK(v[0].params == param_list{{"realm", "r"}, {"service", "s"}});
}

TEST_CASE("quoted strings: escapes, empty values, non-ASCII and tokens")
{
    auto const v = parse_ok("Bearer a=\"\", b=\"x\\\\y\", c=\"\\,\", d=\"caf\xc3\xa9\", e=tok-en.1, f=\"a\tb\"");
    REQUIRE(v.size() == 1);
    CHECK(v[0].params == param_list{{"a", ""}, {"b", "x\\y"}, {"c", ","}, {"d", "caf\xc3\xa9"}, {"e", "tok-en.1"},
                                    {"f", "a\tb"}});
}

TEST_CASE("malformed challenges are protocol errors with a precise reason")
{
    struct row {
        std::string input;
        std::string mentions;
    };
    row const rows[] = {
        {"", "no challenge"},
        {" , ,\t", "no challenge"},
        {"realm=\"x\"", "parameter 'realm' at position 0 comes before any auth-scheme"},
        {"=Bearer", "expected an auth-scheme or a parameter name at position 0, found '='"},
        {"\"Bearer\"", "found '\"'"},
        {"Bearer\"x\"", "expected a space or ',' after auth-scheme 'Bearer' at position 6"},
        {"Bearer realm=\"x", "unterminated quoted string starting at position 13"},
        {"Bearer realm=\"x\\", "unterminated quoted string starting at position 13"},
        {"Bearer realm=\"a\nb\"", "byte 0x0a at position 15 is not allowed in a quoted string"},
        {std::string("Bearer realm=\"a") + '\0' + "\"", "byte 0x00 at position 15"},
        {"Bearer realm=\"a\x7f\"", "byte 0x7f at position 15"},
        {"Bearer realm=\"a\\\x01\"", "backslash at position 15 escapes byte 0x01"},
        {"Bearer realm=\"x\" service=\"y\"", "expected ',' after the value of parameter 'realm' at position 17, found 's'"},
        {"Bearer realm=\"x\"garbage", "expected ',' after the value of parameter 'realm' at position 16"},
        {"Bearer realm=, service=\"s\"", "parameter 'service' at position 15 follows the token68 of the 'bearer' challenge"},
        {"Bearer realm=\"x\", service=", "parameter 'service' at position 18 has no value"},
        {"Bearer realm=\"x\", service= ,", "parameter 'service' at position 18 has no value"},
        {"Bearer realm=<x>", "value of parameter 'realm' at position 13: '<' cannot start a token or a quoted string"},
        {"Bearer realm=\"a\", REALM=\"b\"", "parameter 'realm' appears twice in the 'bearer' challenge"},
        {"Bearer realm=\"a\", scope=\"s\", Realm=b", "appears twice"},
        {"Basic abc==, realm=\"x\"", "follows the token68 of the 'basic' challenge"},
        {"Bearer @x", "expected a token68 or a parameter name after auth-scheme 'Bearer' at position 7, found '@'"},
        {"Bearer =x", "parameter 'Bearer' at position 0 comes before any auth-scheme"}, // BWS before '='
        {"Bearer \"x\"", "expected a token68 or a parameter name after auth-scheme 'Bearer' at position 7, found '\"'"},
        {"Bearer realm/x=\"y\"", "expected '=' after parameter name 'realm' at position 12, found '/'"},
        {"Bearer realm \"y\"", "expected '=' after parameter name 'realm' at position 13"},
        {"Bearer r\xc3\xa9" "alm=\"x\"", "expected '=' after parameter name 'r' at position 8, found byte 0xc3"},
        {"Bearer, @", "found '@'"},
    };
    for (auto const& r : rows) {
        INFO("input: " << r.input);
        auto const f = parse_fail(r.input);
        CHECK(f.ec == error::protocol_error);
        INFO("reason: " << f.why);
        CHECK(f.why.find("WWW-Authenticate") == 0);
        CHECK(f.why.find(r.mentions) != std::string::npos);
    }
}

TEST_CASE("several field lines parse as one list")
{
    std::array<std::string_view, 3> const lines{R"(Basic realm="registry")", "",
                                                R"(Bearer realm="https://auth/token",service="svc")"};
    error_code ec;
    std::string why;
    auto const v = parse_www_authenticate(std::span<std::string_view const>(lines), ec, &why);
    CHECK_FALSE(ec);
    REQUIRE(v.size() == 2);
    CHECK(v[0].scheme == "basic");
    CHECK(v[1].param("service") == std::optional<std::string_view>("svc"));

    SUBCASE("a line may continue the previous line's challenge, as when joined with \", \"")
    {
        std::array<std::string_view, 2> const split{R"(Bearer realm="r")", R"(service="s")"};
        auto const w = parse_www_authenticate(std::span<std::string_view const>(split), ec);
        CHECK_FALSE(ec);
        REQUIRE(w.size() == 1);
        CHECK(w[0].params == param_list{{"realm", "r"}, {"service", "s"}});
    }
    SUBCASE("the failing line is named")
    {
        std::array<std::string_view, 2> const bad{R"(Basic realm="x")", R"(Bearer realm="unterminated)"};
        auto const w = parse_www_authenticate(std::span<std::string_view const>(bad), ec, &why);
        CHECK(w.empty());
        CHECK(ec == error::protocol_error);
        CHECK(why.find("WWW-Authenticate line 2: unterminated quoted string starting at position 13") == 0);
    }
    SUBCASE("no lines or only empty lines")
    {
        std::array<std::string_view, 2> const empty{"", " , "};
        CHECK(parse_www_authenticate(std::span<std::string_view const>(empty), ec, &why).empty());
        CHECK(ec == error::protocol_error);
        CHECK(why.find("no challenge in 2 field line(s)") != std::string::npos);
        CHECK(parse_www_authenticate(std::span<std::string_view const>(), ec).empty());
        CHECK(ec == error::protocol_error);
    }
}

TEST_CASE("the throwing overloads carry the reason")
{
    CHECK(parse_www_authenticate(R"(Bearer realm="x")").size() == 1);
    try {
        parse_www_authenticate("Bearer realm=\"x");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::protocol_error);
        CHECK(std::string(e.what()).find("unterminated quoted string") != std::string::npos);
    }
    std::array<std::string_view, 1> const lines{"Basic realm=\"x\", ="};
    CHECK_THROWS_AS(parse_www_authenticate(std::span<std::string_view const>(lines)), system_error);
}

TEST_CASE("long headers")
{
    std::string big = "Bearer ";
    for (int i = 0; i < 3000; ++i) big += "p" + std::to_string(i) + "=\"v\",";
    auto const v = parse_ok(big);
    REQUIRE(v.size() == 1);
    CHECK(v[0].params.size() == 3000);
    std::string commas(100000, ',');
    auto const f = parse_fail(commas);
    CHECK(f.ec == error::protocol_error);
}
