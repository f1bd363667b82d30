//! The key ceremony scripts (scripts/ceremony/) run end to end with --yes
//! against SoftHSMv2, with separate tokens for the offline (KSK) box and
//! the online (signer) box: every step is in the transcript, a failed step
//! stops the ceremony, and each ceremony ends with a signed checkpoint and
//! an export that checks with the audit public key alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::dnsseal_bin;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/ceremony")
        .join(name)
}

/// Runs a ceremony script in `at` with a clean environment.
fn ceremony(at: &Path, name: &str, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script(name))
        .args(args)
        .current_dir(at)
        .env("DNSSEAL", dnsseal_bin())
        .env("DNSSEAL_PIN", common::PIN)
        .env("DNSSEAL_SO_PIN", common::SO_PIN)
        .env_remove("SOFTHSM2_CONF")
        .env_remove("DNSSEAL_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The transcript a ceremony's output names.
fn transcript(o: &Output) -> String {
    let out = text(o);
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("transcript: "))
        .unwrap_or_else(|| panic!("no transcript named:\n{out}"));
    std::fs::read_to_string(path).unwrap()
}

/// dnsseal run in `dir` (a ceremony's dnsseal directory, or elsewhere).
fn dnsseal_in(dir: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(dnsseal_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("SOFTHSM2_CONF")
        .env_remove("DNSSEAL_CONFIG")
        .output()
        .unwrap()
}

/// The arguments as `OsStr`s, paths and strings alike.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

fn checkpoint_of(transcript: &str) -> String {
    transcript
        .lines()
        .find_map(|l| l.strip_prefix("# checkpoint: "))
        .expect("the transcript cites a checkpoint")
        .to_string()
}

#[test]
fn ceremonies_run_end_to_end_on_two_tokens() {
    common::require_softhsm();
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    for (dir, label) in [("offline", "ksk-box"), ("online", "signer")] {
        let o = ceremony(
            m,
            "init-token.sh",
            &[
                "--yes",
                "--out",
                &format!("{dir}-out"),
                dir,
                "--softhsm",
                "--token-label",
                label,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let t = transcript(&o);
        assert!(t.contains("# mode:      --yes"), "{t}");
        assert!(
            t.contains(&format!("label: {label}")) || t.contains(label),
            "{t}"
        );
        assert!(t.contains("audit key made in the token"), "{t}");
        assert!(t.contains("all succeeded"), "{t}");
        assert!(m.join(format!("{dir}-out/audit-key.pem")).exists());
    }
    // The two boxes have their own tokens and audit keys.
    let key = |dir: &str| std::fs::read(m.join(format!("{dir}-out/audit-key.pem"))).unwrap();
    assert_ne!(key("offline"), key("online"));

    let o = ceremony(
        m,
        "generate-ksk.sh",
        &[
            "--yes",
            "--out",
            "offline-out",
            "offline",
            "example.com",
            "ECDSAP256SHA256",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = transcript(&o);
    // The DS printed is the one the offline keystore holds, and its file's
    // digest is in the transcript.
    let ds = dnsseal_in(&m.join("offline"), args!["keys", "ds", "example.com"]);
    let ds = String::from_utf8_lossy(&ds.stdout).trim().to_string();
    assert!(ds.contains(" DS "), "{ds}");
    assert!(t.contains(&ds), "{t}");
    let ds_file = m.join("offline-out/example.com.ds");
    let sum = Command::new("sha256sum").arg(&ds_file).output().unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert!(t.contains(sum.split_whitespace().next().unwrap()), "{t}");
    // The checkpoint the transcript cites is in the export, which checks
    // with the offline box's audit public key alone.
    let cp = checkpoint_of(&t);
    let export = t
        .lines()
        .find_map(|l| l.strip_prefix("# export:     "))
        .unwrap();
    let offline_key = m.join("offline-out/audit-key.pem");
    let v = dnsseal_in(
        m,
        args![
            "audit",
            "verify",
            "--pubkey",
            offline_key,
            export,
            "--checkpoint",
            cp
        ],
    );
    assert!(v.status.success(), "{}", text(&v));
    // The online box's key does not check the offline box's export.
    let online_key = m.join("online-out/audit-key.pem");
    let v = dnsseal_in(m, args!["audit", "verify", "--pubkey", online_key, export]);
    assert_eq!(v.status.code(), Some(11), "{}", text(&v));
}

#[test]
fn a_failed_step_stops_the_ceremony_and_says_so() {
    common::require_softhsm();
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    let o = ceremony(
        m,
        "init-token.sh",
        &["--yes", "offline", "--softhsm", "--token-label", "ksk-box"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ceremony(
        m,
        "generate-ksk.sh",
        &["--yes", "offline", "example.com", "BOGUS"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("step 3 FAILED (exit 3)"), "{out}");
    assert!(
        !out.contains("DS records of"),
        "a step after the failed one ran:\n{out}"
    );
    assert!(!out.contains("checkpoint record"), "{out}");
    // Without --yes and without a terminal nothing is done.
    let o = ceremony(m, "generate-ksk.sh", &["offline", "example.com"]);
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    assert!(
        text(&o).contains("no terminal to confirm on"),
        "{}",
        text(&o)
    );
    let keys = dnsseal_in(&m.join("offline"), args!["--json", "keys", "list"]);
    assert_eq!(String::from_utf8_lossy(&keys.stdout).trim(), "[]");
}

/// The SHA-256 of a file as sha256sum prints it (hex).
fn sha256_of(file: &Path) -> String {
    let o = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The digest dnsseal prints for the witnesses to read aloud.
fn spoken_digest(out: &str) -> String {
    let mut lines = out.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with("SHA-256 of the file, to read aloud:"))
        .unwrap_or_else(|| panic!("no digest to read aloud in:\n{out}"));
    lines.next().unwrap().trim().to_string()
}

/// The transcripts of the ceremonies named `prefix` in `out`.
fn transcripts(out: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("transcript-{prefix}-"))
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn a_ksr_is_signed_in_a_ceremony_and_the_online_box_signs_with_the_skr() {
    common::require_softhsm();
    common::require_verifiers();
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    let zone = "example";
    // The zone's policy, carried to both boxes.
    std::fs::write(m.join("example.policy"), "offline-ksk = true\n").unwrap();

    // Offline box: token, then the KSK with the zone's policy.
    let o = ceremony(
        m,
        "init-token.sh",
        &[
            "--yes",
            "--out",
            "offline-out",
            "offline",
            "--softhsm",
            "--token-label",
            "ksk-box",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ceremony(
        m,
        "generate-ksk.sh",
        &[
            "--yes",
            "--out",
            "offline-out",
            "--policy",
            "example.policy",
            "offline",
            zone,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = transcript(&o);
    assert!(t.contains("policy of example set from"), "{t}");
    assert!(t.contains(&sha256_of(&m.join("example.policy"))), "{t}");
    let ksk_file = m.join("offline-out/example.dnskey");
    let ksk = std::fs::read_to_string(&ksk_file).unwrap();
    assert!(ksk.contains(" DNSKEY 257 3 13 "), "{ksk}");

    // Online box: its own token; the first ZSK, then the request.
    let online = common::Project::new();
    let policy = m.join("example.policy");
    online
        .run(&["policy", "set", zone, policy.to_str().unwrap()])
        .ok();
    online.run(&["policy", "run"]).ok();
    let ksr = m.join("example.ksr");
    let made = online
        .run(&[
            "ksr",
            "create",
            zone,
            "--to",
            "now+7776000",
            "-o",
            ksr.to_str().unwrap(),
        ])
        .ok();
    // What the online operator reads out.
    let read_out = spoken_digest(&made);

    // The signing ceremony on the offline box.
    let o = ceremony(
        m,
        "sign-ksr.sh",
        &[
            "--yes",
            "--out",
            "offline-out",
            "offline",
            zone,
            "example.ksr",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = transcript(&o);
    let skr = m.join("example.skr");
    assert!(skr.exists(), "no SKR next to the KSR:\n{t}");
    // The witnesses compare the digest shown with the one read out; the
    // transcript holds both files' SHA-256 and the checkpoint.
    assert!(t.contains(&read_out), "{t}");
    assert!(t.contains(&sha256_of(&ksr)), "{t}");
    assert!(t.contains(&sha256_of(&skr)), "{t}");
    assert!(t.contains("$ dnsseal ksr sign "), "{t}");
    assert!(t.contains("--zone example --yes"), "{t}");
    let cp = checkpoint_of(&t);
    assert!(
        t.contains(&format!("hash {cp} (signs record")),
        "the checkpoint cited is not the one signed:\n{t}"
    );
    assert!(t.contains("all succeeded"), "{t}");
    // The offline audit log records the signing with both digests.
    let audit = std::fs::read_to_string(m.join("offline/audit.log")).unwrap();
    assert!(audit.contains(&sha256_of(&ksr)), "{audit}");
    assert!(audit.contains(&sha256_of(&skr)), "{audit}");

    // Online box: the SKR imported with the KSK of the ceremony pinned, the
    // zone signed and checked by three independent verifiers.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-tests/zones/example.zone"),
        online.file("example.zone"),
    )
    .unwrap();
    online
        .run(&[
            "skr",
            "import",
            skr.to_str().unwrap(),
            "--ksk",
            ksk_file.to_str().unwrap(),
        ])
        .ok();
    online.run(&["sign", "example.zone", "-o", zone]).ok();
    let signed = online.file("example.zone.signed");
    let signed_text = std::fs::read_to_string(&signed).unwrap();
    let ksk_key = ksk.split_whitespace().nth(7).unwrap();
    assert!(
        signed_text.contains(ksk_key),
        "the offline KSK is not published"
    );
    common::independent_verifiers(&signed, zone);

    // A request carrying a key with the KSK flag is refused: the ceremony
    // stops with the refusal in its transcript and no SKR is written.
    let bad = m.join("bad.ksr");
    let request = std::fs::read_to_string(&ksr).unwrap();
    assert!(request.contains(" DNSKEY 256 3 13 "), "{request}");
    std::fs::write(
        &bad,
        request.replacen(" DNSKEY 256 3 13 ", " DNSKEY 257 3 13 ", 1),
    )
    .unwrap();
    let o = ceremony(
        m,
        "sign-ksr.sh",
        &["--yes", "--out", "offline-out", "offline", zone, "bad.ksr"],
    );
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    assert!(!m.join("bad.skr").exists(), "an SKR was left behind");
    let t = transcripts(&m.join("offline-out"), "sign-ksr-example")
        .into_iter()
        .find(|t| t.contains("bad.ksr"))
        .expect("a transcript of the refused ceremony");
    assert!(t.contains("$ dnsseal ksr sign "), "{t}");
    assert!(t.contains("refused, nothing written"), "{t}");
    assert!(t.contains("flags 257"), "{t}");
    assert!(t.contains("FAILED (exit 10)"), "{t}");
    assert!(!t.contains("# checkpoint:"), "{t}");
    assert!(!t.contains("all succeeded"), "{t}");
    // The good response is untouched.
    assert!(skr.exists());
}

#[test]
fn sign_ksr_stops_without_a_policy_for_the_zone() {
    common::require_softhsm();
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    let o = ceremony(
        m,
        "init-token.sh",
        &["--yes", "offline", "--softhsm", "--token-label", "ksk-box"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ceremony(m, "generate-ksk.sh", &["--yes", "offline", "example"]);
    assert!(o.status.success(), "{}", text(&o));
    // Any well-formed request: the policy is checked before it is read.
    let ksr = m.join("example.ksr");
    std::fs::write(
        &ksr,
        ";; KeySigningRequest 1.0 1796364477 (2026-12-04T06:07:57Z) =========\n\
         example.\t3600 DNSKEY 256 3 13 8hzUJBOApisC/4oNrArcIsTYKa+15N2F77fvi3AVfM6QlhuNbZCMTx2+Lmr+/fntHDhM5zCzPO87cdpV0vTRcA==\n\
         ;; KeySigningRequest 1.0 generated at 2026-12-04T06:07:57Z by dnsseal 0.1.0\n",
    )
    .unwrap();
    let o = ceremony(
        m,
        "sign-ksr.sh",
        &["--yes", "offline", "example", "example.ksr"],
    );
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("example has no policy on this box"), "{out}");
    assert!(!out.contains("ksr sign"), "{out}");
    assert!(!m.join("example.skr").exists());
}
