//! `dnsseal policy show|set|run` and `dnsseal rollover …`: the policy of a
//! zone and the steps of its rollovers, each no earlier than the RFC 7583
//! waits allow (see [`crate::policy::rollover`]).
//!
//! The decisions are the library's: what a zone needs now
//! ([`crate::policy::schedule`]), how a rollover starts
//! ([`crate::policy::start`]) and whether a step may run
//! ([`crate::policy::step`]), over a [`ZoneView`] loaded here. This module
//! loads, calls, carries the answer out (keys made in the token, one
//! keystore transaction, audit records) and prints.
//!
//! Every step is one keystore transaction: the key changes, the step, the
//! zone's next key-set generation and the step's audit records (in the
//! keystore's outbox, written to the log right after and on the next run
//! if this one is stopped first). Keys a step needs are made in the token
//! before that transaction, under the keystore's key journal.

use serde::Serialize;

use super::args::{
    AlgorithmRolloverArgs, EmergencyArgs, EmergencyRole, PolicyRunArgs, PolicySetArgs,
    PolicyShowArgs, RolloverArgs, RolloverCommand, ZoneArg,
};
use super::context::{Context, Failure};
use super::keys::{generate_keys, recover_pending};
use crate::audit::Event;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::keys::spec::key_spec;
use crate::keys::{parse_algorithm, parse_zone};
use crate::keystore::{
    Batch, KeyRef, KeyState, KeyUpdate, Keystore, NewKey, NewStep, Role, RolloverRecord,
    RolloverWrite,
};
use crate::policy::rollover::{self, Method, Readiness};
use crate::policy::schedule::{self, RunAction};
use crate::policy::start::{self, Kind};
use crate::policy::step::{self, DsSeen, DueStep};
use crate::policy::zone::{ZonePolicy, ZoneView};
use crate::policy::{Policy, DEFAULT_TOML};
use crate::zone::{Algorithm, ZoneName};

/// Reads what the keystore knows about one zone.
fn load_view(ks: &Keystore, zone: &ZoneName) -> anyhow::Result<ZoneView> {
    let name = zone.to_string();
    let policy = ZonePolicy::from_stored(&name, ks.policy(&name)?)?;
    let keys = ks.keys(Some(&name))?;
    let rollovers = ks.rollovers(&name)?;
    let signings = ks.signings(&name)?;
    Ok(ZoneView::new(zone, policy, keys, rollovers, signings)?)
}

// ---------------------------------------------------------------- policy

pub fn policy_show(ctx: &Context, args: PolicyShowArgs) -> anyhow::Result<()> {
    if args.defaults {
        out!("{DEFAULT_TOML}");
        return Ok(());
    }
    let zone = parse_zone(args.zone.as_deref().unwrap_or_default())?;
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let name = zone.to_string();
    let ZonePolicy { policy, set } = ZonePolicy::from_stored(&name, ks.policy(&name)?)?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": name,
            "set": set,
            "policy": policy,
        }));
    }
    match set {
        Some(t) => outln!("# policy of {zone}, set {t}"),
        None => outln!(
            "# {zone} has no policy of its own: these are the defaults (`dnsseal policy set {zone} FILE`)"
        ),
    }
    out!("{}", policy.to_toml());
    Ok(())
}

pub fn policy_set(ctx: &Context, args: PolicySetArgs) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", args.file.display())))?;
    let policy = Policy::parse(&text)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", args.file.display())))?;
    let cfg = ctx.config()?;
    let name = zone.to_string();
    ctx.audited(&cfg, Some(name.clone()), || {
        let mut ks = ctx.keystore(&cfg)?;
        let detail = format!("policy from {}: {}", args.file.display(), policy.summary());
        let (at, json) = zone_event(ctx, &name, detail);
        ks.set_policy(&name, &text, at, json)?;
        ctx.flush_outbox(&cfg, &mut ks)?;
        Ok(())
    })?;
    if !ctx.quiet {
        eprintln!("policy of {zone} set from {}", args.file.display());
    }
    Ok(())
}

/// What `policy run` did for one zone.
#[derive(Debug, Serialize)]
struct RunReport {
    zone: String,
    action: String,
    next: Option<String>,
    earliest: Option<Timestamp>,
}

pub fn policy_run(ctx: &Context, args: PolicyRunArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let zones: Vec<ZoneName> = if args.zones.is_empty() {
        ks.policy_zones()?
            .iter()
            .map(|z| parse_zone(z))
            .collect::<anyhow::Result<_>>()?
    } else {
        args.zones
            .iter()
            .map(|z| parse_zone(z))
            .collect::<anyhow::Result<_>>()?
    };
    drop(ks);
    if zones.is_empty() {
        return Err(Failure::Refused(
            "no zone has a policy: set one with `dnsseal policy set ZONE FILE`, or name zones"
                .into(),
        )
        .into());
    }
    // One zone's failure does not hold the others back (a cron job advances
    // every zone it can); the run still fails, with the first error's code.
    let mut reports = Vec::new();
    let mut first_error: Option<anyhow::Error> = None;
    for zone in zones {
        let report = match ctx.audited(&cfg, Some(zone.to_string()), || run_zone(ctx, &cfg, &zone))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{zone}: {e:#}");
                let r = RunReport {
                    zone: zone.to_string(),
                    action: format!("failed: {e:#}"),
                    next: None,
                    earliest: None,
                };
                first_error.get_or_insert(e);
                r
            }
        };
        if !ctx.json && !ctx.quiet {
            outln!("{}: {}", report.zone, report.action);
            if let Some(n) = &report.next {
                outln!("  next: {n}");
            }
        }
        reports.push(report);
    }
    if ctx.json {
        ctx.print_json(&reports)?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn run_zone(ctx: &Context, cfg: &Config, zone: &ZoneName) -> anyhow::Result<RunReport> {
    let now = ctx.now();
    let ks = ctx.keystore(cfg)?;
    let view = load_view(&ks, zone)?;
    drop(ks);
    let report = |action: String, view: &ZoneView| -> RunReport {
        let r = view.next();
        RunReport {
            zone: view.name.clone(),
            action,
            next: r.as_ref().map(|r| step::describe_next(r, now)),
            earliest: r.and_then(|r| r.earliest()),
        }
    };
    match schedule::next_action(&view, now) {
        RunAction::StaysInsecure => Ok(report(
            "insecure (its insecure rollover finished): nothing to do".into(),
            &view,
        )),
        RunAction::FirstKeys => {
            let (alg, roles) = schedule::first_keys(&view.policy)?;
            let made = record_new_keys(
                ctx,
                cfg,
                &view,
                alg,
                &roles,
                "policy: the zone's first keys",
            )?;
            Ok(report(
                format!("created {made} (sign the zone, then hand the DS to the parent: `dnsseal keys ds {}`)", view.name),
                &view,
            ))
        }
        RunAction::Continue => continue_rollover(ctx, cfg, &view, now, report),
        RunAction::Start { kind, why } => {
            let started = start(ctx, cfg, &view, kind, None)?;
            let after = load_view(&ctx.keystore(cfg)?, zone)?;
            Ok(report(format!("{why}: {started}"), &after))
        }
        RunAction::Standby { count } => {
            let made = match schedule::standby_algorithm(&view)? {
                None => "no standby (no active ZSK)".into(),
                Some(alg) => {
                    let roles = vec![(Role::Zsk, KeyState::Published); count as usize];
                    record_new_keys(ctx, cfg, &view, alg, &roles, "policy: standby ZSK")?
                }
            };
            Ok(report(format!("published {made}"), &view))
        }
        RunAction::Idle { next } => {
            let mut r = report("nothing to do".into(), &view);
            if let Some(s) = next {
                r.next = Some(format!("{} at {}", s.what, s.at));
                r.earliest = Some(s.at);
            }
            Ok(r)
        }
    }
}

/// `policy run` on a zone with a rollover in progress: its next step,
/// when safe.
fn continue_rollover(
    ctx: &Context,
    cfg: &Config,
    view: &ZoneView,
    now: Timestamp,
    report: impl Fn(String, &ZoneView) -> RunReport,
) -> anyhow::Result<RunReport> {
    let (rec, method, r) = match step::due_step(view, now) {
        DueStep::Take(rec, method, r) => (rec, method, r),
        DueStep::Wait(why) => return Ok(report(why, view)),
    };
    let done = take_step(ctx, cfg, view, rec, method, &r, false)?;
    let after = load_view(&ctx.keystore(cfg)?, &view.zone)?;
    Ok(report(done, &after))
}

/// Makes keys and records them, audited, in one transaction; returns them
/// as "ROLE TAG (state)" for the report.
fn record_new_keys(
    ctx: &Context,
    cfg: &Config,
    view: &ZoneView,
    alg: Algorithm,
    roles: &[(Role, KeyState)],
    why: &str,
) -> anyhow::Result<String> {
    let made = make_keys(ctx, cfg, view, alg, roles)?;
    let mut batch = Batch::new(&view.name);
    let mut text = Vec::new();
    for k in &made {
        text.push(format!(
            "{} {} ({})",
            k.role.as_str().to_uppercase(),
            k.key_tag,
            k.state
        ));
        batch
            .outbox
            .push(ctx.outbox_event(&key_event(ctx, &view.name, None, k, why)));
    }
    batch.new_keys = made;
    commit(ctx, cfg, batch)?;
    Ok(text.join(", "))
}

fn key_event(ctx: &Context, zone: &str, old: Option<KeyState>, k: &NewKey, why: &str) -> Event {
    Event {
        command: ctx.command.clone(),
        zone: Some(zone.to_string()),
        key_tag: Some(k.key_tag),
        key_id: Some(hex::encode(&k.cka_id)),
        old_state: old.map(|s| s.to_string()),
        new_state: Some(k.state.to_string()),
        failed: false,
        detail: format!(
            "{why}: generated {} {} {} bits in token {} (label '{}'), DS {}",
            k.role,
            Algorithm::from_number(k.algorithm).map_or("?", |a| a.mnemonic()),
            k.bits,
            k.token_serial,
            k.cka_label,
            k.ds
        ),
    }
}

/// Makes keys in the token (not yet recorded: the caller commits them).
fn make_keys(
    ctx: &Context,
    cfg: &Config,
    view: &ZoneView,
    alg: Algorithm,
    roles: &[(Role, KeyState)],
) -> anyhow::Result<Vec<NewKey>> {
    let mut by_spec: Vec<NewKey> = Vec::new();
    let module = ctx.module(cfg)?;
    let (token, session) = ctx.login(cfg, &module)?;
    let mut ks = ctx.keystore(cfg)?;
    recover_pending(ctx, cfg, &mut ks, &session, &token.identity.serial)?;
    for &(role, state) in roles {
        let spec = key_spec(alg, view.policy.bits(role.is_sep()))?;
        let mut made = generate_keys(
            cfg,
            &mut ks,
            &token,
            &session,
            &view.zone,
            alg,
            spec,
            &[(role, state)],
            ctx.now(),
        )?;
        by_spec.append(&mut made);
    }
    Ok(by_spec)
}

/// Commits a batch and writes its audit records.
fn commit(ctx: &Context, cfg: &Config, batch: Batch) -> anyhow::Result<crate::keystore::Committed> {
    let mut ks = ctx.keystore(cfg)?;
    let done = ks.commit(batch)?.ok_or_else(|| {
        Failure::Refused(
            "the keystore changed while this step was being prepared (another dnsseal run?): nothing was done; run the command again".into(),
        )
    })?;
    ctx.flush_outbox(cfg, &mut ks)?;
    Ok(done)
}

// -------------------------------------------------------------- rollover

pub fn rollover(ctx: &Context, cmd: RolloverCommand) -> anyhow::Result<()> {
    match cmd {
        RolloverCommand::Zsk(a) => step_command(ctx, a, |_| Ok(Kind::Zsk)),
        RolloverCommand::Ksk(a) => step_command(ctx, a, |_| Ok(Kind::Ksk)),
        RolloverCommand::Csk(a) => step_command(ctx, a, |_| Ok(Kind::Csk)),
        RolloverCommand::Insecure(a) => step_command(ctx, a, |_| Ok(Kind::Insecure)),
        RolloverCommand::Algorithm(AlgorithmRolloverArgs { common, to }) => {
            step_command(ctx, common, move |view| {
                let alg = match &to {
                    Some(a) => parse_algorithm(a)?,
                    None => view
                        .policy
                        .algorithm()
                        .map_err(|e| Failure::BadInput(e.to_string()))?,
                };
                Ok(Kind::Algorithm(alg))
            })
        }
        RolloverCommand::Emergency(EmergencyArgs { common, role, tag }) => {
            step_command(ctx, common, move |_| {
                let role = role.map(|r| match r {
                    EmergencyRole::Zsk => Role::Zsk,
                    EmergencyRole::Ksk => Role::Ksk,
                    EmergencyRole::Csk => Role::Csk,
                });
                Ok(Kind::Emergency(role, tag))
            })
        }
        RolloverCommand::DsSeen(ZoneArg { zone }) => ds_seen(ctx, &zone),
        RolloverCommand::Plan(ZoneArg { zone }) => plan(ctx, &zone),
    }
}

fn step_command(
    ctx: &Context,
    args: RolloverArgs,
    kind: impl FnOnce(&ZoneView) -> anyhow::Result<Kind>,
) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let cfg = ctx.config()?;
    let name = zone.to_string();
    let msg = ctx.audited(&cfg, Some(name), || {
        let view = load_view(&ctx.keystore(&cfg)?, &zone)?;
        let kind = kind(&view)?;
        if args.step == "start" {
            step::check_start(&view)?;
            return start(ctx, &cfg, &view, kind, args.method.as_deref());
        }
        let (rec, method, r) = step::check_step(&view, kind, &args.step)?;
        take_step(ctx, &cfg, &view, rec, method, &r, args.force)
    })?;
    report_after(ctx, &cfg, &zone, &msg)
}

fn report_after(ctx: &Context, cfg: &Config, zone: &ZoneName, msg: &str) -> anyhow::Result<()> {
    let view = load_view(&ctx.keystore(cfg)?, zone)?;
    let now = ctx.now();
    let next = view.next();
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": view.name,
            "done": msg,
            "next": next.as_ref().map(|r| r.step),
            "earliest": next.as_ref().and_then(|r| r.earliest()),
            "waits": next.as_ref().map(|r| &r.waits),
        }));
    }
    if !ctx.quiet {
        outln!("{}: {msg}", view.name);
        match &next {
            Some(r) => outln!("  next: {}", step::describe_next(r, now)),
            None if msg.contains("rollover") => outln!("  the rollover is complete"),
            None => {}
        }
        if view.keys.iter().any(|k| k.state.is_signing()) {
            outln!("  sign the zone now: every wait counts from the first signing that carries a change");
        } else {
            outln!("  the zone has no signing key left: serve it unsigned");
        }
    }
    Ok(())
}

/// Runs the next step of a rollover (checked by the caller), refusing
/// when it is too early unless forced.
fn take_step(
    ctx: &Context,
    cfg: &Config,
    view: &ZoneView,
    rec: &RolloverRecord,
    method: Method,
    r: &Readiness,
    force: bool,
) -> anyhow::Result<String> {
    let now = ctx.now();
    let plan = step::plan_step(view, rec, method, r, force, now)?;
    if let Some(w) = &plan.warning {
        tracing::warn!("{w}");
    }
    let mut batch = Batch::new(&view.name);
    batch.outbox.push(zone_event(ctx, &view.name, plan.detail));
    push_update_events(ctx, &view.name, &plan.updates, &mut batch);
    batch.updates = plan.updates;
    batch.rollover = Some(RolloverWrite::Step {
        rollover: rec.id,
        index: plan.index,
        step: NewStep {
            name: plan.step.name.to_string(),
            at: now,
            forced: plan.forced,
        },
        finished: plan.finished,
    });
    commit(ctx, cfg, batch)?;
    Ok(plan.done)
}

/// The audit record of a change to a zone as a whole.
fn zone_event(ctx: &Context, zone: &str, detail: String) -> (Timestamp, String) {
    ctx.outbox_event(&Event {
        command: ctx.command.clone(),
        zone: Some(zone.to_string()),
        detail,
        ..Event::default()
    })
}

fn push_update_events(ctx: &Context, zone: &str, updates: &[KeyUpdate], batch: &mut Batch) {
    for u in updates {
        let r = &u.record;
        batch.outbox.push(ctx.outbox_event(&Event {
            command: ctx.command.clone(),
            zone: Some(zone.to_string()),
            key_tag: Some(r.key_tag),
            key_id: Some(hex::encode(&r.cka_id)),
            old_state: Some(u.expected_state.to_string()),
            new_state: Some(r.state.to_string()),
            failed: false,
            detail: step::update_text(u),
        }));
    }
}

/// Starts a rollover: picks the keys rolled out and in (making new ones in
/// the token when no standby will do) and runs step 0.
fn start(
    ctx: &Context,
    cfg: &Config,
    view: &ZoneView,
    kind: Kind,
    method_arg: Option<&str>,
) -> anyhow::Result<String> {
    let now = ctx.now();
    let plan = start::plan_start(view, kind, method_arg)?;
    // New keys, made in the token now, recorded with the step.
    // One login and one journal cleanup for all of them: a cleanup between
    // two generations would take the first (not yet recorded) for debris.
    let mut new_keys: Vec<NewKey> = match plan.make.first() {
        None => Vec::new(),
        Some(&(_, alg)) => {
            // Made as generated: step 0 below moves them on.
            let roles: Vec<(Role, KeyState)> = plan
                .make
                .iter()
                .map(|(role, _)| (*role, KeyState::Generated))
                .collect();
            make_keys(ctx, cfg, view, alg, &roles)?
        }
    };
    let result = (|| -> anyhow::Result<String> {
        let first = start::first_step(view, &plan, &mut new_keys, now);
        let method = plan.method;
        let mut batch = Batch::new(&view.name);
        batch
            .outbox
            .push(zone_event(ctx, &view.name, first.detail.clone()));
        for k in &new_keys {
            batch.outbox.push(ctx.outbox_event(&key_event(
                ctx,
                &view.name,
                None,
                k,
                &format!("{method} rollover"),
            )));
        }
        push_update_events(ctx, &view.name, &first.updates, &mut batch);
        batch.updates = first.updates;
        let mut new_refs: Vec<KeyRef> = plan
            .standby
            .iter()
            .map(|id| KeyRef::Existing(*id))
            .collect();
        new_refs.extend((0..new_keys.len()).map(KeyRef::New));
        batch.rollover = Some(RolloverWrite::Start {
            method: method.name().to_string(),
            old: plan.old.iter().map(|id| KeyRef::Existing(*id)).collect(),
            new: new_refs,
            step: NewStep {
                name: first.step.name.to_string(),
                at: now,
                forced: false,
            },
        });
        batch.new_keys = new_keys.clone();
        commit(ctx, cfg, batch)?;
        Ok(first.detail)
    })();
    match result {
        Ok(detail) => {
            if let Some(w) = start::algorithm_warning(view, kind) {
                tracing::warn!("{w}");
            }
            if matches!(kind, Kind::Emergency(..)) {
                let after = ctx
                    .keystore(cfg)
                    .ok()
                    .and_then(|ks| load_view(&ks, &view.zone).ok());
                for w in start::emergency_warnings(view, &plan.standby, after.as_ref(), ctx.now()) {
                    tracing::warn!("{w}");
                }
            }
            Ok(detail)
        }
        Err(e) => {
            if !new_keys.is_empty() {
                let module = ctx.module(cfg)?;
                let (token, session) = ctx.login(cfg, &module)?;
                let mut ks = ctx.keystore(cfg)?;
                let made: Vec<Vec<u8>> = new_keys.iter().map(|k| k.cka_id.clone()).collect();
                crate::keys::create::forget_objects(
                    &mut ks,
                    &session,
                    &token.identity.serial,
                    &made,
                );
            }
            Err(e)
        }
    }
}

/// `rollover ds-seen`: the rollover's ds-seen step, or a first DS.
fn ds_seen(ctx: &Context, zone: &str) -> anyhow::Result<()> {
    let zone = parse_zone(zone)?;
    let cfg = ctx.config()?;
    let msg = ctx.audited(&cfg, Some(zone.to_string()), || {
        let view = load_view(&ctx.keystore(&cfg)?, &zone)?;
        let updates = match step::ds_seen(&view, ctx.now())? {
            DsSeen::Step(rec, m, r) => return take_step(ctx, &cfg, &view, rec, m, &r, false),
            DsSeen::Pending(updates) => updates,
        };
        let mut batch = Batch::new(&view.name);
        let text = step::change_text(&updates);
        batch.outbox.push(zone_event(
            ctx,
            &view.name,
            format!("the operator confirmed the parent's DS RRset: {text}"),
        ));
        push_update_events(ctx, &view.name, &updates, &mut batch);
        batch.updates = updates;
        commit(ctx, &cfg, batch)?;
        Ok(format!("the parent's DS RRset confirmed: {text}"))
    })?;
    report_after(ctx, &cfg, &zone, &msg)
}

/// `rollover plan`.
fn plan(ctx: &Context, zone: &str) -> anyhow::Result<()> {
    let zone = parse_zone(zone)?;
    let cfg = ctx.config()?;
    let view = load_view(&ctx.keystore(&cfg)?, &zone)?;
    let now = ctx.now();
    let steps = view
        .current
        .as_ref()
        .map(|(rec, m)| rollover::plan(*m, rec, &view.signings, &view.timing(), now));
    let upcoming = schedule::scheduled(&view);
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": view.name,
            "policy": if view.has_policy { "set" } else { "defaults" },
            "rollover": view.current.as_ref().map(|(r, m)| serde_json::json!({
                "method": m.name(),
                "started": r.started,
                "old": view.tags(&r.old),
                "new": view.tags(&r.new),
            })),
            "steps": steps,
            "timing": view.timing(),
            "scheduled": upcoming.iter().map(|s| serde_json::json!({"at": s.at, "role": s.role, "what": s.what})).collect::<Vec<_>>(),
        }));
    }
    outln!(
        "{} (policy: {}; {})",
        view.name,
        if view.has_policy { "set" } else { "defaults" },
        view.timing().summary()
    );
    match (&view.current, &steps) {
        (Some((rec, m)), Some(steps)) => {
            outln!(
                "{m} rollover, started {}: old {}, new {}",
                rec.started,
                view.tags(&rec.old),
                view.tags(&rec.new)
            );
            for s in steps {
                outln!("  {:<9} {:<38} {}", s.step, s.when(now), s.summary);
                for w in &s.why {
                    outln!("  {:<9} {:<38}   because {w}", "", "");
                }
            }
        }
        _ => outln!("no rollover in progress"),
    }
    for s in upcoming {
        outln!("scheduled: {} at {}", s.what, s.at);
    }
    Ok(())
}
