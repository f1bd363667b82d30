//! The signed zone on its way out: runs of nodes formatted in parallel as
//! their signatures arrive ([`Feed`], [`Chunk`], [`format_chunk`]), written
//! in order ([`write_in_order`]) by one [`ZoneWriter`] into a temporary file
//! that replaces the output atomically ([`crate::atomic`]), with the
//! signing state beside it ([`super::state`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::state::{self, rrset_digest, StateWriter};
use crate::atomic::Temp;
use crate::zone::model::Node;
use crate::zone::{present, ZoneName};

/// The signed zone on its way to disk: a temporary file beside the output,
/// node by node, synced and renamed into place only when complete (a failed
/// run leaves nothing). Beside it goes the signing state
/// (`OUTPUT.dnsseal-state`, see `crate::sign::state`) that lets the next
/// `--incremental` skip reading this zone's text; the state is a cache, so
/// failing to write it only costs that speed and is a warning.
pub struct ZoneWriter {
    path: PathBuf,
    tmp: Temp,
    // Unbuffered: the text comes in runs of hundreds of kilobytes.
    out: state::Hashing<std::fs::File>,
    state: Option<(Temp, StateWriter<std::fs::File>)>,
    /// Background writeback (see [`Syncer`]).
    syncer: Option<Syncer>,
}

/// Flushes the signed zone to disk while it is being written, a slice at a
/// time, on a thread of its own that mostly waits on the disk: the sync
/// before the file is moved into place then has only the tail left (for a
/// short incremental run, that sync was a tenth of the run). Errors here
/// are left to that final sync, which reports them.
pub struct Syncer {
    written: u64,
    tx: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Syncer {
    /// Bytes between two background flushes.
    const EVERY: u64 = 16 << 20;

    pub fn start(file: &std::fs::File) -> Option<Syncer> {
        let file = file.try_clone().ok()?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while rx.recv().is_ok() {
                let _ = file.sync_data();
            }
        });
        Some(Syncer {
            written: 0,
            tx,
            thread,
        })
    }

    pub fn wrote(&mut self, n: usize) {
        let before = self.written / Syncer::EVERY;
        self.written += n as u64;
        if self.written / Syncer::EVERY != before {
            let _ = self.tx.send(());
        }
    }

    pub fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// Nodes per run handed to a formatting thread.
pub const FORMAT_CHUNK: usize = 1024;

/// A run of nodes, `start..start + FORMAT_CHUNK` (or to the zone's end),
/// with the fresh signatures they get: (node, RRset index, RDATA) in node
/// order.
pub struct Chunk {
    pub seq: usize,
    pub start: usize,
    pub end: usize,
    pub fresh: Vec<(usize, usize, Vec<u8>)>,
}

/// Buffers of formatted runs, handed back by the writer for the next runs
/// (fresh buffers for 50 MB of text would each be paged in anew).
pub type Buffers = std::sync::Mutex<Vec<Vec<u8>>>;

fn buffer(pool: &Buffers) -> Vec<u8> {
    pool.lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_default()
}

/// A formatted run: its sequence number, then the zone text and the state
/// entries.
pub type Formatted = (usize, std::io::Result<(Vec<u8>, Vec<u8>)>);

/// Cuts the zone's nodes into runs as their signatures arrive (in node
/// order) and hands each complete run to the formatting threads.
pub struct Feed {
    tx: std::sync::mpsc::SyncSender<Chunk>,
    seq: usize,
    start: usize,
    /// Fresh signatures of the run being filled: (node, RRset, RDATA).
    pub fresh: Vec<(usize, usize, Vec<u8>)>,
}

impl Feed {
    /// A feed of runs into `tx`, from the zone's first node.
    pub fn new(tx: std::sync::mpsc::SyncSender<Chunk>) -> Feed {
        Feed {
            tx,
            seq: 0,
            start: 0,
            fresh: Vec::new(),
        }
    }

    /// Sends every whole run before node `ni`: a signature for `ni` has
    /// come, so every node before it has all of its own.
    pub fn complete_before(&mut self, ni: usize) -> Result<(), String> {
        while self.start + FORMAT_CHUNK <= ni {
            self.send(self.start + FORMAT_CHUNK)?;
        }
        Ok(())
    }

    /// Sends the rest of the zone's `len` nodes (every signature is in).
    pub fn finish(&mut self, len: usize) -> Result<(), String> {
        while self.start < len {
            self.send((self.start + FORMAT_CHUNK).min(len))?;
        }
        Ok(())
    }

    fn send(&mut self, end: usize) -> Result<(), String> {
        let split = self.fresh.partition_point(|f| f.0 < end);
        let rest = self.fresh.split_off(split);
        let chunk = Chunk {
            seq: self.seq,
            start: self.start,
            end,
            fresh: std::mem::replace(&mut self.fresh, rest),
        };
        self.tx
            .send(chunk)
            .map_err(|_| "the zone writer stopped".to_string())?;
        self.seq += 1;
        self.start = end;
        Ok(())
    }
}

/// Nodes carried over from the previous signing: their text and state
/// record, by node index (empty when there is no previous state).
pub type Reuse<'a> = [Option<(&'a [u8], &'a [u8])>];

/// The text of a run of nodes, and their state records.
pub fn format_chunk(
    nodes: &[Node],
    reuse: &Reuse<'_>,
    pool: &Buffers,
    chunk: Chunk,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let end = chunk.end.min(nodes.len());
    let (mut text, mut records) = (buffer(pool), buffer(pool));
    let mut fresh = chunk.fresh.into_iter().peekable();
    let mut extra: Vec<(usize, Vec<u8>)> = Vec::new();
    for (ni, node) in nodes.iter().enumerate().take(end).skip(chunk.start) {
        extra.clear();
        while let Some((_, si, sig)) = fresh.next_if(|f| f.0 == ni) {
            extra.push((si, sig));
        }
        if let (Some(Some((t, record))), true) = (reuse.get(ni), extra.is_empty()) {
            text.extend_from_slice(t);
            records.extend_from_slice(record);
            continue;
        }
        let at = text.len();
        let mut signed = Vec::new();
        present::write_node_with(&mut text, node, &extra, &mut |set, sigs| {
            let digest = rrset_digest(set.ttl, set.rdatas.iter());
            signed.push((set.rtype, digest, sigs.to_vec()));
            Ok(())
        })?;
        state::encode_node(&mut records, node, text.len() - at, &signed)?;
    }
    Ok((text, records))
}

/// Writes formatted runs in sequence as they come back from the threads.
pub fn write_in_order(
    mut out: ZoneWriter,
    done: std::sync::mpsc::Receiver<Formatted>,
    pool: &Buffers,
) -> anyhow::Result<ZoneWriter> {
    let mut early: HashMap<usize, (Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut next = 0usize;
    for (seq, formatted) in done {
        early.insert(seq, formatted?);
        while let Some((mut text, mut entries)) = early.remove(&next) {
            out.chunk(&text, &entries)
                .with_context(|| format!("cannot write {}", out.path.display()))?;
            next += 1;
            if let Ok(mut p) = pool.lock() {
                text.clear();
                entries.clear();
                p.extend([text, entries]);
            }
        }
    }
    Ok(out)
}

impl ZoneWriter {
    /// Starts the signed zone at `path` (and its state beside it).
    pub fn new(path: &Path, origin: &ZoneName) -> anyhow::Result<ZoneWriter> {
        let tmp = Temp::beside(path)?;
        let mut out = state::Hashing::new(tmp.handle()?);
        let head = format!("; signed by dnsseal for {origin}\n");
        out.write_all(head.as_bytes())?;
        let state = Temp::beside(&state::path_for(path)).and_then(|tmp| {
            let w = StateWriter::new(tmp.handle()?, origin.wire(), head.len() as u32)?;
            Ok((tmp, w))
        });
        Ok(ZoneWriter {
            path: path.to_path_buf(),
            syncer: Syncer::start(tmp.file()),
            tmp,
            out,
            state: ZoneWriter::state_ok(path, state),
        })
    }

    /// Keeps the state writer, or warns once and goes on without it.
    fn state_ok<T>(path: &Path, r: anyhow::Result<T>) -> Option<T> {
        r.map_err(|e| {
            tracing::warn!(
                "not writing {}: {e:#}; the next --incremental will read the signed zone's text",
                state::path_for(path).display()
            )
        })
        .ok()
    }

    /// Writes a run of nodes formatted by [`format_chunk`].
    pub fn chunk(&mut self, text: &[u8], entries: &[u8]) -> std::io::Result<()> {
        self.out.write_all(text)?;
        if let Some(s) = self.syncer.as_mut() {
            s.wrote(text.len());
        }
        if let Some((tmp, mut w)) = self.state.take() {
            let r = w.encoded(entries).map(|()| (tmp, w));
            self.state = ZoneWriter::state_ok(&self.path, r.map_err(Into::into));
        }
        Ok(())
    }

    /// Syncs the signed zone, moves it into place, syncs its directory;
    /// then the state, sealed by `seal` (see [`state::seal_message`]) and
    /// unsynced (see [`ZoneWriter`]).
    pub fn finish(
        self,
        seal: impl FnOnce(&[u8]) -> std::io::Result<state::Seal>,
    ) -> anyhow::Result<()> {
        if let Some(s) = self.syncer {
            s.stop();
        }
        let path = self.path.clone();
        let (file, digest) = self.out.finish();
        drop(file);
        self.tmp.commit("the signed zone")?;
        if let Some((tmp, w)) = self.state {
            let done = w
                .finish(&digest, seal)
                .map_err(anyhow::Error::from)
                // Not synced: after a crash a state that did not reach the
                // disk whole fails its own digest, or belongs to an older
                // zone file, and the zone's text is read instead.
                .and_then(|_: std::fs::File| tmp.commit_unsynced());
            ZoneWriter::state_ok(&path, done);
        }
        Ok(())
    }
}
