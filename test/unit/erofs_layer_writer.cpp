#include <ocistore/erofs/layer_writer.hpp>

#include <ocistore/atomic_file.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/ingest.hpp>
#include <ocistore/tar_reader.hpp>

#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::memory_source;
using ocistore_test::tar_header;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
using ocistore_test::tree_node;
using ocistore_test::tree_snapshot;
namespace fs = std::filesystem;

static_assert(entry_sink<erofs_layer_writer>);

namespace {

constexpr std::int64_t t0 = 1700000000; // tar_header's default mtime

std::string sha(std::string const& s) { return digest_of<sha256_hasher>(s).str(); }

/// Deterministic pseudo-random bytes.
std::string noise(std::size_t n, std::uint64_t seed)
{
    std::string s(n, '\0');
    for (auto& c : s) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c = static_cast<char>(seed >> 56);
    }
    return s;
}

std::string read_all(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs a shell command; returns its exit status and output (stdout and stderr).
std::pair<int, std::string> run(std::string const& cmd)
{
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

/// Feeds every entry of `tar` to a writer over `image` (published through atomic_file).
layer_data_map build(std::string const& tar, fs::path const& image, erofs_layer_options options = {},
                     std::vector<build_warning>* warnings = nullptr, std::size_t chunk = 100000)
{
    atomic_file file(image, {.mode = 0644, .durable = false});
    erofs_layer_writer w(file.native_handle(), std::move(options));
    memory_source src(tar, chunk);
    basic_tar_reader<memory_source> reader(src);
    tar_entry e;
    while (reader.next(e)) w.add_entry(e, reader);
    auto map = w.finish();
    if (warnings) *warnings = w.warnings();
    file.commit();
    return map;
}

/// Feeds `tar` to a writer on a scratch file; returns the error of the first failing call.
std::pair<error_code, std::string> build_error(std::string const& tar)
{
    temp_dir dir("erofs-err");
    atomic_file file(dir / "x.erofs", {.mode = 0644, .durable = false});
    erofs_layer_writer w(file.native_handle());
    memory_source src(tar);
    basic_tar_reader<memory_source> reader(src);
    tar_entry e;
    error_code ec;
    std::string why;
    while (reader.next(e)) {
        w.add_entry(e, reader, ec, &why);
        if (ec) return {ec, why};
    }
    w.finish(ec, &why);
    return {ec, why};
}

tar_header hdr(std::uint32_t mode = 0644, char type = '0')
{
    tar_header h;
    h.mode = mode;
    h.type = type;
    return h;
}

/// A layer with every entry type and the awkward cases, and the tree it must produce.
struct rich_layer {
    tar_writer tar;
    tree_snapshot expect;
    std::string big = noise(5u << 20, 7);

    void node(std::string const& path, char type, std::uint32_t mode, std::uint64_t size = 0,
              std::string const& content = {})
    {
        tree_node n;
        n.type = type;
        n.mode = type == 'l' ? 0 : mode;
        n.mtime = t0;
        n.nlink = 1;
        n.size = size;
        if (type == 'f') n.content = sha(content);
        expect[path] = n;
    }
    void file(std::string const& path, std::string const& content, std::uint32_t mode = 0644)
    {
        tar.file(path, content, hdr(mode));
        node(path, 'f', mode, content.size(), content);
    }
    void dir(std::string const& path, std::uint32_t mode = 0755)
    {
        tar.dir(path + "/", mode);
        node(path, 'd', mode);
    }

    rich_layer()
    {
        tar.dir("./", 0711);
        node(".", 'd', 0711);
        dir("etc");
        tar.pax({{"SCHILY.xattr.user.dir", "1"}});
        tar.dir("etc/conf/", 0700);
        node("etc/conf", 'd', 0700);
        expect["etc/conf"].xattrs = {{"user.dir", "1"}};
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        tar.hardlink("etc/passwd.link", "etc/passwd");
        tar.hardlink("etc/conf/another", "etc/passwd");
        expect["etc/passwd.link"] = expect["etc/conf/another"] = expect["etc/passwd"];
        for (auto p : {"etc/passwd", "etc/passwd.link", "etc/conf/another"}) {
            expect[p].nlink = 3;
            expect[p].link_group = "etc/conf/another";
        }

        dir("bin");
        tar.symlink("bin/sh", "/bin/busybox");
        node("bin/sh", 'l', 0);
        expect["bin/sh"].link = "/bin/busybox";
        std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
        tar.pax({{"SCHILY.xattr.security.capability", cap}, {"SCHILY.xattr.user.note", "ping me"}});
        file("bin/ping", "ELF...ping", 04755);
        expect["bin/ping"].xattrs = {{"security.capability", cap}, {"user.note", "ping me"}};

        dir("dev");
        auto dev = [&](std::string const& p, char type, std::uint32_t ma, std::uint32_t mi) {
            tar_header h = hdr(0666, type);
            h.name = p;
            h.devmajor = ma;
            h.devminor = mi;
            tar.header(h);
            node(p, type == '3' ? 'c' : 'b', 0666);
            expect[p].major = ma;
            expect[p].minor = mi;
        };
        dev("dev/null", '3', 1, 3);
        dev("dev/sda", '4', 8, 0);
        dev("dev/wide", '3', 300, 70000);
        tar.fifo("dev/fifo");
        node("dev/fifo", 'p', 0644);

        file("empty", "");
        file("big.bin", big);
        file("exact.bin", noise(8192, 3));

        dir("long");
        std::string name255(255, 'n');
        tar.pax({{"path", "long/" + name255}});
        tar.file("placeholder", "long name", hdr());
        node("long/" + name255, 'f', 0644, 9, "long name");
        std::string t300(300, 't'), t4095(4095, 'u');
        for (auto [p, t] : {std::pair{"long/l300", &t300}, std::pair{"long/l4095", &t4095}}) {
            tar.pax({{"linkpath", *t}});
            tar.symlink(p, "x");
            node(p, 'l', 0);
            expect[p].link = *t;
        }

        dir("owners");
        tar.pax({{"uid", "100000"}, {"gid", "70000"}});
        file("owners/big-ids", "ids");
        expect["owners/big-ids"].uid = 100000;
        expect["owners/big-ids"].gid = 70000;
        tar.pax({{"mtime", "1700000000.123456789"}});
        file("owners/nsec", "nsec");
        expect["owners/nsec"].mtime_nsec = 123456789;
        tar_header old = hdr();
        old.mtime = 1600000000;
        tar.file("owners/old", "old", old);
        node("owners/old", 'f', 0644, 3, "old");
        expect["owners/old"].mtime = 1600000000;

        tar.file("implicit/a/b/file", "deep", hdr());
        node("implicit", 'd', 0755);
        node("implicit/a", 'd', 0755);
        node("implicit/a/b", 'd', 0755);
        node("implicit/a/b/file", 'f', 0644, 4, "deep");

        dir("wh");
        tar.file("wh/.wh.gone", "", hdr(0));
        node("wh/gone", 'c', 0);
        dir("wh/opq");
        tar.file("wh/opq/.wh..wh..opq", "", hdr(0));
        expect["wh/opq"].xattrs = {{"trusted.overlay.opaque", "y"}};
        file("wh/opq/keep", "kept");

        tar.file("dup", "first", hdr());
        file("dup", "second");
        dir("dupdir", 0700);
        file("dupdir/x", "x");
        dir("dupdir", 0750);
        dir("rep");
        tar.file("rep/child", "gone", hdr());
        file("rep", "now a file");

        dir("sort");
        for (auto n : {"-a", "!b", "a", "..x", ".hidden", "~z"}) file(std::string("sort/") + n, n);

        dir("many");
        for (int i = 0; i < 3000; ++i) {
            char n[64];
            std::snprintf(n, sizeof n, "many/entry-with-a-longer-name-%04d", i);
            file(n, "");
        }
        tar.end();
    }
};

/// Unmounts on destruction.
struct mount_guard {
    std::string dir;
    bool mounted = false;
    ~mount_guard()
    {
        if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

bool can_mount()
{
    if (::geteuid() != 0 || !fs::exists("/dev/loop-control")) {
        MESSAGE("not root or no loop devices: kernel mount checks skipped");
        return false;
    }
    return true;
}

} // namespace

TEST_CASE("erofs_layer_writer: an image of every entry type passes fsck.erofs and extracts to the layer")
{
    temp_dir dir("erofs-layer");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    std::vector<build_warning> warnings;
    auto map = build(layer.tar.str(), image, {}, &warnings);
    CHECK(warnings.empty());

    auto size = fs::file_size(image);
    CHECK(size % 4096 == 0);
    CHECK(size / 4096 == map.total_blocks);

    auto [rc, out] = run("fsck.erofs " + image.string());
    INFO(out);
    CHECK(rc == 0);

    auto [xrc, xout] = run("fsck.erofs --extract=" + (dir / "x").string() + " " + image.string());
    INFO(xout);
    REQUIRE(xrc == 0);
    auto got = ocistore_test::snapshot_tree(dir / "x");
    // What erofs-utils 1.5 --extract loses (the kernel mount test checks all of it): xattrs,
    // hardlinks (each name becomes a copy), setuid bits (chown after chmod clears them).
    ocistore_test::tree_compare how;
    how.xattrs = false;
    how.nlink = false;
    auto expect = layer.expect;
    for (auto& [p, n] : expect) n.link_group.clear();
    expect["bin/ping"].mode = 0755;
    std::string diff = ocistore_test::diff_trees(expect, got, how);
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("erofs_layer_writer: the kernel mounts the image and sees every attribute")
{
    if (!can_mount()) return;
    temp_dir dir("erofs-mount");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    build(layer.tar.str(), image);
    fs::create_directory(dir / "mnt");
    mount_guard guard{(dir / "mnt").string()};
    auto [rc, out] = run("mount -t erofs -o loop,ro " + image.string() + " " + guard.dir);
    if (rc != 0) {
        MESSAGE("mount -t erofs failed, kernel checks skipped: " << out);
        return;
    }
    guard.mounted = true;
    auto got = ocistore_test::snapshot_tree(guard.dir);
    std::string diff = ocistore_test::diff_trees(layer.expect, got);
    CHECK_MESSAGE(diff.empty(), diff);
    // Directory link counts: 2 + subdirectories.
    CHECK(fs::hard_link_count(dir / "mnt" / "etc") == 3);
    CHECK(fs::hard_link_count(dir / "mnt") == 2 + 10);
}

TEST_CASE("erofs_layer_writer: output is deterministic and the superblock is well formed")
{
    temp_dir dir("erofs-det");
    rich_layer layer;
    std::vector<std::byte> seed{std::byte{1}, std::byte{2}, std::byte{3}};
    auto m1 = build(layer.tar.str(), dir / "a.erofs", {seed});
    auto m2 = build(layer.tar.str(), dir / "b.erofs", {seed}, nullptr, 7); // 7-byte reads
    build(layer.tar.str(), dir / "c.erofs", {{std::byte{9}}});
    std::string a = read_all(dir / "a.erofs"), b = read_all(dir / "b.erofs"), c = read_all(dir / "c.erofs");
    CHECK(a == b);
    CHECK(m1.files == m2.files);
    REQUIRE(a.size() == c.size());
    CHECK(a.compare(1024 + 0x30, 16, c, 1024 + 0x30, 16) != 0); // another seed, another UUID
    CHECK(a.substr(4096) == c.substr(4096));

    auto const* sb = reinterpret_cast<std::byte const*>(a.data()) + 1024;
    CHECK(erofs::load_le32(sb) == erofs::magic);
    CHECK(erofs::load_le32(sb + 0x08) == erofs::feature_compat_sb_chksum);
    CHECK(std::to_integer<int>(sb[0x0C]) == 12);
    CHECK(erofs::load_le16(sb + 0x0E) == 0);             // root nid
    CHECK(erofs::load_le64(sb + 0x18) == std::uint64_t(t0)); // the most common mtime
    CHECK(erofs::load_le32(sb + 0x24) * 4096ull == a.size());
    CHECK(erofs::load_le32(sb + 0x50) == 0);             // no incompatible features
    std::string copy = a.substr(1024, 3072);
    std::memset(copy.data() + 4, 0, 4);
    CHECK(erofs::crc32c(0xFFFFFFFFu, std::as_bytes(std::span(copy.data(), copy.size()))) == erofs::load_le32(sb + 4));
    // A corrupted superblock fails fsck.
    std::string bad = a;
    bad[1024 + 0x10] ^= 1;
    {
        std::ofstream(dir / "bad.erofs", std::ios::binary) << bad;
    }
    if (can_mount()) { // fsck.erofs 1.5 does not verify the checksum; the kernel does
        fs::create_directory(dir / "mnt");
        mount_guard guard{(dir / "mnt").string()};
        auto [brc, bout] = run("mount -t erofs -o loop,ro " + (dir / "bad.erofs").string() + " " + guard.dir);
        if (brc == 0) ::umount2(guard.dir.c_str(), MNT_DETACH);
        CHECK_MESSAGE(brc != 0, "a superblock with a wrong checksum was mounted");
        auto [grc, gout] = run("mount -t erofs -o loop,ro " + (dir / "a.erofs").string() + " " + guard.dir);
        guard.mounted = grc == 0;
        CHECK_MESSAGE(grc == 0, gout);
    }

    auto [rc, out] = run("dump.erofs -s " + (dir / "a.erofs").string());
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("Filesystem blocks:                            " + std::to_string(a.size() / 4096)) !=
          std::string::npos);
    CHECK(out.find("Filesystem root nid:                          0") != std::string::npos);
    CHECK(out.find("sb_csum") != std::string::npos);
}

TEST_CASE("erofs_layer_writer: the data map locates every regular file's bytes")
{
    temp_dir dir("erofs-map");
    rich_layer layer;
    auto map = build(layer.tar.str(), dir / "l.erofs");
    std::string img = read_all(dir / "l.erofs");
    std::size_t regular = 0;
    for (auto const& [p, n] : layer.expect)
        if (n.type == 'f') ++regular;
    CHECK(map.files.size() == regular);
    for (auto const& [p, ext] : map.files) {
        INFO(p);
        auto const& n = layer.expect.at(p);
        REQUIRE(ext.size == n.size);
        if (ext.size == 0) {
            CHECK(ext.start_block == erofs::null_addr);
            continue;
        }
        REQUIRE(std::uint64_t(ext.start_block) * 4096 + ext.size <= img.size());
        CHECK(sha(img.substr(std::size_t(ext.start_block) * 4096, ext.size)) == n.content);
        // Block-aligned and zero-padded to the block end.
        std::size_t end = std::size_t(ext.start_block) * 4096 + ext.size;
        CHECK(img.find_first_not_of('\0', end) >= (end + 4095) / 4096 * 4096);
    }
    CHECK(map.files.at("etc/passwd") == map.files.at("etc/conf/another"));
    CHECK(map.files.at("big.bin").size == 5u << 20);
    CHECK(!map.files.count("rep/child"));
}

TEST_CASE("erofs_layer_writer: compact inodes where metadata fits, extended otherwise")
{
    temp_dir dir("erofs-inode");
    rich_layer layer;
    auto image = dir / "l.erofs";
    build(layer.tar.str(), image);
    std::string img = read_all(image);
    auto const* sb = reinterpret_cast<std::byte const*>(img.data()) + 1024;
    std::uint64_t meta = erofs::load_le32(sb + 0x28) * 4096ull;
    auto format_of = [&](std::string const& path) {
        auto [rc, out] = run("dump.erofs --path=/" + path + " " + image.string());
        INFO(out);
        REQUIRE(rc == 0);
        auto pos = out.find("NID: ");
        REQUIRE(pos != std::string::npos);
        std::uint64_t nid = std::stoull(out.substr(pos + 5));
        return std::to_integer<int>(static_cast<std::byte>(img[meta + nid * 32]));
    };
    CHECK((format_of("etc/passwd") & 1) == 0);
    CHECK((format_of("owners/big-ids") & 1) == 1);
    CHECK((format_of("owners/nsec") & 1) == 1);
    CHECK((format_of("owners/old") & 1) == 1);
    CHECK(format_of("big.bin") == 0);            // compact, FLAT_PLAIN
    CHECK(format_of("bin/sh") == 2 * 2);         // compact, FLAT_INLINE
    CHECK(format_of("long/l4095") == 0);         // no room to inline: a block
    CHECK((format_of("many") >> 1) == 2);        // spans blocks, inline tail
}

TEST_CASE("erofs_layer_writer: an empty layer is a valid image")
{
    temp_dir dir("erofs-empty");
    tar_writer t;
    t.end();
    auto map = build(t.str(), dir / "e.erofs");
    CHECK(map.files.empty());
    CHECK(fs::file_size(dir / "e.erofs") == 4096u * map.total_blocks);
    CHECK(run("fsck.erofs " + (dir / "e.erofs").string()).first == 0);
}

TEST_CASE("erofs_layer_writer: malformed or unrepresentable entries fail with a reason")
{
    SUBCASE("hardlink to nothing")
    {
        tar_writer t;
        t.hardlink("a", "missing");
        t.end();
        auto [ec, why] = build_error(t.str());
        CHECK(ec == error::invalid_archive);
        CHECK(why.find("\"missing\"") != std::string::npos);
    }
    SUBCASE("hardlink to a directory")
    {
        tar_writer t;
        t.dir("d/");
        t.hardlink("a", "d");
        t.end();
        auto [ec, why] = build_error(t.str());
        CHECK(ec == error::invalid_archive);
        CHECK(why.find("directory") != std::string::npos);
    }
    SUBCASE("parent is a file")
    {
        tar_writer t;
        t.file("f", "x");
        t.file("f/g", "y");
        t.end();
        auto [ec, why] = build_error(t.str());
        CHECK(ec == error::invalid_archive);
        CHECK(why.find("parent \"f\" is not a directory") != std::string::npos);
    }
    SUBCASE("name over 255 bytes")
    {
        tar_writer t;
        t.pax({{"path", "d/" + std::string(256, 'n')}});
        t.file("x", "y");
        t.end();
        auto [ec, why] = build_error(t.str());
        CHECK(ec == error::unsupported_entry);
        CHECK(why.find("256 bytes") != std::string::npos);
    }
    SUBCASE("uid beyond 32 bits")
    {
        tar_writer t;
        t.pax({{"uid", "4294967296"}});
        t.file("x", "y");
        t.end();
        auto [ec, why] = build_error(t.str());
        CHECK(ec == error::unsupported_entry);
        CHECK(why.find("uid 4294967296") != std::string::npos);
    }
    SUBCASE("root that is not a directory")
    {
        temp_dir dir("erofs-root");
        atomic_file file(dir / "x.erofs", {.mode = 0644, .durable = false});
        erofs_layer_writer w(file.native_handle());
        tar_entry e;
        e.path = ".";
        e.type = entry_type::symlink;
        e.link_target = "x";
        error_code ec;
        std::string why;
        w.add_entry(e, {}, ec, &why);
        CHECK(ec == error::invalid_archive);
        CHECK(why.find("the root is a symlink") != std::string::npos);
        CHECK_THROWS_WITH_AS(w.add_entry(e, {}), doctest::Contains("the root is a symlink"), system_error);
    }
    SUBCASE("a dot-dot component from a source that does not normalise")
    {
        temp_dir dir("erofs-dotdot");
        atomic_file file(dir / "x.erofs", {.mode = 0644, .durable = false});
        erofs_layer_writer w(file.native_handle());
        tar_entry e;
        e.path = "a/../b";
        error_code ec;
        std::string why;
        w.add_entry(e, {}, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find("\"..\"") != std::string::npos);
    }
}

TEST_CASE("erofs_layer_writer: short data, failures are sticky, and calls after finish are refused")
{
    temp_dir dir("erofs-state");
    atomic_file file(dir / "x.erofs", {.mode = 0644, .durable = false});
    erofs_layer_writer w(file.native_handle());
    tar_entry e;
    e.path = "f";
    e.size = 10;
    std::string five = "12345";
    memory_source src(five);
    error_code ec;
    std::string why;
    w.add_entry(e, src, ec, &why);
    CHECK(ec == error::truncated);
    CHECK(why.find("5 of 10 bytes") != std::string::npos);
    e.path = "g";
    e.size = 0;
    w.add_entry(e, {}, ec, &why);
    CHECK(ec == error::truncated); // sticky
    w.finish(ec, &why);
    CHECK(ec == error::truncated);
    CHECK_THROWS_AS(w.finish(), system_error);

    erofs_layer_writer ok(file.native_handle());
    ok.finish(ec);
    CHECK(!ec);
    ok.add_entry(e, {}, ec, &why);
    CHECK(ec == error::invalid_argument);
    ok.finish(ec, &why);
    CHECK(ec == error::invalid_argument);
    CHECK(why.find("twice") != std::string::npos);
}

TEST_CASE("erofs_layer_writer: unsupported xattrs are dropped with a warning")
{
    temp_dir dir("erofs-warn");
    tar_writer t;
    t.pax({{"SCHILY.xattr.system.nfs4_acl", "z"}, {"SCHILY.xattr.user.ok", "1"}});
    t.file("f", "x");
    t.file(".wh..wh.plnk", "");
    t.end();
    std::vector<build_warning> warnings;
    build(t.str(), dir / "w.erofs", {}, &warnings);
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0].path == "f");
    CHECK(warnings[0].message.find("system.nfs4_acl") != std::string::npos);
    CHECK(warnings[1].path == ".wh..wh.plnk");
    CHECK(run("fsck.erofs " + (dir / "w.erofs").string()).first == 0);
}

TEST_CASE("erofs_layer_writer: ingest_layer drives it as an entry sink")
{
    temp_dir dir("erofs-ingest");
    tar_writer t;
    t.file("a/b", "hello");
    t.end();
    atomic_file file(dir / "i.erofs", {.mode = 0644, .durable = false});
    erofs_layer_writer w(file.native_handle());
    memory_source src(t.str());
    ingest_options opt;
    opt.compression = layer_compression::none;
    auto r = ingest_layer<sha256_hasher>(src, w, opt);
    CHECK(r.entries == 1);
    auto map = w.finish();
    file.commit();
    CHECK(map.files.at("a/b").size == 5);
    CHECK(run("fsck.erofs " + (dir / "i.erofs").string()).first == 0);
}
