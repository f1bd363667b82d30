//! A zone as a signer sees it: RRsets grouped into nodes in canonical
//! order, each node classified as apex, authoritative, delegation point or
//! occluded, with the semantic checks a signer must make.
//!
//! Rules enforced here (errors name file and line of the offending record):
//! - every owner at or below the origin; exactly one SOA RR, at the apex;
//! - CNAME alone at its name (RFC 1034 §3.6.2, RFC 2181 §10.1), one CNAME
//!   and one DNAME RR per name (RFC 6672 §2.4);
//! - DS only at delegation points, never at the apex (RFC 4034 §5);
//! - RRsets with mixed TTLs take the lowest, with a warning (RFC 2181 §5.2);
//! - data below a delegation is occluded: kept (as glue where it is glue),
//!   never signed, never in a chain; non-glue is reported as a warning;
//! - no data below a DNAME (RFC 6672 §2.3: MUST NOT), an error.
//!
//! DNSSEC records already in the input (RRSIG, NSEC, NSEC3, NSEC3PARAM,
//! DNSKEY, CDS, CDNSKEY) are taken out: the keystore and the options decide
//! them anew; old RRSIGs are handed back for incremental re-signing.

use super::parse::{Parsed, ZoneError};
use super::rr::{self, rtype, Record, Source};
use super::{Work, ZoneName};
use rayon::prelude::*;

/// Types a signer replaces rather than keeps.
pub const DNSSEC_TYPES: [u16; 7] = [
    rtype::RRSIG,
    rtype::NSEC,
    rtype::NSEC3,
    rtype::NSEC3PARAM,
    rtype::DNSKEY,
    rtype::CDS,
    rtype::CDNSKEY,
];

/// The RDATA of an RRset, in one buffer: each item is a 16-bit length and
/// the octets. A zone of 100k names has some 300k of them; one allocation
/// per RRset instead of one per record keeps big zones small in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rdatas {
    buf: Vec<u8>,
    /// Where the last item starts (for the de-duplication while building).
    last: usize,
}

impl Rdatas {
    /// One RDATA item, in a buffer of exactly its size.
    pub fn one(rdata: &[u8]) -> Self {
        let mut r = Rdatas::with_capacity(2 + rdata.len());
        r.push(rdata);
        r
    }

    /// No items yet, room for `octets` (2 per item and its RDATA).
    pub fn with_capacity(octets: usize) -> Self {
        Rdatas {
            buf: Vec::with_capacity(octets),
            last: 0,
        }
    }

    /// Items already sorted and de-duplicated.
    pub fn from_sorted<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut r = Rdatas::default();
        for i in items {
            r.push(i);
        }
        r
    }

    pub fn push(&mut self, rdata: &[u8]) {
        self.last = self.buf.len();
        // RDATA is at most 65535 octets (checked when parsed).
        self.buf
            .extend_from_slice(&(rdata.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
    }

    pub fn iter(&self) -> RdataIter<'_> {
        RdataIter { buf: &self.buf }
    }

    /// The items as stored: each a 16-bit length and the octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    pub fn last(&self) -> Option<&[u8]> {
        if self.buf.is_empty() {
            return None;
        }
        self.buf.get(self.last + 2..)
    }

    /// The first item, to change in place (the SOA serial).
    pub fn first_mut(&mut self) -> Option<&mut [u8]> {
        let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
        self.buf.get_mut(2..2 + len)
    }

    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }
}

/// The items of [`Rdatas`].
pub struct RdataIter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
        let item = self.buf.get(2..2 + len)?;
        self.buf = &self.buf[2 + len..];
        Some(item)
    }
}

/// The records of one name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrSet {
    pub rtype: u16,
    pub ttl: u32,
    /// Canonical RDATA, sorted and without duplicates (RFC 4034 §6.3).
    pub rdatas: Rdatas,
    pub source: Source,
    /// RRSIG RDATA over this RRset (filled in by the signer).
    pub rrsigs: Vec<Vec<u8>>,
}

/// What a name is to the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Apex,
    /// Authoritative data below the apex.
    Authoritative,
    /// A zone cut (NS below the apex); `secure` when it has a DS RRset.
    Delegation {
        secure: bool,
    },
    /// Below a zone cut or a DNAME: not authoritative.
    Occluded,
}

/// All RRsets of one owner name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Owner, canonical wire form.
    pub owner: Vec<u8>,
    pub kind: NodeKind,
    /// Sorted by type.
    pub rrsets: Vec<RrSet>,
}

impl Default for Node {
    /// An empty node (a placeholder while nodes are moved around).
    fn default() -> Node {
        Node {
            owner: Vec::new(),
            kind: NodeKind::Authoritative,
            rrsets: Vec::new(),
        }
    }
}

impl Node {
    pub fn rrset(&self, t: u16) -> Option<&RrSet> {
        self.rrsets.iter().find(|r| r.rtype == t)
    }

    pub fn has(&self, t: u16) -> bool {
        self.rrset(t).is_some()
    }

    /// Whether an RRset of this node is signed (RFC 4035 §2.2): everything
    /// authoritative; at a delegation only DS (and NSEC).
    pub fn signs(&self, t: u16) -> bool {
        if t == rtype::NSEC3 {
            return true;
        }
        match self.kind {
            NodeKind::Apex | NodeKind::Authoritative => true,
            NodeKind::Delegation { .. } => t == rtype::DS || t == rtype::NSEC,
            NodeKind::Occluded => false,
        }
    }

    /// The types an NSEC/NSEC3 bitmap lists for this node's data (RFC 4035
    /// §2.3: at a delegation only NS and DS), without NSEC/NSEC3/RRSIG.
    pub fn bitmap_types(&self) -> Vec<u16> {
        let mut t = Vec::new();
        self.bitmap_types_into(&mut t);
        t
    }

    /// [`Node::bitmap_types`], appended to `out`.
    pub fn bitmap_types_into(&self, out: &mut Vec<u16>) {
        out.extend(
            self.rrsets
                .iter()
                .map(|r| r.rtype)
                .filter(|&t| match self.kind {
                    NodeKind::Delegation { .. } => t == rtype::NS || t == rtype::DS,
                    _ => true,
                }),
        );
    }
}

/// A parsed, checked zone.
#[derive(Debug)]
pub struct Zone {
    pub origin: ZoneName,
    /// In canonical order; the apex first.
    pub nodes: Vec<Node>,
    pub warnings: Vec<String>,
    /// RRSIG records found in the input (for incremental re-signing).
    pub old_rrsigs: Vec<Record>,
    /// How many DNSSEC records of the input were taken out.
    pub stripped: usize,
}

impl Zone {
    pub fn apex(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn apex_mut(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    /// SOA RDATA of the apex.
    pub fn soa(&self) -> &[u8] {
        self.apex()
            .rrset(rtype::SOA)
            .and_then(|r| r.rdatas.first())
            .unwrap_or(&[])
    }

    pub fn soa_ttl(&self) -> u32 {
        self.apex().rrset(rtype::SOA).map(|r| r.ttl).unwrap_or(0)
    }

    /// SOA MINIMUM (the negative caching TTL, RFC 2308).
    pub fn soa_minimum(&self) -> u32 {
        let s = self.soa();
        s.len()
            .checked_sub(4)
            .map(|i| u32::from_be_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]))
            .unwrap_or(0)
    }

    /// TTL of NSEC/NSEC3 records: min(SOA MINIMUM, SOA TTL) (RFC 9077).
    pub fn negative_ttl(&self) -> u32 {
        self.soa_minimum().min(self.soa_ttl())
    }
}

/// Builds and checks a zone from parsed records.
pub fn build(mut parsed: Parsed, origin: &ZoneName, work: Work) -> Result<Zone, ZoneError> {
    let apex = origin.wire().to_vec();
    let mut warnings = Vec::new();
    let mut input = std::mem::take(&mut parsed.records);
    check_inside(&input, &apex, origin, &parsed)?;
    let (old_rrsigs, stripped) = strip_dnssec(&mut input);
    let (mut nodes, mixed) = into_nodes(input, &parsed, work);
    warnings.extend(mixed.into_iter().flatten());
    check_apex(&mut nodes, &apex, origin, &parsed)?;
    classify(&mut nodes, &parsed, &mut warnings)?;
    Ok(Zone {
        origin: origin.clone(),
        nodes,
        warnings,
        old_rrsigs,
        stripped,
    })
}

/// Every owner at or below the origin; the first record (in file order)
/// outside the zone is the one named.
fn check_inside(
    input: &[Record],
    apex: &[u8],
    origin: &ZoneName,
    parsed: &Parsed,
) -> Result<(), ZoneError> {
    match input.iter().find(|r| !rr::is_at_or_below(&r.owner, apex)) {
        Some(r) => Err(parsed.error(
            r.origin,
            format!("{} is outside the zone {origin}", display_name(&r.owner)),
        )),
        None => Ok(()),
    }
}

/// Takes the DNSSEC records ([`DNSSEC_TYPES`]) out of `input`: the old
/// RRSIGs, and how many records were taken in all.
fn strip_dnssec(input: &mut Vec<Record>) -> (Vec<Record>, usize) {
    let mut old_rrsigs = Vec::new();
    let mut stripped = 0;
    input.retain_mut(|r| {
        if !DNSSEC_TYPES.contains(&r.rtype) {
            return true;
        }
        stripped += 1;
        if r.rtype == rtype::RRSIG {
            old_rrsigs.push(std::mem::take(r));
        }
        false
    });
    (old_rrsigs, stripped)
}

/// Canonical order (owner, type, RDATA), then one node per owner, with
/// each node's warnings about mixed TTLs. The place in the input breaks
/// ties (duplicates), so that an RRset names the same line whichever way
/// it was sorted.
fn into_nodes(input: Vec<Record>, parsed: &Parsed, work: Work) -> (Vec<Node>, Vec<Vec<String>>) {
    let key = |r: Record| (rr::order_key(&r.owner), r);
    let order = |a: &(Vec<u8>, Record), b: &(Vec<u8>, Record)| {
        a.0.cmp(&b.0)
            .then(a.1.rtype.cmp(&b.1.rtype))
            .then_with(|| a.1.rdata.cmp(&b.1.rdata))
            .then_with(|| {
                let place = |r: &Record| (r.origin.file, r.origin.line);
                place(&a.1).cmp(&place(&b.1))
            })
    };
    let same_owner = |a: &(Vec<u8>, Record), b: &(Vec<u8>, Record)| a.0 == b.0;
    match work {
        Work::OneThread => {
            let mut keyed: Vec<_> = input.into_iter().map(key).collect();
            keyed.sort_unstable_by(order);
            keyed
                .chunk_by_mut(same_owner)
                .map(|records| node_of(records, parsed))
                .unzip()
        }
        Work::AllCores => {
            let mut keyed: Vec<_> = input.into_par_iter().map(key).collect();
            keyed.par_sort_unstable_by(order);
            keyed
                .par_chunk_by_mut(same_owner)
                .map(|records| node_of(records, parsed))
                .unzip()
        }
    }
}

/// The first node is the apex, with exactly one SOA record; it is marked
/// as the apex.
fn check_apex(
    nodes: &mut [Node],
    apex: &[u8],
    origin: &ZoneName,
    parsed: &Parsed,
) -> Result<(), ZoneError> {
    let no_soa = || ZoneError {
        file: parsed
            .files
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        line: 0,
        message: format!("no SOA record at the apex {origin}"),
    };
    let Some(first) = nodes.first_mut().filter(|n| n.owner == apex) else {
        return Err(no_soa());
    };
    first.kind = NodeKind::Apex;
    match first.rrset(rtype::SOA) {
        None => Err(no_soa()),
        Some(soa) if soa.rdatas.len() > 1 => Err(parsed.error(
            soa.source,
            format!(
                "{} SOA records at the apex; a zone has exactly one",
                soa.rdatas.len()
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Node by node: types, cuts and occlusion. Canonical order visits a name
/// before everything below it, so one "current cut" suffices.
fn classify(
    nodes: &mut [Node],
    parsed: &Parsed,
    warnings: &mut Vec<String>,
) -> Result<(), ZoneError> {
    let mut cut: Option<Vec<u8>> = None;
    let mut dname_cut = false;
    let mut occluded_data = 0usize;
    let mut first_occluded: Option<String> = None;
    for node in nodes.iter_mut() {
        let is_apex = node.kind == NodeKind::Apex;
        if let Some(c) = &cut {
            if rr::is_below(&node.owner, c) && dname_cut {
                let first = &node.rrsets[0];
                return Err(parsed.error(
                    first.source,
                    format!(
                        "{} is below the DNAME at {}: no data may exist below a DNAME (RFC 6672 §2.3)",
                        display_name(&node.owner),
                        display_name(c)
                    ),
                ));
            }
            if rr::is_below(&node.owner, c) {
                node.kind = NodeKind::Occluded;
                let glue_only = node
                    .rrsets
                    .iter()
                    .all(|r| r.rtype == rtype::A || r.rtype == rtype::AAAA);
                if !glue_only {
                    occluded_data += 1;
                    first_occluded.get_or_insert_with(|| {
                        format!(
                            "{} ({})",
                            parsed.place(node.rrsets[0].source),
                            display_name(&node.owner)
                        )
                    });
                }
                continue;
            }
            cut = None;
        }
        check_types(node, is_apex, parsed)?;
        if !is_apex && node.has(rtype::NS) {
            node.kind = NodeKind::Delegation {
                secure: node.has(rtype::DS),
            };
            if let Some(d) = node.rrset(rtype::DNAME) {
                warnings.push(format!(
                    "{}: DNAME at the delegation {} is not authoritative (the cut wins) and is not signed",
                    parsed.place(d.source),
                    display_name(&node.owner)
                ));
            }
            cut = Some(node.owner.clone());
            dname_cut = false;
        } else if node.has(rtype::DNAME) {
            cut = Some(node.owner.clone());
            dname_cut = true;
        }
    }
    if occluded_data > 0 {
        warnings.push(format!(
            "{occluded_data} name(s) below a delegation or DNAME hold non-glue data, e.g. {}: kept, not signed, not in the chain",
            first_occluded.unwrap_or_default()
        ));
    }
    Ok(())
}

/// The rules on types at one authoritative name or cut: SOA only at the
/// apex, CNAME alone and single, one DNAME, DS only at a delegation.
fn check_types(node: &Node, is_apex: bool, parsed: &Parsed) -> Result<(), ZoneError> {
    if !is_apex {
        if let Some(soa) = node.rrset(rtype::SOA) {
            return Err(parsed.error(
                soa.source,
                format!(
                    "SOA at {}, which is not the apex",
                    display_name(&node.owner)
                ),
            ));
        }
    }
    if let Some(cname) = node.rrset(rtype::CNAME) {
        if cname.rdatas.len() > 1 {
            return Err(parsed.error(
                cname.source,
                format!(
                    "{} has {} CNAME records; a name has at most one",
                    display_name(&node.owner),
                    cname.rdatas.len()
                ),
            ));
        }
        if let Some(other) = node.rrsets.iter().find(|r| r.rtype != rtype::CNAME) {
            return Err(parsed.error(
                cname.source,
                format!(
                    "CNAME at {} beside {} data (line {}): a CNAME must be alone at its name (RFC 1034 §3.6.2)",
                    display_name(&node.owner),
                    type_name(other.rtype),
                    other.source.line
                ),
            ));
        }
    }
    if let Some(dname) = node.rrset(rtype::DNAME) {
        if dname.rdatas.len() > 1 {
            return Err(parsed.error(
                dname.source,
                format!(
                    "{} has {} DNAME records; a name has at most one (RFC 6672 §2.4)",
                    display_name(&node.owner),
                    dname.rdatas.len()
                ),
            ));
        }
    }
    if let Some(ds) = node.rrset(rtype::DS) {
        if is_apex {
            return Err(parsed.error(
                ds.source,
                "DS at the apex: DS records belong in the parent zone (RFC 4034 §5)",
            ));
        }
        if !node.has(rtype::NS) {
            return Err(parsed.error(
                ds.source,
                format!(
                    "DS at {} without NS: DS only exists at a delegation (RFC 4034 §5)",
                    display_name(&node.owner)
                ),
            ));
        }
    }
    Ok(())
}

/// The node of one owner's records (sorted, all of the same owner; they
/// are taken, leaving defaults behind), and the warning about RRsets with
/// mixed TTLs.
fn node_of(records: &mut [(Vec<u8>, Record)], parsed: &Parsed) -> (Node, Vec<String>) {
    // Exact sizes: one allocation per RRset and one for the list of
    // RRsets, with room for the NSEC that the chain adds.
    let types = 1 + records
        .windows(2)
        .filter(|w| w[0].1.rtype != w[1].1.rtype)
        .count();
    let mut node = Node {
        owner: Vec::new(),
        kind: NodeKind::Authoritative,
        rrsets: Vec::with_capacity(types + 1),
    };
    let mut warnings = Vec::new();
    let mut rest = &mut records[..];
    while !rest.is_empty() {
        let t = rest[0].1.rtype;
        let n = rest.iter().take_while(|(_, r)| r.rtype == t).count();
        let (set_records, after) = rest.split_at_mut(n);
        rest = after;
        let octets = set_records.iter().map(|(_, r)| 2 + r.rdata.len()).sum();
        let first = &mut set_records[0].1;
        if node.owner.is_empty() {
            node.owner = std::mem::take(&mut first.owner);
        }
        let mut set = RrSet {
            rtype: t,
            ttl: first.ttl,
            rdatas: Rdatas::with_capacity(octets),
            source: first.origin,
            rrsigs: Vec::new(),
        };
        let mut mixed = false;
        for (_, r) in set_records.iter_mut() {
            if r.ttl != set.ttl {
                mixed = true;
                set.ttl = set.ttl.min(r.ttl);
            }
            if set.rdatas.last() != Some(r.rdata.as_slice()) {
                set.rdatas.push(&r.rdata);
            }
            // Freed here, on this thread, while the zone is built.
            *r = Record::default();
        }
        if mixed {
            warnings.push(format!(
                "{}: {} {} RRset has mixed TTLs; using the lowest, {} (RFC 2181 §5.2)",
                parsed.place(set.source),
                display_name(&node.owner),
                type_name(set.rtype),
                set.ttl
            ));
        }
        node.rrsets.push(set);
    }
    (node, warnings)
}

/// A wire name in presentation format.
pub fn display_name(wire: &[u8]) -> String {
    ZoneName::from_wire(wire)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| hex::encode(wire))
}

/// The mnemonic of a type (TYPEnnn for unknown ones).
pub fn type_name(t: u16) -> String {
    super::codec::type_name(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdatas_keep_items_in_order_in_one_buffer() {
        let mut r = Rdatas::default();
        assert!(r.is_empty() && r.first().is_none() && r.last().is_none());
        r.push(&[1, 2, 3]);
        r.push(&[]);
        r.push(&[9; 300]);
        assert_eq!(r.len(), 3);
        let items: Vec<&[u8]> = r.iter().collect();
        assert_eq!(items, vec![&[1u8, 2, 3][..], &[][..], &[9u8; 300][..]]);
        assert_eq!(r.last(), Some(&[9u8; 300][..]));
        r.first_mut().unwrap()[0] = 7;
        assert_eq!(r.first(), Some(&[7u8, 2, 3][..]));
        assert_eq!(Rdatas::from_sorted(items_of(&r)), r);
    }

    fn items_of(r: &Rdatas) -> Vec<&[u8]> {
        r.iter().collect()
    }
}
