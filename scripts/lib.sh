# Shared by scripts/demo and scripts/test: package installation and the build.
# Sourced, not run. Works from any current directory.
set -euo pipefail

OCISTORE_ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCISTORE_BUILD_DIR=${OCISTORE_BUILD_DIR:-$OCISTORE_ROOT_DIR/build}

# Debian 12 packages: the build, then the real components that tests and the demo run.
OCISTORE_BUILD_PACKAGES=(cmake make g++ pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-iostreams1.81-dev
  libcrypto++-dev libssl-dev zlib1g-dev libzstd-dev libisal-dev doctest-dev libbenchmark-dev)
OCISTORE_TOOL_PACKAGES=(openssl curl zstd pigz docker-registry skopeo umoci erofs-utils qemu-utils)

# Installs whichever of the named packages are missing (apt-get, as root or through sudo).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds into $OCISTORE_BUILD_DIR: the named targets, or everything.
build_ocistore() {
  echo "==> building into $OCISTORE_BUILD_DIR"
  cmake -S "$OCISTORE_ROOT_DIR" -B "$OCISTORE_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
        -DOCISTORE_BUILD_TESTS=ON -DOCISTORE_BUILD_EXAMPLES=ON >/dev/null
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  cmake --build "$OCISTORE_BUILD_DIR" -j "$(nproc)" "${targets[@]}"
}
