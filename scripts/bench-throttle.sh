#!/usr/bin/env bash
# Throttle benchmark (not a timed test): signs a zone through faulty-p11
# (softhsm-tests/faulty-p11) with its C_Sign throttle at each rate, and
# prints the signatures per second dnsseal reached and their ratio to the
# throttle: how close dnsseal keeps a slow HSM busy. An unthrottled run
# through the same module comes first, for reference.
#
# usage: scripts/bench-throttle.sh [DELEGATIONS]     (default: 20000)
# env:   BENCH_RATES="200 500"  BENCH_THREADS=2  BENCH_DIR=/tmp/dnsseal-bench-throttle
# Needs: softhsm2 (scripts/setup.sh installs it). Release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${1:-20000}
rates=${BENCH_RATES:-200 500}
threads=${BENCH_THREADS:-2}
dir=${BENCH_DIR:-/tmp/dnsseal-bench-throttle}

cargo build --release --quiet
cargo build --release --quiet --manifest-path softhsm-tests/faulty-p11/Cargo.toml --target-dir target/faulty-p11
bin=$root/target/release/dnsseal
module=$root/target/faulty-p11/release/libfaulty_p11.so
export DNSSEAL_PIN=${DNSSEAL_PIN:-1234} DNSSEAL_SO_PIN=${DNSSEAL_SO_PIN:-12345678}

rm -rf "$dir"; mkdir -p "$dir/project"
cd "$dir/project"
"$bin" -q init --softhsm >/dev/null
"$bin" -q keys create bench --role both --algorithm ECDSAP256SHA256 >/dev/null
python3 "$root/scripts/gen-zone.py" "$n" >zone
sed -i "s|^profile = \"softhsm2\"|profile = \"softhsm2\"\nmodule = \"$module\"|" dnsseal.toml
grep -q "^module = " dnsseal.toml || { echo "cannot point dnsseal.toml at $module" >&2; exit 1; }
export FAULTY_P11_MODULE=${FAULTY_P11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export FAULTY_P11_CONFIG=$dir/faults.conf

json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/out.json" "$1"; }

printf '# %s, %s cpus, %s delegations, ECDSAP256SHA256, %s sessions, through faulty-p11\n' "$(date -Iseconds)" "$(nproc)" "$n" "$threads"
printf '%-10s %10s %10s %10s %s\n' sign_rate signatures seconds sig/s ratio
for rate in none $rates; do
    if [ "$rate" = none ]; then : >"$FAULTY_P11_CONFIG"; else echo "sign_rate = $rate" >"$FAULTY_P11_CONFIG"; fi
    "$bin" --json sign zone -o bench -f zone.signed --threads "$threads" >"$dir/out.json"
    sigs=$(json signatures_generated)
    secs=$(json signing_seconds)
    rps=$(json signatures_per_second)
    ratio=-
    [ "$rate" = none ] || ratio=$(printf '%.3f x the throttle' "$(echo "$rps / $rate" | bc -l)")
    printf '%-10s %10d %10.1f %10.1f %s\n' "$rate" "$sigs" "$secs" "$rps" "$ratio"
done
