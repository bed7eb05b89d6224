// bench_http: blob download throughput of http_transport over loopback against curl.
//
//   bench_http [--size MiB] [--reps N] [--buffer KiB]
//
// Starts docker-registry (plain HTTP) on 127.0.0.1, pushes a random blob of --size MiB
// (default 256), then measures as the median of N (default 5) runs:
//   http_transport            open_blob + read_some into a --buffer KiB (default 1024) buffer
//   http_transport + sha256   the same, every chunk fed to ocistore::sha256_hasher, digest checked
//   curl -o /dev/null         `curl -s -o /dev/null URL`, a whole process
// and prints a Markdown table with MB/s and the ratio to curl.
#include "bench_util.hpp"

#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/transport/http_transport.hpp>

#include <support/registry_fixture.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {


using ocistore_bench::median_seconds;

[[noreturn]] void die(std::string const& what)
{
    std::fprintf(stderr, "bench_http: %s\n", what.c_str());
    std::exit(1);
}

} // namespace

int main(int argc, char** argv)
{
    std::size_t mib = 256, buffer_kib = 1024;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--size") mib = std::strtoul(argv[i + 1], nullptr, 10);
        else if (a == "--reps") reps = std::atoi(argv[i + 1]);
        else if (a == "--buffer") buffer_kib = std::strtoul(argv[i + 1], nullptr, 10);
        else die("unknown option " + a);
    }
    if (!ocistore_test::registry_fixture::available()) die("docker-registry is not installed");
    if (!ocistore_test::have_program("curl")) die("curl is not installed");

    ocistore_test::registry_fixture reg;
    std::string blob = ocistore_test::random_bytes(mib << 20, 7);
    ocistore_test::registry_pusher pusher("127.0.0.1", reg.port());
    auto digest_text = pusher.push_blob("bench/blob", blob);
    std::size_t const size = blob.size();
    blob.clear();
    blob.shrink_to_fit();

    ocistore::http_options opts;
    opts.insecure_hosts = {"127.0.0.1"};
    opts.credentials = ocistore::credential_store{};
    opts.proxy = ocistore::proxy_config{};
    ocistore::http_transport t(opts);
    auto ref = ocistore::image_reference::parse(reg.host() + "/bench/blob:latest");
    auto d = ocistore::digest::parse(digest_text);
    std::vector<std::byte> buf(buffer_kib << 10);

    auto download = [&](bool hash) {
        ocistore::error_code ec;
        auto r = t.open_blob(ref, d, 0, ec);
        if (ec) die("open_blob: " + ec.message());
        ocistore::sha256_hasher h;
        std::size_t total = 0;
        for (;;) {
            auto n = r.read_some(buf, ec);
            if (ec) die("read_some: " + ec.message());
            if (n == 0) break;
            if (hash) h.update(std::span<std::byte const>(buf.data(), n));
            total += n;
        }
        if (total != size) die("short download");
        if (hash) {
            auto raw = h.finish();
            auto got = ocistore::digest::from_bytes("sha256", raw);
            if (got != d) die("digest mismatch");
        }
    };
    std::string url = reg.url() + "/v2/bench/blob/blobs/" + digest_text;
    auto curl = [&] {
        auto log = reg.dir() / "curl.log";
        if (ocistore_test::run_command({"curl", "-s", "-f", "-o", "/dev/null", url}, log) != 0) die("curl failed");
    };

    download(true); // warm-up: page cache on the registry side, connection pool
    curl();
    double t_plain = median_seconds(reps, [&] { download(false); });
    double t_hash = median_seconds(reps, [&] { download(true); });
    double t_curl = median_seconds(reps, curl);

    auto mbps = [&](double s) { return static_cast<double>(size) / 1e6 / s; };
    std::printf("blob: %zu MiB over loopback from docker-registry (plain HTTP); read buffer %zu KiB; median of %d\n\n",
                mib, buffer_kib, reps);
    std::printf("| client | seconds | MB/s | vs curl |\n|---|---:|---:|---:|\n");
    std::printf("| http_transport | %.3f | %.0f | %.2f |\n", t_plain, mbps(t_plain), t_curl / t_plain);
    std::printf("| http_transport + sha256 | %.3f | %.0f | %.2f |\n", t_hash, mbps(t_hash), t_curl / t_hash);
    std::printf("| curl -o /dev/null | %.3f | %.0f | 1.00 |\n", t_curl, mbps(t_curl));
    return 0;
}
