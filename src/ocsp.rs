//! Building, checking and signing OCSP responses (RFC 6960) for one issuer.
//!
//! ```text
//!   SingleResponseInput ─check_input─▶ ResponseData DER ─sign─▶ BasicOCSPResponse ─wrap─▶ OCSPResponse DER
//!     (BR 4.9.10, 7.3)                      │          (HSM, verifies            │
//!                                           │           its own signature)       ▼
//!                                           └───── bytes, signature, fields ◀── decode_response
//!                                                  unchanged?
//! ```
//!
//! The response is the shape RFC 5019 2.2 and Let's Encrypt use: a basic response (RFC 6960
//! 4.2.1) with one SingleResponse, responderID byKey, no nonce and no extensions, CertID hashed
//! with SHA-1 (what clients send, RFC 5019 2.1.1). It is signed by the issuer's own key or by a
//! delegated responder whose certificate goes in `certs` (RFC 6960 4.2.2.2).
//!
//! Signing is a closure, as in [`crate::x509`]: this module never names PKCS#11.
//!
//! [`check_input`] refuses, with a stable code, inputs that would give a response the BRs
//! (for Subscriber Certificates) or RFC 6960 do not allow:
//!
//! | code | rule |
//! |---|---|
//! | `ocsp.next_update.order` | nextUpdate is later than thisUpdate (RFC 6960 4.2.2.1) |
//! | `ocsp.validity.too_short` | validity interval at least eight hours (BR 4.9.10) |
//! | `ocsp.validity.too_long` | validity interval at most ten days (BR 4.9.10) |
//! | `ocsp.this_update.future` | thisUpdate not later than now + [`MAX_CLOCK_SKEW`] (RFC 6960 4.2.2.1) |
//! | `ocsp.this_update.stale` | thisUpdate no more than four days ago (BR 4.9.10) |
//! | `ocsp.next_update.past` | nextUpdate later than now (RFC 6960 4.2.2.1) |
//! | `ocsp.revocation_time.after_this_update` | revocationTime not after thisUpdate (RFC 6960 2.4) |
//! | `ocsp.reason.unspecified` | unspecified (0) is left out instead (BR 7.3, 7.2.2) |
//! | `ocsp.reason.certificate_hold` | never certificateHold (6) (BR 7.3, 7.2.2) |
//! | `ocsp.next_update.after_responder_expiry` | a delegated responder's certificate outlives nextUpdate ([`sign_response`]) |
//! | `ocsp.reason.not_allowed` | no cACompromise, removeFromCRL or aACompromise for a Subscriber Certificate (BR 7.3, 7.2.2) |
//!
//! What this module does not do: HTTP (RFC 5019), request parsing, nonces (RFC 6960 4.4.1),
//! `unknown` responses, several certificates per response, or responses about CA certificates
//! (BR 7.3 then requires a reason on every revocation and 4.9.10 a twelve-month cycle).

pub mod asn1;

use std::time::{Duration, SystemTime};

use const_oid::db::rfc5912::{ID_KP_OCSP_SIGNING, ID_SHA_1};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NOCHECK};
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, CrlReason, ExtendedKeyUsage, SubjectKeyIdentifier,
};
use x509_cert::serial_number::SerialNumber;

use self::asn1::{
    BasicOcspResponse, CertId, OcspResponse, OcspResponseStatus, RawBasicOcspResponse, ResponderId,
    ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};
use crate::x509::SignerInfo;

/// How far in the future thisUpdate may be, to allow for clocks that differ slightly.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The shortest validity interval BR 4.9.10 allows for a Subscriber Certificate's status:
/// eight hours.
pub const MIN_VALIDITY_INTERVAL: Duration = Duration::from_secs(8 * 3600);

/// The longest validity interval BR 4.9.10 allows for a Subscriber Certificate's status: ten
/// days.
pub const MAX_VALIDITY_INTERVAL: Duration = Duration::from_secs(10 * 86_400);

/// How old thisUpdate may be when a response is signed: BR 4.9.10 has the CA provide an updated
/// response "no later than four days after the thisUpdate".
pub const MAX_THIS_UPDATE_AGE: Duration = Duration::from_secs(4 * 86_400);

/// A failure to check, build, sign or re-read an OCSP response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input breaks a rule; nothing was signed. See the table in the module docs.
    #[error("{field}: {rule}")]
    Refused {
        /// Stable identifier of the rule, e.g. `"ocsp.validity.too_long"`.
        code: &'static str,
        /// The input field the refusal is about, e.g. `"next_update"`.
        field: &'static str,
        /// The rule broken, in words, ending with its source.
        rule: String,
    },
    /// The responder's key and certificates do not fit together (RFC 6960 4.2.2.2).
    #[error("OCSP responder: {0}")]
    Responder(String),
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// The HSM failed to sign.
    #[error(transparent)]
    Hsm(#[from] crate::hsm::Error),
    /// The assembled response does not carry exactly what was built and signed; discarded.
    #[error("the signed OCSP response differs from what was built ({0}); discarded")]
    Mismatch(&'static str),
    /// A response being decoded is not of the shape this module produces.
    #[error("OCSP response: {0}")]
    Malformed(String),
}

impl Error {
    /// The stable code of a [`Error::Refused`], `None` for the other variants.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    fn refused(code: &'static str, field: &'static str, rule: impl Into<String>) -> Self {
        Error::Refused {
            code,
            field,
            rule: rule.into(),
        }
    }
}

/// What a response says about a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// Not revoked (RFC 6960 2.2 "good").
    Good,
    /// Revoked (RFC 6960 2.2 "revoked").
    Revoked {
        /// When (RFC 6960 4.2.1 revocationTime).
        revoked_at: SystemTime,
        /// Why; `None` for unspecified, which BR 7.2.2 (applied by 7.3) says to leave out.
        reason: Option<CrlReason>,
    },
}

/// The status of one certificate, for one response.
#[derive(Clone, Debug)]
pub struct SingleResponseInput {
    /// The certificate's serial number.
    pub serial: SerialNumber,
    /// Its status.
    pub status: CertStatus,
    /// When the status was known to be correct (RFC 6960 4.2.2.1).
    pub this_update: SystemTime,
    /// When newer information will be available; after it, clients discard the response.
    pub next_update: SystemTime,
}

/// The issuer responses are about and the key that signs them.
///
/// Holds the two CertID hashes of the issuer (RFC 6960 4.1.1: SHA-1 of the DER of its subject
/// name, SHA-1 of its subjectPublicKey BIT STRING value), the ResponderID byKey of the signer
/// (RFC 6960 4.2.2.3: SHA-1 of the signer's subjectPublicKey BIT STRING value) and, for a
/// delegated responder, its certificate to send in `certs`.
#[derive(Clone, Debug)]
pub struct Responder {
    issuer_name_hash: [u8; 20],
    issuer_key_hash: [u8; 20],
    responder_key_hash: [u8; 20],
    signer: SignerInfo,
    delegate: Option<Certificate>,
}

impl Responder {
    /// A responder for certificates issued by `issuer`, signing with `signer`.
    ///
    /// With `delegate` `None`, `signer` must be the issuer's own key. Otherwise `delegate` is a
    /// delegated responder certificate (RFC 6960 4.2.2.2) for `signer`'s key, and must be
    /// issued and signed by `issuer`, carry the id-kp-OCSPSigning extended key usage (RFC 6960
    /// 4.2.2.2) and the id-pkix-ocsp-nocheck extension (BR 4.9.9).
    ///
    /// # Errors
    /// [`Error::Responder`] when the keys, names or extensions do not fit; [`Error::Der`] when
    /// an extension cannot be decoded.
    pub fn new(
        issuer: &Certificate,
        signer: SignerInfo,
        delegate: Option<Certificate>,
    ) -> Result<Self, Error> {
        let issuer_tbs = issuer.tbs_certificate();
        let issuer_spki = issuer_tbs.subject_public_key_info();
        match &delegate {
            None => {
                if *issuer_spki != signer.spki {
                    return Err(Error::Responder(
                        "the signing key is not the issuer's and no delegated responder \
                         certificate was given (RFC 6960 4.2.2.2)"
                            .to_string(),
                    ));
                }
            }
            Some(cert) => check_delegate(issuer, &signer.spki, cert)?,
        }
        Ok(Responder {
            issuer_name_hash: Sha1::digest(issuer_tbs.subject().to_der()?).into(),
            issuer_key_hash: key_hash(issuer_spki),
            responder_key_hash: key_hash(&signer.spki),
            signer,
            delegate,
        })
    }

    /// The CertID (RFC 6960 4.1.1) for a certificate of this issuer with serial `serial`:
    /// SHA-1, with NULL parameters as OpenSSL and Let's Encrypt encode it.
    ///
    /// # Errors
    /// [`Error::Der`] only if the hashes cannot be wrapped, which does not happen for 20 bytes.
    pub fn cert_id(&self, serial: SerialNumber) -> Result<CertId, Error> {
        Ok(CertId {
            hash_algorithm: sha1_algorithm(),
            issuer_name_hash: OctetString::new(self.issuer_name_hash)?,
            issuer_key_hash: OctetString::new(self.issuer_key_hash)?,
            serial_number: serial,
        })
    }

    /// SHA-1 of the issuer's subject name DER (CertID issuerNameHash).
    pub fn issuer_name_hash(&self) -> &[u8; 20] {
        &self.issuer_name_hash
    }

    /// SHA-1 of the issuer's subjectPublicKey value (CertID issuerKeyHash).
    pub fn issuer_key_hash(&self) -> &[u8; 20] {
        &self.issuer_key_hash
    }

    /// SHA-1 of the signer's subjectPublicKey value (ResponderID byKey).
    pub fn responder_key_hash(&self) -> &[u8; 20] {
        &self.responder_key_hash
    }

    /// The key and algorithm responses are signed with.
    pub fn signer(&self) -> &SignerInfo {
        &self.signer
    }

    /// The delegated responder certificate sent in `certs`, if responses are not signed by the
    /// issuer key.
    pub fn delegate(&self) -> Option<&Certificate> {
        self.delegate.as_ref()
    }

    /// Every check [`sign_response`] makes before signing: [`check_input`] at `now`, and, for a
    /// delegated responder, that nextUpdate is not after its certificate's notAfter.
    ///
    /// # Errors
    /// [`Error::Refused`] with the rule's code.
    pub fn check(&self, input: &SingleResponseInput, now: SystemTime) -> Result<(), Error> {
        check_input(input, now)?;
        check_signer_lifetime(self, input)
    }
}

/// RFC 6960 4.2.1 KeyHash / 4.1.1 issuerKeyHash: SHA-1 of the subjectPublicKey BIT STRING value,
/// without tag, length or unused-bits octet.
fn key_hash(spki: &SubjectPublicKeyInfoOwned) -> [u8; 20] {
    Sha1::digest(spki.subject_public_key.raw_bytes()).into()
}

/// id-sha1 with NULL parameters, as OpenSSL sends it in requests.
fn sha1_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA_1,
        parameters: Some(Null.into()),
    }
}

fn check_delegate(
    issuer: &Certificate,
    signer: &SubjectPublicKeyInfoOwned,
    cert: &Certificate,
) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::Responder(format!(
            "delegated responder certificate {why}"
        )))
    };
    let tbs = cert.tbs_certificate();
    if tbs.subject_public_key_info() != signer {
        return bad("is for another key than the signing key");
    }
    if tbs.issuer() != issuer.tbs_certificate().subject() {
        return bad("is not issued by the issuer (RFC 6960 4.2.2.2)");
    }
    if crate::verify::verify_certificate(cert, issuer.tbs_certificate().subject_public_key_info())
        .is_err()
    {
        return bad("is not signed by the issuer's key (RFC 6960 4.2.2.2)");
    }
    let ocsp_signing = tbs
        .get_extension::<ExtendedKeyUsage>()?
        .is_some_and(|(_, eku)| eku.0.contains(&ID_KP_OCSP_SIGNING));
    if !ocsp_signing {
        return bad("lacks the id-kp-OCSPSigning extended key usage (RFC 6960 4.2.2.2)");
    }
    let no_check = tbs
        .extensions()
        .is_some_and(|exts| exts.iter().any(|e| e.extn_id == ID_PKIX_OCSP_NOCHECK));
    if !no_check {
        return bad("lacks the id-pkix-ocsp-nocheck extension (BR 4.9.9)");
    }
    // BR 7.1.2.8.2 / 7.1.2.11.1: the authorityKeyIdentifier is the issuer's subjectKeyIdentifier.
    let aki = tbs
        .get_extension::<AuthorityKeyIdentifier>()?
        .and_then(|(_, aki)| aki.key_identifier);
    let ski = issuer
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()?
        .map(|(_, ski)| ski.0);
    if aki.is_none() || aki != ski {
        return bad(
            "has an authorityKeyIdentifier that is not the issuer's subjectKeyIdentifier \
             (BR 7.1.2.11.1)",
        );
    }
    // RFC 5280 4.1.2.5, RFC 6960 4.2.2.2: clients reject a response whose signer's certificate
    // is not valid now.
    let now = SystemTime::now();
    let validity = tbs.validity();
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return bad(&format!(
            "is not valid now (notBefore {}, notAfter {})",
            validity.not_before, validity.not_after
        ));
    }
    Ok(())
}

/// Seconds since the epoch: OCSP times are GeneralizedTime without fractions (RFC 5280
/// 4.1.2.5.2, which RFC 6960 4.2.2.1 follows), so rules are checked on whole seconds.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks `input` against RFC 6960 and the Baseline Requirements for the status of Subscriber
/// Certificates, at time `now`. Returns the first rule broken; see the table in the module
/// docs.
///
/// # Errors
/// [`Error::Refused`] with the rule's code.
pub fn check_input(input: &SingleResponseInput, now: SystemTime) -> Result<(), Error> {
    let this = secs(input.this_update);
    let next = secs(input.next_update);
    let now = secs(now);
    if next <= this {
        return Err(Error::refused(
            "ocsp.next_update.order",
            "next_update",
            "nextUpdate must be later than thisUpdate (RFC 6960 4.2.2.1)",
        ));
    }
    // BR 4.9.10: "The validity interval of an OCSP response is the difference in time between
    // the thisUpdate and nextUpdate field, inclusive", so one second more than next - this.
    let interval = next - this + 1;
    if interval < MIN_VALIDITY_INTERVAL.as_secs() {
        return Err(Error::refused(
            "ocsp.validity.too_short",
            "next_update",
            format!(
                "validity interval of {interval} s is less than eight hours; OCSP responses \
                 MUST have a validity interval greater than or equal to eight hours (BR 4.9.10)"
            ),
        ));
    }
    if interval > MAX_VALIDITY_INTERVAL.as_secs() {
        return Err(Error::refused(
            "ocsp.validity.too_long",
            "next_update",
            format!(
                "validity interval of {interval} s is more than ten days; OCSP responses MUST \
                 have a validity interval less than or equal to ten days (BR 4.9.10)"
            ),
        ));
    }
    if this > now + MAX_CLOCK_SKEW.as_secs() {
        return Err(Error::refused(
            "ocsp.this_update.future",
            "this_update",
            format!(
                "thisUpdate is {} s in the future; clients consider such responses unreliable \
                 (RFC 6960 4.2.2.1)",
                this - now
            ),
        ));
    }
    if this + MAX_THIS_UPDATE_AGE.as_secs() < now {
        return Err(Error::refused(
            "ocsp.this_update.stale",
            "this_update",
            format!(
                "thisUpdate is {} s old; an updated response is due no later than four days \
                 after the thisUpdate (BR 4.9.10)",
                now - this
            ),
        ));
    }
    if next <= now {
        return Err(Error::refused(
            "ocsp.next_update.past",
            "next_update",
            "nextUpdate has passed; clients consider such responses unreliable (RFC 6960 4.2.2.1)",
        ));
    }
    if let CertStatus::Revoked { revoked_at, reason } = input.status {
        if secs(revoked_at) > this {
            return Err(Error::refused(
                "ocsp.revocation_time.after_this_update",
                "status.revoked_at",
                "revocationTime is after thisUpdate, the time at which the status is known to \
                 be correct (RFC 6960 2.4)",
            ));
        }
        let refusal = match reason {
            Some(CrlReason::Unspecified) => Some((
                "ocsp.reason.unspecified",
                "unspecified (0): the revocationReason MUST be omitted instead (BR 7.3, 7.2.2)",
            )),
            Some(CrlReason::CertificateHold) => Some((
                "ocsp.reason.certificate_hold",
                "certificateHold (6) MUST NOT be used (BR 7.3, 7.2.2)",
            )),
            Some(CrlReason::CaCompromise | CrlReason::RemoveFromCRL | CrlReason::AaCompromise) => {
                Some((
                    "ocsp.reason.not_allowed",
                    "a reason BR 7.2.2 does not allow for a Subscriber Certificate (BR 7.3)",
                ))
            }
            _ => None,
        };
        if let Some((code, rule)) = refusal {
            return Err(Error::refused(code, "status.reason", rule));
        }
    }
    Ok(())
}

/// Refuses a response that would outlive the delegated responder certificate signing it: a
/// client checking it before nextUpdate would find the signer expired (Mozilla Root Store Policy:
/// an OCSP response's nextUpdate is not after the notAfter of the certificate that signs it).
fn check_signer_lifetime(responder: &Responder, input: &SingleResponseInput) -> Result<(), Error> {
    if let Some(cert) = &responder.delegate {
        let not_after = cert.tbs_certificate().validity().not_after.to_system_time();
        if secs(input.next_update) > secs(not_after) {
            return Err(Error::refused(
                "ocsp.next_update.after_responder_expiry",
                "next_update",
                format!(
                    "nextUpdate is after the delegated responder certificate's notAfter {}; the \
                     response would outlive its signer (RFC 6960 4.2.2.2)",
                    cert.tbs_certificate().validity().not_after
                ),
            ));
        }
    }
    Ok(())
}

fn generalized_time(t: SystemTime) -> Result<GeneralizedTime, Error> {
    Ok(GeneralizedTime::from_system_time(t)?)
}

/// Builds, signs and checks an OCSP response for one certificate.
///
/// Checks `input` with [`check_input`] at `produced_at`, builds ResponseData (RFC 6960 4.2.1:
/// version v1, left out as the default; responderID byKey; producedAt; one SingleResponse with
/// nextUpdate; no extensions), signs exactly its DER with `sign` (which must verify its own
/// signature, as [`crate::hsm::Hsm::sign`] does), wraps it in a BasicOCSPResponse (with the
/// delegated responder's certificate in `certs`, if any) and an OCSPResponse (`successful`,
/// responseType id-pkix-ocsp-basic), then re-reads the result with [`decode_response`] and
/// checks the ResponseData bytes, signature, algorithm and every field are what was built.
///
/// Returns the DER of the OCSPResponse.
///
/// # Errors
/// [`Error::Refused`] from [`check_input`] (nothing is signed), [`Error::Hsm`] from `sign`,
/// [`Error::Der`], or [`Error::Mismatch`] if the re-read response differs.
pub fn sign_response(
    responder: &Responder,
    input: &SingleResponseInput,
    produced_at: SystemTime,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<Vec<u8>, Error> {
    responder.check(input, produced_at)?;
    let cert_status = match input.status {
        CertStatus::Good => asn1::CertStatus::Good(Null),
        CertStatus::Revoked { revoked_at, reason } => asn1::CertStatus::Revoked(RevokedInfo {
            revocation_time: generalized_time(revoked_at)?,
            revocation_reason: reason,
        }),
    };
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(responder.responder_key_hash)?),
        produced_at: generalized_time(produced_at)?,
        responses: vec![SingleResponse {
            cert_id: responder.cert_id(input.serial.clone())?,
            cert_status,
            this_update: generalized_time(input.this_update)?,
            next_update: Some(generalized_time(input.next_update)?),
            single_extensions: None,
        }],
        response_extensions: None,
    };
    let tbs_der = tbs.to_der()?;
    let signature = sign(&tbs_der)?;
    let algorithm = responder.signer.alg.algorithm_identifier();
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: algorithm.clone(),
        signature: BitString::from_bytes(&signature)?,
        certs: responder.delegate.clone().map(|c| vec![c]),
    };
    let der = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    }
    .to_der()?;

    let decoded = decode_response(&der)?;
    if decoded.response_data != tbs_der {
        return Err(Error::Mismatch("ResponseData bytes"));
    }
    if decoded.signature != signature || decoded.signature_algorithm != algorithm {
        return Err(Error::Mismatch("signature or algorithm"));
    }
    let truncated = |t: SystemTime| SystemTime::UNIX_EPOCH + Duration::from_secs(secs(t));
    let expected_status = match input.status {
        CertStatus::Good => CertStatus::Good,
        CertStatus::Revoked { revoked_at, reason } => CertStatus::Revoked {
            revoked_at: truncated(revoked_at),
            reason,
        },
    };
    if decoded.serial != input.serial
        || decoded.cert_status != expected_status
        || decoded.this_update != truncated(input.this_update)
        || decoded.next_update != Some(truncated(input.next_update))
        || decoded.produced_at != truncated(produced_at)
        || decoded.cert_id != responder.cert_id(input.serial.clone())?
        || decoded.responder_key_hash != responder.responder_key_hash
        || decoded.certs != responder.delegate.clone().into_iter().collect::<Vec<_>>()
    {
        return Err(Error::Mismatch("response fields"));
    }
    Ok(der)
}

/// A successful basic OCSP response with one SingleResponse and a responder identified by key,
/// as [`sign_response`] makes, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodedResponse {
    /// The response's CertID (hash algorithm, issuer hashes, serial).
    pub cert_id: CertId,
    /// The certificate serial number (from `cert_id`).
    pub serial: SerialNumber,
    /// The certificate's status.
    pub cert_status: CertStatus,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate, if present.
    pub next_update: Option<SystemTime>,
    /// producedAt.
    pub produced_at: SystemTime,
    /// ResponderID byKey: SHA-1 of the signer's subjectPublicKey value (RFC 6960 4.2.2.3).
    pub responder_key_hash: [u8; 20],
    /// The DER of tbsResponseData exactly as it appears in the response: the signed bytes.
    pub response_data: Vec<u8>,
    /// signatureAlgorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature value.
    pub signature: Vec<u8>,
    /// The certificates in `certs` (a delegated responder's), empty when absent.
    pub certs: Vec<Certificate>,
}

impl DecodedResponse {
    /// Verifies the signature over [`DecodedResponse::response_data`] with `signer`'s key.
    ///
    /// # Errors
    /// Any [`crate::verify::Error`]: unsupported key or algorithm, malformed or bad signature.
    pub fn verify(&self, signer: &SubjectPublicKeyInfoOwned) -> Result<(), crate::verify::Error> {
        crate::verify::verify_signature(
            signer,
            &self.signature_algorithm,
            &self.response_data,
            &self.signature,
        )
    }
}

/// Decodes an OCSPResponse (RFC 6960 4.2.1) of the shape [`sign_response`] produces: status
/// successful, responseType id-pkix-ocsp-basic, version v1, responderID byKey, exactly one
/// SingleResponse, status good or revoked. Does not check the signature (see
/// [`DecodedResponse::verify`]).
///
/// # Errors
/// [`Error::Der`] for bad DER, [`Error::Malformed`] for any other shape.
pub fn decode_response(der: &[u8]) -> Result<DecodedResponse, Error> {
    let malformed = |why: &str| Error::Malformed(why.to_string());
    let response = OcspResponse::from_der(der)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(Error::Malformed(format!(
            "responseStatus is {:?}, not successful",
            response.response_status
        )));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| malformed("successful but without responseBytes (RFC 6960 4.2.1)"))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(malformed("responseType is not id-pkix-ocsp-basic"));
    }
    let raw = RawBasicOcspResponse::from_der(bytes.response.as_bytes())?;
    let response_data = raw.tbs_response_data.to_der()?;
    let data = ResponseData::from_der(&response_data)?;
    if data.version != Version::V1 {
        return Err(malformed("ResponseData version is not v1"));
    }
    let responder_key_hash: [u8; 20] = match &data.responder_id {
        ResponderId::ByKey(hash) => hash
            .as_bytes()
            .try_into()
            .map_err(|_| malformed("responderID byKey is not a 20-byte SHA-1 hash"))?,
        ResponderId::ByName(_) => return Err(malformed("responderID is byName, not byKey")),
    };
    let [single] = <[SingleResponse; 1]>::try_from(data.responses)
        .map_err(|r| Error::Malformed(format!("{} SingleResponses, not one", r.len())))?;
    let cert_status = match single.cert_status {
        asn1::CertStatus::Good(_) => CertStatus::Good,
        asn1::CertStatus::Revoked(info) => CertStatus::Revoked {
            revoked_at: info.revocation_time.to_system_time(),
            reason: info.revocation_reason,
        },
        asn1::CertStatus::Unknown(_) => return Err(malformed("certStatus is unknown")),
    };
    Ok(DecodedResponse {
        serial: single.cert_id.serial_number.clone(),
        cert_id: single.cert_id,
        cert_status,
        this_update: single.this_update.to_system_time(),
        next_update: single.next_update.map(|t| t.to_system_time()),
        produced_at: data.produced_at.to_system_time(),
        responder_key_hash,
        response_data,
        signature_algorithm: raw.signature_algorithm,
        signature: raw
            .signature
            .as_bytes()
            .ok_or_else(|| malformed("signature BIT STRING has unused bits"))?
            .to_vec(),
        certs: raw.certs.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use der::Sequence;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer;

    use super::*;
    use crate::alg::SignatureAlgorithm;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    /// A throwaway P-256 CA (or delegated responder) made by openssl, with its key loaded in
    /// software.
    struct Ca {
        dir: tempfile::TempDir,
        cert: Certificate,
        key: SigningKey,
    }

    impl Ca {
        fn new() -> Ca {
            let dir = tempfile::tempdir().unwrap();
            openssl(
                dir.path(),
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "30",
                    "-subj",
                    "/O=strongroom test/CN=OCSP Test CA",
                ],
            );
            let cert = read_cert(&dir.path().join("ca.pem"));
            let key = read_key(dir.path(), "ca.key");
            Ca { dir, cert, key }
        }

        /// A delegated responder certificate issued by this CA; `extensions` go in the
        /// openssl extfile.
        fn delegate(&self, extensions: &str) -> (Certificate, SigningKey) {
            let dir = self.dir.path();
            std::fs::write(dir.join("ext.cnf"), extensions).unwrap();
            openssl(
                dir,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "resp.key",
                    "-out",
                    "resp.csr",
                    "-subj",
                    "/O=strongroom test/CN=OCSP Responder",
                ],
            );
            openssl(
                dir,
                &[
                    "x509", "-req", "-in", "resp.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-days", "10", "-extfile", "ext.cnf", "-out", "resp.pem",
                ],
            );
            (read_cert(&dir.join("resp.pem")), read_key(dir, "resp.key"))
        }

        fn signer(key: &SigningKey) -> SignerInfo {
            let spki_der = key.verifying_key().to_public_key_der().unwrap();
            SignerInfo {
                spki: SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap(),
                alg: SignatureAlgorithm::EcdsaSha256,
            }
        }

        fn responder(&self) -> Responder {
            Responder::new(&self.cert, Ca::signer(&self.key), None).unwrap()
        }
    }

    /// Runs openssl in `dir`; returns whether it succeeded and its stdout and stderr.
    fn try_openssl(dir: &Path, args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn openssl(dir: &Path, args: &[&str]) -> String {
        let (ok, text) = try_openssl(dir, args);
        assert!(ok, "openssl {args:?} failed:\n{text}");
        text
    }

    fn read_cert(path: &Path) -> Certificate {
        crate::x509::read_pem::<Certificate>(path, "CERTIFICATE")
            .unwrap()
            .0
    }

    fn read_key(dir: &Path, name: &str) -> SigningKey {
        let der_name = format!("{name}.der");
        openssl(
            dir,
            &["pkey", "-in", name, "-outform", "DER", "-out", &der_name],
        );
        // OpenSSL 3.0 writes an EC key in DER as SEC1 ECPrivateKey (RFC 5915).
        let sec1 = std::fs::read(dir.join(der_name)).unwrap();
        SigningKey::from(p256::SecretKey::from_sec1_der(&sec1).unwrap())
    }

    /// The closure the HSM would be: signs in software, DER-encoded ECDSA.
    fn software(key: &SigningKey) -> impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error> {
        move |tbs| {
            let sig: DerSignature = key.sign(tbs);
            Ok(sig.as_bytes().to_vec())
        }
    }

    fn serial(bytes: &[u8]) -> SerialNumber {
        SerialNumber::new(bytes).unwrap()
    }

    /// Whole seconds, one hour ago: a thisUpdate every check accepts.
    fn an_hour_ago() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs(SystemTime::now() - HOUR))
    }

    fn good(serial_bytes: &[u8]) -> SingleResponseInput {
        let this_update = an_hour_ago();
        SingleResponseInput {
            serial: serial(serial_bytes),
            status: CertStatus::Good,
            this_update,
            next_update: this_update + 3 * DAY,
        }
    }

    fn revoked(serial_bytes: &[u8], reason: Option<CrlReason>) -> SingleResponseInput {
        let mut input = good(serial_bytes);
        input.status = CertStatus::Revoked {
            revoked_at: input.this_update - 2 * HOUR,
            reason,
        };
        input
    }

    #[test]
    fn sign_and_decode_round_trip() {
        let ca = Ca::new();
        let responder = ca.responder();
        let input = revoked(&[0x12, 0x34], Some(CrlReason::KeyCompromise));
        let now = SystemTime::now();
        let der = sign_response(&responder, &input, now, software(&ca.key)).unwrap();
        let decoded = decode_response(&der).unwrap();
        assert_eq!(decoded.serial, input.serial);
        assert_eq!(decoded.cert_status, input.status);
        assert_eq!(decoded.this_update, input.this_update);
        assert_eq!(decoded.next_update, Some(input.next_update));
        assert_eq!(
            decoded.produced_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs(now))
        );
        assert_eq!(decoded.responder_key_hash, *responder.responder_key_hash());
        assert_eq!(
            decoded.cert_id,
            responder.cert_id(input.serial.clone()).unwrap()
        );
        assert!(decoded.certs.is_empty());
        decoded.verify(&responder.signer().spki).unwrap();

        // The ResponseData is what RFC 6960 4.2.1 says, version left out: it starts with the
        // [2] byKey responderID, not a [0] version.
        let data = ResponseData::from_der(&decoded.response_data).unwrap();
        assert_eq!(data.response_extensions, None);
        let elements = Vec::<der::Any>::from_der(&decoded.response_data).unwrap();
        assert_eq!(
            der::Tagged::tag(&elements[0]),
            der::Tag::ContextSpecific {
                constructed: true,
                number: der::TagNumber(2)
            }
        );

        // A flipped bit in the signed bytes no longer verifies.
        let mut tampered = decoded.clone();
        let last = tampered.response_data.len() - 1;
        tampered.response_data[last] ^= 1;
        assert!(tampered.verify(&responder.signer().spki).is_err());
    }

    #[test]
    fn good_without_reason_and_revoked_without_reason_encode() {
        let ca = Ca::new();
        let responder = ca.responder();
        for input in [good(&[1]), revoked(&[2], None)] {
            let der =
                sign_response(&responder, &input, SystemTime::now(), software(&ca.key)).unwrap();
            assert_eq!(decode_response(&der).unwrap().cert_status, input.status);
        }
    }

    #[test]
    fn a_refused_input_is_never_signed() {
        let ca = Ca::new();
        let mut input = good(&[1]);
        input.next_update = input.this_update + 11 * DAY;
        let mut called = false;
        let err = sign_response(&ca.responder(), &input, SystemTime::now(), |_| {
            called = true;
            Ok(vec![])
        })
        .unwrap_err();
        assert_eq!(err.code(), Some("ocsp.validity.too_long"));
        assert!(!called);
    }

    #[test]
    fn a_signature_the_closure_did_not_make_is_not_returned_as_the_response() {
        // A closure returning garbage still gives a response (the HSM verifies its own
        // signatures); what sign_response guarantees is that the bytes signed are the bytes
        // carried, so this response fails verification rather than verifying something else.
        let ca = Ca::new();
        let responder = ca.responder();
        let der = sign_response(&responder, &good(&[1]), SystemTime::now(), |_| {
            Ok(vec![0x30, 0x00])
        })
        .unwrap();
        assert!(
            decode_response(&der)
                .unwrap()
                .verify(&responder.signer().spki)
                .is_err()
        );
    }

    #[test]
    fn the_signing_key_must_be_the_issuers_or_delegated() {
        let ca = Ca::new();
        let other = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let err = Responder::new(&ca.cert, Ca::signer(&other), None).unwrap_err();
        assert!(matches!(err, Error::Responder(_)), "{err}");

        // A delegated certificate without id-pkix-ocsp-nocheck is refused (BR 4.9.9).
        let (cert, key) = ca.delegate("extendedKeyUsage = OCSPSigning\n");
        let err = Responder::new(&ca.cert, Ca::signer(&key), Some(cert)).unwrap_err();
        assert!(err.to_string().contains("BR 4.9.9"), "{err}");
        // One without id-kp-OCSPSigning too (RFC 6960 4.2.2.2).
        let (cert, key) = ca.delegate("noCheck = ignored\n");
        let err = Responder::new(&ca.cert, Ca::signer(&key), Some(cert)).unwrap_err();
        assert!(err.to_string().contains("OCSPSigning"), "{err}");
        // And a good one for a different key.
        let (cert, _) = ca.delegate("extendedKeyUsage = OCSPSigning\nnoCheck = ignored\n");
        let err = Responder::new(&ca.cert, Ca::signer(&other), Some(cert)).unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
    }

    /// OCSPRequest (RFC 6960 4.1.1), only as far as this test reads it.
    #[derive(Sequence)]
    struct OcspRequest {
        tbs_request: TbsRequest,
    }

    #[derive(Sequence)]
    struct TbsRequest {
        request_list: Vec<Request>,
    }

    #[derive(Sequence)]
    struct Request {
        req_cert: CertId,
    }

    fn r10_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reference-certs/lets-encrypt-r10-signed-by-isrg-root-x1.pem")
    }

    #[test]
    fn cert_id_matches_what_openssl_sends_for_lets_encrypt_r10() {
        let r10 = read_cert(&r10_path());
        let signer = SignerInfo {
            spki: r10.tbs_certificate().subject_public_key_info().clone(),
            alg: SignatureAlgorithm::RsaPkcs1Sha256,
        };
        let responder = Responder::new(&r10, signer, None).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let issuer = r10_path().display().to_string();
        openssl(
            dir.path(),
            &[
                "ocsp",
                "-issuer",
                &issuer,
                "-serial",
                "0x1234",
                "-reqout",
                "req.der",
                "-no_nonce",
            ],
        );
        let request =
            OcspRequest::from_der(&std::fs::read(dir.path().join("req.der")).unwrap()).unwrap();
        let [request] = <[Request; 1]>::try_from(request.tbs_request.request_list)
            .ok()
            .unwrap();
        assert_eq!(
            request.req_cert,
            responder.cert_id(serial(&[0x12, 0x34])).unwrap()
        );
        // And the values themselves, so a change on either side shows.
        assert_eq!(
            hex::encode(responder.issuer_name_hash()),
            hex::encode(request.req_cert.issuer_name_hash.as_bytes())
        );
        assert_eq!(
            hex::encode(responder.issuer_key_hash()),
            hex::encode(request.req_cert.issuer_key_hash.as_bytes())
        );
    }

    /// Runs `openssl ocsp` on a response and returns stdout + stderr; the exit status is not
    /// checked, as openssl fails when the serial asked about has no status.
    fn openssl_check(ca: &Ca, der: &[u8], serial_hex: &str) -> String {
        let dir = ca.dir.path();
        std::fs::write(dir.join("resp.der"), der).unwrap();
        let (_, text) = try_openssl(
            dir,
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "ca.pem",
                "-CAfile",
                "ca.pem",
                "-no_nonce",
                "-resp_text",
                "-serial",
                serial_hex,
            ],
        );
        text
    }

    #[test]
    fn openssl_verifies_responses_signed_by_the_issuer() {
        let ca = Ca::new();
        let responder = ca.responder();

        let der = sign_response(
            &responder,
            &good(&[0x12, 0x34]),
            SystemTime::now(),
            software(&ca.key),
        )
        .unwrap();
        let text = openssl_check(&ca, &der, "0x1234");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains("0x1234: good"), "{text}");
        let responder_id = hex::encode_upper(responder.responder_key_hash());
        assert!(
            text.contains(&format!("Responder Id: {responder_id}")),
            "{text}"
        );

        let input = revoked(&[0x56, 0x78], Some(CrlReason::KeyCompromise));
        let der = sign_response(&responder, &input, SystemTime::now(), software(&ca.key)).unwrap();
        let text = openssl_check(&ca, &der, "0x5678");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains("0x5678: revoked"), "{text}");
        assert!(text.contains("Reason: keyCompromise"), "{text}");

        // Asked about another serial, openssl finds no status for it.
        let text = openssl_check(&ca, &der, "0x9999");
        assert!(text.contains("No Status found"), "{text}");
    }

    #[test]
    fn openssl_verifies_responses_signed_by_a_delegated_responder() {
        let ca = Ca::new();
        let (cert, key) = ca.delegate("extendedKeyUsage = OCSPSigning\nnoCheck = ignored\n");
        let responder = Responder::new(&ca.cert, Ca::signer(&key), Some(cert.clone())).unwrap();
        let der = sign_response(
            &responder,
            &good(&[0x12, 0x34]),
            SystemTime::now(),
            software(&key),
        )
        .unwrap();
        let decoded = decode_response(&der).unwrap();
        assert_eq!(decoded.certs, vec![cert]);
        // The CertID is still the issuer's; the responderID is the delegate's key.
        assert_eq!(
            decoded.cert_id.issuer_key_hash.as_bytes(),
            responder.issuer_key_hash()
        );
        assert_ne!(responder.issuer_key_hash(), responder.responder_key_hash());
        let text = openssl_check(&ca, &der, "0x1234");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains("0x1234: good"), "{text}");
    }

    #[test]
    fn a_response_never_outlives_its_delegated_responder() {
        let ca = Ca::new();
        // openssl -days 1: the responder certificate expires in a day.
        let (cert, key) = ca.delegate("extendedKeyUsage = OCSPSigning\nnoCheck = ignored\n");
        let short = {
            let dir = ca.dir.path();
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "resp.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-days",
                    "1",
                    "-extfile",
                    "ext.cnf",
                    "-out",
                    "short.pem",
                ],
            );
            read_cert(&dir.join("short.pem"))
        };
        assert_eq!(
            short.tbs_certificate().subject_public_key_info(),
            cert.tbs_certificate().subject_public_key_info()
        );
        let responder = Responder::new(&ca.cert, Ca::signer(&key), Some(short)).unwrap();
        let mut called = false;
        let err = sign_response(&responder, &good(&[1]), SystemTime::now(), |_| {
            called = true;
            Ok(vec![])
        })
        .unwrap_err();
        assert_eq!(err.code(), Some("ocsp.next_update.after_responder_expiry"));
        assert!(!called);
        // With the ten-day certificate, the same three-day response is signed.
        let responder = Responder::new(&ca.cert, Ca::signer(&key), Some(cert)).unwrap();
        responder.check(&good(&[1]), SystemTime::now()).unwrap();
    }

    #[test]
    fn a_delegate_whose_aki_is_not_the_issuers_ski_is_refused() {
        let ca = Ca::new();
        let (cert, key) = ca.delegate(
            "extendedKeyUsage = OCSPSigning\nnoCheck = ignored\nauthorityKeyIdentifier = none\n",
        );
        let err = Responder::new(&ca.cert, Ca::signer(&key), Some(cert)).unwrap_err();
        assert!(err.to_string().contains("authorityKeyIdentifier"), "{err}");
    }

    fn refusal(input: &SingleResponseInput, now: SystemTime) -> &'static str {
        check_input(input, now).unwrap_err().code().unwrap()
    }

    #[test]
    fn check_input_accepts_the_limits() {
        let now = SystemTime::now();
        let mut input = good(&[1]);
        check_input(&input, now).unwrap();
        // Inclusive interval of exactly ten days and exactly eight hours.
        input.next_update = input.this_update + 10 * DAY - Duration::from_secs(1);
        check_input(&input, now).unwrap();
        input.next_update = input.this_update + 8 * HOUR - Duration::from_secs(1);
        check_input(&input, now).unwrap();
        // Revoked at thisUpdate itself.
        let mut input = revoked(&[1], Some(CrlReason::Superseded));
        input.status = CertStatus::Revoked {
            revoked_at: input.this_update,
            reason: Some(CrlReason::Superseded),
        };
        check_input(&input, now).unwrap();
    }

    #[test]
    fn check_input_refuses_next_update_not_after_this_update() {
        let mut input = good(&[1]);
        input.next_update = input.this_update;
        assert_eq!(refusal(&input, SystemTime::now()), "ocsp.next_update.order");
        input.next_update = input.this_update - HOUR;
        assert_eq!(refusal(&input, SystemTime::now()), "ocsp.next_update.order");
    }

    #[test]
    fn check_input_refuses_a_validity_interval_under_eight_hours() {
        let mut input = good(&[1]);
        input.next_update = input.this_update + 8 * HOUR - Duration::from_secs(2);
        assert_eq!(
            refusal(&input, SystemTime::now()),
            "ocsp.validity.too_short"
        );
    }

    #[test]
    fn check_input_refuses_a_validity_interval_over_ten_days() {
        let mut input = good(&[1]);
        input.next_update = input.this_update + 10 * DAY;
        let err = check_input(&input, SystemTime::now()).unwrap_err();
        assert_eq!(err.code(), Some("ocsp.validity.too_long"));
        assert!(err.to_string().starts_with("next_update: "), "{err}");
        assert!(err.to_string().contains("BR 4.9.10"), "{err}");
    }

    #[test]
    fn check_input_refuses_this_update_in_the_future() {
        let input = good(&[1]);
        let now = input.this_update - MAX_CLOCK_SKEW;
        check_input(&input, now).unwrap();
        let now = input.this_update - MAX_CLOCK_SKEW - Duration::from_secs(1);
        assert_eq!(refusal(&input, now), "ocsp.this_update.future");
    }

    #[test]
    fn check_input_refuses_a_stale_this_update() {
        let mut input = good(&[1]);
        input.next_update = input.this_update + 10 * DAY - Duration::from_secs(1);
        let now = input.this_update + 4 * DAY;
        check_input(&input, now).unwrap();
        let now = now + Duration::from_secs(1);
        assert_eq!(refusal(&input, now), "ocsp.this_update.stale");
    }

    #[test]
    fn check_input_refuses_a_past_next_update() {
        let mut input = good(&[1]);
        input.next_update = input.this_update + 8 * HOUR;
        let now = input.next_update;
        assert_eq!(refusal(&input, now), "ocsp.next_update.past");
    }

    #[test]
    fn check_input_refuses_revocation_after_this_update() {
        let mut input = good(&[1]);
        input.status = CertStatus::Revoked {
            revoked_at: input.this_update + Duration::from_secs(1),
            reason: None,
        };
        assert_eq!(
            refusal(&input, SystemTime::now()),
            "ocsp.revocation_time.after_this_update"
        );
    }

    #[test]
    fn check_input_refuses_reasons_br_7_2_2_forbids() {
        let now = SystemTime::now();
        for (reason, code) in [
            (CrlReason::Unspecified, "ocsp.reason.unspecified"),
            (CrlReason::CertificateHold, "ocsp.reason.certificate_hold"),
            (CrlReason::CaCompromise, "ocsp.reason.not_allowed"),
            (CrlReason::RemoveFromCRL, "ocsp.reason.not_allowed"),
            (CrlReason::AaCompromise, "ocsp.reason.not_allowed"),
        ] {
            assert_eq!(
                refusal(&revoked(&[1], Some(reason)), now),
                code,
                "{reason:?}"
            );
        }
        for reason in [
            CrlReason::KeyCompromise,
            CrlReason::AffiliationChanged,
            CrlReason::Superseded,
            CrlReason::CessationOfOperation,
            CrlReason::PrivilegeWithdrawn,
        ] {
            check_input(&revoked(&[1], Some(reason)), now).unwrap();
        }
    }

    #[test]
    fn decode_refuses_other_shapes() {
        // An OCSPResponse with status tryLater and no responseBytes: 30 03 0a 01 03.
        let err = decode_response(&[0x30, 0x03, 0x0a, 0x01, 0x03]).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{err}");
        assert!(matches!(decode_response(b"not DER"), Err(Error::Der(_))));
    }
}
