#include <ocistore/progress_view.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore::cli;
using namespace std::chrono_literals;

namespace {

using clock_type = progress_view::clock;
clock_type::time_point const t0 = clock_type::time_point{} + 1000s;

digest dg(char c) { return digest::parse("sha256:" + std::string(64, c)); }

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * 1024;

progress_event ev(progress_kind k, std::size_t layer = progress_event::no_layer, std::uint64_t current = 0,
                  std::uint64_t total = 0, digest blob = {})
{
    progress_event e;
    e.kind = k;
    e.reference = "example.com/app:v1";
    e.layer = layer;
    e.current = current;
    e.total = total;
    e.blob = std::move(blob);
    return e;
}

progress_event resolved(std::size_t layers, std::uint64_t total)
{
    auto e = ev(progress_kind::resolved);
    e.layers = layers;
    e.total = total;
    e.manifest_digest = dg('c');
    return e;
}

progress_event cached(progress_event e)
{
    e.cached = true;
    return e;
}

progress_view plain_view()
{
    progress_view::options o;
    o.style = progress_style::plain;
    return progress_view(o);
}

progress_view tty_view(std::size_t width = 120, std::size_t rows = 24)
{
    progress_view::options o;
    o.style = progress_style::tty;
    o.width = width;
    o.max_rows = rows;
    return progress_view(o);
}

} // namespace

TEST_CASE("cli progress: byte, duration and rate formats")
{
    CHECK(format_bytes(0) == "0 B");
    CHECK(format_bytes(1023) == "1023 B");
    CHECK(format_bytes(1024) == "1.00 KiB");
    CHECK(format_bytes(1536) == "1.50 KiB");
    CHECK(format_bytes(10 * KiB) == "10.0 KiB");
    CHECK(format_bytes(512 * KiB) == "512 KiB");
    CHECK(format_bytes(MiB) == "1.00 MiB");
    CHECK(format_bytes(96 * MiB) == "96.0 MiB");
    CHECK(format_bytes(1536 * MiB) == "1.50 GiB");
    CHECK(format_duration(0s) == "0:00");
    CHECK(format_duration(7s) == "0:07");
    CHECK(format_duration(754s) == "12:34");
    CHECK(format_duration(3723s) == "1:02:03");
    CHECK(format_duration(-5s) == "0:00");
    CHECK(format_elapsed(2500ms) == "2.50 s");
    CHECK(format_elapsed(12340ms) == "12.3 s");
    CHECK(format_elapsed(3ms) == "3.0 ms");
    CHECK(format_elapsed(125s) == "2:05");
    CHECK(format_rate(5.5 * MiB) == "5.50 MiB/s");
    CHECK(short_digest(dg('a')) == "aaaaaaaaaaaa");
}

TEST_CASE("cli progress: plain lines for a pull with one downloaded and one cached layer")
{
    auto v = plain_view();
    CHECK(v.on_event(ev(progress_kind::resolving), t0) == "resolving example.com/app:v1\n");
    CHECK(v.on_event(resolved(2, 3 * MiB), t0) ==
          "resolved example.com/app:v1: 2 layers, 3.00 MiB, manifest " + dg('c').str() + "\n");
    CHECK(v.on_event(ev(progress_kind::build_started, 0, 0, MiB, dg('a')), t0).empty());
    // The first progress of a layer is printed; then at most one line a second.
    CHECK(v.on_event(ev(progress_kind::download_progress, 0, 256 * KiB, MiB, dg('a')), t0 + 500ms) ==
          "layer 1/2 aaaaaaaaaaaa: 256 KiB / 1.00 MiB (25%) 512 KiB/s ETA 0:01\n");
    CHECK(v.on_event(ev(progress_kind::download_progress, 0, 512 * KiB, MiB, dg('a')), t0 + 1000ms).empty());
    CHECK(v.on_event(ev(progress_kind::build_progress, 0, 300 * KiB, MiB, dg('a')), t0 + 1100ms).empty());
    CHECK(v.on_event(ev(progress_kind::download_progress, 0, 768 * KiB, MiB, dg('a')), t0 + 1600ms) ==
          "layer 1/2 aaaaaaaaaaaa: 768 KiB / 1.00 MiB (75%) 480 KiB/s ETA 0:00\n");
    CHECK(v.on_event(ev(progress_kind::download_complete, 0, MiB, MiB, dg('a')), t0 + 2s) ==
          "layer 1/2 aaaaaaaaaaaa: downloaded 1.00 MiB in 2.00 s\n");
    CHECK(v.on_event(ev(progress_kind::build_complete, 0, 3 * MiB, MiB, dg('a')), t0 + 2s) ==
          "layer 1/2 aaaaaaaaaaaa: done\n");
    // A layer already held: one line.
    CHECK(v.on_event(cached(ev(progress_kind::download_complete, 1, 2 * MiB, 2 * MiB, dg('b'))), t0 + 2s).empty());
    CHECK(v.on_event(cached(ev(progress_kind::build_complete, 1, 2 * MiB, 2 * MiB, dg('b'))), t0 + 2s) ==
          "layer 2/2 bbbbbbbbbbbb: cached\n");
    CHECK(v.on_event(ev(progress_kind::compose_started), t0 + 2s) == "composing the image\n");
    CHECK(v.on_event(ev(progress_kind::compose_complete), t0 + 2s) == "image composed\n");
    CHECK(v.on_event(ev(progress_kind::complete, progress_event::no_layer, MiB), t0 + 2500ms) ==
          "complete: example.com/app:v1, 1.00 MiB downloaded in 2.50 s\n");
    CHECK(v.finish(t0 + 3s, true).empty()); // plain has no closing redraw
}

TEST_CASE("cli progress: plain: a resumed download counts only this run's bytes in its rate")
{
    auto v = plain_view();
    auto retry = ev(progress_kind::retry, 0, MiB, 4 * MiB, dg('a'));
    retry.reason = "resuming from a partial download of 1048576 bytes";
    CHECK(v.on_event(retry, t0) ==
          "layer 1/1 aaaaaaaaaaaa: retrying at 1.00 MiB: resuming from a partial download of 1048576 bytes\n");
    CHECK(v.on_event(ev(progress_kind::download_progress, 0, 2 * MiB, 4 * MiB, dg('a')), t0 + 1s) ==
          "layer 1/1 aaaaaaaaaaaa: 2.00 MiB / 4.00 MiB (50%) 1.00 MiB/s ETA 0:02\n");
    CHECK(v.on_event(ev(progress_kind::download_complete, 0, 4 * MiB, 4 * MiB, dg('a')), t0 + 2s) ==
          "layer 1/1 aaaaaaaaaaaa: downloaded 3.00 MiB in 2.00 s\n");
    // A mid-body retry is reported with its reason.
    auto again = ev(progress_kind::retry, 0, 3 * MiB, 4 * MiB, dg('a'));
    again.reason = "connection reset";
    CHECK(v.on_event(again, t0 + 3s) == "layer 1/1 aaaaaaaaaaaa: retrying at 3.00 MiB: connection reset\n");
}

TEST_CASE("cli progress: plain: the cached fast path is three lines")
{
    auto v = plain_view();
    std::string all;
    all += v.on_event(ev(progress_kind::resolving), t0);
    all += v.on_event(resolved(3, 10 * KiB), t0 + 1ms);
    all += v.on_event(cached(ev(progress_kind::complete)), t0 + 2ms);
    CHECK(all == "resolving example.com/app:v1\n"
                 "resolved example.com/app:v1: 3 layers, 10.0 KiB, manifest " + dg('c').str() + "\n"
                 "complete: example.com/app:v1 (cached)\n");
}

TEST_CASE("cli progress: tty bars, redrawn in place")
{
    auto v = tty_view();
    auto first = v.on_event(ev(progress_kind::resolving), t0);
    CHECK(first == "\r\x1b[2Ktotal        resolving\n\x1b[J"); // no cursor movement yet; nothing to count yet

    auto second = v.on_event(resolved(2, 3 * MiB), t0);
    CHECK(second.starts_with("\x1b[1A")); // up over the one line drawn before
    CHECK(v.lines(t0) == std::vector<std::string>{"layer 1      waiting", "layer 2      waiting",
                                                  "total        download [                ] 0 B/3.00 MiB"});

    auto third = v.on_event(ev(progress_kind::download_progress, 0, 512 * KiB, MiB, dg('a')), t0 + 50ms);
    CHECK(third.starts_with("\x1b[3A")); // a state change redraws at once
    CHECK(third.find("\r\x1b[2Kaaaaaaaaaaaa download [========>       ] 512 KiB/1.00 MiB\n") != std::string::npos);
    CHECK(third.ends_with("\x1b[J"));

    // Progress alone redraws at most every 100 ms.
    CHECK(v.on_event(ev(progress_kind::download_progress, 0, 600 * KiB, MiB, dg('a')), t0 + 100ms).empty());
    auto fourth = v.on_event(ev(progress_kind::download_progress, 0, 768 * KiB, MiB, dg('a')), t0 + 1s);
    CHECK(fourth.starts_with("\x1b[3A"));
    CHECK(v.lines(t0 + 1s) ==
          std::vector<std::string>{
              // 768 KiB in the 950 ms since the layer's first event
              "aaaaaaaaaaaa download [============>   ] 768 KiB/1.00 MiB    808 KiB/s   ETA 0:00",
              "layer 2      waiting",
              // 768 KiB in the second since `resolved`
              "total        download [====>           ] 768 KiB/3.00 MiB    768 KiB/s   ETA 0:03"});
    // Exactly the three lines, each cleared first.
    std::size_t clears = 0;
    for (std::size_t p = fourth.find("\x1b[2K"); p != std::string::npos; p = fourth.find("\x1b[2K", p + 1)) ++clears;
    CHECK(clears == 3);

    v.on_event(ev(progress_kind::download_complete, 0, MiB, MiB, dg('a')), t0 + 1200ms);
    CHECK(v.lines(t0 + 1200ms)[0] == "aaaaaaaaaaaa building [================] 1.00 MiB/1.00 MiB");
    v.on_event(ev(progress_kind::build_complete, 0, MiB, MiB, dg('a')), t0 + 1300ms);
    v.on_event(cached(ev(progress_kind::download_complete, 1, 2 * MiB, 2 * MiB, dg('b'))), t0 + 1300ms);
    v.on_event(cached(ev(progress_kind::build_complete, 1, 2 * MiB, 2 * MiB, dg('b'))), t0 + 1300ms);
    v.on_event(ev(progress_kind::compose_started), t0 + 1400ms);
    CHECK(v.lines(t0 + 1400ms).back() == "total        composing [================] 3.00 MiB/3.00 MiB");
    v.on_event(ev(progress_kind::complete, progress_event::no_layer, MiB), t0 + 1500ms);
    CHECK(v.lines(t0 + 1500ms) == std::vector<std::string>{
                                      "aaaaaaaaaaaa done     [================] 1.00 MiB/1.00 MiB",
                                      "bbbbbbbbbbbb cached   [================] 2.00 MiB/2.00 MiB",
                                      "total        complete [================] 3.00 MiB/3.00 MiB"});
    auto last = v.finish(t0 + 1600ms, true);
    CHECK(last.starts_with("\x1b[3A"));
    CHECK(last.find("total        complete") != std::string::npos);
}

TEST_CASE("cli progress: tty: retries, built-from-cache, failure, width, many layers, cached pull")
{
    SUBCASE("a retrying layer and a layer built from a kept blob")
    {
        auto v = tty_view();
        v.on_event(resolved(2, 2 * MiB), t0);
        v.on_event(ev(progress_kind::retry, 0, 256 * KiB, MiB, dg('a')), t0);
        v.on_event(ev(progress_kind::build_started, 1, 0, MiB, dg('b')), t0);
        v.on_event(ev(progress_kind::build_complete, 1, 0, MiB, dg('b')), t0);
        v.on_event(cached(ev(progress_kind::download_complete, 1, MiB, MiB, dg('b'))), t0);
        auto l = v.lines(t0);
        CHECK(l[0] == "aaaaaaaaaaaa retrying [====>           ] 256 KiB/1.00 MiB");
        CHECK(l[1] == "bbbbbbbbbbbb built    [================] 1.00 MiB/1.00 MiB");
    }
    SUBCASE("a failed pull marks the total")
    {
        auto v = tty_view();
        v.on_event(resolved(1, MiB), t0);
        v.on_event(ev(progress_kind::download_progress, 0, 512 * KiB, MiB, dg('a')), t0 + 10ms);
        auto out = v.finish(t0 + 20ms, false);
        CHECK(out.find("total        failed   [========>       ] 512 KiB/1.00 MiB") != std::string::npos);
        auto w = tty_view();
        w.on_event(resolved(1, MiB), t0);
        CHECK(w.finish(t0, false, "stopped").find("total        stopped") != std::string::npos);
        CHECK(tty_view().finish(t0, false).empty()); // nothing drawn: nothing to finish
    }
    SUBCASE("lines are cut to the terminal width")
    {
        auto v = tty_view(40);
        v.on_event(resolved(1, MiB), t0);
        v.on_event(ev(progress_kind::download_progress, 0, 768 * KiB, MiB, dg('a')), t0 + 1s);
        for (auto const& s : v.lines(t0 + 1s)) CHECK(s.size() <= 39);
        CHECK(v.lines(t0 + 1s)[0] == "aaaaaaaaaaaa download [============>   "); // 39 columns
    }
    SUBCASE("more layers than rows: unfinished layers first, the rest summarised")
    {
        auto v = tty_view(120, 6);
        v.on_event(resolved(8, 8 * MiB), t0);
        for (std::size_t i = 0; i < 2; ++i)
            v.on_event(cached(ev(progress_kind::build_complete, i, MiB, MiB, dg(static_cast<char>('a' + i)))), t0);
        v.on_event(ev(progress_kind::download_progress, 2, KiB, MiB, dg('c')), t0);
        auto l = v.lines(t0);
        REQUIRE(l.size() == 6);
        CHECK(l[0].starts_with("cccccccccccc download"));
        CHECK(l[1].starts_with("layer 4      waiting"));
        CHECK(l[3].starts_with("layer 6      waiting"));
        CHECK(l[4] == "... 2 done, 2 more");
        CHECK(l[5].starts_with("total        download"));
    }
    SUBCASE("a cached pull draws the total line only")
    {
        auto v = tty_view();
        v.on_event(ev(progress_kind::resolving), t0);
        v.on_event(resolved(3, 3 * MiB), t0);
        auto out = v.on_event(cached(ev(progress_kind::complete)), t0 + 1ms);
        CHECK(v.lines(t0) == std::vector<std::string>{"total        cached   [================] 3.00 MiB/3.00 MiB"});
        CHECK(out.starts_with("\x1b[4A")); // up over the 3 layers and the total drawn before, then one line, then clear the rest
        CHECK(out.ends_with("3.00 MiB/3.00 MiB\n\x1b[J"));
    }
}
