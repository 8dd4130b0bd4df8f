//! CRLs (RFC 5280 5.1): the one CRL encoder, used by the ceremony's offline CRLs ([`sign_crl`])
//! and the service's sharded CRLs ([`sign_large_crl`]). It takes compact entries, computes every
//! length first and writes the DER once into one pre-sized buffer, so a CRL with a million entries
//! costs about its own size in memory.
//!
//! ```text
//!   header_tbs(): x509-cert's TbsCertList without entries ─▶ split: version … nextUpdate | crlExtensions
//!   [CompactRevocation] ─lengths─▶ one buffer: [room for the CertificateList header | TBSCertList | room]
//!                       entries written last to first at their offsets, the list shrinking as it goes
//!   lint, before signing, either
//!     sign_crl:       the whole TBSCertList, decoded back from the bytes written (small CRLs)
//!     sign_large_crl: the header before anything is written, then each entry decoded back from
//!                     the bytes written, one at a time
//!   HSM signs the TBS slice (Hsm::sign verifies the signature in software)
//!     ─▶ signatureAlgorithm + BIT STRING appended, CertificateList header written in front
//!     ─▶ re-read as { raw TBS, algorithm, signature } and compared
//! ```
//!
//! The bytes are exactly those x509-cert's structures give for the same CRL; the unit tests
//! compare the two, and compare a ceremony-style CRL with golden DER.

use std::time::{Duration, SystemTime};

use der::asn1::{AnyRef, BitString, OctetString};
use der::{Decode, Encode, Header, Length, Reader, SliceReader, Tag, TagNumber, Tagged};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason, SubjectKeyIdentifier};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::{Error, RawCertificate, SignerInfo, profile};
use crate::lint;

/// One revoked certificate in a CRL.
#[derive(Clone, Debug)]
pub struct Revocation {
    /// The revoked certificate's serial number.
    pub serial: SerialNumber,
    /// When it was revoked.
    pub revoked_at: SystemTime,
    /// The reason; `None` means unspecified, which RFC 5280 5.3.1 and BR 7.2.2 say to encode by
    /// leaving the reasonCode extension out.
    pub reason: Option<CrlReason>,
}

/// What a CRL says: its number, its validity window and its entries.
#[derive(Clone, Debug)]
pub struct CrlContents<'a> {
    /// cRLNumber, big-endian (RFC 5280 5.2.3).
    pub number: &'a [u8],
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate.
    pub next_update: SystemTime,
    /// The revoked certificates.
    pub revoked: &'a [Revocation],
    /// Which certificates the CRL covers (decides the BR rules it is linted with).
    pub kind: lint::CrlKind,
    /// For a shard of a partitioned CRL: the shard's URL, carried in a critical
    /// issuingDistributionPoint with onlyContainsUserCerts (RFC 5280 5.2.5; BR 7.2.2 requires it
    /// when a CRL does not list every revoked certificate of its issuer).
    pub shard_url: Option<String>,
}

/// Builds a CRL (RFC 5280 5.1) for `issuer` listing `contents.revoked`, lints the whole
/// TBSCertList, signs it with `sign` (which verifies the signature over those bytes, as
/// [`crate::hsm::Hsm::sign`] does) and checks the assembled CRL. Extensions:
/// authorityKeyIdentifier with the issuer's subjectKeyIdentifier (5.2.1), cRLNumber (5.2.3).
/// For CRLs small enough to lint as one structure (the ceremony's); [`sign_large_crl`] writes the
/// same bytes for the same CRL.
pub fn sign_crl(
    issuer: &Certificate,
    contents: &CrlContents<'_>,
    signer: &SignerInfo,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<SignedCrl, Error> {
    let entries = contents
        .revoked
        .iter()
        .enumerate()
        .map(|(n, r)| CompactRevocation::from_revocation(n, r))
        .collect::<Result<Vec<_>, _>>()?;
    let header = CrlContents {
        revoked: &[],
        ..contents.clone()
    };
    sign_encoded(issuer, &header, entries, signer, LintAs::Whole, sign)
}

/// The TBSCertList of a CRL without its revokedCertificates (RFC 5280 5.1.2), in x509-cert's
/// structures: what the encoder writes around the entries.
fn header_tbs(
    issuer: &Certificate,
    contents: &CrlContents<'_>,
    signer: &SignerInfo,
) -> Result<TbsCertList, Error> {
    let issuer_tbs = issuer.tbs_certificate();
    let ski = issuer_tbs
        .get_extension::<SubjectKeyIdentifier>()?
        .map(|(_, ski)| ski.0)
        .ok_or_else(|| {
            Error::Verify("the issuer certificate has no subjectKeyIdentifier".to_string())
        })?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(ski),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = CrlNumber(der::asn1::Uint::new(contents.number)?);
    Ok(TbsCertList {
        version: Version::V2,
        signature: signer.alg.algorithm_identifier(),
        issuer: issuer_tbs.subject().clone(),
        this_update: Time::from(der::DateTime::from_system_time(contents.this_update)?),
        next_update: Some(Time::from(der::DateTime::from_system_time(
            contents.next_update,
        )?)),
        revoked_certificates: None,
        crl_extensions: Some({
            let mut extensions = vec![
                profile::extension(&aki, false)?,
                profile::extension(&number, false)?,
            ];
            if let Some(url) = &contents.shard_url {
                let idp = x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint {
                    distribution_point: Some(
                        x509_cert::ext::pkix::name::DistributionPointName::FullName(vec![
                            x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(
                                der::asn1::Ia5String::new(url)?,
                            ),
                        ]),
                    ),
                    only_contains_user_certs: true,
                    only_contains_ca_certs: false,
                    only_some_reasons: None,
                    indirect_crl: false,
                    only_contains_attribute_certs: false,
                };
                // Built by hand: x509-cert 0.3 associates IssuingDistributionPoint with the wrong
                // OID, so name id-ce-issuingDistributionPoint (2.5.29.28) explicitly.
                extensions.push(x509_cert::ext::Extension {
                    extn_id: const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT,
                    critical: true,
                    extn_value: OctetString::new(idp.to_der()?)?,
                });
            }
            extensions
        }),
    })
}

/// The longest serialNumber content RFC 5280 4.1.2.2 allows, in octets.
const MAX_SERIAL_OCTETS: usize = 20;

/// 2050-01-01T00:00:00Z: RFC 5280 5.1.2.4 / 5.1.2.6 encode times before it as UTCTime and from
/// it on as GeneralizedTime.
const GENERALIZED_TIME_FROM: u64 = 2_524_608_000;

/// The room reserved in front of the TBSCertList for the CertificateList header (tag, and a
/// length of up to four octets).
const FRONT: usize = 6;

/// How many entries are written between two shrinks of the compact list (2 MiB of it).
const SHRINK_EVERY: usize = 65_536;

/// An upper bound for a signature value and its BIT STRING header (RSA-4096 is 512 octets).
const MAX_SIGNATURE_TLV: usize = 1024 + 8;

/// One revoked certificate in 32 bytes: serial magnitude, revocation time in seconds since the
/// Unix epoch, and the CRLReason code (RFC 5280 5.3.1), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactRevocation {
    serial: [u8; MAX_SERIAL_OCTETS],
    len: u8,
    reason: u8,
    revoked_at: u64,
}

/// The reasonCode value 0 stands for "no reasonCode extension".
const NO_REASON: u8 = 0;

impl CompactRevocation {
    /// An entry for the big-endian serial `serial` (leading zero octets are dropped), revoked at
    /// `revoked_at` seconds after the Unix epoch. `reason` `None` leaves the reasonCode out, as
    /// RFC 5280 5.3.1 and BR 7.2.2 say for unspecified; `Some(Unspecified)` is kept out too.
    ///
    /// `None` when the serial's DER INTEGER content would be longer than 20 octets (RFC 5280
    /// 4.1.2.2), exactly as x509-cert's `SerialNumber::new` refuses it.
    pub fn new(serial: &[u8], revoked_at: u64, reason: Option<CrlReason>) -> Option<Self> {
        let start = serial
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(serial.len().saturating_sub(1));
        let magnitude = serial.get(start..).filter(|m| !m.is_empty())?;
        let content = magnitude.len() + usize::from(magnitude[0] & 0x80 != 0);
        if content > MAX_SERIAL_OCTETS {
            return None;
        }
        let mut out = [0u8; MAX_SERIAL_OCTETS];
        out[..magnitude.len()].copy_from_slice(magnitude);
        Some(CompactRevocation {
            serial: out,
            len: u8::try_from(magnitude.len()).ok()?,
            reason: reason.map_or(NO_REASON, |r| r as u32 as u8),
            revoked_at,
        })
    }

    /// The entry `revoked[n]` of a CRL written as x509-cert would write it: the same serial
    /// INTEGER, the revocation time to the second (as [`der::DateTime`] keeps it) and the reason.
    /// A negative serial, or one of 21 octets (both decode from a certificate, RFC 5280 4.1.2.2
    /// forbids them), is refused rather than listed as another number.
    fn from_revocation(n: usize, r: &Revocation) -> Result<Self, Error> {
        let revoked_at = der::DateTime::from_system_time(r.revoked_at)?
            .unix_duration()
            .as_secs();
        let serial = r.serial.as_bytes();
        serial
            .first()
            .filter(|b| **b & 0x80 == 0)
            .and_then(|_| CompactRevocation::new(serial, revoked_at, r.reason))
            .ok_or_else(|| Error::Input {
                path: format!("revoked[{n}].serial"),
                reason: format!(
                    "{} is negative or longer than 20 octets (RFC 5280 4.1.2.2)",
                    hex::encode(serial)
                ),
            })
    }

    /// The serial's big-endian magnitude, without leading zero octets (one `0x00` for zero).
    pub fn serial(&self) -> &[u8] {
        &self.serial[..usize::from(self.len)]
    }

    /// The revocation time, seconds since the Unix epoch.
    pub fn revoked_at(&self) -> u64 {
        self.revoked_at
    }

    /// The reasonCode value, if the entry carries one.
    pub fn reason_code(&self) -> Option<u8> {
        (self.reason != NO_REASON).then_some(self.reason)
    }

    /// INTEGER content length: the magnitude, plus a zero octet when its top bit is set.
    fn serial_content_len(&self) -> usize {
        usize::from(self.len) + usize::from(self.serial[0] & 0x80 != 0)
    }

    /// Length of the RevokedCert SEQUENCE's content (RFC 5280 5.1): serial INTEGER,
    /// revocationDate, and the reasonCode crlEntryExtensions when there is a reason.
    fn content_len(&self) -> usize {
        let time = if self.revoked_at < GENERALIZED_TIME_FROM {
            15
        } else {
            17
        };
        2 + self.serial_content_len()
            + time
            + if self.reason == NO_REASON {
                0
            } else {
                REASON_EXTENSIONS.len()
            }
    }

    /// Writes the RevokedCert's DER into `out`, which is exactly `2 + content_len()` octets.
    /// Its content is at most 2 + 21 + 17 + 14 octets, so the SEQUENCE always has a one-octet
    /// length.
    fn encode_into(&self, out: &mut [u8]) -> Result<(), Error> {
        let overlength = || Error::Der(der::ErrorKind::Overlength.into());
        let content = self.content_len();
        if out.len() != 2 + content {
            return Err(overlength());
        }
        let serial_len = self.serial_content_len();
        out[0] = 0x30;
        out[1] = u8::try_from(content).map_err(|_| overlength())?;
        out[2] = 0x02;
        out[3] = u8::try_from(serial_len).map_err(|_| overlength())?;
        let pad = usize::from(self.serial[0] & 0x80 != 0);
        out[4] = 0;
        out[4 + pad..4 + serial_len].copy_from_slice(self.serial());
        let time = Time::from(der::DateTime::from_unix_duration(Duration::from_secs(
            self.revoked_at,
        ))?);
        let at = 4 + serial_len;
        let written = time.encode_to_slice(&mut out[at..])?.len();
        let rest = &mut out[at + written..];
        if self.reason != NO_REASON {
            rest.copy_from_slice(&REASON_EXTENSIONS);
            rest[REASON_EXTENSIONS.len() - 1] = self.reason;
        } else if !rest.is_empty() {
            return Err(overlength());
        }
        Ok(())
    }
}

/// crlEntryExtensions holding only a non-critical reasonCode (RFC 5280 5.3.1): SEQUENCE OF {
/// SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED code } } }; the last octet is the code.
const REASON_EXTENSIONS: [u8; 14] = [
    0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x00,
];

/// A signed large CRL: its DER and SHA-256.
#[derive(Clone, Debug)]
pub struct SignedCrl {
    /// The CertificateList DER.
    pub der: Vec<u8>,
    /// SHA-256 of `der`, hex.
    pub sha256: String,
    /// How many entries it lists.
    pub entries: usize,
}

/// The encoded tag and length of a SEQUENCE with `len` content octets.
fn sequence_header(len: usize) -> Result<Vec<u8>, Error> {
    Ok(Header::new(Tag::Sequence, Length::try_from(len)?).to_der()?)
}

/// Splits the DER of a TBSCertList that has no revokedCertificates into the elements before
/// where the list goes (version … nextUpdate) and the `[0]` crlExtensions after it.
fn split_header(tbs: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut reader = SliceReader::new(tbs)?;
    let header = Header::decode(&mut reader)?;
    if header.tag() != Tag::Sequence {
        return Err(Error::Verify("the TBSCertList is not a SEQUENCE".into()));
    }
    let start = usize::try_from(reader.position())?;
    let mut extensions = None;
    while !reader.is_finished() {
        let at = usize::try_from(reader.position())?;
        let element = AnyRef::decode(&mut reader)?;
        if element.tag()
            == (Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            })
        {
            extensions = Some(at);
        }
    }
    let at = extensions.ok_or_else(|| Error::Verify("the CRL has no crlExtensions".into()))?;
    Ok((&tbs[start..at], &tbs[at..]))
}

/// Builds a CRL with `entries` for `issuer` like [`sign_crl`] (same extensions, same bytes),
/// but lints it without decoding it as one structure: the header and extensions as a whole, then
/// each entry as decoded back from the buffer, one at a time. Signs the TBS with `sign` (which
/// verifies the signature over those bytes, as [`crate::hsm::Hsm::sign`] does), assembles the
/// CertificateList in the same buffer and checks its structure. `contents.revoked` must be
/// empty: the entries are `entries`, consumed (and their memory given back) while they are
/// encoded.
pub fn sign_large_crl(
    issuer: &Certificate,
    contents: &CrlContents<'_>,
    entries: Vec<CompactRevocation>,
    signer: &SignerInfo,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<SignedCrl, Error> {
    sign_encoded(
        issuer,
        contents,
        entries,
        signer,
        LintAs::HeaderThenEntries,
        sign,
    )
}

/// How a CRL is linted before it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LintAs {
    /// The whole TBSCertList as one structure, decoded back from the bytes written.
    Whole,
    /// The header and extensions before anything is written, then each entry on its own.
    HeaderThenEntries,
}

/// Encodes the CRL, lints it as `lint` says, signs it, assembles it and checks it.
fn sign_encoded(
    issuer: &Certificate,
    contents: &CrlContents<'_>,
    entries: Vec<CompactRevocation>,
    signer: &SignerInfo,
    lint: LintAs,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::hsm::Error>,
) -> Result<SignedCrl, Error> {
    let count = entries.len();
    let tbs = encode_tbs(issuer, contents, entries, signer, lint)?;
    let TbsBuffer {
        mut buf,
        tbs_len,
        entries: entries_at,
    } = tbs;
    let report = match lint {
        LintAs::Whole => {
            let tbs = TbsCertList::from_der(&buf[FRONT..FRONT + tbs_len])?;
            let report = lint::lint_crl(&tbs, contents.kind);
            (!report.is_clean()).then(|| report.to_string())
        }
        LintAs::HeaderThenEntries => lint_entries(&buf[entries_at.clone()], contents.kind)?,
    };
    if let Some(report) = report {
        return Err(Error::Lint {
            what: "CRL",
            report,
        });
    }
    let signature = sign(&buf[FRONT..FRONT + tbs_len])?;
    let algorithm = signer.alg.algorithm_identifier();
    let _ = algorithm.encode_to_vec(&mut buf)?;
    let _ = BitString::from_bytes(&signature)?.encode_to_vec(&mut buf)?;
    let outer = sequence_header(buf.len() - FRONT)?;
    let start = FRONT - outer.len();
    buf[start..FRONT].copy_from_slice(&outer);
    let _ = buf.drain(..start);
    // The assembled CRL is one CertificateList of exactly the signed TBS, the algorithm and the
    // verified signature, nothing else.
    let raw = RawCertificate::from_der(&buf)?;
    if raw.tbs.tag() != Tag::Sequence
        || raw.tbs.value().len() + sequence_header(raw.tbs.value().len())?.len() != tbs_len
        || raw.algorithm != algorithm
        || raw.signature.raw_bytes() != signature.as_slice()
    {
        return Err(Error::TbsMismatch("CRL"));
    }
    let sha256 = hex::encode(Sha256::digest(&buf));
    Ok(SignedCrl {
        der: buf,
        sha256,
        entries: count,
    })
}

/// A TBSCertList written at offset [`FRONT`] of `buf`, `tbs_len` octets long, with its
/// RevokedCert elements at `entries`.
struct TbsBuffer {
    buf: Vec<u8>,
    tbs_len: usize,
    entries: std::ops::Range<usize>,
}

/// Computes every length, allocates the buffer once (room for the signature included) and
/// writes the TBSCertList. For [`LintAs::HeaderThenEntries`] the header is linted first, and
/// nothing is written if it has errors.
fn encode_tbs(
    issuer: &Certificate,
    contents: &CrlContents<'_>,
    mut entries: Vec<CompactRevocation>,
    signer: &SignerInfo,
    lint: LintAs,
) -> Result<TbsBuffer, Error> {
    if !contents.revoked.is_empty() {
        return Err(Error::Verify(
            "sign_large_crl takes its entries separately".into(),
        ));
    }
    let header = header_tbs(issuer, contents, signer)?;
    if lint == LintAs::HeaderThenEntries {
        let report = lint::lint_crl(&header, contents.kind);
        if !report.is_clean() {
            return Err(Error::Lint {
                what: "CRL",
                report: report.to_string(),
            });
        }
    }
    let header = header.to_der()?;
    let (before, extensions) = split_header(&header)?;
    let entries_len: usize = entries.iter().map(|e| 2 + e.content_len()).sum();
    // RFC 5280 5.1.2.6: revokedCertificates is absent when there are none.
    let list_header = if entries.is_empty() {
        Vec::new()
    } else {
        sequence_header(entries_len)?
    };
    let content = before.len() + list_header.len() + entries_len + extensions.len();
    let tbs_header = sequence_header(content)?;
    let tbs_len = tbs_header.len() + content;
    let algorithm_len = usize::try_from(signer.alg.algorithm_identifier().encoded_len()?)?;
    // A zeroed allocation of this size is mapped lazily, so the buffer takes memory only as it
    // is written. The entries are written last to first, each at its computed offset, and the
    // list of compact entries shrinks as they are: the two together stay about the size of the
    // CRL instead of adding up.
    let mut buf = vec![0u8; FRONT + tbs_len + algorithm_len + MAX_SIGNATURE_TLV];
    buf.truncate(FRONT + tbs_len);
    let mut at = FRONT;
    for part in [tbs_header.as_slice(), before, list_header.as_slice()] {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let first = at;
    let end = first + entries_len;
    buf[end..].copy_from_slice(extensions);
    let mut pos = end;
    let mut written = 0usize;
    while let Some(entry) = entries.pop() {
        let len = 2 + entry.content_len();
        pos = pos
            .checked_sub(len)
            .filter(|p| *p >= first)
            .ok_or(Error::TbsMismatch("CRL"))?;
        entry.encode_into(&mut buf[pos..pos + len])?;
        written += 1;
        if written % SHRINK_EVERY == 0 {
            entries.shrink_to_fit();
        }
    }
    if pos != first || buf.len() != FRONT + tbs_len {
        return Err(Error::TbsMismatch("CRL"));
    }
    let entries_at = first..end;
    Ok(TbsBuffer {
        buf,
        tbs_len,
        entries: entries_at,
    })
}

/// Decodes the RevokedCert elements one at a time and lints each (RFC 5280 5.1.2.6, 5.3; BR
/// 7.2.2); the report of the first entry with an error, if any. Duplicate serials are found
/// before encoding (see `revoke`), not here.
fn lint_entries(bytes: &[u8], kind: lint::CrlKind) -> Result<Option<String>, Error> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut reader = SliceReader::new(bytes)?;
    while !reader.is_finished() {
        let entry = RevokedCert::decode(&mut reader)?;
        let report = lint::lint_crl_entry(&entry, kind);
        if !report.is_clean() {
            return Ok(Some(report.to_string()));
        }
    }
    Ok(None)
}

/// A certificate's notBefore (RFC 5280 4.1.2.5) in seconds since the Unix epoch, read by walking
/// the DER to the validity field without decoding the rest: for checking many CRL entries
/// against the stored certificates.
pub fn certificate_not_before(der: &[u8]) -> Result<u64, Error> {
    let mut reader = SliceReader::new(der)?;
    let _certificate = Header::decode(&mut reader)?;
    let _tbs = Header::decode(&mut reader)?;
    let mut element = AnyRef::decode(&mut reader)?;
    // [0] EXPLICIT version, when present, comes before serialNumber.
    if element.tag()
        == (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        })
    {
        element = AnyRef::decode(&mut reader)?;
    }
    if element.tag() != Tag::Integer {
        return Err(Error::Verify("no serialNumber where expected".into()));
    }
    let _signature = AnyRef::decode(&mut reader)?;
    let _issuer = AnyRef::decode(&mut reader)?;
    let validity =
        x509_cert::time::Validity::<x509_cert::certificate::Rfc5280>::decode(&mut reader)?;
    Ok(validity.not_before.to_unix_duration().as_secs())
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use der::Encode;
    use x509_cert::serial_number::SerialNumber;

    use super::*;

    fn issuer() -> Certificate {
        // Any CA certificate with a subjectKeyIdentifier (see tests/fixtures/README.md).
        let pem = include_str!("../../tests/fixtures/crl-ca-p256.pem");
        let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        Certificate::from_der(&der).unwrap()
    }

    fn signer(cert: &Certificate) -> SignerInfo {
        SignerInfo {
            spki: cert.tbs_certificate().subject_public_key_info().clone(),
            alg: crate::alg::SignatureAlgorithm::EcdsaSha256,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn contents<'a>(revoked: &'a [Revocation], shard_url: Option<String>) -> CrlContents<'a> {
        CrlContents {
            number: &[0, 0, 0, 0, 0, 0, 1, 0x2c],
            this_update: at(1_764_000_000),
            next_update: at(1_764_000_000 + 7 * 86_400),
            revoked,
            kind: lint::CrlKind::SubscriberCertificates,
            shard_url,
        }
    }

    /// Serial shapes (short, leading zero, top bit set, 20 octets), reasons and times on both
    /// sides of 2050.
    fn sample() -> Vec<(Vec<u8>, u64, Option<CrlReason>)> {
        vec![
            (
                vec![0x01; 17],
                1_763_990_000,
                Some(CrlReason::KeyCompromise),
            ),
            (vec![0x00, 0x7f, 0x22], 1_763_000_000, None),
            (vec![0x80, 0x01], 1_700_000_000, Some(CrlReason::Superseded)),
            (
                vec![0x7f; 20],
                1_600_000_000,
                Some(CrlReason::PrivilegeWithdrawn),
            ),
            (vec![0x05], 0, Some(CrlReason::CessationOfOperation)),
            (vec![0x42, 0x42], GENERALIZED_TIME_FROM, None),
            (
                vec![0x43],
                GENERALIZED_TIME_FROM - 1,
                Some(CrlReason::AffiliationChanged),
            ),
            (vec![0x44], GENERALIZED_TIME_FROM + 99_999, None),
        ]
    }

    /// The TBSCertList DER x509-cert's own structures give for `contents`: the reference the
    /// encoder is compared with (RFC 5280 5.1.2.6: revokedCertificates absent when empty; 5.3.1:
    /// the reasonCode non-critical).
    fn reference_tbs(
        cert: &Certificate,
        contents: &CrlContents<'_>,
        signer: &SignerInfo,
    ) -> Vec<u8> {
        let mut tbs = header_tbs(cert, contents, signer).unwrap();
        let entries: Vec<RevokedCert> = contents
            .revoked
            .iter()
            .map(|r| RevokedCert {
                serial_number: r.serial.clone(),
                revocation_date: Time::from(der::DateTime::from_system_time(r.revoked_at).unwrap()),
                crl_entry_extensions: r
                    .reason
                    .map(|reason| vec![profile::extension(&reason, false).unwrap()]),
            })
            .collect();
        tbs.revoked_certificates = (!entries.is_empty()).then_some(entries);
        tbs.to_der().unwrap()
    }

    fn tbs_of(der: &[u8]) -> Vec<u8> {
        RawCertificate::from_der(der).unwrap().tbs.to_der().unwrap()
    }

    #[test]
    fn identical_bytes_to_the_x509_cert_path() {
        let cert = issuer();
        let signer = signer(&cert);
        for shard_url in [None, Some("http://r10.c.example.com/7.crl".to_string())] {
            for n in [0, 1, 8] {
                let sample: Vec<_> = sample().into_iter().take(n).collect();
                let revocations: Vec<Revocation> = sample
                    .iter()
                    .map(|(s, t, r)| Revocation {
                        serial: SerialNumber::new(s).unwrap(),
                        revoked_at: at(*t),
                        reason: *r,
                    })
                    .collect();
                let expected =
                    reference_tbs(&cert, &contents(&revocations, shard_url.clone()), &signer);
                let compact: Vec<_> = sample
                    .iter()
                    .map(|(s, t, r)| CompactRevocation::new(s, *t, *r).unwrap())
                    .collect();
                let fake = [0x5au8; 256];
                let signed = sign_large_crl(
                    &cert,
                    &contents(&[], shard_url.clone()),
                    compact.clone(),
                    &signer,
                    |tbs| {
                        assert_eq!(tbs, expected.as_slice(), "{n} entries, {shard_url:?}");
                        Ok(fake.to_vec())
                    },
                )
                .unwrap();
                assert_eq!(tbs_of(&signed.der), expected);
                // The whole CertificateList as x509-cert would assemble it.
                let crl: x509_cert::crl::CertificateList = x509_cert::crl::CertificateList {
                    tbs_cert_list: x509_cert::crl::TbsCertList::from_der(&expected).unwrap(),
                    signature_algorithm: signer.alg.algorithm_identifier(),
                    signature: BitString::from_bytes(&fake).unwrap(),
                };
                assert_eq!(signed.der, crl.to_der().unwrap());
                // The small-CRL path writes the same bytes.
                let small = sign_crl(
                    &cert,
                    &contents(&revocations, shard_url.clone()),
                    &signer,
                    |tbs| {
                        assert_eq!(tbs, expected.as_slice(), "{n} entries, {shard_url:?}");
                        Ok(fake.to_vec())
                    },
                )
                .unwrap();
                assert_eq!(small.der, signed.der);
                assert_eq!(signed.entries, n);
                assert_eq!(signed.sha256, hex::encode(Sha256::digest(&signed.der)));
                if let Some(url) = &shard_url {
                    // The IDP carries id-ce-issuingDistributionPoint (2.5.29.28), not the OID
                    // x509-cert 0.3 associates with IssuingDistributionPoint.
                    let idp = crl
                        .tbs_cert_list
                        .crl_extensions
                        .as_ref()
                        .unwrap()
                        .last()
                        .unwrap();
                    assert_eq!(idp.extn_id.to_string(), "2.5.29.28");
                    assert!(idp.critical);
                    assert!(signed.der.windows(url.len()).any(|w| w == url.as_bytes()));
                }
            }
        }
    }

    /// A CRL shaped like the ceremony's sign-crl step makes (CA certificates, every entry with a
    /// reason, a short CRL number), signed with a fixed stand-in signature.
    fn ceremony_style_crl(n: usize) -> Vec<u8> {
        let cert = issuer();
        let signer = signer(&cert);
        let revoked: Vec<Revocation> = [
            (vec![0x4a; 16], 1_763_990_000, CrlReason::KeyCompromise),
            (
                vec![0x00, 0x91, 0x02],
                1_763_000_000,
                CrlReason::CaCompromise,
            ),
            (vec![0x05], 1_700_000_000, CrlReason::Superseded),
        ]
        .into_iter()
        .take(n)
        .map(|(s, t, r)| Revocation {
            serial: SerialNumber::new(&s).unwrap(),
            revoked_at: at(t),
            reason: Some(r),
        })
        .collect();
        let contents = CrlContents {
            number: &[5],
            this_update: at(1_764_000_000),
            next_update: at(1_764_000_000 + 30 * 86_400),
            revoked: &revoked,
            kind: lint::CrlKind::CaCertificates,
            shard_url: None,
        };
        let signed = sign_crl(&cert, &contents, &signer, |_| Ok(vec![0x5a; 72])).unwrap();
        assert_eq!(signed.sha256, hex::encode(Sha256::digest(&signed.der)));
        signed.der
    }

    #[test]
    fn ceremony_crl_bytes_are_unchanged() {
        assert_eq!(
            ceremony_style_crl(0),
            include_bytes!("../../tests/fixtures/ceremony-crl-0.der")
        );
        assert_eq!(
            ceremony_style_crl(3),
            include_bytes!("../../tests/fixtures/ceremony-crl-3.der")
        );
    }

    #[test]
    fn time_encoding_switches_in_2050_like_x509_cert() {
        for secs in [
            0,
            GENERALIZED_TIME_FROM - 1,
            GENERALIZED_TIME_FROM,
            4_000_000_000,
        ] {
            let time =
                Time::from(der::DateTime::from_unix_duration(Duration::from_secs(secs)).unwrap());
            let e = CompactRevocation::new(&[1], secs, None).unwrap();
            assert_eq!(e.content_len(), 3 + time.to_der().unwrap().len(), "{secs}");
        }
    }

    #[test]
    fn serials_are_refused_like_serial_number_new() {
        for serial in [
            vec![0x80; 20],
            vec![0x01; 21],
            vec![0x7f; 20],
            vec![0, 0x80],
            vec![0],
            vec![0, 0, 0],
        ] {
            let ours = CompactRevocation::new(&serial, 0, None);
            let theirs = SerialNumber::<x509_cert::certificate::Rfc5280>::new(&serial);
            assert_eq!(ours.is_some(), theirs.is_ok(), "{serial:02x?}");
            if let (Some(ours), Ok(theirs)) = (ours, theirs) {
                let mut bytes = vec![0; 2 + ours.content_len()];
                ours.encode_into(&mut bytes).unwrap();
                let entry: RevokedCert = RevokedCert::from_der(&bytes).unwrap();
                assert_eq!(entry.serial_number.as_bytes(), theirs.as_bytes());
            }
        }
        // An empty serial is no serial (x509-cert would encode it as zero).
        assert!(CompactRevocation::new(&[], 0, None).is_none());
        assert_eq!(std::mem::size_of::<CompactRevocation>(), 32);
    }

    #[test]
    fn lint_refuses_an_entry_that_breaks_a_rule() {
        let cert = issuer();
        let signer = signer(&cert);
        let entries = vec![
            CompactRevocation::new(&[1, 2], 1_763_000_000, None).unwrap(),
            CompactRevocation::new(&[1, 3], 1_763_000_000, Some(CrlReason::CertificateHold))
                .unwrap(),
        ];
        let err = sign_large_crl(&cert, &contents(&[], None), entries, &signer, |_| {
            panic!("a CRL with lint errors must not be signed")
        })
        .unwrap_err();
        assert!(err.to_string().contains("certificate_hold"), "{err}");
    }

    #[test]
    fn small_crl_is_linted_as_a_whole_before_signing() {
        let cert = issuer();
        let signer = signer(&cert);
        // A serial listed twice is only seen when the entries are linted together.
        let twice = Revocation {
            serial: SerialNumber::new(&[7]).unwrap(),
            revoked_at: at(1_763_000_000),
            reason: Some(CrlReason::Superseded),
        };
        let revoked = [twice.clone(), twice];
        let err = sign_crl(&cert, &contents(&revoked, None), &signer, |_| {
            panic!("a CRL with lint errors must not be signed")
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("crl.entry.serial_duplicate"),
            "{err}"
        );
    }

    #[test]
    fn negative_serial_is_refused_not_relisted() {
        let cert = issuer();
        let signer = signer(&cert);
        // 0x80 0x01 as DER INTEGER content is negative: a certificate can carry it, the encoder
        // would list 0x00 0x80 0x01 instead.
        let negative = SerialNumber::from_der(&[0x02, 0x02, 0x80, 0x01]).unwrap();
        let revoked = [Revocation {
            serial: negative,
            revoked_at: at(1_763_000_000),
            reason: Some(CrlReason::Superseded),
        }];
        let err = sign_crl(&cert, &contents(&revoked, None), &signer, |_| {
            panic!("nothing to sign")
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("revoked[0].serial: 8001 is negative"),
            "{err}"
        );
    }

    #[test]
    fn not_before_is_read_without_decoding_the_certificate() {
        let cert = issuer();
        let der = cert.to_der().unwrap();
        assert_eq!(
            certificate_not_before(&der).unwrap(),
            cert.tbs_certificate()
                .validity()
                .not_before
                .to_unix_duration()
                .as_secs()
        );
        assert!(certificate_not_before(&der[..40]).is_err());
    }
}
