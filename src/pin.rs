//! Where PINs come from: a file, an environment variable or a prompt on the
//! terminal, for the `dnsseal` command today and the key shell and the
//! signing service (a PIN file) later. PINs are held in `secrecy` types and
//! zeroized; a PIN never reaches argv, logs, error messages or the audit
//! log. A PIN file is checked on the open file before it is read: a
//! regular file of this user, closed to group and others, or refused
//! (exit 7). The prompt is the one place the library talks to a terminal, and
//! only when standard input is one.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::failure::Failure;

/// The variable the user PIN may come from (meant for CI).
pub const USER_PIN_VAR: &str = "DNSSEAL_PIN";
/// The variable the security officer PIN may come from (`init --softhsm`).
pub const SO_PIN_VAR: &str = "DNSSEAL_SO_PIN";

/// Reads a PIN: the file if given, else the variable (which is then
/// removed from this process's environment), else a terminal prompt.
pub fn read(file: Option<&Path>, var: &str, prompt: &str) -> anyhow::Result<SecretString> {
    if let Some(path) = file {
        let text = read_pin_file(path)?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            return Err(Failure::NoPin(format!("PIN file {} is empty", path.display())).into());
        }
        return Ok(SecretString::from(line.to_string()));
    }
    if let Ok(v) = std::env::var(var) {
        let v = Zeroizing::new(v);
        std::env::remove_var(var);
        if v.is_empty() {
            return Err(Failure::NoPin(format!("{var} is set but empty")).into());
        }
        return Ok(SecretString::from(v.to_string()));
    }
    if std::io::stdin().is_terminal() {
        let entered = Zeroizing::new(
            rpassword::prompt_password(prompt).context("cannot read the PIN from the terminal")?,
        );
        if entered.is_empty() {
            return Err(Failure::NoPin("no PIN entered".into()).into());
        }
        return Ok(SecretString::from(entered.to_string()));
    }
    Err(Failure::NoPin(format!(
        "a PIN is needed: use --pin-file FILE, set {var}, or run on a terminal"
    ))
    .into())
}

/// The most a PIN file is read of: a PIN line, not a file of any size.
const PIN_FILE_MAX: u64 = 4096;

/// Reads a PIN file after checking the open file itself (no window between
/// check and read): a regular file, owned by this process's effective user,
/// neither readable nor writable by group or others. Opened non-blocking,
/// so a FIFO is refused at once instead of waiting for a writer.
#[cfg(unix)]
fn read_pin_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let cannot = || format!("cannot read PIN file {}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .with_context(cannot)?;
    let meta = file.metadata().with_context(cannot)?;
    let me = rustix::process::geteuid().as_raw();
    if let Some(why) = pin_file_problem(meta.file_type().is_file(), meta.mode(), meta.uid(), me) {
        return Err(Failure::NoPin(format!("PIN file {}: {why}", path.display())).into());
    }
    let mut text = Zeroizing::new(String::new());
    file.take(PIN_FILE_MAX)
        .read_to_string(&mut text)
        .with_context(cannot)?;
    Ok(text)
}

#[cfg(not(unix))]
fn read_pin_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(std::fs::read_to_string(path).with_context(
        || format!("cannot read PIN file {}", path.display()),
    )?))
}

/// Why a PIN file must not be used, if it must not: not a regular file,
/// owned by another user than `me`, or open to group or others (any of the
/// mode bits 0o077).
pub fn pin_file_problem(regular: bool, mode: u32, owner: u32, me: u32) -> Option<String> {
    if !regular {
        return Some("not a regular file".into());
    }
    if owner != me {
        return Some(format!(
            "owned by uid {owner}, not by the user running dnsseal (uid {me})"
        ));
    }
    if mode & 0o077 != 0 {
        return Some(format!(
            "mode {:04o} lets group or others read or write it; chmod 600 it",
            mode & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::pin_file_problem;

    #[test]
    fn only_a_regular_file_of_this_user_closed_to_others_holds_a_pin() {
        assert_eq!(pin_file_problem(true, 0o100600, 1000, 1000), None);
        assert_eq!(pin_file_problem(true, 0o100400, 1000, 1000), None);
        for mode in [0o100666, 0o100640, 0o100604, 0o100620, 0o100602, 0o100610] {
            let why = pin_file_problem(true, mode, 1000, 1000).unwrap_or_default();
            assert!(why.contains("chmod 600"), "{mode:o}: {why}");
        }
        let why = pin_file_problem(true, 0o100600, 0, 1000).unwrap_or_default();
        assert!(why.contains("owned by uid 0"), "{why}");
        let why = pin_file_problem(false, 0o010600, 1000, 1000).unwrap_or_default();
        assert!(why.contains("not a regular file"), "{why}");
    }
}
