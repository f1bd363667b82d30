//! Key maintenance: create key pairs in the token under the keystore's
//! journal, select, delete/destroy/restore, reconcile keystore and token,
//! import BIND keys.
//!
//! - [`spec`]: the one map from a DNSSEC [`Algorithm`]
//!   to what the token needs (the key kind to generate, the mechanism to
//!   sign with) and back from a token public key to the DNSKEY field.
//! - [`create`]: key generation under the keystore's journal, and the
//!   recovery of an interrupted generation.
//! - [`select`]: finding the one key a zone, key tag and CKA_ID name; the
//!   DNSKEY RRset's keys and those whose DS the parent should hold.
//! - [`retire`]: delete (remove or destroy) and restore.
//! - [`objects`]: whether a key's token objects are what its record says
//!   (public key, kind, protection and usage attributes against the
//!   recorded origin), for `keys reconcile` and `sign`.
//! - [`reconcile`]: keystore records against the token's key objects.
//! - [`import`]: reading BIND `.key`/`.private` files for a migration.
//! - [`audit_key`]: the token key pair that signs audit checkpoints.
//! - [`rollover`]: carrying out what the policy decides (first keys,
//!   standby keys, rollover starts and steps, the parent's DS seen).
//!
//! The library never prints; failures it decides on itself are
//! [`Failure`]s so that exit codes stay exact.

pub mod audit_key;
pub mod create;
pub mod import;
pub mod objects;
pub mod offline;
pub mod reconcile;
pub mod retire;
pub mod rollover;
pub mod select;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;

use crate::failure::Failure;
use crate::policy::signing::ZoneKeys;
use crate::token::{SignerPool, TokenError};
use crate::zone::{Algorithm, ZoneName};

/// A zone name from the command line; a bad one is bad input (exit 3).
pub fn parse_zone(s: &str) -> anyhow::Result<ZoneName> {
    s.parse::<ZoneName>()
        .map_err(|e| Failure::BadInput(e.to_string()).into())
}

/// An algorithm from the command line (mnemonic or number); an unknown one
/// is bad input (exit 3).
pub fn parse_algorithm(s: &str) -> anyhow::Result<Algorithm> {
    s.parse::<Algorithm>()
        .map_err(|e| Failure::BadInput(e.to_string()).into())
}

/// What goes into the DNSKEY RRset, and what signs, must be what the
/// token holds: a keystore record is not trusted to name a public key on
/// its own, nor a CKA_ID to name a private key that is safe to publish or
/// sign with. Every published or signing key is read from the token once
/// ([`SignerPool::key_pair`]) and judged by [`objects::judge`]: a key the
/// token lacks, holds with another public key, or holds in an object whose
/// attributes do not match the recorded origin (extractable, not made in
/// the token, able to decrypt, of another kind) is drift (exit 12), and
/// the message names every such key with its CKA_ID and what is wrong.
pub fn check_signing_keys(
    pool: &SignerPool,
    keys: &ZoneKeys,
    origin: &ZoneName,
) -> anyhow::Result<()> {
    let unpublished = keys
        .signing
        .iter()
        .filter(|k| !keys.published.iter().any(|p| p.id == k.id));
    let mut refused = Vec::new();
    for (k, what) in keys
        .published
        .iter()
        .map(|k| (k, "published"))
        .chain(unpublished.map(|k| (k, "signing")))
    {
        let named = format!(
            "{what} key {} of {origin} (CKA_ID {})",
            k.key_tag,
            hex::encode(&k.cka_id)
        );
        let held = match pool.key_pair(&k.cka_id) {
            Ok(held) => held,
            Err(e @ TokenError::KeyNotFound { .. }) => {
                refused.push(format!("{named}: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let verdict = objects::judge(k, &held);
        if verdict.other_public_key {
            refused.push(format!(
                "{named}: the token holds another public key under this CKA_ID"
            ));
        }
        if !verdict.problems.is_empty() {
            refused.push(format!(
                "{named}: {}; dnsseal does not publish or sign with this key",
                verdict.problems.join("; ")
            ));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Failure::Drift(format!(
        "{}; run `dnsseal keys reconcile`",
        refused.join("\n")
    ))
    .into())
}

/// A key as the JSON reports show it: the record, its algorithm's name and
/// its DNSKEY RDATA in presentation format.
#[derive(serde::Serialize)]
pub struct KeyView<'a> {
    #[serde(flatten)]
    pub record: &'a crate::keystore::KeyRecord,
    pub algorithm_name: String,
    pub dnskey: String,
}

impl<'a> KeyView<'a> {
    pub fn of(rec: &'a crate::keystore::KeyRecord) -> KeyView<'a> {
        KeyView {
            record: rec,
            algorithm_name: rec.algorithm.mnemonic().to_string(),
            dnskey: rec.dnskey().to_string(),
        }
    }
}
