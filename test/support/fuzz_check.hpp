// Test support for the fuzz targets (test/fuzz/): invariant checks that abort, so that libFuzzer
// and the corpus replay both report a broken invariant as a crash, plus small helpers.
#pragma once

#include <ocistore/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ocistore_test::fuzz {

/// Prints where and why an invariant broke, then aborts.
[[noreturn]] inline void invariant_failed(char const* file, int line, char const* expr, std::string const& detail)
{
    std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, expr);
    if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
    std::fflush(stderr);
    std::abort();
}

/// `"text"` with bytes outside printable ASCII as \xNN, cut after 300 bytes; for messages.
inline std::string printable(std::string_view text)
{
    static char const hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < 300; ++i) {
        auto const u = static_cast<unsigned char>(text[i]);
        if (u >= 0x20 && u < 0x7f && u != '\\' && u != '"') {
            out += static_cast<char>(u);
        } else {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    if (text.size() > 300) out += "...";
    return out + "\"";
}

/// "ocistore:12 (message)" style description of `ec`.
inline std::string describe(ocistore::error_code const& ec)
{
    return std::string(ec.category().name()) + ":" + std::to_string(ec.value()) + " (" + ec.message() + ")";
}

/// 64-bit FNV-1a of `bytes`, continuing from `h`.
inline std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = 14695981039346656037ull) noexcept
{
    for (char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

/// The input of LLVMFuzzerTestOneInput as a string_view; never with a null data() (an empty
/// input may come as a null pointer, and memcpy from one is undefined even for 0 bytes).
inline std::string_view as_text(std::uint8_t const* data, std::size_t size) noexcept
{
    return size == 0 ? std::string_view("", 0) : std::string_view(reinterpret_cast<char const*>(data), size);
}

} // namespace ocistore_test::fuzz

/// Aborts with `detail` (a std::string expression, evaluated only on failure) unless `cond` holds.
#define OCISTORE_FUZZ_CHECK(cond, detail)                                                                   \
    do {                                                                                                    \
        if (!(cond)) ::ocistore_test::fuzz::invariant_failed(__FILE__, __LINE__, #cond, std::string(detail)); \
    } while (0)
