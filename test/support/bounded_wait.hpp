// Test support: waits that end. Threads joined with a deadline and a counter to wait on, so a
// locking bug fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

namespace ocistore_test {

using namespace std::chrono_literals;

/// Generous bound for things that must happen (a released lock being taken, a child reporting).
inline constexpr std::chrono::seconds must_happen_within{20};
/// How long to watch for something that must *not* happen (a blocked acquire succeeding).
inline constexpr std::chrono::milliseconds must_not_happen_for{150};

/// Ends the process when a wait that must finish did not: a hang would hide the failure.
[[noreturn]] inline void die_of_timeout(char const* what)
{
    std::fprintf(stderr, "TIMEOUT: %s did not finish in time; a lock is probably never released\n", what);
    std::fflush(stderr);
    std::_Exit(124);
}

/// A thread whose completion can be awaited with a deadline. Joins (with the default bound) on destruction.
class bounded_thread {
public:
    template <class F>
    explicit bounded_thread(F f)
    {
        std::promise<void> done;
        done_ = done.get_future();
        thread_ = std::thread([f = std::move(f), done = std::move(done)]() mutable {
            f();
            done.set_value();
        });
    }
    bounded_thread(bounded_thread const&) = delete;
    bounded_thread& operator=(bounded_thread const&) = delete;
    ~bounded_thread()
    {
        if (thread_.joinable()) join();
    }

    /// Whether the thread's function returned within `d`.
    template <class Rep, class Period> bool finished_within(std::chrono::duration<Rep, Period> d) const
    {
        return done_.wait_for(d) == std::future_status::ready;
    }
    /// Joins; ends the process if the function does not return within `d`.
    template <class Rep = std::chrono::seconds::rep, class Period = std::chrono::seconds::period>
    void join(std::chrono::duration<Rep, Period> d = must_happen_within, char const* what = "a test thread")
    {
        if (!finished_within(d)) die_of_timeout(what);
        thread_.join();
    }

private:
    std::future<void> done_;
    std::thread thread_;
};

/// A counter threads bump and others wait on.
class wait_counter {
public:
    void arrive()
    {
        std::lock_guard lk(m_);
        ++n_;
        cv_.notify_all();
    }
    /// Whether the count reached `n` within `d`.
    template <class Rep, class Period> bool wait_for_count(int n, std::chrono::duration<Rep, Period> d)
    {
        std::unique_lock lk(m_);
        return cv_.wait_for(lk, d, [&] { return n_ >= n; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int n_ = 0;
};

} // namespace ocistore_test
