#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the build and the tests need, when they
# are missing. Sourced or run by scripts/test.sh and scripts/signandvalidate.sh.
#
#   scripts/deps.sh [build|tutorial|test]   (default: test)
#
#   build     what `cargo build` needs (bindgen's libclang, OpenSSL headers)
#   tutorial  build + what scripts/signandvalidate.sh runs (pkcs11-tool, libp11's engine)
#   test      tutorial + what the suites drive (p11-kit, valgrind, headless Chromium)
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
case $profile in
  build|tutorial|test) ;;
  *) echo "deps: unknown profile '$profile' (build, tutorial or test)" >&2; exit 2 ;;
esac
if [ "$profile" != build ]; then
  probe[opensc]=cmd:pkcs11-tool
  probe[libengine-pkcs11-openssl]=glob:/usr/lib/*/engines-3/pkcs11.so
fi
if [ "$profile" = test ]; then
  probe[p11-kit]=cmd:p11-kit
  probe[p11-kit-modules]=glob:/usr/lib/*/p11-kit-proxy.so
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

# The Rust toolchain is not a Debian package we can use (Debian 12's is too
# old for the dependencies): say how to get it instead of failing later.
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found; install Rust 1.85 or newer with rustup (https://rustup.rs):" >&2
  echo "deps:   curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
  exit 1
fi

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
