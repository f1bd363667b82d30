//! The token as a supervised resource of the signing service.
//!
//! - **Leases.** A signing job takes a [`Lease`]: the first one takes the
//!   token lock (the one every dnsseal process takes before it touches the
//!   token) and loads the PKCS#11 module; jobs running at once share that
//!   module and its login; the last one to end unloads the module
//!   (C_Finalize) and releases the lock, so that an idle service never
//!   holds up `dnsseal keys`, `policy run` or the key maintainer's shell,
//!   and every burst of work starts on a freshly initialised module: after
//!   a device error or an HSM restart nothing stale (sessions, object
//!   handles, a wedged module) outlives the jobs that saw it.
//! - **Health.** What the jobs find (a token fault, exit 5, 6 or 13, marks
//!   the token away; a finished job marks it present) and, while no job
//!   runs, a look every `token_check` seconds (module loaded, token found,
//!   token info read) keep [`TokenState`] current, so that health and
//!   status answer while the token is away and the service resumes by
//!   itself when it is back. The idle look gives way to another process
//!   holding the token lock.

use std::sync::{Arc, Mutex};

use super::locked;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::failure::{exit, exit_code};
use crate::pin::Pin;
use crate::project::{open_module, release_token_locks, try_lock_token};
use crate::service::api::TokenHealth;
use crate::token::Module;

/// The token as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// Not looked at yet.
    Unknown,
    Present {
        since: Timestamp,
    },
    Away {
        since: Timestamp,
        error: String,
    },
}

impl TokenState {
    pub fn health(&self) -> TokenHealth {
        let (state, since, error) = match self {
            TokenState::Unknown => ("unknown", None, None),
            TokenState::Present { since } => ("present", Some(since), None),
            TokenState::Away { since, error } => ("away", Some(since), Some(error.clone())),
        };
        TokenHealth {
            state: state.into(),
            since: since.map(|t| t.rfc3339()),
            error,
        }
    }

    pub fn is_away(&self) -> bool {
        matches!(self, TokenState::Away { .. })
    }
}

/// The token's state after a job or a look: a token fault marks it away
/// (a later fault keeps the first time and the newest message); success
/// marks it present; other failures (the input, the keys) say nothing of
/// it. `None`: no change.
pub fn next_state(
    state: &TokenState,
    result: Result<(), &anyhow::Error>,
    now: Timestamp,
) -> Option<TokenState> {
    match (state, result) {
        (TokenState::Present { .. }, Ok(())) => None,
        (_, Ok(())) => Some(TokenState::Present { since: now }),
        (_, Err(e)) if !is_token_fault(e) => None,
        (TokenState::Away { since, .. }, Err(e)) => Some(TokenState::Away {
            since: *since,
            error: format!("{e:#}"),
        }),
        (_, Err(e)) => Some(TokenState::Away {
            since: now,
            error: format!("{e:#}"),
        }),
    }
}

/// Whether a failure says the token (not the input) is the trouble.
pub fn is_token_fault(err: &anyhow::Error) -> bool {
    matches!(
        exit_code(err),
        exit::MODULE | exit::TOKEN | exit::TOKEN_FAILED
    )
}

struct Leases {
    count: usize,
    module: Option<Arc<Module>>,
}

/// The service's token: its leases, its state, and the PIN.
pub struct Supervisor {
    cfg: Config,
    pin: Pin,
    leases: Mutex<Leases>,
    state: Mutex<TokenState>,
}

/// A job's hold on the token: the lock and the loaded module.
pub struct Lease<'s> {
    sup: &'s Supervisor,
    module: Option<Arc<Module>>,
}

impl Supervisor {
    pub fn new(cfg: Config, pin: Pin) -> Supervisor {
        Supervisor {
            cfg,
            pin,
            leases: Mutex::new(Leases {
                count: 0,
                module: None,
            }),
            state: Mutex::new(TokenState::Unknown),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn pin(&self) -> &secrecy::SecretString {
        self.pin.secret()
    }

    pub fn state(&self) -> TokenState {
        locked(&self.state).clone()
    }

    /// Takes a lease, waiting for the token lock when `wait` (a job), or
    /// giving way when another process holds it (`None`: the idle look).
    /// A module that will not load marks the token away.
    pub fn lease(&self, wait: bool, now: Timestamp) -> anyhow::Result<Option<Lease<'_>>> {
        let mut leases = locked(&self.leases);
        if leases.count == 0 {
            if wait {
                crate::project::lock_token(&self.cfg.keystore)?;
            } else if !try_lock_token(&self.cfg.keystore)? {
                return Ok(None);
            }
            match open_module(&self.cfg) {
                Ok(m) => leases.module = Some(Arc::new(m)),
                Err(e) => {
                    release_token_locks();
                    self.saw(Err(&e), now);
                    return Err(e);
                }
            }
        }
        leases.count += 1;
        Ok(Some(Lease {
            sup: self,
            module: leases.module.clone(),
        }))
    }

    /// Records what a job or a look found (see [`next_state`]).
    pub fn saw(&self, result: Result<(), &anyhow::Error>, now: Timestamp) {
        let mut state = locked(&self.state);
        if let Some(next) = next_state(&state, result, now) {
            match &next {
                TokenState::Away { error, .. } if !state.is_away() => {
                    tracing::warn!("the token is away: {error}")
                }
                TokenState::Present { .. } => tracing::info!("the token is present"),
                _ => {}
            }
            *state = next;
        }
    }

    /// The idle look: nothing when a job or another process holds the
    /// token; else the module loaded, the token found and its info read.
    pub fn look(&self, now: Timestamp) {
        if locked(&self.leases).count > 0 {
            return;
        }
        let looked = self.lease(false, now).and_then(|lease| match lease {
            None => Ok(None),
            Some(lease) => {
                let module = lease.module()?;
                let token = module.find_token(&self.cfg.token.selector)?;
                token.status()?;
                Ok(Some(()))
            }
        });
        match looked {
            Ok(None) => {}
            Ok(Some(())) => self.saw(Ok(()), now),
            Err(e) => self.saw(Err(&e), now),
        }
    }
}

impl Lease<'_> {
    /// The loaded module.
    pub fn module(&self) -> anyhow::Result<Arc<Module>> {
        self.module
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the token's module is not loaded"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut leases = locked(&self.sup.leases);
        self.module = None;
        leases.count = leases.count.saturating_sub(1);
        if leases.count == 0 {
            // The last user: C_Finalize (when no job still holds a copy),
            // then the lock.
            leases.module = None;
            release_token_locks();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::token::TokenError;

    #[test]
    fn token_faults_mark_the_token_away_and_success_brings_it_back() {
        let t0 = Timestamp::from_unix(1_700_000_000);
        let t1 = Timestamp::from_unix(1_700_000_100);
        let fault = anyhow::Error::new(TokenError::NotFound {
            selector: "label 'x'".into(),
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            found: "none".into(),
        });
        let input = anyhow::Error::new(Failure::BadInput("db:3: bad".into()));
        assert!(is_token_fault(&fault) && !is_token_fault(&input));
        let unknown = TokenState::Unknown;
        assert_eq!(next_state(&unknown, Err(&input), t0), None);
        let away = next_state(&unknown, Err(&fault), t0).unwrap();
        assert!(away.is_away());
        assert_eq!(away.health().state, "away");
        assert!(away.health().error.unwrap().contains("label 'x'"));
        let still = next_state(&away, Err(&fault), t1).unwrap();
        assert!(matches!(still, TokenState::Away { since, .. } if since == t0));
        let back = next_state(&still, Ok(()), t1).unwrap();
        assert_eq!(back, TokenState::Present { since: t1 });
        assert_eq!(next_state(&back, Ok(()), t1), None);
        assert_eq!(next_state(&back, Err(&input), t1), None);
        assert_eq!(TokenState::Unknown.health().state, "unknown");
    }
}
