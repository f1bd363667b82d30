//! A typed view of RRSIG RDATA (RFC 4034 §3.1), checked once so that its
//! accessors cannot panic: the one place that knows the field offsets.
//!
//! ```text
//! type covered (2) | algorithm (1) | labels (1) | original TTL (4)
//! expiration (4) | inception (4) | key tag (2) | signer's name | signature
//! ```
//!
//! The RDATA up to the signature ([`Rrsig::signed_data`]) is the start of
//! the data a signature covers (RFC 4034 §3.1.8.1).

/// Octets before the signer's name.
const FIXED: usize = 18;

/// RRSIG RDATA whose fixed fields and signer's name are all there; the
/// signature may be empty (a verifier says so, see [`Rrsig::signature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rrsig<'a> {
    rdata: &'a [u8],
    signer_end: usize,
}

impl<'a> Rrsig<'a> {
    /// The view, or None when the RDATA is too short for the fixed fields
    /// or the signer's name is not a whole uncompressed name.
    pub fn parse(rdata: &'a [u8]) -> Option<Rrsig<'a>> {
        let signer_len = super::rr::name_len(rdata.get(FIXED..)?)?;
        Some(Rrsig {
            rdata,
            signer_end: FIXED + signer_len,
        })
    }

    /// The type an RRSIG covers, read without checking the rest (for
    /// sorting signatures by RRset); None for RDATA shorter than 2 octets.
    pub fn covered(rdata: &[u8]) -> Option<u16> {
        Some(u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]))
    }

    fn be16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.rdata[at], self.rdata[at + 1]])
    }

    fn be32(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.rdata[at],
            self.rdata[at + 1],
            self.rdata[at + 2],
            self.rdata[at + 3],
        ])
    }

    pub fn type_covered(&self) -> u16 {
        self.be16(0)
    }

    /// The algorithm number (RFC 4034 Appendix A.1), known to dnsseal or not.
    pub fn algorithm(&self) -> u8 {
        self.rdata[2]
    }

    pub fn labels(&self) -> u8 {
        self.rdata[3]
    }

    pub fn original_ttl(&self) -> u32 {
        self.be32(4)
    }

    /// Seconds since the epoch, modulo 2^32 (compare with RFC 1982 serial
    /// arithmetic).
    pub fn expiration(&self) -> u32 {
        self.be32(8)
    }

    pub fn inception(&self) -> u32 {
        self.be32(12)
    }

    pub fn key_tag(&self) -> u16 {
        self.be16(16)
    }

    /// The signer's name, in wire form.
    pub fn signer(&self) -> &'a [u8] {
        &self.rdata[FIXED..self.signer_end]
    }

    pub fn signature(&self) -> &'a [u8] {
        &self.rdata[self.signer_end..]
    }

    /// The RDATA without the signature: what the signed data starts with.
    pub fn signed_data(&self) -> &'a [u8] {
        &self.rdata[..self.signer_end]
    }

    /// The whole RDATA.
    pub fn rdata(&self) -> &'a [u8] {
        self.rdata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RRSIG A 13 2 3600 exp=0x01020304 inc=0x05060708 tag 4660 example. sig
    fn sample() -> Vec<u8> {
        let mut v = vec![0, 1, 13, 2, 0, 0, 0x0e, 0x10];
        v.extend([1, 2, 3, 4, 5, 6, 7, 8, 0x12, 0x34]);
        v.extend(b"\x07example\x00");
        v.extend([0xAA, 0xBB, 0xCC]);
        v
    }

    #[test]
    fn fields_are_read_from_their_offsets() {
        let rd = sample();
        let s = Rrsig::parse(&rd).unwrap();
        assert_eq!(s.type_covered(), 1);
        assert_eq!(s.algorithm(), 13);
        assert_eq!(s.labels(), 2);
        assert_eq!(s.original_ttl(), 3600);
        assert_eq!(s.expiration(), 0x0102_0304);
        assert_eq!(s.inception(), 0x0506_0708);
        assert_eq!(s.key_tag(), 0x1234);
        assert_eq!(s.signer(), b"\x07example\x00");
        assert_eq!(s.signature(), &[0xAA, 0xBB, 0xCC]);
        assert_eq!(s.signed_data(), &rd[..27]);
        assert_eq!(s.rdata(), &rd[..]);
    }

    #[test]
    fn short_or_malformed_rdata_is_refused() {
        let rd = sample();
        // Every truncation inside the fixed part or the signer's name.
        for len in 0..27 {
            assert_eq!(Rrsig::parse(&rd[..len]), None, "length {len}");
        }
        // A label longer than 63 octets is not a name.
        let mut bad = rd.clone();
        bad[18] = 64;
        assert_eq!(Rrsig::parse(&bad), None);
    }

    #[test]
    fn an_empty_signature_parses_and_shows_as_empty() {
        let rd = sample();
        let s = Rrsig::parse(&rd[..27]).unwrap();
        assert!(s.signature().is_empty());
        assert_eq!(s.signer(), b"\x07example\x00");
    }

    #[test]
    fn covered_needs_only_two_octets() {
        assert_eq!(Rrsig::covered(&[0, 48]), Some(48));
        assert_eq!(Rrsig::covered(&[0]), None);
        assert_eq!(Rrsig::covered(&[]), None);
    }
}
