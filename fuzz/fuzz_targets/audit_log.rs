//! The audit log reader and verifier (`audit::verify_reader`, and
//! `verify_reader_from` for excerpts) on the input as a log; then the same
//! lines with their chain repaired (each record's `prev` and `hash` made
//! right, so that what follows the hash checks is reached too) verified,
//! exported (JSON lines, CSV, excerpts) and their checkpoints checked.
//! Any input may be refused; none may panic.
#![no_main]

use dnsseal::audit::{self, checkpoint, export, Record, Verdict};
use dnsseal::clock::Timestamp;
use libfuzzer_sys::fuzz_target;

/// The P-256 base point (X || Y): a valid audit public key no checkpoint here is
/// signed with.
const POINT: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

fn after_verify(records: &[Record], verdict: &Verdict) {
    let key = checkpoint::PublicKey::from_point(&hex::decode(POINT).unwrap()).unwrap();
    let want = records.last().map(|r| r.hash.clone());
    let _ = checkpoint::verify(records, &[key], want.as_deref());
    let _ = audit::reset_at_start(records);
    for format in [export::Format::Jsonl, export::Format::Csv] {
        let _ = export::render(records, format);
    }
    let since = records
        .get(records.len() / 2)
        .and_then(|r| Timestamp::parse(&r.time).ok());
    let _ = export::excerpt(records, since);
    if let Verdict::Intact { head, .. } = verdict {
        let known = records.first().map(|r| (r.seq, r.hash.clone()));
        let _ = export::check_head(
            std::path::Path::new("fuzz.log"),
            records,
            head.as_ref(),
            known.as_ref(),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((records, verdict)) = audit::verify_reader(data) {
        after_verify(&records, &verdict);
    }
    if let Ok((records, verdict)) = audit::verify_reader_from(data) {
        after_verify(&records, &verdict);
    }
    // The lines that are records, chained.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut prev: Option<String> = None;
    let mut log = String::new();
    for line in text.lines() {
        let Ok(mut r) = serde_json::from_str::<Record>(line) else {
            continue;
        };
        match prev.take() {
            Some(p) => r.prev = p,
            None if r.seq == 1 => r.prev = audit::GENESIS.to_string(),
            None => {}
        }
        r.hash = r.compute_hash();
        prev = Some(r.hash.clone());
        log.push_str(&r.canonical_line());
        log.push('\n');
    }
    for from in [false, true] {
        let checked = if from {
            audit::verify_reader_from(log.as_bytes())
        } else {
            audit::verify_reader(log.as_bytes())
        };
        if let Ok((records, verdict)) = checked {
            after_verify(&records, &verdict);
        }
    }
});
