// bench_micro hash/: sha256_hasher and sha512_hasher (Crypto++) against OpenSSL EVP, on the
// same pseudo-random buffer, at 4 KiB, 1 MiB and 64 MiB.
//
//   hash/<alg>/ocistore/<bytes>  a fresh hasher per message: update() once, finish()
//   hash/<alg>/openssl/<bytes>   EVP_DigestInit_ex2 / Update / Final_ex on one reused context
//                                and a pre-fetched EVP_MD (OpenSSL's fastest path)
#include "micro_data.hpp"

#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>

#include <openssl/evp.h>

namespace {

using namespace ocistore_micro;

/// The largest message; smaller ones are its prefix.
std::vector<std::byte> const& hash_input()
{
    static std::vector<std::byte> const b = random_buffer(64 << 20, 1);
    return b;
}

template <class Hasher> void ocistore_hash(benchmark::State& state)
{
    auto const data = std::span(hash_input()).first(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        Hasher h;
        h.update(data);
        auto d = h.finish();
        benchmark::DoNotOptimize(d);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

void openssl_hash(benchmark::State& state, char const* algorithm)
{
    auto const data = std::span(hash_input()).first(static_cast<std::size_t>(state.range(0)));
    EVP_MD* md = EVP_MD_fetch(nullptr, algorithm, nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!md || !ctx) {
        skip_with(state, algorithm, "OpenSSL has no such digest");
    } else {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        for (auto _ : state) {
            if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
                EVP_DigestFinal_ex(ctx, out, &len) != 1) {
                skip_with(state, algorithm, "EVP_Digest failed");
                break;
            }
            benchmark::DoNotOptimize(out);
        }
        state.SetBytesProcessed(state.iterations() * state.range(0));
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
}

void sizes(benchmark::internal::Benchmark* b) { b->Arg(4 << 10)->Arg(1 << 20)->Arg(64 << 20); }

} // namespace

void ocistore_micro::register_hash_benchmarks()
{
    benchmark::RegisterBenchmark("hash/sha256/ocistore", ocistore_hash<ocistore::sha256_hasher>)->Apply(sizes);
    benchmark::RegisterBenchmark("hash/sha256/openssl", openssl_hash, "SHA256")->Apply(sizes);
    benchmark::RegisterBenchmark("hash/sha512/ocistore", ocistore_hash<ocistore::sha512_hasher>)->Apply(sizes);
    benchmark::RegisterBenchmark("hash/sha512/openssl", openssl_hash, "SHA512")->Apply(sizes);
}
