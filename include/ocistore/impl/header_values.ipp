// Non-template bodies for ocistore/http/header_values.hpp.
#pragma once

#include <ocistore/http/header_values.hpp>
#include <ocistore/detail/http_text.hpp>

#include <array>
#include <limits>
#include <string_view>

namespace ocistore {
namespace detail::header_values_impl {

/// Splits "bytes <rest>" into <rest>; nullopt unless the unit is "bytes" followed by SP.
inline std::optional<std::string_view> range_spec(std::string_view value) noexcept
{
    value = trim_ows(value);
    auto const sp = value.find(' ');
    if (sp == std::string_view::npos || !iequals(value.substr(0, sp), "bytes")) return std::nullopt;
    std::string_view rest = value.substr(sp);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return rest;
}

constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday", "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <std::size_t N> bool is_one_of(std::string_view s, std::array<std::string_view, N> const& names) noexcept
{
    for (auto n : names)
        if (iequals(s, n)) return true;
    return false;
}

/// A left-to-right reader over an HTTP-date; every method returns false on mismatch.
struct date_cursor {
    std::string_view s;
    std::size_t i = 0;

    bool done() const noexcept { return i == s.size(); }
    bool lit(char c) noexcept { return i < s.size() && s[i] == c ? (++i, true) : false; }
    bool word(std::string_view& out) noexcept
    {
        std::size_t const b = i;
        while (i < s.size() && is_alpha(s[i])) ++i;
        out = s.substr(b, i - b);
        return i > b;
    }
    /// Exactly `n` digits.
    bool digits(std::size_t n, int& out) noexcept
    {
        if (s.size() - i < n) return false;
        out = 0;
        for (std::size_t k = 0; k < n; ++k, ++i) {
            if (!is_digit(s[i])) return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    }
    bool month(unsigned& out) noexcept
    {
        std::string_view w;
        if (!word(w)) return false;
        for (unsigned m = 0; m < months.size(); ++m)
            if (iequals(w, months[m])) return out = m + 1, true;
        return false;
    }
    /// time-of-day = hour ":" minute ":" second, with second up to 60 (a leap second).
    bool time_of_day(int& h, int& m, int& sec) noexcept
    {
        return digits(2, h) && lit(':') && digits(2, m) && lit(':') && digits(2, sec) && h <= 23 && m <= 59 && sec <= 60;
    }
    bool gmt() noexcept
    {
        std::string_view w;
        return word(w) && w == "GMT";
    }
};

inline std::optional<std::chrono::sys_seconds> to_time(int y, unsigned mon, int d, int h, int m, int s) noexcept
{
    using namespace std::chrono;
    year_month_day const ymd{year{y}, month{mon}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    return sys_seconds{sys_days{ymd}} + hours{h} + minutes{m} + seconds{s};
}

} // namespace detail::header_values_impl

OCISTORE_DECL std::optional<content_range> parse_content_range(std::string_view value) noexcept
{
    auto const spec = detail::header_values_impl::range_spec(value);
    if (!spec) return std::nullopt;
    auto const dash = spec->find('-'), slash = spec->find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
    auto const first = detail::parse_u64(spec->substr(0, dash));
    auto const last = detail::parse_u64(spec->substr(dash + 1, slash - dash - 1));
    if (!first || !last || *last < *first) return std::nullopt;
    content_range r{*first, *last, std::nullopt};
    std::string_view const total = spec->substr(slash + 1);
    if (total != "*") {
        r.complete_length = detail::parse_u64(total);
        if (!r.complete_length || *r.complete_length <= *last) return std::nullopt;
    }
    return r;
}

OCISTORE_DECL std::optional<std::uint64_t> parse_unsatisfied_range(std::string_view value) noexcept
{
    auto const spec = detail::header_values_impl::range_spec(value);
    if (!spec || spec->substr(0, 2) != "*/") return std::nullopt;
    return detail::parse_u64(spec->substr(2));
}

OCISTORE_DECL std::optional<std::uint64_t> parse_content_length(std::string_view value) noexcept
{
    std::optional<std::uint64_t> result;
    while (true) {
        auto const comma = value.find(',');
        auto const v = detail::parse_u64(detail::trim_ows(value.substr(0, comma)));
        if (!v || (result && *result != *v)) return std::nullopt;
        result = v;
        if (comma == std::string_view::npos) return result;
        value.remove_prefix(comma + 1);
    }
}

OCISTORE_DECL std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view value,
                                                                      std::chrono::system_clock::time_point now) noexcept
{
    using namespace detail::header_values_impl;
    detail::header_values_impl::date_cursor c{detail::trim_ows(value)};
    std::string_view dayname;
    int y = 0, d = 0, h = 0, m = 0, s = 0;
    unsigned mon = 0;
    if (!c.word(dayname)) return std::nullopt;
    if (c.lit(',')) {
        if (!c.lit(' ')) return std::nullopt;
        if (is_one_of(dayname, short_days)) { // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            if (!(c.digits(2, d) && c.lit(' ') && c.month(mon) && c.lit(' ') && c.digits(4, y) && c.lit(' ') &&
                  c.time_of_day(h, m, s) && c.lit(' ') && c.gmt() && c.done()))
                return std::nullopt;
        } else if (is_one_of(dayname, long_days)) { // rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
            int yy = 0;
            if (!(c.digits(2, d) && c.lit('-') && c.month(mon) && c.lit('-') && c.digits(2, yy) && c.lit(' ') &&
                  c.time_of_day(h, m, s) && c.lit(' ') && c.gmt() && c.done()))
                return std::nullopt;
            int const this_year = static_cast<int>(
                std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)}.year());
            y = (this_year / 100) * 100 + 100 + yy;
            while (y > this_year + 50) y -= 100;
        } else {
            return std::nullopt;
        }
    } else { // asctime-date: Sun Nov  6 08:49:37 1994
        if (!is_one_of(dayname, short_days) || !c.lit(' ') || !c.month(mon) || !c.lit(' ')) return std::nullopt;
        if (c.lit(' ')) {
            if (!c.digits(1, d)) return std::nullopt;
        } else if (!c.digits(2, d)) {
            return std::nullopt;
        }
        if (!(c.lit(' ') && c.time_of_day(h, m, s) && c.lit(' ') && c.digits(4, y) && c.done())) return std::nullopt;
    }
    return to_time(y, mon, d, h, m, s);
}

OCISTORE_DECL std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                                    std::chrono::system_clock::time_point now) noexcept
{
    using std::chrono::seconds;
    std::string_view const v = detail::trim_ows(value);
    if (!v.empty() && detail::is_digit(v.front())) {
        std::int64_t n = 0;
        constexpr std::int64_t max = std::numeric_limits<seconds::rep>::max();
        for (char c : v) {
            if (!detail::is_digit(c)) return std::nullopt;
            int const dig = c - '0';
            n = n > (max - dig) / 10 ? max : n * 10 + dig;
        }
        return seconds{n};
    }
    auto const when = parse_http_date(v, now);
    if (!when) return std::nullopt;
    // The wait rounded up: with now = floor(now) + frac, ceil(when - now) == when - floor(now).
    seconds const wait = *when - std::chrono::floor<seconds>(now);
    return wait > seconds{0} ? wait : seconds{0};
}

} // namespace ocistore
