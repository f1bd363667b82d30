//! Which RRsets get new signatures and which old ones are kept.
//!
//! Old signatures come from two places: those the input zone carries (kept
//! only when they verify over the RRset as it is now) and those of the
//! `--incremental` zone, dnsseal's earlier output (kept when the RRset they
//! cover is byte for byte what it was then). The earlier output is read
//! through its signing state ([`super::state`]) when that is usable, else
//! streamed from its text ([`read_previous_text`]). A signature is kept when
//! [`reusable`]: same key, owner, TTL and signer, and not expiring within
//! the refresh interval. What is not kept becomes a job for the engine.
//! Nodes whose records and signatures are all unchanged carry their text
//! over from the previous output as it is.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::engine::SigningKey;
use super::state::{self, rrset_digest, Cursor, State, Unusable};
use crate::failure::Failure;
use crate::zone::model::{RrSet, Zone};
use crate::zone::rr::{self, rtype};
use crate::zone::rrsig::Rrsig;
use crate::zone::{dnssec, parse, ZoneName};

/// An RRset's owner (canonical wire form) and type.
pub type RrsetKey = (Vec<u8>, u16);

/// Old signatures by the RRset they cover, each with whether it must
/// verify before it is kept (those carried by the input).
pub type OldSignatures = HashMap<RrsetKey, Vec<(Vec<u8>, bool)>>;

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
    pub fn spawn(previous: &Path, origin: &ZoneName) -> StateLoader {
        let (prev, wire) = (previous.to_path_buf(), origin.wire().to_vec());
        StateLoader(std::thread::spawn(move || State::load(&prev, &wire)))
    }

    /// The state, or None (and why, at info level) when the previous
    /// zone's text must be read instead.
    pub fn join(self, previous: &Path) -> anyhow::Result<Option<State>> {
        match self.0.join() {
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
            .push((r.rdata, true));
    }
    old
}

/// Streams the `--incremental` zone's text: its signatures go into `old`
/// and one digest per RRset into the returned map; nothing else is kept.
/// dnsseal writes each RRset's records together; an RRset met in two places
/// of a hand-edited file gets a digest that matches nothing, so its
/// signatures are made anew.
pub fn read_previous_text(
    prev: &Path,
    origin: &ZoneName,
    old: &mut OldSignatures,
) -> anyhow::Result<HashMap<RrsetKey, [u8; 32]>> {
    let mut previous_sets: HashMap<RrsetKey, [u8; 32]> = HashMap::new();
    let mut group: Option<(RrsetKey, u32, Vec<Vec<u8>>)> = None;
    let mut split: HashSet<RrsetKey> = HashSet::new();
    let mut finish = |g: Option<(RrsetKey, u32, Vec<Vec<u8>>)>,
                      previous_sets: &mut HashMap<RrsetKey, [u8; 32]>| {
        if let Some((key, ttl, mut rdatas)) = g {
            rdatas.sort();
            rdatas.dedup();
            if previous_sets
                .insert(
                    key.clone(),
                    rrset_digest(ttl, rdatas.iter().map(Vec::as_slice)),
                )
                .is_some()
            {
                split.insert(key);
            }
        }
    };
    parse::for_each_record(prev, origin, |r| {
        if r.rtype == rtype::RRSIG {
            old.entry((r.owner, rrsig_type_covered(&r.rdata)))
                .or_default()
                .push((r.rdata, false));
            return;
        }
        match &mut group {
            Some((key, ttl, rdatas)) if key.0 == r.owner && key.1 == r.rtype => {
                *ttl = (*ttl).min(r.ttl);
                rdatas.push(r.rdata);
            }
            _ => {
                let done = group.take();
                finish(done, &mut previous_sets);
                group = Some(((r.owner, r.rtype), r.ttl, vec![r.rdata]));
            }
        }
    })
    .map_err(|e| Failure::BadInput(format!("--incremental: {e}")))?;
    finish(group.take(), &mut previous_sets);
    for key in split {
        previous_sets.insert(key, [0xFF; 32]);
    }
    Ok(previous_sets)
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

/// Nodes carried over from the previous signing: their text and state
/// record, by node index (empty when there is no previous state).
pub type Carried<'a> = Vec<Option<(&'a [u8], &'a [u8])>>;

/// The outcome of matching: signatures to make, signatures kept.
pub struct Plan<'s> {
    /// (node, RRset, key) of each signature to make, in node order.
    pub slots: Vec<(usize, usize, usize)>,
    /// (node, RRset, RDATA) of each signature kept.
    pub kept: Vec<(usize, usize, Vec<u8>)>,
    /// Nodes whose text carries over (see [`Carried`]).
    pub carried: Carried<'s>,
    pub stats: Stats,
}

/// Where old signatures come from, for [`match_signatures`].
pub struct Previous<'s> {
    /// Signatures by RRset (the input's, and the previous text's).
    pub old: OldSignatures,
    /// RRset digests of the previous text.
    pub sets: HashMap<RrsetKey, [u8; 32]>,
    /// The previous signing's state, when usable.
    pub cursor: Option<Cursor<'s>>,
}

/// Matches every signed RRset of the zone with the old signatures that can
/// stay; the rest become slots. `refresh_before`: signatures expiring
/// before this RRSIG time are replaced. `cores`: threads for the node
/// digests.
pub fn match_signatures<'s>(
    zone: &Zone,
    signers: &Signers<'_>,
    previous: Previous<'s>,
    refresh_before: u32,
    cores: usize,
) -> Plan<'s> {
    let Previous {
        mut old,
        sets: previous_sets,
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
    let mut passed = |e: state::NodeEntry<'_>| gone.set(gone.get() + e.signatures());
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
    let mut node_kept: Vec<(usize, Cow<'_, [u8]>)> = Vec::new();
    let mut candidates: Vec<(Cow<'_, [u8]>, bool)> = Vec::new();
    for (ni, node) in zone.nodes.iter().enumerate() {
        // The previous signing's node at this owner, from the state.
        let mut before = match cursor.as_mut() {
            Some(c) => c.take_owner(&node.owner, &mut passed),
            None => None,
        };
        let same_node = before
            .as_ref()
            .is_some_and(|b| digests.get(ni).is_some_and(|d| b.digest == d));
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
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(sig, verify)| (sig.into(), verify)),
                );
            }
            let mut unchanged = !candidates.is_empty()
                && !previous_sets.is_empty()
                && previous_sets.get(&(node.owner.clone(), set.rtype))
                    == Some(&rrset_digest(set.ttl, set.rdatas.iter()));
            if let Some(b) = before.as_mut() {
                if let Some(at) = b.sets.iter().position(|e| e.rtype == set.rtype) {
                    let e = b.sets.swap_remove(at);
                    unchanged = same_node || e.digest == rrset_digest(set.ttl, set.rdatas.iter());
                    candidates.extend(e.sigs.iter().map(|s| ((*s).into(), false)));
                }
            }
            let mut kept_here = 0;
            for &k in signers.of(set.rtype) {
                let key = &signers.keys[k];
                let found = candidates.iter().find(|(sig, verify)| {
                    (*verify || unchanged)
                        && reusable(sig, &node.owner, set, key, origin, refresh_before, *verify)
                });
                match found {
                    Some((sig, _)) => {
                        node_kept.push((si, sig.clone()));
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
        match before.and_then(|b| b.text.map(|t| (t, b.record))) {
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
                plan.kept.extend(
                    node_kept
                        .drain(..)
                        .map(|(si, sig)| (ni, si, sig.into_owned())),
                );
                plan.stats.dropped += node_dropped + left;
            }
        }
    }
    if let Some(c) = cursor {
        c.rest(&mut passed);
    }
    plan.stats.dropped += gone.get();
    plan.stats.dropped += old.values().map(Vec::len).sum::<usize>();
    plan.stats.retained = plan.kept.len() + reused;
    plan.stats.generated = plan.slots.len();
    plan
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
}
