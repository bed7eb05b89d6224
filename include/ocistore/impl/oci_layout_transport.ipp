// Non-template bodies for ocistore/transport/oci_layout_transport.hpp.
#pragma once

#include <ocistore/transport/oci_layout_transport.hpp>

#include <ocistore/detail/accept.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/json.hpp>
#include <ocistore/media_types.hpp>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore {
namespace detail::oci_layout_impl {

inline constexpr std::string_view ref_name_key = "org.opencontainers.image.ref.name";
/// Cap on the `oci-layout` file, which holds one short member.
inline constexpr std::size_t max_layout_file_size = 64 * 1024;

/// Owns a file descriptor.
class fd_guard {
public:
    fd_guard() = default;
    explicit fd_guard(int fd) noexcept : fd_(fd) {}
    fd_guard(fd_guard const&) = delete;
    fd_guard& operator=(fd_guard const&) = delete;
    ~fd_guard()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd) noexcept
    {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

inline std::string in_quotes(std::string_view s) { return '"' + std::string(s) + '"'; }

inline void fail_errno(error_code& ec, std::string* why, int e, std::string const& what)
{
    ec = error_code(e, std::system_category());
    if (why) *why = what + ": " + ec.message();
}

/// openat(2) of `name` in `dir`, never following a symbolic link in its last component.
inline int open_nofollow(int dir, char const* name, bool directory) noexcept
{
    int const flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (directory ? O_DIRECTORY : O_NONBLOCK);
    int fd;
    do fd = ::openat(dir, name, flags);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/** Opens `name` in `dir` (shown as `shown`); a missing entry is `missing` with `missing_msg`,
    a symbolic link or (for files) anything but a regular file is error::unsafe_path. */
inline bool open_entry(int dir, char const* name, bool directory, std::string const& shown, error missing,
                       std::string const& missing_msg, fd_guard& out, error_code& ec, std::string* why)
{
    int const fd = open_nofollow(dir, name, directory);
    if (fd < 0) {
        int const e = errno;
        // O_DIRECTORY|O_NOFOLLOW on a symbolic link fails with ENOTDIR, not ELOOP.
        struct ::stat st {};
        bool const link = e == ELOOP || (e == ENOTDIR && ::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                         S_ISLNK(st.st_mode));
        if (!link && (e == ENOENT || e == ENOTDIR)) fail(ec, why, missing, missing_msg);
        else if (link)
            fail(ec, why, error::unsafe_path, shown + " is a symbolic link; a layout is read without following links");
        else fail_errno(ec, why, e, "cannot open " + shown);
        return false;
    }
    out.reset(fd);
    return true;
}

/// fstat(2) of a file opened by open_entry; anything but a regular file is error::unsafe_path.
inline bool regular_size(int fd, std::string const& shown, std::uint64_t& size, error_code& ec, std::string* why)
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) return fail_errno(ec, why, errno, "cannot stat " + shown), false;
    if (!S_ISREG(st.st_mode)) return fail(ec, why, error::unsafe_path, shown + " is not a regular file"), false;
    size = static_cast<std::uint64_t>(st.st_size);
    return true;
}

/// Reads `size` bytes from the start of `fd`; a file that shrank is error::truncated.
inline bool read_whole(int fd, std::uint64_t size, std::string const& shown, std::string& out, error_code& ec,
                       std::string* why)
{
    out.resize(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (done < out.size()) {
        ::ssize_t const n = ::pread(fd, out.data() + done, out.size() - done, static_cast<::off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(ec, why, errno, "cannot read " + shown), false;
        }
        if (n == 0)
            return fail(ec, why, error::truncated,
                        shown + " ended after " + std::to_string(done) + " of " + std::to_string(size) + " bytes"),
                   false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

/// Opens the root directory and checks its `oci-layout` file.
inline bool open_layout(std::filesystem::path const& root, fd_guard& out, error_code& ec, std::string* why)
{
    ec.clear();
    int fd;
    do fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int const e = errno;
        if (e == ENOENT) fail(ec, why, error::not_found, "OCI layout " + root.string() + " does not exist");
        else if (e == ENOTDIR) fail(ec, why, error::invalid_argument, "OCI layout " + root.string() + " is not a directory");
        else fail_errno(ec, why, e, "cannot open OCI layout " + root.string());
        return false;
    }
    out.reset(fd);

    std::string const shown = root.string() + "/oci-layout";
    fd_guard file;
    if (!open_entry(out.get(), "oci-layout", false, shown, error::invalid_argument,
                    root.string() + " is not an OCI image layout: it has no oci-layout file", file, ec, why))
        return false;
    std::uint64_t size = 0;
    if (!regular_size(file.get(), shown, size, ec, why)) return false;
    if (size > max_layout_file_size)
        return fail(ec, why, error::too_large,
                    shown + " is " + std::to_string(size) + " bytes; the limit is " + std::to_string(max_layout_file_size) +
                        " bytes"),
               false;
    std::string bytes;
    if (!read_whole(file.get(), size, shown, bytes, ec, why)) return false;
    boost::json::value const v = parse_json_document(bytes, max_layout_file_size, shown, {}, ec, why);
    if (ec) return false;
    auto const* o = v.if_object();
    if (!o) return fail(ec, why, error::invalid_argument, shown + ": expected an object, got " + json_kind_name(v)), false;
    auto const* version = o->if_contains("imageLayoutVersion");
    if (!version)
        return fail(ec, why, error::invalid_argument, shown + ": required member imageLayoutVersion is missing"), false;
    if (!version->is_string())
        return fail(ec, why, error::invalid_argument,
                    shown + ": imageLayoutVersion: expected a string, got " + json_kind_name(*version)),
               false;
    std::string_view const got(version->get_string().data(), version->get_string().size());
    if (got != "1.0.0")
        return fail(ec, why, error::unsupported_schema,
                    shown + ": imageLayoutVersion " + in_quotes(got) + " is not supported (only \"1.0.0\")"),
               false;
    return true;
}

/// Reads and validates `index.json` of the layout open at `root_fd`.
inline bool load_index(int root_fd, std::filesystem::path const& root, image_index& out, error_code& ec,
                       std::string* why)
{
    std::string const shown = root.string() + "/index.json";
    fd_guard file;
    if (!open_entry(root_fd, "index.json", false, shown, error::invalid_argument,
                    root.string() + " is not an OCI image layout: it has no index.json", file, ec, why))
        return false;
    std::uint64_t size = 0;
    if (!regular_size(file.get(), shown, size, ec, why)) return false;
    if (size > max_manifest_size)
        return fail(ec, why, error::too_large,
                    shown + " is " + std::to_string(size) + " bytes; the limit is " + std::to_string(max_manifest_size) +
                        " bytes"),
               false;
    std::string bytes;
    if (!read_whole(file.get(), size, shown, bytes, ec, why)) return false;
    std::string reason;
    manifest_document doc = parse_manifest(bytes, media_types::oci_index, ec, &reason);
    if (ec) {
        if (why) *why = shown + ": " + reason;
        return false;
    }
    if (!doc.is_index())
        return fail(ec, why, error::invalid_manifest, shown + ": expected an image index, got a manifest"), false;
    out = std::move(std::get<image_index>(doc.document));
    return true;
}

/// Opens blob `d` ("blobs/<alg>/<hex>") of the layout open at `root_fd`.
inline bool open_blob_file(int root_fd, std::filesystem::path const& root, digest const& d, fd_guard& out,
                           std::uint64_t& size, error_code& ec, std::string* why)
{
    std::string const alg(d.algorithm());
    std::string const hex(d.encoded());
    std::string const relative = "blobs/" + alg + "/" + hex;
    std::string const missing = "blob " + d.str() + " is not in the layout (" + root.string() + "/" + relative + ")";
    fd_guard blobs, alg_dir;
    if (!open_entry(root_fd, "blobs", true, root.string() + "/blobs", error::not_found, missing, blobs, ec, why))
        return false;
    if (!open_entry(blobs.get(), alg.c_str(), true, root.string() + "/blobs/" + alg, error::not_found, missing, alg_dir,
                    ec, why))
        return false;
    std::string const shown = root.string() + "/" + relative;
    if (!open_entry(alg_dir.get(), hex.c_str(), false, shown, error::not_found, missing, out, ec, why)) return false;
    return regular_size(out.get(), shown, size, ec, why);
}

/// Reads blob `d` as a manifest: at most max_manifest_size bytes (else error::too_large).
inline bool read_manifest_blob(int root_fd, std::filesystem::path const& root, digest const& d, std::string& bytes,
                               error_code& ec, std::string* why)
{
    fd_guard file;
    std::uint64_t size = 0;
    if (!open_blob_file(root_fd, root, d, file, size, ec, why)) return false;
    if (size > max_manifest_size)
        return fail(ec, why, error::too_large,
                    "manifest " + d.str() + " is " + std::to_string(size) + " bytes, more than the limit of " +
                        std::to_string(max_manifest_size)),
               false;
    return read_whole(file.get(), size, root.string() + "/blobs/" + std::string(d.algorithm()) + "/" +
                                            std::string(d.encoded()),
                      bytes, ec, why);
}

/// The media type a manifest's JSON declares, or guessed from its members; empty if not a manifest.
inline std::string sniff_media_type(std::string_view bytes)
{
    error_code jec;
    boost::json::value const v = parse_json_document(bytes, max_manifest_size, "manifest", {}, jec, nullptr);
    if (jec) return {};
    auto const* o = v.if_object();
    if (!o) return {};
    if (auto const* mt = o->if_contains("mediaType"); mt && mt->is_string() && !mt->get_string().empty())
        return std::string(mt->get_string().data(), mt->get_string().size());
    if (o->contains("manifests")) return std::string(media_types::oci_index);
    if (o->contains("config") && o->contains("layers")) return std::string(media_types::oci_manifest);
    return {};
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
inline bool is_tag(std::string_view s) noexcept
{
    auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; };
    if (s.empty() || s.size() > image_reference::max_tag_length || !word(s.front())) return false;
    return std::all_of(s.begin() + 1, s.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

/// Whether ref.name annotation `name` names `ref`; see oci_layout_transport.
inline bool names(std::string_view name, image_reference const& ref)
{
    if (is_tag(name)) return name == ref.tag_or_default();
    error_code ec;
    image_reference const full = image_reference::parse(name, ec);
    return !ec && full.name() == ref.name() && full.tag_or_default() == ref.tag_or_default();
}

inline bool find_in_index(image_index const& index, image_reference const& ref, descriptor& out, error_code& ec,
                          std::string* why)
{
    for (descriptor const& d : index.manifests) {
        auto it = d.annotations.find(std::string(ref_name_key));
        if (it != d.annotations.end() && names(it->second, ref)) return out = d, true;
    }
    if (!ref.tag() && index.manifests.size() == 1) return out = index.manifests.front(), true;
    if (!why) return fail(ec, why, error::not_found, {}), false;
    std::string listed;
    std::size_t named = 0;
    for (descriptor const& d : index.manifests) {
        auto it = d.annotations.find(std::string(ref_name_key));
        if (it == d.annotations.end()) continue;
        if (++named <= 20) listed += (listed.empty() ? "" : ", ") + in_quotes(it->second);
    }
    if (named > 20) listed += ", …";
    std::string msg = "index.json has no entry named " + in_quotes(ref.tag_or_default());
    if (named) msg += " (names: " + listed + ")";
    else msg += " (it has " + std::to_string(index.manifests.size()) + " unnamed entries)";
    if (!ref.tag() && index.manifests.size() > 1)
        msg += "; give a tag to choose one of its " + std::to_string(index.manifests.size()) + " entries";
    return fail(ec, why, error::not_found, std::move(msg)), false;
}

/// The manifest `ref` names: digest, media type (empty: sniff it) and, for a tag, the entry.
inline bool locate(int root_fd, std::filesystem::path const& root, image_reference const& ref, digest& d,
                   std::string& media_type, error_code& ec, std::string* why)
{
    if (ref.digest()) {
        d = *ref.digest();
        media_type.clear();
        return true;
    }
    image_index index;
    if (!load_index(root_fd, root, index, ec, why)) return false;
    descriptor entry;
    if (!find_in_index(index, ref, entry, ec, why)) return false;
    d = std::move(entry.digest);
    media_type = std::move(entry.media_type);
    return true;
}

inline bool check_accept(digest const& d, std::string const& media_type, std::span<std::string_view const> accept,
                         error_code& ec, std::string* why)
{
    if (media_type_accepted(media_type, accept)) return true;
    return fail(ec, why, error::not_found,
                "manifest " + d.str() + " is " + media_type + ", which the Accept list does not include (" +
                    join_accept(accept) + ")"),
           false;
}

inline bool sniffed(digest const& d, std::string_view bytes, std::string& media_type, error_code& ec, std::string* why)
{
    media_type = sniff_media_type(bytes);
    if (media_type.empty())
        return fail(ec, why, error::not_found, "blob " + d.str() + " is not a manifest or index"), false;
    return true;
}

} // namespace detail::oci_layout_impl

// --- blob_reader ---------------------------------------------------------------------------------

OCISTORE_DECL std::size_t oci_layout_transport::blob_reader::read_some(std::span<std::byte> buffer, error_code& ec)
{
    ec.clear();
    if (failed_) return ec = failed_, 0;
    if (fd_ < 0) return ec = failed_ = make_error_code(error::invalid_argument), 0;
    if (buffer.empty() || pos_ >= *size_) return 0;
    std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), *size_ - pos_));
    ::ssize_t n;
    do n = ::pread(fd_, buffer.data(), want, static_cast<::off_t>(pos_));
    while (n < 0 && errno == EINTR);
    if (n < 0) return ec = failed_ = error_code(errno, std::system_category()), 0;
    if (n == 0) return ec = failed_ = make_error_code(error::truncated), 0;
    pos_ += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
}

OCISTORE_DECL void oci_layout_transport::blob_reader::close() noexcept
{
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

// --- oci_layout_transport ------------------------------------------------------------------------

OCISTORE_DECL void oci_layout_transport::check(error_code& ec, std::string* why) const
{
    read_index(ec, why);
}

OCISTORE_DECL void oci_layout_transport::check() const
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        check(ec, why);
        return 0;
    });
}

OCISTORE_DECL image_index oci_layout_transport::read_index(error_code& ec, std::string* why) const
{
    using namespace detail::oci_layout_impl;
    image_index index;
    fd_guard root;
    if (!open_layout(root_, root, ec, why)) return {};
    if (!load_index(root.get(), root_, index, ec, why)) return {};
    return index;
}

OCISTORE_DECL image_index oci_layout_transport::read_index() const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return read_index(ec, why); });
}

OCISTORE_DECL descriptor oci_layout_transport::find_entry(image_reference const& ref, error_code& ec,
                                                          std::string* why) const
{
    using namespace detail::oci_layout_impl;
    image_index index = read_index(ec, why);
    if (ec) return {};
    descriptor out;
    if (!find_in_index(index, ref, out, ec, why)) return {};
    return out;
}

OCISTORE_DECL descriptor oci_layout_transport::find_entry(image_reference const& ref) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return find_entry(ref, ec, why); });
}

OCISTORE_DECL fetched_manifest oci_layout_transport::fetch_manifest(image_reference const& ref,
                                                                    std::span<std::string_view const> accept,
                                                                    error_code& ec, std::string* why) const
{
    using namespace detail::oci_layout_impl;
    fd_guard root;
    if (!open_layout(root_, root, ec, why)) return {};
    digest d;
    std::string media_type;
    if (!locate(root.get(), root_, ref, d, media_type, ec, why)) return {};
    std::string bytes;
    if (!read_manifest_blob(root.get(), root_, d, bytes, ec, why)) return {};
    if (media_type.empty() && !sniffed(d, bytes, media_type, ec, why)) return {};
    if (!check_accept(d, media_type, accept, ec, why)) return {};
    return {std::move(bytes), std::move(media_type), std::move(d)};
}

OCISTORE_DECL resolved_manifest oci_layout_transport::resolve(image_reference const& ref,
                                                              std::span<std::string_view const> accept, error_code& ec,
                                                              std::string* why) const
{
    using namespace detail::oci_layout_impl;
    fd_guard root;
    if (!open_layout(root_, root, ec, why)) return {};
    digest d;
    std::string media_type;
    if (!locate(root.get(), root_, ref, d, media_type, ec, why)) return {};
    std::uint64_t size = 0;
    if (media_type.empty()) {
        std::string bytes;
        if (!read_manifest_blob(root.get(), root_, d, bytes, ec, why)) return {};
        if (!sniffed(d, bytes, media_type, ec, why)) return {};
        size = bytes.size();
    } else {
        fd_guard file;
        if (!open_blob_file(root.get(), root_, d, file, size, ec, why)) return {};
    }
    if (!check_accept(d, media_type, accept, ec, why)) return {};
    return {std::move(d), std::move(media_type), size};
}

OCISTORE_DECL oci_layout_transport::blob_reader oci_layout_transport::open_blob(image_reference const&,
                                                                                digest const& d, std::uint64_t offset,
                                                                                error_code& ec, std::string* why) const
{
    using namespace detail::oci_layout_impl;
    blob_reader r;
    if (d.empty()) {
        detail::fail(ec, why, error::invalid_argument, "open_blob needs a digest");
        return r;
    }
    fd_guard root;
    if (!open_layout(root_, root, ec, why)) return r;
    fd_guard file;
    std::uint64_t size = 0;
    if (!open_blob_file(root.get(), root_, d, file, size, ec, why)) return r;
    if (offset > size) {
        detail::fail(ec, why, error::invalid_argument,
             "offset " + std::to_string(offset) + " is beyond the end of blob " + d.str() + " (" + std::to_string(size) +
                 " bytes)");
        return r;
    }
    r.fd_ = file.release();
    r.offset_ = offset;
    r.pos_ = offset;
    r.size_ = size;
    return r;
}

static_assert(blob_source<oci_layout_transport::blob_reader>);
static_assert(transport<oci_layout_transport>);

} // namespace ocistore
