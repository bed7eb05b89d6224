// Fuzz target: basic_tar_reader over the input as an in-memory tar stream, every entry and all
// of its data drained.
//
// The input is read as it is and, when that differs, with every header checksum corrected
// (with_fixed_checksums), so that mutations get past the checksum check. Each stream is read
// twice: in one piece with 64 KiB data reads (the reader's direct path), and in chunks of at
// most 7 bytes with 100-byte data reads (every buffering boundary). Invariants: both readings
// return the same entries, data and outcome; every entry satisfies check_entry(); a regular
// file yields exactly its size in data, other entries none; the total stays within the limits;
// a failure is one of the reader's codes with a reason and is sticky.
#include <ocistore/tar_reader.hpp>

#include "fuzz_tar.hpp"

#include <support/memory_source.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace {

using ocistore_test::fuzz::describe;

struct outcome {
    std::vector<ocistore::tar_entry> entries;
    std::vector<std::uint64_t> data_hashes;
    ocistore::error_code ec;
    std::string why;
    bool end_marker = false;
};

outcome read_all(std::string_view bytes, std::size_t chunk, std::size_t read_size)
{
    ocistore_test::memory_source src(bytes, chunk);
    auto const limits = ocistore_fuzz::fuzz_limits();
    ocistore::basic_tar_reader<ocistore_test::memory_source> reader(src, limits);
    std::vector<std::byte> buf(read_size);
    outcome out;
    ocistore::tar_entry e;
    std::uint64_t total = 0;
    while (reader.next(e, out.ec, &out.why)) {
        ocistore_fuzz::check_entry(e, limits);
        std::uint64_t got = 0, h = ocistore_test::fuzz::fnv1a({});
        for (;;) {
            std::size_t const n = reader.read_data(buf, out.ec, &out.why);
            if (out.ec || n == 0) break;
            OCISTORE_FUZZ_CHECK(n <= buf.size(), "read_data overran its buffer");
            h = ocistore_test::fuzz::fnv1a(std::string_view(reinterpret_cast<char const*>(buf.data()), n), h);
            got += n;
        }
        if (out.ec) break;
        OCISTORE_FUZZ_CHECK(got == e.size, "entry " + ocistore_test::fuzz::printable(e.path) + ": read " +
                                               std::to_string(got) + " bytes of " + std::to_string(e.size));
        total += e.size;
        OCISTORE_FUZZ_CHECK(total <= limits.max_total_size, "total size over the limit");
        out.entries.push_back(e);
        out.data_hashes.push_back(h);
        OCISTORE_FUZZ_CHECK(reader.entries_read() == out.entries.size(), "entries_read()");
    }
    if (out.ec) {
        OCISTORE_FUZZ_CHECK(ocistore_fuzz::is_tar_failure(out.ec), describe(out.ec) + ": " + out.why);
        OCISTORE_FUZZ_CHECK(!out.why.empty(), "no reason for " + describe(out.ec));
        ocistore::error_code again;
        std::string why;
        OCISTORE_FUZZ_CHECK(!reader.next(e, again, &why) && again == out.ec && why == out.why,
                            "failure is not sticky: " + describe(again));
        return out;
    }
    OCISTORE_FUZZ_CHECK(reader.offset() <= bytes.size(), "offset beyond the stream");
    out.end_marker = reader.end_marker_seen();
    std::uint64_t const rest = reader.drain(out.ec, &out.why);
    OCISTORE_FUZZ_CHECK(!out.ec && reader.offset() == bytes.size() && rest <= bytes.size(), "drain: " + out.why);
    OCISTORE_FUZZ_CHECK(!reader.next(e, out.ec) && !out.ec, "an entry after drain()");
    return out;
}

void check(std::string_view bytes)
{
    outcome const whole = read_all(bytes, std::numeric_limits<std::size_t>::max(), 64 * 1024);
    outcome const chunked = read_all(bytes, 7, 100);
    OCISTORE_FUZZ_CHECK(whole.ec == chunked.ec,
                        "outcome depends on chunking: " + describe(whole.ec) + " " + whole.why + " / " +
                            describe(chunked.ec) + " " + chunked.why);
    OCISTORE_FUZZ_CHECK(whole.entries.size() == chunked.entries.size() && whole.data_hashes == chunked.data_hashes &&
                            whole.end_marker == chunked.end_marker,
                        "entries or data depend on chunking");
    for (std::size_t i = 0; i < whole.entries.size(); ++i) {
        auto const& a = whole.entries[i];
        auto const& b = chunked.entries[i];
        OCISTORE_FUZZ_CHECK(a.path == b.path && a.type == b.type && a.mode == b.mode && a.uid == b.uid &&
                                a.gid == b.gid && a.uname == b.uname && a.gname == b.gname && a.mtime == b.mtime &&
                                a.mtime_nsec == b.mtime_nsec && a.size == b.size && a.link_target == b.link_target &&
                                a.devmajor == b.devmajor && a.devminor == b.devminor && a.xattrs == b.xattrs &&
                                a.sparse == b.sparse && a.sparse_map == b.sparse_map,
                            "entry " + std::to_string(i) + " depends on chunking");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const bytes = ocistore_test::fuzz::as_text(data, size);
    check(bytes);
    std::string const fixed = ocistore_fuzz::with_fixed_checksums(bytes);
    if (fixed != bytes) check(fixed);
    return 0;
}
