#include <ocistore/platform.hpp>

#include <doctest/doctest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <sstream>
#include <ostream>
#include <string>
#include <vector>

using namespace ocistore;

namespace {

std::vector<std::string> strings(std::vector<platform> const& ps)
{
    std::vector<std::string> out;
    for (auto const& p : ps) out.push_back(p.to_string());
    return out;
}

platform plat(std::string os, std::string arch, std::string variant = {})
{
    platform p;
    p.os = std::move(os);
    p.architecture = std::move(arch);
    p.variant = std::move(variant);
    return p;
}

} // namespace

TEST_CASE("platform strings parse into their components")
{
    auto p = platform::parse("linux/arm64/v8");
    CHECK(p.os == "linux");
    CHECK(p.architecture == "arm64");
    CHECK(p.variant == "v8");
    CHECK(p.os_version.empty());
    CHECK(p.to_string() == "linux/arm64/v8");

    auto q = platform::parse("linux/amd64");
    CHECK(q.os == "linux");
    CHECK(q.architecture == "amd64");
    CHECK(q.variant.empty());
    CHECK(q.to_string() == "linux/amd64");

    auto w = platform::parse("windows(10.0.20348.2527)/amd64");
    CHECK(w.os == "windows");
    CHECK(w.os_version == "10.0.20348.2527");
    CHECK(w.to_string() == "windows(10.0.20348.2527)/amd64");

    std::ostringstream os;
    os << p;
    CHECK(os.str() == "linux/arm64/v8");
}

TEST_CASE("parse normalises like containerd")
{
    struct row {
        char const* input;
        char const* normal;
    };
    row const rows[] = {
        {"linux/aarch64", "linux/arm64/v8"},   {"linux/arm64", "linux/arm64/v8"},
        {"linux/arm64/8", "linux/arm64/v8"},   {"linux/arm64/v8.2", "linux/arm64/v8.2"},
        {"linux/x86_64", "linux/amd64"},       {"linux/x86-64", "linux/amd64"},
        {"linux/amd64/v1", "linux/amd64"},     {"linux/amd64/v3", "linux/amd64/v3"},
        {"linux/armhf", "linux/arm/v7"},       {"linux/armel", "linux/arm/v6"},
        {"linux/arm", "linux/arm/v7"},         {"linux/arm/6", "linux/arm/v6"},
        {"linux/i386", "linux/386"},           {"linux/i686", "linux/386"},
        {"Linux/AMD64", "linux/amd64"},        {"LINUX/ARM/V7", "linux/arm/v7"},
        {"macos/arm64", "darwin/arm64/v8"},    {"linux/riscv64", "linux/riscv64"},
        {"linux/ppc64le", "linux/ppc64le"},    {"freebsd/amd64", "freebsd/amd64"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.input);
        auto p = platform::parse(r.input);
        CHECK(p.to_string() == r.normal);
        CHECK(p.normalized() == p); // idempotent
    }
}

TEST_CASE("normalized() leaves the original alone and keeps os fields")
{
    platform p = plat("Linux", "aarch64");
    p.os_version = "5.15";
    p.os_features = {"x"};
    auto n = p.normalized();
    CHECK(p.architecture == "aarch64");
    CHECK(n.os == "linux");
    CHECK(n.architecture == "arm64");
    CHECK(n.variant == "v8");
    CHECK(n.os_version == "5.15");
    CHECK(n.os_features == std::vector<std::string>{"x"});
}

TEST_CASE("malformed platform strings are rejected with a reason")
{
    struct row {
        std::string input;
        std::string mentions;
    };
    row const rows[] = {
        {"", "is empty"},
        {"linux", "missing '/' between os and architecture"},
        {"arm64", "missing '/'"},
        {"linux/", "empty architecture at position 6"},
        {"/amd64", "empty os at position 0"},
        {"linux/amd64/", "empty variant at position 12"},
        {"linux//v8", "empty architecture at position 6"},
        {"linux/arm64/v8/extra", "too many components: 4"},
        {"linux/am d64", "byte 0x20 at position 8 is not allowed in the architecture"},
        {"lin:ux/amd64", "':' at position 3 is not allowed in the os"},
        {"linux/arm/v7!", "'!' at position 12 is not allowed in the variant"},
        {"windows(10.0/amd64", "must be closed by ')'"},
        {"windows()/amd64", "empty os version at position 8"},
        {"windows(10 0)/amd64", "byte 0x20 at position 10 is not allowed in an os version"},
        {"(10.0)/amd64", "empty os at position 0"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.input);
        error_code ec = make_error_code(error::timeout);
        std::string why;
        auto p = platform::parse(r.input, ec, &why);
        CHECK(ec == error::invalid_platform);
        CHECK(why.find(r.mentions) != std::string::npos);
        CHECK(why.starts_with("platform \"" + r.input + "\""));
        CHECK(p == platform{});
    }
    try {
        (void)platform::parse("linux");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_platform);
        CHECK(std::string(e.what()).find("missing '/'") != std::string::npos);
    }
    error_code ec = make_error_code(error::timeout);
    (void)platform::parse("linux/amd64", ec);
    CHECK_FALSE(ec);
}

TEST_CASE("host_platform is the build target")
{
    platform h = host_platform();
    CHECK(h == h.normalized());
#if defined(__linux__) && defined(__x86_64__)
    CHECK(h.to_string() == "linux/amd64");
#elif defined(__linux__) && defined(__aarch64__)
    CHECK(h.to_string() == "linux/arm64/v8");
#endif
    CHECK_FALSE(h.os.empty());
    CHECK_FALSE(h.architecture.empty());
}

TEST_CASE("compatible platforms follow containerd's preference order")
{
    using v = std::vector<std::string>;
    CHECK(strings(platform_matcher(platform::parse("linux/amd64")).compatible()) == v{"linux/amd64", "linux/386"});
    CHECK(strings(platform_matcher(platform::parse("linux/amd64/v3")).compatible()) ==
          v{"linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm/v7")).compatible()) ==
          v{"linux/arm/v7", "linux/arm/v6", "linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm/v8")).compatible()) ==
          v{"linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm/v5")).compatible()) == v{"linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm64")).compatible()) ==
          v{"linux/arm64/v8", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm64/v8.2")).compatible()) ==
          v{"linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64/v8", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6",
            "linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/arm64/v9.2")).compatible()) ==
          v{"linux/arm64/v9.2", "linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.7", "linux/arm64/v8.6",
            "linux/arm64/v8.5", "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
            "linux/arm64/v8", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"});
    CHECK(strings(platform_matcher(platform::parse("linux/riscv64")).compatible()) == v{"linux/riscv64"});
    CHECK(platform_matcher(plat("Linux", "aarch64")).wanted().to_string() == "linux/arm64/v8");
}

TEST_CASE("rank: exact beats implied variant beats fallback, no_match otherwise")
{
    platform_matcher const m(platform::parse("linux/arm64/v8"));
    auto exact = m.rank(plat("linux", "arm64", "v8"));
    auto implied = m.rank(plat("linux", "arm64"));
    auto aarch64 = m.rank(plat("linux", "aarch64", "v8"));
    auto arm7 = m.rank(plat("linux", "arm", "v7"));
    auto arm6 = m.rank(plat("linux", "arm", "v6"));
    CHECK(exact == 0);
    CHECK(exact < implied);
    CHECK(aarch64 == exact);
    CHECK(implied < arm7);
    CHECK(arm7 < arm6);
    CHECK(m.matches(plat("linux", "arm", "v5")));
    CHECK(m.rank(plat("linux", "amd64")) == platform_matcher::no_match);
    CHECK(m.rank(plat("windows", "arm64", "v8")) == platform_matcher::no_match);
    CHECK(m.rank(plat("linux", "arm64", "v9")) == platform_matcher::no_match); // newer, never upwards
    CHECK_FALSE(m.matches(plat("linux", "arm", "v4")));

    platform_matcher const arm(platform::parse("linux/arm/v7"));
    CHECK(arm.rank(plat("linux", "arm", "v7")) < arm.rank(plat("linux", "arm")));
    CHECK(arm.rank(plat("linux", "arm")) < arm.rank(plat("linux", "arm", "v6")));
    CHECK_FALSE(arm.matches(plat("linux", "arm", "v8")));
    CHECK_FALSE(arm.matches(plat("linux", "arm64", "v8")));

    platform_matcher const amd(platform::parse("linux/amd64"));
    CHECK(amd.rank(plat("linux", "amd64")) < amd.rank(plat("linux", "amd64", "v1")));
    CHECK(amd.rank(plat("linux", "amd64", "v1")) < amd.rank(plat("linux", "386")));
    CHECK(amd.rank(plat("linux", "x86_64")) == amd.rank(plat("linux", "amd64")));
    CHECK_FALSE(amd.matches(plat("linux", "amd64", "v2")));
}

TEST_CASE("rank prefers the wanted os.version")
{
    platform_matcher const m(platform::parse("windows(10.0.20348)/amd64"));
    platform same = plat("windows", "amd64");
    same.os_version = "10.0.20348";
    platform other = plat("windows", "amd64");
    other.os_version = "10.0.17763";
    CHECK(m.rank(same) < m.rank(other));
    CHECK(m.matches(other));
    // Without a wanted os.version it does not matter.
    platform_matcher const n(platform::parse("windows/amd64"));
    CHECK(n.rank(same) == n.rank(other));
}

TEST_CASE("platforms convert to and from JSON")
{
    platform p = plat("windows", "amd64");
    p.os_version = "10.0.17763.5936";
    p.os_features = {"win32k"};
    auto jv = boost::json::value_from(p);
    CHECK(boost::json::serialize(jv) ==
          R"({"architecture":"amd64","os":"windows","os.version":"10.0.17763.5936","os.features":["win32k"]})");
    CHECK(boost::json::value_to<platform>(jv) == p);

    auto arm = boost::json::value_to<platform>(boost::json::parse(R"({"os":"linux","architecture":"arm","variant":"v7","features":["sse4"]})"));
    CHECK(arm == plat("linux", "arm", "v7"));
    // Read as written: no normalisation.
    CHECK(boost::json::value_to<platform>(boost::json::parse(R"({"os":"Linux","architecture":"aarch64"})")) ==
          plat("Linux", "aarch64"));
    CHECK(boost::json::serialize(boost::json::value_from(plat("linux", "arm64", "v8"))) ==
          R"({"architecture":"arm64","os":"linux","variant":"v8"})");

    struct row {
        char const* json;
        char const* why;
    };
    row const rows[] = {
        {R"({"architecture":"amd64"})", "os: required field missing"},
        {R"({"os":"linux"})", "architecture: required field missing"},
        {R"({"os":"linux","architecture":64})", "architecture: expected a string, got a number"},
        {R"({"os":"linux","architecture":"amd64","os.features":[1]})", "os.features[0]: expected a string, got a number"},
        {R"({"os":"linux","architecture":"amd64","variant":{}})", "variant: expected a string, got an object"},
        {R"("linux/amd64")", "expected an object, got a string"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.json);
        try {
            (void)boost::json::value_to<platform>(boost::json::parse(r.json));
            FAIL("no exception");
        } catch (system_error const& e) {
            CHECK(e.code() == error::invalid_manifest);
            CHECK(std::string(e.what()).find(r.why) != std::string::npos);
        }
    }
}
