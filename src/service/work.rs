//! The signing service's files, under `[service] work_dir`:
//!
//! - `jobs/N/`: one request's upload (`zone`) and output (`signed`, and
//!   its signing state). Removed when the request ends, however it ends;
//!   whatever a killed service left there is removed when it starts.
//! - `zones/NAME/`: each zone's last signed version (`signed`, its state,
//!   and `last.json`), hard-linked from the job that made it. A client's
//!   `--incremental` reuses it when the client still has the same output
//!   (same SHA-256).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::service::api::LastSigned;
use crate::sign::state;

/// One request's directory, removed when dropped.
#[derive(Debug)]
pub struct JobDir {
    dir: PathBuf,
}

impl JobDir {
    /// Makes `work_dir/jobs/<id>` (mode 0700).
    pub fn create(work_dir: &Path, id: u64) -> io::Result<JobDir> {
        let jobs = work_dir.join("jobs");
        fs::create_dir_all(&jobs)?;
        let dir = jobs.join(id.to_string());
        let _ = fs::remove_dir_all(&dir);
        make_private_dir(&dir)?;
        Ok(JobDir { dir })
    }

    /// Where the upload goes.
    pub fn input(&self) -> PathBuf {
        self.dir.join("zone")
    }

    /// Where the signed zone goes.
    pub fn output(&self) -> PathBuf {
        self.dir.join("signed")
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", self.dir.display());
            }
        }
    }
}

fn make_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(dir)
}

/// Removes what a stopped or killed service left in `work_dir/jobs`;
/// returns how many jobs' files were removed.
pub fn clear_jobs(work_dir: &Path) -> io::Result<usize> {
    let jobs = work_dir.join("jobs");
    let entries = match fs::read_dir(&jobs) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        fs::remove_dir_all(entry?.path())?;
        n += 1;
    }
    Ok(n)
}

/// The directory name of a zone: its name in lower case without the
/// final dot when that is plain (letters, digits, `-`, `_`, `.`), else
/// its hex; the root is `root.`.
pub fn zone_dir_name(zone: &str) -> String {
    let name = zone.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return "root.".into();
    }
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if plain {
        name
    } else {
        format!("hex.{}", hex::encode(name))
    }
}

/// A zone's last signed version in the service.
#[derive(Debug, Clone)]
pub struct ZoneFiles {
    dir: PathBuf,
}

impl ZoneFiles {
    pub fn new(work_dir: &Path, zone: &str) -> ZoneFiles {
        ZoneFiles {
            dir: work_dir.join("zones").join(zone_dir_name(zone)),
        }
    }

    /// The last signed zone (for `--incremental`).
    pub fn signed(&self) -> PathBuf {
        self.dir.join("signed")
    }

    /// What the last signing was.
    pub fn last(&self) -> Option<LastSigned> {
        let text = fs::read(self.dir.join("last.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Makes the job's output (and its state) this zone's last signed
    /// version: hard links, each renamed into place, then `last.json`.
    /// The job's own names stay until the response has been sent.
    pub fn keep(&self, output: &Path, last: &LastSigned) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let signed = self.signed();
        // The state first: a state without its zone is never used (its
        // digest of the zone file no longer matches).
        let out_state = state::path_for(output);
        if out_state.exists() {
            link_into_place(&out_state, &state::path_for(&signed))?;
        } else {
            let _ = fs::remove_file(state::path_for(&signed));
        }
        link_into_place(output, &signed)?;
        crate::atomic::write(&self.dir.join("last.json"), &serde_json::to_vec(last)?)?;
        Ok(())
    }
}

/// `target` becomes another name of `source`, atomically.
fn link_into_place(source: &Path, target: &Path) -> io::Result<()> {
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    fs::hard_link(source, &tmp)?;
    fs::rename(&tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_directories_are_plain_names_or_hex() {
        assert_eq!(zone_dir_name("Example.COM."), "example.com");
        assert_eq!(zone_dir_name("."), "root.");
        assert_eq!(
            zone_dir_name("a/b.example."),
            format!("hex.{}", hex::encode("a/b.example"))
        );
        assert_eq!(zone_dir_name(".x."), format!("hex.{}", hex::encode(".x")));
        assert!(!zone_dir_name("x\\032y.").contains('\\'));
    }

    #[test]
    fn a_job_directory_goes_when_dropped_and_leftovers_at_start() {
        let work = tempfile::tempdir().unwrap();
        let job = JobDir::create(work.path(), 7).unwrap();
        fs::write(job.input(), b"zone").unwrap();
        let dir = job.input().parent().unwrap().to_path_buf();
        assert!(dir.exists());
        drop(job);
        assert!(!dir.exists());
        // A killed service's job.
        let left = JobDir::create(work.path(), 8).unwrap();
        fs::write(left.output(), b"half").unwrap();
        std::mem::forget(left);
        assert_eq!(clear_jobs(work.path()).unwrap(), 1);
        assert_eq!(fs::read_dir(work.path().join("jobs")).unwrap().count(), 0);
    }

    #[test]
    fn a_kept_output_outlives_its_job() {
        let work = tempfile::tempdir().unwrap();
        let zone = ZoneFiles::new(work.path(), "example.com.");
        let last = LastSigned {
            at: "2026-12-04T00:00:00Z".into(),
            serial: 7,
            output_sha256: "00".repeat(32),
            earliest_expiry: None,
        };
        for (n, text) in [(1, "first"), (2, "second")] {
            let job = JobDir::create(work.path(), n).unwrap();
            fs::write(job.output(), text).unwrap();
            fs::write(state::path_for(&job.output()), text).unwrap();
            zone.keep(&job.output(), &last).unwrap();
        }
        assert_eq!(fs::read_to_string(zone.signed()).unwrap(), "second");
        assert_eq!(
            fs::read_to_string(state::path_for(&zone.signed())).unwrap(),
            "second"
        );
        assert_eq!(zone.last().unwrap(), last);
        // A job without a state leaves none behind for the zone.
        let job = JobDir::create(work.path(), 3).unwrap();
        fs::write(job.output(), "third").unwrap();
        zone.keep(&job.output(), &last).unwrap();
        assert!(!state::path_for(&zone.signed()).exists());
    }
}
