//! The audit key in the token: one ECDSA P-256 key pair per keystore,
//! labelled `dnsseal-audit`, never a DNSSEC key (it is in no zone and
//! signs no RRset). It is made under the keystore's journal like every key
//! pair ([`super::create`]), checked by its attributes before each use like
//! a DNSSEC key ([`super::objects`]), and signs checkpoints of the audit
//! log ([`crate::audit::checkpoint`]).

use sha2::{Digest, Sha256};

use crate::audit::checkpoint::{self, Checkpoint, PublicKey as AuditPublicKey};
use crate::audit::Head;
use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::keystore::{AuditKeyRecord, Keystore, Origin};
use crate::token::{KeyObjects, KeySpec, PublicKey, SignMechanism, UserSession};

/// The CKA_LABEL of the audit key's objects.
pub const LABEL: &str = "dnsseal-audit";

/// Makes the audit key in the token and records it; refuses when the
/// keystore has one (an audit key is the auditors' trust anchor: a new one
/// is a deliberate step, not a side effect).
pub fn create(
    ks: &mut Keystore,
    session: &UserSession,
    serial: &str,
    cka_id_len: usize,
    now: Timestamp,
) -> anyhow::Result<(AuditKeyRecord, AuditPublicKey)> {
    if let Some(old) = ks.audit_key()? {
        return Err(Failure::Refused(format!(
            "the keystore has an audit key already (CKA_ID {} in token {}); `dnsseal audit key -o FILE` writes its public key",
            hex::encode(&old.cka_id),
            old.token_serial
        ))
        .into());
    }
    let id = session.fresh_id(cka_id_len)?;
    ks.add_pending(serial, &id, now)?;
    let made = session.generate(KeySpec::EcP256, &id, LABEL, KeyObjects::TokenObjects);
    let point = match made {
        Ok(PublicKey::Ec { point }) => point,
        other => {
            let _ = session.destroy(&id);
            ks.remove_pending(serial, &id)?;
            return Err(match other {
                Err(e) => e.into(),
                Ok(_) => anyhow::anyhow!("the token returned no EC public key"),
            });
        }
    };
    let public = AuditPublicKey::from_point(&point).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = AuditKeyRecord {
        token_serial: serial.to_string(),
        cka_id: id.clone(),
        public_key: point,
    };
    ks.set_audit_key(&record)?;
    ks.remove_pending(serial, &id)?;
    Ok((record, public))
}

/// The recorded audit key and its public key; an error saying how to make
/// one when there is none.
pub fn recorded(ks: &Keystore) -> anyhow::Result<(AuditKeyRecord, AuditPublicKey)> {
    let record = ks.audit_key()?.ok_or_else(|| {
        Failure::Refused(
            "no audit key: make one with `dnsseal audit key --create` (in the token, once)".into(),
        )
    })?;
    let public = AuditPublicKey::from_point(&record.public_key)
        .map_err(|e| Failure::Drift(format!("the keystore's audit public key is unusable: {e}")))?;
    Ok((record, public))
}

/// Signs a checkpoint of `head` with the audit key, after checking its
/// token objects (the recorded public key, generated in the token,
/// sensitive, never extractable, sign only); the signature is verified
/// with the recorded public key before it is used.
pub fn sign_checkpoint(
    session: &UserSession,
    serial: &str,
    record: &AuditKeyRecord,
    public: &AuditPublicKey,
    head: &Head,
) -> anyhow::Result<Checkpoint> {
    if record.token_serial != serial {
        return Err(Failure::Refused(format!(
            "the audit key lives in token serial {}, not in the configured token {serial}",
            record.token_serial
        ))
        .into());
    }
    let held = session.key_pair(&record.cka_id)?;
    let mut problems = super::objects::problems(KeySpec::EcP256, Origin::Generated, &held);
    if session.public_key(&record.cka_id, KeySpec::EcP256)?
        != (PublicKey::Ec {
            point: record.public_key.clone(),
        })
    {
        problems.push("the token holds another public key under its CKA_ID".into());
    }
    if !problems.is_empty() {
        return Err(Failure::Drift(format!(
            "audit key (CKA_ID {}): {}; dnsseal does not sign checkpoints with it",
            hex::encode(&record.cka_id),
            problems.join("; ")
        ))
        .into());
    }
    let digest = Sha256::digest(checkpoint::message(head.seq, &head.hash));
    let raw = session.sign(&record.cka_id, SignMechanism::Ecdsa, &digest)?;
    checkpoint::make(head.seq, &head.hash, public, &raw)
        .map_err(|e| Failure::Verify(format!("audit checkpoint: {e}")).into())
}
