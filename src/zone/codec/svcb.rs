//! SVCB and HTTPS records (RFC 9460) with params `domain` 0.12's reader
//! refuses although BIND reads them: generic keys with a 9 (it checks key
//! names against `a-y`, `0-8` and `-`, so `key9999` fails although RFC
//! 9460 §2.1 allows every `keyNNNNN`), and `alpn` values with escaped
//! commas (`alpn="h1\\,h2,h3"`, RFC 9460 Appendix A.1). Such params (and
//! `mandatory`, which names them) are read here, the rest of the record
//! is read by `domain`'s scanner as usual, and the params go back into the
//! wire RDATA in key order.

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::rdata::ComposeRecordData;
use domain::base::Name;
use domain::zonefile::inplace::{Entry, Zonefile};
use std::str::FromStr;

use super::tokens::{octets, split};

/// A generic key `domain` refuses: `key` and digits, one of them a 9.
fn refused_key(key: &[u8]) -> Option<u16> {
    let digits = key.strip_prefix(b"key")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || !digits.contains(&b'9') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

const MANDATORY: u16 = 0;
const ALPN: u16 = 1;

/// The wire value of a param read here, from its value as written
/// (zone-file escapes decoded).
fn value(key: u16, v: &[u8]) -> Result<Vec<u8>, String> {
    match key {
        ALPN => {
            let mut out = Vec::new();
            for item in value_list(v) {
                let len = u8::try_from(item.len())
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or("an alpn ID is 1 to 255 octets")?;
                out.push(len);
                out.extend_from_slice(&item);
            }
            Ok(out)
        }
        MANDATORY => {
            let mut keys = Vec::new();
            for item in value_list(v) {
                let name = String::from_utf8_lossy(&item).into_owned();
                let k: u16 = refused_key(&item)
                    .or_else(|| {
                        domain::base::iana::SvcParamKey::from_str(&name)
                            .ok()
                            .map(|k| k.to_int())
                    })
                    .ok_or_else(|| format!("mandatory: unknown key {name:?}"))?;
                keys.push(k);
            }
            keys.sort_unstable();
            keys.dedup();
            Ok(keys.iter().flat_map(|k| k.to_be_bytes()).collect())
        }
        _ => Ok(v.to_vec()),
    }
}

/// A comma-separated value list (RFC 9460 Appendix A.1): `\\,` is a comma
/// in an item and `\\\\` a backslash.
fn value_list(v: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                i += 1;
                if let Some(last) = items.last_mut() {
                    last.push(v[i]);
                }
            }
            b',' => items.push(Vec::new()),
            b => {
                if let Some(last) = items.last_mut() {
                    last.push(b);
                }
            }
        }
        i += 1;
    }
    items
}

/// The key of a param token this module reads: a generic key `domain`
/// refuses, or `alpn` with an escape.
fn taken_key(key: &[u8], whole: &[u8]) -> Option<u16> {
    match key {
        b"alpn" if whole.contains(&b'\\') => Some(ALPN),
        b"mandatory" => Some(MANDATORY),
        _ => refused_key(key),
    }
}

/// The RDATA of an SVCB (`rtype` 64) or HTTPS (65) record whose text
/// holds keys `domain` refuses; None when it holds none (the scanner then
/// reads it as it is).
pub fn scan(rtype: u16, text: &[u8], origin: &str) -> Option<Result<Vec<u8>, String>> {
    let toks = split(text).ok()?;
    let mut taken: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut refused = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let key = t.text.split(|&b| b == b'=').next().unwrap_or(&t.text);
        let quoted_next = t.text.ends_with(b"=") && toks.get(i + 1).is_some_and(|n| n.quoted);
        let whole: Vec<u8> = if quoted_next {
            [&t.text[..], &toks[i + 1].text[..]].concat()
        } else {
            t.text.clone()
        };
        match taken_key(key, &whole).filter(|_| !t.quoted && i >= 2) {
            Some(k) => {
                refused |= k != MANDATORY;
                let raw = whole.get(key.len() + 1..).unwrap_or_default();
                match octets(raw).and_then(|v| value(k, &v)) {
                    Ok(v) => taken.push((k, v)),
                    Err(e) => return Some(Err(format!("{}: {e}", String::from_utf8_lossy(key)))),
                }
                if quoted_next {
                    i += 1;
                }
            }
            None if t.quoted => rest.push(format!("\"{}\"", String::from_utf8_lossy(&t.text))),
            None => rest.push(String::from_utf8_lossy(&t.text).into_owned()),
        }
        i += 1;
    }
    if !refused {
        return None;
    }
    let rest: String = rest.iter().map(|t| format!(" {t}")).collect();
    Some(read_rest(rtype, &rest, origin).and_then(|wire| splice(wire, taken)))
}

/// The record without the refused params, read by `domain`.
fn read_rest(rtype: u16, rest: &str, origin: &str) -> Result<Vec<u8>, String> {
    let name = Name::<Bytes>::from_chars(origin.chars()).map_err(|e| format!("origin: {e}"))?;
    // domain 0.12.3 takes a name of 256 octets from text, then panics
    // putting it after `@`.
    if name.as_slice().len() > 255 {
        return Err("origin: longer than 255 octets".into());
    }
    let mut zf = Zonefile::new();
    zf.extend_from_slice(format!("@ 0 IN TYPE{rtype}{rest}\n").as_bytes());
    zf.set_origin(name);
    zf.set_default_class(Class::IN);
    let record = match zf.next_entry() {
        Ok(Some(Entry::Record(r))) => r,
        Ok(_) => return Err("no record".into()),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.splitn(3, ':').nth(2).unwrap_or(&msg).trim().to_string();
            return Err(msg);
        }
    };
    let mut wire = Vec::new();
    record
        .data()
        .compose_rdata(&mut wire)
        .map_err(|_| "RDATA does not fit".to_string())?;
    Ok(wire)
}

/// Adds params to SVCB wire RDATA, keeping keys in ascending order and
/// each at most once (RFC 9460 §2.2).
fn splice(wire: Vec<u8>, add: Vec<(u16, Vec<u8>)>) -> Result<Vec<u8>, String> {
    let bad = || "SVCB RDATA malformed".to_string();
    let target_len = crate::zone::rr::name_len(wire.get(2..).ok_or_else(bad)?).ok_or_else(bad)?;
    let head = 2 + target_len;
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut p = &wire[head..];
    while !p.is_empty() {
        let key = u16::from_be_bytes([p[0], *p.get(1).ok_or_else(bad)?]);
        let len = usize::from(u16::from_be_bytes([
            *p.get(2).ok_or_else(bad)?,
            *p.get(3).ok_or_else(bad)?,
        ]));
        params.push((key, p.get(4..4 + len).ok_or_else(bad)?.to_vec()));
        p = &p[4 + len..];
    }
    params.extend(add);
    params.sort_by_key(|(k, _)| *k);
    if let Some(w) = params.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("key{} appears twice (RFC 9460 §2.2)", w[0].0));
    }
    let mut out = wire[..head].to_vec();
    for (k, v) in params {
        let len = u16::try_from(v.len()).map_err(|_| format!("key{k}: value too long"))?;
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(out)
}

/// The SvcParams of wire RDATA as (key, value); None if malformed.
fn params(rdata: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let target_len = crate::zone::rr::name_len(rdata.get(2..)?)?;
    let mut p = rdata.get(2 + target_len..)?;
    let mut out = Vec::new();
    while !p.is_empty() {
        let key = u16::from_be_bytes([p[0], *p.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
        out.push((key, p.get(4..4 + len)?));
        p = &p[4 + len..];
    }
    Some(out)
}

/// RFC 9460 self-consistency: `no-default-alpn` only beside `alpn`
/// (§7.1.1), and every key `mandatory` lists present, `mandatory` itself
/// not among them (§8).
pub fn check(rdata: &[u8]) -> Result<(), String> {
    let Some(params) = params(rdata) else {
        return Ok(()); // the reader has refused malformed data already
    };
    let has = |k: u16| params.iter().any(|(key, _)| *key == k);
    if has(2) && !has(ALPN) {
        return Err("no-default-alpn without alpn (RFC 9460 §7.1.1)".into());
    }
    if let Some((_, list)) = params.iter().find(|(k, _)| *k == MANDATORY) {
        for k in list
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        {
            if k == MANDATORY || !has(k) {
                return Err(format!(
                    "mandatory lists {}, which is {} (RFC 9460 §8)",
                    key_name(k),
                    if k == MANDATORY { "itself" } else { "absent" }
                ));
            }
        }
    }
    Ok(())
}

/// SVCB or HTTPS wire RDATA in presentation format as BIND 9.18 writes
/// it: the RFC 9460 key names for keys 0 to 6 and `keyNNNNN` for the rest,
/// alpn IDs with commas escaped. None if malformed. (`domain`'s writer
/// spells `no-default-alpn` without dashes and leaves commas in alpn IDs
/// bare, which loaders read otherwise.)
pub fn show(rdata: &[u8]) -> Option<String> {
    let priority = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let target_len = crate::zone::rr::name_len(rdata.get(2..)?)?;
    let mut s = format!(
        "{priority} {}",
        crate::zone::present::name_text(&rdata[2..2 + target_len])
    );
    let mut p = &rdata[2 + target_len..];
    let mut last: Option<u16> = None;
    while !p.is_empty() {
        let key = u16::from_be_bytes([p[0], *p.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
        let v = p.get(4..4 + len)?;
        if last.is_some_and(|l| l >= key) {
            return None;
        }
        last = Some(key);
        s.push(' ');
        s.push_str(&param_text(key, v)?);
        p = &p[4 + len..];
    }
    Some(s)
}

fn key_name(key: u16) -> String {
    match key {
        0 => "mandatory".into(),
        1 => "alpn".into(),
        2 => "no-default-alpn".into(),
        3 => "port".into(),
        4 => "ipv4hint".into(),
        5 => "ech".into(),
        6 => "ipv6hint".into(),
        k => format!("key{k}"),
    }
}

fn param_text(key: u16, v: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let name = key_name(key);
    let list = |size: usize, f: &dyn Fn(&[u8]) -> String| -> Option<String> {
        (!v.is_empty() && v.len().is_multiple_of(size))
            .then(|| v.chunks(size).map(f).collect::<Vec<_>>().join(","))
    };
    let value = match key {
        0 => list(2, &|c| key_name(u16::from_be_bytes([c[0], c[1]])))?,
        1 => {
            let mut items = Vec::new();
            let mut rest = v;
            while !rest.is_empty() {
                let len = usize::from(rest[0]);
                let item = rest.get(1..1 + len).filter(|i| !i.is_empty())?;
                let mut e = Vec::new();
                for &b in item {
                    if b == b',' || b == b'\\' {
                        e.push(b'\\');
                    }
                    e.push(b);
                }
                items.push(e);
                rest = &rest[1 + len..];
            }
            super::fields::quote(&items.join(&b","[..]))
        }
        2 if v.is_empty() => return Some(name),
        3 if v.len() == 2 => u16::from_be_bytes([v[0], v[1]]).to_string(),
        4 => list(4, &|c| {
            std::net::Ipv4Addr::from([c[0], c[1], c[2], c[3]]).to_string()
        })?,
        5 => base64::engine::general_purpose::STANDARD.encode(v),
        6 => list(16, &|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            std::net::Ipv6Addr::from(a).to_string()
        })?,
        k if k <= 6 => return None,
        _ if v.is_empty() => return Some(name),
        _ => super::fields::quote(v),
    };
    Some(format!("{name}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An origin of 256 octets is refused, not a panic in the scanner
    /// (fuzz/seeds/zone_file/svcb-origin-256-octets: relative `$ORIGIN`s
    /// that add up to 256 octets, then an SVCB record with a key9x).
    #[test]
    fn an_origin_longer_than_a_name_is_refused() {
        // What the prescan made of the seed's `$ORIGIN` lines: 256
        // octets, which `from_chars` takes (it miscounts the `\051`).
        let origin = format!(
            "{}.{}@.00000000000012864455563601277992%456789m{}\\051.tldn.b.a.9.8.7~.6.5.{}8.b.d.0.1.0.0.2.ip6.e.",
            "1234567890".repeat(6) + "123",
            "1236567890".to_string() + &"1234567890".repeat(3) + "123456789",
            "1234567890123456789012",
            "0.".repeat(17),
        );
        let name = Name::<Bytes>::from_chars(origin.chars()).unwrap();
        assert_eq!(name.as_slice().len(), 256);
        let e = scan(64, b"1 . key99=x", &origin).unwrap().unwrap_err();
        assert!(e.contains("longer than 255"), "{e}");
        let text = include_bytes!("../../../fuzz/seeds/zone_file/svcb-origin-256-octets");
        let parsed = crate::zone::parse::parse_text(
            text,
            "t.zone",
            &crate::zone::ZoneName::root(),
            crate::zone::parse::Limits::DEFAULT,
        );
        assert!(parsed.is_err());
    }

    /// RFC 9460 Appendix D.2, figure 5 ("key667=hello" as key9999): the
    /// generic key goes in key order among the others, its value as
    /// written; quoted and unquoted values read alike.
    #[test]
    fn generic_keys_with_a_nine_are_read() {
        let a = scan(64, b"1 foo.example.com. key9999=hello port=53", "example.")
            .unwrap()
            .unwrap();
        let b = scan(
            64,
            b"1 foo.example.com. port=53 key9999=\"hello\"",
            "example.",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a, b);
        let mut want = vec![0, 1];
        want.extend_from_slice(b"\x03foo\x07example\x03com\x00");
        want.extend_from_slice(&[0, 3, 0, 2, 0, 53]);
        want.extend_from_slice(&[0x27, 0x0f, 0, 5]);
        want.extend_from_slice(b"hello");
        assert_eq!(a, want);
        assert!(scan(64, b"1 . port=53", "example.").is_none());
        let dup = scan(64, b"1 . key9=a key9=b", "example.")
            .unwrap()
            .unwrap_err();
        assert!(dup.contains("key9 appears twice"), "{dup}");
        let e = scan(65, b"1 . key19=x port=nope", "example.")
            .unwrap()
            .unwrap_err();
        assert!(!e.is_empty());
    }

    /// RFC 9460 Appendix D.2, figure 10 (escaped commas in alpn), with
    /// `mandatory` naming it.
    #[test]
    fn alpn_with_escaped_commas_and_mandatory_are_read() {
        let w = scan(
            64,
            br#"16 foo.example.org. mandatory=alpn,port alpn="f\\\\oo\\,bar,h2" port=53"#,
            "example.",
        )
        .unwrap()
        .unwrap();
        let mut want = vec![0, 16];
        want.extend_from_slice(b"\x03foo\x07example\x03org\x00");
        want.extend_from_slice(&[0, 0, 0, 4, 0, 1, 0, 3]);
        want.extend_from_slice(&[0, 1, 0, 12, 8]);
        want.extend_from_slice(b"f\\oo,bar\x02h2");
        want.extend_from_slice(&[0, 3, 0, 2, 0, 53]);
        assert_eq!(hex::encode(&w), hex::encode(&want));
        assert_eq!(
            show(&w).unwrap(),
            r#"16 foo.example.org. mandatory=alpn,port alpn="f\\\\oo\\,bar,h2" port=53"#
        );
        // Without an escape, `domain` reads the record.
        assert!(scan(64, b"1 . mandatory=alpn alpn=h2,h3", "example.").is_none());
    }
}
