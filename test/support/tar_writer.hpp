// Test support: a small tar writer producing ustar, GNU and v7 headers, pax extended and global
// headers, GNU long names/links, base-256 numbers, pax 1.0 sparse files, and broken archives
// (header surgery with or without a fixed checksum, truncation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_test {

enum class tar_format { ustar, gnu, v7 };

/// One header block's fields, as written (no validation beyond what fits).
struct tar_header {
    std::string name;
    char type = '0';
    std::uint32_t mode = 0644;
    std::uint64_t uid = 0;
    std::uint64_t gid = 0;
    std::int64_t mtime = 1700000000;
    std::string linkname;
    std::string uname = "root";
    std::string gname = "root";
    std::uint32_t devmajor = 0;
    std::uint32_t devminor = 0;
    std::uint64_t size = 0;
    tar_format format = tar_format::ustar;
    bool base256 = false;       ///< write uid, gid, size and mtime in base-256
    bool split_prefix = true;   ///< ustar: store a name over 100 bytes as prefix + name
};

class tar_writer {
public:
    // Header field offsets and widths.
    static constexpr std::size_t name_off = 0, name_len = 100;
    static constexpr std::size_t mode_off = 100, mode_len = 8;
    static constexpr std::size_t uid_off = 108, uid_len = 8;
    static constexpr std::size_t gid_off = 116, gid_len = 8;
    static constexpr std::size_t size_off = 124, size_len = 12;
    static constexpr std::size_t mtime_off = 136, mtime_len = 12;
    static constexpr std::size_t chksum_off = 148, chksum_len = 8;
    static constexpr std::size_t type_off = 156;
    static constexpr std::size_t linkname_off = 157, linkname_len = 100;
    static constexpr std::size_t magic_off = 257;
    static constexpr std::size_t uname_off = 265, gname_off = 297;
    static constexpr std::size_t devmajor_off = 329, devminor_off = 337;
    static constexpr std::size_t prefix_off = 345, prefix_len = 155;

    /// `width - 1` octal digits and a NUL.
    static std::string octal(std::uint64_t v, std::size_t width)
    {
        std::string s(width - 1, '0');
        for (std::size_t i = width - 1; i-- > 0;) {
            s[i] = static_cast<char>('0' + (v & 7));
            v >>= 3;
        }
        if (v) throw std::logic_error("tar_writer: value does not fit an octal field");
        s.push_back('\0');
        return s;
    }

    /// GNU base-256: big-endian two's complement with the top bit of the first byte set (so bit 6
    /// is the sign: an 8-byte field holds -2^62 .. 2^62-1).
    static std::string base256(std::int64_t v, std::size_t width)
    {
        if (width < 9 && (v >= std::int64_t(1) << (8 * width - 2) || v < -(std::int64_t(1) << (8 * width - 2))))
            throw std::logic_error("tar_writer: value does not fit a base-256 field");
        std::string s(width, '\0');
        auto u = static_cast<std::uint64_t>(v);
        for (std::size_t i = width; i-- > 0;) {
            s[i] = static_cast<char>(u & 0xff);
            u = v < 0 ? (u >> 8) | 0xff00000000000000ull : u >> 8;
        }
        s[0] = static_cast<char>(static_cast<unsigned char>(s[0]) | 0x80);
        return s;
    }

    /// A "%d key=value\n" pax record with the right length.
    static std::string pax_record(std::string_view key, std::string_view value)
    {
        std::size_t const body = key.size() + value.size() + 3; // ' ', '=', '\n'
        std::size_t len = body + 1;
        while (std::to_string(len).size() + body != len) ++len;
        return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
    }

    /// Writes one header block.
    void header(tar_header const& h)
    {
        std::string b(512, '\0');
        std::string name = h.name, prefix;
        if (name.size() > name_len) {
            if (h.format != tar_format::ustar || !h.split_prefix)
                throw std::logic_error("tar_writer: name too long for the header: " + name);
            std::size_t cut = std::string::npos;
            for (std::size_t i = name.size(); i-- > 0;)
                if (name[i] == '/' && i <= prefix_len && name.size() - i - 1 <= name_len && name.size() - i - 1 > 0) {
                    cut = i;
                    break;
                }
            if (cut == std::string::npos) throw std::logic_error("tar_writer: cannot split name: " + name);
            prefix = name.substr(0, cut);
            name = name.substr(cut + 1);
        }
        if (h.linkname.size() > linkname_len) throw std::logic_error("tar_writer: link name too long");
        put(b, name_off, name);
        put(b, mode_off, octal(h.mode, mode_len));
        put(b, uid_off, number(h.uid, uid_len, h.base256));
        put(b, gid_off, number(h.gid, gid_len, h.base256));
        put(b, size_off, number(h.size, size_len, h.base256));
        put(b, mtime_off, h.base256 || h.mtime < 0 ? base256(h.mtime, mtime_len)
                                                   : octal(static_cast<std::uint64_t>(h.mtime), mtime_len));
        b[type_off] = h.type;
        put(b, linkname_off, h.linkname);
        if (h.format == tar_format::ustar) put(b, magic_off, std::string("ustar\0" "00", 8));
        if (h.format == tar_format::gnu) put(b, magic_off, std::string("ustar  \0", 8));
        if (h.format != tar_format::v7) {
            put(b, uname_off, h.uname.substr(0, 31));
            put(b, gname_off, h.gname.substr(0, 31));
            put(b, devmajor_off, octal(h.devmajor, 8));
            put(b, devminor_off, octal(h.devminor, 8));
            if (h.format == tar_format::ustar) put(b, prefix_off, prefix);
        }
        last_ = out_.size();
        out_ += b;
        fix_checksum();
    }

    /// Writes `bytes` and zero padding to the next block.
    void data(std::string_view bytes)
    {
        out_.append(bytes);
        out_.append((512 - bytes.size() % 512) % 512, '\0');
    }

    /// A header of type `h.type` (regular by default) with `content` as its data.
    void file(std::string name, std::string_view content, tar_header h = {})
    {
        h.name = std::move(name);
        h.size = content.size();
        header(h);
        data(content);
    }
    void dir(std::string name, std::uint32_t mode = 0755)
    {
        tar_header h;
        h.name = std::move(name);
        h.type = '5';
        h.mode = mode;
        header(h);
    }
    void symlink(std::string name, std::string target)
    {
        tar_header h;
        h.name = std::move(name);
        h.type = '2';
        h.mode = 0777;
        h.linkname = std::move(target);
        header(h);
    }
    void hardlink(std::string name, std::string target)
    {
        tar_header h;
        h.name = std::move(name);
        h.type = '1';
        h.linkname = std::move(target);
        header(h);
    }
    void device(std::string name, char type, std::uint32_t major, std::uint32_t minor)
    {
        tar_header h;
        h.name = std::move(name);
        h.type = type;
        h.devmajor = major;
        h.devminor = minor;
        header(h);
    }
    void fifo(std::string name)
    {
        tar_header h;
        h.name = std::move(name);
        h.type = '6';
        header(h);
    }

    /// A pax extended ('x') or global ('g') header with these records.
    void pax(std::vector<std::pair<std::string, std::string>> const& records, bool global = false)
    {
        std::string body;
        for (auto const& [k, v] : records) body += pax_record(k, v);
        pax_raw(body, global);
    }
    /// A pax header with `body` as its data, verbatim.
    void pax_raw(std::string_view body, bool global = false)
    {
        tar_header h;
        h.name = global ? "pax_global_header" : "./PaxHeaders/entry";
        h.type = global ? 'g' : 'x';
        h.size = body.size();
        header(h);
        data(body);
    }

    /// A GNU long name ('L') or long link ('K') record: `name` plus a NUL.
    void gnu_long(char type, std::string_view name)
    {
        tar_header h;
        h.name = "././@LongLink";
        h.type = type;
        h.format = tar_format::gnu;
        h.size = name.size() + 1;
        header(h);
        std::string d(name);
        d.push_back('\0');
        data(d);
    }

    /** A pax 1.0 sparse file: `chunks` are (logical offset, data) in ascending order.
        `h` supplies the other header fields. */
    void sparse_file(std::string name, std::uint64_t real_size,
                     std::vector<std::pair<std::uint64_t, std::string>> const& chunks, tar_header h = {})
    {
        pax({{"GNU.sparse.major", "1"},
             {"GNU.sparse.minor", "0"},
             {"GNU.sparse.name", name},
             {"GNU.sparse.realsize", std::to_string(real_size)}});
        std::string map = std::to_string(chunks.size()) + "\n";
        for (auto const& [off, d] : chunks) map += std::to_string(off) + "\n" + std::to_string(d.size()) + "\n";
        map.append((512 - map.size() % 512) % 512, '\0');
        for (auto const& c : chunks) map += c.second;
        h.name = "./GNUSparseFile.0/sparse";
        h.type = '0';
        h.size = map.size();
        header(h);
        data(map);
    }

    /// `n` zero blocks (2 = the end-of-archive marker).
    void end(int n = 2) { out_.append(static_cast<std::size_t>(n) * 512, '\0'); }
    /// Appends bytes verbatim.
    void raw(std::string_view bytes) { out_.append(bytes); }

    /// Offset of the last header written.
    std::size_t last_header() const noexcept { return last_; }
    /// Overwrites bytes of the last header at `field_offset`; recomputes the checksum unless told not to.
    void patch(std::size_t field_offset, std::string_view bytes, bool fix = true)
    {
        out_.replace(last_ + field_offset, bytes.size(), bytes);
        if (fix) fix_checksum();
    }
    /// Rewrites the last header's checksum: the unsigned sum, or the historic signed one.
    void fix_checksum(bool signed_sum = false)
    {
        std::int64_t sum = 0;
        for (std::size_t i = 0; i < 512; ++i) {
            unsigned char const c = (i >= chksum_off && i < chksum_off + chksum_len)
                                        ? ' '
                                        : static_cast<unsigned char>(out_[last_ + i]);
            sum += signed_sum ? static_cast<signed char>(c) : c;
        }
        std::string f = octal(static_cast<std::uint64_t>(sum) & 0777777, 7);
        f.push_back(' ');
        out_.replace(last_ + chksum_off, chksum_len, f);
    }
    /// Cuts the archive to `n` bytes.
    void truncate(std::size_t n) { out_.resize(n); }

    std::string const& str() const noexcept { return out_; }
    std::size_t size() const noexcept { return out_.size(); }

private:
    static void put(std::string& b, std::size_t off, std::string_view v) { b.replace(off, v.size(), v); }
    static std::string number(std::uint64_t v, std::size_t width, bool b256)
    {
        if (b256 || v >> (3 * (width - 1))) return base256(static_cast<std::int64_t>(v), width);
        return octal(v, width);
    }

    std::string out_;
    std::size_t last_ = 0;
};

} // namespace ocistore_test
