#include <ocistore/test/memory_transport.hpp>

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/media_types.hpp>

#include <support/read_to_end.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace ocistore;
using namespace ocistore::test;
using namespace std::chrono_literals;

namespace {

std::string const repo = "team/app";
std::string_view const oci_index_only[] = {media_types::oci_index};

image_reference make_ref(std::string_view text) { return image_reference::parse(text); }

std::string drain(memory_transport::blob_reader& r, error_code& ec, std::size_t chunk = 4096)
{
    return ocistore_test::read_to_end(r, ec, chunk);
}

std::string pattern(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

/// A registry with one blob of 10000 bytes and one index tagged "v1".
struct registry {
    memory_transport t;
    std::string blob = pattern(10000);
    digest blob_digest = t.add_blob(repo, blob);
    std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";
    digest manifest_digest = t.add_manifest(repo, manifest, std::string(media_types::oci_index));
    registry() { t.tag(repo, "v1", manifest_digest); }
};

} // namespace

TEST_CASE("content: digests are sha256 of the bytes, tags and digests both reach a manifest")
{
    registry r;
    CHECK(r.blob_digest == digest_of<sha256_hasher>(r.blob));
    CHECK(r.manifest_digest == digest_of<sha256_hasher>(r.manifest));

    error_code ec = make_error_code(error::io_error);
    fetched_manifest m = r.t.fetch_manifest(make_ref("team/app:v1"), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.bytes == r.manifest);
    CHECK(m.media_type == media_types::oci_index);
    REQUIRE(m.server_digest);
    CHECK(*m.server_digest == r.manifest_digest);

    ec = make_error_code(error::io_error);
    resolved_manifest h = r.t.resolve(make_ref("team/app@" + r.manifest_digest.str()), media_types::default_accept, ec);
    REQUIRE_FALSE(ec);
    CHECK(h.manifest_digest == r.manifest_digest);
    CHECK(h.media_type == media_types::oci_index);
    CHECK(h.size == r.manifest.size());
}

TEST_CASE("content: the registry part of a reference is ignored, repositories are separate")
{
    registry r;
    error_code ec;
    CHECK(r.t.fetch_manifest(make_ref("ghcr.io/team/app:v1"), {}, ec).bytes == r.manifest);
    CHECK_FALSE(ec);
    CHECK(r.t.fetch_manifest(make_ref("localhost:5000/team/app:v1"), {}, ec).bytes == r.manifest);
    CHECK_FALSE(ec);

    std::string why;
    (void)r.t.fetch_manifest(make_ref("team/other:v1"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "no repository \"team/other\"");
    (void)r.t.open_blob(make_ref("team/other"), r.blob_digest, 0, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "repository \"team/other\" has no blob " + r.blob_digest.str());
    (void)r.t.fetch_manifest(make_ref("team/app:v2"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "repository \"team/app\" has no tag \"v2\"");
}

TEST_CASE("content: a dangling tag and put_* under a wrong digest")
{
    memory_transport t;
    digest const wrong = digest_of<sha256_hasher>(std::string_view("something else"));
    t.tag(repo, "dangling", wrong);
    error_code ec;
    std::string why;
    (void)t.fetch_manifest(make_ref("team/app:dangling"), {}, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why == "repository \"team/app\" has no manifest " + wrong.str());

    // Served as stored: integrity checks are the client's business.
    t.put_manifest(repo, wrong, "{}", "application/json");
    fetched_manifest m = t.fetch_manifest(make_ref("team/app:dangling"), {}, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.bytes == "{}");
    CHECK(m.server_digest == wrong);
    t.put_blob(repo, wrong, "not what the digest says");
    auto b = t.open_blob(make_ref("team/app"), wrong, 0, ec);
    REQUIRE_FALSE(ec);
    CHECK(drain(b, ec) == "not what the digest says");
}

TEST_CASE("Accept: a stored type outside a non-empty Accept list is not_found, essence, wildcard and empty match")
{
    registry r;
    error_code ec;
    std::string why;
    std::string_view const manifests_only[] = {media_types::oci_manifest, media_types::docker_manifest};
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), manifests_only, ec, &why);
    CHECK(ec == error::not_found);
    CHECK(why.find("is application/vnd.oci.image.index.v1+json, which the Accept list does not include "
                   "(application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json)") !=
          std::string::npos);
    (void)r.t.resolve(make_ref("team/app:v1"), manifests_only, ec);
    CHECK(ec == error::not_found);

    std::string_view const with_params[] = {"Application/VND.OCI.image.index.v1+json; charset=utf-8"};
    std::string_view const wildcard[] = {"text/plain", "*/*"};
    for (std::span<std::string_view const> accept :
         {std::span<std::string_view const>(with_params), std::span<std::string_view const>(wildcard),
          std::span<std::string_view const>()}) {
        ec = make_error_code(error::io_error);
        CHECK(r.t.fetch_manifest(make_ref("team/app:v1"), accept, ec).bytes == r.manifest);
        CHECK_FALSE(ec);
    }
}

TEST_CASE("a manifest over max_manifest_size: fetch is too_large, resolve still answers")
{
    memory_transport t;
    std::string const big(max_manifest_size + 1, ' ');
    digest const d = t.add_manifest(repo, big, std::string(media_types::oci_manifest));
    t.tag(repo, "big", d);
    std::string const fits(max_manifest_size, ' ');
    t.tag(repo, "fits", t.add_manifest(repo, fits, std::string(media_types::oci_manifest)));
    error_code ec;
    std::string why;
    (void)t.fetch_manifest(make_ref("team/app:big"), {}, ec, &why);
    CHECK(ec == error::too_large);
    CHECK(why == "manifest " + d.str() + " is 4194305 bytes, more than the limit of 4194304");
    CHECK(t.fetch_manifest(make_ref("team/app:fits"), {}, ec).bytes.size() == max_manifest_size);
    CHECK_FALSE(ec);
    CHECK(t.resolve(make_ref("team/app:big"), {}, ec).size == big.size());
    CHECK_FALSE(ec);
}

TEST_CASE("open_blob: offsets, the end, beyond the end, readers over nothing")
{
    registry r;
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 9990, ec);
    REQUIRE_FALSE(ec);
    CHECK(b.offset() == 9990);
    CHECK(b.size() == 10000u);
    CHECK(drain(b, ec, 3) == r.blob.substr(9990));
    CHECK_FALSE(ec);

    auto at_end = r.t.open_blob(make_ref("team/app"), r.blob_digest, 10000, ec);
    REQUIRE_FALSE(ec);
    CHECK(drain(at_end, ec).empty());
    CHECK_FALSE(ec);

    std::string why;
    auto beyond = r.t.open_blob(make_ref("team/app"), r.blob_digest, 10001, ec, &why);
    CHECK(ec == error::invalid_argument);
    CHECK(why == "offset 10001 is beyond the end of blob " + r.blob_digest.str() + " (10000 bytes)");

    std::byte buf[4];
    memory_transport::blob_reader none;
    CHECK(none.read_some(buf, ec) == 0);
    CHECK(ec == error::invalid_argument);
    CHECK_FALSE(none.size());
    CHECK(beyond.read_some(buf, ec) == 0);
    CHECK(ec == error::invalid_argument);
}

TEST_CASE("counters: requests per kind, the log, bytes served per blob, offsets asked for, reset")
{
    registry r;
    error_code ec;
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    (void)r.t.resolve(make_ref("team/app:v1"), {}, ec);
    (void)r.t.resolve(make_ref("team/app:nope"), {}, ec);
    auto b1 = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    (void)drain(b1, ec, 999);
    auto b2 = r.t.open_blob(make_ref("team/app"), r.blob_digest, 4000, ec);
    (void)drain(b2, ec);

    CHECK(r.t.requests() == 5);
    CHECK(r.t.requests(request_kind::fetch_manifest) == 1);
    CHECK(r.t.requests(request_kind::resolve) == 2);
    CHECK(r.t.requests(request_kind::open_blob) == 2);
    CHECK(r.t.bytes_served(r.blob_digest) == 10000 + 6000);
    CHECK(r.t.bytes_served(r.manifest_digest) == r.manifest.size());
    CHECK(r.t.blob_offsets(r.blob_digest) == std::vector<std::uint64_t>{0, 4000});

    auto log = r.t.request_log();
    REQUIRE(log.size() == 5);
    CHECK(log[0].kind == request_kind::fetch_manifest);
    CHECK(log[0].repository == repo);
    CHECK(log[0].target == "v1");
    CHECK_FALSE(log[0].result);
    CHECK(log[2].target == "nope");
    CHECK(log[2].result == error::not_found);
    CHECK(log[4].kind == request_kind::open_blob);
    CHECK(log[4].target == r.blob_digest.str());
    CHECK(log[4].offset == 4000);

    r.t.reset_counters();
    CHECK(r.t.requests() == 0);
    CHECK(r.t.bytes_served(r.blob_digest) == 0);
    CHECK(r.t.blob_offsets(r.blob_digest).empty());
}

TEST_CASE("copies share the registry, readers outlive the transport")
{
    memory_transport::blob_reader b;
    digest d;
    memory_transport copy;
    {
        memory_transport t;
        copy = t;
        d = t.add_blob(repo, "kept alive");
        error_code ec;
        b = copy.open_blob(make_ref("team/app"), d, 5, ec);
        REQUIRE_FALSE(ec);
    }
    error_code ec;
    CHECK(drain(b, ec) == "alive");
    CHECK(copy.bytes_served(d) == 5);
}

TEST_CASE("fault: fail the n-th request, of any kind or of one kind")
{
    registry r;
    error_code ec;
    r.t.fail_nth(3, make_error_code(error::server_error));
    std::string why;
    for (int i = 1; i <= 4; ++i) {
        CAPTURE(i);
        (void)r.t.resolve(make_ref("team/app:v1"), {}, ec, &why);
        CHECK(bool(ec) == (i == 3));
    }
    CHECK(why == "injected fault: server error");
    CHECK(r.t.request_log()[2].result == error::server_error);

    r.t.fail_nth(2, make_error_code(error::timeout), request_kind::open_blob);
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    CHECK_FALSE(ec);
    (void)r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK_FALSE(ec);
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    CHECK_FALSE(ec);
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK(ec == error::timeout);
    CHECK(ec == condition::transient);
    (void)r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK_FALSE(ec);
}

TEST_CASE("fault: repository and target filters, skip, and times = 0 (every one)")
{
    registry r;
    digest const other = r.t.add_blob(repo, "other");
    fault f;
    f.target = r.blob_digest.str();
    f.skip = 1;
    f.times = 0;
    f.fail = make_error_code(error::denied);
    r.t.inject(f);
    error_code ec;
    (void)r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK_FALSE(ec); // skipped
    for (int i = 0; i < 3; ++i) {
        (void)r.t.open_blob(make_ref("team/app"), other, 0, ec);
        CHECK_FALSE(ec); // another target
        (void)r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
        CHECK(ec == error::denied);
    }
    r.t.clear_faults();
    (void)r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK_FALSE(ec);

    r.t.inject({.repository = "team/elsewhere", .fail = make_error_code(error::denied)});
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    CHECK_FALSE(ec);
}

TEST_CASE("fault: rate_limited with a Retry-After hint")
{
    registry r;
    CHECK_FALSE(r.t.last_retry_after());
    r.t.rate_limit(30s, 2, request_kind::fetch_manifest);
    error_code ec;
    std::string why;
    (void)r.t.resolve(make_ref("team/app:v1"), {}, ec);
    CHECK_FALSE(ec);
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec, &why);
    CHECK(ec == error::rate_limited);
    CHECK(ec == condition::transient);
    CHECK(why == "injected fault: rate limited (retry after 30 s)");
    CHECK(r.t.last_retry_after() == 30s);
    CHECK(r.t.request_log().back().retry_after == 30s);
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    CHECK(ec == error::rate_limited);
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    CHECK_FALSE(ec);
    CHECK(r.t.last_retry_after() == 30s); // the most recent hint stays
}

TEST_CASE("fault: truncation, reset mode: the read after K bytes fails with connection_failed, and stays failed")
{
    registry r;
    r.t.inject({.kind = request_kind::open_blob, .truncate_after = 2500});
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 1000, ec);
    REQUIRE_FALSE(ec);
    CHECK(b.size() == 10000u); // the declared length
    CHECK(b.offset() == 1000);
    std::string const got = drain(b, ec, 1000);
    CHECK(ec == error::connection_failed);
    CHECK(ec == condition::transient);
    CHECK(got == r.blob.substr(1000, 2500)); // K counts from the offset
    std::byte buf[8];
    CHECK(b.read_some(buf, ec) == 0);
    CHECK(ec == error::connection_failed);

    // The fault hit once: resuming from where it broke gets the rest.
    auto rest = r.t.open_blob(make_ref("team/app"), r.blob_digest, 3500, ec);
    REQUIRE_FALSE(ec);
    CHECK(got + drain(rest, ec) == r.blob.substr(1000));
    CHECK_FALSE(ec);
    CHECK(r.t.blob_offsets(r.blob_digest) == std::vector<std::uint64_t>{1000, 3500});
    CHECK(r.t.bytes_served(r.blob_digest) == 9000); // each byte from 1000 on, exactly once
}

TEST_CASE("fault: truncation, eof mode: the body ends early with ec clear while size() gives the whole")
{
    registry r;
    r.t.inject({.kind = request_kind::open_blob, .truncate_after = 10, .truncate_mode = truncation::eof});
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    REQUIRE_FALSE(ec);
    std::string const got = drain(b, ec);
    CHECK_FALSE(ec);
    CHECK(got == r.blob.substr(0, 10));
    CHECK(b.size() == 10000u);

    // truncate_after 0 in reset mode: the first read fails.
    r.t.inject({.kind = request_kind::open_blob, .truncate_after = 0});
    auto c = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    REQUIRE_FALSE(ec);
    std::byte buf[8];
    CHECK(c.read_some(buf, ec) == 0);
    CHECK(ec == error::connection_failed);

    // A truncation past the end changes nothing.
    r.t.inject({.kind = request_kind::open_blob, .truncate_after = 20000});
    auto d = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    CHECK(drain(d, ec) == r.blob);
    CHECK_FALSE(ec);
}

TEST_CASE("fault: a server that ignores Range serves from 0 and says offset() == 0")
{
    registry r;
    r.t.inject({.ignore_range = true});
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 6000, ec);
    REQUIRE_FALSE(ec);
    CHECK(b.offset() == 0);
    CHECK(b.size() == 10000u);
    CHECK(drain(b, ec) == r.blob);
    CHECK(r.t.blob_offsets(r.blob_digest) == std::vector<std::uint64_t>{6000}); // what was asked
    auto again = r.t.open_blob(make_ref("team/app"), r.blob_digest, 6000, ec);
    CHECK(again.offset() == 6000); // times = 1
}

TEST_CASE("fault: a corrupt byte is inverted wherever the read boundaries fall, only when served")
{
    registry r;
    r.t.inject({.kind = request_kind::open_blob, .times = 0, .corrupt_at = 4097});
    for (std::size_t chunk : {std::size_t(1), std::size_t(4096), std::size_t(4097), std::size_t(100000)}) {
        CAPTURE(chunk);
        error_code ec;
        auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
        std::string const got = drain(b, ec, chunk);
        REQUIRE(got.size() == r.blob.size());
        std::string expected = r.blob;
        expected[4097] = static_cast<char>(~expected[4097]);
        CHECK(got == expected);
    }
    error_code ec;
    auto later = r.t.open_blob(make_ref("team/app"), r.blob_digest, 5000, ec);
    CHECK(drain(later, ec) == r.blob.substr(5000));

    // Manifests too.
    r.t.inject({.kind = request_kind::fetch_manifest, .corrupt_at = 0});
    fetched_manifest m = r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec);
    REQUIRE_FALSE(ec);
    CHECK(m.bytes.size() == r.manifest.size());
    CHECK(m.bytes[0] == static_cast<char>(~'{'));
    CHECK(digest_of<sha256_hasher>(m.bytes) != r.manifest_digest);
}

TEST_CASE("fault: manifest bodies cut short, both modes")
{
    registry r;
    error_code ec;
    std::string why;
    r.t.inject({.kind = request_kind::fetch_manifest, .truncate_after = 5});
    (void)r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec, &why);
    CHECK(ec == error::connection_failed);
    CHECK(why == "injected fault: connection closed after 5 of " + std::to_string(r.manifest.size()) + " bytes");
    r.t.inject({.kind = request_kind::fetch_manifest, .truncate_after = 5, .truncate_mode = truncation::eof});
    CHECK(r.t.fetch_manifest(make_ref("team/app:v1"), {}, ec).bytes == r.manifest.substr(0, 5));
    CHECK_FALSE(ec);
}

TEST_CASE("fault: effects combine, the shortest truncation wins")
{
    registry r;
    r.t.inject({.truncate_after = 300, .truncate_mode = truncation::eof});
    r.t.inject({.truncate_after = 100, .truncate_mode = truncation::reset});
    r.t.inject({.corrupt_at = 50});
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    std::string const got = drain(b, ec);
    CHECK(ec == error::connection_failed);
    REQUIRE(got.size() == 100);
    CHECK(got[50] == static_cast<char>(~r.blob[50]));
}

TEST_CASE("fault: read_delay sleeps in every read")
{
    registry r;
    r.t.inject({.read_delay = 20ms});
    error_code ec;
    auto b = r.t.open_blob(make_ref("team/app"), r.blob_digest, 0, ec);
    auto const start = std::chrono::steady_clock::now();
    (void)drain(b, ec, 4000); // 3 reads with data + 1 at the end
    CHECK(std::chrono::steady_clock::now() - start >= 80ms);
}

TEST_CASE("concurrent content changes, requests and reads keep exact counts")
{
    memory_transport t;
    std::string const data = pattern(50000);
    digest const d = t.add_blob(repo, data);
    std::atomic<int> bad{0};
    std::vector<std::thread> pool;
    for (int k = 0; k < 4; ++k) {
        pool.emplace_back([&, k] {
            for (int i = 0; i < 20; ++i) {
                error_code ec;
                t.add_blob("thread/" + std::to_string(k), std::to_string(i));
                auto b = t.open_blob(make_ref("team/app"), d, 0, ec);
                if (ec || drain(b, ec, 777) != data) ++bad;
            }
        });
    }
    for (auto& th : pool) th.join();
    CHECK(bad == 0);
    CHECK(t.requests(request_kind::open_blob) == 80);
    CHECK(t.bytes_served(d) == 80 * data.size());
}
