//! `dnsseal audit verify|export|reset`: the log read and checked by
//! [`crate::audit`] (and against the keystore's head by
//! [`crate::audit::export`]), the verdict or the excerpt printed; a new
//! chain started by [`crate::project::history::reset`].

use std::io::BufReader;

use super::args::{AuditExportArgs, AuditResetArgs, AuditVerifyArgs, ExportFormat};
use super::context::{Context, Failure};
use crate::atomic::write as write_atomic;
use crate::audit::{self, export, Verdict};
use crate::clock::Timestamp;
use crate::project::history;

pub fn verify(ctx: &Context, args: AuditVerifyArgs) -> anyhow::Result<()> {
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
            history::refuse_new_chain(&cfg, &ks).map_err(|e| Failure::Verify(format!("{e:#}")))?;
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
