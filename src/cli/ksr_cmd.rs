//! `dnsseal ksr show|create|sign` and `dnsseal skr import`: the offline
//! KSK exchange. Requests and responses are read and checked by
//! [`crate::ksr`]; keys made, responses signed and stored by
//! [`crate::keys::offline`]; this module reads the files, asks the
//! witnesses, writes the results and prints them.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::args::{KsrCreateArgs, KsrShowArgs, KsrSignArgs, SkrImportArgs};
use super::context::{Context, Failure};
use crate::audit::Event;
use crate::keys::offline;
use crate::keys::parse_zone;
use crate::keys::rollover::Steward;
use crate::ksr::{parse_request_text, read_text, spoken_digest, Request};
use crate::policy::zone::ZonePolicy;
use crate::project::Project;
use crate::sign::options::parse_time;
use crate::zone::{Algorithm, ZoneName};

/// The zone named, or the file's name without `suffix`.
fn zone_of(named: Option<&str>, file: &Path, suffix: &str) -> anyhow::Result<ZoneName> {
    let origin = match named {
        Some(o) => o.to_string(),
        None => file
            .file_name()
            .map(|f| f.to_string_lossy().trim_end_matches(suffix).to_string())
            .unwrap_or_default(),
    };
    parse_zone(&origin)
}

fn read_request(file: &Path, zone: &ZoneName) -> anyhow::Result<(String, Request)> {
    let bad = |e: crate::ksr::KsrError| Failure::BadInput(e.to_string());
    let text = read_text(file).map_err(bad)?;
    let request = parse_request_text(&text, &file.display().to_string(), zone).map_err(bad)?;
    Ok((text, request))
}

pub fn show(ctx: &Context, args: KsrShowArgs) -> anyhow::Result<()> {
    let zone = zone_of(args.origin.as_deref(), &args.file, ".ksr")?;
    let (text, request) = read_request(&args.file, &zone)?;
    print_request(ctx, &args.file, &text, &request)
}

/// A request as the witnesses read it: its periods and keys, and the
/// SHA-256 of the file.
fn print_request(ctx: &Context, file: &Path, text: &str, request: &Request) -> anyhow::Result<()> {
    let zone = &request.zone;
    let name = file.display().to_string();
    let args_file = file;
    // The text is the file's bytes, read whole.
    let digest = spoken_digest(text.as_bytes());
    let key = |k: &crate::zone::dnskey::Dnskey| {
        let alg = Algorithm::from_number(k.algorithm)
            .map_or_else(|| k.algorithm.to_string(), |a| a.mnemonic().to_string());
        (k.key_tag(), alg, k.bits(), k.flags)
    };
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": zone.to_string(),
            "file": args_file,
            "sha256": digest.replace(' ', ""),
            "periods": request.periods.iter().map(|p| serde_json::json!({
                "time": p.time.rfc3339(),
                "unix": p.time.unix(),
                "ttl": p.ttl,
                "keys": p.dnskeys.iter().map(|k| {
                    let (tag, alg, bits, flags) = key(k);
                    serde_json::json!({"key_tag": tag, "algorithm": alg, "bits": bits, "flags": flags})
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
    }
    outln!(
        "key signing request for {zone} ({name}): {} period(s)",
        request.periods.len()
    );
    for (i, p) in request.periods.iter().enumerate() {
        outln!(
            "period {:>3}  from {} ({})  DNSKEY TTL {}",
            i + 1,
            p.time.rfc3339(),
            p.time.unix(),
            p.ttl
        );
        for k in &p.dnskeys {
            let (tag, alg, bits, flags) = key(k);
            outln!("            key tag {tag:>5}  {alg} {bits} bits  flags {flags}");
        }
    }
    outln!("SHA-256 of the file, to read aloud:");
    outln!("  {digest}");
    Ok(())
}

/// `ksr create`: the ZSKs planned and made, the request written.
pub fn create(ctx: &Context, args: KsrCreateArgs) -> anyhow::Result<()> {
    let zone = parse_zone(&args.zone)?;
    let now = ctx.now();
    let from = match &args.from {
        Some(f) => parse_time(f, now, now)?,
        None => now,
    };
    let to = parse_time(&args.to, now, from)?;
    let cfg = ctx.config()?;
    let pin = || ctx.user_pin();
    let steward = Steward {
        cfg: &cfg,
        command: &ctx.command,
        now,
        pin: &pin,
    };
    let made = ctx.audited(&cfg, Some(zone.to_string()), || {
        let made = steward.ksr_create(&zone, from, to)?;
        crate::atomic::write(&args.output, made.text.as_bytes())?;
        Ok(made)
    })?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": zone.to_string(),
            "file": args.output,
            "periods": made.request.periods.len(),
            "made": made.made,
            "sha256": spoken_digest(made.text.as_bytes()).replace(' ', ""),
            "plan_end": made.plan_end.map(|t| t.rfc3339()),
        }));
    }
    if !ctx.quiet {
        print_request(ctx, &args.output, &made.text, &made.request)?;
        if !made.made.is_empty() {
            outln!("pre-generated in the token: {}", made.made.join(", "));
        }
        if let Some(end) = made.plan_end {
            outln!("the ZSK plan needs a new request before {end}");
        }
    }
    Ok(())
}

/// Asks the person at the console to confirm, unless `--yes`.
fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Refused(format!(
            "{question}: not confirmed (no terminal): pass --yes"
        ))
        .into());
    }
    eprint!("{question} Type yes to go on: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "yes" {
        return Err(Failure::Refused("not confirmed: nothing signed".into()).into());
    }
    Ok(())
}

/// `ksr sign` (offline box): the request shown, checked, signed, the
/// response written and audited.
pub fn sign(ctx: &Context, args: KsrSignArgs) -> anyhow::Result<()> {
    let zone = zone_of(args.zone.as_deref(), &args.file, ".ksr")?;
    let mut project = Project::open(&ctx.config_path, ctx.clock, &ctx.command)?;
    project.audited(Some(zone.to_string()), |project| {
        let (text, request) = read_request(&args.file, &zone)?;
        let name = zone.to_string();
        let policy = ZonePolicy::from_stored(&name, project.keystore().policy(&name)?)?;
        if !policy.is_set() {
            return Err(Failure::Refused(format!(
                "{zone} has no policy on this box: a request is signed only for a zone this box knows (`dnsseal policy set {zone} FILE`)"
            ))
            .into());
        }
        if !ctx.quiet && !ctx.json {
            print_request(ctx, &args.file, &text, &request)?;
        }
        confirm(args.yes, &format!("Sign this request for {zone} with its KSK?"))?;
        let pin = ctx.user_pin()?;
        let answered = offline::answer_request(project, pin, &request, &policy.policy)?;
        crate::atomic::write(&args.output, answered.text.as_bytes())?;
        let out_digest = spoken_digest(answered.text.as_bytes());
        project.audit(Event {
            command: "ksr sign".into(),
            zone: Some(name),
            detail: format!(
                "signed key request {} (SHA-256 {}) into {} (SHA-256 {}): {} period(s) with KSK(s) {:?}, runs out at {}",
                args.file.display(),
                spoken_digest(text.as_bytes()).replace(' ', ""),
                args.output.display(),
                out_digest.replace(' ', ""),
                answered.response.periods.len(),
                answered.ksks,
                answered.end.map_or("-".into(), |e| e.to_string())
            ),
            ..Event::default()
        })?;
        if ctx.json {
            return ctx.print_json(&serde_json::json!({
                "zone": zone.to_string(),
                "file": args.output,
                "periods": answered.response.periods.len(),
                "ksks": answered.ksks,
                "sha256": out_digest.replace(' ', ""),
                "ends": answered.end.map(|t| t.rfc3339()),
            }));
        }
        if !ctx.quiet {
            outln!(
                "signed key response for {zone} written to {}: {} period(s), KSK(s) {:?}, runs out at {}",
                args.output.display(),
                answered.response.periods.len(),
                answered.ksks,
                answered.end.map_or("-".into(), |e| e.to_string())
            );
            outln!("SHA-256 of the response, to read aloud:");
            outln!("  {out_digest}");
        }
        Ok(())
    })
}

/// `skr import`: the response checked and stored.
pub fn import(ctx: &Context, args: SkrImportArgs) -> anyhow::Result<()> {
    let zone = zone_of(args.zone.as_deref(), &args.file, ".skr")?;
    let bad = |e: crate::ksr::KsrError| Failure::BadInput(e.to_string());
    let text = read_text(&args.file).map_err(bad)?;
    let pins = match &args.ksk {
        Some(f) => Some(read_pins(f, &zone).map_err(|e| match &args.zone {
            Some(_) => e,
            None => e.context(format!(
                "the zone {zone} is taken from the file name {}: name another with --zone",
                args.file.display()
            )),
        })?),
        None => None,
    };
    let cfg = ctx.config()?;
    let pin = || ctx.user_pin();
    let steward = Steward {
        cfg: &cfg,
        command: &ctx.command,
        now: ctx.now(),
        pin: &pin,
    };
    let file = args.file.display().to_string();
    let done = ctx.audited(&cfg, Some(zone.to_string()), || {
        steward.skr_import(&zone, &text, &file, pins)
    })?;
    let when = |t: Option<crate::clock::Timestamp>| t.map_or("-".into(), |t| t.to_string());
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": zone.to_string(),
            "periods": done.periods,
            "first": done.first.map(|t| t.rfc3339()),
            "ends": done.end.map(|t| t.rfc3339()),
            "ksks": done.ksks,
        }));
    }
    if !ctx.quiet {
        outln!(
            "{file}: imported for {zone}: {} period(s) stored from {}, KSK(s) {:?}; the SKR runs out at {}",
            done.periods,
            when(done.first),
            done.ksks,
            when(done.end)
        );
    }
    Ok(())
}

/// The KSKs to pin: the DNSKEY records (flags 257) of a file.
fn read_pins(file: &Path, zone: &ZoneName) -> anyhow::Result<Vec<crate::zone::Dnskey>> {
    let name = file.display().to_string();
    let bad = |m: String| Failure::BadInput(format!("{name}: {m}"));
    let text = crate::files::read_regular(file, 1 << 20).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|_| bad("not UTF-8 text".into()))?;
    let keys = crate::ksr::format::dnskeys_in(&text, &name, zone)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let ksks: Vec<_> = keys.into_iter().filter(|k| k.flags == 257).collect();
    if ksks.is_empty() {
        return Err(bad(format!("no DNSKEY record with flags 257 for {zone}")).into());
    }
    Ok(ksks)
}
