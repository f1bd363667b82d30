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
//! - [`reconcile`]: keystore records against the token's key objects.
//! - [`import`]: reading BIND `.key`/`.private` files for a migration.
//! - [`rollover`]: carrying out what the policy decides (first keys,
//!   standby keys, rollover starts and steps, the parent's DS seen).
//!
//! The library never prints; failures it decides on itself are
//! [`Failure`]s so that exit codes stay exact.

pub mod create;
pub mod import;
pub mod reconcile;
pub mod retire;
pub mod rollover;
pub mod select;
pub mod spec;
#[cfg(test)]
mod testing;

use crate::failure::Failure;
use crate::policy::signing::ZoneKeys;
use crate::token::SignerPool;
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
/// its own. A key the token lacks, or holds with another public key, is
/// drift (exit 12).
pub fn check_signing_keys(
    pool: &SignerPool,
    keys: &ZoneKeys,
    origin: &ZoneName,
) -> anyhow::Result<()> {
    let unpublished = keys
        .signing
        .iter()
        .filter(|k| !keys.published.iter().any(|p| p.id == k.id));
    for (k, what) in keys
        .published
        .iter()
        .map(|k| (k, "published"))
        .chain(unpublished.map(|k| (k, "signing")))
    {
        let (alg, spec) = spec::record_spec(k);
        let held = pool.public_key(&k.cka_id, spec).map_err(|e| {
            Failure::Drift(format!(
                "{what} key {} of {origin}: {e}; run `dnsseal keys reconcile`",
                k.key_tag
            ))
        })?;
        if spec::dnskey_public_key(alg, &held)? != k.public_key {
            return Err(Failure::Drift(format!(
                "{what} key {} of {origin}: the token holds another public key under CKA_ID {}; run `dnsseal keys reconcile`",
                k.key_tag,
                hex::encode(&k.cka_id)
            ))
            .into());
        }
    }
    Ok(())
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
