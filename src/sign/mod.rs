//! The signing engine's primitives: what the token is asked to sign for a
//! DNSSEC algorithm, and the host-side check of what it returns.
//!
//! RSA (RFC 5702) and ECDSA (RFC 6605) inputs are hashed on the host and
//! only the digest goes to the token (wrapped in a DER DigestInfo for
//! CKM_RSA_PKCS); Ed25519 (RFC 8080) sends the whole input to CKM_EDDSA.
//! Every signature is verified on the host before it is used (invariant 5
//! of the design), with the fastest verifier measured here for each
//! algorithm (`cargo bench --bench verify`): `ring` for ECDSA P-256, where
//! it and AWS-LC are level; `aws-lc-rs` for P-384 (3× `ring`), Ed25519 and
//! RSA (about 1.2× `ring`).

pub mod check;
pub mod engine;
pub mod job;
pub mod options;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod request;
pub mod reread;
pub mod state;
pub mod verify;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::zone::dnskey::{modulus_bits, rsa_components};
use crate::zone::Algorithm;

/// DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
const DIGEST_INFO_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// DER DigestInfo prefix for SHA-512 (RFC 8017 §9.2 note 1).
const DIGEST_INFO_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// What goes to the token for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInput {
    /// CKM_RSA_PKCS over this DigestInfo.
    RsaPkcs(Vec<u8>),
    /// CKM_ECDSA over this digest.
    Ecdsa(Vec<u8>),
    /// CKM_EDDSA over this message.
    EdDsa(Vec<u8>),
}

/// Prepares the token input for signing `message` with `algorithm`.
pub fn token_input(algorithm: Algorithm, message: &[u8]) -> TokenInput {
    match algorithm {
        Algorithm::RsaSha256 => {
            let mut v = DIGEST_INFO_SHA256.to_vec();
            v.extend_from_slice(&Sha256::digest(message));
            TokenInput::RsaPkcs(v)
        }
        Algorithm::RsaSha512 => {
            let mut v = DIGEST_INFO_SHA512.to_vec();
            v.extend_from_slice(&Sha512::digest(message));
            TokenInput::RsaPkcs(v)
        }
        Algorithm::EcdsaP256Sha256 => TokenInput::Ecdsa(Sha256::digest(message).to_vec()),
        Algorithm::EcdsaP384Sha384 => TokenInput::Ecdsa(Sha384::digest(message).to_vec()),
        Algorithm::Ed25519 => TokenInput::EdDsa(message.to_vec()),
    }
}

/// Verifies a DNSSEC signature (RRSIG signature field format) over
/// `message` with a DNSKEY public key field.
pub fn verify(algorithm: Algorithm, public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    match algorithm {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
            let Some((e, n)) = rsa_components(public_key) else {
                return false;
            };
            if modulus_bits(n) < 1024 {
                return verify_small_rsa(algorithm, n, e, message, sig);
            }
            let params = if algorithm == Algorithm::RsaSha256 {
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            } else {
                &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        Algorithm::EcdsaP256Sha256 => {
            let point = uncompressed_point(public_key);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(message, sig)
            .is_ok()
        }
        Algorithm::EcdsaP384Sha384 => {
            let point = uncompressed_point(public_key);
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        Algorithm::Ed25519 => UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(message, sig)
            .is_ok(),
    }
}

/// The SEC1 uncompressed encoding of a DNSKEY ECDSA public key (RFC 6605
/// §4: the DNSKEY holds x || y without the 0x04 prefix).
fn uncompressed_point(public_key: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(public_key.len() + 1);
    point.push(0x04);
    point.extend_from_slice(public_key);
    point
}

/// RSA keys below 1024 bits (legacy keys met in migrations, and the RFC
/// 5702 examples) are below what `aws-lc-rs` verifies; RustCrypto's `rsa`
/// checks them. dnsseal never creates such keys.
fn verify_small_rsa(algorithm: Algorithm, n: &[u8], e: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
    ) else {
        return false;
    };
    if algorithm == Algorithm::RsaSha256 {
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            sig,
        )
        .is_ok()
    } else {
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            sig,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    /// RFC 6605 §6.1: the RRSIG over www.example.net. A 192.0.2.1.
    #[test]
    fn rfc6605_p256_signature_verifies() {
        let key = b64("GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==");
        let sig = b64("qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==");
        // RRSIG RDATA without signature, then the canonical A RR.
        let mut m = Vec::new();
        m.extend([0, 1, 13, 3, 0, 0, 0x0e, 0x10]); // type A, alg 13, labels 3, TTL 3600
        m.extend(1_284_026_679u32.to_be_bytes()); // expiration 20100909100439
        m.extend(1_281_607_479u32.to_be_bytes()); // inception 20100812100439
        m.extend(55648u16.to_be_bytes());
        m.extend(b"\x07example\x03net\x00");
        m.extend(b"\x03www\x07example\x03net\x00");
        m.extend([0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
        assert!(verify(Algorithm::EcdsaP256Sha256, &key, &m, &sig));
        let mut bad = m.clone();
        let last = bad.len() - 1;
        bad[last] = 2;
        assert!(!verify(Algorithm::EcdsaP256Sha256, &key, &bad, &sig));
    }

    /// RFC 8080 §6.1 (errata 4935): example.com. MX 10 mail.example.com.
    #[test]
    fn rfc8080_ed25519_signature_verifies() {
        let key = b64("l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=");
        let sig = b64("oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg==");
        let mut m = Vec::new();
        m.extend([0, 15, 15, 2, 0, 0, 0x0e, 0x10]); // type MX, alg 15, labels 2, TTL 3600
        m.extend(1_440_021_600u32.to_be_bytes());
        m.extend(1_438_207_200u32.to_be_bytes());
        m.extend(3613u16.to_be_bytes());
        m.extend(b"\x07example\x03com\x00");
        let rdata = b"\x00\x0a\x04mail\x07example\x03com\x00";
        m.extend(b"\x07example\x03com\x00");
        m.extend([0, 15, 0, 1, 0, 0, 0x0e, 0x10, 0, rdata.len() as u8]);
        m.extend(rdata);
        assert!(verify(Algorithm::Ed25519, &key, &m, &sig));
        assert!(!verify(Algorithm::Ed25519, &key, &m[1..], &sig));
    }

    #[test]
    fn token_inputs_have_the_right_shape() {
        match token_input(Algorithm::RsaSha256, b"x") {
            TokenInput::RsaPkcs(v) => assert_eq!(v.len(), 19 + 32),
            other => panic!("{other:?}"),
        }
        match token_input(Algorithm::RsaSha512, b"x") {
            TokenInput::RsaPkcs(v) => assert_eq!(v.len(), 19 + 64),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            token_input(Algorithm::EcdsaP384Sha384, b"x"),
            TokenInput::Ecdsa(Sha384::digest(b"x").to_vec())
        );
        assert_eq!(
            token_input(Algorithm::Ed25519, b"x"),
            TokenInput::EdDsa(b"x".to_vec())
        );
    }
}
