#!/usr/bin/env bash
# Key ceremony: set up the signer's token and dnsseal directory, and make
# the audit key whose public key the auditors keep.
#
# usage: scripts/ceremony/init-token.sh [--yes] [--out DIR] DIR (--softhsm [--token-label L] | --profile P --token-label L)
#
# With --softhsm a SoftHSMv2 token is initialised in DIR/softhsm (SO and
# user PIN from DNSSEAL_SO_PIN / DNSSEAL_PIN, the systemd credentials or
# the prompt). With --profile the HSM's token must have been initialised
# with the vendor's tool first (SO and user PIN set), in front of the same
# witnesses. Steps: dnsseal init, token info (recorded), the audit key made
# in the token and its public key written, a checkpoint and an export.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ceremony_options "$@"
set -- "${ARGS[@]}"
[ $# -ge 2 ] || { echo "usage: $0 [--yes] [--out DIR] DIR (--softhsm [--token-label L] | --profile P --token-label L)" >&2; exit 2; }
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
begin_ceremony init-token
confirm "The witnesses have checked the machine (no network), the token and the removable media."
step "dnsseal directory and token set up" ds init "$@"
step "token identity and capabilities recorded" ds token info
confirm "The token serial and label above are the token in front of the witnesses."
step "audit key made in the token" ds audit key --create -o "$OUT/audit-key.pem"
digest "$OUT/audit-key.pem"
confirm "The audit public key's digest above is written into the paper transcript."
close_ceremony
