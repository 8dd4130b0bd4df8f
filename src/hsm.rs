//! HSM access through PKCS#11: the only module that touches `cryptoki`.
//!
//! One PKCS#11 library context per process (`C_Initialize` once, with OS locking). A token is
//! chosen by label or serial number, never by slot id (SoftHSM, for one, renumbers slots when a
//! token is initialised). Keys are named by RFC 7512 PKCS#11 URIs ([`KeyUri`]).
//!
//! What this module promises:
//! - keys it generates are token objects, private, sensitive, non-extractable and sign-only, and
//!   that is read back from the token and checked after generation ([`Hsm::generate_key`]);
//! - every signature it returns has been verified in software against the key's public key
//!   ([`Hsm::sign`]); a signature that does not verify is an error, never returned;
//! - a wrong PIN is reported once and never retried.

mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use serde::Serialize;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

pub use self::uri::KeyUri;
use crate::alg::{KeyType, SignatureAlgorithm};
use crate::secret::Pin;

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
    /// CKA_DECRYPT
    pub decrypt: bool,
    /// CKA_UNWRAP
    pub unwrap: bool,
    /// CKA_DERIVE
    pub derive: bool,
}

impl KeyAttributes {
    /// The attributes every CA key must have, with the name of the first that is wrong.
    pub fn check(&self) -> Result<(), &'static str> {
        let required = [
            (self.token, "CKA_TOKEN must be true"),
            (self.private, "CKA_PRIVATE must be true"),
            (self.sensitive, "CKA_SENSITIVE must be true"),
            (self.always_sensitive, "CKA_ALWAYS_SENSITIVE must be true"),
            (!self.extractable, "CKA_EXTRACTABLE must be false"),
            (self.never_extractable, "CKA_NEVER_EXTRACTABLE must be true"),
            (
                self.local,
                "CKA_LOCAL must be true (generated inside the token)",
            ),
            (self.sign, "CKA_SIGN must be true"),
            (!self.decrypt, "CKA_DECRYPT must be false"),
            (!self.unwrap, "CKA_UNWRAP must be false"),
            (!self.derive, "CKA_DERIVE must be false"),
        ];
        match required.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err(rule),
            None => Ok(()),
        }
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
    /// The public key parsed once, for verifying every signature made with this key.
    verifier: std::sync::Arc<crate::verify::VerifyingKey>,
}

impl KeyHandle {
    /// Verifies, in software, that `signature` is this key's signature over `message` with `alg`.
    fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        self.verifier
            .verify(&alg.algorithm_identifier(), message, signature)
            .map_err(|e| Error::BadSignature {
                label: self.label.clone(),
                reason: e.to_string(),
            })
    }

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
}

fn ck(op: &'static str) -> impl Fn(CkError) -> Error {
    move |e| match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => Error::WrongPin,
        CkError::Pkcs11(RvError::PinLocked, _) => Error::PinLocked,
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

/// The process-wide PKCS#11 context: one module, initialised once.
static CONTEXT: OnceLock<Mutex<Option<(PathBuf, Pkcs11)>>> = OnceLock::new();

fn context(module: &Path) -> Result<Pkcs11, Error> {
    let cell = CONTEXT.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((path, ctx)) = guard.as_ref() {
        return if path == module {
            Ok(ctx.clone())
        } else {
            Err(Error::OtherModule(path.clone()))
        };
    }
    let ctx = Pkcs11::new(module).map_err(|e| Error::Module {
        module: module.to_path_buf(),
        reason: e.to_string(),
    })?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(ck("C_Initialize"))?;
    *guard = Some((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
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

/// A pool of open, logged-in sessions on one token. Every operation borrows one session for
/// its duration (blocking until one is free) and gives it back; a session is never shared
/// between threads at once (a cryptoki `Session` is `Send` but not `Sync`).
pub struct Hsm {
    sessions: Mutex<Vec<Session>>,
    returned: Condvar,
    description: TokenDescription,
}

/// One borrowed session and the token it is on: the operations themselves.
struct Ops<'a> {
    session: &'a Session,
    description: &'a TokenDescription,
}

impl Hsm {
    /// Opens one read-write session on the token chosen by `selector` and logs the user in. A
    /// wrong PIN gives [`Error::WrongPin`] after one attempt.
    pub fn open(module: &Path, selector: &TokenSelector, pin: &Pin) -> Result<Hsm, Error> {
        Hsm::open_pool(module, selector, pin, 1)
    }

    /// Opens `size` sessions (at least one) on the token and logs the user in once (PKCS#11
    /// login state is shared by all of an application's sessions on a token).
    pub fn open_pool(
        module: &Path,
        selector: &TokenSelector,
        pin: &Pin,
        size: usize,
    ) -> Result<Hsm, Error> {
        let ctx = context(module)?;
        let (slot, info) = find_slot(&ctx, selector)?;
        let lib = ctx.get_library_info().map_err(ck("C_GetInfo"))?;
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        match session.login(UserType::User, Some(&pin.to_auth_pin())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(ck("C_Login")(e)),
        }
        let mut sessions = vec![session];
        for _ in 1..size {
            sessions.push(ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?);
        }
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
        Ok(Hsm {
            sessions: Mutex::new(sessions),
            returned: Condvar::new(),
            description,
        })
    }

    /// Initialises a free token slot with `label` and sets its user PIN (for SoftHSM tokens in
    /// development, tests and rehearsals; production HSMs are initialised with their own tools).
    pub fn init_token(
        module: &Path,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<(), Error> {
        let ctx = context(module)?;
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

    /// The library and token this session is on.
    pub fn description(&self) -> &TokenDescription {
        &self.description
    }

    /// The number of sessions in the pool.
    pub fn pool_size(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Runs `f` with a session taken from the pool, waiting for one to be free.
    fn with<R>(&self, f: impl FnOnce(&Ops<'_>) -> Result<R, Error>) -> Result<R, Error> {
        let session = {
            let mut free = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(s) = free.pop() {
                    break s;
                }
                free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Give the session back even if `f` panics.
        struct Return<'a>(&'a Hsm, Option<Session>);
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                if let Some(s) = self.1.take() {
                    self.0
                        .sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(s);
                    self.0.returned.notify_one();
                }
            }
        }
        let guard = Return(self, Some(session));
        let ops = Ops {
            session: guard
                .1
                .as_ref()
                .unwrap_or_else(|| unreachable!("set above")),
            description: &self.description,
        };
        f(&ops)
    }

    /// `n` bytes from the token's random number generator (C_GenerateRandom).
    pub fn random(&self, n: usize) -> Result<Vec<u8>, Error> {
        self.with(|o| o.random(n))
    }

    /// Whether any object (of any class) on the token has this label.
    pub fn label_in_use(&self, label: &str) -> Result<bool, Error> {
        self.with(|o| o.label_in_use(label))
    }

    /// Finds the one private key a URI names, and its public key.
    pub fn find_key(&self, uri: &KeyUri) -> Result<KeyHandle, Error> {
        self.with(|o| o.find_key(uri))
    }

    /// Generates a key pair in the token and checks it (see the module doc). Refuses if any
    /// object already has `label`.
    pub fn generate_key(&self, label: &str, key_type: KeyType) -> Result<GeneratedKey, Error> {
        self.with(|o| o.generate_key(label, key_type))
    }

    /// Signs `message` with `key` using `alg`, and verifies the signature in software against
    /// the key's public key before returning it: a signature that does not verify is an error.
    ///
    /// The session goes back to the pool as soon as C_Sign returns, and the verification runs
    /// after that, so another thread can use the session while this one verifies.
    pub fn sign(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let signature = self.with(|o| o.sign_only(key, alg, message))?;
        key.verify(alg, message, &signature)?;
        Ok(signature)
    }

    /// Signs without the software verification: for measuring the HSM's raw signing rate only.
    pub fn sign_unverified(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.with(|o| o.sign_only(key, alg, message))
    }
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

    /// Finds the one private key a URI names, and its public key.
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
            .get_attributes(private, &[AttributeType::Label, AttributeType::Id])
            .map_err(ck("C_GetAttributeValue"))?;
        let mut label = String::new();
        let mut id = Vec::new();
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                _ => {}
            }
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
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ]
        };
        let mut public_template = common(false);
        public_template.extend([
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ]);
        let mut private_template = common(true);
        // Explicitly false: SoftHSM (among others) defaults CKA_DECRYPT/CKA_UNWRAP to true.
        private_template.extend([
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
                public_template.extend([
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
                public_template.push(Attribute::EcParams(params));
                Mechanism::EccKeyPairGen
            }
            (None, None) => unreachable!("every key type is RSA or EC"),
        };
        let (public, private) = self
            .session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(ck("C_GenerateKeyPair"))?;

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
        key.verify(alg, message, &signature)?;
        Ok(signature)
    }

    /// Signs `message` with `key` using `alg`. ECDSA signatures are hashed in software, signed
    /// with CKM_ECDSA and converted from r||s to the DER `Ecdsa-Sig-Value` of RFC 5480 / RFC 3279
    /// 2.2.3; RSA uses CKM_SHA{256,384,512}_RSA_PKCS (RFC 8017 8.2).
    fn sign_only(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        if !key.key_type.allows(alg) {
            return Err(Error::Algorithm {
                label: key.label.clone(),
                key_type: key.key_type,
                alg,
            });
        }
        let bad = |reason: String| Error::BadSignature {
            label: key.label.clone(),
            reason,
        };
        let signature = match alg {
            SignatureAlgorithm::RsaPkcs1Sha256 => {
                self.raw_sign(&Mechanism::Sha256RsaPkcs, key, message)?
            }
            SignatureAlgorithm::RsaPkcs1Sha384 => {
                self.raw_sign(&Mechanism::Sha384RsaPkcs, key, message)?
            }
            SignatureAlgorithm::RsaPkcs1Sha512 => {
                self.raw_sign(&Mechanism::Sha512RsaPkcs, key, message)?
            }
            SignatureAlgorithm::EcdsaSha256 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, &sha2::Sha256::digest(message))?;
                p256::ecdsa::Signature::from_slice(&rs)
                    .map_err(|e| bad(format!("CKM_ECDSA output is not r||s for P-256: {e}")))?
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
            SignatureAlgorithm::EcdsaSha384 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, &sha2::Sha384::digest(message))?;
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
            .sign(mechanism, key.private, data)
            .map_err(ck("C_Sign"))
    }
}

/// Parses a key's public key once for verifying its signatures.
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
