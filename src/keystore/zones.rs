//! Per-zone rows: the zone's key-set generation, the signings made with
//! each generation, and the zone's stored policy text.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Keystore, StoreError};
use crate::clock::Timestamp;

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

impl Keystore {
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
}
