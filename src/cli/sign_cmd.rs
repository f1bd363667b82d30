//! `dnsseal sign` and `dnsseal verify`: the project opened, the library
//! called ([`crate::sign::job`] with the local token and PIN,
//! [`crate::sign::verify`]), the audit record written and the report
//! printed.

use std::io::IsTerminal;
use std::sync::Arc;

use super::args::VerifyArgs;
use super::context::{Context, Failure};
use crate::audit::Event;
use crate::keys::parse_zone;
use crate::project::Project;
use crate::sign::job::{self, Signed};
use crate::sign::pipeline;
use crate::sign::request::SignArgs;
use crate::token::Module;

/// `dnsseal sign`: refuses to start on a broken audit log, and a failed
/// run is audited like any other failed operation.
pub fn run(ctx: &Context, cmd: super::args::SignCommand) -> anyhow::Result<()> {
    if cmd.remote.server.is_some() {
        return remote(ctx, &cmd);
    }
    let args = cmd.args;
    let mut project = Project::open(&ctx.config_path, ctx.clock, &ctx.command)?;
    let zone = args.origin.as_deref().map(|o| {
        parse_zone(o)
            .map(|z| z.to_string())
            .unwrap_or_else(|_| o.to_string())
    });
    project.audited(zone, |project| sign(ctx, project, args))
}

fn sign(ctx: &Context, project: &mut Project, args: SignArgs) -> anyhow::Result<()> {
    // Ctrl-C stops the run with nothing written (and audited).
    crate::interrupt::install()?;
    let show = std::io::stderr().is_terminal() && !ctx.quiet;
    let bar = show.then(progress_bar);
    let progress = |n: usize, total: usize| {
        if let Some(b) = bar.as_ref().filter(|_| total > 2_000) {
            b.set_length(total as u64);
            b.set_position(n as u64);
        }
    };
    let access = LocalToken {
        ctx,
        config: project.config().clone(),
    };
    let signed = job::sign(
        project,
        &args,
        &access,
        show.then_some(&progress as pipeline::Progress<'_>),
        &crate::interrupt::Cancel::default(),
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let signed = signed?;
    project.audit(Event {
        command: "sign".into(),
        zone: Some(signed.opts.origin.to_string()),
        detail: signed.detail.clone(),
        ..Event::default()
    })?;
    pipeline::phase("audited");
    report(ctx, &signed)
}

/// The token of the local command: the module loaded (after the token
/// lock is taken) when the run asks for it, the PIN from the usual
/// sources.
struct LocalToken<'a> {
    ctx: &'a Context,
    config: crate::config::Config,
}

impl job::TokenAccess for LocalToken<'_> {
    fn module(&self) -> anyhow::Result<Arc<Module>> {
        Ok(Arc::new(crate::project::load_module(&self.config)?))
    }

    fn pin(&self) -> anyhow::Result<&secrecy::SecretString> {
        self.ctx.user_pin()
    }
}

/// `dnsseal sign --server`: the service signs, the output is written here.
fn remote(ctx: &Context, cmd: &super::args::SignCommand) -> anyhow::Result<()> {
    let result = crate::service::client::sign(&cmd.args, &cmd.remote)?;
    let output = crate::sign::options::output_path(cmd.args.output.as_deref(), &cmd.args.zonefile);
    if ctx.json {
        let mut v = serde_json::to_value(&result)?;
        v["output"] = serde_json::json!(output);
        return ctx.print_json(&v);
    }
    if !ctx.quiet {
        eprintln!("{}", output.display());
        eprintln!(
            "Signatures generated: {:>10}\nSignatures retained:  {:>10}\nSignatures dropped:   {:>10}\nRuntime in seconds:   {:>10.3}\nSignatures per second:{:>10.0}",
            result.signatures_generated,
            result.signatures_retained,
            result.signatures_dropped,
            result.seconds,
            result.signatures_generated as f64 / result.signing_seconds.max(1e-9)
        );
    }
    Ok(())
}

/// Signatures done, their rate and the time left, on standard error (a
/// slow HSM signs a big zone for minutes).
fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "signing {bar:30} {pos}/{len} signatures ({percent}%), {per_sec}, {eta} left",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// The report of a signing run: JSON, or the counts on standard error.
fn report(ctx: &Context, signed: &Signed) -> anyhow::Result<()> {
    let (opts, outcome, secs) = (&signed.opts, &signed.outcome, signed.seconds);
    let stats = outcome.stats;
    let sign_secs = outcome.signing_seconds;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": opts.origin.to_string(),
            "output": opts.output,
            "serial": outcome.serial.1,
            "signatures_generated": stats.generated,
            "signatures_retained": stats.retained,
            "signatures_dropped": stats.dropped,
            "seconds": secs,
            "signing_seconds": sign_secs,
            "signatures_per_second": stats.generated as f64 / sign_secs.max(1e-9),
            "threads": signed.workers,
            "sessions_reopened": signed.reopened,
            "key_objects": signed.key_objects,
            // How the sessions were sized, when a probe sized them.
            "session_probe": outcome.probe,
            // Where --incremental found the previous signatures: the
            // signing state, or the signed zone's text.
            "incremental_from": opts.incremental.as_ref().map(|_| if outcome.from_state { "state" } else { "text" }),
        }));
    }
    if signed.reopened > 0 {
        tracing::warn!(
            "the token failed during the run: signing sessions were reopened {} time(s); the zone was signed",
            signed.reopened
        );
    }
    if !ctx.quiet {
        eprintln!("{}", opts.output.display());
        eprintln!(
            "Signatures generated: {:>10}\nSignatures retained:  {:>10}\nSignatures dropped:   {:>10}\nRuntime in seconds:   {:>10.3}\nSignatures per second:{:>10.0}",
            stats.generated,
            stats.retained,
            stats.dropped,
            secs,
            stats.generated as f64 / sign_secs.max(1e-9)
        );
    }
    Ok(())
}

/// `dnsseal verify`.
pub fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<()> {
    let origin = parse_zone(&args.origin)?;
    let report =
        crate::sign::verify::verify_zone(&args.zonefile, &origin, ctx.now(), args.ds.as_deref())?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "zone": origin.to_string(),
            "denial": report.denial,
            "rrsets_checked": report.rrsets_checked,
            "signatures_checked": report.signatures_checked,
            "errors": report.errors,
        }))?;
    } else {
        for e in report.errors.iter().take(50) {
            eprintln!("{}: {e}", args.zonefile.display());
        }
        if report.errors.len() > 50 {
            eprintln!("... and {} more", report.errors.len() - 50);
        }
    }
    if !report.errors.is_empty() {
        return Err(Failure::Verify(format!(
            "{}: {} problem(s) in the signed zone {origin}",
            args.zonefile.display(),
            report.errors.len()
        ))
        .into());
    }
    if !ctx.json && !ctx.quiet {
        outln!(
            "{}: {origin} verifies: {} RRsets, {} signatures, {} chain complete",
            args.zonefile.display(),
            report.rrsets_checked,
            report.signatures_checked,
            report.denial
        );
    }
    Ok(())
}
