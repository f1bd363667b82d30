//! KSR and SKR files written by dnsseal's `ksr` module, read by Knot DNS's
//! keymgr: a fresh offline-KSK exchange is made with Knot
//! (src/ksr/testdata/knot-interop.sh), dnsseal reads both files and
//! writes them again, and Knot signs dnsseal's KSR and validates and
//! imports dnsseal's SKR. No token is involved.

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
