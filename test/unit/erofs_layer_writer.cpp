#include <ocistore/erofs/layer_writer.hpp>

#include <ocistore/atomic_file.hpp>
#include <ocistore/detail/erofs_metadata.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/ingest.hpp>
#include <ocistore/tar_reader.hpp>

#include <support/erofs_test.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::build_layer;
using ocistore_test::hdr;
using ocistore_test::memory_source;
using ocistore_test::mount_guard;
using ocistore_test::noise;
using ocistore_test::read_all;
using ocistore_test::run;
using ocistore_test::sha;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
namespace fs = std::filesystem;

static_assert(entry_sink<erofs_layer_writer>);

namespace {

constexpr std::int64_t t0 = 1700000000; // tar_header's default mtime

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

/// A layer with every entry type and the awkward cases, and the tree it must produce.
struct rich_layer : ocistore_test::layer_spec {
    std::string big = noise(5u << 20, 7);

    rich_layer()
    {
        tar.dir("./", 0711);
        node(".", 'd', 0711);
        hardlinks({{"user.dir", "1"}});

        dir("bin");
        tar.symlink("bin/sh", "/bin/busybox");
        node("bin/sh", 'l', 0);
        expect["bin/sh"].link = "/bin/busybox";
        std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
        tar.pax({{"SCHILY.xattr.security.capability", cap}, {"SCHILY.xattr.user.note", "ping me"}});
        file("bin/ping", "ELF...ping", 04755);
        expect["bin/ping"].xattrs = {{"security.capability", cap}, {"user.note", "ping me"}};

        devices();

        file("empty", "");
        file("big.bin", big);
        file("exact.bin", noise(8192, 3));

        long_names();
        owners();
        implicit_dirs();
        whiteouts();

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

        dir("shared"); // xattrs carried by several inodes go to the shared area
        for (int i = 0; i < 4; ++i) {
            std::string p = "shared/f" + std::to_string(i);
            tar.pax({{"SCHILY.xattr.user.shared", "one value for many files"},
                     {"SCHILY.xattr.trusted.tag", "shared-trusted-value"},
                     {"SCHILY.xattr.user.own", std::to_string(i)}});
            file(p, "s" + std::to_string(i));
            expect[p].xattrs = {{"trusted.tag", "shared-trusted-value"},
                                {"user.own", std::to_string(i)},
                                {"user.shared", "one value for many files"}};
        }

        dir("many");
        for (int i = 0; i < 3000; ++i) {
            char n[64];
            std::snprintf(n, sizeof n, "many/entry-with-a-longer-name-%04d", i);
            file(n, "");
        }
        tar.end();
    }
};

} // namespace

TEST_CASE("erofs_layer_writer: an image of every entry type passes fsck.erofs and extracts to the layer")
{
    temp_dir dir("erofs-layer");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    std::vector<build_warning> warnings;
    auto map = build_layer(layer.tar.str(), image, {}, &warnings);
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
    // What --extract loses, the kernel mount test checks.
    std::string diff = ocistore_test::diff_extracted(layer.expect, dir / "x");
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("erofs_layer_writer: the kernel mounts the image and sees every attribute")
{
    temp_dir dir("erofs-mount");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    build_layer(layer.tar.str(), image);
    mount_guard guard{(dir / "mnt").string()};
    if (auto why = ocistore_test::mount_image(guard, image); !why.empty()) {
        MESSAGE(why << ": kernel checks skipped");
        return;
    }
    auto got = ocistore_test::snapshot_tree(guard.dir);
    std::string diff = ocistore_test::diff_trees(layer.expect, got);
    CHECK_MESSAGE(diff.empty(), diff);
    // Directory link counts: 2 + subdirectories.
    CHECK(fs::hard_link_count(dir / "mnt" / "etc") == 3);
    CHECK(fs::hard_link_count(dir / "mnt") == 2 + 11);
}

TEST_CASE("erofs_layer_writer: output is deterministic and the superblock is well formed")
{
    temp_dir dir("erofs-det");
    rich_layer layer;
    std::vector<std::byte> seed{std::byte{1}, std::byte{2}, std::byte{3}};
    auto m1 = build_layer(layer.tar.str(), dir / "a.erofs", {seed});
    auto m2 = build_layer(layer.tar.str(), dir / "b.erofs", {seed}, nullptr, 7); // 7-byte reads
    build_layer(layer.tar.str(), dir / "c.erofs", {{std::byte{9}}});
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
    CHECK(erofs::load_le16(sb + 0x0E) == 3);             // root nid: after the implicit-directory record (32 + 16 + 3·8 bytes)
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
    if (ocistore_test::loop_mount_possible()) { // fsck.erofs 1.5 does not verify the checksum; the kernel does
        fs::create_directory(dir / "mnt");
        mount_guard guard{(dir / "mnt").string()};
        auto [brc, bout] = guard.mount(dir / "bad.erofs");
        if (brc == 0) ::umount2(guard.dir.c_str(), MNT_DETACH), guard.mounted = false;
        CHECK_MESSAGE(brc != 0, "a superblock with a wrong checksum was mounted");
        auto [grc, gout] = guard.mount(dir / "a.erofs");
        CHECK_MESSAGE(grc == 0, gout);
    }

    auto [rc, out] = run("dump.erofs -s " + (dir / "a.erofs").string());
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("Filesystem blocks:                            " + std::to_string(a.size() / 4096)) !=
          std::string::npos);
    CHECK(out.find("Filesystem root nid:                          3") != std::string::npos);
    CHECK(out.find("sb_csum") != std::string::npos);
}

TEST_CASE("erofs_layer_writer: the data map locates every regular file's bytes")
{
    temp_dir dir("erofs-map");
    rich_layer layer;
    auto map = build_layer(layer.tar.str(), dir / "l.erofs");
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

TEST_CASE("erofs_layer_writer: data gathered into large writes lands at its blocks across every write boundary")
{
    // The writer gathers file data into 256 KiB writes: files that end exactly at, straddle,
    // or span several of those boundaries, between runs of small files, must each land at the
    // blocks the data map gives, zero-padded, whatever the size of the source's reads.
    temp_dir dir("erofs-stage");
    tar_writer tar;
    std::vector<std::pair<std::string, std::string>> files; // archive order
    std::size_t const sizes[] = {1,          4095,           4096,       4097, 256 * 1024 - 4096, 256 * 1024,
                                 256 * 1024 + 1, 300 * 1024, 1,    512 * 1024 + 17,   3,          1u << 20,
                                 0,          255 * 1024,     8191};
    std::uint64_t seed = 1;
    for (std::size_t size : sizes) files.emplace_back("f" + std::to_string(seed), noise(size, seed)), ++seed;
    for (std::size_t i = 0; i < 200; ++i) // small files: many per write
        files.emplace_back("small/s" + std::to_string(i), noise(37 * i + 1, seed++));
    for (auto const& [name, content] : files) tar.file(name, content);
    tar.end();

    std::string first;
    for (std::size_t chunk : {std::size_t(1000), std::size_t(4096), std::size_t(100000), std::size_t(1) << 22}) {
        INFO("source reads of " << chunk << " bytes");
        auto map = build_layer(tar.str(), dir / "l.erofs", {}, nullptr, chunk);
        std::string img = read_all(dir / "l.erofs");
        CHECK(img.size() % 4096 == 0);
        CHECK(map.files.size() == files.size());
        std::uint32_t next = 1;
        for (auto const& [name, content] : files) {
            INFO(name);
            auto const& ext = map.files.at(name);
            REQUIRE(ext.size == content.size());
            if (content.empty()) {
                CHECK(ext.start_block == erofs::null_addr);
                continue;
            }
            CHECK(ext.start_block == next); // contiguous, in archive order
            next += static_cast<std::uint32_t>((content.size() + 4095) / 4096);
            std::size_t const at = std::size_t(ext.start_block) * 4096, end = at + content.size();
            REQUIRE(end <= img.size());
            CHECK(img.compare(at, content.size(), content) == 0);
            CHECK(img.find_first_not_of('\0', end) >= (end + 4095) / 4096 * 4096); // zero padding
        }
        if (first.empty()) first = img;
        else CHECK(img == first);
    }
    auto [rc, out] = run("fsck.erofs " + (dir / "l.erofs").string() + " 2>&1");
    INFO(out);
    CHECK(rc == 0);
}

TEST_CASE("erofs_layer_writer: compact inodes where metadata fits, extended otherwise")
{
    temp_dir dir("erofs-inode");
    rich_layer layer;
    auto image = dir / "l.erofs";
    build_layer(layer.tar.str(), image);
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

TEST_CASE("erofs_layer_writer: shared xattrs and the implicit-directory record")
{
    temp_dir dir("erofs-shared");
    rich_layer layer;
    build_layer(layer.tar.str(), dir / "l.erofs");
    auto r = erofs_image_reader::open(dir / "l.erofs");
    std::map<std::string, erofs_inode_info> nodes;
    r.walk([&](std::string_view path, erofs_inode_info const& i, error_code&) { nodes[std::string(path)] = i; });

    // user.shared and trusted.tag are stored once; each file keeps two ids and its own user.own inline.
    CHECK(r.info().xattr_blkaddr == r.info().meta_blkaddr);
    CHECK(nodes.at("shared/f2").xattr_ibody_size == 12 + 2 * 4 + erofs::xattr_entry_size(3, 1));
    auto xs = nodes.at("shared/f2").xattrs;
    std::sort(xs.begin(), xs.end());
    CHECK(xs == decltype(xs){{"trusted.tag", "shared-trusted-value"}, {"user.own", "2"}, {"user.shared", "one value for many files"}});
    // Carried once: inline.
    CHECK(nodes.at("bin/ping").xattr_ibody_size == 12 + erofs::xattr_entry_size(10, 20) + erofs::xattr_entry_size(4, 7));

    // NID 0 is a regular inode no directory names, listing the directories no entry described.
    REQUIRE(r.info().root_nid != 0);
    auto rec = r.inode(0);
    REQUIRE(rec.is_regular());
    std::string bytes(static_cast<std::size_t>(rec.size), '\0');
    CHECK(r.read(rec, 0, std::as_writable_bytes(std::span(bytes.data(), bytes.size()))) == bytes.size());
    std::vector<std::uint64_t> nids;
    REQUIRE(detail::erofs_meta::parse_implicit_record(std::as_bytes(std::span(bytes.data(), bytes.size())), nids));
    CHECK(nids == std::vector<std::uint64_t>{nodes.at("implicit").nid, nodes.at("implicit/a").nid,
                                             nodes.at("implicit/a/b").nid});
    for (auto const& [p, i] : nodes) CHECK(i.nid != 0);

    // Every directory described (and a "./" entry): no record, the root at NID 0.
    tar_writer t;
    t.dir("./");
    t.dir("d/");
    t.file("d/f", "x");
    t.end();
    build_layer(t.str(), dir / "explicit.erofs");
    CHECK(erofs_image_reader::open(dir / "explicit.erofs").info().root_nid == 0);
    // No "./" entry: the root itself is listed.
    tar_writer u;
    u.file("f", "x");
    u.end();
    build_layer(u.str(), dir / "noroot.erofs");
    auto nr = erofs_image_reader::open(dir / "noroot.erofs");
    auto nrec = nr.inode(0);
    std::string nbytes(static_cast<std::size_t>(nrec.size), '\0');
    nr.read(nrec, 0, std::as_writable_bytes(std::span(nbytes.data(), nbytes.size())));
    REQUIRE(detail::erofs_meta::parse_implicit_record(std::as_bytes(std::span(nbytes.data(), nbytes.size())), nids));
    CHECK(nids == std::vector<std::uint64_t>{nr.info().root_nid});
    CHECK(run("fsck.erofs " + (dir / "noroot.erofs").string()).first == 0);
}

TEST_CASE("erofs_layer_writer: every whiteout of a large layer survives")
{
    temp_dir dir("erofs-wh");
    tar_writer t;
    for (int i = 0; i < 300; ++i) { // whiteouts at every node index, so some grow the node table
        if (i % 3 == 0) t.file("d/f" + std::to_string(i), "x");
        t.file("d/.wh.w" + std::to_string(i), "");
    }
    t.end();
    build_layer(t.str(), dir / "w.erofs");
    auto r = erofs_image_reader::open(dir / "w.erofs");
    int whiteouts = 0, files = 0;
    r.walk([&](std::string_view path, erofs_inode_info const& i, error_code&) {
        if (!path.starts_with("d/")) return;
        if (i.type() == erofs::s_ifchr && i.rdev == 0 && path.substr(2, 1) == "w") ++whiteouts;
        if (i.is_regular()) ++files;
    });
    CHECK(whiteouts == 300);
    CHECK(files == 100);
}

TEST_CASE("erofs_layer_writer: an empty layer is a valid image")
{
    temp_dir dir("erofs-empty");
    tar_writer t;
    t.end();
    auto map = build_layer(t.str(), dir / "e.erofs");
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
    SUBCASE("a whiteout of '.' or '..' (found by the tar_to_erofs fuzz target)")
    {
        for (std::string name : {"d/.wh..", "d/.wh..."}) {
            CAPTURE(name);
            temp_dir dir("erofs-whdot");
            atomic_file file(dir / "x.erofs", {.mode = 0644, .durable = false});
            erofs_layer_writer w(file.native_handle());
            tar_entry e;
            e.path = name;
            error_code ec;
            std::string why;
            w.add_entry(e, {}, ec, &why);
            CHECK(ec == error::unsafe_path);
            CHECK(why.find("whiteout") != std::string::npos);
        }
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
    build_layer(t.str(), dir / "w.erofs", {}, &warnings);
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
