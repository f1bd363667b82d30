//! `dnsseal keys reconcile`: keystore and token side by side.
//!
//! The comparison is [`crate::keys::reconcile`], each key judged by
//! [`crate::keys::objects`]; this command reads both sides (per key one
//! read of its objects' attributes), marks missing keys when asked
//! (`--mark-missing`) and prints.

use super::args::ReconcileArgs;
use super::context::Context;
use crate::keys::objects;
use crate::keys::reconcile::{compare, mark_missing, Report};

pub fn run(ctx: &Context, args: ReconcileArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    if args.mark_missing {
        ctx.check_audit(&cfg, &ks)?;
    }
    let module = ctx.module(&cfg)?;
    let (token, session) = ctx.login(&cfg, &module)?;
    let serial = token.identity.serial.clone();
    // Work an interrupted run left: audit records committed with a change
    // but not yet in the log, and key pairs made but never recorded.
    if !ks.outbox()?.is_empty() {
        ctx.flush_outbox(&cfg, &mut ks)?;
    }
    super::keys::recover_pending(ctx, &cfg, &mut ks, &session, &serial)?;
    // The audit key is no DNSSEC key and no orphan; `audit checkpoint`
    // checks its objects each time it signs.
    let audit_id = ks
        .audit_key()?
        .filter(|a| a.token_serial == serial)
        .map(|a| a.cka_id);
    let objects: Vec<_> = session
        .key_objects()?
        .into_iter()
        .filter(|o| audit_id.as_ref() != Some(&o.id))
        .collect();
    let records = ks.keys(None)?;
    // Token errors stop the run; a key of the wrong shape, or whose
    // private object is not protected as its origin promises, is a finding.
    let report = compare(&serial, &records, &objects, |r| {
        Ok(objects::judge(r, &session.key_pair(&r.cka_id)?))
    })?;
    let marked = if args.mark_missing {
        mark_missing(&mut ks, &report, &records, ctx.now(), &mut |ks, e| {
            ctx.audit(
                &cfg,
                ks,
                crate::audit::Event {
                    command: ctx.command.clone(),
                    ..e
                },
            )
        })?
    } else {
        0
    };
    if ctx.json {
        ctx.print_json(&report)?;
    } else {
        print(&report, marked)?;
    }
    match report.failure(marked, args.mark_missing) {
        Some(f) => Err(f.into()),
        None => Ok(()),
    }
}

fn print(report: &Report, marked: usize) -> anyhow::Result<()> {
    outln!(
        "token serial {}: {} records in order, {} in other tokens",
        report.token_serial,
        report.ok,
        report.other_tokens
    );
    for (tag, list) in [
        ("MISSING ", &report.missing),
        ("MISMATCH", &report.mismatched),
        ("UNSAFE  ", &report.unsafe_objects),
    ] {
        for f in list {
            outln!(
                "{tag}   {} tag {} ({}) CKA_ID {}: {}",
                f.zone,
                f.key_tag,
                f.state,
                f.cka_id,
                f.problem
            );
        }
    }
    for o in &report.orphans {
        outln!(
            "ORPHAN     CKA_ID {} label '{}' ({}): on the token, not in the keystore",
            o.cka_id,
            o.label,
            o.objects.join("+")
        );
    }
    if marked > 0 {
        outln!("marked {marked} missing key(s) as destroyed");
    }
    Ok(())
}
