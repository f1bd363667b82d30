//! End to end over every RR type BIND reads: `zones/every-type.zone`, about
//! sixty types in presentation form as an operator writes them, signs with
//! NSEC and with NSEC3; BIND's dnssec-verify and `dnsseal verify` pass the
//! output, and once BIND has printed both (`named-compilezone -s full`)
//! every record of the output that is not DNSSEC's equals the input's: the
//! signer wrote exactly the wire RDATA that BIND reads in the input.
//!
//! ldns 1.8 and Knot 3.2 cannot read some of these types (docs/rr-types.md);
//! each of them checks a signed copy of the zone that leaves those types
//! out. `zones/every-type-mixed-case.zone` checks that signatures over the
//! canonical (partly lowercased) RDATA names validate.

mod common;

use std::path::Path;
use std::process::Command;

use common::Project;

const EVERY_TYPE: &str = include_str!("zones/every-type.zone");
const MIXED_CASE: &str = include_str!("zones/every-type-mixed-case.zone");

/// Types ldns 1.8.3 refuses, or reads to wire other than BIND's (ATMA
/// without its format octet, NSAP-PTR as a string); docs/rr-types.md.
const LDNS_LAGS: &[&str] = &[
    "A6", "AMTRELAY", "ATMA", "AVC", "DOA", "NINFO", "NSAP-PTR", "RESINFO", "RKEY", "SINK", "TA",
    "WALLET",
];

/// Types Knot 3.2.6 does not support (kzonecheck: "unsupported record
/// type"); docs/rr-types.md.
const KNOT_LAGS: &[&str] = &[
    "A6", "AMTRELAY", "ATMA", "AVC", "DLV", "DOA", "EID", "GPOS", "HIP", "ISDN", "MB", "MG", "MR",
    "NIMLOC", "NINFO", "NSAP", "NSAP-PTR", "PX", "RESINFO", "RKEY", "SINK", "TA", "TALINK",
    "WALLET", "WKS", "X25",
];

/// What signing adds; everything else must come out as it went in.
const DNSSEC_TYPES: &[&str] = &[
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "DNSKEY",
    "CDS",
    "CDNSKEY",
];

fn require_tools() {
    common::require("named-compilezone", "bind9-utils");
    common::require("named-checkzone", "bind9-utils");
    common::require_verifiers();
}

fn output_of(tool: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

#[track_caller]
fn assert_tool_passes(tool: &str, args: &[&str]) {
    let out = output_of(tool, args);
    assert!(
        out.status.success(),
        "{tool} {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One record as BIND prints it with `-s full`: owner, TTL, class, type and
/// the RDATA text, fields joined by single spaces (the RDATA as printed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    owner: String,
    ttl: String,
    class: String,
    rtype: String,
    rdata: String,
}

impl Record {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.owner, self.ttl, self.class, self.rtype, self.rdata
        )
    }
}

/// Splits a `-s full` line into its first four fields and the rest.
fn parse_record(line: &str) -> Record {
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..4 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        fields.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    assert!(
        fields.iter().all(|f| !f.is_empty()),
        "not a record line: {line:?}"
    );
    Record {
        owner: fields[0].clone(),
        ttl: fields[1].clone(),
        class: fields[2].clone(),
        rtype: fields[3].clone(),
        rdata: rest.trim().to_string(),
    }
}

/// The records of a zone file as BIND reads and prints them, one per line
/// (`named-compilezone -s full`), sorted.
fn bind_records(file: &Path) -> Vec<Record> {
    let out_file = file.with_extension("bind-full");
    let (f, o) = (
        file.to_str().expect("UTF-8 path"),
        out_file.to_str().expect("UTF-8 path"),
    );
    assert_tool_passes(
        "named-compilezone",
        &["-i", "none", "-s", "full", "-o", o, "example.", f],
    );
    let text = std::fs::read_to_string(&out_file).expect("named-compilezone output");
    let mut records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(parse_record)
        .collect();
    records.sort();
    records
}

fn without_dnssec(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .filter(|r| !DNSSEC_TYPES.contains(&r.rtype.as_str()))
        .cloned()
        .collect()
}

/// The difference between two record lists, if any: the records found on
/// one side only. With `fold_case`, lines are compared in lower case.
fn record_diff(input: &[Record], output: &[Record], fold_case: bool) -> Option<String> {
    let norm = |rs: &[Record]| -> Vec<String> {
        let mut v: Vec<String> = rs
            .iter()
            .map(|r| {
                if fold_case {
                    r.line().to_lowercase()
                } else {
                    r.line()
                }
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (norm(input), norm(output));
    if a == b {
        return None;
    }
    let only_in = |x: &[String], y: &[String]| -> Vec<String> {
        x.iter().filter(|l| !y.contains(l)).cloned().collect()
    };
    let (lost, gained) = (only_in(&a, &b), only_in(&b, &a));
    Some(format!(
        "only in the input ({}):\n  {}\nonly in the output ({}):\n  {}",
        lost.len(),
        lost.join("\n  "),
        gained.len(),
        gained.join("\n  ")
    ))
}

/// Asserts that two record lists are the same (see `record_diff`).
#[track_caller]
fn assert_same_records(what: &str, input: &[Record], output: &[Record], fold_case: bool) {
    if let Some(diff) = record_diff(input, output, fold_case) {
        panic!("{what}: the output's records differ from the input's\n{diff}");
    }
}

/// A zone file of the given records minus the given types (absolute names,
/// one record per line, as BIND printed them).
fn zone_without(records: &[Record], types: &[&str]) -> String {
    let mut z = String::new();
    for r in records
        .iter()
        .filter(|r| !types.contains(&r.rtype.as_str()))
    {
        z.push_str(&r.line());
        z.push('\n');
    }
    z
}

/// A project with one ECDSA P-256 CSK for example.
fn project_with_csk() -> Project {
    let p = Project::new();
    p.create_key("example", "csk", "ECDSAP256SHA256");
    p
}

/// Writes a zone into the project directory and has BIND check it
/// (`named-checkzone -k fail`: it must load without a warning).
fn write_checked_zone(p: &Project, name: &str, text: &str) -> std::path::PathBuf {
    let path = p.file(name);
    std::fs::write(&path, text).expect("write the zone");
    let f = path.to_str().expect("UTF-8 path");
    assert_tool_passes("named-checkzone", &["-k", "fail", "example.", f]);
    path
}

/// Signs `input` (in the project directory) into `output`.
fn sign(p: &Project, input: &str, output: &str, nsec3: bool) -> std::path::PathBuf {
    let mut args = vec!["sign", input, "-o", "example", "-f", output];
    if nsec3 {
        args.push("--nsec3");
    }
    p.run(&args).ok();
    p.file(output)
}

/// BIND's dnssec-verify (-z: the zone is signed by a CSK alone) and
/// dnsseal's own verifier.
fn bind_and_dnsseal_verify(p: &Project, signed: &Path) {
    let f = signed.to_str().expect("UTF-8 path");
    assert_tool_passes("dnssec-verify", &["-z", "-q", "-o", "example.", f]);
    p.run(&["verify", f, "-o", "example"]).ok();
}

fn ldns_verify(signed: &Path) {
    assert_tool_passes("ldns-verify-zone", &[signed.to_str().expect("UTF-8 path")]);
}

fn knot_verify(signed: &Path) {
    let f = signed.to_str().expect("UTF-8 path");
    assert_tool_passes("kzonecheck", &["-o", "example.", "-d", "on", f]);
}

#[test]
fn every_type_signs_and_every_record_reads_in_bind_as_the_input_does() {
    require_tools();
    let p = project_with_csk();
    let input = write_checked_zone(&p, "every-type.zone", EVERY_TYPE);
    let want = bind_records(&input);
    let types: std::collections::BTreeSet<&str> = want.iter().map(|r| r.rtype.as_str()).collect();
    assert!(types.len() >= 50, "only {} types: {types:?}", types.len());
    for (name, nsec3) in [("nsec", false), ("nsec3", true)] {
        let signed = sign(&p, "every-type.zone", &format!("{name}.signed"), nsec3);
        bind_and_dnsseal_verify(&p, &signed);
        let got = bind_records(&signed);
        assert!(
            got.iter().any(|r| r.rtype == "RRSIG"),
            "{name}: no signatures in the output"
        );
        assert_same_records(name, &want, &without_dnssec(&got), false);
    }
    // Incremental signing reads every type back from dnsseal's own output
    // and keeps what still verifies.
    let prev = p.file("nsec3.signed");
    let r = p.run(&[
        "sign",
        "every-type.zone",
        "-o",
        "example",
        "-f",
        "again.signed",
        "--nsec3",
        "--incremental",
        prev.to_str().expect("UTF-8 path"),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&r.ok()).expect("JSON report");
    let kept = report["signatures_retained"]
        .as_u64()
        .expect("signatures_retained");
    let made = report["signatures_generated"]
        .as_u64()
        .expect("signatures_generated");
    assert!(kept > 100 && made == 0, "retained {kept}, made {made}");
    let again = p.file("again.signed");
    bind_and_dnsseal_verify(&p, &again);
    assert_same_records(
        "incremental",
        &want,
        &without_dnssec(&bind_records(&again)),
        false,
    );
    assert_eq!(
        std::fs::read_to_string(&input).expect("read the input"),
        EVERY_TYPE,
        "the input was modified"
    );
}

#[test]
fn ldns_and_knot_check_every_type_they_read() {
    require_tools();
    let p = project_with_csk();
    std::fs::write(p.file("every-type.zone"), EVERY_TYPE).expect("write the zone");
    let all = bind_records(&p.file("every-type.zone"));
    for (tool, lags) in [("ldns", LDNS_LAGS), ("knot", KNOT_LAGS)] {
        let zone = format!("{tool}.zone");
        std::fs::write(p.file(&zone), zone_without(&all, lags)).expect("write the zone");
        for (name, nsec3) in [("nsec", false), ("nsec3", true)] {
            let signed = sign(&p, &zone, &format!("{tool}.{name}.signed"), nsec3);
            match tool {
                "ldns" => ldns_verify(&signed),
                _ => knot_verify(&signed),
            }
            p.run(&[
                "verify",
                signed.to_str().expect("UTF-8 path"),
                "-o",
                "example",
            ])
            .ok();
        }
    }
}

#[test]
fn mixed_case_rdata_names_sign_and_validate() {
    require_tools();
    let p = project_with_csk();
    let input = write_checked_zone(&p, "mixed.zone", MIXED_CASE);
    let want = bind_records(&input);
    for (name, nsec3) in [("nsec", false), ("nsec3", true)] {
        let signed = sign(&p, "mixed.zone", &format!("mixed.{name}.signed"), nsec3);
        bind_and_dnsseal_verify(&p, &signed);
        // The signer may write the §6.2 types' names in lower case; apart
        // from case, every record is the input's.
        assert_same_records(name, &want, &without_dnssec(&bind_records(&signed)), true);
    }
    for (tool, lags) in [("ldns", LDNS_LAGS), ("knot", KNOT_LAGS)] {
        let zone = format!("mixed-{tool}.zone");
        std::fs::write(p.file(&zone), zone_without(&want, lags)).expect("write the zone");
        let signed = sign(&p, &zone, &format!("mixed-{tool}.signed"), false);
        match tool {
            "ldns" => ldns_verify(&signed),
            _ => knot_verify(&signed),
        }
    }
}

/// The comparison itself, with BIND alone (no dnsseal): BIND's reading of
/// the zone equals itself, a changed TTL or RDATA shows, DNSSEC records are
/// left out, and case folding only forgives case.
#[test]
fn the_record_comparison_sees_every_change_but_dnssec_records() {
    common::require("named-compilezone", "bind9-utils");
    let dir = tempfile::tempdir().expect("temporary directory");
    let write = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).expect("write a zone");
        f
    };
    let base = bind_records(&write("base.zone", EVERY_TYPE));
    assert!(base.len() > 100, "{} records", base.len());
    assert_same_records(
        "itself",
        &base,
        &bind_records(&write("again.zone", EVERY_TYPE)),
        false,
    );

    let fails = |a: &[Record], b: &[Record], fold: bool| record_diff(a, b, fold).is_some();
    let loc = "52 N 4 E 0m ; minutes and seconds left out";
    assert!(EVERY_TYPE.contains(loc));
    for (from, to) in [
        (loc, "52 N 4 E 1m"),
        ("WKS     192.0.2.25 tcp smtp 587", "WKS 192.0.2.25 tcp smtp"),
        (
            "www             300 IN A 192.0.2.80",
            "www 301 IN A 192.0.2.80",
        ),
        ("AFSDB   2 afsdb-host", "AFSDB   3 afsdb-host"),
    ] {
        let changed = bind_records(&write("changed.zone", &EVERY_TYPE.replace(from, to)));
        assert!(fails(&base, &changed, false), "{from} -> {to} not seen");
        assert!(fails(&base, &changed, true), "{from} -> {to} not seen");
    }
    let upper = bind_records(&write(
        "upper.zone",
        &EVERY_TYPE.replace("AFSDB   1 afsdb-host", "AFSDB   1 AFSDB-Host"),
    ));
    assert!(fails(&base, &upper, false), "case change not seen");
    assert_same_records("case folded", &base, &upper, true);

    let mut with_dnssec = base.clone();
    for t in DNSSEC_TYPES {
        with_dnssec.push(parse_record(&format!("example. 300 IN {t} 1 2 3 AQID")));
    }
    assert!(fails(&base, &with_dnssec, false));
    assert_same_records(
        "DNSSEC dropped",
        &base,
        &without_dnssec(&with_dnssec),
        false,
    );

    // Knot and ldns lag lists only name types the zone has.
    let types: Vec<&str> = base.iter().map(|r| r.rtype.as_str()).collect();
    for t in LDNS_LAGS.iter().chain(KNOT_LAGS) {
        assert!(
            types.contains(t),
            "{t} is in a lag list but not in the zone"
        );
    }
    let reduced = zone_without(&base, KNOT_LAGS);
    assert!(!reduced.contains(" IN HIP ") && reduced.contains(" IN LOC "));
}
