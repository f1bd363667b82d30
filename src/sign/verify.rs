//! What `dnsseal verify` computes: the full check of a signed zone
//! ([`super::check`]) and, given the parent's DS records, whether one of
//! them matches a key that signs the DNSKEY RRset (RFC 4035 §5.2). The
//! caller prints the report.

use std::path::Path;

use super::check::Report;
use super::options::rrsig_time;
use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::zone::{parse, ZoneName};

/// The largest DS file read: far more DS records than any zone has.
const DS_FILE_LIMIT: u64 = 1 << 20;

/// Checks the signed zone in `zonefile` at time `now`, and the parent's DS
/// records in `ds` when given. Problems found go into the report; errors
/// are for input that cannot be checked.
pub fn verify_zone(
    zonefile: &Path,
    origin: &ZoneName,
    now: Timestamp,
    ds: Option<&Path>,
) -> anyhow::Result<Report> {
    let parsed = parse::parse_file(zonefile, origin)?;
    let now = rrsig_time(now)?;
    let mut report = super::check::check_zone(parsed, origin, now)?;
    if let Some(ds_file) = ds {
        check_ds(ds_file, origin, &mut report)?;
    }
    Ok(report)
}

/// Checks the parent's DS records (RFC 4035 §5.2) against the keys that
/// sign the DNSKEY RRset.
pub fn check_ds(file: &Path, origin: &ZoneName, report: &mut Report) -> anyhow::Result<()> {
    let text = crate::files::read_regular(file, DS_FILE_LIMIT)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", file.display())))?;
    let text = String::from_utf8_lossy(&text);
    let mut matched = 0;
    let mut seen = 0;
    let mut unmatched = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line
            .split(';')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let Some(i) = fields.iter().position(|f| f.eq_ignore_ascii_case("DS")) else {
            continue;
        };
        let bad = || Failure::BadInput(format!("{}:{}: not a DS record", file.display(), n + 1));
        let tag: u16 = fields
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let alg: u8 = fields
            .get(i + 2)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest_type: crate::zone::DigestType = fields
            .get(i + 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest =
            hex::decode(fields.get(i + 4..).ok_or_else(bad)?.concat()).map_err(|_| bad())?;
        seen += 1;
        let want = crate::zone::Ds {
            key_tag: tag,
            algorithm: alg,
            digest_type,
            digest,
        };
        let signer = report
            .dnskey_signers
            .iter()
            .any(|k| k.ds(origin, digest_type) == want);
        if signer {
            matched += 1;
        } else {
            unmatched.push(format!(
                "DS {tag} {alg} {} (line {})",
                digest_type.number(),
                n + 1
            ));
        }
    }
    if seen == 0 {
        return Err(Failure::BadInput(format!("{}: no DS records", file.display())).into());
    }
    if matched == 0 {
        report.errors.push(format!(
            "no DS of the parent matches a KSK/CSK that signs the DNSKEY RRset ({}): validators would find the zone bogus",
            unmatched.join(", ")
        ));
    } else {
        // A DS for a key not yet (or no longer) in the zone is normal
        // during a double-DS rollover.
        for u in unmatched {
            tracing::warn!(
                "{u} matches no key that signs the DNSKEY RRset (fine during a KSK rollover)"
            );
        }
    }
    Ok(())
}
