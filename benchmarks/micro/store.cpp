// bench_micro store/: the cached fast path, pull() of a reference the store already holds, in
// process, per call.
//
//   store/cached_pull/null_builder/<layers>   blobs only: the kept layer blobs are checked by size
//   store/cached_pull/erofs_builder/<layers>  the layer images, fsmeta and VMDK are checked
//   store/read_and_hash_floor/<layers>        read(2) of index.json and the index, manifest and
//                                             config blobs plus their sha256: the least any
//                                             verifying lookup does
// The image, "registry.example/bench/app:latest" in a memory_transport, is an index of
// linux/amd64 and linux/arm64, each of <layers> gzip layers of 40 small files; the store (root
// in a temporary directory under $TMPDIR, removed at exit) pulls linux/amd64 once, untimed.
// A cached pull takes no lock and makes no transport request (the transport_requests counter
// shows it).
#include "micro_data.hpp"

#include <ocistore/basic_image_store.hpp>
#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/test/memory_transport.hpp>

#include <support/temp_dir.hpp>
#include <support/test_image.hpp>

#include <fcntl.h>

#include <map>
#include <memory>

namespace {

using namespace ocistore_micro;
using ocistore::test::memory_transport;

ocistore::platform const amd64{"linux", "amd64", "", "", {}};
ocistore::platform const arm64{"linux", "arm64", "v8", "", {}};

/// A layer of 40 files of 200 B to 64 KiB (text and binary), gzip-compressed.
ocistore_test::test_layer small_layer(std::uint64_t seed)
{
    rng_type rng(seed);
    ocistore_test::tar_writer w;
    tar_archive a;
    std::vector<std::string> made;
    std::string const dir = "usr/lib/pkg" + std::to_string(seed) + "/";
    add_dirs(w, a, made, dir);
    for (int i = 0; i < 40; ++i) {
        std::size_t const n = log_uniform(rng, 200, 64 << 10);
        add_file(w, a, dir + "f" + std::to_string(i), i % 2 ? text_content(n, rng()) : binary_content(n, rng()),
                 0644, false);
    }
    w.end();
    return {w.str(), ocistore::layer_compression::gzip};
}

/// "bench/app:latest": an index of amd64 and arm64 images of `layers` layers each.
memory_transport make_registry(int layers)
{
    memory_transport t;
    std::vector<std::pair<ocistore_test::test_image, ocistore::platform>> images;
    for (auto const& p : {amd64, arm64}) {
        std::vector<ocistore_test::test_layer> ls;
        for (int i = 0; i < layers; ++i) ls.push_back(small_layer(images.size() * 1000 + static_cast<std::uint64_t>(i)));
        images.emplace_back(ocistore_test::publish_image(t, "bench/app", "", ls, p), p);
    }
    ocistore_test::publish_index(t, "bench/app", "latest", images);
    return t;
}

template <class Builder> Builder make_builder(std::filesystem::path const& root)
{
    if constexpr (std::is_same_v<Builder, ocistore::erofs_builder>) {
        ocistore::erofs_builder_options o;
        o.durable = false;
        return ocistore::erofs_builder(root, o);
    } else {
        return Builder{};
    }
}

/// A store filled once with the image, and what the first pull reported.
template <class Builder> struct cached_store {
    using store_type = ocistore::basic_image_store<memory_transport, ocistore::sha256_hasher, ocistore::flock_lock, Builder>;

    explicit cached_store(int layers)
        : store(dir.path(), make_registry(layers), ocistore::flock_lock(dir / "locks"), make_builder<Builder>(dir.path()),
                ocistore::store_options{.durable = false})
    {
        opts.platform = amd64;
        ocistore::error_code ec;
        first = store.pull(ref, opts, ec, &error);
        if (ec && error.empty()) error = ec.message();
    }

    ocistore_test::temp_dir dir{"ocistore-bench-micro"};
    store_type store;
    ocistore::image_reference ref = ocistore::image_reference::parse("registry.example/bench/app:latest");
    ocistore::pull_options opts;
    ocistore::pull_result first;
    std::string error; ///< why the first pull failed
};

template <class Builder> cached_store<Builder>& fixture(int layers)
{
    static std::map<int, std::unique_ptr<cached_store<Builder>>> stores;
    auto& s = stores[layers];
    if (!s) s = std::make_unique<cached_store<Builder>>(layers);
    return *s;
}

template <class Builder> void cached_pull(benchmark::State& state)
{
    auto& f = fixture<Builder>(static_cast<int>(state.range(0)));
    if (!f.error.empty()) return skip_with(state, "filling the store", f.error);
    std::uint64_t const requests = f.store.transport().requests();
    for (auto _ : state) {
        ocistore::error_code ec;
        std::string why;
        auto r = f.store.pull(f.ref, f.opts, ec, &why);
        if (ec || !r.cached) return skip_with(state, "cached pull", ec ? why : "not answered from the cache");
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["transport_requests"] = static_cast<double>(f.store.transport().requests() - requests);
}

/// Reads a whole file with read(2) and feeds it to sha256; false when it cannot be read.
bool read_and_hash(std::filesystem::path const& path, std::vector<std::byte>& buf)
{
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ocistore::sha256_hasher h;
    ssize_t n = 0;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) h.update(std::span(buf.data(), static_cast<std::size_t>(n)));
    ::close(fd);
    auto d = h.finish();
    benchmark::DoNotOptimize(d);
    return n == 0;
}

void read_and_hash_floor(benchmark::State& state)
{
    auto& f = fixture<ocistore::null_builder>(static_cast<int>(state.range(0)));
    if (!f.error.empty()) return skip_with(state, "filling the store", f.error);
    auto blob = [&](ocistore::digest const& d) {
        return f.dir / "blobs" / std::string(d.algorithm()) / std::string(d.encoded());
    };
    std::vector<std::filesystem::path> const files = {f.dir / "index.json", blob(*f.first.index_digest),
                                                      blob(f.first.manifest_digest), blob(f.first.config_digest)};
    std::vector<std::byte> buf(64 << 10);
    for (auto _ : state)
        for (auto const& p : files)
            if (!read_and_hash(p, buf)) return skip_with(state, "read", p.string());
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void layer_counts(benchmark::internal::Benchmark* b)
{
    b->Arg(1)->Arg(5)->Arg(20)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

} // namespace

void ocistore_micro::register_store_benchmarks()
{
    benchmark::RegisterBenchmark("store/cached_pull/null_builder", cached_pull<ocistore::null_builder>)
        ->Apply(layer_counts);
    benchmark::RegisterBenchmark("store/cached_pull/erofs_builder", cached_pull<ocistore::erofs_builder>)
        ->Apply(layer_counts);
    benchmark::RegisterBenchmark("store/read_and_hash_floor", read_and_hash_floor)->Apply(layer_counts);
}
