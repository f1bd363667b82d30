//! The shell's grammar: a clap parser of its own, over the same argument
//! structs as the `dnsseal` command, that turns a line's words into the
//! very [`Command`] the CLI would run. Only key management is in it;
//! commands and options that name files are left out.

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::cli::args::{
    AuditCommand, AuditExportArgs, AuditVerifyArgs, Command, CreateArgs, DeleteArgs, DnskeyArgs,
    DsArgs, ExportFormat, KeysCommand, ListArgs, PolicyCommand, PolicyRunArgs, PolicyShowArgs,
    RolloverCommand, SelectArgs, TokenCommand, TokenInfoArgs,
};

use super::tokenize::{tokenize, Refusal};

/// One line of the key maintainer's shell.
#[derive(Debug, Parser)]
#[command(
    name = "dnsseal shell",
    about = "The key maintainer's shell: key management commands only, no files, no system shell.",
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_version_flag = true,
    override_usage = "COMMAND [SUBCOMMAND] [ARGS]   (help COMMAND for more)"
)]
pub struct ShellLine {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ShellCommand,
}

/// The commands of the shell.
#[derive(Debug, Subcommand)]
pub enum ShellCommand {
    /// Create, list and retire keys; DNSKEY and DS data for the parent.
    #[command(subcommand)]
    Keys(ShellKeys),
    /// Roll keys step by step, each step no earlier than caches allow.
    #[command(subcommand)]
    Rollover(RolloverCommand),
    /// Show and run the per-zone key policy.
    #[command(subcommand)]
    Policy(ShellPolicy),
    /// Verify and export the audit log.
    #[command(subcommand)]
    Audit(ShellAudit),
    /// Inspect the token.
    #[command(subcommand)]
    Token(ShellToken),
    /// List the commands, or explain one: help keys create.
    Help {
        /// The command to explain.
        topic: Vec<String>,
    },
    /// Leave the shell.
    #[command(visible_alias = "quit")]
    Exit,
}

#[derive(Debug, Subcommand)]
pub enum ShellKeys {
    /// Generate key pairs inside the token for a zone.
    Create(CreateArgs),
    /// List keys (all zones, or one).
    List(ListArgs),
    /// Show one key in full, with its DNSKEY and DS records.
    Show(SelectArgs),
    /// The DNSKEY RRset as it will appear in the zone.
    Dnskey(DnskeyArgs),
    /// DS records of the zone's KSKs/CSKs: what the parent needs.
    Ds(DsArgs),
    /// Retire a key record (kept, recoverable); --destroy also destroys the
    /// token objects.
    Delete(DeleteArgs),
    /// Bring a removed key back as a published standby key.
    Restore(SelectArgs),
}

#[derive(Debug, Subcommand)]
pub enum ShellPolicy {
    /// Print the policy in force for a zone.
    Show(PolicyShowArgs),
    /// Advance zones with a policy to what is safe now.
    Run(PolicyRunArgs),
}

#[derive(Debug, Subcommand)]
pub enum ShellAudit {
    /// Check the hash chain of the project's audit log.
    Verify,
    /// Export the log (verified first) to standard output.
    Export(ShellExportArgs),
}

/// `audit export` without `-o FILE`: standard output only.
#[derive(Debug, Args)]
pub struct ShellExportArgs {
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Start at the first record made at or after T.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ShellToken {
    /// Module, slot, token identity and algorithms.
    Info(TokenInfoArgs),
}

/// Options of the CLI that name files or change where dnsseal looks:
/// named in the refusal when one is given.
pub const FILE_OPTIONS: &[&str] = &[
    "-o",
    "--output",
    "-f",
    "--pin-file",
    "--so-pin-file",
    "--project",
    "--config",
    "--incremental",
    "--ksk",
    "--pubkey",
    "--module",
    "--profile",
    "--dir",
    "--ds",
];

/// What a line asks for.
#[derive(Debug)]
pub enum Line {
    /// Nothing (an empty line).
    Empty,
    /// Text to print: the help asked for.
    Help(String),
    /// Leave the shell.
    Exit,
    /// A dnsseal command to run.
    Run(Box<Request>),
}

/// A command to run, as the CLI would run it.
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    /// The command as the audit log names it ("keys create").
    pub name: String,
    pub json: bool,
    /// The zone the command is about (the first, for `policy run`), for
    /// the shell's audit record.
    pub zone: Option<String>,
}

/// Why a line is not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Refused by the shell's rules (exit 10).
    Refused(Refusal),
    /// Not a valid use of an allowed command (exit 2), clap's message.
    Usage(String),
}

/// Parses a line: tokenizer, the path and option rules, the grammar.
pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let words = tokenize(line).map_err(LineError::Refused)?;
    if words.is_empty() {
        return Ok(Line::Empty);
    }
    check_words(&words).map_err(LineError::Refused)?;
    if let Some(refusal) = unknown_command(&words) {
        return Err(LineError::Refused(refusal));
    }
    let parsed = match ShellLine::try_parse_from(&words) {
        Ok(p) => p,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => Ok(Line::Help(e.render().to_string())),
                _ => Err(LineError::Usage(e.render().to_string())),
            }
        }
    };
    let name = command_path(&words).join(" ");
    match parsed.command {
        ShellCommand::Help { topic } => help(&topic).map(Line::Help),
        ShellCommand::Exit => Ok(Line::Exit),
        command => {
            check_zones(&command).map_err(LineError::Refused)?;
            let zone = zones(&command).first().map(|z| z.to_string());
            Ok(Line::Run(Box::new(Request {
                zone,
                command: into_command(command),
                name,
                json: parsed.json,
            })))
        }
    }
}

/// Refuses words that look like paths, and options that name files.
fn check_words(words: &[String]) -> Result<(), Refusal> {
    for w in words {
        let option = w.split('=').next().unwrap_or(w);
        if FILE_OPTIONS.contains(&option) {
            return Err(Refusal(format!(
                "option {option} is refused: the shell has no option that names a file \
                 (output goes to standard output)"
            )));
        }
        if w.contains('/') || w.contains("..") {
            return Err(Refusal(format!(
                "`{}` looks like a file path and is refused: the shell takes zone names and \
                 key tags, never paths",
                super::tokenize::excerpt(w)
            )));
        }
    }
    Ok(())
}

/// The subcommand names the words start with ("keys", "create").
fn command_path(words: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cmd = ShellLine::command();
    for w in words {
        match cmd.find_subcommand(w) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub.clone();
            }
            None => break,
        }
    }
    path
}

/// A refusal naming the first word that is not a command of the shell
/// where one is expected (`sign`, `keys import-bind`).
fn unknown_command(words: &[String]) -> Option<Refusal> {
    let mut cmd = ShellLine::command();
    let mut path: Vec<&str> = Vec::new();
    for w in words {
        if w == "--json" {
            continue;
        }
        if !cmd.has_subcommands() || w.starts_with('-') {
            return None;
        }
        let Some(sub) = cmd.find_subcommand(w).cloned() else {
            let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
            path.push(w);
            return Some(Refusal(format!(
                "`{}` is not a command of the key maintainer's shell; {} {}",
                super::tokenize::excerpt(&path.join(" ")),
                if path.len() == 1 {
                    "the commands are:".to_string()
                } else {
                    format!("`{}` has:", path[..path.len() - 1].join(" "))
                },
                names.join(", ")
            )));
        };
        path.push(w);
        cmd = sub;
    }
    None
}

/// Zones must be DNS names: letters, digits, `-`, `_` and `.`.
fn check_zones(command: &ShellCommand) -> Result<(), Refusal> {
    for zone in zones(command) {
        let ok = !zone.is_empty()
            && zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(Refusal(format!(
                "zone `{}` is refused: a zone is a DNS name (letters, digits, '-', '_', '.')",
                super::tokenize::excerpt(zone)
            )));
        }
    }
    Ok(())
}

fn one(z: &str) -> Vec<&str> {
    vec![z]
}

/// The zone names a command was given.
fn zones(command: &ShellCommand) -> Vec<&str> {
    use RolloverCommand as R;
    match command {
        ShellCommand::Keys(k) => match k {
            ShellKeys::Create(a) => one(&a.zone),
            ShellKeys::List(a) => a.zone.iter().map(String::as_str).collect(),
            ShellKeys::Show(a) | ShellKeys::Restore(a) => one(&a.zone),
            ShellKeys::Dnskey(a) => one(&a.zone),
            ShellKeys::Ds(a) => one(&a.zone),
            ShellKeys::Delete(a) => one(&a.key.zone),
        },
        ShellCommand::Rollover(r) => match r {
            R::Zsk(a) | R::Ksk(a) | R::Csk(a) | R::Insecure(a) => one(&a.zone),
            R::Algorithm(a) => one(&a.common.zone),
            R::Emergency(a) => one(&a.common.zone),
            R::DsSeen(a) | R::Plan(a) => one(&a.zone),
        },
        ShellCommand::Policy(ShellPolicy::Show(a)) => a.zone.iter().map(String::as_str).collect(),
        ShellCommand::Policy(ShellPolicy::Run(a)) => a.zones.iter().map(String::as_str).collect(),
        ShellCommand::Audit(_)
        | ShellCommand::Token(_)
        | ShellCommand::Help { .. }
        | ShellCommand::Exit => Vec::new(),
    }
}

/// The CLI's command for a shell command (help and exit have none).
fn into_command(command: ShellCommand) -> Command {
    match command {
        ShellCommand::Keys(k) => Command::Keys(match k {
            ShellKeys::Create(a) => KeysCommand::Create(a),
            ShellKeys::List(a) => KeysCommand::List(a),
            ShellKeys::Show(a) => KeysCommand::Show(a),
            ShellKeys::Dnskey(a) => KeysCommand::Dnskey(a),
            ShellKeys::Ds(a) => KeysCommand::Ds(a),
            ShellKeys::Delete(a) => KeysCommand::Delete(a),
            ShellKeys::Restore(a) => KeysCommand::Restore(a),
        }),
        ShellCommand::Rollover(r) => Command::Rollover(r),
        ShellCommand::Policy(ShellPolicy::Show(a)) => Command::Policy(PolicyCommand::Show(a)),
        ShellCommand::Policy(ShellPolicy::Run(a)) => Command::Policy(PolicyCommand::Run(a)),
        ShellCommand::Audit(ShellAudit::Verify) => {
            Command::Audit(AuditCommand::Verify(AuditVerifyArgs {
                file: None,
                excerpt: false,
                pubkey: Vec::new(),
                checkpoint: None,
            }))
        }
        ShellCommand::Audit(ShellAudit::Export(a)) => {
            Command::Audit(AuditCommand::Export(AuditExportArgs {
                format: a.format,
                since: a.since,
                output: None,
            }))
        }
        ShellCommand::Token(ShellToken::Info(a)) => Command::Token(TokenCommand::Info(a)),
        // Never reached: parse_line answers these itself.
        ShellCommand::Help { .. } | ShellCommand::Exit => {
            Command::Token(TokenCommand::Info(TokenInfoArgs {}))
        }
    }
}

/// The help text for `help [TOPIC...]`.
fn help(topic: &[String]) -> Result<String, LineError> {
    let mut cmd = ShellLine::command();
    cmd.build();
    for (i, w) in topic.iter().enumerate() {
        match cmd.find_subcommand(w) {
            Some(sub) => cmd = sub.clone(),
            None => {
                return Err(LineError::Refused(Refusal(format!(
                    "no help for `{}`: not a command of the key maintainer's shell",
                    super::tokenize::excerpt(&topic[..=i].join(" "))
                ))))
            }
        }
    }
    Ok(cmd.render_help().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(line: &str) -> String {
        match parse_line(line) {
            Err(LineError::Refused(r)) => r.0,
            other => panic!("{line}: not refused: {other:?}"),
        }
    }

    fn run(line: &str) -> Request {
        match parse_line(line) {
            Ok(Line::Run(r)) => *r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn allowed_commands_become_the_clis_commands() {
        let r = run("keys ds example.com --digest sha256,sha384");
        assert_eq!(r.name, "keys ds");
        assert_eq!(r.zone.as_deref(), Some("example.com"));
        match r.command {
            Command::Keys(KeysCommand::Ds(a)) => {
                assert_eq!(a.zone, "example.com");
                assert_eq!(a.digest, ["sha256", "sha384"]);
            }
            other => panic!("{other:?}"),
        }
        let r = run("--json keys list");
        assert!(r.json);
        assert_eq!(r.zone, None);
        assert_eq!(run("keys list example.com --json").name, "keys list");
        assert_eq!(run("rollover zsk example.com start").name, "rollover zsk");
        assert_eq!(run("rollover plan example.com").name, "rollover plan");
        assert_eq!(run("policy show example.com").name, "policy show");
        assert_eq!(run("policy run").name, "policy run");
        assert_eq!(run("token info").name, "token info");
        assert!(matches!(
            run("audit export --format csv").command,
            Command::Audit(AuditCommand::Export(AuditExportArgs { output: None, .. }))
        ));
        assert!(matches!(
            run("audit verify").command,
            Command::Audit(AuditCommand::Verify(AuditVerifyArgs { file: None, .. }))
        ));
        assert!(matches!(
            run("keys delete example.com -t 12345 --yes").command,
            Command::Keys(KeysCommand::Delete(_))
        ));
    }

    #[test]
    fn help_exit_and_empty_lines() {
        assert!(matches!(parse_line(""), Ok(Line::Empty)));
        assert!(matches!(parse_line("exit"), Ok(Line::Exit)));
        assert!(matches!(parse_line("quit"), Ok(Line::Exit)));
        let Ok(Line::Help(text)) = parse_line("help") else {
            panic!("help")
        };
        for c in ["keys", "rollover", "policy", "audit", "token", "exit"] {
            assert!(text.contains(c), "{text}");
        }
        assert!(!text.contains("sign"), "{text}");
        let Ok(Line::Help(text)) = parse_line("help keys create") else {
            panic!("help keys create")
        };
        assert!(text.contains("--algorithm"), "{text}");
        let Ok(Line::Help(text)) = parse_line("keys ds --help") else {
            panic!("--help")
        };
        assert!(text.contains("--digest"), "{text}");
        assert!(refused("help sign").contains("`sign`"));
    }

    #[test]
    fn commands_outside_the_shell_are_refused_by_name() {
        let why = refused("sign x");
        assert!(why.contains("`sign` is not a command"), "{why}");
        assert!(why.contains("keys"), "{why}");
        assert!(refused("init --softhsm").contains("`init`"));
        assert!(refused("keys import-bind example.com k").contains("`keys import-bind`"));
        assert!(refused("keys reconcile").contains("`keys reconcile`"));
        assert!(refused("audit reset --yes --reason x").contains("`audit reset`"));
        assert!(refused("policy set example.com p").contains("`policy set`"));
        assert!(refused("token bench example.com").contains("`token bench`"));
        assert!(refused("sh").contains("`sh`"));
        assert!(refused("--json sign x").contains("`sign` is not a command"));
        assert!(refused("keys --json reconcile").contains("`keys reconcile`"));
    }

    #[test]
    fn paths_and_file_options_are_refused() {
        let why = refused("keys ds ../../etc/passwd");
        assert!(why.contains("looks like a file path"), "{why}");
        assert!(refused("keys ds /etc/passwd").contains("file path"));
        assert!(refused("keys ds ..").contains("file path"));
        assert!(refused("keys list -o /tmp/x").contains("option -o"));
        assert!(refused("keys list -o x").contains("option -o"));
        assert!(refused("audit export --output=x").contains("option --output"));
        assert!(refused("keys list --pin-file p").contains("--pin-file"));
        assert!(refused("keys list --project p").contains("--project"));
        assert!(refused("keys list --config c").contains("--config"));
        // Quoted, the words reach the zone check.
        assert!(refused("keys ds '$(id)'").contains("zone `$(id)`"));
        assert!(refused("keys ds 'a b'").contains("zone"));
        assert!(refused("policy run ok.example 'x;y'").contains("zone"));
    }

    #[test]
    fn usage_errors_of_allowed_commands() {
        match parse_line("keys create example.com") {
            Err(LineError::Usage(text)) => assert!(text.contains("--role"), "{text}"),
            other => panic!("{other:?}"),
        }
        match parse_line("keys show example.com --tag notanumber") {
            Err(LineError::Usage(text)) => assert!(text.contains("notanumber"), "{text}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_line("keys list --bogus"),
            Err(LineError::Usage(_))
        ));
    }
}
