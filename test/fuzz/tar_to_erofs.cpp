// Fuzz target: the input as a layer tar, its header checksums corrected (with_fixed_checksums;
// the tar_reader target covers the check itself), read by basic_tar_reader and written by
// erofs_layer_writer into an in-memory file (memfd); every image the writer finishes is read
// back whole with erofs_image_reader.
//
// Invariants: the writer fails only with its documented codes; a finished image opens, its
// block count is the layer_data_map's, and a walk reaches every inode, directory entry, xattr,
// symlink target and data byte without a single reader error (any is a writer bug: abort). The
// regular files reached are exactly the map's, at the map's blocks and sizes, holding the bytes
// the writer consumed for them with their entry's mode, owner, mtime and storable xattrs; a
// non-directory's nlink is the number of names it is reached by; NID 0, when the root is
// elsewhere, is the implicit-directory record listing directories.
//
// With OCISTORE_FUZZ_FSCK=1 in the environment, fsck.erofs (erofs-utils) also checks every
// finished image (slow: for corpus replay, not for fuzzing).
#include <ocistore/detail/erofs_metadata.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/tar_reader.hpp>

#include "fuzz_tar.hpp"

#include <support/memory_source.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

using ocistore::error;
using ocistore::error_code;
using ocistore_test::fuzz::describe;
using ocistore_test::fuzz::printable;
namespace erofs = ocistore::erofs;

/// A *ByteSource* that counts and hashes what its reader pulls through it.
struct hashing_source {
    ocistore::byte_source_ref inner;
    std::uint64_t hash = ocistore_test::fuzz::fnv1a({});
    std::uint64_t bytes = 0;

    std::size_t read_some(std::span<std::byte> buf, error_code& ec)
    {
        std::size_t const n = inner.read_some(buf, ec);
        if (!ec) {
            hash = ocistore_test::fuzz::fnv1a(std::string_view(reinterpret_cast<char const*>(buf.data()), n), hash);
            bytes += n;
        }
        return n;
    }
};

/// A memfd closed on destruction.
struct memory_file {
    int fd = ::memfd_create("ocistore-fuzz-erofs", MFD_CLOEXEC);
    memory_file()
    {
        if (fd < 0) {
            std::perror("memfd_create");
            std::abort();
        }
    }
    memory_file(memory_file const&) = delete;
    memory_file& operator=(memory_file const&) = delete;
    ~memory_file() { ::close(fd); }
};

/// One regular file the writer put data blocks in: its entry's metadata and what it consumed.
struct written_data {
    std::uint64_t size = 0;
    std::uint64_t hash = 0;
    std::uint32_t mode = 0;
    std::uint64_t uid = 0, gid = 0;
    std::int64_t mtime = 0;
    std::uint32_t mtime_nsec = 0;
    std::vector<std::pair<std::string, std::string>> xattrs; ///< those EROFS can hold, sorted
};

written_data describe_entry(ocistore::tar_entry const& e, std::uint64_t hash)
{
    written_data w{e.size, hash, e.mode, e.uid, e.gid, e.mtime, e.mtime_nsec, {}};
    for (auto const& x : e.xattrs)
        if (erofs::split_xattr_name(x.name) && x.value.size() <= 0xFFFF) w.xattrs.emplace_back(x.name, x.value);
    std::sort(w.xattrs.begin(), w.xattrs.end());
    return w;
}

void fsck(int fd)
{
    std::string const cmd =
        "fsck.erofs /proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd) + " >/dev/null 2>&1";
    int const rc = std::system(cmd.c_str());
    OCISTORE_FUZZ_CHECK(rc == 0, "fsck.erofs rejects the image: " + cmd);
}

void check_image(int fd, ocistore::layer_data_map const& map, std::map<std::uint32_t, written_data> const& data)
{
    error_code ec;
    std::string why;
    auto const r = ocistore::erofs_image_reader::from_fd(fd, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "the writer's image does not open: " + describe(ec) + ": " + why);
    OCISTORE_FUZZ_CHECK(r.info().blocks == map.total_blocks, "superblock says " + std::to_string(r.info().blocks) +
                                                                 " blocks, the writer " +
                                                                 std::to_string(map.total_blocks));

    std::map<std::string, std::uint64_t> regular_seen; // path -> size
    std::map<std::uint64_t, std::pair<std::uint32_t, std::uint32_t>> names; // nid -> (names, nlink)
    std::vector<std::byte> buf(64 * 1024);
    r.walk(
        [&](std::string_view path, ocistore::erofs_inode_info const& n, error_code& vec) {
            std::string const p(path);
            for (auto const& [name, value] : n.xattrs)
                OCISTORE_FUZZ_CHECK(!name.empty(), "inode " + printable(p) + ": xattr without a name");
            if (!n.is_dir()) {
                auto& [count, nlink] = names[n.nid];
                ++count;
                nlink = n.nlink;
            }
            if (n.is_symlink()) {
                std::string why2;
                r.read_link(n, vec, &why2);
                OCISTORE_FUZZ_CHECK(!vec, "symlink " + printable(p) + ": " + describe(vec) + ": " + why2);
                return;
            }
            if (!n.is_regular()) return;
            auto const it = map.files.find(p);
            OCISTORE_FUZZ_CHECK(it != map.files.end(), "regular file " + printable(p) + " missing from the data map");
            OCISTORE_FUZZ_CHECK(it->second.size == n.size, "file " + printable(p) + ": size " + std::to_string(n.size) +
                                                               ", the map says " + std::to_string(it->second.size));
            regular_seen.emplace(p, n.size);
            std::uint64_t h = ocistore_test::fuzz::fnv1a({}), off = 0;
            while (off < n.size) {
                std::size_t const got = r.read(n, off, buf, vec);
                OCISTORE_FUZZ_CHECK(!vec && got > 0, "file " + printable(p) + ": reading at " + std::to_string(off) +
                                                         ": " + describe(vec));
                h = ocistore_test::fuzz::fnv1a(std::string_view(reinterpret_cast<char const*>(buf.data()), got), h);
                off += got;
            }
            OCISTORE_FUZZ_CHECK(off == n.size, "file " + printable(p) + ": read past its size");
            if (it->second.start_block == erofs::null_addr) {
                OCISTORE_FUZZ_CHECK(n.size == 0, "file " + printable(p) + " has data but no block");
                return;
            }
            OCISTORE_FUZZ_CHECK(n.layout == erofs::data_layout::flat_plain && n.raw_blkaddr == it->second.start_block,
                                "file " + printable(p) + ": not at its mapped block " +
                                    std::to_string(it->second.start_block));
            auto const w = data.find(it->second.start_block);
            OCISTORE_FUZZ_CHECK(w != data.end() && w->second.size == n.size && w->second.hash == h,
                                "file " + printable(p) + ": the bytes read back are not those written at block " +
                                    std::to_string(it->second.start_block));
            auto xattrs = n.xattrs;
            std::sort(xattrs.begin(), xattrs.end());
            OCISTORE_FUZZ_CHECK((n.mode & 07777) == w->second.mode && n.uid == w->second.uid &&
                                    n.gid == w->second.gid && n.mtime == w->second.mtime &&
                                    n.mtime_nsec == w->second.mtime_nsec,
                                "file " + printable(p) + ": mode " + std::to_string(n.mode & 07777) + " uid " +
                                    std::to_string(n.uid) + " gid " + std::to_string(n.gid) + " mtime " +
                                    std::to_string(n.mtime) + "." + std::to_string(n.mtime_nsec) +
                                    " read back, the entry had " + std::to_string(w->second.mode) + " " +
                                    std::to_string(w->second.uid) + " " + std::to_string(w->second.gid) + " " +
                                    std::to_string(w->second.mtime) + "." + std::to_string(w->second.mtime_nsec));
            OCISTORE_FUZZ_CHECK(xattrs == w->second.xattrs, "file " + printable(p) + ": xattrs differ from the entry's");
        },
        ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "walking the writer's image: " + describe(ec) + ": " + why);
    OCISTORE_FUZZ_CHECK(regular_seen.size() == map.files.size(),
                        "the walk reached " + std::to_string(regular_seen.size()) + " regular files, the map has " +
                            std::to_string(map.files.size()));
    for (auto const& [nid, c] : names)
        OCISTORE_FUZZ_CHECK(c.first == c.second, "nid " + std::to_string(nid) + " has nlink " +
                                                     std::to_string(c.second) + " but " + std::to_string(c.first) +
                                                     " names");

    if (r.info().root_nid != 0) {
        auto const record = r.inode(0, ec, &why);
        OCISTORE_FUZZ_CHECK(!ec && record.is_regular(), "NID 0: " + describe(ec) + ": " + why);
        OCISTORE_FUZZ_CHECK(record.size <= buf.size(), "NID 0: an implicit-directory record of " +
                                                           std::to_string(record.size) + " bytes");
        std::size_t const got = r.read(record, 0, std::span(buf).first(record.size), ec);
        OCISTORE_FUZZ_CHECK(!ec && got == record.size, "NID 0: " + describe(ec));
        std::vector<std::uint64_t> nids;
        OCISTORE_FUZZ_CHECK(ocistore::detail::erofs_meta::parse_implicit_record(std::span(buf).first(got), nids),
                            "NID 0 is not an implicit-directory record");
        for (std::uint64_t nid : nids) {
            auto const d = r.inode(nid, ec, &why);
            OCISTORE_FUZZ_CHECK(!ec && d.is_dir(), "implicit directory nid " + std::to_string(nid) + ": " + why);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* input, std::size_t size)
{
    std::string const bytes = ocistore_fuzz::with_fixed_checksums(ocistore_test::fuzz::as_text(input, size));
    ocistore_test::memory_source src(bytes);
    ocistore::basic_tar_reader<ocistore_test::memory_source> reader(src, ocistore_fuzz::fuzz_limits());
    memory_file file;
    ocistore::erofs_layer_writer writer(file.fd);

    std::map<std::uint32_t, written_data> data; // first block -> what the writer consumed there
    std::uint64_t next_block = 1;
    error_code ec;
    std::string why;
    ocistore::tar_entry e;
    while (reader.next(e, ec, &why)) {
        hashing_source h{reader};
        writer.add_entry(e, h, ec, &why);
        if (ec) {
            OCISTORE_FUZZ_CHECK(ocistore_fuzz::is_tar_failure(ec), "add_entry: " + describe(ec) + ": " + why);
            OCISTORE_FUZZ_CHECK(!why.empty(), "add_entry: no reason for " + describe(ec));
            error_code again;
            writer.finish(again);
            OCISTORE_FUZZ_CHECK(again == ec, "a failed writer finishes with " + describe(again));
            return 0;
        }
        OCISTORE_FUZZ_CHECK(h.bytes == 0 || h.bytes == e.size,
                            "add_entry consumed " + std::to_string(h.bytes) + " of " + std::to_string(e.size) +
                                " bytes of " + printable(e.path));
        if (h.bytes > 0) {
            data[static_cast<std::uint32_t>(next_block)] = describe_entry(e, h.hash);
            next_block += (e.size + erofs::block_size - 1) / erofs::block_size;
        }
    }
    if (ec) return 0; // a malformed tar: the store never finishes such a layer

    auto const map = writer.finish(ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::limit_exceeded || ec == error::unsupported_entry,
                            "finish: " + describe(ec) + ": " + why);
        return 0;
    }
    for (auto const& w : writer.warnings())
        OCISTORE_FUZZ_CHECK(!w.message.empty(), "a warning without a message");
    check_image(file.fd, map, data);
    if (char const* v = std::getenv("OCISTORE_FUZZ_FSCK"); v && std::string_view(v) == "1") fsck(file.fd);
    return 0;
}
