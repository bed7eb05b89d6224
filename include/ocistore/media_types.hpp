// ocistore/media_types.hpp: OCI and Docker media type constants, classification, layer compression.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/error.hpp>

#include <array>
#include <string>
#include <string_view>

namespace ocistore {

/// Media type strings, exactly as registries send them.
namespace media_types {

// OCI image spec v1
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_empty = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view oci_layer_tar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_tar_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_tar_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view oci_layer_nondistributable_tar = "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view oci_layer_nondistributable_tar_gzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view oci_layer_nondistributable_tar_zstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

// Docker image manifest v2, schema 2
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer_tar = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view docker_layer_tar_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_layer_tar_zstd = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr std::string_view docker_foreign_layer_tar = "application/vnd.docker.image.rootfs.foreign.diff.tar";
inline constexpr std::string_view docker_foreign_layer_tar_gzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// Docker schema 1: recognised only to be rejected with error::unsupported_schema
inline constexpr std::string_view docker_schema1_manifest = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed_manifest = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What we ask registries for, most preferred first: indexes, so the platform can be chosen
/// locally, then single-platform manifests. Never schema 1.
inline constexpr std::array<std::string_view, 4> default_accept = {oci_index, docker_manifest_list, oci_manifest,
                                                                   docker_manifest};

/// default_accept joined for an HTTP `Accept` header.
inline constexpr std::string_view default_accept_header =
    "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

} // namespace media_types

/// How a layer blob is compressed.
enum class layer_compression { none, gzip, zstd };

/// "none", "gzip" or "zstd".
OCISTORE_DECL std::string_view to_string(layer_compression c) noexcept;

/** The compression of a layer of media type `media_type` (OCI layer types, their
    non-distributable variants, Docker rootfs diff and foreign layers). Anything else, e.g. a
    config or manifest type, is error::unsupported_media_type. Compared without parameters
    (";…") and without case. */
OCISTORE_DECL layer_compression layer_compression_of(std::string_view media_type, error_code& ec);
/// @throws system_error (error::unsupported_media_type) naming the media type.
OCISTORE_DECL layer_compression layer_compression_of(std::string_view media_type);

/// True for the image layer types layer_compression_of accepts.
OCISTORE_DECL bool is_layer_media_type(std::string_view media_type) noexcept;
/// True for the OCI image manifest and the Docker v2 schema 2 manifest.
OCISTORE_DECL bool is_manifest_media_type(std::string_view media_type) noexcept;
/// True for the OCI image index and the Docker manifest list.
OCISTORE_DECL bool is_index_media_type(std::string_view media_type) noexcept;
/// True for the OCI image config and the Docker container config.
OCISTORE_DECL bool is_config_media_type(std::string_view media_type) noexcept;
/// True for Docker schema 1 (signed or not), which ocistore rejects.
OCISTORE_DECL bool is_schema1_media_type(std::string_view media_type) noexcept;

/** The essence of a Content-Type value: parameters (";charset=…") and surrounding white space
    removed, lowercased. "Application/JSON; charset=utf-8" → "application/json". */
OCISTORE_DECL std::string media_type_essence(std::string_view content_type);

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/media_types.ipp>
#endif
