//! What an auditor does with a log away from the signer: check it against
//! the head the keystore remembers ([`check_head`]), and cut an excerpt
//! from a time on in JSON lines or CSV ([`excerpt`], [`render`]).

use std::path::Path;

use super::{csv_row, Head, Record, CSV_HEADER};
use crate::clock::Timestamp;
use crate::failure::Failure;

/// The formats of `audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One record a line, exactly as in the log (an excerpt that
    /// `audit verify --excerpt` checks).
    Jsonl,
    /// A header and one row a record ([`CSV_HEADER`]).
    Csv,
}

/// Checks an intact log (its records, its last record) against the head
/// the keystore remembers: records cut off the end, a log replaced by
/// another, or an emptied log are verification failures.
pub fn check_head(
    path: &Path,
    records: &[Record],
    last: Option<&Head>,
    known: Option<&(u64, String)>,
) -> Result<(), Failure> {
    match (known, last) {
        (Some((seq, hash)), Some(last)) => {
            if *seq > last.seq {
                return Err(Failure::Verify(format!(
                    "{}: the keystore last saw record {seq}, but the log ends at record {}: records were cut off the end",
                    path.display(),
                    last.seq
                )));
            }
            let at = records.iter().find(|r| r.seq == *seq);
            if at.is_none_or(|r| r.hash != *hash) {
                return Err(Failure::Verify(format!(
                    "{}: record {seq} is not the one the keystore saw: the log was replaced",
                    path.display()
                )));
            }
            Ok(())
        }
        (Some(_), None) => Err(Failure::Verify(format!(
            "{}: the log is empty but the keystore saw records",
            path.display()
        ))),
        (None, _) => Ok(()),
    }
}

/// The records from the first one at or after `since` to the end: records
/// made with `--now` may carry earlier times, and an excerpt must not have
/// holes.
pub fn excerpt(records: &[Record], since: Option<Timestamp>) -> &[Record] {
    let start = match since {
        None => 0,
        Some(t) => records
            .iter()
            .position(|r| Timestamp::parse(&r.time).is_ok_and(|rt| rt >= t))
            .unwrap_or(records.len()),
    };
    &records[start..]
}

/// Records as the export's text.
pub fn render(records: &[Record], format: Format) -> String {
    let mut out = String::new();
    if format == Format::Csv {
        out.push_str(CSV_HEADER);
        out.push('\n');
    }
    for r in records {
        match format {
            Format::Jsonl => out.push_str(&r.canonical_line()),
            Format::Csv => out.push_str(&csv_row(r)),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{append, verify, Event};

    fn log(times: &[i64]) -> (tempfile::TempDir, Vec<Record>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut head = None;
        for (i, t) in times.iter().enumerate() {
            let event = Event {
                command: "test".into(),
                detail: format!("record {i}"),
                ..Event::default()
            };
            head = Some(append(&path, Timestamp::from_unix(*t), &event, head.as_ref()).unwrap());
        }
        let (records, _) = verify(&path).unwrap();
        (dir, records)
    }

    #[test]
    fn the_head_the_keystore_saw_must_be_in_the_log() {
        let (_d, records) = log(&[10, 20, 30]);
        let last = Head {
            seq: 3,
            hash: records[2].hash.clone(),
        };
        let p = Path::new("audit.log");
        let seen = (2, records[1].hash.clone());
        assert!(check_head(p, &records, Some(&last), Some(&seen)).is_ok());
        assert!(check_head(p, &records, Some(&last), None).is_ok());
        let cut = (4, "x".to_string());
        let e = check_head(p, &records, Some(&last), Some(&cut)).unwrap_err();
        assert!(e.to_string().contains("cut off the end"), "{e}");
        let replaced = (2, "0".repeat(64));
        let e = check_head(p, &records, Some(&last), Some(&replaced)).unwrap_err();
        assert!(e.to_string().contains("was replaced"), "{e}");
        let e = check_head(p, &[], None, Some(&seen)).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert_eq!(e.exit_code(), crate::failure::exit::VERIFY);
    }

    #[test]
    fn an_excerpt_runs_from_the_first_record_at_or_after_the_time() {
        let (_d, records) = log(&[10, 30, 20, 40]);
        let seqs = |r: &[Record]| r.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(excerpt(&records, None)), [1, 2, 3, 4]);
        // Record 3 is earlier than record 2 but stays: no holes.
        assert_eq!(
            seqs(excerpt(&records, Some(Timestamp::from_unix(25)))),
            [2, 3, 4]
        );
        assert!(excerpt(&records, Some(Timestamp::from_unix(99))).is_empty());
    }

    #[test]
    fn exports_are_the_log_lines_or_csv_rows() {
        let (_d, records) = log(&[10, 20]);
        let jsonl = render(&records, Format::Jsonl);
        assert_eq!(jsonl.lines().count(), 2);
        assert_eq!(
            jsonl.lines().next(),
            Some(records[0].canonical_line().as_str())
        );
        let csv = render(&records, Format::Csv);
        assert_eq!(csv.lines().next(), Some(CSV_HEADER));
        assert_eq!(csv.lines().nth(2), Some(csv_row(&records[1]).as_str()));
    }
}
