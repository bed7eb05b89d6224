// ocistore/config.hpp: build-mode switches. Included first by every ocistore header.
//
// Header-only is the default: non-template function bodies live in impl/*.ipp and are
// declared OCISTORE_DECL (= inline). Define OCISTORE_SEPARATE_COMPILATION in *every* TU
// (ocistore::compiled does that for you) and include <ocistore/src.hpp> in exactly one TU
// to compile those bodies once instead.
#pragma once

#include <ocistore/version.hpp>

#if defined(OCISTORE_SEPARATE_COMPILATION)
#  define OCISTORE_DECL
#else
#  define OCISTORE_HEADER_ONLY 1
#  define OCISTORE_DECL inline
#endif
