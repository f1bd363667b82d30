//! The signing engine: RRSIG RDATA for a list of RRsets, made by a pool of
//! token sessions working in parallel, every signature checked on the host.
//!
//! Each worker owns one token session. Workers take jobs in chunks from a
//! shared counter, build the RFC 4034 §3.1.8.1 signing input (RRSIG RDATA
//! without the signature, then the RRset in canonical form and order),
//! hash it on the host and have the token sign the digest; checker threads
//! verify each signature on the host (`super::verify`) and keep the RRSIG
//! RDATA. A token error or a signature that does not verify stops every
//! worker; nothing is returned.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::Mutex;

use super::{token_input, verify, TokenInput};
use crate::zone::model::RrSet;
use crate::zone::rr::{self, CLASS_IN};
use crate::zone::Algorithm;

/// Jobs a worker takes at a time.
const CHUNK: usize = 64;

/// Why a signer could not sign, kept whole: for the token a
/// [`crate::token::TokenError`], so that a locked PIN or a removed device
/// reaches the caller with its own message and exit code (it is the
/// `source` of [`SignError::Token`]).
pub type SignerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the engine needs from a key store: sessions that sign.
pub trait Signer: Sync {
    /// How many workers may sign at once (one session each).
    fn workers(&self) -> usize;
    /// Signs prepared input with key `key` on worker `worker`'s session.
    fn sign(&self, worker: usize, key: usize, input: &TokenInput) -> Result<Vec<u8>, SignerError>;
}

/// A key the engine signs with.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub algorithm: Algorithm,
    pub key_tag: u16,
    /// DNSKEY public key field, for host verification.
    pub public_key: Vec<u8>,
}

/// Validity of new signatures.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub inception: u32,
    pub expiration: u32,
    /// Expirations are spread over [expiration - jitter, expiration].
    pub jitter: u32,
}

/// One RRset to sign with one key.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub owner: &'a [u8],
    pub set: &'a RrSet,
    pub key: usize,
}

/// Why signing stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signer's own error is the source.
    #[error("the token failed to sign")]
    Token(#[source] SignerError),
    /// The run stopped short without a signer error.
    #[error("the token failed to sign: {0}")]
    Stopped(String),
    #[error("a signature by key {key_tag} over {owner} {rtype} does not verify with its public key; nothing was written")]
    BadSignature {
        key_tag: u16,
        owner: String,
        rtype: String,
    },
    #[error("cannot write the signed zone: {0}")]
    Output(String),
    /// Ctrl-C or SIGTERM ([`crate::interrupt`]).
    #[error(transparent)]
    Interrupted(crate::interrupt::Interrupted),
}

/// Options of one engine run.
pub struct Engine<'a> {
    pub keys: &'a [SigningKey],
    /// The zone apex (the signer name), canonical wire form.
    pub signer_name: &'a [u8],
    pub validity: Validity,
    /// Verify every signature on the host (on unless `-P`).
    pub verify: bool,
    /// The run's stop flag (and the process's signals).
    pub cancel: &'a crate::interrupt::Cancel,
    /// Called with the number of signatures done so far (from workers).
    pub progress: Option<&'a (dyn Fn(usize) + Sync)>,
}

impl Engine<'_> {
    /// RRSIG RDATA for every job, in job order.
    pub fn run(&self, jobs: &[Job<'_>], signer: &dyn Signer) -> Result<Vec<Vec<u8>>, SignError> {
        let mut results: Vec<Vec<u8>> = Vec::with_capacity(jobs.len());
        self.run_ordered(jobs, signer, &mut |_, rdata| {
            results.push(rdata);
            Ok(())
        })?;
        Ok(results)
    }

    /// Signs every job and hands each RRSIG RDATA to `sink` in job order,
    /// as soon as it and all before it are made, on the calling thread:
    /// the caller can write the signed zone while the token still signs,
    /// and no signature needs to be kept after it is written. The first
    /// failure (token, verification, or `sink`) stops the workers and is
    /// returned.
    pub fn run_ordered(
        &self,
        jobs: &[Job<'_>],
        signer: &dyn Signer,
        sink: &mut dyn FnMut(usize, Vec<u8>) -> Result<(), String>,
    ) -> Result<(), SignError> {
        let workers = signer.workers().max(1).min(jobs.len().max(1));
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let checked = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<SignError>> = Mutex::new(None);
        let fail = |e: SignError| {
            stop.store(true, Ordering::Relaxed);
            if let Ok(mut f) = failure.lock() {
                f.get_or_insert(e);
            }
        };
        // Bounded: workers wait when the writer falls behind. Signatures
        // travel a chunk at a time: one hand-over per signature cost more
        // in wake-ups than the host work it feeds.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4 * workers);
        // With the host check on, token sessions only sign and separate
        // threads check: a software token and the verifier share the CPU,
        // and the token's sessions need not wait for the check.
        let checkers = if self.verify {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(workers)
                .max(1)
        } else {
            0
        };
        let (vtx, vrx) = std::sync::mpsc::sync_channel::<Batch>(4 * workers);
        let vrx = Mutex::new(vrx);
        let mut handed = 0usize;
        let joined = std::thread::scope(|s| {
            let mut handles: Vec<_> = (0..checkers)
                .map(|_| {
                    let (vrx, tx, fail, stop, checked) = (&vrx, tx.clone(), &fail, &stop, &checked);
                    s.spawn(move || loop {
                        let next = match vrx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(batch) = next else { return };
                        if stop.load(Ordering::Relaxed) {
                            continue;
                        }
                        let Some(checked) = self.check_batch(jobs, batch, fail, checked) else {
                            continue;
                        };
                        if tx.send(checked).is_err() {
                            return;
                        }
                    })
                })
                .collect();
            handles.extend((0..workers).map(|w| {
                let (next, done, stop, fail, checked) = (&next, &done, &stop, &fail, &checked);
                let tx = tx.clone();
                let vtx = vtx.clone();
                s.spawn(move || loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some(i) = self.cancel.received() {
                        fail(SignError::Interrupted(i));
                        break;
                    }
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= jobs.len() {
                        break;
                    }
                    let mut batch = Batch::with_capacity(CHUNK);
                    for (i, job) in jobs.iter().enumerate().skip(start).take(CHUNK) {
                        if let Err(e) = self.sign_one(w, i, job, signer, &mut batch) {
                            fail(e);
                            return;
                        }
                    }
                    let sent = if checkers > 0 {
                        // The checkers are behind: check this batch here
                        // rather than wait, so that no core idles while
                        // there is checking to do.
                        match vtx.try_send(batch) {
                            Ok(()) => true,
                            Err(TrySendError::Full(batch)) => {
                                match self.check_batch(jobs, batch, fail, checked) {
                                    Some(checked) => tx.send(checked).is_ok(),
                                    None => return,
                                }
                            }
                            Err(TrySendError::Disconnected(_)) => false,
                        }
                    } else {
                        tx.send(batch).is_ok()
                    };
                    if !sent {
                        return;
                    }
                    let n = done.fetch_add(CHUNK.min(jobs.len() - start), Ordering::Relaxed);
                    if let Some(p) = self.progress {
                        p(n + CHUNK.min(jobs.len() - start));
                    }
                })
            }));
            drop(vtx);
            drop(tx);
            // Reorder: chunks finish out of order, by at most a few chunks.
            let mut early: std::collections::HashMap<usize, Vec<u8>> =
                std::collections::HashMap::new();
            for batch in rx.iter() {
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                // Copied out here: the batch goes back whole (see `Batch`).
                early.extend(
                    batch
                        .items
                        .iter()
                        .map(|item| (item.index, batch.rdata(item).to_vec())),
                );
                drop(batch);
                while let Some(r) = early.remove(&handed) {
                    if let Err(e) = sink(handed, r) {
                        fail(SignError::Output(e));
                        break;
                    }
                    handed += 1;
                }
            }
            handles
                .into_iter()
                .map(|h| h.join())
                .collect::<Result<Vec<_>, _>>()
        });
        joined.map_err(|_| SignError::Stopped("a signing worker panicked".into()))?;
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        self.all_done(jobs.len(), handed, checked.into_inner())
    }

    /// Whether a run without a failure made, handed on and (with the host
    /// check on) checked every one of its `jobs` signatures.
    fn all_done(&self, jobs: usize, handed: usize, checked: usize) -> Result<(), SignError> {
        if handed != jobs {
            return Err(SignError::Stopped(format!(
                "signature {handed} of {jobs} was not made"
            )));
        }
        // Whichever thread checked it, every signature handed on was
        // checked exactly once.
        if self.verify && checked != jobs {
            return Err(SignError::Stopped(format!(
                "{checked} of {jobs} signatures were checked on the host; nothing was written"
            )));
        }
        Ok(())
    }

    /// Makes one RRSIG and adds it to `out`: its RDATA, and the signed data
    /// when it is to be checked.
    fn sign_one(
        &self,
        worker: usize,
        index: usize,
        job: &Job<'_>,
        signer: &dyn Signer,
        out: &mut Batch,
    ) -> Result<(), SignError> {
        let key = &self.keys[job.key];
        let expiration = self
            .validity
            .expiration
            .wrapping_sub(jitter(index, self.validity.jitter));
        let prefix = rrsig_prefix(
            job.owner,
            job.set,
            key.algorithm.number(),
            key.key_tag,
            self.validity.inception,
            expiration,
            self.signer_name,
        );
        // The signed data (prefix and RRset), kept after the signature
        // only if it is to be checked, then the RDATA (prefix and
        // signature).
        let start = out.buf.len();
        out.buf.extend_from_slice(&prefix);
        append_rrset(&mut out.buf, job.owner, job.set);
        let input = token_input(key.algorithm, &out.buf[start..]);
        let sig = signer
            .sign(worker, job.key, &input)
            .map_err(SignError::Token)?;
        if !self.verify {
            out.buf.truncate(start);
        }
        let msg = start..out.buf.len();
        let rdata_at = out.buf.len();
        out.buf.extend_from_slice(&prefix);
        out.buf.extend_from_slice(&sig);
        out.items.push(Item {
            index,
            msg,
            rdata: rdata_at..out.buf.len(),
            sig_at: rdata_at + prefix.len(),
        });
        Ok(())
    }

    /// Checks a batch; on the first bad signature records the failure and
    /// returns `None`.
    fn check_batch(
        &self,
        jobs: &[Job<'_>],
        batch: Batch,
        fail: &dyn Fn(SignError),
        count: &AtomicUsize,
    ) -> Option<Batch> {
        for item in &batch.items {
            if let Err(e) = self.check(jobs, &batch, item) {
                fail(e);
                return None;
            }
        }
        count.fetch_add(batch.items.len(), Ordering::Relaxed);
        Some(batch)
    }

    /// The host check of one signature (invariant 5 of the design).
    fn check(&self, jobs: &[Job<'_>], batch: &Batch, item: &Item) -> Result<(), SignError> {
        let job = &jobs[item.index];
        let key = &self.keys[job.key];
        let msg = &batch.buf[item.msg.clone()];
        let sig = &batch.buf[item.sig_at..item.rdata.end];
        if verify(key.algorithm, &key.public_key, msg, sig) {
            Ok(())
        } else {
            Err(SignError::BadSignature {
                key_tag: key.key_tag,
                owner: crate::zone::model::display_name(job.owner),
                rtype: crate::zone::model::type_name(job.set.rtype),
            })
        }
    }
}

/// What a short probe measured of one signature and one check here.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SessionProbe {
    /// Wall time of one C_Sign on one session, in microseconds.
    pub sign_us: f64,
    /// CPU time of one host check, in microseconds.
    pub check_us: f64,
    /// Cores on this host.
    pub cores: usize,
    /// Sessions worth opening: about as many as keep pace with what the
    /// cores can sign and check together.
    pub sessions: usize,
}

/// For a token that does its work on this host's CPU (a software token)
/// with every signature checked here: times a few signatures on worker
/// 0 with key `key` and their checks (about 20 ms), and returns how many
/// sessions keep the cores busy. Signing and checking share the cores, so
/// they can make at most `cores / (S + V)` signatures a second, and `n`
/// sessions sign at most `n / S`, so the balance is `cores * S / (S + V)`
/// sessions, rounded to the nearest whole one (at least one, at most one
/// per core). More sessions only queue on the token's locks and take CPU
/// from the checks: ECDSA P-256 in SoftHSMv2 (S about 55-100 us, V about
/// 70-100 us here) gets one session on two cores; RSA, P-384 and Ed25519
/// sign several times slower than they check and get one per core.
pub fn probe_sessions(
    signer: &dyn Signer,
    key: usize,
    signing_key: &SigningKey,
    cores: usize,
) -> Result<SessionProbe, SignError> {
    let msg = [0x5au8; 128];
    let input = token_input(signing_key.algorithm, &msg);
    let check_one = |sig: &[u8]| {
        if verify(signing_key.algorithm, &signing_key.public_key, &msg, sig) {
            Ok(())
        } else {
            Err(SignError::BadSignature {
                key_tag: signing_key.key_tag,
                owner: "the session probe's test data".into(),
                rtype: "(no RRset)".into(),
            })
        }
    };
    // The first uses of a session and of a verifier pay one-time costs.
    for _ in 0..4 {
        check_one(&signer.sign(0, key, &input).map_err(SignError::Token)?)?;
    }
    let started = std::time::Instant::now();
    let mut sigs = Vec::new();
    while sigs.len() < 8
        || (started.elapsed() < std::time::Duration::from_millis(10) && sigs.len() < 512)
    {
        sigs.push(signer.sign(0, key, &input).map_err(SignError::Token)?);
    }
    let sign = started.elapsed().as_secs_f64() / sigs.len() as f64;
    let started = std::time::Instant::now();
    for sig in &sigs {
        check_one(sig)?;
    }
    let check = started.elapsed().as_secs_f64() / sigs.len() as f64;
    let cores = cores.max(1);
    let sessions = ((cores as f64) * sign / (sign + check).max(1e-12)).round() as usize;
    Ok(SessionProbe {
        sign_us: sign * 1e6,
        check_us: check * 1e6,
        cores,
        sessions: sessions.clamp(1, cores),
    })
}

/// Signatures one session made, on their way to the writer, in one
/// buffer. A batch crosses threads as two allocations, not two per
/// signature: memory that a session's thread allocated and another thread
/// frees goes back under the lock of the first thread's malloc arena, which
/// a software token's own allocations on that thread need too. (One buffer
/// per batch instead of two allocations per signature made runs with
/// verification about 3 % faster here, 100k delegations through SoftHSMv2.)
struct Batch {
    buf: Vec<u8>,
    items: Vec<Item>,
}

/// Where one signature's parts are in its batch's buffer.
struct Item {
    index: usize,
    /// The signed data (empty when not checked).
    msg: std::ops::Range<usize>,
    /// The RRSIG RDATA, whose last part, from `sig_at`, is the signature.
    rdata: std::ops::Range<usize>,
    sig_at: usize,
}

impl Batch {
    fn with_capacity(signatures: usize) -> Batch {
        Batch {
            buf: Vec::with_capacity(signatures * 256),
            items: Vec::with_capacity(signatures),
        }
    }

    fn rdata(&self, item: &Item) -> &[u8] {
        &self.buf[item.rdata.clone()]
    }
}

/// A spread in [0, jitter] that differs from signature to signature.
fn jitter(index: usize, jitter: u32) -> u32 {
    if jitter == 0 {
        return 0;
    }
    // splitmix64 of the job index: cheap, well spread, reproducible.
    let mut z = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % (u64::from(jitter) + 1)) as u32
}

/// RRSIG RDATA without the signature (RFC 4034 §3.1).
pub fn rrsig_prefix(
    owner: &[u8],
    set: &RrSet,
    algorithm: u8,
    key_tag: u16,
    inception: u32,
    expiration: u32,
    signer: &[u8],
) -> Vec<u8> {
    let mut labels = rr::label_count(owner);
    if rr::is_wildcard(owner) {
        labels -= 1;
    }
    let mut v = Vec::with_capacity(18 + signer.len());
    v.extend_from_slice(&set.rtype.to_be_bytes());
    v.push(algorithm);
    v.push(labels as u8);
    v.extend_from_slice(&set.ttl.to_be_bytes());
    v.extend_from_slice(&expiration.to_be_bytes());
    v.extend_from_slice(&inception.to_be_bytes());
    v.extend_from_slice(&key_tag.to_be_bytes());
    v.extend_from_slice(signer);
    v
}

/// The RRset in canonical form and order (RFC 4034 §6.2, §6.3), as it
/// follows the RRSIG RDATA in the signed data.
pub fn append_rrset(msg: &mut Vec<u8>, owner: &[u8], set: &RrSet) {
    for rdata in set.rdatas.iter() {
        msg.extend_from_slice(owner);
        msg.extend_from_slice(&set.rtype.to_be_bytes());
        msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        msg.extend_from_slice(&set.ttl.to_be_bytes());
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(rdata);
    }
}

#[cfg(test)]
mod tests {
    static NO_CANCEL: crate::interrupt::Cancel = crate::interrupt::Cancel(None);
    use super::*;
    use crate::zone::rr::Source;

    /// A software Ed25519 key standing in for the token; `corrupt` flips a
    /// bit of every signature, as a faulty token would.
    struct FakeSigner {
        key: aws_lc_rs::signature::Ed25519KeyPair,
        corrupt: bool,
        /// Corrupt only the signature over data that contains this.
        corrupt_over: Option<Vec<u8>>,
    }

    impl Signer for FakeSigner {
        fn workers(&self) -> usize {
            2
        }
        fn sign(
            &self,
            _worker: usize,
            _key: usize,
            input: &TokenInput,
        ) -> Result<Vec<u8>, SignerError> {
            let TokenInput::EdDsa(msg) = input else {
                return Err("not an Ed25519 input".into());
            };
            let mut sig = self.key.sign(msg).as_ref().to_vec();
            let marked = self
                .corrupt_over
                .as_ref()
                .is_some_and(|m| msg.windows(m.len()).any(|w| w == m.as_slice()));
            if self.corrupt || marked {
                sig[0] ^= 1;
            }
            Ok(sig)
        }
    }

    fn fake(corrupt: bool) -> (FakeSigner, SigningKey) {
        use aws_lc_rs::signature::KeyPair as _;
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let public_key = key.public_key().as_ref().to_vec();
        (
            FakeSigner {
                key,
                corrupt,
                corrupt_over: None,
            },
            SigningKey {
                algorithm: Algorithm::Ed25519,
                key_tag: 4242,
                public_key,
            },
        )
    }

    /// `n` owner names n00000.example. and so on, in wire form.
    fn owners(n: u32) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("\x06n{i:05}\x07example\x00").into_bytes())
            .collect()
    }

    fn a_set() -> RrSet {
        RrSet {
            rtype: 1,
            ttl: 300,
            rdatas: crate::zone::model::Rdatas::one(&[192, 0, 2, 1]),
            source: Source::default(),
            rrsigs: Vec::new(),
        }
    }

    /// One job per owner, all over `set` with key 0.
    fn jobs<'a>(owners: &'a [Vec<u8>], set: &'a RrSet) -> Vec<Job<'a>> {
        owners
            .iter()
            .map(|o| Job {
                owner: o,
                set,
                key: 0,
            })
            .collect()
    }

    /// An engine for example. that checks every signature.
    fn checking_engine(keys: &[SigningKey]) -> Engine<'_> {
        Engine {
            keys,
            signer_name: b"\x07example\x00",
            validity: Validity {
                inception: 1,
                expiration: 1000,
                jitter: 0,
            },
            verify: true,
            cancel: &NO_CANCEL,
            progress: None,
        }
    }

    /// Enough signatures that the checkers fall behind and the signing
    /// workers check batches themselves: one bad signature among 20 000
    /// still stops the run, wherever it falls.
    #[test]
    fn one_bad_signature_in_a_long_run_stops_it() {
        let (mut signer, key) = fake(false);
        let keys = [key];
        let owners = owners(20_000);
        let set = a_set();
        let jobs = jobs(&owners, &set);
        let engine = checking_engine(&keys);
        let mut made = 0;
        engine
            .run_ordered(&jobs, &signer, &mut |i, _| {
                assert_eq!(i, made);
                made += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(made, jobs.len());
        for at in [0usize, 7_777, 19_999] {
            signer.corrupt_over = Some(owners[at].clone());
            match engine.run(&jobs, &signer) {
                Err(SignError::BadSignature {
                    key_tag: 4242,
                    owner,
                    ..
                }) => {
                    assert_eq!(owner, format!("n{at:05}.example."));
                }
                other => panic!("bad signature over n{at:05} passed: {other:?}"),
            }
        }
    }

    /// A token that fails like a locked PIN does, mid-run.
    struct LockedSigner;

    impl Signer for LockedSigner {
        fn workers(&self) -> usize {
            2
        }
        fn sign(&self, _: usize, _: usize, _: &TokenInput) -> Result<Vec<u8>, SignerError> {
            Err(Box::new(crate::token::TokenError::PinLocked))
        }
    }

    /// The token's error stays the source of the engine's, so the message
    /// chain and the exit code are the token's (8 for a locked PIN).
    #[test]
    fn a_token_error_keeps_its_kind_and_exit_code() {
        let (_, key) = fake(false);
        let keys = [key];
        let owners = owners(10);
        let set = a_set();
        let jobs = jobs(&owners, &set);
        let err = checking_engine(&keys)
            .run(&jobs, &LockedSigner)
            .unwrap_err();
        let source = std::error::Error::source(&err).expect("a source");
        assert!(matches!(
            source.downcast_ref::<crate::token::TokenError>(),
            Some(crate::token::TokenError::PinLocked)
        ));
        let err = anyhow::Error::new(err);
        assert_eq!(
            crate::failure::exit_code(&err),
            crate::failure::exit::PIN_LOCKED
        );
        assert!(
            format!("{err:#}").starts_with("the token failed to sign: the token's PIN is locked")
        );
    }

    #[test]
    fn engine_signs_every_job_in_order_and_checks_each_signature() {
        let (signer, key) = fake(false);
        let keys = [key];
        let owners = owners(300);
        let set = a_set();
        let jobs = jobs(&owners, &set);
        let engine = checking_engine(&keys);
        let sigs = engine.run(&jobs, &signer).unwrap();
        assert_eq!(sigs.len(), 300);
        for (job, sig) in jobs.iter().zip(&sigs) {
            let end = sig.len() - 64;
            let mut msg = sig[..end].to_vec();
            append_rrset(&mut msg, job.owner, job.set);
            assert!(verify(
                Algorithm::Ed25519,
                &keys[0].public_key,
                &msg,
                &sig[end..]
            ));
        }

        // A signer that returns bad signatures stops the run: no output.
        let (bad, _) = fake(true);
        match engine.run(&jobs, &bad) {
            Err(SignError::BadSignature { key_tag: 4242, .. }) => {}
            other => panic!("{other:?}"),
        }
        // With -P the engine does not look (and so returns them).
        let unchecked = Engine {
            verify: false,
            ..engine
        };
        assert_eq!(unchecked.run(&jobs, &bad).unwrap().len(), 300);
        // Without the check (no signed data kept) the RDATA are the same
        // (Ed25519 signs deterministically).
        assert!(unchecked.run(&jobs, &signer).unwrap() == sigs);

        // The ordered sink sees every index once, in order, and a sink
        // failure (a full disk) stops the run with that error.
        let mut seen = Vec::new();
        engine
            .run_ordered(&jobs, &signer, &mut |i, _| {
                seen.push(i);
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
        let mut calls = 0;
        let r = engine.run_ordered(&jobs, &signer, &mut |i, _| {
            calls += 1;
            if i == 100 {
                Err("disk full".into())
            } else {
                Ok(())
            }
        });
        assert!(
            matches!(r, Err(SignError::Output(ref e)) if e == "disk full"),
            "{r:?}"
        );
        assert_eq!(calls, 101, "the sink was called after it failed");
    }

    #[test]
    fn jitter_stays_in_range_and_spreads() {
        let values: Vec<u32> = (0..1000).map(|i| jitter(i, 3600)).collect();
        assert!(values.iter().all(|&v| v <= 3600));
        let distinct: std::collections::BTreeSet<_> = values.iter().collect();
        assert!(distinct.len() > 500);
        assert_eq!(jitter(7, 0), 0);
    }

    /// The RFC 6605 §6.1 RRSIG's signed data, rebuilt by the engine's
    /// helpers, verifies with the RFC's key and signature.
    #[test]
    fn signed_data_matches_rfc6605() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        let owner = b"\x03www\x07example\x03net\x00";
        let set = RrSet {
            rtype: 1,
            ttl: 3600,
            rdatas: crate::zone::model::Rdatas::one(&[192, 0, 2, 1]),
            source: Source::default(),
            rrsigs: Vec::new(),
        };
        let mut msg = rrsig_prefix(
            owner,
            &set,
            13,
            55648,
            1_281_607_479,
            1_284_026_679,
            b"\x07example\x03net\x00",
        );
        append_rrset(&mut msg, owner, &set);
        let key = b64("GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==");
        let sig = b64("qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==");
        assert!(verify(Algorithm::EcdsaP256Sha256, &key, &msg, &sig));
    }
}
