//! dnsseal's own state files (keystore, audit log, token lock) opened the
//! safe way: created with mode 0600 from the first system call, so no
//! umask and no window between create and chmod makes them readable by
//! others, and never through a symbolic link, so nobody who can write the
//! project directory can point them at another file (`O_NOFOLLOW`). An
//! existing file must be a regular file.
//!
//! Files replaced whole go through [`crate::atomic`], whose temporary files
//! are also created 0600 and exclusively.
//!
//! Input files (zone files and their includes, the signing state, DS and
//! policy files) are read with [`read_regular`]: regular files only, and
//! never more than a given number of bytes.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

/// The mode of every file dnsseal creates for itself.
pub const PRIVATE: u32 = 0o600;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Create it; it must not exist yet (`O_EXCL`).
    CreateNew,
    /// Open it for appending, creating it when missing.
    Append,
    /// Open it for writing without truncating, creating it when missing
    /// (a lock file).
    Lock,
    /// Open it for reading; it must exist.
    Read,
}

/// A file dnsseal refuses to open for itself: a symbolic link, or not a
/// regular file. It travels inside an [`io::Error`] so that callers keep
/// their error types; [`is_unsafe`] finds it.
#[derive(Debug, thiserror::Error)]
#[error("{path} {why}")]
pub struct UnsafeFile {
    pub path: std::path::PathBuf,
    pub why: &'static str,
}

fn unsafe_file(path: &Path, why: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        UnsafeFile {
            path: path.to_path_buf(),
            why,
        },
    )
}

/// Whether an error is an [`UnsafeFile`] refusal.
pub fn is_unsafe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<UnsafeFile>()
        || e.downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<UnsafeFile>())
}

/// Opens `path` as `how` says: created 0600, never through a symbolic link,
/// and only if it is a regular file. The errors name the path.
pub fn open(path: &Path, how: Open) -> io::Result<File> {
    let flags = OFlags::CLOEXEC
        | OFlags::NOFOLLOW
        | match how {
            Open::CreateNew => OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY,
            Open::Append => OFlags::CREATE | OFlags::APPEND | OFlags::RDWR,
            Open::Lock => OFlags::CREATE | OFlags::WRONLY,
            Open::Read => OFlags::RDONLY,
        }
        // A FIFO planted at the path must not block the open.
        | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(PRIVATE)).map_err(|e| match e {
        rustix::io::Errno::LOOP => unsafe_file(
            path,
            "is a symbolic link; dnsseal does not follow links to its own files",
        ),
        e => {
            let e = io::Error::from(e);
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        }
    })?;
    let st = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(unsafe_file(path, "is not a regular file"));
    }
    // Blocking again for ordinary reads and writes.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// How much one reading of a zone may take in: each file (the zone file
/// or an `$INCLUDE`d one) at most `file_bytes`, all of them together (an
/// include counted each time it is included) at most `total_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub file_bytes: u64,
    pub total_bytes: u64,
    /// Whether `$INCLUDE` is followed. The signing service refuses it in
    /// an uploaded zone: a client's text must not name the box's files.
    pub includes: bool,
}

impl ReadLimits {
    /// 4 GiB a file, 8 GiB in all: above any zone one machine's memory
    /// signs (a zone takes about twelve times its text while it is
    /// signed), and a stop for `$INCLUDE` loops of big files. Used where no
    /// configuration says otherwise (`[zone]` in dnsseal.toml).
    pub const DEFAULT: ReadLimits = ReadLimits {
        file_bytes: 4 << 30,
        total_bytes: 8 << 30,
        includes: true,
    };
}

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a regular file (a FIFO, device, socket or directory)")]
    NotRegular,
    /// More than the limit; `size` is what was found (at least limit + 1).
    #[error("{size} bytes or more, above the limit of {limit} bytes")]
    TooBig { size: u64, limit: u64 },
}

/// Reads an input file whole: only a regular file (a FIFO, device, socket
/// or directory could block or never end, and is refused before a byte is
/// read, the open itself not blocking), and at most `limit` bytes, also
/// when it grows while it is read.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let (file, len) = open_regular(path, limit)?;
    let mut text = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut text)?;
    if text.len() as u64 > limit {
        return Err(ReadError::TooBig {
            size: text.len() as u64,
            limit,
        });
    }
    Ok(text)
}

/// Opens an input file for reading as [`read_regular`] does (a regular
/// file only, the open not blocking) and returns it with its size, which
/// must be at most `limit`; reading it within that size is the caller's.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig {
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta.len()))
}

/// The SHA-256 of a file's contents, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use sha2::Digest;
    let mut file = File::open(path)?;
    let mut hash = sha2::Sha256::new();
    io::copy(&mut file, &mut hash)?;
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_in_every_way() {
        let dir = tempfile::tempdir().unwrap();
        for (name, how) in [
            ("a", Open::CreateNew),
            ("b", Open::Append),
            ("c", Open::Lock),
        ] {
            let path = dir.path().join(name);
            open(&path, how).unwrap();
            assert_eq!(mode(&path), PRIVATE, "{name}");
        }
        // Existing files open for append and lock, never for create.
        assert!(open(&dir.path().join("b"), Open::Append).is_ok());
        assert!(open(&dir.path().join("c"), Open::Lock).is_ok());
        let e = open(&dir.path().join("a"), Open::CreateNew).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert!(e.to_string().contains("/a: "), "{e}");
        assert!(!is_unsafe(&e));
    }

    #[test]
    fn links_fifos_and_directories_are_refused_and_their_targets_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A dangling link too: O_CREAT would otherwise create its target.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        for how in [Open::CreateNew, Open::Append, Open::Lock, Open::Read] {
            let e = open(&link, how).unwrap_err();
            // O_EXCL reports a link as an existing file.
            if how != Open::CreateNew {
                assert!(e.to_string().contains("symbolic link"), "{how:?}: {e}");
                assert!(is_unsafe(&e));
            }
            assert!(open(&dangling, how).is_err(), "{how:?}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(mode(&target), 0o644);
        assert!(!dir.path().join("nowhere").exists());
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = open(&fifo, Open::Append).unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
        assert!(is_unsafe(&e));
        let e = open(dir.path(), Open::Lock).unwrap_err();
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn inputs_are_regular_files_within_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("zone");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_regular(&f, 9),
            Err(ReadError::TooBig { size: 10, limit: 9 })
        ));
        assert!(matches!(
            read_regular(dir.path(), 10),
            Err(ReadError::NotRegular)
        ));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        // No writer: a blocking open would wait for ever.
        assert!(matches!(
            read_regular(&fifo, 10),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(&dir.path().join("none"), 10),
            Err(ReadError::Io(_))
        ));
    }
}
