// Runs the *ArtifactBuilder* conformance suite over every shipped builder and the archetype.
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>

#include "artifact_builder_suite.hpp"

#include <support/archetypes.hpp>

#include <fstream>
#include <sstream>

namespace ocistore_test {

template <> struct artifact_builder_traits<ocistore::rootfs_builder> {
    static ocistore::rootfs_builder make(std::filesystem::path const& root, ocistore::ownership_mode mode)
    {
        ocistore::rootfs_options o;
        o.ownership = mode;
        o.durable = false;
        return ocistore::rootfs_builder(root, o);
    }
    static ocistore::rootfs_builder make(std::filesystem::path const& root)
    {
        return make(root, ocistore::ownership_mode::automatic);
    }
    /// The other ownership mode: a different output, so a different identity.
    static std::optional<ocistore::rootfs_builder> make_other(std::filesystem::path const& root)
    {
        bool const applies = make(root).ownership() == ocistore::ownership_mode::apply;
        return make(root, applies ? ocistore::ownership_mode::record : ocistore::ownership_mode::apply);
    }
    static constexpr bool holds_artifacts = true;
    static ocistore::digest diff_id(ocistore::rootfs_builder::layer_result const& r) { return r.diff_id; }
    static std::optional<std::string> read_file(ocistore::rootfs_builder::image_result const& image,
                                                std::string const& path)
    {
        std::ifstream in(image.rootfs / path, std::ios::binary);
        if (!in) return std::nullopt;
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    static std::size_t temporaries(std::filesystem::path const& root)
    {
        std::size_t n = 0;
        if (std::filesystem::exists(root / "tmp"))
            for ([[maybe_unused]] auto const& e : std::filesystem::directory_iterator(root / "tmp")) ++n;
        return n;
    }
};

template <> struct artifact_builder_traits<ocistore::null_builder> {
    static ocistore::null_builder make(std::filesystem::path const&) { return {}; }
    static std::optional<ocistore::null_builder> make_other(std::filesystem::path const&) { return std::nullopt; }
    static constexpr bool holds_artifacts = false;
    static ocistore::digest diff_id(ocistore::null_builder::layer_result const& r) { return r.diff_id; }
    static std::optional<std::string> read_file(ocistore::null_builder::image_result const&, std::string const&)
    {
        return std::nullopt;
    }
    static std::size_t temporaries(std::filesystem::path const&) { return 0; }
};

template <> struct artifact_builder_traits<artifact_builder_archetype> {
    static artifact_builder_archetype make(std::filesystem::path const& root)
    {
        return artifact_builder_archetype(archetype_tag{}, root);
    }
    static std::optional<artifact_builder_archetype> make_other(std::filesystem::path const& root)
    {
        return artifact_builder_archetype(archetype_tag{}, root, "other");
    }
    static constexpr bool holds_artifacts = true;
    static ocistore::digest diff_id(artifact_builder_archetype::layer_result const& r) { return r.diff_id(); }
    static std::optional<std::string> read_file(artifact_builder_archetype::image_result const& image,
                                                std::string const& path)
    {
        return image.file(path);
    }
    static std::size_t temporaries(std::filesystem::path const& root) { return archetype_temporaries(root); }
};

} // namespace ocistore_test

TEST_CASE_TEMPLATE_INVOKE(artifact_builder_conformance, ocistore::rootfs_builder, ocistore::null_builder,
                          ocistore_test::artifact_builder_archetype);
