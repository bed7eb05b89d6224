// Test support for http_transport tests: loopback options, reading readers, skipping when the
// registry is missing.
#pragma once

#include <ocistore/transport/http_transport.hpp>

#include <support/read_to_end.hpp>
#include <support/registry_fixture.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

namespace ocistore_test {

/// Options for loopback tests: nothing read from the environment or a Docker config, short
/// timeouts, fast retries; plain HTTP for `insecure`.
inline ocistore::http_options loopback_options(std::vector<std::string> insecure)
{
    using namespace std::chrono_literals;
    ocistore::http_options o;
    o.insecure_hosts = std::move(insecure);
    o.credentials = ocistore::credential_store{};
    o.proxy = ocistore::proxy_config{};
    o.attempt_timeout = 10s;
    o.overall_timeout = 30s;
    o.retry.base_backoff = 10ms;
    o.retry.max_backoff = 50ms;
    return o;
}

/// Reads a blob reader to its end, or to its first error, with buffers of `chunk` bytes.
inline std::string drain(ocistore::http_transport::blob_reader& r, ocistore::error_code& ec,
                         std::size_t chunk = 64 * 1024)
{
    return read_to_end(r, ec, chunk);
}

} // namespace ocistore_test

/// Skips the rest of a test case, visibly, when docker-registry or openssl is missing.
#define OCISTORE_REQUIRE_REGISTRY()                                                                          \
    if (!ocistore_test::registry_fixture::available() || !ocistore_test::have_program("openssl")) {          \
        WARN_MESSAGE(false, "docker-registry or openssl is not installed: skipped");                         \
        return;                                                                                              \
    }
