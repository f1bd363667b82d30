//! Tests on files made by Knot DNS 3.2.6 (testdata/README.md).

use super::*;
use crate::zone::algorithm::Algorithm;

const KSR_TEXT: &str = include_str!("testdata/example.com.ksr");
const SKR_TEXT: &str = include_str!("testdata/example.com.skr");

fn zone() -> ZoneName {
    "example.com.".parse().expect("zone name")
}

fn ksr() -> Request {
    parse_request_text(KSR_TEXT, "example.com.ksr", &zone()).expect("Knot's KSR reads")
}

fn skr(text: &str) -> Response {
    parse_response_text(text, "test.skr", &zone()).expect("SKR reads")
}

/// The first KSR period's time: 2026-12-04T03:55:35Z.
const T0: i64 = 1_796_356_535;

fn at(t: i64) -> Timestamp {
    Timestamp::from_unix(t)
}

fn messages(r: Result<(), Vec<Refusal>>) -> Vec<String> {
    r.expect_err("refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn reads_knots_request() {
    let r = ksr();
    let times: Vec<i64> = r.periods.iter().map(|p| p.time.unix()).collect();
    assert_eq!(
        times,
        [T0, 1798948534, 1798952134, 1798955734, 1801544134, 1801547734, 1801551334, 1804132535]
    );
    let tags: Vec<Vec<u16>> = r
        .periods
        .iter()
        .map(|p| p.dnskeys.iter().map(Dnskey::key_tag).collect())
        .collect();
    assert_eq!(tags[0], [11362]);
    assert_eq!(tags[1].len(), 2);
    assert!(r.periods.iter().all(|p| p.ttl == 3600));
    assert!(r
        .periods
        .iter()
        .flat_map(|p| &p.dnskeys)
        .all(|k| k.flags == 256 && k.algorithm == 13));
}

#[test]
fn reads_knots_response() {
    let r = skr(SKR_TEXT);
    assert_eq!(r.periods.len(), 20);
    assert_eq!(r.periods[0].time.unix(), T0);
    // Knot adds a refresh period every 7 days (rrsig-refresh).
    assert_eq!(r.periods[1].time.unix(), T0 + 7 * 86400);
    let p = &r.periods[0];
    let tags: Vec<u16> = p.dnskeys.iter().map(Dnskey::key_tag).collect();
    assert_eq!(tags, [11362, 6947]);
    assert_eq!((p.dnskey_ttl, p.cds_ttl), (3600, 0));
    assert_eq!((p.cds.len(), p.cdnskey.len(), p.rrsigs.len()), (1, 1, 3));
}

#[test]
fn round_trips() {
    let q = ksr();
    let text = write_request(&q, at(T0));
    assert!(text.starts_with(";; KeySigningRequest 1.0 1796356535 (2026-12-04T03:55:35Z) =========\nexample.com.        \t3600 DNSKEY 256 3 13 "));
    assert!(text.ends_with(&format!(
        ";; KeySigningRequest 1.0 generated at 2026-12-04T03:55:35Z by dnsseal {}\n",
        env!("CARGO_PKG_VERSION")
    )));
    assert_eq!(
        parse_request_text(&text, "w.ksr", &zone()).expect("reads"),
        q
    );
    let r = skr(SKR_TEXT);
    let text = write_response(&r, at(T0));
    assert_eq!(skr(&text), r);
    check_response(&skr(&text), &q, &[]).expect("written SKR still verifies");
}

#[test]
fn other_syntax_reads_the_same() {
    let r = skr(SKR_TEXT);
    for f in [
        include_str!("testdata/tamper/tabs_in.skr"),
        include_str!("testdata/tamper/upper.skr"),
    ] {
        let other = skr(f);
        assert_eq!(other.periods.len(), r.periods.len());
        assert_eq!(other.periods[0], r.periods[0]);
    }
    // BIND 9.20's header time form.
    let bind = KSR_TEXT.replace(
        "1.0 1796356535 (2026-12-04T03:55:35Z) =========",
        "1.0 20261204035535 (Fri Dec  4 03:55:35 2026)",
    );
    assert_eq!(
        parse_request_text(&bind, "b.ksr", &zone()).expect("reads"),
        ksr()
    );
}

#[test]
fn knots_response_answers_its_request() {
    check_response(&skr(SKR_TEXT), &ksr(), &[]).expect("SKR verifies");
    let ksk = skr(SKR_TEXT).periods[0].dnskeys[1].clone();
    assert_eq!(ksk.key_tag(), 6947);
    check_response(&skr(SKR_TEXT), &ksr(), &[ksk]).expect("pinned KSK");
    let other = ksr().periods[0].dnskeys[0].clone();
    let m = messages(check_response(&skr(SKR_TEXT), &ksr(), &[other]));
    assert!(m[0].contains("key 6947: KSK is not pinned"), "{m:?}");
}

#[test]
fn tampered_responses_refused() {
    let q = ksr();
    let sig = skr(include_str!("testdata/tamper/sigbyte.skr"));
    let m = messages(check_response(&sig, &q, &[]));
    assert!(
        m.iter().any(|m| m.starts_with("period 1796356535 ")
            && m.contains("key 6947: RRSIG DNSKEY: signature does not verify")),
        "{m:?}"
    );
    let foreign = skr(include_str!("testdata/tamper/foreign.skr"));
    let m = messages(check_response(&foreign, &q, &[]));
    assert!(m.iter().any(|m| m.starts_with("period 1796356535 ") && m.contains("DNSKEY not in the request")), "{m:?}");
    assert!(
        m.iter().any(|m| m.contains("signature does not verify")),
        "{m:?}"
    );
    // Knot's period 2 is a refresh period: without it period 1 lasts
    // until 2026-12-18T03:55:35Z, when its signatures expire. Knot takes
    // that; caches would hold them expired for the TTL.
    let refresh_gone = skr(include_str!("testdata/tamper/noperiod2.skr"));
    assert_eq!(refresh_gone.periods.len(), 19);
    let m = messages(check_response(&refresh_gone, &q, &[]));
    assert!(
        m.iter().all(|m| m.starts_with("period 1796356535 ")
            && m.contains(
                "key 6947: RRSIG DNSKEY expires at 1797566135, before the next period plus the TTL (1797569735)"
            )),
        "{m:?}"
    );
    assert_eq!(m.len(), 1, "CDS and CDNSKEY have TTL 0: {m:?}");
    // A refresh period whose predecessor's signatures outlast its end
    // may go.
    let mut r = skr(SKR_TEXT);
    r.periods.retain(|p| p.time.unix() != 1798775735);
    check_response(&r, &q, &[]).expect("a refresh period may go");
    // A CDS for a key that is not the KSK.
    let mut r = skr(SKR_TEXT);
    r.periods[3].cds[0][4] ^= 1;
    let m = messages(check_response(&r, &q, &[]));
    assert!(
        m.iter()
            .any(|m| m.starts_with("period 1798170935 ")
                && m.contains("key 6947: CDS is not a digest")),
        "{m:?}"
    );
    // A requested period may not.
    let mut r = skr(SKR_TEXT);
    r.periods.retain(|p| p.time.unix() != 1798948534);
    let m = messages(check_response(&r, &q, &[]));
    assert!(
        m.iter()
            .any(|m| m.starts_with("period 1798948534 ") && m.contains("requested period missing")),
        "{m:?}"
    );
    // A period whose signatures are not valid at its time.
    let mut r = skr(SKR_TEXT);
    r.periods[1].time = r.periods[0].time;
    r.periods[2].rrsigs = r.periods[0].rrsigs.clone();
    let m = messages(check_response(&r, &q, &[]));
    assert!(
        m.iter()
            .any(|m| m.contains("not after the previous period")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|m| m.contains("not valid at the period's time")),
        "{m:?}"
    );
}

#[test]
fn unreadable_files_refused() {
    let e = parse_response_text(
        include_str!("testdata/tamper/nofooter.skr"),
        "n.skr",
        &zone(),
    )
    .expect_err("no footer");
    assert!(e.message.contains("no footer"), "{e}");
    let e = parse_request_text(include_str!("testdata/tamper/nottl.ksr"), "t.ksr", &zone())
        .expect_err("no TTL");
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.to_string()
            .starts_with("t.ksr:2: example.com. DNSKEY: no TTL"),
        "{e}"
    );
    // One record without TTL after others with one.
    let text = KSR_TEXT.replacen(
        "example.com.        \t3600 DNSKEY 256 3 13 (\n\t\t\t\tH",
        "example.com.        \tDNSKEY 256 3 13 (\n\t\t\t\tH",
        1,
    );
    assert_ne!(text, KSR_TEXT);
    let e = parse_request_text(&text, "t.ksr", &zone()).expect_err("no TTL");
    assert!(e.message.contains("no TTL"), "{e}");
    let text = KSR_TEXT.replacen("example.com. ", "www.example.com.", 1);
    let e = parse_request_text(&text, "o.ksr", &zone()).expect_err("owner");
    assert_eq!(e.line, 2);
    assert!(
        e.message
            .contains("www.example.com. DNSKEY: owner is not the zone"),
        "{e}"
    );
    let e = parse_request_text(
        &SKR_TEXT.replace("SignedKeyResponse", "KeySigningRequest"),
        "x.ksr",
        &zone(),
    )
    .expect_err("types");
    assert!(
        e.message
            .contains("CDNSKEY: a KSR holds DNSKEY records only"),
        "{e}"
    );
    let e = parse_request_text(&KSR_TEXT.replacen(";;", ";", 1), "s.ksr", &zone())
        .expect_err("no header");
    assert!(e.message.contains("before the first period header"), "{e}");
    // An $INCLUDE is refused at its line before anything is read through
    // it: the file it names (here a secret) never reaches a message.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "sekrit-token A 192.0.2.1\n").unwrap();
    let mut lines: Vec<&str> = KSR_TEXT.lines().collect();
    let include = format!("$include {}", secret.display());
    lines.insert(1, &include);
    let e = parse_request_text(&lines.join("\n"), "i.ksr", &zone()).expect_err("include");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("$INCLUDE is not allowed"), "{e}");
    assert!(!e.to_string().contains("sekrit"), "{e}");
}

#[test]
fn requests_checked_against_policy() {
    let policy = OfflinePolicy::default();
    let now = at(T0 - 600);
    check_request(&ksr(), &policy, now).expect("Knot's KSR is fine");
    // Knot's sign-ksr signs a KSR holding the KSK itself; we do not.
    let with_ksk = parse_request_text(
        include_str!("testdata/tamper/ksk_in_ksr.ksr"),
        "k.ksr",
        &zone(),
    )
    .expect("reads");
    let m = messages(check_request(&with_ksk, &policy, now));
    assert!(m.iter().any(|m| m.contains("key 6947: flags 257")), "{m:?}");
    let mut gap = ksr();
    gap.periods.drain(4..7);
    let m = messages(check_request(&gap, &policy, now));
    assert_eq!(m.len(), 1);
    assert!(
        m[0].starts_with("period 1804132535 ") && m[0].contains("5176801 s after"),
        "{m:?}"
    );
    let short = OfflinePolicy {
        horizon: 60 * 86400,
        ..policy.clone()
    };
    let m = messages(check_request(&ksr(), &short, now));
    assert!(
        m[0].starts_with("period 1804132535 ") && m[0].contains("beyond the horizon"),
        "{m:?}"
    );
    let m = messages(check_request(&ksr(), &policy, at(T0 + 2 * 86400)));
    assert!(
        m[0].starts_with("period 1796356535 ") && m[0].contains("in the past"),
        "{m:?}"
    );
    let mut order = ksr();
    order.periods.swap(1, 2);
    assert!(check_request(&order, &policy, now).is_err());
    let mut dup = ksr();
    let k = dup.periods[0].dnskeys[0].clone();
    dup.periods[0].dnskeys.push(k);
    let m = messages(check_request(&dup, &policy, now));
    assert!(m[0].contains("key 11362: listed twice"), "{m:?}");
}

/// A 1024-bit RSA ZSK (RFC 5702 example-sized) against a 2048 minimum.
#[test]
fn small_rsa_refused() {
    let modulus = [[0xc1u8].as_slice(), &[0x55; 127]].concat();
    let key = crate::zone::dnskey::rsa_public_key(&[1, 0, 1], &modulus).expect("key");
    let mut q = ksr();
    q.periods[0].dnskeys = vec![Dnskey::new(Algorithm::RsaSha256, false, key)];
    let tag = q.periods[0].dnskeys[0].key_tag();
    let m = messages(check_request(&q, &OfflinePolicy::default(), at(T0)));
    assert_eq!(m, [format!("period 1796356535 (2026-12-04T03:55:35Z), key {tag}: RSA modulus of 1024 bits outside 2048..4096")]);
    let only_ec = OfflinePolicy {
        algorithms: vec![Algorithm::Ed25519],
        ..OfflinePolicy::default()
    };
    assert_eq!(messages(check_request(&ksr(), &only_ec, at(T0))).len(), 12);
}

#[test]
fn the_spoken_digest_is_the_files_sha256_in_groups() {
    let d = spoken_digest(b"abc");
    assert_eq!(
        d,
        "ba78 16bf 8f01 cfea 4141 40de 5dae 2223 b003 61a3 9617 7a9c b410 ff61 f200 15ad"
    );
}
