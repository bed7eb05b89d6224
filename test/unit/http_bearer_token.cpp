#include <ocistore/http/bearer_token.hpp>

#include <doctest/doctest.h>

#include <array>
#include <ostream>
#include <string>
#include <string_view>

using namespace ocistore;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

namespace {

steady_clock::time_point const t0 = steady_clock::time_point{} + 1000h;

bearer_token parse_ok(std::string_view body)
{
    error_code ec = make_error_code(error::io_error);
    std::string why;
    auto t = parse_token_response(body, t0, ec, &why);
    INFO("body: " << body << " reason: " << why);
    CHECK_FALSE(ec);
    CHECK(t.obtained == t0);
    return t;
}

} // namespace

TEST_CASE("token responses of real token servers")
{
    SUBCASE("Docker Hub: token and access_token, expires_in, issued_at")
    {
        auto const t = parse_ok(R"({"token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIifQ.c2ln","access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIifQ.c2ln","expires_in":300,"issued_at":"2024-01-01T00:00:00.000000000Z"})");
        CHECK(t.token == "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIifQ.c2ln");
        CHECK(t.expires_in == 300s);
        CHECK(t.refresh_token.empty());
        CHECK_FALSE(t.empty());
    }
    SUBCASE("GHCR: token only, no expiry -> the 60 s default")
    {
        auto const t = parse_ok(R"({"token":"djE6b2N0b2NhdC9oZWxsby13b3JsZDoxNzAwMDAwMDAw"})");
        CHECK(t.token == "djE6b2N0b2NhdC9oZWxsby13b3JsZDoxNzAwMDAwMDAw");
        CHECK(t.expires_in == 60s);
    }
    SUBCASE("OAuth2 form: access_token only, with a refresh token")
    {
        auto const t = parse_ok(R"({"access_token":"ya29.a0Af","token_type":"Bearer","expires_in":3599,"refresh_token":"1//0g-refresh"})");
        CHECK(t.token == "ya29.a0Af");
        CHECK(t.expires_in == 3599s);
        CHECK(t.refresh_token == "1//0g-refresh");
    }
}

TEST_CASE("token selection: token preferred, access_token as the fallback")
{
    struct row {
        char const* body;
        char const* token;
    };
    row const rows[] = {
        {R"({"token":"a","access_token":"b"})", "a"},
        {R"({"access_token":"b","token":"a"})", "a"},
        {R"({"token":"","access_token":"b"})", "b"},
        {R"({"token":null,"access_token":"b"})", "b"},
        {R"({"access_token":"b"})", "b"},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.body));
        CHECK(parse_ok(r.body).token == r.token);
    }
}

TEST_CASE("expires_in: default 60 s, minimum 60 s, capped at a day")
{
    struct row {
        char const* body;
        std::chrono::seconds expected;
    };
    row const rows[] = {
        {R"({"token":"t"})", 60s},
        {R"({"token":"t","expires_in":null})", 60s},
        {R"({"token":"t","expires_in":0})", 60s},
        {R"({"token":"t","expires_in":-5})", 60s},
        {R"({"token":"t","expires_in":59})", 60s},
        {R"({"token":"t","expires_in":60})", 60s},
        {R"({"token":"t","expires_in":61})", 61s},
        {R"({"token":"t","expires_in":300.9})", 300s},
        {R"({"token":"t","expires_in":86400})", 86400s},
        {R"({"token":"t","expires_in":86401})", 86400s},
        {R"({"token":"t","expires_in":18446744073709551615})", 86400s},
        {R"({"token":"t","expires_in":1e300})", 86400s},
        {R"({"token":"t","expires_in":-1e300})", 60s},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.body));
        CHECK(parse_ok(r.body).expires_in == r.expected);
    }
}

TEST_CASE("expired() applies the margin")
{
    bearer_token t;
    t.token = "x";
    t.obtained = t0;
    t.expires_in = 300s;
    CHECK_FALSE(t.expired(t0));
    CHECK_FALSE(t.expired(t0 + 289s));
    CHECK(t.expired(t0 + 290s));
    CHECK(t.expired(t0 + 301s));
    CHECK_FALSE(t.expired(t0 + 299s, 0s));
    CHECK(t.expired(t0 + 300s, 0s));
    CHECK(t.expired(t0 + 200s, 100s));
}

TEST_CASE("unusable token responses")
{
    struct row {
        std::string body;
        error expected;
        std::string mentions;
    };
    row const rows[] = {
        {"", error::protocol_error, "token response is not valid JSON"},
        {"<html>502 Bad Gateway</html>", error::protocol_error, "not valid JSON"},
        {R"({"token":"t",})", error::protocol_error, "not valid JSON"},
        {R"(["token"])", error::protocol_error, "expected a JSON object, got an array"},
        {R"("token")", error::protocol_error, "expected a JSON object, got a string"},
        {R"({})", error::protocol_error, "neither \"token\" nor \"access_token\""},
        {R"({"token":"","access_token":""})", error::protocol_error, "neither \"token\" nor \"access_token\""},
        {R"({"token":null})", error::protocol_error, "neither"},
        {R"({"token":42})", error::protocol_error, "\"token\" must be a string, got a number"},
        {R"({"token":"ok","access_token":{}})", error::protocol_error, "\"access_token\" must be a string, got an object"},
        {R"({"token":"ok","refresh_token":true})", error::protocol_error, "\"refresh_token\" must be a string, got a boolean"},
        {R"({"token":"ok","expires_in":"300"})", error::protocol_error, "\"expires_in\" must be a number of seconds, got a string"},
        {R"({"token":"ok","expires_in":[]})", error::protocol_error, "got an array"},
        {R"({"token":"abc\r\nX-Injected: 1"})", error::protocol_error, "\"token\" holds a byte outside visible ASCII at position 3"},
        {R"({"token":"ab cd"})", error::protocol_error, "at position 2"},
        {R"({"token":"caf\u00e9"})", error::protocol_error, "at position 3"},
        {R"({"access_token":"x\u0000y"})", error::protocol_error, "\"access_token\" holds a byte outside visible ASCII at position 1"},
        {R"({"token":"ok","refresh_token":"r\tr"})", error::protocol_error, "\"refresh_token\" holds"},
        {"{\"token\":\"" + std::string(max_token_response_size, 'a') + "\"}", error::too_large, "the limit is 1048576 bytes"},
    };
    for (auto const& r : rows) {
        INFO("body: " << r.body.substr(0, 80));
        error_code ec;
        std::string why;
        auto const t = parse_token_response(r.body, t0, ec, &why);
        CHECK(ec == r.expected);
        CHECK(t.empty());
        INFO("reason: " << why);
        CHECK(why.find(r.mentions) != std::string::npos);
        // No secret in the reason.
        CHECK(why.find("abc") == std::string::npos);
        CHECK(why.find("ab cd") == std::string::npos);
    }
}

TEST_CASE("the throwing overload")
{
    CHECK(parse_token_response(R"({"token":"t"})", t0).token == "t");
    try {
        parse_token_response(R"({"token":"se cret"})", t0);
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::protocol_error);
        std::string const what = e.what();
        CHECK(what.find("outside visible ASCII") != std::string::npos);
        CHECK(what.find("se cret") == std::string::npos);
    }
}

TEST_CASE("token request URLs")
{
    std::array<std::string, 1> const one{repository_scope("library/ubuntu")};
    CHECK(one[0] == "repository:library/ubuntu:pull");
    CHECK(token_request_target("https://auth.docker.io/token", "registry.docker.io", one) ==
          "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fubuntu%3Apull");

    std::array<std::string, 3> const several{repository_scope("a/b", "pull,push"), "", "registry:catalog:*"};
    CHECK(token_request_target("https://r.example/token", "my service", several) ==
          "https://r.example/token?service=my%20service&scope=repository%3Aa%2Fb%3Apull%2Cpush"
          "&scope=registry%3Acatalog%3A%2A");

    SUBCASE("appends to an existing query")
    {
        CHECK(token_request_target("https://h/t?client=x", "s", one) ==
              "https://h/t?client=x&service=s&scope=repository%3Alibrary%2Fubuntu%3Apull");
        CHECK(token_request_target("https://h/t?", "s", {}) == "https://h/t?service=s");
        CHECK(token_request_target("https://h/t?a=1&", "s", {}) == "https://h/t?a=1&service=s");
    }
    SUBCASE("empty service is omitted, fragments are dropped")
    {
        CHECK(token_request_target("https://h/t", "", one) == "https://h/t?scope=repository%3Alibrary%2Fubuntu%3Apull");
        CHECK(token_request_target("https://h/t#frag", "s", {}) == "https://h/t?service=s");
        CHECK(token_request_target("https://h/t", "", {}) == "https://h/t");
    }
    SUBCASE("hostile values cannot break out of their parameter")
    {
        std::array<std::string, 1> const evil{"repository:x&scope=repository:y:push#\r\n"};
        CHECK(token_request_target("https://h/t", "s&admin=1", evil) ==
              "https://h/t?service=s%26admin%3D1&scope=repository%3Ax%26scope%3Drepository%3Ay%3Apush%23%0D%0A");
        std::array<std::string, 1> const utf8{"repository:caf\xc3\xa9:pull"};
        CHECK(token_request_target("https://h/t", "", utf8) == "https://h/t?scope=repository%3Acaf%C3%A9%3Apull");
    }
}

TEST_CASE("repository scopes")
{
    CHECK(repository_scope("library/ubuntu") == "repository:library/ubuntu:pull");
    CHECK(repository_scope("org/team/app", "pull,push") == "repository:org/team/app:pull,push");
    CHECK(repository_scope("x", "*") == "repository:x:*");
}
