//! End to end: a zone signed by dnsseal, served by a real authoritative
//! server (knotd) on loopback, and answers validated by a real validating
//! resolver (BIND's delv) that trusts only the DS dnsseal printed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;

const ZONE: &str = include_str!("zones/example.zone");

/// knotd serving one signed zone; stopped when dropped.
struct Knot {
    child: Child,
    port: u16,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn knotd() -> &'static str {
    if Path::new("/usr/sbin/knotd").exists() {
        "/usr/sbin/knotd"
    } else {
        "knotd"
    }
}

fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn serve(p: &Project, signed: &Path) -> Knot {
    let port = free_port();
    let dir = p.file(&format!("knot-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("knot.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\ndatabase:\n    storage: {d}\nlog:\n  - target: stderr\n    any: error\nzone:\n  - domain: example.\n    file: {f}\n    storage: {d}\n    semantic-checks: off\n    zonefile-sync: -1\n    journal-content: none\n",
            d = dir.display(),
            f = signed.display()
        ),
    )
    .unwrap();
    let child = Command::new(knotd())
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start knotd");
    Knot { child, port }
}

/// delv's answer for a query, trusting `anchors` for `example.`.
fn delv(port: u16, anchors: &Path, name: &str, t: &str) -> String {
    let out = Command::new("delv")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "-a",
            anchors.to_str().unwrap(),
            "+root=example.",
            "+tcp",
            name,
            t,
        ])
        .output()
        .expect("run delv");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn anchors(p: &Project, name: &str, ds: &str) -> std::path::PathBuf {
    // "example. 3600 IN DS TAG ALG DT DIGEST ; comment"
    let f: Vec<&str> = ds.split(';').next().unwrap().split_whitespace().collect();
    let path = p.file(name);
    std::fs::write(
        &path,
        format!(
            "trust-anchors {{\n  example. static-ds {} {} {} \"{}\";\n}};\n",
            f[4], f[5], f[6], f[7]
        ),
    )
    .unwrap();
    path
}

fn check_answers(p: &Project, signed: &Path, flags: &[&str]) {
    let knot = serve(p, signed);
    let ds = p.run(&["keys", "ds", "example"]).ok();
    let good = anchors(p, "anchors.conf", ds.lines().next().unwrap());
    // Wait (bounded) for the server to answer.
    let start = Instant::now();
    let mut first = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        first = delv(knot.port, &good, "sip.example.", "A");
        if first.contains("fully validated") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        first.contains("; fully validated") && first.contains("192.0.2.80"),
        "{flags:?} existing name: {first}"
    );
    // Under opt-out the NSEC3 that covers the next closer name of a
    // wildcard answer has the opt-out flag, so the answer is provably
    // insecure, not bogus (RFC 5155 §8.8, §6): that is what delv must say.
    let opt_out = flags.contains(&"--opt-out");
    let wildcard = if opt_out {
        "; unsigned answer"
    } else {
        "; fully validated"
    };
    let cases = [
        (
            "Mail.example.",
            "AAAA",
            "; negative response, fully validated",
            "NODATA",
        ),
        (
            "nowhere.example.",
            "A",
            "; negative response, fully validated",
            "NXDOMAIN",
        ),
        ("anything.wild.example.", "TXT", wildcard, "wildcard"),
        ("www.example.", "CNAME", "; fully validated", "CNAME"),
        (
            "secure.example.",
            "DS",
            "; fully validated",
            "DS at a delegation",
        ),
        (
            "b.c.example.",
            "TXT",
            "; negative response, fully validated",
            "empty non-terminal",
        ),
    ];
    for (name, t, expect, what) in cases {
        let answer = delv(knot.port, &good, name, t);
        assert!(
            answer.contains(expect),
            "{flags:?} {what} ({name} {t}): {answer}"
        );
    }
    let wild = delv(knot.port, &good, "anything.wild.example.", "TXT");
    assert!(wild.contains("\"wildcard\""), "{wild}");

    // The control: with a DS that is not the zone's, nothing validates.
    let mut wrong: Vec<String> = ds
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let digest = wrong[7].clone();
    wrong[7] = format!(
        "{}{}",
        if digest.starts_with('0') { "1" } else { "0" },
        &digest[1..]
    );
    let bad = anchors(p, "wrong.conf", &wrong.join(" "));
    let answer = delv(knot.port, &bad, "sip.example.", "A");
    assert!(
        !answer.contains("fully validated"),
        "validated with a wrong trust anchor: {answer}"
    );
}

#[test]
fn a_validating_resolver_accepts_answers_from_the_signed_zone() {
    common::require("delv", "bind9-dnsutils");
    assert!(
        Path::new(knotd()).exists() || Command::new("knotd").arg("-V").output().is_ok(),
        "knotd is not installed: apt-get install -y knot"
    );
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "ECDSAP256SHA256");
    for (name, flags) in [
        ("nsec", vec![]),
        ("nsec3", vec!["--nsec3"]),
        ("optout", vec!["--nsec3", "--opt-out"]),
    ] {
        let out = p.file(&format!("{name}.signed"));
        let mut args = vec![
            "sign",
            "example.zone",
            "-o",
            "example",
            "-f",
            out.to_str().unwrap(),
        ];
        args.extend(flags.iter().copied());
        p.run(&args).ok();
        check_answers(&p, &out, &flags);
    }
}
