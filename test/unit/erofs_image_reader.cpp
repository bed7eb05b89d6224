#include <ocistore/erofs/image_reader.hpp>

#include <ocistore/atomic_file.hpp>
#include <ocistore/erofs/fsmeta_writer.hpp>
#include <ocistore/erofs/layer_writer.hpp>

#include <support/erofs_test.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::build_layer;
using ocistore_test::hdr;
using ocistore_test::mount_guard;
using ocistore_test::noise;
using ocistore_test::read_all;
using ocistore_test::run;
using ocistore_test::sha;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
using ocistore_test::tree_snapshot;
using ocistore_test::write_all;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1700000000; // tar_header's default mtime

bool have_tool(char const* name)
{
    if (run(std::string("command -v ") + name).first == 0) return true;
    MESSAGE(name << " is not installed: its cross-check is skipped");
    return false;
}

/// The whole content of `n`, read in `piece`-byte steps (so reads cross block and chunk edges).
std::string content_of(erofs_image_reader const& r, erofs_inode_info const& n, std::span<int const> devices = {},
                       std::size_t piece = 10007)
{
    std::string out(static_cast<std::size_t>(n.size), '\0');
    std::uint64_t off = 0;
    while (off < n.size) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(piece, n.size - off));
        auto got = r.read(n, off, std::as_writable_bytes(std::span(out.data() + off, want)), devices);
        REQUIRE(got == want);
        off += got;
    }
    std::byte extra[4];
    CHECK(r.read(n, n.size, extra, devices) == 0);
    return out;
}

/// What the reader sees, in tree_snapshot form; `inodes` receives each path's inode.
tree_snapshot snapshot_image(erofs_image_reader const& r, std::span<int const> devices = {},
                             std::map<std::string, erofs_inode_info>* inodes = nullptr)
{
    return ocistore_test::snapshot_erofs(
        r, [&](erofs_inode_info const& n) { return content_of(r, n, devices); }, inodes);
}

std::string const acl_access("\x02\x00\x00\x00"
                             "\x01\x00\x06\x00\xff\xff\xff\xff"
                             "\x04\x00\x04\x00\xff\xff\xff\xff"
                             "\x20\x00\x04\x00\xff\xff\xff\xff",
                             28);
std::string const capability("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

/// A layer with every entry type the writer produces, and the tree the reader must see.
struct rich_layer : ocistore_test::layer_spec {
    std::string big = noise((1u << 20) + 123, 7);

    rich_layer()
    {
        tar.dir("./", 0711);
        node(".", 'd', 0711);
        hardlinks({{"user.dir", "1"}, {"trusted.t", "tv"}});

        dir("bin");
        tar.symlink("bin/sh", "/bin/busybox");
        node("bin/sh", 'l', 0);
        expect["bin/sh"].link = "/bin/busybox";
        tar.pax({{"SCHILY.xattr.security.capability", capability}, {"SCHILY.xattr.user.note", "ping me"}});
        file("bin/ping", "ELF...ping", 04755);
        expect["bin/ping"].xattrs = {{"security.capability", capability}, {"user.note", "ping me"}};
        tar.pax({{"SCHILY.xattr.system.posix_acl_access", acl_access}});
        file("bin/acl", "acl", 0640);
        expect["bin/acl"].xattrs = {{"system.posix_acl_access", acl_access}};

        devices();

        file("empty", "");
        file("big.bin", big);
        file("exact.bin", noise(8192, 3));
        file("odd.bin", noise(4097, 4));

        tar.pax({{"SCHILY.xattr.system.posix_acl_default", acl_access}}); // on "long"
        long_names();
        expect["long"].xattrs = {{"system.posix_acl_default", acl_access}};

        owners();
        tar.pax({{"mtime", "-86400.5"}});
        file("owners/before-1970", "neg");
        expect["owners/before-1970"].mtime = -86401;
        expect["owners/before-1970"].mtime_nsec = 500000000;

        implicit_dirs();
        whiteouts();

        dir("many");
        for (int i = 0; i < 3000; ++i) {
            char n[64];
            std::snprintf(n, sizeof n, "many/entry-with-a-longer-name-%04d", i);
            file(n, i % 7 ? "" : std::string(static_cast<std::size_t>(i), 'm'));
        }
        tar.end();
    }
};

/// The value after `key` in dump.erofs output (up to the next run of spaces or newline).
std::string field_after(std::string const& text, std::string const& key)
{
    auto at = text.find(key);
    if (at == std::string::npos) return "<missing " + key + ">";
    at += key.size();
    while (at < text.size() && text[at] == ' ') ++at;
    auto end = text.find_first_of(" \n", at);
    return text.substr(at, end - at);
}

// ---- raw image surgery ----

void fix_crc(std::string& img)
{
    std::memset(img.data() + 1024 + 4, 0, 4);
    auto bytes = std::as_bytes(std::span(img.data() + 1024, 4096 - 1024));
    erofs::store_le32(reinterpret_cast<std::byte*>(img.data() + 1024 + 4), erofs::crc32c(0xFFFFFFFFu, bytes));
}
void put16(std::string& img, std::uint64_t at, std::uint16_t v)
{
    REQUIRE(at + 2 <= img.size());
    erofs::store_le16(reinterpret_cast<std::byte*>(img.data() + at), v);
}
void put32(std::string& img, std::uint64_t at, std::uint32_t v)
{
    REQUIRE(at + 4 <= img.size());
    erofs::store_le32(reinterpret_cast<std::byte*>(img.data() + at), v);
}
void put64(std::string& img, std::uint64_t at, std::uint64_t v)
{
    REQUIRE(at + 8 <= img.size());
    erofs::store_le64(reinterpret_cast<std::byte*>(img.data() + at), v);
}
std::uint16_t get16(std::string const& img, std::uint64_t at)
{
    return erofs::load_le16(reinterpret_cast<std::byte const*>(img.data() + at));
}

/// Opens `bytes` from a scratch file and walks it, reading every file and link; returns the first error.
struct outcome {
    error_code ec;
    std::string why;
    bool opened = false;
};
outcome open_and_walk(fs::path const& file, std::string const& bytes, std::span<int const> devices = {})
{
    write_all(file, bytes);
    outcome o;
    auto r = erofs_image_reader::open(file, o.ec, &o.why);
    if (o.ec) return o;
    o.opened = true;
    std::string visit_why;
    r.walk(
        [&](std::string_view, erofs_inode_info const& n, error_code& ec) {
            if (n.is_symlink()) r.read_link(n, ec, &visit_why);
            if (n.is_regular() && n.size) {
                std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(n.size, 1 << 20)), '\0');
                r.read(n, 0, std::as_writable_bytes(std::span(buf)), ec, devices);
                if (ec) visit_why = "reading data: " + ec.message();
            }
        },
        o.ec, &o.why);
    if (o.ec && o.why.empty()) o.why = visit_why;
    return o;
}

/// A small layer for surgery: its bytes, and where things are.
struct small_image {
    std::string bytes;
    erofs_image_info info;
    std::map<std::string, erofs_inode_info> inodes;

    small_image(fs::path const& dir)
    {
        tar_writer tar;
        tar.dir("d/");
        tar.file("d/a", "aaa");
        tar.file("d/b", "bbb");
        tar.file("d/c", noise(5000, 1));
        tar.dir("d/e/");
        tar.symlink("d/s", "a");
        tar.pax({{"SCHILY.xattr.user.k", "value"}});
        tar.file("x", "with xattr");
        tar.end();
        build_layer(tar.str(), dir / "small.erofs");
        bytes = read_all(dir / "small.erofs");
        auto r = erofs_image_reader::open(dir / "small.erofs");
        info = r.info();
        snapshot_image(r, {}, &inodes);
    }
    std::uint64_t inode_at(std::string const& path) const
    {
        return std::uint64_t(info.meta_blkaddr) * 4096 + inodes.at(path).nid * 32;
    }
    /// The byte offset of an inline directory's dirent block.
    std::uint64_t inline_data_at(std::string const& path) const
    {
        auto const& n = inodes.at(path);
        REQUIRE(n.layout == erofs::data_layout::flat_inline);
        return inode_at(path) + (n.extended ? 64 : 32) + n.xattr_ibody_size;
    }
};

std::string sb_field_error(std::string img, std::size_t at, std::uint32_t v, int width, bool crc, std::string& why)
{
    if (width == 8) img[at] = static_cast<char>(v);
    else if (width == 16) put16(img, at, static_cast<std::uint16_t>(v));
    else put32(img, at, v);
    if (crc) fix_crc(img);
    error_code ec;
    auto span = std::as_bytes(std::span(img.data(), img.size()));
    parse_erofs_superblock(span, ec, &why);
    return ec ? ec.message() : std::string();
}

// ---- a hand-built image with chunk-based inodes and a device table ----

struct chunk_image {
    std::string img = std::string(4 * 4096, '\0');
    std::string dev = noise(4 * 4096, 99); ///< device 1: 4 blocks
    static constexpr std::uint64_t meta = 4096;

    static void inode(std::string& img, std::uint64_t at, erofs::inode_fields const& f, bool extended)
    {
        if (extended)
            erofs::encode_extended(f, std::span<std::byte, 64>(reinterpret_cast<std::byte*>(img.data() + at), 64));
        else
            erofs::encode_compact(f, std::span<std::byte, 32>(reinterpret_cast<std::byte*>(img.data() + at), 32));
    }
    static void chunk_index(std::string& img, std::uint64_t at, std::uint16_t device, std::uint32_t block)
    {
        put16(img, at, 0);
        put16(img, at + 2, device);
        put32(img, at + 4, block);
    }

    chunk_image()
    {
        for (std::size_t i = 2 * 4096; i < 4 * 4096; ++i) img[i] = static_cast<char>('A' + (i / 4096) + (i % 7));
        // Root directory (nid 0): ".", "..", "f", "g", "h", inline.
        std::vector<std::pair<std::string, std::uint64_t>> ents = {{".", 0}, {"..", 0}, {"f", 4}, {"g", 8}, {"h", 12}};
        std::string block;
        std::uint16_t nameoff = static_cast<std::uint16_t>(12 * ents.size());
        std::string names;
        for (auto const& [name, nid] : ents) {
            std::string d(12, '\0');
            auto type = name.size() == 1 && name != "." ? erofs::file_type::regular : erofs::file_type::directory;
            erofs::encode_dirent(nid, static_cast<std::uint16_t>(nameoff + names.size()), type,
                                 std::span<std::byte, 12>(reinterpret_cast<std::byte*>(d.data()), 12));
            block += d;
            names += name;
        }
        block += names;
        erofs::inode_fields root;
        root.layout = erofs::data_layout::flat_inline;
        root.mode = erofs::s_ifdir | 0755;
        root.size = block.size();
        root.nlink = 2;
        root.i_u = erofs::null_addr;
        inode(img, meta, root, false);
        img.replace(meta + 32, block.size(), block);

        // f (nid 4): 8 KiB chunks with indexes: device 1 blocks 0-1, a hole, this image's block 2.
        erofs::inode_fields f;
        f.layout = erofs::data_layout::chunk_based;
        f.mode = erofs::s_ifreg | 0644;
        f.size = 2 * 8192 + 100;
        f.i_u = 0x20 | 1;
        inode(img, meta + 4 * 32, f, false);
        chunk_index(img, meta + 4 * 32 + 32, 1, 0);
        chunk_index(img, meta + 4 * 32 + 40, 0, erofs::null_addr);
        chunk_index(img, meta + 4 * 32 + 48, 0, 2);

        // g (nid 8): 4 KiB chunks, the 4-byte blkaddr form: block 3, then a hole.
        erofs::inode_fields g;
        g.layout = erofs::data_layout::chunk_based;
        g.mode = erofs::s_ifreg | 0600;
        g.size = 5000;
        g.i_u = 0;
        inode(img, meta + 8 * 32, g, false);
        put32(img, meta + 8 * 32 + 32, 3);
        put32(img, meta + 8 * 32 + 36, erofs::null_addr);

        // h (nid 12): extended, a 20-byte xattr ibody (lustre.k=v), then the 8-byte index aligned to 8.
        erofs::inode_fields h;
        h.layout = erofs::data_layout::chunk_based;
        h.mode = erofs::s_ifreg | 0444;
        h.size = 4096;
        h.i_u = 0x20;
        h.uid = 100000;
        h.mtime = 1234567890;
        h.mtime_nsec = 42;
        h.xattr_icount = 3;
        inode(img, meta + 12 * 32, h, true);
        std::uint64_t x = meta + 12 * 32 + 64;
        img[x + 4] = 0;            // no shared xattrs
        img[x + 12] = 1;           // name length
        img[x + 13] = 5;           // lustre
        put16(img, x + 14, 1);     // value length
        img[x + 16] = 'k';
        img[x + 17] = 'v';
        REQUIRE((x + 20) % 8 == 4);
        chunk_index(img, x + 24, 1, 2);

        // Superblock with the device table right after it.
        erofs::superblock sb;
        sb.root_nid = 0;
        sb.inos = 4;
        sb.blocks = 4;
        sb.meta_blkaddr = 1;
        sb.build_time = 1000;
        std::array<std::byte, 4096> b0;
        erofs::encode_block0(sb, b0);
        img.replace(0, 4096, reinterpret_cast<char const*>(b0.data()), 4096);
        put32(img, 1024 + 0x50, erofs_incompat_chunked_file | erofs_incompat_device_table);
        put16(img, 1024 + 0x56, 1);
        put16(img, 1024 + 0x58, 9);
        img.replace(1152, 7, "layer-0");
        put32(img, 1152 + 64, 4);
        put32(img, 1152 + 68, 4);
        fix_crc(img);
    }

    std::string expect_f() const { return dev.substr(0, 8192) + std::string(8192, '\0') + img.substr(2 * 4096, 100); }
    std::string expect_g() const { return img.substr(3 * 4096, 4096) + std::string(904, '\0'); }
    std::string expect_h() const { return dev.substr(2 * 4096, 4096); }
};

} // namespace

TEST_CASE("erofs_image_reader: a layer image of every entry type reads back exactly")
{
    temp_dir dir("erofs-reader");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    erofs_layer_options options;
    options.uuid_seed = {std::byte{1}, std::byte{2}};
    auto map = build_layer(layer.tar.str(), image, options);

    auto r = erofs_image_reader::open(image);
    REQUIRE(r.is_open());
    auto const& info = r.info();
    CHECK(info.blocks == map.total_blocks);
    CHECK(info.blocks * 4096ull == fs::file_size(image));
    CHECK((info.feature_compat & erofs::feature_compat_sb_chksum) != 0);
    CHECK(info.devices.empty());
    CHECK(info.uuid != std::array<std::byte, 16>{});
    CHECK(info.build_time == static_cast<std::uint64_t>(t0));

    std::map<std::string, erofs_inode_info> inodes;
    auto got = snapshot_image(r, {}, &inodes);
    std::string diff = ocistore_test::diff_trees(layer.expect, got);
    CHECK_MESSAGE(diff.empty(), diff);

    std::set<std::uint64_t> nids;
    for (auto const& [p, n] : inodes) nids.insert(n.nid);
    CHECK(info.inodes >= nids.size()); // a writer may count inodes no directory names

    // Every regular file's data is where the writer said.
    for (auto const& [path, extent] : map.files) {
        INFO(path);
        auto const& n = inodes.at(path);
        CHECK(n.layout == erofs::data_layout::flat_plain);
        CHECK(n.size == extent.size);
        if (extent.size) CHECK(n.raw_blkaddr == extent.start_block);
    }
    // Compact where the metadata fits, extended otherwise.
    CHECK_FALSE(inodes.at("etc/passwd").extended);
    CHECK(inodes.at("owners/big-ids").extended);
    CHECK(inodes.at("owners/nsec").extended);
    CHECK(inodes.at("owners/before-1970").extended);
    // Xattrs keep their on-disk order.
    auto const& ping = inodes.at("bin/ping").xattrs;
    REQUIRE(ping.size() == 2);
    CHECK(ping[0].first == "security.capability");
    CHECK(ping[1].first == "user.note");
    // Tail packing: a 300-byte target inline, a 4095-byte one in its own block.
    CHECK(inodes.at("long/l300").layout == erofs::data_layout::flat_inline);
    CHECK(inodes.at("long/l4095").layout == erofs::data_layout::flat_plain);
    CHECK(inodes.at("dev/wide").rdev == erofs::encode_dev(300, 70000));

    // A directory over several blocks, in name order, with "." and "..".
    auto const& many = inodes.at("many");
    CHECK(many.size > 4 * 4096);
    auto ents = r.read_dir(many);
    REQUIRE(ents.size() == 3002);
    CHECK(ents[0].name == ".");
    CHECK(ents[0].nid == many.nid);
    CHECK(ents[1].name == "..");
    CHECK(ents[1].nid == info.root_nid);
    CHECK(ents[2].name == "entry-with-a-longer-name-0000");
    CHECK(ents[2].type == erofs::file_type::regular);
    CHECK(ents.back().name == "entry-with-a-longer-name-2999");
    CHECK(std::is_sorted(ents.begin(), ents.end(), [](auto const& a, auto const& b) { return a.name < b.name; }));

    // Partial reads at odd offsets.
    auto const& big = inodes.at("big.bin");
    std::string part(5000, '\0');
    CHECK(r.read(big, 4090, std::as_writable_bytes(std::span(part))) == 5000);
    CHECK(part == layer.big.substr(4090, 5000));
    CHECK(r.read(big, big.size - 10, std::as_writable_bytes(std::span(part))) == 10);
    CHECK(part.substr(0, 10) == layer.big.substr(layer.big.size() - 10));
}

TEST_CASE("erofs_image_reader: agrees with dump.erofs on the superblock, inodes and directories")
{
    if (!have_tool("dump.erofs")) return;
    temp_dir dir("erofs-reader-dump");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    erofs_layer_options options;
    options.uuid_seed = {std::byte{9}};
    build_layer(layer.tar.str(), image, options);
    auto r = erofs_image_reader::open(image);

    auto [rc, sb] = run("dump.erofs -s " + image.string());
    REQUIRE(rc == 0);
    CHECK(field_after(sb, "Filesystem blocks:") == std::to_string(r.info().blocks));
    CHECK(field_after(sb, "Filesystem inode metadata start block:") == std::to_string(r.info().meta_blkaddr));
    CHECK(field_after(sb, "Filesystem root nid:") == std::to_string(r.info().root_nid));
    CHECK(field_after(sb, "Filesystem inode count:") == std::to_string(r.info().inodes));
    char uuid[40];
    auto const& u = r.info().uuid;
    auto b = [&](int i) { return std::to_integer<unsigned>(u[static_cast<std::size_t>(i)]); };
    std::snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b(0), b(1),
                  b(2), b(3), b(4), b(5), b(6), b(7), b(8), b(9), b(10), b(11), b(12), b(13), b(14), b(15));
    CHECK(field_after(sb, "Filesystem UUID:") == uuid);

    std::map<std::string, erofs_inode_info> inodes;
    snapshot_image(r, {}, &inodes);
    for (std::string p : {"etc/passwd", "etc/conf", "bin/ping", "long/l4095", "owners/big-ids", "owners/nsec",
                          "dev/wide", "many", "big.bin", "."}) {
        auto const& n = inodes.at(p);
        auto [prc, out] = run("dump.erofs --path=/" + (p == "." ? std::string() : p) + " " + image.string());
        INFO(p << "\n" << out);
        REQUIRE(prc == 0);
        CHECK(field_after(out, "NID:") == std::to_string(n.nid));
        CHECK(field_after(out, "Links:") == std::to_string(n.nlink));
        CHECK(field_after(out, "Uid:") == std::to_string(n.uid));
        CHECK(field_after(out, "Gid:") == std::to_string(n.gid));
        CHECK(field_after(out, "Layout:") == std::to_string(static_cast<int>(n.layout)));
        CHECK(field_after(out, "Inode size:") == (n.extended ? "64" : "32"));
        CHECK(field_after(out, "Xattr size:") == std::to_string(n.xattr_ibody_size));
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o/", n.mode & 0777); // dump.erofs 1.5 leaves out setuid/setgid/sticky
        CHECK(field_after(out, "Access:").substr(0, 5) == mode);
        CHECK(field_after(out, "Size:") == std::to_string(n.size));
    }
    for (std::string p : {"", "many", "etc"}) {
        auto [lrc, out] = run("dump.erofs --ls --path=/" + p + " " + image.string());
        INFO(p << "\n" << out.substr(0, 2000));
        REQUIRE(lrc == 0);
        std::istringstream lines(out.substr(out.find("FILENAME") + 8));
        std::vector<erofs_dirent_info> theirs;
        std::uint64_t nid;
        unsigned type;
        std::string name;
        while (lines >> nid >> type >> name) theirs.push_back({name, nid, static_cast<erofs::file_type>(type)});
        CHECK(theirs == r.read_dir(inodes.at(p.empty() ? "." : p)));
    }
}

TEST_CASE("erofs_image_reader: reads images written by mkfs.erofs (inline tails, chunks, blob devices, shared xattrs)")
{
    if (!have_tool("mkfs.erofs")) return;
    temp_dir dir("erofs-reader-mkfs");
    auto src = dir / "src";
    fs::create_directories(src / "sub/deeper");
    auto put = [&](std::string const& p, std::string const& content) { write_all(src / p, content); };
    put("small", "hello\n");
    put("tail", noise(3 * 4096 + 777, 5));
    put("exact", noise(2 * 4096, 6));
    put("sub/big", noise(300000, 8));
    put("sub/deeper/empty", "");
    fs::create_symlink("../small", src / "sub/link");
    fs::create_symlink(std::string(2000, 'q'), src / "sub/longlink");
    fs::create_hard_link(src / "small", src / "sub/small.hard");
    REQUIRE(::mkfifo((src / "fifo").c_str(), 0640) == 0);
    bool devices = ::mknod((src / "chr").c_str(), S_IFCHR | 0600, ::makedev(4, 64)) == 0 &&
                   ::mknod((src / "blk").c_str(), S_IFBLK | 0600, ::makedev(259, 70000)) == 0;
    if (!devices) MESSAGE("mknod failed (not root?): no device nodes in the mkfs.erofs tree");
    fs::create_directory(src / "many");
    for (int i = 0; i < 700; ++i) put("many/file-" + std::to_string(i), std::to_string(i));
    // The same xattr on many files: mkfs.erofs makes it shared.
    bool xattrs = true;
    for (int i = 0; i < 10; ++i)
        xattrs = xattrs && ::lsetxattr((src / ("many/file-" + std::to_string(i))).c_str(), "user.shared", "same", 4, 0) == 0;
    xattrs = xattrs && ::lsetxattr((src / "small").c_str(), "user.only", "mine", 4, 0) == 0 &&
             ::lsetxattr((src / "small").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0 &&
             ::lsetxattr((src / "sub/big").c_str(), "security.capability", capability.data(), capability.size(), 0) == 0;
    if (!xattrs) MESSAGE("setxattr unsupported here: the mkfs.erofs tree has fewer xattrs");
    ::chown((src / "exact").c_str(), 123456, 654321);
    auto expect = ocistore_test::snapshot_tree(src);
    ocistore_test::tree_compare how;
    how.dir_times = false;

    struct variant {
        char const* name;
        std::string options;
        bool blob;
    };
    for (auto const& v : {variant{"inline", "", false}, variant{"noinline", "-Enoinline_data", false},
                          variant{"chunks", "--chunksize=4096", false}, variant{"bigchunks", "--chunksize=65536", false},
                          variant{"blobdev", "--chunksize=8192 --blobdev=" + (dir / "blob").string(), true}}) {
        INFO(v.name);
        auto image = dir / (std::string(v.name) + ".erofs");
        auto [rc, out] = run("mkfs.erofs --quiet " + v.options + " " + image.string() + " " + src.string());
        INFO(out);
        REQUIRE(rc == 0);
        error_code ec;
        std::string why;
        auto r = erofs_image_reader::open(image, ec, &why);
        REQUIRE_MESSAGE(!ec, why);
        std::vector<int> devs;
        int blob = -1;
        if (v.blob) {
            REQUIRE(r.info().devices.size() == 1);
            CHECK(r.info().extra_devices == 1);
            blob = ::open((dir / "blob").c_str(), O_RDONLY | O_CLOEXEC);
            REQUIRE(blob >= 0);
            devs = {-1, blob};
        }
        std::map<std::string, erofs_inode_info> inodes;
        auto got = snapshot_image(r, devs, &inodes);
        std::string diff = ocistore_test::diff_trees(expect, got, how);
        CHECK_MESSAGE(diff.empty(), diff);
        if (xattrs) { // the common xattr went to the shared area and was read from there
            CHECK(inodes.at("many/file-3").xattr_shared_count == 1);
            CHECK(inodes.at("many/file-3").xattrs == std::vector<std::pair<std::string, std::string>>{{"user.shared", "same"}});
        }
        auto const& tail = inodes.at("tail");
        if (v.options.empty()) CHECK(tail.layout == erofs::data_layout::flat_inline);
        if (v.options.find("chunksize") != std::string::npos) {
            CHECK(tail.layout == erofs::data_layout::chunk_based);
            // Cross-check the chunk map with dump.erofs -e.
            if (have_tool("dump.erofs")) {
                auto [erc, ext] = run("dump.erofs -e --path=/sub/big " + (v.blob ? "--device=" + (dir / "blob").string() + " " : std::string()) +
                                      image.string());
                INFO(ext);
                if (erc == 0) {
                    auto const& big = inodes.at("sub/big");
                    std::size_t chunk = std::size_t(1) << big.chunk_bits;
                    std::istringstream lines(ext.substr(ext.find("length\n") + 7));
                    std::string line;
                    std::size_t i = 0;
                    while (std::getline(lines, line) && line.find(':') != std::string::npos && line.find("extents") == std::string::npos) {
                        unsigned long long lstart, lend, llen, pstart, pend, plen;
                        unsigned idx;
                        if (std::sscanf(line.c_str(), " %u: %llu.. %llu | %llu : %llu.. %llu | %llu", &idx, &lstart, &lend,
                                        &llen, &pstart, &pend, &plen) != 7)
                            continue;
                        REQUIRE(lstart / chunk < big.chunks.size());
                        CHECK(pstart == std::uint64_t(big.chunks[lstart / chunk].block) * 4096 + lstart % chunk);
                        ++i;
                    }
                    CHECK(i > 0);
                }
            }
        }
        if (blob >= 0) {
            CHECK(inodes.at("sub/big").chunks.at(0).device_id == 1);
            // Without the device's descriptor the data cannot be read.
            error_code rec;
            std::byte buf[16];
            r.read(inodes.at("sub/big"), 0, buf, rec);
            CHECK(rec == error::invalid_argument);
            ::close(blob);
        }
    }
}

TEST_CASE("erofs_image_reader: the kernel's view of a layer image equals the reader's")
{
    temp_dir dir("erofs-reader-mount");
    rich_layer layer;
    auto image = dir / "layer.erofs";
    build_layer(layer.tar.str(), image);
    mount_guard guard{(dir / "mnt").string()};
    if (auto why = ocistore_test::mount_image(guard, image); !why.empty()) {
        MESSAGE(why << ": kernel cross-check skipped");
        return;
    }
    auto kernel = ocistore_test::snapshot_tree(guard.dir);
    auto reader = snapshot_image(erofs_image_reader::open(image));
    std::string diff = ocistore_test::diff_trees(kernel, reader);
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("erofs_image_reader: chunk-based inodes, chunk indexes after xattrs and the device table")
{
    temp_dir dir("erofs-reader-chunks");
    chunk_image c;
    write_all(dir / "img.erofs", c.img);
    write_all(dir / "dev.img", c.dev);
    auto r = erofs_image_reader::open(dir / "img.erofs");
    REQUIRE(r.info().devices.size() == 1);
    CHECK(r.info().devices[0] == erofs_device_slot{"layer-0", 4, 4});
    CHECK((r.info().feature_incompat & erofs_incompat_chunked_file) != 0);

    // The superblock parser alone fills the table when it lies in block 0.
    auto sb = parse_erofs_superblock(std::as_bytes(std::span(c.img.data(), 4096)));
    CHECK(sb.devices == r.info().devices);

    int dev = ::open((dir / "dev.img").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(dev >= 0);
    std::vector<int> devs{-1, dev};
    auto f = r.inode(4);
    CHECK(f.layout == erofs::data_layout::chunk_based);
    CHECK(f.chunk_bits == 13);
    CHECK(f.chunks == std::vector<erofs_chunk>{{1, 0}, {0, erofs::null_addr}, {0, 2}});
    CHECK(content_of(r, f, devs, 3000) == c.expect_f());
    auto g = r.inode(8);
    CHECK(g.chunk_bits == 12);
    CHECK(g.chunks == std::vector<erofs_chunk>{{0, 3}, {0, erofs::null_addr}});
    CHECK(content_of(r, g) == c.expect_g()); // no extra device needed
    auto h = r.inode(12);
    CHECK(h.extended);
    CHECK(h.uid == 100000);
    CHECK(h.mtime == 1234567890);
    CHECK(h.mtime_nsec == 42);
    CHECK(h.xattrs == std::vector<std::pair<std::string, std::string>>{{"lustre.k", "v"}});
    CHECK(h.chunks == std::vector<erofs_chunk>{{1, 2}});
    CHECK(content_of(r, h, devs) == c.expect_h());

    auto tree = snapshot_image(r, devs);
    CHECK(ocistore_test::paths_of(tree) == std::vector<std::string>{".", "f", "g", "h"});
    CHECK(tree["f"].content == sha(c.expect_f()));

    // fsck.erofs agrees that the hand-built image is well formed.
    if (have_tool("fsck.erofs")) {
        auto [rc, out] = run("fsck.erofs --device=" + (dir / "dev.img").string() + " " + (dir / "img.erofs").string());
        INFO(out);
        CHECK(rc == 0);
    }

    // Without the device, reading f fails cleanly; g (device 0 only) still reads.
    error_code ec;
    std::byte buf[8];
    CHECK(r.read(f, 0, buf, ec) == 0);
    CHECK(ec == error::invalid_argument);
    CHECK_THROWS_WITH_AS(r.read(f, 0, buf), doctest::Contains("device 1"), system_error);

    auto expect_error = [&](std::string img, error e, char const* words) {
        std::string why;
        auto o = open_and_walk(dir / "bad.erofs", img, devs);
        CHECK_MESSAGE(o.ec == e, o.why);
        CHECK_MESSAGE(o.why.find(words) != std::string::npos, o.why);
    };
    {
        std::string bad = c.img;
        chunk_image::chunk_index(bad, chunk_image::meta + 4 * 32 + 32, 1, 3); // 2 blocks from block 3 of a 4-block device
        expect_error(bad, error::invalid_archive, "runs past the device's 4 blocks");
    }
    {
        std::string bad = c.img;
        put16(bad, 1024 + 0x56, 2); // two extra devices: ids are masked to 2 bits, so 3 is out of range
        bad.replace(1280, 7, "layer-1");
        put32(bad, 1280 + 64, 4);
        fix_crc(bad);
        chunk_image::chunk_index(bad, chunk_image::meta + 4 * 32 + 32, 3, 0);
        expect_error(bad, error::invalid_archive, "names device 3");
    }
    {
        std::string bad = c.img;
        put32(bad, chunk_image::meta + 4 * 32 + 0x10, 0x40 | 0x20); // unknown chunk format bit
        expect_error(bad, error::invalid_archive, "unknown chunk format bits");
    }
    {
        std::string bad = c.img;
        put32(bad, chunk_image::meta + 4 * 32 + 0x08, 0xFFFFFFFF); // 4 GiB in 8 KiB chunks: the index table runs out
        expect_error(bad, error::invalid_archive, "chunk indexes at byte");
    }
    {
        std::string bad = c.img;
        put16(bad, chunk_image::meta + 8 * 32 + 0x00, static_cast<std::uint16_t>(4 << 1)); // g: keep chunk layout
        put32(bad, chunk_image::meta + 8 * 32 + 0x10, 31);                                 // 2^43-byte chunks
        put32(bad, chunk_image::meta + 8 * 32 + 0x08, 0xFFFFFFFF);
        put32(bad, chunk_image::meta + 8 * 32 + 32, erofs::null_addr);
        auto o = open_and_walk(dir / "bad.erofs", bad, devs); // one 4 GiB hole: fine, and bounded
        CHECK_MESSAGE(!o.ec, o.why);
    }
    {
        std::string bad = c.img;
        put16(bad, 1024 + 0x58, 2); // device table inside the superblock
        fix_crc(bad);
        expect_error(bad, error::invalid_archive, "devt_slotoff");
    }
    {
        std::string bad = c.img;
        put16(bad, 1024 + 0x56, 100); // 100 slots from byte 1152 fit the image
        fix_crc(bad);
        auto o = open_and_walk(dir / "bad.erofs", bad, devs);
        CHECK_MESSAGE(!o.ec, o.why);
        put16(bad, 1024 + 0x56, 0xFFFF); // 8 MiB of slots: beyond the image
        fix_crc(bad);
        expect_error(bad, error::invalid_archive, "the device table");
    }
    ::close(dev);
}

TEST_CASE("erofs_image_reader: reads a merged fsmeta's chunk-based files through its layer devices")
{
    temp_dir dir("erofs-reader-fsmeta");
    std::string const big = noise(20000, 11), upper_big = noise(9000, 12);
    tar_writer lower;
    lower.file("a", "lower a");
    lower.file("dir/b", "bee");
    lower.file("big", big);
    lower.file("gone", "to be removed");
    lower.end();
    tar_writer upper;
    upper.file(".wh.gone", "", hdr(0));
    upper.file("c", upper_big);
    upper.file("dir/d", "dee");
    upper.end();
    build_layer(lower.str(), dir / "l0.erofs");
    build_layer(upper.str(), dir / "l1.erofs");
    std::vector<erofs_image_reader> layers;
    layers.push_back(erofs_image_reader::open(dir / "l0.erofs"));
    layers.push_back(erofs_image_reader::open(dir / "l1.erofs"));
    std::vector<std::string> tags{"layer-zero", "layer-one"};
    fsmeta_result res;
    {
        atomic_file out(dir / "fsmeta.erofs", {.mode = 0644, .durable = false});
        res = write_fsmeta(out.native_handle(), layers, tags);
        out.commit();
    }
    auto r = erofs_image_reader::open(dir / "fsmeta.erofs");
    REQUIRE(r.info().devices.size() == 2);
    CHECK(r.info().devices[0] == erofs_device_slot{"layer-zero", layers[0].info().blocks, res.total_blocks});
    CHECK(r.info().devices[1] ==
          erofs_device_slot{"layer-one", layers[1].info().blocks, res.total_blocks + layers[0].info().blocks});
    std::vector<int> devs{-1, layers[0].native_handle(), layers[1].native_handle()};
    std::map<std::string, erofs_inode_info> inodes;
    auto tree = snapshot_image(r, devs, &inodes);
    std::string listing;
    for (auto const& p : ocistore_test::paths_of(tree)) listing += p + " ";
    INFO(listing);
    CHECK(ocistore_test::paths_of(tree) == std::vector<std::string>{".", "a", "big", "c", "dir", "dir/b", "dir/d"});
    CHECK(tree["a"].content == sha("lower a"));
    CHECK(tree["big"].content == sha(big));
    CHECK(tree["c"].content == sha(upper_big));
    CHECK(tree["dir/d"].content == sha("dee"));
    for (auto [path, device] : {std::pair{"a", 1}, std::pair{"big", 1}, std::pair{"c", 2}, std::pair{"dir/d", 2}}) {
        INFO(path);
        auto const& n = inodes.at(path);
        CHECK(n.layout == erofs::data_layout::chunk_based);
        REQUIRE(n.chunks.size() == 1);
        CHECK(n.chunks[0].device_id == device);
    }
}

TEST_CASE("erofs_image_reader: a damaged superblock is rejected with the reason")
{
    temp_dir dir("erofs-reader-sb");
    small_image s(dir.path());
    std::string why;
    CHECK(sb_field_error(s.bytes, 1024, 0x12345678, 32, true, why) == make_error_code(error::invalid_archive).message());
    CHECK(why.find("bad magic 0x12345678") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x10, 77, 32, false, why);
    CHECK(why.find("checksum") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x0C, 13, 8, true, why);
    CHECK(why.find("block size 2^13") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x50, 0x100, 32, true, why);
    CHECK(why.find("unsupported incompatible features 0x00000100") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x0E, 0xFFFF, 16, true, why);
    CHECK(why.find("root_nid 65535") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x28, s.info.blocks, 32, true, why);
    CHECK(why.find("meta_blkaddr") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x24, 0, 32, true, why);
    CHECK(why.find("blocks is 0") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x2C, 0xFFFFFF, 32, true, why);
    CHECK(why.find("xattr_blkaddr") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x5A, 1, 8, true, why);
    CHECK(why.find("dirblkbits") != std::string::npos);
    sb_field_error(s.bytes, 1024 + 0x0D, 200, 8, true, why);
    CHECK(why.find("sb_extslots") != std::string::npos);

    error_code ec;
    auto first = std::as_bytes(std::span(s.bytes.data(), 4000));
    parse_erofs_superblock(first, ec, &why);
    CHECK(ec == error::truncated);
    CHECK(why.find("shorter than one 4096-byte block") != std::string::npos);
    CHECK_THROWS_WITH_AS(parse_erofs_superblock(first), doctest::Contains("4096-byte block"), system_error);

    // Whole files: shorter than declared, shorter than a block, not there at all.
    auto o = open_and_walk(dir / "t.erofs", s.bytes.substr(0, s.bytes.size() - 4096));
    CHECK(o.ec == error::truncated);
    CHECK(o.why.find("declares " + std::to_string(s.info.blocks) + " blocks") != std::string::npos);
    o = open_and_walk(dir / "t.erofs", s.bytes.substr(0, 3000));
    CHECK(o.ec == error::truncated);
    CHECK(o.why.find("3000 bytes") != std::string::npos);
    erofs_image_reader::open(dir / "missing.erofs", ec, &why);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(why.find("missing.erofs") != std::string::npos);
    CHECK_THROWS_AS(erofs_image_reader::open(dir / "missing.erofs"), system_error);
    // Trailing bytes after the declared blocks are ignored.
    o = open_and_walk(dir / "t.erofs", s.bytes + std::string(100, 'x'));
    CHECK_MESSAGE(!o.ec, o.why);
}

TEST_CASE("erofs_image_reader: damaged inodes, directories and xattrs are rejected with the reason")
{
    temp_dir dir("erofs-reader-bad");
    small_image s(dir.path());
    auto file = dir / "bad.erofs";
    {
        auto o = open_and_walk(file, s.bytes);
        REQUIRE_MESSAGE(!o.ec, o.why);
    }
    auto expect_error = [&](std::string const& img, error e, std::string const& words) {
        auto o = open_and_walk(file, img);
        CHECK_MESSAGE(o.ec == e, o.why);
        CHECK_MESSAGE(o.why.find(words) != std::string::npos, o.why);
    };
    std::uint64_t const d = s.inline_data_at("d"); // "d" holds . .. a b c e s
    auto const& dn = s.inodes.at("d");
    REQUIRE(s.inodes.at("d/c").layout == erofs::data_layout::flat_plain);

    SUBCASE("nameoff out of order")
    {
        std::string img = s.bytes;
        put16(img, d + 12 * 3 + 8, static_cast<std::uint16_t>(get16(img, d + 12 * 4 + 8) + 1));
        expect_error(img, error::invalid_archive, "out of order");
    }
    SUBCASE("first nameoff not a dirent table size")
    {
        std::string img = s.bytes;
        put16(img, d + 8, 13);
        expect_error(img, error::invalid_archive, "first nameoff 13");
    }
    SUBCASE("names not sorted")
    {
        std::string img = s.bytes;
        img[d + get16(img, d + 12 * 3 + 8)] = 'z'; // "b" → "z" before "c"
        expect_error(img, error::invalid_archive, "does not sort after");
    }
    SUBCASE("a name with a slash or a NUL")
    {
        std::string img = s.bytes;
        img[d + get16(img, d + 12 * 4 + 8)] = '/';
        expect_error(img, error::invalid_archive, "contains '/'");
        img = s.bytes;
        img[d + get16(img, d + 12 * 4 + 8)] = '\0';
        expect_error(img, error::invalid_archive, "NUL");
    }
    SUBCASE("a dirent nid beyond the image")
    {
        std::string img = s.bytes;
        put64(img, d + 12 * 2, 1ull << 40);
        expect_error(img, error::invalid_archive, "lies beyond the image");
    }
    SUBCASE("a dirent type that disagrees with the inode")
    {
        std::string img = s.bytes;
        img[d + 12 * 2 + 10] = 2; // "a" claims to be a directory
        expect_error(img, error::invalid_archive, "does not match the inode's type");
        img[d + 12 * 2 + 10] = 9;
        expect_error(img, error::invalid_archive, "unknown file type 9");
    }
    SUBCASE("a directory cycle")
    {
        std::string img = s.bytes;
        // "d/e"'s dirent points at the root: the root is reached twice.
        put64(img, d + 12 * 5, s.info.root_nid);
        expect_error(img, error::invalid_archive, "reached twice");
    }
    SUBCASE("\".\" and \"..\" that lie")
    {
        std::string img = s.bytes;
        put64(img, d, s.inodes.at("d/e").nid);
        expect_error(img, error::invalid_archive, "\".\" names nid");
        img = s.bytes;
        put64(img, d + 12, dn.nid);
        expect_error(img, error::invalid_archive, "\"..\" names nid");
    }
    SUBCASE("a file whose size runs past the image")
    {
        std::string img = s.bytes;
        put32(img, s.inode_at("d/c") + 0x08, 0xFFFFFFFF);
        expect_error(img, error::invalid_archive, "lie beyond the image's");
        img = s.bytes;
        put32(img, s.inode_at("d/c") + 0x10, s.info.blocks - 1); // 2 blocks from the last one
        expect_error(img, error::invalid_archive, "lie beyond the image's");
    }
    SUBCASE("an inline tail that crosses a block")
    {
        std::string img = s.bytes;
        put32(img, s.inode_at("d") + 0x08, 4000);
        expect_error(img, error::invalid_archive, "crosses a block boundary");
    }
    SUBCASE("a compressed or unknown layout, unknown format bits, a mode with no type")
    {
        std::string img = s.bytes;
        put16(img, s.inode_at("d/a"), 3 << 1);
        expect_error(img, error::invalid_archive, "compressed inodes are not supported");
        put16(img, s.inode_at("d/a"), 6 << 1);
        expect_error(img, error::invalid_archive, "unknown data layout 6");
        put16(img, s.inode_at("d/a"), 0x30);
        expect_error(img, error::invalid_archive, "unknown i_format bits");
        img = s.bytes;
        put16(img, s.inode_at("d/a") + 4, 0644);
        expect_error(img, error::invalid_archive, "has no known file type");
    }
    SUBCASE("the root is not a directory")
    {
        std::string img = s.bytes;
        put16(img, 1024 + 0x0E, static_cast<std::uint16_t>(s.inodes.at("x").nid));
        fix_crc(img);
        expect_error(img, error::invalid_archive, "root inode is not a directory");
    }
    SUBCASE("oversized xattr counts and broken xattr entries")
    {
        auto const& x = s.inodes.at("x");
        REQUIRE(x.xattr_ibody_size > 12);
        std::uint64_t const body = s.inode_at("x") + 32;
        std::string img = s.bytes;
        put16(img, s.inode_at("x") + 2, 0xFFFF); // i_xattr_icount: 256 KiB of xattrs
        expect_error(img, error::invalid_archive, "run past the image");
        img = s.bytes;
        img[body + 4] = static_cast<char>(200); // h_shared_count
        expect_error(img, error::invalid_archive, "200 shared xattr ids do not fit");
        img = s.bytes;
        put16(img, body + 12 + 2, 60000); // e_value_size
        expect_error(img, error::invalid_archive, "overruns its area");
        img = s.bytes;
        img[body + 12 + 1] = 9; // e_name_index
        expect_error(img, error::invalid_archive, "unknown name index 9");
        img[body + 12 + 1] = static_cast<char>(0x81);
        expect_error(img, error::invalid_archive, "long xattr name prefixes");
        img = s.bytes;
        img[body + 12 + 4] = '\0';
        expect_error(img, error::invalid_archive, "contains a NUL byte");
        img = s.bytes;
        REQUIRE(x.xattr_ibody_size == 24);
        img[body + 4] = 3; // three shared ids instead of the inline entry, the first far away
        put32(img, body + 12, 0xFFFFFFF0);
        expect_error(img, error::invalid_archive, "shared xattr id");
    }
    SUBCASE("a symlink target with a NUL")
    {
        std::string img = s.bytes;
        auto const& l = s.inodes.at("d/s");
        REQUIRE(l.layout == erofs::data_layout::flat_inline);
        img[s.inode_at("d/s") + 32 + l.xattr_ibody_size] = '\0';
        expect_error(img, error::invalid_archive, "target contains a NUL");
    }
    SUBCASE("caps on forged inode descriptions")
    {
        auto r = erofs_image_reader::open(file.parent_path() / "small.erofs");
        error_code ec;
        std::string why;
        auto big_dir = s.inodes.at("d");
        big_dir.size = 1ull << 40;
        r.read_dir(big_dir, ec, &why);
        CHECK(ec == error::limit_exceeded);
        CHECK(why.find("cap") != std::string::npos);
        auto long_link = s.inodes.at("d/s");
        long_link.size = 5000;
        r.read_link(long_link, ec, &why);
        CHECK(ec == error::limit_exceeded);
        CHECK(why.find("exceeds 4095") != std::string::npos);
        r.read_dir(s.inodes.at("d/a"), ec, &why);
        CHECK(ec == error::invalid_argument);
        r.read_link(s.inodes.at("d/a"), ec, &why);
        CHECK(ec == error::invalid_argument);
        auto forged = s.inodes.at("d/c");
        forged.raw_blkaddr = 0xFFFFFF00;
        std::byte buf[10];
        CHECK_THROWS_WITH_AS(r.read(forged, 0, buf), doctest::Contains("lies beyond the image"), system_error);
    }
}

TEST_CASE("erofs_image_reader: over-long xattr lists, deep trees and the unopened reader hit their limits")
{
    temp_dir dir("erofs-reader-limits");
    {
        // An inode with 5000 inline xattr entries (posix ACL entries with empty names and values).
        chunk_image c;
        std::string img(64 * 4096, '\0');
        img.replace(0, 4 * 4096, c.img);
        put32(img, 1024 + 0x24, 64);
        std::uint64_t const at = chunk_image::meta + 12 * 32;
        put16(img, at + 2, static_cast<std::uint16_t>(1 + 5000)); // icount: header + 5000 words
        img[at + 64 + 4] = 0;
        for (std::size_t i = 0; i < 5000; ++i) {
            std::uint64_t e = at + 64 + 12 + 4 * i;
            img[e] = 0;
            img[e + 1] = 2;
            put16(img, e + 2, 0);
        }
        fix_crc(img);
        write_all(dir / "x.erofs", img);
        auto r = erofs_image_reader::open(dir / "x.erofs");
        error_code ec;
        std::string why;
        r.inode(12, ec, &why);
        CHECK(ec == error::limit_exceeded);
        CHECK(why.find("more than 4096 xattrs") != std::string::npos);
    }
    {
        // 4100 nested directories "d/d/d/...": the walk stops at the depth cap.
        std::uint32_t const depth = 4100, per_block = 4096 / 128;
        std::uint32_t const blocks = 1 + (depth + per_block - 1) / per_block;
        std::string img(std::size_t(blocks) * 4096, '\0');
        for (std::uint32_t i = 0; i < depth; ++i) {
            std::uint64_t const nid = 4ull * i, at = 4096 + 128ull * i;
            std::vector<std::pair<std::string, std::uint64_t>> ents = {{".", nid}, {"..", i ? nid - 4 : 0}};
            if (i + 1 < depth) ents.emplace_back("d", nid + 4);
            std::string block, names;
            for (auto const& [name, child] : ents) {
                std::string d(12, '\0');
                erofs::encode_dirent(child, static_cast<std::uint16_t>(12 * ents.size() + names.size()),
                                     erofs::file_type::directory,
                                     std::span<std::byte, 12>(reinterpret_cast<std::byte*>(d.data()), 12));
                block += d;
                names += name;
            }
            block += names;
            erofs::inode_fields f;
            f.layout = erofs::data_layout::flat_inline;
            f.mode = erofs::s_ifdir | 0755;
            f.size = block.size();
            f.nlink = 2;
            chunk_image::inode(img, at, f, false);
            img.replace(at + 32, block.size(), block);
        }
        erofs::superblock sb;
        sb.blocks = blocks;
        sb.meta_blkaddr = 1;
        sb.inos = depth;
        std::array<std::byte, 4096> b0;
        erofs::encode_block0(sb, b0);
        img.replace(0, 4096, reinterpret_cast<char const*>(b0.data()), 4096);
        write_all(dir / "deep.erofs", img);
        auto r = erofs_image_reader::open(dir / "deep.erofs");
        error_code ec;
        std::string why;
        std::size_t visited = 0;
        r.walk([&](std::string_view, erofs_inode_info const&, error_code&) { ++visited; }, ec, &why);
        CHECK(ec == error::limit_exceeded);
        CHECK(why.find("deeper than 4096") != std::string::npos);
        CHECK(visited == 4097);
        CHECK_THROWS_WITH_AS(r.walk([](std::string_view, erofs_inode_info const&, error_code&) {}),
                             doctest::Contains("deeper than 4096"), system_error);
    }
    {
        erofs_image_reader none;
        CHECK_FALSE(none.is_open());
        error_code ec;
        none.inode(0, ec);
        CHECK(ec == error::invalid_argument);
        none.walk([](std::string_view, erofs_inode_info const&, error_code&) {}, ec);
        CHECK(ec == error::invalid_argument);
        erofs_image_reader::from_fd(-1, ec);
        CHECK(ec == error::invalid_argument);
    }
}

TEST_CASE("erofs_image_reader: more metadata blocks than the cache holds read back the same, from two threads at once")
{
    // A root directory over its own blocks and one inode per block: odd ones are symlinks with inline targets.
    std::size_t const n = erofs_image_reader::max_cached_blocks + 1000;
    auto name_of = [](std::size_t i) {
        char b[16];
        std::snprintf(b, sizeof b, "f%05zu", i);
        return std::string(b);
    };
    auto target_of = [](std::size_t i) { return "target-" + std::to_string(i); };
    std::uint32_t const first_dir_block = static_cast<std::uint32_t>(2 + n);
    std::vector<std::string> dir_blocks;
    {
        std::vector<std::tuple<std::string, std::uint64_t, erofs::file_type>> ents = {
            {".", 0, erofs::file_type::directory}, {"..", 0, erofs::file_type::directory}};
        for (std::size_t i = 0; i < n; ++i)
            ents.emplace_back(name_of(i), (1 + i) * 128, i % 2 ? erofs::file_type::symlink : erofs::file_type::regular);
        std::size_t at = 0;
        while (at < ents.size()) {
            std::size_t k = 0, names = 0;
            while (at + k < ents.size() && 12 * (k + 1) + names + std::get<0>(ents[at + k]).size() <= 4096)
                names += std::get<0>(ents[at + k++]).size();
            std::string block, text;
            for (std::size_t j = 0; j < k; ++j) {
                auto const& [name, nid, type] = ents[at + j];
                std::string d(12, '\0');
                erofs::encode_dirent(nid, static_cast<std::uint16_t>(12 * k + text.size()), type,
                                     std::span<std::byte, 12>(reinterpret_cast<std::byte*>(d.data()), 12));
                block += d;
                text += name;
            }
            dir_blocks.push_back(block + text);
            at += k;
        }
    }
    REQUIRE(dir_blocks.size() > 1);
    std::uint32_t const blocks = first_dir_block + static_cast<std::uint32_t>(dir_blocks.size());
    std::string img(std::size_t(blocks) * 4096, '\0');
    erofs::inode_fields root;
    root.mode = erofs::s_ifdir | 0755;
    root.size = (dir_blocks.size() - 1) * 4096 + dir_blocks.back().size();
    root.nlink = 2;
    root.i_u = first_dir_block;
    chunk_image::inode(img, 4096, root, false);
    for (std::size_t b = 0; b < dir_blocks.size(); ++b)
        img.replace((first_dir_block + b) * 4096, dir_blocks[b].size(), dir_blocks[b]);
    for (std::size_t i = 0; i < n; ++i) {
        erofs::inode_fields f;
        f.uid = static_cast<std::uint32_t>(i);
        std::uint64_t const at = (2 + i) * 4096;
        if (i % 2) {
            f.layout = erofs::data_layout::flat_inline;
            f.mode = erofs::s_iflnk | 0777;
            f.size = target_of(i).size();
            img.replace(at + 32, target_of(i).size(), target_of(i));
        } else {
            f.mode = erofs::s_ifreg | 0644;
        }
        chunk_image::inode(img, at, f, false);
    }
    erofs::superblock sb;
    sb.blocks = blocks;
    sb.meta_blkaddr = 1;
    sb.inos = n + 1;
    std::array<std::byte, 4096> b0;
    erofs::encode_block0(sb, b0);
    img.replace(0, 4096, reinterpret_cast<char const*>(b0.data()), 4096);
    temp_dir dir("erofs-reader-cache");
    write_all(dir / "many.erofs", img);
    img.clear();

    auto r = erofs_image_reader::open(dir / "many.erofs");
    CHECK(r.read_dir(r.inode(0)).size() == n + 2);
    // Walks the image; returns the entries seen and the first discrepancy.
    auto walk = [&](std::size_t& seen, std::string& problem) {
        error_code ec;
        std::string why;
        seen = 0;
        r.walk(
            [&](std::string_view path, erofs_inode_info const& i, error_code& vec) {
                ++seen;
                if (path.empty()) return;
                std::size_t const k = static_cast<std::size_t>(std::stoul(std::string(path.substr(1))));
                if (path != name_of(k) || i.uid != k || i.is_symlink() != (k % 2 == 1) ||
                    (i.is_symlink() && r.read_link(i, vec) != target_of(k)))
                    if (problem.empty()) problem = std::string(path) + " reads back wrong";
            },
            ec, &why);
        if (ec && problem.empty()) problem = why;
    };
    for (int pass = 0; pass < 2; ++pass) { // the second pass starts with the cache full of the last blocks
        INFO("pass " << pass);
        std::size_t seen = 0;
        std::string problem;
        walk(seen, problem);
        CHECK(problem.empty());
        CHECK(seen == n + 1);
    }
    std::size_t seen[2] = {};
    std::string problem[2];
    {
        std::thread other([&] { walk(seen[1], problem[1]); });
        walk(seen[0], problem[0]);
        other.join();
    }
    for (int t = 0; t < 2; ++t) {
        INFO("thread " << t);
        CHECK(problem[t].empty());
        CHECK(seen[t] == n + 1);
    }
}

TEST_CASE("erofs_image_reader: from_fd leaves the descriptor open and a visitor's error stops the walk of a moved reader")
{
    temp_dir dir("erofs-reader-fd");
    small_image s(dir.path());
    int fd = ::open((dir / "small.erofs").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    {
        auto r = erofs_image_reader::from_fd(fd);
        CHECK(r.native_handle() == fd);
        erofs_image_reader moved = std::move(r);
        CHECK_FALSE(r.is_open());
        CHECK(moved.is_open());
        std::vector<std::string> seen;
        error_code ec;
        moved.walk(
            [&](std::string_view p, erofs_inode_info const&, error_code& vec) {
                seen.emplace_back(p);
                if (p == "d/b") vec = make_error_code(error::cancelled);
            },
            ec);
        CHECK(ec == error::cancelled);
        CHECK(seen == std::vector<std::string>{"", "d", "d/a", "d/b"});
    }
    CHECK(::fcntl(fd, F_GETFD) != -1); // still open
    ::close(fd);
}

TEST_CASE("erofs_image_reader: random byte mutations never crash, hang or over-allocate")
{
    temp_dir dir("erofs-reader-fuzz");
    small_image s(dir.path());
    {
        // More structures in the layer: a two-block directory, extended inodes, a hardlink, block-sized symlinks.
        tar_writer tar;
        tar.dir("d/");
        tar.file("d/a", "aaa");
        tar.hardlink("d/h", "d/a");
        tar.file("d/c", noise(5000, 1));
        tar.symlink("d/s", std::string(100, 's'));
        tar.pax({{"linkpath", std::string(4000, 'L')}});
        tar.symlink("d/long", "x");
        tar.pax({{"SCHILY.xattr.user.k", "value"}, {"SCHILY.xattr.security.capability", capability}, {"uid", "77777"}});
        tar.file("x", "with xattr");
        for (int i = 0; i < 160; ++i) tar.file("two/f" + std::to_string(i), "");
        tar.end();
        build_layer(tar.str(), dir / "fuzz.erofs");
        s.bytes = read_all(dir / "fuzz.erofs");
        s.info = erofs_image_reader::open(dir / "fuzz.erofs").info();
    }
    chunk_image c;
    int dev = ::memfd_create("erofs-dev", MFD_CLOEXEC);
    REQUIRE(dev >= 0);
    REQUIRE(::pwrite(dev, c.dev.data(), c.dev.size(), 0) == static_cast<ssize_t>(c.dev.size()));
    std::vector<int> devs{-1, dev};
    int fd = ::memfd_create("erofs-fuzz", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    // OCISTORE_EROFS_FUZZ=<iterations>[:<seed>] runs a longer campaign (e.g. under sanitizers).
    int iterations = 2000;
    std::uint64_t seed = 20240611;
    if (char const* env = std::getenv("OCISTORE_EROFS_FUZZ")) {
        iterations = std::atoi(env);
        if (char const* colon = std::strchr(env, ':')) seed = std::strtoull(colon + 1, nullptr, 10);
    }
    std::mt19937_64 rng(seed);
    std::map<std::string, int> outcomes;
    auto start = std::chrono::steady_clock::now();
    for (int iter = 0; iter < iterations; ++iter) {
        std::string img = iter % 4 == 3 ? c.img : s.bytes;
        // Mostly metadata: the superblock, then the blocks from meta_blkaddr on.
        auto meta = static_cast<std::size_t>(iter % 4 == 3 ? 4096 : std::uint64_t(s.info.meta_blkaddr) * 4096);
        int const flips = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < flips; ++k) {
            std::size_t pos = rng() % 3 == 0 ? 1024 + rng() % 128 : meta + rng() % (img.size() - meta);
            switch (rng() % 4) {
            case 0: img[pos] = static_cast<char>(rng()); break;
            case 1: img[pos] = static_cast<char>(img[pos] ^ (1 << (rng() % 8))); break;
            case 2: img[pos] = static_cast<char>(0xFF); break;
            default: img[pos] = 0; break;
            }
        }
        if (rng() % 10 == 0) img.resize(rng() % img.size());
        if (rng() % 4 != 0 && img.size() >= 4096) fix_crc(img);
        REQUIRE(::ftruncate(fd, 0) == 0);
        REQUIRE(::pwrite(fd, img.data(), img.size(), 0) == static_cast<ssize_t>(img.size()));
        error_code ec;
        std::string why;
        auto r = erofs_image_reader::from_fd(fd, ec, &why);
        std::string vwhy;
        if (!ec) {
            r.walk(
                [&](std::string_view, erofs_inode_info const& n, error_code& vec) {
                    if (n.is_symlink()) r.read_link(n, vec, &vwhy);
                    if (n.is_regular() && n.size) {
                        std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(n.size, 256 << 10)), '\0');
                        r.read(n, 0, std::as_writable_bytes(std::span(buf)), vec, devs);
                        if (!vec && n.size > buf.size())
                            r.read(n, n.size - 100, std::as_writable_bytes(std::span(buf.data(), 100)), vec, devs);
                        if (vec) vwhy = "read: " + vec.message();
                    }
                },
                ec, &why);
            if (ec && why.empty()) why = vwhy;
        }
        std::string key = ec ? ec.message() : "ok";
        ++outcomes[key];
        if (ec) {
            INFO(iter << ": " << why);
            CHECK((ec == error::invalid_archive || ec == error::truncated || ec == error::limit_exceeded));
            CHECK_FALSE(why.empty());
        }
    }
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string summary;
    for (auto const& [k, v] : outcomes) summary += k + ": " + std::to_string(v) + "; ";
    MESSAGE(iterations << " mutations in " << secs << " s: " << summary);
    CHECK(outcomes["ok"] > 0);
    CHECK(outcomes.size() > 1);
    ::close(fd);
    ::close(dev);
}
