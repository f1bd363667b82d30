//! Command line arguments, defined once with their documentation; clap turns
//! them into `--help`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub use crate::sign::request::{SerialArg, SignArgs};

/// `dnsseal sign`: the signing arguments, and where to sign.
#[derive(Debug, Args)]
pub struct SignCommand {
    #[command(flatten)]
    pub args: SignArgs,
    #[command(flatten)]
    pub remote: crate::service::client::RemoteArgs,
}

/// DNSSEC key management and zone signing with keys that never leave a
/// PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "dnsseal", version, after_long_help = crate::failure::exit_codes_help())]
pub struct Cli {
    /// Configuration file [default: ./dnsseal.toml].
    #[arg(long, global = true, env = "DNSSEAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Act as if the clock said T (YYYYMMDDHHMMSS in UTC, or RFC 3339):
    /// key timings, audit times and every later time come from it.
    #[arg(long, global = true, value_name = "T")]
    pub now: Option<String>,

    /// Read the user PIN from this file (first line; a regular file of
    /// mode 0600 or 0400 owned by this user, else exit 7). Otherwise
    /// pin_file in dnsseal.toml's [token], then the systemd credential dnsseal-pin in $CREDENTIALS_DIRECTORY, then the
    /// DNSSEAL_PIN variable (for CI), then a prompt on the terminal.
    #[arg(long, global = true, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,

    /// The command as the audit log names it ("keys create"): the
    /// subcommand names clap matched, filled in by [`Cli::parse_named`].
    #[arg(skip)]
    pub name: String,
}

impl Cli {
    /// Parses the process's arguments (exiting with the usage error, code
    /// 2, as clap does) and names the command by the subcommands given.
    pub fn parse_named() -> Cli {
        let matches = Cli::command().get_matches_from(shell_multicall(std::env::args_os()));
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let mut names = Vec::new();
        let mut at = &matches;
        while let Some((name, sub)) = at.subcommand() {
            names.push(name);
            at = sub;
        }
        cli.name = names.join(" ");
        cli
    }
}

/// The arguments as `dnsseal` reads them: a binary called `dnsseal-shell`
/// (a link, for /etc/shells and a login shell; `-dnsseal-shell` when
/// login(1) or sshd start it as a login shell) runs `dnsseal shell` with
/// the arguments it was given (sshd gives `-c COMMAND`).
pub fn shell_multicall(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let called = args
        .first()
        .map(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|n| n.to_os_string())
        })
        .unwrap_or_default()
        .unwrap_or_default();
    let called = called.to_string_lossy();
    if called.trim_start_matches('-') == "dnsseal-shell" {
        args.splice(0..1, ["dnsseal".into(), "shell".into()]);
    }
    args
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create dnsseal.toml, an empty keystore and the audit log here;
    /// with --softhsm also a private SoftHSMv2 token.
    Init(InitArgs),
    /// Inspect the token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create, list, publish data for, retire and import keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify, export, reset and sign checkpoints of the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Sign a zone file with the keys the keystore says are in use; with
    /// --server, on a signing service (dnsseal serve) with the same
    /// arguments.
    Sign(SignCommand),
    /// The signing service: sign requests on a Unix socket (and TLS with
    /// client certificates when configured), status, health and metrics;
    /// [service] in dnsseal.toml says who may do what.
    #[command(after_long_help = "\
Configuration ([service] in dnsseal.toml; see docs/service.md):
  [service]
  socket = \"dnsseal.sock\"              # mode 0660; clients known by uid/gid
  listen = \"192.0.2.1:8853\"            # TLS 1.3, client certificates only
  tls_cert = \"server.pem\"  tls_key = \"server.key\"  client_ca = \"clients-ca.pem\"
  [[service.allow]]
  uid = 1001
  zones = [\"example.com\"]
  [[service.allow]]
  subject = \"CN=monitor\"
  status = true

Examples:
  dnsseal serve --check          # configuration, token and PIN, then exit
  dnsseal serve                  # until SIGTERM (systemd: scripts/systemd/)")]
    Serve(crate::cli::serve_cmd::ServeArgs),
    /// Show, set and run the per-zone key and signing policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Roll keys step by step, each step no earlier than caches allow.
    #[command(subcommand)]
    Rollover(RolloverCommand),
    /// Check a signed zone: every signature, the DNSKEY RRset, the NSEC or
    /// NSEC3 chain. Needs no token and no configuration.
    Verify(VerifyArgs),
    /// Offline KSK: key signing requests in Knot DNS's format.
    #[command(subcommand)]
    Ksr(KsrCommand),
    /// Offline KSK: signed key responses from the offline box.
    #[command(subcommand)]
    Skr(SkrCommand),
    /// The key maintainer's login shell (or sshd ForceCommand): key
    /// management commands only, read from a terminal, -c or
    /// SSH_ORIGINAL_COMMAND; no file paths, no environment, the PIN from
    /// the project's pin_file.
    #[command(after_long_help = "\
The project is --project DIR, else project = \"DIR\" in /etc/dnsseal/shell.toml.
Global options other than --now, -v and -q are not used; neither is any
DNSSEAL_* or SOFTHSM2_CONF variable. Type `help` in the shell for its commands.

Examples (sshd_config):
  Match User keymaint
      ForceCommand /usr/bin/dnsseal shell --project /var/lib/dnsseal")]
    Shell(ShellArgs),
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The project directory (absolute), set by the administrator
    /// [default: project in /etc/dnsseal/shell.toml].
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Run this one command line and exit with its status (what sshd runs
    /// for `ssh HOST COMMAND` when this is the login shell).
    #[arg(short = 'c', value_name = "COMMAND", allow_hyphen_values = true)]
    pub command: Option<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum SkrCommand {
    /// On the online box: check a signed key response (every signature,
    /// the ZSK sets against the last `ksr create`, the KSKs against the
    /// pinned ones, the ZSKs in the token) and store it; `sign` then
    /// publishes its DNSKEY RRset for the current period. Periods from
    /// the response's first on replace those stored.
    #[command(
        after_help = "Examples:\n  dnsseal skr import /media/usb/example.com.skr --ksk ksk.dnskey   # first time: pin the KSK\n  dnsseal skr import /media/usb/example.com.skr"
    )]
    Import(SkrImportArgs),
}

#[derive(Debug, Args)]
pub struct SkrImportArgs {
    /// The SKR file.
    pub file: PathBuf,
    /// Zone [default: the file name without `.skr`].
    #[arg(long)]
    pub zone: Option<String>,
    /// The offline KSK(s) to trust: a file of DNSKEY records (as the key
    /// ceremony prints them). Needed on the first import; replaces the
    /// pinned KSKs when given.
    #[arg(long, value_name = "FILE")]
    pub ksk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KsrCreateArgs {
    /// The zone (its policy must say offline-ksk = true).
    pub zone: String,
    /// Start of the first period: YYYYMMDDHHMMSS, unix seconds, or now+N
    /// [default: now].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the span the request covers (same forms as --from, e.g.
    /// now+7776000 for 90 days).
    #[arg(long, value_name = "TIME")]
    pub to: String,
    /// Where to write the request.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct KsrSignArgs {
    /// The KSR file.
    pub file: PathBuf,
    /// Zone [default: the file name without `.ksr`].
    #[arg(long)]
    pub zone: Option<String>,
    /// Where to write the signed key response.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Sign without asking (for scripted, witnessed ceremonies).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum KsrCommand {
    /// Print a key signing request for the witnesses: the zone, every
    /// period with its time, TTL and keys (tag, algorithm, size, flags),
    /// and the SHA-256 of the whole file to read aloud. The file is read
    /// and its format checked; needs no token and no configuration.
    #[command(
        after_help = "Example:\n  dnsseal ksr show /media/usb/example.com.ksr -o example.com"
    )]
    Show(KsrShowArgs),
    /// On the online box: plan the zone's ZSKs up to --to (new ZSKs made
    /// in the token now, as their rollovers will need them) and write the
    /// request for the KSK to sign the DNSKEY RRset of every period.
    #[command(
        after_help = "Example:\n  dnsseal ksr create example.com --to now+7776000 -o /media/usb/example.com.ksr"
    )]
    Create(KsrCreateArgs),
    /// On the offline box: check a request against this box's policy for
    /// the zone (algorithm, key sizes, TTLs, periods, no KSK-flagged key),
    /// sign every period's DNSKEY RRset (and CDS/CDNSKEY) with the KSK(s)
    /// in the token, and write the response. A refused request writes
    /// nothing.
    #[command(
        after_help = "Example:\n  dnsseal ksr sign /media/usb/example.com.ksr -o /media/usb/example.com.skr"
    )]
    Sign(KsrSignArgs),
}

#[derive(Debug, Args)]
pub struct KsrShowArgs {
    /// The KSR file.
    pub file: PathBuf,
    /// Zone origin [default: the file name without `.ksr`].
    #[arg(short = 'o', long = "origin", value_name = "ORIGIN")]
    pub origin: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed zone file.
    pub zonefile: PathBuf,
    /// Zone origin.
    #[arg(short = 'o', long = "origin", value_name = "ORIGIN")]
    pub origin: String,
    /// DS records the parent publishes (a file with DS lines, e.g. from
    /// `dnsseal keys ds`): at least one must match a KSK/CSK of the zone
    /// that signs its DNSKEY RRset (others draw a warning).
    #[arg(long, value_name = "FILE")]
    pub ds: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Everything local: a SoftHSMv2 token under ./softhsm (on a terminal
  # you are prompted for both PINs)
  dnsseal init --softhsm

  # Unattended: the PINs from files of mode 0600
  dnsseal init --softhsm --pin-file /etc/dnsseal/pin --so-pin-file /etc/dnsseal/so-pin

  # A YubiHSM 2 chosen by serial
  dnsseal init --profile yubihsm2 --token-serial 0012345678")]
pub struct InitArgs {
    /// Directory to set up [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Make and initialise a SoftHSMv2 token under DIR/softhsm (the
    /// embedded default; no global SoftHSM setup needed).
    #[arg(long, conflicts_with_all = ["profile", "token_serial"])]
    pub softhsm: bool,

    /// HSM profile: a built-in name (softhsm2, kryoptic, yubihsm2,
    /// opensc-sc-hsm, luna) or a path to a profile TOML.
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,

    /// PKCS#11 module to load instead of the profile's.
    #[arg(long, value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Token label [default with --softhsm: dnsseal].
    #[arg(long, value_name = "LABEL")]
    pub token_label: Option<String>,

    /// Token serial number (wins over the label).
    #[arg(long, value_name = "SERIAL")]
    pub token_serial: Option<String>,

    /// Read the security officer PIN for --softhsm from this file (same
    /// checks as --pin-file). Otherwise the systemd credential
    /// dnsseal-so-pin, then DNSSEAL_SO_PIN, then a prompt.
    #[arg(long, value_name = "FILE")]
    pub so_pin_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Module, slot, token identity and which DNSSEC algorithms the token
    /// can generate and sign with (from its mechanism list). Needs no PIN.
    Info(TokenInfoArgs),
    /// Measure the token's raw C_Sign rate with a zone's active ZSK (or
    /// CSK): the ceiling `dnsseal sign` is measured against.
    Bench(TokenBenchArgs),
}

#[derive(Debug, Args)]
pub struct TokenInfoArgs {}

#[derive(Debug, Args)]
pub struct TokenBenchArgs {
    /// Zone whose active ZSK (or CSK) signs.
    pub zone: String,
    /// Sessions signing in parallel.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long to measure.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Sign with the key's token object even where the profile has
    /// `dnsseal sign` use session copies (to see what the copies gain).
    #[arg(long)]
    pub token_objects: bool,
    /// The number of signatures of the zone (`sign --json` reports it as
    /// signatures_generated of a full run): the measured rate is turned
    /// into the time of a full signing and the token time per day that
    /// keeping the zone signed takes under its policy [default: 100000].
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub signatures: u64,
}

/// `--role` of `keys create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CreateRole {
    /// A key signing key (SEP flag, DS at the parent).
    Ksk,
    /// A zone signing key.
    Zsk,
    /// A combined signing key.
    Csk,
    /// One KSK and two ZSKs (one active, one published standby), ready for
    /// a pre-publication rollover.
    Both,
}

/// `--state` of `keys create` and `keys import-bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitialState {
    /// In the token only; not in the zone yet.
    Generated,
    /// In the DNSKEY RRset, not signing (standby).
    Published,
    /// In the DNSKEY RRset and signing.
    Active,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate key pairs inside the token for a zone.
    #[command(after_long_help = "\
A new key is active when the zone has no active key of its role yet,
otherwise published as a standby; --state overrides that.

Examples:
  dnsseal keys create example.com --role both --algorithm ECDSAP256SHA256
  dnsseal keys create example.com --role ksk --algorithm 8 --bits 3072")]
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
    /// Import a BIND key pair into the token (migration; audited).
    #[command(name = "import-bind")]
    ImportBind(ImportArgs),
    /// Compare keystore and token; report keys found on one side only,
    /// held with another public key, or whose private object is not
    /// protected as recorded (extractable, not made in the token, not
    /// sign-only).
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Zone name (trailing dot optional, any case).
    pub zone: String,
    /// What the key is for.
    #[arg(long, value_enum)]
    pub role: CreateRole,
    /// Algorithm, by name or number: RSASHA256 (8), RSASHA512 (10),
    /// ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15).
    #[arg(long, short = 'a', value_name = "ALG")]
    pub algorithm: String,
    /// RSA modulus size, 2048 to 4096 [default: 2048]. Not for ECDSA/Ed25519.
    #[arg(long, short = 'b', value_name = "N")]
    pub bits: Option<u32>,
    /// Initial state instead of the default (see below).
    #[arg(long, value_enum)]
    pub state: Option<InitialState>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this zone.
    pub zone: Option<String>,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Zone name.
    pub zone: String,
    /// Key tag.
    #[arg(long, short = 't')]
    pub tag: u16,
    /// CKA_ID in hex, when two keys of the zone share a tag.
    #[arg(long, value_name = "HEX")]
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DnskeyArgs {
    /// Zone name.
    pub zone: String,
    /// TTL of the records.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u32,
}

#[derive(Debug, Args)]
pub struct DsArgs {
    /// Zone name.
    pub zone: String,
    /// Digest types, comma separated: sha256 (2), sha384 (4), sha1 (1,
    /// deprecated by RFC 8624).
    #[arg(long, value_delimiter = ',', default_value = "sha256")]
    pub digest: Vec<String>,
    /// Print the DNSKEY records instead, for registries that take keys.
    #[arg(long)]
    pub dnskey: bool,
    /// TTL of the records.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u32,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub key: SelectArgs,
    /// Also destroy the key pair in the token. Irreversible.
    #[arg(long)]
    pub destroy: bool,
    /// Do not ask for confirmation (needed with --destroy when not on a
    /// terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Delete even a key that is still active for signing (audited).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Zone name; must match the owner in the .key file.
    pub zone: String,
    /// BIND private key file Kzone.+alg+tag.private (the .key file must be
    /// beside it).
    pub private_file: PathBuf,
    /// Role [default: from the DNSKEY flags: 257 ksk, 256 zsk].
    #[arg(long)]
    pub role: Option<String>,
    /// Initial state [default: from the key's Activate/Publish times].
    #[arg(long, value_enum)]
    pub state: Option<InitialState>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Mark keystore records whose token objects are gone as destroyed
    /// (audited). Without it nothing is changed.
    #[arg(long)]
    pub mark_missing: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; report the first line where it breaks.
    Verify(AuditVerifyArgs),
    /// Export the log (verified first) as JSON lines or CSV.
    Export(AuditExportArgs),
    /// Start a new audit chain where the log is missing or empty although
    /// the keystore holds keys (every other command refuses to run then).
    /// The new chain's first record says why, what was found and what the
    /// keystore remembered; `audit verify` names it. A log with records is
    /// never reset: move it aside (and keep it) first.
    #[command(
        after_help = "Example:\n  dnsseal audit reset --yes --reason \"log lost with the old disk, ticket 4711\""
    )]
    Reset(AuditResetArgs),
    /// The audit key (ECDSA P-256, in the token, never a DNSSEC key) that
    /// signs checkpoints: `--create` makes it once; its public key (PEM) is
    /// what auditors check exports with.
    #[command(
        after_help = "Examples:\n  dnsseal audit key --create -o audit-key.pem\n  dnsseal audit key -o audit-key.pem"
    )]
    Key(AuditKeyArgs),
    /// Sign the chain's head with the audit key, as a record of the chain;
    /// prints the checkpoint record's hash (for the ceremony transcript).
    Checkpoint,
}

#[derive(Debug, Args)]
pub struct AuditKeyArgs {
    /// Make the audit key in the token (refused when there is one).
    #[arg(long)]
    pub create: bool,
    /// Write the public key (PEM) to FILE [default: standard output].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditResetArgs {
    /// Confirm that the old history is lost and a new chain should start.
    #[arg(long)]
    pub yes: bool,
    /// Why: recorded in the first record of the new chain.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A log or an export to check [default: the configured audit log].
    pub file: Option<PathBuf>,
    /// Accept a file that starts after record 1 (made by `audit export
    /// --since`): it is checked from its first record on, and the hash it
    /// is anchored to is printed, to compare with the full log.
    #[arg(long)]
    pub excerpt: bool,
    /// Check the checkpoints with this audit public key (PEM, from `audit
    /// key -o`; repeat for keys used over time), with no configuration or
    /// keystore: FILE must then be given. Every checkpoint must verify and
    /// sign a record of the chain; the log is complete up to the last one.
    #[arg(long, value_name = "PEM", requires = "file")]
    pub pubkey: Vec<PathBuf>,
    /// With --pubkey: the hash of a checkpoint record (from a ceremony
    /// transcript) that FILE must reach.
    #[arg(long, value_name = "HASH", requires = "pubkey")]
    pub checkpoint: Option<String>,
}

/// `--format` of `audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The records as they are, one JSON object a line (verifiable).
    Jsonl,
    /// One row a record, with prev and hash columns.
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Start at the first record made at or after T (YYYYMMDDHHMMSS or
    /// RFC 3339); every record after it follows, so the excerpt chains.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the policy in force for a zone (the defaults, if none was set).
    Show(PolicyShowArgs),
    /// Check a policy file and make it the zone's policy (audited).
    #[command(after_long_help = "\
The file is TOML; fields left out take the defaults that `dnsseal policy
show --defaults` prints with their documentation.

Example:
  dnsseal policy show --defaults > example.com.policy
  $EDITOR example.com.policy
  dnsseal policy set example.com example.com.policy")]
    Set(PolicySetArgs),
    /// Advance every zone with a policy to what is safe now: create keys,
    /// start rollovers when keys reach their lifetime, run every rollover
    /// step whose time has come. For cron or a systemd timer, followed by
    /// `dnsseal sign`.
    #[command(after_long_help = "\
A step that needs the parent (ds-seen) is not taken here: confirm it with
`dnsseal rollover ds-seen ZONE` once the parent serves the new DS RRset.
Sign the zone after every run that changed something: waits count from
the first signing that carries a change.

Example (crontab):
  17 * * * *  cd /srv/dnsseal && dnsseal policy run && dnsseal sign db.example -o example.com -N unixtime")]
    Run(PolicyRunArgs),
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    /// Zone name (omit with --defaults).
    #[arg(required_unless_present = "defaults")]
    pub zone: Option<String>,
    /// Print the shipped defaults with their documentation.
    #[arg(long)]
    pub defaults: bool,
}

#[derive(Debug, Args)]
pub struct PolicySetArgs {
    /// Zone name.
    pub zone: String,
    /// Policy file (TOML).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PolicyRunArgs {
    /// Zones to advance [default: every zone with a policy].
    pub zones: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RolloverCommand {
    /// ZSK rollover: pre-publication (start, activate, finish) or
    /// double-signature (start, finish).
    Zsk(RolloverArgs),
    /// KSK rollover: double-ksk (start, submit, ds-seen, finish), double-ds
    /// (start, ds-seen, swap, withdraw, ds-seen), double-rrset (start,
    /// ds-seen, finish, ds-seen) or rfc5011 (start, submit, ds-seen,
    /// revoke, finish).
    Ksk(RolloverArgs),
    /// CSK rollover: start, submit, ds-seen, finish.
    Csk(RolloverArgs),
    /// Algorithm rollover (RFC 6781 §4.1.4): start, publish, submit,
    /// ds-seen, retire, finish.
    Algorithm(AlgorithmRolloverArgs),
    /// Emergency rollover of a compromised key: the standby (or a new) key
    /// takes over at once; `finish` removes the compromised key once
    /// caches allow.
    Emergency(EmergencyArgs),
    /// Take the zone insecure: CDS/CDNSKEY delete form (RFC 8078), then
    /// ds-seen, then finish.
    Insecure(RolloverArgs),
    /// Confirm that the parent's servers publish the DS RRset the zone asks
    /// for (the next step of a rollover, or a first DS).
    #[command(name = "ds-seen")]
    DsSeen(ZoneArg),
    /// Print the timeline of the zone's rollover: each step done, each step
    /// to come with its earliest time and the wait it comes from; and the
    /// next rollovers the policy's key lifetimes call for.
    Plan(ZoneArg),
}

#[derive(Debug, Args)]
pub struct ZoneArg {
    /// Zone name.
    pub zone: String,
}

/// Steps are named; `next` means whichever step comes next.
#[derive(Debug, Args)]
#[command(after_long_help = "\
A step asked for before its earliest safe time is refused (exit 10) with
the wait that is not over, the time it ends and the TTL it comes from.
--force runs it anyway; it is audited as forced. Sign the zone after
every step: waits count from the first signing that carries a change.

Examples:
  dnsseal rollover zsk example.com start
  dnsseal rollover zsk example.com next
  dnsseal rollover ksk example.com start --method double-ds
  dnsseal rollover plan example.com")]
pub struct RolloverArgs {
    /// Zone name.
    pub zone: String,
    /// The step: start, next, or the name of the next step.
    #[arg(default_value = "next")]
    pub step: String,
    /// Method (on start) [default: the zone policy's].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Run the step even before its safe time (audited as forced).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AlgorithmRolloverArgs {
    #[command(flatten)]
    pub common: RolloverArgs,
    /// The new algorithm (on start) [default: the zone policy's].
    #[arg(long, value_name = "ALG")]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct EmergencyArgs {
    #[command(flatten)]
    pub common: RolloverArgs,
    /// The role of the compromised key (on start).
    #[arg(long, value_enum)]
    pub role: Option<EmergencyRole>,
    /// Key tag of the compromised key [default: the one active key of the role].
    #[arg(long, short = 't')]
    pub tag: Option<u16>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EmergencyRole {
    Zsk,
    Ksk,
    Csk,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        shell_multicall(v.iter().map(std::ffi::OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn dnsseal_shell_by_its_link_name() {
        assert_eq!(args(&["dnsseal-shell"]), ["dnsseal", "shell"]);
        assert_eq!(args(&["-dnsseal-shell"]), ["dnsseal", "shell"]);
        assert_eq!(
            args(&["/usr/local/bin/dnsseal-shell", "-c", "keys list"]),
            ["dnsseal", "shell", "-c", "keys list"]
        );
        assert_eq!(
            args(&["dnsseal", "keys", "list"]),
            ["dnsseal", "keys", "list"]
        );
        assert_eq!(args(&["/usr/bin/dnsseal"]), ["/usr/bin/dnsseal"]);
        assert!(args(&[]).is_empty());
        let cli = Cli::try_parse_from(args(&["-dnsseal-shell", "-c", "--help"])).unwrap();
        match cli.command {
            Command::Shell(s) => assert_eq!(s.command.unwrap(), "--help"),
            other => panic!("{other:?}"),
        }
    }
}
