#include <ocistore/image_config.hpp>

#include <doctest/doctest.h>

#include <support/failure.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using namespace ocistore;

namespace {

// Shaped after a Docker-built nginx config: nulls, legacy members, empty_layer history.
std::string const docker_config_json = R"({
  "architecture": "amd64",
  "config": {
    "Hostname": "",
    "User": "nginx",
    "ExposedPorts": { "80/tcp": {}, "443/tcp": {} },
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "NGINX_VERSION=1.27.0"
    ],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Image": "sha256:a2361294d71c77be06b55862d11a53fac7c94fdc395a7bd57e07c979937d87a7",
    "Volumes": { "/var/cache/nginx": {}, "/data": {} },
    "WorkingDir": "/srv",
    "Entrypoint": ["/docker-entrypoint.sh"],
    "OnBuild": null,
    "Labels": { "maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>" },
    "StopSignal": "SIGQUIT"
  },
  "container": "5b2b6a8c4e2d",
  "created": "2024-07-23T03:40:50.123456789Z",
  "docker_version": "20.10.23",
  "history": [
    { "created": "2024-07-22T22:26:43Z", "created_by": "/bin/sh -c #(nop) ADD file:0 in / " },
    { "created": "2024-07-22T22:26:43Z", "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer": true },
    { "created": "2024-07-23T03:40:49Z", "created_by": "RUN /bin/sh -c set -x && apt-get update # buildkit",
      "comment": "buildkit.dockerfile.v0", "author": "someone" }
  ],
  "os": "linux",
  "rootfs": {
    "type": "layers",
    "diff_ids": [
      "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b",
      "sha256:00c3fa0b14bf8fbaeb7645cf1b52d6af81e64e31abd07db58a613c671319412f"
    ]
  }
})";

// An OCI config with nulls where Docker writes them and platform details.
std::string const oci_config_json = R"({
  "created": "2015-10-31T22:22:56.015925234Z",
  "author": "Alyssa P. Hacker <alyspdev@example.com>",
  "architecture": "arm64",
  "variant": "v8",
  "os": "linux",
  "os.version": "6.1",
  "os.features": ["feature-a"],
  "config": {
    "User": "",
    "Env": null,
    "Entrypoint": null,
    "Cmd": null,
    "Volumes": null,
    "ExposedPorts": null,
    "Labels": null
  },
  "rootfs": { "diff_ids": [], "type": "layers" },
  "history": null
})";

std::string const minimal = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
std::string const hex_a(64, 'a');

using ocistore_test::failure;

failure parse_fail(std::string_view bytes)
{
    failure f;
    auto doc = parse_image_config(bytes, f.ec, &f.why);
    CHECK(doc.raw.empty());
    return f;
}

using ocistore_test::edited;

} // namespace

TEST_CASE("a Docker-built image config parses into the model")
{
    auto doc = parse_image_config(docker_config_json);
    image_config const& c = doc.image;
    CHECK(c.architecture == "amd64");
    CHECK(c.os == "linux");
    CHECK(c.created == "2024-07-23T03:40:50.123456789Z");
    CHECK(c.platform().to_string() == "linux/amd64");
    CHECK(c.config.user == "nginx");
    CHECK(c.config.exposed_ports == std::vector<std::string>{"80/tcp", "443/tcp"});
    REQUIRE(c.config.env.size() == 2);
    CHECK(c.config.env[1] == "NGINX_VERSION=1.27.0");
    CHECK(c.config.cmd == std::vector<std::string>{"nginx", "-g", "daemon off;"});
    CHECK(c.config.entrypoint == std::vector<std::string>{"/docker-entrypoint.sh"});
    CHECK(c.config.volumes == std::vector<std::string>{"/var/cache/nginx", "/data"});
    CHECK(c.config.working_dir == "/srv");
    CHECK(c.config.labels.at("maintainer") == "NGINX Docker Maintainers <docker-maint@nginx.com>");
    CHECK(c.config.stop_signal == "SIGQUIT");
    CHECK(c.rootfs.type == "layers");
    REQUIRE(c.rootfs.diff_ids.size() == 2);
    CHECK(c.rootfs.diff_ids[0].str() == "sha256:c59f6c4064ae36a959d9b78ae795b3822dc0847f3d7d18d932baff9d07fe3e3b");
    REQUIRE(c.history.size() == 3);
    CHECK_FALSE(c.history[0].empty_layer);
    CHECK(c.history[1].empty_layer);
    CHECK(c.history[1].created_by == "/bin/sh -c #(nop)  CMD [\"bash\"]");
    CHECK(c.history[2].comment == "buildkit.dockerfile.v0");
    CHECK(c.history[2].author == "someone");
    CHECK(doc.raw == docker_config_json);
}

TEST_CASE("an OCI config with nulls and platform details parses")
{
    auto doc = parse_image_config(oci_config_json);
    image_config const& c = doc.image;
    CHECK(c.author == "Alyssa P. Hacker <alyspdev@example.com>");
    CHECK(c.variant == "v8");
    CHECK(c.os_version == "6.1");
    CHECK(c.os_features == std::vector<std::string>{"feature-a"});
    CHECK(c.platform().to_string() == "linux(6.1)/arm64/v8");
    CHECK(c.config == container_config{});
    CHECK(c.rootfs.diff_ids.empty());
    CHECK(c.history.empty());

    auto m = parse_image_config(minimal);
    CHECK(m.image.architecture == "amd64");
    CHECK(m.image.config == container_config{});
}

TEST_CASE("raw bytes are kept exactly")
{
    std::string const padded = "\n\n" + minimal + "  \n";
    auto doc = parse_image_config(padded);
    CHECK(doc.raw == padded);
}

TEST_CASE("invalid configs name the member path")
{
    struct row {
        std::string doc;
        error expected;
        std::string why;
    };
    row const rows[] = {
        {"[]", error::invalid_config, "expected an object, got an array"},
        {R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})", error::invalid_config,
         "architecture: required field missing"},
        {R"({"architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}})", error::invalid_config,
         "os: required field missing"},
        {R"({"architecture":"amd64","os":"linux"})", error::invalid_config, "rootfs: required field missing"},
        {R"({"architecture":"amd64","os":"linux","rootfs":null})", error::invalid_config, "rootfs: required field is null"},
        {R"({"architecture":"amd64","os":"linux","rootfs":[]})", error::invalid_config,
         "rootfs: expected an object, got an array"},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"diff_ids":[]}})", error::invalid_config,
         "rootfs.type: required field missing"},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"squashfs","diff_ids":[]}})", error::invalid_config,
         "rootfs.type: must be \"layers\", got \"squashfs\""},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})", error::invalid_config,
         "rootfs.diff_ids: required field missing"},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":"sha256:x"}})", error::invalid_config,
         "rootfs.diff_ids: expected an array, got a string"},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" + hex_a +
             R"(","sha256:123"]}})",
         error::invalid_config, "rootfs.diff_ids[1]: invalid digest \"sha256:123\""},
        {R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["blake3:)" + hex_a + R"("]}})",
         error::unsupported_digest_algorithm, "rootfs.diff_ids[0]: invalid digest \"blake3:"},
        {R"({"architecture":5,"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})", error::invalid_config,
         "architecture: expected a string, got a number"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"Env":"PATH=/bin"},"architecture")"), error::invalid_config,
         "config.Env: expected an array, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"Env":["A=1","B=2",3]},"architecture")"),
         error::invalid_config, "config.Env[2]: expected a string, got a number"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"ExposedPorts":["80/tcp"]},"architecture")"),
         error::invalid_config, "config.ExposedPorts: expected an object, got an array"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"Volumes":"/data"},"architecture")"), error::invalid_config,
         "config.Volumes: expected an object, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"Labels":{"a":1}},"architecture")"), error::invalid_config,
         "config.Labels.a: expected a string, got a number"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"Cmd":"nginx"},"architecture")"), error::invalid_config,
         "config.Cmd: expected an array, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"config":{"User":0},"architecture")"), error::invalid_config,
         "config.User: expected a string, got a number"},
        {edited(minimal, "{\"architecture\"", R"({"config":[],"architecture")"), error::invalid_config,
         "config: expected an object, got an array"},
        {edited(minimal, "{\"architecture\"", R"({"history":{},"architecture")"), error::invalid_config,
         "history: expected an array, got an object"},
        {edited(minimal, "{\"architecture\"", R"({"history":[{},"x"],"architecture")"), error::invalid_config,
         "history[1]: expected an object, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"history":[{},{"empty_layer":"true"}],"architecture")"),
         error::invalid_config, "history[1].empty_layer: expected a boolean, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"os.features":"x","architecture")"), error::invalid_config,
         "os.features: expected an array, got a string"},
        {edited(minimal, "{\"architecture\"", R"({"created":20240101,"architecture")"), error::invalid_config,
         "created: expected a string, got a number"},
    };
    for (auto const& r : rows) {
        CAPTURE(r.doc);
        auto f = parse_fail(r.doc);
        CHECK(f.ec == r.expected);
        CHECK(f.why.find(r.why) != std::string::npos);
    }
}

TEST_CASE("configs over 4 MiB are rejected before parsing, malformed JSON is invalid_json")
{
    CHECK(max_config_size == 4u * 1024 * 1024);
    std::string at_limit = minimal;
    at_limit.append(max_config_size - at_limit.size(), '\n');
    CHECK(parse_image_config(at_limit).raw.size() == max_config_size);

    auto f = parse_fail(std::string(max_config_size + 1, 'x'));
    CHECK(f.ec == error::too_large);
    CHECK(f.why == "image config is 4194305 bytes; the limit is 4194304 bytes");

    auto g = parse_fail(R"({"architecture": "amd64", "os": linux})");
    CHECK(g.ec == error::invalid_json);
    CHECK(g.why.starts_with("image config is not valid JSON: "));
    CHECK(g.why.find("offset 32 (line 1, column 33)") != std::string::npos);

    auto h = parse_fail("{\"architecture\": \"amd64\",\n\"os\": \"linux\",\n");
    CHECK(h.ec == error::invalid_json);
    CHECK(h.why.find("line 3") != std::string::npos);
}

TEST_CASE("image configs round-trip through serialisation")
{
    for (std::string const* src : {&docker_config_json, &oci_config_json, &minimal}) {
        auto doc = parse_image_config(*src);
        std::string const out = boost::json::serialize(boost::json::value_from(doc.image));
        auto again = parse_image_config(out);
        CHECK(again.image == doc.image);
        CHECK(again.raw == out);
    }
    auto jv = boost::json::value_from(parse_image_config(docker_config_json).image);
    CHECK(jv.at("config").at("ExposedPorts").as_object().size() == 2);
    CHECK(jv.at("config").at("ExposedPorts").at("80/tcp").as_object().empty());
    CHECK(jv.at("history").at(1).at("empty_layer").as_bool());
    CHECK_FALSE(jv.at("history").at(0).as_object().contains("empty_layer"));
    CHECK(boost::json::serialize(boost::json::value_from(parse_image_config(minimal).image)) == minimal);
}

TEST_CASE("throwing overloads carry the code and the reason")
{
    try {
        (void)parse_image_config(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[1]}})");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_config);
        CHECK(std::string(e.what()).find("rootfs.diff_ids[0]: expected a string, got a number") != std::string::npos);
    }
    try {
        (void)boost::json::value_to<image_config>(boost::json::parse(R"({"architecture":"amd64"})"));
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_config);
        CHECK(std::string(e.what()).find("os: required field missing") != std::string::npos);
    }
    error_code ec = make_error_code(error::timeout);
    (void)parse_image_config(minimal, ec);
    CHECK_FALSE(ec);
}
