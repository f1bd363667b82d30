//! Atomic file replacement (invariant 4 of the design: nothing is
//! half-written).
//!
//! A file is written to a temporary file beside its target, the data is
//! synced, the temporary file is renamed over the target, and the directory
//! is synced so that the rename itself survives a crash. Until the rename a
//! reader sees the old file; a failure on the way leaves the old file and
//! removes the temporary one. Every error is reported, the directory sync's
//! included.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A temporary file beside its target, renamed into place by
/// [`Temp::commit`]; dropped uncommitted, it is removed.
pub struct Temp {
    target: PathBuf,
    dir: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl Temp {
    /// Creates the temporary file in the directory of `target`.
    pub fn beside(target: &Path) -> anyhow::Result<Temp> {
        let dir = directory_of(target).to_path_buf();
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Temp {
            target: target.to_path_buf(),
            dir,
            tmp,
        })
    }

    /// The file the target is being written to.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// A second handle on the temporary file (for a writer that owns its
    /// file).
    pub fn handle(&self) -> anyhow::Result<File> {
        self.tmp
            .as_file()
            .try_clone()
            .with_context(|| format!("cannot write {}", self.target.display()))
    }

    /// Syncs the data, renames the file into place (the error names it as
    /// `what`) and syncs the directory.
    pub fn commit(self, what: &str) -> anyhow::Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", self.target.display()))?;
        let (target, dir) = (self.target.clone(), self.dir.clone());
        self.tmp
            .persist(&target)
            // The error's own handle on the temporary file is dropped here,
            // which removes it (an error kept until exit would keep it).
            .map_err(|e| e.error)
            .with_context(|| format!("cannot move {what} into place at {}", target.display()))?;
        sync_dir(&dir)
    }

    /// Renames the file into place without syncing anything: for caches
    /// that check their own integrity when read back.
    pub fn commit_unsynced(self) -> anyhow::Result<()> {
        let target = self.target.clone();
        self.tmp
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| {
                format!("cannot move a new file into place at {}", target.display())
            })?;
        Ok(())
    }
}

/// Replaces `path` by a file holding `contents`, atomically.
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut tmp = Temp::beside(path)?;
    tmp.tmp
        .write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.commit("the new file")
}

/// The directory a relative or absolute path lives in.
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone.signed");
        std::fs::write(&path, b"old contents").unwrap();
        write(&path, b"new contents, longer than before").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"new contents, longer than before"
        );
        assert_eq!(entries(dir.path()), vec!["zone.signed".to_string()]);
    }

    #[test]
    fn an_uncommitted_temp_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone.signed");
        std::fs::write(&path, b"old").unwrap();
        {
            let tmp = Temp::beside(&path).unwrap();
            let mut f = tmp.handle().unwrap();
            f.write_all(b"half").unwrap();
            assert_eq!(entries(dir.path()).len(), 2);
            // Dropped here, as when a run fails before commit.
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), vec!["zone.signed".to_string()]);
    }

    #[test]
    fn a_failed_rename_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename must fail.
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"old").unwrap();
        let err = write(&target, b"new").unwrap_err();
        assert!(format!("{err:#}").contains("cannot move the new file into place"));
        assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"old");
        assert_eq!(entries(dir.path()), vec!["occupied".to_string()]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("file");
        let err = write(&path, b"x").unwrap_err();
        assert!(format!("{err:#}").contains("cannot create a temporary file"));
    }
}
