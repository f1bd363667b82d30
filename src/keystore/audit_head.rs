//! The audit head: the sequence number and hash of the last audit record
//! the keystore knows was written, so that a shortened log is detected;
//! and the audit key: the token key pair that signs checkpoints of the log.

use rusqlite::{params, OptionalExtension};

use super::{Keystore, StoreError};

/// Sets a `meta` value in a transaction.
pub(super) fn put_meta(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    value: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

impl Keystore {
    /// A `meta` value, if set.
    pub fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())
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
                put_meta(tx, "audit_head", &value)?;
            }
            Ok(())
        })
    }

    /// Sets the audit head to the first record of a new chain, wherever
    /// the old head was (`dnsseal audit reset`; [`Keystore::set_audit_head`]
    /// never moves it backwards).
    pub fn restart_audit_head(&mut self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let value = format!("{seq} {hash}");
        self.write(|tx| {
            put_meta(tx, "audit_head", &value)?;
            Ok(())
        })
    }

    /// The audit head last recorded, if any.
    pub fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let v = self.meta("audit_head")?;
        Ok(v.and_then(|v| {
            let (s, h) = v.split_once(' ')?;
            Some((s.parse().ok()?, h.to_string()))
        }))
    }
}

/// The audit key as the keystore records it: where it lives and its
/// public key (the EC point X || Y of a P-256 key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditKeyRecord {
    pub token_serial: String,
    pub cka_id: Vec<u8>,
    pub public_key: Vec<u8>,
}

impl Keystore {
    /// Records the audit key (one per keystore; a new one replaces it).
    pub fn set_audit_key(&mut self, key: &AuditKeyRecord) -> Result<(), StoreError> {
        let value = format!(
            "{} {} {}",
            key.token_serial,
            hex::encode(&key.cka_id),
            hex::encode(&key.public_key)
        );
        self.write(|tx| {
            put_meta(tx, "audit_key", &value)?;
            Ok(())
        })
    }

    /// The audit key, if one was made.
    pub fn audit_key(&self) -> Result<Option<AuditKeyRecord>, StoreError> {
        let Some(v) = self.meta("audit_key")? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("audit key record '{v}'"),
        };
        let mut parts = v.split(' ');
        let (Some(serial), Some(id), Some(public), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        Ok(Some(AuditKeyRecord {
            token_serial: serial.to_string(),
            cka_id: hex::decode(id).map_err(|_| corrupt())?,
            public_key: hex::decode(public).map_err(|_| corrupt())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_head_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        ks.set_audit_head(5, "e").unwrap();
        ks.set_audit_head(4, "d").unwrap();
        assert_eq!(ks.audit_head().unwrap(), Some((5, "e".into())));
    }

    #[test]
    fn the_audit_key_is_recorded_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        assert_eq!(ks.audit_key().unwrap(), None);
        let key = AuditKeyRecord {
            token_serial: "0123abcd".into(),
            cka_id: vec![1, 2, 3],
            public_key: vec![7; 64],
        };
        ks.set_audit_key(&key).unwrap();
        assert_eq!(ks.audit_key().unwrap(), Some(key.clone()));
        let newer = AuditKeyRecord {
            cka_id: vec![4],
            ..key
        };
        ks.set_audit_key(&newer).unwrap();
        assert_eq!(ks.audit_key().unwrap(), Some(newer));
    }
}
