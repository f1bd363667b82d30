//! `dnsseal keys reconcile`: keystore and token side by side.
//!
//! The token is the truth about which key objects exist (invariant 2);
//! drift is reported, and changed only when asked (`--mark-missing`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::args::ReconcileArgs;
use super::context::{Context, Failure};
use super::keys::{dnskey_public_key, record_spec};
use crate::audit::Event;
use crate::keystore::{KeyRecord, KeyState};

#[derive(Debug, Serialize, Default)]
struct Report {
    token_serial: String,
    /// Records whose token objects are gone (or half gone).
    missing: Vec<Finding>,
    /// Records whose token object holds another public key.
    mismatched: Vec<Finding>,
    /// Token key objects no record knows.
    orphans: Vec<Orphan>,
    /// Records that live in other tokens (not checked).
    other_tokens: usize,
    /// Records checked and in order.
    ok: usize,
}

#[derive(Debug, Serialize)]
struct Finding {
    zone: String,
    key_tag: u16,
    state: KeyState,
    cka_id: String,
    problem: String,
}

#[derive(Debug, Serialize)]
struct Orphan {
    cka_id: String,
    label: String,
    objects: Vec<&'static str>,
}

fn finding(r: &KeyRecord, problem: &str) -> Finding {
    Finding {
        zone: r.zone.clone(),
        key_tag: r.key_tag,
        state: r.state,
        cka_id: hex::encode(&r.cka_id),
        problem: problem.to_string(),
    }
}

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
    let objects = session.key_objects()?;
    let records = ks.keys(None)?;

    // CKA_ID -> (has private, has public, label)
    let mut on_token: BTreeMap<Vec<u8>, (bool, bool, String)> = BTreeMap::new();
    for o in &objects {
        let e = on_token
            .entry(o.id.clone())
            .or_insert((false, false, o.label.clone()));
        if o.private {
            e.0 = true;
        } else {
            e.1 = true;
        }
    }
    let mut report = Report {
        token_serial: serial.clone(),
        ..Report::default()
    };
    for r in &records {
        if r.token_serial != serial {
            report.other_tokens += 1;
            continue;
        }
        let present = on_token.get(&r.cka_id);
        match (r.state.has_token_object(), present) {
            (false, None) => report.ok += 1,
            (false, Some(_)) => report.mismatched.push(finding(
                r,
                "record says destroyed, but the token still holds objects with its CKA_ID",
            )),
            (true, None) => report
                .missing
                .push(finding(r, "no private or public key object on the token")),
            (true, Some((false, _, _))) => report
                .missing
                .push(finding(r, "private key object missing on the token")),
            (true, Some((true, false, _))) => report
                .missing
                .push(finding(r, "public key object missing on the token")),
            (true, Some((true, true, _))) => {
                // Token errors stop the run; a key of the wrong shape is a
                // mismatch like a key with other bytes.
                let (alg, spec) = record_spec(r)?;
                let token_key = session.public_key(&r.cka_id, spec)?;
                let same = dnskey_public_key(alg, &token_key).is_ok_and(|pk| pk == r.public_key);
                if same {
                    report.ok += 1;
                } else {
                    report
                        .mismatched
                        .push(finding(r, "token public key differs from the record"));
                }
            }
        }
    }
    for (id, (private, public, label)) in &on_token {
        let known = records
            .iter()
            .any(|r| r.token_serial == serial && &r.cka_id == id);
        if !known {
            let mut kinds = Vec::new();
            if *private {
                kinds.push("private");
            }
            if *public {
                kinds.push("public");
            }
            report.orphans.push(Orphan {
                cka_id: hex::encode(id),
                label: label.clone(),
                objects: kinds,
            });
        }
    }

    let mut marked = 0;
    if args.mark_missing {
        for f in report
            .missing
            .iter()
            .filter(|f| f.problem.starts_with("no private or public"))
        {
            let Some(r) = records
                .iter()
                .find(|r| hex::encode(&r.cka_id) == f.cka_id && r.token_serial == serial)
            else {
                continue;
            };
            let mut t = r.timings;
            t.destroyed = Some(ctx.now());
            t.removed = t.removed.or(Some(ctx.now()));
            if ks.set_state(r.id, r.state, KeyState::Destroyed, &t)? {
                marked += 1;
                ctx.audit(
                    &cfg,
                    &mut ks,
                    Event {
                        command: ctx.command.clone(),
                        zone: Some(r.zone.clone()),
                        key_tag: Some(r.key_tag),
                        key_id: Some(f.cka_id.clone()),
                        old_state: Some(r.state.to_string()),
                        new_state: Some(KeyState::Destroyed.to_string()),
                        failed: false,
                        detail: "reconcile --mark-missing: the token no longer holds this key"
                            .into(),
                    },
                )?;
            }
        }
    }

    let drift = report.missing.len() + report.mismatched.len() + report.orphans.len();
    if ctx.json {
        ctx.print_json(&report)?;
    } else {
        outln!(
            "token serial {serial}: {} records in order, {} in other tokens",
            report.ok,
            report.other_tokens
        );
        for f in &report.missing {
            outln!(
                "MISSING    {} tag {} ({}) CKA_ID {}: {}",
                f.zone,
                f.key_tag,
                f.state,
                f.cka_id,
                f.problem
            );
        }
        for f in &report.mismatched {
            outln!(
                "MISMATCH   {} tag {} ({}) CKA_ID {}: {}",
                f.zone,
                f.key_tag,
                f.state,
                f.cka_id,
                f.problem
            );
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
    }
    if drift > 0 && drift > marked {
        return Err(Failure::Drift(format!(
            "keystore and token disagree on {} key(s); nothing was changed{}",
            drift - marked,
            if args.mark_missing {
                " beyond the keys marked destroyed"
            } else {
                ""
            }
        ))
        .into());
    }
    Ok(())
}
