//! The OCSP response structures of RFC 6960 4.2.1 (and CertID of 4.1.1), as `der` derives.
//!
//! Written here rather than taken from `x509-ocsp`, whose 0.2 line is built on `x509-cert` 0.2
//! and `der` 0.7; strongroom is on `x509-cert` 0.3 and `der` 0.8. Only what a responder needs
//! to produce and re-read a basic response is here; requests are not.

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, GeneralizedTime, Null, OctetString};
use der::{Choice, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// RFC 6960 4.2.1:
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus         OCSPResponseStatus,
///    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OcspResponse {
    /// Whether the request was processed; only `successful` carries `response_bytes`.
    pub response_status: OcspResponseStatus,
    /// The response proper.
    #[asn1(context_specific = "0", optional = "true")]
    pub response_bytes: Option<ResponseBytes>,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// OCSPResponseStatus ::= ENUMERATED {
///     successful            (0),  -- Response has valid confirmations
///     malformedRequest      (1),  -- Illegal confirmation request
///     internalError         (2),  -- Internal error in issuer
///     tryLater              (3),  -- Try again later
///                                 -- (4) is not used
///     sigRequired           (5),  -- Must sign the request
///     unauthorized          (6)   -- Request unauthorized
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
pub enum OcspResponseStatus {
    /// The response has valid confirmations.
    Successful = 0,
    /// The request was malformed.
    MalformedRequest = 1,
    /// The responder failed internally.
    InternalError = 2,
    /// The responder cannot answer now.
    TryLater = 3,
    /// The request must be signed.
    SigRequired = 5,
    /// The client may not ask this responder (also the RFC 5019 2.2.3 answer for an issuer the
    /// responder does not serve).
    Unauthorized = 6,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// ResponseBytes ::=       SEQUENCE {
///     responseType   OBJECT IDENTIFIER,
///     response       OCTET STRING }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseBytes {
    /// `id-pkix-ocsp-basic` for a [`BasicOcspResponse`].
    pub response_type: ObjectIdentifier,
    /// The DER of the response of that type.
    pub response: OctetString,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// BasicOCSPResponse       ::= SEQUENCE {
///    tbsResponseData      ResponseData,
///    signatureAlgorithm   AlgorithmIdentifier,
///    signature            BIT STRING,
///    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct BasicOcspResponse {
    /// The signed part.
    pub tbs_response_data: ResponseData,
    /// The algorithm `signature` was made with.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature over the DER of `tbs_response_data`.
    pub signature: BitString,
    /// Certificates that help the client verify the signature: a delegated responder's
    /// certificate (RFC 6960 4.2.2.2).
    #[asn1(context_specific = "0", optional = "true")]
    pub certs: Option<Vec<Certificate>>,
}

/// [`BasicOcspResponse`] with `tbsResponseData` kept as the bytes received, so that a signature
/// can be checked over exactly those bytes and compared with what was signed.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RawBasicOcspResponse<'a> {
    /// The DER of `tbsResponseData`, tag and length included.
    pub tbs_response_data: AnyRef<'a>,
    /// The algorithm `signature` was made with.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature.
    pub signature: BitString,
    /// Certificates for the client.
    #[asn1(context_specific = "0", optional = "true")]
    pub certs: Option<Vec<Certificate>>,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// ResponseData ::= SEQUENCE {
///    version              [0] EXPLICIT Version DEFAULT v1,
///    responderID              ResponderID,
///    producedAt               GeneralizedTime,
///    responses                SEQUENCE OF SingleResponse,
///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
/// ```
///
/// `version` is always v1 (`Version ::= INTEGER { v1(0) }`), which DER leaves out because it is
/// the default (X.690 11.5).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseData {
    /// v1.
    #[asn1(context_specific = "0", default = "Default::default")]
    pub version: Version,
    /// Who signed: the hash of the responder's key, or its name.
    pub responder_id: ResponderId,
    /// When the response was signed (RFC 6960 4.2.2.1).
    pub produced_at: GeneralizedTime,
    /// One response per certificate asked about.
    pub responses: Vec<SingleResponse>,
    /// Response extensions (a nonce, RFC 6960 4.4.1); strongroom sends none.
    #[asn1(context_specific = "1", optional = "true")]
    pub response_extensions: Option<Extensions>,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// ResponderID ::= CHOICE {
///    byName               [1] Name,
///    byKey                [2] KeyHash }
///
/// KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key
///                          -- (i.e., the SHA-1 hash of the value of the
///                          -- BIT STRING subjectPublicKey [excluding
///                          -- the tag, length, and number of unused
///                          -- bits] in the responder's certificate)
/// ```
///
/// (The module is EXPLICIT TAGS, so both alternatives are explicitly tagged.)
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum ResponderId {
    /// The responder certificate's subject.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    /// SHA-1 of the responder's subjectPublicKey BIT STRING value (RFC 6960 4.2.2.3).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// RFC 6960 4.2.1:
///
/// ```text
/// SingleResponse ::= SEQUENCE {
///    certID                       CertID,
///    certStatus                   CertStatus,
///    thisUpdate                   GeneralizedTime,
///    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
///    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SingleResponse {
    /// The certificate this response is about.
    pub cert_id: CertId,
    /// Its status.
    pub cert_status: CertStatus,
    /// When the status was known to be correct (RFC 6960 4.2.2.1).
    pub this_update: GeneralizedTime,
    /// When newer information will be available (RFC 6960 4.2.2.1).
    #[asn1(context_specific = "0", optional = "true")]
    pub next_update: Option<GeneralizedTime>,
    /// Per-response extensions; strongroom sends none.
    #[asn1(context_specific = "1", optional = "true")]
    pub single_extensions: Option<Extensions>,
}

/// RFC 6960 4.1.1:
///
/// ```text
/// CertID          ::=     SEQUENCE {
///     hashAlgorithm       AlgorithmIdentifier,
///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
///     serialNumber        CertificateSerialNumber }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    /// The hash of the two hashes below; strongroom uses SHA-1, which is what clients send.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the DER of the issuer's subject name.
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's subjectPublicKey BIT STRING value (no tag, length or unused-bits
    /// octet).
    pub issuer_key_hash: OctetString,
    /// The certificate's serial number.
    pub serial_number: SerialNumber,
}

/// RFC 6960 4.2.1:
///
/// ```text
/// CertStatus ::= CHOICE {
///     good        [0]     IMPLICIT NULL,
///     revoked     [1]     IMPLICIT RevokedInfo,
///     unknown     [2]     IMPLICIT UnknownInfo }
///
/// UnknownInfo ::= NULL
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum CertStatus {
    /// Not revoked.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// Revoked (permanently or, for certificateHold, not).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// The responder does not know the certificate.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// RFC 6960 4.2.1:
///
/// ```text
/// RevokedInfo ::= SEQUENCE {
///     revocationTime              GeneralizedTime,
///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RevokedInfo {
    /// When the certificate was revoked.
    pub revocation_time: GeneralizedTime,
    /// Why; absent for unspecified (BR 7.2.2, applied to OCSP by BR 7.3).
    #[asn1(context_specific = "0", optional = "true")]
    pub revocation_reason: Option<CrlReason>,
}
