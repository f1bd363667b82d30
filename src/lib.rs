//! dnsseal: DNSSEC key management and zone signing with keys that never
//! leave a PKCS#11 token.
//!
//! The crate is a library with a thin binary (`src/main.rs`). Data flows
//! down: [`cli`] turns arguments into calls; [`project`] opens what every
//! command needs; [`sign`] and [`keys`] do the work with the decisions of
//! [`policy`]; [`zone`], [`token`], [`keystore`] and [`audit`] hold the data.
//!
//! `dnsseal sign`: `cli` (arguments → [`sign::options`]) → `project`
//! (config, keystore, audit checked) → [`policy::signing`] (which keys are
//! published, which sign what, the CDS set) → [`sign::pipeline`] (zone
//! parsed and built, DNSKEY/CDS, serial, NSEC/NSEC3, [`sign::plan`] of what
//! to sign or keep, [`sign::engine`] batching to the token's sessions and
//! verifying every signature, [`sign::output`] written through
//! [`atomic`]) → the signing recorded and audited.
//!
//! | module       | its one job                                                    |
//! |--------------|----------------------------------------------------------------|
//! | [`config`]   | `dnsseal.toml` and the HSM profiles, checked into typed values |
//! | [`token`]    | the only code that talks PKCS#11 (through `cryptoki`)          |
//! | [`keystore`] | durable key records in SQLite: handles and attributes only     |
//! | [`zone`]     | DNS data: parsing, names, RRsets, chains, DNSKEY/DS, RRSIG view |
//! | [`sign`]     | the signing pipeline as one call, and the zone verifier        |
//! | [`policy`]   | per-zone policy and every key decision, as pure functions      |
//! | [`keys`]     | key maintenance: create, retire, reconcile, import, rollovers carried out |
//! | [`ksr`]      | offline KSK: KSR/SKR files (Knot format), their checks on both boxes |
//! | [`audit`]    | the append-only, hash-chained audit log, its export and check  |
//! | [`project`]  | a project opened (config, keystore, audit checked) or made     |
//! | [`pin`]      | where PINs come from (file, credential, variable, terminal), held once |
//! | [`harden`]   | no core dumps, not dumpable, PIN pages locked, environment set safely |
//! | [`atomic`]   | files replaced whole: temp, fsync, rename, directory fsync     |
//! | [`files`]    | dnsseal's own files created 0600, never through a link         |
//! | [`failure`]  | failures sorted by kind, and the one table of exit codes       |
//! | [`clock`]    | the one place that says what time it is (`--now`)             |
//! | [`cli`]      | the `dnsseal` command: arguments in, library calls, printing   |
//! | [`shell`]    | the key maintainer's shell: tokenizer, grammar, completion |
#![forbid(unsafe_code)]

pub mod atomic;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod failure;
pub mod files;
pub mod harden;
pub mod interrupt;
pub mod keys;
pub mod keystore;
pub mod ksr;
pub mod pin;
pub mod policy;
pub mod project;
pub mod service;
pub mod shell;
pub mod sign;
pub mod token;
pub mod zone;
