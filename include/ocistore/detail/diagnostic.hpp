// Internal: helpers for parsers that report an error_code plus a human-readable reason.
#pragma once

#include <ocistore/error.hpp>

#include <string>

namespace ocistore::detail {

/// Sets `*why = msg` when the caller asked for a reason.
inline void set_why(std::string* why, std::string msg)
{
    if (why) *why = std::move(msg);
}

/// Sets `ec = e` and, when the caller asked for it, `*why = msg`.
inline void fail(error_code& ec, std::string* why, error e, std::string msg)
{
    ec = make_error_code(e);
    if (why) *why = std::move(msg);
}

/// "'x'" for a printable ASCII character, "byte 0xNN" otherwise.
inline std::string describe_char(char c)
{
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
    static char const hex[] = "0123456789abcdef";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

/// Runs `f(ec, &why)` and throws `system_error(ec, why)` on failure: the throwing overload of
/// every parser that has an `(…, error_code&, std::string* why)` overload.
template <class F> auto throw_on_error(F&& f)
{
    error_code ec;
    std::string why;
    auto r = f(ec, &why);
    if (ec) throw_error(ec, why.empty() ? ec.message() : why);
    return r;
}

} // namespace ocistore::detail
