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
pub const SCHEMA_VERSION: u32 = 2;
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

/// Version 2: DS state and rollover timing per key, zones with their policy
/// and key-set generation, signing times, rollovers, the key generation
/// journal and the audit outbox.
const SCHEMA_V2: &str = "
ALTER TABLE keys ADD COLUMN ds TEXT NOT NULL DEFAULT 'none';
ALTER TABLE keys ADD COLUMN ds_submitted INTEGER;
ALTER TABLE keys ADD COLUMN ds_seen INTEGER;
ALTER TABLE keys ADD COLUMN ds_retired INTEGER;
ALTER TABLE keys ADD COLUMN ds_gone INTEGER;
ALTER TABLE keys ADD COLUMN revoked INTEGER;
CREATE TABLE zones (
    zone        TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL DEFAULT 0,
    policy      TEXT,
    policy_set  INTEGER
);
CREATE TABLE signings (
    zone          TEXT    NOT NULL,
    generation    INTEGER NOT NULL,
    first_signed  INTEGER NOT NULL,
    last_signed   INTEGER NOT NULL,
    dnskey_ttl    INTEGER NOT NULL,
    max_ttl       INTEGER NOT NULL,
    PRIMARY KEY (zone, generation)
);
CREATE TABLE rollovers (
    id        INTEGER PRIMARY KEY,
    zone      TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    old_keys  TEXT    NOT NULL,
    new_keys  TEXT    NOT NULL,
    started   INTEGER NOT NULL,
    finished  INTEGER
);
CREATE TABLE rollover_steps (
    rollover    INTEGER NOT NULL REFERENCES rollovers (id),
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    forced      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rollover, idx)
);
CREATE TABLE pending_objects (
    token_serial  TEXT    NOT NULL,
    cka_id        BLOB    NOT NULL,
    created       INTEGER NOT NULL,
    PRIMARY KEY (token_serial, cka_id)
);
CREATE TABLE audit_outbox (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    event  TEXT    NOT NULL
);
UPDATE keys SET ds = 'seen'
    WHERE role IN ('ksk', 'csk') AND state IN ('published', 'active', 'inactive');
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
    /// Signing, but not yet in the DNSKEY RRset: the first stage of an
    /// algorithm rollover (RFC 6781 §4.1.4), signatures before keys.
    Presigning,
    /// Out of the DNSKEY RRset, still signing: the last stage of an
    /// algorithm rollover, keys before signatures.
    Postsigning,
    /// In the DNSKEY RRset with the REVOKE bit (RFC 5011), signing only the
    /// DNSKEY RRset; its key tag changed with the flag.
    Revoked,
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
            KeyState::Presigning => "presigning",
            KeyState::Postsigning => "postsigning",
            KeyState::Revoked => "revoked",
            KeyState::Removed => "removed",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether the DNSKEY is in the zone's DNSKEY RRset.
    pub const fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Published | KeyState::Active | KeyState::Inactive | KeyState::Revoked
        )
    }

    /// Whether the key makes signatures (over the RRsets of its role; a
    /// revoked key over the DNSKEY RRset only).
    pub const fn is_signing(self) -> bool {
        matches!(
            self,
            KeyState::Active | KeyState::Presigning | KeyState::Postsigning | KeyState::Revoked
        )
    }

    /// Whether the key is still part of the zone in some way.
    pub const fn in_zone(self) -> bool {
        self.is_published() || self.is_signing()
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
            "presigning" => KeyState::Presigning,
            "postsigning" => KeyState::Postsigning,
            "revoked" => KeyState::Revoked,
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

/// Where a KSK's or CSK's DS record stands at the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DsState {
    /// No DS is wanted (ZSKs, and SEP keys not yet in play).
    #[default]
    None,
    /// The parent is asked to publish it (CDS/CDNSKEY list it); not yet
    /// confirmed.
    Submitted,
    /// The operator confirmed that the parent serves it.
    Seen,
    /// The parent is asked to remove it; not yet confirmed.
    Retiring,
    /// The operator confirmed that the parent no longer serves it.
    Gone,
}

impl DsState {
    pub const fn as_str(self) -> &'static str {
        match self {
            DsState::None => "none",
            DsState::Submitted => "submitted",
            DsState::Seen => "seen",
            DsState::Retiring => "retiring",
            DsState::Gone => "gone",
        }
    }

    /// Whether the parent should serve the DS (once it acts).
    pub const fn wanted(self) -> bool {
        matches!(self, DsState::Submitted | DsState::Seen)
    }

    /// Whether the parent has yet to act on a request.
    pub const fn pending(self) -> bool {
        matches!(self, DsState::Submitted | DsState::Retiring)
    }
}

impl FromStr for DsState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => DsState::None,
            "submitted" => DsState::Submitted,
            "seen" => DsState::Seen,
            "retiring" => DsState::Retiring,
            "gone" => DsState::Gone,
            _ => return Err(format!("unknown DS state '{s}'")),
        })
    }
}

impl fmt::Display for DsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// RFC 5011 REVOKE bit set.
    pub revoked: Option<Timestamp>,
    /// The parent was asked to publish the DS.
    pub ds_submitted: Option<Timestamp>,
    /// The operator confirmed the DS at the parent.
    pub ds_seen: Option<Timestamp>,
    /// The parent was asked to remove the DS.
    pub ds_retired: Option<Timestamp>,
    /// The operator confirmed the DS gone from the parent.
    pub ds_gone: Option<Timestamp>,
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
    pub ds: DsState,
    pub origin: Origin,
    pub timings: Timings,
}

impl KeyRecord {
    /// The key's DNSKEY RDATA as it is published (flags as stored, so a
    /// revoked key carries its REVOKE bit).
    pub fn dnskey(&self) -> crate::zone::Dnskey {
        crate::zone::Dnskey {
            flags: self.flags,
            protocol: crate::zone::dnskey::PROTOCOL,
            algorithm: self.algorithm,
            public_key: self.public_key.clone(),
        }
    }
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
    pub ds: DsState,
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
        tx.execute_batch(SCHEMA_V2).map_err(sq)?;
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
            Some(v) if v == "1" => {
                let mut ks = Keystore {
                    conn,
                    path: path.to_path_buf(),
                };
                ks.migrate_v1()?;
                Ok(ks)
            }
            other => Err(StoreError::SchemaVersion {
                path: path.to_path_buf(),
                found: other.unwrap_or_else(|| "none".into()),
            }),
        }
    }

    /// Version 1 to 2: a copy of the old file is kept beside it first
    /// (`<keystore>.v1`), then the whole migration runs in one transaction.
    fn migrate_v1(&mut self) -> Result<(), StoreError> {
        let mut backup = self.path.clone().into_os_string();
        backup.push(".v1");
        let backup = PathBuf::from(backup);
        if !backup.exists() {
            self.conn
                .execute("VACUUM INTO ?1", params![backup.to_string_lossy()])
                .map_err(self.sq())?;
        }
        tracing::warn!(
            "keystore {} upgraded from schema 1 to {SCHEMA_VERSION} (the old file is kept as {}); KSKs and CSKs in use are taken to have their DS at the parent",
            self.path.display(),
            backup.display()
        );
        self.write(|tx| {
            tx.execute_batch(SCHEMA_V2)?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'schema_version'",
                params![SCHEMA_VERSION.to_string()],
            )?;
            Ok(())
        })
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
                ids.push(insert_key(tx, k)?);
                tx.execute(
                    "DELETE FROM pending_objects WHERE token_serial = ?1 AND cka_id = ?2",
                    params![k.token_serial, k.cka_id],
                )?;
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
        let Some(mut rec) = self.key(id)? else {
            return Ok(false);
        };
        if rec.state != expected {
            return Ok(false);
        }
        let original_ds = rec.ds;
        rec.state = new;
        let kept = rec.timings;
        rec.timings = Timings {
            created: kept.created,
            revoked: kept.revoked,
            ds_submitted: kept.ds_submitted,
            ds_seen: kept.ds_seen,
            ds_retired: kept.ds_retired,
            ds_gone: kept.ds_gone,
            ..*timings
        };
        // A KSK/CSK leaving the zone by hand takes its DS with it, and one
        // coming back asks for it again: CDS/CDNSKEY follow.
        let when = timings
            .removed
            .or(timings.destroyed)
            .or(timings.published)
            .or(kept.created);
        if rec.role.is_sep() {
            if !new.in_zone() && rec.ds.wanted() {
                rec.ds = DsState::Retiring;
                rec.timings.ds_retired = when;
            } else if new.is_published() && !rec.ds.wanted() {
                rec.ds = DsState::Submitted;
                rec.timings.ds_submitted = when;
            }
        }
        let mut batch = Batch::new(&rec.zone.clone());
        batch.updates.push(KeyUpdate {
            expected_state: expected,
            expected_ds: original_ds,
            record: rec,
        });
        self.commit(batch).map(|r| r.is_some())
    }

    /// All keys, or the keys of one zone, ordered by zone, role, creation.
    pub fn keys(&self, zone: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE (?1 IS NULL OR zone = ?1)
             ORDER BY zone, CASE role WHEN 'ksk' THEN 0 WHEN 'csk' THEN 1 ELSE 2 END, created, id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.sq())?;
        let rows = stmt
            .query_map(params![zone], raw_row)
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    /// One key by row id.
    pub fn key(&self, id: i64) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1");
        let raw = self
            .conn
            .query_row(&sql, params![id], raw_row)
            .optional()
            .map_err(self.sq())?;
        raw.map(|r| self.decode(r)).transpose()
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
            ds: r.ds.parse().map_err(corrupt)?,
            origin: match r.origin.as_str() {
                "generated" => Origin::Generated,
                "imported" => Origin::Imported,
                other => return Err(corrupt(format!("origin '{other}'"))),
            },
            timings: Timings {
                created: ts(Some(r.times[0].unwrap_or(0))),
                published: ts(r.times[1]),
                active: ts(r.times[2]),
                inactive: ts(r.times[3]),
                removed: ts(r.times[4]),
                destroyed: ts(r.times[5]),
                revoked: ts(r.times[6]),
                ds_submitted: ts(r.times[7]),
                ds_seen: ts(r.times[8]),
                ds_retired: ts(r.times[9]),
                ds_gone: ts(r.times[10]),
            },
        })
    }

    /// Applies a batch of changes in one transaction: new keys, key
    /// updates (each only if the key is still as the caller saw it), a
    /// rollover step, the zone's next key-set generation, and the audit
    /// events that describe it all (kept in the outbox until they are in
    /// the log: a crash between the two loses nothing). Returns the row ids
    /// of the new keys and the rollover, or None when a key had changed
    /// meanwhile (then nothing was written).
    pub fn commit(&mut self, batch: Batch) -> Result<Option<Committed>, StoreError> {
        self.write(|tx| {
            let mut ids = Vec::with_capacity(batch.new_keys.len());
            for k in &batch.new_keys {
                ids.push(insert_key(tx, k)?);
                tx.execute(
                    "DELETE FROM pending_objects WHERE token_serial = ?1 AND cka_id = ?2",
                    params![k.token_serial, k.cka_id],
                )?;
            }
            for u in &batch.updates {
                let r = &u.record;
                let t = &r.timings;
                let n = tx.execute(
                    "UPDATE keys SET state = ?1, ds = ?2, flags = ?3, key_tag = ?4,
                        published = ?5, active = ?6, inactive = ?7, removed = ?8, destroyed = ?9,
                        revoked = ?10, ds_submitted = ?11, ds_seen = ?12, ds_retired = ?13,
                        ds_gone = ?14
                     WHERE id = ?15 AND state = ?16 AND ds = ?17",
                    params![
                        r.state.as_str(),
                        r.ds.as_str(),
                        r.flags,
                        r.key_tag,
                        unix(t.published),
                        unix(t.active),
                        unix(t.inactive),
                        unix(t.removed),
                        unix(t.destroyed),
                        unix(t.revoked),
                        unix(t.ds_submitted),
                        unix(t.ds_seen),
                        unix(t.ds_retired),
                        unix(t.ds_gone),
                        r.id,
                        u.expected_state.as_str(),
                        u.expected_ds.as_str(),
                    ],
                )?;
                if n != 1 {
                    return Ok(None);
                }
            }
            tx.execute(
                "INSERT INTO zones (zone, generation) VALUES (?1, 1)
                 ON CONFLICT (zone) DO UPDATE SET generation = generation + 1",
                params![batch.zone],
            )?;
            let generation: i64 = tx.query_row(
                "SELECT generation FROM zones WHERE zone = ?1",
                params![batch.zone],
                |r| r.get(0),
            )?;
            let resolve = |refs: &[KeyRef]| -> Vec<i64> {
                refs.iter()
                    .map(|r| match r {
                        KeyRef::Existing(id) => *id,
                        KeyRef::New(i) => ids.get(*i).copied().unwrap_or(-1),
                    })
                    .collect()
            };
            let mut rollover_id = None;
            match &batch.rollover {
                None => {}
                Some(RolloverWrite::Start {
                    method,
                    old,
                    new,
                    step,
                }) => {
                    tx.execute(
                        "INSERT INTO rollovers (zone, method, old_keys, new_keys, started)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            batch.zone,
                            method,
                            id_list(&resolve(old)),
                            id_list(&resolve(new)),
                            step.at.unix()
                        ],
                    )?;
                    let id = tx.last_insert_rowid();
                    insert_step(tx, id, 0, step, generation)?;
                    rollover_id = Some(id);
                }
                Some(RolloverWrite::Step {
                    rollover,
                    index,
                    step,
                    finished,
                }) => {
                    let n: i64 = tx.query_row(
                        "SELECT COUNT(*) FROM rollover_steps WHERE rollover = ?1",
                        params![rollover],
                        |r| r.get(0),
                    )?;
                    if n != *index as i64 {
                        return Ok(None);
                    }
                    insert_step(tx, *rollover, *index, step, generation)?;
                    if *finished {
                        tx.execute(
                            "UPDATE rollovers SET finished = ?1 WHERE id = ?2",
                            params![step.at.unix(), rollover],
                        )?;
                    }
                    rollover_id = Some(*rollover);
                }
            }
            for (at, event) in &batch.outbox {
                tx.execute(
                    "INSERT INTO audit_outbox (at, event) VALUES (?1, ?2)",
                    params![at.unix(), event],
                )?;
            }
            Ok(Some(Committed {
                key_ids: ids,
                rollover: rollover_id,
            }))
        })
    }

    /// The zone's key-set generation: it grows with every change of keys.
    pub fn generation(&self, zone: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT generation FROM zones WHERE zone = ?1",
                params![zone],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())?
            .unwrap_or(0))
    }

    /// Records that the zone was signed with the keys of `generation`.
    pub fn record_signing(
        &mut self,
        zone: &str,
        generation: i64,
        at: Timestamp,
        dnskey_ttl: u32,
        max_ttl: u32,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO signings (zone, generation, first_signed, last_signed, dnskey_ttl, max_ttl)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                 ON CONFLICT (zone, generation) DO UPDATE SET
                    first_signed = MIN(first_signed, excluded.first_signed),
                    last_signed = MAX(last_signed, excluded.last_signed),
                    dnskey_ttl = MAX(dnskey_ttl, excluded.dnskey_ttl),
                    max_ttl = MAX(max_ttl, excluded.max_ttl)",
                params![zone, generation, at.unix(), dnskey_ttl, max_ttl],
            )?;
            Ok(())
        })
    }

    /// Every recorded signing of a zone, by generation.
    pub fn signings(&self, zone: &str) -> Result<Vec<Signing>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT generation, first_signed, last_signed, dnskey_ttl, max_ttl
                 FROM signings WHERE zone = ?1 ORDER BY generation",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![zone], |r| {
                Ok(Signing {
                    generation: r.get(0)?,
                    first_signed: Timestamp::from_unix(r.get(1)?),
                    last_signed: Timestamp::from_unix(r.get(2)?),
                    dnskey_ttl: r.get(3)?,
                    max_ttl: r.get(4)?,
                })
            })
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        Ok(rows)
    }

    /// The policy text stored for a zone, with the time it was set.
    pub fn policy(&self, zone: &str) -> Result<Option<(String, Timestamp)>, StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT policy, policy_set FROM zones WHERE zone = ?1",
                params![zone],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sq())?;
        Ok(match row {
            Some((Some(p), Some(t))) => Some((p, Timestamp::from_unix(t))),
            _ => None,
        })
    }

    /// Zones that have a policy.
    pub fn policy_zones(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT zone FROM zones WHERE policy IS NOT NULL ORDER BY zone")
            .map_err(self.sq())?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.sq())?
            .collect::<Result<Vec<String>, _>>()
            .map_err(self.sq())?;
        Ok(rows)
    }

    /// Stores a zone's policy, with its audit record, in one transaction.
    pub fn set_policy(
        &mut self,
        zone: &str,
        text: &str,
        at: Timestamp,
        event: String,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO zones (zone, generation, policy, policy_set) VALUES (?1, 0, ?2, ?3)
                 ON CONFLICT (zone) DO UPDATE SET policy = excluded.policy, policy_set = excluded.policy_set",
                params![zone, text, at.unix()],
            )?;
            tx.execute(
                "INSERT INTO audit_outbox (at, event) VALUES (?1, ?2)",
                params![at.unix(), event],
            )?;
            Ok(())
        })
    }

    /// The rollovers of a zone, oldest first, with their steps.
    pub fn rollovers(&self, zone: &str) -> Result<Vec<RolloverRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, method, old_keys, new_keys, started, finished
                 FROM rollovers WHERE zone = ?1 ORDER BY id",
            )
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![zone], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, method, old, new, started, finished) in rows {
            let mut st = self
                .conn
                .prepare(
                    "SELECT name, at, generation, forced FROM rollover_steps
                     WHERE rollover = ?1 ORDER BY idx",
                )
                .map_err(self.sq())?;
            let steps = st
                .query_map(params![id], |r| {
                    Ok(StepRecord {
                        name: r.get(0)?,
                        at: Timestamp::from_unix(r.get(1)?),
                        generation: r.get(2)?,
                        forced: r.get::<_, i64>(3)? != 0,
                    })
                })
                .map_err(self.sq())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sq())?;
            out.push(RolloverRecord {
                id,
                zone: zone.to_string(),
                method,
                old: parse_id_list(&old),
                new: parse_id_list(&new),
                started: Timestamp::from_unix(started),
                finished: finished.map(Timestamp::from_unix),
                steps,
            });
        }
        Ok(out)
    }

    /// Notes a token object about to be generated, so that a run killed
    /// before the key is recorded leaves a trace to clean up.
    pub fn add_pending(
        &mut self,
        token_serial: &str,
        cka_id: &[u8],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO pending_objects (token_serial, cka_id, created) VALUES (?1, ?2, ?3)",
                params![token_serial, cka_id, at.unix()],
            )?;
            Ok(())
        })
    }

    /// Forgets a pending token object (destroyed, or recorded as a key).
    pub fn remove_pending(&mut self, token_serial: &str, cka_id: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM pending_objects WHERE token_serial = ?1 AND cka_id = ?2",
                params![token_serial, cka_id],
            )?;
            Ok(())
        })
    }

    /// Token objects of interrupted key generations.
    pub fn pending(&self, token_serial: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT cka_id FROM pending_objects WHERE token_serial = ?1")
            .map_err(self.sq())?;
        let rows = stmt
            .query_map(params![token_serial], |r| r.get(0))
            .map_err(self.sq())?
            .collect::<Result<Vec<Vec<u8>>, _>>()
            .map_err(self.sq())?;
        Ok(rows)
    }

    /// Audit events committed with a change but not yet in the log.
    pub fn outbox(&self) -> Result<Vec<(i64, Timestamp, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, at, event FROM audit_outbox ORDER BY id")
            .map_err(self.sq())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, Timestamp::from_unix(r.get(1)?), r.get(2)?))
            })
            .map_err(self.sq())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sq())?;
        Ok(rows)
    }

    /// Marks an outbox event as written to the log (its record is the new
    /// head), in one transaction.
    pub fn outbox_done(&mut self, id: i64, seq: u64, hash: &str) -> Result<(), StoreError> {
        let value = format!("{seq} {hash}");
        self.write(|tx| {
            tx.execute("DELETE FROM audit_outbox WHERE id = ?1", params![id])?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_head', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![value],
            )?;
            Ok(())
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

const KEY_COLUMNS: &str = "id, zone, key_tag, role, algorithm, bits, flags, public_key,
    token_serial, token_label, cka_id, cka_label, state, origin, ds,
    created, published, active, inactive, removed, destroyed,
    revoked, ds_submitted, ds_seen, ds_retired, ds_gone";

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
    ds: String,
    times: [Option<i64>; 11],
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    let mut times = [None; 11];
    for (i, t) in times.iter_mut().enumerate() {
        *t = r.get(15 + i)?;
    }
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
        ds: r.get(14)?,
        times,
    })
}

fn unix(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix)
}

fn insert_key(tx: &rusqlite::Transaction<'_>, k: &NewKey) -> rusqlite::Result<i64> {
    let t = &k.timings;
    tx.execute(
        "INSERT INTO keys (zone, key_tag, role, algorithm, bits, flags, public_key,
            token_serial, token_label, cka_id, cka_label, state, origin, ds,
            created, published, active, inactive, removed, destroyed,
            revoked, ds_submitted, ds_seen, ds_retired, ds_gone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
            ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
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
            k.ds.as_str(),
            unix(t.created).unwrap_or(0),
            unix(t.published),
            unix(t.active),
            unix(t.inactive),
            unix(t.removed),
            unix(t.destroyed),
            unix(t.revoked),
            unix(t.ds_submitted),
            unix(t.ds_seen),
            unix(t.ds_retired),
            unix(t.ds_gone),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn insert_step(
    tx: &rusqlite::Transaction<'_>,
    rollover: i64,
    index: usize,
    step: &NewStep,
    generation: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO rollover_steps (rollover, idx, name, at, generation, forced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            rollover,
            index as i64,
            step.name,
            step.at.unix(),
            generation,
            i64::from(step.forced)
        ],
    )?;
    Ok(())
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn parse_id_list(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

/// One signing of a zone with one generation of its key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signing {
    pub generation: i64,
    pub first_signed: Timestamp,
    pub last_signed: Timestamp,
    /// The DNSKEY TTL in the signed zone (the largest, if signed more than
    /// once with this generation).
    pub dnskey_ttl: u32,
    /// The largest TTL of any signed RRset.
    pub max_ttl: u32,
}

/// A step of a rollover as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub name: String,
    pub at: Timestamp,
    /// The zone's key-set generation the step made.
    pub generation: i64,
    /// Done with --force before its safe time.
    pub forced: bool,
}

/// A rollover as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloverRecord {
    pub id: i64,
    pub zone: String,
    pub method: String,
    /// Row ids of the keys rolled out.
    pub old: Vec<i64>,
    /// Row ids of the keys rolled in.
    pub new: Vec<i64>,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    pub steps: Vec<StepRecord>,
}

/// A step about to be recorded.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub name: String,
    pub at: Timestamp,
    pub forced: bool,
}

/// A key in a batch: one already stored, or one of the batch's new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    Existing(i64),
    New(usize),
}

/// The rollover part of a batch.
#[derive(Debug, Clone)]
pub enum RolloverWrite {
    Start {
        method: String,
        old: Vec<KeyRef>,
        new: Vec<KeyRef>,
        step: NewStep,
    },
    Step {
        rollover: i64,
        /// The index the step must get (guards against a concurrent step).
        index: usize,
        step: NewStep,
        finished: bool,
    },
}

/// A key record to write, if the stored one is still as seen.
#[derive(Debug, Clone)]
pub struct KeyUpdate {
    pub expected_state: KeyState,
    pub expected_ds: DsState,
    pub record: KeyRecord,
}

/// Changes that happen together or not at all.
#[derive(Debug, Clone)]
pub struct Batch {
    pub zone: String,
    pub new_keys: Vec<NewKey>,
    pub updates: Vec<KeyUpdate>,
    pub rollover: Option<RolloverWrite>,
    /// Audit events (time, JSON) for the outbox.
    pub outbox: Vec<(Timestamp, String)>,
}

impl Batch {
    pub fn new(zone: &str) -> Batch {
        Batch {
            zone: zone.to_string(),
            new_keys: Vec::new(),
            updates: Vec::new(),
            rollover: None,
            outbox: Vec::new(),
        }
    }
}

/// What a committed batch created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub key_ids: Vec<i64>,
    pub rollover: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    use super::*;

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
