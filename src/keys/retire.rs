//! Taking a key out of service and bringing it back: `keys delete` (the
//! record is kept as removed, the token objects stay), `keys delete
//! --destroy` (the token objects go), `keys restore` (a removed key comes
//! back as a published standby).
//!
//! The refusals are decided here; the operator's confirmation of a
//! destruction is the caller's.

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Timings};
use crate::token::{TokenError, UserSession};

use super::spec::{dnskey_public_key, record_spec};

/// What a delete will do to a key, decided before anything changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletePlan {
    pub new_state: KeyState,
    /// The key's timings after the change.
    pub timings: Timings,
    /// The key is active: the zone is signed with it (allowed only forced).
    pub forced: bool,
}

/// Decides a delete of `rec` at `now`: an active key only with `force`, a
/// removed key only to destroy it.
pub fn plan_delete(
    rec: &KeyRecord,
    force: bool,
    destroy: bool,
    now: Timestamp,
) -> Result<DeletePlan, Failure> {
    let active = rec.state == KeyState::Active;
    if active && !force {
        return Err(Failure::Refused(format!(
            "key {} of {} is active: the zone is signed with it. Roll it first, or use --force (the zone will fail validation until re-signed)",
            rec.key_tag, rec.zone
        )));
    }
    if !destroy && rec.state == KeyState::Removed {
        return Err(Failure::Refused(format!(
            "key {} is already removed; --destroy destroys its token objects",
            rec.key_tag
        )));
    }
    let mut t = rec.timings;
    t.removed = t.removed.or(Some(now));
    if active {
        t.inactive = t.inactive.or(Some(now));
    }
    let new_state = if destroy {
        t.destroyed = Some(now);
        KeyState::Destroyed
    } else {
        KeyState::Removed
    };
    Ok(DeletePlan {
        new_state,
        timings: t,
        forced: active,
    })
}

impl DeletePlan {
    /// The audit record's detail for this delete.
    pub fn detail(&self) -> &'static str {
        match (self.new_state, self.forced) {
            (KeyState::Destroyed, true) => "FORCED: destroyed token objects of an active key",
            (KeyState::Destroyed, false) => "destroyed token objects",
            (_, true) => "FORCED: removed an active key (token objects kept)",
            _ => "removed (token objects kept; `keys restore` brings it back)",
        }
    }
}

/// Destroys the token objects of `rec` in the logged-in token `serial`:
/// refused for a key of another token, drift when the token has none.
pub fn destroy_objects(session: &UserSession, serial: &str, rec: &KeyRecord) -> anyhow::Result<()> {
    if serial != rec.token_serial {
        return Err(Failure::Refused(format!(
            "key {} lives in token serial {}, not in the configured token {}",
            rec.key_tag, rec.token_serial, serial
        ))
        .into());
    }
    if session.destroy(&rec.cka_id)? == 0 {
        return Err(Failure::Drift(format!(
            "the token has no object with CKA_ID {}: run `dnsseal keys reconcile`",
            hex::encode(&rec.cka_id)
        ))
        .into());
    }
    Ok(())
}

/// Only a removed key can be restored; returns its timings as a published
/// key at `now`.
pub fn plan_restore(rec: &KeyRecord, now: Timestamp) -> Result<Timings, Failure> {
    if rec.state != KeyState::Removed {
        return Err(Failure::Refused(format!(
            "key {} is {}, not removed: nothing to restore",
            rec.key_tag, rec.state
        )));
    }
    let mut t = rec.timings;
    t.removed = None;
    t.inactive = None;
    t.published = Some(now);
    Ok(t)
}

/// The token must still hold the very key `rec` describes (drift if not).
pub fn check_token_holds(session: &UserSession, rec: &KeyRecord) -> anyhow::Result<()> {
    let (alg, spec) = record_spec(rec);
    let pk = session.public_key(&rec.cka_id, spec).map_err(|e| match e {
        TokenError::KeyNotFound { .. } => Failure::Drift(format!(
            "key {}: {e}; it cannot be restored (run `dnsseal keys reconcile`)",
            rec.key_tag
        ))
        .into(),
        other => anyhow::Error::from(other),
    })?;
    if dnskey_public_key(alg, &pk)? != rec.public_key {
        return Err(Failure::Drift(format!(
            "the token object with CKA_ID {} holds another public key than the record: run `dnsseal keys reconcile`",
            hex::encode(&rec.cka_id)
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testing::record;

    fn now() -> Timestamp {
        Timestamp::from_unix(1_000)
    }

    #[test]
    fn an_active_key_only_forced() {
        let rec = record(1, 10, "S", KeyState::Active);
        let e = plan_delete(&rec, false, false, now()).unwrap_err();
        assert_eq!(e.exit_code(), 10);
        let p = plan_delete(&rec, true, false, now()).unwrap();
        assert_eq!(p.new_state, KeyState::Removed);
        assert_eq!(
            (p.timings.removed, p.timings.inactive),
            (Some(now()), Some(now()))
        );
        assert_eq!(
            p.detail(),
            "FORCED: removed an active key (token objects kept)"
        );
        let p = plan_delete(&rec, true, true, now()).unwrap();
        assert_eq!(p.new_state, KeyState::Destroyed);
        assert_eq!(p.timings.destroyed, Some(now()));
        assert_eq!(
            p.detail(),
            "FORCED: destroyed token objects of an active key"
        );
    }

    #[test]
    fn a_removed_key_only_destroyed() {
        let mut rec = record(1, 10, "S", KeyState::Removed);
        rec.timings.removed = Some(Timestamp::from_unix(5));
        let e = plan_delete(&rec, false, false, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key 10 is already removed; --destroy destroys its token objects"
        );
        let p = plan_delete(&rec, false, true, now()).unwrap();
        assert_eq!(p.new_state, KeyState::Destroyed);
        // The first removal time stays; a standby never was active.
        assert_eq!(p.timings.removed, Some(Timestamp::from_unix(5)));
        assert_eq!(p.timings.inactive, None);
        assert_eq!(p.detail(), "destroyed token objects");
    }

    #[test]
    fn restore_only_removed_keys() {
        let rec = record(1, 10, "S", KeyState::Published);
        let e = plan_restore(&rec, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key 10 is published, not removed: nothing to restore"
        );
        let mut rec = record(1, 10, "S", KeyState::Removed);
        rec.timings.removed = Some(Timestamp::from_unix(5));
        rec.timings.inactive = Some(Timestamp::from_unix(5));
        let t = plan_restore(&rec, now()).unwrap();
        assert_eq!(
            (t.removed, t.inactive, t.published),
            (None, None, Some(now()))
        );
    }
}
