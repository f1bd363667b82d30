//! What a signing run is asked to do: the arguments of `dnsseal sign`,
//! defined once for the local command, the remote client and the signing
//! service (which receives them as JSON, without the paths: the service
//! chooses its own files).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// `-N` of `sign`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SerialArg {
    /// Leave the SOA serial as it is.
    #[default]
    Keep,
    /// Add one (RFC 1982 arithmetic).
    Increment,
    /// Seconds since the epoch (or one more than the old serial if that is not later).
    Unixtime,
    /// YYYYMMDDnn (or one more than the old serial if that is not later).
    Date,
}

#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(after_long_help = "\
Times (-s, -e): YYYYMMDDHHMMSS (UTC), RFC 3339, now+N, or +N (seconds from now;
for -e, +N counts from the inception).

Examples:
  dnsseal sign example.com.zone -o example.com
  dnsseal sign db.example -o example.com -N unixtime --nsec3 --opt-out -f db.example.signed
  dnsseal sign db.example -o example.com --incremental db.example.signed -i 604800

Remote (dnsseal serve on the signer box; the same arguments, and the signed
zone written here):
  dnsseal sign --server /var/lib/dnsseal/dnsseal.sock db.example -o example.com
  dnsseal sign --server https://signer.example:8853 --ca ca.pem \\
      --cert me.pem --key me.key db.example -o example.com")]
pub struct SignArgs {
    /// The zone file to sign (master format; $INCLUDE is followed).
    #[serde(skip)]
    pub zonefile: PathBuf,
    /// Zone origin [default: the file name].
    #[arg(short = 'o', long = "origin", value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// Output file [default: ZONEFILE.signed]; written atomically.
    #[arg(short = 'f', long = "output", value_name = "FILE")]
    #[serde(skip)]
    pub output: Option<PathBuf>,
    /// SOA serial policy.
    #[arg(short = 'N', long = "serial", value_enum, default_value = "keep")]
    pub serial: SerialArg,
    /// Signature inception [default: one hour ago].
    #[arg(short = 's', long = "start", value_name = "TIME")]
    pub start: Option<String>,
    /// Signature expiration [default: the zone policy's signature-validity
    /// from now, or 30 days without a policy].
    #[arg(short = 'e', long = "end", value_name = "TIME")]
    pub end: Option<String>,
    /// Spread expirations over this many seconds before the end time
    /// [default: the policy's signature-jitter, or 0].
    #[arg(short = 'j', long = "jitter", value_name = "SECONDS")]
    pub jitter: Option<u32>,
    /// Refresh interval: kept signatures expiring sooner than this are
    /// replaced [default: the policy's signature-refresh, or a quarter of
    /// the validity period].
    #[arg(short = 'i', long = "interval", value_name = "SECONDS")]
    pub interval: Option<u32>,
    /// Authenticated denial with NSEC3 instead of NSEC [default: what the
    /// zone's policy says, else NSEC].
    #[arg(long)]
    pub nsec3: bool,
    /// NSEC3 salt in hex, or '-' for none [default: none, RFC 9276].
    #[arg(long, value_name = "HEX|-", requires = "nsec3")]
    pub salt: Option<String>,
    /// NSEC3 extra iterations [default: 0, RFC 9276].
    #[arg(long, value_name = "N", requires = "nsec3", default_value_t = 0)]
    pub iterations: u16,
    /// NSEC3 opt-out: insecure delegations get no NSEC3 record.
    #[arg(long, requires = "nsec3")]
    pub opt_out: bool,
    /// Reuse signatures from this earlier signed version of the zone where
    /// the RRset, the key and the validity allow. Reads
    /// SIGNED_ZONE.dnsseal-state (written and sealed with the zone's key by
    /// every signing run) when it still matches SIGNED_ZONE and its seal
    /// verifies; else the zone's text, whose signatures are verified before
    /// they are kept.
    #[arg(long, value_name = "SIGNED_ZONE")]
    #[serde(skip)]
    pub incremental: Option<PathBuf>,
    /// Token sessions signing in parallel [default: CPU count, capped by the
    /// profile; for a software token with host verification on, sized by a
    /// short probe of what a signature and a check cost, so that the two
    /// share the cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets [default: the policy's
    /// dnskey-ttl, or the SOA MINIMUM without a policy].
    #[arg(long, value_name = "SECONDS")]
    pub dnskey_ttl: Option<u32>,
    /// Do not verify signatures on the host (for measurement, or when the
    /// output is verified separately).
    #[arg(short = 'P', long = "no-verify")]
    pub no_verify: bool,
}
