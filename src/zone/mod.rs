//! DNS data: master files read and written (every record type BIND 9.18
//! loads, [`codec`] for those the `domain` crate lacks), canonical form and
//! order, RRsets and nodes, NSEC/NSEC3 chains, names, DNSSEC algorithms,
//! DNSKEY RDATA, key tags and DS digests.
//!
//! This module knows nothing of keys in tokens or key states: it turns zone
//! files into canonical data and public key material into the records a
//! zone and its parent publish.
//!
//! References: RFC 4034 (DNSKEY, DS, key tag in Appendix B), RFC 3110 (RSA
//! public key encoding), RFC 5702 (RSA/SHA-2), RFC 6605 (ECDSA), RFC 8080
//! (Ed25519), RFC 4509 and RFC 6605 (SHA-256/SHA-384 DS digests).

pub mod algorithm;
pub mod codec;
pub mod dnskey;
pub mod dnssec;
pub mod model;
pub mod name;
pub mod parse;
pub mod present;
pub mod rr;
pub mod rrsig;

pub use algorithm::{Algorithm, DigestType};
pub use dnskey::{key_tag, Dnskey, DnskeyError, Ds};
pub use name::{NameError, ZoneName};

/// Where a step over a whole zone (building it, making its chain) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// On the calling thread: the least memory, since what the step frees
    /// (a record's RDATA) is reused for what it makes (an RRset's).
    OneThread,
    /// On every core: faster, and more memory at the peak, since each
    /// thread allocates from an allocator arena of its own.
    AllCores,
}
