//! `dnsseal sign`: zone file → checked zone → DNSKEY, serial, chain →
//! signatures from the token → atomic output → audit record.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::args::{SerialArg, SignArgs, VerifyArgs};
use super::context::{Context, Failure};
use super::keys::{parse_zone, record_dnskey};
use crate::audit::Event;
use crate::clock::Timestamp;
use crate::keystore::KeyRecord;
use crate::policy::signing::{cds_rdata, zone_keys};
use crate::policy::Policy;
use crate::sign::engine::{Engine, Job, Signer, SignerError, SigningKey, Validity};
use crate::sign::output::{
    format_chunk, write_in_order, Buffers, Chunk, Feed, Formatted, ZoneWriter,
};
use crate::sign::state::{self, rrset_digest, State};
use crate::sign::TokenInput;
use crate::token::{SignMechanism, SignerPool};
use crate::zone::dnssec::{self, Nsec3Params, SerialPolicy};
use crate::zone::model::{self, Node, NodeKind, RrSet, Zone};
use crate::zone::rr::{self, rtype, Source};
use crate::zone::rrsig::Rrsig;
use crate::zone::{parse, Algorithm, Work, ZoneName};

/// Fewest signatures for which a software token's sessions are sized by a
/// probe (below this the run is over before the probe pays).
const PROBE_MIN_SIGNATURES: usize = 2_000;
/// Default signature validity: 30 days.
const DEFAULT_VALIDITY: i64 = 30 * 86_400;
/// Default inception: one hour in the past, for clocks that lag.
const DEFAULT_BACKDATE: i64 = 3_600;

/// The token seen through the engine's narrow interface.
struct TokenSigner<'a> {
    pool: &'a SignerPool,
}

impl Signer for TokenSigner<'_> {
    fn workers(&self) -> usize {
        self.pool.workers()
    }

    fn sign(&self, worker: usize, key: usize, input: &TokenInput) -> Result<Vec<u8>, SignerError> {
        let data = match input {
            TokenInput::RsaPkcs(v) | TokenInput::Ecdsa(v) | TokenInput::EdDsa(v) => v,
        };
        Ok(self.pool.sign(worker, key, data)?)
    }
}

fn mechanism(alg: Algorithm) -> SignMechanism {
    match alg {
        Algorithm::RsaSha256 | Algorithm::RsaSha512 => SignMechanism::RsaPkcs,
        Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => SignMechanism::Ecdsa,
        Algorithm::Ed25519 => SignMechanism::EdDsa,
    }
}

/// Reads `-s`/`-e` times: absolute, `now+N`, or `+N` from `base`.
fn parse_time(s: &str, now: Timestamp, base: Timestamp) -> anyhow::Result<Timestamp> {
    let rel = |n: &str, from: Timestamp| -> anyhow::Result<Timestamp> {
        let secs: i64 = n
            .parse()
            .map_err(|_| Failure::BadInput(format!("'{s}' is not a time offset in seconds")))?;
        Ok(Timestamp::from_unix(from.unix() + secs))
    };
    if let Some(n) = s.strip_prefix("now+") {
        return rel(n, now);
    }
    if s == "now" {
        return Ok(now);
    }
    if let Some(n) = s.strip_prefix('+') {
        return rel(n, base);
    }
    Ok(Timestamp::parse(s)?)
}

fn rrsig_time(t: Timestamp) -> anyhow::Result<u32> {
    u32::try_from(t.unix())
        .map_err(|_| Failure::BadInput(format!("{t} does not fit an RRSIG time field")).into())
}

/// An RRset's owner (canonical wire form) and type.
type RrsetKey = (Vec<u8>, u16);

/// Counts reported at the end, like dnssec-signzone.
#[derive(Default)]
struct Stats {
    generated: usize,
    retained: usize,
    dropped: usize,
}

/// `dnsseal sign`: refuses to start on a broken audit log, and a failed
/// run is audited like any other failed operation.
pub fn run(ctx: &Context, args: SignArgs) -> anyhow::Result<()> {
    let cfg = ctx.config()?;
    let zone = args.origin.as_deref().map(|o| {
        parse_zone(o)
            .map(|z| z.to_string())
            .unwrap_or_else(|_| o.to_string())
    });
    ctx.audited(&cfg, zone, || sign(ctx, &cfg, args))
}

fn sign(ctx: &Context, cfg: &crate::config::Config, args: SignArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    phase("start");
    let origin_text = match &args.origin {
        Some(o) => o.clone(),
        None => args
            .zonefile
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .trim_end_matches(".zone")
                    .trim_end_matches(".db")
                    .to_string()
            })
            .unwrap_or_default(),
    };
    let origin = parse_zone(&origin_text)?;
    // The previous signing's state loads (and its zone file is hashed)
    // while the input is parsed.
    let state_loader = args.incremental.clone().map(|prev| {
        let wire = origin.wire().to_vec();
        std::thread::spawn(move || State::load(&prev, &wire))
    });
    let now = ctx.now();
    let mut ks = ctx.keystore(cfg)?;
    let zone_s = origin.to_string();
    // The generation first: a rollover step committed while this run reads
    // the keys then only makes the record of this signing older (safe).
    let generation = ks.generation(&zone_s)?;
    let (policy, has_policy) = match super::rollover::zone_policy(&ks, &zone_s)? {
        Some((p, _)) => (p, true),
        None => (Policy::default(), false),
    };
    let inception = match &args.start {
        Some(s) => parse_time(s, now, now)?,
        None => Timestamp::from_unix(now.unix() - DEFAULT_BACKDATE),
    };
    let expiration = match &args.end {
        Some(e) => parse_time(e, now, inception)?,
        None => Timestamp::from_unix(
            now.unix()
                + if has_policy {
                    policy.signature_validity.secs()
                } else {
                    DEFAULT_VALIDITY
                },
        ),
    };
    let jitter = match args.jitter {
        Some(j) => j,
        None if has_policy => u32::try_from(policy.signature_jitter.secs()).unwrap_or(0),
        None => 0,
    };
    if expiration <= inception {
        return Err(Failure::BadInput(format!(
            "expiration {expiration} is not after inception {inception}"
        ))
        .into());
    }
    if expiration <= now {
        return Err(Failure::BadInput(format!("expiration {expiration} is in the past")).into());
    }
    let validity_secs = u32::try_from(expiration.unix() - inception.unix()).unwrap_or(u32::MAX);
    if jitter >= validity_secs {
        return Err(Failure::BadInput(format!(
            "jitter {jitter}s is not shorter than the validity period {validity_secs}s"
        ))
        .into());
    }
    let refresh = match args.interval {
        Some(i) => i,
        None if has_policy => u32::try_from(policy.signature_refresh.secs())
            .unwrap_or(u32::MAX)
            .min(validity_secs / 2),
        None => validity_secs / 4,
    };
    let nsec3 = if args.nsec3 {
        let salt = match args.salt.as_deref() {
            None | Some("-") | Some("") => Vec::new(),
            Some(h) => {
                hex::decode(h).map_err(|_| Failure::BadInput(format!("--salt '{h}' is not hex")))?
            }
        };
        if salt.len() > 255 {
            return Err(Failure::BadInput("--salt is longer than 255 octets".into()).into());
        }
        if args.iterations > 0 || !salt.is_empty() {
            tracing::warn!(
                "NSEC3 with {} extra iterations and a {}-octet salt: RFC 9276 recommends 0 iterations and no salt; validators may treat high counts as insecure",
                args.iterations,
                salt.len()
            );
        }
        Some(Nsec3Params {
            iterations: args.iterations,
            salt,
            opt_out: args.opt_out,
        })
    } else if has_policy && policy.nsec3 {
        Some(Nsec3Params {
            iterations: policy.nsec3_iterations,
            salt: hex::decode(&policy.nsec3_salt)
                .map_err(|_| Failure::BadInput("policy nsec3-salt is not hex".into()))?,
            opt_out: policy.nsec3_opt_out,
        })
    } else {
        None
    };
    let output = args.output.clone().unwrap_or_else(|| {
        let mut p = args.zonefile.clone().into_os_string();
        p.push(".signed");
        PathBuf::from(p)
    });

    // Keys first: no point reading a big zone for a zone without keys.
    let module = ctx.module(cfg)?;
    let token = module.find_token(&cfg.token.selector)?;
    let keys = zone_keys(
        ks.keys(Some(&origin.to_string()))?,
        &origin,
        &token.identity.serial,
    )?;
    let pin = ctx.user_pin()?;
    phase("keys read");

    // The zone. An incremental run, whose time is mostly reading and
    // preparing the zone, reads and prepares it on every core; a full run,
    // whose time is the token's and whose peak memory comes while the zone
    // is built, on this thread.
    let work = if args.incremental.is_some() {
        Work::AllCores
    } else {
        Work::OneThread
    };
    let parsed = parse::parse_file_with(&args.zonefile, &origin, work == Work::AllCores)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    phase("parsed");
    let mut zone =
        model::build(parsed, &origin, work).map_err(|e| Failure::BadInput(e.to_string()))?;
    phase("built");
    for w in &zone.warnings {
        tracing::warn!("{w}");
    }
    if zone.stripped > 0 {
        tracing::info!("replaced {} DNSSEC records of the input", zone.stripped);
    }

    // DNSKEY RRset, serial, chain.
    let dnskey_ttl = match args.dnskey_ttl {
        Some(t) => t,
        None if has_policy => u32::try_from(policy.dnskey_ttl.secs()).unwrap_or(u32::MAX),
        None => zone.soa_minimum(),
    };
    let mut dnskeys: Vec<Vec<u8>> = keys
        .published
        .iter()
        .map(|k| record_dnskey(k).rdata())
        .collect();
    dnskeys.sort();
    dnskeys.dedup();
    dnssec::insert_rrset(
        zone.apex_mut(),
        RrSet {
            rtype: rtype::DNSKEY,
            ttl: dnskey_ttl,
            rdatas: crate::zone::model::Rdatas::from_sorted(dnskeys.iter().map(Vec::as_slice)),
            source: Source::default(),
            rrsigs: Vec::new(),
        },
    );
    let (cds, cdnskey) = cds_rdata(&keys.all, &origin, &policy)?;
    for (t, rdatas) in [(rtype::CDS, &cds), (rtype::CDNSKEY, &cdnskey)] {
        if !rdatas.is_empty() {
            dnssec::insert_rrset(
                zone.apex_mut(),
                RrSet {
                    rtype: t,
                    ttl: dnskey_ttl,
                    rdatas: crate::zone::model::Rdatas::from_sorted(
                        rdatas.iter().map(Vec::as_slice),
                    ),
                    source: Source::default(),
                    rrsigs: Vec::new(),
                },
            );
        }
    }
    let today: u32 = now.compact()[..8].parse().unwrap_or(0);
    let policy = match args.serial {
        SerialArg::Keep => SerialPolicy::Keep,
        SerialArg::Increment => SerialPolicy::Increment,
        SerialArg::Unixtime => SerialPolicy::UnixTime,
        SerialArg::Date => SerialPolicy::Date,
    };
    let serial = dnssec::set_serial(&mut zone, policy, now.unix(), today)
        .ok_or_else(|| Failure::BadInput("the SOA RDATA is malformed".into()))?;
    match &nsec3 {
        None => dnssec::add_nsec_chain(&mut zone, work),
        Some(p) => {
            // NSEC3PARAM has no TTL rule of its own; it gets the DNSKEY
            // RRset's, another apex record that changes only with policy.
            let chain = dnssec::add_nsec3_chain(&mut zone, p, dnskey_ttl, work);
            phase("nsec3 made");
            merge_nsec3(&mut zone, chain);
        }
    }

    phase("chained");
    // Signing keys: index i of `signing` is key i of the token pool.
    let signing: Vec<&KeyRecord> = keys.signing.iter().map(|(k, _)| k).collect();
    let ksk_idx = &keys.ksk_index;
    let zsk_idx = &keys.zsk_index;
    let engine_keys: Vec<SigningKey> = keys
        .signing
        .iter()
        .map(|(k, alg)| SigningKey {
            algorithm: *alg,
            key_tag: k.key_tag,
            public_key: k.public_key.clone(),
        })
        .collect();

    // Reuse (--incremental, or signatures carried by the input itself).
    let validity = Validity {
        inception: rrsig_time(inception)?,
        expiration: rrsig_time(expiration)?,
        jitter,
    };
    // Old signatures by (owner, type covered). Those carried by the input
    // are checked cryptographically before they are kept; those of the
    // --incremental zone (dnsseal's earlier output) are kept when the
    // RRset they cover is byte for byte what it was then.
    let mut old: HashMap<RrsetKey, Vec<(Vec<u8>, bool)>> = HashMap::new();
    let mut previous_sets: HashMap<RrsetKey, [u8; 32]> = HashMap::new();
    let mut stats = Stats::default();
    for r in std::mem::take(&mut zone.old_rrsigs) {
        old.entry((r.owner, rrsig_type_covered(&r.rdata)))
            .or_default()
            .push((r.rdata, true));
    }
    let state = match state_loader.map(|h| h.join()) {
        None => None,
        Some(Ok(Ok(state))) => Some(state),
        Some(Ok(Err(why))) => {
            if let Some(prev) = &args.incremental {
                tracing::info!(
                    "{}: {why}; reading {} as text (slower)",
                    state::path_for(prev).display(),
                    prev.display()
                );
            }
            None
        }
        Some(Err(_)) => return Err(anyhow::anyhow!("reading the signing state panicked")),
    };
    let from_state = state.is_some();
    let mut cursor = state.as_ref().map(State::cursor);
    if let (Some(prev), None) = (&args.incremental, &cursor) {
        // Streamed: only the signatures and one digest per RRset are kept.
        // dnsseal writes each RRset's records together; an RRset met in
        // two places of a hand-edited file gets a digest that matches
        // nothing, so its signatures are made anew.
        let mut group: Option<(RrsetKey, u32, Vec<Vec<u8>>)> = None;
        let mut split: std::collections::HashSet<RrsetKey> = std::collections::HashSet::new();
        let mut finish =
            |g: Option<(RrsetKey, u32, Vec<Vec<u8>>)>,
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
        parse::for_each_record(prev, &origin, |r| {
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
    }
    phase("previous read");

    // Jobs: every RRset the zone signs, with every key that signs it,
    // unless a signature that still fits can be kept.
    // (node, RRset, key) of each signature to make; kept ones go straight
    // into their RRsets.
    let mut slots: Vec<(usize, usize, usize)> = Vec::new();
    let mut kept: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let refresh_before = rrsig_time(Timestamp::from_unix(now.unix() + i64::from(refresh)))?;
    // Cores: one formatting thread each, the default sessions and the
    // session probe's budget.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let formatters = cores;
    // Signatures of the previous signing whose RRset is gone.
    let gone = std::cell::Cell::new(0usize);
    let mut passed = |e: state::NodeEntry<'_>| gone.set(gone.get() + e.signatures());
    // Nodes whose text (and state record) carry over from the previous
    // signing as they are: same records, every signature kept, none new.
    let mut reuse: Vec<Option<(&[u8], &[u8])>> = Vec::new();
    if cursor.is_some() {
        reuse.resize(zone.nodes.len(), None);
    }
    let mut reused = 0usize;
    // Each node's digest, to compare with the previous signing's: one
    // SHA-256 per node, computed on every core.
    let digests: Vec<[u8; 32]> = if cursor.is_some() {
        let per = zone.nodes.len().div_ceil(formatters.max(1)).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = zone
                .nodes
                .chunks(per)
                .map(|part| {
                    s.spawn(move || part.iter().map(state::node_digest).collect::<Vec<_>>())
                })
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
    } else {
        Vec::new()
    };
    // One pair of buffers for every node (a big zone has 100k's of them).
    let mut node_kept: Vec<(usize, std::borrow::Cow<'_, [u8]>)> = Vec::new();
    let mut candidates: Vec<(std::borrow::Cow<'_, [u8]>, bool)> = Vec::new();
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
            // RFC 7344 §4.1: CDS and CDNSKEY are signed by the KSKs too.
            let signers = if matches!(set.rtype, rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY) {
                ksk_idx
            } else {
                zsk_idx
            };
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
            for &k in signers {
                let key = &engine_keys[k];
                let reusable = candidates.iter().find(|(sig, verify)| {
                    (*verify || unchanged)
                        && reusable(sig, &node.owner, set, key, &origin, refresh_before, *verify)
                });
                match reusable {
                    Some((sig, _)) => {
                        node_kept.push((si, sig.clone()));
                        kept_here += 1;
                    }
                    None => {
                        slots.push((ni, si, k));
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
                reuse[ni] = Some(carried);
                reused += node_kept.len();
            }
            _ => {
                kept.extend(
                    node_kept
                        .drain(..)
                        .map(|(si, sig)| (ni, si, sig.into_owned())),
                );
                stats.dropped += node_dropped + left;
            }
        }
    }
    if let Some(c) = cursor {
        c.rest(&mut passed);
    }
    stats.dropped += gone.get();
    stats.dropped += old.values().map(Vec::len).sum::<usize>();
    stats.retained = kept.len() + reused;
    phase("matched");
    stats.generated = slots.len();
    // Exact capacity: a Vec that grows from empty reserves four slots, which
    // for 100k-name zones is tens of megabytes of nothing.
    let per_set = |t: u16| {
        if matches!(t, rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY) {
            ksk_idx.len()
        } else {
            zsk_idx.len()
        }
    };
    for (ni, si, sig) in kept {
        let set = &mut zone.nodes[ni].rrsets[si];
        if set.rrsigs.capacity() == 0 {
            set.rrsigs.reserve_exact(per_set(set.rtype));
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
    let jobs: Vec<Job<'_>> = slots
        .iter()
        .map(|&(ni, si, k)| Job {
            owner: &zone.nodes[ni].owner,
            set: &zone.nodes[ni].rrsets[si],
            key: k,
        })
        .collect();

    // Sign.
    let threads = args
        .threads
        .unwrap_or(match cfg.token.profile.max_sessions {
            0 => cores,
            m => cores.min(m as usize),
        })
        .max(1);
    let mechs: Vec<(Vec<u8>, SignMechanism)> = keys
        .signing
        .iter()
        .map(|(k, alg)| (k.cka_id.clone(), mechanism(*alg)))
        .collect();
    let mut pool = token.signer_pool(&pin, threads, &mechs, super::key_objects(cfg))?;
    tracing::debug!("signing with {}", pool.key_objects());
    phase("token ready");
    // What goes into the DNSKEY RRset, and what signs, must be what the
    // token holds: a keystore record is not trusted to name a public key on
    // its own.
    let unpublished = signing
        .iter()
        .copied()
        .filter(|k| !keys.published.iter().any(|p| p.id == k.id));
    for (k, what) in keys
        .published
        .iter()
        .map(|k| (k, "published"))
        .chain(unpublished.map(|k| (k, "signing")))
    {
        let (alg, spec) = super::keys::record_spec(k)?;
        let held = pool.public_key(&k.cka_id, spec).map_err(|e| {
            Failure::Drift(format!(
                "{what} key {} of {origin}: {e}; run `dnsseal keys reconcile`",
                k.key_tag
            ))
        })?;
        if super::keys::dnskey_public_key(alg, &held)? != k.public_key {
            return Err(Failure::Drift(format!(
                "{what} key {} of {origin}: the token holds another public key under CKA_ID {}; run `dnsseal keys reconcile`",
                k.key_tag,
                hex::encode(&k.cka_id)
            ))
            .into());
        }
    }
    // A software token and the host checks share the cores: unless
    // --threads says otherwise, open only the sessions the signing can use
    // (a probe of a few milliseconds; not worth it for a few signatures).
    let mut probe = None;
    if args.threads.is_none()
        && !args.no_verify
        && cfg.token.profile.software_token
        && pool.workers() > 1
        && jobs.len() >= PROBE_MIN_SIGNATURES
    {
        let mut uses = vec![0usize; engine_keys.len()];
        for job in &jobs {
            uses[job.key] += 1;
        }
        let key = (0..uses.len()).max_by_key(|&k| uses[k]).unwrap_or(0);
        let measured = crate::sign::engine::probe_sessions(
            &TokenSigner { pool: &pool },
            key,
            &engine_keys[key],
            cores,
        )?;
        tracing::debug!(
            "session probe: C_Sign {:.0} us, check {:.0} us, {} cores: {} session(s)",
            measured.sign_us,
            measured.check_us,
            measured.cores,
            measured.sessions
        );
        pool.keep(measured.sessions);
        probe = Some(measured);
    }
    let total = jobs.len();
    let show = std::io::stderr().is_terminal() && !ctx.quiet && total > 2_000;
    let last = std::sync::Mutex::new(Instant::now());
    let progress = move |n: usize| {
        if let Ok(mut t) = last.lock() {
            if t.elapsed().as_millis() >= 200 {
                *t = Instant::now();
                eprint!(
                    "\rsigning: {n}/{total} signatures ({}%)   ",
                    n * 100 / total.max(1)
                );
            }
        }
    };
    let engine = Engine {
        keys: &engine_keys,
        signer_name: origin.wire(),
        validity,
        verify: !args.no_verify,
        progress: if show { Some(&progress) } else { None },
    };
    let max_ttl = zone
        .nodes
        .iter()
        .flat_map(|n| n.rrsets.iter().filter(|s| n.signs(s.rtype)).map(|s| s.ttl))
        .max()
        .unwrap_or(0);
    let sign_started = Instant::now();
    phase("jobs planned");
    // The signed zone is written while the token signs: each run of nodes
    // goes to the formatting threads as soon as its last signature is made,
    // and no signature is kept. Formatting (text and state) is most of the
    // host's work when few signatures are new, so it runs in parallel; one
    // thread writes the formatted runs in order.
    let out = ZoneWriter::new(&output, &zone.origin)?;
    let nodes = &zone.nodes;
    let carried = &reuse[..];
    let buffers = &Buffers::default();
    let (signed, written) = std::thread::scope(|s| {
        // The formatters share the receiver and drop it when they stop, so
        // that a writer failure stops the feed instead of blocking it.
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<Chunk>(2 * formatters);
        let chunk_rx = std::sync::Arc::new(std::sync::Mutex::new(chunk_rx));
        let (text_tx, text_rx) = std::sync::mpsc::sync_channel::<Formatted>(2 * formatters);
        for _ in 0..formatters {
            let (chunk_rx, text_tx) = (chunk_rx.clone(), text_tx.clone());
            s.spawn(move || loop {
                let next = match chunk_rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(chunk) = next else { return };
                let seq = chunk.seq;
                if text_tx
                    .send((seq, format_chunk(nodes, carried, buffers, chunk)))
                    .is_err()
                {
                    return;
                }
            });
        }
        drop(text_tx);
        drop(chunk_rx);
        let writer = s.spawn(move || write_in_order(out, text_rx, buffers));
        let mut feed = Feed::new(chunk_tx);
        let mut sink = |i: usize, sig: Vec<u8>| -> Result<(), String> {
            let (ni, si, _) = slots[i];
            feed.complete_before(ni)?;
            feed.fresh.push((ni, si, sig));
            Ok(())
        };
        let signed = engine.run_ordered(&jobs, &TokenSigner { pool: &pool }, &mut sink);
        let fed = match signed {
            Ok(()) => feed.finish(nodes.len()),
            Err(_) => Ok(()),
        };
        drop(feed);
        let written = match writer.join() {
            Ok(w) => w,
            Err(_) => Err(anyhow::anyhow!("the zone writer panicked")),
        };
        (signed.map(|()| fed), written)
    });
    phase("signed");
    let sign_secs = sign_started.elapsed().as_secs_f64();
    if show {
        eprintln!();
    }
    // A writer failure explains a stopped signing run better than the
    // engine's "output stopped".
    let out = written?;
    signed?.map_err(|e| anyhow::anyhow!("formatting the signed zone: {e}"))?;
    drop(jobs);
    out.finish()?;
    phase("written");
    // Freeing a big zone's many small allocations takes a noticeable part
    // of an incremental run; nothing below needs the zone, so it is freed
    // beside the rest of the run (or by the exit of the process).
    drop(reuse);
    std::thread::spawn(move || drop((zone, state)));
    // Rollover waits count from here: this generation of the key set is
    // now in a signed zone.
    ks.record_signing(&zone_s, generation, now, dnskey_ttl, max_ttl)?;
    phase("recorded");
    let secs = started.elapsed().as_secs_f64();
    let detail = format!(
        "signed {} into {} (serial {} -> {}, {}, keys {}, host verification {}): {} signatures generated, {} retained, {} dropped",
        args.zonefile.display(),
        output.display(),
        serial.0,
        serial.1,
        if let Some(p) = &nsec3 { format!("NSEC3 iterations {} salt {} opt-out {}", p.iterations, if p.salt.is_empty() { "-".into() } else { hex::encode(&p.salt) }, p.opt_out) } else { "NSEC".into() },
        signing.iter().map(|k| k.key_tag.to_string()).collect::<Vec<_>>().join(","),
        if args.no_verify { "OFF (-P)" } else { "on" },
        stats.generated,
        stats.retained,
        stats.dropped
    );
    ctx.audit(
        cfg,
        &mut ks,
        Event {
            command: "sign".into(),
            zone: Some(origin.to_string()),
            detail: detail.clone(),
            ..Event::default()
        },
    )?;
    phase("audited");
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "zone": origin.to_string(),
            "output": output,
            "serial": serial.1,
            "signatures_generated": stats.generated,
            "signatures_retained": stats.retained,
            "signatures_dropped": stats.dropped,
            "seconds": secs,
            "signing_seconds": sign_secs,
            "signatures_per_second": stats.generated as f64 / sign_secs.max(1e-9),
            "threads": pool.workers(),
            "key_objects": pool.key_objects(),
            // How the sessions were sized, when a probe sized them.
            "session_probe": probe,
            // Where --incremental found the previous signatures: the
            // signing state, or the signed zone's text.
            "incremental_from": args.incremental.as_ref().map(|_| if from_state { "state" } else { "text" }),
        }));
    }
    if !ctx.quiet {
        eprintln!("{}", output.display());
        eprintln!(
            "Signatures generated: {:>10}\nSignatures retained:  {:>10}\nSignatures dropped:   {:>10}\nRuntime in seconds:   {:>10.3}\nSignatures per second:{:>10.0}",
            stats.generated,
            stats.retained,
            stats.dropped,
            secs,
            stats.generated as f64 / sign_secs.max(1e-9)
        );
    }
    Ok(())
}

/// Logs the resident memory at a phase of the run (debug level), to see
/// where a big zone's memory goes.
fn phase(name: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .map(|l| l[k.len()..].trim().to_string())
                .unwrap_or_default()
        };
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let ms = START.get_or_init(Instant::now).elapsed().as_millis();
        tracing::debug!(phase = name, ms, rss = %field("VmRSS:"), peak = %field("VmHWM:"), "memory");
    }
}

/// The type an RRSIG covers; 0 (no type) for RDATA too short to say, which
/// then matches no RRset and counts as dropped.
fn rrsig_type_covered(rdata: &[u8]) -> u16 {
    Rrsig::covered(rdata).unwrap_or(0)
}

/// Whether an old signature can stay: made by this key for this owner,
/// TTL and signer, not expiring within the refresh interval, and (when
/// `check`) verifying over the RRset as it is now.
fn reusable(
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
    crate::sign::engine::append_rrset(&mut msg, owner, set);
    crate::sign::verify(key.algorithm, &key.public_key, &msg, sig.signature())
}

/// Puts the NSEC3 records into the zone's nodes, in canonical order.
fn merge_nsec3(zone: &mut Zone, mut chain: Vec<dnssec::Nsec3Node>) {
    // Both lists are already in canonical order: the zone's nodes by
    // construction, the chain by hash (every NSEC3 owner is a child of the
    // apex whose one label, base32hex, sorts like the hash bytes). The merge
    // runs backwards in place, in the zone's own vector grown once: no
    // second vector of nodes, no sort keys, no index of owners.
    use std::cmp::Ordering;
    let nodes = &mut zone.nodes;
    let n = nodes.len();
    nodes.reserve_exact(chain.len());
    nodes.resize_with(n + chain.len(), Node::default);
    // nodes[..i] are the old nodes still to place; nodes[k..] is done.
    let (mut i, mut k) = (n, nodes.len());
    while let Some(c) = chain.pop() {
        // Old nodes that sort after this NSEC3 owner go first.
        while i > 0 && rr::cmp_names(&nodes[i - 1].owner, &c.owner) == Ordering::Greater {
            k -= 1;
            nodes.swap(i - 1, k);
            i -= 1;
        }
        k -= 1;
        if i > 0 && nodes[i - 1].owner == c.owner {
            // A node of that name exists: the NSEC3 joins its RRsets.
            dnssec::insert_rrset(&mut nodes[i - 1], c.rrset);
            nodes.swap(i - 1, k);
            i -= 1;
        } else {
            nodes[k] = Node {
                owner: c.owner,
                kind: NodeKind::Authoritative,
                rrsets: vec![c.rrset],
            };
        }
    }
    // The old nodes before every NSEC3 owner stay where they are; slots
    // left over by names that had both (rare) close the gap.
    let gap = k - i;
    if gap > 0 {
        nodes.drain(i..k);
    }
}

/// Checks the parent's DS records (RFC 4035 §5.2) against the keys that
/// sign the DNSKEY RRset.
fn check_ds(
    file: &Path,
    origin: &ZoneName,
    report: &mut crate::sign::check::Report,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", file.display())))?;
    let mut matched = 0;
    let mut seen = 0;
    let mut unmatched = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line
            .split(';')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let Some(i) = fields.iter().position(|f| f.eq_ignore_ascii_case("DS")) else {
            continue;
        };
        let bad = || Failure::BadInput(format!("{}:{}: not a DS record", file.display(), n + 1));
        let tag: u16 = fields
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let alg: u8 = fields
            .get(i + 2)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest_type: crate::zone::DigestType = fields
            .get(i + 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let digest =
            hex::decode(fields.get(i + 4..).ok_or_else(bad)?.concat()).map_err(|_| bad())?;
        seen += 1;
        let want = crate::zone::Ds {
            key_tag: tag,
            algorithm: alg,
            digest_type,
            digest,
        };
        let signer = report
            .dnskey_signers
            .iter()
            .any(|k| k.ds(origin, digest_type) == want);
        if signer {
            matched += 1;
        } else {
            unmatched.push(format!(
                "DS {tag} {alg} {} (line {})",
                digest_type.number(),
                n + 1
            ));
        }
    }
    if seen == 0 {
        return Err(Failure::BadInput(format!("{}: no DS records", file.display())).into());
    }
    if matched == 0 {
        report.errors.push(format!(
            "no DS of the parent matches a KSK/CSK that signs the DNSKEY RRset ({}): validators would find the zone bogus",
            unmatched.join(", ")
        ));
    } else {
        // A DS for a key not yet (or no longer) in the zone is normal
        // during a double-DS rollover.
        for u in unmatched {
            tracing::warn!(
                "{u} matches no key that signs the DNSKEY RRset (fine during a KSK rollover)"
            );
        }
    }
    Ok(())
}

/// `dnsseal verify`.
pub fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<()> {
    let origin = parse_zone(&args.origin)?;
    let parsed = parse::parse_file(&args.zonefile, &origin)?;
    let now = rrsig_time(ctx.now())?;
    let mut report = crate::sign::check::check_zone(parsed, &origin, now)?;
    if let Some(ds_file) = &args.ds {
        check_ds(ds_file, &origin, &mut report)?;
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "zone": origin.to_string(),
            "denial": report.denial,
            "rrsets_checked": report.rrsets_checked,
            "signatures_checked": report.signatures_checked,
            "errors": report.errors,
        }))?;
    } else {
        for e in report.errors.iter().take(50) {
            eprintln!("{}: {e}", args.zonefile.display());
        }
        if report.errors.len() > 50 {
            eprintln!("... and {} more", report.errors.len() - 50);
        }
    }
    if !report.errors.is_empty() {
        return Err(Failure::Verify(format!(
            "{}: {} problem(s) in the signed zone {origin}",
            args.zonefile.display(),
            report.errors.len()
        ))
        .into());
    }
    if !ctx.json && !ctx.quiet {
        outln!(
            "{}: {origin} verifies: {} RRsets, {} signatures, {} chain complete",
            args.zonefile.display(),
            report.rrsets_checked,
            report.signatures_checked,
            report.denial
        );
    }
    Ok(())
}
