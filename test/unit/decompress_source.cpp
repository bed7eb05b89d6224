#include <ocistore/decompress_source.hpp>

#include <support/compress.hpp>
#include <support/memory_source.hpp>

#include <doctest/doctest.h>

#if defined(OCISTORE_HAS_ISAL)
#  include <isa-l/igzip_lib.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;

static_assert(byte_source<basic_decompress_source<memory_source>>);
static_assert(byte_source<basic_decompress_source<basic_decompress_source<memory_source>>>);

namespace {

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

struct result {
    std::string out;
    error_code ec;
    std::string why;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t members = 0;
    gzip_backend backend = gzip_backend::automatic;
};

/// Decodes `data` to the end, reading the source `chunk` bytes at a time and the output
/// `out_size` bytes at a time.
result decode(std::string_view data, layer_compression c, decompress_options o = {}, std::size_t chunk = unlimited,
              std::size_t out_size = 65536)
{
    memory_source src(data, chunk);
    basic_decompress_source dec(src, c, o);
    result r;
    std::vector<std::byte> buf(out_size);
    for (;;) {
        std::size_t const n = dec.read_some(buf, r.ec, &r.why);
        if (r.ec) {
            CHECK(n == 0);
            break;
        }
        if (n == 0) break;
        REQUIRE(n <= buf.size());
        r.out.append(reinterpret_cast<char const*>(buf.data()), n);
    }
    r.bytes_in = dec.bytes_in();
    r.bytes_out = dec.bytes_out();
    r.members = dec.members();
    r.backend = dec.backend();
    if (!r.ec) {
        CHECK(dec.why().empty());
        CHECK(r.bytes_in == data.size()); // read to the end of the source
    } else {
        CHECK(dec.why() == r.why);
    }
    CHECK(r.bytes_out == r.out.size());
    return r;
}

/// The gzip backends compiled in.
std::vector<gzip_backend> gzip_backends()
{
    std::vector<gzip_backend> v{gzip_backend::zlib};
    if (isal_available) v.push_back(gzip_backend::isal);
    return v;
}

decompress_options with(gzip_backend b)
{
    decompress_options o;
    o.backend = b;
    return o;
}

bool contains(std::string const& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

/// A small stream of mixed content: text, random bytes and runs.
std::string mixed(std::size_t n, std::uint64_t seed)
{
    std::string s = ocistore_test::text_bytes(n / 2, seed) + ocistore_test::random_bytes(n / 4, seed) +
                    std::string(n / 8, 'a') + ocistore_test::text_bytes(n - n / 2 - n / 4 - n / 8, seed + 1);
    return s;
}

std::string gzip_cmd(std::string const& args, std::string_view data)
{
    return ocistore_test::filter_command("gzip " + args, data);
}

} // namespace

// --------------------------------------------------------------------------------------------
// gzip
// --------------------------------------------------------------------------------------------

TEST_CASE("gzip: round trips against the gzip command, levels 1 and 9, both backends")
{
    if (!ocistore_test::has_command("gzip")) {
        MESSAGE("gzip command not found: skipped");
        return;
    }
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(1000), std::size_t(100000),
                             std::size_t(1536 * 1024)}) {
        for (bool random : {false, true}) {
            std::string const data = random ? ocistore_test::random_bytes(size, size) : mixed(size, size);
            for (char const* level : {"-1", "-9"}) {
                std::string const gz = gzip_cmd(std::string(level) + " -c", data);
                for (auto b : gzip_backends()) {
                    CAPTURE(size);
                    CAPTURE(random);
                    CAPTURE(level);
                    CAPTURE(to_string(b));
                    auto const r = decode(gz, layer_compression::gzip, with(b));
                    REQUIRE_FALSE(r.ec);
                    CHECK(r.out == data);
                    CHECK(r.members == 1);
                    CHECK(r.backend == b);
                }
            }
        }
    }
}

TEST_CASE("gzip: every input chunk size and every output read size from 1 byte up")
{
    std::string const data = mixed(24000, 7);
    std::string const gz = ocistore_test::gzip_compress(data, 6);
    for (auto b : gzip_backends()) {
        CAPTURE(to_string(b));
        for (std::size_t chunk = 1; chunk <= 300; ++chunk) {
            CAPTURE(chunk);
            auto const r = decode(gz, layer_compression::gzip, with(b), chunk);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.out == data);
        }
        for (std::size_t out = 1; out <= 300; ++out) {
            CAPTURE(out);
            auto const r = decode(gz, layer_compression::gzip, with(b), unlimited, out);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.out == data);
        }
        for (std::size_t both : {1, 2, 3, 5, 8, 13, 4095, 4096, 4097, 65537}) {
            CAPTURE(both);
            auto const r = decode(gz, layer_compression::gzip, with(b), both, both);
            REQUIRE_FALSE(r.ec);
            REQUIRE(r.out == data);
        }
    }
}

TEST_CASE("gzip: multi-member streams (cat a.gz b.gz) decode as one stream")
{
    std::string const a = mixed(70000, 1), b = ocistore_test::random_bytes(5000, 2), c = mixed(300, 3);
    std::string const joined =
        ocistore_test::gzip_compress(a, 9) + ocistore_test::gzip_compress("", 6) +
        ocistore_test::gzip_compress(b, 1) + ocistore_test::gzip_compress(c, 0) + ocistore_test::gzip_compress("", 0);
    for (auto be : gzip_backends()) {
        CAPTURE(to_string(be));
        for (std::size_t chunk : {std::size_t(1), std::size_t(7), std::size_t(4096), unlimited}) {
            CAPTURE(chunk);
            auto const r = decode(joined, layer_compression::gzip, with(be), chunk, chunk == 1 ? 3 : 65536);
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == a + b + c);
            CHECK(r.members == 5);
            CHECK(r.bytes_in == joined.size());
        }
    }
    if (ocistore_test::has_command("gzip")) {
        std::string const cat = gzip_cmd("-6 -c", a) + gzip_cmd("-1 -c", b);
        for (auto be : gzip_backends()) {
            auto const r = decode(cat, layer_compression::gzip, with(be));
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == a + b);
            CHECK(r.members == 2);
        }
    }
}

TEST_CASE("gzip: pigz streams (skipped without pigz)")
{
    if (!ocistore_test::has_command("pigz")) {
        MESSAGE("pigz not found: skipped");
        return;
    }
    std::string const data = mixed(3 << 20, 11);
    for (char const* args : {"-6 -c", "-1 -c -b 128", "-9 -i -c"}) {
        std::string const gz = ocistore_test::filter_command(std::string("pigz ") + args, data);
        for (auto b : gzip_backends()) {
            CAPTURE(args);
            CAPTURE(to_string(b));
            auto const r = decode(gz, layer_compression::gzip, with(b), 1000);
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == data);
        }
    }
}

TEST_CASE("gzip: FEXTRA, FNAME, FCOMMENT and FHCRC headers, split at every byte")
{
    std::string const data = mixed(5000, 5);
    ocistore_test::gzip_fields f;
    f.extra = std::string("AB\x04\x00" "abcd", 8);
    f.name = "layer.tar";
    f.comment = "a comment that is rather long, to straddle many reads";
    f.hcrc = true;
    std::string const gz = ocistore_test::gzip_compress(data, 6, Z_DEFAULT_STRATEGY, &f);
    REQUIRE((static_cast<unsigned char>(gz[3]) & 0x1e) == 0x1e);
    // FNAME, FCOMMENT and FHCRC alone or together, each header split at every position.
    for (int variant = 0; variant < 4; ++variant) {
        ocistore_test::gzip_fields g = f;
        if (variant == 1) g.extra.clear(), g.hcrc = false;
        if (variant == 2) g.name.clear();
        if (variant == 3) g.comment.clear(), g.extra.clear();
        std::string const s = ocistore_test::gzip_compress(data, 6, Z_DEFAULT_STRATEGY, &g);
        for (auto b : gzip_backends()) {
            for (std::size_t chunk = 1; chunk <= 90; ++chunk) {
                CAPTURE(variant);
                CAPTURE(to_string(b));
                CAPTURE(chunk);
                auto const r = decode(s + s, layer_compression::gzip, with(b), chunk);
                REQUIRE_FALSE(r.ec);
                REQUIRE(r.out == data + data);
            }
        }
    }
    if (ocistore_test::has_command("gzip")) { // the gzip command stores the file name (FNAME)
        ocistore_test::temp_dir dir;
        std::string const file = (dir / "some-file.tar").string();
        {
            std::ofstream o(file, std::ios::binary);
            o << data;
        }
        REQUIRE(std::system(("gzip -N '" + file + "'").c_str()) == 0);
        std::ifstream in(file + ".gz", std::ios::binary);
        std::string const named((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        REQUIRE((static_cast<unsigned char>(named[3]) & 0x08) != 0);
        for (auto b : gzip_backends()) {
            auto const r = decode(named, layer_compression::gzip, with(b), 3);
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == data);
        }
    }
}

TEST_CASE("gzip: malformed headers are invalid_archive in both backends")
{
    std::string const data = mixed(2000, 9);
    std::string const good = ocistore_test::gzip_compress(data, 6);
    ocistore_test::gzip_fields f;
    f.name = "x";
    f.hcrc = true;
    std::string const with_hcrc = ocistore_test::gzip_compress(data, 6, Z_DEFAULT_STRATEGY, &f);

    struct bad {
        char const* what;
        std::string stream;
    };
    std::vector<bad> cases;
    std::string s = good;
    s[2] = 7; // CM
    cases.push_back({"method", s});
    s = good;
    s[3] = '\x20'; // reserved FLG bit
    cases.push_back({"reserved flag", s});
    s = with_hcrc;
    s[12] ^= 0x01; // the stored FHCRC (after FNAME "x")
    cases.push_back({"header crc", s});
    for (auto const& c : cases) {
        for (auto b : gzip_backends()) {
            for (std::size_t chunk : {std::size_t(1), unlimited}) {
                CAPTURE(c.what);
                CAPTURE(to_string(b));
                CAPTURE(chunk);
                auto const r = decode(c.stream, layer_compression::gzip, with(b), chunk);
                CHECK(r.ec == error::invalid_archive);
                CHECK(contains(r.why, "gzip member 1"));
                CHECK(r.out.empty());
            }
        }
    }
    // The messages name the rule (ISA-L's header is parsed by ocistore itself).
    if (isal_available) {
        CHECK(contains(decode(cases[0].stream, layer_compression::gzip, with(gzip_backend::isal)).why,
                       "compression method 7"));
        CHECK(contains(decode(cases[1].stream, layer_compression::gzip, with(gzip_backend::isal)).why,
                       "reserved flag bits"));
        CHECK(contains(decode(cases[2].stream, layer_compression::gzip, with(gzip_backend::isal)).why,
                       "header CRC-16 mismatch"));
    }
    CHECK(contains(decode(cases[0].stream, layer_compression::gzip, with(gzip_backend::zlib)).why,
                   "zlib: unknown compression method"));
    CHECK(contains(decode(cases[2].stream, layer_compression::gzip, with(gzip_backend::zlib)).why,
                   "zlib: header crc mismatch"));
}

TEST_CASE("gzip: the CRC-32 and ISIZE trailer is verified by both backends")
{
    std::string const data = mixed(50000, 4);
    std::string const gz = ocistore_test::gzip_compress(data, 6);
    for (std::size_t k = 0; k < 8; ++k) {
        std::string bad = gz;
        bad[gz.size() - 8 + k] ^= 0x01;
        for (auto b : gzip_backends()) {
            for (std::size_t chunk : {std::size_t(1), std::size_t(5), unlimited}) {
                CAPTURE(k);
                CAPTURE(to_string(b));
                CAPTURE(chunk);
                auto const r = decode(bad, layer_compression::gzip, with(b), chunk);
                REQUIRE(r.ec == error::invalid_archive);
                CHECK(contains(r.why, "gzip member 1 near compressed offset"));
                if (b == gzip_backend::zlib)
                    CHECK(contains(r.why, k < 4 ? "zlib: incorrect data check" : "zlib: incorrect length check"));
                else
                    CHECK(contains(r.why, "isa-l: CRC-32 or ISIZE"));
            }
        }
    }
}

TEST_CASE("gzip: a stream cut at any point is truncated")
{
    std::string const data = mixed(9000, 12);
    std::string const gz = ocistore_test::gzip_compress(data, 6);
    for (auto b : gzip_backends()) {
        for (std::size_t cut = 0; cut < gz.size(); ++cut) {
            CAPTURE(to_string(b));
            CAPTURE(cut);
            auto const r = decode(std::string_view(gz).substr(0, cut), layer_compression::gzip, with(b),
                                  cut % 16 == 1 ? 1 : cut % 2 ? 100 : unlimited);
            REQUIRE(r.ec == error::truncated);
            CHECK(contains(r.why, cut == 0 ? "gzip stream is empty" : "ends"));
            CHECK(data.starts_with(r.out));
        }
    }
    // Multi-member: cut anywhere but at a member boundary.
    std::string const two = gz + ocistore_test::gzip_compress("second", 6);
    for (auto b : gzip_backends()) {
        for (std::size_t cut = gz.size() - 20; cut < two.size(); ++cut) {
            if (cut == gz.size()) {
                auto const r = decode(std::string_view(two).substr(0, cut), layer_compression::gzip, with(b));
                CHECK_FALSE(r.ec); // a shorter but complete stream
                continue;
            }
            CAPTURE(to_string(b));
            CAPTURE(cut);
            auto const r = decode(std::string_view(two).substr(0, cut), layer_compression::gzip, with(b));
            CHECK(r.ec == error::truncated);
            if (cut == gz.size() + 1) CHECK(contains(r.why, "inside the magic of the next member"));
        }
    }
}

TEST_CASE("gzip: flipped bytes never produce wrong output, and both backends agree")
{
    std::string const data = mixed(6000, 21);
    std::string const gz = ocistore_test::gzip_compress(data, 6);
    std::size_t errors = 0;
    for (std::size_t i = 0; i < gz.size(); ++i) {
        std::string bad = gz;
        bad[i] = static_cast<char>(bad[i] ^ 0xff);
        std::vector<result> rs;
        for (auto b : gzip_backends()) rs.push_back(decode(bad, layer_compression::gzip, with(b)));
        CAPTURE(i);
        auto const& r = rs.front();
        if (r.ec) {
            ++errors;
            CHECK((r.ec == error::invalid_archive || r.ec == error::truncated));
        } else {
            CHECK(r.out == data); // only header bytes nobody checks (MTIME, XFL, OS, FTEXT)
            CHECK(i < 10);
        }
        for (auto const& o : rs) {
            CHECK(o.ec == r.ec);
            if (!o.ec) CHECK(o.out == r.out);
        }
    }
    CHECK(errors >= gz.size() - 6);
}

TEST_CASE("gzip: data after the last member is refused, zero padding included")
{
    std::string const data = mixed(3000, 2);
    std::string const gz = ocistore_test::gzip_compress(data, 6);
    struct tail {
        std::string bytes;
        error e;
        std::string why;
    };
    // The message shows the bytes read so far (2 to 4 of them, depending on the reads).
    std::vector<tail> const tails = {
        {std::string(1, '\0'), error::invalid_archive, "found 00 where another member or the end of the stream belongs"},
        {std::string(512, '\0'), error::invalid_archive, "found 00 00"},
        {"garbage", error::invalid_archive, "found 67 61"},
        {ocistore_test::zstd_compress("x"), error::invalid_archive, "found 28 b5"},
        {"\x1f", error::truncated, "ends 1 byte after gzip member 1 (1f), inside the magic of the next member"},
        {"\x1f\x8b", error::truncated, "inside gzip member 2"},
        {std::string("\x1f\x8b\x08\x00", 4), error::truncated, "inside gzip member 2"},
        {"\x1f\x8c", error::invalid_archive, "found 1f 8c"},
    };
    for (auto const& t : tails) {
        for (auto b : gzip_backends()) {
            for (std::size_t chunk : {std::size_t(1), unlimited}) {
                CAPTURE(t.why);
                CAPTURE(to_string(b));
                CAPTURE(chunk);
                auto const r = decode(gz + t.bytes, layer_compression::gzip, with(b), chunk);
                CHECK(r.ec == t.e);
                CHECK(contains(r.why, t.why));
                CHECK(r.out == data); // everything before the tail was delivered
                if (t.e == error::invalid_archive && t.bytes[0] != '\x1f')
                    CHECK(contains(r.why, "after gzip member 1, at compressed offset " + std::to_string(gz.size())));
            }
        }
    }
}

TEST_CASE("gzip: both backends decode zlib streams of every level and strategy identically")
{
    std::mt19937_64 rng(99);
    for (int level = 0; level <= 9; ++level) {
        for (int strategy : {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED}) {
            std::string const data = mixed(40000 + rng() % 40000, rng());
            std::string const gz = ocistore_test::gzip_compress(data, level, strategy);
            for (auto b : gzip_backends()) {
                std::size_t const chunk = 1 + rng() % 5000, out = 1 + rng() % 70000;
                CAPTURE(level);
                CAPTURE(strategy);
                CAPTURE(to_string(b));
                CAPTURE(chunk);
                CAPTURE(out);
                auto const r = decode(gz, layer_compression::gzip, with(b), chunk, out);
                REQUIRE_FALSE(r.ec);
                REQUIRE(r.out == data);
            }
        }
    }
}

TEST_CASE("gzip: pigz-style members (sync- and full-flushed blocks) decode in both backends")
{
    std::string const data = mixed(700000, 17);
    for (int flush : {Z_SYNC_FLUSH, Z_FULL_FLUSH}) {
        for (std::size_t every : {std::size_t(1), std::size_t(1000), std::size_t(128 * 1024)}) {
            std::string const input = every == 1 ? data.substr(0, 3000) : data;
            std::string const gz = ocistore_test::gzip_compress(input, 6, Z_DEFAULT_STRATEGY, nullptr, every, flush);
            for (auto b : gzip_backends()) {
                CAPTURE(flush);
                CAPTURE(every);
                CAPTURE(to_string(b));
                auto const r = decode(gz, layer_compression::gzip, with(b), 4093, 65536);
                REQUIRE_FALSE(r.ec);
                CHECK(r.out == input);
                CHECK(r.members == 1);
            }
        }
    }
}

#if defined(OCISTORE_HAS_ISAL)
TEST_CASE("gzip: streams written by ISA-L's own deflate decode in both backends")
{
    std::string const data = mixed(300000, 8);
    for (std::uint32_t level = 0; level <= 3; ++level) {
        std::vector<std::uint8_t> level_buf(ISAL_DEF_LVL3_LARGE);
        isal_zstream z;
        isal_deflate_init(&z);
        z.gzip_flag = IGZIP_GZIP;
        z.level = level;
        z.level_buf = level_buf.data();
        z.level_buf_size = static_cast<std::uint32_t>(level_buf.size());
        z.end_of_stream = 1;
        z.flush = NO_FLUSH;
        std::string out(data.size() + 4096, '\0');
        z.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(data.data()));
        z.avail_in = static_cast<std::uint32_t>(data.size());
        z.next_out = reinterpret_cast<std::uint8_t*>(out.data());
        z.avail_out = static_cast<std::uint32_t>(out.size());
        REQUIRE(isal_deflate(&z) == COMP_OK);
        REQUIRE(z.internal_state.state == ZSTATE_END);
        out.resize(z.total_out);
        for (auto b : gzip_backends()) {
            CAPTURE(level);
            CAPTURE(to_string(b));
            auto const r = decode(out, layer_compression::gzip, with(b), 777, 333);
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == data);
        }
    }
}
#endif

TEST_CASE("gzip: a member over 4 GiB (ISIZE wraps modulo 2^32)")
{
    // The default backend only: zlib needs ~10 s for this (byte-wise distance-1 copies), and
    // its 32-bit ISIZE handling is long established; ISA-L counts in 32 bits internally.
    std::uint64_t const size = (std::uint64_t(4) << 30) + 12345;
    std::string const gz = ocistore_test::gzip_zeros(size);
    for (auto b : {gzip_backends().back()}) {
        CAPTURE(to_string(b));
        memory_source src(gz);
        basic_decompress_source dec(src, layer_compression::gzip, with(b));
        std::vector<std::byte> buf(1 << 20);
        error_code ec;
        std::uint64_t total = 0;
        bool all_zero = true;
        while (std::size_t const n = dec.read_some(buf, ec)) {
            total += n;
            if (total <= buf.size() || total > size - buf.size())
                all_zero = all_zero && std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n),
                                                   [](std::byte x) { return x == std::byte{0}; });
        }
        REQUIRE_FALSE(ec);
        CHECK(total == size);
        CHECK(all_zero);
        CHECK(dec.bytes_in() == gz.size());
    }
}

TEST_CASE("gzip: backend selection")
{
    std::string const gz = ocistore_test::gzip_compress("hello", 6);
    auto const r = decode(gz, layer_compression::gzip);
    REQUIRE_FALSE(r.ec);
    CHECK(r.backend == (isal_available ? gzip_backend::isal : gzip_backend::zlib));
    CHECK(to_string(gzip_backend::automatic) == "automatic");
    CHECK(to_string(gzip_backend::zlib) == "zlib");
    CHECK(to_string(gzip_backend::isal) == "isal");
    auto const isal = decode(gz, layer_compression::gzip, with(gzip_backend::isal));
    if (isal_available) {
        CHECK_FALSE(isal.ec);
        CHECK(isal.out == "hello");
    } else {
        CHECK(isal.ec == error::invalid_argument);
        CHECK(contains(isal.why, "built without ISA-L"));
    }
}

// --------------------------------------------------------------------------------------------
// zstd
// --------------------------------------------------------------------------------------------

TEST_CASE("zstd: round trips against the zstd command")
{
    if (!ocistore_test::has_command("zstd")) {
        MESSAGE("zstd command not found: skipped");
        return;
    }
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(100000), std::size_t(1536 * 1024)}) {
        for (bool random : {false, true}) {
            std::string const data = random ? ocistore_test::random_bytes(size, size) : mixed(size, size);
            for (char const* args : {"-q -1 -c", "-q -19 -c", "-q -3 --no-check -c"}) {
                if (size > 100000 && args[5] == '9') continue; // -19 is slow
                std::string const z = ocistore_test::filter_command(std::string("zstd ") + args, data);
                CAPTURE(size);
                CAPTURE(random);
                CAPTURE(args);
                auto const r = decode(z, layer_compression::zstd);
                REQUIRE_FALSE(r.ec);
                CHECK(r.out == data);
                CHECK(r.members == 1);
            }
        }
    }
    // Several frames, as `cat a.zst b.zst` makes them.
    std::string const a = mixed(200000, 1), b = ocistore_test::random_bytes(3000, 2);
    std::string const cat = ocistore_test::filter_command("zstd -q -c", a) + ocistore_test::filter_command("zstd -q -c", b);
    auto const r = decode(cat, layer_compression::zstd, {}, 4096, 1000);
    REQUIRE_FALSE(r.ec);
    CHECK(r.out == a + b);
    CHECK(r.members == 2);
}

TEST_CASE("zstd: every input chunk size and output read size, frames and skippable frames")
{
    std::string const a = mixed(20000, 31), b = mixed(3000, 32);
    std::string const z = ocistore_test::zstd_skippable_frame("lead") + ocistore_test::zstd_compress(a, 3) +
                          ocistore_test::zstd_skippable_frame(std::string(100, 's'), 15) +
                          ocistore_test::zstd_compress("", 3) + ocistore_test::zstd_compress(b, 19, false) +
                          ocistore_test::zstd_skippable_frame("", 7);
    for (std::size_t chunk = 1; chunk <= 200; ++chunk) {
        CAPTURE(chunk);
        auto const r = decode(z, layer_compression::zstd, {}, chunk);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.out == a + b);
        REQUIRE(r.members == 6);
    }
    for (std::size_t out = 1; out <= 200; ++out) {
        CAPTURE(out);
        auto const r = decode(z, layer_compression::zstd, {}, unlimited, out);
        REQUIRE_FALSE(r.ec);
        REQUIRE(r.out == a + b);
    }
    // A stream of nothing but a skippable frame is a valid, empty stream.
    auto const only = decode(ocistore_test::zstd_skippable_frame("meta"), layer_compression::zstd);
    CHECK_FALSE(only.ec);
    CHECK(only.out.empty());
}

TEST_CASE("zstd: a stream cut at any point is truncated")
{
    std::string const data = mixed(12000, 5);
    std::string const z = ocistore_test::zstd_compress(data, 3);
    for (std::size_t cut = 0; cut < z.size(); ++cut) {
        CAPTURE(cut);
        auto const r = decode(std::string_view(z).substr(0, cut), layer_compression::zstd, {},
                              cut % 16 == 1 ? 1 : cut % 2 ? 100 : unlimited);
        REQUIRE(r.ec == error::truncated);
        CHECK(data.starts_with(r.out));
        if (cut == 0) CHECK(contains(r.why, "zstd stream is empty"));
        else if (cut < 4) CHECK(contains(r.why, "inside a zstd frame (28 b5 2f fd)"));
        else CHECK(contains(r.why, "zstd stream ends inside zstd frame 1"));
    }
    std::string const skip = ocistore_test::zstd_skippable_frame("payload");
    for (std::size_t cut = 1; cut < skip.size(); ++cut) {
        CAPTURE(cut);
        CHECK(decode(std::string_view(skip).substr(0, cut), layer_compression::zstd).ec == error::truncated);
    }
}

TEST_CASE("zstd: flipped bytes never produce wrong output")
{
    std::string const data = mixed(6000, 22);
    std::string const z = ocistore_test::zstd_compress(data, 3);
    std::size_t errors = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
        std::string bad = z;
        bad[i] = static_cast<char>(bad[i] ^ 0xff);
        CAPTURE(i);
        auto const r = decode(bad, layer_compression::zstd);
        if (r.ec) {
            ++errors;
            CHECK((r.ec == error::invalid_archive || r.ec == error::truncated || r.ec == error::limit_exceeded));
            if (r.ec == error::invalid_archive) CHECK(contains(r.why, "zstd"));
        } else {
            CHECK(r.out == data); // e.g. a window descriptor that still fits
        }
    }
    CHECK(errors >= z.size() - 2);
}

TEST_CASE("zstd: data after the last frame is refused")
{
    std::string const data = mixed(3000, 3);
    std::string const z = ocistore_test::zstd_compress(data, 3);
    struct tail {
        std::string bytes;
        error e;
        std::string why;
    };
    std::vector<tail> const tails = {
        {std::string(64, '\0'), error::invalid_archive, "after zstd frame 1, at compressed offset"},
        {ocistore_test::gzip_compress("x"), error::invalid_archive, "found 1f 8b"},
        {"\x28\xb5", error::truncated, "inside the magic of the next frame"},
        {"\x5a\x2a\x4d", error::truncated, "inside the magic of the next frame"},
        {"\x28\xb5\x2f\xfd", error::truncated, "inside zstd frame 2"},
    };
    for (auto const& t : tails) {
        for (std::size_t chunk : {std::size_t(1), unlimited}) {
            CAPTURE(t.why);
            CAPTURE(chunk);
            auto const r = decode(z + t.bytes, layer_compression::zstd, {}, chunk);
            CHECK(r.ec == t.e);
            CHECK(contains(r.why, t.why));
            CHECK(r.out == data);
        }
    }
}

TEST_CASE("zstd: frames needing a window over zstd_window_log_max are limit_exceeded")
{
    std::string const data = mixed(100000, 4);
    std::string const z = ocistore_test::zstd_compress(data, 3, true, 28);
    decompress_options small;
    small.zstd_window_log_max = 27;
    auto const refused = decode(z, layer_compression::zstd, small);
    CHECK(refused.ec == error::limit_exceeded);
    CHECK(contains(refused.why, "zstd frame 1"));
    CHECK(contains(refused.why, "window larger than 2^27"));
    CHECK(contains(refused.why, "zstd_window_log_max"));
    auto const accepted = decode(z, layer_compression::zstd); // default 29
    REQUIRE_FALSE(accepted.ec);
    CHECK(accepted.out == data);
    decompress_options silly;
    silly.zstd_window_log_max = 99;
    auto const bad = decode(z, layer_compression::zstd, silly);
    CHECK(bad.ec == error::invalid_argument);
    CHECK(contains(bad.why, "window log limit 99"));
}

// --------------------------------------------------------------------------------------------
// Common behaviour
// --------------------------------------------------------------------------------------------

TEST_CASE("magic mismatches are invalid_archive in both directions, never a guess")
{
    std::string const data = mixed(4000, 6);
    std::string const gz = ocistore_test::gzip_compress(data), zs = ocistore_test::zstd_compress(data);

    auto r = decode(zs, layer_compression::gzip);
    CHECK(r.ec == error::invalid_archive);
    CHECK(contains(r.why, "gzip stream does not start with the gzip magic 1f 8b: found 28 b5 2f fd (the zstd magic)"));

    r = decode(gz, layer_compression::zstd);
    CHECK(r.ec == error::invalid_archive);
    CHECK(contains(r.why, "zstd stream does not start with a zstd frame (28 b5 2f fd)"));
    CHECK(contains(r.why, "found 1f 8b 08 00 (the gzip magic)"));

    r = decode(data, layer_compression::gzip);
    CHECK(r.ec == error::invalid_archive);
    CHECK(contains(r.why, "gzip stream does not start with the gzip magic 1f 8b: found " + [&] {
        char b[4];
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(data[0]));
        return std::string(b);
    }()));

    r = decode(gz, layer_compression::none);
    CHECK(r.ec == error::invalid_archive);
    CHECK(contains(r.why, "uncompressed layer starts with 1f 8b 08 00 (the gzip magic)"));
    CHECK(r.out.empty());

    r = decode(zs, layer_compression::none);
    CHECK(r.ec == error::invalid_archive);
    CHECK(contains(r.why, "uncompressed layer starts with 28 b5 2f fd (the zstd magic)"));

    // Reading one byte at a time changes nothing.
    CHECK(decode(gz, layer_compression::none, {}, 1).ec == error::invalid_archive);
    CHECK(decode(zs, layer_compression::gzip, {}, 1).ec == error::invalid_archive);

    // Short streams: a prefix of the magic is truncated, anything else invalid.
    CHECK(decode("", layer_compression::gzip).ec == error::truncated);
    CHECK(contains(decode("", layer_compression::gzip).why, "gzip stream is empty: expected the gzip magic 1f 8b"));
    CHECK(decode("\x1f", layer_compression::gzip).ec == error::truncated);
    CHECK(contains(decode("\x1f", layer_compression::gzip).why, "gzip stream ends after 1 byte (1f)"));
    CHECK(decode("x", layer_compression::gzip).ec == error::invalid_archive);
    CHECK(decode("\x28\xb5\x2f", layer_compression::zstd).ec == error::truncated);
    CHECK(decode("\x28\xb5\x2e", layer_compression::zstd).ec == error::invalid_archive);

    // Uncompressed streams that merely begin like a magic pass through.
    for (std::string const& s : {std::string(""), std::string("\x1f"), std::string("\x28\xb5\x2f"),
                                std::string("\x1f\x8c rest"), std::string("\x28\xb5\x2f\xfe")}) {
        auto const p = decode(s, layer_compression::none, {}, 1);
        CHECK_FALSE(p.ec);
        CHECK(p.out == s);
    }
}

TEST_CASE("uncompressed streams pass through at any chunking")
{
    std::string const data = mixed(100000, 13);
    for (std::size_t chunk : {std::size_t(1), std::size_t(3), std::size_t(64), std::size_t(65), std::size_t(4096), unlimited}) {
        for (std::size_t out : {std::size_t(1), std::size_t(7), std::size_t(100), std::size_t(1 << 20)}) {
            CAPTURE(chunk);
            auto const r = decode(data, layer_compression::none, {}, chunk, out);
            REQUIRE_FALSE(r.ec);
            CHECK(r.out == data);
            CHECK(r.bytes_in == data.size());
            CHECK(r.members == 0);
        }
    }
}

TEST_CASE("max_output_bytes: exactly the limit passes, one byte more is limit_exceeded")
{
    std::string const data = mixed(70000, 14);
    struct stream {
        layer_compression c;
        gzip_backend b;
        std::string s;
    };
    std::vector<stream> streams = {
        {layer_compression::none, gzip_backend::automatic, data},
        {layer_compression::zstd, gzip_backend::automatic, ocistore_test::zstd_compress(data)},
    };
    for (auto b : gzip_backends()) streams.push_back({layer_compression::gzip, b, ocistore_test::gzip_compress(data)});
    for (auto const& [c, b, s] : streams) {
        decompress_options o = with(b);
        for (std::size_t chunk : {std::size_t(1), unlimited}) {
            CAPTURE(to_string(c));
            CAPTURE(to_string(o.backend));
            CAPTURE(chunk);
            o.max_output_bytes = data.size();
            auto const ok = decode(s, c, o, chunk, 1000);
            REQUIRE_FALSE(ok.ec);
            CHECK(ok.out == data);
            o.max_output_bytes = data.size() - 1;
            auto const over = decode(s, c, o, chunk, 1000);
            CHECK(over.ec == error::limit_exceeded);
            CHECK(contains(over.why, "exceeds max_output_bytes (" + std::to_string(data.size() - 1) + " bytes)"));
            CHECK(over.out == data.substr(0, data.size() - 1));
        }
    }
}

TEST_CASE("a decompression bomb stops at max_output_bytes without reading it all")
{
    std::uint64_t const gib = std::uint64_t(1) << 30;
    std::string const gz = ocistore_test::gzip_zeros(gib);
    std::string const zs = ocistore_test::zstd_zeros(gib);
    CHECK(gz.size() < 8 << 20);
    CHECK(zs.size() < 1 << 20);
    std::uint64_t const limit = 16 << 20;
    auto run = [&](std::string const& s, layer_compression c, decompress_options o) {
        o.max_output_bytes = limit;
        memory_source src(s);
        basic_decompress_source dec(src, c, o);
        std::vector<std::byte> buf(64 * 1024); // the only output memory
        error_code ec;
        std::string why;
        while (dec.read_some(buf, ec, &why)) {
        }
        CHECK(ec == error::limit_exceeded);
        CHECK(contains(why, "exceeds max_output_bytes (16777216 bytes)"));
        CHECK(dec.bytes_out() == limit);
        if (c == layer_compression::gzip) CHECK(dec.bytes_in() < s.size() / 2);
    };
    for (auto b : gzip_backends()) {
        CAPTURE(to_string(b));
        run(gz, layer_compression::gzip, with(b));
    }
    run(zs, layer_compression::zstd, {});
    // Unlimited, the same streams are valid.
    auto const full = decode(ocistore_test::gzip_zeros(3 << 20), layer_compression::gzip);
    REQUIRE_FALSE(full.ec);
    CHECK(full.out == std::string(3 << 20, '\0'));
}

TEST_CASE("source failures pass through with their own code, failures are sticky")
{
    std::string const data = mixed(300000, 15);
    std::string const gz = ocistore_test::gzip_compress(data);
    auto const io = std::make_error_code(std::errc::io_error);
    for (auto c : {layer_compression::gzip, layer_compression::none}) {
        std::string const& s = c == layer_compression::gzip ? gz : data;
        memory_source src(s, 1000);
        src.fail_at(5000, io);
        basic_decompress_source dec(src, c);
        std::vector<std::byte> buf(4096);
        error_code ec;
        std::string why;
        std::string out;
        while (std::size_t const n = dec.read_some(buf, ec, &why)) out.append(reinterpret_cast<char*>(buf.data()), n);
        CAPTURE(to_string(c));
        CHECK(ec == io);
        CHECK(contains(why, "reading the layer stream at offset 5000"));
        CHECK(data.starts_with(out));
        std::size_t const reads = src.reads();
        error_code again;
        std::string why2;
        CHECK(dec.read_some(buf, again, &why2) == 0);
        CHECK(again == io);
        CHECK(why2 == why);
        CHECK(src.reads() == reads); // the source is not touched again
    }
    // A corrupt stream stays failed too.
    std::string bad = gz;
    bad[gz.size() / 2] ^= 0x55;
    memory_source src(bad);
    basic_decompress_source dec(src, layer_compression::gzip);
    std::vector<std::byte> buf(1 << 20);
    error_code ec;
    while (dec.read_some(buf, ec)) {
    }
    CHECK(ec == error::invalid_archive);
    error_code again;
    CHECK(dec.read_some(buf, again) == 0);
    CHECK(again == error::invalid_archive);
}

TEST_CASE("layers nest: a gzip stream inside a zstd stream")
{
    std::string const data = mixed(50000, 16);
    std::string const nested = ocistore_test::zstd_compress(ocistore_test::gzip_compress(data));
    memory_source src(nested, 333);
    basic_decompress_source outer(src, layer_compression::zstd);
    basic_decompress_source inner(outer, layer_compression::gzip);
    std::string out;
    std::vector<std::byte> buf(1000);
    error_code ec;
    while (std::size_t const n = inner.read_some(buf, ec)) out.append(reinterpret_cast<char*>(buf.data()), n);
    REQUIRE_FALSE(ec);
    CHECK(out == data);
    CHECK(inner.bytes_in() == outer.bytes_out());
    CHECK(outer.bytes_in() == nested.size());
    CHECK(&inner.source() == &outer);
    CHECK(inner.compression() == layer_compression::gzip);
}
