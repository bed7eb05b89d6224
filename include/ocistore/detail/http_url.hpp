// Internal: absolute http(s) URLs as http_transport meets them (Location, realm, mirrors).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/http_socket.hpp>
#include <ocistore/detail/http_text.hpp>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ocistore::detail {

/// An absolute http(s) URL split into the endpoint and the request target ("/path?query").
struct http_url {
    http_endpoint endpoint;
    std::string target = "/";

    std::string str() const { return endpoint.origin() + target; }
};

/** Splits "host", "host:port", "[v6]" or "[v6]:port" into `ep.host` (lower case, no brackets)
    and `ep.port` (the scheme's default when absent). False when malformed. */
inline bool parse_authority(std::string_view a, http_endpoint& ep)
{
    ep.port = ep.tls ? 443 : 80;
    std::string_view host = a, port;
    if (!a.empty() && a.front() == '[') {
        auto close = a.find(']');
        if (close == std::string_view::npos) return false;
        host = a.substr(1, close - 1);
        auto rest = a.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
        }
    } else if (auto colon = a.rfind(':'); colon != std::string_view::npos) {
        host = a.substr(0, colon);
        port = a.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':')) return false;
    if (!port.empty()) {
        unsigned v = 0;
        auto [p, e] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (e != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535) return false;
        ep.port = static_cast<std::uint16_t>(v);
    }
    ep.host = ascii_lowercase(host);
    return true;
}

/// Parses an absolute "http://" or "https://" URL (userinfo and fragment are not accepted / dropped).
inline std::optional<http_url> parse_http_url(std::string_view s)
{
    http_url u;
    if (s.size() > 8 && iequals(s.substr(0, 8), "https://")) {
        u.endpoint.tls = true;
        s.remove_prefix(8);
    } else if (s.size() > 7 && iequals(s.substr(0, 7), "http://")) {
        u.endpoint.tls = false;
        s.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    if (auto hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
    auto end = s.find_first_of("/?");
    auto authority = s.substr(0, end);
    if (authority.find('@') != std::string_view::npos) return std::nullopt;
    if (!parse_authority(authority, u.endpoint)) return std::nullopt;
    if (end != std::string_view::npos) {
        u.target.assign(s.substr(end));
        if (u.target.front() == '?') u.target.insert(0, "/");
    }
    for (char c : u.target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    return u;
}

/// The URL a Location value names, relative to `base` (absolute URL, absolute path, or "//authority/…").
inline std::optional<http_url> resolve_location(http_url const& base, std::string_view loc)
{
    if (loc.empty()) return std::nullopt;
    if (loc.size() > 1 && loc[0] == '/' && loc[1] == '/')
        return parse_http_url(std::string(base.endpoint.tls ? "https:" : "http:") + std::string(loc));
    if (loc.front() == '/') {
        http_url u = base;
        u.target.assign(loc.substr(0, loc.find('#')));
        for (char c : u.target)
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
        return u;
    }
    if (auto u = parse_http_url(loc)) return u;
    // A relative path: resolve against the base target's directory.
    auto slash = base.target.find_first_of('?');
    std::string dir = base.target.substr(0, slash);
    dir.erase(dir.rfind('/') + 1);
    http_url u = base;
    u.target = dir + std::string(loc.substr(0, loc.find('#')));
    for (char c : u.target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    return u;
}

} // namespace ocistore::detail
