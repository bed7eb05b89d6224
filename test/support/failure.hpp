// Test support: what a failed parse reports, and small helpers for hostile-input tables.
#pragma once

#include <ocistore/error.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace ocistore_test {

/// The error code and the human-readable reason of a failed `(…, error_code&, std::string*)` call.
struct failure {
    ocistore::error_code ec;
    std::string why;
};

/// `doc` with the first occurrence of `from` (which must occur) replaced by `to`.
inline std::string edited(std::string doc, std::string_view from, std::string_view to)
{
    auto const pos = doc.find(from);
    REQUIRE(pos != std::string::npos);
    doc.replace(pos, from.size(), to);
    return doc;
}

} // namespace ocistore_test
