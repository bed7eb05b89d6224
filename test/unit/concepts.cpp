#include <ocistore/concepts.hpp>

#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/lock/mutex_lock.hpp>
#include <ocistore/lock/null_lock.hpp>

#include <support/archetypes.hpp>

#include <doctest/doctest.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// Positive and negative compile-time checks of the policy concepts, one section per concept.
// A negative check names the one requirement its type breaks; everything else about the type
// is valid, so the check fails for that reason only.

using namespace ocistore;

// ---------------------------------------------------------------------------------------------
// *ByteSource*
// ---------------------------------------------------------------------------------------------

namespace byte_source_checks {

struct good {
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
};
struct no_error_code {
    std::size_t read_some(std::span<std::byte>) { return 0; }
};
struct wrong_return {
    int read_some(std::span<std::byte>, error_code&) { return 0; }
};
struct string_buffer {
    std::size_t read_some(std::string&, error_code&) { return 0; }
};

static_assert(byte_source<good>);
static_assert(byte_source<ocistore_test::byte_source_archetype>);
static_assert(!byte_source<no_error_code>, "read_some must take an error_code&");
static_assert(!byte_source<wrong_return>, "read_some must return std::size_t");
static_assert(!byte_source<string_buffer>, "read_some takes a std::span<std::byte>");
static_assert(!blob_source<good>, "a *BlobSource* also reports offset() and size()");

} // namespace byte_source_checks

// ---------------------------------------------------------------------------------------------
// *Hasher*
// ---------------------------------------------------------------------------------------------

namespace hasher_checks {

struct good {
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;
    void update(std::span<std::byte const>) {}
    std::array<std::byte, 32> finish() { return {}; }
};
struct no_algorithm {
    static constexpr std::size_t digest_size = 32;
    void update(std::span<std::byte const>) {}
    std::array<std::byte, 32> finish() { return {}; }
};
struct wrong_finish_size {
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;
    void update(std::span<std::byte const>) {}
    std::array<std::byte, 16> finish() { return {}; }
};
struct char_update {
    static constexpr std::string_view algorithm = "sha256";
    static constexpr std::size_t digest_size = 32;
    void update(std::span<char const>) {}
    std::array<std::byte, 32> finish() { return {}; }
};
struct not_default_constructible : good {
    explicit not_default_constructible(int) {}
};
struct not_movable : good {
    not_movable() = default;
    not_movable(not_movable&&) = delete;
};

static_assert(hasher<good>);
static_assert(hasher<sha256_hasher>);
static_assert(hasher<sha512_hasher>);
static_assert(hasher<ocistore_test::hasher_archetype>);
static_assert(!std::copyable<ocistore_test::hasher_archetype>, "the archetype adds nothing");
static_assert(!hasher<no_algorithm>, "H::algorithm is required");
static_assert(!hasher<wrong_finish_size>, "finish() returns exactly digest_size bytes");
static_assert(!hasher<char_update>, "update() takes std::span<std::byte const>");
static_assert(!hasher<not_default_constructible>, "the store default-constructs one hasher per blob");
static_assert(!hasher<not_movable>, "hashers are movable");

} // namespace hasher_checks

// ---------------------------------------------------------------------------------------------
// *StoreLock* and *TryStoreLock*
// ---------------------------------------------------------------------------------------------

namespace store_lock_checks {

/// A correct guard: movable, not copyable, default-constructible, owns_lock() const, unlock().
struct good_guard {
    good_guard() = default;
    good_guard(good_guard&&) = default;
    good_guard& operator=(good_guard&&) = default;
    bool owns_lock() const { return false; }
    void unlock() {}
};

/// A correct *TryStoreLock* built from good_guard; the bad locks below differ in one point each.
struct good_lock {
    using guard = good_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
    std::optional<guard> try_acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct no_guard_type {
    good_guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct no_acquire {
    using guard = good_guard;
};

struct copyable_guard {
    bool owns_lock() const { return false; }
    void unlock() {}
};
struct lock_with_copyable_guard {
    using guard = copyable_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct guard_without_default_ctor {
    explicit guard_without_default_ctor(int) {}
    guard_without_default_ctor(guard_without_default_ctor&&) = default;
    guard_without_default_ctor& operator=(guard_without_default_ctor&&) = default;
    bool owns_lock() const { return false; }
    void unlock() {}
};
struct lock_with_undefaultable_guard {
    using guard = guard_without_default_ctor;
    guard acquire(std::string_view, lock_mode, error_code&) { return guard(0); }
};

struct guard_without_owns_lock {
    guard_without_owns_lock() = default;
    guard_without_owns_lock(guard_without_owns_lock&&) = default;
    guard_without_owns_lock& operator=(guard_without_owns_lock&&) = default;
    void unlock() {}
};
struct lock_with_guard_without_owns_lock {
    using guard = guard_without_owns_lock;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct guard_with_mutable_owns_lock {
    guard_with_mutable_owns_lock() = default;
    guard_with_mutable_owns_lock(guard_with_mutable_owns_lock&&) = default;
    guard_with_mutable_owns_lock& operator=(guard_with_mutable_owns_lock&&) = default;
    bool owns_lock() { return false; } // not const
    void unlock() {}
};
struct lock_with_guard_with_mutable_owns_lock {
    using guard = guard_with_mutable_owns_lock;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct not_bool {};
struct guard_with_non_bool_owns_lock {
    guard_with_non_bool_owns_lock() = default;
    guard_with_non_bool_owns_lock(guard_with_non_bool_owns_lock&&) = default;
    guard_with_non_bool_owns_lock& operator=(guard_with_non_bool_owns_lock&&) = default;
    not_bool owns_lock() const { return {}; }
    void unlock() {}
};
struct lock_with_guard_with_non_bool_owns_lock {
    using guard = guard_with_non_bool_owns_lock;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct guard_without_unlock {
    guard_without_unlock() = default;
    guard_without_unlock(guard_without_unlock&&) = default;
    guard_without_unlock& operator=(guard_without_unlock&&) = default;
    bool owns_lock() const { return false; }
};
struct lock_with_guard_without_unlock {
    using guard = guard_without_unlock;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct acquire_returns_optional {
    using guard = good_guard;
    std::optional<guard> acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct acquire_returns_bool {
    using guard = good_guard;
    bool acquire(std::string_view, lock_mode, error_code&) { return false; }
};

struct acquire_without_error_code {
    using guard = good_guard;
    guard acquire(std::string_view, lock_mode) { return {}; }
};

struct acquire_taking_string_ref {
    using guard = good_guard;
    guard acquire(std::string&, lock_mode, error_code&) { return {}; }
};

struct immovable_lock {
    using guard = good_guard;
    immovable_lock() = default;
    immovable_lock(immovable_lock&&) = delete;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct try_acquire_returns_guard {
    using guard = good_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
    guard try_acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct try_acquire_returns_bool {
    using guard = good_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
    bool try_acquire(std::string_view, lock_mode, error_code&) { return false; }
};

struct try_acquire_returns_other_optional {
    using guard = good_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
    std::optional<copyable_guard> try_acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

struct copyable_guard_with_try_acquire {
    using guard = copyable_guard;
    guard acquire(std::string_view, lock_mode, error_code&) { return {}; }
    std::optional<guard> try_acquire(std::string_view, lock_mode, error_code&) { return {}; }
};

} // namespace store_lock_checks

// The shipped models and the archetype.
static_assert(try_store_lock<flock_lock>);
static_assert(try_store_lock<mutex_lock>);
static_assert(try_store_lock<null_lock>);
static_assert(try_store_lock<ocistore_test::store_lock_archetype>);
static_assert(try_store_lock<store_lock_checks::good_lock>);

// The archetype has nothing beyond the concept.
static_assert(!std::default_initializable<ocistore_test::store_lock_archetype>);
static_assert(!std::copyable<ocistore_test::store_lock_archetype>);
static_assert(!std::is_constructible_v<bool, ocistore_test::store_lock_archetype::guard const&>);
template <class L>
concept acquirable_through_const = requires(L const& l, error_code& ec) { l.acquire(std::string_view(), lock_mode::shared, ec); };
static_assert(acquirable_through_const<null_lock>); // the probe itself works
static_assert(!acquirable_through_const<ocistore_test::store_lock_archetype>);

// *StoreLock* violations, one requirement each.
static_assert(!store_lock<store_lock_checks::no_guard_type>);
static_assert(!store_lock<store_lock_checks::no_acquire>);
static_assert(!store_lock<store_lock_checks::lock_with_copyable_guard>);
static_assert(!store_lock<store_lock_checks::lock_with_undefaultable_guard>);
static_assert(!store_lock<store_lock_checks::lock_with_guard_without_owns_lock>);
static_assert(!store_lock<store_lock_checks::lock_with_guard_with_mutable_owns_lock>);
static_assert(!store_lock<store_lock_checks::lock_with_guard_with_non_bool_owns_lock>);
static_assert(!store_lock<store_lock_checks::lock_with_guard_without_unlock>);
static_assert(!store_lock<store_lock_checks::acquire_returns_optional>);
static_assert(!store_lock<store_lock_checks::acquire_returns_bool>);
static_assert(!store_lock<store_lock_checks::acquire_without_error_code>);
static_assert(!store_lock<store_lock_checks::acquire_taking_string_ref>);
static_assert(!store_lock<store_lock_checks::immovable_lock>);
static_assert(!store_lock<int>);

// *TryStoreLock* refines *StoreLock*: a *StoreLock* without a correct try_acquire is not one.
static_assert(store_lock<store_lock_checks::try_acquire_returns_guard>);
static_assert(!try_store_lock<store_lock_checks::try_acquire_returns_guard>);
static_assert(!try_store_lock<store_lock_checks::try_acquire_returns_bool>);
static_assert(!try_store_lock<store_lock_checks::try_acquire_returns_other_optional>);
static_assert(!try_store_lock<store_lock_checks::copyable_guard_with_try_acquire>); // a good try_acquire is not enough

namespace {
/// Generic code written against the concept, as the store is.
template <try_store_lock L> int take_and_release(L& lock)
{
    error_code ec;
    int held = 0;
    {
        typename L::guard g = lock.acquire("blobs/sha256/abc", lock_mode::exclusive, ec);
        held += g.owns_lock() ? 1 : 0;
        typename L::guard moved = std::move(g);
        held += moved.owns_lock() && !g.owns_lock() ? 1 : 0; // NOLINT(bugprone-use-after-move)
        moved.unlock();
    }
    if (auto t = lock.try_acquire("refs/x", lock_mode::shared, ec); t && t->owns_lock()) ++held;
    return ec ? -1 : held;
}
} // namespace

TEST_CASE("generic code over try_store_lock instantiates with the archetype and every model")
{
    ocistore_test::store_lock_archetype archetype{ocistore_test::archetype_tag{}};
    CHECK(take_and_release(archetype) == 3);
    null_lock null;
    CHECK(take_and_release(null) == 3);
    mutex_lock mutex;
    CHECK(take_and_release(mutex) == 3);
}
