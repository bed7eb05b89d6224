// ocistore/ocistore.hpp: umbrella header, every public header. For users; the library
// itself never includes it.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/version.hpp>
#include <ocistore/error.hpp>
#include <ocistore/concepts.hpp>

// vocabulary
#include <ocistore/digest.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/media_types.hpp>
#include <ocistore/platform.hpp>
#include <ocistore/descriptor.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/image_config.hpp>
#include <ocistore/transport_types.hpp>

// policies and utilities
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/lock/mutex_lock.hpp>
#include <ocistore/lock/null_lock.hpp>
#include <ocistore/atomic_file.hpp>

// byte sources and layer ingestion
#include <ocistore/byte_source_ref.hpp>
#include <ocistore/file_source.hpp>
#include <ocistore/hashing_source.hpp>
#include <ocistore/prefetch_source.hpp>
#include <ocistore/decompress_source.hpp>
#include <ocistore/tar_entry.hpp>
#include <ocistore/tar_reader.hpp>
#include <ocistore/ingest.hpp>

// transports
#include <ocistore/transport/http_transport.hpp>
#include <ocistore/transport/oci_layout_transport.hpp>

// artifacts
#include <ocistore/erofs/layer_writer.hpp>

// artifact builders
#include <ocistore/builder_types.hpp>
#include <ocistore/builder/null_builder.hpp>
#include <ocistore/builder/rootfs_builder.hpp>
