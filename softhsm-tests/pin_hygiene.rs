//! Where PINs come from and what becomes of them in a running process:
//! PIN files and systemd credentials checked before they are read, the
//! order of the sources, and a logged-in `dnsseal` that leaves no core
//! dump, cannot be traced by its own user and holds its PIN once.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Project;

/// The uid and gid a test drops to when it runs as root (`nobody`).
const OTHER_USER: u32 = 65534;

/// Writes a PIN file with exactly this mode (whatever the umask).
fn pin_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0)
}

/// `keys create ZONE --role ksk` with the PIN from `--pin-file FILE` and
/// no PIN variable.
fn create_with_pin_file(p: &Project, file: &Path, zone: &str) -> Output {
    p.command()
        .env_remove("DNSSEAL_PIN")
        .arg("--pin-file")
        .arg(file)
        .args(["keys", "create", zone, "--role", "ksk", "--algorithm", "13"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn code_and_stderr(out: &Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pin_files_open_to_group_or_others_are_refused() {
    let p = Project::new();
    for (i, mode) in [0o666, 0o640, 0o604, 0o620, 0o602].into_iter().enumerate() {
        let file = p.file(&format!("pin-{mode:o}"));
        pin_file(&file, &format!("{}\n", common::PIN), mode);
        let (code, err) =
            code_and_stderr(&create_with_pin_file(&p, &file, &format!("z{i}.example")));
        assert_eq!(code, Some(7), "mode {mode:o} was not refused: {err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains("chmod 600"),
            "mode {mode:o}: {err}"
        );
    }
    assert!(
        p.keys().is_empty(),
        "a key was made with a refused PIN file"
    );
    for (i, mode) in [0o600, 0o400].into_iter().enumerate() {
        let file = p.file(&format!("pin-{mode:o}"));
        pin_file(&file, &format!("{}\n", common::PIN), mode);
        let (code, err) =
            code_and_stderr(&create_with_pin_file(&p, &file, &format!("ok{i}.example")));
        assert_eq!(code, Some(0), "mode {mode:o} was refused: {err}");
    }
    assert_eq!(p.keys().len(), 2);
}

/// Runs the command and fails the test (after killing it) when it has
/// not ended within `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dnsseal still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_pin_file_that_is_not_a_regular_file_is_refused_at_once() {
    let p = Project::new();
    let fifo = p.file("pin.fifo");
    let made = Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");
    let dir = p.file("pin.dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for file in [&fifo, &dir] {
        let mut cmd = p.command();
        cmd.env_remove("DNSSEAL_PIN")
            .arg("--pin-file")
            .arg(file)
            .args([
                "keys",
                "create",
                "example.com",
                "--role",
                "ksk",
                "--algorithm",
                "13",
            ]);
        let (code, err) = code_and_stderr(&output_within(cmd, Duration::from_secs(20)));
        assert_eq!(code, Some(7), "{}: {err}", file.display());
        assert!(
            err.contains(&file.display().to_string()) && err.contains("not a regular file"),
            "{err}"
        );
    }
    assert!(p.keys().is_empty());
}

#[test]
fn a_pin_file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: only root can give a file to another user here");
        return;
    }
    let p = Project::new();
    let file = p.file("pin");
    pin_file(&file, &format!("{}\n", common::PIN), 0o600);
    std::os::unix::fs::chown(&file, Some(OTHER_USER), Some(OTHER_USER)).unwrap();
    let (code, err) = code_and_stderr(&create_with_pin_file(&p, &file, "example.com"));
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("owned by"),
        "{err}"
    );
    assert!(p.keys().is_empty());
}

/// A directory standing in for systemd's `$CREDENTIALS_DIRECTORY`.
fn credentials(entries: &[(&str, &str, u32)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, mode) in entries {
        pin_file(&dir.path().join(name), text, *mode);
    }
    dir
}

fn create_with(
    p: &Project,
    creds: &Path,
    pin_var: Option<&str>,
    file: Option<&Path>,
    zone: &str,
) -> Output {
    let mut cmd = p.command();
    cmd.env("CREDENTIALS_DIRECTORY", creds).stdin(Stdio::null());
    match pin_var {
        Some(v) => cmd.env("DNSSEAL_PIN", v),
        None => cmd.env_remove("DNSSEAL_PIN"),
    };
    if let Some(f) = file {
        cmd.arg("--pin-file").arg(f);
    }
    cmd.args(["keys", "create", zone, "--role", "ksk", "--algorithm", "13"])
        .output()
        .unwrap()
}

#[test]
fn the_pin_comes_from_the_file_then_the_credential_then_the_variable() {
    let p = Project::new();
    let right = format!("{}\n", common::PIN);
    // The credential wins over the variable.
    let creds = credentials(&[("dnsseal-pin", &right, 0o400)]);
    let (code, err) = code_and_stderr(&create_with(
        &p,
        creds.path(),
        Some("0000"),
        None,
        "a.example",
    ));
    assert_eq!(code, Some(0), "the credential was not used: {err}");
    let wrong = credentials(&[("dnsseal-pin", "0000\n", 0o400)]);
    let (code, err) = code_and_stderr(&create_with(
        &p,
        wrong.path(),
        Some(common::PIN),
        None,
        "b.example",
    ));
    assert_eq!(code, Some(7), "the variable won over the credential: {err}");
    assert!(err.contains("refused the PIN"), "{err}");
    // The PIN file wins over the credential.
    let file = p.file("pin");
    pin_file(&file, &right, 0o600);
    let (code, err) = code_and_stderr(&create_with(
        &p,
        wrong.path(),
        None,
        Some(&file),
        "c.example",
    ));
    assert_eq!(code, Some(0), "the PIN file was not used: {err}");
    // A credential directory without dnsseal-pin: on to the variable.
    let other = credentials(&[("something-else", "0000\n", 0o400)]);
    let (code, err) = code_and_stderr(&create_with(
        &p,
        other.path(),
        Some(common::PIN),
        None,
        "d.example",
    ));
    assert_eq!(code, Some(0), "{err}");
    // With no source at all the error names every one of them.
    let (code, err) = code_and_stderr(&create_with(&p, other.path(), None, None, "e.example"));
    assert_eq!(code, Some(7), "{err}");
    for source in [
        "--pin-file",
        "dnsseal-pin",
        "CREDENTIALS_DIRECTORY",
        "DNSSEAL_PIN",
    ] {
        assert!(err.contains(source), "{source} not named: {err}");
    }
    let zones: Vec<String> = p
        .keys()
        .iter()
        .map(|k| common::field(k, "zone").as_str().unwrap().to_string())
        .collect();
    assert_eq!(zones, ["a.example.", "c.example.", "d.example."]);
}

#[test]
fn a_credential_as_systemd_makes_it_is_read_and_an_open_one_refused() {
    let p = Project::new();
    let right = format!("{}\n", common::PIN);
    // systemd writes credentials 0400 and grants the service user read
    // access with an ACL, whose mask stat shows in the group bits.
    let acl_like = credentials(&[("dnsseal-pin", &right, 0o440)]);
    let (code, err) = code_and_stderr(&create_with(&p, acl_like.path(), None, None, "a.example"));
    assert_eq!(code, Some(0), "{err}");
    for (i, mode) in [0o444, 0o460, 0o404].into_iter().enumerate() {
        let open = credentials(&[("dnsseal-pin", &right, mode)]);
        let (code, err) = code_and_stderr(&create_with(
            &p,
            open.path(),
            None,
            None,
            &format!("x{i}.example"),
        ));
        assert_eq!(code, Some(7), "credential of mode {mode:o}: {err}");
        assert!(err.contains("dnsseal-pin"), "{err}");
    }
    // A link out of the credential directory is not a credential.
    let elsewhere = p.file("pin");
    pin_file(&elsewhere, &right, 0o600);
    let linked = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.path().join("dnsseal-pin")).unwrap();
    let (code, err) = code_and_stderr(&create_with(&p, linked.path(), None, None, "y.example"));
    assert_eq!(code, Some(7), "{err}");
    assert_eq!(p.keys().len(), 1);
}

#[test]
fn init_takes_both_pins_from_credentials() {
    common::require_softhsm();
    let p = Project::empty();
    let creds = credentials(&[
        ("dnsseal-pin", &format!("{}\n", common::PIN), 0o400),
        ("dnsseal-so-pin", &format!("{}\n", common::SO_PIN), 0o400),
    ]);
    let run = |args: &[&str]| {
        p.command()
            .env_remove("DNSSEAL_PIN")
            .env_remove("DNSSEAL_SO_PIN")
            .env("CREDENTIALS_DIRECTORY", creds.path())
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    };
    let (code, err) = code_and_stderr(&run(&["init", "--softhsm"]));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = code_and_stderr(&run(&[
        "keys",
        "create",
        "example.com",
        "--role",
        "csk",
        "--algorithm",
        "13",
    ]));
    assert_eq!(code, Some(0), "{err}");
    // The token took the user PIN from the credential.
    assert_eq!(p.token_private_ids().len(), 1);
}

// ------------------------------------------------- a logged-in process

/// A PIN that occurs nowhere else in a process's memory.
const RARE_PIN: &str = "hyg13ne-Pq7Zk2Wm";

/// Who the logged-in `dnsseal` runs as: as root, `nobody`, so that the
/// kernel's marks of a non-dumpable process (its /proc files owned by
/// root) can be told apart; otherwise the test's own user.
struct As {
    drop_to: Option<u32>,
}

impl As {
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        if let Some(id) = self.drop_to {
            c.uid(id).gid(id);
        }
        c
    }

    fn uid(&self) -> u32 {
        self.drop_to
            .unwrap_or_else(|| std::fs::metadata("/proc/self").unwrap().uid())
    }
}

/// A project of `who` with a key for `example` and a 0600 PIN file.
fn logged_in_project(who: &As) -> (Project, PathBuf) {
    common::require_softhsm();
    let p = Project::empty();
    if let Some(id) = who.drop_to {
        std::os::unix::fs::chown(p.path(), Some(id), Some(id)).unwrap();
    }
    let run = |args: &[&str]| {
        let out = who
            .command(common::dnsseal_bin())
            .current_dir(p.path())
            .env_remove("SOFTHSM2_CONF")
            .env_remove("DNSSEAL_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("DNSSEAL_PIN", RARE_PIN)
            .env("DNSSEAL_SO_PIN", common::SO_PIN)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init", "--softhsm"]);
    run(&[
        "keys",
        "create",
        "example",
        "--role",
        "csk",
        "--algorithm",
        "13",
    ]);
    let file = p.file("pin");
    pin_file(&file, &format!("{RARE_PIN}\n"), 0o600);
    if let Some(id) = who.drop_to {
        std::os::unix::fs::chown(&file, Some(id), Some(id)).unwrap();
    }
    (p, file)
}

/// `token bench` for a minute, logged in with the PIN file and no PIN in
/// its environment, started with core dumps allowed (`ulimit -c
/// unlimited`), as a daemon's shell would leave them.
fn start_bench(who: &As, p: &Project, pin: &Path) -> Child {
    who.command("sh")
        .current_dir(p.path())
        .env_remove("DNSSEAL_PIN")
        .env_remove("DNSSEAL_SO_PIN")
        .env_remove("SOFTHSM2_CONF")
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("-c")
        .arg("ulimit -c unlimited && exec \"$@\"")
        .arg("sh")
        .arg(common::dnsseal_bin())
        .arg("--pin-file")
        .arg(pin)
        .args(["token", "bench", "example", "--seconds", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the bench's signing thread runs (the session is open and
/// logged in by then).
fn wait_for_signing(child: &mut Child) {
    let tasks = format!("/proc/{}/task", child.id());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("token bench ended early ({status}): {err}");
        }
        let n = std::fs::read_dir(&tasks).map(|d| d.count()).unwrap_or(0);
        if n >= 2 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "token bench never started signing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Soft and hard "Max core file size" of a process.
fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .to_string();
    line.split_whitespace()
        .skip(4)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether gdb's gcore is installed.
fn have_gcore() -> bool {
    Command::new("gcore")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs gcore on `pid` as `who`, into `dir`; the core file if one was made.
fn gcore(who: &As, pid: u32, dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = dir.join(name);
    let _ = who
        .command("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    core.exists().then_some(core)
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn a_logged_in_dnsseal_leaves_no_core_cannot_be_traced_and_holds_the_pin_once() {
    let root = is_root();
    let who = As {
        drop_to: root.then_some(OTHER_USER),
    };
    let (p, pin) = logged_in_project(&who);
    let mut child = start_bench(&who, &p, &pin);
    let pid = child.id();
    wait_for_signing(&mut child);

    let mut problems = Vec::new();
    let limit = core_limit(pid);
    if limit != "0 0" {
        problems.push(format!("core file size limit is {limit}, not 0 0"));
    }
    // A process that is not dumpable has its /proc files owned by root
    // (its /proc/PID directory keeps the process's uid).
    let environ = format!("/proc/{pid}/environ");
    let owner = std::fs::metadata(&environ).unwrap().uid();
    if who.uid() == 0 {
        eprintln!("skipped: the dumpable check needs a user other than root to run dnsseal");
    } else if owner != 0 {
        problems.push(format!(
            "{environ} is owned by uid {owner}: the process is dumpable"
        ));
    }
    if !have_gcore() {
        eprintln!("skipped: gcore is not installed (apt-get install -y gdb)");
    } else {
        // The process's own user (without CAP_SYS_PTRACE) cannot attach.
        if gcore(&who, pid, p.path(), "own-user").is_some() {
            problems.push("gcore as the process's own user made a core".into());
        }
        // Root can still read the memory: the PIN is in it once.
        if root {
            match gcore(&As { drop_to: None }, pid, p.path(), "root") {
                Some(core) => {
                    let bytes = std::fs::read(&core).unwrap();
                    let n = occurrences(&bytes, RARE_PIN.as_bytes());
                    eprintln!("core of {} bytes holds the PIN {n} time(s)", bytes.len());
                    if n > 1 {
                        problems.push(format!("the PIN is in the process's memory {n} times"));
                    }
                    let _ = std::fs::remove_file(core);
                }
                None => eprintln!("skipped: root cannot ptrace here, so no core to search"),
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
