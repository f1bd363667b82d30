//! The keystore: durable key records in SQLite.
//!
//! A record holds what is needed to find a key in its token and to publish
//! it (invariant 2 of the design): token identity, CKA_ID and CKA_LABEL,
//! algorithm, role, key tag, the DNSKEY public key, state and timings. It
//! never holds a PKCS#11 object handle (handles do not survive a new session)
//! and never any private key material.
//!
//! Every change runs in one `BEGIN IMMEDIATE` transaction, with a busy
//! timeout, so two `dnsseal` processes can work on one keystore at once.
//! The schema is versioned in `meta.schema_version`.
//!
//! What each file owns:
//!
//! | file | what it stores or does |
//! |------|------------------------|
//! | `mod.rs` | [`Keystore`], [`StoreError`], the one write transaction |
//! | `schema.rs` | the schema and its version, create, open, migration from version 1 |
//! | `records.rs` | the record types: [`Role`], [`KeyState`], [`DsState`], [`Origin`], [`Timings`], [`KeyRecord`], [`NewKey`] |
//! | `keys.rs` | key rows: insert, change of state, read by zone or id |
//! | `rollovers.rs` | [`Batch`] and its commit, rollovers and their steps |
//! | `zones.rs` | per zone: key-set generation, [`Signing`]s, policy text |
//! | `journal.rs` | pending token objects and the audit outbox |
//! | `audit_head.rs` | the audit log head last written |

use std::path::PathBuf;

use rusqlite::{Connection, TransactionBehavior};

mod audit_head;
mod journal;
mod keys;
mod records;
mod rollovers;
mod schema;
mod zones;

pub use audit_head::AuditKeyRecord;
pub use records::{DsState, KeyRecord, KeyState, NewKey, Origin, Role, Timings};
pub use rollovers::{
    Batch, Committed, KeyRef, KeyUpdate, NewStep, RolloverRecord, RolloverWrite, StepRecord,
};
pub use schema::SCHEMA_VERSION;
pub use zones::Signing;

/// What went wrong with the keystore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("keystore {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "keystore {path} has schema version {found}; this build reads version {SCHEMA_VERSION}"
    )]
    SchemaVersion { path: PathBuf, found: String },
    #[error("cannot create the keystore: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keystore {path} does not exist: run `dnsseal init` first")]
    Missing { path: PathBuf },
    #[error("keystore {path}: a record holds a value this build does not know: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// An open keystore.
pub struct Keystore {
    conn: Connection,
    path: PathBuf,
}

impl Keystore {
    fn sq(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `work` in one IMMEDIATE transaction (the write lock is taken at
    /// the start, so concurrent writers queue on the busy timeout) and
    /// commits it; an error rolls all of it back.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let out = work(&tx).map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(out)
    }
}

/// A key to store in tests.
#[cfg(test)]
pub(crate) fn test_key(tag: u16, id: u8) -> NewKey {
    NewKey {
        zone: "example.com.".parse().expect("a zone name"),
        key_tag: tag,
        role: Role::Zsk,
        algorithm: crate::zone::Algorithm::EcdsaP256Sha256,
        bits: 256,
        flags: 256,
        public_key: vec![1; 64],
        token_serial: "serial".into(),
        token_label: "label".into(),
        cka_id: vec![id; 16],
        cka_label: "l".into(),
        state: KeyState::Active,
        ds: DsState::None,
        origin: Origin::Generated,
        timings: Timings {
            created: Some(crate::clock::Timestamp::from_unix(10)),
            ..Timings::default()
        },
    }
}
