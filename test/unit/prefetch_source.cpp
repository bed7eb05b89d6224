#include <ocistore/prefetch_source.hpp>

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hashing_source.hpp>

#include <support/memory_source.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;

static_assert(byte_source<basic_prefetch_source<memory_source>>);

namespace {

std::string random_bytes(std::size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

template <class S> std::string read_all(S& s, std::size_t chunk, error_code& ec)
{
    std::string out;
    std::vector<std::byte> buf(chunk);
    while (std::size_t n = s.read_some(buf, ec)) out.append(reinterpret_cast<char const*>(buf.data()), n);
    return out;
}

/// Endless, counts reads: for checking that destruction stops the producer.
struct endless_source {
    std::atomic<int> reads{0};
    std::size_t read_some(std::span<std::byte> buf, error_code& ec)
    {
        ec.clear();
        ++reads;
        std::memset(buf.data(), 'x', buf.size());
        return buf.size();
    }
};

/// Fails with a reason after some bytes.
struct failing_source {
    memory_source inner;
    std::string why_text = "inflate: bad block at offset 1234";
    std::string const& why() const { return why_text; }
    std::size_t read_some(std::span<std::byte> buf, error_code& ec) { return inner.read_some(buf, ec); }
};

} // namespace

TEST_CASE("serves the upstream's bytes in order for any chunking and depth")
{
    std::string const big = random_bytes(3'000'001, 1);
    std::string const small = random_bytes(20'011, 4);
    for (std::size_t chunk : {1u, 7u, 4096u, 1u << 20}) {
        std::string const& data = chunk < 4096 ? small : big;  // one hand-off per chunk: keep it cheap
        for (std::size_t depth : {2u, 3u, 8u})
            for (std::size_t upstream_max : {std::size_t{13}, std::size_t{1} << 30})
                for (std::size_t read : {std::size_t{1}, std::size_t{100}, std::size_t{1} << 21}) {
                    if (read == 1 && data.size() > 100'000) continue;
                    CAPTURE(chunk);
                    CAPTURE(depth);
                    CAPTURE(upstream_max);
                    CAPTURE(read);
                    memory_source src(data, upstream_max);
                    basic_prefetch_source p(src, {chunk, depth});
                    error_code ec;
                    CHECK(read_all(p, read, ec) == data);
                    CHECK_FALSE(ec);
                    std::vector<std::byte> buf(4);
                    CHECK(p.read_some(buf, ec) == 0);  // the end stays the end
                    CHECK_FALSE(ec);
                }
    }
}

TEST_CASE("an empty upstream is an immediate end")
{
    memory_source src("");
    basic_prefetch_source p(src);
    error_code ec;
    CHECK(read_all(p, 64, ec).empty());
    CHECK_FALSE(ec);
}

TEST_CASE("a failure arrives after the bytes read before it, with the upstream's reason")
{
    std::string const data = random_bytes(100'000, 2);
    failing_source src{memory_source(data)};
    src.inner.fail_at(70'000, make_error_code(error::invalid_archive));
    basic_prefetch_source p(src, {4096, 3});
    error_code ec;
    CHECK(read_all(p, 1000, ec) == data.substr(0, 70'000));
    CHECK(ec == error::invalid_archive);
    CHECK(p.why() == src.why_text);
    std::vector<std::byte> buf(4);
    CHECK(p.read_some(buf, ec) == 0);  // stays failed
    CHECK(ec == error::invalid_archive);
}

TEST_CASE("why() may be asked from the consumer while the producer is still running into its failure")
{
    // A consumer whose own downstream failed asks for the stage's reason without reading to
    // the end (ingest_layer does): the producer may be setting it at that moment.
    std::string const data = random_bytes(400'000, 6);
    failing_source src{memory_source(data, 1024)};
    src.inner.fail_at(300'000, make_error_code(error::invalid_archive));
    basic_prefetch_source p(src, {1024, 2});
    std::vector<std::byte> buf(512);
    error_code ec;
    std::uint64_t read = 0;
    std::string seen;
    // Between reads the producer runs concurrently, up to two chunks ahead: why() is asked
    // while it reads its upstream and while it records the failure.
    while ((seen = p.why()).empty()) {
        std::size_t const n = p.read_some(buf, ec);
        read += n;
        if (n == 0) break;
    }
    if (seen.empty()) seen = p.why();
    CHECK(seen == src.why_text);
    CHECK(read <= 300'000);
}

TEST_CASE("upstream state is final once the end is seen: a hashing stage on the producer thread")
{
    std::string const data = random_bytes(2'500'000, 3);
    memory_source src(data, 65536);
    basic_hashing_source hashed(src, sha256_hasher{});
    basic_prefetch_source p(hashed, {1 << 16, 4});
    error_code ec;
    CHECK(read_all(p, 1 << 20, ec) == data);
    CHECK(hashed.bytes() == data.size());
    CHECK(hashed.finish_digest() == digest_of<sha256_hasher>(data));
}

TEST_CASE("consume() hands over every remaining byte without copying, after what read_some() took")
{
    std::string const data = random_bytes(1'000'003, 5);
    for (std::size_t taken : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{4097}, std::size_t{999'999}}) {
        CAPTURE(taken);
        memory_source src(data, 65536);
        basic_prefetch_source p(src, {4096, 3});
        error_code ec;
        std::string out(taken, '\0');
        std::size_t got = 0;
        while (got < taken) {
            auto const n = p.read_some(std::as_writable_bytes(std::span(out.data() + got, taken - got)), ec);
            REQUIRE(n > 0);
            got += n;
        }
        std::size_t calls = 0;
        std::uint64_t const n = p.consume(
            [&](std::span<std::byte const> b) {
                ++calls;
                CHECK(b.size() <= 4096);
                out.append(reinterpret_cast<char const*>(b.data()), b.size());
            },
            ec);
        CHECK_FALSE(ec);
        CHECK(n == data.size() - taken);
        CHECK(out == data);
        CHECK(calls >= (data.size() - taken) / 4096);
        std::vector<std::byte> buf(4);
        CHECK(p.read_some(buf, ec) == 0); // consumed to the end
        CHECK_FALSE(ec);
    }
}

TEST_CASE("consume() delivers an upstream failure after the bytes before it")
{
    std::string const data = random_bytes(100'000, 6);
    failing_source src{memory_source(data)};
    src.inner.fail_at(70'000, make_error_code(error::invalid_archive));
    basic_prefetch_source p(src, {4096, 3});
    error_code ec;
    std::string out;
    std::uint64_t const n =
        p.consume([&](std::span<std::byte const> b) { out.append(reinterpret_cast<char const*>(b.data()), b.size()); }, ec);
    CHECK(ec == error::invalid_archive);
    CHECK(n == 70'000);
    CHECK(out == data.substr(0, 70'000));
    CHECK(p.why() == src.why_text);
}

TEST_CASE("read-ahead is bounded and destruction stops the producer")
{
    endless_source src;
    {
        basic_prefetch_source p(src, {1024, 3});
        std::vector<std::byte> buf(10);
        error_code ec;
        CHECK(p.read_some(buf, ec) == 10);
        for (int i = 0; i < 200 && src.reads.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(src.reads.load() <= 3);  // depth buffers, one of them with the consumer
    }
    int const after = src.reads.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(src.reads.load() == after);
}
