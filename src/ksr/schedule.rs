//! The ZSK schedule of an offline-KSK zone: when each ZSK is published,
//! signs, stops signing and leaves the zone, planned ahead by `ksr create`
//! so that the KSK can sign every DNSKEY RRset the zone will publish.
//!
//! - [`extend`] plans the zone's ZSKs up to a time: the keys already
//!   planned keep their times, keys the keystore has in the zone join with
//!   theirs, and each ZSK is rolled at the end of its lifetime by the
//!   policy's method (RFC 7583 §3.2: pre-publication waits Ipub = Dprp +
//!   TTLkey + publish safety before the new key signs, and Iret = Dprp +
//!   TTLsig + retire safety before the old one goes; double signature
//!   keeps both signing for Dprp + max(TTLkey, TTLsig) + safety).
//! - [`periods`] cuts the plan into KSR periods: the times the set of
//!   published ZSKs changes.
//! - [`state_at`] is the state a planned key should have at a time;
//!   `policy run` moves the keystore's ZSKs along it.
//!
//! Pure functions; the schedule is stored as JSON in the keystore.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Role};
use crate::policy::{Policy, ZskMethod};

/// Most new ZSKs one `ksr create` makes (a long span with a short lifetime
/// is more likely a mistake than a plan).
pub const MAX_NEW_KEYS: usize = 16;

/// The planned life of every ZSK of a zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub keys: Vec<Lifecycle>,
}

/// One ZSK's plan, in unix seconds. A key not yet made has an empty
/// `cka_id` (see [`Schedule::fill`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The key's CKA_ID in hex (unique in its token).
    pub cka_id: String,
    pub key_tag: u16,
    pub publish: i64,
    pub active: Option<i64>,
    pub retire: Option<i64>,
    pub remove: Option<i64>,
}

/// The waits of a ZSK rollover, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waits {
    life: i64,
    /// Ipub: a new DNSKEY is in every cache.
    publish: i64,
    /// Iret: the old key's signatures are out of every cache.
    retire: i64,
    /// Both the new DNSKEY and its signatures are in every cache.
    both: i64,
    method: ZskMethod,
}

impl Waits {
    fn of(p: &Policy) -> Waits {
        let prop = p.propagation_delay.secs();
        let (key_ttl, sig_ttl) = (p.dnskey_ttl.secs(), p.max_zone_ttl.secs());
        let (ps, rs) = (p.publish_safety.secs(), p.retire_safety.secs());
        Waits {
            life: p.zsk_lifetime.secs(),
            publish: prop + key_ttl + ps,
            retire: prop + sig_ttl + rs,
            both: prop + key_ttl.max(sig_ttl) + ps.max(rs),
            method: p.zsk_method,
        }
    }
}

impl Schedule {
    /// Reads a stored schedule.
    pub fn from_json(text: &str) -> Result<Schedule, Failure> {
        serde_json::from_str(text)
            .map_err(|e| Failure::BadInput(format!("the stored ZSK schedule is unreadable: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How many planned keys are still to be made.
    pub fn unmade(&self) -> usize {
        self.keys.iter().filter(|k| k.cka_id.is_empty()).count()
    }

    /// Names the keys still to be made, in plan order.
    pub fn fill(&mut self, made: &[(Vec<u8>, u16)]) {
        let mut made = made.iter();
        for k in self.keys.iter_mut().filter(|k| k.cka_id.is_empty()) {
            if let Some((id, tag)) = made.next() {
                k.cka_id = hex::encode(id);
                k.key_tag = *tag;
            }
        }
    }

    /// The plan of the key with this CKA_ID.
    pub fn of(&self, cka_id: &[u8]) -> Option<&Lifecycle> {
        let id = hex::encode(cka_id);
        self.keys.iter().find(|k| k.cka_id == id)
    }

    /// The last time the plan covers: the start of the next rollover that
    /// is not planned yet (`None` when the ZSKs are never rolled).
    pub fn end(&self, policy: &Policy) -> Option<Timestamp> {
        let w = Waits::of(policy);
        let cur = current(&self.keys)?;
        let at = self.keys[cur].active?;
        (w.life > 0).then(|| Timestamp::from_unix(rollover_start(at, &w)))
    }
}

/// The state a planned key should be in at `t`.
pub fn state_at(k: &Lifecycle, t: Timestamp) -> KeyState {
    let t = t.unix();
    let past = |x: Option<i64>| x.is_some_and(|x| x <= t);
    if t < k.publish {
        KeyState::Generated
    } else if past(k.remove) {
        KeyState::Removed
    } else if past(k.retire) {
        KeyState::Inactive
    } else if past(k.active) {
        KeyState::Active
    } else {
        KeyState::Published
    }
}

/// The plan extended to cover `to`: `stored` (the last plan) for the keys
/// it has, the keystore's ZSKs in the zone for the others, and new keys
/// (with an empty CKA_ID, to be made) for every rollover that starts
/// before `to`.
pub fn extend(
    stored: &Schedule,
    records: &[KeyRecord],
    policy: &Policy,
    from: Timestamp,
    to: Timestamp,
) -> Result<Schedule, Failure> {
    let w = Waits::of(policy);
    let from_s = from.unix();
    let mut keys = known_keys(stored, records, &w, from_s);
    let mut made = 0;
    loop {
        let Some(cur) = current(&keys) else {
            return Err(Failure::Refused(
                "the zone has no active ZSK to plan from: make its first keys with `dnsseal policy run` first".into(),
            ));
        };
        let Some(active) = keys[cur].active else {
            break;
        };
        if w.life <= 0 {
            break;
        }
        let start = rollover_start(active, &w).max(from_s);
        if start >= to.unix() {
            break;
        }
        let standby = keys
            .iter()
            .position(|k| k.active.is_none() && k.remove.is_none());
        let next = match standby {
            Some(i) => i,
            None => {
                made += 1;
                if made > MAX_NEW_KEYS {
                    return Err(Failure::Refused(format!(
                        "planning to {to} needs more than {MAX_NEW_KEYS} new ZSKs: ask for a shorter span, or check zsk-lifetime"
                    )));
                }
                keys.push(Lifecycle {
                    cka_id: String::new(),
                    key_tag: 0,
                    publish: start,
                    active: None,
                    retire: None,
                    remove: None,
                });
                keys.len() - 1
            }
        };
        roll(&mut keys, cur, next, start, &w);
    }
    Ok(Schedule { keys })
}

/// When the rollover of a key active since `active` starts: its successor
/// is published then (pre-publication: Ipub before the end of its
/// lifetime; double signature: the overlap before it).
fn rollover_start(active: i64, w: &Waits) -> i64 {
    match w.method {
        ZskMethod::PrePublication => active + w.life - w.publish,
        ZskMethod::DoubleSignature => active + w.life - w.both,
    }
}

/// Plans the rollover from key `cur` to key `next`, starting at `start`.
fn roll(keys: &mut [Lifecycle], cur: usize, next: usize, start: i64, w: &Waits) {
    match w.method {
        ZskMethod::PrePublication => {
            // The new key signs once its DNSKEY is in every cache.
            let active = (keys[next].publish + w.publish).max(start + w.publish);
            keys[next].active = Some(active);
            keys[cur].retire = Some(active);
            keys[cur].remove = Some(active + w.retire);
        }
        ZskMethod::DoubleSignature => {
            let active = keys[next].publish.max(start);
            keys[next].active = Some(active);
            // Both sign until the new key and its signatures are cached;
            // then the old key and its signatures go together.
            let end = active + w.both;
            keys[cur].retire = Some(end);
            keys[cur].remove = Some(end);
        }
    }
}

/// The key that signs and is not yet planned to stop: the last one to
/// become active.
fn current(keys: &[Lifecycle]) -> Option<usize> {
    (0..keys.len())
        .filter(|&i| keys[i].active.is_some() && keys[i].retire.is_none())
        .max_by_key(|&i| keys[i].active)
}

/// The stored plan's keys that still exist, and the keystore's ZSKs in
/// the zone that it does not plan, with the times the keystore has.
fn known_keys(stored: &Schedule, records: &[KeyRecord], w: &Waits, from: i64) -> Vec<Lifecycle> {
    let gone = |r: &KeyRecord| matches!(r.state, KeyState::Removed | KeyState::Destroyed);
    let mut keys: Vec<Lifecycle> = stored
        .keys
        .iter()
        .filter(|k| {
            records
                .iter()
                .any(|r| hex::encode(&r.cka_id) == k.cka_id && !gone(r))
        })
        .cloned()
        .collect();
    for r in records.iter().filter(|r| r.role == Role::Zsk) {
        if keys.iter().any(|k| k.cka_id == hex::encode(&r.cka_id)) {
            continue;
        }
        let t = &r.timings;
        let at = |x: Option<Timestamp>| x.map_or(from, |x| x.unix());
        let publish = at(t.published.or(t.active).or(t.created));
        let (active, retire, remove) = match r.state {
            KeyState::Active => (Some(at(t.active)), None, None),
            KeyState::Published => (None, None, None),
            KeyState::Inactive => {
                let retire = at(t.inactive);
                (Some(at(t.active)), Some(retire), Some(retire + w.retire))
            }
            _ => continue,
        };
        keys.push(Lifecycle {
            cka_id: hex::encode(&r.cka_id),
            key_tag: r.key_tag,
            publish,
            active,
            retire,
            remove,
        });
    }
    keys
}

/// The KSR's periods from `from` to before `to`: each time the published
/// ZSKs change, with the indexes (into `s.keys`) of those published.
pub fn periods(s: &Schedule, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Vec<usize>)> {
    let (from, to) = (from.unix(), to.unix());
    let mut times: Vec<i64> = vec![from];
    for k in &s.keys {
        times.extend([Some(k.publish), k.remove].into_iter().flatten());
    }
    times.retain(|&t| t >= from && t < to);
    times.sort_unstable();
    times.dedup();
    let mut out: Vec<(Timestamp, Vec<usize>)> = Vec::new();
    for t in times {
        let set: Vec<usize> = (0..s.keys.len())
            .filter(|&i| s.keys[i].publish <= t && s.keys[i].remove.is_none_or(|r| r > t))
            .collect();
        if out.last().is_some_and(|(_, last)| *last == set) {
            continue;
        }
        out.push((Timestamp::from_unix(t), set));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Span;

    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;

    fn zsk(id: u8, state: KeyState, active: Option<i64>) -> KeyRecord {
        let mut r = crate::keys::testing::record(id, 1000 + u16::from(id), "serial", state);
        r.timings.active = active.map(Timestamp::from_unix);
        r.timings.published = active.map(Timestamp::from_unix);
        r
    }

    fn at(t: i64) -> Timestamp {
        Timestamp::from_unix(t)
    }

    /// Shipped timings: Ipub = 1h + 1h + 1h, Iret = 1h + 1d + 1h.
    fn policy(method: ZskMethod) -> Policy {
        Policy {
            zsk_lifetime: Span(30 * DAY),
            zsk_method: method,
            ..Policy::default()
        }
    }

    #[test]
    fn pre_publication_publishes_ipub_ahead_and_removes_iret_after() {
        let p = policy(ZskMethod::PrePublication);
        let t0 = 1_800_000_000;
        let records = [zsk(1, KeyState::Active, Some(t0))];
        let s = extend(
            &Schedule::default(),
            &records,
            &p,
            at(t0),
            at(t0 + 70 * DAY),
        )
        .unwrap();
        assert_eq!(s.keys.len(), 3, "two rollovers in 70 days of a 30-day key");
        assert_eq!(s.unmade(), 2);
        let ipub = 3 * HOUR;
        let iret = DAY + 2 * HOUR;
        let (old, new) = (&s.keys[0], &s.keys[1]);
        assert_eq!(new.publish, t0 + 30 * DAY - ipub);
        assert_eq!(new.active, Some(t0 + 30 * DAY));
        assert_eq!(old.retire, Some(t0 + 30 * DAY));
        assert_eq!(old.remove, Some(t0 + 30 * DAY + iret));
        assert_eq!(s.keys[2].active, Some(t0 + 60 * DAY));
        let ps = periods(&s, at(t0), at(t0 + 70 * DAY));
        let sets: Vec<Vec<usize>> = ps.iter().map(|(_, s)| s.clone()).collect();
        assert_eq!(
            sets,
            vec![vec![0], vec![0, 1], vec![1], vec![1, 2], vec![2]]
        );
        assert_eq!(ps[1].0, at(new.publish));
        assert_eq!(ps[2].0, at(t0 + 30 * DAY + iret));
        // The states policy run moves the keys through.
        assert_eq!(state_at(new, at(new.publish - 1)), KeyState::Generated);
        assert_eq!(state_at(new, at(new.publish)), KeyState::Published);
        assert_eq!(state_at(new, at(t0 + 30 * DAY)), KeyState::Active);
        assert_eq!(state_at(old, at(t0 + 30 * DAY)), KeyState::Inactive);
        assert_eq!(state_at(old, at(t0 + 30 * DAY + iret)), KeyState::Removed);
    }

    #[test]
    fn double_signature_overlaps_then_removes_both_at_once() {
        let p = policy(ZskMethod::DoubleSignature);
        let t0 = 1_800_000_000;
        let records = [zsk(1, KeyState::Active, Some(t0))];
        let s = extend(
            &Schedule::default(),
            &records,
            &p,
            at(t0),
            at(t0 + 40 * DAY),
        )
        .unwrap();
        let both = HOUR + DAY + HOUR;
        let (old, new) = (&s.keys[0], &s.keys[1]);
        assert_eq!(new.publish, t0 + 30 * DAY - both);
        assert_eq!(new.active, Some(new.publish));
        assert_eq!(old.retire, Some(t0 + 30 * DAY));
        assert_eq!(old.remove, old.retire);
        assert_eq!(state_at(old, at(t0 + 30 * DAY)), KeyState::Removed);
    }

    #[test]
    fn a_stored_plan_keeps_its_times_and_is_extended_from_its_last_key() {
        let p = policy(ZskMethod::PrePublication);
        let t0 = 1_800_000_000;
        let records = [zsk(1, KeyState::Active, Some(t0))];
        let mut first = extend(
            &Schedule::default(),
            &records,
            &p,
            at(t0),
            at(t0 + 40 * DAY),
        )
        .unwrap();
        first.fill(&[(vec![2], 1002)]);
        let mut records = records.to_vec();
        records.push(zsk(2, KeyState::Generated, None));
        let later = at(t0 + 35 * DAY);
        let second = extend(&first, &records, &p, later, at(t0 + 65 * DAY)).unwrap();
        assert_eq!(second.keys[0], first.keys[0]);
        assert_eq!(
            (second.keys[1].publish, second.keys[1].active),
            (first.keys[1].publish, first.keys[1].active)
        );
        assert_eq!(second.keys[1].retire, Some(t0 + 60 * DAY));
        assert_eq!(second.keys.len(), 3);
        assert_eq!(second.keys[2].active, Some(t0 + 60 * DAY));
        assert_eq!(second.end(&p), Some(at(t0 + 90 * DAY - 3 * HOUR)));
    }

    #[test]
    fn a_standby_key_is_the_next_one_and_an_overdue_rollover_starts_now() {
        let p = policy(ZskMethod::PrePublication);
        let t0 = 1_800_000_000;
        let now = t0 + 45 * DAY;
        let records = [
            zsk(1, KeyState::Active, Some(t0)),
            zsk(2, KeyState::Published, None),
        ];
        let s = extend(&Schedule::default(), &records, &p, at(now), at(now + DAY)).unwrap();
        assert_eq!(s.unmade(), 0, "the standby key takes over");
        assert_eq!(s.keys[1].active, Some(now + 3 * HOUR));
    }

    #[test]
    fn no_active_zsk_and_runaway_spans_are_refused() {
        let p = policy(ZskMethod::PrePublication);
        let t0 = 1_800_000_000;
        let none = extend(&Schedule::default(), &[], &p, at(t0), at(t0 + DAY));
        assert!(matches!(none, Err(Failure::Refused(m)) if m.contains("no active ZSK")));
        let records = [zsk(1, KeyState::Active, Some(t0))];
        let long = extend(
            &Schedule::default(),
            &records,
            &p,
            at(t0),
            at(t0 + 30 * DAY * 20),
        );
        assert!(matches!(long, Err(Failure::Refused(m)) if m.contains("more than 16")));
        // A key never rolled: one period, no new key.
        let never = Policy {
            zsk_lifetime: Span(0),
            ..p
        };
        let s = extend(
            &Schedule::default(),
            &records,
            &never,
            at(t0),
            at(t0 + 900 * DAY),
        )
        .unwrap();
        assert_eq!(s.keys.len(), 1);
        assert_eq!(periods(&s, at(t0), at(t0 + 900 * DAY)).len(), 1);
        assert_eq!(s.end(&never), None);
    }
}
