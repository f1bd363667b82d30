//! The audit history guarded: a project whose keystore holds keys never
//! starts a new audit chain by itself, and `dnsseal audit reset` starts one
//! only where the history is gone, recording why.
//!
//! A log whose records were cut off is caught by the head the keystore
//! keeps ([`crate::audit::check`]); a log deleted together with that head
//! would otherwise look like a new project's. Keys in the keystore say
//! that it is not: their history existed and is missing.

use std::path::Path;

use super::known_head;
use crate::audit::{self, AuditError, Event, Head};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::failure::Failure;
use crate::keystore::Keystore;

/// What is at the audit log's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFound {
    Missing,
    Empty,
    Records,
}

impl LogFound {
    /// Looks at `path` (without following a link; a link is a record-holding
    /// file here, which the log's own checks then refuse).
    pub fn at(path: &Path) -> std::io::Result<LogFound> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LogFound::Missing),
            Err(e) => Err(e),
            Ok(m) if m.is_file() && m.len() == 0 => Ok(LogFound::Empty),
            Ok(_) => Ok(LogFound::Records),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            LogFound::Missing => "missing",
            LogFound::Empty => "empty",
            LogFound::Records => "present",
        }
    }
}

/// Whether the next record would start a new chain where a history must
/// exist: the log has no records, the keystore remembers no head, yet it
/// holds keys. (With a head remembered, [`audit::check`] refuses instead.)
pub fn history_missing(found: LogFound, known: Option<&Head>, keys: usize) -> bool {
    found != LogFound::Records && known.is_none() && keys > 0
}

/// Refuses, with [`AuditError::HistoryMissing`], to go on where the audit
/// history of a keystore with keys is gone.
pub fn refuse_new_chain(cfg: &Config, ks: &Keystore) -> anyhow::Result<()> {
    let found = LogFound::at(&cfg.audit_log)?;
    if found == LogFound::Records {
        return Ok(());
    }
    let known = known_head(ks)?;
    let keys = ks.keys(None)?.len();
    if history_missing(found, known.as_ref(), keys) {
        return Err(AuditError::HistoryMissing {
            path: cfg.audit_log.clone(),
            keys,
        }
        .into());
    }
    Ok(())
}

/// Starts a new audit chain where the old one is gone (missing or empty
/// log), its first record saying why (`reason`), what was found and what
/// the keystore remembered. A log with records is never reset: it is
/// evidence, to be moved aside by the operator first.
pub fn reset(cfg: &Config, ks: &mut Keystore, at: Timestamp, reason: &str) -> anyhow::Result<Head> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(
            Failure::BadInput("--reason must say why the audit chain is reset".into()).into(),
        );
    }
    let found = LogFound::at(&cfg.audit_log)?;
    if found == LogFound::Records {
        return Err(Failure::Refused(format!(
            "{} holds records (run `dnsseal audit verify`); an audit reset only starts a chain where the history is gone: move the log aside and keep it as evidence first",
            cfg.audit_log.display()
        ))
        .into());
    }
    let known = known_head(ks)?;
    let keys = ks.keys(None)?.len();
    let remembered = match &known {
        Some(h) => format!("seq {} hash {}", h.seq, h.hash),
        None => "none".into(),
    };
    let event = Event {
        command: audit::RESET_COMMAND.into(),
        detail: format!(
            "new audit chain: {reason} (the log was {}; the keystore's last head: {remembered}; keys in the keystore: {keys})",
            found.describe()
        ),
        ..Event::default()
    };
    let head = audit::append(&cfg.audit_log, at, &event, None)?;
    ks.restart_audit_head(head.seq, &head.hash)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_keystore_with_keys_and_no_head_misses_its_history() {
        let head = Head {
            seq: 3,
            hash: "ab".into(),
        };
        for found in [LogFound::Missing, LogFound::Empty] {
            assert!(history_missing(found, None, 1));
            // A new project: nothing to miss.
            assert!(!history_missing(found, None, 0));
            // The head check speaks for these.
            assert!(!history_missing(found, Some(&head), 1));
        }
        assert!(!history_missing(LogFound::Records, None, 5));
    }

    #[test]
    fn what_is_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        assert_eq!(LogFound::at(&log).unwrap(), LogFound::Missing);
        std::fs::write(&log, b"").unwrap();
        assert_eq!(LogFound::at(&log).unwrap(), LogFound::Empty);
        std::fs::write(&log, b"{}\n").unwrap();
        assert_eq!(LogFound::at(&log).unwrap(), LogFound::Records);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert_eq!(LogFound::at(&link).unwrap(), LogFound::Records);
    }
}
