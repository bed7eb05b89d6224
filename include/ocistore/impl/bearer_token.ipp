// Non-template bodies for ocistore/http/bearer_token.hpp.
#pragma once

#include <ocistore/http/bearer_token.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/http_text.hpp>
#include <ocistore/detail/json.hpp>

#include <cmath>
#include <cstdint>

namespace ocistore {
namespace detail::bearer_token_impl {

/// Clamps a lifetime in seconds into [min_token_lifetime, max_token_lifetime].
inline std::chrono::seconds clamp_lifetime(double s) noexcept
{
    if (!(s >= static_cast<double>(min_token_lifetime.count()))) return min_token_lifetime; // also NaN
    if (s >= static_cast<double>(max_token_lifetime.count())) return max_token_lifetime;
    return std::chrono::seconds{static_cast<std::int64_t>(s)};
}

/** Reads string member `key`: absent or null leaves `out` empty; a non-string fails. The
    value must be visible ASCII, since it goes into a header; the reason never shows it. */
inline bool read_secret(boost::json::object const& o, std::string_view key, std::string& out, error_code& ec,
                        std::string* why)
{
    out.clear();
    auto const* v = o.if_contains(key);
    if (!v || v->is_null()) return true;
    auto const* s = v->if_string();
    if (!s) {
        fail(ec, why, error::protocol_error,
             "token response: \"" + std::string(key) + "\" must be a string, got " + json_kind_name(*v));
        return false;
    }
    for (std::size_t i = 0; i < s->size(); ++i) {
        auto const u = static_cast<unsigned char>((*s)[i]);
        if (u < 0x21 || u > 0x7e) {
            fail(ec, why, error::protocol_error,
                 "token response: \"" + std::string(key) + "\" holds a byte outside visible ASCII at position " +
                     std::to_string(i) + " (a space, control character or non-ASCII byte)");
            return false;
        }
    }
    out.assign(s->data(), s->size());
    return true;
}

} // namespace detail::bearer_token_impl

OCISTORE_DECL bearer_token parse_token_response(std::string_view body, std::chrono::steady_clock::time_point now,
                                                error_code& ec, std::string* why)
{
    using namespace detail::bearer_token_impl;
    ec.clear();
    boost::json::value doc = detail::parse_json_document(body, max_token_response_size, "token response",
                                                         boost::json::storage_ptr(), ec, why);
    if (ec) {
        if (ec == error::invalid_json) ec = make_error_code(error::protocol_error);
        return {};
    }
    auto const* o = doc.if_object();
    if (!o) {
        detail::fail(ec, why, error::protocol_error,
                     std::string("token response: expected a JSON object, got ") + detail::json_kind_name(doc));
        return {};
    }
    bearer_token t;
    t.obtained = now;
    std::string access;
    if (!read_secret(*o, "token", t.token, ec, why) || !read_secret(*o, "access_token", access, ec, why) ||
        !read_secret(*o, "refresh_token", t.refresh_token, ec, why))
        return {};
    if (t.token.empty()) t.token = std::move(access);
    if (t.token.empty()) {
        detail::fail(ec, why, error::protocol_error,
                     "token response: neither \"token\" nor \"access_token\" is a non-empty string");
        return {};
    }
    if (auto const* v = o->if_contains("expires_in"); v && !v->is_null()) {
        if (auto const* i = v->if_int64()) {
            t.expires_in = clamp_lifetime(static_cast<double>(*i));
        } else if (auto const* u = v->if_uint64()) {
            t.expires_in = clamp_lifetime(static_cast<double>(*u));
        } else if (auto const* d = v->if_double()) {
            t.expires_in = clamp_lifetime(*d);
        } else {
            detail::fail(ec, why, error::protocol_error,
                         std::string("token response: \"expires_in\" must be a number of seconds, got ") +
                             detail::json_kind_name(*v));
            return {};
        }
    }
    return t;
}

OCISTORE_DECL bearer_token parse_token_response(std::string_view body, std::chrono::steady_clock::time_point now)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return parse_token_response(body, now, ec, why); });
}

OCISTORE_DECL std::string token_request_target(std::string_view realm_url, std::string_view service,
                                               std::span<std::string const> scopes)
{
    std::string url(realm_url.substr(0, realm_url.find('#')));
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    if (!url.empty() && (url.back() == '?' || url.back() == '&')) sep = '\0';
    auto add = [&](std::string_view key, std::string_view value) {
        if (sep != '\0') url.push_back(sep);
        sep = '&';
        url.append(key).push_back('=');
        url.append(detail::percent_encode(value));
    };
    if (!service.empty()) add("service", service);
    for (auto const& s : scopes)
        if (!s.empty()) add("scope", s);
    return url;
}

} // namespace ocistore
