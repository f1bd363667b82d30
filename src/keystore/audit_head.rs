//! The audit head: the sequence number and hash of the last audit record
//! the keystore knows was written, so that a shortened log is detected.

use rusqlite::{params, OptionalExtension};

use super::{Keystore, StoreError};

impl Keystore {
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

    /// Sets the audit head to the first record of a new chain, wherever
    /// the old head was (`dnsseal audit reset`; [`Keystore::set_audit_head`]
    /// never moves it backwards).
    pub fn restart_audit_head(&mut self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let value = format!("{seq} {hash}");
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('audit_head', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![value],
            )?;
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
}
