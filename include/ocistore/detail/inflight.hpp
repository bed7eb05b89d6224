// ocistore/detail/inflight.hpp: work shared by the threads of one process (one leader runs it, followers wait for its result and see its progress).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>
#include <ocistore/store_types.hpp>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ocistore::detail {

/** A table of jobs in flight, keyed by what they produce. The first caller of join() for a
    key leads (runs the job and calls finish()); later callers follow: they subscribe to its
    progress and wait() for its outcome. Thread-safe. */
template <class Result>
class inflight_table {
public:
    using listener = std::function<void(progress_event const&)>;

    class job {
    public:
        /// Sends `ev` to every subscriber (cheap: subscribers only queue it).
        void emit(progress_event const& ev)
        {
            std::vector<std::pair<std::size_t, listener>> copy;
            {
                std::lock_guard lock(mutex_);
                copy = listeners_;
            }
            for (auto& [id, l] : copy) l(ev);
        }
        std::size_t subscribe(listener l)
        {
            std::lock_guard lock(mutex_);
            listeners_.emplace_back(next_id_, std::move(l));
            return next_id_++;
        }
        void unsubscribe(std::size_t id)
        {
            std::lock_guard lock(mutex_);
            std::erase_if(listeners_, [id](auto const& p) { return p.first == id; });
        }
        /// Blocks until the leader finished; returns its result (a copy) or sets `ec` and `*why`.
        std::optional<Result> wait(error_code& ec, std::string* why)
        {
            std::unique_lock lock(mutex_);
            done_cv_.wait(lock, [&] { return done_; });
            ec = ec_;
            if (why) *why = why_;
            return result_;
        }

    private:
        friend class inflight_table;
        std::mutex mutex_;
        std::condition_variable done_cv_;
        bool done_ = false;
        std::optional<Result> result_;
        error_code ec_;
        std::string why_;
        std::vector<std::pair<std::size_t, listener>> listeners_;
        std::size_t next_id_ = 0;
    };

    /// The job for `key` and whether the caller leads it.
    std::pair<std::shared_ptr<job>, bool> join(std::string const& key)
    {
        std::lock_guard lock(mutex_);
        auto [it, inserted] = jobs_.try_emplace(key);
        if (inserted) it->second = std::make_shared<job>();
        return {it->second, inserted};
    }

    /// Called by the leader: publishes the outcome, wakes the followers, forgets the key.
    void finish(std::string const& key, std::shared_ptr<job> const& j, std::optional<Result> result, error_code ec,
                std::string why)
    {
        {
            std::lock_guard lock(mutex_);
            auto it = jobs_.find(key);
            if (it != jobs_.end() && it->second == j) jobs_.erase(it);
        }
        {
            std::lock_guard lock(j->mutex_);
            j->result_ = std::move(result);
            j->ec_ = ec;
            j->why_ = std::move(why);
            j->done_ = true;
        }
        j->done_cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<job>> jobs_;
};

} // namespace ocistore::detail
