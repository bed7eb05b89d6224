// ocistore/cli_output.hpp: what the `ocistore` commands print: JSON documents and human-readable summaries and tables.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/store_types.hpp>

#include <ocistore/progress_view.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ocistore::cli {

namespace detail {
inline boost::json::array paths_json(std::vector<std::filesystem::path> const& paths)
{
    boost::json::array a;
    for (auto const& p : paths) a.emplace_back(p.string());
    return a;
}

inline std::uint64_t layers_size(pull_result const& r)
{
    std::uint64_t n = 0;
    for (auto const& l : r.layers) n += l.size;
    return n;
}
} // namespace detail

/** A pull or inspect result as JSON: reference (the name recorded, `name`), platform,
    index_digest (null when none), manifest_digest, manifest_media_type, config_digest,
    artifact_kind, cached, downloaded_bytes, size (sum of layer blobs), layers[{blob,
    diff_id, size, media_type, downloaded, built, artifacts[]}], image_artifacts[]. */
inline boost::json::object result_json(pull_result const& r, std::string_view name)
{
    boost::json::object o;
    o["reference"] = name.empty() ? r.reference.str() : std::string(name);
    o["platform"] = r.platform.to_string();
    if (r.index_digest) o["index_digest"] = r.index_digest->str();
    else o["index_digest"] = nullptr;
    o["manifest_digest"] = r.manifest_digest.str();
    o["manifest_media_type"] = r.manifest_media_type;
    o["config_digest"] = r.config_digest.str();
    o["artifact_kind"] = r.artifact_kind;
    o["cached"] = r.cached;
    o["downloaded_bytes"] = r.downloaded_bytes;
    o["size"] = detail::layers_size(r);
    boost::json::array layers;
    for (auto const& l : r.layers) {
        boost::json::object lo;
        lo["blob"] = l.blob.str();
        lo["diff_id"] = l.diff_id.str();
        lo["size"] = l.size;
        lo["media_type"] = l.media_type;
        lo["downloaded"] = l.downloaded;
        lo["built"] = l.built;
        lo["artifacts"] = detail::paths_json(l.artifacts);
        layers.emplace_back(std::move(lo));
    }
    o["layers"] = std::move(layers);
    o["image_artifacts"] = detail::paths_json(r.image_artifacts);
    return o;
}

/// serialize(v) + "\n".
inline std::string json_line(boost::json::value const& v) { return boost::json::serialize(v) + "\n"; }

/** The human summary of a pull: a headline (pulled or cached, size, what came from the
    network, how long it took) and the digests and image artifacts. */
inline std::string pull_summary(pull_result const& r, std::string_view name, std::optional<std::chrono::nanoseconds> elapsed)
{
    std::string s = std::string(name) + " (" + r.platform.to_string() + "): ";
    std::size_t const n = r.layers.size();
    std::string const layers = std::to_string(n) + (n == 1 ? " layer, " : " layers, ") + format_bytes(detail::layers_size(r));
    if (r.cached) s += "cached, " + layers;
    else s += "pulled, " + layers + ", " + format_bytes(r.downloaded_bytes) + " downloaded";
    if (elapsed) s += ", in " + format_elapsed(*elapsed);
    s += "\n";
    if (r.index_digest) s += "  index     " + r.index_digest->str() + "\n";
    s += "  manifest  " + r.manifest_digest.str() + "\n";
    s += "  config    " + r.config_digest.str() + "\n";
    s += "  artifacts " + r.artifact_kind + "\n";
    for (auto const& p : r.image_artifacts) s += "            " + p.string() + "\n";
    return s;
}

/// The human form of inspect: everything pull_summary says, plus every layer and its artifacts.
inline std::string inspect_text(pull_result const& r, std::string_view name)
{
    std::string s;
    s += "reference       " + std::string(name) + "\n";
    s += "platform        " + r.platform.to_string() + "\n";
    if (r.index_digest) s += "index           " + r.index_digest->str() + "\n";
    s += "manifest        " + r.manifest_digest.str() + "\n";
    s += "media type      " + r.manifest_media_type + "\n";
    s += "config          " + r.config_digest.str() + "\n";
    s += "size            " + format_bytes(detail::layers_size(r)) + " in " + std::to_string(r.layers.size()) +
         (r.layers.size() == 1 ? " layer" : " layers") + "\n";
    s += "artifacts       " + r.artifact_kind + "\n";
    for (auto const& p : r.image_artifacts) s += "                " + p.string() + "\n";
    s += "layers\n";
    for (std::size_t i = 0; i < r.layers.size(); ++i) {
        auto const& l = r.layers[i];
        s += "  " + std::to_string(i) + "  " + l.blob.str() + "  " + format_bytes(l.size) + "  " + l.media_type + "\n";
        s += "     diff_id " + l.diff_id.str() + "\n";
        for (auto const& p : l.artifacts) s += "     " + p.string() + "\n";
    }
    return s;
}

/// One row of `ocistore images`.
struct image_row {
    image_entry entry;
    std::optional<std::uint64_t> size; ///< sum of the layer blobs (when the manifest is readable)
    std::vector<std::string> artifacts; ///< the artifact kinds held for it ("erofs", "rootfs")
};

/// `images --json`: an array of {reference, platform, manifest_digest, index_digest, media_type, manifest_size, size, artifacts[]}.
inline boost::json::array images_json(std::vector<image_row> const& rows)
{
    boost::json::array a;
    for (auto const& r : rows) {
        boost::json::object o;
        o["reference"] = r.entry.reference;
        o["platform"] = r.entry.platform.to_string();
        o["manifest_digest"] = r.entry.manifest_digest.str();
        if (r.entry.index_digest) o["index_digest"] = r.entry.index_digest->str();
        else o["index_digest"] = nullptr;
        o["media_type"] = r.entry.media_type;
        o["manifest_size"] = r.entry.manifest_size;
        if (r.size) o["size"] = *r.size;
        else o["size"] = nullptr;
        boost::json::array kinds;
        for (auto const& k : r.artifacts) kinds.emplace_back(k);
        o["artifacts"] = std::move(kinds);
        a.emplace_back(std::move(o));
    }
    return a;
}

/// `images`: a table REFERENCE PLATFORM MANIFEST SIZE ARTIFACTS, columns sized to fit; "no images" when empty.
inline std::string images_table(std::vector<image_row> const& rows)
{
    if (rows.empty()) return "no images in the cache\n";
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"REFERENCE", "PLATFORM", "MANIFEST", "SIZE", "ARTIFACTS"});
    for (auto const& r : rows) {
        std::string kinds;
        for (auto const& k : r.artifacts) kinds += (kinds.empty() ? "" : ",") + k;
        cells.push_back({r.entry.reference, r.entry.platform.to_string(), short_digest(r.entry.manifest_digest),
                         r.size ? format_bytes(*r.size) : "-", kinds.empty() ? "-" : kinds});
    }
    std::vector<std::size_t> width(5, 0);
    for (auto const& row : cells)
        for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    std::string s;
    for (auto const& row : cells) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            line += row[c];
            if (c + 1 < row.size()) line.append(width[c] - row[c].size() + 3, ' ');
        }
        s += line + "\n";
    }
    return s;
}

/// What prune (or rm) reports: "freed 12.3 MiB: 3 blobs, 1 temporary" (or "would free" in a dry run).
inline std::string prune_text(prune_report const& r, bool dry_run)
{
    auto count = [](std::uint64_t n, char const* one, char const* many) {
        return std::to_string(n) + " " + (n == 1 ? one : many);
    };
    std::string s = std::string(dry_run ? "would free " : "freed ") + format_bytes(r.bytes) + " (" +
                    std::to_string(r.bytes) + " bytes): " + count(r.blobs, "blob", "blobs");
    if (r.layer_artifacts) s += ", " + count(r.layer_artifacts, "layer artifact", "layer artifacts");
    if (r.image_artifacts) s += ", " + count(r.image_artifacts, "image artifact", "image artifacts");
    s += ", " + count(r.temporaries, "temporary", "temporaries");
    return s + "\n";
}

/** One line of `verify` per finding: "damaged KIND PATH: REASON" ("missing" for an absent
    item), then ", moved to PATH" when it was evicted (", deleted" when it could not be moved). */
inline std::string verify_finding_line(verify_finding const& f)
{
    bool const missing = f.error == make_error_code(error::not_found) && !f.evicted;
    std::string line = std::string(missing ? "missing " : "damaged ") + std::string(to_string(f.kind)) + " " +
                       f.path.string() + ": " + f.reason;
    if (f.evicted) line += f.evicted_to.empty() ? ", deleted" : ", moved to " + f.evicted_to.string();
    for (auto& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    return line + "\n";
}

/** What `verify` prints: a line per finding (verify_finding_line()), a line per item skipped
    ("skipped: ..."), then the summary: "verified 1 image, 5 blobs, 3 layer artifacts, 2 image
    artifacts (1.2 MiB read): no damage found", or "...: 2 damaged or missing, 2 moved aside;
    pull again to repair" (with `check_only`: "...: 2 damaged or missing (--check-only: nothing
    moved)"). */
inline std::string verify_text(verify_report const& r, bool check_only)
{
    auto count = [](std::uint64_t n, char const* one, char const* many) {
        return std::to_string(n) + " " + (n == 1 ? one : many);
    };
    std::string s;
    for (auto const& f : r.findings) s += verify_finding_line(f);
    for (auto const& k : r.skipped) s += "skipped: " + k + "\n";
    s += "verified " + count(r.images, "image", "images") + ", " + count(r.blobs, "blob", "blobs") + ", " +
         count(r.layer_artifacts, "layer artifact", "layer artifacts") + ", " +
         count(r.image_artifacts, "image artifact", "image artifacts") + " (" + format_bytes(r.bytes) + " read): ";
    if (r.clean()) {
        s += "no damage found";
    } else {
        s += std::to_string(r.findings.size()) + " damaged or missing";
        if (check_only) s += " (--check-only: nothing moved)";
        else if (auto const n = r.evicted()) s += ", " + std::to_string(n) + " moved aside; pull again to repair";
    }
    if (!r.skipped.empty()) s += "; " + std::to_string(r.skipped.size()) + " skipped";
    return s + "\n";
}

/** `verify --json`: {clean, images, blobs, layer_artifacts, image_artifacts, bytes, evicted,
    findings[{kind, path, key, error, reason, evicted, evicted_to}], skipped[]}; `error` is the
    error's message, `evicted_to` null when not moved. */
inline boost::json::object verify_json(verify_report const& r)
{
    boost::json::object o;
    o["clean"] = r.clean();
    o["images"] = r.images;
    o["blobs"] = r.blobs;
    o["layer_artifacts"] = r.layer_artifacts;
    o["image_artifacts"] = r.image_artifacts;
    o["bytes"] = r.bytes;
    o["evicted"] = r.evicted();
    boost::json::array findings;
    for (auto const& f : r.findings) {
        boost::json::object fo;
        fo["kind"] = to_string(f.kind);
        fo["path"] = f.path.string();
        fo["key"] = f.key;
        fo["error"] = f.error.message();
        fo["reason"] = f.reason;
        fo["evicted"] = f.evicted;
        if (f.evicted_to.empty()) fo["evicted_to"] = nullptr;
        else fo["evicted_to"] = f.evicted_to.string();
        findings.emplace_back(std::move(fo));
    }
    o["findings"] = std::move(findings);
    boost::json::array skipped;
    for (auto const& k : r.skipped) skipped.emplace_back(k);
    o["skipped"] = std::move(skipped);
    return o;
}

} // namespace ocistore::cli
