// ocistore/ocistore.hpp: umbrella header, every public header. For users; the library
// itself never includes it.
#pragma once

#include <ocistore/config.hpp>
#include <ocistore/version.hpp>
#include <ocistore/error.hpp>
#include <ocistore/concepts.hpp>
#include <ocistore/digest.hpp>
#include <ocistore/hasher/digest_of.hpp>
#include <ocistore/hasher/sha256_hasher.hpp>
#include <ocistore/hasher/sha512_hasher.hpp>
