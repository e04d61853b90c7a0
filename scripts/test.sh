#!/usr/bin/env bash
# The project's test command (README, second command; .ci/run calls it).
# Installs missing Debian/Ubuntu packages when run as root, builds once into
# the shared target dir, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh test

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build (all targets, so the suites find ks-devserver, ksc and the libraries)" >&2
cargo build --workspace --all-targets --locked

echo "== cargo test" >&2
cargo test --workspace --locked "$@"
