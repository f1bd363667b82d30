//! `dnsseal verify`: a full check of a signed zone, independent of how it
//! was signed.
//!
//! - every authoritative RRset (at a delegation: DS only) has, for every
//!   algorithm in the DNSKEY RRset, a signature that verifies with a
//!   published key and is valid at the given time (RFC 4035 §2.2, §5.3);
//! - the DNSKEY RRset is signed by a key with the SEP flag;
//! - NSEC: one per authoritative name and delegation, linked in canonical
//!   order into a closed ring, with exact type bitmaps (RFC 4035 §2.3);
//! - NSEC3: every name (and empty non-terminal) that needs one has one, the
//!   hashes link in order into a closed ring, bitmaps exact, parameters
//!   agree with NSEC3PARAM (RFC 5155 §7.1, §8);
//! - nothing expired, nothing signed over occluded data.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::engine::append_rrset;
use crate::zone::dnssec::{bitmap_types, nsec3_hash, nsec3_label};
use crate::zone::model::{self, display_name, type_name, NodeKind, RrSet, Zone};
use crate::zone::parse::Parsed;
use crate::zone::rr::{self, rtype, Record};
use crate::zone::rrsig::Rrsig;
use crate::zone::{Algorithm, Dnskey, ZoneName};

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub rrsets_checked: usize,
    pub signatures_checked: usize,
    pub denial: String,
    /// SEP keys whose signature over the DNSKEY RRset verifies: the keys a
    /// parent's DS may point at.
    pub dnskey_signers: Vec<Dnskey>,
}

/// Checks a parsed signed zone at time `now` (seconds since the epoch).
pub fn check_zone(
    parsed: Parsed,
    origin: &ZoneName,
    now: u32,
) -> Result<Report, crate::zone::parse::ZoneError> {
    // DNSSEC records aside, everything else through the same model.
    let dnssec: Vec<Record> = parsed
        .records
        .iter()
        .filter(|r| model::DNSSEC_TYPES.contains(&r.rtype))
        .cloned()
        .collect();
    let zone = model::build(parsed, origin, crate::zone::Work::OneThread)?;
    let mut report = Report::default();
    let apex = origin.wire();

    let mut by_type: HashMap<(Vec<u8>, u16), Vec<&Record>> = HashMap::new();
    for r in &dnssec {
        by_type
            .entry((r.owner.clone(), r.rtype))
            .or_default()
            .push(r);
    }
    let mut sigs: HashMap<(Vec<u8>, u16), Vec<Rrsig<'_>>> = HashMap::new();
    for r in dnssec.iter().filter(|r| r.rtype == rtype::RRSIG) {
        // A signature must follow the signer's name.
        let Some(sig) = Rrsig::parse(&r.rdata).filter(|s| !s.signature().is_empty()) else {
            report
                .errors
                .push(format!("{}: malformed RRSIG", display_name(&r.owner)));
            continue;
        };
        sigs.entry((r.owner.clone(), sig.type_covered()))
            .or_default()
            .push(sig);
    }

    // Keys.
    let dnskey_records = by_type
        .get(&(apex.to_vec(), rtype::DNSKEY))
        .cloned()
        .unwrap_or_default();
    if dnskey_records.is_empty() {
        report.errors.push(format!("no DNSKEY RRset at {origin}"));
        return Ok(report);
    }
    let keys = dnskeys(&dnskey_records);
    let algorithms: Vec<u8> = {
        let mut a: Vec<u8> = keys.iter().map(|k| k.algorithm).collect();
        a.sort_unstable();
        a.dedup();
        a
    };
    let rrset_of = |owner: &[u8], t: u16| -> Option<RrSet> {
        let recs = by_type.get(&(owner.to_vec(), t))?;
        let mut rdatas: Vec<Vec<u8>> = recs.iter().map(|r| r.rdata.clone()).collect();
        rdatas.sort();
        rdatas.dedup();
        Some(RrSet {
            rtype: t,
            ttl: recs.iter().map(|r| r.ttl).min().unwrap_or(0),
            rdatas: crate::zone::model::Rdatas::from_sorted(rdatas.iter().map(Vec::as_slice)),
            source: recs[0].origin,
            rrsigs: Vec::new(),
        })
    };

    // Every signed RRset: zone data, DNSKEY, NSEC/NSEC3(PARAM).
    let mut to_check: Vec<(Vec<u8>, RrSet, bool)> = Vec::new();
    for node in &zone.nodes {
        for set in &node.rrsets {
            if node.signs(set.rtype) {
                to_check.push((node.owner.clone(), set.clone(), false));
            } else if sigs.contains_key(&(node.owner.clone(), set.rtype))
                && node.kind == NodeKind::Occluded
            {
                report.errors.push(format!(
                    "{} {}: occluded data is signed",
                    display_name(&node.owner),
                    type_name(set.rtype)
                ));
            }
        }
    }
    if let Some(set) = rrset_of(apex, rtype::DNSKEY) {
        to_check.push((apex.to_vec(), set, true));
    }
    for t in [rtype::NSEC3PARAM, rtype::CDS, rtype::CDNSKEY] {
        if let Some(set) = rrset_of(apex, t) {
            to_check.push((apex.to_vec(), set, false));
        }
    }
    for ((owner, t), _) in by_type
        .iter()
        .filter(|((_, t), _)| *t == rtype::NSEC || *t == rtype::NSEC3)
    {
        if let Some(set) = rrset_of(owner, *t) {
            to_check.push((owner.clone(), set, false));
        }
    }
    let signed = Signed {
        sigs: &sigs,
        keys: &keys,
        apex,
        now,
    };
    for (owner, set, is_dnskey) in &to_check {
        check_rrset(&signed, owner, set, *is_dnskey, &algorithms, &mut report);
    }

    // Which SEP keys really sign the DNSKEY RRset (for DS checks).
    if let (Some(set), Some(candidates)) = (
        rrset_of(apex, rtype::DNSKEY),
        sigs.get(&(apex.to_vec(), rtype::DNSKEY)),
    ) {
        report.dnskey_signers = dnskey_signers(&set, candidates, &keys, apex, now);
    }

    // Denial of existence.
    let nsec3param = rrset_of(apex, rtype::NSEC3PARAM);
    match nsec3param {
        None => {
            report.denial = "NSEC".into();
            check_nsec(&zone, &by_type, &mut report);
        }
        Some(p) => {
            report.denial = "NSEC3".into();
            check_nsec3(
                &zone,
                &by_type,
                p.rdatas.first().unwrap_or(&[]),
                &mut report,
            );
        }
    }
    Ok(report)
}

/// The signatures of a zone and what they are checked against.
struct Signed<'a> {
    sigs: &'a HashMap<(Vec<u8>, u16), Vec<Rrsig<'a>>>,
    keys: &'a [Dnskey],
    apex: &'a [u8],
    now: u32,
}

/// RFC 4035 §2.2: every algorithm of the DNSKEY RRset signs the RRset.
fn check_rrset(
    signed: &Signed<'_>,
    owner: &[u8],
    set: &RrSet,
    is_dnskey: bool,
    algorithms: &[u8],
    report: &mut Report,
) {
    report.rrsets_checked += 1;
    let empty = Vec::new();
    let candidates = signed
        .sigs
        .get(&(owner.to_vec(), set.rtype))
        .unwrap_or(&empty);
    for &alg in algorithms {
        let mut ok = false;
        let mut why = "no signature".to_string();
        for s in candidates.iter().filter(|s| s.algorithm() == alg) {
            report.signatures_checked += 1;
            match check_sig(
                s,
                owner,
                set,
                signed.keys,
                signed.apex,
                signed.now,
                is_dnskey,
            ) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => why = e,
            }
        }
        if !ok {
            report.errors.push(format!(
                "{} {}: no valid algorithm {alg} signature ({why})",
                display_name(owner),
                type_name(set.rtype)
            ));
        }
    }
}

/// The DNSKEY records that parse as keys.
fn dnskeys(records: &[&Record]) -> Vec<Dnskey> {
    records
        .iter()
        .filter_map(|r| {
            let rd = &r.rdata;
            (rd.len() > 4).then(|| Dnskey {
                flags: u16::from_be_bytes([rd[0], rd[1]]),
                protocol: rd[2],
                algorithm: rd[3],
                public_key: rd[4..].to_vec(),
            })
        })
        .collect()
}

/// The SEP keys whose signature over the DNSKEY RRset `set` verifies.
fn dnskey_signers(
    set: &RrSet,
    candidates: &[Rrsig<'_>],
    keys: &[Dnskey],
    apex: &[u8],
    now: u32,
) -> Vec<Dnskey> {
    let mut signers: Vec<Dnskey> = Vec::new();
    for s in candidates {
        let tag = s.key_tag();
        if check_sig(s, apex, set, keys, apex, now, true).is_ok() {
            for k in keys
                .iter()
                .filter(|k| k.is_sep() && k.key_tag() == tag && k.algorithm == s.algorithm())
            {
                if !signers.contains(k) {
                    signers.push(k.clone());
                }
            }
        }
    }
    signers
}

fn check_sig(
    s: &Rrsig<'_>,
    owner: &[u8],
    set: &RrSet,
    keys: &[Dnskey],
    apex: &[u8],
    now: u32,
    needs_sep: bool,
) -> Result<(), String> {
    let (orig_ttl, expiration, inception) = (s.original_ttl(), s.expiration(), s.inception());
    let tag = s.key_tag();
    if s.signer() != apex {
        return Err("signer name is not the apex".into());
    }
    let mut labels = rr::label_count(owner);
    if rr::is_wildcard(owner) {
        labels -= 1;
    }
    if usize::from(s.labels()) != labels {
        return Err(format!("labels field {} should be {labels}", s.labels()));
    }
    if crate::zone::dnssec::serial_lt(expiration, now) {
        return Err("expired".into());
    }
    if crate::zone::dnssec::serial_lt(now, inception) {
        return Err("not yet valid".into());
    }
    let Some(alg) = Algorithm::from_number(s.algorithm()) else {
        return Err(format!(
            "algorithm {} is not supported by this verifier",
            s.algorithm()
        ));
    };
    let mut with_ttl = set.clone();
    with_ttl.ttl = orig_ttl;
    let mut msg = s.signed_data().to_vec();
    append_rrset(&mut msg, owner, &with_ttl);
    let sig = s.signature();
    let mut tag_matched = false;
    for k in keys
        .iter()
        .filter(|k| k.algorithm == s.algorithm() && k.key_tag() == tag)
    {
        tag_matched = true;
        if needs_sep && !k.is_sep() {
            continue;
        }
        if super::verify(alg, &k.public_key, &msg, sig) {
            return Ok(());
        }
    }
    Err(if tag_matched {
        format!("signature by key {tag} does not verify")
    } else {
        format!("key {tag} is not in the DNSKEY RRset")
    })
}

fn check_nsec(zone: &Zone, by_type: &HashMap<(Vec<u8>, u16), Vec<&Record>>, report: &mut Report) {
    let chain: Vec<_> = zone
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Occluded)
        .collect();
    for (i, node) in chain.iter().enumerate() {
        let Some(recs) = by_type.get(&(node.owner.clone(), rtype::NSEC)) else {
            report
                .errors
                .push(format!("{}: no NSEC record", display_name(&node.owner)));
            continue;
        };
        let rd = &recs[0].rdata;
        let Some(next_len) = rr::name_len(rd) else {
            report
                .errors
                .push(format!("{}: malformed NSEC", display_name(&node.owner)));
            continue;
        };
        let want_next = &chain[(i + 1) % chain.len()].owner;
        if &rd[..next_len] != want_next.as_slice() {
            report.errors.push(format!(
                "{}: NSEC points at {}, the next name is {}",
                display_name(&node.owner),
                display_name(&rd[..next_len]),
                display_name(want_next)
            ));
        }
        let mut want: Vec<u16> = node.bitmap_types();
        want.extend(apex_dnssec_types(node, by_type));
        want.extend([rtype::NSEC, rtype::RRSIG]);
        check_bitmap(&node.owner, &rd[next_len..], want, report);
    }
    let expected: HashSet<&Vec<u8>> = chain.iter().map(|n| &n.owner).collect();
    for (owner, t) in by_type.keys() {
        if *t == rtype::NSEC && !expected.contains(owner) {
            report.errors.push(format!(
                "{}: NSEC at a name that is not in the chain",
                display_name(owner)
            ));
        }
    }
}

/// The DNSSEC types a signer adds at the apex that the bitmap must list.
fn apex_dnssec_types(
    node: &model::Node,
    by_type: &HashMap<(Vec<u8>, u16), Vec<&Record>>,
) -> Vec<u16> {
    if node.kind != NodeKind::Apex {
        return Vec::new();
    }
    [rtype::DNSKEY, rtype::NSEC3PARAM, rtype::CDS, rtype::CDNSKEY]
        .into_iter()
        .filter(|t| by_type.contains_key(&(node.owner.clone(), *t)))
        .collect()
}

fn check_bitmap(owner: &[u8], bitmap: &[u8], mut want: Vec<u16>, report: &mut Report) {
    want.sort_unstable();
    want.dedup();
    match bitmap_types(bitmap) {
        Some(got) if got == want => {}
        Some(got) => report.errors.push(format!(
            "{}: type bitmap {} should be {}",
            display_name(owner),
            got.iter()
                .map(|t| type_name(*t))
                .collect::<Vec<_>>()
                .join(" "),
            want.iter()
                .map(|t| type_name(*t))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        None => report
            .errors
            .push(format!("{}: malformed type bitmap", display_name(owner))),
    }
}

fn check_nsec3(
    zone: &Zone,
    by_type: &HashMap<(Vec<u8>, u16), Vec<&Record>>,
    param: &[u8],
    report: &mut Report,
) {
    if param.len() < 5 || param[0] != 1 {
        report
            .errors
            .push("NSEC3PARAM is malformed or not SHA-1".into());
        return;
    }
    let iterations = u16::from_be_bytes([param[2], param[3]]);
    let salt = &param[5..5 + usize::from(param[4]).min(param.len() - 5)];
    let apex = zone.origin.wire();
    // The NSEC3 records, by hash.
    let mut records: BTreeMap<Vec<u8>, &Record> = BTreeMap::new();
    let mut opt_out = None;
    for ((owner, t), recs) in by_type {
        if *t != rtype::NSEC3 {
            continue;
        }
        let first = rr::labels(owner)
            .first()
            .map(|l| l.to_vec())
            .unwrap_or_default();
        let Ok(hash) = data_encoding::BASE32HEX_NOPAD.decode(&first.to_ascii_uppercase()) else {
            report.errors.push(format!(
                "{}: NSEC3 owner is not a base32hex hash",
                display_name(owner)
            ));
            continue;
        };
        let rd = &recs[0].rdata;
        if rd.len() < 5
            || rd[0] != 1
            || u16::from_be_bytes([rd[2], rd[3]]) != iterations
            || rd.get(5..5 + usize::from(rd[4])) != Some(salt)
        {
            report.errors.push(format!(
                "{}: NSEC3 parameters differ from NSEC3PARAM",
                display_name(owner)
            ));
        }
        let this_oo = rd.get(1).is_some_and(|f| f & 1 == 1);
        if *opt_out.get_or_insert(this_oo) != this_oo {
            report.errors.push(format!(
                "{}: opt-out flag differs from the rest of the chain",
                display_name(owner)
            ));
        }
        records.insert(hash, recs[0]);
    }
    let opt_out = opt_out.unwrap_or(false);
    // The names that need an NSEC3, and what their bitmaps must say.
    let mut want: BTreeMap<Vec<u8>, (Vec<u8>, Vec<u16>)> = BTreeMap::new();
    let mut names: HashSet<Vec<u8>> = HashSet::new();
    for node in &zone.nodes {
        let types = match node.kind {
            NodeKind::Occluded => continue,
            NodeKind::Delegation { secure: false } if opt_out => continue,
            NodeKind::Delegation { secure } => {
                let mut t = node.bitmap_types();
                if secure {
                    t.push(rtype::RRSIG);
                }
                t
            }
            _ => {
                let mut t = node.bitmap_types();
                t.push(rtype::RRSIG);
                t.extend(apex_dnssec_types(node, by_type));
                t
            }
        };
        names.insert(node.owner.clone());
        want.insert(
            nsec3_hash(&node.owner, salt, iterations).to_vec(),
            (node.owner.clone(), types),
        );
    }
    let listed: Vec<Vec<u8>> = names.iter().cloned().collect();
    for name in listed {
        let mut p = rr::parent(&name);
        while let Some(anc) = p {
            if anc.len() <= apex.len() || names.contains(anc) {
                break;
            }
            names.insert(anc.to_vec());
            want.insert(
                nsec3_hash(anc, salt, iterations).to_vec(),
                (anc.to_vec(), Vec::new()),
            );
            p = rr::parent(anc);
        }
    }
    let hashes: Vec<&Vec<u8>> = records.keys().collect();
    for (hash, (name, types)) in &want {
        match records.get(hash) {
            None => report.errors.push(format!(
                "{} ({}): no NSEC3 record",
                display_name(name),
                nsec3_label(hash)
            )),
            Some(r) => {
                let rd = &r.rdata;
                let hl_at = 5 + usize::from(rd[4]);
                let hl = usize::from(rd[hl_at]);
                check_bitmap(name, &rd[hl_at + 1 + hl..], types.clone(), report);
            }
        }
    }
    for (i, hash) in hashes.iter().enumerate() {
        if !want.contains_key(*hash) {
            report.errors.push(format!(
                "NSEC3 {} matches no name of the zone",
                nsec3_label(hash)
            ));
        }
        let rd = &records[*hash].rdata;
        let hl_at = 5 + usize::from(rd[4]);
        let next = &rd[hl_at + 1..hl_at + 1 + usize::from(rd[hl_at])];
        let want_next = hashes[(i + 1) % hashes.len()];
        if next != want_next.as_slice() {
            report.errors.push(format!(
                "NSEC3 {}: next hash {} should be {}",
                nsec3_label(hash),
                nsec3_label(next),
                nsec3_label(want_next)
            ));
        }
    }
}
