#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (fuzz/, README "Fuzzing") with cargo-fuzz.
#
#   scripts/fuzz.sh                 every target for 5 minutes each
#   scripts/fuzz.sh --ci            every target for 20 s each (CI)
#   scripts/fuzz.sh --time 60 sign_reply ossl_params
#
# Each target starts from its committed seeds (fuzz/corpus/<target>, never modified) plus
# what earlier runs found (fuzz/work/<target>, not committed). Prints the executions per
# target; exits 1 on any crash, leak or timeout and names the file that reproduces it
# (replay: cargo +nightly fuzz run -a <target> <file>).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=300
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --ci) secs=20 ;;
        --time) secs=${2:?--time needs seconds}; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1") ;;
    esac
    shift
done

bash "$root/scripts/deps.sh" fuzz || { echo "fuzz.sh: scripts/deps.sh fuzz could not install what it needs (see above)" >&2; exit 2; }
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

cd "$root/fuzz"
# -a: debug assertions (overflow checks) on, as in the unit tests; ASan is the default.
flags=(-a)
nice -n 5 cargo +nightly fuzz build "${flags[@]}"
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo +nightly fuzz list)

logs=$root/fuzz/work/logs
mkdir -p "$logs"
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    log=$logs/$t.log
    echo "fuzz.sh: $t for ${secs}s" >&2
    rc=0
    # The first corpus directory receives new inputs; the committed seeds stay as they are.
    nice -n 5 cargo +nightly fuzz run "${flags[@]}" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1 || rc=$?
    execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
    rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log" | tail -1)
    if [[ $rc -eq 0 ]]; then
        result=ok
    else
        failed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
        result="FAILED (exit $rc) ${artifact:+reproducer: fuzz/$artifact }log: $log"
        tail -40 "$log" >&2
    fi
    summary+=("$(printf '%-18s %12s execs %8s/s  %s' "$t" "${execs:-0}" "${rate:-0}" "$result")")
done

echo "fuzz.sh: ${secs}s per target"
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
    echo "fuzz.sh: FAILED: a target crashed; fix it and add the reproducer as a regression test" >&2
    exit 1
fi
