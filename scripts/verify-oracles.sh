#!/usr/bin/env bash
# Runs the three independent DNSSEC verifiers on a signed zone:
# BIND's dnssec-verify, ldns-verify-zone and Knot's kzonecheck.
# usage: scripts/verify-oracles.sh SIGNED_ZONE ORIGIN      exit 0 when all pass
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SIGNED_ZONE ORIGIN" >&2; exit 2; }
file=$1 origin=$2 rc=0
check() {
    local name=$1; shift
    if out=$("$@" 2>&1); then
        printf '%-18s PASS\n' "$name"
    else
        printf '%-18s FAIL: %s\n' "$name" "$(printf '%s\n' "$out" | grep -v '^$' | head -2 | tr '\n' ' ')"
        rc=1
    fi
}
# A zone signed by CSKs alone (no DNSKEY without the SEP flag) needs -z,
# or dnssec-verify asks for a separate ZSK.
zflag=
awk '$4 == "DNSKEY" && $5 == 256 { found = 1 } END { exit !found }' "$file" || zflag=-z
check dnssec-verify dnssec-verify $zflag -q -o "$origin" "$file"
check ldns-verify-zone ldns-verify-zone "$file"
check kzonecheck kzonecheck -o "$origin" -d on "$file"
exit $rc
