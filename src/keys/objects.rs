//! Whether a key's token objects are what the keystore records: the
//! decision behind `keys reconcile` and the check of every key `sign`
//! publishes or signs with, as pure functions of a record and what the
//! token reported ([`KeyPairObjects`], read by [`crate::token`]).
//!
//! A CKA_ID and a public key are not enough to trust a private key object:
//! anyone with the PIN can delete a key and put one made elsewhere (whose
//! private value sits in a file) under the same CKA_ID, or widen what a
//! modifiable key may do. So the private object must also carry the
//! protection its recorded [`Origin`] promises:
//!
//! | attribute              | generated | imported |
//! |------------------------|-----------|----------|
//! | CKA_TOKEN, CKA_PRIVATE | true      | true     |
//! | CKA_SENSITIVE          | true      | true     |
//! | CKA_EXTRACTABLE        | false     | false    |
//! | CKA_ALWAYS_SENSITIVE   | true      | not checked (false when created from a value) |
//! | CKA_NEVER_EXTRACTABLE  | true      | not checked (likewise) |
//! | CKA_LOCAL              | true      | not checked (false: not made in the token) |
//! | CKA_SIGN               | true      | true     |
//! | CKA_SIGN_RECOVER, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE | not true | not true |
//!
//! An attribute the token does not report (CKR_ATTRIBUTE_TYPE_INVALID, or
//! unavailable) counts against the key where it must prove a protection
//! (every attribute that must be true, and CKA_EXTRACTABLE): a token that
//! cannot say a key is safe does not get the benefit of the doubt. A
//! usage attribute that must not be true and is not reported means the
//! object has no such usage, and is fine.
//!
//! Both objects must also be of the recorded kind (key type, curve, RSA
//! modulus size), the private and public RSA objects must hold the same
//! modulus, and exactly one private and one public token object may carry
//! the CKA_ID. CKA_MODIFIABLE is not checked: keys made before dnsseal set
//! it false are modifiable, and what a change could widen is checked here
//! on every run.

use crate::keystore::{KeyRecord, Origin};
use crate::token::{KeyPairObjects, KeySpec, ObjectKind, PrivateKeyAttributes, PublicKey};

use super::spec::{dnskey_public_key, record_spec};

/// What the check of one key found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The token's public key is not the record's (or cannot be read).
    pub other_public_key: bool,
    /// Everything else that is wrong, each naming the attribute or object.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether the token holds the recorded key, as recorded.
    pub fn in_order(&self) -> bool {
        !self.other_public_key && self.problems.is_empty()
    }
}

/// Checks what the token holds under a record's CKA_ID against the record.
pub fn judge(rec: &KeyRecord, held: &KeyPairObjects) -> Verdict {
    let (alg, spec) = record_spec(rec);
    let public = held
        .public_key
        .as_ref()
        .and_then(|pk| dnskey_public_key(alg, pk).ok());
    Verdict {
        other_public_key: public.is_none_or(|pk| pk != rec.public_key),
        problems: problems(spec, rec.origin, held),
    }
}

/// What is wrong with the objects of a key of kind `expected` whose
/// keystore record says it was made as `origin` (empty: nothing).
pub fn problems(expected: KeySpec, origin: Origin, held: &KeyPairObjects) -> Vec<String> {
    let mut out = Vec::new();
    for (n, what) in [
        (held.private_objects, "private"),
        (held.public_objects, "public"),
    ] {
        if n != 1 {
            out.push(format!(
                "{n} {what} key objects carry this CKA_ID (one is expected)"
            ));
        }
    }
    for (kind, what) in [
        (&held.private_kind, "private"),
        (&held.public_kind, "public"),
    ] {
        if *kind != ObjectKind::Known(expected) {
            out.push(format!(
                "the {what} key object is {kind}, the record says {expected}"
            ));
        }
    }
    if let (Some(private), Some(PublicKey::Rsa { modulus, .. })) =
        (&held.private_modulus, &held.public_key)
    {
        if unsigned(private) != unsigned(modulus) {
            out.push("the private and public key objects hold different RSA moduli".into());
        }
    }
    for rule in RULES {
        if rule.generated_only && origin != Origin::Generated {
            continue;
        }
        if let Some(p) = rule.problem((rule.get)(&held.private)) {
            out.push(p);
        }
    }
    out
}

/// What a private key attribute must be.
#[derive(Debug, Clone, Copy)]
enum Want {
    True,
    False,
    /// False or not reported (a usage the object must not have).
    NotTrue,
}

/// One attribute's rule.
struct Rule {
    name: &'static str,
    get: fn(&PrivateKeyAttributes) -> Option<bool>,
    want: Want,
    /// Only for keys recorded as generated in the token.
    generated_only: bool,
    why: &'static str,
}

const SIGN_ONLY: &str = "the key may only sign";
const AS_GENERATED: &str = "the keystore records the key as generated in the token";

const RULES: &[Rule] = &[
    Rule {
        name: "CKA_TOKEN",
        get: |a| a.token,
        want: Want::True,
        generated_only: false,
        why: "the key lives on the token",
    },
    Rule {
        name: "CKA_PRIVATE",
        get: |a| a.private,
        want: Want::True,
        generated_only: false,
        why: "the key is usable only after login",
    },
    Rule {
        name: "CKA_SENSITIVE",
        get: |a| a.sensitive,
        want: Want::True,
        generated_only: false,
        why: "the private value is never readable",
    },
    Rule {
        name: "CKA_EXTRACTABLE",
        get: |a| a.extractable,
        want: Want::False,
        generated_only: false,
        why: "the private key never leaves the token",
    },
    Rule {
        name: "CKA_ALWAYS_SENSITIVE",
        get: |a| a.always_sensitive,
        want: Want::True,
        generated_only: true,
        why: AS_GENERATED,
    },
    Rule {
        name: "CKA_NEVER_EXTRACTABLE",
        get: |a| a.never_extractable,
        want: Want::True,
        generated_only: true,
        why: AS_GENERATED,
    },
    Rule {
        name: "CKA_LOCAL",
        get: |a| a.local,
        want: Want::True,
        generated_only: true,
        why: AS_GENERATED,
    },
    Rule {
        name: "CKA_SIGN",
        get: |a| a.sign,
        want: Want::True,
        generated_only: false,
        why: "the key signs",
    },
    Rule {
        name: "CKA_SIGN_RECOVER",
        get: |a| a.sign_recover,
        want: Want::NotTrue,
        generated_only: false,
        why: SIGN_ONLY,
    },
    Rule {
        name: "CKA_DECRYPT",
        get: |a| a.decrypt,
        want: Want::NotTrue,
        generated_only: false,
        why: SIGN_ONLY,
    },
    Rule {
        name: "CKA_UNWRAP",
        get: |a| a.unwrap,
        want: Want::NotTrue,
        generated_only: false,
        why: SIGN_ONLY,
    },
    Rule {
        name: "CKA_DERIVE",
        get: |a| a.derive,
        want: Want::NotTrue,
        generated_only: false,
        why: SIGN_ONLY,
    },
];

impl Rule {
    /// The problem with `value` (as reported, `None`: not reported), if any.
    fn problem(&self, value: Option<bool>) -> Option<String> {
        let (name, why) = (self.name, self.why);
        match (self.want, value) {
            (Want::True, Some(true)) | (Want::False, Some(false)) => None,
            (Want::NotTrue, Some(false) | None) => None,
            (Want::True, Some(false)) => Some(format!("{name} is false (must be true: {why})")),
            (Want::False | Want::NotTrue, Some(true)) => {
                Some(format!("{name} is true (must be false: {why})"))
            }
            (Want::True, None) => Some(format!(
                "the token does not report {name} (must be true: {why})"
            )),
            (Want::False, None) => Some(format!(
                "the token does not report {name} (must be false: {why})"
            )),
        }
    }
}

/// A big-endian integer without leading zero octets.
fn unsigned(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testing::record;
    use crate::keystore::KeyState;

    /// What SoftHSMv2 reports for a P-256 pair dnsseal generated.
    fn generated() -> KeyPairObjects {
        KeyPairObjects {
            private_objects: 1,
            public_objects: 1,
            private: PrivateKeyAttributes {
                token: Some(true),
                private: Some(true),
                sensitive: Some(true),
                always_sensitive: Some(true),
                extractable: Some(false),
                never_extractable: Some(true),
                local: Some(true),
                sign: Some(true),
                sign_recover: Some(false),
                decrypt: Some(false),
                unwrap: Some(false),
                derive: Some(false),
                modifiable: Some(false),
            },
            private_kind: ObjectKind::Known(KeySpec::EcP256),
            private_modulus: None,
            public_kind: ObjectKind::Known(KeySpec::EcP256),
            public_key: Some(PublicKey::Ec { point: vec![1; 64] }),
        }
    }

    /// What SoftHSMv2 reports for a pair dnsseal imported.
    fn imported() -> KeyPairObjects {
        let mut held = generated();
        held.private.local = Some(false);
        held.private.always_sensitive = Some(false);
        held.private.never_extractable = Some(false);
        held
    }

    fn check(origin: Origin, held: &KeyPairObjects) -> Vec<String> {
        problems(KeySpec::EcP256, origin, held)
    }

    #[test]
    fn keys_as_dnsseal_makes_them_are_in_order() {
        assert!(check(Origin::Generated, &generated()).is_empty());
        assert!(check(Origin::Imported, &imported()).is_empty());
        // A generated key is fine as an imported one, too.
        assert!(check(Origin::Imported, &generated()).is_empty());
        // Usage attributes a token does not have for the key type.
        let mut held = generated();
        held.private.derive = None;
        held.private.decrypt = None;
        held.private.unwrap = None;
        held.private.sign_recover = None;
        assert!(check(Origin::Generated, &held).is_empty());
        // Modifiable keys (made before dnsseal set it false) are accepted.
        held.private.modifiable = Some(true);
        assert!(check(Origin::Generated, &held).is_empty());
    }

    #[test]
    fn a_key_made_outside_the_token_is_not_a_generated_key() {
        let p = check(Origin::Generated, &imported());
        assert_eq!(
            p,
            [
                "CKA_ALWAYS_SENSITIVE is false (must be true: the keystore records the key as generated in the token)",
                "CKA_NEVER_EXTRACTABLE is false (must be true: the keystore records the key as generated in the token)",
                "CKA_LOCAL is false (must be true: the keystore records the key as generated in the token)",
            ]
        );
    }

    #[test]
    fn an_extractable_readable_key_is_refused_whatever_its_origin() {
        let mut held = imported();
        held.private.extractable = Some(true);
        held.private.sensitive = Some(false);
        for origin in [Origin::Generated, Origin::Imported] {
            let p = check(origin, &held);
            assert!(
                p.contains(
                    &"CKA_SENSITIVE is false (must be true: the private value is never readable)"
                        .to_string()
                ),
                "{p:?}"
            );
            assert!(
                p.contains(&"CKA_EXTRACTABLE is true (must be false: the private key never leaves the token)".to_string()),
                "{p:?}"
            );
        }
        assert_eq!(check(Origin::Imported, &held).len(), 2);
    }

    #[test]
    fn widened_usage_is_refused() {
        let mut held = generated();
        held.private.decrypt = Some(true);
        held.private.unwrap = Some(true);
        held.private.derive = Some(true);
        held.private.sign_recover = Some(true);
        let p = check(Origin::Generated, &held);
        assert_eq!(
            p,
            [
                "CKA_SIGN_RECOVER is true (must be false: the key may only sign)",
                "CKA_DECRYPT is true (must be false: the key may only sign)",
                "CKA_UNWRAP is true (must be false: the key may only sign)",
                "CKA_DERIVE is true (must be false: the key may only sign)",
            ]
        );
        let mut held = generated();
        held.private.sign = Some(false);
        assert_eq!(
            check(Origin::Generated, &held),
            ["CKA_SIGN is false (must be true: the key signs)"]
        );
    }

    #[test]
    fn protections_a_token_does_not_report_count_against_the_key() {
        let mut held = generated();
        held.private.extractable = None;
        held.private.local = None;
        held.private.sensitive = None;
        assert_eq!(
            check(Origin::Generated, &held),
            [
                "the token does not report CKA_SENSITIVE (must be true: the private value is never readable)",
                "the token does not report CKA_EXTRACTABLE (must be false: the private key never leaves the token)",
                "the token does not report CKA_LOCAL (must be true: the keystore records the key as generated in the token)",
            ]
        );
        // CKA_LOCAL is not asked of an imported key.
        assert_eq!(check(Origin::Imported, &held).len(), 2);
    }

    #[test]
    fn objects_of_another_kind_or_more_than_one_are_refused() {
        let mut held = generated();
        held.private_kind = ObjectKind::Known(KeySpec::EcP384);
        held.public_kind = ObjectKind::Other("CKK_EC with CKA_EC_PARAMS 0603".into());
        held.private_objects = 2;
        assert_eq!(
            check(Origin::Generated, &held),
            [
                "2 private key objects carry this CKA_ID (one is expected)",
                "the private key object is ECDSA P-384, the record says ECDSA P-256",
                "the public key object is CKK_EC with CKA_EC_PARAMS 0603, the record says ECDSA P-256",
            ]
        );
    }

    #[test]
    fn rsa_halves_must_hold_the_same_modulus() {
        let spec = KeySpec::Rsa { bits: 2048 };
        let mut n = vec![0xC0];
        n.extend([7u8; 255]);
        let mut held = generated();
        held.private_kind = ObjectKind::Known(spec);
        held.public_kind = ObjectKind::Known(spec);
        held.public_key = Some(PublicKey::Rsa {
            modulus: n.clone(),
            exponent: vec![1, 0, 1],
        });
        let mut with_zero = vec![0];
        with_zero.extend(&n);
        held.private_modulus = Some(with_zero);
        assert!(problems(spec, Origin::Generated, &held).is_empty());
        let mut other = n.clone();
        other[100] ^= 1;
        held.private_modulus = Some(other);
        assert_eq!(
            problems(spec, Origin::Generated, &held),
            ["the private and public key objects hold different RSA moduli"]
        );
    }

    #[test]
    fn judge_compares_the_public_key_with_the_record() {
        let mut rec = record(1, 10, "S", KeyState::Active);
        rec.public_key = vec![1; 64];
        let v = judge(&rec, &generated());
        assert!(v.in_order(), "{v:?}");
        rec.public_key = vec![2; 64];
        let v = judge(&rec, &generated());
        assert!(v.other_public_key && v.problems.is_empty());
        let mut unreadable = generated();
        unreadable.public_key = None;
        rec.public_key = vec![1; 64];
        assert!(judge(&rec, &unreadable).other_public_key);
        rec.origin = Origin::Generated;
        let v = judge(&rec, &imported());
        assert_eq!((v.other_public_key, v.problems.len()), (false, 3));
    }
}
