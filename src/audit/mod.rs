//! The audit log: append-only JSON lines, each record chained to the one
//! before it by SHA-256.
//!
//! Every record holds `prev`, the hash of the record before it (64 zeros for
//! the first), and `hash`, the SHA-256 of `prev` followed by the record's
//! canonical JSON without the `hash` field. A line is canonical when it is
//! exactly what this module would write for its values, so any edit of a
//! byte, a deleted, inserted or reordered line breaks the chain at a line
//! [`verify`] names.
//!
//! Cutting records off the end leaves a shorter chain that is still whole;
//! to catch that, the keystore keeps the head (sequence number and hash)
//! after each append, and `dnsseal audit verify` compares the two.
//!
//! Appends take an exclusive lock on the file, so two `dnsseal` processes
//! never interleave or fork the chain. Each append is fsynced before the
//! operation reports success.

pub mod checkpoint;
pub mod export;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What went wrong with the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit log {path} is broken at line {line}; refusing to append (run `dnsseal audit verify`)")]
    Broken { path: PathBuf, line: usize },
    #[error("audit log {path} no longer holds record {seq} as the keystore saw it (records cut off or replaced); refusing to append (run `dnsseal audit verify`)")]
    Truncated { path: PathBuf, seq: u64 },
    #[error("audit log {path} is missing or empty, but the keystore holds {keys} key(s): their history was removed; refusing to start a new audit chain. Find out what happened; then `dnsseal audit reset --yes --reason TEXT` starts a new chain whose first record says why")]
    HistoryMissing { path: PathBuf, keys: usize },
}

/// Whether the operation a record describes succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
}

/// What an operation tells the log; the log adds sequence, time, operator
/// and the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub command: String,
    pub zone: Option<String>,
    pub key_tag: Option<u16>,
    /// CKA_ID of the key, hex.
    pub key_id: Option<String>,
    pub old_state: Option<String>,
    pub new_state: Option<String>,
    pub failed: bool,
    pub detail: String,
    /// A signed checkpoint ([`checkpoint`]), on checkpoint records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<checkpoint::Checkpoint>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    pub time: String,
    pub operator: String,
    pub command: String,
    pub zone: Option<String>,
    pub key_tag: Option<u16>,
    pub key_id: Option<String>,
    pub old_state: Option<String>,
    pub new_state: Option<String>,
    pub outcome: Outcome,
    pub detail: String,
    /// A signed checkpoint ([`checkpoint`]), on checkpoint records only;
    /// absent from every other line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<checkpoint::Checkpoint>,
    pub prev: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Record {
    /// The hash this record must carry.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        let body = serde_json::to_string(&unhashed).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(body.as_bytes());
        hex::encode(h.finalize())
    }

    /// The exact line this record is written as (without newline).
    pub fn canonical_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The head of the chain: what the keystore remembers after each append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// The OS user running this process, for the `operator` field: the
/// account of the real uid (from /proc and /etc/passwd), with the sudo
/// caller when there is one; the environment only as a fallback.
pub fn operator() -> String {
    match CLIENT.get() {
        Some(client) => format!("{} ({client})", os_operator()),
        None => os_operator(),
    }
}

/// Where the login came from ("ssh from 192.0.2.7 port 50123"), set once
/// by `dnsseal shell`: every record the process writes names it after the
/// user.
static CLIENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets where the login came from, for every record of this process; a
/// second call changes nothing.
pub fn set_client(client: String) {
    let _ = CLIENT.set(client);
}

fn os_operator() -> String {
    let account = real_uid().map(|uid| match user_name(uid) {
        Some(name) => name,
        None => format!("uid {uid}"),
    });
    let sudo = std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty());
    match (account, sudo) {
        // SUDO_USER is only what the environment claims; say so.
        (Some(a), Some(s)) => format!("{a} (SUDO_USER={s})"),
        (Some(a), None) => a,
        (None, _) => ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "unknown".to_string()),
    }
}

fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _pw = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Appends one event and returns the new head.
///
/// Under the file lock the whole log is verified first, and compared with
/// `known_head` (what the keystore saw last): a log that is broken, or that
/// lost records at its end, is never extended, so a tampered log cannot be
/// papered over by new records.
pub fn append(
    path: &Path,
    at: Timestamp,
    event: &Event,
    known_head: Option<&Head>,
) -> Result<Head, AuditError> {
    append_with(path, at, event, known_head, false)
}

/// Appends an event from the keystore's outbox unless the log already
/// holds it after `known_head` (the previous run wrote it and was stopped
/// before it could clear the outbox): each outbox event lands exactly once.
pub fn append_once(
    path: &Path,
    at: Timestamp,
    event: &Event,
    known_head: Option<&Head>,
) -> Result<Head, AuditError> {
    append_with(path, at, event, known_head, true)
}

fn append_with(
    path: &Path,
    at: Timestamp,
    event: &Event,
    known_head: Option<&Head>,
    once: bool,
) -> Result<Head, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Created 0600 when missing, never through a link.
    let mut file = crate::files::open(path, crate::files::Open::Append).map_err(io)?;
    file.lock().map_err(io)?;
    let result = append_locked(path, &mut file, at, event, known_head, once);
    let _ = file.unlock();
    result
}

fn same_event(r: &Record, at: Timestamp, e: &Event) -> bool {
    r.time == at.rfc3339()
        && r.command == e.command
        && r.zone == e.zone
        && r.key_tag == e.key_tag
        && r.key_id == e.key_id
        && r.old_state == e.old_state
        && r.new_state == e.new_state
        && (r.outcome == Outcome::Failed) == e.failed
        && r.detail == e.detail
        && r.checkpoint == e.checkpoint
}

fn append_locked(
    path: &Path,
    file: &mut File,
    at: Timestamp,
    event: &Event,
    known_head: Option<&Head>,
    once: bool,
) -> Result<Head, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let checked = verify_reader(BufReader::new(&mut *file)).map_err(io)?;
    let records = sound(path, checked, known_head)?;
    if once {
        let after = known_head.map_or(0, |h| h.seq);
        if let Some(r) = records
            .iter()
            .find(|r| r.seq > after && same_event(r, at, event))
        {
            return Ok(Head {
                seq: r.seq,
                hash: r.hash.clone(),
            });
        }
    }
    let (seq, prev) = match records.last() {
        None => (1, GENESIS.to_string()),
        Some(r) => (r.seq + 1, r.hash.clone()),
    };
    let mut record = Record {
        seq,
        time: at.rfc3339(),
        operator: operator(),
        command: event.command.clone(),
        zone: event.zone.clone(),
        key_tag: event.key_tag,
        key_id: event.key_id.clone(),
        old_state: event.old_state.clone(),
        new_state: event.new_state.clone(),
        outcome: if event.failed {
            Outcome::Failed
        } else {
            Outcome::Ok
        },
        detail: event.detail.clone(),
        checkpoint: event.checkpoint.clone(),
        prev,
        hash: String::new(),
    };
    record.hash = record.compute_hash();
    let mut line = record.canonical_line();
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(Head {
        seq: record.seq,
        hash: record.hash,
    })
}

/// Checks that the log at `path` verifies and still holds the record the
/// keystore saw last; key-changing commands call this before they start,
/// so that nothing happens that could not be audited.
pub fn check(path: &Path, known_head: Option<&Head>) -> Result<(), AuditError> {
    if !path.exists() && known_head.is_none() {
        return Ok(());
    }
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    // The project's own log: never through a link (see `crate::files`).
    let file = match crate::files::open(path, crate::files::Open::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not there, but the keystore saw records in it.
            return Err(AuditError::Truncated {
                path: path.to_path_buf(),
                seq: known_head.map_or(0, |h| h.seq),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let checked = verify_reader(BufReader::new(file)).map_err(io)?;
    sound(path, checked, known_head).map(|_| ())
}

fn sound(
    path: &Path,
    (records, verdict): (Vec<Record>, Verdict),
    known_head: Option<&Head>,
) -> Result<Vec<Record>, AuditError> {
    if let Verdict::Broken { line, .. } = verdict {
        return Err(AuditError::Broken {
            path: path.to_path_buf(),
            line,
        });
    }
    if let Some(known) = known_head {
        let at_known = records.iter().find(|r| r.seq == known.seq);
        if at_known.is_none_or(|r| r.hash != known.hash) {
            return Err(AuditError::Truncated {
                path: path.to_path_buf(),
                seq: known.seq,
            });
        }
    }
    Ok(records)
}

/// The reset that begins a chain, if it begins with one (`dnsseal audit
/// reset`: the history before it was lost).
pub fn reset_at_start(records: &[Record]) -> Option<&Record> {
    records
        .first()
        .filter(|r| r.seq == 1 && r.command == RESET_COMMAND)
}

/// The command name of the record that starts a new chain.
pub const RESET_COMMAND: &str = "audit reset";

/// The result of checking a whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record chains; `head` is the last one (None for an empty log).
    Intact { records: u64, head: Option<Head> },
    /// The first line at which the chain breaks, and why.
    Broken { line: usize, reason: String },
}

/// Reads and checks every record of a log.
pub fn verify(path: &Path) -> Result<(Vec<Record>, Verdict), AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    verify_reader(BufReader::new(file)).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks a whole log read from any reader: the chain must start at
/// record 1 with the genesis hash.
pub fn verify_reader(reader: impl BufRead) -> std::io::Result<(Vec<Record>, Verdict)> {
    verify_lines(reader, false)
}

/// Checks an excerpt (e.g. `audit export --since`): the chain may start at
/// any record, anchored to that record's `prev`, which the caller reports
/// so that it can be compared with the full log.
pub fn verify_reader_from(reader: impl BufRead) -> std::io::Result<(Vec<Record>, Verdict)> {
    verify_lines(reader, true)
}

fn verify_lines(reader: impl BufRead, excerpt: bool) -> std::io::Result<(Vec<Record>, Verdict)> {
    let mut records = Vec::new();
    let mut prev = GENESIS.to_string();
    // None after record u64::MAX: no record can follow it.
    let mut expected_seq = Some(1u64);
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        let n = i + 1;
        let broken = |reason: String| Verdict::Broken { line: n, reason };
        let record: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => return Ok((records, broken(format!("not an audit record: {e}")))),
        };
        if excerpt && i == 0 {
            if record.seq == 0 {
                return Ok((
                    records,
                    broken("sequence number 0: records are numbered from 1".into()),
                ));
            }
            expected_seq = Some(record.seq);
            prev = record.prev.clone();
        }
        if Some(record.seq) != expected_seq {
            let due = expected_seq.map_or("none".into(), |s| s.to_string());
            return Ok((
                records,
                broken(format!(
                    "sequence number {} where {due} was due (a record was deleted, inserted or moved)",
                    record.seq
                )),
            ));
        }
        if record.prev != prev {
            return Ok((
                records,
                broken(
                    "does not chain to the record before it (deleted, inserted or reordered)"
                        .into(),
                ),
            ));
        }
        if record.hash != record.compute_hash() {
            return Ok((
                records,
                broken("content does not match its hash (edited)".into()),
            ));
        }
        if record.canonical_line() != line {
            return Ok((
                records,
                broken("line is not in canonical form (edited)".into()),
            ));
        }
        prev = record.hash.clone();
        expected_seq = record.seq.checked_add(1);
        records.push(record);
    }
    let head = records.last().map(|r| Head {
        seq: r.seq,
        hash: r.hash.clone(),
    });
    Ok((
        records.clone(),
        Verdict::Intact {
            records: records.len() as u64,
            head,
        },
    ))
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV header of `audit export --format csv`.
pub const CSV_HEADER: &str =
    "seq,time,operator,command,zone,key_tag,key_id,old_state,new_state,outcome,detail,prev,hash";

/// One record as a CSV row (same columns as [`CSV_HEADER`]).
pub fn csv_row(r: &Record) -> String {
    let opt = |o: &Option<String>| o.as_deref().map(csv_field).unwrap_or_default();
    [
        r.seq.to_string(),
        csv_field(&r.time),
        csv_field(&r.operator),
        csv_field(&r.command),
        opt(&r.zone),
        r.key_tag.map(|t| t.to_string()).unwrap_or_default(),
        opt(&r.key_id),
        opt(&r.old_state),
        opt(&r.new_state),
        match r.outcome {
            Outcome::Ok => "ok".into(),
            Outcome::Failed => "failed".into(),
        },
        csv_field(&r.detail),
        r.prev.clone(),
        r.hash.clone(),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u16) -> Event {
        Event {
            command: "keys create".into(),
            zone: Some("example.com.".into()),
            key_tag: Some(n),
            key_id: Some("00ff".into()),
            old_state: None,
            new_state: Some("active".into()),
            failed: false,
            detail: format!("key {n}, with \"quotes\", commas"),
            checkpoint: None,
        }
    }

    fn log_with(n: u16) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        for i in 1..=n {
            append(
                &path,
                Timestamp::from_unix(1_700_000_000 + i64::from(i)),
                &event(i),
                None,
            )
            .unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn verdict_of(lines: &[String]) -> Verdict {
        let text = lines.join("\n") + "\n";
        verify_reader(text.as_bytes()).unwrap().1
    }

    #[test]
    fn chain_is_intact_and_heads_match() {
        let (_d, path) = log_with(5);
        let (records, verdict) = verify(&path).unwrap();
        assert_eq!(records.len(), 5);
        match verdict {
            Verdict::Intact { records, head } => {
                assert_eq!(records, 5);
                assert_eq!(head.unwrap().seq, 5);
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_its_line() {
        let (_d, path) = log_with(6);
        let orig = lines(&path);

        let mut edited = orig.clone();
        edited[2] = edited[2].replace("\"active\"", "\"removed\"");
        assert!(matches!(
            verdict_of(&edited),
            Verdict::Broken { line: 3, .. }
        ));

        let mut deleted = orig.clone();
        deleted.remove(3);
        assert!(matches!(
            verdict_of(&deleted),
            Verdict::Broken { line: 4, .. }
        ));

        let mut swapped = orig.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            verdict_of(&swapped),
            Verdict::Broken { line: 2, .. }
        ));

        // A replayed copy of record 5 is caught where it repeats.
        let mut replayed = orig.clone();
        replayed.insert(4, orig[4].clone());
        assert!(matches!(
            verdict_of(&replayed),
            Verdict::Broken { line: 6, .. }
        ));

        // A forged record with a valid hash but the wrong place in the chain.
        let mut forged: Record = serde_json::from_str(&orig[3]).unwrap();
        forged.seq = 5;
        forged.hash = forged.compute_hash();
        let mut inserted = orig.clone();
        inserted.insert(4, forged.canonical_line());
        assert!(matches!(
            verdict_of(&inserted),
            Verdict::Broken { line: 5, .. }
        ));

        // A re-hashed edit still breaks the next record's link.
        let mut rehashed = orig.clone();
        let mut r: Record = serde_json::from_str(&orig[1]).unwrap();
        r.detail = "nothing to see".into();
        r.hash = r.compute_hash();
        rehashed[1] = r.canonical_line();
        assert!(matches!(
            verdict_of(&rehashed),
            Verdict::Broken { line: 3, .. }
        ));

        // White space added inside a line is an edit too.
        let mut spaced = orig.clone();
        spaced[0] = spaced[0].replacen(':', ": ", 1);
        assert!(matches!(
            verdict_of(&spaced),
            Verdict::Broken { line: 1, .. }
        ));
    }

    #[test]
    fn append_refuses_a_broken_or_shortened_log() {
        let (_d, path) = log_with(3);
        let good = std::fs::read_to_string(&path).unwrap();
        let head = verify(&path).unwrap().1;
        let Verdict::Intact {
            head: Some(head), ..
        } = head
        else {
            panic!("{head:?}")
        };
        // An edit anywhere, not only in the last line, stops appends.
        std::fs::write(&path, good.replacen("\"ok\"", "\"failed\"", 1)).unwrap();
        let err = append(&path, Timestamp::from_unix(0), &event(9), None).unwrap_err();
        assert!(matches!(err, AuditError::Broken { line: 1, .. }), "{err}");
        // A log cut short chains, but not to the head the keystore saw.
        let short: Vec<&str> = good.lines().take(2).collect();
        std::fs::write(&path, short.join("\n") + "\n").unwrap();
        let err = append(&path, Timestamp::from_unix(0), &event(9), Some(&head)).unwrap_err();
        assert!(matches!(err, AuditError::Truncated { seq: 3, .. }), "{err}");
        // The intact log takes the append.
        std::fs::write(&path, &good).unwrap();
        assert_eq!(
            append(&path, Timestamp::from_unix(0), &event(9), Some(&head))
                .unwrap()
                .seq,
            4
        );
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let (_d, path) = log_with(0);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = path.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        append(
                            &p,
                            Timestamp::from_unix(i),
                            &event(t * 100 + i as u16),
                            None,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (_, verdict) = verify(&path).unwrap();
        assert!(
            matches!(verdict, Verdict::Intact { records: 100, .. }),
            "{verdict:?}"
        );
    }

    /// An excerpt may start at the last sequence number; nothing follows
    /// it (fuzz/seeds/audit_log/excerpt-seq-max: an excerpt whose record
    /// is number u64::MAX overflowed the next number due). None starts at
    /// 0, which no chain has (`audit verify --excerpt` named record 0 - 1
    /// as its anchor).
    #[test]
    fn an_excerpt_ends_at_the_last_sequence_number() {
        let chained = |seqs: &[u64]| {
            let mut prev = "ab".repeat(32);
            let mut text = String::new();
            for &seq in seqs {
                let (_d, path) = log_with(1);
                let mut r: Record = serde_json::from_str(&lines(&path)[0]).unwrap();
                (r.seq, r.prev) = (seq, prev);
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                text += &(r.canonical_line() + "\n");
            }
            verify_reader_from(text.as_bytes()).unwrap()
        };
        let (records, verdict) = chained(&[u64::MAX]);
        assert_eq!(records.len(), 1);
        assert!(
            matches!(verdict, Verdict::Intact { records: 1, .. }),
            "{verdict:?}"
        );
        let (records, verdict) = chained(&[0, 1]);
        assert!(records.is_empty());
        assert!(
            matches!(verdict, Verdict::Broken { line: 1, .. }),
            "{verdict:?}"
        );
        let (records, verdict) = chained(&[u64::MAX, 0]);
        assert_eq!(records.len(), 1);
        match verdict {
            Verdict::Broken { line: 2, reason } => {
                assert!(reason.contains("where none was due"), "{reason}")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
