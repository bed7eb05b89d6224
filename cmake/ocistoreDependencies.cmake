# Dependency lookups shared by the build tree and the installed package config.
# Everything comes from Debian 12 packages:
#   libboost1.81-dev libboost-json1.81-dev   Boost 1.81 with its CMake config
#   libcrypto++-dev                          Crypto++ (pkg-config only)          component hash
#   zlib1g-dev libzstd-dev [libisal-dev]     gzip / zstd (ISA-L optional)        component compression
#   libssl-dev                               OpenSSL for TLS under Beast         component http
# Set ocistore_components before including to look up only what those components need
# (empty or unset: everything).
include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)
find_dependency(Boost 1.81 CONFIG COMPONENTS json)

set(_ocistore_all hash compression http)
if(ocistore_components)
  set(_ocistore_wanted "")
  foreach(_c IN LISTS ocistore_components)
    if(_c STREQUAL "ocistore" OR _c STREQUAL "compiled")
      set(_ocistore_wanted ${_ocistore_all})
      break()
    endif()
    list(APPEND _ocistore_wanted ${_c})
  endforeach()
else()
  set(_ocistore_wanted ${_ocistore_all})
endif()

if("hash" IN_LIST _ocistore_wanted OR "compression" IN_LIST _ocistore_wanted)
  find_dependency(PkgConfig)
endif()
if("hash" IN_LIST _ocistore_wanted AND NOT TARGET PkgConfig::ocistore_cryptopp)
  pkg_check_modules(ocistore_cryptopp REQUIRED IMPORTED_TARGET GLOBAL libcrypto++)
endif()
if("compression" IN_LIST _ocistore_wanted)
  find_dependency(ZLIB)
  if(NOT TARGET PkgConfig::ocistore_zstd)
    pkg_check_modules(ocistore_zstd REQUIRED IMPORTED_TARGET GLOBAL libzstd)
  endif()
  # Optional when building; required by an installed package that was built with it.
  if(NOT TARGET PkgConfig::ocistore_isal)
    if(ocistore_built_with_isal)
      pkg_check_modules(ocistore_isal REQUIRED IMPORTED_TARGET GLOBAL libisal)
    else()
      pkg_check_modules(ocistore_isal QUIET IMPORTED_TARGET GLOBAL libisal)
    endif()
  endif()
endif()
if("http" IN_LIST _ocistore_wanted)
  find_dependency(OpenSSL)
endif()
