//! Bad input: a clear error, the documented exit code, and nothing written
//! (no key record, no token object, no audit record for input that is
//! refused before any operation starts).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{field, Project};

/// Keystore bytes, audit log and token objects, to compare before/after.
fn snapshot(p: &Project) -> (Vec<serde_json::Value>, Vec<String>, Vec<String>) {
    (p.keys(), p.audit_lines(), p.token_private_ids())
}

#[test]
fn refused_arguments_change_nothing() {
    let p = Project::new();
    let before = snapshot(&p);
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "RSASHA1",
            ],
            "unknown or unsupported DNSSEC algorithm 'RSASHA1'",
        ),
        (
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "7",
            ],
            "algorithm '7'",
        ),
        (
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "8",
                "--bits",
                "1024",
            ],
            "RSA key size 1024 is out of range",
        ),
        (
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "RSASHA512",
                "--bits",
                "8192",
            ],
            "out of range",
        ),
        (
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "13",
                "--bits",
                "384",
            ],
            "always 256 bits",
        ),
        (
            &[
                "keys",
                "create",
                "exa mple.com",
                "--role",
                "ksk",
                "--algorithm",
                "13",
            ],
            "not a domain name",
        ),
        (
            &[
                "keys",
                "create",
                "a..b",
                "--role",
                "ksk",
                "--algorithm",
                "13",
            ],
            "empty label",
        ),
        (
            &[
                "keys",
                "create",
                &"x".repeat(64),
                "--role",
                "ksk",
                "--algorithm",
                "13",
            ],
            "not a domain name",
        ),
        (
            &["keys", "ds", "example.com", "--digest", "md5"],
            "unknown DS digest type",
        ),
        (&["--now", "tomorrow", "keys", "list"], "is not a time"),
    ];
    for (args, message) in cases {
        let err = p.run(args).fails(3);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(err.starts_with("dnsseal: error: "), "{err}");
    }
    // Unknown role is a usage error from the argument parser.
    p.run(&[
        "keys",
        "create",
        "example.com",
        "--role",
        "boss",
        "--algorithm",
        "13",
    ])
    .fails(2);
    assert_eq!(snapshot(&p), before, "a refused command wrote something");
}

#[test]
fn a_wrong_pin_creates_nothing() {
    let p = Project::new();
    let (keys, audit, token) = snapshot(&p);
    let err = p
        .run_with_pin(
            "0000",
            &[
                "keys",
                "create",
                "example.com",
                "--role",
                "both",
                "--algorithm",
                "13",
            ],
        )
        .fails(7);
    assert!(err.contains("refused the PIN"), "{err}");
    assert!(!err.contains("0000"), "the PIN is in the error: {err}");
    assert_eq!(p.keys(), keys);
    assert_eq!(p.token_private_ids(), token);
    // Only the failed attempt is recorded.
    let after = p.audit_lines();
    assert_eq!(after.len(), audit.len() + 1);
    assert!(after.last().unwrap().contains("\"outcome\":\"failed\""));
}

#[test]
fn a_missing_pin_is_asked_for_not_guessed() {
    let p = Project::new();
    let out = p
        .command()
        .env_remove("DNSSEAL_PIN")
        .args([
            "keys",
            "create",
            "example.com",
            "--role",
            "ksk",
            "--algorithm",
            "13",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--pin-file") && err.contains("DNSSEAL_PIN"),
        "{err}"
    );
    assert!(p.keys().is_empty());
    // A PIN file works, and an empty one is refused.
    let pin_file = p.file("pin");
    std::fs::write(&pin_file, format!("{}\n", common::PIN)).unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_file = |args: &[&str]| {
        p.command()
            .env_remove("DNSSEAL_PIN")
            .arg("--pin-file")
            .arg(&pin_file)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(with_file(&[
        "keys",
        "create",
        "example.com",
        "--role",
        "ksk",
        "--algorithm",
        "13"
    ])
    .status
    .success());
    std::fs::write(&pin_file, "").unwrap();
    assert_eq!(
        with_file(&[
            "keys",
            "create",
            "example.com",
            "--role",
            "zsk",
            "--algorithm",
            "13"
        ])
        .status
        .code(),
        Some(7)
    );
    assert_eq!(p.keys().len(), 1);
}

#[test]
fn missing_module_absent_token_and_missing_config_have_their_own_codes() {
    let p = Project::new();
    let conf = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();

    p.use_missing_module();
    let err = p.run(&["token", "info"]).fails(5);
    assert!(
        err.contains("cannot load PKCS#11 module /nonexistent/libpkcs11.so"),
        "{err}"
    );

    std::fs::write(
        p.file("dnsseal.toml"),
        conf.replace("label = \"dnsseal\"", "label = \"elsewhere\""),
    )
    .unwrap();
    let err = p.run(&["token", "info"]).fails(6);
    assert!(
        err.contains("no token with label 'elsewhere'") && err.contains("'dnsseal'"),
        "{err}"
    );

    std::fs::write(
        p.file("dnsseal.toml"),
        conf.replace("version = 1", "version = 1\nbogus = true"),
    )
    .unwrap();
    let err = p.run(&["keys", "list"]).fails(4);
    assert!(err.contains("bogus"), "{err}");

    let empty = Project::empty();
    let err = empty.run(&["keys", "list"]).fails(4);
    assert!(err.contains("run `dnsseal init` first"), "{err}");
}

#[test]
fn init_twice_is_refused_and_changes_nothing() {
    let p = Project::new();
    let conf = std::fs::read(p.file("dnsseal.toml")).unwrap();
    let err = p.run(&["init", "--softhsm"]).fails(10);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(p.file("dnsseal.toml")).unwrap(), conf);
    assert_eq!(p.audit_lines().len(), 1);
    // init without a token choice says what to give.
    let e = Project::empty();
    let err = e.run(&["init"]).fails(3);
    assert!(
        err.contains("--softhsm") && err.contains("--profile"),
        "{err}"
    );
    assert!(!e.file("dnsseal.toml").exists());
}

#[test]
fn broken_bind_key_files_name_file_and_line() {
    let p = Project::new();
    let base = p.file("Kbad.example.+013+00001");
    let key = format!("{}.key", base.display());
    let private = format!("{}.private", base.display());
    std::fs::write(&key, "bad.example. IN DNSKEY 257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\n").unwrap();
    let cases = [
        (
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: not*base64\n",
            ":3: PrivateKey is not base64",
        ),
        (
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nthis line is wrong\n",
            ":3: expected 'Field: value'",
        ),
        (
            "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n",
            ":2: algorithm RSASHA256 does not match",
        ),
        ("Algorithm: 13\n", "no Private-key-format"),
        (
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n",
            "must be 32 octets",
        ),
    ];
    for (text, message) in cases {
        std::fs::write(&private, text).unwrap();
        let err = p
            .run(&["keys", "import-bind", "bad.example", &private, "--yes"])
            .fails(3);
        assert!(
            err.contains(message) && err.contains("Kbad.example.+013+00001.private"),
            "{message}: {err}"
        );
    }
    // The zone must be the key's owner; the file name must end in .private.
    let err = p
        .run(&["keys", "import-bind", "other.example", &private, "--yes"])
        .fails(3);
    assert!(err.contains("belongs to bad.example."), "{err}");
    let err = p
        .run(&["keys", "import-bind", "bad.example", &key, "--yes"])
        .fails(3);
    assert!(err.contains("ends in .private"), "{err}");
    assert!(p.keys().is_empty());
    assert!(p.token_private_ids().is_empty());
    let _ = field;
}

/// Output into a pipe nobody reads (a JSON report, a key list, DS
/// records, the audit export, the token's description) is an error with a
/// message and exit code 1, not a panic.
#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    let p = Project::new();
    p.create_key("example", "both", "13");
    for (args, message) in [
        (
            &["--json", "keys", "list"][..],
            "cannot write the JSON report to standard output",
        ),
        (&["keys", "list"][..], "cannot write to standard output"),
        (
            &["keys", "ds", "example"][..],
            "cannot write to standard output",
        ),
        (
            &["keys", "dnskey", "example"][..],
            "cannot write to standard output",
        ),
        (&["audit", "export"][..], "cannot write to standard output"),
        (&["token", "info"][..], "cannot write to standard output"),
    ] {
        // The pipe's reader is gone before the command starts: closing it
        // after the spawn raced with a quick command, whose output could
        // land in the pipe's buffer first (exit 0 on a loaded machine).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = p
            .command()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(message) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
