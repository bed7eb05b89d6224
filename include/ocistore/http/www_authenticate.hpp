// ocistore/http/www_authenticate.hpp: parsing WWW-Authenticate challenges (RFC 9110 §11.6.1).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore {

/** One authentication challenge, e.g. `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.

    A challenge carries either auth-params or a token68 (`Negotiate abc==`), never both.
*/
struct auth_challenge {
    std::string scheme; ///< the auth-scheme, lowercased: "bearer", "basic", …
    /// auth-params in header order: names lowercased, values unquoted and unescaped, case kept.
    std::vector<std::pair<std::string, std::string>> params;
    std::string token68; ///< the token68 form's credentials, as sent; empty when params are used

    /// The value of parameter `name` (compared ASCII case-insensitively), if present.
    OCISTORE_DECL std::optional<std::string_view> param(std::string_view name) const;
};

/** Parses one WWW-Authenticate field value into its challenges, in order.

    Grammar (RFC 9110 §11.3, §11.6.1, §5.6): `#challenge`, `challenge = auth-scheme [ 1*SP
    ( token68 / #auth-param ) ]`, `auth-param = token BWS "=" BWS ( token / quoted-string )`.
    Accepted leniently as the RFC asks of recipients: empty list elements (`, ,`), any
    SP/HTAB around commas and '=', case-insensitive scheme and parameter names. After a
    comma, `name=` continues the current challenge's parameters and anything else starts a
    new challenge, so `Basic realm="x", Bearer realm="y"` yields two challenges. Quoted
    strings may hold commas, and `\x` unescapes to `x`.

    Failures (all `error::protocol_error`, with the position and rule in `*why`): no
    challenge at all, a character that cannot start or continue a token, a missing `=` value,
    an unterminated quoted string, a control character inside one, two parameters without a
    comma between them, a parameter after a token68, and a parameter name repeated within one
    challenge (RFC 9110 forbids it; accepting it would make `realm` ambiguous).
*/
OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value, error_code& ec,
                                                                 std::string* why = nullptr);
/// As above. @throws system_error with the reason in what().
OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value);

/** Parses several WWW-Authenticate field lines of one response, as if joined with ", ".
    A line may be empty; the whole set must hold at least one challenge. The reason names the
    1-based line number. */
OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::span<std::string_view const> lines,
                                                                 error_code& ec, std::string* why = nullptr);
/// As above. @throws system_error with the reason in what().
OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::span<std::string_view const> lines);

/// The first challenge whose scheme is `scheme` (ASCII case-insensitive), or nullptr.
OCISTORE_DECL auth_challenge const* find_challenge(std::span<auth_challenge const> challenges,
                                                   std::string_view scheme) noexcept;

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/www_authenticate.ipp>
#endif
