//! The token's raw signing rate: C_Sign on one prepared input, one session
//! per worker of a [`SignerPool`], no host work beyond that. It is the
//! ceiling that `dnsseal sign` is measured against (`dnsseal token bench`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{SignerPool, TokenError};

/// What a raw run measured.
#[derive(Debug, Clone, Copy)]
pub struct RawRate {
    pub signatures: u64,
    pub seconds: f64,
}

impl RawRate {
    pub fn per_second(&self) -> f64 {
        self.signatures as f64 / self.seconds
    }
}

/// What a signing rate means for a zone of `signatures` RRSIGs: seconds
/// for a full signing, and token seconds per day for keeping it signed
/// (each signature is made again once every `validity - refresh`
/// seconds: `sign -i` re-signs what expires within the refresh window).
pub fn resign_seconds(rate: f64, signatures: u64, validity: i64, refresh: i64) -> (f64, f64) {
    if rate <= 0.0 {
        return (f64::INFINITY, f64::INFINITY);
    }
    let full = signatures as f64 / rate;
    let cycle = (validity - refresh).max(1) as f64;
    (full, full * 86_400.0 / cycle)
}

/// Signs `input` with the pool's key `key` on every worker for `seconds`
/// (at least 0.1 s); the first token error stops the run and is returned.
pub fn raw_rate(
    pool: &SignerPool,
    key: usize,
    input: &[u8],
    seconds: f64,
) -> Result<RawRate, TokenError> {
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..pool.workers())
            .map(|w| {
                let (count, stop) = (&count, &stop);
                s.spawn(move || -> Result<(), TokenError> {
                    while !stop.load(Ordering::Relaxed) {
                        pool.sign(w, key, input)?;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds.max(0.1)));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(TokenError::Pkcs11 {
                    function: "C_Sign".into(),
                    rv: "a signing thread panicked".into(),
                })
            })
        })
    })?;
    Ok(RawRate {
        signatures: count.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::resign_seconds;

    #[test]
    fn a_slow_token_keeps_a_big_zone_signed_with_a_fraction_of_each_day() {
        // 200 C_Sign/s, 1M signatures, 14-day validity refreshed 5 days
        // before expiry: 5000 s for a full signing, re-made every 9 days.
        let (full, daily) = resign_seconds(200.0, 1_000_000, 14 * 86_400, 5 * 86_400);
        assert!((full - 5000.0).abs() < 1e-9);
        assert!((daily - 5000.0 / 9.0).abs() < 1e-9);
        assert!(resign_seconds(0.0, 10, 2, 1).0.is_infinite());
    }
}
