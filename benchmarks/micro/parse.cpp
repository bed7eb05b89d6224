// bench_micro parse/: parse_manifest() and parse_image_config() on typical and large documents,
// against Boost.JSON's parse() of the same bytes into a DOM (what validation and the typed model add).
//
//   parse/<document>/ocistore    parse_manifest() / parse_image_config(): JSON, kind, validation, model
//   parse/<document>/boost_json  boost::json::parse() of the same bytes, nothing else
//   parse/select_manifest/index_large  select_manifest() for linux/arm64/v8 on the parsed large index
// <document>: manifest_typical (5 layers), manifest_large (100 layers), index_typical
// (4 platforms + their attestation manifests), index_large (20 platforms + attestations),
// config_typical (8 diff_ids, 12 history steps), config_large (100 diff_ids, 130 history steps).
#include "micro_data.hpp"

#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>

#include <boost/json.hpp>

#include <map>

namespace {

using namespace ocistore_micro;
namespace mt = ocistore::media_types;

ocistore::digest digest_for(std::string const& seed) { return ocistore::digest_of<ocistore::sha256_hasher>(seed); }

ocistore::descriptor make_descriptor(std::string_view media_type, std::string const& seed, std::int64_t size)
{
    ocistore::descriptor d;
    d.media_type = std::string(media_type);
    d.digest = digest_for(seed);
    d.size = size;
    return d;
}

std::string make_manifest(int layers)
{
    rng_type rng(static_cast<std::uint64_t>(layers));
    ocistore::image_manifest m;
    m.media_type = std::string(mt::oci_manifest);
    m.config = make_descriptor(mt::oci_config, "config", 7023);
    for (int i = 0; i < layers; ++i)
        m.layers.push_back(make_descriptor(mt::oci_layer_tar_gzip, "layer" + std::to_string(i),
                                           static_cast<std::int64_t>(log_uniform(rng, 200, 60 << 20))));
    m.annotations = {{"org.opencontainers.image.created", "2024-05-01T12:00:00Z"},
                     {"org.opencontainers.image.revision", std::string(digest_for("rev").encoded().substr(0, 40))},
                     {"org.opencontainers.image.source", "https://github.com/example/app"}};
    return boost::json::serialize(boost::json::value_from(m));
}

std::vector<ocistore::platform> const& index_platforms()
{
    static std::vector<ocistore::platform> const p = {
        {"linux", "amd64", "", "", {}},     {"linux", "arm64", "v8", "", {}},   {"linux", "arm", "v7", "", {}},
        {"linux", "ppc64le", "", "", {}},   {"linux", "arm", "v6", "", {}},     {"linux", "arm", "v5", "", {}},
        {"linux", "386", "", "", {}},       {"linux", "s390x", "", "", {}},     {"linux", "riscv64", "", "", {}},
        {"linux", "mips64le", "", "", {}},  {"linux", "mips64", "", "", {}},    {"linux", "loong64", "", "", {}},
        {"linux", "amd64", "v3", "", {}},   {"linux", "ppc64", "", "", {}},     {"freebsd", "amd64", "", "", {}},
        {"freebsd", "arm64", "", "", {}},   {"windows", "amd64", "", "10.0.17763.6189", {}},
        {"windows", "amd64", "", "10.0.20348.2655", {}}, {"windows", "amd64", "", "10.0.26100.1457", {}},
        {"windows", "arm64", "", "10.0.26100.1457", {}}};
    return p;
}

/// An index as `docker buildx` pushes it: one manifest per platform, each followed by its attestation manifest.
std::string make_index(std::size_t platforms)
{
    ocistore::image_index ix;
    ix.media_type = std::string(mt::oci_index);
    for (std::size_t i = 0; i < platforms; ++i) {
        auto d = make_descriptor(mt::oci_manifest, "manifest" + std::to_string(i), 1611);
        d.platform = index_platforms()[i];
        auto a = make_descriptor(mt::oci_manifest, "attestation" + std::to_string(i), 839);
        a.annotations = {{"vnd.docker.reference.digest", d.digest.str()},
                         {"vnd.docker.reference.type", "attestation-manifest"}};
        a.platform = ocistore::platform{"unknown", "unknown", "", "", {}};
        ix.manifests.push_back(std::move(d));
        ix.manifests.push_back(std::move(a));
    }
    return boost::json::serialize(boost::json::value_from(ix));
}

/// A config with `layers` diff_ids and a history of one step per layer plus empty steps (ENV, LABEL, CMD…).
std::string make_config(int layers, int empty_steps)
{
    ocistore::image_config c;
    c.created = "2024-05-01T12:00:00.123456789Z";
    c.architecture = "amd64";
    c.os = "linux";
    c.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
                    "APP_HOME=/srv/app", "PYTHON_VERSION=3.12.3", "PYTHON_SHA256=" + std::string(digest_for("py").encoded())};
    c.config.entrypoint = {"/usr/local/bin/docker-entrypoint.sh"};
    c.config.cmd = {"app", "--listen", "0.0.0.0:8080"};
    c.config.working_dir = "/srv/app";
    c.config.exposed_ports = {"8080/tcp"};
    c.config.labels = {{"maintainer", "team@example.com"}, {"org.opencontainers.image.version", "1.2.3"}};
    for (int i = 0; i < layers; ++i) c.rootfs.diff_ids.push_back(digest_for("diff" + std::to_string(i)));
    auto step = [&](int i, bool empty) {
        ocistore::history_entry h;
        h.created = "2024-05-01T11:" + std::to_string(10 + i % 50) + ":00Z";
        h.empty_layer = empty;
        h.created_by = empty ? "ENV STEP_" + std::to_string(i) + "=value"
                             : "RUN /bin/sh -c set -eux; apt-get update; apt-get install -y --no-install-recommends "
                               "ca-certificates curl pkg" + std::to_string(i) + "; rm -rf /var/lib/apt/lists/* # buildkit";
        if (!empty) h.comment = "buildkit.dockerfile.v0";
        c.history.push_back(std::move(h));
    };
    for (int i = 0; i < layers; ++i) {
        step(i, false);
        if ((i * empty_steps) / layers != ((i + 1) * empty_steps) / layers) step(i, true); // empty_steps in all
    }
    return boost::json::serialize(boost::json::value_from(c));
}

struct document {
    std::string bytes;
    std::string_view content_type; ///< empty for a config
};

document const& doc(std::string const& name)
{
    static std::map<std::string, document> const docs = {
        {"manifest_typical", {make_manifest(5), mt::oci_manifest}},
        {"manifest_large", {make_manifest(100), mt::oci_manifest}},
        {"index_typical", {make_index(4), mt::oci_index}},
        {"index_large", {make_index(20), mt::oci_index}},
        {"config_typical", {make_config(8, 4), {}}},
        {"config_large", {make_config(100, 30), {}}},
    };
    return docs.at(name);
}

void report(benchmark::State& state, document const& d)
{
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * d.bytes.size()));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["doc_bytes"] = static_cast<double>(d.bytes.size());
}

void ocistore_parse(benchmark::State& state, std::string const& name)
{
    document const& d = doc(name);
    bool const config = d.content_type.empty();
    for (auto _ : state) {
        ocistore::error_code ec;
        std::string why;
        if (config) {
            auto c = ocistore::parse_image_config(d.bytes, ec, &why);
            benchmark::DoNotOptimize(c);
        } else {
            auto m = ocistore::parse_manifest(d.bytes, d.content_type, ec, &why);
            benchmark::DoNotOptimize(m);
        }
        if (ec) return skip_with(state, name, why);
    }
    report(state, d);
}

void boost_json_parse(benchmark::State& state, std::string const& name)
{
    document const& d = doc(name);
    for (auto _ : state) {
        boost::system::error_code ec;
        auto v = boost::json::parse(d.bytes, ec);
        if (ec) return skip_with(state, name, ec.message());
        benchmark::DoNotOptimize(v);
    }
    report(state, d);
}

void select(benchmark::State& state)
{
    ocistore::error_code ec;
    std::string why;
    auto const m = ocistore::parse_manifest(doc("index_large").bytes, mt::oci_index, ec, &why);
    if (ec) return skip_with(state, "index_large", why);
    ocistore::platform const wanted{"linux", "arm64", "v8", "", {}};
    for (auto _ : state) {
        auto d = ocistore::select_manifest(m.index(), wanted, ec, &why);
        if (ec) return skip_with(state, "select_manifest", why);
        benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

} // namespace

void ocistore_micro::register_parse_benchmarks()
{
    for (char const* name :
         {"manifest_typical", "manifest_large", "index_typical", "index_large", "config_typical", "config_large"}) {
        std::string const prefix = std::string("parse/") + name;
        benchmark::RegisterBenchmark((prefix + "/ocistore").c_str(), ocistore_parse, std::string(name))
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark((prefix + "/boost_json").c_str(), boost_json_parse, std::string(name))
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark("parse/select_manifest/index_large", select)->Unit(benchmark::kMicrosecond);
}
