// Non-template bodies for ocistore/http/www_authenticate.hpp.
#pragma once

#include <ocistore/http/www_authenticate.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/detail/http_text.hpp>

namespace ocistore {
namespace detail::www_authenticate_impl {

/// RFC 9110 token68 characters, not counting the trailing '=' padding.
inline bool is_token68_char(char c) noexcept
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/// qdtext and the escaped octet of a quoted-pair: HTAB, SP, VCHAR, obs-text.
inline bool is_quoted_char(char c) noexcept
{
    auto const u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
}

class parser {
public:
    parser(std::string_view s, std::string where, error_code& ec, std::string* why)
        : s_(s), where_(std::move(where)), ec_(ec), why_(why)
    {
    }

    /** Appends the challenges of the value to `out`; false after reporting a failure. A leading
        parameter continues the last challenge already in `out` (field lines join with ", "). */
    bool run(std::vector<auth_challenge>& out)
    {
        std::size_t current = out.empty() ? npos : out.size() - 1; // the challenge parameters attach to
        while (true) {
            skip_ows();
            if (at_end()) return true;
            if (s_[i_] == ',') {
                ++i_;
                continue;
            }
            std::size_t const start = i_;
            std::string_view const name = token();
            if (name.empty())
                return fail("expected an auth-scheme or a parameter name at position " + pos(i_) + ", found " + here());
            std::size_t k = i_;
            while (k < s_.size() && is_ows(s_[k])) ++k;
            if (k < s_.size() && s_[k] == '=') { // name=value after a comma: the current challenge's parameter
                if (current == npos)
                    return fail("parameter '" + std::string(name) + "' at position " + pos(start) +
                                " comes before any auth-scheme");
                auth_challenge& c = out[current];
                if (!c.token68.empty())
                    return fail("parameter '" + std::string(name) + "' at position " + pos(start) +
                                " follows the token68 of the '" + c.scheme + "' challenge");
                i_ = k;
                if (!param_value(c, name, start) || !after_param(name)) return false;
                continue;
            }
            // A new challenge.
            out.emplace_back();
            current = out.size() - 1;
            out[current].scheme = ascii_lowercase(name);
            if (k == s_.size() || s_[k] == ',') {
                i_ = k;
                continue;
            }
            if (k == i_)
                return fail("expected a space or ',' after auth-scheme '" + std::string(name) + "' at position " +
                            pos(i_) + ", found " + here());
            i_ = k;
            if (try_token68(out[current])) continue;
            std::size_t const pstart = i_;
            std::string_view const pname = token();
            if (pname.empty())
                return fail("expected a token68 or a parameter name after auth-scheme '" + std::string(name) +
                            "' at position " + pos(i_) + ", found " + here());
            skip_ows();
            if (at_end() || s_[i_] != '=')
                return fail("expected '=' after parameter name '" + std::string(pname) + "' at position " + pos(i_) +
                            ", found " + here());
            if (!param_value(out[current], pname, pstart) || !after_param(pname)) return false;
        }
    }

private:
    static constexpr std::size_t npos = std::string_view::npos;

    std::string_view s_;
    std::size_t i_ = 0;
    std::string where_;
    error_code& ec_;
    std::string* why_;

    bool fail(std::string msg)
    {
        detail::fail(ec_, why_, error::protocol_error, where_ + ": " + msg);
        return false;
    }
    static std::string pos(std::size_t p) { return std::to_string(p); }
    std::string here() const { return at_end() ? std::string("the end of the value") : describe_char(s_[i_]); }
    bool at_end() const noexcept { return i_ >= s_.size(); }
    void skip_ows() noexcept
    {
        while (!at_end() && is_ows(s_[i_])) ++i_;
    }
    std::string_view token() noexcept
    {
        std::size_t const b = i_;
        while (!at_end() && is_tchar(s_[i_])) ++i_;
        return s_.substr(b, i_ - b);
    }

    /// At the first non-space after a scheme: consumes `token68 OWS` when followed by ',' or the end.
    bool try_token68(auth_challenge& c)
    {
        std::size_t j = i_;
        while (j < s_.size() && is_token68_char(s_[j])) ++j;
        if (j == i_) return false;
        while (j < s_.size() && s_[j] == '=') ++j;
        std::size_t m = j;
        while (m < s_.size() && is_ows(s_[m])) ++m;
        if (m != s_.size() && s_[m] != ',') return false;
        c.token68.assign(s_.substr(i_, j - i_));
        i_ = m;
        return true;
    }

    /// At '=' after parameter `name` (which started at `name_pos`): reads BWS and the value.
    bool param_value(auth_challenge& c, std::string_view name, std::size_t name_pos)
    {
        ++i_;
        skip_ows();
        std::string value;
        if (at_end() || s_[i_] == ',')
            return fail("parameter '" + std::string(name) + "' at position " + pos(name_pos) + " has no value");
        if (s_[i_] == '"') {
            if (!quoted(value)) return false;
        } else {
            std::string_view const t = token();
            if (t.empty())
                return fail("value of parameter '" + std::string(name) + "' at position " + pos(i_) + ": " + here() +
                            " cannot start a token or a quoted string");
            value.assign(t);
        }
        std::string lname = ascii_lowercase(name);
        for (auto const& p : c.params)
            if (p.first == lname)
                return fail("parameter '" + lname + "' appears twice in the '" + c.scheme +
                            "' challenge (again at position " + pos(name_pos) + ")");
        c.params.emplace_back(std::move(lname), std::move(value));
        return true;
    }

    /// After a parameter value: OWS, then ',' or the end.
    bool after_param(std::string_view name)
    {
        skip_ows();
        if (at_end() || s_[i_] == ',') return true;
        return fail("expected ',' after the value of parameter '" + std::string(name) + "' at position " + pos(i_) +
                    ", found " + here());
    }

    /// At '"': reads a quoted-string, resolving quoted-pairs.
    bool quoted(std::string& out)
    {
        std::size_t const start = i_++;
        while (true) {
            if (at_end()) return fail("unterminated quoted string starting at position " + pos(start));
            char const c = s_[i_];
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c == '\\') {
                if (i_ + 1 >= s_.size()) return fail("unterminated quoted string starting at position " + pos(start));
                char const e = s_[i_ + 1];
                if (!is_quoted_char(e))
                    return fail("backslash at position " + pos(i_) + " escapes " + describe_char(e) +
                                ", which is not allowed in a quoted string");
                out.push_back(e);
                i_ += 2;
                continue;
            }
            if (!is_quoted_char(c))
                return fail(describe_char(c) + " at position " + pos(i_) + " is not allowed in a quoted string");
            out.push_back(c);
            ++i_;
        }
    }
};

} // namespace detail::www_authenticate_impl

OCISTORE_DECL std::optional<std::string_view> auth_challenge::param(std::string_view name) const
{
    for (auto const& p : params)
        if (detail::iequals(p.first, name)) return std::string_view(p.second);
    return std::nullopt;
}

OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value, error_code& ec,
                                                                 std::string* why)
{
    ec.clear();
    std::vector<auth_challenge> out;
    detail::www_authenticate_impl::parser p(header_value, "WWW-Authenticate", ec, why);
    if (!p.run(out)) return {};
    if (out.empty()) {
        detail::fail(ec, why, error::protocol_error, "WWW-Authenticate: no challenge in the value");
        return {};
    }
    return out;
}

OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::string_view header_value)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return parse_www_authenticate(header_value, ec, why); });
}

OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::span<std::string_view const> lines,
                                                                 error_code& ec, std::string* why)
{
    ec.clear();
    std::vector<auth_challenge> out;
    for (std::size_t n = 0; n < lines.size(); ++n) {
        detail::www_authenticate_impl::parser p(lines[n], "WWW-Authenticate line " + std::to_string(n + 1), ec, why);
        if (!p.run(out)) return {};
    }
    if (out.empty()) {
        detail::fail(ec, why, error::protocol_error,
                     "WWW-Authenticate: no challenge in " + std::to_string(lines.size()) + " field line(s)");
        return {};
    }
    return out;
}

OCISTORE_DECL std::vector<auth_challenge> parse_www_authenticate(std::span<std::string_view const> lines)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse_www_authenticate(lines, ec, why); });
}

OCISTORE_DECL auth_challenge const* find_challenge(std::span<auth_challenge const> challenges,
                                                   std::string_view scheme) noexcept
{
    for (auto const& c : challenges)
        if (detail::iequals(c.scheme, scheme)) return &c;
    return nullptr;
}

} // namespace ocistore
