#!/bin/sh
# Runs every cargo-fuzz target of crates/portcullis/fuzz for FUZZ_SECONDS seconds each
# (default 60) and prints one line per target: executions, exec/s, corpus size, result.
# Exits 1 if any target crashed, panicked, timed out or ran out of memory.
#
#   FUZZ_SECONDS=600 scripts/fuzz.sh               # every target, 10 minutes each
#   FUZZ_TARGETS="cert_decode xfcc" scripts/fuzz.sh  # a subset
#
# Runs go into a scratch corpus (FUZZ_WORK, default ${TMPDIR:-/tmp}/portcullis-fuzz/<target>)
# seeded from the committed corpus/<target>/, which is never written to. Crash inputs land
# in FUZZ_WORK/artifacts/<target>/. No nightly toolchain here: RUSTC_BOOTSTRAP=1 lets the
# stable compiler accept the sanitizer flags cargo-fuzz passes.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir="$root/crates/portcullis/fuzz"
seconds=${FUZZ_SECONDS:-60}
work=${FUZZ_WORK:-${TMPDIR:-/tmp}/portcullis-fuzz}
# Per-input time limit (seconds) and memory limit (MB): exceeding either is a failure.
timeout=${FUZZ_TIMEOUT:-10}
rss_limit=${FUZZ_RSS_MB:-2048}

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"

cd "$fuzz_dir"
targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
echo "fuzz.sh: building: $targets"
# shellcheck disable=SC2086  # word splitting of the target list is intended
for t in $targets; do
    RUSTC_BOOTSTRAP=1 cargo fuzz build "$t"
done
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$fuzz_dir/target/$triple/release"

failed=0
summary=""
for t in $targets; do
    corpus="$work/$t"
    artifacts="$work/artifacts/$t"
    log="$work/$t.log"
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz.sh: $t for ${seconds}s (log: $log)"
    set +e
    "$bin_dir/$t" "$corpus" "corpus/$t" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_limit" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
    status=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    files=$(find "$corpus" -type f | wc -l | tr -d ' ')
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        failed=1
        result="FAILED (exit $status)"
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then result="TIMEOUT"; fi
        if grep -q 'out-of-memory' "$log"; then result="OOM"; fi
        if grep -q 'deadly signal\|panicked at' "$log"; then result="CRASH"; fi
        ls "$artifacts" | sed 's/^/    artifact: /'
    fi
    line=$(printf '%-16s %6ss  %12s execs  %8s exec/s  corpus %6s  %s' \
        "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$files" "$result")
    echo "$line"
    summary="$summary$line
"
done

echo
echo "fuzz.sh: summary"
printf '%s' "$summary"
exit "$failed"
