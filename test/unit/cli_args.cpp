#include <ocistore/cli_args.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

using namespace ocistore;
using namespace ocistore::cli;

namespace {

parse_result parse(std::initializer_list<char const*> args)
{
    std::vector<std::string> v(args.begin(), args.end());
    return parse_args(std::span<std::string const>(v));
}

/// Parses, requires a usage error, returns its message.
std::string usage_error(std::initializer_list<char const*> args)
{
    auto r = parse(args);
    REQUIRE(r.exit_code == exit_usage);
    CHECK_FALSE(r.error.empty());
    CHECK(r.error.find('\n') == std::string::npos);
    return r.error;
}

cli_options ok(std::initializer_list<char const*> args)
{
    auto r = parse(args);
    INFO(r.error);
    REQUIRE(r.exit_code == exit_ok);
    CHECK(r.error.empty());
    return r.options;
}

} // namespace

TEST_CASE("cli args: pull with defaults")
{
    auto o = ok({"pull", "alpine"});
    CHECK(o.command == command_kind::pull);
    CHECK_FALSE(o.root);
    CHECK_FALSE(o.platform);
    CHECK(o.insecure_registries.empty());
    CHECK(o.ca_file.empty());
    CHECK(o.mirrors.empty());
    CHECK(o.artifacts == artifact_choice::erofs);
    CHECK(o.policy == pull_policy::if_missing);
    CHECK_FALSE(o.force);
    CHECK(o.jobs == 0);
    CHECK(o.progress == progress_choice::automatic);
    CHECK_FALSE(o.json);
    REQUIRE(o.image);
    CHECK_FALSE(o.image->layout);
    CHECK(o.image->text == "alpine");
    CHECK(o.image->reference.str() == "docker.io/library/alpine:latest");
    CHECK(o.image->record_name == "docker.io/library/alpine:latest");
}

TEST_CASE("cli args: every pull option, separate and with '='")
{
    auto o = ok({"--root", "/var/cache/x", "pull", "--platform", "linux/arm64", "--insecure-registry", "127.0.0.1:5000",
                 "--insecure-registry=localhost", "--ca-file", "/etc/ca.pem", "--mirror", "docker.io=https://m.example",
                 "--mirror=docker.io=http://127.0.0.1:6000/prefix", "--artifacts", "rootfs", "--policy", "always",
                 "--force", "--verify-diff-ids", "--jobs", "7", "--progress", "plain", "--json", "127.0.0.1:5000/team/app:v2"});
    CHECK(o.command == command_kind::pull);
    CHECK(o.verify_diff_ids);
    CHECK_FALSE(ok({"pull", "x"}).verify_diff_ids);
    REQUIRE(o.root);
    CHECK(*o.root == std::filesystem::path("/var/cache/x"));
    REQUIRE(o.platform);
    CHECK(o.platform->to_string() == "linux/arm64/v8");
    CHECK(o.insecure_registries == std::vector<std::string>{"127.0.0.1:5000", "localhost"});
    CHECK(o.ca_file == "/etc/ca.pem");
    REQUIRE(o.mirrors.size() == 2);
    CHECK(o.mirrors[0] == mirror_option{"docker.io", "https://m.example"});
    CHECK(o.mirrors[1] == mirror_option{"docker.io", "http://127.0.0.1:6000/prefix"});
    CHECK(o.artifacts == artifact_choice::rootfs);
    CHECK(o.policy == pull_policy::always);
    CHECK(o.force);
    CHECK(o.jobs == 7);
    CHECK(o.progress == progress_choice::plain);
    CHECK(o.json);
    REQUIRE(o.image);
    CHECK(o.image->record_name == "127.0.0.1:5000/team/app:v2");

    SUBCASE("the remaining values of the enumerated options")
    {
        CHECK(ok({"pull", "--artifacts=none", "a"}).artifacts == artifact_choice::none);
        CHECK(ok({"pull", "--artifacts", "erofs", "a"}).artifacts == artifact_choice::erofs);
        CHECK(ok({"pull", "--policy=never", "a"}).policy == pull_policy::never);
        CHECK(ok({"pull", "--policy", "if-missing", "a"}).policy == pull_policy::if_missing);
        CHECK(ok({"pull", "--progress=none", "a"}).progress == progress_choice::none);
        CHECK(ok({"pull", "--progress", "auto", "a"}).progress == progress_choice::automatic);
        CHECK(ok({"pull", "--jobs=1", "a"}).jobs == 1);
        CHECK(ok({"pull", "--jobs", "16", "a"}).jobs == 16);
        CHECK(ok({"pull", "--platform=linux/arm/v6", "a"}).platform->to_string() == "linux/arm/v6");
        CHECK(ok({"pull", "--insecure-registry", "[::1]:5000", "a"}).insecure_registries.front() == "[::1]:5000");
    }
    SUBCASE("a later single-valued option overrides an earlier one")
    {
        auto l = ok({"pull", "--artifacts", "none", "--jobs", "2", "--artifacts", "rootfs", "--jobs=3", "a"});
        CHECK(l.artifacts == artifact_choice::rootfs);
        CHECK(l.jobs == 3);
    }
    SUBCASE("options after the reference, --root after the command")
    {
        auto l = ok({"pull", "a", "--json", "--root", "r"});
        CHECK(l.json);
        CHECK(*l.root == std::filesystem::path("r"));
        CHECK(l.image->record_name == "docker.io/library/a:latest");
    }
    SUBCASE("-- ends the options")
    {
        auto l = ok({"pull", "--json", "--", "busybox:1"});
        CHECK(l.image->record_name == "docker.io/library/busybox:1");
    }
}

TEST_CASE("cli args: the other commands")
{
    auto i = ok({"images"});
    CHECK(i.command == command_kind::images);
    CHECK_FALSE(i.json);
    CHECK(ok({"--root=/c", "images", "--json"}).json);

    auto in = ok({"inspect", "--json", "--platform", "linux/amd64", "ghcr.io/o/r@sha256:"
                                                                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"});
    CHECK(in.command == command_kind::inspect);
    CHECK(in.json);
    CHECK(in.platform->to_string() == "linux/amd64");
    CHECK(in.image->record_name ==
          "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");

    auto rm = ok({"rm", "alpine:3.20"});
    CHECK(rm.command == command_kind::rm);
    CHECK(rm.image->record_name == "docker.io/library/alpine:3.20");
    CHECK(ok({"rm", "--platform", "linux/amd64", "alpine"}).platform);

    auto pr = ok({"prune"});
    CHECK(pr.command == command_kind::prune);
    CHECK_FALSE(pr.dry_run);
    CHECK(ok({"prune", "--dry-run"}).dry_run);

    auto ex = ok({"export-rootfs", "--insecure-registry", "localhost:5000", "--progress", "none", "localhost:5000/a:1", "out/dir"});
    CHECK(ex.command == command_kind::export_rootfs);
    CHECK(ex.image->record_name == "localhost:5000/a:1");
    CHECK(ex.export_dir == std::filesystem::path("out/dir"));
    CHECK(ex.insecure_registries == std::vector<std::string>{"localhost:5000"});
    CHECK(ex.progress == progress_choice::none);
}

TEST_CASE("cli args: help and version")
{
    auto h = ok({"--help"});
    CHECK(h.command == command_kind::help);
    CHECK(h.help_topic == command_kind::none);
    CHECK(ok({"-h"}).command == command_kind::help);
    auto ph = ok({"pull", "--help"}); // no REF needed
    CHECK(ph.command == command_kind::help);
    CHECK(ph.help_topic == command_kind::pull);
    CHECK(ok({"--help", "export-rootfs"}).help_topic == command_kind::export_rootfs);
    CHECK(ok({"--root", "x", "prune", "-h"}).help_topic == command_kind::prune);
    CHECK(ok({"--version"}).command == command_kind::version);
    CHECK(ok({"--help", "--version"}).command == command_kind::help);

    CHECK(version_text() == std::string("ocistore ") + OCISTORE_VERSION_STRING + "\n");
    auto overview = help_text();
    for (auto cmd : {"pull REF", "images", "inspect REF", "rm REF", "prune", "export-rootfs REF DIR", "--root DIR",
                     "oci:PATH[:NAME]", "0 success, 1 failure", "2 usage error", "130/143"})
        CHECK_MESSAGE(overview.find(cmd) != std::string::npos, cmd);
    CHECK(help_text(command_kind::pull).starts_with("usage: ocistore [--root DIR] pull [OPTIONS] REF\n"));
    for (auto opt : {"--platform", "--insecure-registry", "--ca-file", "--mirror", "--artifacts erofs|rootfs|none",
                     "--policy if-missing|always|never", "--force", "--jobs N", "--progress auto|plain|none", "--json"})
        CHECK_MESSAGE(help_text(command_kind::pull).find(opt) != std::string::npos, opt);
    CHECK(help_text(command_kind::images).starts_with("usage: ocistore [--root DIR] images [--json]\n"));
    CHECK(help_text(command_kind::inspect).starts_with("usage: ocistore [--root DIR] inspect [--json]"));
    CHECK(help_text(command_kind::rm).starts_with("usage: ocistore [--root DIR] rm"));
    CHECK(help_text(command_kind::prune).starts_with("usage: ocistore [--root DIR] prune [--dry-run]\n"));
    CHECK(help_text(command_kind::export_rootfs).starts_with("usage: ocistore [--root DIR] export-rootfs [OPTIONS] REF DIR\n"));
    CHECK(help_text(command_kind::export_rootfs).find("downloaded first") != std::string::npos);
}

TEST_CASE("cli args: oci:PATH[:NAME] targets")
{
    auto const cwd = std::filesystem::current_path();
    SUBCASE("absolute path with a tag")
    {
        auto o = ok({"pull", "oci:/srv/layouts/app:v1"});
        REQUIRE(o.image);
        CHECK(o.image->layout);
        CHECK(o.image->layout_path == std::filesystem::path("/srv/layouts/app"));
        CHECK(o.image->layout_name == "v1");
        CHECK(o.image->record_name == "oci:/srv/layouts/app:v1");
        CHECK(o.image->reference.str() == "docker.io/oci-layout/import:v1");
        CHECK(o.image->reference.tag() == "v1");
    }
    SUBCASE("relative path, made absolute and normal; a trailing '/' goes")
    {
        auto o = ok({"pull", "oci:some/./dir/"});
        CHECK(o.image->layout_path == (cwd / "some/dir").lexically_normal());
        CHECK(o.image->record_name == "oci:" + (cwd / "some/dir").lexically_normal().string());
        CHECK(o.image->layout_name.empty());
        CHECK_FALSE(o.image->reference.tag()); // no tag: the layout's only entry may be used
        CHECK(o.image->reference.repository() == "oci-layout/import");
    }
    SUBCASE("a NAME that is a full reference is used as such")
    {
        auto o = ok({"inspect", "oci:/l:example.com/app:v1"});
        CHECK(o.image->layout_path == std::filesystem::path("/l"));
        CHECK(o.image->layout_name == "example.com/app:v1");
        CHECK(o.image->reference.str() == "example.com/app:v1");
        CHECK(o.image->record_name == "oci:/l:example.com/app:v1");
    }
    SUBCASE("errors")
    {
        CHECK(usage_error({"pull", "oci:"}).find("needs a layout directory") != std::string::npos);
        CHECK(usage_error({"pull", "oci::v1"}).find("needs a layout directory") != std::string::npos);
        CHECK(usage_error({"pull", "oci:/x:"}).find("name after the layout path is empty") != std::string::npos);
        auto e = usage_error({"pull", "oci:/x:Bad Name"});
        CHECK(e.find("NAME \"Bad Name\" is neither a tag nor an image reference") != std::string::npos);
    }
    SUBCASE("parse_image_target reports error::invalid_reference")
    {
        error_code ec;
        std::string why;
        auto t = parse_image_target("docker.io/UPPER/case", ec, &why);
        CHECK(ec == error::invalid_reference);
        CHECK(why.find("invalid image reference \"docker.io/UPPER/case\"") != std::string::npos);
        CHECK(t.record_name.empty());
        t = parse_image_target("alpine", ec, &why);
        CHECK_FALSE(ec);
        CHECK(t.record_name == "docker.io/library/alpine:latest");
    }
}

TEST_CASE("cli args: usage errors name the problem")
{
    CHECK(usage_error({}) == "no command given");
    CHECK(usage_error({"--root", "/x"}) == "no command given");
    CHECK(usage_error({"frobnicate"}) == "unknown command \"frobnicate\"");
    CHECK(usage_error({"pull", "--frob", "a"}) == "unknown option --frob");
    CHECK(usage_error({"pull", "-x", "a"}) == "unknown option -x");
    CHECK(usage_error({"pull", "--dry-run", "a"}) == "unknown option --dry-run for pull");
    CHECK(usage_error({"images", "--force"}) == "unknown option --force for images");
    CHECK(usage_error({"rm", "--json", "a"}) == "unknown option --json for rm");
    CHECK(usage_error({"prune", "--platform", "linux/amd64"}) == "unknown option --platform for prune");
    CHECK(usage_error({"--json", "images"}) == "--json needs a command before it");
    CHECK(usage_error({"pull", "a", "--jobs"}) == "--jobs needs a value");
    CHECK(usage_error({"--root"}) == "--root needs a value");
    CHECK(usage_error({"--root=", "images"}) == "--root needs a directory");
    CHECK(usage_error({"pull", "--force=yes", "a"}) == "--force takes no value");
    CHECK(usage_error({"images", "--version"}) == "--version is not an option of images");

    CHECK(usage_error({"pull"}) == "pull needs an image reference");
    CHECK(usage_error({"inspect"}) == "inspect needs an image reference");
    CHECK(usage_error({"rm"}) == "rm needs an image reference");
    CHECK(usage_error({"pull", "a", "b"}) == "unexpected argument \"b\" for pull");
    CHECK(usage_error({"images", "extra"}) == "unexpected argument \"extra\" for images");
    CHECK(usage_error({"export-rootfs"}) == "export-rootfs needs REF and DIR");
    CHECK(usage_error({"export-rootfs", "a"}) == "export-rootfs needs a target DIR after REF");
    CHECK(usage_error({"export-rootfs", "a", "b", "c"}) == "unexpected argument \"c\" for export-rootfs");
    CHECK(usage_error({"export-rootfs", "a", ""}) == "export-rootfs needs a non-empty DIR");

    auto ref = usage_error({"pull", "Alpine:latest!"});
    CHECK(ref.starts_with("invalid image reference \"Alpine:latest!\": "));

    auto plat = usage_error({"pull", "--platform", "linux", "a"});
    CHECK(plat.starts_with("invalid --platform \"linux\": "));
    CHECK(plat.size() > std::string("invalid --platform \"linux\": ").size()); // the parser's reason follows
    CHECK(usage_error({"pull", "--platform", "linux/am d64", "a"}).starts_with("invalid --platform"));

    CHECK(usage_error({"pull", "--jobs", "0", "a"}) == "--jobs must be a number from 1 to 16, not \"0\"");
    CHECK(usage_error({"pull", "--jobs", "17", "a"}) == "--jobs must be a number from 1 to 16, not \"17\"");
    CHECK(usage_error({"pull", "--jobs", "4x", "a"}) == "--jobs must be a number from 1 to 16, not \"4x\"");
    CHECK(usage_error({"pull", "--jobs=-1", "a"}) == "--jobs must be a number from 1 to 16, not \"-1\"");
    CHECK(usage_error({"pull", "--artifacts", "squashfs", "a"}) ==
          "--artifacts must be erofs, rootfs or none, not \"squashfs\"");
    CHECK(usage_error({"pull", "--policy", "sometimes", "a"}) ==
          "--policy must be if-missing, always or never, not \"sometimes\"");
    CHECK(usage_error({"pull", "--progress", "bars", "a"}) == "--progress must be auto, plain or none, not \"bars\"");
    CHECK(usage_error({"pull", "--ca-file", "", "a"}) == "--ca-file needs a file");

    CHECK(usage_error({"pull", "--insecure-registry", "http://h:5000", "a"}) ==
          "--insecure-registry \"http://h:5000\" must be HOST[:PORT], without a scheme");
    CHECK(usage_error({"pull", "--insecure-registry", "h/v2", "a"}) ==
          "--insecure-registry \"h/v2\" must be HOST[:PORT]; it contains '/'");
    CHECK(usage_error({"pull", "--insecure-registry", "h:70000", "a"}) ==
          "--insecure-registry \"h:70000\" has an invalid port \"70000\"");
    CHECK(usage_error({"pull", "--insecure-registry", "h:", "a"}) == "--insecure-registry \"h:\" has an empty port");
    CHECK(usage_error({"pull", "--insecure-registry", "", "a"}) == "--insecure-registry \"\" is empty");
    CHECK(usage_error({"pull", "--insecure-registry", "[::1", "a"}) == "--insecure-registry \"[::1\" has an unclosed '['");

    CHECK(usage_error({"pull", "--mirror", "docker.io", "a"}) == "--mirror \"docker.io\" must be REGISTRY=URL");
    CHECK(usage_error({"pull", "--mirror", "docker.io=ftp://m", "a"}) ==
          "--mirror \"docker.io=ftp://m\": URL must start with https:// or http://");
    CHECK(usage_error({"pull", "--mirror", "=https://m", "a"}) == "--mirror \"=https://m\": REGISTRY is empty");
    CHECK(usage_error({"pull", "--mirror", "docker.io=https://", "a"}) == "--mirror \"docker.io=https://\": URL is malformed");
}

TEST_CASE("cli args: error texts and exit codes")
{
    CHECK(usage_error_text("no command given") == "ocistore: no command given\nsee ocistore --help\n");
    CHECK(failure_text("cannot fetch x: not found") == "ocistore: cannot fetch x: not found\n");
    CHECK(failure_text("two\nlines\r") == "ocistore: two lines \n"); // always exactly one line

    CHECK(exit_ok == 0);
    CHECK(exit_failure == 1);
    CHECK(exit_usage == 2);
    CHECK(parse({"pull"}).exit_code == 2);
    CHECK(parse({"pull", "a"}).exit_code == 0);
    CHECK(exit_code_for(error_code{}) == 0);
    CHECK(exit_code_for(make_error_code(error::not_found)) == 1);
    CHECK(exit_code_for(make_error_code(error::digest_mismatch), 2) == 1); // a signal does not turn failures into 130
    CHECK(exit_code_for(make_error_code(error::cancelled)) == 1);          // cancelled without a signal
    CHECK(exit_code_for(make_error_code(error::cancelled), 2) == 130);     // SIGINT
    CHECK(exit_code_for(make_error_code(error::cancelled), 15) == 143);    // SIGTERM
    CHECK(exit_code_for(std::make_error_code(std::errc::no_space_on_device)) == 1);

    CHECK(command_name(command_kind::export_rootfs) == "export-rootfs");
    CHECK(artifact_name(artifact_choice::none) == "none");
    CHECK(artifact_name(artifact_choice::erofs) == "erofs");
}

TEST_CASE("cli args: verify, with and without REF")
{
    auto all = ok({"verify"});
    CHECK(all.command == command_kind::verify);
    CHECK_FALSE(all.image);
    CHECK_FALSE(all.check_only);
    CHECK_FALSE(all.json);
    auto one = ok({"verify", "--check-only", "--json", "alpine:3.20", "--root", "/c"});
    CHECK(one.check_only);
    CHECK(one.json);
    REQUIRE(one.image);
    CHECK(one.image->record_name == "docker.io/library/alpine:3.20");
    CHECK(one.root == std::filesystem::path("/c"));
    CHECK(ok({"verify", "oci:/srv/app:v1"}).image->record_name == "oci:/srv/app:v1");
    CHECK(ok({"verify", "-h"}).help_topic == command_kind::verify);

    CHECK(usage_error({"verify", "a", "b"}) == "unexpected argument \"b\" for verify");
    CHECK(usage_error({"verify", "--dry-run"}) == "unknown option --dry-run for verify");
    CHECK(usage_error({"verify", "--platform", "linux/amd64"}) == "unknown option --platform for verify");
    CHECK(usage_error({"pull", "--check-only", "a"}) == "unknown option --check-only for pull");
    CHECK(usage_error({"verify", "--check-only=yes"}) == "--check-only takes no value");
    CHECK(usage_error({"verify", "UPPER:tag"}).starts_with("invalid image reference \"UPPER:tag\""));

    CHECK(help_text().find("verify [REF]") != std::string::npos);
    CHECK(help_text(command_kind::verify).starts_with("usage: ocistore [--root DIR] verify [--check-only] [--json] [REF]\n"));
    for (auto opt : {"--check-only", "--json", "tmp/evicted/"})
        CHECK_MESSAGE(help_text(command_kind::verify).find(opt) != std::string::npos, opt);
}
