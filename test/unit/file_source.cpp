#include <ocistore/file_source.hpp>

#include <ocistore/concepts.hpp>

#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <ostream>
#include <string>
#include <vector>

using namespace ocistore;
using ocistore_test::temp_dir;

static_assert(byte_source<file_source>);

namespace {
std::string read_all(file_source& s, std::size_t chunk)
{
    std::string out;
    std::vector<std::byte> buf(chunk);
    error_code ec;
    while (std::size_t n = s.read_some(buf, ec)) out.append(reinterpret_cast<char const*>(buf.data()), n);
    CHECK_FALSE(ec);
    return out;
}
} // namespace

TEST_CASE("reads a file from the start and from an offset, in any chunk size")
{
    temp_dir dir;
    std::string content;
    for (int i = 0; i < 100000; ++i) content += static_cast<char>('a' + i % 26);
    std::ofstream(dir / "f", std::ios::binary) << content;
    for (std::size_t chunk : {1u, 7u, 4096u, 1u << 20}) {
        file_source s(dir / "f");
        CHECK(s.size() == content.size());
        CHECK(read_all(s, chunk) == content);
        CHECK(s.offset() == content.size());
    }
    file_source s(dir / "f", 99990);
    CHECK(s.offset() == 99990);
    CHECK(read_all(s, 3) == content.substr(99990));
    file_source past(dir / "f", 200000);
    CHECK(read_all(past, 16).empty());
}

TEST_CASE("reading after the end keeps returning 0")
{
    temp_dir dir;
    std::ofstream(dir / "f") << "xy";
    file_source s(dir / "f");
    CHECK(read_all(s, 8) == "xy");
    std::vector<std::byte> buf(8);
    error_code ec;
    CHECK(s.read_some(buf, ec) == 0);
    CHECK_FALSE(ec);
}

TEST_CASE("open failures are errno codes and name the path")
{
    temp_dir dir;
    error_code ec;
    file_source s;
    s.open(dir / "missing", 0, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK_FALSE(s.is_open());
    s.open(dir.path(), 0, ec);
    CHECK(ec == std::errc::is_a_directory);
    CHECK_THROWS_WITH_AS(file_source(dir / "missing"), doctest::Contains("missing"), system_error);
    std::vector<std::byte> buf(4);
    CHECK(s.read_some(buf, ec) == 0);
    CHECK(ec == error::invalid_argument);
}

TEST_CASE("moves transfer the descriptor")
{
    temp_dir dir;
    std::ofstream(dir / "f") << "hello";
    file_source a(dir / "f", 1);
    file_source b(std::move(a));
    CHECK_FALSE(a.is_open()); // NOLINT(bugprone-use-after-move)
    CHECK(read_all(b, 2) == "ello");
    file_source c;
    c = std::move(b);
    CHECK(c.is_open());
    CHECK(c.offset() == 5);
}
