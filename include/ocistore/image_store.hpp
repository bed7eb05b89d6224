// ocistore/image_store.hpp: `image_store`, the store with the default policies (registry over HTTPS, SHA-256, flock(2) locks, EROFS artifacts).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/basic_image_store.hpp>
#include <ocistore/builder/erofs_builder.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/transport/http_transport.hpp>

namespace ocistore {

/** The default store: pulls from registries with http_transport, verifies with SHA-256,
    coordinates processes with flock(2) lock files under `<root>/locks`, and builds one EROFS
    image per layer, an fsmeta and a VMDK per image (erofs_builder).

    @code
    ocistore::image_store store(ocistore::default_store_root());
    auto result = store.pull(ocistore::image_reference::parse("alpine:3.20"));
    // result.image_artifacts: {fsmeta, vmdk}
    @endcode */
using image_store = basic_image_store<http_transport, sha256_hasher, flock_lock, erofs_builder>;

} // namespace ocistore
