//! The process's own defences of the secrets it holds in memory, and the
//! one way this crate changes its environment.
//!
//! - [`at_start`], first thing in `main` while the process has one thread:
//!   the core file size limit goes to 0 (soft and hard) and, on Linux, the
//!   process becomes non-dumpable (`PR_SET_DUMPABLE` 0). A non-dumpable
//!   process writes no core dump even through a `core_pattern` pipe (unless
//!   root set `fs.suid_dumpable` to 2), and other processes of the same
//!   user cannot ptrace it or read its `/proc/PID/mem` and `environ`
//!   without CAP_SYS_PTRACE: its `/proc/PID` files belong to root.
//! - [`lock_in_memory`]: the pages that hold a PIN are locked in RAM
//!   (`mlock`), so they are not written to swap, where the OS allows it
//!   (within `RLIMIT_MEMLOCK`).
//! - [`set_env`]: the environment is changed only while no other thread
//!   exists. C code (a PKCS#11 module, the C library) reads it without the
//!   lock Rust's own accessors take, so a change while another thread runs
//!   is undefined behaviour.
//!
//! Nothing here is fatal: a platform that lacks a defence gets a message
//! for the caller to log as a warning (the library does not print).

use std::ffi::OsStr;

/// Sets the core file size limit to 0 and makes the process non-dumpable;
/// returns what could not be done, one message each. Call it before any
/// thread starts and before any PIN is read.
pub fn at_start() -> Vec<String> {
    let mut missed = Vec::new();
    if let Err(e) = no_core_files() {
        missed.push(format!("cannot set the core file size limit to 0: {e}"));
    }
    if let Err(e) = not_dumpable() {
        missed.push(format!(
            "cannot make the process non-dumpable (a core dump or a debugger of the same user could read the PIN): {e}"
        ));
    }
    missed
}

fn no_core_files() -> Result<(), String> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, zero).map_err(|e| e.to_string())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn not_dumpable() -> Result<(), String> {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| e.to_string())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn not_dumpable() -> Result<(), String> {
    Err("this platform has no PR_SET_DUMPABLE".into())
}

/// Locks the pages that hold `bytes` in RAM until the guard is dropped.
/// Fails where `mlock` is refused (no such call, or `RLIMIT_MEMLOCK`
/// reached) or `bytes` is empty.
pub fn lock_in_memory(bytes: &[u8]) -> Result<region::LockGuard, String> {
    region::lock(bytes.as_ptr(), bytes.len()).map_err(|e| e.to_string())
}

/// Sets the environment variable `name` to `value`: nothing to do when it
/// has that value already; refused, with the reason, when another thread
/// exists or the number of threads cannot be told (only Linux tells it).
pub fn set_env(name: &str, value: &OsStr) -> Result<(), String> {
    if std::env::var_os(name).as_deref() == Some(value) {
        return Ok(());
    }
    match thread_count() {
        Some(1) => {
            // Sound: no other thread exists to read the environment, and
            // only this one could start one.
            std::env::set_var(name, value);
            Ok(())
        }
        Some(n) => Err(format!(
            "{name} can only be set while the process has one thread, and it has {n}; set {name} before starting dnsseal"
        )),
        None => Err(format!(
            "{name} can only be set while the process has one thread, which this platform cannot confirm; set {name} before starting dnsseal"
        )),
    }
}

/// Removes every environment variable but those named in `keep`, with
/// the same rule as [`set_env`]: only while the process has one thread.
pub fn clear_env_except(keep: &[&str]) -> Result<(), String> {
    if thread_count() != Some(1) {
        return Err(
            "the environment can only be cleared while the process has one thread".to_string(),
        );
    }
    for (name, _) in std::env::vars_os() {
        // A name that cannot be a variable's (from a hand-made environ
        // entry such as "=x=y") cannot be removed, nor read by getenv.
        let odd = name.is_empty()
            || name
                .as_encoded_bytes()
                .iter()
                .any(|b| *b == b'=' || *b == 0);
        if !odd && !keep.iter().any(|k| std::ffi::OsStr::new(k) == name) {
            // Sound: no other thread exists (checked above).
            std::env::remove_var(&name);
        }
    }
    Ok(())
}

/// The number of threads of this process (Linux: `/proc/self/task`).
fn thread_count() -> Option<usize> {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return None;
    }
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(tasks.filter(|t| t.is_ok()).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_start_leaves_no_core_and_a_non_dumpable_process() {
        assert_eq!(at_start(), Vec::<String>::new());
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        #[cfg(target_os = "linux")]
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }

    #[test]
    fn a_pin_page_can_be_locked() {
        let pin = String::from("a PIN on a page of its own");
        let guard = lock_in_memory(pin.as_bytes());
        assert!(guard.is_ok(), "{:?}", guard.err());
        assert!(lock_in_memory(&[]).is_err());
    }

    /// The test harness runs tests on threads of their own, so the
    /// environment must not change here; an unchanged value is fine.
    #[test]
    fn the_environment_changes_only_in_a_single_threaded_process() {
        let helper = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let name = "DNSSEAL_HARDEN_TEST_VARIABLE";
        let err = set_env(name, OsStr::new("changed")).unwrap_err();
        assert!(err.contains("one thread") && err.contains(name), "{err}");
        assert_eq!(std::env::var_os(name), None, "the variable was set");
        let path = std::env::var_os("PATH").unwrap_or_default();
        if std::env::var_os("PATH").is_some() {
            assert_eq!(set_env("PATH", &path), Ok(()));
        }
        let _ = helper.join();
    }
}
