// Fuzz target: the Content-Range, Content-Length, Retry-After and HTTP-date parsers of
// <ocistore/http/header_values.hpp> on arbitrary bytes.
//
// Invariants: an accepted Content-Range has first <= last < complete-length and is never also an
// unsatisfied range; every accepted value, written back in its canonical form, parses to the same
// value; Retry-After is never negative, equals the (saturated) delay-seconds it was given or the
// HTTP-date minus now, rounded up; an HTTP-date written back as IMF-fixdate and as asctime
// gives the same instant.
#include <ocistore/http/header_values.hpp>

#include <support/fuzz_check.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono;
using ocistore_test::fuzz::printable;

constexpr std::array<char const*, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<char const*, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct broken_down {
    int year;
    unsigned month, day, weekday;
    long long hour, minute, second;
};

broken_down split(sys_seconds t)
{
    sys_days const d = floor<days>(t);
    year_month_day const ymd{d};
    hh_mm_ss<seconds> const hms{t - d};
    return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
            weekday{d}.c_encoding(), hms.hours().count(), hms.minutes().count(), hms.seconds().count()};
}

std::string imf_fixdate(sys_seconds t)
{
    auto const b = split(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02lld:%02lld:%02lld GMT", day_names[b.weekday], b.day,
                  month_names[b.month - 1], b.year, b.hour, b.minute, b.second);
    return buf;
}

std::string asctime_date(sys_seconds t)
{
    auto const b = split(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %s %2u %02lld:%02lld:%02lld %04d", day_names[b.weekday],
                  month_names[b.month - 1], b.day, b.hour, b.minute, b.second, b.year);
    return buf;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

void check_ranges(std::string_view text)
{
    auto const r = ocistore::parse_content_range(text);
    auto const unsatisfied = ocistore::parse_unsatisfied_range(text);
    OCISTORE_FUZZ_CHECK(!(r && unsatisfied), printable(text) + " is both a range and an unsatisfied range");
    if (r) {
        OCISTORE_FUZZ_CHECK(r->first <= r->last, printable(text));
        OCISTORE_FUZZ_CHECK(!r->complete_length || *r->complete_length > r->last, printable(text));
        OCISTORE_FUZZ_CHECK(r->length() == r->last - r->first + 1, printable(text));
        std::string const canonical = "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) + "/" +
                                      (r->complete_length ? std::to_string(*r->complete_length) : std::string("*"));
        auto const again = ocistore::parse_content_range(canonical);
        OCISTORE_FUZZ_CHECK(again && *again == *r, printable(canonical) + " from " + printable(text));
    }
    if (unsatisfied) {
        std::string const canonical = "bytes */" + std::to_string(*unsatisfied);
        auto const again = ocistore::parse_unsatisfied_range(canonical);
        OCISTORE_FUZZ_CHECK(again == unsatisfied, printable(canonical) + " from " + printable(text));
    }
    if (auto const n = ocistore::parse_content_length(text)) {
        auto const again = ocistore::parse_content_length(std::to_string(*n));
        OCISTORE_FUZZ_CHECK(again == n, "Content-Length " + printable(text));
    }
}

void check_dates(std::string_view text, system_clock::time_point now)
{
    auto const when = ocistore::parse_http_date(text, now);
    if (when) {
        int const y = split(*when).year;
        if (y >= 0 && y <= 9999) {
            for (std::string const& form : {imf_fixdate(*when), asctime_date(*when)}) {
                auto const again = ocistore::parse_http_date(form, now);
                OCISTORE_FUZZ_CHECK(again == when, printable(form) + " from " + printable(text));
            }
        }
    }

    auto const wait = ocistore::parse_retry_after(text, now);
    std::string_view const v = trim(text);
    if (!v.empty() && v.front() >= '0' && v.front() <= '9') {
        std::optional<seconds> expect = seconds{0};
        constexpr std::int64_t max = std::numeric_limits<seconds::rep>::max();
        for (char c : v) {
            if (c < '0' || c > '9') {
                expect.reset();
                break;
            }
            std::int64_t const n = expect->count();
            expect = seconds{n > (max - (c - '0')) / 10 ? max : n * 10 + (c - '0')};
        }
        OCISTORE_FUZZ_CHECK(wait == expect, "Retry-After delay-seconds " + printable(text));
    } else if (!when) {
        OCISTORE_FUZZ_CHECK(!wait, "Retry-After " + printable(text) + " accepted, but not as an HTTP-date");
    } else {
        seconds const expect = std::max(seconds{0}, *when - floor<seconds>(now));
        OCISTORE_FUZZ_CHECK(wait && *wait == expect, "Retry-After HTTP-date " + printable(text));
    }
    OCISTORE_FUZZ_CHECK(!wait || *wait >= seconds{0}, "negative Retry-After for " + printable(text));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const text = ocistore_test::fuzz::as_text(data, size);
    check_ranges(text);
    // Mid-2024 with a fractional second, and just before a century turns (two-digit years).
    check_dates(text, sys_days{2024y / June / 1} + hours{12} + milliseconds{500});
    check_dates(text, sys_days{1999y / December / 31} + hours{23} + minutes{59} + seconds{59});
    return 0;
}
