// Shared by the benchmarks: timing as the median of repetitions.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace ocistore_bench {

/// Runs `f` `reps` times (at least once) and returns the median wall time in seconds.
inline double median_seconds(int reps, std::function<void()> const& f)
{
    std::vector<double> t;
    for (int i = 0; i < std::max(reps, 1); ++i) {
        auto const a = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

} // namespace ocistore_bench
