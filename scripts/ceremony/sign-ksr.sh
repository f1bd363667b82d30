#!/usr/bin/env bash
# Key ceremony: sign the online box's key signing request (KSR) with the
# zone's KSK in the offline token and write the signed key response (SKR)
# next to it on the removable media.
#
# usage: scripts/ceremony/sign-ksr.sh [--yes] [--out DIR] DIR ZONE KSR_FILE [SKR_FILE]
#   SKR_FILE: where the response goes [default: KSR_FILE with .ksr
#   replaced by .skr]; it must not exist yet.
#
# Steps: the audit log and the token checked, the zone's policy on this box
# shown (the request is checked against it; without one the ceremony
# stops), the request's SHA-256 recorded and the request shown (the
# witnesses compare the SHA-256 read aloud with the one the online operator
# read out), the request signed (`dnsseal ksr sign --yes`: the witnesses'
# confirmation is the script's), the response's SHA-256 recorded, a
# checkpoint and an export. A ceremony that does not end (a refused
# request, a failed step, a question not confirmed) leaves no SKR behind.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ceremony_options "$@"
set -- "${ARGS[@]}"
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
    echo "usage: $0 [--yes] [--out DIR] DIR ZONE KSR_FILE [SKR_FILE]" >&2
    exit 2
fi
dir=$1 zone=$2 ksr=$3
skr=${4:-${ksr%.ksr}.skr}
# Relative to where the ceremony was started, not to DIR.
case $ksr in /*) ;; *) ksr=$PWD/$ksr ;; esac
case $skr in /*) ;; *) skr=$PWD/$skr ;; esac
[ -f "$ksr" ] || { echo "$0: no key signing request at $ksr" >&2; exit 2; }
[ "$ksr" != "$skr" ] || { echo "$0: the response would replace the request ($skr)" >&2; exit 2; }
cd "$dir"
begin_ceremony "sign-ksr-$zone"

# The SKR this ceremony writes is removed again unless the ceremony ends
# (close_ceremony done): an unwitnessed end leaves nothing to carry away.
SKR_OURS=0
remove_unfinished_skr() {
    local rc=$1
    if [ "$rc" -ne 0 ] && [ "$SKR_OURS" = 1 ] && [ -e "$skr" ]; then
        rm -f -- "$skr"
        say "== the ceremony did not end: $skr removed, no SKR is left behind"
    fi
}
trap 'remove_unfinished_skr $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -e "$skr" ]; then
    say "== $skr exists already: this ceremony does not replace an SKR; move it away or name another file. The ceremony stops here"
    exit 2
fi

# The SHA-256 `ksr show` / `ksr sign` print for the witnesses ("SHA-256 of
# the file, to read aloud:" and the line after it).
spoken_digest() {
    printf '%s\n' "$1" | awk '/^SHA-256 of the file, to read aloud:/ {getline; print $0; exit}'
}

step "audit log verified before anything is done" ds audit verify
step "token identity recorded" ds token info
confirm "The token above is the offline KSK token in front of the witnesses."
step "policy of $zone on this box, which the request is checked against" ds policy show "$zone"
if printf '%s\n' "$LAST_OUTPUT" | grep -q "has no policy of its own"; then
    say "== $zone has no policy on this box: a request is signed only for a zone whose policy was set here (generate-ksk.sh --policy FILE, or \`dnsseal policy set $zone FILE\`). The ceremony stops here"
    exit 10
fi
step "keys of $zone in the token" ds keys list "$zone"
digest "$ksr"
step "key signing request for $zone, as this box reads it" ds ksr show "$ksr" -o "$zone"
shown=$(spoken_digest "$LAST_OUTPUT")
confirm "The SHA-256 above, read aloud, is the one the online operator read out when the request was made."
confirm "The periods and keys above are the online box's ZSKs: sign them with the KSK of $zone."
SKR_OURS=1
step "request signed with the KSK of $zone, response written to $skr" \
    ds ksr sign "$ksr" -o "$skr" --zone "$zone" --yes
signed=$(spoken_digest "$LAST_OUTPUT")
if [ -z "$shown" ] || [ "$signed" != "$shown" ]; then
    say "== the request signed (SHA-256 ${signed:-?}) is not the one shown (SHA-256 ${shown:-?}): the ceremony stops here"
    exit 1
fi
digest "$skr"
confirm "The SKR is on the removable media next to the request, and its SHA-256 above is written into the paper transcript."
close_ceremony
