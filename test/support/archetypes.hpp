// Test support: archetypes, one per policy concept of <ocistore/concepts.hpp>.
//
// An archetype models exactly its concept and nothing more (no default constructor unless
// required, no copies unless required, no const overloads, no conveniences), so generic code
// instantiated with it proves that it depends only on the documented requirements. Each
// archetype also behaves sensibly, so the concept's conformance suite can run over it.
// One section per concept; keep them in the order of concepts.hpp.
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/detail/lock_key.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace ocistore_test {

/// Constructor argument of archetypes that must not be default-constructible.
struct archetype_tag {
    explicit archetype_tag() = default;
};

// ---------------------------------------------------------------------------------------------
// *ByteSource*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::byte_source` and nothing more: neither copyable nor movable, only
    `read_some`. Serves the bytes it was given, at most 7 per call to exercise callers'
    short-read handling. */
class byte_source_archetype {
public:
    explicit byte_source_archetype(std::span<std::byte const> data) : data_(data) {}
    byte_source_archetype(byte_source_archetype const&) = delete;
    byte_source_archetype& operator=(byte_source_archetype const&) = delete;

    std::size_t read_some(std::span<std::byte> buffer, ocistore::error_code& ec)
    {
        ec.clear();
        std::size_t const n = std::min({buffer.size(), data_.size(), std::size_t{7}});
        if (n) std::memcpy(buffer.data(), data_.data(), n);
        data_ = data_.subspan(n);
        return n;
    }

private:
    std::span<std::byte const> data_;
};

// ---------------------------------------------------------------------------------------------
// *Hasher*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::hasher` and nothing more: default-constructible and move-only, with the
    four required members. Computes SHA-256 so the conformance suite can run over it. */
class hasher_archetype {
public:
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;

    hasher_archetype() = default;
    hasher_archetype(hasher_archetype&&) = default;
    hasher_archetype& operator=(hasher_archetype&&) = default;
    hasher_archetype(hasher_archetype const&) = delete;
    hasher_archetype& operator=(hasher_archetype const&) = delete;

    void update(std::span<std::byte const> bytes) { impl_.update(bytes); }
    std::array<std::byte, digest_size> finish() { return impl_.finish(); }

private:
    ocistore::sha256_hasher impl_;
};

// ---------------------------------------------------------------------------------------------
// *StoreLock* and *TryStoreLock*
// ---------------------------------------------------------------------------------------------

/** Models `ocistore::try_store_lock` and nothing more: movable but neither copyable nor
    default-constructible; acquire/try_acquire are non-const and take exactly
    `(std::string_view, lock_mode, error_code&)`; the guard has only what the concept lists
    (no `operator bool`, no native handle). Like `null_lock`, it never blocks and excludes
    nobody, but validates keys. */
class store_lock_archetype {
public:
    class guard {
    public:
        guard() = default;
        guard(guard&& other) noexcept : owns_(std::exchange(other.owns_, false)) {}
        guard& operator=(guard&& other) noexcept
        {
            owns_ = std::exchange(other.owns_, false);
            return *this;
        }
        guard(guard const&) = delete;
        guard& operator=(guard const&) = delete;
        ~guard() = default;

        bool owns_lock() const { return owns_; }
        void unlock() { owns_ = false; }

    private:
        friend class store_lock_archetype;
        explicit guard(bool owns) : owns_(owns) {}
        bool owns_ = false;
    };

    explicit store_lock_archetype(archetype_tag) {}
    store_lock_archetype(store_lock_archetype&&) = default;
    store_lock_archetype& operator=(store_lock_archetype&&) = default;
    store_lock_archetype(store_lock_archetype const&) = delete;
    store_lock_archetype& operator=(store_lock_archetype const&) = delete;
    ~store_lock_archetype() = default;

    guard acquire(std::string_view key, ocistore::lock_mode, ocistore::error_code& ec)
    {
        return guard(ocistore::detail::validate_lock_key(key, ec));
    }

    std::optional<guard> try_acquire(std::string_view key, ocistore::lock_mode mode, ocistore::error_code& ec)
    {
        guard g = acquire(key, mode, ec);
        if (!g.owns_lock()) return std::nullopt;
        return std::optional<guard>(std::move(g));
    }
};

} // namespace ocistore_test
