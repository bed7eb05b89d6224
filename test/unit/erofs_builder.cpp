#include <ocistore/builder/erofs_builder.hpp>

#include <ocistore/concepts.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/vmdk.hpp>

#include <support/builder_driver.hpp>
#include <support/erofs_files.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::diff_id_of;
using ocistore_test::memory_source;
using ocistore_test::tar_writer;
using ocistore_test::temp_dir;
namespace fs = std::filesystem;

static_assert(artifact_builder<erofs_builder>);
static_assert(erofs_builder::kind == "erofs");

namespace {

std::string read_all(fs::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(fs::path const& p, std::string const& s)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
    REQUIRE(out.good());
}

std::size_t count_entries(fs::path const& dir)
{
    std::size_t n = 0;
    if (fs::exists(dir))
        for ([[maybe_unused]] auto const& e : fs::directory_iterator(dir)) ++n;
    return n;
}

erofs_builder make(fs::path const& root, bool absolute = false)
{
    erofs_builder_options o;
    o.durable = false;
    o.absolute_vmdk_paths = absolute;
    return erofs_builder(root, o);
}

std::string layer_a()
{
    tar_writer w;
    w.dir("etc/");
    w.file("etc/hosts", "127.0.0.1 localhost\n");
    w.file("big", std::string(100000, 'b'));
    w.symlink("link", "/etc/hosts");
    w.hardlink("etc/hosts2", "etc/hosts");
    w.file("gone", "bye");
    w.end();
    return w.str();
}

std::string layer_b()
{
    tar_writer w;
    w.dir("etc/");
    w.file("etc/hosts", "::1 localhost\n");
    w.file(".wh.gone", "");
    w.file("new", "n");
    w.end();
    return w.str();
}

/// Reads `path` of a composed image through its fsmeta and layer images.
std::optional<std::string> image_file(erofs_builder::image_result const& image, std::string const& path)
{
    std::vector<fs::path> layers;
    for (auto const& l : image.layers) layers.push_back(l.path);
    return ocistore_test::erofs_read_file(image.fsmeta, layers, path);
}

} // namespace

TEST_CASE("erofs_builder: paths, identity and artifact_paths")
{
    temp_dir dir("erofs-builder");
    auto b = make(dir / "store");
    digest const d = diff_id_of("layer"), k = diff_id_of("key");
    CHECK(b.identity() == "erofs_builder/1");
    CHECK(make(dir / "store", true).identity() == "erofs_builder/1 vmdk_paths=absolute");
    CHECK(b.layer_path(d) == dir / "store" / "layers" / (d.path_safe() + ".erofs"));
    CHECK(b.fsmeta_path(k) == dir / "store" / "fsmeta" / (k.path_safe() + ".erofs"));
    CHECK(b.vmdk_path(k) == dir / "store" / "vmdk" / (k.path_safe() + ".vmdk"));
    CHECK(erofs_builder::layer_tag(d) == std::string(d.encoded()));
    digest const d512 = digest::parse("sha512:" + std::string(128, 'a'));
    CHECK(erofs_builder::layer_tag(d512) == std::string(64, 'a'));
    erofs_builder const& cb = b;
    CHECK(cb.artifact_paths(erofs_builder::layer_result{d, "/elsewhere", 3}) == std::vector<fs::path>{b.layer_path(d)});
    erofs_builder::image_result img;
    img.key = k;
    CHECK(cb.artifact_paths(img) == std::vector<fs::path>{b.fsmeta_path(k), b.vmdk_path(k)});
    CHECK_FALSE(fs::exists(dir / "store")); // construction does no I/O
}

TEST_CASE("erofs_builder: begin, add entries, finish, commit, held afterwards")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    std::string const tar = layer_a();
    digest const id = diff_id_of(tar);
    error_code ec = error::io_error;
    CHECK_FALSE(b.has_layer(id, ec));
    CHECK_FALSE(ec);

    std::string why;
    auto prepared = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec, &why);
    REQUIRE_MESSAGE(prepared, why);
    CHECK(prepared->has_image());
    CHECK(prepared->diff_id() == id);
    CHECK(prepared->entries() == 6);
    CHECK(prepared->temp_path().parent_path() == root / "tmp");
    CHECK(fs::file_size(prepared->temp_path()) == std::uint64_t(prepared->blocks()) * 4096);
    CHECK(count_entries(root / "tmp") == 1);
    CHECK_FALSE(b.has_layer(id, ec)); // finished, not committed
    CHECK_FALSE(fs::exists(b.layer_path(id)));

    ec = error::io_error;
    auto const result = b.commit_layer(std::move(*prepared), ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(prepared->has_image());
    CHECK(result.diff_id == id);
    CHECK(result.path == b.layer_path(id));
    CHECK(fs::file_size(result.path) == std::uint64_t(result.blocks) * 4096);
    CHECK(count_entries(root / "tmp") == 0);
    CHECK((fs::status(result.path).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read));

    CHECK(b.has_layer(id, ec));
    CHECK_FALSE(ec);
    auto held = b.layer(id, ec);
    REQUIRE(held);
    CHECK(*held == result);
    auto fresh = make(root);
    CHECK(fresh.has_layer(id));
    CHECK(make(root, true).layer(id) == held); // layer images do not depend on the VMDK path form

    // The image is a standalone EROFS with this layer's tree.
    auto r = erofs_image_reader::open(result.path);
    CHECK(r.info().blocks == result.blocks);
    CHECK(r.info().devices.empty());
    auto hosts = ocistore_test::erofs_lookup(r, "etc/hosts");
    REQUIRE(hosts);
    CHECK(ocistore_test::erofs_content(r, *hosts) == "127.0.0.1 localhost\n");
    CHECK(hosts->nlink == 2);
    CHECK(r.read_link(*ocistore_test::erofs_lookup(r, "link")) == "/etc/hosts");
}

TEST_CASE("erofs_builder: the same layer gives the same bytes, whatever the chunking")
{
    temp_dir dir("erofs-builder");
    std::string const tar = layer_a();
    digest const id = diff_id_of(tar);
    auto b1 = make(dir / "one");
    auto b2 = make(dir / "two");
    auto l1 = ocistore_test::build_layer(b1, tar);
    error_code ec;
    auto p2 = ocistore_test::feed_layer(b2, layer_info{id, 3}, tar, ec, nullptr, 7);
    REQUIRE(p2);
    auto l2 = b2.commit_layer(std::move(*p2));
    CHECK(l1.blocks == l2.blocks);
    std::string const bytes = read_all(l1.path);
    CHECK(bytes == read_all(l2.path));
    // The UUID comes from the diff_id: another diff_id for the same entries changes block 0 only.
    auto p3 = ocistore_test::feed_layer(b2, layer_info{diff_id_of("other"), 0}, tar, ec);
    REQUIRE(p3);
    auto l3 = b2.commit_layer(std::move(*p3));
    std::string const other = read_all(l3.path);
    REQUIRE(other.size() == bytes.size());
    CHECK(other.substr(0, 4096) != bytes.substr(0, 4096));
    CHECK(other.substr(4096) == bytes.substr(4096));
}

TEST_CASE("erofs_builder: destroying a sink or a prepared layer leaves nothing behind")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    std::string const tar = layer_a();
    digest const id = diff_id_of(tar);
    {
        auto sink = b.begin_layer(layer_info{id, 0});
        tar_entry e;
        e.path = "partial";
        e.size = 3;
        memory_source data("abc");
        sink.add_entry(e, data);
        CHECK(count_entries(root / "tmp") == 1);
        auto moved = std::move(sink);
        CHECK(moved.warnings().empty());
    }
    CHECK(count_entries(root / "tmp") == 0);
    {
        error_code ec;
        auto prepared = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
        REQUIRE(prepared);
        erofs_builder::prepared_layer moved(std::move(*prepared));
        CHECK(count_entries(root / "tmp") == 1);
        auto again = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
        REQUIRE(again);
        CHECK(count_entries(root / "tmp") == 2);
        moved = std::move(*again); // the first one is discarded here
        CHECK(count_entries(root / "tmp") == 1);
    }
    CHECK(count_entries(root / "tmp") == 0);
    CHECK_FALSE(fs::exists(b.layer_path(id)));
    CHECK_FALSE(b.has_layer(id));
}

TEST_CASE("erofs_builder: a damaged or foreign layer file is not held, and commit replaces it")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    std::string const tar = layer_a();
    digest const id = diff_id_of(tar);
    auto const good = ocistore_test::build_layer(b, tar);
    std::string const bytes = read_all(good.path);
    REQUIRE(bytes.size() >= 3 * 4096);
    error_code ec;

    auto not_held = [&](std::string const& what) {
        CAPTURE(what);
        ec = error::io_error;
        CHECK_FALSE(b.has_layer(id, ec));
        CHECK_FALSE(ec);
        CHECK_FALSE(b.layer(id, ec).has_value());
        CHECK_FALSE(ec);
    };
    SUBCASE("truncated by a block")
    {
        fs::resize_file(good.path, bytes.size() - 4096);
        not_held("truncated");
    }
    SUBCASE("a block longer than the superblock says")
    {
        write_all(good.path, bytes + std::string(4096, '\0'));
        not_held("longer");
    }
    SUBCASE("not a whole number of blocks")
    {
        write_all(good.path, bytes.substr(0, bytes.size() - 100));
        not_held("partial block");
    }
    SUBCASE("a flipped superblock byte (checksum)")
    {
        std::string bad = bytes;
        bad[1024 + 0x10] = static_cast<char>(bad[1024 + 0x10] ^ 1); // inos
        write_all(good.path, bad);
        not_held("checksum");
    }
    SUBCASE("a bad magic")
    {
        std::string bad = bytes;
        bad[1024] = 'X';
        write_all(good.path, bad);
        not_held("magic");
    }
    SUBCASE("empty")
    {
        write_all(good.path, "");
        not_held("empty");
    }
    SUBCASE("a symlink to a valid image")
    {
        fs::rename(good.path, dir / "real.erofs");
        fs::create_symlink(dir / "real.erofs", good.path);
        not_held("symlink");
    }
    SUBCASE("a directory")
    {
        fs::remove(good.path);
        fs::create_directory(good.path);
        not_held("directory");
        fs::remove(good.path);
    }
    // A new commit replaces what is not held.
    auto again = ocistore_test::build_layer(b, tar);
    CHECK(again == good);
    CHECK(read_all(good.path) == bytes);
    CHECK(b.has_layer(id));
    CHECK(count_entries(root / "tmp") == 0);
}

TEST_CASE("erofs_builder: a held layer wins over a second commit of the same diff_id")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    std::string const tar = layer_a();
    digest const id = diff_id_of(tar);
    error_code ec;
    auto p1 = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
    auto p2 = ocistore_test::feed_layer(b, layer_info{id, 0}, tar, ec);
    REQUIRE(p1);
    REQUIRE(p2);
    auto r1 = b.commit_layer(std::move(*p1));
    struct ::stat before;
    REQUIRE(::stat(r1.path.c_str(), &before) == 0);
    auto r2 = b.commit_layer(std::move(*p2), ec);
    CHECK_FALSE(ec);
    CHECK(r2 == r1);
    CHECK_FALSE(p2->has_image());
    struct ::stat after;
    REQUIRE(::stat(r1.path.c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino); // the first file stayed
    CHECK(count_entries(root / "tmp") == 0);
}

TEST_CASE("erofs_builder: compose writes the fsmeta and the VMDK, image() checks them")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    std::string const ta = layer_a(), tb = layer_b();
    auto la = ocistore_test::build_layer(b, ta);
    auto lb = ocistore_test::build_layer(b, tb);
    std::vector<erofs_builder::layer_result> const layers{la, lb};
    digest const key = diff_id_of("image");
    error_code ec = error::io_error;
    CHECK_FALSE(b.image(key, ec).has_value());
    CHECK_FALSE(ec);
    std::string why;
    auto image = b.compose(key, layers, ec, &why);
    REQUIRE_MESSAGE(!ec, why);
    CHECK(image.key == key);
    CHECK(image.fsmeta == b.fsmeta_path(key));
    CHECK(image.vmdk == b.vmdk_path(key));
    CHECK(image.layers == layers);
    CHECK(fs::file_size(image.fsmeta) == std::uint64_t(image.fsmeta_blocks) * 4096);
    CHECK(count_entries(root / "tmp") == 0);

    // The device table: tags are the diff_id hex, blocks and flat-disk offsets per layer.
    auto r = erofs_image_reader::open(image.fsmeta);
    REQUIRE(r.info().devices.size() == 2);
    CHECK(r.info().devices[0] == erofs_device_slot{std::string(la.diff_id.encoded()), la.blocks, image.fsmeta_blocks});
    CHECK(r.info().devices[1] ==
          erofs_device_slot{std::string(lb.diff_id.encoded()), lb.blocks, image.fsmeta_blocks + la.blocks});

    // The VMDK: fsmeta then the layers, relative to its directory.
    std::string const text = read_all(image.vmdk);
    CHECK(parse_vmdk_extents(text) ==
          std::vector<vmdk_extent>{{"../fsmeta/" + key.path_safe() + ".erofs", std::uint64_t(image.fsmeta_blocks) * 4096},
                                   {"../layers/" + la.diff_id.path_safe() + ".erofs", std::uint64_t(la.blocks) * 4096},
                                   {"../layers/" + lb.diff_id.path_safe() + ".erofs", std::uint64_t(lb.blocks) * 4096}});
    CHECK(text == b.vmdk_text(key, image.fsmeta_blocks, layers, ec));

    // The merged tree, read through the chunk indexes.
    CHECK(image_file(image, "etc/hosts") == "::1 localhost\n");
    CHECK(image_file(image, "etc/hosts2") == "127.0.0.1 localhost\n");
    CHECK(image_file(image, "big") == std::string(100000, 'b'));
    CHECK(image_file(image, "new") == "n");
    CHECK(image_file(image, "gone") == std::nullopt);

    auto held = b.image(key, ec);
    CHECK_FALSE(ec);
    REQUIRE(held);
    CHECK(*held == image);
    CHECK(make(root).image(key) == image);

    // Composing again gives the same bytes.
    std::string const fsmeta_bytes = read_all(image.fsmeta);
    auto again = b.compose(key, layers);
    CHECK(again == image);
    CHECK(read_all(image.fsmeta) == fsmeta_bytes);
    CHECK(read_all(image.vmdk) == text);

    SUBCASE("the VMDK differs by a byte") {
        std::string bad = text;
        auto const at = bad.find("CID=") + 4;
        bad[at] = bad[at] == '0' ? '1' : '0';
        write_all(image.vmdk, bad);
        CHECK_FALSE(b.image(key, ec).has_value());
        CHECK_FALSE(ec);
    }
    SUBCASE("the VMDK is missing") {
        fs::remove(image.vmdk);
        CHECK_FALSE(b.image(key, ec).has_value());
        CHECK_FALSE(ec);
    }
    SUBCASE("the fsmeta is truncated") {
        fs::resize_file(image.fsmeta, fs::file_size(image.fsmeta) - 4096);
        CHECK_FALSE(b.image(key, ec).has_value());
        CHECK_FALSE(ec);
    }
    SUBCASE("a layer is no longer held") {
        fs::resize_file(lb.path, 4096);
        CHECK_FALSE(b.image(key, ec).has_value());
        CHECK_FALSE(ec);
        auto failed = b.compose(key, layers, ec, &why);
        CHECK(ec == error::not_found);
        CHECK(why.find("layer 1 (" + lb.diff_id.str() + ") is not held") != std::string::npos);
        CHECK(count_entries(root / "tmp") == 0);
    }
    SUBCASE("the VMDK names another held layer than the device table") {
        // Same content, another diff_id: same block count, so only the tag tells them apart.
        auto lc = ocistore_test::build_layer(b, tb + std::string(1024, '\0'));
        REQUIRE(lc.blocks == lb.blocks);
        std::vector<erofs_builder::layer_result> const other{la, lc};
        write_all(image.vmdk, b.vmdk_text(key, image.fsmeta_blocks, other, ec));
        CHECK_FALSE(b.image(key, ec).has_value());
        CHECK_FALSE(ec);
    }
    SUBCASE("a builder writing absolute paths does not hold it, and its own image is not held here") {
        auto abs = make(root, true);
        CHECK_FALSE(abs.image(key, ec).has_value());
        CHECK_FALSE(ec);
        auto image2 = abs.compose(key, layers);
        CHECK(image2.fsmeta_blocks == image.fsmeta_blocks);
        CHECK(read_all(image2.fsmeta) == fsmeta_bytes);
        auto const ext = parse_vmdk_extents(read_all(image2.vmdk));
        REQUIRE(ext.size() == 3);
        CHECK(ext[0].path == fs::absolute(image.fsmeta).lexically_normal().string());
        CHECK(ext[2].path == fs::absolute(lb.path).lexically_normal().string());
        CHECK(abs.image(key).has_value());
        CHECK_FALSE(b.image(key).has_value());
    }
}

TEST_CASE("erofs_builder: an image of no layers, and of one layer twice")
{
    temp_dir dir("erofs-builder");
    auto b = make(dir / "store");
    std::vector<erofs_builder::layer_result> none;
    auto empty = b.compose(diff_id_of("empty"), none);
    CHECK(empty.layers.empty());
    CHECK(parse_vmdk_extents(read_all(empty.vmdk)).size() == 1);
    CHECK(b.image(diff_id_of("empty")) == empty);

    auto la = ocistore_test::build_layer(b, layer_a());
    std::vector<erofs_builder::layer_result> twice{la, la};
    auto image = b.compose(diff_id_of("twice"), twice);
    CHECK(image.layers == twice);
    CHECK(parse_vmdk_extents(read_all(image.vmdk)).size() == 3);
    CHECK(b.image(diff_id_of("twice")) == image);
    CHECK(image_file(image, "etc/hosts") == "127.0.0.1 localhost\n");
}

TEST_CASE("erofs_builder: failures carry their reasons")
{
    temp_dir dir("erofs-builder");
    fs::path const root = dir / "store";
    auto b = make(root);
    error_code ec;
    std::string why;

    SUBCASE("an unusable work directory fails begin_layer, and the sink stays failed")
    {
        fs::create_directories(root);
        write_all(dir / "file", "x");
        erofs_builder_options o;
        o.work_dir = dir / "file" / "tmp";
        erofs_builder bad(root, o);
        auto sink = bad.begin_layer(layer_info{diff_id_of("x"), 0}, ec, &why);
        CHECK(ec == std::errc::not_a_directory);
        CHECK(why.find("work directory") != std::string::npos);
        sink.add_entry(tar_entry{}, byte_source_ref{}, ec, &why);
        CHECK(ec == std::errc::not_a_directory);
        sink.finish(ec);
        CHECK(ec == std::errc::not_a_directory);
    }
    SUBCASE("an empty diff_id")
    {
        auto sink = b.begin_layer(layer_info{}, ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("diff_id is empty") != std::string::npos);
    }
    SUBCASE("writer failures are sticky and name the entry")
    {
        auto sink = b.begin_layer(layer_info{diff_id_of("x"), 0});
        tar_entry e;
        e.path = "a/../b";
        sink.add_entry(e, byte_source_ref{}, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find("layer " + diff_id_of("x").str()) != std::string::npos);
        tar_entry ok;
        ok.path = "fine";
        sink.add_entry(ok, byte_source_ref{}, ec);
        CHECK(ec == error::unsafe_path);
        try {
            sink.finish();
            FAIL("no exception");
        } catch (system_error const& x) {
            CHECK(x.code() == error::unsafe_path);
        }
    }
    SUBCASE("finish twice, add after finish, commit of an empty prepared layer")
    {
        auto sink = b.begin_layer(layer_info{diff_id_of("x"), 0});
        auto p = sink.finish();
        sink.finish(ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why == "finish called twice");
        sink.add_entry(tar_entry{}, byte_source_ref{}, ec, &why);
        CHECK(ec == error::invalid_argument);
        b.commit_layer(std::move(p));
        b.commit_layer(std::move(p), ec, &why);
        CHECK(ec == error::invalid_argument);
        CHECK(why.find("holds no image") != std::string::npos);
        CHECK(b.has_layer(diff_id_of("x")));
    }
    SUBCASE("compose: an empty key, a layer never built")
    {
        std::vector<erofs_builder::layer_result> none;
        b.compose(digest{}, none, ec, &why);
        CHECK(ec == error::invalid_argument);
        std::vector<erofs_builder::layer_result> missing{{diff_id_of("missing"), {}, 1}};
        try {
            b.compose(diff_id_of("k"), missing);
            FAIL("no exception");
        } catch (system_error const& x) {
            CHECK(x.code() == error::not_found);
            CHECK(std::string(x.what()).find("layer 0 (" + diff_id_of("missing").str() + ") is not held") !=
                  std::string::npos);
        }
        CHECK_FALSE(fs::exists(b.fsmeta_path(diff_id_of("k"))));
    }
    CHECK(count_entries(root / "tmp") == 0);
}
