// ocistore/http/proxy_config.hpp: proxy selection from HTTP(S)_PROXY / NO_PROXY, and proxy URLs.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore {

/** Which proxy, if any, a request goes through. See docs/registries.md, "Proxies".

    `no_proxy` entries (each trimmed, matched case-insensitively; malformed entries match
    nothing):
    - `*` disables proxying altogether;
    - a domain, with or without a leading `.` or `*.` (`example.com`, `.example.com`,
      `*.example.com`), matches that host and every subdomain of it; a trailing `.` on
      either side is ignored;
    - an IPv4 or IPv6 address (`10.1.2.3`, `::1`, `[::1]`) matches that address literally:
      host names are never resolved;
    - a CIDR range (`10.0.0.0/8`, `fd00::/8`) matches addresses inside it (an IPv4-mapped
      IPv6 host counts as its IPv4 address);
    - a domain or address may carry `:port` (`[::1]:5000` for IPv6), and then matches only
      requests to that port.

    Loopback destinations (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`) are never
    proxied, as in Go's net/http, unless `proxy_loopback` is set: a proxy cannot reach the
    client's loopback interface. (curl proxies them unless NO_PROXY lists them.)
*/
struct proxy_config {
    std::string http_proxy;            ///< proxy URL for http:// requests; empty for none
    std::string https_proxy;           ///< proxy URL for https:// requests; empty for none
    std::vector<std::string> no_proxy; ///< exclusions, one entry per element
    bool proxy_loopback = false;       ///< also proxy loopback destinations

    /** Reads `https_proxy`/`HTTPS_PROXY`, `http_proxy`/`HTTP_PROXY` and `no_proxy`/`NO_PROXY`;
        the lowercase name wins when both are set (as curl does; Go prefers uppercase), and an
        empty value counts as unset. Like Go, `HTTP_PROXY` (uppercase) is ignored when
        `REQUEST_METHOD` is set, because a CGI server puts the client's `Proxy:` header there.
        `no_proxy` is split at commas. */
    static OCISTORE_DECL proxy_config from_environment();

    /** The proxy URL (as configured, not validated) for a request to `host`:`port` over
        `scheme` ("http" or "https", case-insensitive), or nullopt to connect directly: no
        proxy for that scheme, another scheme, or excluded by `no_proxy` or the loopback rule.
        `host` may be bracketed IPv6 ("[::1]"). */
    OCISTORE_DECL std::optional<std::string> proxy_for(std::string_view scheme, std::string_view host,
                                                       std::uint16_t port) const;
};

/// A proxy URL taken apart.
struct proxy_url {
    std::string scheme;                  ///< "http" or "https" (TLS to the proxy itself)
    std::string host;                    ///< lowercased; an IPv6 address without brackets
    std::uint16_t port = 0;              ///< explicit, or 80 for http and 443 for https
    std::optional<std::string> user;     ///< percent-decoded userinfo before ':'
    std::optional<std::string> password; ///< percent-decoded userinfo after ':'
};

/** Parses a proxy URL: `[scheme://][user[:password]@]host[:port][/]`. Without a scheme,
    `http://` is assumed ("proxy:3128"). Schemes are http and https, case-insensitive; the host
    is a name, an IPv4 address or a bracketed IPv6 address; the port is 1–65535.

    Failures are `error::invalid_argument`: an empty value, another scheme (socks5, …), an
    empty or malformed host, a bad port, a bad percent-escape in the userinfo, or a path,
    query or fragment. Reasons never include the password.
*/
OCISTORE_DECL proxy_url parse_proxy_url(std::string_view text, error_code& ec, std::string* why = nullptr);
/// As above. @throws system_error with the reason in what().
OCISTORE_DECL proxy_url parse_proxy_url(std::string_view text);

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/proxy_config.ipp>
#endif
