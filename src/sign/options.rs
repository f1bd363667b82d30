//! What one signing run is asked to do, resolved: the typed
//! [`SignOptions`] and the pure functions that turn the command's `-s`,
//! `-e`, `-j`, `-i`, `--nsec3`, `--salt`, ... into them against the zone's
//! policy (when it has one) and the clock.
//!
//! Without a zone policy the defaults are those of `dnssec-signzone`: 30
//! days of validity ([`DEFAULT_VALIDITY`]), inception an hour back
//! ([`DEFAULT_BACKDATE`]), no jitter, re-signing in the last quarter of the
//! validity. A zone policy's `signature-*`, `dnskey-ttl` and `nsec3*`
//! settings take their place; options given on the command line win over
//! both. Refused as bad input: an expiration not after the inception or in
//! the past, a jitter not shorter than the validity, a salt that is not hex
//! or longer than 255 octets (RFC 5155 §3.1.5).

use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::policy::Policy;
use crate::zone::dnssec::{Nsec3Params, SerialPolicy};
use crate::zone::ZoneName;

/// Default signature validity: 30 days.
pub const DEFAULT_VALIDITY: i64 = 30 * 86_400;
/// Default inception: one hour in the past, for clocks that lag.
pub const DEFAULT_BACKDATE: i64 = 3_600;

/// One signing run, every setting resolved.
#[derive(Debug, Clone)]
pub struct SignOptions {
    pub origin: ZoneName,
    /// The unsigned zone file.
    pub input: PathBuf,
    /// The signed zone file (replaced atomically).
    pub output: PathBuf,
    /// The signed zone of an earlier run whose signatures may be kept.
    pub incremental: Option<PathBuf>,
    /// The time the run signs at.
    pub now: Timestamp,
    pub times: Times,
    /// NSEC3 (RFC 5155) parameters, or None for NSEC.
    pub nsec3: Option<Nsec3Params>,
    pub serial: SerialPolicy,
    /// The DNSKEY (and CDS, CDNSKEY, NSEC3PARAM) TTL; None: the SOA minimum.
    pub dnskey_ttl: Option<u32>,
    /// Token sessions asked for (`--threads`); None: sized here.
    pub threads: Option<usize>,
    /// Most sessions the token's profile allows (0: no limit).
    pub max_sessions: usize,
    /// The token is software (shares the cores with the host checks).
    pub software_token: bool,
    /// Check every signature on the host (off only with `-P`).
    pub verify: bool,
    /// How much reading the input (and the `--incremental` file) may take in.
    pub limits: crate::zone::parse::Limits,
    /// The run's own stop flag (the signing service's time limit).
    pub cancel: crate::interrupt::Cancel,
}

/// The validity of new signatures and when old ones are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub inception: Timestamp,
    pub expiration: Timestamp,
    /// Expirations are spread over `[expiration - jitter, expiration]`.
    pub jitter: u32,
    /// Signatures expiring within this many seconds of now are replaced.
    pub refresh: u32,
}

/// The zone's origin when none is given: the file name without `.zone`
/// or `.db`.
pub fn origin_text(origin: Option<&str>, zonefile: &Path) -> String {
    match origin {
        Some(o) => o.to_string(),
        None => zonefile
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .trim_end_matches(".zone")
                    .trim_end_matches(".db")
                    .to_string()
            })
            .unwrap_or_default(),
    }
}

/// The output file: as given, or the input with `.signed` appended.
pub fn output_path(output: Option<&Path>, zonefile: &Path) -> PathBuf {
    output.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut p = zonefile.to_path_buf().into_os_string();
        p.push(".signed");
        PathBuf::from(p)
    })
}

/// Reads `-s`/`-e` times: absolute, `now+N`, or `+N` from `base`.
pub fn parse_time(s: &str, now: Timestamp, base: Timestamp) -> anyhow::Result<Timestamp> {
    let rel = |n: &str, from: Timestamp| -> anyhow::Result<Timestamp> {
        let secs: i64 = n
            .parse()
            .map_err(|_| Failure::BadInput(format!("'{s}' is not a time offset in seconds")))?;
        Ok(Timestamp::from_unix(from.unix() + secs))
    };
    if let Some(n) = s.strip_prefix("now+") {
        return rel(n, now);
    }
    if s == "now" {
        return Ok(now);
    }
    if let Some(n) = s.strip_prefix('+') {
        return rel(n, base);
    }
    Ok(Timestamp::parse(s)?)
}

/// A time as an RRSIG time field (seconds since the epoch, 32 bits).
pub fn rrsig_time(t: Timestamp) -> anyhow::Result<u32> {
    u32::try_from(t.unix())
        .map_err(|_| Failure::BadInput(format!("{t} does not fit an RRSIG time field")).into())
}

/// Resolves `-s`, `-e`, `-j` and `-i` against the policy and the clock.
pub fn resolve_times(
    start: Option<&str>,
    end: Option<&str>,
    jitter: Option<u32>,
    interval: Option<u32>,
    policy: Option<&Policy>,
    now: Timestamp,
) -> anyhow::Result<Times> {
    let inception = match start {
        Some(s) => parse_time(s, now, now)?,
        None => Timestamp::from_unix(now.unix() - DEFAULT_BACKDATE),
    };
    let expiration = match end {
        Some(e) => parse_time(e, now, inception)?,
        None => Timestamp::from_unix(
            now.unix() + policy.map_or(DEFAULT_VALIDITY, |p| p.signature_validity.secs()),
        ),
    };
    let jitter = match (jitter, policy) {
        (Some(j), _) => j,
        (None, Some(p)) => u32::try_from(p.signature_jitter.secs()).unwrap_or(0),
        (None, None) => 0,
    };
    if expiration <= inception {
        return Err(Failure::BadInput(format!(
            "expiration {expiration} is not after inception {inception}"
        ))
        .into());
    }
    if expiration <= now {
        return Err(Failure::BadInput(format!("expiration {expiration} is in the past")).into());
    }
    let validity_secs = u32::try_from(expiration.unix() - inception.unix()).unwrap_or(u32::MAX);
    if jitter >= validity_secs {
        return Err(Failure::BadInput(format!(
            "jitter {jitter}s is not shorter than the validity period {validity_secs}s"
        ))
        .into());
    }
    let refresh = match (interval, policy) {
        (Some(i), _) => i,
        (None, Some(p)) => u32::try_from(p.signature_refresh.secs())
            .unwrap_or(u32::MAX)
            .min(validity_secs / 2),
        (None, None) => validity_secs / 4,
    };
    Ok(Times {
        inception,
        expiration,
        jitter,
        refresh,
    })
}

/// NSEC3 as asked on the command line (`--nsec3`, `--salt`,
/// `--iterations`, `--opt-out`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nsec3Request<'a> {
    pub nsec3: bool,
    pub salt: Option<&'a str>,
    pub iterations: u16,
    pub opt_out: bool,
}

/// The NSEC3 parameters: the command line's, else the policy's, else
/// None (NSEC).
pub fn resolve_nsec3(
    req: Nsec3Request<'_>,
    policy: Option<&Policy>,
) -> Result<Option<Nsec3Params>, Failure> {
    if req.nsec3 {
        let salt = match req.salt {
            None | Some("-") | Some("") => Vec::new(),
            Some(h) => {
                hex::decode(h).map_err(|_| Failure::BadInput(format!("--salt '{h}' is not hex")))?
            }
        };
        if salt.len() > 255 {
            return Err(Failure::BadInput("--salt is longer than 255 octets".into()));
        }
        if req.iterations > 0 || !salt.is_empty() {
            tracing::warn!(
                "NSEC3 with {} extra iterations and a {}-octet salt: RFC 9276 recommends 0 iterations and no salt; validators may treat high counts as insecure",
                req.iterations,
                salt.len()
            );
        }
        return Ok(Some(Nsec3Params {
            iterations: req.iterations,
            salt,
            opt_out: req.opt_out,
        }));
    }
    match policy {
        Some(p) if p.nsec3 => Ok(Some(Nsec3Params {
            iterations: p.nsec3_iterations,
            salt: hex::decode(&p.nsec3_salt)
                .map_err(|_| Failure::BadInput("policy nsec3-salt is not hex".into()))?,
            opt_out: p.nsec3_opt_out,
        })),
        _ => Ok(None),
    }
}

/// The DNSKEY TTL asked for, else the policy's; None leaves it to the
/// zone (its SOA minimum).
pub fn resolve_dnskey_ttl(arg: Option<u32>, policy: Option<&Policy>) -> Option<u32> {
    match (arg, policy) {
        (Some(t), _) => Some(t),
        (None, Some(p)) => Some(u32::try_from(p.dnskey_ttl.secs()).unwrap_or(u32::MAX)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix(1_700_000_000)
    }

    fn bad_input(e: anyhow::Error) -> String {
        match e.downcast_ref::<Failure>() {
            Some(Failure::BadInput(m)) => m.clone(),
            _ => panic!("not bad input: {e:#}"),
        }
    }

    #[test]
    fn times_default_to_thirty_days_an_hour_back_and_a_quarter_refresh() {
        let t = resolve_times(None, None, None, None, None, now()).unwrap();
        assert_eq!(t.inception.unix(), now().unix() - DEFAULT_BACKDATE);
        assert_eq!(t.expiration.unix(), now().unix() + DEFAULT_VALIDITY);
        assert_eq!(t.jitter, 0);
        let validity = (DEFAULT_VALIDITY + DEFAULT_BACKDATE) as u32;
        assert_eq!(t.refresh, validity / 4);
    }

    #[test]
    fn a_policy_gives_validity_jitter_and_refresh() {
        let p = Policy::default();
        let t = resolve_times(None, None, None, None, Some(&p), now()).unwrap();
        assert_eq!(
            t.expiration.unix(),
            now().unix() + p.signature_validity.secs()
        );
        assert_eq!(i64::from(t.jitter), p.signature_jitter.secs());
        assert_eq!(i64::from(t.refresh), p.signature_refresh.secs());
        // The command line wins over the policy.
        let t = resolve_times(None, None, Some(5), Some(7), Some(&p), now()).unwrap();
        assert_eq!((t.jitter, t.refresh), (5, 7));
    }

    #[test]
    fn relative_times_count_from_now_or_from_the_inception() {
        let t = resolve_times(Some("now+60"), Some("+3600"), None, None, None, now()).unwrap();
        assert_eq!(t.inception.unix(), now().unix() + 60);
        assert_eq!(t.expiration.unix(), now().unix() + 3660);
        assert_eq!(parse_time("now", now(), now()).unwrap(), now());
        let e = parse_time("+soon", now(), now()).unwrap_err();
        assert!(bad_input(e).contains("not a time offset"));
    }

    #[test]
    fn expiration_must_follow_inception_and_now() {
        let e = resolve_times(Some("now+100"), Some("now+50"), None, None, None, now());
        assert!(bad_input(e.unwrap_err()).contains("is not after inception"));
        let e = resolve_times(Some("now+-100"), Some("now+-50"), None, None, None, now());
        assert!(bad_input(e.unwrap_err()).contains("is in the past"));
    }

    #[test]
    fn jitter_must_be_shorter_than_the_validity() {
        let e = resolve_times(Some("now"), Some("now+100"), Some(100), None, None, now());
        assert!(bad_input(e.unwrap_err()).contains("jitter 100s is not shorter"));
        assert!(resolve_times(Some("now"), Some("now+100"), Some(99), None, None, now()).is_ok());
    }

    #[test]
    fn nsec3_from_the_command_line_or_the_policy() {
        assert_eq!(resolve_nsec3(Nsec3Request::default(), None).unwrap(), None);
        let req = Nsec3Request {
            nsec3: true,
            salt: Some("ABCD"),
            iterations: 0,
            opt_out: true,
        };
        let p = resolve_nsec3(req, None).unwrap().unwrap();
        assert_eq!((p.salt, p.opt_out), (vec![0xAB, 0xCD], true));
        let dash = Nsec3Request {
            salt: Some("-"),
            ..req
        };
        assert!(resolve_nsec3(dash, None).unwrap().unwrap().salt.is_empty());
        let policy = Policy {
            nsec3: true,
            nsec3_iterations: 3,
            ..Policy::default()
        };
        let p = resolve_nsec3(Nsec3Request::default(), Some(&policy)).unwrap();
        assert_eq!(p.map(|p| p.iterations), Some(3));
    }

    #[test]
    fn a_bad_salt_is_bad_input() {
        let req = |salt| Nsec3Request {
            nsec3: true,
            salt: Some(salt),
            ..Nsec3Request::default()
        };
        assert!(matches!(
            resolve_nsec3(req("xyz"), None),
            Err(Failure::BadInput(_))
        ));
        let long = "00".repeat(256);
        assert!(matches!(
            resolve_nsec3(req(&long), None),
            Err(Failure::BadInput(_))
        ));
    }

    #[test]
    fn names_and_paths_default_from_the_zone_file() {
        assert_eq!(
            origin_text(None, Path::new("/z/example.com.zone")),
            "example.com"
        );
        assert_eq!(
            origin_text(None, Path::new("example.org.db")),
            "example.org"
        );
        assert_eq!(origin_text(Some("x."), Path::new("y.zone")), "x.");
        assert_eq!(
            output_path(None, Path::new("/z/a.zone")),
            PathBuf::from("/z/a.zone.signed")
        );
        assert_eq!(
            output_path(Some(Path::new("out")), Path::new("a.zone")),
            PathBuf::from("out")
        );
        assert_eq!(resolve_dnskey_ttl(None, None), None);
        assert_eq!(
            resolve_dnskey_ttl(Some(60), Some(&Policy::default())),
            Some(60)
        );
        assert_eq!(
            resolve_dnskey_ttl(None, Some(&Policy::default())),
            Some(3600)
        );
    }
}
