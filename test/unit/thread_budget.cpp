#include <ocistore/detail/thread_budget.hpp>

#include <doctest/doctest.h>

#include <atomic>
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
