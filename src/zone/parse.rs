//! Reading master files (RFC 1035 §5) with NLnet Labs' `domain` scanner.
//!
//! The scanner handles `$ORIGIN`, `$TTL`, relative names, escapes, quoted
//! strings, parentheses, comments and RFC 3597 generic RDATA; this module
//! follows `$INCLUDE`, turns records into canonical form, remembers the
//! file and line of each record for messages, and refuses what a signer
//! must not take: other classes, meta types, obsolete DNSSEC types, and
//! BIND's `$GENERATE` (a BIND-only extension: expand it with
//! `named-compilezone` first).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::name::ToName;
use domain::base::rdata::ComposeRecordData;
use domain::base::Name;
use domain::zonefile::inplace::{Entry, Zonefile};

use super::rr::{Record, Source};
use super::ZoneName;

/// Deepest `$INCLUDE` nesting followed (loops end here).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A problem in the input, with its place.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: {message}")]
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

/// Reads a zone file with `origin` as the initial origin.
pub fn parse_file(path: &Path, origin: &ZoneName) -> Result<Parsed, ZoneError> {
    let mut parsed = Parsed::default();
    let origin_name =
        Name::<Bytes>::from_octets(Bytes::copy_from_slice(origin.wire())).map_err(|e| {
            ZoneError {
                file: path.display().to_string(),
                line: 0,
                message: format!("origin: {e}"),
            }
        })?;
    read_one(path, origin_name, &mut parsed, 0)?;
    Ok(parsed)
}

fn read_one(
    path: &Path,
    origin: Name<Bytes>,
    out: &mut Parsed,
    depth: usize,
) -> Result<(), ZoneError> {
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
    let text = std::fs::read(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
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

    let origin_text = format!("{}", origin.fmt_with_dot());
    let (text, entry_lines, bad_directive) = prescan(&text, &origin_text);
    if let Some(line) = bad_directive {
        return Err(err(line, "$ORIGIN and $TTL need a value".into()));
    }
    let mut entries = 0usize;
    let line_of_entry = |k: usize| {
        entry_lines
            .get(k)
            .copied()
            .or(entry_lines.last().copied())
            .unwrap_or(1)
    };
    let mut zf = Zonefile::new();
    zf.extend_from_slice(&text);
    if !text.ends_with(b"\n") {
        zf.extend_from_slice(b"\n");
    }
    zf.set_origin(origin);
    zf.set_default_class(Class::IN);
    loop {
        let entry = match zf.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                // The scanner's message starts with "line:col: " where it
                // stopped, often past the entry; the entry's first line is
                // what names the record.
                // A directive ($TTL, $ORIGIN) is no entry of ours, so the
                // earlier of the two lines is the one to name.
                let msg = e.to_string();
                let ours = line_of_entry(entries);
                let (line, rest) = match split_position(&msg) {
                    Some((l, r)) => (l.min(ours), r),
                    None => (ours, msg.as_str()),
                };
                return Err(err(line, rest.to_string()));
            }
        };
        let line = line_of_entry(entries);
        entries += 1;
        match entry {
            Entry::Record(r) => {
                let place = Source {
                    file: file_index,
                    line,
                };
                if r.class() != Class::IN {
                    return Err(err(
                        line,
                        format!("class {} is not supported (only IN)", r.class()),
                    ));
                }
                let rtype = r.rtype().to_int();
                check_type(rtype).map_err(|m| err(line, m))?;
                let owner: Name<Vec<u8>> = r.owner().to_canonical_name();
                let mut rdata = Vec::new();
                r.data()
                    .compose_canonical_rdata(&mut rdata)
                    .map_err(|_| err(line, "RDATA does not fit".into()))?;
                if rdata.len() > usize::from(u16::MAX) {
                    return Err(err(
                        line,
                        format!("RDATA of {} octets exceeds 65535", rdata.len()),
                    ));
                }
                out.records.push(Record {
                    owner: owner.into_octets(),
                    rtype,
                    ttl: r.ttl().as_secs(),
                    rdata,
                    origin: place,
                });
            }
            Entry::Include {
                path: inc,
                origin: inc_origin,
            } => {
                let inc_path = PathBuf::from(inc.to_string());
                let inc_path = if inc_path.is_absolute() {
                    inc_path
                } else {
                    path.parent().unwrap_or(Path::new(".")).join(inc_path)
                };
                let o = match inc_origin {
                    Some(o) => o,
                    None => zf.origin().map_err(|e| err(line, e.to_string()))?,
                };
                read_one(&inc_path, o, out, depth + 1).map_err(|e| {
                    if e.line == 0 {
                        err(
                            line,
                            format!("$INCLUDE {}: {}", inc_path.display(), e.message),
                        )
                    } else {
                        e
                    }
                })?;
            }
        }
    }
    Ok(())
}

/// Replaces a free-standing `@` in RDATA with the current origin, and
/// finds where entries start.
///
/// RFC 1035 §5.1 lets `@` stand for the origin anywhere a name goes; the
/// scanner understands it only as an owner, and reads `CNAME @` as the
/// relative name `@`. Owners (the first token of a line outside
/// parentheses) are left alone; `$ORIGIN` lines are followed; quoted
/// strings, escapes (`\@`) and comments are left as they are. Line breaks
/// stay where they are, so line numbers do not change.
///
/// It also lists the line on which each entry the scanner returns (a record
/// or an `$INCLUDE`) starts: the scanner does not say where a record came
/// from.
fn prescan<'a>(
    text: &'a [u8],
    origin: &str,
) -> (std::borrow::Cow<'a, [u8]>, Vec<u32>, Option<u32>) {
    let mut entry_lines = Vec::new();
    let mut bad_directive = None;
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut origin = origin.to_string();
    let mut depth = 0usize;
    let mut in_quote = false;
    for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        // An entry starts on a line outside parentheses with a token on it;
        // $ORIGIN and $TTL are handled inside the scanner, $INCLUDE is not.
        if depth == 0 && !in_quote {
            let first = line.iter().position(|b| !b.is_ascii_whitespace());
            if let Some(i) = first.filter(|&i| line[i] != b';') {
                let rest = &line[i..];
                let directive =
                    |d: &[u8]| rest.len() >= d.len() && rest[..d.len()].eq_ignore_ascii_case(d);
                if directive(b"$ORIGIN") || directive(b"$TTL") {
                    // The scanner reports a missing argument on a later
                    // line; name the directive's own line.
                    let body = rest.split(|&b| b == b';').next().unwrap_or(rest);
                    if body
                        .split(|b| b.is_ascii_whitespace())
                        .filter(|t| !t.is_empty())
                        .count()
                        < 2
                    {
                        bad_directive.get_or_insert(line_no);
                    }
                } else {
                    entry_lines.push(line_no);
                }
            }
        }
        // $ORIGIN changes what `@` means for the lines after it.
        if depth == 0 && line.len() > 7 && line[..7].eq_ignore_ascii_case(b"$ORIGIN") {
            if let Some(tok) = line[7..]
                .split(|b| b.is_ascii_whitespace())
                .find(|t| !t.is_empty())
            {
                let tok = String::from_utf8_lossy(tok).to_string();
                origin = if tok.ends_with('.') && !tok.ends_with("\\.") {
                    tok
                } else if origin == "." {
                    format!("{tok}.")
                } else {
                    format!("{tok}.{origin}")
                };
            }
            out.extend_from_slice(line);
            continue;
        }
        let owner_position =
            depth == 0 && !in_quote && line.first().is_some_and(|b| !b.is_ascii_whitespace());
        let mut token_index = 0;
        let mut i = 0;
        if in_quote {
            // The rest of a quoted string begun on an earlier line.
            while i < line.len() && line[i] != b'"' {
                i += if line[i] == b'\\' { 2 } else { 1 };
            }
            in_quote = i >= line.len();
            i = (i + 1).min(line.len());
            out.extend_from_slice(&line[..i]);
        }
        while i < line.len() {
            let b = line[i];
            match b {
                b';' => {
                    out.extend_from_slice(&line[i..]);
                    i = line.len();
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < line.len() && line[i] != b'"' {
                        i += if line[i] == b'\\' { 2 } else { 1 };
                    }
                    // A quoted string may run on to the next line.
                    in_quote = i >= line.len();
                    i = (i + 1).min(line.len());
                    out.extend_from_slice(&line[start..i.min(line.len())]);
                    token_index += 1;
                }
                b'(' | b')' => {
                    if b == b'(' {
                        depth += 1;
                    } else {
                        depth = depth.saturating_sub(1);
                    }
                    out.push(b);
                    i += 1;
                }
                _ if b.is_ascii_whitespace() => {
                    out.push(b);
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
                    let is_owner = owner_position && token_index == 0;
                    if tok == b"@" && !is_owner {
                        out.extend_from_slice(origin.as_bytes());
                    } else {
                        out.extend_from_slice(tok);
                    }
                    i = i_end;
                    token_index += 1;
                }
            }
        }
    }
    (std::borrow::Cow::Owned(out), entry_lines, bad_directive)
}

/// Types that are not zone data, or that a DNSSEC signer must not carry.
fn check_type(rtype: u16) -> Result<(), String> {
    match rtype {
        0 => Err("type 0 is reserved".into()),
        41 => Err("OPT is a meta type, not zone data".into()),
        24 => Err("SIG is obsolete DNSSEC (RFC 3755): remove it before signing".into()),
        30 => Err("NXT is obsolete DNSSEC (RFC 3755): remove it before signing".into()),
        128..=255 => Err(format!(
            "TYPE{rtype} is a meta type or query type, not zone data"
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
        String::from_utf8(prescan(s.as_bytes(), "example.com.").0.into_owned()).unwrap()
    }

    #[test]
    fn entry_lines_skip_comments_directives_and_continuations() {
        let text = "; c\n$ORIGIN x.\n$TTL 1\n@ SOA a b (\n 1 2 3\n 4 5 )\n\n  A 1.2.3.4 ; c\nt TXT \"a\n b\"\n$INCLUDE f\nz A 1.1.1.1\n";
        assert_eq!(prescan(text.as_bytes(), "x.").1, vec![4, 8, 9, 11, 12]);
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
}
