#include <ocistore/concepts.hpp>

#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/lock/mutex_lock.hpp>
#include <ocistore/lock/null_lock.hpp>
#include <ocistore/tar_reader.hpp>
#include <ocistore/test/memory_transport.hpp>
#include <ocistore/transport/oci_layout_transport.hpp>

#include <support/archetypes.hpp>
#include <support/builder_driver.hpp>
#include <support/memory_source.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

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
// *BlobSource* and *Transport*
// ---------------------------------------------------------------------------------------------

namespace transport_checks {

/// A correct *BlobSource*: move-only, read_some, offset() const, size() const.
struct good_reader {
    good_reader() = default;
    good_reader(good_reader&&) = default;
    good_reader& operator=(good_reader&&) = default;
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    std::uint64_t offset() const { return 0; }
    std::optional<std::uint64_t> size() const { return {}; }
};

struct reader_without_read_some {
    std::uint64_t offset() const { return 0; }
    std::optional<std::uint64_t> size() const { return {}; }
};
struct reader_with_int_offset {
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    int offset() const { return 0; }
    std::optional<std::uint64_t> size() const { return {}; }
};
struct reader_with_mutable_offset {
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    std::uint64_t offset() { return 0; } // not const
    std::optional<std::uint64_t> size() const { return {}; }
};
struct reader_with_plain_size {
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    std::uint64_t offset() const { return 0; }
    std::uint64_t size() const { return 0; } // the size may be unknown: optional
};
struct reader_without_size {
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    std::uint64_t offset() const { return 0; }
};
struct immovable_reader {
    immovable_reader() = default;
    immovable_reader(immovable_reader&&) = delete;
    std::size_t read_some(std::span<std::byte>, error_code&) { return 0; }
    std::uint64_t offset() const { return 0; }
    std::optional<std::uint64_t> size() const { return {}; }
};

using accept_list = std::span<std::string_view const>;

/// A correct *Transport*; the bad ones below differ in one point each.
template <class Reader = good_reader>
struct transport_with {
    using blob_reader = Reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
using good = transport_with<>;

struct no_blob_reader_type {
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    good_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct no_fetch_manifest {
    using blob_reader = good_reader;
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct fetch_manifest_returns_string {
    using blob_reader = good_reader;
    std::string fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct fetch_manifest_without_error_code {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct fetch_manifest_taking_vector {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, std::vector<std::string> const&, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct no_resolve {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct resolve_returns_digest {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    digest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct open_blob_returns_other_reader {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    std::optional<good_reader> open_blob(image_reference const&, digest const&, std::uint64_t, error_code&) { return {}; }
};
struct open_blob_taking_string_digest {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, std::string const&, std::uint64_t, error_code&) { return {}; }
};
struct open_blob_without_offset {
    using blob_reader = good_reader;
    fetched_manifest fetch_manifest(image_reference const&, accept_list, error_code&) { return {}; }
    resolved_manifest resolve(image_reference const&, accept_list, error_code&) { return {}; }
    blob_reader open_blob(image_reference const&, digest const&, error_code&) { return {}; }
};

// *BlobSource*
static_assert(blob_source<good_reader>);
static_assert(blob_source<ocistore::test::memory_transport::blob_reader>);
static_assert(blob_source<oci_layout_transport::blob_reader>);
static_assert(blob_source<ocistore_test::transport_archetype::blob_reader>);
static_assert(!blob_source<reader_without_read_some>, "a *BlobSource* is a *ByteSource*");
static_assert(!blob_source<reader_with_int_offset>, "offset() returns std::uint64_t");
static_assert(!blob_source<reader_with_mutable_offset>, "offset() is callable on a const reader");
static_assert(!blob_source<reader_with_plain_size>, "size() returns std::optional<std::uint64_t>");
static_assert(!blob_source<reader_without_size>, "a *BlobSource* reports size()");
static_assert(!blob_source<immovable_reader>, "a *BlobSource* is movable");

// The reader archetype has nothing beyond the concept.
static_assert(!std::default_initializable<ocistore_test::transport_archetype::blob_reader>);
static_assert(!std::copyable<ocistore_test::transport_archetype::blob_reader>);

// *Transport*
static_assert(transport<good>);
static_assert(transport<ocistore::test::memory_transport>);
static_assert(transport<oci_layout_transport>);
static_assert(transport<ocistore_test::transport_archetype>);
static_assert(!transport<no_blob_reader_type>, "T::blob_reader names the reader type");
static_assert(!transport<transport_with<reader_without_size>>, "T::blob_reader models *BlobSource*");
static_assert(!transport<transport_with<immovable_reader>>, "T::blob_reader is movable");
static_assert(!transport<no_fetch_manifest>);
static_assert(!transport<fetch_manifest_returns_string>, "fetch_manifest returns fetched_manifest");
static_assert(!transport<fetch_manifest_without_error_code>, "fetch_manifest reports through error_code&");
static_assert(!transport<fetch_manifest_taking_vector>, "accept is a std::span<std::string_view const>");
static_assert(!transport<no_resolve>);
static_assert(!transport<resolve_returns_digest>, "resolve returns resolved_manifest");
static_assert(!transport<open_blob_returns_other_reader>, "open_blob returns exactly T::blob_reader");
static_assert(!transport<open_blob_taking_string_digest>, "open_blob takes an ocistore::digest");
static_assert(!transport<open_blob_without_offset>, "open_blob takes the offset to start at");
static_assert(!transport<int>);

// The archetype has nothing beyond the concept.
static_assert(!std::default_initializable<ocistore_test::transport_archetype>);
static_assert(!std::copy_constructible<ocistore_test::transport_archetype>);
static_assert(!std::move_constructible<ocistore_test::transport_archetype>);
template <class T>
concept fetchable_through_const = requires(T const& t, image_reference const& r, error_code& ec) {
    t.fetch_manifest(r, accept_list(), ec);
};
static_assert(fetchable_through_const<oci_layout_transport>); // the probe itself works
static_assert(!fetchable_through_const<ocistore_test::transport_archetype>);

/// Generic code written against the concept, as the store is: the blob from `offset` to its end.
template <transport T>
std::string read_blob(T& t, image_reference const& ref, digest const& d, std::uint64_t offset, error_code& ec)
{
    typename T::blob_reader r = t.open_blob(ref, d, offset, ec);
    if (ec) return {};
    typename T::blob_reader moved = std::move(r);
    if (std::as_const(moved).offset() != offset || !std::as_const(moved).size()) return "range ignored";
    std::string out;
    std::array<std::byte, 3> buf{};
    while (std::size_t n = moved.read_some(buf, ec)) out.append(reinterpret_cast<char const*>(buf.data()), n);
    return out;
}

} // namespace transport_checks

TEST_CASE("generic code over transport instantiates with the archetype and every model")
{
    using transport_checks::read_blob;
    std::string const bytes = "0123456789";
    digest const d = digest_of<sha256_hasher>(bytes);
    image_reference const ref = image_reference::parse("registry.test/app");
    error_code ec;

    ocistore_test::transport_archetype_content content;
    content.blobs[d] = bytes;
    ocistore_test::transport_archetype archetype(ocistore_test::archetype_tag{}, std::move(content));
    CHECK(read_blob(archetype, ref, d, 4, ec) == "456789");
    CHECK_FALSE(ec);

    ocistore::test::memory_transport memory;
    memory.add_blob("app", bytes);
    CHECK(read_blob(memory, ref, d, 4, ec) == "456789");
    CHECK_FALSE(ec);

    ocistore_test::temp_dir dir("concepts-transport");
    ocistore_test::oci_layout_writer w(dir.path());
    w.add_blob(bytes, "application/octet-stream");
    oci_layout_transport layout(dir.path());
    CHECK(read_blob(layout, ref, d, 4, ec) == "456789");
    CHECK_FALSE(ec);
}

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

// ---------------------------------------------------------------------------------------------
// *LayerSink* and *ArtifactBuilder*
// ---------------------------------------------------------------------------------------------

namespace artifact_builder_checks {

struct good_prepared {
    good_prepared() = default;
    good_prepared(good_prepared&&) = default;
    good_prepared& operator=(good_prepared&&) = default;
};
struct good_result {};
struct good_image {
    good_image() = default;
    good_image(good_image&&) = default;
    good_image& operator=(good_image&&) = default;
};

/// A correct *LayerSink* for good_prepared; the bad sinks below differ in one point each.
struct good_sink {
    good_sink() = default;
    good_sink(good_sink&&) = default;
    good_sink& operator=(good_sink&&) = default;
    void add_entry(tar_entry const&, byte_source_ref, error_code&) {}
    good_prepared finish(error_code&) { return {}; }
};

struct sink_without_add_entry {
    good_prepared finish(error_code&) { return {}; }
};
struct sink_without_finish {
    void add_entry(tar_entry const&, byte_source_ref, error_code&) {}
};
struct sink_finishing_other_type {
    void add_entry(tar_entry const&, byte_source_ref, error_code&) {}
    good_result finish(error_code&) { return {}; }
};
struct sink_taking_string_data {
    void add_entry(tar_entry const&, std::string_view, error_code&) {}
    good_prepared finish(error_code&) { return {}; }
};
struct sink_taking_mutable_entry {
    void add_entry(tar_entry&, byte_source_ref, error_code&) {}
    good_prepared finish(error_code&) { return {}; }
};
struct sink_without_error_code {
    void add_entry(tar_entry const&, byte_source_ref) {}
    good_prepared finish(error_code&) { return {}; }
};
struct immovable_sink {
    immovable_sink() = default;
    immovable_sink(immovable_sink&&) = delete;
    void add_entry(tar_entry const&, byte_source_ref, error_code&) {}
    good_prepared finish(error_code&) { return {}; }
};

/// A correct *ArtifactBuilder*; each bad builder below breaks one requirement and keeps the rest.
template <class Sink = good_sink, class Prepared = good_prepared, class Result = good_result, class Image = good_image>
struct basic_builder {
    using layer_sink = Sink;
    using prepared_layer = Prepared;
    using layer_result = Result;
    using image_result = Image;
    static constexpr std::string_view kind = "test";
    std::string identity() const { return "test/1"; }
    layer_sink begin_layer(layer_info const&, error_code&) { return {}; }
    layer_result commit_layer(prepared_layer&&, error_code&) { return {}; }
    bool has_layer(digest const&, error_code&) { return false; }
    std::optional<layer_result> layer(digest const&, error_code&) { return {}; }
    image_result compose(digest const&, std::span<layer_result const>, error_code&) { return {}; }
    std::optional<image_result> image(digest const&, error_code&) { return {}; }
};
using good_builder = basic_builder<>;

struct copyless_prepared { // not movable
    copyless_prepared() = default;
    copyless_prepared(copyless_prepared const&) = delete;
};
struct sink_for_copyless_prepared {
    void add_entry(tar_entry const&, byte_source_ref, error_code&) {}
    copyless_prepared finish(error_code&) { return {}; }
};
struct move_only_result {
    move_only_result() = default;
    move_only_result(move_only_result&&) = default;
    move_only_result& operator=(move_only_result&&) = default;
};
struct immovable_image {
    immovable_image() = default;
    immovable_image(immovable_image&&) = delete;
};

struct no_kind : good_builder {
    int kind = 0; // not a static member convertible to string_view
};
struct kind_not_text : good_builder {
    static constexpr int kind = 1;
};
struct mutable_identity : basic_builder<> {
    std::string identity() { return "x"; } // not callable on a const builder
};
struct identity_not_text : good_builder {
    int identity() const { return 1; }
};
struct no_sink_type {
    using prepared_layer = good_prepared;
    using layer_result = good_result;
    using image_result = good_image;
    static constexpr std::string_view kind = "test";
    std::string identity() const { return "test/1"; }
};
struct begin_returns_other_sink : good_builder {
    sink_without_finish begin_layer(layer_info const&, error_code&) { return {}; }
};
struct commit_takes_lvalue : good_builder {
    layer_result commit_layer(prepared_layer&, error_code&) { return {}; } // store passes an rvalue
};
struct commit_without_error_code : good_builder {
    layer_result commit_layer(prepared_layer&&) { return {}; }
};
struct has_layer_returns_int : good_builder {
    int has_layer(digest const&, error_code&) { return 0; }
};
struct layer_returns_plain_result : good_builder {
    layer_result layer(digest const&, error_code&) { return {}; }
};
struct compose_takes_vector : good_builder {
    image_result compose(digest const&, std::vector<layer_result> const&, error_code&) { return {}; }
};
struct compose_takes_string_key : good_builder {
    image_result compose(std::string const&, std::span<layer_result const>, error_code&) { return {}; }
};
struct image_returns_plain_result : good_builder {
    image_result image(digest const&, error_code&) { return {}; }
};
struct immovable_builder : good_builder {
    immovable_builder() = default;
    immovable_builder(immovable_builder&&) = delete;
};

} // namespace artifact_builder_checks

// *LayerSink*: the shipped sinks, a correct one, and one violation each.
static_assert(layer_sink<null_builder::layer_sink, null_builder::prepared_layer>);
static_assert(layer_sink<rootfs_builder::layer_sink, rootfs_builder::prepared_layer>);
static_assert(layer_sink<ocistore_test::artifact_builder_archetype::layer_sink,
                         ocistore_test::artifact_builder_archetype::prepared_layer>);
static_assert(layer_sink<artifact_builder_checks::good_sink, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::good_sink, artifact_builder_checks::good_result>); // finish's type
static_assert(!layer_sink<artifact_builder_checks::sink_without_add_entry, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::sink_without_finish, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::sink_finishing_other_type, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::sink_taking_string_data, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::sink_taking_mutable_entry, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::sink_without_error_code, artifact_builder_checks::good_prepared>);
static_assert(!layer_sink<artifact_builder_checks::immovable_sink, artifact_builder_checks::good_prepared>);

// *ArtifactBuilder*: the shipped models and the archetype.
static_assert(artifact_builder<null_builder>);
static_assert(artifact_builder<rootfs_builder>);
static_assert(artifact_builder<ocistore_test::artifact_builder_archetype>);
static_assert(artifact_builder<artifact_builder_checks::good_builder>);

// The archetype has nothing beyond the concept.
namespace artifact_builder_checks {
using archetype = ocistore_test::artifact_builder_archetype;
template <class B>
concept begins_through_const = requires(B const& b, layer_info const& i, error_code& ec) { b.begin_layer(i, ec); };
template <class B>
concept begins_without_error_code = requires(B& b, layer_info const& i) { b.begin_layer(i); };
template <class B>
concept adds_without_error_code = requires(typename B::layer_sink& s, tar_entry const& e, byte_source_ref d) {
    s.add_entry(e, d);
};
} // namespace artifact_builder_checks
static_assert(!std::default_initializable<artifact_builder_checks::archetype>);
static_assert(!std::copyable<artifact_builder_checks::archetype>);
static_assert(!std::copyable<artifact_builder_checks::archetype::layer_sink>);
static_assert(!std::copyable<artifact_builder_checks::archetype::prepared_layer>);
static_assert(!std::copyable<artifact_builder_checks::archetype::image_result>);
static_assert(!std::default_initializable<artifact_builder_checks::archetype::layer_result>);
static_assert(!artifact_builder_checks::begins_through_const<artifact_builder_checks::archetype>);
static_assert(artifact_builder_checks::begins_without_error_code<rootfs_builder>); // the probe itself works
static_assert(!artifact_builder_checks::begins_without_error_code<artifact_builder_checks::archetype>);
static_assert(artifact_builder_checks::adds_without_error_code<rootfs_builder>);
static_assert(!artifact_builder_checks::adds_without_error_code<artifact_builder_checks::archetype>);

// *ArtifactBuilder* violations, one requirement each.
static_assert(!artifact_builder<artifact_builder_checks::no_kind>);
static_assert(!artifact_builder<artifact_builder_checks::kind_not_text>);
static_assert(!artifact_builder<artifact_builder_checks::mutable_identity>);
static_assert(!artifact_builder<artifact_builder_checks::identity_not_text>);
static_assert(!artifact_builder<artifact_builder_checks::no_sink_type>);
static_assert(!artifact_builder<artifact_builder_checks::basic_builder<artifact_builder_checks::sink_without_finish>>);
static_assert(!artifact_builder<artifact_builder_checks::basic_builder<artifact_builder_checks::immovable_sink>>);
static_assert(!artifact_builder<artifact_builder_checks::basic_builder<artifact_builder_checks::sink_for_copyless_prepared,
                                                                       artifact_builder_checks::copyless_prepared>>);
static_assert(!artifact_builder<artifact_builder_checks::basic_builder<artifact_builder_checks::good_sink,
                                                                       artifact_builder_checks::good_prepared,
                                                                       artifact_builder_checks::move_only_result>>);
static_assert(!artifact_builder<artifact_builder_checks::basic_builder<artifact_builder_checks::good_sink,
                                                                       artifact_builder_checks::good_prepared,
                                                                       artifact_builder_checks::good_result,
                                                                       artifact_builder_checks::immovable_image>>);
static_assert(!artifact_builder<artifact_builder_checks::begin_returns_other_sink>);
static_assert(!artifact_builder<artifact_builder_checks::commit_takes_lvalue>);
static_assert(!artifact_builder<artifact_builder_checks::commit_without_error_code>);
static_assert(!artifact_builder<artifact_builder_checks::has_layer_returns_int>);
static_assert(!artifact_builder<artifact_builder_checks::layer_returns_plain_result>);
static_assert(!artifact_builder<artifact_builder_checks::compose_takes_vector>);
static_assert(!artifact_builder<artifact_builder_checks::compose_takes_string_key>);
static_assert(!artifact_builder<artifact_builder_checks::image_returns_plain_result>);
static_assert(!artifact_builder<artifact_builder_checks::immovable_builder>);
static_assert(!artifact_builder<int>);

namespace {
/// Generic code written against the concept, as the store is: build, commit, skip, compose.
template <artifact_builder B> int pull_like(B& b)
{
    error_code ec;
    ocistore_test::tar_writer w;
    w.dir("dir/");
    w.file("dir/f", "x");
    w.end();
    std::string const& tar = w.str();
    digest const id = ocistore_test::diff_id_of(tar);
    int steps = 0;
    if (!b.has_layer(id, ec)) {
        ocistore_test::memory_source source(tar);
        basic_tar_reader<ocistore_test::memory_source> reader(source);
        typename B::layer_sink sink = b.begin_layer(layer_info{id, 0}, ec);
        tar_entry e;
        while (reader.next(e, ec)) sink.add_entry(e, reader, ec);
        typename B::prepared_layer prepared = sink.finish(ec);
        typename B::layer_result result = b.commit_layer(std::move(prepared), ec);
        std::vector<typename B::layer_result> layers{result};
        typename B::image_result image = b.compose(id, std::span<typename B::layer_result const>(layers), ec);
        static_cast<void>(image);
        ++steps;
    }
    if (std::optional<typename B::layer_result> held = b.layer(id, ec)) ++steps;
    if (b.image(id, ec)) ++steps;
    return ec ? -1 : steps;
}
} // namespace

TEST_CASE("generic code over artifact_builder instantiates with the archetype and every model")
{
    ocistore_test::temp_dir dir("concepts-builder");
    ocistore_test::artifact_builder_archetype archetype{ocistore_test::archetype_tag{}, dir / "archetype"};
    CHECK(pull_like(archetype) == 3);
    CHECK(pull_like(archetype) == 2); // held now: skipped
    null_builder null;
    CHECK(pull_like(null) == 1);
    rootfs_options options;
    options.durable = false;
    rootfs_builder rootfs(dir / "rootfs", options);
    CHECK(pull_like(rootfs) == 3);
    CHECK(pull_like(rootfs) == 2);
}
