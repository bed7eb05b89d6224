// ocistore/tar_reader.hpp: a streaming, one-pass tar reader hardened against hostile archives.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/error.hpp>
#include <ocistore/tar_entry.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore {
namespace detail::tar {

inline constexpr std::size_t block_size = 512;

/// Zero bytes that pad `n` data bytes to a whole block.
constexpr std::uint64_t block_pad(std::uint64_t n) noexcept { return (block_size - n % block_size) % block_size; }

/// Fields of one header block, decoded but not yet combined with extension headers.
struct header {
    char typeflag = 0;
    std::string name;     ///< ustar: prefix + '/' + name
    std::string linkname;
    std::uint32_t mode = 0;
    std::uint64_t uid = 0;
    std::uint64_t gid = 0;
    std::string uname;
    std::string gname;
    std::int64_t mtime = 0;
    std::uint64_t size = 0;
    std::uint32_t devmajor = 0;
    std::uint32_t devminor = 0;
};

/// A pax value: absent, erased by an empty value, or set.
template <class T> struct pax_value {
    enum state_type : unsigned char { unset, erased, set };
    state_type state = unset;
    T value{};
    void assign(T v) { state = set, value = std::move(v); }
};

struct pax_time {
    std::int64_t sec = 0;
    std::uint32_t nsec = 0;
};

/// The records of one pax header ('x'), or the accumulated global state ('g').
struct pax_state {
    pax_value<std::string> path, linkpath, uname, gname;
    pax_value<std::uint64_t> size, uid, gid;
    pax_value<pax_time> mtime;
    std::vector<tar_xattr> xattrs;
    std::optional<std::uint64_t> sparse_major, sparse_minor, sparse_realsize;
    std::optional<std::string> sparse_name;
    std::string sparse_old_key; ///< a GNU sparse 0.x key seen, if any
    void clear() { *this = pax_state{}; }
};

/// How the stream continues after an entry's header.
struct entry_layout {
    std::uint64_t stored_size = 0; ///< data bytes that follow the header (before padding)
    bool readable = false;         ///< read_data() returns them (regular files)
    bool sparse = false;           ///< they start with a pax 1.0 sparse map
};

/// `"text"` with non-printable bytes as \xNN, cut after 200 bytes; for messages.
OCISTORE_DECL std::string quote(std::string_view text);

/// Whether all 512 bytes are zero.
OCISTORE_DECL bool is_zero_block(std::byte const* block) noexcept;

/// Decodes and verifies one non-zero header block found at archive offset `offset`.
OCISTORE_DECL void parse_header(std::byte const* block, std::uint64_t offset, header& out, error_code& ec,
                                std::string* why);

/// Applies the records of a pax header body to `st` ('g' when `global`).
OCISTORE_DECL void parse_pax(std::string_view data, bool global, std::uint64_t offset, tar_limits const& limits,
                             pax_state& st, error_code& ec, std::string* why);

/// The name carried by a GNU 'L'/'K' record: `data` up to its terminating NUL(s).
OCISTORE_DECL std::string long_name_value(std::string_view data, char typeflag, std::uint64_t offset,
                                          error_code& ec, std::string* why);

/** Normalises an archive path (docs/tar.md): "." for the root, otherwise relative components
    joined by '/'. `what` names the field in messages ("path", "hardlink target"). */
OCISTORE_DECL std::string normalize_path(std::string_view raw, std::string_view what, tar_limits const& limits,
                                         error_code& ec, std::string* why);

/** Builds `out` from a header and the extension records that precede it, checks it against
    `limits` (adding a regular file's size to `total_size`) and describes the data in `layout`. */
OCISTORE_DECL void make_entry(header const& h, std::uint64_t offset, pax_state const& local, pax_state const& global,
                              std::optional<std::string> const& long_name,
                              std::optional<std::string> const& long_link, tar_limits const& limits,
                              std::uint64_t& total_size, tar_entry& out, entry_layout& layout, error_code& ec,
                              std::string* why);

/** Checks a pax 1.0 sparse map: extents ascending and disjoint, inside `real_size`, their
    lengths adding up to `data_size` (the stored bytes after the map). */
OCISTORE_DECL void check_sparse_map(std::vector<sparse_extent> const& map, std::uint64_t real_size,
                                    std::uint64_t data_size, std::string_view path, error_code& ec,
                                    std::string* why);

} // namespace detail::tar

/** Reads a tar archive from a *ByteSource* in one pass, one entry at a time.

    Supports ustar, old GNU and v7 headers, pax extended ('x') and global ('g') headers,
    GNU long names and link names ('L'/'K'), base-256 numbers and GNU pax 1.0 sparse files.
    Every extension header is folded into the entry it describes; paths are normalised and
    checked; the `tar_limits` bound all memory and work. Data is never held in memory: the
    caller pulls it with read_data(). docs/tar.md has the formats, the normalisation rules,
    the limits and the error table.

    The end of the archive is two zero blocks, or one zero block followed by the end of the
    stream, or the end of the stream exactly where a header would start (end_marker_seen()
    tells them apart). The reader does not consume the source beyond what it buffered; see
    drain().

    After a failure the reader is unusable: every later call reports the same error.

    @tparam Source a *ByteSource*, held by reference; see docs/concepts/byte_source.md.
*/
template <byte_source Source> class basic_tar_reader {
public:
    /// Size of the internal read-ahead buffer.
    static constexpr std::size_t buffer_size = 64 * 1024;

    explicit basic_tar_reader(Source& src, tar_limits limits = {})
        : src_(src), limits_(limits), buf_(std::make_unique<std::byte[]>(buffer_size))
    {
    }
    basic_tar_reader(basic_tar_reader const&) = delete;
    basic_tar_reader& operator=(basic_tar_reader const&) = delete;

    /** Advances to the next entry, skipping any unread data of the current one.
        @return true with `out` filled; false at the end of the archive (`ec` clear) or on
        failure (`ec` set, `*why` names the problem when given). */
    bool next(tar_entry& out, error_code& ec, std::string* why = nullptr);
    /// @throws system_error on failure, its what() naming the problem.
    bool next(tar_entry& out)
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return next(out, ec, why); });
    }

    /** Reads up to `buf.size()` bytes of the current entry's logical content (holes of a
        sparse file read as zeros). Returns at least one byte unless the entry's data is
        exhausted (or the entry has none), then 0 with `ec` clear. Large reads go straight
        from the source into `buf`. */
    std::size_t read_data(std::span<std::byte> buf, error_code& ec, std::string* why = nullptr);
    /// @throws system_error on failure.
    std::size_t read_data(std::span<std::byte> buf)
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return read_data(buf, ec, why); });
    }
    /// read_data(): the reader is itself a *ByteSource* over the current entry's content.
    std::size_t read_some(std::span<std::byte> buf, error_code& ec) { return read_data(buf, ec); }

    /** Discards everything left in the buffer and the source (typically the zero padding
        after the end marker) and returns how many bytes that was. Ends the archive: next()
        returns false afterwards. */
    std::uint64_t drain(error_code& ec, std::string* why = nullptr);
    /// @throws system_error on failure.
    std::uint64_t drain()
    {
        return detail::throw_on_error([&](error_code& ec, std::string* why) { return drain(ec, why); });
    }

    /// Entries returned by next() so far.
    std::uint64_t entries_read() const noexcept { return entries_returned_; }
    /// Archive bytes consumed so far (the offset of the next byte the reader will look at).
    std::uint64_t offset() const noexcept { return offset_; }
    /// Whether the archive ended with its end-of-archive zero block(s).
    bool end_marker_seen() const noexcept { return end_marker_; }
    tar_limits const& limits() const noexcept { return limits_; }
    Source& source() noexcept { return src_; }

private:
    enum class state : unsigned char { header, data, end, failed };
    static constexpr std::size_t direct_threshold = 16 * 1024;

    std::size_t available() const noexcept { return end_ - pos_; }
    std::byte const* cursor() const noexcept { return buf_.get() + pos_; }
    void consume(std::size_t n) noexcept { pos_ += n, offset_ += n; }

    bool fail(error e, std::string msg, error_code& ec, std::string* why)
    {
        state_ = state::failed;
        error_ = make_error_code(e);
        why_ = std::move(msg);
        return report(ec, why);
    }
    bool report(error_code& ec, std::string* why)
    {
        ec = error_;
        if (why) *why = why_;
        return false;
    }
    bool fail_source(error_code const& sec, error_code& ec, std::string* why)
    {
        state_ = state::failed;
        error_ = sec;
        why_ = "reading the archive at offset " + std::to_string(offset_) + ": " + sec.message();
        return report(ec, why);
    }

    /// Buffers at least `n` (<= buffer_size) bytes unless the stream ends first; returns
    /// the bytes available. On a source failure returns 0 and sets `sec`.
    std::size_t fill(std::size_t n, error_code& sec);
    /// Like fill(), but anything short of `n` bytes is a failure naming `what` (nullptr: the
    /// current entry's data).
    bool need(std::size_t n, char const* what, error_code& ec, std::string* why);
    /// Discards `n` bytes of the stream.
    bool skip(std::uint64_t n, char const* what, error_code& ec, std::string* why);
    /// Reads a meta header's `size` data bytes plus padding into `out`.
    bool read_meta(std::uint64_t size, std::string& out, char const* what, error_code& ec, std::string* why);
    /// Reads up to `buf.size()` (<= stored_left_) stored data bytes; at least one on success.
    std::size_t read_stored(std::span<std::byte> buf, error_code& ec, std::string* why);
    /// Reads one newline-terminated decimal number of a sparse map.
    bool read_map_number(std::uint64_t& v, error_code& ec, std::string* why);
    /// Reads and checks the sparse map at the start of the current entry's data.
    bool read_sparse_map(tar_entry& out, error_code& ec, std::string* why);
    /// Handles the end-of-archive zero block at the cursor.
    bool end_of_archive(bool pending, error_code& ec, std::string* why);

    Source& src_;
    tar_limits limits_;
    std::unique_ptr<std::byte[]> buf_;
    std::size_t pos_ = 0;
    std::size_t end_ = 0;
    std::uint64_t offset_ = 0;
    state state_ = state::header;
    bool end_marker_ = false;
    error_code error_;
    std::string why_;
    std::uint64_t entries_returned_ = 0;
    std::uint64_t entries_counted_ = 0;
    std::uint64_t total_size_ = 0;

    // current entry
    std::uint64_t stored_left_ = 0;
    std::uint64_t padding_ = 0;
    bool readable_ = false;
    bool sparse_ = false;
    std::vector<sparse_extent> map_;
    std::size_t extent_ = 0;
    std::uint64_t logical_pos_ = 0;
    std::uint64_t logical_size_ = 0;
    std::string path_; ///< for messages

    detail::tar::header header_;
    detail::tar::pax_state global_;
    detail::tar::pax_state local_;
    std::string meta_;
};

// ---------------------------------------------------------------------------------------

template <byte_source Source> std::size_t basic_tar_reader<Source>::fill(std::size_t n, error_code& sec)
{
    sec.clear();
    if (available() >= n) return available();
    if (pos_ == end_) {
        pos_ = end_ = 0;
    } else if (buffer_size - pos_ < n) {
        std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    while (available() < n) {
        std::size_t const r = src_.read_some(std::span<std::byte>(buf_.get() + end_, buffer_size - end_), sec);
        if (sec) return 0;
        if (r == 0) break;
        end_ += r;
    }
    return available();
}

template <byte_source Source>
bool basic_tar_reader<Source>::need(std::size_t n, char const* what, error_code& ec, std::string* why)
{
    error_code sec;
    std::size_t const got = fill(n, sec);
    if (sec) return fail_source(sec, ec, why);
    if (got < n)
        return fail(error::truncated,
                    "archive ends inside " + (what ? std::string(what) : "the data of " + detail::tar::quote(path_)) +
                        " at offset " + std::to_string(offset_ + got),
                    ec, why);
    return true;
}

template <byte_source Source>
bool basic_tar_reader<Source>::skip(std::uint64_t n, char const* what, error_code& ec, std::string* why)
{
    while (n > 0) {
        if (available() == 0 && !need(1, what, ec, why)) return false;
        std::size_t const take = static_cast<std::size_t>(std::min<std::uint64_t>(n, available()));
        consume(take);
        n -= take;
    }
    return true;
}

template <byte_source Source>
bool basic_tar_reader<Source>::read_meta(std::uint64_t size, std::string& out, char const* what, error_code& ec,
                                         std::string* why)
{
    out.resize(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (done < out.size()) {
        if (available() == 0 && !need(1, what, ec, why)) return false;
        std::size_t const take = std::min(out.size() - done, available());
        std::memcpy(out.data() + done, cursor(), take);
        consume(take);
        done += take;
    }
    return skip(detail::tar::block_pad(size), what, ec, why);
}

template <byte_source Source>
std::size_t basic_tar_reader<Source>::read_stored(std::span<std::byte> buf, error_code& ec, std::string* why)
{
    std::size_t n = 0;
    if (available() > 0) {
        n = std::min(buf.size(), available());
        std::memcpy(buf.data(), cursor(), n);
        consume(n);
    } else if (buf.size() >= direct_threshold) {
        error_code sec;
        n = src_.read_some(buf, sec);
        if (sec) return fail_source(sec, ec, why), 0;
        if (n == 0)
            return fail(error::truncated,
                        "archive ends inside the data of " + detail::tar::quote(path_) + " at offset " +
                            std::to_string(offset_) + " (" + std::to_string(stored_left_) + " bytes missing)",
                        ec, why),
                   0;
        offset_ += n;
    } else {
        error_code sec;
        std::size_t const got = fill(1, sec);
        if (sec) return fail_source(sec, ec, why), 0;
        if (got == 0)
            return fail(error::truncated,
                        "archive ends inside the data of " + detail::tar::quote(path_) + " at offset " +
                            std::to_string(offset_) + " (" + std::to_string(stored_left_) + " bytes missing)",
                        ec, why),
                   0;
        n = std::min(buf.size(), available());
        std::memcpy(buf.data(), cursor(), n);
        consume(n);
    }
    stored_left_ -= n;
    return n;
}

template <byte_source Source>
bool basic_tar_reader<Source>::read_map_number(std::uint64_t& v, error_code& ec, std::string* why)
{
    v = 0;
    std::size_t digits = 0;
    for (;;) {
        if (stored_left_ == 0)
            return fail(error::invalid_archive,
                        "sparse map of " + detail::tar::quote(path_) + " runs past the entry's data", ec, why);
        if (available() == 0 && !need(1, "a sparse map", ec, why)) return false;
        char const c = static_cast<char>(*cursor());
        consume(1);
        --stored_left_;
        if (c == '\n') break;
        if (c < '0' || c > '9' || digits == 20 || v > (UINT64_MAX - static_cast<unsigned>(c - '0')) / 10)
            return fail(error::invalid_archive,
                        "sparse map of " + detail::tar::quote(path_) + " at offset " + std::to_string(offset_ - 1) +
                            ": " +
                            (c < '0' || c > '9' ? detail::describe_char(c) + " where a decimal digit or newline belongs"
                                                : std::string("number overflows 64 bits")),
                        ec, why);
        v = v * 10 + static_cast<unsigned>(c - '0');
        ++digits;
    }
    if (digits == 0)
        return fail(error::invalid_archive,
                    "sparse map of " + detail::tar::quote(path_) + " at offset " + std::to_string(offset_ - 1) +
                        ": empty number",
                    ec, why);
    return true;
}

template <byte_source Source>
bool basic_tar_reader<Source>::read_sparse_map(tar_entry& out, error_code& ec, std::string* why)
{
    std::uint64_t const stored = stored_left_;
    std::uint64_t count = 0;
    if (!read_map_number(count, ec, why)) return false;
    if (count > limits_.max_sparse_extents)
        return fail(error::limit_exceeded,
                    "sparse map of " + detail::tar::quote(path_) + " has " + std::to_string(count) +
                        " extents; the limit is " + std::to_string(limits_.max_sparse_extents),
                    ec, why);
    map_.clear();
    map_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, stored / 4)));
    for (std::uint64_t i = 0; i < count; ++i) {
        sparse_extent x;
        if (!read_map_number(x.offset, ec, why) || !read_map_number(x.length, ec, why)) return false;
        map_.push_back(x);
    }
    std::uint64_t const pad = detail::tar::block_pad(stored - stored_left_);
    if (pad > stored_left_)
        return fail(error::invalid_archive,
                    "sparse map of " + detail::tar::quote(path_) + " runs past the entry's data", ec, why);
    if (!skip(pad, "a sparse map", ec, why)) return false;
    stored_left_ -= pad;
    std::string msg;
    detail::tar::check_sparse_map(map_, logical_size_, stored_left_, path_, ec, &msg);
    if (ec) return fail(static_cast<error>(ec.value()), std::move(msg), ec, why);
    out.sparse_map = map_;
    return true;
}

template <byte_source Source>
bool basic_tar_reader<Source>::end_of_archive(bool pending, error_code& ec, std::string* why)
{
    std::uint64_t const at = offset_;
    if (pending)
        return fail(error::invalid_archive,
                    "zero block at offset " + std::to_string(at) +
                        " where the entry described by the preceding extension header belongs",
                    ec, why);
    consume(detail::tar::block_size);
    error_code sec;
    std::size_t const got = fill(detail::tar::block_size, sec);
    if (sec) return fail_source(sec, ec, why);
    if (got == 0) { // a lone zero block at the very end: accepted
        state_ = state::end;
        end_marker_ = true;
        return false;
    }
    if (got < detail::tar::block_size)
        return fail(error::truncated,
                    "archive ends inside the second end-of-archive block at offset " + std::to_string(offset_ + got),
                    ec, why);
    if (!detail::tar::is_zero_block(cursor()))
        return fail(error::invalid_archive,
                    "lone zero block at offset " + std::to_string(at) + " followed by a non-zero block", ec, why);
    consume(detail::tar::block_size);
    state_ = state::end;
    end_marker_ = true;
    return false;
}

template <byte_source Source>
bool basic_tar_reader<Source>::next(tar_entry& out, error_code& ec, std::string* why)
{
    using namespace detail::tar;
    if (state_ == state::failed) return report(ec, why);
    ec.clear();
    if (state_ == state::end) return false;
    if (state_ == state::data) {
        if (!skip(stored_left_ + padding_, nullptr, ec, why)) return false;
        stored_left_ = padding_ = 0;
        state_ = state::header;
    }
    readable_ = sparse_ = false;
    local_.clear();
    bool have_local = false;
    std::optional<std::string> long_name, long_link;
    auto pending = [&] { return have_local || long_name || long_link; };
    auto count_entry = [&](std::uint64_t at) {
        if (entries_counted_ >= limits_.max_entries)
            return fail(error::limit_exceeded,
                        "header at offset " + std::to_string(at) + ": more than " +
                            std::to_string(limits_.max_entries) + " entries",
                        ec, why);
        ++entries_counted_;
        return true;
    };
    for (;;) {
        std::uint64_t const at = offset_;
        error_code sec;
        std::size_t const got = fill(block_size, sec);
        if (sec) return fail_source(sec, ec, why);
        if (got == 0) {
            if (pending())
                return fail(error::truncated,
                            "archive ends at offset " + std::to_string(at) +
                                " after an extension header, before the entry it describes",
                            ec, why);
            state_ = state::end;
            return false;
        }
        if (got < block_size)
            return fail(error::truncated,
                        "archive ends inside the header at offset " + std::to_string(at) + " (" +
                            std::to_string(got) + " of 512 bytes)",
                        ec, why);
        if (is_zero_block(cursor())) return end_of_archive(pending(), ec, why);
        std::string msg;
        parse_header(cursor(), at, header_, ec, &msg);
        if (ec) return fail(static_cast<error>(ec.value()), std::move(msg), ec, why);
        consume(block_size);
        char const t = header_.typeflag;
        if (t == 'x' || t == 'g' || t == 'L' || t == 'K') {
            bool const global = t == 'g';
            std::string const kind = t == 'x'   ? "pax extended header"
                                     : t == 'g' ? "pax global header"
                                     : t == 'L' ? "GNU long name record"
                                                : "GNU long link record";
            std::string const where = kind + " at offset " + std::to_string(at);
            if ((t == 'x' && have_local) || (t == 'L' && long_name) || (t == 'K' && long_link))
                return fail(error::invalid_archive, where + " follows another one for the same entry", ec, why);
            if (global && pending())
                return fail(error::invalid_archive, where + " sits between an extension header and its entry", ec,
                            why);
            if (global && !count_entry(at)) return false;
            std::uint64_t const limit = (t == 'x' || global) ? limits_.max_pax_header_size
                                                              : std::uint64_t(limits_.max_path_length) + 1;
            if (header_.size > limit)
                return fail(error::limit_exceeded,
                            where + " is " + std::to_string(header_.size) + " bytes; the limit is " +
                                std::to_string(limit),
                            ec, why);
            if (!read_meta(header_.size, meta_, kind.c_str(), ec, why)) return false;
            if (t == 'x' || global) {
                parse_pax(meta_, global, at, limits_, global ? global_ : local_, ec, &msg);
                have_local = have_local || !global;
            } else {
                (t == 'L' ? long_name : long_link) = long_name_value(meta_, t, at, ec, &msg);
            }
            if (ec) return fail(static_cast<error>(ec.value()), std::move(msg), ec, why);
            continue;
        }
        if (t == 'V') { // GNU volume label: skipped
            if (pending())
                return fail(error::invalid_archive,
                            "volume label at offset " + std::to_string(at) +
                                " sits between an extension header and its entry",
                            ec, why);
            if (!count_entry(at)) return false;
            if (!skip(header_.size + block_pad(header_.size), "a volume label", ec, why)) return false;
            continue;
        }
        if (!count_entry(at)) return false;
        entry_layout layout;
        make_entry(header_, at, local_, global_, long_name, long_link, limits_, total_size_, out, layout, ec, &msg);
        if (ec) return fail(static_cast<error>(ec.value()), std::move(msg), ec, why);
        path_ = out.path;
        stored_left_ = layout.stored_size;
        padding_ = block_pad(layout.stored_size);
        readable_ = layout.readable;
        sparse_ = layout.sparse;
        logical_pos_ = 0;
        logical_size_ = out.size;
        extent_ = 0;
        state_ = state::data;
        if (sparse_ && !read_sparse_map(out, ec, why)) return false;
        ++entries_returned_;
        return true;
    }
}

template <byte_source Source>
std::size_t basic_tar_reader<Source>::read_data(std::span<std::byte> buf, error_code& ec, std::string* why)
{
    if (state_ == state::failed) return report(ec, why), 0;
    ec.clear();
    if (state_ != state::data || !readable_ || buf.empty()) return 0;
    if (!sparse_) {
        if (stored_left_ == 0) return 0;
        return read_stored(buf.first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), stored_left_))), ec,
                           why);
    }
    if (logical_pos_ >= logical_size_) return 0;
    while (extent_ < map_.size() && logical_pos_ >= map_[extent_].offset + map_[extent_].length) ++extent_;
    if (extent_ == map_.size() || logical_pos_ < map_[extent_].offset) {
        std::uint64_t const hole_end = extent_ == map_.size() ? logical_size_ : map_[extent_].offset;
        std::size_t const n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), hole_end - logical_pos_));
        std::memset(buf.data(), 0, n);
        logical_pos_ += n;
        return n;
    }
    std::uint64_t const extent_end = map_[extent_].offset + map_[extent_].length;
    std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), extent_end - logical_pos_));
    std::size_t const n = read_stored(buf.first(want), ec, why);
    logical_pos_ += n;
    return n;
}

template <byte_source Source> std::uint64_t basic_tar_reader<Source>::drain(error_code& ec, std::string* why)
{
    if (state_ == state::failed) return report(ec, why), 0;
    ec.clear();
    std::uint64_t n = available();
    consume(available());
    for (;;) {
        error_code sec;
        std::size_t const r = src_.read_some(std::span<std::byte>(buf_.get(), buffer_size), sec);
        if (sec) return fail_source(sec, ec, why), n;
        if (r == 0) break;
        n += r;
        offset_ += r;
    }
    pos_ = end_ = 0;
    state_ = state::end;
    return n;
}

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/tar_reader.ipp>
#endif
