//! The signed zone on its way out: runs of nodes formatted in parallel as
//! their signatures arrive ([`Feed`], [`Chunk`], [`format_chunk`]), written
//! in order ([`write_in_order`]) by one [`ZoneWriter`] into a temporary file
//! that replaces the output atomically ([`crate::atomic`]), with the
//! signing state beside it ([`super::state`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::state::{self, rrset_digest, Carry, StateWriter};
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
    /// The previous signing's files, for the nodes carried over.
    previous: Option<state::Previous>,
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

/// A formatted run of nodes: its text and state records, with the places
/// where the text and records of nodes carried over from the previous
/// signing go (read from its files by the writer, in order).
#[derive(Debug, Default)]
pub struct Piece {
    pub text: Vec<u8>,
    pub records: Vec<u8>,
    pub splices: Vec<Splice>,
}

/// Carried nodes in a [`Piece`]: what of the previous signing's files goes
/// before `text[text_at]` and `records[record_at]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub text_at: usize,
    pub record_at: usize,
    pub from: Carry,
}

/// A formatted run with its sequence number.
pub type Formatted = (usize, std::io::Result<Piece>);

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

/// The text of a run of nodes, and their state records. `reuse`: nodes
/// carried over from the previous signing, by node index (empty when there
/// is no previous state); consecutive ones make one [`Splice`].
pub fn format_chunk(
    nodes: &[Node],
    reuse: &[Option<Carry>],
    pool: &Buffers,
    chunk: Chunk,
) -> std::io::Result<Piece> {
    let end = chunk.end.min(nodes.len());
    let (mut text, mut records) = (buffer(pool), buffer(pool));
    let mut splices: Vec<Splice> = Vec::new();
    let mut fresh = chunk.fresh.into_iter().peekable();
    let mut extra: Vec<(usize, Vec<u8>)> = Vec::new();
    for (ni, node) in nodes.iter().enumerate().take(end).skip(chunk.start) {
        extra.clear();
        while let Some((_, si, sig)) = fresh.next_if(|f| f.0 == ni) {
            extra.push((si, sig));
        }
        if let (Some(Some(c)), true) = (reuse.get(ni), extra.is_empty()) {
            splice(&mut splices, text.len(), records.len(), c);
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
    Ok(Piece {
        text,
        records,
        splices,
    })
}

/// Adds a carried node to the splices: to the last one when it follows on
/// in both files and nothing new came between.
fn splice(splices: &mut Vec<Splice>, text_at: usize, record_at: usize, c: &Carry) {
    if let Some(last) = splices.last_mut() {
        if last.text_at == text_at
            && last.record_at == record_at
            && last.from.text.end == c.text.start
            && last.from.record.end == c.record.start
        {
            last.from.text.end = c.text.end;
            last.from.record.end = c.record.end;
            return;
        }
    }
    splices.push(Splice {
        text_at,
        record_at,
        from: c.clone(),
    });
}

/// Writes formatted runs in sequence as they come back from the threads.
pub fn write_in_order(
    mut out: ZoneWriter,
    done: std::sync::mpsc::Receiver<Formatted>,
    pool: &Buffers,
) -> anyhow::Result<ZoneWriter> {
    let mut early: HashMap<usize, Piece> = HashMap::new();
    let mut next = 0usize;
    for (seq, formatted) in done {
        early.insert(seq, formatted?);
        while let Some(mut piece) = early.remove(&next) {
            out.chunk(&piece)
                .with_context(|| format!("cannot write {}", out.path.display()))?;
            next += 1;
            if let Ok(mut p) = pool.lock() {
                piece.text.clear();
                piece.records.clear();
                p.extend([piece.text, piece.records]);
            }
        }
    }
    Ok(out)
}

impl ZoneWriter {
    /// Starts the signed zone at `path` (and its state beside it);
    /// `previous`: the files nodes are carried over from.
    pub fn new(
        path: &Path,
        origin: &ZoneName,
        previous: Option<state::Previous>,
    ) -> anyhow::Result<ZoneWriter> {
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
            previous,
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

    /// Writes a run of nodes formatted by [`format_chunk`], with the text
    /// and records of its carried nodes read from the previous files.
    pub fn chunk(&mut self, piece: &Piece) -> std::io::Result<()> {
        let (mut t, mut r) = (0, 0);
        for s in &piece.splices {
            self.text(&piece.text[t..s.text_at])?;
            self.records(&piece.records[r..s.record_at]);
            (t, r) = (s.text_at, s.record_at);
            let previous = self.previous.as_mut().ok_or_else(|| {
                std::io::Error::other("a node carried over with no previous signing")
            })?;
            let (out, syncer) = (&mut self.out, &mut self.syncer);
            let len = s.from.text.end - s.from.text.start;
            previous.zone.copy(s.from.text.start, len, &mut |b| {
                out.write_all(b)?;
                if let Some(s) = syncer.as_mut() {
                    s.wrote(b.len());
                }
                Ok(())
            })?;
            // The previous state is read whether or not the next is still
            // written: it is checked whole at the end all the same.
            let mut failed = None;
            let len = s.from.record.end - s.from.record.start;
            let state = &mut self.state;
            previous.state.copy(s.from.record.start, len, &mut |b| {
                if let (Some((_, w)), None) = (state.as_mut(), &failed) {
                    failed = w.encoded(b).err();
                }
                Ok(())
            })?;
            if let Some(e) = failed {
                self.state = None;
                ZoneWriter::state_ok::<()>(&self.path, Err(e.into()));
            }
        }
        self.text(&piece.text[t..])?;
        self.records(&piece.records[r..]);
        Ok(())
    }

    fn text(&mut self, text: &[u8]) -> std::io::Result<()> {
        self.out.write_all(text)?;
        if let Some(s) = self.syncer.as_mut() {
            s.wrote(text.len());
        }
        Ok(())
    }

    /// Writes state records; a failure stops the state, not the run.
    fn records(&mut self, entries: &[u8]) {
        if let Some((tmp, mut w)) = self.state.take() {
            let r = w.encoded(entries).map(|()| (tmp, w));
            self.state = ZoneWriter::state_ok(&self.path, r.map_err(Into::into));
        }
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
        // What was carried over is what was checked: else nothing is
        // committed.
        if let Some(p) = self.previous {
            p.zone.finish()?;
            p.state.finish()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::reread::Reread;

    fn carry(text: std::ops::Range<u64>, record: std::ops::Range<u64>) -> Carry {
        Carry { text, record }
    }

    #[test]
    fn consecutive_carried_nodes_make_one_splice() {
        let mut s = Vec::new();
        splice(&mut s, 0, 0, &carry(10..20, 5..9));
        splice(&mut s, 0, 0, &carry(20..25, 9..12));
        // Something new came between: a second splice.
        splice(&mut s, 7, 3, &carry(25..30, 12..14));
        // Not next in the previous file (a node left out): a third.
        splice(&mut s, 7, 3, &carry(31..40, 14..15));
        let froms: Vec<_> = s.iter().map(|s| (s.text_at, s.from.clone())).collect();
        assert_eq!(
            froms,
            [
                (0, carry(10..25, 5..12)),
                (7, carry(25..30, 12..14)),
                (7, carry(31..40, 14..15))
            ]
        );
    }

    /// The previous signing's zone and state files, with rereads of them.
    fn previous(dir: &Path, zone: &[u8], state: &[u8]) -> state::Previous {
        let (z, s) = (dir.join("prev"), dir.join("prev.dnsseal-state"));
        std::fs::write(&z, zone).unwrap();
        std::fs::write(&s, state).unwrap();
        let open = |p: &Path| std::fs::File::open(p).unwrap();
        let hash = |b: &[u8]| *blake3::hash(b).as_bytes();
        state::Previous {
            zone: Reread::new(open(&z), &z, zone.len() as u64, hash(zone)),
            state: Reread::new(open(&s), &s, state.len() as u64, hash(state)),
        }
    }

    fn seal(_: &[u8]) -> std::io::Result<state::Seal> {
        Ok(state::Seal {
            key_tag: 1,
            algorithm: 13,
            signature: vec![0; 64],
        })
    }

    #[test]
    fn carried_text_and_records_come_from_the_previous_files() {
        let dir = tempfile::tempdir().unwrap();
        let prev = previous(dir.path(), b"; head\nold a\nold b\n", b"HDRrecArecB");
        let out = dir.path().join("signed");
        let origin: ZoneName = "example.".parse().unwrap();
        let mut w = ZoneWriter::new(&out, &origin, Some(prev)).unwrap();
        let piece = Piece {
            text: b"new x\n".to_vec(),
            records: b"recX".to_vec(),
            splices: vec![Splice {
                text_at: 0,
                record_at: 0,
                from: carry(13..19, 7..11),
            }],
        };
        w.chunk(&piece).unwrap();
        w.finish(seal).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.ends_with("\nold b\nnew x\n"), "{text}");
        let st = std::fs::read(state::path_for(&out)).unwrap();
        assert!(st.windows(8).any(|w| w == b"recBrecX"));
    }

    #[test]
    fn a_previous_file_changed_meanwhile_leaves_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let prev = previous(dir.path(), b"; head\nold a\nold b\n", b"HDRrecArecB");
        // Changed in place after it was checked: same length, same inode.
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("prev"))
            .and_then(|mut f| f.write_all(b"; head\nold a\nevil!\n"))
            .unwrap();
        let out = dir.path().join("signed");
        let origin: ZoneName = "example.".parse().unwrap();
        let mut w = ZoneWriter::new(&out, &origin, Some(prev)).unwrap();
        let piece = Piece {
            splices: vec![Splice {
                text_at: 0,
                record_at: 0,
                from: carry(13..19, 7..11),
            }],
            ..Piece::default()
        };
        w.chunk(&piece).unwrap();
        let e = w.finish(seal).unwrap_err().to_string();
        assert!(e.contains("changed while it was being read"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with("prev"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
