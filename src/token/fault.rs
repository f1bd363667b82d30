//! What a PKCS#11 failure means for the run that got it: the one place
//! where return codes are sorted into those worth another try on a fresh
//! session, those that say the token is gone, and the rest; and how often
//! and how patiently a signing session is reopened.
//!
//! | fault | codes | what `sign` does |
//! |---|---|---|
//! | [`Fault::Transient`] | `CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`, `CKR_DEVICE_ERROR`, `CKR_DEVICE_MEMORY`, `CKR_FUNCTION_FAILED`, `CKR_USER_NOT_LOGGED_IN`, `CKR_OPERATION_ACTIVE` | reopens the worker's session (logs in again, looks the keys up again) and signs again, up to [`Retry::attempts`] times with backoff |
//! | [`Fault::Gone`] | `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, `CKR_TOKEN_NOT_RECOGNIZED`, `CKR_SLOT_ID_INVALID`, `CKR_CRYPTOKI_NOT_INITIALIZED` | the same tries (a token plugged back in time is used), then stops |
//! | [`Fault::Fatal`] | everything else (`CKR_GENERAL_ERROR`, `CKR_KEY_HANDLE_INVALID` after a fresh lookup, ...) | stops at once |
//!
//! A run stopped by a transient or gone token exits with
//! [`crate::failure::exit::TOKEN_FAILED`]; nothing is written.

use std::time::Duration;

use cryptoki::context::Function;
use cryptoki::error::RvError;

/// The PKCS#11 name of a return code, as operators and HSM manuals
/// write it: `CKR_DEVICE_REMOVED` (cryptoki's own text for a code is a
/// paragraph of the standard that never says the code's name).
pub fn rv_name(rv: RvError) -> String {
    if let RvError::VendorDefined(code) = rv {
        return format!("CKR_VENDOR_DEFINED({code:#x})");
    }
    // The variants are the codes' names in CamelCase: DeviceRemoved.
    let mut name = String::from("CKR");
    for c in format!("{rv:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The PKCS#11 name of a function: `C_Sign`.
pub fn function_name(f: Function) -> String {
    format!("C_{f:?}")
}

/// What a PKCS#11 failure says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The session or the device hiccupped: a fresh session may work.
    Transient,
    /// The token is not there (removed, not present).
    Gone,
    /// Anything else: the same call would fail again.
    Fatal,
}

impl Fault {
    /// Whether a fresh session is worth a try.
    pub fn retry(self) -> bool {
        matches!(self, Fault::Transient | Fault::Gone)
    }
}

/// The fault a PKCS#11 return value stands for.
pub fn classify(rv: RvError) -> Fault {
    match rv {
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::DeviceError
        | RvError::DeviceMemory
        | RvError::FunctionFailed
        | RvError::UserNotLoggedIn
        | RvError::OperationActive => Fault::Transient,
        RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::SlotIdInvalid
        | RvError::CryptokiNotInitialized => Fault::Gone,
        _ => Fault::Fatal,
    }
}

/// How a worker's session is reopened after a transient fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Reopens per signature before the run stops.
    pub attempts: u32,
    /// Wait before the first reopen; doubled for each next one.
    pub first_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
}

impl Default for Retry {
    /// Three reopens, after 0.25 s, 0.5 s and 1 s: a USB HSM that resets
    /// comes back within that, and a run on a token that is gone stops
    /// within two seconds.
    fn default() -> Retry {
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl Retry {
    /// The wait before reopen number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_device_errors_are_transient_removal_is_gone_the_rest_fatal() {
        for rv in [
            RvError::SessionHandleInvalid,
            RvError::SessionClosed,
            RvError::DeviceError,
            RvError::FunctionFailed,
        ] {
            assert_eq!(classify(rv), Fault::Transient, "{rv}");
            assert!(classify(rv).retry());
        }
        for rv in [RvError::DeviceRemoved, RvError::TokenNotPresent] {
            assert_eq!(classify(rv), Fault::Gone, "{rv}");
        }
        for rv in [
            RvError::GeneralError,
            RvError::KeyHandleInvalid,
            RvError::PinIncorrect,
            RvError::MechanismInvalid,
            RvError::DataLenRange,
        ] {
            assert_eq!(classify(rv), Fault::Fatal, "{rv}");
            assert!(!classify(rv).retry());
        }
    }

    #[test]
    fn codes_and_functions_have_their_pkcs11_names() {
        use cryptoki::error::Rv;
        for (code, name) in [
            (0x05, "CKR_GENERAL_ERROR"),
            (0x06, "CKR_FUNCTION_FAILED"),
            (0x30, "CKR_DEVICE_ERROR"),
            (0x31, "CKR_DEVICE_MEMORY"),
            (0x32, "CKR_DEVICE_REMOVED"),
            (0xA0, "CKR_PIN_INCORRECT"),
            (0xB0, "CKR_SESSION_CLOSED"),
            (0xB3, "CKR_SESSION_HANDLE_INVALID"),
            (0xE0, "CKR_TOKEN_NOT_PRESENT"),
            (0xE1, "CKR_TOKEN_NOT_RECOGNIZED"),
            (0x101, "CKR_USER_NOT_LOGGED_IN"),
            (0x190, "CKR_CRYPTOKI_NOT_INITIALIZED"),
            (0x8000_0001, "CKR_VENDOR_DEFINED(0x80000001)"),
        ] {
            match Rv::from(code) {
                Rv::Error(rv) => assert_eq!(rv_name(rv), name),
                Rv::Ok => panic!("{code:#x} is not an error"),
            }
        }
        assert_eq!(function_name(Function::Sign), "C_Sign");
        assert_eq!(
            function_name(Function::GenerateKeyPair),
            "C_GenerateKeyPair"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let r = Retry::default();
        let ms: Vec<u128> = (0..6).map(|a| r.delay(a).as_millis()).collect();
        assert_eq!(ms, vec![250, 500, 1000, 2000, 4000, 4000]);
        assert_eq!(r.delay(40), r.max_delay);
    }
}
