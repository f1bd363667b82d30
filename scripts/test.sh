#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need when it
# is missing, then formatting, lints, and every test (unit tests and the
# integration tests in softhsm-tests/, which run against real SoftHSMv2
# tokens and check output with BIND, ldns and OpenSC tools), then a short
# fuzzing run of every input reader.
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
# Everything but the conformance suite, then that suite with its report
# (what it signed, what it refused and why, or why it skipped) shown.
cargo test --all-targets -- --skip conformance_
cargo test --test conformance -- --nocapture --test-threads 1
# Last: each fuzz target for 60 s (skips with a reason without nightly
# Rust or cargo-fuzz; fails on any crash). See docs/fuzzing.md.
./scripts/fuzz.sh 60
