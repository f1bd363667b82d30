//! Changes that land together ([`Batch`], committed in one transaction:
//! new keys, key updates, a rollover step, the zone's next key-set
//! generation and the audit events for the outbox), and the rollovers with
//! their steps as recorded.

use rusqlite::params;
use serde::Serialize;

use super::keys::{insert_key, unix};
use super::{DsState, KeyRecord, KeyState, Keystore, NewKey, StoreError};
use crate::clock::Timestamp;

impl Keystore {
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
                if !update_key(tx, u)? {
                    return Ok(None);
                }
            }
            let generation = next_generation(tx, &batch.zone)?;
            let rollover_id = match &batch.rollover {
                None => None,
                Some(write) => match write_rollover(tx, &batch.zone, write, &ids, generation)? {
                    Some(id) => Some(id),
                    None => return Ok(None),
                },
            };
            for (name, value) in &batch.meta {
                super::audit_head::put_meta(tx, name, value)?;
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
}

/// Writes one key update if the stored key is still in the state and DS
/// state the caller saw; false when it had changed meanwhile.
fn update_key(tx: &rusqlite::Transaction<'_>, u: &KeyUpdate) -> rusqlite::Result<bool> {
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
    Ok(n == 1)
}

/// Moves the zone to its next key-set generation and returns it.
fn next_generation(tx: &rusqlite::Transaction<'_>, zone: &str) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO zones (zone, generation) VALUES (?1, 1)
         ON CONFLICT (zone) DO UPDATE SET generation = generation + 1",
        params![zone],
    )?;
    tx.query_row(
        "SELECT generation FROM zones WHERE zone = ?1",
        params![zone],
        |r| r.get(0),
    )
}

/// Writes the rollover part of a batch; returns the rollover's row id, or
/// None when another process recorded a step meanwhile.
fn write_rollover(
    tx: &rusqlite::Transaction<'_>,
    zone: &str,
    write: &RolloverWrite,
    ids: &[i64],
    generation: i64,
) -> rusqlite::Result<Option<i64>> {
    let resolve = |refs: &[KeyRef]| -> Vec<i64> {
        refs.iter()
            .map(|r| match r {
                KeyRef::Existing(id) => *id,
                KeyRef::New(i) => ids.get(*i).copied().unwrap_or(-1),
            })
            .collect()
    };
    match write {
        RolloverWrite::Start {
            method,
            old,
            new,
            step,
        } => {
            tx.execute(
                "INSERT INTO rollovers (zone, method, old_keys, new_keys, started)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    zone,
                    method,
                    id_list(&resolve(old)),
                    id_list(&resolve(new)),
                    step.at.unix()
                ],
            )?;
            let id = tx.last_insert_rowid();
            insert_step(tx, id, 0, step, generation)?;
            Ok(Some(id))
        }
        RolloverWrite::Step {
            rollover,
            index,
            step,
            finished,
        } => {
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
            Ok(Some(*rollover))
        }
    }
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
    /// `meta` values set with the rest (the offline-KSK zone's ZSK
    /// schedule, request and response).
    pub meta: Vec<(String, String)>,
}

impl Batch {
    pub fn new(zone: &str) -> Batch {
        Batch {
            zone: zone.to_string(),
            new_keys: Vec::new(),
            updates: Vec::new(),
            rollover: None,
            outbox: Vec::new(),
            meta: Vec::new(),
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
    use super::super::test_key;
    use super::*;

    #[test]
    fn a_batch_lands_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keystore::create(&dir.path().join("k.sqlite")).unwrap();
        let id = ks.insert_keys(&[test_key(1, 1)]).unwrap()[0];
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
