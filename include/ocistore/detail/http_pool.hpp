// Internal: the keep-alive connection pool of http_transport, bounded per endpoint.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/http_socket.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ocistore::detail {

class connection_pool;

/** A slot of the pool for one endpoint: holds a connection (or nothing yet, when the caller
    must connect). Destruction frees the slot; the connection goes back to the pool only
    through `release(true)`, otherwise it is closed. */
class pooled_connection {
public:
    pooled_connection() = default;
    pooled_connection(pooled_connection&& o) noexcept
        : pool_(std::move(o.pool_)), endpoint_(std::move(o.endpoint_)), conn_(std::move(o.conn_)), reused_(o.reused_)
    {
    }
    pooled_connection& operator=(pooled_connection&& o) noexcept
    {
        if (this != &o) {
            release(false);
            pool_ = std::move(o.pool_);
            endpoint_ = std::move(o.endpoint_);
            conn_ = std::move(o.conn_);
            reused_ = o.reused_;
        }
        return *this;
    }
    ~pooled_connection() { release(false); }

    explicit operator bool() const noexcept { return pool_ != nullptr; }
    http_endpoint const& endpoint() const noexcept { return endpoint_; }
    /// The connection; null until the caller connects and calls `reset`.
    http_connection* get() const noexcept { return conn_.get(); }
    http_connection* operator->() const noexcept { return conn_.get(); }
    void reset(std::unique_ptr<http_connection> c) noexcept { conn_ = std::move(c); }
    /// Whether the connection came from the idle list (and may have been closed by the peer).
    bool reused() const noexcept { return reused_; }
    void set_reused(bool r) noexcept { reused_ = r; }

    /// Frees the slot: keeps the connection for reuse when `keep_alive`, else closes it.
    inline void release(bool keep_alive) noexcept;

private:
    friend class connection_pool;
    pooled_connection(std::shared_ptr<connection_pool> p, http_endpoint ep, std::unique_ptr<http_connection> c, bool reused)
        : pool_(std::move(p)), endpoint_(std::move(ep)), conn_(std::move(c)), reused_(reused)
    {
    }

    std::shared_ptr<connection_pool> pool_;
    http_endpoint endpoint_;
    std::unique_ptr<http_connection> conn_;
    bool reused_ = false;
};

/** At most `max_per_endpoint` connections in use per endpoint; further callers wait. Idle
    connections are kept (at most that many per endpoint) for `max_idle` and handed out again
    unless the peer has closed them. Thread-safe. Create with `std::make_shared`. */
class connection_pool : public std::enable_shared_from_this<connection_pool> {
public:
    connection_pool(std::size_t max_per_endpoint, std::chrono::steady_clock::duration max_idle)
        : max_per_endpoint_(max_per_endpoint == 0 ? 1 : max_per_endpoint), max_idle_(max_idle)
    {
    }

    /// A slot for `ep`, with an idle connection when one is usable; an empty handle when
    /// `deadline` passed first.
    pooled_connection acquire(http_endpoint const& ep, steady_clock::time_point deadline)
    {
        std::vector<std::unique_ptr<http_connection>> stale;
        std::unique_lock lk(mutex_);
        auto& slot = slots_[ep];
        if (!cv_.wait_until(lk, deadline, [&] { return slot.in_use < max_per_endpoint_; })) return {};
        ++slot.in_use;
        auto now = steady_clock::now();
        while (!slot.idle.empty()) {
            auto c = std::move(slot.idle.back());
            slot.idle.pop_back();
            if (now - c->idle_since < max_idle_ && !c->socket().readable_now())
                return pooled_connection(shared_from_this(), ep, std::move(c), true);
            stale.push_back(std::move(c));
        }
        lk.unlock(); // `stale` closes outside the lock
        return pooled_connection(shared_from_this(), ep, nullptr, false);
    }

    /// Number of idle connections kept for `ep` (for tests).
    std::size_t idle_count(http_endpoint const& ep)
    {
        std::lock_guard lk(mutex_);
        auto it = slots_.find(ep);
        return it == slots_.end() ? 0 : it->second.idle.size();
    }

private:
    friend class pooled_connection;
    void put_back(http_endpoint const& ep, std::unique_ptr<http_connection> c) noexcept
    {
        std::unique_ptr<http_connection> drop;
        {
            std::lock_guard lk(mutex_);
            auto& slot = slots_[ep];
            if (slot.in_use > 0) --slot.in_use;
            if (c && slot.idle.size() < max_per_endpoint_) {
                c->idle_since = steady_clock::now();
                slot.idle.push_back(std::move(c));
            } else {
                drop = std::move(c);
            }
        }
        cv_.notify_one();
    }

    struct slot_state {
        std::size_t in_use = 0;
        std::vector<std::unique_ptr<http_connection>> idle;
    };

    std::size_t max_per_endpoint_;
    std::chrono::steady_clock::duration max_idle_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::map<http_endpoint, slot_state> slots_;
};

inline void pooled_connection::release(bool keep_alive) noexcept
{
    if (!pool_) return;
    auto pool = std::move(pool_);
    pool_.reset();
    std::unique_ptr<http_connection> c = std::move(conn_);
    if (c && !keep_alive) {
        c->socket().close();
        c.reset();
    }
    pool->put_back(endpoint_, std::move(c));
}

} // namespace ocistore::detail
