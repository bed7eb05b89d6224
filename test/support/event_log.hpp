// Test support: a progress callback that records every event it is given, thread-safely.
#pragma once

#include <ocistore/store_types.hpp>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <vector>

namespace ocistore_test {

/// Records the events passed to callback(); every member may be called from any thread.
struct event_log {
    std::mutex m;
    std::vector<ocistore::progress_event> events;

    ocistore::progress_callback callback()
    {
        return [this](ocistore::progress_event const& ev) {
            std::lock_guard lock(m);
            events.push_back(ev);
        };
    }
    /// A copy of the events so far.
    std::vector<ocistore::progress_event> snapshot()
    {
        std::lock_guard lock(m);
        return events;
    }
    std::vector<ocistore::progress_kind> kinds()
    {
        std::lock_guard lock(m);
        std::vector<ocistore::progress_kind> k;
        for (auto const& e : events) k.push_back(e.kind);
        return k;
    }
    std::size_t count(ocistore::progress_kind k)
    {
        std::lock_guard lock(m);
        return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [k](auto const& e) { return e.kind == k; }));
    }
};

} // namespace ocistore_test
