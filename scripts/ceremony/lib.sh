# shellcheck shell=bash
# Shared steps of the key ceremonies (sourced, not run). A ceremony is a
# list of steps; each step prints what it does, runs it, shows its output
# and its exit code, and is written to the transcript with the time. A
# failed step stops the ceremony: nothing after it runs. Where a person
# acts or checks (the witnesses), `confirm` waits for "yes" typed on the
# terminal, unless the ceremony was started with --yes (for rehearsals
# and CI), which the transcript records.
#
# Every ceremony ends with `close_ceremony`: a checkpoint of the audit log
# signed by the audit key, an export of the log, and a check of that export
# with the audit public key alone; the transcript cites the checkpoint's
# hash and the export's digest, so that paper and log tie together.
#
# Settings (environment):
#   DNSSEAL     the dnsseal binary [default: dnsseal on PATH]
#   OUT         where transcripts and exports go [default: ./ceremony-out]
# PINs come from dnsseal's usual sources (a PIN file with --pin-file in
# DNSSEAL_ARGS, the systemd credential, DNSSEAL_PIN, or the prompt).

set -euo pipefail

DNSSEAL=${DNSSEAL:-dnsseal}
OUT=${OUT:-$PWD/ceremony-out}
DNSSEAL_ARGS=${DNSSEAL_ARGS:-}
YES=0
STEP=0
TRANSCRIPT=

# Parses the options every ceremony takes; the rest is left in ARGS.
ceremony_options() {
    ARGS=()
    while [ $# -gt 0 ]; do
        case $1 in
            --yes) YES=1 ;;
            --out) OUT=$2; shift ;;
            *) ARGS+=("$1") ;;
        esac
        shift
    done
    # Relative to where the ceremony was started, not to the directory it
    # works in.
    case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
}

utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Writes a line to the terminal and the transcript.
say() {
    printf '%s\n' "$*"
    [ -z "$TRANSCRIPT" ] || printf '%s\n' "$*" >>"$TRANSCRIPT"
}

# Starts the transcript of ceremony NAME.
begin_ceremony() {
    local name=$1
    mkdir -p "$OUT"
    # A ceremony started in the same second as the last one (a rerun after
    # a failed step) gets a transcript of its own, not the last one's.
    local base n=1
    base="$OUT/transcript-$name-$(date -u +%Y%m%dT%H%M%SZ)"
    TRANSCRIPT=$base.txt
    while [ -e "$TRANSCRIPT" ]; do
        n=$((n + 1))
        TRANSCRIPT=$base-$n.txt
    done
    : >"$TRANSCRIPT"
    say "# dnsseal key ceremony: $name"
    say "# started:   $(utc)"
    say "# host:      $(uname -n)"
    say "# operator:  $(id -un) (uid $(id -u))"
    say "# directory: $PWD"
    say "# dnsseal:   $("$DNSSEAL" --version 2>&1)"
    if [ "$YES" = 1 ]; then
        say "# mode:      --yes (confirmations answered by the script: a rehearsal, not a witnessed ceremony)"
    fi
    say ""
}

# step DESCRIPTION COMMAND...: runs COMMAND, shows and records its output;
# a non-zero exit stops the ceremony.
step() {
    local what=$1; shift
    STEP=$((STEP + 1))
    say "== step $STEP: $what"
    if [ "$1" = ds ]; then
        say "\$ dnsseal${DNSSEAL_ARGS:+ $DNSSEAL_ARGS} ${*:2}"
    else
        say "\$ $*"
    fi
    say "   at $(utc)"
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    say "$out"
    if [ "$rc" -ne 0 ]; then
        say "== step $STEP FAILED (exit $rc) at $(utc): the ceremony stops here; nothing after this step was done"
        exit "$rc"
    fi
    say "   exit 0"
    say ""
    LAST_OUTPUT=$out
}

# dnsseal with the ceremony's global arguments.
ds() {
    # shellcheck disable=SC2086
    "$DNSSEAL" $DNSSEAL_ARGS "$@"
}

# confirm QUESTION: a witnessed check; "yes" typed on the terminal, or --yes.
confirm() {
    say "?? $1"
    if [ "$YES" = 1 ]; then
        say "   (answered yes by --yes at $(utc))"
        return 0
    fi
    local answer
    if ! read -r -p "type yes to go on: " answer </dev/tty 2>/dev/null; then
        say "== no terminal to confirm on (--yes is for rehearsals): the ceremony stops here"
        exit 10
    fi
    if [ "$answer" != yes ]; then
        say "== not confirmed ('$answer') at $(utc): the ceremony stops here"
        exit 10
    fi
    say "   confirmed at $(utc)"
}

# digest FILE: its SHA-256, for the witnesses and the transcript.
digest() {
    step "SHA-256 of $1" sha256sum "$1"
}

# Signs a checkpoint of the audit log, exports the log, checks the export
# with the audit public key alone and records all of it.
close_ceremony() {
    local stamp key exported hash
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    key="$OUT/audit-key.pem"
    exported="$OUT/audit-export-$stamp.jsonl"
    step "audit log verified" ds audit verify
    step "audit public key written" ds audit key -o "$key"
    step "checkpoint of the audit log signed by the audit key" ds audit checkpoint
    hash=$(printf '%s\n' "$LAST_OUTPUT" | awk '/^checkpoint record/ {print $5}')
    [ -n "$hash" ] || { say "== no checkpoint hash in the output: the ceremony stops here"; exit 1; }
    step "audit log exported" ds audit export -o "$exported"
    digest "$exported"
    step "export checked with the audit public key alone" \
        "$DNSSEAL" audit verify --pubkey "$key" "$exported" --checkpoint "$hash"
    say "# checkpoint: $hash"
    say "# export:     $exported"
    say "# ended:      $(utc), $STEP steps, all succeeded"
    printf 'transcript: %s\n' "$TRANSCRIPT"
}
