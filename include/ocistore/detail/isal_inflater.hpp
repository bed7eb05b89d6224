// Internal: the ISA-L igzip gzip backend of basic_decompress_source (included by its .ipp
// only, and only when OCISTORE_HAS_ISAL is defined).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/gzip_header.hpp>
#include <ocistore/detail/stream_decoder.hpp>
#include <ocistore/error.hpp>

#if defined(OCISTORE_HAS_ISAL)

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ocistore::detail {

/** gzip members through ISA-L's isal_inflate().

    The member header is parsed by gzip_header_parser, not by ISA-L: when a header is split
    across calls, isal_inflate()'s own parsing (crc_flag ISAL_GZIP) resumes with a fresh
    isal_gzip_header whose `flags` isal_gzip_header_init() leaves uninitialised and whose
    header CRC restarts at zero (ISA-L 2.30), so a split header with FHCRC fails with
    ISAL_INCORRECT_CHECKSUM and the other optional fields depend on stack contents. The
    deflate data is decoded with crc_flag
    ISAL_GZIP_NO_HDR_VER, which computes the CRC-32 of the output and checks it and ISIZE
    against the 8-byte trailer (check_gzip_checksum() in igzip_inflate.c, ISA-L 2.30), then
    sets block_state to ISAL_BLOCK_FINISH with next_in just past the trailer, so the next
    member's bytes stay with the caller. Not copyable. */
class isal_inflater final : public stream_decoder {
public:
    isal_inflater() : st_(std::make_unique_for_overwrite<inflate_state>())
    {
        isal_inflate_init(st_.get());
        st_->crc_flag = ISAL_GZIP_NO_HDR_VER;
    }

    decode_step step(std::span<std::byte const> in, std::span<std::byte> out, error_code& ec,
                     std::string& why) override
    {
        ec.clear();
        decode_step s;
        if (!header_.done()) {
            s.consumed = header_.feed(in, ec, why);
            if (ec || !header_.done()) return s;
            isal_inflate_reset(st_.get()); // keeps crc_flag
            in = in.subspan(s.consumed);
        }
        auto const in_size = static_cast<std::uint32_t>(std::min<std::size_t>(in.size(), UINT32_MAX));
        auto const out_size = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), UINT32_MAX));
        // ISA-L does not write through next_in; the cast only satisfies its API.
        st_->next_in = reinterpret_cast<std::uint8_t*>(const_cast<std::byte*>(in.data()));
        st_->avail_in = in_size;
        st_->next_out = reinterpret_cast<std::uint8_t*>(out.data());
        st_->avail_out = out_size;
        int const r = isal_inflate(st_.get());
        s.consumed += in_size - st_->avail_in;
        s.produced = out_size - st_->avail_out;
        if (r < 0) {
            ec = make_error_code(error::invalid_archive);
            why = std::string("isa-l: ") + message(r);
            return s;
        }
        s.end = st_->block_state == ISAL_BLOCK_FINISH;
        return s;
    }

    void next_member() override { header_.reset(); }

private:
    static char const* message(int r) noexcept
    {
        switch (r) {
        case ISAL_INVALID_BLOCK: return "invalid deflate block";
        case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
        case ISAL_INVALID_LOOKBACK: return "invalid lookback distance";
        case ISAL_INVALID_WRAPPER: return "invalid gzip wrapper";
        case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
        case ISAL_INCORRECT_CHECKSUM: return "CRC-32 or ISIZE in the gzip trailer does not match the data";
        case ISAL_NEED_DICT: return "stream needs a preset dictionary";
        default: return "inflate failed";
        }
    }

    std::unique_ptr<inflate_state> st_;
    gzip_header_parser header_;
};

} // namespace ocistore::detail

#endif // OCISTORE_HAS_ISAL
