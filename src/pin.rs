//! Where PINs come from, the checks on the files they come from, and how
//! a PIN is held once read.
//!
//! A PIN comes from the first of these that is present ([`source`]):
//!
//! 1. a PIN file (`--pin-file`, `--so-pin-file`; for the user PIN,
//!    else `pin_file` in `dnsseal.toml`, which the CLI's context looks up
//!    and passes here as the file, and the only source `dnsseal shell`
//!    uses);
//! 2. a systemd credential: the file `dnsseal-pin` (`dnsseal-so-pin`) in
//!    `$CREDENTIALS_DIRECTORY`, as `LoadCredential=` makes it;
//! 3. an environment variable (`DNSSEAL_PIN`, `DNSSEAL_SO_PIN`), for CI
//!    and tests;
//! 4. a prompt on the terminal, only when standard input is one.
//!
//! Files are opened non-blocking (a FIFO cannot hang the run) and checked
//! with `fstat` on the opened file, so a rename between check and read
//! changes nothing. A PIN file must be a regular file owned by the user
//! dnsseal runs as (effective uid), with no permission bits for group or
//! others (0600 or 0400). A credential is systemd's: it writes it 0400,
//! owned by root or the service's user, and gives the service's user read
//! access by an ACL whose mask `stat` shows as the group read bit; so a
//! credential must be a regular file in the credential directory itself
//! (no symbolic link), owned by root or the effective user, with no bits
//! for others and no group write. Anything else is refused with exit
//! code 7 and a message naming the file and the fix. At most
//! [`MAX_PIN_FILE_BYTES`] are read; the first line is the PIN.
//!
//! The variables are read, never removed: removing one would not clear
//! `/proc/PID/environ`, and changing the environment while threads run is
//! unsound. A PIN in a variable stays readable there, by the same user and
//! root, for the life of the process.
//!
//! A PIN read is a [`Pin`]: one copy, in a `secrecy` box that is zeroized
//! when dropped, on a page locked against swapping where the OS allows it
//! ([`crate::harden::lock_in_memory`]); the buffers it was read through
//! are zeroized as soon as that copy is made. A PIN never reaches argv,
//! logs, error messages or the audit log. The prompt is the one place the
//! library talks to a terminal.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fs::{FileType, Mode, OFlags};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::failure::Failure;

/// The variable the user PIN may come from (meant for CI).
pub const USER_PIN_VAR: &str = "DNSSEAL_PIN";
/// The variable the security officer PIN may come from (`init --softhsm`).
pub const SO_PIN_VAR: &str = "DNSSEAL_SO_PIN";
/// The variable systemd names a service's credential directory in.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
/// The credential the user PIN may come from (`LoadCredential=dnsseal-pin:FILE`).
pub const USER_PIN_CREDENTIAL: &str = "dnsseal-pin";
/// The credential the security officer PIN may come from.
pub const SO_PIN_CREDENTIAL: &str = "dnsseal-so-pin";
/// The most a PIN file or credential may hold: a PIN is one short line
/// (PKCS#11 tokens take PINs of a few hundred characters at most), so a
/// larger file is not a PIN file and is refused unread.
pub const MAX_PIN_FILE_BYTES: usize = 4096;

/// One of the token's PINs, and the names of its sources.
#[derive(Debug, Clone, Copy)]
pub struct PinKind {
    /// What the PIN is called in messages ("user PIN").
    pub name: &'static str,
    /// The option that names its file.
    pub option: &'static str,
    /// Its systemd credential's name.
    pub credential: &'static str,
    /// Its environment variable.
    pub var: &'static str,
    /// The prompt on the terminal.
    pub prompt: &'static str,
}

/// The user PIN: every command that logs in.
pub const USER_PIN: PinKind = PinKind {
    name: "user PIN",
    option: "--pin-file",
    credential: USER_PIN_CREDENTIAL,
    var: USER_PIN_VAR,
    prompt: "User PIN: ",
};

/// The security officer PIN of a new SoftHSMv2 token (`init --softhsm`).
pub const SO_PIN: PinKind = PinKind {
    name: "security officer PIN",
    option: "--so-pin-file",
    credential: SO_PIN_CREDENTIAL,
    var: SO_PIN_VAR,
    prompt: "New security officer PIN: ",
};

/// Where a PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Credential(PathBuf),
    Variable(&'static str),
    Terminal,
}

/// A PIN as read: the one copy this process holds.
pub struct Pin {
    // Dropped first: zeroized, then its page unlocked.
    secret: SecretString,
    _locked: Option<region::LockGuard>,
}

impl Pin {
    /// Holds `secret`, locking its page in memory where the OS allows.
    fn new(secret: SecretString) -> Pin {
        let locked = match crate::harden::lock_in_memory(secret.expose_secret().as_bytes()) {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!("cannot lock the PIN's memory against swapping: {e}");
                None
            }
        };
        Pin {
            secret,
            _locked: locked,
        }
    }

    /// The PIN, for the token's login.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

/// Reads a PIN from the first source present (see the module docs);
/// exit code 7 when there is none or its file is refused.
pub fn read(file: Option<&Path>, kind: &PinKind) -> anyhow::Result<Pin> {
    match source(file, kind) {
        Some(Source::File(path)) => read_file(&path, FileKind::PinFile),
        Some(Source::Credential(path)) => read_file(&path, FileKind::Credential),
        Some(Source::Variable(var)) => from_variable(var),
        Some(Source::Terminal) => from_terminal(kind.prompt),
        None => Err(Failure::NoPin(format!(
            "a {} is needed: use {} FILE, a systemd credential {} (in ${CREDENTIALS_DIRECTORY}), \
             set {}, or run on a terminal",
            kind.name, kind.option, kind.credential, kind.var
        ))
        .into()),
    }
}

/// Where the PIN will come from: the file if given, else the credential
/// if `$CREDENTIALS_DIRECTORY` holds one, else the variable if set, else
/// the terminal if standard input is one.
pub fn source(file: Option<&Path>, kind: &PinKind) -> Option<Source> {
    let credential = std::env::var_os(CREDENTIALS_DIRECTORY)
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir).join(kind.credential))
        .filter(|path| path.symlink_metadata().is_ok());
    choose(
        file,
        credential,
        std::env::var_os(kind.var).is_some(),
        std::io::stdin().is_terminal(),
        kind.var,
    )
}

/// The first source present, in the documented order.
fn choose(
    file: Option<&Path>,
    credential: Option<PathBuf>,
    var_set: bool,
    terminal: bool,
    var: &'static str,
) -> Option<Source> {
    if let Some(path) = file {
        return Some(Source::File(path.to_path_buf()));
    }
    if let Some(path) = credential {
        return Some(Source::Credential(path));
    }
    if var_set {
        return Some(Source::Variable(var));
    }
    terminal.then_some(Source::Terminal)
}

fn from_variable(var: &str) -> anyhow::Result<Pin> {
    let value = Zeroizing::new(
        std::env::var(var).map_err(|e| Failure::NoPin(format!("cannot use {var}: {e}")))?,
    );
    if value.is_empty() {
        return Err(Failure::NoPin(format!("{var} is set but empty")).into());
    }
    Ok(Pin::new(SecretString::from(value.as_str())))
}

fn from_terminal(prompt: &str) -> anyhow::Result<Pin> {
    let entered = Zeroizing::new(
        rpassword::prompt_password(prompt).context("cannot read the PIN from the terminal")?,
    );
    if entered.is_empty() {
        return Err(Failure::NoPin("no PIN entered".into()).into());
    }
    Ok(Pin::new(SecretString::from(entered.as_str())))
}

/// What kind of file a PIN is read from: the checks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    PinFile,
    Credential,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::PinFile => "PIN file",
            FileKind::Credential => "credential",
        })
    }
}

/// Opens and checks the file, then reads its first line into a [`Pin`]
/// through a buffer of fixed size (no reallocation leaves a copy behind)
/// that is zeroized afterwards.
fn read_file(path: &Path, kind: FileKind) -> anyhow::Result<Pin> {
    let refuse = |why: String| Failure::NoPin(format!("{kind} {}: {why}", path.display()));
    let file = open_checked(path, kind).map_err(refuse)?;
    let mut buf = Zeroizing::new(vec![0u8; MAX_PIN_FILE_BYTES + 1]);
    let mut len = 0;
    while len < buf.len() {
        match (&file).read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(refuse(format!("cannot read it: {e}")).into()),
        }
    }
    if len > MAX_PIN_FILE_BYTES {
        return Err(refuse(format!(
            "holds more than {MAX_PIN_FILE_BYTES} bytes: not a PIN file"
        ))
        .into());
    }
    let first = buf[..len].split(|b| *b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let line = std::str::from_utf8(first)
        .map_err(|_| refuse("its first line is not UTF-8 text".into()))?;
    if line.is_empty() {
        return Err(refuse("its first line is empty".into()).into());
    }
    Ok(Pin::new(SecretString::from(line)))
}

/// Opens the file without blocking and checks what was opened.
fn open_checked(path: &Path, kind: FileKind) -> Result<File, String> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if kind == FileKind::Credential {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::LOOP if kind == FileKind::Credential => {
            "is a symbolic link; systemd writes credentials as files".to_string()
        }
        e => format!("cannot open it: {}", std::io::Error::from(e)),
    })?;
    let st = rustix::fs::fstat(&fd)
        .map_err(|e| format!("cannot stat it: {}", std::io::Error::from(e)))?;
    check_file(
        path,
        kind,
        FileType::from_raw_mode(st.st_mode),
        st.st_mode & 0o7777,
        st.st_uid,
        rustix::process::geteuid().as_raw(),
    )?;
    Ok(File::from(fd))
}

/// Whether a file of this type, mode and owner may hold a PIN for a
/// process of effective uid `euid`; if not, why and what to do.
fn check_file(
    path: &Path,
    kind: FileKind,
    file_type: FileType,
    mode: u32,
    owner: u32,
    euid: u32,
) -> Result<(), String> {
    if file_type != FileType::RegularFile {
        return Err(format!(
            "is not a regular file but {}; a PIN must come from a plain file",
            describe(file_type)
        ));
    }
    match kind {
        FileKind::PinFile if mode & 0o077 != 0 => Err(format!(
            "can be read or written by group or others (mode {mode:04o}): chmod 600 {}",
            path.display()
        )),
        FileKind::PinFile if owner != euid => Err(format!(
            "is owned by uid {owner}, not by uid {euid} that dnsseal runs as: \
             chown it to that user and chmod 600 it"
        )),
        FileKind::Credential if mode & 0o027 != 0 => Err(format!(
            "can be read by others or written by group (mode {mode:04o}); \
             systemd makes a credential readable by the service's user only"
        )),
        FileKind::Credential if owner != euid && owner != 0 => Err(format!(
            "is owned by uid {owner}, neither root nor uid {euid} that dnsseal runs as"
        )),
        _ => Ok(()),
    }
}

fn describe(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "of an unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = USER_PIN_VAR;

    #[test]
    fn the_file_then_the_credential_then_the_variable_then_the_terminal() {
        let file = Path::new("/etc/dnsseal/pin");
        let cred = PathBuf::from("/run/credentials/dnsseal.service/dnsseal-pin");
        let all = choose(Some(file), Some(cred.clone()), true, true, VAR);
        assert_eq!(all, Some(Source::File(file.to_path_buf())));
        let no_file = choose(None, Some(cred.clone()), true, true, VAR);
        assert_eq!(no_file, Some(Source::Credential(cred)));
        assert_eq!(
            choose(None, None, true, true, VAR),
            Some(Source::Variable(VAR))
        );
        assert_eq!(choose(None, None, false, true, VAR), Some(Source::Terminal));
        assert_eq!(choose(None, None, false, false, VAR), None);
    }

    fn pin_file(mode: u32, owner: u32, euid: u32) -> Result<(), String> {
        let path = Path::new("/etc/dnsseal/pin");
        check_file(
            path,
            FileKind::PinFile,
            FileType::RegularFile,
            mode,
            owner,
            euid,
        )
    }

    fn credential(mode: u32, owner: u32, euid: u32) -> Result<(), String> {
        let path = Path::new("/run/credentials/x/dnsseal-pin");
        check_file(
            path,
            FileKind::Credential,
            FileType::RegularFile,
            mode,
            owner,
            euid,
        )
    }

    #[test]
    fn a_pin_file_is_its_owners_alone() {
        assert_eq!(pin_file(0o600, 1000, 1000), Ok(()));
        assert_eq!(pin_file(0o400, 1000, 1000), Ok(()));
        for mode in [0o640, 0o604, 0o660, 0o620, 0o602, 0o610, 0o666, 0o644] {
            let err = pin_file(mode, 1000, 1000).unwrap_err();
            assert!(
                err.contains("chmod 600 /etc/dnsseal/pin"),
                "{mode:o}: {err}"
            );
        }
        let err = pin_file(0o600, 0, 1000).unwrap_err();
        assert!(err.contains("owned by uid 0"), "{err}");
        // Not even root's own files of others are taken.
        assert!(pin_file(0o600, 1000, 0).is_err());
    }

    #[test]
    fn a_credential_may_show_the_acl_mask_as_group_read() {
        assert_eq!(credential(0o400, 0, 998), Ok(()));
        assert_eq!(credential(0o440, 0, 998), Ok(()));
        assert_eq!(credential(0o400, 998, 998), Ok(()));
        for mode in [0o404, 0o460, 0o444, 0o401, 0o402] {
            assert!(credential(mode, 0, 998).is_err(), "{mode:o}");
        }
        let err = credential(0o400, 1000, 998).unwrap_err();
        assert!(err.contains("neither root"), "{err}");
    }

    #[test]
    fn only_regular_files_hold_pins() {
        let path = Path::new("/tmp/pin");
        for (t, name) in [
            (FileType::Fifo, "a FIFO"),
            (FileType::Directory, "a directory"),
            (FileType::CharacterDevice, "a character device"),
        ] {
            for kind in [FileKind::PinFile, FileKind::Credential] {
                let err = check_file(path, kind, t, 0o600, 0, 0).unwrap_err();
                assert!(
                    err.contains("not a regular file") && err.contains(name),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn a_pin_is_read_from_the_first_line_of_its_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "12 34\r\nsecond line\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pin = read_file(&path, FileKind::PinFile).unwrap();
        assert_eq!(pin.secret().expose_secret(), "12 34");
        assert_eq!(format!("{pin:?}"), "Pin([REDACTED])");
        std::fs::write(&path, vec![b'1'; MAX_PIN_FILE_BYTES + 1]).unwrap();
        let err = read_file(&path, FileKind::PinFile).unwrap_err();
        assert!(format!("{err}").contains("more than 4096 bytes"), "{err}");
        std::fs::write(&path, "\n1234\n").unwrap();
        let err = read_file(&path, FileKind::PinFile).unwrap_err();
        assert!(format!("{err}").contains("first line is empty"), "{err}");
        assert_eq!(crate::failure::exit_code(&err), crate::failure::exit::PIN);
    }
}
