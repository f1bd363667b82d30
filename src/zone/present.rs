//! Presentation format output (RFC 1035 §5.1) of a signed zone, in
//! canonical order, one record a line, absolute names: loadable by BIND,
//! Knot and ldns.

use std::io::{self, Write};

use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::base::rdata::ParseRecordData;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::Name;
use domain::rdata::ZoneRecordData;
use octseq::Parser;

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
    let mut parser = Parser::from_ref(rdata);
    let parsed =
        ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(Rtype::from_int(t), &mut parser);
    match parsed {
        Ok(Some(data))
            if parser.remaining() == 0 && !matches!(data, ZoneRecordData::Unknown(_)) =>
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

/// A wire name in presentation format with the trailing dot.
pub fn name_text(wire: &[u8]) -> String {
    match Name::from_slice(wire) {
        Ok(n) => n.fmt_with_dot().to_string(),
        Err(_) => hex::encode(wire),
    }
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
