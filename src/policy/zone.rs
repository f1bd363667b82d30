//! One zone as the decisions see it: its policy (its own or the
//! defaults, [`ZonePolicy`]), its keys, the rollover in progress and the
//! signings that carried each key-set generation ([`ZoneView`]).
//!
//! Both are built from records the caller has already read from the
//! keystore; nothing here reads or writes anything. The decisions that
//! take a view are in [`super::schedule`] (what `policy run` does next)
//! and [`super::start`] (how a rollover starts).

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, RolloverRecord, Signing};
use crate::zone::ZoneName;

use super::rollover::{self, Method, Readiness, Timing};
use super::Policy;

/// A zone's policy: the one stored for it, checked, or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePolicy {
    pub policy: Policy,
    /// When the zone's own policy was set; `None` for the defaults.
    pub set: Option<Timestamp>,
}

impl ZonePolicy {
    /// The policy from its stored text and the time it was set, or the
    /// defaults when none is stored. A stored text that does not parse is
    /// bad input, named with the zone.
    pub fn from_stored(
        zone: &str,
        stored: Option<(String, Timestamp)>,
    ) -> Result<ZonePolicy, Failure> {
        match stored {
            Some((text, at)) => Ok(ZonePolicy {
                policy: Policy::parse(&text)
                    .map_err(|e| Failure::BadInput(format!("{zone}: {e}")))?,
                set: Some(at),
            }),
            None => Ok(ZonePolicy {
                policy: Policy::default(),
                set: None,
            }),
        }
    }

    /// The zone has a policy of its own (not the defaults).
    pub fn is_set(&self) -> bool {
        self.set.is_some()
    }

    /// The zone's own policy and when it was set, if it has one.
    pub fn stored(self) -> Option<(Policy, Timestamp)> {
        let at = self.set?;
        Some((self.policy, at))
    }
}

/// What the keystore knows about one zone.
#[derive(Debug, Clone)]
pub struct ZoneView {
    pub zone: ZoneName,
    /// The zone's name as the keystore writes it.
    pub name: String,
    pub policy: Policy,
    /// The policy is the zone's own, not the defaults.
    pub has_policy: bool,
    /// Its keys, less the destroyed ones.
    pub keys: Vec<KeyRecord>,
    /// The rollover in progress and its method.
    pub current: Option<(RolloverRecord, Method)>,
    /// The zone's last rollover took it insecure, and it finished.
    pub went_insecure: bool,
    pub signings: Vec<Signing>,
}

impl ZoneView {
    /// The view from the zone's records: its policy, its keys (every
    /// state; destroyed ones are left out here), its rollovers (oldest
    /// first) and its signings. A rollover in progress with a method this
    /// build does not know is bad input.
    pub fn new(
        zone: &ZoneName,
        policy: ZonePolicy,
        keys: Vec<KeyRecord>,
        rollovers: Vec<RolloverRecord>,
        signings: Vec<Signing>,
    ) -> Result<ZoneView, Failure> {
        let name = zone.to_string();
        let keys: Vec<KeyRecord> = keys
            .into_iter()
            .filter(|k| k.state != KeyState::Destroyed)
            .collect();
        let went_insecure = rollovers
            .last()
            .is_some_and(|r| r.method == Method::Insecure.name() && r.finished.is_some());
        let mut current = None;
        for r in rollovers {
            if r.finished.is_none() {
                let m = Method::from_name(&r.method).ok_or_else(|| {
                    Failure::BadInput(format!(
                        "rollover {} of {name} has method '{}', which this build does not know",
                        r.id, r.method
                    ))
                })?;
                current = Some((r, m));
            }
        }
        Ok(ZoneView {
            zone: zone.clone(),
            name,
            has_policy: policy.is_set(),
            policy: policy.policy,
            keys,
            current,
            went_insecure,
            signings,
        })
    }

    /// The delays and TTLs of the zone's policy.
    pub fn timing(&self) -> Timing {
        Timing::from_policy(&self.policy)
    }

    /// The key with this row id.
    pub fn key(&self, id: i64) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// "ZSK 1234, KSK 5678" for keys by row id, or "none".
    pub fn tags(&self, ids: &[i64]) -> String {
        let v: Vec<String> = ids
            .iter()
            .filter_map(|id| self.key(*id))
            .map(|k| format!("{} {}", k.role.as_str().to_uppercase(), k.key_tag))
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }

    /// The next step of the rollover in progress and when it may run.
    pub fn next(&self) -> Option<Readiness> {
        let (rec, m) = self.current.as_ref()?;
        rollover::next(*m, rec, &self.signings, &self.timing())
    }
}

/// Test records shared by the decision modules' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::keystore::{DsState, Origin, Role, Timings};

    pub const DAY: i64 = 86_400;

    /// A key of `example.` with row id `id` and key tag `id`.
    pub fn key(id: i64, role: Role, state: KeyState, alg: u8) -> KeyRecord {
        KeyRecord {
            id,
            zone: "example.".parse().expect("a zone name"),
            key_tag: id as u16,
            role,
            algorithm: crate::zone::Algorithm::from_number(alg).expect("a test algorithm"),
            bits: 256,
            flags: if role.is_sep() { 257 } else { 256 },
            public_key: vec![id as u8; 64],
            token_serial: "s".into(),
            token_label: "t".into(),
            cka_id: vec![id as u8],
            cka_label: format!("k{id}"),
            state,
            ds: DsState::None,
            origin: Origin::Generated,
            timings: Timings::default(),
        }
    }

    /// An active key, active since `since` (unix seconds).
    pub fn active(id: i64, role: Role, alg: u8, since: i64) -> KeyRecord {
        let mut k = key(id, role, KeyState::Active, alg);
        k.timings.active = Some(Timestamp::from_unix(since));
        k
    }

    pub fn rollover(id: i64, method: Method, finished: bool) -> RolloverRecord {
        RolloverRecord {
            id,
            zone: "example.".parse().expect("a zone name"),
            method: method.name().into(),
            old: vec![1],
            new: vec![2],
            started: Timestamp::from_unix(0),
            finished: finished.then(|| Timestamp::from_unix(DAY)),
            steps: Vec::new(),
        }
    }

    /// A view of `example.` with the default policy, or `policy` if given.
    pub fn view(policy: Option<Policy>, keys: Vec<KeyRecord>) -> ZoneView {
        view_with(policy, keys, Vec::new())
    }

    pub fn view_with(
        policy: Option<Policy>,
        keys: Vec<KeyRecord>,
        rollovers: Vec<RolloverRecord>,
    ) -> ZoneView {
        let zone: ZoneName = "example.".parse().unwrap();
        let set = policy.is_some().then(|| Timestamp::from_unix(0));
        let policy = ZonePolicy {
            policy: policy.unwrap_or_default(),
            set,
        };
        ZoneView::new(&zone, policy, keys, rollovers, Vec::new()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::keystore::Role;

    #[test]
    fn a_stored_policy_is_parsed_and_set_else_the_defaults() {
        let none = ZonePolicy::from_stored("example.", None).unwrap();
        assert!(!none.is_set());
        assert_eq!(none.policy, Policy::default());
        assert_eq!(none.stored(), None);

        let at = Timestamp::from_unix(1_000);
        let own =
            ZonePolicy::from_stored("example.", Some(("standby-zsks = 2".into(), at))).unwrap();
        assert!(own.is_set());
        assert_eq!(own.policy.standby_zsks, 2);
        assert_eq!(
            own.stored().map(|(p, t)| (p.standby_zsks, t)),
            Some((2, at))
        );

        let bad =
            ZonePolicy::from_stored("example.", Some(("nonsense = 1".into(), at))).unwrap_err();
        assert!(matches!(bad, Failure::BadInput(_)));
        assert!(bad.to_string().starts_with("example.: policy:"), "{bad}");
    }

    #[test]
    fn the_view_drops_destroyed_keys_and_finds_the_rollover_in_progress() {
        let v = view_with(
            None,
            vec![
                key(1, Role::Zsk, KeyState::Active, 13),
                key(2, Role::Zsk, KeyState::Destroyed, 13),
            ],
            vec![
                rollover(1, Method::Csk, true),
                rollover(2, Method::ZskPrePublication, false),
            ],
        );
        assert_eq!(v.keys.len(), 1);
        assert_eq!(v.tags(&[1, 2]), "ZSK 1");
        assert_eq!(v.tags(&[2]), "none");
        let (rec, m) = v.current.as_ref().unwrap();
        assert_eq!((rec.id, *m), (2, Method::ZskPrePublication));
        assert!(!v.went_insecure);
        assert!(!v.has_policy);
    }

    #[test]
    fn an_unknown_method_in_progress_is_bad_input() {
        let zone: ZoneName = "example.".parse().unwrap();
        let mut r = rollover(7, Method::Csk, false);
        r.method = "zsk-by-magic".into();
        let e = ZoneView::new(
            &zone,
            ZonePolicy::from_stored("example.", None).unwrap(),
            Vec::new(),
            vec![r],
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rollover 7 of example. has method 'zsk-by-magic', which this build does not know"
        );
    }

    #[test]
    fn a_finished_insecure_rollover_marks_the_zone_insecure() {
        let v = view_with(None, Vec::new(), vec![rollover(1, Method::Insecure, true)]);
        assert!(v.went_insecure);
        assert!(v.current.is_none());
        let v = view_with(None, Vec::new(), vec![rollover(1, Method::Insecure, false)]);
        assert!(!v.went_insecure);
    }
}
