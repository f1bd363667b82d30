//! The audit log of a real run: tampering with a copy is caught at the
//! right line, cutting off the end is caught by the keystore's head, and
//! exports verify.

mod common;

use common::{field, Project};

/// A project with a log of some length: init, creates, a refused delete,
/// a removal and a restore.
fn busy_project() -> Project {
    let p = Project::new();
    p.create_key("example.com", "both", "13");
    p.create_key("example.org", "csk", common::ed25519_or("13"));
    let standby = p
        .keys()
        .into_iter()
        .find(|k| field(k, "state") == "published")
        .map(|k| field(&k, "key_tag").to_string())
        .unwrap();
    let active = p
        .keys()
        .into_iter()
        .find(|k| field(k, "state") == "active")
        .map(|k| field(&k, "key_tag").to_string())
        .unwrap();
    p.run(&["keys", "delete", "example.com", "--tag", &active])
        .fails(10);
    p.run(&["keys", "delete", "example.com", "--tag", &standby])
        .ok();
    p.run(&["keys", "restore", "example.com", "--tag", &standby])
        .ok();
    assert_eq!(p.audit_lines().len(), 8, "{:#?}", p.audit_lines());
    p
}

fn verify_copy(p: &Project, lines: &[String]) -> (i32, String) {
    let copy = p.file("copy.log");
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    let r = p.run(&["audit", "verify", copy.to_str().unwrap()]);
    (r.code, r.stderr)
}

#[test]
fn edits_deletions_insertions_and_reordering_are_caught_at_their_line() {
    let p = busy_project();
    let orig = p.audit_lines();
    assert_eq!(verify_copy(&p, &orig).0, 0);

    let mut edited = orig.clone();
    edited[2] = edited[2].replace("\"new_state\":\"active\"", "\"new_state\":\"removed\"");
    assert_ne!(edited[2], orig[2]);
    let (code, err) = verify_copy(&p, &edited);
    assert_eq!(code, 11);
    assert!(
        err.contains("broken at line 3") && err.contains("edited"),
        "{err}"
    );

    let mut deleted = orig.clone();
    deleted.remove(3);
    let (code, err) = verify_copy(&p, &deleted);
    assert_eq!(code, 11);
    assert!(err.contains("broken at line 4"), "{err}");

    let mut reordered = orig.clone();
    reordered.swap(4, 5);
    let (code, err) = verify_copy(&p, &reordered);
    assert_eq!(code, 11);
    assert!(err.contains("broken at line 5"), "{err}");

    let mut inserted = orig.clone();
    inserted.insert(2, orig[1].clone());
    let (code, err) = verify_copy(&p, &inserted);
    assert_eq!(code, 11);
    assert!(err.contains("broken at line 3"), "{err}");

    // A changed operator, a changed time: any field is covered.
    for (from, to) in [
        ("\"operator\":\"", "\"operator\":\"x"),
        ("\"time\":\"2", "\"time\":\"1"),
    ] {
        let mut e = orig.clone();
        e[6] = e[6].replacen(from, to, 1);
        let (code, err) = verify_copy(&p, &e);
        assert_eq!(code, 11, "{from}");
        assert!(err.contains("broken at line 7"), "{err}");
    }
}

#[test]
fn cutting_records_off_the_configured_log_is_caught() {
    let p = busy_project();
    p.run(&["audit", "verify"]).ok();
    let mut lines = p.audit_lines();
    lines.pop();
    std::fs::write(p.file("audit.log"), lines.join("\n") + "\n").unwrap();
    let err = p.run(&["audit", "verify"]).fails(11);
    assert!(err.contains("cut off the end"), "{err}");
    // The shortened copy on its own still chains: only the head catches it,
    // also when the configured log is named on the command line.
    let copy = p.file("short.log");
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    p.run(&["audit", "verify", copy.to_str().unwrap()]).ok();
    let err = p
        .run(&["audit", "verify", p.file("audit.log").to_str().unwrap()])
        .fails(11);
    assert!(err.contains("cut off the end"), "{err}");
    // A log missing its first records is no excerpt unless asked.
    let headless = p.file("headless.log");
    std::fs::write(&headless, lines[2..].join("\n") + "\n").unwrap();
    p.run(&["audit", "verify", headless.to_str().unwrap()])
        .fails(11);
    // Removing the first line breaks the chain of the configured log.
    std::fs::write(p.file("audit.log"), lines[1..].join("\n") + "\n").unwrap();
    let err = p.run(&["audit", "verify"]).fails(11);
    assert!(err.contains("line 1"), "{err}");
    // Nothing happens that could not be audited: a key-changing command
    // refuses to start on a broken log, and creates no key.
    let err = p
        .run(&[
            "keys",
            "create",
            "x.example",
            "--role",
            "zsk",
            "--algorithm",
            "13",
        ])
        .fails(11);
    assert!(err.contains("is broken at line 1"), "{err}");
    assert!(p.keys().iter().all(|k| field(k, "zone") != "x.example."));
    // Nor on a log cut short.
    std::fs::write(p.file("audit.log"), lines.join("\n") + "\n").unwrap();
    let err = p
        .run(&[
            "keys",
            "create",
            "x.example",
            "--role",
            "zsk",
            "--algorithm",
            "13",
        ])
        .fails(11);
    assert!(err.contains("no longer holds record 8"), "{err}");
    assert!(p.keys().iter().all(|k| field(k, "zone") != "x.example."));
}

#[test]
fn exports_verify_and_carry_the_chain() {
    let p = busy_project();
    let out = p.file("export.jsonl");
    p.run(&["audit", "export", "-o", out.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(p.file("audit.log")).unwrap()
    );
    p.run(&["audit", "verify", out.to_str().unwrap()]).ok();

    let csv = p.run(&["audit", "export", "--format", "csv"]).ok();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "seq,time,operator,command,zone,key_tag,key_id,old_state,new_state,outcome,detail,prev,hash");
    assert_eq!(rows.len(), 9);
    assert!(rows[1].starts_with("1,"));
    assert!(
        rows.iter().any(|r| r.contains(",failed,")),
        "the refused delete is in the export"
    );

    // An excerpt made with --since verifies as an excerpt anchored to the
    // record before it, and only when asked to: a log that does not start
    // at record 1 is otherwise a log with its head cut off.
    let far_future = p
        .run(&["audit", "export", "--since", "20991231000000"])
        .ok();
    assert!(far_future.is_empty());
    p.run(&[
        "--now",
        "20300101000000",
        "keys",
        "create",
        "late.example",
        "--role",
        "csk",
        "--algorithm",
        "13",
    ])
    .ok();
    let part = p.file("part.jsonl");
    p.run(&[
        "audit",
        "export",
        "--since",
        "20300101000000",
        "-o",
        part.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(&part).unwrap().lines().count(), 1);
    let err = p
        .run(&["audit", "verify", part.to_str().unwrap()])
        .fails(11);
    assert!(err.contains("line 1"), "{err}");
    let verdict = p
        .run(&["audit", "verify", "--excerpt", part.to_str().unwrap()])
        .ok();
    assert!(verdict.contains("excerpt intact"), "{verdict}");

    // A broken log is not exported.
    let mut lines = p.audit_lines();
    lines[3] = lines[3].replace("\"outcome\":\"ok\"", "\"outcome\":\"failed\"");
    std::fs::write(p.file("audit.log"), lines.join("\n") + "\n").unwrap();
    let err = p.run(&["audit", "export"]).fails(11);
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn failed_attempts_are_audited_without_the_pin() {
    let p = Project::new();
    let wrong = "98765432";
    p.run_with_pin(
        wrong,
        &[
            "keys",
            "create",
            "example.com",
            "--role",
            "ksk",
            "--algorithm",
            "13",
        ],
    )
    .fails(7);
    let last = p.audit_lines().last().unwrap().clone();
    let rec: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(rec["outcome"], "failed");
    assert_eq!(rec["command"], "keys create");
    assert_eq!(rec["zone"], "example.com.");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .contains("CKR_PIN_INCORRECT"),
        "{last}"
    );
    let all = std::fs::read_to_string(p.file("audit.log")).unwrap();
    assert!(
        !all.contains(wrong) && !all.contains(common::PIN),
        "a PIN reached the audit log"
    );
    p.run(&["audit", "verify"]).ok();
}

/// Clears the audit head the keystore remembers, as whoever can write the
/// keystore can.
fn forget_head(p: &Project) {
    let conn = rusqlite::Connection::open(p.file("keystore.sqlite")).unwrap();
    conn.execute("DELETE FROM meta WHERE name = 'audit_head'", [])
        .unwrap();
}

/// A removed audit history is not started again quietly: with the log
/// gone (with or without the head the keystore remembers) every command
/// refuses, until `audit reset --yes --reason` starts a new chain whose
/// first record says why; `audit verify` and the export name it.
#[test]
fn a_removed_history_is_refused_until_an_audited_reset() {
    let p = Project::new();
    p.create_key("example", "csk", "13");
    let create_zsk = [
        "keys",
        "create",
        "example",
        "--role",
        "zsk",
        "--algorithm",
        "13",
    ];
    // The log deleted; the keystore still remembers its head.
    std::fs::remove_file(p.file("audit.log")).unwrap();
    let err = p.run(&create_zsk).fails(11);
    assert!(err.contains("audit.log"), "{err}");
    // The log and the head both gone.
    forget_head(&p);
    let err = p.run(&create_zsk).fails(11);
    assert!(err.contains("history was removed"), "{err}");
    assert!(err.contains("audit reset --yes --reason"), "{err}");
    assert!(!p.file("audit.log").exists(), "no new chain was started");
    let err = p.run(&["audit", "verify"]).fails(11);
    assert!(err.contains("history was removed"), "{err}");
    // An empty log is no better.
    std::fs::write(p.file("audit.log"), b"").unwrap();
    p.run(&create_zsk).fails(11);
    assert_eq!(p.keys().len(), 1, "no key was made");

    // The reset: only with --yes and a reason.
    let err = p
        .run(&["audit", "reset", "--reason", "disk replaced"])
        .fails(10);
    assert!(err.contains("--yes"), "{err}");
    p.run(&["audit", "reset", "--yes", "--reason", " "])
        .fails(3);
    p.run(&[
        "audit",
        "reset",
        "--yes",
        "--reason",
        "log lost with the old disk",
    ])
    .ok();
    let lines = p.audit_lines();
    assert_eq!(lines.len(), 1);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["command"], "audit reset");
    let detail = first["detail"].as_str().unwrap();
    assert!(detail.contains("log lost with the old disk"), "{detail}");
    assert!(detail.contains("keys in the keystore: 1"), "{detail}");

    // Commands run again, the chain goes on from the reset.
    p.run(&create_zsk).ok();
    let out = p.run(&["audit", "verify"]).ok();
    assert!(out.contains("matches the keystore"), "{out}");
    assert!(out.contains("begins with an audit reset"), "{out}");
    assert!(out.contains("log lost with the old disk"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&p.run(&["--json", "audit", "verify"]).ok()).unwrap();
    assert!(json["reset"]["detail"]
        .as_str()
        .unwrap()
        .contains("log lost"));
    let export = p.run(&["audit", "export"]).ok();
    assert!(export.lines().next().unwrap().contains("\"audit reset\""));

    // A log with records is never reset.
    let err = p
        .run(&["audit", "reset", "--yes", "--reason", "again"])
        .fails(10);
    assert!(err.contains("holds records"), "{err}");
    assert_eq!(p.audit_lines().len(), lines.len() + 1);
}

/// `audit verify --pubkey KEY FILE` in an empty directory: nothing but the
/// export and the audit public key.
fn verify_elsewhere(key: &std::path::Path, file: &[String], extra: &[&str]) -> (i32, String) {
    let elsewhere = Project::empty();
    let copy = elsewhere.file("export.jsonl");
    std::fs::write(&copy, file.join("\n") + "\n").unwrap();
    let mut args = vec![
        "audit",
        "verify",
        "--pubkey",
        key.to_str().unwrap(),
        copy.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = elsewhere.run(&args);
    (r.code, format!("{}{}", r.stdout, r.stderr))
}

/// The hash a checkpoint run printed.
fn checkpoint_hash(out: &str) -> String {
    out.split_whitespace()
        .skip_while(|w| *w != "hash")
        .nth(1)
        .unwrap()
        .to_string()
}

/// Signed checkpoints: the audit key is made in the token once, signs the
/// chain's head on `audit checkpoint`, and an export checks on another
/// machine with only the audit public key; edits, deletions, swaps and a
/// tail cut off with its last checkpoint fail there, and so does another
/// audit key. The signature checks with OpenSSL alone.
#[test]
fn checkpoints_signed_in_the_token_verify_an_export_elsewhere() {
    let p = busy_project();
    let err = p.run(&["audit", "checkpoint"]).fails(10);
    assert!(err.contains("audit key --create"), "{err}");
    p.run(&["audit", "key", "--create", "-o", "audit-key.pem"])
        .ok();
    p.run(&["audit", "key", "--create"]).fails(10);
    let key = p.file("audit-key.pem");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    // The audit key is neither a zone's key nor an orphan on the token.
    let out = p.run(&["keys", "reconcile"]).ok();
    assert!(!out.contains("orphan") && !out.contains("ORPHAN"), "{out}");
    let first = checkpoint_hash(&p.run(&["audit", "checkpoint"]).ok());
    p.run(&[
        "keys",
        "delete",
        "example.org",
        "--tag",
        &csk_tag(&p),
        "--force",
    ])
    .ok();
    let second = checkpoint_hash(&p.run(&["audit", "checkpoint"]).ok());
    p.run(&["keys", "restore", "example.org", "--tag", &csk_tag(&p)])
        .ok();
    p.run(&["audit", "export", "-o", "export.jsonl"]).ok();
    let lines: Vec<String> = std::fs::read_to_string(p.file("export.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();

    let (code, out) = verify_elsewhere(&key, &lines, &["--checkpoint", &second]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact and signed"), "{out}");
    assert!(out.contains("2 checkpoint(s)"), "{out}");
    assert!(out.contains("1 record(s) after it"), "{out}");

    // One byte changed, a record removed, two swapped: the line is named.
    let mut edited = lines.clone();
    edited[2] = edited[2].replacen("example.com", "example.net", 1);
    let (code, out) = verify_elsewhere(&key, &edited, &[]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("line 3"), "{out}");
    let mut removed = lines.clone();
    removed.remove(4);
    let (code, out) = verify_elsewhere(&key, &removed, &[]);
    assert_eq!((code, out.contains("line 5")), (11, true), "{out}");
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    let (code, out) = verify_elsewhere(&key, &swapped, &[]);
    assert_eq!((code, out.contains("line 6")), (11, true), "{out}");
    // The tail cut off with the last checkpoint: whole in itself, but it
    // does not reach the checkpoint the transcript names.
    let at = lines.iter().position(|l| l.contains(&second)).unwrap();
    let cut = &lines[..at];
    let (code, out) = verify_elsewhere(&key, cut, &["--checkpoint", &second]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("does not reach checkpoint"), "{out}");
    let (code, out) = verify_elsewhere(&key, cut, &["--checkpoint", &first]);
    assert_eq!(code, 0, "{out}");

    // Another project's audit key.
    let other = Project::new();
    other
        .run(&["audit", "key", "--create", "-o", "other.pem"])
        .ok();
    let (code, out) = verify_elsewhere(&other.file("other.pem"), &lines, &[]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("not by the key given"), "{out}");

    // OpenSSL alone: the signed text and the DER signature.
    if std::path::Path::new("/usr/bin/openssl").exists() {
        let record: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
        let cp = &record["checkpoint"];
        let msg = format!(
            "dnsseal audit checkpoint\nseq {}\nhash {}\n",
            cp["seq"],
            cp["hash"].as_str().unwrap()
        );
        std::fs::write(p.file("msg"), msg).unwrap();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cp["signature"].as_str().unwrap())
            .unwrap();
        std::fs::write(p.file("sig.der"), der).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&key)
            .arg("-signature")
            .arg(p.file("sig.der"))
            .arg(p.file("msg"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn csk_tag(p: &Project) -> String {
    p.keys()
        .into_iter()
        .find(|k| field(k, "zone") == "example.org.")
        .map(|k| field(&k, "key_tag").to_string())
        .unwrap()
}
