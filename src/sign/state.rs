//! The signing state: a binary companion of a signed zone file
//! (`SIGNED.dnsseal-state`), so that `sign --incremental SIGNED` need not
//! parse the signed zone's text again, nor format again what did not
//! change.
//!
//! It holds, for every node of the signed zone in the file's (canonical)
//! order: the owner, a digest of all its RRsets (type, TTL, canonical
//! RDATA), the length of its text in the file, and for each signed RRset
//! the type, a digest of the RRset and its RRSIG RDATA. A trailer binds it
//! to the signed zone: the BLAKE3 digest of the zone file it was written
//! with, a seal, then the BLAKE3 digest of the state itself. (BLAKE3 for
//! the bulk: it hashes 5 GB/s here against SHA-256's 1.4, and both files
//! are hashed on the incremental path; the small per-node and per-RRset
//! digests stay SHA-256, which is the faster of the two below a few hundred
//! octets.)
//!
//! The seal is a signature, made in the token by one of the zone's signing
//! keys, over [`SEAL_CONTEXT`] and the BLAKE3 digest of everything before
//! it, the signed zone's digest included. Text and signatures carried over
//! from the previous output are used only when the seal verifies with a
//! key of the zone's DNSKEY RRset ([`State::check_seal`]): whoever can
//! write the output directory but cannot use the token's keys cannot put
//! records or signatures into the next output through either file. The
//! context string keeps the seal from being anything a validator would
//! take for an RRSIG: signed data of an RRSIG starts with the RRSIG RDATA,
//! whose third octet is the algorithm, and the context's (`s`, 115) names
//! none.
//!
//! A state whose zone file was edited, replaced, truncated or copied
//! without it, or whose seal does not verify, is not used, and the zone's
//! text is read instead (its signatures then verified before they are
//! kept); so the state is a cache, never a second source of truth.
//!
//! Layout (integers big-endian):
//!
//! ```text
//! "dnsseal-state\0" version:u32 origin-length:u8 origin-wire head:u32
//! node:  owner-length:u8 owner-wire node-digest:[32] text-length:u32
//!        set-count:u8 set{set-count}
//! set:   type:u16 digest:[32] count:u8 (rdata-length:u16 rdata){count}
//! trailer: blake3(signed zone file):[32]
//!          seal-signature seal-length:u16 key-tag:u16 algorithm:u8
//!          blake3(everything before):[32]
//! ```
//!
//! `head` is the length of the zone file before its first node; each
//! node's text follows the one before it.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::reread::Reread;
use crate::zone::model::Node;
use crate::zone::rr;

const MAGIC: &[u8] = b"dnsseal-state\0";
const VERSION: u32 = 4;
/// The signed zone's digest before the seal, the seal's fixed fields and the
/// state's own digest after it.
const SEAL_FIELDS: usize = 2 + 2 + 1;
const TRAILER: usize = 32 + SEAL_FIELDS + 32;

/// What the seal signs before the digest of the state.
pub const SEAL_CONTEXT: &[u8] = b"dnsseal-state-seal\0";

/// A state's seal: the signing key (tag and DNSSEC algorithm number) and its
/// signature over [`seal_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub key_tag: u16,
    pub algorithm: u8,
    pub signature: Vec<u8>,
}

/// The message a seal signs: the context, then the digest of the state up
/// to and including the signed zone's digest.
pub fn seal_message(body_digest: &[u8; 32]) -> Vec<u8> {
    [SEAL_CONTEXT, body_digest.as_slice()].concat()
}

/// A key that may have sealed a state: tag, DNSSEC algorithm number and
/// DNSKEY public key field.
pub struct SealKey<'a> {
    pub key_tag: u16,
    pub algorithm: crate::zone::Algorithm,
    pub public_key: &'a [u8],
}

/// Where the state of a signed zone file lives.
pub fn path_for(signed: &Path) -> PathBuf {
    let mut p = signed.as_os_str().to_owned();
    p.push(".dnsseal-state");
    PathBuf::from(p)
}

/// A writer that hashes what passes through it (the signed zone on its way
/// to disk, so its digest is known when the state is finished).
pub struct Hashing<W> {
    inner: W,
    hash: blake3::Hasher,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: blake3::Hasher::new(),
        }
    }

    /// The digest of everything written so far.
    pub fn digest(&self) -> [u8; 32] {
        self.hash.finalize().into()
    }

    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, [u8; 32]) {
        (self.inner, self.hash.finalize().into())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Builds a state, node by node, in the signed zone's order.
pub struct StateWriter<W: Write> {
    out: Hashing<W>,
}

impl<W: Write> StateWriter<W> {
    /// `head`: the length of the zone file before its first node.
    pub fn new(out: W, origin: &[u8], head: u32) -> io::Result<Self> {
        let mut out = Hashing::new(out);
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_be_bytes())?;
        out.write_all(&[origin.len() as u8])?;
        out.write_all(origin)?;
        out.write_all(&head.to_be_bytes())?;
        Ok(StateWriter { out })
    }

    /// Node records encoded beforehand with [`encode_node`] (by the threads
    /// that format the signed zone), in order.
    pub fn encoded(&mut self, nodes: &[u8]) -> io::Result<()> {
        self.out.write_all(nodes)
    }

    /// Ends the state with the digest of the signed zone it describes and
    /// the seal `seal` makes over [`seal_message`]; returns the inner writer
    /// for the caller to sync and move into place.
    pub fn finish(
        mut self,
        signed_digest: &[u8; 32],
        seal: impl FnOnce(&[u8]) -> io::Result<Seal>,
    ) -> io::Result<W> {
        self.out.write_all(signed_digest)?;
        let seal = seal(&seal_message(&self.out.digest()))?;
        let len = u16::try_from(seal.signature.len()).map_err(|_| too_big("seal octets"))?;
        self.out.write_all(&seal.signature)?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&seal.key_tag.to_be_bytes())?;
        self.out.write_all(&[seal.algorithm])?;
        let (mut inner, own) = self.out.finish();
        inner.write_all(&own)?;
        Ok(inner)
    }
}

fn too_big(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("too many {what}"))
}

/// A signed RRset as the state keeps it: type, RRset digest, RRSIG RDATA.
pub type SignedSet<'a> = (u16, [u8; 32], Vec<&'a [u8]>);

/// Appends one node record: `node`, the length of its text, and its signed
/// RRsets, in the order written.
pub fn encode_node(
    out: &mut Vec<u8>,
    node: &Node,
    text_len: usize,
    signed: &[SignedSet<'_>],
) -> io::Result<()> {
    // Names are at most 255 octets and RDATA fits in 16 bits; no node has
    // 255 signed RRsets nor an RRset 255 signatures, but the format must
    // not wrap if one did.
    let sets = u8::try_from(signed.len()).map_err(|_| too_big("signed RRsets"))?;
    let text_len = u32::try_from(text_len).map_err(|_| too_big("bytes of text"))?;
    out.push(node.owner.len() as u8);
    out.extend_from_slice(&node.owner);
    out.extend_from_slice(&node_digest(node));
    out.extend_from_slice(&text_len.to_be_bytes());
    out.push(sets);
    for (rtype, digest, sigs) in signed {
        let count = u8::try_from(sigs.len()).map_err(|_| too_big("signatures"))?;
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(digest);
        out.push(count);
        for sig in sigs {
            out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
            out.extend_from_slice(sig);
        }
    }
    Ok(())
}

/// SHA-256 of every RRset of a node (type, TTL, canonical RDATA): equal
/// digests mean the node's records, and so its text bar signatures, are
/// what they were.
pub fn node_digest(node: &Node) -> [u8; 32] {
    let mut h = Sha256::new();
    for set in &node.rrsets {
        // The RDATA as stored is length-prefixed item by item, so the
        // concatenation cannot be read two ways.
        let rdatas = set.rdatas.as_bytes();
        h.update(set.rtype.to_be_bytes());
        h.update(set.ttl.to_be_bytes());
        h.update((rdatas.len() as u32).to_be_bytes());
        h.update(rdatas);
    }
    h.finalize().into()
}

/// SHA-256 of an RRset's TTL and canonical RDATA, to tell whether it
/// changed since the previous signing.
pub fn rrset_digest<'a>(ttl: u32, rdatas: impl Iterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ttl.to_be_bytes());
    for r in rdatas {
        h.update((r.len() as u32).to_be_bytes());
        h.update(r);
    }
    h.finalize().into()
}

/// A loaded state: checked whole, fresh and of this zone, with both files
/// held open (not in memory) for their second reading ([`State::cursor`],
/// [`State::rereads`]; see [`super::reread`]).
pub struct State {
    state: File,
    state_path: PathBuf,
    zone: File,
    zone_path: PathBuf,
    zone_len: u64,
    /// Where the node records start and end in the state file.
    start: u64,
    end: u64,
    /// Where the first node's text starts in the zone file.
    head: u64,
    seal: Seal,
    /// The digest the seal signed: of the state file up to and with the
    /// signed zone's digest (`end + 32` bytes).
    sealed: [u8; 32],
    /// The signed zone file's digest, as the state records it.
    zone_digest: [u8; 32],
}

/// Why a state was not used (the caller reads the signed zone's text).
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("no state file")]
    Missing,
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a dnsseal state of this version")]
    Format,
    #[error("damaged (its own digest does not match)")]
    Damaged,
    #[error("written for another zone")]
    OtherZone,
    #[error("the signed zone file changed since the state was written")]
    Stale,
    #[error("its seal does not verify with a key of the zone's DNSKEY RRset")]
    Unsealed,
}

/// Where a node carried over from the previous signing is in its files:
/// its text in the signed zone, its record in the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carry {
    pub text: Range<u64>,
    pub record: Range<u64>,
}

/// The longest header: magic, version, origin (at most 255 octets), head.
const HEADER_MAX: usize = MAGIC.len() + 4 + 1 + 255 + 4;

/// Bytes of a file gathered while it is hashed: `(offset, length, bytes)`,
/// filled in as the pass goes by.
type Window = (u64, usize, Vec<u8>);

/// Reads `file`'s `len` bytes once: the digest of the first `hashed`
/// bytes, that of the first `prefix` bytes (a point within `hashed`) on
/// the way, and the bytes each of `windows` asks for.
fn hash_pass(
    file: &File,
    len: u64,
    hashed: u64,
    prefix: Option<u64>,
    windows: &mut [Window],
) -> io::Result<([u8; 32], Option<[u8; 32]>)> {
    use std::os::unix::fs::FileExt as _;
    // Small: the pass runs while the new zone is built, at the run's peak.
    let mut buf = vec![
        0u8;
        (128 << 10)
            .min(usize::try_from(len).unwrap_or(128 << 10))
            .max(1)
    ];
    let (mut hash, mut snapshot) = (blake3::Hasher::new(), None);
    let mut pos = 0u64;
    while pos < len {
        let want = buf
            .len()
            .min(usize::try_from(len - pos).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        let (chunk, next) = (&buf[..n], pos + n as u64);
        // Offsets in this chunk of the file offsets `x`.
        let at = |x: u64| (x.clamp(pos, next) - pos) as usize;
        for (from, want, bytes) in windows.iter_mut() {
            let to = *from + *want as u64;
            bytes.extend_from_slice(&chunk[at(*from + bytes.len() as u64)..at(to)]);
        }
        match prefix.filter(|&p| p > pos && p <= next) {
            Some(p) => {
                hash.update(&chunk[..at(p)]);
                snapshot = Some(*hash.finalize().as_bytes());
                hash.update(&chunk[at(p)..at(hashed).max(at(p))]);
            }
            None => {
                hash.update(&chunk[..at(hashed)]);
            }
        }
        pos = next;
    }
    Ok((*hash.finalize().as_bytes(), snapshot))
}

impl State {
    /// Loads the state of `signed` for the zone `origin` (wire form), if it
    /// is whole and the signed zone file is still the one it describes.
    /// Both must be regular files of at most `limit` bytes; each is read
    /// once here, through its digest, and kept open, not in memory.
    pub fn load(signed: &Path, origin: &[u8], limit: u64) -> Result<State, Unusable> {
        use crate::files::{open_regular, ReadError};
        let open = |path: &Path| {
            open_regular(path, limit).map_err(|e| match e {
                ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound => Unusable::Missing,
                ReadError::Io(e) => Unusable::Io(e),
                e => Unusable::Io(io::Error::other(format!("{}: {e}", path.display()))),
            })
        };
        let state_path = path_for(signed);
        let (state, len) = open(&state_path)?;
        let version_end = MAGIC.len() + 4;
        if len < (version_end + 1 + 4 + TRAILER) as u64 {
            return Err(Unusable::Format);
        }
        // The trailer's fixed fields tell where the sealed part ends; read
        // them first, then once more in the pass that checks them.
        let tail_at = len - (SEAL_FIELDS + 32) as u64;
        let mut tail = [0u8; SEAL_FIELDS + 32];
        std::os::unix::fs::FileExt::read_exact_at(&state, &mut tail, tail_at)?;
        let seal_len = u64::from(u16::from_be_bytes([tail[0], tail[1]]));
        let body = len - 32;
        let end = (tail_at).checked_sub(seal_len + 32);
        let mut windows = [
            (0, HEADER_MAX, Vec::new()),
            (tail_at, SEAL_FIELDS + 32, Vec::new()),
            (end.unwrap_or(0), 32 + seal_len as usize, Vec::new()),
        ];
        let (own, sealed) = hash_pass(&state, len, body, end.map(|e| e + 32), &mut windows)?;
        let [(_, _, header), (_, _, trailer), (_, _, sealed_tail)] = windows;
        if header.len() < version_end + 1
            || &header[..MAGIC.len()] != MAGIC
            || header[MAGIC.len()..version_end] != VERSION.to_be_bytes()
        {
            return Err(Unusable::Format);
        }
        if trailer[..] != tail[..] || own[..] != trailer[SEAL_FIELDS..] {
            return Err(Unusable::Damaged);
        }
        let origin_end = version_end + 1 + usize::from(header[version_end]);
        let start = (origin_end + 4) as u64;
        let (Some(end), Some(sealed), true) = (end, sealed, header.len() >= origin_end + 4) else {
            return Err(Unusable::Format);
        };
        if start > end {
            return Err(Unusable::Format);
        }
        if &header[version_end + 1..origin_end] != origin {
            return Err(Unusable::OtherZone);
        }
        let h = &header[origin_end..origin_end + 4];
        let head = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let mut zone_digest = [0u8; 32];
        zone_digest.copy_from_slice(&sealed_tail[..32]);
        let (zone, zone_len) = open(signed)?;
        let (digest, _) = hash_pass(&zone, zone_len, zone_len, None, &mut [])?;
        if digest != zone_digest {
            return Err(Unusable::Stale);
        }
        let seal = Seal {
            key_tag: u16::from_be_bytes([tail[2], tail[3]]),
            algorithm: tail[4],
            signature: sealed_tail[32..].to_vec(),
        };
        Ok(State {
            state,
            state_path,
            zone,
            zone_path: signed.to_path_buf(),
            zone_len,
            start,
            end,
            head,
            seal,
            sealed,
            zone_digest,
        })
    }

    /// Checks the seal against the zone's keys: usable only when one of
    /// them, with the tag and algorithm the seal names, verifies it.
    pub fn check_seal(&self, keys: &[SealKey<'_>]) -> Result<(), Unusable> {
        let message = seal_message(&self.sealed);
        keys.iter()
            .filter(|k| {
                k.key_tag == self.seal.key_tag && k.algorithm.number() == self.seal.algorithm
            })
            .any(|k| super::verify(k.algorithm, k.public_key, &message, &self.seal.signature))
            .then_some(())
            .ok_or(Unusable::Unsealed)
    }

    /// The state file's sealed part, read again from its start.
    fn reread_state(&self) -> io::Result<Reread> {
        let file = self.state.try_clone()?;
        Ok(Reread::new(
            file,
            &self.state_path,
            self.end + 32,
            self.sealed,
        ))
    }

    /// A cursor over the node records, in order (a second reading of the
    /// state file, checked when it ends: [`Cursor::rest`]).
    pub fn cursor(&self) -> io::Result<Cursor> {
        let mut src = self.reread_state()?;
        src.copy(self.start, 0, &mut |_| Ok(()))?;
        Ok(Cursor {
            src,
            end: self.end,
            text_at: self.head,
            peeked: None,
            broken: None,
        })
    }

    /// The signed zone file and the state file, to be read again by the
    /// writer for the nodes carried over ([`Carry`]).
    pub fn rereads(&self) -> io::Result<Previous> {
        let zone = self.zone.try_clone()?;
        Ok(Previous {
            zone: Reread::new(zone, &self.zone_path, self.zone_len, self.zone_digest),
            state: self.reread_state()?,
        })
    }
}

/// The previous signing's files, as the writer reads them again.
pub struct Previous {
    pub zone: Reread,
    pub state: Reread,
}

/// One node of the previous signing.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub owner: Vec<u8>,
    pub digest: [u8; 32],
    /// Where the node's text is in the signed zone file.
    pub text: Range<u64>,
    /// Where the node's record is in the state file (to carry it into the
    /// next state unchanged).
    pub record: Range<u64>,
    pub sets: Vec<SetEntry>,
}

/// One signed RRset of the previous signing.
#[derive(Debug, Clone)]
pub struct SetEntry {
    pub rtype: u16,
    pub digest: [u8; 32],
    pub sigs: Vec<Vec<u8>>,
}

impl NodeEntry {
    /// How many signatures the node carried.
    pub fn signatures(&self) -> usize {
        self.sets.iter().map(|s| s.sigs.len()).sum()
    }
}

/// Walks a state's nodes alongside the new zone's nodes (both in canonical
/// order), reading the state file a second time.
pub struct Cursor {
    src: Reread,
    end: u64,
    text_at: u64,
    peeked: Option<NodeEntry>,
    /// Why the walk stopped early (reported by [`Cursor::rest`]).
    broken: Option<io::Error>,
}

impl Cursor {
    fn read(&mut self) -> Option<NodeEntry> {
        if self.broken.is_some() || self.src.position() >= self.end {
            return None;
        }
        match self.read_node() {
            Ok(e) => Some(e),
            Err(e) => {
                self.broken = Some(e);
                None
            }
        }
    }

    fn read_node(&mut self) -> io::Result<NodeEntry> {
        use std::io::Read as _;
        let r = &mut self.src;
        let start = r.position();
        let mut bytes = |n: usize| -> io::Result<Vec<u8>> {
            let mut v = vec![0u8; n];
            r.read_exact(&mut v)?;
            Ok(v)
        };
        let byte = |b: Vec<u8>| b[0];
        let owner = {
            let n = byte(bytes(1)?);
            bytes(usize::from(n))?
        };
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes(32)?);
        let l = bytes(4)?;
        let text_len = u64::from(u32::from_be_bytes([l[0], l[1], l[2], l[3]]));
        let nsets = byte(bytes(1)?);
        let mut sets = Vec::with_capacity(usize::from(nsets));
        for _ in 0..nsets {
            let t = bytes(2 + 32 + 1)?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&t[2..34]);
            let mut sigs = Vec::with_capacity(usize::from(t[34]));
            for _ in 0..t[34] {
                let l = bytes(2)?;
                sigs.push(bytes(usize::from(u16::from_be_bytes([l[0], l[1]])))?);
            }
            sets.push(SetEntry {
                rtype: u16::from_be_bytes([t[0], t[1]]),
                digest,
                sigs,
            });
        }
        let record = start..self.src.position();
        if record.end > self.end {
            return Err(io::Error::other("a node record runs past the node records"));
        }
        let text = self.text_at..self.text_at + text_len;
        self.text_at = text.end;
        Ok(NodeEntry {
            owner,
            digest,
            text,
            record,
            sets,
        })
    }

    fn peek(&mut self) -> Option<&NodeEntry> {
        if self.peeked.is_none() {
            self.peeked = self.read();
        }
        self.peeked.as_ref()
    }

    /// The node owned by `owner`, if the previous signing had it; nodes of
    /// owners before it (names no longer in the zone) go to `passed`.
    pub fn take_owner(
        &mut self,
        owner: &[u8],
        passed: &mut dyn FnMut(NodeEntry),
    ) -> Option<NodeEntry> {
        while let Some(e) = self.peek() {
            // Owners are in canonical (lowercase) form: equal octets are
            // the common case and need no label walk.
            let order = if e.owner == owner {
                Ordering::Equal
            } else {
                rr::cmp_names(&e.owner, owner)
            };
            match order {
                Ordering::Less => {
                    if let Some(e) = self.peeked.take() {
                        passed(e);
                    }
                }
                Ordering::Equal => return self.peeked.take(),
                Ordering::Greater => break,
            }
        }
        None
    }

    /// Every node not taken yet; then the check that the state file read
    /// this second time is the one checked at load (else nothing that
    /// came from it may be used).
    pub fn rest(mut self, passed: &mut dyn FnMut(NodeEntry)) -> io::Result<()> {
        while let Some(e) = self.peeked.take().or_else(|| self.read()) {
            passed(e);
        }
        if let Some(e) = self.broken {
            return Err(io::Error::other(format!(
                "{}: cannot read it again: {e}",
                self.src.path().display()
            )));
        }
        self.src.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::model::{Rdatas, RrSet};
    use crate::zone::Algorithm;

    fn name(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in s.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    fn node(owner: &str, rdata: &[u8]) -> Node {
        Node {
            owner: name(owner),
            rrsets: vec![RrSet {
                rtype: 1,
                ttl: 300,
                rdatas: Rdatas::one(rdata),
                source: crate::zone::rr::Source::default(),
                rrsigs: Vec::new(),
            }],
            ..Node::default()
        }
    }

    /// A software Ed25519 key standing in for a zone's signing key.
    struct TestKey(ring::signature::Ed25519KeyPair);

    impl TestKey {
        fn new() -> TestKey {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            TestKey(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        fn seal(&self, message: &[u8]) -> io::Result<Seal> {
            Ok(Seal {
                key_tag: 4711,
                algorithm: Algorithm::Ed25519.number(),
                signature: self.0.sign(message).as_ref().to_vec(),
            })
        }

        fn seal_key(&self) -> SealKey<'_> {
            use ring::signature::KeyPair;
            SealKey {
                key_tag: 4711,
                algorithm: Algorithm::Ed25519,
                public_key: self.0.public_key().as_ref(),
            }
        }
    }

    /// Writes a signed zone file (a head line and three nodes' text) and
    /// its state, sealed by `key`, into `dir`.
    fn write_sealed(dir: &Path, extra: &str, key: &TestKey) -> PathBuf {
        let head = "; head\n";
        let texts = ["apex text\n", "a text\n", "c text\n"];
        let zone_text = format!("{head}{}{extra}", texts.concat());
        let signed = dir.join("z.signed");
        std::fs::write(&signed, &zone_text).unwrap();
        let mut w = StateWriter::new(Vec::new(), &name("example"), head.len() as u32).unwrap();
        let d = rrset_digest(300, [b"a".as_slice()].into_iter());
        let mut nodes = Vec::new();
        encode_node(
            &mut nodes,
            &node("example", b"1"),
            texts[0].len(),
            &[(6, d, vec![b"sig-soa"])],
        )
        .unwrap();
        encode_node(
            &mut nodes,
            &node("a.example", b"2"),
            texts[1].len(),
            &[(1, d, vec![b"sig-a1", b"sig-a2"])],
        )
        .unwrap();
        encode_node(&mut nodes, &node("c.example", b"3"), texts[2].len(), &[]).unwrap();
        w.encoded(&nodes).unwrap();
        let bytes = w
            .finish(blake3::hash(zone_text.as_bytes()).as_bytes(), |m| {
                key.seal(m)
            })
            .unwrap();
        std::fs::write(path_for(&signed), bytes).unwrap();
        signed
    }

    fn write(dir: &Path, extra: &str) -> PathBuf {
        write_sealed(dir, extra, &TestKey::new())
    }

    #[test]
    fn round_trip_and_merge_walk() {
        let dir = tempfile::tempdir().unwrap();
        let signed = write(dir.path(), "");
        let zone_text = std::fs::read(&signed).unwrap();
        let text_of = |r: &Range<u64>| zone_text[r.start as usize..r.end as usize].to_vec();
        let state = State::load(&signed, &name("example"), 1 << 20).unwrap();
        let mut cur = state.cursor().unwrap();
        let mut passed = Vec::new();
        let apex = cur
            .take_owner(&name("example"), &mut |e| passed.push(e.owner))
            .unwrap();
        assert_eq!(apex.sets.len(), 1);
        assert_eq!(apex.sets[0].rtype, 6);
        assert_eq!(apex.sets[0].sigs, vec![b"sig-soa".to_vec()]);
        assert_eq!(text_of(&apex.text), b"apex text\n");
        assert_eq!(apex.digest, node_digest(&node("example", b"1")));
        // b.example is new: nothing of its own, a.example passed over.
        assert!(cur
            .take_owner(&name("b.example"), &mut |e| passed.push(e.owner))
            .is_none());
        assert_eq!(passed, vec![name("a.example")]);
        let mut rest = Vec::new();
        cur.rest(&mut |e| rest.push((e.owner.clone(), e.signatures(), text_of(&e.text))))
            .unwrap();
        assert_eq!(rest, vec![(name("c.example"), 0, b"c text\n".to_vec())]);
        // The records' places in the state file, end to end.
        let bytes = std::fs::read(path_for(&signed)).unwrap();
        let mut cur = state.cursor().unwrap();
        let mut records = Vec::new();
        cur.take_owner(&name("zzz.example"), &mut |e| records.push(e.record));
        assert_eq!(records.len(), 3);
        assert!(records.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(
            bytes[records[0].start as usize],
            name("example").len() as u8
        );
    }

    /// A state whose file changes after it was checked fails its second
    /// reading: what the walk gave must not be used.
    #[test]
    fn a_state_changed_after_its_check_fails_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let signed = write(dir.path(), "");
        let state = State::load(&signed, &name("example"), 1 << 20).unwrap();
        let path = path_for(&signed);
        let mut bytes = std::fs::read(&path).unwrap();
        // A signature byte of a.example, in place (same inode).
        let at = bytes.windows(6).position(|w| w == b"sig-a1").unwrap();
        bytes[at] = b'S';
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .unwrap();
        let cur = state.cursor().unwrap();
        let e = cur.rest(&mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("changed while it was being read"), "{e}");
        let rereads = state.rereads().unwrap();
        assert!(rereads.state.finish().is_err());
        assert!(rereads.zone.finish().is_ok());
    }

    #[test]
    fn node_digest_sees_every_record() {
        let a = node("a.example", b"1");
        assert_eq!(node_digest(&a), node_digest(&node("a.example", b"1")));
        assert_ne!(node_digest(&a), node_digest(&node("a.example", b"2")));
        let mut ttl = node("a.example", b"1");
        ttl.rrsets[0].ttl = 301;
        assert_ne!(node_digest(&a), node_digest(&ttl));
    }

    #[test]
    fn refuses_stale_damaged_foreign_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let signed = write(dir.path(), "");
        assert!(matches!(
            State::load(&signed, &name("other"), 1 << 20),
            Err(Unusable::OtherZone)
        ));
        // The signed zone changed after the state was written.
        std::fs::write(&signed, b"; head\napex text\n").unwrap();
        assert!(matches!(
            State::load(&signed, &name("example"), 1 << 20),
            Err(Unusable::Stale)
        ));
        // One flipped bit in the state.
        let signed = write(dir.path(), "");
        let mut bytes = std::fs::read(path_for(&signed)).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::write(path_for(&signed), &bytes).unwrap();
        assert!(matches!(
            State::load(&signed, &name("example"), 1 << 20),
            Err(Unusable::Damaged)
        ));
        // Truncated, and absent.
        std::fs::write(path_for(&signed), &bytes[..20]).unwrap();
        assert!(matches!(
            State::load(&signed, &name("example"), 1 << 20),
            Err(Unusable::Format)
        ));
        std::fs::remove_file(path_for(&signed)).unwrap();
        assert!(matches!(
            State::load(&signed, &name("example"), 1 << 20),
            Err(Unusable::Missing)
        ));
    }

    #[test]
    fn only_a_seal_by_a_zone_key_makes_a_state_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (key, other) = (TestKey::new(), TestKey::new());
        let signed = write_sealed(dir.path(), "", &key);
        let state = State::load(&signed, &name("example"), 1 << 20).unwrap();
        assert!(state.check_seal(&[key.seal_key()]).is_ok());
        assert!(state
            .check_seal(&[other.seal_key(), key.seal_key()])
            .is_ok());
        // Not a key of the zone, or none at all.
        assert!(matches!(
            state.check_seal(&[other.seal_key()]),
            Err(Unusable::Unsealed)
        ));
        assert!(matches!(state.check_seal(&[]), Err(Unusable::Unsealed)));
        // Right key, wrong tag or algorithm in the seal.
        let mut wrong_tag = key.seal_key();
        wrong_tag.key_tag = 4712;
        assert!(matches!(
            state.check_seal(&[wrong_tag]),
            Err(Unusable::Unsealed)
        ));
        // A state and zone file rewritten together, with a record added to
        // the text and the state's digests made to match, by someone
        // without the zone's keys: whole, fresh, and refused.
        let forged = write_sealed(dir.path(), "evil text\n", &other);
        let state = State::load(&forged, &name("example"), 1 << 20).unwrap();
        assert!(matches!(
            state.check_seal(&[key.seal_key()]),
            Err(Unusable::Unsealed)
        ));
        // The seal of one state moved onto another's body.
        let genuine = std::fs::read(path_for(&write_sealed(dir.path(), "", &key))).unwrap();
        let mut moved = std::fs::read(path_for(&write_sealed(dir.path(), "x\n", &other))).unwrap();
        let n = moved.len();
        let seal_at = n - 32 - SEAL_FIELDS - 64;
        moved[seal_at..n - 32]
            .copy_from_slice(&genuine[genuine.len() - 32 - SEAL_FIELDS - 64..genuine.len() - 32]);
        let own = blake3::hash(&moved[..n - 32]);
        moved[n - 32..].copy_from_slice(own.as_bytes());
        std::fs::write(path_for(&signed), &moved).unwrap();
        std::fs::write(&signed, "; head\napex text\na text\nc text\nx\n").unwrap();
        let state = State::load(&signed, &name("example"), 1 << 20).unwrap();
        assert!(matches!(
            state.check_seal(&[key.seal_key()]),
            Err(Unusable::Unsealed)
        ));
    }
}
