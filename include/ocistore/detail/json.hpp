// Internal: size-capped JSON parsing and path-precise validated reading of Boost.JSON values,
// shared by the OCI models (descriptor, platform, manifest, image_config).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ocistore::detail {

/// Collects the first failure of a document walk as (`code`, "path: reason").
struct json_reader {
    error code;      ///< invalid_manifest or invalid_config: what kind of document is walked
    error_code& ec;  ///< receives `code` (or a more specific error) on failure
    std::string* why;

    /// Records "path: msg" with `code`; returns false so callers can `return r.fail(...)`.
    bool fail(std::string_view path, std::string_view msg) { return fail(code, path, msg); }
    bool fail(error e, std::string_view path, std::string_view msg)
    {
        std::string text;
        if (!path.empty()) text.append(path).append(": ");
        text.append(msg);
        detail::fail(ec, why, e, std::move(text));
        return false;
    }
};

/// Whether a field must be present (and not null).
enum class presence { required, optional };

inline std::string json_member_path(std::string_view parent, std::string_view key)
{
    std::string p(parent);
    if (!p.empty()) p.push_back('.');
    p.append(key);
    return p;
}

inline std::string json_element_path(std::string_view parent, std::size_t i)
{
    return std::string(parent) + '[' + std::to_string(i) + ']';
}

/// "a string", "an object", "null", …: for "expected X, got Y" messages.
inline char const* json_kind_name(boost::json::value const& v) noexcept
{
    switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
    }
    return "an unknown value";
}

inline bool json_wrong_type(json_reader& r, boost::json::value const& v, std::string_view path, char const* expected)
{
    return r.fail(path, std::string("expected ") + expected + ", got " + json_kind_name(v));
}

/// The object `v`, or nullptr after reporting that `path` is not an object.
inline boost::json::object const* json_as_object(json_reader& r, boost::json::value const& v, std::string_view path)
{
    if (auto const* o = v.if_object()) return o;
    json_wrong_type(r, v, path, "an object");
    return nullptr;
}

// --- value readers: one overload per model field type; each reports "path: reason" ----------

inline bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, std::string& out)
{
    auto const* s = v.if_string();
    if (!s) return json_wrong_type(r, v, path, "a string");
    out.assign(s->data(), s->size());
    return true;
}

inline bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, bool& out)
{
    auto const* b = v.if_bool();
    if (!b) return json_wrong_type(r, v, path, "a boolean");
    out = *b;
    return true;
}

/// Any JSON integer that fits in int64 (a fraction or exponent is not an integer).
inline bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, std::int64_t& out)
{
    if (auto const* i = v.if_int64()) return out = *i, true;
    if (auto const* u = v.if_uint64()) {
        if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return r.fail(path, "integer " + std::to_string(*u) + " is out of range");
        return out = static_cast<std::int64_t>(*u), true;
    }
    if (v.is_double()) return r.fail(path, "expected an integer, got a number with a fraction or exponent");
    return json_wrong_type(r, v, path, "an integer");
}

/// A digest string, validated by digest::parse. An unsupported algorithm keeps its own code.
inline bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, ocistore::digest& out)
{
    std::string text;
    if (!read_value(r, v, path, text)) return false;
    if (text.empty()) return r.fail(path, "invalid digest: empty string");
    error_code dec;
    std::string dwhy;
    out = ocistore::digest::parse(text, dec, &dwhy);
    if (!dec) return true;
    error const e = dec == error::unsupported_digest_algorithm ? error::unsupported_digest_algorithm : r.code;
    return r.fail(e, path, "invalid " + dwhy);
}

/// An object of string values.
inline bool read_value(json_reader& r, boost::json::value const& v, std::string_view path,
                       std::map<std::string, std::string>& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    out.clear();
    for (auto const& kv : *o) {
        std::string val;
        if (!read_value(r, kv.value(), json_member_path(path, kv.key()), val)) return false;
        out.insert_or_assign(std::string(kv.key()), std::move(val));
    }
    return true;
}

template <class T>
bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, std::vector<T>& out)
{
    auto const* a = v.if_array();
    if (!a) return json_wrong_type(r, v, path, "an array");
    out.clear();
    out.reserve(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
        T item{};
        if (!read_value(r, (*a)[i], json_element_path(path, i), item)) return false;
        out.push_back(std::move(item));
    }
    return true;
}

template <class T>
bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, std::optional<T>& out)
{
    T item{};
    if (!read_value(r, v, path, item)) return false;
    out = std::move(item);
    return true;
}

/// The keys of an object whose values do not matter ({"80/tcp": {}}), in document order.
inline bool read_object_keys(json_reader& r, boost::json::value const& v, std::string_view path,
                             std::vector<std::string>& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    out.clear();
    for (auto const& kv : *o) out.emplace_back(kv.key());
    return true;
}

/// The member `key` of `o` unless it is absent or null.
inline boost::json::value const* json_find(boost::json::object const& o, std::string_view key) noexcept
{
    auto const* v = o.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
}

/** Reads member `key` of `o` into `out`. Absent or null: fine (`out` untouched) when optional,
    "required field missing" otherwise. */
template <class T>
bool read_field(json_reader& r, boost::json::object const& o, std::string_view key, std::string_view parent, T& out,
                presence p = presence::optional)
{
    auto const* v = o.if_contains(key);
    if (!v || v->is_null()) {
        if (p == presence::optional) return true;
        return r.fail(json_member_path(parent, key), v ? "required field is null" : "required field missing");
    }
    return read_value(r, *v, json_member_path(parent, key), out);
}

// --- writers ------------------------------------------------------------------------------

inline void put_if(boost::json::object& o, std::string_view key, std::string const& s)
{
    if (!s.empty()) o[key] = s;
}

inline void put_if(boost::json::object& o, std::string_view key, std::vector<std::string> const& v)
{
    if (v.empty()) return;
    boost::json::array& a = o[key].emplace_array();
    for (auto const& s : v) a.emplace_back(s);
}

inline void put_if(boost::json::object& o, std::string_view key, std::map<std::string, std::string> const& m)
{
    if (m.empty()) return;
    boost::json::object& obj = o[key].emplace_object();
    for (auto const& [k, v] : m) obj[k] = v;
}

/// Writes {"k1": {}, "k2": {}} for a key set such as ExposedPorts.
inline void put_keys_if(boost::json::object& o, std::string_view key, std::vector<std::string> const& keys)
{
    if (keys.empty()) return;
    boost::json::object& obj = o[key].emplace_object();
    for (auto const& k : keys) obj[k].emplace_object();
}

// --- documents ----------------------------------------------------------------------------

/// 1-based line and column of byte `pos` in `text`.
inline std::string json_position(std::string_view text, std::size_t pos)
{
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < text.size(); ++i) {
        if (text[i] == '\n') ++line, col = 1;
        else ++col;
    }
    return "offset " + std::to_string(pos) + " (line " + std::to_string(line) + ", column " + std::to_string(col) + ")";
}

/** Parses the JSON document `bytes` (named `what` in messages) of at most `limit` bytes into
    a value allocated from `sp`. Oversize: error::too_large, checked before parsing.
    Malformed: error::invalid_json with Boost.JSON's reason and the byte offset. Duplicate
    keys are accepted; the last one wins (Boost.JSON 1.81 has no option to reject them). */
inline boost::json::value parse_json_document(std::string_view bytes, std::size_t limit, std::string_view what,
                                              boost::json::storage_ptr sp, error_code& ec, std::string* why)
{
    ec.clear();
    if (bytes.size() > limit) {
        fail(ec, why, error::too_large,
             std::string(what) + " is " + std::to_string(bytes.size()) + " bytes; the limit is " + std::to_string(limit) +
                 " bytes");
        return nullptr;
    }
    boost::json::parse_options opt;  // strict RFC 8259: no comments, no trailing commas, valid UTF-8
    boost::json::parser p(sp, opt);
    std::error_code jec;
    std::size_t const n = p.write(bytes.data(), bytes.size(), jec);
    if (jec) {
        fail(ec, why, error::invalid_json,
             std::string(what) + " is not valid JSON: " + jec.message() + " at " + json_position(bytes, n));
        return nullptr;
    }
    return p.release();
}

} // namespace ocistore::detail
