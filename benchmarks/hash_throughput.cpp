// bench_hash: SHA-256/SHA-512 throughput of ocistore's Crypto++ hashers against OpenSSL, on
// the same bytes in the same run.
//
//   bench_hash [--size MiB] [--reps N] [--file PATH]
//
// For each algorithm it measures, as the median of N repetitions:
//   ocistore (memory)  the hasher over an in-memory buffer
//   openssl  (memory)  OpenSSL EVP over the same buffer (the library's SHA-NI/AVX code)
//   ocistore (file)    read(2) of the page-cached file in 1 MiB chunks + the hasher
//   openssl dgst       the `openssl dgst -<alg>` command on that file (a whole process)
// and prints a Markdown table with MB/s and the ratio to OpenSSL.
#include "bench_util.hpp"

#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>

#include <cryptopp/cpu.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace {


using ocistore_bench::median_seconds;

template <class H> void hash_file(std::string const& path, std::vector<std::byte>& buf)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) std::perror("open"), std::exit(1);
    H h;
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) std::perror("read"), std::exit(1);
        if (n == 0) break;
        h.update(std::span(buf.data(), static_cast<std::size_t>(n)));
    }
    ::close(fd);
    auto volatile sink = h.finish()[0];
    (void)sink;
}

void openssl_memory(EVP_MD const* md, std::vector<std::byte> const& data)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) std::exit(1);
}

template <class H>
void run(char const* name, EVP_MD const* md, std::vector<std::byte> const& data, std::string const& file, int reps)
{
    double const mb = static_cast<double>(data.size()) / 1e6;
    std::vector<std::byte> buf(1 << 20);
    double ours_mem = median_seconds(reps, [&] {
        H h;
        h.update(data);
        auto volatile sink = h.finish()[0];
        (void)sink;
    });
    double ossl_mem = median_seconds(reps, [&] { openssl_memory(md, data); });
    double ours_file = median_seconds(reps, [&] { hash_file<H>(file, buf); });
    std::string cmd = std::string("openssl dgst -") + name + " '" + file + "' > /dev/null";
    double ossl_cmd = median_seconds(reps, [&] {
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "openssl dgst failed\n"), std::exit(1);
    });
    std::printf("| %s | ocistore, memory | %.0f MB/s | %.2f× OpenSSL EVP |\n", name, mb / ours_mem, ossl_mem / ours_mem);
    std::printf("| %s | OpenSSL EVP, memory | %.0f MB/s | 1.00 |\n", name, mb / ossl_mem);
    std::printf("| %s | ocistore, file (read + hash) | %.0f MB/s | %.2f× `openssl dgst` |\n", name, mb / ours_file,
                ossl_cmd / ours_file);
    std::printf("| %s | `openssl dgst -%s` (process) | %.0f MB/s | 1.00 |\n", name, name, mb / ossl_cmd);
}

} // namespace

int main(int argc, char** argv)
{
    std::size_t mib = 256;
    int reps = 5;
    std::string file;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--size" && i + 1 < argc) mib = std::strtoul(argv[++i], nullptr, 10);
        else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (a == "--file" && i + 1 < argc) file = argv[++i];
        else return std::fprintf(stderr, "usage: bench_hash [--size MiB] [--reps N] [--file PATH]\n"), 2;
    }
    std::vector<std::byte> data(mib << 20);
    std::mt19937_64 rng(1);
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
        auto v = rng();
        std::memcpy(&data[i], &v, 8);
    }
    bool const own_file = file.empty();
    if (own_file) {
        char tmpl[] = "/tmp/ocistore-bench-hash-XXXXXX";
        int fd = ::mkstemp(tmpl);
        if (fd < 0) return std::perror("mkstemp"), 1;
        for (std::size_t off = 0; off < data.size();) {
            ssize_t n = ::write(fd, data.data() + off, data.size() - off);
            if (n <= 0) return std::perror("write"), 1;
            off += static_cast<std::size_t>(n);
        }
        ::close(fd);
        file = tmpl;
    }
    std::printf("SHA-NI available to Crypto++: %s; buffer %zu MiB; median of %d\n\n", CryptoPP::HasSHA() ? "yes" : "no",
                mib, reps);
    std::printf("| algorithm | what | throughput | ratio |\n|---|---|---|---|\n");
    run<ocistore::sha256_hasher>("sha256", EVP_sha256(), data, file, reps);
    run<ocistore::sha512_hasher>("sha512", EVP_sha512(), data, file, reps);
    if (own_file) ::unlink(file.c_str());
}
