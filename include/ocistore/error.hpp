// ocistore/error.hpp: error codes, portable conditions, and the error-reporting convention.
//
// Every public operation comes in two overloads: one taking `error_code& ec` (clears ec on
// success, sets it on failure, never throws for expected failures) and one that throws
// `system_error` carrying the same code. Policies report through `error_code&` only.
// Test `ec == condition::transient` (etc.) to react to a class of failures regardless of
// which component produced it; docs/errors.md has the full tables.
#pragma once

#include <ocistore/config.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace ocistore {

using error_code = std::error_code;
using system_error = std::system_error;

/// Specific failures. Values are stable within a major version; 0 is never an error.
enum class error {
    // invalid input
    invalid_reference = 1,        ///< image reference violates the distribution grammar
    invalid_digest,               ///< digest violates the OCI grammar or its algorithm's encoding
    unsupported_digest_algorithm, ///< well-formed digest with an algorithm we cannot verify
    invalid_json,                 ///< document is not well-formed JSON
    invalid_manifest,             ///< manifest or index JSON is well-formed but violates the spec
    invalid_config,               ///< image config JSON violates the spec
    unsupported_media_type,       ///< media type we do not handle
    unsupported_schema,           ///< Docker schema 1 or an unknown schemaVersion
    too_large,                    ///< document or body exceeds its size cap
    invalid_platform,             ///< platform string such as "linux/arm64/v8" is malformed
    invalid_argument,             ///< a caller-supplied argument is out of range or malformed
    invalid_archive,              ///< tar stream is malformed
    unsafe_path,                  ///< path escapes its root or is otherwise hostile
    limit_exceeded,               ///< a configured limit (entries, depth, bytes) was exceeded
    // integrity
    digest_mismatch,              ///< content does not hash to its declared digest
    size_mismatch,                ///< content length differs from its declared size
    diff_id_mismatch,             ///< uncompressed layer does not hash to its diff_id
    truncated,                    ///< stream ended before its declared end
    metadata_corrupt,             ///< cached metadata unreadable or inconsistent
    // not found
    not_found,                    ///< registry or cache has no such manifest, blob or tag
    no_matching_platform,         ///< index has no manifest for the requested platform
    not_cached,                   ///< policy `never` and the reference is not cached
    // authorization
    unauthorized,                 ///< credentials missing or rejected (HTTP 401)
    denied,                       ///< access refused (HTTP 403)
    // transient
    connection_failed,            ///< could not connect, or the connection dropped
    timeout,                      ///< an operation timed out or stalled
    server_error,                 ///< HTTP 5xx
    rate_limited,                 ///< HTTP 429
    // protocol
    protocol_error,               ///< peer violated the protocol (bad status line, bad Content-Range...)
    // storage
    io_error,                     ///< file-system operation failed (see the logged errno)
    lock_failed,                  ///< a lock could not be taken (try_acquire: held elsewhere)
    // build
    build_failed,                 ///< an artifact builder failed
    unsupported_entry,            ///< archive entry type that the builder cannot represent
    // control
    cancelled,                    ///< the operation was cancelled by the caller
};

/// Portable groups of failures, for `ec == condition::x` tests.
enum class condition {
    not_found = 1, ///< the thing does not exist (registry or cache)
    integrity,     ///< content failed verification; retrying the same source will not help
    transient,     ///< worth retrying: network, timeouts, 5xx, 429
    unauthorized,  ///< authentication or authorization failed
    invalid_input, ///< malformed or hostile input, or unsupported format
    storage,       ///< local file-system trouble: I/O, space, permissions, locks
    build,         ///< artifact building failed
};

/// The category of `ocistore::error` values; its name() is "ocistore".
OCISTORE_DECL std::error_category const& error_category() noexcept;
/// The category of `ocistore::condition` values; its name() is "ocistore.condition".
OCISTORE_DECL std::error_category const& condition_category() noexcept;

inline error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }
inline std::error_condition make_error_condition(condition c) noexcept
{
    return {static_cast<int>(c), condition_category()};
}

/// Throws `system_error(ec, what)`. Precondition: `ec` is an error.
[[noreturn]] OCISTORE_DECL void throw_error(error_code const& ec, std::string const& what);

namespace detail {
/// `e` (an errno value) in `std::system_category()`.
inline error_code errno_code(int e) noexcept { return {e, std::system_category()}; }

/// Throws if `ec` is set; the tail of every throwing overload.
inline void throw_if(error_code const& ec, char const* what)
{
    if (ec) ocistore::throw_error(ec, what);
}
} // namespace detail

} // namespace ocistore

template <> struct std::is_error_code_enum<ocistore::error> : std::true_type {};
template <> struct std::is_error_condition_enum<ocistore::condition> : std::true_type {};

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/error.ipp>
#endif
