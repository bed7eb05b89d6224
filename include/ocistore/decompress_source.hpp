// ocistore/decompress_source.hpp: a *ByteSource* that decompresses a gzip or zstd layer stream.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/stream_decoder.hpp>
#include <ocistore/error.hpp>
#include <ocistore/media_types.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ocistore {

/// The gzip decoder behind basic_decompress_source.
enum class gzip_backend : unsigned char {
    automatic, ///< ISA-L when ocistore was built with it (isal_available), zlib otherwise
    zlib,      ///< zlib's inflate()
    isal,      ///< Intel ISA-L's isal_inflate(); fails with error::invalid_argument without ISA-L
};

/// "automatic", "zlib" or "isal".
OCISTORE_DECL std::string_view to_string(gzip_backend b) noexcept;

/// Whether ocistore was built with ISA-L (the CMake component found libisal).
#if defined(OCISTORE_HAS_ISAL)
inline constexpr bool isal_available = true;
#else
inline constexpr bool isal_available = false;
#endif

/// Run-time settings of basic_decompress_source.
struct decompress_options {
    /// Decompressed bytes allowed; one more is error::limit_exceeded (the decompression-bomb
    /// guard). Applies to uncompressed streams too.
    std::uint64_t max_output_bytes = std::uint64_t(64) << 30;
    /// Which gzip decoder to use.
    gzip_backend backend = gzip_backend::automatic;
    /// Largest zstd window accepted, as a power of two; larger frames fail with
    /// error::limit_exceeded. 29 (512 MiB) is what containerd's Go decoder accepts; the
    /// `zstd` command accepts 27 unless given --memory or --long.
    int zstd_window_log_max = 29;
};

namespace detail {

/** The non-template part of basic_decompress_source: the input buffer, magic checks, member
    sequencing, the output limit and failure bookkeeping. The template moves bytes between
    its *ByteSource* and this engine as decode() asks. */
class decompress_engine {
public:
    /// Capacity of the compressed-input buffer.
    static constexpr std::size_t input_buffer_size = 128 * 1024;

    enum class action : unsigned char {
        deliver,     ///< `size` bytes were written to the front of the output span
        read_input,  ///< read the source into input_space(), then call input_read()
        read_direct, ///< read the source into the first `size` bytes of the output span, then call direct_read()
        end,         ///< the stream ended cleanly
        failed,      ///< see code() and why()
    };
    struct result {
        action what;
        std::size_t size;
    };

    OCISTORE_DECL decompress_engine(layer_compression c, decompress_options const& options);
    decompress_engine(decompress_engine const&) = delete;
    decompress_engine& operator=(decompress_engine const&) = delete;
    OCISTORE_DECL ~decompress_engine();

    /// Makes progress into `out` until there is something to deliver or the source is needed.
    OCISTORE_DECL result decode(std::span<std::byte> out);
    /// Where to read more compressed input (never empty when decode() asked for input).
    OCISTORE_DECL std::span<std::byte> input_space() noexcept;
    /// `n` bytes were read into input_space(); 0 means the source ended.
    OCISTORE_DECL void input_read(std::size_t n) noexcept;
    /// `n` bytes were read straight into the output span; 0 means the source ended.
    OCISTORE_DECL void direct_read(std::size_t n) noexcept;
    /// The source failed with `sec`; the engine fails with the same code.
    OCISTORE_DECL void source_failed(error_code const& sec);

    error_code const& code() const noexcept { return error_; }
    std::string const& why() const noexcept { return why_; }
    std::uint64_t bytes_in() const noexcept { return in_; }
    std::uint64_t bytes_out() const noexcept { return out_; }
    std::uint64_t members() const noexcept { return members_; }
    layer_compression compression() const noexcept { return compression_; }
    gzip_backend backend() const noexcept { return backend_; }

private:
    enum class phase : unsigned char { start, member, between, passthrough, done, failed };

    std::size_t available() const noexcept { return end_ - pos_; }
    std::byte const* cursor() const noexcept { return buf_.get() + pos_; }
    /// Compressed bytes handed to the decoder so far.
    std::uint64_t consumed() const noexcept { return in_ - available(); }

    OCISTORE_DECL result fail(error e, std::string msg);
    /// Checks the magic at the start of the stream or of the next member.
    OCISTORE_DECL result boundary(bool& proceed);
    OCISTORE_DECL result member(std::span<std::byte> out);
    OCISTORE_DECL result passthrough(std::span<std::byte> out);
    /// Creates the decoder for compression_ on first use.
    OCISTORE_DECL bool make_decoder();
    /// "gzip member 2" / "zstd frame 1".
    OCISTORE_DECL std::string member_name() const;

    layer_compression compression_;
    decompress_options options_;
    gzip_backend backend_;
    phase phase_ = phase::start;
    std::unique_ptr<std::byte[]> buf_;
    std::size_t capacity_ = 0;
    std::size_t pos_ = 0;
    std::size_t end_ = 0;
    bool eof_ = false;
    std::unique_ptr<stream_decoder> decoder_;
    std::uint64_t in_ = 0;
    std::uint64_t out_ = 0;
    std::uint64_t members_ = 0;
    error_code error_;
    std::string why_;
};

} // namespace detail

/** Decompresses a layer stream read from a *ByteSource*; itself a *ByteSource* of the
    uncompressed bytes.

    The compression comes from the layer's media type (layer_compression_of()) and is never
    guessed: the stream must start with that format's magic (gzip `1f 8b`; zstd `28 b5 2f fd`
    or a skippable frame `5? 2a 4d 18`), and an uncompressed stream must not start with a gzip
    or zstd magic; either mismatch is error::invalid_archive naming what was expected and what
    was found. gzip streams may hold several members and zstd streams several frames (and
    skippable frames); they decode as one stream. Bytes after the last member or frame must
    start another one: anything else is error::invalid_archive, trailing zero padding
    included, as Go's compress/gzip (and so containerd) rejects it. docs/layers.md has the
    details and the error table.

    | failure | error |
    |---|---|
    | magic mismatch, corrupt data, CRC/ISIZE/XXH64 mismatch, trailing garbage | `invalid_archive` (why() carries the backend's message and the compressed offset) |
    | the source ends inside a member or frame, or inside a magic | `truncated` |
    | more than `max_output_bytes` of output, a zstd window over `zstd_window_log_max` | `limit_exceeded` |
    | `gzip_backend::isal` without ISA-L, a bad `zstd_window_log_max` | `invalid_argument` |
    | the source fails | the source's own code |

    Memory is fixed: a 128 KiB input buffer (64 bytes for an uncompressed stream) plus the backend's state (zlib ~40 KiB, ISA-L
    ~85 KiB, zstd ~94 KiB plus the frame's window, at most 2^zstd_window_log_max bytes).
    Output goes straight into the caller's span. read_some() returns 0 only once the source itself has ended, so every
    compressed byte has passed through (and through any hashing stage below).

    After a failure the source is unusable: every later call reports the same error.

    @tparam Source a *ByteSource*, held by reference; see docs/concepts/byte_source.md.
*/
template <byte_source Source> class basic_decompress_source {
public:
    basic_decompress_source(Source& src, layer_compression compression, decompress_options const& options = {})
        : src_(src), engine_(compression, options)
    {
    }
    basic_decompress_source(basic_decompress_source const&) = delete;
    basic_decompress_source& operator=(basic_decompress_source const&) = delete;

    /** Reads up to `buf.size()` (> 0) decompressed bytes: at least one, or 0 with `ec` clear
        at the end of the stream. On failure sets `ec`, and `*why` when given, and returns 0. */
    std::size_t read_some(std::span<std::byte> buf, error_code& ec, std::string* why = nullptr)
    {
        using action = detail::decompress_engine::action;
        for (;;) {
            auto const r = engine_.decode(buf);
            switch (r.what) {
            case action::deliver: ec.clear(); return r.size;
            case action::end: ec.clear(); return 0;
            case action::failed:
                ec = engine_.code();
                if (why) *why = engine_.why();
                return 0;
            case action::read_input: {
                error_code sec;
                std::size_t const n = src_.read_some(engine_.input_space(), sec);
                if (sec) engine_.source_failed(sec);
                else engine_.input_read(n);
                break;
            }
            case action::read_direct: {
                error_code sec;
                std::size_t const n = src_.read_some(buf.first(r.size), sec);
                if (sec) {
                    engine_.source_failed(sec);
                    break;
                }
                engine_.direct_read(n);
                if (n != 0) {
                    ec.clear();
                    return n;
                }
                break;
            }
            }
        }
    }

    /// Compressed bytes read from the source so far.
    std::uint64_t bytes_in() const noexcept { return engine_.bytes_in(); }
    /// Decompressed bytes returned so far.
    std::uint64_t bytes_out() const noexcept { return engine_.bytes_out(); }
    /// gzip members or zstd frames (skippable ones included) begun so far.
    std::uint64_t members() const noexcept { return engine_.members(); }
    layer_compression compression() const noexcept { return engine_.compression(); }
    /// The gzip decoder in use: zlib or isal (`automatic` resolved).
    gzip_backend backend() const noexcept { return engine_.backend(); }
    /// Why the stream failed; empty while it has not.
    std::string const& why() const noexcept { return engine_.why(); }
    Source& source() noexcept { return src_; }

private:
    Source& src_;
    detail::decompress_engine engine_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/decompress_source.ipp>
#endif
