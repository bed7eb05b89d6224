// Non-template bodies for ocistore/reference.hpp.
#pragma once

#include <ocistore/reference.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <ostream>

namespace ocistore {
namespace detail::reference_impl {

constexpr std::string_view legacy_docker_hub = "index.docker.io";
constexpr std::string_view official_prefix = "library/";
constexpr std::string_view localhost = "localhost";

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
inline bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
inline bool is_lower_alnum(char c) noexcept { return is_lower(c) || is_digit(c); }
inline bool is_alnum(char c) noexcept { return is_lower_alnum(c) || is_upper(c); }
inline bool is_word(char c) noexcept { return is_alnum(c) || c == '_'; }
inline bool is_hex(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

inline bool has_upper(std::string_view s) noexcept
{
    for (char c : s)
        if (is_upper(c)) return true;
    return false;
}

inline std::string at(std::size_t pos) { return " at position " + std::to_string(pos); }

/// `label "text": ` with non-printable bytes escaped and long input cut.
inline std::string quoted(char const* label, std::string_view text)
{
    static char const hex[] = "0123456789abcdef";
    std::string out(label);
    out += " \"";
    std::size_t const limit = 200;
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        auto const u = static_cast<unsigned char>(text[i]);
        if (text[i] == '"' || text[i] == '\\') {
            out += '\\';
            out += text[i];
        } else if (u >= 0x20 && u < 0x7f) {
            out += text[i];
        } else {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    if (text.size() > limit) out += "...";
    out += "\": ";
    return out;
}

/// Reports grammar violations as error::invalid_reference, prefixed with the quoted input.
struct reporter {
    error_code& ec;
    std::string* why;
    std::string prefix;

    bool fail(std::string msg) const
    {
        detail::fail(ec, why, error::invalid_reference, why ? prefix + msg : std::string{});
        return false;
    }
};

/// host [":" port]; `base` is the offset of `host` in the reported input.
inline bool check_registry(std::string_view reg, std::size_t base, bool by_uppercase, reporter const& r)
{
    std::string const hint = by_uppercase
        ? " (the first component is taken as a registry host because it contains an uppercase letter;"
          " repository paths must be lowercase)"
        : "";
    std::size_t const n = reg.size();
    std::size_t i = 0;
    if (reg.front() == ':') return r.fail("missing registry host before ':'" + at(base));
    if (reg.front() == '[') {
        for (i = 1; i < n && reg[i] != ']'; ++i)
            if (!is_hex(reg[i]) && reg[i] != ':')
                return r.fail(describe_char(reg[i]) + at(base + i) +
                              " is not allowed in a bracketed IPv6 registry address (only hex digits and ':';"
                              " zone identifiers and embedded IPv4 are not supported)");
        if (i == n) return r.fail("'[' at position " + std::to_string(base) + " has no matching ']'");
        if (i == 1) return r.fail("empty IPv6 address \"[]\"" + at(base));
        ++i;
        if (i < n && reg[i] != ':')
            return r.fail(describe_char(reg[i]) + at(base + i) + " follows an IPv6 address; only \":port\" may follow ']'");
    } else {
        for (;;) {
            std::size_t const start = i;
            for (; i < n && reg[i] != '.' && reg[i] != ':'; ++i)
                if (!is_alnum(reg[i]) && reg[i] != '-')
                    return r.fail(describe_char(reg[i]) + at(base + i) +
                                  " is not allowed in a registry host name (only [A-Za-z0-9-] and '.')" + hint);
            if (i == start) return r.fail("empty component in registry host name" + at(base + i));
            if (reg[start] == '-')
                return r.fail("registry host name component starts with '-'" + at(base + start) +
                              ": components must start and end with [A-Za-z0-9]" + hint);
            if (reg[i - 1] == '-')
                return r.fail("registry host name component ends with '-'" + at(base + i - 1) +
                              ": components must start and end with [A-Za-z0-9]" + hint);
            if (i < n && reg[i] == '.') {
                ++i;
                continue;
            }
            break;
        }
    }
    if (i == n) return true;
    // reg[i] == ':'
    std::size_t const colon = i;
    if (colon + 1 == n) return r.fail("empty port after ':'" + at(base + colon));
    for (i = colon + 1; i < n; ++i)
        if (!is_digit(reg[i])) {
            bool const looks_v6 = reg.front() != '[' && reg.find(':') != reg.rfind(':');
            return r.fail(describe_char(reg[i]) + at(base + i) + " is not allowed in a registry port (only digits)" +
                          (looks_v6 ? "; an IPv6 address must be enclosed in '[' and ']'" : ""));
        }
    return true;
}

/// path-comp ("/" path-comp)*; lowercase only.
inline bool check_path(std::string_view p, std::size_t base, reporter const& r)
{
    std::size_t const n = p.size();
    std::size_t i = 0;
    for (;;) {
        if (i == n || p[i] == '/')
            return r.fail("empty path component" + at(base + i) +
                          (i == n && base + i > 0 ? " (trailing '/')" : "") +
                          ": repository path components are separated by a single '/'");
        std::size_t const start = i;
        std::size_t run = std::string_view::npos; // start of the pending separator run
        for (; i < n && p[i] != '/'; ++i) {
            char const c = p[i];
            if (is_lower_alnum(c)) {
                if (run != std::string_view::npos) {
                    std::string_view const sep = p.substr(run, i - run);
                    bool const ok = sep == "." || sep == "_" || sep == "__" ||
                                    sep.find_first_not_of('-') == std::string_view::npos;
                    if (!ok)
                        return r.fail("invalid separator \"" + std::string(sep) + "\"" + at(base + run) +
                                      " in repository path: alphanumerics may be joined only by '.', '_', '__'"
                                      " or a run of '-'");
                    run = std::string_view::npos;
                }
            } else if (c == '.' || c == '_' || c == '-') {
                if (i == start)
                    return r.fail("path component starts with separator " + describe_char(c) + at(base + i) +
                                  ": components must start with [a-z0-9]");
                if (run == std::string_view::npos) run = i;
            } else if (is_upper(c)) {
                return r.fail("uppercase letter " + describe_char(c) + at(base + i) +
                              " in repository path: repository names must be lowercase");
            } else {
                return r.fail(describe_char(c) + at(base + i) +
                              " is not allowed in a repository path (only [a-z0-9], separators '.', '_', '-', and '/')");
            }
        }
        if (run != std::string_view::npos)
            return r.fail("path component ends with separator " + describe_char(p[run]) + at(base + run) +
                          ": components must end with [a-z0-9]");
        if (i == n) return true;
        ++i; // '/'
    }
}

/// [\w][\w.-]{0,127}; `t` is not empty.
inline bool check_tag(std::string_view t, std::size_t base, reporter const& r)
{
    if (t.size() > image_reference::max_tag_length)
        return r.fail("tag longer than " + std::to_string(image_reference::max_tag_length) + " characters (" +
                      std::to_string(t.size()) + ")");
    if (!is_word(t[0]))
        return r.fail("tag starts with " + describe_char(t[0]) + at(base) +
                      ": the first character must be [A-Za-z0-9_]");
    for (std::size_t i = 1; i < t.size(); ++i)
        if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
            return r.fail(describe_char(t[i]) + at(base + i) + " is not allowed in a tag (only [A-Za-z0-9_.-])");
    return true;
}

} // namespace detail::reference_impl

OCISTORE_DECL image_reference image_reference::parse(std::string_view text, error_code& ec, std::string* why)
{
    namespace impl = detail::reference_impl;
    constexpr auto npos = std::string_view::npos;
    ec.clear();
    impl::reporter const r{ec, why, why ? impl::quoted("reference", text) : std::string{}};

    if (text.empty()) return r.fail("reference is empty"), image_reference{};
    if (text.size() == 64 && text.find_first_not_of("0123456789abcdef") == npos)
        return r.fail("a 64-digit hexadecimal string is an image ID, not a repository name"), image_reference{};

    // name [":" tag] ["@" digest]
    std::string_view name_tag = text, dig;
    std::size_t const at_pos = text.find('@');
    if (at_pos != npos) {
        if (auto second = text.find('@', at_pos + 1); second != npos)
            return r.fail("second '@'" + impl::at(second) + ": a reference has at most one digest"), image_reference{};
        name_tag = text.substr(0, at_pos);
        dig = text.substr(at_pos + 1);
    }
    std::string_view name = name_tag, tag;
    std::size_t const colon = name_tag.rfind(':');
    std::size_t const last_slash = name_tag.rfind('/');
    bool const has_tag = colon != npos && (last_slash == npos || colon > last_slash);
    if (has_tag) {
        name = name_tag.substr(0, colon);
        tag = name_tag.substr(colon + 1);
    }
    if (name.empty()) {
        return r.fail(has_tag ? "missing repository name before ':' at position 0"
                              : "missing repository name before '@' at position 0 (a bare digest is not an image reference)"),
               image_reference{};
    }

    // splitDockerDomain: is the first component a registry?
    std::string_view path = name, host;
    std::size_t path_base = 0;
    bool by_uppercase = false;
    if (auto slash = name.find('/'); slash != npos) {
        std::string_view const first = name.substr(0, slash);
        if (first != impl::localhost && first.find_first_of(".:") == npos) by_uppercase = impl::has_upper(first);
        if (first == impl::localhost || first.find_first_of(".:") != npos || by_uppercase) {
            host = first;
            path = name.substr(slash + 1);
            path_base = slash + 1;
        }
    } else if (name.front() == '[') {
        return r.fail("'[' at position 0 starts an IPv6 registry address, which must be followed by '/' and a "
                      "repository path"),
               image_reference{};
    }

    if (!host.empty() && !impl::check_registry(host, 0, by_uppercase, r)) return {};
    if (!impl::check_path(path, path_base, r)) return {};
    if (has_tag) {
        if (tag.empty()) return r.fail("empty tag after ':'" + impl::at(colon)), image_reference{};
        if (!impl::check_tag(tag, colon + 1, r)) return {};
    }
    std::optional<ocistore::digest> d;
    if (at_pos != npos) {
        error_code dec;
        std::string dwhy;
        d = ocistore::digest::parse(dig, dec, why ? &dwhy : nullptr);
        if (dec) return r.fail("invalid digest after '@'" + impl::at(at_pos) + ": " + dwhy), image_reference{};
    }

    image_reference out;
    if (host.empty() || host == impl::legacy_docker_hub)
        out.registry_ = default_registry;
    else
        out.registry_ = host;
    bool const implied_library = out.registry_ == default_registry && path.find('/') == npos;
    if (implied_library) out.repository_ = impl::official_prefix;
    out.repository_ += path;
    if (out.repository_.size() > max_repository_length)
        return r.fail("repository name longer than " + std::to_string(max_repository_length) + " characters (" +
                      std::to_string(out.repository_.size()) +
                      (implied_library ? " including the implied \"library/\" prefix)" : ")")),
               image_reference{};
    if (has_tag) out.tag_.emplace(tag);
    out.digest_ = std::move(d);
    return out;
}

OCISTORE_DECL image_reference image_reference::parse(std::string_view text)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse(text, ec, why); });
}

OCISTORE_DECL std::string image_reference::api_host() const
{
    return registry_ == default_registry ? std::string(default_api_host) : registry_;
}

OCISTORE_DECL std::string const& image_reference::tag_or_default() const noexcept
{
    static std::string const fallback(default_tag);
    return tag_ ? *tag_ : fallback;
}

OCISTORE_DECL std::string image_reference::name() const
{
    if (empty()) return {};
    std::string out;
    out.reserve(registry_.size() + 1 + repository_.size());
    out.append(registry_).append(1, '/').append(repository_);
    return out;
}

namespace detail::reference_impl {
/// ":tag", "@digest", ":tag@digest", or ":latest" when there is neither.
inline void append_suffix(std::string& out, std::optional<std::string> const& tag, std::optional<digest> const& d)
{
    if (tag) out.append(1, ':').append(*tag);
    if (d) out.append(1, '@').append(d->str());
    if (!tag && !d) out.append(1, ':').append(image_reference::default_tag);
}
} // namespace detail::reference_impl

OCISTORE_DECL std::string image_reference::str() const
{
    if (empty()) return {};
    std::string out = name();
    detail::reference_impl::append_suffix(out, tag_, digest_);
    return out;
}

OCISTORE_DECL std::string image_reference::familiar() const
{
    namespace impl = detail::reference_impl;
    if (empty()) return {};
    std::string out;
    std::string_view const first = std::string_view(repository_).substr(0, repository_.find('/'));
    bool const first_looks_like_host = first.size() < repository_.size() &&
                                       (first == impl::localhost || first.find('.') != std::string_view::npos);
    if (registry_ == default_registry && !first_looks_like_host) {
        std::string_view repo = repository_;
        if (repo.starts_with(impl::official_prefix) &&
            repo.find('/', impl::official_prefix.size()) == std::string_view::npos)
            repo.remove_prefix(impl::official_prefix.size());
        out.assign(repo);
    } else {
        out = name();
    }
    impl::append_suffix(out, tag_, digest_);
    return out;
}

OCISTORE_DECL std::string image_reference::reference_for_fetch() const
{
    return digest_ ? digest_->str() : tag_or_default();
}

OCISTORE_DECL image_reference image_reference::with_digest(ocistore::digest d) const
{
    image_reference out = *this;
    if (empty()) return out;
    if (d.empty())
        out.digest_.reset();
    else
        out.digest_ = std::move(d);
    return out;
}

OCISTORE_DECL image_reference image_reference::with_tag(std::string_view t, error_code& ec, std::string* why) const
{
    namespace impl = detail::reference_impl;
    ec.clear();
    impl::reporter const r{ec, why, why ? impl::quoted("tag", t) : std::string{}};
    if (empty()) {
        detail::fail(ec, why, error::invalid_argument, "with_tag() called on an empty image_reference");
        return {};
    }
    if (t.empty()) return r.fail("tag is empty"), image_reference{};
    if (!impl::check_tag(t, 0, r)) return {};
    image_reference out = *this;
    out.tag_.emplace(t);
    return out;
}

OCISTORE_DECL image_reference image_reference::with_tag(std::string_view t) const
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return with_tag(t, ec, why); });
}

OCISTORE_DECL std::ostream& operator<<(std::ostream& os, image_reference const& r) { return os << r.str(); }

} // namespace ocistore
