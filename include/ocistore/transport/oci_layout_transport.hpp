// ocistore/transport/oci_layout_transport.hpp: a *Transport* that reads a local OCI image layout directory (offline import).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/descriptor.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/error.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/reference.hpp>
#include <ocistore/transport_types.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace ocistore {

/** A *Transport* over an OCI image layout directory (OCI image spec, image-layout.md):
    `oci-layout` ({"imageLayoutVersion": "1.0.0"}), `index.json`, `blobs/<alg>/<hex>`, as
    written by `skopeo copy … oci:DIR:NAME`, `umoci`, `buildah push … oci:DIR`, or an ocistore
    cache root.

    **Names.** The layout has no registry and no repositories: the reference's registry and
    repository are ignored, except against full-reference names (below). A reference with a
    digest reads that blob directly (whether or not index.json lists it). Otherwise the tag
    is looked up among the `org.opencontainers.image.ref.name` annotations of index.json's
    entries, first match wins:
    - a name that is a valid tag ("v1", "latest") matches `ref.tag_or_default()`;
    - any other name is parsed as an image reference ("example.com/app:v1") and matches when
      its name() and tag_or_default() equal the reference's.
    A reference **without** a tag that finds no "latest" uses the only entry of an index.json
    that has exactly one, named or not (as `skopeo` does for `oci:DIR`). An explicit tag
    never falls back. So `oci:DIR:NAME` maps to `image_reference::parse("any/name:NAME")`
    with the transport constructed on DIR.

    **Media types.** A tag's manifest is served with its index.json descriptor's media type
    and digest (`server_digest`). A digest's manifest is served with the media type its JSON
    declares (`mediaType`; without one, `manifests` means an OCI index and `config` an OCI
    manifest); a blob that is neither is error::not_found. As in memory_transport, a media
    type outside a non-empty `accept` list is error::not_found.

    **Errors.** The root missing: error::not_found; no `oci-layout` or `index.json`, or a
    malformed `oci-layout`: error::invalid_argument (error::invalid_json for bad JSON);
    an imageLayoutVersion other than "1.0.0": error::unsupported_schema; `index.json` over
    max_manifest_size: error::too_large, malformed: error::invalid_json or
    error::invalid_manifest; an unknown name or absent blob: error::not_found; a manifest
    over max_manifest_size: error::too_large; an offset beyond a blob's size:
    error::invalid_argument; other file-system failures: the errno in std::system_category.
    Every operation re-reads `oci-layout` (and `index.json` when it needs names), so changes
    to the directory are seen at once. The `why` parameters receive a reason naming the file.

    **Hostile layouts.** Digests are validated before they become paths, so a path never
    leaves `blobs/`. Below the root nothing is followed through a symbolic link: a
    symlinked `blobs`, `blobs/<alg>`, blob, `oci-layout` or `index.json` is
    error::unsafe_path, and so is a blob that is not a regular file (a FIFO or a device).
    The root itself may be a symbolic link.

    **Threads.** Every member is const and keeps no state besides the root path: any number
    of threads may use one object. Blob readers own their file descriptor. */
class oci_layout_transport {
public:
    /// *BlobSource* over one blob file, read with pread(2) from the offset asked for.
    class blob_reader {
    public:
        /// A reader over nothing: every read fails with error::invalid_argument.
        blob_reader() noexcept = default;
        blob_reader(blob_reader&& other) noexcept
            : fd_(std::exchange(other.fd_, -1)), offset_(other.offset_), pos_(other.pos_), size_(other.size_),
              failed_(other.failed_)
        {
        }
        blob_reader& operator=(blob_reader&& other) noexcept
        {
            if (this != &other) {
                close();
                fd_ = std::exchange(other.fd_, -1);
                offset_ = other.offset_;
                pos_ = other.pos_;
                size_ = other.size_;
                failed_ = other.failed_;
            }
            return *this;
        }
        blob_reader(blob_reader const&) = delete;
        blob_reader& operator=(blob_reader const&) = delete;
        ~blob_reader() { close(); }

        /** Reads up to `buffer.size()` bytes; 0 with `ec` clear at the end of the blob (its size
            when opened). A file that shrank meanwhile is error::truncated; a read error, its errno. */
        OCISTORE_DECL std::size_t read_some(std::span<std::byte> buffer, error_code& ec);
        /// The offset asked for: a file honours every offset.
        std::uint64_t offset() const noexcept { return offset_; }
        /// The file's size when opened; empty only for a reader over nothing.
        std::optional<std::uint64_t> size() const noexcept { return size_; }

    private:
        friend class oci_layout_transport;
        OCISTORE_DECL void close() noexcept;

        int fd_ = -1;
        std::uint64_t offset_ = 0;
        std::uint64_t pos_ = 0;
        std::optional<std::uint64_t> size_;
        error_code failed_;
    };

    /// A transport over the layout in `root`. Touches nothing until used; see check().
    explicit oci_layout_transport(std::filesystem::path root) : root_(std::move(root)) {}

    std::filesystem::path const& root() const noexcept { return root_; }

    /// Checks that `root` is a readable layout: `oci-layout` and a valid `index.json`.
    OCISTORE_DECL void check(error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error whose what() names the file and the problem.
    OCISTORE_DECL void check() const;

    /// `index.json`, parsed and validated.
    OCISTORE_DECL image_index read_index(error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error whose what() names the problem.
    OCISTORE_DECL image_index read_index() const;

    /** The index.json entry `ref` names (see the class comment; the digest of `ref`, if any,
        is ignored here). None: error::not_found, and `*why` lists the names there are. */
    OCISTORE_DECL descriptor find_entry(image_reference const& ref, error_code& ec, std::string* why = nullptr) const;
    /// @throws system_error (error::not_found, …) listing the names there are.
    OCISTORE_DECL descriptor find_entry(image_reference const& ref) const;

    /// The manifest `ref` names, see the class comment.
    OCISTORE_DECL fetched_manifest fetch_manifest(image_reference const& ref, std::span<std::string_view const> accept,
                                                  error_code& ec, std::string* why = nullptr) const;
    /** The digest, media type and size of the manifest `ref` names, without reading it when
        index.json describes it (a digest not listed there is read to learn its media type). */
    OCISTORE_DECL resolved_manifest resolve(image_reference const& ref, std::span<std::string_view const> accept,
                                            error_code& ec, std::string* why = nullptr) const;
    /// Blob `d` from `offset` (≤ its size); `ref` is not used.
    OCISTORE_DECL blob_reader open_blob(image_reference const& ref, digest const& d, std::uint64_t offset,
                                        error_code& ec, std::string* why = nullptr) const;

private:
    std::filesystem::path root_;
};

} // namespace ocistore

#ifdef OCISTORE_HEADER_ONLY
#  include <ocistore/impl/oci_layout_transport.ipp>
#endif
