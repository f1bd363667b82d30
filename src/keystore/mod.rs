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

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::clock::Timestamp;

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE keys (
    id            INTEGER PRIMARY KEY,
    zone          TEXT    NOT NULL,
    key_tag       INTEGER NOT NULL CHECK (key_tag BETWEEN 0 AND 65535),
    role          TEXT    NOT NULL CHECK (role IN ('ksk', 'zsk', 'csk')),
    algorithm     INTEGER NOT NULL,
    bits          INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    public_key    BLOB    NOT NULL,
    token_serial  TEXT    NOT NULL,
    token_label   TEXT    NOT NULL,
    cka_id        BLOB    NOT NULL,
    cka_label     TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    origin        TEXT    NOT NULL CHECK (origin IN ('generated', 'imported')),
    created       INTEGER NOT NULL,
    published     INTEGER,
    active        INTEGER,
    inactive      INTEGER,
    removed       INTEGER,
    destroyed     INTEGER,
    UNIQUE (token_serial, cka_id)
);
CREATE INDEX keys_zone ON keys (zone, key_tag);
";

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

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Key signing key: signs the DNSKEY RRset, has a DS at the parent.
    Ksk,
    /// Zone signing key: signs everything else.
    Zsk,
    /// Combined signing key: both jobs.
    Csk,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Ksk => "ksk",
            Role::Zsk => "zsk",
            Role::Csk => "csk",
        }
    }

    /// KSKs and CSKs carry the SEP flag and have DS records at the parent.
    pub const fn is_sep(self) -> bool {
        matches!(self, Role::Ksk | Role::Csk)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ksk" => Ok(Role::Ksk),
            "zsk" => Ok(Role::Zsk),
            "csk" => Ok(Role::Csk),
            _ => Err(format!("unknown key role '{s}': use ksk, zsk or csk")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Exists in the token; not yet in the zone.
    Generated,
    /// In the DNSKEY RRset, not signing (a standby or pre-published key).
    Published,
    /// In the DNSKEY RRset and signing.
    Active,
    /// Still in the DNSKEY RRset, no longer signing (retired).
    Inactive,
    /// Out of the zone; the token object is kept, the key can be restored.
    Removed,
    /// The token object was destroyed; the record is kept as history.
    Destroyed,
}

impl KeyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::Generated => "generated",
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Inactive => "inactive",
            KeyState::Removed => "removed",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether the DNSKEY is in the zone's DNSKEY RRset.
    pub const fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Published | KeyState::Active | KeyState::Inactive
        )
    }

    /// Whether a token object should exist for the key.
    pub const fn has_token_object(self) -> bool {
        !matches!(self, KeyState::Destroyed)
    }
}

impl FromStr for KeyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "generated" => KeyState::Generated,
            "published" => KeyState::Published,
            "active" => KeyState::Active,
            "inactive" => KeyState::Inactive,
            "removed" => KeyState::Removed,
            "destroyed" => KeyState::Destroyed,
            _ => return Err(format!("unknown key state '{s}'")),
        })
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the key came to be in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Generated inside the token; never left it.
    Generated,
    /// Imported from a key file (migration); was outside a token once.
    Imported,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Generated => "generated",
            Origin::Imported => "imported",
        }
    }
}

/// Timings of a key, as in BIND's key metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    pub created: Option<Timestamp>,
    pub published: Option<Timestamp>,
    pub active: Option<Timestamp>,
    pub inactive: Option<Timestamp>,
    pub removed: Option<Timestamp>,
    pub destroyed: Option<Timestamp>,
}

/// A key as the keystore knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Row id (stable within one keystore).
    pub id: i64,
    pub zone: String,
    pub key_tag: u16,
    pub role: Role,
    pub algorithm: u8,
    pub bits: u32,
    pub flags: u16,
    #[serde(serialize_with = "as_base64")]
    pub public_key: Vec<u8>,
    pub token_serial: String,
    pub token_label: String,
    #[serde(serialize_with = "as_hex")]
    pub cka_id: Vec<u8>,
    pub cka_label: String,
    pub state: KeyState,
    pub origin: Origin,
    pub timings: Timings,
}

fn as_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn as_base64<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

/// A key about to be recorded.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub zone: String,
    pub key_tag: u16,
    pub role: Role,
    pub algorithm: u8,
    pub bits: u32,
    pub flags: u16,
    pub public_key: Vec<u8>,
    pub token_serial: String,
    pub token_label: String,
    pub cka_id: Vec<u8>,
    pub cka_label: String,
    pub state: KeyState,
    pub origin: Origin,
    pub timings: Timings,
}

/// An open keystore.
pub struct Keystore {
    conn: Connection,
    path: PathBuf,
}

impl Keystore {
    /// Creates a new, empty keystore; fails if the file exists.
    pub fn create(path: &Path) -> Result<Keystore, StoreError> {
        let sq = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            return Err(sq(rusqlite::Error::InvalidPath(path.to_path_buf())));
        }
        let mut conn = Connection::open(path).map_err(sq)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sq)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        tx.execute_batch(SCHEMA).map_err(sq)?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(Keystore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing keystore and checks its schema version.
    pub fn open(path: &Path) -> Result<Keystore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let sq = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sq)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sq)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sq)?;
        match version {
            Some(v) if v == SCHEMA_VERSION.to_string() => Ok(Keystore {
                conn,
                path: path.to_path_buf(),
            }),
            other => Err(StoreError::SchemaVersion {
                path: path.to_path_buf(),
                found: other.unwrap_or_else(|| "none".into()),
            }),
        }
    }

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

    /// Inserts several keys in one transaction; returns their row ids.
    pub fn insert_keys(&mut self, keys: &[NewKey]) -> Result<Vec<i64>, StoreError> {
        self.write(|tx| {
            let mut ids = Vec::with_capacity(keys.len());
            for k in keys {
                tx.execute(
                    "INSERT INTO keys (zone, key_tag, role, algorithm, bits, flags, public_key,
                    token_serial, token_label, cka_id, cka_label, state, origin,
                    created, published, active, inactive, removed, destroyed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                    ?14, ?15, ?16, ?17, ?18, ?19)",
                    params![
                        k.zone,
                        k.key_tag,
                        k.role.as_str(),
                        k.algorithm,
                        k.bits,
                        k.flags,
                        k.public_key,
                        k.token_serial,
                        k.token_label,
                        k.cka_id,
                        k.cka_label,
                        k.state.as_str(),
                        k.origin.as_str(),
                        k.timings.created.map(Timestamp::unix),
                        k.timings.published.map(Timestamp::unix),
                        k.timings.active.map(Timestamp::unix),
                        k.timings.inactive.map(Timestamp::unix),
                        k.timings.removed.map(Timestamp::unix),
                        k.timings.destroyed.map(Timestamp::unix),
                    ],
                )?;
                ids.push(tx.last_insert_rowid());
            }
            Ok(ids)
        })
    }

    /// Changes a key's state and timings, but only if it is still in the
    /// state the caller saw (so that two processes cannot both act on it).
    /// Returns false when the record had changed meanwhile.
    pub fn set_state(
        &mut self,
        id: i64,
        expected: KeyState,
        new: KeyState,
        timings: &Timings,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE keys SET state = ?1, published = ?2, active = ?3, inactive = ?4,
                    removed = ?5, destroyed = ?6
                 WHERE id = ?7 AND state = ?8",
                params![
                    new.as_str(),
                    timings.published.map(Timestamp::unix),
                    timings.active.map(Timestamp::unix),
                    timings.inactive.map(Timestamp::unix),
                    timings.removed.map(Timestamp::unix),
                    timings.destroyed.map(Timestamp::unix),
                    id,
                    expected.as_str(),
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// All keys, or the keys of one zone, ordered by zone, role, creation.
    pub fn keys(&self, zone: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = "SELECT id, zone, key_tag, role, algorithm, bits, flags, public_key,
                token_serial, token_label, cka_id, cka_label, state, origin,
                created, published, active, inactive, removed, destroyed
             FROM keys WHERE (?1 IS NULL OR zone = ?1)
             ORDER BY zone, CASE role WHEN 'ksk' THEN 0 WHEN 'csk' THEN 1 ELSE 2 END, created, id";
        let mut stmt = self.conn.prepare(sql).map_err(self.sq())?;
        let rows = stmt
            .query_map(params![zone], raw_row)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    fn decode(&self, r: RawRow) -> Result<KeyRecord, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            path: self.path.clone(),
            what,
        };
        let ts = |v: Option<i64>| v.map(Timestamp::from_unix);
        Ok(KeyRecord {
            id: r.id,
            zone: r.zone,
            key_tag: r.key_tag,
            role: r.role.parse().map_err(corrupt)?,
            algorithm: r.algorithm,
            bits: r.bits,
            flags: r.flags,
            public_key: r.public_key,
            token_serial: r.token_serial,
            token_label: r.token_label,
            cka_id: r.cka_id,
            cka_label: r.cka_label,
            state: r.state.parse().map_err(corrupt)?,
            origin: match r.origin.as_str() {
                "generated" => Origin::Generated,
                "imported" => Origin::Imported,
                other => return Err(corrupt(format!("origin '{other}'"))),
            },
            timings: Timings {
                created: ts(Some(r.created)),
                published: ts(r.published),
                active: ts(r.active),
                inactive: ts(r.inactive),
                removed: ts(r.removed),
                destroyed: ts(r.destroyed),
            },
        })
    }

    /// Remembers the audit log's head after an append.
    pub fn set_audit_head(&mut self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let value = format!("{seq} {hash}");
        self.write(|tx| {
            // Never move the head backwards: a slower process may finish later.
            let current: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE name = 'audit_head'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let current_seq = current
                .as_deref()
                .and_then(|v| v.split(' ').next())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            if seq > current_seq {
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES ('audit_head', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![value],
                )?;
            }
            Ok(())
        })
    }

    /// The audit head last recorded, if any.
    pub fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'audit_head'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(v.and_then(|v| {
            let (s, h) = v.split_once(' ')?;
            Some((s.parse().ok()?, h.to_string()))
        }))
    }
}

struct RawRow {
    id: i64,
    zone: String,
    key_tag: u16,
    role: String,
    algorithm: u8,
    bits: u32,
    flags: u16,
    public_key: Vec<u8>,
    token_serial: String,
    token_label: String,
    cka_id: Vec<u8>,
    cka_label: String,
    state: String,
    origin: String,
    created: i64,
    published: Option<i64>,
    active: Option<i64>,
    inactive: Option<i64>,
    removed: Option<i64>,
    destroyed: Option<i64>,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        zone: r.get(1)?,
        key_tag: r.get(2)?,
        role: r.get(3)?,
        algorithm: r.get(4)?,
        bits: r.get(5)?,
        flags: r.get(6)?,
        public_key: r.get(7)?,
        token_serial: r.get(8)?,
        token_label: r.get(9)?,
        cka_id: r.get(10)?,
        cka_label: r.get(11)?,
        state: r.get(12)?,
        origin: r.get(13)?,
        created: r.get(14)?,
        published: r.get(15)?,
        active: r.get(16)?,
        inactive: r.get(17)?,
        removed: r.get(18)?,
        destroyed: r.get(19)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key(tag: u16, id: u8) -> NewKey {
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
