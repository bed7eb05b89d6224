// Non-template bodies for ocistore/erofs/vmdk.hpp.
#pragma once

#include <ocistore/erofs/vmdk.hpp>
#include <ocistore/detail/diagnostic.hpp>
#include <ocistore/erofs/erofs_format.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace ocistore {
namespace detail::vmdk_impl {

inline constexpr std::uint64_t sector_size = 512;
inline constexpr std::uint64_t geometry_sectors = 63;

inline std::string hex32(std::uint32_t v)
{
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return buf;
}

/// "extent 2 (\"path\")", the path cut after 200 bytes, for messages.
inline std::string describe(std::size_t index, std::string_view path)
{
    std::string shown;
    for (char c : path.substr(0, 200)) {
        auto const u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
            static char const hex[] = "0123456789abcdef";
            shown += "\\x";
            shown += hex[u >> 4];
            shown += hex[u & 15];
        } else {
            shown += c;
        }
    }
    if (path.size() > 200) shown += "...";
    return "extent " + std::to_string(index) + " (\"" + shown + "\")";
}

/// Parses a decimal number without sign or overflow; false otherwise.
inline bool parse_u64(std::string_view s, std::uint64_t& out) noexcept
{
    if (s.empty() || s.size() > 20) return false;
    out = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        auto const d = static_cast<std::uint64_t>(c - '0');
        if (out > (UINT64_MAX - d) / 10) return false;
        out = out * 10 + d;
    }
    return true;
}

/// Splits off the next space-separated word of `rest`.
inline std::string_view next_word(std::string_view& rest) noexcept
{
    auto const end = rest.find(' ');
    std::string_view const w = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    return w;
}

} // namespace detail::vmdk_impl

OCISTORE_DECL std::vector<vmdk_extent> parse_vmdk_extents(std::string_view text, error_code& ec, std::string* why)
{
    namespace vi = detail::vmdk_impl;
    ec.clear();
    std::vector<vmdk_extent> out;
    std::uint64_t last_end = 0; // sectors of out.back() covered so far
    std::string_view const magic = "# Disk DescriptorFile";
    if (text.substr(0, magic.size()) != magic || (text.size() > magic.size() && text[magic.size()] != '\n' &&
                                                  text[magic.size()] != '\r'))
        return detail::fail(ec, why, error::invalid_argument,
                            "parse_vmdk_extents: the text does not start with \"# Disk DescriptorFile\""),
               out;
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        auto const nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::string_view rest = line;
        std::string_view const access = vi::next_word(rest);
        if (access != "RW" && access != "RDONLY" && access != "NOACCESS") continue;
        auto bad = [&](std::string const& what) {
            detail::fail(ec, why, error::invalid_argument,
                         "parse_vmdk_extents: line " + std::to_string(line_no) + ": " + what);
            return std::vector<vmdk_extent>();
        };
        std::uint64_t sectors = 0, offset = 0;
        if (!vi::parse_u64(vi::next_word(rest), sectors) || sectors == 0)
            return bad("the sector count is not a positive decimal number");
        std::string_view const type = vi::next_word(rest);
        if (type != "FLAT") return bad("extent type \"" + std::string(type.substr(0, 40)) + "\" is not FLAT");
        if (rest.size() < 2 || rest.front() != '"') return bad("the file name is not quoted");
        auto const close = rest.find('"', 1);
        if (close == std::string_view::npos || close == 1) return bad("the file name is empty or has no closing quote");
        std::string_view const path = rest.substr(1, close - 1);
        rest.remove_prefix(close + 1);
        if (rest.empty() || rest.front() != ' ' || !vi::parse_u64(rest.substr(1), offset))
            return bad("the offset after the file name is not a decimal number");
        if (sectors > UINT64_MAX / vi::sector_size || offset > UINT64_MAX / vi::sector_size - sectors)
            return bad("the extent is too large");
        if (!out.empty() && out.back().path == path && offset == last_end) {
            if (out.back().size > UINT64_MAX - sectors * vi::sector_size) return bad("the extent is too large");
            out.back().size += sectors * vi::sector_size;
            last_end += sectors;
            continue;
        }
        if (offset != 0)
            return bad("\"" + std::string(path.substr(0, 200)) + "\" starts at sector " + std::to_string(offset) +
                       ", not 0 nor where the previous line of that file ended");
        out.push_back(vmdk_extent{std::string(path), sectors * vi::sector_size});
        last_end = sectors;
    }
    if (out.empty())
        return detail::fail(ec, why, error::invalid_argument, "parse_vmdk_extents: the descriptor has no extent"),
               out;
    return out;
}

OCISTORE_DECL std::vector<vmdk_extent> parse_vmdk_extents(std::string_view text)
{
    return detail::throw_on_error([&](error_code& ec, std::string* why) { return parse_vmdk_extents(text, ec, why); });
}

OCISTORE_DECL std::string_view to_string(vmdk_adapter a) noexcept
{
    switch (a) {
    case vmdk_adapter::ide: return "ide";
    case vmdk_adapter::lsilogic: return "lsilogic";
    case vmdk_adapter::buslogic: return "buslogic";
    case vmdk_adapter::legacy_esx: return "legacyESX";
    }
    return "ide";
}

OCISTORE_DECL std::string vmdk_descriptor(std::span<vmdk_extent const> extents, vmdk_options const& options,
                                          error_code& ec, std::string* why)
{
    namespace vi = detail::vmdk_impl;
    ec.clear();
    if (extents.empty())
        return detail::fail(ec, why, error::invalid_argument, "vmdk_descriptor: a disk needs at least one extent"),
               std::string();
    std::string lines;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < extents.size(); ++i) {
        auto const& e = extents[i];
        if (e.path.empty())
            return detail::fail(ec, why, error::invalid_argument,
                                "vmdk_descriptor: extent " + std::to_string(i) + " has an empty path"),
                   std::string();
        auto const bad = e.path.find_first_of(std::string_view("\"\r\n\0", 4));
        if (bad != std::string::npos)
            return detail::fail(ec, why, error::invalid_argument,
                                "vmdk_descriptor: " + vi::describe(i, e.path) + " has " +
                                    detail::describe_char(e.path[bad]) + " at position " + std::to_string(bad) +
                                    ", which a descriptor cannot quote"),
                   std::string();
        if (e.size == 0 || e.size % vi::sector_size != 0)
            return detail::fail(ec, why, error::invalid_argument,
                                "vmdk_descriptor: " + vi::describe(i, e.path) + " has size " +
                                    std::to_string(e.size) + ", not a positive multiple of 512 bytes"),
                   std::string();
        std::uint64_t const sectors = e.size / vi::sector_size;
        for (std::uint64_t offset = 0; offset < sectors; offset += vmdk_max_extent_sectors) {
            std::uint64_t const n = std::min(vmdk_max_extent_sectors, sectors - offset);
            lines += "RW " + std::to_string(n) + " FLAT \"" + e.path + "\" " + std::to_string(offset) + "\n";
        }
        total += sectors;
    }
    std::uint32_t cid = 0;
    if (options.cid) {
        cid = *options.cid;
    } else {
        cid = ~erofs::crc32c(0xFFFFFFFFu, std::as_bytes(std::span(lines.data(), lines.size())));
        if (cid == 0xFFFFFFFFu) cid = 0xFFFFFFFEu;
    }
    std::uint64_t const heads = options.adapter == vmdk_adapter::ide ? 16 : 255;
    std::uint64_t const cylinders = (total + heads * vi::geometry_sectors - 1) / (heads * vi::geometry_sectors);

    std::string out;
    out.reserve(lines.size() + 400);
    out += "# Disk DescriptorFile\n";
    out += "version=1\n";
    out += "CID=" + vi::hex32(cid) + "\n";
    out += "parentCID=ffffffff\n";
    out += "createType=\"twoGbMaxExtentFlat\"\n";
    out += "\n";
    out += "# Extent description\n";
    out += lines;
    out += "\n";
    out += "# The Disk Data Base\n";
    out += "#DDB\n";
    out += "ddb.virtualHWVersion = \"" + std::to_string(options.virtual_hw_version) + "\"\n";
    out += "ddb.geometry.cylinders = \"" + std::to_string(cylinders) + "\"\n";
    out += "ddb.geometry.heads = \"" + std::to_string(heads) + "\"\n";
    out += "ddb.geometry.sectors = \"" + std::to_string(vi::geometry_sectors) + "\"\n";
    out += "ddb.adapterType = \"" + std::string(to_string(options.adapter)) + "\"\n";
    return out;
}

OCISTORE_DECL std::string vmdk_descriptor(std::span<vmdk_extent const> extents, vmdk_options const& options)
{
    return detail::throw_on_error(
        [&](error_code& ec, std::string* why) { return vmdk_descriptor(extents, options, ec, why); });
}

} // namespace ocistore
