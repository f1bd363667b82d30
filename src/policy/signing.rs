//! Which keys a signing run uses, and the CDS/CDNSKEY set it publishes: pure
//! functions of the zone's key records and policy.
//!
//! - [`zone_keys`]: the keys published in the DNSKEY RRset, the keys that
//!   sign the DNSKEY, CDS and CDNSKEY RRsets (KSKs and CSKs, a revoked key
//!   too: RFC 5011 §2.1), and those that sign the rest (ZSKs and CSKs).
//!   Refused: a zone without an active signer of either kind, a published
//!   algorithm that does not sign every RRset (RFC 4035 §2.2, RFC 6781
//!   §4.1.4), a key in another token than the configured one, an algorithm
//!   dnsseal cannot sign with.
//! - [`cds_rdata`]: the CDS and CDNSKEY RDATA (RFC 7344) while the parent
//!   should act on a DS change, the RFC 8078 delete form when it should hold
//!   no DS, nothing otherwise.
//!
//! No I/O; the caller reads the records and carries the result out.

use crate::failure::Failure;
use crate::keystore::{KeyRecord, KeyState, Role};
use crate::policy::Policy;
use crate::zone::ZoneName;

/// The keys of a zone that the keystore says are published and signing.
#[derive(Debug, Clone)]
pub struct ZoneKeys {
    pub published: Vec<KeyRecord>,
    /// Sign the DNSKEY, CDS and CDNSKEY RRsets.
    pub ksks: Vec<KeyRecord>,
    /// Sign everything else.
    pub zsks: Vec<KeyRecord>,
    /// Every key of the zone that is not destroyed (for CDS/CDNSKEY).
    pub all: Vec<KeyRecord>,
    /// Every signing key once (KSKs first): index `i` here is key `i` of
    /// the token's signer pool.
    pub signing: Vec<KeyRecord>,
    /// Indexes into `signing` of the keys in `ksks`.
    pub ksk_index: Vec<usize>,
    /// Indexes into `signing` of the keys in `zsks`.
    pub zsk_index: Vec<usize>,
    /// An offline-KSK zone's DNSKEY, CDS and CDNSKEY RRsets and their KSK
    /// signatures, from the imported SKR ([`zone_keys_offline`]); `None`
    /// when the KSKs are in the token.
    pub presigned: Option<Presigned>,
}

/// The apex key RRsets of one period of an imported SKR, signed by the
/// offline KSKs: published as they are, never signed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The SKR period in force, and when the SKR runs out.
    pub period: crate::clock::Timestamp,
    pub ends: crate::clock::Timestamp,
    pub dnskey_ttl: u32,
    /// RDATA (wire form) of the DNSKEY, CDS and CDNSKEY records.
    pub dnskeys: Vec<Vec<u8>>,
    pub cds_ttl: u32,
    pub cds: Vec<Vec<u8>>,
    pub cdnskey: Vec<Vec<u8>>,
    /// RRSIG RDATA over the three RRsets.
    pub rrsigs: Vec<Vec<u8>>,
}

/// Sorts a zone's key records into what is published and what signs
/// (which token holds them is checked by [`ZoneKeys::in_token`]).
pub fn zone_keys(records: Vec<KeyRecord>, zone: &ZoneName) -> Result<ZoneKeys, Failure> {
    let all: Vec<KeyRecord> = records
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    let published: Vec<KeyRecord> = all
        .iter()
        .filter(|r| r.state.is_published())
        .cloned()
        .collect();
    let signing = |roles: &[Role], dnskey: bool| -> Vec<KeyRecord> {
        all.iter()
            .filter(|r| r.state.is_signing() && roles.contains(&r.role))
            // A revoked key signs the DNSKEY RRset only (RFC 5011 §2.1).
            .filter(|r| dnskey || r.state != KeyState::Revoked)
            .cloned()
            .collect()
    };
    let ksks = signing(&[Role::Ksk, Role::Csk], true);
    let zsks = signing(&[Role::Zsk, Role::Csk], false);
    if ksks.is_empty() || zsks.is_empty() {
        return Err(Failure::Refused(format!(
            "{zone} has no active {}: see `dnsseal keys list {zone}`, or create keys with `dnsseal keys create {zone} --role both --algorithm ECDSAP256SHA256` (or `dnsseal policy run {zone}`)",
            if ksks.is_empty() { "KSK or CSK" } else { "ZSK or CSK" }
        )));
    }
    every_algorithm_signs(&published, &ksks, &zsks)?;
    let (signing, ksk_index, zsk_index) = signing_set(&ksks, &zsks);
    Ok(ZoneKeys {
        published,
        ksks,
        zsks,
        all,
        signing,
        ksk_index,
        zsk_index,
        presigned: None,
    })
}

/// The keys of an offline-KSK zone: the ZSKs the keystore says sign, each
/// of which must be in the SKR period's DNSKEY RRset, which is what the
/// zone publishes (with its CDS/CDNSKEY and KSK signatures). Refused: a
/// KSK or CSK that signs on this box, no active ZSK, an active ZSK the
/// period does not publish, a published algorithm without an active ZSK.
pub fn zone_keys_offline(
    records: Vec<KeyRecord>,
    zone: &ZoneName,
    presigned: Presigned,
) -> Result<ZoneKeys, Failure> {
    let all: Vec<KeyRecord> = records
        .into_iter()
        .filter(|r| r.state != KeyState::Destroyed)
        .collect();
    if let Some(k) = all
        .iter()
        .find(|k| k.role != Role::Zsk && (k.state.is_signing() || k.state.is_published()))
    {
        return Err(Failure::Refused(format!(
            "{} {} of {zone} is in the zone on this box, but the zone's policy says offline-ksk: its KSK lives on the offline box. Remove the key (`dnsseal keys delete`), or set offline-ksk = false",
            k.role.as_str().to_uppercase(),
            k.key_tag
        )));
    }
    let period = presigned.period;
    let zsks: Vec<KeyRecord> = all
        .iter()
        .filter(|r| r.state.is_signing() && r.state != KeyState::Revoked)
        .cloned()
        .collect();
    if zsks.is_empty() {
        return Err(Failure::Refused(format!(
            "{zone} has no active ZSK: run `dnsseal policy run {zone}`"
        )));
    }
    let in_period = |k: &KeyRecord| presigned.dnskeys.contains(&k.dnskey().rdata());
    if let Some(k) = zsks.iter().find(|k| !in_period(k)) {
        return Err(Failure::Refused(format!(
            "ZSK {} of {zone} is active, but the SKR's DNSKEY RRset from {period} does not hold it: run `dnsseal policy run {zone}` to follow the ZSK schedule, or import an SKR that publishes it",
            k.key_tag
        )));
    }
    for d in &presigned.dnskeys {
        let key = crate::ksr::dnskey_from_rdata(d);
        let Some(key) = key.filter(|k| k.flags & crate::zone::dnskey::FLAG_SEP == 0) else {
            continue;
        };
        if !zsks.iter().any(|z| z.algorithm.number() == key.algorithm) {
            return Err(Failure::Refused(format!(
                "the SKR's DNSKEY RRset from {period} publishes ZSK {} (algorithm {}), but no active ZSK of that algorithm signs the zone (RFC 4035 §2.2): run `dnsseal policy run {zone}`",
                key.key_tag(),
                key.algorithm
            )));
        }
    }
    let published: Vec<KeyRecord> = all.iter().filter(|k| in_period(k)).cloned().collect();
    let (signing, ksk_index, zsk_index) = signing_set(&[], &zsks);
    Ok(ZoneKeys {
        published,
        ksks: Vec::new(),
        zsks,
        all,
        signing,
        ksk_index,
        zsk_index,
        presigned: Some(presigned),
    })
}

impl ZoneKeys {
    /// Refuses keys that live in a token other than the one with `serial`.
    pub fn in_token(&self, zone: &ZoneName, serial: &str) -> Result<(), Failure> {
        for k in self.published.iter().chain(&self.ksks).chain(&self.zsks) {
            if k.token_serial != serial {
                return Err(Failure::Refused(format!(
                    "key {} of {zone} lives in token serial {}, not in the configured token {serial}",
                    k.key_tag, k.token_serial
                )));
            }
        }
        Ok(())
    }
}

/// RFC 4035 §2.2: every algorithm in the DNSKEY RRset signs every RRset
/// (and RFC 6781 §4.1.4 publishes a new algorithm only once it does).
fn every_algorithm_signs(
    published: &[KeyRecord],
    ksks: &[KeyRecord],
    zsks: &[KeyRecord],
) -> Result<(), Failure> {
    for k in published {
        let signs_zone = zsks.iter().any(|z| z.algorithm == k.algorithm);
        let signs_keys = ksks.iter().any(|z| z.algorithm == k.algorithm);
        if !signs_zone || !signs_keys {
            return Err(Failure::Refused(format!(
                "key {} ({}) is published, but no active {} of algorithm {} signs the zone: every algorithm in the DNSKEY RRset must sign every RRset (RFC 4035 §2.2). Activate such keys, or remove key {} from the zone",
                k.key_tag,
                k.state,
                if signs_zone { "KSK/CSK" } else { "ZSK/CSK" },
                k.algorithm.number(),
                k.key_tag
            )));
        }
    }
    Ok(())
}

/// Signing keys once each, with the indexes of the KSKs and ZSKs in it.
type SigningSet = (Vec<KeyRecord>, Vec<usize>, Vec<usize>);

fn signing_set(ksks: &[KeyRecord], zsks: &[KeyRecord]) -> SigningSet {
    let mut signing: Vec<KeyRecord> = Vec::new();
    let mut index = |k: &KeyRecord| -> usize {
        if let Some(i) = signing.iter().position(|s| s.id == k.id) {
            return i;
        }
        signing.push(k.clone());
        signing.len() - 1
    };
    let ksk_index: Vec<usize> = ksks.iter().map(&mut index).collect();
    let zsk_index: Vec<usize> = zsks.iter().map(&mut index).collect();
    (signing, ksk_index, zsk_index)
}

/// RDATA of the records of one RRset, in wire form.
pub type RdataList = Vec<Vec<u8>>;

/// CDS and CDNSKEY RDATA (RFC 7344) while the parent should act on a DS
/// change: the DS of every key the parent should hold, or the RFC 8078
/// delete form when it should hold none. Nothing when no change is pending.
pub fn cds_rdata(
    all: &[KeyRecord],
    origin: &ZoneName,
    policy: &Policy,
) -> Result<(RdataList, RdataList), Failure> {
    if !all.iter().any(|k| k.ds.pending()) {
        return Ok((Vec::new(), Vec::new()));
    }
    let wanted: Vec<&KeyRecord> = all.iter().filter(|k| k.ds.wanted()).collect();
    // CDS/CDNSKEY can only name keys of the DNSKEY RRset (RFC 7344 §4.1;
    // parents and kzonecheck check it). While the parent should hold a DS
    // of a key not yet published (double-DS), it gets the DS out of band.
    if let Some(k) = wanted.iter().find(|k| !k.state.is_published()) {
        tracing::warn!(
            "the parent should add the DS of key {} of {origin}, which is not in the DNSKEY RRset yet: no CDS/CDNSKEY can ask for it; hand it over with `dnsseal keys ds {origin}`",
            k.key_tag
        );
        return Ok((Vec::new(), Vec::new()));
    }
    if wanted.is_empty() {
        return Ok((
            if policy.cds {
                vec![vec![0, 0, 0, 0, 0]]
            } else {
                Vec::new()
            },
            if policy.cdnskey {
                vec![vec![0, 0, 3, 0, 0]]
            } else {
                Vec::new()
            },
        ));
    }
    let digests = policy
        .digests()
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut cds = Vec::new();
    let mut cdnskey = Vec::new();
    for k in wanted {
        let dnskey = k.dnskey();
        if policy.cds {
            for d in &digests {
                cds.push(dnskey.ds(origin, *d).rdata());
            }
        }
        if policy.cdnskey {
            cdnskey.push(dnskey.rdata());
        }
    }
    cds.sort();
    cds.dedup();
    cdnskey.sort();
    cdnskey.dedup();
    Ok((cds, cdnskey))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{DsState, Origin, Timings};
    use crate::zone::Algorithm;

    const SERIAL: &str = "0123456789abcdef";

    fn zone() -> ZoneName {
        "example.".parse().unwrap()
    }

    /// A key record of `example.` in the configured token.
    fn key(id: i64, role: Role, state: KeyState, algorithm: u8) -> KeyRecord {
        KeyRecord {
            id,
            zone: "example.".parse().expect("a zone name"),
            key_tag: 1000 + id as u16,
            role,
            algorithm: crate::zone::Algorithm::from_number(algorithm).expect("a test algorithm"),
            bits: 256,
            flags: if role == Role::Zsk { 256 } else { 257 },
            public_key: vec![id as u8; 64],
            token_serial: SERIAL.into(),
            token_label: "dnsseal".into(),
            cka_id: vec![id as u8],
            cka_label: format!("key{id}"),
            state,
            ds: DsState::None,
            origin: Origin::Generated,
            timings: Timings::default(),
        }
    }

    fn refused(r: Result<ZoneKeys, Failure>) -> String {
        match r {
            Err(Failure::Refused(m)) => m,
            Err(other) => panic!("not refused but {other:?}"),
            Ok(k) => panic!("accepted: {:?}", k.signing),
        }
    }

    fn tags(keys: &[KeyRecord]) -> Vec<u16> {
        keys.iter().map(|k| k.key_tag).collect()
    }

    #[test]
    fn a_zone_without_an_active_ksk_or_zsk_is_refused() {
        let only_zsk = vec![key(1, Role::Zsk, KeyState::Active, 13)];
        assert!(refused(zone_keys(only_zsk, &zone())).contains("no active KSK or CSK"));
        let only_ksk = vec![key(1, Role::Ksk, KeyState::Active, 13)];
        assert!(refused(zone_keys(only_ksk, &zone())).contains("no active ZSK or CSK"));
        let standby = vec![
            key(1, Role::Ksk, KeyState::Active, 13),
            key(2, Role::Zsk, KeyState::Published, 13),
        ];
        assert!(refused(zone_keys(standby, &zone())).contains("no active ZSK or CSK"));
    }

    #[test]
    fn a_csk_alone_signs_both_kinds_of_rrset() {
        let keys = zone_keys(vec![key(1, Role::Csk, KeyState::Active, 13)], &zone()).unwrap();
        assert_eq!(tags(&keys.ksks), vec![1001]);
        assert_eq!(tags(&keys.zsks), vec![1001]);
        assert_eq!(tags(&keys.published), vec![1001]);
        assert_eq!(keys.signing.len(), 1);
        assert_eq!(keys.signing[0].algorithm, Algorithm::EcdsaP256Sha256);
        assert_eq!(
            (keys.ksk_index.clone(), keys.zsk_index.clone()),
            (vec![0], vec![0])
        );
    }

    #[test]
    fn ksk_and_zsk_get_their_own_pool_indexes_and_destroyed_keys_vanish() {
        let keys = zone_keys(
            vec![
                key(1, Role::Zsk, KeyState::Active, 13),
                key(2, Role::Ksk, KeyState::Active, 13),
                key(3, Role::Zsk, KeyState::Destroyed, 13),
            ],
            &zone(),
        )
        .unwrap();
        assert_eq!(tags(&keys.all), vec![1001, 1002]);
        let pool: Vec<u16> = keys.signing.iter().map(|k| k.key_tag).collect();
        assert_eq!(pool, vec![1002, 1001]);
        assert_eq!(
            (keys.ksk_index.clone(), keys.zsk_index.clone()),
            (vec![0], vec![1])
        );
    }

    #[test]
    fn a_revoked_key_signs_only_the_dnskey_rrset() {
        let keys = zone_keys(
            vec![
                key(1, Role::Csk, KeyState::Active, 13),
                key(2, Role::Csk, KeyState::Revoked, 13),
            ],
            &zone(),
        )
        .unwrap();
        assert_eq!(tags(&keys.ksks), vec![1001, 1002]);
        assert_eq!(tags(&keys.zsks), vec![1001]);
        assert_eq!(tags(&keys.published), vec![1001, 1002]);
    }

    #[test]
    fn a_published_algorithm_without_a_signing_key_is_refused() {
        // RFC 4035 §2.2: an Ed25519 KSK published, but only P-256 signs.
        let records = vec![
            key(1, Role::Csk, KeyState::Active, 13),
            key(2, Role::Ksk, KeyState::Published, 15),
        ];
        let why = refused(zone_keys(records, &zone()));
        assert!(why.contains("RFC 4035 §2.2"), "{why}");
        assert!(why.contains("key 1002"), "{why}");
        // Presigning (signatures before keys) is fine: not published yet.
        let records = vec![
            key(1, Role::Csk, KeyState::Active, 13),
            key(2, Role::Csk, KeyState::Presigning, 15),
        ];
        assert!(zone_keys(records, &zone()).is_ok());
    }

    #[test]
    fn a_key_in_another_token_is_refused() {
        let mut other = key(2, Role::Zsk, KeyState::Active, 13);
        other.token_serial = "fedcba9876543210".into();
        let records = vec![key(1, Role::Ksk, KeyState::Active, 13), other];
        let keys = zone_keys(records, &zone()).unwrap();
        let why = match keys.in_token(&zone(), SERIAL) {
            Err(Failure::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(why.contains("token serial fedcba9876543210"), "{why}");
        let same = key(1, Role::Csk, KeyState::Active, 13);
        let keys = zone_keys(vec![same], &zone()).unwrap();
        assert!(keys.in_token(&zone(), SERIAL).is_ok());
    }

    fn policy(cds: bool, cdnskey: bool) -> Policy {
        Policy {
            cds,
            cdnskey,
            ds_digests: vec!["SHA-256".into(), "SHA-384".into()],
            ..Policy::default()
        }
    }

    #[test]
    fn no_cds_while_no_ds_change_is_pending() {
        let mut k = key(1, Role::Csk, KeyState::Active, 13);
        k.ds = DsState::Seen;
        let (cds, cdnskey) = cds_rdata(&[k], &zone(), &policy(true, true)).unwrap();
        assert!(cds.is_empty() && cdnskey.is_empty());
    }

    #[test]
    fn the_delete_form_when_the_parent_should_hold_no_ds() {
        let mut k = key(1, Role::Csk, KeyState::Active, 13);
        k.ds = DsState::Retiring;
        let all = [k];
        let (cds, cdnskey) = cds_rdata(&all, &zone(), &policy(true, true)).unwrap();
        assert_eq!(cds, vec![vec![0, 0, 0, 0, 0]]);
        assert_eq!(cdnskey, vec![vec![0, 0, 3, 0, 0]]);
        let (cds, cdnskey) = cds_rdata(&all, &zone(), &policy(false, true)).unwrap();
        assert!(cds.is_empty());
        assert_eq!(cdnskey.len(), 1);
        let (cds, cdnskey) = cds_rdata(&all, &zone(), &policy(true, false)).unwrap();
        assert_eq!(cds.len(), 1);
        assert!(cdnskey.is_empty());
    }

    #[test]
    fn one_cds_per_digest_type_sorted_and_deduplicated() {
        let mut a = key(1, Role::Ksk, KeyState::Active, 13);
        a.ds = DsState::Submitted;
        let mut b = key(2, Role::Ksk, KeyState::Published, 13);
        b.ds = DsState::Seen;
        // The same key twice (a CSK listed under two records) adds nothing.
        let all = [a.clone(), b.clone(), a.clone()];
        let (cds, cdnskey) = cds_rdata(&all, &zone(), &policy(true, true)).unwrap();
        assert_eq!(cds.len(), 4, "two keys, two digest types");
        assert_eq!(cdnskey.len(), 2);
        let mut sorted = cds.clone();
        sorted.sort();
        assert_eq!(cds, sorted);
        let want = a
            .dnskey()
            .ds(&zone(), crate::zone::DigestType::Sha384)
            .rdata();
        assert!(cds.contains(&want));
        assert!(cdnskey.contains(&b.dnskey().rdata()));
    }

    #[test]
    fn nothing_while_a_wanted_key_is_not_yet_published() {
        let mut old = key(1, Role::Ksk, KeyState::Active, 13);
        old.ds = DsState::Retiring;
        let mut new = key(2, Role::Ksk, KeyState::Generated, 13);
        new.ds = DsState::Submitted;
        let (cds, cdnskey) = cds_rdata(&[old, new], &zone(), &policy(true, true)).unwrap();
        assert!(cds.is_empty() && cdnskey.is_empty());
    }

    #[test]
    fn an_unknown_digest_in_the_policy_is_bad_input() {
        let mut k = key(1, Role::Csk, KeyState::Active, 13);
        k.ds = DsState::Submitted;
        let mut p = policy(true, true);
        p.ds_digests = vec!["MD5".into()];
        assert!(matches!(
            cds_rdata(&[k], &zone(), &p),
            Err(Failure::BadInput(_))
        ));
    }

    fn presigned(keys: &[&KeyRecord]) -> Presigned {
        Presigned {
            period: crate::clock::Timestamp::from_unix(1_800_000_000),
            ends: crate::clock::Timestamp::from_unix(1_801_000_000),
            dnskey_ttl: 3600,
            dnskeys: keys.iter().map(|k| k.dnskey().rdata()).collect(),
            cds_ttl: 3600,
            cds: Vec::new(),
            cdnskey: Vec::new(),
            rrsigs: vec![vec![0, 48]],
        }
    }

    #[test]
    fn offline_the_active_zsks_sign_and_the_skr_publishes() {
        let zsk = key(1, Role::Zsk, KeyState::Active, 13);
        let next = key(2, Role::Zsk, KeyState::Generated, 13);
        let ksk = key(3, Role::Ksk, KeyState::Active, 13);
        // The SKR publishes the offline KSK and both ZSKs.
        let keys = zone_keys_offline(
            vec![zsk.clone(), next.clone()],
            &zone(),
            presigned(&[&zsk, &next, &ksk]),
        )
        .unwrap();
        assert_eq!(tags(&keys.zsks), vec![1001]);
        assert!(keys.ksks.is_empty() && keys.ksk_index.is_empty());
        assert_eq!(tags(&keys.published), vec![1001, 1002]);
        assert_eq!(keys.presigned.as_ref().map(|p| p.dnskeys.len()), Some(3));
    }

    #[test]
    fn offline_refuses_a_local_ksk_an_unpublished_zsk_and_no_zsk() {
        let zsk = key(1, Role::Zsk, KeyState::Active, 13);
        let ksk = key(3, Role::Ksk, KeyState::Active, 13);
        let why = refused(zone_keys_offline(
            vec![zsk.clone(), ksk.clone()],
            &zone(),
            presigned(&[&zsk, &ksk]),
        ));
        assert!(why.contains("offline-ksk"), "{why}");
        let other = key(2, Role::Zsk, KeyState::Published, 13);
        let why = refused(zone_keys_offline(
            vec![zsk.clone()],
            &zone(),
            presigned(&[&other, &ksk]),
        ));
        assert!(
            why.contains("ZSK 1001") && why.contains("does not hold it"),
            "{why}"
        );
        let why = refused(zone_keys_offline(
            vec![other.clone()],
            &zone(),
            presigned(&[&other, &ksk]),
        ));
        assert!(why.contains("no active ZSK"), "{why}");
        // A published ZSK of an algorithm no active ZSK has (RFC 4035 §2.2).
        let ed = key(4, Role::Zsk, KeyState::Published, 15);
        let why = refused(zone_keys_offline(
            vec![zsk.clone(), ed.clone()],
            &zone(),
            presigned(&[&zsk, &ed, &ksk]),
        ));
        assert!(why.contains("RFC 4035"), "{why}");
    }
}
