// bench_micro tar/: basic_tar_reader over an uncompressed tar held in memory, in entries/s and
// bytes/s of archive.
//
//   tar/<archive>/read        next() and read_data() of every entry into a 1 MiB buffer (as a builder reads)
//   tar/<archive>/skip        next() only: the reader skips the data
//   tar/<archive>/copy_limit  memcpy of the archive through the same buffer: the floor of any reader
// <archive>: small_files (12,000 files of 32 B to 16 KiB, 600 directories, 600 symlinks, every
// tenth file behind a pax header) or large_files (8 files of 16 MiB).
#include "micro_data.hpp"

#include <ocistore/tar_reader.hpp>

namespace {

using namespace ocistore_micro;

using archive_fn = tar_archive const& (*)();

void report(benchmark::State& state, tar_archive const& a)
{
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * a.bytes.size()));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * a.entries));
}

void tar_read(benchmark::State& state, archive_fn archive, bool read_data)
{
    tar_archive const& a = archive();
    std::vector<std::byte> buf(1 << 20);
    for (auto _ : state) {
        memory_source src(a.bytes);
        ocistore::basic_tar_reader<memory_source> reader(src);
        ocistore::tar_entry e;
        ocistore::error_code ec;
        std::string why;
        std::uint64_t entries = 0, data = 0;
        while (reader.next(e, ec, &why)) {
            ++entries;
            if (read_data)
                while (std::size_t const n = reader.read_data(buf, ec, &why)) data += n;
            if (ec) break;
        }
        if (ec) return skip_with(state, "tar reader", why);
        if (entries != a.entries || (read_data && data != a.file_bytes))
            return skip_with(state, "tar reader", "wrong entry count or data size");
    }
    report(state, a);
}

void copy_limit(benchmark::State& state, archive_fn archive)
{
    tar_archive const& a = archive();
    std::vector<std::byte> buf(1 << 20);
    for (auto _ : state) {
        for (std::size_t pos = 0; pos < a.bytes.size(); pos += buf.size()) {
            std::memcpy(buf.data(), a.bytes.data() + pos, std::min(buf.size(), a.bytes.size() - pos));
            benchmark::ClobberMemory();
        }
    }
    report(state, a);
}

} // namespace

void ocistore_micro::register_tar_benchmarks()
{
    for (auto [name, fn] : {std::pair{"small_files", &small_files_tar}, std::pair{"large_files", &large_files_tar}}) {
        std::string const prefix = std::string("tar/") + name;
        benchmark::RegisterBenchmark((prefix + "/read").c_str(), tar_read, fn, true)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark((prefix + "/skip").c_str(), tar_read, fn, false)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark((prefix + "/copy_limit").c_str(), copy_limit, fn)->Unit(benchmark::kMillisecond);
    }
}
