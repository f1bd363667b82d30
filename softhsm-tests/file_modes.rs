//! The files dnsseal makes for itself (keystore, audit log, token lock,
//! configuration, SoftHSM directory) are private from the moment they are
//! created, whatever the umask, and a symbolic link planted where one of
//! them goes is refused, its target left as it was.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Project;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

const CREATE_KEY: [&str; 7] = [
    "keys",
    "create",
    "example",
    "--role",
    "csk",
    "--algorithm",
    "13",
];

#[test]
fn files_are_private_from_creation_whatever_the_umask() {
    common::require_softhsm();
    let p = Project::empty();
    p.run_under_umask("000", &["init", "--softhsm"]).ok();
    p.run_under_umask("000", &CREATE_KEY).ok();
    for name in [
        "dnsseal.toml",
        "keystore.sqlite",
        "keystore.sqlite.lock",
        "audit.log",
    ] {
        assert_eq!(mode(&p.file(name)), 0o600, "{name}");
    }
    // SQLite's journal files take the keystore's mode.
    for entry in std::fs::read_dir(p.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
        }
    }
    assert_eq!(mode(&p.file("softhsm")), 0o700);
    assert_eq!(mode(&p.file("softhsm/tokens")), 0o700);
    // Signed output and exports too.
    std::fs::write(
        p.file("example.zone"),
        "$ORIGIN example.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
    )
    .unwrap();
    p.run_under_umask(
        "000",
        &[
            "sign",
            "example.zone",
            "-o",
            "example",
            "-f",
            "example.signed",
        ],
    )
    .ok();
    p.run_under_umask("000", &["audit", "export", "-o", "export.jsonl"])
        .ok();
    for name in [
        "example.signed",
        "example.signed.dnsseal-state",
        "export.jsonl",
    ] {
        assert_eq!(mode(&p.file(name)), 0o600, "{name}");
    }
}

/// A file outside the project with the given contents, mode 0644.
fn victim(dir: &Path, contents: &[u8]) -> std::path::PathBuf {
    let path = dir.join("victim");
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[test]
fn a_link_planted_at_the_lock_or_the_audit_log_is_refused() {
    let p = Project::new();
    p.run(&CREATE_KEY).ok();
    let outside = tempfile::tempdir().unwrap();

    // The token lock, pointing at a file the attacker wants truncated or
    // created.
    let target = victim(outside.path(), b"precious");
    std::fs::remove_file(p.file("keystore.sqlite.lock")).unwrap();
    std::os::unix::fs::symlink(&target, p.file("keystore.sqlite.lock")).unwrap();
    let err = p.run(&CREATE_KEY).fails(10);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(err.contains("keystore.sqlite.lock"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(mode(&target), 0o644);
    std::fs::remove_file(p.file("keystore.sqlite.lock")).unwrap();

    // The audit log moved away and linked back: the chain is whole, but
    // records would land in a file dnsseal does not own.
    let log = std::fs::read(p.file("audit.log")).unwrap();
    let moved = victim(outside.path(), &log);
    std::fs::remove_file(p.file("audit.log")).unwrap();
    std::os::unix::fs::symlink(&moved, p.file("audit.log")).unwrap();
    let err = p.run(&CREATE_KEY).fails(10);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&moved).unwrap(), log);
    assert_eq!(p.keys().len(), 1, "no key was made");
}

#[test]
fn a_link_planted_at_the_keystore_stops_init() {
    common::require_softhsm();
    let p = Project::empty();
    let outside = tempfile::tempdir().unwrap();
    // Dangling: following it would create the attacker's file.
    let target = outside.path().join("made-by-dnsseal");
    std::os::unix::fs::symlink(&target, p.file("keystore.sqlite")).unwrap();
    let err = p.run(&["init", "--softhsm"]).fails(10);
    assert!(err.contains("keystore.sqlite"), "{err}");
    assert!(!target.exists());
    assert!(!p.file("dnsseal.toml").exists());
}
