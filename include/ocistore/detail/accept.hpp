// Internal: matching a manifest's media type against a transport's Accept list.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/media_types.hpp>

#include <span>
#include <string>
#include <string_view>

namespace ocistore::detail {

/// Whether a manifest of `media_type` may be served to a client that sent `accept`: an empty
/// list or a "*/*" entry accepts everything, otherwise an entry must have the same essence
/// (parameters and case ignored).
inline bool media_type_accepted(std::string_view media_type, std::span<std::string_view const> accept)
{
    if (accept.empty()) return true;
    std::string const have = media_type_essence(media_type);
    for (std::string_view a : accept) {
        std::string const want = media_type_essence(a);
        if (want == "*/*" || want == have) return true;
    }
    return false;
}

/// "a, b, c" for diagnostics.
inline std::string join_accept(std::span<std::string_view const> accept)
{
    std::string out;
    for (std::string_view a : accept) {
        if (!out.empty()) out += ", ";
        out += a;
    }
    return out;
}

} // namespace ocistore::detail
