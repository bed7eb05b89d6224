// ocistore/http/bearer_token.hpp: distribution token-auth responses, token URLs and scopes.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace ocistore {

/// Largest token-server response body parse_token_response accepts.
inline constexpr std::size_t max_token_response_size = std::size_t{1} << 20;
/// Shortest lifetime a token is given (the distribution token spec's default and minimum).
inline constexpr std::chrono::seconds min_token_lifetime{60};
/// Longest lifetime a token is given: longer `expires_in` values are cut to this.
inline constexpr std::chrono::seconds max_token_lifetime{24 * 60 * 60};

/// A bearer token from a token server, with what is needed to know when to fetch a new one.
struct bearer_token {
    std::string token;                               ///< the value for `Authorization: Bearer <token>`
    std::chrono::seconds expires_in{min_token_lifetime}; ///< lifetime, within [min_token_lifetime, max_token_lifetime]
    std::chrono::steady_clock::time_point obtained{}; ///< when it was requested
    std::string refresh_token; ///< OAuth2 refresh token, when the server issued one (offline_token=true)

    bool empty() const noexcept { return token.empty(); }

    /// Whether the token is, or within `margin` will be, past its lifetime at `now`.
    bool expired(std::chrono::steady_clock::time_point now,
                 std::chrono::seconds margin = std::chrono::seconds{10}) const noexcept
    {
        return now + margin >= obtained + expires_in;
    }
};

/** Parses a token server's JSON response (distribution token spec, also the OAuth2 form).

    - The token is `token`, or `access_token` when `token` is absent, null or empty.
    - `expires_in` (seconds, an integer; a number is truncated) defaults to 60 and is
      clamped into [min_token_lifetime, max_token_lifetime]. `issued_at` is ignored:
      `obtained` is `now`, so pass the time the request was *sent*.
    - `refresh_token` is kept when present.

    Failures: a body over max_token_response_size is `error::too_large`; anything else is
    `error::protocol_error`, because the server answered 200 with something unusable and
    other credentials would not help (unlike `error::unauthorized`): not JSON, not an
    object, no non-empty token, a field of the wrong type, or a token holding a byte outside
    visible ASCII (it would be unsafe in a header). Reasons never contain token text.
*/
OCISTORE_DECL bearer_token parse_token_response(std::string_view body, std::chrono::steady_clock::time_point now,
                                                error_code& ec, std::string* why = nullptr);
/// As above. @throws system_error with the reason in what().
OCISTORE_DECL bearer_token parse_token_response(std::string_view body, std::chrono::steady_clock::time_point now);

/** The URL of the token request for `realm_url` (a challenge's `realm`): the realm with
    `service=<service>` (omitted when empty) and one `scope=<scope>` per non-empty scope
    appended to its query (with '?' or '&' as needed), every value percent-encoded except
    RFC 3986 unreserved characters. A fragment in the realm is dropped. The realm is not
    validated here: the caller checks it is an absolute http(s) URL it is willing to call. */
OCISTORE_DECL std::string token_request_target(std::string_view realm_url, std::string_view service,
                                               std::span<std::string const> scopes);

/// "repository:<repository>:<actions>", e.g. repository_scope("library/ubuntu") == "repository:library/ubuntu:pull".
inline std::string repository_scope(std::string_view repository, std::string_view actions = "pull")
{
    std::string s("repository:");
    s.append(repository).push_back(':');
    s.append(actions);
    return s;
}

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/bearer_token.ipp>
#endif
