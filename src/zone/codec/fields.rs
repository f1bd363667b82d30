//! RDATA as a sequence of fields of a few shapes (numbers, names, strings,
//! blobs, addresses): most types are one of these lists, read from text,
//! walked in wire form and written back with one piece of code per shape.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use domain::base::iana::SecurityAlgorithm;
use domain::rdata::dnssec::RtypeBitmap;

use super::tokens::Tokens;
use crate::zone::rr::name_len;

/// One field of RDATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    U8(&'static str),
    U16(&'static str),
    U32(&'static str),
    /// A DNSSEC algorithm: a number or its mnemonic (RFC 4034 App. A.1).
    Alg,
    /// A DS digest type: a number or its mnemonic (`SHA-256`).
    Digest,
    /// KEY flags: a number, decimal or `0x` hex (RFC 2535 §7.1).
    KeyFlags,
    /// KEY protocol: a number or its mnemonic (RFC 2535 §3.1.3).
    Protocol,
    /// A CERT type: a number or its mnemonic (RFC 4398 §2.1).
    CertType,
    /// An RR type: its mnemonic, TYPEnnn or a number.
    Rtype,
    /// A domain name.
    Name(&'static str),
    /// One character string.
    CharStr(&'static str),
    /// An optional last character string.
    OptCharStr(&'static str),
    /// One or more character strings, to the end.
    CharStrs,
    /// One string to the end, without a length octet (URI; BIND takes an
    /// empty one).
    Text(&'static str),
    /// Base64 to the end, not empty.
    Base64(&'static str),
    /// Base64 to the end, maybe empty.
    OptBase64(&'static str),
    /// Base64 to the end, or `-` for none (DOA).
    Base64OrDash(&'static str),
    /// Hex to the end, not empty.
    Hex(&'static str),
    /// An NSAP address: `0x` and hex digits, dots allowed (RFC 1706).
    Nsap,
    Ipv4(&'static str),
    Ipv6(&'static str),
    /// 64 bits as four groups of four hex digits (RFC 6742).
    Ilnp64(&'static str),
    /// An EUI-48 or EUI-64 (RFC 7043): six or eight hex pairs with `-`.
    Eui(usize),
    /// A type bitmap (RFC 4034 §4.1.2), to the end.
    Types,
}

/// Reads the fields from text into wire form.
pub fn scan(fields: &[Field], t: &mut Tokens) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for &f in fields {
        scan_one(f, t, &mut out)?;
    }
    t.end()?;
    Ok(out)
}

fn scan_one(f: Field, t: &mut Tokens, out: &mut Vec<u8>) -> Result<(), String> {
    match f {
        Field::U8(w) => out.push(t.u8(w)?),
        Field::U16(w) => out.extend_from_slice(&t.u16(w)?.to_be_bytes()),
        Field::U32(w) => out.extend_from_slice(&t.u32(w)?.to_be_bytes()),
        Field::Alg => {
            let w = t.word("algorithm")?;
            let alg = match w.parse::<u8>() {
                Ok(n) => n,
                Err(_) => SecurityAlgorithm::from_mnemonic(w.as_bytes())
                    .map(|a| a.to_int())
                    .ok_or_else(|| format!("unknown algorithm {w:?}"))?,
            };
            out.push(alg);
        }
        Field::Digest => {
            let w = t.word("digest type")?;
            let n = match w.parse::<u8>() {
                Ok(n) => n,
                Err(_) => domain::base::iana::DigestAlgorithm::from_mnemonic(w.as_bytes())
                    .map(|a| a.to_int())
                    .ok_or_else(|| format!("unknown digest type {w:?}"))?,
            };
            out.push(n);
        }
        Field::KeyFlags => {
            let w = t.word("flags")?;
            let n = match w.strip_prefix("0x").or(w.strip_prefix("0X")) {
                Some(h) => u16::from_str_radix(h, 16).ok(),
                None => w.parse::<u16>().ok(),
            };
            let n = n.ok_or_else(|| format!("flags {w:?} is not a number from 0 to 65535"))?;
            out.extend_from_slice(&n.to_be_bytes());
        }
        Field::Protocol => {
            let w = t.word("protocol")?;
            let n = match w.parse::<u8>() {
                Ok(n) => n,
                Err(_) => KEY_PROTOCOLS
                    .iter()
                    .find(|(_, m)| m.eq_ignore_ascii_case(&w))
                    .map(|(n, _)| *n)
                    .ok_or_else(|| format!("unknown protocol {w:?}"))?,
            };
            out.push(n);
        }
        Field::CertType => {
            let w = t.word("certificate type")?;
            let n = match w.parse::<u16>() {
                Ok(n) => n,
                Err(_) => cert_type(&w).ok_or_else(|| format!("unknown certificate type {w:?}"))?,
            };
            out.extend_from_slice(&n.to_be_bytes());
        }
        Field::Rtype => {
            let w = t.word("type")?;
            let n = super::type_code(w.as_bytes())
                .or_else(|| w.parse().ok())
                .ok_or_else(|| format!("unknown type {w:?}"))?;
            out.extend_from_slice(&n.to_be_bytes());
        }
        Field::Name(w) => out.extend_from_slice(&t.name(w)?),
        Field::CharStr(w) => push_charstr(out, t.charstr(w)?),
        Field::OptCharStr(w) => {
            if !t.is_empty() {
                push_charstr(out, t.charstr(w)?);
            }
        }
        Field::CharStrs => {
            push_charstr(out, t.charstr("text")?);
            while !t.is_empty() {
                push_charstr(out, t.charstr("text")?);
            }
        }
        Field::Text(w) => {
            let tok = t.next(w)?;
            out.extend_from_slice(&super::tokens::octets(&tok.text)?);
        }
        Field::Base64(w) => {
            let b = t.base64_rest(w)?;
            if b.is_empty() {
                return Err(format!("{w} is missing"));
            }
            out.extend_from_slice(&b);
        }
        Field::OptBase64(w) => out.extend_from_slice(&t.base64_rest(w)?),
        Field::Base64OrDash(w) => {
            let text = t.rest_text();
            if text != "-" {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|e| format!("{w}: bad base64: {e}"))?;
                out.extend_from_slice(&b);
            }
        }
        Field::Hex(w) => {
            let b = t.hex_rest(w)?;
            if b.is_empty() {
                return Err(format!("{w} is missing"));
            }
            out.extend_from_slice(&b);
        }
        Field::Nsap => out.extend_from_slice(&nsap(&t.rest_text())?),
        Field::Ipv4(w) => out.extend_from_slice(&t.ipv4(w)?.octets()),
        Field::Ipv6(w) => out.extend_from_slice(&t.ipv6(w)?.octets()),
        Field::Ilnp64(w) => out.extend_from_slice(&ilnp64(&t.word(w)?, w)?),
        Field::Eui(n) => out.extend_from_slice(&eui(&t.word("address")?, n)?),
        Field::Types => {
            let mut b = RtypeBitmap::<Vec<u8>>::builder();
            while !t.is_empty() {
                let w = t.word("type")?;
                let n =
                    super::type_code(w.as_bytes()).ok_or_else(|| format!("unknown type {w:?}"))?;
                b.add(domain::base::iana::Rtype::from_int(n))
                    .map_err(|_| "type bitmap too long".to_string())?;
            }
            out.extend_from_slice(b.finalize().as_slice());
        }
    }
    Ok(())
}

fn push_charstr(out: &mut Vec<u8>, s: Vec<u8>) {
    // At most 255 octets: `Tokens::charstr` checks.
    out.push(s.len() as u8);
    out.extend_from_slice(&s);
}

/// RFC 2535 §3.1.3 KEY protocol mnemonics, as BIND reads them.
const KEY_PROTOCOLS: &[(u8, &str)] = &[
    (0, "NONE"),
    (1, "TLS"),
    (2, "EMAIL"),
    (3, "DNSSEC"),
    (4, "IPSEC"),
    (255, "ALL"),
];

/// RFC 4398 §2.1 mnemonics.
const CERT_TYPES: &[(u16, &str)] = &[
    (1, "PKIX"),
    (2, "SPKI"),
    (3, "PGP"),
    (4, "IPKIX"),
    (5, "ISPKI"),
    (6, "IPGP"),
    (7, "ACPKIX"),
    (8, "IACPKIX"),
    (253, "URI"),
    (254, "OID"),
];

fn cert_type(w: &str) -> Option<u16> {
    CERT_TYPES
        .iter()
        .find(|(_, m)| m.eq_ignore_ascii_case(w))
        .map(|(n, _)| *n)
}

fn nsap(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .or(text.strip_prefix("0X"))
        .ok_or_else(|| format!("NSAP {text:?} does not start with 0x"))?;
    let clean: String = digits.chars().filter(|&c| c != '.').collect();
    let b = hex::decode(&clean).map_err(|e| format!("NSAP {text:?}: bad hex: {e}"))?;
    if b.is_empty() {
        return Err("NSAP address is empty".into());
    }
    Ok(b)
}

fn ilnp64(w: &str, what: &str) -> Result<[u8; 8], String> {
    let bad = || {
        format!("{what} {w:?} is not four groups of one to four hex digits (xxxx:xxxx:xxxx:xxxx)")
    };
    let groups: Vec<&str> = w.split(':').collect();
    if groups.len() != 4 || groups.iter().any(|g| g.is_empty() || g.len() > 4) {
        return Err(bad());
    }
    let mut out = [0u8; 8];
    for (i, g) in groups.iter().enumerate() {
        let v = u16::from_str_radix(g, 16).map_err(|_| bad())?;
        out[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
    }
    Ok(out)
}

fn eui(w: &str, n: usize) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "EUI-{} {w:?} is not {n} pairs of hex digits joined by '-'",
            n * 8
        )
    };
    let pairs: Vec<&str> = w.split('-').collect();
    if pairs.len() != n || pairs.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    hex::decode(pairs.concat()).map_err(|_| bad())
}

/// One field in wire form.
pub struct Piece<'a> {
    pub field: Field,
    pub wire: &'a [u8],
}

/// Walks wire RDATA field by field; None if it does not have the shape.
pub fn walk<'a>(fields: &[Field], rdata: &'a [u8]) -> Option<Vec<Piece<'a>>> {
    let mut pieces = Vec::with_capacity(fields.len());
    let mut rest = rdata;
    for &field in fields {
        let take = |n: usize, rest: &mut &'a [u8]| -> Option<&'a [u8]> {
            let (a, b) = (rest.get(..n)?, rest.get(n..)?);
            *rest = b;
            Some(a)
        };
        let charstr = |rest: &mut &'a [u8]| {
            let len = usize::from(*rest.first()?);
            take(1 + len, rest)
        };
        match field {
            Field::U8(_) | Field::Alg | Field::Digest | Field::Protocol => pieces.push(Piece {
                field,
                wire: take(1, &mut rest)?,
            }),
            Field::U16(_) | Field::CertType | Field::Rtype | Field::KeyFlags => {
                pieces.push(Piece {
                    field,
                    wire: take(2, &mut rest)?,
                })
            }
            Field::U32(_) | Field::Ipv4(_) => pieces.push(Piece {
                field,
                wire: take(4, &mut rest)?,
            }),
            Field::Ipv6(_) => pieces.push(Piece {
                field,
                wire: take(16, &mut rest)?,
            }),
            Field::Ilnp64(_) => pieces.push(Piece {
                field,
                wire: take(8, &mut rest)?,
            }),
            Field::Eui(n) => pieces.push(Piece {
                field,
                wire: take(n, &mut rest)?,
            }),
            Field::Name(_) => {
                let n = name_len(rest)?;
                pieces.push(Piece {
                    field,
                    wire: take(n, &mut rest)?,
                });
            }
            Field::CharStr(_) => pieces.push(Piece {
                field,
                wire: charstr(&mut rest)?,
            }),
            Field::OptCharStr(_) => {
                if !rest.is_empty() {
                    pieces.push(Piece {
                        field,
                        wire: charstr(&mut rest)?,
                    });
                }
            }
            Field::CharStrs => loop {
                pieces.push(Piece {
                    field,
                    wire: charstr(&mut rest)?,
                });
                if rest.is_empty() {
                    break;
                }
            },
            Field::Base64(_) | Field::Hex(_) | Field::Nsap => {
                if rest.is_empty() {
                    return None;
                }
                pieces.push(Piece {
                    field,
                    wire: std::mem::take(&mut rest),
                });
            }
            Field::Text(_) | Field::OptBase64(_) | Field::Base64OrDash(_) => pieces.push(Piece {
                field,
                wire: std::mem::take(&mut rest),
            }),
            Field::Types => {
                if !bitmap_ok(rest) {
                    return None;
                }
                pieces.push(Piece {
                    field,
                    wire: std::mem::take(&mut rest),
                });
            }
        }
    }
    rest.is_empty().then_some(pieces)
}

/// Whether a type bitmap is well formed and canonical (RFC 4034 §4.1.2:
/// windows in increasing order, none empty, no trailing zero octets), as
/// building it again from its types shows.
fn bitmap_ok(w: &[u8]) -> bool {
    let Ok(b) = RtypeBitmap::from_octets(w) else {
        return false;
    };
    let mut again = RtypeBitmap::<Vec<u8>>::builder();
    for t in b.iter() {
        if again.add(t).is_err() {
            return false;
        }
    }
    again.finalize().as_slice() == w
}

/// Writes the pieces in presentation format, separated by spaces.
pub fn show(pieces: &[Piece<'_>]) -> String {
    let mut s = String::new();
    for p in pieces {
        let text = show_one(p);
        if text.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&text);
    }
    s
}

fn show_one(p: &Piece<'_>) -> String {
    let w = p.wire;
    let be = |w: &[u8]| w.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let b64 = |w: &[u8]| base64::engine::general_purpose::STANDARD.encode(w);
    match p.field {
        Field::U8(_)
        | Field::U16(_)
        | Field::U32(_)
        | Field::Alg
        | Field::Digest
        | Field::KeyFlags
        | Field::Protocol
        | Field::CertType => be(w).to_string(),
        Field::Rtype => super::type_name(be(w) as u16),
        Field::Name(_) => crate::zone::present::name_text(w),
        Field::CharStr(_) | Field::OptCharStr(_) | Field::CharStrs => quote(&w[1..]),
        Field::Text(_) => quote(w),
        Field::Base64(_) | Field::OptBase64(_) => b64(w),
        Field::Base64OrDash(_) if w.is_empty() => "-".into(),
        Field::Base64OrDash(_) => b64(w),
        Field::Hex(_) => hex::encode_upper(w),
        Field::Nsap => format!("0x{}", hex::encode(w)),
        Field::Ipv4(_) => Ipv4Addr::from([w[0], w[1], w[2], w[3]]).to_string(),
        Field::Ipv6(_) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(w);
            Ipv6Addr::from(a).to_string()
        }
        Field::Ilnp64(_) => {
            let h = hex::encode(w);
            format!("{}:{}:{}:{}", &h[0..4], &h[4..8], &h[8..12], &h[12..16])
        }
        Field::Eui(_) => w
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join("-"),
        Field::Types => RtypeBitmap::from_octets(w)
            .map(|b| super::types_text(&b))
            .unwrap_or_default(),
    }
}

/// A string in double quotes: `"` and `\` escaped, octets outside
/// printable ASCII as `\DDD`.
pub fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}
