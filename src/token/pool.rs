//! Logged-in sessions for parallel signing, one per worker, and what a
//! worker does when its session fails: a transient or gone-token fault
//! ([`super::fault`]) closes the session, opens a new one, logs in again
//! if the token forgot the login, looks every key up again (object handles
//! do not survive a reconnect) and makes the session's key copies again,
//! then signs again, a bounded number of times with backoff.
//!
//! The pool borrows the user PIN for those logins (no copy of it is
//! made: the process holds the PIN once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::fault::Retry;
use super::{ck, objects, KeyObjects, KeyPairObjects, SignMechanism, Token, TokenError};

/// Sessions for parallel signing with a fixed set of keys.
pub struct SignerPool<'p> {
    ctx: Pkcs11,
    slot: Slot,
    pin: &'p SecretString,
    workers: Vec<Mutex<Worker>>,
    /// Per key: its CKA_ID and mechanism.
    keys: Vec<(Vec<u8>, SignMechanism)>,
    /// The private objects' handles, in `keys` order; looked up again
    /// after a session is reopened.
    handles: RwLock<Vec<ObjectHandle>>,
    /// Whether each session signs with its own copies of the keys.
    copies: bool,
    retry: Retry,
    reopened: AtomicUsize,
}

/// One worker's session (None between closing a failed one and opening
/// its replacement), and its copies of the keys when the pool uses copies
/// (same order as the pool's keys).
struct Worker {
    session: Option<Session>,
    copies: Option<Vec<ObjectHandle>>,
}

impl Worker {
    /// The open session; a worker whose reopening failed half way has
    /// none, which reads as a lost session (and is reopened again).
    fn session(&self) -> Result<&Session, TokenError> {
        self.session.as_ref().ok_or_else(|| {
            TokenError::from_ck(CkError::Pkcs11(
                RvError::SessionHandleInvalid,
                cryptoki::context::Function::OpenSession,
            ))
        })
    }
}

fn poisoned() -> TokenError {
    TokenError::Pkcs11 {
        function: "session".into(),
        rv: "a worker panicked".into(),
    }
}

/// The private key object with this CKA_ID, seen from `session`.
fn private_key(session: &Session, id: &[u8]) -> Result<ObjectHandle, TokenError> {
    let template = [
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
        Attribute::Class(ObjectClass::PRIVATE_KEY),
    ];
    ck(session.find_objects(&template))?
        .into_iter()
        .next()
        .ok_or_else(|| TokenError::KeyNotFound {
            id: hex::encode(id),
        })
}

/// A session copy of each key, made in `session`.
fn copy_keys(session: &Session, handles: &[ObjectHandle]) -> Result<Vec<ObjectHandle>, TokenError> {
    let template = [Attribute::Token(false)];
    handles
        .iter()
        .map(|h| ck(session.copy_object(*h, &template)))
        .collect()
}

impl SignerPool<'_> {
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Closes all but the first `n` sessions (at least one stays).
    pub fn keep(&mut self, n: usize) {
        self.workers.truncate(n.max(1));
    }

    /// Whether the keys are used as token objects or session copies.
    pub fn key_objects(&self) -> KeyObjects {
        if self.copies {
            KeyObjects::SessionCopies
        } else {
            KeyObjects::TokenObjects
        }
    }

    /// How many times a worker's session was reopened after a fault.
    pub fn reopened(&self) -> usize {
        self.reopened.load(Ordering::Relaxed)
    }

    /// What the token holds under this CKA_ID, read on the first session
    /// (to check what is about to be published, or to sign). For a key of
    /// the pool, the attributes are those of the very private object the
    /// pool signs with (and copies, see [`SignerPool::use_key_objects`]).
    pub fn key_pair(&self, id: &[u8]) -> Result<KeyPairObjects, TokenError> {
        let worker = self.workers[0].lock().map_err(|_| poisoned())?;
        let handles = self.handles.read().map_err(|_| poisoned())?;
        let handle = self
            .keys
            .iter()
            .position(|(key_id, _)| key_id.as_slice() == id)
            .and_then(|i| handles.get(i).copied());
        objects::read_key_pair(worker.session()?, id, handle)
    }

    /// Has each session sign with its own session copy of each key when
    /// `key_objects` asks for copies; a token that will not copy one (e.g.
    /// SoftHSMv2 for a key that is not CKA_MODIFIABLE) leaves every session
    /// on the token objects. Call it once the keys are checked: the copies
    /// are made from the objects [`SignerPool::key_pair`] read. Copies
    /// already made when one fails go when their sessions close.
    pub fn use_key_objects(&mut self, key_objects: KeyObjects) {
        self.copies = false;
        for w in &mut self.workers {
            if let Ok(w) = w.get_mut() {
                w.copies = None;
            }
        }
        if key_objects == KeyObjects::TokenObjects {
            return;
        }
        let made: Result<Vec<Vec<ObjectHandle>>, TokenError> = (|| {
            let handles = self.handles.read().map_err(|_| poisoned())?;
            self.workers
                .iter()
                .map(|w| {
                    let w = w.lock().map_err(|_| poisoned())?;
                    copy_keys(w.session()?, &handles)
                })
                .collect()
        })();
        match made {
            Ok(copies) => {
                for (w, c) in self.workers.iter_mut().zip(copies) {
                    if let Ok(w) = w.get_mut() {
                        w.copies = Some(c);
                    }
                }
                self.copies = true;
            }
            Err(e) => tracing::info!("signing with the token objects: {e}"),
        }
    }

    /// Signs with key `key` on worker `worker`'s session; a transient
    /// fault reopens the session and signs again (see the module doc).
    pub fn sign(&self, worker: usize, key: usize, input: &[u8]) -> Result<Vec<u8>, TokenError> {
        let worker = worker % self.workers.len();
        let mut attempt = 0;
        loop {
            let err = match self.sign_once(worker, key, input) {
                Ok(sig) => return Ok(sig),
                Err(e) => e,
            };
            if !err.fault().retry() || attempt >= self.retry.attempts {
                return Err(err);
            }
            tracing::warn!(
                "signing session {worker}: {err}; reopening it ({} of {})",
                attempt + 1,
                self.retry.attempts
            );
            std::thread::sleep(self.retry.delay(attempt));
            attempt += 1;
            match self.reopen(worker) {
                Ok(()) => {}
                Err(e) if e.fault().retry() && attempt < self.retry.attempts => {
                    tracing::warn!("reopening signing session {worker}: {e}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn sign_once(&self, worker: usize, key: usize, input: &[u8]) -> Result<Vec<u8>, TokenError> {
        let (_, mech) = self.keys.get(key).ok_or_else(|| TokenError::KeyNotFound {
            id: format!("#{key}"),
        })?;
        let w = self.workers[worker].lock().map_err(|_| poisoned())?;
        let handle = match &w.copies {
            Some(copies) => copies[key],
            None => self.handles.read().map_err(|_| poisoned())?[key],
        };
        ck(w.session()?.sign(&mech.mechanism(), handle, input))
    }

    /// A new session for `worker`: logged in, the keys looked up again,
    /// its copies made again.
    fn reopen(&self, worker: usize) -> Result<(), TokenError> {
        let mut w = self.workers[worker].lock().map_err(|_| poisoned())?;
        // The failed session is closed first: a token that hands out a
        // closed session's number again must not have the new session
        // closed by the old one's going. Closing a session the token has
        // already dropped fails, as expected, and says nothing.
        w.copies = None;
        if let Some(old) = w.session.take() {
            let _ = old.close();
        }
        let session = ck(self.ctx.open_ro_session(self.slot))?;
        // The login belongs to the token, not the session: a new session
        // shares it unless the token dropped every session (a reset).
        match session.login(UserType::User, Some(self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(TokenError::from_ck(e)),
        }
        let fresh = self
            .keys
            .iter()
            .map(|(id, _)| private_key(&session, id))
            .collect::<Result<Vec<_>, _>>()?;
        let copies = match self.copies {
            true => Some(copy_keys(&session, &fresh)?),
            false => None,
        };
        *self.handles.write().map_err(|_| poisoned())? = fresh;
        w.session = Some(session);
        w.copies = copies;
        self.reopened.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Token<'_> {
    /// Logs in and opens `workers` sessions for signing with the keys of
    /// these CKA_IDs, through the token objects until
    /// [`SignerPool::use_key_objects`] says otherwise.
    pub fn signer_pool<'p>(
        &self,
        pin: &'p SecretString,
        workers: usize,
        keys: &[(Vec<u8>, SignMechanism)],
    ) -> Result<SignerPool<'p>, TokenError> {
        let first = self.login(pin)?;
        let handles = keys
            .iter()
            .map(|(id, _)| private_key(&first.session, id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sessions = vec![first.session];
        for _ in 1..workers.max(1) {
            sessions.push(ck(self.module.ctx.open_ro_session(self.slot))?);
        }
        Ok(SignerPool {
            ctx: self.module.ctx.clone(),
            slot: self.slot,
            pin,
            workers: sessions
                .into_iter()
                .map(|session| {
                    Mutex::new(Worker {
                        session: Some(session),
                        copies: None,
                    })
                })
                .collect(),
            keys: keys.to_vec(),
            handles: RwLock::new(handles),
            copies: false,
            retry: Retry::default(),
            reopened: AtomicUsize::new(0),
        })
    }
}
