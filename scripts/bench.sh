#!/usr/bin/env bash
# The benchmark (issues 8 and 14): what a signature costs per process, per
# batch, under a fan-out of many processes at once and over a long run (RSS),
# against baselines measured in the same run, printed side by side with
# ratios. Builds the release binaries, then runs `ks-bench run`, which starts
# the dev KeyServer (data under <target>/bench), prints the tables and writes
# <target>/bench/results.json.
#
#   scripts/bench.sh [--quick] [--batch N] [--runs N] [--fanout N] [--memory N]
#                    [--out FILE] [--no-build]
#
#   --quick      200 signatures per batch, fewer runs, a fan-out of 60 and 5000
#                signatures per memory run: a smoke run in a few minutes
#   --batch N    signatures per batch run (default 2000)
#   --runs N     runs per per-process / cold-start figure (default 5; batches: 3)
#   --fanout N   single-signature processes released at once (default 200)
#   --memory N   signatures per RSS run, module and provider (default 100000)
#   --out FILE   where the JSON goes (default <target>/bench/results.json)
#   --no-build   use the binaries already in <target>/release
#
# Needs openssl, pkcs11-tool and libp11's engine
# (apt-get install openssl opensc libengine-pkcs11-openssl);
# ks-bench names what is missing. It is a benchmark, not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
args=()
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
