#include <ocistore/ingest.hpp>

#include <ocistore/builder/null_builder.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>

#include <support/compress.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>

#include <doctest/doctest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;
using ocistore_test::tar_writer;

namespace {

/// Records every entry and its full content.
struct recording_sink {
    std::map<std::string, std::string> files;
    std::vector<std::string> order;
    void add_entry(tar_entry const& e, byte_source_ref data, error_code& ec)
    {
        order.push_back(e.path);
        std::string content;
        std::vector<std::byte> buf(4096);
        while (std::size_t n = data.read_some(buf, ec)) content.append(reinterpret_cast<char const*>(buf.data()), n);
        if (e.type == entry_type::regular) files[e.path] = content;
    }
};

/// Reads nothing: ingest_layer must still hash every byte.
struct lazy_sink {
    int entries = 0;
    void add_entry(tar_entry const&, byte_source_ref, error_code&) { ++entries; }
};

/// Fails on the named entry, with a reason.
struct failing_sink {
    std::string fail_on;
    void add_entry(tar_entry const& e, byte_source_ref, error_code& ec, std::string* why)
    {
        if (e.path == fail_on) {
            ec = make_error_code(error::unsupported_entry);
            if (why) *why = "sink refuses " + e.path;
        }
    }
};

std::string sample_tar()
{
    tar_writer w;
    w.dir("etc");
    w.file("etc/hostname", "ocistore\n");
    w.file("usr/lib/big.bin", ocistore_test::random_bytes(3 << 20, 9));
    w.symlink("lib", "usr/lib");
    w.file("usr/share/doc/readme", ocistore_test::text_bytes(200'000, 3));
    w.end();
    // Zero padding after the end blocks (tar pads to its record size; 200 KiB here, more than
    // the reader's read-ahead): part of the diff_id, so it must be read and hashed.
    w.raw(std::string(200 * 1024, '\0'));
    return w.str();
}

std::string compressed(std::string const& tar, layer_compression c)
{
    switch (c) {
    case layer_compression::gzip: return ocistore_test::gzip_compress(tar);
    case layer_compression::zstd: return ocistore_test::zstd_compress(tar);
    case layer_compression::none: break;
    }
    return tar;
}

} // namespace

TEST_CASE("one pass: entries reach the sink and both digests are measured and verified")
{
    std::string const tar = sample_tar();
    for (auto c : {layer_compression::gzip, layer_compression::zstd, layer_compression::none})
        for (bool pipelined : {true, false})
            for (std::size_t chunk : {std::size_t{4093}, std::size_t{1} << 20}) {
                CAPTURE(to_string(c));
                CAPTURE(pipelined);
                CAPTURE(chunk);
                std::string const blob = compressed(tar, c);
                ingest_options o;
                o.compression = c;
                o.pipelined = pipelined;
                o.expected_blob = digest_of<sha256_hasher>(blob);
                o.expected_size = blob.size();
                o.expected_diff_id = digest_of<sha256_hasher>(tar);
                o.prefetch = {64 * 1024, 3};
                memory_source src(blob, chunk);
                recording_sink sink;
                error_code ec;
                std::string why;
                auto r = ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
                REQUIRE_MESSAGE(!ec, why);
                CHECK(r.blob_digest == *o.expected_blob);
                CHECK(r.blob_size == blob.size());
                CHECK(r.diff_id == *o.expected_diff_id);
                CHECK(r.uncompressed_size == tar.size());  // the end blocks are hashed too
                CHECK(r.entries == 5);
                CHECK(sink.order == std::vector<std::string>{"etc", "etc/hostname", "usr/lib/big.bin", "lib",
                                                             "usr/share/doc/readme"});
                CHECK(sink.files["etc/hostname"] == "ocistore\n");
                CHECK(sink.files["usr/lib/big.bin"] == ocistore_test::random_bytes(3 << 20, 9));
            }
}

TEST_CASE("a sink that reads nothing still gets every byte hashed")
{
    std::string const tar = sample_tar();
    std::string const blob = ocistore_test::gzip_compress(tar);
    memory_source src(blob);
    lazy_sink sink;
    ingest_options o;
    o.expected_diff_id = digest_of<sha256_hasher>(tar);
    o.expected_blob = digest_of<sha256_hasher>(blob);
    auto r = ingest_layer<sha256_hasher>(src, sink, o);
    CHECK(sink.entries == 5);
    CHECK(r.uncompressed_size == tar.size());
}

TEST_CASE("verification failures name what differs, in size, blob, diff_id order")
{
    std::string const tar = sample_tar();
    std::string const blob = ocistore_test::gzip_compress(tar);
    auto run = [&](ingest_options o, std::string& why) {
        memory_source src(blob);
        lazy_sink sink;
        error_code ec;
        (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
        return ec;
    };
    digest const other = digest_of<sha256_hasher>("something else");
    std::string why;
    ingest_options o;
    o.expected_size = blob.size() + 1;
    o.expected_blob = other;
    CHECK(run(o, why) == error::size_mismatch);
    CHECK(why.find(std::to_string(blob.size())) != std::string::npos);
    o.expected_size.reset();
    CHECK(run(o, why) == error::digest_mismatch);
    CHECK(why.find(other.str()) != std::string::npos);
    CHECK(why.find(digest_of<sha256_hasher>(blob).str()) != std::string::npos);
    o.expected_blob.reset();
    o.expected_diff_id = other;
    CHECK(run(o, why) == error::diff_id_mismatch);
    CHECK(why.find(digest_of<sha256_hasher>(tar).str()) != std::string::npos);
    CHECK(error_code(error::diff_id_mismatch) == condition::integrity);
    memory_source src(blob);
    lazy_sink sink;
    CHECK_THROWS_WITH_AS(ingest_layer<sha256_hasher>(src, sink, o), doctest::Contains("config says diff_id"),
                         system_error);
}

TEST_CASE("broken streams fail with the failing stage's reason, pipelined or not")
{
    std::string const tar = sample_tar();
    std::string const blob = ocistore_test::gzip_compress(tar);
    for (bool pipelined : {true, false}) {
        CAPTURE(pipelined);
        ingest_options o;
        o.pipelined = pipelined;
        error_code ec;
        std::string why;
        {  // truncated download
            memory_source src(std::string_view(blob).substr(0, blob.size() / 2));
            lazy_sink sink;
            (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::truncated);
            CHECK_FALSE(why.empty());
        }
        {  // not gzip at all
            memory_source src(tar);
            lazy_sink sink;
            (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::invalid_archive);
            CHECK(why.find("gzip") != std::string::npos);
        }
        {  // the transport fails mid-body
            memory_source src(blob);
            src.fail_at(1000, make_error_code(error::connection_failed));
            lazy_sink sink;
            auto r = ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::connection_failed);
            CHECK(ec == condition::transient);
            CHECK(r.blob_size == 1000);  // what was read, for a resume
        }
        {  // garbage after the last gzip member: only a full drain sees it
            std::string const tailed = blob + "garbage";
            memory_source src(tailed);
            lazy_sink sink;
            (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::invalid_archive);
        }
        {  // the sink refuses an entry: ingestion stops there
            memory_source src(blob);
            failing_sink sink{"usr/lib/big.bin"};
            (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::unsupported_entry);
            CHECK(why == "sink refuses usr/lib/big.bin");
        }
        {  // hostile tar inside a valid gzip
            tar_writer w;
            w.file("../escape", "x");
            w.end();
            std::string const evil = ocistore_test::gzip_compress(w.str());
            memory_source src(evil);
            lazy_sink sink;
            (void)ingest_layer<sha256_hasher>(src, sink, o, ec, &why);
            CHECK(ec == error::unsafe_path);
            CHECK(why.find("..") != std::string::npos);
        }
    }
}

TEST_CASE("an artifact builder's layer sink is an entry sink")
{
    std::string const tar = sample_tar();
    std::string const blob = ocistore_test::zstd_compress(tar);
    null_builder b;
    error_code ec;
    auto sink = b.begin_layer(layer_info{digest_of<sha256_hasher>(tar), 0}, ec);
    REQUIRE_FALSE(ec);
    memory_source src(blob);
    ingest_options o;
    o.compression = layer_compression::zstd;
    o.expected_diff_id = digest_of<sha256_hasher>(tar);
    auto r = ingest_layer<sha256_hasher>(src, sink, o);
    auto prepared = sink.finish(ec);
    REQUIRE_FALSE(ec);
    CHECK(prepared.entries == r.entries);
}
