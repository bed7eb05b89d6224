#include <ocistore/detail/progress_relay.hpp>

#include <support/event_log.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

using namespace ocistore;
using ocistore::detail::progress_relay;
using namespace std::chrono_literals;

namespace {

progress_event event(progress_kind kind, std::size_t layer, std::uint64_t current = 0)
{
    progress_event ev;
    ev.kind = kind;
    ev.layer = layer;
    ev.current = current;
    return ev;
}

} // namespace

TEST_CASE("progress_relay: byte progress gathers into one batch, coalesced per layer, until another event or close()")
{
    ocistore_test::event_log r;
    progress_relay relay(10s); // longer than the test: only another event or close() ends the gathering
    relay.add_listener(r.callback());
    for (std::uint64_t i = 1; i <= 100; ++i) relay.post(event(progress_kind::download_progress, 0, i));
    relay.post(event(progress_kind::build_progress, 1, 7));
    std::this_thread::sleep_for(20ms);
    CHECK(r.snapshot().empty()); // still gathering

    auto const posted = std::chrono::steady_clock::now();
    relay.post(event(progress_kind::download_complete, 0, 100)); // not byte progress: delivered now
    while (r.snapshot().size() < 3 && std::chrono::steady_clock::now() - posted < 5s) std::this_thread::sleep_for(1ms);
    auto seen = r.snapshot();
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].kind == progress_kind::download_progress);
    CHECK(seen[0].layer == 0);
    CHECK(seen[0].current == 100); // the newest of the hundred, in the first one's place
    CHECK(seen[1].kind == progress_kind::build_progress);
    CHECK(seen[1].current == 7);
    CHECK(seen[2].kind == progress_kind::download_complete);

    relay.post(event(progress_kind::download_progress, 2, 1));
    relay.close(); // ends the gathering and delivers it
    seen = r.snapshot();
    REQUIRE(seen.size() == 4);
    CHECK(seen[3].layer == 2);
}

TEST_CASE("progress_relay: without another event, byte progress arrives once the gathering period has passed")
{
    ocistore_test::event_log r;
    progress_relay relay(5ms);
    relay.add_listener(r.callback());
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    for (std::uint64_t n = 1; n <= 2; ++n) {
        relay.post(event(progress_kind::download_progress, 0, n));
        while (r.snapshot().size() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        auto const seen = r.snapshot();
        REQUIRE(seen.size() == n);
        CHECK(seen.back().current == n);
    }
}

TEST_CASE("progress_relay: a slow or throwing listener never blocks post(), and close() delivers everything queued")
{
    ocistore_test::event_log r;
    std::mutex gate;
    std::unique_lock hold(gate);
    progress_relay relay(0ms);
    relay.add_listener([&](progress_event const&) {
        std::lock_guard wait(gate); // blocks delivery until the test lets go
        throw 1;                    // and a listener's exception is swallowed
    });
    relay.add_listener(r.callback());
    auto const start = std::chrono::steady_clock::now();
    for (std::size_t layer = 0; layer < 50; ++layer) relay.post(event(progress_kind::build_complete, layer));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    hold.unlock();
    relay.close();
    auto const seen = r.snapshot();
    REQUIRE(seen.size() == 50);
    for (std::size_t layer = 0; layer < 50; ++layer) CHECK(seen[layer].layer == layer); // in order
    relay.post(event(progress_kind::complete, 0)); // after close(): dropped
    CHECK(r.snapshot().size() == 50);
}
