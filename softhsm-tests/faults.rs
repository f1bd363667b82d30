//! Token faults: dnsseal driven through faulty-p11
//! (`softhsm-tests/faulty-p11`), a PKCS#11 module that wraps a fresh
//! SoftHSMv2 token and makes chosen calls fail with chosen codes.
//!
//! Each test makes its keys through SoftHSMv2 as usual, then points the
//! project's `[token] module` at faulty-p11 and writes the fault
//! configuration. What every case checks (docs/operator-guide.md §19):
//! the exit code, a message that names the PKCS#11 code, no output or the
//! previous signed zone unchanged byte for byte, no temporary file left,
//! `keys reconcile` and `audit verify` clean, and an audit record of the
//! failed attempt. Survived faults must leave a zone that dnsseal's own
//! verifier and the independent ones accept.
//!
//! The module is built once per test binary, with a target directory of
//! its own (the running `cargo test` holds the lock of the main one).

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{faulty_module, field, Project, Run, SHORT_WAITS_POLICY};
use serde_json::Value;

const ZONE: &str = "bench.";
const TOKEN_FAILED: i32 = 13;

/// A project whose token is reached through faulty-p11 once
/// [`Faulty::through_faulty`] has been called.
struct Faulty {
    p: Project,
}

impl Faulty {
    /// A fresh project and token, on the real module; no keys yet.
    fn new() -> Faulty {
        faulty_module();
        let p = Project::new();
        std::fs::create_dir(p.file("faults")).expect("faults directory");
        let f = Faulty { p };
        f.set("");
        f
    }

    /// A fresh project with a CSK for the zone and a zone file of
    /// `delegations` delegations (scripts/gen-zone.py), already on
    /// faulty-p11 with no faults.
    fn signing(delegations: usize) -> Faulty {
        let f = Faulty::new();
        f.p.create_key(ZONE, "both", "ECDSAP256SHA256");
        f.through_faulty();
        gen_zone(&f.p.file("zone"), delegations);
        f
    }

    /// From now on the project's dnsseal.toml names faulty-p11.
    fn through_faulty(&self) {
        common::through_faulty(&self.p);
    }

    fn config(&self) -> PathBuf {
        self.p.file("faults/faults.conf")
    }

    fn log(&self) -> PathBuf {
        self.p.file("faults/injected.log")
    }

    /// The fault configuration (a log of each injection is added).
    fn set(&self, faults: &str) {
        let text = format!("log = {}\n{faults}\n", self.log().display());
        std::fs::write(self.config(), text).expect("fault configuration written");
    }

    /// dnsseal through faulty-p11 with the current fault configuration.
    fn run(&self, args: &[&str]) -> Run {
        let config = self.config();
        let env: [(&str, &OsStr); 2] = [
            ("FAULTY_P11_MODULE", OsStr::new(common::SOFTHSM_MODULE)),
            ("FAULTY_P11_CONFIG", config.as_os_str()),
        ];
        self.p.run_env(&env, args)
    }

    /// `keys create ZONE --role zsk` (P-256) through faulty-p11.
    fn create_zsk(&self) -> Run {
        self.run(&[
            "keys",
            "create",
            ZONE,
            "--role",
            "zsk",
            "--algorithm",
            "ECDSAP256SHA256",
        ])
    }

    /// The faults faulty-p11 injected so far.
    fn injected(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// `sign zone -o example. -f OUT --threads 2` with more arguments
    /// (two sessions: no session probe, whose signatures would count).
    fn sign(&self, out: &str, more: &[&str]) -> Run {
        let mut args = vec![
            "--json",
            "sign",
            "zone",
            "-o",
            ZONE,
            "-f",
            out,
            "--threads",
            "2",
        ];
        args.extend_from_slice(more);
        self.run(&args)
    }

    /// The names in the project directory.
    fn listing(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.p.path())
            .expect("list the project")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// `keys reconcile` finds no drift (and the token's private keys, read
    /// with pkcs11-tool, are the recorded keys), `audit verify` passes.
    fn consistent(&self, what: &str) {
        self.set("");
        let r = self.run(&["keys", "reconcile"]);
        assert_eq!(
            r.code, 0,
            "{what}: keys reconcile\n{}{}",
            r.stdout, r.stderr
        );
        assert!(
            !["MISSING", "MISMATCH", "ORPHAN"]
                .iter()
                .any(|w| r.stdout.contains(w)),
            "{what}: reconcile reports drift:\n{}",
            r.stdout
        );
        let mut recorded: Vec<String> = self
            .p
            .keys()
            .iter()
            .filter(|k| field(k, "state") != "destroyed")
            .map(|k| field(k, "cka_id").as_str().unwrap_or("").to_string())
            .collect();
        recorded.sort();
        assert_eq!(
            self.p.token_private_ids(),
            recorded,
            "{what}: the token's private keys are not the recorded keys"
        );
        let v = self.run(&["audit", "verify"]);
        assert_eq!(v.code, 0, "{what}: audit verify\n{}{}", v.stdout, v.stderr);
    }

    /// The audit log's last record: a failed `command` naming `rv`.
    fn failure_audited(&self, command: &str, rv: &str) {
        let lines = self.p.audit_lines();
        let last: Value = serde_json::from_str(lines.last().expect("an audit record"))
            .expect("an audit line is JSON");
        assert_eq!(last["command"], command, "{last}");
        assert_eq!(last["outcome"], "failed", "{last}");
        assert!(
            last["detail"].as_str().unwrap_or("").contains(rv),
            "the audit record of the failure does not name {rv}: {last}"
        );
    }
}

fn gen_zone(path: &Path, delegations: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-zone.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(delegations.to_string())
        .arg(ZONE)
        .output()
        .expect("run scripts/gen-zone.py");
    assert!(out.status.success(), "gen-zone.py failed");
    std::fs::write(path, out.stdout).expect("zone written");
}

/// Asserts the exit code and that the message names the PKCS#11 code;
/// returns standard error.
#[track_caller]
fn token_failed(r: Run, code: i32, rv: &str) -> String {
    let err = r.fails(code);
    assert!(err.contains(rv), "the message does not name {rv}:\n{err}");
    err
}

fn sessions_reopened(out: &str) -> u64 {
    let v: Value = serde_json::from_str(out).expect("sign --json is JSON");
    v["sessions_reopened"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sessions_reopened in {v}"))
}

/// A zone signed through a fault: dnsseal's verifier and the independent
/// ones accept it.
fn verifies(f: &Faulty, out: &str) {
    f.p.run(&["verify", out, "-o", ZONE]).ok();
    common::independent_verifiers(&f.p.file(out), ZONE);
}

/// A fault in one signature that a fresh session gets past: the zone is
/// signed, the report says a session was reopened.
fn survived(rv: &str) {
    common::require_verifiers();
    let f = Faulty::signing(300);
    f.set(&format!("fail = C_Sign\non = 100\nrv = {rv}"));
    let out = f.sign("zone.signed", &[]).ok();
    assert_eq!(f.injected().len(), 1, "{:?}", f.injected());
    assert!(
        f.injected()[0].contains(&format!("C_Sign call 100: {rv}")),
        "{:?}",
        f.injected()
    );
    assert!(sessions_reopened(&out) >= 1, "{out}");
    let last = f.p.audit_lines().pop().expect("an audit record");
    assert!(last.contains("reopened"), "{last}");
    verifies(&f, "zone.signed");
    f.consistent(&format!("after a survived {rv}"));
}

#[test]
fn a_session_lost_at_the_100th_signature_is_reopened_and_the_zone_signed() {
    survived("CKR_SESSION_HANDLE_INVALID");
}

#[test]
fn one_device_error_is_survived() {
    survived("CKR_DEVICE_ERROR");
}

/// A signing run the token fails: exit 13 naming `rv`, the previous
/// signed zone untouched, nothing left behind, the failure audited.
fn sign_fails_and_keeps_the_previous_zone(f: &Faulty, faults: &str, rv: &str) -> Duration {
    f.set("");
    f.sign("zone.signed", &[]).ok();
    let before = std::fs::read(f.p.file("zone.signed")).expect("signed zone");
    let listing = f.listing();
    f.set(faults);
    let started = Instant::now();
    token_failed(f.sign("zone.signed", &[]), TOKEN_FAILED, rv);
    let took = started.elapsed();
    assert!(!f.injected().is_empty(), "no fault was injected");
    assert_eq!(
        std::fs::read(f.p.file("zone.signed")).expect("signed zone"),
        before,
        "the previous signed zone changed"
    );
    assert_eq!(f.listing(), listing, "files left in the output directory");
    f.failure_audited("sign", rv);
    f.consistent(&format!("after a sign stopped by {rv}"));
    took
}

#[test]
fn device_errors_on_every_signature_stop_the_run_after_bounded_retries() {
    let f = Faulty::signing(300);
    let took = sign_fails_and_keeps_the_previous_zone(
        &f,
        "fail = C_Sign\non = 100\ncount = all\nrv = CKR_DEVICE_ERROR",
        "CKR_DEVICE_ERROR",
    );
    // Three reopens per worker, 0.25 + 0.5 + 1 s apart.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        f.injected().len() <= 2 * 4 + 2,
        "more signatures tried than the retries allow: {:?}",
        f.injected()
    );
}

#[test]
fn a_removed_device_stops_the_run_with_nothing_written() {
    let f = Faulty::signing(300);
    f.set("fail = C_Sign\non = 50\ncount = all\nrv = CKR_DEVICE_REMOVED");
    let listing = f.listing();
    token_failed(
        f.sign("zone.signed", &[]),
        TOKEN_FAILED,
        "CKR_DEVICE_REMOVED",
    );
    assert!(
        !f.p.file("zone.signed").exists(),
        "a signed zone was written"
    );
    assert_eq!(f.listing(), listing, "files left in the output directory");
    f.failure_audited("sign", "CKR_DEVICE_REMOVED");
    f.consistent("after a removed device");
    // The previous signed zone stays too.
    sign_fails_and_keeps_the_previous_zone(
        &f,
        "fail = C_Sign\non = 50\ncount = all\nrv = CKR_DEVICE_REMOVED",
        "CKR_DEVICE_REMOVED",
    );
}

#[test]
fn no_token_at_open_session_or_login_is_a_token_failure() {
    let f = Faulty::signing(50);
    for func in ["C_OpenSession", "C_Login"] {
        f.set(&format!(
            "fail = {func}\ncount = all\nrv = CKR_TOKEN_NOT_PRESENT"
        ));
        let listing = f.listing();
        let err = token_failed(
            f.sign("zone.signed", &[]),
            TOKEN_FAILED,
            "CKR_TOKEN_NOT_PRESENT",
        );
        assert!(
            err.contains(func),
            "the message does not name {func}:\n{err}"
        );
        assert!(!f.p.file("zone.signed").exists(), "{func}: output written");
        assert_eq!(f.listing(), listing, "{func}: files left behind");
        f.failure_audited("sign", "CKR_TOKEN_NOT_PRESENT");
        f.consistent(&format!("after {func} failed"));
        // Key management says the same.
        f.set(&format!(
            "fail = {func}\ncount = all\nrv = CKR_TOKEN_NOT_PRESENT"
        ));
        token_failed(f.create_zsk(), TOKEN_FAILED, "CKR_TOKEN_NOT_PRESENT");
        f.consistent(&format!("after keys create met {func} failing"));
    }
}

#[test]
fn a_failed_key_lookup_while_signing_writes_nothing() {
    let f = Faulty::signing(300);
    sign_fails_and_keeps_the_previous_zone(
        &f,
        "fail = C_FindObjects\ncount = all\nrv = CKR_FUNCTION_FAILED",
        "CKR_FUNCTION_FAILED",
    );
    // Only the first lookup failing: still a clear failure, nothing written.
    f.set("fail = C_FindObjects\nrv = CKR_FUNCTION_FAILED");
    let r = f.sign("other.signed", &[]);
    if r.code != 0 {
        token_failed(r, TOKEN_FAILED, "CKR_FUNCTION_FAILED");
        assert!(!f.p.file("other.signed").exists());
    }
    f.consistent("after a failed key lookup");
}

/// The zone's keys: (role, state, key tag), sorted.
fn key_set(f: &Faulty, zone: &str) -> Vec<(String, String, u64)> {
    let out = f.run(&["--json", "keys", "list", zone]).ok();
    let keys: Vec<Value> = serde_json::from_str(&out).expect("keys list --json");
    let mut v: Vec<(String, String, u64)> = keys
        .iter()
        .map(|k| {
            (
                field(k, "role").as_str().unwrap_or("").to_string(),
                field(k, "state").as_str().unwrap_or("").to_string(),
                field(k, "key_tag").as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_key_pair_the_token_fails_to_make_leaves_no_half_key() {
    let f = Faulty::new();
    f.p.create_key(ZONE, "ksk", "ECDSAP256SHA256");
    f.through_faulty();
    let keys = key_set(&f, ZONE);
    let audit = f.p.audit_lines().len();
    f.set("fail = C_GenerateKeyPair\nrv = CKR_DEVICE_ERROR");
    let r = f.create_zsk();
    assert_ne!(r.code, 0, "keys create succeeded");
    token_failed(r, TOKEN_FAILED, "CKR_DEVICE_ERROR");
    assert_eq!(f.injected().len(), 1, "{:?}", f.injected());
    assert_eq!(key_set(&f, ZONE), keys, "keys list changed");
    assert_eq!(f.p.audit_lines().len(), audit + 1);
    f.failure_audited("keys create", "CKR_DEVICE_ERROR");
    f.consistent("after a failed keys create");
    // The token is fine again: the key is made.
    f.p.create_key(ZONE, "zsk", "ECDSAP256SHA256");
    f.consistent("after keys create again");
}

// ------------------------------------------------------ policy, rollover

/// `--now` values: real now (to the minute) plus minutes, so signatures
/// made at them also hold for verifiers that use the real clock.
fn at(minutes: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let t = now - now % 60 + minutes * 60;
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("representable time")
        .format(&fmt)
        .expect("formattable time")
}

#[test]
fn the_first_keys_of_a_policy_fail_all_or_nothing() {
    let f = Faulty::new();
    std::fs::write(f.p.file("policy.toml"), SHORT_WAITS_POLICY).expect("policy written");
    f.through_faulty();
    let t0 = at(0);
    f.run(&["--now", &t0, "policy", "set", ZONE, "policy.toml"])
        .ok();
    // The second of the two key pairs fails: the first must go again.
    f.set("fail = C_GenerateKeyPair\non = 2\nrv = CKR_DEVICE_ERROR");
    token_failed(
        f.run(&["--now", &t0, "policy", "run", ZONE]),
        TOKEN_FAILED,
        "CKR_DEVICE_ERROR",
    );
    assert_eq!(f.injected().len(), 1, "{:?}", f.injected());
    assert!(key_set(&f, ZONE).is_empty(), "{:?}", key_set(&f, ZONE));
    f.failure_audited("policy run", "CKR_DEVICE_ERROR");
    f.consistent("after the first keys failed");
    f.run(&["--now", &t0, "policy", "run", ZONE]).ok();
    assert_eq!(key_set(&f, ZONE).len(), 2);
    f.consistent("after the first keys were made");
}

#[test]
fn a_rollover_step_the_token_fails_happens_not_at_all() {
    common::require("ldns-verify-zone", "ldnsutils");
    let f = Faulty::new();
    std::fs::write(f.p.file("policy.toml"), SHORT_WAITS_POLICY).expect("policy written");
    gen_zone(&f.p.file("zone"), 20);
    f.through_faulty();
    let t0 = at(0);
    let (start, end) = (at(-60), at(30 * 24 * 60));
    f.run(&["--now", &t0, "policy", "set", ZONE, "policy.toml"])
        .ok();
    f.run(&["--now", &t0, "policy", "run", ZONE]).ok();
    let sign = |now: &str| {
        f.run(&[
            "--now",
            now,
            "sign",
            "zone",
            "-o",
            ZONE,
            "-f",
            "zone.signed",
            "-s",
            &start,
            "-e",
            &end,
        ])
    };
    sign(&t0).ok();
    f.run(&["--now", &t0, "rollover", "ds-seen", ZONE]).ok();
    let keys = key_set(&f, ZONE);
    let t10 = at(10);
    let plan = f
        .run(&["--json", "--now", &t10, "rollover", "plan", ZONE])
        .ok();

    f.set("fail = C_GenerateKeyPair\nrv = CKR_DEVICE_ERROR");
    token_failed(
        f.run(&["--now", &t10, "rollover", "zsk", ZONE, "start"]),
        TOKEN_FAILED,
        "CKR_DEVICE_ERROR",
    );
    assert_eq!(f.injected().len(), 1, "{:?}", f.injected());
    assert_eq!(key_set(&f, ZONE), keys, "the keys changed");
    f.failure_audited("rollover zsk", "CKR_DEVICE_ERROR");
    f.consistent("after a failed rollover start");
    assert_eq!(
        f.run(&["--json", "--now", &t10, "rollover", "plan", ZONE])
            .ok(),
        plan,
        "the rollover plan changed"
    );

    // Once the token works, the step happens, and the zone signs.
    f.run(&["--now", &t10, "rollover", "zsk", ZONE, "start"])
        .ok();
    assert_eq!(key_set(&f, ZONE).len(), keys.len() + 1);
    f.consistent("after the rollover start");
    sign(&at(15)).ok();
    f.run(&["--now", &at(15), "verify", "zone.signed", "-o", ZONE])
        .ok();
    let ldns = Command::new("ldns-verify-zone")
        .arg(f.p.file("zone.signed"))
        .output()
        .expect("run ldns-verify-zone");
    assert!(
        ldns.status.success(),
        "ldns-verify-zone: {}",
        String::from_utf8_lossy(&ldns.stderr)
    );
}

// -------------------------------------------------------------- big zone

#[test]
fn a_session_lost_in_a_100k_delegation_zone_is_survived() {
    common::require("dnssec-verify", "bind9-utils");
    let f = Faulty::signing(100_000);
    f.set("fail = C_Sign\non = 20000\nrv = CKR_SESSION_HANDLE_INVALID");
    let started = Instant::now();
    let out = f.sign("zone.signed", &[]).ok();
    let signing = started.elapsed();
    assert_eq!(f.injected().len(), 1, "{:?}", f.injected());
    assert!(sessions_reopened(&out) >= 1, "{out}");
    let started = Instant::now();
    let v = Command::new("dnssec-verify")
        .args(["-q", "-z", "-o", ZONE])
        .arg(f.p.file("zone.signed"))
        .output()
        .expect("run dnssec-verify");
    assert!(
        v.status.success(),
        "dnssec-verify: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    f.p.run(&["verify", "zone.signed", "-o", ZONE]).ok();
    eprintln!(
        "100k delegations: signed through the fault in {:.1} s, verified in {:.1} s",
        signing.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------- unplugged mid-run

/// Starts `sign` (throttled to 200 signatures a second, so that it runs
/// for seconds), unplugs the token after `after`, plugs it back after
/// `away` (never, if `None`), and returns the run.
fn unplugged(f: &Faulty, after: Duration, away: Option<Duration>) -> Run {
    f.set("sign_rate = 200");
    let config = f.config();
    let mut cmd = f.p.command();
    cmd.env("FAULTY_P11_MODULE", common::SOFTHSM_MODULE)
        .env("FAULTY_P11_CONFIG", &config)
        .args([
            "--json",
            "sign",
            "zone",
            "-o",
            ZONE,
            "-f",
            "zone.signed",
            "--threads",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn dnsseal");
    std::thread::sleep(after);
    // The module reads the file again when its mtime changes.
    f.set("sign_rate = 200\naway = 1");
    if let Some(away) = away {
        std::thread::sleep(away);
        f.set("sign_rate = 200");
    }
    let out = child.wait_with_output().expect("wait for dnsseal");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_token_unplugged_mid_run_stops_it_and_one_plugged_back_in_time_is_used() {
    common::require("ldns-verify-zone", "ldnsutils");
    let f = Faulty::signing(1000);
    // Unplugged for good: exit 13 once the reopens are spent.
    let r = unplugged(&f, Duration::from_secs(2), None);
    assert!(!f.injected().is_empty(), "the token was never away");
    // The last try names what it met: the signature (CKR_DEVICE_REMOVED)
    // or the reopen (C_OpenSession: CKR_TOKEN_NOT_PRESENT).
    let err = token_failed(r, TOKEN_FAILED, "the token is gone");
    let last = err
        .lines()
        .rfind(|l| l.contains("error:"))
        .unwrap_or_default();
    let rv = ["CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT"]
        .into_iter()
        .find(|rv| last.contains(rv))
        .unwrap_or_else(|| panic!("the message names no token-gone code:\n{err}"));
    assert!(
        !f.p.file("zone.signed").exists(),
        "a signed zone was written"
    );
    f.failure_audited("sign", rv);
    f.consistent("after the token was unplugged");

    // Back within the reopens' backoff (0.25 + 0.5 + 1 s): the run goes on.
    std::fs::remove_file(f.log()).expect("clear the fault log");
    let r = unplugged(&f, Duration::from_secs(2), Some(Duration::from_millis(400)));
    assert!(!f.injected().is_empty(), "the token was never away");
    let out = r.ok();
    assert!(sessions_reopened(&out) >= 1, "{out}");
    f.p.run(&["verify", "zone.signed", "-o", ZONE]).ok();
    let ldns = Command::new("ldns-verify-zone")
        .arg(f.p.file("zone.signed"))
        .output()
        .expect("run ldns-verify-zone");
    assert!(ldns.status.success(), "ldns-verify-zone rejects the zone");
    f.consistent("after the token came back");
}
