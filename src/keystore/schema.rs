//! The keystore's file: the SQL schema and its version, creating a new
//! keystore, opening one (schema version checked), and the migration from
//! schema version 1 (a copy of the old file is kept as `<keystore>.v1`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{Keystore, StoreError};

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 2;
/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) const SCHEMA: &str = "
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

/// SQLite's default flags, and never through a symbolic link.
fn open_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
}

impl Keystore {
    /// Creates a new, empty keystore; fails if the file exists. The file is
    /// made 0600 and exclusively before SQLite opens it (SQLite would give
    /// it the umask's mode, and its journal files take the file's mode).
    pub fn create(path: &Path) -> Result<Keystore, StoreError> {
        let sq = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        crate::files::open(path, crate::files::Open::CreateNew).map_err(|source| {
            StoreError::Create {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let mut conn = Connection::open_with_flags(path, open_flags()).map_err(sq)?;
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
        let conn = Connection::open_with_flags(path, open_flags()).map_err(sq)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{DsState, KeyState};

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
}
