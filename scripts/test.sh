#!/usr/bin/env bash
# The project's test command (README, second command; .ci/run calls it).
# Installs missing Debian/Ubuntu packages when run as root, builds once into
# the shared target dir, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh test
# dpkg-dev and the pinned cargo-deb for the package suite (package_deb), installed before the
# build rather than in the middle of the suites.
bash scripts/deps.sh package

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build (all targets, so the suites find ks-devserver, ksc and the libraries)" >&2
cargo build --workspace --all-targets --locked

# The programs the suites start keep their per-user cache (KSC_CACHE) under the target dir,
# not in the developer's ~/.cache; suites that test the cache point KSC_CACHE elsewhere.
export XDG_CACHE_HOME="${CARGO_TARGET_DIR:-$PWD/target}/test-cache"
mkdir -p "$XDG_CACHE_HOME"

echo "== cargo test" >&2
cargo test --workspace --locked --no-fail-fast "$@"

# The provider must work on the OpenSSL that Debian/Ubuntu ship (tested above)
# and on the current LTS and 4.0, built once from the pinned openssl-src crates
# and cached under the target dir. KS_SKIP_OPENSSL_MATRIX=1 skips this locally.
if [ "${KS_SKIP_OPENSSL_MATRIX:-0}" != 1 ]; then
  cargo fetch --locked >/dev/null
  for crate_version in 300.5.5+3.5.5 400.0.2+4.0.3; do
    prefix=$(bash provider/scripts/build-openssl.sh "$crate_version")
    echo "== provider suites on OpenSSL ${crate_version#*+} ($prefix)" >&2
    KS_OPENSSL_PREFIX=$prefix cargo test --locked -p ks-e2e --test 'provider_*'
  done
fi
