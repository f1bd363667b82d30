//! The two journals that make a change safe against a killed run: the
//! pending token objects (a key generation that has not been recorded
//! yet) and the audit outbox (events committed with a change but not yet
//! written to the audit log).

use rusqlite::params;

use super::{Keystore, StoreError};
use crate::clock::Timestamp;

impl Keystore {
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
            super::audit_head::put_meta(tx, "audit_head", &value)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_key;
    use super::*;

    #[test]
    fn a_pending_object_is_kept_until_recorded_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        let at = Timestamp::from_unix(10);
        ks.add_pending("serial", &[1; 16], at).unwrap();
        ks.add_pending("serial", &[2; 16], at).unwrap();
        ks.add_pending("serial", &[2; 16], at).unwrap();
        ks.add_pending("other", &[3; 16], at).unwrap();
        let mut pending = ks.pending("serial").unwrap();
        pending.sort();
        assert_eq!(pending, [vec![1; 16], vec![2; 16]]);
        // Recording the key clears its trace; removing clears the other.
        ks.insert_keys(&[test_key(1, 1)]).unwrap();
        assert_eq!(ks.pending("serial").unwrap(), [vec![2; 16]]);
        ks.remove_pending("serial", &[2; 16]).unwrap();
        assert!(ks.pending("serial").unwrap().is_empty());
        assert_eq!(ks.pending("other").unwrap(), [vec![3; 16]]);
    }

    #[test]
    fn an_outbox_event_done_moves_the_audit_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        let at = Timestamp::from_unix(10);
        ks.set_policy("example.", "p", at, "{\"detail\":\"x\"}".into())
            .unwrap();
        let outbox = ks.outbox().unwrap();
        assert_eq!(outbox.len(), 1);
        let (id, when, text) = &outbox[0];
        assert_eq!((*when, text.as_str()), (at, "{\"detail\":\"x\"}"));
        ks.outbox_done(*id, 3, "abc").unwrap();
        assert!(ks.outbox().unwrap().is_empty());
        assert_eq!(ks.audit_head().unwrap(), Some((3, "abc".into())));
    }
}
