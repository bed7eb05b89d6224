#include <ocistore/builder/rootfs_builder.hpp>

#include <ocistore/concepts.hpp>
#include <ocistore/media_types.hpp>

#include <support/builder_driver.hpp>
#include <support/compress.hpp>
#include <support/memory_source.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::diff_id_of;
using ocistore_test::memory_source;
using ocistore_test::snapshot_tree;
using ocistore_test::tar_header;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
using ocistore_test::tree_snapshot;
namespace fs = std::filesystem;

static_assert(artifact_builder<rootfs_builder>);
static_assert(rootfs_builder::kind == "rootfs");

namespace {

constexpr path_resolution both_resolutions[] = {path_resolution::automatic, path_resolution::component_walk};

/// Whether the test may apply owners and create devices; says why not otherwise.
bool running_as_root()
{
    if (::geteuid() == 0) return true;
    MESSAGE("not running as root: ownership and device nodes cannot be applied; skipped");
    return false;
}

std::string name_of(path_resolution r) { return r == path_resolution::automatic ? "openat2" : "component walk"; }

/// A store root next to a sentinel directory that no operation may touch.
struct fixture {
    temp_dir dir{"rootfs-builder"};
    fs::path store = dir / "store";
    fs::path sentinel = dir / "sentinel";

    fixture()
    {
        fs::create_directories(store);
        fs::create_directories(sentinel / "sub");
        std::ofstream(sentinel / "secret") << "do not touch";
        std::ofstream(sentinel / "sub" / "file") << "nor this";
    }

    rootfs_builder make(path_resolution r = path_resolution::automatic, ownership_mode o = ownership_mode::automatic)
    {
        rootfs_options opt;
        opt.resolution = r;
        opt.ownership = o;
        opt.durable = false;
        return rootfs_builder(store, opt);
    }

    /// Entries of the work directory: empty when nothing was left behind.
    std::vector<std::string> leftovers() const
    {
        std::vector<std::string> out;
        if (!fs::exists(store / "tmp")) return out;
        for (auto const& e : fs::directory_iterator(store / "tmp")) out.push_back(e.path().filename().string());
        return out;
    }
};

tar_entry make_entry(std::string path, entry_type type, std::uint32_t mode = 0644)
{
    tar_entry e;
    e.path = std::move(path);
    e.type = type;
    e.mode = mode;
    e.mtime = 1700000000;
    return e;
}
tar_entry dir_entry(std::string path, std::uint32_t mode = 0755)
{
    return make_entry(std::move(path), entry_type::directory, mode);
}
tar_entry file_entry(std::string path, std::size_t size, std::uint32_t mode = 0644)
{
    tar_entry e = make_entry(std::move(path), entry_type::regular, mode);
    e.size = size;
    return e;
}
tar_entry link_entry(std::string path, std::string target, entry_type type = entry_type::symlink)
{
    tar_entry e = make_entry(std::move(path), type, 0777);
    e.link_target = std::move(target);
    return e;
}

/// One crafted entry and its data.
struct crafted {
    tar_entry entry;
    std::string data;
};

/// Feeds crafted entries to a new sink; stops at the first failure (ec, why set).
std::optional<rootfs_builder::prepared_layer> feed_crafted(rootfs_builder& b, std::vector<crafted> const& entries,
                                                           error_code& ec, std::string& why, std::string seed = "c")
{
    for (auto const& c : entries) seed += c.entry.path + c.entry.link_target + c.data;
    auto sink = b.begin_layer(layer_info{diff_id_of(seed), 0}, ec, &why);
    if (ec) return std::nullopt;
    for (auto const& c : entries) {
        memory_source src(c.data, 7);
        sink.add_entry(c.entry, src, ec, &why);
        if (ec) return std::nullopt;
    }
    auto p = sink.finish(ec, &why);
    if (ec) return std::nullopt;
    return std::optional<rootfs_builder::prepared_layer>(std::move(p));
}

/// Builds every layer then composes them under a key derived from the layers.
rootfs_builder::image_result compose_tars(rootfs_builder& b, std::vector<std::string> const& tars)
{
    std::string all;
    for (auto const& t : tars) all += diff_id_of(t).str();
    return ocistore_test::build_image(b, diff_id_of(all), tars);
}

std::string read_text(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool exists_nofollow(fs::path const& p)
{
    struct ::stat st;
    return ::lstat(p.c_str(), &st) == 0;
}

boost::json::object read_json(fs::path const& p) { return boost::json::parse(read_text(p)).as_object(); }

/// 20 bytes of a v2 file capability (cap_net_raw, effective).
std::string capability_value()
{
    std::string v(20, '\0');
    v[0] = 0x01, v[3] = 0x02; // magic 0x02000001, little-endian, effective flag
    v[4] = 0x00, v[5] = 0x20; // permitted: CAP_NET_RAW (13) -> bit 13
    return v;
}

/// A layer with one entry of every type and the features that need care.
std::string every_type_layer()
{
    tar_writer w;
    tar_header root;
    root.name = "./";
    root.type = '5';
    root.mode = 0750;
    root.mtime = 1600000000;
    w.header(root);
    w.dir("etc/", 0755);
    tar_header h;
    h.mode = 04755;
    h.uid = 1000;
    h.gid = 2000;
    w.file("etc/setuid", "#!/bin/sh\n", h);
    w.pax({{"mtime", "1700000000.123456789"}, {"SCHILY.xattr.user.comment", std::string("a\0b", 3)},
           {"SCHILY.xattr.security.capability", capability_value()}});
    w.file("etc/ping", "ELF");
    w.dir("tmp/", 01777);
    w.symlink("etc/abs", "/etc/passwd");
    w.symlink("etc/rel", "../tmp");
    w.file("etc/group-a", "shared content");
    w.hardlink("etc/group-b", "etc/group-a");
    w.hardlink("tmp/group-c", "etc/group-a");
    w.dir("dev/");
    w.device("dev/null", '3', 1, 3);
    w.device("dev/loop0", '4', 7, 0);
    w.fifo("dev/fifo");
    std::string const long_name = "deep/" + std::string(120, 'n') + "/" + std::string(150, 'm');
    w.pax({{"path", long_name}});
    w.file("deep/placeholder", "long");
    std::string const long_target = std::string(200, 't');
    w.pax({{"linkpath", long_target}});
    w.symlink("long-link", "x");
    tar_header big_uid;
    big_uid.uid = 70000;
    big_uid.gid = 70001;
    w.file("owned", "o", big_uid);
    w.sparse_file("sparse", 1 << 20, {{0, "head"}, {(1 << 20) - 4, "tail"}});
    w.end();
    return w.str();
}

std::string long_name_path() { return "deep/" + std::string(120, 'n') + "/" + std::string(150, 'm'); }

} // namespace

// ---------------------------------------------------------------------------------------------
// Entries, metadata and the layer tree
// ---------------------------------------------------------------------------------------------

TEST_CASE("every entry type is extracted with its metadata, in both resolution modes")
{
    if (!running_as_root()) return;
    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        fixture f;
        auto b = f.make(r);
        CHECK(b.ownership() == ownership_mode::apply);
        CHECK(b.uses_openat2() == (r == path_resolution::automatic));
        auto const image = compose_tars(b, {every_type_layer()});
        for (fs::path const& root : {b.layer_directory(image.layers[0]) / "tree", image.rootfs}) {
            CAPTURE(root);
            tree_snapshot const s = snapshot_tree(root);
            CHECK(s.at(".").mode == 0750);
            CHECK(s.at(".").mtime == 1600000000);
            auto const& setuid = s.at("etc/setuid");
            CHECK(setuid.mode == 04755);
            CHECK(setuid.uid == 1000);
            CHECK(setuid.gid == 2000);
            CHECK(setuid.mtime == 1700000000);
            auto const& ping = s.at("etc/ping");
            CHECK(ping.mtime_nsec == 123456789);
            REQUIRE(ping.xattrs.size() == 2);
            CHECK(ping.xattrs[0] == std::pair<std::string, std::string>("security.capability", capability_value()));
            CHECK(ping.xattrs[1] == std::pair<std::string, std::string>("user.comment", std::string("a\0b", 3)));
            CHECK(s.at("tmp").mode == 01777);
            CHECK(s.at("etc/abs").type == 'l');
            CHECK(s.at("etc/abs").link == "/etc/passwd");
            CHECK(s.at("etc/rel").link == "../tmp");
            CHECK(s.at("etc/group-a").nlink == 3);
            CHECK(s.at("etc/group-b").link_group == "etc/group-a");
            CHECK(s.at("tmp/group-c").link_group == "etc/group-a");
            CHECK(s.at("dev/null").type == 'c');
            CHECK(s.at("dev/null").major == 1);
            CHECK(s.at("dev/null").minor == 3);
            CHECK(s.at("dev/loop0").type == 'b');
            CHECK(s.at("dev/loop0").major == 7);
            CHECK(s.at("dev/fifo").type == 'p');
            CHECK(s.at(long_name_path()).size == 4);
            CHECK(s.at("long-link").link == std::string(200, 't'));
            CHECK(s.at("owned").uid == 70000);
            CHECK(s.at("owned").gid == 70001);
            auto const& sparse = s.at("sparse");
            CHECK(sparse.size == 1 << 20);
            CHECK(sparse.blocks < 64); // the hole stayed a hole (1 MiB would be 2048 blocks)
            std::string const content = read_text(root / "sparse");
            CHECK(content.substr(0, 4) == "head");
            CHECK(content.substr((1 << 20) - 4) == "tail");
            CHECK(content.find_first_not_of('\0', 4) == (1 << 20) - 4);
        }
        CHECK(f.leftovers().empty());
    }
}

TEST_CASE("layer.json lists whiteouts, opaque and implicit directories, the tree has no markers")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.dir("a/");
    w.file("a/.wh.x", "");
    w.file("b/c/.wh..wh..opq", "");
    w.file(".wh.top", "");
    w.file("implicit/child", "c");
    w.end();
    auto layer = ocistore_test::build_layer(b, w.str());
    CHECK(layer.entries == 5);
    auto const j = read_json(layer.path / "layer.json");
    CHECK(j.at("identity").as_string() == b.identity());
    CHECK(j.at("diff_id").as_string() == diff_id_of(w.str()).str());
    CHECK(j.at("whiteouts").as_array() == boost::json::array{"a/x", "top"});
    CHECK(j.at("opaque").as_array() == boost::json::array{"b/c"});
    // "." counts as implicit: the layer has no root entry.
    CHECK(j.at("implicit_dirs").as_array() == boost::json::array{".", "b", "b/c", "implicit"});
    auto const s = snapshot_tree(layer.path / "tree");
    CHECK(ocistore_test::paths_of(s) == std::vector<std::string>{".", "a", "b", "b/c", "implicit", "implicit/child"});
    CHECK(s.at("implicit").mode == 0755);
    CHECK(s.at("implicit").mtime == 0);
}

TEST_CASE("duplicate entries: the last one wins")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.file("x", "first");
    w.file("x", "second");
    w.dir("d/", 0700);
    w.file("d/child", "c");
    w.dir("d/", 0751); // a directory over a directory keeps its children, takes the new metadata
    w.dir("e/");
    w.file("e/child", "c");
    w.file("e", "now a file"); // a non-directory over a directory replaces the whole subtree
    w.symlink("s", "somewhere");
    w.file("s", "now a file");
    w.file("t", "a file");
    w.dir("t/"); // a directory over a file
    w.file("t/inside", "i");
    w.end();
    auto const image = compose_tars(b, {w.str()});
    auto const s = snapshot_tree(image.rootfs);
    CHECK(read_text(image.rootfs / "x") == "second");
    CHECK(s.at("d").mode == 0751);
    CHECK(s.count("d/child"));
    CHECK(s.at("e").type == 'f');
    CHECK_FALSE(s.count("e/child"));
    CHECK(s.at("s").type == 'f');
    CHECK(s.at("t").type == 'd');
    CHECK(s.count("t/inside"));
}

TEST_CASE("directory modes and times are applied after everything inside them")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    tar_header ro;
    ro.name = "ro/";
    ro.type = '5';
    ro.mode = 0555;
    ro.mtime = 1234567890;
    w.header(ro);
    w.file("ro/a", "a");
    w.dir("ro/sub/", 0500);
    w.file("ro/sub/b", "b");
    w.end();
    auto const image = compose_tars(b, {w.str()});
    auto const s = snapshot_tree(image.rootfs);
    if (b.ownership() == ownership_mode::apply) {
        CHECK(s.at("ro").mode == 0555);
        CHECK(s.at("ro/sub").mode == 0500);
    } else { // the tree keeps u+rwx so that the builder can use it; the real mode is recorded
        CHECK(s.at("ro").mode == 0755);
        CHECK(s.at("ro/sub").mode == 0700);
        auto const j = read_json(image.path / "image.json");
        CHECK(j.at("records").at("ro").at("mode").to_number<std::uint32_t>() == 0555);
        CHECK(j.at("records").at("ro/sub").at("mode").to_number<std::uint32_t>() == 0500);
    }
    CHECK(s.at("ro").mtime == 1234567890);
    CHECK(s.at("ro/sub").mtime == 1700000000);
}

TEST_CASE("a regular file's data must be as long as the entry says")
{
    fixture f;
    auto b = f.make();
    error_code ec;
    std::string why;
    auto p = feed_crafted(b, {{file_entry("short", 10), "12345"}}, ec, why);
    CHECK_FALSE(p);
    CHECK(ec == error::truncated);
    CHECK(why == "entry 'short': data ends after 5 of 10 bytes");
    CHECK(f.leftovers().empty()); // the sink's temporaries went with it
}

TEST_CASE("a source failure is reported with its own code and is sticky")
{
    fixture f;
    auto b = f.make();
    error_code ec;
    std::string why;
    auto sink = b.begin_layer(layer_info{diff_id_of("src"), 0}, ec, &why);
    std::string const bytes(100, 'x');
    memory_source src(bytes, 10);
    src.fail_at(50, make_error_code(error::digest_mismatch));
    sink.add_entry(file_entry("f", 100), src, ec, &why);
    CHECK(ec == error::digest_mismatch);
    CHECK(why.find("entry 'f': reading its data at byte 50") == 0);
    sink.add_entry(dir_entry("d"), byte_source_ref{}, ec, &why);
    CHECK(ec == error::digest_mismatch);
    auto p = sink.finish(ec, &why);
    CHECK(ec == error::digest_mismatch);
    CHECK_FALSE(p.has_tree());
    try {
        sink.add_entry(dir_entry("d"), byte_source_ref{});
        FAIL("must throw");
    } catch (system_error const& e) {
        CHECK(e.code() == error::digest_mismatch);
        CHECK(std::string(e.what()).find("entry 'f'") != std::string::npos);
    }
}

TEST_CASE("uids beyond 32 bits cannot be applied, but can be recorded")
{
    fixture f;
    tar_entry e = file_entry("huge", 0);
    e.uid = 1ull << 33;
    {
        auto b = f.make(path_resolution::automatic, ownership_mode::apply);
        error_code ec;
        std::string why;
        CHECK_FALSE(feed_crafted(b, {{e, ""}}, ec, why));
        CHECK(ec == error::unsupported_entry);
        CHECK(why == "entry 'huge': uid 8589934592 / gid 0 do not fit uid_t / gid_t");
    }
    {
        auto b = f.make(path_resolution::automatic, ownership_mode::record);
        error_code ec;
        std::string why;
        auto p = feed_crafted(b, {{e, ""}}, ec, why);
        REQUIRE(p);
        auto layer = b.commit_layer(std::move(*p));
        auto const j = read_json(layer.path / "layer.json");
        CHECK(j.at("records").at("huge").at("uid").to_number<std::uint64_t>() == 1ull << 33);
    }
}

TEST_CASE("xattrs that cannot be set become warnings, kept with the layer")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.pax({{"SCHILY.xattr.user.on-symlink", "v"}}); // user.* is not allowed on symlinks
    w.symlink("l", "t");
    w.pax({{"SCHILY.xattr.weird.name", "v"}});
    w.file("f", "x");
    w.end();
    auto layer = ocistore_test::build_layer(b, w.str());
    REQUIRE(layer.warnings.size() == 2);
    CHECK(layer.warnings[0].path == "l");
    CHECK(layer.warnings[0].message.find("extended attribute 'user.on-symlink' not set") == 0);
    CHECK(layer.warnings[0].code == std::errc::operation_not_permitted);
    CHECK(layer.warnings[1].path == "f");
    CHECK(layer.warnings[1].message == "extended attribute 'weird.name' not set: unknown namespace");
    auto again = b.layer(layer.diff_id);
    REQUIRE(again);
    CHECK(again->warnings == layer.warnings);
}

TEST_CASE("file names that are not UTF-8 survive the metadata files")
{
    fixture f;
    auto b = f.make();
    std::string const odd = "caf\xe9";
    tar_writer w1;
    w1.file(odd, "x");
    w1.file("other", "y");
    w1.end();
    tar_writer w2;
    w2.file(".wh." + odd, "");
    w2.end();
    auto const image = compose_tars(b, {w1.str(), w2.str()});
    CHECK(b.has_layer(diff_id_of(w2.str())));
    auto const s = snapshot_tree(image.rootfs);
    CHECK(ocistore_test::paths_of(s) == std::vector<std::string>{".", "other"});
}

// ---------------------------------------------------------------------------------------------
// Whiteouts, opaque directories, implicit directories: compose semantics
// ---------------------------------------------------------------------------------------------

namespace {

std::string base_layer()
{
    tar_writer w;
    w.dir("a/");
    w.file("a/x", "x");
    w.file("a/y", "y");
    w.dir("b/");
    w.file("b/inner", "i");
    w.file("c", "c");
    w.dir("d/");
    w.file("d/old1", "1");
    w.dir("d/sub/");
    w.file("d/sub/old2", "2");
    w.end();
    return w.str();
}

std::vector<std::string> image_paths(rootfs_builder& b, std::vector<std::string> const& tars)
{
    return ocistore_test::paths_of(snapshot_tree(compose_tars(b, tars).rootfs));
}

} // namespace

TEST_CASE("whiteouts delete lower entries and are not themselves visible")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.file("a/.wh.x", "");
    w.file(".wh.b", "");
    w.file(".wh.c", "");
    w.file(".wh.never-existed", "");
    w.end();
    CHECK(image_paths(b, {base_layer(), w.str()}) ==
          std::vector<std::string>{".", "a", "a/y", "d", "d/old1", "d/sub", "d/sub/old2"});
}

TEST_CASE("an opaque directory hides all lower children but keeps its own, whatever the order")
{
    fixture f;
    auto b = f.make();
    std::vector<std::string> const expected{".", "a", "a/x",   "a/y",    "b",       "b/inner",
                                            "c", "d", "d/new", "d/sub2", "d/sub2/f"};
    SUBCASE("marker first")
    {
        tar_writer w;
        w.dir("d/");
        w.file("d/.wh..wh..opq", "");
        w.file("d/new", "n");
        w.dir("d/sub2/");
        w.file("d/sub2/f", "f");
        w.end();
        CHECK(image_paths(b, {base_layer(), w.str()}) == expected);
    }
    SUBCASE("marker last")
    {
        tar_writer w;
        w.dir("d/");
        w.file("d/new", "n");
        w.dir("d/sub2/");
        w.file("d/sub2/f", "f");
        w.file("d/.wh..wh..opq", "");
        w.end();
        CHECK(image_paths(b, {base_layer(), w.str()}) == expected);
    }
    SUBCASE("marker between, directory implicit")
    {
        tar_writer w;
        w.file("d/new", "n");
        w.file("d/.wh..wh..opq", "");
        w.file("d/sub2/f", "f");
        w.end();
        CHECK(image_paths(b, {base_layer(), w.str()}) == expected);
    }
}

TEST_CASE("an opaque root hides every lower entry")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.file("fresh", "f");
    w.file(".wh..wh..opq", "");
    w.end();
    CHECK(image_paths(b, {base_layer(), w.str()}) == std::vector<std::string>{".", "fresh"});
}

TEST_CASE("a whiteout applies to lower layers only, before or after the same name in its layer")
{
    fixture f;
    auto b = f.make();
    for (bool whiteout_first : {true, false}) {
        CAPTURE(whiteout_first);
        tar_writer w;
        if (whiteout_first) w.file(".wh.c", "");
        w.file("c", "new c");
        if (!whiteout_first) w.file(".wh.c", "");
        w.file(".wh.b", "");
        w.dir("b/");
        w.file("b/fresh", "f");
        w.end();
        auto const image = compose_tars(b, {base_layer(), w.str()});
        CHECK(read_text(image.rootfs / "c") == "new c");
        auto const s = snapshot_tree(image.rootfs);
        CHECK(s.count("b/fresh"));
        CHECK_FALSE(s.count("b/inner")); // the whiteout removed the lower directory first
    }
}

TEST_CASE("implicit parent directories never change an existing directory's owner, mode or time")
{
    if (!running_as_root()) return;
    fixture f;
    auto b = f.make();
    tar_writer w1;
    tar_header p;
    p.name = "p/";
    p.type = '5';
    p.mode = 0710;
    p.uid = 5;
    p.gid = 6;
    p.mtime = 1111111111;
    w1.header(p);
    w1.end();
    tar_writer w2;
    w2.file("p/child", "c"); // no header for p/
    w2.file("q/r/child", "c"); // new implicit directories
    w2.end();
    auto const s = snapshot_tree(compose_tars(b, {w1.str(), w2.str()}).rootfs);
    CHECK(s.at("p").mode == 0710);
    CHECK(s.at("p").uid == 5);
    CHECK(s.at("p").gid == 6);
    CHECK(s.at("p").mtime == 1111111111);
    CHECK(s.count("p/child"));
    CHECK(s.at("q").mode == 0755);
    CHECK(s.at("q").uid == 0);
    CHECK(s.at("q/r").mtime == 0);
    // An explicit header does replace them, xattrs included.
    tar_writer w3;
    tar_header p2 = p;
    p2.mode = 0700;
    p2.uid = 7;
    w3.pax({{"SCHILY.xattr.user.new", "1"}});
    w3.header(p2);
    w3.end();
    auto const s3 = snapshot_tree(compose_tars(b, {w1.str(), w2.str(), w3.str()}).rootfs);
    CHECK(s3.at("p").mode == 0700);
    CHECK(s3.at("p").uid == 7);
    CHECK(s3.at("p").xattrs == std::vector<std::pair<std::string, std::string>>{{"user.new", "1"}});
    CHECK(s3.count("p/child"));
    // The xattr set is replaced, not merged, by a later explicit entry; an implicit one keeps it.
    tar_writer w4;
    w4.pax({{"SCHILY.xattr.user.other", "2"}});
    w4.header(p2);
    w4.end();
    auto const s4 = snapshot_tree(compose_tars(b, {w1.str(), w3.str(), w4.str()}).rootfs);
    CHECK(s4.at("p").xattrs == std::vector<std::pair<std::string, std::string>>{{"user.other", "2"}});
    auto const s5 = snapshot_tree(compose_tars(b, {w1.str(), w3.str(), w2.str()}).rootfs);
    CHECK(s5.at("p").xattrs == std::vector<std::pair<std::string, std::string>>{{"user.new", "1"}});
}

TEST_CASE("compose applies layers bottom to top, a later layer's entry replaces a lower one")
{
    fixture f;
    auto b = f.make();
    tar_writer lo, hi;
    lo.file("f", "lower");
    lo.dir("dir/");
    lo.file("dir/keep", "k");
    lo.symlink("l", "target");
    lo.end();
    hi.file("f", "upper");
    hi.dir("l/"); // a directory over a symlink: replaces it, as overlayfs would
    hi.file("l/in", "i");
    hi.end();
    auto const up = compose_tars(b, {lo.str(), hi.str()});
    CHECK(read_text(up.rootfs / "f") == "upper");
    auto const s = snapshot_tree(up.rootfs);
    CHECK(s.at("l").type == 'd');
    CHECK(s.count("dir/keep"));
    auto const down = compose_tars(b, {hi.str(), lo.str()});
    CHECK(read_text(down.rootfs / "f") == "lower");
    CHECK(snapshot_tree(down.rootfs).at("l").type == 'l');
    CHECK(down.layers == std::vector<digest>{diff_id_of(hi.str()), diff_id_of(lo.str())});
}

TEST_CASE("hardlink groups stay groups in the image, a replaced member leaves the group")
{
    fixture f;
    auto b = f.make();
    tar_writer w1, w2;
    w1.file("a", "shared");
    w1.hardlink("b", "a");
    w1.hardlink("c", "a");
    w1.end();
    w2.file("b", "own");
    w2.end();
    auto const s = snapshot_tree(compose_tars(b, {w1.str(), w2.str()}).rootfs);
    CHECK(s.at("a").nlink == 2);
    CHECK(s.at("c").link_group == "a");
    CHECK(s.at("b").nlink == 1);
    CHECK(s.at("b").link_group.empty());
}

TEST_CASE("a hardlink must name an earlier non-directory entry of its own layer")
{
    fixture f;
    auto b = f.make();
    struct bad {
        std::vector<crafted> entries;
        std::string why;
    };
    std::vector<bad> const cases{
        {{{link_entry("h", "missing", entry_type::hardlink), ""}},
         "entry 'h': hardlink target 'missing' is not an earlier entry of this layer"},
        {{{dir_entry("d"), ""}, {link_entry("h", "d", entry_type::hardlink), ""}},
         "entry 'h': hardlink target 'd' is a directory"},
        {{{file_entry("f", 0), ""}, {link_entry("f", "f", entry_type::hardlink), ""}}, "entry 'f': hardlink to itself"},
        {{{file_entry("x", 0), ""}, {link_entry("x/h", "x", entry_type::hardlink), ""}},
         "entry 'x/h': parent 'x' is not a directory"},
        {{{dir_entry("d"), ""}, {file_entry("d/f", 0), ""}, {link_entry("d", "d/f", entry_type::hardlink), ""}},
         "entry 'd': hardlink target 'd/f' was removed by this entry"},
    };
    for (auto const& c : cases) {
        CAPTURE(c.why);
        error_code ec;
        std::string why;
        CHECK_FALSE(feed_crafted(b, c.entries, ec, why));
        CHECK(ec == error::invalid_archive);
        CHECK(why == c.why);
    }
    // A lower layer's file is not a valid target either (the spec allows refusing these).
    tar_writer lo, hi;
    lo.file("lower", "l");
    lo.end();
    hi.hardlink("h", "lower");
    hi.end();
    ocistore_test::build_layer(b, lo.str());
    CHECK_THROWS_WITH_AS(ocistore_test::build_layer(b, hi.str()),
                         doctest::Contains("hardlink target 'lower' is not an earlier entry of this layer"),
                         std::runtime_error);
    CHECK(f.leftovers().empty());
}

TEST_CASE("crafted entries with impossible metadata are refused with a precise reason")
{
    fixture f;
    auto b = f.make();
    struct bad {
        crafted entry;
        error code;
        std::string why;
    };
    tar_entry nul_target = link_entry("l", std::string("a\0b", 3));
    std::vector<bad> const cases{
        {{file_entry(".", 0), ""}, error::invalid_archive, "entry '.': the root must be a directory, not a regular"},
        {{link_entry("l", ""), ""}, error::invalid_archive, "entry 'l': empty symbolic link target"},
        {{nul_target, ""}, error::unsafe_path, "entry 'l': NUL byte in the symbolic link target"},
        {{link_entry("l", std::string(5000, 'x')), ""},
         error::limit_exceeded,
         "entry 'l': symbolic link target too long"},
        {{file_entry(std::string(5000, 'x'), 0), ""},
         error::limit_exceeded,
         "entry '" + std::string(200, 'x') + "...': 5000 bytes, more than the limit of 4096"},
        {{link_entry("h", ".", entry_type::hardlink), ""}, error::unsafe_path, "entry 'h': hardlink to the root"},
    };
    for (auto const& c : cases) {
        CAPTURE(c.why);
        error_code ec;
        std::string why;
        CHECK_FALSE(feed_crafted(b, {c.entry}, ec, why));
        CHECK(ec == c.code);
        CHECK(why == c.why);
    }
    std::string deep;
    for (int i = 0; i < 257; ++i) deep += (i ? "/d" : "d");
    error_code ec;
    std::string why;
    CHECK_FALSE(feed_crafted(b, {{dir_entry(deep), ""}}, ec, why));
    CHECK(ec == error::limit_exceeded);
    CHECK(why.find("more than 256 components") != std::string::npos);
    CHECK(f.leftovers().empty());
}

// ---------------------------------------------------------------------------------------------
// Hostile input: nothing outside the tree may change
// ---------------------------------------------------------------------------------------------

namespace {

struct hostile_case {
    std::string name;
    std::vector<crafted> entries;
    std::string why; ///< the exact reason the sink must give
};

std::vector<hostile_case> hostile_cases(fs::path const& sentinel)
{
    std::string const s = sentinel.string();
    tar_entry abs_hardlink = link_entry("h", "/etc/passwd", entry_type::hardlink);
    return {
        {"dot-dot path", {{file_entry("../escape", 1), "x"}}, "entry '../escape': component \"..\" at position 0"},
        {"dot-dot inside",
         {{file_entry("a/../../escape", 1), "x"}},
         "entry 'a/../../escape': component \"..\" at position 2"},
        {"absolute path", {{file_entry(s + "/pwned", 1), "x"}}, "entry '" + s + "/pwned': absolute path"},
        {"empty component", {{file_entry("a//b", 1), "x"}}, "entry 'a//b': empty component at position 2"},
        {"NUL in a path", {{file_entry(std::string("a\0b", 3), 1), "x"}}, "entry 'a\\x00b': NUL byte at position 1"},
        {"empty path", {{file_entry("", 1), "x"}}, "entry '': empty path"},
        {"symlink parent, absolute",
         {{link_entry("a", s), ""}, {file_entry("a/secret", 5), "owned"}},
         "entry 'a/secret': parent 'a' is a symbolic link; entries are never written through symbolic links"},
        // From <store>/tmp/<layer>/tree/a, four ".." reach the directory holding the sentinel.
        {"symlink parent, dot-dots",
         {{link_entry("a", "../../../../sentinel"), ""}, {file_entry("a/pwned", 1), "x"}},
         "entry 'a/pwned': parent 'a' is a symbolic link; entries are never written through symbolic links"},
        {"symlink deeper in the path",
         {{dir_entry("d"), ""}, {link_entry("d/l", s), ""}, {dir_entry("d/l/sub/new"), ""}},
         "entry 'd/l/sub/new': parent 'd/l' is a symbolic link; entries are never written through symbolic links"},
        {"symlink replaces a directory, then a write below it",
         {{dir_entry("d"), ""},
          {file_entry("d/ok", 1), "x"},
          {link_entry("d", s), ""},
          {file_entry("d/secret", 1), "x"}},
         "entry 'd/secret': parent 'd' is a symbolic link; entries are never written through symbolic links"},
        {"hardlink to an absolute path",
         {{abs_hardlink, ""}},
         "entry 'h': hardlink target '/etc/passwd': absolute path"},
        {"hardlink out with dot-dots",
         {{link_entry("h", "../../../../etc/passwd", entry_type::hardlink), ""}},
         "entry 'h': hardlink target '../../../../etc/passwd': component \"..\" at position 0"},
        {"hardlink through a symlink",
         {{link_entry("l", s), ""}, {link_entry("h", "l/secret", entry_type::hardlink), ""}},
         "entry 'h': hardlink target 'l/secret' crosses symbolic link 'l'"},
        {"whiteout through a symlinked parent",
         {{link_entry("l", s), ""}, {file_entry("l/.wh.secret", 0), ""}},
         "entry 'l/.wh.secret': parent 'l' is a symbolic link; entries are never written through symbolic links"},
        {"opaque marker through a symlinked parent",
         {{link_entry("l", s), ""}, {file_entry("l/.wh..wh..opq", 0), ""}},
         "entry 'l/.wh..wh..opq': parent 'l' is a symbolic link; entries are never written through symbolic links"},
        {"whiteout naming ..", {{file_entry("a/.wh...", 0), ""}}, "entry 'a/.wh...': whiteout names '..'"},
        {"whiteout naming .", {{file_entry(".wh..", 0), ""}}, "entry '.wh..': whiteout names '.'"},
        {"whiteout naming nothing", {{file_entry("a/.wh.", 0), ""}}, "entry 'a/.wh.': whiteout names nothing"},
    };
}

} // namespace

TEST_CASE("hostile entries fail with unsafe_path and change nothing outside the tree")
{
    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        fixture f;
        auto b = f.make(r);
        tree_snapshot const before = snapshot_tree(f.sentinel);
        for (auto const& c : hostile_cases(f.sentinel)) {
            CAPTURE(c.name);
            error_code ec;
            std::string why;
            CHECK_FALSE(feed_crafted(b, c.entries, ec, why));
            CHECK(ec == error::unsafe_path);
            CHECK(why == c.why);
            CHECK(ocistore_test::diff_trees(before, snapshot_tree(f.sentinel)) == "");
            CHECK(f.leftovers().empty());
        }
        CHECK_FALSE(fs::exists(f.dir / "escape"));
        CHECK_FALSE(fs::exists(f.dir.path().parent_path() / "escape"));
    }
}

TEST_CASE("the same attacks through /etc are refused before anything is written")
{
    // Only after the sentinel variants above: if containment were broken this would hit the host.
    std::string const passwd_before = read_text("/etc/passwd");
    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        fixture f;
        auto b = f.make(r);
        error_code ec;
        std::string why;
        CHECK_FALSE(feed_crafted(b, {{link_entry("a", "/etc"), ""}, {file_entry("a/passwd", 5), "owned"}}, ec, why));
        CHECK(ec == error::unsafe_path);
        CHECK_FALSE(feed_crafted(b, {{link_entry("a", "/etc"), ""}, {file_entry("a/.wh.passwd", 0), ""}}, ec, why));
        CHECK(ec == error::unsafe_path);
        CHECK_FALSE(feed_crafted(
            b, {{link_entry("a", "/etc"), ""}, {link_entry("h", "a/passwd", entry_type::hardlink), ""}}, ec, why));
        CHECK(ec == error::unsafe_path);
    }
    CHECK(read_text("/etc/passwd") == passwd_before);
}

TEST_CASE("symlinks with absolute or escaping targets are stored verbatim and never followed")
{
    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        fixture f;
        auto b = f.make(r);
        tree_snapshot const before = snapshot_tree(f.sentinel);
        std::string const secret = (f.sentinel / "secret").string();
        tar_writer w;
        w.symlink("abs", secret);
        w.symlink("up", "../../../../../../sentinel/secret");
        w.hardlink("h", "abs"); // a hardlink to the symlink itself
        w.file("up", "replaces the symlink, not its target");
        w.symlink("dirlink", f.sentinel.string());
        w.symlink("dirlink2", f.sentinel.string());
        w.end();
        tar_writer w2;
        w2.file("abs", "upper layer replaces the symlink");
        w2.file("dirlink/.wh.secret", ""); // the upper layer's implicit dirlink/ replaces the symlink
        w2.file("dirlink/new", "n");
        w2.file("dirlink2/.wh..wh..opq", ""); // likewise: an empty directory, the sentinel untouched
        w2.end();
        auto const image = compose_tars(b, {w.str(), w2.str()});
        auto const s = snapshot_tree(image.rootfs);
        CHECK(s.at("h").type == 'l');
        CHECK(s.at("h").link == secret);
        CHECK(s.at("up").type == 'f');
        CHECK(s.at("abs").type == 'f');
        CHECK(s.at("dirlink").type == 'd');
        CHECK(ocistore_test::paths_of(snapshot_tree(image.rootfs / "dirlink")) == std::vector<std::string>{".", "new"});
        CHECK(s.at("dirlink2").type == 'd');
        CHECK(ocistore_test::paths_of(snapshot_tree(image.rootfs / "dirlink2")) == std::vector<std::string>{"."});
        CHECK(ocistore_test::diff_trees(before, snapshot_tree(f.sentinel)) == "");
        // The layer tree of the first layer kept the symlinks as they are.
        auto const l1 = snapshot_tree(b.layer_directory(diff_id_of(w.str())) / "tree");
        CHECK(l1.at("abs").link == secret);
        CHECK(l1.at("dirlink").link == f.sentinel.string());
    }
}

TEST_CASE("the tar reader in front refuses traversal on its own")
{
    fixture f;
    auto b = f.make();
    tar_writer w;
    w.file("../escape", "x");
    w.end();
    error_code ec;
    std::string why;
    CHECK_FALSE(ocistore_test::feed_layer(b, layer_info{diff_id_of(w.str()), 0}, w.str(), ec, &why));
    CHECK(ec == error::unsafe_path);
    CHECK(why.find("..") != std::string::npos);
    CHECK(f.leftovers().empty());
}

// ---------------------------------------------------------------------------------------------
// Publishing, validation, discarding
// ---------------------------------------------------------------------------------------------

TEST_CASE("nothing is published before commit_layer, abandoning discards the temporaries")
{
    fixture f;
    auto b = f.make();
    std::string const tar = every_type_layer();
    digest const id = diff_id_of(tar);
    {
        error_code ec;
        auto sink = b.begin_layer(layer_info{id, 0}, ec);
        REQUIRE_FALSE(ec);
        CHECK(f.leftovers().size() == 1);
        sink.add_entry(dir_entry("half"), byte_source_ref{}, ec);
        CHECK_FALSE(b.has_layer(id));
    }
    CHECK(f.leftovers().empty());
    {
        error_code ec;
        auto prepared = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
        REQUIRE(prepared);
        CHECK(prepared->has_tree());
        CHECK(fs::exists(prepared->temp_path() / "layer.json"));
        CHECK_FALSE(b.has_layer(id));
        CHECK_FALSE(fs::exists(b.layer_directory(id)));
    }
    CHECK(f.leftovers().empty());
    CHECK_FALSE(b.has_layer(id));
}

TEST_CASE("has_layer validates the artifact, not just its existence")
{
    fixture f;
    auto b = f.make();
    std::string const tar = base_layer();
    digest const id = diff_id_of(tar);
    auto layer = ocistore_test::build_layer(b, tar);
    CHECK(b.has_layer(id));
    fs::path const json = layer.path / "layer.json";
    std::string const good = read_text(json);

    SUBCASE("another identity does not hold it")
    {
        auto other = f.make(path_resolution::automatic, b.ownership() == ownership_mode::apply
                                                            ? ownership_mode::record
                                                            : ownership_mode::apply);
        CHECK(other.identity() != b.identity());
        CHECK_FALSE(other.has_layer(id));
        // ... and rebuilding replaces it in one step (applying owners needs root).
        if (other.ownership() == ownership_mode::apply && ::geteuid() != 0) return;
        auto rebuilt = ocistore_test::build_layer(other, tar);
        CHECK(other.has_layer(id));
        CHECK_FALSE(b.has_layer(id));
        CHECK(rebuilt.path == layer.path);
    }
    SUBCASE("truncated metadata")
    {
        std::ofstream(json, std::ios::trunc) << good.substr(0, good.size() / 2);
        CHECK_FALSE(b.has_layer(id));
    }
    SUBCASE("metadata for another diff_id")
    {
        std::string bad = good;
        std::string const hex(id.encoded());
        bad.replace(bad.find(hex), 1, hex[0] == '0' ? "1" : "0");
        std::ofstream(json, std::ios::trunc) << bad;
        CHECK_FALSE(b.has_layer(id));
    }
    SUBCASE("tree missing")
    {
        fs::remove_all(layer.path / "tree");
        CHECK_FALSE(b.has_layer(id));
    }
    SUBCASE("a hostile whiteout list")
    {
        std::string bad = good;
        bad.replace(bad.find("\"whiteouts\":[]"), 14, "\"whiteouts\":[\"../x\"]");
        std::ofstream(json, std::ios::trunc) << bad;
        CHECK_FALSE(b.has_layer(id));
    }
    CHECK(f.leftovers().empty());
    // Whatever was wrong, a commit of a fresh build repairs it.
    auto repaired = ocistore_test::build_layer(b, tar);
    CHECK(b.has_layer(id));
    CHECK(snapshot_tree(repaired.path / "tree").count("d/sub/old2"));
    CHECK(f.leftovers().empty());
}

TEST_CASE("when two builds of a layer race, the first committed one is kept")
{
    fixture f;
    auto b = f.make();
    std::string const tar = base_layer();
    digest const id = diff_id_of(tar);
    error_code ec;
    auto first = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
    auto second = ocistore_test::feed_layer(b, layer_info{id, 1}, tar, ec);
    REQUIRE(first);
    REQUIRE(second);
    auto r1 = b.commit_layer(std::move(*first));
    struct ::stat st1;
    REQUIRE(::stat((r1.path / "tree").c_str(), &st1) == 0);
    auto r2 = b.commit_layer(std::move(*second));
    struct ::stat st2;
    REQUIRE(::stat((r2.path / "tree").c_str(), &st2) == 0);
    CHECK(r1 == r2);
    CHECK(st1.st_ino == st2.st_ino);
    CHECK_FALSE(second->has_tree());
    CHECK(f.leftovers().empty());
    // A moved-from or committed prepared layer cannot be committed.
    try {
        b.commit_layer(std::move(*second));
        FAIL("must throw");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("holds no tree") != std::string::npos);
    }
}

TEST_CASE("compose requires held layers and replaces an existing image in one step")
{
    fixture f;
    auto b = f.make();
    tar_writer w1, w2;
    w1.file("v", "1");
    w1.end();
    w2.file("v", "2");
    w2.end();
    auto l1 = ocistore_test::build_layer(b, w1.str());
    auto l2 = ocistore_test::build_layer(b, w2.str());
    digest const key = diff_id_of("key");
    std::vector<rootfs_builder::layer_result> layers{l1};
    auto i1 = b.compose(key, layers);
    CHECK(read_text(i1.rootfs / "v") == "1");
    layers = {l1, l2};
    auto i2 = b.compose(key, layers);
    CHECK(i2.path == i1.path);
    CHECK(read_text(i2.rootfs / "v") == "2");
    auto held = b.image(key);
    REQUIRE(held);
    CHECK(held->layers == std::vector<digest>{l1.diff_id, l2.diff_id});
    CHECK(f.leftovers().empty());

    fs::remove_all(l2.path);
    error_code ec;
    std::string why;
    b.compose(key, layers, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "compose: layer 1 (" + l2.diff_id.str() + ") is not held by this builder");
    CHECK(b.image(key)); // the old image is still there
    CHECK(f.leftovers().empty());

    std::vector<rootfs_builder::layer_result> none;
    auto empty = b.compose(diff_id_of("empty"), none);
    CHECK(ocistore_test::paths_of(snapshot_tree(empty.rootfs)) == std::vector<std::string>{"."});
    CHECK(snapshot_tree(empty.rootfs).at(".").mode == 0755);
}

TEST_CASE("with the default options (durable, automatic) the same trees are published")
{
    fixture f;
    rootfs_builder b(f.store);
    CHECK(b.uses_openat2());
    CHECK(b.ownership() == (::geteuid() == 0 ? ownership_mode::apply : ownership_mode::record));
    auto const image = compose_tars(b, {base_layer()});
    CHECK(image.path == f.store / "rootfs" / "images" / image.key.path_safe());
    CHECK(b.layer_directory(image.layers[0]) == f.store / "rootfs" / "layers" / image.layers[0].path_safe());
    CHECK(ocistore_test::paths_of(snapshot_tree(image.rootfs)) ==
          std::vector<std::string>{".", "a", "a/x", "a/y", "b", "b/inner", "c", "d", "d/old1", "d/sub", "d/sub/old2"});
    CHECK(f.leftovers().empty());
}

// ---------------------------------------------------------------------------------------------
// Record mode, export
// ---------------------------------------------------------------------------------------------

TEST_CASE("record mode writes what it does not apply into the metadata files")
{
    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        fixture f;
        auto b = f.make(r, ownership_mode::record);
        CHECK(b.identity() == "rootfs_builder/1 ownership=record");
        tar_writer w2;
        w2.file(".wh.owned", "");
        w2.end();
        auto const image = compose_tars(b, {every_type_layer(), w2.str()});
        auto const s = snapshot_tree(image.rootfs);
        // The tree belongs to the builder's user; devices are empty placeholder files.
        CHECK(s.at("etc/setuid").uid == ::geteuid());
        CHECK(s.at("dev/null").type == 'f');
        CHECK(s.at("dev/null").size == 0);
        CHECK(s.at("dev/fifo").type == 'p');
        CHECK(s.at("etc/ping").xattrs ==
              std::vector<std::pair<std::string, std::string>>{{"user.comment", std::string("a\0b", 3)}});
        CHECK(s.at(".").mode == 0750);
        auto const j = read_json(image.path / "image.json");
        auto const& rec = j.at("records").as_object();
        CHECK(rec.at("etc/setuid").at("uid").to_number<std::uint64_t>() == 1000);
        CHECK(rec.at("etc/setuid").at("gid").to_number<std::uint64_t>() == 2000);
        CHECK_FALSE(rec.contains("owned")); // whited out with its record
        auto const lj = read_json(b.layer_directory(image.layers[0]) / "layer.json");
        CHECK(lj.at("records").at("owned").at("uid").to_number<std::uint64_t>() == 70000);
        CHECK(lj.at("records").at("owned").at("gid").to_number<std::uint64_t>() == 70001);
        CHECK(rec.at("dev/null").at("type").as_string() == "char_device");
        CHECK(rec.at("dev/null").at("major").to_number<std::uint64_t>() == 1);
        CHECK(rec.at("dev/null").at("minor").to_number<std::uint64_t>() == 3);
        CHECK(rec.at("dev/loop0").at("type").as_string() == "block_device");
        CHECK(rec.at("etc/ping").at("xattrs").at("security.capability").as_string() ==
              "01000002002000000000000000000000" "00000000");
        CHECK_FALSE(rec.contains("etc/group-a")); // owned by 0:0: nothing to record
    }
}

TEST_CASE("export_rootfs copies the composed tree exactly")
{
    fixture f;
    auto b = f.make();
    auto const image = compose_tars(b, {every_type_layer(), base_layer()});
    auto warnings = b.export_rootfs(image.key, f.dir / "out");
    CHECK(warnings.empty());
    CHECK(ocistore_test::diff_trees(snapshot_tree(image.rootfs), snapshot_tree(f.dir / "out")) == "");

    error_code ec;
    std::string why;
    b.export_rootfs(image.key, f.dir / "out", ec, &why);
    CHECK(ec == error::invalid_argument);
    CHECK(why == "export_rootfs: \"" + (f.dir / "out").string() + "\" is not an empty directory");
    b.export_rootfs(diff_id_of("nope"), f.dir / "out2", ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("is not held by this builder") != std::string::npos);
    CHECK_FALSE(fs::exists(f.dir / "out2"));
}

// ---------------------------------------------------------------------------------------------
// Cross-check against umoci
// ---------------------------------------------------------------------------------------------

namespace {

bool have_umoci() { return std::system("umoci --version >/dev/null 2>&1") == 0; }

void run(std::string const& cmd)
{
    int const rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
}

std::vector<std::string> umoci_layers()
{
    tar_writer l1;
    tar_header root;
    root.name = "./";
    root.type = '5';
    root.mode = 0755;
    root.mtime = 1500000000;
    l1.header(root);
    l1.dir("etc/");
    l1.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    tar_header shadow;
    shadow.mode = 0640;
    shadow.gid = 42;
    l1.file("etc/shadow", "root:*:1::::::\n", shadow);
    l1.dir("bin/");
    tar_header suid;
    suid.mode = 04755;
    l1.file("bin/su", "su", suid);
    l1.pax({{"SCHILY.xattr.security.capability", capability_value()}, {"mtime", "1700000001.5"}});
    l1.file("bin/ping", "ping");
    l1.file("bin/a", "group");
    l1.hardlink("bin/b", "bin/a");
    l1.hardlink("bin/c", "bin/a");
    l1.dir("usr/");
    l1.dir("usr/lib/");
    l1.file("usr/lib/libx.so.1", "lib");
    l1.symlink("usr/lib/libx.so", "libx.so.1");
    l1.symlink("usr/lib/abs", "/usr/lib/libx.so.1");
    l1.dir("dev/");
    l1.device("dev/null", '3', 1, 3);
    l1.device("dev/loop0", '4', 7, 0);
    l1.dir("run/");
    l1.fifo("run/fifo");
    l1.dir("home/", 0755);
    tar_header home;
    home.name = "home/user/";
    home.type = '5';
    home.mode = 0700;
    home.uid = 1000;
    home.gid = 1000;
    l1.header(home);
    tar_header profile;
    profile.uid = 1000;
    profile.gid = 1000;
    l1.pax({{"SCHILY.xattr.user.comment", std::string("hello\0world", 11)}});
    l1.file("home/user/.profile", "PS1=$\n", profile);
    l1.dir("tmp/", 01777);
    l1.dir("opt/");
    l1.dir("opt/app/");
    l1.file("opt/app/old1", "1");
    l1.dir("opt/app/sub/");
    l1.file("opt/app/sub/old2", "2");
    l1.dir("var/");
    l1.dir("var/lib/");
    l1.dir("var/lib/gone/");
    l1.file("var/lib/gone/x", "x");
    l1.file("var/lib/keep", "k");
    std::string const long_dir = "usr/" + std::string(90, 'd');
    l1.dir(long_dir + "/");
    l1.pax({{"path", long_dir + "/" + std::string(180, 'f')}});
    l1.file("usr/placeholder", "long name");
    l1.sparse_file("var/sparse", 3 << 20, {{4096, "data"}, {(3 << 20) - 1, "z"}});
    l1.end();

    tar_writer l2;
    l2.dir("opt/app/");
    l2.file("opt/app/.wh..wh..opq", "");
    l2.file("opt/app/new", "n");
    l2.file("var/lib/.wh.gone", "");
    l2.file("etc/passwd", "root:x:0:0::/root:/bin/bash\n");
    tar_header etc;
    etc.name = "etc/";
    etc.type = '5';
    etc.mode = 0711;
    etc.mtime = 1600000000;
    l2.header(etc);
    l2.file("bin/b", "own now");
    l2.end();

    tar_writer l3;
    l3.dir("opt/app/");
    l3.dir("opt/app/sub2/");
    l3.file("opt/app/sub2/f", "f");
    l3.file("opt/app/.wh..wh..opq", ""); // after this layer's own children
    l3.file("usr/lib/.wh.libx.so", "");
    l3.file("tmp/.wh.nothing", "");
    tar_header shadow2;
    shadow2.mode = 0600;
    l3.file("etc/shadow", "changed", shadow2);
    l3.file("etc/.wh.passwd", "");
    l3.file("etc/passwd", "recreated\n");
    l3.end();
    return {l1.str(), l2.str(), l3.str()};
}

} // namespace

TEST_CASE("the composed tree matches umoci raw unpack of the same image")
{
    if (!running_as_root()) return;
    if (!have_umoci()) {
        MESSAGE("umoci is not installed: cross-check skipped");
        return;
    }
    fixture f;
    auto const tars = umoci_layers();
    // An OCI layout with the layers uncompressed, gzip-compressed, uncompressed.
    ocistore_test::oci_layout_writer layout(f.dir / "layout");
    std::vector<descriptor> layers;
    std::vector<digest> diff_ids;
    for (std::size_t i = 0; i < tars.size(); ++i) {
        diff_ids.push_back(diff_id_of(tars[i]));
        layers.push_back(i == 1 ? layout.add_blob(ocistore_test::gzip_compress(tars[i]),
                                                  std::string(media_types::oci_layer_tar_gzip))
                                : layout.add_blob(tars[i], std::string(media_types::oci_layer_tar)));
    }
    layout.tag(layout.add_manifest(layout.add_config(diff_ids), layers), "t");
    fs::path const reference = f.dir / "umoci-rootfs";
    run("umoci raw unpack --image " + layout.path().string() + ":t " + reference.string());
    tree_snapshot const expected = snapshot_tree(reference);
    REQUIRE(expected.count("opt/app/sub2/f"));

    for (auto r : both_resolutions) {
        CAPTURE(name_of(r));
        auto b = f.make(r);
        auto const image = compose_tars(b, tars);
        CHECK(ocistore_test::diff_trees(expected, snapshot_tree(image.rootfs)) == "");
        auto const held = b.image(image.key);
        REQUIRE(held);
        CHECK(held->warnings.empty());
    }
}

TEST_CASE("artifact_paths: the layer directory of a layer, the image directory of an image")
{
    temp_dir dir("rootfs-paths");
    rootfs_options o;
    o.durable = false;
    rootfs_builder b(dir / "store", o);
    tar_writer w;
    w.file("f", "x");
    w.end();
    auto layer = ocistore_test::build_layer(b, w.str());
    auto const lp = std::as_const(b).artifact_paths(layer);
    REQUIRE(lp.size() == 1);
    CHECK(lp[0] == b.layer_directory(layer.diff_id));
    CHECK(lp[0] == dir / "store" / "rootfs" / "layers" / layer.diff_id.path_safe());
    CHECK(fs::is_directory(lp[0]));
    auto image = compose_tars(b, {w.str()});
    auto const ip = std::as_const(b).artifact_paths(image);
    REQUIRE(ip.size() == 1);
    CHECK(ip[0] == b.image_directory(image.key));
    CHECK(ip[0] == image.path);
    CHECK(fs::is_directory(ip[0] / "rootfs"));
}
