#include <ocistore/transport/oci_layout_transport.hpp>

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>
#include <ocistore/media_types.hpp>

#include <support/oci_layout_writer.hpp>
#include <support/temp_dir.hpp>

#include <support/read_to_end.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace ocistore;
using ocistore_test::oci_layout_writer;
using ocistore_test::temp_dir;
using ocistore_test::write_test_file;
namespace fs = std::filesystem;

namespace {

image_reference make_ref(std::string_view text) { return image_reference::parse(text); }

std::string drain(oci_layout_transport::blob_reader& r, error_code& ec, std::size_t chunk = 4096)
{
    return ocistore_test::read_to_end(r, ec, chunk);
}

/// A layout with a layer, a config, a manifest tagged "v1" and an index tagged "latest".
struct layout {
    temp_dir dir{"oci-layout-transport"};
    oci_layout_writer w{dir / "layout"};
    descriptor layer = w.add_blob(std::string(5000, 'L'), std::string(media_types::oci_layer_tar));
    descriptor config = w.add_config({layer.digest});
    descriptor manifest = w.add_manifest(config, {layer});
    descriptor index = w.add_index({with_platform(manifest)});
    oci_layout_transport t{dir / "layout"};

    layout()
    {
        w.tag(manifest, "v1");
        w.tag(index, "latest");
    }
    static descriptor with_platform(descriptor d)
    {
        d.platform = platform{"linux", "amd64", "", "", {}};
        return d;
    }
    fs::path path(std::string_view rel) const { return w.path() / rel; }
};

/// Runs check() and returns (code, reason).
std::pair<error_code, std::string> checked(oci_layout_transport const& t)
{
    error_code ec;
    std::string why;
    t.check(ec, &why);
    return {ec, why};
}

} // namespace

TEST_CASE("a valid layout: check, read_index, fetch and resolve by tag and by digest")
{
    layout l;
    auto [ec0, why0] = checked(l.t);
    CHECK_FALSE(ec0);
    image_index const idx = l.t.read_index();
    REQUIRE(idx.manifests.size() == 2);
    CHECK(idx.manifests[0].annotations.at("org.opencontainers.image.ref.name") == "v1");

    error_code ec = make_error_code(error::io_error);
    fetched_manifest m = l.t.fetch_manifest(make_ref("whatever/name:v1"), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.bytes == l.w.bytes_of(l.manifest.digest));
    CHECK(m.media_type == media_types::oci_manifest);
    CHECK(m.server_digest == l.manifest.digest);

    ec = make_error_code(error::io_error);
    resolved_manifest r = l.t.resolve(make_ref("x:latest"), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.manifest_digest == l.index.digest);
    CHECK(r.media_type == media_types::oci_index);
    CHECK(r.size == static_cast<std::uint64_t>(l.index.size));

    // A digest need not be in index.json; its media type comes from its JSON.
    l.w.entries().clear();
    l.w.write_index();
    m = l.t.fetch_manifest(make_ref("x@" + l.index.digest.str()), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.media_type == media_types::oci_index);
    CHECK(m.server_digest == l.index.digest);
    r = l.t.resolve(make_ref("x@" + l.manifest.digest.str()), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.media_type == media_types::oci_manifest);
    CHECK(r.size == static_cast<std::uint64_t>(l.manifest.size));
}

TEST_CASE("the layout is re-read on every call: later tags are seen")
{
    layout l;
    error_code ec;
    (void)l.t.fetch_manifest(make_ref("x:v2"), {}, ec);
    CHECK(ec == error::not_found);
    l.w.tag(l.manifest, "v2");
    CHECK(l.t.fetch_manifest(make_ref("x:v2"), {}, ec).server_digest == l.manifest.digest);
    CHECK_FALSE(ec);
}

TEST_CASE("names: tags, full references, first match, unknown names listed")
{
    layout l;
    l.w.tag(l.manifest, "example.com/team/app:2.0");
    l.w.tag(l.index, "app:3.0"); // familiar: docker.io/library/app:3.0
    l.w.tag(l.index, "v1");      // a duplicate: the first entry named v1 wins

    error_code ec;
    CHECK(l.t.find_entry(make_ref("anything:v1"), ec).digest == l.manifest.digest);
    CHECK(l.t.find_entry(make_ref("example.com/team/app:2.0"), ec).digest == l.manifest.digest);
    CHECK_FALSE(ec);
    CHECK(l.t.find_entry(make_ref("docker.io/library/app:3.0"), ec).digest == l.index.digest);
    CHECK_FALSE(ec);
    CHECK(l.t.find_entry(make_ref("app:3.0"), ec).digest == l.index.digest);
    CHECK_FALSE(ec);

    std::string why;
    (void)l.t.find_entry(make_ref("other.example.com/team/app:2.0"), ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "index.json has no entry named \"2.0\" (names: \"v1\", \"latest\", \"example.com/team/app:2.0\", "
                 "\"app:3.0\", \"v1\")");
    (void)l.t.fetch_manifest(make_ref("x:2.0"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("index.json has no entry named \"2.0\"") == 0);

    CHECK_THROWS_WITH_AS(l.t.find_entry(make_ref("x:nope")), doctest::Contains("no entry named \"nope\""),
                         system_error);
}

TEST_CASE("names: a reference without a tag uses latest, else the only entry, an explicit tag never falls back")
{
    temp_dir dir("oci-layout-single");
    oci_layout_writer w(dir / "l");
    descriptor const layer = w.add_blob("x", std::string(media_types::oci_layer_tar));
    descriptor const a = w.add_manifest(w.add_config({layer.digest}), {layer});
    oci_layout_transport t(dir / "l");
    error_code ec;
    std::string why;

    (void)t.find_entry(make_ref("app"), ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "index.json has no entry named \"latest\" (it has 0 unnamed entries)");

    w.add_index_entry(a); // unnamed
    CHECK(t.find_entry(make_ref("app"), ec).digest == a.digest);
    CHECK_FALSE(ec);
    CHECK(t.fetch_manifest(make_ref("app"), {}, ec).server_digest == a.digest);
    CHECK_FALSE(ec);
    (void)t.find_entry(make_ref("app:latest"), ec);
    CHECK(ec == error::not_found);

    descriptor const b = w.add_manifest(w.add_config({}), {});
    w.tag(b, "other");
    (void)t.find_entry(make_ref("app"), ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "index.json has no entry named \"latest\" (names: \"other\"); give a tag to choose one of its 2 "
                 "entries");
    w.tag(b, "latest");
    CHECK(t.find_entry(make_ref("app"), ec).digest == b.digest);
}

TEST_CASE("media types: a tag serves its descriptor's type, a digest sniffs, a non-manifest blob is not_found")
{
    layout l;
    descriptor d = l.manifest;
    d.media_type = std::string(media_types::docker_manifest);
    l.w.tag(d, "as-docker");
    error_code ec;
    std::string why;
    CHECK(l.t.fetch_manifest(make_ref("x:as-docker"), {}, ec).media_type == media_types::docker_manifest);

    descriptor const bare_index = l.w.add_blob(R"({"schemaVersion":2,"manifests":[]})", "application/json");
    descriptor const bare_manifest =
        l.w.add_blob(R"({"schemaVersion":2,"config":{},"layers":[]})", "application/json");
    CHECK(l.t.fetch_manifest(make_ref("x@" + bare_index.digest.str()), {}, ec).media_type == media_types::oci_index);
    CHECK(l.t.resolve(make_ref("x@" + bare_manifest.digest.str()), {}, ec).media_type == media_types::oci_manifest);
    CHECK_FALSE(ec);

    for (descriptor const& blob : {l.layer, l.config}) {
        (void)l.t.fetch_manifest(make_ref("x@" + blob.digest.str()), {}, ec, &why);
        CHECK(ec == error::not_found);
        CHECK(why == "blob " + blob.digest.str() + " is not a manifest or index");
    }

    std::string_view const manifests_only[] = {media_types::oci_manifest};
    (void)l.t.fetch_manifest(make_ref("x:latest"), manifests_only, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "manifest " + l.index.digest.str() + " is application/vnd.oci.image.index.v1+json, which the Accept "
                                                      "list does not include (application/vnd.oci.image.manifest.v1+json)");
    (void)l.t.resolve(make_ref("x@" + l.index.digest.str()), manifests_only, ec);
    CHECK(ec == error::not_found);
}

TEST_CASE("blobs: offsets, size, the end, beyond it, sha512, and a file that shrinks")
{
    layout l;
    error_code ec;
    std::string const whole = l.w.bytes_of(l.layer.digest);
    auto r = l.t.open_blob(make_ref("x"), l.layer.digest, 1234, ec);
    REQUIRE_FALSE(ec);
    CHECK(r.offset() == 1234);
    CHECK(r.size() == 5000u);
    CHECK(drain(r, ec, 999) == whole.substr(1234));
    CHECK_FALSE(ec);

    std::string why;
    (void)l.t.open_blob(make_ref("x"), l.layer.digest, 5001, ec, &why);
    CHECK(ec == error::invalid_argument);
    CHECK(why == "offset 5001 is beyond the end of blob " + l.layer.digest.str() + " (5000 bytes)");

    digest const absent = digest_of<sha256_hasher>(std::string_view("absent"));
    (void)l.t.open_blob(make_ref("x"), absent, 0, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "blob " + absent.str() + " is not in the layout (" + l.w.path().string() + "/blobs/sha256/" +
                     std::string(absent.encoded()) + ")");

    std::string const text = "sha512 content";
    digest const d512 = digest_of<sha512_hasher>(text);
    (void)l.t.open_blob(make_ref("x"), d512, 0, ec);
    CHECK(ec == error::not_found); // no blobs/sha512 directory
    fs::create_directories(l.path("blobs/sha512"));
    write_test_file(l.path("blobs/sha512/" + std::string(d512.encoded())), text);
    auto r512 = l.t.open_blob(make_ref("x"), d512, 7, ec);
    REQUIRE_FALSE(ec);
    CHECK(drain(r512, ec) == "content");

    auto shrinking = l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec);
    REQUIRE_FALSE(ec);
    fs::resize_file(l.w.blob_path(l.layer.digest), 100);
    CHECK(drain(shrinking, ec, 4096).size() == 100);
    CHECK(ec == error::truncated);

    oci_layout_transport::blob_reader none;
    std::byte buf[4];
    CHECK(none.read_some(buf, ec) == 0);
    CHECK(ec == error::invalid_argument);
    CHECK_FALSE(none.size());
}

TEST_CASE("blob readers move and close their descriptor, nothing leaks")
{
    layout l;
    auto count_fds = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] auto const& e : fs::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    std::size_t const before = count_fds();
    {
        error_code ec;
        auto a = l.t.open_blob(make_ref("x"), l.layer.digest, 10, ec);
        auto b = std::move(a);
        oci_layout_transport::blob_reader c;
        c = std::move(b);
        CHECK(c.offset() == 10);
        CHECK(drain(c, ec).size() == 4990);
        for (int i = 0; i < 20; ++i) {
            (void)l.t.fetch_manifest(make_ref("x:v1"), {}, ec);
            (void)l.t.resolve(make_ref("x:nope"), {}, ec);
            (void)l.t.open_blob(make_ref("x"), l.layer.digest, 99999, ec);
        }
        CHECK(count_fds() == before + 1);
    }
    CHECK(count_fds() == before);
}

TEST_CASE("not a layout: a missing root, a file, no oci-layout, no index.json")
{
    temp_dir dir("oci-layout-bad");
    error_code ec;
    std::string why;
    oci_layout_transport missing(dir / "absent");
    (void)missing.fetch_manifest(make_ref("x:v1"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "OCI layout " + (dir / "absent").string() + " does not exist");

    write_test_file(dir / "file", "x");
    std::tie(ec, why) = checked(oci_layout_transport(dir / "file"));
    CHECK(ec == error::invalid_argument);
    CHECK(why == "OCI layout " + (dir / "file").string() + " is not a directory");

    fs::create_directories(dir / "empty");
    oci_layout_transport empty(dir / "empty");
    std::tie(ec, why) = checked(empty);
    CHECK(ec == error::invalid_argument);
    CHECK(why == (dir / "empty").string() + " is not an OCI image layout: it has no oci-layout file");
    (void)empty.open_blob(make_ref("x"), digest_of<sha256_hasher>(std::string_view("x")), 0, ec);
    CHECK(ec == error::invalid_argument);
    CHECK_THROWS_WITH_AS(empty.check(), doctest::Contains("it has no oci-layout file"), system_error);

    write_test_file(dir / "empty/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    std::tie(ec, why) = checked(empty);
    CHECK(ec == error::invalid_argument);
    CHECK(why == (dir / "empty").string() + " is not an OCI image layout: it has no index.json");
}

TEST_CASE("oci-layout: malformed, incomplete, or another version")
{
    layout l;
    struct bad_case {
        std::string text;
        error code;
        std::string reason;
    };
    std::string const shown = l.path("oci-layout").string();
    bad_case const cases[] = {
        {"{", error::invalid_json, shown + " is not valid JSON"},
        {"[]", error::invalid_argument, shown + ": expected an object, got an array"},
        {"{}", error::invalid_argument, shown + ": required member imageLayoutVersion is missing"},
        {R"({"imageLayoutVersion":1})", error::invalid_argument,
         shown + ": imageLayoutVersion: expected a string, got a number"},
        {R"({"imageLayoutVersion":"2.0.0"})", error::unsupported_schema,
         shown + ": imageLayoutVersion \"2.0.0\" is not supported (only \"1.0.0\")"},
        {std::string(70000, ' '), error::too_large, shown + " is 70000 bytes; the limit is 65536 bytes"},
    };
    for (auto const& c : cases) {
        CAPTURE(c.text.substr(0, 40));
        write_test_file(l.path("oci-layout"), c.text);
        auto [ec, why] = checked(l.t);
        CHECK(ec == c.code);
        CHECK_MESSAGE(why.find(c.reason) == 0, why);
        error_code ec2;
        (void)l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec2);
        CHECK(ec2 == c.code); // every operation checks it
    }
}

TEST_CASE("index.json: too large, malformed JSON, invalid index")
{
    layout l;
    std::string const shown = l.path("index.json").string();
    {
        write_test_file(l.path("index.json"), "");
        fs::resize_file(l.path("index.json"), max_manifest_size + 1); // sparse: cheap
        auto [ec, why] = checked(l.t);
        CHECK(ec == error::too_large);
        CHECK(why == shown + " is 4194305 bytes; the limit is 4194304 bytes");
        error_code ec2;
        (void)l.t.fetch_manifest(make_ref("x:v1"), {}, ec2);
        CHECK(ec2 == error::too_large);
    }
    {
        write_test_file(l.path("index.json"), R"({"schemaVersion":2,"manifests":[)");
        auto [ec, why] = checked(l.t);
        CHECK(ec == error::invalid_json);
        CHECK_MESSAGE(why.find(shown + ": ") == 0, why);
        CHECK_MESSAGE(why.find("not valid JSON") != std::string::npos, why);
    }
    {
        write_test_file(l.path("index.json"), R"({"schemaVersion":2,"manifests":[{"mediaType":"a/b","size":1}]})");
        auto [ec, why] = checked(l.t);
        CHECK(ec == error::invalid_manifest);
        CHECK_MESSAGE(why.find(shown + ": manifests[0].digest") == 0, why);
    }
    {
        write_test_file(l.path("index.json"), R"({"schemaVersion":2,"mediaType":")" +
                                                  std::string(media_types::oci_manifest) +
                                                  R"(","config":{},"layers":[]})");
        auto [ec, why] = checked(l.t);
        CHECK(ec == condition::invalid_input);
        CHECK_MESSAGE(why.find(shown + ": ") == 0, why);
    }
    // A digest reference needs no index.json.
    fs::remove(l.path("index.json"));
    error_code ec;
    CHECK(l.t.fetch_manifest(make_ref("x@" + l.manifest.digest.str()), {}, ec).bytes ==
          l.w.bytes_of(l.manifest.digest));
    CHECK_FALSE(ec);
}

TEST_CASE("a manifest over max_manifest_size is too_large, a listed manifest whose blob is gone is not_found")
{
    layout l;
    descriptor big = l.manifest;
    big.digest = digest_of<sha256_hasher>(std::string_view("pretend"));
    write_test_file(l.w.blob_path(big.digest), "");
    fs::resize_file(l.w.blob_path(big.digest), max_manifest_size + 1);
    l.w.tag(big, "big");
    error_code ec;
    std::string why;
    (void)l.t.fetch_manifest(make_ref("x:big"), {}, ec, &why);
    CHECK(ec == error::too_large);
    CHECK(why == "manifest " + big.digest.str() + " is 4194305 bytes, more than the limit of 4194304");
    CHECK(l.t.resolve(make_ref("x:big"), {}, ec).size == max_manifest_size + 1); // from the index: no read
    CHECK_FALSE(ec);

    fs::remove(l.w.blob_path(l.manifest.digest));
    (void)l.t.fetch_manifest(make_ref("x:v1"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("blob " + l.manifest.digest.str() + " is not in the layout") == 0);
    (void)l.t.resolve(make_ref("x:v1"), {}, ec);
    CHECK(ec == error::not_found);
}

TEST_CASE("hostile layouts: symbolic links below the root and non-regular blobs are unsafe_path")
{
    layout l;
    temp_dir outside("oci-layout-outside");
    write_test_file(outside / "secret", "secret");
    error_code ec;
    std::string why;
    std::string const hex(l.layer.digest.encoded());

    SUBCASE("a symlinked blob")
    {
        fs::remove(l.w.blob_path(l.layer.digest));
        fs::create_symlink(outside / "secret", l.w.blob_path(l.layer.digest));
        (void)l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why == l.w.blob_path(l.layer.digest).string() +
                         " is a symbolic link; a layout is read without following links");
    }
    SUBCASE("a symlinked blobs/sha256 directory")
    {
        fs::rename(l.path("blobs/sha256"), outside / "sha256");
        fs::create_directory_symlink(outside / "sha256", l.path("blobs/sha256"));
        (void)l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find(l.path("blobs/sha256").string() + " is a symbolic link") == 0);
        (void)l.t.fetch_manifest(make_ref("x:v1"), {}, ec);
        CHECK(ec == error::unsafe_path);
    }
    SUBCASE("a symlinked blobs directory")
    {
        fs::rename(l.path("blobs"), outside / "blobs");
        fs::create_directory_symlink(outside / "blobs", l.path("blobs"));
        (void)l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find(l.path("blobs").string() + " is a symbolic link") == 0);
    }
    SUBCASE("symlinked index.json and oci-layout")
    {
        fs::rename(l.path("index.json"), outside / "index.json");
        fs::create_symlink(outside / "index.json", l.path("index.json"));
        std::tie(ec, why) = checked(l.t);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find(l.path("index.json").string() + " is a symbolic link") == 0);
        fs::rename(l.path("oci-layout"), outside / "oci-layout");
        fs::create_symlink(outside / "oci-layout", l.path("oci-layout"));
        std::tie(ec, why) = checked(l.t);
        CHECK(ec == error::unsafe_path);
        CHECK(why.find(l.path("oci-layout").string() + " is a symbolic link") == 0);
    }
    SUBCASE("a FIFO or a directory as a blob fails at once instead of blocking")
    {
        fs::remove(l.w.blob_path(l.layer.digest));
        REQUIRE(::mkfifo(l.w.blob_path(l.layer.digest).c_str(), 0600) == 0);
        (void)l.t.open_blob(make_ref("x"), l.layer.digest, 0, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why == l.w.blob_path(l.layer.digest).string() + " is not a regular file");
        fs::remove(l.w.blob_path(l.manifest.digest));
        fs::create_directory(l.w.blob_path(l.manifest.digest));
        (void)l.t.fetch_manifest(make_ref("x:v1"), {}, ec, &why);
        CHECK(ec == error::unsafe_path);
        CHECK(why == l.w.blob_path(l.manifest.digest).string() + " is not a regular file");
    }
    SUBCASE("the root itself may be a symbolic link")
    {
        fs::create_directory_symlink(l.w.path(), outside / "link");
        oci_layout_transport via_link(outside / "link");
        auto r = via_link.open_blob(make_ref("x"), l.layer.digest, 0, ec);
        REQUIRE_FALSE(ec);
        CHECK(drain(r, ec).size() == 5000);
    }
}
