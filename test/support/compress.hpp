// Test support: compressed streams made in-process (zlib, libzstd, a hand-built deflate bomb)
// or by external commands, and test data generators.
#pragma once

#include <support/temp_dir.hpp>

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ocistore_test {

/// `n` pseudo-random bytes (incompressible).
inline std::string random_bytes(std::size_t n, std::uint64_t seed = 1)
{
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

/// `n` bytes of word salad with numbers (compresses about 3:1, like text and binaries).
inline std::string text_bytes(std::size_t n, std::uint64_t seed = 1)
{
    static constexpr std::string_view words[] = {"layer ", "manifest ", "digest ", "sha256:", "blob ", "tar ",
                                                 "usr/lib/", "config\n", "\x7f" "ELF", {"\0\0\0\0", 4}, "index ", "zstd "};
    std::mt19937_64 rng(seed);
    std::string s;
    s.reserve(n + 32);
    while (s.size() < n) {
        auto const r = rng();
        s += words[r % std::size(words)];
        if (r & 0x100) s += std::to_string(r >> 40);
    }
    s.resize(n);
    return s;
}

/// Optional gzip header fields for gzip_compress().
struct gzip_fields {
    std::string extra;   ///< FEXTRA payload (empty: no FEXTRA)
    std::string name;    ///< FNAME (empty: none)
    std::string comment; ///< FCOMMENT (empty: none)
    bool hcrc = false;   ///< FHCRC
};

/** One gzip member of `data` by zlib's deflate. With `flush_every` > 0, the deflate data is
    cut every that many input bytes with `flush` (Z_SYNC_FLUSH: an empty stored block, as
    pigz joins its blocks; Z_FULL_FLUSH: also no back references across, as `pigz -i`). */
inline std::string gzip_compress(std::string_view data, int level = 6, int strategy = Z_DEFAULT_STRATEGY,
                                 gzip_fields const* fields = nullptr, std::size_t flush_every = 0,
                                 int flush = Z_SYNC_FLUSH)
{
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, strategy) != Z_OK)
        throw std::runtime_error("deflateInit2");
    gz_header h{};
    std::string extra, name, comment; // zlib keeps pointers to these until the header is written
    if (fields) {
        extra = fields->extra, name = fields->name, comment = fields->comment;
        h.os = 3;
        if (!extra.empty()) {
            h.extra = reinterpret_cast<Bytef*>(extra.data());
            h.extra_len = static_cast<uInt>(extra.size());
        }
        if (!name.empty()) h.name = reinterpret_cast<Bytef*>(name.data());
        if (!comment.empty()) h.comment = reinterpret_cast<Bytef*>(comment.data());
        h.hcrc = fields->hcrc ? 1 : 0;
        deflateSetHeader(&z, &h);
    }
    std::size_t const pieces = flush_every ? data.size() / flush_every + 1 : 1;
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 1024 + 16 * pieces, '\0');
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int r = Z_OK;
    for (std::size_t pos = 0;;) {
        std::size_t const k = flush_every ? std::min(flush_every, data.size() - pos) : data.size();
        bool const last = pos + k == data.size();
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + pos));
        z.avail_in = static_cast<uInt>(k);
        r = deflate(&z, last ? Z_FINISH : flush);
        pos += k;
        if (last) break;
    }
    out.resize(z.total_out);
    deflateEnd(&z);
    if (r != Z_STREAM_END) throw std::runtime_error("deflate");
    return out;
}

/// One zstd frame of `data`. `window_log` > 0 forces that window and leaves the content
/// size out of the frame header (as when compressing a pipe).
inline std::string zstd_compress(std::string_view data, int level = 3, bool checksum = true, int window_log = 0)
{
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
    if (window_log > 0) ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log);
    std::string out;
    std::string buf(ZSTD_CStreamOutSize(), '\0');
    // Feed the input before ending the frame, so the content size stays unknown.
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    for (ZSTD_EndDirective mode : {ZSTD_e_continue, ZSTD_e_end}) {
        for (;;) {
            ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
            std::size_t const r = ZSTD_compressStream2(c, &ob, &in, mode);
            if (ZSTD_isError(r)) throw std::runtime_error(ZSTD_getErrorName(r));
            out.append(buf.data(), ob.pos);
            if (mode == ZSTD_e_continue ? in.pos == in.size : r == 0) break;
        }
    }
    ZSTD_freeCCtx(c);
    return out;
}

/// One zstd frame holding `n` zeros (level 1, streamed; about 0.25 s per GiB).
inline std::string zstd_zeros(std::uint64_t n)
{
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
    std::string const zeros(1 << 20, '\0');
    std::string out, buf(ZSTD_CStreamOutSize(), '\0');
    for (;;) {
        std::size_t const k = n < zeros.size() ? static_cast<std::size_t>(n) : zeros.size();
        n -= k;
        ZSTD_inBuffer in{zeros.data(), k, 0};
        ZSTD_EndDirective const mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
        for (;;) {
            ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
            std::size_t const r = ZSTD_compressStream2(c, &ob, &in, mode);
            if (ZSTD_isError(r)) throw std::runtime_error(ZSTD_getErrorName(r));
            out.append(buf.data(), ob.pos);
            if (mode == ZSTD_e_continue ? in.pos == in.size : r == 0) break;
        }
        if (n == 0) break;
    }
    ZSTD_freeCCtx(c);
    return out;
}

/// A zstd skippable frame (magic 0x184D2A50 + `variant`) carrying `payload`.
inline std::string zstd_skippable_frame(std::string_view payload, unsigned variant = 0)
{
    std::string f;
    auto le32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) f += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    le32(0x184D2A50u + (variant & 15));
    le32(static_cast<std::uint32_t>(payload.size()));
    f += payload;
    return f;
}

/** One gzip member of `n` zeros, built directly as a fixed-Huffman deflate block of
    length-258 distance-1 matches (13 bits per 258 bytes), with a correct CRC-32 and ISIZE.
    Instant even for many GiB: the decompression-bomb shape. */
inline std::string gzip_zeros(std::uint64_t n)
{
    std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    std::uint64_t acc = 0;
    int bits = 0;
    auto put = [&](std::uint32_t v, int count) { // LSB first
        acc |= static_cast<std::uint64_t>(v) << bits;
        bits += count;
        while (bits >= 8) {
            out += static_cast<char>(acc & 0xff);
            acc >>= 8;
            bits -= 8;
        }
    };
    auto reversed = [](std::uint32_t code, int len) { // Huffman codes go MSB first
        std::uint32_t r = 0;
        for (int i = 0; i < len; ++i) r |= ((code >> i) & 1u) << (len - 1 - i);
        return r;
    };
    std::uint32_t const literal0 = reversed(0x30, 8);                    // literal 0x00
    std::uint32_t const match = reversed(0xc5, 8) | reversed(0, 5) << 8; // length 258 (285), distance 1 (0)
    put(1, 1);                                                           // BFINAL
    put(1, 2);                                                           // BTYPE fixed Huffman
    std::uint64_t left = n;
    if (left > 0) put(literal0, 8), --left;
    out.reserve(out.size() + static_cast<std::size_t>(left / 258 * 13 / 8) + 64);
    // Eight matches are 13 whole bytes: after one group aligns the bit buffer, every further
    // group appends the same 13 bytes, so most of them are copied rather than bit-packed.
    for (int i = 0; i < 8 && left >= 258; ++i, left -= 258) put(match, 13);
    if (left >= 16 * 258) {
        std::size_t const from = out.size();
        for (int i = 0; i < 8; ++i, left -= 258) put(match, 13);
        std::string const group = out.substr(from);
        for (; left >= 8 * 258; left -= 8 * 258) out += group;
    }
    for (; left >= 258; left -= 258) put(match, 13);
    for (; left > 0; --left) put(literal0, 8);
    put(reversed(0, 7), 7); // end of block
    if (bits > 0) out += static_cast<char>(acc & 0xff);
    // CRC-32 of n zeros by doubling.
    unsigned char const zero = 0;
    uLong crc = crc32(0, nullptr, 0), block = crc32(0, &zero, 1);
    z_off_t len = 1;
    for (std::uint64_t k = n; k; k >>= 1, block = crc32_combine(block, block, len), len *= 2)
        if (k & 1) crc = crc32_combine(crc, block, len);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
    return out;
}

/// Whether `name` is a command on PATH.
inline bool has_command(std::string const& name)
{
    return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

/// Runs the shell command `cmd` with `input` on stdin; returns its stdout. Throws when it fails.
inline std::string filter_command(std::string const& cmd, std::string_view input)
{
    temp_dir dir("ocistore-filter");
    std::string const in = (dir / "in").string(), out = (dir / "out").string();
    {
        std::ofstream f(in, std::ios::binary);
        f.write(input.data(), static_cast<std::streamsize>(input.size()));
    }
    if (std::system((cmd + " < '" + in + "' > '" + out + "'").c_str()) != 0)
        throw std::runtime_error("command failed: " + cmd);
    std::ifstream f(out, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

} // namespace ocistore_test
