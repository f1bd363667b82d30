//! Key objects put under a recorded CKA_ID behind dnsseal's back: a key
//! made outside the token, and a key whose usage was widened. The
//! keystore is edited to match each planted public key, so that only the
//! private object's attributes give the key away; `keys reconcile` must
//! report it and `sign` must refuse it (exit 12), naming the key.
//!
//! These tests load SoftHSMv2 in this process and lean on what it does with
//! copies and attribute changes: they keep a SoftHSMv2 token whatever
//! DNSSEAL_TEST_TOKEN says.

mod common;

use std::sync::Mutex;

use common::{field, Project, PIN, SOFTHSM_MODULE};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use dnsseal::zone::dnskey::rsa_public_key;
use dnsseal::zone::{Algorithm, Dnskey};

const ZONE: &str = include_str!("zones/example.zone");

/// SOFTHSM2_CONF is process-wide and SoftHSMv2 reads it at C_Initialize:
/// one test at a time loads the module in this process.
static MODULE: Mutex<()> = Mutex::new(());

/// Runs `body` in a logged-in read-write session on the project's token,
/// through PKCS#11 in this process (not through dnsseal).
fn with_token<T>(p: &Project, body: impl FnOnce(&Session) -> T) -> T {
    let _one = MODULE.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("SOFTHSM2_CONF", p.softhsm_conf());
    let ctx = Pkcs11::new(SOFTHSM_MODULE).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim() == "dnsseal")
        .expect("the project's token");
    let out = {
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::from(PIN.to_string())))
            .unwrap();
        body(&session)
    };
    ctx.finalize().unwrap();
    out
}

/// A project with keys for `example.` of `alg`, signed once as it should be.
fn signed_project(alg: &str) -> Project {
    common::require("pkcs11-tool", "opensc");
    let p = Project::softhsm();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", alg);
    p.run(&["keys", "reconcile"]).ok();
    p.run(&[
        "sign",
        "example.zone",
        "-o",
        "example",
        "-f",
        "before.signed",
    ])
    .ok();
    p
}

/// The active key of `role`: its CKA_ID (hex) and DNSKEY flags.
fn active(p: &Project, role: &str) -> (String, u16) {
    let k = p
        .keys()
        .into_iter()
        .find(|k| field(k, "role") == role && field(k, "state") == "active")
        .unwrap_or_else(|| panic!("an active {role}"));
    (
        field(&k, "cka_id").as_str().unwrap().to_string(),
        field(&k, "flags").as_u64().unwrap() as u16,
    )
}

/// Deletes both objects under `id` with pkcs11-tool.
fn delete_objects(p: &Project, id: &str) {
    for t in ["privkey", "pubkey"] {
        let d = p.pkcs11_tool(&["--delete-object", "--type", t, "--id", id]);
        assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    }
}

/// Points the keystore record with CKA_ID `id` at another public key (and
/// its key tag), as someone who can write the keystore would; returns the
/// new key tag.
fn rewrite_record(p: &Project, id: &str, alg: Algorithm, flags: u16, public_key: Vec<u8>) -> u16 {
    let tag = Dnskey::new(alg, flags & 1 == 1, public_key.clone()).key_tag();
    let db = rusqlite::Connection::open(p.file("keystore.sqlite")).unwrap();
    let n = db
        .execute(
            "UPDATE keys SET public_key = ?1, key_tag = ?2 WHERE cka_id = ?3",
            rusqlite::params![public_key, tag, hex::decode(id).unwrap()],
        )
        .unwrap();
    assert_eq!(n, 1, "one record with CKA_ID {id}");
    tag
}

/// `keys reconcile` reports the key as unsafe (exit 12), naming zone, tag,
/// CKA_ID and `attribute`; `--json` lists it under `unsafe_objects`.
fn reconcile_reports(p: &Project, tag: u16, id: &str, attribute: &str) {
    let r = p.run(&["keys", "reconcile"]);
    assert_eq!(r.code, 12, "{}{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("UNSAFE "))
        .unwrap_or_else(|| panic!("no UNSAFE line:\n{}", r.stdout));
    assert!(
        line.contains(&format!("example. tag {tag} (active) CKA_ID {id}: "))
            && line.contains(attribute),
        "{line}"
    );
    let r = p.run(&["--json", "keys", "reconcile"]);
    assert_eq!(r.code, 12);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let found = &v["unsafe_objects"][0];
    assert_eq!(found["cka_id"], id, "{v}");
    assert_eq!(found["key_tag"], tag, "{v}");
    assert!(
        found["problem"].as_str().unwrap().contains(attribute),
        "{v}"
    );
}

/// `sign` refuses the key (exit 12), naming it and `attribute`, and
/// writes no signed zone.
fn sign_refuses(p: &Project, tag: u16, id: &str, attribute: &str) {
    let err = p
        .run(&[
            "sign",
            "example.zone",
            "-o",
            "example",
            "-f",
            "after.signed",
        ])
        .fails(12);
    assert!(
        err.contains(&format!("key {tag} of example. (CKA_ID {id}): "))
            && err.contains(attribute)
            && err.contains("does not publish or sign with this key"),
        "{err}"
    );
    assert!(
        !p.file("after.signed").exists(),
        "a signed zone was written"
    );
}

/// Replaces the objects under `id` (hex) by an RSA-2048 pair generated in
/// the token, sign-only but modifiable, and points the keystore record at
/// it; returns its key tag.
fn plant_modifiable_rsa(p: &Project, id: &str, flags: u16) -> u16 {
    delete_objects(p, id);
    let raw_id = hex::decode(id).unwrap();
    let (modulus, exponent) = with_token(p, |s| {
        let (public, _private) = s
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::ModulusBits(2048u64.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Id(raw_id.clone()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Modifiable(true),
                    Attribute::Sign(true),
                    Attribute::SignRecover(false),
                    Attribute::Decrypt(false),
                    Attribute::Unwrap(false),
                    Attribute::Id(raw_id.clone()),
                ],
            )
            .unwrap();
        let attrs = s
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .unwrap();
        match attrs.as_slice() {
            [Attribute::Modulus(n), Attribute::PublicExponent(e)] => (n.clone(), e.clone()),
            other => panic!("{other:?}"),
        }
    });
    let dnskey = rsa_public_key(&exponent, &modulus).unwrap();
    rewrite_record(p, id, Algorithm::RsaSha256, flags, dnskey)
}

/// Has the project use the softhsm2 profile with session copies.
fn use_copies_profile(p: &Project) {
    let profile = include_str!("../hsm-profiles/softhsm2.toml")
        .replace("session_key_copies = false", "session_key_copies = true");
    assert!(profile.contains("session_key_copies = true"));
    std::fs::write(p.file("copies.toml"), profile).unwrap();
    let config = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();
    assert!(config.contains("profile = \"softhsm2\""), "{config}");
    std::fs::write(
        p.file("dnsseal.toml"),
        config.replace("profile = \"softhsm2\"", "profile = \"copies.toml\""),
    )
    .unwrap();
}

/// The active KSK's objects are replaced by an extractable P-256 key made
/// with openssl (its private value sits in a PEM file) under the same
/// CKA_ID, and the keystore is given its public key and tag: the public
/// keys agree, but the private object is extractable and was not made in
/// the token.
#[test]
fn a_key_made_outside_the_token_under_a_recorded_cka_id_is_refused() {
    common::require("openssl", "openssl");
    let p = signed_project("ECDSAP256SHA256");
    let (id, flags) = active(&p, "ksk");
    delete_objects(&p, &id);

    let pem = p.file("planted.pem");
    let openssl = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        pem.to_str().unwrap(),
    ]);
    let (der, pubder) = (p.file("planted.der"), p.file("planted.pub.der"));
    openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        pubder.to_str().unwrap(),
    ]);
    for (file, kind, extra) in [
        (&der, "privkey", &["--extractable", "--usage-sign"][..]),
        (&pubder, "pubkey", &["--usage-sign"][..]),
    ] {
        let mut args = vec![
            "--write-object",
            file.to_str().unwrap(),
            "--type",
            kind,
            "--id",
            &id,
            "--label",
            "planted",
        ];
        args.extend_from_slice(extra);
        let w = p.pkcs11_tool(&args);
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    }
    // The SubjectPublicKeyInfo of a P-256 key ends with 04 || X || Y.
    let spki = std::fs::read(&pubder).unwrap();
    let point = spki[spki.len() - 64..].to_vec();
    let tag = rewrite_record(&p, &id, Algorithm::EcdsaP256Sha256, flags, point);
    assert_eq!(
        field(
            &p.keys()
                .into_iter()
                .find(|k| field(k, "cka_id") == id.as_str())
                .unwrap(),
            "origin"
        ),
        "generated"
    );

    reconcile_reports(&p, tag, &id, "CKA_EXTRACTABLE is true");
    reconcile_reports(&p, tag, &id, "CKA_LOCAL is false");
    sign_refuses(&p, tag, &id, "CKA_EXTRACTABLE is true");
}

/// Keys dnsseal makes cannot have their usage widened: the token refuses.
/// A key that can (generated in the token, sign-only, but modifiable, as
/// another tool would make it) is accepted, and signs through session
/// copies where the profile asks for them, until its usage is widened to
/// decryption: then it is reported, and refused before any copy is made.
#[test]
fn a_key_whose_usage_was_widened_is_refused() {
    let p = signed_project("RSASHA256");
    let (id, flags) = active(&p, "zsk");
    let raw_id = hex::decode(&id).unwrap();

    // dnsseal's own key: the token refuses the change.
    let refused = with_token(&p, |s| {
        let h = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(raw_id.clone()),
            ])
            .unwrap()[0];
        s.update_attributes(h, &[Attribute::Decrypt(true)])
    });
    assert!(
        matches!(
            refused,
            Err(CkError::Pkcs11(
                RvError::ActionProhibited | RvError::AttributeReadOnly,
                _
            ))
        ),
        "{refused:?}"
    );
    p.run(&["keys", "reconcile"]).ok();

    // Modifiable keys under the same CKA_IDs, otherwise as dnsseal makes
    // them (the KSK too, so that every signing key can be copied).
    let tag = plant_modifiable_rsa(&p, &id, flags);
    let (ksk, ksk_flags) = active(&p, "ksk");
    plant_modifiable_rsa(&p, &ksk, ksk_flags);
    p.run(&["keys", "reconcile"]).ok();
    // A token that can copy the keys gives each signing session its own
    // session copy, where the profile asks for copies.
    use_copies_profile(&p);
    let out = p
        .run(&[
            "--json",
            "sign",
            "example.zone",
            "-o",
            "example",
            "-f",
            "modifiable.signed",
        ])
        .ok();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["key_objects"], "session-copies", "{report}");

    // Its usage widened: the token accepts the change, dnsseal does not.
    with_token(&p, |s| {
        let h = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(raw_id.clone()),
            ])
            .unwrap()[0];
        s.update_attributes(h, &[Attribute::Decrypt(true)]).unwrap();
    });
    reconcile_reports(
        &p,
        tag,
        &id,
        "CKA_DECRYPT is true (must be false: the key may only sign)",
    );
    sign_refuses(&p, tag, &id, "CKA_DECRYPT is true");
}
