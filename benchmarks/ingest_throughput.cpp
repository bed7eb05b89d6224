// bench_ingest: layer ingestion (decompress → diff_id hash → tar) against the raw inflater
// and the tar reader alone, plus peak memory, on the same layer in the same run.
//
//   bench_ingest [--dir DIR] [--layer FILE.tar.gz] [--reps N] [--rss-gib N]
//
// Without --layer it tars DIR (default /usr/lib/x86_64-linux-gnu) and
// compresses it with `gzip -6`. Figures are medians of N repetitions (default 5), in MB/s of
// uncompressed output:
//   inflate only            file → decompress_source → discard        (the physical limit)
//   ingest                  ingest_layer(): file → sha256(blob) → decompress → sha256(diff_id)
//                           → tar reader, reading every entry's data   (what a pull does)
//   ingest, pipelined       the same with ingest_options::pipelined (the default): the stages
//                           on three threads joined by prefetch_source:
//                           [file → sha256(blob)] → [inflate] → [sha256(diff_id) → tar → sink]
//   ingest, no hashing      the single-threaded ingest without the two hashes
//   tar from memory         the uncompressed tar in memory → tar reader (data read / skipped)
// and the peak RSS of a child process ingesting a synthetic N GiB uncompressed layer.
#include "bench_util.hpp"

#include <ocistore/decompress_source.hpp>
#include <ocistore/file_source.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hashing_source.hpp>
#include <ocistore/ingest.hpp>
#include <ocistore/prefetch_source.hpp>
#include <ocistore/tar_reader.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace ocistore;

using ocistore_bench::median_seconds;

[[noreturn]] void die(char const* what, error_code ec)
{
    std::fprintf(stderr, "%s: %s\n", what, ec.message().c_str());
    std::exit(1);
}

/// Reads every entry and its data; returns the number of entries.
template <class Source> std::uint64_t consume_tar(Source& src, bool read_data)
{
    basic_tar_reader<Source> tar(src);
    tar_entry e;
    error_code ec;
    std::string why;
    std::vector<std::byte> buf(1 << 20);
    std::uint64_t n = 0;
    while (tar.next(e, ec, &why)) {
        ++n;
        if (read_data)
            while (tar.read_data(buf, ec)) {
            }
        if (ec) break;
    }
    if (ec) std::fprintf(stderr, "tar: %s\n", why.c_str()), std::exit(1);
    if (drain(src, ec), ec) die("drain", ec);
    return n;
}

/// Reads every entry's data into a scratch buffer, as a builder would.
struct reading_sink {
    std::vector<std::byte> buf = std::vector<std::byte>(1 << 20);
    void add_entry(tar_entry const&, byte_source_ref data, error_code& ec)
    {
        while (data.read_some(buf, ec)) {
        }
    }
};

/// Ingests a gzip layer file as a pull does; returns the uncompressed size.
std::uint64_t ingest_file(std::string const& layer, bool hashing, bool pipelined, std::uint64_t& entries)
{
    file_source f(layer);
    if (!hashing) {
        basic_decompress_source d(f, layer_compression::gzip);
        entries = consume_tar(d, true);
        return d.bytes_out();
    }
    reading_sink sink;
    ingest_options o;
    o.pipelined = pipelined;
    error_code ec;
    std::string why;
    auto const r = ingest_layer<sha256_hasher>(f, sink, o, ec, &why);
    if (ec) std::fprintf(stderr, "ingest: %s\n", why.c_str()), std::exit(1);
    entries = r.entries;
    return r.uncompressed_size;
}

/// Peak RSS in KiB of a child process running `f` (which returns true on success); -1 on failure.
template <class F> long child_peak_rss_kib(F f)
{
    if (pid_t pid = ::fork(); pid == 0) std::_Exit(f() ? 0 : 3);
    else {
        int status = 0;
        struct rusage ru {};
        ::wait4(pid, &status, 0, &ru);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ru.ru_maxrss : -1;
    }
}

/// A *ByteSource* over memory.
struct span_source {
    std::span<std::byte const> data;
    std::size_t read_some(std::span<std::byte> buf, error_code& ec)
    {
        ec.clear();
        std::size_t const n = std::min(buf.size(), data.size());
        std::memcpy(buf.data(), data.data(), n);
        data = data.subspan(n);
        return n;
    }
};

/// A synthetic uncompressed layer streamed without storing it: `files` ustar entries of
/// `file_size` bytes each, then the end blocks.
struct synthetic_tar_source {
    std::uint64_t files, file_size, index = 0, pos_in_entry = 0;
    bool header_pending = true, done = false;
    std::size_t end_blocks = 1024;

    static void octal(char* field, std::size_t width, std::uint64_t v)
    {
        std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
    }
    std::size_t read_some(std::span<std::byte> buf, error_code& ec)
    {
        ec.clear();
        if (index == files) {
            std::size_t const n = std::min(buf.size(), end_blocks);
            std::memset(buf.data(), 0, n);
            end_blocks -= n;
            return n;
        }
        if (header_pending) {
            if (buf.size() < 512) return 0;
            char h[512] = {};
            std::snprintf(h, 100, "data/file%06llu", static_cast<unsigned long long>(index));
            octal(h + 100, 8, 0644);
            octal(h + 108, 8, 0);
            octal(h + 116, 8, 0);
            octal(h + 124, 12, file_size);
            octal(h + 136, 12, 1700000000);
            h[156] = '0';
            std::memcpy(h + 257, "ustar", 6);
            std::memcpy(h + 263, "00", 2);
            std::memset(h + 148, ' ', 8);
            unsigned sum = 0;
            for (unsigned char c : h) sum += c;
            std::snprintf(h + 148, 8, "%06o", sum);
            std::memcpy(buf.data(), h, 512);
            header_pending = false;
            pos_in_entry = 0;
            return 512;
        }
        std::uint64_t const padded = (file_size + 511) / 512 * 512;
        std::size_t const n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), padded - pos_in_entry));
        std::memset(buf.data(), static_cast<int>('a' + index % 26), n);
        pos_in_entry += n;
        if (pos_in_entry == padded) ++index, header_pending = true;
        return n;
    }
};

} // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/lib/x86_64-linux-gnu", layer;
    int reps = 5;
    std::uint64_t rss_gib = 1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else if (a == "--layer" && i + 1 < argc) layer = argv[++i];
        else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (a == "--rss-gib" && i + 1 < argc) rss_gib = std::strtoull(argv[++i], nullptr, 10);
        else return std::fprintf(stderr, "usage: bench_ingest [--dir DIR] [--layer F.tar.gz] [--reps N] [--rss-gib N]\n"), 2;
    }
    // Peak RSS of child processes forked before this process holds anything large (a child's
    // figure includes what it inherits): a synthetic rss_gib GiB uncompressed layer of 64 MiB
    // files through sha256 + tar, and (below) the real gzip layer through the pipelined ingest.
    std::uint64_t const file_size = 64ull << 20;
    long const rss_synthetic = child_peak_rss_kib([&] {
        synthetic_tar_source src{(rss_gib << 30) / file_size, file_size};
        basic_hashing_source diff(src, sha256_hasher{});
        consume_tar(diff, true);
        return diff.bytes() >= (rss_gib << 30);
    });
    std::string const tmp = "/tmp/ocistore-bench-ingest";
    if (layer.empty()) {
        layer = tmp + ".tar.gz";
        std::string cmd = "tar -C '" + dir + "' -cf " + tmp + ".tar . 2>/dev/null; gzip -6 -c " + tmp + ".tar > " + layer;
        std::fprintf(stderr, "building the layer: %s\n", cmd.c_str());
        if (std::system(cmd.c_str()) != 0) return std::fprintf(stderr, "could not build the layer\n"), 1;
    } else {
        std::string cmd = "gzip -dc '" + layer + "' > " + tmp + ".tar";
        if (std::system(cmd.c_str()) != 0) return std::fprintf(stderr, "could not decompress %s\n", layer.c_str()), 1;
    }
    long const rss_layer = child_peak_rss_kib([&] {
        std::uint64_t n = 0;
        return ingest_file(layer, true, true, n) > 0;
    });
    std::ifstream in(tmp + ".tar", std::ios::binary);
    std::vector<char> const tar((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    double const mb = static_cast<double>(tar.size()) / 1e6;

    gzip_backend backend{};
    auto inflate_only = [&] {
        file_source f(layer);
        basic_decompress_source d(f, layer_compression::gzip);
        error_code ec;
        if (drain(d, ec) != tar.size() || ec) die("inflate", ec);
        backend = d.backend();
    };
    std::uint64_t entries = 0;
    auto ingest = [&](bool hashing, bool pipelined) {
        return [&, hashing, pipelined] {
            if (ingest_file(layer, hashing, pipelined, entries) != tar.size())
                std::fprintf(stderr, "size mismatch\n"), std::exit(1);
        };
    };
    auto from_memory = [&](bool read_data) {
        return [&, read_data] {
            span_source s{std::as_bytes(std::span(tar.data(), tar.size()))};
            consume_tar(s, read_data);
        };
    };

    double const t_inflate = median_seconds(reps, inflate_only);
    double const t_ingest = median_seconds(reps, ingest(true, false));
    double const t_pipelined = median_seconds(reps, ingest(true, true));
    double const t_ingest_nohash = median_seconds(reps, ingest(false, false));
    double const t_mem_read = median_seconds(reps, from_memory(true));
    double const t_mem_skip = median_seconds(reps, from_memory(false));

    std::printf("layer: %s, %.0f MB uncompressed, %llu entries, gzip backend %s; median of %d\n\n", dir.c_str(), mb,
                static_cast<unsigned long long>(entries), std::string(to_string(backend)).c_str(), reps);
    std::printf("| what | throughput (uncompressed) | ratio |\n|---|---|---|\n");
    std::printf("| inflate only (the limit) | %.0f MB/s | 1.00 |\n", mb / t_inflate);
    std::printf("| ingest, one thread: sha256(blob) + inflate + sha256(diff_id) + tar | %.0f MB/s | %.2f of inflate |\n",
                mb / t_ingest, t_inflate / t_ingest);
    std::printf("| ingest, pipelined on three threads (prefetch_source) | %.0f MB/s | %.2f of inflate |\n",
                mb / t_pipelined, t_inflate / t_pipelined);
    std::printf("| ingest without the two hashes, one thread | %.0f MB/s | %.2f of inflate |\n", mb / t_ingest_nohash,
                t_inflate / t_ingest_nohash);
    std::printf("| tar reader from memory, data read | %.2f GB/s | |\n", mb / t_mem_read / 1000);
    std::printf("| tar reader from memory, data skipped | %.2f GB/s | |\n", mb / t_mem_skip / 1000);
    std::printf("\npeak RSS (child process): pipelined gzip ingest of this layer %.1f MiB; "
                "synthetic %llu GiB uncompressed layer %.1f MiB\n",
                static_cast<double>(rss_layer) / 1024.0, static_cast<unsigned long long>(rss_gib),
                static_cast<double>(rss_synthetic) / 1024.0);
    std::remove((tmp + ".tar").c_str());
    if (layer == tmp + ".tar.gz") std::remove(layer.c_str());
}
