// Non-template bodies for ocistore/http/proxy_config.hpp.
#pragma once

#include <ocistore/http/proxy_config.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/http_text.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include <arpa/inet.h>

namespace ocistore {
namespace detail::proxy_config_impl {

/// An IP address; IPv4 (also IPv4-mapped IPv6) keeps its 4 bytes first.
struct ip_address {
    int family = 0; // 4 or 6
    std::array<unsigned char, 16> bytes{};

    friend bool operator==(ip_address const&, ip_address const&) = default;
};

/// Parses a literal IPv4 or IPv6 address, optionally in brackets; no names, no zone ids.
inline std::optional<ip_address> parse_ip(std::string_view s) noexcept
{
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (s.empty() || s.size() > 45) return std::nullopt;
    char buf[48];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    ip_address a;
    if (::inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = 4;
        return a;
    }
    if (::inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), mapped, 12) == 0) {
        std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
        std::fill(a.bytes.begin() + 4, a.bytes.end(), static_cast<unsigned char>(0));
        a.family = 4;
    } else {
        a.family = 6;
    }
    return a;
}

inline bool prefix_matches(ip_address const& a, ip_address const& net, std::uint64_t bits) noexcept
{
    std::size_t const whole = static_cast<std::size_t>(bits / 8);
    if (std::memcmp(a.bytes.data(), net.bytes.data(), whole) != 0) return false;
    unsigned const rest = static_cast<unsigned>(bits % 8);
    if (rest == 0) return true;
    auto const mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a.bytes[whole] & mask) == (net.bytes[whole] & mask);
}

inline bool ends_with_label(std::string_view host, std::string_view domain) noexcept
{
    return host.size() > domain.size() && host.substr(host.size() - domain.size()) == domain &&
           host[host.size() - domain.size() - 1] == '.';
}

inline bool is_loopback(std::string_view host, std::optional<ip_address> const& ip) noexcept
{
    if (host == "localhost" || ends_with_label(host, "localhost")) return true;
    if (!ip) return false;
    if (ip->family == 4) return ip->bytes[0] == 127;
    static constexpr std::array<unsigned char, 16> one{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return ip->bytes == one;
}

/// Whether NO_PROXY entry `entry` (not "*") excludes `host` (normalized) at `port`.
inline bool entry_matches(std::string_view entry, std::string_view host, std::optional<ip_address> const& host_ip,
                          std::uint16_t port)
{
    std::string const e = ascii_lowercase(trim_ows(entry));
    if (e.empty()) return false;
    if (auto const slash = e.find('/'); slash != std::string::npos) {
        auto const net = parse_ip(std::string_view(e).substr(0, slash));
        auto const bits = parse_u64(std::string_view(e).substr(slash + 1));
        if (!net || !bits || *bits > (net->family == 4 ? 32u : 128u)) return false;
        return host_ip && host_ip->family == net->family && prefix_matches(*host_ip, *net, *bits);
    }
    std::string_view name = e, port_text;
    bool has_port = false;
    if (name.front() == '[') {
        auto const close = name.find(']');
        if (close == std::string_view::npos) return false;
        std::string_view const after = name.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return false;
            has_port = true;
            port_text = after.substr(1);
        }
        name = name.substr(0, close + 1);
    } else if (auto const colon = name.find(':'); colon != std::string_view::npos && colon == name.rfind(':')) {
        has_port = true;
        port_text = name.substr(colon + 1);
        name = name.substr(0, colon);
    }
    if (has_port) {
        auto const p = parse_u64(port_text);
        if (!p || *p == 0 || *p > 65535) return false;
        if (*p != port) return false;
    }
    if (auto const ip = parse_ip(name)) return host_ip && *host_ip == *ip;
    if (name.substr(0, 2) == "*.") name.remove_prefix(1);
    if (!name.empty() && name.front() == '.') name.remove_prefix(1);
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty()) return false;
    return host == name || ends_with_label(host, name);
}

inline std::string env(char const* name)
{
    char const* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

} // namespace detail::proxy_config_impl

OCISTORE_DECL proxy_config proxy_config::from_environment()
{
    using detail::proxy_config_impl::env;
    proxy_config c;
    c.https_proxy = env("https_proxy");
    if (c.https_proxy.empty()) c.https_proxy = env("HTTPS_PROXY");
    c.http_proxy = env("http_proxy");
    if (c.http_proxy.empty() && env("REQUEST_METHOD").empty()) c.http_proxy = env("HTTP_PROXY");
    std::string list = env("no_proxy");
    if (list.empty()) list = env("NO_PROXY");
    std::string_view rest = list;
    while (!rest.empty()) {
        auto const comma = rest.find(',');
        std::string_view const item = detail::trim_ows(rest.substr(0, comma));
        if (!item.empty()) c.no_proxy.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return c;
}

OCISTORE_DECL std::optional<std::string> proxy_config::proxy_for(std::string_view scheme, std::string_view host,
                                                                 std::uint16_t port) const
{
    using namespace detail::proxy_config_impl;
    std::string const* proxy = nullptr;
    if (detail::iequals(scheme, "https")) proxy = &https_proxy;
    else if (detail::iequals(scheme, "http")) proxy = &http_proxy;
    if (!proxy || proxy->empty()) return std::nullopt;

    std::string h = detail::ascii_lowercase(host);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (!h.empty() && h.back() == '.') h.pop_back();
    auto const ip = parse_ip(h);
    if (!proxy_loopback && is_loopback(h, ip)) return std::nullopt;
    for (auto const& entry : no_proxy) {
        if (detail::trim_ows(entry) == "*") return std::nullopt;
        if (entry_matches(entry, h, ip, port)) return std::nullopt;
    }
    return *proxy;
}

OCISTORE_DECL proxy_url parse_proxy_url(std::string_view text, error_code& ec, std::string* why)
{
    ec.clear();
    auto bad = [&](std::string msg) {
        detail::fail(ec, why, error::invalid_argument, "proxy URL: " + msg);
        return proxy_url{};
    };
    std::string_view rest = detail::trim_ows(text);
    if (rest.empty()) return bad("empty");
    proxy_url u;
    if (auto const sep = rest.find("://"); sep != std::string_view::npos) {
        u.scheme = detail::ascii_lowercase(rest.substr(0, sep));
        if (u.scheme != "http" && u.scheme != "https") {
            bool const printable = std::all_of(u.scheme.begin(), u.scheme.end(), [](char c) {
                return detail::is_alpha(c) || detail::is_digit(c) || c == '+' || c == '-' || c == '.';
            });
            return bad(printable && !u.scheme.empty() ? "unsupported scheme '" + u.scheme + "' (only http and https)"
                                                      : std::string("malformed scheme"));
        }
        rest.remove_prefix(sep + 3);
    } else {
        u.scheme = "http";
    }
    if (auto const end = rest.find_first_of("/?#"); end != std::string_view::npos) {
        std::string_view const tail = rest.substr(end);
        if (tail != "/") return bad("a path, query or fragment is not allowed after the host");
        rest = rest.substr(0, end);
    }
    if (auto const at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view const userinfo = rest.substr(0, at);
        auto const colon = userinfo.find(':');
        std::string s;
        if (!detail::percent_decode(userinfo.substr(0, colon), s)) return bad("malformed percent-escape in the user name");
        u.user = std::move(s);
        if (colon != std::string_view::npos) {
            if (!detail::percent_decode(userinfo.substr(colon + 1), s))
                return bad("malformed percent-escape in the password");
            u.password = std::move(s);
        }
        rest.remove_prefix(at + 1);
    }
    std::string_view host, port_text;
    bool has_port = false;
    if (!rest.empty() && rest.front() == '[') {
        auto const close = rest.find(']');
        if (close == std::string_view::npos) return bad("'[' of an IPv6 host has no matching ']'");
        host = rest.substr(1, close - 1);
        auto const ip = detail::proxy_config_impl::parse_ip(host);
        if (!ip || host.find(':') == std::string_view::npos)
            return bad("\"" + std::string(host.substr(0, 100)) + "\" in brackets is not an IPv6 address");
        std::string_view const after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad(detail::describe_char(after.front()) + " after ']' (expected ':port')");
            has_port = true;
            port_text = after.substr(1);
        }
    } else {
        auto const colon = rest.find(':');
        if (colon != std::string_view::npos && colon != rest.rfind(':'))
            return bad("several ':' in the host; write an IPv6 address in brackets");
        host = rest.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port_text = rest.substr(colon + 1);
        }
        for (std::size_t i = 0; i < host.size(); ++i) {
            char const c = host[i];
            if (!detail::is_alpha(c) && !detail::is_digit(c) && c != '-' && c != '.' && c != '_')
                return bad(detail::describe_char(c) + " at position " + std::to_string(i) +
                           " of the host is not allowed (letters, digits, '-', '.', '_')");
        }
    }
    if (host.empty()) return bad("no host");
    u.host = detail::ascii_lowercase(host);
    if (has_port) {
        auto const p = detail::parse_u64(port_text);
        if (!p || *p == 0 || *p > 65535)
            return bad("the port is not a number in 1-65535");
        u.port = static_cast<std::uint16_t>(*p);
    } else {
        u.port = u.scheme == "https" ? 443 : 80;
    }
    return u;
}

OCISTORE_DECL proxy_url parse_proxy_url(std::string_view text)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse_proxy_url(text, ec, why); });
}

} // namespace ocistore
