//! dnsseal: DNSSEC key management and zone signing with keys that never
//! leave a PKCS#11 token.
//!
//! The crate is a library with a thin binary (`src/main.rs`). Modules follow
//! the data flow of `dnsseal sign` and `dnsseal keys`:
//!
//! | module     | its one job                                                      |
//! |------------|------------------------------------------------------------------|
//! | [`config`] | `dnsseal.toml` and the HSM profiles, checked into typed values   |
//! | [`token`]  | the only code that talks PKCS#11 (through `cryptoki`)            |
//! | [`keystore`] | durable key records in SQLite: handles and attributes only     |
//! | [`zone`]   | DNS data: names, DNSKEY RDATA, key tags, DS digests              |
//! | [`policy`] | per-zone policy and the rollover state machine (RFC 7583)   |
//! | [`audit`]  | the append-only, hash-chained audit log                         |
//! | [`failure`] | failures sorted by kind, and the one table of exit codes |
//! | [`clock`]  | the one place that says what time it is (`--now`)                |
//! | [`cli`]    | wires the modules together for the `dnsseal` command            |
#![forbid(unsafe_code)]

pub mod atomic;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod failure;
pub mod keys;
pub mod keystore;
pub mod pin;
pub mod policy;
pub mod project;
pub mod sign;
pub mod token;
pub mod zone;
