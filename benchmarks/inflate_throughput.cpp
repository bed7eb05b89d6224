// bench_inflate: gzip layer decompression through basic_decompress_source (zlib and ISA-L)
// against libdeflate, Boost.Iostreams and the gzip command, on the same layer in the same run.
//
//   bench_inflate [--dir PATH] [--size MiB] [--reps N] [--file LAYER.tar.gz] [--keep]
//
// Without --file it builds a realistic layer first: the regular files under --dir (default
// /usr/lib, sorted, until --size MiB, default 256) packed with `tar -c`, then `gzip -6` (and
// `zstd -3` for the zstd rows), all in a temporary directory under /tmp (kept with --keep).
// It then reports, as the median of N repetitions (default 5, run round-robin over the
// decoders so that load changes on a shared machine hit all of them alike), the throughput
// of decompression in MB/s of OUTPUT (uncompressed tar bytes) of:
//   ocistore + zlib / ISA-L   basic_decompress_source over read(2) of the page-cached .gz,
//                             read_some() into 64 KiB and 1 MiB buffers
//   ocistore + zstd           the same over the .zst (zstd -3) of the same tar
//   libdeflate                libdeflate_gzip_decompress() of the whole .gz held in memory
//                             into a whole-size output buffer (no streaming API: a reference
//                             point, not an alternative backend)
//   Boost.Iostreams           gzip_decompressor over file_source (zlib underneath)
//   gzip -dc / zstd -dc       the commands, as whole processes, output to /dev/null
// and prints a Markdown table with the ratio to ocistore + zlib (64 KiB reads).
#include <ocistore/decompress_source.hpp>

#if defined(OCISTORE_BENCH_HAVE_LIBDEFLATE)
#  include <libdeflate.h>
#endif
#if defined(OCISTORE_BENCH_HAVE_BOOST_IOSTREAMS)
#  include <boost/iostreams/device/file.hpp>
#  include <boost/iostreams/filter/gzip.hpp>
#  include <boost/iostreams/filtering_stream.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(std::string const& msg)
{
    std::fprintf(stderr, "bench_inflate: %s\n", msg.c_str());
    std::exit(1);
}

/// One measured decoder.
struct row {
    std::string name;
    std::function<void()> run;
    std::vector<double> seconds;
};

/// Runs every row `reps` times, round-robin, so that load changes on a shared machine hit
/// all rows alike; returns the median time of each row.
void measure(std::vector<row>& rows, int reps)
{
    for (int i = 0; i < reps; ++i)
        for (auto& r : rows) {
            auto const a = clock_type::now();
            r.run();
            r.seconds.push_back(std::chrono::duration<double>(clock_type::now() - a).count());
        }
    for (auto& r : rows) std::sort(r.seconds.begin(), r.seconds.end());
}

double median(row const& r) { return r.seconds[r.seconds.size() / 2]; }

/// A *ByteSource* over a file descriptor (read(2)).
class fd_source {
public:
    explicit fd_source(std::string const& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC))
    {
        if (fd_ < 0) die("cannot open " + path);
    }
    fd_source(fd_source const&) = delete;
    fd_source& operator=(fd_source const&) = delete;
    ~fd_source() { ::close(fd_); }

    std::size_t read_some(std::span<std::byte> buf, ocistore::error_code& ec)
    {
        for (;;) {
            ssize_t const n = ::read(fd_, buf.data(), buf.size());
            if (n >= 0) {
                ec.clear();
                return static_cast<std::size_t>(n);
            }
            if (errno != EINTR) {
                ec = std::error_code(errno, std::system_category());
                return 0;
            }
        }
    }

private:
    int fd_;
};

std::uint64_t ocistore_decode(std::string const& path, ocistore::layer_compression c, ocistore::gzip_backend b,
                              std::vector<std::byte>& buf)
{
    fd_source src(path);
    ocistore::decompress_options o;
    o.backend = b;
    ocistore::basic_decompress_source dec(src, c, o);
    ocistore::error_code ec;
    std::string why;
    std::uint64_t total = 0;
    while (std::size_t const n = dec.read_some(buf, ec, &why)) total += n;
    if (ec) die("decoding " + path + ": " + why);
    return total;
}

std::string read_file(std::string const& path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) die("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void run_command(std::string const& cmd)
{
    if (std::system(cmd.c_str()) != 0) die("command failed: " + cmd);
}

/// Packs regular files under `dir` (sorted) until `limit` bytes into `tar`; returns the count.
std::size_t make_tar(fs::path const& dir, std::uint64_t limit, fs::path const& work, fs::path const& tar)
{
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    fs::path const list = work / "files";
    std::ofstream out(list);
    std::uint64_t total = 0;
    std::size_t count = 0;
    for (auto const& f : files) {
        if (total >= limit) break;
        if (::access(f.c_str(), R_OK) != 0) continue;
        auto const size = fs::file_size(f, ec);
        if (ec) continue;
        out << f.relative_path().string() << '\n';
        total += size;
        ++count;
    }
    out.close();
    run_command("tar -C / -cf '" + tar.string() + "' --no-recursion -T '" + list.string() + "'");
    return count;
}

} // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/lib", file;
    std::uint64_t mib = 256;
    int reps = 5;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        std::string const a = argv[i];
        if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else if (a == "--size" && i + 1 < argc) mib = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (a == "--file" && i + 1 < argc) file = argv[++i];
        else if (a == "--keep") keep = true;
        else {
            std::fprintf(stderr, "usage: bench_inflate [--dir PATH] [--size MiB] [--reps N] [--file LAYER.tar.gz] [--keep]\n");
            return 2;
        }
    }

    fs::path work;
    std::string zst;
    if (file.empty()) {
        char tmpl[] = "/tmp/ocistore-bench-inflate-XXXXXX";
        if (!::mkdtemp(tmpl)) die("mkdtemp failed");
        work = tmpl;
        fs::path const tar = work / "layer.tar";
        std::size_t const n = make_tar(dir, mib << 20, work, tar);
        std::printf("layer: %zu files from %s, tar %.1f MiB\n", n, dir.c_str(),
                    static_cast<double>(fs::file_size(tar)) / (1 << 20));
        file = (work / "layer.tar.gz").string();
        zst = (work / "layer.tar.zst").string();
        run_command("gzip -6 -c '" + tar.string() + "' > '" + file + "'");
        run_command("zstd -3 -q -c '" + tar.string() + "' > '" + zst + "'");
        fs::remove(tar);
    }

    std::vector<std::byte> small(64 * 1024), large(1 << 20);
    // Warm the page cache and learn the output size.
    std::uint64_t const out_size =
        ocistore_decode(file, ocistore::layer_compression::gzip, ocistore::gzip_backend::zlib, large);
    auto const gz_size = fs::file_size(file);
    std::printf("gzip -6: %.1f MiB -> %.1f MiB (ratio %.2f); median of %d; ISA-L compiled in: %s\n\n",
                static_cast<double>(gz_size) / (1 << 20), static_cast<double>(out_size) / (1 << 20),
                static_cast<double>(out_size) / static_cast<double>(gz_size), reps,
                ocistore::isal_available ? "yes" : "no");

    auto check = [&](std::uint64_t got, char const* what) {
        if (got != out_size) die(std::string(what) + ": wrong output size " + std::to_string(got));
    };
    std::vector<row> rows;
    using ocistore::gzip_backend;
    using ocistore::layer_compression;
    for (auto b : {gzip_backend::zlib, gzip_backend::isal}) {
        if (b == gzip_backend::isal && !ocistore::isal_available) continue;
        for (auto* buf : {&small, &large}) {
            std::string const name = std::string("ocistore + ") + (b == gzip_backend::zlib ? "zlib" : "ISA-L") +
                                     (buf == &small ? ", 64 KiB reads" : ", 1 MiB reads");
            rows.push_back({name, [&, b, buf, name] {
                                check(ocistore_decode(file, layer_compression::gzip, b, *buf), name.c_str());
                            }, {}});
        }
    }
#if defined(OCISTORE_BENCH_HAVE_LIBDEFLATE)
    std::string const gz = read_file(file);
    std::vector<char> out(out_size);
    libdeflate_decompressor* const d = libdeflate_alloc_decompressor();
    {
        rows.push_back({"libdeflate, whole buffer in memory (no streaming)", [&] {
                            std::size_t in_pos = 0, out_pos = 0;
                            while (in_pos < gz.size()) { // member by member
                                std::size_t used = 0, made = 0;
                                if (libdeflate_gzip_decompress_ex(d, gz.data() + in_pos, gz.size() - in_pos,
                                                                  out.data() + out_pos, out.size() - out_pos, &used,
                                                                  &made) != LIBDEFLATE_SUCCESS)
                                    die("libdeflate failed");
                                in_pos += used;
                                out_pos += made;
                            }
                            check(out_pos, "libdeflate");
                        }, {}});
    }
#endif
#if defined(OCISTORE_BENCH_HAVE_BOOST_IOSTREAMS)
    rows.push_back({"Boost.Iostreams gzip_decompressor (zlib), 64 KiB reads", [&] {
                        namespace io = boost::iostreams;
                        io::filtering_istream in;
                        in.push(io::gzip_decompressor());
                        in.push(io::file_source(file, std::ios::binary));
                        std::uint64_t total = 0;
                        while (in) {
                            in.read(reinterpret_cast<char*>(small.data()), static_cast<std::streamsize>(small.size()));
                            total += static_cast<std::uint64_t>(in.gcount());
                        }
                        check(total, "Boost.Iostreams");
                    }, {}});
#endif
    rows.push_back({"`gzip -dc > /dev/null` (process)", [&] { run_command("gzip -dc '" + file + "' > /dev/null"); }, {}});
    if (!zst.empty()) {
        rows.push_back({"ocistore + zstd (zstd -3 of the same tar), 64 KiB reads", [&] {
                            check(ocistore_decode(zst, layer_compression::zstd, gzip_backend::automatic, small),
                                  "zstd");
                        }, {}});
        rows.push_back({"`zstd -dc > /dev/null` (process)",
                        [&] { run_command("zstd -q -dc '" + zst + "' > /dev/null"); }, {}});
    }

    measure(rows, reps);
#if defined(OCISTORE_BENCH_HAVE_LIBDEFLATE)
    libdeflate_free_decompressor(d);
#endif
    double const base = median(rows.front());
    double const mb = static_cast<double>(out_size) / 1e6;
    std::printf("| decoder | output throughput | ratio to ocistore + zlib |\n|---|---|---|\n");
    for (auto const& r : rows)
        std::printf("| %s | %.0f MB/s | %.2f |\n", r.name.c_str(), mb / median(r), base / median(r));

    if (!work.empty()) {
        if (keep) std::printf("\nkept %s\n", work.c_str());
        else fs::remove_all(work);
    }
}
