//! The next step of a rollover in progress: whether the step asked for is
//! the one due ([`check_step`]), whether `policy run` takes it ([`due_step`]),
//! whether it may run now or only forced
//! ([`plan_step`]), what `rollover ds-seen` confirms ([`ds_seen`]), and
//! the sentences that describe a step and its key changes to the operator
//! and in the audit log ([`describe_next`], [`change_text`]).
//!
//! Pure functions of a [`ZoneView`] and the clock: the caller records the
//! step, its audit records and the key changes in one keystore
//! transaction.

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{KeyState, KeyUpdate, RolloverRecord};

use super::rollover::{self, Method, Readiness, Step};
use super::start::Kind;
use super::zone::ZoneView;

/// Refuses to start a rollover while another is in progress.
pub fn check_start(view: &ZoneView) -> Result<(), Failure> {
    match &view.current {
        Some((rec, m)) => Err(Failure::Refused(format!(
            "a {m} rollover of {} is in progress since {} (next step '{}'): finish it first; `dnsseal rollover plan {}` shows it",
            view.name,
            rec.started,
            view.next().map_or("?", |r| r.step),
            view.name
        ))),
        None => Ok(()),
    }
}

/// The rollover in progress, its method and its next step, if `step`
/// (a step name, or `next`) of a `kind` rollover names that step.
pub fn check_step<'v>(
    view: &'v ZoneView,
    kind: Kind,
    step: &str,
) -> Result<(&'v RolloverRecord, Method, Readiness), Failure> {
    let Some((rec, method)) = &view.current else {
        return Err(Failure::Refused(format!(
            "no rollover of {} is in progress: start one with `dnsseal rollover {} {} start`",
            view.name,
            kind.name(),
            view.name
        )));
    };
    if method.kind() != kind.name() {
        return Err(Failure::Refused(format!(
            "the rollover in progress for {} is a {method} rollover, not a {} one: use `dnsseal rollover {} {} next`",
            view.name,
            kind.name(),
            method.kind(),
            view.name
        )));
    }
    let Some(r) = view.next() else {
        return Err(Failure::Refused("the rollover has no step left".into()));
    };
    if r.needs_operator && step != "ds-seen" {
        return Err(Failure::Refused(format!(
            "the next step of the {method} rollover of {} is ds-seen: check that the parent's servers publish the DS RRset the zone asks for (`dnsseal keys ds {}`), then confirm with `dnsseal rollover ds-seen {}`",
            view.name, view.name, view.name
        )));
    }
    if step != "next" && step != r.step {
        let known = method.steps().iter().any(|s| s.name == step);
        return Err(Failure::Refused(format!(
            "{}the next step of the {method} rollover of {} is '{}', not '{}'",
            if known { "" } else { "unknown step name; " },
            view.name,
            r.step,
            step
        )));
    }
    Ok((rec, *method, r))
}

/// What `policy run` does with the rollover in progress.
#[derive(Debug, Clone)]
pub enum DueStep<'v> {
    /// Its next step is due: take it.
    Take(&'v RolloverRecord, Method, Readiness),
    /// Nothing yet, and why (no step left, the parent, a wait).
    Wait(String),
}

/// Whether the next step of the rollover in progress is due at `now`;
/// a ds-seen step waits for the operator.
pub fn due_step(view: &ZoneView, now: Timestamp) -> DueStep<'_> {
    let (Some((rec, method)), Some(r)) = (&view.current, view.next()) else {
        return DueStep::Wait("nothing to do".into());
    };
    if r.needs_operator {
        return DueStep::Wait(format!(
            "{method} rollover waits for the parent: once its servers publish the DS RRset the zone's CDS asks for, run `dnsseal rollover ds-seen {}`",
            view.name
        ));
    }
    if !r.ready(now) {
        return DueStep::Wait(format!("{method} rollover: '{}' is not due yet", r.step));
    }
    DueStep::Take(rec, *method, r)
}

/// A step of a rollover, worked out.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub step: &'static Step,
    pub index: usize,
    /// The key changes.
    pub updates: Vec<KeyUpdate>,
    /// The step is the rollover's last.
    pub finished: bool,
    /// It runs before its safe time, by `--force`.
    pub forced: bool,
    /// The warning to log when forced.
    pub warning: Option<String>,
    /// The audit record's text.
    pub detail: String,
    /// What was done, for the operator.
    pub done: String,
}

/// The next step `r` of the rollover `rec`, refused when it is too early
/// unless forced.
pub fn plan_step(
    view: &ZoneView,
    rec: &RolloverRecord,
    method: Method,
    r: &Readiness,
    force: bool,
    now: Timestamp,
) -> Result<StepPlan, Failure> {
    let blockers = r.blockers(now);
    if !blockers.is_empty() && !force {
        return Err(Failure::Refused(format!(
            "too early for step '{}' of the {method} rollover of {}:\n  {}\n--force runs it anyway (audited), at the risk of validation failures",
            r.step,
            view.name,
            blockers.join("\n  ")
        )));
    }
    let forced = !blockers.is_empty();
    let warning = forced.then(|| {
        format!(
            "FORCED: step '{}' of the {method} rollover of {} runs before its safe time: {}",
            r.step,
            view.name,
            blockers.join("; ")
        )
    });
    let step: &Step = &method.steps()[r.index];
    let updates = rollover::apply(step, &rec.old, &rec.new, &view.keys, now);
    let summary = format!(
        "{method} rollover step '{}' ({}): {}; old {}, new {}",
        step.name,
        step.summary,
        change_text(&updates),
        view.tags(&rec.old),
        view.tags(&rec.new)
    );
    let detail = if forced {
        format!(
            "FORCED before its safe time ({}): {summary}",
            blockers.join("; ")
        )
    } else {
        summary
    };
    Ok(StepPlan {
        step,
        index: r.index,
        updates,
        finished: r.index + 1 == method.steps().len(),
        forced,
        warning,
        detail,
        done: format!(
            "{}step '{}' of the {method} rollover done: {}",
            if forced { "FORCED " } else { "" },
            step.name,
            step.summary
        ),
    })
}

/// What `rollover ds-seen` confirms.
#[derive(Debug, Clone)]
pub enum DsSeen<'v> {
    /// The ds-seen step of the rollover in progress.
    Step(&'v RolloverRecord, Method, Readiness),
    /// A DS asked for outside a rollover (a zone's first KSK): these key
    /// changes.
    Pending(Vec<KeyUpdate>),
}

/// What the operator's confirmation that the parent serves the asked-for
/// DS RRset settles, refused when nothing waits for it or when the zone
/// has not been signed since the request.
pub fn ds_seen(view: &ZoneView, now: Timestamp) -> Result<DsSeen<'_>, Failure> {
    let next = view.next();
    if let (Some((rec, m)), Some(r)) = (&view.current, &next) {
        if r.needs_operator {
            let asked = rec.steps.last().map_or(0, |s| s.generation);
            if !view.signings.iter().any(|s| s.generation >= asked) {
                return Err(Failure::Refused(format!(
                    "{} has not been signed since step '{}' asked the parent for a DS change: the zone never published the request (CDS/CDNSKEY). Sign it first",
                    view.name,
                    rec.steps.last().map_or("?", |s| s.name.as_str())
                )));
            }
            return Ok(DsSeen::Step(rec, *m, r.clone()));
        }
    }
    // Outside a rollover's own ds-seen step: a DS asked for otherwise
    // (a zone's first KSK), if there is one.
    if !view.keys.iter().any(|k| k.ds.pending()) {
        return Err(Failure::Refused(match (&view.current, next) {
            (Some((_, m)), Some(r)) => format!(
                "{} is not waiting for the parent: the {m} rollover is at step '{}', not ds-seen",
                view.name, r.step
            ),
            _ => format!(
                "{} is not waiting for the parent: no DS was submitted or withdrawn",
                view.name
            ),
        }));
    }
    Ok(DsSeen::Pending(rollover::apply(
        &rollover::DS_SEEN,
        &[],
        &[],
        &view.keys,
        now,
    )))
}

/// The next step and when it may run, in a sentence.
pub fn describe_next(r: &Readiness, now: Timestamp) -> String {
    if r.needs_operator {
        return format!("'{}' — {} (`dnsseal rollover ds-seen`)", r.step, r.summary);
    }
    match r.earliest() {
        Some(t) if t <= now => format!("'{}' — {}: due now", r.step, r.summary),
        Some(t) => format!(
            "'{}' — {}: not before {t} ({} from now)",
            r.step,
            r.summary,
            rollover::span_text(t.unix() - now.unix())
        ),
        None => format!(
            "'{}' — {}: {}",
            r.step,
            r.summary,
            r.waits
                .iter()
                .filter(|w| w.earliest.is_none())
                .map(|w| w.why.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// "ZSK 1234 published -> active, DS none -> submitted; ..." for key
/// changes, or "no key changes".
pub fn change_text(updates: &[KeyUpdate]) -> String {
    let v: Vec<String> = updates
        .iter()
        .map(|u| {
            let r = &u.record;
            let mut parts = Vec::new();
            if u.expected_state != r.state {
                parts.push(format!("{} -> {}", u.expected_state, r.state));
            }
            if u.expected_ds != r.ds {
                parts.push(format!("DS {} -> {}", u.expected_ds, r.ds));
            }
            format!(
                "{} {} {}",
                r.role.as_str().to_uppercase(),
                r.key_tag,
                parts.join(", ")
            )
        })
        .collect();
    if v.is_empty() {
        "no key changes".into()
    } else {
        v.join("; ")
    }
}

/// One key's change, as its audit record gives it: "zsk DS none ->
/// none", with the new flags and key tag when the REVOKE bit was set.
pub fn update_text(u: &KeyUpdate) -> String {
    let r = &u.record;
    format!(
        "{} DS {} -> {}{}",
        r.role,
        u.expected_ds,
        r.ds,
        if r.state == KeyState::Revoked {
            format!(
                " (REVOKE bit set: flags {}, new key tag {})",
                r.flags, r.key_tag
            )
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{DsState, Role, StepRecord};
    use crate::policy::rollover::Wait;
    use crate::policy::zone::fixtures::*;

    /// A ZSK pre-publication rollover of example. past its start, not
    /// signed since: its next step is 'activate', time unknown.
    fn in_progress() -> ZoneView {
        let mut rec = rollover(1, Method::ZskPrePublication, false);
        rec.steps.push(StepRecord {
            name: "start".into(),
            at: Timestamp::from_unix(0),
            generation: 1,
            forced: false,
        });
        let keys = vec![
            active(1, Role::Zsk, 13, 0),
            key(2, Role::Zsk, KeyState::Published, 13),
        ];
        view_with(None, keys, vec![rec])
    }

    fn refused(e: Failure) -> String {
        match e {
            Failure::Refused(m) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn only_the_next_step_of_the_rollover_in_progress_runs() {
        let idle = view(None, vec![active(1, Role::Zsk, 13, 0)]);
        assert!(check_start(&idle).is_ok());
        assert_eq!(
            refused(check_step(&idle, Kind::Zsk, "next").unwrap_err()),
            "no rollover of example. is in progress: start one with `dnsseal rollover zsk example. start`"
        );
        let v = in_progress();
        assert!(refused(check_start(&v).unwrap_err())
            .starts_with("a zsk-pre-publication rollover of example. is in progress since"));
        assert_eq!(
            refused(check_step(&v, Kind::Ksk, "next").unwrap_err()),
            "the rollover in progress for example. is a zsk-pre-publication rollover, not a ksk one: use `dnsseal rollover zsk example. next`"
        );
        assert_eq!(
            refused(check_step(&v, Kind::Zsk, "finish").unwrap_err()),
            "the next step of the zsk-pre-publication rollover of example. is 'activate', not 'finish'"
        );
        assert_eq!(
            refused(check_step(&v, Kind::Zsk, "bogus").unwrap_err()),
            "unknown step name; the next step of the zsk-pre-publication rollover of example. is 'activate', not 'bogus'"
        );
        for name in ["next", "activate"] {
            let (rec, m, r) = check_step(&v, Kind::Zsk, name).unwrap();
            assert_eq!(
                (rec.id, m, r.step),
                (1, Method::ZskPrePublication, "activate")
            );
        }
    }

    #[test]
    fn a_step_before_its_safe_time_runs_only_forced() {
        let v = in_progress();
        let (rec, m, r) = check_step(&v, Kind::Zsk, "next").unwrap();
        let now = Timestamp::from_unix(DAY);
        let e = refused(plan_step(&v, rec, m, &r, false, now).unwrap_err());
        assert!(e.starts_with("too early for step 'activate' of the zsk-pre-publication rollover of example.:\n  "), "{e}");
        assert!(e.ends_with("--force runs it anyway (audited), at the risk of validation failures"));
        let p = plan_step(&v, rec, m, &r, true, now).unwrap();
        assert!(p.forced);
        assert!(!p.finished);
        assert_eq!(p.index, 1);
        assert!(p.warning.unwrap().starts_with("FORCED: step 'activate'"));
        assert!(
            p.detail.starts_with("FORCED before its safe time ("),
            "{}",
            p.detail
        );
        assert!(p.detail.ends_with("; old ZSK 1, new ZSK 2"), "{}", p.detail);
        assert!(p
            .done
            .starts_with("FORCED step 'activate' of the zsk-pre-publication rollover done: "));
    }

    #[test]
    fn ds_seen_needs_something_waiting_for_the_parent() {
        let now = Timestamp::from_unix(DAY);
        let idle = view(None, vec![active(1, Role::Ksk, 13, 0)]);
        assert_eq!(
            refused(ds_seen(&idle, now).unwrap_err()),
            "example. is not waiting for the parent: no DS was submitted or withdrawn"
        );
        assert_eq!(
            refused(ds_seen(&in_progress(), now).unwrap_err()),
            "example. is not waiting for the parent: the zsk-pre-publication rollover is at step 'activate', not ds-seen"
        );
        let mut ksk = active(1, Role::Ksk, 13, 0);
        ksk.ds = DsState::Submitted;
        match ds_seen(&view(None, vec![ksk]), now).unwrap() {
            DsSeen::Pending(updates) => {
                assert_eq!(updates.len(), 1);
                assert_eq!(updates[0].record.ds, DsState::Seen);
                assert!(change_text(&updates).starts_with("KSK 1 DS "));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(change_text(&[]), "no key changes");
    }

    #[test]
    fn the_next_step_is_described_with_its_time_or_what_it_waits_for() {
        let now = Timestamp::from_unix(DAY);
        let mut r = Readiness {
            index: 1,
            step: "activate",
            summary: "the new key signs",
            needs_operator: false,
            waits: vec![Wait {
                earliest: Some(Timestamp::from_unix(DAY + 3_600)),
                why: "DNSKEY cached".into(),
            }],
        };
        assert_eq!(
            describe_next(&r, now),
            format!(
                "'activate' — the new key signs: not before {} (1h from now)",
                Timestamp::from_unix(DAY + 3_600)
            )
        );
        assert_eq!(
            describe_next(&r, Timestamp::from_unix(DAY + 3_600)),
            "'activate' — the new key signs: due now"
        );
        r.waits[0].earliest = None;
        assert_eq!(
            describe_next(&r, now),
            "'activate' — the new key signs: DNSKEY cached"
        );
        r.needs_operator = true;
        assert_eq!(
            describe_next(&r, now),
            "'activate' — the new key signs (`dnsseal rollover ds-seen`)"
        );
    }

    #[test]
    fn a_key_change_names_its_ds_and_a_revocation() {
        let mut k = active(1, Role::Ksk, 13, 0);
        let before = k.clone();
        k.ds = DsState::Submitted;
        let u = KeyUpdate {
            expected_state: before.state,
            expected_ds: before.ds,
            record: k.clone(),
        };
        assert_eq!(
            update_text(&u),
            format!("ksk DS {} -> {}", DsState::None, DsState::Submitted)
        );
        k.state = KeyState::Revoked;
        k.flags = 385;
        k.key_tag = 99;
        let u = KeyUpdate {
            expected_state: before.state,
            expected_ds: before.ds,
            record: k,
        };
        assert!(update_text(&u).ends_with(" (REVOKE bit set: flags 385, new key tag 99)"));
    }

    #[test]
    fn policy_run_takes_a_step_only_when_due() {
        let v = in_progress();
        match due_step(&v, Timestamp::from_unix(100 * DAY)) {
            DueStep::Wait(why) => {
                assert_eq!(
                    why,
                    "zsk-pre-publication rollover: 'activate' is not due yet"
                )
            }
            other => panic!("{other:?}"),
        }
        let idle = view(None, vec![active(1, Role::Zsk, 13, 0)]);
        assert!(
            matches!(due_step(&idle, Timestamp::from_unix(0)), DueStep::Wait(w) if w == "nothing to do")
        );
        // Signed since the start, long ago: 'activate' is due.
        let mut v = in_progress();
        v.signings.push(crate::keystore::Signing {
            generation: 1,
            first_signed: Timestamp::from_unix(10),
            last_signed: Timestamp::from_unix(10),
            dnskey_ttl: 3_600,
            max_ttl: 3_600,
        });
        match due_step(&v, Timestamp::from_unix(100 * DAY)) {
            DueStep::Take(rec, m, r) => {
                assert_eq!(
                    (rec.id, m, r.step),
                    (1, Method::ZskPrePublication, "activate")
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
