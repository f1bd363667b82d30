//! The shell's strict tokenizer: a line becomes words, and anything a
//! system shell would give a meaning to is refused rather than passed on.
//!
//! - Spaces separate words (a tab, like every control character, is
//!   refused).
//! - `'…'` groups literally; `"…"` groups, with `\` escaping the next
//!   character inside; outside quotes `\` escapes the next character.
//! - Outside quotes the characters in [`METACHARACTERS`] are refused: they
//!   would chain, redirect, substitute or glob in a system shell, and
//!   none of them is part of a zone name, a key tag or an option.
//! - A line longer than [`MAX_LINE_BYTES`] is refused unread.
//!
//! A refused line names what was refused and why ([`Refusal`]).

/// The longest line the shell reads, in bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// Refused outside quotes: command chaining (`; | &`), substitution and
/// expansion (`$ \``), redirection (`> <`), subshells and grouping
/// (`( ) { }`), globbing (`* ? [ ]`), home directories (`~`), history
/// (`!`) and comments (`#`).
pub const METACHARACTERS: &[char] = &[
    ';', '|', '&', '$', '`', '>', '<', '(', ')', '{', '}', '*', '?', '[', ']', '~', '!', '#',
];

/// Why a line (or a word of it) is not run: shown to the user and audited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Splits a line into words, or refuses it.
pub fn tokenize(line: &str) -> Result<Vec<String>, Refusal> {
    if line.len() > MAX_LINE_BYTES {
        return Err(Refusal(format!(
            "a line of {} bytes is refused: at most {MAX_LINE_BYTES} bytes",
            line.len()
        )));
    }
    if let Some((at, c)) = line.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(Refusal(format!(
            "control character U+{:04X} at column {} is refused",
            u32::from(c),
            at + 1
        )));
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().enumerate();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => return Err(unterminated('\'', at)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c)) => word.push(c),
                            None => return Err(unterminated('"', at)),
                        },
                        Some((_, c)) => word.push(c),
                        None => return Err(unterminated('"', at)),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, c)) => {
                    in_word = true;
                    word.push(c);
                }
                None => {
                    return Err(Refusal(
                        "a backslash at the end of the line is refused (it escapes nothing)".into(),
                    ))
                }
            },
            c if METACHARACTERS.contains(&c) => {
                return Err(Refusal(format!(
                    "shell metacharacter '{c}' at column {} is refused: this shell runs one \
                     dnsseal command, never a system shell",
                    at + 1
                )))
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unterminated(quote: char, at: usize) -> Refusal {
    Refusal(format!(
        "the quote {quote} at column {} is not closed",
        at + 1
    ))
}

/// A line as it may be shown and audited: control characters escaped, at
/// most 200 characters, with the length when cut.
pub fn excerpt(line: &str) -> String {
    const MAX: usize = 200;
    let shown: String = line.chars().take(MAX).collect();
    let mut text = shown.escape_debug().to_string();
    if line.chars().count() > MAX {
        text.push_str(&format!("… ({} bytes)", line.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        tokenize(line).unwrap()
    }

    fn refused(line: &str) -> String {
        tokenize(line).unwrap_err().0
    }

    #[test]
    fn spaces_quotes_and_backslashes() {
        assert_eq!(
            words("  keys   ds example.com "),
            ["keys", "ds", "example.com"]
        );
        assert_eq!(words("a 'b c' \"d e\" f\\ g"), ["a", "b c", "d e", "f g"]);
        assert_eq!(words("'it''s' \"\\\"q\\\"\""), ["its", "\"q\""]);
        assert_eq!(words("'' x"), ["", "x"]);
        assert_eq!(words("'a;b' \"$x\" \\;"), ["a;b", "$x", ";"]);
        assert_eq!(words("--digest=sha256,sha384"), ["--digest=sha256,sha384"]);
        assert!(words("").is_empty());
        assert!(words("    ").is_empty());
    }

    #[test]
    fn metacharacters_outside_quotes_are_refused() {
        for line in [
            "keys list; sh",
            "; sh",
            "keys list | sh",
            "keys list && id",
            "keys ds $(id)",
            "keys ds `id`",
            "keys list > /tmp/x",
            "keys list < x",
            "keys ds *",
            "keys ds ~",
            "keys ds a#b",
            "keys ds {a,b}",
        ] {
            let why = refused(line);
            assert!(why.contains("metacharacter"), "{line}: {why}");
        }
        assert!(refused("; sh").contains("';' at column 1"));
        assert!(refused("keys ds `id`").contains("'`' at column 9"));
    }

    #[test]
    fn control_characters_long_lines_and_open_quotes_are_refused() {
        assert!(refused("keys\tlist").contains("U+0009 at column 5"));
        assert!(refused("keys list\n").contains("U+000A"));
        assert!(refused("keys \u{1b}[2J").contains("U+001B"));
        assert!(refused("keys '\u{0}'").contains("U+0000"));
        let long = "a".repeat(MAX_LINE_BYTES + 1);
        assert!(refused(&long).contains("4097 bytes"));
        assert_eq!(words(&"a".repeat(MAX_LINE_BYTES)).len(), 1);
        assert!(refused("keys 'ds").contains("not closed"));
        assert!(refused("keys \"ds").contains("not closed"));
        assert!(refused("keys ds\\").contains("backslash"));
    }

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(excerpt("a\u{1b}b"), "a\\u{1b}b");
        let long = "x".repeat(1000);
        let e = excerpt(&long);
        assert!(
            e.starts_with(&"x".repeat(200)) && e.ends_with("(1000 bytes)"),
            "{e}"
        );
    }
}
