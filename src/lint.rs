//! Pre-signing linter: checks a to-be-signed certificate or CRL against RFC 5280 and the CA/Browser
//! Forum TLS Baseline Requirements (BR, v2.x numbering) before the HSM is asked to sign it.
//!
//! ```text
//!  profile + approved request ──finalize──▶ TBS ──lint_certificate / lint_crl──▶ Report
//!                                                                 │
//!                               any Error-level finding ──────────┴──▶ signing refused
//! ```
//!
//! Every function here is pure: it reads the parsed TBS structure and returns a [`Report`]. Nothing
//! here touches the HSM, the clock or the file system. Each check cites the RFC 5280 or BR section it
//! enforces, both in its doc comment and in [`Finding::rule`]; each finding carries a stable
//! [`Finding::code`] that callers and tests can match on.
//!
//! What the linter will not do: it cannot see the signing time, the issuer's certificate or the
//! random-number generator, so rules that need them (notBefore within one day of signing, `issuer`
//! bytes equal to the issuer's `subject` bytes, serial-number entropy, the ECDSA hash matching the
//! *issuer's* curve) are left to the profile and the issuance pipeline. For a self-signed root the
//! issuer is the subject, so those rules are checked here.
//!
//! strongroom's profiles are stricter than the BR in a few places, and the linter enforces our
//! profile: RSASSA-PSS, P-521 and ecdsa-with-SHA512 are not used, `anyPolicy` is never issued, and
//! every serial number has at least 9 octets. Subscriber certificates follow our Domain Validated
//! profile only: keyUsage (digitalSignature, plus keyEncipherment for RSA keys), basicConstraints
//! and cRLDistributionPoints are always present, extKeyUsage holds only serverAuth and clientAuth,
//! and the subject holds nothing but an optional commonName.
//!
//! For a precertificate (RFC 6962 3.1) the linter checks the poison extension and the profile the
//! final certificate will follow; it cannot check that the two carry byte-for-byte the same
//! extensions (BR 7.1.2.9.1), which is the issuance pipeline's job.

mod algorithm;
mod certificate;
mod crl;
mod extensions;
mod name;
mod ocsp_responder;
mod subscriber;

pub use certificate::SubscriberLimit;
pub use ocsp_responder::MAX_RESPONDER_DAYS;

use std::fmt;

use x509_cert::TbsCertificate;
use x509_cert::crl::TbsCertList;

/// Which profile a to-be-signed certificate claims to follow.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Self-signed root CA, BR 7.1.2.1.
    Root,
    /// TLS subordinate CA issued by our root, BR 7.1.2.6.
    SubordinateCa,
    /// Cross-certified subordinate CA, BR 7.1.2.2, in the restricted-EKU case (BR 7.1.2.2.5).
    CrossCertificate,
    /// Domain Validated TLS server certificate, BR 7.1.2.7 (7.1.2.7.2 for the DV subject).
    Subscriber,
    /// Precertificate of a [`CertKind::Subscriber`] certificate, signed directly by the issuing
    /// CA: the same profile plus the critical poison extension and no SCT list (RFC 6962 3.1,
    /// BR 7.1.2.9.1).
    Precertificate,
    /// Delegated OCSP responder certificate, BR 7.1.2.8 (RFC 6960 4.2.2.2), issued by the CA
    /// whose certificates' status it signs.
    OcspResponder,
}

impl CertKind {
    /// `true` for the end-entity profiles, [`CertKind::Subscriber`] and
    /// [`CertKind::Precertificate`].
    fn is_subscriber(self) -> bool {
        matches!(self, CertKind::Subscriber | CertKind::Precertificate)
    }
}

/// Which certificates a to-be-signed CRL covers; the BR rules differ (BR 4.9.7, 7.2.2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// A CRL issued by a root or subordinate CA covering CA certificates (including cross
    /// certificates): nextUpdate at most 12 months after thisUpdate and a `reasonCode` on every
    /// entry (BR 4.9.7, 7.2.2).
    CaCertificates,
    /// A CRL covering subscriber certificates: nextUpdate at most 10 days after thisUpdate
    /// (BR 4.9.7).
    SubscriberCertificates,
}

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Violates a MUST / MUST NOT (or a rule of strongroom's own profile): signing is refused.
    Error,
    /// Departs from a SHOULD / SHOULD NOT / NOT RECOMMENDED: reported, signing may proceed.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a to-be-signed structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whether this finding blocks signing.
    pub severity: Severity,
    /// Stable identifier of the check, e.g. `"root.eku.present"`.
    pub code: &'static str,
    /// The rule the check enforces, e.g. `"BR 7.1.2.1.2"` or `"RFC 5280 4.2.1.9"`.
    pub rule: &'static str,
    /// What was found, naming the field.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {} ({})",
            self.severity, self.code, self.message, self.rule
        )
    }
}

/// All findings of one lint run, in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every finding, errors and warnings alike.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The findings that block signing.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The findings that do not block signing.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// `true` when there is no Error-level finding (warnings may remain).
    pub fn is_clean(&self) -> bool {
        self.errors().next().is_none()
    }

    /// `true` when some finding has this code.
    pub fn contains(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// Turns the report into the signing decision: `Ok` (possibly with warnings) when clean,
    /// [`Error::Blocked`] otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Blocked`] when the report holds at least one Error-level finding.
    pub fn into_result(self) -> Result<Report, Error> {
        if self.is_clean() {
            Ok(self)
        } else {
            Err(Error::Blocked(self))
        }
    }

    pub(crate) fn error(&mut self, code: &'static str, rule: &'static str, message: String) {
        self.push(Severity::Error, code, rule, message);
    }

    pub(crate) fn warning(&mut self, code: &'static str, rule: &'static str, message: String) {
        self.push(Severity::Warning, code, rule, message);
    }

    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        rule: &'static str,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            rule,
            message,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.findings.is_empty() {
            return f.write_str("no findings");
        }
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// Errors of the lint stage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The report holds at least one Error-level finding, so the structure must not be signed.
    Blocked(Report),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Blocked(report) => {
                let n = report.errors().count();
                write!(f, "lint refused signing ({n} error(s)):\n{report}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Lints a to-be-signed certificate against the profile `kind` claims to follow.
///
/// Runs the checks common to every certificate (RFC 5280 4.1, BR 7.1, 7.1.3, 7.1.4, 6.1.5/6.1.6),
/// the common extension checks (BR 7.1.2.10 for CAs, 7.1.2.11) and the profile's own checks
/// (BR 7.1.2.1 for [`CertKind::Root`], 7.1.2.6 for [`CertKind::SubordinateCa`], 7.1.2.2 for
/// [`CertKind::CrossCertificate`], 7.1.2.7 and 6.3.2 for [`CertKind::Subscriber`], and those plus
/// RFC 6962 3.1 and BR 7.1.2.9 for [`CertKind::Precertificate`], 7.1.2.8 for
/// [`CertKind::OcspResponder`]).
pub fn lint_certificate(tbs: &TbsCertificate, kind: CertKind) -> Report {
    let mut report = Report::default();
    certificate::lint_fields(tbs, kind, &mut report);
    if kind.is_subscriber() {
        name::lint_subscriber_subject(tbs.subject(), &mut report);
    } else {
        name::lint_ca_subject(tbs.subject(), &mut report);
    }
    algorithm::lint_signature_algorithm(
        tbs.signature(),
        algorithm::Signed::Certificate,
        &mut report,
    );
    algorithm::lint_spki(tbs.subject_public_key_info(), &mut report);
    if kind == CertKind::Root {
        algorithm::lint_self_signed_algorithm(tbs, &mut report);
    }
    if kind == CertKind::OcspResponder {
        ocsp_responder::lint(tbs, &mut report);
    } else {
        extensions::lint(tbs, kind, &mut report);
    }
    report
}

/// Lints a to-be-signed CRL (RFC 5280 5, BR 4.9.7 and 7.2) covering the certificates `kind` names.
pub fn lint_crl(tbs: &TbsCertList, kind: CrlKind) -> Report {
    let mut report = Report::default();
    crl::lint(tbs, kind, &mut report);
    report
}

/// Lints one revokedCertificates entry on its own (RFC 5280 5.1.2.6 and 5.3, BR 7.2.2), as
/// [`lint_crl`] does for each entry: for CRLs too large to lint as one structure. Duplicate
/// serials across entries are not seen here.
pub fn lint_crl_entry(entry: &x509_cert::crl::RevokedCert, kind: CrlKind) -> Report {
    let mut report = Report::default();
    crl::lint_entry(entry, kind, &mut report);
    report
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};

    use const_oid::ObjectIdentifier;
    use const_oid::db::rfc4519::{
        COMMON_NAME, COUNTRY_NAME, ORGANIZATION_NAME, ORGANIZATIONAL_UNIT_NAME,
    };
    use const_oid::db::rfc5280::{
        ANY_EXTENDED_KEY_USAGE, ANY_POLICY, ID_AD_CA_ISSUERS, ID_CE_AUTHORITY_KEY_IDENTIFIER,
        ID_CE_BASIC_CONSTRAINTS, ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS,
        ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
        ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
        ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_SERVER_AUTH, ID_PE_AUTHORITY_INFO_ACCESS,
        ID_QT_CPS, ID_QT_UNOTICE,
    };
    use const_oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_521_R_1,
        SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    };
    use const_oid::db::rfc6962::{CT_PRECERT_POISON, CT_PRECERT_SCTS, CT_PRECERT_SIGNING_CERT};
    use der::asn1::{
        Any, BitString, GeneralizedTime, Ia5String, Int, OctetString, SetOfVec, UtcTime,
    };
    use der::{Decode, DecodePem, Encode, Sequence, Tag};
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::builder::profile::BuilderProfile;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::crl::{RevokedCert, TbsCertList};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
    use x509_cert::ext::pkix::constraints::NameConstraints;
    use x509_cert::ext::pkix::crl::dp::{DistributionPoint, Reasons};
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::{
        AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
        CertificatePolicies, CrlDistributionPoints, CrlNumber, CrlReason, ExtendedKeyUsage,
        KeyUsage, KeyUsages, SubjectAltName,
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

    // ---- fixtures ------------------------------------------------------------------------------

    /// Parses a reference certificate from `tests/data/reference-certs`.
    fn load(file: &str) -> TbsCertificate {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reference-certs")
            .join(file);
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Certificate::from_pem(&pem)
            .unwrap()
            .tbs_certificate()
            .clone()
    }

    const X1: &str = "isrg-root-x1.pem";
    const X2: &str = "isrg-root-x2.pem";
    const R10: &str = "lets-encrypt-r10-signed-by-isrg-root-x1.pem";
    const E5: &str = "lets-encrypt-e5-signed-by-isrg-root-x2.pem";
    const E5_CROSS: &str = "lets-encrypt-e5-cross-signed-by-isrg-root-x1.pem";

    /// `Validity` without the encoder's UTCTime/GeneralizedTime normalisation, so tests can build
    /// wrongly encoded times.
    #[derive(Sequence)]
    struct RawValidity {
        not_before: Time,
        not_after: Time,
    }

    /// `TBSCertificate` (RFC 5280 4.1) with public, freely writable fields.
    #[derive(Sequence)]
    struct RawTbs {
        #[asn1(context_specific = "0", default = "Default::default")]
        version: Version,
        serial: Int,
        signature: AlgorithmIdentifierOwned,
        issuer: Name,
        validity: RawValidity,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
        issuer_unique_id: Option<BitString>,
        #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
        subject_unique_id: Option<BitString>,
        #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
        extensions: Option<Vec<Extension>>,
    }

    impl RawTbs {
        fn exts(&mut self) -> &mut Vec<Extension> {
            self.extensions.get_or_insert_with(Vec::new)
        }

        fn ext(&mut self, oid: ObjectIdentifier) -> &mut Extension {
            self.exts().iter_mut().find(|e| e.extn_id == oid).unwrap()
        }

        fn decode<'a, T: Decode<'a>>(&'a self, oid: ObjectIdentifier) -> T {
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
        fn set(&mut self, oid: ObjectIdentifier, critical: bool, value: &impl Encode) {
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

        fn remove(&mut self, oid: ObjectIdentifier) {
            let before = self.exts().len();
            self.exts().retain(|e| e.extn_id != oid);
            assert_eq!(self.exts().len() + 1, before, "{oid} was not present");
        }
    }

    /// Re-encodes `tbs` through [`RawTbs`], applies `change` and parses the result back.
    fn mutate(tbs: &TbsCertificate, change: impl FnOnce(&mut RawTbs)) -> TbsCertificate {
        let mut raw = RawTbs::from_der(&tbs.to_der().unwrap()).unwrap();
        change(&mut raw);
        TbsCertificate::from_der(&raw.to_der().unwrap()).unwrap()
    }

    fn error_codes(report: &Report) -> Vec<&'static str> {
        let mut codes: Vec<_> = report.errors().map(|f| f.code).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// Asserts the Error-level findings are exactly `expected` (warnings are not compared).
    #[track_caller]
    fn assert_errors(report: &Report, expected: &[&str]) {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(error_codes(report), expected, "report:\n{report}");
    }

    /// Lints `file` as `kind` after `change`, and checks exactly `expected` errors appear.
    #[track_caller]
    fn assert_mutation(
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
    fn assert_mutated(
        base: &TbsCertificate,
        kind: CertKind,
        change: impl FnOnce(&mut RawTbs),
        expected: &[&str],
    ) {
        assert_errors(&lint_certificate(base, kind), &[]);
        let report = lint_certificate(&mutate(base, change), kind);
        assert_errors(&report, expected);
    }

    fn printable(oid: ObjectIdentifier, value: &str) -> AttributeTypeAndValue {
        atv(oid, Tag::PrintableString, value)
    }

    fn atv(oid: ObjectIdentifier, tag: Tag, value: &str) -> AttributeTypeAndValue {
        AttributeTypeAndValue {
            oid,
            value: Any::new(tag, value.as_bytes()).unwrap(),
        }
    }

    /// A Name with one RDN per inner vector, in the given order.
    fn name(rdns: Vec<Vec<AttributeTypeAndValue>>) -> Name {
        let seq: RdnSequence = rdns
            .into_iter()
            .map(|atvs| RelativeDistinguishedName::from(SetOfVec::try_from(atvs).unwrap()))
            .collect::<Vec<_>>()
            .into();
        Name::from_der(&seq.to_der().unwrap()).unwrap()
    }

    fn utc(unix: u64) -> Time {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
    }

    fn generalized(unix: u64) -> Time {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(Duration::from_secs(unix)).unwrap())
    }

    const DAY: u64 = 86_400;
    /// 2030-01-01T00:00:00Z.
    const Y2030: u64 = 1_893_456_000;

    // ---- extension setters shared by the profile tests --------------------------------------------

    fn ku(flags: der::flagset::FlagSet<KeyUsages>, critical: bool) -> impl FnOnce(&mut RawTbs) {
        move |t| t.set(ID_CE_KEY_USAGE, critical, &KeyUsage(flags))
    }

    fn bc(ca: bool, path_len: Option<u8>, critical: bool) -> impl FnOnce(&mut RawTbs) {
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

    fn eku(purposes: Vec<ObjectIdentifier>) -> impl FnOnce(&mut RawTbs) {
        move |t| t.set(ID_CE_EXT_KEY_USAGE, false, &ExtendedKeyUsage(purposes))
    }

    fn cps(policies: Vec<PolicyInformation>) -> impl FnOnce(&mut RawTbs) {
        move |t| {
            t.set(
                ID_CE_CERTIFICATE_POLICIES,
                false,
                &CertificatePolicies(policies),
            )
        }
    }

    fn aia(method: ObjectIdentifier, location: &str) -> impl FnOnce(&mut RawTbs) + use<> {
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
    fn no_key_id(t: &mut RawTbs) {
        let aki = AuthorityKeyIdentifier {
            authority_cert_serial_number: Some(SerialNumber::from(42u32)),
            ..Default::default()
        };
        t.set(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki);
    }

    // ---- the reference certificates --------------------------------------------------------------

    #[test]
    fn isrg_roots_lint_clean_as_root() {
        for file in [X1, X2] {
            let report = lint_certificate(&load(file), CertKind::Root);
            assert_errors(&report, &[]);
            assert!(report.is_clean());
        }
        // X1 has no AKI, which BR 7.1.2.1.2 only RECOMMENDS: a warning, not an error.
        let x1 = lint_certificate(&load(X1), CertKind::Root);
        assert_eq!(
            x1.warnings().map(|f| f.code).collect::<Vec<_>>(),
            ["root.aki.missing"]
        );
    }

    #[test]
    fn lets_encrypt_2024_intermediates_lint_clean_as_subordinate() {
        for file in [
            R10,
            "lets-encrypt-r11-signed-by-isrg-root-x1.pem",
            E5,
            "lets-encrypt-e6-signed-by-isrg-root-x2.pem",
        ] {
            let report = lint_certificate(&load(file), CertKind::SubordinateCa);
            assert!(report.findings.is_empty(), "{file}:\n{report}");
        }
    }

    #[test]
    fn lets_encrypt_cross_signs_lint_clean_as_cross_certificate() {
        for file in [E5_CROSS, "lets-encrypt-e6-cross-signed-by-isrg-root-x1.pem"] {
            let report = lint_certificate(&load(file), CertKind::CrossCertificate);
            assert!(report.findings.is_empty(), "{file}:\n{report}");
        }
    }

    #[test]
    fn r3_cross_sign_without_eku_is_refused() {
        // The 2020-09-30 IdenTrust cross-sign of R3 that was re-issued because it had no EKU.
        let tbs =
            load("lets-encrypt-r3-cross-signed-by-dst-root-ca-x3-superseded-2020-09-30-no-eku.pem");
        let report = lint_certificate(&tbs, CertKind::CrossCertificate);
        assert_errors(&report, &["subca.eku.missing"]);
        assert!(report.contains("subca.policies.qualifier_present"));
        assert!(matches!(report.into_result(), Err(Error::Blocked(_))));
    }

    #[test]
    fn dst_root_ca_x3_predates_the_rules() {
        let report = lint_certificate(&load("dst-root-ca-x3.pem"), CertKind::Root);
        assert_errors(
            &report,
            &["ca.subject.missing_attribute", "cert.signature.algorithm"],
        );
    }

    // ---- report API ------------------------------------------------------------------------------

    #[test]
    fn report_display_lists_every_finding_with_its_rule() {
        let report = lint_certificate(
            &mutate(&load(X1), |t| {
                t.set(
                    ID_CE_EXT_KEY_USAGE,
                    false,
                    &ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]),
                );
            }),
            CertKind::Root,
        );
        let text = report.to_string();
        assert_eq!(text.lines().count(), report.findings.len(), "{text}");
        assert!(text.contains("error [root.eku.present]"), "{text}");
        assert!(text.contains("(BR 7.1.2.1.2)"), "{text}");
        assert!(text.contains("warning [root.aki.missing]"), "{text}");
        assert!(!report.is_clean());
        assert_eq!(Report::default().to_string(), "no findings");
        assert!(Report::default().into_result().is_ok());
    }

    // ---- common certificate fields ----------------------------------------------------------------

    #[test]
    fn version_must_be_v3() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.version = Version::V2,
            &["cert.version.not_v3"],
        );
    }

    #[test]
    fn serial_rules() {
        let cases: [(&[u8], &str); 4] = [
            (&[0x00], "cert.serial.zero"),
            (&[0x80, 1, 2, 3, 4, 5, 6, 7, 8], "cert.serial.negative"),
            (&[0x01, 2, 3, 4, 5, 6, 7, 8], "cert.serial.too_short"),
            (&[0x7f; 21], "cert.serial.too_long"),
        ];
        for (bytes, code) in cases {
            let expected: &[&str] = if code == "cert.serial.zero" {
                &["cert.serial.zero", "cert.serial.too_short"]
            } else {
                &[code]
            };
            assert_mutation(
                R10,
                CertKind::SubordinateCa,
                |t| t.serial = Int::new(bytes).unwrap(),
                expected,
            );
        }
        // Nine octets is the shortest we accept.
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.serial = Int::new(&[0x01, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap(),
            &[],
        );
    }

    #[test]
    fn signature_algorithm_rules() {
        let sha1 = |t: &mut RawTbs| t.signature.oid = SHA_1_WITH_RSA_ENCRYPTION;
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            sha1,
            &["cert.signature.algorithm"],
        );
        let rsa_without_null = |t: &mut RawTbs| t.signature.parameters = None;
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            rsa_without_null,
            &["cert.signature.parameters"],
        );
        let ecdsa_with_null = |t: &mut RawTbs| t.signature.parameters = Some(Any::null());
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            ecdsa_with_null,
            &["cert.signature.parameters"],
        );
    }

    #[test]
    fn self_signed_root_hash_matches_its_curve() {
        let p384_signed_with_sha256 = |t: &mut RawTbs| t.signature.oid = ECDSA_WITH_SHA_256;
        assert_mutation(
            X2,
            CertKind::Root,
            p384_signed_with_sha256,
            &["root.signature.key_mismatch"],
        );
        let rsa_root_signed_with_ecdsa = |t: &mut RawTbs| {
            t.signature = AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_384,
                parameters: None,
            };
        };
        assert_mutation(
            X1,
            CertKind::Root,
            rsa_root_signed_with_ecdsa,
            &["root.signature.key_mismatch"],
        );
    }

    #[test]
    fn issuer_must_not_be_empty() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.issuer = name(vec![]),
            &["cert.issuer.empty"],
        );
    }

    #[test]
    fn root_issuer_must_be_its_subject() {
        let other = |t: &mut RawTbs| {
            t.issuer = name(vec![
                vec![printable(COUNTRY_NAME, "US")],
                vec![printable(
                    ORGANIZATION_NAME,
                    "Internet Security Research Group",
                )],
                vec![printable(COMMON_NAME, "ISRG Root X9")],
            ]);
        };
        assert_mutation(X1, CertKind::Root, other, &["root.issuer.not_subject"]);
        // Same text, other string type: not byte-for-byte equal.
        let utf8 = |t: &mut RawTbs| {
            t.issuer = name(vec![
                vec![printable(COUNTRY_NAME, "US")],
                vec![atv(
                    ORGANIZATION_NAME,
                    Tag::Utf8String,
                    "Internet Security Research Group",
                )],
                vec![printable(COMMON_NAME, "ISRG Root X1")],
            ]);
        };
        assert_mutation(X1, CertKind::Root, utf8, &["root.issuer.not_subject"]);
    }

    #[test]
    fn validity_rules() {
        let inverted = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: utc(Y2030 - DAY),
            };
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            inverted,
            &["cert.validity.not_before_after_not_after"],
        );
        let generalized_before_2050 = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: generalized(Y2030 + 365 * DAY),
            };
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            generalized_before_2050,
            &["cert.validity.encoding"],
        );
        // 2050 and later in GeneralizedTime is right.
        let generalized_after_2050 = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(Y2030),
                not_after: generalized(Y2030 + 21 * 365 * DAY),
            };
        };
        assert_mutation(R10, CertKind::SubordinateCa, generalized_after_2050, &[]);
    }

    #[test]
    fn root_validity_between_2922_and_9132_days() {
        let with_days = |days: u64| {
            move |t: &mut RawTbs| {
                // Inclusive period: notAfter = notBefore + days - 1 second.
                t.validity = RawValidity {
                    not_before: utc(Y2030 - 10 * 365 * DAY),
                    not_after: utc(Y2030 - 10 * 365 * DAY + days * DAY - 1),
                };
            }
        };
        assert_mutation(
            X1,
            CertKind::Root,
            with_days(9133),
            &["root.validity.length"],
        );
        assert_mutation(
            X1,
            CertKind::Root,
            with_days(2921),
            &["root.validity.length"],
        );
        assert_mutation(X1, CertKind::Root, with_days(9132), &[]);
        assert_mutation(X1, CertKind::Root, with_days(2922), &[]);
    }

    #[test]
    fn unique_ids_are_refused() {
        let uid =
            |t: &mut RawTbs| t.subject_unique_id = Some(BitString::from_bytes(&[1, 2]).unwrap());
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            uid,
            &["cert.unique_id.present"],
        );
    }

    // ---- subject names ---------------------------------------------------------------------------

    fn r10_subject(rdns: Vec<Vec<AttributeTypeAndValue>>) -> impl FnOnce(&mut RawTbs) {
        move |t| t.subject = name(rdns)
    }

    #[test]
    fn subject_rules() {
        let c = || printable(COUNTRY_NAME, "US");
        let o = || printable(ORGANIZATION_NAME, "Let's Encrypt");
        let cn = || printable(COMMON_NAME, "R10");
        let cases: Vec<(Vec<Vec<AttributeTypeAndValue>>, &[&str])> = vec![
            (vec![vec![c()], vec![o()], vec![cn()]], &[]),
            (
                vec![vec![c()], vec![cn()], vec![o()]],
                &["cert.subject.order"],
            ),
            (
                vec![vec![c(), o()], vec![cn()]],
                &["cert.subject.rdn_not_single"],
            ),
            (
                vec![vec![c()], vec![cn()]],
                &["ca.subject.missing_attribute"],
            ),
            (
                vec![
                    vec![c()],
                    vec![o()],
                    vec![printable(ORGANIZATIONAL_UNIT_NAME, "Ops")],
                    vec![cn()],
                ],
                &["ca.subject.ou_present"],
            ),
            (
                vec![vec![printable(COUNTRY_NAME, "us")], vec![o()], vec![cn()]],
                &["cert.subject.country"],
            ),
            (
                vec![vec![printable(COUNTRY_NAME, "USA")], vec![o()], vec![cn()]],
                &["cert.subject.country"],
            ),
            (
                vec![
                    vec![atv(COUNTRY_NAME, Tag::Utf8String, "US")],
                    vec![o()],
                    vec![cn()],
                ],
                &["cert.subject.country"],
            ),
            (
                vec![
                    vec![c()],
                    vec![atv(ORGANIZATION_NAME, Tag::Utf8String, "Let's Encrypt")],
                    vec![cn()],
                ],
                &[],
            ),
            (
                vec![
                    vec![c()],
                    vec![atv(ORGANIZATION_NAME, Tag::Ia5String, "Let's Encrypt")],
                    vec![cn()],
                ],
                &["cert.subject.string_type"],
            ),
            (
                vec![
                    vec![c()],
                    vec![o()],
                    vec![printable(COMMON_NAME, &"R".repeat(65))],
                ],
                &["cert.subject.too_long"],
            ),
            (
                vec![
                    vec![c()],
                    vec![o()],
                    vec![cn()],
                    vec![printable(COMMON_NAME, "R11")],
                ],
                &["ca.subject.duplicate_attribute"],
            ),
        ];
        for (rdns, expected) in cases {
            assert_mutation(R10, CertKind::SubordinateCa, r10_subject(rdns), expected);
        }
    }

    // ---- subject public key ----------------------------------------------------------------------

    /// `RSAPublicKey` DER for a modulus of `bits` bits (top bit set, odd) and exponent `e`.
    fn rsa_spki(bits: usize, e: &[u8]) -> SubjectPublicKeyInfoOwned {
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

    #[test]
    fn rsa_key_rules() {
        let cases: [(usize, &[u8], &[&str]); 6] = [
            (2048, &[1, 0, 1], &[]),
            (4096, &[1, 0, 1], &[]),
            (2047, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (2052, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (1024, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (2048, &[1, 0, 0], &["cert.spki.rsa.exponent"]),
        ];
        for (bits, e, expected) in cases {
            assert_mutation(
                R10,
                CertKind::SubordinateCa,
                |t| t.spki = rsa_spki(bits, e),
                expected,
            );
        }
        // e = 3 is allowed but outside the SHOULD range.
        let tbs = mutate(&load(R10), |t| t.spki = rsa_spki(2048, &[3]));
        let report = lint_certificate(&tbs, CertKind::SubordinateCa);
        assert!(report.is_clean(), "{report}");
        assert!(report.contains("cert.spki.rsa.exponent_range"));
        let e1 = mutate(&load(R10), |t| t.spki = rsa_spki(2048, &[1]));
        assert_errors(
            &lint_certificate(&e1, CertKind::SubordinateCa),
            &["cert.spki.rsa.exponent"],
        );
    }

    #[test]
    fn rsa_key_needs_null_parameters() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.spki.algorithm.parameters = None,
            &["cert.spki.algorithm"],
        );
    }

    #[test]
    fn ec_key_rules() {
        let p521 = |t: &mut RawTbs| {
            t.spki.algorithm.parameters = Some(Any::encode_from(&SECP_521_R_1).unwrap());
        };
        assert_mutation(E5, CertKind::SubordinateCa, p521, &["cert.spki.algorithm"]);
        let no_curve = |t: &mut RawTbs| t.spki.algorithm.parameters = None;
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            no_curve,
            &["cert.spki.algorithm"],
        );
        let off_curve = |t: &mut RawTbs| {
            let mut point = t.spki.subject_public_key.raw_bytes().to_vec();
            let last = point.len() - 1;
            point[last] ^= 1;
            t.spki.subject_public_key = BitString::from_bytes(&point).unwrap();
        };
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            off_curve,
            &["cert.spki.ec.point"],
        );
        let compressed = |t: &mut RawTbs| {
            let point = t.spki.subject_public_key.raw_bytes();
            let mut c = vec![0x02 | (point[96] & 1)];
            c.extend_from_slice(&point[1..49]);
            t.spki.subject_public_key = BitString::from_bytes(&c).unwrap();
        };
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            compressed,
            &["cert.spki.ec.point"],
        );
        assert_eq!(
            load(E5).subject_public_key_info().algorithm.oid,
            ID_EC_PUBLIC_KEY
        );
    }

    // ---- extensions common to CAs ----------------------------------------------------------------

    #[test]
    fn duplicate_extension_is_refused() {
        let dup = |t: &mut RawTbs| {
            let ski = t.ext(ID_CE_SUBJECT_KEY_IDENTIFIER).clone();
            t.exts().push(ski);
        };
        assert_mutation(R10, CertKind::SubordinateCa, dup, &["cert.ext.duplicate"]);
    }

    #[test]
    fn malformed_extension_is_refused() {
        let bad = |t: &mut RawTbs| {
            t.ext(ID_CE_KEY_USAGE).extn_value = OctetString::new(vec![0x30, 0x00]).unwrap();
        };
        assert_mutation(R10, CertKind::SubordinateCa, bad, &["cert.ext.malformed"]);
    }

    #[test]
    fn key_usage_rules() {
        let ca = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
        assert_mutation(
            X1,
            CertKind::Root,
            ku(KeyUsages::CRLSign.into(), true),
            &["ca.key_usage.key_cert_sign_missing"],
        );
        assert_mutation(
            X1,
            CertKind::Root,
            ku(KeyUsages::KeyCertSign.into(), true),
            &["ca.key_usage.crl_sign_missing"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            ku(ca | KeyUsages::DigitalSignature, false),
            &["ca.key_usage.not_critical"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            ku(ca | KeyUsages::KeyEncipherment, true),
            &["ca.key_usage.forbidden"],
        );
        assert_mutation(
            X1,
            CertKind::Root,
            ku(ca | KeyUsages::DigitalSignature, true),
            &[],
        );
        assert_mutation(
            X1,
            CertKind::Root,
            |t| t.remove(ID_CE_KEY_USAGE),
            &["ca.key_usage.missing"],
        );
    }

    #[test]
    fn basic_constraints_rules() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            bc(true, Some(0), false),
            &["ca.basic_constraints.not_critical"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            bc(false, None, true),
            &["ca.basic_constraints.not_ca"],
        );
        assert_mutation(R10, CertKind::SubordinateCa, bc(true, None, true), &[]);
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.remove(ID_CE_BASIC_CONSTRAINTS),
            &["ca.basic_constraints.missing"],
        );
        // pathLenConstraint in a root is NOT RECOMMENDED: a warning only.
        let root = lint_certificate(&mutate(&load(X2), bc(true, Some(1), true)), CertKind::Root);
        assert!(root.is_clean(), "{root}");
        assert!(root.contains("root.basic_constraints.path_len"));
    }

    #[test]
    fn subject_key_identifier_rules() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.remove(ID_CE_SUBJECT_KEY_IDENTIFIER),
            &["ca.ski.missing"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.ext(ID_CE_SUBJECT_KEY_IDENTIFIER).critical = true,
            &["ca.ski.critical"],
        );
    }

    // ---- root profile ------------------------------------------------------------------------------

    #[test]
    fn root_must_not_carry_eku() {
        let eku = |t: &mut RawTbs| {
            t.set(
                ID_CE_EXT_KEY_USAGE,
                false,
                &ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]),
            )
        };
        assert_mutation(X1, CertKind::Root, eku, &["root.eku.present"]);
    }

    #[test]
    fn root_aki_must_match_ski() {
        let ski_x1: Vec<u8> = RawTbs::from_der(&load(X1).to_der().unwrap())
            .unwrap()
            .decode::<OctetString>(ID_CE_SUBJECT_KEY_IDENTIFIER)
            .as_bytes()
            .to_vec();
        let aki = |key: Vec<u8>| {
            move |t: &mut RawTbs| {
                let aki = AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(key).unwrap()),
                    ..Default::default()
                };
                t.set(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki);
            }
        };
        assert_mutation(
            X1,
            CertKind::Root,
            aki(vec![0x42; 20]),
            &["root.aki.mismatch"],
        );
        let report = lint_certificate(&mutate(&load(X1), aki(ski_x1)), CertKind::Root);
        assert!(report.findings.is_empty(), "{report}");
    }

    #[test]
    fn root_policies_and_crldp_are_warnings() {
        let r10 = RawTbs::from_der(&load(R10).to_der().unwrap()).unwrap();
        let cp = r10.decode::<CertificatePolicies>(ID_CE_CERTIFICATE_POLICIES);
        let dp = r10.decode::<CrlDistributionPoints>(ID_CE_CRL_DISTRIBUTION_POINTS);
        let tbs = mutate(&load(X1), |t| {
            t.set(ID_CE_CERTIFICATE_POLICIES, false, &cp);
            t.set(ID_CE_CRL_DISTRIBUTION_POINTS, false, &dp);
        });
        let report = lint_certificate(&tbs, CertKind::Root);
        assert!(report.is_clean(), "{report}");
        assert!(report.contains("root.policies.present"));
        assert!(report.contains("root.crldp.present"));
    }

    // ---- subordinate and cross-certificate profiles ---------------------------------------------

    #[test]
    fn subordinate_aki_rules() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.remove(ID_CE_AUTHORITY_KEY_IDENTIFIER),
            &["subca.aki.missing"],
        );
        let with_serial = |t: &mut RawTbs| {
            let mut aki = t.decode::<AuthorityKeyIdentifier>(ID_CE_AUTHORITY_KEY_IDENTIFIER);
            aki.authority_cert_serial_number = Some(SerialNumber::from(42u32));
            t.set(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki);
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            with_serial,
            &["ca.aki.issuer_serial_present"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            no_key_id,
            &["ca.aki.issuer_serial_present", "ca.aki.key_id_missing"],
        );
    }

    #[test]
    fn eku_rules() {
        for kind in [CertKind::SubordinateCa, CertKind::CrossCertificate] {
            let file = if kind == CertKind::SubordinateCa {
                E5
            } else {
                E5_CROSS
            };
            assert_mutation(file, kind, eku(vec![ID_KP_SERVER_AUTH]), &[]);
            assert_mutation(
                file,
                kind,
                eku(vec![ID_KP_SERVER_AUTH, ID_KP_CODE_SIGNING]),
                &["subca.eku.forbidden"],
            );
            assert_mutation(
                file,
                kind,
                eku(vec![ID_KP_SERVER_AUTH, ANY_EXTENDED_KEY_USAGE]),
                &["subca.eku.forbidden"],
            );
            assert_mutation(
                file,
                kind,
                eku(vec![ID_KP_SERVER_AUTH, CT_PRECERT_SIGNING_CERT]),
                &["subca.eku.forbidden"],
            );
            assert_mutation(
                file,
                kind,
                eku(vec![ID_KP_CLIENT_AUTH]),
                &["subca.eku.server_auth_missing"],
            );
            assert_mutation(
                file,
                kind,
                |t| t.remove(ID_CE_EXT_KEY_USAGE),
                &["subca.eku.missing"],
            );
            assert_mutation(
                file,
                kind,
                |t| t.ext(ID_CE_EXT_KEY_USAGE).critical = true,
                &["subca.eku.critical"],
            );
        }
    }

    fn policy(oid: &str) -> PolicyInformation {
        PolicyInformation {
            policy_identifier: ObjectIdentifier::new_unwrap(oid),
            policy_qualifiers: None,
        }
    }

    #[test]
    fn certificate_policy_rules() {
        let dv = || policy("2.23.140.1.2.1");
        let ours = || policy("1.3.6.1.4.1.44947.1.1.1");
        let any = || PolicyInformation {
            policy_identifier: ANY_POLICY,
            policy_qualifiers: None,
        };
        assert_mutation(R10, CertKind::SubordinateCa, cps(vec![dv(), ours()]), &[]);
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![dv(), any()]),
            &["subca.policies.any_policy"],
        );
        assert_mutation(
            E5_CROSS,
            CertKind::CrossCertificate,
            cps(vec![dv(), any()]),
            &["subca.policies.any_policy"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![ours()]),
            &["subca.policies.reserved_count"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![dv(), policy("2.23.140.1.2.2")]),
            &["subca.policies.reserved_count"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![dv(), ours(), ours()]),
            &["subca.policies.duplicate"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.remove(ID_CE_CERTIFICATE_POLICIES),
            &["subca.policies.missing"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.ext(ID_CE_CERTIFICATE_POLICIES).critical = true,
            &["subca.policies.critical"],
        );

        let qualified = |id: ObjectIdentifier, url: &str| {
            let q = PolicyQualifierInfo {
                policy_qualifier_id: id,
                qualifier: Some(Any::encode_from(&Ia5String::new(url).unwrap()).unwrap()),
            };
            PolicyInformation {
                policy_qualifiers: Some(vec![q]),
                ..ours()
            }
        };
        let tbs = mutate(
            &load(R10),
            cps(vec![dv(), qualified(ID_QT_CPS, "https://cps.example.org/")]),
        );
        let report = lint_certificate(&tbs, CertKind::SubordinateCa);
        assert_errors(&report, &[]);
        assert!(report.contains("subca.policies.qualifier_present"));
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![dv(), qualified(ID_QT_CPS, "ftp://cps.example.org/")]),
            &["subca.policies.qualifier"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            cps(vec![
                dv(),
                qualified(ID_QT_UNOTICE, "http://cps.example.org/"),
            ]),
            &["subca.policies.qualifier"],
        );
    }

    fn uri(u: &str) -> GeneralName {
        GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap())
    }

    #[test]
    fn crl_distribution_point_rules() {
        let crldp = |dp: DistributionPoint| {
            move |t: &mut RawTbs| {
                t.set(
                    ID_CE_CRL_DISTRIBUTION_POINTS,
                    false,
                    &CrlDistributionPoints(vec![dp]),
                )
            }
        };
        let http = || DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(
                "http://x1.c.example.org/",
            )])),
            reasons: None,
            crl_issuer: None,
        };
        assert_mutation(R10, CertKind::SubordinateCa, crldp(http()), &[]);
        let ldap = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(
                "ldap://x1.c.example.org/",
            )])),
            ..http()
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            crldp(ldap),
            &["subca.crldp.distribution_point"],
        );
        let reasons = DistributionPoint {
            reasons: Some(Reasons::KeyCompromise.into()),
            ..http()
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            crldp(reasons),
            &["subca.crldp.reasons"],
        );
        let issuer = DistributionPoint {
            crl_issuer: Some(vec![uri("http://issuer.example.org/")]),
            ..http()
        };
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            crldp(issuer),
            &["subca.crldp.crl_issuer"],
        );
        assert_mutation(
            E5_CROSS,
            CertKind::CrossCertificate,
            |t| t.remove(ID_CE_CRL_DISTRIBUTION_POINTS),
            &["subca.crldp.missing"],
        );
    }

    #[test]
    fn authority_info_access_rules() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            aia(ID_AD_CA_ISSUERS, "https://x1.i.example.org/"),
            &["subca.aia.location"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            aia(
                ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.5"),
                "http://x1.i.example.org/",
            ),
            &["subca.aia.method"],
        );
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.ext(ID_PE_AUTHORITY_INFO_ACCESS).critical = true,
            &["subca.aia.critical"],
        );
        // AIA is only SHOULD.
        let report = lint_certificate(
            &mutate(&load(R10), |t| t.remove(ID_PE_AUTHORITY_INFO_ACCESS)),
            CertKind::SubordinateCa,
        );
        assert!(report.is_clean(), "{report}");
        assert!(report.contains("subca.aia.missing"));
    }

    // ---- CRLs ------------------------------------------------------------------------------------

    fn ext(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
        Extension {
            extn_id: oid,
            critical,
            extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
        }
    }

    fn revoked(serial: &[u8], reason: Option<CrlReason>) -> RevokedCert {
        RevokedCert {
            serial_number: SerialNumber::new(serial).unwrap(),
            revocation_date: utc(Y2030 - DAY),
            crl_entry_extensions: reason.map(|r| vec![ext(ID_CE_CRL_REASONS, false, &r)]),
        }
    }

    /// A well-formed CRL of ISRG Root X2 listing two revoked CA certificates.
    fn base_crl() -> TbsCertList {
        let x2 = load(X2);
        TbsCertList {
            version: Version::V2,
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_384,
                parameters: None,
            },
            issuer: x2.subject().clone(),
            this_update: utc(Y2030),
            next_update: Some(utc(Y2030 + 300 * DAY)),
            revoked_certificates: Some(vec![
                revoked(&[0x01; 17], Some(CrlReason::CessationOfOperation)),
                revoked(&[0x02; 17], Some(CrlReason::KeyCompromise)),
            ]),
            crl_extensions: Some(vec![
                ext(
                    ID_CE_AUTHORITY_KEY_IDENTIFIER,
                    false,
                    &AuthorityKeyIdentifier {
                        key_identifier: Some(OctetString::new([0x7c; 20]).unwrap()),
                        ..Default::default()
                    },
                ),
                ext(
                    ID_CE_CRL_NUMBER,
                    false,
                    &CrlNumber::try_from(1_700_000_000u64).unwrap(),
                ),
            ]),
        }
    }

    #[track_caller]
    fn assert_crl(change: impl FnOnce(&mut TbsCertList), kind: CrlKind, expected: &[&str]) {
        assert_errors(&lint_crl(&base_crl(), CrlKind::CaCertificates), &[]);
        let mut crl = base_crl();
        change(&mut crl);
        assert_errors(&lint_crl(&crl, kind), expected);
    }

    fn crl_ext(crl: &mut TbsCertList, oid: ObjectIdentifier) -> &mut Extension {
        crl.crl_extensions
            .as_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e.extn_id == oid)
            .unwrap()
    }

    fn entry_reason(crl: &mut TbsCertList) -> &mut Extension {
        let entry = &mut crl.revoked_certificates.as_mut().unwrap()[0];
        &mut entry.crl_entry_extensions.as_mut().unwrap()[0]
    }

    #[test]
    fn hand_built_crl_lints_clean() {
        let report = lint_crl(&base_crl(), CrlKind::CaCertificates);
        assert!(report.findings.is_empty(), "{report}");
        // With no revoked certificate the list is absent.
        assert_crl(
            |c| c.revoked_certificates = None,
            CrlKind::CaCertificates,
            &[],
        );
    }

    #[test]
    fn crl_reason_code_rules() {
        let reason = |r: CrlReason| {
            move |c: &mut TbsCertList| *entry_reason(c) = ext(ID_CE_CRL_REASONS, false, &r)
        };
        assert_crl(
            reason(CrlReason::Unspecified),
            CrlKind::CaCertificates,
            &["crl.entry.reason.unspecified"],
        );
        assert_crl(
            reason(CrlReason::CertificateHold),
            CrlKind::CaCertificates,
            &["crl.entry.reason.certificate_hold"],
        );
        assert_crl(
            reason(CrlReason::RemoveFromCRL),
            CrlKind::CaCertificates,
            &["crl.entry.reason.not_allowed"],
        );
        assert_crl(
            reason(CrlReason::CaCompromise),
            CrlKind::CaCertificates,
            &[],
        );
        let subscriber_window = |c: &mut TbsCertList| c.next_update = Some(utc(Y2030 + 7 * DAY));
        let ca_compromise_for_subscriber = |c: &mut TbsCertList| {
            subscriber_window(c);
            reason(CrlReason::CaCompromise)(c);
        };
        assert_crl(
            ca_compromise_for_subscriber,
            CrlKind::SubscriberCertificates,
            &["crl.entry.reason.not_allowed"],
        );
        assert_crl(
            |c| entry_reason(c).critical = true,
            CrlKind::CaCertificates,
            &["crl.entry.reason.critical"],
        );
        let as_integer =
            |c: &mut TbsCertList| *entry_reason(c) = ext(ID_CE_CRL_REASONS, false, &1u8);
        assert_crl(
            as_integer,
            CrlKind::CaCertificates,
            &["crl.entry.reason.malformed"],
        );
        // A CA certificate's entry MUST carry a reason; a subscriber's need not.
        let no_reason = |c: &mut TbsCertList| {
            c.revoked_certificates.as_mut().unwrap()[0].crl_entry_extensions = None
        };
        assert_crl(
            no_reason,
            CrlKind::CaCertificates,
            &["crl.entry.reason.missing"],
        );
        assert_crl(
            |c| {
                no_reason(c);
                subscriber_window(c);
            },
            CrlKind::SubscriberCertificates,
            &[],
        );
    }

    #[test]
    fn crl_entry_rules() {
        let dup_serial = |c: &mut TbsCertList| {
            c.revoked_certificates.as_mut().unwrap()[1].serial_number =
                SerialNumber::new(&[0x01; 17]).unwrap();
        };
        assert_crl(
            dup_serial,
            CrlKind::CaCertificates,
            &["crl.entry.serial_duplicate"],
        );
        let dup_ext = |c: &mut TbsCertList| {
            let e = entry_reason(c).clone();
            c.revoked_certificates.as_mut().unwrap()[0]
                .crl_entry_extensions
                .as_mut()
                .unwrap()
                .push(e);
        };
        assert_crl(
            dup_ext,
            CrlKind::CaCertificates,
            &["crl.entry.ext.duplicate"],
        );
        assert_crl(
            |c| c.revoked_certificates = Some(vec![]),
            CrlKind::CaCertificates,
            &["crl.revoked.empty"],
        );
        let generalized_date = |c: &mut TbsCertList| {
            c.revoked_certificates.as_mut().unwrap()[0].revocation_date = generalized(Y2030 - DAY)
        };
        assert_crl(
            generalized_date,
            CrlKind::CaCertificates,
            &["crl.time.encoding"],
        );
    }

    #[test]
    fn crl_header_rules() {
        assert_crl(
            |c| c.version = Version::V1,
            CrlKind::CaCertificates,
            &["crl.version.not_v2"],
        );
        assert_crl(
            |c| c.issuer = name(vec![]),
            CrlKind::CaCertificates,
            &["crl.issuer.empty"],
        );
        assert_crl(
            |c| c.signature.oid = SHA_1_WITH_RSA_ENCRYPTION,
            CrlKind::CaCertificates,
            &["crl.signature.algorithm"],
        );
        assert_crl(
            |c| {
                c.signature = AlgorithmIdentifierOwned {
                    oid: SHA_256_WITH_RSA_ENCRYPTION,
                    parameters: None,
                }
            },
            CrlKind::CaCertificates,
            &["crl.signature.parameters"],
        );
        assert_crl(
            |c| c.this_update = generalized(Y2030),
            CrlKind::CaCertificates,
            &["crl.time.encoding"],
        );
    }

    #[test]
    fn crl_next_update_rules() {
        assert_crl(
            |c| c.next_update = None,
            CrlKind::CaCertificates,
            &["crl.next_update.missing"],
        );
        assert_crl(
            |c| c.next_update = Some(utc(Y2030)),
            CrlKind::CaCertificates,
            &["crl.next_update.not_after_this_update"],
        );
        // 2030-01-01 + 12 months = 2031-01-01, exactly: allowed; one second more: refused.
        assert_crl(
            |c| c.next_update = Some(utc(Y2030 + 365 * DAY)),
            CrlKind::CaCertificates,
            &[],
        );
        assert_crl(
            |c| c.next_update = Some(utc(Y2030 + 365 * DAY + 1)),
            CrlKind::CaCertificates,
            &["crl.next_update.too_far"],
        );
        // Subscriber CRLs: ten days.
        assert_crl(
            |c| c.next_update = Some(utc(Y2030 + 10 * DAY)),
            CrlKind::SubscriberCertificates,
            &[],
        );
        assert_crl(
            |c| c.next_update = Some(utc(Y2030 + 10 * DAY + 1)),
            CrlKind::SubscriberCertificates,
            &["crl.next_update.too_far"],
        );
    }

    #[test]
    fn crl_extension_rules() {
        let remove = |oid: ObjectIdentifier| {
            move |c: &mut TbsCertList| {
                c.crl_extensions
                    .as_mut()
                    .unwrap()
                    .retain(|e| e.extn_id != oid)
            }
        };
        assert_crl(
            remove(ID_CE_CRL_NUMBER),
            CrlKind::CaCertificates,
            &["crl.crl_number.missing"],
        );
        assert_crl(
            remove(ID_CE_AUTHORITY_KEY_IDENTIFIER),
            CrlKind::CaCertificates,
            &["crl.aki.missing"],
        );
        assert_crl(
            |c| crl_ext(c, ID_CE_CRL_NUMBER).critical = true,
            CrlKind::CaCertificates,
            &["crl.crl_number.critical"],
        );
        let number = |bytes: &'static [u8]| {
            move |c: &mut TbsCertList| {
                *crl_ext(c, ID_CE_CRL_NUMBER) =
                    ext(ID_CE_CRL_NUMBER, false, &Int::new(bytes).unwrap())
            }
        };
        assert_crl(
            number(&[0xff]),
            CrlKind::CaCertificates,
            &["crl.crl_number.negative"],
        );
        assert_crl(
            number(&[0x7f; 21]),
            CrlKind::CaCertificates,
            &["crl.crl_number.too_long"],
        );
        assert_crl(number(&[0x00]), CrlKind::CaCertificates, &[]);
        let dup = |c: &mut TbsCertList| {
            let e = crl_ext(c, ID_CE_CRL_NUMBER).clone();
            c.crl_extensions.as_mut().unwrap().push(e);
        };
        assert_crl(dup, CrlKind::CaCertificates, &["crl.ext.duplicate"]);
    }

    // ---- subscriber and precertificate profiles -------------------------------------------------

    /// 2025-09-01T00:00:00Z, before BR 6.3.2 starts shortening subscriber certificates.
    const SEPT_2025: u64 = 1_756_684_800;
    /// 2026-03-15T00:00:00Z: 200 days from here.
    const MAR_2026: u64 = 1_773_532_800;
    /// 2027-03-15T00:00:00Z: 100 days from here.
    const MAR_2027: u64 = 1_805_068_800;
    /// 2029-03-15T00:00:00Z: 47 days from here.
    const MAR_2029: u64 = 1_868_227_200;

    /// strongroom's DV subscriber profile as the brief for it reads, issued by Let's Encrypt E5:
    /// KU, EKU, BC, AKI, AIA, SAN, CP, CRLDP, then the poison for a precertificate.
    struct LeafProfile {
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
    fn leaf_spki() -> SubjectPublicKeyInfoOwned {
        let key = p256::SecretKey::from_slice(&[0x5a; 32])
            .unwrap()
            .public_key();
        SubjectPublicKeyInfoOwned::from_key(&key).unwrap()
    }

    /// The TBS that x509-cert's builder finalizes for [`LeafProfile`], valid for 90 days from
    /// 2025-09-01, under E5's name and key identifier (nothing is signed).
    fn leaf_tbs(subject: Name, san: Vec<GeneralName>, precert: bool) -> TbsCertificate {
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
        let validity =
            crate::x509::validity(UNIX_EPOCH + Duration::from_secs(SEPT_2025), 90).unwrap();
        let serial = SerialNumber::new(&[
            0x05, 0x9c, 0x51, 0x2e, 0x8a, 0x47, 0x1f, 0xd2, 0x6b, 0x80, 0x15, 0xe4, 0x3a, 0x77,
            0xc9, 0x0e,
        ])
        .unwrap();
        let mut builder = CertificateBuilder::new(profile, serial, validity, leaf_spki()).unwrap();
        TbsCertificate::from_der(&builder.finalize(&signer).unwrap()).unwrap()
    }

    fn dns(name: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(name).unwrap())
    }

    fn ip(octets: &[u8]) -> GeneralName {
        GeneralName::IpAddress(OctetString::new(octets).unwrap())
    }

    fn cn(value: &str) -> Name {
        name(vec![vec![printable(COMMON_NAME, value)]])
    }

    /// A subscriber certificate for www.example.org and example.org, CN www.example.org.
    fn leaf() -> TbsCertificate {
        leaf_tbs(
            cn("www.example.org"),
            vec![dns("www.example.org"), dns("example.org")],
            false,
        )
    }

    /// The precertificate of [`leaf`].
    fn precert() -> TbsCertificate {
        leaf_tbs(
            cn("www.example.org"),
            vec![dns("www.example.org"), dns("example.org")],
            true,
        )
    }

    /// [`assert_mutated`] on [`leaf`] as a subscriber certificate.
    #[track_caller]
    fn assert_leaf(change: impl FnOnce(&mut RawTbs), expected: &[&str]) {
        assert_mutated(&leaf(), CertKind::Subscriber, change, expected);
    }

    fn warning_codes(report: &Report) -> Vec<&'static str> {
        report.warnings().map(|f| f.code).collect()
    }

    #[test]
    fn subscriber_and_precertificate_lint_clean() {
        // The commonName is allowed but NOT RECOMMENDED (BR 7.1.2.7.2): the only finding.
        let report = lint_certificate(&leaf(), CertKind::Subscriber);
        assert_errors(&report, &[]);
        assert_eq!(warning_codes(&report), ["leaf.subject.cn_present"]);
        let report = lint_certificate(&precert(), CertKind::Precertificate);
        assert_errors(&report, &[]);
        assert_eq!(warning_codes(&report), ["leaf.subject.cn_present"]);
        // An empty subject with a critical subjectAltName draws no finding at all.
        let bare = leaf_tbs(name(vec![]), vec![dns("www.example.org")], false);
        let report = lint_certificate(&bare, CertKind::Subscriber);
        assert!(report.findings.is_empty(), "{report}");
        // Each is refused under the other's kind, and neither is a CA certificate.
        assert_errors(
            &lint_certificate(&leaf(), CertKind::Precertificate),
            &["precert.poison.missing"],
        );
        assert_errors(
            &lint_certificate(&precert(), CertKind::Subscriber),
            &["leaf.poison.present"],
        );
        assert!(!lint_certificate(&leaf(), CertKind::SubordinateCa).is_clean());
    }

    #[test]
    fn subscriber_san_rules() {
        let san = |names: Vec<GeneralName>, critical: bool| {
            move |t: &mut RawTbs| t.set(ID_CE_SUBJECT_ALT_NAME, critical, &SubjectAltName(names))
        };
        let with = |extra: GeneralName| san(vec![dns("www.example.org"), extra], false);
        assert_leaf(|t| t.remove(ID_CE_SUBJECT_ALT_NAME), &["leaf.san.missing"]);
        assert_leaf(
            |t| t.ext(ID_CE_SUBJECT_ALT_NAME).critical = true,
            &["leaf.san.critical"],
        );
        assert_leaf(|t| t.subject = name(vec![]), &["leaf.san.not_critical"]);
        assert_leaf(
            san(vec![], false),
            &["leaf.san.empty", "leaf.subject.cn_not_in_san"],
        );
        assert_leaf(with(uri("https://www.example.org/")), &["leaf.san.type"]);
        for ok in [
            "*.example.org",
            "xn--bcher-kva.example",
            "a-b.example.org",
            "1.example.org",
        ] {
            assert_leaf(with(dns(ok)), &[]);
        }
        let long_label = format!("{}.example.org", "a".repeat(64));
        for bad in [
            "EXAMPLE.org",
            "foo.*.example.org",
            "w*.example.org",
            "*",
            "*.org.",
            "localhost",
            "example.org.",
            "-a.example.org",
            "ab--c.example.org",
            "a..example.org",
            "a_b.example.org",
            long_label.as_str(),
        ] {
            assert_mutated(
                &leaf(),
                CertKind::Subscriber,
                with(dns(bad)),
                &["leaf.san.dns_name"],
            );
        }
        assert_leaf(with(ip(&[192, 0, 2, 1])), &[]);
        assert_leaf(with(ip(&[0x20; 16])), &[]);
        assert_leaf(with(ip(&[192, 0, 2, 1, 0])), &["leaf.san.ip_address"]);
    }

    #[test]
    fn subscriber_subject_rules() {
        let www = || printable(COMMON_NAME, "www.example.org");
        let cases: Vec<(Vec<Vec<AttributeTypeAndValue>>, &[&str])> = vec![
            (vec![vec![printable(COMMON_NAME, "example.org")]], &[]),
            (
                vec![vec![printable(COMMON_NAME, "mail.example.org")]],
                &["leaf.subject.cn_not_in_san"],
            ),
            // Character for character: a dNSName is never matched case-insensitively.
            (
                vec![vec![printable(COMMON_NAME, "WWW.example.org")]],
                &["leaf.subject.cn_not_in_san"],
            ),
            (
                vec![vec![www()], vec![printable(COMMON_NAME, "example.org")]],
                &["leaf.subject.cn_duplicate"],
            ),
            (
                vec![vec![printable(ORGANIZATION_NAME, "Example")], vec![www()]],
                &["leaf.subject.attribute"],
            ),
            (
                vec![vec![printable(COUNTRY_NAME, "US")], vec![www()]],
                &["leaf.subject.attribute"],
            ),
            (
                vec![vec![atv(COMMON_NAME, Tag::Ia5String, "www.example.org")]],
                &["cert.subject.string_type"],
            ),
        ];
        for (rdns, expected) in cases {
            assert_mutated(
                &leaf(),
                CertKind::Subscriber,
                move |t| t.subject = name(rdns),
                expected,
            );
        }
        // A commonName longer than 64 characters cannot be used, even when it is a SAN value.
        let long = format!("{}.{}.example.org", "a".repeat(30), "b".repeat(21));
        assert_eq!(long.len(), 64);
        let longer = format!("c{long}");
        assert_errors(
            &lint_certificate(
                &leaf_tbs(cn(&long), vec![dns(&long)], false),
                CertKind::Subscriber,
            ),
            &[],
        );
        assert_errors(
            &lint_certificate(
                &leaf_tbs(cn(&longer), vec![dns(&longer)], false),
                CertKind::Subscriber,
            ),
            &["cert.subject.too_long"],
        );
    }

    #[test]
    fn subscriber_common_name_may_be_an_ip_address() {
        let v4 = leaf_tbs(cn("192.0.2.1"), vec![ip(&[192, 0, 2, 1])], false);
        assert_errors(&lint_certificate(&v4, CertKind::Subscriber), &[]);
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        let rfc5952 = leaf_tbs(cn("2001:db8::1"), vec![ip(&v6)], false);
        assert_errors(&lint_certificate(&rfc5952, CertKind::Subscriber), &[]);
        // RFC 5952 4.1: leading zeros MUST be suppressed.
        let padded = leaf_tbs(cn("2001:0db8::1"), vec![ip(&v6)], false);
        assert_errors(
            &lint_certificate(&padded, CertKind::Subscriber),
            &["leaf.subject.cn_not_in_san"],
        );
    }

    #[test]
    fn subscriber_eku_rules() {
        assert_leaf(eku(vec![ID_KP_SERVER_AUTH]), &[]);
        assert_leaf(
            eku(vec![ID_KP_SERVER_AUTH, ID_KP_CODE_SIGNING]),
            &["leaf.eku.forbidden"],
        );
        // Other purposes are only NOT RECOMMENDED in the BR; our profile refuses them.
        assert_leaf(
            eku(vec![
                ID_KP_SERVER_AUTH,
                ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.3.12"),
            ]),
            &["leaf.eku.forbidden"],
        );
        assert_leaf(
            eku(vec![ID_KP_CLIENT_AUTH]),
            &["leaf.eku.server_auth_missing"],
        );
        assert_leaf(|t| t.remove(ID_CE_EXT_KEY_USAGE), &["leaf.eku.missing"]);
        assert_leaf(
            |t| t.ext(ID_CE_EXT_KEY_USAGE).critical = true,
            &["leaf.eku.critical"],
        );
    }

    #[test]
    fn subscriber_key_usage_rules() {
        let rsa = |flags: der::flagset::FlagSet<KeyUsages>| {
            move |t: &mut RawTbs| {
                t.spki = rsa_spki(2048, &[1, 0, 1]);
                ku(flags, true)(t);
            }
        };
        let ds = KeyUsages::DigitalSignature;
        assert_leaf(
            ku(ds | KeyUsages::KeyEncipherment, true),
            &["leaf.key_usage.forbidden"],
        );
        assert_leaf(
            ku(ds | KeyUsages::KeyAgreement, true),
            &["leaf.key_usage.forbidden"],
        );
        assert_leaf(rsa(ds | KeyUsages::KeyEncipherment), &[]);
        assert_leaf(
            rsa(ds | KeyUsages::DataEncipherment),
            &["leaf.key_usage.forbidden"],
        );
        assert_leaf(
            rsa(KeyUsages::KeyEncipherment.into()),
            &["leaf.key_usage.digital_signature_missing"],
        );
        assert_leaf(
            ku(ds | KeyUsages::KeyCertSign, true),
            &["leaf.key_usage.forbidden"],
        );
        assert_leaf(
            |t| t.ext(ID_CE_KEY_USAGE).critical = false,
            &["leaf.key_usage.not_critical"],
        );
        assert_leaf(|t| t.remove(ID_CE_KEY_USAGE), &["leaf.key_usage.missing"]);
    }

    #[test]
    fn subscriber_basic_constraints_rules() {
        assert_leaf(bc(true, None, true), &["leaf.basic_constraints.ca"]);
        assert_leaf(
            bc(false, Some(0), true),
            &["leaf.basic_constraints.path_len"],
        );
        assert_leaf(
            |t| t.ext(ID_CE_BASIC_CONSTRAINTS).critical = false,
            &["leaf.basic_constraints.not_critical"],
        );
        assert_leaf(
            |t| t.remove(ID_CE_BASIC_CONSTRAINTS),
            &["leaf.basic_constraints.missing"],
        );
    }

    #[test]
    fn subscriber_validity_follows_the_br_schedule() {
        let days_from = |start: u64, days: u64| {
            move |t: &mut RawTbs| {
                // Inclusive period: notAfter = notBefore + days - 1 second.
                t.validity = RawValidity {
                    not_before: utc(start),
                    not_after: utc(start + days * DAY - 1),
                };
            }
        };
        assert_leaf(days_from(SEPT_2025, 400), &["leaf.validity.too_long"]);
        let schedule = [
            (SEPT_2025, 398),
            (MAR_2026 - 1, 398),
            (MAR_2026, 200),
            (MAR_2027 - 1, 200),
            (MAR_2027, 100),
            (MAR_2029 - 1, 100),
            (MAR_2029, 47),
            (Y2030, 47),
        ];
        for (start, max) in schedule {
            assert_leaf(days_from(start, max), &[]);
            assert_mutated(
                &leaf(),
                CertKind::Subscriber,
                days_from(start, max + 1),
                &["leaf.validity.too_long"],
            );
        }
        // One second over the limit is a day too long (BR 6.3.2).
        let one_second_over = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(MAR_2029),
                not_after: utc(MAR_2029 + 47 * DAY),
            };
        };
        assert_leaf(one_second_over, &["leaf.validity.too_long"]);
        let inverted = |t: &mut RawTbs| {
            t.validity = RawValidity {
                not_before: utc(SEPT_2025),
                not_after: utc(SEPT_2025 - 1),
            };
        };
        assert_leaf(inverted, &["cert.validity.not_before_after_not_after"]);
    }

    #[test]
    fn subscriber_schedule_dates_are_midnight_utc() {
        for (unix, (y, m, d)) in [
            (SEPT_2025, (2025, 9, 1)),
            (MAR_2026, (2026, 3, 15)),
            (MAR_2027, (2027, 3, 15)),
            (MAR_2029, (2029, 3, 15)),
        ] {
            let date = der::DateTime::new(y, m, d, 0, 0, 0).unwrap();
            assert_eq!(date.unix_duration().as_secs(), unix);
        }
    }

    #[test]
    fn subscriber_policy_rules() {
        let dv = || policy("2.23.140.1.2.1");
        assert_leaf(cps(vec![dv(), policy("1.3.6.1.4.1.44947.1.1.1")]), &[]);
        assert_leaf(
            cps(vec![dv(), policy("2.23.140.1.2.2")]),
            &["leaf.policies.reserved_count"],
        );
        assert_leaf(
            cps(vec![policy("2.23.140.1.2.2")]),
            &["leaf.policies.not_dv"],
        );
        assert_leaf(
            cps(vec![
                dv(),
                PolicyInformation {
                    policy_identifier: ANY_POLICY,
                    policy_qualifiers: None,
                },
            ]),
            &["leaf.policies.any_policy"],
        );
        assert_leaf(
            |t| t.remove(ID_CE_CERTIFICATE_POLICIES),
            &["leaf.policies.missing"],
        );
    }

    #[test]
    fn subscriber_aki_aia_crldp_rules() {
        assert_leaf(
            |t| t.remove(ID_CE_AUTHORITY_KEY_IDENTIFIER),
            &["leaf.aki.missing"],
        );
        assert_leaf(
            no_key_id,
            &["leaf.aki.issuer_serial_present", "leaf.aki.key_id_missing"],
        );
        // authorityInformationAccess is a MUST for subscribers, a SHOULD for CAs.
        assert_leaf(
            |t| t.remove(ID_PE_AUTHORITY_INFO_ACCESS),
            &["leaf.aia.missing"],
        );
        assert_leaf(
            aia(ID_AD_CA_ISSUERS, "ldap://e5.i.lencr.org/"),
            &["leaf.aia.location"],
        );
        // OCSP alone is allowed; caIssuers is only a SHOULD.
        let ocsp_only = mutate(
            &leaf(),
            aia(
                ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1"),
                "http://o.example/",
            ),
        );
        let report = lint_certificate(&ocsp_only, CertKind::Subscriber);
        assert_errors(&report, &[]);
        assert!(report.contains("leaf.aia.ca_issuers_missing"), "{report}");
        assert_leaf(
            |t| t.remove(ID_CE_CRL_DISTRIBUTION_POINTS),
            &["leaf.crldp.missing"],
        );
        assert_leaf(
            |t| t.ext(ID_CE_CRL_DISTRIBUTION_POINTS).critical = true,
            &["leaf.crldp.critical"],
        );
    }

    #[test]
    fn subscriber_ski_is_a_warning_and_name_constraints_an_error() {
        let ski = |t: &mut RawTbs| {
            t.set(
                ID_CE_SUBJECT_KEY_IDENTIFIER,
                false,
                &OctetString::new([0x11; 20]).unwrap(),
            )
        };
        let report = lint_certificate(&mutate(&leaf(), ski), CertKind::Subscriber);
        assert_errors(&report, &[]);
        assert!(report.contains("leaf.ski.present"), "{report}");
        assert_leaf(
            |t| {
                t.set(
                    ID_CE_SUBJECT_KEY_IDENTIFIER,
                    true,
                    &OctetString::new([0x11; 20]).unwrap(),
                )
            },
            &["leaf.ski.critical"],
        );
        let nc = NameConstraints {
            permitted_subtrees: None,
            excluded_subtrees: None,
        };
        assert_leaf(
            |t| t.set(ID_CE_NAME_CONSTRAINTS, true, &nc),
            &["leaf.name_constraints.present"],
        );
    }

    #[test]
    fn precertificate_poison_rules() {
        assert_mutated(
            &precert(),
            CertKind::Precertificate,
            |t| t.remove(CT_PRECERT_POISON),
            &["precert.poison.missing"],
        );
        assert_mutated(
            &precert(),
            CertKind::Precertificate,
            |t| t.ext(CT_PRECERT_POISON).critical = false,
            &["precert.poison.not_critical"],
        );
        for wrong in [vec![0x04, 0x00], vec![0x05, 0x01, 0x00], vec![]] {
            assert_mutated(
                &precert(),
                CertKind::Precertificate,
                |t| t.ext(CT_PRECERT_POISON).extn_value = OctetString::new(wrong).unwrap(),
                &["precert.poison.value"],
            );
        }
        let scts = |critical: bool| {
            move |t: &mut RawTbs| {
                t.set(
                    CT_PRECERT_SCTS,
                    critical,
                    &OctetString::new(vec![0x00, 0x00]).unwrap(),
                )
            }
        };
        assert_mutated(
            &precert(),
            CertKind::Precertificate,
            scts(false),
            &["precert.sct_present"],
        );
        // The profile's other rules apply to a precertificate as to its certificate.
        assert_mutated(
            &precert(),
            CertKind::Precertificate,
            |t| t.remove(ID_CE_SUBJECT_ALT_NAME),
            &["leaf.san.missing"],
        );
    }

    #[test]
    fn subscriber_sct_list_rules() {
        let scts = |critical: bool, value: &'static [u8]| {
            move |t: &mut RawTbs| {
                let ext = Extension {
                    extn_id: CT_PRECERT_SCTS,
                    critical,
                    extn_value: OctetString::new(value).unwrap(),
                };
                t.exts().push(ext);
            }
        };
        // An empty SignedCertificateTimestampList, wrapped in its OCTET STRING.
        assert_leaf(scts(false, &[0x04, 0x02, 0x00, 0x00]), &[]);
        assert_leaf(
            scts(true, &[0x04, 0x02, 0x00, 0x00]),
            &["leaf.sct.critical"],
        );
        assert_leaf(scts(false, &[0x05, 0x00]), &["cert.ext.malformed"]);
    }
}
