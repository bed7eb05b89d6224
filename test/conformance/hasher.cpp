// Runs the *Hasher* conformance suite over every shipped hasher (and the archetype).
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>

#include "hasher_suite.hpp"

#include <support/archetypes.hpp>

#include <openssl/evp.h>

#include <random>
#include <cstring>
#include <utility>

namespace ocistore_test {
using kv = std::pair<std::string, std::string>;

// FIPS 180-4 examples.
template <> struct hasher_vectors<ocistore::sha256_hasher> {
    static inline kv const known[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    static inline std::string const million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
};
template <> struct hasher_vectors<ocistore::sha512_hasher> {
    static inline kv const known[] = {
        {"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
        {"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    };
    static inline std::string const million_a = "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b";
};

template <> struct hasher_vectors<ocistore_test::hasher_archetype> : hasher_vectors<ocistore::sha256_hasher> {};
} // namespace ocistore_test

TEST_CASE_TEMPLATE_INVOKE(hasher_conformance, ocistore::sha256_hasher, ocistore::sha512_hasher,
                          ocistore_test::hasher_archetype);

// An independent oracle: OpenSSL's EVP over random inputs of random lengths.
TEST_CASE_TEMPLATE("agrees with OpenSSL on random inputs", H, ocistore::sha256_hasher, ocistore::sha512_hasher)
{
    EVP_MD const* md = H::algorithm == "sha256" ? EVP_sha256() : EVP_sha512();
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
        std::vector<std::byte> data(rng() % 5000);
        for (auto& b : data) b = static_cast<std::byte>(rng());
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        REQUIRE(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) == 1);
        REQUIRE(len == H::digest_size);
        H h;
        h.update(data);
        auto got = h.finish();
        CHECK(std::memcmp(got.data(), out, len) == 0);
    }
}
