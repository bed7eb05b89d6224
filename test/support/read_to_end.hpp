// Test support: read any *ByteSource* to its end (or its first error) into a string.
#pragma once

#include <ocistore/concepts.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace ocistore_test {

/// Reads `r` with buffers of `chunk` bytes until it ends or fails (then `ec` is set).
template <ocistore::byte_source S>
std::string read_to_end(S& r, ocistore::error_code& ec, std::size_t chunk)
{
    std::string out;
    std::vector<std::byte> buf(chunk);
    for (;;) {
        std::size_t const n = r.read_some(std::span(buf), ec);
        if (ec || n == 0) return out;
        out.append(reinterpret_cast<char const*>(buf.data()), n);
    }
}

} // namespace ocistore_test
