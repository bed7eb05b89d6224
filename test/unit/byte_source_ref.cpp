#include <ocistore/byte_source_ref.hpp>

#include <ocistore/concepts.hpp>
#include <ocistore/tar_reader.hpp>

#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <type_traits>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;

namespace {

std::string read_all(byte_source_ref src, std::size_t buffer_size, error_code& ec)
{
    std::string out;
    std::vector<std::byte> buf(buffer_size);
    for (;;) {
        std::size_t const n = src.read_some(buf, ec);
        if (ec || n == 0) return out;
        out.append(reinterpret_cast<char const*>(buf.data()), n);
    }
}

/// A source whose read_some is const: binds through a const reference.
struct const_source {
    std::size_t read_some(std::span<std::byte> buf, error_code& ec) const
    {
        ec.clear();
        if (done_) return 0;
        done_ = true;
        buf[0] = std::byte{'k'};
        return 1;
    }
    mutable bool done_ = false;
};

struct not_a_source {
    int read_some(std::span<std::byte>, error_code&) { return 0; }
};

} // namespace

// It models the concept it erases, and binds only to lvalue sources.
static_assert(byte_source<byte_source_ref>);
static_assert(std::is_nothrow_copy_constructible_v<byte_source_ref>);
static_assert(sizeof(byte_source_ref) == 2 * sizeof(void*));
static_assert(std::is_constructible_v<byte_source_ref, memory_source&>);
static_assert(!std::is_constructible_v<byte_source_ref, memory_source&&>);
static_assert(!std::is_constructible_v<byte_source_ref, memory_source const&>); // read_some is not const
static_assert(std::is_constructible_v<byte_source_ref, const_source const&>);
static_assert(!std::is_constructible_v<byte_source_ref, not_a_source&>);
static_assert(!std::is_constructible_v<byte_source_ref, int&>);
static_assert(std::is_convertible_v<memory_source&, byte_source_ref>); // implicit, like std::span
// The restated requirement agrees with the concept.
static_assert(detail::byte_source_like<memory_source> == byte_source<memory_source>);
static_assert(detail::byte_source_like<not_a_source> == byte_source<not_a_source>);

TEST_CASE("byte_source_ref forwards every read to the source, in any chunking")
{
    std::string const data = "the quick brown fox jumps over the lazy dog";
    for (std::size_t chunk : {std::size_t(1), std::size_t(3), std::size_t(1000)}) {
        for (std::size_t buffer : {std::size_t(1), std::size_t(7), std::size_t(64)}) {
            CAPTURE(chunk);
            CAPTURE(buffer);
            memory_source src(data, chunk);
            error_code ec = error::io_error;
            CHECK(read_all(src, buffer, ec) == data);
            CHECK_FALSE(ec);
            CHECK(src.position() == data.size());
        }
    }
}

TEST_CASE("a default byte_source_ref is an empty stream")
{
    byte_source_ref empty;
    CHECK_FALSE(empty.has_source());
    std::array<std::byte, 4> buf{};
    error_code ec = error::io_error;
    CHECK(empty.read_some(buf, ec) == 0);
    CHECK_FALSE(ec);
    memory_source src("x");
    CHECK(byte_source_ref(src).has_source());
}

TEST_CASE("copies refer to the same source and share its position")
{
    memory_source src("abcdef");
    byte_source_ref a(src);
    byte_source_ref b = a;
    std::array<std::byte, 2> buf{};
    error_code ec;
    CHECK(a.read_some(buf, ec) == 2);
    CHECK(b.read_some(buf, ec) == 2);
    CHECK(static_cast<char>(buf[0]) == 'c');
    CHECK(src.position() == 4);
}

TEST_CASE("a source failure passes through with the source's own code")
{
    memory_source src("abcdefgh", 2);
    src.fail_at(4, make_error_code(std::errc::connection_reset));
    error_code ec;
    std::string const got = read_all(src, 16, ec);
    CHECK(got == "abcd");
    CHECK(ec == std::errc::connection_reset);
}

TEST_CASE("a const source binds through a const reference")
{
    const_source const s;
    error_code ec;
    CHECK(read_all(s, 4, ec) == "k");
}

TEST_CASE("a tar reader binds as the source of its current entry")
{
    ocistore_test::tar_writer w;
    w.file("a", "first");
    w.file("b", std::string(70000, 'z'));
    w.end();
    memory_source src(w.str(), 333);
    basic_tar_reader<memory_source> reader(src);
    tar_entry e;
    error_code ec;
    REQUIRE(reader.next(e, ec));
    CHECK(read_all(reader, 3, ec) == "first");
    REQUIRE(reader.next(e, ec));
    CHECK(read_all(reader, 20000, ec) == std::string(70000, 'z'));
    CHECK_FALSE(reader.next(e, ec));
    CHECK_FALSE(ec);
}
