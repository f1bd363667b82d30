//! `dnsseal sign` and `dnsseal verify`: arguments into options, the project
//! opened (config, keystore, token, PIN), the library called
//! ([`crate::sign::pipeline`], [`crate::sign::check`]), the audit record
//! written and the report printed.

use std::io::IsTerminal;
use std::time::Instant;

use super::args::{SerialArg, SignArgs, VerifyArgs};
use super::context::{Context, Failure};
use crate::audit::Event;
use crate::keys::offline;
use crate::keys::{check_signing_keys, parse_zone, spec::mechanism};
use crate::policy::signing::{zone_keys, zone_keys_offline};
use crate::policy::zone::ZonePolicy;
use crate::policy::Policy;
use crate::project::Project;
use crate::sign::options::{self, Nsec3Request, SignOptions};
use crate::sign::pipeline::{self, phase, Outcome};
use crate::sign::plan::StateLoader;
use crate::token::{KeyObjects, SignMechanism, SignerPool};
use crate::zone::dnssec::SerialPolicy;
use crate::zone::ZoneName;

/// `dnsseal sign`: refuses to start on a broken audit log, and a failed
/// run is audited like any other failed operation.
pub fn run(ctx: &Context, args: SignArgs) -> anyhow::Result<()> {
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
    let cfg = &project.config().clone();
    let started = Instant::now();
    phase("start");
    let origin = parse_zone(&options::origin_text(
        args.origin.as_deref(),
        &args.zonefile,
    ))?;
    // The previous signing's state loads (and its zone file is hashed)
    // while the input is parsed.
    let loader = args
        .incremental
        .as_deref()
        .map(|prev| StateLoader::spawn(prev, &origin, cfg.zone_limits.total_bytes));
    let now = project.now();
    let ks = project.keystore();
    let zone_s = origin.to_string();
    // The generation first: a rollover step committed while this run reads
    // the keys then only makes the record of this signing older (safe).
    let generation = ks.generation(&zone_s)?;
    let zone_policy = ZonePolicy::from_stored(&zone_s, ks.policy(&zone_s)?)?;
    let opts = sign_options(
        &args,
        cfg,
        origin,
        zone_policy.is_set().then_some(&zone_policy.policy),
        now,
    )?;
    let policy = zone_policy.policy;

    // Keys first: no point reading a big zone for a zone without keys.
    let records = ks.keys(Some(&zone_s))?;
    let keys = if policy.offline_ksk {
        let presigned = offline::presigned_now(ks, &opts.origin, &policy, now)?;
        zone_keys_offline(records, &opts.origin, presigned)?
    } else {
        zone_keys(records, &opts.origin)?
    };
    phase("keys read");
    // The zone before the token: a bad input, or one that takes long to
    // read, never holds the token (nor needs the module).
    let zone = pipeline::read_zone(&opts)?;
    let module = project.module()?;
    let token = project.find_token(&module)?;
    keys.in_token(&opts.origin, &token.identity.serial)?;
    let pin = ctx.user_pin()?;

    let open = |threads: usize| -> anyhow::Result<SignerPool> {
        let mechs: Vec<(Vec<u8>, SignMechanism)> = keys
            .signing
            .iter()
            .map(|k| (k.cka_id.clone(), mechanism(k.algorithm)))
            .collect();
        let mut pool = token.signer_pool(pin, threads, &mechs)?;
        // Checked before any copy is made or anything signed.
        check_signing_keys(&pool, &keys, &opts.origin)?;
        pool.use_key_objects(KeyObjects::of(&cfg.token.profile));
        tracing::debug!("signing with {}", pool.key_objects());
        Ok(pool)
    };
    let show = std::io::stderr().is_terminal() && !ctx.quiet;
    let bar = show.then(progress_bar);
    let progress = |n: usize, total: usize| {
        if let Some(b) = bar.as_ref().filter(|_| total > 2_000) {
            b.set_length(total as u64);
            b.set_position(n as u64);
        }
    };
    let signed = pipeline::sign_zone(
        &opts,
        zone,
        &keys,
        &policy,
        loader,
        show.then_some(&progress as pipeline::Progress<'_>),
        open,
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (outcome, pool) = signed?;
    // Rollover waits count from here: this generation of the key set is
    // now in a signed zone.
    project.keystore_mut().record_signing(
        &zone_s,
        generation,
        now,
        outcome.dnskey_ttl,
        outcome.max_ttl,
    )?;
    phase("recorded");
    let secs = started.elapsed().as_secs_f64();
    let mut detail = outcome.describe(&opts, &keys);
    if pool.reopened() > 0 {
        detail.push_str(&format!(
            "; the token failed during the run and {} signing session(s) were reopened",
            pool.reopened()
        ));
    }
    project.audit(Event {
        command: "sign".into(),
        zone: Some(zone_s),
        detail,
        ..Event::default()
    })?;
    phase("audited");
    report(ctx, &opts, &outcome, &pool, secs)
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

/// The command line and the zone's policy as signing options.
fn sign_options(
    args: &SignArgs,
    cfg: &crate::config::Config,
    origin: ZoneName,
    policy: Option<&Policy>,
    now: crate::clock::Timestamp,
) -> anyhow::Result<SignOptions> {
    let times = options::resolve_times(
        args.start.as_deref(),
        args.end.as_deref(),
        args.jitter,
        args.interval,
        policy,
        now,
    )?;
    let nsec3 = options::resolve_nsec3(
        Nsec3Request {
            nsec3: args.nsec3,
            salt: args.salt.as_deref(),
            iterations: args.iterations,
            opt_out: args.opt_out,
        },
        policy,
    )?;
    Ok(SignOptions {
        origin,
        input: args.zonefile.clone(),
        output: options::output_path(args.output.as_deref(), &args.zonefile),
        incremental: args.incremental.clone(),
        now,
        times,
        nsec3,
        serial: match args.serial {
            SerialArg::Keep => SerialPolicy::Keep,
            SerialArg::Increment => SerialPolicy::Increment,
            SerialArg::Unixtime => SerialPolicy::UnixTime,
            SerialArg::Date => SerialPolicy::Date,
        },
        dnskey_ttl: options::resolve_dnskey_ttl(args.dnskey_ttl, policy),
        threads: args.threads,
        max_sessions: cfg.token.profile.max_sessions as usize,
        software_token: cfg.token.profile.software_token,
        verify: !args.no_verify,
        limits: cfg.zone_limits,
    })
}

/// The report of a signing run: JSON, or the counts on standard error.
fn report(
    ctx: &Context,
    opts: &SignOptions,
    outcome: &Outcome,
    pool: &SignerPool,
    secs: f64,
) -> anyhow::Result<()> {
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
            "threads": pool.workers(),
            "sessions_reopened": pool.reopened(),
            "key_objects": pool.key_objects(),
            // How the sessions were sized, when a probe sized them.
            "session_probe": outcome.probe,
            // Where --incremental found the previous signatures: the
            // signing state, or the signed zone's text.
            "incremental_from": opts.incremental.as_ref().map(|_| if outcome.from_state { "state" } else { "text" }),
        }));
    }
    if pool.reopened() > 0 {
        tracing::warn!(
            "the token failed during the run: signing sessions were reopened {} time(s); the zone was signed",
            pool.reopened()
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
