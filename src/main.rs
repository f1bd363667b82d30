//! The `dnsseal` binary: guard the process's memory, parse arguments, set
//! up logging, run, and map the error (printed once, with its chain) onto a
//! documented exit code.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use dnsseal::cli::{self, Cli};

/// jemalloc for dnsseal's own allocations. A software token allocates on
/// the signing sessions' threads through the C library's malloc; when
/// dnsseal's allocations used the same malloc, `sign -P` on two SoftHSMv2
/// sessions made 0.80-0.90 of the raw C_Sign rate, with its time in
/// contended locks; with them in jemalloc, 0.96-0.99 side by side. Peak
/// memory stays where it was (see .cargo/config.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // First, while this is the only thread and before any PIN is read: no
    // core dumps, not dumpable (see dnsseal::harden).
    let missed = dnsseal::harden::at_start();
    let cli = Cli::parse_named();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // cryptoki logs every mechanism number it has no name for at ERROR
    // level; that is noise for an operator, so it only shows when asked.
    // The shell takes nothing from the environment of whoever logs in.
    let shell = matches!(cli.command, cli::Command::Shell(_));
    let default = || EnvFilter::new(format!("{level},cryptoki=off"));
    let filter = if shell {
        default()
    } else {
        EnvFilter::try_from_env("DNSSEAL_LOG").unwrap_or_else(|_| default())
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    for what in missed {
        tracing::warn!("{what}");
    }
    if shell {
        return ExitCode::from(cli::run_shell(cli));
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::from(cli::exit::OK),
        Err(err) => {
            eprintln!("dnsseal: error: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
