//! Where PINs come from: a file, an environment variable or a prompt on the
//! terminal, for the `dnsseal` command today and the key shell and the
//! signing service (a PIN file) later. PINs are held in `secrecy` types and
//! zeroized; a PIN never reaches argv, logs, error messages or the audit
//! log. The prompt is the one place the library talks to a terminal, and
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
        warn_if_readable_by_others(path);
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read PIN file {}", path.display()))?,
        );
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

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "PIN file {} is readable by group or others; chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
