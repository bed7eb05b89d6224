#include <ocistore/store_types.hpp>

#include <support/env_guard.hpp>

#include <doctest/doctest.h>

using namespace ocistore;
using ocistore_test::env_guard;

TEST_CASE("default_store_root: OCISTORE_ROOT, then XDG_CACHE_HOME/ocistore, then HOME/.cache/ocistore")
{
    {
        env_guard env{{"OCISTORE_ROOT", "/srv/cache"}, {"XDG_CACHE_HOME", "/xdg"}, {"HOME", "/home/u"}};
        CHECK(default_store_root() == "/srv/cache");
    }
    {
        env_guard env{{"OCISTORE_ROOT", ""}, {"XDG_CACHE_HOME", "/xdg"}, {"HOME", "/home/u"}};
        CHECK(default_store_root() == "/xdg/ocistore");
    }
    {
        env_guard env{{"OCISTORE_ROOT", nullptr}, {"XDG_CACHE_HOME", nullptr}, {"HOME", "/home/u"}};
        CHECK(default_store_root() == "/home/u/.cache/ocistore");
    }
    {
        env_guard env{{"OCISTORE_ROOT", nullptr}, {"XDG_CACHE_HOME", ""}, {"HOME", nullptr}};
        error_code ec;
        CHECK(default_store_root(ec).empty());
        CHECK(ec == error::not_found);
        CHECK_THROWS_WITH_AS(default_store_root(), doctest::Contains("OCISTORE_ROOT"), system_error);
    }
}

TEST_CASE("progress kinds have their names")
{
    CHECK(to_string(progress_kind::resolving) == "resolving");
    CHECK(to_string(progress_kind::download_progress) == "download_progress");
    CHECK(to_string(progress_kind::compose_complete) == "compose_complete");
    CHECK(to_string(progress_kind::retry) == "retry");
}
