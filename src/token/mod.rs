//! The PKCS#11 token: the only module that talks to `cryptoki`.
//!
//! A [`Module`] is one loaded PKCS#11 library; [`Module::find_token`] picks
//! our token by label or serial; [`Token::login`] opens a logged-in
//! [`UserSession`] that generates key pairs, reads public keys, signs and
//! destroys objects. Keys are always addressed by CKA_ID: object handles do
//! not survive a new session or a restart of the HSM, so none leaves this
//! module.
//!
//! Private keys are generated with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE
//! true, CKA_EXTRACTABLE false, and may sign and nothing else (CKA_DECRYPT,
//! CKA_UNWRAP, CKA_DERIVE, CKA_SIGN_RECOVER false). Both halves of a pair,
//! generated or imported, are CKA_MODIFIABLE false, so that nobody can widen
//! a key's usage later; the private half is CKA_COPYABLE only where the HSM
//! profile signs with session copies ([`KeyObjects`]). CKA_DESTROYABLE stays
//! true: `keys delete --destroy` must be able to destroy a key (SoftHSMv2
//! refuses C_DestroyObject on a key that is not destroyable). No function
//! here reads a private key attribute that holds key material.
//!
//! Whether a key object is what the keystore records is decided in
//! [`crate::keys::objects`]; this module only reads what it decides on
//! ([`KeyPairObjects`], through [`UserSession::key_pair`] and
//! [`SignerPool::key_pair`]).

pub mod bench;
mod engine;
pub mod fault;
mod objects;
mod pool;

pub use objects::{KeyPairObjects, ObjectKind, PrivateKeyAttributes};
pub use pool::SignerPool;

use std::fmt;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Decode;
use secrecy::SecretString;
use serde::Serialize;
use zeroize::Zeroize;

use crate::config::{Profile, TokenSelector};

/// DER of the named curve OID prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER of the named curve OID secp384r1 (1.3.132.0.34).
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
/// DER of id-Ed25519 (1.3.101.112, RFC 8410).
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
/// RSA public exponent for new keys: F4 = 65537.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// What went wrong talking to the token. Each variant is one thing an
/// operator can act on; `Pkcs11` keeps the function and return code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    ModuleLoad { path: PathBuf, reason: String },
    #[error("no token with {selector} in PKCS#11 module {module} (slots with tokens: {found})")]
    NotFound {
        selector: String,
        module: PathBuf,
        found: String,
    },
    #[error("{count} tokens match {selector}; select one by serial in dnsseal.toml")]
    Ambiguous { selector: String, count: usize },
    #[error("the token refused the PIN (CKR_PIN_INCORRECT); after too many wrong PINs it locks")]
    PinIncorrect,
    #[error("the token's PIN is locked (CKR_PIN_LOCKED); the security officer must reset it")]
    PinLocked,
    #[error("the PIN has a length the token does not accept (CKR_PIN_LEN_RANGE)")]
    PinLength,
    #[error("the token cannot do {what}: {reason}")]
    Unsupported { what: String, reason: String },
    #[error("no key pair with CKA_ID {id} on the token")]
    KeyNotFound { id: String },
    #[error("the token has no free slot to initialise a new token in")]
    NoFreeSlot,
    #[error("the token returned a public key dnsseal cannot read: {0}")]
    BadPublicKey(String),
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 { function: String, rv: String },
    /// A transient fault that outlasted the retries, or a token gone.
    #[error("PKCS#11 {function} failed: {rv} ({})", match fault {
        fault::Fault::Gone => "the token is gone: removed, or no longer answering",
        _ => "the token kept failing: a device or session fault",
    })]
    Failed {
        function: String,
        rv: String,
        fault: fault::Fault,
    },
}

impl TokenError {
    /// What the error says about the token ([`fault`]).
    pub fn fault(&self) -> fault::Fault {
        match self {
            TokenError::Failed { fault, .. } => *fault,
            _ => fault::Fault::Fatal,
        }
    }

    fn from_ck(err: CkError) -> TokenError {
        match err {
            CkError::Pkcs11(RvError::PinIncorrect, _) => TokenError::PinIncorrect,
            CkError::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked,
            CkError::Pkcs11(RvError::PinLenRange, _) => TokenError::PinLength,
            CkError::Pkcs11(
                rv @ (RvError::MechanismInvalid
                | RvError::KeySizeRange
                | RvError::CurveNotSupported
                | RvError::DomainParamsInvalid
                | RvError::AttributeValueInvalid
                | RvError::AttributeTypeInvalid
                | RvError::TemplateInconsistent),
                f,
            ) => TokenError::Unsupported {
                what: fault::function_name(f),
                reason: fault::rv_name(rv),
            },
            CkError::Pkcs11(rv, f) => match fault::classify(rv) {
                fault::Fault::Fatal => TokenError::Pkcs11 {
                    function: fault::function_name(f),
                    rv: fault::rv_name(rv),
                },
                fault => TokenError::Failed {
                    function: fault::function_name(f),
                    rv: fault::rv_name(rv),
                    fault,
                },
            },
            CkError::LibraryLoading(e) => TokenError::ModuleLoad {
                path: PathBuf::new(),
                reason: e.to_string(),
            },
            other => TokenError::Pkcs11 {
                function: "cryptoki".into(),
                rv: other.to_string(),
            },
        }
    }
}

fn ck<T>(r: Result<T, CkError>) -> Result<T, TokenError> {
    r.map_err(TokenError::from_ck)
}

/// The kinds of key pair dnsseal makes; the caller maps DNSSEC algorithms
/// onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    Rsa { bits: u32 },
    EcP256,
    EcP384,
    Ed25519,
}

impl KeySpec {
    fn generation_mechanism(self) -> Mechanism<'static> {
        match self {
            KeySpec::Rsa { .. } => Mechanism::RsaPkcsKeyPairGen,
            KeySpec::EcP256 | KeySpec::EcP384 => Mechanism::EccKeyPairGen,
            KeySpec::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
        }
    }

    /// The mechanisms a token must list to generate and sign with this kind.
    pub fn mechanism_types(self) -> [MechanismType; 2] {
        match self {
            KeySpec::Rsa { .. } => [
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                MechanismType::RSA_PKCS,
            ],
            KeySpec::EcP256 | KeySpec::EcP384 => {
                [MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA]
            }
            KeySpec::Ed25519 => [
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                MechanismType::EDDSA,
            ],
        }
    }

    fn ec_params(self) -> Option<&'static [u8]> {
        match self {
            KeySpec::Rsa { .. } => None,
            KeySpec::EcP256 => Some(OID_P256),
            KeySpec::EcP384 => Some(OID_P384),
            KeySpec::Ed25519 => Some(OID_ED25519),
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            KeySpec::Rsa { .. } => KeyType::RSA,
            KeySpec::EcP256 | KeySpec::EcP384 => KeyType::EC,
            KeySpec::Ed25519 => KeyType::EC_EDWARDS,
        }
    }

    /// Length of the public point (X||Y, or the Ed25519 point).
    fn point_len(self) -> usize {
        match self {
            KeySpec::Rsa { .. } => 0,
            KeySpec::EcP256 => 64,
            KeySpec::EcP384 => 96,
            KeySpec::Ed25519 => 32,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeySpec::EcP256 => f.write_str("ECDSA P-256"),
            KeySpec::EcP384 => f.write_str("ECDSA P-384"),
            KeySpec::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A public key as the token holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Big-endian modulus and public exponent.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// The uncompressed point without its 0x04 prefix: X || Y.
    Ec { point: Vec<u8> },
    /// The 32-octet Ed25519 public key.
    Ed25519 { point: Vec<u8> },
}

/// How the token should sign: the caller has prepared the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// CKM_RSA_PKCS over a DER DigestInfo (the caller hashes and wraps).
    RsaPkcs,
    /// CKM_ECDSA over a digest; the token returns r || s.
    Ecdsa,
    /// CKM_EDDSA (pure Ed25519) over the whole message.
    EdDsa,
}

impl SignMechanism {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            SignMechanism::RsaPkcs => Mechanism::RsaPkcs,
            SignMechanism::Ecdsa => Mechanism::Ecdsa,
            SignMechanism::EdDsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        }
    }
}

/// Library information of a loaded module.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    pub path: PathBuf,
    pub manufacturer: String,
    pub description: String,
    pub version: String,
    pub cryptoki_version: String,
}

/// Which token we talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenIdentity {
    pub slot: u64,
    pub label: String,
    pub serial: String,
    pub model: String,
    pub manufacturer: String,
}

/// Token state flags an operator cares about before a ceremony.
#[derive(Debug, Clone, Serialize)]
pub struct TokenStatus {
    pub initialized: bool,
    pub login_required: bool,
    pub user_pin_initialized: bool,
    pub user_pin_count_low: bool,
    pub user_pin_final_try: bool,
    pub user_pin_locked: bool,
    pub has_rng: bool,
    pub write_protected: bool,
}

/// Whether a token can generate and sign with one kind of key.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    pub supported: bool,
    /// RSA modulus sizes the token reports (bits), if it reports them.
    pub min_bits: Option<u64>,
    pub max_bits: Option<u64>,
    /// Mechanisms missing from the token's list.
    pub missing: Vec<String>,
}

/// A key object on the token (either half of a pair), for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenObject {
    #[serde(serialize_with = "hex_bytes")]
    pub id: Vec<u8>,
    pub label: String,
    pub private: bool,
}

fn hex_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// Private key material for an import (migration). Zeroized on drop.
#[derive(Zeroize)]
#[zeroize(drop)]
pub enum ImportKey {
    Rsa {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
        private_exponent: Vec<u8>,
        prime1: Vec<u8>,
        prime2: Vec<u8>,
        exponent1: Vec<u8>,
        exponent2: Vec<u8>,
        coefficient: Vec<u8>,
    },
    /// ECDSA: the private scalar and the public point X||Y.
    Ec {
        #[zeroize(skip)]
        spec: EcCurve,
        scalar: Vec<u8>,
        point: Vec<u8>,
    },
    /// Ed25519: the 32-octet seed and the public key.
    Ed25519 { seed: Vec<u8>, point: Vec<u8> },
}

/// The curves of [`ImportKey::Ec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    P256,
    P384,
}

/// One loaded PKCS#11 module.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

/// C_Finalize when the module is unloaded: a process that loads it again
/// (the signing service after a fault, the key maintainer's shell for its
/// next command) gets a fresh C_Initialize, not CKR_CRYPTOKI_ALREADY_
/// INITIALIZED from a library that stayed in memory (a module that
/// cannot be unloaded, or one loaded by another library).
impl Drop for Module {
    fn drop(&mut self) {
        if let Err(e) = self.ctx.clone().finalize() {
            tracing::debug!("C_Finalize of {}: {e}", self.path.display());
        }
    }
}

impl Module {
    /// Loads and initialises a module. SoftHSMv2 reads SOFTHSM2_CONF when
    /// initialised, so with `softhsm_conf` the variable must name it: set
    /// here if the process still has one thread (the `dnsseal` command sets
    /// it at its start), refused otherwise, as changing the environment
    /// while threads run is unsound (see [`crate::harden::set_env`]).
    pub fn load(path: &Path, softhsm_conf: Option<&Path>) -> Result<Module, TokenError> {
        let load_err = |reason: String| TokenError::ModuleLoad {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(conf) = softhsm_conf {
            crate::harden::set_env("SOFTHSM2_CONF", conf.as_os_str()).map_err(|why| {
                load_err(format!(
                    "SoftHSMv2 must find its configuration {} in SOFTHSM2_CONF: {why}",
                    conf.display()
                ))
            })?;
        }
        if !path.exists() {
            return Err(load_err(
                "no such file (install the HSM vendor's PKCS#11 library, or set [token] module in dnsseal.toml; for SoftHSMv2: apt-get install softhsm2)".into(),
            ));
        }
        let ctx = Pkcs11::new(path).map_err(|e| load_err(e.to_string()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| load_err(format!("C_Initialize: {e}")))?;
        tracing::debug!(module = %path.display(), "PKCS#11 module loaded");
        Ok(Module {
            ctx,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> Result<ModuleInfo, TokenError> {
        let i = ck(self.ctx.get_library_info())?;
        Ok(ModuleInfo {
            path: self.path.clone(),
            manufacturer: i.manufacturer_id().trim().to_string(),
            description: i.library_description().trim().to_string(),
            version: i.library_version().to_string(),
            cryptoki_version: i.cryptoki_version().to_string(),
        })
    }

    fn identities(&self) -> Result<Vec<(Slot, TokenIdentity)>, TokenError> {
        let mut out = Vec::new();
        for slot in ck(self.ctx.get_slots_with_initialized_token())? {
            let ti = ck(self.ctx.get_token_info(slot))?;
            out.push((
                slot,
                TokenIdentity {
                    slot: slot.id(),
                    label: ti.label().trim().to_string(),
                    serial: ti.serial_number().trim().to_string(),
                    model: ti.model().trim().to_string(),
                    manufacturer: ti.manufacturer_id().trim().to_string(),
                },
            ));
        }
        Ok(out)
    }

    /// Finds the one token that matches the selector.
    pub fn find_token(&self, selector: &TokenSelector) -> Result<Token<'_>, TokenError> {
        let all = self.identities()?;
        let matching: Vec<_> = all
            .iter()
            .filter(|(_, id)| match selector {
                TokenSelector::Label(l) => id.label == *l,
                TokenSelector::Serial(s) => id.serial == *s,
            })
            .cloned()
            .collect();
        match matching.len() {
            1 => {
                let (slot, identity) = matching.into_iter().next().ok_or(TokenError::NoFreeSlot)?;
                Ok(Token {
                    module: self,
                    slot,
                    identity,
                })
            }
            0 => Err(TokenError::NotFound {
                selector: selector.to_string(),
                module: self.path.clone(),
                found: if all.is_empty() {
                    "none".into()
                } else {
                    all.iter()
                        .map(|(_, i)| format!("'{}' serial {}", i.label, i.serial))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
            count => Err(TokenError::Ambiguous {
                selector: selector.to_string(),
                count,
            }),
        }
    }

    /// Initialises a new token in the first slot without one (SoftHSMv2
    /// always offers such a slot) and sets its user PIN.
    pub fn init_token(
        &self,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<TokenIdentity, TokenError> {
        let mut free = None;
        for slot in ck(self.ctx.get_slots_with_token())? {
            if !ck(self.ctx.get_token_info(slot))?.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or(TokenError::NoFreeSlot)?;
        let so: AuthPin = so_pin.clone();
        ck(self.ctx.init_token(slot, &so, label))?;
        // The token may move to a new slot id after C_InitToken.
        let token = self.find_token(&TokenSelector::Label(label.to_string()))?;
        let session = ck(self.ctx.open_rw_session(token.slot))?;
        ck(session.login(UserType::So, Some(&so)))?;
        ck(session.init_pin(&user_pin.clone()))?;
        ck(session.logout())?;
        Ok(token.identity)
    }
}

/// Our token, found in a module.
pub struct Token<'m> {
    module: &'m Module,
    slot: Slot,
    pub identity: TokenIdentity,
}

impl<'m> Token<'m> {
    pub fn status(&self) -> Result<TokenStatus, TokenError> {
        let t = ck(self.module.ctx.get_token_info(self.slot))?;
        Ok(TokenStatus {
            initialized: t.token_initialized(),
            login_required: t.login_required(),
            user_pin_initialized: t.user_pin_initialized(),
            user_pin_count_low: t.user_pin_count_low(),
            user_pin_final_try: t.user_pin_final_try(),
            user_pin_locked: t.user_pin_locked(),
            has_rng: t.rng(),
            write_protected: t.write_protected(),
        })
    }

    /// Whether the token lists the mechanisms a kind of key needs.
    pub fn capability(&self, spec: KeySpec) -> Result<Capability, TokenError> {
        let list = ck(self.module.ctx.get_mechanism_list(self.slot))?;
        let missing: Vec<String> = spec
            .mechanism_types()
            .iter()
            .filter(|m| !list.contains(m))
            .map(|m| m.to_string())
            .collect();
        let (mut min_bits, mut max_bits) = (None, None);
        let mut supported = missing.is_empty();
        if supported {
            let gen = spec.mechanism_types()[0];
            let info = ck(self.module.ctx.get_mechanism_info(self.slot, gen))?;
            if let KeySpec::Rsa { bits } = spec {
                min_bits = Some(info.min_key_size() as u64);
                max_bits = Some(info.max_key_size() as u64);
                supported = u64::from(bits) >= info.min_key_size() as u64
                    && u64::from(bits) <= info.max_key_size() as u64;
            }
        }
        Ok(Capability {
            supported,
            min_bits,
            max_bits,
            missing,
        })
    }

    /// The key sizes (bits, as C_GetMechanismInfo reports them) of the
    /// mechanism the token signs with for this kind of key, or None when
    /// it does not list that mechanism: what an imported key needs, as
    /// [`Token::capability`] is what a generated one needs.
    pub fn sign_key_sizes(&self, spec: KeySpec) -> Result<Option<(u64, u64)>, TokenError> {
        let mech = spec.mechanism_types()[1];
        if !ck(self.module.ctx.get_mechanism_list(self.slot))?.contains(&mech) {
            return Ok(None);
        }
        let info = ck(self.module.ctx.get_mechanism_info(self.slot, mech))?;
        Ok(Some((
            info.min_key_size() as u64,
            info.max_key_size() as u64,
        )))
    }

    /// Opens a read-write session and logs the user in.
    pub fn login(&self, pin: &SecretString) -> Result<UserSession, TokenError> {
        let session = ck(self.module.ctx.open_rw_session(self.slot))?;
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(TokenError::from_ck(e)),
        }
        Ok(UserSession { session })
    }
}

/// Which objects a [`SignerPool`] signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyObjects {
    /// The private keys on the token.
    TokenObjects,
    /// Per-session copies of them made inside the token.
    SessionCopies,
}

impl KeyObjects {
    /// How keys are used under an HSM profile: session copies where it
    /// sets `session_key_copies`. New private keys are CKA_COPYABLE only
    /// then.
    pub fn of(profile: &Profile) -> KeyObjects {
        if profile.session_key_copies {
            KeyObjects::SessionCopies
        } else {
            KeyObjects::TokenObjects
        }
    }
}

impl std::fmt::Display for KeyObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyObjects::TokenObjects => "token objects",
            KeyObjects::SessionCopies => "session copies",
        })
    }
}

/// A logged-in read-write session.
pub struct UserSession {
    session: Session,
}

impl UserSession {
    /// Random octets from the token's RNG.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; len];
        ck(self.session.generate_random_slice(&mut buf))?;
        Ok(buf)
    }

    /// A CKA_ID of `len` random octets that no object on the token has yet.
    pub fn fresh_id(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        for _ in 0..16 {
            let id = self.random(len)?;
            if self.find(&id, None)?.is_empty() {
                return Ok(id);
            }
        }
        Err(TokenError::Unsupported {
            what: "CKA_ID allocation".into(),
            reason: "the token's RNG keeps returning ids already in use".into(),
        })
    }

    fn find(&self, id: &[u8], class: Option<ObjectClass>) -> Result<Vec<ObjectHandle>, TokenError> {
        let mut template = vec![Attribute::Token(true), Attribute::Id(id.to_vec())];
        if let Some(c) = class {
            template.push(Attribute::Class(c));
        }
        ck(self.session.find_objects(&template))
    }

    fn find_one(&self, id: &[u8], class: ObjectClass) -> Result<ObjectHandle, TokenError> {
        self.find(id, Some(class))?
            .into_iter()
            .next()
            .ok_or_else(|| TokenError::KeyNotFound {
                id: hex::encode(id),
            })
    }

    /// Generates a key pair inside the token and returns its public key.
    /// Neither half can be modified afterwards; the private half can be
    /// copied (inside the token) only if the keys are to be used as
    /// session copies.
    pub fn generate(
        &self,
        spec: KeySpec,
        id: &[u8],
        label: &str,
        used_as: KeyObjects,
    ) -> Result<PublicKey, TokenError> {
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Modifiable(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        match (spec, spec.ec_params()) {
            (KeySpec::Rsa { bits }, _) => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(RSA_EXPONENT.to_vec()));
            }
            (_, Some(params)) => public.push(Attribute::EcParams(params.to_vec())),
            (_, None) => {}
        }
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(used_as == KeyObjects::SessionCopies),
            Attribute::Sign(true),
            Attribute::SignRecover(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if spec.key_type() == KeyType::RSA {
            // Decrypt/unwrap/derive false are what we want; some tokens
            // reject CKA_DERIVE on RSA, so only EC keys carry it.
            private.retain(|a| !matches!(a, Attribute::Derive(_)));
        }
        let (pubh, _privh) =
            ck(self
                .session
                .generate_key_pair(&spec.generation_mechanism(), &public, &private))?;
        tracing::info!(%spec, id = %hex::encode(id), "key pair generated in token");
        self.read_public(pubh, spec)
    }

    /// The public key of the pair with this CKA_ID.
    pub fn public_key(&self, id: &[u8], spec: KeySpec) -> Result<PublicKey, TokenError> {
        let h = self.find_one(id, ObjectClass::PUBLIC_KEY)?;
        self.read_public(h, spec)
    }

    fn read_public(&self, h: ObjectHandle, spec: KeySpec) -> Result<PublicKey, TokenError> {
        read_public(&self.session, h, spec)
    }

    /// What the token holds under this CKA_ID (for the checks of
    /// [`crate::keys::objects`]).
    pub fn key_pair(&self, id: &[u8]) -> Result<KeyPairObjects, TokenError> {
        objects::read_key_pair(&self.session, id, None)
    }

    /// Signs prepared input with the private key of this CKA_ID.
    pub fn sign(
        &self,
        id: &[u8],
        mechanism: SignMechanism,
        input: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let h = self.find_one(id, ObjectClass::PRIVATE_KEY)?;
        ck(self.session.sign(&mechanism.mechanism(), h, input))
    }

    /// Every public or private key object on the token that has a CKA_ID.
    pub fn key_objects(&self) -> Result<Vec<TokenObject>, TokenError> {
        let mut out = Vec::new();
        for (class, private) in [
            (ObjectClass::PRIVATE_KEY, true),
            (ObjectClass::PUBLIC_KEY, false),
        ] {
            let handles = ck(self
                .session
                .find_objects(&[Attribute::Token(true), Attribute::Class(class)]))?;
            for h in handles {
                let attrs = ck(self
                    .session
                    .get_attributes(h, &[AttributeType::Id, AttributeType::Label]))?;
                let (mut id, mut label) = (Vec::new(), String::new());
                for a in attrs {
                    match a {
                        Attribute::Id(v) => id = v,
                        Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
                        _ => {}
                    }
                }
                out.push(TokenObject { id, label, private });
            }
        }
        Ok(out)
    }

    /// Destroys both halves of the pair with this CKA_ID; returns how many
    /// objects were destroyed.
    pub fn destroy(&self, id: &[u8]) -> Result<usize, TokenError> {
        let handles = self.find(id, None)?;
        for h in &handles {
            ck(self.session.destroy_object(*h))?;
        }
        tracing::warn!(id = %hex::encode(id), objects = handles.len(), "token objects destroyed");
        Ok(handles.len())
    }

    /// Creates a key pair from imported material (migration only). The
    /// private object is sensitive and not extractable from now on, and
    /// neither half can be modified (copyable as in
    /// [`UserSession::generate`]); the template copies of the key are
    /// zeroized before returning.
    pub fn import(
        &self,
        key: &ImportKey,
        id: &[u8],
        label: &str,
        used_as: KeyObjects,
    ) -> Result<(), TokenError> {
        let common_priv = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(used_as == KeyObjects::SessionCopies),
            Attribute::Sign(true),
            Attribute::SignRecover(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let common_pub = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Modifiable(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (mut priv_t, pub_t) = (common_priv, common_pub);
        let mut pub_t = pub_t;
        match key {
            ImportKey::Rsa {
                modulus,
                public_exponent,
                private_exponent,
                prime1,
                prime2,
                exponent1,
                exponent2,
                coefficient,
            } => {
                priv_t.extend([
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(modulus.clone()),
                    Attribute::PublicExponent(public_exponent.clone()),
                    Attribute::PrivateExponent(private_exponent.clone()),
                    Attribute::Prime1(prime1.clone()),
                    Attribute::Prime2(prime2.clone()),
                    Attribute::Exponent1(exponent1.clone()),
                    Attribute::Exponent2(exponent2.clone()),
                    Attribute::Coefficient(coefficient.clone()),
                ]);
                pub_t.extend([
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(modulus.clone()),
                    Attribute::PublicExponent(public_exponent.clone()),
                ]);
            }
            ImportKey::Ec {
                spec,
                scalar,
                point,
            } => {
                let params = match spec {
                    EcCurve::P256 => OID_P256,
                    EcCurve::P384 => OID_P384,
                };
                priv_t.extend([
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Derive(false),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Value(scalar.clone()),
                ]);
                let mut uncompressed = vec![0x04];
                uncompressed.extend_from_slice(point);
                pub_t.extend([
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::EcPoint(der_octet_string(&uncompressed)),
                ]);
            }
            ImportKey::Ed25519 { seed, point } => {
                priv_t.extend([
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::Derive(false),
                    Attribute::EcParams(OID_ED25519.to_vec()),
                    Attribute::Value(seed.clone()),
                ]);
                pub_t.extend([
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::EcParams(OID_ED25519.to_vec()),
                    Attribute::EcPoint(der_octet_string(point)),
                ]);
            }
        }
        let result = self.session.create_object(&priv_t);
        wipe(&mut priv_t);
        let privh = ck(result)?;
        if let Err(e) = self.session.create_object(&pub_t) {
            let _ = self.session.destroy_object(privh);
            return Err(TokenError::from_ck(e));
        }
        tracing::warn!(id = %hex::encode(id), "imported key material into token");
        Ok(())
    }
}

/// Reads the public key of a public key object.
fn read_public(session: &Session, h: ObjectHandle, spec: KeySpec) -> Result<PublicKey, TokenError> {
    match spec {
        KeySpec::Rsa { .. } => {
            let attrs =
                ck(session
                    .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent]))?;
            let (mut modulus, mut exponent) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => modulus = Some(m),
                    Attribute::PublicExponent(e) => exponent = Some(e),
                    _ => {}
                }
            }
            match (modulus, exponent) {
                (Some(modulus), Some(exponent)) => Ok(PublicKey::Rsa { modulus, exponent }),
                _ => Err(TokenError::BadPublicKey(
                    "RSA key without modulus or exponent".into(),
                )),
            }
        }
        _ => {
            let attrs = ck(session.get_attributes(h, &[AttributeType::EcPoint]))?;
            let raw = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or_else(|| TokenError::BadPublicKey("no CKA_EC_POINT".into()))?;
            let point = parse_ec_point(&raw, spec)?;
            Ok(match spec {
                KeySpec::Ed25519 => PublicKey::Ed25519 { point },
                _ => PublicKey::Ec { point },
            })
        }
    }
}

/// Zeroizes every attribute value that can hold private key material.
fn wipe(template: &mut [Attribute]) {
    for a in template.iter_mut() {
        match a {
            Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v)
            | Attribute::Value(v) => v.zeroize(),
            _ => {}
        }
    }
}

/// DER OCTET STRING around `content` (short and long length forms).
fn der_octet_string(content: &[u8]) -> Vec<u8> {
    match der::asn1::OctetString::new(content.to_vec()).and_then(|o| der::Encode::to_der(&o)) {
        Ok(v) => v,
        Err(_) => content.to_vec(),
    }
}

/// CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.40
/// §2.3.3); some tokens return the bare point. ECDSA points are
/// uncompressed (0x04 || X || Y).
fn parse_ec_point(raw: &[u8], spec: KeySpec) -> Result<Vec<u8>, TokenError> {
    let inner = match der::asn1::OctetString::from_der(raw) {
        Ok(o) => o.as_bytes().to_vec(),
        Err(_) => raw.to_vec(),
    };
    let want = spec.point_len();
    let point = match spec {
        KeySpec::Ed25519 => inner,
        _ => match inner.split_first() {
            Some((0x04, rest)) => rest.to_vec(),
            _ => {
                return Err(TokenError::BadPublicKey(format!(
                    "{spec} point is not uncompressed ({} octets)",
                    inner.len()
                )))
            }
        },
    };
    if point.len() != want {
        return Err(TokenError::BadPublicKey(format!(
            "{spec} point has {} octets, expected {want}",
            point.len()
        )));
    }
    Ok(point)
}

/// Name of the PKCS#11 module file of a path, for messages.
pub fn module_display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_forms() {
        let mut p = vec![0x04];
        p.extend([7u8; 64]);
        let wrapped = der_octet_string(&p);
        assert_eq!(&wrapped[..2], &[0x04, 65]);
        assert_eq!(
            parse_ec_point(&wrapped, KeySpec::EcP256).unwrap(),
            vec![7u8; 64]
        );
        // Bare point, as some tokens return it.
        assert_eq!(parse_ec_point(&p, KeySpec::EcP256).unwrap(), vec![7u8; 64]);
        // P-384 needs the long length form (97 octets).
        let mut q = vec![0x04];
        q.extend([9u8; 96]);
        assert_eq!(
            parse_ec_point(&der_octet_string(&q), KeySpec::EcP384).unwrap(),
            vec![9u8; 96]
        );
        assert!(parse_ec_point(&der_octet_string(&[1u8; 32]), KeySpec::Ed25519).is_ok());
        assert!(parse_ec_point(&der_octet_string(&[1u8; 31]), KeySpec::Ed25519).is_err());
        assert!(parse_ec_point(&[0x02; 33], KeySpec::EcP256).is_err());
    }
}
