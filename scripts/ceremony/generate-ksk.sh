#!/usr/bin/env bash
# Key ceremony: make a zone's KSK in the offline token and print what the
# parent needs (DNSKEY and DS) with digests for the witnesses.
#
# usage: scripts/ceremony/generate-ksk.sh [--yes] [--out DIR] DIR ZONE [ALGORITHM]
#   ALGORITHM: a DNSSEC algorithm name or number [default: ECDSAP256SHA256]
#
# Steps: the audit log and the token checked, the KSK generated in the
# token, the DNSKEY RRset and the DS records written to files and shown with
# their SHA-256 digests, a checkpoint and an export.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
ceremony_options "$@"
set -- "${ARGS[@]}"
[ $# -ge 2 ] || { echo "usage: $0 [--yes] [--out DIR] DIR ZONE [ALGORITHM]" >&2; exit 2; }
dir=$1 zone=$2 alg=${3:-ECDSAP256SHA256}
cd "$dir"
begin_ceremony "generate-ksk-$zone"
step "audit log verified before anything is done" ds audit verify
step "token identity recorded" ds token info
confirm "The token above is the offline KSK token in front of the witnesses."
step "KSK of $zone generated in the token" ds keys create "$zone" --role ksk --algorithm "$alg"
step "keys of $zone" ds keys list "$zone"
step "DNSKEY RRset of $zone" ds keys dnskey "$zone"
printf '%s\n' "$LAST_OUTPUT" >"$OUT/$zone.dnskey"
step "DS records of $zone for the parent" ds keys ds "$zone"
printf '%s\n' "$LAST_OUTPUT" >"$OUT/$zone.ds"
digest "$OUT/$zone.dnskey"
digest "$OUT/$zone.ds"
confirm "The witnesses have compared the DS records and the digests above with the paper transcript."
close_ceremony
