//! `dnsseal keys` against a real SoftHSMv2 token (or Kryoptic, with
//! DNSSEAL_TEST_TOKEN=kryoptic).

mod common;

use common::{ed25519_or, field, Project, TokenKind, PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

/// Reads every private key object of the project's token straight through
/// PKCS#11 (not through dnsseal) and checks the invariant-1 attributes,
/// and that neither half of a pair can be modified: the token refuses to
/// widen a key's usage. This is the only test in this binary that loads
/// the module in-process.
#[test]
fn private_keys_are_born_sensitive_and_can_only_sign() {
    let p = Project::new();
    let algorithms = p.token.algorithms();
    for (i, alg) in algorithms.iter().enumerate() {
        p.create_key(&format!("z{i}.example"), "both", alg);
    }
    let records = p.keys();
    let pairs = 3 * algorithms.len();
    assert_eq!(records.len(), pairs);

    std::env::set_var(p.token.conf_var(), p.token_conf());
    let ctx = Pkcs11::new(p.token.module()).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim() == "dnsseal")
        .expect("the project's token");
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(PIN.to_string())))
        .unwrap();
    let privs = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert_eq!(privs.len(), pairs, "one private object per key record");
    let mut kinds = std::collections::BTreeMap::new();
    for h in privs {
        let attrs = session
            .get_attributes(
                h,
                &[
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Sign,
                    AttributeType::SignRecover,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    AttributeType::Local,
                    AttributeType::Modifiable,
                    AttributeType::Copyable,
                    AttributeType::Destroyable,
                    AttributeType::KeyType,
                    AttributeType::Id,
                ],
            )
            .unwrap();
        let mut id = Vec::new();
        for a in &attrs {
            match a {
                Attribute::Token(v)
                | Attribute::Private(v)
                | Attribute::Sensitive(v)
                | Attribute::AlwaysSensitive(v)
                | Attribute::NeverExtractable(v)
                | Attribute::Sign(v)
                | Attribute::Local(v)
                | Attribute::Destroyable(v) => {
                    assert!(*v, "{a:?} must be true")
                }
                Attribute::Extractable(v)
                | Attribute::SignRecover(v)
                | Attribute::Decrypt(v)
                | Attribute::Unwrap(v)
                | Attribute::Derive(v)
                | Attribute::Modifiable(v) => {
                    assert!(!*v, "{a:?} must be false")
                }
                // Copyable only where the profile signs with session
                // copies: kryoptic does, softhsm2 does not.
                Attribute::Copyable(v) => {
                    assert_eq!(*v, p.token == TokenKind::Kryoptic, "{a:?}")
                }
                Attribute::KeyType(t) => {
                    *kinds.entry(format!("{t}")).or_insert(0) += 1;
                }
                Attribute::Id(v) => id = v.clone(),
                other => panic!("unexpected attribute {other:?}"),
            }
        }
        assert_eq!(attrs.len(), 17, "every attribute readable: {attrs:?}");
        // Nobody, not even with the PIN, can widen what the key may do.
        for widened in [
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
            Attribute::Derive(true),
        ] {
            let refused = session.update_attributes(h, std::slice::from_ref(&widened));
            assert!(
                matches!(
                    refused,
                    Err(cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::ActionProhibited
                            | cryptoki::error::RvError::AttributeReadOnly,
                        _
                    ))
                ),
                "{widened:?}: {refused:?}"
            );
        }
        let hex_id = hex::encode(&id);
        assert!(
            records
                .iter()
                .any(|r| field(r, "cka_id") == hex_id.as_str()),
            "token object {hex_id} has no keystore record"
        );
        assert_eq!(id.len(), 16, "CKA_ID of 16 random octets");
    }
    assert_eq!(kinds.get(&format!("{}", KeyType::RSA)), Some(&6));
    assert_eq!(kinds.get(&format!("{}", KeyType::EC)), Some(&6));
    let edwards = p.token.has("ED25519").then_some(&3);
    assert_eq!(kinds.get(&format!("{}", KeyType::EC_EDWARDS)), edwards);

    // The public halves cannot be modified either.
    let pubs = session
        .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])
        .unwrap();
    assert_eq!(pubs.len(), pairs);
    for h in pubs {
        let attrs = session
            .get_attributes(h, &[AttributeType::Modifiable])
            .unwrap();
        assert_eq!(attrs, [Attribute::Modifiable(false)]);
        assert!(session
            .update_attributes(h, &[Attribute::Encrypt(true)])
            .is_err());
    }
    // Every key is still destroyable by dnsseal.
    let zone = field(&records[0], "zone").as_str().unwrap().to_string();
    let tag = field(&records[0], "key_tag").to_string();
    drop(session);
    ctx.finalize().unwrap();
    p.run(&[
        "keys",
        "delete",
        &zone,
        "--tag",
        &tag,
        "--destroy",
        "--yes",
        "--force",
    ])
    .ok();
    assert_eq!(p.token_private_ids().len(), pairs - 1);
}

#[test]
fn role_both_gives_an_active_ksk_an_active_zsk_and_a_standby() {
    let p = Project::new();
    p.create_key("Example.COM", "both", "13");
    let keys = p.keys();
    let mut summary: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            (
                field(k, "role").as_str().unwrap().to_string(),
                field(k, "state").as_str().unwrap().to_string(),
            )
        })
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [("ksk", "active"), ("zsk", "active"), ("zsk", "published")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for k in &keys {
        assert_eq!(
            field(k, "zone"),
            "example.com.",
            "zone names are stored canonical"
        );
        let flags = field(k, "flags").as_u64().unwrap();
        let role = field(k, "role").as_str().unwrap();
        assert_eq!(flags, if role == "ksk" { 257 } else { 256 });
        assert_eq!(field(k, "origin"), "generated");
    }
    // One more ZSK is a standby: the zone already has an active one.
    p.create_key("example.com.", "zsk", "ECDSAP256SHA256");
    let standby = p
        .keys()
        .into_iter()
        .filter(|k| field(k, "state") == "published")
        .count();
    assert_eq!(standby, 2);
    // A CSK in a fresh zone is active and carries the SEP flag.
    p.create_key("csk.example", "csk", ed25519_or("ECDSAP384SHA384"));
    let csk = p
        .keys()
        .into_iter()
        .find(|k| field(k, "zone") == "csk.example.")
        .unwrap();
    assert_eq!(field(&csk, "state"), "active");
    assert_eq!(field(&csk, "flags"), 257);
    // Key tags within a zone are distinct.
    let mut tags: Vec<u64> = p
        .keys()
        .iter()
        .filter(|k| field(k, "zone") == "example.com.")
        .map(|k| field(k, "key_tag").as_u64().unwrap())
        .collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 4);
}

#[test]
fn dnskey_and_ds_output_name_what_they_print() {
    let p = Project::new();
    p.create_key("example.net", "both", "ECDSAP384SHA384");
    let dnskey = p.run(&["keys", "dnskey", "EXAMPLE.net"]).ok();
    let lines: Vec<&str> = dnskey.lines().collect();
    assert_eq!(lines.len(), 3, "{dnskey}");
    assert!(lines
        .iter()
        .all(|l| l.starts_with("example.net. 3600 IN DNSKEY ")));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("; KSK ECDSAP384SHA384 key tag"))
            .count(),
        1
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("; ZSK ECDSAP384SHA384 key tag"))
            .count(),
        2
    );
    let ds = p
        .run(&["keys", "ds", "example.net", "--digest", "sha256,sha384"])
        .ok();
    let ds_lines: Vec<&str> = ds.lines().collect();
    assert_eq!(ds_lines.len(), 2, "DS only for the KSK: {ds}");
    assert!(ds_lines[0].contains(" IN DS ") && ds_lines[0].contains(" 14 2 "));
    assert!(ds_lines[1].contains(" 14 4 "));
    let as_dnskey = p.run(&["keys", "ds", "example.net", "--dnskey"]).ok();
    assert_eq!(as_dnskey.lines().count(), 1);
    assert!(as_dnskey.contains("DNSKEY 257 3 14 "));
    // Unknown zone: a clear error, not empty output.
    let err = p.run(&["keys", "dnskey", "nowhere.example"]).fails(3);
    assert!(err.contains("no published keys"), "{err}");
}

#[test]
fn delete_keeps_the_record_and_destroy_needs_confirmation() {
    let p = Project::new();
    p.create_key("example.org", "both", ed25519_or("ECDSAP256SHA256"));
    let keys = p.keys();
    let tag_of = |role: &str, state: &str| {
        keys.iter()
            .find(|k| field(k, "role") == role && field(k, "state") == state)
            .map(|k| field(k, "key_tag").as_u64().unwrap().to_string())
            .unwrap()
    };
    let active = tag_of("zsk", "active");
    let standby = tag_of("zsk", "published");
    let ids_before = p.token_private_ids();
    assert_eq!(ids_before.len(), 3);

    // An active key is not deleted without --force.
    let err = p
        .run(&["keys", "delete", "example.org", "--tag", &active])
        .fails(10);
    assert!(err.contains("is active"), "{err}");

    // Removing keeps the token objects; restoring brings the key back.
    p.run(&["keys", "delete", "example.org", "--tag", &standby])
        .ok();
    assert_eq!(p.token_private_ids(), ids_before);
    let dnskeys = p.run(&["keys", "dnskey", "example.org"]).ok();
    assert!(
        !dnskeys.contains(&format!("key tag {standby} ")),
        "removed key still published"
    );
    p.run(&["keys", "restore", "example.org", "--tag", &standby])
        .ok();
    assert!(p
        .run(&["keys", "dnskey", "example.org"])
        .ok()
        .contains(&format!("key tag {standby} ")));

    // --destroy without a terminal and without --yes is refused.
    p.run(&[
        "keys",
        "delete",
        "example.org",
        "--tag",
        &standby,
        "--destroy",
    ])
    .fails(10);
    assert_eq!(p.token_private_ids().len(), 3);
    p.run(&[
        "keys",
        "delete",
        "example.org",
        "--tag",
        &standby,
        "--destroy",
        "--yes",
    ])
    .ok();
    assert_eq!(p.token_private_ids().len(), 2, "token object destroyed");
    let rec = p
        .keys()
        .into_iter()
        .find(|k| field(k, "key_tag").as_u64().unwrap().to_string() == standby)
        .unwrap();
    assert_eq!(field(&rec, "state"), "destroyed", "record kept as history");

    // --force deletes an active key, loudly and audited.
    p.run(&["keys", "delete", "example.org", "--tag", &active, "--force"])
        .ok();
    let log = p.audit_lines().join("\n");
    assert!(log.contains("FORCED: removed an active key"), "{log}");
    assert!(log.contains("\"old_state\":\"published\",\"new_state\":\"destroyed\""));
    p.run(&["audit", "verify"]).ok();
}

#[test]
fn reconcile_reports_drift_both_ways_and_changes_nothing_unless_asked() {
    common::require("pkcs11-tool", "opensc");
    let p = Project::new();
    p.create_key("example.com", "both", "13");
    let clean = p.run(&["keys", "reconcile"]).ok();
    assert!(clean.contains("3 records in order"), "{clean}");

    // A key pair made behind dnsseal's back is an orphan.
    let made = p.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "0badc0de",
        "--label",
        "stray",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let r = p.run(&["keys", "reconcile"]);
    assert_eq!(r.code, 12, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("ORPHAN     CKA_ID 0badc0de label 'stray'"),
        "{}",
        r.stdout
    );

    // A recorded key whose objects vanish is missing.
    let victim = p
        .keys()
        .into_iter()
        .find(|k| field(k, "state") == "published")
        .unwrap();
    let id = field(&victim, "cka_id").as_str().unwrap().to_string();
    for t in ["privkey", "pubkey"] {
        let d = p.pkcs11_tool(&["--delete-object", "--type", t, "--id", &id]);
        assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    }
    let before = std::fs::read(p.file("keystore.sqlite")).unwrap();
    let r = p.run(&["keys", "reconcile"]);
    assert_eq!(r.code, 12);
    assert!(
        r.stdout.contains(&format!(
            "MISSING    example.com. tag {}",
            field(&victim, "key_tag")
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read(p.file("keystore.sqlite")).unwrap(),
        before,
        "reconcile changed the keystore"
    );

    // Asked to, it marks the missing key destroyed (and audits it); the
    // orphan is still reported, never adopted or destroyed.
    let r = p.run(&["keys", "reconcile", "--mark-missing"]);
    assert_eq!(r.code, 12, "orphan still there");
    let after = p
        .keys()
        .into_iter()
        .find(|k| field(k, "cka_id") == id.as_str())
        .unwrap();
    assert_eq!(field(&after, "state"), "destroyed");
    assert!(p
        .audit_lines()
        .last()
        .unwrap()
        .contains("reconcile --mark-missing"));
    assert!(p.token_private_ids().contains(&"0badc0de".to_string()));
}

#[test]
fn parallel_processes_keep_keystore_and_audit_consistent() {
    let p = Project::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            p.command()
                .args([
                    "keys",
                    "create",
                    &format!("p{i}.example"),
                    "--role",
                    "both",
                    "--algorithm",
                    "ECDSAP256SHA256",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(p.keys().len(), 12);
    assert_eq!(p.audit_lines().len(), 1 + 12, "init + one record per key");
    p.run(&["audit", "verify"]).ok();
    assert_eq!(p.token_private_ids().len(), 12);
}

#[test]
fn now_sets_key_timings_and_audit_times() {
    let p = Project::new();
    p.run(&[
        "--now",
        "20300102030405",
        "keys",
        "create",
        "example.com",
        "--role",
        "ksk",
        "--algorithm",
        ed25519_or("13"),
    ])
    .ok();
    let k = &p.keys()[0];
    assert_eq!(
        field(&field(k, "timings").clone(), "created"),
        "2030-01-02T03:04:05Z"
    );
    assert_eq!(
        field(&field(k, "timings").clone(), "active"),
        "2030-01-02T03:04:05Z"
    );
    assert!(p
        .audit_lines()
        .last()
        .unwrap()
        .contains("\"time\":\"2030-01-02T03:04:05Z\""));
    p.run(&[
        "--now",
        "2030-02-01T00:00:00+01:00",
        "keys",
        "create",
        "example.com",
        "--role",
        "zsk",
        "--algorithm",
        ed25519_or("13"),
    ])
    .ok();
    let z = p
        .keys()
        .into_iter()
        .find(|k| field(k, "role") == "zsk")
        .unwrap();
    assert_eq!(
        field(&field(&z, "timings").clone(), "created"),
        "2030-01-31T23:00:00Z"
    );
}

/// `token info` reports the five algorithms, each supported or not as the
/// token's mechanism list says (SoftHSMv2 has all five; the Kryoptic build
/// of scripts/kryoptic has no EdDSA).
#[test]
fn token_info_reports_the_five_algorithms() {
    let p = Project::new();
    let out = p.run(&["--json", "token", "info"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(field(&v["token"], "label"), "dnsseal");
    let model = match p.token {
        TokenKind::SoftHsm => "SoftHSM v2",
        TokenKind::Kryoptic => "v1",
    };
    assert_eq!(field(&v["token"], "model"), model);
    let algs = v["algorithms"].as_array().unwrap();
    let numbers: Vec<u64> = algs.iter().map(|a| a["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [8, 10, 13, 14, 15]);
    for a in algs {
        let name = a["mnemonic"].as_str().unwrap_or_default();
        assert_eq!(a["supported"], p.token.has(name), "{name}: {out}");
    }
    let text = p.run(&["token", "info"]).ok();
    assert!(text.contains("ED25519") && text.contains("yes"), "{text}");
    if p.token == TokenKind::Kryoptic {
        // Without KRYOPTIC_CONF (and no ~/.config/kryoptic/token.conf) the
        // module cannot start: exit 5, naming the variable.
        let out = p
            .command()
            .env_remove("KRYOPTIC_CONF")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", p.path())
            .args(["token", "info"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("KRYOPTIC_CONF is not set"), "{err}");
    }
}

/// An algorithm the token's mechanism list lacks is refused before any
/// key is made (exit 9), naming the missing mechanisms; nothing is
/// recorded or audited as made.
#[test]
fn an_algorithm_the_token_lacks_is_refused_with_its_mechanisms() {
    let p = Project::new();
    let Some(lacking) = ["ED25519", "ECDSAP384SHA384", "RSASHA256"]
        .into_iter()
        .find(|a| !p.token.has(a))
    else {
        eprintln!(
            "skipped on {}: the token has every algorithm",
            p.token.name()
        );
        return;
    };
    let err = p
        .run(&[
            "keys",
            "create",
            "example.com",
            "--role",
            "csk",
            "--algorithm",
            lacking,
        ])
        .fails(9);
    assert!(err.contains(lacking) && err.contains("CKM_"), "{err}");
    assert!(p.keys().is_empty());
    assert!(p.token_private_ids().is_empty());
}

/// A token that locks the PIN after too many wrong ones (Kryoptic: 10;
/// SoftHSMv2 never locks, so this test always uses a Kryoptic token):
/// each run of dnsseal with a wrong PIN spends exactly one try (exit 7,
/// saying so), never retrying by itself, so the tenth wrong run is the one
/// that locks (exit 8); then even the right PIN is refused with exit 8, and
/// `token info` shows the lock.
#[test]
fn a_locked_pin_is_reported_and_a_wrong_pin_never_retried() {
    let p = Project::on(TokenKind::Kryoptic);
    std::fs::write(
        p.file("example.zone"),
        "example. 3600 IN SOA ns.example. h.example. 1 7200 3600 1209600 300\nexample. 3600 IN NS ns.example.\n",
    )
    .unwrap();
    p.create_key("example", "csk", "ECDSAP256SHA256");
    let create = [
        "keys",
        "create",
        "example",
        "--role",
        "zsk",
        "--algorithm",
        "13",
    ];
    let sign = ["sign", "example.zone", "-o", "example", "-f", "x.signed"];
    for attempt in 1..=9 {
        let args: &[&str] = if attempt % 2 == 0 { &sign } else { &create };
        let err = p.run_with_pin("00000000", args).fails(7);
        assert!(err.contains("CKR_PIN_INCORRECT"), "try {attempt}: {err}");
    }
    let err = p.run_with_pin("00000000", &create).fails(8);
    assert!(
        err.contains("CKR_PIN_LOCKED") && err.contains("security officer"),
        "{err}"
    );
    let err = p.run(&sign).fails(8);
    assert!(err.contains("locked"), "{err}");
    assert!(!p.file("x.signed").exists());
    assert_eq!(p.keys().len(), 1, "nothing made with a wrong PIN");
    let info = p.run(&["token", "info"]).ok();
    assert!(info.contains("LOCKED"), "{info}");
}
