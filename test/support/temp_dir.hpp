// Test support: a unique temporary directory, removed recursively on destruction.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace ocistore_test {

class temp_dir {
public:
    explicit temp_dir(std::string const& prefix = "ocistore-test")
    {
        auto base = std::filesystem::temp_directory_path();
        std::string tmpl = (base / (prefix + "-XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::filesystem::path const& path() const noexcept { return path_; }
    std::filesystem::path operator/(std::filesystem::path const& p) const { return path_ / p; }

private:
    std::filesystem::path path_;
};

} // namespace ocistore_test
