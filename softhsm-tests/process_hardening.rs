//! A running `dnsseal` that holds a PIN leaves no core dump and cannot be
//! traced by its own user: the core file size limit is 0 and the process
//! is not dumpable, whatever limits it was started with.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
fn a_logged_in_dnsseal_leaves_no_core_and_cannot_be_traced_by_its_user() {
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
    if !have_gcore() {
        eprintln!("skipped: gcore is not installed (apt-get install -y gdb)");
    } else {
        // The process's own user (without CAP_SYS_PTRACE) cannot attach
        // to a process that is not dumpable.
        if gcore(&who, pid, p.path(), "own-user").is_some() {
            problems.push("gcore as the process's own user made a core".into());
        }
        // Root can still read the memory; how often the PIN is in it is
        // shown, not judged here.
        if root {
            match gcore(&As { drop_to: None }, pid, p.path(), "root") {
                Some(core) => {
                    let bytes = std::fs::read(&core).unwrap();
                    let n = occurrences(&bytes, RARE_PIN.as_bytes());
                    eprintln!("core of {} bytes holds the PIN {n} time(s)", bytes.len());
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
