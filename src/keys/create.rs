//! Key generation under the keystore's journal.
//!
//! Each CKA_ID is noted in the keystore's journal (`pending_objects`)
//! before the token makes the pair, so that a run killed before the key is
//! recorded leaves a trace that [`recover_pending`] cleans up; on an error
//! every pair made is destroyed again ([`forget_objects`]). Key pairs are
//! generated in the token only (invariant 1), not modifiable, and
//! copyable only where the HSM profile signs with session copies.

use crate::audit::Event;
use crate::clock::Timestamp;
use crate::keystore::{KeyRecord, KeyState, Keystore, NewKey, Origin, Role};
use crate::policy::keygen::{default_state, initial_ds, timings_for};
use crate::token::{KeyObjects, KeySpec, Token, TokenError, UserSession};
use crate::zone::{Algorithm, Dnskey, ZoneName};

use super::spec::dnskey_public_key;

/// Tries to draw a key whose tag no other key of the zone has.
const TAG_ATTEMPTS: usize = 5;

/// What to create: a zone's keys of one algorithm, one per role.
#[derive(Debug, Clone, Copy)]
pub struct CreateRequest<'a> {
    pub zone: &'a ZoneName,
    pub alg: Algorithm,
    pub spec: KeySpec,
    pub roles: &'a [Role],
    /// The state every new key starts in; `None`: the policy default
    /// ([`default_state`]).
    pub state: Option<KeyState>,
    /// Length of a new CKA_ID (the HSM profile's).
    pub cka_id_len: usize,
    /// How `sign` will use the keys (the HSM profile's): the private
    /// objects are CKA_COPYABLE only for session copies.
    pub key_objects: KeyObjects,
    pub now: Timestamp,
}

/// Creates and records the keys of `req`, after cleaning up what an
/// interrupted run left ([`recover_pending`], which calls `audit`).
/// Returns the new records.
pub fn create_keys(
    ks: &mut Keystore,
    token: &Token<'_>,
    session: &UserSession,
    req: CreateRequest<'_>,
    audit: &mut dyn FnMut(&mut Keystore, Event) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<KeyRecord>> {
    let zone_s = req.zone.to_string();
    recover_pending(ks, session, &token.identity.serial, audit)?;
    let existing: Vec<KeyRecord> = ks
        .keys(Some(&zone_s))?
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    // Each key's state from the zone's keys and those made before it here.
    let mut planned: Vec<(Role, KeyState)> = Vec::new();
    for &role in req.roles {
        let s = req
            .state
            .unwrap_or_else(|| default_state(&existing, &planned, role, req.alg));
        planned.push((role, s));
    }
    let new_keys = generate_keys(
        ks,
        token,
        session,
        req.cka_id_len,
        req.key_objects,
        req.zone,
        req.alg,
        req.spec,
        &planned,
        req.now,
    )?;
    if let Err(e) = ks.insert_keys(&new_keys) {
        // Nothing recorded them: take the new objects out of the token again.
        let made: Vec<Vec<u8>> = new_keys.iter().map(|k| k.cka_id.clone()).collect();
        forget_objects(ks, session, &token.identity.serial, &made);
        return Err(e.into());
    }
    let all = ks.keys(Some(&zone_s))?;
    Ok(all
        .into_iter()
        .filter(|r| {
            new_keys
                .iter()
                .any(|n| n.cka_id == r.cka_id && n.token_serial == r.token_serial)
        })
        .collect())
}

/// Generates key pairs in the token for a zone and returns them as records
/// still to be stored (by the caller, in its own transaction). On an
/// error every pair made is destroyed again.
#[allow(clippy::too_many_arguments)]
pub fn generate_keys(
    ks: &mut Keystore,
    token: &Token<'_>,
    session: &UserSession,
    cka_id_len: usize,
    key_objects: KeyObjects,
    zone: &ZoneName,
    alg: Algorithm,
    spec: KeySpec,
    roles: &[(Role, KeyState)],
    now: Timestamp,
) -> anyhow::Result<Vec<NewKey>> {
    check_capability(token, alg, spec)?;
    let zone_s = zone.to_string();
    let existing: Vec<KeyRecord> = ks
        .keys(Some(&zone_s))?
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    let mut new_keys: Vec<NewKey> = Vec::new();
    let mut made_ids: Vec<Vec<u8>> = Vec::new();
    let serial = token.identity.serial.clone();
    let result = (|| -> anyhow::Result<()> {
        for &(role, state) in roles {
            let label = format!("{zone_s} {role} {} {}", alg.mnemonic(), now.compact());
            let draw = Draw {
                serial: &serial,
                id_len: cka_id_len,
                key_objects,
                spec,
                alg,
                role,
                label: &label,
                now,
            };
            let (id, dnskey) =
                generate_unique(ks, session, &draw, &existing, &new_keys, &mut made_ids)?;
            new_keys.push(NewKey {
                zone: zone.clone(),
                key_tag: dnskey.key_tag(),
                role,
                algorithm: alg,
                bits: dnskey.bits(),
                flags: dnskey.flags,
                public_key: dnskey.public_key,
                token_serial: serial.clone(),
                token_label: token.identity.label.clone(),
                cka_id: id,
                cka_label: label,
                state,
                ds: initial_ds(role, state),
                origin: Origin::Generated,
                timings: timings_for(role, state, now),
            });
        }
        Ok(())
    })();
    if let Err(e) = result {
        forget_objects(ks, session, &serial, &made_ids);
        return Err(e);
    }
    Ok(new_keys)
}

/// The token must support generating and signing with `spec`.
fn check_capability(token: &Token<'_>, alg: Algorithm, spec: KeySpec) -> anyhow::Result<()> {
    let cap = token.capability(spec)?;
    if cap.supported {
        return Ok(());
    }
    Err(TokenError::Unsupported {
        what: format!("{alg} ({spec})"),
        reason: if cap.missing.is_empty() {
            format!(
                "key size outside the token's range {}-{} bits",
                cap.min_bits.unwrap_or(0),
                cap.max_bits.unwrap_or(0)
            )
        } else {
            format!("mechanisms missing: {}", cap.missing.join(", "))
        },
    }
    .into())
}

/// One key pair to draw.
struct Draw<'a> {
    serial: &'a str,
    id_len: usize,
    key_objects: KeyObjects,
    spec: KeySpec,
    alg: Algorithm,
    role: Role,
    label: &'a str,
    now: Timestamp,
}

/// Generates a key pair whose key tag clashes with no other key of the
/// zone (a clash is legal but confuses operators and some validators),
/// noting each CKA_ID in the journal first.
fn generate_unique(
    ks: &mut Keystore,
    session: &UserSession,
    d: &Draw<'_>,
    existing: &[KeyRecord],
    planned: &[NewKey],
    made_ids: &mut Vec<Vec<u8>>,
) -> anyhow::Result<(Vec<u8>, Dnskey)> {
    for _ in 0..TAG_ATTEMPTS {
        let id = session.fresh_id(d.id_len)?;
        ks.add_pending(d.serial, &id, d.now)?;
        made_ids.push(id.clone());
        let pk = session.generate(d.spec, &id, d.label, d.key_objects)?;
        let dnskey = Dnskey::new(d.alg, d.role.is_sep(), dnskey_public_key(d.alg, &pk)?);
        let tag = dnskey.key_tag();
        let clash =
            existing.iter().any(|r| r.key_tag == tag) || planned.iter().any(|n| n.key_tag == tag);
        if !clash {
            return Ok((id, dnskey));
        }
        tracing::info!(tag, "key tag already used in the zone; drawing another key");
        session.destroy(&id)?;
        ks.remove_pending(d.serial, &id)?;
        made_ids.pop();
    }
    Err(anyhow::anyhow!(
        "could not draw a key with an unused key tag in {TAG_ATTEMPTS} attempts"
    ))
}

/// Destroys token objects that no record names, and their journal entries.
/// Best effort (it runs on an error path): failures are logged.
pub fn forget_objects(ks: &mut Keystore, session: &UserSession, serial: &str, ids: &[Vec<u8>]) {
    for id in ids {
        match session.destroy(id) {
            Ok(_) => {
                if let Err(e) = ks.remove_pending(serial, id) {
                    tracing::error!(id = %hex::encode(id), "could not clear the key journal: {e}");
                }
            }
            Err(d) => {
                tracing::error!(id = %hex::encode(id), "could not remove an unrecorded key pair: {d}")
            }
        }
    }
}

/// Cleans up after runs that were stopped between making a key pair and
/// recording it: pairs that no record names are destroyed (nothing ever
/// signed with them), and each cleanup is handed to `audit` (with an empty
/// `command`, which the caller fills in) before the objects go.
pub fn recover_pending(
    ks: &mut Keystore,
    session: &UserSession,
    serial: &str,
    audit: &mut dyn FnMut(&mut Keystore, Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pending = ks.pending(serial)?;
    if pending.is_empty() {
        return Ok(());
    }
    let known = ks.keys(None)?;
    let audit_key = ks.audit_key()?;
    for id in pending {
        let recorded = known
            .iter()
            .any(|k| k.token_serial == serial && k.cka_id == id)
            || audit_key
                .as_ref()
                .is_some_and(|a| a.token_serial == serial && a.cka_id == id);
        if !recorded {
            // Audited before the objects go, so that a run stopped halfway
            // through the cleanup leaves no destruction unlogged.
            audit(
                ks,
                Event {
                    key_id: Some(hex::encode(&id)),
                    detail: "recovery: destroyed the token objects (if any) of an interrupted key generation (never recorded, never used)".into(),
                    ..Event::default()
                },
            )?;
            let destroyed = session.destroy(&id)?;
            tracing::warn!(id = %hex::encode(&id), objects = destroyed, "destroyed a key pair of an interrupted run that was never recorded");
        }
        ks.remove_pending(serial, &id)?;
    }
    Ok(())
}
