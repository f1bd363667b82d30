//! The one clock every command reads.
//!
//! `--now T` makes a whole run act as if the clock said `T`: key timings,
//! audit times and (later) signature times and rollover steps all come from
//! here, so that operators and tests can rehearse months of key life in
//! seconds.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A point in time, in whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a time string could not be read.
#[derive(Debug, thiserror::Error)]
#[error("'{input}' is not a time: use YYYYMMDDHHMMSS (UTC) or RFC 3339, e.g. 2026-11-25T15:00:00Z")]
pub struct TimeParseError {
    input: String,
}

impl Timestamp {
    /// The system clock.
    pub fn system_now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    pub const fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Reads `YYYYMMDDHHMMSS` (UTC, as in DNSSEC timing fields) or RFC 3339.
    pub fn parse(input: &str) -> Result<Self, TimeParseError> {
        let err = || TimeParseError {
            input: input.to_string(),
        };
        let s = input.trim();
        if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
            let fmt = format_description!("[year][month][day][hour][minute][second]");
            let t = PrimitiveDateTime::parse(s, &fmt).map_err(|_| err())?;
            return Ok(Timestamp(t.assume_utc().unix_timestamp()));
        }
        OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| err())
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC)
    }

    /// RFC 3339 in UTC, e.g. `2026-11-25T15:00:00Z`.
    pub fn rfc3339(self) -> String {
        self.datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.0.to_string())
    }

    /// `YYYYMMDDHHMMSS` in UTC, the DNSSEC presentation form.
    pub fn compact(self) -> String {
        let fmt = format_description!("[year][month][day][hour][minute][second]");
        self.datetime()
            .format(&fmt)
            .unwrap_or_else(|_| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    /// RFC 3339, as in `--json` output.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// The clock of one run: the system clock, or the time given with `--now`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    fixed: Option<Timestamp>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { fixed: None }
    }

    pub fn fixed(at: Timestamp) -> Self {
        Clock { fixed: Some(at) }
    }

    pub fn now(&self) -> Timestamp {
        self.fixed.unwrap_or_else(Timestamp::system_now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_rfc3339_agree() {
        let a = Timestamp::parse("20261125150000").unwrap();
        let b = Timestamp::parse("2026-11-25T15:00:00Z").unwrap();
        let c = Timestamp::parse("2026-11-25T16:00:00+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.unix(), 1_795_618_800);
        assert_eq!(a.compact(), "20261125150000");
        assert_eq!(a.rfc3339(), "2026-11-25T15:00:00Z");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "2026", "20261325150000", "yesterday", "2026-11-25"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_clock_does_not_move() {
        let t = Timestamp::from_unix(42);
        assert_eq!(Clock::fixed(t).now(), t);
    }
}
