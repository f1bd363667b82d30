#!/usr/bin/env bash
# Signing benchmark, every figure from one run on this machine:
#   - the token's raw C_Sign rate with the same number of sessions
#     (`dnsseal token bench`, the zone's ZSK, no host work, the key used as
#     `dnsseal sign` uses it; and through the token object, for comparison),
#   - dnsseal sign with host verification (the default, default sessions)
#     and without (-P, the raw rate's sessions, held against the raw rate
#     measured just before and after it),
#   - BIND's dnssec-signzone on the same zone with file keys of the same
#     algorithm and the same thread count (with and without its own check),
#   - dnsseal sign --incremental after one changed RRset (median of 5),
# for NSEC and NSEC3, printing RRSIG/s, wall time and peak RSS, and ratios.
#
# usage: scripts/bench-sign.sh [DELEGATIONS...]      (default: 10000 100000)
# env:   BENCH_ALG=ECDSAP256SHA256  BENCH_THREADS=2  BENCH_MODES="nsec nsec3"
#        BENCH_DIR=/tmp/dnsseal-bench  BENCH_RAW_SECONDS=5
# Needs: softhsm2, bind9-utils (scripts/setup.sh installs them). Run it on a
# quiet machine: compare the ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
alg=${BENCH_ALG:-ECDSAP256SHA256}
threads=${BENCH_THREADS:-2}
modes=${BENCH_MODES:-nsec nsec3}
dir=${BENCH_DIR:-/tmp/dnsseal-bench}
raw_secs=${BENCH_RAW_SECONDS:-5}

./scripts/setup.sh
cargo build --release --quiet
bin=$root/target/release/dnsseal
export DNSSEAL_PIN=${DNSSEAL_PIN:-1234} DNSSEAL_SO_PIN=${DNSSEAL_SO_PIN:-12345678}

rm -rf "$dir"; mkdir -p "$dir/project" "$dir/bindkeys"
cd "$dir/project"
"$bin" -q init --softhsm >/dev/null
"$bin" -q keys create bench --role both --algorithm "$alg" >/dev/null
bits=(); case $alg in RSA*) bits=(-b 2048);; esac
dnssec-keygen -q -K "$dir/bindkeys" -a "$alg" "${bits[@]}" -f KSK bench >/dev/null
dnssec-keygen -q -K "$dir/bindkeys" -a "$alg" "${bits[@]}" bench >/dev/null

# run LABEL CMD...: wall seconds and peak RSS (KiB) into $wall / $rss
run() {
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >"$dir/out.json" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
    read -r wall rss <"$dir/time"
}
# RRSIG records in a one-record-a-line file (dnssec-signzone writes -O full).
rrsigs() { awk '$4 == "RRSIG" { n++ } END { print n + 0 }' "$1"; }
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/out.json" "$1"; }
# The token's raw C_Sign rate with the -P runs' sessions, measured now.
raw_rate() {
    "$bin" --json token bench bench --threads "$threads" --seconds "$raw_secs" >"$dir/raw.json" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['signatures_per_second'])" "$dir/raw.json"
}

printf '# %s, %s cpus, %s, %s threads/sessions, %s\n' "$(date -Iseconds)" "$(nproc)" "$alg" "$threads" "$(softhsm2-util --version 2>/dev/null | head -1 | sed 's/^/SoftHSM /')"
printf '%-9s %-6s %-26s %9s %8s %10s %9s %s\n' zone mode signer RRSIGs wall_s RRSIG/s RSS_MiB ratio
for n in "${sizes[@]}"; do
    zone=$dir/z$n.zone
    python3 "$root/scripts/gen-zone.py" "$n" >"$zone"
    run "$bin" --json token bench bench --threads "$threads" --seconds "$raw_secs"
    raw=$(json signatures_per_second)
    printf '%-9s %-6s %-26s %9s %8s %10.0f %9s %s\n' "$n" - "token raw C_Sign" - "$raw_secs" "$raw" - "1.00 (ceiling; $(json key_objects))"
    # The same through the token object, where the profile has sessions
    # sign with session copies of the key.
    run "$bin" --json token bench bench --threads "$threads" --seconds "$raw_secs" --token-objects
    printf '%-9s %-6s %-26s %9s %8s %10.0f %9s %s\n' "$n" - "token raw, token object" - "$raw_secs" "$(json signatures_per_second)" - \
        "$(printf '%.2f' "$(echo "$(json signatures_per_second) / $raw" | bc -l)") x ceiling"
    for mode in $modes; do
        flags=(); bflags=()
        [ "$mode" = nsec3 ] && { flags=(--nsec3); bflags=(-3 -); }
        for verify in on off; do
            # Verification on: the sessions dnsseal picks by default (a
            # software token's are sized by a probe); -P: the raw rate's.
            extra=(); [ $verify = off ] && extra=(-P --threads "$threads")
            out=$dir/z$n.$mode.signed; [ $verify = off ] && out=$dir/z$n.$mode.unverified
            # -P is held against the raw rate measured just before and just
            # after it (their mean): on a shared machine one raw sample a
            # minute earlier can be 15 % off.
            [ $verify = off ] && raw_before=$(raw_rate)
            run "$bin" --json sign "$zone" -o bench -f "$out" "${flags[@]}" "${extra[@]}"
            engine=$(json signatures_per_second)
            count=$(rrsigs "$out")
            sessions=$(json threads)
            label="dnsseal verify=$verify"
            against=$raw
            if [ $verify = off ]; then
                raw_after=$(raw_rate)
                against=$(echo "($raw_before + $raw_after) / 2" | bc -l)
            fi
            printf '%-9s %-6s %-26s %9d %8.2f %10.0f %9.0f %s\n' "$n" "$mode" "$label" "$count" "$wall" "$(echo "$count / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
                "engine $(printf '%.0f' "$engine")/s = $(printf '%.2f' "$(echo "$engine / $against" | bc -l)") x raw ($(printf '%.0f' "$against")/s$([ $verify = off ] && printf ', %.0f before, %.0f after' "$raw_before" "$raw_after")), $sessions session(s)"
            [ $verify = on ] && dnsseal_rate=$(echo "$count / $wall" | bc -l) && full_wall=$wall
        done
        for bv in on off; do
            p=(); [ $bv = off ] && p=(-P)
            out=$dir/z$n.$mode.bind
            run dnssec-signzone -q -S -K "$dir/bindkeys" -o bench -N keep -O full -n "$threads" "${bflags[@]}" "${p[@]}" -f "$out" "$zone"
            count=$(rrsigs "$out")
            rate=$(echo "$count / $wall" | bc -l)
            printf '%-9s %-6s %-26s %9d %8.2f %10.0f %9.0f %s\n' "$n" "$mode" "dnssec-signzone check=$bv" "$count" "$wall" "$rate" "$(echo "$rss / 1024" | bc -l)" \
                "dnsseal/this = $(printf '%.2f' "$(echo "$dnsseal_rate / $rate" | bc -l)")"
        done
        # One changed RRset, then --incremental against the full signing.
        awk '!done && $2 == "IN" && $3 == "A" && $1 ~ /^h/ { $4 = "198.51.100.77"; done = 1 } { print }' "$zone" >"$zone.changed"
        # A run of well under a second is at the mercy of a noisy machine
        # (writing its 50 MB, it sometimes waits 0.2 s on the disk): the
        # median of five, all five printed.
        walls=()
        for _ in 1 2 3 4 5; do
            run "$bin" --json sign "$zone.changed" -o bench -f "$dir/z$n.$mode.incr" --threads "$threads" "${flags[@]}" --incremental "$dir/z$n.$mode.signed"
            walls+=("$wall")
        done
        wall=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 3p)
        [ "$(json incremental_from)" = state ] || echo "warning: --incremental did not use the signing state" >&2
        printf '%-9s %-6s %-26s %9s %8.2f %10s %9.0f %s\n' "$n" "$mode" "dnsseal --incremental (x5)" "$(json signatures_generated)" "$wall" - "$(echo "$rss / 1024" | bc -l)" \
            "$(json signatures_retained) kept; $(printf '%.1f' "$(echo "100 * $wall / $full_wall" | bc -l)")% of the full run (runs: ${walls[*]} s)"
    done
done
