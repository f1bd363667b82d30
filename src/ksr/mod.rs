//! Offline KSK: the exchange of a Key Signing Request (KSR) and a Signed
//! Key Response (SKR) in Knot DNS's text format, the offline box's checks
//! of a request before it signs, and the online box's checks of a
//! response before it imports it.
//!
//! Pure library code, no token and no keystore:
//! - [`format`] reads both files (through the zone parser,
//!   [`crate::zone::parse`]) and writes them in Knot's layout;
//! - [`check`] holds the checks of a request against an
//!   [`check::OfflinePolicy`] and of a response against its request and
//!   the pinned KSKs (signatures verified with [`crate::sign::verify`]);
//! - [`schedule`] plans an offline-KSK zone's ZSKs and cuts the plan into
//!   request periods;
//! - [`respond`] makes the response's periods and signs them through the
//!   signing engine, and finds the period of a stored response in force.
//!
//! [`crate::keys::offline`] carries these out with the token and the
//! keystore (`ksr create`, `ksr sign`, `skr import`, `policy run`, `sign`).

pub mod check;
pub mod format;
pub mod respond;
pub mod schedule;

use crate::clock::Timestamp;
use crate::zone::dnskey::Dnskey;
use crate::zone::ZoneName;

pub use check::{check_request, check_response, OfflinePolicy, Refusal};
pub use format::{
    parse_request, parse_request_text, parse_response, parse_response_text, read_text,
    write_request, write_response, KsrError,
};

/// A Key Signing Request: the ZSKs the online box wants published, per
/// period (from the period's time to the next period's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub zone: ZoneName,
    pub periods: Vec<RequestPeriod>,
}

/// One period of a request: the DNSKEY RRset of ZSKs valid from `time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPeriod {
    pub time: Timestamp,
    /// TTL of the DNSKEY RRset.
    pub ttl: u32,
    /// The ZSKs, in file order.
    pub dnskeys: Vec<Dnskey>,
}

/// A Signed Key Response: per period, the full DNSKEY RRset (ZSKs and
/// KSKs), the CDS/CDNSKEY sets and the KSK signatures over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub zone: ZoneName,
    pub periods: Vec<ResponsePeriod>,
}

/// One period of a response, valid from `time` to the next period's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePeriod {
    pub time: Timestamp,
    pub dnskey_ttl: u32,
    /// ZSKs and KSKs, in file order.
    pub dnskeys: Vec<Dnskey>,
    /// TTL of the CDS and CDNSKEY RRsets (Knot writes 0).
    pub cds_ttl: u32,
    /// CDNSKEY RDATA (wire form), in file order.
    pub cdnskey: Vec<Vec<u8>>,
    /// CDS RDATA (wire form), in file order.
    pub cds: Vec<Vec<u8>>,
    /// RRSIG RDATA (wire form) over DNSKEY, CDS and CDNSKEY, in file order;
    /// [`crate::zone::rrsig::Rrsig`] gives the type covered.
    pub rrsigs: Vec<Vec<u8>>,
}

/// The SHA-256 of a request file as witnesses read it aloud: 64 hex
/// digits in groups of four.
pub fn spoken_digest(file: &[u8]) -> String {
    use sha2::Digest as _;
    let hex = hex::encode(sha2::Sha256::digest(file));
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A DNSKEY from its wire RDATA (flags, protocol, algorithm, key).
pub fn dnskey_from_rdata(rdata: &[u8]) -> Option<Dnskey> {
    let (head, key) = rdata.split_at_checked(4)?;
    Some(Dnskey {
        flags: u16::from_be_bytes([head[0], head[1]]),
        protocol: head[2],
        algorithm: head[3],
        public_key: key.to_vec(),
    })
}

#[cfg(test)]
mod tests;
