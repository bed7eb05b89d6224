// Test images: layers made with tar_writer, compressed, and published into a memory_transport repository or an OCI layout.
#pragma once

#include <ocistore/descriptor.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/test/memory_transport.hpp>

#include <support/compress.hpp>
#include <support/oci_layout_writer.hpp>
#include <support/tar_writer.hpp>

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace ocistore_test {

/// One layer of a test image: its tar stream and how it is compressed.
struct test_layer {
    std::string tar;
    ocistore::layer_compression compression = ocistore::layer_compression::gzip;
};

/// A published test image: every digest a test may want to check.
struct test_image {
    ocistore::digest manifest_digest;
    std::string manifest;
    ocistore::digest config_digest;
    std::string config;
    std::vector<ocistore::digest> blobs;     ///< layer blob digests, bottom first
    std::vector<std::string> blob_bytes;     ///< layer blobs
    std::vector<ocistore::digest> diff_ids;
    std::uint64_t total_blob_bytes = 0;
};

/// A small layer: a directory and `files` files of `file_size` random bytes (seeded by `seed`).
inline std::string make_layer_tar(int seed, int files = 3, std::size_t file_size = 10000)
{
    tar_writer w;
    w.dir("layer" + std::to_string(seed) + "/");
    for (int i = 0; i < files; ++i)
        w.file("layer" + std::to_string(seed) + "/f" + std::to_string(i),
               random_bytes(file_size, static_cast<std::uint64_t>(seed * 100 + i)));
    w.end();
    return w.str();
}

inline std::string compress_layer(test_layer const& l)
{
    switch (l.compression) {
    case ocistore::layer_compression::gzip: return gzip_compress(l.tar);
    case ocistore::layer_compression::zstd: return zstd_compress(l.tar);
    default: return l.tar;
    }
}

inline std::string layer_media_type(ocistore::layer_compression c)
{
    switch (c) {
    case ocistore::layer_compression::gzip: return std::string(ocistore::media_types::oci_layer_tar_gzip);
    case ocistore::layer_compression::zstd: return std::string(ocistore::media_types::oci_layer_tar_zstd);
    default: return std::string(ocistore::media_types::oci_layer_tar);
    }
}

/// Publishes a single-platform image into `repo` of `t` and tags it `tag` (when not empty).
inline test_image publish_image(ocistore::test::memory_transport& t, std::string const& repo, std::string const& tag,
                                std::vector<test_layer> const& layers,
                                ocistore::platform const& p = {"linux", "amd64", "", "", {}})
{
    test_image img;
    ocistore::image_manifest m;
    m.media_type = std::string(ocistore::media_types::oci_manifest);
    for (auto const& l : layers) {
        std::string blob = compress_layer(l);
        img.diff_ids.push_back(ocistore::digest_of<ocistore::sha256_hasher>(l.tar));
        ocistore::descriptor d;
        d.media_type = layer_media_type(l.compression);
        d.size = static_cast<std::int64_t>(blob.size());
        d.digest = t.add_blob(repo, blob);
        img.total_blob_bytes += blob.size();
        img.blobs.push_back(d.digest);
        img.blob_bytes.push_back(std::move(blob));
        m.layers.push_back(std::move(d));
    }
    std::string config = make_image_config(img.diff_ids, p);
    m.config.media_type = std::string(ocistore::media_types::oci_config);
    m.config.size = static_cast<std::int64_t>(config.size());
    m.config.digest = t.add_blob(repo, config);
    img.config_digest = m.config.digest;
    img.config = config;
    img.manifest = boost::json::serialize(boost::json::value_from(m));
    img.manifest_digest = t.add_manifest(repo, img.manifest, std::string(ocistore::media_types::oci_manifest));
    if (!tag.empty()) t.tag(repo, tag, img.manifest_digest);
    return img;
}

/// Publishes an index of `images` (each with its platform) under `tag`; returns its digest.
inline ocistore::digest publish_index(ocistore::test::memory_transport& t, std::string const& repo, std::string const& tag,
                                      std::vector<std::pair<test_image, ocistore::platform>> const& images)
{
    ocistore::image_index ix;
    ix.media_type = std::string(ocistore::media_types::oci_index);
    for (auto const& [img, p] : images) {
        ocistore::descriptor d;
        d.media_type = std::string(ocistore::media_types::oci_manifest);
        d.digest = img.manifest_digest;
        d.size = static_cast<std::int64_t>(img.manifest.size());
        d.platform = p;
        ix.manifests.push_back(std::move(d));
    }
    auto const digest = t.add_manifest(repo, boost::json::serialize(boost::json::value_from(ix)),
                                       std::string(ocistore::media_types::oci_index));
    t.tag(repo, tag, digest);
    return digest;
}

} // namespace ocistore_test
