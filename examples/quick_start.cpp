// quick_start: the foundation's building blocks in one program. docs/quickstart.md quotes it.
//
//   example_quick_start CACHE-DIR
#include <ocistore/atomic_file.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/lock/flock_lock.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/reference.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv)
{
    if (argc != 2) return std::fprintf(stderr, "usage: %s CACHE-DIR\n", argv[0]), 2;
    std::filesystem::path const root = argv[1];

    // [references] Parse and normalise; the throwing overload says exactly what is wrong.
    auto const ref = ocistore::image_reference::parse("alpine:3.20");
    std::printf("%s -> %s (ask %s for %s)\n", "alpine:3.20", ref.str().c_str(), ref.api_host().c_str(),
                ref.reference_for_fetch().c_str());

    // [errors] Or test the error_code without exceptions.
    ocistore::error_code ec;
    std::string why;
    (void)ocistore::image_reference::parse("Alpine", ec, &why);
    if (ec == ocistore::condition::invalid_input) std::printf("rejected: %s\n", why.c_str());

    // [manifests] Digests are computed over the raw bytes; the parsed model keeps them.
    std::string const raw = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,
                "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
      "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":32,
                 "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]})";
    auto const doc = ocistore::parse_manifest(raw, ocistore::media_types::oci_manifest);
    auto const manifest_digest = ocistore::digest_of<ocistore::sha256_hasher>(doc.raw);
    std::printf("manifest %s has %zu layer(s)\n", manifest_digest.str().c_str(), doc.manifest().layers.size());

    // [locks] Cross-process locks keyed by store-relative paths; lock files are never deleted.
    ocistore::flock_lock locks(root / "locks");
    auto guard = locks.acquire("blobs/" + manifest_digest.path_safe(), ocistore::lock_mode::exclusive);

    // [atomic] Write to a temporary, fsync, rename: readers never see a half-written file.
    std::filesystem::create_directories(root / "blobs");
    ocistore::write_file_atomically(root / "blobs" / manifest_digest.path_safe(), doc.raw);
    std::printf("stored %s\n", (root / "blobs" / manifest_digest.path_safe()).c_str());
}
