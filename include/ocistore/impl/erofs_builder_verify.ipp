// Non-template bodies for ocistore/builder/erofs_builder.hpp: the verify hooks (verifiable_artifact_builder).
#pragma once

#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/impl/erofs_builder.ipp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/safe_fs.hpp>
#include <ocistore/erofs/fsmeta_writer.hpp>
#include <ocistore/erofs/image_reader.hpp>
#include <ocistore/erofs/layer_writer.hpp>
#include <ocistore/erofs/vmdk.hpp>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {
namespace detail::erofs_verify_impl {

namespace sfs = detail::safe_fs;
namespace bi = detail::erofs_builder_impl;

inline constexpr std::uint64_t block_size = 4096;

/// An unnamed scratch file: a memfd, else an O_TMPFILE file in `work`. Errno on failure.
inline sfs::unique_fd scratch_file(std::filesystem::path const& work, error_code& ec)
{
    ec.clear();
    sfs::unique_fd fd(::memfd_create("ocistore-verify", MFD_CLOEXEC));
    if (fd) return fd;
    std::error_code fec;
    std::filesystem::create_directories(work, fec);
    fd.reset(::open(work.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) ec = sfs::errno_code(errno);
    return fd;
}

/** Opens the image at `path` as check_image() does, with a reason: empty with `verdict` and
    `why` set when it is not a valid image (a missing file is error::not_found), with `ec`
    set on an I/O failure. */
inline std::optional<bi::checked_image> open_image(std::filesystem::path const& path, bool layer, error_code& ec,
                                                   error_code& verdict, std::string& why)
{
    ec.clear();
    verdict.clear();
    auto bad = [&](error_code e, std::string reason) {
        verdict = e;
        why = std::move(reason);
        return std::nullopt;
    };
    bi::checked_image out;
    out.fd.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!out.fd) {
        int const e = errno;
        if (e == ENOENT || e == ENOTDIR) return bad(make_error_code(error::not_found), "is missing");
        if (e == ELOOP) return bad(make_error_code(error::unsafe_path), "is a symbolic link");
        ec = sfs::errno_code(e);
        return std::nullopt;
    }
    struct ::stat st;
    if (::fstat(out.fd.get(), &st) != 0) {
        ec = sfs::errno_code(errno);
        return std::nullopt;
    }
    auto const size = static_cast<std::uint64_t>(st.st_size);
    if (!S_ISREG(st.st_mode)) return bad(make_error_code(error::invalid_argument), "is not a regular file");
    if (size < block_size || size % block_size != 0)
        return bad(make_error_code(error::truncated),
                   "is " + std::to_string(size) + " bytes, not a whole number of 4096-byte blocks");
    error_code rec;
    std::string rwhy;
    out.reader = erofs_image_reader::from_fd(out.fd.get(), rec, &rwhy);
    if (rec) {
        if (bi::is_io_error(rec)) return ec = rec, std::nullopt;
        return bad(rec, rwhy.empty() ? rec.message() : rwhy);
    }
    auto const& info = out.reader.info();
    if (std::uint64_t(info.blocks) * block_size != size)
        return bad(make_error_code(error::size_mismatch), "is " + std::to_string(size) + " bytes, its superblock says " +
                                                              std::to_string(info.blocks) + " blocks");
    if (layer && (!info.devices.empty() || (info.feature_incompat & erofs_incompat_device_table) != 0))
        return bad(make_error_code(error::invalid_archive), "has a device table, which no layer image has");
    auto root = out.reader.inode(info.root_nid, rec, &rwhy);
    if (rec) {
        if (bi::is_io_error(rec)) return ec = rec, std::nullopt;
        return bad(rec, "root inode: " + (rwhy.empty() ? rec.message() : rwhy));
    }
    if (!root.is_dir()) return bad(make_error_code(error::invalid_archive), "has a root inode that is not a directory");
    out.blocks = info.blocks;
    return out;
}

/** Compares an image being written to the file `produced` with the held image `held`: the
    part written so far beyond block 0 as it grows (advance()), then the rest and block 0
    (finish()). Compared pages of `produced` are released, so a memory file stays small. */
class image_comparer {
public:
    image_comparer(int produced, int held, std::uint64_t held_size)
        : produced_(produced), held_(held), held_size_(held_size)
    {
    }

    /// Compares what `produced` holds beyond the compared part (block 0 excepted).
    void advance(error_code& ec)
    {
        auto const size = produced_size(ec);
        if (ec || size <= done_) return;
        compare(done_, size, ec);
        if (ec) return;
        done_ = size;
        release();
    }

    /// Compares the rest, then block 0, then the lengths.
    void finish(error_code& ec)
    {
        auto const size = produced_size(ec);
        if (ec) return;
        if (size > done_) compare(done_, size, ec);
        if (!ec) compare(0, std::min(block_size, size), ec);
        if (ec) return;
        done_ = std::max(done_, size);
        total_ = size;
        if (size != held_size_) note(std::min(size, held_size_));
    }

    /// The first byte at which the two differ (after finish(): lengths included), if any.
    std::optional<std::uint64_t> difference() const noexcept { return first_; }
    /// Length of the produced image (after finish()).
    std::uint64_t produced_total() const noexcept { return total_; }
    /// Bytes of the held image read.
    std::uint64_t bytes_read() const noexcept { return read_; }

private:
    std::uint64_t produced_size(error_code& ec) const
    {
        struct ::stat st;
        if (::fstat(produced_, &st) != 0) return ec = sfs::errno_code(errno), 0;
        return static_cast<std::uint64_t>(st.st_size);
    }

    void note(std::uint64_t at) noexcept
    {
        if (!first_ || at < *first_) first_ = at;
    }

    /// Compares [from, to) of both files; stops at the first difference.
    void compare(std::uint64_t from, std::uint64_t to, error_code& ec)
    {
        if (first_) to = std::min(to, *first_);
        while (from < to) {
            std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(a_.size(), to - from));
            std::size_t const got_a = read_at(produced_, a_.data(), want, from, ec);
            if (ec) return;
            std::size_t const got_b = read_at(held_, b_.data(), want, from, ec);
            if (ec) return;
            read_ += got_b;
            std::size_t const n = std::min(got_a, got_b);
            auto const mismatch = std::mismatch(a_.begin(), a_.begin() + static_cast<std::ptrdiff_t>(n), b_.begin());
            if (mismatch.first != a_.begin() + static_cast<std::ptrdiff_t>(n))
                return note(from + static_cast<std::uint64_t>(mismatch.first - a_.begin()));
            if (got_a != got_b) return note(from + n); // one of them ends here
            if (n == 0) return;
            from += n;
        }
    }

    static std::size_t read_at(int fd, std::byte* out, std::size_t want, std::uint64_t offset, error_code& ec)
    {
        std::size_t done = 0;
        while (done < want) {
            ssize_t const n = ::pread(fd, out + done, want - done, static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                ec = sfs::errno_code(errno);
                return done;
            }
            if (n == 0) break;
            done += static_cast<std::size_t>(n);
        }
        return done;
    }

    /// Frees the compared whole pages of `produced` (beyond block 0) once a few MiB have gathered.
    void release() noexcept
    {
        std::uint64_t const upto = done_ / block_size * block_size;
        if (upto < released_ + (std::uint64_t(4) << 20)) return;
        (void)::fallocate(produced_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(released_),
                          static_cast<off_t>(upto - released_));
        released_ = upto;
    }

    int produced_;
    int held_;
    std::uint64_t held_size_;
    std::uint64_t done_ = block_size;     ///< compared beyond block 0 up to here
    std::uint64_t released_ = block_size; ///< pages of `produced` below this (beyond block 0) are freed
    std::uint64_t total_ = 0;
    std::uint64_t read_ = 0;
    std::optional<std::uint64_t> first_;
    std::vector<std::byte> a_ = std::vector<std::byte>(64 * 1024);
    std::vector<std::byte> b_ = std::vector<std::byte>(64 * 1024);
};

/** Where byte `at` of an image lies: "at byte N (block B, <part>)", the part named from the
    re-derived image's superblock and, for a layer, its data map. */
inline std::string describe_offset(std::uint64_t at, int derived_fd, layer_data_map const* map)
{
    std::uint64_t const block = at / block_size;
    std::string out = "at byte " + std::to_string(at) + " (block " + std::to_string(block);
    if (block == 0) return out + ", the superblock)";
    error_code ec;
    auto const derived = erofs_image_reader::from_fd(derived_fd, ec);
    if (ec) return out + ")";
    if (!map || block >= derived.info().meta_blkaddr) return out + ", metadata: inodes, directories, xattrs)";
    for (auto const& [path, extent] : map->files) {
        if (extent.start_block == erofs::null_addr) continue;
        std::uint64_t const blocks = (extent.size + block_size - 1) / block_size;
        if (block >= extent.start_block && block < extent.start_block + blocks)
            return out + ", data of \"" + path + "\")";
    }
    return out + ", file data)";
}

/// The first line where two texts differ: "line N: \"held\" instead of \"expected\"".
inline std::string first_line_difference(std::string_view held, std::string_view expected)
{
    std::size_t line = 1, pos = 0;
    for (;;) {
        auto const a_end = held.find('\n', pos), b_end = expected.find('\n', pos);
        std::string_view const a = held.substr(pos, a_end == std::string_view::npos ? std::string_view::npos : a_end - pos);
        std::string_view const b =
            expected.substr(std::min(pos, expected.size()), b_end == std::string_view::npos ? std::string_view::npos : b_end - pos);
        if (a != b || a_end != b_end)
            return "line " + std::to_string(line) + ": \"" + std::string(a.substr(0, 120)) + "\" instead of \"" +
                   std::string(b.substr(0, 120)) + "\"";
        if (a_end == std::string_view::npos) return "in its length";
        pos = a_end + 1;
        ++line;
    }
}

} // namespace detail::erofs_verify_impl

OCISTORE_DECL artifact_check erofs_builder::verify_layer(digest const& diff_id, layer_replay const& replay, error_code& ec)
{
    namespace vi = detail::erofs_verify_impl;
    namespace bi = detail::erofs_builder_impl;
    ec.clear();
    artifact_check out;
    if (diff_id.empty()) return out;
    std::filesystem::path const path = layer_path(diff_id);
    auto found = [&](error_code const& e, std::string reason) {
        out.findings.push_back(verify_finding{verify_kind::layer_artifact, path, diff_id.str(), e, "layer image " + reason, {}, false});
        return out;
    };
    struct ::stat st;
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) ec = vi::sfs::errno_code(errno);
        return out;
    }
    ++out.checked;
    error_code verdict;
    std::string why;
    auto held = vi::open_image(path, true, ec, verdict, why);
    if (ec) return out;
    if (!held) return found(verdict, why);

    if (replay) {
        // Made on the first entry: a layer without a source needs no scratch file.
        vi::sfs::unique_fd scratch;
        std::optional<erofs_layer_writer> writer;
        std::optional<vi::image_comparer> cmp;
        error_code own; // a failure of the writer or of the comparison, as opposed to the source's
        auto start = [&](error_code& sec) {
            scratch = vi::scratch_file(config_->work, sec);
            if (sec) return;
            erofs_layer_options lo;
            lo.uuid_seed = diff_id.bytes();
            writer.emplace(scratch.get(), std::move(lo));
            cmp.emplace(scratch.get(), held->fd.get(), static_cast<std::uint64_t>(st.st_size));
        };
        layer_entry_fn const add = [&](tar_entry const& e, byte_source_ref data, error_code& aec, std::string* awhy) {
            aec.clear();
            if (!writer) start(aec);
            if (!aec) writer->add_entry(e, data, aec, awhy);
            if (!aec) cmp->advance(aec);
            if (aec) own = aec;
        };
        error_code rec;
        std::string rwhy;
        bool const ran = replay(add, rec, &rwhy);
        if (ran && !rec) {
            if (!writer) start(own); // a layer of no entries
            std::string fwhy;
            layer_data_map map;
            if (!own) map = writer->finish(own, &fwhy);
            if (!own) cmp->finish(own);
            if (own) return ec = own, out;
            out.bytes += cmp->bytes_read();
            out.rederived = true;
            if (auto const at = cmp->difference())
                return found(make_error_code(error::digest_mismatch),
                             "differs from the image re-derived from its layer blob " + vi::describe_offset(*at, scratch.get(), &map) +
                                 (cmp->produced_total() != static_cast<std::uint64_t>(st.st_size)
                                      ? "; it is " + std::to_string(st.st_size) + " bytes, the re-derived one " +
                                            std::to_string(cmp->produced_total())
                                      : std::string()));
            return out;
        }
        if (own && bi::is_io_error(own)) return ec = own, out;
        // No source, or it failed (the store reports a damaged blob): check the structure only.
    }
    error_code wec;
    std::string wwhy;
    held->reader.walk([](std::string_view, erofs_inode_info const&, error_code&) {}, wec, &wwhy);
    if (wec) {
        if (bi::is_io_error(wec)) return ec = wec, out;
        return found(wec, "is damaged: " + (wwhy.empty() ? wec.message() : wwhy));
    }
    return out;
}

OCISTORE_DECL artifact_check erofs_builder::verify_image(digest const& key, std::span<verified_layer const> layers,
                                                         error_code& ec)
{
    namespace vi = detail::erofs_verify_impl;
    namespace bi = detail::erofs_builder_impl;
    ec.clear();
    artifact_check out;
    if (key.empty()) return out;
    std::filesystem::path const fsmeta_file = fsmeta_path(key), vmdk_file = vmdk_path(key);
    auto exists = [&](std::filesystem::path const& p) {
        struct ::stat st;
        if (::lstat(p.c_str(), &st) == 0) return true;
        if (errno != ENOENT && !ec) ec = vi::sfs::errno_code(errno);
        return false;
    };
    bool const has_fsmeta = exists(fsmeta_file), has_vmdk = exists(vmdk_file);
    if (ec || (!has_fsmeta && !has_vmdk)) return out;
    auto found = [&](std::filesystem::path const& p, error_code const& e, std::string reason) {
        out.findings.push_back(verify_finding{verify_kind::image_artifact, p, key.str(), e, std::move(reason), {}, false});
    };

    // The layer images as they are now (one damaged in this run may have been evicted).
    bool all_intact = true;
    for (auto const& l : layers) all_intact = all_intact && l.intact;
    bool layers_here = true;
    std::vector<layer_result> held_layers;
    std::vector<vi::sfs::unique_fd> fds;
    std::vector<erofs_image_reader> readers;
    std::vector<std::string> tags;
    for (auto const& l : layers) {
        auto h = bi::check_image(layer_path(l.diff_id), true, ec);
        if (ec) return out;
        if (!h) {
            layers_here = false;
            break;
        }
        held_layers.push_back(layer_result{l.diff_id, layer_path(l.diff_id), h->blocks});
        tags.push_back(layer_tag(l.diff_id));
        fds.push_back(std::move(h->fd));
        readers.push_back(std::move(h->reader));
    }

    std::optional<std::uint32_t> fsmeta_blocks;
    if (has_fsmeta) {
        ++out.checked;
        error_code verdict;
        std::string why;
        auto held = vi::open_image(fsmeta_file, false, ec, verdict, why);
        if (ec) return out;
        if (!held) {
            found(fsmeta_file, verdict, "fsmeta " + why);
        } else if (all_intact && layers_here) {
            auto scratch = vi::scratch_file(config_->work, ec);
            if (ec) return out;
            fsmeta_options fo;
            fo.uuid_seed = key.bytes();
            error_code wec;
            std::string wwhy;
            fsmeta_result const written = write_fsmeta(scratch.get(), std::span<erofs_image_reader const>(readers),
                                                       std::span<std::string const>(tags), fo, wec, &wwhy);
            if (wec) return ec = wec, out;
            struct ::stat st;
            if (::fstat(held->fd.get(), &st) != 0) return ec = vi::sfs::errno_code(errno), out;
            vi::image_comparer cmp(scratch.get(), held->fd.get(), static_cast<std::uint64_t>(st.st_size));
            cmp.finish(ec);
            if (ec) return out;
            out.bytes += cmp.bytes_read();
            out.rederived = true;
            if (auto const at = cmp.difference())
                found(fsmeta_file, make_error_code(error::digest_mismatch),
                      "fsmeta differs from the one re-derived from its " + std::to_string(layers.size()) + " layer images " +
                          vi::describe_offset(*at, scratch.get(), nullptr));
            else
                fsmeta_blocks = written.total_blocks;
        } else {
            error_code wec;
            std::string wwhy;
            held->reader.walk([](std::string_view, erofs_inode_info const&, error_code&) {}, wec, &wwhy);
            auto const& slots = held->reader.info().devices;
            if (wec) {
                if (bi::is_io_error(wec)) return ec = wec, out;
                found(fsmeta_file, wec, "fsmeta is damaged: " + (wwhy.empty() ? wec.message() : wwhy));
            } else if (slots.size() != layers.size()) {
                found(fsmeta_file, make_error_code(error::invalid_archive),
                      "fsmeta names " + std::to_string(slots.size()) + " layers in its device table, the image has " +
                          std::to_string(layers.size()));
            } else {
                std::size_t i = 0;
                while (i < slots.size() && slots[i].tag == layer_tag(layers[i].diff_id)) ++i;
                if (i < slots.size())
                    found(fsmeta_file, make_error_code(error::invalid_archive),
                          "fsmeta device " + std::to_string(i + 1) + " is tagged \"" + slots[i].tag + "\", not layer " +
                              std::to_string(i) + "'s diff_id");
                else
                    fsmeta_blocks = held->blocks;
            }
        }
    }

    if (has_vmdk) {
        ++out.checked;
        error_code rec;
        std::string const text = vi::sfs::read_small_file(vmdk_file.string(), bi::max_vmdk_size, rec);
        if (rec) {
            if (bi::is_io_error(rec)) return ec = rec, out;
            found(vmdk_file, rec, "VMDK cannot be read: " + rec.message());
            return out;
        }
        out.bytes += text.size();
        error_code xec;
        std::string expected;
        if (fsmeta_blocks && layers_here) expected = vmdk_text(key, *fsmeta_blocks, held_layers, xec);
        if (!expected.empty() && !xec) {
            if (text != expected)
                found(vmdk_file, make_error_code(error::digest_mismatch),
                      "VMDK differs from the descriptor re-derived from its fsmeta and layers at " +
                          vi::first_line_difference(text, expected));
        } else {
            std::string pwhy;
            auto const extents = parse_vmdk_extents(text, xec, &pwhy);
            if (xec) {
                found(vmdk_file, xec, "VMDK: " + (pwhy.empty() ? xec.message() : pwhy));
            } else if (extents.size() != layers.size() + 1) {
                found(vmdk_file, make_error_code(error::invalid_archive),
                      "VMDK lists " + std::to_string(extents.size()) + " extents, not the fsmeta and " +
                          std::to_string(layers.size()) + " layers");
            } else {
                auto name_of = [](std::string const& p) { return std::filesystem::path(p).filename(); };
                std::size_t i = 0;
                if (name_of(extents[0].path) == fsmeta_file.filename())
                    for (i = 1; i < extents.size() && name_of(extents[i].path) == layer_path(layers[i - 1].diff_id).filename(); ++i) {
                    }
                if (i < extents.size())
                    found(vmdk_file, make_error_code(error::invalid_archive),
                          "VMDK extent " + std::to_string(i) + " is \"" + extents[i].path + "\", not " +
                              (i == 0 ? std::string("the image's fsmeta") : "layer " + std::to_string(i - 1) + "'s image"));
            }
        }
    }
    return out;
}

} // namespace ocistore
