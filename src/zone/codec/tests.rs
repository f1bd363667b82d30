//! Round trips of every type through the zone reader and writer, against
//! the wire RDATA BIND 9.18 made of the same text
//! (`src/zone/testdata/rdata-bind.txt`, written by `named-compilezone -F
//! raw`; the `rdata_oracle` integration test checks it against BIND).

use super::*;
use crate::zone::parse::{parse_file, ZoneError};
use crate::zone::present::write_rdata;
use crate::zone::rr::Record;

const BIND_CASES: &str = include_str!("../testdata/rdata-bind.txt");

/// The records of a zone text, origin `example.`.
fn records_of(text: &str) -> Result<Vec<Record>, ZoneError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.zone");
    std::fs::write(&path, text).expect("write zone");
    parse_file(&path, &"example".parse().expect("origin")).map(|p| p.records)
}

/// Reads one record `c TYPE RDATA`; its type and canonical RDATA.
fn read_one(rtype: &str, rdata: &str) -> Result<(u16, Vec<u8>), ZoneError> {
    let r = records_of(&format!("$TTL 300\nc {rtype} {rdata}\n"))?;
    assert_eq!(r.len(), 1, "{rtype} {rdata}");
    Ok((r[0].rtype, r[0].rdata.clone()))
}

fn cases() -> impl Iterator<Item = (&'static str, &'static str, Vec<u8>)> {
    BIND_CASES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let (t, text, wire) = (f.next(), f.next(), f.next());
            let (Some(t), Some(text), Some(wire)) = (t, text, wire) else {
                panic!("bad fixture line {l:?}");
            };
            (t, text, hex::decode(wire).expect("fixture hex"))
        })
}

/// Text → wire gives BIND's wire (names lowercased where canonical form
/// says so), wire → text → wire gives the same wire again, and the text
/// written is the type's presentation format, not RFC 3597.
#[test]
fn every_type_reads_as_bind_reads_it_and_round_trips() {
    let mut seen = std::collections::BTreeSet::new();
    for (t, text, bind) in cases() {
        let (code, ours) = read_one(t, text).unwrap_or_else(|e| panic!("{t} {text}: refused: {e}"));
        if ours != bind {
            assert!(
                ours.eq_ignore_ascii_case(&bind)
                    && [18, 21, 23, 26, 36, 38, 2, 5, 6, 7, 8, 9, 12, 14, 15, 17, 33, 35, 39]
                        .contains(&code),
                "{t} {text}:\n ours {}\n BIND {}",
                hex::encode(&ours),
                hex::encode(&bind)
            );
        }
        let mut written = Vec::new();
        write_rdata(&mut written, code, &ours).expect("write to a Vec");
        let written = String::from_utf8(written).expect("UTF-8 text");
        // Only a type without any presentation format is written in RFC
        // 3597 form.
        assert_eq!(
            written.starts_with("\\#"),
            t.starts_with("TYPE"),
            "{t} {text} written as {written}"
        );
        let (_, again) = read_one(&type_name(code), &written)
            .unwrap_or_else(|e| panic!("{t}: our own text {written:?} refused: {e}"));
        assert_eq!(again, ours, "{t} {text} → {written}");
        // The same data given in RFC 3597 form is read back alike.
        let generic = format!("\\# {} {}", bind.len(), hex::encode(&bind));
        let (_, from_generic) = read_one(&format!("TYPE{code}"), &generic)
            .unwrap_or_else(|e| panic!("{t} {generic}: {e}"));
        assert_eq!(from_generic, ours, "{generic}");
        seen.insert(code);
    }
    for c in CODECS {
        assert!(
            seen.contains(&c.code),
            "no BIND case for {}",
            type_name(c.code)
        );
    }
}

const BAD_CASES: &str = include_str!("../testdata/rdata-bad.txt");

/// Every malformed record BIND refuses (`rdata-bad.txt`; the
/// `rdata_oracle` test checks BIND refuses each) is refused here too, with
/// the file and the record's line, and nothing else read.
#[test]
fn malformed_rdata_is_refused_with_file_and_line() {
    let mut accepted = Vec::new();
    for line in BAD_CASES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut f = line.split('\t');
        let (Some(t), Some(text)) = (f.next(), f.next()) else {
            panic!("bad fixture line {line:?}");
        };
        let zone = format!("$TTL 300\nok A 192.0.2.1\n\nc {t} {text}\nlater A 192.0.2.2\n");
        match records_of(&zone) {
            Ok(_) => accepted.push(format!("{t} {text}")),
            Err(e) => {
                assert_eq!(e.line, 4, "{t} {text}: {e}");
                assert!(e.file.ends_with("t.zone"), "{e}");
                assert!(!e.message.is_empty());
            }
        }
    }
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
}

/// Both tables are searched in type order.
#[test]
fn tables_are_in_type_order_and_names_map_back() {
    assert!(CODECS.windows(2).all(|w| w[0].code < w[1].code));
    assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    for &(code, name) in NAMES {
        assert_eq!(type_code(name.as_bytes()), Some(code), "{name}");
        assert_eq!(type_code(name.to_ascii_lowercase().as_bytes()), Some(code));
        assert_eq!(type_name(code), name);
    }
    assert_eq!(type_code(b"TYPE65534"), Some(65534));
    assert_eq!(type_name(65534), "TYPE65534");
    assert_eq!(type_code(b"NSAPPTR"), None);
    assert!(!domain_reads_mnemonic(23) && domain_reads_mnemonic(1));
}

/// Any wire RDATA a codec writes as text reads back to the same canonical
/// wire: BIND's cases, each mutated a few hundred ways (octets changed,
/// cut short, lengthened), through `show` and `scan`. What a codec cannot
/// write it must not take as canonical either.
#[test]
fn whatever_is_written_reads_back() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut written = 0;
    for (t, _, bind) in cases() {
        let Some(c) = type_code(t.as_bytes()).and_then(codec) else {
            continue;
        };
        for round in 0..300 {
            let mut w = bind.clone();
            match round % 3 {
                0 if !w.is_empty() => {
                    let i = (next() as usize) % w.len();
                    w[i] = next() as u8;
                }
                1 => w.truncate((next() as usize) % (w.len() + 1)),
                _ => w.extend((0..next() % 4).map(|_| next() as u8)),
            }
            let (shown, canon) = (c.show(&w), c.canonical(&w));
            assert_eq!(shown.is_some(), canon.is_some(), "{t} {}", hex::encode(&w));
            let (Some(text), Some(canon)) = (shown, canon) else {
                continue;
            };
            let back = c.scan(text.as_bytes(), "example.").unwrap_or_else(|e| {
                panic!("{t} {}: our text {text:?} refused: {e}", hex::encode(&w))
            });
            assert_eq!(
                c.canonical(&back).as_deref(),
                Some(&canon[..]),
                "{t} {} → {text}",
                hex::encode(&w)
            );
            written += 1;
        }
    }
    assert!(written > 5_000, "only {written} mutations were valid data");
}
