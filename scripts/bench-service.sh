#!/usr/bin/env bash
# Signing service benchmark and load check (not a timed test).
#
# 1. Local: every zone signed once by `dnsseal sign`, one after the other
#    (each run uses every core): signatures per second.
# 2. Service: CLIENTS parallel clients (`dnsseal sign --server` on the
#    Unix socket) for SECONDS, each signing a zone picked at random (so
#    that some ask for the same zone at once); every signed zone that
#    comes back is checked with dnssec-verify; every request must succeed
#    or be told to retry (429) — none lost or answered wrongly. The
#    service's peak memory (VmHWM) is read at the end.
# The ratio of (2) over (1) is the figure docs/service.md reports.
#
# usage: scripts/bench-service.sh [ZONES] [DELEGATIONS] [CLIENTS] [SECONDS]
#        (default: 8 zones of 20000 delegations, 32 clients, 60 s)
# env:   BENCH_DIR=/tmp/dnsseal-bench-service  BENCH_JOBS=2 (max_jobs)
# Needs: softhsm2, bind9-utils (scripts/setup.sh installs them). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
zones=${1:-8}
n=${2:-20000}
clients=${3:-32}
secs=${4:-60}
jobs=${BENCH_JOBS:-2}
dir=${BENCH_DIR:-/tmp/dnsseal-bench-service}

cargo build --release --quiet
bin=$root/target/release/dnsseal
export DNSSEAL_PIN=${DNSSEAL_PIN:-1234} DNSSEAL_SO_PIN=${DNSSEAL_SO_PIN:-12345678}
rm -rf "$dir"; mkdir -p "$dir/project" "$dir/out"
cd "$dir/project"
"$bin" -q init --softhsm >/dev/null
for z in $(seq 1 "$zones"); do
    "$bin" -q keys create "z$z.bench" --role both --algorithm ECDSAP256SHA256 >/dev/null
    python3 "$root/scripts/gen-zone.py" "$n" "z$z.bench." >"z$z.zone"
done
cat >>dnsseal.toml <<TOML

[service]
max_jobs = $jobs
[[service.allow]]
uid = $(id -u)
zones = ["*"]
status = true
TOML

json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# 1. Local.
local_sigs=0
start=$(date +%s.%N)
for z in $(seq 1 "$zones"); do
    "$bin" --json sign "z$z.zone" -o "z$z.bench" -f "$dir/out/local-z$z" >"$dir/local.json"
    local_sigs=$((local_sigs + $(json "$dir/local.json" signatures_generated)))
done
local_secs=$(echo "$(date +%s.%N) - $start" | bc -l)

# 2. The service.
"$bin" serve >"$dir/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S dnsseal.sock ] && break; sleep 0.1; done
client() {
    local c=$1 i=0 end=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$end" ]; do
        local z=$(( RANDOM % zones + 1 )) out="$dir/out/c$c-$i"
        local rc=0
        "$bin" --json sign --server dnsseal.sock "z$z.zone" -o "z$z.bench" -f "$out" >"$out.json" 2>"$out.err" || rc=$?
        echo "$c $i z$z $rc" >>"$dir/requests"
        i=$((i + 1))
        [ "$rc" = 14 ] && sleep 5  # the Retry-After of a busy service
    done
}
start=$(date +%s.%N)
for c in $(seq 1 "$clients"); do client "$c" & done
wait $(jobs -p | grep -v "^$serve_pid$") 2>/dev/null || true
svc_secs=$(echo "$(date +%s.%N) - $start" | bc -l)
hwm=$(awk '/VmHWM/ {print $2, $3}' /proc/$serve_pid/status)
kill -TERM $serve_pid; wait $serve_pid || true
trap - EXIT

# Every answer: success (and the zone verifies), or retry (14).
ok=0 retry=0 bad=0 svc_sigs=0
while read -r c i z rc; do
    out="$dir/out/c$c-$i"
    case $rc in
        0)
            if dnssec-verify -q -o "$z.bench" "$out" >/dev/null 2>"$out.verify"; then
                ok=$((ok + 1)); svc_sigs=$((svc_sigs + $(json "$out.json" signatures_generated)))
            else
                bad=$((bad + 1)); echo "FAILED dnssec-verify: $out" >&2
            fi
            ;;
        14) retry=$((retry + 1)) ;;
        *) bad=$((bad + 1)); echo "FAILED exit $rc: $(cat "$out.err")" >&2 ;;
    esac
done <"$dir/requests"

local_rate=$(echo "$local_sigs / $local_secs" | bc -l)
svc_rate=$(echo "$svc_sigs / $svc_secs" | bc -l)
printf '# %s, %s cpus, %s zones x %s delegations, ECDSAP256SHA256, SoftHSMv2, max_jobs %s\n' \
    "$(date -Iseconds)" "$(nproc)" "$zones" "$n" "$jobs"
printf 'local sign:  %8d signatures in %6.1f s = %8.0f sig/s\n' "$local_sigs" "$local_secs" "$local_rate"
printf 'service:     %8d signatures in %6.1f s = %8.0f sig/s (%d clients)\n' "$svc_sigs" "$svc_secs" "$svc_rate" "$clients"
printf 'ratio:       %.3f\n' "$(echo "$svc_rate / $local_rate" | bc -l)"
printf 'requests:    %d signed and verified (dnssec-verify), %d told to retry, %d wrong\n' "$ok" "$retry" "$bad"
printf 'service peak memory (VmHWM): %s\n' "$hwm"
[ "$bad" = 0 ]
