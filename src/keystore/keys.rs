//! Key rows: inserting keys, changing one key's state, reading keys back
//! (by zone or by row id), and the mapping between a row and a
//! [`KeyRecord`].

use rusqlite::{params, OptionalExtension, Row};

use super::{
    Batch, DsState, KeyRecord, KeyState, KeyUpdate, Keystore, NewKey, Origin, StoreError, Timings,
};
use crate::clock::Timestamp;
use crate::zone::Algorithm;

impl Keystore {
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
        let mut batch = Batch::new(&rec.zone.to_string());
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
            zone: r
                .zone
                .parse()
                .map_err(|e| corrupt(format!("key row {}: zone '{}': {e}", r.id, r.zone)))?,
            key_tag: r.key_tag,
            role: r.role.parse().map_err(corrupt)?,
            algorithm: Algorithm::from_number(r.algorithm).ok_or_else(|| {
                corrupt(format!(
                    "key row {}: algorithm {}, which this build cannot sign with",
                    r.id, r.algorithm
                ))
            })?,
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

pub(super) fn unix(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix)
}

pub(super) fn insert_key(tx: &rusqlite::Transaction<'_>, k: &NewKey) -> rusqlite::Result<i64> {
    let t = &k.timings;
    tx.execute(
        "INSERT INTO keys (zone, key_tag, role, algorithm, bits, flags, public_key,
            token_serial, token_label, cka_id, cka_label, state, origin, ds,
            created, published, active, inactive, removed, destroyed,
            revoked, ds_submitted, ds_seen, ds_retired, ds_gone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
            ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
        params![
            k.zone.to_string(),
            k.key_tag,
            k.role.as_str(),
            k.algorithm.number(),
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

#[cfg(test)]
mod tests {
    use super::super::test_key as new_key;
    use super::*;

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
    fn a_record_reads_back_typed_and_shows_as_before_in_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        ks.insert_keys(&[new_key(7, 1)]).unwrap();
        let k = &ks.keys(Some("example.com.")).unwrap()[0];
        assert_eq!(k.algorithm, Algorithm::EcdsaP256Sha256);
        assert_eq!(k.zone, "example.com".parse().unwrap());
        let json = serde_json::to_value(k).unwrap();
        assert_eq!(json["algorithm"], 13);
        assert_eq!(json["zone"], "example.com.");
    }

    /// A row this build cannot use is an error naming it, not a key of
    /// another algorithm or another zone.
    #[test]
    fn a_row_of_an_unknown_algorithm_or_zone_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sqlite");
        let mut ks = Keystore::create(&path).unwrap();
        let ids = ks.insert_keys(&[new_key(7, 1), new_key(8, 2)]).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE keys SET algorithm = 200 WHERE id = ?1", [ids[0]])
            .unwrap();
        let err = ks.keys(None).unwrap_err().to_string();
        assert!(
            err.contains(&format!("key row {}", ids[0])) && err.contains("algorithm 200"),
            "{err}"
        );
        conn.execute(
            "UPDATE keys SET algorithm = 13, zone = 'a..b' WHERE id = ?1",
            [ids[0]],
        )
        .unwrap();
        let err = ks.keys(None).unwrap_err().to_string();
        assert!(err.contains("zone 'a..b'"), "{err}");
        assert!(matches!(ks.key(ids[1]), Ok(Some(_))));
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
}
