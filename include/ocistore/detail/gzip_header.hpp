// Internal: an incremental gzip member header parser (RFC 1952 §2.3), for backends that
// decode raw deflate data.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

namespace ocistore::detail {

/** Consumes one gzip member header, fed in pieces of any size (down to one byte): the fixed
    10 bytes (ID1 ID2 CM FLG MTIME XFL OS), then FEXTRA, FNAME, FCOMMENT and FHCRC as FLG
    says. Rejects a wrong magic, a method other than 8 (deflate), reserved FLG bits and a
    header CRC-16 mismatch, as zlib does. Field contents are skipped, never stored, so a
    hostile header costs no memory. */
class gzip_header_parser {
public:
    /** Consumes header bytes from the front of `in` and returns how many; done() tells
        whether the header is complete. On a malformed header sets `ec`
        (`error::invalid_archive`) and `why`. */
    std::size_t feed(std::span<std::byte const> in, error_code& ec, std::string& why)
    {
        ec.clear();
        auto const* p = reinterpret_cast<unsigned char const*>(in.data());
        std::size_t const n = in.size();
        std::size_t i = 0;
        while (state_ != state::done) {
            if (i == n) return i;
            switch (state_) {
            case state::fixed: {
                if (!collect(p, n, i, 10)) return i;
                if (field_[0] != 0x1f || field_[1] != 0x8b) {
                    fail(ec, why, "not a gzip member: found " + hex(field_[0]) + " " + hex(field_[1]) +
                                      " where the magic 1f 8b belongs");
                    return i;
                }
                if (field_[2] != 8) {
                    fail(ec, why,
                         "gzip header names compression method " + std::to_string(field_[2]) +
                             "; only 8 (deflate) is defined");
                    return i;
                }
                if (field_[3] & 0xe0) {
                    fail(ec, why, "gzip header has reserved flag bits set (FLG " + hex(field_[3]) + ")");
                    return i;
                }
                flags_ = field_[3];
                crc_ = crc32(crc_, field_, 10);
                advance(state::fixed);
                break;
            }
            case state::xlen:
                if (!collect(p, n, i, 2)) return i;
                crc_ = crc32(crc_, field_, 2);
                extra_left_ = static_cast<std::uint32_t>(field_[0] | field_[1] << 8);
                state_ = state::extra;
                break;
            case state::extra: {
                std::size_t const k = std::min<std::size_t>(extra_left_, n - i);
                crc_ = crc32(crc_, p + i, static_cast<uInt>(k));
                i += k;
                extra_left_ -= static_cast<std::uint32_t>(k);
                if (extra_left_ != 0) return i;
                advance(state::extra);
                break;
            }
            case state::name:
            case state::comment: {
                auto const* z = static_cast<unsigned char const*>(std::memchr(p + i, 0, n - i));
                std::size_t const k = z ? static_cast<std::size_t>(z - (p + i)) + 1 : n - i;
                crc_ = crc32(crc_, p + i, static_cast<uInt>(k));
                i += k;
                if (!z) return i;
                advance(state_);
                break;
            }
            case state::hcrc: {
                if (!collect(p, n, i, 2)) return i;
                unsigned const stored = field_[0] | field_[1] << 8;
                unsigned const computed = static_cast<unsigned>(crc_ & 0xffff);
                if (stored != computed) {
                    fail(ec, why,
                         "gzip header CRC-16 mismatch: stored " + hex16(stored) + ", computed " + hex16(computed));
                    return i;
                }
                state_ = state::done;
                break;
            }
            case state::done: break;
            }
        }
        return i;
    }

    /// Whether a whole header has been consumed.
    bool done() const noexcept { return state_ == state::done; }
    /// Prepares for the next member's header.
    void reset() noexcept { *this = gzip_header_parser{}; }

private:
    enum class state : unsigned char { fixed, xlen, extra, name, comment, hcrc, done };
    static constexpr unsigned char fextra = 0x04, fname = 0x08, fcomment = 0x10, fhcrc = 0x02;

    /// Gathers a fixed-size field of `size` bytes into field_; true once complete.
    bool collect(unsigned char const* p, std::size_t n, std::size_t& i, std::size_t size) noexcept
    {
        std::size_t const k = std::min(size - have_, n - i);
        std::memcpy(field_ + have_, p + i, k);
        have_ += k;
        i += k;
        if (have_ < size) return false;
        have_ = 0;
        return true;
    }

    /// Moves to the first optional field after `from` that FLG announces.
    void advance(state from) noexcept
    {
        state next = state::done;
        if (from < state::xlen && (flags_ & fextra)) next = state::xlen;
        else if (from < state::name && (flags_ & fname)) next = state::name;
        else if (from < state::comment && (flags_ & fcomment)) next = state::comment;
        else if (from < state::hcrc && (flags_ & fhcrc)) next = state::hcrc;
        state_ = next;
    }

    static std::string hex(unsigned v)
    {
        char b[8];
        std::snprintf(b, sizeof b, "%02x", v & 0xff);
        return b;
    }
    static std::string hex16(unsigned v)
    {
        char b[8];
        std::snprintf(b, sizeof b, "0x%04x", v & 0xffff);
        return b;
    }
    static void fail(error_code& ec, std::string& why, std::string msg)
    {
        ec = make_error_code(error::invalid_archive);
        why = std::move(msg);
    }

    state state_ = state::fixed;
    unsigned char flags_ = 0;
    unsigned char field_[10] = {};
    std::size_t have_ = 0;
    std::uint32_t extra_left_ = 0;
    uLong crc_ = 0;
};

} // namespace ocistore::detail
