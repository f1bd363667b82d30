//! DNSSEC algorithm numbers (IANA registry, RFC 8624) and DS digest types.

use std::fmt;
use std::str::FromStr;

/// The signing algorithms dnsseal creates keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RFC 5702.
    RsaSha256,
    /// RFC 5702.
    RsaSha512,
    /// RFC 6605.
    EcdsaP256Sha256,
    /// RFC 6605.
    EcdsaP384Sha384,
    /// RFC 8080.
    Ed25519,
}

/// Why an algorithm name or number was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown or unsupported DNSSEC algorithm '{0}': use one of RSASHA256 (8), RSASHA512 (10), ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15)")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::RsaSha256,
        Algorithm::RsaSha512,
        Algorithm::EcdsaP256Sha256,
        Algorithm::EcdsaP384Sha384,
        Algorithm::Ed25519,
    ];

    /// The IANA number.
    pub const fn number(self) -> u8 {
        match self {
            Algorithm::RsaSha256 => 8,
            Algorithm::RsaSha512 => 10,
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::EcdsaP384Sha384 => 14,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The IANA mnemonic.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "RSASHA256",
            Algorithm::RsaSha512 => "RSASHA512",
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::EcdsaP384Sha384 => "ECDSAP384SHA384",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    pub fn from_number(n: u8) -> Option<Self> {
        Algorithm::ALL.into_iter().find(|a| a.number() == n)
    }

    pub const fn is_rsa(self) -> bool {
        matches!(self, Algorithm::RsaSha256 | Algorithm::RsaSha512)
    }

    /// Key size in bits for the fixed-size algorithms; `None` for RSA.
    pub const fn fixed_bits(self) -> Option<u32> {
        match self {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => None,
            Algorithm::EcdsaP256Sha256 | Algorithm::Ed25519 => Some(256),
            Algorithm::EcdsaP384Sha384 => Some(384),
        }
    }

    /// Length of the public key field in DNSKEY RDATA for the fixed-size
    /// algorithms (RFC 6605 §4, RFC 8080 §3).
    pub const fn public_key_len(self) -> Option<usize> {
        match self {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => None,
            Algorithm::EcdsaP256Sha256 => Some(64),
            Algorithm::EcdsaP384Sha384 => Some(96),
            Algorithm::Ed25519 => Some(32),
        }
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Accepts the mnemonic in any case, the number, and the common
    /// spellings `ECDSA256`, `ECDSA384`, `ECDSAP256`, `ECDSAP384`, `Ed25519`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u8>() {
            return Algorithm::from_number(n).ok_or_else(|| UnknownAlgorithm(s.to_string()));
        }
        let upper = t.to_ascii_uppercase().replace(['-', '_'], "");
        let alg = match upper.as_str() {
            "RSASHA256" => Algorithm::RsaSha256,
            "RSASHA512" => Algorithm::RsaSha512,
            "ECDSAP256SHA256" | "ECDSAP256" | "ECDSA256" => Algorithm::EcdsaP256Sha256,
            "ECDSAP384SHA384" | "ECDSAP384" | "ECDSA384" => Algorithm::EcdsaP384Sha384,
            "ED25519" => Algorithm::Ed25519,
            _ => return Err(UnknownAlgorithm(s.to_string())),
        };
        Ok(alg)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// DS digest types (IANA "Delegation Signer (DS) Resource Record Digest
/// Algorithms"): 1 SHA-1 (RFC 4034, deprecated for new use by RFC 8624),
/// 2 SHA-256 (RFC 4509), 4 SHA-384 (RFC 6605).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestType {
    Sha1,
    Sha256,
    Sha384,
}

/// Why a digest type name was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown DS digest type '{0}': use sha256 (2), sha384 (4) or sha1 (1)")]
pub struct UnknownDigest(pub String);

impl DigestType {
    pub const fn number(self) -> u8 {
        match self {
            DigestType::Sha1 => 1,
            DigestType::Sha256 => 2,
            DigestType::Sha384 => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            DigestType::Sha1 => "SHA-1",
            DigestType::Sha256 => "SHA-256",
            DigestType::Sha384 => "SHA-384",
        }
    }
}

impl FromStr for DigestType {
    type Err = UnknownDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "1" | "sha1" => Ok(DigestType::Sha1),
            "2" | "sha256" => Ok(DigestType::Sha256),
            "4" | "sha384" => Ok(DigestType::Sha384),
            _ => Err(UnknownDigest(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for a in Algorithm::ALL {
            assert_eq!(a.mnemonic().parse::<Algorithm>().unwrap(), a);
            assert_eq!(a.number().to_string().parse::<Algorithm>().unwrap(), a);
            assert_eq!(a.mnemonic().to_lowercase().parse::<Algorithm>().unwrap(), a);
        }
        assert_eq!(
            "ecdsa256".parse::<Algorithm>().unwrap(),
            Algorithm::EcdsaP256Sha256
        );
        for bad in ["5", "7", "RSASHA1", "16", "ED448", "", "bogus"] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
    }

    #[test]
    fn digests() {
        assert_eq!("SHA256".parse::<DigestType>().unwrap(), DigestType::Sha256);
        assert_eq!("sha-384".parse::<DigestType>().unwrap(), DigestType::Sha384);
        assert_eq!("1".parse::<DigestType>().unwrap(), DigestType::Sha1);
        assert!("3".parse::<DigestType>().is_err());
    }
}
