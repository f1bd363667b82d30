//! How a rollover starts: the method (the policy's default for the kind of
//! rollover, or the one asked for), the keys rolled out, the standby keys
//! rolled in and the keys to make ([`plan_start`]); then what the first
//! step does to them ([`first_step`]).
//!
//! - A ZSK rollover rolls in a published standby ZSK of the active ZSK's
//!   algorithm when there is one, else asks for a new ZSK.
//! - A KSK or CSK rollover always asks for a new key.
//! - An algorithm rollover replaces every key in the zone with a CSK, or a
//!   KSK and a ZSK, of the new algorithm (RFC 6781 §4.1.4).
//! - An emergency rollover replaces the one compromised signing key of a
//!   role, with a standby of its algorithm when there is one.
//! - An insecure rollover takes every key out of the zone.
//!
//! Refusals are [`Failure::Refused`] (exit 10), a missing or wrong option
//! [`Failure::BadInput`] (exit 3). Making the keys in the token and
//! recording the step is the caller's part.

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, KeyUpdate, NewKey, Role};
use crate::zone::Algorithm;

use super::rollover::{self, Method, Step};
use super::zone::ZoneView;

/// What a rollover rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zsk,
    Ksk,
    Csk,
    Algorithm(Algorithm),
    /// The compromised key's role (needed to start) and tag.
    Emergency(Option<Role>, Option<u16>),
    Insecure,
}

impl Kind {
    /// The kind's name, as in `dnsseal rollover NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Zsk => "zsk",
            Kind::Ksk => "ksk",
            Kind::Csk => "csk",
            Kind::Algorithm(_) => "algorithm",
            Kind::Emergency(..) => "emergency",
            Kind::Insecure => "insecure",
        }
    }
}

/// A key a rollover must make: its role and algorithm (one algorithm per
/// rollover).
pub type ToMake = (Role, Algorithm);

/// How a rollover starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    pub method: Method,
    /// Row ids of the keys rolled out.
    pub old: Vec<i64>,
    /// Row ids of standby keys rolled in.
    pub standby: Vec<i64>,
    /// New keys to make and roll in.
    pub make: Vec<ToMake>,
}

/// The method for a rollover of `kind`: `default` without `--method`,
/// else the one named (in full, or without its kind's prefix), if it is
/// one of `allowed`.
pub fn method_for(
    kind: Kind,
    method_arg: Option<&str>,
    allowed: &[Method],
    default: Method,
) -> Result<Method, Failure> {
    let Some(m) = method_arg else {
        return Ok(default);
    };
    let full = format!("{}-{m}", kind.name());
    Method::from_name(m)
        .or_else(|| Method::from_name(&full))
        .filter(|m| allowed.contains(m))
        .ok_or_else(|| {
            Failure::BadInput(format!(
                "--method {m} is not a {} rollover method: use {}",
                kind.name(),
                allowed
                    .iter()
                    .map(|m| m
                        .name()
                        .trim_start_matches("zsk-")
                        .trim_start_matches("ksk-"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Which keys a rollover of `kind` rolls out and in, and by which method.
pub fn plan_start(
    view: &ZoneView,
    kind: Kind,
    method_arg: Option<&str>,
) -> Result<StartPlan, Failure> {
    match kind {
        Kind::Zsk => plan_zsk(view, method_arg),
        Kind::Ksk => plan_sep(view, Role::Ksk, method_arg),
        Kind::Csk => plan_sep(view, Role::Csk, method_arg),
        Kind::Algorithm(to) => plan_algorithm(view, to, method_arg),
        Kind::Emergency(role, tag) => plan_emergency(view, role, tag),
        Kind::Insecure => {
            method_for(kind, method_arg, &[Method::Insecure], Method::Insecure)?;
            let old: Vec<&KeyRecord> = view.keys.iter().filter(|k| k.state.in_zone()).collect();
            Ok(StartPlan {
                method: Method::Insecure,
                old: ids(&old),
                standby: vec![],
                make: vec![],
            })
        }
    }
}

fn active_keys(view: &ZoneView, role: Role) -> Vec<&KeyRecord> {
    view.keys
        .iter()
        .filter(|k| k.role == role && k.state == KeyState::Active)
        .collect()
}

fn plan_zsk(view: &ZoneView, method_arg: Option<&str>) -> Result<StartPlan, Failure> {
    let method = method_for(
        Kind::Zsk,
        method_arg,
        &[Method::ZskPrePublication, Method::ZskDoubleSignature],
        Method::for_zsk(view.policy.zsk_method),
    )?;
    let old = active_keys(view, Role::Zsk);
    let Some(first) = old.first() else {
        return Err(Failure::Refused(format!(
            "{} has no active ZSK to roll{}",
            view.name,
            if active_keys(view, Role::Csk).is_empty() {
                ""
            } else {
                " (it signs with a CSK: use `dnsseal rollover csk`)"
            }
        )));
    };
    let standby = view.keys.iter().find(|k| {
        k.role == Role::Zsk && k.state == KeyState::Published && k.algorithm == first.algorithm
    });
    let alg = first.algorithm;
    Ok(match standby {
        Some(s) => StartPlan {
            method,
            old: ids(&old),
            standby: vec![s.id],
            make: vec![],
        },
        None => StartPlan {
            method,
            old: ids(&old),
            standby: vec![],
            make: vec![(Role::Zsk, alg)],
        },
    })
}

/// A KSK or CSK rollover: always a new key.
fn plan_sep(view: &ZoneView, role: Role, method_arg: Option<&str>) -> Result<StartPlan, Failure> {
    let method = if role == Role::Ksk {
        method_for(
            Kind::Ksk,
            method_arg,
            &[
                Method::KskDoubleKsk,
                Method::KskDoubleDs,
                Method::KskDoubleRrset,
                Method::KskRfc5011,
            ],
            Method::for_ksk(view.policy.ksk_method),
        )?
    } else {
        method_for(Kind::Csk, method_arg, &[Method::Csk], Method::Csk)?
    };
    let old = active_keys(view, role);
    let Some(first) = old.first() else {
        return Err(Failure::Refused(format!(
            "{} has no active {} to roll",
            view.name,
            role.as_str().to_uppercase()
        )));
    };
    Ok(StartPlan {
        method,
        old: ids(&old),
        standby: vec![],
        make: vec![(role, first.algorithm)],
    })
}

fn plan_algorithm(
    view: &ZoneView,
    to: Algorithm,
    method_arg: Option<&str>,
) -> Result<StartPlan, Failure> {
    method_for(
        Kind::Algorithm(to),
        method_arg,
        &[Method::Algorithm],
        Method::Algorithm,
    )?;
    let old: Vec<&KeyRecord> = view.keys.iter().filter(|k| k.state.in_zone()).collect();
    if old.is_empty() {
        return Err(Failure::Refused(format!(
            "{} has no keys to roll",
            view.name
        )));
    }
    if old.iter().all(|k| k.algorithm == to) {
        return Err(Failure::Refused(format!(
            "{} is already signed with {to}: nothing to roll",
            view.name
        )));
    }
    if old.iter().any(|k| k.algorithm == to) {
        return Err(Failure::Refused(format!(
            "{} already has {to} keys in the zone; an algorithm rollover replaces every key of the other algorithms",
            view.name
        )));
    }
    let csk = old.iter().any(|k| k.role == Role::Csk);
    let make = if csk {
        vec![(Role::Csk, to)]
    } else {
        vec![(Role::Ksk, to), (Role::Zsk, to)]
    };
    Ok(StartPlan {
        method: Method::Algorithm,
        old: ids(&old),
        standby: vec![],
        make,
    })
}

fn plan_emergency(
    view: &ZoneView,
    role: Option<Role>,
    tag: Option<u16>,
) -> Result<StartPlan, Failure> {
    let Some(role) = role else {
        return Err(Failure::BadInput(
            "an emergency rollover needs --role zsk|ksk|csk: the role of the compromised key"
                .into(),
        ));
    };
    let method = match role {
        Role::Zsk => Method::EmergencyZsk,
        Role::Ksk => Method::EmergencyKsk,
        Role::Csk => Method::EmergencyCsk,
    };
    let candidates: Vec<&KeyRecord> = view
        .keys
        .iter()
        .filter(|k| k.role == role && k.state.is_signing())
        .filter(|k| tag.is_none_or(|t| k.key_tag == t))
        .collect();
    let bad = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(Failure::Refused(format!(
                "{} has no signing {}{}",
                view.name,
                role.as_str().to_uppercase(),
                tag.map(|t| format!(" with tag {t}")).unwrap_or_default()
            )))
        }
        _ => {
            return Err(Failure::Refused(format!(
                "{} has several signing {}s: name the compromised one with --tag",
                view.name,
                role.as_str().to_uppercase()
            )))
        }
    };
    let standby = view.keys.iter().find(|k| {
        k.role == role
            && k.state == KeyState::Published
            && k.algorithm == bad.algorithm
            && k.id != bad.id
    });
    Ok(match standby {
        Some(s) => StartPlan {
            method,
            old: vec![bad.id],
            standby: vec![s.id],
            make: vec![],
        },
        None => StartPlan {
            method,
            old: vec![bad.id],
            standby: vec![],
            make: vec![(role, bad.algorithm)],
        },
    })
}

/// The first step of a started rollover, worked out.
#[derive(Debug, Clone)]
pub struct FirstStep {
    pub step: &'static Step,
    /// Changes to stored keys (the new keys are changed in place).
    pub updates: Vec<KeyUpdate>,
    /// "METHOD rollover started (...): old ..., new ..." for the audit
    /// record and the operator.
    pub detail: String,
}

/// Step 0 of `plan` over the zone's keys plus `new_keys` (made for
/// `plan.make`, not yet stored): the new keys take their states, DS
/// states, flags, tags and timings from the step; the stored keys' changes
/// are returned.
pub fn first_step(
    view: &ZoneView,
    plan: &StartPlan,
    new_keys: &mut [NewKey],
    now: Timestamp,
) -> FirstStep {
    // Negative ids stand for the new keys until they are stored.
    let mut keys = view.keys.clone();
    let mut new_ids = plan.standby.clone();
    for (i, n) in new_keys.iter().enumerate() {
        let id = -(i as i64) - 1;
        new_ids.push(id);
        keys.push(pseudo_record(id, n));
    }
    let step = &plan.method.steps()[0];
    let updates = rollover::apply(step, &plan.old, &new_ids, &keys, now);
    for u in &updates {
        if u.record.id < 0 {
            let i = (-u.record.id - 1) as usize;
            if let Some(n) = new_keys.get_mut(i) {
                n.state = u.record.state;
                n.ds = u.record.ds;
                n.flags = u.record.flags;
                n.key_tag = u.record.key_tag;
                n.timings = u.record.timings;
            }
        }
    }
    let stored: Vec<KeyUpdate> = updates.into_iter().filter(|u| u.record.id > 0).collect();
    let new_tags: Vec<String> = plan
        .standby
        .iter()
        .filter_map(|id| view.key(*id))
        .map(|k| format!("{} {}", k.role.as_str().to_uppercase(), k.key_tag))
        .chain(
            new_keys
                .iter()
                .map(|k| format!("{} {}", k.role.as_str().to_uppercase(), k.key_tag)),
        )
        .collect();
    let detail = format!(
        "{} rollover started ({}): old {}, new {}",
        plan.method,
        step.summary,
        view.tags(&plan.old),
        if new_tags.is_empty() {
            "none".into()
        } else {
            new_tags.join(", ")
        }
    );
    FirstStep {
        step,
        updates: stored,
        detail,
    }
}

/// After an algorithm rollover to `to` has started: a warning when the
/// zone's own policy names another algorithm (`policy run` would roll
/// back to it).
pub fn algorithm_warning(view: &ZoneView, kind: Kind) -> Option<String> {
    let Kind::Algorithm(to) = kind else {
        return None;
    };
    (view.has_policy && view.policy.algorithm != to.mnemonic()).then(|| {
        format!(
            "the policy of {} says {}: `dnsseal policy run` would roll back to it; set the policy's algorithm to {to}",
            view.name, view.policy.algorithm
        )
    })
}

/// After an emergency rollover has started (`before` the view it started
/// from, `after` the view with it in progress): what may fail meanwhile,
/// and when the compromised key can go.
pub fn emergency_warnings(
    before: &ZoneView,
    standby: &[i64],
    after: Option<&ZoneView>,
    now: Timestamp,
) -> Vec<String> {
    let mut out = Vec::new();
    let t = before.timing();
    let ipub = t.propagation + t.dnskey_ttl + t.publish_safety;
    let ready_since = standby
        .iter()
        .filter_map(|id| before.key(*id))
        .filter_map(|k| k.timings.published)
        .min();
    match ready_since {
        Some(p) if p.unix() + ipub <= now.unix() => {}
        Some(p) => out.push(format!(
            "the standby key was published {p}; resolvers that cached the DNSKEY RRset before then may fail to validate until {}",
            Timestamp::from_unix(p.unix() + ipub)
        )),
        None => out.push(format!(
            "no standby key was ready: a new key signs at once; resolvers holding the current DNSKEY RRset may fail to validate until about {} (propagation + DNSKEY TTL)",
            Timestamp::from_unix(now.unix() + ipub)
        )),
    }
    let Some(after) = after else {
        return out;
    };
    let Some((rec, m)) = &after.current else {
        return out;
    };
    let steps = rollover::plan(*m, rec, &after.signings, &after.timing(), now);
    if let Some(at) = steps
        .last()
        .and_then(|last| last.at.map(|at| (at, last.estimate)))
    {
        let (at, estimate) = at;
        out.push(format!(
            "the compromised key can leave the zone at the soonest {at}{} (`dnsseal rollover emergency {} finish`; --force removes it sooner, breaking resolvers that still hold its signatures)",
            if estimate { ", if the parent acts within the registration delay" } else { "" },
            after.name
        ));
    }
    out
}

/// A stored-key view of a key not yet stored, under a stand-in row id.
fn pseudo_record(id: i64, n: &NewKey) -> KeyRecord {
    KeyRecord {
        id,
        zone: n.zone.clone(),
        key_tag: n.key_tag,
        role: n.role,
        algorithm: n.algorithm,
        bits: n.bits,
        flags: n.flags,
        public_key: n.public_key.clone(),
        token_serial: n.token_serial.clone(),
        token_label: n.token_label.clone(),
        cka_id: n.cka_id.clone(),
        cka_label: n.cka_label.clone(),
        state: n.state,
        ds: n.ds,
        origin: n.origin,
        timings: n.timings,
    }
}

fn ids(keys: &[&KeyRecord]) -> Vec<i64> {
    keys.iter().map(|k| k.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::zone::fixtures::*;
    use crate::policy::{KskMethod, Layout, Policy, ZskMethod};

    fn ksk_zsk() -> Vec<KeyRecord> {
        vec![active(1, Role::Ksk, 13, 0), active(2, Role::Zsk, 13, 0)]
    }

    fn refused(e: Failure) -> String {
        match e {
            Failure::Refused(m) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_method_is_the_policys_default_per_kind() {
        let p = Policy {
            zsk_method: ZskMethod::DoubleSignature,
            ksk_method: KskMethod::DoubleDs,
            ..Policy::default()
        };
        let v = view(Some(p), ksk_zsk());
        let zsk = plan_start(&v, Kind::Zsk, None).unwrap();
        assert_eq!(zsk.method, Method::ZskDoubleSignature);
        let ksk = plan_start(&v, Kind::Ksk, None).unwrap();
        assert_eq!(ksk.method, Method::KskDoubleDs);
        let v = view(None, ksk_zsk());
        assert_eq!(
            plan_start(&v, Kind::Zsk, None).unwrap().method,
            Method::ZskPrePublication
        );
        assert_eq!(
            plan_start(&v, Kind::Ksk, None).unwrap().method,
            Method::KskDoubleKsk
        );
    }

    #[test]
    fn method_takes_short_and_long_names_and_refuses_other_kinds() {
        let zsk = [Method::ZskPrePublication, Method::ZskDoubleSignature];
        let d = Method::ZskPrePublication;
        assert_eq!(
            method_for(Kind::Zsk, Some("double-signature"), &zsk, d).unwrap(),
            Method::ZskDoubleSignature
        );
        assert_eq!(
            method_for(Kind::Zsk, Some("zsk-double-signature"), &zsk, d).unwrap(),
            Method::ZskDoubleSignature
        );
        let e = method_for(Kind::Zsk, Some("double-ds"), &zsk, d).unwrap_err();
        assert!(matches!(e, Failure::BadInput(_)));
        assert_eq!(
            e.to_string(),
            "--method double-ds is not a zsk rollover method: use pre-publication, double-signature"
        );
        // Through the plan: a KSK method for a CSK rollover.
        let v = view(None, vec![active(1, Role::Csk, 13, 0)]);
        let e = plan_start(&v, Kind::Csk, Some("rfc5011")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--method rfc5011 is not a csk rollover method: use csk"
        );
        let v = view(None, ksk_zsk());
        assert_eq!(
            plan_start(&v, Kind::Ksk, Some("rfc5011")).unwrap().method,
            Method::KskRfc5011
        );
    }

    #[test]
    fn a_zsk_rollover_uses_a_standby_of_the_same_algorithm_else_a_new_key() {
        let mut keys = ksk_zsk();
        keys.push(key(3, Role::Zsk, KeyState::Published, 8));
        let v = view(None, keys.clone());
        let p = plan_start(&v, Kind::Zsk, None).unwrap();
        assert_eq!(p.old, vec![2]);
        assert!(p.standby.is_empty());
        assert_eq!(p.make, vec![(Role::Zsk, Algorithm::EcdsaP256Sha256)]);
        keys.push(key(4, Role::Zsk, KeyState::Published, 13));
        let p = plan_start(&view(None, keys), Kind::Zsk, None).unwrap();
        assert_eq!(
            p,
            StartPlan {
                method: Method::ZskPrePublication,
                old: vec![2],
                standby: vec![4],
                make: vec![],
            }
        );
    }

    #[test]
    fn no_active_zsk_is_refused_with_the_csk_hint() {
        let v = view(None, vec![active(1, Role::Csk, 13, 0)]);
        assert_eq!(
            refused(plan_start(&v, Kind::Zsk, None).unwrap_err()),
            "example. has no active ZSK to roll (it signs with a CSK: use `dnsseal rollover csk`)"
        );
        let v = view(None, vec![active(1, Role::Ksk, 13, 0)]);
        assert_eq!(
            refused(plan_start(&v, Kind::Zsk, None).unwrap_err()),
            "example. has no active ZSK to roll"
        );
        assert_eq!(
            refused(plan_start(&v, Kind::Csk, None).unwrap_err()),
            "example. has no active CSK to roll"
        );
    }

    #[test]
    fn ksk_and_csk_rollovers_always_make_a_new_key() {
        let mut keys = ksk_zsk();
        keys.push(key(3, Role::Ksk, KeyState::Published, 13));
        let p = plan_start(&view(None, keys), Kind::Ksk, None).unwrap();
        assert_eq!((p.old, p.standby), (vec![1], vec![]));
        assert_eq!(p.make, vec![(Role::Ksk, Algorithm::EcdsaP256Sha256)]);
        let v = view(None, vec![active(5, Role::Csk, 15, 0)]);
        let p = plan_start(&v, Kind::Csk, None).unwrap();
        assert_eq!(p.method, Method::Csk);
        assert_eq!(
            (p.old, p.make),
            (vec![5], vec![(Role::Csk, Algorithm::Ed25519)])
        );
    }

    #[test]
    fn an_algorithm_rollover_replaces_every_key_to_match_the_layout() {
        let to = Algorithm::Ed25519;
        let v = view(None, ksk_zsk());
        let p = plan_start(&v, Kind::Algorithm(to), None).unwrap();
        assert_eq!(p.method, Method::Algorithm);
        assert_eq!(p.old, vec![1, 2]);
        assert_eq!(p.make, vec![(Role::Ksk, to), (Role::Zsk, to)]);
        let v = view(None, vec![active(1, Role::Csk, 13, 0)]);
        let p = plan_start(&v, Kind::Algorithm(to), None).unwrap();
        assert_eq!(p.make, vec![(Role::Csk, to)]);

        let v = view(None, ksk_zsk());
        let same = Kind::Algorithm(Algorithm::EcdsaP256Sha256);
        assert_eq!(
            refused(plan_start(&v, same, None).unwrap_err()),
            "example. is already signed with ECDSAP256SHA256: nothing to roll"
        );
        let mut mixed = ksk_zsk();
        mixed.push(key(3, Role::Zsk, KeyState::Published, 15));
        assert_eq!(
            refused(plan_start(&view(None, mixed), Kind::Algorithm(to), None).unwrap_err()),
            "example. already has ED25519 keys in the zone; an algorithm rollover replaces every key of the other algorithms"
        );
        assert_eq!(
            refused(plan_start(&view(None, vec![]), Kind::Algorithm(to), None).unwrap_err()),
            "example. has no keys to roll"
        );
        let p = Policy {
            layout: Layout::Csk,
            ..Policy::default()
        };
        let v = view(Some(p), ksk_zsk());
        assert_eq!(
            algorithm_warning(&v, Kind::Algorithm(to)).unwrap(),
            "the policy of example. says ECDSAP256SHA256: `dnsseal policy run` would roll back to it; set the policy's algorithm to ED25519"
        );
        assert_eq!(
            algorithm_warning(&view(None, ksk_zsk()), Kind::Algorithm(to)),
            None
        );
    }

    #[test]
    fn an_emergency_needs_a_role_and_one_candidate_and_prefers_a_standby() {
        let mut keys = ksk_zsk();
        keys.push(active(3, Role::Zsk, 13, 0));
        let v = view(None, keys.clone());
        let e = plan_start(&v, Kind::Emergency(None, None), None).unwrap_err();
        assert!(matches!(e, Failure::BadInput(_)), "{e:?}");
        assert_eq!(
            refused(plan_start(&v, Kind::Emergency(Some(Role::Zsk), None), None).unwrap_err()),
            "example. has several signing ZSKs: name the compromised one with --tag"
        );
        assert_eq!(
            refused(plan_start(&v, Kind::Emergency(Some(Role::Csk), None), None).unwrap_err()),
            "example. has no signing CSK"
        );
        assert_eq!(
            refused(plan_start(&v, Kind::Emergency(Some(Role::Zsk), Some(9)), None).unwrap_err()),
            "example. has no signing ZSK with tag 9"
        );
        let p = plan_start(&v, Kind::Emergency(Some(Role::Zsk), Some(3)), None).unwrap();
        assert_eq!(p.method, Method::EmergencyZsk);
        assert_eq!((p.old, p.standby), (vec![3], vec![]));
        assert_eq!(p.make, vec![(Role::Zsk, Algorithm::EcdsaP256Sha256)]);
        keys.push(key(4, Role::Zsk, KeyState::Published, 13));
        let v = view(None, keys);
        let p = plan_start(&v, Kind::Emergency(Some(Role::Zsk), Some(2)), None).unwrap();
        assert_eq!((p.old, p.standby, p.make), (vec![2], vec![4], vec![]));
    }

    #[test]
    fn an_insecure_rollover_takes_every_key_in_the_zone_out() {
        let mut keys = ksk_zsk();
        keys.push(key(3, Role::Zsk, KeyState::Published, 13));
        keys.push(key(4, Role::Zsk, KeyState::Generated, 13));
        let p = plan_start(&view(None, keys), Kind::Insecure, None).unwrap();
        assert_eq!(
            p,
            StartPlan {
                method: Method::Insecure,
                old: vec![1, 2, 3],
                standby: vec![],
                make: vec![],
            }
        );
    }

    #[test]
    fn the_first_step_publishes_a_standby_in_the_detail() {
        let mut keys = ksk_zsk();
        keys.push(key(3, Role::Zsk, KeyState::Published, 13));
        let v = view(None, keys);
        let plan = plan_start(&v, Kind::Zsk, None).unwrap();
        let first = first_step(&v, &plan, &mut [], Timestamp::from_unix(DAY));
        assert_eq!(first.step.name, Method::ZskPrePublication.steps()[0].name);
        assert!(
            first
                .detail
                .starts_with("zsk-pre-publication rollover started ("),
            "{}",
            first.detail
        );
        assert!(
            first.detail.ends_with("): old ZSK 2, new ZSK 3"),
            "{}",
            first.detail
        );
        assert!(first.updates.iter().all(|u| u.record.id > 0));
    }

    #[test]
    fn an_emergency_warns_until_caches_hold_the_new_key() {
        // Default policy: propagation 1h + DNSKEY TTL 1h + safety 1h.
        let ipub = 3 * 3_600;
        let now = Timestamp::from_unix(DAY);
        let mut standby = key(3, Role::Zsk, KeyState::Published, 13);
        standby.timings.published = Some(Timestamp::from_unix(DAY - 3_600));
        let v = view(None, vec![active(2, Role::Zsk, 13, 0), standby.clone()]);
        let w = emergency_warnings(&v, &[3], None, now);
        assert_eq!(
            w,
            vec![format!(
                "the standby key was published {}; resolvers that cached the DNSKEY RRset before then may fail to validate until {}",
                Timestamp::from_unix(DAY - 3_600),
                Timestamp::from_unix(DAY - 3_600 + ipub)
            )]
        );
        // Published long enough: nothing to warn about.
        standby.timings.published = Some(Timestamp::from_unix(0));
        let v = view(None, vec![active(2, Role::Zsk, 13, 0), standby]);
        assert!(emergency_warnings(&v, &[3], None, now).is_empty());
        // No standby: a new key signs at once.
        let w = emergency_warnings(&v, &[], None, now);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("no standby key was ready: a new key signs at once;"));
    }
}
