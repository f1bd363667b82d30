//! `dnsseal policy show|set|run` and `dnsseal rollover …`: the policy of a
//! zone and the steps of its rollovers, each no earlier than the RFC 7583
//! waits allow (see [`crate::policy::rollover`]).
//!
//! The decisions are the library's: what a zone needs now
//! ([`crate::policy::schedule`]), how a rollover starts
//! ([`crate::policy::start`]) and whether a step may run
//! ([`crate::policy::step`]); carrying them out (keys made in the token,
//! one keystore transaction per step with its audit records) is
//! [`crate::keys::rollover`]'s. This module turns arguments into those
//! calls, audits a failed attempt, and prints.

use super::args::{
    AlgorithmRolloverArgs, EmergencyArgs, EmergencyRole, PolicyRunArgs, PolicySetArgs,
    PolicyShowArgs, RolloverArgs, RolloverCommand, ZoneArg,
};
use super::context::{Context, Failure};
use crate::config::Config;
use crate::keys::rollover::{load_view, RunReport, Steward};
use crate::keys::{parse_algorithm, parse_zone};
use crate::keystore::Role;
use crate::policy::rollover;
use crate::policy::schedule;
use crate::policy::start::Kind;
use crate::policy::step;
use crate::policy::zone::{ZonePolicy, ZoneView};
use crate::policy::{Policy, DEFAULT_TOML};
use crate::zone::ZoneName;

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
    // A policy is a few hundred bytes; a megabyte is plenty.
    let text = crate::files::read_regular(&args.file, 1 << 20)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", args.file.display())))?;
    let text = String::from_utf8(text)
        .map_err(|_| Failure::BadInput(format!("{}: not UTF-8 text", args.file.display())))?;
    let policy = Policy::parse(&text)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", args.file.display())))?;
    let cfg = ctx.config()?;
    let name = zone.to_string();
    let detail = format!("policy from {}: {}", args.file.display(), policy.summary());
    let pin = || ctx.user_pin();
    ctx.audited(&cfg, Some(name.clone()), || {
        steward(ctx, &cfg, &pin).set_policy(&name, &text, detail)
    })?;
    if !ctx.quiet {
        eprintln!("policy of {zone} set from {}", args.file.display());
    }
    Ok(())
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
        let pin = || ctx.user_pin();
        let run = || steward(ctx, &cfg, &pin).run_zone(&zone);
        let report = match ctx.audited(&cfg, Some(zone.to_string()), run) {
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

/// Who carries out this run's decisions: the project's configuration,
/// this command's name, the clock, and the PIN when a key must be made.
fn steward<'a>(
    ctx: &'a Context,
    cfg: &'a Config,
    pin: &'a dyn Fn() -> anyhow::Result<&'a secrecy::SecretString>,
) -> Steward<'a> {
    Steward {
        cfg,
        command: &ctx.command,
        now: ctx.now(),
        pin,
    }
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
        let pin = || ctx.user_pin();
        let steward = steward(ctx, &cfg, &pin);
        let view = steward.view(&zone)?;
        if view.policy.offline_ksk {
            return Err(Failure::Refused(format!(
                "{} has an offline KSK: its ZSKs follow the schedule of `dnsseal ksr create` (moved on by `dnsseal policy run`), and its KSK is rolled on the offline box",
                view.name
            ))
            .into());
        }
        let kind = kind(&view)?;
        if args.step == "start" {
            step::check_start(&view)?;
            return steward.start(&view, kind, args.method.as_deref());
        }
        let (rec, method, r) = step::check_step(&view, kind, &args.step)?;
        steward.take_step(&view, rec, method, &r, args.force)
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

/// `rollover ds-seen`: the rollover's ds-seen step, or a first DS.
fn ds_seen(ctx: &Context, zone: &str) -> anyhow::Result<()> {
    let zone = parse_zone(zone)?;
    let cfg = ctx.config()?;
    let pin = || ctx.user_pin();
    let msg = ctx.audited(&cfg, Some(zone.to_string()), || {
        steward(ctx, &cfg, &pin).ds_seen(&zone)
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
    let offline = if view.policy.offline_ksk {
        Some(crate::keys::offline::status(&ctx.keystore(&cfg)?, &zone)?)
    } else {
        None
    };
    // An offline-KSK zone's ZSKs follow the schedule of its last KSR.
    let upcoming = match offline {
        Some(_) => Vec::new(),
        None => schedule::scheduled(&view),
    };
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
            "offline_ksk": offline,
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
    if let Some(o) = offline {
        print_offline(&o)?;
    }
    Ok(())
}

/// The ZSK schedule and the SKR of an offline-KSK zone.
fn print_offline(o: &crate::keys::offline::OfflineStatus) -> anyhow::Result<()> {
    let when = |t: Option<i64>| {
        t.map_or("-".to_string(), |t| {
            crate::clock::Timestamp::from_unix(t).to_string()
        })
    };
    outln!("offline KSK: ZSKs follow the schedule of the last `ksr create`");
    for k in &o.schedule.keys {
        outln!(
            "  ZSK {:>5}  published {}  active {}  retired {}  removed {}",
            k.key_tag,
            when(Some(k.publish)),
            when(k.active),
            when(k.retire),
            when(k.remove)
        );
    }
    match (o.skr_first, o.skr_end) {
        (Some(first), Some(end)) => outln!(
            "SKR: {} period(s) from {first}; it runs out at {end}",
            o.skr_periods
        ),
        _ => outln!("SKR: none imported (`dnsseal skr import`)"),
    }
    Ok(())
}
