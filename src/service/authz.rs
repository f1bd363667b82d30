//! Who a client of the signing service is, and what it may do: an
//! identity from the connection (a Unix peer's credentials, or a TLS
//! client certificate verified by the handshake), matched against the
//! `[[service.allow]]` rules. Nothing is allowed without a rule.

use serde::Serialize;

use crate::service::config::Rule;

/// A client, as the connection proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Identity {
    /// A process on this box, by its peer credentials (SO_PEERCRED).
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    },
    /// A TLS client, by its certificate.
    Cert {
        subject: String,
        spki_sha256: String,
    },
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Unix { uid, gid, pid } => {
                write!(f, "uid {uid} gid {gid}")?;
                if let Some(pid) = pid {
                    write!(f, " pid {pid}")?;
                }
                Ok(())
            }
            Identity::Cert {
                subject,
                spki_sha256,
            } => write!(f, "certificate \"{subject}\" spki sha256 {spki_sha256}"),
        }
    }
}

/// What a request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Sign this zone (its name as the zone's origin prints it).
    Sign(&'a str),
    /// Read status or metrics.
    Status,
}

/// Whether `rule` names `who`: every selector the rule gives matches.
fn names(rule: &Rule, who: &Identity) -> bool {
    match who {
        Identity::Unix { uid, gid, .. } => {
            rule.subject.is_none()
                && rule.spki_sha256.is_none()
                && (rule.uid.is_some() || rule.gid.is_some())
                && rule.uid.is_none_or(|u| u == *uid)
                && rule.gid.is_none_or(|g| g == *gid)
        }
        Identity::Cert {
            subject,
            spki_sha256,
        } => {
            rule.uid.is_none()
                && rule.gid.is_none()
                && (rule.subject.is_some() || rule.spki_sha256.is_some())
                && rule.subject.as_ref().is_none_or(|s| s == subject)
                && rule
                    .spki_sha256
                    .as_ref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(spki_sha256))
        }
    }
}

/// Whether `rule` grants `action`.
fn grants(rule: &Rule, action: Action<'_>) -> bool {
    match action {
        Action::Status => rule.status,
        Action::Sign(zone) => rule.zones.iter().any(|z| z == "*" || same_zone(z, zone)),
    }
}

/// Zone names compare without case and without the final dot.
fn same_zone(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether the rules allow `who` to do `action`.
pub fn allowed(rules: &[Rule], who: &Identity, action: Action<'_>) -> bool {
    rules.iter().any(|r| names(r, who) && grants(r, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(uid: u32, gid: u32) -> Identity {
        Identity::Unix {
            uid,
            gid,
            pid: None,
        }
    }

    fn cert(subject: &str, spki: &str) -> Identity {
        Identity::Cert {
            subject: subject.into(),
            spki_sha256: spki.into(),
        }
    }

    fn rules() -> Vec<Rule> {
        vec![
            Rule {
                uid: Some(1000),
                zones: vec!["example.com".into()],
                ..Rule::default()
            },
            Rule {
                gid: Some(2000),
                status: true,
                ..Rule::default()
            },
            Rule {
                subject: Some("CN=builder,O=Example".into()),
                spki_sha256: Some("AB".repeat(32)),
                zones: vec!["*".into()],
                ..Rule::default()
            },
        ]
    }

    #[test]
    fn a_uid_signs_its_zones_only() {
        let r = rules();
        assert!(allowed(&r, &unix(1000, 1), Action::Sign("example.com")));
        assert!(allowed(&r, &unix(1000, 1), Action::Sign("EXAMPLE.com.")));
        assert!(!allowed(&r, &unix(1000, 1), Action::Sign("example.net")));
        assert!(!allowed(
            &r,
            &unix(1000, 1),
            Action::Sign("sub.example.com")
        ));
        assert!(!allowed(&r, &unix(1000, 1), Action::Status));
        assert!(!allowed(&r, &unix(1001, 1), Action::Sign("example.com")));
    }

    #[test]
    fn a_group_reads_status() {
        let r = rules();
        assert!(allowed(&r, &unix(5, 2000), Action::Status));
        assert!(!allowed(&r, &unix(5, 2000), Action::Sign("example.com")));
        assert!(!allowed(&r, &unix(5, 2001), Action::Status));
    }

    #[test]
    fn a_certificate_needs_both_its_subject_and_its_key() {
        let r = rules();
        let spki = "ab".repeat(32);
        assert!(allowed(
            &r,
            &cert("CN=builder,O=Example", &spki),
            Action::Sign("any.org")
        ));
        assert!(!allowed(
            &r,
            &cert("CN=builder,O=Example", &"cd".repeat(32)),
            Action::Sign("any.org")
        ));
        assert!(!allowed(
            &r,
            &cert("CN=other", &spki),
            Action::Sign("any.org")
        ));
    }

    #[test]
    fn unix_rules_never_match_certificates_nor_the_other_way() {
        // A certificate whose subject looks like a uid is still a certificate.
        let r = vec![Rule {
            uid: Some(0),
            zones: vec!["*".into()],
            ..Rule::default()
        }];
        assert!(!allowed(
            &r,
            &cert("CN=0", "00"),
            Action::Sign("example.com")
        ));
        let r = vec![Rule {
            subject: Some("CN=x".into()),
            zones: vec!["*".into()],
            ..Rule::default()
        }];
        assert!(!allowed(&r, &unix(0, 0), Action::Sign("example.com")));
        // A rule of mixed selectors matches neither.
        let r = vec![Rule {
            uid: Some(0),
            subject: Some("CN=x".into()),
            zones: vec!["*".into()],
            ..Rule::default()
        }];
        assert!(!allowed(&r, &unix(0, 0), Action::Sign("example.com")));
        assert!(!allowed(
            &r,
            &cert("CN=x", "00"),
            Action::Sign("example.com")
        ));
    }

    #[test]
    fn no_rules_allow_nothing() {
        assert!(!allowed(&[], &unix(0, 0), Action::Status));
    }
}
