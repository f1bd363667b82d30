#!/usr/bin/env bash
# The same signing benchmark before and after a change: two dnsseal
# binaries, alternating on one machine, on one SoftHSMv2 project and zone.
#
# Per round (BENCH_ROUNDS, default 3), for each of three runs
#   -P      dnsseal sign -P --threads T   (NSEC, no host verification)
#   verify  dnsseal sign                   (NSEC, verification on, the
#                                           sessions dnsseal picks itself)
#   incr    dnsseal sign --incremental BASE (the zone unchanged since BASE,
#                                           which OLD signed once: every
#                                           signature is kept, so the run is
#                                           reading and writing zone files;
#                                           read its wall time)
# it signs with OLD and NEW one right after the other, OLD first in odd
# rounds and NEW first in even rounds (so a machine that drifts during the
# benchmark favours neither). Each run records `signatures_per_second`
# from `--json` (the engine's rate), its wall time and its peak RSS
# (`/usr/bin/time -f "%e %M"`). At the end it prints, per run and binary,
# the median of each figure and the NEW/OLD ratio.
#
# usage: scripts/bench-compare.sh OLD_BIN NEW_BIN [DELEGATIONS]   (default 100000)
# env:   BENCH_ROUNDS=3  BENCH_ALG=ECDSAP256SHA256  BENCH_THREADS=2
#        BENCH_DIR=/tmp/dnsseal-compare
# Both binaries use the same project directory, made by OLD (`init
# --softhsm`, `keys create bench --role both`): they must read the same
# keystore format. The zone comes from scripts/gen-zone.py. Needs
# softhsm2 and /usr/bin/time (scripts/setup.sh installs them). Run it on
# a quiet machine, and read the ratios, not the absolute figures.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 OLD_BIN NEW_BIN [DELEGATIONS]   (env BENCH_ROUNDS, BENCH_ALG, BENCH_THREADS, BENCH_DIR)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
old=$(realpath "$1")
new=$(realpath "$2")
n=${3:-100000}
rounds=${BENCH_ROUNDS:-3}
alg=${BENCH_ALG:-ECDSAP256SHA256}
threads=${BENCH_THREADS:-2}
dir=${BENCH_DIR:-/tmp/dnsseal-compare}
for b in "$old" "$new"; do
    [ -x "$b" ] || { echo "$b: not an executable" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
case $n in '' | *[!0-9]*) echo "DELEGATIONS must be a number, not '$n'" >&2; exit 2;; esac
case $rounds in '' | *[!0-9]* | 0) echo "BENCH_ROUNDS must be a positive number, not '$rounds'" >&2; exit 2;; esac
export DNSSEAL_PIN=${DNSSEAL_PIN:-1234} DNSSEAL_SO_PIN=${DNSSEAL_SO_PIN:-12345678}

rm -rf "$dir"; mkdir -p "$dir/project"
cd "$dir/project"
"$old" -q init --softhsm >/dev/null
"$old" -q keys create bench --role both --algorithm "$alg" >/dev/null
zone=$dir/z$n.zone
python3 "$root/scripts/gen-zone.py" "$n" >"$zone"
"$old" -q sign "$zone" -o bench -f "$dir/base.signed" >/dev/null

# One line per run: binary, run, rate, wall s, peak RSS KiB.
runs=$dir/runs.tsv
: >"$runs"
# sign LABEL BIN RUN: one signing run, recorded in $runs and printed.
sign() {
    local label=$1 bin=$2 what=$3 extra=()
    [ "$what" = -P ] && extra=(-P --threads "$threads")
    [ "$what" = incr ] && extra=(--incremental "$dir/base.signed")
    /usr/bin/time -f "%e %M" -o "$dir/time" \
        "$bin" --json sign "$zone" -o bench -f "$dir/z$n.$label.signed" "${extra[@]}" \
        >"$dir/out.json" 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
    local wall rss rate
    read -r wall rss <"$dir/time"
    rate=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['signatures_per_second'])" "$dir/out.json")
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$what" "$rate" "$wall" "$rss" >>"$runs"
    printf '%-6s %-3s %-7s %12.0f %8.2f %8.0f\n' "$round" "$label" "$what" "$rate" "$wall" "$(echo "$rss / 1024" | bc -l)"
}

printf '# %s, %s cpus, %s delegations, %s, -P with %s sessions, %s round(s), %s\n' \
    "$(date -Iseconds)" "$(nproc)" "$n" "$alg" "$threads" "$rounds" \
    "$(softhsm2-util --version 2>/dev/null | head -1 | sed 's/^/SoftHSM /')"
printf '# OLD %s (sha256 %.12s)\n# NEW %s (sha256 %.12s)\n' \
    "$old" "$(sha256sum "$old" | cut -c1-64)" "$new" "$(sha256sum "$new" | cut -c1-64)"
printf '%-6s %-3s %-7s %12s %8s %8s\n' round bin run RRSIG/s wall_s RSS_MiB
for round in $(seq 1 "$rounds"); do
    for what in -P verify incr; do
        if [ $((round % 2)) -eq 1 ]; then
            sign OLD "$old" "$what"; sign NEW "$new" "$what"
        else
            sign NEW "$new" "$what"; sign OLD "$old" "$what"
        fi
    done
done

python3 - "$runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, what, rate, wall, rss = line.split("\t")
    runs.setdefault((label, what), []).append((float(rate), float(wall), float(rss) / 1024))
print()
print("# medians; NEW/OLD above 1 is faster for RRSIG/s, slower or bigger for wall and RSS")
print(f"{'run':<7} {'figure':<8} {'OLD':>10} {'NEW':>10} {'NEW/OLD':>8}")
for what in ("-P", "verify", "incr"):
    for i, (name, fmt) in enumerate((("RRSIG/s", "{:10.0f}"), ("wall_s", "{:10.2f}"), ("RSS_MiB", "{:10.1f}"))):
        o = statistics.median(r[i] for r in runs[("OLD", what)])
        n = statistics.median(r[i] for r in runs[("NEW", what)])
        ratio = f"{n / o:8.3f}" if o else f"{'-':>8}"
        print(f"{what:<7} {name:<8} {fmt.format(o)} {fmt.format(n)} {ratio}")
EOF
