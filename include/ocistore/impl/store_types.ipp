// Non-template bodies for ocistore/store_types.hpp.
#pragma once

#include <ocistore/store_types.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <cstdlib>

namespace ocistore {

OCISTORE_DECL std::filesystem::path default_store_root(error_code& ec)
{
    ec.clear();
    auto env = [](char const* name) -> std::string {
        char const* v = std::getenv(name);
        return v ? std::string(v) : std::string();
    };
    if (auto root = env("OCISTORE_ROOT"); !root.empty()) return root;
    if (auto xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return std::filesystem::path(xdg) / "ocistore";
    if (auto home = env("HOME"); !home.empty()) return std::filesystem::path(home) / ".cache" / "ocistore";
    ec = make_error_code(error::not_found);
    return {};
}

OCISTORE_DECL std::filesystem::path default_store_root()
{
    error_code ec;
    auto p = default_store_root(ec);
    detail::throw_if(ec, "no cache root: set OCISTORE_ROOT, XDG_CACHE_HOME or HOME");
    return p;
}

OCISTORE_DECL std::string_view to_string(progress_kind k) noexcept
{
    switch (k) {
    case progress_kind::resolving: return "resolving";
    case progress_kind::resolved: return "resolved";
    case progress_kind::download_progress: return "download_progress";
    case progress_kind::download_complete: return "download_complete";
    case progress_kind::build_started: return "build_started";
    case progress_kind::build_progress: return "build_progress";
    case progress_kind::build_complete: return "build_complete";
    case progress_kind::compose_started: return "compose_started";
    case progress_kind::compose_complete: return "compose_complete";
    case progress_kind::complete: return "complete";
    case progress_kind::retry: return "retry";
    }
    return "unknown";
}

OCISTORE_DECL std::string_view to_string(verify_kind k) noexcept
{
    switch (k) {
    case verify_kind::index: return "index";
    case verify_kind::metadata: return "metadata";
    case verify_kind::manifest: return "manifest";
    case verify_kind::config: return "config";
    case verify_kind::blob: return "blob";
    case verify_kind::layer_artifact: return "layer_artifact";
    case verify_kind::image_artifact: return "image_artifact";
    }
    return "unknown";
}

} // namespace ocistore
