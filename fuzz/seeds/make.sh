#!/usr/bin/env bash
# Writes the generated seeds under fuzz/seeds/ from real output: a SoftHSMv2
# project made with the dnsseal binary (its dnsseal.toml, audit log, signed
# zone and signing state, KSR and SKR) and BIND key files from
# dnssec-keygen. Run once by hand when a format changes (needs softhsm2 and
# bind9-utils, as the integration tests do); the output is committed.
#   fuzz/seeds/make.sh [DNSSEAL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
bin="${1:-$root/target/debug/dnsseal}"
[ -x "$bin" ] || cargo build --quiet
seeds="$root/fuzz/seeds"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DNSSEAL_PIN=1234 DNSSEAL_SO_PIN=12345678
now=20261204000000
zone=example.com

mkdir -p "$seeds"/{config,audit_log,signing_state,bind_key,ksr}

# --- a project: config, policy, audit log, signed zone with its state ---
cd "$work"
"$bin" --now $now init --softhsm >/dev/null
printf 'offline-ksk = false\nzsk-lifetime = "30d"\n' > policy.toml
"$bin" --now $now policy set $zone policy.toml >/dev/null
"$bin" --now $now keys create $zone --role both --algorithm ECDSAP256SHA256 >/dev/null
cp "$root/scripts/example.com.zone" $zone.zone
"$bin" --now $now sign $zone.zone -o $zone >/dev/null
cp dnsseal.toml "$seeds/config/dnsseal.toml"
cp policy.toml "$seeds/config/policy.toml"
cp "$root/src/policy/default.toml" "$seeds/config/policy-default.toml"
for p in "$root"/hsm-profiles/*.toml; do cp "$p" "$seeds/config/profile-$(basename "$p")"; done
cp audit.log "$seeds/audit_log/audit.log"
# An excerpt (verify_reader_from): the log without its first records.
tail -n 3 audit.log > "$seeds/audit_log/excerpt.log"
# signing_state input: flags:u8 zone-length:u16 zone state (see the target).
python3 - "$zone.zone.signed" "$zone.zone.signed.dnsseal-state" "$seeds/signing_state" <<'PY'
import sys, struct
zone = open(sys.argv[1], 'rb').read()
state = open(sys.argv[2], 'rb').read()
out = sys.argv[3]
# The zone is cut to what fits the 16-bit length; the harness repairs the
# zone digest, so the state stays readable.
z = zone[:0xffff]
open(out + '/real-state', 'wb').write(bytes([1]) + struct.pack('>H', len(zone) if len(zone) <= 0xffff else 0) + (zone if len(zone) <= 0xffff else b'') + state)
open(out + '/repaired-state', 'wb').write(bytes([0]) + struct.pack('>H', len(z)) + z + state)
PY

# --- the offline-KSK exchange: a KSR from an online box (ZSKs only), the
# SKR an offline box (the KSK) makes of it ---
mkdir online offline
(cd online && "$bin" --now $now init --softhsm >/dev/null &&
    printf 'offline-ksk = true\nzsk-lifetime = "30d"\n' > policy.toml &&
    "$bin" --now $now policy set $zone policy.toml >/dev/null &&
    "$bin" --now $now policy run $zone >/dev/null &&
    "$bin" --now $now ksr create $zone --to now+7776000 -o $zone.ksr >/dev/null)
(cd offline && "$bin" --now $now init --softhsm >/dev/null &&
    printf 'zsk-lifetime = "30d"\n' > policy.toml &&
    "$bin" --now $now policy set $zone policy.toml >/dev/null &&
    "$bin" --now $now keys create $zone --role ksk --algorithm ECDSAP256SHA256 >/dev/null &&
    "$bin" --now $now keys dnskey $zone > ksk.dnskey &&
    "$bin" --now $now ksr sign ../online/$zone.ksr -o $zone.skr --zone $zone --yes >/dev/null)
cp online/$zone.ksr "$seeds/ksr/dnsseal.ksr"
cp offline/$zone.skr "$seeds/ksr/dnsseal.skr"
cp offline/ksk.dnskey "$seeds/ksr/pinned.keys"
cp online/audit.log "$seeds/audit_log/online-audit.log"
cp "$root"/src/ksr/testdata/example.com.ksr "$seeds/ksr/knot.ksr"
cp "$root"/src/ksr/testdata/example.com.skr "$seeds/ksr/knot.skr"
cd "$work"

# --- BIND key files: one key pair per algorithm dnsseal imports ---
mkdir bind && cd bind
for a in RSASHA256:2048 RSASHA512:1024 ECDSAP256SHA256: ECDSAP384SHA384: ED25519: ED448:; do
    alg=${a%%:*} bits=${a#*:}
    base=$(dnssec-keygen -q -a "$alg" ${bits:+-b "$bits"} -f KSK $zone 2>/dev/null) || continue
    # The target's input: the .key text, a NUL, the .private text.
    { cat "$base.key"; printf '\0'; cat "$base.private"; } > "$seeds/bind_key/$alg"
done
echo "seeds written under $seeds"
