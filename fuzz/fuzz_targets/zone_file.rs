//! The zone-file front end: text → records (`zone::parse::parse_text`),
//! each record presented again, records → a checked zone
//! (`zone::model::build`), and the NSEC chain over it. Any input may be
//! refused; none may panic.
#![no_main]

use dnsseal::zone::{dnssec, model, parse, present, Work, ZoneName};
use libfuzzer_sys::fuzz_target;

/// The zone's origin: the first line's `$ORIGIN` when it names one, else
/// the root (every name is at or below it).
fn origin_of(data: &[u8]) -> ZoneName {
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut words = first.split_whitespace();
    match (words.next(), words.next()) {
        (Some(d), Some(name)) if d.eq_ignore_ascii_case("$ORIGIN") => {
            name.parse().unwrap_or_else(|_| ZoneName::root())
        }
        _ => ZoneName::root(),
    }
}

fuzz_target!(|data: &[u8]| {
    let origin = origin_of(data);
    let limits = parse::Limits {
        file_bytes: 1 << 20,
        total_bytes: 1 << 20,
        includes: false,
    };
    let Ok(parsed) = parse::parse_text(data, "fuzz.zone", &origin, limits) else {
        return;
    };
    let mut out = Vec::new();
    for r in &parsed.records {
        let owner = present::name_text(&r.owner);
        let _ = present::write_record(&mut out, &owner, r.ttl, r.rtype, &r.rdata);
        out.clear();
    }
    if let Ok(mut zone) = model::build(parsed, &origin, Work::OneThread) {
        let _ = zone.negative_ttl();
        dnssec::add_nsec_chain(&mut zone, Work::OneThread);
    }
});
