#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: install what
# is missing, build dnsseal, make a SoftHSMv2 token in ./demo, create keys
# for an example zone inside the token, print the DNSKEY RRset and the DS
# records for the parent, sign the zone with the token, and verify the
# signed zone with dnsseal's own verifier and three independent ones.
#
# PINs: taken from DNSSEAL_PIN / DNSSEAL_SO_PIN when set; otherwise the demo
# uses throw-away PINs (this token holds demo keys only).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release --quiet
bin="$PWD/target/release/dnsseal"

demo="${DEMO_DIR:-$PWD/demo}"
zone=example.com
zonefile="$PWD/scripts/example.com.zone"
oracles="$PWD/scripts/verify-oracles.sh"
export DNSSEAL_PIN="${DNSSEAL_PIN:-1234}"
export DNSSEAL_SO_PIN="${DNSSEAL_SO_PIN:-12345678}"

rm -rf "$demo"
mkdir -p "$demo"
cd "$demo"

echo "== dnsseal init --softhsm"
"$bin" init --softhsm
echo
echo "== dnsseal token info"
"$bin" token info
echo
echo "== dnsseal keys create $zone --role both --algorithm ECDSAP256SHA256"
"$bin" keys create "$zone" --role both --algorithm ECDSAP256SHA256
echo
echo "== dnsseal keys dnskey $zone"
"$bin" keys dnskey "$zone"
echo
echo "== dnsseal keys ds $zone   (what the parent needs)"
"$bin" keys ds "$zone" --digest sha256,sha384 | tee "$demo/$zone.ds"
echo
echo "== cross-check: BIND's dnssec-dsfromkey on the same DNSKEY RRset"
"$bin" keys dnskey "$zone" > "$demo/$zone.dnskey"
dnssec-dsfromkey -a SHA-256 -f "$demo/$zone.dnskey" "$zone"
echo
echo "== dnsseal sign $zone.zone -o $zone -N unixtime"
cp "$zonefile" "$demo/$zone.zone"
"$bin" sign "$zone.zone" -o "$zone" -N unixtime
echo
echo "== dnsseal verify $zone.zone.signed -o $zone"
"$bin" verify "$zone.zone.signed" -o "$zone"
echo
echo "== independent verifiers"
"$oracles" "$demo/$zone.zone.signed" "$zone"
echo
echo "== dnsseal audit verify"
"$bin" audit verify
echo
echo "demo directory: $demo (dnsseal.toml, keystore.sqlite, audit.log, softhsm/, $zone.zone.signed)"
