// Conformance suite for the *Transport* concept: specialise ocistore_test::transport_fixture<T>,
// then TEST_CASE_TEMPLATE_INVOKE(transport_conformance, T). Checks manifests by tag and by
// digest (bytes, media type, server digest), resolve, not-found and too-large failures, blob
// reads from offset 0 and from other offsets to the end, and concurrent use from 4 threads.
// Uses only the concept's expressions (no `why`, no throwing overloads).
//
// Adding a transport: write a fixture that serves an image_set (see transport_fixture below;
// transport.cpp has in-memory and layout ones, http_transport_fixture.hpp one over a real
// registry), then add the transport to the TEST_CASE_TEMPLATE_INVOKE in transport.cpp.
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/transport_types.hpp>

#include <support/oci_layout_writer.hpp>

#include <doctest/doctest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace ocistore_test {

/// A blob of a test image (layer or config).
struct test_blob {
    std::string bytes;
    std::string media_type;
    ocistore::digest digest;  ///< sha256 of `bytes`
};

/// A manifest or index of a test image, with the tags that point at it (none: digest only).
struct test_manifest {
    std::string bytes;
    std::string media_type;
    ocistore::digest digest;  ///< sha256 of `bytes`
    std::vector<std::string> tags;
};

/// Content for one repository, described independently of any transport.
struct image_set {
    std::string repository = "conformance/app";
    std::vector<test_blob> blobs;
    std::vector<test_manifest> manifests;
};

/** Specialise per transport under test:
    - `explicit transport_fixture(image_set const&)`: serves the set (starting a server,
      writing a layout, filling a registry…) for as long as the fixture lives;
    - `T& transport()`: the transport under test, reaching that content;
    - `ocistore::image_reference reference() const`: a reference, without tag or digest,
      to the set's repository through this transport; the suite adds tags and digests;
    - `static constexpr bool reports_server_digest`: whether fetch_manifest must fill
      `server_digest` (when it does, it must be right either way).
    Optional, for backends that cannot serve all of the set the way the suite assumes:
    - `static bool available()`: false when the backend is missing on this machine (e.g. a
      registry program is not installed); the case is then skipped with a MESSAGE. Absent: true;
    - `static constexpr bool can_serve_oversize_manifest`: whether reference()'s repository
      serves the manifests over max_manifest_size (a real registry may refuse to store or
      serve them). Absent: true. When false, `ocistore::image_reference oversize_reference()
      const` may name another repository, reached by the same transport, that serves them
      under the same tags and digests; without it the too_large subcase is skipped with a
      MESSAGE. */
template <class T> struct transport_fixture;

/// transport_fixture<T>::available(), or true when the fixture does not declare it.
template <class F> bool fixture_available()
{
    if constexpr (requires { { F::available() } -> std::convertible_to<bool>; })
        return F::available();
    else
        return true;
}

/// transport_fixture<T>::can_serve_oversize_manifest, or true when the fixture does not declare it.
template <class F> constexpr bool fixture_serves_oversize_manifest()
{
    if constexpr (requires { F::can_serve_oversize_manifest; })
        return F::can_serve_oversize_manifest;
    else
        return true;
}

inline test_blob make_test_blob(std::string bytes, std::string_view media_type)
{
    ocistore::digest d = ocistore::digest_of<ocistore::sha256_hasher>(bytes);
    return {std::move(bytes), std::string(media_type), std::move(d)};
}

inline test_manifest make_test_manifest(std::string bytes, std::string_view media_type, std::vector<std::string> tags)
{
    ocistore::digest d = ocistore::digest_of<ocistore::sha256_hasher>(bytes);
    return {std::move(bytes), std::string(media_type), std::move(d), std::move(tags)};
}

inline ocistore::descriptor describe(test_blob const& b)
{
    ocistore::descriptor d;
    d.media_type = b.media_type;
    d.digest = b.digest;
    d.size = static_cast<std::int64_t>(b.bytes.size());
    return d;
}

inline ocistore::descriptor describe(test_manifest const& m, ocistore::platform p = {})
{
    ocistore::descriptor d;
    d.media_type = m.media_type;
    d.digest = m.digest;
    d.size = static_cast<std::int64_t>(m.bytes.size());
    if (!p.os.empty()) d.platform = std::move(p);
    return d;
}

/// `n` deterministic pseudo-random bytes.
inline std::string random_bytes(std::size_t n, std::uint32_t seed)
{
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

/// The image set the suite runs on, its parts named.
struct conformance_images {
    image_set set;
    test_blob big_layer;     ///< 1 MiB + 4321 random bytes
    test_blob small_layer;   ///< 1000 random bytes
    test_blob empty_blob;    ///< 0 bytes
    test_blob config_amd64;
    test_blob config_arm64;
    test_manifest amd64;     ///< OCI manifest, tagged "v1"
    test_manifest arm64;     ///< OCI manifest, untagged (digest only)
    test_manifest docker;    ///< Docker schema 2 manifest, tagged "docker"
    test_manifest index;     ///< OCI index over amd64 and arm64, tagged "latest" and "multi"
    test_manifest huge;      ///< an OCI manifest of max_manifest_size + 1 bytes, tagged "huge"
};

inline conformance_images make_conformance_images()
{
    namespace mt = ocistore::media_types;
    conformance_images c;
    c.big_layer = make_test_blob(random_bytes((1u << 20) + 4321, std::uint32_t{1}), mt::oci_layer_tar_gzip);
    c.small_layer = make_test_blob(random_bytes(1000, std::uint32_t{2}), mt::oci_layer_tar);
    c.empty_blob = make_test_blob("", mt::oci_layer_tar);
    c.config_amd64 = make_test_blob(make_image_config({c.big_layer.digest, c.small_layer.digest}), mt::oci_config);
    c.config_arm64 = make_test_blob(make_image_config({c.small_layer.digest}, {"linux", "arm64", "v8", "", {}}),
                                    mt::oci_config);

    auto manifest_json = [](test_blob const& config, std::vector<test_blob const*> layers, std::string_view type,
                            std::map<std::string, std::string> annotations = {}) {
        ocistore::image_manifest m;
        m.media_type = std::string(type);
        m.config = describe(config);
        m.config.media_type = std::string(type == mt::docker_manifest ? mt::docker_config : mt::oci_config);
        for (auto const* l : layers) m.layers.push_back(describe(*l));
        m.annotations = std::move(annotations);
        return boost::json::serialize(boost::json::value_from(m));
    };
    c.amd64 = make_test_manifest(manifest_json(c.config_amd64, {&c.big_layer, &c.small_layer}, mt::oci_manifest),
                                 mt::oci_manifest, {"v1"});
    c.arm64 = make_test_manifest(manifest_json(c.config_arm64, {&c.small_layer}, mt::oci_manifest), mt::oci_manifest, {});
    c.docker = make_test_manifest(manifest_json(c.config_amd64, {&c.small_layer, &c.empty_blob}, mt::docker_manifest),
                                  mt::docker_manifest, {"docker"});
    ocistore::image_index i;
    i.media_type = std::string(mt::oci_index);
    i.manifests = {describe(c.amd64, {"linux", "amd64", "", "", {}}), describe(c.arm64, {"linux", "arm64", "v8", "", {}})};
    c.index = make_test_manifest(boost::json::serialize(boost::json::value_from(i)), mt::oci_index, {"latest", "multi"});

    std::string huge = manifest_json(c.config_amd64, {&c.small_layer}, mt::oci_manifest, {{"padding", ""}});
    std::size_t const pad = ocistore::max_manifest_size + 1 - huge.size();
    huge = manifest_json(c.config_amd64, {&c.small_layer}, mt::oci_manifest, {{"padding", std::string(pad, 'x')}});
    c.huge = make_test_manifest(std::move(huge), mt::oci_manifest, {"huge"});

    c.set.blobs = {c.big_layer, c.small_layer, c.empty_blob, c.config_amd64, c.config_arm64};
    c.set.manifests = {c.amd64, c.arm64, c.docker, c.index, c.huge};
    return c;
}

/// Built once per process: the huge manifest is 4 MiB.
inline conformance_images const& the_conformance_images()
{
    static conformance_images const c = make_conformance_images();
    return c;
}

/// Reads `r` to its end in chunks of `chunk` bytes; stops early (with what it has) after `cap` bytes.
template <class R>
std::string read_to_end(R& r, std::size_t chunk, ocistore::error_code& ec, std::size_t cap = std::size_t(64) << 20)
{
    std::string out;
    std::vector<std::byte> buf(chunk);
    ec.clear();
    for (;;) {
        std::size_t const n = r.read_some(std::span(buf), ec);
        if (ec || n == 0) break;
        if (n > chunk) {
            ec = make_error_code(ocistore::error::protocol_error); // a reader overran its buffer
            break;
        }
        out.append(reinterpret_cast<char const*>(buf.data()), n);
        if (out.size() > cap) break;
    }
    return out;
}

inline std::span<std::string_view const> default_accept() { return ocistore::media_types::default_accept; }

inline std::string essence(std::string_view media_type) { return ocistore::media_type_essence(media_type); }

} // namespace ocistore_test

TEST_CASE_TEMPLATE_DEFINE("transport conformance", T, transport_conformance)
{
    using namespace ocistore;
    using namespace ocistore_test;
    static_assert(transport<T>);
    static_assert(blob_source<typename T::blob_reader>);

    if (!fixture_available<transport_fixture<T>>()) {
        MESSAGE("the backend of this transport's fixture is not available here: skipped");
        return;
    }
    conformance_images const& img = the_conformance_images();
    transport_fixture<T> fx(img.set);
    T& t = fx.transport();
    image_reference const base = fx.reference();
    REQUIRE_FALSE(base.empty());
    error_code ec = make_error_code(error::io_error); // every success must clear it
    auto accept = default_accept();

    auto check_fetched = [&](fetched_manifest const& m, test_manifest const& want) {
        CHECK(m.bytes == want.bytes);
        CHECK(essence(m.media_type) == essence(want.media_type));
        if (transport_fixture<T>::reports_server_digest) CHECK(m.server_digest.has_value());
        if (m.server_digest) CHECK(*m.server_digest == want.digest);
        CHECK(digest_of<sha256_hasher>(m.bytes) == want.digest);
    };

    SUBCASE("fetch_manifest by tag returns the stored bytes and media type")
    {
        for (test_manifest const* m : {&img.amd64, &img.docker, &img.index}) {
            for (auto const& tag : m->tags) {
                CAPTURE(tag);
                ec = make_error_code(error::io_error);
                fetched_manifest got = t.fetch_manifest(base.with_tag(tag), accept, ec);
                REQUIRE_FALSE(ec);
                check_fetched(got, *m);
            }
        }
    }

    SUBCASE("fetch_manifest by digest, tagged or not, and with a tag that the digest overrides")
    {
        for (test_manifest const* m : {&img.amd64, &img.arm64, &img.docker, &img.index}) {
            CAPTURE(m->digest);
            ec = make_error_code(error::io_error);
            check_fetched(t.fetch_manifest(base.with_digest(m->digest), accept, ec), *m);
            CHECK_FALSE(ec);
            ec = make_error_code(error::io_error);
            check_fetched(t.fetch_manifest(base.with_tag("v1").with_digest(m->digest), accept, ec), *m);
            CHECK_FALSE(ec);
        }
    }

    SUBCASE("fetch_manifest with an Accept list naming exactly the stored type")
    {
        std::string_view const only[] = {media_types::oci_index};
        ec = make_error_code(error::io_error);
        check_fetched(t.fetch_manifest(base.with_tag("multi"), only, ec), img.index);
        CHECK_FALSE(ec);
    }

    SUBCASE("resolve gives the digest of the raw bytes, the media type and the size")
    {
        for (test_manifest const* m : {&img.amd64, &img.docker, &img.index}) {
            image_reference const refs[] = {base.with_tag(m->tags.front()), base.with_digest(m->digest)};
            for (auto const& ref : refs) {
                CAPTURE(ref);
                ec = make_error_code(error::io_error);
                resolved_manifest r = t.resolve(ref, accept, ec);
                REQUIRE_FALSE(ec);
                CHECK(r.manifest_digest == m->digest);
                CHECK(essence(r.media_type) == essence(m->media_type));
                if (r.size) CHECK(*r.size == m->bytes.size());
            }
        }
        ec = make_error_code(error::io_error);
        CHECK(t.resolve(base.with_digest(img.arm64.digest), accept, ec).manifest_digest == img.arm64.digest);
        CHECK_FALSE(ec);
    }

    SUBCASE("a reference without a tag means latest")
    {
        ec = make_error_code(error::io_error);
        check_fetched(t.fetch_manifest(base, accept, ec), img.index);
        CHECK_FALSE(ec);
    }

    SUBCASE("unknown tags, manifests and blobs are not_found")
    {
        digest const absent = digest_of<sha256_hasher>(std::string_view("no such content"));
        ec.clear();
        (void)t.fetch_manifest(base.with_tag("no-such-tag"), accept, ec);
        CHECK(ec == condition::not_found);
        ec.clear();
        (void)t.resolve(base.with_tag("no-such-tag"), accept, ec);
        CHECK(ec == condition::not_found);
        ec.clear();
        (void)t.fetch_manifest(base.with_digest(absent), accept, ec);
        CHECK(ec == condition::not_found);
        ec.clear();
        (void)t.resolve(base.with_digest(absent), accept, ec);
        CHECK(ec == condition::not_found);
        ec.clear();
        (void)t.open_blob(base, absent, 0, ec);
        CHECK(ec == condition::not_found);
    }

    SUBCASE("a manifest over 4 MiB is too_large")
    {
        image_reference huge_base = base;
        if constexpr (!fixture_serves_oversize_manifest<transport_fixture<T>>()) {
            if constexpr (requires { fx.oversize_reference(); }) {
                huge_base = fx.oversize_reference();
            } else {
                MESSAGE("this fixture's backend cannot serve a manifest over 4 MiB: too_large not checked");
                return;
            }
        }
        ec.clear();
        (void)t.fetch_manifest(huge_base.with_tag("huge"), accept, ec);
        CHECK(ec == error::too_large);
        ec.clear();
        (void)t.fetch_manifest(huge_base.with_digest(img.huge.digest), accept, ec);
        CHECK(ec == error::too_large);
    }

    SUBCASE("open_blob at 0 reads every blob whole, in chunks of any size")
    {
        for (test_blob const* b : {&img.big_layer, &img.small_layer, &img.config_amd64, &img.empty_blob}) {
            for (std::size_t chunk : {std::size_t(1), std::size_t(7), std::size_t(4096), std::size_t(1) << 20}) {
                if (chunk == 1 && b->bytes.size() > 10000) continue;
                CAPTURE(b->digest);
                CAPTURE(chunk);
                ec = make_error_code(error::io_error);
                typename T::blob_reader r = t.open_blob(base, b->digest, 0, ec);
                REQUIRE_FALSE(ec);
                CHECK(std::as_const(r).offset() == 0);
                REQUIRE(std::as_const(r).size().has_value());
                CHECK(*std::as_const(r).size() == b->bytes.size());
                std::string const got = read_to_end(r, chunk, ec);
                CHECK_FALSE(ec);
                CHECK(got.size() == b->bytes.size());
                CHECK(got == b->bytes);
            }
        }
    }

    SUBCASE("open_blob at an offset starts there; offset() and size() say so")
    {
        std::string const& whole = img.big_layer.bytes;
        std::uint64_t const n = whole.size();
        for (std::uint64_t off : {std::uint64_t(1), std::uint64_t(4096), std::uint64_t(65537), n / 2, n - 1, n}) {
            CAPTURE(off);
            ec = make_error_code(error::io_error);
            typename T::blob_reader r = t.open_blob(base, img.big_layer.digest, off, ec);
            REQUIRE_FALSE(ec);
            CHECK(std::as_const(r).offset() == off);
            REQUIRE(std::as_const(r).size().has_value());
            CHECK(*std::as_const(r).size() == n);
            std::string const got = read_to_end(r, 10000, ec);
            CHECK_FALSE(ec);
            CHECK(got.size() == n - off);
            CHECK(got == whole.substr(static_cast<std::size_t>(off)));
        }
    }

    SUBCASE("an offset beyond the blob's end is invalid input")
    {
        ec.clear();
        (void)t.open_blob(base, img.small_layer.digest, img.small_layer.bytes.size() + 1, ec);
        CHECK(ec == condition::invalid_input);
    }

    SUBCASE("at the end, read_some keeps returning 0 with ec clear; readers move")
    {
        ec = make_error_code(error::io_error);
        typename T::blob_reader r = t.open_blob(base, img.small_layer.digest, 990, ec);
        REQUIRE_FALSE(ec);
        typename T::blob_reader moved = std::move(r);
        CHECK(std::as_const(moved).offset() == 990);
        std::string const got = read_to_end(moved, 100, ec);
        CHECK_FALSE(ec);
        CHECK(got == img.small_layer.bytes.substr(990));
        std::byte buf[16];
        for (int i = 0; i < 3; ++i) {
            ec = make_error_code(error::io_error);
            CHECK(moved.read_some(std::span(buf), ec) == 0);
            CHECK_FALSE(ec);
        }
    }

    SUBCASE("4 threads read blobs and fetch manifests concurrently")
    {
        std::string const& whole = img.big_layer.bytes;
        constexpr int threads = 4;
        std::vector<std::string> errors(threads);
        std::vector<std::thread> pool;
        for (int k = 0; k < threads; ++k) {
            pool.emplace_back([&, k] {
                std::string& err = errors[static_cast<std::size_t>(k)];
                for (int round = 0; round < 3 && err.empty(); ++round) {
                    error_code e;
                    std::uint64_t const off = static_cast<std::uint64_t>(k) * whole.size() / threads;
                    typename T::blob_reader r = t.open_blob(base, img.big_layer.digest, off, e);
                    if (e) {
                        err = "open_blob: " + e.message();
                        break;
                    }
                    std::string const got = read_to_end(r, 3000 + static_cast<std::size_t>(k) * 1001, e);
                    if (e) err = "read_some: " + e.message();
                    else if (got != whole.substr(static_cast<std::size_t>(off))) err = "wrong content";
                    fetched_manifest m = t.fetch_manifest(base.with_tag(k % 2 ? "v1" : "latest"), accept, e);
                    if (e) err = "fetch_manifest: " + e.message();
                    else if (m.bytes != (k % 2 ? img.amd64.bytes : img.index.bytes)) err = "wrong manifest";
                }
            });
        }
        for (auto& th : pool) th.join();
        for (int k = 0; k < threads; ++k) {
            CAPTURE(k);
            CHECK(errors[static_cast<std::size_t>(k)] == "");
        }
    }
}
