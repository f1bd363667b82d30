//! The RDATA oracle: what BIND makes of the presentation-format cases in
//! `src/zone/testdata`, kept so that the codec's unit tests compare against
//! an independent reading rather than against dnsseal itself.
//!
//! - `rdata-cases.txt` (TYPE, RDATA) is loaded by BIND's
//!   `named-compilezone -F raw`, each case at its own owner `cN.example.`;
//!   the raw file is decoded here and must equal `rdata-bind.txt` (TYPE,
//!   RDATA, wire hex) line for line. With `DNSSEAL_UPDATE_ORACLE=1` the test
//!   rewrites `rdata-bind.txt` instead (and still checks everything else).
//! - `rdata-bad.txt` (TYPE, RDATA, what is wrong): BIND's `named-checkzone`
//!   must refuse every line, each alone in a zone, at the record's line.
//!
//! The test needs BIND's tools (bind9-utils), not dnsseal.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the test data lives.
fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/zone/testdata")
        .join(name)
}

/// The zone's apex records: every case zone starts with these four lines,
/// so the first case or bad record is on line 5.
const ZONE_HEAD: &str = "$ORIGIN example.\n$TTL 3600\n\
@\tIN\tSOA\tns.example.net. hostmaster.example.net. 1 7200 3600 1209600 300\n\
@\tIN\tNS\tns.example.net.\n";
const HEAD_LINES: usize = 4;

/// The type numbers of the mnemonics the cases use (IANA registry), so
/// that the type BIND stored can be checked against the case's.
const TYPES: &[(&str, u16)] = &[
    ("DSYNC", 66),
    ("HHIT", 67),
    ("BRID", 68),
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("WKS", 11),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP", 22),
    ("NSAP-PTR", 23),
    ("KEY", 25),
    ("PX", 26),
    ("GPOS", 27),
    ("AAAA", 28),
    ("LOC", 29),
    ("EID", 31),
    ("NIMLOC", 32),
    ("SRV", 33),
    ("ATMA", 34),
    ("NAPTR", 35),
    ("KX", 36),
    ("CERT", 37),
    ("A6", 38),
    ("DNAME", 39),
    ("SINK", 40),
    ("APL", 42),
    ("DS", 43),
    ("SSHFP", 44),
    ("IPSECKEY", 45),
    ("DHCID", 49),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("DOA", 259),
    ("AMTRELAY", 260),
    ("RESINFO", 261),
    ("WALLET", 262),
    ("TA", 32768),
    ("DLV", 32769),
];

fn type_code(mnemonic: &str) -> u16 {
    TYPES
        .iter()
        .find(|(m, _)| *m == mnemonic)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("type {mnemonic} is not in the test's TYPES table"))
}

/// The data lines of a test data file (no comments, no blank lines), each
/// with its 1-based line number, split at tabs into exactly `fields`
/// fields.
fn data_lines(name: &str, fields: usize) -> Vec<(usize, Vec<String>)> {
    let path = testdata(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
        .map(|(i, l)| {
            let f: Vec<String> = l.split('\t').map(String::from).collect();
            assert_eq!(
                f.len(),
                fields,
                "{name}:{}: want {fields} tab-separated fields: {l:?}",
                i + 1
            );
            (i + 1, f)
        })
        .collect()
}

/// One rdataset of a BIND raw-format zone file.
#[derive(Debug, PartialEq)]
struct RawRrset {
    class: u16,
    rtype: u16,
    covers: u16,
    ttl: u32,
    /// Owner name in uncompressed wire form.
    owner: Vec<u8>,
    rdatas: Vec<Vec<u8>>,
}

/// A cursor over the raw file that panics with the offset when the file
/// ends early.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.unwrap_or_else(|| {
            panic!(
                "raw file ends inside a field: {n} octets wanted at offset {} of {}",
                self.pos,
                self.data.len()
            )
        });
        let s = &self.data[self.pos..end];
        self.pos = end;
        s
    }
    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_be_bytes([b[0], b[1]])
    }
    fn u32(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// Decodes a zone in BIND's raw format (`named-compilezone -F raw`): a
/// header of format (2) and version, 24 octets for version 1 and 12 for
/// version 0; then rdatasets of total length (counting itself), class,
/// type, covers, TTL, RDATA count, owner (u16 length, wire name) and per
/// RDATA a u16 length and the RDATA, all big-endian.
fn decode_raw(data: &[u8]) -> Vec<RawRrset> {
    let mut c = Cursor { data, pos: 0 };
    let format = c.u32();
    assert_eq!(format, 2, "raw header: format {format}, want 2 (raw)");
    let version = c.u32();
    match version {
        0 => drop(c.take(4)),
        1 => drop(c.take(16)),
        v => panic!("raw header: version {v}, this decoder knows 0 and 1"),
    }
    let mut sets = Vec::new();
    while c.pos < data.len() {
        let start = c.pos;
        let total = c.u32() as usize;
        let class = c.u16();
        let rtype = c.u16();
        let covers = c.u16();
        let ttl = c.u32();
        let count = c.u32();
        let owner_len = c.u16() as usize;
        let owner = c.take(owner_len).to_vec();
        let rdatas = (0..count)
            .map(|_| {
                let len = c.u16() as usize;
                c.take(len).to_vec()
            })
            .collect();
        assert_eq!(
            c.pos - start,
            total,
            "rdataset at offset {start}: total length {total}, but its fields take {}",
            c.pos - start
        );
        sets.push(RawRrset {
            class,
            rtype,
            covers,
            ttl,
            owner,
            rdatas,
        });
    }
    sets
}

/// `cN.example.` in wire form → N; None for any other owner.
fn case_number(owner: &[u8]) -> Option<usize> {
    let len = *owner.first()? as usize;
    let label = owner.get(1..1 + len)?;
    let rest = owner.get(1 + len..)?;
    if rest != b"\x07example\x00" {
        return None;
    }
    let digits = label.strip_prefix(b"c")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The zone holding every case, case i (from 1) at `ci.example.`.
fn cases_zone(cases: &[(usize, Vec<String>)]) -> String {
    let mut z = String::from(ZONE_HEAD);
    for (i, (_, f)) in cases.iter().enumerate() {
        z.push_str(&format!("c{}\tIN\t{}\t{}\n", i + 1, f[0], f[1]));
    }
    z
}

fn run(tool: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const BIND_HEADER: &str = "\
# BIND 9's wire form of every case in rdata-cases.txt, in the same order:
# TYPE<TAB>RDATA<TAB>WIREHEX, the RDATA as named-compilezone -F raw stored
# it (uncompressed, lowercase hex, empty for empty RDATA). Generated, do
# not edit: DNSSEAL_UPDATE_ORACLE=1 cargo test --test rdata_oracle
# rewrites it from rdata-cases.txt; without the variable the test checks
# that BIND still produces exactly these lines.
";

#[test]
fn bind_reads_every_case_as_rdata_bind_txt_says() {
    common::require("named-compilezone", "bind9-utils");
    common::require("named-checkzone", "bind9-utils");
    let cases = data_lines("rdata-cases.txt", 2);
    assert!(cases.len() > 100, "only {} cases", cases.len());
    let dir = tempfile::tempdir().expect("temporary directory");
    let zone = dir.path().join("cases.zone");
    let raw = dir.path().join("cases.raw");
    std::fs::write(&zone, cases_zone(&cases)).expect("write the cases zone");
    let zone_s = zone.to_str().expect("UTF-8 path");
    let raw_s = raw.to_str().expect("UTF-8 path");

    // named-checkzone accepts the zone as an operator would run it.
    let out = run("named-checkzone", &["example.", zone_s]);
    assert!(
        out.status.success(),
        "named-checkzone rejects the cases:\n{}",
        text(&out)
    );
    // -i none: no post-load checks (they look up out-of-zone MX and SRV
    // targets); the RDATA is parsed all the same.
    let out = run(
        "named-compilezone",
        &["-i", "none", "-F", "raw", "-o", raw_s, "example.", zone_s],
    );
    assert!(
        out.status.success(),
        "named-compilezone rejects the cases:\n{}",
        text(&out)
    );
    let sets = decode_raw(&std::fs::read(&raw).expect("read the raw file"));

    let mut by_case: BTreeMap<usize, &RawRrset> = BTreeMap::new();
    for s in &sets {
        assert_eq!(s.class, 1, "class IN: {s:?}");
        assert_eq!(s.covers, 0, "no RRSIG in the zone: {s:?}");
        assert_eq!(s.ttl, 3600, "$TTL 3600: {s:?}");
        match case_number(&s.owner) {
            Some(n) => {
                assert!(by_case.insert(n, s).is_none(), "two rdatasets at c{n}");
            }
            None => assert_eq!(s.owner, b"\x07example\x00", "unexpected owner: {s:?}"),
        }
    }
    let mut lines = Vec::new();
    for (i, (line, f)) in cases.iter().enumerate() {
        let n = i + 1;
        let s = by_case
            .get(&n)
            .unwrap_or_else(|| panic!("rdata-cases.txt:{line}: nothing at c{n} in BIND's output"));
        assert_eq!(
            s.rtype,
            type_code(&f[0]),
            "rdata-cases.txt:{line}: BIND stored another type"
        );
        assert_eq!(s.rdatas.len(), 1, "rdata-cases.txt:{line}: one RR");
        lines.push(format!("{}\t{}\t{}", f[0], f[1], hex::encode(&s.rdatas[0])));
    }
    assert_eq!(by_case.len(), cases.len(), "rdatasets at unknown cases");

    let bind_file = testdata("rdata-bind.txt");
    if std::env::var("DNSSEAL_UPDATE_ORACLE").as_deref() == Ok("1") {
        let mut out = String::from(BIND_HEADER);
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        std::fs::write(&bind_file, out).expect("write rdata-bind.txt");
        eprintln!("rewrote {}", bind_file.display());
        return;
    }
    let stored = data_lines("rdata-bind.txt", 3);
    for ((line, f), want) in stored.iter().zip(&lines) {
        assert_eq!(
            &f.join("\t"),
            want,
            "rdata-bind.txt:{line} differs from what BIND makes of the case \
             (DNSSEAL_UPDATE_ORACLE=1 rewrites the file)"
        );
    }
    assert_eq!(
        stored.len(),
        lines.len(),
        "rdata-bind.txt has {} lines, rdata-cases.txt {} cases \
         (DNSSEAL_UPDATE_ORACLE=1 rewrites the file)",
        stored.len(),
        lines.len()
    );
}

#[test]
fn bind_refuses_every_line_of_rdata_bad_txt() {
    common::require("named-checkzone", "bind9-utils");
    let bad = data_lines("rdata-bad.txt", 3);
    assert!(bad.len() >= 25, "only {} bad cases", bad.len());
    let dir = tempfile::tempdir().expect("temporary directory");
    let zone = dir.path().join("bad.zone");
    let zone_s = zone.to_str().expect("UTF-8 path");
    let check = |record: &str| {
        std::fs::write(&zone, format!("{ZONE_HEAD}x\tIN\t{record}\n")).expect("write the zone");
        run("named-checkzone", &["-i", "none", "example.", zone_s])
    };
    // The same zone with a good record loads: a refusal is the record's.
    let out = check("TXT\t\"good\"");
    assert!(out.status.success(), "control zone:\n{}", text(&out));
    let at_line = format!("{zone_s}:{}:", HEAD_LINES + 1);
    for (line, f) in &bad {
        let out = check(&format!("{}\t{}", f[0], f[1]));
        let said = text(&out);
        assert!(
            !out.status.success(),
            "rdata-bad.txt:{line}: BIND accepts {} {} ({})",
            f[0],
            f[1],
            f[2]
        );
        assert!(
            said.contains(&at_line),
            "rdata-bad.txt:{line}: BIND's refusal does not name the record's line:\n{said}"
        );
    }
}

/// The decoder against a raw file built by hand (version 1 header, one
/// A RRset with two RDATAs), so that a decoder bug cannot hide behind
/// rdata-bind.txt having been generated by the same decoder.
#[test]
fn raw_decoder_reads_a_hand_made_file() {
    let mut f: Vec<u8> = Vec::new();
    for v in [2u32, 1, 0x6000_0000, 0, 7, 0] {
        f.extend(v.to_be_bytes());
    }
    let owner = b"\x02c7\x07example\x00";
    let mut set: Vec<u8> = Vec::new();
    set.extend(1u16.to_be_bytes()); // class IN
    set.extend(1u16.to_be_bytes()); // type A
    set.extend(0u16.to_be_bytes()); // covers
    set.extend(300u32.to_be_bytes());
    set.extend(2u32.to_be_bytes());
    set.extend((owner.len() as u16).to_be_bytes());
    set.extend(owner);
    for a in [[192u8, 0, 2, 1], [192, 0, 2, 2]] {
        set.extend(4u16.to_be_bytes());
        set.extend(a);
    }
    f.extend(((set.len() + 4) as u32).to_be_bytes());
    f.extend(&set);
    let sets = decode_raw(&f);
    assert_eq!(
        sets,
        vec![RawRrset {
            class: 1,
            rtype: 1,
            covers: 0,
            ttl: 300,
            owner: owner.to_vec(),
            rdatas: vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2]],
        }]
    );
    assert_eq!(case_number(&sets[0].owner), Some(7));
    assert_eq!(case_number(b"\x07example\x00"), None);
    assert_eq!(case_number(b"\x02c7\x03net\x00"), None);

    // A version 0 header is 12 octets.
    let mut v0: Vec<u8> = Vec::new();
    for v in [2u32, 0, 0] {
        v0.extend(v.to_be_bytes());
    }
    v0.extend(&f[24..]);
    assert_eq!(decode_raw(&v0), sets);
}

/// Spot checks of rdata-bind.txt against wire forms worked out by hand from
/// the RFCs, for a few of the types the codec adds.
#[test]
fn rdata_bind_txt_matches_hand_computed_wire_forms() {
    let stored = data_lines("rdata-bind.txt", 3);
    let wire = |ty: &str, rdata: &str| -> String {
        stored
            .iter()
            .find(|(_, f)| f[0] == ty && f[1] == rdata)
            .map(|(_, f)| f[2].clone())
            .unwrap_or_else(|| panic!("no {ty} {rdata:?} in rdata-bind.txt"))
    };
    assert_eq!(wire("A", "192.0.2.1"), "c0000201");
    // RFC 3123: family 1, prefix 21, 3 address octets; then negated /28.
    assert_eq!(
        wire("APL", "1:192.168.32.0/21 !1:192.168.38.0/28"),
        "00011503c0a8200001 1c83c0a826".replace(' ', "")
    );
    assert_eq!(wire("APL", ""), "");
    assert_eq!(wire("EUI48", "00-00-5e-00-53-2a"), "00005e00532a");
    assert_eq!(wire("L32", "10 10.1.2.0"), "000a0a010200");
    // AFSDB keeps the case as written; only canonical form lowercases.
    assert_eq!(
        wire("AFSDB", "2 AFS.Example.Net."),
        format!("0002{}", hex::encode(b"\x03AFS\x07Example\x03Net\x00"))
    );
    // RFC 1876: version 0, size 1e1 cm... here 0m (0x00), hp 10000m
    // (1e6 cm = 0x16), vp 10m (1e3 cm = 0x13); latitude 2^31 + ms.
    let lat: u32 = (1u32 << 31) + ((52 * 3600 + 22 * 60 + 23) * 1000);
    let lon: u32 = (1u32 << 31) + ((4 * 3600 + 53 * 60 + 32) * 1000);
    let alt: u32 = 10_000_000 - 200;
    assert_eq!(
        wire(
            "LOC",
            "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000.00m 10.00m"
        ),
        format!("00001613{lat:08x}{lon:08x}{alt:08x}")
    );
    // WKS: address, protocol 6, bitmap with bits 25 and 80.
    let mut bitmap = [0u8; 11];
    for port in [25usize, 80] {
        bitmap[port / 8] |= 0x80 >> (port % 8);
    }
    assert_eq!(
        wire("WKS", "192.0.2.1 6 25 80"),
        format!("c000020106{}", hex::encode(bitmap))
    );
}
