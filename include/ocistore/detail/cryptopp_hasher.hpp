// Internal: the Crypto++ adapter behind sha256_hasher and sha512_hasher.
#pragma once

#include <ocistore/config.hpp>

#include <cryptopp/config_int.h>

#include <array>
#include <cstddef>
#include <span>

namespace ocistore::detail {

/** Adapts a Crypto++ `HashTransformation` (`Update`/`Final`) to the *Hasher* operations.
    Crypto++ picks its fastest implementation at run time (SHA-NI, AVX2, ARMv8 crypto
    extensions), so no build flag is needed. Copyable and movable; one object per stream. */
template <class CryptoHash>
class cryptopp_hasher {
public:
    static constexpr std::size_t digest_size = CryptoHash::DIGESTSIZE;

    /// Feeds bytes; never fails.
    void update(std::span<std::byte const> bytes) noexcept
    {
        h_.Update(reinterpret_cast<CryptoPP::byte const*>(bytes.data()), bytes.size());
    }

    /// The digest of everything fed since construction or the last finish(); then resets.
    std::array<std::byte, digest_size> finish() noexcept
    {
        std::array<std::byte, digest_size> out;
        h_.Final(reinterpret_cast<CryptoPP::byte*>(out.data()));
        return out;
    }

private:
    CryptoHash h_;
};

} // namespace ocistore::detail
