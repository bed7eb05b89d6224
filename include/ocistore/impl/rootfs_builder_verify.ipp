// Non-template bodies for ocistore/builder/rootfs_builder.hpp: the verify hooks (verifiable_artifact_builder).
#pragma once

#include <ocistore/builder/rootfs_builder.hpp>
#include <ocistore/impl/rootfs_builder.ipp>
#include <ocistore/detail/safe_fs.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace ocistore {
namespace detail::rootfs_verify_impl {

namespace ri = detail::rootfs_impl;
namespace sfs = detail::safe_fs;

/// How a metadata file of a held artifact looks to verify.
struct metadata_read {
    std::optional<boost::json::object> object; ///< the document, when it is this builder's and well-formed
    bool foreign = false;                      ///< well-formed, but written under another identity: not ours to judge
    std::string problem;                       ///< why it is damaged (when neither of the above)
    std::uint64_t bytes = 0;
};

/// Reads `file` (layer.json or image.json) and checks its header; `ec` only for I/O failures.
inline metadata_read read_metadata(std::filesystem::path const& file, std::string const& identity, error_code& ec)
{
    ec.clear();
    metadata_read out;
    error_code rec;
    std::string const text = sfs::read_small_file(file.string(), ri::max_metadata_size, rec);
    if (rec == make_error_code(error::not_found)) return out.problem = "is missing", out;
    if (rec == make_error_code(error::unsafe_path)) return out.problem = "is not a regular file", out;
    if (rec == make_error_code(error::too_large)) return out.problem = "is larger than any metadata written", out;
    if (rec) return ec = rec, out;
    out.bytes = text.size();
    boost::json::parse_options opt;
    opt.allow_invalid_utf8 = true; // paths are bytes
    boost::json::parser p({}, opt);
    std::error_code jec;
    std::size_t const used = p.write(text.data(), text.size(), jec);
    if (jec) return out.problem = "is not valid JSON at byte " + std::to_string(used) + ": " + jec.message(), out;
    boost::json::value v = p.release();
    if (!v.is_object()) return out.problem = "is not a JSON object", out;
    ri::json_in in;
    auto const& o = v.get_object();
    auto const format = in.number(o, "format", 0, true);
    std::string const kind = in.string(o, "kind");
    std::string const id = in.string(o, "identity");
    if (!in.ok) return out.problem = "lacks a well-formed \"format\", \"kind\" or \"identity\"", out;
    if (format != static_cast<std::uint64_t>(ri::format_version))
        return out.problem = "has format " + std::to_string(format) + ", not " + std::to_string(ri::format_version), out;
    if (kind != rootfs_builder::kind) return out.problem = "is of kind \"" + kind + "\", not \"rootfs\"", out;
    if (id != identity) return out.foreign = true, out;
    out.object = std::move(v.get_object());
    return out;
}

/// The first of `paths` (relative to `tree`, "." = the tree itself) that is missing, or empty.
template <class Paths> std::optional<std::string> first_missing(std::filesystem::path const& tree, Paths const& paths)
{
    for (auto const& entry : paths) {
        std::string const& rel = [&]() -> std::string const& {
            if constexpr (requires { entry.first; }) return entry.first;
            else return entry;
        }();
        struct ::stat st;
        auto const full = rel == "." ? tree : tree / rel;
        if (::lstat(full.c_str(), &st) != 0) return rel;
    }
    return std::nullopt;
}

} // namespace detail::rootfs_verify_impl

OCISTORE_DECL artifact_check rootfs_builder::verify_layer(digest const& diff_id, layer_replay const& /*replay*/,
                                                          error_code& ec)
{
    namespace vi = detail::rootfs_verify_impl;
    namespace ri = detail::rootfs_impl;
    ec.clear();
    artifact_check out;
    if (diff_id.empty()) return out;
    std::filesystem::path const dir = layer_directory(diff_id), file = dir / "layer.json", tree = dir / "tree";
    auto found = [&](verify_kind what, std::filesystem::path const& p, error e, std::string reason) {
        out.findings.push_back(verify_finding{what, p, diff_id.str(), make_error_code(e), std::move(reason), {}, false});
        return out;
    };
    struct ::stat st;
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT) ec = vi::sfs::errno_code(errno);
        return out;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++out.checked;
        return found(verify_kind::layer_artifact, dir, error::invalid_archive, "layer tree is not a directory");
    }
    auto m = vi::read_metadata(file, config_->identity, ec);
    if (ec || m.foreign) return out;
    ++out.checked;
    out.bytes += m.bytes;
    if (!m.object) return found(verify_kind::metadata, file, error::metadata_corrupt, "layer.json " + m.problem);
    ri::json_in in;
    digest const named = in.digest_of(*m.object, "diff_id");
    auto const whiteouts = in.strings(*m.object, "whiteouts");
    auto const opaques = in.strings(*m.object, "opaque");
    auto const implicit = in.strings(*m.object, "implicit_dirs");
    auto const records = in.records(*m.object);
    in.number(*m.object, "entries", 0, true);
    in.warnings(*m.object);
    if (!in.ok) return found(verify_kind::metadata, file, error::metadata_corrupt, "layer.json has a missing or malformed field");
    if (named != diff_id)
        return found(verify_kind::metadata, file, error::metadata_corrupt, "layer.json names diff_id " + named.str());
    for (auto const* list : {&whiteouts, &opaques})
        for (auto const& p : *list) {
            error_code pec;
            std::string pwhy;
            if (!vi::sfs::check_relative_path(p, "path", pec, &pwhy) || (list == &whiteouts && p == "."))
                return found(verify_kind::metadata, file, error::metadata_corrupt, "layer.json lists a hostile path: " + pwhy);
        }
    if (::lstat(tree.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return found(verify_kind::layer_artifact, dir, error::not_found, "layer tree has no tree/ directory");
    for (auto const& missing : {vi::first_missing(tree, records), vi::first_missing(tree, implicit)})
        if (missing)
            return found(verify_kind::layer_artifact, dir, error::not_found,
                         "layer tree lacks \"" + *missing + "\", which layer.json describes");
    return out;
}

OCISTORE_DECL artifact_check rootfs_builder::verify_image(digest const& key, std::span<verified_layer const> layers,
                                                          error_code& ec)
{
    namespace vi = detail::rootfs_verify_impl;
    namespace ri = detail::rootfs_impl;
    ec.clear();
    artifact_check out;
    if (key.empty()) return out;
    std::filesystem::path const dir = image_directory(key), file = dir / "image.json", tree = dir / "rootfs";
    auto found = [&](verify_kind what, std::filesystem::path const& p, error e, std::string reason) {
        out.findings.push_back(verify_finding{what, p, key.str(), make_error_code(e), std::move(reason), {}, false});
        return out;
    };
    struct ::stat st;
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT) ec = vi::sfs::errno_code(errno);
        return out;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++out.checked;
        return found(verify_kind::image_artifact, dir, error::invalid_archive, "image tree is not a directory");
    }
    auto m = vi::read_metadata(file, config_->identity, ec);
    if (ec || m.foreign) return out;
    ++out.checked;
    out.bytes += m.bytes;
    if (!m.object) return found(verify_kind::metadata, file, error::metadata_corrupt, "image.json " + m.problem);
    ri::json_in in;
    digest const named = in.digest_of(*m.object, "key");
    std::vector<digest> listed;
    for (auto const& v : in.array(*m.object, "layers")) {
        error_code dec;
        listed.push_back(digest::parse(v.is_string() ? ri::sv(v.get_string()) : std::string_view(), dec));
        if (dec) in.ok = false;
    }
    auto const records = in.records(*m.object);
    in.warnings(*m.object);
    if (!in.ok) return found(verify_kind::metadata, file, error::metadata_corrupt, "image.json has a missing or malformed field");
    if (named != key) return found(verify_kind::metadata, file, error::metadata_corrupt, "image.json names image " + named.str());
    bool same = listed.size() == layers.size();
    for (std::size_t i = 0; same && i < listed.size(); ++i) same = listed[i] == layers[i].diff_id;
    if (!same)
        return found(verify_kind::metadata, file, error::metadata_corrupt,
                     "image.json lists " + std::to_string(listed.size()) + " layers that are not the image's " +
                         std::to_string(layers.size()) + " diff_ids");
    if (::lstat(tree.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return found(verify_kind::image_artifact, dir, error::not_found, "image tree has no rootfs/ directory");
    if (auto missing = vi::first_missing(tree, records))
        return found(verify_kind::image_artifact, dir, error::not_found,
                     "image tree lacks \"" + *missing + "\", which image.json describes");
    return out;
}

} // namespace ocistore
