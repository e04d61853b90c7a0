#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages a profile needs, when they are missing.
# Run by scripts/test.sh, scripts/signandvalidate.sh, scripts/cleanroom.sh and
# the Dockerfile.
#
#   scripts/deps.sh [--check] [build|tutorial|test|cleanroom|fuzz|package]   (default: test)
#
#   build      what `cargo build` needs: a C compiler and libc headers, bindgen's
#              libclang, OpenSSL 3 headers, pkg-config, ca-certificates (crates.io)
#   tutorial   build + what scripts/signandvalidate.sh runs (openssl, pkcs11-tool,
#              libp11's engine)
#   test       tutorial + what the suites drive (p11-kit, valgrind, headless
#              Chromium, git, make and perl for the OpenSSL 3.5/4.0 matrix)
#   cleanroom  what scripts/cleanroom.sh needs on the host (debootstrap, docker)
#   fuzz       what scripts/fuzz.sh needs besides rustup's nightly (a C++ compiler
#              for libFuzzer)
#   package    build + what scripts/package.sh needs: dpkg-dev (dpkg-shlibdeps for
#              the package's Depends), then cargo-deb (pinned, from crates.io with
#              `cargo install --locked`) into <target dir>/tools/bin, not the system
#
# It decides by package, asking dpkg, never by probing files: a file that looks
# like the package's (libclang-cpp14's library beside a missing libclang-dev)
# must not count. Missing packages are installed in one `apt-get install`.
# Without root or without apt-get/dpkg it names what is missing and fails.
# --check only prints the missing packages, one a line, and exits 0.
#
# DEPS_DPKG_STATUS=FILE makes it read a dpkg status file instead of asking
# dpkg (the tests of this decision use a fake one).
set -euo pipefail

check_only=0
if [ "${1:-}" = --check ]; then check_only=1; shift; fi
profile=${1:-test}

build_pkgs=(gcc libc6-dev pkg-config libclang-dev libssl-dev ca-certificates openssl curl jq)
tutorial_pkgs=(opensc libengine-pkcs11-openssl)
test_pkgs=(p11-kit p11-kit-modules valgrind chromium chromium-driver git procps make perl)
cleanroom_pkgs=(debootstrap docker.io git tar ca-certificates util-linux openssl)
fuzz_pkgs=(g++ ca-certificates)
package_pkgs=(dpkg-dev)
# cargo-deb, the .deb builder scripts/package.sh runs: one pinned version.
cargo_deb_version=2.12.1

case $profile in
  build) wanted=("${build_pkgs[@]}") ;;
  tutorial) wanted=("${build_pkgs[@]}" "${tutorial_pkgs[@]}") ;;
  test) wanted=("${build_pkgs[@]}" "${tutorial_pkgs[@]}" "${test_pkgs[@]}") ;;
  cleanroom) wanted=("${cleanroom_pkgs[@]}") ;;
  fuzz) wanted=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  package) wanted=("${build_pkgs[@]}" "${package_pkgs[@]}") ;;
  *) echo "deps: unknown profile '$profile' (build, tutorial, test, cleanroom, fuzz or package)" >&2; exit 2 ;;
esac

# Prints the packages of "$@" that are not installed.
missing_of() {
  local pkg status
  if [ -n "${DEPS_DPKG_STATUS:-}" ]; then
    # The status file's stanzas: "Package: x" ... "Status: install ok installed".
    for pkg in "$@"; do
      status=$(awk -v p="$pkg" '
        /^Package: / { cur = $2 }
        /^Status: / && cur == p { sub(/^Status: /, ""); print; exit }' "$DEPS_DPKG_STATUS")
      [ "$status" = "install ok installed" ] || echo "$pkg"
    done
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1; then
    printf '%s\n' "$@"
    return 0
  fi
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || echo "$pkg"
  done
}

mapfile -t missing < <(missing_of "${wanted[@]}")

if [ $check_only -eq 1 ]; then
  [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
  exit 0
fi

# The Rust toolchain is not a Debian package we can use (Debian 12's is too
# old for the dependencies): say how to get it instead of failing later.
if [ "$profile" != cleanroom ] && ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found; install Rust 1.85 or newer with rustup (https://rustup.rs):" >&2
  echo "deps:   curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
  exit 1
fi

# The package profile's last step: cargo-deb in the project's own tools
# directory (no root needed), unless that version is already there.
finish() {
  [ "$profile" = package ] || exit 0
  local root tools
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  tools=${CARGO_TARGET_DIR:-$root/target}/tools
  if [ -x "$tools/bin/cargo-deb" ] && [ "$("$tools/bin/cargo-deb" --version 2>/dev/null)" = "cargo-deb $cargo_deb_version" ]; then
    exit 0
  fi
  echo "deps: installing cargo-deb $cargo_deb_version into $tools/bin (cargo install --locked; a few minutes)" >&2
  if ! cargo install cargo-deb --locked --version "$cargo_deb_version" --root "$tools" >&2; then
    echo "deps: 'cargo install cargo-deb --version $cargo_deb_version' failed: crates.io unreachable, or see cargo's message above" >&2
    exit 1
  fi
  exit 0
}

if [ ${#missing[@]} -eq 0 ]; then
  finish
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: this system has no apt-get/dpkg; the $profile profile needs these Debian packages" >&2
  echo "deps: (or your distribution's equivalents): ${wanted[*]}" >&2
  echo "deps: in particular: a C compiler and libc headers, libclang (bindgen), OpenSSL 3 headers," >&2
  echo "deps: pkg-config, openssl, pkcs11-tool (OpenSC) and libp11's engine (engines-3/pkcs11.so)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >&2; then
  echo "deps: 'apt-get update' failed: check the network and the mirrors in /etc/apt/sources.list*" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  echo "deps: 'apt-get install ${missing[*]}' failed (a mirror or network problem, or a package this" >&2
  echo "deps: release does not have); see apt's message above" >&2
  exit 1
fi
# Whatever apt said, check again by package: nothing is assumed installed.
mapfile -t still < <(missing_of "${missing[@]}")
if [ ${#still[@]} -ne 0 ]; then
  echo "deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
finish
