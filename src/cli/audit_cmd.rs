//! `dnsseal audit verify|export`: the log read and checked by
//! [`crate::audit`] (and against the keystore's head by
//! [`crate::audit::export`]), the verdict or the excerpt printed.

use std::io::BufReader;

use super::args::{AuditExportArgs, AuditVerifyArgs, ExportFormat};
use super::context::{Context, Failure};
use crate::atomic::write as write_atomic;
use crate::audit::{self, export, Verdict};
use crate::clock::Timestamp;

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
            let head = ctx.keystore(&cfg)?.audit_head()?;
            (cfg.audit_log.clone(), head)
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
            if ctx.json {
                return ctx.print_json(&serde_json::json!({
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
