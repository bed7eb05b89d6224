// Internal: the zstd backend of basic_decompress_source (included by its .ipp only).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/stream_decoder.hpp>
#include <ocistore/error.hpp>

#include <zstd.h>
#include <zstd_errors.h>

#include <cstddef>
#include <new>
#include <span>
#include <string>

namespace ocistore::detail {

/** zstd frames through ZSTD_decompressStream(). Each frame's end (0 returned: decoded,
    content checksum verified when present, output flushed) is reported as a member end;
    skippable frames are skipped by libzstd and end like any frame. Frames whose window
    exceeds 2^window_log_max bytes are refused with `error::limit_exceeded`. Not copyable. */
class zstd_decoder final : public stream_decoder {
public:
    /// On an invalid `window_log_max` sets `ec` (`error::invalid_argument`) and `why`.
    zstd_decoder(int window_log_max, error_code& ec, std::string& why)
        : d_(ZSTD_createDStream()), window_log_max_(window_log_max)
    {
        ec.clear();
        if (!d_) throw std::bad_alloc();
        std::size_t const r = ZSTD_DCtx_setParameter(d_, ZSTD_d_windowLogMax, window_log_max);
        if (ZSTD_isError(r)) {
            ec = make_error_code(error::invalid_argument);
            why = "zstd: window log limit " + std::to_string(window_log_max) + " refused: " + ZSTD_getErrorName(r);
        }
    }
    zstd_decoder(zstd_decoder const&) = delete;
    zstd_decoder& operator=(zstd_decoder const&) = delete;
    ~zstd_decoder() override { ZSTD_freeDStream(d_); }

    decode_step step(std::span<std::byte const> in, std::span<std::byte> out, error_code& ec,
                     std::string& why) override
    {
        ec.clear();
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        std::size_t const r = ZSTD_decompressStream(d_, &ob, &ib);
        decode_step s;
        s.consumed = ib.pos;
        s.produced = ob.pos;
        if (ZSTD_isError(r)) {
            switch (ZSTD_getErrorCode(r)) {
            case ZSTD_error_memory_allocation: throw std::bad_alloc();
            case ZSTD_error_frameParameter_windowTooLarge:
                ec = make_error_code(error::limit_exceeded);
                why = "zstd: frame needs a window larger than 2^" + std::to_string(window_log_max_) +
                      " bytes (decompress_options::zstd_window_log_max)";
                break;
            default:
                ec = make_error_code(error::invalid_archive);
                why = std::string("zstd: ") + ZSTD_getErrorName(r);
                break;
            }
            return s;
        }
        s.end = r == 0;
        return s;
    }

    void next_member() override {}

private:
    ZSTD_DStream* d_;
    int window_log_max_;
};

} // namespace ocistore::detail
