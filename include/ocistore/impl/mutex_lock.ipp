// Non-template bodies for ocistore/lock/mutex_lock.hpp.
#pragma once

#include <ocistore/lock/mutex_lock.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/lock_key.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

namespace ocistore {
namespace detail {

/// The state of one key; exists while `users` > 0.
struct mutex_lock_entry {
    explicit mutex_lock_entry(std::string_view k) : key(k) {}
    std::string key;
    std::size_t readers = 0;         ///< shared holders
    bool writer = false;             ///< whether an exclusive holder exists
    std::size_t waiting_writers = 0; ///< exclusive requests waiting
    std::size_t users = 0;           ///< holders plus waiters
    std::condition_variable changed;
};

struct mutex_lock_table {
    std::mutex mutex;
    /// Keyed by a view of the entry's own `key`.
    std::map<std::string_view, std::unique_ptr<mutex_lock_entry>, std::less<>> entries;
};

} // namespace detail

OCISTORE_DECL void mutex_lock::guard::unlock() noexcept
{
    if (!entry_) return;
    {
        std::lock_guard lk(table_->mutex);
        detail::mutex_lock_entry& e = *entry_;
        if (mode_ == lock_mode::exclusive)
            e.writer = false;
        else
            --e.readers;
        if (--e.users == 0)
            table_->entries.erase(table_->entries.find(std::string_view(e.key)));
        else
            e.changed.notify_all();
    }
    entry_ = nullptr;
    table_.reset();
}

OCISTORE_DECL mutex_lock::mutex_lock() : table_(std::make_shared<detail::mutex_lock_table>()) {}

OCISTORE_DECL mutex_lock::guard mutex_lock::lock(std::string_view key, lock_mode mode, bool wait, error_code& ec,
                                                 std::string* why)
{
    if (!detail::validate_lock_key(key, ec, why)) return {};
    detail::mutex_lock_table& t = *table_;
    std::unique_lock lk(t.mutex);
    auto it = t.entries.find(key);
    if (it == t.entries.end()) {
        auto fresh = std::make_unique<detail::mutex_lock_entry>(key);
        std::string_view const k = fresh->key;
        it = t.entries.emplace(k, std::move(fresh)).first;
    }
    detail::mutex_lock_entry& e = *it->second;
    bool const exclusive = mode == lock_mode::exclusive;
    auto available = [&] { return !e.writer && (exclusive ? e.readers == 0 : e.waiting_writers == 0); };
    if (!available()) {
        if (!wait) return {}; // the entry has holders, so it stays
        ++e.users;
        if (exclusive) ++e.waiting_writers;
        e.changed.wait(lk, available);
        if (exclusive) --e.waiting_writers;
        --e.users;
    }
    ++e.users;
    if (exclusive)
        e.writer = true;
    else
        ++e.readers;
    return guard(table_, &e, mode);
}

OCISTORE_DECL mutex_lock::guard mutex_lock::acquire(std::string_view key, lock_mode mode, error_code& ec)
{
    return lock(key, mode, true, ec, nullptr);
}

OCISTORE_DECL mutex_lock::guard mutex_lock::acquire(std::string_view key, lock_mode mode)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return lock(key, mode, true, ec, why); });
}

OCISTORE_DECL std::optional<mutex_lock::guard> mutex_lock::try_acquire(std::string_view key, lock_mode mode,
                                                                     error_code& ec)
{
    guard g = lock(key, mode, false, ec, nullptr);
    if (!g.owns_lock()) return std::nullopt;
    return std::optional<guard>(std::move(g));
}

OCISTORE_DECL std::optional<mutex_lock::guard> mutex_lock::try_acquire(std::string_view key, lock_mode mode)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        guard g = lock(key, mode, false, ec, why);
        if (!g.owns_lock()) return std::optional<guard>();
        return std::optional<guard>(std::move(g));
    });
}

OCISTORE_DECL std::size_t mutex_lock::key_count() const
{
    std::lock_guard lk(table_->mutex);
    return table_->entries.size();
}

} // namespace ocistore
