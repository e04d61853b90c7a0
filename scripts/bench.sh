#!/usr/bin/env bash
# The benchmark (issue 8): what a signature costs per process and per batch,
# against baselines measured in the same run. Builds the release binaries,
# then runs `ks-bench run`, which starts the dev KeyServer (data under
# <target>/bench), prints the table and writes <target>/bench/results.json.
#
#   scripts/bench.sh [--quick] [--batch N] [--runs N] [--out FILE] [--no-build]
#
#   --quick      200 signatures per batch, fewer runs: a smoke run in about a minute
#   --batch N    signatures per batch run (default 2000)
#   --runs N     runs per per-process / cold-start figure (default 5; batches: 3)
#   --out FILE   where the JSON goes (default <target>/bench/results.json)
#   --no-build   use the binaries already in <target>/release
#
# Needs openssl and libp11's engine (apt-get install openssl libengine-pkcs11-openssl);
# ks-bench names what is missing. It is a benchmark, not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
args=()
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
  esac
done

target=${CARGO_TARGET_DIR:-target}
if [ "$build" = 1 ]; then
  echo "== cargo build --release (ks-bench, ks-devserver, ks-pkcs11, ks-provider, ks-common, ks-cli)" >&2
  cargo build --release --locked -p ks-bench -p ks-devserver -p ks-pkcs11 -p ks-provider -p ks-common -p ks-cli
fi
mkdir -p "$target/bench"
exec "$target/release/ks-bench" run ${args[@]+"${args[@]}"}
