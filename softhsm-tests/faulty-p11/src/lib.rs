//! faulty-p11: a PKCS#11 module that loads a real one (SoftHSMv2 by
//! default) and hands out its function list with some entries wrapped, so
//! that chosen calls fail with chosen return codes, the token can be
//! "unplugged", and C_Sign can be throttled. See README.md.
//!
//! The unsafe code is confined to this file: loading the real module,
//! exporting `C_GetFunctionList`, and the wrappers that pass their
//! arguments through unchanged. Deciding what fails lives in
//! [`config`] and [`State`], in safe code.

pub mod config;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use config::{rv_name, Config, Func};
use cryptoki_sys::*;

const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

// ------------------------------------------------------------ safe state

/// What the configuration file looked like when last read: its mtime and
/// length, and what it said.
struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    config: Arc<Result<Config, String>>,
}

/// Everything the wrappers decide with.
struct State {
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    /// Calls so far per function (C_Sign: signatures made, not length
    /// queries), since the process loaded the module.
    calls: [AtomicU64; Func::ALL.len()],
    /// splitmix64 state for `probability` rules.
    rng: Mutex<u64>,
    /// The earliest time the next signature may start (`sign_rate`).
    next_sign: Mutex<Option<Instant>>,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| State {
        path: std::env::var_os("FAULTY_P11_CONFIG").map(PathBuf::from),
        loaded: RwLock::new(Loaded {
            stamp: None,
            config: Arc::new(Ok(Config::default())),
        }),
        calls: Default::default(),
        rng: Mutex::new(0),
        next_sign: Mutex::new(None),
    })
}

impl State {
    /// The configuration, read again when the file's mtime or length
    /// changed (a missing file or no FAULTY_P11_CONFIG: no faults).
    fn config(&self) -> Arc<Result<Config, String>> {
        let Some(path) = &self.path else {
            return Arc::new(Ok(Config::default()));
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if let Ok(l) = self.loaded.read() {
            if l.stamp == stamp {
                return l.config.clone();
            }
        }
        let config = match stamp {
            None => Ok(Config::default()),
            Some(_) => std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| config::parse(&t)),
        };
        if let Err(e) = &config {
            eprintln!("faulty-p11: {}: {e}; every call fails", path.display());
        }
        if let (Ok(c), Ok(mut rng)) = (&config, self.rng.lock()) {
            *rng = c.seed;
        }
        let config = Arc::new(config);
        if let Ok(mut l) = self.loaded.write() {
            *l = Loaded {
                stamp,
                config: config.clone(),
            };
        }
        config
    }

    /// A uniform draw in [0, 1) (splitmix64).
    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts a call of `func` and returns the code it must fail with,
    /// if any: the token is away, or a rule hits this call.
    fn fault(&self, func: Func) -> Option<CK_RV> {
        let config = self.config();
        let config = match config.as_ref() {
            Ok(c) => c,
            Err(_) => return Some(CKR_GENERAL_ERROR),
        };
        let n = self.calls[func.index()].fetch_add(1, Ordering::Relaxed) + 1;
        let rv = if config.away && func != Func::Initialize {
            Some(match func.slot_level() {
                true => CKR_TOKEN_NOT_PRESENT,
                false => CKR_DEVICE_REMOVED,
            })
        } else {
            config
                .rules
                .iter()
                .find(|r| r.func == func && r.hits(n, || self.draw()))
                .map(|r| r.rv)
        };
        if let (Some(rv), Some(log)) = (rv, &config.log) {
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
                let _ = writeln!(
                    f,
                    "pid {} {} call {n}: {}",
                    std::process::id(),
                    func.name(),
                    rv_name(rv)
                );
            }
        }
        rv
    }

    /// Whether the token is away (for C_GetSlotList's token-present list).
    fn away(&self) -> bool {
        matches!(self.config().as_ref(), Ok(c) if c.away)
    }

    /// Waits for this signature's turn under `sign_rate`.
    fn pace(&self) {
        let rate = match self.config().as_ref() {
            Ok(Config {
                sign_rate: Some(r), ..
            }) => *r,
            _ => return,
        };
        let wait = {
            let mut next = self.next_sign.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + Duration::from_secs_f64(1.0 / rate));
            slot - now
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

// ------------------------------------------------ the real module (unsafe)

/// The real module, kept loaded for the life of the process, and its
/// function list (copied: the pointer it gave stays valid while loaded).
struct Real {
    _lib: libloading::Library,
    list: CK_FUNCTION_LIST,
}

fn load_real() -> Result<Real, String> {
    let path = std::env::var_os("FAULTY_P11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE));
    // SAFETY: loading a PKCS#11 module runs its initialisers; that is what
    // every PKCS#11 application does with the module it is given.
    let lib = unsafe { libloading::Library::new(&path) }
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    let mut ptr: CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11
    // module; the symbol is only used while `lib` is alive (it is kept in
    // `Real`, which is never dropped).
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> = lib
            .get(b"C_GetFunctionList\0")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        get(&mut ptr)
    };
    if rv != CKR_OK || ptr.is_null() {
        return Err(format!(
            "{}: C_GetFunctionList: {}",
            path.display(),
            rv_name(rv)
        ));
    }
    // SAFETY: the module returned a valid pointer to its (static) list.
    let list = unsafe { *ptr };
    Ok(Real { _lib: lib, list })
}

fn real() -> Option<&'static CK_FUNCTION_LIST> {
    static REAL: OnceLock<Result<Real, String>> = OnceLock::new();
    match REAL.get_or_init(load_real) {
        Ok(r) => Some(&r.list),
        Err(e) => {
            eprintln!("faulty-p11: {e}");
            None
        }
    }
}

/// Calls the real module's function `$f` with the arguments unchanged.
macro_rules! real {
    ($f:ident ( $($a:expr),* )) => {
        match real().and_then(|l| l.$f) {
            // SAFETY: the arguments are the caller's, passed through as
            // received; the caller owes the real module what it owes us.
            Some(f) => unsafe { f($($a),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

/// Our function list: the real one with the wrapped entries replaced.
fn ours() -> Option<&'static CK_FUNCTION_LIST> {
    static OURS: OnceLock<Option<CK_FUNCTION_LIST>> = OnceLock::new();
    OURS.get_or_init(|| {
        let mut l = *real()?;
        l.C_GetFunctionList = Some(C_GetFunctionList);
        l.C_Initialize = Some(initialize);
        l.C_GetSlotList = Some(get_slot_list);
        l.C_GetTokenInfo = Some(get_token_info);
        l.C_OpenSession = Some(open_session);
        l.C_GetSessionInfo = Some(get_session_info);
        l.C_Login = Some(login);
        l.C_FindObjectsInit = Some(find_objects_init);
        l.C_FindObjects = Some(find_objects);
        l.C_GetAttributeValue = Some(get_attribute_value);
        l.C_CopyObject = Some(copy_object);
        l.C_CreateObject = Some(create_object);
        l.C_DestroyObject = Some(destroy_object);
        l.C_SignInit = Some(sign_init);
        l.C_Sign = Some(sign);
        l.C_GenerateKeyPair = Some(generate_key_pair);
        Some(l)
    })
    .as_ref()
}

/// The module's one export.
///
/// # Safety
/// `list` must be null or point to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    match ours() {
        Some(l) => {
            // SAFETY: checked non-null; the caller gives room for a
            // pointer. Our list is static and never written after this.
            unsafe { *list = l as *const CK_FUNCTION_LIST as CK_FUNCTION_LIST_PTR };
            CKR_OK
        }
        None => CKR_GENERAL_ERROR,
    }
}

/// A fault for a call on session `s`. A dropped session is made real: the
/// real session is closed, so that every later call on it fails too.
fn session_fault(func: Func, s: CK_SESSION_HANDLE) -> Option<CK_RV> {
    let rv = state().fault(func)?;
    if rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED {
        real!(C_CloseSession(s));
    }
    Some(rv)
}

// ------------------------------------------------------------ wrappers
//
// Each checks for a fault first and otherwise calls the real function with
// its arguments unchanged; C_Sign checks after (see there).

unsafe extern "C" fn initialize(args: *mut std::ffi::c_void) -> CK_RV {
    if let Some(rv) = state().fault(Func::Initialize) {
        return rv;
    }
    real!(C_Initialize(args))
}

/// A token that is away is in no slot: the list of slots with a token
/// present is empty.
unsafe extern "C" fn get_slot_list(
    present: CK_BBOOL,
    slots: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    if present != 0 && state().away() && !count.is_null() {
        // SAFETY: checked non-null; PKCS#11 has the caller give it.
        unsafe { *count = 0 };
        return CKR_OK;
    }
    if let Some(rv) = state().fault(Func::GetSlotList) {
        return rv;
    }
    real!(C_GetSlotList(present, slots, count))
}

unsafe extern "C" fn get_token_info(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    if let Some(rv) = state().fault(Func::GetTokenInfo) {
        return rv;
    }
    real!(C_GetTokenInfo(slot, info))
}

unsafe extern "C" fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    app: *mut std::ffi::c_void,
    notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    if let Some(rv) = state().fault(Func::OpenSession) {
        return rv;
    }
    real!(C_OpenSession(slot, flags, app, notify, session))
}

unsafe extern "C" fn get_session_info(s: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    if let Some(rv) = session_fault(Func::GetSessionInfo, s) {
        return rv;
    }
    real!(C_GetSessionInfo(s, info))
}

unsafe extern "C" fn login(
    s: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::Login, s) {
        return rv;
    }
    real!(C_Login(s, user, pin, len))
}

unsafe extern "C" fn find_objects_init(
    s: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::FindObjectsInit, s) {
        return rv;
    }
    real!(C_FindObjectsInit(s, template, count))
}

unsafe extern "C" fn find_objects(
    s: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::FindObjects, s) {
        return rv;
    }
    real!(C_FindObjects(s, objects, max, count))
}

unsafe extern "C" fn get_attribute_value(
    s: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::GetAttributeValue, s) {
        return rv;
    }
    real!(C_GetAttributeValue(s, object, template, count))
}

unsafe extern "C" fn copy_object(
    s: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    new: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::CopyObject, s) {
        return rv;
    }
    real!(C_CopyObject(s, object, template, count, new))
}

unsafe extern "C" fn create_object(
    s: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    new: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::CreateObject, s) {
        return rv;
    }
    real!(C_CreateObject(s, template, count, new))
}

unsafe extern "C" fn destroy_object(s: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
    if let Some(rv) = session_fault(Func::DestroyObject, s) {
        return rv;
    }
    real!(C_DestroyObject(s, object))
}

unsafe extern "C" fn sign_init(
    s: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::SignInit, s) {
        return rv;
    }
    real!(C_SignInit(s, mechanism, key))
}

/// C_Sign: a length query (no output buffer) passes through, unless the
/// token is away, and is not counted. A call that makes a signature is
/// paced (`sign_rate`), counted, and made on the real token; a fault then
/// replaces its result, so the real signing operation has ended as a
/// failed C_Sign ends it.
unsafe extern "C" fn sign(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    signature: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    let st = state();
    if signature.is_null() {
        if st.away() {
            return CKR_DEVICE_REMOVED;
        }
        return real!(C_Sign(s, data, len, signature, sig_len));
    }
    st.pace();
    let rv = real!(C_Sign(s, data, len, signature, sig_len));
    if rv != CKR_OK {
        return rv;
    }
    match session_fault(Func::Sign, s) {
        Some(fault) => fault,
        None => CKR_OK,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn generate_key_pair(
    s: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public_template: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_template: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public: *mut CK_OBJECT_HANDLE,
    private: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    if let Some(rv) = session_fault(Func::GenerateKeyPair, s) {
        return rv;
    }
    real!(C_GenerateKeyPair(
        s,
        mechanism,
        public_template,
        public_count,
        private_template,
        private_count,
        public,
        private
    ))
}
