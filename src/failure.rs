//! What went wrong, sorted for the caller: the failures the library decides
//! on itself ([`Failure`]), and the one table of exit codes
//! ([`EXIT_CODES`]) that the `dnsseal` command, its `--help` text, the
//! operator guide and (later) the signing service all take their codes from.
//!
//! Library calls return `anyhow::Error` chains that carry a typed cause:
//! a [`Failure`], a [`TokenError`], a [`ConfigError`], a
//! [`StoreError`](crate::keystore::StoreError), a zone or time parse error,
//! a signing or audit error. [`exit_code`] walks the chain and returns the
//! code of the first cause that has one, so a message can gain context on
//! its way up without changing the code a script sees.

use crate::config::ConfigError;
use crate::token::TokenError;

/// Exit codes that scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected failure (I/O, a bug, standard output closed early).
    pub const FAILURE: u8 = 1;
    /// Command line usage error (from the argument parser).
    pub const USAGE: u8 = 2;
    /// Bad input: zone name, algorithm, key size, file contents.
    pub const BAD_INPUT: u8 = 3;
    /// Configuration or keystore missing, unreadable or of another version.
    pub const CONFIG: u8 = 4;
    /// The PKCS#11 module cannot be loaded.
    pub const MODULE: u8 = 5;
    /// The token is absent, or more than one token matches.
    pub const TOKEN: u8 = 6;
    /// The PIN is wrong, missing or of a length the token refuses.
    pub const PIN: u8 = 7;
    /// The PIN is locked.
    pub const PIN_LOCKED: u8 = 8;
    /// The token cannot do what was asked (algorithm, key size).
    pub const UNSUPPORTED: u8 = 9;
    /// Refused for safety (e.g. deleting an active key without --force).
    pub const REFUSED: u8 = 10;
    /// A verification failed (audit chain broken, signature check).
    pub const VERIFY: u8 = 11;
    /// Keystore and token disagree.
    pub const DRIFT: u8 = 12;
    /// The token failed during the run: removed, or device or session
    /// faults past the retries (nothing was written).
    pub const TOKEN_FAILED: u8 = 13;
    /// The signing service could not take the request now or did not
    /// finish it in time (busy, stopping, timed out): retry later.
    pub const UNAVAILABLE: u8 = 14;
}

/// Every exit code with its one-line meaning, as `--help` prints it; the
/// operator guide's table says the same (a unit test holds the two to it).
pub const EXIT_CODES: &[(u8, &str)] = &[
    (exit::OK, "success"),
    (exit::FAILURE, "unexpected failure (see text)"),
    (exit::USAGE, "usage error"),
    (exit::BAD_INPUT, "bad input (name, algorithm, file)"),
    (exit::CONFIG, "config or keystore problem"),
    (exit::MODULE, "PKCS#11 module not loadable"),
    (exit::TOKEN, "token absent or ambiguous"),
    (exit::PIN, "PIN wrong, missing or refused"),
    (exit::PIN_LOCKED, "PIN locked"),
    (exit::UNSUPPORTED, "token cannot do this algorithm/size"),
    (exit::REFUSED, "refused for safety (see --force)"),
    (exit::VERIFY, "verification failed (audit chain, signature)"),
    (exit::DRIFT, "keystore and token disagree"),
    (exit::TOKEN_FAILED, "token failed or removed mid-run"),
    (exit::UNAVAILABLE, "signing service busy or stopping; retry"),
];

/// The `--help` text on exit codes and PIN sources, made from
/// [`EXIT_CODES`].
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    let half = EXIT_CODES.len().div_ceil(2);
    for (i, (code, what)) in EXIT_CODES.iter().enumerate().take(half) {
        let left = format!("{code:>3}  {what}");
        match EXIT_CODES.get(i + half) {
            Some((c, w)) => text.push_str(&format!("{left:<42}{c:>3}  {w}\n")),
            None => text.push_str(&format!("{left}\n")),
        }
    }
    text.push_str(
        "\nPIN sources, in order: --pin-file FILE; pin_file in [token] of dnsseal.toml;\n\
         the systemd credential dnsseal-pin in $CREDENTIALS_DIRECTORY (LoadCredential=);\n\
         the DNSSEAL_PIN variable (for CI: it stays readable in /proc/PID/environ); a\n\
         prompt on the terminal. A PIN file\n\
         must be a regular file of mode 0600 or 0400 owned by the user dnsseal runs as,\n\
         else exit 7. The PIN never appears in arguments, logs or the audit log.",
    );
    text
}

/// Failures the library decides on itself, each with its exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The input (a name, a file, an option) is wrong: exit 3.
    #[error("{0}")]
    BadInput(String),
    /// Refused because going on would be unsafe: exit 10.
    #[error("{0}")]
    Refused(String),
    /// A check failed (a signature, the audit chain): exit 11.
    #[error("{0}")]
    Verify(String),
    /// The keystore and the token disagree: exit 12.
    #[error("{0}")]
    Drift(String),
    /// No PIN could be had: exit 7.
    #[error("{0}")]
    NoPin(String),
    /// The signing service refused or failed the request: its exit code
    /// and message (those of the local command).
    #[error("{message}")]
    Remote { code: u8, message: String },
}

impl Failure {
    /// The exit code of this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => exit::BAD_INPUT,
            Failure::Refused(_) => exit::REFUSED,
            Failure::Verify(_) => exit::VERIFY,
            Failure::Drift(_) => exit::DRIFT,
            Failure::NoPin(_) => exit::PIN,
            Failure::Remote { code, .. } => *code,
        }
    }
}

/// The exit code for an error: that of the first cause in the chain that
/// has one, else [`exit::FAILURE`].
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain().find_map(cause_code).unwrap_or(exit::FAILURE)
}

/// The exit code one cause carries, if it carries one.
fn cause_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(f) = cause.downcast_ref::<Failure>() {
        return Some(f.exit_code());
    }
    if let Some(t) = cause.downcast_ref::<TokenError>() {
        return Some(token_code(t));
    }
    if cause.is::<ConfigError>() || cause.is::<crate::keystore::StoreError>() {
        return Some(exit::CONFIG);
    }
    if cause.is::<crate::zone::NameError>()
        || cause.is::<crate::zone::parse::ZoneError>()
        || cause.is::<crate::clock::TimeParseError>()
    {
        return Some(exit::BAD_INPUT);
    }
    if let Some(e) = cause.downcast_ref::<crate::sign::engine::SignError>() {
        return Some(match e {
            crate::sign::engine::SignError::BadSignature { .. } => exit::VERIFY,
            crate::sign::engine::SignError::Interrupted(i) => i.exit_code(),
            // The signer's own error, next in the chain, decides.
            crate::sign::engine::SignError::Token(_) => return None,
            _ => exit::FAILURE,
        });
    }
    if let Some(i) = cause.downcast_ref::<crate::interrupt::Interrupted>() {
        return Some(i.exit_code());
    }
    if crate::files::is_unsafe(cause) {
        return Some(exit::REFUSED);
    }
    if let Some(a) = cause.downcast_ref::<crate::audit::AuditError>() {
        if matches!(
            a,
            crate::audit::AuditError::Broken { .. }
                | crate::audit::AuditError::Truncated { .. }
                | crate::audit::AuditError::HistoryMissing { .. }
        ) {
            return Some(exit::VERIFY);
        }
    }
    None
}

/// The exit code of a token error.
fn token_code(t: &TokenError) -> u8 {
    match t {
        TokenError::ModuleLoad { .. } => exit::MODULE,
        TokenError::NotFound { .. } | TokenError::Ambiguous { .. } => exit::TOKEN,
        TokenError::PinIncorrect | TokenError::PinLength => exit::PIN,
        TokenError::PinLocked => exit::PIN_LOCKED,
        TokenError::Unsupported { .. } => exit::UNSUPPORTED,
        TokenError::Failed { .. } => exit::TOKEN_FAILED,
        _ => exit::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_in_order() {
        for (i, (code, what)) in EXIT_CODES.iter().enumerate() {
            assert_eq!(usize::from(*code), i, "{what}");
        }
    }

    #[test]
    fn help_names_every_code() {
        let help = exit_codes_help();
        for (code, what) in EXIT_CODES {
            assert!(help.contains(&format!("{code:>3}  {what}")), "{help}");
        }
    }

    /// The operator guide's table lists the same codes as the help text.
    #[test]
    fn operator_guide_lists_every_code() {
        let guide = include_str!("../docs/operator-guide.md");
        let rows: Vec<u8> = guide
            .lines()
            .skip_while(|l| !(l.starts_with("## ") && l.ends_with("Exit codes")))
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split('|').next()?.trim().parse().ok())
            .collect();
        let codes: Vec<u8> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(rows, codes);
    }

    #[test]
    fn the_first_coded_cause_decides() {
        let err = anyhow::Error::new(Failure::Refused("no".into())).context("while signing");
        assert_eq!(exit_code(&err), exit::REFUSED);
        let err = anyhow::Error::new(TokenError::PinLocked).context("login");
        assert_eq!(exit_code(&err), exit::PIN_LOCKED);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), exit::FAILURE);
        let err = anyhow::Error::new(Failure::Drift("x".into()));
        assert_eq!(exit_code(&err), exit::DRIFT);
    }
}
