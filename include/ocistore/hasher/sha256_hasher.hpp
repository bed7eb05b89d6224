// ocistore/hasher/sha256_hasher.hpp: SHA-256 *Hasher* on Crypto++ (the default).
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/cryptopp_hasher.hpp>

#include <cryptopp/sha.h>

#include <string_view>

namespace ocistore {

/// SHA-256, OCI algorithm "sha256". Uses SHA-NI where the CPU has it. See docs/concepts/hasher.md.
class sha256_hasher : public detail::cryptopp_hasher<CryptoPP::SHA256> {
public:
    static constexpr std::string_view algorithm = "sha256";
};

} // namespace ocistore
