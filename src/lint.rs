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
#[cfg(test)]
mod test_support;

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
    //! The dispatch and the report, on the reference certificates; each rule's own tests are in
    //! the `tests` module of its file.

    use const_oid::db::rfc5280::{ID_CE_EXT_KEY_USAGE, ID_KP_SERVER_AUTH};
    use x509_cert::ext::pkix::ExtendedKeyUsage;

    use super::test_support::*;
    use super::*;

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
}
