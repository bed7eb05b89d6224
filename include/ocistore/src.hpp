// ocistore/src.hpp: include in exactly one TU of a program built with
// OCISTORE_SEPARATE_COMPILATION defined in every TU; compiles the non-template bodies once.
#pragma once

#include <ocistore/config.hpp>

#ifdef OCISTORE_HEADER_ONLY
#  error "Define OCISTORE_SEPARATE_COMPILATION in every TU before including <ocistore/src.hpp>"
#endif

#include <ocistore/impl/error.ipp>
#include <ocistore/impl/digest.ipp>
#include <ocistore/impl/reference.ipp>
#include <ocistore/impl/flock_lock.ipp>
#include <ocistore/impl/mutex_lock.ipp>
#include <ocistore/impl/atomic_file.ipp>
#include <ocistore/impl/media_types.ipp>
#include <ocistore/impl/platform.ipp>
#include <ocistore/impl/descriptor.ipp>
#include <ocistore/impl/manifest.ipp>
#include <ocistore/impl/image_config.ipp>
#include <ocistore/impl/tar_reader.ipp>
#include <ocistore/impl/decompress_source.ipp>
#include <ocistore/impl/oci_layout_transport.ipp>
#include <ocistore/impl/www_authenticate.ipp>
#include <ocistore/impl/bearer_token.ipp>
#include <ocistore/impl/header_values.ipp>
#include <ocistore/impl/proxy_config.ipp>
#include <ocistore/impl/credentials.ipp>
#include <ocistore/impl/safe_fs.ipp>
#include <ocistore/impl/rootfs_builder.ipp>
#include <ocistore/impl/rootfs_builder_verify.ipp>
#include <ocistore/impl/file_source.ipp>
#include <ocistore/impl/http_transport.ipp>
#include <ocistore/impl/erofs_metadata.ipp>
#include <ocistore/impl/erofs_layer_writer.ipp>
#include <ocistore/impl/erofs_fsmeta_writer.ipp>
#include <ocistore/impl/erofs_image_reader.ipp>
#include <ocistore/impl/erofs_vmdk.ipp>
#include <ocistore/impl/store_types.ipp>
#include <ocistore/impl/store_layout.ipp>
#include <ocistore/impl/erofs_builder.ipp>
#include <ocistore/impl/erofs_builder_verify.ipp>
