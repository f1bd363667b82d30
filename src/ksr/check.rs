//! The checks on both sides of the exchange, as pure functions.
//!
//! [`check_request`]: what the offline box checks in a KSR before it signs
//! (Knot's `sign-ksr` checks none of it): periods present, in order,
//! without long gaps, not in the past and within a horizon; only ZSKs
//! (flags 256, protocol 3) of allowed algorithms and sizes, TTLs in
//! bounds, no duplicates, a bounded number per period.
//!
//! [`check_response`]: what the online box checks in an SKR before it
//! imports it: it answers the request (same zone, every request period
//! present; periods Knot adds between request periods carry the
//! previous request period's ZSKs), each period's DNSKEY set is the
//! requested ZSKs plus KSKs (pinned ones, or the same in every period),
//! and every RRSIG over DNSKEY, CDS and CDNSKEY verifies with a KSK of
//! the period and is valid from the period's time until the next period's
//! time plus the TTL (so a removed refresh period is refused when it
//! leaves signatures expiring in caches); each KSK algorithm signs the
//! DNSKEY RRset; CDS and CDNSKEY stand for the period's KSKs.

use std::fmt;

use super::{Request, Response, ResponsePeriod};
use crate::clock::Timestamp;
use crate::sign::engine::append_rrset;
use crate::zone::algorithm::{Algorithm, DigestType};
use crate::zone::dnskey::{Dnskey, FLAG_SEP, FLAG_ZONE, PROTOCOL};
use crate::zone::model::{Rdatas, RrSet};
use crate::zone::rr::{rtype, Source};
use crate::zone::rrsig::Rrsig;

/// What the offline box accepts in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflinePolicy {
    /// How far (seconds) a period may lie before `now` (the request was
    /// made some time before it is signed).
    pub past_grace: u64,
    /// Latest last period, in seconds after `now`.
    pub horizon: u64,
    /// Longest time between two periods, in seconds.
    pub max_period: u64,
    pub algorithms: Vec<Algorithm>,
    /// RSA modulus bits allowed, inclusive.
    pub rsa_bits: (u32, u32),
    /// DNSKEY TTL allowed, inclusive.
    pub ttl: (u32, u32),
    pub max_keys_per_period: usize,
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        OfflinePolicy {
            past_grace: DAY,
            horizon: 400 * DAY,
            max_period: 45 * DAY,
            algorithms: Algorithm::ALL.to_vec(),
            rsa_bits: (2048, 4096),
            ttl: (60, 2 * DAY as u32),
            max_keys_per_period: 4,
        }
    }
}

impl OfflinePolicy {
    /// What the offline box accepts for a zone under `p`: its algorithm,
    /// its ZSK size (RSA), DNSKEY TTLs up to its own, periods no longer
    /// than a ZSK lifetime (45 days when ZSKs are never rolled), at most
    /// 400 days ahead.
    pub fn from_policy(p: &crate::policy::Policy) -> Result<OfflinePolicy, String> {
        const DAY: u64 = 86_400;
        let algorithm = p.algorithm().map_err(|e| e.to_string())?;
        let life = u64::try_from(p.zsk_lifetime.secs()).unwrap_or(0);
        let ttl = u32::try_from(p.dnskey_ttl.secs()).unwrap_or(u32::MAX);
        Ok(OfflinePolicy {
            algorithms: vec![algorithm],
            rsa_bits: (p.zsk_bits, p.zsk_bits),
            ttl: (1, ttl),
            max_period: if life == 0 { 45 * DAY } else { life },
            ..OfflinePolicy::default()
        })
    }
}

/// One reason to refuse, with the period and key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub period: Option<Timestamp>,
    pub key_tag: Option<u16>,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.period {
            write!(f, "period {} ({t})", t.unix())?;
            f.write_str(if self.key_tag.is_some() { ", " } else { ": " })?;
        }
        if let Some(k) = self.key_tag {
            write!(f, "key {k}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn refusal(period: Timestamp, key_tag: Option<u16>, message: impl Into<String>) -> Refusal {
    Refusal {
        period: Some(period),
        key_tag,
        message: message.into(),
    }
}

fn done(refusals: Vec<Refusal>) -> Result<(), Vec<Refusal>> {
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(refusals)
    }
}

/// The offline box's checks of a request, at `now`.
pub fn check_request(
    request: &Request,
    policy: &OfflinePolicy,
    now: Timestamp,
) -> Result<(), Vec<Refusal>> {
    let mut out = Vec::new();
    let Some(last) = request.periods.last() else {
        return Err(vec![Refusal {
            period: None,
            key_tag: None,
            message: "the request has no period".into(),
        }]);
    };
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    if last.time.unix() > now.unix().saturating_add(secs(policy.horizon)) {
        out.push(refusal(
            last.time,
            None,
            format!("beyond the horizon of {} s after {now}", policy.horizon),
        ));
    }
    let mut previous: Option<Timestamp> = None;
    for p in &request.periods {
        let t = p.time;
        if t.unix() < now.unix().saturating_sub(secs(policy.past_grace)) {
            out.push(refusal(t, None, format!("in the past (now {now})")));
        }
        if let Some(prev) = previous {
            if t <= prev {
                out.push(refusal(
                    t,
                    None,
                    format!("not after the previous period {}", prev.unix()),
                ));
            } else if t.unix() - prev.unix() > secs(policy.max_period) {
                out.push(refusal(
                    t,
                    None,
                    format!(
                        "{} s after the previous period, more than {}",
                        t.unix() - prev.unix(),
                        policy.max_period
                    ),
                ));
            }
        }
        previous = Some(t);
        if p.dnskeys.is_empty() {
            out.push(refusal(t, None, "no keys"));
        }
        if p.dnskeys.len() > policy.max_keys_per_period {
            out.push(refusal(
                t,
                None,
                format!(
                    "{} keys, more than {}",
                    p.dnskeys.len(),
                    policy.max_keys_per_period
                ),
            ));
        }
        if !(policy.ttl.0..=policy.ttl.1).contains(&p.ttl) {
            out.push(refusal(
                t,
                None,
                format!("TTL {} outside {}..{}", p.ttl, policy.ttl.0, policy.ttl.1),
            ));
        }
        for (i, k) in p.dnskeys.iter().enumerate() {
            if p.dnskeys[..i].contains(k) {
                out.push(refusal(t, Some(k.key_tag()), "listed twice"));
            }
            check_zsk(k, policy)
                .into_iter()
                .for_each(|m| out.push(refusal(t, Some(k.key_tag()), m)));
        }
    }
    done(out)
}

/// What is wrong with one requested ZSK.
fn check_zsk(k: &Dnskey, policy: &OfflinePolicy) -> Vec<String> {
    let mut out = Vec::new();
    if k.flags != FLAG_ZONE {
        out.push(format!(
            "flags {}, a request holds ZSKs only (flags 256: no SEP, no REVOKE)",
            k.flags
        ));
    }
    if k.protocol != PROTOCOL {
        out.push(format!("protocol {}, not 3", k.protocol));
    }
    let Some(alg) = Algorithm::from_number(k.algorithm).filter(|a| policy.algorithms.contains(a))
    else {
        out.push(format!("algorithm {} is not allowed", k.algorithm));
        return out;
    };
    match alg.public_key_len() {
        Some(len) if k.public_key.len() != len => {
            out.push(format!(
                "{alg} public key of {} octets, not {len}",
                k.public_key.len()
            ));
        }
        Some(_) => {}
        None => {
            let bits = k.bits();
            if !(policy.rsa_bits.0..=policy.rsa_bits.1).contains(&bits) {
                out.push(format!(
                    "RSA modulus of {bits} bits outside {}..{}",
                    policy.rsa_bits.0, policy.rsa_bits.1
                ));
            }
        }
    }
    out
}

/// The online box's checks of a response to `request`; with `ksk_pins`
/// empty, the KSKs must be the same in every period.
pub fn check_response(
    response: &Response,
    request: &Request,
    ksk_pins: &[Dnskey],
) -> Result<(), Vec<Refusal>> {
    let mut out = Vec::new();
    if response.zone != request.zone {
        return Err(vec![Refusal {
            period: None,
            key_tag: None,
            message: format!(
                "response for {}, request for {}",
                response.zone, request.zone
            ),
        }]);
    }
    for q in &request.periods {
        if !response.periods.iter().any(|p| p.time == q.time) {
            out.push(refusal(
                q.time,
                None,
                "requested period missing from the response",
            ));
        }
    }
    let mut first_ksks: Option<Vec<&Dnskey>> = None;
    let mut previous: Option<Timestamp> = None;
    for (i, p) in response.periods.iter().enumerate() {
        if previous.is_some_and(|t| p.time <= t) {
            out.push(refusal(p.time, None, "not after the previous period"));
        }
        previous = Some(p.time);
        // The request period in force at this time.
        let Some(q) = request.periods.iter().rev().find(|q| q.time <= p.time) else {
            out.push(refusal(p.time, None, "before the first requested period"));
            continue;
        };
        if request.periods.last().is_some_and(|l| p.time > l.time) {
            out.push(refusal(p.time, None, "after the last requested period"));
        }
        let ksks: Vec<&Dnskey> = p
            .dnskeys
            .iter()
            .filter(|k| k.flags == FLAG_ZONE | FLAG_SEP)
            .collect();
        for k in p.dnskeys.iter().filter(|k| k.flags != FLAG_ZONE | FLAG_SEP) {
            if !q.dnskeys.contains(k) {
                out.push(refusal(
                    p.time,
                    Some(k.key_tag()),
                    "DNSKEY not in the request and not a KSK",
                ));
            }
        }
        for k in &q.dnskeys {
            if !p.dnskeys.contains(k) {
                out.push(refusal(p.time, Some(k.key_tag()), "requested ZSK missing"));
            }
        }
        if ksks.is_empty() {
            out.push(refusal(p.time, None, "no KSK (flags 257)"));
        }
        if ksk_pins.is_empty() {
            let first = first_ksks.get_or_insert_with(|| ksks.clone());
            if *first != ksks {
                out.push(refusal(p.time, None, "KSKs differ from the first period's"));
            }
        } else {
            for k in ksks.iter().filter(|k| !ksk_pins.contains(k)) {
                out.push(refusal(p.time, Some(k.key_tag()), "KSK is not pinned"));
            }
        }
        check_cds(p, &ksks, response, &mut out);
        let next = response.periods.get(i + 1).map(|n| n.time);
        check_signatures(p, &ksks, response, next, &mut out);
    }
    done(out)
}

/// CDNSKEY and CDS of a period stand for its KSKs (or are the RFC 8078
/// delete forms): the parent takes its DS from them.
fn check_cds(p: &ResponsePeriod, ksks: &[&Dnskey], response: &Response, out: &mut Vec<Refusal>) {
    const DELETE_CDNSKEY: [u8; 5] = [0, 0, 3, 0, 0];
    const DELETE_CDS: [u8; 5] = [0, 0, 0, 0, 0];
    for c in &p.cdnskey {
        if c[..] != DELETE_CDNSKEY && !ksks.iter().any(|k| k.rdata() == *c) {
            out.push(refusal(
                p.time,
                None,
                "CDNSKEY is not one of the period's KSKs",
            ));
        }
    }
    let digests = [DigestType::Sha1, DigestType::Sha256, DigestType::Sha384];
    for c in &p.cds {
        let matches = |k: &&&Dnskey| {
            digests
                .iter()
                .any(|d| k.ds(&response.zone, *d).rdata() == *c)
        };
        if c[..] != DELETE_CDS && !ksks.iter().any(|k| matches(&k)) {
            let tag = c.get(..2).map(|t| u16::from_be_bytes([t[0], t[1]]));
            out.push(refusal(
                p.time,
                tag,
                "CDS is not a digest of one of the period's KSKs",
            ));
        }
    }
}

/// The RRSIGs of one period: each verifies with a KSK of the period, is
/// valid at its time and until the next period's time plus the RRset's
/// TTL; each KSK algorithm signs the DNSKEY RRset.
fn check_signatures(
    p: &ResponsePeriod,
    ksks: &[&Dnskey],
    response: &Response,
    next: Option<Timestamp>,
    out: &mut Vec<Refusal>,
) {
    let apex = response.zone.wire();
    let keys: Vec<Vec<u8>> = p.dnskeys.iter().map(Dnskey::rdata).collect();
    let set = |t: u16, ttl: u32, items: &[Vec<u8>]| {
        let mut v: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        v.sort();
        v.dedup();
        RrSet {
            rtype: t,
            ttl,
            rdatas: Rdatas::from_sorted(v),
            source: Source::default(),
            rrsigs: Vec::new(),
        }
    };
    let sets = [
        set(rtype::DNSKEY, p.dnskey_ttl, &keys),
        set(rtype::CDS, p.cds_ttl, &p.cds),
        set(rtype::CDNSKEY, p.cds_ttl, &p.cdnskey),
    ];
    let mut signed_by: Vec<(u16, u8)> = Vec::new();
    for rdata in &p.rrsigs {
        let Some(s) = Rrsig::parse(rdata) else {
            out.push(refusal(p.time, None, "RRSIG RDATA malformed"));
            continue;
        };
        let tag = Some(s.key_tag());
        let Some(target) = sets.iter().find(|x| x.rtype == s.type_covered()) else {
            continue;
        };
        match verify_one(&s, target, apex, ksks, p.time) {
            Ok(()) => {
                signed_by.push((target.rtype, s.algorithm()));
                // Served until the next period, then cached for the TTL.
                let needed = next.map(|n| n.unix().saturating_add(i64::from(target.ttl)));
                if let Some(needed) = needed.filter(|n| i64::from(s.expiration()) < *n) {
                    out.push(refusal(
                        p.time,
                        tag,
                        format!(
                        "RRSIG {} expires at {}, before the next period plus the TTL ({needed})",
                        crate::zone::model::type_name(target.rtype),
                        s.expiration()
                    ),
                    ));
                }
            }
            Err(m) => out.push(refusal(
                p.time,
                tag,
                format!("RRSIG {}: {m}", crate::zone::model::type_name(target.rtype)),
            )),
        }
    }
    let mut algs: Vec<u8> = ksks.iter().map(|k| k.algorithm).collect();
    algs.dedup();
    for a in algs {
        if !signed_by.contains(&(rtype::DNSKEY, a)) {
            out.push(refusal(
                p.time,
                None,
                format!("DNSKEY RRset has no valid signature of algorithm {a}"),
            ));
        }
    }
    for s in &sets[1..] {
        if !s.rdatas.is_empty() && !signed_by.iter().any(|(t, _)| *t == s.rtype) {
            out.push(refusal(
                p.time,
                None,
                format!(
                    "{} RRset has no valid signature",
                    crate::zone::model::type_name(s.rtype)
                ),
            ));
        }
    }
}

/// One RRSIG over `set` at the apex: signer, labels, original TTL,
/// validity at `time` and the signature by one of `ksks`.
fn verify_one(
    s: &Rrsig<'_>,
    set: &RrSet,
    apex: &[u8],
    ksks: &[&Dnskey],
    time: Timestamp,
) -> Result<(), String> {
    if set.rdatas.is_empty() {
        return Err("covers an RRset the period does not have".into());
    }
    if s.signer() != apex {
        return Err("signer is not the zone".into());
    }
    if usize::from(s.labels()) != crate::zone::rr::label_count(apex) {
        return Err(format!("labels field {} is wrong", s.labels()));
    }
    if s.original_ttl() != set.ttl {
        return Err(format!(
            "original TTL {} is not the RRset's TTL {}",
            s.original_ttl(),
            set.ttl
        ));
    }
    let (inception, expiration) = (i64::from(s.inception()), i64::from(s.expiration()));
    if !(inception <= time.unix() && time.unix() < expiration) {
        return Err(format!(
            "not valid at the period's time (inception {inception}, expiration {expiration})"
        ));
    }
    let Some(alg) = Algorithm::from_number(s.algorithm()) else {
        return Err(format!("algorithm {} is not supported", s.algorithm()));
    };
    let mut msg = s.signed_data().to_vec();
    append_rrset(&mut msg, apex, set);
    let candidates: Vec<&&Dnskey> = ksks
        .iter()
        .filter(|k| k.algorithm == s.algorithm() && k.key_tag() == s.key_tag())
        .collect();
    if candidates.is_empty() {
        return Err("made by no KSK of the period".into());
    }
    if candidates
        .iter()
        .any(|k| crate::sign::verify(alg, &k.public_key, &msg, s.signature()))
    {
        Ok(())
    } else {
        Err("signature does not verify".into())
    }
}
