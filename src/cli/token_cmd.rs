//! `dnsseal token info`.

use serde::Serialize;

use super::args::TokenInfoArgs;
use super::context::Context;
use super::keys::key_spec;
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
    println!(
        "module       {} ({} {}, PKCS#11 {})",
        m.path.display(),
        m.manufacturer,
        m.version,
        m.cryptoki_version
    );
    println!("slot         {}", t.slot);
    println!(
        "token        label '{}'  serial {}  model {}  ({})",
        t.label, t.serial, t.model, t.manufacturer
    );
    println!(
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
    println!(
        "profile      {}{}",
        report.profile.name,
        if report.profile.tested {
            " (tested)"
        } else {
            " (untested)"
        }
    );
    println!("algorithms   (generate and sign, from the token's mechanism list)");
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
        println!("  {:>2} {:<16} {}", a.number, a.mnemonic, detail);
    }
    for n in &report.profile.notes {
        println!("note         {n}");
    }
    Ok(())
}
