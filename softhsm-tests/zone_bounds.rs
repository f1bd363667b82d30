//! Zone input is bounded: a zone file or `$INCLUDE` that is not a regular
//! file (a FIFO, a device, a directory) is refused before a byte is read,
//! each file and all files of a zone together stay within the limits of
//! `[zone]` in dnsseal.toml, and the zone is read before the token is
//! touched, so a bad input never holds the token lock (and fails the same
//! with a PKCS#11 module that cannot even be loaded).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;

const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";

/// A project with a CSK for example. whose configuration names a PKCS#11
/// module that does not exist: any use of the token fails with exit 5.
fn project_without_module() -> Project {
    let p = Project::new();
    p.create_key("example", "csk", "13");
    p.use_missing_module();
    p
}

/// Runs `dnsseal sign example.zone`; fails the test if it has not ended
/// within 20 seconds (then it is killed). Returns the exit code, stderr
/// and how long it took.
fn sign_within_seconds(p: &Project) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut child = p
        .command()
        .args(["sign", "example.zone", "-o", "example"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("dnsseal sign still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn includes_of_dev_zero_a_fifo_or_a_directory_fail_at_once_without_the_token() {
    let p = project_without_module();
    let fifo = p.file("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let dir = p.file("somedir");
    std::fs::create_dir(&dir).unwrap();
    for target in [
        "/dev/zero".to_string(),
        fifo.display().to_string(),
        dir.display().to_string(),
    ] {
        std::fs::write(
            p.file("example.zone"),
            format!("{HEAD}$INCLUDE {target}\nwww A 192.0.2.2\n"),
        )
        .unwrap();
        let (code, err, took) = sign_within_seconds(&p);
        // Bad input (3), not "module cannot be loaded" (5): the zone is
        // read first.
        assert_eq!(code, 3, "{target}: {err}");
        assert!(err.contains("example.zone:6"), "{target}: {err}");
        assert!(err.contains(&target), "{target}: {err}");
        assert!(err.contains("not a regular file"), "{target}: {err}");
        assert!(took < Duration::from_secs(10), "{target}: {took:?}");
    }
    // The zone file itself.
    std::fs::remove_file(p.file("example.zone")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(p.file("example.zone"))
        .status()
        .unwrap()
        .success());
    let (code, err, _) = sign_within_seconds(&p);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// 2,000 includes of one 38 KB file: 76 MB to read, far more to hold.
/// With `max_total_bytes` at 8 MB it stops after about 200 of them, with
/// an error naming the limit and the line of the include that crossed it.
#[test]
fn two_thousand_includes_stop_at_the_total_limit() {
    let p = Project::new();
    p.create_key("example", "csk", "13");
    let part: String = (0..1_900)
        .map(|i| format!("h{i} 300 IN A 192.0.2.{}\n", i % 250))
        .collect();
    assert!(part.len() > 38_000, "{}", part.len());
    std::fs::write(p.file("part"), &part).unwrap();
    let main = format!("{HEAD}{}", "$INCLUDE part\n".repeat(2_000));
    std::fs::write(p.file("example.zone"), &main).unwrap();
    let conf = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();
    std::fs::write(
        p.file("dnsseal.toml"),
        format!("{conf}\n[zone]\nmax_total_bytes = 8000000\n"),
    )
    .unwrap();
    let (code, err, took) = sign_within_seconds(&p);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("8000000"), "{err}");
    assert!(err.contains("max_total_bytes"), "{err}");
    // The includes that fit after the zone file itself; the next one is
    // refused, at its line (the first include is on line 6).
    let fit = (8_000_000 - main.len()) / part.len();
    let line = 5 + fit + 1;
    assert!(err.contains(&format!("example.zone:{line}")), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!p.file("example.zone.signed").exists());

    // A per-file limit below the include's size names it.
    std::fs::write(
        p.file("dnsseal.toml"),
        format!("{conf}\n[zone]\nmax_file_bytes = 30000\n"),
    )
    .unwrap();
    let (code, err, _) = sign_within_seconds(&p);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("max_file_bytes"), "{err}");
    assert!(err.contains("example.zone:6"), "{err}");
}
