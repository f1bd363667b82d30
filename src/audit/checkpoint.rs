//! Signed checkpoints: the audit key (an ECDSA P-256 key pair of its own
//! in the token, never a DNSSEC key) signs the chain's head, and the
//! signature goes into the chain as a record of its own. Anyone with an
//! export and the audit public key can then check, on another machine,
//! that the log is unaltered and complete up to its last checkpoint.
//!
//! What a checkpoint signs is text, so that an auditor can check it with
//! OpenSSL alone ([`message`]): `dnsseal audit checkpoint` NL `seq N` NL
//! `hash H` NL, for record N (the head when the checkpoint was made) and
//! its hash H. The signature is ECDSA P-256 with SHA-256 in DER, base64 in
//! the record; the key is named by the SHA-256 of its DER
//! SubjectPublicKeyInfo (what `openssl pkey -pubin -outform DER | sha256sum`
//! prints).
//!
//! This module is pure: the token signs through the caller
//! ([`crate::keys::audit_key`]).

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Record;

/// The command name of a checkpoint record.
pub const COMMAND: &str = "audit checkpoint";

/// What a checkpoint record carries besides the common fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The record signed (the head when the checkpoint was made).
    pub seq: u64,
    pub hash: String,
    /// The audit key: SHA-256 of its DER SubjectPublicKeyInfo, hex.
    pub key: String,
    /// ECDSA P-256 / SHA-256 signature over [`message`], DER, base64.
    pub signature: String,
}

/// The text a checkpoint of record `seq` with hash `hash` signs.
pub fn message(seq: u64, hash: &str) -> Vec<u8> {
    format!("dnsseal audit checkpoint\nseq {seq}\nhash {hash}\n").into_bytes()
}

/// An audit public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From the token's EC point (X || Y, no 0x04 prefix, 64 octets).
    pub fn from_point(point: &[u8]) -> Result<PublicKey, String> {
        let mut sec1 = Vec::with_capacity(point.len() + 1);
        sec1.push(0x04);
        sec1.extend_from_slice(point);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map(PublicKey)
            .map_err(|_| "not a P-256 public key".to_string())
    }

    /// From a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str) -> Result<PublicKey, String> {
        VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|e| format!("not a P-256 public key in PEM: {e}"))
    }

    /// PEM SubjectPublicKeyInfo, for auditors.
    pub fn to_pem(&self) -> Result<String, String> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo, hex.
    pub fn fingerprint(&self) -> String {
        match self.0.to_public_key_der() {
            Ok(der) => hex::encode(Sha256::digest(der.as_bytes())),
            Err(_) => String::new(),
        }
    }

    fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        Signature::from_der(der).is_ok_and(|sig| self.0.verify(message, &sig).is_ok())
    }
}

/// A checkpoint of record `seq` (hash `hash`) from the token's raw r || s
/// signature over the SHA-256 of [`message`], checked with `key` before it
/// is used.
pub fn make(seq: u64, hash: &str, key: &PublicKey, raw: &[u8]) -> Result<Checkpoint, String> {
    let sig = Signature::from_slice(raw).map_err(|_| {
        format!(
            "the token returned {} octets, not a P-256 signature",
            raw.len()
        )
    })?;
    let der = sig.to_der();
    if !key.verifies(&message(seq, hash), der.as_bytes()) {
        return Err("the token's signature does not verify with the audit public key".into());
    }
    use base64::Engine as _;
    Ok(Checkpoint {
        seq,
        hash: hash.to_string(),
        key: key.fingerprint(),
        signature: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
    })
}

/// What the checkpoints of an intact chain say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Checkpoint records (seq, hash of the checkpoint record), in order.
    pub checkpoints: Vec<(u64, String)>,
    /// The last record a checkpoint signed.
    pub covered: u64,
    /// Records after the last checkpoint record, which no signature
    /// covers yet.
    pub uncovered: u64,
}

/// Checks every checkpoint in `records` (an intact chain, or an excerpt of
/// one) against `keys`: each must be signed by one of them and sign the
/// record of the chain it names. With `want`, a checkpoint record with
/// that hash must be among them (the export reaches it). The error names
/// the first record that fails.
pub fn verify(
    records: &[Record],
    keys: &[PublicKey],
    want: Option<&str>,
) -> Result<Signed, String> {
    use base64::Engine as _;
    let mut checkpoints = Vec::new();
    let mut covered = 0;
    for r in records.iter().filter(|r| r.command == COMMAND) {
        let Some(cp) = &r.checkpoint else {
            return Err(format!(
                "record {}: a checkpoint without its signature",
                r.seq
            ));
        };
        let signed = records.iter().find(|s| s.seq == cp.seq);
        if signed.is_none_or(|s| s.hash != cp.hash) || cp.seq >= r.seq {
            return Err(format!(
                "record {}: signs record {} with hash {}, which this log does not hold",
                r.seq, cp.seq, cp.hash
            ));
        }
        let Some(key) = keys.iter().find(|k| k.fingerprint() == cp.key) else {
            return Err(format!(
                "record {}: signed by audit key {}, not by the key given",
                r.seq, cp.key
            ));
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(&cp.signature)
            .unwrap_or_default();
        if !key.verifies(&message(cp.seq, &cp.hash), &der) {
            return Err(format!(
                "record {}: the checkpoint's signature does not verify (record {} or the checkpoint was altered)",
                r.seq, cp.seq
            ));
        }
        checkpoints.push((r.seq, r.hash.clone()));
        covered = cp.seq;
    }
    if checkpoints.is_empty() {
        return Err("no checkpoint: nothing in this log is signed".into());
    }
    if let Some(want) = want {
        if !checkpoints.iter().any(|(_, h)| h == want) {
            return Err(format!(
                "does not reach checkpoint {want}: it is not in this log (records cut off, or another log)"
            ));
        }
    }
    let last = records.last().map_or(0, |r| r.seq);
    let last_checkpoint = checkpoints.last().map_or(0, |c| c.0);
    Ok(Signed {
        checkpoints,
        covered,
        uncovered: last.saturating_sub(last_checkpoint),
    })
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;

    use super::*;
    use crate::audit::{append, verify_reader, Event};
    use crate::clock::Timestamp;

    /// A software audit key (the token's stand-in) and its public key.
    fn key(seed: u8) -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_slice(&[seed; 32]).unwrap();
        let point = sk.verifying_key().to_sec1_point(false);
        let public = PublicKey::from_point(&point.as_bytes()[1..]).unwrap();
        (sk, public)
    }

    /// Signs like the token: r || s over the SHA-256 of the message.
    fn raw(sk: &SigningKey, seq: u64, hash: &str) -> Vec<u8> {
        let sig: Signature = sk.sign(&message(seq, hash));
        sig.to_bytes().to_vec()
    }

    /// A log of `n` records with a checkpoint after every `every`, by `sk`.
    fn log(n: u64, every: u64, sk: &SigningKey, public: &PublicKey) -> Vec<Record> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut head = None;
        let at = Timestamp::from_unix(1_700_000_000);
        for i in 1..=n {
            let event = Event {
                command: "test".into(),
                detail: format!("event {i}"),
                ..Event::default()
            };
            let h = append(&path, at, &event, head.as_ref()).unwrap();
            head = Some(h.clone());
            if i % every == 0 {
                let cp = make(h.seq, &h.hash, public, &raw(sk, h.seq, &h.hash)).unwrap();
                let event = Event {
                    command: COMMAND.into(),
                    checkpoint: Some(cp),
                    ..Event::default()
                };
                head = Some(append(&path, at, &event, head.as_ref()).unwrap());
            }
        }
        let text = std::fs::read(&path).unwrap();
        verify_reader(text.as_slice()).unwrap().0
    }

    #[test]
    fn the_message_is_text_an_auditor_can_rebuild() {
        assert_eq!(
            message(7, "ab12"),
            b"dnsseal audit checkpoint\nseq 7\nhash ab12\n".to_vec()
        );
    }

    #[test]
    fn a_token_signature_becomes_a_checkpoint_only_if_it_verifies() {
        let (sk, public) = key(1);
        let cp = make(3, "aa", &public, &raw(&sk, 3, "aa")).unwrap();
        assert_eq!(cp.key, public.fingerprint());
        assert_eq!(public.fingerprint().len(), 64);
        // Over another record, by another key, or not a signature at all.
        assert!(make(3, "ab", &public, &raw(&sk, 3, "aa")).is_err());
        let (other, _) = key(2);
        assert!(make(3, "aa", &public, &raw(&other, 3, "aa")).is_err());
        assert!(make(3, "aa", &public, &[0u8; 10]).is_err());
        // The PEM form reads back as the same key.
        let pem = public.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), public);
    }

    #[test]
    fn checkpoints_cover_the_log_up_to_the_last_one() {
        let (sk, public) = key(1);
        let records = log(7, 3, &sk, &public);
        // Events 1-3 are records 1-3, checkpoint 4 signs 3; events 4-6 are
        // 5-7, checkpoint 8 signs 7; event 7 is record 9.
        let signed = verify(&records, std::slice::from_ref(&public), None).unwrap();
        assert_eq!(signed.checkpoints.len(), 2);
        assert_eq!(signed.covered, 7);
        assert_eq!(signed.uncovered, 1);
        let first = signed.checkpoints[0].1.clone();
        assert!(verify(&records, std::slice::from_ref(&public), Some(&first)).is_ok());
        // Cut after the first checkpoint: the second is not reached.
        let second = signed.checkpoints[1].1.clone();
        let cut = &records[..5];
        let e = verify(cut, std::slice::from_ref(&public), Some(&second)).unwrap_err();
        assert!(e.contains("does not reach checkpoint"), "{e}");
        // Another key.
        let (_, stranger) = key(9);
        let e = verify(&records, &[stranger], None).unwrap_err();
        assert!(e.contains("record 4: signed by audit key"), "{e}");
        // No checkpoint at all.
        let e = verify(&records[..3], &[public], None).unwrap_err();
        assert!(e.contains("no checkpoint"), "{e}");
    }

    #[test]
    fn a_rewritten_chain_fails_at_its_checkpoint() {
        let (sk, public) = key(1);
        let mut records = log(4, 2, &sk, &public);
        // Record 2 edited and the whole chain's hashes computed again: the
        // chain is intact, the checkpoint's signature no longer matches.
        records[1].detail = "something else".into();
        let mut prev = crate::audit::GENESIS.to_string();
        for r in &mut records {
            r.prev = prev.clone();
            r.hash = r.compute_hash();
            prev = r.hash.clone();
        }
        let e = verify(&records, std::slice::from_ref(&public), None).unwrap_err();
        assert!(e.contains("record 3: signs record 2"), "{e}");
        // A forged signature over the new hash, by a key that is not the
        // audit key, fails too.
        let (other, other_public) = key(3);
        let edited = records[1].hash.clone();
        let cp = records[2].checkpoint.as_mut().unwrap();
        cp.hash = edited;
        let forged = make(2, &cp.hash, &other_public, &raw(&other, 2, &cp.hash)).unwrap();
        cp.signature = forged.signature;
        let e = verify(&records, &[public], None).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
    }
}
