//! Opening a project: the one call every command (and later the signing
//! service and the shell) makes before it works with keys.
//!
//! A project is a `dnsseal.toml`, the keystore it names and the audit log it
//! names. [`Project::open`] loads the configuration, opens the keystore,
//! checks the audit log against the head the keystore saw last (a broken or
//! shortened log refuses the run: an operation that cannot be audited must
//! not happen) and writes the audit events a stopped run left in the
//! keystore's outbox. The open project then offers what a command needs:
//!
//! - the configuration and the keystore;
//! - the token: [`Project::module`] takes the token lock (one dnsseal
//!   process at a time works with the token) and loads the PKCS#11 module,
//!   [`Project::login`] finds the token and logs in with a PIN the caller
//!   read (reading a PIN may prompt on a terminal, which is the CLI's job);
//! - the audit log: [`Project::audit`] appends a record and remembers the
//!   new head, [`Project::outbox_event`] makes an event to commit with a
//!   keystore change, [`Project::flush_outbox`] writes committed events to
//!   the log exactly once, and [`Project::audited`] runs a key-changing body
//!   and records a failed attempt when it fails.
//!
//! The free functions below are the same steps for a caller that holds the
//! configuration and keystore itself (today `cli::context::Context`).
//! Nothing here prints; warnings and errors that must not stop the run go
//! to `tracing`.

pub mod history;
pub mod init;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use secrecy::SecretString;

use crate::audit::{self, Event};
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, Profile};
use crate::keystore::Keystore;
use crate::token::{Module, Token, TokenError, UserSession};

/// An open, checked project: configuration, keystore and audit log.
pub struct Project {
    config: Config,
    keystore: Keystore,
    clock: Clock,
    /// The command as the audit log names it, e.g. "keys create".
    command: String,
    /// The audit log was checked and nothing was done since: the next
    /// [`Project::audited`] need not read it again.
    fresh: bool,
}

impl Project {
    /// Opens the project whose configuration is at `config_path`: loads the
    /// configuration, opens the keystore, refuses a broken or shortened
    /// audit log and writes what the keystore's audit outbox still holds.
    /// `command` is the name audit records of this run carry.
    pub fn open(config_path: &Path, clock: Clock, command: &str) -> anyhow::Result<Project> {
        let mut project = Project::open_checked(Config::load(config_path)?, clock, command)?;
        check_audit(&project.config, &mut project.keystore)?;
        Ok(project)
    }

    /// Opens the keystore of a project whose audit log was checked when
    /// the process started: the signing service's jobs, which leave their
    /// audit records to the service (one appender in the process).
    pub fn open_checked(config: Config, clock: Clock, command: &str) -> anyhow::Result<Project> {
        let keystore = Keystore::open(&config.keystore)?;
        Ok(Project {
            config,
            keystore,
            clock,
            command: command.to_string(),
            fresh: true,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    pub fn keystore_mut(&mut self) -> &mut Keystore {
        &mut self.keystore
    }

    /// The time of this run (the system clock, or a fixed `--now`).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The command as the audit log names it.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Takes the token lock and loads the configured PKCS#11 module (see
    /// [`load_module`]).
    pub fn module(&self) -> anyhow::Result<Module> {
        load_module(&self.config)
    }

    /// Finds the configured token in `module`. A caller that reads the PIN
    /// from a terminal finds the token first, so that a missing token is
    /// reported before a PIN is asked for (exit 6, not 7).
    pub fn find_token<'m>(&self, module: &'m Module) -> anyhow::Result<Token<'m>> {
        Ok(module.find_token(&self.config.token.selector)?)
    }

    /// Finds the configured token in `module` and logs in with `pin`.
    pub fn login<'m>(
        &self,
        module: &'m Module,
        pin: &SecretString,
    ) -> anyhow::Result<(Token<'m>, UserSession)> {
        let token = self.find_token(module)?;
        let session = token.login(pin)?;
        Ok((token, session))
    }

    /// Appends an audit record and remembers the new head in the keystore.
    pub fn audit(&mut self, event: Event) -> anyhow::Result<()> {
        append(&self.config, &mut self.keystore, self.clock.now(), event)
    }

    /// Writes the events of the keystore's audit outbox into the log, each
    /// exactly once (see [`flush_outbox`]).
    pub fn flush_outbox(&mut self) -> anyhow::Result<()> {
        flush_outbox(&self.config, &mut self.keystore)
    }

    /// An audit event as the keystore's outbox holds it, stamped now.
    pub fn outbox_event(&self, event: &Event) -> (Timestamp, String) {
        outbox_event(self.clock.now(), event)
    }

    /// Runs a key-changing operation once the audit log has been checked
    /// (by [`Project::open`] just before, or now); if the operation fails,
    /// the failed attempt is audited too (and the operation's error is
    /// returned unchanged).
    pub fn audited<T>(
        &mut self,
        zone: Option<String>,
        body: impl FnOnce(&mut Project) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if !std::mem::take(&mut self.fresh) {
            check_audit(&self.config, &mut self.keystore)?;
        }
        match body(self) {
            Ok(v) => Ok(v),
            Err(err) => {
                let now = self.clock.now();
                record_failure(
                    &self.config,
                    &mut self.keystore,
                    now,
                    &self.command,
                    zone,
                    &err,
                );
                Err(err)
            }
        }
    }
}

/// The audit head the keystore saw last, if any.
pub fn known_head(ks: &Keystore) -> anyhow::Result<Option<audit::Head>> {
    Ok(ks
        .audit_head()?
        .map(|(seq, hash)| audit::Head { seq, hash }))
}

/// Refuses to go on when the audit log is broken or shortened, then writes
/// what the keystore's outbox still holds.
pub fn check_audit(cfg: &Config, ks: &mut Keystore) -> anyhow::Result<()> {
    check_log(cfg, ks)?;
    if !ks.outbox()?.is_empty() {
        flush_outbox(cfg, ks)?;
    }
    Ok(())
}

/// Refuses a broken audit log, one that no longer holds the record the
/// keystore saw last, and a missing history ([`history`]).
pub fn check_log(cfg: &Config, ks: &Keystore) -> anyhow::Result<()> {
    history::refuse_new_chain(cfg, ks)?;
    let known = known_head(ks)?;
    audit::check(&cfg.audit_log, known.as_ref())?;
    Ok(())
}

/// Writes the audit events that the keystore committed with a change
/// into the log, each exactly once (also those of a run that was
/// stopped between its commit and its log write).
pub fn flush_outbox(cfg: &Config, ks: &mut Keystore) -> anyhow::Result<()> {
    history::refuse_new_chain(cfg, ks)?;
    for (id, at, text) in ks.outbox()? {
        let event: Event = serde_json::from_str(&text)
            .with_context(|| format!("keystore audit outbox entry {id} is unreadable"))?;
        let known = known_head(ks)?;
        let head = audit::append_once(&cfg.audit_log, at, &event, known.as_ref())?;
        ks.outbox_done(id, head.seq, &head.hash)?;
    }
    Ok(())
}

/// An audit event as the keystore's outbox holds it: its time and JSON.
pub fn outbox_event(at: Timestamp, event: &Event) -> (Timestamp, String) {
    (
        at,
        serde_json::to_string(event).unwrap_or_else(|_| event.detail.clone()),
    )
}

/// Appends an audit record at `at` and remembers the new head in the
/// keystore.
pub fn append(cfg: &Config, ks: &mut Keystore, at: Timestamp, event: Event) -> anyhow::Result<()> {
    history::refuse_new_chain(cfg, ks)?;
    let known = known_head(ks)?;
    let head = audit::append(&cfg.audit_log, at, &event, known.as_ref())?;
    ks.set_audit_head(head.seq, &head.hash)?;
    Ok(())
}

/// Audits the failed attempt of `command`; a failure to audit it is
/// reported through `tracing` and does not hide the operation's error.
pub fn record_failure(
    cfg: &Config,
    ks: &mut Keystore,
    at: Timestamp,
    command: &str,
    zone: Option<String>,
    err: &anyhow::Error,
) {
    let event = Event {
        command: command.to_string(),
        zone,
        failed: true,
        detail: format!("{err:#}"),
        ..Event::default()
    };
    if let Err(e) = append(cfg, ks, at, event) {
        tracing::error!("could not audit the failed attempt: {e:#}");
    }
}

/// The token locks this process holds, by keystore: held from the first
/// token use to the end of the process.
static TOKEN_LOCKS: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Loads the configured PKCS#11 module, after taking the token lock.
///
/// One dnsseal process at a time works with the token: SoftHSMv2's file
/// store fails (CKR_GENERAL_ERROR) when processes change one token at
/// once, and on a hardware token key management steps are better
/// serialised anyway. The lock is an exclusive lock on
/// `<keystore>.lock`, released when the process ends.
pub fn load_module(cfg: &Config) -> anyhow::Result<Module> {
    lock_token(&cfg.keystore)?;
    open_module(cfg)
}

/// Loads the configured PKCS#11 module; the caller holds the token lock.
pub fn open_module(cfg: &Config) -> anyhow::Result<Module> {
    Module::load(&cfg.token.module, cfg.token.softhsm_conf.as_deref()).map_err(|e| {
        with_conf_hint(&cfg.token.profile, e, |var| std::env::var_os(var).is_some()).into()
    })
}

/// A module that would not load, with a hint when its profile names the
/// variable the module finds its configuration through (Kryoptic:
/// KRYOPTIC_CONF) and that variable is not set: the module's own error
/// (Kryoptic: CKR_TOKEN_NOT_PRESENT from C_Initialize) does not say so.
fn with_conf_hint(profile: &Profile, err: TokenError, is_set: impl Fn(&str) -> bool) -> TokenError {
    match (err, &profile.conf_variable) {
        (TokenError::ModuleLoad { path, reason }, Some(var)) if !is_set(var) => {
            TokenError::ModuleLoad {
                path,
                reason: format!(
                    "{reason} ({var} is not set: the {} profile's module finds its tokens through it; set module_conf in [token] of dnsseal.toml)",
                    profile.name
                ),
            }
        }
        (err, _) => err,
    }
}

/// Releases every token lock this process holds: for `dnsseal shell`,
/// after each command, once the command's module is unloaded, so that an
/// idle session does not hold up other dnsseal processes.
pub fn release_token_locks() {
    TOKEN_LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Takes the token lock of `keystore` unless this process holds it already
/// (a second lock on the same file from this process would wait forever).
pub fn lock_token(keystore: &Path) -> anyhow::Result<()> {
    take_token_lock(keystore, true).map(|_| ())
}

/// Takes the token lock of `keystore` if no other process holds it: false
/// when one does (the signing service's idle look at the token gives way
/// to a running command).
pub fn try_lock_token(keystore: &Path) -> anyhow::Result<bool> {
    take_token_lock(keystore, false)
}

fn take_token_lock(keystore: &Path, wait: bool) -> anyhow::Result<bool> {
    let held = |locks: &Vec<(PathBuf, File)>| locks.iter().any(|(p, _)| p == keystore);
    // A poisoned list still holds the locks taken; the list stays usable.
    if held(&TOKEN_LOCKS.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(true);
    }
    let mut name = keystore.to_path_buf().into_os_string();
    name.push(".lock");
    let path = PathBuf::from(name);
    // Created 0600, never through a link: whoever can write the directory
    // cannot make dnsseal create or truncate another file.
    let file = crate::files::open(&path, crate::files::Open::Lock)
        .context("cannot open the token lock")?;
    if file.try_lock().is_err() {
        if !wait {
            return Ok(false);
        }
        tracing::info!("another dnsseal process is using the token; waiting");
        file.lock()
            .with_context(|| format!("cannot take the token lock {}", path.display()))?;
    }
    let mut locks = TOKEN_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    if !held(&locks) {
        locks.push((keystore.to_path_buf(), file));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;
    use crate::failure::{exit, exit_code, Failure};

    #[test]
    fn a_module_that_will_not_load_names_its_unset_configuration_variable() {
        let failed = || TokenError::ModuleLoad {
            path: PathBuf::from("/m.so"),
            reason: "C_Initialize: token not present".into(),
        };
        let kryoptic = Profile::load("kryoptic").unwrap();
        let e = with_conf_hint(&kryoptic, failed(), |_| false);
        assert!(
            e.to_string()
                .contains("(KRYOPTIC_CONF is not set: the kryoptic profile's module"),
            "{e}"
        );
        assert_eq!(exit_code(&e.into()), exit::MODULE);
        // Set: the module's own words stand.
        let e = with_conf_hint(&kryoptic, failed(), |_| true);
        assert!(!e.to_string().contains("KRYOPTIC_CONF"), "{e}");
        // A profile that names no variable, or another error: unchanged.
        let softhsm = Profile::load("softhsm2").unwrap();
        assert!(!with_conf_hint(&softhsm, failed(), |_| false)
            .to_string()
            .contains("not set"));
        let e = with_conf_hint(&kryoptic, TokenError::PinLocked, |_| false);
        assert!(matches!(e, TokenError::PinLocked));
    }

    /// A project as `dnsseal init` leaves it, without a token: the config
    /// names a module that is never loaded.
    fn fresh(dir: &Path) -> PathBuf {
        let config = dir.join(crate::config::CONFIG_FILE);
        std::fs::write(
            &config,
            "version = 1\nkeystore = \"keystore.sqlite\"\naudit_log = \"audit.log\"\n\n\
             [token]\nprofile = \"softhsm2\"\nmodule = \"/nonexistent/libnothing.so\"\nlabel = \"test\"\n",
        )
        .unwrap();
        drop(Keystore::create(&dir.join("keystore.sqlite")).unwrap());
        File::create(dir.join("audit.log")).unwrap();
        config
    }

    fn clock() -> Clock {
        Clock::fixed(Timestamp::from_unix(1_700_000_000))
    }

    fn event(detail: &str) -> Event {
        Event {
            command: "test".into(),
            detail: detail.into(),
            ..Event::default()
        }
    }

    fn log(dir: &Path) -> Vec<audit::Record> {
        let (records, verdict) = audit::verify(&dir.join("audit.log")).unwrap();
        assert!(
            !matches!(verdict, audit::Verdict::Broken { .. }),
            "{verdict:?}"
        );
        records
    }

    #[test]
    fn a_fresh_project_opens_and_audits() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "keys create").unwrap();
        assert_eq!(p.command(), "keys create");
        assert_eq!(
            p.config().keystore,
            dir.path().canonicalize().unwrap().join("keystore.sqlite")
        );
        assert!(p.keystore().keys(None).unwrap().is_empty());
        assert_eq!(p.keystore().audit_head().unwrap(), None);
        p.audit(event("first")).unwrap();
        let records = log(dir.path());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].detail, "first");
        assert_eq!(records[0].time, clock().now().rfc3339());
        let head = p.keystore().audit_head().unwrap().unwrap();
        assert_eq!((head.0, head.1.as_str()), (1, records[0].hash.as_str()));
    }

    #[test]
    fn a_missing_config_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::open(&dir.path().join("dnsseal.toml"), clock(), "sign")
            .err()
            .expect("no config, no project");
        assert_eq!(exit_code(&err), exit::CONFIG);
    }

    #[test]
    fn a_broken_audit_chain_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "keys create").unwrap();
        p.audit(event("first")).unwrap();
        p.audit(event("second")).unwrap();
        drop(p);
        let path = dir.path().join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"first\""));
        std::fs::write(&path, text.replace("\"first\"", "\"edited\"")).unwrap();
        let err = Project::open(&config, clock(), "keys create")
            .err()
            .expect("an edited log must refuse the open");
        assert_eq!(exit_code(&err), exit::VERIFY, "{err:#}");
    }

    /// The first operation after the open relies on the open's check;
    /// every later one (a long-lived project, like the service's) checks
    /// the log again.
    #[test]
    fn audited_checks_the_log_again_after_the_first_operation() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "sign").unwrap();
        p.audited(None, |p| p.audit(event("first"))).unwrap();
        let path = dir.path().join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"first\"", "\"edited\"")).unwrap();
        let err = p
            .audited(None, |_| Ok(()))
            .expect_err("an edited log must refuse the next operation");
        assert_eq!(exit_code(&err), exit::VERIFY, "{err:#}");
    }

    #[test]
    fn a_shortened_audit_log_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "keys create").unwrap();
        p.audit(event("first")).unwrap();
        drop(p);
        std::fs::write(dir.path().join("audit.log"), "").unwrap();
        let err = Project::open(&config, clock(), "keys create")
            .err()
            .expect("a log that lost its records must refuse the open");
        assert_eq!(exit_code(&err), exit::VERIFY, "{err:#}");
    }

    #[test]
    fn an_outbox_entry_of_a_stopped_run_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "policy set").unwrap();
        // Two committed changes whose events are still in the outbox; the
        // stopped run had written the first to the log already.
        let (at, first) = p.outbox_event(&event("first"));
        let (_, second) = p.outbox_event(&event("second"));
        let ks = p.keystore_mut();
        ks.set_policy("example.", "p1", at, first).unwrap();
        ks.set_policy("example.", "p2", at, second).unwrap();
        let cfg = Config::load(&config).unwrap();
        audit::append(&cfg.audit_log, at, &event("first"), None).unwrap();
        drop(p);

        let p = Project::open(&config, clock(), "policy set").unwrap();
        assert!(p.keystore().outbox().unwrap().is_empty());
        let details: Vec<String> = log(dir.path()).into_iter().map(|r| r.detail).collect();
        assert_eq!(details, ["first", "second"]);
        assert_eq!(p.keystore().audit_head().unwrap().map(|h| h.0), Some(2));
        drop(p);
        // Opened again: nothing more to write.
        let _p = Project::open(&config, clock(), "policy set").unwrap();
        assert_eq!(log(dir.path()).len(), 2);
    }

    #[test]
    fn audited_records_a_failed_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        let mut p = Project::open(&config, clock(), "keys delete").unwrap();
        let err = p
            .audited(Some("example.".into()), |_| -> anyhow::Result<()> {
                Err(Failure::Refused("key 7 is active".into()).into())
            })
            .expect_err("the body failed");
        assert_eq!(exit_code(&err), exit::REFUSED, "the body's error is kept");
        let records = log(dir.path());
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.command, "keys delete");
        assert_eq!(r.zone.as_deref(), Some("example."));
        assert_eq!(r.detail, "key 7 is active");
        // A body that succeeds leaves no record of its own.
        let v = p.audited(None, |p| Ok(p.command().len())).unwrap();
        assert_eq!(v, "keys delete".len());
        assert_eq!(log(dir.path()).len(), 1);
    }

    #[test]
    fn the_token_lock_is_taken_once_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let ks = dir.path().join("keystore.sqlite");
        lock_token(&ks).unwrap();
        // A second take from this process must not wait on its own lock.
        lock_token(&ks).unwrap();
        let other = File::open(dir.path().join("keystore.sqlite.lock")).unwrap();
        assert!(
            other.try_lock().is_err(),
            "the lock file is not locked while the process holds the token"
        );
    }

    #[test]
    fn a_keystore_with_keys_and_no_history_opens_only_after_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let config = fresh(dir.path());
        // A new project with no keys starts its chain.
        let mut p = Project::open(&config, clock(), "keys create").unwrap();
        p.audit(event("init")).unwrap();
        p.keystore_mut()
            .insert_keys(&[crate::keystore::test_key(1, 1)])
            .unwrap();
        p.audit(event("made a key")).unwrap();
        drop(p);
        // Log gone and head forgotten: refused, and no log appears.
        std::fs::remove_file(dir.path().join("audit.log")).unwrap();
        let ks_path = dir.path().join("keystore.sqlite");
        let conn = rusqlite::Connection::open(&ks_path).unwrap();
        conn.execute("DELETE FROM meta WHERE name = 'audit_head'", [])
            .unwrap();
        drop(conn);
        let err = Project::open(&config, clock(), "keys list").err().unwrap();
        assert_eq!(exit_code(&err), exit::VERIFY, "{err:#}");
        assert!(!dir.path().join("audit.log").exists());
        // The reset starts a new chain that opens.
        let cfg = Config::load(&config).unwrap();
        let mut ks = Keystore::open(&cfg.keystore).unwrap();
        let head = history::reset(&cfg, &mut ks, clock().now(), "test").unwrap();
        assert_eq!(head.seq, 1);
        assert!(Project::open(&config, clock(), "keys list").is_ok());
        assert_eq!(log(dir.path())[0].command, audit::RESET_COMMAND);
        // And is not reset again.
        let err = history::reset(&cfg, &mut ks, clock().now(), "again").unwrap_err();
        assert_eq!(exit_code(&err), exit::REFUSED, "{err:#}");
    }
}
