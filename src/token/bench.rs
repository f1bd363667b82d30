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
