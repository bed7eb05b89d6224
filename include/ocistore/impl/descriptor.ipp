// Non-template bodies for ocistore/descriptor.hpp.
#pragma once

#include <ocistore/descriptor.hpp>
#include <ocistore/detail/diagnostic.hpp>

namespace ocistore {
namespace detail {

OCISTORE_DECL std::string media_type_syntax_error(std::string_view text)
{
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
    auto rest = [&](char c) {
        return alnum(c) || c == '!' || c == '#' || c == '$' || c == '&' || c == '-' || c == '^' || c == '_' ||
               c == '.' || c == '+';
    };
    auto const slash = text.find('/');
    if (text.empty()) return "media type is empty";
    if (slash == std::string_view::npos) return "missing '/' between type and subtype";
    std::size_t start = 0;
    for (std::string_view part : {text.substr(0, slash), text.substr(slash + 1)}) {
        char const* what = start == 0 ? "type" : "subtype";
        if (part.empty()) return std::string("empty ") + what;
        if (part.size() > 127) return std::string(what) + " longer than 127 characters";
        for (std::size_t i = 0; i < part.size(); ++i)
            if (i == 0 ? !alnum(part[i]) : !rest(part[i]))
                return describe_char(part[i]) + " at position " + std::to_string(start + i) + " is not allowed in the " +
                       what;
        start = slash + 1;
    }
    return {};
}

OCISTORE_DECL bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, descriptor& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    descriptor d;
    if (!read_field(r, *o, "mediaType", path, d.media_type, presence::required)) return false;
    if (auto msg = media_type_syntax_error(d.media_type); !msg.empty())
        return r.fail(json_member_path(path, "mediaType"),
                      "\"" + d.media_type.substr(0, 200) + "\" is not a media type: " + msg);
    if (!read_field(r, *o, "digest", path, d.digest, presence::required) ||
        !read_field(r, *o, "size", path, d.size, presence::required))
        return false;
    if (d.size < 0)
        return r.fail(json_member_path(path, "size"), "must be a non-negative integer, got " + std::to_string(d.size));
    if (!read_field(r, *o, "urls", path, d.urls) || !read_field(r, *o, "annotations", path, d.annotations) ||
        !read_field(r, *o, "platform", path, d.platform) || !read_field(r, *o, "artifactType", path, d.artifact_type) ||
        !read_field(r, *o, "data", path, d.data))
        return false;
    out = std::move(d);
    return true;
}

OCISTORE_DECL boost::json::object descriptor_to_json(descriptor const& d)
{
    boost::json::object o;
    o["mediaType"] = d.media_type;
    put_if(o, "artifactType", d.artifact_type);
    o["digest"] = d.digest.str();
    o["size"] = d.size;
    put_if(o, "urls", d.urls);
    put_if(o, "annotations", d.annotations);
    put_if(o, "data", d.data);
    if (d.platform) o["platform"] = platform_to_json(*d.platform);
    return o;
}

} // namespace detail

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, descriptor const& d)
{
    jv = detail::descriptor_to_json(d);
}

OCISTORE_DECL descriptor tag_invoke(boost::json::value_to_tag<descriptor>, boost::json::value const& jv)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        descriptor d;
        detail::json_reader r{error::invalid_manifest, ec, why};
        detail::read_value(r, jv, "", d);
        return d;
    });
}

} // namespace ocistore
