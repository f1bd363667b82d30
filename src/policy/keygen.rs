//! The defaults of a new key: which state it starts in when the operator
//! does not say, its first timings, and whether the parent is asked for its
//! DS. Pure functions of the zone's records, the role and the clock.

use crate::clock::Timestamp;
use crate::keystore::{DsState, KeyRecord, KeyState, Role, Timings};
use crate::zone::Algorithm;

/// Whether an active key of role `have` already does the job of `want`
/// (a CSK does every job, and any active key stands in the way of a CSK).
pub fn covers(have: Role, want: Role) -> bool {
    want == Role::Csk || have == want || have == Role::Csk
}

/// The state a new key starts in when the operator does not say: active
/// when nothing does its job yet, a published standby when something
/// does, and only generated when the zone is signed with another algorithm
/// (publishing it before it signs would break RFC 4035 §2.2; an algorithm
/// rollover introduces it).
///
/// `existing` are the zone's keys, `planned` the (role, state) of keys made
/// before this one in the same run, `alg` the new key's algorithm.
pub fn default_state(
    existing: &[KeyRecord],
    planned: &[(Role, KeyState)],
    role: Role,
    alg: Algorithm,
) -> KeyState {
    let other_algorithm_active = existing
        .iter()
        .any(|r| r.state == KeyState::Active && r.algorithm != alg);
    if other_algorithm_active {
        return KeyState::Generated;
    }
    let active_now = existing
        .iter()
        .filter(|r| r.state == KeyState::Active)
        .any(|r| covers(r.role, role))
        || planned
            .iter()
            .any(|(r, s)| *s == KeyState::Active && covers(*r, role));
    if active_now {
        KeyState::Published
    } else {
        KeyState::Active
    }
}

/// The state of an imported BIND key when the operator does not say: what
/// its `Activate`/`Publish` times say at `now`, else only generated.
pub fn imported_state(
    publish: Option<Timestamp>,
    activate: Option<Timestamp>,
    now: Timestamp,
) -> KeyState {
    match (activate, publish) {
        (Some(a), _) if a <= now => KeyState::Active,
        (_, Some(p)) if p <= now => KeyState::Published,
        _ => KeyState::Generated,
    }
}

/// The first timings of a key that starts in `state` at `now`.
pub fn timings_for(role: Role, state: KeyState, now: Timestamp) -> Timings {
    Timings {
        created: Some(now),
        published: state.is_published().then_some(now),
        active: (state == KeyState::Active).then_some(now),
        ds_submitted: initial_ds(role, state).pending().then_some(now),
        ..Timings::default()
    }
}

/// A KSK or CSK that goes straight into the zone needs its DS at the
/// parent: it starts as submitted (CDS/CDNSKEY ask for it, and `dnsseal
/// keys ds` prints it) until `dnsseal rollover ds-seen` confirms it.
pub fn initial_ds(role: Role, state: KeyState) -> DsState {
    if role.is_sep() && state.is_published() {
        DsState::Submitted
    } else {
        DsState::None
    }
}

#[cfg(test)]
mod tests {
    const P256: Algorithm = Algorithm::EcdsaP256Sha256;

    use super::*;
    use crate::keystore::Origin;

    fn key(role: Role, alg: u8, state: KeyState) -> KeyRecord {
        KeyRecord {
            id: 1,
            zone: "example.".parse().expect("a zone name"),
            key_tag: 1,
            role,
            algorithm: crate::zone::Algorithm::from_number(alg).expect("a test algorithm"),
            bits: 256,
            flags: if role.is_sep() { 257 } else { 256 },
            public_key: vec![0; 64],
            token_serial: "s".into(),
            token_label: "l".into(),
            cka_id: vec![1],
            cka_label: "k".into(),
            state,
            ds: DsState::None,
            origin: Origin::Generated,
            timings: Timings::default(),
        }
    }

    #[test]
    fn covers_csk_does_every_job() {
        assert!(covers(Role::Csk, Role::Ksk));
        assert!(covers(Role::Csk, Role::Zsk));
        assert!(covers(Role::Ksk, Role::Csk));
        assert!(covers(Role::Zsk, Role::Zsk));
        assert!(!covers(Role::Ksk, Role::Zsk));
        assert!(!covers(Role::Zsk, Role::Ksk));
    }

    #[test]
    fn default_state_first_keys_are_active() {
        assert_eq!(default_state(&[], &[], Role::Ksk, P256), KeyState::Active);
        // KSK then ZSK in one run: the ZSK's job is not done by the KSK.
        let planned = [(Role::Ksk, KeyState::Active)];
        assert_eq!(
            default_state(&[], &planned, Role::Zsk, P256),
            KeyState::Active
        );
        // A second ZSK in the same run is a standby.
        let planned = [(Role::Ksk, KeyState::Active), (Role::Zsk, KeyState::Active)];
        assert_eq!(
            default_state(&[], &planned, Role::Zsk, P256),
            KeyState::Published
        );
    }

    #[test]
    fn default_state_standby_when_the_job_is_done() {
        let zone = [key(Role::Zsk, 13, KeyState::Active)];
        assert_eq!(
            default_state(&zone, &[], Role::Zsk, P256),
            KeyState::Published
        );
        assert_eq!(default_state(&zone, &[], Role::Ksk, P256), KeyState::Active);
        // Any active key stands in the way of a CSK.
        assert_eq!(
            default_state(&zone, &[], Role::Csk, P256),
            KeyState::Published
        );
        // A published (not active) key does not do the job.
        let zone = [key(Role::Zsk, 13, KeyState::Published)];
        assert_eq!(default_state(&zone, &[], Role::Zsk, P256), KeyState::Active);
    }

    #[test]
    fn default_state_other_algorithm_only_generated() {
        let zone = [key(Role::Csk, 8, KeyState::Active)];
        assert_eq!(
            default_state(&zone, &[], Role::Csk, P256),
            KeyState::Generated
        );
        assert_eq!(
            default_state(&zone, &[], Role::Zsk, P256),
            KeyState::Generated
        );
    }

    #[test]
    fn initial_ds_only_for_published_sep_keys() {
        assert_eq!(initial_ds(Role::Ksk, KeyState::Active), DsState::Submitted);
        assert_eq!(
            initial_ds(Role::Csk, KeyState::Published),
            DsState::Submitted
        );
        assert_eq!(initial_ds(Role::Ksk, KeyState::Generated), DsState::None);
        assert_eq!(initial_ds(Role::Zsk, KeyState::Active), DsState::None);
    }

    #[test]
    fn timings_follow_the_state() {
        let now = Timestamp::from_unix(1_000_000);
        let t = timings_for(Role::Ksk, KeyState::Active, now);
        assert_eq!(
            (t.created, t.published, t.active, t.ds_submitted),
            (Some(now), Some(now), Some(now), Some(now))
        );
        let t = timings_for(Role::Zsk, KeyState::Published, now);
        assert_eq!(
            (t.created, t.published, t.active, t.ds_submitted),
            (Some(now), Some(now), None, None)
        );
        let t = timings_for(Role::Ksk, KeyState::Generated, now);
        assert_eq!(
            (t.created, t.published, t.active, t.ds_submitted),
            (Some(now), None, None, None)
        );
        assert_eq!(t.removed, None);
    }

    #[test]
    fn imported_state_follows_bind_times() {
        let now = Timestamp::from_unix(1_000);
        let past = Some(Timestamp::from_unix(500));
        let future = Some(Timestamp::from_unix(2_000));
        assert_eq!(imported_state(past, past, now), KeyState::Active);
        assert_eq!(imported_state(past, future, now), KeyState::Published);
        assert_eq!(imported_state(future, future, now), KeyState::Generated);
        assert_eq!(imported_state(None, None, now), KeyState::Generated);
        assert_eq!(imported_state(None, Some(now), now), KeyState::Active);
    }
}
