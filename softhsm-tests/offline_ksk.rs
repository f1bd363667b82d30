//! Offline KSK with two SoftHSM tokens: the online box holds ZSKs only,
//! the offline box the KSK. KSR → SKR → import; the online box signs the
//! zone with no KSK in its token, the zone passes dnsseal's verifier and
//! the independent ones, and the DS printed offline matches the KSK that
//! signed the DNSKEY RRset. Tampered responses and requests that break
//! the offline policy are refused with the reason, and nothing is written.

mod common;

use common::{field, Project};

const ZONE: &str = "example.com";
const ONLINE_POLICY: &str = "offline-ksk = true\nzsk-lifetime = \"30d\"\n";
const OFFLINE_POLICY: &str = "zsk-lifetime = \"30d\"\n";
/// Exit code of a refusal.
const REFUSED: i32 = 10;

fn zone_text() -> &'static str {
    "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\nmail MX 10 www\n"
}

/// A project with `policy` set for the zone.
fn project(policy: &str) -> Project {
    let p = Project::new();
    std::fs::write(p.file("policy.toml"), policy).unwrap();
    p.run(&["policy", "set", ZONE, "policy.toml"]).ok();
    p
}

/// The online box: its first ZSK and a KSR for 90 days.
fn online() -> Project {
    let on = project(ONLINE_POLICY);
    on.run(&["policy", "run", ZONE]).ok();
    on.run(&[
        "ksr",
        "create",
        ZONE,
        "--to",
        "now+7776000",
        "-o",
        "example.com.ksr",
    ])
    .ok();
    on
}

/// The offline box: a KSK, its DNSKEY and DS written beside it.
fn offline() -> Project {
    let off = project(OFFLINE_POLICY);
    off.create_key(ZONE, "ksk", "ECDSAP256SHA256");
    let dnskey = off.run(&["keys", "dnskey", ZONE]).ok();
    std::fs::write(off.file("ksk.dnskey"), dnskey).unwrap();
    let ds = off.run(&["keys", "ds", ZONE]).ok();
    std::fs::write(off.file("ds.txt"), ds).unwrap();
    off
}

/// The time `secs` from now, as `--now` takes it.
fn from_now(secs: i64) -> String {
    let now = dnsseal::clock::Timestamp::system_now().unix();
    dnsseal::clock::Timestamp::from_unix(now + secs).compact()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `ksr sign` of the online box's request on `off`, into `skr`.
fn sign_request(on: &Project, off: &Project, skr: &str) -> common::Run {
    let ksr = on.file("example.com.ksr");
    off.run(&[
        "ksr",
        "sign",
        path(&ksr),
        "-o",
        skr,
        "--zone",
        ZONE,
        "--yes",
    ])
}

/// The key tags of the RRSIGs over `rtype` in a signed zone.
fn signers(signed: &str, rtype: &str) -> Vec<String> {
    let mut tags: Vec<String> = signed
        .lines()
        .filter(|l| l.contains(&format!("RRSIG\t{rtype} ")))
        .filter_map(|l| l.split_whitespace().nth(10).map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[test]
fn the_online_box_signs_with_no_ksk_in_its_token() {
    common::require_verifiers();
    let (on, off) = (online(), offline());
    sign_request(&on, &off, "example.com.skr").ok();
    let skr = off.file("example.com.skr");
    // The first import must pin the KSK.
    let why = on.run(&["skr", "import", path(&skr)]).fails(REFUSED);
    assert!(why.contains("--ksk"), "{why}");
    let ksk = off.file("ksk.dnskey");
    on.run(&["skr", "import", path(&skr), "--ksk", path(&ksk)])
        .ok();

    // No KSK in the online box's keystore or token.
    let keys = on.keys();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| field(k, "role") == "zsk"), "{keys:?}");
    std::fs::write(on.file("example.com.zone"), zone_text()).unwrap();
    on.run(&["sign", "example.com.zone", "-o", ZONE]).ok();
    let signed = on.file("example.com.zone.signed");
    let ds = off.file("ds.txt");
    on.run(&["verify", path(&signed), "-o", ZONE, "--ds", path(&ds)])
        .ok();
    common::independent_verifiers(&signed, ZONE);
    // The DS printed offline is that of the key that signed the DNSKEY RRset.
    let text = std::fs::read_to_string(&signed).unwrap();
    let ds_text = std::fs::read_to_string(&ds).unwrap();
    let ds_tag = ds_text
        .split_whitespace()
        .skip_while(|w| *w != "DS")
        .nth(1)
        .expect("DS key tag");
    assert_eq!(signers(&text, "DNSKEY"), vec![ds_tag.to_string()]);
    let zsk = field(&keys[0], "key_tag").to_string();
    // The audit log ties the request, the response and the signing.
    let log = on.audit_lines().join("\n");
    for what in [
        "key signing request from",
        "signed key response",
        "DNSKEY RRset of the SKR period from",
    ] {
        assert!(log.contains(what), "{what} not in\n{log}");
    }
    assert_eq!(signers(&text, "A"), vec![zsk.clone()]);

    // A month on, policy run has rolled the ZSK along the plan; the zone
    // signs with the new one and publishes the SKR period of that time.
    let later = &from_now(2_700_000);
    let moved = on.run(&["--now", later, "policy", "run", ZONE]).ok();
    assert!(moved.contains("ZSK schedule"), "{moved}");
    on.run(&[
        "--now",
        later,
        "sign",
        "example.com.zone",
        "-o",
        ZONE,
        "-f",
        "later.signed",
    ])
    .ok();
    let text = std::fs::read_to_string(on.file("later.signed")).unwrap();
    let now_signing = signers(&text, "A");
    assert_eq!(now_signing.len(), 1);
    assert_ne!(now_signing[0], zsk, "the ZSK rolled");
    let later_signed = on.file("later.signed");
    on.run(&["--now", later, "verify", path(&later_signed), "-o", ZONE])
        .ok();

    // Past the SKR's end, sign refuses and writes nothing.
    let why = on
        .run(&[
            "--now",
            &from_now(9_000_000),
            "sign",
            "example.com.zone",
            "-o",
            ZONE,
            "-f",
            "late.signed",
        ])
        .fails(REFUSED);
    assert!(why.contains("ran out"), "{why}");
    assert!(!on.file("late.signed").exists());
    // Until policy run moves the ZSKs along, a signing at a time whose
    // SKR period no longer publishes the active ZSK is refused.
    let near_end = &from_now(8_200_000);
    let why = on
        .run(&[
            "--now",
            near_end,
            "sign",
            "example.com.zone",
            "-o",
            ZONE,
            "-f",
            "w.signed",
        ])
        .fails(REFUSED);
    assert!(why.contains("policy run"), "{why}");
    // Then, within the margin, it signs and warns.
    on.run(&["--now", near_end, "policy", "run", ZONE]).ok();
    let warned = on.run(&[
        "--now",
        near_end,
        "sign",
        "example.com.zone",
        "-o",
        ZONE,
        "-f",
        "w.signed",
    ]);
    assert!(warned.stderr.contains("runs out"), "{}", warned.stderr);
    assert_eq!(warned.code, 0, "{}", warned.stderr);
}

#[test]
fn tampered_responses_are_refused_and_nothing_is_stored() {
    let (on, off) = (online(), offline());
    sign_request(&on, &off, "example.com.skr").ok();
    let good = std::fs::read_to_string(off.file("example.com.skr")).unwrap();
    let ksk = off.file("ksk.dnskey");

    // One signature character changed.
    let at = good
        .find(" RRSIG DNSKEY ")
        .or_else(|| good.find("RRSIG\tDNSKEY"))
        .expect("RRSIG");
    let end = at + good[at..].find('\n').expect("line end");
    let mut bad = good.clone();
    let c = &good[end - 6..end - 5];
    bad.replace_range(end - 6..end - 5, if c == "A" { "B" } else { "A" });
    std::fs::write(on.file("bad.skr"), &bad).unwrap();
    let why = on
        .run(&[
            "skr",
            "import",
            "bad.skr",
            "--zone",
            ZONE,
            "--ksk",
            path(&ksk),
        ])
        .fails(REFUSED);
    assert!(
        why.contains("does not verify") || why.contains("signature"),
        "{why}"
    );
    assert!(why.contains("nothing written"), "{why}");

    // A response by another KSK than the pinned one.
    let other = offline();
    sign_request(&on, &other, "example.com.skr").ok();
    let foreign = other.file("example.com.skr");
    let why = on
        .run(&[
            "skr",
            "import",
            path(&foreign),
            "--zone",
            ZONE,
            "--ksk",
            path(&ksk),
        ])
        .fails(REFUSED);
    assert!(why.contains("not pinned"), "{why}");

    // Nothing was stored: sign finds no SKR.
    std::fs::write(on.file("example.com.zone"), zone_text()).unwrap();
    let why = on
        .run(&["sign", "example.com.zone", "-o", ZONE])
        .fails(REFUSED);
    assert!(why.contains("no SKR is imported"), "{why}");
    assert!(!on.file("example.com.zone.signed").exists());
    // The untouched response imports.
    let skr = off.file("example.com.skr");
    on.run(&["skr", "import", path(&skr), "--ksk", path(&ksk)])
        .ok();
    on.run(&["sign", "example.com.zone", "-o", ZONE]).ok();
}

/// `ksr sign` of `text` on `off`: refused, nothing written, the reason
/// returned.
fn refused_request(off: &Project, text: &str) -> String {
    std::fs::write(off.file("edited.ksr"), text).unwrap();
    let why = off
        .run(&[
            "ksr",
            "sign",
            "edited.ksr",
            "-o",
            "edited.skr",
            "--zone",
            ZONE,
            "--yes",
        ])
        .fails(REFUSED);
    assert!(
        !off.file("edited.skr").exists(),
        "a refused request wrote a response"
    );
    assert!(why.contains("nothing written"), "{why}");
    why
}

#[test]
fn requests_that_break_the_offline_policy_are_refused_and_nothing_written() {
    let (on, off) = (online(), offline());
    let ksr = std::fs::read_to_string(on.file("example.com.ksr")).unwrap();
    let first_key = ksr
        .lines()
        .find(|l| l.contains("DNSKEY"))
        .expect("a DNSKEY line")
        .to_string();

    // A KSK-flagged key smuggled into the first period.
    let smuggled = ksr.replacen(
        &first_key,
        &format!("{first_key}\n{}", first_key.replace(" 256 3 ", " 257 3 ")),
        1,
    );
    assert_ne!(smuggled, ksr);
    let why = refused_request(&off, &smuggled);
    assert!(why.contains("flags 257"), "{why}");

    // A gap: the periods between the first and the fourth taken out
    // (59 days between them; the offline policy allows 30).
    let headers: Vec<usize> = ksr
        .match_indices(";; KeySigningRequest")
        .map(|(i, _)| i)
        .collect();
    assert!(headers.len() >= 4, "{ksr}");
    let gap = format!("{}{}", &ksr[..headers[1]], &ksr[headers[3]..]);
    let why = refused_request(&off, &gap);
    assert!(
        why.contains("after the previous period, more than"),
        "{why}"
    );

    // A DNSKEY TTL beyond the offline policy's (1 hour).
    let long_ttl = ksr
        .replace("3600 DNSKEY", "86400 DNSKEY")
        .replace("3600\tDNSKEY", "86400\tDNSKEY");
    assert_ne!(long_ttl, ksr);
    let why = refused_request(&off, &long_ttl);
    assert!(why.contains("TTL 86400 outside"), "{why}");

    // Periods beyond the offline box's horizon (400 days).
    let far = project(ONLINE_POLICY);
    far.run(&["policy", "run", ZONE]).ok();
    far.run(&[
        "ksr",
        "create",
        ZONE,
        "--from",
        "now+40000000",
        "--to",
        "now+40100000",
        "-o",
        "far.ksr",
    ])
    .ok();
    let why = refused_request(&off, &std::fs::read_to_string(far.file("far.ksr")).unwrap());
    assert!(why.contains("beyond the horizon"), "{why}");

    // The failed attempts are in the offline box's audit log.
    let failed = off
        .audit_lines()
        .iter()
        .filter(|l| l.contains("ksr sign") && l.contains("\"outcome\":\"failed\""))
        .count();
    assert_eq!(failed, 4, "{:?}", off.audit_lines());
}
