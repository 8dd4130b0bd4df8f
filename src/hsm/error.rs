//! The HSM layer's errors: one [`Error`] for every failure, and what a PKCS#11 return value
//! means for the service ([`classify`], PKCS#11 v2.40 section 5.1).

use std::path::PathBuf;
use std::time::Duration;

use cryptoki::error::{Error as CkError, RvError};

use crate::alg::{KeyType, SignatureAlgorithm};

/// An HSM failure. `op` names the PKCS#11 call; PINs never appear in any variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PKCS#11 call returned an error.
    #[error("PKCS#11 {op} failed: {rv}")]
    Pkcs11 {
        /// The call (C_Sign, C_Login, ...).
        op: String,
        /// The CKR_ value, as text.
        rv: String,
    },
    /// The PKCS#11 module could not be loaded.
    #[error("cannot load PKCS#11 module {module}: {reason}", module = .module.display())]
    Module {
        /// The module path.
        module: PathBuf,
        /// Why.
        reason: String,
    },
    /// A second, different module was requested in the same process.
    #[error("this process already uses PKCS#11 module {}; one module per process", .0.display())]
    OtherModule(PathBuf),
    /// No token matched, or more than one did.
    #[error("{selector}: {problem}")]
    Token {
        /// How the token was asked for.
        selector: String,
        /// "no such token (present: ...)" or "matches 2 tokens".
        problem: String,
    },
    /// The PIN was refused. Not retried, so the token does not lock.
    #[error("the token refused the PIN (CKR_PIN_INCORRECT); not retrying")]
    WrongPin,
    /// The PIN is locked on the token.
    #[error("the token's user PIN is locked (CKR_PIN_LOCKED)")]
    PinLocked,
    /// No key, or more than one, matched a URI.
    #[error("key {uri}: {problem}")]
    Key {
        /// The URI asked for.
        uri: String,
        /// What is wrong.
        problem: String,
    },
    /// An object with the label exists already; generation refused.
    #[error(
        "label {0:?}: an object with this label already exists on the token; refusing to generate"
    )]
    LabelExists(String),
    /// A generated key does not have the attributes a CA key must have.
    #[error("key {label:?} failed its post-generation check: {rule}")]
    KeyAttributes {
        /// The key label.
        label: String,
        /// The violated rule.
        rule: &'static str,
    },
    /// A public key read from the token failed the key-quality checks.
    #[error("key {label:?}: public key check failed: {reason}")]
    WeakKey {
        /// The key label.
        label: String,
        /// Why.
        reason: String,
    },
    /// The token returned a public key strongroom cannot read.
    #[error("key {label:?}: cannot read the public key: {reason}")]
    PublicKey {
        /// The key label.
        label: String,
        /// Why.
        reason: String,
    },
    /// The algorithm does not fit the key type.
    #[error("key {label:?} is {key_type}; it cannot sign with {alg} (BR 7.1.3.2)")]
    Algorithm {
        /// The key label.
        label: String,
        /// The key's type.
        key_type: KeyType,
        /// The requested algorithm.
        alg: SignatureAlgorithm,
    },
    /// The HSM returned a signature that does not verify under the key's public key.
    #[error(
        "key {label:?}: the HSM's signature does not verify under the public key ({reason}); nothing was written"
    )]
    BadSignature {
        /// The key label.
        label: String,
        /// Why verification failed.
        reason: String,
    },
    /// The HSM cannot be used: a device, token, session, login or library failure (PKCS#11
    /// v2.40 5.1.1-5.1.3). Requests get 503 and the HSM recovers in the background.
    #[error("HSM unavailable: PKCS#11 {op} failed: {rv}")]
    Unavailable {
        /// The call.
        op: String,
        /// The CKR_ value, as text.
        rv: String,
    },
    /// A call did not return within its deadline; the HSM is marked unavailable.
    #[error("HSM unavailable: {op} did not return within {} ms", .after.as_millis())]
    Timeout {
        /// The call.
        op: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The call waited in the queue for a free session until its deadline passed, and was never
    /// started. The HSM is not marked unavailable for this (its sessions are busy, not gone);
    /// requests get 503 and may be retried.
    #[error(
        "HSM busy: {op} waited {} ms for a free session and was not started; retry later",
        .after.as_millis()
    )]
    Busy {
        /// The call.
        op: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The HSM is marked unavailable, so the call was refused without reaching it.
    #[error("HSM unavailable since {since_ms} ms ago ({first}); recovering in the background")]
    Down {
        /// The error that made it unavailable.
        first: String,
        /// How long ago.
        since_ms: u128,
    },
    /// Recovery stopped for good (a refused or locked PIN): a restart is needed after the fix.
    #[error("HSM unavailable and recovery stopped: {0}; fix it and restart strongroom")]
    Failed(String),
}

impl Error {
    /// Whether this error means the HSM (not this one call) cannot be used now: 503, and the
    /// HSM is marked unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. }
                | Error::Timeout { .. }
                | Error::Busy { .. }
                | Error::Down { .. }
                | Error::Failed(_)
        )
    }

    /// Whether retrying could lock the token (a refused or locked PIN): never retried.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::WrongPin | Error::PinLocked | Error::Failed(_))
    }
}

/// What a PKCS#11 return value means for the service (PKCS#11 v2.40 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The HSM cannot be used now; recover and retry later.
    Unavailable,
    /// The PIN was refused or is locked: never retry (the token would lock).
    Fatal,
    /// This one call was wrong (arguments, mechanism, object); the HSM is fine.
    Input,
}

/// Classifies a PKCS#11 return value.
///
/// Unavailable: CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED and CKR_HOST_MEMORY (5.1.1, the universal
/// values: what a remote module returns when its server is gone); CKR_SESSION_HANDLE_INVALID and
/// CKR_SESSION_CLOSED (5.1.2); CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED and
/// CKR_TOKEN_NOT_PRESENT (5.1.3); CKR_TOKEN_NOT_RECOGNIZED, CKR_SESSION_COUNT,
/// CKR_USER_NOT_LOGGED_IN (the login was lost with the sessions), CKR_CRYPTOKI_NOT_INITIALIZED
/// (the library lost its initialisation) and CKR_KEY_HANDLE_INVALID / CKR_OBJECT_HANDLE_INVALID
/// (handles go stale across reconnections; recovery finds the keys again) (5.1.6).
/// Fatal: CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_PIN_EXPIRED, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE.
/// Everything else is an input error of the one call.
pub fn classify(rv: RvError) -> Class {
    use RvError::*;
    match rv {
        GeneralError
        | FunctionFailed
        | HostMemory
        | SessionHandleInvalid
        | SessionClosed
        | DeviceError
        | DeviceMemory
        | DeviceRemoved
        | TokenNotPresent
        | TokenNotRecognized
        | SessionCount
        | UserNotLoggedIn
        | CryptokiNotInitialized
        | KeyHandleInvalid
        | ObjectHandleInvalid => Class::Unavailable,
        PinIncorrect | PinLocked | PinExpired | PinInvalid | PinLenRange => Class::Fatal,
        _ => Class::Input,
    }
}

pub(super) fn ck(op: &'static str) -> impl Fn(CkError) -> Error {
    move |e| match e {
        CkError::Pkcs11(RvError::PinLocked, _) => Error::PinLocked,
        CkError::Pkcs11(rv, _) if classify(rv) == Class::Fatal => Error::WrongPin,
        CkError::Pkcs11(rv, f) if classify(rv) == Class::Unavailable => Error::Unavailable {
            op: f.to_string(),
            rv: format!("{rv:?}"),
        },
        CkError::Pkcs11(rv, f) => Error::Pkcs11 {
            op: f.to_string(),
            rv: format!("{rv:?}"),
        },
        other => Error::Pkcs11 {
            op: op.to_string(),
            rv: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_session_token_login_and_library_failures_are_unavailable() {
        for rv in [
            RvError::GeneralError,
            RvError::FunctionFailed,
            RvError::DeviceError,
            RvError::DeviceRemoved,
            RvError::DeviceMemory,
            RvError::SessionClosed,
            RvError::SessionHandleInvalid,
            RvError::TokenNotPresent,
            RvError::UserNotLoggedIn,
            RvError::CryptokiNotInitialized,
            RvError::KeyHandleInvalid,
        ] {
            assert_eq!(classify(rv), Class::Unavailable, "{rv:?}");
            let e = ck("C_Sign")(CkError::Pkcs11(rv, cryptoki::context::Function::Sign));
            assert!(e.is_unavailable() && !e.is_fatal(), "{rv:?}: {e}");
        }
    }

    #[test]
    fn a_refused_or_locked_pin_is_fatal_and_input_errors_stay_what_they_are() {
        let login = |rv| ck("C_Login")(CkError::Pkcs11(rv, cryptoki::context::Function::Login));
        assert!(matches!(login(RvError::PinIncorrect), Error::WrongPin));
        assert!(matches!(login(RvError::PinLocked), Error::PinLocked));
        assert!(login(RvError::PinIncorrect).is_fatal());
        assert!(!login(RvError::PinIncorrect).is_unavailable());
        for rv in [
            RvError::MechanismInvalid,
            RvError::DataLenRange,
            RvError::ArgumentsBad,
            RvError::AttributeTypeInvalid,
            RvError::TemplateIncomplete,
        ] {
            assert_eq!(classify(rv), Class::Input, "{rv:?}");
            let e = ck("C_Sign")(CkError::Pkcs11(rv, cryptoki::context::Function::Sign));
            assert!(matches!(e, Error::Pkcs11 { .. }), "{rv:?}: {e}");
            assert!(!e.is_unavailable() && !e.is_fatal());
        }
        let timeout = Error::Timeout {
            op: "C_Sign",
            after: Duration::from_millis(500),
        };
        assert!(timeout.is_unavailable());
        assert!(timeout.to_string().contains("did not return within 500 ms"));
    }
}
