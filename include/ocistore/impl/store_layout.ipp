// Non-template bodies for ocistore/detail/store_layout.hpp.
#pragma once

#include <ocistore/atomic_file.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/json.hpp>
#include <ocistore/detail/safe_fs.hpp>
#include <ocistore/detail/store_layout.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ocistore::detail {

OCISTORE_DECL std::string reference_lock_key(std::string_view name, platform const& p)
{
    std::string key(name);
    key += '\n';
    key += p.to_string();
    return "refs/" + std::string(digest_of<sha256_hasher>(key).encoded());
}

OCISTORE_DECL void ensure_store_layout(store_layout const& layout, bool durable, error_code& ec, std::string* why)
{
        ec.clear();
    for (auto const& dir : {layout.root, layout.blobs() / "sha256", layout.tmp() / "blobs", layout.locks()}) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return set_why(why, "cannot create " + dir.string() + ": " + ec.message());
    }
    auto const marker = layout.oci_layout();
    error_code read_ec;
    std::string text = safe_fs::read_small_file(marker, 4096, read_ec);
    if (!read_ec) {
        boost::json::error_code jec;
        auto v = boost::json::parse(text, jec);
        auto const* o = jec ? nullptr : v.if_object();
        auto const* version = o ? o->if_contains("imageLayoutVersion") : nullptr;
        if (!version || !version->is_string() || version->as_string() != "1.0.0") {
            ec = make_error_code(error::invalid_argument);
            return set_why(why, marker.string() + " is not an OCI image layout marker of version 1.0.0");
        }
        return;
    }
    if (read_ec != make_error_code(error::not_found)) {
        ec = read_ec;
        return set_why(why, "cannot read " + marker.string() + ": " + read_ec.message());
    }
    write_file_atomically(marker, std::string_view(R"({"imageLayoutVersion":"1.0.0"})"), atomic_file_options{.durable = durable},
                          ec);
    if (ec) return set_why(why, "cannot write " + marker.string() + ": " + ec.message());
}

OCISTORE_DECL std::vector<index_record> read_index_records(store_layout const& layout, error_code& ec, std::string* why)
{
        ec.clear();
    std::vector<index_record> out;
    auto const path = layout.index_json();
    error_code read_ec;
    std::string text = safe_fs::read_small_file(path, max_manifest_size, read_ec);
    if (read_ec == make_error_code(error::not_found)) return out;
    auto corrupt = [&](std::string reason) {
        ec = make_error_code(error::metadata_corrupt);
        set_why(why, path.string() + ": " + reason);
        return std::vector<index_record>{};
    };
    if (read_ec) return corrupt(read_ec.message());
    error_code parse_ec;
    std::string parse_why;
    auto doc = parse_manifest(text, media_types::oci_index, parse_ec, &parse_why);
    if (parse_ec) return corrupt(parse_why.empty() ? parse_ec.message() : parse_why);
    if (!doc.is_index()) return corrupt("not an image index");
    for (std::size_t i = 0; i < doc.index().manifests.size(); ++i) {
        descriptor const& d = doc.index().manifests[i];
        auto const where = "manifests[" + std::to_string(i) + "]";
        auto name = d.annotations.find(std::string(annotation_ref_name));
        if (name == d.annotations.end() || name->second.empty())
            return corrupt(where + " has no " + std::string(annotation_ref_name) + " annotation");
        index_record r;
        r.name = name->second;
        if (d.platform) r.platform = *d.platform;
        r.manifest_digest = d.digest;
        r.media_type = d.media_type;
        r.size = static_cast<std::uint64_t>(d.size);
        if (auto ix = d.annotations.find(std::string(annotation_index_digest)); ix != d.annotations.end()) {
            error_code dec;
            auto dg = digest::parse(ix->second, dec);
            if (dec) return corrupt(where + ": " + std::string(annotation_index_digest) + " is not a digest");
            r.index_digest = std::move(dg);
        }
        out.push_back(std::move(r));
    }
    return out;
}

OCISTORE_DECL void write_index_records(store_layout const& layout, std::vector<index_record> const& records,
                                       bool durable, error_code& ec, std::string* why)
{
    image_index index;
    index.media_type = std::string(media_types::oci_index);
    for (auto const& r : records) {
        descriptor d;
        d.media_type = r.media_type;
        d.digest = r.manifest_digest;
        d.size = static_cast<std::int64_t>(r.size);
        if (!r.platform.os.empty()) d.platform = r.platform;
        d.annotations[std::string(annotation_ref_name)] = r.name;
        d.annotations[std::string(annotation_containerd_name)] = r.name;
        if (r.index_digest) d.annotations[std::string(annotation_index_digest)] = r.index_digest->str();
        index.manifests.push_back(std::move(d));
    }
    std::string const text = boost::json::serialize(boost::json::value_from(index));
    write_file_atomically(layout.index_json(), std::string_view(text), atomic_file_options{.durable = durable}, ec);
    if (ec && why) *why = "cannot write " + layout.index_json().string() + ": " + ec.message();
}

OCISTORE_DECL std::optional<std::uint64_t> regular_file_size(std::filesystem::path const& path) noexcept
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_size);
}

OCISTORE_DECL std::filesystem::path evict_path(store_layout const& layout, std::filesystem::path const& path, bool durable,
                                               error_code& ec)
{
    ec.clear();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        ec = errno == ENOENT ? make_error_code(error::not_found) : errno_code(errno);
        return {};
    }
    auto const rel = path.lexically_relative(layout.root);
    bool const inside = !rel.empty() && *rel.begin() != ".." && rel.is_relative();
    auto const target = layout.evicted() / (inside ? rel : std::filesystem::path("other") / path.filename());
    std::error_code fec;
    std::filesystem::create_directories(target.parent_path(), fec);
    if (!fec && S_ISDIR(st.st_mode)) std::filesystem::remove_all(target, fec); // rename(2) replaces only empty directories
    if (!fec) {
        if (::rename(path.c_str(), target.c_str()) == 0) {
            if (durable) {
                error_code sec;
                fsync_directory(path.parent_path(), sec);
            }
            return target;
        }
        if (errno != EXDEV) {
            ec = errno_code(errno);
            return {};
        }
    }
    // No room in tmp/evicted (or another file system): it goes.
    std::error_code rec;
    std::filesystem::remove_all(path, rec);
    if (rec) ec = rec;
    return {};
}

OCISTORE_DECL std::uint64_t tree_size(std::filesystem::path const& path) noexcept
{
    std::error_code ec;
    auto const st = std::filesystem::symlink_status(path, ec);
    if (ec) return 0;
    if (std::filesystem::is_regular_file(st)) {
        auto n = std::filesystem::file_size(path, ec);
        return ec ? 0 : n;
    }
    if (!std::filesystem::is_directory(st)) return 0;
    std::uint64_t total = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec)) {
        std::error_code fec;
        if (it->is_regular_file(fec) && !it->is_symlink(fec)) total += it->file_size(fec);
    }
    return total;
}

OCISTORE_DECL std::uint64_t prune_keyed_entries(std::filesystem::path const& dir, std::string_view suffix,
                                                std::span<digest const> keep, prune_options const& options,
                                                prune_report& report, error_code& ec)
{
    ec.clear();
    std::uint64_t count = 0;
    std::error_code it_ec;
    std::vector<std::filesystem::path> doomed;
    for (auto it = std::filesystem::directory_iterator(dir, it_ec); !it_ec && it != std::filesystem::directory_iterator();
         it.increment(it_ec)) {
        std::string const name = it->path().filename().string();
        if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        error_code dec;
        auto d = digest::from_path_safe(std::string_view(name).substr(0, name.size() - suffix.size()), dec);
        if (dec || std::binary_search(keep.begin(), keep.end(), d)) continue;
        doomed.push_back(it->path());
    }
    for (auto const& p : doomed) {
        std::uint64_t const bytes = tree_size(p);
        if (!options.dry_run) {
            std::error_code rec;
            std::filesystem::remove_all(p, rec);
            if (rec) return ec = rec, count;
        }
        ++count;
        report.bytes += bytes;
        report.removed.push_back(p);
    }
    return count;
}

OCISTORE_DECL void collect_temporaries(store_layout const& layout, prune_options const& options, prune_report& report,
                                       error_code& ec)
{
    ec.clear();
    auto const now = std::filesystem::file_time_type::clock::now();
    auto stale = [&](std::filesystem::path const& p) {
        std::error_code tec;
        auto const t = std::filesystem::last_write_time(p, tec);
        return !tec && now - t >= options.tmp_grace;
    };
    auto remove = [&](std::filesystem::path const& p) {
        std::uint64_t const bytes = tree_size(p);
        if (!options.dry_run) {
            std::error_code rec;
            std::filesystem::remove_all(p, rec);
            if (rec) {
                ec = rec;
                return;
            }
        }
        ++report.temporaries;
        report.bytes += bytes;
        report.removed.push_back(p);
    };
    std::vector<std::filesystem::path> candidates;
    std::error_code it_ec;
    for (auto const& dir : {layout.tmp(), layout.tmp() / "blobs"})
        for (auto it = std::filesystem::directory_iterator(dir, it_ec); !it_ec && it != std::filesystem::directory_iterator();
             it.increment(it_ec))
            if (!(dir == layout.tmp() && it->path().filename() == "blobs")) candidates.push_back(it->path());
    // atomic_file temporaries (`.<name>.tmp.<random>`) left by a killed writer: under blobs/
    // (blob writes) and in the root itself (index.json, oci-layout).
    auto is_atomic_temp = [](std::filesystem::path const& p) {
        auto const name = p.filename().string();
        return name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos;
    };
    for (auto it = std::filesystem::recursive_directory_iterator(layout.blobs(), it_ec);
         !it_ec && it != std::filesystem::recursive_directory_iterator(); it.increment(it_ec))
        if (is_atomic_temp(it->path())) candidates.push_back(it->path());
    for (auto it = std::filesystem::directory_iterator(layout.root, it_ec); !it_ec && it != std::filesystem::directory_iterator();
         it.increment(it_ec))
        if (is_atomic_temp(it->path()) && it->is_regular_file()) candidates.push_back(it->path());
    for (auto const& p : candidates) {
        if (!stale(p)) continue;
        remove(p);
        if (ec) return;
    }
}

} // namespace ocistore::detail
