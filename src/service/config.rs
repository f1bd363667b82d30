//! The `[service]` table of `dnsseal.toml`: where `dnsseal serve` listens,
//! its limits, and who may do what (the `[[service.allow]]` rules, read by
//! [`crate::service::authz`]). Validated here, with paths made absolute
//! against the configuration file's directory and defaults filled in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failure::Failure;

/// `[service]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServiceConfig {
    /// The Unix socket [default: dnsseal.sock beside dnsseal.toml].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// TCP address for TLS (off when absent; there is no plaintext TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// The CA(s) that issue client certificates (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Where uploads, outputs and each zone's last signed version live
    /// [default: service/ beside dnsseal.toml].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<PathBuf>,
    /// Largest zone a request may upload, in bytes [default: [zone]
    /// max_total_bytes].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
    /// Signing jobs at once [default: 4].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jobs: Option<usize>,
    /// Requests that may wait for a job slot; more get 429 [default: 64].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<usize>,
    /// Longest a job may run, seconds, waiting for its zone included
    /// [default: 3600].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_timeout: Option<u64>,
    /// Longest a client may send nothing (headers, or a pause in the
    /// upload), seconds [default: 30].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<u64>,
    /// On SIGTERM, how long running jobs may go on, seconds [default: 60].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<u64>,
    /// How often the token is looked at while idle, seconds [default: 10].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_check: Option<u64>,
    /// Who may do what; nothing is allowed without a rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Rule>,
}

/// One `[[service.allow]]` rule: an identity (every selector given must
/// match) and what it may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A Unix client's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// A Unix client's gid (its primary group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// A TLS client certificate's subject, as RFC 4514 writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A TLS client certificate's SubjectPublicKeyInfo SHA-256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
    /// Zones it may sign ("*" for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Whether it may read status and metrics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub status: bool,
}

/// The TLS listener's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// `[service]` validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub socket: PathBuf,
    pub tls: Option<TlsFiles>,
    pub work_dir: PathBuf,
    pub max_request_bytes: u64,
    pub max_jobs: usize,
    pub max_queue: usize,
    pub job_timeout: Duration,
    pub read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub token_check: Duration,
    pub allow: Vec<Rule>,
}

impl ServiceConfig {
    /// Validates `raw` from the configuration at `config_path`; relative
    /// paths are taken from `base` (the file's directory).
    pub fn from_raw(
        raw: &RawServiceConfig,
        base: &Path,
        config_path: &Path,
        zone_total_bytes: u64,
    ) -> Result<ServiceConfig, Failure> {
        let bad =
            |m: String| Failure::BadInput(format!("{}: [service] {m}", config_path.display()));
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let tls = tls_files(raw, &abs).map_err(bad)?;
        for (i, rule) in raw.allow.iter().enumerate() {
            check_rule(rule).map_err(|m| bad(format!("allow rule {}: {m}", i + 1)))?;
        }
        let secs = |v: Option<u64>, default: u64, name: &str| match v.unwrap_or(default) {
            0 => Err(bad(format!("{name} must be at least 1 second"))),
            s => Ok(Duration::from_secs(s)),
        };
        let max_jobs = raw.max_jobs.unwrap_or(4);
        if max_jobs == 0 {
            return Err(bad("max_jobs must be at least 1".into()));
        }
        let max_request_bytes = raw.max_request_bytes.unwrap_or(zone_total_bytes);
        if max_request_bytes == 0 {
            return Err(bad("max_request_bytes must be at least 1".into()));
        }
        Ok(ServiceConfig {
            socket: abs(raw.socket.as_deref().unwrap_or(Path::new("dnsseal.sock"))),
            tls,
            work_dir: abs(raw.work_dir.as_deref().unwrap_or(Path::new("service"))),
            max_request_bytes,
            max_jobs,
            max_queue: raw.max_queue.unwrap_or(64),
            job_timeout: secs(raw.job_timeout, 3600, "job_timeout")?,
            read_timeout: secs(raw.read_timeout, 30, "read_timeout")?,
            shutdown_grace: secs(raw.shutdown_grace, 60, "shutdown_grace")?,
            token_check: secs(raw.token_check, 10, "token_check")?,
            allow: raw.allow.clone(),
        })
    }
}

/// The TLS listener, when `listen` is set: all three files are needed.
fn tls_files(
    raw: &RawServiceConfig,
    abs: &dyn Fn(&Path) -> PathBuf,
) -> Result<Option<TlsFiles>, String> {
    let Some(listen) = &raw.listen else {
        if raw.tls_cert.is_some() || raw.tls_key.is_some() || raw.client_ca.is_some() {
            return Err("tls_cert, tls_key and client_ca need listen = \"ADDRESS:PORT\"".into());
        }
        return Ok(None);
    };
    let listen: SocketAddr = listen.parse().map_err(|e| {
        format!("listen = \"{listen}\": {e} (write ADDRESS:PORT, e.g. \"192.0.2.1:8853\")")
    })?;
    let need = |v: &Option<PathBuf>, name: &str| {
        v.as_deref().map(abs).ok_or_else(|| {
            format!("listen is set, so {name} is needed: the service speaks TLS with client certificates only")
        })
    };
    Ok(Some(TlsFiles {
        listen,
        cert: need(&raw.tls_cert, "tls_cert")?,
        key: need(&raw.tls_key, "tls_key")?,
        client_ca: need(&raw.client_ca, "client_ca")?,
    }))
}

/// A rule names someone and grants something.
fn check_rule(rule: &Rule) -> Result<(), String> {
    if rule.uid.is_none()
        && rule.gid.is_none()
        && rule.subject.is_none()
        && rule.spki_sha256.is_none()
    {
        return Err("names nobody: give uid, gid, subject or spki_sha256".into());
    }
    if (rule.uid.is_some() || rule.gid.is_some())
        && (rule.subject.is_some() || rule.spki_sha256.is_some())
    {
        return Err("mixes a Unix identity (uid, gid) with a certificate (subject, spki_sha256): a client is one or the other".into());
    }
    if let Some(h) = &rule.spki_sha256 {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("spki_sha256 = \"{h}\" is not 64 hex digits"));
        }
    }
    if rule.zones.is_empty() && !rule.status {
        return Err("grants nothing: give zones = [...] or status = true".into());
    }
    for z in rule.zones.iter().filter(|z| z.as_str() != "*") {
        crate::keys::parse_zone(z).map_err(|e| format!("zone \"{z}\": {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServiceConfig, Failure> {
        let raw: RawServiceConfig =
            toml::from_str(text).map_err(|e| Failure::BadInput(e.to_string()))?;
        ServiceConfig::from_raw(
            &raw,
            Path::new("/srv/dnsseal"),
            Path::new("/srv/dnsseal/dnsseal.toml"),
            1 << 30,
        )
    }

    #[test]
    fn defaults_sit_beside_the_configuration() {
        let c = parse("").unwrap();
        assert_eq!(c.socket, Path::new("/srv/dnsseal/dnsseal.sock"));
        assert_eq!(c.work_dir, Path::new("/srv/dnsseal/service"));
        assert_eq!(c.max_request_bytes, 1 << 30);
        assert_eq!(c.max_jobs, 4);
        assert_eq!(c.max_queue, 64);
        assert_eq!(c.job_timeout, Duration::from_secs(3600));
        assert!(c.tls.is_none() && c.allow.is_empty());
    }

    #[test]
    fn tls_needs_all_three_files_and_an_address() {
        let err = parse("listen = \"127.0.0.1:8853\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"")
            .unwrap_err();
        assert!(err.to_string().contains("client_ca is needed"), "{err}");
        let err = parse("tls_cert = \"c.pem\"").unwrap_err();
        assert!(err.to_string().contains("need listen"), "{err}");
        let err =
            parse("listen = \"localhost\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"a\"")
                .unwrap_err();
        assert!(err.to_string().contains("ADDRESS:PORT"), "{err}");
        let c = parse("listen = \"127.0.0.1:8853\"\ntls_cert = \"c.pem\"\ntls_key = \"/etc/k.pem\"\nclient_ca = \"ca.pem\"").unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, Path::new("/srv/dnsseal/c.pem"));
        assert_eq!(tls.key, Path::new("/etc/k.pem"));
        assert_eq!(tls.listen.port(), 8853);
    }

    #[test]
    fn rules_must_name_someone_and_grant_something() {
        let err = parse("[[allow]]\nzones = [\"example.com\"]").unwrap_err();
        assert!(
            err.to_string().contains("allow rule 1: names nobody"),
            "{err}"
        );
        let err = parse("[[allow]]\nuid = 1000").unwrap_err();
        assert!(err.to_string().contains("grants nothing"), "{err}");
        let err = parse("[[allow]]\nspki_sha256 = \"abc\"\nstatus = true").unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        let err = parse("[[allow]]\nuid = 1\nsubject = \"CN=x\"\nstatus = true").unwrap_err();
        assert!(err.to_string().contains("one or the other"), "{err}");
        let err = parse("[[allow]]\nuid = 1\nzones = [\"bad..name\"]").unwrap_err();
        assert!(err.to_string().contains("bad..name"), "{err}");
        let c = parse("[[allow]]\nuid = 1000\nzones = [\"example.com\", \"*\"]\n[[allow]]\nsubject = \"CN=ops\"\nstatus = true").unwrap();
        assert_eq!(c.allow.len(), 2);
    }

    #[test]
    fn zero_limits_are_refused() {
        for text in [
            "max_jobs = 0",
            "job_timeout = 0",
            "read_timeout = 0",
            "max_request_bytes = 0",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
