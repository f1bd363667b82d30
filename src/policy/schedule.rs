//! What the policy asks of a zone now: its first keys, the next step of
//! the rollover in progress, a rollover that is due (a key at the end of
//! its lifetime, or keys of another algorithm than the policy's), standby
//! ZSKs to top up, or nothing until a scheduled time ([`next_action`]).
//!
//! A key's rollover is due at the end of its lifetime less the time its
//! successor must be published ahead (propagation delay + DNSKEY TTL +
//! publish safety, RFC 7583 §3.2.1 Ipub); a lifetime of 0 means the key is
//! never rolled automatically. A zone whose last rollover took it insecure
//! stays insecure until keys are made by hand.
//!
//! Pure functions of a [`ZoneView`] and the clock; `dnsseal policy run`
//! carries the answer out.

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Role};
use crate::zone::Algorithm;

use super::start::Kind;
use super::zone::ZoneView;
use super::Layout;
use super::Policy;

/// A rollover the policy will call for: when, for which role, and a
/// sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub at: Timestamp,
    pub role: Role,
    pub what: String,
}

/// What `policy run` does for a zone now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAction {
    /// The zone's insecure rollover finished and it has no keys in the
    /// zone: nothing to do.
    StaysInsecure,
    /// The zone has no keys: make its first ones ([`first_keys`]).
    FirstKeys,
    /// A rollover is in progress: its next step, when safe.
    Continue,
    /// A rollover is due: start it.
    Start { kind: Kind, why: String },
    /// Fewer standby ZSKs are published than the policy asks: make `count`.
    Standby { count: u32 },
    /// Nothing to do; the soonest scheduled rollover, if any.
    Idle { next: Option<Scheduled> },
}

/// What the policy asks of the zone at `now`.
pub fn next_action(view: &ZoneView, now: Timestamp) -> RunAction {
    // A zone taken insecure stays so (keys made by hand bring it back).
    if view.went_insecure && !view.keys.iter().any(|k| k.state.in_zone()) {
        return RunAction::StaysInsecure;
    }
    if !view
        .keys
        .iter()
        .any(|k| k.state.in_zone() || k.state == KeyState::Generated)
    {
        return RunAction::FirstKeys;
    }
    if view.current.is_some() {
        return RunAction::Continue;
    }
    if let Some((kind, why)) = due_rollover(view, now) {
        return RunAction::Start { kind, why };
    }
    let count = standby_missing(view);
    if count > 0 {
        return RunAction::Standby { count };
    }
    RunAction::Idle {
        next: scheduled(view).into_iter().min_by_key(|s| s.at),
    }
}

/// The rollover the policy calls for now, if any: a new algorithm, or a
/// key at the end of its lifetime (less the time its new key must be
/// published ahead).
pub fn due_rollover(view: &ZoneView, now: Timestamp) -> Option<(Kind, String)> {
    let alg = view.policy.algorithm().ok()?;
    let active: Vec<&KeyRecord> = view
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .collect();
    if let Some(k) = active.iter().find(|k| k.algorithm != alg) {
        return Some((
            Kind::Algorithm(alg),
            format!(
                "the policy says {alg}, key {} is algorithm {}",
                k.key_tag,
                k.algorithm.number()
            ),
        ));
    }
    let s = scheduled(view).into_iter().min_by_key(|s| s.at)?;
    if s.at > now {
        return None;
    }
    let kind = match s.role {
        Role::Zsk => Kind::Zsk,
        Role::Ksk => Kind::Ksk,
        Role::Csk => Kind::Csk,
    };
    Some((kind, s.what))
}

/// When each active key's lifetime calls for its rollover to start.
pub fn scheduled(view: &ZoneView) -> Vec<Scheduled> {
    let p = &view.policy;
    let t = view.timing();
    let lead = t.propagation + t.dnskey_ttl + t.publish_safety;
    let mut out = Vec::new();
    for k in view.keys.iter().filter(|k| k.state == KeyState::Active) {
        let (life, name) = match k.role {
            Role::Zsk => (p.zsk_lifetime, "ZSK"),
            Role::Ksk => (p.ksk_lifetime, "KSK"),
            Role::Csk => (p.csk_lifetime, "CSK"),
        };
        let Some(active) = k.timings.active else {
            continue;
        };
        if life.secs() == 0 {
            continue;
        }
        let at = Timestamp::from_unix(active.unix() + life.secs() - lead);
        out.push(Scheduled {
            at,
            role: k.role,
            what: format!(
                "{name} {} reaches its lifetime {life} (active since {active}): its rollover starts",
                k.key_tag
            ),
        });
    }
    out
}

/// A zone's first keys: their algorithm, and each key's role and state
/// (KSK and ZSK active plus the policy's standby ZSKs published, or one
/// active CSK).
pub fn first_keys(policy: &Policy) -> Result<(Algorithm, Vec<(Role, KeyState)>), Failure> {
    let alg = policy
        .algorithm()
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut roles: Vec<(Role, KeyState)> = match policy.layout {
        Layout::Csk => vec![(Role::Csk, KeyState::Active)],
        Layout::KskZsk => vec![(Role::Ksk, KeyState::Active), (Role::Zsk, KeyState::Active)],
    };
    if policy.layout == Layout::KskZsk {
        for _ in 0..policy.standby_zsks {
            roles.push((Role::Zsk, KeyState::Published));
        }
    }
    Ok((alg, roles))
}

/// How many standby ZSKs (published, not yet signing) the zone lacks.
pub fn standby_missing(view: &ZoneView) -> u32 {
    if view.policy.layout != Layout::KskZsk {
        return 0;
    }
    let standby = view
        .keys
        .iter()
        .filter(|k| k.role == Role::Zsk && k.state == KeyState::Published)
        .count() as u32;
    view.policy.standby_zsks.saturating_sub(standby)
}

/// The algorithm of new standby ZSKs: that of the active ZSK, or `None`
/// when the zone has no active ZSK (then no standby is made).
pub fn standby_algorithm(view: &ZoneView) -> Result<Option<Algorithm>, Failure> {
    let Some(zsk) = view
        .keys
        .iter()
        .find(|k| k.role == Role::Zsk && k.state == KeyState::Active)
    else {
        return Ok(None);
    };
    Ok(Some(zsk.algorithm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rollover::Method;
    use crate::policy::zone::fixtures::*;
    use crate::policy::Span;

    /// Default policy: ZSK 90 days, KSK and CSK 365 days, lead time
    /// 1h propagation + 1h DNSKEY TTL + 1h publish safety.
    const LEAD: i64 = 3 * 3_600;

    fn at(t: i64) -> Timestamp {
        Timestamp::from_unix(t)
    }

    #[test]
    fn nothing_is_due_before_lifetime_less_lead_time() {
        let v = view(
            None,
            vec![active(1, Role::Ksk, 13, 0), active(2, Role::Zsk, 13, 0)],
        );
        let zsk_due = 90 * DAY - LEAD;
        assert_eq!(due_rollover(&v, at(zsk_due - 1)), None);
        let (kind, why) = due_rollover(&v, at(zsk_due)).unwrap();
        assert_eq!(kind, Kind::Zsk);
        assert!(why.starts_with("ZSK 2 reaches its lifetime 90d"), "{why}");
        // Idle until then, naming the soonest rollover.
        match next_action(&v, at(zsk_due - 1)) {
            RunAction::Idle { next: Some(s) } => {
                assert_eq!((s.at, s.role), (at(zsk_due), Role::Zsk));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ksk_and_csk_are_due_at_their_lifetime() {
        let mut ksk = active(1, Role::Ksk, 13, 0);
        let zsk = active(2, Role::Zsk, 13, 300 * DAY);
        let v = view(None, vec![ksk.clone(), zsk]);
        let due = 365 * DAY - LEAD;
        assert_eq!(due_rollover(&v, at(due - 1)), None);
        assert_eq!(due_rollover(&v, at(due)).map(|d| d.0), Some(Kind::Ksk));

        ksk.role = Role::Csk;
        let p = Policy {
            layout: Layout::Csk,
            csk_lifetime: Span(30 * DAY),
            ..Policy::default()
        };
        let v = view(Some(p), vec![ksk]);
        assert_eq!(due_rollover(&v, at(30 * DAY - LEAD - 1)), None);
        assert_eq!(
            next_action(&v, at(30 * DAY - LEAD)),
            RunAction::Start {
                kind: Kind::Csk,
                why: format!(
                    "CSK 1 reaches its lifetime 30d (active since {}): its rollover starts",
                    at(0)
                )
            }
        );
    }

    #[test]
    fn a_key_of_another_algorithm_calls_for_an_algorithm_rollover() {
        let v = view(
            None,
            vec![active(1, Role::Ksk, 8, 0), active(2, Role::Zsk, 8, 0)],
        );
        let (kind, why) = due_rollover(&v, at(1)).unwrap();
        assert_eq!(kind, Kind::Algorithm(Algorithm::EcdsaP256Sha256));
        assert_eq!(why, "the policy says ECDSAP256SHA256, key 1 is algorithm 8");
    }

    #[test]
    fn a_lifetime_of_zero_never_rolls() {
        let p = Policy {
            zsk_lifetime: Span(0),
            ksk_lifetime: Span(0),
            ..Policy::default()
        };
        let v = view(
            Some(p),
            vec![active(1, Role::Ksk, 13, 0), active(2, Role::Zsk, 13, 0)],
        );
        assert!(scheduled(&v).is_empty());
        assert_eq!(due_rollover(&v, at(100 * 365 * DAY)), None);
        assert_eq!(
            next_action(&v, at(100 * 365 * DAY)),
            RunAction::Idle { next: None }
        );
    }

    #[test]
    fn first_keys_follow_the_layout() {
        let p = Policy {
            standby_zsks: 2,
            ..Policy::default()
        };
        let (alg, roles) = first_keys(&p).unwrap();
        assert_eq!(alg, Algorithm::EcdsaP256Sha256);
        assert_eq!(
            roles,
            vec![
                (Role::Ksk, KeyState::Active),
                (Role::Zsk, KeyState::Active),
                (Role::Zsk, KeyState::Published),
                (Role::Zsk, KeyState::Published),
            ]
        );
        let p = Policy {
            layout: Layout::Csk,
            standby_zsks: 2,
            algorithm: "ED25519".into(),
            ..Policy::default()
        };
        assert_eq!(
            first_keys(&p).unwrap(),
            (Algorithm::Ed25519, vec![(Role::Csk, KeyState::Active)])
        );
        // A zone without keys gets them.
        assert_eq!(
            next_action(&view(None, Vec::new()), at(0)),
            RunAction::FirstKeys
        );
    }

    #[test]
    fn standby_zsks_are_topped_up_to_the_policy() {
        let p = Policy {
            standby_zsks: 2,
            ..Policy::default()
        };
        let mut keys = vec![active(1, Role::Ksk, 13, 0), active(2, Role::Zsk, 13, 0)];
        keys.push(key(3, Role::Zsk, KeyState::Published, 13));
        let v = view(Some(p.clone()), keys.clone());
        assert_eq!(standby_missing(&v), 1);
        assert_eq!(next_action(&v, at(1)), RunAction::Standby { count: 1 });
        assert_eq!(
            standby_algorithm(&v).unwrap(),
            Some(Algorithm::EcdsaP256Sha256)
        );
        keys.push(key(4, Role::Zsk, KeyState::Published, 13));
        keys.push(key(5, Role::Zsk, KeyState::Published, 13));
        assert_eq!(standby_missing(&view(Some(p.clone()), keys)), 0);
        // No active ZSK: no standby is made.
        let v = view(Some(p), vec![active(1, Role::Ksk, 13, 0)]);
        assert_eq!(standby_algorithm(&v).unwrap(), None);
        // A CSK zone has no standby ZSKs.
        let p = Policy {
            layout: Layout::Csk,
            standby_zsks: 2,
            ..Policy::default()
        };
        assert_eq!(
            standby_missing(&view(Some(p), vec![active(1, Role::Csk, 13, 0)])),
            0
        );
    }

    #[test]
    fn a_zone_taken_insecure_stays_so() {
        let done = vec![rollover(1, Method::Insecure, true)];
        let removed = key(1, Role::Csk, KeyState::Removed, 13);
        let v = view_with(None, vec![removed], done.clone());
        assert_eq!(next_action(&v, at(0)), RunAction::StaysInsecure);
        // Keys made by hand bring it back into the policy's care.
        let v = view_with(None, vec![active(2, Role::Csk, 13, 0)], done);
        assert_ne!(next_action(&v, at(0)), RunAction::StaysInsecure);
        // Without a finished insecure rollover, a keyless zone gets keys.
        let v = view(None, vec![key(1, Role::Csk, KeyState::Removed, 13)]);
        assert_eq!(next_action(&v, at(0)), RunAction::FirstKeys);
    }

    #[test]
    fn a_rollover_in_progress_comes_before_anything_due() {
        let v = view_with(
            None,
            vec![active(1, Role::Ksk, 8, 0), active(2, Role::Zsk, 8, 0)],
            vec![rollover(1, Method::ZskPrePublication, false)],
        );
        assert_eq!(next_action(&v, at(400 * DAY)), RunAction::Continue);
    }
}
