// Conformance suite for the *StoreLock* / *TryStoreLock* concepts: instantiate with
// TEST_CASE_TEMPLATE_INVOKE(store_lock_conformance, YourLock) after specialising
// ocistore_test::store_lock_traits<YourLock>. Checks guard semantics (default, move, early
// unlock), the key grammar, and, for locks that exclude (`traits::excludes`), that exclusive
// holders exclude everyone, shared holders coexist, and blocked acquires proceed on release.
// Uses only the concept's expressions, except where `if constexpr` finds a throwing overload.
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>

#include <support/bounded_wait.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ocistore_test {

/** Specialise per lock type:
    `static L make(std::filesystem::path const& dir)` builds a lock (using `dir` if it needs
    storage); `static constexpr bool excludes` says whether guards exclude each other (false
    for no-op locks, whose exclusion checks are skipped). */
template <class L> struct store_lock_traits;

struct invalid_lock_key {
    std::string key;
    std::string reason; ///< a fragment the diagnostic must contain
};

/// Keys outside the grammar, each with what its diagnostic must name.
inline std::vector<invalid_lock_key> invalid_lock_keys()
{
    using namespace std::string_literals;
    return {
        {"", "key is empty"},
        {"/abs", "starts with '/'"},
        {"/", "starts with '/'"},
        {"../x", "component \"..\" at position 0"},
        {"a/../b", "component \"..\" at position 2"},
        {"..", "component \"..\" at position 0"},
        {"a/./b", "component \".\" at position 2"},
        {".", "component \".\" at position 0"},
        {"a//b", "empty component at position 2"},
        {"a/", "ends with '/'"},
        {"a\0b"s, "byte 0x00 at position 1"},
        {"a b", "byte 0x20 at position 1"},
        {"blobs/sha256:ab", "':' at position 12"},
        {"a\\b", "'\\' at position 1"},
        {"\xc3\xa9", "byte 0xc3 at position 0"},
        {"x*", "'*' at position 1"},
        {std::string(256, 'a'), "256 bytes, more than the limit of 255"},
        {std::string(4096, 'a'), "4096 bytes"},
    };
}

/// Keys inside the grammar, including one of exactly 255 bytes.
inline std::vector<std::string> valid_lock_keys()
{
    return {
        "a",
        "Z",
        "0",
        "A-Z_0.9",
        "blobs/sha256/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "layers/sha256_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ".hidden",
        "...",
        "..a/a..",
        "a/b/c/d/e/f",
        "-_-",
        std::string(200, 'k') + "/" + std::string(54, 'v'),
    };
}

inline std::string_view name_of(ocistore::lock_mode m) { return m == ocistore::lock_mode::shared ? "shared" : "exclusive"; }

} // namespace ocistore_test

TEST_CASE_TEMPLATE_DEFINE("store_lock conformance", L, store_lock_conformance)
{
    using namespace ocistore;
    using namespace ocistore_test;
    using traits = store_lock_traits<L>;
    using guard = typename L::guard;
    static_assert(store_lock<L>);
    constexpr bool excludes = traits::excludes;
    constexpr lock_mode shared = lock_mode::shared, exclusive = lock_mode::exclusive;

    temp_dir dir("store-lock");
    L lock = traits::make(dir / "locks");
    error_code ec = error::io_error; // every successful call must clear it

    SUBCASE("a default guard holds nothing; unlock is then a no-op")
    {
        guard g;
        CHECK_FALSE(g.owns_lock());
        g.unlock();
        g.unlock();
        CHECK_FALSE(g.owns_lock());
    }

    SUBCASE("acquire returns an owning guard and clears ec, in both modes")
    {
        for (lock_mode m : {shared, exclusive}) {
            CAPTURE(name_of(m));
            ec = error::io_error;
            guard g = lock.acquire("blobs/sha256/abc", m, ec);
            CHECK_FALSE(ec);
            CHECK(g.owns_lock());
            g.unlock();
            CHECK_FALSE(g.owns_lock());
            g.unlock(); // second unlock is a no-op
            CHECK_FALSE(g.owns_lock());
        }
    }

    SUBCASE("every key inside the grammar is accepted")
    {
        for (auto const& key : valid_lock_keys()) {
            CAPTURE(key);
            ec = error::io_error;
            guard g = lock.acquire(key, exclusive, ec);
            CHECK_FALSE(ec);
            CHECK(g.owns_lock());
        }
    }

    SUBCASE("every key outside the grammar fails with invalid_argument and an empty guard")
    {
        for (auto const& bad : invalid_lock_keys()) {
            CAPTURE(bad.key);
            for (lock_mode m : {shared, exclusive}) {
                ec.clear();
                guard g = lock.acquire(bad.key, m, ec);
                CHECK(ec == error::invalid_argument);
                CHECK(ec == condition::invalid_input);
                CHECK_FALSE(g.owns_lock());
                if constexpr (try_store_lock<L>) {
                    ec.clear();
                    auto t = lock.try_acquire(bad.key, m, ec);
                    CHECK(ec == error::invalid_argument);
                    CHECK_FALSE(t.has_value());
                }
            }
            if constexpr (requires(L& l) { l.acquire(std::string_view(), lock_mode::shared); }) {
                try {
                    (void)lock.acquire(bad.key, exclusive);
                    FAIL("the throwing acquire did not throw");
                } catch (system_error const& e) {
                    CHECK(e.code() == error::invalid_argument);
                    CHECK_MESSAGE(std::string(e.what()).find(bad.reason) != std::string::npos, e.what());
                }
            }
        }
    }

    SUBCASE("guards move: the target owns, the source does not, move-assignment releases the old lock")
    {
        guard a = lock.acquire("a", exclusive, ec);
        REQUIRE(a.owns_lock());
        guard b(std::move(a));
        CHECK(b.owns_lock());
        CHECK_FALSE(a.owns_lock()); // NOLINT(bugprone-use-after-move): moved-from state is specified
        guard c;
        c = std::move(b);
        CHECK(c.owns_lock());
        CHECK_FALSE(b.owns_lock()); // NOLINT(bugprone-use-after-move)
        guard d = lock.acquire("d", exclusive, ec);
        REQUIRE(d.owns_lock());
        d = std::move(c); // releases "d", now holds "a"
        CHECK(d.owns_lock());
        if constexpr (excludes && try_store_lock<L>) {
            auto probe_d = lock.try_acquire("d", exclusive, ec);
            CHECK_FALSE(ec);
            CHECK_MESSAGE(probe_d.has_value(), "move-assignment did not release the lock it replaced");
            auto probe_a = lock.try_acquire("a", exclusive, ec);
            CHECK_FALSE(ec);
            CHECK_MESSAGE(!probe_a.has_value(), "the moved lock was released by a move");
        }
        d.unlock();
        CHECK_FALSE(d.owns_lock());
        if constexpr (excludes && try_store_lock<L>) {
            auto probe_a = lock.try_acquire("a", exclusive, ec);
            CHECK(probe_a.has_value());
        }
    }

    if constexpr (try_store_lock<L>) {
        SUBCASE("try_acquire takes a free key, engaged with ec clear")
        {
            for (lock_mode m : {shared, exclusive}) {
                ec = error::io_error;
                std::optional<guard> g = lock.try_acquire("free/key", m, ec);
                CHECK_FALSE(ec);
                REQUIRE(g.has_value());
                CHECK(g->owns_lock());
            }
        }
    }

    if constexpr (excludes && try_store_lock<L>) {
        SUBCASE("an exclusive holder excludes everyone until it unlocks")
        {
            guard held = lock.acquire("k", exclusive, ec);
            REQUIRE(held.owns_lock());
            for (lock_mode m : {shared, exclusive}) {
                CAPTURE(name_of(m));
                ec = error::io_error;
                auto t = lock.try_acquire("k", m, ec);
                CHECK_FALSE(ec); // "held elsewhere" is not an error
                CHECK_FALSE(t.has_value());
            }
            // Other keys, including prefixes and extensions of "k", are independent.
            for (char const* other : {"k2", "k/sub", "K", "kk"}) {
                CAPTURE(other);
                auto t = lock.try_acquire(other, exclusive, ec);
                CHECK_FALSE(ec);
                CHECK(t.has_value());
            }
            held.unlock();
            auto t = lock.try_acquire("k", exclusive, ec);
            CHECK_FALSE(ec);
            CHECK(t.has_value());
        }

        SUBCASE("shared holders coexist and keep writers out")
        {
            guard r1 = lock.acquire("k", shared, ec);
            REQUIRE(r1.owns_lock());
            auto r2 = lock.try_acquire("k", shared, ec);
            CHECK_FALSE(ec);
            REQUIRE(r2.has_value());
            auto w = lock.try_acquire("k", exclusive, ec);
            CHECK_FALSE(ec);
            CHECK_FALSE(w.has_value());
            r1.unlock();
            w = lock.try_acquire("k", exclusive, ec);
            CHECK_FALSE(w.has_value()); // r2 still holds it
            r2.reset();
            w = lock.try_acquire("k", exclusive, ec);
            CHECK_FALSE(ec);
            CHECK(w.has_value());
        }

        SUBCASE("destroying a guard releases its lock")
        {
            {
                guard g = lock.acquire("k", exclusive, ec);
                REQUIRE(g.owns_lock());
            }
            auto t = lock.try_acquire("k", exclusive, ec);
            CHECK(t.has_value());
        }
    }

    if constexpr (excludes) {
        SUBCASE("a blocked acquire waits for the conflicting holder, then succeeds")
        {
            struct combo {
                lock_mode held, wanted;
            };
            for (combo c : {combo{exclusive, exclusive}, combo{exclusive, shared}, combo{shared, exclusive}}) {
                CAPTURE(name_of(c.held));
                CAPTURE(name_of(c.wanted));
                guard held = lock.acquire("k", c.held, ec);
                REQUIRE(held.owns_lock());
                std::atomic<bool> got{false};
                error_code thread_ec = error::io_error;
                bounded_thread waiter([&] {
                    guard g = lock.acquire("k", c.wanted, thread_ec);
                    got = g.owns_lock();
                });
                CHECK_FALSE(waiter.finished_within(must_not_happen_for));
                CHECK_FALSE(got.load());
                held.unlock();
                waiter.join(must_happen_within, "an acquire blocked on a released lock");
                CHECK(got.load());
                CHECK_FALSE(thread_ec);
            }
        }

        SUBCASE("under contention, writers are alone and readers never meet a writer")
        {
            std::atomic<int> readers{0}, writers{0}, violations{0}, failures{0}, max_readers{0};
            constexpr int rounds = 150;
            auto writer = [&] {
                for (int i = 0; i < rounds; ++i) {
                    error_code e;
                    guard g = lock.acquire("contended", exclusive, e);
                    if (e || !g.owns_lock()) ++failures;
                    if (writers.fetch_add(1) != 0 || readers.load() != 0) ++violations;
                    std::this_thread::yield();
                    if (readers.load() != 0) ++violations;
                    writers.fetch_sub(1);
                }
            };
            auto reader = [&] {
                for (int i = 0; i < rounds; ++i) {
                    error_code e;
                    guard g = lock.acquire("contended", shared, e);
                    if (e || !g.owns_lock()) ++failures;
                    int now = readers.fetch_add(1) + 1;
                    for (int seen = max_readers.load(); now > seen && !max_readers.compare_exchange_weak(seen, now);) {
                    }
                    if (writers.load() != 0) ++violations;
                    std::this_thread::yield();
                    if (writers.load() != 0) ++violations;
                    readers.fetch_sub(1);
                }
            };
            {
                bounded_thread w1(writer), w2(writer), w3(writer), r1(reader), r2(reader), r3(reader);
            } // joined here, each within must_happen_within
            CHECK(failures.load() == 0);
            CHECK(violations.load() == 0);
            CHECK(max_readers.load() >= 1);
        }
    }

    SUBCASE("shared holders in several threads hold the key at the same time")
    {
        constexpr int n = 4;
        wait_counter holding;
        std::atomic<int> met{0}, failures{0};
        auto body = [&] {
            error_code e;
            guard g = lock.acquire("k", shared, e);
            if (e || !g.owns_lock()) ++failures;
            holding.arrive();
            // Release only once every thread holds the key: possible only if they coexist.
            if (holding.wait_for_count(n, must_happen_within)) ++met;
        };
        {
            bounded_thread t1(body), t2(body), t3(body), t4(body);
        } // joined here
        CHECK(failures.load() == 0);
        CHECK(met.load() == n);
    }
}
