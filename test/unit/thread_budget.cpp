#include <ocistore/detail/job_slots.hpp>
#include <ocistore/detail/thread_budget.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using ocistore::detail::thread_budget;

TEST_CASE("thread_budget: helpers while a core idles, the job's own thread once the cores are busy")
{
    thread_budget budget(2);
    CHECK(budget.cores() == 2);
    {
        auto first = budget.take(2);
        CHECK(first.threads() == 2); // nothing running: the job gets its read-ahead thread
        CHECK(budget.busy() == 2);
        auto second = budget.take(2);
        CHECK(second.threads() == 1); // both cores busy: it runs on its own thread
        CHECK(budget.busy() == 3);
        {
            auto third = budget.take(3);
            CHECK(third.threads() == 1);
            CHECK(budget.busy() == 4);
        }
        CHECK(budget.busy() == 3); // given back on destruction
        first = {};                // and on assignment
        CHECK(budget.busy() == 1);
        auto fourth = budget.take(2);
        CHECK(fourth.threads() == 2); // a core idles again
        CHECK(budget.busy() == 3);

        auto moved = std::move(fourth);
        CHECK(moved.threads() == 2);
        CHECK(fourth.threads() == 0); // NOLINT(bugprone-use-after-move): a moved-from lease holds nothing
        CHECK(budget.busy() == 3);
    }
    CHECK(budget.busy() == 0);

    CHECK(budget.take(0).threads() == 1); // a job always has its own thread
    thread_budget none(0);
    CHECK(none.cores() == 1); // no count of cores: one
    CHECK(none.take(2).threads() == 2);
}

TEST_CASE("thread_budget: concurrent takers never over-grant helpers and leave nothing behind")
{
    thread_budget budget(4);
    std::atomic<unsigned> over{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 2000; ++i) {
                    auto lease = budget.take(3);
                    // A grant of 3 needs fewer than 4 busy threads, so at most two are out at
                    // once; with the single-thread leases of the other six takers: 12.
                    if (budget.busy() > 12) over.fetch_add(1);
                    CHECK((lease.threads() == 3 || lease.threads() == 1));
                }
            });
    }
    CHECK(over.load() == 0);
    CHECK(budget.busy() == 0);
}

// ---------------------------------------------------------------------------------------------
// job_slots: the gate of a pull's busy layers.

TEST_CASE("job_slots: a slot is held until released or destroyed, and release is idempotent")
{
    using ocistore::detail::job_slots;
    job_slots slots(2);
    CHECK(slots.available() == 2);
    {
        auto a = slots.acquire();
        CHECK(a.held());
        auto b = slots.acquire();
        CHECK(slots.available() == 0);
        a.release();
        CHECK_FALSE(a.held());
        CHECK(slots.available() == 1);
        a.release(); // a second release gives nothing back
        CHECK(slots.available() == 1);
        auto moved = std::move(b);
        CHECK(moved.held());
        CHECK_FALSE(b.held()); // NOLINT(bugprone-use-after-move): a moved-from slot holds nothing
        CHECK(slots.available() == 1);
    }
    CHECK(slots.available() == 2);
    CHECK(job_slots(0).available() == 1); // at least one slot
}

TEST_CASE("job_slots: acquire blocks while every slot is held and wakes when one is released")
{
    using ocistore::detail::job_slots;
    job_slots slots(1);
    auto held = slots.acquire();
    std::atomic<bool> got{false};
    std::jthread waiter([&] {
        auto s = slots.acquire();
        got = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(got.load()); // still waiting for the only slot
    held.release();
    waiter.join();
    CHECK(got.load());
    CHECK(slots.available() == 1);
}

TEST_CASE("job_slots: concurrent holders never exceed the count")
{
    using ocistore::detail::job_slots;
    job_slots slots(3);
    std::atomic<int> inside{0}, most{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 500; ++i) {
                    auto s = slots.acquire();
                    int const now = inside.fetch_add(1) + 1;
                    int seen = most.load();
                    while (now > seen && !most.compare_exchange_weak(seen, now)) {}
                    inside.fetch_sub(1);
                    if (i % 2) s.release(); // given back early, as a layer before its fsyncs
                }
            });
    }
    CHECK(most.load() <= 3);
    CHECK(most.load() >= 1);
    CHECK(slots.available() == 3);
}
