#include <ocistore/prefetch_source.hpp>

#include <ocistore/detail/buffer_pool.hpp>

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hashing_source.hpp>

#include <support/memory_source.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory_resource>
#include <mutex>
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

/// Counts what is allocated through it, by size; every block is checked on its way back.
struct counting_resource final : std::pmr::memory_resource {
    std::mutex mutex;
    std::map<void*, std::pair<std::size_t, std::size_t>> live; ///< block → (bytes, alignment)
    std::size_t allocations = 0;
    bool mismatched = false;  ///< a block came back with other sizes, or was never ours

    void* do_allocate(std::size_t bytes, std::size_t align) override
    {
        void* p = std::pmr::new_delete_resource()->allocate(bytes, align);
        std::lock_guard lock(mutex);
        live[p] = {bytes, align};
        ++allocations;
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t align) override
    {
        {
            std::lock_guard lock(mutex);
            auto it = live.find(p);
            if (it == live.end() || it->second != std::pair(bytes, align)) mismatched = true;
            else live.erase(it);
        }
        std::pmr::new_delete_resource()->deallocate(p, bytes, align);
    }
    bool do_is_equal(std::pmr::memory_resource const& o) const noexcept override { return this == &o; }
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

TEST_CASE("the buffers come from prefetch_options::memory and all go back to it")
{
    counting_resource counted;
    std::string const data = random_bytes(300'000, 7);
    for (bool finish : {true, false}) {
        CAPTURE(finish);
        counted.allocations = 0;
        memory_source src(data);
        {
            basic_prefetch_source p(src, {4096, 3, &counted});
            CHECK(counted.allocations == 3);
            CHECK(counted.live.size() == 3);
            for (auto const& [block, size] : counted.live) {
                CHECK(size.first == 4096);
                CHECK(reinterpret_cast<std::uintptr_t>(block) % alignof(std::max_align_t) == 0);
            }
            error_code ec;
            if (finish) CHECK(read_all(p, 1000, ec) == data);
            CHECK_FALSE(ec);
        }
        CHECK(counted.live.empty());
        CHECK_FALSE(counted.mismatched);
        CHECK(counted.allocations == 3); // the ring is allocated once, whatever it carries
    }
}

TEST_CASE("buffer_pool: blocks of its size are reused, others pass through, all return upstream")
{
    counting_resource upstream;
    {
        detail::buffer_pool pool(4096, &upstream);
        void* a = pool.allocate(4096);
        void* b = pool.allocate(4096);
        CHECK(upstream.allocations == 2);
        pool.deallocate(a, 4096);
        CHECK(pool.idle_blocks() == 1);
        CHECK(pool.allocate(4096) == a); // reused, not allocated again
        CHECK(upstream.allocations == 2);

        void* other = pool.allocate(100); // another size: straight through
        CHECK(upstream.allocations == 3);
        pool.deallocate(other, 100);
        CHECK(upstream.live.size() == 2);
        void* aligned = pool.allocate(4096, 4096); // a stricter alignment: straight through
        CHECK(upstream.live.at(aligned) == std::pair<std::size_t, std::size_t>(4096, 4096));
        pool.deallocate(aligned, 4096, 4096);
        CHECK(pool.idle_blocks() == 0);

        pool.deallocate(a, 4096);
        pool.deallocate(b, 4096);
        CHECK(pool.idle_blocks() == 2);
        CHECK(upstream.live.size() == 2); // held by the pool until it goes
    }
    CHECK(upstream.live.empty());
    CHECK_FALSE(upstream.mismatched);
}

TEST_CASE("successive prefetch sources on one buffer_pool share one ring's memory")
{
    counting_resource upstream;
    detail::buffer_pool pool(8192, &upstream);
    std::string const data = random_bytes(100'000, 9);
    std::vector<std::jthread> threads;
    for (int t = 0; t < 3; ++t) // concurrent users, several sources each
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i) {
                memory_source src(data);
                basic_prefetch_source p(src, {8192, 4, &pool});
                error_code ec;
                CHECK(read_all(p, 3000, ec) == data);
            }
        });
    threads.clear();
    CHECK(upstream.allocations <= 12); // three rings at most at once, never more blocks
    CHECK(pool.idle_blocks() == upstream.allocations);
}
