//! The signing pipeline as one library call, [`sign_zone`]: resolved
//! options, the zone's keys and a token in; the signed zone written
//! atomically and an [`Outcome`] out.
//!
//! The steps: read and check the zone ([`read_zone`], called by the caller
//! first, before it takes the token); put in the DNSKEY RRset, CDS and
//! CDNSKEY ([`crate::policy::signing`]), the SOA serial and the NSEC or
//! NSEC3 chain; match old signatures ([`super::plan`]); open the token's
//! sessions (through the caller's `open`, sized here, after a short probe
//! on a software token); sign with the engine ([`super::engine`]) while the
//! output is formatted and written ([`super::output`]). The caller keeps
//! the keystore, the audit log and the printing.

use std::time::Instant;

use super::engine::{Engine, Job, SessionProbe, SignError, Signer, SigningKey, Validity};
use super::options::{rrsig_time, SignOptions};
use super::output::{format_chunk, write_in_order, Buffers, Chunk, Feed, Formatted, ZoneWriter};
use super::plan::{self, Carried, Plan, Previous, Signers, StateLoader, Stats};
use super::state::{Seal, SealKey, State};
use crate::clock::Timestamp;
use crate::failure::Failure;
use crate::policy::signing::{cds_rdata, Presigned, ZoneKeys};
use crate::policy::Policy;
use crate::zone::dnssec::{self, Nsec3Params};
use crate::zone::model::{self, Node, NodeKind, Rdatas, RrSet, Zone};
use crate::zone::rr::{self, rtype, Source};
use crate::zone::{parse, Work};

/// Fewest signatures for which a software token's sessions are sized by a
/// probe (below this the run is over before the probe pays).
const PROBE_MIN_SIGNATURES: usize = 2_000;

/// The token side of a run: sessions that sign, of which only the first
/// `n` may be kept once a probe has measured what the host can use.
pub trait Sessions: Signer {
    fn keep(&mut self, n: usize);
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The SOA serial before and after.
    pub serial: (u32, u32),
    pub stats: Stats,
    /// Seconds from the first signature to the last.
    pub signing_seconds: f64,
    /// How the sessions were sized, when a probe sized them.
    pub probe: Option<SessionProbe>,
    /// Whether `--incremental` found the previous signatures in the
    /// signing state (else in the signed zone's text).
    pub from_state: bool,
    /// The DNSKEY TTL used, and the largest TTL of a signed RRset (for the
    /// rollover waits).
    pub dnskey_ttl: u32,
    pub max_ttl: u32,
}

impl Outcome {
    /// The run in one sentence, as its audit record says it.
    pub fn describe(&self, opts: &SignOptions, keys: &ZoneKeys) -> String {
        let denial = match &opts.nsec3 {
            Some(p) => format!(
                "NSEC3 iterations {} salt {} opt-out {}",
                p.iterations,
                if p.salt.is_empty() {
                    "-".into()
                } else {
                    hex::encode(&p.salt)
                },
                p.opt_out
            ),
            None => "NSEC".into(),
        };
        let tags: Vec<String> = keys.signing.iter().map(|k| k.key_tag.to_string()).collect();
        let skr = keys.presigned.as_ref().map_or(String::new(), |p| {
            format!(", DNSKEY RRset of the SKR period from {}", p.period)
        });
        format!(
            "signed {} into {} (serial {} -> {}, {denial}, keys {}{skr}, host verification {}): {} signatures generated, {} retained, {} dropped",
            opts.input.display(),
            opts.output.display(),
            self.serial.0,
            self.serial.1,
            tags.join(","),
            if opts.verify { "on" } else { "OFF (-P)" },
            self.stats.generated,
            self.stats.retained,
            self.stats.dropped
        )
    }
}

/// Progress of the signing: signatures done, of the total.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Signs `opts.input` into `opts.output` with `keys`. `loader` is the
/// previous signing's state, started early by the caller; `open` opens
/// the token's sessions for the given number of workers.
pub fn sign_zone<S: Sessions>(
    opts: &SignOptions,
    mut zone: Zone,
    keys: &ZoneKeys,
    policy: &Policy,
    loader: Option<StateLoader>,
    progress: Option<Progress<'_>>,
    open: impl FnOnce(usize) -> anyhow::Result<S>,
) -> anyhow::Result<(Outcome, S)> {
    let work = work_of(opts);
    // The SKR's RRSIGs cover its TTL: an offline-KSK zone publishes it.
    let dnskey_ttl = match &keys.presigned {
        Some(p) => p.dnskey_ttl,
        None => opts.dnskey_ttl.unwrap_or_else(|| zone.soa_minimum()),
    };
    let serial = add_dnssec_records(&mut zone, opts, keys, policy, dnskey_ttl, work)?;
    phase("chained");
    opts.cancel.check()?;
    let engine_keys: Vec<SigningKey> = keys
        .signing
        .iter()
        .map(|k| SigningKey {
            algorithm: k.algorithm,
            key_tag: k.key_tag,
            public_key: k.public_key.clone(),
        })
        .collect();
    let signers = Signers {
        keys: &engine_keys,
        ksk: &keys.ksk_index,
        zsk: &keys.zsk_index,
    };
    let validity = Validity {
        inception: rrsig_time(opts.times.inception)?,
        expiration: rrsig_time(opts.times.expiration)?,
        jitter: opts.times.jitter,
    };
    // Old signatures by (owner, type covered): the input's, then the
    // previous signing's (its state, or its text).
    let mut old = plan::input_signatures(&mut zone);
    let state = previous_state(loader, opts, keys)?;
    let from_state = state.is_some();
    let cursor = state.as_ref().map(State::cursor).transpose()?;
    if let (Some(prev), None) = (&opts.incremental, &cursor) {
        plan::read_previous_text(prev, &opts.origin, opts.limits, &mut old)?;
    }
    phase("previous read");
    let refresh_at = Timestamp::from_unix(opts.now.unix() + i64::from(opts.times.refresh));
    // Cores: one formatting thread each, the default sessions and the
    // session probe's budget.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let refresh_before = rrsig_time(refresh_at)?;
    plan::check_old_signatures(&zone, &signers, &mut old, refresh_before, cores);
    phase("old signatures checked");
    let previous = Previous { old, cursor };
    let Plan {
        slots,
        kept,
        carried,
        stats,
    } = plan::match_signatures(&zone, &signers, previous, refresh_before, cores)
        .map_err(|e| anyhow::anyhow!("--incremental: {e}; nothing written"))?;
    phase("matched");
    plan::insert_kept(&mut zone, kept, &signers);
    if let Some(p) = &keys.presigned {
        insert_presigned(&mut zone, p);
    }
    let threads = opts
        .threads
        .unwrap_or(match opts.max_sessions {
            0 => cores,
            m => cores.min(m),
        })
        .max(1);
    opts.cancel.check()?;
    let mut sessions = open(threads)?;
    phase("token ready");
    let jobs: Vec<Job<'_>> = slots
        .iter()
        .map(|&(ni, si, k)| Job {
            owner: &zone.nodes[ni].owner,
            set: &zone.nodes[ni].rrsets[si],
            key: k,
        })
        .collect();
    let probe = probe(opts, &mut sessions, &jobs, &engine_keys, cores)?;
    let total = jobs.len();
    let report = progress.map(|p| move |n: usize| p(n, total));
    let engine = Engine {
        keys: &engine_keys,
        signer_name: opts.origin.wire(),
        validity,
        verify: opts.verify,
        cancel: &opts.cancel,
        progress: report.as_ref().map(|p| p as &(dyn Fn(usize) + Sync)),
    };
    let max_ttl = zone
        .nodes
        .iter()
        .flat_map(|n| n.rrsets.iter().filter(|s| n.signs(s.rtype)).map(|s| s.ttl))
        .max()
        .unwrap_or(0);
    let sign_started = Instant::now();
    phase("jobs planned");
    let rereads = state.as_ref().map(State::rereads).transpose()?;
    let out = ZoneWriter::new(&opts.output, &zone.origin, rereads)?;
    let run = Run {
        engine: &engine,
        signer: &sessions,
        nodes: &zone.nodes,
        carried: &carried,
        slots: &slots,
        jobs: &jobs,
        formatters: cores,
    };
    let (signed, written) = run.sign_and_write(out);
    phase("signed");
    let signing_seconds = sign_started.elapsed().as_secs_f64();
    // A writer failure explains a stopped signing run better than the
    // engine's "output stopped".
    let out = written?;
    signed?.map_err(|e| anyhow::anyhow!("formatting the signed zone: {e}"))?;
    drop(jobs);
    // The last moment to stop with nothing written.
    opts.cancel.check()?;
    out.finish(|message| seal(&sessions, &signers, &engine_keys, message))?;
    phase("written");
    // Freeing a big zone's many small allocations takes a noticeable part
    // of an incremental run; nothing below needs the zone, so it is freed
    // beside the rest of the run (or by the exit of the process).
    drop(carried);
    std::thread::spawn(move || drop((zone, state)));
    let outcome = Outcome {
        serial,
        stats,
        signing_seconds,
        probe,
        from_state,
        dnskey_ttl,
        max_ttl,
    };
    Ok((outcome, sessions))
}

/// The previous signing's state, when `--incremental` names one that is
/// usable: sealed by a key of the zone (one it publishes or signs with).
fn previous_state(
    loader: Option<StateLoader>,
    opts: &SignOptions,
    keys: &ZoneKeys,
) -> anyhow::Result<Option<State>> {
    let (Some(loader), Some(previous)) = (loader, &opts.incremental) else {
        return Ok(None);
    };
    let seal_keys: Vec<SealKey<'_>> = keys
        .published
        .iter()
        .chain(&keys.signing)
        .map(|k| SealKey {
            key_tag: k.key_tag,
            algorithm: k.algorithm,
            public_key: &k.public_key,
        })
        .collect();
    loader.join(previous, &seal_keys)
}

/// Seals the signing state: a signature by the first ZSK (else KSK) over
/// `message`, verified on the host like every signature the token makes.
fn seal(
    signer: &impl Signer,
    signers: &Signers<'_>,
    keys: &[SigningKey],
    message: &[u8],
) -> std::io::Result<Seal> {
    let failed = |why: String| std::io::Error::other(format!("cannot seal the state: {why}"));
    let k = *signers
        .zsk
        .first()
        .or(signers.ksk.first())
        .ok_or_else(|| failed("no signing key".into()))?;
    let key = &keys[k];
    let signature = signer
        .sign(0, k, &super::token_input(key.algorithm, message))
        .map_err(|e| failed(e.to_string()))?;
    if !super::verify(key.algorithm, &key.public_key, message, &signature) {
        return Err(failed(format!(
            "the signature by key {} does not verify",
            key.key_tag
        )));
    }
    Ok(Seal {
        key_tag: key.key_tag,
        algorithm: key.algorithm.number(),
        signature,
    })
}

/// An incremental run, whose time is mostly reading and preparing the
/// zone, reads it and makes its chain on every core; a full run, whose
/// time is the token's, on this thread. Both build the zone's nodes on
/// this thread: the run's peak memory comes while they are built, and
/// built in parallel they took 3% more (300k delegations).
fn work_of(opts: &SignOptions) -> Work {
    if opts.incremental.is_some() {
        Work::AllCores
    } else {
        Work::OneThread
    }
}

/// Parses and builds the input zone, its warnings logged: the first step
/// of a run, which needs no token (the caller does it before it takes
/// the token, so that a bad or endless input never holds the token).
pub fn read_zone(opts: &SignOptions) -> anyhow::Result<Zone> {
    let work = work_of(opts);
    let parsed = parse::parse_file_with(
        &opts.input,
        &opts.origin,
        work == Work::AllCores,
        opts.limits,
    )
    .map_err(|e| Failure::BadInput(e.to_string()))?;
    phase("parsed");
    let zone = model::build(parsed, &opts.origin, Work::OneThread)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    phase("built");
    opts.cancel.check()?;
    for w in &zone.warnings {
        tracing::warn!("{w}");
    }
    if zone.stripped > 0 {
        tracing::info!("replaced {} DNSSEC records of the input", zone.stripped);
    }
    Ok(zone)
}

/// DNSKEY RRset, CDS/CDNSKEY, serial, chain; the serial before and after.
fn add_dnssec_records(
    zone: &mut Zone,
    opts: &SignOptions,
    keys: &ZoneKeys,
    policy: &Policy,
    dnskey_ttl: u32,
    work: Work,
) -> anyhow::Result<(u32, u32)> {
    let (mut dnskeys, cds, cdnskey, cds_ttl) = match &keys.presigned {
        Some(p) => (
            p.dnskeys.clone(),
            p.cds.clone(),
            p.cdnskey.clone(),
            p.cds_ttl,
        ),
        None => {
            let dnskeys = keys.published.iter().map(|k| k.dnskey().rdata()).collect();
            let (cds, cdnskey) = cds_rdata(&keys.all, &opts.origin, policy)?;
            (dnskeys, cds, cdnskey, dnskey_ttl)
        }
    };
    dnskeys.sort();
    dnskeys.dedup();
    for (t, mut rdatas, ttl) in [
        (rtype::DNSKEY, dnskeys, dnskey_ttl),
        (rtype::CDS, cds, cds_ttl),
        (rtype::CDNSKEY, cdnskey, cds_ttl),
    ] {
        rdatas.sort();
        rdatas.dedup();
        if t == rtype::DNSKEY || !rdatas.is_empty() {
            dnssec::insert_rrset(
                zone.apex_mut(),
                RrSet {
                    rtype: t,
                    ttl,
                    rdatas: Rdatas::from_sorted(rdatas.iter().map(Vec::as_slice)),
                    source: Source::default(),
                    rrsigs: Vec::new(),
                },
            );
        }
    }
    // The compact form starts with YYYYMMDD.
    let today: u32 = opts.now.compact()[..8].parse().unwrap_or(0);
    let serial = dnssec::set_serial(zone, opts.serial, opts.now.unix(), today)
        .ok_or_else(|| Failure::BadInput("the SOA RDATA is malformed".into()))?;
    add_chain(zone, opts.nsec3.as_ref(), dnskey_ttl, work);
    Ok(serial)
}

/// Puts an SKR period's KSK signatures on the apex RRsets they cover (the
/// planner made none for them: an offline-KSK zone has no KSK signer).
fn insert_presigned(zone: &mut Zone, p: &Presigned) {
    let apex = zone.apex_mut();
    for sig in &p.rrsigs {
        let Some(covered) = sig.get(..2).map(|t| u16::from_be_bytes([t[0], t[1]])) else {
            continue;
        };
        if let Some(set) = apex.rrsets.iter_mut().find(|s| s.rtype == covered) {
            set.rrsigs.push(sig.clone());
            set.rrsigs.sort_unstable();
        }
    }
}

fn add_chain(zone: &mut Zone, nsec3: Option<&Nsec3Params>, dnskey_ttl: u32, work: Work) {
    match nsec3 {
        None => dnssec::add_nsec_chain(zone, work),
        Some(p) => {
            // NSEC3PARAM has no TTL rule of its own; it gets the DNSKEY
            // RRset's, another apex record that changes only with policy.
            let chain = dnssec::add_nsec3_chain(zone, p, dnskey_ttl, work);
            phase("nsec3 made");
            merge_nsec3(zone, chain);
        }
    }
}

/// A software token and the host checks share the cores: unless
/// `--threads` says otherwise, open only the sessions the signing can use
/// (a probe of a few milliseconds; not worth it for a few signatures).
fn probe<S: Sessions>(
    opts: &SignOptions,
    sessions: &mut S,
    jobs: &[Job<'_>],
    engine_keys: &[SigningKey],
    cores: usize,
) -> anyhow::Result<Option<SessionProbe>> {
    if opts.threads.is_some()
        || !opts.verify
        || !opts.software_token
        || sessions.workers() <= 1
        || jobs.len() < PROBE_MIN_SIGNATURES
    {
        return Ok(None);
    }
    let mut uses = vec![0usize; engine_keys.len()];
    for job in jobs {
        uses[job.key] += 1;
    }
    let Some(key) = (0..uses.len()).max_by_key(|&k| uses[k]) else {
        return Ok(None);
    };
    let measured = super::engine::probe_sessions(&*sessions, key, &engine_keys[key], cores)?;
    tracing::debug!(
        "session probe: C_Sign {:.0} us, check {:.0} us, {} cores: {} session(s)",
        measured.sign_us,
        measured.check_us,
        measured.cores,
        measured.sessions
    );
    sessions.keep(measured.sessions);
    Ok(Some(measured))
}

/// What the signing and writing threads share.
struct Run<'r, 'z> {
    engine: &'r Engine<'r>,
    signer: &'r dyn Signer,
    nodes: &'z [Node],
    carried: &'r Carried,
    slots: &'r [(usize, usize, usize)],
    jobs: &'r [Job<'z>],
    formatters: usize,
}

/// The engine's result (and the feed's), and the writer's.
type Finished = (
    Result<Result<(), String>, SignError>,
    anyhow::Result<ZoneWriter>,
);

impl Run<'_, '_> {
    /// The signed zone is written while the token signs: each run of nodes
    /// goes to the formatting threads as soon as its last signature is
    /// made, and no signature is kept. Formatting (text and state) is most
    /// of the host's work when few signatures are new, so it runs in
    /// parallel; one thread writes the formatted runs in order.
    fn sign_and_write(&self, out: ZoneWriter) -> Finished {
        let (nodes, carried, formatters) = (self.nodes, &self.carried[..], self.formatters);
        let buffers = &Buffers::default();
        std::thread::scope(|s| {
            // The formatters share the receiver and drop it when they stop,
            // so that a writer failure stops the feed instead of blocking it.
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
            let slots = self.slots;
            let mut sink = |i: usize, sig: Vec<u8>| -> Result<(), String> {
                let (ni, si, _) = slots[i];
                feed.complete_before(ni)?;
                feed.fresh.push((ni, si, sig));
                Ok(())
            };
            let signed = self.engine.run_ordered(self.jobs, self.signer, &mut sink);
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
        })
    }
}

/// Puts the NSEC3 records into the zone's nodes, in canonical order.
pub fn merge_nsec3(zone: &mut Zone, mut chain: Vec<dnssec::Nsec3Node>) {
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

/// Logs the resident memory at a phase of the run (debug level), to see
/// where a big zone's memory goes.
pub fn phase(name: &str) {
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
