// ocistore/transport_types.hpp: the values a *Transport* returns.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace ocistore {

/// A manifest or index as the registry served it.
struct fetched_manifest {
    std::string bytes;                          ///< the body, exactly as received (digests are over these)
    std::string media_type;                     ///< the Content-Type, as sent (may carry parameters)
    std::optional<digest> server_digest;        ///< Docker-Content-Digest: a hint, never trusted
};

/// What a HEAD on a manifest reports: enough to decide whether the cache is current.
struct resolved_manifest {
    digest manifest_digest;                     ///< from Docker-Content-Digest, or the requested digest
    std::string media_type;                     ///< Content-Type
    std::optional<std::uint64_t> size;          ///< Content-Length, when sent
};

} // namespace ocistore
