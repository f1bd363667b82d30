//! Presentation format ↔ wire RDATA for the record types NLnet Labs'
//! `domain` has no record data for, and the type mnemonics BIND 9.18
//! reads.
//!
//! `domain` scans the zone file and owns every type it knows (A, MX, SOA,
//! SVCB, the DNSSEC types ...). For the rest (LOC, APL, CERT, URI, SPF and
//! some forty more that BIND loads) this module reads the RDATA tokens of a
//! record into wire form, which the zone reader hands to `domain` in RFC
//! 3597 form (`TYPEnnn \# LEN HEX`); writes wire RDATA back in the type's
//! presentation format; and checks RDATA given in RFC 3597 form, putting
//! it into canonical form (RFC 4034 §6.2 as amended by RFC 6840 §5.1:
//! names lowercased only in AFSDB, RT, PX, KX and A6 among these types,
//! and in NSAP-PTR, which BIND lowercases too). Records are kept and
//! written in canonical form, so NSAP-PTR names are written lowercased and
//! validators that differ on it compute the same digest.
//!
//! Most types are a list of fields of a few shapes ([`fields`]); the rest
//! have a reader and writer of their own ([`special`]).

pub mod fields;
pub mod special;
pub mod svcb;
pub mod tokens;

use std::collections::HashMap;
use std::sync::LazyLock;

use fields::Field::{self, *};

/// How a type's RDATA is read and written.
enum Shape {
    Fields(&'static [Field]),
    Special {
        scan: fn(&mut tokens::Tokens) -> Result<Vec<u8>, String>,
        show: fn(&[u8]) -> Option<String>,
        /// The canonical form of valid wire RDATA; None if not valid.
        canonical: fn(&[u8]) -> Option<Vec<u8>>,
    },
}

/// One type this module reads and writes.
pub struct Codec {
    pub code: u16,
    shape: Shape,
    /// Whether names in the RDATA are lowercased in canonical form.
    lower: bool,
}

const fn f(code: u16, fields: &'static [Field]) -> Codec {
    Codec {
        code,
        shape: Shape::Fields(fields),
        lower: false,
    }
}

/// A field list whose names are lowercased in canonical form.
const fn lower(code: u16, fields: &'static [Field]) -> Codec {
    Codec {
        code,
        shape: Shape::Fields(fields),
        lower: true,
    }
}

const fn special(
    code: u16,
    scan: fn(&mut tokens::Tokens) -> Result<Vec<u8>, String>,
    show: fn(&[u8]) -> Option<String>,
    canonical: fn(&[u8]) -> Option<Vec<u8>>,
) -> Codec {
    Codec {
        code,
        shape: Shape::Special {
            scan,
            show,
            canonical,
        },
        lower: false,
    }
}

/// Valid wire RDATA that needs no change for canonical form.
fn as_is(show: fn(&[u8]) -> Option<String>) -> impl Fn(&[u8]) -> Option<Vec<u8>> {
    move |w| show(w).map(|_| w.to_vec())
}

const DS_SHAPE: &[Field] = &[U16("key tag"), Alg, Digest, Hex("digest")];
const KEY_SHAPE: &[Field] = &[KeyFlags, Protocol, Alg, OptBase64("public key")];
const TEXT_SHAPE: &[Field] = &[CharStrs];

/// The types, in type order (searched by [`codec`]).
static CODECS: &[Codec] = &[
    special(11, special::wks_scan, special::wks_show, |w| {
        as_is(special::wks_show)(w)
    }),
    lower(18, &[U16("subtype"), Name("hostname")]), // AFSDB, RFC 1183
    f(19, &[CharStr("PSDN address")]),              // X25, RFC 1183
    f(20, &[CharStr("ISDN address"), OptCharStr("subaddress")]), // ISDN
    lower(21, &[U16("preference"), Name("intermediate host")]), // RT
    f(22, &[Nsap]),                                 // NSAP, RFC 1706
    // NSAP-PTR: RFC 4034 §6.2 does not list it, but BIND lowercases its
    // name when it validates; written lowercased, both readings agree.
    lower(23, &[Name("NSAP-PTR target")]),
    f(25, KEY_SHAPE), // KEY, RFC 2535/3445
    lower(26, &[U16("preference"), Name("MAP822"), Name("MAPX400")]), // PX, RFC 2163
    // GPOS, RFC 1712: three strings meant to hold decimals, which BIND
    // does not check (it loads `GPOS foo bar baz`), so neither does this.
    f(
        27,
        &[
            CharStr("longitude"),
            CharStr("latitude"),
            CharStr("altitude"),
        ],
    ),
    special(29, special::loc_scan, special::loc_show, |w| {
        as_is(special::loc_show)(w)
    }),
    f(31, &[Hex("endpoint identifier")]), // EID
    f(32, &[Hex("nimrod locator")]),      // NIMLOC
    special(34, special::atma_scan, special::atma_show, |w| {
        as_is(special::atma_show)(w)
    }),
    lower(36, &[U16("preference"), Name("exchanger")]), // KX, RFC 2230
    f(37, &[CertType, U16("key tag"), Alg, Base64("certificate")]), // CERT, RFC 4398
    special(
        38,
        special::a6_scan,
        special::a6_show,
        special::a6_canonical,
    ),
    f(
        40,
        &[
            U8("meaning"),
            U8("coding"),
            U8("subcoding"),
            OptBase64("data"),
        ],
    ), // SINK
    special(42, special::apl_scan, special::apl_show, |w| {
        as_is(special::apl_show)(w)
    }),
    f(49, &[Base64("DHCID digest")]), // DHCID, RFC 4701
    f(
        53,
        &[
            U8("usage"),
            U8("selector"),
            U8("matching type"),
            Hex("certificate association data"),
        ],
    ), // SMIMEA, RFC 8162
    special(55, special::hip_scan, special::hip_show, |w| {
        as_is(special::hip_show)(w)
    }),
    f(56, TEXT_SHAPE),                                          // NINFO
    f(57, KEY_SHAPE),                                           // RKEY
    f(58, &[Name("previous name"), Name("next name")]),         // TALINK
    f(62, &[U32("SOA serial"), U16("flags"), Types]),           // CSYNC, RFC 7477
    f(66, &[Rtype, U8("scheme"), U16("port"), Name("target")]), // DSYNC, RFC 9859
    f(67, &[Base64("HHIT data")]),                              // HHIT, RFC 9886
    f(68, &[Base64("BRID data")]),                              // BRID, RFC 9886
    f(99, TEXT_SHAPE),                                          // SPF, RFC 7208
    f(104, &[U16("preference"), Ilnp64("node ID")]),            // NID, RFC 6742
    f(105, &[U16("preference"), Ipv4("locator")]),              // L32
    f(106, &[U16("preference"), Ilnp64("locator")]),            // L64
    f(107, &[U16("preference"), Name("FQDN")]),                 // LP
    f(108, &[Eui(6)]),                                          // EUI48, RFC 7043
    f(109, &[Eui(8)]),                                          // EUI64
    f(256, &[U16("priority"), U16("weight"), Text("target")]),  // URI, RFC 7553
    f(258, TEXT_SHAPE),                                         // AVC
    f(
        259,
        &[
            U32("enterprise"),
            U32("type"),
            U8("location"),
            CharStr("media type"),
            Base64OrDash("data"),
        ],
    ), // DOA
    special(260, special::amtrelay_scan, special::amtrelay_show, |w| {
        as_is(special::amtrelay_show)(w)
    }),
    f(261, TEXT_SHAPE), // RESINFO, RFC 9606
    f(262, TEXT_SHAPE), // WALLET
    f(32768, DS_SHAPE), // TA
    f(32769, DS_SHAPE), // DLV, RFC 4431
];

/// The codec of a type, if this module has one.
pub fn codec(code: u16) -> Option<&'static Codec> {
    // The writer asks this of every record: the table is in type order.
    CODECS
        .binary_search_by_key(&code, |c| c.code)
        .ok()
        .map(|i| &CODECS[i])
}

impl Codec {
    /// Reads the RDATA text of one record (without owner, TTL, class and
    /// type) into wire form; relative names are completed with `origin`.
    pub fn scan(&self, text: &[u8], origin: &str) -> Result<Vec<u8>, String> {
        let mut t = tokens::Tokens::new(tokens::split(text)?, origin);
        let wire = match self.shape {
            Shape::Fields(fields) => fields::scan(fields, &mut t)?,
            Shape::Special { scan, .. } => {
                let w = scan(&mut t)?;
                t.end()?;
                w
            }
        };
        if wire.len() > usize::from(u16::MAX) {
            return Err(format!("RDATA of {} octets exceeds 65535", wire.len()));
        }
        Ok(wire)
    }

    /// Wire RDATA in presentation format; None if it is not valid data of
    /// the type.
    pub fn show(&self, rdata: &[u8]) -> Option<String> {
        match self.shape {
            Shape::Fields(f) => fields::walk(f, rdata).map(|p| fields::show(&p)),
            Shape::Special { show, .. } => show(rdata),
        }
    }

    /// Wire RDATA in canonical form; None if it is not valid data of the
    /// type.
    pub fn canonical(&self, rdata: &[u8]) -> Option<Vec<u8>> {
        match self.shape {
            Shape::Fields(f) => {
                let pieces = fields::walk(f, rdata)?;
                let mut out = Vec::with_capacity(rdata.len());
                for p in pieces {
                    let start = out.len();
                    out.extend_from_slice(p.wire);
                    if self.lower && matches!(p.field, Name(_)) {
                        out[start..].make_ascii_lowercase();
                    }
                }
                Some(out)
            }
            Shape::Special { canonical, .. } => canonical(rdata),
        }
    }
}

/// Rules on RDATA beyond its shape that BIND enforces when it loads a zone
/// (a zone it refuses must not be signed either): digest lengths of the
/// known DS digest types (RFC 4509, RFC 6605) and ZONEMD hash algorithms
/// (RFC 8976 §2.2.4), SVCB/HTTPS self-consistency (RFC 9460 §7.1.1, §8),
/// RKEY flags of zero and X25 PSDN addresses of four or more digits (RFC
/// 1183 §3.1).
pub fn check(rtype: u16, rdata: &[u8]) -> Result<(), String> {
    match rtype {
        43 | 59 | 32768 | 32769 if rdata.len() >= 4 => {
            let want = match rdata[3] {
                1 => 20,
                2 | 3 => 32,
                4 => 48,
                _ => return Ok(()),
            };
            let got = rdata.len() - 4;
            if got != want {
                return Err(format!(
                    "a digest of type {} is {want} octets, not {got}",
                    rdata[3]
                ));
            }
        }
        63 if rdata.len() >= 6 => {
            let want = match rdata[5] {
                1 => 48,
                2 => 64,
                _ => return Ok(()),
            };
            let got = rdata.len() - 6;
            if got != want {
                return Err(format!(
                    "a ZONEMD digest of hash algorithm {} is {want} octets, not {got}",
                    rdata[5]
                ));
            }
        }
        64 | 65 => svcb::check(rdata)?,
        57 if rdata.len() >= 2 && rdata[..2] != [0, 0] => {
            return Err("RKEY flags must be 0".into());
        }
        19 => {
            let digits = rdata.get(1..).unwrap_or_default();
            if digits.len() < 4 || !digits.iter().all(u8::is_ascii_digit) {
                return Err("an X25 PSDN address is 4 or more digits (RFC 1183 §3.1)".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// The mnemonics BIND 9.18 reads and writes, by number. Types not listed
/// are written `TYPEnnn` (RFC 3597 §5), which every loader reads.
static NAMES: &[(u16, &str)] = &[
    (1, "A"),
    (2, "NS"),
    (3, "MD"),
    (4, "MF"),
    (5, "CNAME"),
    (6, "SOA"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (11, "WKS"),
    (12, "PTR"),
    (13, "HINFO"),
    (14, "MINFO"),
    (15, "MX"),
    (16, "TXT"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (22, "NSAP"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (28, "AAAA"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (33, "SRV"),
    (34, "ATMA"),
    (35, "NAPTR"),
    (36, "KX"),
    (37, "CERT"),
    (38, "A6"),
    (39, "DNAME"),
    (40, "SINK"),
    (41, "OPT"),
    (42, "APL"),
    (43, "DS"),
    (44, "SSHFP"),
    (45, "IPSECKEY"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (49, "DHCID"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (63, "ZONEMD"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (66, "DSYNC"),
    (67, "HHIT"),
    (68, "BRID"),
    (99, "SPF"),
    (100, "UINFO"),
    (101, "UID"),
    (102, "GID"),
    (103, "UNSPEC"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
    (256, "URI"),
    (257, "CAA"),
    (258, "AVC"),
    (259, "DOA"),
    (260, "AMTRELAY"),
    (261, "RESINFO"),
    (262, "WALLET"),
    (32768, "TA"),
    (32769, "DLV"),
    (65533, "KEYDATA"),
];

/// A type's mnemonic as BIND reads it, or `TYPEnnn`.
pub fn type_name(code: u16) -> String {
    match NAMES.binary_search_by_key(&code, |&(c, _)| c) {
        Ok(i) => NAMES[i].1.to_string(),
        Err(_) => format!("TYPE{code}"),
    }
}

/// The types of a type bitmap, space-separated, as BIND writes them.
pub fn types_text<O: AsRef<[u8]>>(bitmap: &domain::rdata::dnssec::RtypeBitmap<O>) -> String {
    bitmap
        .iter()
        .map(|t| type_name(t.to_int()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mnemonics by their uppercase text (the reader looks up every record's
/// type: a hash lookup, not a walk through the table).
static BY_NAME: LazyLock<HashMap<&'static [u8], u16>> =
    LazyLock::new(|| NAMES.iter().map(|&(c, n)| (n.as_bytes(), c)).collect());

/// Types whose BIND mnemonic `domain`'s scanner does not read as that type
/// (`NSAP-PTR`, which it spells `NSAPPTR`; `MB`, `KEYDATA`, which it lacks).
static DOMAIN_SPELLS_OTHERWISE: LazyLock<Vec<u16>> = LazyLock::new(|| {
    NAMES
        .iter()
        .filter(|&&(c, n)| {
            domain::base::iana::Rtype::from_mnemonic(n.as_bytes()).map(|t| t.to_int()) != Some(c)
        })
        .map(|&(c, _)| c)
        .collect()
});

/// The types nearly every zone is made of, as they are nearly always
/// written: matched before any table lookup (the reader looks up the type
/// of every record and every type in a signed zone's NSEC bitmaps).
fn common(name: &[u8]) -> Option<u16> {
    Some(match name {
        b"A" => 1,
        b"NS" => 2,
        b"CNAME" => 5,
        b"SOA" => 6,
        b"PTR" => 12,
        b"MX" => 15,
        b"TXT" => 16,
        b"AAAA" => 28,
        b"SRV" => 33,
        b"DS" => 43,
        b"RRSIG" => 46,
        b"NSEC" => 47,
        b"DNSKEY" => 48,
        b"NSEC3" => 50,
        _ => return None,
    })
}

/// A type from its mnemonic (any case) or `TYPEnnn`.
pub fn type_code(name: &[u8]) -> Option<u16> {
    if let Some(code) = common(name) {
        return Some(code);
    }
    if name.len() > 4 && name[..4].eq_ignore_ascii_case(b"TYPE") {
        let digits = std::str::from_utf8(&name[4..]).ok()?;
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits.parse().ok();
        }
    }
    let mut upper = [0u8; 16];
    let upper = upper.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    BY_NAME.get(&*upper).copied()
}

/// Whether `domain`'s scanner reads the BIND mnemonic of `code` as `code`.
pub fn domain_reads_mnemonic(code: u16) -> bool {
    !DOMAIN_SPELLS_OTHERWISE.contains(&code)
}

#[cfg(test)]
mod tests;
