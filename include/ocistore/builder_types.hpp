// ocistore/builder_types.hpp: the value types that the *ArtifactBuilder* concept passes around.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>

#include <cstddef>
#include <string>

namespace ocistore {

/** What the store tells a builder about a layer when it starts streaming it.

    The builder sees the stream before the store has verified it: `diff_id` is the digest the
    image config *claims* for the uncompressed stream, checked only after the last entry. */
struct layer_info {
    /// The layer's cache key: the digest of its uncompressed tar stream, as the image config states it.
    digest diff_id;
    /** Position of the layer in the image being pulled, 0 = bottom. For messages and progress
        only: a layer artifact is shared by every image that contains the layer, so it must not
        depend on the position. */
    std::size_t index = 0;
};

/** Something a builder could not represent exactly, but that did not make it fail: an
    extended attribute the file system refused, an entry type it cannot create, ... */
struct build_warning {
    std::string path;    ///< the entry concerned, relative to the layer or image root; empty when none
    std::string message; ///< what was lost or changed, and why
    error_code code;     ///< the underlying failure (an errno value, or an `ocistore::error`)

    friend bool operator==(build_warning const&, build_warning const&) = default;
};

} // namespace ocistore
