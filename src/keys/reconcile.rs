//! Keystore records against the token's key objects.
//!
//! The token is the truth about which key objects exist (invariant 2):
//! [`compare`] is a pure comparison that reports drift as findings and
//! orphans, [`mark_missing`] changes records only when the operator asks
//! (`--mark-missing`), and nothing here ever touches token objects. A
//! record whose objects are both there is judged by
//! [`super::objects::judge`]: its public key, and whether its private
//! object is protected as its recorded origin promises.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::Event;
use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Keystore};
use crate::token::TokenObject;

use super::objects::Verdict;

/// The outcome of a comparison, as `keys reconcile --json` prints it.
#[derive(Debug, Serialize, Default)]
pub struct Report {
    pub token_serial: String,
    /// Records whose token objects are gone (or half gone).
    pub missing: Vec<Finding>,
    /// Records whose token object holds another public key.
    pub mismatched: Vec<Finding>,
    /// Records whose token objects are not what the record's origin
    /// promises (attributes, kind, more than one object): keys `sign`
    /// refuses.
    pub unsafe_objects: Vec<Finding>,
    /// Token key objects no record knows.
    pub orphans: Vec<Orphan>,
    /// Records that live in other tokens (not checked).
    pub other_tokens: usize,
    /// Records checked and in order.
    pub ok: usize,
}

/// A record that disagrees with the token.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub zone: String,
    pub key_tag: u16,
    pub state: KeyState,
    pub cka_id: String,
    pub problem: String,
    /// Both token objects are gone (what `--mark-missing` records).
    #[serde(skip)]
    pub gone: bool,
    /// The record's row id.
    #[serde(skip)]
    pub record_id: i64,
}

/// Token key objects that no record names.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Orphan {
    pub cka_id: String,
    pub label: String,
    pub objects: Vec<&'static str>,
}

impl Report {
    /// How many disagreements there are.
    pub fn drift(&self) -> usize {
        self.missing.len() + self.mismatched.len() + self.unsafe_objects.len() + self.orphans.len()
    }

    /// The drift failure (exit 12) left after `marked` keys were marked
    /// destroyed, if any is left.
    pub fn failure(&self, marked: usize, mark_missing: bool) -> Option<Failure> {
        let drift = self.drift();
        (drift > 0 && drift > marked).then(|| {
            Failure::Drift(format!(
                "keystore and token disagree on {} key(s); nothing was changed{}",
                drift - marked,
                if mark_missing {
                    " beyond the keys marked destroyed"
                } else {
                    ""
                }
            ))
        })
    }
}

/// What the token holds under one CKA_ID.
struct OnToken {
    private: bool,
    public: bool,
    label: String,
}

/// Compares the keystore's `records` with the key `objects` of the token
/// `serial`. `check` is asked to judge a record whose both objects exist
/// (its errors stop the comparison).
pub fn compare(
    serial: &str,
    records: &[KeyRecord],
    objects: &[TokenObject],
    mut check: impl FnMut(&KeyRecord) -> anyhow::Result<Verdict>,
) -> anyhow::Result<Report> {
    let mut on_token: BTreeMap<&[u8], OnToken> = BTreeMap::new();
    for o in objects {
        let e = on_token.entry(&o.id).or_insert_with(|| OnToken {
            private: false,
            public: false,
            label: o.label.clone(),
        });
        if o.private {
            e.private = true;
        } else {
            e.public = true;
        }
    }
    let mut report = Report {
        token_serial: serial.to_string(),
        ..Report::default()
    };
    for r in records {
        if r.token_serial != serial {
            report.other_tokens += 1;
            continue;
        }
        let present = on_token.get(r.cka_id.as_slice());
        match (r.state.has_token_object(), present) {
            (false, None) => report.ok += 1,
            (false, Some(_)) => report.mismatched.push(finding(
                r,
                "record says destroyed, but the token still holds objects with its CKA_ID",
            )),
            (true, None) => {
                let mut f = finding(r, "no private or public key object on the token");
                f.gone = true;
                report.missing.push(f);
            }
            (true, Some(OnToken { private: false, .. })) => report
                .missing
                .push(finding(r, "private key object missing on the token")),
            (true, Some(OnToken { public: false, .. })) => report
                .missing
                .push(finding(r, "public key object missing on the token")),
            (true, Some(_)) => {
                let verdict = check(r)?;
                let mut problems = verdict.problems;
                if verdict.other_public_key {
                    problems.push("token public key differs from the record".into());
                }
                if problems.len() == 1 && verdict.other_public_key {
                    report.mismatched.push(finding(r, &problems[0]));
                } else if !problems.is_empty() {
                    report.unsafe_objects.push(finding(r, &problems.join("; ")));
                } else {
                    report.ok += 1;
                }
            }
        }
    }
    for (id, t) in &on_token {
        let known = records
            .iter()
            .any(|r| r.token_serial == serial && r.cka_id.as_slice() == *id);
        if !known {
            let mut kinds = Vec::new();
            if t.private {
                kinds.push("private");
            }
            if t.public {
                kinds.push("public");
            }
            report.orphans.push(Orphan {
                cka_id: hex::encode(id),
                label: t.label.clone(),
                objects: kinds,
            });
        }
    }
    Ok(report)
}

fn finding(r: &KeyRecord, problem: &str) -> Finding {
    Finding {
        zone: r.zone.to_string(),
        key_tag: r.key_tag,
        state: r.state,
        cka_id: hex::encode(&r.cka_id),
        problem: problem.to_string(),
        gone: false,
        record_id: r.id,
    }
}

/// Records as destroyed the keys whose token objects are both gone, each
/// change handed to `audit` (with an empty `command`, which the caller
/// fills in). Returns how many were marked.
pub fn mark_missing(
    ks: &mut Keystore,
    report: &Report,
    records: &[KeyRecord],
    now: Timestamp,
    audit: &mut dyn FnMut(&mut Keystore, Event) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut marked = 0;
    for f in report.missing.iter().filter(|f| f.gone) {
        let Some(r) = records.iter().find(|r| r.id == f.record_id) else {
            continue;
        };
        let mut t = r.timings;
        t.destroyed = Some(now);
        t.removed = t.removed.or(Some(now));
        if ks.set_state(r.id, r.state, KeyState::Destroyed, &t)? {
            marked += 1;
            audit(
                ks,
                Event {
                    zone: Some(r.zone.to_string()),
                    key_tag: Some(r.key_tag),
                    key_id: Some(f.cka_id.clone()),
                    old_state: Some(r.state.to_string()),
                    new_state: Some(KeyState::Destroyed.to_string()),
                    failed: false,
                    detail: "reconcile --mark-missing: the token no longer holds this key".into(),
                    ..Event::default()
                },
            )?;
        }
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::exit_code;
    use crate::keys::testing::{object, record};

    fn both(id: u8) -> [TokenObject; 2] {
        [object(id, true), object(id, false)]
    }

    #[test]
    fn all_in_order() {
        let records = [record(1, 10, "S", KeyState::Active)];
        let r = compare("S", &records, &both(1), |_| Ok(Verdict::default())).unwrap();
        assert_eq!((r.ok, r.drift()), (1, 0));
        assert!(r.failure(0, false).is_none());
    }

    #[test]
    fn findings_and_orphans() {
        let records = [
            record(1, 10, "S", KeyState::Active),    // both gone
            record(2, 20, "S", KeyState::Published), // private gone
            record(3, 30, "S", KeyState::Active),    // public gone
            record(4, 40, "S", KeyState::Destroyed), // still on token
            record(5, 50, "S", KeyState::Active),    // other public key
            record(6, 60, "S", KeyState::Destroyed), // gone, as recorded
            record(7, 70, "OTHER", KeyState::Active),
        ];
        let mut objects = vec![object(2, false), object(3, true), object(4, true)];
        objects.extend(both(5));
        objects.push(object(9, true));
        let r = compare("S", &records, &objects, |k| {
            Ok(Verdict {
                other_public_key: k.key_tag == 50,
                problems: vec![],
            })
        })
        .unwrap();
        assert_eq!((r.ok, r.other_tokens), (1, 1));
        let missing: Vec<(u16, bool, &str)> = r
            .missing
            .iter()
            .map(|f| (f.key_tag, f.gone, f.problem.as_str()))
            .collect();
        assert_eq!(
            missing,
            [
                (10, true, "no private or public key object on the token"),
                (20, false, "private key object missing on the token"),
                (30, false, "public key object missing on the token"),
            ]
        );
        let mismatched: Vec<u16> = r.mismatched.iter().map(|f| f.key_tag).collect();
        assert_eq!(mismatched, [40, 50]);
        assert_eq!(
            r.orphans,
            [Orphan {
                cka_id: "09".into(),
                label: "key 9".into(),
                objects: vec!["private"],
            }]
        );
        assert_eq!(r.drift(), 6);
        let f = r.failure(1, true).unwrap();
        assert_eq!(
            f.to_string(),
            "keystore and token disagree on 5 key(s); nothing was changed beyond the keys marked destroyed"
        );
        assert_eq!(exit_code(&f.into()), 12);
    }

    #[test]
    fn objects_not_protected_as_recorded_are_unsafe() {
        let records = [
            record(1, 10, "S", KeyState::Active),
            record(2, 20, "S", KeyState::Published),
        ];
        let mut objects = both(1).to_vec();
        objects.extend(both(2));
        let r = compare("S", &records, &objects, |k| {
            Ok(Verdict {
                other_public_key: k.key_tag == 20,
                problems: vec![format!("CKA_EXTRACTABLE is true (key {})", k.key_tag)],
            })
        })
        .unwrap();
        let unsafe_keys: Vec<(u16, &str)> = r
            .unsafe_objects
            .iter()
            .map(|f| (f.key_tag, f.problem.as_str()))
            .collect();
        assert_eq!(
            unsafe_keys,
            [
                (10, "CKA_EXTRACTABLE is true (key 10)"),
                (
                    20,
                    "CKA_EXTRACTABLE is true (key 20); token public key differs from the record"
                ),
            ]
        );
        assert_eq!((r.ok, r.mismatched.len(), r.drift()), (0, 0, 2));
        assert_eq!(exit_code(&r.failure(0, false).unwrap().into()), 12);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["unsafe_objects"][0]["cka_id"], "01");
        assert_eq!(json["unsafe_objects"][1]["zone"], "example.");
    }

    #[test]
    fn token_errors_stop_the_comparison() {
        let records = [record(1, 10, "S", KeyState::Active)];
        let e = compare("S", &records, &both(1), |_| anyhow::bail!("device removed"));
        assert_eq!(e.unwrap_err().to_string(), "device removed");
    }

    #[test]
    fn orphans_of_a_token_whose_records_live_elsewhere() {
        // A record of another token with the same CKA_ID does not claim it.
        let records = [record(1, 10, "OTHER", KeyState::Active)];
        let r = compare("S", &records, &both(1), |_| Ok(Verdict::default())).unwrap();
        assert_eq!(r.orphans.len(), 1);
        assert_eq!(r.orphans[0].objects, ["private", "public"]);
    }
}
