// bench_erofs: tar → EROFS layer image, from an uncompressed tar held in memory, against the
// tar reader alone and a plain copy of the tar into a file (the physical limit), in one run.
//
//   bench_erofs [--dir DIR] [--reps N] [--out-dir DIR]
//
// The tar is made from DIR (default /usr/lib/x86_64-linux-gnu) with `tar -c`. The image is
// written into --out-dir (default /dev/shm when it exists, else /tmp) so that the figure is the
// writer's, not the disk's. Figures are medians of N repetitions (default 5), in MB/s of tar.
#include "bench_util.hpp"

#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/tar_reader.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace ocistore;

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

[[noreturn]] void die(char const* what, std::string const& why)
{
    std::fprintf(stderr, "%s: %s\n", what, why.c_str());
    std::exit(1);
}

} // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/lib/x86_64-linux-gnu";
    int reps = 5;
    std::filesystem::path out_dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string const a = argv[i];
        if (a == "--dir") dir = argv[i + 1];
        else if (a == "--reps") reps = std::atoi(argv[i + 1]);
        else if (a == "--out-dir") out_dir = argv[i + 1];
    }
    std::string const tar_path = (out_dir / "ocistore-bench-erofs.tar").string();
    std::string const cmd = "tar -C '" + dir + "' -cf '" + tar_path + "' . 2>/dev/null";
    std::fprintf(stderr, "building the tar: %s\n", cmd.c_str());
    if (std::system(cmd.c_str()) != 0 && !std::filesystem::exists(tar_path)) die("tar", "failed");
    std::vector<char> tar;
    {
        std::ifstream in(tar_path, std::ios::binary);
        tar.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::filesystem::remove(tar_path);
    auto const bytes = std::as_bytes(std::span(tar.data(), tar.size()));
    double const mb = static_cast<double>(tar.size()) / 1e6;
    auto const image = out_dir / "ocistore-bench-erofs.img";
    std::uint64_t image_size = 0;

    auto to_erofs = [&] {
        int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die("open", std::strerror(errno));
        span_source src{bytes};
        basic_tar_reader<span_source> reader(src);
        erofs_layer_writer w(fd);
        tar_entry e;
        error_code ec;
        std::string why;
        while (reader.next(e, ec, &why)) {
            w.add_entry(e, byte_source_ref(reader), ec, &why);
            if (ec) die("add_entry", why);
        }
        if (ec) die("tar", why);
        w.finish(ec, &why);
        if (ec) die("finish", why);
        image_size = static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END));
        ::close(fd);
    };
    auto tar_only = [&] {
        span_source src{bytes};
        basic_tar_reader<span_source> reader(src);
        tar_entry e;
        error_code ec;
        std::vector<std::byte> buf(1 << 16);
        while (reader.next(e, ec))
            while (reader.read_some(buf, ec) > 0) {
            }
    };
    auto copy_only = [&] {
        int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die("open", std::strerror(errno));
        std::size_t done = 0;
        while (done < tar.size()) {
            ssize_t n = ::write(fd, tar.data() + done, std::min<std::size_t>(tar.size() - done, 1 << 20));
            if (n <= 0) die("write", std::strerror(errno));
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    };
    double const t_erofs = ocistore_bench::median_seconds(reps, to_erofs);
    double const t_tar = ocistore_bench::median_seconds(reps, tar_only);
    double const t_copy = ocistore_bench::median_seconds(reps, copy_only);
    std::filesystem::remove(image);
    std::printf("tar of %s: %.1f MB, image %.1f MB, into %s, median of %d\n", dir.c_str(), mb,
                static_cast<double>(image_size) / 1e6, out_dir.c_str(), reps);
    std::printf("| figure | MB/s of tar | ratio to the copy limit |\n|---|---|---|\n");
    std::printf("| tar → EROFS (erofs_layer_writer) | %.0f | %.2f |\n", mb / t_erofs, t_copy / t_erofs);
    std::printf("| tar reader alone, reading data | %.0f | %.2f |\n", mb / t_tar, t_copy / t_tar);
    std::printf("| copy of the tar into a file (limit) | %.0f | 1.00 |\n", mb / t_copy);
    return 0;
}
