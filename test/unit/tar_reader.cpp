#include <ocistore/tar_reader.hpp>

#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;
using ocistore_test::tar_format;
using ocistore_test::tar_header;
using ocistore_test::tar_writer;

static_assert(byte_source<basic_tar_reader<memory_source>>);

namespace {

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

struct item {
    tar_entry e;
    std::string data;
};
struct result {
    std::vector<item> items;
    error_code ec;
    std::string why;
    bool end_marker = false;
};

result read_all(std::string_view archive, std::size_t chunk = unlimited, std::size_t rbuf = 65536,
                tar_limits limits = {})
{
    memory_source src(archive, chunk);
    basic_tar_reader reader(src, limits);
    result r;
    tar_entry e;
    std::vector<std::byte> buf(rbuf);
    while (reader.next(e, r.ec, &r.why)) {
        item it{e, {}};
        for (;;) {
            std::size_t const n = reader.read_data(buf, r.ec, &r.why);
            if (r.ec) {
                r.items.push_back(std::move(it));
                return r;
            }
            if (n == 0) break;
            REQUIRE(n <= buf.size());
            it.data.append(reinterpret_cast<char const*>(buf.data()), n);
        }
        r.items.push_back(std::move(it));
    }
    r.end_marker = reader.end_marker_seen();
    return r;
}

bool contains(std::string const& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

/// A pax record with the right length prefix around `kv` (which may be malformed).
std::string rec(std::string_view kv)
{
    std::size_t len = kv.size() + 3;
    while (std::to_string(len).size() + kv.size() + 2 != len) ++len;
    return std::to_string(len) + " " + std::string(kv) + "\n";
}

} // namespace

/// Reads `archive` with several source chunk sizes and checks the error code and that the
/// message names the problem.
#define CHECK_TAR_ERROR_L(archive, limits, code, needle)                                                              \
    do {                                                                                                              \
        for (std::size_t chunk_ : {unlimited, std::size_t(1), std::size_t(511)}) {                                   \
            auto const r_ = read_all((archive), chunk_, 4096, (limits));                                              \
            INFO("chunk " << chunk_ << ": " << r_.why);                                                               \
            CHECK(r_.ec == (code));                                                                                   \
            CHECK(contains(r_.why, (needle)));                                                                        \
        }                                                                                                             \
    } while (0)
#define CHECK_TAR_ERROR(archive, code, needle) CHECK_TAR_ERROR_L(archive, tar_limits{}, code, needle)

TEST_CASE("every entry type with its metadata")
{
    tar_writer w;
    w.dir("./");
    w.dir("etc/", 01777);
    tar_header h;
    h.mode = 04755;
    h.uid = 1000;
    h.gid = 100;
    h.uname = "alice";
    h.gname = "users";
    h.mtime = 1234567890;
    w.file("etc/passwd", "root:x:0:0\n", h);
    w.hardlink("etc/passwd.bak", "./etc/passwd");
    w.symlink("etc/link", "../usr/lib/x");
    w.device("dev/null", '3', 1, 3);
    w.device("dev/sda", '4', 8, 0);
    w.fifo("run/pipe");
    tar_header c;
    c.type = '7';
    w.file("contig", "C", c);
    tar_header a;
    a.type = '\0';
    w.file("old", "O", a);
    w.end();

    for (std::size_t chunk : {unlimited, std::size_t(1), std::size_t(3), std::size_t(512), std::size_t(513)}) {
        INFO("chunk " << chunk);
        auto const r = read_all(w.str(), chunk);
        REQUIRE_FALSE(r.ec);
        CHECK(r.end_marker);
        REQUIRE(r.items.size() == 10);
        auto const& root = r.items[0].e;
        CHECK(root.path == ".");
        CHECK(root.is_root());
        CHECK(root.type == entry_type::directory);
        CHECK(r.items[1].e.path == "etc");
        CHECK(r.items[1].e.mode == 01777);
        auto const& f = r.items[2].e;
        CHECK(f.path == "etc/passwd");
        CHECK(f.type == entry_type::regular);
        CHECK(f.mode == 04755);
        CHECK(f.uid == 1000);
        CHECK(f.gid == 100);
        CHECK(f.uname == "alice");
        CHECK(f.gname == "users");
        CHECK(f.mtime == 1234567890);
        CHECK(f.mtime_nsec == 0);
        CHECK(f.size == 11);
        CHECK(r.items[2].data == "root:x:0:0\n");
        CHECK(r.items[3].e.type == entry_type::hardlink);
        CHECK(r.items[3].e.link_target == "etc/passwd");
        CHECK(r.items[3].e.size == 0);
        CHECK(r.items[4].e.type == entry_type::symlink);
        CHECK(r.items[4].e.link_target == "../usr/lib/x");
        CHECK(r.items[4].e.mode == 0777);
        CHECK(r.items[5].e.type == entry_type::char_device);
        CHECK(r.items[5].e.devmajor == 1);
        CHECK(r.items[5].e.devminor == 3);
        CHECK(r.items[6].e.type == entry_type::block_device);
        CHECK(r.items[6].e.devmajor == 8);
        CHECK(r.items[7].e.type == entry_type::fifo);
        CHECK(r.items[7].e.path == "run/pipe");
        CHECK(r.items[8].e.type == entry_type::regular);
        CHECK(r.items[8].data == "C");
        CHECK(r.items[9].e.type == entry_type::regular);
        CHECK(r.items[9].data == "O");
    }
}

TEST_CASE("path normalisation")
{
    tar_writer w;
    w.dir(".");
    w.dir("././/");
    w.dir("./a//b/./c/");
    w.file("./x/./y//z", "1");
    tar_header a;
    a.type = '\0';
    w.file("olddir/", "", a); // old convention: a regular entry named like a directory
    tar_header z;
    w.file("reg0dir/", "", z);
    w.hardlink("h", "./x//y/z");
    w.dir("...");
    w.end();
    auto const r = read_all(w.str());
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 8);
    CHECK(r.items[0].e.path == ".");
    CHECK(r.items[1].e.path == ".");
    CHECK(r.items[2].e.path == "a/b/c");
    CHECK(r.items[3].e.path == "x/y/z");
    CHECK(r.items[4].e.path == "olddir");
    CHECK(r.items[4].e.type == entry_type::directory);
    CHECK(r.items[5].e.type == entry_type::directory);
    CHECK(r.items[6].e.link_target == "x/y/z");
    CHECK(r.items[7].e.path == "...");

    error_code ec;
    std::string why;
    tar_limits const lim;
    CHECK(detail::tar::normalize_path("a/b/", "path", lim, ec, &why) == "a/b");
    CHECK_FALSE(ec);
    CHECK(detail::tar::normalize_path("./", "path", lim, ec, &why) == ".");
    CHECK(detail::tar::normalize_path("a/..b/c..", "path", lim, ec, &why) == "a/..b/c..");
    CHECK_FALSE(ec);
    detail::tar::normalize_path("a/b/..", "path", lim, ec, &why);
    CHECK(ec == error::unsafe_path);
    CHECK(contains(why, "'..'"));
    detail::tar::normalize_path("//a", "path", lim, ec, &why);
    CHECK(ec == error::unsafe_path);
    CHECK(contains(why, "absolute"));
}

TEST_CASE("long names: 100-byte boundary, ustar prefix, pax, GNU long name and link")
{
    std::string const n100(100, 'n');
    std::string const n99 = std::string(99, 'm');
    std::string const split = std::string(150, 'p') + "/" + std::string(100, 'q'); // 251 bytes: prefix + name
    std::string const deep = "d/" + std::string(200, 'e') + "/" + std::string(200, 'f') + "/file";
    std::string const long_target = "t/" + std::string(300, 'g');

    tar_writer w;
    w.file(n100, "100"); // no NUL terminator in the name field
    w.file("p/" + n99, "101");
    w.file(split, "split");
    w.pax({{"path", deep}});
    w.file("ignored-short-name", "pax");
    w.gnu_long('L', deep + "2");
    w.gnu_long('K', long_target);
    w.symlink("short", "short-target");
    w.gnu_long('L', "gnu/hard");
    w.gnu_long('K', "./" + deep);
    w.hardlink("x", "y");
    // pax path beats a GNU long name, which beats the header
    w.gnu_long('L', "from-L");
    w.pax({{"path", "from-pax"}});
    w.file("from-header", "");
    // ustar prefix written by hand
    w.file("file", "");
    w.patch(tar_writer::prefix_off, "some/dir");
    // GNU format: the prefix area is not a prefix
    tar_header g;
    g.format = tar_format::gnu;
    w.file(n100, "gnu", g);
    w.patch(tar_writer::prefix_off, "garbage");
    w.end();

    auto const r = read_all(w.str(), 7);
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 9);
    CHECK(r.items[0].e.path == n100);
    CHECK(r.items[0].data == "100");
    CHECK(r.items[1].e.path == "p/" + n99);
    CHECK(r.items[2].e.path == split);
    CHECK(r.items[3].e.path == deep);
    CHECK(r.items[3].data == "pax");
    CHECK(r.items[4].e.path == deep + "2");
    CHECK(r.items[4].e.type == entry_type::symlink);
    CHECK(r.items[4].e.link_target == long_target);
    CHECK(r.items[5].e.path == "gnu/hard");
    CHECK(r.items[5].e.link_target == deep);
    CHECK(r.items[6].e.path == "from-pax");
    CHECK(r.items[7].e.path == "some/dir/file");
    CHECK(r.items[8].e.path == n100);
    CHECK(r.items[8].data == "gnu");
}

TEST_CASE("v7 headers, lenient octal fields, star prefix, signed checksums")
{
    tar_writer w;
    tar_header v7;
    v7.format = tar_format::v7;
    v7.uid = 42;
    w.file("v7file", "seven", v7);
    w.file("spaces", "12345");
    w.patch(tar_writer::uid_off, "   1750 ");  // leading spaces, space-terminated
    w.patch(tar_writer::size_off, "00000000005 ");
    w.patch(tar_writer::mode_off, std::string("755\0\0\0\0\0", 8));
    w.file("star-name", "");
    w.patch(tar_writer::prefix_off, std::string(131, 'S') + "ATIME");
    w.patch(508, std::string("tar\0", 4));
    w.file("caf\xc3\xa9", "signed");
    w.fix_checksum(true);
    w.end();
    auto const r = read_all(w.str());
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 4);
    CHECK(r.items[0].e.path == "v7file");
    CHECK(r.items[0].e.uid == 42);
    CHECK(r.items[0].e.uname.empty());
    CHECK(r.items[0].data == "seven");
    CHECK(r.items[1].e.uid == 01750);
    CHECK(r.items[1].e.mode == 0755);
    CHECK(r.items[1].data == "12345");
    CHECK(r.items[2].e.path == std::string(131, 'S') + "/star-name");
    CHECK(r.items[3].e.path == "caf\xc3\xa9");
    CHECK(r.items[3].data == "signed");
}

TEST_CASE("xattrs: SCHILY and LIBARCHIVE records, binary values, order and duplicates")
{
    std::string const cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
    std::string const nul_value("a\0b\n=c", 6);
    tar_writer w;
    w.pax({{"SCHILY.xattr.security.capability", cap},
           {"SCHILY.xattr.user.nul", nul_value},
           {"SCHILY.xattr.user.empty", ""},
           {"LIBARCHIVE.xattr.user.a%3Db%25c", "AAH/"},
           {"LIBARCHIVE.xattr.user.padded", "aGk="},
           {"SCHILY.xattr.user.nul", "replaced"},
           {"unknown.key", "ignored"}});
    w.file("ping", "ELF");
    w.file("plain", "");
    w.end();
    for (std::size_t chunk : {unlimited, std::size_t(1)}) {
        auto const r = read_all(w.str(), chunk);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.items.size() == 2);
        auto const& x = r.items[0].e.xattrs;
        REQUIRE(x.size() == 5);
        CHECK(x[0] == tar_xattr{"security.capability", cap});
        CHECK(x[1] == tar_xattr{"user.nul", "replaced"});
        CHECK(x[2] == tar_xattr{"user.empty", ""});
        CHECK(x[3] == tar_xattr{"user.a=b%c", std::string("\x00\x01\xff", 3)});
        CHECK(x[4] == tar_xattr{"user.padded", "hi"});
        REQUIRE(r.items[0].e.find_xattr("security.capability"));
        CHECK(*r.items[0].e.find_xattr("security.capability") == cap);
        CHECK(r.items[0].e.find_xattr("user.none") == nullptr);
        CHECK(r.items[0].data == "ELF");
        CHECK(r.items[1].e.xattrs.empty()); // per-entry records do not leak
    }
}

TEST_CASE("pax global headers apply to following entries until overridden")
{
    tar_writer w;
    w.pax({{"uid", "1000"},
           {"uname", "alice"},
           {"mtime", "1600000000.25"},
           {"SCHILY.xattr.user.g", "G"},
           {"path", "ignored"},
           {"size", "12345"},
           {"comment", "git archive puts a commit id here"}},
          true);
    w.file("a", "A");
    w.pax({{"uid", "5"}, {"SCHILY.xattr.user.g", "L"}, {"SCHILY.xattr.user.l", "l"}});
    w.file("b", "B");
    w.pax({{"uid", ""}}); // erases the global value for this entry: the header's uid applies
    tar_header h7;
    h7.uid = 7;
    w.file("c", "C", h7);
    w.pax({{"uname", ""}}, true); // erases the global value
    w.file("d", "D");
    w.end();
    auto const r = read_all(w.str());
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 4);
    auto const& a = r.items[0].e;
    CHECK(a.path == "a");
    CHECK(a.size == 1);
    CHECK(r.items[0].data == "A");
    CHECK(a.uid == 1000);
    CHECK(a.uname == "alice");
    CHECK(a.mtime == 1600000000);
    CHECK(a.mtime_nsec == 250000000);
    CHECK(a.xattrs == std::vector<tar_xattr>{{"user.g", "G"}});
    auto const& b = r.items[1].e;
    CHECK(b.uid == 5);
    CHECK(b.uname == "alice");
    CHECK(b.xattrs == std::vector<tar_xattr>{{"user.g", "L"}, {"user.l", "l"}});
    CHECK(r.items[2].e.uid == 7);
    CHECK(r.items[2].e.xattrs == std::vector<tar_xattr>{{"user.g", "G"}});
    CHECK(r.items[3].e.uid == 1000);
    CHECK(r.items[3].e.uname == "root");

    memory_source src(w.str());
    basic_tar_reader reader(src);
    tar_entry e;
    while (reader.next(e)) {
    }
    CHECK(reader.entries_read() == 4);
}

TEST_CASE("mtime: fractional pax values and base-256 negative header values")
{
    struct tc {
        char const* text;
        std::int64_t sec;
        std::uint32_t nsec;
    };
    for (auto const& t : {tc{"1700000000.123456789", 1700000000, 123456789}, tc{"1700000000.5", 1700000000, 500000000},
                          tc{"1700000000.1234567891234", 1700000000, 123456789}, tc{"1700000000", 1700000000, 0},
                          tc{"-1.25", -2, 750000000}, tc{"-5", -5, 0}, tc{"0.000000001", 0, 1}}) {
        INFO(t.text);
        tar_writer w;
        w.pax({{"mtime", t.text}});
        w.file("f", "");
        w.end();
        auto const r = read_all(w.str());
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.items.size() == 1);
        CHECK(r.items[0].e.mtime == t.sec);
        CHECK(r.items[0].e.mtime_nsec == t.nsec);
    }
    tar_writer w;
    tar_header h;
    h.mtime = -86400;
    w.file("old", "", h);
    h.mtime = std::numeric_limits<std::int64_t>::min();
    w.file("oldest", "", h);
    w.end();
    auto const r = read_all(w.str());
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 2);
    CHECK(r.items[0].e.mtime == -86400);
    CHECK(r.items[1].e.mtime == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("base-256 and pax numbers: no truncation of ids and sizes")
{
    tar_writer w;
    tar_header h;
    h.base256 = true;
    h.uid = 1ull << 40;
    h.gid = 70000;
    h.mtime = 1700000001;
    w.file("big-ids", "hello", h);
    tar_header g;
    g.format = tar_format::gnu;
    g.uid = (1ull << 61) + 3; // too large for octal: the writer switches to base-256
    w.file("huge-uid", "", g);
    w.pax({{"uid", "18446744073709551615"}, {"gid", "4294967296"}, {"size", "3"}});
    w.file("pax-ids", "abc");
    w.end();
    auto const r = read_all(w.str());
    INFO(r.why);
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.items.size() == 3);
    CHECK(r.items[0].e.uid == 1ull << 40);
    CHECK(r.items[0].e.gid == 70000);
    CHECK(r.items[0].e.mtime == 1700000001);
    CHECK(r.items[0].data == "hello");
    CHECK(r.items[1].e.uid == (1ull << 61) + 3);
    CHECK(r.items[2].e.uid == std::numeric_limits<std::uint64_t>::max());
    CHECK(r.items[2].e.gid == 4294967296ull);
    CHECK(r.items[2].data == "abc");
}

TEST_CASE("pax 1.0 sparse files read with holes as zeros")
{
    std::uint64_t const real = 1 << 20;
    std::vector<std::pair<std::uint64_t, std::string>> chunks = {
        {0, "head"}, {4096, std::string(5000, 'x')}, {600000, "mid"}, {real - 1, "e"}};
    std::vector<std::pair<std::uint64_t, std::string>> many;
    for (std::uint64_t i = 0; i < 200; ++i) many.push_back({i * 1000 + 10, std::string(1, char('a' + i % 26))});
    many.push_back({300000, ""}); // GNU tar ends maps with a zero-length extent at the real size

    auto expected = [](std::uint64_t size, auto const& cs) {
        std::string s(size, '\0');
        for (auto const& [off, d] : cs) s.replace(off, d.size(), d);
        return s;
    };
    tar_writer w;
    tar_header h;
    h.mode = 0600;
    w.sparse_file("./dir/sparse.bin", real, chunks, h);
    w.file("after", "next");
    w.sparse_file("many", 300000, many);
    w.sparse_file("holes-only", 10000, {{10000, ""}});
    w.end();

    for (std::size_t chunk : {unlimited, std::size_t(1), std::size_t(700)})
        for (std::size_t rbuf : {std::size_t(1), std::size_t(4095), std::size_t(65536), std::size_t(1 << 21)}) {
            if (chunk == 1 && rbuf == 1) continue; // slow and adds nothing
            INFO("chunk " << chunk << " read buffer " << rbuf);
            auto const r = read_all(w.str(), chunk, rbuf);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.items.size() == 4);
            auto const& s = r.items[0].e;
            CHECK(s.path == "dir/sparse.bin");
            CHECK(s.sparse);
            CHECK(s.size == real);
            CHECK(s.mode == 0600);
            CHECK(s.sparse_map == std::vector<sparse_extent>{{0, 4}, {4096, 5000}, {600000, 3}, {real - 1, 1}});
            CHECK(r.items[0].data == expected(real, chunks));
            CHECK(r.items[1].data == "next");
            CHECK(r.items[2].e.sparse_map.size() == 201);
            CHECK(r.items[2].data == expected(300000, many));
            CHECK(r.items[3].data == std::string(10000, '\0'));
        }
}

TEST_CASE("reading data in odd chunk sizes and skipping unread data")
{
    std::string big(200000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 256);
    tar_writer w;
    w.file("big", big);
    w.file("small", "abc");
    w.file("block", std::string(512, 'b'));
    w.file("empty", "");
    w.file("tail", std::string(513, 't'));
    w.end();
    for (std::size_t chunk : {unlimited, std::size_t(1), std::size_t(7), std::size_t(512), std::size_t(65537)})
        for (std::size_t rbuf : {std::size_t(1), std::size_t(13), std::size_t(512), std::size_t(16384),
                                 std::size_t(100000)}) {
            if (chunk == 1 && rbuf < 512) continue;
            INFO("chunk " << chunk << " read buffer " << rbuf);
            auto const r = read_all(w.str(), chunk, rbuf);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.items.size() == 5);
            CHECK(r.items[0].data == big);
            CHECK(r.items[1].data == "abc");
            CHECK(r.items[2].data == std::string(512, 'b'));
            CHECK(r.items[3].data.empty());
            CHECK(r.items[4].data == std::string(513, 't'));
        }

    // read part of an entry, then move on
    for (std::size_t chunk : {unlimited, std::size_t(1), std::size_t(1000)}) {
        memory_source src(w.str(), chunk);
        basic_tar_reader reader(src);
        tar_entry e;
        std::array<std::byte, 3> b{};
        REQUIRE(reader.next(e));
        std::size_t got = 0;
        while (got < 3) {
            std::size_t const n = reader.read_data(std::span(b).subspan(got));
            REQUIRE(n > 0);
            got += n;
        }
        CHECK(static_cast<char>(b[1]) == big[1]);
        REQUIRE(reader.next(e));
        CHECK(e.path == "small");
        REQUIRE(reader.next(e)); // nothing read at all
        REQUIRE(reader.next(e));
        CHECK(e.path == "empty");
        CHECK(reader.read_data(b) == 0);
        REQUIRE(reader.next(e));
        CHECK(e.path == "tail");
        CHECK(reader.read_data(b) >= 1);
        CHECK_FALSE(reader.next(e));
        CHECK(reader.end_marker_seen());
        CHECK(reader.entries_read() == 5);
        CHECK(reader.offset() == w.size());
        CHECK_FALSE(reader.next(e)); // stays at the end
        CHECK(reader.read_data(b) == 0);
    }
}

TEST_CASE("buffering: headers do not hit the source per block, large reads pass through")
{
    tar_writer w;
    for (int i = 0; i < 1000; ++i) w.file("f" + std::to_string(i), std::string(100, 'x'));
    std::string const big(1 << 20, 'B');
    w.file("big", big);
    w.end();
    {
        memory_source src(w.str());
        basic_tar_reader reader(src);
        tar_entry e;
        std::vector<std::byte> buf(1 << 20);
        std::size_t entries = 0;
        while (reader.next(e)) {
            ++entries;
            std::size_t got = 0;
            while (std::size_t n = reader.read_data(buf)) got += n;
            CHECK(got == e.size);
        }
        CHECK(entries == 1001);
        // 1000 small entries: ~1 MB in 64 KiB refills; the 1 MiB file: one refill plus one direct read
        CHECK(src.reads() <= w.size() / basic_tar_reader<memory_source>::buffer_size + 8);
    }
    {
        tar_writer w2;
        w2.file("big", big);
        w2.end();
        memory_source src(w2.str());
        basic_tar_reader reader(src);
        tar_entry e;
        std::vector<std::byte> buf(1 << 20);
        REQUIRE(reader.next(e));
        std::size_t const n1 = reader.read_data(buf);
        std::size_t const n2 = reader.read_data(buf);
        CHECK(n1 + n2 == big.size());
        CHECK(src.reads() <= 3);
    }
}

TEST_CASE("end of archive: markers, missing markers, trailing bytes")
{
    tar_writer base;
    base.file("a", "x");
    auto const body = base.str();
    {
        auto const r = read_all(body + std::string(1024, '\0'));
        CHECK_FALSE(r.ec);
        CHECK(r.end_marker);
        CHECK(r.items.size() == 1);
    }
    {
        auto const r = read_all(body + std::string(512, '\0')); // lone zero block at the very end
        CHECK_FALSE(r.ec);
        CHECK(r.end_marker);
    }
    {
        auto const r = read_all(body); // EOF at a header boundary
        CHECK_FALSE(r.ec);
        CHECK_FALSE(r.end_marker);
        CHECK(r.items.size() == 1);
    }
    {
        auto const r = read_all("");
        CHECK_FALSE(r.ec);
        CHECK(r.items.empty());
    }
    {
        std::string const archive = body + std::string(1024, '\0') + std::string(10000, '\0') + "trailing";
        memory_source src(archive, 1000);
        basic_tar_reader reader(src);
        tar_entry e;
        REQUIRE(reader.next(e));
        CHECK_FALSE(reader.next(e));
        std::uint64_t const at = reader.offset();
        CHECK(at == body.size() + 1024);
        CHECK(reader.drain() == archive.size() - at);
        CHECK(src.position() == archive.size());
        CHECK_FALSE(reader.next(e));
    }
    CHECK_TAR_ERROR(body + std::string(512, '\0') + body, error::invalid_archive, "lone zero block");
    CHECK_TAR_ERROR(body + std::string(512 + 100, '\0'), error::truncated, "second end-of-archive block");
}

TEST_CASE("hostile: checksums and numeric fields")
{
    {
        tar_writer w;
        w.file("a", "x");
        w.patch(0, "b", false);
        w.end();
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "checksum mismatch");
    }
    {
        tar_writer w;
        w.file("a", "x");
        w.patch(tar_writer::chksum_off, "12x4567 ", false);
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "checksum field");
    }
    {
        tar_writer w;
        w.file("a", "x");
        w.patch(tar_writer::size_off, "0000000012x");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "of the size field is not an octal digit");
    }
    {
        tar_writer w;
        w.file("a", "x");
        w.patch(tar_writer::uid_off, "abc");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "uid field");
    }
    {
        tar_writer w;
        w.file("a", "x");
        w.patch(tar_writer::mtime_off, "1 2");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "mtime field");
    }
    {
        tar_writer w;
        w.device("dev/x", '3', 1, 1);
        w.patch(tar_writer::devmajor_off, "9z");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "devmajor field");
        w.patch(tar_writer::devmajor_off, tar_writer::base256(1ll << 40, 8));
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "devmajor 1099511627776 is too large");
    }
    {
        tar_writer w;
        w.file("neg", "");
        w.patch(tar_writer::size_off, tar_writer::base256(-5, 12));
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "size is negative");
        w.patch(tar_writer::size_off, std::string("\x80\x01", 2) + std::string(10, '\0'));
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "base-256 size overflows 64 bits");
        w.patch(tar_writer::uid_off, tar_writer::base256(-1, 8));
        w.patch(tar_writer::size_off, tar_writer::octal(0, 12));
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "uid is negative");
    }
}

TEST_CASE("hostile: sizes and limits")
{
    {
        tar_writer w;
        tar_header h;
        h.size = 1ull << 62; // no data follows: the limit must trip before any is read
        h.name = "huge";
        w.header(h);
        CHECK_TAR_ERROR(w.str(), error::limit_exceeded, "exceeds the per-entry limit");
    }
    {
        tar_writer w;
        w.pax({{"size", "99999999999999999999"}});
        w.file("a", "");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "'size' value \"99999999999999999999\" is not");
    }
    {
        tar_writer w;
        w.pax({{"size", "9223372036854775808"}});
        w.file("a", "");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "absurd");
    }
    {
        tar_writer w;
        w.file("a", "123456");
        w.file("b", "123456");
        w.end();
        tar_limits lim;
        lim.max_total_size = 10;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "total beyond the limit of 10 bytes");
        lim = {};
        lim.max_entry_size = 5;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "per-entry limit of 5");
        lim = {};
        lim.max_entries = 1;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "more than 1 entries");
    }
    {
        tar_writer w;
        w.pax({{"comment", std::string(300, 'c')}});
        w.file("a", "");
        tar_limits lim;
        lim.max_pax_header_size = 100;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "pax extended header at offset 0 is 313 bytes");
        CHECK_FALSE(read_all(w.str()).ec);
    }
    {
        tar_writer w;
        for (int i = 0; i < 10; ++i) w.pax({{"SCHILY.xattr.user.k" + std::to_string(i), std::string(60, 'v')}}, true);
        w.file("a", "");
        tar_limits lim;
        lim.max_global_pax_size = 400;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "accumulated global pax records");
        CHECK_FALSE(read_all(w.str()).ec);
        tar_writer w2;
        w2.pax({{"uname", std::string(9000, 'u')}}, true);
        CHECK_TAR_ERROR(w2.str(), error::limit_exceeded, "the limit is 8192");
    }
    {
        tar_writer w;
        w.gnu_long('L', std::string(100, 'l'));
        w.file("a", "");
        tar_limits lim;
        lim.max_path_length = 50;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "GNU long name record at offset 0 is 101 bytes");
    }
    {
        tar_writer w;
        w.file(std::string(60, 'a'), "");
        tar_limits lim;
        lim.max_path_length = 50;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "is 60 bytes long; the limit is 50");
    }
    {
        tar_writer w;
        w.pax({{"path", std::string(5000, 'p')}});
        w.file("a", "");
        CHECK_TAR_ERROR(w.str(), error::limit_exceeded, "is 5000 bytes long; the limit is 4096");
    }
    {
        std::string deep;
        for (int i = 0; i < 129; ++i) deep += "d/";
        tar_writer w;
        w.pax({{"path", deep}});
        w.file("a", "");
        CHECK_TAR_ERROR(w.str(), error::limit_exceeded, "more than 128 components");
        tar_limits lim;
        lim.max_path_depth = 3;
        tar_writer w2;
        w2.file("a/b/c/d", "");
        CHECK_TAR_ERROR_L(w2.str(), lim, error::limit_exceeded, "more than 3 components");
    }
    {
        tar_writer w;
        std::string target(60, 't');
        w.symlink("s", target);
        tar_limits lim;
        lim.max_path_length = 50;
        CHECK_TAR_ERROR_L(w.str(), lim, error::limit_exceeded, "symlink target is 60 bytes long");
    }
}

TEST_CASE("hostile: truncation anywhere is error::truncated")
{
    {
        tar_writer w;
        w.file("a", "hello");
        w.file("b", "x");
        w.truncate(1024 + 100);
        CHECK_TAR_ERROR(w.str(), error::truncated, "inside the header at offset 1024 (100 of 512 bytes)");
    }
    {
        tar_writer w;
        w.file("a", std::string(2000, 'x'));
        w.truncate(512 + 1000);
        CHECK_TAR_ERROR(w.str(), error::truncated, "inside the data of \"a\"");
    }
    {
        tar_writer w;
        w.file("a", std::string(10, 'x'));
        w.truncate(512 + 15); // inside the padding
        CHECK_TAR_ERROR(w.str(), error::truncated, "inside the data of \"a\"");
    }
    {
        tar_writer w;
        w.pax({{"path", "x"}});
        CHECK_TAR_ERROR(w.str(), error::truncated, "after an extension header");
    }
    {
        tar_writer w;
        w.pax({{"path", std::string(800, 'x')}});
        w.truncate(512 + 300);
        CHECK_TAR_ERROR(w.str(), error::truncated, "inside pax extended header");
    }
    {
        tar_writer w;
        w.sparse_file("s", 100000, {{0, "a"}, {50000, "b"}});
        w.truncate(w.size() - 512 + 2); // map intact, data cut
        CHECK_TAR_ERROR(w.str(), error::truncated, "inside the data of \"s\"");
    }

    // every prefix of a valid archive: either a clean end at a header boundary, or truncated
    tar_writer w;
    std::set<std::size_t> clean = {0};
    w.dir("d/");
    clean.insert(w.size());
    w.file("d/f", std::string(1500, 'f'));
    clean.insert(w.size());
    w.pax({{"path", std::string(200, 'p')}, {"SCHILY.xattr.user.x", "1"}});
    w.file("x", "y");
    clean.insert(w.size());
    w.gnu_long('L', std::string(150, 'l'));
    w.symlink("s", "t");
    clean.insert(w.size());
    w.sparse_file("sp", 5000, {{0, "a"}, {4000, "b"}});
    clean.insert(w.size());
    w.end();
    clean.insert(w.size() - 512); // a lone zero block at the end
    clean.insert(w.size());
    for (std::size_t len = 0; len <= w.size(); ++len) {
        auto const r = read_all(std::string_view(w.str()).substr(0, len));
        INFO("prefix " << len << ": " << r.why);
        if (!r.ec) CHECK(clean.count(len) == 1);
        else CHECK(r.ec == error::truncated);
    }
}

TEST_CASE("hostile: pax records")
{
    auto pax_error = [](std::string const& body, error e, std::string_view needle) {
        tar_writer w;
        w.pax_raw(body);
        w.file("a", "");
        w.end();
        CHECK_TAR_ERROR(w.str(), e, needle);
    };
    pax_error("30 path=abc\n", error::invalid_archive, "record length 30 exceeds the 12 bytes left");
    pax_error("5 path=abc\n", error::invalid_archive, "does not end with a newline");
    pax_error("x path=a\n", error::invalid_archive, "expected a decimal record length");
    pax_error("12path=abcd\n", error::invalid_archive, "expected a decimal record length");
    pax_error("99999999999999999999999 path=a\n", error::invalid_archive, "record length");
    pax_error(rec("novalue"), error::invalid_archive, "no '='");
    pax_error(rec("=v"), error::invalid_archive, "empty key");
    pax_error("3 \n", error::invalid_archive, "too short");
    pax_error(rec("path=a") + std::string("\0x", 2), error::invalid_archive, "NUL byte at position");
    pax_error(rec("uid=12a"), error::invalid_archive, "'uid' value \"12a\" is not a decimal number");
    pax_error(rec("uid=-1"), error::invalid_archive, "'uid' value");
    pax_error(rec("gid=99999999999999999999"), error::invalid_archive, "'gid' value");
    pax_error(rec("mtime=1.2.3"), error::invalid_archive, "'mtime' value");
    pax_error(rec("mtime=1."), error::invalid_archive, "'mtime' value");
    pax_error(rec("mtime=+5"), error::invalid_archive, "'mtime' value");
    pax_error(rec("mtime=abc"), error::invalid_archive, "'mtime' value");
    pax_error(rec(std::string("uname=a\0b", 9)), error::invalid_archive, "'uname' contains a NUL byte");
    pax_error(rec("SCHILY.xattr.=v"), error::invalid_archive, "empty name");
    pax_error(rec("LIBARCHIVE.xattr.user.x=@@@@"), error::invalid_archive, "is not base64");
    pax_error(rec("LIBARCHIVE.xattr.user.x=A"), error::invalid_archive, "is not base64");
    pax_error(rec("LIBARCHIVE.xattr.user.%zz=AA"), error::invalid_archive, "malformed %XX escape");
    pax_error(rec("LIBARCHIVE.xattr.user.%4=AA"), error::invalid_archive, "malformed %XX escape");
    pax_error(rec(std::string("k\0ey=v", 6)), error::invalid_archive, "key contains a NUL byte");

    { // trailing NUL padding after the last record is tolerated
        tar_writer w;
        w.pax_raw(rec("path=padded") + std::string(20, '\0'));
        w.file("a", "");
        w.end();
        auto const r = read_all(w.str());
        REQUIRE_FALSE(r.ec);
        CHECK(r.items.at(0).e.path == "padded");
    }
}

TEST_CASE("hostile: unsafe paths")
{
    auto path_error = [](auto&& build, error e, std::string_view needle) {
        tar_writer w;
        build(w);
        w.end();
        CHECK_TAR_ERROR(w.str(), e, needle);
    };
    path_error([](tar_writer& w) { w.file("../etc/passwd", "x"); }, error::unsafe_path,
               "path \"../etc/passwd\" has a '..' component");
    path_error([](tar_writer& w) { w.file("a/../../b", "x"); }, error::unsafe_path, "'..' component");
    path_error([](tar_writer& w) { w.file("a/..", "x"); }, error::unsafe_path, "'..' component");
    path_error([](tar_writer& w) { w.file("/etc/passwd", "x"); }, error::unsafe_path, "is absolute");
    path_error([](tar_writer& w) { w.dir("/"); }, error::unsafe_path, "is absolute");
    path_error(
        [](tar_writer& w) {
            w.pax({{"path", std::string("a\0b", 3)}});
            w.file("a", "");
        },
        error::unsafe_path, "path \"a\\x00b\" contains a NUL byte at position 1");
    path_error(
        [](tar_writer& w) {
            w.pax({{"linkpath", std::string("t\0u", 3)}});
            w.symlink("s", "t");
        },
        error::unsafe_path, "symlink target contains a NUL byte");
    path_error(
        [](tar_writer& w) {
            w.gnu_long('L', std::string("abc\0def", 7));
            w.file("a", "");
        },
        error::unsafe_path, "GNU long name record at offset 0 contains a NUL byte");
    path_error([](tar_writer& w) { w.file("", "x"); }, error::unsafe_path, "empty path");
    path_error([](tar_writer& w) { w.hardlink("h", "../../x"); }, error::unsafe_path,
               "hardlink target \"../../x\" has a '..' component");
    path_error([](tar_writer& w) { w.hardlink("h", "/x"); }, error::unsafe_path, "hardlink target \"/x\" is absolute");
    path_error([](tar_writer& w) { w.hardlink("h", "./"); }, error::unsafe_path, "is the root");
    path_error([](tar_writer& w) { w.hardlink("h", ""); }, error::unsafe_path, "empty hardlink target");
    path_error([](tar_writer& w) { w.file(".", "x"); }, error::unsafe_path, "the archive root is a regular");
    path_error([](tar_writer& w) { w.symlink("./", "x"); }, error::unsafe_path, "the archive root is a symlink");
    path_error([](tar_writer& w) { w.symlink("s", ""); }, error::invalid_archive, "symlink with an empty target");

    // symlink targets are kept raw: they are resolved inside the container, not here
    tar_writer w;
    w.symlink("s", "/etc/../../x");
    w.end();
    auto const r = read_all(w.str());
    REQUIRE_FALSE(r.ec);
    CHECK(r.items.at(0).e.link_target == "/etc/../../x");
}

TEST_CASE("hostile: structure")
{
    {
        tar_writer w;
        w.pax({{"path", "a"}});
        w.pax({{"path", "b"}});
        w.file("c", "");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "pax extended header at offset 1024 follows another one");
    }
    {
        tar_writer w;
        w.gnu_long('L', "a");
        w.gnu_long('L', "b");
        w.file("c", "");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "GNU long name record at offset 1024 follows another");
    }
    {
        tar_writer w;
        w.pax({{"path", "a"}});
        w.pax({{"uid", "1"}}, true);
        w.file("c", "");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "sits between an extension header and its entry");
    }
    {
        tar_writer w;
        w.gnu_long('K', "target");
        w.end();
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "zero block at offset 1024 where the entry");
    }
    {
        tar_writer w;
        tar_header s;
        s.name = "s";
        s.type = '2';
        s.linkname = "t";
        s.size = 10;
        w.header(s);
        w.data("0123456789");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "a symlink entry declares 10 bytes of data");
    }
    {
        tar_writer w;
        w.pax({{"size", "5"}});
        w.hardlink("h", "t");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "a hardlink entry declares 5 bytes");
    }
    {
        tar_writer w;
        w.file("dir/", "data");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "named like a directory (trailing '/') declares 4 bytes");
    }
    { // a '5' entry's size field is ignored: no data follows
        tar_writer w;
        tar_header d;
        d.name = "d/";
        d.type = '5';
        d.size = 4096;
        w.header(d);
        w.file("f", "x");
        w.end();
        auto const r = read_all(w.str());
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.items.size() == 2);
        CHECK(r.items[0].e.size == 0);
        CHECK(r.items[1].data == "x");
    }
    for (auto [t, name] : {std::pair{'D', "GNU dumpdir"}, std::pair{'S', "GNU old sparse file"},
                           std::pair{'M', "GNU multi-volume continuation"}, std::pair{'N', "GNU old long name"},
                           std::pair{'Z', "unknown"}, std::pair{'X', "Solaris extended header"}}) {
        tar_writer w;
        tar_header h;
        h.name = "odd";
        h.type = t;
        w.header(h);
        w.end();
        CHECK_TAR_ERROR(w.str(), error::unsupported_entry,
                        std::string("entry \"odd\" at offset 0 has type '") + t + "' (" + name + ")");
    }
    { // GNU volume labels are skipped, data included
        tar_writer w;
        tar_header v;
        v.name = "Volume 1";
        v.type = 'V';
        v.size = 3;
        v.format = tar_format::gnu;
        w.header(v);
        w.data("vol");
        w.file("f", "x");
        w.end();
        auto const r = read_all(w.str());
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.items.size() == 1);
        CHECK(r.items[0].e.path == "f");
    }
}

TEST_CASE("hostile: sparse maps")
{
    auto sparse = [](std::vector<std::pair<std::string, std::string>> extra, std::string stored) {
        tar_writer w;
        std::vector<std::pair<std::string, std::string>> recs = {
            {"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "s"},
            {"GNU.sparse.realsize", "1000"}};
        for (auto& e : extra) {
            bool replaced = false;
            for (auto& r : recs)
                if (r.first == e.first) r.second = e.second, replaced = true;
            if (!replaced) recs.push_back(e);
        }
        w.pax(recs);
        w.file("GNUSparseFile.0/s", stored);
        w.end();
        return w.str();
    };
    auto map = [](std::string text, std::string data) {
        text.append((512 - text.size() % 512) % 512, '\0');
        return text + data;
    };
    CHECK_FALSE(read_all(sparse({}, map("1\n10\n3\n", "abc"))).ec);
    CHECK_TAR_ERROR(sparse({{"GNU.sparse.map", "0,1"}}, map("1\n10\n3\n", "abc")), error::unsupported_entry,
                    "GNU sparse format 0.x (pax record 'GNU.sparse.map') is not supported");
    CHECK_TAR_ERROR(sparse({{"GNU.sparse.major", "2"}}, map("1\n10\n3\n", "abc")), error::unsupported_entry,
                    "GNU sparse format 2.0 is not supported");
    CHECK_TAR_ERROR(sparse({{"GNU.sparse.realsize", ""}}, map("1\n10\n3\n", "abc")), error::invalid_archive,
                    "without GNU.sparse.realsize");
    CHECK_TAR_ERROR(sparse({}, map("2\n10\n3\n12\n1\n", "abcd")), error::invalid_archive,
                    "extent 1 (offset 12, length 1) overlaps or precedes the previous extent");
    CHECK_TAR_ERROR(sparse({}, map("1\n999\n3\n", "abc")), error::invalid_archive,
                    "extends past the file's size of 1000");
    CHECK_TAR_ERROR(sparse({}, map("1\n10\n3\n", "abcd")), error::invalid_archive,
                    "describes 3 data bytes, but the entry stores 4");
    CHECK_TAR_ERROR(sparse({}, map("1\n1x\n3\n", "abc")), error::invalid_archive,
                    "'x' where a decimal digit or newline belongs");
    CHECK_TAR_ERROR(sparse({}, map("1\n\n3\n", "abc")), error::invalid_archive, "empty number");
    CHECK_TAR_ERROR(sparse({}, map("1\n99999999999999999999999\n3\n", "abc")), error::invalid_archive,
                    "overflows 64 bits");
    CHECK_TAR_ERROR(sparse({}, "1\n10\n3"), error::invalid_archive, "runs past the entry's data");
    CHECK_TAR_ERROR(sparse({}, std::string("1\n10\n3\n")), error::invalid_archive, "runs past the entry's data");
    tar_limits lim;
    lim.max_sparse_extents = 2;
    CHECK_TAR_ERROR_L(sparse({}, map("3\n1\n1\n3\n1\n5\n1\n", "abc")), lim, error::limit_exceeded,
                      "has 3 extents; the limit is 2");
    CHECK_TAR_ERROR(sparse({{"GNU.sparse.realsize", "99999999999999"}}, map("1\n10\n3\n", "abc")),
                    error::limit_exceeded, "exceeds the per-entry limit");
    {
        tar_writer w;
        w.pax({{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}});
        w.dir("d");
        CHECK_TAR_ERROR(w.str(), error::invalid_archive, "GNU sparse records on a directory entry");
    }
}

TEST_CASE("failures are sticky, source errors pass through, throwing overloads carry the reason")
{
    tar_writer w;
    w.file("a", std::string(2000, 'a'));
    w.file("b", "b");
    w.end();
    {
        memory_source src(w.str(), 100);
        auto const io = std::make_error_code(std::errc::io_error);
        src.fail_at(1000, io);
        basic_tar_reader reader(src);
        tar_entry e;
        error_code ec;
        std::string why;
        REQUIRE(reader.next(e, ec, &why));
        std::vector<std::byte> buf(4096);
        std::size_t got = 0;
        while (std::size_t n = reader.read_data(buf, ec, &why)) got += n;
        CHECK(ec == io);
        CHECK(got == 1000 - 512);
        CHECK(contains(why, "reading the archive at offset 1000"));
        why.clear();
        CHECK_FALSE(reader.next(e, ec, &why));
        CHECK(ec == io);
        CHECK(contains(why, "offset 1000"));
    }
    {
        tar_writer bad;
        bad.file("../x", "");
        memory_source src(bad.str());
        basic_tar_reader reader(src);
        tar_entry e;
        try {
            reader.next(e);
            FAIL("no exception");
        } catch (system_error const& ex) {
            CHECK(ex.code() == error::unsafe_path);
            CHECK(contains(ex.what(), "'..' component"));
        }
        std::array<std::byte, 4> b{};
        CHECK_THROWS_AS(reader.read_data(b), system_error);
        CHECK_THROWS_AS(reader.next(e), system_error);
    }
}

TEST_CASE("random corruption never hangs or crashes")
{
    tar_writer w;
    w.dir("./");
    w.pax({{"path", std::string(150, 'p')}, {"mtime", "1.5"}, {"SCHILY.xattr.user.a", "b"}});
    w.file("x", std::string(700, 'x'));
    w.gnu_long('L', std::string(120, 'l'));
    w.gnu_long('K', std::string(120, 'k'));
    w.symlink("s", "t");
    w.sparse_file("sp", 3000, {{0, "a"}, {2000, std::string(600, 'b')}});
    w.hardlink("h", "x");
    w.end();
    std::string const good = w.str();
    REQUIRE_FALSE(read_all(good).ec);

    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    auto rnd = [&] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    std::set<error_code> const allowed = {make_error_code(error::invalid_archive), make_error_code(error::truncated),
                                          make_error_code(error::unsafe_path), make_error_code(error::limit_exceeded),
                                          make_error_code(error::unsupported_entry)};
    for (int iter = 0; iter < 3000; ++iter) {
        std::string s = good;
        int const flips = 1 + static_cast<int>(rnd() % 4);
        for (int i = 0; i < flips; ++i) {
            std::size_t const p = rnd() % s.size();
            s[p] = static_cast<char>(rnd() % 3 == 0 ? '0' + rnd() % 10 : rnd() & 0xff);
            if (rnd() % 2 == 0) { // keep the block's checksum valid to get past it
                std::size_t const b = p / 512 * 512;
                std::uint64_t sum = 0;
                for (std::size_t k = 0; k < 512; ++k)
                    sum += (k >= 148 && k < 156) ? ' ' : static_cast<unsigned char>(s[b + k]);
                std::string f = tar_writer::octal(sum & 0777777, 7) + " ";
                s.replace(b + 148, 8, f);
            }
        }
        if (rnd() % 8 == 0) s.resize(rnd() % s.size());
        auto const r = read_all(s, iter % 3 == 0 ? 1 : unlimited, 1000);
        INFO("iteration " << iter << ": " << r.why);
        if (r.ec) CHECK(allowed.count(r.ec) == 1);
        if (r.ec) CHECK_FALSE(r.why.empty());
    }
}

// ---------------------------------------------------------------------------------------
// Cross-check against GNU tar.

namespace {

std::string slurp(std::filesystem::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(std::filesystem::path const& p, std::string const& data)
{
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
}

bool have_tar() { return std::system("tar --version >/dev/null 2>&1") == 0; }

} // namespace

TEST_CASE("cross-check with GNU tar (pax and gnu formats)")
{
    if (!have_tar()) {
        MESSAGE("GNU tar not found: cross-check skipped");
        return;
    }
    namespace fs = std::filesystem;
    ocistore_test::temp_dir tmp("ocistore-tar");
    fs::path const root = tmp / "tree";
    std::string big(300000, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
    spit(root / "small.txt", "hello\n");
    spit(root / "empty", "");
    spit(root / "big.bin", big);
    spit(root / "sub/dir/nested.txt", "nested");
    std::string const long_dir = "long/" + std::string(120, 'a') + "/" + std::string(120, 'b');
    spit(root / long_dir / ("file_" + std::string(60, 'c')), "long name");
    spit(root / std::string(98, 'h'), "100 with ./"); // "./" + 98 = exactly 100 bytes in the archive
    spit(root / "exec", "#!/bin/sh\n");
    fs::permissions(root / "exec", fs::perms(04755));
    fs::create_symlink("small.txt", root / "link");
    std::string const long_target = std::string(150, 'z') + "/dangling";
    fs::create_symlink(long_target, root / "longlink");
    fs::create_hard_link(root / "small.txt", root / "hard");
    REQUIRE(::mkfifo((root / "pipe").c_str(), 0644) == 0);
    { // sparse: 1 MiB with two data islands
        std::ofstream f(root / "sparse.img", std::ios::binary);
        f.seekp(300000);
        f << "island";
        f.seekp((1 << 20) - 3);
        f << "end";
    }
    bool const xattrs = ::setxattr((root / "small.txt").c_str(), "user.test", "v\0al", 4, 0) == 0;
    if (!xattrs) MESSAGE("user xattrs not supported here: xattr cross-check skipped");

    struct expect {
        entry_type type = entry_type::regular;
        std::uint64_t size = 0;
        std::string link;
        struct stat st {};
    };
    std::map<std::string, expect> want;
    want["."].type = entry_type::directory;
    ::lstat(root.c_str(), &want["."].st);
    for (auto const& de : fs::recursive_directory_iterator(root)) {
        std::string const rel = de.path().lexically_relative(root).string();
        expect x;
        ::lstat(de.path().c_str(), &x.st);
        auto const st = de.symlink_status();
        if (fs::is_symlink(st)) x.type = entry_type::symlink, x.link = fs::read_symlink(de.path()).string();
        else if (fs::is_directory(st)) x.type = entry_type::directory;
        else if (fs::is_fifo(st)) x.type = entry_type::fifo;
        else x.type = entry_type::regular, x.size = fs::file_size(de.path());
        want[rel] = x;
    }

    struct variant {
        char const* name;
        char const* flags;
    };
    for (auto const& v : {variant{"pax", "--format=pax --sparse --xattrs"}, variant{"gnu", "--format=gnu"}}) {
        INFO("format " << std::string(v.name));
        fs::path const archive = tmp / (std::string(v.name) + ".tar");
        std::string const cmd = std::string("tar ") + v.flags + " -cf '" + archive.string() + "' -C '" +
                                root.string() + "' . 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        std::string const bytes = slurp(archive);
        for (std::size_t chunk : {unlimited, std::size_t(4093)}) {
            memory_source src(bytes, chunk);
            basic_tar_reader reader(src);
            tar_entry e;
            std::set<std::string> seen;
            std::vector<std::byte> buf(7777);
            bool saw_sparse = false, saw_xattr = false;
            while (reader.next(e)) {
                INFO("entry " << e.path);
                REQUIRE(want.count(e.path) == 1);
                CHECK(seen.insert(e.path).second);
                auto const& x = want[e.path];
                std::string data;
                while (std::size_t n = reader.read_data(buf)) data.append(reinterpret_cast<char*>(buf.data()), n);
                CHECK(e.uid == x.st.st_uid);
                CHECK(e.gid == x.st.st_gid);
                CHECK(e.mode == (x.st.st_mode & 07777));
                CHECK(e.mtime == x.st.st_mtim.tv_sec);
                if (std::string(v.name) == "pax")
                    CHECK(e.mtime_nsec == static_cast<std::uint32_t>(x.st.st_mtim.tv_nsec));
                if (e.type == entry_type::hardlink) {
                    CHECK(x.type == entry_type::regular);
                    CHECK(seen.count(e.link_target) == 1);
                    CHECK(fs::equivalent(root / e.path, root / e.link_target));
                    CHECK(data.empty());
                    continue;
                }
                CHECK(e.type == x.type);
                if (x.type == entry_type::regular) {
                    CHECK(e.size == x.size);
                    CHECK(data == slurp(root / e.path));
                    saw_sparse = saw_sparse || e.sparse;
                } else {
                    CHECK(e.size == 0);
                    CHECK(data.empty());
                }
                if (x.type == entry_type::symlink) CHECK(e.link_target == x.link);
                if (e.path == "small.txt" && xattrs && std::string(v.name) == "pax") {
                    REQUIRE(e.find_xattr("user.test"));
                    CHECK(*e.find_xattr("user.test") == std::string("v\0al", 4));
                    saw_xattr = true;
                }
            }
            CHECK(seen.size() == want.size());
            CHECK(reader.end_marker_seen());
            if (std::string(v.name) == "pax") {
                if (!saw_sparse) MESSAGE("tar did not store sparse.img as a sparse file (no SEEK_HOLE?)");
                if (xattrs) CHECK(saw_xattr);
            }
        }
    }
}
