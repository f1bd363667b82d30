//! What the token says about the key objects under one CKA_ID: how many
//! private and public objects carry it, the private object's protection
//! and usage attributes, the kind of key each object is, and the public
//! key. Read once per key and run (two searches and two
//! C_GetAttributeValue, each asking for every attribute at once), for the
//! checks of [`crate::keys::objects`], which decide; nothing here judges.
//!
//! No attribute read here holds private key material: CKA_MODULUS and
//! CKA_EC_PARAMS of a private key are public.

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::{ck, parse_ec_point, KeySpec, PublicKey, TokenError};
use super::{OID_ED25519, OID_P256, OID_P384};

/// CKA_EC_PARAMS as a PrintableString "edwards25519" (PKCS#11 3.0 allows
/// the curve name instead of the OID).
const NAME_ED25519: &[u8] = b"\x13\x0cedwards25519";

/// The key objects under one CKA_ID. An attribute the token does not
/// report (CKR_ATTRIBUTE_TYPE_INVALID, or unavailable) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairObjects {
    /// How many private key objects carry the CKA_ID (token objects only).
    pub private_objects: usize,
    /// How many public key objects carry it.
    pub public_objects: usize,
    /// The attributes of the private object dnsseal would sign with.
    pub private: PrivateKeyAttributes,
    /// What kind of key the private object is.
    pub private_kind: ObjectKind,
    /// The private object's RSA modulus (public), for RSA keys.
    pub private_modulus: Option<Vec<u8>>,
    /// What kind of key the public object is.
    pub public_kind: ObjectKind,
    /// The public object's key, when it is of a kind dnsseal reads and
    /// well formed.
    pub public_key: Option<PublicKey>,
}

/// A private key object's protection and usage attributes, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrivateKeyAttributes {
    pub token: Option<bool>,
    pub private: Option<bool>,
    pub sensitive: Option<bool>,
    pub always_sensitive: Option<bool>,
    pub extractable: Option<bool>,
    pub never_extractable: Option<bool>,
    pub local: Option<bool>,
    pub sign: Option<bool>,
    pub sign_recover: Option<bool>,
    pub decrypt: Option<bool>,
    pub unwrap: Option<bool>,
    pub derive: Option<bool>,
    pub modifiable: Option<bool>,
}

/// The kind of key an object says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// One of the kinds dnsseal makes (RSA with its modulus size).
    Known(KeySpec),
    /// Anything else, described for the operator.
    Other(String),
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectKind::Known(spec) => write!(f, "{spec}"),
            ObjectKind::Other(what) => f.write_str(what),
        }
    }
}

const PRIVATE_ATTRIBUTES: [AttributeType; 16] = [
    AttributeType::Token,
    AttributeType::Private,
    AttributeType::Sensitive,
    AttributeType::AlwaysSensitive,
    AttributeType::Extractable,
    AttributeType::NeverExtractable,
    AttributeType::Local,
    AttributeType::Sign,
    AttributeType::SignRecover,
    AttributeType::Decrypt,
    AttributeType::Unwrap,
    AttributeType::Derive,
    AttributeType::Modifiable,
    AttributeType::KeyType,
    AttributeType::EcParams,
    AttributeType::Modulus,
];

const PUBLIC_ATTRIBUTES: [AttributeType; 5] = [
    AttributeType::KeyType,
    AttributeType::EcParams,
    AttributeType::EcPoint,
    AttributeType::Modulus,
    AttributeType::PublicExponent,
];

/// Reads the key objects under `id`. `private` is the handle of the
/// private object the caller signs with, if it holds one; otherwise the
/// first private object found is read. No private or no public object is
/// [`TokenError::KeyNotFound`].
pub(super) fn read_key_pair(
    session: &Session,
    id: &[u8],
    private: Option<ObjectHandle>,
) -> Result<KeyPairObjects, TokenError> {
    let find = |class| {
        ck(session.find_objects(&[
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
            Attribute::Class(class),
        ]))
    };
    let privs = find(ObjectClass::PRIVATE_KEY)?;
    let pubs = find(ObjectClass::PUBLIC_KEY)?;
    // A public object alone proves nothing (some tokens let any session
    // create one): both halves must be there.
    let not_found = || TokenError::KeyNotFound {
        id: hex::encode(id),
    };
    let private_handle = private.or(privs.first().copied()).ok_or_else(not_found)?;
    let public_handle = pubs.first().copied().ok_or_else(not_found)?;
    let mut objects = private_part(ck(
        session.get_attributes(private_handle, &PRIVATE_ATTRIBUTES)
    )?);
    let (public_kind, public_key) = public_part(ck(
        session.get_attributes(public_handle, &PUBLIC_ATTRIBUTES)
    )?);
    objects.private_objects = privs.len();
    objects.public_objects = pubs.len();
    objects.public_kind = public_kind;
    objects.public_key = public_key;
    Ok(objects)
}

/// The private object's part of [`KeyPairObjects`].
fn private_part(attrs: Vec<Attribute>) -> KeyPairObjects {
    let mut a = PrivateKeyAttributes::default();
    let mut shape = Shape::default();
    for attr in attrs {
        match attr {
            Attribute::Token(v) => a.token = Some(v),
            Attribute::Private(v) => a.private = Some(v),
            Attribute::Sensitive(v) => a.sensitive = Some(v),
            Attribute::AlwaysSensitive(v) => a.always_sensitive = Some(v),
            Attribute::Extractable(v) => a.extractable = Some(v),
            Attribute::NeverExtractable(v) => a.never_extractable = Some(v),
            Attribute::Local(v) => a.local = Some(v),
            Attribute::Sign(v) => a.sign = Some(v),
            Attribute::SignRecover(v) => a.sign_recover = Some(v),
            Attribute::Decrypt(v) => a.decrypt = Some(v),
            Attribute::Unwrap(v) => a.unwrap = Some(v),
            Attribute::Derive(v) => a.derive = Some(v),
            Attribute::Modifiable(v) => a.modifiable = Some(v),
            other => shape.take(other),
        }
    }
    KeyPairObjects {
        private_objects: 0,
        public_objects: 0,
        private: a,
        private_kind: shape.kind(),
        private_modulus: shape.modulus,
        public_kind: ObjectKind::Other("not read".into()),
        public_key: None,
    }
}

/// The public object's kind and key.
fn public_part(attrs: Vec<Attribute>) -> (ObjectKind, Option<PublicKey>) {
    let mut shape = Shape::default();
    for attr in attrs {
        shape.take(attr);
    }
    let kind = shape.kind();
    let key = match (&kind, shape) {
        (
            ObjectKind::Known(KeySpec::Rsa { .. }),
            Shape {
                modulus: Some(modulus),
                exponent: Some(exponent),
                ..
            },
        ) => Some(PublicKey::Rsa { modulus, exponent }),
        (
            ObjectKind::Known(spec @ (KeySpec::EcP256 | KeySpec::EcP384)),
            Shape {
                point: Some(raw), ..
            },
        ) => parse_ec_point(&raw, *spec)
            .ok()
            .map(|point| PublicKey::Ec { point }),
        (
            ObjectKind::Known(KeySpec::Ed25519),
            Shape {
                point: Some(raw), ..
            },
        ) => parse_ec_point(&raw, KeySpec::Ed25519)
            .ok()
            .map(|point| PublicKey::Ed25519 { point }),
        _ => None,
    };
    (kind, key)
}

/// The attributes that say what kind of key an object is.
#[derive(Default)]
struct Shape {
    key_type: Option<KeyType>,
    params: Option<Vec<u8>>,
    modulus: Option<Vec<u8>>,
    exponent: Option<Vec<u8>>,
    point: Option<Vec<u8>>,
}

impl Shape {
    fn take(&mut self, attr: Attribute) {
        match attr {
            Attribute::KeyType(t) => self.key_type = Some(t),
            Attribute::EcParams(v) => self.params = Some(v),
            Attribute::Modulus(v) => self.modulus = Some(v),
            Attribute::PublicExponent(v) => self.exponent = Some(v),
            Attribute::EcPoint(v) => self.point = Some(v),
            _ => {}
        }
    }

    fn kind(&self) -> ObjectKind {
        let params = self.params.as_deref();
        match self.key_type {
            None => ObjectKind::Other("no CKA_KEY_TYPE".into()),
            Some(KeyType::RSA) => match self.modulus.as_deref().map(modulus_bits) {
                Some(bits) if bits > 0 => ObjectKind::Known(KeySpec::Rsa { bits }),
                _ => ObjectKind::Other("RSA without CKA_MODULUS".into()),
            },
            Some(KeyType::EC) if params == Some(OID_P256) => ObjectKind::Known(KeySpec::EcP256),
            Some(KeyType::EC) if params == Some(OID_P384) => ObjectKind::Known(KeySpec::EcP384),
            Some(KeyType::EC_EDWARDS) if params == Some(OID_ED25519) => {
                ObjectKind::Known(KeySpec::Ed25519)
            }
            Some(KeyType::EC_EDWARDS) if params == Some(NAME_ED25519) => {
                ObjectKind::Known(KeySpec::Ed25519)
            }
            Some(t) => ObjectKind::Other(match params {
                Some(p) => format!("{t} with CKA_EC_PARAMS {}", hex::encode(p)),
                None => format!("{t}"),
            }),
        }
    }
}

/// Significant bits of a big-endian integer.
fn modulus_bits(n: &[u8]) -> u32 {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    let top = u32::from(n[0]);
    (n.len() as u32 - 1) * 8 + (32 - top.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[1]), 1);
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        let mut n = vec![0xC0];
        n.extend([0u8; 255]);
        assert_eq!(modulus_bits(&n), 2048);
    }

    #[test]
    fn kinds_from_attributes() {
        let kind = |attrs: Vec<Attribute>| {
            let mut s = Shape::default();
            for a in attrs {
                s.take(a);
            }
            s.kind()
        };
        assert_eq!(
            kind(vec![
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(OID_P256.to_vec())
            ]),
            ObjectKind::Known(KeySpec::EcP256)
        );
        assert_eq!(
            kind(vec![
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::EcParams(NAME_ED25519.to_vec())
            ]),
            ObjectKind::Known(KeySpec::Ed25519)
        );
        let mut n = vec![0x80];
        n.extend([0u8; 383]);
        assert_eq!(
            kind(vec![
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(n)
            ]),
            ObjectKind::Known(KeySpec::Rsa { bits: 3072 })
        );
        // An EC key on a curve dnsseal does not make.
        let other = kind(vec![
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(OID_ED25519.to_vec()),
        ]);
        assert!(matches!(other, ObjectKind::Other(_)), "{other:?}");
        assert_eq!(kind(vec![]), ObjectKind::Other("no CKA_KEY_TYPE".into()));
    }
}
