#!/bin/sh
# Reproduce Knot 3.2.6 offline-KSK KSR/SKR exchange with no running server.
set -eu
D=${1:-/tmp/knot-ksr/run}
rm -rf "$D"; mkdir -p "$D/online/kasp" "$D/offline/kasp" "$D/zones"
cat > "$D/zones/example.com.zone" <<Z
\$ORIGIN example.com.
\$TTL 3600
@ SOA ns1 hostmaster 1 7200 3600 1209600 3600
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
Z
for side in online offline; do
 OFF=on  # BOTH sides need offline-ksk: on + manual: on (OFFLINE_KSK_CONF_CHECK)
 cat > "$D/$side/knot.conf" <<C
server:
    rundir: "$D/$side"
database:
    storage: "$D/$side"
    kasp-db: "$D/$side/kasp"
keystore:
  - id: ks
    backend: pem
    config: "$D/$side/keys"
policy:
  - id: p
    keystore: ks
    algorithm: ecdsap256sha256
    manual: on
    offline-ksk: $OFF
    dnskey-ttl: 3600
    zone-max-ttl: 3600
    zsk-lifetime: 30d
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
    propagation-delay: 1h
    cds-cdnskey-publish: always
zone:
  - domain: example.com.
    storage: "$D/zones"
    file: "$D/zones/example.com.zone"
    dnssec-signing: on
    dnssec-policy: p
    zonefile-load: difference-no-serial
    journal-content: all
C
done
ON="keymgr -c $D/online/knot.conf"; OF="keymgr -c $D/offline/knot.conf"
# offline side: KSK
$OF example.com. generate algorithm=13 ksk=yes zsk=no > "$D/ksk.id"
# online side: ZSKs
$ON example.com. pregenerate +90d
$ON example.com. list iso > "$D/online-list.txt"
$ON example.com. generate-ksr +0 +90d > "$D/example.com.ksr"
$OF example.com. sign-ksr "$D/example.com.ksr" > "$D/example.com.skr"
$ON example.com. validate-skr "$D/example.com.skr"
$ON example.com. import-skr "$D/example.com.skr"
$ON example.com. show-offline > "$D/show-offline.txt"
cp "$D/zones/example.com.zone" "$D/zones/example.com.zone.orig"
kzonesign -c "$D/online/knot.conf" example.com. 
cp "$D/zones/example.com.zone" "$D/example.com.signed"
echo done
