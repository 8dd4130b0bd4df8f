//! Fixtures and builders shared by the lint unit tests beside each lint file: the reference
//! certificates, a raw TBSCertificate to mutate, report assertions, extension setters and a
//! subscriber leaf (BR 7.1.2.7) to start from.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::COMMON_NAME;
use const_oid::db::rfc5280::{
    ID_AD_CA_ISSUERS, ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE,
    ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH,
    ID_KP_SERVER_AUTH, ID_PE_AUTHORITY_INFO_ACCESS,
};
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use const_oid::db::rfc6962::CT_PRECERT_POISON;
use der::asn1::{Any, BitString, GeneralizedTime, Ia5String, Int, OctetString, SetOfVec, UtcTime};
use der::{Decode, DecodePem, Encode, Sequence, Tag};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};
use x509_cert::time::Time;
use x509_cert::{Certificate, Version};

use super::*;
use crate::alg::SignatureAlgorithm;
use crate::x509::SignerInfo;

/// Parses a reference certificate from `tests/data/reference-certs`.
pub(super) fn load(file: &str) -> TbsCertificate {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reference-certs")
        .join(file);
    let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Certificate::from_pem(&pem)
        .unwrap()
        .tbs_certificate()
        .clone()
}

pub(super) const X1: &str = "isrg-root-x1.pem";
pub(super) const X2: &str = "isrg-root-x2.pem";
pub(super) const R10: &str = "lets-encrypt-r10-signed-by-isrg-root-x1.pem";
pub(super) const E5: &str = "lets-encrypt-e5-signed-by-isrg-root-x2.pem";
pub(super) const E5_CROSS: &str = "lets-encrypt-e5-cross-signed-by-isrg-root-x1.pem";

/// `Validity` without the encoder's UTCTime/GeneralizedTime normalisation, so tests can build
/// wrongly encoded times.
#[derive(Sequence)]
pub(super) struct RawValidity {
    pub(super) not_before: Time,
    pub(super) not_after: Time,
}

/// `TBSCertificate` (RFC 5280 4.1) with public, freely writable fields.
#[derive(Sequence)]
pub(super) struct RawTbs {
    #[asn1(context_specific = "0", default = "Default::default")]
    pub(super) version: Version,
    pub(super) serial: Int,
    pub(super) signature: AlgorithmIdentifierOwned,
    pub(super) issuer: Name,
    pub(super) validity: RawValidity,
    pub(super) subject: Name,
    pub(super) spki: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(super) issuer_unique_id: Option<BitString>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub(super) subject_unique_id: Option<BitString>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub(super) extensions: Option<Vec<Extension>>,
}

impl RawTbs {
    pub(super) fn exts(&mut self) -> &mut Vec<Extension> {
        self.extensions.get_or_insert_with(Vec::new)
    }

    pub(super) fn ext(&mut self, oid: ObjectIdentifier) -> &mut Extension {
        self.exts().iter_mut().find(|e| e.extn_id == oid).unwrap()
    }

    pub(super) fn decode<'a, T: Decode<'a>>(&'a self, oid: ObjectIdentifier) -> T {
        let ext = self
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == oid)
            .unwrap();
        T::from_der(ext.extn_value.as_bytes()).ok().unwrap()
    }

    /// Replaces (or adds, at the end) extension `oid`.
    pub(super) fn set(&mut self, oid: ObjectIdentifier, critical: bool, value: &impl Encode) {
        let ext = Extension {
            extn_id: oid,
            critical,
            extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
        };
        match self.exts().iter_mut().find(|e| e.extn_id == oid) {
            Some(slot) => *slot = ext,
            None => self.exts().push(ext),
        }
    }

    pub(super) fn remove(&mut self, oid: ObjectIdentifier) {
        let before = self.exts().len();
        self.exts().retain(|e| e.extn_id != oid);
        assert_eq!(self.exts().len() + 1, before, "{oid} was not present");
    }
}

/// Re-encodes `tbs` through [`RawTbs`], applies `change` and parses the result back.
pub(super) fn mutate(tbs: &TbsCertificate, change: impl FnOnce(&mut RawTbs)) -> TbsCertificate {
    let mut raw = RawTbs::from_der(&tbs.to_der().unwrap()).unwrap();
    change(&mut raw);
    TbsCertificate::from_der(&raw.to_der().unwrap()).unwrap()
}

pub(super) fn error_codes(report: &Report) -> Vec<&'static str> {
    let mut codes: Vec<_> = report.errors().map(|f| f.code).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Asserts the Error-level findings are exactly `expected` (warnings are not compared).
#[track_caller]
pub(super) fn assert_errors(report: &Report, expected: &[&str]) {
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(error_codes(report), expected, "report:\n{report}");
}

/// Lints `file` as `kind` after `change`, and checks exactly `expected` errors appear.
#[track_caller]
pub(super) fn assert_mutation(
    file: &str,
    kind: CertKind,
    change: impl FnOnce(&mut RawTbs),
    expected: &[&str],
) {
    assert_mutated(&load(file), kind, change, expected);
}

/// Checks `base` lints clean as `kind`, then that after `change` exactly `expected` errors
/// appear.
#[track_caller]
pub(super) fn assert_mutated(
    base: &TbsCertificate,
    kind: CertKind,
    change: impl FnOnce(&mut RawTbs),
    expected: &[&str],
) {
    assert_errors(&lint_certificate(base, kind), &[]);
    let report = lint_certificate(&mutate(base, change), kind);
    assert_errors(&report, expected);
}

pub(super) fn printable(oid: ObjectIdentifier, value: &str) -> AttributeTypeAndValue {
    atv(oid, Tag::PrintableString, value)
}

pub(super) fn atv(oid: ObjectIdentifier, tag: Tag, value: &str) -> AttributeTypeAndValue {
    AttributeTypeAndValue {
        oid,
        value: Any::new(tag, value.as_bytes()).unwrap(),
    }
}

/// A Name with one RDN per inner vector, in the given order.
pub(super) fn name(rdns: Vec<Vec<AttributeTypeAndValue>>) -> Name {
    let seq: RdnSequence = rdns
        .into_iter()
        .map(|atvs| RelativeDistinguishedName::from(SetOfVec::try_from(atvs).unwrap()))
        .collect::<Vec<_>>()
        .into();
    Name::from_der(&seq.to_der().unwrap()).unwrap()
}

pub(super) fn utc(unix: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
}

pub(super) fn generalized(unix: u64) -> Time {
    Time::GeneralTime(GeneralizedTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
}

pub(super) const DAY: u64 = 86_400;

/// 2030-01-01T00:00:00Z.
pub(super) const Y2030: u64 = 1_893_456_000;

pub(super) fn ku(
    flags: der::flagset::FlagSet<KeyUsages>,
    critical: bool,
) -> impl FnOnce(&mut RawTbs) {
    move |t| t.set(ID_CE_KEY_USAGE, critical, &KeyUsage(flags))
}

pub(super) fn bc(ca: bool, path_len: Option<u8>, critical: bool) -> impl FnOnce(&mut RawTbs) {
    move |t| {
        t.set(
            ID_CE_BASIC_CONSTRAINTS,
            critical,
            &BasicConstraints {
                ca,
                path_len_constraint: path_len,
            },
        );
    }
}

pub(super) fn eku(purposes: Vec<ObjectIdentifier>) -> impl FnOnce(&mut RawTbs) {
    move |t| t.set(ID_CE_EXT_KEY_USAGE, false, &ExtendedKeyUsage(purposes))
}

pub(super) fn cps(policies: Vec<PolicyInformation>) -> impl FnOnce(&mut RawTbs) {
    move |t| {
        t.set(
            ID_CE_CERTIFICATE_POLICIES,
            false,
            &CertificatePolicies(policies),
        )
    }
}

pub(super) fn aia(method: ObjectIdentifier, location: &str) -> impl FnOnce(&mut RawTbs) + use<> {
    let ad = AccessDescription {
        access_method: method,
        access_location: uri(location),
    };
    move |t| {
        t.set(
            ID_PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(vec![ad]),
        )
    }
}

/// An authorityKeyIdentifier with a serial number and no keyIdentifier.
pub(super) fn no_key_id(t: &mut RawTbs) {
    let aki = AuthorityKeyIdentifier {
        authority_cert_serial_number: Some(SerialNumber::from(42u32)),
        ..Default::default()
    };
    t.set(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki);
}

/// `RSAPublicKey` DER for a modulus of `bits` bits (top bit set, odd) and exponent `e`.
pub(super) fn rsa_spki(bits: usize, e: &[u8]) -> SubjectPublicKeyInfoOwned {
    let mut modulus = vec![0xa5u8; bits.div_ceil(8)];
    modulus[0] = 0xff >> ((8 - bits % 8) % 8);
    let key = [
        der::asn1::Uint::new(&modulus).unwrap().to_der().unwrap(),
        der::asn1::Uint::new(e).unwrap().to_der().unwrap(),
    ]
    .concat();
    let seq = Any::new(Tag::Sequence, key).unwrap().to_der().unwrap();
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        subject_public_key: BitString::from_bytes(&seq).unwrap(),
    }
}

pub(super) fn policy(oid: &str) -> PolicyInformation {
    PolicyInformation {
        policy_identifier: ObjectIdentifier::new_unwrap(oid),
        policy_qualifiers: None,
    }
}

pub(super) fn uri(u: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap())
}

pub(super) fn ext(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

/// 2025-09-01T00:00:00Z, before BR 6.3.2 starts shortening subscriber certificates.
pub(super) const SEPT_2025: u64 = 1_756_684_800;

/// 2026-03-15T00:00:00Z: 200 days from here.
pub(super) const MAR_2026: u64 = 1_773_532_800;

/// 2027-03-15T00:00:00Z: 100 days from here.
pub(super) const MAR_2027: u64 = 1_805_068_800;

/// 2029-03-15T00:00:00Z: 47 days from here.
pub(super) const MAR_2029: u64 = 1_868_227_200;

/// strongroom's DV subscriber profile as the brief for it reads, issued by Let's Encrypt E5:
/// KU, EKU, BC, AKI, AIA, SAN, CP, CRLDP, then the poison for a precertificate.
pub(super) struct LeafProfile {
    issuer: Name,
    issuer_key_id: Vec<u8>,
    subject: Name,
    san: Vec<GeneralName>,
    precert: bool,
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts = vec![
            ext(
                ID_CE_KEY_USAGE,
                true,
                &KeyUsage(KeyUsages::DigitalSignature.into()),
            ),
            ext(
                ID_CE_EXT_KEY_USAGE,
                false,
                &ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]),
            ),
            ext(
                ID_CE_BASIC_CONSTRAINTS,
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
            ),
            ext(
                ID_CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(self.issuer_key_id.clone())?),
                    ..Default::default()
                },
            ),
            ext(
                ID_PE_AUTHORITY_INFO_ACCESS,
                false,
                &AuthorityInfoAccessSyntax(vec![AccessDescription {
                    access_method: ID_AD_CA_ISSUERS,
                    access_location: uri("http://e5.i.lencr.org/"),
                }]),
            ),
            ext(
                ID_CE_SUBJECT_ALT_NAME,
                self.subject.is_empty(),
                &SubjectAltName(self.san.clone()),
            ),
            ext(
                ID_CE_CERTIFICATE_POLICIES,
                false,
                &CertificatePolicies(vec![policy("2.23.140.1.2.1")]),
            ),
            ext(
                ID_CE_CRL_DISTRIBUTION_POINTS,
                false,
                &CrlDistributionPoints(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![uri(
                        "http://e5.c.lencr.org/17.crl",
                    )])),
                    reasons: None,
                    crl_issuer: None,
                }]),
            ),
        ];
        if self.precert {
            exts.push(Extension {
                extn_id: CT_PRECERT_POISON,
                critical: true,
                extn_value: OctetString::new(vec![0x05, 0x00])?,
            });
        }
        Ok(exts)
    }
}

/// A P-256 subscriber key from fixed bytes.
pub(super) fn leaf_spki() -> SubjectPublicKeyInfoOwned {
    let key = p256::SecretKey::from_slice(&[0x5a; 32])
        .unwrap()
        .public_key();
    SubjectPublicKeyInfoOwned::from_key(&key).unwrap()
}

/// The TBS that x509-cert's builder finalizes for [`LeafProfile`], valid for 90 days from
/// 2025-09-01, under E5's name and key identifier (nothing is signed).
pub(super) fn leaf_tbs(subject: Name, san: Vec<GeneralName>, precert: bool) -> TbsCertificate {
    let e5 = load(E5);
    let issuer_key_id = RawTbs::from_der(&e5.to_der().unwrap())
        .unwrap()
        .decode::<OctetString>(ID_CE_SUBJECT_KEY_IDENTIFIER)
        .as_bytes()
        .to_vec();
    let profile = LeafProfile {
        issuer: e5.subject().clone(),
        issuer_key_id,
        subject,
        san,
        precert,
    };
    let signer = SignerInfo {
        spki: e5.subject_public_key_info().clone(),
        alg: SignatureAlgorithm::EcdsaSha384,
    };
    let validity = crate::x509::validity(UNIX_EPOCH + Duration::from_secs(SEPT_2025), 90).unwrap();
    let serial = SerialNumber::new(&[
        0x05, 0x9c, 0x51, 0x2e, 0x8a, 0x47, 0x1f, 0xd2, 0x6b, 0x80, 0x15, 0xe4, 0x3a, 0x77, 0xc9,
        0x0e,
    ])
    .unwrap();
    let mut builder = CertificateBuilder::new(profile, serial, validity, leaf_spki()).unwrap();
    TbsCertificate::from_der(&builder.finalize(&signer).unwrap()).unwrap()
}

pub(super) fn dns(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).unwrap())
}

pub(super) fn ip(octets: &[u8]) -> GeneralName {
    GeneralName::IpAddress(OctetString::new(octets).unwrap())
}

pub(super) fn cn(value: &str) -> Name {
    name(vec![vec![printable(COMMON_NAME, value)]])
}

/// A subscriber certificate for www.example.org and example.org, CN www.example.org.
pub(super) fn leaf() -> TbsCertificate {
    leaf_tbs(
        cn("www.example.org"),
        vec![dns("www.example.org"), dns("example.org")],
        false,
    )
}

/// The precertificate of [`leaf`].
pub(super) fn precert() -> TbsCertificate {
    leaf_tbs(
        cn("www.example.org"),
        vec![dns("www.example.org"), dns("example.org")],
        true,
    )
}

/// [`assert_mutated`] on [`leaf`] as a subscriber certificate.
#[track_caller]
pub(super) fn assert_leaf(change: impl FnOnce(&mut RawTbs), expected: &[&str]) {
    assert_mutated(&leaf(), CertKind::Subscriber, change, expected);
}

pub(super) fn warning_codes(report: &Report) -> Vec<&'static str> {
    report.warnings().map(|f| f.code).collect()
}
