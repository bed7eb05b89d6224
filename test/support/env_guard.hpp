// Test support: environment variables set (or unset) for the lifetime of a guard.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ocistore_test {

/// Sets (or, for nullptr, unsets) environment variables for its lifetime.
class env_guard {
public:
    env_guard(std::initializer_list<std::pair<char const*, char const*>> vars)
    {
        for (auto const& [name, value] : vars) {
            char const* old = std::getenv(name);
            saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
            if (value) ::setenv(name, value, 1);
            else ::unsetenv(name);
        }
    }
    env_guard(env_guard const&) = delete;
    env_guard& operator=(env_guard const&) = delete;
    ~env_guard()
    {
        for (auto const& [name, value] : saved_) {
            if (value) ::setenv(name.c_str(), value->c_str(), 1);
            else ::unsetenv(name.c_str());
        }
    }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

} // namespace ocistore_test
