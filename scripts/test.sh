#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need when it
# is missing, then formatting, lints, and every test (unit tests and the
# integration tests in softhsm-tests/, which run against real SoftHSMv2
# tokens and check output with BIND, ldns and OpenSC tools), then the key,
# sign, rollover and conformance suites again on Kryoptic tokens, the
# second PKCS#11 implementation (DNSSEAL_TEST_TOKEN=kryoptic),
# then a short fuzzing run of every input reader.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
if [ -d ../shared ]; then
    echo "test: ../shared is present (tests that use it will run)"
else
    echo "test: ../shared is absent (tests that use it skip with a reason)"
fi
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# faulty-p11, the fault-injecting PKCS#11 module softhsm-tests/faults.rs
# drives dnsseal through: a package of its own, with a target directory of
# its own (the one that test builds it in).
p11=(--manifest-path softhsm-tests/faulty-p11/Cargo.toml)
cargo fmt "${p11[@]}" -- --check
cargo clippy "${p11[@]}" --target-dir target/faulty-p11 --all-targets --quiet -- -D warnings
cargo test "${p11[@]}" --target-dir target/faulty-p11 --quiet
# Everything but the conformance suite, then that suite with its report
# (what it signed, what it refused and why, or why it skipped) shown.
cargo test --all-targets -- --skip conformance_
cargo test --test conformance -- --nocapture --test-threads 1
# The same suites on the second token, so that nothing rests on one
# implementation's quirks (docs/operator-guide.md, 2.3).
echo "test: the key, sign, rollover and conformance suites on Kryoptic (DNSSEAL_TEST_TOKEN=kryoptic)"
DNSSEAL_TEST_TOKEN=kryoptic cargo test --test keys --test sign --test rollover
DNSSEAL_TEST_TOKEN=kryoptic cargo test --test conformance -- --nocapture --test-threads 1
# Last: each fuzz target for 60 s (skips with a reason without nightly
# Rust or cargo-fuzz; fails on any crash). See docs/fuzzing.md.
./scripts/fuzz.sh 60
