//! `dnsseal audit verify|export|reset`: the log read and checked by
//! [`crate::audit`] (and against the keystore's head by
//! [`crate::audit::export`]), the verdict or the excerpt printed; a new
//! chain started by [`crate::project::history::reset`].

use std::io::BufReader;

use super::args::{AuditExportArgs, AuditKeyArgs, AuditResetArgs, AuditVerifyArgs, ExportFormat};
use super::context::{Context, Failure};
use crate::atomic::write as write_atomic;
use crate::audit::checkpoint::{self, PublicKey as AuditPublicKey};
use crate::audit::{self, export, Event, Verdict};
use crate::clock::Timestamp;
use crate::project::history;

pub fn verify(ctx: &Context, args: AuditVerifyArgs) -> anyhow::Result<()> {
    if !args.pubkey.is_empty() {
        return verify_signed(ctx, &args);
    }
    // The configured log, named or not, is checked against the head the
    // keystore remembers.
    let configured = ctx.config().ok();
    let is_configured = |f: &std::path::Path| {
        configured.as_ref().is_some_and(|c| {
            std::fs::canonicalize(f).ok() == std::fs::canonicalize(&c.audit_log).ok()
        })
    };
    let (path, head) = match &args.file {
        Some(f) if !is_configured(f) => (f.clone(), None),
        _ => {
            let cfg = ctx.config()?;
            let ks = ctx.keystore(&cfg)?;
            history::refuse_new_chain(&cfg, &ks)?;
            (cfg.audit_log.clone(), ks.audit_head()?)
        }
    };
    if !path.exists() && head.is_some() {
        return Err(Failure::Verify(format!(
            "{} is missing, but the keystore saw records in it",
            path.display()
        ))
        .into());
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| Failure::BadInput(format!("cannot open {}: {e}", path.display())))?;
    // The configured log must chain from its first record; a file given
    // on the command line may be an excerpt made by `audit export --since`.
    let (records, verdict) = if args.excerpt && head.is_none() {
        audit::verify_reader_from(BufReader::new(file))?
    } else {
        audit::verify_reader(BufReader::new(file))?
    };
    match verdict {
        Verdict::Broken { line, reason } => Err(Failure::Verify(format!(
            "{}: chain broken at line {line}: {reason} ({} records before it are intact)",
            path.display(),
            records.len()
        ))
        .into()),
        Verdict::Intact {
            records: n,
            head: last,
        } => {
            export::check_head(&path, &records, last.as_ref(), head.as_ref())?;
            let first = records.first();
            let reset = audit::reset_at_start(&records);
            if ctx.json {
                return ctx.print_json(&serde_json::json!({
                    "reset": reset.map(|r| serde_json::json!({"time": r.time, "operator": r.operator, "detail": r.detail})),
                    "file": path,
                    "intact": true,
                    "records": n,
                    "first_seq": first.map(|r| r.seq),
                    "anchor": first.map(|r| r.prev.clone()),
                    "head": last.as_ref().map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash})),
                    "keystore_head_checked": head.is_some(),
                }));
            }
            match (first, last) {
                (Some(f), Some(l)) if f.seq != 1 => outln!(
                    "{}: excerpt intact: {n} records, seq {}..{}, anchored to hash {} of record {}; head {}",
                    path.display(),
                    f.seq,
                    l.seq,
                    f.prev,
                    f.seq - 1,
                    l.hash
                ),
                (_, Some(l)) => outln!(
                    "{}: intact: {n} records, head seq {} hash {}{}",
                    path.display(),
                    l.seq,
                    l.hash,
                    if head.is_some() { " (matches the keystore)" } else { "" }
                ),
                _ => outln!("{}: empty", path.display()),
            }
            if let Some(r) = reset {
                outln!(
                    "note: the chain begins with an audit reset at {} by {}; the history before it is not in this log: {}",
                    r.time,
                    r.operator,
                    r.detail
                );
            }
            Ok(())
        }
    }
}

pub fn export(ctx: &Context, args: AuditExportArgs) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(Timestamp::parse).transpose()?;
    let cfg = ctx.config()?;
    let (records, verdict) = audit::verify(&cfg.audit_log)?;
    if let Verdict::Broken { line, reason } = verdict {
        return Err(Failure::Verify(format!(
            "{}: chain broken at line {line}: {reason}; refusing to export a log that does not verify",
            cfg.audit_log.display()
        ))
        .into());
    }
    let format = match args.format {
        ExportFormat::Jsonl => export::Format::Jsonl,
        ExportFormat::Csv => export::Format::Csv,
    };
    let out = export::render(export::excerpt(&records, since), format);
    match &args.output {
        Some(path) => write_atomic(path, out.as_bytes()),
        None => {
            out!("{out}");
            Ok(())
        }
    }
}

pub fn reset(ctx: &Context, args: AuditResetArgs) -> anyhow::Result<()> {
    if !args.yes {
        return Err(Failure::Refused(
            "an audit reset starts a new audit chain and says that the history before it is lost; run it again with --yes to do so".into(),
        )
        .into());
    }
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let head = history::reset(&cfg, &mut ks, ctx.now(), &args.reason)?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "file": cfg.audit_log,
            "head": {"seq": head.seq, "hash": head.hash},
        }));
    }
    outln!(
        "{}: new audit chain started, record {} hash {}",
        cfg.audit_log.display(),
        head.seq,
        head.hash
    );
    Ok(())
}

/// `audit verify --pubkey PEM FILE`: the chain and its checkpoints, with
/// nothing but the file and the audit public key(s).
fn verify_signed(ctx: &Context, args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let keys = args
        .pubkey
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", p.display())))?;
            AuditPublicKey::from_pem(&text)
                .map_err(|e| Failure::BadInput(format!("{}: {e}", p.display())).into())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Some(path) = &args.file else {
        return Err(Failure::BadInput("--pubkey needs the FILE to check".into()).into());
    };
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::BadInput(format!("cannot open {}: {e}", path.display())))?;
    let (records, verdict) = if args.excerpt {
        audit::verify_reader_from(BufReader::new(file))?
    } else {
        audit::verify_reader(BufReader::new(file))?
    };
    if let Verdict::Broken { line, reason } = verdict {
        return Err(Failure::Verify(format!(
            "{}: chain broken at line {line}: {reason} ({} records before it are intact)",
            path.display(),
            records.len()
        ))
        .into());
    }
    let signed = checkpoint::verify(&records, &keys, args.checkpoint.as_deref())
        .map_err(|e| Failure::Verify(format!("{}: {e}", path.display())))?;
    let last = signed.checkpoints.last();
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "file": path,
            "intact": true,
            "records": records.len(),
            "checkpoints": signed.checkpoints.iter().map(|(seq, hash)| serde_json::json!({"seq": seq, "hash": hash})).collect::<Vec<_>>(),
            "covered_to": signed.covered,
            "uncovered": signed.uncovered,
            "reached": args.checkpoint,
        }));
    }
    outln!(
        "{}: intact and signed: {} records, {} checkpoint(s); complete up to record {} (checkpoint record {} hash {}); {} record(s) after it are not covered by a signature yet",
        path.display(),
        records.len(),
        signed.checkpoints.len(),
        signed.covered,
        last.map_or(0, |c| c.0),
        last.map_or("", |c| c.1.as_str()),
        signed.uncovered
    );
    if let Some(want) = &args.checkpoint {
        outln!("reaches checkpoint {want}");
    }
    Ok(())
}

pub fn key(ctx: &Context, args: AuditKeyArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let public = if args.create {
        let (record, public) = ctx.audited(&cfg, None, || {
            let module = ctx.module(&cfg)?;
            let (token, session) = ctx.login(&cfg, &module)?;
            crate::keys::audit_key::create(
                &mut ks,
                &session,
                &token.identity.serial,
                cfg.token.profile.cka_id_len,
                ctx.now(),
            )
        })?;
        ctx.audit(
            &cfg,
            &mut ks,
            Event {
                command: ctx.command.clone(),
                key_id: Some(hex::encode(&record.cka_id)),
                detail: format!(
                    "generated the audit key {} (ECDSA P-256, label '{}') in token {}",
                    public.fingerprint(),
                    crate::keys::audit_key::LABEL,
                    record.token_serial
                ),
                ..Event::default()
            },
        )?;
        public
    } else {
        crate::keys::audit_key::recorded(&ks)?.1
    };
    let pem = public.to_pem().map_err(|e| anyhow::anyhow!("{e}"))?;
    match &args.output {
        Some(path) => {
            write_atomic(path, pem.as_bytes())?;
            outln!(
                "{}: audit public key {}",
                path.display(),
                public.fingerprint()
            );
        }
        None => out!("{pem}"),
    }
    Ok(())
}

pub fn checkpoint(ctx: &Context) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let mut ks = ctx.keystore(&cfg)?;
    let (record, public) = crate::keys::audit_key::recorded(&ks)?;
    let cp = ctx.audited(&cfg, None, || {
        let head = crate::project::known_head(&ks)?
            .ok_or_else(|| Failure::Refused("the audit log has no records to sign".into()))?;
        let module = ctx.module(&cfg)?;
        let (token, session) = ctx.login(&cfg, &module)?;
        crate::keys::audit_key::sign_checkpoint(
            &session,
            &token.identity.serial,
            &record,
            &public,
            &head,
        )
    })?;
    let signed = (cp.seq, cp.hash.clone());
    ctx.audit(
        &cfg,
        &mut ks,
        Event {
            command: checkpoint::COMMAND.into(),
            key_id: Some(hex::encode(&record.cka_id)),
            detail: format!(
                "signed record {} (hash {}) with the audit key {}",
                signed.0,
                signed.1,
                public.fingerprint()
            ),
            checkpoint: Some(cp),
            ..Event::default()
        },
    )?;
    let head = crate::project::known_head(&ks)?
        .ok_or_else(|| anyhow::anyhow!("the checkpoint record was not written"))?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "checkpoint": {"seq": head.seq, "hash": head.hash},
            "signed": {"seq": signed.0, "hash": signed.1},
            "key": public.fingerprint(),
        }));
    }
    outln!(
        "checkpoint record {} hash {} (signs record {} hash {}; audit key {})",
        head.seq,
        head.hash,
        signed.0,
        signed.1,
        public.fingerprint()
    );
    Ok(())
}
