//! Ctrl-C and SIGTERM during a signing run: once [`install`]ed, the
//! first signal only raises a flag; the signing engine's workers and the
//! pipeline's phases look at it ([`check`]) and stop, the temporary output
//! is removed as it is dropped, the run is audited as failed, and the
//! process exits with 128 + the signal's number. A second signal ends the
//! process at once (nothing is renamed into place either way).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signal received (its number), or 0.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}: nothing was written", signal_name(*.0))]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// 128 + the signal's number, as shells report a signal.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(1)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT (Ctrl-C)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGALRM => "its time limit",
        _ => "a signal",
    }
}

/// Catches SIGINT and SIGTERM for the rest of the process.
pub fn install() -> std::io::Result<()> {
    let received = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Handlers run in the order registered: the first signal passes
        // the shutdown (the flag is down), then raises the flag; a second
        // one finds it up and exits at once.
        let raised = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&raised))?;
        signal_hook::flag::register(sig, raised)?;
        let number = usize::try_from(sig).unwrap_or(0);
        signal_hook::flag::register_usize(sig, Arc::clone(received), number)?;
    }
    Ok(())
}

/// The signal received since [`install`], if any.
pub fn received() -> Option<Interrupted> {
    let sig = RECEIVED.get()?.load(Ordering::Relaxed);
    match i32::try_from(sig) {
        Ok(0) | Err(_) => None,
        Ok(sig) => Some(Interrupted(sig)),
    }
}

/// Stops here if a signal was received.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// One run's own stop flag, beside the process's signals: the signing
/// service stops a job past its time limit (as SIGALRM), or at the end of
/// its shutdown grace (as SIGTERM), without stopping the others.
#[derive(Debug, Clone, Default)]
pub struct Cancel(pub(crate) Option<Arc<AtomicUsize>>);

impl Cancel {
    /// A flag that [`Cancel::cancel`] raises.
    pub fn new() -> Cancel {
        Cancel(Some(Arc::new(AtomicUsize::new(0))))
    }

    /// Stops the run as if it had received `sig`.
    pub fn cancel(&self, sig: i32) {
        if let Some(flag) = &self.0 {
            flag.store(usize::try_from(sig).unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// A signal to the process, else this run's flag.
    pub fn received(&self) -> Option<Interrupted> {
        received().or_else(|| {
            let sig = self.0.as_ref()?.load(Ordering::Relaxed);
            match i32::try_from(sig) {
                Ok(0) | Err(_) => None,
                Ok(sig) => Some(Interrupted(sig)),
            }
        })
    }

    /// Stops here if the process or this run was told to stop.
    pub fn check(&self) -> Result<(), Interrupted> {
        match self.received() {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_128_plus_the_signal_and_the_message_names_it() {
        let i = Interrupted(signal_hook::consts::SIGINT);
        assert_eq!(i.exit_code(), 130);
        assert!(i.to_string().contains("Ctrl-C"), "{i}");
        assert_eq!(Interrupted(signal_hook::consts::SIGTERM).exit_code(), 143);
    }

    #[test]
    fn a_run_is_cancelled_alone() {
        let (a, b) = (Cancel::new(), Cancel::new());
        assert!(a.check().is_ok() && Cancel::default().check().is_ok());
        a.cancel(signal_hook::consts::SIGALRM);
        let stopped = a.check().unwrap_err();
        assert!(stopped.to_string().contains("time limit"), "{stopped}");
        assert!(b.check().is_ok(), "the other run goes on");
        // A flagless Cancel (the local command's) cannot be raised.
        Cancel::default().cancel(signal_hook::consts::SIGTERM);
        assert!(Cancel::default().check().is_ok());
    }
}
