// Non-template bodies for ocistore/decompress_source.hpp: magic checks, member sequencing,
// limits and the backend factory.
#pragma once

#include <ocistore/decompress_source.hpp>
#include <ocistore/detail/isal_inflater.hpp>
#include <ocistore/detail/zlib_inflater.hpp>
#include <ocistore/detail/zstd_decoder.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace ocistore {
namespace detail::decompress_impl {

inline unsigned char u8(std::byte b) noexcept { return static_cast<unsigned char>(b); }

inline bool is_gzip_magic(std::byte const* p, std::size_t n) noexcept
{
    return n >= 2 && u8(p[0]) == 0x1f && u8(p[1]) == 0x8b;
}
inline bool is_zstd_frame_magic(std::byte const* p, std::size_t n) noexcept
{
    return n >= 4 && u8(p[0]) == 0x28 && u8(p[1]) == 0xb5 && u8(p[2]) == 0x2f && u8(p[3]) == 0xfd;
}
/// Skippable frames: magic 0x184D2A50 to 0x184D2A5F, little-endian.
inline bool is_zstd_skippable_magic(std::byte const* p, std::size_t n) noexcept
{
    return n >= 4 && (u8(p[0]) & 0xf0) == 0x50 && u8(p[1]) == 0x2a && u8(p[2]) == 0x4d && u8(p[3]) == 0x18;
}

/// Bytes needed to recognise the start of a member or frame.
inline std::size_t magic_size(layer_compression c) noexcept { return c == layer_compression::gzip ? 2 : 4; }

/// Whether the `n` (< magic_size) bytes at `p` could begin a member or frame of `c`.
inline bool is_magic_prefix(layer_compression c, std::byte const* p, std::size_t n) noexcept
{
    static constexpr unsigned char gzip[] = {0x1f, 0x8b};
    static constexpr unsigned char zstd[] = {0x28, 0xb5, 0x2f, 0xfd};
    static constexpr unsigned char skippable[] = {0x50, 0x2a, 0x4d, 0x18};
    bool frame = true, skip = true;
    for (std::size_t i = 0; i < n; ++i) {
        if (c == layer_compression::gzip) {
            if (u8(p[i]) != gzip[i]) return false;
            continue;
        }
        frame = frame && u8(p[i]) == zstd[i];
        skip = skip && (i == 0 ? (u8(p[i]) & 0xf0) == skippable[0] : u8(p[i]) == skippable[i]);
    }
    return c == layer_compression::gzip || frame || skip;
}

/// "1f 8b 08 00" for up to the first 4 bytes.
inline std::string hex_bytes(std::byte const* p, std::size_t n)
{
    std::string s;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 4); ++i) {
        char b[4];
        std::snprintf(b, sizeof b, "%02x", u8(p[i]));
        if (i) s += ' ';
        s += b;
    }
    return s;
}

/// What the bytes at `p` look like, for messages: " (gzip magic)", " (zstd magic)" or "".
inline std::string_view known_magic(std::byte const* p, std::size_t n) noexcept
{
    if (is_gzip_magic(p, n)) return " (the gzip magic)";
    if (is_zstd_frame_magic(p, n)) return " (the zstd magic)";
    if (is_zstd_skippable_magic(p, n)) return " (a zstd skippable frame)";
    return "";
}

inline std::string_view expected_magic(layer_compression c) noexcept
{
    return c == layer_compression::gzip ? "the gzip magic 1f 8b"
                                        : "a zstd frame (28 b5 2f fd) or skippable frame (5? 2a 4d 18)";
}

inline std::string plural(std::uint64_t n, char const* what)
{
    return std::to_string(n) + ' ' + what + (n == 1 ? "" : "s");
}

} // namespace detail::decompress_impl

OCISTORE_DECL std::string_view to_string(gzip_backend b) noexcept
{
    switch (b) {
    case gzip_backend::automatic: return "automatic";
    case gzip_backend::zlib: return "zlib";
    case gzip_backend::isal: return "isal";
    }
    return "unknown";
}

namespace detail {

OCISTORE_DECL decompress_engine::decompress_engine(layer_compression c, decompress_options const& options)
    : compression_(c), options_(options), backend_(options.backend)
{
    if (backend_ == gzip_backend::automatic) backend_ = isal_available ? gzip_backend::isal : gzip_backend::zlib;
    // An uncompressed stream only needs room to peek at its first bytes.
    capacity_ = c == layer_compression::none ? 64 : input_buffer_size;
    buf_ = std::make_unique_for_overwrite<std::byte[]>(capacity_);
}

OCISTORE_DECL decompress_engine::~decompress_engine() = default;

OCISTORE_DECL decompress_engine::result decompress_engine::fail(error e, std::string msg)
{
    phase_ = phase::failed;
    error_ = make_error_code(e);
    why_ = std::move(msg);
    return {action::failed, 0};
}

OCISTORE_DECL void decompress_engine::source_failed(error_code const& sec)
{
    phase_ = phase::failed;
    error_ = sec;
    why_ = "reading the layer stream at offset " + std::to_string(in_) + ": " + sec.message();
}

OCISTORE_DECL std::span<std::byte> decompress_engine::input_space() noexcept
{
    if (pos_ == end_) {
        pos_ = end_ = 0;
    } else if (pos_ > 0 && capacity_ - end_ < capacity_ / 4) {
        std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    return {buf_.get() + end_, capacity_ - end_};
}

OCISTORE_DECL void decompress_engine::input_read(std::size_t n) noexcept
{
    if (n == 0) eof_ = true;
    end_ += n;
    in_ += n;
}

OCISTORE_DECL void decompress_engine::direct_read(std::size_t n) noexcept
{
    if (n == 0) eof_ = true;
    in_ += n;
    out_ += n;
}

OCISTORE_DECL std::string decompress_engine::member_name() const
{
    return compression_ == layer_compression::gzip ? "gzip member " + std::to_string(members_)
                                                   : "zstd frame " + std::to_string(members_);
}

OCISTORE_DECL bool decompress_engine::make_decoder()
{
    if (decoder_) return true;
    error_code ec;
    std::string why;
    if (compression_ == layer_compression::zstd) {
        decoder_ = std::make_unique<zstd_decoder>(options_.zstd_window_log_max, ec, why);
    } else if (backend_ == gzip_backend::zlib) {
        decoder_ = std::make_unique<zlib_inflater>(ec, why);
    } else {
#if defined(OCISTORE_HAS_ISAL)
        decoder_ = std::make_unique<isal_inflater>();
#else
        ec = make_error_code(error::invalid_argument);
        why = "gzip_backend::isal requested, but ocistore was built without ISA-L";
#endif
    }
    if (ec) {
        decoder_.reset();
        fail(error::invalid_argument, std::move(why));
        return false;
    }
    return true;
}

OCISTORE_DECL decompress_engine::result decompress_engine::boundary(bool& proceed)
{
    using namespace decompress_impl;
    proceed = false;
    bool const first = phase_ == phase::start;
    std::size_t const need = magic_size(compression_);
    if (available() < need && !eof_) return {action::read_input, 0};
    std::byte const* p = cursor();
    std::size_t const n = available();
    // Messages are built on the failure paths only.
    auto name = [&] { return std::string(to_string(compression_)); };
    auto found = [&] { return hex_bytes(p, n) + std::string(known_magic(p, n)); };
    auto unit = [&] { return compression_ == layer_compression::gzip ? "member" : "frame"; };

    if (compression_ == layer_compression::none) {
        if (is_gzip_magic(p, n) || is_zstd_frame_magic(p, n))
            return fail(error::invalid_archive, "uncompressed layer starts with " + found() +
                                                    ": the stream is compressed but its media type says it is not");
        phase_ = phase::passthrough;
        proceed = true;
        return {action::end, 0};
    }
    if (!first && n == 0) { // eof_: a clean end after the last member
        phase_ = phase::done;
        return {action::end, 0};
    }
    std::string_view const magic = expected_magic(compression_);
    if (n < need && is_magic_prefix(compression_, p, n)) {
        if (first && n == 0) return fail(error::truncated, name() + " stream is empty: expected " + std::string(magic));
        if (first)
            return fail(error::truncated, name() + " stream ends after " + plural(n, "byte") + " (" + found() +
                                              "), inside " + std::string(magic));
        return fail(error::truncated, name() + " stream ends " + plural(n, "byte") + " after " + member_name() +
                                          " (" + found() + "), inside the magic of the next " + unit());
    }
    bool const ok = compression_ == layer_compression::gzip
                        ? is_gzip_magic(p, n)
                        : is_zstd_frame_magic(p, n) || is_zstd_skippable_magic(p, n);
    if (!ok) {
        if (first)
            return fail(error::invalid_archive,
                        name() + " stream does not start with " + std::string(magic) + ": found " + found());
        return fail(error::invalid_archive, "after " + member_name() + ", at compressed offset " +
                                                std::to_string(consumed()) + ": found " + found() + " where another " +
                                                unit() + " or the end of the stream belongs (trailing data is not accepted)");
    }
    if (!make_decoder()) return {action::failed, 0};
    if (!first) decoder_->next_member();
    ++members_;
    phase_ = phase::member;
    proceed = true;
    return {action::end, 0};
}

OCISTORE_DECL decompress_engine::result decompress_engine::member(std::span<std::byte> out)
{
    for (;;) {
        std::uint64_t const allowed = options_.max_output_bytes - out_;
        std::byte scratch{};
        // At the limit, decode into one scratch byte: producing it means the limit is exceeded.
        std::span<std::byte> const target =
            allowed == 0 ? std::span<std::byte>(&scratch, 1)
                         : out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), allowed)));
        std::uint64_t const at = consumed();
        error_code ec;
        std::string why;
        auto const s = decoder_->step(std::span<std::byte const>(cursor(), available()), target, ec, why);
        pos_ += s.consumed;
        if (ec) {
            phase_ = phase::failed;
            error_ = ec;
            why_ = member_name() + " near compressed offset " + std::to_string(at) + ": " + why;
            return {action::failed, 0};
        }
        if (s.produced > 0 && allowed == 0)
            return fail(error::limit_exceeded, "decompressed size exceeds max_output_bytes (" +
                                                   std::to_string(options_.max_output_bytes) + " bytes) in " +
                                                   member_name());
        out_ += s.produced;
        if (s.end) phase_ = phase::between;
        if (s.produced > 0) return {action::deliver, s.produced};
        if (s.end) return {action::end, 0}; // the caller's loop continues at the boundary
        if (s.consumed > 0) continue;
        if (!eof_) {
            if (available() == capacity_)
                return fail(error::invalid_archive, member_name() + ": the decoder made no progress with " +
                                                        std::to_string(capacity_) + " bytes of input");
            return {action::read_input, 0};
        }
        return fail(error::truncated, std::string(to_string(compression_)) + " stream ends inside " + member_name() +
                                          " after " + decompress_impl::plural(in_, "compressed byte"));
    }
}

OCISTORE_DECL decompress_engine::result decompress_engine::passthrough(std::span<std::byte> out)
{
    std::uint64_t const allowed = options_.max_output_bytes - out_;
    if (available() > 0) {
        if (allowed == 0)
            return fail(error::limit_exceeded, "uncompressed layer exceeds max_output_bytes (" +
                                                   std::to_string(options_.max_output_bytes) + " bytes)");
        std::size_t const k = static_cast<std::size_t>(std::min<std::uint64_t>({available(), out.size(), allowed}));
        std::memcpy(out.data(), cursor(), k);
        pos_ += k;
        out_ += k;
        return {action::deliver, k};
    }
    if (eof_) {
        phase_ = phase::done;
        return {action::end, 0};
    }
    // At the limit, peek into the buffer: one more byte is an error, none is the end.
    if (allowed == 0) return {action::read_input, 0};
    return {action::read_direct, static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), allowed))};
}

OCISTORE_DECL decompress_engine::result decompress_engine::decode(std::span<std::byte> out)
{
    if (out.empty()) return {action::deliver, 0};
    // Keeps every backend's 32-bit counters exact.
    if (out.size() > std::numeric_limits<std::uint32_t>::max()) out = out.first(std::numeric_limits<std::uint32_t>::max());
    for (;;) {
        result r{action::end, 0};
        bool proceed = false;
        switch (phase_) {
        case phase::failed: return {action::failed, 0};
        case phase::done: return {action::end, 0};
        case phase::start:
        case phase::between:
            r = boundary(proceed);
            if (proceed) continue;
            return r;
        case phase::member:
            r = member(out);
            if (r.what == action::end && phase_ == phase::between) continue;
            return r;
        case phase::passthrough: return passthrough(out);
        }
    }
}

} // namespace detail
} // namespace ocistore
