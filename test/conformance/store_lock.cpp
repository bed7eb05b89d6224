// Runs the *StoreLock* conformance suite over every shipped lock and the archetype.
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/lock/mutex_lock.hpp>
#include <ocistore/lock/null_lock.hpp>

#include "store_lock_suite.hpp"

#include <support/archetypes.hpp>

namespace ocistore_test {

template <> struct store_lock_traits<ocistore::flock_lock> {
    static ocistore::flock_lock make(std::filesystem::path const& dir) { return ocistore::flock_lock(dir); }
    static constexpr bool excludes = true;
};
template <> struct store_lock_traits<ocistore::mutex_lock> {
    static ocistore::mutex_lock make(std::filesystem::path const&) { return {}; }
    static constexpr bool excludes = true;
};
// No-op locks: guard semantics and key checks only.
template <> struct store_lock_traits<ocistore::null_lock> {
    static ocistore::null_lock make(std::filesystem::path const&) { return {}; }
    static constexpr bool excludes = false;
};
template <> struct store_lock_traits<store_lock_archetype> {
    static store_lock_archetype make(std::filesystem::path const&) { return store_lock_archetype(archetype_tag{}); }
    static constexpr bool excludes = false;
};

} // namespace ocistore_test

TEST_CASE_TEMPLATE_INVOKE(store_lock_conformance, ocistore::flock_lock, ocistore::mutex_lock, ocistore::null_lock,
                          ocistore_test::store_lock_archetype);
