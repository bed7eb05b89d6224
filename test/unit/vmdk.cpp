#include <ocistore/erofs/vmdk.hpp>

#include <support/erofs_test.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::noise;
using ocistore_test::read_all;
using ocistore_test::run;
using ocistore_test::temp_dir;
using ocistore_test::write_all;
namespace fs = std::filesystem;

namespace {

bool have_qemu_img()
{
    static bool const have = run("qemu-img --version").first == 0;
    if (!have) MESSAGE("qemu-img is not installed: qemu checks skipped");
    return have;
}

/// The error and reason of a rejected extent list.
std::pair<error_code, std::string> rejected(std::vector<vmdk_extent> const& extents)
{
    error_code ec;
    std::string why;
    std::string const text = vmdk_descriptor(extents, {}, ec, &why);
    CHECK(text.empty());
    return {ec, why};
}

} // namespace

TEST_CASE("vmdk_descriptor: the exact text of a one-extent disk")
{
    std::vector<vmdk_extent> const one{{"fsmeta/sha256_ab.erofs", 8192}};
    vmdk_options o;
    o.cid = 0x1234abcd;
    CHECK(vmdk_descriptor(one, o) ==
          "# Disk DescriptorFile\n"
          "version=1\n"
          "CID=1234abcd\n"
          "parentCID=ffffffff\n"
          "createType=\"twoGbMaxExtentFlat\"\n"
          "\n"
          "# Extent description\n"
          "RW 16 FLAT \"fsmeta/sha256_ab.erofs\" 0\n"
          "\n"
          "# The Disk Data Base\n"
          "#DDB\n"
          "ddb.virtualHWVersion = \"4\"\n"
          "ddb.geometry.cylinders = \"1\"\n"
          "ddb.geometry.heads = \"16\"\n"
          "ddb.geometry.sectors = \"63\"\n"
          "ddb.adapterType = \"ide\"\n");
}

TEST_CASE("vmdk_descriptor: several extents in order, geometry from the total")
{
    // fsmeta 8 KiB, layer0 3 MiB, layer1 40 KiB: 6240 sectors, ceil(6240 / 1008) = 7 cylinders.
    std::vector<vmdk_extent> const disk{
        {"../fsmeta/m.erofs", 8192}, {"../layers/d0.erofs", 3u << 20}, {"../layers/d1.erofs", 40960}};
    vmdk_options o;
    o.cid = 0xfffffffe;
    std::string const text = vmdk_descriptor(disk, o);
    CHECK(text ==
          "# Disk DescriptorFile\n"
          "version=1\n"
          "CID=fffffffe\n"
          "parentCID=ffffffff\n"
          "createType=\"twoGbMaxExtentFlat\"\n"
          "\n"
          "# Extent description\n"
          "RW 16 FLAT \"../fsmeta/m.erofs\" 0\n"
          "RW 6144 FLAT \"../layers/d0.erofs\" 0\n"
          "RW 80 FLAT \"../layers/d1.erofs\" 0\n"
          "\n"
          "# The Disk Data Base\n"
          "#DDB\n"
          "ddb.virtualHWVersion = \"4\"\n"
          "ddb.geometry.cylinders = \"7\"\n"
          "ddb.geometry.heads = \"16\"\n"
          "ddb.geometry.sectors = \"63\"\n"
          "ddb.adapterType = \"ide\"\n");

    SUBCASE("exactly 1008 sectors is one cylinder, one more is two")
    {
        std::vector<vmdk_extent> a{{"a", 1008 * 512}};
        CHECK(vmdk_descriptor(a).find("ddb.geometry.cylinders = \"1\"\n") != std::string::npos);
        a[0].size += 512;
        CHECK(vmdk_descriptor(a).find("ddb.geometry.cylinders = \"2\"\n") != std::string::npos);
    }
    SUBCASE("a SCSI adapter has 255 heads")
    {
        vmdk_options s;
        s.adapter = vmdk_adapter::lsilogic;
        s.virtual_hw_version = 7;
        std::string const t = vmdk_descriptor(disk, s);
        CHECK(t.find("ddb.adapterType = \"lsilogic\"\n") != std::string::npos);
        CHECK(t.find("ddb.geometry.heads = \"255\"\n") != std::string::npos);
        CHECK(t.find("ddb.geometry.cylinders = \"1\"\n") != std::string::npos); // 6240 <= 255*63
        CHECK(t.find("ddb.virtualHWVersion = \"7\"\n") != std::string::npos);
        CHECK(to_string(vmdk_adapter::legacy_esx) == "legacyESX");
        CHECK(to_string(vmdk_adapter::buslogic) == "buslogic");
    }
}

TEST_CASE("vmdk_descriptor: the derived CID is deterministic and depends on the extents")
{
    std::vector<vmdk_extent> a{{"x.erofs", 4096}, {"y.erofs", 8192}};
    std::string const t1 = vmdk_descriptor(a);
    CHECK(t1 == vmdk_descriptor(a));
    auto cid_of = [](std::string const& t) {
        auto const p = t.find("CID=");
        REQUIRE(p != std::string::npos);
        return t.substr(p + 4, t.find('\n', p) - p - 4);
    };
    std::string const c1 = cid_of(t1);
    CHECK(c1.size() == 8);
    CHECK(c1 != "ffffffff");
    CHECK(c1.find_first_not_of("0123456789abcdef") == std::string::npos);
    auto b = a;
    b[1].size = 12288;
    CHECK(cid_of(vmdk_descriptor(b)) != c1);
    auto c = a;
    c[0].path = "/abs/x.erofs";
    CHECK(cid_of(vmdk_descriptor(c)) != c1);
    // Non-ASCII bytes are written as they are.
    std::vector<vmdk_extent> u{{"d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5.img", 512}};
    CHECK(vmdk_descriptor(u).find("RW 1 FLAT \"d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5.img\" 0\n") != std::string::npos);
}

TEST_CASE("vmdk_descriptor: files over 2 GiB are split into lines of at most 4194304 sectors")
{
    constexpr std::uint64_t two_gib = 2ull << 30;
    auto extent_lines = [](std::string const& t) {
        std::vector<std::string> out;
        for (std::size_t pos = 0; (pos = t.find("\nRW ", pos)) != std::string::npos;) {
            ++pos;
            out.push_back(t.substr(pos, t.find('\n', pos) - pos));
        }
        return out;
    };
    std::vector<vmdk_extent> exact{{"a", two_gib}};
    CHECK(extent_lines(vmdk_descriptor(exact)) == std::vector<std::string>{"RW 4194304 FLAT \"a\" 0"});

    std::vector<vmdk_extent> big{{"m", 4096}, {"big", 2 * two_gib + 3 * 512}, {"z", 1024}};
    CHECK(extent_lines(vmdk_descriptor(big)) == std::vector<std::string>{
                                                    "RW 8 FLAT \"m\" 0",
                                                    "RW 4194304 FLAT \"big\" 0",
                                                    "RW 4194304 FLAT \"big\" 4194304",
                                                    "RW 3 FLAT \"big\" 8388608",
                                                    "RW 2 FLAT \"z\" 0",
                                                });
    // 8 + 8388611 + 2 sectors over 1008 per cylinder: 8323.
    CHECK(vmdk_descriptor(big).find("ddb.geometry.cylinders = \"8323\"\n") != std::string::npos);
}

TEST_CASE("vmdk_descriptor: rejects what a descriptor cannot express, naming the problem")
{
    {
        auto [ec, why] = rejected({});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("at least one extent") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"a", 512}, {"", 512}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("extent 1 has an empty path") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"we\"ird", 512}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("extent 0") != std::string::npos);
        CHECK(why.find("'\"' at position 2") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"a", 512}, {"two\nlines", 512}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("extent 1 (\"two\\x0alines\")") != std::string::npos);
        CHECK(why.find("byte 0x0a at position 3") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"cr\r", 512}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("byte 0x0d at position 2") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{std::string("nul\0x", 5), 512}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("byte 0x00 at position 3") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"a", 0}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("size 0, not a positive multiple of 512") != std::string::npos);
    }
    {
        auto [ec, why] = rejected({{"a", 512}, {"odd", 1000}});
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("extent 1 (\"odd\") has size 1000") != std::string::npos);
    }
    // The throwing overload carries the reason; a success clears ec.
    std::vector<vmdk_extent> const bad{{"q\"", 512}};
    try {
        vmdk_descriptor(bad);
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("cannot quote") != std::string::npos);
    }
    error_code ec = error::io_error;
    std::vector<vmdk_extent> const good{{"ok", 512}};
    CHECK_FALSE(vmdk_descriptor(good, {}, ec).empty());
    CHECK_FALSE(ec);
}

TEST_CASE("parse_vmdk_extents: reads back what vmdk_descriptor writes, split lines merged")
{
    constexpr std::uint64_t two_gib = 2ull << 30;
    std::vector<vmdk_extent> const disk{{"../fsmeta/m.erofs", 8192},
                                        {"../layers/a.erofs", 2 * two_gib + 4096},
                                        {"../layers/a.erofs", 2 * two_gib + 4096}, // the same layer twice
                                        {"/abs/b c.erofs", two_gib},
                                        {"../layers/a.erofs", 512}};
    std::string const text = vmdk_descriptor(disk);
    CHECK(parse_vmdk_extents(text) == disk);
    // CRLF line ends and other access words are read too.
    std::string crlf;
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    CHECK(parse_vmdk_extents(crlf) == disk);
    CHECK(parse_vmdk_extents("# Disk DescriptorFile\nRDONLY 8 FLAT \"x\" 0\nNOACCESS 1 FLAT \"y\" 0") ==
          std::vector<vmdk_extent>{{"x", 4096}, {"y", 512}});
}

TEST_CASE("parse_vmdk_extents: rejects malformed extent lines with the line number")
{
    auto reason = [](std::string const& text) {
        error_code ec;
        std::string why;
        auto const v = parse_vmdk_extents(text, ec, &why);
        CHECK(v.empty());
        CHECK(ec == error::invalid_argument);
        return why;
    };
    std::string const head = "# Disk DescriptorFile\nversion=1\n";
    CHECK(reason("version=1\nRW 1 FLAT \"x\" 0\n").find("does not start with") != std::string::npos);
    CHECK(reason(head).find("has no extent") != std::string::npos);
    CHECK(reason(head + "RW x FLAT \"x\" 0\n").find("line 3: the sector count") != std::string::npos);
    CHECK(reason(head + "RW 0 FLAT \"x\" 0\n").find("line 3: the sector count") != std::string::npos);
    CHECK(reason(head + "RW 1 SPARSE \"x\"\n").find("\"SPARSE\" is not FLAT") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT x 0\n").find("not quoted") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x 0\n").find("no closing quote") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x\"\n").find("offset") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x\" -1\n").find("offset") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x\" 99999999999999999999999\n").find("offset") != std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x\" 0\nRW 1 FLAT \"x\" 5\n").find("line 4: \"x\" starts at sector 5") !=
          std::string::npos);
    CHECK(reason(head + "RW 1 FLAT \"x\" 7\n").find("starts at sector 7") != std::string::npos);
    try {
        parse_vmdk_extents("nope");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("Disk DescriptorFile") != std::string::npos);
    }
}

TEST_CASE("vmdk_descriptor: qemu-img reads the disk as the concatenation of the extents")
{
    if (!have_qemu_img()) return;
    temp_dir dir("vmdk");
    fs::create_directories(dir / "parts");
    fs::create_directories(dir / "vmdk");
    std::vector<std::string> const parts{noise(8192, 1), noise(3u << 20, 2), noise(40960, 3), noise(512, 4)};
    std::vector<vmdk_extent> extents;
    std::string expect;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string const name = "p" + std::to_string(i) + (i == 2 ? " with space" : "") + ".img";
        write_all(dir / "parts" / name, parts[i]);
        extents.push_back({"../parts/" + name, parts[i].size()});
        expect += parts[i];
    }
    SUBCASE("relative paths, resolved against the descriptor's directory")
    {
        write_all(dir / "vmdk" / "disk.vmdk", vmdk_descriptor(extents));
    }
    SUBCASE("absolute paths")
    {
        for (auto& e : extents) e.path = fs::weakly_canonical(dir / "vmdk" / e.path).string();
        write_all(dir / "vmdk" / "disk.vmdk", vmdk_descriptor(extents));
    }
    auto [irc, info] = run("qemu-img info --output=json " + (dir / "vmdk" / "disk.vmdk").string());
    REQUIRE_MESSAGE(irc == 0, info);
    CHECK_MESSAGE(info.find("\"format\": \"vmdk\"") != std::string::npos, info);
    CHECK_MESSAGE(info.find("\"virtual-size\": " + std::to_string(expect.size()) + ",") != std::string::npos, info);
    auto [crc, cout] =
        run("qemu-img convert -O raw " + (dir / "vmdk" / "disk.vmdk").string() + " " + (dir / "raw").string());
    REQUIRE_MESSAGE(crc == 0, cout);
    CHECK(read_all(dir / "raw") == expect);
}

TEST_CASE("vmdk_descriptor: qemu-img reads a split extent at sector offsets (sparse 4 GiB file)")
{
    if (!have_qemu_img()) return;
    temp_dir dir("vmdk-big");
    constexpr std::uint64_t two_gib = 2ull << 30;
    std::uint64_t const big_size = 2 * two_gib + 8192; // three lines
    {
        int const fd = ::open((dir / "big.img").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::ftruncate(fd, static_cast<off_t>(big_size)) == 0);
        // Marks on both sides of each line boundary, and at the very end.
        for (std::uint64_t off : {two_gib - 512, two_gib, 2 * two_gib - 512, 2 * two_gib, big_size - 512}) {
            std::string const mark = "mark@" + std::to_string(off);
            REQUIRE(::pwrite(fd, mark.data(), mark.size(), static_cast<off_t>(off)) ==
                    static_cast<ssize_t>(mark.size()));
        }
        ::close(fd);
    }
    std::string const head = noise(4096, 9), tail = noise(1024, 10);
    write_all(dir / "head.img", head);
    write_all(dir / "tail.img", tail);
    std::vector<vmdk_extent> const extents{{"head.img", head.size()}, {"big.img", big_size}, {"tail.img", tail.size()}};
    std::string const text = vmdk_descriptor(extents);
    CHECK(text.find("RW 16 FLAT \"big.img\" 8388608\n") != std::string::npos);
    write_all(dir / "disk.vmdk", text);
    std::uint64_t const total = head.size() + big_size + tail.size();
    auto [irc, info] = run("qemu-img info --output=json " + (dir / "disk.vmdk").string());
    REQUIRE_MESSAGE(irc == 0, info);
    CHECK_MESSAGE(info.find("\"format\": \"vmdk\"") != std::string::npos, info);
    CHECK_MESSAGE(info.find("\"virtual-size\": " + std::to_string(total) + ",") != std::string::npos, info);

    auto [crc, cout] = run("qemu-img convert -O raw " + (dir / "disk.vmdk").string() + " " + (dir / "raw").string());
    REQUIRE_MESSAGE(crc == 0, cout);
    CHECK(fs::file_size(dir / "raw") == total);
    int const fd = ::open((dir / "raw").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto at = [&](std::uint64_t off, std::size_t n) {
        std::string s(n, '\0');
        CHECK(::pread(fd, s.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
        return s;
    };
    CHECK(at(0, head.size()) == head);
    for (std::uint64_t off : {two_gib - 512, two_gib, 2 * two_gib - 512, 2 * two_gib, big_size - 512}) {
        std::string const mark = "mark@" + std::to_string(off);
        CHECK(at(head.size() + off, mark.size()) == mark);
    }
    CHECK(at(head.size() + 4096, 16) == std::string(16, '\0'));
    CHECK(at(head.size() + big_size, tail.size()) == tail);
    ::close(fd);
}
