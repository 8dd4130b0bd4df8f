//! Building, linting, signing and checking X.509 objects: certificates, PKCS#10 requests and CRLs.
//!
//! Every object goes through the same steps, in this order:
//!
//! ```text
//!   profile + inputs ─build─▶ TBS DER ─lint─▶ HSM signs those bytes ─assemble─▶ DER ─re-parse─┐
//!                                │            (signature verified in                          │
//!                                │             software before it returns)                    │
//!                                └──────── TBS, signature and algorithm unchanged? ◀──────────┘
//! ```
//!
//! Signing is a closure, so this module never names PKCS#11: the caller passes
//! `|tbs| hsm.sign(&key, alg, tbs)`.

mod crl;
mod name;
mod profile;

use std::time::{Duration, SystemTime};

use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub use self::crl::{
    CompactRevocation, CrlContents, Revocation, SignedCrl, certificate_not_before, sign_crl,
    sign_large_crl,
};
pub use self::name::{NameError, SubjectName};
pub use self::profile::{
    CT_POISON, CT_SCT_LIST, CaProfile, Ct, DOMAIN_VALIDATED, OcspResponderProfile, RootProfile,
    TlsServerProfile, ca_key_usage,
};
use crate::alg::SignatureAlgorithm;
use crate::lint::{self, CertKind};

/// A failure to build, lint, sign or check an object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// The certificate builder refused its inputs.
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// The built (unsigned) object has lint errors; nothing was signed.
    #[error("lint errors in the to-be-signed {what}; nothing was signed:\n{report}")]
    Lint {
        /// "certificate" or "CRL".
        what: &'static str,
        /// The linter's report.
        report: String,
    },
    /// The HSM failed to sign.
    #[error(transparent)]
    Hsm(#[from] crate::hsm::Error),
    /// The signed object does not carry exactly the bytes that were linted.
    #[error("the signed {0}'s TBS differs from the linted TBS; discarded")]
    TbsMismatch(&'static str),
    /// A signature check failed.
    #[error("signature check: {0}")]
    Verify(String),
    /// A PEM file could not be read or holds something else.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The public half of a signing key and the algorithm it signs with: what a builder needs to
/// fill in `signature` and, for a CSR, the public key.
#[derive(Clone, Debug)]
pub struct SignerInfo {
    /// The signing key's public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// The algorithm it signs with.
    pub alg: SignatureAlgorithm,
}

/// The SPKI DER of a [`SignerInfo`], as the builder's `Keypair::VerifyingKey`.
#[derive(Clone, Debug)]
pub struct SpkiDer(Vec<u8>);

impl spki::EncodePublicKey for SpkiDer {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

impl signature::Keypair for SignerInfo {
    type VerifyingKey = SpkiDer;

    fn verifying_key(&self) -> SpkiDer {
        // Encoding an already-decoded SPKI cannot fail short of running out of memory.
        SpkiDer(self.spki.to_der().unwrap_or_default())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for SignerInfo {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.alg.algorithm_identifier())
    }
}

/// A signed object with its DER encoding and digests, for outputs and transcripts.
#[derive(Clone, Debug)]
pub struct Signed<T> {
    /// The parsed object (re-parsed from `der`).
    pub value: T,
    /// Its DER encoding.
    pub der: Vec<u8>,
    /// SHA-256 of `der`, hex.
    pub sha256: String,
}

impl<T> Signed<T> {
    fn new(value: T, der: Vec<u8>) -> Self {
        let sha256 = hex::encode(Sha256::digest(&der));
        Signed { value, der, sha256 }
    }
}

impl Signed<Certificate> {
    /// An assembled certificate ([`LintedTbs::assemble`]), parsed in full for its caller.
    fn certificate(der: Vec<u8>) -> Result<Self, Error> {
        Ok(Signed::new(Certificate::from_der(&der)?, der))
    }
}

/// The subjectKeyIdentifier of a public key: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey BIT STRING value (RFC 7093 section 2, method 1), as Let's Encrypt's R10 and
/// E5 do.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha256::digest(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

/// SHA-256 of an SPKI's DER, hex: the key fingerprint shown in transcripts.
pub fn spki_sha256(spki: &SubjectPublicKeyInfoOwned) -> Result<String, Error> {
    Ok(hex::encode(Sha256::digest(spki.to_der()?)))
}

/// A validity period of exactly `days` days starting at `not_before`: notAfter is
/// notBefore + days − 1 second, because RFC 5280 4.1.2.5 counts both ends inclusively.
pub fn validity(not_before: SystemTime, days: u32) -> Result<Validity, Error> {
    let start = der::DateTime::from_system_time(not_before)?;
    let end = der::DateTime::from_unix_duration(
        start.unix_duration() + Duration::from_secs(u64::from(days) * 86_400)
            - Duration::from_secs(1),
    )?;
    Ok(Validity::new(Time::from(start), Time::from(end)))
}

/// Builds the TBS certificate from `profile`, lints it as `kind`, signs exactly those bytes with
/// `sign` (which must verify the signature over those bytes, as [`crate::hsm::Hsm::sign`]
/// does), assembles the certificate, re-parses it, and checks the TBS bytes, the signature and
/// the algorithm are unchanged.
pub fn sign_certificate<P: BuilderProfile>(
    profile: P,
    serial: SerialNumber,
    validity: Validity,
    subject_spki: SubjectPublicKeyInfoOwned,
    kind: CertKind,
    signer: &SignerInfo,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<Signed<Certificate>, Error> {
    let tbs = prepare_certificate(profile, serial, validity, subject_spki, kind, signer)?;
    let signature = sign(tbs.der())?;
    Signed::certificate(tbs.assemble(&signature, signer)?.into_der())
}

/// A TBSCertificate that has been built and has passed the lints: all it needs is a signature
/// over [`LintedTbs::der`]. The service signs it asynchronously, ceremonies through
/// [`sign_certificate`].
#[derive(Debug)]
pub struct LintedTbs {
    der: Vec<u8>,
    /// The TBS's own `signature` field (RFC 5280 4.1.2.3), as the lint decoded it.
    algorithm: AlgorithmIdentifierOwned,
    /// The serial number's content octets (RFC 5280 4.1.2.2), as the lint decoded them.
    serial: Vec<u8>,
}

/// A certificate assembled from a linted TBS and a verified signature over it. Only
/// [`LintedTbs::assemble`] makes one, so [`SignedCert::serial`] is the serial inside
/// [`SignedCert::der`]: an audit record made from it cannot name another serial.
#[derive(Debug)]
pub struct SignedCert {
    der: Vec<u8>,
    serial: Vec<u8>,
}

impl SignedCert {
    /// The certificate's DER (RFC 5280 4.1).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial number's content octets (RFC 5280 4.1.2.2).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The DER and the serial, taken apart.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.der, self.serial)
    }

    /// The DER alone.
    pub fn into_der(self) -> Vec<u8> {
        self.der
    }
}

impl LintedTbs {
    /// Lints the TBSCertificate `der` as the kind of certificate it is to become.
    fn lint(der: Vec<u8>, kind: CertKind) -> Result<Self, Error> {
        let tbs = x509_cert::TbsCertificate::from_der(&der)?;
        let report = lint::lint_certificate(&tbs, kind);
        if !report.is_clean() {
            return Err(Error::Lint {
                what: "certificate",
                report: report.to_string(),
            });
        }
        let algorithm = tbs.signature().clone();
        let serial = tbs.serial_number().as_bytes().to_vec();
        Ok(LintedTbs {
            der,
            algorithm,
            serial,
        })
    }

    /// The bytes to sign.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate's DER (RFC 5280 4.1): these TBS bytes unchanged, the signer's algorithm
    /// and `signature`, a signature over exactly these bytes that the caller has verified
    /// ([`crate::hsm::Hsm::sign`] does). The algorithm inside the TBS (4.1.2.3) must be the
    /// signer's too, as 4.1.1.2 requires. Checked by reading the result back as a certificate
    /// of three elements: the same TBS bytes (which the lint decoded in full), algorithm and
    /// signature.
    pub fn assemble(self, signature: &[u8], signer: &SignerInfo) -> Result<SignedCert, Error> {
        let alg = signer.alg.algorithm_identifier();
        if self.algorithm != alg {
            return Err(Error::TbsMismatch("certificate"));
        }
        let der = RawCertificate {
            tbs: der::asn1::AnyRef::try_from(self.der.as_slice())?,
            algorithm: alg.clone(),
            signature: BitString::from_bytes(signature)?,
        }
        .to_der()?;
        let reread = RawCertificate::from_der(&der)?;
        if reread.tbs.to_der()? != self.der
            || reread.signature.raw_bytes() != signature
            || reread.algorithm != alg
        {
            return Err(Error::TbsMismatch("certificate"));
        }
        Ok(SignedCert {
            der,
            serial: self.serial,
        })
    }
}

/// A certificate's serial number and validity (RFC 5280 4.1.2.2, 4.1.2.5), read without decoding
/// its names, key or extensions: what a response reports about a certificate just issued.
pub fn serial_and_validity(der: &[u8]) -> Result<(SerialNumber, Validity), Error> {
    let cert = ShallowCertificate::from_der(der)?;
    Ok((cert.tbs.serial, cert.tbs.validity))
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280
/// 4.1), with only the TBS's serial and validity decoded.
#[derive(der::Sequence)]
struct ShallowCertificate<'a> {
    tbs: ShallowTbs<'a>,
    algorithm: der::asn1::AnyRef<'a>,
    signature: der::asn1::AnyRef<'a>,
}

/// TBSCertificate (RFC 5280 4.1) with every field but the serial and validity left as raw
/// elements. Unique identifiers (4.1.2.8), which CAs must not generate, are not accepted.
#[derive(der::Sequence)]
struct ShallowTbs<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<der::asn1::AnyRef<'a>>,
    serial: SerialNumber,
    signature: der::asn1::AnyRef<'a>,
    issuer: der::asn1::AnyRef<'a>,
    validity: Validity,
    subject: der::asn1::AnyRef<'a>,
    subject_public_key_info: der::asn1::AnyRef<'a>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<der::asn1::AnyRef<'a>>,
}

/// Builds the TBSCertificate for `profile` and lints it (the first half of
/// [`sign_certificate`]).
pub fn prepare_certificate<P: BuilderProfile>(
    profile: P,
    serial: SerialNumber,
    validity: Validity,
    subject_spki: SubjectPublicKeyInfoOwned,
    kind: CertKind,
    signer: &SignerInfo,
) -> Result<LintedTbs, Error> {
    let mut builder = CertificateBuilder::new(profile, serial, validity, subject_spki)?;
    LintedTbs::lint(builder.finalize(signer)?, kind)
}

/// Builds a PKCS#10 request (RFC 2986) carrying only `subject` and the signer's public key, no
/// attributes, signs it, and checks the result: subject bytes unchanged, self-signature valid.
pub fn sign_csr(
    subject: &Name,
    signer: &SignerInfo,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<Signed<CertReq>, Error> {
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: subject.clone(),
        public_key: signer.spki.clone(),
        attributes: Default::default(),
    };
    let info_der = info.to_der()?;
    let signature = sign(&info_der)?;
    let csr = CertReq {
        info,
        algorithm: signer.alg.algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
    };
    let der = csr.to_der()?;
    let reparsed = CertReq::from_der(&der)?;
    if reparsed.info.to_der()? != info_der || reparsed.info.subject.to_der()? != subject.to_der()? {
        return Err(Error::TbsMismatch("CSR"));
    }
    crate::verify::verify_csr(&reparsed).map_err(|e| Error::Verify(e.to_string()))?;
    Ok(Signed::new(reparsed, der))
}

/// Reads one PEM object of the given label ("CERTIFICATE", "CERTIFICATE REQUEST", "X509 CRL")
/// from a file and decodes it.
pub fn read_pem<T: for<'a> Decode<'a>>(
    path: &std::path::Path,
    label: &str,
) -> Result<(T, Vec<u8>), Error> {
    let input = |reason: String| Error::Input {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input(format!("cannot read: {e}")))?;
    let (found, der) =
        pem_rfc7468::decode_vec(text.as_bytes()).map_err(|e| input(format!("not PEM: {e}")))?;
    if found != label {
        return Err(input(format!("holds a PEM {found:?}, expected {label:?}")));
    }
    let value = T::from_der(&der).map_err(|e| input(format!("cannot decode the {label}: {e}")))?;
    Ok((value, der))
}

/// PEM-encodes DER with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> Result<String, Error> {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| Error::Der(e.into()))
}

/// The PEM text (RFC 7468 §2: 64 characters a line, LF line endings) of non-empty DER already
/// base64-encoded (RFC 4648 §4, padded): the same text as [`to_pem`], without encoding the DER a
/// second time.
pub fn pem_from_base64(label: &str, base64: &str) -> String {
    let mut pem = String::with_capacity(base64.len() + base64.len() / 64 + 2 * label.len() + 32);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    let mut rest = base64;
    while !rest.is_empty() {
        let (line, tail) = rest.split_at_checked(64).unwrap_or((rest, ""));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

/// The keyIdentifier of a certificate's subjectKeyIdentifier extension, if any.
pub fn subject_key_id(cert: &Certificate) -> Result<Option<Vec<u8>>, Error> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()?
        .map(|(_, ski)| ski.0.as_bytes().to_vec()))
}

/// An OCTET STRING key identifier from bytes (helper for callers building profiles).
pub fn octets(bytes: &[u8]) -> Result<OctetString, Error> {
    Ok(OctetString::new(bytes)?)
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, with the
/// TBS kept as raw bytes (RFC 5280 4.1).
#[derive(der::Sequence)]
struct RawCertificate<'a> {
    tbs: der::asn1::AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Turns a precertificate into its final certificate (RFC 6962 3.1): the TBS is the
/// precertificate's, byte for byte, except that the poison extension is replaced, in the same
/// position, by the SCT list extension carrying `sct_list` (a TLS-encoded
/// SignedCertificateTimestampList). The result is linted, signed with `sign` and checked like
/// any certificate.
pub fn final_from_precertificate(
    precert: &Certificate,
    sct_list: &[u8],
    signer: &SignerInfo,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<Signed<Certificate>, Error> {
    let tbs = prepare_final(precert, sct_list)?;
    let signature = sign(tbs.der())?;
    Signed::certificate(tbs.assemble(&signature, signer)?.into_der())
}

/// The final certificate's TBS for `precert`, linted (the first half of
/// [`final_from_precertificate`]).
pub fn prepare_final(precert: &Certificate, sct_list: &[u8]) -> Result<LintedTbs, Error> {
    let mismatch = |why: &str| Error::Verify(format!("not a precertificate: {why}"));
    // TBSCertificate as a SEQUENCE of raw elements: only the last, [3] extensions, changes.
    let mut elements: Vec<der::Any> = Vec::from_der(&precert.tbs_certificate().to_der()?)?;
    let last = elements.pop().ok_or_else(|| mismatch("empty TBS"))?;
    let tag = der::Tagged::tag(&last);
    if tag
        != (der::Tag::ContextSpecific {
            constructed: true,
            number: der::TagNumber(3),
        })
    {
        return Err(mismatch("no extensions"));
    }
    let mut extensions: Vec<x509_cert::ext::Extension> = Vec::from_der(last.value())?;
    let position = extensions
        .iter()
        .position(|e| e.extn_id == CT_POISON && e.critical)
        .ok_or_else(|| mismatch("no critical CT poison extension"))?;
    if extensions.iter().any(|e| e.extn_id == CT_SCT_LIST) {
        return Err(mismatch("already carries an SCT list"));
    }
    extensions[position] = Ct::Scts(sct_list.to_vec())
        .extension()?
        .ok_or_else(|| mismatch("SCT extension"))?;
    elements.push(der::Any::new(tag, extensions.to_der()?)?);
    let tbs_der = elements.to_der()?;
    LintedTbs::lint(tbs_der, CertKind::Subscriber)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer;
    use x509_cert::ext::pkix::KeyUsages;
    use x509_cert::ext::pkix::name::GeneralName;

    use super::*;

    fn signer(key: &SigningKey, alg: SignatureAlgorithm) -> SignerInfo {
        let spki = key.verifying_key().to_public_key_der().unwrap();
        SignerInfo {
            spki: SubjectPublicKeyInfoOwned::from_der(spki.as_bytes()).unwrap(),
            alg,
        }
    }

    #[test]
    fn pem_from_base64_is_the_pem_encoders_text() {
        use base64ct::{Base64, Encoding as _};
        // Lengths around the 48-byte (64-character) line, and certificate-sized ones.
        for len in (1..=200).chain([1200, 1201, 1202]) {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = pem_from_base64("CERTIFICATE", &Base64::encode_string(&der));
            assert_eq!(pem, to_pem("CERTIFICATE", &der).unwrap(), "{len} bytes");
        }
    }

    /// A linted subscriber TBS for `www.example.com`, issued by `issuer`.
    fn leaf_tbs(issuer: &SignerInfo, serial: &[u8], not_before: SystemTime) -> LintedTbs {
        let subject = SigningKey::from_slice(&[0x17; 32]).unwrap();
        let profile = TlsServerProfile {
            issuer: Name::from_str("CN=Test Issuing CA,O=strongroom test,C=US").unwrap(),
            subject: Name::default(),
            key_usage: x509_cert::ext::pkix::KeyUsage(KeyUsages::DigitalSignature.into()),
            names: vec![GeneralName::DnsName(
                der::asn1::Ia5String::new("www.example.com").unwrap(),
            )],
            aki: vec![0x11; 20],
            ca_issuers_url: "http://ca.example/issuer.der".into(),
            crl_url: "http://ca.example/0.crl".into(),
            ct: Ct::None,
        };
        prepare_certificate(
            profile,
            SerialNumber::new(serial).unwrap(),
            validity(not_before, 90).unwrap(),
            signer(&subject, SignatureAlgorithm::EcdsaSha256).spki,
            CertKind::Subscriber,
            issuer,
        )
        .unwrap()
    }

    fn sign(key: &SigningKey, tbs: &[u8]) -> Vec<u8> {
        let sig: DerSignature = key.sign(tbs);
        sig.as_bytes().to_vec()
    }

    #[test]
    fn assembled_certificate_carries_the_linted_tbs_bytes_and_the_signature() {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let issuer = signer(&key, SignatureAlgorithm::EcdsaSha256);
        let serial = [0x51, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        let tbs = leaf_tbs(&issuer, &serial, SystemTime::now());
        let tbs_der = tbs.der().to_vec();
        let signature = sign(&key, &tbs_der);
        let signed = tbs.assemble(&signature, &issuer).unwrap();
        let cert = Certificate::from_der(signed.der()).unwrap();
        // The serial the audit record will carry is the one inside the DER.
        assert_eq!(signed.serial(), serial.as_slice());
        assert_eq!(
            cert.tbs_certificate().serial_number().as_bytes(),
            signed.serial()
        );
        assert_eq!(cert.tbs_certificate().to_der().unwrap(), tbs_der);
        assert_eq!(cert.signature().raw_bytes(), signature.as_slice());
        assert_eq!(
            cert.signature_algorithm(),
            &issuer.alg.algorithm_identifier()
        );
    }

    #[test]
    fn assemble_refuses_a_signer_whose_algorithm_is_not_the_tbs_algorithm() {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let issuer = signer(&key, SignatureAlgorithm::EcdsaSha256);
        let tbs = leaf_tbs(&issuer, &[0x52; 17], SystemTime::now());
        let signature = sign(&key, tbs.der());
        let other = signer(&key, SignatureAlgorithm::EcdsaSha384);
        assert!(matches!(
            tbs.assemble(&signature, &other),
            Err(Error::TbsMismatch("certificate"))
        ));
    }

    #[test]
    fn serial_and_validity_read_what_a_full_parse_reads() {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let issuer = signer(&key, SignatureAlgorithm::EcdsaSha256);
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let serial = [
            0x7f, 0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        ];
        let tbs = leaf_tbs(&issuer, &serial, not_before);
        let signature = sign(&key, tbs.der());
        let der = tbs.assemble(&signature, &issuer).unwrap().into_der();
        let full = Certificate::from_der(&der).unwrap();
        let (s, v) = serial_and_validity(&der).unwrap();
        assert_eq!(&s, full.tbs_certificate().serial_number());
        assert_eq!(s.as_bytes(), serial.as_slice());
        assert_eq!(&v, full.tbs_certificate().validity());
        assert_eq!(v.not_before.to_system_time(), not_before);
        // Not a certificate, or a certificate with bytes after it: an error, not a guess.
        assert!(serial_and_validity(&der[..der.len() - 1]).is_err());
        let mut longer = der.clone();
        longer.push(0);
        assert!(serial_and_validity(&longer).is_err());
    }
}
