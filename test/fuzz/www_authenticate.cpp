// Fuzz target: parse_www_authenticate on arbitrary bytes, as one field value and as field lines.
//
// Invariants: a rejection is error::protocol_error with a reason and no challenges; accepted
// challenges have lowercase token schemes and parameter names, no repeated name within one
// challenge, never both params and a token68, param() and find_challenge() find what is there,
// and re-serialising the challenges parses back to the same challenges. The input split at
// '\n' into field lines, when accepted, gives what the lines joined with ", " give.
#include <ocistore/http/www_authenticate.hpp>

#include <support/fuzz_check.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using ocistore::auth_challenge;
using ocistore::error;
using ocistore_test::fuzz::describe;
using ocistore_test::fuzz::printable;

bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_lower_token(std::string_view s)
{
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c) || (c >= 'A' && c <= 'Z')) return false;
    return true;
}

std::string upper(std::string s)
{
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

/// The challenges written back as one field value, every parameter value quoted.
std::string serialise(std::vector<auth_challenge> const& cs)
{
    std::string out;
    for (auto const& c : cs) {
        if (!out.empty()) out += ", ";
        out += c.scheme;
        if (!c.token68.empty()) {
            out += ' ';
            out += c.token68;
            continue;
        }
        bool first = true;
        for (auto const& [name, value] : c.params) {
            out += first ? " " : ", ";
            first = false;
            out += name;
            out += "=\"";
            for (char v : value) {
                if (v == '"' || v == '\\') out += '\\';
                out += v;
            }
            out += '"';
        }
    }
    return out;
}

bool same(std::vector<auth_challenge> const& a, std::vector<auth_challenge> const& b)
{
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].scheme != b[i].scheme || a[i].params != b[i].params || a[i].token68 != b[i].token68) return false;
    return true;
}

void check_challenges(std::vector<auth_challenge> const& cs, std::string_view input)
{
    OCISTORE_FUZZ_CHECK(!cs.empty(), "accepted " + printable(input) + " without a challenge");
    for (auto const& c : cs) {
        OCISTORE_FUZZ_CHECK(is_lower_token(c.scheme), "scheme " + printable(c.scheme) + " of " + printable(input));
        OCISTORE_FUZZ_CHECK(c.params.empty() || c.token68.empty(), "params and token68 in " + printable(input));
        for (std::size_t i = 0; i < c.params.size(); ++i) {
            auto const& name = c.params[i].first;
            OCISTORE_FUZZ_CHECK(is_lower_token(name), "parameter name " + printable(name) + " of " + printable(input));
            for (std::size_t j = 0; j < i; ++j)
                OCISTORE_FUZZ_CHECK(c.params[j].first != name, "parameter " + printable(name) + " repeated");
            auto const v = c.param(upper(name));
            OCISTORE_FUZZ_CHECK(v && *v == c.params[i].second, "param(" + printable(name) + ") of " + printable(input));
        }
        auto const* found = ocistore::find_challenge(cs, upper(c.scheme));
        OCISTORE_FUZZ_CHECK(found && found->scheme == c.scheme && found <= &c,
                            "find_challenge(" + printable(c.scheme) + ") of " + printable(input));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const text = ocistore_test::fuzz::as_text(data, size);
    ocistore::error_code ec;
    std::string why;
    auto const cs = ocistore::parse_www_authenticate(text, ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::protocol_error, describe(ec));
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting " + printable(text));
        OCISTORE_FUZZ_CHECK(cs.empty(), "challenges returned with an error");
    } else {
        check_challenges(cs, text);
        std::string const again_text = serialise(cs);
        auto const again = ocistore::parse_www_authenticate(again_text, ec, &why);
        OCISTORE_FUZZ_CHECK(!ec, "serialised " + printable(again_text) + " rejected: " + why);
        OCISTORE_FUZZ_CHECK(same(again, cs), "serialised " + printable(again_text) + " parses differently");
    }

    std::vector<std::string_view> lines;
    for (std::size_t pos = 0;;) {
        std::size_t const nl = text.find('\n', pos);
        lines.push_back(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    auto const by_lines = ocistore::parse_www_authenticate(std::span<std::string_view const>(lines), ec, &why);
    if (ec) {
        OCISTORE_FUZZ_CHECK(ec == error::protocol_error, describe(ec));
        OCISTORE_FUZZ_CHECK(!why.empty(), "no reason for rejecting the lines of " + printable(text));
        return 0;
    }
    check_challenges(by_lines, text);
    std::string joined;
    for (std::size_t i = 0; i < lines.size(); ++i) (joined += i ? ", " : "") += lines[i];
    auto const from_joined = ocistore::parse_www_authenticate(joined, ec, &why);
    OCISTORE_FUZZ_CHECK(!ec, "field lines accepted, joined " + printable(joined) + " rejected: " + why);
    OCISTORE_FUZZ_CHECK(same(from_joined, by_lines), "field lines and " + printable(joined) + " differ");
    return 0;
}
