// Internal: ASCII, percent-encoding and base64 helpers shared by the http/ building blocks.
#pragma once

#include <ocistore/config.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ocistore::detail {

inline constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lowercase(std::string_view s)
{
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

/// ASCII case-insensitive equality.
inline constexpr bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
/// OWS characters: SP and HTAB.
inline constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `s` without leading and trailing SP/HTAB.
inline constexpr std::string_view trim_ows(std::string_view s) noexcept
{
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

/// RFC 9110 `tchar`.
inline constexpr bool is_tchar(char c) noexcept
{
    if (is_alpha(c) || is_digit(c)) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

/// RFC 3986 `unreserved`.
inline constexpr bool is_unreserved(char c) noexcept
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/// Parses 1*DIGIT as an unsigned 64-bit value; nullopt when empty, not all digits, or overflowing.
inline constexpr std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept
{
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (!is_digit(c)) return std::nullopt;
        auto const d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

/// Percent-encodes every byte except RFC 3986 unreserved characters (so ':' '/' ' ' are escaped).
inline std::string percent_encode(std::string_view s)
{
    static char const hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (is_unreserved(c)) {
            out.push_back(c);
        } else {
            auto const u = static_cast<unsigned char>(c);
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    return out;
}

inline constexpr int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes %XX escapes; false on a truncated or non-hex escape.
inline bool percent_decode(std::string_view s, std::string& out)
{
    out.clear();
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return false;
        int const hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
    }
    return true;
}

inline constexpr char const base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with '=' padding.
inline std::string base64_encode(std::string_view in)
{
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t const v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out.push_back(base64_alphabet[v >> 18 & 63]);
        out.push_back(base64_alphabet[v >> 12 & 63]);
        out.push_back(base64_alphabet[v >> 6 & 63]);
        out.push_back(base64_alphabet[v & 63]);
    }
    if (in.size() - i == 1) {
        std::uint32_t const v = byte(i) << 16;
        out.push_back(base64_alphabet[v >> 18 & 63]);
        out.push_back(base64_alphabet[v >> 12 & 63]);
        out.append("==");
    } else if (in.size() - i == 2) {
        std::uint32_t const v = byte(i) << 16 | byte(i + 1) << 8;
        out.push_back(base64_alphabet[v >> 18 & 63]);
        out.push_back(base64_alphabet[v >> 12 & 63]);
        out.push_back(base64_alphabet[v >> 6 & 63]);
        out.push_back('=');
    }
    return out;
}

inline constexpr int base64_value(char c) noexcept
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/** Decodes standard base64; padding is optional but, when present, must be correct.
    Returns the 0-based position of the first offending character, or nullopt on success. */
inline std::optional<std::size_t> base64_decode(std::string_view in, std::string& out)
{
    out.clear();
    std::size_t data = in.size();
    while (data > 0 && in[data - 1] == '=') --data;
    std::size_t const pad = in.size() - data;
    if (pad > 2) return data;
    if (pad > 0 && in.size() % 4 != 0) return data;
    if (data % 4 == 1) return data - 1;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < data; ++i) {
        int const v = base64_value(in[i]);
        if (v < 0) return i;
        acc = (acc << 6 | static_cast<std::uint32_t>(v)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>(acc >> bits & 0xff));
        }
    }
    return std::nullopt;
}

} // namespace ocistore::detail
