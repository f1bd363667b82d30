//! The signing service (`dnsseal serve`) and its remote client: the
//! signer box's one network door for zones, beside the key maintainer's
//! shell ([`crate::shell`]).
//!
//! - [`config`]: the `[service]` table (listeners, limits, rules);
//! - [`authz`]: who a client is and what it may do;
//! - [`api`]: the versioned wire types and the status codes, shared by
//!   the server and the client;
//! - [`supervisor`]: the token as a supervised resource (one loaded
//!   module, the token lock held while jobs run, away and back);
//! - [`server`]: the HTTP API; [`job`]: one signing request;
//!   [`status`]: status and health; [`work`]: the service's files;
//! - [`listen`]: the Unix socket and TLS listeners, and shutdown;
//! - [`metrics`]: the Prometheus metrics;
//! - [`client`]: `dnsseal sign --server`.

pub mod api;
pub mod authz;
pub mod client;
pub mod config;
pub mod job;
pub mod listen;
pub mod metrics;
pub mod server;
pub mod status;
pub mod supervisor;
pub mod tls;
pub mod work;

/// A mutex's guard; a poisoned one (a job that panicked) is taken as it
/// is: the counts and maps it guards stay usable.
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
