#include <ocistore/erofs/fsmeta_writer.hpp>

#include <ocistore/atomic_file.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>

#include <support/erofs_files.hpp>
#include <support/erofs_test.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::build_layer;
using ocistore_test::hdr;
using ocistore_test::mount_guard;
using ocistore_test::noise;
using ocistore_test::read_all;
using ocistore_test::run;
using ocistore_test::sha;
using ocistore_test::tar_header;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
using ocistore_test::tree_node;
using ocistore_test::tree_snapshot;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1700000000; // tar_header's default mtime

std::string const cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
std::string const cap2("\x01\x00\x00\x02\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

/// Layer images written from tars, and the fsmeta over them.
struct composed {
    std::vector<fs::path> layers;
    std::vector<layer_data_map> maps;
    std::vector<std::string> tags;
    fs::path fsmeta;
    fsmeta_result result;

    /// `fsck.erofs --device=L0 … [extra] fsmeta`.
    std::pair<int, std::string> fsck(std::string const& extra = {}) const
    {
        std::string cmd = "fsck.erofs";
        for (auto const& l : layers) cmd += " --device=" + l.string();
        return run(cmd + " " + extra + " " + fsmeta.string());
    }
    /// The flat disk fsmeta ‖ layer 0 ‖ … written to `out`.
    void flatten(fs::path const& out) const
    {
        std::ofstream o(out, std::ios::binary);
        o << read_all(fsmeta);
        for (auto const& l : layers) o << read_all(l);
    }
};

/// Writes each tar as a layer image in `dir`, then the fsmeta over them.
composed compose(fs::path const& dir, std::vector<std::string> const& tars, fsmeta_options options = {},
                 std::string const& name = "fsmeta.erofs")
{
    composed c;
    std::vector<erofs_image_reader> readers;
    for (std::size_t i = 0; i < tars.size(); ++i) {
        c.layers.push_back(dir / ("layer" + std::to_string(i) + ".erofs"));
        c.maps.push_back(build_layer(tars[i], c.layers.back()));
        c.tags.push_back(sha(tars[i]).substr(7));
        readers.push_back(erofs_image_reader::open(c.layers.back()));
    }
    c.fsmeta = dir / name;
    atomic_file file(c.fsmeta, {.mode = 0644, .durable = false});
    c.result = write_fsmeta(file.native_handle(), readers, c.tags, options);
    file.commit();
    return c;
}

/// What a merged tree must look like, built path by path.
struct expectation {
    tree_snapshot tree;
    std::uint64_t data_bytes = 0;

    tree_node& put(std::string const& path, char type, std::uint32_t mode)
    {
        tree_node n;
        n.type = type;
        n.mode = type == 'l' ? 0 : mode;
        n.mtime = t0;
        n.nlink = 1;
        return tree[path] = n;
    }
    tree_node& file(std::string const& path, std::string const& content, std::uint32_t mode = 0644)
    {
        auto& n = put(path, 'f', mode);
        n.size = content.size();
        n.content = sha(content);
        data_bytes += content.size();
        return n;
    }
    tree_node& dir(std::string const& path, std::uint32_t mode = 0755) { return put(path, 'd', mode); }
    void link_group(std::vector<std::string> const& paths)
    {
        for (auto const& p : paths) {
            tree[p].nlink = paths.size();
            tree[p].link_group = *std::min_element(paths.begin(), paths.end());
        }
    }
};

/// Three layers covering the merge rules, and the merged tree they must give.
struct stacked_layers {
    std::vector<std::string> tars;
    expectation expect;
    std::string big0 = noise((3u << 20) + 123, 1), big2 = noise((5u << 20) + 77, 2);

    stacked_layers()
    {
        tar_writer l0, l1, l2;

        // Layer 0: the base.
        l0.dir("./", 0711);
        l0.dir("etc/");
        l0.file("etc/passwd", "root:x:0:0\n");
        l0.file("etc/group", "root:x:0:\n");
        l0.hardlink("etc/group.lnk", "etc/group");
        l0.dir("bin/");
        l0.file("bin/busybox", big0, hdr(0755));
        l0.symlink("bin/sh", "busybox");
        l0.pax({{"SCHILY.xattr.security.capability", cap}, {"SCHILY.xattr.user.note", "ping"}});
        l0.file("bin/ping", "ELF ping", hdr(04755));
        l0.dir("dev/");
        l0.device("dev/null", '3', 1, 3);
        l0.device("dev/sda", '4', 8, 0);
        l0.fifo("dev/fifo");
        l0.dir("usr/");
        tar_header share = hdr(0700, '5');
        share.name = "usr/share/";
        share.uid = 5;
        share.gid = 6;
        share.mtime = 1600000000;
        l0.pax({{"SCHILY.xattr.user.keep", "1"}});
        l0.header(share);
        l0.file("usr/share/doc/a.txt", "a"); // usr/share/doc is implicit in every layer
        l0.dir("opq/");
        l0.file("opq/old1", "1");
        l0.dir("opq/sub/");
        l0.file("opq/sub/old2", "2");
        l0.dir("opq2/");
        l0.file("opq2/old", "o");
        l0.dir("gone/", 0700);
        l0.file("gone/x", "x");
        l0.dir("gone/sub/");
        l0.file("gone/sub/z", "z");
        l0.file("replaced.txt", "v0");
        l0.dir("dir2file/");
        l0.file("dir2file/c", "c");
        l0.file("file2dir", "f");
        l0.file("empty0", "");
        l0.dir("keep/");
        l0.file("keep/a", "a");
        l0.file("keep/b", "b");
        l0.dir("hl/");
        l0.file("hl/a", "hardlinked");
        l0.hardlink("hl/b", "hl/a");
        l0.hardlink("hl/c", "hl/a");
        l0.dir("xs/");
        for (int i = 0; i < 6; ++i) {
            l0.pax({{"SCHILY.xattr.user.shared", "a value that several files carry"},
                    {"SCHILY.xattr.user.own", std::to_string(i)}});
            l0.file("xs/f" + std::to_string(i), "xs" + std::to_string(i));
        }
        l0.file("d1/d2/d3/d4/d5/d6/d7/d8/deep.txt", "deep");
        l0.end();

        // Layer 1: whiteouts, opaque directories, replacements.
        l1.dir("./", 0750);
        l1.file("usr/share/doc/b.txt", "b"); // usr, usr/share: implicit here, keep layer 0's metadata
        l1.file("opq/.wh..wh..opq", "");     // opq: implicit here, opaque
        l1.file("opq/new", "n");
        l1.dir("opq2/", 0750);
        l1.file("opq2/.wh..wh..opq", "");
        l1.file("opq2/fresh", "f");
        l1.file(".wh.gone", "");
        l1.file("replaced.txt", "v1 is longer");
        l1.file("dir2file", "now a file");
        l1.dir("file2dir/");
        l1.file("file2dir/inner", "i");
        l1.file("empty1", "");
        l1.file("keep/.wh.a", "");
        l1.file("hl/.wh.a", "");
        l1.dir("newdir/");
        l1.file("newdir/.wh.ghost", ""); // a whiteout in a new subtree: dropped
        l1.file("newdir/real", "r");
        l1.file("twice.txt", "first");
        l1.file("twice.txt", "second"); // replaced within the layer
        l1.end();

        // Layer 2: no root entry; a directory recreated; a big file replaced.
        l2.dir("gone/");
        l2.file("gone/new", "again");
        l2.file("bin/busybox", big2, hdr(0755));
        l2.pax({{"SCHILY.xattr.security.capability", cap2}});
        l2.file("bin/newcap", "cap", hdr(0755));
        l2.pax({{"SCHILY.xattr.user.e", "1"}});
        l2.dir("etc/", 0750);
        l2.file("usr/lib/x", "x");
        l2.file("xs/f0", "replaced f0");
        l2.end();
        tars = {l0.str(), l1.str(), l2.str()};

        auto& e = expect;
        e.dir(".", 0750);
        e.dir("etc", 0750).xattrs = {{"user.e", "1"}};
        e.file("etc/passwd", "root:x:0:0\n");
        e.file("etc/group", "root:x:0:\n");
        e.tree["etc/group.lnk"] = e.tree["etc/group"];
        e.link_group({"etc/group", "etc/group.lnk"});
        e.dir("bin");
        e.file("bin/busybox", big2, 0755);
        e.put("bin/sh", 'l', 0).link = "busybox";
        e.file("bin/ping", "ELF ping", 04755).xattrs = {{"security.capability", cap}, {"user.note", "ping"}};
        e.file("bin/newcap", "cap", 0755).xattrs = {{"security.capability", cap2}};
        e.dir("dev");
        auto& null = e.put("dev/null", 'c', 0644);
        null.major = 1, null.minor = 3;
        auto& sda = e.put("dev/sda", 'b', 0644);
        sda.major = 8, sda.minor = 0;
        e.put("dev/fifo", 'p', 0644);
        e.dir("usr");
        auto& sh = e.dir("usr/share", 0700);
        sh.uid = 5, sh.gid = 6, sh.mtime = 1600000000;
        sh.xattrs = {{"user.keep", "1"}};
        e.dir("usr/share/doc");
        e.file("usr/share/doc/a.txt", "a");
        e.file("usr/share/doc/b.txt", "b");
        e.dir("usr/lib");
        e.file("usr/lib/x", "x");
        e.dir("opq");
        e.file("opq/new", "n");
        e.dir("opq2", 0750);
        e.file("opq2/fresh", "f");
        e.dir("gone");
        e.file("gone/new", "again");
        e.file("replaced.txt", "v1 is longer");
        e.file("dir2file", "now a file");
        e.dir("file2dir");
        e.file("file2dir/inner", "i");
        e.file("empty0", "");
        e.file("empty1", "");
        e.dir("keep");
        e.file("keep/b", "b");
        e.dir("hl");
        e.file("hl/b", "hardlinked");
        e.file("hl/c", "hardlinked");
        e.link_group({"hl/b", "hl/c"});
        e.dir("newdir");
        e.file("newdir/real", "r");
        e.file("twice.txt", "second");
        e.dir("xs");
        e.file("xs/f0", "replaced f0");
        for (int i = 1; i < 6; ++i)
            e.file("xs/f" + std::to_string(i), "xs" + std::to_string(i)).xattrs = {
                {"user.own", std::to_string(i)}, {"user.shared", "a value that several files carry"}};
        std::string d;
        for (int i = 1; i <= 8; ++i) e.dir(d += (d.empty() ? "" : "/") + ("d" + std::to_string(i)));
        e.file(d + "/deep.txt", "deep");
    }
};

/// Every inode of an image by path (the root as ".").
std::map<std::string, erofs_inode_info> inodes_of(erofs_image_reader const& r)
{
    std::map<std::string, erofs_inode_info> out;
    r.walk([&](std::string_view path, erofs_inode_info const& i, error_code&) {
        out[path.empty() ? std::string(".") : std::string(path)] = i;
    });
    return out;
}

/// Opens the layer images read-only: index i + 1 is layer i (index 0 = -1, the fsmeta itself).
struct device_fds {
    std::vector<int> fds{-1};
    explicit device_fds(std::vector<fs::path> const& layers)
    {
        for (auto const& l : layers) fds.push_back(::open(l.c_str(), O_RDONLY | O_CLOEXEC));
    }
    ~device_fds()
    {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
};

/// The merged tree as erofs_image_reader sees it through the device table, in tree_snapshot form.
tree_snapshot snapshot_through_reader(composed const& c)
{
    auto r = erofs_image_reader::open(c.fsmeta);
    device_fds dev(c.layers);
    return ocistore_test::snapshot_erofs(
        r, [&](erofs_inode_info const& i) { return ocistore_test::erofs_content(r, i, dev.fds); });
}

/// Whether a plain layer image loop-mounts here; says why not when it does not.
bool probe_mount(fs::path const& dir, fs::path const& image)
{
    if (!ocistore_test::loop_mount_possible()) {
        MESSAGE("not root or no loop devices: kernel mount checks skipped");
        return false;
    }
    fs::create_directories(dir);
    mount_guard probe{dir.string()};
    auto [rc, out] = probe.mount(image);
    if (rc != 0) MESSAGE("mount -t erofs of a layer image failed, kernel checks skipped: " << out);
    return rc == 0;
}

} // namespace

TEST_CASE("write_fsmeta: the merged tree of three layers, read back through the device table")
{
    temp_dir dir("fsmeta-merge");
    stacked_layers s;
    auto c = compose(dir.path(), s.tars);
    auto got = snapshot_through_reader(c);
    std::string diff = ocistore_test::diff_trees(s.expect.tree, got);
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("write_fsmeta: fsck.erofs checks and extracts the fsmeta with its layer devices")
{
    temp_dir dir("fsmeta-fsck");
    stacked_layers s;
    auto c = compose(dir.path(), s.tars);
    auto [rc, out] = c.fsck();
    INFO(out);
    CHECK(rc == 0);

    auto [xrc, xout] = c.fsck("--extract=" + (dir / "x").string());
    INFO(xout);
    REQUIRE(xrc == 0);
    // What --extract loses, the kernel test checks.
    std::string diff = ocistore_test::diff_extracted(s.expect.tree, dir / "x");
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("write_fsmeta: the kernel mounts fsmeta ‖ layers as one EROFS device and shows the merged tree")
{
    temp_dir dir("fsmeta-mount");
    stacked_layers s;
    auto c = compose(dir.path(), s.tars);
    if (!probe_mount(dir / "probe", c.layers[0])) return;
    c.flatten(dir / "flat.img");
    fs::create_directory(dir / "mnt");
    mount_guard guard{(dir / "mnt").string()};
    auto [rc, out] = guard.mount(dir / "flat.img"); // no device= option: flat-device mode
    REQUIRE_MESSAGE(rc == 0, out);
    auto got = ocistore_test::snapshot_tree(guard.dir);
    std::string diff = ocistore_test::diff_trees(s.expect.tree, got);
    CHECK_MESSAGE(diff.empty(), diff);
    CHECK(fs::hard_link_count(dir / "mnt" / "usr") == 2 + 2);
}

TEST_CASE("write_fsmeta: chunk indexes, device table and superblock")
{
    temp_dir dir("fsmeta-layout");
    stacked_layers s;
    auto c = compose(dir.path(), s.tars, {{std::byte{7}}});
    auto r = erofs_image_reader::open(c.fsmeta);
    auto const& info = r.info();

    // Superblock and device table.
    CHECK(info.feature_incompat == (erofs::feature_incompat_chunked_file | erofs::feature_incompat_device_table));
    CHECK(info.extra_devices == 3);
    CHECK(info.devt_slotoff == 9);
    CHECK(info.meta_blkaddr == 1);
    CHECK(info.blocks == c.result.total_blocks);
    CHECK(fs::file_size(c.fsmeta) == 4096ull * c.result.total_blocks);
    CHECK(info.build_time == std::uint64_t(t0));
    REQUIRE(info.devices.size() == 3);
    std::uint32_t mapped = c.result.total_blocks;
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(info.devices[i].tag == c.tags[i]);
        CHECK(info.devices[i].tag.size() == 64);
        CHECK(info.devices[i].blocks == c.maps[i].total_blocks);
        CHECK(c.result.layer_blocks[i] == c.maps[i].total_blocks);
        CHECK(info.devices[i].mapped_blkaddr == mapped);
        CHECK(c.result.mapped_blkaddr[i] == mapped);
        mapped += c.maps[i].total_blocks;
    }
    CHECK(info.inodes == c.result.inodes);

    // One chunk per file, sized to the file, pointing at the layer's blocks.
    auto nodes = inodes_of(r);
    auto const& busybox = nodes.at("bin/busybox");
    CHECK(busybox.layout == erofs::data_layout::chunk_based);
    CHECK(busybox.chunk_bits == 23); // 5 MiB + 77 → an 8 MiB chunk
    REQUIRE(busybox.chunks.size() == 1);
    CHECK(busybox.chunks[0].device_id == 3);
    CHECK(busybox.chunks[0].block == c.maps[2].files.at("bin/busybox").start_block);
    auto const& passwd = nodes.at("etc/passwd");
    CHECK(passwd.chunk_bits == 12);
    REQUIRE(passwd.chunks.size() == 1);
    CHECK(passwd.chunks[0].device_id == 1);
    CHECK(passwd.chunks[0].block == c.maps[0].files.at("etc/passwd").start_block);
    CHECK(nodes.at("replaced.txt").chunks.at(0).device_id == 2);
    CHECK(nodes.at("empty0").layout == erofs::data_layout::chunk_based);
    CHECK(nodes.at("empty0").chunks.empty());
    CHECK(nodes.at("hl/b").nid == nodes.at("hl/c").nid);
    CHECK(nodes.at("hl/b").nlink == 2);
    // xattrs before the 8-byte-aligned index array: the reader found the chunk at the aligned offset.
    CHECK(nodes.at("bin/ping").xattr_ibody_size % 8 != 0);
    CHECK(nodes.at("bin/ping").chunks.at(0).block == c.maps[0].files.at("bin/ping").start_block);
    // The xattr carried by five files is shared: each ibody holds its id and one inline entry.
    CHECK(info.xattr_blkaddr == info.meta_blkaddr);
    CHECK(nodes.at("xs/f1").xattr_ibody_size == 12 + 4 + erofs::xattr_entry_size(3, 1));
    // No file data in the fsmeta: it is a few blocks however large the files.
    CHECK(c.result.total_blocks <= 4);
    CHECK(fs::file_size(c.fsmeta) * 100 < s.expect.data_bytes);
}

TEST_CASE("write_fsmeta: output is deterministic, the seed changes only the UUID")
{
    temp_dir dir("fsmeta-det");
    stacked_layers s;
    std::vector<std::byte> seed{std::byte{1}, std::byte{2}};
    auto a = compose(dir.path(), s.tars, {seed}, "a.erofs");
    auto b = compose(dir.path(), s.tars, {seed}, "b.erofs");
    auto z = compose(dir.path(), s.tars, {{std::byte{3}}}, "z.erofs");
    std::string x = read_all(a.fsmeta), y = read_all(b.fsmeta), w = read_all(z.fsmeta);
    CHECK(x == y);
    CHECK(a.result == b.result);
    REQUIRE(x.size() == w.size());
    CHECK(x.compare(1024 + 0x30, 16, w, 1024 + 0x30, 16) != 0);
    CHECK(x.substr(4096) == w.substr(4096));
    CHECK(x.substr(1024 + 0x50) == w.substr(1024 + 0x50)); // device table included
}

TEST_CASE("write_fsmeta: 30 layers spill the device table past block 0, opaque roots and implicit roots")
{
    temp_dir dir("fsmeta-many");
    std::vector<std::string> tars;
    expectation e;
    e.dir("."); // no layer has a "./" entry: 0755 root:root, the build time
    e.dir("common");
    for (int i = 0; i < 30; ++i) {
        tar_writer t;
        std::string n = std::to_string(i);
        if (i == 20) t.file(".wh..wh..opq", ""); // an opaque root hides layers 0..19
        t.file("own" + n, "layer " + n);
        if (i > 0) t.file(".wh.own" + std::to_string(i - 1), "");
        t.file("common/" + n, n);
        t.end();
        tars.push_back(t.str());
    }
    e.file("own29", "layer 29");
    for (int i = 20; i < 30; ++i) e.file("common/" + std::to_string(i), std::to_string(i));
    auto c = compose(dir.path(), tars);
    auto r = erofs_image_reader::open(c.fsmeta);
    CHECK(r.info().meta_blkaddr == 2); // 1152 + 30·128 bytes of superblock and table
    REQUIRE(r.info().devices.size() == 30);
    CHECK(r.info().devices[29].tag == c.tags[29]);
    std::string diff = ocistore_test::diff_trees(e.tree, snapshot_through_reader(c));
    CHECK_MESSAGE(diff.empty(), diff);
    auto [rc, out] = c.fsck("--extract=" + (dir / "x").string());
    INFO(out);
    CHECK(rc == 0);
    ocistore_test::tree_compare how;
    how.dir_times = false; // fsck.erofs sets the root's time on the extraction directory only when it creates it
    diff = ocistore_test::diff_trees(e.tree, ocistore_test::snapshot_tree(dir / "x"), how);
    CHECK_MESSAGE(diff.empty(), diff);

    if (!probe_mount(dir / "probe", c.layers[0])) return;
    c.flatten(dir / "flat.img");
    fs::create_directory(dir / "mnt");
    mount_guard guard{(dir / "mnt").string()};
    auto [mrc, mout] = guard.mount(dir / "flat.img");
    REQUIRE_MESSAGE(mrc == 0, mout);
    diff = ocistore_test::diff_trees(e.tree, ocistore_test::snapshot_tree(guard.dir));
    CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("write_fsmeta: no layers give an empty root")
{
    temp_dir dir("fsmeta-none");
    auto c = compose(dir.path(), {});
    CHECK(c.result.total_blocks == 2);
    CHECK(c.result.inodes == 1);
    CHECK(c.fsck().first == 0);
    auto r = erofs_image_reader::open(c.fsmeta);
    CHECK(r.info().extra_devices == 0);
    CHECK(r.info().feature_incompat == 0);
    CHECK(inodes_of(r).size() == 1);
}

TEST_CASE("write_fsmeta: bad arguments and unusable layers fail with a reason")
{
    temp_dir dir("fsmeta-err");
    tar_writer t;
    t.file("f", "x");
    t.end();
    build_layer(t.str(), dir / "l.erofs");
    std::vector<erofs_image_reader> layers;
    layers.push_back(erofs_image_reader::open(dir / "l.erofs"));
    atomic_file out(dir / "m.erofs", {.mode = 0644, .durable = false});
    error_code ec;
    std::string why;

    SUBCASE("tag count")
    {
        std::vector<std::string> tags{"a", "b"};
        write_fsmeta(out.native_handle(), layers, tags, {}, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("1 layers but 2 tags") != std::string::npos);
        CHECK_THROWS_WITH_AS(write_fsmeta(out.native_handle(), layers, tags), doctest::Contains("2 tags"), system_error);
    }
    SUBCASE("tag too long")
    {
        std::vector<std::string> tags{std::string(65, 'a')};
        write_fsmeta(out.native_handle(), layers, tags, {}, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("layer 0: tag of 65 bytes") != std::string::npos);
    }
    SUBCASE("a reader that is not open")
    {
        std::vector<erofs_image_reader> none(1);
        std::vector<std::string> tags{"a"};
        write_fsmeta(out.native_handle(), none, tags, {}, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("not open") != std::string::npos);
    }
    SUBCASE("a layer that is itself an fsmeta")
    {
        std::vector<std::string> tags{"a"};
        {
            atomic_file m(dir / "inner.erofs", {.mode = 0644, .durable = false});
            write_fsmeta(m.native_handle(), layers, tags);
            m.commit();
        }
        std::vector<erofs_image_reader> inner;
        inner.push_back(erofs_image_reader::open(dir / "inner.erofs"));
        write_fsmeta(out.native_handle(), inner, tags, {}, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("device table of its own") != std::string::npos);
    }
    SUBCASE("a foreign image with tail-inlined file data")
    {
        fs::create_directories(dir / "src/sub");
        std::ofstream(dir / "src/sub/small") << "tail-packed";
        auto [rc, mk] = run("mkfs.erofs " + (dir / "mkfs.erofs").string() + " " + (dir / "src").string());
        REQUIRE_MESSAGE(rc == 0, mk);
        std::vector<erofs_image_reader> foreign;
        foreign.push_back(erofs_image_reader::open(dir / "mkfs.erofs"));
        std::vector<std::string> tags{"a"};
        write_fsmeta(out.native_handle(), foreign, tags, {}, ec, &why);
        CHECK(ec == error::unsupported_entry);
        CHECK(why.find("layer 0: \"sub/small\": its data is tail-inlined") != std::string::npos);
    }
}
