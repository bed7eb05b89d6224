#include <ocistore/http/header_values.hpp>

#include <doctest/doctest.h>

#include <limits>
#include <optional>
#include <ostream>
#include <string>

using namespace ocistore;
using namespace std::chrono_literals;
using std::chrono::seconds;
using std::chrono::sys_seconds;
using std::chrono::system_clock;

namespace {
constexpr std::uint64_t u64max = std::numeric_limits<std::uint64_t>::max();
sys_seconds const rfc_example{784111777s}; // Sun, 06 Nov 1994 08:49:37 GMT
sys_seconds const y2024{1704067200s};      // 2024-01-01T00:00:00Z
} // namespace

TEST_CASE("Content-Range of a 206 response")
{
    struct row {
        char const* value;
        std::optional<content_range> expected;
    };
    row const rows[] = {
        {"bytes 100-199/1000", content_range{100, 199, 1000}},
        {"bytes 0-0/1", content_range{0, 0, 1}},
        {"bytes 100-199/*", content_range{100, 199, std::nullopt}},
        {"BYTES 5-9/10", content_range{5, 9, 10}},
        {"  bytes  42-42/43\t", content_range{42, 42, 43}},
        {"bytes 0-18446744073709551614/18446744073709551615", content_range{0, u64max - 1, u64max}},
        {"bytes 007-009/010", content_range{7, 9, 10}},
        // malformed
        {"", std::nullopt},
        {"bytes", std::nullopt},
        {"bytes ", std::nullopt},
        {"bytes 100-199", std::nullopt},
        {"bytes 100-/1000", std::nullopt},
        {"bytes -199/1000", std::nullopt},
        {"bytes 199-100/1000", std::nullopt},
        {"bytes 100-199/199", std::nullopt},
        {"bytes 100-199/150", std::nullopt},
        {"bytes 100-199/", std::nullopt},
        {"bytes 100-199/1000x", std::nullopt},
        {"bytes 100-199/1000 ,", std::nullopt},
        {"bytes +100-199/1000", std::nullopt},
        {"bytes 100 -199/1000", std::nullopt},
        {"bytes 100-199/-1", std::nullopt},
        {"bytes 0-18446744073709551616/*", std::nullopt},
        {"bytes 18446744073709551616-18446744073709551617/*", std::nullopt},
        {"items 0-9/10", std::nullopt},
        {"bytes=0-9/10", std::nullopt},
        {"bytes */1000", std::nullopt},
        {"bytes 0x10-0x20/100", std::nullopt},
        {"bytes 1-2/3/4", std::nullopt},
    };
    for (auto const& r : rows) {
        INFO("value: '" << r.value << "'");
        auto const got = parse_content_range(r.value);
        CHECK(got.has_value() == r.expected.has_value());
        if (got && r.expected) CHECK(*got == *r.expected);
    }
    CHECK(parse_content_range("bytes 100-199/1000")->length() == 100);
}

TEST_CASE("unsatisfied Content-Range of a 416 response")
{
    CHECK(parse_unsatisfied_range("bytes */1000") == std::optional<std::uint64_t>(1000));
    CHECK(parse_unsatisfied_range("Bytes */0") == std::optional<std::uint64_t>(0));
    CHECK(parse_unsatisfied_range(" bytes */18446744073709551615 ") == std::optional<std::uint64_t>(u64max));
    for (char const* bad : {"bytes */", "bytes */*", "bytes */18446744073709551616", "bytes 0-1/2", "bytes * /10",
                            "bytes */10x", "*/10", "bytes*/10", "bytes */-1", ""}) {
        INFO(std::string(bad));
        CHECK_FALSE(parse_unsatisfied_range(bad));
    }
}

TEST_CASE("Content-Length")
{
    CHECK(parse_content_length("0") == std::optional<std::uint64_t>(0));
    CHECK(parse_content_length("1234") == std::optional<std::uint64_t>(1234));
    CHECK(parse_content_length(" 42\t") == std::optional<std::uint64_t>(42));
    CHECK(parse_content_length("42, 42,42") == std::optional<std::uint64_t>(42));
    CHECK(parse_content_length("18446744073709551615") == std::optional<std::uint64_t>(u64max));
    for (char const* bad : {"", " ", "-1", "+1", "1.0", "0x10", "1 2", "42, 43", "42,", ",42", "18446744073709551616",
                            "99999999999999999999999", "1e3", "abc"}) {
        INFO(std::string(bad));
        CHECK_FALSE(parse_content_length(bad));
    }
}

TEST_CASE("Retry-After as delay-seconds")
{
    system_clock::time_point const now = y2024;
    CHECK(parse_retry_after("120", now) == std::optional<seconds>(120s));
    CHECK(parse_retry_after("0", now) == std::optional<seconds>(0s));
    CHECK(parse_retry_after(" 5 ", now) == std::optional<seconds>(5s));
    CHECK(parse_retry_after("0007", now) == std::optional<seconds>(7s));
    CHECK(parse_retry_after("9223372036854775807", now) == std::optional<seconds>(seconds::max()));
    CHECK(parse_retry_after("99999999999999999999999999", now) == std::optional<seconds>(seconds::max()));
}

TEST_CASE("Retry-After as an HTTP-date in all three forms")
{
    SUBCASE("future dates give the whole seconds until them, rounded up")
    {
        system_clock::time_point const now = rfc_example - 100s;
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == std::optional<seconds>(100s));
        CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == std::optional<seconds>(100s));
        CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == std::optional<seconds>(100s));
        CHECK(parse_retry_after("Sun Nov 06 08:49:37 1994", now) == std::optional<seconds>(100s));
        CHECK(parse_retry_after("sun, 06 nov 1994 08:49:37 GMT", now) == std::optional<seconds>(100s));
        CHECK(parse_retry_after("  Sun, 06 Nov 1994 08:49:38 GMT ", now) == std::optional<seconds>(101s));
        system_clock::time_point const frac = rfc_example - 99s - 500ms;
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", frac) == std::optional<seconds>(100s));
    }
    SUBCASE("past dates and now give zero")
    {
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_example) == std::optional<seconds>(0s));
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_example + 1ms) == std::optional<seconds>(0s));
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", y2024) == std::optional<seconds>(0s));
        CHECK(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", y2024) == std::optional<seconds>(0s));
    }
    SUBCASE("RFC 850 two-digit years: at most 50 years ahead")
    {
        // From 2024: "70" is 2070 (46 years ahead), "75" is 1975 (2075 would be 51 years ahead).
        CHECK(parse_retry_after("Tuesday, 01-Jan-70 00:00:00 GMT", y2024) ==
              std::optional<seconds>(seconds{3155760000 - 1704067200}));
        CHECK(parse_retry_after("Wednesday, 01-Jan-75 00:00:00 GMT", y2024) == std::optional<seconds>(0s));
        auto const d = parse_http_date("Tuesday, 29-Feb-00 12:00:00 GMT", y2024);
        REQUIRE(d);
        CHECK(d->time_since_epoch() == 951825600s);
    }
    SUBCASE("far-future dates do not overflow")
    {
        auto const r = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", y2024);
        REQUIRE(r);
        CHECK(*r > seconds{250'000'000'000});
    }
    SUBCASE("leap second")
    {
        CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:60 GMT", rfc_example) == std::optional<seconds>(23s));
    }
}

TEST_CASE("Retry-After junk is nullopt")
{
    system_clock::time_point const now = y2024;
    for (char const* bad : {
             "", " ", "-1", "+5", "1.5", "5s", "0x10", "1 2", "soon",
             "Sun, 06 Nov 1994 08:49:37 UTC",   // zone must be GMT
             "Sun, 06 Nov 1994 08:49:37",       // zone missing
             "Sun, 06 Nov 1994 08:49:37 GMT x", // trailing junk
             "Sun, 6 Nov 1994 08:49:37 GMT",    // day must be two digits
             "Sun, 06 Nov 94 08:49:37 GMT",     // IMF year must be four digits
             "Sun 06 Nov 1994 08:49:37 GMT",    // comma missing
             "Sun,06 Nov 1994 08:49:37 GMT",    // space missing
             "Funday, 06-Nov-94 08:49:37 GMT",  // no such day
             "Sunday, 06 Nov 1994 08:49:37 GMT", // long day name with IMF date
             "Sun, 06-Nov-94 08:49:37 GMT",     // short day name with RFC 850 date
             "Sun, 06 Foo 1994 08:49:37 GMT",   // no such month
             "Sun, 31 Feb 1994 08:49:37 GMT",   // no such date
             "Sun, 29 Feb 1900 08:49:37 GMT",   // 1900 is no leap year
             "Sun, 06 Nov 1994 24:00:00 GMT",   // hour
             "Sun, 06 Nov 1994 08:60:00 GMT",   // minute
             "Sun, 06 Nov 1994 08:49:61 GMT",   // second
             "Sun, 06 Nov 1994 8:49:37 GMT",    // hour must be two digits
             "Sun, 00 Nov 1994 08:49:37 GMT",   // day 0
             "Sun Nov 6 08:49:37 1994",         // asctime single-digit day needs two spaces
             "Sun Nov  6 08:49:37 94",          // asctime year must be four digits
             "Sun Nov  6 08:49:37 1994 GMT",    // asctime has no zone
             "Sunday Nov  6 08:49:37 1994",     // asctime uses short names
         }) {
        INFO(std::string(bad));
        CHECK_FALSE(parse_retry_after(bad, now));
    }
}
