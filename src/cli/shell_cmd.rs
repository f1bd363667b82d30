//! `dnsseal shell`: [`crate::shell`] wired to the terminal (rustyline),
//! to the commands (the CLI's own [`dispatch`](super::dispatch)) and to
//! the audit log (one record per line, run or refused).
//!
//! At start, while the process has one thread: the two SSH variables are
//! read (SSH_CONNECTION for the audit only, SSH_ORIGINAL_COMMAND as the
//! command to run), then the whole environment is cleared but TERM, and
//! the project's SoftHSMv2 configuration set from its dnsseal.toml. No
//! later step looks at anything the user could have put in the
//! environment.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Editor, Helper};

use crate::audit::Event;
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, CONFIG_FILE};
use crate::failure::{exit, Failure};
use crate::keystore::Keystore;
use crate::shell::complete::{complete, Catalog};
use crate::shell::grammar::{parse_line, Line, LineError};
use crate::shell::tokenize::excerpt;
use crate::shell::{client_from_ssh_connection, project_dir, SYSTEM_CONFIG};

use super::args::{Cli, Command};
use super::context::Context;

/// The variables kept: TERM, for line editing.
const KEEP_ENV: &[&str] = &["TERM"];

/// The prompt of the interactive shell.
pub const PROMPT: &str = "dnsseal> ";

/// Runs the shell; its exit code.
pub fn run(cli: Cli) -> u8 {
    match setup(cli) {
        Ok((shell, input)) => shell.serve(input),
        Err(e) => {
            eprintln!("dnsseal shell: {e:#}");
            super::exit_code(&e)
        }
    }
}

/// Where the commands come from.
enum Input {
    /// One line, and where it came from (for the audit).
    Line(String, &'static str),
    /// One line that is not UTF-8 text.
    NotText(&'static str),
    /// A terminal.
    Interactive,
}

/// The shell, set up for its project.
struct Shell {
    clock: Clock,
    config_path: PathBuf,
    keystore: PathBuf,
}

/// After a line: go on (with its exit code) or leave.
enum Step {
    Continue(u8),
    Exit(u8),
}

fn setup(cli: Cli) -> anyhow::Result<(Shell, Input)> {
    let Command::Shell(args) = cli.command else {
        anyhow::bail!("not the shell command");
    };
    // Read before the environment is cleared.
    let connection = std::env::var("SSH_CONNECTION").ok();
    let original = std::env::var_os("SSH_ORIGINAL_COMMAND");
    let clock = match &cli.now {
        Some(t) => Clock::fixed(Timestamp::parse(t)?),
        None => Clock::system(),
    };
    let dir = project_dir(args.project.as_deref(), Path::new(SYSTEM_CONFIG))?;
    crate::harden::clear_env_except(KEEP_ENV).map_err(anyhow::Error::msg)?;
    let config_path = dir.join(CONFIG_FILE);
    let cfg = Config::load(&config_path)?;
    for (var, conf) in cfg.token.module_env() {
        crate::harden::set_env(var, conf.as_os_str()).map_err(anyhow::Error::msg)?;
    }
    if let Some(c) = connection {
        crate::audit::set_client(client_from_ssh_connection(&c));
    }
    let one = |text: std::ffi::OsString, source| match text.into_string() {
        Ok(line) => Input::Line(line, source),
        Err(_) => Input::NotText(source),
    };
    let input = match (args.command, original) {
        (Some(c), _) => one(c, "-c"),
        (None, Some(c)) => one(c, "SSH_ORIGINAL_COMMAND"),
        (None, None) if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            Input::Interactive
        }
        (None, None) => {
            return Err(Failure::BadInput(
                "no command: give one (ssh HOST 'keys list') or log in on a terminal".into(),
            )
            .into())
        }
    };
    let shell = Shell {
        clock,
        config_path,
        keystore: cfg.keystore,
    };
    Ok((shell, input))
}

impl Shell {
    fn serve(&self, input: Input) -> u8 {
        match input {
            Input::Line(line, source) => match self.execute(&line, source) {
                Step::Continue(code) | Step::Exit(code) => code,
            },
            Input::NotText(source) => {
                let why = "the command is not UTF-8 text";
                eprintln!("dnsseal shell: refused: {why}");
                self.audit(source, "", None, &format!("refused: {why}"), true);
                exit::REFUSED
            }
            Input::Interactive => self.interactive(),
        }
    }

    /// Parses and runs one line; every non-empty line is audited.
    fn execute(&self, line: &str, source: &str) -> Step {
        match parse_line(line) {
            Ok(Line::Empty) => Step::Continue(exit::OK),
            Ok(Line::Help(text)) => {
                let nl = if text.ends_with('\n') { "" } else { "\n" };
                // Standard output may be gone (a pipe closed early): said, not a panic.
                if let Err(e) = super::write_stdout(format_args!("{text}{nl}")) {
                    eprintln!("dnsseal shell: {e}");
                }
                self.audit(source, line, None, "help", false);
                Step::Continue(exit::OK)
            }
            Ok(Line::Exit) => {
                self.audit(source, line, None, "exit", false);
                Step::Exit(exit::OK)
            }
            Ok(Line::Run(req)) => {
                let zone = req.zone.clone();
                let ctx =
                    Context::for_shell(self.clock, self.config_path.clone(), req.json, req.name);
                let code = match super::dispatch(&ctx, req.command) {
                    Ok(()) => exit::OK,
                    Err(e) => {
                        eprintln!("dnsseal: error: {e:#}");
                        super::exit_code(&e)
                    }
                };
                // The command's module is unloaded by now.
                crate::project::release_token_locks();
                let outcome = match code {
                    exit::OK => "ran, exit 0".to_string(),
                    c => format!("failed, exit {c}"),
                };
                self.audit(source, line, zone, &outcome, code != exit::OK);
                Step::Continue(code)
            }
            Err(LineError::Refused(r)) => {
                eprintln!("dnsseal shell: refused: {r}");
                self.audit(source, line, None, &format!("refused: {r}"), true);
                Step::Continue(exit::REFUSED)
            }
            Err(LineError::Usage(text)) => {
                eprint!("{text}");
                self.audit(source, line, None, "usage error, exit 2", true);
                Step::Continue(exit::USAGE)
            }
        }
    }

    /// One audit record for a line: where it came from, the zone it was
    /// about, what became of it, the line itself (escaped, cut); a failure
    /// to audit is reported.
    fn audit(&self, source: &str, line: &str, zone: Option<String>, outcome: &str, failed: bool) {
        let event = Event {
            command: "shell".to_string(),
            zone,
            failed,
            detail: format!("{outcome}; {source}: {}", excerpt(line)),
            ..Event::default()
        };
        let appended = Config::load(&self.config_path)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| {
                let mut ks = Keystore::open(&cfg.keystore)?;
                crate::project::append(&cfg, &mut ks, self.clock.now(), event)
            });
        if let Err(e) = appended {
            eprintln!("dnsseal shell: could not audit the command: {e:#}");
        }
    }

    /// The interactive loop: line editing, history in memory only, tab
    /// completion; Ctrl-C drops the line, Ctrl-D (or `exit`) leaves.
    fn interactive(&self) -> u8 {
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .build();
        let mut editor = match Editor::<ShellHelper, DefaultHistory>::with_config(config) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("dnsseal shell: cannot use the terminal: {e}");
                return exit::FAILURE;
            }
        };
        editor.set_helper(Some(ShellHelper {
            keystore: self.keystore.clone(),
        }));
        eprintln!(
            "dnsseal key maintainer's shell: `help` lists the commands; Ctrl-D or `exit` leaves."
        );
        // At the prompt Ctrl-C is a key (the editor's raw mode); while a
        // command runs it is SIGINT, which must neither end the session
        // nor stop a key operation halfway: it is noted, and said.
        let ctrl_c = Arc::new(AtomicBool::new(false));
        if let Err(e) =
            signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&ctrl_c))
        {
            eprintln!("dnsseal shell: cannot catch Ctrl-C: {e}");
        }
        loop {
            match editor.readline(PROMPT) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    let step = self.execute(&line, "terminal");
                    if ctrl_c.swap(false, Ordering::Relaxed) {
                        eprintln!("Ctrl-C: a command is not stopped halfway; it ran to its end (see above)");
                    }
                    if let Step::Exit(code) = step {
                        return code;
                    }
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return exit::OK,
                Err(e) => {
                    eprintln!("dnsseal shell: cannot read the terminal: {e}");
                    return exit::FAILURE;
                }
            }
        }
    }
}

/// Completion for rustyline: [`complete`] with the keystore's zones and
/// key tags, read at each Tab (no token, no PIN).
struct ShellHelper {
    keystore: PathBuf,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let catalog = Keystore::open(&self.keystore)
            .map_err(anyhow::Error::from)
            .and_then(|ks| Catalog::load(&ks))
            .unwrap_or_default();
        let before = line.get(..pos).unwrap_or(line);
        Ok(complete(before, &catalog))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}
