#include <ocistore/builder/null_builder.hpp>

#include <ocistore/concepts.hpp>

#include <support/builder_driver.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ocistore;
using ocistore_test::memory_source;

static_assert(artifact_builder<null_builder>);
static_assert(null_builder::kind == "none");

namespace {

std::string sample_layer()
{
    ocistore_test::tar_writer w;
    w.dir("etc");
    w.file("etc/hosts", "127.0.0.1 localhost\n");
    w.file("big", std::string(100000, 'b'));
    w.symlink("link", "/etc/hosts");
    w.hardlink("etc/hosts2", "etc/hosts");
    w.file(".wh.gone", "");
    w.end();
    return w.str();
}

} // namespace

TEST_CASE("null_builder sinks read every byte of entry data and count it")
{
    null_builder b;
    std::string const tar = sample_layer();
    digest const id = ocistore_test::diff_id_of(tar);
    error_code ec = error::io_error;
    auto prepared = ocistore_test::feed_layer(b, layer_info{id, 3}, tar, ec, nullptr, 777);
    REQUIRE(prepared);
    CHECK_FALSE(ec);
    CHECK(prepared->diff_id == id);
    CHECK(prepared->entries == 6);
    CHECK(prepared->bytes == 20 + 100000);
    auto result = b.commit_layer(std::move(*prepared), ec);
    CHECK_FALSE(ec);
    CHECK(result == null_builder::layer_result{id, 6, 100020});
}

TEST_CASE("a sink drains a source that is not a tar reader to its end")
{
    null_builder b;
    error_code ec;
    auto sink = b.begin_layer(layer_info{ocistore_test::diff_id_of("x"), 0}, ec);
    std::string const bytes(5000, 'q');
    memory_source data(bytes, 10);
    tar_entry e;
    e.path = "f";
    e.size = 5000;
    sink.add_entry(e, data, ec);
    CHECK_FALSE(ec);
    CHECK(data.position() == 5000);
    sink.add_entry(tar_entry{}, byte_source_ref{}, ec); // an entry without data
    CHECK_FALSE(ec);
    auto p = sink.finish(ec);
    CHECK(p.entries == 2);
    CHECK(p.bytes == 5000);
}

TEST_CASE("null_builder holds nothing, so it never makes the store skip a layer")
{
    null_builder b;
    std::string const tar = sample_layer();
    digest const id = ocistore_test::diff_id_of(tar);
    error_code ec = error::io_error;
    CHECK_FALSE(b.has_layer(id, ec));
    CHECK_FALSE(ec);
    ocistore_test::build_layer(b, tar);
    ec = error::io_error;
    CHECK_FALSE(b.has_layer(id, ec)); // even right after a commit
    CHECK_FALSE(ec);
    ec = error::io_error;
    CHECK_FALSE(b.layer(id, ec).has_value());
    CHECK_FALSE(ec);
    CHECK_FALSE(b.has_layer(id));

    std::size_t skipped = 0;
    auto image = ocistore_test::build_image(b, id, {tar, tar}, &skipped);
    CHECK(skipped == 0);
    CHECK(image.layers == std::vector<digest>{id, id});
    ec = error::io_error;
    CHECK_FALSE(b.image(id, ec).has_value());
    CHECK_FALSE(ec);
}

TEST_CASE("a source failure is sticky: later entries and finish report it")
{
    null_builder b;
    error_code ec;
    auto sink = b.begin_layer(layer_info{ocistore_test::diff_id_of("x"), 0}, ec);
    memory_source data("abcdef", 2);
    data.fail_at(3, make_error_code(error::digest_mismatch));
    sink.add_entry(tar_entry{}, data, ec);
    CHECK(ec == error::digest_mismatch);
    sink.add_entry(tar_entry{}, byte_source_ref{}, ec);
    CHECK(ec == error::digest_mismatch);
    auto p = sink.finish(ec);
    CHECK(ec == error::digest_mismatch);
    CHECK(p.entries == 0);
    CHECK_THROWS_AS(sink.finish(), system_error);
}

TEST_CASE("a finished sink refuses more entries")
{
    null_builder b;
    auto sink = b.begin_layer(layer_info{ocistore_test::diff_id_of("x"), 0});
    sink.add_entry(tar_entry{}, byte_source_ref{});
    sink.finish();
    error_code ec;
    sink.add_entry(tar_entry{}, byte_source_ref{}, ec);
    CHECK(ec == error::invalid_argument);
    try {
        sink.finish();
        FAIL("finish() twice must throw");
    } catch (system_error const& e) {
        CHECK(e.code() == error::invalid_argument);
        CHECK(std::string(e.what()).find("null_builder: finish") != std::string::npos);
    }
}

TEST_CASE("identity is constant and compose keeps the order it was given")
{
    null_builder a, b;
    CHECK(a.identity() == b.identity());
    CHECK(a.identity() == "null_builder/1");
    digest const x = ocistore_test::diff_id_of("x"), y = ocistore_test::diff_id_of("y");
    std::vector<null_builder::layer_result> layers{{y, 0, 0}, {x, 0, 0}};
    auto image = a.compose(x, layers);
    CHECK(image.key == x);
    CHECK(image.layers == std::vector<digest>{y, x});
}

TEST_CASE("artifact_paths: a null builder publishes no file")
{
    null_builder const b;
    digest const x = ocistore_test::diff_id_of("x");
    CHECK(b.artifact_paths(null_builder::layer_result{x, 3, 4}).empty());
    CHECK(b.artifact_paths(null_builder::image_result{x, {x}}).empty());
}
