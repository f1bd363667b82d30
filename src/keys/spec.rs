//! The one map from a DNSSEC algorithm to what the token needs: the key
//! kind to generate ([`KeySpec`]) and the mechanism to sign with
//! ([`SignMechanism`]); and the way back from a token public key to the
//! DNSKEY public key field (RFC 3110 for RSA, RFC 6605 for ECDSA, RFC 8080
//! for Ed25519).

use crate::failure::Failure;
use crate::keystore::KeyRecord;
use crate::token::{KeySpec, PublicKey, SignMechanism};
use crate::zone::dnskey::{check_public_key, rsa_public_key};
use crate::zone::Algorithm;

/// RSA modulus sizes dnsseal creates (RFC 8624 recommends at least 2048).
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=4096;
/// RSA size when --bits is not given.
pub const RSA_DEFAULT_BITS: u32 = 2048;

/// The token key kind of an algorithm of `bits` bits (`bits` known to be
/// right, e.g. read from a record).
pub fn spec_of(alg: Algorithm, bits: u32) -> KeySpec {
    match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => KeySpec::Rsa { bits },
        Algorithm::EcdsaP256Sha256 => KeySpec::EcP256,
        Algorithm::EcdsaP384Sha384 => KeySpec::EcP384,
        Algorithm::Ed25519 => KeySpec::Ed25519,
    }
}

/// The token mechanism that signs for an algorithm; the input it takes is
/// what [`crate::sign::token_input`] makes for the same algorithm.
pub fn mechanism(alg: Algorithm) -> SignMechanism {
    match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => SignMechanism::RsaPkcs,
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => SignMechanism::Ecdsa,
        Algorithm::Ed25519 => SignMechanism::EdDsa,
    }
}

/// Maps a DNSSEC algorithm (and a requested RSA size) onto the token's key
/// kind for a new key; a size that does not apply is bad input.
pub fn key_spec(alg: Algorithm, bits: Option<u32>) -> anyhow::Result<KeySpec> {
    if alg.is_rsa() {
        let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
        if !RSA_BITS.contains(&bits) {
            return Err(Failure::BadInput(format!(
                "RSA key size {bits} is out of range: use {} to {} bits",
                RSA_BITS.start(),
                RSA_BITS.end()
            ))
            .into());
        }
        return Ok(KeySpec::Rsa { bits });
    }
    let fixed = alg.fixed_bits().unwrap_or(0);
    if let Some(b) = bits.filter(|&b| b != fixed) {
        return Err(Failure::BadInput(format!(
            "{alg} keys are always {fixed} bits; --bits {b} does not apply"
        ))
        .into());
    }
    Ok(spec_of(alg, fixed))
}

/// The algorithm and token key kind of a stored record (for reading its
/// public key back).
pub fn record_spec(rec: &KeyRecord) -> (Algorithm, KeySpec) {
    (rec.algorithm, spec_of(rec.algorithm, rec.bits))
}

/// The DNSKEY public key field for a key the token holds, checked to be a
/// well-formed key of `alg`.
pub fn dnskey_public_key(alg: Algorithm, pk: &PublicKey) -> anyhow::Result<Vec<u8>> {
    let field = match pk {
        PublicKey::Rsa { modulus, exponent } => rsa_public_key(exponent, modulus)?,
        PublicKey::Ec { point } | PublicKey::Ed25519 { point } => point.clone(),
    };
    check_public_key(alg, &field)?;
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::exit_code;
    use crate::sign::{token_input, TokenInput};

    #[test]
    fn key_spec_per_algorithm() {
        assert_eq!(
            key_spec(Algorithm::RsaSha256, None).unwrap(),
            KeySpec::Rsa { bits: 2048 }
        );
        assert_eq!(
            key_spec(Algorithm::RsaSha512, Some(4096)).unwrap(),
            KeySpec::Rsa { bits: 4096 }
        );
        assert_eq!(
            key_spec(Algorithm::EcdsaP256Sha256, None).unwrap(),
            KeySpec::EcP256
        );
        assert_eq!(
            key_spec(Algorithm::EcdsaP384Sha384, Some(384)).unwrap(),
            KeySpec::EcP384
        );
        assert_eq!(
            key_spec(Algorithm::Ed25519, None).unwrap(),
            KeySpec::Ed25519
        );
    }

    #[test]
    fn key_spec_rejects_sizes_as_bad_input() {
        for (alg, bits) in [
            (Algorithm::RsaSha256, 1024),
            (Algorithm::RsaSha256, 8192),
            (Algorithm::EcdsaP256Sha256, 384),
            (Algorithm::Ed25519, 2048),
        ] {
            let e = key_spec(alg, Some(bits)).unwrap_err();
            assert_eq!(exit_code(&e), 3, "{alg} {bits}: {e}");
        }
        let e = key_spec(Algorithm::Ed25519, Some(2048)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ED25519 keys are always 256 bits; --bits 2048 does not apply"
        );
    }

    #[test]
    fn mechanism_takes_what_token_input_makes() {
        for alg in Algorithm::ALL {
            let same = matches!(
                (mechanism(alg), token_input(alg, b"x")),
                (SignMechanism::RsaPkcs, TokenInput::RsaPkcs(_))
                    | (SignMechanism::Ecdsa, TokenInput::Ecdsa(_))
                    | (SignMechanism::EdDsa, TokenInput::EdDsa(_))
            );
            assert!(same, "{alg}");
        }
    }
}
