// Non-template bodies for ocistore/error.hpp.
#pragma once

#include <ocistore/error.hpp>

#include <cerrno>

namespace ocistore {
namespace detail {

inline int condition_of(error e) noexcept
{
    switch (e) {
    case error::invalid_reference:
    case error::invalid_digest:
    case error::unsupported_digest_algorithm:
    case error::invalid_json:
    case error::invalid_manifest:
    case error::invalid_config:
    case error::unsupported_media_type:
    case error::unsupported_schema:
    case error::too_large:
    case error::invalid_platform:
    case error::invalid_argument:
    case error::invalid_archive:
    case error::unsafe_path:
    case error::limit_exceeded: return static_cast<int>(condition::invalid_input);
    case error::digest_mismatch:
    case error::size_mismatch:
    case error::diff_id_mismatch:
    case error::truncated:
    case error::metadata_corrupt: return static_cast<int>(condition::integrity);
    case error::not_found:
    case error::no_matching_platform:
    case error::not_cached: return static_cast<int>(condition::not_found);
    case error::unauthorized:
    case error::denied: return static_cast<int>(condition::unauthorized);
    case error::connection_failed:
    case error::timeout:
    case error::server_error:
    case error::rate_limited: return static_cast<int>(condition::transient);
    case error::io_error:
    case error::lock_failed: return static_cast<int>(condition::storage);
    case error::build_failed:
    case error::unsupported_entry: return static_cast<int>(condition::build);
    case error::protocol_error:
    case error::cancelled: break;
    }
    return 0;
}

class error_category_impl final : public std::error_category {
public:
    char const* name() const noexcept override { return "ocistore"; }

    std::string message(int ev) const override
    {
        switch (static_cast<error>(ev)) {
        case error::invalid_reference: return "invalid image reference";
        case error::invalid_digest: return "invalid digest";
        case error::unsupported_digest_algorithm: return "unsupported digest algorithm";
        case error::invalid_json: return "malformed JSON";
        case error::invalid_manifest: return "invalid manifest";
        case error::invalid_config: return "invalid image config";
        case error::unsupported_media_type: return "unsupported media type";
        case error::unsupported_schema: return "unsupported manifest schema";
        case error::too_large: return "content exceeds its size limit";
        case error::invalid_platform: return "invalid platform";
        case error::invalid_argument: return "invalid argument";
        case error::invalid_archive: return "malformed archive";
        case error::unsafe_path: return "unsafe path";
        case error::limit_exceeded: return "limit exceeded";
        case error::digest_mismatch: return "digest mismatch";
        case error::size_mismatch: return "size mismatch";
        case error::diff_id_mismatch: return "diff_id mismatch";
        case error::truncated: return "truncated content";
        case error::metadata_corrupt: return "cached metadata is corrupt";
        case error::not_found: return "not found";
        case error::no_matching_platform: return "no manifest matches the requested platform";
        case error::not_cached: return "not in the cache";
        case error::unauthorized: return "unauthorized";
        case error::denied: return "access denied";
        case error::connection_failed: return "connection failed";
        case error::timeout: return "timed out";
        case error::server_error: return "server error";
        case error::rate_limited: return "rate limited";
        case error::protocol_error: return "protocol error";
        case error::io_error: return "I/O error";
        case error::lock_failed: return "lock not acquired";
        case error::build_failed: return "artifact build failed";
        case error::unsupported_entry: return "unsupported archive entry";
        case error::cancelled: return "cancelled";
        }
        return "unknown ocistore error";
    }

    std::error_condition default_error_condition(int ev) const noexcept override
    {
        if (int c = condition_of(static_cast<error>(ev))) return {c, condition_category()};
        return {ev, *this};
    }
};

/// errno values (generic or system category) that belong to a condition.
inline int condition_of_errno(int e) noexcept
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EROFS:
    case EACCES:
    case EPERM:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOLCK: return static_cast<int>(condition::storage);
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EPIPE: return static_cast<int>(condition::transient);
    default: return 0;
    }
}

class condition_category_impl final : public std::error_category {
public:
    char const* name() const noexcept override { return "ocistore.condition"; }

    std::string message(int ev) const override
    {
        switch (static_cast<condition>(ev)) {
        case condition::not_found: return "not found";
        case condition::integrity: return "integrity failure";
        case condition::transient: return "transient failure";
        case condition::unauthorized: return "unauthorized";
        case condition::invalid_input: return "invalid input";
        case condition::storage: return "storage failure";
        case condition::build: return "build failure";
        }
        return "unknown ocistore condition";
    }

    bool equivalent(error_code const& code, int cond) const noexcept override
    {
        if (code.category() == ocistore::error_category()) return condition_of(static_cast<error>(code.value())) == cond;
        if (code.category() == std::generic_category() || code.category() == std::system_category())
            return condition_of_errno(code.value()) == cond;
        return false;
    }
};

} // namespace detail

OCISTORE_DECL std::error_category const& error_category() noexcept
{
    static detail::error_category_impl const cat;
    return cat;
}

OCISTORE_DECL std::error_category const& condition_category() noexcept
{
    static detail::condition_category_impl const cat;
    return cat;
}

OCISTORE_DECL void throw_error(error_code const& ec, std::string const& what) { throw system_error(ec, what); }

} // namespace ocistore
