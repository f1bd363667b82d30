//! The previous signing's files read again without being held in memory:
//! `--incremental` checks the signed zone and its state once when it loads
//! them, then reads them a second time, front to back, for what it keeps
//! (the state's records while matching, the text and records of unchanged
//! nodes while writing). Each second reading goes through a [`Reread`]:
//! every byte handed out is a byte hashed, and [`Reread::finish`] reads the
//! rest and compares the digest with the one checked at load. A file
//! changed in between fails that comparison, and the run stops before it
//! commits anything; so what is carried over is what was checked, as if
//! the file had been held, at the memory of a read buffer.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Read buffer of a [`Reread`]: large reads, few system calls.
const BUFFER: usize = 1 << 20;

/// A file read from a position of its own (positional reads: handles
/// cloned from one another share no offset), up to `end`.
struct At {
    file: File,
    pos: u64,
    end: u64,
    hash: blake3::Hasher,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.hash.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// The first `len` bytes of a file, read once in order through a hash that
/// must come out as `expect`.
pub struct Reread {
    inner: BufReader<At>,
    /// How far the reader has handed out bytes.
    pos: u64,
    expect: [u8; 32],
    path: PathBuf,
}

impl Reread {
    /// Reads `file` (at `path`, for messages) from its start.
    pub fn new(file: File, path: &Path, len: u64, expect: [u8; 32]) -> Reread {
        let at = At {
            file,
            pos: 0,
            end: len,
            hash: blake3::Hasher::new(),
        };
        Reread {
            inner: BufReader::with_capacity(
                BUFFER.min(usize::try_from(len).unwrap_or(BUFFER)).max(1),
                at,
            ),
            pos: 0,
            expect,
            path: path.to_path_buf(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the next byte handed out is in the file.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn changed(&self, how: &str) -> io::Error {
        io::Error::other(format!(
            "{} changed while it was being read ({how})",
            self.path.display()
        ))
    }

    /// Moves on to `to` (hashing what it passes) and hands the `len` bytes
    /// there to `out`.
    pub fn copy(
        &mut self,
        to: u64,
        len: u64,
        out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if to < self.pos {
            return Err(self.changed("a range before one already read"));
        }
        self.pump(to - self.pos, &mut |_| Ok(()))?;
        self.pump(len, out)
    }

    fn pump(&mut self, mut n: u64, out: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        while n > 0 {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Err(self.changed("it is shorter"));
            }
            let k = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            out(&buf[..k])?;
            self.inner.consume(k);
            self.pos += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads the rest and checks the digest of the whole.
    pub fn finish(mut self) -> io::Result<()> {
        let rest = self.inner.get_ref().end.saturating_sub(self.pos);
        self.pump(rest, &mut |_| Ok(()))?;
        if *self.inner.get_ref().hash.finalize().as_bytes() != self.expect {
            return Err(self.changed("its digest differs"));
        }
        Ok(())
    }
}

impl Read for Reread {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        let handle = File::open(f.path()).unwrap();
        (f, handle)
    }

    fn digest(b: &[u8]) -> [u8; 32] {
        *blake3::hash(b).as_bytes()
    }

    #[test]
    fn hands_out_ranges_of_the_file_it_checks() {
        let text = b"0123456789abcdef".repeat(100_000);
        let (f, h) = file(&text);
        let mut r = Reread::new(h, f.path(), text.len() as u64, digest(&text));
        let mut got = Vec::new();
        let mut head = [0u8; 4];
        r.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"0123");
        let mut take = |b: &[u8]| {
            got.extend_from_slice(b);
            Ok(())
        };
        r.copy(10, 6, &mut take).unwrap();
        r.copy(1_500_000, 1_000, &mut take).unwrap();
        assert_eq!(&got[..6], b"abcdef");
        assert_eq!(&got[6..], &text[1_500_000..1_501_000]);
        assert_eq!(r.position(), 1_501_000);
        r.finish().unwrap();
    }

    #[test]
    fn a_file_changed_after_its_check_fails() {
        let text = b"line\n".repeat(1000);
        let (f, h) = file(&text);
        let r = Reread::new(h, f.path(), text.len() as u64, digest(b"something else"));
        let e = r.finish().unwrap_err().to_string();
        assert!(e.contains("changed while it was being read"), "{e}");
        // Shorter than when it was checked.
        let (f, h) = file(&text[..10]);
        let mut r = Reread::new(h, f.path(), text.len() as u64, digest(&text));
        assert!(r.copy(0, 100, &mut |_| Ok(())).is_err());
        // Ranges only go forward.
        let (f, h) = file(&text);
        let mut r = Reread::new(h, f.path(), text.len() as u64, digest(&text));
        r.copy(100, 1, &mut |_| Ok(())).unwrap();
        assert!(r.copy(50, 1, &mut |_| Ok(())).is_err());
    }

    #[test]
    fn a_file_that_grew_is_read_to_its_checked_length() {
        let text = b"abc".repeat(10);
        let mut longer = text.clone();
        longer.extend_from_slice(b"appended later");
        let (f, h) = file(&longer);
        let r = Reread::new(h, f.path(), text.len() as u64, digest(&text));
        r.finish().unwrap();
    }
}
