// select_platform: verify a manifest or index file against its digest, parse it, and pick the
// manifest for a platform, as a pull does after fetching a tag.
//
//   example_select_platform FILE [PLATFORM] [EXPECTED-DIGEST]
//
// PLATFORM defaults to the host's (e.g. linux/amd64). The digest is computed over the raw
// bytes, exactly as a registry serves them.
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/manifest.hpp>
#include <ocistore/platform.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

int main(int argc, char** argv)
{
    if (argc < 2) return std::fprintf(stderr, "usage: %s FILE [PLATFORM] [EXPECTED-DIGEST]\n", argv[0]), 2;
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) return std::fprintf(stderr, "cannot open %s\n", argv[1]), 1;
    std::string const raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    try {
        auto const actual = ocistore::digest_of<ocistore::sha256_hasher>(raw);
        std::printf("digest    %s (%zu bytes)\n", actual.str().c_str(), raw.size());
        std::fflush(stdout);
        if (argc > 3 && ocistore::digest::parse(argv[3]) != actual)
            return std::fprintf(stderr, "digest mismatch: expected %s\n", argv[3]), 1;

        auto const doc = ocistore::parse_manifest(raw, "");
        std::printf("type      %s\n", doc.media_type.c_str());
        if (!doc.is_index()) {
            auto const& m = doc.manifest();
            std::printf("config    %s\n", m.config.digest.str().c_str());
            for (auto const& l : m.layers)
                std::printf("layer     %s %lld bytes (%s)\n", l.digest.str().c_str(), static_cast<long long>(l.size),
                            l.media_type.c_str());
            return 0;
        }
        for (auto const& d : doc.index().manifests)
            std::printf("entry     %-22s %s%s\n", d.platform ? d.platform->to_string().c_str() : "(none)",
                        d.digest.str().c_str(), ocistore::is_attestation_manifest(d) ? "  [attestation]" : "");
        auto const wanted = argc > 2 ? ocistore::platform::parse(argv[2]) : ocistore::host_platform();
        ocistore::error_code ec;
        std::string why;
        auto const chosen = ocistore::select_manifest(doc.index(), wanted, ec, &why);
        if (ec) return std::printf("for %s: %s\n", wanted.to_string().c_str(), why.c_str()), 1;
        std::printf("for %-18s -> %s (%s)\n", wanted.to_string().c_str(), chosen.digest.str().c_str(),
                    chosen.platform->to_string().c_str());
    } catch (ocistore::system_error const& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
