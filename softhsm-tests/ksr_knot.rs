//! KSR and SKR files written by dnsseal's `ksr` module, read by Knot DNS's
//! keymgr: a fresh offline-KSK exchange is made with Knot
//! (src/ksr/testdata/knot-interop.sh), dnsseal reads both files and
//! writes them again, and Knot signs dnsseal's KSR and validates and
//! imports dnsseal's SKR. No token is involved.
//!
//! The two exchanges with real tokens: Knot's request signed by a
//! dnsseal offline box with its KSK in SoftHSMv2 and imported by Knot,
//! and dnsseal's request (ZSKs in SoftHSMv2) signed by Knot's offline KSK,
//! imported by dnsseal and published by `dnsseal sign`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use dnsseal::ksr::{
    check_response, parse_request, parse_response, parse_response_text, write_request,
    write_response,
};
use dnsseal::zone::ZoneName;

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn keymgr(dir: &Path, side: &str, args: &[&str]) -> Output {
    let conf = dir.join(side).join("knot.conf");
    let conf = conf.to_str().expect("UTF-8 path");
    run("keymgr", &[&["-c", conf, "example.com."], args].concat())
}

#[test]
fn knot_reads_what_dnsseal_writes() {
    common::require("keymgr", "knot");
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("run");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ksr/testdata/knot-interop.sh");
    let out = run(
        "sh",
        &[script.to_str().expect("path"), d.to_str().expect("path")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zone: ZoneName = "example.com.".parse().expect("zone");
    let now = dnsseal::clock::Timestamp::system_now();

    // Knot signs dnsseal's KSR; the result answers the request.
    let request = parse_request(&d.join("example.com.ksr"), &zone).expect("Knot's KSR");
    let ksr = d.join("dnsseal.ksr");
    std::fs::write(&ksr, write_request(&request, now)).expect("write");
    let out = keymgr(&d, "offline", &["sign-ksr", ksr.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "sign-ksr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = parse_response_text(&String::from_utf8_lossy(&out.stdout), "sign-ksr", &zone)
        .expect("Knot's SKR of dnsseal's KSR");
    check_response(&signed, &request, &[]).expect("answers the request");

    // Knot validates and imports dnsseal's SKR, and sees a broken one.
    let response = parse_response(&d.join("example.com.skr"), &zone).expect("Knot's SKR");
    let text = write_response(&response, now);
    let skr = d.join("dnsseal.skr");
    std::fs::write(&skr, &text).expect("write");
    let out = keymgr(&d, "online", &["validate-skr", skr.to_str().expect("path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("invalid"),
        "validate-skr: {stderr}"
    );
    let bad = d.join("bad.skr");
    let at = text.find(" RRSIG DNSKEY ").expect("RRSIG");
    let end = at + text[at..].find('\n').expect("line end");
    let flip = if &text[end - 5..end - 4] == "A" {
        "B"
    } else {
        "A"
    };
    std::fs::write(
        &bad,
        format!("{}{flip}{}", &text[..end - 5], &text[end - 4..]),
    )
    .expect("write");
    let out = keymgr(&d, "online", &["validate-skr", bad.to_str().expect("path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid SignedKeyResponse"),
        "broken SKR passed: {stderr}"
    );
    let out = keymgr(&d, "online", &["import-skr", skr.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "import-skr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dnsseal ksr show` on Knot's own request: every period with its keys,
/// and the file's SHA-256 in groups of four; a broken request is refused
/// with its file and line. No token, no configuration.
#[test]
fn ksr_show_prints_every_period_and_the_files_digest() {
    use sha2::Digest as _;
    let ksr = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ksr/testdata/example.com.ksr");
    let empty = tempfile::tempdir().expect("tempdir");
    let show = |args: &[&str]| {
        Command::new(common::dnsseal_bin())
            .args(args)
            .current_dir(empty.path())
            .env_remove("DNSSEAL_CONFIG")
            .output()
            .expect("run dnsseal")
    };
    let out = show(&["ksr", "show", ksr.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("for example.com. "), "{text}");
    assert!(text.contains("8 period(s)"), "{text}");
    assert!(
        text.contains("period   1  from 2026-12-04T03:55:35Z (1796356535)  DNSKEY TTL 3600"),
        "{text}"
    );
    assert!(
        text.contains("key tag 56871  ECDSAP256SHA256 256 bits  flags 256"),
        "{text}"
    );
    let hex = hex::encode(sha2::Sha256::digest(std::fs::read(&ksr).expect("ksr")));
    let spoken: Vec<&str> = (0..16).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    assert!(text.contains(&spoken.join(" ")), "{text}");

    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ksr/testdata/tamper/nottl.ksr");
    let out = show(&[
        "ksr",
        "show",
        bad.to_str().expect("path"),
        "-o",
        "example.com",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nottl.ksr:2: example.com. DNSKEY: no TTL"),
        "{err}"
    );
}

/// The small zone both exchanges sign.
const ZONE: &str = "$ORIGIN example.com.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 3600 1209600 3600
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
";

/// A Knot side in `d/side` as knot-interop.sh makes it (offline-ksk and
/// manual on both sides, ECDSAP256SHA256, DNSKEY TTL 3600, ZSK lifetime
/// 30 days), its zone file `d/side/example.com.zone`.
fn knot_side(d: &Path, side: &str) {
    let s = d.join(side);
    std::fs::create_dir_all(s.join("kasp")).expect("mkdir");
    let s = s.to_str().expect("UTF-8 path");
    std::fs::write(format!("{s}/example.com.zone"), ZONE).expect("zone");
    let conf = format!(
        r#"server:
    rundir: "{s}"
database:
    storage: "{s}"
    kasp-db: "{s}/kasp"
keystore:
  - id: ks
    backend: pem
    config: "{s}/keys"
policy:
  - id: p
    keystore: ks
    algorithm: ecdsap256sha256
    manual: on
    offline-ksk: on
    dnskey-ttl: 3600
    zone-max-ttl: 3600
    zsk-lifetime: 30d
    rrsig-lifetime: 14d
    rrsig-refresh: 7d
    propagation-delay: 1h
    cds-cdnskey-publish: always
zone:
  - domain: example.com.
    storage: "{s}"
    file: "{s}/example.com.zone"
    dnssec-signing: on
    dnssec-policy: p
"#
    );
    std::fs::write(format!("{s}/knot.conf"), conf).expect("knot.conf");
}

/// keymgr's stdout, after asserting it succeeded.
#[track_caller]
fn keymgr_ok(d: &Path, side: &str, args: &[&str]) -> String {
    let out = keymgr(d, side, args);
    assert!(
        out.status.success(),
        "keymgr {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Knot's online side pregenerates its ZSKs and asks for 90 days; a
/// dnsseal offline box (its KSK in SoftHSMv2) checks and signs the
/// request; Knot validates and imports the response, lists dnsseal's KSK
/// among its offline records, and signs its zone with it (kzonesign) into
/// a zone dnsseal and the independent verifiers accept.
#[test]
fn a_knot_request_signs_on_dnsseal_and_knot_imports_the_response() {
    common::require("keymgr", "knot");
    common::require("kzonesign", "knot-dnssecutils");
    common::require_softhsm();
    common::require_verifiers();
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    knot_side(d, "online");
    keymgr_ok(d, "online", &["pregenerate", "+90d"]);
    let ksr = d.join("knot.ksr");
    std::fs::write(
        &ksr,
        keymgr_ok(d, "online", &["generate-ksr", "+0", "+90d"]),
    )
    .expect("ksr");

    // The offline box: Knot's algorithm and DNSKEY TTL, and a ZSK
    // lifetime of 30 days, the longest time between two of Knot's periods
    // (dnsseal's `ksr sign` refuses longer ones).
    let offline = common::Project::new();
    std::fs::write(
        offline.file("policy.toml"),
        "algorithm = \"ECDSAP256SHA256\"\nzsk-lifetime = \"30d\"\ndnskey-ttl = \"1h\"\n",
    )
    .expect("policy");
    offline
        .run(&["policy", "set", "example.com", "policy.toml"])
        .ok();
    offline.create_key("example.com", "ksk", "ECDSAP256SHA256");
    let keys = offline.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let tag = common::field(&keys[0], "key_tag").to_string();
    let skr = d.join("dnsseal.skr");
    let out = offline
        .run(&[
            "ksr",
            "sign",
            path(&ksr),
            "-o",
            path(&skr),
            "--yes",
            "--zone",
            "example.com",
        ])
        .ok();
    assert!(out.contains(&format!("KSK(s) [{tag}]")), "{out}");

    // Knot's online side takes the response.
    let out = keymgr(d, "online", &["validate-skr", path(&skr)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("invalid"),
        "validate-skr: {stderr}"
    );
    keymgr_ok(d, "online", &["import-skr", path(&skr)]);
    let shown = keymgr_ok(d, "online", &["show-offline"]);
    assert!(
        shown.contains(&format!("KSK, ECDSAP256SHA256 (256b), id = {tag}")),
        "dnsseal's KSK {tag} is not among Knot's offline records:\n{shown}"
    );

    // Knot signs its zone with the imported DNSKEY RRset and signatures.
    let conf = d.join("online/knot.conf");
    let out = run("kzonesign", &["-c", path(&conf), "example.com."]);
    assert!(
        out.status.success(),
        "kzonesign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = d.join("online/example.com.zone");
    let text = std::fs::read_to_string(&signed).expect("signed zone");
    assert!(
        text.lines().any(|l| l.contains("RRSIG")
            && l.contains("DNSKEY")
            && l.split_whitespace().any(|w| w == tag)),
        "no RRSIG DNSKEY by {tag}:\n{text}"
    );
    offline
        .run(&["verify", "-o", "example.com", path(&signed)])
        .ok();
    common::independent_verifiers(&signed, "example.com");
}

/// dnsseal's online box (ZSKs in SoftHSMv2) asks for 90 days; Knot's
/// offline side signs the request with its KSK; dnsseal imports the
/// response, pinning Knot's KSK, and signs a zone that dnsseal and the
/// independent verifiers accept. The same response with one character of
/// an RRSIG changed is refused (exit 10), naming the period and the key.
#[test]
fn a_dnsseal_request_signs_on_knot_and_dnsseal_signs_the_zone() {
    common::require("keymgr", "knot");
    common::require_softhsm();
    common::require_verifiers();
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();

    let online = common::Project::new();
    std::fs::write(online.file("policy.toml"), "offline-ksk = true\n").expect("policy");
    online
        .run(&["policy", "set", "example.com", "policy.toml"])
        .ok();
    online.run(&["policy", "run", "example.com"]).ok();
    let ksr = d.join("dnsseal.ksr");
    online
        .run(&[
            "ksr",
            "create",
            "example.com",
            "--to",
            "now+7776000",
            "-o",
            path(&ksr),
        ])
        .ok();

    // Knot's offline side. Its sign-ksr signs a period only with keys
    // active at the period's time ("no keys for signing" otherwise), and
    // dnsseal's first period is the moment of `ksr create`: the KSK dates
    // from the day before, as after a key ceremony.
    knot_side(d, "offline");
    keymgr_ok(
        d,
        "offline",
        &[
            "generate",
            "algorithm=13",
            "ksk=yes",
            "zsk=no",
            "created=-1d",
            "publish=-1d",
            "ready=-1d",
            "active=-1d",
        ],
    );
    let pin = d.join("knot-ksk.dnskey");
    let dnskey = keymgr_ok(d, "offline", &["dnskey"]);
    std::fs::write(&pin, &dnskey).expect("dnskey");
    let skr_text = keymgr_ok(d, "offline", &["sign-ksr", path(&ksr)]);
    let skr = d.join("knot.skr");
    std::fs::write(&skr, &skr_text).expect("skr");
    let zone: ZoneName = "example.com.".parse().expect("zone");
    let knot_ksk = dnsseal::ksr::format::dnskeys_in(&dnskey, "keymgr dnskey", &zone)
        .expect("Knot's DNSKEY")
        .into_iter()
        .find(|k| k.flags == 257)
        .expect("Knot's KSK")
        .key_tag();

    // One character of the first period's RRSIG over the DNSKEY RRset
    // changed: refused for that period and key, nothing stored.
    let at = skr_text.find(" RRSIG DNSKEY ").expect("RRSIG DNSKEY");
    let first_period = skr_text[..at]
        .rfind(";; SignedKeyResponse 1.0 ")
        .map(|i| &skr_text[i + 25..])
        .and_then(|s| s.split_whitespace().next())
        .expect("the period's header")
        .to_string();
    // Knot writes the RRSIG over three lines and more: the owner line, the
    // inception, key tag and signer, then the signature in base64.
    let sig_line = skr_text[at..]
        .match_indices('\n')
        .nth(1)
        .map(|(i, _)| at + i + 1)
        .expect("signature line");
    let i = sig_line
        + skr_text[sig_line..]
            .find(|c: char| !c.is_whitespace())
            .expect("signature")
        + 10;
    let flip = if &skr_text[i..=i] == "A" { "B" } else { "A" };
    let bad = d.join("bad.skr");
    std::fs::write(
        &bad,
        format!("{}{flip}{}", &skr_text[..i], &skr_text[i + 1..]),
    )
    .expect("bad skr");
    let err = online
        .run(&[
            "skr",
            "import",
            path(&bad),
            "--ksk",
            path(&pin),
            "--zone",
            "example.com",
        ])
        .fails(10);
    assert!(
        err.contains(&format!("period {first_period} (",))
            && err.contains(&format!(
                "key {knot_ksk}: RRSIG DNSKEY: signature does not verify"
            )),
        "{err}"
    );
    assert!(err.contains("nothing written"), "{err}");

    let out = online
        .run(&[
            "skr",
            "import",
            path(&skr),
            "--ksk",
            path(&pin),
            "--zone",
            "example.com",
        ])
        .ok();
    assert!(out.contains(&format!("KSK(s) [{knot_ksk}]")), "{out}");

    let zonefile = d.join("example.com.zone");
    std::fs::write(&zonefile, ZONE).expect("zone");
    let signed = d.join("example.com.signed");
    online
        .run(&[
            "sign",
            path(&zonefile),
            "-o",
            "example.com",
            "-f",
            path(&signed),
        ])
        .ok();
    let text = std::fs::read_to_string(&signed).expect("signed zone");
    assert!(
        text.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(3) == Some(&"RRSIG")
                && w.get(4) == Some(&"DNSKEY")
                && w.get(10) == Some(&knot_ksk.to_string().as_str())
        }),
        "no RRSIG DNSKEY by Knot's KSK {knot_ksk}:\n{text}"
    );
    online
        .run(&["verify", "-o", "example.com", path(&signed)])
        .ok();
    common::independent_verifiers(&signed, "example.com");
}
