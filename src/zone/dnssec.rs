//! The DNSSEC records a signer adds to a zone: the DNSKEY RRset, NSEC or
//! NSEC3 chains (with opt-out), NSEC3PARAM, and the SOA serial.
//!
//! References: RFC 4034 §4 (NSEC, type bitmaps), RFC 4035 §2.3, RFC 5155
//! (NSEC3: hashing §5, chain §7.1, opt-out §6), RFC 9276 (NSEC3 parameter
//! guidance: 0 extra iterations, empty salt), RFC 9077 (NSEC TTL), RFC 1982
//! (serial number arithmetic).

use data_encoding::BASE32HEX_NOPAD;
use rayon::prelude::*;
use sha1::{Digest, Sha1};

use super::model::{Node, NodeKind, Rdatas, RrSet, Zone};
use super::rr::{self, rtype, Source};
use super::Work;

/// NSEC3 parameters (RFC 5155 §3.1; hash algorithm 1, SHA-1, is the only one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3Params {
    pub iterations: u16,
    pub salt: Vec<u8>,
    pub opt_out: bool,
}

/// Appends the type bitmap of `types` to `out`; `types` is sorted and
/// de-duplicated on the way (no allocation: this runs once per NSEC3).
pub fn append_type_bitmap(out: &mut Vec<u8>, types: &mut Vec<u16>) {
    types.sort_unstable();
    types.dedup();
    let sorted = &types[..];
    let mut i = 0;
    while i < sorted.len() {
        let window = (sorted[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < sorted.len() && (sorted[i] >> 8) as u8 == window {
            let low = (sorted[i] & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
}

/// The types in a bitmap (for verification).
pub fn bitmap_types(bitmap: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bitmap.len() {
        let window = u16::from(*bitmap.get(i)?);
        let len = usize::from(*bitmap.get(i + 1)?);
        if len == 0 || len > 32 {
            return None;
        }
        let bits = bitmap.get(i + 2..i + 2 + len)?;
        for (byte_i, b) in bits.iter().enumerate() {
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    out.push((window << 8) | (byte_i * 8 + bit) as u16);
                }
            }
        }
        i += 2 + len;
    }
    Some(out)
}

/// RFC 5155 §5: IH(salt, x, 0) = H(x || salt), IH(k) = H(IH(k-1) || salt).
pub fn nsec3_hash(owner: &[u8], salt: &[u8], iterations: u16) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(owner);
    h.update(salt);
    let mut digest: [u8; 20] = h.finalize().into();
    for _ in 0..iterations {
        let mut h = Sha1::new();
        h.update(digest);
        h.update(salt);
        digest = h.finalize().into();
    }
    digest
}

/// The owner label of an NSEC3 record: base32hex without padding, lowercase.
pub fn nsec3_label(hash: &[u8]) -> String {
    BASE32HEX_NOPAD.encode(hash).to_ascii_lowercase()
}

/// Adds the NSEC chain (RFC 4035 §2.3): one NSEC per authoritative name and
/// delegation point, in canonical order, the last pointing at the apex.
pub fn add_nsec_chain(zone: &mut Zone, work: Work) {
    let ttl = zone.negative_ttl();
    let nodes = &zone.nodes;
    let in_chain = |i: usize| nodes[i].kind != NodeKind::Occluded;
    // The next name in the chain after each node; the last one's is the
    // first (the apex).
    let mut next = vec![usize::MAX; nodes.len()];
    let mut following = (0..nodes.len()).find(|&i| in_chain(i)).unwrap_or(0);
    for i in (0..nodes.len()).rev() {
        if in_chain(i) {
            next[i] = following;
            following = i;
        }
    }
    // One pair of buffers per thread.
    let make = |(types, rdata): &mut (Vec<u16>, Vec<u8>), (i, &n): (usize, &usize)| {
        if n == usize::MAX {
            return None;
        }
        types.clear();
        nodes[i].bitmap_types_into(types);
        types.extend([rtype::NSEC, rtype::RRSIG]);
        rdata.clear();
        rdata.extend_from_slice(&nodes[n].owner);
        append_type_bitmap(rdata, types);
        Some(Rdatas::one(rdata))
    };
    let nsecs: Vec<Option<Rdatas>> = match work {
        Work::OneThread => {
            let mut buffers = Default::default();
            next.iter()
                .enumerate()
                .map(|x| make(&mut buffers, x))
                .collect()
        }
        Work::AllCores => next
            .par_iter()
            .enumerate()
            .map_init(Default::default, make)
            .collect(),
    };
    drop(next);
    let insert = |(node, nsec): (&mut Node, Option<Rdatas>)| {
        if let Some(rdatas) = nsec {
            insert_rrset(
                node,
                RrSet {
                    rtype: rtype::NSEC,
                    ttl,
                    rdatas,
                    source: Source::default(),
                    rrsigs: Vec::new(),
                },
            );
        }
    };
    match work {
        Work::OneThread => zone.nodes.iter_mut().zip(nsecs).for_each(insert),
        Work::AllCores => zone.nodes.par_iter_mut().zip(nsecs).for_each(insert),
    }
}

/// One NSEC3 record to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3Node {
    pub hash: [u8; 20],
    /// Owner: `<base32hex>.<origin>`, wire form.
    pub owner: Vec<u8>,
    pub rrset: RrSet,
}

/// Builds the NSEC3 chain (RFC 5155 §7.1) and adds NSEC3PARAM to the apex.
/// Returns the NSEC3 nodes in hash order.
pub fn add_nsec3_chain(
    zone: &mut Zone,
    params: &Nsec3Params,
    param_ttl: u32,
    work: Work,
) -> Vec<Nsec3Node> {
    let ttl = zone.negative_ttl();
    let apex = zone.origin.wire().to_vec();
    // The types a node's NSEC3 adds to its own; None when it gets none.
    let extra_types = |node: &Node| -> Option<&'static [u16]> {
        Some(match node.kind {
            NodeKind::Occluded => return None,
            NodeKind::Delegation { secure: false } if params.opt_out => return None,
            NodeKind::Delegation { secure: false } => &[],
            NodeKind::Delegation { secure: true } => &[rtype::RRSIG],
            NodeKind::Apex => &[rtype::RRSIG, rtype::NSEC3PARAM],
            NodeKind::Authoritative => &[rtype::RRSIG],
        })
    };
    // Every name that gets an NSEC3: a node (by index; its types are
    // worked out when its record is made) or an empty non-terminal. Big
    // zones hold neither their names twice nor a types list per name.
    let nodes = &zone.nodes;
    let mut names: Vec<(&[u8], Option<usize>)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| extra_types(n).is_some())
        .map(|(i, n)| (n.owner.as_slice(), Some(i)))
        .collect();
    // Empty non-terminals between each name and the apex (RFC 5155 §7.1):
    // ancestors that are not nodes (the nodes are in canonical order).
    let is_node = |name: &[u8]| {
        nodes
            .binary_search_by(|n| rr::cmp_names(&n.owner, name))
            .is_ok()
    };
    let mut ents: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    for i in 0..names.len() {
        let mut p = rr::parent(names[i].0);
        while let Some(anc) = p {
            if anc.len() <= apex.len() || is_node(anc) || !ents.insert(anc) {
                break;
            }
            names.push((anc, None));
            p = rr::parent(anc);
        }
    }
    drop(ents);

    let hash = |(n, i): (&[u8], Option<usize>)| (nsec3_hash(n, &params.salt, params.iterations), i);
    let mut hashed: Vec<([u8; 20], Option<usize>)> = match work {
        Work::OneThread => names.into_iter().map(hash).collect(),
        Work::AllCores => names.into_par_iter().map(hash).collect(),
    };
    match work {
        Work::OneThread => hashed.sort_unstable_by_key(|a| a.0),
        Work::AllCores => hashed.par_sort_unstable_by_key(|a| a.0),
    }
    let flags: u8 = if params.opt_out { 1 } else { 0 };
    let count = hashed.len();
    let label_len = BASE32HEX_NOPAD.encode_len(20);
    let hashed = &hashed;
    // One buffer each for every record's types and RDATA per thread: a big
    // zone makes hundreds of thousands of these.
    let make = |(types, rdata): &mut (Vec<u16>, Vec<u8>), i: usize| {
        let next = hashed[(i + 1) % count].0;
        let (hash, node) = &hashed[i];
        types.clear();
        if let Some(node) = node.map(|n| &nodes[n]) {
            if let Some(extra) = extra_types(node) {
                node.bitmap_types_into(types);
                types.extend_from_slice(extra);
            }
        }
        rdata.clear();
        rdata.extend_from_slice(&[1, flags]);
        rdata.extend(params.iterations.to_be_bytes());
        rdata.push(params.salt.len() as u8);
        rdata.extend(&params.salt);
        rdata.push(20);
        rdata.extend(next);
        append_type_bitmap(rdata, types);
        let mut label = [0u8; 32];
        BASE32HEX_NOPAD.encode_mut(hash, &mut label[..label_len]);
        label.make_ascii_lowercase();
        let mut owner = Vec::with_capacity(1 + label_len + apex.len());
        owner.push(label_len as u8);
        owner.extend_from_slice(&label[..label_len]);
        owner.extend(&apex);
        Nsec3Node {
            hash: *hash,
            owner,
            rrset: RrSet {
                rtype: rtype::NSEC3,
                ttl,
                rdatas: Rdatas::one(rdata),
                source: Source::default(),
                rrsigs: Vec::new(),
            },
        }
    };
    let out: Vec<Nsec3Node> = match work {
        Work::OneThread => {
            let mut buffers = Default::default();
            (0..count).map(|i| make(&mut buffers, i)).collect()
        }
        Work::AllCores => (0..count)
            .into_par_iter()
            .map_init(Default::default, make)
            .collect(),
    };
    // NSEC3PARAM: flags 0 (RFC 5155 §4.1.2); RFC 5155 sets no TTL for it,
    // the caller chooses.
    let mut param = vec![1, 0];
    param.extend(params.iterations.to_be_bytes());
    param.push(params.salt.len() as u8);
    param.extend(&params.salt);
    insert_rrset(
        zone.apex_mut(),
        RrSet {
            rtype: rtype::NSEC3PARAM,
            ttl: param_ttl,
            rdatas: Rdatas::one(&param),
            source: Source::default(),
            rrsigs: Vec::new(),
        },
    );
    out
}

/// Adds (or replaces) an RRset keeping the node's type order.
pub fn insert_rrset(node: &mut Node, set: RrSet) {
    match node.rrsets.binary_search_by_key(&set.rtype, |r| r.rtype) {
        Ok(i) => node.rrsets[i] = set,
        Err(i) => node.rrsets.insert(i, set),
    }
}

/// SOA serial policies (`-N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialPolicy {
    Keep,
    Increment,
    UnixTime,
    Date,
}

/// RFC 1982: whether `a` is less than `b` in serial number arithmetic.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && ((a < b && b - a < 0x8000_0000) || (a > b && a - b > 0x8000_0000))
}

/// The next serial under a policy; never goes backwards (RFC 1982).
pub fn next_serial(old: u32, policy: SerialPolicy, now_unix: i64, today_yyyymmdd: u32) -> u32 {
    let candidate = match policy {
        SerialPolicy::Keep => return old,
        SerialPolicy::Increment => old.wrapping_add(1),
        SerialPolicy::UnixTime => u32::try_from(now_unix).unwrap_or(u32::MAX),
        SerialPolicy::Date => today_yyyymmdd.saturating_mul(100),
    };
    if serial_lt(old, candidate) {
        candidate
    } else {
        old.wrapping_add(1)
    }
}

/// The serial field of SOA RDATA (after MNAME and RNAME).
pub fn soa_serial_offset(soa: &[u8]) -> Option<usize> {
    let mname = rr::name_len(soa)?;
    let rname = rr::name_len(soa.get(mname..)?)?;
    let off = mname + rname;
    (soa.len() >= off + 20).then_some(off)
}

/// Sets the SOA serial of the zone; returns (old, new).
pub fn set_serial(
    zone: &mut Zone,
    policy: SerialPolicy,
    now_unix: i64,
    today: u32,
) -> Option<(u32, u32)> {
    let apex = zone.apex_mut();
    let i = apex.rrsets.iter().position(|r| r.rtype == rtype::SOA)?;
    let soa = apex.rrsets[i].rdatas.first_mut()?;
    let off = soa_serial_offset(soa)?;
    let old = u32::from_be_bytes([soa[off], soa[off + 1], soa[off + 2], soa[off + 3]]);
    let new = next_serial(old, policy, now_unix, today);
    soa[off..off + 4].copy_from_slice(&new.to_be_bytes());
    Some((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::ZoneName;

    /// A zone built and chained on every core is the zone built and chained
    /// on one thread: the same nodes in the same order, the same warnings
    /// and the same NSEC and NSEC3 records, for a zone with delegations
    /// (secure, insecure, with glue and with occluded data), empty
    /// non-terminals, wildcards, mixed TTLs and duplicates, not in
    /// canonical order.
    #[test]
    fn every_core_builds_and_chains_what_one_thread_does() {
        use crate::zone::{model, parse};
        let mut text = String::from(
            "$ORIGIN example.\n$TTL 300\n@ SOA ns host 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
        );
        let digest = "AB".repeat(32);
        for i in (0..6000).rev() {
            text.push_str(&match i % 6 {
                0 => format!("d{i} NS ns.d{i}\nns.d{i} A 192.0.2.2\nx.d{i} TXT \"below\"\n"),
                1 => format!("s{i} NS ns\ns{i} DS 12345 13 2 {digest}\n"),
                2 => format!("a.b{i} TXT \"x\"\na.b{i} TXT \"x\"\n"),
                3 => format!("m{i} 60 A 192.0.2.3\nm{i} 120 A 192.0.2.4\n"),
                4 => format!("*.w{i} A 192.0.2.5\nW{i} MX 10 @\n"),
                _ => format!("h{i} AAAA 2001:db8::{i:x}\nh{i} A 192.0.2.{}\n", i % 250),
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.zone");
        std::fs::write(&path, &text).unwrap();
        let origin: ZoneName = "example".parse().unwrap();
        let build = |work| model::build(parse::parse_file(&path, &origin).unwrap(), &origin, work);
        let (one, all) = (
            build(Work::OneThread).unwrap(),
            build(Work::AllCores).unwrap(),
        );
        assert!(one.nodes.len() > 8000, "{}", one.nodes.len());
        assert!(one.nodes == all.nodes, "the nodes differ");
        assert_eq!(one.warnings, all.warnings);
        let mixed = one
            .warnings
            .iter()
            .filter(|w| w.contains("mixed TTLs"))
            .count();
        assert_eq!(mixed, 1000);
        let chained = |mut zone: Zone, work| {
            add_nsec_chain(&mut zone, work);
            zone.nodes
        };
        let (one_nsec, all_nsec) = (
            chained(build(Work::OneThread).unwrap(), Work::OneThread),
            chained(build(Work::AllCores).unwrap(), Work::AllCores),
        );
        assert!(one_nsec == all_nsec, "the NSEC chains differ");
        assert!(one_nsec != one.nodes, "no NSEC was added");
        for opt_out in [false, true] {
            let params = Nsec3Params {
                iterations: 0,
                salt: vec![],
                opt_out,
            };
            let nsec3 = |work| {
                let mut zone = build(work).unwrap();
                let chain = add_nsec3_chain(&mut zone, &params, 300, work);
                (chain, zone.nodes)
            };
            let (one3, all3) = (nsec3(Work::OneThread), nsec3(Work::AllCores));
            assert!(one3.0.len() > 4000, "{}", one3.0.len());
            assert!(one3 == all3, "the NSEC3 chains differ (opt-out {opt_out})");
        }
    }

    /// RFC 5155 Appendix A: the example's hashed owner names (SHA-1, 12
    /// iterations, salt aabbccdd).
    #[test]
    fn rfc5155_appendix_a_hashes() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        for (name, expected) in [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"),
            ("w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
            ("y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"),
            ("x.y.w.example.", "2vptu5timamqttgl4luu9kg21e0aor3s"),
            ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
            (
                "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.",
                "kohar7mbb8dc2ce8a9qvl8hon4k53uhi",
            ),
        ] {
            let n: ZoneName = name.parse().unwrap();
            assert_eq!(
                nsec3_label(&nsec3_hash(n.wire(), &salt, 12)),
                expected,
                "{name}"
            );
        }
    }

    /// RFC 4034 §4.3: "A MX RRSIG NSEC TYPE1234".
    #[test]
    fn rfc4034_bitmap_example() {
        let mut bm = Vec::new();
        append_type_bitmap(&mut bm, &mut vec![1234, 47, 1, 46, 15]);
        let mut expected = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        expected.extend([0u8; 26]);
        expected.push(0x20);
        assert_eq!(bm, expected);
        assert_eq!(bitmap_types(&bm).unwrap(), vec![1, 15, 46, 47, 1234]);
    }

    #[test]
    fn serials_never_go_backwards() {
        assert!(serial_lt(1, 2));
        assert!(serial_lt(0xFFFF_FFFF, 0));
        assert!(!serial_lt(0, 0x8000_0001));
        assert_eq!(next_serial(5, SerialPolicy::Keep, 0, 0), 5);
        assert_eq!(next_serial(0xFFFF_FFFF, SerialPolicy::Increment, 0, 0), 0);
        assert_eq!(
            next_serial(100, SerialPolicy::UnixTime, 1_700_000_000, 0),
            1_700_000_000
        );
        assert_eq!(
            next_serial(1_800_000_000, SerialPolicy::UnixTime, 1_700_000_000, 0),
            1_800_000_001
        );
        assert_eq!(
            next_serial(2026112500, SerialPolicy::Date, 0, 20261125),
            2026112501
        );
        assert_eq!(
            next_serial(2026112407, SerialPolicy::Date, 0, 20261125),
            2026112500
        );
        assert_eq!(
            next_serial(2026112599, SerialPolicy::Date, 0, 20261125),
            2026112600
        );
    }
}
