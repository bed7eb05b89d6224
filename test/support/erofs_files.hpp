// Test support: reads files out of EROFS images through ocistore::erofs_image_reader: path
// lookup from the root, and whole-file reads of a composed image (an fsmeta whose chunks point
// into layer images, device id i = layer i - 1).
#pragma once

#include <ocistore/erofs/image_reader.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace ocistore_test {

/// The inode at `path` ("" = the root, else "a/b"), following no symlink; empty when absent.
inline std::optional<ocistore::erofs_inode_info> erofs_lookup(ocistore::erofs_image_reader const& r,
                                                              std::string_view path)
{
    auto node = r.inode(r.info().root_nid);
    while (!path.empty()) {
        auto const slash = path.find('/');
        std::string_view const name = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
        if (!node.is_dir()) return std::nullopt;
        bool found = false;
        for (auto const& d : r.read_dir(node)) {
            if (d.name == name) {
                node = r.inode(d.nid);
                found = true;
                break;
            }
        }
        if (!found) return std::nullopt;
    }
    return node;
}

/// All of regular file `file` of `r`; `devices[i]` is device id i (see erofs_image_reader::read).
inline std::string erofs_content(ocistore::erofs_image_reader const& r, ocistore::erofs_inode_info const& file,
                                 std::vector<int> const& devices = {})
{
    std::string out(static_cast<std::size_t>(file.size), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        std::size_t const n = r.read(file, done, std::as_writable_bytes(std::span(out.data() + done, out.size() - done)),
                                     std::span<int const>(devices));
        if (n == 0) throw std::runtime_error("erofs_content: short read");
        done += n;
    }
    return out;
}

/** The content of regular file `path` of the image composed of `fsmeta` over `layers`
    (bottom first); empty when it is absent or not a regular file. */
inline std::optional<std::string> erofs_read_file(std::filesystem::path const& fsmeta,
                                                  std::vector<std::filesystem::path> const& layers,
                                                  std::string const& path)
{
    auto r = ocistore::erofs_image_reader::open(fsmeta);
    auto node = erofs_lookup(r, path);
    if (!node || !node->is_regular()) return std::nullopt;
    std::vector<int> devices{-1};
    struct closer {
        std::vector<int>& fds;
        ~closer()
        {
            for (int fd : fds)
                if (fd >= 0) ::close(fd);
        }
    } guard{devices};
    for (auto const& l : layers) {
        int const fd = ::open(l.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("erofs_read_file: cannot open " + l.string());
        devices.push_back(fd);
    }
    return erofs_content(r, *node, devices);
}

} // namespace ocistore_test
