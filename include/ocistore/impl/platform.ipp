// Non-template bodies for ocistore/platform.hpp.
#pragma once

#include <ocistore/platform.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <algorithm>
#include <charconv>
#include <ostream>
#include <utility>

namespace ocistore {
namespace detail::platform_impl {

inline bool is_component_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

inline std::string lowercase(std::string_view s)
{
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

/// N for "vN" (or "N"), -1 otherwise.
inline int variant_number(std::string_view v) noexcept
{
    if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
    int n = -1;
    auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (err != std::errc{} || end != v.data() + v.size() || v.empty() || n < 0) return -1;
    return n;
}

/// "vMAJOR" or "vMAJOR.MINOR": {major, minor}; {-1, -1} otherwise.
inline std::pair<int, int> arm64_variant(std::string_view v) noexcept
{
    auto const dot = v.find('.');
    if (dot == std::string_view::npos) return {variant_number(v), 0};
    int const major = variant_number(v.substr(0, dot));
    std::string_view minor_text = v.substr(dot + 1);
    int minor = -1;
    auto [end, err] = std::from_chars(minor_text.data(), minor_text.data() + minor_text.size(), minor);
    if (major < 0 || err != std::errc{} || end != minor_text.data() + minor_text.size() || minor_text.empty() ||
        minor < 0)
        return {-1, -1};
    return {major, minor};
}

inline std::string arm64_variant_name(int major, int minor)
{
    return "v" + std::to_string(major) + (minor == 0 ? std::string{} : "." + std::to_string(minor));
}

inline platform with_arch(platform const& base, std::string arch, std::string variant)
{
    platform p;
    p.os = base.os;
    p.os_version = base.os_version;
    p.os_features = base.os_features;
    p.architecture = std::move(arch);
    p.variant = std::move(variant);
    return p;
}

/// containerd's platform vector for an already normalised `p`, best first.
inline void compatible_platforms(platform const& p, std::vector<platform>& out)
{
    out.push_back(p);
    if (p.architecture == "amd64") {
        int const n = variant_number(p.variant);
        for (int v = n - 1; n > 1 && v >= 2; --v) out.push_back(with_arch(p, "amd64", "v" + std::to_string(v)));
        if (n > 1) out.push_back(with_arch(p, "amd64", ""));
        out.push_back(with_arch(p, "386", ""));
    } else if (p.architecture == "arm") {
        int const n = variant_number(p.variant);
        for (int v = n - 1; n > 5 && v >= 5; --v) out.push_back(with_arch(p, "arm", "v" + std::to_string(v)));
    } else if (p.architecture == "arm64") {
        auto [major, minor] = arm64_variant(p.variant);
        if (major == 9) {
            for (int m = minor - 1; m >= 0; --m) out.push_back(with_arch(p, "arm64", arm64_variant_name(9, m)));
            major = 8;
            minor = std::min(minor + 5, 9);
            out.push_back(with_arch(p, "arm64", arm64_variant_name(8, minor)));
        }
        if (major == 8)
            for (int m = minor - 1; m >= 0; --m) out.push_back(with_arch(p, "arm64", arm64_variant_name(8, m)));
        // Every arm64 CPU of these variants can run 32-bit arm v8 and older (AArch32 at EL0).
        if (major == 8)
            for (int v = 8; v >= 5; --v) out.push_back(with_arch(p, "arm", "v" + std::to_string(v)));
    }
}

} // namespace detail::platform_impl

OCISTORE_DECL platform platform::parse(std::string_view text, error_code& ec, std::string* why)
{
    using detail::fail;
    ec.clear();
    auto quoted = [&] { return "platform \"" + std::string(text.substr(0, 200)) + "\": "; };
    auto bad = [&](std::string msg) { return fail(ec, why, error::invalid_platform, quoted() + msg), platform{}; };
    if (text.empty()) return bad("is empty; expected os/architecture[/variant]");

    std::vector<std::string_view> parts;
    std::vector<std::size_t> starts;
    for (std::size_t start = 0;;) {
        auto const slash = text.find('/', start);
        parts.push_back(text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        starts.push_back(start);
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    if (parts.size() == 1) return bad("missing '/' between os and architecture (expected os/architecture[/variant])");
    if (parts.size() > 3)
        return bad("too many components: " + std::to_string(parts.size()) + " (expected os/architecture[/variant])");

    char const* const names[] = {"os", "architecture", "variant"};
    platform p;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        std::string_view part = parts[i];
        std::size_t const base = starts[i];
        if (i == 0) {
            // os "(" os_version ")"
            auto const open = part.find('(');
            if (open != std::string_view::npos) {
                if (part.back() != ')')
                    return bad("os version opened by '(' at position " + std::to_string(base + open) +
                               " must be closed by ')' before the next '/'");
                std::string_view version = part.substr(open + 1, part.size() - open - 2);
                if (version.empty()) return bad("empty os version at position " + std::to_string(base + open + 1));
                for (std::size_t j = 0; j < version.size(); ++j)
                    if (!detail::platform_impl::is_component_char(version[j]))
                        return bad(detail::describe_char(version[j]) + " at position " +
                                   std::to_string(base + open + 1 + j) +
                                   " is not allowed in an os version (only [A-Za-z0-9_.-])");
                p.os_version.assign(version);
                part = part.substr(0, open);
            }
        }
        if (part.empty()) return bad(std::string("empty ") + names[i] + " at position " + std::to_string(base));
        for (std::size_t j = 0; j < part.size(); ++j)
            if (!detail::platform_impl::is_component_char(part[j]))
                return bad(detail::describe_char(part[j]) + " at position " + std::to_string(base + j) +
                           " is not allowed in the " + names[i] + " (only [A-Za-z0-9_.-])");
        (i == 0 ? p.os : i == 1 ? p.architecture : p.variant).assign(part);
    }
    return p.normalized();
}

OCISTORE_DECL platform platform::parse(std::string_view text)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse(text, ec, why); });
}

OCISTORE_DECL std::string platform::to_string() const
{
    std::string s = os;
    if (!os_version.empty()) s.append("(").append(os_version).append(")");
    s.append("/").append(architecture);
    if (!variant.empty()) s.append("/").append(variant);
    return s;
}

OCISTORE_DECL platform platform::normalized() const
{
    using detail::platform_impl::lowercase;
    platform p = *this;
    p.os = lowercase(os);
    if (p.os == "macos") p.os = "darwin";
    p.architecture = lowercase(architecture);
    p.variant = lowercase(variant);
    std::string& a = p.architecture;
    std::string& v = p.variant;
    auto const numeric = [&] { return !v.empty() && v.front() >= '0' && v.front() <= '9'; };
    if (a == "i386" || a == "i486" || a == "i586" || a == "i686" || a == "386") {
        a = "386";
        v.clear();
    } else if (a == "x86_64" || a == "x86-64" || a == "amd64") {
        a = "amd64";
        if (numeric()) v.insert(0, "v");
        if (v == "v1") v.clear();
    } else if (a == "aarch64" || a == "arm64") {
        a = "arm64";
        if (numeric()) v.insert(0, "v");
        if (v.empty()) v = "v8";
    } else if (a == "armhf") {
        a = "arm";
        v = "v7";
    } else if (a == "armel") {
        a = "arm";
        v = "v6";
    } else if (a == "arm") {
        if (numeric()) v.insert(0, "v");
        if (v.empty()) v = "v7";
    }
    return p;
}

OCISTORE_DECL platform host_platform()
{
    platform p;
#if defined(__linux__)
    p.os = "linux";
#elif defined(_WIN32)
    p.os = "windows";
#elif defined(__APPLE__)
    p.os = "darwin";
#elif defined(__FreeBSD__)
    p.os = "freebsd";
#elif defined(__NetBSD__)
    p.os = "netbsd";
#elif defined(__OpenBSD__)
    p.os = "openbsd";
#else
    p.os = "unknown";
#endif
#if defined(__x86_64__) || defined(_M_X64)
    p.architecture = "amd64";
#elif defined(__aarch64__) || defined(_M_ARM64)
    p.architecture = "arm64";
    p.variant = "v8";
#elif defined(__arm__)
    p.architecture = "arm";
#  if defined(__ARM_ARCH) && __ARM_ARCH >= 5
    p.variant = "v" + std::to_string(__ARM_ARCH);
#  endif
#elif defined(__i386__) || defined(_M_IX86)
    p.architecture = "386";
#elif defined(__riscv) && __riscv_xlen == 64
    p.architecture = "riscv64";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    p.architecture = "ppc64le";
#elif defined(__powerpc64__)
    p.architecture = "ppc64";
#elif defined(__s390x__)
    p.architecture = "s390x";
#elif defined(__loongarch64)
    p.architecture = "loong64";
#elif defined(__mips64) && defined(__MIPSEL__)
    p.architecture = "mips64le";
#elif defined(__mips64)
    p.architecture = "mips64";
#else
    p.architecture = "unknown";
#endif
    return p.normalized();
}

OCISTORE_DECL std::ostream& operator<<(std::ostream& os, platform const& p) { return os << p.to_string(); }

OCISTORE_DECL platform_matcher::platform_matcher(platform const& wanted)
{
    detail::platform_impl::compatible_platforms(wanted.normalized(), compatible_);
}

OCISTORE_DECL std::size_t platform_matcher::rank(platform const& candidate) const
{
    platform const n = candidate.normalized();
    std::string const written_variant = detail::platform_impl::lowercase(candidate.variant);
    for (std::size_t i = 0; i < compatible_.size(); ++i) {
        platform const& c = compatible_[i];
        if (n.os != c.os || n.architecture != c.architecture || n.variant != c.variant) continue;
        std::size_t tie = 0;
        if (written_variant != c.variant) tie += 2; // the variant is implied, not written out
        if (!wanted().os_version.empty() && candidate.os_version != wanted().os_version) tie += 1;
        return i * 4 + tie;
    }
    return no_match;
}

namespace detail {

OCISTORE_DECL bool read_value(json_reader& r, boost::json::value const& v, std::string_view path, platform& out)
{
    auto const* o = json_as_object(r, v, path);
    if (!o) return false;
    platform p;
    if (!read_field(r, *o, "architecture", path, p.architecture, presence::required) ||
        !read_field(r, *o, "os", path, p.os, presence::required) || !read_field(r, *o, "variant", path, p.variant) ||
        !read_field(r, *o, "os.version", path, p.os_version) ||
        !read_field(r, *o, "os.features", path, p.os_features))
        return false;
    out = std::move(p);
    return true;
}

OCISTORE_DECL boost::json::object platform_to_json(platform const& p)
{
    boost::json::object o;
    o["architecture"] = p.architecture;
    o["os"] = p.os;
    put_if(o, "os.version", p.os_version);
    put_if(o, "os.features", p.os_features);
    put_if(o, "variant", p.variant);
    return o;
}

} // namespace detail

OCISTORE_DECL void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, platform const& p)
{
    jv = detail::platform_to_json(p);
}

OCISTORE_DECL platform tag_invoke(boost::json::value_to_tag<platform>, boost::json::value const& jv)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) {
        platform p;
        detail::json_reader r{error::invalid_manifest, ec, why};
        detail::read_value(r, jv, "", p);
        return p;
    });
}

} // namespace ocistore
