#include <ocistore/error.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <ostream>
#include <set>
#include <string>

using namespace ocistore;

TEST_CASE("error codes have a category, a message and a condition")
{
    error_code ec = error::digest_mismatch;
    CHECK(ec.category().name() == std::string("ocistore"));
    CHECK(ec.message() == "digest mismatch");
    CHECK(ec == condition::integrity);
    CHECK(ec != condition::transient);
    CHECK(ec == error::digest_mismatch);
    CHECK(ec.default_error_condition() == condition::integrity);
}

TEST_CASE("every error has a distinct non-empty message")
{
    std::set<std::string> seen;
    for (int v = static_cast<int>(error::invalid_reference); v <= static_cast<int>(error::cancelled); ++v) {
        error_code ec(v, error_category());
        auto m = ec.message();
        CHECK_MESSAGE(m != "unknown ocistore error", "value ", v);
        CHECK_MESSAGE(seen.insert(m).second, "duplicate message: ", m);
    }
    CHECK(error_code(9999, error_category()).message() == "unknown ocistore error");
}

TEST_CASE("conditions group errors")
{
    CHECK(error_code(error::invalid_reference) == condition::invalid_input);
    CHECK(error_code(error::unsupported_schema) == condition::invalid_input);
    CHECK(error_code(error::too_large) == condition::invalid_input);
    CHECK(error_code(error::unsafe_path) == condition::invalid_input);
    CHECK(error_code(error::size_mismatch) == condition::integrity);
    CHECK(error_code(error::diff_id_mismatch) == condition::integrity);
    CHECK(error_code(error::not_found) == condition::not_found);
    CHECK(error_code(error::no_matching_platform) == condition::not_found);
    CHECK(error_code(error::unauthorized) == condition::unauthorized);
    CHECK(error_code(error::denied) == condition::unauthorized);
    CHECK(error_code(error::rate_limited) == condition::transient);
    CHECK(error_code(error::server_error) == condition::transient);
    CHECK(error_code(error::timeout) == condition::transient);
    CHECK(error_code(error::io_error) == condition::storage);
    CHECK(error_code(error::build_failed) == condition::build);
    // In no group: the caller asked for it, or the peer is broken (retrying will not help).
    for (auto c : {condition::not_found, condition::integrity, condition::transient, condition::unauthorized,
                   condition::invalid_input, condition::storage, condition::build}) {
        CHECK(error_code(error::cancelled) != c);
        CHECK(error_code(error::protocol_error) != c);
    }
}

TEST_CASE("errno values map to conditions")
{
    CHECK(std::error_code(ENOSPC, std::generic_category()) == condition::storage);
    CHECK(std::error_code(EACCES, std::system_category()) == condition::storage);
    CHECK(std::error_code(ECONNRESET, std::system_category()) == condition::transient);
    CHECK(std::error_code(ETIMEDOUT, std::generic_category()) == condition::transient);
    CHECK(std::error_code(EINVAL, std::system_category()) != condition::storage);
    CHECK(std::error_code(EINVAL, std::system_category()) != condition::transient);
}

TEST_CASE("condition category")
{
    std::error_condition c = condition::transient;
    CHECK(c.category().name() == std::string("ocistore.condition"));
    CHECK(c.message() == "transient failure");
}

TEST_CASE("throw_error carries the code and the message")
{
    try {
        throw_error(error::not_found, "blob sha256:abc");
        FAIL("no throw");
    } catch (system_error const& e) {
        CHECK(e.code() == error::not_found);
        CHECK(std::string(e.what()).find("blob sha256:abc") != std::string::npos);
    }
}
