//! What every subcommand shares as CLI state: the clock from `--now`, the
//! config path, the PIN file and the PIN once read, the output flags and
//! the command's name. Opening the project, the token lock and the audit
//! bookkeeping are the library's ([`crate::project`]); the methods here
//! that do them are thin wrappers over it.
//!
//! The context is made at the start of the run, while the process has one
//! thread; that is when the configured SoftHSMv2 configuration is put in
//! the environment (see [`crate::harden::set_env`]).

use std::io::Write;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::harden;

use super::args::Cli;
use crate::audit::Event;
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, CONFIG_FILE};
use crate::keystore::Keystore;
use crate::pin;
use crate::project;
use crate::token::{Module, Token, UserSession};

pub use crate::failure::Failure;

/// Shared state of one run.
pub struct Context {
    pub clock: Clock,
    pub config_path: PathBuf,
    pub pin_file: Option<PathBuf>,
    pub json: bool,
    /// Only errors on stderr.
    pub quiet: bool,
    /// The command as the audit log names it, e.g. "keys create".
    pub command: String,
    /// The user PIN once read: the one copy the process holds, lent out
    /// by reference (a run that logs in twice asks once).
    pin: std::cell::OnceCell<pin::Pin>,
    /// `dnsseal shell`: the PIN comes from the configured pin_file only,
    /// never from a credential, the environment or a prompt.
    pin_file_only: bool,
}

impl Context {
    pub fn new(cli: &Cli) -> anyhow::Result<Context> {
        let clock = match &cli.now {
            Some(t) => Clock::fixed(Timestamp::parse(t)?),
            None => Clock::system(),
        };
        let config_path = match &cli.config {
            Some(p) => p.clone(),
            None => match &cli.command {
                super::Command::Init(a) => a
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(CONFIG_FILE),
                _ => PathBuf::from(CONFIG_FILE),
            },
        };
        export_softhsm_conf(&config_path);
        Ok(Context {
            clock,
            config_path,
            pin_file: cli.pin_file.clone(),
            json: cli.json,
            quiet: cli.quiet,
            command: cli.name.clone(),
            pin: std::cell::OnceCell::new(),
            pin_file_only: false,
        })
    }

    /// The context of one command of `dnsseal shell`: the project's
    /// configuration, the PIN from its pin_file only. The environment was
    /// set up when the shell started (see `cli::shell_cmd`).
    pub fn for_shell(clock: Clock, config_path: PathBuf, json: bool, command: String) -> Context {
        Context {
            clock,
            config_path,
            pin_file: None,
            json,
            quiet: false,
            command,
            pin: std::cell::OnceCell::new(),
            pin_file_only: true,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config_path)?)
    }

    pub fn keystore(&self, cfg: &Config) -> anyhow::Result<Keystore> {
        Ok(Keystore::open(&cfg.keystore)?)
    }

    /// Loads the configured PKCS#11 module, after taking the token lock
    /// (see [`project::load_module`]).
    pub fn module(&self, cfg: &Config) -> anyhow::Result<Module> {
        project::load_module(cfg)
    }

    /// The user PIN from the usual sources, read on first use.
    pub fn user_pin(&self) -> anyhow::Result<&SecretString> {
        if let Some(p) = self.pin.get() {
            return Ok(p.secret());
        }
        let file = match &self.pin_file {
            Some(f) => Some(f.clone()),
            None => Config::load(&self.config_path)
                .ok()
                .and_then(|c| c.token.pin_file),
        };
        if self.pin_file_only && file.is_none() {
            return Err(Failure::NoPin(format!(
                "dnsseal shell reads the user PIN only from pin_file in [token] of {}, and none is set",
                self.config_path.display()
            ))
            .into());
        }
        let read = pin::read(file.as_deref(), &pin::USER_PIN)?;
        Ok(self.pin.get_or_init(|| read).secret())
    }

    /// Finds the token and logs in (the PIN is read once the token is
    /// found, so a missing token is reported before a PIN is asked for).
    pub fn login<'m>(
        &self,
        cfg: &Config,
        module: &'m Module,
    ) -> anyhow::Result<(Token<'m>, UserSession)> {
        let token = module.find_token(&cfg.token.selector)?;
        let session = token.login(self.user_pin()?)?;
        Ok((token, session))
    }

    /// Refuses to go on when the audit log is broken or shortened: an
    /// operation that cannot be audited must not happen.
    pub fn check_audit(&self, cfg: &Config, ks: &Keystore) -> anyhow::Result<()> {
        project::check_log(cfg, ks)?;
        if !ks.outbox()?.is_empty() {
            self.flush_outbox(cfg, &mut self.keystore(cfg)?)?;
        }
        Ok(())
    }

    /// Writes the audit events that the keystore committed with a change
    /// into the log, each exactly once (see [`project::flush_outbox`]).
    pub fn flush_outbox(&self, cfg: &Config, ks: &mut Keystore) -> anyhow::Result<()> {
        project::flush_outbox(cfg, ks)
    }

    /// Appends an audit record and remembers the new head in the keystore.
    pub fn audit(&self, cfg: &Config, ks: &mut Keystore, event: Event) -> anyhow::Result<()> {
        project::append(cfg, ks, self.now(), event)
    }

    /// Runs a key-changing operation once the audit log has been checked;
    /// if the operation fails, the failed attempt is audited too.
    pub fn audited<T>(
        &self,
        cfg: &Config,
        zone: Option<String>,
        body: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.check_audit(cfg, &self.keystore(cfg)?)?;
        match body() {
            Ok(v) => Ok(v),
            Err(err) => {
                if let Ok(cfg) = self.config() {
                    if let Ok(mut ks) = self.keystore(&cfg) {
                        project::record_failure(
                            &cfg,
                            &mut ks,
                            self.now(),
                            &self.command,
                            zone,
                            &err,
                        );
                    }
                }
                Err(err)
            }
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        use std::io::Write as _;
        let text = serde_json::to_string_pretty(value)?;
        // A closed pipe is an error to report, not a panic (the work is
        // done by now; the exit code says the report did not get out).
        writeln!(std::io::stdout().lock(), "{text}")
            .map_err(|e| anyhow::anyhow!("cannot write the JSON report to standard output: {e}"))
    }
}

/// Puts the project's module configuration, if it names one, into the
/// module's variable (SOFTHSM2_CONF, or the profile's `conf_variable` for
/// `module_conf`) now, while the process has one thread: the module is
/// loaded later, when zone parsing may have started threads. A config
/// that does not load is reported by the command that needs it.
fn export_softhsm_conf(config_path: &std::path::Path) {
    let Ok(cfg) = Config::load(config_path) else {
        return;
    };
    for (var, conf) in cfg.token.module_env() {
        if let Err(e) = harden::set_env(var, conf.as_os_str()) {
            tracing::warn!("{e}");
        }
    }
}

/// Asks a yes/no question on the terminal; false when not on one.
pub fn confirm(question: &str, expected: &str) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == expected
}
