// Shared by the tar fuzz targets: the reader limits that keep hostile sizes from exhausting the
// fuzzer's memory or time, and the invariants every entry a tar reader returns must satisfy.
#pragma once

#include <ocistore/error.hpp>
#include <ocistore/tar_entry.hpp>

#include <support/fuzz_check.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace ocistore_fuzz {

/// Small enough that no input can make the reader allocate or produce more than a few MiB.
inline ocistore::tar_limits fuzz_limits()
{
    ocistore::tar_limits l;
    l.max_path_length = 4096;
    l.max_path_depth = 128;
    l.max_entries = 4096;
    l.max_entry_size = 1u << 20;
    l.max_total_size = 4u << 20;
    l.max_pax_header_size = 64u << 10;
    l.max_global_pax_size = 8u << 10;
    l.max_sparse_extents = 4096;
    return l;
}

/** `bytes` with the checksum of every header block rewritten where it is wrong, walking the
    archive by the headers' size fields (octal or base-256; the walk stops at anything else),
    so that mutated headers reach the code behind the checksum check. A well-formed archive
    comes back unchanged. */
inline std::string with_fixed_checksums(std::string_view bytes)
{
    std::string out(bytes);
    std::size_t off = 0;
    while (off + 512 <= out.size()) {
        auto* h = reinterpret_cast<unsigned char*>(out.data() + off);
        bool zero = true;
        for (std::size_t i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
        if (zero) {
            off += 512;
            continue;
        }
        std::uint64_t unsigned_sum = 0;
        std::int64_t signed_sum = 0;
        for (std::size_t i = 0; i < 512; ++i) {
            unsigned char const c = i >= 148 && i < 156 ? ' ' : h[i];
            unsigned_sum += c;
            signed_sum += static_cast<signed char>(c);
        }
        // The reader's octal rule: spaces and NULs, digits, then spaces and NULs only.
        std::uint64_t stored = 0;
        std::size_t k = 148;
        while (k < 156 && (h[k] == ' ' || h[k] == 0)) ++k;
        bool stored_ok = k < 156 && h[k] >= '0' && h[k] <= '7';
        for (; k < 156 && h[k] >= '0' && h[k] <= '7'; ++k) stored = stored * 8 + (h[k] - '0');
        for (; k < 156; ++k) stored_ok = stored_ok && (h[k] == ' ' || h[k] == 0);
        if (!stored_ok || (stored != unsigned_sum && static_cast<std::int64_t>(stored) != signed_sum)) {
            char field[9];
            std::snprintf(field, sizeof field, "%06o", static_cast<unsigned>(unsigned_sum & 0777777));
            std::memcpy(h + 148, field, 6);
            h[154] = 0;
            h[155] = ' ';
        }
        std::uint64_t size = 0;
        if (h[124] & 0x80) {
            for (std::size_t i = 125; i < 136 && size < (std::uint64_t(1) << 40); ++i) size = size << 8 | h[i];
        } else {
            for (std::size_t i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; ++i) size = size * 8 + (h[i] - '0');
        }
        if (size > out.size()) break;
        off += 512 + (size + 511) / 512 * 512;
    }
    return out;
}

/// Whether `ec` is one of the codes a tar reader over an in-memory source may report.
inline bool is_tar_failure(ocistore::error_code const& ec)
{
    using ocistore::error;
    return ec == error::invalid_archive || ec == error::truncated || ec == error::limit_exceeded ||
           ec == error::unsafe_path || ec == error::unsupported_entry;
}

/// Whether `p` is a normalised archive path: ".", or relative components without ".", ".." or empty ones.
inline bool is_normalised_path(std::string_view p)
{
    if (p == ".") return true;
    if (p.empty()) return false;
    std::size_t pos = 0;
    while (pos <= p.size()) {
        std::size_t slash = p.find('/', pos);
        if (slash == std::string_view::npos) slash = p.size();
        std::string_view const c = p.substr(pos, slash - pos);
        if (c.empty() || c == "." || c == "..") return false;
        pos = slash + 1;
    }
    return true;
}

/// Checks what docs/tar.md promises of every entry, `limits` included.
inline void check_entry(ocistore::tar_entry const& e, ocistore::tar_limits const& limits)
{
    using ocistore::entry_type;
    using ocistore_test::fuzz::printable;
    std::string const what = "entry " + printable(e.path) + " (" + std::string(to_string(e.type)) + ")";
    OCISTORE_FUZZ_CHECK(is_normalised_path(e.path), what + ": path not normalised");
    std::size_t depth = 1;
    for (char c : e.path) depth += c == '/';
    OCISTORE_FUZZ_CHECK(depth <= limits.max_path_depth, what + ": deeper than the limit");
    OCISTORE_FUZZ_CHECK((e.mode & ~07777u) == 0, what + ": mode " + std::to_string(e.mode));
    OCISTORE_FUZZ_CHECK(e.mtime_nsec < 1'000'000'000u, what + ": mtime_nsec " + std::to_string(e.mtime_nsec));
    OCISTORE_FUZZ_CHECK(e.type == entry_type::regular || e.size == 0, what + ": non-zero size");
    OCISTORE_FUZZ_CHECK(e.size <= limits.max_entry_size, what + ": size over the limit");
    OCISTORE_FUZZ_CHECK(e.type == entry_type::char_device || e.type == entry_type::block_device ||
                            (e.devmajor == 0 && e.devminor == 0),
                        what + ": device numbers");
    if (e.type == entry_type::hardlink)
        OCISTORE_FUZZ_CHECK(is_normalised_path(e.link_target), what + ": hardlink target " + printable(e.link_target));
    else if (e.type == entry_type::symlink)
        OCISTORE_FUZZ_CHECK(e.link_target.size() <= limits.max_path_length, what + ": symlink target too long");
    else
        OCISTORE_FUZZ_CHECK(e.link_target.empty(), what + ": link target " + printable(e.link_target));
    OCISTORE_FUZZ_CHECK(e.sparse || e.sparse_map.empty(), what + ": sparse map on a non-sparse entry");
    if (e.sparse) {
        OCISTORE_FUZZ_CHECK(e.type == entry_type::regular, what + ": sparse but not regular");
        std::uint64_t end = 0;
        for (auto const& x : e.sparse_map) {
            OCISTORE_FUZZ_CHECK(x.offset >= end && x.length <= e.size && x.offset <= e.size - x.length,
                                what + ": sparse extents out of order or beyond the size");
            end = x.offset + x.length;
        }
    }
    for (std::size_t i = 0; i < e.xattrs.size(); ++i) {
        OCISTORE_FUZZ_CHECK(!e.xattrs[i].name.empty(), what + ": xattr without a name");
        for (std::size_t j = 0; j < i; ++j)
            OCISTORE_FUZZ_CHECK(e.xattrs[j].name != e.xattrs[i].name, what + ": xattr " + printable(e.xattrs[i].name) +
                                                                           " repeated");
    }
}

} // namespace ocistore_fuzz
