// benchmarks/micro/micro_data.hpp: deterministic inputs of the micro-benchmarks, built once per process on first use.
#pragma once

#include <ocistore/error.hpp>

#include <support/compress.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>

#include <benchmark/benchmark.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ocistore_micro {

/// Register one family each (defined in the file of that name); main() calls them in this order.
void register_hash_benchmarks();
void register_inflate_benchmarks();
void register_tar_benchmarks();
void register_erofs_benchmarks();
void register_parse_benchmarks();
void register_store_benchmarks();

/// The same bytes on every run and machine (mt19937_64 is fully specified).
using rng_type = std::mt19937_64;

/// A uniform integer in [lo, hi] (no std::uniform_int_distribution: its output is implementation-defined).
inline std::uint64_t uniform(rng_type& rng, std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); }

/// A size drawn log-uniformly from [lo, hi].
inline std::size_t log_uniform(rng_type& rng, std::size_t lo, std::size_t hi)
{
    double const u = static_cast<double>(rng() >> 11) / 9007199254740992.0; // [0, 1)
    double const v = std::exp(std::log(static_cast<double>(lo)) +
                              u * (std::log(static_cast<double>(hi)) - std::log(static_cast<double>(lo))));
    return std::clamp(static_cast<std::size_t>(v), lo, hi);
}

/// `n` pseudo-random (incompressible) bytes.
inline std::vector<std::byte> random_buffer(std::size_t n, std::uint64_t seed)
{
    rng_type rng(seed);
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t const v = rng();
        std::memcpy(out.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    return out;
}

/// The vocabulary text_content() draws from: 4096 pronounceable words, the same every run.
inline std::vector<std::string> const& vocabulary()
{
    static std::vector<std::string> const words = [] {
        static constexpr std::string_view onsets[] = {"b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t",
                                                      "st", "pr", "tr", "ch", "sh", "v", "w", "z"};
        static constexpr std::string_view vowels[] = {"a", "e", "i", "o", "u", "ou", "ea", "io"};
        static constexpr std::string_view codas[] = {"", "n", "r", "s", "t", "ng", "ck", "l", "x", "d"};
        rng_type rng(7);
        std::vector<std::string> out;
        for (int i = 0; i < 4096; ++i) {
            std::string w;
            auto const syllables = uniform(rng, 1, 4);
            for (std::uint64_t s = 0; s < syllables; ++s) {
                w += onsets[rng() % std::size(onsets)];
                w += vowels[rng() % std::size(vowels)];
                w += codas[rng() % std::size(codas)];
            }
            out.push_back(std::move(w));
        }
        return out;
    }();
    return words;
}

/** `n` bytes of text: lines of words with a skewed (Zipf-like) frequency, indentation,
    punctuation, key=value pairs and numbers, like documentation, scripts and configuration.
    gzip -6 shrinks it about 3:1. */
inline std::string text_content(std::size_t n, std::uint64_t seed)
{
    auto const& words = vocabulary();
    rng_type rng(seed);
    std::string s;
    s.reserve(n + 128);
    auto word = [&]() -> std::string const& {
        double const u = static_cast<double>(rng() >> 11) / 9007199254740992.0;
        return words[static_cast<std::size_t>(u * u * u * static_cast<double>(words.size()))];
    };
    while (s.size() < n) {
        auto const kind = rng() % 10;
        s.append(static_cast<std::size_t>(rng() % 3) * 4, ' ');
        if (kind == 0) { // key = value
            s += word(), s += '_', s += word(), s += " = ", s += std::to_string(rng() % 100000);
        } else if (kind == 1) { // a path
            s += "/usr/", s += word(), s += '/', s += word(), s += ".so.", s += std::to_string(rng() % 10);
        } else {
            auto const count = uniform(rng, 3, 14);
            for (std::uint64_t i = 0; i < count; ++i) {
                if (i) s += ' ';
                s += word();
            }
            s += (rng() % 4 == 0) ? "," : ".";
        }
        s += '\n';
    }
    s.resize(n);
    return s;
}

/** `n` bytes shaped like compiled code: instructions from a small, skewed opcode set with
    mostly small operands, zero padding between functions, and string tables (text). gzip -6
    shrinks it about 2:1. */
inline std::string binary_content(std::size_t n, std::uint64_t seed)
{
    static constexpr std::array<std::string_view, 16> opcodes = {
        std::string_view("\x48\x89", 2), std::string_view("\x48\x8b", 2), std::string_view("\xe8", 1),
        std::string_view("\x0f\x84", 2), std::string_view("\x48\x83\xc4", 3), std::string_view("\x89", 1),
        std::string_view("\x8b", 1),     std::string_view("\x41\x57", 2), std::string_view("\xc3", 1),
        std::string_view("\x74", 1),     std::string_view("\x75", 1),     std::string_view("\x48\x8d", 2),
        std::string_view("\x31\xc0", 2), std::string_view("\x66\x0f\x1f\x44\x00\x00", 6),
        std::string_view("\xff\x15", 2), std::string_view("\x4c\x89", 2)};
    rng_type rng(seed);
    std::string s;
    s.reserve(n + 4096);
    while (s.size() < n) {
        if (rng() % 64 == 0) { // a string table
            s += text_content(static_cast<std::size_t>(uniform(rng, 64, 1024)), rng());
            s += '\0';
            continue;
        }
        auto const instructions = uniform(rng, 8, 200); // one function
        for (std::uint64_t i = 0; i < instructions; ++i) {
            auto const r = rng();
            auto const op = opcodes[(r & 15) < 12 ? (r & 7) : (r & 15)]; // skewed towards the first eight
            s += op;
            switch ((r >> 8) % 4) {
            case 0: break;
            case 1: s += static_cast<char>((r >> 16) & 0x3f); break;
            case 2: { // a 32-bit displacement, usually small
                std::uint32_t const v = static_cast<std::uint32_t>((r >> 16) & ((r >> 60) ? 0xfff : 0xffffff));
                for (int b = 0; b < 4; ++b) s += static_cast<char>((v >> (8 * b)) & 0xff);
                break;
            }
            default: s += static_cast<char>(0xc0 | ((r >> 16) & 0x3f)); break;
            }
        }
        s.append((16 - s.size() % 16) % 16, '\0'); // function alignment
    }
    s.resize(n);
    return s;
}

/// An uncompressed tar archive and what it holds.
struct tar_archive {
    std::string bytes;
    std::uint64_t entries = 0;    ///< every entry a tar reader returns
    std::uint64_t files = 0;      ///< regular files among them
    std::uint64_t file_bytes = 0; ///< their content
};

/// Directory `d` (relative, trailing '/') and its missing parents, each once.
inline void add_dirs(ocistore_test::tar_writer& w, tar_archive& a, std::vector<std::string>& made, std::string const& d)
{
    for (std::size_t pos = d.find('/'); pos != std::string::npos; pos = d.find('/', pos + 1)) {
        std::string const p = d.substr(0, pos + 1);
        if (std::find(made.begin(), made.end(), p) != made.end()) continue;
        made.push_back(p);
        w.dir(p);
        ++a.entries;
    }
}

/// Appends a regular file; every tenth carries a pax header (sub-second mtime), as GNU tar --format=pax writes.
inline void add_file(ocistore_test::tar_writer& w, tar_archive& a, std::string const& path, std::string const& content,
                     std::uint32_t mode, bool pax)
{
    if (pax) w.pax({{"mtime", "1700000000.123456789"}, {"path", path}});
    ocistore_test::tar_header h;
    h.mode = mode;
    w.file(path, content, h);
    ++a.entries, ++a.files, a.file_bytes += content.size();
}

/** A layer like a distribution's base image: text and binary files of log-uniform sizes
    from 200 B to 4 MiB in a /usr-like tree, a few symlinks, until `size` bytes of content. */
inline tar_archive make_layer_tar(std::size_t size, std::uint64_t seed)
{
    static constexpr std::string_view dirs[] = {"usr/bin/", "usr/lib/x86_64-linux-gnu/", "usr/share/doc/",
                                                "usr/share/locale/de/LC_MESSAGES/", "etc/", "usr/libexec/tools/",
                                                "usr/share/man/man1/", "var/lib/dpkg/info/"};
    rng_type rng(seed);
    ocistore_test::tar_writer w;
    tar_archive a;
    std::vector<std::string> made;
    for (int i = 0; a.file_bytes < size; ++i) {
        std::string const dir(dirs[rng() % std::size(dirs)]);
        add_dirs(w, a, made, dir);
        std::size_t const n = log_uniform(rng, 200, 4 << 20);
        bool const binary = dir.find("bin") != std::string::npos || dir.find("lib/") != std::string::npos ||
                            dir.find("libexec") != std::string::npos;
        std::string const name = dir + "f" + std::to_string(i) + (binary ? "" : ".txt");
        add_file(w, a, name, binary ? binary_content(n, rng()) : text_content(n, rng()), binary ? 0755 : 0644,
                 i % 10 == 0);
        if (i % 25 == 0) {
            w.symlink(name + ".link", "f" + std::to_string(i));
            ++a.entries;
        }
    }
    w.end();
    a.bytes = w.str();
    return a;
}

/// The 64 MiB (of content) layer the inflater benchmarks decode.
inline tar_archive const& layer_tar()
{
    static tar_archive const a = make_layer_tar(64 << 20, 42);
    return a;
}
/// layer_tar() compressed by zlib's deflate at level 6 (as `gzip -6` and most image builders).
inline std::string const& layer_gzip()
{
    static std::string const z = ocistore_test::gzip_compress(layer_tar().bytes, 6);
    return z;
}
/// layer_tar() compressed by libzstd at level 3 (the `zstd` default), one frame with a checksum.
inline std::string const& layer_zstd()
{
    static std::string const z = ocistore_test::zstd_compress(layer_tar().bytes, 3, true);
    return z;
}

/** Many small files: 12,000 regular files of log-uniform sizes from 32 B to 16 KiB (text
    and binary) in 600 directories, 600 symlinks, every tenth file behind a pax header. */
inline tar_archive const& small_files_tar()
{
    static tar_archive const a = [] {
        rng_type rng(11);
        ocistore_test::tar_writer w;
        tar_archive out;
        std::vector<std::string> made;
        for (int i = 0; i < 12000; ++i) {
            std::string const dir = "usr/share/pkg" + std::to_string(i / 20 % 600) + "/";
            add_dirs(w, out, made, dir);
            std::size_t const n = log_uniform(rng, 32, 16 << 10);
            std::string const name = dir + "file-with-a-longer-name-" + std::to_string(i);
            add_file(w, out, name, i % 3 ? text_content(n, rng()) : binary_content(n, rng()), 0644, i % 10 == 0);
            if (i % 20 == 0) {
                w.symlink(dir + "latest", "file-with-a-longer-name-" + std::to_string(i));
                ++out.entries;
            }
        }
        w.end();
        out.bytes = w.str();
        return out;
    }();
    return a;
}

/// A few large files: 8 binary files of 16 MiB each.
inline tar_archive const& large_files_tar()
{
    static tar_archive const a = [] {
        ocistore_test::tar_writer w;
        tar_archive out;
        std::vector<std::string> made;
        add_dirs(w, out, made, "opt/models/");
        for (int i = 0; i < 8; ++i)
            add_file(w, out, "opt/models/part" + std::to_string(i) + ".bin", binary_content(16 << 20, 100u + i),
                     0644, false);
        w.end();
        out.bytes = w.str();
        return out;
    }();
    return a;
}

/// A *ByteSource* over bytes in memory, handing out as much as asked.
using memory_source = ocistore_test::memory_source;

/// An anonymous in-memory file (memfd_create): the sink of the EROFS writers. Closed on destruction.
class memfd {
public:
    memfd() : fd_(::memfd_create("ocistore-bench", MFD_CLOEXEC)) {}
    memfd(memfd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    memfd& operator=(memfd&& o) noexcept
    {
        std::swap(fd_, o.fd_);
        return *this;
    }
    memfd(memfd const&) = delete;
    memfd& operator=(memfd const&) = delete;
    ~memfd()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    /// The file's length.
    std::uint64_t size() const noexcept
    {
        off_t const n = ::lseek(fd_, 0, SEEK_END);
        return n < 0 ? 0 : static_cast<std::uint64_t>(n);
    }

private:
    int fd_;
};

/// Marks the run failed with `what` and `why`; the caller returns.
inline void skip_with(benchmark::State& state, std::string const& what, std::string const& why)
{
    state.SkipWithError((what + ": " + why).c_str());
}

/// Bytes as the span the ocistore *ByteSource* and *Hasher* interfaces take.
inline std::span<std::byte const> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

} // namespace ocistore_micro
