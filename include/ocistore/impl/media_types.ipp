// Non-template bodies for ocistore/media_types.hpp.
#pragma once

#include <ocistore/media_types.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <initializer_list>

namespace ocistore {
namespace detail::media_types_impl {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// `text` up to the first ';', trimmed.
inline std::string_view essence_view(std::string_view text) noexcept
{
    text = text.substr(0, text.find(';'));
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    return text;
}

/// Whether the essence of `media_type` equals one of `known` (lowercase), ignoring case.
inline bool is_one_of(std::string_view media_type, std::initializer_list<std::string_view> known) noexcept
{
    std::string_view const e = essence_view(media_type);
    for (std::string_view k : known) {
        if (k.size() != e.size()) continue;
        bool same = true;
        for (std::size_t i = 0; same && i < k.size(); ++i) same = lower(e[i]) == k[i];
        if (same) return true;
    }
    return false;
}

} // namespace detail::media_types_impl

OCISTORE_DECL std::string_view to_string(layer_compression c) noexcept
{
    switch (c) {
    case layer_compression::none: return "none";
    case layer_compression::gzip: return "gzip";
    case layer_compression::zstd: return "zstd";
    }
    return "unknown";
}

OCISTORE_DECL layer_compression layer_compression_of(std::string_view media_type, error_code& ec)
{
    using detail::media_types_impl::is_one_of;
    namespace mt = media_types;
    ec.clear();
    if (is_one_of(media_type, {mt::oci_layer_tar, mt::oci_layer_nondistributable_tar, mt::docker_layer_tar,
                               mt::docker_foreign_layer_tar}))
        return layer_compression::none;
    if (is_one_of(media_type, {mt::oci_layer_tar_gzip, mt::oci_layer_nondistributable_tar_gzip,
                               mt::docker_layer_tar_gzip, mt::docker_foreign_layer_tar_gzip}))
        return layer_compression::gzip;
    if (is_one_of(media_type, {mt::oci_layer_tar_zstd, mt::oci_layer_nondistributable_tar_zstd,
                               mt::docker_layer_tar_zstd}))
        return layer_compression::zstd;
    ec = make_error_code(error::unsupported_media_type);
    return layer_compression::none;
}

OCISTORE_DECL layer_compression layer_compression_of(std::string_view media_type)
{
    error_code ec;
    layer_compression c = layer_compression_of(media_type, ec);
    if (ec)
        throw_error(ec, "\"" + std::string(media_type.substr(0, 200)) +
                            "\" is not a layer media type (OCI image layer or Docker rootfs diff)");
    return c;
}

OCISTORE_DECL bool is_layer_media_type(std::string_view media_type) noexcept
{
    error_code ec;
    layer_compression_of(media_type, ec);
    return !ec;
}

OCISTORE_DECL bool is_manifest_media_type(std::string_view media_type) noexcept
{
    return detail::media_types_impl::is_one_of(media_type, {media_types::oci_manifest, media_types::docker_manifest});
}

OCISTORE_DECL bool is_index_media_type(std::string_view media_type) noexcept
{
    return detail::media_types_impl::is_one_of(media_type, {media_types::oci_index, media_types::docker_manifest_list});
}

OCISTORE_DECL bool is_config_media_type(std::string_view media_type) noexcept
{
    return detail::media_types_impl::is_one_of(media_type, {media_types::oci_config, media_types::docker_config});
}

OCISTORE_DECL bool is_schema1_media_type(std::string_view media_type) noexcept
{
    return detail::media_types_impl::is_one_of(
        media_type, {media_types::docker_schema1_manifest, media_types::docker_schema1_signed_manifest});
}

OCISTORE_DECL std::string media_type_essence(std::string_view content_type)
{
    std::string out(detail::media_types_impl::essence_view(content_type));
    for (char& c : out) c = detail::media_types_impl::lower(c);
    return out;
}

} // namespace ocistore
