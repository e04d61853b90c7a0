#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the build and the tests need, when they
# are missing. Sourced or run by scripts/test.sh and scripts/signandvalidate.sh.
#
#   scripts/deps.sh [build|test]   (default: test)
#
# Without root (or without apt-get) it only reports what is missing and fails,
# naming the packages to install, so nobody has to guess.
set -euo pipefail

profile=${1:-test}

# Package -> a file or command that proves it is installed.
declare -A probe=(
  [pkg-config]=cmd:pkg-config
  [libclang-dev]=glob:/usr/lib/llvm-*/lib/libclang*.so*
  [libssl-dev]=file:/usr/include/openssl/core_dispatch.h
  [openssl]=cmd:openssl
  [curl]=cmd:curl
  [jq]=cmd:jq
)
if [ "$profile" = test ]; then
  probe[opensc]=cmd:pkcs11-tool
  probe[libengine-pkcs11-openssl]=glob:/usr/lib/*/engines-3/pkcs11.so
  probe[valgrind]=cmd:valgrind
  probe[chromium]=cmd:chromium
  probe[chromium-driver]=cmd:chromedriver
fi

is_present() {
  local how=${1%%:*} what=${1#*:}
  case $how in
    cmd) command -v "$what" >/dev/null 2>&1 ;;
    file) [ -e "$what" ] ;;
    glob) compgen -G "$what" >/dev/null ;;
  esac
}

missing=()
for pkg in "${!probe[@]}"; do
  is_present "${probe[$pkg]}" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
