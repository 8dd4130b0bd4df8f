//! Software signature verification for certificates, CRLs, CSRs and raw signatures.
//!
//! Every signature the HSM produces is checked here, with the issuer's public key, before
//! anything is written or released; certificates, CRLs and CSRs that come in from outside are
//! checked the same way.
//!
//! ```text
//!   SubjectPublicKeyInfo ──VerifyingKey::from_spki──▶ VerifyingKey ─┐
//!   AlgorithmIdentifier ──SignatureAlgorithm::from_identifier──────┤
//!   signed DER (streamed into the hash, never buffered) ───────────┼─▶ verify ─▶ Ok(()) | Error
//!   signature bytes ───────────────────────────────────────────────┘
//! ```
//!
//! Supported signature algorithms:
//!
//! - `sha256WithRSAEncryption`, `sha384WithRSAEncryption`, `sha512WithRSAEncryption`
//!   (RSASSA-PKCS1-v1_5, RFC 8017 §8.2), parameters exactly NULL;
//! - `ecdsa-with-SHA256`, `ecdsa-with-SHA384` (RFC 5758 §3.2), parameters absent, signature a
//!   DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3), on P-256 or P-384 keys. Either hash is accepted on
//!   either curve (FIPS 186-5 §6.4.2 truncates or pads the digest); which pairs to *issue* with is
//!   the caller's policy, not this module's.
//!
//! This module checks signatures only. It does not decide whether a key is good enough to
//! certify (see `crate::keycheck`), nor does it check names, validity periods or extensions.
//!
//! The arithmetic is AWS-LC's (through `aws-lc-rs`), for every key type and every signature,
//! including each one the HSM returns. The key's structure is checked with the RustCrypto types
//! first, for precise errors. For the hot path (one issuer key, many signatures), parse the key
//! once ([`VerifyingKey::from_spki`]) and reuse it: AWS-LC's parsed key is kept, so each
//! signature costs one hash and one verification.

use core::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::Encode;
use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::request::CertReq;

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signature algorithm OID is not one of the five this module verifies.
    #[error("unsupported signature algorithm {}", oid_display(.0))]
    UnsupportedAlgorithm(ObjectIdentifier),

    /// The signature algorithm is known but its `parameters` field is not the one encoding its
    /// specification allows.
    #[error("{algorithm}: {rule}")]
    AlgorithmParameters {
        /// The algorithm whose parameters are wrong.
        algorithm: SignatureAlgorithm,
        /// The rule that was broken, with its source.
        rule: &'static str,
    },

    /// The public key's algorithm OID is neither `rsaEncryption` nor `id-ecPublicKey`.
    #[error("unsupported public key algorithm {}", oid_display(.0))]
    UnsupportedKeyAlgorithm(ObjectIdentifier),

    /// The EC public key is on a curve other than P-256 or P-384.
    #[error("unsupported elliptic curve {}", oid_display(.0))]
    UnsupportedCurve(ObjectIdentifier),

    /// The public key could not be decoded or is not a valid key of its type.
    #[error("malformed {kind} public key: {reason}")]
    MalformedKey {
        /// `"RSA"` or `"EC"`.
        kind: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The signature algorithm needs a different kind of key than the one given.
    #[error("key/algorithm mismatch: {algorithm} algorithm with {key} key")]
    KeyAlgorithmMismatch {
        /// The algorithm family of the signature: `"RSA PKCS#1 v1.5"` or `"ECDSA"`.
        algorithm: &'static str,
        /// The kind of key supplied: `"RSA"`, `"EC P-256"` or `"EC P-384"`.
        key: &'static str,
    },

    /// The signature bytes are not well formed for the algorithm.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),

    /// The outer `signatureAlgorithm` differs from the algorithm inside the signed data.
    #[error(
        "{structure}: signatureAlgorithm differs from the signature field of the signed data ({rule})"
    )]
    AlgorithmFieldMismatch {
        /// `"certificate"` or `"CRL"`.
        structure: &'static str,
        /// The rule that requires them to match.
        rule: &'static str,
    },

    /// The signed data could not be DER-encoded for hashing.
    #[error("cannot DER-encode the {structure} to verify")]
    Encode {
        /// `"TBSCertificate"`, `"TBSCertList"` or `"CertificationRequestInfo"`.
        structure: &'static str,
        /// The encoder's error.
        #[source]
        source: der::Error,
    },

    /// The signature is well formed but does not verify.
    #[error("{0} does not verify under the {signer} key", signer = .0.signer())]
    BadSignature(Signed),
}

/// What a failed signature was over, so that [`Error::BadSignature`] can say which key failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signed {
    /// A raw message given to [`verify_signature`] or [`VerifyingKey::verify`].
    Message,
    /// A certificate's `TBSCertificate`.
    Certificate,
    /// A CRL's `TBSCertList`.
    Crl,
    /// A PKCS#10 request's `CertificationRequestInfo` (proof of possession).
    Csr,
}

impl Signed {
    fn signer(self) -> &'static str {
        match self {
            Self::Message => "signer",
            Self::Certificate | Self::Crl => "issuer",
            Self::Csr => "request's own",
        }
    }
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Message => "signature",
            Self::Certificate => "certificate signature",
            Self::Crl => "CRL signature",
            Self::Csr => "CSR self-signature (proof of possession)",
        })
    }
}

pub use crate::alg::SignatureAlgorithm;

impl SignatureAlgorithm {
    /// Recognises a signature `AlgorithmIdentifier`, checking its parameters.
    ///
    /// # Errors
    /// [`Error::UnsupportedAlgorithm`] for any other OID; [`Error::AlgorithmParameters`] when
    /// the parameters are not NULL (RSA) or not absent (ECDSA).
    pub fn from_identifier(algorithm: &AlgorithmIdentifierOwned) -> Result<Self, Error> {
        let alg = match algorithm.oid {
            SHA_256_WITH_RSA_ENCRYPTION => Self::RsaPkcs1Sha256,
            SHA_384_WITH_RSA_ENCRYPTION => Self::RsaPkcs1Sha384,
            SHA_512_WITH_RSA_ENCRYPTION => Self::RsaPkcs1Sha512,
            ECDSA_WITH_SHA_256 => Self::EcdsaSha256,
            ECDSA_WITH_SHA_384 => Self::EcdsaSha384,
            other => return Err(Error::UnsupportedAlgorithm(other)),
        };
        if alg.is_rsa() {
            // RFC 4055 §5 and the Mozilla Root Store Policy §5.1.3 byte-exact encodings: the
            // parameters of the PKCS#1 v1.5 signature OIDs are an explicit NULL.
            if !algorithm.parameters.as_ref().is_some_and(der::Any::is_null) {
                return Err(Error::AlgorithmParameters {
                    algorithm: alg,
                    rule: "parameters must be NULL (RFC 4055 §5, Mozilla Root Store Policy §5.1.3)",
                });
            }
        } else if algorithm.parameters.is_some() {
            // RFC 5758 §3.2: "the encoding MUST omit the parameters field".
            return Err(Error::AlgorithmParameters {
                algorithm: alg,
                rule: "parameters must be absent (RFC 5758 §3.2)",
            });
        }
        Ok(alg)
    }

    fn hash(self) -> HashAlg {
        match self {
            Self::RsaPkcs1Sha256 | Self::EcdsaSha256 => HashAlg::Sha256,
            Self::RsaPkcs1Sha384 | Self::EcdsaSha384 => HashAlg::Sha384,
            Self::RsaPkcs1Sha512 => HashAlg::Sha512,
        }
    }
}

/// A public key parsed once and ready to verify many signatures.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    inner: KeyInner,
}

#[derive(Clone)]
enum KeyInner {
    Rsa(Keys),
    P256(Keys),
    P384(Keys),
}

/// The key parsed by AWS-LC once for each algorithm it may verify.
type Keys = Vec<(SignatureAlgorithm, aws_lc_rs::signature::ParsedPublicKey)>;

impl fmt::Debug for KeyInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.kind())
    }
}

/// Parses `bytes` (a PKCS#1 RSAPublicKey or a SEC1 point) for each (algorithm, AWS-LC
/// algorithm) pair.
fn parse_for(
    bytes: &[u8],
    kind: &'static str,
    algs: &[(
        SignatureAlgorithm,
        &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    )],
) -> Result<Keys, Error> {
    algs.iter()
        .map(|(alg, verification)| {
            aws_lc_rs::signature::ParsedPublicKey::new(*verification, bytes)
                .map(|key| (*alg, key))
                .map_err(|_| Error::MalformedKey {
                    kind,
                    reason: "rejected for verification (RSA needs 2048 to 8192 bits)",
                })
        })
        .collect()
}

impl KeyInner {
    fn kind(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RSA",
            Self::P256(_) => "EC P-256",
            Self::P384(_) => "EC P-384",
        }
    }
}

impl VerifyingKey {
    /// Parses an RSA (`rsaEncryption`) or EC (`id-ecPublicKey`, P-256 or P-384) public key.
    ///
    /// This only checks that the key is a well-formed key of a supported type (for RSA:
    /// 1024 to 8192 bits, odd exponent below 2^33; for EC: a point on the curve). Whether the
    /// key is acceptable for issuance is `crate::keycheck`'s job.
    ///
    /// # Errors
    /// [`Error::UnsupportedKeyAlgorithm`], [`Error::UnsupportedCurve`] or
    /// [`Error::MalformedKey`].
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, Error> {
        let inner = match spki.algorithm.oid {
            RSA_ENCRYPTION => {
                // RFC 3279 §2.3.1: the parameters of rsaEncryption MUST be NULL.
                if !spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .is_some_and(der::Any::is_null)
                {
                    return Err(malformed_rsa(
                        "rsaEncryption parameters must be NULL (RFC 3279 §2.3.1)",
                    ));
                }
                let bytes = spki
                    .subject_public_key
                    .as_bytes()
                    .ok_or_else(|| malformed_rsa("subjectPublicKey BIT STRING has unused bits"))?;
                // Checked here for a precise error, then parsed by AWS-LC for verifying.
                let _ = parse_rsa(bytes)?;
                use aws_lc_rs::signature as v;
                KeyInner::Rsa(parse_for(
                    bytes,
                    "RSA",
                    &[
                        (
                            SignatureAlgorithm::RsaPkcs1Sha256,
                            &v::RSA_PKCS1_2048_8192_SHA256,
                        ),
                        (
                            SignatureAlgorithm::RsaPkcs1Sha384,
                            &v::RSA_PKCS1_2048_8192_SHA384,
                        ),
                        (
                            SignatureAlgorithm::RsaPkcs1Sha512,
                            &v::RSA_PKCS1_2048_8192_SHA512,
                        ),
                    ],
                )?)
            }
            ID_EC_PUBLIC_KEY => {
                // RFC 5480 §2.1.1: the parameters are ECParameters, and only the namedCurve
                // choice is allowed.
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or(Error::MalformedKey {
                        kind: "EC",
                        reason: "id-ecPublicKey parameters must be a namedCurve OID (RFC 5480 §2.1.1)",
                    })?;
                let point = spki
                    .subject_public_key
                    .as_bytes()
                    .ok_or(Error::MalformedKey {
                        kind: "EC",
                        reason: "subjectPublicKey BIT STRING has unused bits",
                    })?;
                let bad_point = Error::MalformedKey {
                    kind: "EC",
                    reason: "not a valid SEC1 point on the curve (RFC 5480 §2.2)",
                };
                use aws_lc_rs::signature as v;
                // The point is validated by the curve's own arithmetic (on the curve, not the
                // identity), then parsed by AWS-LC for verifying.
                match curve {
                    SECP_256_R_1 => {
                        let _ = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|_| bad_point)?;
                        KeyInner::P256(parse_for(
                            point,
                            "EC P-256",
                            &[
                                (SignatureAlgorithm::EcdsaSha256, &v::ECDSA_P256_SHA256_ASN1),
                                (SignatureAlgorithm::EcdsaSha384, &v::ECDSA_P256_SHA384_ASN1),
                            ],
                        )?)
                    }
                    SECP_384_R_1 => {
                        let _ = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                            .map_err(|_| bad_point)?;
                        KeyInner::P384(parse_for(
                            point,
                            "EC P-384",
                            &[
                                (SignatureAlgorithm::EcdsaSha256, &v::ECDSA_P384_SHA256_ASN1),
                                (SignatureAlgorithm::EcdsaSha384, &v::ECDSA_P384_SHA384_ASN1),
                            ],
                        )?)
                    }
                    other => return Err(Error::UnsupportedCurve(other)),
                }
            }
            other => return Err(Error::UnsupportedKeyAlgorithm(other)),
        };
        Ok(Self { inner })
    }

    /// Verifies `signature` over `message` with this key, using `algorithm`.
    ///
    /// # Errors
    /// Any algorithm error of [`SignatureAlgorithm::from_identifier`],
    /// [`Error::KeyAlgorithmMismatch`], [`Error::MalformedSignature`], or
    /// [`Error::BadSignature`] with [`Signed::Message`].
    pub fn verify(
        &self,
        algorithm: &AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        let alg = SignatureAlgorithm::from_identifier(algorithm)?;
        self.check_pairing(alg)?;
        let mut hasher = Hasher::new(alg.hash());
        hasher.update(message);
        self.verify_prehash(alg, &hasher.finalize(), signature, Signed::Message)
    }

    /// Verifies a certificate's signature with this (issuer) key.
    ///
    /// Checks first that `signatureAlgorithm` equals `tbsCertificate.signature`
    /// (RFC 5280 §4.1.1.2), then verifies the signature over the DER of `tbsCertificate`.
    ///
    /// # Errors
    /// [`Error::AlgorithmFieldMismatch`], [`Error::Encode`], or any error of [`Self::verify`]
    /// (with [`Signed::Certificate`]).
    pub fn verify_certificate(&self, cert: &Certificate) -> Result<(), Error> {
        // RFC 5280 §4.1.1.2: signatureAlgorithm "MUST contain the same algorithm identifier as
        // the signature field in the sequence tbsCertificate".
        if cert.signature_algorithm() != cert.tbs_certificate().signature() {
            return Err(Error::AlgorithmFieldMismatch {
                structure: "certificate",
                rule: "RFC 5280 §4.1.1.2",
            });
        }
        self.verify_encoded(
            cert.signature_algorithm(),
            cert.tbs_certificate(),
            "TBSCertificate",
            cert.signature(),
            Signed::Certificate,
        )
    }

    /// Verifies a CRL's signature with this (issuer) key.
    ///
    /// Checks first that `signatureAlgorithm` equals `tbsCertList.signature`
    /// (RFC 5280 §5.1.1.2), then verifies the signature over the DER of `tbsCertList`.
    ///
    /// # Errors
    /// [`Error::AlgorithmFieldMismatch`], [`Error::Encode`], or any error of [`Self::verify`]
    /// (with [`Signed::Crl`]).
    pub fn verify_crl(&self, crl: &CertificateList) -> Result<(), Error> {
        // RFC 5280 §5.1.1.2: signatureAlgorithm "MUST contain the same algorithm identifier as
        // the signature field in the sequence tbsCertList".
        if crl.signature_algorithm != crl.tbs_cert_list.signature {
            return Err(Error::AlgorithmFieldMismatch {
                structure: "CRL",
                rule: "RFC 5280 §5.1.1.2",
            });
        }
        self.verify_encoded(
            &crl.signature_algorithm,
            &crl.tbs_cert_list,
            "TBSCertList",
            &crl.signature,
            Signed::Crl,
        )
    }

    /// Hashes the DER encoding of `tbs` (streamed into the hash, not buffered) and verifies
    /// the BIT STRING `signature` over it.
    fn verify_encoded(
        &self,
        algorithm: &AlgorithmIdentifierOwned,
        tbs: &impl Encode,
        structure: &'static str,
        signature: &BitString,
        signed: Signed,
    ) -> Result<(), Error> {
        let alg = SignatureAlgorithm::from_identifier(algorithm)?;
        self.check_pairing(alg)?;
        let signature = signature.as_bytes().ok_or(Error::MalformedSignature(
            "signature BIT STRING has unused bits",
        ))?;
        let mut hasher = Hasher::new(alg.hash());
        tbs.encode(&mut hasher)
            .map_err(|source| Error::Encode { structure, source })?;
        self.verify_prehash(alg, &hasher.finalize(), signature, signed)
    }

    /// Refuses an algorithm that needs another kind of key.
    fn check_pairing(&self, alg: SignatureAlgorithm) -> Result<(), Error> {
        let rsa_key = matches!(self.inner, KeyInner::Rsa(_));
        if alg.is_rsa() == rsa_key {
            return Ok(());
        }
        Err(Error::KeyAlgorithmMismatch {
            algorithm: if alg.is_rsa() {
                "RSA PKCS#1 v1.5"
            } else {
                "ECDSA"
            },
            key: self.inner.kind(),
        })
    }

    /// Verifies `signature` over a digest already computed with `alg`'s hash. The caller has
    /// checked the key/algorithm pairing.
    fn verify_prehash(
        &self,
        alg: SignatureAlgorithm,
        digest: &aws_lc_rs::digest::Digest,
        signature: &[u8],
        signed: Signed,
    ) -> Result<(), Error> {
        let keys = match &self.inner {
            KeyInner::Rsa(k) | KeyInner::P256(k) | KeyInner::P384(k) => k,
        };
        let key = keys
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key)
            .ok_or(Error::KeyAlgorithmMismatch {
                algorithm: if alg.is_rsa() {
                    "RSA PKCS#1 v1.5"
                } else {
                    "ECDSA"
                },
                key: self.inner.kind(),
            })?;
        // RFC 3279 §2.2.3: an ECDSA signature is the DER SEQUENCE { r INTEGER, s INTEGER };
        // checked strictly so a malformed one is reported as such, not as a bad signature.
        match &self.inner {
            KeyInner::P256(_) => {
                let _ = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| Error::MalformedSignature(ECDSA_DER))?;
            }
            KeyInner::P384(_) => {
                let _ = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|_| Error::MalformedSignature(ECDSA_DER))?;
            }
            KeyInner::Rsa(_) => {}
        }
        // RFC 8017 §8.2.2 (EMSA-PKCS1-v1_5 with the hash's DigestInfo) and FIPS 186-5 ECDSA,
        // computed by AWS-LC.
        key.verify_digest_sig(digest, signature)
            .map_err(|_| Error::BadSignature(signed))
    }
}

const ECDSA_DER: &str =
    "ECDSA signature is not a DER SEQUENCE of two INTEGERs in range (RFC 3279 §2.2.3)";

/// Verifies `signature` over `message` under `signer`'s public key with `algorithm`.
///
/// Parses the key on every call; to verify many signatures with one key, use
/// [`VerifyingKey`].
///
/// # Errors
/// Any error of [`VerifyingKey::from_spki`] or [`VerifyingKey::verify`].
pub fn verify_signature(
    signer: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    VerifyingKey::from_spki(signer)?.verify(algorithm, message, signature)
}

/// Verifies that `cert` was signed by the holder of `issuer`.
///
/// # Errors
/// Any error of [`VerifyingKey::from_spki`] or [`VerifyingKey::verify_certificate`].
pub fn verify_certificate(
    cert: &Certificate,
    issuer: &SubjectPublicKeyInfoOwned,
) -> Result<(), Error> {
    VerifyingKey::from_spki(issuer)?.verify_certificate(cert)
}

/// Verifies that `crl` was signed by the holder of `issuer`.
///
/// # Errors
/// Any error of [`VerifyingKey::from_spki`] or [`VerifyingKey::verify_crl`].
pub fn verify_crl(crl: &CertificateList, issuer: &SubjectPublicKeyInfoOwned) -> Result<(), Error> {
    VerifyingKey::from_spki(issuer)?.verify_crl(crl)
}

/// Verifies a PKCS#10 request's proof of possession: its signature over the DER of
/// `certificationRequestInfo` under the public key that the request itself carries
/// (RFC 2986 §3, §4.2).
///
/// # Errors
/// Any error of [`VerifyingKey::from_spki`] on the request's key, [`Error::Encode`], or any
/// error of [`VerifyingKey::verify`] (with [`Signed::Csr`]).
pub fn verify_csr(csr: &CertReq) -> Result<(), Error> {
    VerifyingKey::from_spki(&csr.info.public_key)?.verify_encoded(
        &csr.algorithm,
        &csr.info,
        "CertificationRequestInfo",
        &csr.signature,
        Signed::Csr,
    )
}

fn malformed_rsa(reason: &'static str) -> Error {
    Error::MalformedKey {
        kind: "RSA",
        reason,
    }
}

/// Decodes a PKCS#1 `RSAPublicKey` (RFC 8017 §A.1.1) into a key ready to verify.
fn parse_rsa(der_bytes: &[u8]) -> Result<rsa::PublicKey, Error> {
    use der::Decode as _;
    let key = rsa::pkcs1::RsaPublicKeyRef::from_der(der_bytes).map_err(|_| {
        malformed_rsa("RSAPublicKey is not a DER SEQUENCE of two positive INTEGERs")
    })?;
    let n = rsa::BoxedUint::from_be_slice_vartime(key.modulus.as_bytes());
    let e = rsa::BoxedUint::from_be_slice_vartime(key.public_exponent.as_bytes());
    rsa::PublicKey::new(n, e).map_err(|err| {
        malformed_rsa(match err {
            rsa::Error::ModulusTooSmall => "modulus is shorter than 1024 bits",
            rsa::Error::ModulusTooLarge => "modulus is longer than 8192 bits",
            rsa::Error::PublicExponentTooSmall => "public exponent is below 2",
            rsa::Error::PublicExponentTooLarge => "public exponent is 2^33 or more",
            rsa::Error::InvalidModulus => "modulus is even, zero, or not above the exponent",
            rsa::Error::InvalidExponent => "public exponent is even",
            _ => "key rejected by the RSA implementation",
        })
    })
}

/// The hash functions the supported algorithms use.
#[derive(Clone, Copy)]
enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// A running hash; also a [`der::Writer`], so DER can be encoded straight into it.
struct Hasher(aws_lc_rs::digest::Context);

impl Hasher {
    fn new(alg: HashAlg) -> Self {
        use aws_lc_rs::digest;
        Hasher(digest::Context::new(match alg {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        }))
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> aws_lc_rs::digest::Digest {
        self.0.finish()
    }
}

impl der::Writer for Hasher {
    fn write(&mut self, slice: &[u8]) -> der::Result<()> {
        self.update(slice);
        Ok(())
    }
}

/// Shows an OID with its registered name when `const-oid` knows it.
pub(crate) fn oid_display(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use der::{Decode, DecodePem};

    use super::*;

    fn reference(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reference-certs")
            .join(format!("{name}.pem"))
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    }

    fn cert(name: &str) -> Certificate {
        Certificate::from_pem(std::fs::read(reference(name)).unwrap()).unwrap()
    }

    fn key(name: &str) -> SubjectPublicKeyInfoOwned {
        cert(name)
            .tbs_certificate()
            .subject_public_key_info()
            .clone()
    }

    const X1: &str = "isrg-root-x1";
    const X2: &str = "isrg-root-x2";
    const R10: &str = "lets-encrypt-r10-signed-by-isrg-root-x1";
    const R11: &str = "lets-encrypt-r11-signed-by-isrg-root-x1";
    const E5: &str = "lets-encrypt-e5-signed-by-isrg-root-x2";
    const E5_CROSS: &str = "lets-encrypt-e5-cross-signed-by-isrg-root-x1";
    const E6: &str = "lets-encrypt-e6-signed-by-isrg-root-x2";
    const DST_X3: &str = "dst-root-ca-x3";

    /// Flips the lowest bit of the first byte after the first occurrence of `marker` in `der`.
    fn flip_after(der: &mut [u8], marker: &[u8]) {
        let at = der
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("marker present");
        der[at + marker.len() - 1] ^= 1;
    }

    #[test]
    fn r10_verifies_under_isrg_root_x1() {
        verify_certificate(&cert(R10), &key(X1)).unwrap();
    }

    #[test]
    fn e5_verifies_under_isrg_root_x2() {
        verify_certificate(&cert(E5), &key(X2)).unwrap();
    }

    #[test]
    fn e5_cross_signed_verifies_under_isrg_root_x1() {
        verify_certificate(&cert(E5_CROSS), &key(X1)).unwrap();
    }

    #[test]
    fn isrg_root_x1_self_signature_verifies() {
        verify_certificate(&cert(X1), &key(X1)).unwrap();
    }

    #[test]
    fn one_parsed_key_verifies_many_certificates() {
        let x1 = VerifyingKey::from_spki(&key(X1)).unwrap();
        for name in [R10, R11, E5_CROSS, X1] {
            x1.verify_certificate(&cert(name)).unwrap();
        }
    }

    #[test]
    fn r10_under_isrg_root_x2_is_a_key_algorithm_mismatch() {
        let err = verify_certificate(&cert(R10), &key(X2)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::KeyAlgorithmMismatch {
                    algorithm: "RSA PKCS#1 v1.5",
                    key: "EC P-384"
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn r10_under_another_rsa_key_does_not_verify() {
        let err = verify_certificate(&cert(R10), &key(R11)).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Certificate)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "certificate signature does not verify under the issuer key"
        );
    }

    #[test]
    fn e5_under_another_p384_key_does_not_verify() {
        let err = verify_certificate(&cert(E5), &key(E6)).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Certificate)),
            "{err:?}"
        );
    }

    #[test]
    fn flipped_bit_in_tbs_does_not_verify() {
        // Subject CN "R10" becomes "R11": one bit, still a well-formed certificate.
        let mut der = cert(R10).to_der().unwrap();
        flip_after(&mut der, b"R10");
        let tampered = Certificate::from_der(&der).unwrap();
        let err = verify_certificate(&tampered, &key(X1)).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Certificate)),
            "{err:?}"
        );

        let mut der = cert(E5).to_der().unwrap();
        flip_after(&mut der, b"E5");
        let tampered = Certificate::from_der(&der).unwrap();
        let err = verify_certificate(&tampered, &key(X2)).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Certificate)),
            "{err:?}"
        );
    }

    #[test]
    fn flipped_bit_in_signature_does_not_verify() {
        let original = cert(R10);
        let mut der = original.to_der().unwrap();
        let last = der.len() - 1;
        der[last] ^= 0x80;
        let tampered = Certificate::from_der(&der).unwrap();
        assert_ne!(tampered.signature(), original.signature());
        let err = verify_certificate(&tampered, &key(X1)).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Certificate)),
            "{err:?}"
        );
    }

    #[test]
    fn outer_algorithm_differing_from_tbs_algorithm_is_refused() {
        // sha256WithRSAEncryption ends in 0x0b; change only the outer (last) occurrence.
        let oid = SHA_256_WITH_RSA_ENCRYPTION.as_bytes();
        let mut der = cert(R10).to_der().unwrap();
        let at = der.windows(oid.len()).rposition(|w| w == oid).unwrap();
        der[at + oid.len() - 1] = 0x0c;
        let tampered = Certificate::from_der(&der).unwrap();
        let err = verify_certificate(&tampered, &key(X1)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::AlgorithmFieldMismatch {
                    structure: "certificate",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn sha1_with_rsa_is_unsupported_and_named() {
        // DST Root CA X3 is self-signed with sha1WithRSAEncryption.
        let err = verify_certificate(&cert(DST_X3), &key(DST_X3)).unwrap_err();
        assert!(matches!(err, Error::UnsupportedAlgorithm(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("unsupported signature algorithm"),
            "{text}"
        );
        assert!(text.contains("1.2.840.113549.1.1.5"), "{text}");
    }

    #[test]
    fn raw_message_verifies_with_verify_signature() {
        let r10 = cert(R10);
        let tbs = r10.tbs_certificate().to_der().unwrap();
        let sig = r10.signature().raw_bytes();
        verify_signature(&key(X1), r10.signature_algorithm(), &tbs, sig).unwrap();

        let mut changed = tbs.clone();
        changed[10] ^= 1;
        let err = verify_signature(&key(X1), r10.signature_algorithm(), &changed, sig).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature(Signed::Message)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "signature does not verify under the signer key"
        );
    }

    #[test]
    fn ecdsa_algorithm_with_rsa_key_is_a_mismatch() {
        let ecdsa = AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_384,
            parameters: None,
        };
        let err = verify_signature(&key(X1), &ecdsa, b"message", &[0x30, 0x00]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "key/algorithm mismatch: ECDSA algorithm with RSA key"
        );
    }

    #[test]
    fn algorithm_parameters_are_checked() {
        let rsa_absent = AlgorithmIdentifierOwned {
            oid: SHA_256_WITH_RSA_ENCRYPTION,
            parameters: None,
        };
        let err = SignatureAlgorithm::from_identifier(&rsa_absent).unwrap_err();
        assert!(err.to_string().contains("parameters must be NULL"), "{err}");

        let ecdsa_null = AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: Some(der::Any::null()),
        };
        let err = SignatureAlgorithm::from_identifier(&ecdsa_null).unwrap_err();
        assert!(
            err.to_string().contains("parameters must be absent"),
            "{err}"
        );
    }

    #[test]
    fn a_p256_key_verifies_rustcrypto_signatures_and_refuses_others() {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        let signing = p256::ecdsa::SigningKey::from_bytes(&[0x5a; 32].into()).unwrap();
        let spki_der = signing.verifying_key().to_public_key_der().unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap();
        let key = VerifyingKey::from_spki(&spki).unwrap();
        assert!(matches!(&key.inner, KeyInner::P256(_)));
        let alg = |oid| AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        };
        let message = b"a TBSCertificate, say";
        let sig: p256::ecdsa::Signature = signing.sign(message);
        let der = sig.to_der();
        {
            key.verify(&alg(ECDSA_WITH_SHA_256), message, der.as_bytes())
                .unwrap();
            let err = key
                .verify(&alg(ECDSA_WITH_SHA_256), b"another message", der.as_bytes())
                .unwrap_err();
            assert!(
                matches!(err, Error::BadSignature(Signed::Message)),
                "{err:?}"
            );
            // The same signature under the other hash is a different digest.
            let err = key
                .verify(&alg(ECDSA_WITH_SHA_384), message, der.as_bytes())
                .unwrap_err();
            assert!(
                matches!(err, Error::BadSignature(Signed::Message)),
                "{err:?}"
            );
            let mut trailing = der.as_bytes().to_vec();
            trailing.push(0);
            let err = key
                .verify(&alg(ECDSA_WITH_SHA_256), message, &trailing)
                .unwrap_err();
            assert!(matches!(err, Error::MalformedSignature(_)), "{err:?}");
            let rsa = AlgorithmIdentifierOwned {
                oid: SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(der::Any::null()),
            };
            let err = key.verify(&rsa, message, der.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::KeyAlgorithmMismatch { .. }), "{err:?}");
        }
        // ecdsa-with-SHA384 on P-256: the leftmost 256 bits of the SHA-384 digest (FIPS 186-5).
        let sig384: p256::ecdsa::Signature = {
            use p256::ecdsa::signature::hazmat::PrehashSigner as _;
            use sha2::Digest as _;
            signing
                .sign_prehash(&sha2::Sha384::digest(message))
                .unwrap()
        };
        key.verify(
            &alg(ECDSA_WITH_SHA_384),
            message,
            sig384.to_der().as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn malformed_ecdsa_signature_is_reported() {
        let e5 = cert(E5);
        let tbs = e5.tbs_certificate().to_der().unwrap();
        let mut sig = e5.signature().raw_bytes().to_vec();
        sig.push(0); // trailing data after the DER SEQUENCE
        let err = verify_signature(&key(X2), e5.signature_algorithm(), &tbs, &sig).unwrap_err();
        assert!(matches!(err, Error::MalformedSignature(_)), "{err:?}");
    }

    #[test]
    fn rsa_and_p384_csrs_prove_possession() {
        for name in ["csr-rsa2048.pem", "csr-p384.pem", "csr-p384-sha256.pem"] {
            let csr = CertReq::from_pem(fixture(name)).unwrap();
            verify_csr(&csr).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn tampered_csr_does_not_verify() {
        let mut der = CertReq::from_pem(fixture("csr-p384.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        flip_after(&mut der, b"csr-p384");
        let csr = CertReq::from_der(&der).unwrap();
        let err = verify_csr(&csr).unwrap_err();
        assert!(matches!(err, Error::BadSignature(Signed::Csr)), "{err:?}");
        assert!(err.to_string().contains("request's own key"), "{err}");
    }

    #[test]
    fn crl_verifies_under_its_issuer_only() {
        let crl = CertificateList::from_pem(fixture("crl-p256.pem")).unwrap();
        let ca = Certificate::from_pem(fixture("crl-ca-p256.pem")).unwrap();
        let issuer = ca.tbs_certificate().subject_public_key_info();
        verify_crl(&crl, issuer).unwrap();

        let err = verify_crl(&crl, &key(E5)).unwrap_err();
        assert!(matches!(err, Error::BadSignature(Signed::Crl)), "{err:?}");

        let mut der = crl.to_der().unwrap();
        flip_after(&mut der, b"throwaway");
        let tampered = CertificateList::from_der(&der).unwrap();
        let err = verify_crl(&tampered, issuer).unwrap_err();
        assert!(matches!(err, Error::BadSignature(Signed::Crl)), "{err:?}");
    }

    #[test]
    fn p521_key_is_an_unsupported_curve() {
        let spki = SubjectPublicKeyInfoOwned::from_pem(fixture("spki-p521.pem")).unwrap();
        let err = VerifyingKey::from_spki(&spki).unwrap_err();
        assert!(matches!(err, Error::UnsupportedCurve(_)), "{err:?}");
        assert!(err.to_string().contains("secp521r1"), "{err}");
    }
}
