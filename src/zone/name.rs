//! Domain names in the canonical form the keystore stores.
//!
//! Zone names are accepted with or without the trailing dot and in any case,
//! with RFC 1035 escapes (`\.`, `\DDD`); they are stored lowercased and
//! absolute (RFC 4034 §6.2 canonical form), printed with the trailing dot.

use std::fmt;
use std::str::FromStr;

use domain::base::Name;

/// Why a string is not a domain name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("'{input}' is not a domain name: {reason}")]
pub struct NameError {
    input: String,
    reason: String,
}

/// An absolute domain name in canonical (lowercase) form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneName {
    wire: Vec<u8>,
}

impl ZoneName {
    /// The root zone.
    pub fn root() -> Self {
        ZoneName { wire: vec![0] }
    }

    /// Uncompressed wire form, lowercased (RFC 4034 §6.2).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Builds a name from wire octets (must be a valid uncompressed name).
    pub fn from_wire(wire: &[u8]) -> Result<Self, NameError> {
        let name = Name::from_slice(wire).map_err(|e| NameError {
            input: hex::encode(wire),
            reason: e.to_string(),
        })?;
        Ok(ZoneName {
            wire: name.as_slice().to_ascii_lowercase(),
        })
    }

    /// Number of labels, not counting the root (the RRSIG "labels" count
    /// for a name that is not a wildcard).
    pub fn label_count(&self) -> usize {
        self.domain().label_count() - 1
    }

    fn domain(&self) -> &Name<[u8]> {
        // The octets were checked when the ZoneName was built.
        Name::from_slice(&self.wire).unwrap_or_else(|_| Name::root_slice())
    }
}

impl FromStr for ZoneName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| NameError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(err("it contains white space"));
        }
        if trimmed == "." {
            return Ok(ZoneName::root());
        }
        if trimmed.starts_with('.') || trimmed.contains("..") {
            return Err(err("it has an empty label"));
        }
        let name: Name<Vec<u8>> = Name::from_str(trimmed).map_err(|e| err(&e.to_string()))?;
        Ok(ZoneName {
            wire: name.as_slice().to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for ZoneName {
    /// The presentation form with the final dot; a width (`{:<24}`) pads
    /// it like a string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.domain().fmt_with_dot();
        if f.width().is_some() {
            f.pad(&name.to_string())
        } else {
            write!(f, "{name}")
        }
    }
}

impl fmt::Debug for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZoneName({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> ZoneName {
        s.parse().unwrap()
    }

    #[test]
    fn dot_and_case_do_not_matter() {
        assert_eq!(n("Example.COM"), n("example.com."));
        assert_eq!(n("Example.COM").to_string(), "example.com.");
        assert_eq!(n("example.com").wire(), b"\x07example\x03com\x00");
        assert_eq!(n("a.b.example").label_count(), 3);
    }

    #[test]
    fn a_width_pads_the_name_like_a_string() {
        assert_eq!(format!("{:<10}|", n("a.b")), "a.b.      |");
        assert_eq!(format!("{:>6}", n("a.b")), "  a.b.");
        assert_eq!(format!("{}", n("a.b")), "a.b.");
    }

    #[test]
    fn root() {
        assert_eq!(n(".").to_string(), ".");
        assert_eq!(n(".").wire(), b"\x00");
        assert_eq!(n(".").label_count(), 0);
    }

    #[test]
    fn escapes() {
        let x = n("a\\.b.example.");
        assert_eq!(x.wire(), b"\x03a.b\x07example\x00");
        assert_eq!(x.to_string(), "a\\.b.example.");
        assert_eq!(n("\\065bc.example").to_string(), "abc.example.");
    }

    #[test]
    fn not_names() {
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghi"; 30].join(".");
        for bad in [
            "",
            " ",
            "a..b",
            ".example",
            "exa mple.com",
            &long_label,
            &long_name,
        ] {
            assert!(bad.parse::<ZoneName>().is_err(), "{bad:?} accepted");
        }
    }
}
