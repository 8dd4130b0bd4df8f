//! HSM access through PKCS#11: the only module that touches `cryptoki`.
//!
//! One PKCS#11 library context per process (`C_Initialize` with OS locking), replaceable: when a
//! remote module's connection is gone it is finalised and initialised again. A token is chosen by
//! label or serial number, never by slot id (SoftHSM, for one, renumbers slots when a token is
//! initialised). Keys are named by RFC 7512 PKCS#11 URIs ([`KeyUri`]).
//!
//! What this module promises:
//! - keys it generates are token objects, private, sensitive, non-extractable and sign-only, and
//!   that is read back from the token and checked after generation ([`Hsm::generate_key`]);
//! - every signature it returns has been verified in software against the key's public key
//!   ([`Hsm::sign`]); a signature that does not verify is an error, never returned;
//! - a wrong PIN is reported once and never retried, not even by the background recovery;
//! - every call has a deadline ([`Options::call_timeout`]), kept by the pool whether or not its
//!   caller still waits: a call that runs longer than that marks the HSM unavailable, a call that
//!   waits in the queue longer than that fails without being started, and an HSM marked
//!   unavailable refuses calls at once.
//!
//! # Sessions, deadlines and faults
//!
//! ```text
//!   caller (any thread)                       worker threads, one per session
//!   ───────────────────                       ───────────────────────────────
//!   healthy? ──no──▶ Error::Down (at once)    loop: take a job from the queue
//!      │yes                                         (exit when the generation moved on;
//!   push job ──────────── queue ────────────▶        fail it, unstarted, if queued too long)
//!      │                                      write start + deadline in the worker's slot
//!      │                                      run it on its own Session, clear the slot
//!   wait for the reply ◀───── reply channel ── send the result (dropped if the
//!      │ (or leave: nothing depends on it)         generation moved on meanwhile)
//!      ▼ generation moved on: Error::Timeout if as old as the deadline, else Error::Down
//!
//!   watchdog thread (one per pool), every 20 ms at most:
//!     a slot past its deadline ──▶ mark unavailable (Error::Timeout)
//!     a queued job past its own deadline ──▶ its caller gets Error::Busy; never started
//! ```
//!
//! Each logged-in `Session` is owned by one worker thread for its whole life (a cryptoki
//! `Session` is `Send` but not `Sync`), and callers hand it work over a queue: a thread that blocks
//! on the reply, or an async task that awaits it ([`Hsm::sign_async`], the signing service's
//! path, so that no thread is handed the request just to wait). The pool, not the caller, keeps
//! the deadlines: a caller may give up and leave (a client that disconnects drops its request's
//! task) and its call is still timed. Each worker has a slot where it writes when its call's
//! deadline passes ([`Options::call_timeout`] after it started the call) and clears it when the
//! call returns: a few atomic stores per call, no lock and no wake-up. The pool's watchdog thread
//! reads the slots on a timer (a quarter of the call deadline, at most 20 ms); a call still in
//! its slot past its deadline marks the HSM unavailable, and the stuck worker is left behind: it
//! holds nothing anyone else needs (no lock, no other session), and whatever it returns later is
//! discarded, because the *generation* counter has moved on. A caller whose call belongs to a
//! generation that has ended is answered at once (it looks every 20 ms while it waits), without
//! waiting for its own deadline.
//!
//! A queued job has a deadline too, the same length counted from when it was queued: the
//! watchdog takes a job out of the queue once that has passed and its caller gets
//! [`Error::Busy`] at once, and a worker that takes a job whose deadline has passed fails it the
//! same way instead of starting it. A job that waited too long says the pool is overloaded or its
//! sessions are held by long calls (a key generation), not that the HSM is gone: it does not mark
//! the HSM unavailable. When the HSM hangs, the calls it holds reach their deadlines first, since
//! they started before anything queued behind them.
//!
//! PKCS#11 return values are classified ([`classify`], PKCS#11 v2.40 section 5.1): device,
//! token, session, login and library failures mean "HSM unavailable"; a refused or locked PIN is
//! fatal; the rest (bad arguments, unsupported mechanisms) are errors of that one call. On the
//! first "unavailable" error or timeout the HSM is marked unavailable once (one line on stderr,
//! not one per request): the generation moves on, the queue is emptied (each waiting caller gets
//! [`Error::Down`]), new calls fail at once, and a background thread recovers:
//!
//! 1. wait 50 ms, doubling to at most 1 s between attempts, while the old workers finish;
//! 2. find the token again (same label or serial, and the same serial as before), open the
//!    sessions and log in, on the current library context;
//! 3. if that fails, `C_Finalize` and `C_Initialize` the library and try step 2 again, once no
//!    old call is inside the library any more (PKCS#11 v2.40 5.4.2: C_Finalize must not run
//!    while other threads are in calls). An old call still there after the call deadline is
//!    taken as lost and no longer waited for (p11-kit-client leaves such a call behind now and
//!    then when its server dies); sessions of an earlier initialisation are then forgotten, not
//!    closed, since their handle numbers may name new sessions;
//! 4. find every key used so far again (object handles do not survive a new session or a new
//!    library initialisation), check each one's public key is still the one it had when it was
//!    first found (for issuers, the public key of the issuer certificate, checked by
//!    `Issuer::load`), and only then start new workers and report healthy.
//!
//! Each attempt has the call deadline too; an attempt that does not return is abandoned like a
//! stuck call and no new attempt starts until it has returned. A refused or locked PIN ends the
//! recovery for good (state "failed", a loud line on stderr) so the token never locks itself out.

pub mod raw;
mod uri;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use secrecy::SecretString;
use serde::Serialize;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

pub use self::uri::KeyUri;
use crate::alg::{KeyType, SignatureAlgorithm};
use crate::secret::Pin;

/// Deadlines and recovery behaviour of an [`Hsm`].
#[derive(Clone, Debug)]
pub struct Options {
    /// A call's deadline (default 2 s): a call that runs longer than this once a worker started
    /// it marks the HSM unavailable, whether or not its caller still waits, and a call that waits
    /// longer than this in the queue fails without being started.
    pub call_timeout: Duration,
    /// The deadline for `C_GenerateKeyPair`, in the queue and running (default 300 s: RSA-4096
    /// generation varies widely).
    pub keygen_timeout: Duration,
    /// Recover in the background after a fault (default true; ceremonies turn it off and stop).
    pub recover: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: Duration::from_secs(2),
            keygen_timeout: Duration::from_secs(300),
            recover: true,
        }
    }
}

/// How a token is selected: by its label or by its serial number (PKCS#11 `CK_TOKEN_INFO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token's label (CKA_LABEL of the token, trailing blanks ignored).
    Label(String),
    /// The token's serial number.
    Serial(String),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "token label {l:?}"),
            TokenSelector::Serial(s) => write!(f, "token serial {s:?}"),
        }
    }
}

/// Facts about the PKCS#11 library and token, for the ceremony transcript.
#[derive(Clone, Debug, Serialize)]
pub struct TokenDescription {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// `CK_INFO.libraryDescription`.
    pub library_description: String,
    /// `CK_INFO.manufacturerID`.
    pub library_manufacturer: String,
    /// `CK_INFO.libraryVersion`.
    pub library_version: String,
    /// `CK_INFO.cryptokiVersion`.
    pub cryptoki_version: String,
    /// Token label.
    pub label: String,
    /// Token serial number.
    pub serial: String,
    /// Token manufacturer.
    pub manufacturer: String,
    /// Token model.
    pub model: String,
}

/// Attributes of a generated private key as read back from the token (PKCS#11 v2.40 section 4.9).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KeyAttributes {
    /// CKA_TOKEN
    pub token: bool,
    /// CKA_PRIVATE
    pub private: bool,
    /// CKA_SENSITIVE
    pub sensitive: bool,
    /// CKA_ALWAYS_SENSITIVE
    pub always_sensitive: bool,
    /// CKA_EXTRACTABLE
    pub extractable: bool,
    /// CKA_NEVER_EXTRACTABLE
    pub never_extractable: bool,
    /// CKA_LOCAL (generated on the token)
    pub local: bool,
    /// CKA_SIGN
    pub sign: bool,
    /// CKA_SIGN_RECOVER
    pub sign_recover: bool,
    /// CKA_DECRYPT
    pub decrypt: bool,
    /// CKA_UNWRAP
    pub unwrap: bool,
    /// CKA_DERIVE
    pub derive: bool,
}

impl KeyAttributes {
    /// The attributes every CA key must have, with the name of the first that is wrong: the
    /// rules of [`KeyAttributes::use_violations`] and, since strongroom made the key, that it
    /// was generated inside the token and never left it in the clear.
    pub fn check(&self) -> Result<(), &'static str> {
        let generated = [
            (self.token, "CKA_TOKEN must be true"),
            (self.private, "CKA_PRIVATE must be true"),
            (self.always_sensitive, "CKA_ALWAYS_SENSITIVE must be true"),
            (self.never_extractable, "CKA_NEVER_EXTRACTABLE must be true"),
            (
                self.local,
                "CKA_LOCAL must be true (generated inside the token)",
            ),
        ];
        match generated.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err(rule),
            None => match self.use_violations(true).first() {
                Some(rule) => Err(rule),
                None => Ok(()),
            },
        }
    }

    /// Every rule a private key strongroom signs with breaks (empty: the key may be used).
    ///
    /// PKCS#11 v2.40 section 4.9 (private key objects): a CA key is CKA_SENSITIVE and not
    /// CKA_EXTRACTABLE, so its value never leaves the token in the clear, and it signs and does
    /// nothing else: not CKA_DECRYPT, CKA_UNWRAP or CKA_DERIVE, and for an RSA key (`rsa`) not
    /// CKA_SIGN_RECOVER, which allows C_SignRecover with CKM_RSA_X_509, the raw private-key
    /// operation (PKCS#11 v2.40 Mechanisms 2.1.7). No EC mechanism signs with recovery, so the
    /// attribute (on by default in SoftHSM) grants an EC key nothing. These hold for every key
    /// found by URI (issuers, OCSP delegates, ceremony `uri=` references). CKA_LOCAL,
    /// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are not required here: a key restored from a
    /// wrapped backup legitimately lacks them ([`KeyAttributes::check`] requires them of the keys
    /// strongroom generates).
    pub fn use_violations(&self, rsa: bool) -> Vec<&'static str> {
        let required = [
            (self.sensitive, "CKA_SENSITIVE must be true"),
            (!self.extractable, "CKA_EXTRACTABLE must be false"),
            (self.sign, "CKA_SIGN must be true"),
            (
                !(rsa && self.sign_recover),
                "CKA_SIGN_RECOVER must be false",
            ),
            (!self.decrypt, "CKA_DECRYPT must be false"),
            (!self.unwrap, "CKA_UNWRAP must be false"),
            (!self.derive, "CKA_DERIVE must be false"),
        ];
        required
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, rule)| *rule)
            .collect()
    }
}

/// A private key found on (or generated in) the token, with its public key.
#[derive(Clone, Debug)]
pub struct KeyHandle {
    /// CKA_LABEL
    pub label: String,
    /// CKA_ID
    pub id: Vec<u8>,
    /// The key type.
    pub key_type: KeyType,
    /// The public key, as read from the token's public key object.
    pub spki: SubjectPublicKeyInfoOwned,
    private: ObjectHandle,
    /// The generation (see the module doc) `private` belongs to.
    generation: u64,
    /// The key's entry in the [`Hsm`]'s key list, which has its handle after a reconnection.
    registered: Option<usize>,
    /// The public key parsed once, for verifying every signature made with this key.
    verifier: std::sync::Arc<crate::verify::VerifyingKey>,
}

impl KeyHandle {
    /// The RFC 7512 URI of this key on `token`.
    pub fn uri(&self, token: &str) -> KeyUri {
        KeyUri {
            token: Some(token.to_string()),
            object: Some(self.label.clone()),
            id: Some(self.id.clone()),
            serial: None,
        }
    }
}

/// The outcome of [`Hsm::generate_key`]: the key and what was checked about it.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// The new key.
    pub key: KeyHandle,
    /// The private key's attributes as read back, already checked with [`KeyAttributes::check`].
    pub attributes: KeyAttributes,
    /// SHA-256 of the self-test challenge that was signed and verified.
    pub self_test_challenge_sha256: String,
}

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

fn ck(op: &'static str) -> impl Fn(CkError) -> Error {
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

/// The process-wide PKCS#11 context: one module; `epoch` counts its initialisations.
struct Loaded {
    module: PathBuf,
    ctx: Pkcs11,
    epoch: u64,
}

static CONTEXT: Mutex<Option<Loaded>> = Mutex::new(None);

/// The current initialisation's epoch, if the library is loaded.
fn context_epoch() -> Option<u64> {
    lock(&CONTEXT).as_ref().map(|l| l.epoch)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The context for `module` (loaded and initialised on first use) and its epoch.
fn context(module: &Path) -> Result<(Pkcs11, u64), Error> {
    let mut guard = lock(&CONTEXT);
    if let Some(loaded) = guard.as_ref() {
        return if loaded.module == module {
            Ok((loaded.ctx.clone(), loaded.epoch))
        } else {
            Err(Error::OtherModule(loaded.module.clone()))
        };
    }
    let ctx = Pkcs11::new(module).map_err(|e| Error::Module {
        module: module.to_path_buf(),
        reason: e.to_string(),
    })?;
    ctx.initialize(init_args()).map_err(ck("C_Initialize"))?;
    *guard = Some(Loaded {
        module: module.to_path_buf(),
        ctx: ctx.clone(),
        epoch: 1,
    });
    Ok((ctx, 1))
}

/// `C_Finalize` and `C_Initialize` the library again, unless someone already did since `seen`
/// (then the current context is returned). The caller makes sure none of its calls is inside
/// the library (PKCS#11 v2.40 5.4.2). The module stays loaded: the same `Pkcs11` is reused.
fn reinitialize(module: &Path, seen: u64) -> Result<(Pkcs11, u64), Error> {
    let mut guard = lock(&CONTEXT);
    let loaded = guard.as_mut().ok_or_else(|| Error::Module {
        module: module.to_path_buf(),
        reason: "not loaded".to_string(),
    })?;
    if loaded.epoch != seen {
        return Ok((loaded.ctx.clone(), loaded.epoch));
    }
    // CKR_CRYPTOKI_NOT_INITIALIZED (after a failed C_Initialize) or a dead connection: either
    // way the library is not initialised afterwards, which is all that is needed here.
    let _ = loaded.ctx.clone().finalize();
    loaded.epoch += 1;
    loaded
        .ctx
        .initialize(init_args())
        .map_err(ck("C_Initialize"))?;
    Ok((loaded.ctx.clone(), loaded.epoch))
}

fn find_slot(
    ctx: &Pkcs11,
    selector: &TokenSelector,
) -> Result<(Slot, cryptoki::slot::TokenInfo), Error> {
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
        let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
        if !info.token_initialized() {
            continue;
        }
        let matches = match selector {
            TokenSelector::Label(l) => info.label().trim_end() == l,
            TokenSelector::Serial(s) => info.serial_number().trim_end() == s,
        };
        present.push(info.label().trim_end().to_string());
        if matches {
            found.push((slot, info));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Token {
            selector: selector.to_string(),
            problem: format!("no such token (tokens present: {present:?})"),
        }),
        n => Err(Error::Token {
            selector: selector.to_string(),
            problem: format!("matches {n} tokens; select by serial number instead"),
        }),
    }
}

/// The HSM's health, as [`Hsm::status`] reports it (for `/v1/health` and `/metrics`).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// "healthy", "unavailable" (recovering) or "failed" (recovery stopped).
    pub state: &'static str,
    /// Whether calls are accepted.
    pub healthy: bool,
    /// The error that made it unavailable or failed.
    pub error: Option<String>,
    /// How long it has been unavailable, in milliseconds.
    pub unavailable_ms: Option<u64>,
    /// Outages so far.
    pub outages: u64,
    /// Recoveries so far.
    pub recoveries: u64,
    /// The last outage's length, from the first error to healthy again, in milliseconds.
    pub last_outage_ms: Option<u64>,
    /// How often recovery finalised and initialised the library again.
    pub reinitialisations: u64,
    /// Logins the token refused (a refused PIN is never retried, so this stays at most 1).
    pub pin_refusals: u64,
    /// Recovery attempts in the current (or last) outage.
    pub recovery_attempts: u64,
    /// Threads of earlier generations still inside a PKCS#11 call (stuck calls).
    pub calls_in_flight_abandoned: usize,
}

enum Health {
    Healthy,
    Unavailable { since: Instant, error: String },
    Failed { error: String },
}

struct State {
    health: Health,
    outages: u64,
    recoveries: u64,
    last_outage: Option<Duration>,
    reinitialisations: u64,
    /// The worker threads of the current generation.
    workers: Vec<JoinHandle<()>>,
    /// Their slots, which the watchdog reads.
    slots: Vec<Arc<InFlight>>,
    /// Threads of earlier generations that may still be inside a PKCS#11 call, and since when.
    stale: Vec<(JoinHandle<()>, Instant)>,
    recovering: bool,
}

/// A key found so far: what recovery finds again and checks.
struct Registered {
    uri: KeyUri,
    /// The public key it had when first found (for issuers: the issuer certificate's).
    spki: SubjectPublicKeyInfoOwned,
    handle: ObjectHandle,
    generation: u64,
}

type Observer = Box<dyn Fn(bool) + Send + Sync>;

/// A job's call and reply: run on a worker's session, or told why it will not run.
type Run = Box<dyn for<'a, 'b> FnOnce(Result<&'a Ops<'b>, Error>) + Send>;

/// One call for a worker: it sends its own result, or the error it is given instead of running.
struct Job {
    run: Run,
    /// The call, for errors.
    op: &'static str,
    /// Its deadline, counted from when it was queued and again from when a worker starts it.
    timeout: Duration,
    /// When it must have been started ([`Inner::now_ms`] scale); a worker never starts it later.
    start_by: u64,
}

impl Job {
    /// Answers the caller with `Error::Busy` instead of running the call.
    fn expire(self) {
        let e = Error::Busy {
            op: self.op,
            after: self.timeout,
        };
        (self.run)(Err(e));
    }
}

/// A queued call, as its caller sees it while waiting.
struct Pending {
    /// The generation it was queued in.
    generation: u64,
    /// Its job's `start_by`: once that has passed, the call is at least its deadline old.
    start_by: u64,
}

/// A worker's call in flight, as the watchdog sees it. Only the worker writes it (when it starts
/// and ends a call), only the watchdog reads it: atomics, no lock on the call's path.
#[derive(Default)]
struct InFlight {
    /// When the running call's deadline passes ([`Inner::now_ms`] scale); 0 while idle.
    deadline: AtomicU64,
    /// The running call's deadline in ms, for the error (may belong to the next call by the
    /// time the watchdog reads it; only the message would be off).
    timeout_ms: AtomicU64,
    /// The running call's name, as an index into [`OPS`].
    op: AtomicUsize,
}

/// The calls a slot can name (the `op` of [`Hsm::call`]'s callers).
const OPS: [&str; 5] = [
    "C_Sign",
    "C_GetSessionInfo",
    "C_FindObjects",
    "C_GenerateRandom",
    "C_GenerateKeyPair",
];

/// The index of `op` in [`OPS`] ([`OPS`]'s length for any other).
fn op_index(op: &'static str) -> usize {
    OPS.iter().position(|o| *o == op).unwrap_or(OPS.len())
}

struct Inner {
    module: PathBuf,
    selector: TokenSelector,
    /// Kept for logging in again after a reconnection; zeroed on drop (secrecy).
    pin: SecretString,
    size: usize,
    options: Options,
    description: TokenDescription,
    epoch: Instant,
    /// Moves on when the HSM is marked unavailable and again when it is back; workers and
    /// results of an earlier generation are discarded.
    generation: AtomicU64,
    healthy: AtomicBool,
    shutdown: AtomicBool,
    pin_refusals: AtomicU64,
    recovery_attempts: AtomicU64,
    queue: Mutex<Queue>,
    work: Condvar,
    state: Mutex<State>,
    keys: Mutex<Vec<Registered>>,
    observer: Mutex<Option<Observer>>,
    /// Asks the supervisor thread to recover (see [`Inner::mark_unavailable`]).
    supervisor: Mutex<mpsc::Sender<()>>,
}

/// The jobs no worker has taken yet, and how many workers wait on [`Inner::work`] for one: kept
/// under one lock, so that `submit` wakes a worker only when one waits (a worker that is not
/// waiting looks at the jobs before it waits, so no job is left behind).
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    waiting: usize,
}

/// How often a waiting caller looks whether its generation has ended, and the longest time
/// between two scans of the watchdog.
const TICK: Duration = Duration::from_millis(20);
/// Recovery waits 50 ms before its first attempt, doubling to this at most.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Logged-in sessions on one token, each owned by its own worker thread (see the module doc).
/// Calls are queued to the workers and have deadlines; faults make the HSM unavailable and a
/// background thread brings it back.
pub struct Hsm {
    inner: Arc<Inner>,
    /// The watchdog thread: ends when `inner.shutdown` is set and it is unparked.
    watchdog: Option<JoinHandle<()>>,
}

/// One worker's session and the token it is on: the operations themselves.
struct Ops<'a> {
    session: &'a Session,
    description: &'a TokenDescription,
    inner: &'a Inner,
    /// The worker's generation (0 while recovery checks the keys on new sessions).
    generation: u64,
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| Error::Unavailable {
            op: "starting a thread".to_string(),
            rv: e.to_string(),
        })
}

/// Finds the token and opens `size` sessions on it, logging the user in once (PKCS#11 login
/// state is shared by all of an application's sessions on a token).
fn connect(
    ctx: &Pkcs11,
    selector: &TokenSelector,
    pin: &SecretString,
    size: usize,
) -> Result<(cryptoki::slot::TokenInfo, Vec<Session>), Error> {
    let (slot, info) = find_slot(ctx, selector)?;
    let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(ck("C_Login")(e)),
    }
    let mut sessions = vec![session];
    for _ in 1..size {
        sessions.push(ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?);
    }
    Ok((info, sessions))
}

fn worker(inner: Arc<Inner>, generation: u64, epoch: u64, session: Session, slot: Arc<InFlight>) {
    loop {
        let job = {
            let mut queue = lock(&inner.queue);
            loop {
                if inner.generation.load(Ordering::SeqCst) != generation {
                    drop(queue);
                    if context_epoch() == Some(epoch) {
                        // Dropping the session closes it (C_CloseSession).
                        drop(session);
                    } else {
                        // The library was initialised again: the old handle may now name a
                        // new session, so it is not closed (it died with the old connection).
                        std::mem::forget(session);
                    }
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.waiting += 1;
                queue = inner
                    .work
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                queue.waiting -= 1;
            }
        };
        let now = inner.now_ms();
        if now >= job.start_by {
            // Queued past its deadline: never started (the watchdog had not got to it yet).
            job.expire();
            continue;
        }
        slot.op.store(op_index(job.op), Ordering::Relaxed);
        slot.timeout_ms
            .store(duration_ms(job.timeout), Ordering::Relaxed);
        slot.deadline.store(
            now.saturating_add(duration_ms(job.timeout)),
            Ordering::Release,
        );
        let ops = Ops {
            session: &session,
            description: &inner.description,
            inner: &inner,
            generation,
        };
        // A panic in one call drops its reply sender (the caller gets an error); the worker stays.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Ok(&ops))));
        slot.deadline.store(0, Ordering::Release);
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The watchdog thread: scans the pool's deadlines every `period` until the pool is dropped.
fn watchdog(inner: std::sync::Weak<Inner>, period: Duration) {
    loop {
        std::thread::park_timeout(period);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        inner.watch();
    }
}

/// A generation's worker threads and their slots.
type Workers = (Vec<JoinHandle<()>>, Vec<Arc<InFlight>>);

fn start_workers(
    inner: &Arc<Inner>,
    generation: u64,
    epoch: u64,
    sessions: Vec<Session>,
) -> Result<Workers, Error> {
    let mut workers = Vec::with_capacity(sessions.len());
    let mut slots = Vec::with_capacity(sessions.len());
    for (i, session) in sessions.into_iter().enumerate() {
        let inner = inner.clone();
        let slot = Arc::new(InFlight::default());
        slots.push(slot.clone());
        workers.push(spawn(format!("hsm-{generation}-{i}"), move || {
            worker(inner, generation, epoch, session, slot)
        })?);
    }
    Ok((workers, slots))
}

/// Sessions and key handles found again by a recovery attempt.
struct Fresh {
    sessions: Vec<Session>,
    handles: Vec<ObjectHandle>,
    reinitialised: bool,
    /// The library initialisation the sessions belong to.
    epoch: u64,
}

impl Inner {
    /// How long a caller waits for `pending`'s reply before looking again. Fails at once when
    /// the generation has ended (the watchdog or another call declared an outage: this result
    /// would be discarded anyway): with [`Error::Timeout`] if the call is as old as its deadline
    /// (it is the call that hung, or as late as it), else with the outage's error. The deadlines
    /// themselves are the watchdog's ([`Inner::watch`]).
    fn next_wait(
        &self,
        pending: &Pending,
        op: &'static str,
        timeout: Duration,
    ) -> Result<Duration, Error> {
        if self.generation.load(Ordering::SeqCst) != pending.generation {
            if self.now_ms() >= pending.start_by {
                return Err(Error::Timeout { op, after: timeout });
            }
            return Err(self.down_error());
        }
        Ok(TICK)
    }

    /// A worker's reply, as its caller returns it: an "unavailable" error marks the HSM so (not
    /// [`Error::Busy`]: a call that never reached the HSM says nothing about it).
    fn finish<R>(self: &Arc<Self>, result: Result<R, Error>) -> Result<R, Error> {
        if let Err(e) = &result {
            if e.is_unavailable() && !matches!(e, Error::Busy { .. }) {
                self.mark_unavailable(e);
            }
        }
        result
    }

    /// One scan of the watchdog: a running call past its deadline marks the HSM unavailable;
    /// queued jobs past theirs are taken out and their callers answered with [`Error::Busy`].
    fn watch(self: &Arc<Self>) {
        let now = self.now_ms();
        let late = {
            let st = lock(&self.state);
            st.slots.iter().find_map(|slot| {
                let deadline = slot.deadline.load(Ordering::Acquire);
                (deadline != 0 && now >= deadline).then(|| Error::Timeout {
                    op: OPS
                        .get(slot.op.load(Ordering::Relaxed))
                        .copied()
                        .unwrap_or("a call"),
                    after: Duration::from_millis(slot.timeout_ms.load(Ordering::Relaxed)),
                })
            })
        };
        if let Some(e) = late {
            self.mark_unavailable(&e);
        }
        let expired: Vec<Job> = {
            let mut queue = lock(&self.queue);
            if !queue.jobs.iter().any(|j| now >= j.start_by) {
                return;
            }
            let mut expired = Vec::new();
            for job in std::mem::take(&mut queue.jobs) {
                if now >= job.start_by {
                    expired.push(job);
                } else {
                    queue.jobs.push_back(job);
                }
            }
            expired
        };
        // Answered outside the lock: a reply runs the caller's code (a channel send).
        for job in expired {
            job.expire();
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// The error for a call refused because the HSM is not healthy.
    fn down_error(&self) -> Error {
        match &lock(&self.state).health {
            Health::Unavailable { since, error } => Error::Down {
                first: error.clone(),
                since_ms: since.elapsed().as_millis(),
            },
            Health::Failed { error } => Error::Failed(error.clone()),
            Health::Healthy => Error::Down {
                first: "the call was abandoned".to_string(),
                since_ms: 0,
            },
        }
    }

    fn notify(&self, up: bool) {
        if let Some(f) = lock(&self.observer).as_ref() {
            f(up);
        }
    }

    /// Marks the HSM unavailable (once per outage), fails every queued call and starts the
    /// recovery thread.
    fn mark_unavailable(self: &Arc<Self>, error: &Error) {
        let mut st = lock(&self.state);
        if !matches!(st.health, Health::Healthy) || self.shutdown.load(Ordering::SeqCst) {
            return;
        }
        st.health = Health::Unavailable {
            since: Instant::now(),
            error: error.to_string(),
        };
        st.outages += 1;
        self.healthy.store(false, Ordering::SeqCst);
        let _ = self.generation.fetch_add(1, Ordering::SeqCst);
        let old = std::mem::take(&mut st.workers);
        // The stuck calls are the outage's now; the watchdog looks at the next generation's.
        st.slots.clear();
        let now = Instant::now();
        st.stale.extend(old.into_iter().map(|h| (h, now)));
        // Dropping the queued jobs drops their reply senders: each waiting caller gets Down.
        lock(&self.queue).jobs.clear();
        self.work.notify_all();
        eprintln!(
            "strongroom: HSM outage: {error}; requests that need a signature get 503 hsm.unavailable{}",
            if self.options.recover {
                " while it recovers in the background"
            } else {
                ""
            }
        );
        self.notify(false);
        if self.options.recover && !st.recovering {
            // The supervisor thread runs the recovery: it was started with the pool, so the
            // recovery and the workers it starts have the scheduling priority the pool was
            // opened with, not that of whichever thread found the fault (the service runs its
            // request threads at a lower priority: `service.request-threads-nice`).
            match lock(&self.supervisor).send(()) {
                Ok(()) => st.recovering = true,
                Err(_) => {
                    eprintln!("strongroom: cannot start HSM recovery: the supervisor is gone")
                }
            }
        }
    }

    /// Opens sessions, logs in and finds every registered key again, checking its public key.
    fn connect_and_find(&self, ctx: &Pkcs11) -> Result<(Vec<Session>, Vec<ObjectHandle>), Error> {
        let (info, sessions) =
            connect(ctx, &self.selector, &self.pin, self.size).inspect_err(|e| {
                if e.is_fatal() {
                    let _ = self.pin_refusals.fetch_add(1, Ordering::SeqCst);
                }
            })?;
        let serial = info.serial_number().trim_end();
        if serial != self.description.serial {
            return Err(Error::Token {
                selector: self.selector.to_string(),
                problem: format!(
                    "now has serial {serial:?}, not {:?} as before; not using it",
                    self.description.serial
                ),
            });
        }
        let expected: Vec<(KeyUri, SubjectPublicKeyInfoOwned)> = lock(&self.keys)
            .iter()
            .map(|r| (r.uri.clone(), r.spki.clone()))
            .collect();
        let session = sessions.first().ok_or_else(|| Error::Unavailable {
            op: "C_OpenSession".to_string(),
            rv: "no session".to_string(),
        })?;
        let ops = Ops {
            session,
            description: &self.description,
            inner: self,
            generation: 0,
        };
        let mut handles = Vec::with_capacity(expected.len());
        for (uri, spki) in expected {
            let key = ops.find_key(&uri)?;
            if key.spki != spki {
                return Err(Error::Key {
                    uri: uri.to_string(),
                    problem: "after reconnecting, its public key is not the one it had when first found (the issuer certificate's); not using it".to_string(),
                });
            }
            handles.push(key.private);
        }
        Ok((sessions, handles))
    }

    /// One recovery attempt: reconnect on the current library context; if that fails and no
    /// call of ours is inside the library (`quiet`), finalise and initialise it and try again.
    fn reconnect(&self, quiet: bool) -> Result<Fresh, Error> {
        let (ctx, epoch) = context(&self.module)?;
        match self.connect_and_find(&ctx) {
            Ok((sessions, handles)) => {
                return Ok(Fresh {
                    sessions,
                    handles,
                    reinitialised: false,
                    epoch,
                });
            }
            Err(e) if e.is_fatal() || !quiet => return Err(e),
            Err(_) => {}
        }
        let (ctx, epoch) = reinitialize(&self.module, epoch)?;
        let (sessions, handles) = self.connect_and_find(&ctx)?;
        Ok(Fresh {
            sessions,
            handles,
            reinitialised: true,
            epoch,
        })
    }

    /// Puts a successful attempt's sessions to work: a new generation, healthy again.
    fn install(self: &Arc<Self>, fresh: Fresh, attempts: u32) -> Result<(), Error> {
        let mut st = lock(&self.state);
        if self.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let found = fresh.handles.len();
        {
            let mut keys = lock(&self.keys);
            for (r, handle) in keys.iter_mut().zip(fresh.handles) {
                r.handle = handle;
                r.generation = generation;
            }
        }
        let (workers, slots) = match start_workers(self, generation, fresh.epoch, fresh.sessions) {
            Ok(w) => w,
            Err(e) => {
                // The workers that did start exit at once.
                let _ = self.generation.fetch_add(1, Ordering::SeqCst);
                self.work.notify_all();
                return Err(e);
            }
        };
        let outage = match &st.health {
            Health::Unavailable { since, .. } => since.elapsed(),
            _ => Duration::ZERO,
        };
        st.workers = workers;
        st.slots = slots;
        st.health = Health::Healthy;
        st.recovering = false;
        st.recoveries += 1;
        st.last_outage = Some(outage);
        if fresh.reinitialised {
            st.reinitialisations += 1;
        }
        self.healthy.store(true, Ordering::SeqCst);
        eprintln!(
            "strongroom: HSM available again after {} ms ({attempts} recovery attempts{}); {found} keys found again and checked against their certificates",
            outage.as_millis(),
            if fresh.reinitialised {
                ", library finalised and initialised again"
            } else {
                ""
            }
        );
        self.notify(true);
        Ok(())
    }

    /// Stops recovery for good.
    fn fail(&self, e: &Error) {
        let mut st = lock(&self.state);
        st.health = Health::Failed {
            error: e.to_string(),
        };
        st.recovering = false;
        eprintln!(
            "strongroom: HSM RECOVERY STOPPED: {e}. Not retrying, so the token does not lock; \
             requests keep getting 503 hsm.unavailable. Fix the PIN and restart strongroom."
        );
    }
}

/// The recovery thread: attempts with backoff until healthy or a fatal error (module doc).
fn recover(inner: Arc<Inner>) {
    let mut delay = FIRST_BACKOFF;
    let mut pending: Option<JoinHandle<()>> = None;
    let mut attempts = 0u32;
    let mut logged: Option<String> = None;
    loop {
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_BACKOFF);
        if inner.shutdown.load(Ordering::SeqCst) {
            return;
        }
        // An abandoned attempt may still be inside the library: no second one beside it.
        if pending.as_ref().is_some_and(|h| !h.is_finished()) {
            continue;
        }
        if let Some(h) = pending.take() {
            let _ = h.join();
        }
        // Old calls get the call deadline to come back; one still inside the library after
        // that is lost (seen with p11-kit-client after its server was killed) and no longer
        // holds up re-initialising: never recovering would be worse.
        let (quiet, lost) = {
            let mut st = lock(&inner.state);
            st.stale.retain(|(h, _)| !h.is_finished());
            let lost = st
                .stale
                .iter()
                .filter(|(_, since)| since.elapsed() >= inner.options.call_timeout)
                .count();
            (lost == st.stale.len(), lost)
        };
        attempts += 1;
        let (tx, rx) = mpsc::channel();
        let attempt_inner = inner.clone();
        let Ok(handle) = spawn("hsm-reconnect".to_string(), move || {
            if let Err(mpsc::SendError(Ok(late))) = tx.send(attempt_inner.reconnect(quiet)) {
                // Abandoned: its sessions are not closed if the library was initialised again
                // meanwhile (the handles could now name someone else's sessions).
                if context_epoch() != Some(late.epoch) {
                    std::mem::forget(late.sessions);
                }
            }
        }) else {
            continue;
        };
        let failed = match rx.recv_timeout(inner.options.call_timeout) {
            Ok(Ok(fresh)) => {
                let _ = handle.join();
                match inner.install(fresh, attempts) {
                    Ok(()) => return,
                    Err(e) => e,
                }
            }
            Ok(Err(e)) => {
                let _ = handle.join();
                if e.is_fatal() {
                    inner.fail(&e);
                    return;
                }
                e
            }
            Err(_) => {
                pending = Some(handle);
                Error::Timeout {
                    op: "a recovery attempt",
                    after: inner.options.call_timeout,
                }
            }
        };
        // Logged when the reason changes, not on every attempt.
        let reason = match (quiet, lost) {
            (true, 0) => format!("{failed} (no call in flight)"),
            (true, n) => format!("{failed} ({n} calls never returned from the library)"),
            (false, _) => {
                format!("{failed} (old calls still in flight: library not re-initialised yet)")
            }
        };
        if logged.as_deref() != Some(reason.as_str()) {
            eprintln!(
                "strongroom: HSM recovery attempt {attempts} failed: {reason}; retrying with backoff up to {} ms",
                MAX_BACKOFF.as_millis()
            );
            logged = Some(reason);
        }
        inner
            .recovery_attempts
            .store(u64::from(attempts), Ordering::SeqCst);
    }
}

impl Hsm {
    /// Opens one read-write session on the token chosen by `selector` and logs the user in. A
    /// wrong PIN gives [`Error::WrongPin`] after one attempt. No background recovery (for
    /// ceremonies: a fault stops the ceremony), and a call deadline of 30 s: a ceremony waits
    /// on its operator anyway, and some hardware HSMs take seconds for one RSA-4096 signature.
    pub fn open(module: &Path, selector: &TokenSelector, pin: &Pin) -> Result<Hsm, Error> {
        let options = Options {
            recover: false,
            call_timeout: Duration::from_secs(30),
            ..Options::default()
        };
        Hsm::open_with(module, selector, pin, 1, options)
    }

    /// Opens `size` sessions (at least one) with the default [`Options`].
    pub fn open_pool(
        module: &Path,
        selector: &TokenSelector,
        pin: &Pin,
        size: usize,
    ) -> Result<Hsm, Error> {
        Hsm::open_with(module, selector, pin, size, Options::default())
    }

    /// Opens `size` sessions (at least one) on the token, logs the user in once and starts one
    /// worker thread per session. Opening has the call deadline too. The PIN is kept (zeroed on
    /// drop) to log in again after a reconnection.
    pub fn open_with(
        module: &Path,
        selector: &TokenSelector,
        pin: &Pin,
        size: usize,
        options: Options,
    ) -> Result<Hsm, Error> {
        let size = size.max(1);
        let pin = pin.to_auth_pin();
        let (tx, rx) = mpsc::channel();
        let (m, s, p) = (module.to_path_buf(), selector.clone(), pin.clone());
        let _opener = spawn("hsm-open".to_string(), move || {
            let opened = context(&m).and_then(|(ctx, epoch)| {
                let lib = ctx.get_library_info().map_err(ck("C_GetInfo"))?;
                Ok((lib, connect(&ctx, &s, &p, size)?, epoch))
            });
            let _ = tx.send(opened);
        })?;
        let (lib, (info, sessions), epoch) = match rx.recv_timeout(options.call_timeout) {
            Ok(opened) => opened?,
            Err(_) => {
                return Err(Error::Timeout {
                    op: "opening the sessions",
                    after: options.call_timeout,
                });
            }
        };
        let description = TokenDescription {
            module: module.to_path_buf(),
            library_description: lib.library_description().trim_end().to_string(),
            library_manufacturer: lib.manufacturer_id().trim_end().to_string(),
            library_version: lib.library_version().to_string(),
            cryptoki_version: lib.cryptoki_version().to_string(),
            label: info.label().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
        };
        let (supervisor, requests) = mpsc::channel::<()>();
        let inner = Arc::new(Inner {
            module: module.to_path_buf(),
            selector: selector.clone(),
            pin,
            size,
            options,
            description,
            epoch: Instant::now(),
            generation: AtomicU64::new(1),
            healthy: AtomicBool::new(true),
            shutdown: AtomicBool::new(false),
            pin_refusals: AtomicU64::new(0),
            recovery_attempts: AtomicU64::new(0),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            state: Mutex::new(State {
                health: Health::Healthy,
                outages: 0,
                recoveries: 0,
                last_outage: None,
                reinitialisations: 0,
                workers: Vec::new(),
                slots: Vec::new(),
                stale: Vec::new(),
                recovering: false,
            }),
            keys: Mutex::new(Vec::new()),
            observer: Mutex::new(None),
            supervisor: Mutex::new(supervisor),
        });
        let weak = Arc::downgrade(&inner);
        let _detached = spawn("hsm-supervisor".to_string(), move || {
            // Ends when the pool is gone (its sender with it).
            while requests.recv().is_ok() {
                match weak.upgrade() {
                    Some(inner) => recover(inner),
                    None => return,
                }
            }
        })?;
        let period = (inner.options.call_timeout / 4).clamp(Duration::from_millis(1), TICK);
        let weak = Arc::downgrade(&inner);
        let watchdog = spawn("hsm-watchdog".to_string(), move || watchdog(weak, period))?;
        let hsm = Hsm {
            inner,
            watchdog: Some(watchdog),
        };
        let (workers, slots) = start_workers(&hsm.inner, 1, epoch, sessions)?;
        let mut st = lock(&hsm.inner.state);
        st.workers = workers;
        st.slots = slots;
        drop(st);
        Ok(hsm)
    }

    /// Initialises a free token slot with `label` and sets its user PIN (for SoftHSM tokens in
    /// development, tests and rehearsals; production HSMs are initialised with their own tools).
    pub fn init_token(
        module: &Path,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<(), Error> {
        let (ctx, _) = context(module)?;
        if find_slot(&ctx, &TokenSelector::Label(label.to_string())).is_ok() {
            return Err(Error::Token {
                selector: TokenSelector::Label(label.to_string()).to_string(),
                problem: "a token with this label exists already".to_string(),
            });
        }
        let mut free = None;
        for slot in ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
            let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| Error::Token {
            selector: TokenSelector::Label(label.to_string()).to_string(),
            problem: "no free (uninitialised) token slot".to_string(),
        })?;
        ctx.init_token(slot, &so_pin.to_auth_pin(), label)
            .map_err(ck("C_InitToken"))?;
        // The slot id may change once the token is initialised: find it again by label.
        let (slot, _) = find_slot(&ctx, &TokenSelector::Label(label.to_string()))?;
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so_pin.to_auth_pin()))
            .map_err(ck("C_Login"))?;
        session
            .init_pin(&user_pin.to_auth_pin())
            .map_err(ck("C_InitPIN"))?;
        session.logout().map_err(ck("C_Logout"))?;
        Ok(())
    }

    /// The library and token the sessions are on.
    pub fn description(&self) -> &TokenDescription {
        &self.inner.description
    }

    /// The number of sessions (and worker threads) in the pool.
    pub fn pool_size(&self) -> usize {
        self.inner.size
    }

    /// The deadlines in use.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Calls `f(true)` when the HSM becomes healthy again and `f(false)` when it becomes
    /// unavailable (for metrics). Replaces an earlier observer.
    pub fn on_health_change(&self, f: impl Fn(bool) + Send + Sync + 'static) {
        *lock(&self.inner.observer) = Some(Box::new(f));
    }

    /// Health, outages and recoveries so far.
    pub fn status(&self) -> Status {
        let st = lock(&self.inner.state);
        let (state, error, unavailable_ms) = match &st.health {
            Health::Healthy => ("healthy", None, None),
            Health::Unavailable { since, error } => (
                "unavailable",
                Some(error.clone()),
                Some(u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)),
            ),
            Health::Failed { error } => ("failed", Some(error.clone()), None),
        };
        Status {
            state,
            healthy: matches!(st.health, Health::Healthy),
            error,
            unavailable_ms,
            outages: st.outages,
            recoveries: st.recoveries,
            last_outage_ms: st
                .last_outage
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reinitialisations: st.reinitialisations,
            pin_refusals: self.inner.pin_refusals.load(Ordering::SeqCst),
            recovery_attempts: self.inner.recovery_attempts.load(Ordering::SeqCst),
            calls_in_flight_abandoned: st.stale.iter().filter(|(h, _)| !h.is_finished()).count(),
        }
    }

    /// Fails at once with [`Error::Down`] (or [`Error::Failed`]) while the HSM is unavailable.
    pub fn available(&self) -> Result<(), Error> {
        if self.inner.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self.inner.down_error())
        }
    }

    /// Checks the HSM answers: a session is still logged in and every key found so far is still
    /// on the token under its handle. A fault marks the HSM unavailable, like any call's.
    pub fn probe(&self) -> Result<(), Error> {
        let keys = lock(&self.inner.keys).len();
        self.call(
            "C_GetSessionInfo",
            self.inner.options.call_timeout,
            probe_job(keys),
        )
    }

    /// [`Hsm::probe`] for async callers (`/v1/health`). A caller that stops waiting (a health
    /// check with a bound of its own) leaves the probe to the pool, which still holds it to the
    /// call deadline.
    pub async fn probe_async(&self) -> Result<(), Error> {
        let keys = lock(&self.inner.keys).len();
        self.call_async(
            "C_GetSessionInfo",
            self.inner.options.call_timeout,
            probe_job(keys),
        )
        .await
    }

    /// Runs `f` on a worker's session, with `timeout` from the moment a worker starts it (see the
    /// module doc). Fails at once while the HSM is unavailable. Blocks the calling thread.
    fn call<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let pending = self.submit(op, timeout, f, move |result| {
            let _ = tx.send(result);
        })?;
        loop {
            match rx.recv_timeout(self.inner.next_wait(&pending, op, timeout)?) {
                Ok(result) => return self.inner.finish(result),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.inner.down_error()),
            }
        }
    }

    /// [`Hsm::call`] for async callers: the task waits for the worker's reply without holding a
    /// thread, under the same deadline. The session stays with its worker thread; nothing is held
    /// across the await but the reply channel.
    async fn call_async<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let pending = self.submit(op, timeout, f, move |result| {
            let _ = tx.send(result);
        })?;
        loop {
            let wait = self.inner.next_wait(&pending, op, timeout)?;
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(result)) => return self.inner.finish(result),
                Ok(Err(_closed)) => return Err(self.inner.down_error()),
                Err(_elapsed) => {}
            }
        }
    }

    /// Queues `f` for a worker, with `timeout` as its deadline in the queue and once started;
    /// the worker hands its result to `reply`, unless the generation has moved on meanwhile (a
    /// late result of an abandoned generation is discarded, never used). A job whose deadline
    /// passes in the queue gets [`Error::Busy`] instead.
    fn submit<R: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&Ops<'_>) -> Result<R, Error> + Send + 'static,
        reply: impl FnOnce(Result<R, Error>) + Send + 'static,
    ) -> Result<Pending, Error> {
        let inner = &self.inner;
        let start_by = inner.now_ms().saturating_add(duration_ms(timeout));
        let job = Job {
            op,
            timeout,
            start_by,
            run: Box::new(move |ops: Result<&Ops<'_>, Error>| match ops {
                Ok(ops) => {
                    let result = f(ops);
                    if ops.inner.generation.load(Ordering::SeqCst) == ops.generation {
                        reply(result);
                    }
                }
                Err(e) => reply(Err(e)),
            }),
        };
        let (generation, wake) = {
            let mut queue = lock(&inner.queue);
            if !inner.healthy.load(Ordering::SeqCst) {
                drop(queue);
                return Err(inner.down_error());
            }
            queue.jobs.push_back(job);
            (inner.generation.load(Ordering::SeqCst), queue.waiting > 0)
        };
        // Waking costs a system call; a worker that is not waiting finds the job itself.
        if wake {
            inner.work.notify_one();
        }
        Ok(Pending {
            generation,
            start_by,
        })
    }

    /// Records a key so that recovery finds it again; returns its index.
    fn register(&self, key: &KeyHandle) -> usize {
        let mut keys = lock(&self.inner.keys);
        let same = |r: &Registered| {
            r.uri.object.as_deref() == Some(key.label.as_str())
                && r.uri.id.as_deref() == Some(key.id.as_slice())
        };
        if let Some(i) = keys.iter().position(same) {
            if let Some(r) = keys.get_mut(i) {
                if key.generation >= r.generation {
                    r.handle = key.private;
                    r.generation = key.generation;
                }
            }
            return i;
        }
        keys.push(Registered {
            uri: key.uri(&self.inner.description.label),
            spki: key.spki.clone(),
            handle: key.private,
            generation: key.generation,
        });
        keys.len() - 1
    }

    /// `n` bytes from the token's random number generator (C_GenerateRandom).
    pub fn random(&self, n: usize) -> Result<Vec<u8>, Error> {
        self.call(
            "C_GenerateRandom",
            self.inner.options.call_timeout,
            move |o| o.random(n),
        )
    }

    /// Whether any object (of any class) on the token has this label.
    pub fn label_in_use(&self, label: &str) -> Result<bool, Error> {
        let label = label.to_string();
        self.call("C_FindObjects", self.inner.options.call_timeout, move |o| {
            o.label_in_use(&label)
        })
    }

    /// Finds the one private key a URI names, and its public key, and refuses a key a CA must
    /// not sign with ([`KeyAttributes::use_violations`]). The key is remembered: after a
    /// reconnection it is found again, and its attributes and public key checked, before the HSM
    /// is healthy.
    pub fn find_key(&self, uri: &KeyUri) -> Result<KeyHandle, Error> {
        let uri = uri.clone();
        let mut key = self.call("C_FindObjects", self.inner.options.call_timeout, move |o| {
            o.find_key(&uri)
        })?;
        key.registered = Some(self.register(&key));
        Ok(key)
    }

    /// Generates a key pair in the token and checks it (see the module doc). Refuses if any
    /// object already has `label`. Has [`Options::keygen_timeout`] as its deadline.
    pub fn generate_key(&self, label: &str, key_type: KeyType) -> Result<GeneratedKey, Error> {
        let label = label.to_string();
        let mut generated = self.call(
            "C_GenerateKeyPair",
            self.inner.options.keygen_timeout,
            move |o| o.generate_key(&label, key_type),
        )?;
        generated.key.registered = Some(self.register(&generated.key));
        Ok(generated)
    }

    /// Signs `message` with `key` using `alg`, and verifies the signature in software against
    /// the key's public key before returning it: a signature that does not verify is an error.
    pub fn sign(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let signature = self.call(
            "C_Sign",
            self.inner.options.call_timeout,
            sign_job(key, alg, message)?,
        )?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }

    /// [`Hsm::sign`] for async callers (the signing service): the task waits for the session's
    /// worker without tying up a thread of its own, under the same deadline, and hashing and
    /// verification run on the caller's thread. Same checks, same errors.
    pub async fn sign_async(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let job = sign_job(key, alg, message)?;
        let signature = self
            .call_async("C_Sign", self.inner.options.call_timeout, job)
            .await?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }
}

impl Drop for Hsm {
    /// Stops the workers, the watchdog and the recovery thread; waits (up to the call deadline)
    /// for the workers to close their sessions.
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.shutdown.store(true, Ordering::SeqCst);
        if let Some(watchdog) = self.watchdog.take() {
            // It never waits on the HSM: it ends within one scan of being woken.
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        inner.healthy.store(false, Ordering::SeqCst);
        let _ = inner.generation.fetch_add(1, Ordering::SeqCst);
        lock(&inner.queue).jobs.clear();
        inner.work.notify_all();
        let workers = std::mem::take(&mut lock(&inner.state).workers);
        let deadline = Instant::now() + inner.options.call_timeout;
        while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The worker's half of [`Hsm::probe`]: the session is logged in and the first `keys` registered
/// keys are still on the token under their handles.
fn probe_job(keys: usize) -> impl FnOnce(&Ops<'_>) -> Result<(), Error> + Send + 'static {
    move |o: &Ops<'_>| {
        let info = o
            .session
            .get_session_info()
            .map_err(ck("C_GetSessionInfo"))?;
        if !matches!(
            info.session_state(),
            SessionState::RwUser | SessionState::RoUser
        ) {
            return Err(Error::Unavailable {
                op: "C_GetSessionInfo".to_string(),
                rv: format!("session state {:?}: not logged in", info.session_state()),
            });
        }
        for i in 0..keys {
            let handle = o.registered_handle(i)?;
            let _ = o
                .session
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(ck("C_GetAttributeValue"))?;
        }
        Ok(())
    }
}

/// A session worker's half of a signature of `message` with `key`: the algorithm checked and the
/// message hashed here, on the caller's thread, so that only the digest travels to the worker
/// and to the token, however large the message (a CRL of a million entries).
fn sign_job(
    key: &KeyHandle,
    alg: SignatureAlgorithm,
    message: &[u8],
) -> Result<impl FnOnce(&Ops<'_>) -> Result<Vec<u8>, Error> + Send + 'static, Error> {
    check_algorithm(key, alg)?;
    let (key, input) = (key.clone(), token_input(alg, message));
    Ok(move |o: &Ops<'_>| o.sign_input(&key, alg, &input))
}

/// The key type must allow the algorithm (BR 7.1.3.2).
fn check_algorithm(key: &KeyHandle, alg: SignatureAlgorithm) -> Result<(), Error> {
    if key.key_type.allows(alg) {
        Ok(())
    } else {
        Err(Error::Algorithm {
            label: key.label.clone(),
            key_type: key.key_type,
            alg,
        })
    }
}

/// DER prefixes of the DigestInfo for SHA-256, SHA-384 and SHA-512 (RFC 8017 9.2, note 1).
const DIGEST_INFO_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA384: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DIGEST_INFO_SHA512: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// What the token signs for `message` under `alg`: for RSA the DER DigestInfo of the message's
/// hash (EMSA-PKCS1-v1_5 step 2, RFC 8017 9.2), for ECDSA the bare hash (FIPS 186-4 6.4).
/// Hashing in software keeps large messages off the token and out of its memory.
fn token_input(alg: SignatureAlgorithm, message: &[u8]) -> Vec<u8> {
    use sha2::{Sha256, Sha384, Sha512};
    match alg {
        SignatureAlgorithm::RsaPkcs1Sha256 => {
            [&DIGEST_INFO_SHA256[..], &Sha256::digest(message)].concat()
        }
        SignatureAlgorithm::RsaPkcs1Sha384 => {
            [&DIGEST_INFO_SHA384[..], &Sha384::digest(message)].concat()
        }
        SignatureAlgorithm::RsaPkcs1Sha512 => {
            [&DIGEST_INFO_SHA512[..], &Sha512::digest(message)].concat()
        }
        SignatureAlgorithm::EcdsaSha256 => Sha256::digest(message).to_vec(),
        SignatureAlgorithm::EcdsaSha384 => Sha384::digest(message).to_vec(),
    }
}

/// Verifies `signature` over `message` with the key's public key.
fn verify_signature(
    key: &KeyHandle,
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    key.verifier
        .verify(&alg.algorithm_identifier(), message, signature)
        .map_err(|e| Error::BadSignature {
            label: key.label.clone(),
            reason: e.to_string(),
        })
}

/// The mechanism and templates for a signing key pair (PKCS#11 v2.40 sections 4.8, 4.9): the
/// public key verify-only, the private key private, sensitive, not extractable and sign-only,
/// as token objects (`token`) or session objects. Every capability a CA key must not have is
/// set false explicitly: SoftHSM (among others) defaults CKA_DECRYPT and CKA_UNWRAP to true.
fn key_pair_templates(
    label: &str,
    id: &[u8],
    key_type: KeyType,
    token: bool,
) -> Result<(Mechanism<'static>, Vec<Attribute>, Vec<Attribute>), Error> {
    let common = |private: bool| {
        vec![
            Attribute::Token(token),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ]
    };
    let mut public = common(false);
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::SignRecover(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let mechanism = match (key_type.rsa_bits(), key_type.curve()) {
        (Some(bits), _) => {
            public.extend([
                Attribute::ModulusBits((bits as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
        (None, Some(curve)) => {
            let params = curve.to_der().map_err(|e| Error::PublicKey {
                label: label.to_string(),
                reason: e.to_string(),
            })?;
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        }
        (None, None) => unreachable!("every key type is RSA or EC"),
    };
    Ok((mechanism, public, private))
}

impl Ops<'_> {
    /// `n` bytes from the token's random number generator (C_GenerateRandom).
    fn random(&self, n: usize) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; n];
        self.session
            .generate_random_slice(&mut buf)
            .map_err(ck("C_GenerateRandom"))?;
        Ok(buf)
    }

    /// Whether any object (of any class) on the token has this label.
    fn label_in_use(&self, label: &str) -> Result<bool, Error> {
        let found = self
            .session
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(ck("C_FindObjects"))?;
        Ok(!found.is_empty())
    }

    /// Finds the one private key a URI names, and its public key. Refuses the key, naming every
    /// attribute that is wrong and the key's own URI, if it breaks a rule of
    /// [`KeyAttributes::use_violations`].
    fn find_key(&self, uri: &KeyUri) -> Result<KeyHandle, Error> {
        let key_err = |problem: String| Error::Key {
            uri: uri.to_string(),
            problem,
        };
        if let Some(t) = &uri.token {
            if *t != self.description.label {
                return Err(key_err(format!(
                    "names token {t:?} but the open token is {:?}",
                    self.description.label
                )));
            }
        }
        if let Some(s) = &uri.serial {
            if *s != self.description.serial {
                return Err(key_err(format!(
                    "names token serial {s:?}, not the open token's"
                )));
            }
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(ck("C_FindObjects"))?;
        let private = match found.as_slice() {
            [one] => *one,
            [] => return Err(key_err("no private key matches".to_string())),
            many => {
                return Err(key_err(format!(
                    "{} private keys match; the URI is ambiguous (add id=)",
                    many.len()
                )));
            }
        };
        let attrs = self
            .session
            .get_attributes(
                private,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                ],
            )
            .map_err(ck("C_GetAttributeValue"))?;
        let mut label = String::new();
        let mut id = Vec::new();
        // Unknown until read: treated as RSA, the stricter case.
        let mut rsa = true;
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                Attribute::KeyType(t) => rsa = t != CkKeyType::EC,
                _ => {}
            }
        }
        // A key found by URI (not generated here) must still be one a CA may sign with.
        let violations = self.read_key_attributes(private)?.use_violations(rsa);
        if !violations.is_empty() {
            let found = KeyUri {
                token: Some(self.description.label.clone()),
                object: Some(label),
                id: Some(id),
                serial: None,
            };
            return Err(Error::Key {
                uri: found.to_string(),
                problem: format!(
                    "{} (PKCS#11 v2.40 4.9: a CA key is sensitive, not extractable, and only signs)",
                    violations.join("; ")
                ),
            });
        }
        let public = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.clone()),
            ])
            .map_err(ck("C_FindObjects"))?;
        let public = match public.as_slice() {
            [one] => *one,
            [] => {
                return Err(key_err(
                    "no public key object with the private key's CKA_ID".to_string(),
                ));
            }
            _ => {
                return Err(key_err(
                    "several public key objects share the private key's CKA_ID".to_string(),
                ));
            }
        };
        let (key_type, spki) = self.read_public_key(public, &label)?;
        let verifier = verifier(&spki, &label)?;
        Ok(KeyHandle {
            label,
            id,
            key_type,
            spki,
            private,
            generation: self.generation,
            registered: None,
            verifier,
        })
    }

    /// Generates a key pair in the token and checks it (see the module doc). Refuses if any
    /// object already has `label`.
    fn generate_key(&self, label: &str, key_type: KeyType) -> Result<GeneratedKey, Error> {
        if self.label_in_use(label)? {
            return Err(Error::LabelExists(label.to_string()));
        }
        // CKA_ID: 16 bytes from the token's RNG.
        let id = self.random(16)?;
        let (mechanism, public_template, private_template) =
            key_pair_templates(label, &id, key_type, true)?;
        let (public, private) = self
            .session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(ck("C_GenerateKeyPair"))?;
        self.check_generated(label, key_type, id, public, private)
            .inspect_err(|_| {
                // A key pair that failed its checks is not left on the token, where a later
                // script could name it by URI.
                let destroyed = self
                    .session
                    .destroy_object(private)
                    .and_then(|()| self.session.destroy_object(public));
                if let Err(e) = destroyed {
                    eprintln!(
                        "strongroom: the key pair {label:?} failed its checks and could not be \
                         destroyed ({e}); remove it from the token before using the label again"
                    );
                }
            })
    }

    /// The checks of a key pair just generated (see the module doc): its private key's
    /// attributes as read back, its public key's type and quality, and a self-test signature.
    fn check_generated(
        &self,
        label: &str,
        key_type: KeyType,
        id: Vec<u8>,
        public: ObjectHandle,
        private: ObjectHandle,
    ) -> Result<GeneratedKey, Error> {
        let attributes = self.read_key_attributes(private)?;
        attributes.check().map_err(|rule| Error::KeyAttributes {
            label: label.to_string(),
            rule,
        })?;
        let (read_type, spki) = self.read_public_key(public, label)?;
        if read_type != key_type {
            return Err(Error::PublicKey {
                label: label.to_string(),
                reason: format!("asked for {key_type}, the token made {read_type}"),
            });
        }
        crate::keycheck::check_public_key(&spki, &[key_type]).map_err(|e| Error::WeakKey {
            label: label.to_string(),
            reason: e.to_string(),
        })?;
        let key = KeyHandle {
            label: label.to_string(),
            id,
            key_type,
            verifier: verifier(&spki, label)?,
            spki,
            private,
            generation: self.generation,
            registered: None,
        };
        // Self-test: sign a domain-separated challenge; `sign` verifies it in software.
        let mut challenge = b"strongroom key self-test v1\0".to_vec();
        challenge.extend_from_slice(label.as_bytes());
        challenge.push(0);
        challenge.extend_from_slice(&self.random(32)?);
        let _ = self.sign(&key, key_type.default_signature_algorithm(), &challenge)?;
        Ok(GeneratedKey {
            key,
            attributes,
            self_test_challenge_sha256: hex::encode(sha2::Sha256::digest(&challenge)),
        })
    }

    /// Reads a private key's security attributes.
    fn read_key_attributes(&self, private: ObjectHandle) -> Result<KeyAttributes, Error> {
        let types = [
            AttributeType::Token,
            AttributeType::Private,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Sign,
            AttributeType::SignRecover,
            AttributeType::Decrypt,
            AttributeType::Unwrap,
            AttributeType::Derive,
        ];
        let attrs = self
            .session
            .get_attributes(private, &types)
            .map_err(ck("C_GetAttributeValue"))?;
        let mut a = KeyAttributes {
            token: false,
            private: false,
            sensitive: false,
            always_sensitive: false,
            extractable: true,
            never_extractable: false,
            local: false,
            sign: false,
            sign_recover: true,
            decrypt: true,
            unwrap: true,
            derive: true,
        };
        for attr in attrs {
            match attr {
                Attribute::Token(v) => a.token = v,
                Attribute::Private(v) => a.private = v,
                Attribute::Sensitive(v) => a.sensitive = v,
                Attribute::AlwaysSensitive(v) => a.always_sensitive = v,
                Attribute::Extractable(v) => a.extractable = v,
                Attribute::NeverExtractable(v) => a.never_extractable = v,
                Attribute::Local(v) => a.local = v,
                Attribute::Sign(v) => a.sign = v,
                Attribute::SignRecover(v) => a.sign_recover = v,
                Attribute::Decrypt(v) => a.decrypt = v,
                Attribute::Unwrap(v) => a.unwrap = v,
                Attribute::Derive(v) => a.derive = v,
                _ => {}
            }
        }
        Ok(a)
    }

    /// Reads a public key object into a SubjectPublicKeyInfo (RFC 5280 4.1.2.7): RSA from
    /// CKA_MODULUS/CKA_PUBLIC_EXPONENT (RFC 8017 A.1.1), EC from CKA_EC_PARAMS/CKA_EC_POINT
    /// (RFC 5480). CKA_EC_POINT is accepted DER-wrapped in an OCTET STRING (as PKCS#11 specifies
    /// and SoftHSM returns) or raw (as some tokens return).
    fn read_public_key(
        &self,
        public: ObjectHandle,
        label: &str,
    ) -> Result<(KeyType, SubjectPublicKeyInfoOwned), Error> {
        let bad = |reason: String| Error::PublicKey {
            label: label.to_string(),
            reason,
        };
        let attrs = self
            .session
            .get_attributes(public, &[AttributeType::KeyType])
            .map_err(ck("C_GetAttributeValue"))?;
        let ck_type = attrs.into_iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(t),
            _ => None,
        });
        match ck_type {
            Some(t) if t == CkKeyType::RSA => {
                let attrs = self
                    .session
                    .get_attributes(
                        public,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                    .map_err(ck("C_GetAttributeValue"))?;
                let (mut n, mut e) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::Modulus(v) => n = v,
                        Attribute::PublicExponent(v) => e = v,
                        _ => {}
                    }
                }
                let key = RsaPublicKey {
                    modulus: der::asn1::UintRef::new(&n).map_err(|e| bad(e.to_string()))?,
                    public_exponent: der::asn1::UintRef::new(&e).map_err(|e| bad(e.to_string()))?,
                };
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                let key_type = match bits {
                    2048 => KeyType::Rsa2048,
                    3072 => KeyType::Rsa3072,
                    4096 => KeyType::Rsa4096,
                    other => return Err(bad(format!("unsupported RSA modulus size {other} bits"))),
                };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
                        parameters: Some(der::asn1::Null.into()),
                    },
                    subject_public_key: BitString::from_bytes(
                        &key.to_der().map_err(|e| bad(e.to_string()))?,
                    )
                    .map_err(|e| bad(e.to_string()))?,
                };
                Ok((key_type, spki))
            }
            Some(t) if t == CkKeyType::EC => {
                let attrs = self
                    .session
                    .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
                    .map_err(ck("C_GetAttributeValue"))?;
                let (mut params, mut point) = (Vec::new(), Vec::new());
                for a in attrs {
                    match a {
                        Attribute::EcParams(v) => params = v,
                        Attribute::EcPoint(v) => point = v,
                        _ => {}
                    }
                }
                let curve = const_oid::ObjectIdentifier::from_der(&params)
                    .map_err(|e| bad(format!("CKA_EC_PARAMS is not a named curve: {e}")))?;
                let key_type = KeyType::ALL
                    .into_iter()
                    .find(|k| k.curve() == Some(curve))
                    .ok_or_else(|| bad(format!("unsupported curve {curve}")))?;
                let point = match OctetString::from_der(&point) {
                    Ok(inner) if inner.as_bytes().first() == Some(&0x04) => {
                        inner.as_bytes().to_vec()
                    }
                    _ => point,
                };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                        parameters: Some(curve.into()),
                    },
                    subject_public_key: BitString::from_bytes(&point)
                        .map_err(|e| bad(e.to_string()))?,
                };
                Ok((key_type, spki))
            }
            other => Err(bad(format!("unsupported key type {other:?}"))),
        }
    }

    /// Signs `message` with `key` using `alg`, and verifies the signature in software against
    /// the key's public key before returning it.
    fn sign(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let signature = self.sign_only(key, alg, message)?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }

    /// Signs `message` with `key` using `alg`: [`token_input`] hashes it here, and the token
    /// signs only the digest.
    fn sign_only(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        check_algorithm(key, alg)?;
        self.sign_input(key, alg, &token_input(alg, message))
    }

    /// Signs what [`token_input`] made of a message. RSA: CKM_RSA_PKCS over the DigestInfo,
    /// which is RSASSA-PKCS1-v1_5 (RFC 8017 8.2; PKCS#11 v2.40 mechanisms 2.1.6). ECDSA:
    /// CKM_ECDSA over the digest, and the r||s the token returns becomes the DER
    /// `Ecdsa-Sig-Value` of RFC 5480 / RFC 3279 2.2.3.
    fn sign_input(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let bad = |reason: String| Error::BadSignature {
            label: key.label.clone(),
            reason,
        };
        let signature = match alg {
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPkcs1Sha512 => {
                self.raw_sign(&Mechanism::RsaPkcs, key, input)?
            }
            SignatureAlgorithm::EcdsaSha256 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, input)?;
                p256::ecdsa::Signature::from_slice(&rs)
                    .map_err(|e| bad(format!("CKM_ECDSA output is not r||s for P-256: {e}")))?
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
            SignatureAlgorithm::EcdsaSha384 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, input)?;
                p384::ecdsa::Signature::from_slice(&rs)
                    .map_err(|e| bad(format!("CKM_ECDSA output is not r||s for P-384: {e}")))?
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
        };
        Ok(signature)
    }

    fn raw_sign(
        &self,
        mechanism: &Mechanism<'_>,
        key: &KeyHandle,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.session
            .sign(mechanism, self.handle(key)?, data)
            .map_err(ck("C_Sign"))
    }

    /// The key's object handle in this worker's generation: the one it was found with, or the
    /// one recovery found again. A handle from before a reconnection is never used.
    fn handle(&self, key: &KeyHandle) -> Result<ObjectHandle, Error> {
        if key.generation == self.generation {
            return Ok(key.private);
        }
        match key.registered {
            Some(i) => self.registered_handle(i),
            None => Err(self.stale(&key.label)),
        }
    }

    /// The current handle of the `i`th registered key.
    fn registered_handle(&self, i: usize) -> Result<ObjectHandle, Error> {
        let keys = lock(&self.inner.keys);
        match keys.get(i) {
            Some(r) if r.generation == self.generation => Ok(r.handle),
            Some(r) => Err(self.stale(r.uri.object.as_deref().unwrap_or_default())),
            None => Err(self.stale("?")),
        }
    }

    /// A handle from an earlier generation: treated as unavailable, so that recovery runs and
    /// finds the key again.
    fn stale(&self, label: &str) -> Error {
        Error::Unavailable {
            op: "C_Sign".to_string(),
            rv: format!("the handle of key {label:?} is from before the HSM reconnected"),
        }
    }
}

/// Parses a key's public key once for verifying its signatures (a key on the token signs many
/// times; AWS-LC's parsed key is kept with it).
fn verifier(
    spki: &SubjectPublicKeyInfoOwned,
    label: &str,
) -> Result<std::sync::Arc<crate::verify::VerifyingKey>, Error> {
    crate::verify::VerifyingKey::from_spki(spki)
        .map(std::sync::Arc::new)
        .map_err(|e| Error::PublicKey {
            label: label.to_string(),
            reason: e.to_string(),
        })
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    public_exponent: der::asn1::UintRef<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }
    /// (RFC 8017 9.2), encoded with `der` to check the fixed prefixes.
    #[derive(der::Sequence)]
    struct DigestInfo {
        algorithm: AlgorithmIdentifierOwned,
        digest: OctetString,
    }

    /// A key as strongroom generates it: passes both checks.
    fn generated() -> KeyAttributes {
        KeyAttributes {
            token: true,
            private: true,
            sensitive: true,
            always_sensitive: true,
            extractable: false,
            never_extractable: true,
            local: true,
            sign: true,
            sign_recover: false,
            decrypt: false,
            unwrap: false,
            derive: false,
        }
    }

    #[test]
    fn use_violations_name_each_wrong_attribute() {
        assert_eq!(generated().check(), Ok(()));
        assert!(generated().use_violations(true).is_empty());
        // A key restored from a wrapped backup: not local, not always sensitive, not never
        // extractable. Usable (not something strongroom would have generated).
        let restored = KeyAttributes {
            always_sensitive: false,
            never_extractable: false,
            local: false,
            ..generated()
        };
        assert!(restored.use_violations(true).is_empty());
        assert!(restored.check().is_err());
        type Spoil = fn(&mut KeyAttributes);
        let cases: [(Spoil, &str); 7] = [
            (|a| a.sensitive = false, "CKA_SENSITIVE must be true"),
            (|a| a.extractable = true, "CKA_EXTRACTABLE must be false"),
            (|a| a.sign = false, "CKA_SIGN must be true"),
            (|a| a.sign_recover = true, "CKA_SIGN_RECOVER must be false"),
            (|a| a.decrypt = true, "CKA_DECRYPT must be false"),
            (|a| a.unwrap = true, "CKA_UNWRAP must be false"),
            (|a| a.derive = true, "CKA_DERIVE must be false"),
        ];
        for (spoil, rule) in cases {
            let mut a = generated();
            spoil(&mut a);
            assert_eq!(a.use_violations(true), vec![rule]);
            assert_eq!(a.check(), Err(rule));
        }
        // CKA_SIGN_RECOVER grants an EC key nothing (no EC mechanism signs with recovery).
        let ec = KeyAttributes {
            sign_recover: true,
            ..generated()
        };
        assert!(ec.use_violations(false).is_empty());
    }

    #[test]
    fn digest_info_prefixes_are_the_der_of_rfc_8017() {
        use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
        for (oid, alg, len) in [
            (ID_SHA_256, SignatureAlgorithm::RsaPkcs1Sha256, 32),
            (ID_SHA_384, SignatureAlgorithm::RsaPkcs1Sha384, 48),
            (ID_SHA_512, SignatureAlgorithm::RsaPkcs1Sha512, 64),
        ] {
            let input = token_input(alg, b"message");
            let digest = input[input.len() - len..].to_vec();
            let expected = DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid,
                    parameters: Some(der::asn1::Null.into()),
                },
                digest: OctetString::new(digest).unwrap(),
            }
            .to_der()
            .unwrap();
            assert_eq!(input, expected, "{alg}");
        }
        assert_eq!(
            token_input(SignatureAlgorithm::EcdsaSha384, b"message"),
            sha2::Sha384::digest(b"message").to_vec()
        );
    }

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

    /// Runs this module's test `name` in a child process of the test binary, with its own
    /// SoftHSM store: SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process has
    /// one library context. Returns true in the child (run the body), false in the parent once
    /// the child passed. Without SoftHSM it prints `SKIPPED` and returns false, or fails under
    /// `CI=true`.
    fn in_own_softhsm(name: &str) -> bool {
        const CHILD: &str = "STRONGROOM_HSM_UNIT_CHILD";
        if std::env::var(CHILD).as_deref() == Ok(name) {
            return true;
        }
        if crate::demo::softhsm_module().is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SoftHSM is not installed (softhsm-setup/install)"
            );
            println!("SKIPPED: SoftHSM is not installed (softhsm-setup/install)");
            return false;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("hsm::tests::{name}"), "--nocapture"])
            .env(CHILD, name)
            .env("SOFTHSM2_CONF", &conf)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: the child test did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        assert!(out.status.success(), "{name} in its child process: {text}");
        assert!(text.contains("1 passed"), "{name} did not run: {text}");
        false
    }

    /// A pool of one session on a new token `label`, no recovery, call deadline 2 s.
    fn one_session(label: &str) -> Hsm {
        let module = crate::demo::softhsm_module().unwrap();
        let pin = |p: &str| Pin::new(zeroize::Zeroizing::new(p.to_string())).unwrap();
        let (so, user) = (pin("so-8d61e0"), pin("user-4b2c97"));
        Hsm::init_token(&module, label, &so, &user).unwrap();
        let options = Options {
            call_timeout: Duration::from_secs(2),
            keygen_timeout: Duration::from_secs(120),
            recover: false,
        };
        let selector = TokenSelector::Label(label.to_string());
        Hsm::open_with(&module, &selector, &user, 1, options).unwrap()
    }

    /// RSA-4096 key generation: a call that takes long (about 1 s on SoftHSM, never under
    /// 100 ms), without hanging anything.
    fn slow_keygen(label: &'static str) -> impl FnOnce(&Ops<'_>) -> Result<bool, Error> + Send {
        move |o: &Ops<'_>| o.generate_key(label, KeyType::Rsa4096).map(|_| true)
    }

    #[test]
    fn a_call_past_its_deadline_marks_the_hsm_unavailable_with_nobody_waiting() {
        if !in_own_softhsm("a_call_past_its_deadline_marks_the_hsm_unavailable_with_nobody_waiting")
        {
            return;
        }
        let hsm = one_session("deadlines");
        hsm.random(8).unwrap();
        let deadline = Duration::from_millis(50);
        let submitted = Instant::now();
        // Queued with a 50 ms deadline, and nobody waits for the reply.
        let _pending = hsm
            .submit("C_GenerateKeyPair", deadline, slow_keygen("slow"), |_| {})
            .unwrap();
        let status = loop {
            let status = hsm.status();
            if status.state != "healthy" {
                break status;
            }
            assert!(
                submitted.elapsed() < Duration::from_secs(5),
                "still healthy 5 s after a 50 ms deadline"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let seen = submitted.elapsed();
        println!(
            "outage declared {} ms after a 50 ms call was queued",
            seen.as_millis()
        );
        assert_eq!(status.state, "unavailable");
        let error = status.error.unwrap_or_default();
        assert!(
            error.contains("C_GenerateKeyPair did not return within 50 ms"),
            "{error}"
        );
        // The watchdog scans every 20 ms at most; the rest is slack for a loaded machine.
        assert!(seen < deadline + Duration::from_millis(500), "{seen:?}");
        // Refused at once now.
        let t = Instant::now();
        let refused = hsm.random(8).unwrap_err();
        assert!(matches!(refused, Error::Down { .. }), "{refused}");
        assert!(t.elapsed() < Duration::from_millis(100));

        // A caller that does wait for its call gets Error::Timeout once the outage is declared.
        let hsm = one_session("deadlines-waited");
        let t = Instant::now();
        let e = hsm
            .call("C_GenerateKeyPair", deadline, slow_keygen("waited"))
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("did not return within 50 ms"), "{e}");
        assert!(t.elapsed() < deadline + Duration::from_millis(500));
    }

    #[test]
    fn a_queued_call_past_its_deadline_fails_at_once_and_is_never_started() {
        if !in_own_softhsm("a_queued_call_past_its_deadline_fails_at_once_and_is_never_started") {
            return;
        }
        let hsm = one_session("deadlines");
        // The only session is busy with a long call (its own deadline is long).
        let (done_tx, done) = mpsc::channel();
        let _busy = hsm
            .submit(
                "C_GenerateKeyPair",
                Duration::from_secs(120),
                slow_keygen("busy"),
                move |r| {
                    let _ = done_tx.send(r.is_ok());
                },
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let deadline = Duration::from_millis(100);
        let t = Instant::now();
        let queued = hsm.call("C_GenerateRandom", deadline, move |o| {
            r.store(true, Ordering::SeqCst);
            o.random(8)
        });
        let waited = t.elapsed();
        println!(
            "a queued call with a 100 ms deadline failed after {} ms",
            waited.as_millis()
        );
        let e = queued.unwrap_err();
        assert!(matches!(e, Error::Busy { .. }), "{e}");
        assert!(
            e.to_string().contains("C_GenerateRandom waited 100 ms"),
            "{e}"
        );
        assert!(waited >= deadline && waited < deadline + Duration::from_millis(500));
        assert!(
            done.try_recv().is_err(),
            "the long call was still running when the queued one failed"
        );
        // Not an HSM fault: still healthy, and the long call completes.
        assert!(hsm.status().healthy);
        assert_eq!(done.recv_timeout(Duration::from_secs(60)), Ok(true));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!ran.load(Ordering::SeqCst), "the expired call was started");

        // A job whose deadline has passed when an idle worker takes it is not started either.
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let late = hsm.call("C_GenerateRandom", Duration::ZERO, move |o| {
            r.store(true, Ordering::SeqCst);
            o.random(8)
        });
        assert!(matches!(late, Err(Error::Busy { .. })), "{late:?}");
        assert!(!ran.load(Ordering::SeqCst), "the expired call was started");
        // And the pool goes on.
        assert_eq!(hsm.random(8).unwrap().len(), 8);
    }
}
