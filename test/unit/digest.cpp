#include <ocistore/digest.hpp>

#include <doctest/doctest.h>

#include <support/failure.hpp>

#include <ostream>
#include <sstream>
#include <string>
#include <unordered_set>

using namespace ocistore;

namespace {
std::string const hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
std::string const hex128(128, 'a');

using ocistore_test::failure;
failure parse_fail(std::string_view s)
{
    failure f;
    digest d = digest::parse(s, f.ec, &f.why);
    CHECK(d.empty());
    return f;
}
} // namespace

TEST_CASE("valid digests parse and expose their parts")
{
    auto d = digest::parse("sha256:" + hex64);
    CHECK(d.algorithm() == "sha256");
    CHECK(d.encoded() == hex64);
    CHECK(d.str() == "sha256:" + hex64);
    CHECK(d.path_safe() == "sha256_" + hex64);
    CHECK_FALSE(d.empty());
    auto e = digest::parse("sha512:" + hex128);
    CHECK(e.algorithm() == "sha512");
    CHECK(e.bytes().size() == 64);
    std::ostringstream os;
    os << d;
    CHECK(os.str() == d.str());
}

TEST_CASE("a default digest is empty")
{
    digest d;
    CHECK(d.empty());
    CHECK(d.str().empty());
    CHECK(d.algorithm().empty());
    CHECK(d.encoded().empty());
    CHECK(d.path_safe().empty());
}

TEST_CASE("malformed digests are rejected with a precise reason")
{
    struct row {
        std::string input;
        error expected;
        std::string mentions;
    };
    std::string const upper = "sha256:" + std::string(63, 'a') + "A";
    row const rows[] = {
        {"", error::invalid_digest, "empty"},
        {"sha256", error::invalid_digest, "missing ':'"},
        {":" + hex64, error::invalid_digest, "empty algorithm"},
        {"sha256:", error::invalid_digest, "empty encoded"},
        {"SHA256:" + hex64, error::invalid_digest, "'S' at position 0"},
        {"sha256:" + hex64.substr(1), error::invalid_digest, "64 hex digits, got 63"},
        {"sha256:" + hex64 + "0", error::invalid_digest, "64 hex digits, got 65"},
        {upper, error::invalid_digest, "'A' at position 70 is not a lowercase hex digit"},
        {"sha256:" + std::string(63, 'a') + "g", error::invalid_digest, "'g' at position 70"},
        {"sha256:" + std::string(63, 'a') + "!", error::invalid_digest, "'!' at position 70"},
        {"sha256:" + std::string(32, 'a') + std::string(1, '\0') + std::string(31, 'a'), error::invalid_digest, "byte 0x00"},
        {"sha256:" + std::string(63, 'a') + " ", error::invalid_digest, "byte 0x20"},
        {"sha256+:" + hex64, error::invalid_digest, "ends with a separator"},
        {"+sha256:" + hex64, error::invalid_digest, "separator '+' at position 0"},
        {"sha256..b:" + hex64, error::invalid_digest, "separator '.' at position 7"},
        {"md5:d41d8cd98f00b204e9800998ecf8427e", error::unsupported_digest_algorithm, "\"md5\" is not supported"},
        {"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", error::unsupported_digest_algorithm, "not supported"},
        {"sha256:" + hex64 + ":x", error::invalid_digest, "':' at position 71"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.input);
        auto f = parse_fail(r.input);
        CHECK(f.ec == r.expected);
        CHECK(f.ec == condition::invalid_input);
        CHECK_MESSAGE(f.why.find(r.mentions) != std::string::npos, f.why);
    }
}

TEST_CASE("the throwing overload carries the reason")
{
    CHECK_THROWS_WITH_AS(digest::parse("sha256:xyz"), doctest::Contains("64 hex digits"), system_error);
    try {
        (void)digest::parse("nope");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_digest);
    }
}

TEST_CASE("from_bytes formats lowercase hex and validates the length")
{
    std::array<std::byte, 32> raw{};
    raw[0] = std::byte{0xAB};
    raw[31] = std::byte{0x01};
    auto d = digest::from_bytes("sha256", raw);
    CHECK(d.str() == "sha256:ab" + std::string(60, '0') + "01");
    CHECK(d.bytes() == std::vector<std::byte>(raw.begin(), raw.end()));
    error_code ec;
    CHECK(digest::from_bytes("sha512", raw, ec).empty());
    CHECK(ec == error::invalid_digest);
    CHECK(digest::from_bytes("md5", std::span(raw).first(16), ec).empty());
    CHECK(ec == error::unsupported_digest_algorithm);
    CHECK_THROWS_AS(digest::from_bytes("sha512", raw), system_error);
}

TEST_CASE("path-safe form round-trips and rejects path tricks")
{
    auto d = digest::parse("sha256:" + hex64);
    CHECK(digest::from_path_safe(d.path_safe()) == d);
    error_code ec;
    CHECK(digest::from_path_safe("sha256" + hex64, ec).empty());
    CHECK(ec == error::invalid_digest);
    CHECK(digest::from_path_safe("../../etc_passwd", ec).empty());
    CHECK(ec);
    CHECK(digest::from_path_safe("sha256_" + hex64.substr(0, 63) + "/", ec).empty());
    CHECK(ec);
    CHECK_THROWS_AS(digest::from_path_safe("x"), system_error);
}

TEST_CASE("comparison and hashing")
{
    auto a = digest::parse("sha256:" + std::string(64, '0'));
    auto b = digest::parse("sha256:" + std::string(64, '1'));
    CHECK(a < b);
    CHECK(a != b);
    CHECK(a == digest::parse(a.str()));
    std::unordered_set<digest> set{a, b, digest::parse(a.str())};
    CHECK(set.size() == 2);
}
