//! `dnsseal ksr show`: a key signing request read by [`crate::ksr`] and
//! printed for the witnesses of a ceremony.

use super::args::KsrShowArgs;
use super::context::{Context, Failure};
use crate::keys::parse_zone;
use crate::ksr::{parse_request_text, read_text, spoken_digest};
use crate::zone::Algorithm;

pub fn show(ctx: &Context, args: KsrShowArgs) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let origin = match &args.origin {
        Some(o) => o.clone(),
        None => args
            .file
            .file_name()
            .map(|f| f.to_string_lossy().trim_end_matches(".ksr").to_string())
            .unwrap_or_default(),
    };
    let zone = parse_zone(&origin)?;
    let bad = |e: crate::ksr::KsrError| Failure::BadInput(e.to_string());
    let text = read_text(&args.file).map_err(bad)?;
    let request = parse_request_text(&text, &name, &zone).map_err(bad)?;
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
            "file": args.file,
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
