//! The types whose presentation format is no plain list of fields: LOC
//! (RFC 1876), APL (RFC 3123), HIP (RFC 8005), AMTRELAY (RFC 8777), WKS
//! (RFC 1035 §3.4.2), A6 (RFC 2874) and ATMA (ATM Forum AF-DANS-0152).
//! Each has a reader from tokens and a writer from wire form; the writer
//! returns None for wire data that is not valid for the type.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::tokens::Tokens;
use crate::zone::present::name_text;
use crate::zone::rr::name_len;

// ---- LOC ----

/// Offsets of RFC 1876: the equator and prime meridian are 2^31
/// thousandths of an arc second, sea level is 100 000 m below zero.
const LOC_EQUATOR: i64 = 1 << 31;
const LOC_SEA_LEVEL_CM: i64 = 10_000_000;

pub fn loc_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let lat = loc_angle(t, 90, ('N', 'S'), "latitude")?;
    let lon = loc_angle(t, 180, ('E', 'W'), "longitude")?;
    let alt_text = t.word("altitude")?;
    let alt = fixed(alt_text.trim_end_matches('m'), 2)
        .filter(|a| (-10_000_000..=4_284_967_295).contains(a))
        .ok_or_else(|| {
            format!("altitude {alt_text:?} is not meters from -100000.00 to 42849672.95")
        })?;
    let mut sizes = [0x12u8, 0x16, 0x13]; // 1m, 10000m, 10m (RFC 1876 defaults)
    for (i, what) in ["size", "horizontal precision", "vertical precision"]
        .into_iter()
        .enumerate()
    {
        if t.is_empty() {
            break;
        }
        sizes[i] = loc_size(&t.word(what)?, what)?;
    }
    t.end()?;
    let mut out = vec![0, sizes[0], sizes[1], sizes[2]];
    out.extend_from_slice(&((LOC_EQUATOR + lat) as u32).to_be_bytes());
    out.extend_from_slice(&((LOC_EQUATOR + lon) as u32).to_be_bytes());
    out.extend_from_slice(&((LOC_SEA_LEVEL_CM + alt) as u32).to_be_bytes());
    Ok(out)
}

/// `d [m [s]] H` in thousandths of an arc second, negative to the south
/// or west.
fn loc_angle(t: &mut Tokens, max_deg: i64, hemi: (char, char), what: &str) -> Result<i64, String> {
    let deg = t.number(&format!("{what} degrees"), max_deg as u64)? as i64;
    let mut parts = [0i64; 2]; // minutes, thousandths of seconds
    let mut word = t.word(&format!("{what} hemisphere"))?;
    for (i, unit) in ["minutes", "seconds"].into_iter().enumerate() {
        if !word.starts_with(|c: char| c.is_ascii_digit()) {
            break;
        }
        let v = if i == 0 {
            word.parse::<i64>().ok().filter(|m| *m < 60)
        } else {
            fixed(&word, 3).filter(|s| (0..60_000).contains(s))
        };
        parts[i] = v.ok_or_else(|| format!("{what} {unit} {word:?} out of range"))?;
        word = t.word(&format!("{what} hemisphere"))?;
    }
    // BIND takes the hemisphere letters in capitals only.
    let sign = match word.chars().next() {
        Some(c) if c == hemi.0 && word.len() == 1 => 1,
        Some(c) if c == hemi.1 && word.len() == 1 => -1,
        _ => {
            return Err(format!(
                "{what}: expected {} or {}, found {word:?}",
                hemi.0, hemi.1
            ))
        }
    };
    let v = (deg * 3600 + parts[0] * 60) * 1000 + parts[1];
    if v > max_deg * 3_600_000 {
        return Err(format!("{what} is more than {max_deg} degrees"));
    }
    Ok(sign * v)
}

/// `12.34` with at most `decimals` digits after the point, scaled by
/// 10^decimals; a leading `-` is allowed.
fn fixed(s: &str, decimals: u32) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > decimals as usize
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() > 12
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..decimals as usize {
        f *= 10;
    }
    let v = int * 10i64.pow(decimals) + f;
    Some(if neg { -v } else { v })
}

/// A size or precision in meters as RFC 1876's mantissa and exponent of
/// centimeters (truncated to one significant digit, as BIND does).
fn loc_size(w: &str, what: &str) -> Result<u8, String> {
    let cm = fixed(w.trim_end_matches('m'), 2)
        .filter(|c| (0..=9_000_000_000).contains(c))
        .ok_or_else(|| format!("{what} {w:?} is not meters from 0 to 90000000.00"))?;
    let mut exp = 0u32;
    while exp < 9 && cm >= 10i64.pow(exp + 1) {
        exp += 1;
    }
    let man = cm / 10i64.pow(exp);
    Ok(((man as u8) << 4) | exp as u8)
}

pub fn loc_show(w: &[u8]) -> Option<String> {
    if w.len() != 16 || w[0] != 0 {
        return None;
    }
    let u32_at = |i: usize| i64::from(u32::from_be_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]));
    let size = |b: u8| -> Option<String> {
        let (man, exp) = (u64::from(b >> 4), u32::from(b & 0xf));
        // Zero with an exponent would be written "0m" and read back as 0x00:
        // such data is written in RFC 3597 form instead.
        if man > 9 || exp > 9 || (man == 0 && exp != 0) {
            return None;
        }
        Some(if exp >= 2 {
            format!("{}m", man * 10u64.pow(exp - 2))
        } else {
            format!("0.{:02}m", man * 10u64.pow(exp))
        })
    };
    let angle = |v: i64, max: i64, hemi: (char, char)| -> Option<String> {
        let rel = v - LOC_EQUATOR;
        if rel.abs() > max * 3_600_000 {
            return None;
        }
        let a = rel.abs();
        let h = if rel < 0 { hemi.1 } else { hemi.0 };
        Some(format!(
            "{} {} {}.{:03} {h}",
            a / 3_600_000,
            a / 60_000 % 60,
            a / 1000 % 60,
            a % 1000
        ))
    };
    let alt = u32_at(12) - LOC_SEA_LEVEL_CM;
    let sign = if alt < 0 { "-" } else { "" };
    Some(format!(
        "{} {} {sign}{}.{:02}m {} {} {}",
        angle(u32_at(4), 90, ('N', 'S'))?,
        angle(u32_at(8), 180, ('E', 'W'))?,
        alt.abs() / 100,
        alt.abs() % 100,
        size(w[1])?,
        size(w[2])?,
        size(w[3])?
    ))
}

// ---- APL ----

pub fn apl_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while !t.is_empty() {
        let item = t.word("APL item")?;
        let (neg, rest) = match item.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, item.as_str()),
        };
        let bad = |why: &str| {
            format!("APL item {item:?}: {why} (expected [!]1:192.0.2.0/24 or [!]2:2001:db8::/32)")
        };
        let (family, rest) = rest
            .split_once(':')
            .ok_or_else(|| bad("no address family"))?;
        let (addr, prefix) = rest
            .split_once('/')
            .ok_or_else(|| bad("no prefix length"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        let (family, octets): (u16, Vec<u8>) = match family {
            "1" => {
                let a: Ipv4Addr = addr.parse().map_err(|_| bad("bad IPv4 address"))?;
                (1, a.octets().to_vec())
            }
            "2" => {
                let a: Ipv6Addr = addr.parse().map_err(|_| bad("bad IPv6 address"))?;
                (2, a.octets().to_vec())
            }
            _ => return Err(bad("address family must be 1 (IPv4) or 2 (IPv6)")),
        };
        if usize::from(prefix) > octets.len() * 8 {
            return Err(bad("prefix longer than the address"));
        }
        // The address without trailing zero octets (RFC 3123 §4); bits
        // past the prefix stay as written, as BIND keeps them.
        let mut len = octets.len();
        while len > 0 && octets[len - 1] == 0 {
            len -= 1;
        }
        out.extend_from_slice(&family.to_be_bytes());
        out.push(prefix);
        out.push(if neg { 0x80 } else { 0 } | len as u8);
        out.extend_from_slice(&octets[..len]);
    }
    Ok(out)
}

pub fn apl_show(mut w: &[u8]) -> Option<String> {
    let mut items = Vec::new();
    while !w.is_empty() {
        let family = u16::from_be_bytes([*w.first()?, *w.get(1)?]);
        let prefix = *w.get(2)?;
        let (neg, len) = (w.get(3)? & 0x80 != 0, usize::from(w.get(3)? & 0x7f));
        let afd = w.get(4..4 + len)?;
        if afd.last() == Some(&0) {
            return None;
        }
        let addr = match family {
            1 if len <= 4 && prefix <= 32 => {
                let mut a = [0u8; 4];
                a[..len].copy_from_slice(afd);
                Ipv4Addr::from(a).to_string()
            }
            2 if len <= 16 && prefix <= 128 => {
                let mut a = [0u8; 16];
                a[..len].copy_from_slice(afd);
                Ipv6Addr::from(a).to_string()
            }
            _ => return None,
        };
        items.push(format!(
            "{}{family}:{addr}/{prefix}",
            if neg { "!" } else { "" }
        ));
        w = &w[4 + len..];
    }
    Some(items.join(" "))
}

// ---- HIP ----

pub fn hip_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let alg = t.u8("public key algorithm")?;
    let hit_text = t.word("HIT")?;
    let hit = hex::decode(&hit_text).map_err(|e| format!("HIT {hit_text:?}: bad hex: {e}"))?;
    let pk_text = t.word("public key")?;
    let pk = base64::engine::general_purpose::STANDARD
        .decode(pk_text.as_bytes())
        .map_err(|e| format!("public key: bad base64: {e}"))?;
    let hit_len = u8::try_from(hit.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or("the HIT must be 1 to 255 octets")?;
    let pk_len = u16::try_from(pk.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or("the public key must be 1 to 65535 octets")?;
    let mut out = vec![hit_len, alg];
    out.extend_from_slice(&pk_len.to_be_bytes());
    out.extend_from_slice(&hit);
    out.extend_from_slice(&pk);
    while !t.is_empty() {
        out.extend_from_slice(&t.name("rendezvous server")?);
    }
    Ok(out)
}

pub fn hip_show(w: &[u8]) -> Option<String> {
    let hit_len = usize::from(*w.first()?);
    let alg = *w.get(1)?;
    let pk_len = usize::from(u16::from_be_bytes([*w.get(2)?, *w.get(3)?]));
    let hit = w.get(4..4 + hit_len)?;
    let pk = w.get(4 + hit_len..4 + hit_len + pk_len)?;
    if hit.is_empty() || pk.is_empty() {
        return None;
    }
    let mut s = format!(
        "{alg} {} {}",
        hex::encode_upper(hit),
        base64::engine::general_purpose::STANDARD.encode(pk)
    );
    for name in names(&w[4 + hit_len + pk_len..])? {
        s.push(' ');
        s.push_str(&name_text(name));
    }
    Some(s)
}

/// Consecutive uncompressed names filling `w`.
fn names(mut w: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !w.is_empty() {
        let n = name_len(w)?;
        out.push(&w[..n]);
        w = &w[n..];
    }
    Some(out)
}

// ---- AMTRELAY ----

pub fn amtrelay_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let precedence = t.u8("precedence")?;
    let d = t.number("discovery optional (D-bit)", 1)? as u8;
    let kind = t.number("relay type", 3)? as u8;
    let mut out = vec![precedence, d << 7 | kind];
    match kind {
        0 => {
            let w = t.word("relay")?;
            if w != "." {
                return Err(format!("relay type 0 has no relay: write \".\", not {w:?}"));
            }
        }
        1 => out.extend_from_slice(&t.ipv4("relay")?.octets()),
        2 => out.extend_from_slice(&t.ipv6("relay")?.octets()),
        _ => out.extend_from_slice(&t.name("relay")?),
    }
    t.end()?;
    Ok(out)
}

pub fn amtrelay_show(w: &[u8]) -> Option<String> {
    let (precedence, db) = (*w.first()?, *w.get(1)?);
    let (d, kind) = (db >> 7, db & 0x7f);
    let relay = w.get(2..)?;
    let relay = match (kind, relay.len()) {
        (0, 0) => ".".to_string(),
        (1, 4) => Ipv4Addr::from([relay[0], relay[1], relay[2], relay[3]]).to_string(),
        (2, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(relay);
            Ipv6Addr::from(a).to_string()
        }
        (3, n) if name_len(relay) == Some(n) => name_text(relay),
        _ => return None,
    };
    Some(format!("{precedence} {d} {kind} {relay}"))
}

// ---- WKS ----

pub fn wks_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let addr = t.ipv4("address")?;
    let proto_word = t.word("protocol")?;
    let proto: u8 = match proto_word.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        w => w
            .parse()
            .map_err(|_| format!("protocol {proto_word:?}: write a number, tcp or udp"))?,
    };
    let mut bitmap: Vec<u8> = Vec::new();
    while !t.is_empty() {
        let w = t.word("port")?;
        let port = match w.parse::<u16>() {
            Ok(p) => p,
            Err(_) => service_port(&w, proto).ok_or_else(|| {
                format!("port {w:?} is no number from 0 to 65535 or known service")
            })?,
        };
        let (byte, bit) = (usize::from(port / 8), port % 8);
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        bitmap[byte] |= 0x80 >> bit;
    }
    let mut out = addr.octets().to_vec();
    out.push(proto);
    out.extend_from_slice(&bitmap);
    Ok(out)
}

/// A service name's port from /etc/services, as BIND looks it up.
fn service_port(name: &str, proto: u8) -> Option<u16> {
    let proto = match proto {
        6 => "tcp",
        17 => "udp",
        _ => return None,
    };
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let service = words.next()?;
        let (port, p) = words.next()?.split_once('/')?;
        let aliases: Vec<&str> = words.collect();
        let named = service.eq_ignore_ascii_case(name)
            || aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
        (named && p == proto).then(|| port.parse().ok()).flatten()
    })
}

pub fn wks_show(w: &[u8]) -> Option<String> {
    let addr = Ipv4Addr::from([*w.first()?, *w.get(1)?, *w.get(2)?, *w.get(3)?]);
    let proto = *w.get(4)?;
    let bitmap = w.get(5..)?;
    // A trailing zero octet would not come back from the port list.
    if bitmap.len() > 8192 || bitmap.last() == Some(&0) {
        return None;
    }
    let mut s = format!("{addr} {proto}");
    for (i, &b) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if b & (0x80 >> bit) != 0 {
                s.push_str(&format!(" {}", i * 8 + bit));
            }
        }
    }
    Some(s)
}

// ---- A6 ----

pub fn a6_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let plen = t.number("prefix length", 128)? as u8;
    let mut out = vec![plen];
    if plen < 128 {
        let addr = t.ipv6("address suffix")?.octets();
        let first = usize::from(plen / 8);
        let mut suffix = addr[first..].to_vec();
        if !plen.is_multiple_of(8) {
            suffix[0] &= 0xff >> (plen % 8);
        }
        out.extend_from_slice(&suffix);
    }
    if plen > 0 {
        out.extend_from_slice(&t.name("prefix name")?);
    }
    t.end()?;
    Ok(out)
}

/// The A6 RDATA's parts: prefix length, suffix octets, prefix name.
fn a6_parts(w: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let plen = *w.first()?;
    if plen > 128 {
        return None;
    }
    let octets = usize::from(128 - plen).div_ceil(8);
    let suffix = w.get(1..1 + octets)?;
    if plen % 8 != 0 && suffix[0] & !(0xff >> (plen % 8)) != 0 {
        return None;
    }
    let name = &w[1 + octets..];
    let ok = if plen == 0 {
        name.is_empty()
    } else {
        name_len(name) == Some(name.len())
    };
    ok.then_some((plen, suffix, name))
}

pub fn a6_show(w: &[u8]) -> Option<String> {
    let (plen, suffix, name) = a6_parts(w)?;
    let mut s = plen.to_string();
    if plen < 128 {
        let mut a = [0u8; 16];
        a[16 - suffix.len()..].copy_from_slice(suffix);
        s.push_str(&format!(" {}", Ipv6Addr::from(a)));
    }
    if plen > 0 {
        s.push_str(&format!(" {}", name_text(name)));
    }
    Some(s)
}

/// A6's prefix name is lowercased in canonical form (RFC 4034 §6.2).
pub fn a6_canonical(w: &[u8]) -> Option<Vec<u8>> {
    let (_, suffix, _) = a6_parts(w)?;
    let mut out = w.to_vec();
    out[1 + suffix.len()..].make_ascii_lowercase();
    Some(out)
}

// ---- ATMA ----

pub fn atma_scan(t: &mut Tokens) -> Result<Vec<u8>, String> {
    let w = t.word("ATM address")?;
    t.end()?;
    if let Some(digits) = w.strip_prefix('+') {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("E.164 ATM address {w:?} must be + and digits"));
        }
        let mut out = vec![1];
        out.extend_from_slice(digits.as_bytes());
        Ok(out)
    } else {
        let clean: String = w.chars().filter(|&c| c != '.').collect();
        let b = hex::decode(&clean).map_err(|e| format!("ATM address {w:?}: bad hex: {e}"))?;
        if b.is_empty() {
            return Err("ATM address is empty".into());
        }
        let mut out = vec![0];
        out.extend_from_slice(&b);
        Ok(out)
    }
}

pub fn atma_show(w: &[u8]) -> Option<String> {
    let data = w.get(1..).filter(|d| !d.is_empty())?;
    match w[0] {
        0 => Some(hex::encode(data)),
        1 if data.iter().all(u8::is_ascii_digit) => {
            Some(format!("+{}", String::from_utf8_lossy(data)))
        }
        _ => None,
    }
}

// ---- IPSECKEY (written only: `domain` reads it) ----

/// IPSECKEY (RFC 4025) as BIND writes it. `domain` writes no `.` for a
/// gateway of type 0, which loaders (itself too) then refuse.
pub fn ipseckey_show(w: &[u8]) -> Option<String> {
    let (precedence, kind, alg) = (*w.first()?, *w.get(1)?, *w.get(2)?);
    let rest = w.get(3..)?;
    let (gateway, used) = match kind {
        0 => (".".to_string(), 0),
        1 => (
            Ipv4Addr::from([*rest.first()?, *rest.get(1)?, *rest.get(2)?, *rest.get(3)?])
                .to_string(),
            4,
        ),
        2 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rest.get(..16)?);
            (Ipv6Addr::from(a).to_string(), 16)
        }
        3 => {
            let n = name_len(rest)?;
            (name_text(&rest[..n]), n)
        }
        _ => return None,
    };
    let key = &rest[used..];
    let mut s = format!("{precedence} {kind} {alg} {gateway}");
    if !key.is_empty() {
        s.push(' ');
        s.push_str(&base64::engine::general_purpose::STANDARD.encode(key));
    }
    Some(s)
}
