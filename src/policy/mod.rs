//! Key and signing policy (a KASP): one per zone, TOML, stored in the
//! keystore; and the decisions that follow it, as pure functions of the
//! zone's records, its policy and the clock (no I/O, tested without a
//! token):
//!
//! - [`zone`]: a zone as the decisions see it (its policy or the defaults,
//!   its keys, the rollover in progress, its signings);
//! - [`schedule`]: what a zone needs now (first keys, a rollover that is
//!   due, standby ZSKs, the next step) and when its next rollover is;
//! - [`start`]: how a rollover starts (method, keys out and in, keys to
//!   make, step 0);
//! - [`step`]: whether a step may run, forced or not, and what it changes;
//! - [`signing`]: which keys are published and which sign what, and the
//!   CDS/CDNSKEY set (RFC 7344, RFC 8078) while the parent should act;
//! - [`keygen`]: the state, timings and DS state a new or imported key
//!   starts with;
//! - [`rollover`]: the rollover state machine with its RFC 7583 waits.
//!
//! The shipped defaults are `src/policy/default.toml`, which documents every
//! field; `Policy::default()` is the same policy in code (a unit test keeps
//! the two equal).

pub mod keygen;
pub mod rollover;
pub mod schedule;
pub mod signing;
pub mod start;
pub mod step;
pub mod zone;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::zone::{Algorithm, DigestType};

/// The default policy, with its comments, as `policy show` prints it.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// A span of time in seconds, written `90d`, `1h`, `300`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub i64);

impl Span {
    pub const fn secs(self) -> i64 {
        self.0
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        let t = s.trim();
        let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => t.split_at(i),
            None => (t, ""),
        };
        let n: i64 = num
            .parse()
            .map_err(|_| format!("'{s}' is not a duration: write e.g. 300, 5m, 1h, 30d, 2w"))?;
        let mult = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(format!("'{s}': unknown unit '{unit}': use s, m, h, d or w")),
        };
        n.checked_mul(mult)
            .filter(|v| *v <= 100 * 365 * 86_400)
            .map(Span)
            .ok_or_else(|| format!("'{s}' is too long"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
            if s != 0 && s % n == 0 {
                return write!(f, "{}{unit}", s / n);
            }
        }
        write!(f, "{s}s")
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            // The same bound as the text form: what is read is written
            // back as text (`Policy::to_toml`, the keystore's copy).
            Raw::Int(n) if n >= 0 => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "{n}: a duration cannot be negative"
            ))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// KSK+ZSK or one CSK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    KskZsk,
    Csk,
}

/// How a ZSK is rolled (RFC 7583 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZskMethod {
    PrePublication,
    DoubleSignature,
}

/// How a KSK is rolled (RFC 7583 §3.3, RFC 5011).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KskMethod {
    DoubleKsk,
    DoubleDs,
    DoubleRrset,
    Rfc5011,
}

/// A zone's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    pub layout: Layout,
    pub algorithm: String,
    pub ksk_bits: u32,
    pub zsk_bits: u32,
    pub ksk_lifetime: Span,
    pub zsk_lifetime: Span,
    pub csk_lifetime: Span,
    pub zsk_method: ZskMethod,
    pub ksk_method: KskMethod,
    pub standby_zsks: u32,
    pub dnskey_ttl: Span,
    pub max_zone_ttl: Span,
    pub ds_ttl: Span,
    pub propagation_delay: Span,
    pub parent_propagation_delay: Span,
    pub registration_delay: Span,
    pub publish_safety: Span,
    pub retire_safety: Span,
    pub hold_down: Span,
    pub signature_validity: Span,
    pub signature_refresh: Span,
    pub signature_jitter: Span,
    pub nsec3: bool,
    pub nsec3_iterations: u16,
    pub nsec3_salt: String,
    pub nsec3_opt_out: bool,
    pub cds: bool,
    pub cdnskey: bool,
    pub ds_digests: Vec<String>,
    /// The zone's KSK lives on an offline box: this box holds ZSKs only,
    /// its DNSKEY, CDS and CDNSKEY RRsets and their signatures come from an
    /// imported SKR, and `policy run` follows the ZSK schedule of the last
    /// `ksr create` and never makes or rolls a KSK.
    pub offline_ksk: bool,
    /// `sign` warns when the imported SKR runs out within this span.
    pub skr_margin: Span,
}

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            layout: Layout::KskZsk,
            algorithm: "ECDSAP256SHA256".into(),
            ksk_bits: 2048,
            zsk_bits: 2048,
            ksk_lifetime: Span(365 * DAY),
            zsk_lifetime: Span(90 * DAY),
            csk_lifetime: Span(365 * DAY),
            zsk_method: ZskMethod::PrePublication,
            ksk_method: KskMethod::DoubleKsk,
            standby_zsks: 0,
            dnskey_ttl: Span(HOUR),
            max_zone_ttl: Span(DAY),
            ds_ttl: Span(DAY),
            propagation_delay: Span(HOUR),
            parent_propagation_delay: Span(HOUR),
            registration_delay: Span(DAY),
            publish_safety: Span(HOUR),
            retire_safety: Span(HOUR),
            hold_down: Span(30 * DAY),
            signature_validity: Span(14 * DAY),
            signature_refresh: Span(5 * DAY),
            signature_jitter: Span(12 * HOUR),
            nsec3: false,
            nsec3_iterations: 0,
            nsec3_salt: String::new(),
            nsec3_opt_out: false,
            cds: true,
            cdnskey: true,
            ds_digests: vec!["SHA-256".into()],
            offline_ksk: false,
            skr_margin: Span(14 * DAY),
        }
    }
}

/// Why a policy was refused.
#[derive(Debug, thiserror::Error)]
#[error("policy: {0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// Reads and checks a policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        p.check()?;
        Ok(p)
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Result<Algorithm, PolicyError> {
        self.algorithm
            .parse()
            .map_err(|e: crate::zone::algorithm::UnknownAlgorithm| PolicyError(e.to_string()))
    }

    /// The DS digest types asked of the parent.
    pub fn digests(&self) -> Result<Vec<DigestType>, PolicyError> {
        self.ds_digests
            .iter()
            .map(|d| {
                d.parse::<DigestType>()
                    .map_err(|e| PolicyError(format!("ds-digests: {e}")))
            })
            .collect()
    }

    /// RSA size for a role (None for fixed-size algorithms).
    pub fn bits(&self, sep: bool) -> Option<u32> {
        match self.algorithm() {
            Ok(Algorithm::RsaSha256 | Algorithm::RsaSha512) => {
                Some(if sep { self.ksk_bits } else { self.zsk_bits })
            }
            _ => None,
        }
    }

    fn check(&self) -> Result<(), PolicyError> {
        self.algorithm()?;
        let digests = self.digests()?;
        if digests.is_empty() && (self.cds || self.cdnskey) {
            return Err(PolicyError(
                "ds-digests is empty, but cds is on: name at least one digest type".into(),
            ));
        }
        for (name, bits) in [("ksk-bits", self.ksk_bits), ("zsk-bits", self.zsk_bits)] {
            if !(2048..=4096).contains(&bits) {
                return Err(PolicyError(format!(
                    "{name} = {bits}: RSA keys are 2048 to 4096 bits"
                )));
            }
        }
        if self.dnskey_ttl.secs() == 0 || self.max_zone_ttl.secs() == 0 || self.ds_ttl.secs() == 0 {
            return Err(PolicyError(
                "dnskey-ttl, max-zone-ttl and ds-ttl must be more than 0".into(),
            ));
        }
        if self.dnskey_ttl > self.max_zone_ttl {
            return Err(PolicyError(format!(
                "dnskey-ttl {} is larger than max-zone-ttl {}",
                self.dnskey_ttl, self.max_zone_ttl
            )));
        }
        let v = self.signature_validity.secs();
        if v < DAY {
            return Err(PolicyError(format!(
                "signature-validity {} is shorter than a day",
                self.signature_validity
            )));
        }
        if self.signature_refresh.secs() + self.signature_jitter.secs() >= v {
            return Err(PolicyError(format!(
                "signature-refresh {} plus signature-jitter {} must be shorter than signature-validity {}",
                self.signature_refresh, self.signature_jitter, self.signature_validity
            )));
        }
        // Signatures must outlive what caches keep and the time to replace them.
        if self.signature_refresh.secs() < self.max_zone_ttl.secs() + self.propagation_delay.secs()
        {
            return Err(PolicyError(format!(
                "signature-refresh {} is shorter than max-zone-ttl {} plus propagation-delay {}: cached signatures could expire",
                self.signature_refresh, self.max_zone_ttl, self.propagation_delay
            )));
        }
        if self.nsec3_salt.len() > 510 || hex::decode(&self.nsec3_salt).is_err() {
            return Err(PolicyError(format!(
                "nsec3-salt '{}' is not hex of at most 255 octets",
                self.nsec3_salt
            )));
        }
        if self.offline_ksk && self.layout != Layout::KskZsk {
            return Err(PolicyError(
                "offline-ksk needs layout = \"ksk-zsk\": a CSK cannot be both offline and online"
                    .into(),
            ));
        }
        for (name, span) in [
            ("ksk-lifetime", self.ksk_lifetime),
            ("zsk-lifetime", self.zsk_lifetime),
            ("csk-lifetime", self.csk_lifetime),
        ] {
            if span.secs() != 0 && span.secs() < 2 * DAY {
                return Err(PolicyError(format!(
                    "{name} {span} is shorter than two days: use 0 for no automatic rollover"
                )));
            }
        }
        Ok(())
    }

    /// The policy in one line, as its audit record gives it: layout,
    /// algorithm, rollover methods and lifetimes, DNSKEY TTL, denial.
    pub fn summary(&self) -> String {
        format!(
            "{} {}, ZSK {} every {}, KSK {} every {}, DNSKEY TTL {}, {}",
            match self.layout {
                Layout::KskZsk => "KSK+ZSK",
                Layout::Csk => "CSK",
            },
            self.algorithm,
            rollover::Method::for_zsk(self.zsk_method),
            self.zsk_lifetime,
            rollover::Method::for_ksk(self.ksk_method),
            self.ksk_lifetime,
            self.dnskey_ttl,
            if self.nsec3 { "NSEC3" } else { "NSEC" }
        )
    }

    /// The policy as TOML (every field, for `policy show`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_is_the_default() {
        assert_eq!(Policy::parse(DEFAULT_TOML).unwrap(), Policy::default());
    }

    #[test]
    fn empty_text_gives_defaults_and_fields_override() {
        assert_eq!(Policy::parse("").unwrap(), Policy::default());
        let p = Policy::parse("zsk-lifetime = \"30d\"\ndnskey-ttl = 600\n").unwrap();
        assert_eq!(p.zsk_lifetime, Span(30 * DAY));
        assert_eq!(p.dnskey_ttl, Span(600));
    }

    /// A span given in seconds has the bound of one given as text, so that
    /// every policy read is read again from its own TOML
    /// (fuzz/seeds/config/policy-span-too-long: `zsk-lifetime =
    /// 1111111111111111` was taken, then its TOML refused as too long).
    #[test]
    fn every_policy_read_reads_again_from_its_toml() {
        let e = Policy::parse("zsk-lifetime = 1111111111111111").unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        let longest = 100 * 365 * DAY;
        for text in [
            format!("zsk-lifetime = {longest}"),
            "dnskey-ttl = 600".into(),
        ] {
            let p = Policy::parse(&text).unwrap();
            assert_eq!(Policy::parse(&p.to_toml()).unwrap(), p, "{text}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let e = Policy::parse("zsk-lifetme = \"30d\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("zsk-lifetme"), "{e}");
        let e = Policy::parse("dnskey-ttl = \"1x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown unit"), "{e}");
        let e = Policy::parse("algorithm = \"DSA\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("DSA"), "{e}");
        let e = Policy::parse("signature-refresh = \"1h\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max-zone-ttl"), "{e}");
        let e = Policy::parse("zsk-method = \"sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sometimes"), "{e}");
    }

    #[test]
    fn the_summary_names_layout_methods_and_lifetimes() {
        assert_eq!(
            Policy::default().summary(),
            "KSK+ZSK ECDSAP256SHA256, ZSK zsk-pre-publication every 90d, KSK ksk-double-ksk every 365d, DNSKEY TTL 1h, NSEC"
        );
        let p =
            Policy::parse("layout = \"csk\"\nnsec3 = true\nzsk-method = \"double-signature\"\n")
                .unwrap();
        assert!(p
            .summary()
            .starts_with("CSK ECDSAP256SHA256, ZSK zsk-double-signature every 90d"));
        assert!(p.summary().ends_with(", NSEC3"));
    }

    #[test]
    fn spans_round_trip() {
        for (t, v) in [
            ("90d", 90 * DAY),
            ("1h", HOUR),
            ("300", 300),
            ("2w", 14 * DAY),
        ] {
            let s: Span = t.parse().unwrap();
            assert_eq!(s.secs(), v);
            assert_eq!(s.to_string().parse::<Span>().unwrap(), s);
        }
        assert_eq!(Span(90).to_string(), "90s");
    }
}
