//! The `dnsseal` command: the one place that wires the modules together.
//!
//! Every subcommand reads its input, asks the library, writes audit records
//! for what changed key state, and prints. Errors travel up as
//! `anyhow::Error`; [`exit_code`] maps them onto the documented exit codes.

/// `print!` and `println!` for the commands' output, which return an error
/// (exit code 1, a message on stderr) instead of panicking when standard
/// output is gone, e.g. a pipe whose reader has quit (`| head -1`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))?
    };
}
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// Writes to standard output; see [`out!`].
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_fmt(text)
        .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))
}

mod args;
mod audit_cmd;
mod context;
mod import;
mod init;
mod keys;
mod pin;
mod reconcile;
mod rollover;
mod sign_cmd;
mod token_cmd;

pub use args::{Cli, Command};
pub use context::Failure;

use crate::token::TokenError;

/// Exit codes that scripts can rely on (also listed in `dnsseal --help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected failure (I/O, a bug, standard output closed early): see
    /// the message.
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
    /// Keystore and token disagree (`keys reconcile`).
    pub const DRIFT: u8 = 12;
}

/// Text for `--help`: the exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success                         7  PIN wrong, missing or refused
  1  unexpected failure (see text)    8  PIN locked
  2  usage error                      9  token cannot do this algorithm/size
  3  bad input (name, algorithm, file) 10 refused for safety (see --force)
  4  config or keystore problem      11  verification failed (audit chain)
  5  PKCS#11 module not loadable     12  keystore and token disagree
  6  token absent or ambiguous

PIN sources, in order: --pin-file FILE, the DNSSEAL_PIN variable, a prompt on
the terminal. The PIN never appears in arguments, logs or the audit log.";

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context::Context::new(&cli)?;
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Token(args::TokenCommand::Info(a)) => token_cmd::info(&ctx, a),
        Command::Token(args::TokenCommand::Bench(a)) => token_cmd::bench(&ctx, a),
        Command::Keys(k) => match k {
            args::KeysCommand::Create(a) => keys::create(&ctx, a),
            args::KeysCommand::List(a) => keys::list(&ctx, a),
            args::KeysCommand::Show(a) => keys::show(&ctx, a),
            args::KeysCommand::Dnskey(a) => keys::dnskey(&ctx, a),
            args::KeysCommand::Ds(a) => keys::ds(&ctx, a),
            args::KeysCommand::Delete(a) => keys::delete(&ctx, a),
            args::KeysCommand::Restore(a) => keys::restore(&ctx, a),
            args::KeysCommand::ImportBind(a) => import::run(&ctx, a),
            args::KeysCommand::Reconcile(a) => reconcile::run(&ctx, a),
        },
        Command::Sign(a) => sign_cmd::run(&ctx, a),
        Command::Policy(p) => match p {
            args::PolicyCommand::Show(a) => rollover::policy_show(&ctx, a),
            args::PolicyCommand::Set(a) => rollover::policy_set(&ctx, a),
            args::PolicyCommand::Run(a) => rollover::policy_run(&ctx, a),
        },
        Command::Rollover(r) => rollover::rollover(&ctx, r),
        Command::Verify(a) => sign_cmd::verify(&ctx, a),
        Command::Audit(a) => match a {
            args::AuditCommand::Verify(a) => audit_cmd::verify(&ctx, a),
            args::AuditCommand::Export(a) => audit_cmd::export(&ctx, a),
        },
    }
}

/// How the profile has signing sessions use the keys.
fn key_objects(cfg: &crate::config::Config) -> crate::token::KeyObjects {
    if cfg.token.profile.session_key_copies {
        crate::token::KeyObjects::SessionCopies
    } else {
        crate::token::KeyObjects::TokenObjects
    }
}

/// The exit code for an error: the first error in the chain that has one.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit_code();
        }
        if let Some(t) = cause.downcast_ref::<TokenError>() {
            return match t {
                TokenError::ModuleLoad { .. } => exit::MODULE,
                TokenError::NotFound { .. } | TokenError::Ambiguous { .. } => exit::TOKEN,
                TokenError::PinIncorrect | TokenError::PinLength => exit::PIN,
                TokenError::PinLocked => exit::PIN_LOCKED,
                TokenError::Unsupported { .. } => exit::UNSUPPORTED,
                _ => exit::FAILURE,
            };
        }
        if cause.downcast_ref::<crate::config::ConfigError>().is_some()
            || cause
                .downcast_ref::<crate::keystore::StoreError>()
                .is_some()
        {
            return exit::CONFIG;
        }
        if cause.downcast_ref::<crate::zone::NameError>().is_some()
            || cause
                .downcast_ref::<crate::zone::parse::ZoneError>()
                .is_some()
            || cause
                .downcast_ref::<crate::clock::TimeParseError>()
                .is_some()
        {
            return exit::BAD_INPUT;
        }
        if let Some(e) = cause.downcast_ref::<crate::sign::engine::SignError>() {
            return match e {
                crate::sign::engine::SignError::BadSignature { .. } => exit::VERIFY,
                _ => exit::FAILURE,
            };
        }
        if let Some(a) = cause.downcast_ref::<crate::audit::AuditError>() {
            if matches!(
                a,
                crate::audit::AuditError::Broken { .. }
                    | crate::audit::AuditError::Truncated { .. }
            ) {
                return exit::VERIFY;
            }
        }
    }
    exit::FAILURE
}
