//! Presentation format output (RFC 1035 §5.1) of a signed zone, in
//! canonical order, one record a line, absolute names, each type in the
//! form BIND reads: `domain`'s writer for the types it has, except where
//! BIND would read that otherwise (names with quotes or parentheses,
//! SVCB/HTTPS, IPSECKEY, type names in NSEC bitmaps), and
//! [`super::codec`] for the types `domain` lacks. ldns and Knot read every
//! type they know in this form (docs/rr-types.md lists the ones they lack).

use std::io::{self, Write};

use domain::base::iana::Rtype;
use domain::base::name::{ParsedName, ToName};
use domain::base::rdata::ParseRecordData;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::rdata::{Nsec, Nsec3, ZoneRecordData};
use octseq::Parser;

use super::codec;
use super::model::{type_name, Node, RrSet};
use super::rr::rtype;

/// Writes one record line.
pub fn write_record(
    out: &mut impl Write,
    owner: &str,
    ttl: u32,
    t: u16,
    rdata: &[u8],
) -> io::Result<()> {
    write!(out, "{owner}\t{ttl}\tIN\t{}\t", type_name(t))?;
    write_rdata(out, t, rdata)?;
    out.write_all(b"\n")
}

/// RDATA in presentation format; RFC 3597 generic form when the type is
/// unknown or the RDATA does not parse as its type.
pub fn write_rdata(out: &mut impl Write, t: u16, rdata: &[u8]) -> io::Result<()> {
    if t == rtype::RRSIG {
        if let Some(()) = write_rrsig(out, rdata)? {
            return Ok(());
        }
    }
    let own = match t {
        rtype::NSEC | rtype::NSEC3 => chain_text(t, rdata),
        64 | 65 => codec::svcb::show(rdata),
        45 => codec::special::ipseckey_show(rdata),
        _ => codec::codec(t).and_then(|c| c.show(rdata)),
    };
    if let Some(text) = own {
        return out.write_all(text.as_bytes());
    }
    let mut parser = Parser::from_ref(rdata);
    let parsed =
        ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(Rtype::from_int(t), &mut parser);
    match parsed {
        Ok(Some(data))
            if parser.remaining() == 0
                && !matches!(data, ZoneRecordData::Unknown(_))
                && !names_need_escapes(t, rdata) =>
        {
            // The zone file formatter, not Display: Display leaves the
            // trailing dot off some RDATA names (SRV, IPSECKEY), which a
            // loader would then read as relative names.
            write!(out, "{}", data.display_zonefile(DisplayKind::Simple))
        }
        _ => {
            write!(out, "\\# {}", rdata.len())?;
            if !rdata.is_empty() {
                write!(out, " {}", hex::encode(rdata))?;
            }
            Ok(())
        }
    }
}

/// Whether `domain`'s writer could leave a name in this RDATA unreadable:
/// it does not escape `"`, `(`, `)`, `;`, `@` or `$` in names. Such RDATA
/// is written in RFC 3597 form instead, which every loader reads (names
/// with these octets are rare).
fn names_need_escapes(t: u16, rdata: &[u8]) -> bool {
    let special = |name: &[u8]| name.iter().any(|b| b"\"();@$".contains(b));
    let mut at = match t {
        2..=5 | 7..=9 | 12 | 39 | 6 | 14 | 17 => 0,
        15 => 2,
        33 => 6,
        35 => {
            // Order, preference, then flags, services and regexp strings.
            let mut i = 4;
            for _ in 0..3 {
                i += 1 + usize::from(*rdata.get(i).unwrap_or(&0));
            }
            i
        }
        _ => return false,
    };
    let names = if matches!(t, 6 | 14 | 17) { 2 } else { 1 };
    for _ in 0..names {
        let Some(len) = rdata.get(at..).and_then(super::rr::name_len) else {
            return false;
        };
        if special(&rdata[at..at + len]) {
            return true;
        }
        at += len;
    }
    false
}

/// NSEC and NSEC3 RDATA with the type bitmap in the mnemonics BIND reads
/// (`domain` spells some otherwise, e.g. NSAPPTR). None if malformed.
fn chain_text(t: u16, rdata: &[u8]) -> Option<String> {
    let mut parser = Parser::from_ref(rdata);
    let text = if t == rtype::NSEC {
        let n = Nsec::<&[u8], ParsedName<&[u8]>>::parse(&mut parser).ok()?;
        let next = n.next_name().to_name::<Vec<u8>>();
        format!(
            "{} {}",
            name_text(next.as_slice()),
            codec::types_text(n.types())
        )
    } else {
        let n = Nsec3::<&[u8]>::parse(&mut parser).ok()?;
        format!(
            "{} {} {} {} {} {}",
            n.hash_algorithm().to_int(),
            n.flags(),
            n.iterations(),
            n.salt(),
            n.next_owner(),
            codec::types_text(n.types())
        )
    };
    (parser.remaining() == 0).then_some(text.trim_end().to_string())
}

/// RRSIG RDATA with the times as YYYYMMDDHHMMSS (RFC 4034 §3.2), the
/// form operators read and every loader takes. None if malformed.
fn write_rrsig(out: &mut impl Write, rdata: &[u8]) -> io::Result<Option<()>> {
    let Some(sig) = super::rrsig::Rrsig::parse(rdata) else {
        return Ok(None);
    };
    let time = |v: u32| crate::clock::Timestamp::from_unix(i64::from(v)).compact();
    use base64::Engine as _;
    write!(
        out,
        "{} {} {} {} {} {} {} {} {}",
        type_name(sig.type_covered()),
        sig.algorithm(),
        sig.labels(),
        sig.original_ttl(),
        time(sig.expiration()),
        time(sig.inception()),
        sig.key_tag(),
        name_text(sig.signer()),
        base64::engine::general_purpose::STANDARD.encode(sig.signature())
    )?;
    Ok(Some(()))
}

/// A wire name in presentation format with the trailing dot, escaped as
/// BIND writes names: `.`, `\\`, `"`, `(`, `)`, `;`, `@` and `$` with a
/// backslash, other octets outside `!`..`~` as `\\DDD`, so that every
/// loader reads the name back (`domain` leaves `"`, `(`, `;` bare).
pub fn name_text(wire: &[u8]) -> String {
    if super::rr::name_len(wire) != Some(wire.len()) {
        return hex::encode(wire);
    }
    if wire == [0] {
        return ".".into();
    }
    let mut out = String::with_capacity(wire.len() + 1);
    let mut i = 0;
    while wire[i] != 0 {
        let len = usize::from(wire[i]);
        for &b in &wire[i + 1..i + 1 + len] {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => {
                    use std::fmt::Write as _;
                    let _ = write!(out, "\\{b:03}");
                }
            }
        }
        out.push('.');
        i += 1 + len;
    }
    out
}

/// Called with each RRset that has signatures, and its signatures.
pub type OnSigned<'s, 'a> = &'s mut dyn FnMut(&'a RrSet, &[&'a [u8]]) -> io::Result<()>;

/// Writes a node: each RRset followed by its signatures, those it carries
/// and the `extra` ones given as (RRset index, RRSIG RDATA), in canonical
/// order; each RRset with signatures, and its signatures as written, also
/// go to `signed`.
pub fn write_node_with<'a>(
    out: &mut impl Write,
    node: &'a Node,
    extra: &'a [(usize, Vec<u8>)],
    signed: OnSigned<'_, 'a>,
) -> io::Result<()> {
    let owner = name_text(&node.owner);
    for (si, set) in node.rrsets.iter().enumerate() {
        for rdata in set.rdatas.iter() {
            write_record(out, &owner, set.ttl, set.rtype, rdata)?;
        }
        let sigs = rrset_sigs(set, si, extra);
        for sig in &sigs {
            write_record(out, &owner, set.ttl, rtype::RRSIG, sig)?;
        }
        if !sigs.is_empty() {
            signed(set, &sigs)?;
        }
    }
    Ok(())
}

/// The RRSIG RDATA of the node's RRset `si`: its own and those of `extra`
/// (RRset index, RDATA) for it, in the order they are written.
fn rrset_sigs<'a>(set: &'a RrSet, si: usize, extra: &'a [(usize, Vec<u8>)]) -> Vec<&'a [u8]> {
    let mut sigs: Vec<&[u8]> = set.rrsigs.iter().map(Vec::as_slice).collect();
    sigs.extend(extra.iter().filter(|e| e.0 == si).map(|e| e.1.as_slice()));
    sigs.sort_unstable();
    sigs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names with octets that mean something in a zone file come out
    /// escaped and read back to the same wire; `domain`'s writer, which
    /// leaves them bare, is not used for such RDATA.
    #[test]
    fn names_are_escaped_so_they_read_back() {
        let wire = b"\x08a\"b(c);d\x03$@.\x04x y\\\x00";
        assert_eq!(name_text(wire), "a\\\"b\\(c\\)\\;d.\\$\\@\\..x\\032y\\\\.");
        assert_eq!(name_text(b"\x00"), ".");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        let mut mx = vec![0u8, 10];
        mx.extend_from_slice(wire);
        let mut text = format!("{} A 192.0.2.1\n{} MX ", name_text(wire), name_text(wire));
        let mut rdata = Vec::new();
        write_rdata(&mut rdata, 15, &mx).unwrap();
        text.push_str(&String::from_utf8(rdata).unwrap());
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let r = super::super::parse::parse_file(&path, &".".parse().unwrap()).unwrap();
        assert_eq!(r.records[0].owner, wire);
        assert_eq!(r.records[1].rdata, mx);
    }
}
