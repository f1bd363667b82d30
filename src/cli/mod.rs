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

pub mod args;
mod audit_cmd;
mod context;
mod import;
mod init;
mod keys;
mod ksr_cmd;
mod reconcile;
mod rollover;
pub(crate) mod serve_cmd;
mod shell_cmd;
mod sign_cmd;
mod token_cmd;

pub use args::{Cli, Command};
pub use context::Failure;

pub use crate::failure::exit;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context::Context::new(&cli)?;
    dispatch(&ctx, cli.command)
}

/// Runs `dnsseal shell` (see [`crate::shell`]); its exit code.
pub fn run_shell(cli: Cli) -> u8 {
    shell_cmd::run(cli)
}

/// Runs one command in a context: the one table from commands to calls,
/// for the command line and the shell alike.
fn dispatch(ctx: &context::Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Token(args::TokenCommand::Info(a)) => token_cmd::info(ctx, a),
        Command::Token(args::TokenCommand::Bench(a)) => token_cmd::bench(ctx, a),
        Command::Keys(k) => match k {
            args::KeysCommand::Create(a) => keys::create(ctx, a),
            args::KeysCommand::List(a) => keys::list(ctx, a),
            args::KeysCommand::Show(a) => keys::show(ctx, a),
            args::KeysCommand::Dnskey(a) => keys::dnskey(ctx, a),
            args::KeysCommand::Ds(a) => keys::ds(ctx, a),
            args::KeysCommand::Delete(a) => keys::delete(ctx, a),
            args::KeysCommand::Restore(a) => keys::restore(ctx, a),
            args::KeysCommand::ImportBind(a) => import::run(ctx, a),
            args::KeysCommand::Reconcile(a) => reconcile::run(ctx, a),
        },
        Command::Sign(a) => sign_cmd::run(ctx, a),
        Command::Serve(a) => serve_cmd::run(ctx, a),
        Command::Policy(p) => match p {
            args::PolicyCommand::Show(a) => rollover::policy_show(ctx, a),
            args::PolicyCommand::Set(a) => rollover::policy_set(ctx, a),
            args::PolicyCommand::Run(a) => rollover::policy_run(ctx, a),
        },
        Command::Rollover(r) => rollover::rollover(ctx, r),
        Command::Verify(a) => sign_cmd::verify(ctx, a),
        Command::Ksr(args::KsrCommand::Show(a)) => ksr_cmd::show(ctx, a),
        Command::Ksr(args::KsrCommand::Create(a)) => ksr_cmd::create(ctx, a),
        Command::Ksr(args::KsrCommand::Sign(a)) => ksr_cmd::sign(ctx, a),
        Command::Skr(args::SkrCommand::Import(a)) => ksr_cmd::import(ctx, a),
        Command::Audit(a) => match a {
            args::AuditCommand::Verify(a) => audit_cmd::verify(ctx, a),
            args::AuditCommand::Export(a) => audit_cmd::export(ctx, a),
            args::AuditCommand::Reset(a) => audit_cmd::reset(ctx, a),
            args::AuditCommand::Key(a) => audit_cmd::key(ctx, a),
            args::AuditCommand::Checkpoint => audit_cmd::checkpoint(ctx),
        },
        Command::Shell(_) => Err(anyhow::anyhow!(
            "dnsseal shell cannot be run from inside a command"
        )),
    }
}

/// The exit code for an error: the first error in the chain that has one.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    crate::failure::exit_code(err)
}
