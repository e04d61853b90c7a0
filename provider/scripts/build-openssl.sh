#!/usr/bin/env bash
# Builds an OpenSSL (libraries AND the `openssl` program) from the sources
# shipped in the openssl-src crate, once, into <target dir>/openssl-<version>,
# for the provider's end-to-end matrix:
#
#   provider/scripts/build-openssl.sh 400.0.2+4.0.3      # prints the prefix
#   KS_OPENSSL_PREFIX=$(provider/scripts/build-openssl.sh 400.0.2+4.0.3) \
#     cargo test -p ks-e2e --test 'provider_*'
#
# The sources come from the crate in cargo's registry (~/.cargo/registry/src or
# the downloaded .crate in ~/.cargo/registry/cache). openssl-src trims files
# that shared libraries and the legacy provider need, so this builds a static
# `openssl` program (it still loads keyserver.so, which links no libcrypto).
set -euo pipefail
crate_version=${1:?usage: build-openssl.sh <openssl-src crate version, e.g. 400.0.2+4.0.3>}
here=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
openssl_version=${crate_version#*+}
prefix=$target/openssl-$openssl_version
if [ -x "$prefix/bin/openssl" ]; then
  echo "$prefix"
  exit 0
fi
src=""
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/openssl-src-"$crate_version"/openssl; do
  [ -d "$d" ] && src=$d
done
if [ -z "$src" ]; then
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/openssl-src-"$crate_version".crate 2>/dev/null | head -1 || true)
  if [ -z "$crate" ]; then
    echo "build-openssl: openssl-src $crate_version is not in the cargo registry cache;" \
      "fetch it with: cargo info openssl-src@$crate_version" >&2
    exit 1
  fi
  mkdir -p "$target/openssl-src"
  tar -xzf "$crate" -C "$target/openssl-src"
  src=$target/openssl-src/openssl-src-$crate_version/openssl
fi
build=$target/openssl-build-$openssl_version
rm -rf "$build"
cp -a "$src" "$build"
cd "$build"
echo "build-openssl: building OpenSSL $openssl_version in $build (this takes a while)" >&2
./Configure --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" \
  no-shared no-module no-legacy no-tests no-docs >&2
make -j"$(nproc)" >&2
make install_sw >&2
# `openssl req` wants a default config file; openssl-src ships none.
mkdir -p "$prefix/ssl"
printf '%s\n' '[ req ]' 'distinguished_name = req_distinguished_name' '[ req_distinguished_name ]' \
  > "$prefix/ssl/openssl.cnf"
rm -rf "$build"
echo "$prefix"
