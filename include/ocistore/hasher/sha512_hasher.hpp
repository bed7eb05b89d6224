// ocistore/hasher/sha512_hasher.hpp: SHA-512 *Hasher* on Crypto++.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/detail/cryptopp_hasher.hpp>

#include <cryptopp/sha.h>

#include <string_view>

namespace ocistore {

/// SHA-512, OCI algorithm "sha512". See docs/concepts/hasher.md.
class sha512_hasher : public detail::cryptopp_hasher<CryptoPP::SHA512> {
public:
    static constexpr std::string_view algorithm = "sha512";
};

} // namespace ocistore
