// The EROFS artifacts checked with real tools: fsck.erofs (layers; fsmeta with --device),
// fsck.erofs --extract, qemu-img (info, convert), and the kernel (loop mounts of each layer and
// of the raw disk behind the VMDK in flat-device mode), against the reference merged rootfs
// that rootfs_builder composes from the same layers.
#include <ocistore/builder/erofs_builder.hpp>

#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/vmdk.hpp>
#include <ocistore/file_source.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/ingest.hpp>

#include <support/compress.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/tree_snapshot.hpp>

#include <doctest/doctest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::memory_source;
using ocistore_test::tar_header;
using ocistore_test::tar_writer;
using ocistore_test::tree_snapshot;
namespace fs = std::filesystem;

namespace {

/** A scratch directory removed on destruction: in /dev/shm when it has room and keeps user,
    trusted and security xattrs (the reference rootfs needs them), else in the temporary
    directory. Hundreds of MB are written and read back several times; memory keeps that
    within the test's time budget on a slow disk. */
class scratch_dir {
public:
    explicit scratch_dir(std::string const& prefix, std::uint64_t need_bytes)
    {
        fs::path base = fs::temp_directory_path();
        if (shm_usable(need_bytes)) base = "/dev/shm";
        std::string tmpl = (base / (prefix + "-XXXXXX")).string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    scratch_dir(scratch_dir const&) = delete;
    scratch_dir& operator=(scratch_dir const&) = delete;
    ~scratch_dir()
    {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    fs::path const& path() const noexcept { return path_; }
    fs::path operator/(fs::path const& p) const { return path_ / p; }

private:
    static bool shm_usable(std::uint64_t need_bytes)
    {
        struct ::statvfs sv;
        if (::statvfs("/dev/shm", &sv) != 0 || std::uint64_t(sv.f_bavail) * sv.f_frsize < need_bytes) return false;
        std::string probe = "/dev/shm/ocistore-xattr-probe-XXXXXX";
        int const fd = ::mkstemp(probe.data());
        if (fd < 0) return false;
        bool ok = ::fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
        if (::geteuid() == 0) ok = ok && ::fsetxattr(fd, "trusted.probe", "1", 1, 0) == 0;
        ::close(fd);
        ::unlink(probe.c_str());
        return ok;
    }
    fs::path path_;
};

/// Runs a shell command; returns its exit status and output (stdout and stderr).
std::pair<int, std::string> run(std::string const& cmd)
{
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int const st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string quoted(fs::path const& p) { return "'" + p.string() + "'"; }

bool have_tools()
{
    static bool const have = run("fsck.erofs -V").first == 0 && run("qemu-img --version").first == 0;
    if (!have) MESSAGE("fsck.erofs or qemu-img is not installed: real-tool checks skipped");
    return have;
}

/// Unmounts on destruction.
struct mount_guard {
    fs::path dir;
    bool mounted = false;
    ~mount_guard()
    {
        if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

/// Whether this process may loop-mount; says why not, once, when it cannot.
bool can_mount()
{
    static bool const can = [] {
        if (::geteuid() != 0 || !fs::exists("/dev/loop-control")) {
            MESSAGE("not root or no loop devices: kernel mount checks skipped");
            return false;
        }
        return true;
    }();
    return can;
}

/// Loop-mounts `image` read-only as EROFS on `guard.dir` (created); false, with a message, when the kernel refuses.
bool mount_erofs(fs::path const& image, mount_guard& guard)
{
    fs::create_directories(guard.dir);
    auto [rc, out] = run("mount -t erofs -o loop,ro " + quoted(image) + " " + quoted(guard.dir));
    if (rc != 0) {
        MESSAGE("mount -t erofs " << image.filename().string() << " failed, kernel check skipped: " << out);
        return false;
    }
    guard.mounted = true;
    return true;
}

/// One layer blob as a registry would serve it.
struct layer_blob {
    std::string name;
    layer_compression compression = layer_compression::none;
    std::string bytes; ///< the blob in memory, or
    fs::path file;     ///< the blob on disk
    digest diff_id;
};

layer_blob memory_layer(std::string name, std::string const& tar, layer_compression c)
{
    layer_blob b;
    b.name = std::move(name);
    b.compression = c;
    b.diff_id = digest_of<sha256_hasher>(tar);
    b.bytes = c == layer_compression::gzip   ? ocistore_test::gzip_compress(tar)
              : c == layer_compression::zstd ? ocistore_test::zstd_compress(tar)
                                             : tar;
    return b;
}

digest file_digest(fs::path const& p)
{
    file_source src(p);
    sha256_hasher h;
    std::vector<std::byte> buf(1 << 20);
    for (;;) {
        error_code ec;
        std::size_t const n = src.read_some(buf, ec);
        REQUIRE_FALSE(ec);
        if (n == 0) break;
        h.update(std::span<std::byte const>(buf.data(), n));
    }
    return finish_digest(h);
}

/// Streams `blob` through the store's one-pass pipeline into a sink of `b`, then commits it.
template <class B> typename B::layer_result add_layer(B& b, layer_blob const& blob, std::size_t index)
{
    error_code ec;
    std::string why;
    if (auto held = b.layer(blob.diff_id, ec)) return *held;
    auto sink = b.begin_layer(layer_info{blob.diff_id, index}, ec, &why);
    REQUIRE_MESSAGE(!ec, blob.name << ": " << why);
    ingest_options o;
    o.compression = blob.compression;
    o.expected_diff_id = blob.diff_id;
    if (blob.file.empty()) {
        memory_source src(blob.bytes);
        ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
    } else {
        file_source src(blob.file);
        ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
    }
    REQUIRE_MESSAGE(!ec, blob.name << ": " << why);
    auto prepared = sink.finish(ec, &why);
    REQUIRE_MESSAGE(!ec, blob.name << ": " << why);
    auto r = b.commit_layer(std::move(prepared), ec, &why);
    REQUIRE_MESSAGE(!ec, blob.name << ": " << why);
    return r;
}

/// The same image built by both builders.
struct built {
    erofs_builder::image_result erofs;
    rootfs_builder::image_result rootfs;
    std::vector<rootfs_builder::layer_result> rootfs_layers;
};

built build_both(fs::path const& root, digest const& key, std::vector<layer_blob> const& blobs)
{
    erofs_builder_options eo;
    eo.durable = false;
    erofs_builder eb(root / "erofs", eo);
    rootfs_options ro;
    ro.durable = false;
    rootfs_builder rb(root / "rootfs", ro);
    built out;
    std::vector<erofs_builder::layer_result> el;
    for (std::size_t i = 0; i < blobs.size(); ++i) {
        el.push_back(add_layer(eb, blobs[i], i));
        out.rootfs_layers.push_back(add_layer(rb, blobs[i], i));
    }
    error_code ec;
    std::string why;
    out.erofs = eb.compose(key, el, ec, &why);
    REQUIRE_MESSAGE(!ec, why);
    out.rootfs = rb.compose(key, out.rootfs_layers, ec, &why);
    REQUIRE_MESSAGE(!ec, why);
    return out;
}

/// What rootfs_builder recorded of a layer instead of extracting it.
struct layer_markers {
    std::set<std::string> whiteouts, opaques, implicit_dirs;
};

layer_markers markers_of(rootfs_builder::layer_result const& l)
{
    std::ifstream in(l.path / "layer.json", std::ios::binary);
    std::string const text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    auto const v = boost::json::parse(text);
    auto strings = [&](char const* key) {
        std::set<std::string> s;
        for (auto const& x : v.at(key).as_array()) s.insert(std::string(x.as_string()));
        return s;
    };
    return {strings("whiteouts"), strings("opaque"), strings("implicit_dirs")};
}

/** Turns a snapshot of a layer image (mounted or extracted) into what rootfs_builder's layer
    tree holds: whiteouts (0:0 character devices) and opaque markers
    (trusted.overlay.opaque=y) taken out and checked against layer.json; directories the
    layer only implies get the reference's time (rootfs_builder uses 0, the layer writer the
    image's build time: the tar says nothing). */
void normalise_layer(tree_snapshot& got, tree_snapshot const& want, layer_markers const& m, bool has_xattrs)
{
    std::set<std::string> whiteouts, opaques;
    for (auto it = got.begin(); it != got.end();) {
        if (it->second.type == 'c' && it->second.major == 0 && it->second.minor == 0) {
            whiteouts.insert(it->first);
            it = got.erase(it);
            continue;
        }
        auto& x = it->second.xattrs;
        for (auto xi = x.begin(); xi != x.end();) {
            if (xi->first == "trusted.overlay.opaque" && xi->second == "y") {
                opaques.insert(it->first);
                xi = x.erase(xi);
            } else {
                ++xi;
            }
        }
        ++it;
    }
    auto show = [](std::set<std::string> const& v) {
        std::string out;
        for (auto const& p : v) out += " \"" + p + "\"";
        return out;
    };
    CHECK_MESSAGE(whiteouts == m.whiteouts, "whiteouts in the image:" << show(whiteouts) << "; in layer.json:"
                                                                      << show(m.whiteouts));
    if (has_xattrs)
        CHECK_MESSAGE(opaques == m.opaques, "opaque directories in the image:" << show(opaques)
                                                                               << "; in layer.json:" << show(m.opaques));
    for (auto const& d : m.implicit_dirs) {
        auto g = got.find(d);
        auto w = want.find(d);
        if (g != got.end() && w != want.end()) {
            g->second.mtime = w->second.mtime;
            g->second.mtime_nsec = w->second.mtime_nsec;
        }
    }
}

/** Directories whose time no layer states: implicit in some layer, and with rootfs_builder's
    time for those (0) in the reference. rootfs_builder gives them mtime 0, write_fsmeta the
    image's build time. */
std::set<std::string> undeclared_dirs(built const& img, tree_snapshot const& reference)
{
    std::set<std::string> implicit;
    for (auto const& l : img.rootfs_layers) {
        auto const m = markers_of(l);
        implicit.insert(m.implicit_dirs.begin(), m.implicit_dirs.end());
    }
    std::set<std::string> out;
    for (auto const& [p, n] : reference)
        if (n.type == 'd' && n.mtime == 0 && n.mtime_nsec == 0 && implicit.count(p)) out.insert(p);
    return out;
}

/// Every check of one image: fsck, extraction, qemu-img, kernel mounts against the reference.
void check_with_tools(built const& img, fs::path const& work, std::vector<std::size_t> extract_layers)
{
    auto const& e = img.erofs;
    REQUIRE(e.layers.size() == img.rootfs_layers.size());

    INFO("fsck.erofs on every layer image and on the fsmeta with --device per layer");
    std::string devices;
    for (auto const& l : e.layers) {
        auto [rc, out] = run("fsck.erofs " + quoted(l.path));
        CHECK_MESSAGE(rc == 0, l.path.filename().string() << ": " << out);
        devices += " --device=" + quoted(l.path);
    }
    {
        auto [rc, out] = run("fsck.erofs" + devices + " " + quoted(e.fsmeta));
        CHECK_MESSAGE(rc == 0, "fsmeta: " << out);
    }

    if (::geteuid() != 0) {
        MESSAGE("not root: device nodes cannot be extracted, so the extraction and tree checks are skipped");
        extract_layers = {};
    }
    for (std::size_t i : extract_layers) {
        CAPTURE(i);
        fs::path const x = work / ("extract-" + std::to_string(i));
        auto [rc, out] = run("fsck.erofs --extract=" + quoted(x) + " " + quoted(e.layers[i].path));
        REQUIRE_MESSAGE(rc == 0, out);
        auto got = ocistore_test::snapshot_tree(x);
        auto want = ocistore_test::snapshot_tree(img.rootfs_layers[i].path / "tree");
        normalise_layer(got, want, markers_of(img.rootfs_layers[i]), false);
        // erofs-utils 1.5 --extract does not restore xattrs, hardlinks, directory times, nor
        // setuid/setgid bits (it chowns after chmod).
        for (auto* s : {&got, &want})
            for (auto& [p, n] : *s) {
                n.link_group.clear();
                if (n.type != 'd') n.mode &= 0777;
            }
        ocistore_test::tree_compare how;
        how.xattrs = false;
        how.nlink = false;
        how.dir_times = false;
        std::string const diff = ocistore_test::diff_trees(got, want, how);
        CHECK_MESSAGE(diff.empty(), "fsck.erofs --extract of layer " << i << " differs from the layer:\n" << diff);
        fs::remove_all(x);
    }

    INFO("qemu-img reads the VMDK as fsmeta ‖ layer 0 ‖ … ‖ layer n-1");
    std::vector<fs::path> parts{e.fsmeta};
    for (auto const& l : e.layers) parts.push_back(l.path);
    std::uint64_t total = 0;
    for (auto const& p : parts) total += fs::file_size(p);
    {
        auto [rc, out] = run("qemu-img info --output=json " + quoted(e.vmdk));
        REQUIRE_MESSAGE(rc == 0, out);
        CHECK_MESSAGE(out.find("\"format\": \"vmdk\"") != std::string::npos, out);
        CHECK_MESSAGE(out.find("\"virtual-size\": " + std::to_string(total) + ",") != std::string::npos, out);
    }
    fs::path const raw = work / "disk.raw";
    {
        auto [rc, out] = run("qemu-img convert -O raw " + quoted(e.vmdk) + " " + quoted(raw));
        REQUIRE_MESSAGE(rc == 0, out);
    }
    REQUIRE(fs::file_size(raw) == total);
    {
        std::ifstream disk(raw, std::ios::binary);
        std::vector<char> a(1 << 20), b(1 << 20);
        std::uint64_t offset = 0;
        bool same = true;
        for (auto const& p : parts) {
            std::ifstream part(p, std::ios::binary);
            while (same && part) {
                part.read(b.data(), static_cast<std::streamsize>(b.size()));
                auto const n = static_cast<std::size_t>(part.gcount());
                if (n == 0) break;
                disk.read(a.data(), static_cast<std::streamsize>(n));
                if (static_cast<std::size_t>(disk.gcount()) != n || std::memcmp(a.data(), b.data(), n) != 0) {
                    same = false;
                    MESSAGE("the raw disk differs from " << p.filename().string() << " near byte " << offset);
                }
                offset += n;
            }
        }
        CHECK(same);
    }

    if (!can_mount()) return;
    for (std::size_t i = 0; i < e.layers.size(); ++i) {
        CAPTURE(i);
        mount_guard guard{work / ("layer-" + std::to_string(i))};
        if (!mount_erofs(e.layers[i].path, guard)) return;
        auto got = ocistore_test::snapshot_tree(guard.dir);
        auto const want = ocistore_test::snapshot_tree(img.rootfs_layers[i].path / "tree");
        normalise_layer(got, want, markers_of(img.rootfs_layers[i]), true);
        std::string const diff = ocistore_test::diff_trees(got, want);
        CHECK_MESSAGE(diff.empty(), "the mounted layer image " << i << " differs from the layer:\n" << diff);
    }
    {
        mount_guard guard{work / "merged"};
        if (!mount_erofs(raw, guard)) return; // one device, no device= option: flat-device mode
        auto got = ocistore_test::snapshot_tree(guard.dir);
        auto const want = ocistore_test::snapshot_tree(img.rootfs.rootfs);
        for (auto const& d : undeclared_dirs(img, want)) { // no layer states their time
            auto g = got.find(d);
            auto w = want.find(d);
            if (g != got.end() && w != want.end()) {
                g->second.mtime = w->second.mtime;
                g->second.mtime_nsec = w->second.mtime_nsec;
            }
        }
        std::string const diff = ocistore_test::diff_trees(got, want);
        CHECK_MESSAGE(diff.empty(), "the mounted VMDK disk differs from the reference rootfs:\n" << diff);
        CHECK(got.size() == want.size());
    }
}

std::string noise(std::size_t n, std::uint64_t seed)
{
    std::string s(n, '\0');
    for (auto& c : s) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c = static_cast<char>(seed >> 56);
    }
    return s;
}

tar_header hdr(std::uint32_t mode = 0644, char type = '0')
{
    tar_header h;
    h.mode = mode;
    h.type = type;
    return h;
}

/// Four layers with every entry type and the awkward merges.
std::vector<layer_blob> tricky_layers()
{
    std::vector<layer_blob> out;
    std::string const cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += (i ? "/d" : "deep/d") + std::to_string(i);

    { // 0: uncompressed
        tar_writer t;
        t.dir("./", 0755);
        t.dir("etc/");
        t.file("etc/hosts", "127.0.0.1 localhost\n");
        t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        t.hardlink("etc/passwd.link", "etc/passwd");
        t.hardlink("etc/conf/another", "etc/passwd"); // implicit parent etc/conf
        t.dir("bin/");
        t.pax({{"SCHILY.xattr.security.capability", cap}, {"SCHILY.xattr.user.note", "ping me"}});
        t.file("bin/ping", "ELF...ping", hdr(04755));
        t.symlink("bin/sh", "/bin/busybox");
        t.dir("dev/");
        for (auto [name, type, ma, mi] : {std::tuple{"dev/null", '3', 1u, 3u}, std::tuple{"dev/sda", '4', 8u, 0u},
                                          std::tuple{"dev/wide", '3', 300u, 70000u}}) {
            tar_header h = hdr(0666, type);
            h.name = name;
            h.devmajor = ma;
            h.devminor = mi;
            t.header(h);
        }
        t.fifo("dev/fifo");
        for (auto [name, type, ma, mi] : {std::tuple{"special/wide", '3', 300u, 70000u},
                                          std::tuple{"special/disk", '4', 259u, 1u}}) {
            tar_header h = hdr(0600, type);
            h.name = name;
            h.devmajor = ma;
            h.devminor = mi;
            t.header(h);
        }
        t.fifo("special/fifo");
        t.pax({{"SCHILY.xattr.trusted.dirnote", "t"}});
        t.dir("opaque/", 0755);
        t.file("opaque/a", "a");
        t.file("opaque/sub/b", "b");
        t.dir("gone/");
        t.file("gone/x", "x");
        t.file("gone/y/z", "z");
        t.file("lower-file", "a file that becomes a directory");
        t.file("lower-dir/f", "a directory that becomes a file");
        std::string const n255(255, 'n');
        t.pax({{"path", "long/" + n255}});
        t.file("placeholder", "long name");
        std::string const t300(300, 't'), t4095(4095, 'u');
        t.pax({{"linkpath", t300}});
        t.symlink("long/l300", "x");
        t.pax({{"linkpath", t4095}});
        t.symlink("long/l4095", "x");
        t.pax({{"path", deep + "/leaf"}});
        t.file("placeholder", "deep");
        t.file("unicode/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", "nihongo");
        t.file("unicode/emoji-\xf0\x9f\x98\x80", "smile");
        t.pax({{"SCHILY.xattr.trusted.keep", "kept"}, {"SCHILY.xattr.user.dir", "d"}});
        t.dir("owners/", 0705);
        t.pax({{"uid", "100000"}, {"gid", "70000"}});
        t.file("owners/big-ids", "ids");
        t.pax({{"mtime", "1700000000.123456789"}});
        t.file("owners/nsec", "nsec");
        tar_header old = hdr();
        old.mtime = 1600000000;
        t.file("owners/old", "old", old);
        t.file("data/empty", "");
        t.file("data/big", noise(5u << 20, 1));
        t.file("data/exact", noise(8192, 2));
        t.file("linkgroup/a", "shared");
        t.hardlink("linkgroup/b", "linkgroup/a");
        t.hardlink("linkgroup/c", "linkgroup/a");
        t.end();
        out.push_back(memory_layer("tricky 0 (uncompressed)", t.str(), layer_compression::none));
    }
    { // 1: gzip
        tar_writer t;
        t.file(".wh.gone", "", hdr(0));
        t.file("etc/.wh.passwd.link", "", hdr(0));
        t.file("etc/hosts", "::1 localhost\n");
        t.dir("opaque/", 0750);
        t.file("opaque/.wh..wh..opq", "", hdr(0));
        t.file("opaque/new", "new");
        t.file("lower-file/inside", "now inside a directory");
        t.file("lower-dir", "now a file");
        t.dir("newtree/");
        t.file("newtree/.wh.ghost", "", hdr(0));
        t.file("newtree/real", "real");
        t.end();
        out.push_back(memory_layer("tricky 1 (gzip)", t.str(), layer_compression::gzip));
    }
    { // 2: zstd
        tar_writer t;
        tar_header e = hdr(0700, '5');
        e.name = "etc/";
        e.uid = 5;
        e.gid = 6;
        e.mtime = 1650000000;
        t.header(e);
        t.file("gone/again", "back");
        t.file("linkgroup/b", "replaced");
        t.pax({{"SCHILY.xattr.security.capability", cap}, {"SCHILY.xattr.user.changed", "2"}});
        t.file("bin/ping", "ELF...ping v2", hdr(04755));
        t.pax({{"path", deep + "/leaf2"}});
        t.file("placeholder", "deeper");
        t.file("unicode/.wh.emoji-\xf0\x9f\x98\x80", "", hdr(0));
        t.end();
        out.push_back(memory_layer("tricky 2 (zstd)", t.str(), layer_compression::zstd));
    }
    { // 3: uncompressed
        tar_writer t;
        t.dir("./", 0751);
        t.symlink("bin/sh", "/bin/dash");
        t.file("dev/.wh..wh..opq", "", hdr(0));
        tar_header h = hdr(0666, '3');
        h.name = "dev/null";
        h.devmajor = 1;
        h.devminor = 3;
        t.header(h);
        t.file("top/a", "top");
        t.hardlink("top/b", "top/a");
        t.end();
        out.push_back(memory_layer("tricky 3 (uncompressed)", t.str(), layer_compression::none));
    }
    return out;
}

} // namespace

TEST_CASE("erofs artifacts: a tricky image passes fsck.erofs and qemu-img, and mounts as the reference rootfs")
{
    if (!have_tools()) return;
    scratch_dir dir("erofs-artifacts", 256u << 20);
    auto const blobs = tricky_layers();
    auto const img = build_both(dir / "store", digest_of<sha256_hasher>("tricky image"), blobs);
    REQUIRE(img.erofs.layers.size() == 4);
    // The reference itself is what the layers say.
    auto const ref = ocistore_test::snapshot_tree(img.rootfs.rootfs);
    CHECK(ref.at(".").mode == 0751);
    CHECK_FALSE(ref.count("gone/x"));
    CHECK(ref.count("gone/again"));
    CHECK(ref.at("etc").uid == 5);
    CHECK(ref.at("etc/passwd").nlink == 2);
    CHECK_FALSE(ref.count("opaque/a"));
    CHECK_FALSE(ref.count("newtree/ghost"));
    CHECK(ref.at("dev").type == 'd');
    CHECK_FALSE(ref.count("dev/sda"));
    CHECK(ref.at("linkgroup/a").nlink == 2);
    CHECK(ref.at("top/b").link_group == "top/a");
    CHECK(ref.at("bin/ping").xattrs.size() == 2);
    CHECK(ref.at("owners").xattrs.size() == 2);
    CHECK(ref.at("special/wide").major == 300);
    CHECK(ref.at("special/disk").type == 'b');
    CHECK(ref.at("special/fifo").type == 'p');
    check_with_tools(img, dir.path(), {0, 1, 2, 3});
}

TEST_CASE("erofs artifacts: a real-world-sized image of this machine's files, four layers")
{
    if (!have_tools()) return;
    auto const t0 = std::chrono::steady_clock::now();
    scratch_dir dir("erofs-artifacts-big", 3ull << 30);
    struct source {
        std::vector<std::string> paths;
        layer_compression compression;
    };
    std::vector<source> const sources{
        {{"usr/lib/python3.11", "usr/share/zoneinfo"}, layer_compression::gzip},
        {{"usr/lib/gcc"}, layer_compression::zstd},
        {{"usr/libexec", "usr/bin/passwd", "usr/bin/mount", "usr/lib/x86_64-linux-gnu/gstreamer1.0",
          "usr/bin/bzip2", "usr/bin/bunzip2", "usr/bin/bzcat", "usr/bin/pigz", "usr/bin/unpigz"},
         layer_compression::none},
    };
    std::vector<layer_blob> blobs;
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        std::string list;
        for (auto const& p : sources[i].paths)
            if (fs::exists("/" + p)) list += " '" + p + "'";
        if (list.empty()) {
            MESSAGE("none of layer " << i << "'s directories exists here: real-world image skipped");
            return;
        }
        fs::path const tar = dir / ("layer" + std::to_string(i) + ".tar");
        auto [rc, out] = run("tar --format=posix --xattrs --xattrs-include='*' --numeric-owner -C / -cf " +
                             quoted(tar) + list);
        REQUIRE_MESSAGE(rc == 0, out);
        bytes += fs::file_size(tar);
        layer_blob b;
        b.name = "layer " + std::to_string(i) + " (" + std::string(to_string(sources[i].compression)) + ")";
        b.compression = sources[i].compression;
        b.diff_id = file_digest(tar);
        if (b.compression == layer_compression::none) {
            b.file = tar;
        } else {
            b.file = tar.string() + (b.compression == layer_compression::gzip ? ".gz" : ".zst");
            std::string const cmd = b.compression == layer_compression::gzip
                ? (ocistore_test::has_command("pigz") ? "pigz -1 -p 2 -c " : "gzip -1 -c ")
                : "zstd -q -1 -T2 -c ";
            auto [crc, cout] = run(cmd + quoted(tar) + " > " + quoted(b.file));
            REQUIRE_MESSAGE(crc == 0, cout);
            fs::remove(tar);
        }
        blobs.push_back(std::move(b));
    }
    { // 3: changes on top
        tar_writer t;
        t.file("usr/lib/python3.11/.wh.email", "", hdr(0));
        t.file("usr/libexec/.wh..wh..opq", "", hdr(0));
        t.file("usr/libexec/new-helper", "#!/bin/sh\n", hdr(0755));
        t.file("usr/lib/python3.11/json/.wh..wh..opq", "", hdr(0));
        t.file("usr/lib/python3.11/json/kept", "the only file left");
        t.file("usr/lib/gcc/x86_64-linux-gnu/12/.wh.cc1", "", hdr(0));
        t.file("usr/share/zoneinfo/UTC", "not a zone any more");
        t.end();
        blobs.push_back(memory_layer("layer 3 (changes)", t.str(), layer_compression::none));
    }
    MESSAGE("real-world image: " << blobs.size() << " layers, " << (bytes >> 20) << " MiB of tar");
    WARN_MESSAGE(bytes > (200u << 20), "this machine has less to offer than a real-world image");

    auto const img = build_both(dir / "store", digest_of<sha256_hasher>("real-world image"), blobs);
    // What this machine's files bring: hardlink groups, file capabilities, setuid bits. The
    // merged-tree comparison covers them when the reference has them.
    std::size_t groups = 0, caps = 0, setuid = 0;
    for (auto const& p : sources[2].paths) {
        struct ::stat host, ref;
        fs::path const copy = img.rootfs.rootfs / p;
        if (::lstat(("/" + p).c_str(), &host) != 0 || ::lstat(copy.c_str(), &ref) != 0) continue;
        if (S_ISREG(host.st_mode) && host.st_nlink > 1) groups += ref.st_nlink > 1;
        if (host.st_mode & S_ISUID) setuid += (ref.st_mode & S_ISUID) != 0;
    }
    char capbuf[64];
    fs::path const ptp = "usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-ptp-helper";
    if (::lgetxattr(("/" / ptp).c_str(), "security.capability", capbuf, sizeof capbuf) > 0)
        caps += ::lgetxattr((img.rootfs.rootfs / ptp).c_str(), "security.capability", capbuf, sizeof capbuf) > 0;
    MESSAGE("reference rootfs: " << groups << " hardlinked files, " << caps << " file capabilities, " << setuid
                                 << " setuid files from this machine");
    auto const t1 = std::chrono::steady_clock::now();
    check_with_tools(img, dir.path(), {0, 3});
    auto const t2 = std::chrono::steady_clock::now();
    using ms = std::chrono::milliseconds;
    MESSAGE("built in " << std::chrono::duration_cast<ms>(t1 - t0).count() << " ms, checked in "
                        << std::chrono::duration_cast<ms>(t2 - t1).count() << " ms");
}
