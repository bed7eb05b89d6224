// The `ocistore` binary under faults, against a real docker-registry on 127.0.0.1 behind a
// throttling fault_proxy: kill -9 at every phase of a pull, a file-size limit and a full file
// system, then a pull that completes; after every fault nothing half-written sits at a final
// name, and `ocistore verify` finds (and moves aside) damage that the next pull repairs.
#include <ocistore/cli_args.hpp>

#include <ocistore/digest.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/vmdk.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>

#include <support/cli_process.hpp>
#include <support/erofs_files.hpp>
#include <support/fault_proxy.hpp>
#include <support/http_test.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/registry_fixture.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <boost/json.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>
#include <zlib.h>

using namespace ocistore_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

/// `data` as a gzip stream.
std::string gzip(std::string const& data)
{
    z_stream z{};
    REQUIRE(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int const rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    REQUIRE(rc == Z_STREAM_END);
    return out;
}

/// A layer of `files` files of `size` pseudo-random bytes under "layer<seed>/", and a symlink.
std::string layer_tar(int seed, int files, std::size_t size)
{
    tar_writer w;
    std::string const dir = "layer" + std::to_string(seed) + "/";
    w.dir(dir);
    for (int i = 0; i < files; ++i)
        w.file(dir + "f" + std::to_string(i), random_bytes(size, static_cast<std::uint64_t>(seed * 100 + i)));
    w.symlink(dir + "link", "f0");
    w.end();
    return w.str();
}

/// An image pushed to the registry.
struct pushed_image {
    ocistore::digest manifest_digest;
    std::vector<ocistore::digest> blobs;
    std::vector<std::size_t> sizes;
};

/// Pushes `repo:tag`, linux/amd64, one layer per tar: gzip-compressed where `compressed[i]`.
pushed_image push_image(registry_pusher& push, std::string const& repo, std::string const& tag,
                        std::vector<std::string> const& tars, std::vector<bool> const& compressed)
{
    pushed_image img;
    ocistore::image_manifest m;
    m.media_type = std::string(ocistore::media_types::oci_manifest);
    std::vector<ocistore::digest> diff_ids;
    for (std::size_t i = 0; i < tars.size(); ++i) {
        std::string const blob = compressed[i] ? gzip(tars[i]) : tars[i];
        ocistore::descriptor d;
        d.media_type = std::string(compressed[i] ? ocistore::media_types::oci_layer_tar_gzip : ocistore::media_types::oci_layer_tar);
        d.digest = ocistore::digest::parse(push.push_blob(repo, blob));
        d.size = static_cast<std::int64_t>(blob.size());
        img.blobs.push_back(d.digest);
        img.sizes.push_back(blob.size());
        diff_ids.push_back(ocistore::digest::parse(sha256_digest(tars[i])));
        m.layers.push_back(std::move(d));
    }
    std::string const config = make_image_config(diff_ids);
    m.config.media_type = std::string(ocistore::media_types::oci_config);
    m.config.digest = ocistore::digest::parse(push.push_blob(repo, config));
    m.config.size = static_cast<std::int64_t>(config.size());
    img.manifest_digest = ocistore::digest::parse(
        push.push_manifest(repo, tag, json::serialize(json::value_from(m)), std::string(ocistore::media_types::oci_manifest)));
    return img;
}

fs::path part_file(fs::path const& root, ocistore::digest const& d) { return root / "tmp" / "blobs" / (d.path_safe() + ".part"); }

std::uint64_t size_or_zero(fs::path const& p)
{
    std::error_code ec;
    auto const n = fs::file_size(p, ec);
    return ec ? 0 : n;
}

/// Whether a line of `text` starts with `head` and ends with `tail`.
bool has_line(std::string const& text, std::string const& head, std::string const& tail)
{
    for (auto const& l : lines_of(text))
        if (l.starts_with(head) && l.ends_with(tail)) return true;
    return false;
}

/// The regular files directly in `dir` (none when it is absent).
std::vector<fs::path> files_in(fs::path const& dir)
{
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

/** The invariant after any crash: nothing half-written sits at a final name. Every blob
    hashes to its name; every layer image and fsmeta opens, has its full length and walks;
    every VMDK parses and its extents exist with their full sizes; index.json parses and
    names manifests that are there. Returns how many final files were checked. */
std::size_t check_nothing_half_written(fs::path const& root)
{
    std::size_t checked = 0;
    for (auto const& p : files_in(root / "blobs" / "sha256")) {
        auto const name = p.filename().string();
        if (name.starts_with(".")) continue; // a temporary of write_file_atomically, not a final name
        CHECK_MESSAGE(sha256_digest(read_text_file(p)) == "sha256:" + name, (p.string() + " does not hash to its name"));
        ++checked;
    }
    for (auto const* dir : {"layers", "fsmeta"}) {
        for (auto const& p : files_in(root / dir)) {
            INFO(p.string());
            CHECK(p.extension() == ".erofs");
            ocistore::error_code ec;
            std::string why;
            auto r = ocistore::erofs_image_reader::open(p, ec, &why);
            REQUIRE_MESSAGE(!ec, why);
            CHECK(fs::file_size(p) == std::uint64_t(r.info().blocks) * 4096);
            r.walk([](std::string_view, ocistore::erofs_inode_info const&, ocistore::error_code&) {}, ec, &why);
            CHECK_MESSAGE(!ec, why);
            CHECK((std::string(dir) == "layers") == r.info().devices.empty());
            ++checked;
        }
    }
    for (auto const& p : files_in(root / "vmdk")) {
        INFO(p.string());
        ocistore::error_code ec;
        std::string why;
        auto const extents = ocistore::parse_vmdk_extents(read_text_file(p), ec, &why);
        REQUIRE_MESSAGE(!ec, why);
        for (auto const& e : extents) {
            fs::path const file = p.parent_path() / e.path;
            CHECK_MESSAGE(size_or_zero(file) == e.size, file.string());
        }
        ++checked;
    }
    if (fs::exists(root / "index.json")) {
        auto const v = json::parse(read_text_file(root / "index.json"));
        for (auto const& m : v.at("manifests").as_array()) {
            auto const d = ocistore::digest::parse(std::string(m.at("digest").as_string()));
            CHECK(fs::exists(root / "blobs" / "sha256" / std::string(d.encoded())));
        }
        ++checked;
    }
    return checked;
}

/** The merged tree of image `manifest` in `root`, read through its VMDK's fsmeta and layer
    images with erofs_image_reader: path → "mode size content-digest-or-link-target". */
std::map<std::string, std::string> merged_tree(fs::path const& root, ocistore::digest const& manifest)
{
    fs::path const vmdk = root / "vmdk" / (manifest.path_safe() + ".vmdk");
    auto const extents = ocistore::parse_vmdk_extents(read_text_file(vmdk));
    REQUIRE(extents.size() >= 2);
    auto const reader = ocistore::erofs_image_reader::open(vmdk.parent_path() / extents[0].path);
    std::vector<int> devices{-1};
    for (std::size_t i = 1; i < extents.size(); ++i) {
        int const fd = ::open((vmdk.parent_path() / extents[i].path).c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        devices.push_back(fd);
    }
    std::map<std::string, std::string> tree;
    reader.walk([&](std::string_view path, ocistore::erofs_inode_info const& n, ocistore::error_code&) {
        std::string v = std::to_string(n.mode) + " " + std::to_string(n.size);
        if (n.is_regular()) v += " " + sha256_digest(erofs_content(reader, n, devices));
        if (n.is_symlink()) v += " -> " + reader.read_link(n);
        tree.emplace(std::string(path), std::move(v));
    });
    for (int fd : devices)
        if (fd >= 0) ::close(fd);
    return tree;
}

/// A tmpfs of `size` mounted on `dir` while alive (root only; check mounted()).
class tmpfs_mount {
public:
    tmpfs_mount(fs::path dir, std::string const& size) : dir_(std::move(dir))
    {
        fs::create_directories(dir_);
        if (::geteuid() != 0) {
            why_ = "not running as root";
            return;
        }
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0755").c_str()) != 0) {
            why_ = std::string("mount(2) failed: ") + std::strerror(errno);
            return;
        }
        mounted_ = true;
    }
    tmpfs_mount(tmpfs_mount const&) = delete;
    tmpfs_mount& operator=(tmpfs_mount const&) = delete;
    ~tmpfs_mount()
    {
        if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    bool mounted() const noexcept { return mounted_; }
    std::string const& why_not() const noexcept { return why_; }
    /// Grows (or shrinks) the file system.
    bool resize(std::string const& size)
    {
        return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size + ",mode=0755").c_str()) == 0;
    }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string why_;
};

/// A registry holding test/crash:v1 (three layers of about 1.6 MB, the middle one gzip) behind a proxy.
struct crash_registry {
    registry_fixture reg;
    fault_proxy proxy{"127.0.0.1", reg.port()};
    registry_pusher push{"127.0.0.1", reg.port()};
    pushed_image img = push_image(push, "test/crash", "v1",
                                  {layer_tar(1, 4, 400000), layer_tar(2, 3, 520000), layer_tar(3, 8, 200000)},
                                  {false, true, false});
    std::string ref = proxy.host() + "/test/crash:v1";

    std::vector<std::string> pull_args(fs::path const& root, std::vector<std::string> extra = {}) const
    {
        std::vector<std::string> a{"--root", root.string(), "pull", "--insecure-registry", "127.0.0.1", "--artifacts", "erofs"};
        a.insert(a.end(), extra.begin(), extra.end());
        a.push_back(ref);
        return a;
    }

    /** Checks that a pull failed on a write: exit 1, one line on stderr naming the write and
        `reason`, nothing on stdout, nothing half-written under `root`. Returns that line. */
    std::string check_failed_write(cli_run const& run, fs::path const& root, std::string_view reason) const
    {
        INFO("stderr: ", run.err);
        CHECK(run.status == 1);
        CHECK(run.out.empty());
        auto const l = lines_of(run.err);
        REQUIRE(l.size() == 1);
        CHECK(l[0].starts_with("ocistore: "));
        CHECK(l[0].find(reason) != std::string::npos);
        CHECK(l[0].find("writing") != std::string::npos); // names the write that failed
        check_nothing_half_written(root);
        return l[0];
    }

    /// Pulls again into `root`: it succeeds, and the cache verifies clean.
    void check_pull_completes(fs::path const& root, fs::path const& dir) const
    {
        auto again = run_cli(pull_args(root, {"--progress", "none"}), dir);
        INFO("stderr: ", again.err);
        REQUIRE(again.status == 0);
        check_nothing_half_written(root);
        auto verify = run_cli({"--root", root.string(), "verify"}, dir);
        INFO("verify: ", verify.out, verify.err);
        CHECK(verify.status == 0);
        CHECK(verify.out.ends_with(": no damage found\n"));
    }
};

} // namespace

TEST_CASE("cli crash: kill -9 at every phase of a pull never leaves anything half-written, and the next pull completes it")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-crash");
    crash_registry r;
    fs::path const root = dir / "root";
    auto const& img = r.img;
    // About 6 MB/s: each layer takes a few hundred milliseconds, long enough to be caught mid-way.
    r.proxy.throttle_blobs(32 * 1024, 5ms);
    auto const args = r.pull_args(root, {"--jobs", "1", "--progress", "plain"});
    auto on_stderr = [](std::string text) { return [text](cli_process& p) { return p.err().find(text) != std::string::npos; }; };
    auto part_at_least = [&](std::size_t layer, double fraction) {
        return [&, layer, fraction](cli_process&) {
            return double(size_or_zero(part_file(root, img.blobs[layer]))) >= fraction * double(img.sizes[layer]);
        };
    };
    struct kill_point {
        std::string phase;
        std::function<bool(cli_process&)> reached;
    };
    // In pull order; each run resumes what the previous one left. --jobs 1 keeps the layers in order.
    std::vector<kill_point> const points{
        {"process start", [](cli_process&) { return true; }},
        {"manifest fetch", on_stderr("resolving ")},
        {"config fetch, first layer starting", on_stderr("resolved ")},
        {"layer 1 download and build", part_at_least(0, 0.4)},
        {"layer 1 published", [](cli_process& p) { return has_line(p.err(), "layer 1/3 ", ": done"); }},
        {"layer 2 download and build", part_at_least(1, 0.5)},
        {"layer 3 download and build (layer 2 resumed and published)", part_at_least(2, 0.5)},
        {"compose", on_stderr("composing the image")},
        {"metadata write", [](cli_process& p) { return p.err().find("image composed") != std::string::npos ||
                                                       p.err().find("image artifacts cached") != std::string::npos; }},
    };
    int killed = 0;
    std::string landed;
    for (auto const& point : points) {
        CAPTURE(point.phase);
        cli_process p(args, dir.path());
        auto const until = std::chrono::steady_clock::now() + 60s;
        bool reached = false;
        while (std::chrono::steady_clock::now() < until) {
            if ((reached = point.reached(p))) break;
            if (p.wait_for(0ms)) break; // it finished first
            std::this_thread::sleep_for(1ms);
        }
        if (reached) p.signal(SIGKILL);
        int const status = p.wait();
        INFO("stderr: ", p.err());
        CHECK(reached);
        if (status == 128 + SIGKILL) {
            ++killed;
            landed += "\n  killed at \"" + point.phase + "\": " + std::to_string(check_nothing_half_written(root)) +
                      " final files intact";
        } else {
            CHECK(status == 0);
            landed += "\n  \"" + point.phase + "\": the pull finished before the kill";
            check_nothing_half_written(root);
        }
    }
    MESSAGE("kill -9 points:" << landed);
    CHECK(killed >= 8);

    // The last pull completes, and the result equals a clean pull, byte for byte and file for file.
    r.proxy.throttle_blobs(0, 0ms);
    auto last = run_cli(r.pull_args(root, {"--progress", "none", "--json"}), dir.path());
    INFO("last pull stderr: ", last.err);
    REQUIRE(last.status == 0);
    CHECK(json::parse(last.out).at("manifest_digest").as_string() == img.manifest_digest.str());
    check_nothing_half_written(root);
    CHECK(files_in(root / "tmp" / "blobs").empty()); // every .part was used up

    auto verify = run_cli({"--root", root.string(), "verify"}, dir.path());
    INFO("verify: ", verify.out, verify.err);
    CHECK(verify.status == 0);
    CHECK(verify.out.ends_with(": no damage found\n"));
    CHECK(verify.out.starts_with("verified 1 image, 5 blobs, 3 layer artifacts, 2 image artifacts ("));

    // A writer killed between creating and renaming its temporary leaves `.<name>.tmp.<random>`
    // beside the final name. It is never read; prune removes it once older than the grace period.
    std::vector<fs::path> temporaries;
    for (auto const* sub : {"", "blobs/sha256"})
        for (auto const& p : files_in(root / sub))
            if (p.filename().string().starts_with(".")) temporaries.push_back(p);
    MESSAGE(temporaries.size() << " temporaries left by the kills");
    if (!temporaries.empty()) {
        for (auto const& p : temporaries) fs::last_write_time(p, fs::file_time_type::clock::now() - 48h);
        auto pruned = run_cli({"--root", root.string(), "prune"}, dir.path());
        INFO("prune: ", pruned.out, pruned.err);
        CHECK(pruned.status == 0);
        for (auto const& p : temporaries) CHECK_MESSAGE(!fs::exists(p), p.string());
    }

    fs::path const clean = dir / "clean";
    auto fresh = run_cli(r.pull_args(clean, {"--progress", "none"}), dir.path());
    REQUIRE(fresh.status == 0);
    for (auto const* sub : {"layers", "fsmeta", "vmdk", "blobs/sha256"}) {
        auto const a = files_in(root / sub), b = files_in(clean / sub);
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].filename() == b[i].filename());
            CHECK_MESSAGE(read_text_file(a[i]) == read_text_file(b[i]), a[i].string());
        }
    }
    auto const tree = merged_tree(root, img.manifest_digest);
    CHECK(tree == merged_tree(clean, img.manifest_digest));
    CHECK(tree.at("layer2/f2").starts_with("33188 520000 sha256:"));
    CHECK(tree.at("layer3/link") == "41471 2 -> f0");
}

TEST_CASE("cli crash: a write past RLIMIT_FSIZE fails the pull with one line, leaves nothing corrupt, and the next pull succeeds")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-crash");
    crash_registry r;
    fs::path const root = dir / "root";
    auto limited = run_cli(r.pull_args(root, {"--progress", "none"}), dir.path(), cli_limits{std::uint64_t(1) << 20});
    MESSAGE("RLIMIT_FSIZE of 1 MiB: " << r.check_failed_write(limited, root, "File too large"));
    CHECK_FALSE(fs::exists(root / "index.json"));
    r.check_pull_completes(root, dir.path());
}

TEST_CASE("cli crash: a full file system (tmpfs) fails the pull with one line, and the pull succeeds once there is space")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-crash");
    tmpfs_mount small(dir / "small", "3m");
    if (!small.mounted()) {
        MESSAGE("the full-file-system case needs a tmpfs mount (" << small.why_not() << "): skipped");
        return;
    }
    crash_registry r;
    fs::path const root = dir / "small" / "root";
    auto full = run_cli(r.pull_args(root, {"--progress", "none"}), dir.path());
    MESSAGE("a 3 MiB tmpfs: " << r.check_failed_write(full, root, "No space left on device"));
    REQUIRE(small.resize("64m"));
    r.check_pull_completes(root, dir.path());
}

TEST_CASE("cli verify: damage is reported one line each, moved aside (not with --check-only), exit 1, and the next pull repairs it")
{
    OCISTORE_REQUIRE_REGISTRY();
    temp_dir dir("ocistore-crash");
    crash_registry r;
    fs::path const root = dir / "root";
    REQUIRE(run_cli(r.pull_args(root, {"--progress", "none"}), dir.path()).status == 0);
    auto const& img = r.img;
    fs::path const blob = root / "blobs" / "sha256" / std::string(img.blobs[1].encoded());
    fs::path const vmdk = root / "vmdk" / (img.manifest_digest.path_safe() + ".vmdk");
    auto flip = [](fs::path const& p, std::uint64_t at) {
        std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(at));
        char c = 0;
        f.get(c);
        f.seekp(static_cast<std::streamoff>(at));
        f.put(static_cast<char>(c ^ 1));
    };
    flip(blob, 1000);
    flip(vmdk, read_text_file(vmdk).find("RW ") + 3);
    auto const blob_bytes = read_text_file(blob);

    auto check = run_cli({"--root", root.string(), "verify", "--check-only", r.ref}, dir.path());
    INFO("check-only: ", check.out, check.err);
    CHECK(check.status == 1);
    CHECK(check.err.empty());
    auto l = lines_of(check.out);
    REQUIRE(l.size() == 3);
    CHECK(l[0].starts_with("damaged blob " + blob.string() + ": layer blob content hashes to sha256:"));
    CHECK(l[1].starts_with("damaged image_artifact " + vmdk.string() + ": VMDK differs from the descriptor re-derived"));
    CHECK(l[2].starts_with("verified 1 image, 5 blobs, 3 layer artifacts, 2 image artifacts ("));
    CHECK(l[2].ends_with("): 2 damaged or missing (--check-only: nothing moved)"));
    CHECK(read_text_file(blob) == blob_bytes);

    auto js = run_cli({"--root", root.string(), "verify", "--check-only", "--json"}, dir.path());
    CHECK(js.status == 1);
    auto const j = json::parse(js.out).as_object();
    CHECK(j.at("clean").as_bool() == false);
    CHECK(j.at("evicted").to_number<int>() == 0);
    REQUIRE(j.at("findings").as_array().size() == 2);
    auto const& f0 = j.at("findings").as_array()[0].as_object();
    CHECK(f0.at("kind").as_string() == "blob");
    CHECK(f0.at("key").as_string() == img.blobs[1].str());
    CHECK(f0.at("error").as_string() == ocistore::make_error_code(ocistore::error::digest_mismatch).message());
    CHECK(f0.at("evicted_to").is_null());

    auto fix = run_cli({"--root", root.string(), "verify"}, dir.path());
    INFO("verify: ", fix.out, fix.err);
    CHECK(fix.status == 1);
    l = lines_of(fix.out);
    REQUIRE(l.size() == 3);
    CHECK(l[0].ends_with(", moved to " + (root / "tmp" / "evicted" / "blobs" / "sha256" / std::string(img.blobs[1].encoded())).string()));
    CHECK(l[1].ends_with(", moved to " + (root / "tmp" / "evicted" / "vmdk" / vmdk.filename()).string()));
    CHECK(l[2].ends_with("): 2 damaged or missing, 2 moved aside; pull again to repair"));
    CHECK_FALSE(fs::exists(blob));
    CHECK_FALSE(fs::exists(vmdk));

    r.proxy.clear_log();
    auto pull = run_cli(r.pull_args(root, {"--progress", "none", "--json"}), dir.path());
    INFO("pull: ", pull.err);
    REQUIRE(pull.status == 0);
    CHECK(json::parse(pull.out).at("cached").as_bool() == false);
    CHECK(r.proxy.gets("/blobs/" + img.blobs[1].str()) == 1);
    CHECK(r.proxy.gets("/blobs/" + img.blobs[0].str()) == 0);
    auto clean = run_cli({"--root", root.string(), "verify", r.ref}, dir.path());
    CHECK(clean.status == 0);
    CHECK(clean.out.ends_with("): no damage found\n"));

    auto unknown = run_cli({"--root", root.string(), "verify", r.proxy.host() + "/test/other:v1"}, dir.path());
    CHECK(unknown.status == 1);
    CHECK(unknown.err == "ocistore: no image named " + r.proxy.host() + "/test/other:v1 in the cache " + root.string() + "\n");
}
