// Runs the *ArtifactBuilder* conformance suite over erofs_builder.
#include <ocistore/builder/erofs_builder.hpp>

#include "artifact_builder_suite.hpp"

#include <support/erofs_files.hpp>

namespace ocistore_test {

template <> struct artifact_builder_traits<ocistore::erofs_builder> {
    static ocistore::erofs_builder make(std::filesystem::path const& root)
    {
        ocistore::erofs_builder_options o;
        o.durable = false;
        return ocistore::erofs_builder(root, o);
    }
    /** None. Its one output option, absolute_vmdk_paths, changes the VMDK only: the layer
        images are the same bytes under both identities and are shared, which the suite's
        "another identity holds nothing" check does not allow for. test/unit/erofs_builder.cpp
        checks that the images of one identity are not held by the other. */
    static std::optional<ocistore::erofs_builder> make_other(std::filesystem::path const&) { return std::nullopt; }
    static constexpr bool holds_artifacts = true;
    static ocistore::digest diff_id(ocistore::erofs_builder::layer_result const& r) { return r.diff_id; }
    /// Reads through the fsmeta's chunk indexes into the layer images, as the kernel does.
    static std::optional<std::string> read_file(ocistore::erofs_builder::image_result const& image,
                                                std::string const& path)
    {
        std::vector<std::filesystem::path> layers;
        for (auto const& l : image.layers) layers.push_back(l.path);
        return erofs_read_file(image.fsmeta, layers, path);
    }
    static std::size_t temporaries(std::filesystem::path const& root)
    {
        std::size_t n = 0;
        if (std::filesystem::exists(root / "tmp"))
            for ([[maybe_unused]] auto const& e : std::filesystem::directory_iterator(root / "tmp")) ++n;
        return n;
    }
};

} // namespace ocistore_test

TEST_CASE_TEMPLATE_INVOKE(artifact_builder_conformance, ocistore::erofs_builder);
