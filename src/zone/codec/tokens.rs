//! The RDATA of one record as presentation-format tokens, and typed reads
//! of them (numbers, names, character strings, blobs) with the escapes of
//! RFC 1035 §5.1 decoded by `domain`'s symbol reader.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use domain::base::scan::Symbol;
use domain::base::Name;

/// One token: its text as written (escapes kept, quotes removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: Vec<u8>,
    pub quoted: bool,
}

/// Splits RDATA text into tokens: whitespace separates them outside
/// double quotes, parentheses only group lines, `;` starts a comment.
pub fn split(text: &[u8]) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b if b.is_ascii_whitespace() || b == b'(' || b == b')' => i += 1,
            b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i + 1;
                i = start;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if i >= text.len() {
                    return Err("a quoted string has no closing quote".into());
                }
                out.push(Token {
                    text: text[start..i].to_vec(),
                    quoted: true,
                });
                i += 1;
            }
            _ => {
                let start = i;
                while i < text.len()
                    && !text[i].is_ascii_whitespace()
                    && !b"();\"".contains(&text[i])
                {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(text.len());
                out.push(Token {
                    text: text[start..end].to_vec(),
                    quoted: false,
                });
                i = end;
            }
        }
    }
    Ok(out)
}

/// The octets a token stands for, escapes decoded.
pub fn octets(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut pos = 0;
    while let Some((sym, next)) =
        Symbol::from_slice_index(text, pos).map_err(|e| format!("bad escape: {e}"))?
    {
        out.push(
            sym.into_octet()
                .map_err(|_| "a character that is not one octet".to_string())?,
        );
        pos = next;
    }
    Ok(out)
}

/// The tokens of one record's RDATA, read in order.
pub struct Tokens {
    toks: Vec<Token>,
    pos: usize,
    /// The origin relative names are completed with, as text ending in a dot.
    origin: String,
}

impl Tokens {
    pub fn new(toks: Vec<Token>, origin: &str) -> Tokens {
        let mut origin = origin.to_string();
        if !origin.ends_with('.') {
            origin.push('.');
        }
        Tokens {
            toks,
            pos: 0,
            origin,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// The next token, any kind.
    pub fn next(&mut self, what: &str) -> Result<&Token, String> {
        let t = self
            .toks
            .get(self.pos)
            .ok_or_else(|| format!("{what} is missing"))?;
        self.pos += 1;
        Ok(t)
    }

    /// The next token as ASCII text (numbers, mnemonics, addresses).
    pub fn word(&mut self, what: &str) -> Result<String, String> {
        let t = self.next(what)?;
        let o = octets(&t.text)?;
        String::from_utf8(o)
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or_else(|| format!("{what}: not ASCII"))
    }

    /// An unsigned number of at most `max`.
    pub fn number(&mut self, what: &str, max: u64) -> Result<u64, String> {
        let w = self.word(what)?;
        let n: u64 = w
            .parse()
            .map_err(|_| format!("{what} {w:?} is not a number"))?;
        if n > max {
            return Err(format!("{what} {n} is more than {max}"));
        }
        Ok(n)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, String> {
        self.number(what, u8::MAX.into()).map(|n| n as u8)
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, String> {
        self.number(what, u16::MAX.into()).map(|n| n as u16)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.number(what, u32::MAX.into()).map(|n| n as u32)
    }

    /// A domain name in uncompressed wire form; relative names are
    /// completed with the origin.
    pub fn name(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let origin = self.origin.clone();
        let t = self.next(what)?;
        let text = &t.text;
        let absolute = text == b"." || ends_in_dot(text);
        let mut full = text.clone();
        if !absolute {
            if origin != "." {
                full.push(b'.');
                full.extend_from_slice(origin.as_bytes());
            } else {
                full.push(b'.');
            }
        }
        let mut symbols = Vec::with_capacity(full.len());
        let mut pos = 0;
        while let Some((sym, next)) = Symbol::from_slice_index(&full, pos)
            .map_err(|e| format!("{what} {}: {e}", String::from_utf8_lossy(text)))?
        {
            symbols.push(sym);
            pos = next;
        }
        let name: Name<Vec<u8>> = Name::from_symbols(symbols)
            .map_err(|e| format!("{what} {}: {e}", String::from_utf8_lossy(text)))?;
        Ok(name.into_octets())
    }

    /// One `<character-string>` (RFC 1035 §3.3): at most 255 octets.
    pub fn charstr(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let t = self.next(what)?;
        let o = octets(&t.text)?;
        if o.len() > 255 {
            return Err(format!(
                "{what} is {} octets long; a character string holds at most 255",
                o.len()
            ));
        }
        Ok(o)
    }

    /// The rest of the tokens, joined, as one blob of base64.
    pub fn base64_rest(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let text = self.rest_text();
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| format!("{what}: bad base64: {e}"))
    }

    /// The rest of the tokens, joined, as one blob of hex digits.
    pub fn hex_rest(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let text = self.rest_text();
        hex::decode(text.as_bytes()).map_err(|e| format!("{what}: bad hex: {e}"))
    }

    /// The rest of the tokens, joined without spaces.
    pub fn rest_text(&mut self) -> String {
        let mut s = String::new();
        while let Some(t) = self.toks.get(self.pos) {
            s.push_str(&String::from_utf8_lossy(&t.text));
            self.pos += 1;
        }
        s
    }

    pub fn ipv4(&mut self, what: &str) -> Result<Ipv4Addr, String> {
        let w = self.word(what)?;
        w.parse()
            .map_err(|_| format!("{what} {w:?} is not an IPv4 address"))
    }

    pub fn ipv6(&mut self, what: &str) -> Result<Ipv6Addr, String> {
        let w = self.word(what)?;
        w.parse()
            .map_err(|_| format!("{what} {w:?} is not an IPv6 address"))
    }

    /// Fails when tokens are left over.
    pub fn end(&self) -> Result<(), String> {
        match self.toks.get(self.pos) {
            None => Ok(()),
            Some(t) => Err(format!(
                "unexpected {:?} after the end of the RDATA",
                String::from_utf8_lossy(&t.text)
            )),
        }
    }
}

/// Whether a name's text ends in a dot that is not escaped.
fn ends_in_dot(text: &[u8]) -> bool {
    if text.last() != Some(&b'.') {
        return false;
    }
    let backslashes = text[..text.len() - 1]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    backslashes % 2 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Tokens {
        Tokens::new(split(s.as_bytes()).unwrap(), "example.")
    }

    #[test]
    fn split_honours_quotes_parentheses_and_comments() {
        let t = split(b"a \"b c\" ( d ; e f\n g\\\" ) \"\\\"\"").unwrap();
        let texts: Vec<(&[u8], bool)> = t.iter().map(|t| (&t.text[..], t.quoted)).collect();
        assert_eq!(
            texts,
            vec![
                (&b"a"[..], false),
                (b"b c", true),
                (b"d", false),
                (b"g\\\"", false),
                (b"\\\"", true)
            ]
        );
        assert!(split(b"\"open").is_err());
    }

    #[test]
    fn names_are_completed_with_the_origin() {
        let mut t = toks("host Host.Other. . a\\.b \\046.");
        assert_eq!(t.name("n").unwrap(), b"\x04host\x07example\x00");
        assert_eq!(t.name("n").unwrap(), b"\x04Host\x05Other\x00");
        assert_eq!(t.name("n").unwrap(), b"\x00");
        assert_eq!(t.name("n").unwrap(), b"\x03a.b\x07example\x00");
        assert_eq!(t.name("n").unwrap(), b"\x01.\x00");
        assert!(t.is_empty());
        assert!(t.name("target").unwrap_err().contains("target is missing"));
    }

    #[test]
    fn numbers_strings_and_blobs() {
        let mut t = toks("65535 65536 \"a\\066\\\"\" AQID BA== 0a0B ff");
        assert_eq!(t.u16("x").unwrap(), 65535);
        assert!(t
            .u16("port")
            .unwrap_err()
            .contains("port 65536 is more than 65535"));
        assert_eq!(t.charstr("s").unwrap(), b"aB\"");
        let mut rest = toks("AQID BA==");
        assert_eq!(rest.base64_rest("k").unwrap(), vec![1, 2, 3, 4]);
        let mut hex = toks("0a0B ff");
        assert_eq!(hex.hex_rest("h").unwrap(), vec![0x0a, 0x0b, 0xff]);
        let long = format!("\"{}\"", "x".repeat(256));
        assert!(toks(&long)
            .charstr("s")
            .unwrap_err()
            .contains("at most 255"));
        assert!(toks("1 2").end().is_err());
    }
}
