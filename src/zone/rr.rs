//! Resource records in canonical form, and canonical name order.
//!
//! Every record dnsseal keeps is in the RFC 4034 §6.2 canonical form: the
//! owner name uncompressed and lowercased, the RDATA uncompressed with the
//! embedded names lowercased for the types listed in RFC 4034 §6.2 as
//! amended by RFC 6840 §5.1 (the parser's canonical composer knows which).
//! Names sort in the RFC 4034 §6.1 canonical order through [`order_key`].

use std::cmp::Ordering;

/// RR type numbers dnsseal treats specially.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const AAAA: u16 = 28;
    pub const DNAME: u16 = 39;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
}

/// The class IN.
pub const CLASS_IN: u16 = 1;

/// One record, canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Owner name in uncompressed wire form, lowercased.
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub ttl: u32,
    /// RDATA in canonical wire form.
    pub rdata: Vec<u8>,
    /// Where the record came from (file index, line), for messages.
    pub origin: Source,
}

/// A place in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Source {
    pub file: u16,
    pub line: u32,
}

/// The labels of a wire name, leftmost first (without the root label).
pub fn labels(name: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < name.len() {
        let len = usize::from(name[i]);
        if len == 0 {
            break;
        }
        let end = (i + 1 + len).min(name.len());
        out.push(&name[i + 1..end]);
        i = end;
    }
    out
}

/// Length of the uncompressed wire name at the start of `wire` (labels of
/// at most 63 octets, ending in the root label); None if it is not one.
pub fn name_len(wire: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = usize::from(*wire.get(i)?);
        if len > 63 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            return (i <= wire.len()).then_some(i);
        }
    }
}

/// Number of labels (root not counted).
pub fn label_count(name: &[u8]) -> usize {
    labels(name).len()
}

/// Whether `name` is `ancestor` or below it.
pub fn is_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    name.len() >= ancestor.len()
        && name.ends_with(ancestor)
        && (name.len() == ancestor.len() || is_label_boundary(name, name.len() - ancestor.len()))
}

/// Whether `name` is strictly below `ancestor`.
pub fn is_below(name: &[u8], ancestor: &[u8]) -> bool {
    name.len() > ancestor.len() && is_at_or_below(name, ancestor)
}

fn is_label_boundary(name: &[u8], pos: usize) -> bool {
    let mut i = 0;
    while i < pos {
        i += 1 + usize::from(name[i]);
    }
    i == pos
}

/// The parent of a name (None for the root).
pub fn parent(name: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*name.first()?);
    if len == 0 {
        return None;
    }
    name.get(1 + len..)
}

/// A byte string whose byte-wise order is the canonical order of names
/// (RFC 4034 §6.1): labels from the right, each compared as octets with
/// the shorter first. A zero octet in a label is escaped as 0x00 0x01 and
/// each label ends with 0x00 0x00.
pub fn order_key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 8);
    for label in labels(name).iter().rev() {
        for &b in *label {
            if b == 0 {
                key.extend_from_slice(&[0, 1]);
            } else {
                key.push(b);
            }
        }
        key.extend_from_slice(&[0, 0]);
    }
    key
}

/// Canonical order of two names (RFC 4034 §6.1: label by label from the
/// right, each as an octet string; names are in canonical lowercase).
/// Allocation-free: it runs millions of times for a big zone (sorting,
/// merging, searching).
pub fn cmp_names(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    // Label start offsets; a name of at most 255 octets has at most 127
    // labels, and longer (malformed) input is compared on its first 128.
    fn starts(name: &[u8], at: &mut [usize; 128]) -> usize {
        let (mut i, mut n) = (0, 0);
        while i < name.len() && n < at.len() {
            let len = usize::from(name[i]);
            if len == 0 {
                break;
            }
            at[n] = i;
            n += 1;
            i += 1 + len;
        }
        n
    }
    fn label(name: &[u8], at: usize) -> &[u8] {
        let len = usize::from(name[at]);
        &name[(at + 1).min(name.len())..(at + 1 + len).min(name.len())]
    }
    let (mut sa, mut sb) = ([0usize; 128], [0usize; 128]);
    let (na, nb) = (starts(a, &mut sa), starts(b, &mut sb));
    for k in 1..=na.min(nb) {
        match label(a, sa[na - k]).cmp(label(b, sb[nb - k])) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    na.cmp(&nb)
}

/// Whether the leftmost label is `*` (RFC 4592).
pub fn is_wildcard(name: &[u8]) -> bool {
    name.first() == Some(&1) && name.get(1) == Some(&b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::ZoneName;

    fn w(s: &str) -> Vec<u8> {
        s.parse::<ZoneName>().unwrap().wire().to_vec()
    }

    /// RFC 4034 §6.1's example, in order.
    #[test]
    fn canonical_order_of_rfc4034_example() {
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let wires: Vec<Vec<u8>> = names.iter().map(|n| w(n)).collect();
        for pair in wires.windows(2) {
            assert_eq!(cmp_names(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
            assert!(order_key(&pair[0]) < order_key(&pair[1]), "{pair:?}");
        }
        // A zero octet sorts before every other octet, and a label that is
        // a prefix of another first.
        let z0 = w("\\000.example.");
        let z00 = w("\\000\\000.example.");
        let z01 = w("\\000\\001.example.");
        assert!(order_key(&z0) < order_key(&z00));
        assert!(order_key(&z00) < order_key(&z01));
        assert_eq!(cmp_names(&z00, &z01), Ordering::Less);
    }

    /// The allocation-free comparison agrees with the sort key (an
    /// independent encoding of the same order) on every pair of a few
    /// hundred names: shared suffixes, prefixes, empty and binary labels.
    #[test]
    fn cmp_names_agrees_with_order_key() {
        let labels: [&[u8]; 7] = [b"a", b"ab", b"b", b"\x00", b"\x00\x01", b"z", b"\xff"];
        let mut names = vec![vec![0u8]];
        for depth in 1..=3 {
            let mut next = Vec::new();
            for n in names.iter().filter(|n| label_count(n) == depth - 1) {
                for l in labels {
                    let mut v = vec![l.len() as u8];
                    v.extend_from_slice(l);
                    v.extend_from_slice(n);
                    next.push(v);
                }
            }
            names.extend(next);
        }
        assert!(names.len() > 300);
        for a in &names {
            for b in &names {
                assert_eq!(
                    cmp_names(a, b),
                    order_key(a).cmp(&order_key(b)),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn relations() {
        let apex = w("example.");
        assert!(is_at_or_below(&w("a.b.example."), &apex));
        assert!(is_below(&w("a.example."), &apex));
        assert!(!is_below(&apex, &apex));
        assert!(!is_at_or_below(&w("aexample."), &apex));
        assert!(!is_at_or_below(&w("example.com."), &apex));
        assert!(!is_at_or_below(&w("\\007example."), &w("example.")));
        assert_eq!(parent(&w("a.example.")), Some(&apex[..]));
        assert!(is_wildcard(&w("*.example.")));
        assert_eq!(label_count(&w("*.a.example.")), 3);
    }
}
