//! `dnsseal-client`: the remote client of the signing service alone, for a
//! host without a token (no PKCS#11 module is loaded, no keystore or PIN
//! read). `dnsseal-client sign --server ... ZONEFILE` takes the arguments
//! of `dnsseal sign`; the signed zone is written here; the exit codes are
//! dnsseal's.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dnsseal::service::client::{self, RemoteArgs};
use dnsseal::sign::request::SignArgs;

/// The remote client of dnsseal's signing service (dnsseal serve).
#[derive(Debug, Parser)]
#[command(name = "dnsseal-client", version, after_long_help = dnsseal::failure::exit_codes_help())]
struct Cli {
    /// Print the result as JSON on standard output.
    #[arg(long, global = true)]
    json: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a zone file on the signing service; the same arguments as
    /// `dnsseal sign`, and --server (required).
    Sign {
        #[command(flatten)]
        args: SignArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Sign { args, remote } = cli.command;
    if remote.server.is_none() {
        eprintln!("dnsseal-client: error: --server SOCKET|https://HOST:PORT is required");
        return ExitCode::from(dnsseal::failure::exit::USAGE);
    }
    match client::sign(&args, &remote) {
        Ok(result) => {
            if cli.json {
                match serde_json::to_string_pretty(&result) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("dnsseal-client: {e}"),
                }
            } else if !cli.quiet {
                eprintln!(
                    "{}: serial {} -> {}, {} signatures generated, {} retained, {:.3} s",
                    result.zone,
                    result.serial_in,
                    result.serial_out,
                    result.signatures_generated,
                    result.signatures_retained,
                    result.seconds
                );
            }
            ExitCode::from(dnsseal::failure::exit::OK)
        }
        Err(err) => {
            eprintln!("dnsseal-client: error: {err:#}");
            ExitCode::from(dnsseal::failure::exit_code(&err))
        }
    }
}
