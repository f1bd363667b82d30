#!/usr/bin/env bash
# Installs what dnsseal's demo and tests need on a Debian machine, when it is
# missing: SoftHSMv2 (the token), OpenSC's pkcs11-tool (an independent view
# of the token), the independent DNSSEC tools used as oracles (BIND's
# dnssec-* utilities, ldns, Knot's kzonecheck), knotd and delv for the
# end-to-end test, gdb's gcore and strace for the process and durability
# tests, make and a C compiler for the build, and the second test token:
# Kryoptic's PKCS#11 module, built from scripts/kryoptic against the
# system's OpenSSL and installed in /usr/local/lib/kryoptic (again only
# when scripts/kryoptic changed). Idempotent; quiet when all is there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
have pkcs11-tool || need+=(opensc)
have dnssec-dsfromkey || need+=(bind9-utils)
have ldns-key2ds || need+=(ldnsutils)
have kzonecheck || need+=(knot-dnssecutils)
# Building: jemalloc (the binary's allocator) is compiled from source with
# make and a C compiler (which the crypto crates need too).
have make || need+=(make)
have cc || need+=(gcc)
# End-to-end tests: an authoritative server and a validating resolver.
have knotd || [ -x /usr/sbin/knotd ] || need+=(knot)
have delv || need+=(bind9-dnsutils)
# The core dump test: gcore tries to dump a running dnsseal.
have gcore || need+=(gdb)
# A key made outside the token, for the planted-key test.
have openssl || need+=(openssl)
# The durability test: strace shows the syncs and renames of `sign`.
have strace || need+=(strace)
# The key maintainer's shell behind a real sshd (ForceCommand), and ssh.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh || need+=(openssh-client)
# The signing service's tests: curl for the API over the Unix socket,
# setpriv to be another uid.
have curl || need+=(curl)
have setpriv || need+=(util-linux)
# The second test token (Kryoptic): its build links the system's libcrypto
# and libsqlite3, and bindgen reads OpenSSL's headers through libclang.
KRYOPTIC_SO=/usr/local/lib/kryoptic/libkryoptic_pkcs11.so
KRYOPTIC_STAMP=/usr/local/lib/kryoptic/BUILT-FROM
kryoptic_src=$(cd "$(dirname "$0")/kryoptic" && pwd)
kryoptic_hash=$(cat "$kryoptic_src/Cargo.toml" "$kryoptic_src/Cargo.lock" "$kryoptic_src/src/lib.rs" | sha256sum | cut -d' ' -f1)
kryoptic_built=false
if [ -e "$KRYOPTIC_SO" ] && [ "$(cat "$KRYOPTIC_STAMP" 2>/dev/null)" = "$kryoptic_hash" ]; then
    kryoptic_built=true
else
    [ -e /usr/include/openssl/evp.h ] || need+=(libssl-dev)
    [ -e /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
    have pkg-config || need+=(pkg-config)
    have clang || need+=(clang)
    ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-dev)
fi

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        have sudo || { echo "setup: need root (or sudo) to install ${need[*]}" >&2; exit 1; }
        sudo=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

have cargo || { echo "setup: cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2; exit 1; }

if ! $kryoptic_built; then
    echo "setup: building the Kryoptic PKCS#11 module (scripts/kryoptic) into $KRYOPTIC_SO" >&2
    target=$(cd "$(dirname "$0")/.." && pwd)/target/kryoptic
    cargo build --quiet --release --locked --manifest-path "$kryoptic_src/Cargo.toml" --target-dir "$target"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo install -D -m 0755 "$target/release/libkryoptic_pkcs11.so" "$KRYOPTIC_SO"
    echo "$kryoptic_hash" | $sudo tee "$KRYOPTIC_STAMP" >/dev/null
fi
