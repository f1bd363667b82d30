//! KSR and SKR files in Knot DNS's text format (Knot 3.2 `keymgr
//! generate-ksr`, `sign-ksr`): master-file records between `;;` period
//! headers, ended by a footer.
//!
//! Reading: the records are read by the zone parser
//! ([`crate::zone::parse`]), so any master-file syntax Knot's reader takes
//! (tabs, parentheses, class `IN`, case, `@`) is read; only the header
//! comments are found here, by line, and each record goes to the period
//! whose header precedes its line. A header is a whole-line comment that,
//! after its first `;`, reads `; KeySigningRequest <version> <time>`
//! (`SignedKeyResponse` in an SKR); `<time>` is Unix seconds, or BIND
//! 9.20's `YYYYMMDDHHMMSS` when it has 14 digits. The same comment
//! without a time (`... generated at ...`) is the footer, which must be
//! there (Knot refuses a file without it too). Records must be owned by
//! the zone, carry their own TTL (Knot would take 0 for a missing one) and
//! be DNSKEY only (KSR) or DNSKEY, CDS, CDNSKEY and RRSIG over those
//! (SKR). `$INCLUDE` is refused.
//!
//! Writing follows Knot's layout: header `;; <kind> 1.0 <unix> (<ISO>)
//! =========`, one record a line with absolute owner and explicit TTL,
//! per SKR period DNSKEY, CDNSKEY, CDS, then RRSIGs (DNSKEY, CDS,
//! CDNSKEY), and the footer `;; <kind> 1.0 generated at <ISO> by dnsseal
//! <version>`.

use std::path::Path;

use super::{dnskey_from_rdata, Request, RequestPeriod, Response, ResponsePeriod};
use crate::clock::Timestamp;
use crate::zone::parse::{parse_text, Limits, ZoneError};
use crate::zone::present::{name_text, write_rdata};
use crate::zone::rr::{rtype, Record};
use crate::zone::rrsig::Rrsig;
use crate::zone::ZoneName;

const KSR: &str = "KeySigningRequest";
const SKR: &str = "SignedKeyResponse";
/// Largest KSR/SKR file read (a year of periods is some 100 KiB).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// A KSR or SKR that cannot be read, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct KsrError {
    pub file: String,
    pub line: u32,
    pub message: String,
}

/// A header line: a period's start, or the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Period(Timestamp),
    Footer,
}

/// Reads the header comment of `kind` on `line`, if it is one.
fn header(line: &str, kind: &str) -> Result<Option<Header>, String> {
    let Some(rest) = line.trim_start().strip_prefix(';') else {
        return Ok(None);
    };
    // As Knot's sscanf("; <kind> %f %u") on the text after the first ';'.
    let Some(rest) = rest.strip_prefix(';') else {
        return Ok(None);
    };
    let mut tokens = rest.split_whitespace();
    if tokens.next() != Some(kind) {
        return Ok(None);
    }
    let Some(version) = tokens.next() else {
        return Ok(None);
    };
    if version.parse::<f32>().is_err() {
        return Ok(None);
    }
    let Some(time) = tokens
        .next()
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Ok(Some(Header::Footer));
    };
    if time.len() == 14 {
        return Timestamp::parse(time)
            .map(|t| Some(Header::Period(t)))
            .map_err(|e| e.to_string());
    }
    time.parse::<u32>()
        .map(|t| Some(Header::Period(Timestamp::from_unix(i64::from(t)))))
        .map_err(|_| format!("period time {time} is not Unix seconds within 32 bits"))
}

/// The records of a file, each with the header it falls under.
struct Sections {
    /// Headers in file order: line and time.
    periods: Vec<(u32, Timestamp)>,
    /// Records with the index of their period in `periods`.
    records: Vec<(usize, Record)>,
}

/// Reads `text` (named `file` in messages) as a file of `kind` for `zone`.
fn read_sections(
    text: &str,
    file: &str,
    zone: &ZoneName,
    kind: &str,
) -> Result<Sections, KsrError> {
    let err = |line: u32, message: String| KsrError {
        file: file.to_string(),
        line,
        message,
    };
    let mut periods: Vec<(u32, Timestamp)> = Vec::new();
    let mut footer = None;
    for (i, l) in text.lines().enumerate() {
        let n = u32::try_from(i + 1).map_err(|_| err(0, "too many lines".into()))?;
        match header(l, kind).map_err(|m| err(n, m))? {
            Some(Header::Period(t)) if footer.is_none() => periods.push((n, t)),
            Some(Header::Period(_)) => {
                return Err(err(
                    n,
                    format!("period header after the footer of the {kind}"),
                ))
            }
            Some(Header::Footer) => footer = footer.or(Some(n)),
            None => {}
        }
    }
    let Some(footer) = footer else {
        return Err(err(
            0,
            format!("no footer ';; {kind} 1.0 generated at ...': the file is cut short"),
        ));
    };
    let (explicit, default) = (
        parse_with_ttl(text, file, zone, 1)?,
        parse_with_ttl(text, file, zone, 2)?,
    );
    if explicit.len() != default.len() {
        return Err(err(0, "the file reads differently each time".into()));
    }
    let mut records = Vec::with_capacity(explicit.len());
    for (r, other) in explicit.into_iter().zip(default) {
        let line = r.origin.line;
        let what = format!(
            "{} {}",
            name_text(&r.owner),
            crate::zone::model::type_name(r.rtype)
        );
        if r.ttl != other.ttl {
            return Err(err(
                line,
                format!("{what}: no TTL (Knot would read 0); write it"),
            ));
        }
        if r.owner != zone.wire() {
            return Err(err(line, format!("{what}: owner is not the zone {zone}")));
        }
        if line > footer {
            return Err(err(line, format!("{what}: after the footer")));
        }
        let Some(p) = periods.iter().rposition(|(h, _)| *h < line) else {
            return Err(err(line, format!("{what}: before the first period header")));
        };
        records.push((p, r));
    }
    Ok(Sections { periods, records })
}

/// Parses `text` with `$TTL <ttl>` in front, so that a record without a
/// TTL of its own takes `ttl` (lines as in `text`).
fn parse_with_ttl(
    text: &str,
    file: &str,
    zone: &ZoneName,
    ttl: u32,
) -> Result<Vec<Record>, KsrError> {
    let fail = |line: u32, message: String| KsrError {
        file: file.to_string(),
        line,
        message,
    };
    // Refused before the parser would read what it names: a request is
    // input from the other side of the gap.
    if let Some(n) = text
        .lines()
        .position(|l| l.trim_start().to_ascii_uppercase().starts_with("$INCLUDE"))
    {
        return Err(fail(
            n as u32 + 1,
            "$INCLUDE is not allowed in a KSR or SKR".into(),
        ));
    }
    // Read in memory: nothing of the other side's text reaches a file.
    let text = format!("$TTL {ttl}\n{text}");
    let parsed = parse_text(text.as_bytes(), file, zone, Limits::DEFAULT)
        .map_err(|e: ZoneError| fail(e.line.saturating_sub(1), e.message))?;
    Ok(parsed
        .records
        .into_iter()
        .map(|mut r| {
            r.origin.line = r.origin.line.saturating_sub(1);
            r
        })
        .collect())
}

/// Reads a KSR or SKR file (at most 64 MiB, a regular file, UTF-8) for
/// one of the `*_text` readers.
pub fn read_text(path: &Path) -> Result<String, KsrError> {
    let file = path.display().to_string();
    let bytes = crate::files::read_regular(path, MAX_FILE_BYTES).map_err(|e| KsrError {
        file: file.clone(),
        line: 0,
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| KsrError {
        file,
        line: 0,
        message: "not UTF-8 text".into(),
    })
}

/// Reads a KSR file for `zone`.
pub fn parse_request(path: &Path, zone: &ZoneName) -> Result<Request, KsrError> {
    parse_request_text(&read_text(path)?, &path.display().to_string(), zone)
}

/// Reads a SKR file for `zone`.
pub fn parse_response(path: &Path, zone: &ZoneName) -> Result<Response, KsrError> {
    parse_response_text(&read_text(path)?, &path.display().to_string(), zone)
}

/// Reads KSR text (named `file` in messages) for `zone`.
pub fn parse_request_text(text: &str, file: &str, zone: &ZoneName) -> Result<Request, KsrError> {
    let s = read_sections(text, file, zone, KSR)?;
    let mut periods: Vec<RequestPeriod> = s
        .periods
        .iter()
        .map(|&(_, time)| RequestPeriod {
            time,
            ttl: 0,
            dnskeys: Vec::new(),
        })
        .collect();
    for (p, r) in s.records {
        let line = r.origin.line;
        let err = |message: String| KsrError {
            file: file.to_string(),
            line,
            message,
        };
        let what = crate::zone::model::type_name(r.rtype);
        if r.rtype != rtype::DNSKEY {
            return Err(err(format!("{what}: a KSR holds DNSKEY records only")));
        }
        let key =
            dnskey_from_rdata(&r.rdata).ok_or_else(|| err("DNSKEY RDATA too short".into()))?;
        let period = &mut periods[p];
        if !period.dnskeys.is_empty() && period.ttl != r.ttl {
            return Err(err(format!(
                "DNSKEY {}: TTL {} differs from {} of the period's other keys",
                key.key_tag(),
                r.ttl,
                period.ttl
            )));
        }
        period.ttl = r.ttl;
        period.dnskeys.push(key);
    }
    Ok(Request {
        zone: zone.clone(),
        periods,
    })
}

/// The DNSKEY records of `zone`'s apex in zone-file text (a file of
/// pinned KSKs; other records are ignored, `$INCLUDE` refused).
pub fn dnskeys_in(
    text: &str,
    file: &str,
    zone: &ZoneName,
) -> Result<Vec<crate::zone::Dnskey>, KsrError> {
    let records = parse_with_ttl(text, file, zone, 3600)?;
    Ok(records
        .iter()
        .filter(|r| r.rtype == rtype::DNSKEY && r.owner == zone.wire())
        .filter_map(|r| dnskey_from_rdata(&r.rdata))
        .collect())
}

/// Reads SKR text (named `file` in messages) for `zone`.
pub fn parse_response_text(text: &str, file: &str, zone: &ZoneName) -> Result<Response, KsrError> {
    let s = read_sections(text, file, zone, SKR)?;
    let mut periods: Vec<ResponsePeriod> = s
        .periods
        .iter()
        .map(|&(_, time)| ResponsePeriod {
            time,
            dnskey_ttl: 0,
            dnskeys: Vec::new(),
            cds_ttl: 0,
            cdnskey: Vec::new(),
            cds: Vec::new(),
            rrsigs: Vec::new(),
        })
        .collect();
    let mut seen = vec![(false, false); periods.len()];
    for (p, r) in s.records {
        let line = r.origin.line;
        let err = |message: String| KsrError {
            file: file.to_string(),
            line,
            message,
        };
        let what = crate::zone::model::type_name(r.rtype);
        let period = &mut periods[p];
        let (dnskey_seen, cds_seen) = &mut seen[p];
        let ttl_clash = |ttl: u32, seen: bool| seen && ttl != r.ttl;
        match r.rtype {
            rtype::DNSKEY => {
                if ttl_clash(period.dnskey_ttl, *dnskey_seen) {
                    return Err(err(format!(
                        "{what}: TTL {} differs from the period's DNSKEY TTL {}",
                        r.ttl, period.dnskey_ttl
                    )));
                }
                let key = dnskey_from_rdata(&r.rdata)
                    .ok_or_else(|| err("DNSKEY RDATA too short".into()))?;
                (period.dnskey_ttl, *dnskey_seen) = (r.ttl, true);
                period.dnskeys.push(key);
            }
            rtype::CDS | rtype::CDNSKEY => {
                if ttl_clash(period.cds_ttl, *cds_seen) {
                    return Err(err(format!(
                        "{what}: TTL {} differs from the period's CDS/CDNSKEY TTL {}",
                        r.ttl, period.cds_ttl
                    )));
                }
                (period.cds_ttl, *cds_seen) = (r.ttl, true);
                if r.rtype == rtype::CDS {
                    period.cds.push(r.rdata);
                } else {
                    period.cdnskey.push(r.rdata);
                }
            }
            rtype::RRSIG => match Rrsig::covered(&r.rdata) {
                Some(rtype::DNSKEY | rtype::CDS | rtype::CDNSKEY) => period.rrsigs.push(r.rdata),
                _ => {
                    return Err(err(
                        "RRSIG: an SKR holds RRSIGs over DNSKEY, CDS and CDNSKEY only".into(),
                    ))
                }
            },
            _ => {
                return Err(err(format!(
                    "{what}: an SKR holds DNSKEY, CDS, CDNSKEY and RRSIG records only"
                )))
            }
        }
    }
    Ok(Response {
        zone: zone.clone(),
        periods,
    })
}

/// `;; <kind> 1.0 <unix> (<ISO>) =========`.
fn header_line(out: &mut String, kind: &str, time: Timestamp) {
    out.push_str(&format!(
        ";; {kind} 1.0 {} ({}) =========\n",
        time.unix(),
        time.rfc3339()
    ));
}

/// `;; <kind> 1.0 generated at <ISO> by dnsseal <version>`.
fn footer_line(out: &mut String, kind: &str, generated: Timestamp) {
    out.push_str(&format!(
        ";; {kind} 1.0 generated at {} by dnsseal {}\n",
        generated.rfc3339(),
        env!("CARGO_PKG_VERSION")
    ));
}

/// One record line: owner padded to 20 columns and a tab, as Knot writes.
fn record_line(out: &mut String, owner: &str, ttl: u32, t: u16, rdata: &[u8]) {
    let mut text = Vec::new();
    // Writing to a Vec does not fail.
    let _ = write_rdata(&mut text, t, rdata);
    out.push_str(&format!(
        "{owner:<20}\t{ttl} {} {}\n",
        crate::zone::model::type_name(t),
        String::from_utf8_lossy(&text)
    ));
}

/// A KSR in Knot's layout; `generated` goes into the footer.
pub fn write_request(request: &Request, generated: Timestamp) -> String {
    let owner = request.zone.to_string();
    let mut out = String::new();
    for p in &request.periods {
        header_line(&mut out, KSR, p.time);
        for k in &p.dnskeys {
            record_line(&mut out, &owner, p.ttl, rtype::DNSKEY, &k.rdata());
        }
    }
    footer_line(&mut out, KSR, generated);
    out
}

/// A SKR in Knot's layout; `generated` goes into the footer.
pub fn write_response(response: &Response, generated: Timestamp) -> String {
    let owner = response.zone.to_string();
    let mut out = String::new();
    for p in &response.periods {
        header_line(&mut out, SKR, p.time);
        for k in &p.dnskeys {
            record_line(&mut out, &owner, p.dnskey_ttl, rtype::DNSKEY, &k.rdata());
        }
        for r in &p.cdnskey {
            record_line(&mut out, &owner, p.cds_ttl, rtype::CDNSKEY, r);
        }
        for r in &p.cds {
            record_line(&mut out, &owner, p.cds_ttl, rtype::CDS, r);
        }
        for covered in [rtype::DNSKEY, rtype::CDS, rtype::CDNSKEY] {
            for r in p
                .rrsigs
                .iter()
                .filter(|r| Rrsig::covered(r) == Some(covered))
            {
                let ttl = Rrsig::parse(r).map_or(0, |s| s.original_ttl());
                record_line(&mut out, &owner, ttl, rtype::RRSIG, r);
            }
        }
    }
    footer_line(&mut out, SKR, generated);
    out
}
