//! DNSKEY RDATA, key tags and DS records.
//!
//! A [`Dnskey`] is the RDATA of one DNSKEY record (RFC 4034 §2.1). The public
//! key field is built from the token's key components: RSA per RFC 3110 §2
//! (exponent length, exponent, modulus), ECDSA as `X || Y` (RFC 6605 §4),
//! Ed25519 as the 32-octet point (RFC 8080 §3).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384};

use super::{Algorithm, DigestType, ZoneName};

/// DNSKEY flag bit 7: Zone Key (RFC 4034 §2.1.1).
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flag bit 15: Secure Entry Point (RFC 4034 §2.1.1, RFC 3757).
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY flag bit 8: REVOKE (RFC 5011 §7).
pub const FLAG_REVOKE: u16 = 0x0080;
/// The only protocol value allowed (RFC 4034 §2.1.2).
pub const PROTOCOL: u8 = 3;

/// Why key material could not be turned into a DNSKEY.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DnskeyError {
    #[error("RSA {what} is empty")]
    EmptyRsaPart { what: &'static str },
    #[error("RSA public exponent of {0} octets does not fit RFC 3110 encoding")]
    RsaExponentTooLong(usize),
    #[error("{algorithm} public key must be {expected} octets, the token gave {got}")]
    BadKeyLength {
        algorithm: Algorithm,
        expected: usize,
        got: usize,
    },
    #[error("DNSKEY public key field is malformed for {0}")]
    Malformed(Algorithm),
}

/// The RDATA of a DNSKEY record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnskey {
    pub flags: u16,
    pub protocol: u8,
    /// Algorithm number; kept as a number so that keys of algorithms
    /// dnsseal does not create (RFC examples, foreign keys) still work.
    pub algorithm: u8,
    pub public_key: Vec<u8>,
}

/// One DS record's RDATA (RFC 4034 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ds {
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest_type: DigestType,
    pub digest: Vec<u8>,
}

impl Ds {
    /// DS RDATA in wire form (RFC 4034 §5.1), also that of CDS (RFC 7344).
    pub fn rdata(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.digest.len());
        out.extend_from_slice(&self.key_tag.to_be_bytes());
        out.push(self.algorithm);
        out.push(self.digest_type.number());
        out.extend_from_slice(&self.digest);
        out
    }
}

/// RFC 3110 §2 public key field from big-endian exponent and modulus.
pub fn rsa_public_key(exponent: &[u8], modulus: &[u8]) -> Result<Vec<u8>, DnskeyError> {
    let e = strip_leading_zeros(exponent);
    let n = strip_leading_zeros(modulus);
    if e.is_empty() {
        return Err(DnskeyError::EmptyRsaPart { what: "exponent" });
    }
    if n.is_empty() {
        return Err(DnskeyError::EmptyRsaPart { what: "modulus" });
    }
    let mut out = Vec::with_capacity(3 + e.len() + n.len());
    match u8::try_from(e.len()) {
        Ok(len) => out.push(len),
        Err(_) => {
            let len =
                u16::try_from(e.len()).map_err(|_| DnskeyError::RsaExponentTooLong(e.len()))?;
            out.push(0);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(e);
    out.extend_from_slice(n);
    Ok(out)
}

/// Splits an RFC 3110 public key field into (exponent, modulus).
pub fn rsa_components(public_key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = public_key.split_first()?;
    let (len, rest) = if first == 0 {
        if rest.len() < 2 {
            return None;
        }
        (
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        )
    } else {
        (usize::from(first), rest)
    };
    if len == 0 || rest.len() <= len {
        return None;
    }
    Some(rest.split_at(len))
}

/// A big-endian integer without its leading zero octets.
pub fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// Size in bits of a big-endian RSA modulus.
pub fn modulus_bits(n: &[u8]) -> u32 {
    let n = strip_leading_zeros(n);
    match n.first() {
        Some(&top) => (n.len() as u32) * 8 - top.leading_zeros(),
        None => 0,
    }
}

/// Checks that a public key field has the shape its algorithm requires.
pub fn check_public_key(algorithm: Algorithm, public_key: &[u8]) -> Result<(), DnskeyError> {
    match algorithm.public_key_len() {
        Some(expected) if public_key.len() != expected => Err(DnskeyError::BadKeyLength {
            algorithm,
            expected,
            got: public_key.len(),
        }),
        Some(_) => Ok(()),
        None => rsa_components(public_key)
            .map(|_| ())
            .ok_or(DnskeyError::Malformed(algorithm)),
    }
}

/// RFC 4034 Appendix B key tag over DNSKEY RDATA (algorithm 1 excluded:
/// dnsseal never handles RSA/MD5).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 {
            u32::from(b)
        } else {
            u32::from(b) << 8
        };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

impl Dnskey {
    /// A zone key (flags 256, or 257 with the SEP bit for KSKs and CSKs).
    pub fn new(algorithm: Algorithm, sep: bool, public_key: Vec<u8>) -> Self {
        Dnskey {
            flags: FLAG_ZONE | if sep { FLAG_SEP } else { 0 },
            protocol: PROTOCOL,
            algorithm: algorithm.number(),
            public_key,
        }
    }

    /// Wire RDATA.
    pub fn rdata(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.public_key.len());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.push(self.protocol);
        out.push(self.algorithm);
        out.extend_from_slice(&self.public_key);
        out
    }

    pub fn key_tag(&self) -> u16 {
        key_tag(&self.rdata())
    }

    pub fn is_sep(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }

    /// Key size in bits: the modulus length for RSA, else the curve size.
    pub fn bits(&self) -> u32 {
        match Algorithm::from_number(self.algorithm) {
            Some(a) if a.fixed_bits().is_some() => a.fixed_bits().unwrap_or(0),
            _ => rsa_components(&self.public_key)
                .map(|(_, n)| modulus_bits(n))
                .unwrap_or(0),
        }
    }

    /// The public key in base64, as in presentation format.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(&self.public_key)
    }

    /// DS digest over owner name and RDATA (RFC 4034 §5.1.4).
    pub fn ds(&self, owner: &ZoneName, digest_type: DigestType) -> Ds {
        let rdata = self.rdata();
        let digest = match digest_type {
            DigestType::Sha1 => {
                let mut h = Sha1::new();
                h.update(owner.wire());
                h.update(&rdata);
                h.finalize().to_vec()
            }
            DigestType::Sha256 => {
                let mut h = Sha256::new();
                h.update(owner.wire());
                h.update(&rdata);
                h.finalize().to_vec()
            }
            DigestType::Sha384 => {
                let mut h = Sha384::new();
                h.update(owner.wire());
                h.update(&rdata);
                h.finalize().to_vec()
            }
        };
        Ds {
            key_tag: key_tag(&rdata),
            algorithm: self.algorithm,
            digest_type,
            digest,
        }
    }

    /// Parses `FLAGS PROTOCOL ALGORITHM BASE64...` (the RDATA part of a
    /// DNSKEY record in presentation format; white space in the key is fine).
    pub fn from_presentation(rdata: &str) -> Option<Dnskey> {
        let mut it = rdata.split_whitespace();
        let flags = it.next()?.parse().ok()?;
        let protocol = it.next()?.parse().ok()?;
        let algorithm = it.next()?.parse().ok()?;
        let b64: String = it.collect();
        let public_key = BASE64.decode(b64).ok()?;
        Some(Dnskey {
            flags,
            protocol,
            algorithm,
            public_key,
        })
    }
}

impl fmt::Display for Dnskey {
    /// RDATA in presentation format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.flags,
            self.protocol,
            self.algorithm,
            self.public_key_base64()
        )
    }
}

impl fmt::Display for Ds {
    /// RDATA in presentation format (digest in upper-case hex, as BIND).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.key_tag,
            self.algorithm,
            self.digest_type.number(),
            hex::encode_upper(&self.digest)
        )
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from the RFCs themselves.
    use super::*;

    fn key(s: &str) -> Dnskey {
        Dnskey::from_presentation(s).unwrap()
    }

    const RFC4034_KEY: &str = "256 3 5 AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";

    #[test]
    fn rfc4034_section_5_4_and_rfc4509() {
        let k = key(RFC4034_KEY);
        let owner: ZoneName = "dskey.example.com.".parse().unwrap();
        assert_eq!(k.key_tag(), 60485);
        assert_eq!(
            k.ds(&owner, DigestType::Sha1).to_string(),
            "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"
        );
        // RFC 4509 §2.3.
        assert_eq!(
            k.ds(&owner, DigestType::Sha256).to_string(),
            "60485 5 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
        );
    }

    #[test]
    fn rfc6605_section_6() {
        let owner: ZoneName = "example.net.".parse().unwrap();
        let p256 = key("257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==");
        assert_eq!(p256.key_tag(), 55648);
        assert_eq!(
            p256.ds(&owner, DigestType::Sha256)
                .to_string()
                .to_lowercase(),
            "55648 13 2 b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17"
        );
        let p384 = key("257 3 14 xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1w/egsXvSADtNJhyem5RCOpgQ6K8X1DRSEkrbYQ+OB+v8/uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40");
        assert_eq!(p384.key_tag(), 10771);
        assert_eq!(
            p384.ds(&owner, DigestType::Sha384).to_string().to_lowercase(),
            "10771 14 4 72d7b62976ce06438e9c0bf319013cf801f09ecc84b8d7e9495f27e305c6a9b0563a9b5f4d288405c3008a946df983d6"
        );
        assert_eq!(p256.bits(), 256);
        assert_eq!(p384.bits(), 384);
    }

    #[test]
    fn rfc8080_section_6() {
        let owner: ZoneName = "example.com.".parse().unwrap();
        let k1 = key("257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=");
        assert_eq!(k1.key_tag(), 3613);
        assert_eq!(
            k1.ds(&owner, DigestType::Sha256).to_string().to_lowercase(),
            "3613 15 2 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b"
        );
        let k2 = key("257 3 15 zPnZ/QwEe7S8C5SPz2OfS5RR40ATk2/rYnE9xHIEijs=");
        assert_eq!(k2.key_tag(), 35217);
        assert_eq!(
            k2.ds(&owner, DigestType::Sha256).to_string().to_lowercase(),
            "35217 15 2 401781b934e392de492ec77ae2e15d70f6575a1c0bc59c5275c04ebe80c6614c"
        );
    }

    #[test]
    fn rfc3110_encoding_round_trips() {
        let k = key(RFC4034_KEY);
        let (e, n) = rsa_components(&k.public_key).unwrap();
        assert_eq!(e, [3]);
        assert_eq!(rsa_public_key(e, n).unwrap(), k.public_key);
        assert_eq!(k.bits(), 1024);
        // Leading zeros from the token are stripped.
        let with_zeros = rsa_public_key(&[0, 1, 0, 1], &[0, 0xC0, 1]).unwrap();
        assert_eq!(with_zeros, vec![3, 1, 0, 1, 0xC0, 1]);
        // An exponent longer than 255 octets uses the 3-octet length form.
        let long_e = vec![1u8; 300];
        let enc = rsa_public_key(&long_e, &[0xFF; 8]).unwrap();
        assert_eq!(&enc[..3], &[0, 1, 44]);
        assert_eq!(rsa_components(&enc).unwrap().0.len(), 300);
    }

    #[test]
    fn shape_checks() {
        assert!(check_public_key(Algorithm::EcdsaP256Sha256, &[0; 64]).is_ok());
        assert!(check_public_key(Algorithm::EcdsaP256Sha256, &[0; 65]).is_err());
        assert!(check_public_key(Algorithm::Ed25519, &[0; 32]).is_ok());
        assert!(check_public_key(Algorithm::RsaSha256, &[3, 1, 0]).is_err());
    }
}
