//! The process's own defences of the secrets it holds in memory.
//!
//! [`at_start`], first thing in `main` while the process has one thread:
//! the core file size limit goes to 0 (soft and hard) and, on Linux, the
//! process becomes non-dumpable (`PR_SET_DUMPABLE` 0). A non-dumpable
//! process writes no core dump even through a `core_pattern` pipe (unless
//! root set `fs.suid_dumpable` to 2), and other processes of the same user
//! cannot ptrace it or read its `/proc/PID/mem` and `environ` without
//! CAP_SYS_PTRACE: its `/proc/PID` files belong to root.
//!
//! Nothing here is fatal: a platform that lacks a defence gets a message
//! for the caller to log as a warning (the library does not print).

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
            rustix::process::dumpable_behavior().ok(),
            Some(rustix::process::DumpableBehavior::NotDumpable)
        );
    }
}
