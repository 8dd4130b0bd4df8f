//! The token's raw signing rate, with a throwaway key of its own (for `strongroom-bench` only).
//!
//! [`measure`] generates a key pair, by default as *session objects* (`CKA_TOKEN` false: PKCS#11
//! v2.40 section 4.4, such an object lives at most as long as the session that made it), or as
//! token objects ([`Storage::Token`]) when the rate must be comparable with a token key's (a
//! SoftHSM token key costs more per signature than a session key: the token checks its object
//! file on every use), signs 1 KiB
//! filler messages with it from several sessions for a while, destroys both objects
//! (`C_DestroyObject`), checks that no object with its label is left, and returns counts and
//! timings only.
//!
//! What it will not do: it takes no key handle, key URI or label, so it cannot be pointed at a
//! CA key; and it returns no signature, so nothing it signs can leave it. The signatures are not
//! verified: nothing uses them, and the figure is what the token signs, not what the signing
//! path costs.

use std::path::Path;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;

use super::context::context;
use super::error::{Error, ck};
use super::keygen::key_pair_templates;
use super::sign::token_input;
use super::token::{TokenSelector, connect};
use crate::alg::KeyType;
use crate::secret::Pin;

/// The label of the throwaway key pair (session objects, gone when [`measure`] returns).
pub const LABEL: &str = "strongroom-bench-raw";

/// Where [`measure`]'s throwaway key pair lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Session objects (`CKA_TOKEN` false): gone with the session even if destroying fails.
    Session,
    /// Token objects (`CKA_TOKEN` true), as an issuer key is: for a rate comparable with the
    /// service's. Refused when an object labelled [`LABEL`] is already on the token; destroyed
    /// afterwards like session objects.
    Token,
}

/// What [`measure`] measured: counts and timings, never a signature.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RawFigures {
    /// Signatures made, over all sessions.
    pub signatures: u64,
    /// Seconds from the first signature to the last session's stop.
    pub seconds: f64,
    /// Seconds the token took to generate the throwaway key pair.
    pub keygen_seconds: f64,
}

impl RawFigures {
    /// Signatures per second.
    pub fn rate(&self) -> f64 {
        self.signatures as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// Opens `sessions` sessions (at least one) on the token, logs in, generates a `key_type` key
/// pair as `storage` says, signs from one thread per session for `duration`, destroys the key
/// pair and checks that no object labelled [`LABEL`] is left on the token.
///
/// Each thread hashes a 1 KiB message (the size of a typical TBSCertificate) and has the token
/// sign the digest, as the signing service does: `CKM_ECDSA` over the hash, or `CKM_RSA_PKCS`
/// over the DigestInfo (RFC 8017 section 9.2).
///
/// # Errors
/// Any PKCS#11 failure (the key pair is destroyed first when it exists), or [`Error::Key`] when
/// an object labelled [`LABEL`] is still on the token afterwards.
pub fn measure(
    module: &Path,
    selector: &TokenSelector,
    pin: &Pin,
    key_type: KeyType,
    storage: Storage,
    sessions: usize,
    duration: Duration,
) -> Result<RawFigures, Error> {
    let (ctx, _) = context(module)?;
    // One more session than signs: it makes the key pair and destroys it. Session objects are
    // visible to every session of the application (PKCS#11 v2.40 section 4.4).
    let (_, mut signers) = connect(&ctx, selector, &pin.to_auth_pin(), sessions.max(1) + 1)?;
    let owner = signers.remove(0);
    let owner = &owner;
    let before = owner
        .find_objects(&[Attribute::Label(LABEL.as_bytes().to_vec())])
        .map_err(ck("C_FindObjects"))?;
    if !before.is_empty() {
        return Err(Error::LabelExists(LABEL.to_string()));
    }
    let started = Instant::now();
    let (public, private) = generate(owner, key_type, storage)?;
    let keygen_seconds = started.elapsed().as_secs_f64();
    let signed = sign_for(signers, private, key_type, duration);
    // Destroyed whether or not the signing went well; a failure to destroy is reported.
    let destroyed = owner
        .destroy_object(private)
        .and_then(|()| owner.destroy_object(public))
        .map_err(ck("C_DestroyObject"));
    let left = owner
        .find_objects(&[Attribute::Label(LABEL.as_bytes().to_vec())])
        .map_err(ck("C_FindObjects"))?;
    let (signatures, seconds) = signed?;
    destroyed?;
    if !left.is_empty() {
        return Err(Error::Key {
            uri: format!("pkcs11:object={LABEL}"),
            problem: format!(
                "{} objects with the bench's label are still on the token after C_DestroyObject",
                left.len()
            ),
        });
    }
    Ok(RawFigures {
        signatures,
        seconds,
        keygen_seconds,
    })
}

/// Generates the throwaway key pair as `storage` says, the private key sensitive, not
/// extractable and sign-only (PKCS#11 v2.40 section 4.9).
fn generate(
    session: &Session,
    key_type: KeyType,
    storage: Storage,
) -> Result<(ObjectHandle, ObjectHandle), Error> {
    let mut id = [0u8; 16];
    session
        .generate_random_slice(&mut id)
        .map_err(ck("C_GenerateRandom"))?;
    let (mechanism, public, private) =
        key_pair_templates(LABEL, &id, key_type, storage == Storage::Token)?;
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(ck("C_GenerateKeyPair"))
}

/// Signs filler with `key` from one thread per session until `duration` has passed. Returns the
/// number of signatures and the seconds taken.
fn sign_for(
    sessions: Vec<Session>,
    key: ObjectHandle,
    key_type: KeyType,
    duration: Duration,
) -> Result<(u64, f64), Error> {
    let alg = key_type.default_signature_algorithm();
    let started = Instant::now();
    let deadline = started + duration;
    let counts = std::thread::scope(|s| {
        let threads: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                std::thread::Builder::new()
                    .name(format!("raw-{i}"))
                    .spawn_scoped(s, move || -> Result<u64, Error> {
                        let mechanism = if alg.is_rsa() {
                            Mechanism::RsaPkcs
                        } else {
                            Mechanism::Ecdsa
                        };
                        let mut message = vec![0x5a; 1024];
                        message[0] = i as u8;
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            message[1..9].copy_from_slice(&n.to_be_bytes());
                            let _ = session
                                .sign(&mechanism, key, &token_input(alg, &message))
                                .map_err(ck("C_Sign"))?;
                            n += 1;
                        }
                        Ok(n)
                    })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.map_err(|e| Error::Unavailable {
                    op: "starting a signing thread".to_string(),
                    rv: e.to_string(),
                })?
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Unavailable {
                        op: "C_Sign".to_string(),
                        rv: "a signing thread panicked".to_string(),
                    })
                })
            })
            .collect::<Result<Vec<u64>, Error>>()
    })?;
    Ok((counts.iter().sum(), started.elapsed().as_secs_f64()))
}
