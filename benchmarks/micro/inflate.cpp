// bench_micro inflate/: layer decompression through basic_decompress_source against the raw
// decoders, on the same compressed bytes held in memory (a 64 MiB synthetic layer of text and
// binaries; gzip -6 by zlib, zstd -3 by libzstd). MB/s are of output (uncompressed tar).
//
//   inflate/gzip/ocistore_zlib/<read>  basic_decompress_source, gzip_backend::zlib, read_some() into <read> bytes
//   inflate/gzip/ocistore_isal/<read>  the same with gzip_backend::isal (when ISA-L is compiled in)
//   inflate/gzip/zlib_raw/<read>       inflate() over the whole input, <read>-byte output chunks
//   inflate/gzip/isal_raw/<read>       isal_inflate() over the whole input, <read>-byte output chunks
//   inflate/zstd/ocistore/<read>       basic_decompress_source over the zstd frame
//   inflate/zstd/zstd_raw/<read>       ZSTD_decompressStream() over the whole input
// Every decoder is created once per stream, as the library does per layer.
#include "micro_data.hpp"

#include <ocistore/decompress_source.hpp>

#include <zlib.h>
#include <zstd.h>

#if defined(OCISTORE_HAS_ISAL)
#  include <isa-l/igzip_lib.h>
#endif

#include <memory>

namespace {

using namespace ocistore_micro;
using ocistore::gzip_backend;
using ocistore::layer_compression;

/// Sets the throughput (of output) and the compression ratio once the loop is over.
void report(benchmark::State& state, std::string const& compressed)
{
    auto const out = layer_tar().bytes.size();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out));
    state.counters["ratio"] = static_cast<double>(out) / static_cast<double>(compressed.size());
}

void ocistore_inflate(benchmark::State& state, layer_compression c, gzip_backend b)
{
    std::string const& in = c == layer_compression::gzip ? layer_gzip() : layer_zstd();
    std::uint64_t const expected = layer_tar().bytes.size();
    std::vector<std::byte> buf(static_cast<std::size_t>(state.range(0)));
    ocistore::decompress_options options;
    options.backend = b;
    for (auto _ : state) {
        memory_source src(in);
        ocistore::basic_decompress_source dec(src, c, options);
        ocistore::error_code ec;
        std::string why;
        std::uint64_t total = 0;
        while (std::size_t const n = dec.read_some(buf, ec, &why)) total += n;
        if (ec || total != expected) return skip_with(state, "basic_decompress_source", ec ? why : "wrong size");
    }
    report(state, in);
}

void zlib_raw(benchmark::State& state)
{
    std::string const& in = layer_gzip();
    std::uint64_t const expected = layer_tar().bytes.size();
    std::vector<unsigned char> buf(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        z_stream z{};
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return skip_with(state, "zlib", "inflateInit2 failed");
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z.avail_in = static_cast<uInt>(in.size());
        std::uint64_t total = 0;
        int r = Z_OK;
        while (r == Z_OK) {
            z.next_out = buf.data();
            z.avail_out = static_cast<uInt>(buf.size());
            r = inflate(&z, Z_NO_FLUSH);
            total += buf.size() - z.avail_out;
        }
        inflateEnd(&z);
        if (r != Z_STREAM_END || total != expected) return skip_with(state, "zlib", "inflate failed");
    }
    report(state, in);
}

#if defined(OCISTORE_HAS_ISAL)
void isal_raw(benchmark::State& state)
{
    std::string const& in = layer_gzip();
    std::uint64_t const expected = layer_tar().bytes.size();
    std::size_t constexpr fixed_header = 10; // zlib's member has no optional header fields (FLG 0)
    if (in.size() < fixed_header || in[3] != 0) return skip_with(state, "isa-l", "unexpected gzip header");
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(state.range(0)));
    auto st = std::make_unique<inflate_state>();
    for (auto _ : state) {
        isal_inflate_init(st.get());
        st->crc_flag = ISAL_GZIP_NO_HDR_VER; // deflate data, then the CRC-32 and ISIZE checked
        st->next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(in.data() + fixed_header));
        st->avail_in = static_cast<std::uint32_t>(in.size() - fixed_header);
        std::uint64_t total = 0;
        while (st->block_state != ISAL_BLOCK_FINISH) {
            st->next_out = buf.data();
            st->avail_out = static_cast<std::uint32_t>(buf.size());
            if (isal_inflate(st.get()) != ISAL_DECOMP_OK) return skip_with(state, "isa-l", "isal_inflate failed");
            std::size_t const made = buf.size() - st->avail_out;
            if (made == 0 && st->avail_in == 0 && st->block_state != ISAL_BLOCK_FINISH)
                return skip_with(state, "isa-l", "truncated");
            total += made;
        }
        if (total != expected) return skip_with(state, "isa-l", "wrong size");
    }
    report(state, in);
}
#endif

void zstd_raw(benchmark::State& state)
{
    std::string const& in = layer_zstd();
    std::uint64_t const expected = layer_tar().bytes.size();
    std::vector<char> buf(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        ZSTD_DStream* d = ZSTD_createDStream();
        ZSTD_inBuffer input{in.data(), in.size(), 0};
        std::uint64_t total = 0;
        bool ok = true;
        for (;;) {
            ZSTD_outBuffer output{buf.data(), buf.size(), 0};
            std::size_t const r = ZSTD_decompressStream(d, &output, &input);
            if (ZSTD_isError(r)) {
                ok = false;
                break;
            }
            total += output.pos;
            if (r == 0 && input.pos == input.size) break;
            if (output.pos == 0 && input.pos == input.size) {
                ok = false;
                break;
            }
        }
        ZSTD_freeDStream(d);
        if (!ok || total != expected) return skip_with(state, "zstd", "ZSTD_decompressStream failed");
    }
    report(state, in);
}

void reads(benchmark::internal::Benchmark* b) { b->Arg(64 << 10)->Arg(1 << 20)->Unit(benchmark::kMillisecond); }

} // namespace

void ocistore_micro::register_inflate_benchmarks()
{
    benchmark::RegisterBenchmark("inflate/gzip/ocistore_zlib", ocistore_inflate, layer_compression::gzip,
                                 gzip_backend::zlib)
        ->Apply(reads);
    if (ocistore::isal_available)
        benchmark::RegisterBenchmark("inflate/gzip/ocistore_isal", ocistore_inflate, layer_compression::gzip,
                                     gzip_backend::isal)
            ->Apply(reads);
    benchmark::RegisterBenchmark("inflate/gzip/zlib_raw", zlib_raw)->Apply(reads);
#if defined(OCISTORE_HAS_ISAL)
    benchmark::RegisterBenchmark("inflate/gzip/isal_raw", isal_raw)->Apply(reads);
#endif
    benchmark::RegisterBenchmark("inflate/zstd/ocistore", ocistore_inflate, layer_compression::zstd,
                                 gzip_backend::automatic)
        ->Apply(reads);
    benchmark::RegisterBenchmark("inflate/zstd/zstd_raw", zstd_raw)->Apply(reads);
}
