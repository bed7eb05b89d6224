// Non-template bodies for ocistore/tar_reader.hpp: header decoding, pax records, path rules.
#pragma once

#include <ocistore/tar_reader.hpp>
#include <ocistore/detail/diagnostic.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <unordered_map>

namespace ocistore {
namespace detail::tar_impl {

using detail::tar::block_size;

inline std::string offset_str(std::uint64_t off) { return std::to_string(off); }

inline std::string octal_str(std::uint64_t v)
{
    std::string s;
    do {
        s.insert(s.begin(), static_cast<char>('0' + (v & 7)));
        v >>= 3;
    } while (v);
    return "0o" + s;
}

/// A NUL-terminated (or full-width) header string field.
inline std::string field_string(std::byte const* p, std::size_t n)
{
    auto const* c = reinterpret_cast<char const*>(p);
    std::size_t len = 0;
    while (len < n && c[len] != '\0') ++len;
    return std::string(c, len);
}

/// Octal digits, optionally surrounded by spaces and NULs; an empty field is 0.
inline bool parse_octal(std::byte const* f, std::size_t len, char const* field, std::uint64_t off, std::uint64_t& v,
                        error_code& ec, std::string* why)
{
    auto const* c = reinterpret_cast<char const*>(f);
    std::size_t i = 0;
    while (i < len && (c[i] == ' ' || c[i] == '\0')) ++i;
    v = 0;
    for (; i < len && c[i] >= '0' && c[i] <= '7'; ++i) v = v << 3 | static_cast<unsigned>(c[i] - '0');
    for (; i < len; ++i)
        if (c[i] != ' ' && c[i] != '\0')
            return fail(ec, why, error::invalid_archive,
                        "header at offset " + offset_str(off) + ": " + describe_char(c[i]) + " at byte " +
                            std::to_string(i) + " of the " + field + " field is not an octal digit"),
                   false;
    return true;
}

/// Octal or GNU base-256 (first byte's high bit set; two's complement, so negative values occur).
inline bool parse_number(std::byte const* f, std::size_t len, char const* field, std::uint64_t off, std::int64_t& v,
                         error_code& ec, std::string* why)
{
    unsigned const b0 = std::to_integer<unsigned>(f[0]);
    if (b0 & 0x80) {
        unsigned const inv = (b0 & 0x40) ? 0xffu : 0u;
        std::uint64_t x = 0;
        for (std::size_t i = 0; i < len; ++i) {
            unsigned c = (std::to_integer<unsigned>(f[i]) ^ inv) & 0xffu;
            if (i == 0) c &= 0x7fu;
            if (x >> 56)
                return fail(ec, why, error::invalid_archive,
                            "header at offset " + offset_str(off) + ": base-256 " + field + " overflows 64 bits"),
                       false;
            x = x << 8 | c;
        }
        if (x >> 63)
            return fail(ec, why, error::invalid_archive,
                        "header at offset " + offset_str(off) + ": base-256 " + field + " overflows 64 bits"),
                   false;
        v = inv ? -static_cast<std::int64_t>(x) - 1 : static_cast<std::int64_t>(x);
        return true;
    }
    std::uint64_t u = 0;
    if (!parse_octal(f, len, field, off, u, ec, why)) return false;
    v = static_cast<std::int64_t>(u); // at most 12 digits: 36 bits
    return true;
}

inline bool parse_unsigned_field(std::byte const* f, std::size_t len, char const* field, std::uint64_t off,
                                 std::uint64_t& v, error_code& ec, std::string* why)
{
    std::int64_t s = 0;
    if (!parse_number(f, len, field, off, s, ec, why)) return false;
    if (s < 0)
        return fail(ec, why, error::invalid_archive,
                    "header at offset " + offset_str(off) + ": " + field + " is negative (" + std::to_string(s) + ")"),
               false;
    v = static_cast<std::uint64_t>(s);
    return true;
}

/// Non-empty decimal digits fitting 64 bits.
inline bool parse_decimal(std::string_view s, std::uint64_t& v) noexcept
{
    if (s.empty()) return false;
    v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        unsigned const d = static_cast<unsigned>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
        v = v * 10 + d;
    }
    return true;
}

/// "[-]digits[.digits]" seconds; fractional digits beyond nanoseconds are dropped.
inline bool parse_pax_time(std::string_view s, detail::tar::pax_time& t) noexcept
{
    bool const neg = !s.empty() && s.front() == '-';
    if (neg) s.remove_prefix(1);
    auto const dot = s.find('.');
    std::string_view ip = s.substr(0, dot), fp = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    std::uint64_t sec = 0;
    if (!parse_decimal(ip, sec) || sec > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return false;
    if (dot != std::string_view::npos && fp.empty()) return false;
    std::uint32_t nsec = 0;
    for (std::size_t i = 0; i < fp.size(); ++i) {
        if (fp[i] < '0' || fp[i] > '9') return false;
        if (i < 9) nsec = nsec * 10 + static_cast<std::uint32_t>(fp[i] - '0');
    }
    for (std::size_t i = fp.size(); i < 9; ++i) nsec *= 10;
    if (!neg) {
        t.sec = static_cast<std::int64_t>(sec);
        t.nsec = nsec;
    } else if (nsec == 0) {
        t.sec = -static_cast<std::int64_t>(sec);
        t.nsec = 0;
    } else {
        t.sec = -static_cast<std::int64_t>(sec) - 1;
        t.nsec = 1'000'000'000u - nsec;
    }
    return true;
}

inline int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// libarchive's %XX escapes in xattr names.
inline bool percent_decode(std::string_view s, std::string& out)
{
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return false;
        int const hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
    }
    return true;
}

inline int base64_value(char c) noexcept
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/// Standard base64, '=' padding optional (libarchive writes none).
inline bool base64_decode(std::string_view s, std::string& out)
{
    out.clear();
    while (!s.empty() && s.back() == '=') s.remove_suffix(1);
    if (s.size() % 4 == 1) return false;
    out.reserve(s.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        int const v = base64_value(c);
        if (v < 0) return false;
        acc = (acc << 6 | static_cast<std::uint32_t>(v)) & 0xffffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xffu));
        }
    }
    return true;
}

/// Sets xattrs of a list in place (a repeated name replaces the value, keeping the position);
/// indexed, so that n records cost O(n) even when an archive repeats or multiplies them.
class xattr_setter {
public:
    explicit xattr_setter(std::vector<tar_xattr>& xs) : xs_(xs)
    {
        for (std::size_t i = 0; i < xs_.size(); ++i) index_.emplace(xs_[i].name, i);
    }
    void set(std::string name, std::string value)
    {
        auto const [it, fresh] = index_.try_emplace(name, xs_.size());
        if (fresh) xs_.push_back({std::move(name), std::move(value)});
        else xs_[it->second].value = std::move(value);
    }

private:
    std::vector<tar_xattr>& xs_;
    std::unordered_map<std::string, std::size_t> index_;
};

inline std::size_t state_bytes(detail::tar::pax_state const& st) noexcept
{
    std::size_t n = st.path.value.size() + st.linkpath.value.size() + st.uname.value.size() +
                    st.gname.value.size() + 64;
    for (auto const& x : st.xattrs) n += x.name.size() + x.value.size() + 16;
    return n;
}

template <class T>
T const* pick(detail::tar::pax_value<T> const& local, detail::tar::pax_value<T> const& global) noexcept
{
    using pv = detail::tar::pax_value<T>;
    if (local.state == pv::set) return &local.value;
    if (local.state == pv::erased) return nullptr;
    if (global.state == pv::set) return &global.value;
    return nullptr;
}

inline char const* type_description(char t) noexcept
{
    switch (t) {
    case 'D': return "GNU dumpdir";
    case 'M': return "GNU multi-volume continuation";
    case 'N': return "GNU old long name";
    case 'S': return "GNU old sparse file";
    case 'X': return "Solaris extended header";
    case 'A': return "Solaris ACL";
    case 'E': return "Solaris extended attribute";
    case 'I': return "inode metadata";
    default: return "unknown";
    }
}

} // namespace detail::tar_impl

namespace detail::tar {

OCISTORE_DECL std::string quote(std::string_view text)
{
    static char const hex[] = "0123456789abcdef";
    std::string out = "\"";
    std::size_t const shown = text.size() > 200 ? 200 : text.size();
    for (std::size_t i = 0; i < shown; ++i) {
        auto const u = static_cast<unsigned char>(text[i]);
        if (u == '"' || u == '\\') {
            out.push_back('\\');
            out.push_back(text[i]);
        } else if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 15]);
        } else {
            out.push_back(text[i]);
        }
    }
    out.push_back('"');
    if (shown < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
    return out;
}

OCISTORE_DECL bool is_zero_block(std::byte const* block) noexcept
{
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < block_size; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, block + i, 8);
        acc |= w;
    }
    return acc == 0;
}

OCISTORE_DECL void parse_header(std::byte const* block, std::uint64_t offset, header& out, error_code& ec,
                                std::string* why)
{
    using namespace detail::tar_impl;
    ec.clear();
    auto where = [&] { return "header at offset " + offset_str(offset); };
    if (std::to_integer<unsigned>(block[148]) & 0x80)
        return fail(ec, why, error::invalid_archive, where() + ": checksum field is not octal");
    std::uint64_t stored = 0;
    if (!parse_octal(block + 148, 8, "checksum", offset, stored, ec, why)) return;
    std::uint64_t usum = 0;
    std::int64_t ssum = 0;
    for (std::size_t i = 0; i < block_size; ++i) {
        unsigned const b = (i >= 148 && i < 156) ? unsigned(' ') : std::to_integer<unsigned>(block[i]);
        usum += b;
        ssum += static_cast<signed char>(static_cast<unsigned char>(b));
    }
    if (stored != usum && static_cast<std::int64_t>(stored) != ssum)
        return fail(ec, why, error::invalid_archive,
                    where() + ": header checksum mismatch (stored " + octal_str(stored) + ", computed " +
                        octal_str(usum) + "); not a tar header, or corrupt");

    auto const* c = reinterpret_cast<char const*>(block);
    bool const ustar = std::memcmp(c + 257, "ustar\0", 6) == 0;
    bool const gnu = std::memcmp(c + 257, "ustar  \0", 8) == 0;
    out.typeflag = c[156];
    out.name = field_string(block, 100);
    if (ustar) {
        bool const star = std::memcmp(c + 508, "tar\0", 4) == 0;
        std::string const prefix = field_string(block + 345, star ? 131 : 155);
        if (!prefix.empty()) out.name = prefix + '/' + out.name;
    }
    out.linkname = field_string(block + 157, 100);
    std::int64_t v = 0;
    std::uint64_t u = 0;
    if (!parse_unsigned_field(block + 100, 8, "mode", offset, u, ec, why)) return;
    out.mode = static_cast<std::uint32_t>(u & 07777);
    if (!parse_unsigned_field(block + 108, 8, "uid", offset, out.uid, ec, why)) return;
    if (!parse_unsigned_field(block + 116, 8, "gid", offset, out.gid, ec, why)) return;
    if (!parse_unsigned_field(block + 124, 12, "size", offset, out.size, ec, why)) return;
    if (!parse_number(block + 136, 12, "mtime", offset, v, ec, why)) return;
    out.mtime = v;
    out.uname.clear();
    out.gname.clear();
    out.devmajor = out.devminor = 0;
    if (ustar || gnu) {
        out.uname = field_string(block + 265, 32);
        out.gname = field_string(block + 297, 32);
        if (out.typeflag == '3' || out.typeflag == '4') {
            if (!parse_unsigned_field(block + 329, 8, "devmajor", offset, u, ec, why)) return;
            if (u > 0xffffffffu)
                return fail(ec, why, error::invalid_archive, where() + ": devmajor " + std::to_string(u) + " is too large");
            out.devmajor = static_cast<std::uint32_t>(u);
            if (!parse_unsigned_field(block + 337, 8, "devminor", offset, u, ec, why)) return;
            if (u > 0xffffffffu)
                return fail(ec, why, error::invalid_archive, where() + ": devminor " + std::to_string(u) + " is too large");
            out.devminor = static_cast<std::uint32_t>(u);
        }
    }
}

OCISTORE_DECL void parse_pax(std::string_view data, bool global, std::uint64_t offset, tar_limits const& limits,
                             pax_state& st, error_code& ec, std::string* why)
{
    using namespace detail::tar_impl;
    ec.clear();
    std::string const where = std::string(global ? "pax global header" : "pax extended header") + " at offset " +
                              offset_str(offset);
    std::size_t pos = 0;
    std::string scratch, name;
    std::optional<xattr_setter> xattrs;
    auto set_xattr = [&](std::string n, std::string v) {
        if (!xattrs) xattrs.emplace(st.xattrs);
        xattrs->set(std::move(n), std::move(v));
    };
    while (pos < data.size()) {
        if (data[pos] == '\0') { // NUL padding after the last record
            for (std::size_t i = pos; i < data.size(); ++i)
                if (data[i] != '\0')
                    return fail(ec, why, error::invalid_archive,
                                where + ": NUL byte at position " + std::to_string(pos) + " inside the records");
            break;
        }
        std::size_t const start = pos;
        auto rec = [&] { return where + ", record at byte " + std::to_string(start); };
        std::size_t i = pos;
        std::uint64_t len = 0;
        while (i < data.size() && data[i] >= '0' && data[i] <= '9') {
            if (len > data.size()) // already longer than the whole header
                return fail(ec, why, error::invalid_archive, rec() + ": record length overflows");
            len = len * 10 + static_cast<unsigned>(data[i] - '0');
            ++i;
        }
        if (i == pos || i == data.size() || data[i] != ' ')
            return fail(ec, why, error::invalid_archive,
                        rec() + ": expected a decimal record length followed by a space" +
                            (i < data.size() ? ", found " + describe_char(data[i]) : ", found the end of the header"));
        if (len > data.size() - pos)
            return fail(ec, why, error::invalid_archive,
                        rec() + ": record length " + std::to_string(len) + " exceeds the " +
                            std::to_string(data.size() - pos) + " bytes left in the header");
        std::size_t const body = i + 1 - pos; // bytes of "len "
        if (len < body + 2)
            return fail(ec, why, error::invalid_archive,
                        rec() + ": record length " + std::to_string(len) + " is too short for a key=value record");
        std::string_view const r = data.substr(pos, static_cast<std::size_t>(len));
        if (r.back() != '\n')
            return fail(ec, why, error::invalid_archive,
                        rec() + ": record of length " + std::to_string(len) + " does not end with a newline");
        std::string_view const kv = r.substr(body, r.size() - body - 1);
        auto const eq = kv.find('=');
        if (eq == std::string_view::npos)
            return fail(ec, why, error::invalid_archive, rec() + ": record has no '=' between key and value");
        std::string_view const key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key.empty()) return fail(ec, why, error::invalid_archive, rec() + ": record has an empty key");
        if (key.find('\0') != std::string_view::npos)
            return fail(ec, why, error::invalid_archive, rec() + ": key contains a NUL byte");
        pos += static_cast<std::size_t>(len);

        auto bad_value = [&](char const* expected) {
            fail(ec, why, error::invalid_archive,
                 rec() + ": '" + std::string(key) + "' value " + quote(value) + " is not " + expected);
        };
        auto set_string = [&](pax_value<std::string>& f, bool no_nul) {
            if (value.empty()) return f.state = pax_value<std::string>::erased, f.value.clear(), true;
            if (no_nul && value.find('\0') != std::string_view::npos)
                return fail(ec, why, error::invalid_archive, rec() + ": '" + std::string(key) + "' contains a NUL byte"),
                       false;
            f.assign(std::string(value));
            return true;
        };
        auto set_number = [&](pax_value<std::uint64_t>& f) {
            if (value.empty()) return f.state = pax_value<std::uint64_t>::erased, true;
            std::uint64_t n = 0;
            if (!parse_decimal(value, n)) return bad_value("a decimal number that fits 64 bits"), false;
            f.assign(n);
            return true;
        };
        auto set_optional = [&](std::optional<std::uint64_t>& f) {
            if (value.empty()) return f.reset(), true;
            std::uint64_t n = 0;
            if (!parse_decimal(value, n)) return bad_value("a decimal number that fits 64 bits"), false;
            f = n;
            return true;
        };

        bool ok = true;
        if (key == "path") {
            // A NUL here is reported as an unsafe path when the entry is built.
            if (!global) ok = set_string(st.path, false);
        } else if (key == "linkpath") {
            if (!global) ok = set_string(st.linkpath, false);
        } else if (key == "size") {
            if (!global) ok = set_number(st.size);
        } else if (key == "uid") {
            ok = set_number(st.uid);
        } else if (key == "gid") {
            ok = set_number(st.gid);
        } else if (key == "uname") {
            ok = set_string(st.uname, true);
        } else if (key == "gname") {
            ok = set_string(st.gname, true);
        } else if (key == "mtime") {
            if (value.empty()) {
                st.mtime.state = pax_value<pax_time>::erased;
            } else {
                pax_time t;
                if (!parse_pax_time(value, t)) return bad_value("a decimal time such as 1700000000.123456789");
                st.mtime.assign(t);
            }
        } else if (key.starts_with("SCHILY.xattr.")) {
            std::string_view const n = key.substr(13);
            if (n.empty()) return fail(ec, why, error::invalid_archive, rec() + ": xattr record with an empty name");
            set_xattr(std::string(n), std::string(value));
        } else if (key.starts_with("LIBARCHIVE.xattr.")) {
            std::string_view const n = key.substr(17);
            if (!percent_decode(n, name))
                return fail(ec, why, error::invalid_archive,
                            rec() + ": xattr name " + quote(n) + " has a malformed %XX escape");
            if (name.empty()) return fail(ec, why, error::invalid_archive, rec() + ": xattr record with an empty name");
            if (!base64_decode(value, scratch)) return bad_value("base64");
            set_xattr(std::move(name), std::move(scratch));
            name.clear();
            scratch.clear();
        } else if (key.starts_with("GNU.sparse.")) {
            if (global) continue;
            std::string_view const k = key.substr(11);
            if (k == "major") ok = set_optional(st.sparse_major);
            else if (k == "minor") ok = set_optional(st.sparse_minor);
            else if (k == "realsize") ok = set_optional(st.sparse_realsize);
            else if (k == "name") {
                if (value.empty()) st.sparse_name.reset();
                else st.sparse_name = std::string(value);
            } else if (k == "size" || k == "numblocks" || k == "offset" || k == "numbytes" || k == "map") {
                st.sparse_old_key = std::string(key);
            }
        }
        if (!ok || ec) return;
    }
    if (global && state_bytes(st) > limits.max_global_pax_size)
        return fail(ec, why, error::limit_exceeded,
                    where + ": the accumulated global pax records take " + std::to_string(state_bytes(st)) +
                        " bytes; the limit is " + std::to_string(limits.max_global_pax_size));
}

OCISTORE_DECL std::string long_name_value(std::string_view data, char typeflag, std::uint64_t offset, error_code& ec,
                                          std::string* why)
{
    ec.clear();
    auto const nul = data.find('\0');
    if (nul == std::string_view::npos) return std::string(data);
    for (std::size_t i = nul; i < data.size(); ++i)
        if (data[i] != '\0')
            return fail(ec, why, error::unsafe_path,
                        std::string(typeflag == 'L' ? "GNU long name" : "GNU long link") + " record at offset " +
                            std::to_string(offset) + " contains a NUL byte at position " + std::to_string(nul) +
                            " followed by more text"),
                   std::string();
    return std::string(data.substr(0, nul));
}

OCISTORE_DECL std::string normalize_path(std::string_view raw, std::string_view what, tar_limits const& limits,
                                         error_code& ec, std::string* why)
{
    ec.clear();
    std::string const w(what);
    if (raw.size() > limits.max_path_length)
        return fail(ec, why, error::limit_exceeded,
                    w + " " + quote(raw) + " is " + std::to_string(raw.size()) + " bytes long; the limit is " +
                        std::to_string(limits.max_path_length)),
               std::string();
    if (raw.empty()) return fail(ec, why, error::unsafe_path, "empty " + w), std::string();
    if (auto const nul = raw.find('\0'); nul != std::string_view::npos)
        return fail(ec, why, error::unsafe_path,
                    w + " " + quote(raw) + " contains a NUL byte at position " + std::to_string(nul)),
               std::string();
    if (raw.front() == '/')
        return fail(ec, why, error::unsafe_path, w + " " + quote(raw) + " is absolute (starts with '/')"),
               std::string();
    std::string out;
    out.reserve(raw.size());
    std::size_t depth = 0;
    std::size_t i = 0;
    while (i < raw.size()) {
        std::size_t j = raw.find('/', i);
        if (j == std::string_view::npos) j = raw.size();
        std::string_view const comp = raw.substr(i, j - i);
        i = j + 1;
        if (comp.empty() || comp == ".") continue;
        if (comp == "..")
            return fail(ec, why, error::unsafe_path, w + " " + quote(raw) + " has a '..' component"), std::string();
        if (++depth > limits.max_path_depth)
            return fail(ec, why, error::limit_exceeded,
                        w + " " + quote(raw) + " has more than " + std::to_string(limits.max_path_depth) +
                            " components (the depth limit)"),
                   std::string();
        if (!out.empty()) out.push_back('/');
        out.append(comp);
    }
    if (out.empty()) out = ".";
    return out;
}

OCISTORE_DECL void make_entry(header const& h, std::uint64_t offset, pax_state const& local, pax_state const& global,
                              std::optional<std::string> const& long_name,
                              std::optional<std::string> const& long_link, tar_limits const& limits,
                              std::uint64_t& total_size, tar_entry& out, entry_layout& layout, error_code& ec,
                              std::string* why)
{
    using namespace detail::tar_impl;
    using ps = pax_value<std::string>;
    ec.clear();
    layout = entry_layout{};
    bool const sparse = local.sparse_major.has_value() || local.sparse_minor.has_value() ||
                        local.sparse_realsize.has_value() || !local.sparse_old_key.empty();

    // raw path: GNU.sparse.name > pax path > GNU long name > header
    std::string_view raw = h.name;
    if (long_name) raw = *long_name;
    if (local.path.state == ps::set) raw = local.path.value;
    if (sparse && local.sparse_name) raw = *local.sparse_name;
    std::string_view raw_link = h.linkname;
    if (long_link) raw_link = *long_link;
    if (local.linkpath.state == ps::set) raw_link = local.linkpath.value;

    auto where = [&] { return "entry " + quote(raw) + " at offset " + offset_str(offset); };
    entry_type type{};
    switch (h.typeflag) {
    case '0':
    case '\0':
        type = (!raw.empty() && raw.back() == '/') ? entry_type::directory : entry_type::regular;
        break;
    case '7': type = entry_type::regular; break;
    case '1': type = entry_type::hardlink; break;
    case '2': type = entry_type::symlink; break;
    case '3': type = entry_type::char_device; break;
    case '4': type = entry_type::block_device; break;
    case '5': type = entry_type::directory; break;
    case '6': type = entry_type::fifo; break;
    default:
        return fail(ec, why, error::unsupported_entry,
                    where() + " has type " + describe_char(h.typeflag) + " (" + type_description(h.typeflag) +
                        "), which is not supported");
    }

    std::string msg;
    out.path = normalize_path(raw, "path", limits, ec, &msg);
    if (ec) return fail(ec, why, static_cast<error>(ec.value()), where() + ": " + msg);
    if (out.path == "." && type != entry_type::directory)
        return fail(ec, why, error::unsafe_path,
                    where() + ": the archive root is a " + std::string(to_string(type)) + ", not a directory");
    out.type = type;
    out.mode = h.mode;
    auto const* uid = pick(local.uid, global.uid);
    auto const* gid = pick(local.gid, global.gid);
    auto const* uname = pick(local.uname, global.uname);
    auto const* gname = pick(local.gname, global.gname);
    auto const* mtime = pick(local.mtime, global.mtime);
    out.uid = uid ? *uid : h.uid;
    out.gid = gid ? *gid : h.gid;
    out.uname = uname ? *uname : h.uname;
    out.gname = gname ? *gname : h.gname;
    out.mtime = mtime ? mtime->sec : h.mtime;
    out.mtime_nsec = mtime ? mtime->nsec : 0;
    out.size = 0;
    out.link_target.clear();
    out.devmajor = out.devminor = 0;
    out.sparse = false;
    out.sparse_map.clear();
    if (local.xattrs.empty() || global.xattrs.empty()) {
        out.xattrs = local.xattrs.empty() ? global.xattrs : local.xattrs;
    } else {
        out.xattrs = global.xattrs;
        xattr_setter merge(out.xattrs);
        for (auto const& x : local.xattrs) merge.set(x.name, x.value);
    }

    std::uint64_t const stored = local.size.state == pax_value<std::uint64_t>::set ? local.size.value : h.size;
    if (stored > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return fail(ec, why, error::invalid_archive,
                    where() + ": size " + std::to_string(stored) + " is absurd (more than 2^63-1)");
    if (sparse && type != entry_type::regular)
        return fail(ec, why, error::invalid_archive,
                    where() + ": GNU sparse records on a " + std::string(to_string(type)) + " entry");
    auto no_data = [&] {
        if (stored != 0)
            return fail(ec, why, error::invalid_archive,
                        where() + ": a " + std::string(to_string(type)) + " entry declares " + std::to_string(stored) +
                            " bytes of data; entries of this type carry none"),
                   false;
        return true;
    };

    switch (type) {
    case entry_type::regular: {
        std::uint64_t logical = stored;
        if (sparse) {
            if (!local.sparse_old_key.empty())
                return fail(ec, why, error::unsupported_entry,
                            where() + ": GNU sparse format 0.x (pax record '" + local.sparse_old_key +
                                "') is not supported; only 1.0 is");
            if (!local.sparse_major || !local.sparse_minor || *local.sparse_major != 1 || *local.sparse_minor != 0)
                return fail(ec, why, error::unsupported_entry,
                            where() + ": GNU sparse format " +
                                (local.sparse_major ? std::to_string(*local.sparse_major) : std::string("?")) + "." +
                                (local.sparse_minor ? std::to_string(*local.sparse_minor) : std::string("?")) +
                                " is not supported; only 1.0 is");
            if (!local.sparse_realsize)
                return fail(ec, why, error::invalid_archive, where() + ": GNU sparse 1.0 entry without GNU.sparse.realsize");
            if (stored == 0)
                return fail(ec, why, error::invalid_archive, where() + ": GNU sparse 1.0 entry without a sparse map");
            logical = *local.sparse_realsize;
            out.sparse = true;
        }
        if (logical > limits.max_entry_size)
            return fail(ec, why, error::limit_exceeded,
                        where() + ": size " + std::to_string(logical) + " exceeds the per-entry limit of " +
                            std::to_string(limits.max_entry_size) + " bytes");
        if (logical > limits.max_total_size - std::min(total_size, limits.max_total_size))
            return fail(ec, why, error::limit_exceeded,
                        where() + ": size " + std::to_string(logical) + " brings the archive's total beyond the limit of " +
                            std::to_string(limits.max_total_size) + " bytes");
        total_size += logical;
        out.size = logical;
        layout.stored_size = stored;
        layout.readable = true;
        layout.sparse = sparse;
        break;
    }
    case entry_type::directory:
        if (h.typeflag != '5' && stored != 0) // '0' named "x/": readers disagree on whether data follows
            return fail(ec, why, error::invalid_archive,
                        where() + ": regular entry named like a directory (trailing '/') declares " +
                            std::to_string(stored) + " bytes of data");
        break; // a '5' entry's size field is ignored: no data follows
    case entry_type::hardlink:
        if (!no_data()) return;
        out.link_target = normalize_path(raw_link, "hardlink target", limits, ec, &msg);
        if (ec) return fail(ec, why, static_cast<error>(ec.value()), where() + ": " + msg);
        if (out.link_target == ".")
            return fail(ec, why, error::unsafe_path, where() + ": hardlink target " + quote(raw_link) + " is the root");
        break;
    case entry_type::symlink:
        if (!no_data()) return;
        if (raw_link.empty()) return fail(ec, why, error::invalid_archive, where() + ": symlink with an empty target");
        if (raw_link.size() > limits.max_path_length)
            return fail(ec, why, error::limit_exceeded,
                        where() + ": symlink target is " + std::to_string(raw_link.size()) +
                            " bytes long; the limit is " + std::to_string(limits.max_path_length));
        if (auto const nul = raw_link.find('\0'); nul != std::string_view::npos)
            return fail(ec, why, error::unsafe_path,
                        where() + ": symlink target contains a NUL byte at position " + std::to_string(nul));
        out.link_target = raw_link;
        break;
    case entry_type::char_device:
    case entry_type::block_device:
        if (!no_data()) return;
        out.devmajor = h.devmajor;
        out.devminor = h.devminor;
        break;
    case entry_type::fifo:
        if (!no_data()) return;
        break;
    }
}

OCISTORE_DECL void check_sparse_map(std::vector<sparse_extent> const& map, std::uint64_t real_size,
                                    std::uint64_t data_size, std::string_view path, error_code& ec, std::string* why)
{
    ec.clear();
    std::uint64_t end = 0, sum = 0;
    for (std::size_t i = 0; i < map.size(); ++i) {
        auto const& x = map[i];
        std::string const ext = "sparse map of " + quote(path) + ": extent " + std::to_string(i) + " (offset " +
                                std::to_string(x.offset) + ", length " + std::to_string(x.length) + ")";
        if (x.offset < end)
            return fail(ec, why, error::invalid_archive, ext + " overlaps or precedes the previous extent");
        if (x.length > real_size || x.offset > real_size - x.length)
            return fail(ec, why, error::invalid_archive,
                        ext + " extends past the file's size of " + std::to_string(real_size));
        end = x.offset + x.length;
        sum += x.length;
    }
    if (sum != data_size)
        return fail(ec, why, error::invalid_archive,
                    "sparse map of " + quote(path) + " describes " + std::to_string(sum) +
                        " data bytes, but the entry stores " + std::to_string(data_size));
}

} // namespace detail::tar
} // namespace ocistore
