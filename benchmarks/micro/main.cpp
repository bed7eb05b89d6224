// bench_micro: Google Benchmark micro-benchmarks of ocistore's building blocks against their peers.
//
//   bench_micro [--benchmark_filter=REGEX] [--benchmark_min_time=SECONDS] [--benchmark_format=json] …
//
// Families (docs/benchmarks.md, "Micro-benchmarks"): hash/, inflate/, tar/, erofs/, parse/,
// store/. Inputs are generated deterministically on first use and are not timed.
#include "micro_data.hpp"

#include <ocistore/decompress_source.hpp>
#include <ocistore/version.hpp>

#include <benchmark/benchmark.h>
#include <cryptopp/cpu.h>
#include <openssl/crypto.h>
#include <zlib.h>
#include <zstd.h>

int main(int argc, char** argv)
{
    benchmark::AddCustomContext("ocistore", OCISTORE_VERSION_STRING);
    benchmark::AddCustomContext("Crypto++ SHA-NI", CryptoPP::HasSHA() ? "yes" : "no");
    benchmark::AddCustomContext("ISA-L", ocistore::isal_available ? "compiled in" : "not compiled in");
    benchmark::AddCustomContext("OpenSSL", OpenSSL_version(OPENSSL_VERSION));
    benchmark::AddCustomContext("zlib", zlibVersion());
    benchmark::AddCustomContext("zstd", ZSTD_versionString());
    ocistore_micro::register_hash_benchmarks();
    ocistore_micro::register_inflate_benchmarks();
    ocistore_micro::register_tar_benchmarks();
    ocistore_micro::register_erofs_benchmarks();
    ocistore_micro::register_parse_benchmarks();
    ocistore_micro::register_store_benchmarks();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
