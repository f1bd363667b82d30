#!/usr/bin/env bash
# Key ceremony: make a zone's KSK in the offline token and print what the
# parent needs (DNSKEY and DS) with digests for the witnesses.
#
# usage: scripts/ceremony/generate-ksk.sh [--yes] [--out DIR] [--policy FILE] DIR ZONE [ALGORITHM]
#   ALGORITHM: a DNSSEC algorithm name or number [default: ECDSAP256SHA256]
#   --policy FILE: the zone's policy (TOML, as `dnsseal policy set` takes
#   it) made the zone's policy on this box first; sign-ksr.sh checks the
#   online box's requests against it and signs nothing without one.
#
# Steps: the audit log and the token checked, with --policy the policy file's
# SHA-256 recorded and the policy set and shown, the KSK generated in the
# token, the DNSKEY RRset and the DS records written to files and shown with
# their SHA-256 digests, a checkpoint and an export.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ceremony_options "$@"
set -- "${ARGS[@]}"
policy=
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --policy) [ $# -ge 2 ] || { echo "$0: --policy needs a file" >&2; exit 2; }; policy=$2; shift ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
set -- "${ARGS[@]}"
[ $# -ge 2 ] || { echo "usage: $0 [--yes] [--out DIR] [--policy FILE] DIR ZONE [ALGORITHM]" >&2; exit 2; }
dir=$1 zone=$2 alg=${3:-ECDSAP256SHA256}
if [ -n "$policy" ]; then
    # Relative to where the ceremony was started, not to DIR.
    case $policy in /*) ;; *) policy=$PWD/$policy ;; esac
    [ -f "$policy" ] || { echo "$0: no policy file at $policy" >&2; exit 2; }
fi
cd "$dir"
begin_ceremony "generate-ksk-$zone"
step "audit log verified before anything is done" ds audit verify
step "token identity recorded" ds token info
confirm "The token above is the offline KSK token in front of the witnesses."
if [ -n "$policy" ]; then
    digest "$policy"
    step "policy of $zone set from $policy" ds policy set "$zone" "$policy"
    step "policy of $zone in force on this box" ds policy show "$zone"
    confirm "The policy above is the zone's policy the witnesses were given."
fi
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
