// Internal: the interface of the decompression backends behind basic_decompress_source.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace ocistore::detail {

/// What one decoder step did.
struct decode_step {
    std::size_t consumed = 0; ///< input bytes used
    std::size_t produced = 0; ///< output bytes written
    bool end = false;         ///< the current gzip member or zstd frame ended, its checksum verified
};

/** A streaming decoder of one compressed member (gzip) or frame (zstd) at a time.

    step() never holds on to `in` or `out` between calls: unconsumed input stays with the
    caller and is passed again. A step that consumes nothing, produces nothing and does not
    end the member needs more input. After `end`, next_member() prepares for the member
    that follows. After a failure the decoder is unusable. */
class stream_decoder {
public:
    virtual ~stream_decoder() = default;

    /** Decodes from `in` into `out` (`out` is not empty). On failure sets `ec`
        (`error::invalid_archive`, or `error::limit_exceeded` for a refused resource need)
        and `why` (the backend's message, without position). */
    virtual decode_step step(std::span<std::byte const> in, std::span<std::byte> out, error_code& ec,
                             std::string& why) = 0;

    /// Starts the next member after step() reported `end`.
    virtual void next_member() = 0;
};

} // namespace ocistore::detail
