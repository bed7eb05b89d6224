// Conformance fixture for http_transport: the image_set pushed to a real docker-registry on
// 127.0.0.1 over plain HTTP; manifests beyond the registry's size limit come from a stand-in.
#pragma once

#include <ocistore/transport/http_transport.hpp>

#include "transport_suite.hpp"

#include <support/loopback_http.hpp>
#include <support/http_test.hpp>
#include <support/registry_fixture.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_test {

/** The docker-registry shared by every transport_fixture<http_transport> of the process, each
    fixture using its own repository. Started on first use, which must be on the main thread
    (the registry is killed when the thread that started it ends); stopped at process exit. */
inline registry_fixture& shared_conformance_registry()
{
    static registry_fixture registry;
    return registry;
}

/** A minimal registry on 127.0.0.1 serving only the given manifests of one repository (GET and
    HEAD by tag or digest, with Content-Type and Docker-Content-Digest; 404 MANIFEST_UNKNOWN
    otherwise). For content a real registry refuses to store. */
class manifest_stand_in {
public:
    manifest_stand_in(std::string repository, std::vector<test_manifest> manifests)
        : repository_(std::move(repository)), manifests_(std::move(manifests)),
          server_([this](http_request const& req) { return handle(req); })
    {
    }
    /// "127.0.0.1:port".
    std::string host() const { return "127.0.0.1:" + std::to_string(server_.port()); }

private:
    reply handle(http_request const& req) const
    {
        reply r;
        std::string const target(req.target());
        std::string const prefix = "/v2/" + repository_ + "/manifests/";
        if (req.method() == http::verb::get || req.method() == http::verb::head) {
            if (target == "/v2/") {
                r.response.set(http::field::content_type, "application/json");
                r.response.body() = "{}";
                return r;
            }
            if (target.starts_with(prefix)) {
                std::string const ref = target.substr(prefix.size());
                for (test_manifest const& m : manifests_) {
                    bool const tagged = std::find(m.tags.begin(), m.tags.end(), ref) != m.tags.end();
                    if (ref != m.digest.str() && !tagged) continue;
                    r.response.set(http::field::content_type, m.media_type);
                    r.response.set("Docker-Content-Digest", m.digest.str());
                    if (req.method() == http::verb::head)
                        r.response.content_length(m.bytes.size());
                    else
                        r.response.body() = m.bytes;
                    return r;
                }
            }
        }
        r.response.result(http::status::not_found);
        r.response.set(http::field::content_type, "application/json");
        r.response.body() = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
        return r;
    }

    std::string repository_;
    std::vector<test_manifest> manifests_;
    loopback_http_server server_; // last: stops first
};

/** http_transport against a real registry (docker-registry 2.8, plain HTTP, no auth): every
    blob, and every manifest by digest and by each of its tags with its media type, pushed to
    a repository of its own on the shared registry. The transport lists the registry in
    insecure_hosts, has an empty credential store and no proxy (nothing read from the
    environment or a Docker config). */
template <> struct transport_fixture<ocistore::http_transport> {
    static constexpr bool reports_server_digest = true;
    /** docker-registry 2.8.2 refuses to store, and to serve, a manifest over 4 MiB
        ("http: request body too large" on PUT, "storage: read exceeds limit" on GET), so such
        manifests are served by a manifest_stand_in at oversize_reference() instead. */
    static constexpr bool can_serve_oversize_manifest = false;
    /// The registry's manifest size limit (distribution's maxManifestBodySize).
    static constexpr std::size_t registry_manifest_limit = std::size_t(4) << 20;

    static bool available() { return registry_fixture::available(); }

    explicit transport_fixture(image_set const& set)
        : registry_(shared_conformance_registry()), repository_(unique_repository(set.repository)),
          stand_in_(repository_, oversize(set)), transport_(options(registry_.host(), stand_in_.host()))
    {
        registry_pusher push("127.0.0.1", registry_.port());
        for (auto const& b : set.blobs) REQUIRE(push.push_blob(repository_, b.bytes) == b.digest.str());
        // The registry checks that an index's manifests exist: indexes go last.
        for (bool indexes : {false, true}) {
            for (auto const& m : set.manifests) {
                if (m.bytes.size() > registry_manifest_limit || is_index(m.media_type) != indexes) continue;
                REQUIRE(push.push_manifest(repository_, m.digest.str(), m.bytes, m.media_type) == m.digest.str());
                for (auto const& tag : m.tags) push.push_manifest(repository_, tag, m.bytes, m.media_type);
            }
        }
    }

    ocistore::http_transport& transport() { return transport_; }
    ocistore::image_reference reference() const
    {
        return ocistore::image_reference::parse(registry_.host() + "/" + repository_);
    }
    /// The same repository on the stand-in, which serves the manifests over registry_manifest_limit.
    ocistore::image_reference oversize_reference() const
    {
        return ocistore::image_reference::parse(stand_in_.host() + "/" + repository_);
    }

private:
    static std::string unique_repository(std::string const& base)
    {
        static std::atomic<int> instances{0};
        return base + "-" + std::to_string(++instances);
    }

    static std::vector<test_manifest> oversize(image_set const& set)
    {
        std::vector<test_manifest> out;
        for (auto const& m : set.manifests)
            if (m.bytes.size() > registry_manifest_limit) out.push_back(m);
        return out;
    }

    static bool is_index(std::string_view media_type)
    {
        std::string const e = ocistore::media_type_essence(media_type);
        return e == ocistore::media_types::oci_index || e == ocistore::media_types::docker_manifest_list;
    }

    static ocistore::http_options options(std::string registry_host, std::string stand_in_host)
    {
        using namespace std::chrono_literals;
        auto o = loopback_options({std::move(registry_host), std::move(stand_in_host)});
        o.overall_timeout = 60s;
        return o;
    }

    registry_fixture& registry_;
    std::string repository_;
    manifest_stand_in stand_in_;
    ocistore::http_transport transport_;
};

} // namespace ocistore_test
