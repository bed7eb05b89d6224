#include <ocistore/lock/mutex_lock.hpp>

#include <support/bounded_wait.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

using namespace ocistore;
using namespace ocistore_test;

namespace {
constexpr lock_mode shared = lock_mode::shared, exclusive = lock_mode::exclusive;
}

TEST_CASE("copies share one table, separately constructed locks are independent")
{
    mutex_lock a;
    mutex_lock copy = a;
    mutex_lock other;
    auto g = a.acquire("k", exclusive);
    CHECK_FALSE(copy.try_acquire("k", shared).has_value());
    CHECK(other.try_acquire("k", exclusive).has_value());

    mutex_lock assigned;
    assigned = a;
    CHECK_FALSE(assigned.try_acquire("k", exclusive).has_value());

    mutex_lock moved = std::move(copy);
    CHECK_FALSE(moved.try_acquire("k", exclusive).has_value());
    // A moved-from lock keeps sharing the table and stays usable.
    CHECK_FALSE(copy.try_acquire("k", exclusive).has_value()); // NOLINT(bugprone-use-after-move)
    g.unlock();
    CHECK(copy.try_acquire("k", exclusive).has_value());
}

TEST_CASE("entries exist only while a key is held or awaited")
{
    mutex_lock lock;
    CHECK(lock.key_count() == 0);
    {
        auto r1 = lock.acquire("a", shared);
        auto r2 = lock.acquire("a", shared);
        auto w = lock.acquire("b", exclusive);
        CHECK(lock.key_count() == 2);
        r1.unlock();
        CHECK(lock.key_count() == 2);
        r2.unlock();
        CHECK(lock.key_count() == 1);
        CHECK_FALSE(lock.try_acquire("b", shared).has_value()); // a failed try leaves no entry behind
        CHECK(lock.key_count() == 1);
    }
    CHECK(lock.key_count() == 0);
    CHECK(lock.try_acquire("c", exclusive).has_value());
    CHECK(lock.key_count() == 0);

    error_code ec;
    CHECK_FALSE(lock.acquire("../bad", exclusive, ec).owns_lock());
    CHECK(ec == error::invalid_argument);
    CHECK(lock.key_count() == 0);

    SUBCASE("a waiter keeps the entry alive across the holder's release")
    {
        auto held = lock.acquire("w", exclusive);
        std::atomic<bool> got{false};
        wait_counter released;
        bounded_thread waiter([&] {
            auto g = lock.acquire("w", exclusive);
            got = true;
            released.wait_for_count(1, must_happen_within);
        });
        CHECK_FALSE(waiter.finished_within(must_not_happen_for));
        CHECK(lock.key_count() == 1);
        held.unlock();
        // The waiter now holds it; the entry is still there until it releases.
        for (auto deadline = std::chrono::steady_clock::now() + must_happen_within; !got && std::chrono::steady_clock::now() < deadline;)
            std::this_thread::yield();
        CHECK(got.load());
        CHECK(lock.key_count() == 1);
        released.arrive();
        waiter.join();
        CHECK(lock.key_count() == 0);
    }
}

TEST_CASE("guards keep the table alive after the last mutex_lock is gone")
{
    mutex_lock::guard g;
    {
        mutex_lock lock;
        g = lock.acquire("k", exclusive);
    }
    CHECK(g.owns_lock());
    g.unlock();
    CHECK_FALSE(g.owns_lock());
}

TEST_CASE("a waiting writer holds back new readers")
{
    mutex_lock lock;
    auto reader = lock.acquire("k", shared);
    std::atomic<bool> writer_done{false};
    bounded_thread writer([&] {
        auto g = lock.acquire("k", exclusive);
        writer_done = g.owns_lock();
    });
    // Once the writer waits, a new shared request is refused although only readers hold the key.
    bool refused = false;
    for (auto deadline = std::chrono::steady_clock::now() + must_happen_within;
         !refused && std::chrono::steady_clock::now() < deadline;) {
        error_code ec;
        auto t = lock.try_acquire("k", shared, ec);
        REQUIRE_FALSE(ec);
        refused = !t.has_value();
        if (!refused) std::this_thread::yield();
    }
    CHECK(refused);
    CHECK_FALSE(writer_done.load());
    reader.unlock();
    writer.join(must_happen_within, "the writer after the last reader left");
    CHECK(writer_done.load());
    CHECK(lock.try_acquire("k", shared).has_value());
}

TEST_CASE("many threads on many keys: writers alone per key, nothing left behind")
{
    mutex_lock lock;
    constexpr int keys = 8;
    std::array<std::atomic<int>, keys> writers{}, readers{};
    std::atomic<int> violations{0};
    auto body = [&](int seed) {
        for (int i = 0; i < 2000; ++i) {
            int const k = (seed * 31 + i * 7) % keys;
            bool const ex = (i + seed) % 4 == 0;
            auto g = lock.acquire("key/" + std::to_string(k), ex ? exclusive : shared);
            if (ex) {
                if (writers[k].fetch_add(1) != 0 || readers[k].load() != 0) ++violations;
                std::this_thread::yield();
                writers[k].fetch_sub(1);
            } else {
                readers[k].fetch_add(1);
                if (writers[k].load() != 0) ++violations;
                readers[k].fetch_sub(1);
            }
        }
    };
    {
        bounded_thread t1([&] { body(1); }), t2([&] { body(2); }), t3([&] { body(3); }), t4([&] { body(4); });
    }
    CHECK(violations.load() == 0);
    CHECK(lock.key_count() == 0);
}

TEST_CASE("throwing overloads: invalid keys throw with the rule, held keys give an empty optional")
{
    mutex_lock lock;
    auto g = lock.acquire("k", exclusive);
    CHECK(static_cast<bool>(g));
    CHECK_FALSE(lock.try_acquire("k", exclusive).has_value());
    try {
        (void)lock.try_acquire("a/", exclusive);
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("ends with '/'") != std::string::npos);
    }
}
