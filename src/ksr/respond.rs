//! The offline box's answer to a checked request: the periods of the
//! response (the requested ones, and refresh periods so that no
//! signature runs out before the next period starts), each with the full
//! DNSKEY RRset, the CDS/CDNSKEY RRsets and their KSK signatures made
//! through the signing engine (every signature verified on the host).
//!
//! And the online box's use of a stored response: the period in force at
//! a time ([`period_at`]) and the time the response runs out
//! ([`response_end`]).

use super::{Request, Response, ResponsePeriod};
use crate::clock::Timestamp;
use crate::sign::engine::{Engine, Job, SignError, Signer, SigningKey, Validity};
use crate::zone::dnskey::Dnskey;
use crate::zone::model::{Rdatas, RrSet};
use crate::zone::rr::{rtype, Source};
use crate::zone::rrsig::Rrsig;
use crate::zone::ZoneName;

/// Signatures start this long before their period, for clocks behind
/// (Knot does the same).
pub const INCEPTION_BEFORE: i64 = 5_400;

/// What the KSK side adds to every period.
pub struct Answer<'a> {
    pub zone: &'a ZoneName,
    /// The KSKs in the DNSKEY RRset.
    pub ksks: &'a [Dnskey],
    /// The KSKs that sign, as the engine's keys (index = signer key).
    pub signers: &'a [SigningKey],
    pub cds: &'a [Vec<u8>],
    pub cdnskey: &'a [Vec<u8>],
    /// Signature validity and refresh, in seconds: a period's signatures
    /// last `validity`; a refresh period starts `validity - refresh` after
    /// the one before.
    pub validity: i64,
    pub refresh: i64,
}

/// The times of the response's periods, with the request period each
/// falls in: every requested time, and one every `validity - refresh`
/// within a requested period longer than that.
pub fn period_times(request: &Request, validity: i64, refresh: i64) -> Vec<(Timestamp, usize)> {
    let step = (validity - refresh).max(1);
    let mut out = Vec::new();
    for (i, p) in request.periods.iter().enumerate() {
        let end = request.periods.get(i + 1).map(|n| n.time.unix());
        let mut t = p.time.unix();
        out.push((p.time, i));
        while let Some(end) = end {
            t += step;
            if t >= end {
                break;
            }
            out.push((Timestamp::from_unix(t), i));
        }
    }
    out
}

/// Signs the response to `request` with `signer` (whose key `i` is
/// `answer.signers[i]`).
pub fn respond(
    request: &Request,
    answer: &Answer<'_>,
    signer: &dyn Signer,
) -> Result<Response, SignError> {
    let owner = answer.zone.wire();
    let mut periods = Vec::new();
    for (time, i) in period_times(request, answer.validity, answer.refresh) {
        let q = &request.periods[i];
        let mut dnskeys: Vec<Dnskey> = q.dnskeys.clone();
        dnskeys.extend(answer.ksks.iter().cloned());
        let set = |rtype: u16, rdatas: Vec<Vec<u8>>| -> RrSet {
            let mut rdatas = rdatas;
            rdatas.sort();
            rdatas.dedup();
            RrSet {
                rtype,
                ttl: q.ttl,
                rdatas: Rdatas::from_sorted(rdatas.iter().map(Vec::as_slice)),
                source: Source::default(),
                rrsigs: Vec::new(),
            }
        };
        let mut sets = vec![set(
            rtype::DNSKEY,
            dnskeys.iter().map(Dnskey::rdata).collect(),
        )];
        if !answer.cds.is_empty() {
            sets.push(set(rtype::CDS, answer.cds.to_vec()));
        }
        if !answer.cdnskey.is_empty() {
            sets.push(set(rtype::CDNSKEY, answer.cdnskey.to_vec()));
        }
        let jobs: Vec<Job<'_>> = sets
            .iter()
            .flat_map(|s| (0..answer.signers.len()).map(move |key| Job { owner, set: s, key }))
            .collect();
        let no_cancel = crate::interrupt::Cancel::default();
        let engine = Engine {
            keys: answer.signers,
            signer_name: owner,
            validity: Validity {
                inception: rrsig_time(time.unix() - INCEPTION_BEFORE),
                expiration: rrsig_time(time.unix() + answer.validity),
                jitter: 0,
            },
            verify: true,
            cancel: &no_cancel,
            progress: None,
        };
        let rrsigs = engine.run(&jobs, signer)?;
        periods.push(ResponsePeriod {
            time,
            dnskey_ttl: q.ttl,
            dnskeys,
            cds_ttl: q.ttl,
            cdnskey: answer.cdnskey.to_vec(),
            cds: answer.cds.to_vec(),
            rrsigs,
        });
    }
    Ok(Response {
        zone: request.zone.clone(),
        periods,
    })
}

/// RRSIG times are 32-bit serial numbers (RFC 4034 §3.1.5).
fn rrsig_time(unix: i64) -> u32 {
    unix as u32
}

/// When a response runs out: the earliest expiration of the DNSKEY
/// signatures of its last period.
pub fn response_end(response: &Response) -> Option<Timestamp> {
    let last = response.periods.last()?;
    last.rrsigs
        .iter()
        .filter_map(|r| Rrsig::parse(r))
        .filter(|r| r.type_covered() == rtype::DNSKEY)
        .map(|r| Timestamp::from_unix(i64::from(r.expiration())))
        .min()
}

/// Where `now` stands in a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InForce<'r> {
    /// The period in force, and when the response runs out.
    Period(&'r ResponsePeriod, Timestamp),
    /// The first period starts later.
    NotYet(Timestamp),
    /// The response ran out at this time.
    Over(Timestamp),
}

/// The period of `response` in force at `now`.
pub fn period_at(response: &Response, now: Timestamp) -> InForce<'_> {
    let end = response_end(response).unwrap_or(now);
    match response.periods.iter().rev().find(|p| p.time <= now) {
        _ if now >= end => InForce::Over(end),
        Some(p) => InForce::Period(p, end),
        None => InForce::NotYet(response.periods.first().map_or(now, |p| p.time)),
    }
}

/// A new response over a stored one: the stored periods before the new
/// one's first, then the new one's.
pub fn merge(stored: Option<Response>, new: Response) -> Response {
    let first = new.periods.first().map(|p| p.time);
    let mut periods: Vec<ResponsePeriod> = match (stored, first) {
        (Some(s), Some(first)) if s.zone == new.zone => {
            s.periods.into_iter().filter(|p| p.time < first).collect()
        }
        _ => Vec::new(),
    };
    periods.extend(new.periods);
    Response {
        zone: new.zone,
        periods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ksr::RequestPeriod;

    const DAY: i64 = 86_400;

    fn at(t: i64) -> Timestamp {
        Timestamp::from_unix(t)
    }

    fn request(times: &[i64]) -> Request {
        Request {
            zone: "example.".parse().expect("zone"),
            periods: times
                .iter()
                .map(|&t| RequestPeriod {
                    time: at(t),
                    ttl: 3600,
                    dnskeys: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn refresh_periods_fill_requested_periods_longer_than_validity_less_refresh() {
        let t0 = 1_800_000_000;
        // 30 days, then 1 day, then the last: 14-day signatures refreshed
        // 5 days before they expire (a period every 9 days).
        let r = request(&[t0, t0 + 30 * DAY, t0 + 31 * DAY]);
        let times = period_times(&r, 14 * DAY, 5 * DAY);
        let got: Vec<(i64, usize)> = times.iter().map(|(t, i)| (t.unix() - t0, *i)).collect();
        assert_eq!(
            got,
            vec![
                (0, 0),
                (9 * DAY, 0),
                (18 * DAY, 0),
                (27 * DAY, 0),
                (30 * DAY, 1),
                (31 * DAY, 2)
            ]
        );
    }

    fn period(t: i64, expiration: u32) -> ResponsePeriod {
        // RRSIG RDATA: type covered DNSKEY, alg 13, 2 labels, TTL, times,
        // key tag, signer "example.", a signature.
        let mut rrsig = Vec::new();
        rrsig.extend_from_slice(&rtype::DNSKEY.to_be_bytes());
        rrsig.extend_from_slice(&[13, 1]);
        rrsig.extend_from_slice(&3600u32.to_be_bytes());
        rrsig.extend_from_slice(&expiration.to_be_bytes());
        rrsig.extend_from_slice(&(t as u32).to_be_bytes());
        rrsig.extend_from_slice(&1234u16.to_be_bytes());
        rrsig.extend_from_slice(b"\x07example\x00");
        rrsig.extend_from_slice(&[0; 64]);
        ResponsePeriod {
            time: at(t),
            dnskey_ttl: 3600,
            dnskeys: Vec::new(),
            cds_ttl: 3600,
            cdnskey: Vec::new(),
            cds: Vec::new(),
            rrsigs: vec![rrsig],
        }
    }

    fn response(periods: Vec<ResponsePeriod>) -> Response {
        Response {
            zone: "example.".parse().expect("zone"),
            periods,
        }
    }

    #[test]
    fn the_period_in_force_and_the_end_of_the_response() {
        let t0 = 1_800_000_000;
        let r = response(vec![
            period(t0, (t0 + 14 * DAY) as u32),
            period(t0 + 9 * DAY, (t0 + 23 * DAY) as u32),
        ]);
        assert_eq!(response_end(&r), Some(at(t0 + 23 * DAY)));
        assert_eq!(period_at(&r, at(t0 - 1)), InForce::NotYet(at(t0)));
        match period_at(&r, at(t0 + DAY)) {
            InForce::Period(p, end) => {
                assert_eq!((p.time, end), (at(t0), at(t0 + 23 * DAY)));
            }
            other => panic!("{other:?}"),
        }
        match period_at(&r, at(t0 + 10 * DAY)) {
            InForce::Period(p, _) => assert_eq!(p.time, at(t0 + 9 * DAY)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            period_at(&r, at(t0 + 23 * DAY)),
            InForce::Over(at(t0 + 23 * DAY))
        );
    }

    #[test]
    fn a_new_response_replaces_the_stored_periods_from_its_first() {
        let t0 = 1_800_000_000;
        let stored = response(vec![
            period(t0, 0),
            period(t0 + DAY, 0),
            period(t0 + 2 * DAY, 0),
        ]);
        let new = response(vec![period(t0 + DAY, 1), period(t0 + 3 * DAY, 1)]);
        let merged = merge(Some(stored), new.clone());
        let times: Vec<i64> = merged.periods.iter().map(|p| p.time.unix() - t0).collect();
        assert_eq!(times, vec![0, DAY, 3 * DAY]);
        assert_eq!(merged.periods[1], new.periods[0]);
        assert_eq!(merge(None, new.clone()), new);
    }
}
