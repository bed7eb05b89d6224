// Non-template bodies for ocistore/digest.hpp.
#pragma once

#include <ocistore/digest.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <ostream>

namespace ocistore {
namespace detail::digest_impl {

inline bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
inline bool is_lower_hex(char c) noexcept { return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'); }
inline bool is_encoded_char(char c) noexcept
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-';
}

} // namespace detail::digest_impl

OCISTORE_DECL std::size_t digest_hex_length(std::string_view algorithm) noexcept
{
    if (algorithm == "sha256") return 64;
    if (algorithm == "sha512") return 128;
    return 0;
}

OCISTORE_DECL digest digest::parse(std::string_view text, error_code& ec, std::string* why)
{
    using detail::fail;
    ec.clear();
    auto quoted = [&] { return "digest \"" + std::string(text.substr(0, 200)) + "\": "; };
    auto const colon = text.find(':');
    if (text.empty()) return fail(ec, why, error::invalid_digest, "digest is empty"), digest{};
    if (colon == std::string_view::npos)
        return fail(ec, why, error::invalid_digest, quoted() + "missing ':' between algorithm and encoded part"), digest{};
    std::string_view alg = text.substr(0, colon), enc = text.substr(colon + 1);
    // algorithm ::= component (separator component)*
    if (alg.empty()) return fail(ec, why, error::invalid_digest, quoted() + "empty algorithm"), digest{};
    bool prev_sep = true;
    for (std::size_t i = 0; i < alg.size(); ++i) {
        char c = alg[i];
        if (detail::digest_impl::is_lower_alnum(c)) {
            prev_sep = false;
        } else if (c == '+' || c == '.' || c == '_' || c == '-') {
            if (prev_sep)
                return fail(ec, why, error::invalid_digest,
                            quoted() + "separator " + detail::describe_char(c) + " at position " + std::to_string(i) +
                                " must sit between two algorithm components"),
                       digest{};
            prev_sep = true;
        } else {
            return fail(ec, why, error::invalid_digest,
                        quoted() + detail::describe_char(c) + " at position " + std::to_string(i) +
                            " is not allowed in an algorithm (only [a-z0-9] and separators [+._-])"),
                   digest{};
        }
    }
    if (prev_sep)
        return fail(ec, why, error::invalid_digest, quoted() + "algorithm ends with a separator"), digest{};
    if (enc.empty()) return fail(ec, why, error::invalid_digest, quoted() + "empty encoded part"), digest{};
    for (std::size_t i = 0; i < enc.size(); ++i)
        if (!detail::digest_impl::is_encoded_char(enc[i]))
            return fail(ec, why, error::invalid_digest,
                        quoted() + detail::describe_char(enc[i]) + " at position " + std::to_string(colon + 1 + i) +
                            " is not allowed in the encoded part (only [a-zA-Z0-9=_-])"),
                   digest{};
    std::size_t const want = digest_hex_length(alg);
    if (want == 0)
        return fail(ec, why, error::unsupported_digest_algorithm,
                    quoted() + "algorithm \"" + std::string(alg) + "\" is not supported (sha256, sha512)"),
               digest{};
    if (enc.size() != want)
        return fail(ec, why, error::invalid_digest,
                    quoted() + std::string(alg) + " needs " + std::to_string(want) + " hex digits, got " +
                        std::to_string(enc.size())),
               digest{};
    for (std::size_t i = 0; i < enc.size(); ++i)
        if (!detail::digest_impl::is_lower_hex(enc[i]))
            return fail(ec, why, error::invalid_digest,
                        quoted() + detail::describe_char(enc[i]) + " at position " + std::to_string(colon + 1 + i) +
                            " is not a lowercase hex digit"),
                   digest{};
    digest d;
    d.value_.assign(text);
    d.sep_ = colon;
    return d;
}

OCISTORE_DECL digest digest::parse(std::string_view text)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse(text, ec, why); });
}

OCISTORE_DECL digest digest::from_bytes(std::string_view algorithm, std::span<std::byte const> raw, error_code& ec)
{
    ec.clear();
    std::size_t const want = digest_hex_length(algorithm);
    if (want == 0) return ec = make_error_code(error::unsupported_digest_algorithm), digest{};
    if (raw.size() * 2 != want) return ec = make_error_code(error::invalid_digest), digest{};
    static char const hex[] = "0123456789abcdef";
    digest d;
    d.value_.reserve(algorithm.size() + 1 + want);
    d.value_.append(algorithm).push_back(':');
    for (std::byte b : raw) {
        auto u = std::to_integer<unsigned>(b);
        d.value_.push_back(hex[u >> 4]);
        d.value_.push_back(hex[u & 15]);
    }
    d.sep_ = algorithm.size();
    return d;
}

OCISTORE_DECL digest digest::from_bytes(std::string_view algorithm, std::span<std::byte const> raw)
{
    error_code ec;
    digest d = from_bytes(algorithm, raw, ec);
    if (ec) throw_error(ec, "digest::from_bytes(" + std::string(algorithm) + ", " + std::to_string(raw.size()) + " bytes)");
    return d;
}

OCISTORE_DECL digest digest::from_path_safe(std::string_view name, error_code& ec)
{
    auto const us = name.find('_');
    if (us == std::string_view::npos) return ec = make_error_code(error::invalid_digest), digest{};
    std::string text(name);
    text[us] = ':';
    return parse(text, ec);
}

OCISTORE_DECL digest digest::from_path_safe(std::string_view name)
{
    error_code ec;
    digest d = from_path_safe(name, ec);
    if (ec) throw_error(ec, "digest::from_path_safe(\"" + std::string(name.substr(0, 200)) + "\")");
    return d;
}

OCISTORE_DECL std::vector<std::byte> digest::bytes() const
{
    auto nib = [](char c) { return static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10); };
    std::string_view e = encoded();
    std::vector<std::byte> out(e.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(nib(e[2 * i]) << 4 | nib(e[2 * i + 1]));
    return out;
}

OCISTORE_DECL std::ostream& operator<<(std::ostream& os, digest const& d) { return os << d.str(); }

} // namespace ocistore
