//! `dnsseal sign` and `dnsseal verify` against real SoftHSMv2 tokens (or
//! Kryoptic ones, with DNSSEAL_TEST_TOKEN=kryoptic), with every signed zone
//! checked by BIND's dnssec-verify, ldns-verify-zone and Knot's kzonecheck
//! as well as by dnsseal's own verifier.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ed25519_or, field, skip_without, Project, TokenKind};

const ZONE: &str = include_str!("zones/example.zone");

use common::{independent_verifiers, require_verifiers};

fn rrsigs(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.split('\t').nth(3) == Some("RRSIG"))
        .collect()
}

#[test]
fn every_algorithm_with_nsec_nsec3_and_opt_out_passes_every_verifier() {
    require_verifiers();
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    let original = std::fs::read(p.file("example.zone")).unwrap();
    for &alg in p.token.algorithms() {
        // A fresh key set per algorithm: retire the previous one first.
        for k in p.keys().iter().filter(|k| field(k, "state") != "removed") {
            let tag = field(k, "key_tag").to_string();
            p.run(&["keys", "delete", "example", "--tag", &tag, "--force"])
                .ok();
        }
        p.create_key("example", "both", alg);
        for (name, flags) in [
            ("nsec", vec![]),
            ("nsec3", vec!["--nsec3"]),
            ("optout", vec!["--nsec3", "--opt-out"]),
        ] {
            let out = p.file(&format!("{alg}.{name}.signed"));
            let mut args = vec![
                "sign",
                "example.zone",
                "-o",
                "example",
                "-f",
                out.to_str().unwrap(),
            ];
            args.extend(flags.iter().copied());
            p.run(&args).ok();
            independent_verifiers(&out, "example.");
            p.run(&["verify", out.to_str().unwrap(), "-o", "example"])
                .ok();
            let text = std::fs::read_to_string(&out).unwrap();
            // Occluded data is kept but never signed; glue likewise.
            assert!(text.contains("deep.sub.example.\t3600\tIN\tTXT"));
            assert!(
                !text.contains("RRSIG\tTXT")
                    || !text
                        .lines()
                        .any(|l| l.starts_with("deep.sub.example.") && l.contains("RRSIG"))
            );
            assert!(!text
                .lines()
                .any(|l| l.starts_with("ns.sub.example.") && l.contains("RRSIG")));
            assert!(text
                .lines()
                .any(|l| l.starts_with("old.example.") && l.contains("RRSIG\tDNAME")));
            // At a delegation only DS (and NSEC) are signed.
            assert!(!text
                .lines()
                .any(|l| l.starts_with("sub.example.") && l.contains("RRSIG\tNS ")));
            assert!(text
                .lines()
                .any(|l| l.starts_with("secure.example.") && l.contains("RRSIG\tDS")));
            // Wildcard: labels field excludes the '*'.
            assert!(text.lines().any(|l| l.starts_with("*.wild.example.")
                && l.contains("RRSIG\tTXT")
                && l.contains(&format!(" {} 2 3600 ", alg_number(alg)))));
            if name == "optout" {
                assert!(text.contains("\tNSEC3\t1 1 0 - "), "opt-out flag");
            }
            if name == "nsec" {
                assert!(!text.contains("NSEC3"));
            }
        }
    }
    assert_eq!(
        std::fs::read(p.file("example.zone")).unwrap(),
        original,
        "the input was modified"
    );
}

fn alg_number(alg: &str) -> u8 {
    match alg {
        "RSASHA256" => 8,
        "RSASHA512" => 10,
        "ECDSAP256SHA256" => 13,
        "ECDSAP384SHA384" => 14,
        _ => 15,
    }
}

#[test]
fn our_verifier_catches_what_the_others_catch() {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "13");
    p.run(&["sign", "example.zone", "-o", "example", "-f", "good.signed"])
        .ok();
    let good = std::fs::read_to_string(p.file("good.signed")).unwrap();
    let bad = |name: &str, text: String, expect: &str| {
        std::fs::write(p.file(name), text).unwrap();
        let err = p.run(&["verify", name, "-o", "example"]).fails(11);
        assert!(err.contains(expect), "{name}: {err}");
    };
    bad(
        "changed.signed",
        good.replace("192.0.2.80", "192.0.2.81"),
        "sip.example. A: no valid algorithm 13 signature (signature by key",
    );
    bad(
        "unsigned-addition.signed",
        format!("{good}extra.example.\t3600\tIN\tA\t192.0.2.7\n"),
        "extra.example. A: no valid algorithm 13 signature (no signature)",
    );
    let no_nsec: String = good
        .lines()
        .filter(|l| !(l.starts_with("sip.example.") && l.contains("\tNSEC\t")))
        .map(|l| format!("{l}\n"))
        .collect();
    bad(
        "missing-nsec.signed",
        no_nsec,
        "sip.example.: no NSEC record",
    );
    std::fs::write(p.file("expired.signed"), &good).unwrap();
    let err = p
        .run(&[
            "--now",
            "20991231000000",
            "verify",
            "expired.signed",
            "-o",
            "example",
        ])
        .fails(11);
    assert!(err.contains("expired"), "{err}");
    let dnskey_unsigned: String = good
        .lines()
        .filter(|l| !l.contains("RRSIG\tDNSKEY"))
        .map(|l| format!("{l}\n"))
        .collect();
    bad(
        "dnskey.signed",
        dnskey_unsigned,
        "example. DNSKEY: no valid algorithm 13 signature (no signature)",
    );
}

#[test]
fn serial_validity_and_jitter_options_do_what_they_say() {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "csk", ed25519_or("13"));
    let now = "20300101000000";
    p.run(&[
        "--now",
        now,
        "sign",
        "example.zone",
        "-o",
        "example",
        "-N",
        "increment",
        "-s",
        "20291231000000",
        "-e",
        "+864000",
        "-f",
        "a.signed",
    ])
    .ok();
    let a = std::fs::read_to_string(p.file("a.signed")).unwrap();
    assert!(
        a.contains("hostmaster.example. 2026010102 7200"),
        "increment"
    );
    for l in rrsigs(&a) {
        assert!(l.contains(" 20300110000000 20291231000000 "), "{l}");
    }
    p.run(&["--now", now, "verify", "a.signed", "-o", "example"])
        .ok();

    // 2036-07-18T13:20:00Z is 2100000000, later than 2026010101 in serial
    // arithmetic; 2030 (1893456000) is not, so the serial only steps by one.
    p.run(&[
        "--now",
        now,
        "sign",
        "example.zone",
        "-o",
        "example",
        "-N",
        "unixtime",
        "-f",
        "u.signed",
    ])
    .ok();
    assert!(std::fs::read_to_string(p.file("u.signed"))
        .unwrap()
        .contains(" 2026010102 7200 "));
    p.run(&[
        "--now",
        "20360718132000",
        "sign",
        "example.zone",
        "-o",
        "example",
        "-N",
        "unixtime",
        "-f",
        "u2.signed",
    ])
    .ok();
    assert!(std::fs::read_to_string(p.file("u2.signed"))
        .unwrap()
        .contains(" 2100000000 7200 "));
    p.run(&[
        "--now",
        now,
        "sign",
        "example.zone",
        "-o",
        "example",
        "-e",
        "now+2592000",
        "-j",
        "86400",
        "-f",
        "b.signed",
    ])
    .ok();
    let b = std::fs::read_to_string(p.file("b.signed")).unwrap();
    let expirations: std::collections::BTreeSet<&str> = rrsigs(&b)
        .iter()
        .map(|l| l.split(' ').nth(4).unwrap())
        .collect();
    assert!(
        expirations.len() > 3,
        "jitter spreads expirations: {expirations:?}"
    );
    assert!(
        expirations
            .iter()
            .all(|e| *e <= "20300131000000" && *e >= "20300130000000"),
        "{expirations:?}"
    );

    p.run(&[
        "--now",
        now,
        "sign",
        "example.zone",
        "-o",
        "example",
        "-N",
        "date",
        "-f",
        "c.signed",
    ])
    .ok();
    assert!(std::fs::read_to_string(p.file("c.signed"))
        .unwrap()
        .contains(" 2030010100 7200 "));
    // NSEC3 with a salt and iterations, as asked (with a warning).
    let r = p.run(&[
        "sign",
        "example.zone",
        "-o",
        "example",
        "--nsec3",
        "--salt",
        "aabbccdd",
        "--iterations",
        "5",
        "-f",
        "d.signed",
    ]);
    assert!(r.stderr.contains("RFC 9276"), "{}", r.stderr);
    r.ok();
    assert!(std::fs::read_to_string(p.file("d.signed"))
        .unwrap()
        .to_lowercase()
        .contains("nsec3param\t1 0 5 aabbccdd"));
    p.run(&["verify", "d.signed", "-o", "example"]).ok();
}

/// RFC 8080 §6.1 (errata 4935): Ed25519 is deterministic, so the RFC's key
/// imported into the token gives the RFC's signature byte for byte. A
/// token without Ed25519 refuses the import up front (exit 9).
#[test]
fn rfc8080_example_signature_comes_out_byte_for_byte() {
    let p = Project::new();
    let base = p.file("Kexample.com.+015+03613");
    std::fs::write(
        format!("{}.key", base.display()),
        "example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n",
    )
    .unwrap();
    std::fs::write(
        format!("{}.private", base.display()),
        "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\nPrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n",
    )
    .unwrap();
    let import = p.run(&[
        "keys",
        "import-bind",
        "example.com",
        &format!("{}.private", base.display()),
        "--role",
        "csk",
        "--state",
        "active",
        "--yes",
    ]);
    if skip_without("ED25519") {
        let err = import.fails(9);
        assert!(err.contains("CKM_EDDSA"), "{err}");
        assert!(p.keys().is_empty() && p.token_private_ids().is_empty());
        return;
    }
    import.ok();
    std::fs::write(
        p.file("rfc8080.zone"),
        "example.com. 3600 IN SOA ns.example.com. host.example.com. 1 7200 3600 1209600 3600\nexample.com. 3600 IN NS ns.example.com.\nexample.com. 3600 IN MX 10 mail.example.com.\n",
    )
    .unwrap();
    p.run(&[
        "--now",
        "20150801000000",
        "sign",
        "rfc8080.zone",
        "-o",
        "example.com",
        "-s",
        "20150729220000",
        "-e",
        "20150819220000",
        "-f",
        "rfc8080.signed",
    ])
    .ok();
    let text = std::fs::read_to_string(p.file("rfc8080.signed")).unwrap();
    let mx = rrsigs(&text)
        .into_iter()
        .find(|l| l.contains("RRSIG\tMX"))
        .unwrap()
        .to_string();
    assert!(
        mx.ends_with("MX 15 2 3600 20150819220000 20150729220000 3613 example.com. oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg=="),
        "{mx}"
    );
}

/// RFC 5702 §6.1 and §6.2: RSA PKCS#1 v1.5 is deterministic, so the RFC's
/// (512- and 1024-bit) example keys imported into the token give the RFC's
/// signatures byte for byte. Both algorithms sign one zone, each with its
/// own KSK made in the token. A token that takes no 512-bit RSA key
/// (Kryoptic: 1024 bits and up) refuses that import up front (exit 9),
/// and the 1024-bit example alone is checked.
#[test]
fn rfc5702_example_signatures_come_out_byte_for_byte() {
    let p = Project::new();
    let keys = [
        (
            8,
            "AwEAAcFcGsaxxdgiuuGmCkVImy4h99CqT7jwY3pexPGcnUFtR2Fh36BponcwtkZ4cAgtvd4Qs8PkxUdp6p/DlUmObdk=",
            "Modulus: wVwaxrHF2CK64aYKRUibLiH30KpPuPBjel7E8ZydQW1HYWHfoGmidzC2RnhwCC293hCzw+TFR2nqn8OVSY5t2Q==\nPublicExponent: AQAB\nPrivateExponent: UR44xX6zB3eaeyvTRzmskHADrPCmPWnr8dxsNwiDGHzrMKLN+i/HAam+97HxIKVWNDH2ba9Mf1SA8xu9dcHZAQ==\nPrime1: 4c8IvFu1AVXGWeFLLFh5vs7fbdzdC6U82fduE6KkSWk=\nPrime2: 2zZpBE8ZXVnL74QjG4zINlDfH+EOEtjJJ3RtaYDugvE=\nExponent1: G2xAPFfK0KGxGANDVNxd1K1c9wOmmJ51mGbzKFFNMFk=\nExponent2: GYxP1Pa7CAwtHm8SAGX594qZVofOMhgd6YFCNyeVpKE=\nCoefficient: icQdNRjlZGPmuJm2TIadubcO8X7V4y07aVhX464tx8Q=\n",
            "A 8 3 3600 20300101000000 20000101000000 9033 example.net. kRCOH6u7l0QGy9qpC9l1sLncJcOKFLJ7GhiUOibu4teYp5VE9RncriShZNz85mwlMgNEacFYK/lPtPiVYP4bwg==",
            9033,
        ),
        (
            10,
            "AwEAAdHoNTOW+et86KuJOWRDp1pndvwb6Y83nSVXXyLA3DLroROUkN6X0O6pnWnjJQujX/AyhqFDxj13tOnD9u/1kTg7cV6rklMrZDtJCQ5PCl/D7QNPsgVsMu1J2Q8gpMpztNFLpPBz1bWXjDtaR7ZQBlZ3PFY12ZTSncorffcGmhOL",
            "Modulus: 0eg1M5b563zoq4k5ZEOnWmd2/BvpjzedJVdfIsDcMuuhE5SQ3pfQ7qmdaeMlC6Nf8DKGoUPGPXe06cP27/WRODtxXquSUytkO0kJDk8KX8PtA0+yBWwy7UnZDyCkynO00Uuk8HPVtZeMO1pHtlAGVnc8VjXZlNKdyit99waaE4s=\nPublicExponent: AQAB\nPrivateExponent: rFS1IPbJllFFgFc33B5DDlC1egO8e81P4fFadODbp56V7sphKa6AZQCx8NYAew6VXFFPAKTw41QdHnK5kIYOwxvfFDjDcUGza88qbjyrDPSJenkeZbISMUSSqy7AMFzEolkk6WSn6k3thUVRgSlqDoOV3SEIAsrB043XzGrKIVE=\nPrime1: 8mbtsu9Tl9v7tKSHdCIeprLIQXQLzxlSZun5T1n/OjvXSUtvD7xnZJ+LHqaBj1dIgMbCq2U8O04QVcK3TS9GiQ==\nPrime2: 3a6gkfs74d0Jb7yL4j4adAif4fcp7ZrGt7G5NRVDDY/Mv4TERAKMa0TKN3okKE0A7X+Rv2K84mhT4QLDlllEcw==\nExponent1: v3D5A9uuCn5rgVR7wgV8ba0/KSpsdSiLgsoA42GxiB1gvvs7gJMMmVTDu/ZG1p1ZnpLbhh/S/Qd/MSwyNlxC+Q==\nExponent2: m+ezf9dsDvYQK+gzjOLWYeKq5xWYBEYFGa3BLocMiF4oxkzOZ3JPZSWU/h1Fjp5RV7aPP0Vmx+hNjYMPIQ8Y5w==\nCoefficient: Je5YhYpUron/WdOXjxNAxDubAp3i5X7UOUfhJcyIggqwY86IE0Q/Bk0Dw4SC9zxnsimmdBXW2Izd8Lwuk8FQcQ==\n",
            "A 10 3 3600 20300101000000 20000101000000 3740 example.net. tsb4wnjRUDnB1BUi+t6TMTXThjVnG+eCkWqjvvjhzQL1d0YRoOe0CbxrVDYd0xDtsuJRaeUw1ep94PzEWzr0iGYgZBWm/zpq+9fOuagYJRfDqfReKBzMweOLDiNa8iP5g9vMhpuv6OPlvpXwm9Sa9ZXIbNl1MBGk0fthPgxdDLw=",
            3740,
        ),
    ];
    let sizes = p.run(&["--json", "token", "info"]).ok();
    let sizes: serde_json::Value = serde_json::from_str(&sizes).unwrap();
    let min_bits = sizes["algorithms"][0]["min_bits"].as_u64().unwrap();
    let takes = |tag: u16| tag != 9033 || min_bits <= 512;
    for (alg, public, private, _, tag) in keys {
        let base = p.file(&format!("Kexample.net.+{alg:03}+{tag:05}"));
        std::fs::write(
            format!("{}.key", base.display()),
            format!("example.net. 3600 IN DNSKEY 256 3 {alg} {public}\n"),
        )
        .unwrap();
        std::fs::write(
            format!("{}.private", base.display()),
            format!("Private-key-format: v1.2\nAlgorithm: {alg} (X)\n{private}"),
        )
        .unwrap();
        let import = p.run(&[
            "keys",
            "import-bind",
            "example.net",
            &format!("{}.private", base.display()),
            "--state",
            "active",
            "--yes",
        ]);
        if !takes(tag) {
            let err = import.fails(9);
            assert!(
                err.contains("512 bits") && err.contains(&format!("{min_bits}-")),
                "{err}"
            );
            eprintln!("the token takes no 512-bit RSA key: RFC 5702 section 6.1 not checked");
            continue;
        }
        import.ok();
        p.run(&[
            "keys",
            "create",
            "example.net",
            "--role",
            "ksk",
            "--algorithm",
            &alg.to_string(),
            "--state",
            "active",
        ])
        .ok();
    }
    std::fs::write(
        p.file("rfc5702.zone"),
        "example.net. 3600 IN SOA ns.example.net. host.example.net. 1 7200 3600 1209600 3600\nexample.net. 3600 IN NS ns.example.net.\nwww.example.net. 3600 IN A 192.0.2.91\n",
    )
    .unwrap();
    p.run(&[
        "--now",
        "20150101000000",
        "sign",
        "rfc5702.zone",
        "-o",
        "example.net",
        "-s",
        "20000101000000",
        "-e",
        "20300101000000",
        "-f",
        "rfc5702.signed",
    ])
    .ok();
    let text = std::fs::read_to_string(p.file("rfc5702.signed")).unwrap();
    for (_, _, _, expected, tag) in keys {
        if !takes(tag) {
            continue;
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("www.example.net.\t3600\tIN\tRRSIG\t")
                    && l.ends_with(expected)),
            "missing {expected} in\n{}",
            rrsigs(&text).join("\n")
        );
    }
    p.run(&[
        "--now",
        "20150101000000",
        "verify",
        "rfc5702.signed",
        "-o",
        "example.net",
    ])
    .ok();
}

#[test]
fn incremental_signing_keeps_what_is_still_good() {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "13");
    let first = p
        .run(&[
            "--json",
            "sign",
            "example.zone",
            "-o",
            "example",
            "-f",
            "v1.signed",
        ])
        .ok();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let total = first["signatures_generated"].as_u64().unwrap();
    assert_eq!(first["signatures_retained"], 0);

    // Change one record.
    std::fs::write(
        p.file("example.zone"),
        ZONE.replace("192.0.2.80", "192.0.2.81"),
    )
    .unwrap();
    let second = p
        .run(&[
            "--json",
            "sign",
            "example.zone",
            "-o",
            "example",
            "-N",
            "increment",
            "--incremental",
            "v1.signed",
            "-f",
            "v2.signed",
        ])
        .ok();
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    // The changed A RRset and the SOA (new serial) are signed anew.
    assert_eq!(second["signatures_generated"], 2, "{second}");
    assert_eq!(second["signatures_retained"].as_u64().unwrap(), total - 2);
    p.run(&["verify", "v2.signed", "-o", "example"]).ok();
    if Path::new("/usr/bin/dnssec-verify").exists() {
        independent_verifiers(&p.file("v2.signed"), "example.");
    }
    // Within the refresh interval everything is signed anew.
    let third = p
        .run(&[
            "--json",
            "sign",
            "example.zone",
            "-o",
            "example",
            "--incremental",
            "v2.signed",
            "-i",
            "40000000",
            "-f",
            "v3.signed",
        ])
        .ok();
    let third: serde_json::Value = serde_json::from_str(&third).unwrap();
    assert_eq!(third["signatures_retained"], 0, "{third}");
    // A signed zone as input carries its own signatures.
    let fourth = p
        .run(&[
            "--json",
            "sign",
            "v2.signed",
            "-o",
            "example",
            "-f",
            "v4.signed",
        ])
        .ok();
    let fourth: serde_json::Value = serde_json::from_str(&fourth).unwrap();
    assert_eq!(fourth["signatures_generated"], 0, "{fourth}");
    p.run(&["verify", "v4.signed", "-o", "example"]).ok();
}

#[test]
fn broken_zone_files_are_refused_with_file_and_line_and_write_nothing() {
    let p = Project::new();
    p.create_key("example", "both", "13");
    let head = "$ORIGIN example.\n$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "cname-and-data",
            format!("{head}www CNAME ns1\nwww A 192.0.2.2\n"),
            ":6: CNAME at www.example. beside A data",
        ),
        (
            "two-cnames",
            format!("{head}www CNAME ns1\nwww CNAME ns2\n"),
            "has 2 CNAME records",
        ),
        (
            "two-soas",
            format!("{head}@ SOA ns1 host 2 2 3 4 5\n"),
            "2 SOA records at the apex",
        ),
        (
            "no-soa",
            "$ORIGIN example.\n$TTL 300\n@ NS ns1\n".to_string(),
            "no SOA record at the apex",
        ),
        (
            "out-of-zone",
            format!("{head}foo.other. A 192.0.2.3\n"),
            ":6: foo.other. is outside the zone",
        ),
        (
            "ds-at-apex",
            format!("{head}@ DS 1 13 2 abababababababababababababababababababababababababababababababab\n"),
            ":6: DS at the apex",
        ),
        (
            "ds-without-ns",
            format!("{head}x DS 1 13 2 abababababababababababababababababababababababababababababababab\n"),
            ":6: DS at x.example. without NS",
        ),
        (
            "generate",
            format!("{head}$GENERATE 1-10 h$ A 192.0.2.$\n"),
            ":6: $GENERATE is a BIND extension",
        ),
        ("bad-a", format!("{head}bad A 192.0.2.256\n"), ":6:"),
        (
            "short-generic",
            format!("{head}g A \\# 5 0A000001\n"),
            ":6:",
        ),
        (
            "meta-type",
            format!("{head}t TYPE250 \\# 0\n"),
            ":6: TSIG is a meta type",
        ),
        (
            "bad-loc",
            format!("{head}l LOC 91 0 0 N 0 E 0m\n"),
            ":6: LOC RDATA: latitude degrees 91 is more than 90",
        ),
        (
            "bad-apl",
            format!("{head}a APL 1:192.0.2.0/33\n"),
            ":6: APL RDATA: APL item \"1:192.0.2.0/33\": prefix longer than the address",
        ),
        (
            "svcb-key-twice",
            format!("{head}s SVCB 1 . port=53 key9=a key9=b\n"),
            ":6: SVCB RDATA: key9 appears twice",
        ),
        ("nul", format!("{head}n A 192.0.2.3\0\n"), ":6: NUL octet"),
        (
            "ttl-without-value",
            "$ORIGIN example.\n$TTL\n@ SOA ns1 host 1 2 3 4 5\n".to_string(),
            ":2:",
        ),
        ("class-ch", format!("{head}c CH TXT \"x\"\n"), ":6:"),
        (
            "sec-below-soa",
            format!("{head}s SOA ns1 host 1 2 3 4 5\n"),
            "SOA at s.example., which is not the apex",
        ),
        (
            "below-dname",
            format!("{head}d DNAME other.test.\nx.d A 192.0.2.9\n"),
            ":7: x.d.example. is below the DNAME at d.example.",
        ),
    ];
    for (name, text, expect) in cases {
        let file = format!("{name}.zone");
        std::fs::write(p.file(&file), text).unwrap();
        std::fs::write(p.file(&format!("{file}.signed")), "previous output\n").unwrap();
        let err = p.run(&["sign", &file, "-o", "example"]).fails(3);
        assert!(
            err.contains(&file) && err.contains(expect),
            "{name}: expected '{expect}' in: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(p.file(&format!("{file}.signed"))).unwrap(),
            "previous output\n",
            "{name}: output touched"
        );
    }
    // No keys for the zone: refused before anything is read.
    std::fs::write(p.file("other.zone"), "@ 300 SOA ns host 1 2 3 4 5\n").unwrap();
    let err = p.run(&["sign", "other.zone", "-o", "other.test"]).fails(10);
    assert!(err.contains("has no active KSK or CSK"), "{err}");
    assert!(!p.file("other.zone.signed").exists());
}

/// A key record written into the keystore behind dnsseal's back (a
/// published key the token does not hold) is not published: signing stops
/// with the drift exit code. A broken audit log stops signing too.
#[test]
fn signing_publishes_only_keys_the_token_holds_and_needs_a_sound_audit_log() {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "13");
    let conn = rusqlite::Connection::open(p.file("keystore.sqlite")).unwrap();
    conn.execute(
        "INSERT INTO keys (zone, key_tag, role, algorithm, bits, flags, public_key, token_serial, token_label,
            cka_id, cka_label, state, origin, created, published)
         SELECT zone, 4242, 'zsk', algorithm, bits, 256, randomblob(64), token_serial, token_label,
            randomblob(16), 'planted', 'published', 'generated', created, published FROM keys LIMIT 1",
        [],
    )
    .unwrap();
    let err = p.run(&["sign", "example.zone", "-o", "example"]).fails(12);
    assert!(
        err.contains("published key 4242") && err.contains("reconcile"),
        "{err}"
    );
    assert!(!p.file("example.zone.signed").exists());
    conn.execute("DELETE FROM keys WHERE key_tag = 4242", [])
        .unwrap();
    p.run(&["sign", "example.zone", "-o", "example"]).ok();
    let last = p.audit_lines().last().unwrap().clone();
    assert!(
        last.contains("\"command\":\"sign\"") && last.contains("host verification on"),
        "{last}"
    );

    let mut lines = p.audit_lines();
    lines.remove(1);
    std::fs::write(p.file("audit.log"), lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(p.file("example.zone.signed")).unwrap();
    let err = p.run(&["sign", "example.zone", "-o", "example"]).fails(11);
    assert!(
        err.contains("audit log") && err.contains("broken at line 2"),
        "{err}"
    );
    assert!(!p.file("example.zone.signed").exists());
}

/// A 100k-name zone: after one changed record and one added name,
/// --incremental signs only the changed RRset, the new name's RRsets, the
/// NSEC of the name before it (its next pointer moved) and the SOA (new
/// serial); everything else is kept, and the result verifies.
#[test]
fn incremental_on_a_100k_name_zone_signs_only_what_changed() {
    let p = Project::new();
    let mut zone = String::from("$ORIGIN big.test.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n");
    for i in 0..100_000u32 {
        zone.push_str(&format!(
            "n{i} A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    std::fs::write(p.file("big.zone"), &zone).unwrap();
    // Fixed validity: Ed25519 is deterministic, so two runs that make the
    // same signatures must write the same bytes. ECDSA (on a token without
    // Ed25519) is not: there the new signatures' values may differ.
    let alg = ed25519_or("ECDSAP256SHA256");
    p.create_key("big.test", "csk", alg);
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let now = time::OffsetDateTime::now_utc();
    let start = (now - time::Duration::hours(1)).format(&fmt).unwrap();
    let end = (now + time::Duration::days(30)).format(&fmt).unwrap();
    let full = p
        .run(&[
            "--json",
            "sign",
            "big.zone",
            "-o",
            "big.test",
            "-s",
            &start,
            "-e",
            &end,
            "-f",
            "v1.signed",
        ])
        .ok();
    let full: serde_json::Value = serde_json::from_str(&full).unwrap();
    let total = full["signatures_generated"].as_u64().unwrap();
    assert!(total > 200_000, "{full}");
    assert!(
        p.file("v1.signed.dnsseal-state").exists(),
        "the signing state is written beside the signed zone"
    );

    let changed =
        zone.replace("n500 A 10.0.1.244\n", "n500 A 192.0.2.99\n") + "n5000a A 192.0.2.100\n";
    std::fs::write(p.file("big.zone"), changed).unwrap();
    let incremental = |previous: &str, output: &str| -> serde_json::Value {
        let out = p
            .run(&[
                "--json",
                "sign",
                "big.zone",
                "-o",
                "big.test",
                "-N",
                "increment",
                "-s",
                &start,
                "-e",
                &end,
                "--incremental",
                previous,
                "-f",
                output,
            ])
            .ok();
        serde_json::from_str(&out).unwrap()
    };
    // From the state: unchanged nodes' text is carried over, not formatted.
    let incr = incremental("v1.signed", "v2.signed");
    assert_eq!(incr["incremental_from"], "state", "{incr}");
    // n500 A, n5000a A, n5000a NSEC, n5000 NSEC (next pointer), SOA.
    assert_eq!(incr["signatures_generated"], 5, "{incr}");
    // The old n500 A, n5000 NSEC and SOA signatures went.
    assert_eq!(
        incr["signatures_retained"].as_u64().unwrap(),
        total - 3,
        "{incr}"
    );
    assert_eq!(incr["signatures_dropped"], 3, "{incr}");

    // The same from the signed zone's text: an edited file makes its state
    // stale, so it is read and every node formatted anew. Counts and bytes
    // must be the same as from the state.
    let mut edited = std::fs::read(p.file("v1.signed")).unwrap();
    edited.extend_from_slice(b"; edited by hand\n");
    std::fs::write(p.file("edited.signed"), &edited).unwrap();
    std::fs::copy(
        p.file("v1.signed.dnsseal-state"),
        p.file("edited.signed.dnsseal-state"),
    )
    .unwrap();
    let from_text = incremental("edited.signed", "v2-text.signed");
    assert_eq!(from_text["incremental_from"], "text", "{from_text}");
    for k in [
        "signatures_generated",
        "signatures_retained",
        "signatures_dropped",
    ] {
        assert_eq!(from_text[k], incr[k], "{k}: {from_text} vs {incr}");
    }
    let (from_text, from_state) = (
        std::fs::read_to_string(p.file("v2-text.signed")).unwrap(),
        std::fs::read_to_string(p.file("v2.signed")).unwrap(),
    );
    if alg == "ED25519" {
        assert!(
            from_text == from_state,
            "the zone signed from the state differs from the one signed from the text"
        );
    } else {
        // Everything but the signature values of RRSIGs is the same.
        let masked = |t: &str| -> Vec<String> {
            t.lines()
                .map(|l| match l.split('\t').nth(3) {
                    Some("RRSIG") => l.rsplit_once(' ').map_or(l, |(head, _)| head).to_string(),
                    _ => l.to_string(),
                })
                .collect()
        };
        assert!(
            masked(&from_text) == masked(&from_state),
            "the zone signed from the state differs from the one signed from the text"
        );
    }
    p.run(&["verify", "v2.signed", "-o", "big.test"]).ok();
    if Path::new("/usr/bin/dnssec-verify").exists() {
        // -z: the zone has one CSK and no flags-256 key.
        let out = Command::new("dnssec-verify")
            .args([
                "-q",
                "-z",
                "-o",
                "big.test",
                p.file("v2.signed").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `dnsseal verify --ds`: the parent's DS must lead to a key that signs
/// the DNSKEY RRset.
#[test]
fn verify_checks_the_parents_ds_against_the_signing_ksk() {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "13");
    p.run(&["sign", "example.zone", "-o", "example"]).ok();
    let ds = p
        .run(&["keys", "ds", "example", "--digest", "sha256,sha384"])
        .ok();
    std::fs::write(p.file("good.ds"), &ds).unwrap();
    p.run(&[
        "verify",
        "example.zone.signed",
        "-o",
        "example",
        "--ds",
        "good.ds",
    ])
    .ok();
    // A DS whose digest is off leads nowhere.
    let line = ds.lines().next().unwrap();
    let digest = line
        .split(';')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(7)
        .unwrap();
    let flipped = format!(
        "{}{}",
        if digest.starts_with('0') { "1" } else { "0" },
        &digest[1..]
    );
    std::fs::write(p.file("bad.ds"), line.replace(digest, &flipped)).unwrap();
    let err = p
        .run(&[
            "verify",
            "example.zone.signed",
            "-o",
            "example",
            "--ds",
            "bad.ds",
        ])
        .fails(11);
    assert!(err.contains("no DS of the parent matches"), "{err}");
    // An extra DS beside a good one (a double-DS rollover) is only a warning.
    std::fs::write(
        p.file("both.ds"),
        format!("{ds}{}\n", line.replace(digest, &flipped)),
    )
    .unwrap();
    let r = p.run(&[
        "verify",
        "example.zone.signed",
        "-o",
        "example",
        "--ds",
        "both.ds",
    ]);
    assert!(
        r.stderr.contains("fine during a KSK rollover"),
        "{}",
        r.stderr
    );
    r.ok();
}

/// Keys are not modifiable, and SoftHSMv2 will not copy such a key into a
/// session object: the softhsm2 profile signs with the token objects, and
/// a profile that asks for session copies (whose keys are made copyable)
/// falls back to them. Kryoptic copies such a key, and its profile asks for
/// copies: there every session signs with its own copy. Either way the
/// zone verifies and nothing is left on the token. (Copies of a key
/// SoftHSMv2 can copy are in key_objects.rs.)
#[test]
fn session_key_copies_sign_and_leave_nothing_on_the_token() {
    require_verifiers();
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    // A profile that asks for copies.
    let (own, text, copied) = match p.token {
        TokenKind::SoftHsm => (
            "softhsm2",
            include_str!("../hsm-profiles/softhsm2.toml"),
            "token-objects",
        ),
        TokenKind::Kryoptic => (
            "kryoptic",
            include_str!("../hsm-profiles/kryoptic.toml"),
            "session-copies",
        ),
    };
    let profile = text.replace("session_key_copies = false", "session_key_copies = true");
    assert!(profile.contains("session_key_copies = true"));
    std::fs::write(p.file("copies.toml"), profile).unwrap();
    let config = std::fs::read_to_string(p.file("dnsseal.toml")).unwrap();
    let current = format!("profile = \"{own}\"");
    assert!(config.contains(&current), "{config}");
    let use_profile = |name: &str| {
        std::fs::write(
            p.file("dnsseal.toml"),
            config.replace(&current, &format!("profile = \"{name}\"")),
        )
        .unwrap();
    };
    use_profile("copies.toml");
    p.create_key("example", "both", "13");
    let on_token = p.token_private_ids();
    assert_eq!(on_token.len(), 3, "{on_token:?}");
    let sign = |out: &str| -> serde_json::Value {
        let json = p
            .run(&[
                "--json",
                "sign",
                "example.zone",
                "-o",
                "example",
                "-f",
                out,
                "--threads",
                "2",
            ])
            .ok();
        independent_verifiers(&p.file(out), "example");
        p.run(&["verify", out, "-o", "example"]).ok();
        assert_eq!(p.token_private_ids(), on_token, "the token's keys changed");
        serde_json::from_str(&json).unwrap()
    };
    let bench = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--json", "token", "bench", "example", "--seconds", "0.2"];
        args.extend_from_slice(extra);
        serde_json::from_str(&p.run(&args).ok()).unwrap()
    };
    assert_eq!(sign("copies.signed")["key_objects"], copied);
    assert_eq!(bench(&[])["key_objects"], copied);

    // The token's own profile: copies on Kryoptic, not on SoftHSMv2.
    use_profile(own);
    assert_eq!(sign("objects.signed")["key_objects"], copied);
    assert_eq!(bench(&[])["key_objects"], copied);
    let raw = bench(&["--token-objects"]);
    assert_eq!(raw["key_objects"], "token-objects");
    assert!(raw["signatures"].as_u64().unwrap_or(0) > 0, "{raw}");
}

/// With a software token (the softhsm2 profile) and no --threads, a short
/// probe of one signature and one check sizes the sessions; --threads or
/// -P leave the count alone.
#[test]
fn a_software_tokens_sessions_are_sized_by_a_probe() {
    require_verifiers();
    let p = Project::new();
    let mut zone = String::from(
        "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..2500 {
        zone.push_str(&format!("host{i} A 192.0.2.{}\n", i % 250 + 1));
    }
    std::fs::write(p.file("big.zone"), zone).unwrap();
    p.create_key("big.example", "both", "ECDSAP256SHA256");
    let sign = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "--json",
            "sign",
            "big.zone",
            "-o",
            "big.example",
            "-f",
            "big.signed",
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(&p.run(&args).ok()).unwrap()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = sign(&[]);
    independent_verifiers(&p.file("big.signed"), "big.example");
    if cores > 1 {
        let probe = &run["session_probe"];
        let (s, v) = (
            probe["sign_us"].as_f64().unwrap(),
            probe["check_us"].as_f64().unwrap(),
        );
        assert!(s > 0.0 && v > 0.0, "{run}");
        assert_eq!(probe["cores"], cores, "{run}");
        let expect = ((cores as f64 * s / (s + v)).round() as usize).clamp(1, cores);
        assert_eq!(probe["sessions"], expect, "{run}");
        assert_eq!(run["threads"], expect, "{run}");
    } else {
        println!("one core: nothing for the probe to size");
        assert!(run["session_probe"].is_null(), "{run}");
    }
    let given = sign(&["--threads", "2"]);
    assert!(given["session_probe"].is_null(), "{given}");
    assert_eq!(given["threads"], 2);
    let unchecked = sign(&["-P"]);
    assert!(unchecked["session_probe"].is_null(), "{unchecked}");
    assert_eq!(unchecked["threads"], cores.min(16));
}

/// The signed zone survives a crash once `sign` says it is written: its
/// data is synced, it is renamed into place, and then the directory that
/// holds the rename is synced. Seen with strace; skipped without it.
#[test]
fn the_signed_zone_is_synced_renamed_and_its_directory_synced() {
    let traced = Command::new("strace").arg("-V").output();
    if !traced.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("skipped: strace is not installed (apt-get install -y strace)");
        return;
    }
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "csk", "13");
    let log = p.file("strace.log");
    let out = Command::new("strace")
        .current_dir(p.path())
        .env_remove("SOFTHSM2_CONF")
        .env_remove("DNSSEAL_CONFIG")
        .envs((p.token == TokenKind::Kryoptic).then(|| ("KRYOPTIC_CONF", p.token_conf())))
        .env("DNSSEAL_PIN", common::PIN)
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
        ])
        .arg("-o")
        .arg(&log)
        .arg(common::dnsseal_bin())
        .args(["sign", "example.zone", "-o", "example", "-f", "out.signed"])
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("ptrace") || err.contains("Operation not permitted") {
            eprintln!("skipped: strace cannot trace here: {err}");
            return;
        }
        panic!("sign under strace failed: {err}");
    }
    let trace = std::fs::read_to_string(&log).unwrap();
    let dir = std::fs::canonicalize(p.path()).unwrap();
    let dir = dir.display().to_string();
    let lines: Vec<&str> = trace.lines().collect();
    let renamed = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains("out.signed\"") && l.contains(" = 0"))
        .unwrap_or_else(|| panic!("no rename onto out.signed:\n{trace}"));
    let synced_before = lines[..renamed].iter().any(|l| {
        (l.contains("fsync(") || l.contains("fdatasync("))
            && l.contains(&format!("{dir}/"))
            && l.contains(" = 0")
    });
    assert!(
        synced_before,
        "the temporary file was not synced before the rename:\n{trace}"
    );
    // The very next sync of the renaming thread is the directory's (the
    // keystore's SQLite transaction later syncs the same directory too, so
    // "some time after" would prove nothing).
    let pid = lines[renamed].split_whitespace().next().unwrap_or("");
    let next_sync = lines[renamed + 1..]
        .iter()
        .find(|l| l.starts_with(pid) && (l.contains("fsync(") || l.contains("fdatasync(")));
    let dir_synced_after = next_sync.is_some_and(|l| {
        l.contains("fsync(") && l.contains(&format!("<{dir}>")) && l.contains(" = 0")
    });
    assert!(
        dir_synced_after,
        "the directory was not synced after the rename:\n{trace}"
    );
    assert!(p.file("out.signed").exists());
}

/// Replaces `from` by `to` (same length) in a signed zone file and makes
/// its signing state agree: the zone file's digest in the state and the
/// state's own digest, as anyone who can write the output directory can.
fn forge_signed_and_state(p: &Project, signed: &str, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let path = p.file(signed);
    let before = std::fs::read(&path).unwrap();
    let text = String::from_utf8(before.clone()).unwrap();
    assert!(text.contains(from), "{from} not in {signed}");
    let after = text.replacen(from, to, 1).into_bytes();
    std::fs::write(&path, &after).unwrap();
    let state_path = p.file(&format!("{signed}.dnsseal-state"));
    let mut state = std::fs::read(&state_path).unwrap();
    let old = *blake3::hash(&before).as_bytes();
    let at = state
        .windows(32)
        .position(|w| w == old)
        .expect("the state holds the signed zone's digest");
    state[at..at + 32].copy_from_slice(blake3::hash(&after).as_bytes());
    let n = state.len();
    let own = blake3::hash(&state[..n - 32]);
    state[n - 32..].copy_from_slice(own.as_bytes());
    std::fs::write(&state_path, &state).unwrap();
}

/// A project with one ECDSA key, example.zone signed into v1.signed (with
/// its state), and a function that signs example.zone incrementally.
fn signed_once() -> Project {
    let p = Project::new();
    std::fs::write(p.file("example.zone"), ZONE).unwrap();
    p.create_key("example", "both", "13");
    p.run(&["sign", "example.zone", "-o", "example", "-f", "v1.signed"])
        .ok();
    p
}

fn sign_incremental(p: &Project, previous: &str, output: &str) -> serde_json::Value {
    let out = p
        .run(&[
            "--json",
            "sign",
            "example.zone",
            "-o",
            "example",
            "--incremental",
            previous,
            "-f",
            output,
        ])
        .ok();
    serde_json::from_str(&out).unwrap()
}

/// Whoever can write the signed zone and its state, but cannot use the
/// token's keys, gets no record into the next --incremental output: a
/// record planted in the text, with the state made to match, is not
/// carried over (the state's seal fails and the text is read instead).
#[test]
fn a_record_planted_in_the_previous_output_and_its_state_is_not_carried_over() {
    let p = signed_once();
    let clean = sign_incremental(&p, "v1.signed", "clean.signed");
    assert_eq!(clean["incremental_from"], "state", "{clean}");
    std::fs::copy(p.file("v1.signed"), p.file("planted.signed")).unwrap();
    std::fs::copy(
        p.file("v1.signed.dnsseal-state"),
        p.file("planted.signed.dnsseal-state"),
    )
    .unwrap();
    forge_signed_and_state(&p, "planted.signed", "192.0.2.80", "192.0.2.66");
    let out = sign_incremental(&p, "planted.signed", "v2.signed");
    assert_eq!(out["incremental_from"], "text", "{out}");
    let v2 = std::fs::read_to_string(p.file("v2.signed")).unwrap();
    assert!(
        !v2.contains("192.0.2.66"),
        "the planted record was carried over"
    );
    assert!(v2.contains("192.0.2.80"));
    // Nothing changed in the zone: every signature is still good.
    assert_eq!(out["signatures_generated"], clean["signatures_generated"]);
    assert_eq!(out["signatures_retained"], clean["signatures_retained"]);
    p.run(&["verify", "v2.signed", "-o", "example"]).ok();
    if Path::new("/usr/bin/dnssec-verify").exists() {
        independent_verifiers(&p.file("v2.signed"), "example.");
    }
}

/// A damaged signature in a previous output read as text (it has no state)
/// is checked and replaced, not copied into the next output.
#[test]
fn a_damaged_signature_in_the_previous_text_is_replaced() {
    let p = signed_once();
    // sip's A RRSIG with one signature character changed.
    let text = std::fs::read_to_string(p.file("v1.signed")).unwrap();
    let line = rrsigs(&text)
        .into_iter()
        .find(|l| l.starts_with("sip.") && l.split('\t').nth(4).unwrap().starts_with("A "))
        .expect("sip's A RRSIG")
        .to_string();
    let sig = line.rsplit(' ').next().unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let damaged_line = format!("{}{flipped}{}", &line[..line.len() - sig.len()], &sig[1..]);
    std::fs::write(
        p.file("damaged.signed"),
        text.replacen(&line, &damaged_line, 1),
    )
    .unwrap();
    let out = sign_incremental(&p, "damaged.signed", "v3.signed");
    assert_eq!(out["incremental_from"], "text", "{out}");
    assert_eq!(out["signatures_generated"], 1, "{out}");
    let v3 = std::fs::read_to_string(p.file("v3.signed")).unwrap();
    assert!(
        !v3.contains(&damaged_line),
        "the damaged signature was kept"
    );
    p.run(&["verify", "v3.signed", "-o", "example"]).ok();
    if Path::new("/usr/bin/dnssec-verify").exists() {
        independent_verifiers(&p.file("v3.signed"), "example.");
    }
}
