// ocistore/http/header_values.hpp: parsers for Content-Range, Content-Length and Retry-After values.
#pragma once

#include <ocistore/config.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ocistore {

/// A satisfied byte range of a 206 response: bytes [first, last] of a representation.
struct content_range {
    std::uint64_t first = 0;                      ///< offset of the first byte sent
    std::uint64_t last = 0;                       ///< offset of the last byte sent (inclusive)
    std::optional<std::uint64_t> complete_length; ///< total size, empty for "*"

    std::uint64_t length() const noexcept { return last - first + 1; }
    friend bool operator==(content_range const&, content_range const&) = default;
};

/** Parses `bytes <first>-<last>/<complete-length or *>` (RFC 9110 §14.4). The unit is matched
    case-insensitively; surrounding SP/HTAB is ignored. nullopt for any other unit, the
    unsatisfied form (see parse_unsatisfied_range), `last < first`, `complete-length <= last`,
    a value overflowing 64 bits, signs, spaces inside, or trailing junk. */
OCISTORE_DECL std::optional<content_range> parse_content_range(std::string_view value) noexcept;

/// Parses the unsatisfied form `bytes */<complete-length>` of a 416 response; nullopt otherwise.
OCISTORE_DECL std::optional<std::uint64_t> parse_unsatisfied_range(std::string_view value) noexcept;

/** Parses a Content-Length value: 1*DIGIT with optional surrounding SP/HTAB. A list of
    identical values ("42, 42", RFC 9110 §8.6) is accepted; differing values, an empty
    value, signs, junk and values overflowing 64 bits give nullopt. */
OCISTORE_DECL std::optional<std::uint64_t> parse_content_length(std::string_view value) noexcept;

/** The wait a Retry-After value asks for (RFC 9110 §10.2.3), relative to `now`.

    `delay-seconds` (1*DIGIT) saturates at `std::chrono::seconds::max()` instead of
    overflowing: the caller applies its own cap. An HTTP-date is accepted in IMF-fixdate
    (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94
    08:49:37 GMT`, two-digit years read as at most 50 years ahead of `now`) and asctime
    (`Sun Nov  6 08:49:37 1994`); day and month names match case-insensitively and the
    weekday is not checked against the date. A date in the past gives 0 s; a future one
    the whole seconds until it, rounded up. nullopt for anything else, including impossible
    dates and times (`Feb 30`, `24:00:00`). */
OCISTORE_DECL std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                                    std::chrono::system_clock::time_point now) noexcept;

/// Parses an HTTP-date in any of the three forms above; nullopt when malformed.
OCISTORE_DECL std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view value,
                                                                      std::chrono::system_clock::time_point now) noexcept;

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/header_values.ipp>
#endif
