// Conformance suite for the *ArtifactBuilder* concept: instantiate with
// TEST_CASE_TEMPLATE_INVOKE(artifact_builder_conformance, YourBuilder) after specialising
// ocistore_test::artifact_builder_traits<YourBuilder>. Drives the builder as the store does
// (support/builder_driver.hpp: tar reader -> sink -> finish -> commit -> compose) and checks:
// kind and identity stability, nothing held before commit, commit then has_layer/layer (also
// from a fresh builder over the same root), abandoned sinks and prepared layers discarding
// their temporaries, held layers being skipped, layers built concurrently on threads,
// compose order and whiteouts, another identity not seeing the artifacts, sticky failures.
// Uses only the concept's expressions, plus the traits.
#pragma once

#include <ocistore/concepts.hpp>
#include <ocistore/error.hpp>

#include <support/builder_driver.hpp>
#include <support/memory_source.hpp>
#include <support/tar_writer.hpp>
#include <support/temp_dir.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ocistore_test {

/** Specialise per builder type B:
    - `static B make(std::filesystem::path const& root)`: a builder whose artifacts and
      temporaries live under `root`;
    - `static std::optional<B> make_other(std::filesystem::path const& root)`: one over the same
      root whose identity differs (other options), or nullopt when B has no options;
    - `static constexpr bool holds_artifacts`: false for builders that hold nothing (the
      checks then expect has_layer() false and layer()/image() empty at all times);
    - `static ocistore::digest diff_id(typename B::layer_result const&)`;
    - `static std::optional<std::string> read_file(typename B::image_result const&, std::string const& path)`:
      the content of a regular file of the composed image, empty when absent (only called
      when `holds_artifacts`);
    - `static std::size_t temporaries(std::filesystem::path const& root)`: how many
      temporaries B left under `root` (0 once every sink and prepared layer is gone). */
template <class B> struct artifact_builder_traits;

/// A small layer: `files` (path, content) plus `whiteouts` (paths) as `.wh.` entries.
inline std::string conformance_layer(std::vector<std::pair<std::string, std::string>> const& files,
                                     std::vector<std::string> const& whiteouts = {})
{
    tar_writer w;
    w.dir("dir/");
    for (auto const& [path, content] : files) w.file(path, content);
    for (auto const& p : whiteouts) {
        auto const slash = p.rfind('/');
        w.file(slash == std::string::npos ? ".wh." + p : p.substr(0, slash + 1) + ".wh." + p.substr(slash + 1), "");
    }
    w.end();
    return w.str();
}

} // namespace ocistore_test

TEST_CASE_TEMPLATE_DEFINE("artifact_builder conformance", B, artifact_builder_conformance)
{
    using namespace ocistore;
    using namespace ocistore_test;
    using traits = artifact_builder_traits<B>;
    static_assert(artifact_builder<B>);
    constexpr bool holds = traits::holds_artifacts;

    temp_dir dir("artifact-builder");
    std::filesystem::path const root = dir / "store";
    std::filesystem::create_directories(root);
    B b = traits::make(root);
    error_code ec = error::io_error; // every successful call must clear it

    std::string const lower = conformance_layer({{"dir/f", "lower"}, {"dir/gone", "g"}, {"keep", "k"}});
    std::string const upper = conformance_layer({{"dir/f", "upper"}, {"new", "n"}}, {"dir/gone"});
    digest const lower_id = diff_id_of(lower), upper_id = diff_id_of(upper);

    SUBCASE("kind and identity are non-empty and stable; other options give another identity")
    {
        CHECK_FALSE(std::string_view(B::kind).empty());
        std::string const id(std::string_view(std::as_const(b).identity()));
        CHECK_FALSE(id.empty());
        B again = traits::make(root);
        CHECK(std::string_view(std::as_const(again).identity()) == id);
        B moved = std::move(again);
        CHECK(std::string_view(std::as_const(moved).identity()) == id);
        if (auto other = traits::make_other(root)) CHECK(std::string_view(std::as_const(*other).identity()) != id);
    }

    SUBCASE("nothing is held before commit; after it, has_layer and layer agree")
    {
        CHECK_FALSE(b.has_layer(lower_id, ec));
        CHECK_FALSE(ec);
        ec = error::io_error;
        CHECK_FALSE(b.layer(lower_id, ec).has_value());
        CHECK_FALSE(ec);
        ec = error::io_error;
        auto prepared = feed_layer(b, layer_info{lower_id, 0}, lower, ec);
        REQUIRE(prepared);
        CHECK_FALSE(ec);
        CHECK_FALSE(b.has_layer(lower_id, ec)); // finished but not verified: not held yet
        ec = error::io_error;
        auto result = b.commit_layer(std::move(*prepared), ec);
        CHECK_FALSE(ec);
        CHECK(traits::diff_id(result) == lower_id);
        ec = error::io_error;
        CHECK(b.has_layer(lower_id, ec) == holds);
        CHECK_FALSE(ec);
        auto held = b.layer(lower_id, ec);
        CHECK(held.has_value() == holds);
        if (held) CHECK(traits::diff_id(*held) == lower_id);
        B fresh = traits::make(root); // what is held persists beyond the builder object
        CHECK(fresh.has_layer(lower_id, ec) == holds);
        CHECK_FALSE(b.has_layer(upper_id, ec));
        CHECK(traits::temporaries(root) == 0);
    }

    SUBCASE("destroying a sink or a prepared layer discards what it wrote")
    {
        {
            auto sink = b.begin_layer(layer_info{lower_id, 0}, ec);
            REQUIRE_FALSE(ec);
            tar_entry e;
            e.path = "partial";
            e.size = 3;
            memory_source data("abc");
            sink.add_entry(e, data, ec);
            CHECK_FALSE(ec);
            auto moved = std::move(sink); // the moved-from sink owns nothing
        }
        CHECK(traits::temporaries(root) == 0);
        {
            auto prepared = feed_layer(b, layer_info{lower_id, 0}, lower, ec);
            REQUIRE(prepared);
            auto moved = std::move(*prepared);
        }
        CHECK(traits::temporaries(root) == 0);
        CHECK_FALSE(b.has_layer(lower_id, ec));
        CHECK_FALSE(ec);
    }

    SUBCASE("a held layer is skipped: the store does not feed it again")
    {
        digest const key = diff_id_of("image");
        std::size_t skipped = 0;
        build_image(b, key, {lower, upper}, &skipped);
        CHECK(skipped == 0);
        skipped = 0;
        auto image = build_image(b, key, {lower, upper}, &skipped);
        CHECK(skipped == (holds ? 2u : 0u));
        if constexpr (holds) {
            CHECK(traits::read_file(image, "dir/f") == "upper");
            auto again = b.image(key, ec);
            REQUIRE(again);
            CHECK(traits::read_file(*again, "keep") == "k");
        } else {
            CHECK_FALSE(b.image(key, ec).has_value());
        }
        CHECK_FALSE(ec);
        CHECK(traits::temporaries(root) == 0);
    }

    SUBCASE("layers build concurrently on several threads")
    {
        constexpr int n = 4;
        std::vector<std::string> tars;
        for (int i = 0; i < n; ++i) {
            std::vector<std::pair<std::string, std::string>> files{{"dir/top", "layer " + std::to_string(i)}};
            for (int j = 0; j < 50; ++j)
                files.emplace_back("dir/l" + std::to_string(i) + "/f" + std::to_string(j), std::string(1000 + j, 'x'));
            tars.push_back(conformance_layer(files));
        }
        std::vector<std::optional<typename B::layer_result>> results(n);
        std::vector<std::string> failures(n);
        {
            std::vector<std::thread> threads;
            for (int i = 0; i < n; ++i)
                threads.emplace_back([&, i] {
                    try {
                        results[i].emplace(build_layer(b, tars[i], static_cast<std::size_t>(i)));
                    } catch (std::exception const& e) {
                        failures[i] = e.what();
                    }
                });
            for (auto& t : threads) t.join();
        }
        std::vector<typename B::layer_result> ordered;
        for (int i = 0; i < n; ++i) {
            CAPTURE(i);
            CHECK(failures[i] == "");
            REQUIRE(results[i]);
            CHECK(traits::diff_id(*results[i]) == diff_id_of(tars[i]));
            CHECK(b.has_layer(diff_id_of(tars[i]), ec) == holds);
            ordered.push_back(*results[i]);
        }
        auto image = b.compose(diff_id_of("concurrent"), std::span<typename B::layer_result const>(ordered), ec);
        CHECK_FALSE(ec);
        if constexpr (holds) {
            CHECK(traits::read_file(image, "dir/top") == "layer 3");
            CHECK(traits::read_file(image, "dir/l0/f49") == std::string(1049, 'x'));
        }
        CHECK(traits::temporaries(root) == 0);
    }

    SUBCASE("compose applies the layers in the order given, with whiteouts")
    {
        auto lo = build_layer(b, lower, 0);
        auto up = build_layer(b, upper, 1);
        std::vector<typename B::layer_result> order{lo, up};
        auto image = b.compose(diff_id_of("lower-upper"), std::span<typename B::layer_result const>(order), ec);
        CHECK_FALSE(ec);
        std::vector<typename B::layer_result> reversed{up, lo};
        auto image2 = b.compose(diff_id_of("upper-lower"), std::span<typename B::layer_result const>(reversed), ec);
        CHECK_FALSE(ec);
        if constexpr (holds) {
            CHECK(traits::read_file(image, "dir/f") == "upper");
            CHECK(traits::read_file(image, "dir/gone") == std::nullopt);
            CHECK(traits::read_file(image, "keep") == "k");
            CHECK(traits::read_file(image, "new") == "n");
            CHECK(traits::read_file(image2, "dir/f") == "lower");
            CHECK(traits::read_file(image2, "dir/gone") == "g");
            CHECK(b.image(diff_id_of("lower-upper"), ec).has_value());
        }
        std::vector<typename B::layer_result> none;
        b.compose(diff_id_of("empty"), std::span<typename B::layer_result const>(none), ec);
        CHECK_FALSE(ec);
        CHECK(traits::temporaries(root) == 0);
    }

    SUBCASE("a builder with another identity does not hold these artifacts")
    {
        auto lo = build_layer(b, lower);
        std::vector<typename B::layer_result> one{lo};
        b.compose(diff_id_of("mine"), std::span<typename B::layer_result const>(one), ec);
        REQUIRE_FALSE(ec);
        if (auto other = traits::make_other(root)) {
            CHECK_FALSE(other->has_layer(lower_id, ec));
            CHECK_FALSE(other->layer(lower_id, ec).has_value());
            CHECK_FALSE(other->image(diff_id_of("mine"), ec).has_value());
            CHECK_FALSE(ec);
            CHECK(b.has_layer(lower_id, ec) == holds); // still held under its own identity
        }
    }

    SUBCASE("a failure of the data source is sticky and reported by finish")
    {
        auto sink = b.begin_layer(layer_info{lower_id, 0}, ec);
        tar_entry e;
        e.path = "f";
        e.size = 100;
        std::string const bytes(100, 'x');
        memory_source data(bytes, 10);
        data.fail_at(40, make_error_code(error::diff_id_mismatch));
        sink.add_entry(e, data, ec);
        CHECK(ec == error::diff_id_mismatch);
        tar_entry d;
        d.path = "d";
        d.type = entry_type::directory;
        sink.add_entry(d, byte_source_ref{}, ec);
        CHECK(ec == error::diff_id_mismatch);
        auto prepared = sink.finish(ec);
        CHECK(ec == error::diff_id_mismatch);
        CHECK_FALSE(b.has_layer(lower_id, ec));
    }
    CHECK(traits::temporaries(root) == 0);
}
