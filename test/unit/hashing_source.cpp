#include <ocistore/hashing_source.hpp>

#include <ocistore/decompress_source.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>

#include <support/compress.hpp>
#include <support/memory_source.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;

static_assert(byte_source<basic_hashing_source<memory_source, sha256_hasher>>);
static_assert(byte_source<basic_hashing_source<basic_hashing_source<memory_source, sha256_hasher>, sha512_hasher>>);

namespace {

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

digest sha256_of(std::string_view s) { return digest_of<sha256_hasher>(s); }

/// Reads `tee` to the end in reads of `out_size` bytes; returns what passed through.
template <class Tee> std::string read_all(Tee& tee, std::size_t out_size, error_code& ec)
{
    std::string out;
    std::vector<std::byte> buf(out_size);
    while (std::size_t const n = tee.read_some(buf, ec)) out.append(reinterpret_cast<char const*>(buf.data()), n);
    return out;
}

/// Counts the bytes fed to it; models *Hasher* with a 1-byte "digest" (not a real hash).
struct counting_hasher {
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;
    std::uint64_t fed = 0;
    std::uint64_t calls = 0;
    void update(std::span<std::byte const> b)
    {
        fed += b.size();
        ++calls;
    }
    std::array<std::byte, 32> finish()
    {
        std::array<std::byte, 32> out{};
        for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((fed >> (8 * i)) & 0xff);
        fed = 0;
        return out;
    }
};
static_assert(hasher<counting_hasher>);

} // namespace

TEST_CASE("the digest equals the digest of the whole buffer for any chunking")
{
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(63), std::size_t(64), std::size_t(65),
                             std::size_t(10000), std::size_t(300000)}) {
        std::string const data = ocistore_test::random_bytes(size, size + 1);
        digest const expected = sha256_of(data);
        std::vector<std::pair<std::size_t, std::size_t>> readings = {{unlimited, 1 << 20}, {1, 1 << 20},
                                                                     {unlimited, 1},       {7, 13},
                                                                     {64, 64},             {4096, 100}};
        std::mt19937_64 rng(size);
        for (int i = 0; i < 5; ++i) readings.emplace_back(1 + rng() % 9000, 1 + rng() % 9000);
        for (auto [chunk, out] : readings) {
            if (size > 20000 && (chunk == 1 || out == 1)) continue;
            CAPTURE(size);
            CAPTURE(chunk);
            CAPTURE(out);
            memory_source src(data, chunk);
            basic_hashing_source tee(src, sha256_hasher{});
            error_code ec;
            std::string const got = read_all(tee, out, ec);
            REQUIRE_FALSE(ec);
            CHECK(got == data);
            CHECK(tee.bytes() == size);
            CHECK(tee.finish_digest() == expected);
        }
    }
    // Every chunking of one small buffer, one read size per chunk size.
    std::string const data = ocistore_test::text_bytes(1000, 3);
    for (std::size_t chunk = 1; chunk <= 200; ++chunk) {
        memory_source src(data, chunk);
        basic_hashing_source<memory_source, sha256_hasher> tee(src);
        error_code ec;
        read_all(tee, 1 + (chunk * 7) % 300, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(tee.finish_digest() == sha256_of(data));
    }
}

TEST_CASE("finish_digest() resets the hasher, bytes() keeps counting, hasher() is the one fed")
{
    std::string const data = "hello, layer";
    memory_source src(data, 5);
    basic_hashing_source tee(src, sha256_hasher{});
    std::vector<std::byte> buf(5);
    error_code ec;
    CHECK(tee.read_some(buf, ec) == 5);
    CHECK(tee.finish_digest() == sha256_of("hello"));
    read_all(tee, 64, ec);
    REQUIRE_FALSE(ec);
    CHECK(tee.finish_digest() == sha256_of(", layer"));
    CHECK(tee.finish_digest() == sha256_of(""));
    CHECK(tee.bytes() == data.size());
    CHECK(&tee.source() == &src);

    memory_source src2(data, 3);
    basic_hashing_source counted(src2, counting_hasher{});
    read_all(counted, 64, ec);
    CHECK(counted.hasher().fed == data.size());
    CHECK(counted.hasher().calls == (data.size() + 2) / 3); // one update per non-empty read
}

TEST_CASE("other hashers: sha512")
{
    std::string const data = ocistore_test::text_bytes(50000, 9);
    memory_source src(data, 333);
    basic_hashing_source tee(src, sha512_hasher{});
    error_code ec;
    read_all(tee, 1000, ec);
    REQUIRE_FALSE(ec);
    digest const d = tee.finish_digest();
    CHECK(d.algorithm() == "sha512");
    CHECK(d == digest_of<sha512_hasher>(std::string_view(data)));
}

TEST_CASE("failures pass through, only the bytes returned are hashed")
{
    std::string const data = ocistore_test::random_bytes(10000, 4);
    auto const io = std::make_error_code(std::errc::io_error);
    memory_source src(data, 1000);
    src.fail_at(4500, io);
    basic_hashing_source tee(src, sha256_hasher{});
    error_code ec;
    std::string const got = read_all(tee, 700, ec);
    CHECK(ec == io);
    CHECK(got == data.substr(0, 4500));
    CHECK(tee.bytes() == 4500);
    CHECK(tee.finish_digest() == sha256_of(data.substr(0, 4500)));
}

TEST_CASE("drain() reads to the end and reports the count")
{
    std::string const data = ocistore_test::random_bytes(200000, 5);
    memory_source src(data, 3000);
    basic_hashing_source tee(src, sha256_hasher{});
    std::vector<std::byte> buf(1000);
    error_code ec;
    REQUIRE(tee.read_some(buf, ec) == 1000);
    CHECK(drain(tee, ec) == data.size() - 1000);
    CHECK_FALSE(ec);
    CHECK(tee.finish_digest() == sha256_of(data));
    CHECK(drain(tee, ec) == 0); // already at the end
    CHECK_FALSE(ec);
    CHECK(drain(tee) == 0);

    memory_source empty("");
    CHECK(drain(empty) == 0);

    memory_source failing(data, 3000);
    failing.fail_at(100000, std::make_error_code(std::errc::io_error));
    CHECK(drain(failing, ec) == 100000);
    CHECK(ec == std::errc::io_error);

    memory_source failing2(data, 3000);
    failing2.fail_at(100000, std::make_error_code(std::errc::io_error));
    CHECK_THROWS_AS(drain(failing2), system_error);
}

TEST_CASE("drain() throws with a decompressor's reason")
{
    std::string gz = ocistore_test::gzip_compress(ocistore_test::text_bytes(20000, 6));
    gz += std::string(16, '\0');
    memory_source src(gz);
    basic_decompress_source plain(src, layer_compression::gzip);
    try {
        drain(plain);
        FAIL("drain did not throw");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_archive);
        CHECK(std::string(e.what()).find("trailing data is not accepted") != std::string::npos);
    }
}

TEST_CASE("one pass yields the blob digest and the diff_id")
{
    std::string const tar = ocistore_test::text_bytes(300000, 7) + std::string(1024, '\0');
    for (auto c : {layer_compression::gzip, layer_compression::zstd, layer_compression::none}) {
        std::string const blob = c == layer_compression::gzip   ? ocistore_test::gzip_compress(tar, 6)
                                 : c == layer_compression::zstd ? ocistore_test::zstd_compress(tar, 3)
                                                                : tar;
        memory_source body(blob, 16384);
        basic_hashing_source compressed(body, sha256_hasher{});
        basic_decompress_source plain(compressed, c);
        basic_hashing_source diff(plain, sha256_hasher{});
        // A consumer stops early (say, after the tar's end marker); drain pushes the rest through.
        std::vector<std::byte> buf(4096);
        error_code ec;
        std::uint64_t seen = 0;
        while (seen < 200000) seen += diff.read_some(buf, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(diff, ec) == tar.size() - seen);
        REQUIRE_FALSE(ec);
        CAPTURE(to_string(c));
        CHECK(compressed.bytes() == blob.size());
        CHECK(diff.bytes() == tar.size());
        CHECK(compressed.finish_digest() == sha256_of(blob));
        CHECK(diff.finish_digest() == sha256_of(tar));
    }
}
