//! DNSKEY, key tags and DS records checked against independent tools on
//! the same keys: BIND's dnssec-dsfromkey and dnssec-keygen, ldns's
//! ldns-key2ds, and the RFCs' own example keys imported into the token.
//!
//! Every algorithm, Ed25519 among them, and the RFC 8080 and RFC 5702
//! (512-bit) example keys: these tests keep a SoftHSMv2 token whatever
//! DNSSEAL_TEST_TOKEN says (the Kryoptic build has neither; sign.rs checks
//! that it refuses them).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{field, Project};

const ALGORITHMS: [&str; 5] = [
    "RSASHA256",
    "RSASHA512",
    "ECDSAP256SHA256",
    "ECDSAP384SHA384",
    "ED25519",
];

/// (tag, algorithm, digest type, digest in upper-case hex) of DS lines in
/// any of the tools' outputs.
fn ds_set(text: &str) -> BTreeSet<(u16, u8, u8, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.split(';').next()?;
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|x| *x == "DS")?;
            Some((
                f.get(i + 1)?.parse().ok()?,
                f.get(i + 2)?.parse().ok()?,
                f.get(i + 3)?.parse().ok()?,
                f[i + 4..].concat().to_uppercase(),
            ))
        })
        .collect()
}

fn tool(cmd: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ds_and_key_tags_match_dnssec_dsfromkey_and_ldns_key2ds() {
    common::require("dnssec-dsfromkey", "bind9-utils");
    common::require("ldns-key2ds", "ldnsutils");
    let p = Project::softhsm();
    for (i, alg) in ALGORITHMS.iter().enumerate() {
        let zone = format!("Zone{i}.Example");
        p.create_key(&zone, "both", alg);
        p.run(&[
            "keys",
            "create",
            &zone,
            "--role",
            "csk",
            "--algorithm",
            alg,
            "--state",
            "published",
        ])
        .ok();
        let zone = zone.to_lowercase() + ".";
        let dnskeys = p.run(&["keys", "dnskey", &zone]).ok();
        assert_eq!(dnskeys.lines().count(), 4);
        let file = p.file(&format!("{zone}dnskey"));
        std::fs::write(&file, &dnskeys).unwrap();

        // DS of the SEP keys (KSK and CSK), SHA-256 and SHA-384, as BIND computes them.
        let ours = ds_set(
            &p.run(&["keys", "ds", &zone, "--digest", "sha256,sha384"])
                .ok(),
        );
        let mut bind = BTreeSet::new();
        for digest in ["SHA-256", "SHA-384"] {
            bind.extend(ds_set(&tool(
                "dnssec-dsfromkey",
                &["-a", digest, "-f", file.to_str().unwrap(), &zone],
                p.path(),
            )));
        }
        assert_eq!(ours.len(), 4, "two SEP keys x two digests");
        assert_eq!(
            ours, bind,
            "DS records differ from dnssec-dsfromkey for {alg}"
        );

        // Key tags of every key (ZSKs too), and DS digests, as ldns computes them.
        for (n, line) in dnskeys.lines().enumerate() {
            let one = p.file(&format!("{zone}{n}.key"));
            std::fs::write(&one, format!("{line}\n")).unwrap();
            let ldns = ds_set(&tool(
                "ldns-key2ds",
                &["-n", "-f", "-2", one.to_str().unwrap()],
                p.path(),
            ));
            let (tag, _, _, digest) = ldns
                .iter()
                .next()
                .cloned()
                .expect("ldns-key2ds printed a DS");
            assert!(
                line.contains(&format!("key tag {tag} ")),
                "ldns key tag {tag} not in: {line}"
            );
            if line.contains(" DNSKEY 257 ") {
                assert!(
                    ours.iter().any(|d| d.0 == tag && d.2 == 2 && d.3 == digest),
                    "ldns DS digest differs for tag {tag}"
                );
            }
        }
        // And the key tags in the keystore agree with the DNSKEY comments.
        for k in p
            .keys()
            .iter()
            .filter(|k| field(k, "zone") == zone.as_str())
        {
            let tag = field(k, "key_tag");
            assert!(dnskeys.contains(&format!("key tag {tag} ")));
        }
    }
}

/// Imports BIND keys of every algorithm and checks that the token now
/// holds exactly the key BIND made.
#[test]
fn bind_keys_of_every_algorithm_import_into_the_token() {
    common::require("dnssec-keygen", "bind9-utils");
    let p = Project::softhsm();
    let keydir = p.file("bind-keys");
    std::fs::create_dir(&keydir).unwrap();
    for (alg, ksk) in ALGORITHMS.iter().zip([true, false, true, false, true]) {
        let mut args = vec!["-q", "-K", keydir.to_str().unwrap(), "-a", alg];
        if alg.starts_with("RSA") {
            args.extend(["-b", "2048"]);
        }
        if ksk {
            args.extend(["-f", "KSK"]);
        }
        args.push("import.example");
        let base = tool("dnssec-keygen", &args, p.path()).trim().to_string();
        let tag: u16 = base.rsplit('+').next().unwrap().parse().unwrap();
        let private = keydir.join(format!("{base}.private"));
        let out = p.run(&[
            "keys",
            "import-bind",
            "import.example",
            private.to_str().unwrap(),
            "--yes",
        ]);
        let stderr = out.stderr.clone();
        let stdout = out.ok();
        assert!(
            stdout.contains(&format!("imported key {tag} of import.example.")),
            "{stdout}"
        );
        assert!(
            stderr.contains("WARNING: importing PRIVATE KEY MATERIAL"),
            "{stderr}"
        );

        let key_text = std::fs::read_to_string(keydir.join(format!("{base}.key"))).unwrap();
        let rdata: String = key_text
            .lines()
            .find(|l| l.contains("DNSKEY") && !l.starts_with(';'))
            .map(|l| {
                // BIND splits the base64 with spaces; dnsseal prints it whole.
                let f: Vec<&str> = l
                    .split("DNSKEY")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .collect();
                format!("{} {} {} {}", f[0], f[1], f[2], f[3..].concat())
            })
            .unwrap();
        let published = p.run(&["keys", "dnskey", "import.example"]).ok();
        assert!(
            published.contains(&rdata),
            "DNSKEY {rdata} not published:\n{published}"
        );
        let rec = p
            .keys()
            .into_iter()
            .find(|k| field(k, "key_tag") == tag)
            .unwrap();
        assert_eq!(field(&rec, "origin"), "imported");
        assert_eq!(field(&rec, "role"), if ksk { "ksk" } else { "zsk" });
    }
    let log = p.audit_lines().join("\n");
    assert_eq!(log.matches("IMPORTED private key material").count(), 5);
    // The imported private objects are sensitive and not extractable.
    let objs = p.pkcs11_tool(&["--list-objects", "--type", "privkey"]);
    let text = String::from_utf8_lossy(&objs.stdout);
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.trim().starts_with("Access:"))
        .collect();
    assert_eq!(access.len(), 5, "{text}");
    for line in access {
        let items: Vec<&str> = line
            .trim()
            .trim_start_matches("Access:")
            .split(',')
            .map(str::trim)
            .collect();
        assert!(items.contains(&"sensitive"), "{line}");
        assert!(
            !items.contains(&"extractable"),
            "imported key is extractable: {line}"
        );
        // Honest history: an imported key was not always sensitive.
        assert!(!items.contains(&"always sensitive"), "{line}");
    }
    let usage: Vec<&str> = text
        .lines()
        .filter(|l| l.trim().starts_with("Usage:"))
        .map(|l| l.trim())
        .collect();
    assert_eq!(usage, vec!["Usage:      sign"; 5], "{text}");
    p.run(&["keys", "reconcile"]).ok();
    p.run(&["audit", "verify"]).ok();
}

/// The RFCs' example private keys, imported into the token, give the RFCs'
/// key tags and DS records (RFC 6605 §6.1/§6.2, RFC 8080 §6.1).
#[test]
fn rfc_example_keys_give_the_rfc_ds_records_through_the_token() {
    let p = Project::softhsm();
    let cases = [
        (
            "example.net.",
            13,
            "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==",
            "GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=",
            "sha256",
            "55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17",
        ),
        (
            "example.net.",
            14,
            "xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1w/egsXvSADtNJhyem5RCOpgQ6K8X1DRSEkrbYQ+OB+v8/uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40",
            "WURgWHCcYIYUPWgeLmiPY2DJJk02vgrmTfitxgqcL4vwW7BOrbawVmVe0d9V94SR",
            "sha384",
            "10771 14 4 72D7B62976CE06438E9C0BF319013CF801F09ECC84B8D7E9495F27E305C6A9B0563A9B5F4D288405C3008A946DF983D6",
        ),
        (
            "example.com.",
            15,
            "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=",
            "ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=",
            "sha256",
            "3613 15 2 3AA5AB37EFCE57F737FC1627013FEE07BDF241BD10F3B1964AB55C78E79A304B",
        ),
    ];
    for (zone, alg, public, private, digest, expected) in cases {
        let tag: u16 = expected.split(' ').next().unwrap().parse().unwrap();
        let base = p.file(&format!("K{zone}+{alg:03}+{tag:05}"));
        std::fs::write(
            format!("{}.key", base.display()),
            format!("{zone} 3600 IN DNSKEY 257 3 {alg} {public}\n"),
        )
        .unwrap();
        let private_file = format!("{}.private", base.display());
        std::fs::write(
            &private_file,
            format!("Private-key-format: v1.3\nAlgorithm: {alg} (X)\nPrivateKey: {private}\n"),
        )
        .unwrap();
        p.run(&[
            "keys",
            "import-bind",
            zone,
            &private_file,
            "--yes",
            "--state",
            "active",
        ])
        .ok();
        let ds = p.run(&["keys", "ds", zone, "--digest", digest]).ok();
        assert!(
            ds.lines()
                .any(|l| l.contains(&format!(" IN DS {expected} "))),
            "expected {expected} in\n{ds}"
        );
    }
}

/// A .private whose .key belongs to another key is refused: the token's
/// test signature does not verify with the public key, and nothing stays.
#[test]
fn a_mismatched_bind_pair_is_refused_and_leaves_nothing_behind() {
    common::require("dnssec-keygen", "bind9-utils");
    let p = Project::softhsm();
    let dir = p.file("k");
    std::fs::create_dir(&dir).unwrap();
    let gen = || {
        tool(
            "dnssec-keygen",
            &[
                "-q",
                "-K",
                dir.to_str().unwrap(),
                "-a",
                "ED25519",
                "mix.example",
            ],
            p.path(),
        )
        .trim()
        .to_string()
    };
    let (a, b) = (gen(), gen());
    // Give key A's private half B's public half.
    std::fs::copy(dir.join(format!("{b}.key")), dir.join(format!("{a}.key"))).unwrap();
    let err = p
        .run(&[
            "keys",
            "import-bind",
            "mix.example",
            dir.join(format!("{a}.private")).to_str().unwrap(),
            "--yes",
        ])
        .fails(3);
    assert!(err.contains("are not one key pair"), "{err}");
    assert!(p.keys().is_empty());
    assert!(
        p.token_private_ids().is_empty(),
        "the failed import left a token object"
    );
    assert!(p
        .audit_lines()
        .last()
        .unwrap()
        .contains("\"outcome\":\"failed\""));
}
