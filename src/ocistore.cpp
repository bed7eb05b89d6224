// The one TU of ocistore::compiled (OCISTORE_SEPARATE_COMPILATION).
#include <ocistore/src.hpp>
