//! `dnsseal token info`.

use serde::Serialize;

use super::args::{TokenBenchArgs, TokenInfoArgs};
use super::context::Context;
use crate::keys::spec::key_spec;
use crate::token::{Capability, ModuleInfo, TokenIdentity, TokenStatus};
use crate::zone::Algorithm;

#[derive(Serialize)]
struct Report {
    module: ModuleInfo,
    token: TokenIdentity,
    status: TokenStatus,
    profile: ProfileReport,
    algorithms: Vec<AlgorithmReport>,
}

#[derive(Serialize)]
struct ProfileReport {
    name: String,
    tested: bool,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct AlgorithmReport {
    number: u8,
    mnemonic: &'static str,
    #[serde(flatten)]
    capability: Capability,
}

pub fn info(ctx: &Context, _args: TokenInfoArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let module = ctx.module(&cfg)?;
    let token = module.find_token(&cfg.token.selector)?;
    let mut algorithms = Vec::new();
    for alg in Algorithm::ALL {
        let spec = key_spec(alg, None)?;
        algorithms.push(AlgorithmReport {
            number: alg.number(),
            mnemonic: alg.mnemonic(),
            capability: token.capability(spec)?,
        });
    }
    let report = Report {
        module: module.info()?,
        token: token.identity.clone(),
        status: token.status()?,
        profile: ProfileReport {
            name: cfg.token.profile.name.clone(),
            tested: cfg.token.profile.tested,
            notes: cfg.token.profile.notes.clone(),
        },
        algorithms,
    };
    if ctx.json {
        return ctx.print_json(&report);
    }
    let m = &report.module;
    let t = &report.token;
    let s = &report.status;
    outln!(
        "module       {} ({} {}, PKCS#11 {})",
        m.path.display(),
        m.manufacturer,
        m.version,
        m.cryptoki_version
    );
    outln!("slot         {}", t.slot);
    outln!(
        "token        label '{}'  serial {}  model {}  ({})",
        t.label,
        t.serial,
        t.model,
        t.manufacturer
    );
    outln!(
        "status       login {}  user PIN {}{}{}  RNG {}",
        if s.login_required {
            "required"
        } else {
            "not required"
        },
        if s.user_pin_initialized {
            "set"
        } else {
            "NOT SET"
        },
        if s.user_pin_count_low {
            ", count low"
        } else {
            ""
        },
        if s.user_pin_locked {
            ", LOCKED"
        } else if s.user_pin_final_try {
            ", FINAL TRY"
        } else {
            ""
        },
        if s.has_rng { "yes" } else { "no" },
    );
    outln!(
        "profile      {}{}",
        report.profile.name,
        if report.profile.tested {
            " (tested)"
        } else {
            " (untested)"
        }
    );
    outln!("algorithms   (generate and sign, from the token's mechanism list)");
    for a in &report.algorithms {
        let c = &a.capability;
        let detail = match (c.supported, c.min_bits, c.max_bits) {
            (true, Some(lo), Some(hi)) => format!("yes  (RSA {lo}-{hi} bits)"),
            (true, _, _) => "yes".to_string(),
            (false, _, _) if !c.missing.is_empty() => {
                format!("NO   (missing {})", c.missing.join(", "))
            }
            (false, Some(lo), Some(hi)) => format!("NO   (RSA {lo}-{hi} bits only)"),
            (false, _, _) => "NO".to_string(),
        };
        outln!("  {:>2} {:<16} {}", a.number, a.mnemonic, detail);
    }
    for n in &report.profile.notes {
        outln!("note         {n}");
    }
    Ok(())
}

/// `dnsseal token bench`: C_Sign on random digests (or, for Ed25519, a
/// 100-octet message), one session per thread, no host work beyond that.
pub fn bench(ctx: &Context, args: TokenBenchArgs) -> anyhow::Result<()> {
    use crate::keystore::{KeyState, Role};
    use crate::sign::TokenInput;
    use crate::token::KeyObjects;

    let zone = crate::keys::parse_zone(&args.zone)?;
    let cfg = ctx.config()?;
    let ks = ctx.keystore(&cfg)?;
    let key = ks
        .keys(Some(&zone.to_string()))?
        .into_iter()
        .find(|k| k.state == KeyState::Active && matches!(k.role, Role::Zsk | Role::Csk))
        .ok_or_else(|| super::Failure::BadInput(format!("{zone} has no active ZSK or CSK")))?;
    let alg = key.algorithm;
    let module = ctx.module(&cfg)?;
    let token = module.find_token(&cfg.token.selector)?;
    let pin = ctx.user_pin()?;
    let mech = crate::keys::spec::mechanism(alg);
    let (TokenInput::RsaPkcs(data) | TokenInput::Ecdsa(data) | TokenInput::EdDsa(data)) =
        crate::sign::token_input(alg, &[0x5a; 100]);
    let threads = args.threads.max(1);
    let objects = if args.token_objects {
        KeyObjects::TokenObjects
    } else {
        KeyObjects::of(&cfg.token.profile)
    };
    let mut pool = token.signer_pool(pin, threads, &[(key.cka_id.clone(), mech)])?;
    pool.use_key_objects(objects);
    let measured = crate::token::bench::raw_rate(&pool, 0, &data, args.seconds)?;
    let (n, secs, rate) = (measured.signatures, measured.seconds, measured.per_second());
    let policy = crate::policy::zone::ZonePolicy::from_stored(
        &zone.to_string(),
        ks.policy(&zone.to_string())?,
    )?
    .policy;
    let (validity, refresh) = (
        policy.signature_validity.secs(),
        policy.signature_refresh.secs(),
    );
    let (full, daily) =
        crate::token::bench::resign_seconds(rate, args.signatures, validity, refresh);
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "algorithm": alg.mnemonic(), "key_tag": key.key_tag, "threads": threads,
            "key_objects": pool.key_objects(),
            "signatures": n, "seconds": secs, "signatures_per_second": rate,
            "zone_signatures": args.signatures,
            "full_signing_seconds": full,
            "token_seconds_per_day": daily,
        }));
    }
    outln!(
        "{} key {} on {threads} session(s), {}: {n} signatures in {secs:.2} s = {rate:.0} C_Sign/s",
        alg.mnemonic(),
        key.key_tag,
        pool.key_objects()
    );
    outln!(
        "a zone of {} signatures: a full signing takes the token {}; keeping it signed (validity {}, refresh {}) takes {} of token time a day",
        args.signatures,
        crate::policy::rollover::span_text(full.ceil() as i64),
        policy.signature_validity,
        policy.signature_refresh,
        crate::policy::rollover::span_text(daily.ceil() as i64)
    );
    Ok(())
}
