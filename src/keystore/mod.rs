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
//! | `zones.rs` | per zone: key-set generation, signings, policy text |
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

pub use records::{DsState, KeyRecord, KeyState, NewKey, Origin, Role, Timings};
pub use rollovers::{
    Batch, Committed, KeyRef, KeyUpdate, NewStep, RolloverRecord, RolloverWrite, Signing,
    StepRecord,
};
pub use schema::SCHEMA_VERSION;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    pub(super) fn new_key(tag: u16, id: u8) -> NewKey {
        NewKey {
            zone: "example.com.".into(),
            key_tag: tag,
            role: Role::Zsk,
            algorithm: 13,
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
                created: Some(Timestamp::from_unix(10)),
                ..Timings::default()
            },
        }
    }

    #[test]
    fn insert_list_and_change_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let mut ks = Keystore::create(&path).unwrap();
        let ids = ks.insert_keys(&[new_key(1, 1), new_key(2, 2)]).unwrap();
        assert_eq!(ks.keys(Some("example.com.")).unwrap().len(), 2);
        assert_eq!(ks.keys(Some("other.")).unwrap().len(), 0);
        let t = Timings {
            removed: Some(Timestamp::from_unix(20)),
            ..Timings::default()
        };
        assert!(ks
            .set_state(ids[0], KeyState::Active, KeyState::Removed, &t)
            .unwrap());
        // The second caller who saw "active" loses.
        assert!(!ks
            .set_state(ids[0], KeyState::Active, KeyState::Removed, &t)
            .unwrap());
        let reopened = Keystore::open(&path).unwrap();
        let k = &reopened.keys(None).unwrap()[0];
        assert_eq!(k.state, KeyState::Removed);
        assert_eq!(k.timings.removed, Some(Timestamp::from_unix(20)));
    }

    #[test]
    fn duplicate_token_object_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let mut ks = Keystore::create(&path).unwrap();
        assert!(ks.insert_keys(&[new_key(1, 1), new_key(2, 1)]).is_err());
        assert!(
            ks.keys(None).unwrap().is_empty(),
            "half a transaction landed"
        );
    }

    #[test]
    fn audit_head_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        ks.set_audit_head(5, "e").unwrap();
        ks.set_audit_head(4, "d").unwrap();
        assert_eq!(ks.audit_head().unwrap(), Some((5, "e".into())));
    }

    #[test]
    fn wrong_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        drop(Keystore::create(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
        assert!(matches!(
            Keystore::open(&path),
            Err(StoreError::SchemaVersion { .. })
        ));
    }
}

#[cfg(test)]
mod migration_tests {
    use super::schema::SCHEMA;
    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn version_1_is_upgraded_with_a_copy_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', '1')",
                [],
            )
            .unwrap();
            c.execute(
                "INSERT INTO keys (zone, key_tag, role, algorithm, bits, flags, public_key,
                    token_serial, token_label, cka_id, cka_label, state, origin, created)
                 VALUES ('example.', 1, 'ksk', 13, 256, 257, x'01', 's', 'l', x'02', 'c',
                    'active', 'generated', 5)",
                [],
            )
            .unwrap();
        }
        let ks = Keystore::open(&path).unwrap();
        let k = &ks.keys(None).unwrap()[0];
        assert_eq!(k.state, KeyState::Active);
        assert_eq!(k.ds, DsState::Seen, "a KSK in use has its DS at the parent");
        assert_eq!(ks.generation("example.com.").unwrap(), 0);
        assert!(
            dir.path().join("k.sqlite.v1").exists(),
            "no copy of the old file"
        );
        drop(ks);
        // Opened again: version 2, no second upgrade.
        let again = Keystore::open(&path).unwrap();
        assert_eq!(again.keys(None).unwrap().len(), 1);
    }

    #[test]
    fn a_batch_lands_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        let id = ks.insert_keys(&[super::tests::new_key(1, 1)]).unwrap()[0];
        let k = ks.key(id).unwrap().expect("the key just stored");
        assert_eq!(ks.key(id + 1).unwrap(), None);
        // An update that expects a stale state fails the whole batch: the
        // rollover step and the outbox event must not land either.
        let mut stale = k.clone();
        stale.state = KeyState::Inactive;
        let mut batch = Batch::new("example.com.");
        batch.updates.push(KeyUpdate {
            expected_state: KeyState::Published,
            expected_ds: DsState::None,
            record: stale,
        });
        batch.rollover = Some(RolloverWrite::Start {
            method: "zsk-pre-publication".into(),
            old: vec![KeyRef::Existing(k.id)],
            new: vec![],
            step: NewStep {
                name: "start".into(),
                at: Timestamp::from_unix(10),
                forced: false,
            },
        });
        batch.outbox.push((Timestamp::from_unix(10), "{}".into()));
        assert_eq!(ks.commit(batch).unwrap(), None);
        assert!(ks.rollovers("example.com.").unwrap().is_empty());
        assert!(ks.outbox().unwrap().is_empty());
        let gen_before = ks.generation("example.com.").unwrap();
        // The same batch with the right expectation lands, generation + 1.
        let mut fresh = k.clone();
        fresh.state = KeyState::Inactive;
        let mut batch = Batch::new("example.com.");
        batch.updates.push(KeyUpdate {
            expected_state: KeyState::Active,
            expected_ds: DsState::None,
            record: fresh,
        });
        batch.outbox.push((Timestamp::from_unix(10), "{}".into()));
        assert!(ks.commit(batch).unwrap().is_some());
        assert_eq!(ks.keys(None).unwrap()[0].state, KeyState::Inactive);
        assert_eq!(ks.outbox().unwrap().len(), 1);
        assert_eq!(ks.generation("example.com.").unwrap(), gen_before + 1);
    }
}
