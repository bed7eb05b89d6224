// basic_image_store instantiated with the policy archetypes: the store relies on nothing but the concepts.
#include <ocistore/basic_image_store.hpp>

#include <support/archetypes.hpp>
#include <support/temp_dir.hpp>
#include <support/test_image.hpp>

#include <doctest/doctest.h>

using namespace ocistore;
using namespace ocistore_test;

namespace {

using archetype_store =
    basic_image_store<transport_archetype, hasher_archetype, store_lock_archetype, artifact_builder_archetype>;

static_assert(!std::is_move_constructible_v<transport_archetype>);
static_assert(!std::is_default_constructible_v<archetype_store::transport_type>);

} // namespace

TEST_CASE("a store of archetypes pulls, answers from its cache, lists, removes and prunes")
{
    // The archetype transport serves fixed content: take it from a published test image.
    ocistore::test::memory_transport source;
    auto img = publish_image(source, "lib/app", "v1", {{make_layer_tar(1)}, {make_layer_tar(2), layer_compression::zstd}});
    transport_archetype_content content;
    content.manifests["v1"] = fetched_manifest{img.manifest, std::string(media_types::oci_manifest), std::nullopt};
    content.blobs[img.config_digest] = img.config;
    for (std::size_t i = 0; i < img.blobs.size(); ++i) content.blobs[img.blobs[i]] = img.blob_bytes[i];

    temp_dir root;
    archetype_store store(root.path(), store_lock_archetype(archetype_tag{}),
                          artifact_builder_archetype(archetype_tag{}, root.path()), store_options{}, std::in_place,
                          archetype_tag{}, std::move(content));
    pull_options o;
    o.platform = platform{"linux", "amd64", "", "", {}};
    auto const ref = image_reference::parse("lib/app:v1");
    auto r = store.pull(ref, o);
    CHECK_FALSE(r.cached);
    CHECK(r.manifest_digest == img.manifest_digest);
    CHECK(r.artifact_kind == "archetype");
    REQUIRE(r.layers.size() == 2);
    CHECK(r.layers[1].diff_id == img.diff_ids[1]);
    CHECK(r.layers[1].built);

    auto again = store.pull(ref, o);
    CHECK(again.cached);
    CHECK(store.list().size() == 1);
    CHECK(store.remove(ref) == 1);
    auto report = store.prune();
    CHECK(report.blobs == 4); // manifest, config, two layers
}
