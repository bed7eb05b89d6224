// bench_micro erofs/: EROFS writing into anonymous in-memory files (memfd), so the figures are
// the writers', not a disk's.
//
//   erofs/layer/<archive>             tar reader → erofs_layer_writer → finish(), a fresh memfd per
//                                     iteration; entries/s and bytes/s of tar
//   erofs/layer/<archive>/copy_limit  write(2) of the tar into a fresh memfd: the floor of any writer
//   erofs/fsmeta/<n>                  write_fsmeta() over the first n (1, 5, 10, 20) of 20 layer
//                                     images (built once, ~520 entries each, with overrides,
//                                     whiteouts and opaque directories); entries/s of the layers
// <archive>: the small_files and large_files archives of tar/.
#include "micro_data.hpp"

#include <ocistore/erofs/fsmeta_writer.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/tar_reader.hpp>

#include <cerrno>

namespace {

using namespace ocistore_micro;

using archive_fn = tar_archive const& (*)();

/// Writes archive `a` as an EROFS layer image onto `fd`; false with `why` on failure.
bool write_layer(tar_archive const& a, int fd, std::string& why)
{
    memory_source src(a.bytes);
    ocistore::basic_tar_reader<memory_source> reader(src);
    ocistore::erofs_layer_writer w(fd);
    ocistore::tar_entry e;
    ocistore::error_code ec;
    while (reader.next(e, ec, &why)) {
        w.add_entry(e, ocistore::byte_source_ref(reader), ec, &why);
        if (ec) return false;
    }
    if (ec) return false;
    w.finish(ec, &why);
    return !ec;
}

void layer(benchmark::State& state, archive_fn archive)
{
    tar_archive const& a = archive();
    std::uint64_t image = 0;
    for (auto _ : state) {
        memfd out;
        std::string why;
        if (!write_layer(a, out.get(), why)) return skip_with(state, "erofs_layer_writer", why);
        image = out.size();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * a.bytes.size()));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * a.entries));
    state.counters["image_MiB"] = static_cast<double>(image) / (1 << 20);
}

void layer_copy_limit(benchmark::State& state, archive_fn archive)
{
    tar_archive const& a = archive();
    for (auto _ : state) {
        memfd out;
        for (std::size_t pos = 0; pos < a.bytes.size();) {
            ssize_t const n = ::write(out.get(), a.bytes.data() + pos, std::min<std::size_t>(a.bytes.size() - pos, 1 << 20));
            if (n <= 0) return skip_with(state, "write", std::strerror(errno));
            pos += static_cast<std::size_t>(n);
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * a.bytes.size()));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * a.entries));
}

/// Layer k of the fsmeta stack: files over a shared /usr/lib tree (later layers override
/// earlier files), whiteouts of lower files, an opaque directory every fifth layer, and a
/// directory of its own.
tar_archive make_stack_layer(int k)
{
    rng_type rng(1000u + static_cast<unsigned>(k));
    ocistore_test::tar_writer w;
    tar_archive a;
    std::vector<std::string> made;
    auto pkg = [](int p) { return "usr/lib/pkg" + std::to_string(p % 60) + "/"; };
    for (int j = 0; j < 400; ++j) {
        std::string const dir = pkg(k * 13 + j / 20);
        add_dirs(w, a, made, dir);
        add_file(w, a, dir + "file" + std::to_string(j % 20) + ".so",
                 text_content(log_uniform(rng, 100, 4096), rng()), 0644, false);
    }
    if (k > 0) {
        std::string const dir = pkg(k * 13 + 25);
        add_dirs(w, a, made, dir);
        for (int j = 0; j < 10; ++j) {
            w.file(dir + ".wh.file" + std::to_string(j) + ".so", "");
            ++a.entries;
        }
    }
    if (k > 0 && k % 5 == 0) {
        std::string const dir = pkg(k * 13 + 40);
        add_dirs(w, a, made, dir);
        w.file(dir + ".wh..wh..opq", "");
        ++a.entries;
    }
    std::string const own = "opt/layer" + std::to_string(k) + "/";
    add_dirs(w, a, made, own);
    for (int j = 0; j < 50; ++j)
        add_file(w, a, own + "data" + std::to_string(j), binary_content(log_uniform(rng, 100, 8192), rng()), 0644,
                 false);
    w.end();
    a.bytes = w.str();
    return a;
}

/// Twenty layer images in memfds, with a reader and a tag each.
struct layer_stack {
    std::vector<memfd> files;
    std::vector<ocistore::erofs_image_reader> readers;
    std::vector<std::string> tags;
    std::vector<std::uint64_t> entries;
    std::string error;
};

layer_stack const& stack()
{
    static layer_stack const s = [] {
        layer_stack out;
        for (int k = 0; k < 20 && out.error.empty(); ++k) {
            tar_archive const a = make_stack_layer(k);
            memfd f;
            std::string why;
            bool ok = write_layer(a, f.get(), why);
            if (ok) {
                ocistore::error_code ec;
                auto reader = ocistore::erofs_image_reader::from_fd(f.get(), ec, &why);
                if (ec) ok = false;
                else out.readers.push_back(std::move(reader));
            }
            if (!ok) out.error = "layer " + std::to_string(k) + ": " + why;
            out.files.push_back(std::move(f));
            out.tags.push_back("layer" + std::to_string(k));
            out.entries.push_back(a.entries);
        }
        return out;
    }();
    return s;
}

void fsmeta(benchmark::State& state)
{
    layer_stack const& s = stack();
    if (!s.error.empty()) return skip_with(state, "building the layers", s.error);
    auto const n = static_cast<std::size_t>(state.range(0));
    std::span const readers(s.readers.data(), n);
    std::span const tags(s.tags.data(), n);
    std::uint64_t entries = 0;
    for (std::size_t i = 0; i < n; ++i) entries += s.entries[i];
    ocistore::fsmeta_result r;
    std::uint64_t bytes = 0;
    for (auto _ : state) {
        memfd out;
        ocistore::error_code ec;
        std::string why;
        r = ocistore::write_fsmeta(out.get(), readers, tags, {}, ec, &why);
        if (ec) return skip_with(state, "write_fsmeta", why);
        bytes = out.size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * entries));
    state.counters["inodes"] = static_cast<double>(r.inodes);
    state.counters["fsmeta_KiB"] = static_cast<double>(bytes) / 1024;
}

} // namespace

void ocistore_micro::register_erofs_benchmarks()
{
    for (auto [name, fn] : {std::pair{"small_files", &small_files_tar}, std::pair{"large_files", &large_files_tar}}) {
        std::string const prefix = std::string("erofs/layer/") + name;
        benchmark::RegisterBenchmark(prefix.c_str(), layer, fn)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark((prefix + "/copy_limit").c_str(), layer_copy_limit, fn)
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark("erofs/fsmeta", fsmeta)->Arg(1)->Arg(5)->Arg(10)->Arg(20)->Unit(benchmark::kMillisecond);
}
