//! Which RRsets get new signatures and which old ones are kept.
//!
//! Old signatures come from two places: those the input zone carries and
//! those of the `--incremental` zone, dnsseal's earlier output. The earlier
//! output is read through its signing state ([`super::state`]) when that is
//! usable (whole, fresh and sealed by a key of the zone), and its signatures
//! are kept when the RRset they cover is byte for byte what it was then;
//! else its text is streamed ([`read_previous_text`]). Signatures of the
//! input and of the text are kept only when they verify over the RRset as
//! it is now. A signature is kept when
//! [`reusable`]: same key, owner, TTL and signer, and not expiring within
//! the refresh interval. What is not kept becomes a job for the engine.
//! Nodes whose records and signatures are all unchanged carry their text
//! over from the previous output as it is.

use std::collections::HashMap;
use std::path::Path;

use super::engine::SigningKey;
use super::state::{self, rrset_digest, Carry, Cursor, SealKey, State, Unusable};
use crate::failure::Failure;
use crate::zone::model::{RrSet, Zone};
use crate::zone::rr::{self, rtype};
use crate::zone::rrsig::Rrsig;
use crate::zone::{dnssec, parse, ZoneName};

/// An RRset's owner (canonical wire form) and type.
pub type RrsetKey = (Vec<u8>, u16);

/// Old signatures by the RRset they cover, each with how far it is
/// trusted.
pub type OldSignatures = HashMap<RrsetKey, Vec<(Vec<u8>, Trust)>>;

/// How far an old signature is trusted before it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// From the input or from the previous output's text: kept only if it
    /// verifies over the RRset as it is now.
    Unchecked,
    /// Checked by [`check_old_signatures`]: it verifies.
    Verified,
    /// Checked by [`check_old_signatures`]: it does not verify, or cannot
    /// stay (another key, TTL, signer or an early expiration).
    Failed,
    /// From the previous signing's sealed state: kept when the RRset it
    /// covers is what it was then.
    Sealed,
}

/// Counts reported at the end, like dnssec-signzone.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub generated: usize,
    pub retained: usize,
    pub dropped: usize,
}

/// The previous signing's state, loading on a thread of its own while the
/// zone is read.
pub struct StateLoader(std::thread::JoinHandle<Result<State, Unusable>>);

impl StateLoader {
    /// `limit`: the most bytes read of the state and of the zone file.
    pub fn spawn(previous: &Path, origin: &ZoneName, limit: u64) -> StateLoader {
        let (prev, wire) = (previous.to_path_buf(), origin.wire().to_vec());
        StateLoader(std::thread::spawn(move || State::load(&prev, &wire, limit)))
    }

    /// The state, when whole, fresh and sealed by one of `keys` (the
    /// zone's DNSKEY RRset); else None (and why, at info level), and the
    /// previous zone's text must be read instead.
    pub fn join(self, previous: &Path, keys: &[SealKey<'_>]) -> anyhow::Result<Option<State>> {
        match self
            .0
            .join()
            .map(|r| r.and_then(|s| s.check_seal(keys).map(|()| s)))
        {
            Ok(Ok(state)) => Ok(Some(state)),
            Ok(Err(why)) => {
                tracing::info!(
                    "{}: {why}; reading {} as text (slower)",
                    state::path_for(previous).display(),
                    previous.display()
                );
                Ok(None)
            }
            Err(_) => Err(anyhow::anyhow!("reading the signing state panicked")),
        }
    }
}

/// The type an RRSIG covers; 0 (no type) for RDATA too short to say, which
/// then matches no RRset and counts as dropped.
fn rrsig_type_covered(rdata: &[u8]) -> u16 {
    Rrsig::covered(rdata).unwrap_or(0)
}

/// The signatures the input zone carried, to be checked before reuse.
pub fn input_signatures(zone: &mut Zone) -> OldSignatures {
    let mut old: OldSignatures = HashMap::new();
    for r in std::mem::take(&mut zone.old_rrsigs) {
        old.entry((r.owner, rrsig_type_covered(&r.rdata)))
            .or_default()
            .push((r.rdata, Trust::Unchecked));
    }
    old
}

/// Streams the `--incremental` zone's text: its signatures go into `old`,
/// to be verified before they are kept (the text is not sealed: whoever
/// could write it may have put signatures there); nothing else is kept.
pub fn read_previous_text(
    prev: &Path,
    origin: &ZoneName,
    limits: parse::Limits,
    old: &mut OldSignatures,
) -> anyhow::Result<()> {
    parse::for_each_record(prev, origin, limits, |r| {
        if r.rtype == rtype::RRSIG {
            old.entry((r.owner, rrsig_type_covered(&r.rdata)))
                .or_default()
                .push((r.rdata, Trust::Unchecked));
        }
    })
    .map_err(|e| Failure::BadInput(format!("--incremental: {e}")))?;
    Ok(())
}

/// What signs what: the engine's keys, and which of them sign the DNSKEY,
/// CDS and CDNSKEY RRsets and which the rest.
pub struct Signers<'a> {
    pub keys: &'a [SigningKey],
    pub ksk: &'a [usize],
    pub zsk: &'a [usize],
}

impl Signers<'_> {
    /// The keys that sign RRsets of type `t`.
    pub fn of(&self, t: u16) -> &[usize] {
        // RFC 7344 §4.1: CDS and CDNSKEY are signed by the KSKs too.
        if matches!(t, rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY) {
            self.ksk
        } else {
            self.zsk
        }
    }
}

/// Nodes carried over from the previous signing: where their text and
/// state record are in its files, by node index (empty when there is no
/// previous state).
pub type Carried = Vec<Option<Carry>>;

/// The outcome of matching: signatures to make, signatures kept.
pub struct Plan {
    /// (node, RRset, key) of each signature to make, in node order.
    pub slots: Vec<(usize, usize, usize)>,
    /// (node, RRset, RDATA) of each signature kept.
    pub kept: Vec<(usize, usize, Vec<u8>)>,
    /// Nodes whose text carries over (see [`Carried`]).
    pub carried: Carried,
    pub stats: Stats,
}

/// Where old signatures come from, for [`match_signatures`].
pub struct Previous {
    /// Signatures by RRset (the input's, and the previous text's).
    pub old: OldSignatures,
    /// The previous signing's state, when usable.
    pub cursor: Option<Cursor>,
}

/// Matches every signed RRset of the zone with the old signatures that can
/// stay; the rest become slots. `refresh_before`: signatures expiring
/// before this RRSIG time are replaced. `cores`: threads for the node
/// digests. Fails when the previous signing's state, read a second time
/// here, is not the one checked at load.
pub fn match_signatures(
    zone: &Zone,
    signers: &Signers<'_>,
    previous: Previous,
    refresh_before: u32,
    cores: usize,
) -> std::io::Result<Plan> {
    let Previous {
        mut old,
        mut cursor,
    } = previous;
    let origin = &zone.origin;
    let mut plan = Plan {
        slots: Vec::new(),
        kept: Vec::new(),
        carried: Vec::new(),
        stats: Stats::default(),
    };
    // Signatures of the previous signing whose RRset is gone.
    let gone = std::cell::Cell::new(0usize);
    let mut passed = |e: state::NodeEntry| gone.set(gone.get() + e.signatures());
    if cursor.is_some() {
        plan.carried.resize(zone.nodes.len(), None);
    }
    let mut reused = 0usize;
    let digests: Vec<[u8; 32]> = if cursor.is_some() {
        node_digests(zone, cores)
    } else {
        Vec::new()
    };
    // One pair of buffers for every node (a big zone has 100k's of them).
    let mut node_kept: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut candidates: Vec<(Vec<u8>, Trust)> = Vec::new();
    for (ni, node) in zone.nodes.iter().enumerate() {
        // The previous signing's node at this owner, from the state.
        let mut before = match cursor.as_mut() {
            Some(c) => c.take_owner(&node.owner, &mut passed),
            None => None,
        };
        let same_node = before
            .as_ref()
            .is_some_and(|b| digests.get(ni).is_some_and(|d| b.digest == *d));
        node_kept.clear();
        let (mut node_new, mut node_dropped) = (0usize, 0usize);
        for (si, set) in node.rrsets.iter().enumerate() {
            if !node.signs(set.rtype) {
                continue;
            }
            candidates.clear();
            if !old.is_empty() {
                candidates.extend(
                    old.remove(&(node.owner.clone(), set.rtype))
                        .unwrap_or_default(),
                );
            }
            let mut unchanged = false;
            if let Some(b) = before.as_mut() {
                if let Some(at) = b.sets.iter().position(|e| e.rtype == set.rtype) {
                    let e = b.sets.swap_remove(at);
                    unchanged = same_node || e.digest == rrset_digest(set.ttl, set.rdatas.iter());
                    candidates.extend(e.sigs.into_iter().map(|s| (s, Trust::Sealed)));
                }
            }
            let mut kept_here = 0;
            for &k in signers.of(set.rtype) {
                let key = &signers.keys[k];
                let found = candidates.iter().position(|(sig, trust)| {
                    let fits =
                        |check| reusable(sig, &node.owner, set, key, origin, refresh_before, check);
                    match trust {
                        Trust::Unchecked => fits(true),
                        Trust::Verified => fits(false),
                        Trust::Sealed => unchanged && fits(false),
                        Trust::Failed => false,
                    }
                });
                match found {
                    Some(at) => {
                        // One signature fits one key (its tag): the
                        // candidate is taken, not copied.
                        node_kept.push((si, std::mem::take(&mut candidates[at].0)));
                        kept_here += 1;
                    }
                    None => {
                        plan.slots.push((ni, si, k));
                        node_new += 1;
                    }
                }
            }
            node_dropped += candidates.len().saturating_sub(kept_here);
        }
        let left = before.as_ref().map_or(0, state::NodeEntry::signatures);
        match before.map(|b| Carry {
            text: b.text,
            record: b.record,
        }) {
            Some(carried)
                if same_node
                    && old.is_empty()
                    && node_new == 0
                    && node_dropped == 0
                    && left == 0 =>
            {
                plan.carried[ni] = Some(carried);
                reused += node_kept.len();
            }
            _ => {
                plan.kept
                    .extend(node_kept.drain(..).map(|(si, sig)| (ni, si, sig)));
                plan.stats.dropped += node_dropped + left;
            }
        }
    }
    if let Some(c) = cursor {
        c.rest(&mut passed)?;
    }
    plan.stats.dropped += gone.get();
    plan.stats.dropped += old.values().map(Vec::len).sum::<usize>();
    plan.stats.retained = plan.kept.len() + reused;
    plan.stats.generated = plan.slots.len();
    Ok(plan)
}

/// Verifies, on every core, the old signatures that must verify before
/// they are kept (a signed zone as input, or a previous output read as
/// text, carries one or more per RRset), so that [`match_signatures`] need
/// not one by one. A signature whose RRset is not in the zone stays
/// unchecked (it is dropped anyway), and so do those of a part whose thread
/// failed (then checked in the matching).
pub fn check_old_signatures(
    zone: &Zone,
    signers: &Signers<'_>,
    old: &mut OldSignatures,
    refresh_before: u32,
    cores: usize,
) {
    if !old.values().flatten().any(|(_, t)| *t == Trust::Unchecked) {
        return;
    }
    let per = zone.nodes.len().div_ceil(cores.max(1)).max(1);
    let shared = &*old;
    let check = |node: &crate::zone::model::Node, set: &RrSet, sig: &[u8]| {
        let fits = signers.of(set.rtype).iter().any(|&k| {
            let key = &signers.keys[k];
            reusable(
                sig,
                &node.owner,
                set,
                key,
                &zone.origin,
                refresh_before,
                true,
            )
        });
        if fits {
            Trust::Verified
        } else {
            Trust::Failed
        }
    };
    let check = &check;
    let results: Vec<(RrsetKey, Vec<Trust>)> = std::thread::scope(|s| {
        let parts: Vec<_> = zone
            .nodes
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    let mut found = Vec::new();
                    for node in part {
                        for set in node.rrsets.iter().filter(|s| node.signs(s.rtype)) {
                            let key = (node.owner.clone(), set.rtype);
                            let Some(sigs) = shared.get(&key) else {
                                continue;
                            };
                            let trust = sigs
                                .iter()
                                .map(|(sig, t)| match t {
                                    Trust::Unchecked => check(node, set, sig),
                                    t => *t,
                                })
                                .collect();
                            found.push((key, trust));
                        }
                    }
                    found
                })
            })
            .collect();
        parts
            .into_iter()
            .filter_map(|h| h.join().ok())
            .flatten()
            .collect()
    });
    for (key, trust) in results {
        if let Some(sigs) = old.get_mut(&key) {
            for ((_, t), checked) in sigs.iter_mut().zip(trust) {
                *t = checked;
            }
        }
    }
}

/// Each node's digest, to compare with the previous signing's: one
/// SHA-256 per node, computed on every core.
fn node_digests(zone: &Zone, cores: usize) -> Vec<[u8; 32]> {
    let per = zone.nodes.len().div_ceil(cores.max(1)).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = zone
            .nodes
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(state::node_digest).collect::<Vec<_>>()))
            .collect();
        // All or nothing: a part missing would shift every index
        // after it (no digest only means no carried-over text).
        parts
            .into_iter()
            .map(|h| h.join())
            .collect::<Result<Vec<_>, _>>()
            .map(|p| p.concat())
            .unwrap_or_default()
    })
}

/// Puts the kept signatures into their RRsets, each RRset's signatures
/// sorted.
pub fn insert_kept(zone: &mut Zone, kept: Vec<(usize, usize, Vec<u8>)>, signers: &Signers<'_>) {
    // Exact capacity: a Vec that grows from empty reserves four slots, which
    // for 100k-name zones is tens of megabytes of nothing.
    for (ni, si, sig) in kept {
        let set = &mut zone.nodes[ni].rrsets[si];
        if set.rrsigs.capacity() == 0 {
            set.rrsigs.reserve_exact(signers.of(set.rtype).len());
        }
        set.rrsigs.push(sig);
    }
    for node in &mut zone.nodes {
        for set in &mut node.rrsets {
            if set.rrsigs.len() > 1 {
                set.rrsigs.sort_unstable();
            }
        }
    }
}

/// Whether an old signature can stay: made by this key for this owner,
/// TTL and signer, not expiring within the refresh interval, and (when
/// `check`) verifying over the RRset as it is now.
pub fn reusable(
    sig: &[u8],
    owner: &[u8],
    set: &RrSet,
    key: &SigningKey,
    origin: &ZoneName,
    refresh_before: u32,
    check: bool,
) -> bool {
    let Some(sig) = Rrsig::parse(sig) else {
        return false;
    };
    if sig.algorithm() != key.algorithm.number()
        || sig.key_tag() != key.key_tag
        || sig.original_ttl() != set.ttl
        || sig.signer() != origin.wire()
    {
        return false;
    }
    let mut want_labels = rr::label_count(owner);
    if rr::is_wildcard(owner) {
        want_labels -= 1;
    }
    if usize::from(sig.labels()) != want_labels {
        return false;
    }
    // RFC 1982 comparison: expiring before the refresh point means replace.
    if !dnssec::serial_lt(refresh_before, sig.expiration()) {
        return false;
    }
    if !check {
        return true;
    }
    let mut msg = sig.signed_data().to_vec();
    super::engine::append_rrset(&mut msg, owner, set);
    super::verify(key.algorithm, &key.public_key, &msg, sig.signature())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::model::Rdatas;
    use crate::zone::rr::Source;
    use crate::zone::Algorithm;

    const OWNER: &[u8] = b"\x03www\x07example\x00";

    fn origin() -> ZoneName {
        "example.".parse().unwrap()
    }

    fn a_set(ttl: u32) -> RrSet {
        RrSet {
            rtype: 1,
            ttl,
            rdatas: Rdatas::one(&[192, 0, 2, 1]),
            source: Source::default(),
            rrsigs: Vec::new(),
        }
    }

    /// A software Ed25519 key, and an RRSIG by it over `set` expiring at
    /// `expiration`.
    fn signed(set: &RrSet, expiration: u32) -> (SigningKey, Vec<u8>) {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
        let key = SigningKey {
            algorithm: Algorithm::Ed25519,
            key_tag: 777,
            public_key: pair.public_key().as_ref().to_vec(),
        };
        let prefix = super::super::engine::rrsig_prefix(
            OWNER,
            set,
            15,
            777,
            100,
            expiration,
            origin().wire(),
        );
        let mut msg = prefix.clone();
        super::super::engine::append_rrset(&mut msg, OWNER, set);
        let mut rdata = prefix;
        rdata.extend_from_slice(pair.sign(&msg).as_ref());
        (key, rdata)
    }

    #[test]
    fn a_fitting_signature_is_reusable_and_verifies() {
        let set = a_set(300);
        let (key, sig) = signed(&set, 10_000);
        assert!(reusable(&sig, OWNER, &set, &key, &origin(), 5_000, false));
        assert!(reusable(&sig, OWNER, &set, &key, &origin(), 5_000, true));
    }

    #[test]
    fn another_key_ttl_owner_or_an_early_expiration_is_not_reusable() {
        let set = a_set(300);
        let (key, sig) = signed(&set, 10_000);
        let other = SigningKey {
            key_tag: 778,
            ..key.clone()
        };
        assert!(!reusable(
            &sig,
            OWNER,
            &set,
            &other,
            &origin(),
            5_000,
            false
        ));
        assert!(!reusable(
            &sig,
            OWNER,
            &a_set(600),
            &key,
            &origin(),
            5_000,
            false
        ));
        let deeper = b"\x01a\x03www\x07example\x00";
        assert!(!reusable(&sig, deeper, &set, &key, &origin(), 5_000, false));
        // Expiring before the refresh point: replaced.
        assert!(!reusable(&sig, OWNER, &set, &key, &origin(), 10_000, false));
        let elsewhere: ZoneName = "example.net.".parse().unwrap();
        assert!(!reusable(&sig, OWNER, &set, &key, &elsewhere, 5_000, false));
    }

    #[test]
    fn a_signature_over_other_data_fails_only_the_check() {
        let set = a_set(300);
        let (key, sig) = signed(&set, 10_000);
        let changed = RrSet {
            rdatas: Rdatas::one(&[192, 0, 2, 2]),
            ..a_set(300)
        };
        // Unchecked reuse trusts the RRset digest, not the signature.
        assert!(reusable(
            &sig,
            OWNER,
            &changed,
            &key,
            &origin(),
            5_000,
            false
        ));
        assert!(!reusable(
            &sig,
            OWNER,
            &changed,
            &key,
            &origin(),
            5_000,
            true
        ));
        // Truncated RDATA is never reusable (and does not panic).
        for len in [0, 2, 17, 20] {
            assert!(!reusable(
                &sig[..len],
                OWNER,
                &set,
                &key,
                &origin(),
                5_000,
                false
            ));
        }
    }

    /// A zone of one node holding `set`.
    fn zone_of(set: RrSet) -> Zone {
        Zone {
            origin: origin(),
            nodes: vec![crate::zone::model::Node {
                owner: OWNER.to_vec(),
                rrsets: vec![set],
                ..Default::default()
            }],
            warnings: Vec::new(),
            old_rrsigs: Vec::new(),
            stripped: 0,
        }
    }

    /// A one-node zone, its key, a good RRSIG of its A RRset and a bad one
    /// (last octet changed).
    fn good_and_bad() -> (Zone, [SigningKey; 1], Vec<u8>, Vec<u8>) {
        let set = a_set(300);
        let (key, good) = signed(&set, 10_000);
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        (zone_of(set), [key], good, bad)
    }

    #[test]
    fn unchecked_signatures_are_verified_before_they_are_kept() {
        let (zone, keys, good, bad) = good_and_bad();
        let signers = Signers {
            keys: &keys,
            ksk: &[0],
            zsk: &[0],
        };
        let mut old: OldSignatures = HashMap::new();
        old.insert(
            (OWNER.to_vec(), 1),
            vec![
                (bad.clone(), Trust::Unchecked),
                (good.clone(), Trust::Unchecked),
                (bad.clone(), Trust::Sealed),
            ],
        );
        check_old_signatures(&zone, &signers, &mut old, 5_000, 2);
        let trust: Vec<Trust> = old[&(OWNER.to_vec(), 1)].iter().map(|s| s.1).collect();
        assert_eq!(trust, [Trust::Failed, Trust::Verified, Trust::Sealed]);
        // The verified one is kept; the one that failed is dropped, and so
        // is the sealed one, whose RRset has no state entry saying it is
        // unchanged.
        let previous = Previous { old, cursor: None };
        let plan = match_signatures(&zone, &signers, previous, 5_000, 2).unwrap();
        assert_eq!(plan.kept, vec![(0, 0, good)]);
        assert!(plan.slots.is_empty());
        assert_eq!(plan.stats.dropped, 2);
    }

    #[test]
    fn a_bad_signature_left_unchecked_is_caught_in_the_matching() {
        let (zone, keys, _, bad) = good_and_bad();
        let signers = Signers {
            keys: &keys,
            ksk: &[0],
            zsk: &[0],
        };
        let mut old: OldSignatures = HashMap::new();
        old.insert((OWNER.to_vec(), 1), vec![(bad, Trust::Unchecked)]);
        let previous = Previous { old, cursor: None };
        let plan = match_signatures(&zone, &signers, previous, 5_000, 2).unwrap();
        assert!(plan.kept.is_empty());
        assert_eq!(plan.slots, vec![(0, 0, 0)]);
    }
}
