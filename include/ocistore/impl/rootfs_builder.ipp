// Non-template bodies for ocistore/builder/rootfs_builder.hpp.
#pragma once

#include <ocistore/atomic_file.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/safe_fs.hpp>
#include <ocistore/detail/store_layout.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <unordered_map>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace ocistore {

/// What sinks, prepared layers and the builder share; immutable after construction.
struct rootfs_builder::config {
    std::filesystem::path root;   ///< <store>/rootfs
    std::filesystem::path layers; ///< <store>/rootfs/layers
    std::filesystem::path images; ///< <store>/rootfs/images
    std::filesystem::path work;   ///< temporaries
    bool apply = true;            ///< ownership_mode::apply in effect
    bool openat2 = true;          ///< path_resolution::automatic
    bool durable = true;
    std::string identity;
};

namespace detail::rootfs_impl {

using ocistore::detail::set_why;

namespace sfs = detail::safe_fs;

inline constexpr std::int64_t format_version = 1;
inline constexpr std::size_t max_metadata_size = 512u << 20;

/// A directory's mode and time, applied after everything inside it exists.
struct dir_meta {
    std::uint32_t mode = 0755;
    std::int64_t mtime = 0;
    std::uint32_t nsec = 0;
    bool is_explicit = false; ///< had its own entry (else created as a parent of one)
};

/// What record mode keeps for a path instead of applying it.
struct record {
    std::uint64_t uid = 0;
    std::uint64_t gid = 0;
    std::optional<std::uint32_t> mode; ///< the real mode, when the tree's differs
    std::string type;                  ///< "char_device" or "block_device" for a placeholder file
    std::uint32_t major = 0;
    std::uint32_t minor = 0;
    std::vector<sfs::xattr> xattrs; ///< trusted.*, security.*, system.*

    bool empty() const noexcept { return uid == 0 && gid == 0 && !mode && type.empty() && xattrs.empty(); }
};
using record_map = std::map<std::string, record>;

/// The contents of layer.json.
struct layer_manifest {
    digest diff_id;
    std::uint64_t entries = 0;
    std::vector<std::string> whiteouts;
    std::vector<std::string> opaques;
    std::set<std::string> implicit_dirs;
    record_map records;
    std::vector<build_warning> warnings;
};

/// The contents of image.json.
struct image_manifest {
    digest key;
    std::vector<digest> layers;
    record_map records;
    std::vector<build_warning> warnings;
};

inline std::string errno_text(int e) { return std::generic_category().message(e); }

/// Erases `path` and everything below it.
template <class Map> void forget(Map& m, std::string const& path)
{
    if (path == ".") {
        m.clear();
        return;
    }
    m.erase(path);
    std::string const lo = path + "/";
    std::string const hi = path + "0"; // '0' follows '/'
    m.erase(m.lower_bound(lo), m.lower_bound(hi));
}

/// Erases everything strictly below `path`.
template <class Map> void forget_children(Map& m, std::string const& path)
{
    if (path == ".") {
        for (auto it = m.begin(); it != m.end();) it = it->first == "." ? std::next(it) : m.erase(it);
        return;
    }
    std::string const lo = path + "/";
    std::string const hi = path + "0";
    m.erase(m.lower_bound(lo), m.lower_bound(hi));
}

// --- JSON -------------------------------------------------------------------------------

inline std::string to_hex(std::string_view bytes)
{
    static char const hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) {
        auto const u = static_cast<unsigned char>(c);
        out.push_back(hex[u >> 4]);
        out.push_back(hex[u & 15]);
    }
    return out;
}

inline bool from_hex(std::string_view text, std::string& out)
{
    if (text.size() % 2) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    out.clear();
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int const hi = nibble(text[i]), lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return true;
}

inline boost::json::object record_to_json(record const& r)
{
    boost::json::object o;
    if (r.uid) o["uid"] = r.uid;
    if (r.gid) o["gid"] = r.gid;
    if (r.mode) o["mode"] = *r.mode;
    if (!r.type.empty()) {
        o["type"] = r.type;
        o["major"] = r.major;
        o["minor"] = r.minor;
    }
    if (!r.xattrs.empty()) {
        boost::json::object x;
        for (auto const& a : r.xattrs) x[a.name] = to_hex(a.value);
        o["xattrs"] = std::move(x);
    }
    return o;
}

inline boost::json::object records_to_json(record_map const& m)
{
    boost::json::object o;
    for (auto const& [path, r] : m)
        if (!r.empty()) o[path] = record_to_json(r);
    return o;
}

inline boost::json::array strings_to_json(auto const& v)
{
    boost::json::array a;
    for (auto const& s : v) a.emplace_back(s);
    return a;
}

inline boost::json::array warnings_to_json(std::vector<build_warning> const& v)
{
    boost::json::array a;
    for (auto const& w : v) {
        boost::json::object o;
        o["path"] = w.path;
        o["message"] = w.message;
        o["code"] = w.code.value();
        o["category"] = w.code.category().name();
        a.emplace_back(std::move(o));
    }
    return a;
}

inline std::string_view sv(boost::json::string const& s) noexcept { return {s.data(), s.size()}; }

/// Reads of a document we wrote ourselves: any mismatch makes the artifact invalid.
struct json_in {
    bool ok = true;

    boost::json::value const* member(boost::json::object const& o, std::string_view key)
    {
        auto const* v = o.if_contains(key);
        if (!v) ok = false;
        return v;
    }
    std::string string(boost::json::object const& o, std::string_view key)
    {
        auto const* v = member(o, key);
        if (!v || !v->is_string()) return ok = false, std::string();
        return std::string(sv(v->get_string()));
    }
    std::uint64_t number(boost::json::object const& o, std::string_view key, std::uint64_t fallback = 0,
                         bool required = false)
    {
        auto const* v = o.if_contains(key);
        if (!v) {
            if (required) ok = false;
            return fallback;
        }
        if (v->is_uint64()) return v->get_uint64();
        if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
        ok = false;
        return fallback;
    }
    boost::json::object const& object(boost::json::object const& o, std::string_view key)
    {
        static boost::json::object const empty;
        auto const* v = member(o, key);
        if (!v || !v->is_object()) return ok = false, empty;
        return v->get_object();
    }
    boost::json::array const& array(boost::json::object const& o, std::string_view key)
    {
        static boost::json::array const empty;
        auto const* v = member(o, key);
        if (!v || !v->is_array()) return ok = false, empty;
        return v->get_array();
    }
    std::vector<std::string> strings(boost::json::object const& o, std::string_view key)
    {
        std::vector<std::string> out;
        for (auto const& v : array(o, key)) {
            if (!v.is_string()) return ok = false, out;
            out.emplace_back(sv(v.get_string()));
        }
        return out;
    }
    digest digest_of(boost::json::object const& o, std::string_view key)
    {
        error_code dec;
        digest d = digest::parse(string(o, key), dec);
        if (dec) ok = false;
        return d;
    }
    record_map records(boost::json::object const& o)
    {
        record_map out;
        for (auto const& [path, v] : object(o, "records")) {
            if (!v.is_object()) return ok = false, out;
            auto const& ro = v.get_object();
            record r;
            r.uid = number(ro, "uid");
            r.gid = number(ro, "gid");
            if (ro.contains("mode")) r.mode = static_cast<std::uint32_t>(number(ro, "mode") & 07777);
            if (ro.contains("type")) {
                r.type = string(ro, "type");
                r.major = static_cast<std::uint32_t>(number(ro, "major"));
                r.minor = static_cast<std::uint32_t>(number(ro, "minor"));
            }
            if (ro.contains("xattrs")) {
                for (auto const& [name, hex] : object(ro, "xattrs")) {
                    std::string value;
                    if (!hex.is_string() || !from_hex(sv(hex.get_string()), value)) return ok = false, out;
                    r.xattrs.push_back({std::string(name.data(), name.size()), std::move(value)});
                }
            }
            out.emplace(std::string(path.data(), path.size()), std::move(r));
        }
        return out;
    }
    std::vector<build_warning> warnings(boost::json::object const& o)
    {
        std::vector<build_warning> out;
        for (auto const& v : array(o, "warnings")) {
            if (!v.is_object()) return ok = false, out;
            auto const& wo = v.get_object();
            build_warning w;
            w.path = string(wo, "path");
            w.message = string(wo, "message");
            auto const value = static_cast<int>(number(wo, "code"));
            std::string const cat = string(wo, "category");
            w.code = cat == error_category().name() ? error_code(value, error_category())
                     : cat == std::system_category().name() ? error_code(value, std::system_category())
                                                            : error_code(value, std::generic_category());
            out.push_back(std::move(w));
        }
        return out;
    }
};

/// Parses a metadata document; nullopt when it is not an object we wrote.
inline std::optional<boost::json::object> parse_metadata(std::string const& text)
{
    boost::json::parse_options opt;
    opt.allow_invalid_utf8 = true; // paths are bytes
    boost::json::parser p({}, opt);
    std::error_code jec;
    p.write(text.data(), text.size(), jec);
    if (jec) return std::nullopt;
    boost::json::value v = p.release();
    if (!v.is_object()) return std::nullopt;
    return std::move(v.get_object());
}

/// Checks the fields every metadata file has.
inline bool check_header(json_in& in, boost::json::object const& o, std::string const& identity)
{
    return in.number(o, "format", 0, true) == static_cast<std::uint64_t>(format_version) &&
        in.string(o, "kind") == rootfs_builder::kind && in.string(o, "identity") == identity && in.ok;
}

/// Loads `<dir>/layer.json` of a held layer; nullopt when absent or not held.
inline std::optional<layer_manifest> load_layer(std::filesystem::path const& dir, digest const& diff_id,
                                                std::string const& identity, error_code& ec)
{
    std::string text;
    if (!sfs::read_own_file(dir / "layer.json", max_metadata_size, text, ec)) return std::nullopt;
    auto o = parse_metadata(text);
    if (!o) return std::nullopt;
    json_in in;
    if (!check_header(in, *o, identity)) return std::nullopt;
    layer_manifest m;
    m.diff_id = in.digest_of(*o, "diff_id");
    m.entries = in.number(*o, "entries", 0, true);
    m.whiteouts = in.strings(*o, "whiteouts");
    m.opaques = in.strings(*o, "opaque");
    for (auto& s : in.strings(*o, "implicit_dirs")) m.implicit_dirs.insert(std::move(s));
    m.records = in.records(*o);
    m.warnings = in.warnings(*o);
    if (!in.ok || m.diff_id != diff_id) return std::nullopt;
    error_code sec;
    for (auto const& p : m.whiteouts)
        if (!sfs::check_relative_path(p, "whiteout", sec, nullptr) || p == ".") return std::nullopt;
    for (auto const& p : m.opaques)
        if (!sfs::check_relative_path(p, "opaque directory", sec, nullptr)) return std::nullopt;
    struct ::stat st;
    if (::lstat((dir / "tree").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
    return m;
}

/// Loads `<dir>/image.json` of a held image; nullopt when absent or not held.
inline std::optional<image_manifest> load_image(std::filesystem::path const& dir, digest const& key,
                                                std::string const& identity, error_code& ec)
{
    std::string text;
    if (!sfs::read_own_file(dir / "image.json", max_metadata_size, text, ec)) return std::nullopt;
    auto o = parse_metadata(text);
    if (!o) return std::nullopt;
    json_in in;
    if (!check_header(in, *o, identity)) return std::nullopt;
    image_manifest m;
    m.key = in.digest_of(*o, "key");
    for (auto const& v : in.array(*o, "layers")) {
        error_code dec;
        if (!v.is_string()) return std::nullopt;
        m.layers.push_back(digest::parse(sv(v.get_string()), dec));
        if (dec) return std::nullopt;
    }
    m.records = in.records(*o);
    m.warnings = in.warnings(*o);
    if (!in.ok || m.key != key) return std::nullopt;
    struct ::stat st;
    if (::lstat((dir / "rootfs").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
    return m;
}

inline std::string header_json(std::string const& identity)
{
    boost::json::object o;
    o["format"] = format_version;
    o["kind"] = rootfs_builder::kind;
    o["identity"] = identity;
    return boost::json::serialize(o);
}

/// mkdtemp under `work`: "<work>/rootfs-<what>-<12 hex of d>-XXXXXX".
inline std::filesystem::path make_temp_dir(std::filesystem::path const& work, std::string_view what, digest const& d,
                                           error_code& ec, std::string* why)
{
    ec.clear();
    std::error_code fec;
    std::filesystem::create_directories(work, fec);
    if (fec) {
        fail(ec, why, error::io_error, "creating the work directory \"" + work.string() + "\": " + fec.message());
        ec = fec;
        return {};
    }
    std::string tmpl =
        (work / ("rootfs-" + std::string(what) + "-" + std::string(d.encoded().substr(0, 12)) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) {
        int const e = errno;
        ec = sfs::errno_code(e);
        if (why) *why = "creating a temporary directory in \"" + work.string() + "\": " + errno_text(e);
        return {};
    }
    return tmpl;
}

inline std::string ns_of(std::string_view xattr_name)
{
    std::size_t const dot = xattr_name.find('.');
    return std::string(xattr_name.substr(0, dot == std::string_view::npos ? 0 : dot));
}

/// Whether an xattr of this name needs privileges (so record mode records it).
inline bool privileged_xattr(std::string_view name)
{
    std::string const ns = ns_of(name);
    return ns == "trusted" || ns == "security" || ns == "system";
}

inline ::timespec to_timespec(std::int64_t sec, std::uint32_t nsec)
{
    ::timespec t{};
    t.tv_sec = static_cast<::time_t>(sec);
    t.tv_nsec = static_cast<long>(nsec);
    return t;
}

/** Copies trees: the merge step of compose() (one layer tree onto the image tree) and
    export_rootfs() (the image tree into an empty directory). Never follows a link in either. */
struct tree_copier {
    bool apply = true;
    bool openat2 = true;
    int dst_root = -1;
    layer_manifest const* layer = nullptr; ///< compose: the layer being merged; export: null
    std::map<std::string, dir_meta>* dirs = nullptr;
    record_map* records = nullptr;         ///< compose only
    std::vector<build_warning>* warnings = nullptr;
    std::unordered_map<::ino_t, std::string> links; ///< source inode -> first copy's path

    bool fail(error_code const& code, std::string msg, error_code& ec, std::string* why)
    {
        ec = code;
        if (why) *why = std::move(msg);
        return false;
    }
    bool fail_errno(int e, std::string const& what, std::string const& path, error_code& ec, std::string* why)
    {
        return fail(sfs::errno_code(e), what + " " + sfs::quote(path) + ": " + errno_text(e), ec, why);
    }
    void warn(std::string const& path, std::string message, error_code code)
    {
        if (warnings) warnings->push_back({path, std::move(message), code});
    }

    bool is_implicit(std::string const& rel) const { return layer && layer->implicit_dirs.count(rel) != 0; }

    void take_record(std::string const& rel)
    {
        if (!records || !layer) return;
        records->erase(rel);
        auto it = layer->records.find(rel);
        if (it != layer->records.end()) (*records)[rel] = it->second;
    }

    /// Owner, xattrs (replacing the destination's when `replace`), and for non-directories mode and times.
    bool copy_attrs(int src_fd, int src_dir, std::string const& name, struct ::stat const& st, int dst_fd, int dst_dir,
                    std::string const& rel, bool replace, error_code& ec, std::string* why)
    {
        bool const is_link = S_ISLNK(st.st_mode);
        if (apply) {
            int const r = dst_fd >= 0 ? ::fchown(dst_fd, st.st_uid, st.st_gid)
                                      : ::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
            if (r != 0) return fail_errno(errno, "changing the owner of", rel, ec, why);
        }
        if (!is_link && !S_ISDIR(st.st_mode)) {
            int const r = dst_fd >= 0 ? ::fchmod(dst_fd, st.st_mode & 07777)
                                      : ::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, AT_SYMLINK_NOFOLLOW);
            if (r != 0) return fail_errno(errno, "changing the mode of", rel, ec, why);
        }
        sfs::node_ref src{src_fd, src_dir, name};
        sfs::node_ref dst{dst_fd, dst_dir, name};
        error_code xec;
        std::vector<sfs::xattr> const xs = sfs::list_xattrs(src, xec);
        if (xec) warn(rel, "reading the extended attributes of the source: " + xec.message(), xec);
        if (replace) {
            error_code dec;
            for (auto const& old : sfs::list_xattrs(dst, dec)) {
                bool const kept = std::any_of(xs.begin(), xs.end(), [&](auto const& x) { return x.name == old.name; });
                if (kept || (!apply && privileged_xattr(old.name))) continue;
                if (int const e = sfs::remove_xattr(dst, old.name))
                    warn(rel, "removing extended attribute " + sfs::quote(old.name) + ": " + errno_text(e),
                         sfs::errno_code(e));
            }
        }
        for (auto const& x : xs)
            if (int const e = sfs::set_xattr(dst, x.name, x.value))
                warn(rel, "setting extended attribute " + sfs::quote(x.name) + ": " + errno_text(e),
                     sfs::errno_code(e));
        if (!S_ISDIR(st.st_mode)) {
            ::timespec const ts[2] = {st.st_atim, st.st_mtim};
            int const r =
                dst_fd >= 0 ? ::futimens(dst_fd, ts) : ::utimensat(dst_dir, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
            if (r != 0) return fail_errno(errno, "setting the times of", rel, ec, why);
        }
        return true;
    }

    /// A hardlink to the first copy of the same source inode, if there was one.
    bool link_copy(struct ::stat const& st, int dst_dir, std::string const& name, std::string const& rel, bool& done)
    {
        done = false;
        if (st.st_nlink < 2) return true;
        auto [it, inserted] = links.try_emplace(st.st_ino, rel);
        if (inserted) return true;
        auto [parent, base] = sfs::split_parent(it->second);
        sfs::unique_fd pfd;
        sfs::resolve_error where;
        if (sfs::open_dir(dst_root, parent, openat2, false, pfd, where) != sfs::resolve_status::ok) return true;
        std::string const b(base);
        if (::linkat(pfd.get(), b.c_str(), dst_dir, name.c_str(), 0) == 0) done = true;
        return true;
    }

    /// Copies the non-directory `name` of `src_dir` (stat `st`) to `name` in `dst_dir` (which has no such entry).
    bool copy_node(int src_dir, std::string const& name, struct ::stat const& st, int dst_dir, std::string const& rel,
                   error_code& ec, std::string* why)
    {
        bool linked = false;
        link_copy(st, dst_dir, name, rel, linked);
        if (linked) return true;
        mode_t const type = st.st_mode & S_IFMT;
        if (type == S_IFREG) {
            sfs::unique_fd in(::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!in) return fail_errno(errno, "opening", rel, ec, why);
            sfs::unique_fd out(
                ::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!out) return fail_errno(errno, "creating", rel, ec, why);
            sfs::copy_file_data(in.get(), out.get(), static_cast<std::uint64_t>(st.st_size), ec);
            if (ec) return fail(ec, "copying the data of " + sfs::quote(rel) + ": " + ec.message(), ec, why);
            return copy_attrs(in.get(), src_dir, name, st, out.get(), dst_dir, rel, false, ec, why);
        }
        if (type == S_IFLNK) {
            std::string const target = sfs::read_link(src_dir, name.c_str(), ec);
            if (ec) return fail(ec, "reading symbolic link " + sfs::quote(rel) + ": " + ec.message(), ec, why);
            if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
                return fail_errno(errno, "creating symbolic link", rel, ec, why);
        } else if (type == S_IFCHR || type == S_IFBLK || type == S_IFIFO) {
            if (::mknodat(dst_dir, name.c_str(), type | 0600, st.st_rdev) != 0)
                return fail_errno(errno, "creating node", rel, ec, why);
        } else {
            warn(rel, "a socket cannot be copied; skipped", sfs::errno_code(EOPNOTSUPP));
            return true;
        }
        return copy_attrs(-1, src_dir, name, st, -1, dst_dir, rel, false, ec, why);
    }

    /// Merges directory `src` (an open directory) into `dst` (an open directory) at `rel`.
    bool merge_dir(int src, int dst, std::string const& rel, std::size_t depth, error_code& ec, std::string* why)
    {
        if (depth > sfs::max_depth)
            return fail(make_error_code(error::limit_exceeded),
                        "directory " + sfs::quote(rel) + " is nested deeper than " + std::to_string(sfs::max_depth),
                        ec, why);
        std::vector<std::string> const names = sfs::list_dir(src, ec);
        if (ec) return fail(ec, "listing " + sfs::quote(rel) + ": " + ec.message(), ec, why);
        for (auto const& name : names) {
            std::string const child = sfs::join(rel, name);
            struct ::stat sst, dst_st;
            if (::fstatat(src, name.c_str(), &sst, AT_SYMLINK_NOFOLLOW) != 0)
                return fail_errno(errno, "reading", child, ec, why);
            bool exists = ::fstatat(dst, name.c_str(), &dst_st, AT_SYMLINK_NOFOLLOW) == 0;
            if (!exists && errno != ENOENT) return fail_errno(errno, "reading", child, ec, why);
            if (S_ISDIR(sst.st_mode)) {
                bool const merge_into = exists && S_ISDIR(dst_st.st_mode);
                if (!merge_into) {
                    if (exists && !remove(dst, name, child, ec, why)) return false;
                    if (::mkdirat(dst, name.c_str(), 0700) != 0)
                        return fail_errno(errno, "creating directory", child, ec, why);
                }
                sfs::unique_fd s(sfs::open_dir_fd(src, name.c_str()));
                if (!s) return fail_errno(errno, "opening", child, ec, why);
                sfs::unique_fd d(sfs::open_dir_fd(dst, name.c_str()));
                if (!d) return fail_errno(errno, "opening", child, ec, why);
                if (!merge_into || !is_implicit(child)) {
                    if (!copy_attrs(s.get(), src, name, sst, d.get(), dst, child, merge_into, ec, why)) return false;
                    (*dirs)[child] = {static_cast<std::uint32_t>(sst.st_mode & 07777), sst.st_mtim.tv_sec,
                                      static_cast<std::uint32_t>(sst.st_mtim.tv_nsec), true};
                    take_record(child);
                }
                if (!merge_dir(s.get(), d.get(), child, depth + 1, ec, why)) return false;
            } else {
                if (exists && !remove(dst, name, child, ec, why)) return false;
                if (!copy_node(src, name, sst, dst, child, ec, why)) return false;
                take_record(child);
            }
        }
        return true;
    }

    bool remove(int dir, std::string const& name, std::string const& rel, error_code& ec, std::string* why)
    {
        sfs::remove_entry(dir, name, ec);
        if (ec) return fail(ec, "removing " + sfs::quote(rel) + ": " + ec.message(), ec, why);
        forget(*dirs, rel);
        if (records) forget(*records, rel);
        return true;
    }
};

/// Applies the modes and times in `dirs` (descendants first) to the tree at `root`.
inline bool apply_dir_meta(int root, std::map<std::string, dir_meta> const& dirs, bool use_openat2, error_code& ec,
                           std::string* why)
{
    ec.clear();
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        auto const& [path, m] = *it;
        sfs::unique_fd fd;
        if (path == ".") {
            fd.reset(sfs::open_dir_fd(root, "."));
        } else {
            auto [parent, name] = sfs::split_parent(path);
            sfs::unique_fd pfd;
            sfs::resolve_error where;
            if (sfs::open_dir(root, parent, use_openat2, false, pfd, where) != sfs::resolve_status::ok) continue;
            fd.reset(sfs::open_dir_fd(pfd.get(), std::string(name).c_str()));
        }
        if (!fd) {
            if (errno == ENOENT) continue;
            int const e = errno;
            ec = sfs::errno_code(e);
            if (why) *why = "opening directory " + sfs::quote(path) + ": " + errno_text(e);
            return false;
        }
        ::timespec const ts[2] = {to_timespec(m.mtime, m.nsec), to_timespec(m.mtime, m.nsec)};
        if (::fchmod(fd.get(), m.mode) != 0 || ::futimens(fd.get(), ts) != 0) {
            int const e = errno;
            ec = sfs::errno_code(e);
            if (why) *why = "setting the mode and times of directory " + sfs::quote(path) + ": " + errno_text(e);
            return false;
        }
    }
    return true;
}

/// syncfs(2) on the file system holding `fd`.
inline bool sync_tree(int fd, std::string const& what, error_code& ec, std::string* why)
{
    if (::syncfs(fd) == 0) return true;
    int const e = errno;
    ec = sfs::errno_code(e);
    if (why) *why = "syncing " + what + ": " + errno_text(e);
    return false;
}


} // namespace detail::rootfs_impl

// --- the sink -----------------------------------------------------------------------------

struct rootfs_builder::sink_state {
    using dir_meta = detail::rootfs_impl::dir_meta;

    std::shared_ptr<config const> cfg;
    digest diff_id;
    std::filesystem::path temp;       ///< the temporary layer directory
    detail::safe_fs::unique_fd tree;  ///< its tree/, open for reading
    std::map<std::string, dir_meta> dirs;
    std::set<std::string> whiteouts;
    std::set<std::string> opaques;
    detail::rootfs_impl::record_map records;
    std::vector<build_warning> warnings;
    std::uint64_t entries = 0;
    std::vector<std::byte> buffer;
    error_code failed;
    std::string failed_why;
    bool finished = false;

    sink_state() = default;
    sink_state(sink_state const&) = delete;
    sink_state& operator=(sink_state const&) = delete;
    ~sink_state() { discard(); }

    void discard() noexcept
    {
        tree.reset();
        if (!temp.empty()) {
            error_code ec;
            detail::safe_fs::remove_tree(temp.string(), ec);
            temp.clear();
        }
    }

    bool fail(error_code const& code, std::string msg, error_code& ec, std::string* why)
    {
        failed = code;
        failed_why = std::move(msg);
        ec = failed;
        if (why) *why = failed_why;
        return false;
    }
    bool fail(error e, std::string msg, error_code& ec, std::string* why)
    {
        return fail(make_error_code(e), std::move(msg), ec, why);
    }
    bool fail_errno(int e, std::string const& what, error_code& ec, std::string* why)
    {
        return fail(detail::safe_fs::errno_code(e), what + ": " + detail::rootfs_impl::errno_text(e), ec, why);
    }
    void warn(std::string path, std::string message, error_code code)
    {
        warnings.push_back({std::move(path), std::move(message), code});
    }

    static std::string entry_name(std::string const& path) { return "entry " + detail::safe_fs::quote(path); }

    /// Opens (making missing directories) the directory `parent` of entry `path`.
    bool open_parent(std::string_view parent, std::string const& path, detail::safe_fs::unique_fd& out, error_code& ec,
                     std::string* why)
    {
        namespace sfs = detail::safe_fs;
        std::vector<std::string> created;
        sfs::resolve_error where;
        auto const st = sfs::open_dir(tree.get(), parent, cfg->openat2, true, out, where, &created);
        for (auto& c : created) dirs.emplace(std::move(c), dir_meta{});
        switch (st) {
        case sfs::resolve_status::ok: return true;
        case sfs::resolve_status::symlink:
            return fail(error::unsafe_path,
                        entry_name(path) + ": parent " + sfs::quote(where.prefix) +
                            " is a symbolic link; entries are never written through symbolic links",
                        ec, why);
        case sfs::resolve_status::not_directory:
            return fail(error::invalid_archive,
                        entry_name(path) + ": parent " + sfs::quote(where.prefix) + " is not a directory", ec, why);
        case sfs::resolve_status::missing:
            return fail(error::invalid_archive,
                        entry_name(path) + ": parent " + sfs::quote(where.prefix) + " is missing", ec, why);
        case sfs::resolve_status::failed: break;
        }
        return fail_errno(where.err, entry_name(path) + ": resolving parent " + sfs::quote(where.prefix), ec, why);
    }

    /// Mode bits the tree gets: record mode keeps the owner able to traverse and copy.
    std::uint32_t tree_mode(std::string const& path, std::uint32_t mode, bool is_dir)
    {
        std::uint32_t const need = is_dir ? 0700 : 0600;
        if (cfg->apply || (mode & need) == need) return mode;
        records[path].mode = mode;
        return mode | need;
    }

    bool owner_fits(tar_entry const& e, error_code& ec, std::string* why)
    {
        if (!cfg->apply || (e.uid < 0xffffffffu && e.gid < 0xffffffffu)) return true;
        return fail(error::unsupported_entry,
                    entry_name(e.path) + ": uid " + std::to_string(e.uid) + " / gid " + std::to_string(e.gid) +
                        " do not fit uid_t / gid_t",
                    ec, why);
    }

    /// Applies or records the owner of `node`.
    bool set_owner(detail::safe_fs::node_ref node, tar_entry const& e, error_code& ec, std::string* why)
    {
        if (!cfg->apply) {
            if (e.uid || e.gid) {
                auto& r = records[e.path];
                r.uid = e.uid;
                r.gid = e.gid;
            }
            return true;
        }
        auto const uid = static_cast<::uid_t>(e.uid);
        auto const gid = static_cast<::gid_t>(e.gid);
        std::string const name(node.name);
        int const r = node.fd >= 0 ? ::fchown(node.fd, uid, gid)
                                   : ::fchownat(node.dirfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
        if (r != 0) return fail_errno(errno, entry_name(e.path) + ": changing the owner", ec, why);
        return true;
    }

    /// Applies (or records, or warns about) the entry's xattrs; with `replace`, drops others first.
    void set_xattrs(detail::safe_fs::node_ref node, tar_entry const& e, bool replace)
    {
        namespace sfs = detail::safe_fs;
        using detail::rootfs_impl::errno_text;
        if (replace) {
            error_code lec;
            for (auto const& old : sfs::list_xattrs(node, lec)) {
                if (e.find_xattr(old.name)) continue;
                if (!cfg->apply && detail::rootfs_impl::privileged_xattr(old.name)) continue;
                if (int const err = sfs::remove_xattr(node, old.name))
                    warn(e.path, "removing extended attribute " + sfs::quote(old.name) + ": " + errno_text(err),
                         sfs::errno_code(err));
            }
        }
        for (auto const& x : e.xattrs) {
            std::string const ns = detail::rootfs_impl::ns_of(x.name);
            if (ns == "user" || (cfg->apply && detail::rootfs_impl::privileged_xattr(x.name))) {
                if (int const err = sfs::set_xattr(node, x.name, x.value))
                    warn(e.path, "extended attribute " + sfs::quote(x.name) + " not set: " + errno_text(err),
                         sfs::errno_code(err));
            } else if (detail::rootfs_impl::privileged_xattr(x.name)) {
                records[e.path].xattrs.push_back({x.name, x.value});
            } else {
                warn(e.path, "extended attribute " + sfs::quote(x.name) + " not set: unknown namespace",
                     sfs::errno_code(EOPNOTSUPP));
            }
        }
    }

    bool set_times_at(int dirfd, std::string const& name, tar_entry const& e, error_code& ec, std::string* why)
    {
        ::timespec const t = detail::rootfs_impl::to_timespec(e.mtime, e.mtime_nsec);
        ::timespec const ts[2] = {t, t};
        if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(errno, entry_name(e.path) + ": setting its times", ec, why);
        return true;
    }

    /// Writes `n` bytes at `offset`; sparse files skip whole zero blocks.
    bool write_chunk(int fd, std::byte const* data, std::size_t n, std::uint64_t offset, bool sparse,
                     std::string const& path, error_code& ec, std::string* why)
    {
        constexpr std::uint64_t block = 4096;
        std::size_t pos = 0;
        while (pos < n) {
            std::uint64_t const at = offset + pos;
            std::size_t piece = n - pos;
            if (sparse) piece = static_cast<std::size_t>(std::min<std::uint64_t>(piece, block - at % block));
            bool skip = false;
            if (sparse && piece == block && at % block == 0)
                skip = std::all_of(data + pos, data + pos + piece, [](std::byte b) { return b == std::byte{0}; });
            if (!skip) {
                for (std::size_t done = 0; done < piece;) {
                    ssize_t const w = ::pwrite(fd, data + pos + done, piece - done, static_cast<::off_t>(at + done));
                    if (w < 0) {
                        if (errno == EINTR) continue;
                        return fail_errno(errno, entry_name(path) + ": writing its data", ec, why);
                    }
                    done += static_cast<std::size_t>(w);
                }
            }
            pos += piece;
        }
        return true;
    }

    bool write_data(int fd, tar_entry const& e, byte_source_ref data, error_code& ec, std::string* why)
    {
        if (e.size == 0) return true;
        if (buffer.empty()) buffer.resize(256 * 1024);
        std::uint64_t offset = 0;
        while (offset < e.size) {
            std::size_t const want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), e.size - offset));
            error_code rec;
            std::size_t const n = data.read_some(std::span<std::byte>(buffer.data(), want), rec);
            if (rec)
                return fail(rec,
                            entry_name(e.path) + ": reading its data at byte " + std::to_string(offset) + ": " +
                                rec.message(),
                            ec, why);
            if (n == 0)
                return fail(error::truncated,
                            entry_name(e.path) + ": data ends after " + std::to_string(offset) + " of " +
                                std::to_string(e.size) + " bytes",
                            ec, why);
            if (!write_chunk(fd, buffer.data(), n, offset, e.sparse, e.path, ec, why)) return false;
            offset += n;
        }
        if (e.sparse && ::ftruncate(fd, static_cast<::off_t>(e.size)) != 0)
            return fail_errno(errno, entry_name(e.path) + ": setting its size", ec, why);
        return true;
    }

    bool add_whiteout(std::string_view parent, std::string_view name, tar_entry const& e, error_code& ec,
                      std::string* why)
    {
        namespace sfs = detail::safe_fs;
        std::string const dir = parent.empty() ? std::string(".") : std::string(parent);
        if (name == ".wh..wh..opq") {
            sfs::unique_fd pfd;
            if (!open_parent(parent, e.path, pfd, ec, why)) return false;
            opaques.insert(dir);
            return true;
        }
        if (name.substr(0, 8) == ".wh..wh.") {
            warn(e.path, "aufs metadata entry ignored", make_error_code(error::unsupported_entry));
            return true;
        }
        std::string_view const target = name.substr(4);
        if (target.empty() || target == "." || target == "..")
            return fail(error::unsafe_path,
                        entry_name(e.path) + ": whiteout names " +
                            (target.empty() ? std::string("nothing") : sfs::quote(target)),
                        ec, why);
        sfs::unique_fd pfd;
        if (!open_parent(parent, e.path, pfd, ec, why)) return false;
        whiteouts.insert(sfs::join(parent, target));
        return true;
    }

    bool add(tar_entry const& e, byte_source_ref data, error_code& ec, std::string* why)
    {
        namespace sfs = detail::safe_fs;
        std::string msg;
        if (!sfs::check_relative_path(e.path, "entry", ec, &msg)) return fail(ec, std::move(msg), ec, why);
        ++entries;
        if (e.path == ".") {
            if (!owner_fits(e, ec, why)) return false;
            if (e.type != entry_type::directory)
                return fail(error::invalid_archive,
                            "entry '.': the root must be a directory, not a " + std::string(to_string(e.type)), ec,
                            why);
            records.erase(".");
            if (!set_owner({tree.get(), -1, {}}, e, ec, why)) return false;
            set_xattrs({tree.get(), -1, {}}, e, true);
            dirs["."] = {tree_mode(".", e.mode & 07777, true), e.mtime, e.mtime_nsec, true};
            return true;
        }
        auto const [parent, name_view] = sfs::split_parent(e.path);
        if (name_view.substr(0, 4) == ".wh.") return add_whiteout(parent, name_view, e, ec, why);
        std::string const name(name_view);
        if (!owner_fits(e, ec, why)) return false;

        // A hardlink's target must be an earlier, non-directory entry of this layer.
        sfs::unique_fd target_dir;
        std::string target_name;
        if (e.type == entry_type::hardlink) {
            if (!sfs::check_relative_path(e.link_target, "hardlink target", ec, &msg))
                return fail(ec, entry_name(e.path) + ": " + msg, ec, why);
            if (e.link_target == ".")
                return fail(error::unsafe_path, entry_name(e.path) + ": hardlink to the root", ec, why);
            if (e.link_target == e.path)
                return fail(error::invalid_archive, entry_name(e.path) + ": hardlink to itself", ec, why);
            auto const [tparent, tname] = sfs::split_parent(e.link_target);
            sfs::resolve_error where;
            auto const st = sfs::open_dir(tree.get(), tparent, cfg->openat2, false, target_dir, where);
            std::string const not_earlier = entry_name(e.path) + ": hardlink target " + sfs::quote(e.link_target) +
                " is not an earlier entry of this layer";
            if (st == sfs::resolve_status::symlink)
                return fail(error::unsafe_path,
                            entry_name(e.path) + ": hardlink target " + sfs::quote(e.link_target) +
                                " crosses symbolic link " + sfs::quote(where.prefix),
                            ec, why);
            if (st == sfs::resolve_status::missing || st == sfs::resolve_status::not_directory)
                return fail(error::invalid_archive, not_earlier, ec, why);
            if (st != sfs::resolve_status::ok)
                return fail_errno(where.err, entry_name(e.path) + ": resolving hardlink target", ec, why);
            target_name = std::string(tname);
            struct ::stat tst;
            if (::fstatat(target_dir.get(), target_name.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT) return fail(error::invalid_archive, not_earlier, ec, why);
                return fail_errno(errno, entry_name(e.path) + ": reading hardlink target", ec, why);
            }
            if (S_ISDIR(tst.st_mode))
                return fail(error::invalid_archive,
                            entry_name(e.path) + ": hardlink target " + sfs::quote(e.link_target) + " is a directory",
                            ec, why);
        }
        if (e.type == entry_type::symlink) {
            if (e.link_target.empty())
                return fail(error::invalid_archive, entry_name(e.path) + ": empty symbolic link target", ec, why);
            if (e.link_target.find('\0') != std::string::npos)
                return fail(error::unsafe_path, entry_name(e.path) + ": NUL byte in the symbolic link target", ec, why);
            if (e.link_target.size() > sfs::max_path_bytes)
                return fail(error::limit_exceeded, entry_name(e.path) + ": symbolic link target too long", ec, why);
        }

        sfs::unique_fd pfd;
        if (!open_parent(parent, e.path, pfd, ec, why)) return false;
        int const dir = pfd.get();

        struct ::stat st;
        bool exists = ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!exists && errno != ENOENT) return fail_errno(errno, entry_name(e.path) + ": reading", ec, why);
        bool const dir_over_dir = exists && S_ISDIR(st.st_mode) && e.type == entry_type::directory;
        if (exists && !dir_over_dir) {
            sfs::remove_entry(dir, name, ec);
            if (ec) return fail(ec, entry_name(e.path) + ": replacing what was there: " + ec.message(), ec, why);
            detail::rootfs_impl::forget(dirs, e.path);
            detail::rootfs_impl::forget(records, e.path);
        }
        if (e.type != entry_type::hardlink) records.erase(e.path);

        std::uint32_t const mode = e.mode & 07777;
        ::timespec const t = detail::rootfs_impl::to_timespec(e.mtime, e.mtime_nsec);
        ::timespec const times[2] = {t, t};
        switch (e.type) {
        case entry_type::directory: {
            if (!dir_over_dir && ::mkdirat(dir, name.c_str(), 0700) != 0)
                return fail_errno(errno, entry_name(e.path) + ": creating the directory", ec, why);
            sfs::unique_fd fd(sfs::open_dir_fd(dir, name.c_str()));
            if (!fd) return fail_errno(errno, entry_name(e.path) + ": opening the directory", ec, why);
            if (!set_owner({fd.get(), -1, {}}, e, ec, why)) return false;
            set_xattrs({fd.get(), -1, {}}, e, dir_over_dir);
            dirs[e.path] = {tree_mode(e.path, mode, true), e.mtime, e.mtime_nsec, true};
            return true;
        }
        case entry_type::regular: {
            sfs::unique_fd fd(::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!fd) return fail_errno(errno, entry_name(e.path) + ": creating the file", ec, why);
            if (!write_data(fd.get(), e, data, ec, why)) return false;
            return finish_file(fd.get(), e, tree_mode(e.path, mode, false), times, ec, why);
        }
        case entry_type::char_device:
        case entry_type::block_device: {
            if (!cfg->apply) { // a placeholder; the record says what it is
                sfs::unique_fd fd(
                    ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
                if (!fd) return fail_errno(errno, entry_name(e.path) + ": creating the placeholder file", ec, why);
                auto& r = records[e.path];
                r.type = std::string(to_string(e.type));
                r.major = e.devmajor;
                r.minor = e.devminor;
                return finish_file(fd.get(), e, tree_mode(e.path, mode, false), times, ec, why);
            }
            ::mode_t const type = e.type == entry_type::char_device ? S_IFCHR : S_IFBLK;
            if (::mknodat(dir, name.c_str(), type | 0600, ::makedev(e.devmajor, e.devminor)) != 0)
                return fail_errno(errno, entry_name(e.path) + ": creating the device node", ec, why);
            return finish_node(dir, name, e, mode, times, ec, why);
        }
        case entry_type::fifo:
            if (::mkfifoat(dir, name.c_str(), 0600) != 0)
                return fail_errno(errno, entry_name(e.path) + ": creating the fifo", ec, why);
            return finish_node(dir, name, e, mode, times, ec, why);
        case entry_type::symlink:
            if (::symlinkat(e.link_target.c_str(), dir, name.c_str()) != 0)
                return fail_errno(errno, entry_name(e.path) + ": creating the symbolic link", ec, why);
            if (!set_owner({-1, dir, name}, e, ec, why)) return false;
            set_xattrs({-1, dir, name}, e, false);
            return set_times_at(dir, name, e, ec, why);
        case entry_type::hardlink:
            if (::linkat(target_dir.get(), target_name.c_str(), dir, name.c_str(), 0) != 0) {
                if (errno == ENOENT)
                    return fail(error::invalid_archive,
                                entry_name(e.path) + ": hardlink target " + sfs::quote(e.link_target) +
                                    " was removed by this entry",
                                ec, why);
                return fail_errno(errno, entry_name(e.path) + ": creating the hardlink", ec, why);
            }
            if (auto it = records.find(e.link_target); it != records.end()) {
                auto copy = it->second;
                records[e.path] = std::move(copy);
            } else {
                records.erase(e.path);
            }
            return true;
        }
        return fail(error::unsupported_entry, entry_name(e.path) + ": unknown entry type", ec, why);
    }

    /// Owner, mode, xattrs and times of a regular file (or placeholder) open as `fd`.
    bool finish_file(int fd, tar_entry const& e, std::uint32_t mode, ::timespec const (&times)[2], error_code& ec,
                     std::string* why)
    {
        if (!set_owner({fd, -1, {}}, e, ec, why)) return false;
        if (::fchmod(fd, mode) != 0) return fail_errno(errno, entry_name(e.path) + ": setting its mode", ec, why);
        set_xattrs({fd, -1, {}}, e, false);
        if (::futimens(fd, times) != 0) return fail_errno(errno, entry_name(e.path) + ": setting its times", ec, why);
        return true;
    }

    /// Owner, mode, xattrs and times of a device node or fifo `name` in `dir`.
    bool finish_node(int dir, std::string const& name, tar_entry const& e, std::uint32_t mode,
                     ::timespec const (&times)[2], error_code& ec, std::string* why)
    {
        if (!set_owner({-1, dir, name}, e, ec, why)) return false;
        if (::fchmodat(dir, name.c_str(), mode, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(errno, entry_name(e.path) + ": setting its mode", ec, why);
        set_xattrs({-1, dir, name}, e, false);
        if (::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno(errno, entry_name(e.path) + ": setting its times", ec, why);
        return true;
    }

    std::string manifest_json() const
    {
        namespace ri = detail::rootfs_impl;
        boost::json::object o;
        o["format"] = ri::format_version;
        o["kind"] = rootfs_builder::kind;
        o["identity"] = cfg->identity;
        o["diff_id"] = diff_id.str();
        o["entries"] = entries;
        o["whiteouts"] = ri::strings_to_json(whiteouts);
        o["opaque"] = ri::strings_to_json(opaques);
        boost::json::array implicit;
        for (auto const& [path, m] : dirs)
            if (!m.is_explicit) implicit.emplace_back(path);
        o["implicit_dirs"] = std::move(implicit);
        o["records"] = ri::records_to_json(records);
        o["warnings"] = ri::warnings_to_json(warnings);
        return boost::json::serialize(o);
    }
};

// --- prepared_layer and layer_sink ----------------------------------------------------------

OCISTORE_DECL rootfs_builder::prepared_layer&
rootfs_builder::prepared_layer::operator=(prepared_layer&& other) noexcept
{
    if (this != &other) {
        if (!temp_.empty()) {
            error_code ec;
            detail::safe_fs::remove_tree(temp_.string(), ec);
        }
        config_ = std::move(other.config_);
        diff_id_ = std::move(other.diff_id_);
        temp_ = std::exchange(other.temp_, {});
        entries_ = other.entries_;
        warnings_ = std::move(other.warnings_);
    }
    return *this;
}

OCISTORE_DECL rootfs_builder::prepared_layer::~prepared_layer()
{
    if (!temp_.empty()) {
        error_code ec;
        detail::safe_fs::remove_tree(temp_.string(), ec);
    }
}

OCISTORE_DECL rootfs_builder::layer_sink::layer_sink(std::unique_ptr<sink_state> state) noexcept
    : state_(std::move(state))
{
}
OCISTORE_DECL rootfs_builder::layer_sink::layer_sink(layer_sink&& other) noexcept = default;
OCISTORE_DECL rootfs_builder::layer_sink& rootfs_builder::layer_sink::operator=(layer_sink&& other) noexcept = default;
OCISTORE_DECL rootfs_builder::layer_sink::~layer_sink() = default;

OCISTORE_DECL void rootfs_builder::layer_sink::add_entry(tar_entry const& entry, byte_source_ref data, error_code& ec,
                                                         std::string* why)
{
    if (!state_) {
        ec = make_error_code(error::invalid_argument);
        detail::rootfs_impl::set_why(why, "add_entry on a moved-from layer sink");
        return;
    }
    auto& s = *state_;
    if (s.failed) {
        ec = s.failed;
        detail::rootfs_impl::set_why(why, s.failed_why);
        return;
    }
    if (s.finished) {
        ec = make_error_code(error::invalid_argument);
        detail::rootfs_impl::set_why(why, "add_entry after finish");
        return;
    }
    ec.clear();
    s.add(entry, data, ec, why);
}

OCISTORE_DECL void rootfs_builder::layer_sink::add_entry(tar_entry const& entry, byte_source_ref data)
{
    detail::throw_on_error([&](error_code& ec, std::string* why) {
        add_entry(entry, data, ec, why);
        return 0;
    });
}

OCISTORE_DECL rootfs_builder::prepared_layer rootfs_builder::layer_sink::finish(error_code& ec, std::string* why)
{
    namespace ri = detail::rootfs_impl;
    prepared_layer out;
    if (!state_) {
        ec = make_error_code(error::invalid_argument);
        ri::set_why(why, "finish on a moved-from layer sink");
        return out;
    }
    auto& s = *state_;
    if (s.failed) {
        ec = s.failed;
        ri::set_why(why, s.failed_why);
        return out;
    }
    if (s.finished) {
        ec = make_error_code(error::invalid_argument);
        ri::set_why(why, "finish called twice");
        return out;
    }
    ec.clear();
    std::string msg;
    if (!ri::apply_dir_meta(s.tree.get(), s.dirs, s.cfg->openat2, ec, &msg)) {
        s.fail(ec, "layer " + s.diff_id.str() + ": " + msg, ec, why);
        return out;
    }
    write_file_atomically(s.temp / "layer.json", s.manifest_json(), atomic_file_options{0644, false}, ec);
    if (ec) {
        s.fail(ec, "writing " + (s.temp / "layer.json").string() + ": " + ec.message(), ec, why);
        return out;
    }
    if (s.cfg->durable && !ri::sync_tree(s.tree.get(), "layer " + s.diff_id.str(), ec, &msg)) {
        s.fail(ec, msg, ec, why);
        return out;
    }
    s.finished = true;
    s.tree.reset();
    out.config_ = s.cfg;
    out.diff_id_ = s.diff_id;
    out.temp_ = std::exchange(s.temp, {});
    out.entries_ = s.entries;
    out.warnings_ = s.warnings;
    return out;
}

OCISTORE_DECL rootfs_builder::prepared_layer rootfs_builder::layer_sink::finish()
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return finish(ec, why); });
}

OCISTORE_DECL std::vector<build_warning> const& rootfs_builder::layer_sink::warnings() const noexcept
{
    static std::vector<build_warning> const none;
    return state_ ? state_->warnings : none;
}

// --- the builder ------------------------------------------------------------------------------

OCISTORE_DECL rootfs_builder::rootfs_builder(std::filesystem::path root, rootfs_options options)
{
    auto c = std::make_shared<config>();
    c->root = root / "rootfs";
    c->layers = c->root / "layers";
    c->images = c->root / "images";
    c->work = options.work_dir.empty() ? root / "tmp" : options.work_dir;
    c->apply = options.ownership == ownership_mode::apply ||
        (options.ownership == ownership_mode::automatic && ::geteuid() == 0);
    c->openat2 = options.resolution == path_resolution::automatic;
    c->durable = options.durable;
    c->identity = std::string("rootfs_builder/1 ownership=") + (c->apply ? "apply" : "record");
    config_ = std::move(c);
}

OCISTORE_DECL std::string const& rootfs_builder::identity() const noexcept { return config_->identity; }

OCISTORE_DECL ownership_mode rootfs_builder::ownership() const noexcept
{
    return config_->apply ? ownership_mode::apply : ownership_mode::record;
}

OCISTORE_DECL bool rootfs_builder::uses_openat2() const noexcept
{
    return config_->openat2 && detail::safe_fs::openat2_available();
}

OCISTORE_DECL std::filesystem::path rootfs_builder::layer_directory(digest const& diff_id) const
{
    return config_->layers / diff_id.path_safe();
}

OCISTORE_DECL std::filesystem::path rootfs_builder::image_directory(digest const& key) const
{
    return config_->images / key.path_safe();
}

OCISTORE_DECL std::vector<std::filesystem::path> rootfs_builder::artifact_paths(layer_result const& layer) const
{
    return {layer_directory(layer.diff_id)};
}

OCISTORE_DECL std::vector<std::filesystem::path> rootfs_builder::artifact_paths(image_result const& image) const
{
    return {image_directory(image.key)};
}

OCISTORE_DECL void rootfs_builder::prune_artifacts(std::span<digest const> live_layers,
                                                   std::span<digest const> live_images, prune_options const& options,
                                                   prune_report& report, error_code& ec)
{
    std::vector<digest> layers(live_layers.begin(), live_layers.end());
    std::vector<digest> images(live_images.begin(), live_images.end());
    std::sort(layers.begin(), layers.end());
    std::sort(images.begin(), images.end());
    report.image_artifacts += detail::prune_keyed_entries(config_->images, "", images, options, report, ec);
    if (ec) return;
    report.layer_artifacts += detail::prune_keyed_entries(config_->layers, "", layers, options, report, ec);
}

OCISTORE_DECL rootfs_builder::layer_sink rootfs_builder::begin_layer(layer_info const& info, error_code& ec,
                                                                     std::string* why)
{
    namespace ri = detail::rootfs_impl;
    namespace sfs = detail::safe_fs;
    auto st = std::make_unique<sink_state>();
    st->cfg = config_;
    st->diff_id = info.diff_id;
    if (info.diff_id.empty()) {
        st->fail(error::invalid_argument, "begin_layer: layer_info::diff_id is empty", ec, why);
        return layer_sink(std::move(st));
    }
    st->temp = ri::make_temp_dir(config_->work, "layer", info.diff_id, ec, why);
    if (ec) {
        st->failed = ec;
        st->failed_why = why ? *why : ec.message();
        return layer_sink(std::move(st));
    }
    if (::mkdir((st->temp / "tree").c_str(), 0700) != 0) {
        int const e = errno;
        st->fail_errno(e, "creating " + (st->temp / "tree").string(), ec, why);
        return layer_sink(std::move(st));
    }
    st->tree.reset(sfs::open_dir_fd(AT_FDCWD, (st->temp / "tree").c_str()));
    if (!st->tree) {
        int const e = errno;
        st->fail_errno(e, "opening " + (st->temp / "tree").string(), ec, why);
        return layer_sink(std::move(st));
    }
    st->dirs.emplace(".", ri::dir_meta{});
    ec.clear();
    return layer_sink(std::move(st));
}

OCISTORE_DECL rootfs_builder::layer_sink rootfs_builder::begin_layer(layer_info const& info)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return begin_layer(info, ec, why); });
}

OCISTORE_DECL rootfs_builder::layer_result rootfs_builder::commit_layer(prepared_layer&& prepared, error_code& ec,
                                                                        std::string* why)
{
    namespace ri = detail::rootfs_impl;
    namespace sfs = detail::safe_fs;
    ec.clear();
    layer_result result;
    if (!prepared.has_tree()) {
        ri::set_why(why, "commit_layer: the prepared layer holds no tree (failed, moved from, or committed)");
        ec = make_error_code(error::invalid_argument);
        return result;
    }
    if (prepared.config_->identity != config_->identity) {
        ri::set_why(why, "commit_layer: the layer was prepared under identity \"" + prepared.config_->identity +
                             "\", this builder's is \"" + config_->identity + "\"");
        ec = make_error_code(error::invalid_argument);
        return result;
    }
    std::error_code fec;
    std::filesystem::create_directories(config_->layers, fec);
    if (fec) {
        ec = fec;
        ri::set_why(why, "creating " + config_->layers.string() + ": " + fec.message());
        return result;
    }
    sfs::unique_fd layers(::open(config_->layers.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    sfs::unique_fd work(::open(prepared.temp_.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!layers || !work) {
        ec = sfs::errno_code(errno);
        ri::set_why(why, "commit_layer: opening the layer directories: " + ec.message());
        return result;
    }
    std::string const temp_name = prepared.temp_.filename().string();
    std::string const final_name = prepared.diff_id_.path_safe();
    std::filesystem::path const final_path = config_->layers / final_name;
    if (!sfs::rename_noreplace(work.get(), temp_name, layers.get(), final_name, ec)) {
        if (ec) {
            ri::set_why(why, "publishing layer " + prepared.diff_id_.str() + ": " + ec.message());
            return result;
        }
        error_code lec;
        if (auto held = ri::load_layer(final_path, prepared.diff_id_, config_->identity, lec)) {
            // Someone else published a valid one first: keep it.
            prepared = prepared_layer();
            return layer_result{held->diff_id, final_path, held->entries, std::move(held->warnings)};
        }
        sfs::rename_exchange(work.get(), temp_name, layers.get(), final_name, ec);
        if (ec) {
            ri::set_why(why, "replacing layer " + prepared.diff_id_.str() + ": " + ec.message());
            return result;
        }
        // The temporary name now holds the replaced artifact; the prepared layer's destructor removes it.
    } else {
        prepared.temp_.clear();
    }
    if (config_->durable) {
        error_code sec;
        fsync_directory(config_->layers, sec);
    }
    result = layer_result{prepared.diff_id_, final_path, prepared.entries_, std::move(prepared.warnings_)};
    prepared = prepared_layer();
    return result;
}

OCISTORE_DECL rootfs_builder::layer_result rootfs_builder::commit_layer(prepared_layer&& prepared)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return commit_layer(std::move(prepared), ec, why); });
}

OCISTORE_DECL bool rootfs_builder::has_layer(digest const& diff_id, error_code& ec)
{
    return layer(diff_id, ec).has_value();
}

OCISTORE_DECL bool rootfs_builder::has_layer(digest const& diff_id)
{
    error_code ec;
    bool const r = has_layer(diff_id, ec);
    detail::throw_if(ec, "rootfs_builder: has_layer");
    return r;
}

OCISTORE_DECL std::optional<rootfs_builder::layer_result> rootfs_builder::layer(digest const& diff_id, error_code& ec)
{
    ec.clear();
    if (diff_id.empty()) return std::nullopt;
    std::filesystem::path const dir = layer_directory(diff_id);
    auto m = detail::rootfs_impl::load_layer(dir, diff_id, config_->identity, ec);
    if (!m) return std::nullopt;
    return layer_result{m->diff_id, dir, m->entries, std::move(m->warnings)};
}

OCISTORE_DECL std::optional<rootfs_builder::layer_result> rootfs_builder::layer(digest const& diff_id)
{
    error_code ec;
    auto r = layer(diff_id, ec);
    detail::throw_if(ec, "rootfs_builder: layer");
    return r;
}

OCISTORE_DECL rootfs_builder::image_result rootfs_builder::compose(digest const& key,
                                                                   std::span<layer_result const> layers,
                                                                   error_code& ec, std::string* why)
{
    namespace ri = detail::rootfs_impl;
    namespace sfs = detail::safe_fs;
    ec.clear();
    image_result result;
    if (key.empty()) {
        ri::set_why(why, "compose: the image key is empty");
        ec = make_error_code(error::invalid_argument);
        return result;
    }
    // Every layer must be held now; its manifest drives the merge.
    std::vector<ri::layer_manifest> manifests;
    manifests.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
        auto m = ri::load_layer(layer_directory(layers[i].diff_id), layers[i].diff_id, config_->identity, ec);
        if (ec) {
            ri::set_why(why, "compose: reading layer " + layers[i].diff_id.str() + ": " + ec.message());
            return result;
        }
        if (!m) {
            ri::set_why(why, "compose: layer " + std::to_string(i) + " (" + layers[i].diff_id.str() +
                                 ") is not held by this builder");
            ec = make_error_code(error::not_found);
            return result;
        }
        manifests.push_back(std::move(*m));
    }

    std::filesystem::path temp = ri::make_temp_dir(config_->work, "image", key, ec, why);
    if (ec) return result;
    struct temp_guard {
        std::filesystem::path& p;
        ~temp_guard()
        {
            error_code e;
            if (!p.empty()) sfs::remove_tree(p.string(), e);
        }
    } guard{temp};

    auto fail_errno = [&](int e, std::string const& what) {
        ec = sfs::errno_code(e);
        ri::set_why(why, what + ": " + ri::errno_text(e));
        return result;
    };
    if (::mkdir((temp / "rootfs").c_str(), 0700) != 0)
        return fail_errno(errno, "creating " + (temp / "rootfs").string());
    sfs::unique_fd root(sfs::open_dir_fd(AT_FDCWD, (temp / "rootfs").c_str()));
    if (!root) return fail_errno(errno, "opening " + (temp / "rootfs").string());
    if (config_->apply && ::fchown(root.get(), 0, 0) != 0) return fail_errno(errno, "changing the owner of the root");

    std::map<std::string, ri::dir_meta> dirs{{".", ri::dir_meta{}}};
    ri::record_map records;
    std::vector<build_warning> warnings;
    for (std::size_t i = 0; i < manifests.size(); ++i) {
        auto const& m = manifests[i];
        std::string const where = "compose: layer " + std::to_string(i) + " (" + m.diff_id.str() + "): ";
        // Opaque directories and whiteouts hide what the lower layers have, before the layer's
        // own entries are merged, whatever their order in the archive.
        for (auto const& d : m.opaques) {
            sfs::unique_fd fd;
            sfs::resolve_error rerr;
            if (sfs::open_dir(root.get(), d, config_->openat2, false, fd, rerr) != sfs::resolve_status::ok) continue;
            sfs::clear_dir(fd.get(), ec);
            if (ec) {
                ri::set_why(why, where + "clearing opaque directory " + sfs::quote(d) + ": " + ec.message());
                return result;
            }
            ri::forget_children(dirs, d);
            ri::forget_children(records, d);
        }
        for (auto const& w : m.whiteouts) {
            auto const [parent, name] = sfs::split_parent(w);
            sfs::unique_fd fd;
            sfs::resolve_error rerr;
            if (sfs::open_dir(root.get(), parent, config_->openat2, false, fd, rerr) != sfs::resolve_status::ok)
                continue;
            sfs::remove_entry(fd.get(), std::string(name), ec);
            if (ec) {
                ri::set_why(why, where + "applying whiteout " + sfs::quote(w) + ": " + ec.message());
                return result;
            }
            ri::forget(dirs, w);
            ri::forget(records, w);
        }
        std::filesystem::path const tree_path = layer_directory(m.diff_id) / "tree";
        sfs::unique_fd tree(sfs::open_dir_fd(AT_FDCWD, tree_path.c_str()));
        if (!tree) return fail_errno(errno, where + "opening " + tree_path.string());
        ri::tree_copier copier;
        copier.apply = config_->apply;
        copier.openat2 = config_->openat2;
        copier.dst_root = root.get();
        copier.layer = &m;
        copier.dirs = &dirs;
        copier.records = &records;
        copier.warnings = &warnings;
        if (!m.implicit_dirs.count(".")) {
            struct ::stat st;
            if (::fstat(tree.get(), &st) != 0) return fail_errno(errno, where + "reading the layer root");
            if (!copier.copy_attrs(tree.get(), -1, {}, st, root.get(), -1, ".", true, ec, why)) return result;
            dirs["."] = {static_cast<std::uint32_t>(st.st_mode & 07777), st.st_mtim.tv_sec,
                         static_cast<std::uint32_t>(st.st_mtim.tv_nsec), true};
            copier.take_record(".");
        }
        std::string msg;
        if (!copier.merge_dir(tree.get(), root.get(), ".", 0, ec, &msg)) {
            ri::set_why(why, where + msg);
            return result;
        }
    }
    std::string msg;
    if (!ri::apply_dir_meta(root.get(), dirs, config_->openat2, ec, &msg)) {
        ri::set_why(why, "compose: " + msg);
        return result;
    }

    boost::json::object o;
    o["format"] = ri::format_version;
    o["kind"] = kind;
    o["identity"] = config_->identity;
    o["key"] = key.str();
    boost::json::array ids;
    for (auto const& m : manifests) ids.emplace_back(m.diff_id.str());
    o["layers"] = std::move(ids);
    o["records"] = ri::records_to_json(records);
    o["warnings"] = ri::warnings_to_json(warnings);
    write_file_atomically(temp / "image.json", boost::json::serialize(o), atomic_file_options{0644, false}, ec);
    if (ec) {
        ri::set_why(why, "compose: writing image.json: " + ec.message());
        return result;
    }
    if (config_->durable && !ri::sync_tree(root.get(), "image " + key.str(), ec, why)) return result;

    std::error_code fec;
    std::filesystem::create_directories(config_->images, fec);
    if (fec) {
        ec = fec;
        ri::set_why(why, "creating " + config_->images.string() + ": " + fec.message());
        return result;
    }
    sfs::unique_fd images(::open(config_->images.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    sfs::unique_fd work(::open(temp.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!images || !work) return fail_errno(errno, "compose: opening the image directories");
    std::string const temp_name = temp.filename().string();
    std::string const final_name = key.path_safe();
    if (!sfs::rename_noreplace(work.get(), temp_name, images.get(), final_name, ec)) {
        if (ec) {
            ri::set_why(why, "compose: publishing image " + key.str() + ": " + ec.message());
            return result;
        }
        sfs::rename_exchange(work.get(), temp_name, images.get(), final_name, ec);
        if (ec) {
            ri::set_why(why, "compose: replacing image " + key.str() + ": " + ec.message());
            return result;
        }
        // The guard removes the replaced image from the temporary name.
    } else {
        temp.clear();
    }
    if (config_->durable) {
        error_code sec;
        fsync_directory(config_->images, sec);
    }
    result.key = key;
    result.path = image_directory(key);
    result.rootfs = result.path / "rootfs";
    for (auto const& m : manifests) result.layers.push_back(m.diff_id);
    result.warnings = std::move(warnings);
    return result;
}

OCISTORE_DECL rootfs_builder::image_result rootfs_builder::compose(digest const& key,
                                                                   std::span<layer_result const> layers)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return compose(key, layers, ec, why); });
}

OCISTORE_DECL std::optional<rootfs_builder::image_result> rootfs_builder::image(digest const& key, error_code& ec)
{
    ec.clear();
    if (key.empty()) return std::nullopt;
    std::filesystem::path const dir = image_directory(key);
    auto m = detail::rootfs_impl::load_image(dir, key, config_->identity, ec);
    if (!m) return std::nullopt;
    return image_result{m->key, dir, dir / "rootfs", std::move(m->layers), std::move(m->warnings)};
}

OCISTORE_DECL std::optional<rootfs_builder::image_result> rootfs_builder::image(digest const& key)
{
    error_code ec;
    auto r = image(key, ec);
    detail::throw_if(ec, "rootfs_builder: image");
    return r;
}

OCISTORE_DECL std::vector<build_warning> rootfs_builder::export_rootfs(digest const& key,
                                                                       std::filesystem::path const& target,
                                                                       error_code& ec, std::string* why)
{
    std::vector<build_warning> warnings;
    namespace ri = detail::rootfs_impl;
    namespace sfs = detail::safe_fs;
    auto img = image(key, ec);
    if (ec) {
        ri::set_why(why, "export_rootfs: reading image " + key.str() + ": " + ec.message());
        return warnings;
    }
    if (!img) {
        ec = make_error_code(error::not_found);
        ri::set_why(why, "export_rootfs: image " + key.str() + " is not held by this builder");
        return warnings;
    }
    if (::mkdir(target.c_str(), 0700) != 0) {
        int const e = errno;
        if (e != EEXIST) {
            ec = sfs::errno_code(e);
            ri::set_why(why, "export_rootfs: creating \"" + target.string() + "\": " + ri::errno_text(e));
            return warnings;
        }
    }
    sfs::unique_fd dst(sfs::open_dir_fd(AT_FDCWD, target.c_str()));
    if (!dst) {
        int const e = errno;
        ec = e == ENOTDIR || e == ELOOP ? make_error_code(error::invalid_argument) : sfs::errno_code(e);
        ri::set_why(why, "export_rootfs: \"" + target.string() + "\" is not a directory: " + ri::errno_text(e));
        return warnings;
    }
    if (!sfs::list_dir(dst.get(), ec).empty() || ec) {
        if (!ec) ec = make_error_code(error::invalid_argument);
        ri::set_why(why, "export_rootfs: \"" + target.string() + "\" is not an empty directory");
        return warnings;
    }
    sfs::unique_fd src(sfs::open_dir_fd(AT_FDCWD, img->rootfs.c_str()));
    if (!src) {
        int const e = errno;
        ec = sfs::errno_code(e);
        ri::set_why(why, "export_rootfs: opening " + img->rootfs.string() + ": " + ri::errno_text(e));
        return warnings;
    }
    std::map<std::string, ri::dir_meta> dirs;
    ri::tree_copier copier;
    copier.apply = config_->apply;
    copier.openat2 = config_->openat2;
    copier.dst_root = dst.get();
    copier.dirs = &dirs;
    copier.warnings = &warnings;
    struct ::stat st;
    if (::fstat(src.get(), &st) != 0) {
        ec = sfs::errno_code(errno);
        ri::set_why(why, "export_rootfs: reading the image root: " + ec.message());
        return warnings;
    }
    std::string msg;
    if (!copier.copy_attrs(src.get(), -1, {}, st, dst.get(), -1, ".", true, ec, &msg) ||
        !copier.merge_dir(src.get(), dst.get(), ".", 0, ec, &msg)) {
        ri::set_why(why, "export_rootfs: " + msg);
        return warnings;
    }
    dirs["."] = {static_cast<std::uint32_t>(st.st_mode & 07777), st.st_mtim.tv_sec,
                 static_cast<std::uint32_t>(st.st_mtim.tv_nsec), true};
    if (!ri::apply_dir_meta(dst.get(), dirs, config_->openat2, ec, &msg)) {
        ri::set_why(why, "export_rootfs: " + msg);
        return warnings;
    }
    return warnings;
}

OCISTORE_DECL std::vector<build_warning> rootfs_builder::export_rootfs(digest const& key,
                                                                       std::filesystem::path const& target)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return export_rootfs(key, target, ec, why); });
}

} // namespace ocistore
