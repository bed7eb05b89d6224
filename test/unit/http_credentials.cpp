#include <ocistore/http/credentials.hpp>

#include <support/temp_dir.hpp>

#include <support/env_guard.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace ocistore;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using ocistore_test::env_guard;

void write_file(fs::path const& p, std::string const& text)
{
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

std::string read_text(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// A temp dir holding the credential helper `docker-credential-ocitest`, put first on PATH.
/// The helper records its stdin in "last-url" and answers per server URL.
class helper_fixture {
public:
    helper_fixture()
    {
        fs::path const script = dir_ / "docker-credential-ocitest";
        write_file(script, R"(#!/bin/sh
[ "$1" = get ] || { echo "unexpected arguments: $*" >&2; exit 3; }
url=
read -r url || true
printf '%s' "$url" > "$(dirname "$0")/last-url"
case "$url" in
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hubsecret"}\n' "$url" ;;
  quay.io) printf '{"ServerURL":"quay.io","Username":"<token>","Secret":"refresh-123"}' ;;
  gcr.io) printf '{"Username":"_json_key","Secret":"gcr-secret","Extra":[1,2]}' ;;
  broken.example) echo "keychain is locked" >&2; exit 2 ;;
  loud.example) printf 'line one\001\nline two\n'; exit 4 ;;
  garbage.example) echo "not json secretvalue" ;;
  array.example) echo '["secretvalue"]' ;;
  wrongtype.example) echo '{"Username": 5, "Secret": "secretvalue"}' ;;
  empty.example) echo '{"ServerURL":"empty.example","Username":"","Secret":""}' ;;
  slow.example) exec sleep 10 ;;
  big.example) head -c 2000000 /dev/zero | tr '\000' a ;;
  killed.example) kill -9 $$ ;;
  env.example) printf '{"Username":"%s","Secret":"x"}' "$OCITEST_MARK" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
)");
        fs::permissions(script, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
        char const* old = std::getenv("PATH");
        old_path_ = old ? std::optional<std::string>(old) : std::nullopt;
        std::string const path = dir_.path().string() + ":" + (old ? old : "/usr/bin:/bin");
        ::setenv("PATH", path.c_str(), 1);
    }
    helper_fixture(helper_fixture const&) = delete;
    helper_fixture& operator=(helper_fixture const&) = delete;
    ~helper_fixture()
    {
        if (old_path_) ::setenv("PATH", old_path_->c_str(), 1);
        else ::unsetenv("PATH");
    }
    fs::path const& dir() const { return dir_.path(); }
    std::string last_url() const { return read_text(dir_ / "last-url"); }

private:
    ocistore_test::temp_dir dir_{"ocistore-credhelper"};
    std::optional<std::string> old_path_;
};

std::optional<credentials> run(std::string_view url, error_code& ec, std::string* why = nullptr,
                               std::chrono::milliseconds timeout = 10s)
{
    return run_credential_helper("ocitest", url, timeout, ec, why);
}

// base64 of "hubuser:hubpass", "leg:acy:colon", "u:p\0\0", "nocolonsecret"
constexpr char const* config_json = R"({
  "auths": {
    "https://index.docker.io/v1/": {"auth": "aHVidXNlcjpodWJwYXNz", "email": "ignored@example.com"},
    "registry.example.com:5000": {"username": "u", "password": "p"},
    "http://Legacy.Example.com/v1/": {"auth": "bGVnOmFjeTpjb2xvbg"},
    "token.example.com": {"identitytoken": "idtok", "username": "ignored-user"},
    "placeholder.example.com": {},
    "nul.example.com": {"auth": "dTpwAAA="},
    "null.example.com": null
  },
  "credHelpers": {"quay.io": "ocitest", "https://gcr.io": "ocitest"},
  "credsStore": "ocitest",
  "psFormat": "table {{.ID}}",
  "HttpHeaders": {"User-Agent": "x"},
  "proxies": {"default": {"httpProxy": "http://p:1"}}
})";

credential_store store_from(std::string_view json)
{
    error_code ec;
    std::string why;
    auto s = credential_store::from_json(json, "config.json", ec, &why);
    INFO(why);
    REQUIRE_FALSE(ec);
    return s;
}

} // namespace

TEST_CASE("registry keys: lowercase host[:port], no scheme or path, Docker Hub aliases")
{
    struct row {
        char const* in;
        char const* key;
    };
    row const rows[] = {
        {"docker.io", "docker.io"},
        {"index.docker.io", "docker.io"},
        {"registry-1.docker.io", "docker.io"},
        {"https://index.docker.io/v1/", "docker.io"},
        {"HTTPS://INDEX.DOCKER.IO/v1/", "docker.io"},
        {"http://registry-1.docker.io", "docker.io"},
        {"Quay.IO", "quay.io"},
        {"https://quay.io", "quay.io"},
        {"localhost:5000", "localhost:5000"},
        {"http://localhost:5000/v2/", "localhost:5000"},
        {" ghcr.io ", "ghcr.io"},
        {"docker.io:443", "docker.io:443"},
        {"mirror.docker.io", "mirror.docker.io"},
    };
    for (auto const& r : rows) {
        INFO(std::string(r.in));
        CHECK(registry_key(r.in) == r.key);
    }
}

TEST_CASE("basic_authorization")
{
    CHECK(basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    CHECK(basic_authorization("u", "") == "Basic dTo=");
    CHECK(basic_authorization("", "") == "Basic Og==");
    CHECK(basic_authorization("ab", "c") == "Basic YWI6Yw==");
    CHECK(basic_authorization("abc", "de") == "Basic YWJjOmRl");
}

TEST_CASE("credentials::empty")
{
    CHECK(credentials{}.empty());
    CHECK_FALSE(credentials{"u", "", ""}.empty());
    CHECK_FALSE(credentials{"", "p", ""}.empty());
    CHECK_FALSE(credentials{"", "", "t"}.empty());
}

TEST_CASE("config.json auths: inline credentials and Hub aliases")
{
    auto const s = store_from(config_json);
    auto const hub = credentials{"hubuser", "hubpass", ""};
    for (char const* alias : {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}) {
        INFO(std::string(alias));
        error_code ec = make_error_code(error::io_error);
        auto const c = s.lookup(alias, ec);
        CHECK_FALSE(ec);
        CHECK(c == std::optional<credentials>(hub));
    }
    CHECK(s.lookup("registry.example.com:5000") == std::optional<credentials>(credentials{"u", "p", ""}));
    CHECK(s.lookup("legacy.example.com") == std::optional<credentials>(credentials{"leg", "acy:colon", ""}));
    CHECK(s.lookup("token.example.com") == std::optional<credentials>(credentials{"ignored-user", "", "idtok"}));
    CHECK(s.lookup("nul.example.com") == std::optional<credentials>(credentials{"u", "p", ""}));
    CHECK(s.helper_for("quay.io") == "ocitest");
    CHECK(s.helper_for("gcr.io") == "ocitest");
    CHECK(s.helper_for("anything.example") == "ocitest");
    CHECK(s.source().empty());
}

TEST_CASE("lookup order: explicit, credHelpers, inline auths, credsStore")
{
    helper_fixture h;
    auto s = store_from(config_json);

    SUBCASE("credHelpers beat inline entries and receive the host")
    {
        auto const c = s.lookup("quay.io");
        CHECK(c == std::optional<credentials>(credentials{"", "", "refresh-123"})); // "<token>" = identity token
        CHECK(h.last_url() == "quay.io");
        CHECK(s.lookup("gcr.io") == std::optional<credentials>(credentials{"_json_key", "gcr-secret", ""}));
        CHECK(h.last_url() == "gcr.io");
    }
    SUBCASE("credsStore is asked when nothing else has credentials")
    {
        error_code ec = make_error_code(error::io_error);
        CHECK_FALSE(s.lookup("placeholder.example.com", ec)); // helper says "not found"
        CHECK_FALSE(ec);
        CHECK(h.last_url() == "placeholder.example.com");
        CHECK_FALSE(s.lookup("registry.example.com", ec)); // the :5000 entry does not match port 443
        CHECK_FALSE(ec);
        CHECK(h.last_url() == "registry.example.com");
    }
    SUBCASE("a credHelpers entry is authoritative even when it has nothing")
    {
        auto const t = store_from(R"({"auths": {"unknown.example": {"username": "u", "password": "p"}},
                                      "credHelpers": {"unknown.example": "ocitest"}})");
        error_code ec = make_error_code(error::io_error);
        CHECK_FALSE(t.lookup("unknown.example", ec));
        CHECK_FALSE(ec);
        CHECK(h.last_url() == "unknown.example");
    }
    SUBCASE("explicit entries win over everything")
    {
        s.set("https://index.docker.io/v1/", credentials{"me", "mine", ""});
        s.set("Quay.io", credentials{"q", "w", ""});
        CHECK(s.lookup("registry-1.docker.io") == std::optional<credentials>(credentials{"me", "mine", ""}));
        CHECK(s.lookup("quay.io") == std::optional<credentials>(credentials{"q", "w", ""}));
        CHECK_FALSE(fs::exists(h.dir() / "last-url")); // no helper ran
    }
    SUBCASE("a store without config knows only explicit entries")
    {
        credential_store empty;
        CHECK_FALSE(empty.lookup("docker.io"));
        empty.set("docker.io", credentials{"a", "b", ""});
        CHECK(empty.lookup("index.docker.io") == std::optional<credentials>(credentials{"a", "b", ""}));
        CHECK(empty.helper_for("docker.io").empty());
    }
}

TEST_CASE("Docker Hub is asked for as https://index.docker.io/v1/")
{
    helper_fixture h;
    auto const s = store_from(R"({"credsStore": "ocitest"})");
    CHECK(s.lookup("docker.io") == std::optional<credentials>(credentials{"hubuser", "hubsecret", ""}));
    CHECK(h.last_url() == "https://index.docker.io/v1/");
    auto const t = store_from(R"({"credHelpers": {"registry-1.docker.io": "ocitest"}})");
    CHECK(t.lookup("index.docker.io") == std::optional<credentials>(credentials{"hubuser", "hubsecret", ""}));
}

TEST_CASE("credential helper outcomes")
{
    helper_fixture h;
    error_code ec;
    std::string why;

    SUBCASE("success, with the environment passed through")
    {
        env_guard mark{{"OCITEST_MARK", "marked"}};
        CHECK(run("env.example", ec) == std::optional<credentials>(credentials{"marked", "x", ""}));
        CHECK_FALSE(ec);
    }
    SUBCASE("not found and empty answers are nullopt, not errors")
    {
        ec = make_error_code(error::io_error);
        CHECK_FALSE(run("unknown.example", ec, &why));
        CHECK_FALSE(ec);
        ec = make_error_code(error::io_error);
        CHECK_FALSE(run("empty.example", ec, &why));
        CHECK_FALSE(ec);
    }
    SUBCASE("a failing helper is unauthorized and its message is quoted")
    {
        CHECK_FALSE(run("broken.example", ec, &why));
        CHECK(ec == error::unauthorized);
        CHECK(why == "credential helper docker-credential-ocitest exited with status 2: keychain is locked");
        CHECK_FALSE(run("loud.example", ec, &why));
        CHECK(ec == error::unauthorized);
        CHECK(why == "credential helper docker-credential-ocitest exited with status 4: line one??line two");
    }
    SUBCASE("a killed helper")
    {
        CHECK_FALSE(run("killed.example", ec, &why));
        CHECK(ec == error::unauthorized);
        CHECK(why.find("was killed by signal 9") != std::string::npos);
    }
    SUBCASE("garbage output is a protocol error that does not quote the output")
    {
        for (char const* url : {"garbage.example", "array.example", "wrongtype.example"}) {
            INFO(std::string(url));
            CHECK_FALSE(run(url, ec, &why));
            CHECK(ec == error::protocol_error);
            CHECK(why.find("credential helper docker-credential-ocitest: ") == 0);
            CHECK(why.find("secretvalue") == std::string::npos);
        }
        run("garbage.example", ec, &why);
        CHECK(why.find("output is not valid JSON") != std::string::npos);
        run("array.example", ec, &why);
        CHECK(why.find("output is an array, not a JSON object") != std::string::npos);
        run("wrongtype.example", ec, &why);
        CHECK(why.find("\"Username\" is a number, not a string") != std::string::npos);
    }
    SUBCASE("a hanging helper is killed at the timeout")
    {
        auto const start = std::chrono::steady_clock::now();
        CHECK_FALSE(run("slow.example", ec, &why, 300ms));
        auto const took = std::chrono::steady_clock::now() - start;
        CHECK(ec == error::timeout);
        CHECK(why == "credential helper docker-credential-ocitest did not finish within 300 ms and was killed");
        CHECK(took < 5s);
    }
    SUBCASE("a flood of output is cut off")
    {
        CHECK_FALSE(run("big.example", ec, &why));
        CHECK(ec == error::too_large);
        CHECK(why.find("wrote more than 1048576 bytes") != std::string::npos);
    }
    SUBCASE("a missing helper")
    {
        CHECK_FALSE(run_credential_helper("ocitest-missing", "x.example", 10s, ec, &why));
        CHECK(ec == error::unauthorized);
        CHECK(why == "credential helper docker-credential-ocitest-missing could not be started: No such file or "
                     "directory (is it on PATH?)");
    }
    SUBCASE("hostile names and URLs are refused before anything runs")
    {
        for (char const* name : {"", "../../bin/sh", "a/b", "a b", "x;rm -rf", "-"}) {
            INFO(std::string(name));
            bool const allowed = std::string_view(name) == "-";
            auto const r = run_credential_helper(name, "x.example", 10s, ec, &why);
            CHECK_FALSE(r);
            if (allowed) {
                CHECK(ec == error::unauthorized); // a valid name, but no such program
            } else {
                CHECK(ec == error::invalid_argument);
                CHECK(why.find("is not allowed") != std::string::npos);
            }
        }
        CHECK_FALSE(run("quay.io\nother", ec, &why));
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("byte 0x0a") != std::string::npos);
        CHECK_FALSE(run(std::string(1025, 'a'), ec, &why));
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("longer than 1024 bytes") != std::string::npos);
        CHECK_FALSE(fs::exists(h.dir() / "last-url"));
    }
    SUBCASE("lookup reports helper failures and the throwing overload carries the reason")
    {
        auto const s = store_from(R"({"credHelpers": {"broken.example": "ocitest"}, "credsStore": "ocitest-missing"})");
        CHECK_FALSE(s.lookup("broken.example", ec, &why));
        CHECK(ec == error::unauthorized);
        try {
            (void)s.lookup("other.example");
            FAIL("no exception");
        } catch (system_error const& e) {
            CHECK(e.code() == error::unauthorized);
            CHECK(std::string(e.what()).find("docker-credential-ocitest-missing could not be started") !=
                  std::string::npos);
        }
        auto t = s;
        t.set_helper_timeout(200ms);
        CHECK(t.helper_timeout() == 200ms);
    }
}

TEST_CASE("malformed config.json")
{
    struct row {
        std::string json;
        error expected;
        std::string mentions;
    };
    row const rows[] = {
        {"not json", error::invalid_json, "config.json is not valid JSON"},
        {"{\"auths\": {}", error::invalid_json, "not valid JSON"},
        {"[]", error::invalid_argument, "config.json: (document): expected an object, got an array"},
        {R"({"auths": []})", error::invalid_argument, "config.json: auths: expected an object, got an array"},
        {R"({"auths": {"x.io": "str"}})", error::invalid_argument, "auths.\"x.io\": expected an object, got a string"},
        {R"({"auths": {"x.io": {"auth": 5}}})", error::invalid_argument, "auths.\"x.io\".auth: expected a string, got a number"},
        {R"({"auths": {"x.io": {"username": ["u"]}}})", error::invalid_argument, "auths.\"x.io\".username: expected a string"},
        {R"({"auths": {"x.io": {"password": {}}}})", error::invalid_argument, "auths.\"x.io\".password: expected a string"},
        {R"({"auths": {"x.io": {"identitytoken": true}}})", error::invalid_argument, "identitytoken: expected a string"},
        {R"({"auths": {"x.io": {"auth": "c2Vj*mV0"}}})", error::invalid_argument, "auths.\"x.io\".auth: not valid base64 (at position 4)"},
        {R"({"auths": {"x.io": {"auth": "bm9jb2xvbnNlY3JldA=="}}})", error::invalid_argument,
         "auths.\"x.io\".auth: the decoded value has no ':' between user name and password"},
        {R"({"auths": {"x.io": {"auth": "c2VjcmV0==="}}})", error::invalid_argument, "not valid base64"},
        {R"({"credHelpers": []})", error::invalid_argument, "credHelpers: expected an object"},
        {R"({"credHelpers": {"x.io": 5}})", error::invalid_argument, "credHelpers.\"x.io\": expected a string, got a number"},
        {R"({"credHelpers": {"x.io": "../../bin/sh"}})", error::invalid_argument,
         "credHelpers.\"x.io\": helper name \"../../bin/sh\" is not allowed"},
        {R"({"credHelpers": {"x.io": ""}})", error::invalid_argument, "helper name \"\" is not allowed"},
        {R"({"credsStore": 1})", error::invalid_argument, "credsStore: expected a string, got a number"},
        {R"({"credsStore": "os x"})", error::invalid_argument, "credsStore: helper name \"os x\" is not allowed"},
        {"{\"psFormat\": \"" + std::string(max_docker_config_size, 'x') + "\"}", error::too_large, "the limit is 4194304 bytes"},
    };
    for (auto const& r : rows) {
        INFO("json: " << r.json.substr(0, 100));
        error_code ec;
        std::string why;
        auto const s = credential_store::from_json(r.json, "config.json", ec, &why);
        CHECK(ec == r.expected);
        INFO("reason: " << why);
        CHECK(why.find(r.mentions) != std::string::npos);
        CHECK(why.find("secret") == std::string::npos);
        CHECK(why.find("nocolon") == std::string::npos);
        CHECK(why.find("bm9jb2xvbnNlY3JldA") == std::string::npos);
        CHECK_FALSE(s.lookup("x.io"));
    }
}

TEST_CASE("from_docker_config and from_file")
{
    ocistore_test::temp_dir home("ocistore-home");
    fs::create_directories(home / ".docker");
    write_file(home / ".docker" / "config.json", R"({"auths": {"home.example": {"username": "h", "password": "p"}}})");
    ocistore_test::temp_dir alt("ocistore-dockercfg");
    write_file(alt / "config.json", R"({"auths": {"alt.example": {"username": "a", "password": "p"}}})");

    SUBCASE("DOCKER_CONFIG wins over HOME")
    {
        env_guard e{{"HOME", home.path().c_str()}, {"DOCKER_CONFIG", alt.path().c_str()}};
        error_code ec = make_error_code(error::io_error);
        auto const s = credential_store::from_docker_config(ec);
        CHECK_FALSE(ec);
        CHECK(s.source() == alt / "config.json");
        CHECK(s.lookup("alt.example") == std::optional<credentials>(credentials{"a", "p", ""}));
        CHECK_FALSE(s.lookup("home.example"));
    }
    SUBCASE("HOME/.docker/config.json otherwise (an empty DOCKER_CONFIG counts as unset)")
    {
        env_guard e{{"HOME", home.path().c_str()}, {"DOCKER_CONFIG", ""}};
        auto const s = credential_store::from_docker_config();
        CHECK(s.source() == home / ".docker" / "config.json");
        CHECK(s.lookup("home.example") == std::optional<credentials>(credentials{"h", "p", ""}));
    }
    SUBCASE("a missing file is an empty store, not an error")
    {
        ocistore_test::temp_dir none("ocistore-nocfg");
        env_guard e{{"HOME", none.path().c_str()}, {"DOCKER_CONFIG", (none / "absent").c_str()}};
        error_code ec = make_error_code(error::io_error);
        std::string why = "stale";
        auto const s = credential_store::from_docker_config(ec, &why);
        CHECK_FALSE(ec);
        CHECK(why.empty());
        CHECK(s.source().empty());
        CHECK_FALSE(s.lookup("docker.io"));
    }
    SUBCASE("a malformed file is an error naming the file")
    {
        write_file(alt / "config.json", R"({"auths": 7})");
        env_guard e{{"DOCKER_CONFIG", alt.path().c_str()}};
        error_code ec;
        std::string why;
        credential_store::from_docker_config(ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why == (alt / "config.json").string() + ": auths: expected an object, got a number");
        CHECK_THROWS_AS(credential_store::from_docker_config(), system_error);
    }
    SUBCASE("from_file: a missing file carries its errno")
    {
        error_code ec;
        std::string why;
        credential_store::from_file(home / "nope.json", ec, &why);
        CHECK(ec == std::errc::no_such_file_or_directory);
        CHECK(why.find("cannot open " + (home / "nope.json").string()) == 0);
        CHECK_THROWS_AS(credential_store::from_file(home / "nope.json"), system_error);
        CHECK(credential_store::from_file(alt / "config.json").lookup("alt.example"));
    }
}
