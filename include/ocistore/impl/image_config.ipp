// Non-template bodies for ocistore/image_config.hpp.
#pragma once

#include <ocistore/image_config.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/json.hpp>

#include <boost/json/monotonic_resource.hpp>

namespace ocistore {
namespace detail::image_config_impl {

inline bool read_container_config(json_reader& r, boost::json::value const& v, std::string_view path,
                                  container_config& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    container_config c;
    auto keys = [&](std::string_view key, std::vector<std::string>& dst) {
        auto const* m = json_find(*o, key);
        return !m || read_object_keys(r, *m, json_member_path(path, key), dst);
    };
    if (!read_field(r, *o, "User", path, c.user) || !keys("ExposedPorts", c.exposed_ports) ||
        !read_field(r, *o, "Env", path, c.env) || !read_field(r, *o, "Entrypoint", path, c.entrypoint) ||
        !read_field(r, *o, "Cmd", path, c.cmd) || !keys("Volumes", c.volumes) ||
        !read_field(r, *o, "WorkingDir", path, c.working_dir) || !read_field(r, *o, "Labels", path, c.labels) ||
        !read_field(r, *o, "StopSignal", path, c.stop_signal))
        return false;
    out = std::move(c);
    return true;
}

inline bool read_rootfs(json_reader& r, boost::json::value const& v, std::string_view path, image_rootfs& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    image_rootfs fs;
    if (!read_field(r, *o, "type", path, fs.type, presence::required)) return false;
    if (fs.type != "layers")
        return r.fail(json_member_path(path, "type"), "must be \"layers\", got \"" + fs.type.substr(0, 200) + "\"");
    if (!read_field(r, *o, "diff_ids", path, fs.diff_ids, presence::required)) return false;
    out = std::move(fs);
    return true;
}

inline bool read_history(json_reader& r, boost::json::value const& v, std::string_view path, history_entry& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    history_entry h;
    if (!read_field(r, *o, "created", path, h.created) || !read_field(r, *o, "created_by", path, h.created_by) ||
        !read_field(r, *o, "author", path, h.author) || !read_field(r, *o, "comment", path, h.comment) ||
        !read_field(r, *o, "empty_layer", path, h.empty_layer))
        return false;
    out = std::move(h);
    return true;
}

inline bool read_config(json_reader& r, boost::json::value const& v, image_config& out)
{
    auto const* o = json_as_object(r, v, "");
    if (!o) return false;
    image_config c;
    if (!read_field(r, *o, "created", "", c.created) || !read_field(r, *o, "author", "", c.author) ||
        !read_field(r, *o, "architecture", "", c.architecture, presence::required) ||
        !read_field(r, *o, "os", "", c.os, presence::required) || !read_field(r, *o, "variant", "", c.variant) ||
        !read_field(r, *o, "os.version", "", c.os_version) || !read_field(r, *o, "os.features", "", c.os_features))
        return false;
    if (auto const* cc = json_find(*o, "config"); cc && !read_container_config(r, *cc, "config", c.config))
        return false;
    auto const* fs = json_find(*o, "rootfs");
    if (!fs) return r.fail("rootfs", o->contains("rootfs") ? "required field is null" : "required field missing");
    if (!read_rootfs(r, *fs, "rootfs", c.rootfs)) return false;
    if (auto const* h = json_find(*o, "history")) {
        auto const* a = h->if_array();
        if (!a) return json_wrong_type(r, *h, "history", "an array");
        c.history.resize(a->size());
        for (std::size_t i = 0; i < a->size(); ++i)
            if (!read_history(r, (*a)[i], json_element_path("history", i), c.history[i])) return false;
    }
    out = std::move(c);
    return true;
}

inline boost::json::object container_config_to_json(container_config const& c)
{
    boost::json::object o;
    put_if(o, "User", c.user);
    put_keys_if(o, "ExposedPorts", c.exposed_ports);
    put_if(o, "Env", c.env);
    put_if(o, "Entrypoint", c.entrypoint);
    put_if(o, "Cmd", c.cmd);
    put_keys_if(o, "Volumes", c.volumes);
    put_if(o, "WorkingDir", c.working_dir);
    put_if(o, "Labels", c.labels);
    put_if(o, "StopSignal", c.stop_signal);
    return o;
}

} // namespace detail::image_config_impl

OCISTORE_DECL config_document parse_image_config(std::string_view bytes, error_code& ec, std::string* why)
{
    ec.clear();
    boost::json::monotonic_resource mr;
    boost::json::value const jv = detail::parse_json_document(bytes, max_config_size, "image config", &mr, ec, why);
    if (ec) return config_document{};
    detail::json_reader r{error::invalid_config, ec, why};
    config_document doc;
    if (!detail::image_config_impl::read_config(r, jv, doc.image)) return config_document{};
    doc.raw.assign(bytes);
    return doc;
}

OCISTORE_DECL config_document parse_image_config(std::string_view bytes)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse_image_config(bytes, ec, why); });
}

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, image_config const& c)
{
    using namespace detail;
    boost::json::object o;
    put_if(o, "created", c.created);
    put_if(o, "author", c.author);
    o["architecture"] = c.architecture;
    o["os"] = c.os;
    put_if(o, "os.version", c.os_version);
    put_if(o, "os.features", c.os_features);
    put_if(o, "variant", c.variant);
    if (auto cc = image_config_impl::container_config_to_json(c.config); !cc.empty()) o["config"] = std::move(cc);
    boost::json::object& fs = o["rootfs"].emplace_object();
    fs["type"] = c.rootfs.type;
    boost::json::array& ids = fs["diff_ids"].emplace_array();
    for (auto const& d : c.rootfs.diff_ids) ids.emplace_back(d.str());
    if (!c.history.empty()) {
        boost::json::array& hs = o["history"].emplace_array();
        for (auto const& h : c.history) {
            boost::json::object e;
            put_if(e, "created", h.created);
            put_if(e, "created_by", h.created_by);
            put_if(e, "author", h.author);
            put_if(e, "comment", h.comment);
            if (h.empty_layer) e["empty_layer"] = true;
            hs.emplace_back(std::move(e));
        }
    }
    jv = std::move(o);
}

OCISTORE_DECL image_config tag_invoke(boost::json::value_to_tag<image_config>, boost::json::value const& jv)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        ec.clear();
        image_config c;
        detail::json_reader r{error::invalid_config, ec, why};
        detail::image_config_impl::read_config(r, jv, c);
        return c;
    });
}

} // namespace ocistore
