//! Host signature verifiers side by side, per DNSSEC algorithm: `ring` and
//! `aws-lc-rs` on the same signatures, in one run, and the verifier the
//! signer uses (`dnsseal::sign::verify`). The signer picks, per algorithm,
//! the one that measures faster here; run this to re-check the choice on
//! new hardware or crate versions:
//!
//!     cargo bench --bench verify
//!
//! Software keys made for the benchmark only; no token is involved.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as awslc, KeyPair as _};
use dnsseal::zone::Algorithm;

/// A verifier under test: message, signature, verdict.
type Verifier<'a> = &'a dyn Fn(&[u8], &[u8]) -> bool;

/// Messages about the size of an RRSIG signing input for a delegation.
fn messages() -> Vec<Vec<u8>> {
    (0..2000u32)
        .map(|i| {
            let mut m = vec![0u8; 120];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        })
        .collect()
}

/// Whether this is `cargo bench` (which passes `--bench`) rather than
/// `cargo test --all-targets`, where one pass checks the verifiers only.
fn timing() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Verifications per second of `f` over every (message, signature) pair,
/// best of three passes of at least half a second (one pass under test).
fn rate(msgs: &[Vec<u8>], sigs: &[Vec<u8>], f: Verifier<'_>) -> f64 {
    if !timing() {
        for (m, s) in msgs.iter().zip(sigs) {
            assert!(f(m, s), "a good signature failed to verify");
        }
        return 0.0;
    }
    let mut best = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(500) {
            for (m, s) in msgs.iter().zip(sigs) {
                assert!(f(m, s), "a good signature failed to verify");
                n += 1;
            }
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn report(name: &str, msgs: &[Vec<u8>], sigs: &[Vec<u8>], fs: [Verifier<'_>; 3]) {
    // A verifier that accepts anything would make any figure meaningless.
    let mut bad = sigs[0].clone();
    bad[sigs[0].len() / 2] ^= 1;
    for f in fs {
        assert!(!f(&msgs[0], &bad), "{name}: a corrupted signature verified");
    }
    let [r, a, ours] = fs.map(|f| rate(msgs, sigs, f));
    if !timing() {
        println!("{name:<16} good signatures pass and a corrupted one fails, all three verifiers");
        return;
    }
    println!(
        "{name:<16} ring {r:>8.0}/s  aws-lc-rs {a:>8.0}/s  aws-lc-rs/ring {:>5.2}  dnsseal {ours:>8.0}/s",
        a / r
    );
}

fn main() {
    if !timing() {
        println!("verify: checking the verifiers only; `cargo bench --bench verify` times them");
    }
    let rng = SystemRandom::new();
    let msgs = messages();

    for (name, alg, signing, ring_alg, awslc_alg) in [
        (
            "ECDSAP256SHA256",
            Algorithm::EcdsaP256Sha256,
            &awslc::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &awslc::ECDSA_P256_SHA256_FIXED,
        ),
        (
            "ECDSAP384SHA384",
            Algorithm::EcdsaP384Sha384,
            &awslc::ECDSA_P384_SHA384_FIXED_SIGNING,
            &ring::signature::ECDSA_P384_SHA384_FIXED,
            &awslc::ECDSA_P384_SHA384_FIXED,
        ),
    ] {
        let pkcs8 = awslc::EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("key");
        let key = awslc::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).expect("key");
        let point = key.public_key().as_ref().to_vec();
        let sigs: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| key.sign(&rng, m).expect("sign").as_ref().to_vec())
            .collect();
        let dnskey = point[1..].to_vec();
        report(
            name,
            &msgs,
            &sigs,
            [
                &|m, s| {
                    ring::signature::UnparsedPublicKey::new(ring_alg, &point)
                        .verify(m, s)
                        .is_ok()
                },
                &|m, s| {
                    awslc::UnparsedPublicKey::new(awslc_alg, &point)
                        .verify(m, s)
                        .is_ok()
                },
                &|m, s| dnsseal::sign::verify(alg, &dnskey, m, s),
            ],
        );
    }

    let pkcs8 = awslc::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let key = awslc::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let public = key.public_key().as_ref().to_vec();
    let sigs: Vec<Vec<u8>> = msgs.iter().map(|m| key.sign(m).as_ref().to_vec()).collect();
    report(
        "ED25519",
        &msgs,
        &sigs,
        [
            &|m, s| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
                    .verify(m, s)
                    .is_ok()
            },
            &|m, s| {
                awslc::UnparsedPublicKey::new(&awslc::ED25519, &public)
                    .verify(m, s)
                    .is_ok()
            },
            &|m, s| dnsseal::sign::verify(Algorithm::Ed25519, &public, m, s),
        ],
    );

    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
    let der = key.public_key().as_ref().to_vec();
    let components = awslc::RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
    // DNSKEY RSA public key field (RFC 3110 §2): exponent length, exponent, modulus.
    let mut dnskey = vec![components.e.len() as u8];
    dnskey.extend_from_slice(&components.e);
    dnskey.extend_from_slice(&components.n);
    let sigs: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut s = vec![0u8; key.public_modulus_len()];
            key.sign(&awslc::RSA_PKCS1_SHA256, &rng, m, &mut s)
                .expect("sign");
            s
        })
        .collect();
    report(
        "RSASHA256-2048",
        &msgs,
        &sigs,
        [
            &|m, s| {
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    &der,
                )
                .verify(m, s)
                .is_ok()
            },
            &|m, s| {
                awslc::UnparsedPublicKey::new(&awslc::RSA_PKCS1_2048_8192_SHA256, &der)
                    .verify(m, s)
                    .is_ok()
            },
            &|m, s| dnsseal::sign::verify(Algorithm::RsaSha256, &dnskey, m, s),
        ],
    );
}
