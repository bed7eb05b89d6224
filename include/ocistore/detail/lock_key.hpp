// Internal: the *StoreLock* key grammar, shared by every lock policy.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace ocistore::detail {

/// Longest valid lock key, in bytes.
inline constexpr std::size_t max_lock_key_size = 255;

inline bool is_lock_key_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
        c == '-';
}

/// `key` in double quotes for a message: at most 64 bytes, bytes outside printable ASCII as `\xNN`.
inline std::string quote_lock_key(std::string_view key)
{
    static char const hex[] = "0123456789abcdef";
    std::string out = "\"";
    std::size_t const shown = key.size() < 64 ? key.size() : 64;
    for (std::size_t i = 0; i < shown; ++i) {
        auto const u = static_cast<unsigned char>(key[i]);
        if (u >= 0x20 && u < 0x7f && u != '"' && u != '\\') {
            out.push_back(key[i]);
        } else {
            out += "\\x";
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        }
    }
    if (shown < key.size()) out += "...";
    out.push_back('"');
    return out;
}

/** Checks `key` against the *StoreLock* key grammar:
    `key ::= component ('/' component)*`, `component ::= [A-Za-z0-9._-]+` other than "." and
    "..", at most `max_lock_key_size` bytes in all. On violation sets `ec` to
    `error::invalid_argument`, writes the broken rule into `*why` when given, and returns false;
    otherwise clears `ec` and returns true. */
inline bool validate_lock_key(std::string_view key, error_code& ec, std::string* why = nullptr)
{
    ec.clear();
    auto reject = [&](std::string const& msg) {
        fail(ec, why, error::invalid_argument, "lock key " + quote_lock_key(key) + ": " + msg);
        return false;
    };
    if (key.empty()) return reject("key is empty");
    if (key.size() > max_lock_key_size)
        return reject("key is " + std::to_string(key.size()) + " bytes, more than the limit of " +
                      std::to_string(max_lock_key_size));
    std::size_t start = 0;
    for (std::size_t i = 0; i <= key.size(); ++i) {
        if (i == key.size() || key[i] == '/') {
            std::string_view const component = key.substr(start, i - start);
            if (component.empty()) {
                if (i == 0) return reject("key starts with '/' (keys are relative)");
                if (i == key.size()) return reject("key ends with '/'");
                return reject("empty component at position " + std::to_string(i) + " (\"//\")");
            }
            if (component == "." || component == "..")
                return reject("component \"" + std::string(component) + "\" at position " + std::to_string(start) +
                              " is not allowed");
            start = i + 1;
        } else if (!is_lock_key_char(key[i])) {
            return reject(describe_char(key[i]) + " at position " + std::to_string(i) +
                          " is not allowed (only [A-Za-z0-9._-] and '/' between components)");
        }
    }
    return true;
}

} // namespace ocistore::detail
