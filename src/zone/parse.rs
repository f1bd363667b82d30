//! Reading master files (RFC 1035 §5) with NLnet Labs' `domain` scanner.
//!
//! The scanner handles `$ORIGIN`, `$TTL`, relative names, escapes, quoted
//! strings, parentheses, comments and RFC 3597 generic RDATA. The RDATA
//! of types the scanner has no record data for (LOC, APL, CERT ...) is
//! read by [`super::codec`] in a first pass over the text and handed to
//! the scanner in RFC 3597 form. This module
//! follows `$INCLUDE`, turns records into canonical form, remembers the
//! file and line of each record for messages, and refuses what a signer
//! must not take: other classes, meta types, obsolete DNSSEC types, and
//! BIND's `$GENERATE` (a BIND-only extension: expand it with
//! `named-compilezone` first).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::ParsedName;
use domain::base::name::{ToLabelIter, ToName};
use domain::base::rdata::ComposeRecordData;
use domain::base::rdata::ParseRecordData;
use domain::base::Name;
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use octseq::Parser;

use super::codec;
use super::rr::{rtype, Record, Source};
use super::ZoneName;

/// Deepest `$INCLUDE` nesting followed (loops end here).
const MAX_INCLUDE_DEPTH: usize = 16;

/// How much one reading of a zone may take in (see [`crate::files`]).
pub use crate::files::ReadLimits as Limits;

/// What a reading has taken in so far.
struct Budget {
    limits: Limits,
    read: u64,
}

impl Budget {
    /// Reads one file ([`crate::files::read_regular`]) within both limits.
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, String> {
        use crate::files::ReadError;
        let left = self.limits.total_bytes.saturating_sub(self.read);
        let cap = self.limits.file_bytes.min(left);
        let text = crate::files::read_regular(path, cap).map_err(|e| match e {
            ReadError::TooBig { size, .. } if size > self.limits.file_bytes => format!(
                "{size} bytes or more, above the limit of {} bytes for one file ([zone] max_file_bytes in dnsseal.toml)",
                self.limits.file_bytes
            ),
            ReadError::TooBig { .. } => format!(
                "reading it takes the zone and its includes above their limit of {} bytes together ([zone] max_total_bytes in dnsseal.toml)",
                self.limits.total_bytes
            ),
            ReadError::NotRegular => "not a regular file (a FIFO, device, socket or directory); zone files and $INCLUDE files must be regular files".into(),
            e => e.to_string(),
        })?;
        self.read += text.len() as u64;
        Ok(text)
    }

    /// Takes in text handed over in memory, within both limits.
    fn take(&mut self, text: &[u8]) -> Result<Vec<u8>, String> {
        let size = text.len() as u64;
        if size > self.limits.file_bytes {
            return Err(format!(
                "{size} bytes, above the limit of {} bytes for one file ([zone] max_file_bytes in dnsseal.toml)",
                self.limits.file_bytes
            ));
        }
        if size > self.limits.total_bytes.saturating_sub(self.read) {
            return Err(format!(
                "{size} bytes, above the limit of {} bytes in all ([zone] max_total_bytes in dnsseal.toml)",
                self.limits.total_bytes
            ));
        }
        self.read += size;
        Ok(text.to_vec())
    }
}

/// A problem in the input, with its place.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct ZoneError {
    pub file: String,
    pub line: u32,
    pub message: String,
}

/// The records of a zone file (and its includes), in file order.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    /// Files read, indexed by [`Source::file`].
    pub files: Vec<PathBuf>,
}

impl Parsed {
    /// "file:line" of a record's source.
    pub fn place(&self, s: Source) -> String {
        let f = self
            .files
            .get(usize::from(s.file))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{f}:{}", s.line)
    }

    pub fn error(&self, s: Source, message: impl Into<String>) -> ZoneError {
        ZoneError {
            file: self
                .files
                .get(usize::from(s.file))
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            line: s.line,
            message: message.into(),
        }
    }
}

/// Reads a zone file with `origin` as the initial origin, within the
/// default [`Limits`].
pub fn parse_file(path: &Path, origin: &ZoneName) -> Result<Parsed, ZoneError> {
    parse_file_with(path, origin, false, Limits::DEFAULT)
}

/// [`parse_file`]; with `two_threads`, a big file is scanned in two halves
/// at once. That takes about 40% off the scan (130 ms for 100k
/// delegations here) and some 15 MiB more at the peak (records made on
/// two threads land in two allocator arenas): worth it where the scan is
/// most of the run (`sign --incremental`), not where signing is and memory
/// is the limit (a full signing run).
pub fn parse_file_with(
    path: &Path,
    origin: &ZoneName,
    two_threads: bool,
    limits: Limits,
) -> Result<Parsed, ZoneError> {
    let mut records = Vec::new();
    let mut parsed = read_all(path, origin, &mut |r| records.push(r), two_threads, limits)?;
    // A file read in halves comes back whole in `parsed.records`; the
    // sink saw only what was read in one pass.
    if parsed.records.is_empty() {
        parsed.records = records;
    } else {
        parsed.records.extend(records);
    }
    Ok(parsed)
}

/// Reads zone-file text held in memory with `origin` as the initial
/// origin, within `limits`; `name` stands for the file in messages. An
/// `$INCLUDE` is refused, not followed: text from memory has no directory
/// its includes could be relative to, and reading it must touch no file.
pub fn parse_text(
    text: &[u8],
    name: &str,
    origin: &ZoneName,
    limits: Limits,
) -> Result<Parsed, ZoneError> {
    let mut parsed = Parsed::default();
    let path = Path::new(name);
    let origin_name = origin_name(path, origin)?;
    let mut budget = Budget { limits, read: 0 };
    let file = Input {
        path,
        origin: origin_name,
        depth: 0,
        halves: false,
        text: Some(text),
    };
    let mut records = Vec::new();
    read_one(file, &mut parsed, &mut budget, &mut |r| records.push(r))?;
    parsed.records = records;
    Ok(parsed)
}

/// The origin as the scanner takes it.
fn origin_name(path: &Path, origin: &ZoneName) -> Result<Name<Bytes>, ZoneError> {
    Name::<Bytes>::from_octets(Bytes::copy_from_slice(origin.wire())).map_err(|e| ZoneError {
        file: path.display().to_string(),
        line: 0,
        message: format!("origin: {e}"),
    })
}

/// Reads a zone file and hands each record to `sink` as it is read,
/// without keeping them (for big files that are only scanned). The
/// returned `Parsed` lists the files read and holds no records.
pub fn for_each_record(
    path: &Path,
    origin: &ZoneName,
    limits: Limits,
    mut sink: impl FnMut(Record),
) -> Result<Parsed, ZoneError> {
    read_all(path, origin, &mut sink, false, limits)
}

/// [`for_each_record`]; `halves`: a big file may be scanned in two halves
/// on two threads (its records are then held until both are read).
fn read_all(
    path: &Path,
    origin: &ZoneName,
    sink: &mut dyn FnMut(Record),
    halves: bool,
    limits: Limits,
) -> Result<Parsed, ZoneError> {
    let mut parsed = Parsed::default();
    let origin_name = origin_name(path, origin)?;
    let mut budget = Budget { limits, read: 0 };
    let file = Input {
        path,
        origin: origin_name,
        depth: 0,
        halves,
        text: None,
    };
    read_one(file, &mut parsed, &mut budget, sink)?;
    Ok(parsed)
}

/// One file to read: the zone file (depth 0) or an include.
struct Input<'p> {
    path: &'p Path,
    origin: Name<Bytes>,
    depth: usize,
    /// Whether a big file may be scanned in two halves.
    halves: bool,
    /// The text, when it was handed over in memory ([`parse_text`]) rather
    /// than read from `path`; no `$INCLUDE` is followed then.
    text: Option<&'p [u8]>,
}

fn read_one(
    file: Input<'_>,
    out: &mut Parsed,
    budget: &mut Budget,
    sink: &mut dyn FnMut(Record),
) -> Result<(), ZoneError> {
    let Input {
        path,
        origin,
        depth,
        halves,
        text: in_memory,
    } = file;
    let fname = path.display().to_string();
    let err = |line: u32, message: String| ZoneError {
        file: fname.clone(),
        line,
        message,
    };
    if depth > MAX_INCLUDE_DEPTH {
        return Err(err(
            0,
            format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)"),
        ));
    }
    let text = match in_memory {
        Some(text) => budget.take(text),
        None => budget.read(path),
    }
    .map_err(|m| err(0, m))?;
    let text_len = text.len() as u64;
    let file_index =
        u16::try_from(out.files.len()).map_err(|_| err(0, "too many included files".into()))?;
    out.files.push(path.to_path_buf());
    let lines = LineIndex::new(&text);
    if let Some(line) = lines.find_directive(&text, b"$GENERATE") {
        return Err(err(
            line,
            "$GENERATE is a BIND extension dnsseal does not expand; expand it first (e.g. named-compilezone -o - ZONE FILE)".into(),
        ));
    }
    if let Some(pos) = text.iter().position(|&b| b == 0) {
        return Err(err(
            lines.line_of(pos),
            "NUL octet in the file (binary data, not a zone file)".into(),
        ));
    }

    drop(lines);
    let origin_text = super::present::name_text(origin.as_slice());
    let Prescanned {
        text: expanded,
        entry_lines,
        bad_text,
        bad_rdata,
        split,
    } = prescan(&text, &origin_text);
    drop(text);
    if let Some((line, message)) = bad_text {
        return Err(err(line, message.into()));
    }
    if let Some(split) = split.filter(|_| halves && depth == 0 && bad_rdata.is_none()) {
        if let Some(records) = scan_halves(expanded, &split, &origin, file_index, &entry_lines) {
            out.records = records;
            return Ok(());
        }
        // Something in the file needs the one-pass scan (an error to name
        // exactly, an $INCLUDE): read it again from the start (counted
        // once).
        out.files.pop();
        budget.read -= text_len;
        let again = Input {
            path,
            origin,
            depth,
            halves: false,
            text: in_memory,
        };
        return read_one(again, out, budget, sink);
    }
    let mut entries = 0usize;
    let line_of_entry = |k: usize| entry_line(&entry_lines, k);
    // The scanner keeps its own copy; ours goes at once (big zones).
    let mut zf = Zonefile::with_capacity(expanded.len() + 1);
    zf.extend_from_slice(&expanded);
    if !expanded.ends_with(b"\n") {
        zf.extend_from_slice(b"\n");
    }
    drop(expanded);
    zf.set_origin(origin);
    zf.set_default_class(Class::IN);
    loop {
        let entry = match zf.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                if let Some(bad) = bad_rdata.as_ref().filter(|b| b.entry == entries) {
                    return Err(err(bad.line, bad.message.clone()));
                }
                let (line, message) = scanner_error(&e.to_string(), line_of_entry(entries));
                return Err(err(line, message));
            }
        };
        if let Some(bad) = bad_rdata.as_ref().filter(|b| b.entry == entries) {
            return Err(err(bad.line, bad.message.clone()));
        }
        let line = line_of_entry(entries);
        entries += 1;
        match entry {
            Entry::Record(r) => {
                let place = Source {
                    file: file_index,
                    line,
                };
                sink(convert(r, place).map_err(|m| err(line, m))?);
            }
            Entry::Include {
                path: inc,
                origin: inc_origin,
            } => {
                if let Some(why) = include_refused(in_memory.is_some(), budget.limits) {
                    return Err(err(line, why.into()));
                }
                let inc_path = include_path(path, inc.as_ref());
                let o = match inc_origin {
                    Some(o) => o,
                    None => zf.origin().map_err(|e| err(line, e.to_string()))?,
                };
                let include = Input {
                    path: &inc_path,
                    origin: o,
                    depth: depth + 1,
                    halves: false,
                    text: None,
                };
                read_one(include, out, budget, sink)
                    .map_err(|e| at_include(e, err(line, String::new()), &inc_path))?;
            }
        }
    }
    Ok(())
}

/// Why an `$INCLUDE` is not followed, if it is not: text from memory has
/// no directory; the signing service's uploads must not name its files.
fn include_refused(in_memory: bool, limits: Limits) -> Option<&'static str> {
    if in_memory {
        Some("$INCLUDE is not followed in zone text read from memory")
    } else if !limits.includes {
        Some("$INCLUDE is not followed here (the signing service takes one file: expand includes before sending, e.g. named-compilezone -o - ZONE FILE)")
    } else {
        None
    }
}

/// The file an `$INCLUDE` in `path` names: relative to `path`'s directory.
fn include_path(path: &Path, inc: &str) -> PathBuf {
    let inc = PathBuf::from(inc);
    if inc.is_absolute() {
        inc
    } else {
        path.parent().unwrap_or(Path::new(".")).join(inc)
    }
}

/// An error of an included file (`e`): one that names no line of it (the
/// file could not be read) is put at the `$INCLUDE` (`at`).
fn at_include(e: ZoneError, at: ZoneError, inc_path: &Path) -> ZoneError {
    if e.line == 0 {
        ZoneError {
            message: format!("$INCLUDE {}: {}", inc_path.display(), e.message),
            ..at
        }
    } else {
        e
    }
}

/// The line and message of a scanner error. The scanner's message starts
/// with "line:col: " where it stopped, often past the entry; the entry's
/// first line (`ours`) is what names the record. A directive ($TTL,
/// $ORIGIN) is no entry of ours, so the earlier of the two lines is the
/// one to name.
fn scanner_error(msg: &str, ours: u32) -> (u32, String) {
    let (line, rest) = match split_position(msg) {
        Some((l, r)) => (l.min(ours), r),
        None => (ours, msg),
    };
    let hint = if rest.contains("unknown record type") {
        ": this type has no presentation format dnsseal reads (nor does BIND); write it in RFC 3597 form (TYPEnnn \\# LENGTH HEX)"
    } else if rest.contains("invalid SvcParamKey") {
        ": a key name holds a character the SVCB reader refuses (it also refuses the digit 9 and the letter z, e.g. key9999); write such a record in RFC 3597 form (TYPE64 \\# LENGTH HEX)"
    } else {
        ""
    };
    (line, format!("{rest}{hint}"))
}

/// The line on which entry `k` (a record or an `$INCLUDE`) starts, from
/// the prescan's list.
fn entry_line(entry_lines: &[u32], k: usize) -> u32 {
    entry_lines
        .get(k)
        .copied()
        .or(entry_lines.last().copied())
        .unwrap_or(1)
}

/// A scanned record in canonical form, or what is wrong with it.
fn convert(r: domain::zonefile::inplace::ScannedRecord, place: Source) -> Result<Record, String> {
    if r.class() != Class::IN {
        return Err(format!("class {} is not supported (only IN)", r.class()));
    }
    let rtype = r.rtype().to_int();
    check_type(rtype)?;
    // Canonical form is the name with its ASCII letters lowercased; length
    // octets (at most 63) are no letters, so the whole wire form is
    // lowercased at once (the library's canonical composer goes octet by
    // octet, a tenth of the parse).
    let name = r.owner();
    let mut owner = Vec::with_capacity(usize::from(name.compose_len()));
    name.compose(&mut owner)
        .map_err(|_| "owner name does not fit".to_string())?;
    owner.make_ascii_lowercase();
    let data = r.data();
    let mut rdata = Vec::with_capacity(data.rdlen(false).map_or(0, usize::from));
    data.compose_canonical_rdata(&mut rdata)
        .map_err(|_| "RDATA does not fit".to_string())?;
    // Data in its type's own format was checked by the scanner and is
    // composed canonically above; only RFC 3597 generic data (`\# 5 ...`)
    // is read back as its type.
    let rdata = match data {
        ZoneRecordData::Unknown(_) => checked_rdata(r.rtype(), rdata)?,
        _ => rdata,
    };
    if rdata.len() > usize::from(u16::MAX) {
        return Err(format!("RDATA of {} octets exceeds 65535", rdata.len()));
    }
    codec::check(rtype, &rdata).map_err(|m| format!("{} RDATA: {m}", codec::type_name(rtype)))?;
    Ok(Record {
        owner,
        rtype,
        ttl: r.ttl().as_secs(),
        rdata,
        origin: place,
    })
}

/// Where a big file can be cut in two for scanning on two threads: the
/// start of a line that begins with an owner, outside parentheses and
/// quotes, after a `$TTL` (so that no record there takes its TTL from the
/// record before it), with the `$ORIGIN` and `$TTL` in force there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Split {
    /// Offset in the prescanned text.
    at: usize,
    /// Index of the first entry after the cut.
    entry: usize,
    origin: String,
    ttl: String,
}

/// Files smaller than this are scanned in one pass.
const HALVES_FROM: usize = 1 << 20;

/// Scans the prescanned `text` in two halves on two threads. None when a
/// half meets anything but records (an error, an `$INCLUDE`): the caller
/// then scans the file in one pass, which names errors exactly.
fn scan_halves(
    text: Vec<u8>,
    split: &Split,
    origin: &Name<Bytes>,
    file: u16,
    entry_lines: &[u32],
) -> Option<Vec<Record>> {
    let line_of_entry = |k: usize| entry_line(entry_lines, k);
    // The scanner keeps its own copy of its text: make both, then let the
    // prescanned text go before the records pile up.
    let load = |head: &[u8], body: &[u8]| {
        let mut zf = Zonefile::with_capacity(head.len() + body.len() + 1);
        zf.extend_from_slice(head);
        zf.extend_from_slice(body);
        if !body.ends_with(b"\n") {
            zf.extend_from_slice(b"\n");
        }
        zf.set_origin(origin.clone());
        zf.set_default_class(Class::IN);
        // About one record per line: a close first guess, no doubling.
        (zf, body.iter().filter(|&&c| c == b'\n').count())
    };
    let (first, second) = text.split_at(split.at.min(text.len()));
    let head = format!("$ORIGIN {}\n$TTL {}\n", split.origin, split.ttl);
    let zones = [load(b"", first), load(head.as_bytes(), second)];
    drop(text);
    let scan = |(mut zf, lines): (Zonefile, usize), first_entry: usize| -> Option<Vec<Record>> {
        let mut records = Vec::with_capacity(lines);
        let mut k = first_entry;
        while let Some(entry) = zf.next_entry().ok()? {
            let Entry::Record(r) = entry else { return None };
            let line = line_of_entry(k);
            records.push(convert(r, Source { file, line }).ok()?);
            k += 1;
        }
        Some(records)
    };
    let [a, b] = zones;
    let (a, b) = std::thread::scope(|s| {
        let later = s.spawn(|| scan(b, split.entry));
        let a = scan(a, 0);
        (a, later.join().ok().flatten())
    });
    let (mut a, b) = (a?, b?);
    // Exact: doubling a big vector of records would waste tens of MiB.
    a.reserve_exact(b.len());
    a.extend(b);
    Some(a)
}

/// Rewrites the two things the scanner does not take and finds where
/// entries start.
///
/// - RFC 1035 §5.1 lets `@` stand for the origin anywhere a name goes; the
///   scanner understands it only as an owner and reads `CNAME @` as the
///   relative name `@`. A free-standing `@` in RDATA becomes the current
///   origin (`$ORIGIN` lines are followed).
/// - TTLs with units (`1h30m`, `2D`, `1w`), as BIND and Knot accept them in
///   `$TTL`, in a record's TTL and in the SOA timers, become seconds.
///
/// Owners (the first token of a line outside parentheses), quoted strings,
/// escapes and comments are left as they are; line breaks stay where they
/// are, so line numbers do not change. It also lists the line on which each
/// entry the scanner returns (a record or an `$INCLUDE`) starts, since the
/// scanner does not say where a record came from, and the first `$ORIGIN`
/// or `$TTL` without a value.
fn prescan(text: &[u8], origin: &str) -> Prescanned {
    let mut p = Prescan {
        out: Vec::with_capacity(text.len() + 64),
        entry_lines: Vec::new(),
        split: None,
        ttl: None,
        bad_directive: None,
        origin: origin.to_string(),
        depth: 0,
        in_quote: false,
        include: false,
        rtype_seen: None,
        rdata_tokens: 0,
        pending: None,
        bad_rdata: None,
    };
    // Where the parentheses open at the end of a line were opened.
    let mut group = None;
    for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        if p.depth == 0 && !p.in_quote {
            let first = line.iter().position(|b| !b.is_ascii_whitespace());
            p.include = first.is_some_and(|i| {
                line[i..]
                    .get(..8)
                    .is_some_and(|d| d.eq_ignore_ascii_case(b"$INCLUDE"))
            });
            if let Some(i) = first.filter(|&i| line[i] != b';') {
                if p.directive(&line[i..], line, line_no) {
                    continue;
                }
                p.entry_start(line, i, line_no, text.len());
            }
        }
        if p.depth == 0 {
            group = Some(line_no);
        }
        p.tokens(line);
        if p.depth == 0 && !p.in_quote {
            p.finish_rdata();
        }
    }
    p.finish_rdata();
    Prescanned {
        text: p.out,
        entry_lines: p.entry_lines,
        // Not for the scanner: it panics on a TXT record whose parentheses
        // are still open at the end of the text (domain 0.12.3).
        bad_text: p
            .bad_directive
            .map(|l| (l, DIRECTIVE))
            .or(group.filter(|_| p.depth > 0).map(|l| (l, UNCLOSED))),
        bad_rdata: p.bad_rdata,
        split: p.split,
    }
}

/// What [`prescan`] makes of a file.
struct Prescanned {
    /// The text for the scanner.
    text: Vec<u8>,
    /// The line on which each entry starts.
    entry_lines: Vec<u32>,
    /// The first `$ORIGIN` or `$TTL` line without a value, else the line
    /// of a '(' not closed by the end of the text; and what is wrong.
    bad_text: Option<(u32, &'static str)>,
    /// The first record whose RDATA [`codec`] could not read.
    bad_rdata: Option<BadRdata>,
    split: Option<Split>,
}

const DIRECTIVE: &str = "$ORIGIN and $TTL need a value";
const UNCLOSED: &str = "unbalanced parens: a '(' here is not closed by the end of the file";

/// A record whose RDATA is not valid presentation format of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadRdata {
    /// Index of the entry.
    entry: usize,
    line: u32,
    message: String,
}

/// Who reads a pending record's RDATA.
#[derive(Clone, Copy)]
enum Reader {
    /// A type `domain` has no record data for.
    Codec(&'static codec::Codec),
    /// SVCB or HTTPS: `domain`, unless the text holds keys it refuses.
    Svcb(u16),
}

/// A record whose RDATA is read here rather than by the scanner: where its
/// RDATA text starts in the output.
struct Pending {
    reader: Reader,
    start: usize,
    entry: usize,
    line: u32,
}

/// The state of [`prescan`] between lines.
struct Prescan {
    out: Vec<u8>,
    entry_lines: Vec<u32>,
    /// Where a big file can be cut in two (see [`Split`]).
    split: Option<Split>,
    /// The `$TTL` in force so far.
    ttl: Option<String>,
    /// The first `$ORIGIN` or `$TTL` line without a value.
    bad_directive: Option<u32>,
    origin: String,
    /// Open parentheses.
    depth: usize,
    in_quote: bool,
    /// In an `$INCLUDE` line.
    include: bool,
    /// Per entry: the type once seen (0 for a mnemonic no one knows),
    /// and how many RDATA tokens came after it.
    rtype_seen: Option<u16>,
    rdata_tokens: usize,
    /// The entry whose RDATA this module reads (a type `domain` lacks).
    pending: Option<Pending>,
    bad_rdata: Option<BadRdata>,
}

impl Prescan {
    /// A `$ORIGIN` or `$TTL` line (`rest` from its first token on):
    /// followed, copied to the output (a `$TTL` with units rewritten in
    /// seconds), and true. False for any other line.
    fn directive(&mut self, rest: &[u8], line: &[u8], line_no: u32) -> bool {
        let directive = |d: &[u8]| rest.len() >= d.len() && rest[..d.len()].eq_ignore_ascii_case(d);
        if !directive(b"$ORIGIN") && !directive(b"$TTL") {
            return false;
        }
        let body = rest.split(|&b| b == b';').next().unwrap_or(rest);
        let args: Vec<&[u8]> = body
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .collect();
        if args.len() < 2 {
            self.bad_directive.get_or_insert(line_no);
        } else if directive(b"$ORIGIN") {
            let tok = String::from_utf8_lossy(args[1]).to_string();
            self.origin = if tok.ends_with('.') && !tok.ends_with("\\.") {
                tok
            } else if self.origin == "." {
                format!("{tok}.")
            } else {
                format!("{tok}.{}", self.origin)
            };
        } else if let Some(secs) = ttl_with_units(args[1]) {
            self.ttl = Some(secs.to_string());
            self.out
                .extend_from_slice(format!("$TTL {secs}\n").as_bytes());
            return true;
        } else {
            self.ttl = Some(String::from_utf8_lossy(args[1]).into_owned());
        }
        self.out.extend_from_slice(line);
        true
    }

    /// A line that starts an entry (its first token at `i`): its line is
    /// listed, and the cut for two halves is taken here if this is the
    /// first good place past the middle of a big file.
    fn entry_start(&mut self, line: &[u8], i: usize, line_no: u32, text_len: usize) {
        if let (None, Some(t), 0) = (&self.split, &self.ttl, i) {
            if text_len >= HALVES_FROM && self.out.len() >= text_len / 2 && line[0] != b'$' {
                self.split = Some(Split {
                    at: self.out.len(),
                    entry: self.entry_lines.len(),
                    origin: self.origin.clone(),
                    ttl: t.clone(),
                });
            }
        }
        self.entry_lines.push(line_no);
        self.rtype_seen = None;
        self.rdata_tokens = 0;
    }

    /// The tokens of a line that is no directive, copied to the output
    /// (`@` in RDATA and TTLs with units rewritten).
    /// A quoted string to the output. In an `$INCLUDE` line, a file name
    /// that needs no quotes goes without them: the scanner reads
    /// `$INCLUDE "f" origin` as the file `f"` (domain 0.12.3).
    fn quoted(&mut self, token: &[u8]) {
        let inner = token
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\""))
            .filter(|t| !t.is_empty())
            .filter(|t| {
                t.iter()
                    .all(|b| b.is_ascii_graphic() && !b"();\"\\".contains(b))
            });
        match inner {
            Some(name) if self.include => self.out.extend_from_slice(name),
            _ => self.out.extend_from_slice(token),
        }
    }

    /// After a quoted string closed, `rest` of its line: the scanner
    /// panics on an origin right after a quoted `$INCLUDE` file name
    /// (`$INCLUDE "f"o`, domain 0.12.3), so a space goes between them.
    fn after_quote(&mut self, rest: &[u8]) {
        if self.include && !self.in_quote && rest.first().is_some_and(|b| !b.is_ascii_whitespace())
        {
            self.out.push(b' ');
        }
    }

    fn tokens(&mut self, line: &[u8]) {
        let owner_position = self.depth == 0
            && !self.in_quote
            && line.first().is_some_and(|b| !b.is_ascii_whitespace());
        let mut token_index = 0;
        let mut i = 0;
        if self.in_quote {
            // The rest of a quoted string begun on an earlier line.
            while i < line.len() && line[i] != b'"' {
                i += if line[i] == b'\\' { 2 } else { 1 };
            }
            self.in_quote = i >= line.len();
            i = (i + 1).min(line.len());
            self.out.extend_from_slice(&line[..i]);
            self.after_quote(&line[i..]);
        }
        while i < line.len() {
            let b = line[i];
            match b {
                b';' => {
                    self.out.extend_from_slice(&line[i..]);
                    i = line.len();
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < line.len() && line[i] != b'"' {
                        i += if line[i] == b'\\' { 2 } else { 1 };
                    }
                    // A quoted string may run on to the next line.
                    self.in_quote = i >= line.len();
                    i = (i + 1).min(line.len());
                    self.quoted(&line[start..i]);
                    self.after_quote(&line[i..]);
                    token_index += 1;
                    if self.rtype_seen.is_some() {
                        self.rdata_tokens += 1;
                    }
                }
                b'(' | b')' => {
                    if b == b'(' {
                        self.depth += 1;
                    } else {
                        self.depth = self.depth.saturating_sub(1);
                    }
                    self.out.push(b);
                    i += 1;
                }
                _ if b.is_ascii_whitespace() => {
                    self.out.push(b);
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < line.len()
                        && !line[i].is_ascii_whitespace()
                        && !b"();\"".contains(&line[i])
                    {
                        i += if line[i] == b'\\' { 2 } else { 1 };
                    }
                    let i_end = i.min(line.len());
                    let tok = &line[start..i_end];
                    if self.literal_hash(tok, &line[i_end..]) {
                        // `\#` that starts no RFC 3597 RDATA is the text "#"
                        // (BIND reads `TXT \# text` so).
                        self.out.extend_from_slice(b"\\035");
                        self.rdata_tokens += 1;
                    } else {
                        self.token(tok, owner_position && token_index == 0);
                    }
                    i = i_end;
                    token_index += 1;
                }
            }
        }
    }

    /// The type of an entry: a type whose RDATA `domain` cannot read is
    /// written `TYPEnnn` and its RDATA is read at the end of the entry; a
    /// mnemonic `domain` spells otherwise (`NSAP-PTR`) becomes `TYPEnnn`.
    fn type_token(&mut self, tok: &[u8], code: u16) -> Option<String> {
        if let Err(message) = check_type(code) {
            self.bad_rdata.get_or_insert(BadRdata {
                entry: self.entry_lines.len().saturating_sub(1),
                line: self.entry_lines.last().copied().unwrap_or(1),
                message,
            });
            return None;
        }
        let entry = self.entry_lines.len().saturating_sub(1);
        let line = self.entry_lines.last().copied().unwrap_or(1);
        if let Some(c) = codec::codec(code) {
            let typed = format!("TYPE{code}");
            self.pending = Some(Pending {
                reader: Reader::Codec(c),
                start: self.out.len() + typed.len(),
                entry,
                line,
            });
            return Some(typed);
        }
        if code == 64 || code == 65 {
            self.pending = Some(Pending {
                reader: Reader::Svcb(code),
                start: self.out.len() + tok.len(),
                entry,
                line,
            });
        }
        rewrite_type(tok, code)
    }

    /// At the end of an entry whose RDATA is read here: the RDATA text is
    /// replaced by its RFC 3597 form (`\# LEN HEX`), keeping the line
    /// breaks. Text already in RFC 3597 form is left to the scanner.
    fn finish_rdata(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let text = self.out.split_off(p.start.min(self.out.len()));
        let first = text
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b'(');
        if first.is_some_and(|i| text[i..].starts_with(b"\\#")) {
            self.out.extend_from_slice(&text);
            return;
        }
        let newlines = text.iter().filter(|&&b| b == b'\n').count();
        let (code, read) = match p.reader {
            Reader::Codec(c) => (c.code, c.scan(&text, &self.origin)),
            Reader::Svcb(code) => match codec::svcb::scan(code, &text, &self.origin) {
                Some(read) => (code, read),
                None => {
                    self.out.extend_from_slice(&text);
                    return;
                }
            },
        };
        match read {
            Ok(wire) => {
                self.out.extend_from_slice(
                    format!(" \\# {} {}", wire.len(), hex::encode(&wire)).as_bytes(),
                );
            }
            Err(message) => {
                self.bad_rdata.get_or_insert(BadRdata {
                    entry: p.entry,
                    line: p.line,
                    message: format!("{} RDATA: {message}", codec::type_name(code)),
                });
                self.out.extend_from_slice(b" \\# 0");
            }
        }
        self.out.extend(std::iter::repeat_n(b'\n', newlines));
    }

    /// Whether `tok` is a `\\#` first in the RDATA that the rest of its line
    /// (`after`) shows is no RFC 3597 marker: the next token is there and
    /// is not a length. When the line ends, it is taken as the marker.
    fn literal_hash(&self, tok: &[u8], after: &[u8]) -> bool {
        // Types whose RDATA starts with a character string.
        const TEXT_FIRST: [u16; 10] = [13, 16, 19, 20, 27, 56, 99, 258, 261, 262];
        if tok != b"\\#" || self.rdata_tokens != 0 {
            return false;
        }
        if !self.rtype_seen.is_some_and(|t| TEXT_FIRST.contains(&t)) {
            return false;
        }
        let next = after
            .split(|b| b.is_ascii_whitespace() || *b == b'(')
            .find(|t| !t.is_empty());
        next.is_some_and(|t| !t.starts_with(b";") && !t.iter().all(u8::is_ascii_digit))
    }

    /// One unquoted token, copied to the output or rewritten: before the
    /// type, a TTL with units in seconds; in RDATA, `@` as the origin and
    /// the SOA timers with units in seconds. The owner stays as it is.
    fn token(&mut self, tok: &[u8], is_owner: bool) {
        let replaced: Option<String> = if is_owner {
            None
        } else {
            match self.rtype_seen {
                // Before the type: TTL and class.
                None => {
                    if let Some(secs) = ttl_with_units(tok) {
                        Some(secs.to_string())
                    } else {
                        if !is_class(tok) && !tok.iter().all(u8::is_ascii_digit) {
                            let code = codec::type_code(tok);
                            self.rtype_seen = Some(code.unwrap_or(0));
                            code.and_then(|c| self.type_token(tok, c))
                        } else {
                            None
                        }
                    }
                }
                Some(t) => {
                    self.rdata_tokens += 1;
                    if tok == b"@" {
                        Some(self.origin.clone())
                    } else if t == rtype::SOA && (4..=7).contains(&self.rdata_tokens) {
                        ttl_with_units(tok).map(|s| s.to_string())
                    } else if lists_types(t, self.rdata_tokens) {
                        type_in_list(tok)
                    } else {
                        None
                    }
                }
            }
        };
        match replaced {
            Some(r) => self.out.extend_from_slice(r.as_bytes()),
            None => self.out.extend_from_slice(tok),
        }
    }
}

/// Whether RDATA token `k` (from 1) of a record of type `t` names a
/// type: RRSIG's type covered, NSEC's and NSEC3's type bitmaps.
fn lists_types(t: u16, k: usize) -> bool {
    match t {
        rtype::RRSIG => k == 1,
        rtype::NSEC => k >= 2,
        rtype::NSEC3 => k >= 6,
        _ => false,
    }
}

/// A type mnemonic BIND writes that `domain` reads otherwise or not at
/// all (`NSAP-PTR`, `MB`), as `TYPEnnn`, which it reads.
fn type_in_list(tok: &[u8]) -> Option<String> {
    rewrite_type(tok, codec::type_code(tok)?)
}

/// `TYPEnnn` for a mnemonic (of type `code`) `domain` reads otherwise.
fn rewrite_type(tok: &[u8], code: u16) -> Option<String> {
    let typed = tok.len() > 4 && tok[..4].eq_ignore_ascii_case(b"TYPE");
    (!typed && !codec::domain_reads_mnemonic(code)).then(|| format!("TYPE{code}"))
}

/// `1h30m`, `2D`, `1w` → seconds; None for plain numbers and other tokens.
fn ttl_with_units(tok: &[u8]) -> Option<u32> {
    if tok.is_empty() || tok.iter().all(u8::is_ascii_digit) || !tok[0].is_ascii_digit() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num: u64 = 0;
    let mut have_digits = false;
    for &b in tok {
        if b.is_ascii_digit() {
            num = num.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            have_digits = true;
        } else {
            let unit = match b.to_ascii_lowercase() {
                b'w' => 604_800,
                b'd' => 86_400,
                b'h' => 3_600,
                b'm' => 60,
                b's' => 1,
                _ => return None,
            };
            if !have_digits {
                return None;
            }
            total = total.checked_add(num.checked_mul(unit)?)?;
            num = 0;
            have_digits = false;
        }
    }
    if have_digits {
        return None;
    }
    u32::try_from(total).ok()
}

fn is_class(tok: &[u8]) -> bool {
    [b"IN".as_slice(), b"CH", b"HS", b"CS", b"ANY"]
        .iter()
        .any(|c| tok.eq_ignore_ascii_case(c))
        || (tok.len() > 5 && tok[..5].eq_ignore_ascii_case(b"CLASS"))
}

/// Parses RDATA back as its type: RFC 3597 generic data (`\\# 5 ...`) for
/// a known type must be valid RDATA of that type (RFC 3597 §5), and once it
/// is, its names are put into canonical form like any other.
fn checked_rdata(t: Rtype, rdata: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut parser = Parser::from_ref(&rdata);
    match ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(t, &mut parser) {
        Ok(Some(ZoneRecordData::Unknown(_))) => match codec::codec(t.to_int()) {
            Some(c) => c.canonical(&rdata).ok_or_else(|| {
                format!(
                    "the RDATA is not valid {} data (RFC 3597 §5)",
                    codec::type_name(t.to_int())
                )
            }),
            None => Ok(rdata.clone()),
        },
        Ok(Some(data)) if parser.remaining() == 0 => {
            let mut canonical = Vec::with_capacity(rdata.len());
            data.compose_canonical_rdata(&mut canonical)
                .map_err(|_| "RDATA does not fit".to_string())?;
            Ok(canonical)
        }
        Ok(Some(_)) => Err(format!(
            "{} RDATA has {} octets more than its format takes (RFC 3597 §5)",
            t,
            parser.remaining()
        )),
        Ok(None) | Err(_) => Err(format!(
            "the RDATA is not valid {} data (RFC 3597 §5)",
            codec::type_name(t.to_int())
        )),
    }
}

/// Types that are not zone data, or that a DNSSEC signer must not carry.
fn check_type(rtype: u16) -> Result<(), String> {
    match rtype {
        0 => Err("type 0 is reserved".into()),
        41 => Err("OPT is a meta type, not zone data".into()),
        24 => Err("SIG is obsolete DNSSEC (RFC 3755): remove it before signing".into()),
        30 => Err("NXT is obsolete DNSSEC (RFC 3755): remove it before signing".into()),
        128..=255 => Err(format!(
            "{} is a meta type or query type, not zone data",
            codec::type_name(rtype)
        )),
        _ => Ok(()),
    }
}

/// Splits the scanner's "line:col: message".
fn split_position(msg: &str) -> Option<(u32, &str)> {
    let (line, rest) = msg.split_once(':')?;
    let line: u32 = line.trim().parse().ok()?;
    let (_col, rest) = rest.split_once(':')?;
    Some((line, rest.trim()))
}

/// Byte offsets of line starts.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &[u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    fn line_of(&self, pos: usize) -> u32 {
        let idx = match self.starts.binary_search(&pos) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        u32::try_from(idx + 1).unwrap_or(u32::MAX)
    }

    /// The line of the first line that starts with a directive.
    fn find_directive(&self, text: &[u8], directive: &[u8]) -> Option<u32> {
        self.starts.iter().enumerate().find_map(|(n, &s)| {
            let line = &text[s..];
            let trimmed = &line[line.iter().position(|b| !b" \t".contains(b)).unwrap_or(0)..];
            (trimmed.len() >= directive.len()
                && trimmed[..directive.len()].eq_ignore_ascii_case(directive))
            .then(|| u32::try_from(n + 1).unwrap_or(u32::MAX))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(s: &str) -> String {
        String::from_utf8(prescan(s.as_bytes(), "example.com.").text).unwrap()
    }

    /// A big file scanned in two halves gives exactly the records (with
    /// their lines) of the one-pass scan, across $ORIGIN and $TTL changes,
    /// relative names, `@` in RDATA, TTL units, parentheses and quotes
    /// near the cut.
    #[test]
    fn halves_read_what_one_pass_reads() {
        let mut text = String::from(
            "$ORIGIN example.\n$TTL 1h\n@ SOA ns hostmaster ( 1 2h 3 4w 5 )\n@ NS ns\n",
        );
        for i in 0..60_000 {
            match i % 7 {
                0 => text.push_str(&format!("$ORIGIN s{i}.example.\n")),
                1 => text.push_str(&format!("$TTL {}m\n", i % 50 + 1)),
                2 => text.push_str(&format!("m{i} MX 10 @\n")),
                3 => text.push_str(&format!("t{i} TXT \"a ( b\" \"c ; d\" (\n \"e\" )\n")),
                4 => text.push_str(&format!("p{i} 2d SOA a b (\n 1 2 3 4 5 )\n")),
                5 => text.push_str(&format!(
                    "h{i} A 192.0.2.{}\n  AAAA 2001:db8::{:x}\n",
                    i % 256,
                    i
                )),
                _ => text.push_str(&format!("; comment {i}\nw{i} CNAME x{i}\n")),
            }
        }
        assert!(text.len() > HALVES_FROM);
        let Prescanned {
            text: expanded,
            entry_lines,
            split,
            ..
        } = prescan(text.as_bytes(), "example.");
        let split = split.expect("a big file has a place to cut");
        assert!(split.at > expanded.len() / 3 && split.at < expanded.len() * 2 / 3);
        let origin_name =
            Name::<Bytes>::from_octets(Bytes::from_static(b"\x07example\x00")).unwrap();
        let halves =
            scan_halves(expanded, &split, &origin_name, 0, &entry_lines).expect("both halves scan");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.zone");
        std::fs::write(&path, &text).unwrap();
        let origin: ZoneName = "example".parse().unwrap();
        let mut one_pass = Vec::new();
        for_each_record(&path, &origin, Limits::DEFAULT, |r| one_pass.push(r)).unwrap();
        assert!(one_pass.len() > 50_000);
        assert!(halves == one_pass, "the halves read other records");
        // And parse_file_with, which takes that path, agrees.
        assert!(
            parse_file_with(&path, &origin, true, Limits::DEFAULT)
                .unwrap()
                .records
                == one_pass
        );
        // A bad record in the second half is named as a one-pass scan names it.
        let bad_line = text.lines().count() + 1;
        std::fs::write(&path, format!("{text}bad A 192.0.2.300\n")).unwrap();
        let e = parse_file_with(&path, &origin, true, Limits::DEFAULT).unwrap_err();
        assert_eq!(e.line as usize, bad_line, "{e}");
        let one = for_each_record(&path, &origin, Limits::DEFAULT, |_| {}).unwrap_err();
        assert_eq!(e.to_string(), one.to_string());
    }

    fn records_of(text: &str) -> Result<Vec<Record>, ZoneError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zone");
        std::fs::write(&path, text).unwrap();
        parse_file(&path, &"example".parse().unwrap()).map(|p| p.records)
    }

    /// A '(' left open at the end of the file is an error at its line, not
    /// a panic in the scanner (fuzz/seeds/zone_file/txt-unclosed-paren:
    /// Knot's `@ TXT ( "text" ; Unclosed multiline block`), whatever the
    /// type; balanced groups over several lines still read.
    #[test]
    fn parentheses_open_at_the_end_of_the_file_are_an_error() {
        for text in [
            "@ TXT ( \"text\"\t; Unclosed multiline block\n\n;comment\n",
            "a A 192.0.2.1\n@ TXT \"a\" (\n\"b\"\n",
            "@ 300 IN TXT ( a b",
            "a A ( 192.0.2.1\n",
        ] {
            let e = records_of(&format!("{HEAD}{text}")).unwrap_err();
            let line =
                HEAD.lines().count() + 1 + text.lines().take_while(|l| !l.contains('(')).count();
            assert_eq!(e.line as usize, line, "{text:?}: {e}");
            assert!(e.message.contains("unbalanced parens"), "{e}");
        }
        let r = records_of(&format!(
            "{HEAD}t TXT ( \"a\" ; (\n \"(b\" )\nx A 192.0.2.1\n"
        ))
        .unwrap();
        assert_eq!(r.len(), 4);
    }

    /// Owners come out in canonical form: ASCII letters lowercased, written
    /// plainly or escaped, and nothing else touched.
    #[test]
    fn owners_are_lowercased_and_only_their_letters() {
        let r = records_of("WwW.Sub A 192.0.2.1\n\\065\\200\\091Z\\.q A 192.0.2.2\n").unwrap();
        assert_eq!(r[0].owner, b"\x03www\x03sub\x07example\x00");
        // `\065` is 'A'; `\200` and `\091` ('[') are no letters; `\.` is a
        // dot inside the label.
        assert_eq!(r[1].owner, b"\x06a\xc8[z.q\x07example\x00");
    }

    /// RFC 3597 generic RDATA of a known type is read back as that type:
    /// the same record as the type's own format (names lowercased where
    /// RFC 6840 §5.1 says so), and an error when it is not valid data of
    /// the type.
    #[test]
    fn generic_rdata_of_a_known_type_is_checked_and_canonical() {
        let typed = records_of("x NS NS1.Example.\ny A 192.0.2.1\n").unwrap();
        let generic =
            records_of("x NS \\# 13 034E5331074578616D706C6500\ny A \\# 4 C0000201\n").unwrap();
        assert_eq!(typed, generic);
        assert_eq!(typed[0].rdata, b"\x03ns1\x07example\x00");
        let e = records_of("y A \\# 5 C000020101\n").unwrap_err();
        assert!(e.message.contains("1 octets more"), "{e}");
        assert_eq!(e.line, 1);
        // An unknown type's data is kept as it is.
        let r = records_of("z TYPE65280 \\# 3 414243\n").unwrap();
        assert_eq!((r[0].rtype, r[0].rdata.as_slice()), (65280, &b"ABC"[..]));
    }

    /// Type names BIND writes that `domain` spells otherwise (NSAP-PTR)
    /// or lacks (MB) are read as owner types, as RRSIG's type covered and
    /// in NSEC and NSEC3 bitmaps; an NSEC next name that looks like a type
    /// stays a name.
    #[test]
    fn bind_type_names_are_read_everywhere_a_type_goes() {
        let r = records_of(concat!(
            "a NSAP-PTR host\n",
            "b MB mail\n",
            "c NSEC mb A NSAP-PTR MB RRSIG NSEC\n",
            "d RRSIG NSAP-PTR 13 2 300 20270101000000 20260101000000 1 example. AAAA\n",
            "e NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR MB NSAP-PTR\n",
        ))
        .unwrap();
        assert_eq!((r[0].rtype, r[1].rtype), (23, 7));
        // The next name `mb` is a name; the bitmap has A (1), MB (7),
        // NSAP-PTR (23), RRSIG, NSEC: window 0, 6 octets.
        assert!(r[2].rdata.starts_with(b"\x02mb\x07example\x00\x00\x06"));
        assert_eq!(&r[2].rdata[14..20], &[0x41, 0x00, 0x01, 0x00, 0x00, 0x03]);
        assert_eq!(&r[3].rdata[..2], &[0, 23]);
        assert!(r[4].rdata.ends_with(&[0, 3, 0x01, 0x00, 0x01]));
    }

    /// Refusals that name the type before the scanner trips on its data.
    #[test]
    fn obsolete_and_meta_types_are_refused_by_name_at_their_line() {
        let e = records_of("ok A 192.0.2.1\nx NXT a.example. ( A NXT )\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.starts_with("NXT is obsolete DNSSEC"), "{e}");
        let e = records_of("x TKEY \\# 0\n").unwrap_err();
        assert!(e.message.starts_with("TKEY is a meta type"), "{e}");
        let e = records_of("ok A 192.0.2.1\nl LOC 91 N 0 E 0m\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("LOC RDATA: latitude degrees 91"), "{e}");
    }

    /// `\#` not followed by a length is the text "#" in a type whose RDATA
    /// starts with a string, as BIND reads it; elsewhere it stays an error.
    #[test]
    fn a_hash_without_a_length_is_text() {
        assert_eq!(
            records_of("t TXT \\# text\n").unwrap(),
            records_of("t TXT \"#\" text\n").unwrap()
        );
        assert!(records_of("t TXT \\# 2 0145\n").unwrap()[0].rdata == [1, 0x45]);
        assert!(records_of("t A \\# nan\n").is_err());
    }

    #[test]
    fn entry_lines_skip_comments_directives_and_continuations() {
        let text = "; c\n$ORIGIN x.\n$TTL 1\n@ SOA a b (\n 1 2 3\n 4 5 )\n\n  A 1.2.3.4 ; c\nt TXT \"a\n b\"\n$INCLUDE f\nz A 1.1.1.1\n";
        assert_eq!(
            prescan(text.as_bytes(), "x.").entry_lines,
            vec![4, 8, 9, 11, 12]
        );
    }

    #[test]
    fn at_in_rdata_is_the_origin() {
        assert_eq!(expand("www CNAME @\n"), "www CNAME example.com.\n");
        assert_eq!(
            expand("@ MX 10 @ ; @ here\n"),
            "@ MX 10 example.com. ; @ here\n"
        );
        assert_eq!(expand("t TXT \"@\" \\@\n"), "t TXT \"@\" \\@\n");
        assert_eq!(
            expand("@ SOA @ h (\n@ 1 2 3 4 )\n"),
            "@ SOA example.com. h (\nexample.com. 1 2 3 4 )\n"
        );
        assert_eq!(
            expand("$ORIGIN sub\nx CNAME @\n"),
            "$ORIGIN sub\nx CNAME sub.example.com.\n"
        );
        assert_eq!(
            expand("$ORIGIN other.\nx CNAME @\n"),
            "$ORIGIN other.\nx CNAME other.\n"
        );
    }

    /// A scanner error names the earlier of its own line and the entry's
    /// first line, and an unknown type gets the RFC 3597 hint.
    #[test]
    fn scanner_errors_name_the_entry_line() {
        let (line, msg) = scanner_error("12:5: unknown record type FOO", 10);
        assert_eq!(line, 10);
        assert!(msg.starts_with("unknown record type FOO: this type has no presentation format"));
        assert!(msg.ends_with("(TYPEnnn \\# LENGTH HEX)"));
        assert_eq!(scanner_error("3:1: bad TTL", 7), (3, "bad TTL".to_string()));
        assert_eq!(
            scanner_error("no position", 4),
            (4, "no position".to_string())
        );
    }

    #[test]
    fn ttl_units_become_seconds() {
        assert_eq!(expand("$TTL 1h\n"), "$TTL 3600\n");
        assert_eq!(
            expand("a 1h30m IN A 192.0.2.1\n"),
            "a 5400 IN A 192.0.2.1\n"
        );
        assert_eq!(expand("1d IN 2W TXT 1d\n"), "1d IN 1209600 TXT 1d\n");
        assert_eq!(
            expand("@ SOA ns h (\n 1 ; serial\n 6h 1H 1w 5M )\n"),
            "@ SOA ns h (\n 1 ; serial\n 21600 3600 604800 300 )\n"
        );
        assert_eq!(ttl_with_units(b"1h30"), None);
        assert_eq!(ttl_with_units(b"h"), None);
        assert_eq!(ttl_with_units(b"300"), None);
    }

    const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n@ NS ns\n";

    /// Parses `main.zone` in `dir` within `limits`.
    fn parse_in(dir: &Path, limits: Limits) -> Result<Parsed, ZoneError> {
        parse_file_with(
            &dir.join("main.zone"),
            &"example".parse().unwrap(),
            false,
            limits,
        )
    }

    #[test]
    fn includes_of_what_is_not_a_regular_file_are_refused_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for target in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            std::fs::write(
                dir.path().join("main.zone"),
                format!("{HEAD}$INCLUDE {}\nns A 192.0.2.1\n", target.display()),
            )
            .unwrap();
            let e = parse_in(dir.path(), Limits::DEFAULT).unwrap_err();
            assert!(e.file.ends_with("main.zone"), "{e}");
            assert_eq!(e.line, 5, "{e}");
            assert!(e.message.contains("not a regular file"), "{e}");
            assert!(e.message.contains(&target.display().to_string()), "{e}");
        }
        // The zone file itself too.
        let e = parse_file(&fifo, &"example".parse().unwrap()).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    /// An origin right after a quoted `$INCLUDE` file name reads as one
    /// after a space, not a panic in the scanner
    /// (fuzz/seeds/zone_file/include-quoted-name-then-origin: `$INCLUDE""o`);
    /// and a quoted name with an origin names the file, not the file and
    /// its closing quote.
    #[test]
    fn an_origin_right_after_a_quoted_include_name_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part"), "h A 192.0.2.1\n").unwrap();
        for include in [
            "$INCLUDE \"part\" sub",
            "$include \"part\"sub",
            "$INCLUDE \"part\"sub ; c",
        ] {
            std::fs::write(dir.path().join("main.zone"), format!("{HEAD}{include}\n")).unwrap();
            let r = parse_in(dir.path(), Limits::DEFAULT).unwrap().records;
            assert_eq!(r[2].owner, b"\x01h\x03sub\x07example\x00", "{include}");
        }
        // The second: a name over two lines (include-quoted-name-over-a-line).
        for include in ["$INCLUDE\"\"o", "$INCLUDE\"\n\"."] {
            std::fs::write(dir.path().join("main.zone"), format!("{HEAD}{include}\n")).unwrap();
            assert_eq!(parse_in(dir.path(), Limits::DEFAULT).unwrap_err().line, 5);
        }
        let origin: ZoneName = "example".parse().unwrap();
        let e = parse_text(b"$INCLUDE\"\"o", "mem.zone", &origin, Limits::DEFAULT).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn each_file_and_all_files_together_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let part: String = (0..100).map(|i| format!("h{i} A 192.0.2.1\n")).collect();
        std::fs::write(dir.path().join("part"), &part).unwrap();
        let main = format!("{HEAD}ns A 192.0.2.1\n{}", "$INCLUDE part\n".repeat(20));
        std::fs::write(dir.path().join("main.zone"), &main).unwrap();
        let size = |n: usize| (main.len() + n * part.len()) as u64;
        // Room for all: 20 includes of the same file are read 20 times.
        let all = Limits {
            file_bytes: part.len().max(main.len()) as u64,
            total_bytes: size(20),
            includes: true,
        };
        assert_eq!(
            parse_in(dir.path(), all).unwrap().records.len(),
            3 + 100 * 20
        );
        // One byte less in all: the 20th include is refused, at its line.
        let e = parse_in(
            dir.path(),
            Limits {
                total_bytes: size(20) - 1,
                ..all
            },
        )
        .unwrap_err();
        assert_eq!(e.line, 5 + 20, "{e}");
        assert!(e.message.contains("max_total_bytes"), "{e}");
        // Where includes are not followed (the signing service's uploads),
        // the first one is refused at its line, before it is opened.
        let e = parse_in(
            dir.path(),
            Limits {
                includes: false,
                ..all
            },
        )
        .unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("$INCLUDE is not followed here"), "{e}");
        // One file too big.
        let e = parse_in(
            dir.path(),
            Limits {
                file_bytes: part.len() as u64 - 1,
                ..all
            },
        )
        .unwrap_err();
        assert!(e.message.contains("max_file_bytes"), "{e}");
        let e = parse_in(
            dir.path(),
            Limits {
                file_bytes: 10,
                total_bytes: 1 << 30,
                includes: true,
            },
        )
        .unwrap_err();
        assert!(e.file.ends_with("main.zone") && e.line == 0, "{e}");
    }

    /// Text from memory reads as the same text from a file does, names
    /// the given name in messages, keeps to the limits and follows no
    /// `$INCLUDE`.
    #[test]
    fn text_from_memory_reads_as_a_file_and_follows_no_include() {
        let origin: ZoneName = "example".parse().unwrap();
        let text = format!("{HEAD}www 1h A 192.0.2.1\nmx MX 10 @\n");
        let from_file = records_of(&text).unwrap();
        let from_memory = parse_text(text.as_bytes(), "mem.zone", &origin, Limits::DEFAULT)
            .unwrap()
            .records;
        assert_eq!(from_memory, from_file);
        let e =
            parse_text(b"www A 192.0.2.300\n", "mem.zone", &origin, Limits::DEFAULT).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("mem.zone", 1), "{e}");
        let e = parse_text(
            format!("{HEAD}$INCLUDE /etc/hostname\n").as_bytes(),
            "mem.zone",
            &origin,
            Limits::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("$INCLUDE is not followed"), "{e}");
        let small = Limits {
            file_bytes: 10,
            total_bytes: 10,
            includes: true,
        };
        let e = parse_text(text.as_bytes(), "mem.zone", &origin, small).unwrap_err();
        assert!(e.message.contains("above the limit"), "{e}");
    }
}
