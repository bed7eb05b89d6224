// Internal: the zlib gzip backend of basic_decompress_source (included by its .ipp only).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/stream_decoder.hpp>
#include <ocistore/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <new>
#include <span>
#include <string>

namespace ocistore::detail {

/** gzip members through zlib's inflate() in gzip-only mode (windowBits 16 + 15): zlib parses
    the header (FEXTRA, FNAME, FCOMMENT, FHCRC checked) and verifies the CRC-32 and ISIZE
    trailer; inflateReset() starts the next member. Not copyable. */
class zlib_inflater final : public stream_decoder {
public:
    /// Initialises the inflater; on failure sets `ec` (`error::invalid_argument`) and `why`.
    zlib_inflater(error_code& ec, std::string& why)
    {
        ec.clear();
        int const r = inflateInit2(&z_, 16 + MAX_WBITS);
        if (r == Z_MEM_ERROR) throw std::bad_alloc();
        if (r != Z_OK) {
            ec = make_error_code(error::invalid_argument);
            why = std::string("zlib: inflateInit2 failed: ") + (z_.msg ? z_.msg : zError(r));
            return;
        }
        ready_ = true;
    }
    zlib_inflater(zlib_inflater const&) = delete;
    zlib_inflater& operator=(zlib_inflater const&) = delete;
    ~zlib_inflater() override
    {
        if (ready_) inflateEnd(&z_);
    }

    decode_step step(std::span<std::byte const> in, std::span<std::byte> out, error_code& ec,
                     std::string& why) override
    {
        ec.clear();
        uInt const in_size = static_cast<uInt>(std::min<std::size_t>(in.size(), UINT_MAX));
        uInt const out_size = static_cast<uInt>(std::min<std::size_t>(out.size(), UINT_MAX));
        // zlib does not write through next_in; the cast only satisfies its pre-const API.
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
        z_.avail_in = in_size;
        z_.next_out = reinterpret_cast<Bytef*>(out.data());
        z_.avail_out = out_size;
        int const r = inflate(&z_, Z_NO_FLUSH);
        decode_step s;
        s.consumed = in_size - z_.avail_in;
        s.produced = out_size - z_.avail_out;
        switch (r) {
        case Z_OK:
        case Z_BUF_ERROR: break; // no progress possible without more input
        case Z_STREAM_END: s.end = true; break;
        case Z_MEM_ERROR: throw std::bad_alloc();
        case Z_NEED_DICT:
            ec = make_error_code(error::invalid_archive);
            why = "zlib: stream needs a preset dictionary";
            break;
        default:
            ec = make_error_code(error::invalid_archive);
            why = std::string("zlib: ") + (z_.msg ? z_.msg : zError(r));
            break;
        }
        return s;
    }

    void next_member() override { inflateReset(&z_); }

private:
    z_stream z_{};
    bool ready_ = false;
};

} // namespace ocistore::detail
