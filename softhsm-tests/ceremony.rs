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
