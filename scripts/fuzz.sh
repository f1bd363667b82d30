#!/usr/bin/env bash
# Fuzzes dnsseal's input readers with cargo fuzz (libFuzzer): each target
# in fuzz/fuzz_targets/ runs for SECONDS_PER_TARGET (default 60) on a
# corpus built from the repository's test zones, ../shared/testdata when
# present, and the seeds under fuzz/seeds/. Any crash, panic, timeout or
# out-of-memory fails the script; the input is kept under
# fuzz/artifacts/TARGET/. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Skips (exit 0, with the reason) when no nightly toolchain is installed or
# cargo-fuzz cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${1:-60}"
shift || true
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    targets=(zone_file config audit_log signing_state bind_key ksr)

skip() {
    echo "fuzz: SKIPPED: $*"
    exit 0
}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    skip "no nightly Rust toolchain (cargo fuzz needs one: rustup toolchain install nightly)"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    if ! cargo install cargo-fuzz --locked >/tmp/cargo-fuzz-install.$$.log 2>&1; then
        tail -n 5 /tmp/cargo-fuzz-install.$$.log >&2 || true
        rm -f /tmp/cargo-fuzz-install.$$.log
        skip "cargo-fuzz could not be installed (cargo install cargo-fuzz --locked failed)"
    fi
    rm -f /tmp/cargo-fuzz-install.$$.log
fi

# Largest input each target is given (the seeds are cut to it): big enough
# for whole test zones, KSRs and states, small enough to keep the rate up.
max_len() {
    case "$1" in
    zone_file) echo 32768 ;;
    ksr) echo 32768 ;;
    signing_state) echo 32768 ;;
    *) echo 8192 ;;
    esac
}

# --- the corpus: seeds into fuzz/corpus-work/TARGET (kept between runs;
# FUZZ_CORPUS=DIR for another place, e.g. a fresh one as in CI) ---
shared="$root/../shared/testdata"
corpus="${FUZZ_CORPUS:-$root/fuzz/corpus-work}"
mkdir -p "$corpus"
python3 - "$root" "$shared" "$corpus" "$(max_len zone_file)" <<'PY'
import hashlib, os, sys
root, shared, corpus, zone_cap = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def put(target, data, cap=None):
    if cap is not None and len(data) > cap:
        # A prefix that ends at a line: still a zone, just a shorter one.
        cut = data.rfind(b'\n', 0, cap)
        data = data[:cut + 1 if cut > 0 else cap]
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = 'seed-' + hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

def zone(data, origin=None):
    # The zone_file target takes its origin from a first-line $ORIGIN.
    if origin and not data.lstrip().upper().startswith(b'$ORIGIN'):
        data = b'$ORIGIN ' + origin.encode() + b'\n' + data
    put('zone_file', data, zone_cap)
    # KSR/SKR and pinned-key files are zone text too.
    put('ksr', data, zone_cap)

for d in ['softhsm-tests/zones', 'scripts']:
    for f in sorted(os.listdir(os.path.join(root, d))):
        if f.endswith('.zone'):
            data = open(os.path.join(root, d, f), 'rb').read()
            zone(data, 'example.com.' if 'example.com' in f else 'example.')

if os.path.isdir(shared):
    for top in ['zones', 'verify-fixtures', 'real-zones']:
        for dirpath, _, files in sorted(os.walk(os.path.join(shared, top))):
            origin = None
            if 'ORIGIN' in files:
                origin = open(os.path.join(dirpath, 'ORIGIN')).read().strip()
            for f in sorted(files):
                if f in ('ORIGIN', 'expected-records.txt') or f.endswith(('.md', '.txt', '.sh', '.ds', '.key')):
                    continue
                zone(open(os.path.join(dirpath, f), 'rb').read(), origin)
    knot = os.path.join(shared, 'parser-conformance', 'knot-libzscanner')
    for dirpath, _, files in sorted(os.walk(knot)):
        for f in sorted(files):
            if f.endswith('.out') or f.endswith('.md') or f == 'TESTS':
                continue
            data = open(os.path.join(dirpath, f), 'rb').read()
            zone(data)
            # The scanner stops at the first error: the OK part alone too.
            if b'\n; KO' in data:
                zone(data.split(b'\n; KO')[0] + b'\n')

seeds = os.path.join(root, 'fuzz', 'seeds')
for target in sorted(os.listdir(seeds)):
    d = os.path.join(seeds, target)
    if os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            put(target, open(os.path.join(d, f), 'rb').read())
PY
for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t"
done

# --- build, then run each target ---
start=$(date +%s)
(cd fuzz && cargo +nightly fuzz build)
echo "fuzz: built in $(($(date +%s) - start)) s"

failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$root/fuzz/artifacts/$t"
    log="$root/fuzz/artifacts/$t/last-run.log"
    echo "fuzz: $t for ${seconds}s ($(ls "$corpus/$t" | wc -l) corpus inputs)"
    set +e
    (cd fuzz && cargo +nightly fuzz run "$t" "$corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/artifacts/$t/") >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    runs="${runs:-?}"
    rate="?"
    if [ "$runs" != "?" ] && [ -n "${secs:-}" ] && [ "$secs" -gt 0 ]; then
        rate=$((runs / secs))
    fi
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        summary+=("$(printf '%-14s FAILED (exit %s) after %s executions; see %s' "$t" "$rc" "$runs" "$log")")
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
    else
        summary+=("$(printf '%-14s ok  %10s executions  %6s exec/s' "$t" "$runs" "$rate")")
    fi
done

echo
echo "fuzz: ${seconds}s per target, $(($(date +%s) - start)) s with the build"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
