#include <ocistore/reference.hpp>

#include <doctest/doctest.h>

#include <support/failure.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

using namespace ocistore;

namespace {

std::string const hex64(64, 'f');
std::string const sha256_ff = "sha256:" + hex64;
std::string const sha512_ff = "sha512:" + std::string(128, 'f');
std::string const busybox_digest = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
std::string const image_id = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

std::string repeat(std::string_view s, std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

using ocistore_test::failure;

failure parse_fail(std::string_view s)
{
    failure f;
    image_reference r = image_reference::parse(s, f.ec, &f.why);
    CHECK(r.empty());
    return f;
}

struct valid_row {
    std::string input;
    std::string registry;
    std::string repository;
    std::optional<std::string> tag;
    std::string digest; // empty: none
    std::string str;
    std::string familiar;
};

// Valid references: the distribution/reference test vectors (reference_test.go, normalize_test.go)
// as seen through ParseNormalizedNamed, plus our own edge cases.
std::vector<valid_row> valid_rows()
{
    std::string const dl = "docker.io/library/";
    return {
        // Docker Hub normalisation
        {"ubuntu", "docker.io", "library/ubuntu", {}, "", dl + "ubuntu:latest", "ubuntu:latest"},
        {"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "", dl + "ubuntu:22.04", "ubuntu:22.04"},
        {"library/ubuntu", "docker.io", "library/ubuntu", {}, "", dl + "ubuntu:latest", "ubuntu:latest"},
        {"docker.io/ubuntu", "docker.io", "library/ubuntu", {}, "", dl + "ubuntu:latest", "ubuntu:latest"},
        {"docker.io/library/ubuntu:latest", "docker.io", "library/ubuntu", "latest", "", dl + "ubuntu:latest", "ubuntu:latest"},
        {"docker.io/library/ubuntu@" + sha256_ff, "docker.io", "library/ubuntu", {}, sha256_ff,
         dl + "ubuntu@" + sha256_ff, "ubuntu@" + sha256_ff},
        {"index.docker.io/foo/bar", "docker.io", "foo/bar", {}, "", "docker.io/foo/bar:latest", "foo/bar:latest"},
        {"index.docker.io/debian", "docker.io", "library/debian", {}, "", dl + "debian:latest", "debian:latest"},
        {"index.docker.io/library/debian", "docker.io", "library/debian", {}, "", dl + "debian:latest", "debian:latest"},
        {"index.docker.io/docker/docker", "docker.io", "docker/docker", {}, "", "docker.io/docker/docker:latest", "docker/docker:latest"},
        {"docker/docker", "docker.io", "docker/docker", {}, "", "docker.io/docker/docker:latest", "docker/docker:latest"},
        {"fooo/bar", "docker.io", "fooo/bar", {}, "", "docker.io/fooo/bar:latest", "fooo/bar:latest"},
        {"nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu", {}, "", "docker.io/nonlibrary/ubuntu:latest", "nonlibrary/ubuntu:latest"},
        {"other/library", "docker.io", "other/library", {}, "", "docker.io/other/library:latest", "other/library:latest"},
        {"docker.io/library/foo/bar", "docker.io", "library/foo/bar", {}, "", dl + "foo/bar:latest", "library/foo/bar:latest"},
        {"store/foo/bar", "docker.io", "store/foo/bar", {}, "", "docker.io/store/foo/bar:latest", "store/foo/bar:latest"},
        {"ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", {}, "", dl + "ubuntu-12.04-base:latest", "ubuntu-12.04-base:latest"},
        {"busybox:latest@" + busybox_digest, "docker.io", "library/busybox", "latest", busybox_digest,
         dl + "busybox:latest@" + busybox_digest, "busybox:latest@" + busybox_digest},
        {"redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "docker.io", "library/redis", {},
         "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
         dl + "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
         "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"},
        {"docker.io/" + image_id, "docker.io", "library/" + image_id, {}, "", dl + image_id + ":latest", image_id + ":latest"},
        {image_id.substr(0, 63), "docker.io", "library/" + image_id.substr(0, 63), {}, "", dl + image_id.substr(0, 63) + ":latest",
         image_id.substr(0, 63) + ":latest"},
        {image_id + ":tag", "docker.io", "library/" + image_id, "tag", "", dl + image_id + ":tag", image_id + ":tag"},
        {"thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io",
         "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", {}, "",
         dl + "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
         "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"},
        // a bare first component is a path unless it looks like a host, and never on its own
        {"test_com", "docker.io", "library/test_com", {}, "", dl + "test_com:latest", "test_com:latest"},
        {"test_com/foo", "docker.io", "test_com/foo", {}, "", "docker.io/test_com/foo:latest", "test_com/foo:latest"},
        {"test.com:tag", "docker.io", "library/test.com", "tag", "", dl + "test.com:tag", "test.com:tag"},
        {"test.com:5000", "docker.io", "library/test.com", "5000", "", dl + "test.com:5000", "test.com:5000"},
        {"foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", "", dl + "foo_bar.com:8080", "foo_bar.com:8080"},
        {"foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", "", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"},
        {"192.168.1.1", "docker.io", "library/192.168.1.1", {}, "", dl + "192.168.1.1:latest", "192.168.1.1:latest"},
        {"192.168.1.1:5000", "docker.io", "library/192.168.1.1", "5000", "", dl + "192.168.1.1:5000", "192.168.1.1:5000"},
        {"localhost", "docker.io", "library/localhost", {}, "", dl + "localhost:latest", "localhost:latest"},
        {"localhost:5000", "docker.io", "library/localhost", "5000", "", dl + "localhost:5000", "localhost:5000"},
        {"docker.io", "docker.io", "library/docker.io", {}, "", dl + "docker.io:latest", "docker.io:latest"},
        {"docker:5000", "docker.io", "library/docker", "5000", "", dl + "docker:5000", "docker:5000"},
        // registries
        {"localhost/foo", "localhost", "foo", {}, "", "localhost/foo:latest", "localhost/foo:latest"},
        {"localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", "v1", "", "localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"},
        {"test.com/repo:tag", "test.com", "repo", "tag", "", "test.com/repo:tag", "test.com/repo:tag"},
        {"test:5000/repo", "test:5000", "repo", {}, "", "test:5000/repo:latest", "test:5000/repo:latest"},
        {"test:5000/repo:tag", "test:5000", "repo", "tag", "", "test:5000/repo:tag", "test:5000/repo:tag"},
        {"test:5000/repo@" + sha256_ff, "test:5000", "repo", {}, sha256_ff, "test:5000/repo@" + sha256_ff, "test:5000/repo@" + sha256_ff},
        {"test:5000/repo:tag@" + sha256_ff, "test:5000", "repo", "tag", sha256_ff, "test:5000/repo:tag@" + sha256_ff,
         "test:5000/repo:tag@" + sha256_ff},
        {"test-com:8080/foo", "test-com:8080", "foo", {}, "", "test-com:8080/foo:latest", "test-com:8080/foo:latest"},
        {"test.com:8080/foo", "test.com:8080", "foo", {}, "", "test.com:8080/foo:latest", "test.com:8080/foo:latest"},
        {"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "",
         "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"},
        {"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", "",
         "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com"},
        {"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", "", "xn--n3h.com/myimage:xn--n3h.com",
         "xn--n3h.com/myimage:xn--n3h.com"},
        {"xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", {}, "", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080/foo:latest"},
        {"xn--7o8h.com/myimage:xn--7o8h.com@" + sha512_ff, "xn--7o8h.com", "myimage", "xn--7o8h.com", sha512_ff,
         "xn--7o8h.com/myimage:xn--7o8h.com@" + sha512_ff, "xn--7o8h.com/myimage:xn--7o8h.com@" + sha512_ff},
        {"192.168.1.1/repo", "192.168.1.1", "repo", {}, "", "192.168.1.1/repo:latest", "192.168.1.1/repo:latest"},
        {"192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", "", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050"},
        {"127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", {}, "", "127.0.0.1:5000/library/debian:latest",
         "127.0.0.1:5000/library/debian:latest"},
        {"127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", {}, "", "127.0.0.1:5000/debian:latest", "127.0.0.1:5000/debian:latest"},
        {"192.168.0.1:8/debian", "192.168.0.1:8", "debian", {}, "", "192.168.0.1:8/debian:latest", "192.168.0.1:8/debian:latest"},
        {"ghcr.io/owner/repo:v1.2.3", "ghcr.io", "owner/repo", "v1.2.3", "", "ghcr.io/owner/repo:v1.2.3", "ghcr.io/owner/repo:v1.2.3"},
        {"registry-1.docker.io/library/ubuntu", "registry-1.docker.io", "library/ubuntu", {}, "",
         "registry-1.docker.io/library/ubuntu:latest", "registry-1.docker.io/library/ubuntu:latest"},
        {"Example.COM/ns/x", "Example.COM", "ns/x", {}, "", "Example.COM/ns/x:latest", "Example.COM/ns/x:latest"},
        {"a/b", "docker.io", "a/b", {}, "", "docker.io/a/b:latest", "a/b:latest"},
        // the familiar form keeps "docker.io/" where dropping it would turn a path into a host
        {"docker.io/v1.2/x", "docker.io", "v1.2/x", {}, "", "docker.io/v1.2/x:latest", "docker.io/v1.2/x:latest"},
        {"docker.io/localhost/x", "docker.io", "localhost/x", {}, "", "docker.io/localhost/x:latest", "docker.io/localhost/x:latest"},
        {"docker.io/library/a.b", "docker.io", "library/a.b", {}, "", "docker.io/library/a.b:latest", "a.b:latest"},
        // IPv6
        {"[2001:db8::1]/repo", "[2001:db8::1]", "repo", {}, "", "[2001:db8::1]/repo:latest", "[2001:db8::1]/repo:latest"},
        {"[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", "", "[2001:db8:1:2:3:4:5:6]/repo:tag",
         "[2001:db8:1:2:3:4:5:6]/repo:tag"},
        {"[2001:db8::1]:5000/repo@" + sha256_ff, "[2001:db8::1]:5000", "repo", {}, sha256_ff, "[2001:db8::1]:5000/repo@" + sha256_ff,
         "[2001:db8::1]:5000/repo@" + sha256_ff},
        {"[2001:db8::1]:5000/repo:tag@" + sha256_ff, "[2001:db8::1]:5000", "repo", "tag", sha256_ff,
         "[2001:db8::1]:5000/repo:tag@" + sha256_ff, "[2001:db8::1]:5000/repo:tag@" + sha256_ff},
        {"[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", {}, "", "[2001:db8::]:5000/repo:latest", "[2001:db8::]:5000/repo:latest"},
        {"[::1]:5000/repo", "[::1]:5000", "repo", {}, "", "[::1]:5000/repo:latest", "[::1]:5000/repo:latest"},
        {"[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", {}, "", "[fc00::1]:5000/docker/docker:latest",
         "[fc00::1]:5000/docker/docker:latest"},
        {"[FC00:1:2:3:4:5:6:7]:5000/library/debian", "[FC00:1:2:3:4:5:6:7]:5000", "library/debian", {}, "",
         "[FC00:1:2:3:4:5:6:7]:5000/library/debian:latest", "[FC00:1:2:3:4:5:6:7]:5000/library/debian:latest"},
        // an uppercase first component is a registry host
        {"Docker/docker", "Docker", "docker", {}, "", "Docker/docker:latest", "Docker/docker:latest"},
        {"DOCKER/docker", "DOCKER", "docker", {}, "", "DOCKER/docker:latest", "DOCKER/docker:latest"},
        {"Foo/bar", "Foo", "bar", {}, "", "Foo/bar:latest", "Foo/bar:latest"},
        // path separators
        {"docker-rules/docker", "docker.io", "docker-rules/docker", {}, "", "docker.io/docker-rules/docker:latest", "docker-rules/docker:latest"},
        {"docker---rules/docker", "docker.io", "docker---rules/docker", {}, "", "docker.io/docker---rules/docker:latest",
         "docker---rules/docker:latest"},
        {"d/docker", "docker.io", "d/docker", {}, "", "docker.io/d/docker:latest", "d/docker:latest"},
        {"jess/t", "docker.io", "jess/t", {}, "", "docker.io/jess/t:latest", "jess/t:latest"},
        {"dock__er/docker", "docker.io", "dock__er/docker", {}, "", "docker.io/dock__er/docker:latest", "dock__er/docker:latest"},
        {"a__b", "docker.io", "library/a__b", {}, "", dl + "a__b:latest", "a__b:latest"},
        {"a_b.c-d--e", "docker.io", "library/a_b.c-d--e", {}, "", dl + "a_b.c-d--e:latest", "a_b.c-d--e:latest"},
        // tags
        {"lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", "", dl + "lowercase:Uppercase", "lowercase:Uppercase"},
        {"foo:_x", "docker.io", "library/foo", "_x", "", dl + "foo:_x", "foo:_x"},
        {"foo:v1.0-rc_1", "docker.io", "library/foo", "v1.0-rc_1", "", dl + "foo:v1.0-rc_1", "foo:v1.0-rc_1"},
        {"foo:" + std::string(128, 'T'), "docker.io", "library/foo", std::string(128, 'T'), "", dl + "foo:" + std::string(128, 'T'),
         "foo:" + std::string(128, 'T')},
        // length: 255 characters of repository path is the maximum
        {repeat("a/", 127) + "a", "docker.io", repeat("a/", 127) + "a", {}, "", "docker.io/" + repeat("a/", 127) + "a:latest",
         repeat("a/", 127) + "a:latest"},
        {repeat("a/", 127) + "a:tag-puts-this-over-max", "docker.io", repeat("a/", 127) + "a", "tag-puts-this-over-max", "",
         "docker.io/" + repeat("a/", 127) + "a:tag-puts-this-over-max", repeat("a/", 127) + "a:tag-puts-this-over-max"},
        {std::string(247, 'a'), "docker.io", "library/" + std::string(247, 'a'), {}, "", dl + std::string(247, 'a') + ":latest",
         std::string(247, 'a') + ":latest"},
        {"registry.example.org:5000/" + std::string(255, 'b'), "registry.example.org:5000", std::string(255, 'b'), {}, "",
         "registry.example.org:5000/" + std::string(255, 'b') + ":latest", "registry.example.org:5000/" + std::string(255, 'b') + ":latest"},
    };
}

struct invalid_row {
    std::string input;
    std::string mentions;
};

std::vector<invalid_row> invalid_rows()
{
    return {
        // empty or missing parts
        {"", "reference is empty"},
        {":justtag", "missing repository name before ':' at position 0"},
        {":", "missing repository name before ':'"},
        {"@" + sha256_ff, "missing repository name before '@' at position 0"},
        {"@", "missing repository name before '@'"},
        {"foo:", "empty tag after ':' at position 3"},
        {"foo@", "invalid digest after '@' at position 3: digest is empty"},
        {"/", "empty path component at position 0"},
        {"/docker", "empty path component at position 0"},
        {"docker/", "empty path component at position 7 (trailing '/')"},
        {"docker///docker", "empty path component at position 7"},
        {"docker.io/docker///docker", "empty path component at position 17"},
        {"localhost/", "empty path component at position 10 (trailing '/')"},
        // digests
        {"repo@sha256:" + std::string(34, 'f'), "invalid digest after '@' at position 4: digest \"sha256:"},
        {"repo@sha256:" + std::string(34, 'f'), "sha256 needs 64 hex digits, got 34"},
        {"validname@invaliddigest:" + hex64, "\"invaliddigest\" is not supported"},
        {"repo@md5:d41d8cd98f00b204e9800998ecf8427e", "\"md5\" is not supported"},
        {"repo@sha256:" + std::string(63, 'f') + "F", "is not a lowercase hex digit"},
        {"repo@SHA256:" + hex64, "invalid digest after '@' at position 4"},
        {"repo@" + sha256_ff + "@" + sha256_ff, "second '@' at position 76: a reference has at most one digest"},
        {"repo@@" + sha256_ff, "second '@' at position 5"},
        // uppercase in the repository path
        {"Uppercase:tag", "uppercase letter 'U' at position 0 in repository path: repository names must be lowercase"},
        {"Ubuntu:22.04", "uppercase letter 'U' at position 0"},
        {"fooBar", "uppercase letter 'B' at position 3 in repository path"},
        {"docker/Docker", "uppercase letter 'D' at position 7"},
        {"docker.io/docker/Docker", "uppercase letter 'D' at position 17"},
        {"test:5000/Uppercase/lowercase:tag", "uppercase letter 'U' at position 10"},
        {"Docker/Docker", "uppercase letter 'D' at position 7"},
        // bad path characters and separators
        {"aa/asdf$$^/aa", "'$' at position 7 is not allowed in a repository path"},
        {"-foo", "path component starts with separator '-' at position 0: components must start with [a-z0-9]"},
        {"-docker", "starts with separator '-' at position 0"},
        {"-docker/docker", "starts with separator '-' at position 0"},
        {"docker-/docker", "path component ends with separator '-' at position 6: components must end with [a-z0-9]"},
        {"-docker-/docker", "starts with separator '-' at position 0"},
        {"____/____", "starts with separator '_' at position 0"},
        {"_docker/_docker", "starts with separator '_' at position 0"},
        {"foo/_bar", "starts with separator '_' at position 4"},
        {"a..b", "invalid separator \"..\" at position 1 in repository path"},
        {"docker/dock..er", "invalid separator \"..\" at position 11"},
        {"docker/dock_.er", "invalid separator \"_.\" at position 11"},
        {"docker/dock-.er", "invalid separator \"-.\" at position 11"},
        {"dock..er/docker", "empty component in registry host name at position 5"}, // '.': a registry host
        {"dock_.er/docker", "'_' at position 4 is not allowed in a registry host name"},
        {"dock-.er/docker", "registry host name component ends with '-' at position 4"},
        {"a___b", "invalid separator \"___\" at position 1"},
        {"a.-b", "invalid separator \".-\" at position 1"},
        {"foo.", "ends with separator '.' at position 3"},
        {"foo:bar:baz", "':' at position 3 is not allowed in a repository path"},
        {"foo/bar:ta/g", "':' at position 7 is not allowed in a repository path"},
        {"https://github.com/docker/docker", "empty port after ':' at position 5"},
        {image_id, "a 64-digit hexadecimal string is an image ID, not a repository name"},
        // registry hosts
        {"-docker.io/docker/docker", "registry host name component starts with '-' at position 0"},
        {"docker-.io/x", "registry host name component ends with '-' at position 6"},
        {"example.com./foo", "empty component in registry host name at position 12"},
        {"a..b.com/foo", "empty component in registry host name at position 2"},
        {".com/foo", "empty component in registry host name at position 0"},
        {"exa_mple.com/foo", "'_' at position 3 is not allowed in a registry host name"},
        {"foo_bar.com/x", "'_' at position 3 is not allowed in a registry host name"},
        {"Foo_bar/x", "taken as a registry host because it contains an uppercase letter"},
        {":5000/foo", "missing registry host before ':' at position 0"},
        {"localhost:/foo", "empty port after ':' at position 9"},
        {"localhost:50a0/foo", "'a' at position 12 is not allowed in a registry port (only digits)"},
        {"fc00::1:5000/debian", "':' at position 5 is not allowed in a registry port"},
        {"fc00::1:5000/debian", "an IPv6 address must be enclosed in '[' and ']'"},
        {"[fc00::1]", "'[' at position 0 starts an IPv6 registry address, which must be followed by '/'"},
        {"[fc00::1]:5000", "must be followed by '/' and a repository path"},
        {"[2001:db8::1]:tag", "must be followed by '/' and a repository path"},
        {"[fe80::1%eth0]:5000/debian", "'%' at position 8 is not allowed in a bracketed IPv6 registry address"},
        {"[fe80::1%@invalidzone]:5000/repo", "IPv6 registry address"},
        {"[2001:db8:3:4::192.0.2.33]:5000/debian", "'.' at position 18 is not allowed in a bracketed IPv6"},
        {"[::1/foo", "'[' at position 0 has no matching ']'"},
        {"[]:5000/foo", "empty IPv6 address \"[]\" at position 0"},
        {"[]/foo", "'[' at position 0 is not allowed in a repository path"},
        {"[::1]x/foo", "'x' at position 5 follows an IPv6 address"},
        // tags
        {"foo:" + std::string(129, 'T'), "tag longer than 128 characters (129)"},
        {"foo:-bar", "tag starts with '-' at position 4: the first character must be [A-Za-z0-9_]"},
        {"foo:.bar", "tag starts with '.' at position 4"},
        {"foo:ba$r", "'$' at position 6 is not allowed in a tag (only [A-Za-z0-9_.-])"},
        // lengths
        {repeat("a/", 127) + "aa", "repository name longer than 255 characters (256)"},
        {repeat("a/", 128) + "a:tag", "repository name longer than 255 characters (257)"},
        {std::string(248, 'a'), "longer than 255 characters (256 including the implied \"library/\" prefix)"},
        {"registry.example.org:5000/" + std::string(256, 'b'), "repository name longer than 255 characters (256)"},
        {"this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_"
         "greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_"
         "because_its_lenth_is_greater_than_255/docker",
         "repository name longer than 255 characters"},
        // bytes that never belong in a reference
        {"ubunt\xc3\xbc", "byte 0xc3 at position 5 is not allowed in a repository path"},
        {std::string("ubu\0ntu", 7), "byte 0x00 at position 3"},
        {std::string("ubuntu:22\0", 10), "byte 0x00 at position 9 is not allowed in a tag"},
        {"ubuntu latest", "byte 0x20 at position 6 is not allowed in a repository path"},
        {" ubuntu", "byte 0x20 at position 0"},
        {"ubuntu\n", "byte 0x0a at position 6"},
        {"ubuntu:22.04 ", "byte 0x20 at position 12 is not allowed in a tag"},
        {"ubuntu\t:22.04", "byte 0x09 at position 6"},
        {"ex\xc3\xa4mple.com/foo", "byte 0xc3 at position 2 is not allowed in a registry host name"},
    };
}

} // namespace

TEST_CASE("valid references parse, normalise and format")
{
    for (auto const& row : valid_rows()) {
        CAPTURE(row.input);
        error_code ec;
        std::string why;
        auto r = image_reference::parse(row.input, ec, &why);
        REQUIRE_MESSAGE(!ec, why);
        CHECK(why.empty());
        CHECK_FALSE(r.empty());
        CHECK(r.registry() == row.registry);
        CHECK(r.repository() == row.repository);
        CHECK(r.tag() == row.tag);
        if (row.digest.empty()) {
            CHECK_FALSE(r.digest().has_value());
        } else {
            REQUIRE(r.digest().has_value());
            CHECK(r.digest()->str() == row.digest);
        }
        CHECK(r.name() == row.registry + "/" + row.repository);
        CHECK(r.str() == row.str);
        CHECK(r.familiar() == row.familiar);
        // both textual forms parse back to the same canonical form
        CHECK(image_reference::parse(r.str()).str() == r.str());
        CHECK(image_reference::parse(r.familiar()).str() == r.str());
        CHECK(image_reference::parse(r.familiar()) == image_reference::parse(r.str()));
        CHECK(image_reference::parse(row.input) == r);
    }
}

TEST_CASE("malformed references are rejected with a precise reason")
{
    for (auto const& row : invalid_rows()) {
        CAPTURE(row.input);
        auto f = parse_fail(row.input);
        CHECK(f.ec == error::invalid_reference);
        CHECK(f.ec == condition::invalid_input);
        CHECK_MESSAGE(f.why.find(row.mentions) != std::string::npos, f.why);
        CHECK_MESSAGE(f.why.starts_with("reference \""), f.why);
        // the reason is only a convenience: ec alone must be set the same way
        error_code ec2;
        CHECK(image_reference::parse(row.input, ec2).empty());
        CHECK(ec2 == error::invalid_reference);
    }
}

TEST_CASE("the reason quotes the input safely")
{
    auto f = parse_fail(std::string("a\"b\\c\x01", 6));
    CHECK_MESSAGE(f.why.starts_with("reference \"a\\\"b\\\\c\\x01\": "), f.why);
    auto g = parse_fail(std::string(300, 'A'));
    CHECK_MESSAGE(g.why.starts_with("reference \"" + std::string(200, 'A') + "...\": "), g.why);
}

TEST_CASE("the throwing overload carries the code and the reason")
{
    CHECK_THROWS_WITH_AS(image_reference::parse("Ubuntu:22.04"),
                         doctest::Contains("uppercase letter 'U' at position 0 in repository path"), system_error);
    try {
        (void)image_reference::parse("repo@md5:d41d8cd98f00b204e9800998ecf8427e");
        FAIL("no exception");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_reference);
        CHECK(std::string(e.what()).find("\"md5\" is not supported") != std::string::npos);
    }
    CHECK_NOTHROW((void)image_reference::parse("ubuntu"));
}

TEST_CASE("the error_code overload clears a stale error on success")
{
    error_code ec = make_error_code(error::timeout);
    std::string why = "stale";
    auto r = image_reference::parse("ubuntu", ec, &why);
    CHECK_FALSE(ec);
    CHECK_FALSE(r.empty());
}

TEST_CASE("accessors: api host, effective tag, fetch reference")
{
    auto hub = image_reference::parse("ubuntu");
    CHECK(hub.api_host() == "registry-1.docker.io");
    CHECK_FALSE(hub.tag().has_value());
    CHECK(hub.tag_or_default() == "latest");
    CHECK(hub.reference_for_fetch() == "latest");

    auto legacy = image_reference::parse("index.docker.io/foo/bar:1");
    CHECK(legacy.registry() == "docker.io");
    CHECK(legacy.api_host() == "registry-1.docker.io");
    CHECK(legacy.reference_for_fetch() == "1");

    auto local = image_reference::parse("localhost:5000/foo:v2");
    CHECK(local.api_host() == "localhost:5000");
    CHECK(local.tag_or_default() == "v2");
    CHECK(local.reference_for_fetch() == "v2");

    CHECK(image_reference::parse("[::1]:5000/repo").api_host() == "[::1]:5000");
    CHECK(image_reference::parse("registry-1.docker.io/library/x").api_host() == "registry-1.docker.io");

    // name:tag@digest: the digest wins for fetching, the tag is kept
    auto both = image_reference::parse("busybox:1.36@" + busybox_digest);
    CHECK(both.tag() == std::optional<std::string>("1.36"));
    CHECK(both.tag_or_default() == "1.36");
    CHECK(both.reference_for_fetch() == busybox_digest);
    CHECK(both.str() == "docker.io/library/busybox:1.36@" + busybox_digest);

    auto pinned = image_reference::parse("busybox@" + busybox_digest);
    CHECK(pinned.tag_or_default() == "latest");
    CHECK(pinned.reference_for_fetch() == busybox_digest);
    CHECK(pinned.str() == "docker.io/library/busybox@" + busybox_digest);

    CHECK(image_reference::default_registry == "docker.io");
    CHECK(image_reference::default_api_host == "registry-1.docker.io");
    CHECK(image_reference::default_tag == "latest");
    CHECK(image_reference::max_repository_length == 255);
    CHECK(image_reference::max_tag_length == 128);
}

TEST_CASE("with_digest, with_tag and without_tag")
{
    auto r = image_reference::parse("ghcr.io/o/r:v1");
    auto d = digest::parse(sha256_ff);
    auto pinned = r.with_digest(d);
    CHECK(pinned.digest() == std::optional<digest>(d));
    CHECK(pinned.tag() == r.tag());
    CHECK(pinned.str() == "ghcr.io/o/r:v1@" + sha256_ff);
    CHECK(pinned.reference_for_fetch() == sha256_ff);
    CHECK(pinned.with_digest(digest{}) == r);
    CHECK(r.digest() == std::nullopt); // r itself is unchanged

    auto retagged = pinned.with_tag("v2");
    CHECK(retagged.tag() == std::optional<std::string>("v2"));
    CHECK(retagged.digest() == pinned.digest());
    CHECK(retagged.without_tag().str() == "ghcr.io/o/r@" + sha256_ff);
    CHECK(r.without_tag().str() == "ghcr.io/o/r:latest");
    CHECK_FALSE(r.without_tag().tag().has_value());

    error_code ec;
    std::string why;
    CHECK(r.with_tag("-bad", ec, &why).empty());
    CHECK(ec == error::invalid_reference);
    CHECK_MESSAGE(why.find("tag starts with '-' at position 0") != std::string::npos, why);
    CHECK(r.with_tag("", ec, &why).empty());
    CHECK(ec == error::invalid_reference);
    CHECK_MESSAGE(why.find("tag is empty") != std::string::npos, why);
    CHECK(r.with_tag(std::string(129, 'x'), ec, &why).empty());
    CHECK_MESSAGE(why.find("tag longer than 128 characters (129)") != std::string::npos, why);
    CHECK(r.with_tag(std::string(128, 'x'), ec).tag() == std::optional<std::string>(std::string(128, 'x')));
    CHECK_FALSE(ec);
    CHECK_THROWS_WITH_AS(r.with_tag("a/b"), doctest::Contains("'/' at position 1 is not allowed in a tag"), system_error);
    CHECK(image_reference{}.with_tag("v1", ec).empty());
    CHECK(ec == error::invalid_argument);
}

TEST_CASE("an empty reference")
{
    image_reference r;
    CHECK(r.empty());
    CHECK(r.registry().empty());
    CHECK(r.repository().empty());
    CHECK_FALSE(r.tag().has_value());
    CHECK_FALSE(r.digest().has_value());
    CHECK(r.name().empty());
    CHECK(r.str().empty());
    CHECK(r.familiar().empty());
    CHECK(r == image_reference{});
    CHECK(r.with_digest(digest::parse(sha256_ff)).empty());
}

TEST_CASE("comparison, ordering, hashing and streaming")
{
    auto a = image_reference::parse("ubuntu");
    CHECK(a == image_reference::parse("docker.io/library/ubuntu"));
    CHECK(a == image_reference::parse("index.docker.io/library/ubuntu"));
    CHECK(a == image_reference::parse("library/ubuntu"));
    CHECK(a == image_reference::parse("docker.io/ubuntu"));
    // the same canonical text, but an explicit tag is a different value
    auto b = image_reference::parse("ubuntu:latest");
    CHECK(a.str() == b.str());
    CHECK(a != b);
    CHECK(a < b);
    CHECK(image_reference::parse("Docker.io/x/y") != image_reference::parse("docker.io/x/y"));

    std::unordered_set<image_reference> set{a, b, image_reference::parse("docker.io/library/ubuntu"),
                                            image_reference::parse("ubuntu@" + sha256_ff),
                                            image_reference::parse("ubuntu:latest@" + sha256_ff)};
    CHECK(set.size() == 4);
    CHECK(std::hash<image_reference>{}(a) == std::hash<image_reference>{}(image_reference::parse("library/ubuntu")));

    std::set<image_reference> ordered{image_reference::parse("b"), image_reference::parse("a"), image_reference::parse("ghcr.io/x")};
    CHECK(ordered.begin()->str() == "docker.io/library/a:latest");
    CHECK(ordered.rbegin()->str() == "ghcr.io/x:latest");

    std::ostringstream os;
    os << image_reference::parse("localhost:5000/foo@" + sha256_ff);
    CHECK(os.str() == "localhost:5000/foo@" + sha256_ff);
}

namespace {

// An independent oracle: Docker's ParseNormalizedNamed written with std::regex straight from
// the grammar in distribution/reference regexp.go, with the registry made mandatory after
// normalisation (ocistore rejects a first component that splitDockerDomain takes for a host
// but that is no valid host, where upstream silently reads it as a path).
struct oracle_result {
    std::string registry, repository;
    std::optional<std::string> tag;
    std::optional<std::string> digest;
};

std::optional<oracle_result> oracle(std::string const& s)
{
    static std::regex const hex_id("^[a-f0-9]{64}$");
    std::string const alnum = "[a-z0-9]+";
    std::string const separator = "(?:[._]|__|[-]+)";
    std::string const path_component = alnum + "(?:" + separator + alnum + ")*";
    std::string const remote_name = path_component + "(?:/" + path_component + ")*";
    std::string const domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    std::string const domain_name = domain_component + "(?:\\." + domain_component + ")*";
    std::string const host = "(?:" + domain_name + "|\\[[a-fA-F0-9:]+\\])";
    std::string const domain_and_port = host + "(?::[0-9]+)?";
    std::string const tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    std::string const digest_pat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
    static std::regex const full("^(" + domain_and_port + ")/(" + remote_name + ")(?::(" + tag + "))?(?:@(" + digest_pat + "))?$");

    if (s.empty() || std::regex_match(s, hex_id)) return std::nullopt;
    auto has_upper = [](std::string_view v) {
        for (char c : v)
            if (c >= 'A' && c <= 'Z') return true;
        return false;
    };
    std::string domain, remainder;
    auto slash = s.find('/');
    if (slash == std::string::npos) {
        domain = "docker.io";
        remainder = "library/" + s;
    } else {
        std::string first = s.substr(0, slash), rest = s.substr(slash + 1);
        if (first == "localhost" || first.find_first_of(".:") != std::string::npos || has_upper(first)) {
            domain = first == "index.docker.io" ? "docker.io" : first;
            remainder = rest;
        } else {
            domain = "docker.io";
            remainder = s;
        }
        if (domain == "docker.io" && remainder.find('/') == std::string::npos) remainder = "library/" + remainder;
    }
    if (has_upper(remainder.substr(0, remainder.find(':')))) return std::nullopt;
    std::smatch m;
    std::string const normalised = domain + "/" + remainder;
    if (!std::regex_match(normalised, m, full)) return std::nullopt;
    if (m[2].length() > 255) return std::nullopt;
    oracle_result out{m[1].str(), m[2].str(), std::nullopt, std::nullopt};
    if (m[3].matched) out.tag = m[3].str();
    if (m[4].matched) {
        static std::regex const supported("^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$");
        if (!std::regex_match(m[4].str(), supported)) return std::nullopt;
        out.digest = m[4].str();
    }
    return out;
}

} // namespace

TEST_CASE("randomised inputs agree with a regex oracle of the grammar")
{
    std::vector<std::string> const fragments = {
        "ubuntu", "a", "b0", "Foo", "UP", "localhost", "index.docker.io", "docker.io", "ghcr.io", "example.com",
        "127.0.0.1", "[::1]", "[fe80::1%eth0]", "[", "]", "/", "/", "/", ":", ":", ":5000", "5000", "@", "-", "--",
        "_", "__", "___", ".", "..", "latest", "v1.2", "_x", "-x", "sha256:" + hex64, "sha256:" + hex64.substr(1),
        "sha512:" + std::string(128, 'a'), "md5:d41d8cd98f00b204e9800998ecf8427e", "@sha256:" + hex64, " ", std::string(1, '\0'),
        "\xc3\xbc", "$", image_id,
    };
    std::mt19937 rng(20240611); // fixed seed: failures reproduce
    std::uniform_int_distribution<std::size_t> pick(0, fragments.size() - 1), count(1, 7);
    std::size_t accepted = 0, rejected = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        std::string input;
        for (std::size_t k = count(rng); k > 0; --k) input += fragments[pick(rng)];
        CAPTURE(input);
        error_code ec;
        std::string why;
        auto r = image_reference::parse(input, ec, &why);
        auto expected = oracle(input);
        REQUIRE_MESSAGE(expected.has_value() == !ec, why);
        if (!expected) {
            ++rejected;
            CHECK(ec == error::invalid_reference);
            CHECK(!why.empty());
            CHECK(r.empty());
            continue;
        }
        ++accepted;
        CHECK(r.registry() == expected->registry);
        CHECK(r.repository() == expected->repository);
        CHECK(r.tag() == expected->tag);
        CHECK((r.digest() ? std::optional<std::string>(r.digest()->str()) : std::nullopt) == expected->digest);
        CHECK(image_reference::parse(r.str()).str() == r.str());
        CHECK(image_reference::parse(r.familiar()).str() == r.str());
    }
    MESSAGE("oracle agreed on ", accepted, " accepted and ", rejected, " rejected inputs");
    // the generator must exercise both outcomes substantially
    CHECK(accepted > 1000);
    CHECK(rejected > 1000);
}
