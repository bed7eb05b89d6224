# Dependency lookups shared by the build tree and the installed package config.
# Everything comes from Debian 12 packages:
#   libboost1.81-dev libboost-json1.81-dev  (Boost 1.81 with its CMake config)
#   libcrypto++-dev (pkg-config only)
# Set ocistore_components before including to look up only what those components need
# (empty or unset: everything).
include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)
find_dependency(Boost 1.81 CONFIG COMPONENTS json)

set(_ocistore_need_cryptopp TRUE)
if(ocistore_components)
  set(_ocistore_need_cryptopp FALSE)
  foreach(_c IN LISTS ocistore_components)
    if(_c MATCHES "^(hash|ocistore|compiled)$")
      set(_ocistore_need_cryptopp TRUE)
    endif()
  endforeach()
endif()
if(_ocistore_need_cryptopp AND NOT TARGET PkgConfig::ocistore_cryptopp)
  find_dependency(PkgConfig)
  pkg_check_modules(ocistore_cryptopp REQUIRED IMPORTED_TARGET GLOBAL libcrypto++)
endif()
