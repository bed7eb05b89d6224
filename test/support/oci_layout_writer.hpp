// Test support: writes an OCI image layout directory (`oci-layout`, `index.json`,
// `blobs/sha256/<hex>`) from blobs, configs, manifests and indexes built in the test.
//
//   ocistore_test::oci_layout_writer w(dir.path());
//   auto layer = w.add_blob(tar_bytes, std::string(ocistore::media_types::oci_layer_tar));
//   auto config = w.add_config({layer.digest});          // diff_id = digest of the tar
//   auto manifest = w.add_manifest(config, {layer});
//   w.tag(manifest, "v1");                               // index.json entry, ref.name "v1"
#pragma once

#include <ocistore/descriptor.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/platform.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_test {

/// The annotation that names an index.json entry (OCI image spec, annotations.md).
inline constexpr std::string_view ref_name_annotation = "org.opencontainers.image.ref.name";

/// The JSON of a minimal valid image config for `p` with `diff_ids` (base layer first).
inline std::string make_image_config(std::vector<ocistore::digest> diff_ids,
                                     ocistore::platform const& p = {"linux", "amd64", "", "", {}})
{
    ocistore::image_config c;
    c.created = "2024-01-01T00:00:00Z";
    c.os = p.os;
    c.architecture = p.architecture;
    c.variant = p.variant;
    c.config.cmd = {"/bin/sh"};
    c.rootfs.diff_ids = std::move(diff_ids);
    return boost::json::serialize(boost::json::value_from(c));
}

/// Writes a file in one go; throws std::runtime_error naming the path on failure.
inline void write_test_file(std::filesystem::path const& path, std::string_view bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

/** Builds an OCI image layout in `root` (created if missing). The constructor writes
    `oci-layout` and an empty `index.json`; tag() and add_index_entry() rewrite `index.json`
    at once, so the directory is a valid layout at every step. Blobs are stored under sha256
    and never deduplicated away (adding the same bytes twice is harmless). */
class oci_layout_writer {
public:
    explicit oci_layout_writer(std::filesystem::path root) : root_(std::move(root))
    {
        std::filesystem::create_directories(root_ / "blobs" / "sha256");
        write_test_file(root_ / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
        write_index();
    }

    std::filesystem::path const& path() const noexcept { return root_; }
    /// `root/blobs/<alg>/<hex>`.
    std::filesystem::path blob_path(ocistore::digest const& d) const
    {
        return root_ / "blobs" / std::string(d.algorithm()) / std::string(d.encoded());
    }

    /// Stores `bytes` as a blob; returns its descriptor (sha256 digest, size, `media_type`).
    ocistore::descriptor add_blob(std::string bytes, std::string media_type)
    {
        ocistore::descriptor d;
        d.media_type = std::move(media_type);
        d.digest = ocistore::digest_of<ocistore::sha256_hasher>(bytes);
        d.size = static_cast<std::int64_t>(bytes.size());
        write_test_file(blob_path(d.digest), bytes);
        blobs_[d.digest] = std::move(bytes);
        return d;
    }

    /// Stores make_image_config(diff_ids, p) as an OCI config blob.
    ocistore::descriptor add_config(std::vector<ocistore::digest> diff_ids,
                                    ocistore::platform const& p = {"linux", "amd64", "", "", {}})
    {
        return add_blob(make_image_config(std::move(diff_ids), p), std::string(ocistore::media_types::oci_config));
    }

    /// Stores an image manifest over `config` and `layers`.
    ocistore::descriptor add_manifest(ocistore::descriptor config, std::vector<ocistore::descriptor> layers,
                                      std::map<std::string, std::string> annotations = {},
                                      std::string media_type = std::string(ocistore::media_types::oci_manifest))
    {
        ocistore::image_manifest m;
        m.media_type = media_type;
        m.config = std::move(config);
        m.layers = std::move(layers);
        m.annotations = std::move(annotations);
        return add_blob(boost::json::serialize(boost::json::value_from(m)), std::move(media_type));
    }

    /** Stores an image index over `manifests`; give each entry its `platform` (a descriptor
        returned by add_manifest with the platform filled in). */
    ocistore::descriptor add_index(std::vector<ocistore::descriptor> manifests,
                                   std::map<std::string, std::string> annotations = {},
                                   std::string media_type = std::string(ocistore::media_types::oci_index))
    {
        ocistore::image_index i;
        i.media_type = media_type;
        i.manifests = std::move(manifests);
        i.annotations = std::move(annotations);
        return add_blob(boost::json::serialize(boost::json::value_from(i)), std::move(media_type));
    }

    /// Adds an index.json entry for `d` named `ref_name` (a tag such as "v1", or a full
    /// reference such as "example.com/app:v1"), then rewrites index.json.
    void tag(ocistore::descriptor d, std::string ref_name)
    {
        d.annotations[std::string(ref_name_annotation)] = std::move(ref_name);
        add_index_entry(std::move(d));
    }

    /// Adds an index.json entry for `d` as given (no name unless `d` carries one), then rewrites index.json.
    void add_index_entry(ocistore::descriptor d)
    {
        entries_.push_back(std::move(d));
        write_index();
    }

    /// The index.json entries, in order; edit them, then call write_index().
    std::vector<ocistore::descriptor>& entries() noexcept { return entries_; }

    /// Writes index.json from entries().
    void write_index()
    {
        ocistore::image_index i;
        i.media_type = std::string(ocistore::media_types::oci_index);
        i.manifests = entries_;
        write_test_file(root_ / "index.json", boost::json::serialize(boost::json::value_from(i)));
    }

    /// The bytes of a blob added through this writer. @throws std::out_of_range for others.
    std::string const& bytes_of(ocistore::digest const& d) const { return blobs_.at(d); }

private:
    std::filesystem::path root_;
    std::vector<ocistore::descriptor> entries_;
    std::map<ocistore::digest, std::string> blobs_;
};

} // namespace ocistore_test
