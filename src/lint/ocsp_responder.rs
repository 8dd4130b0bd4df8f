//! Checks on a delegated OCSP responder certificate's extensions and lifetime (BR 7.1.2.8,
//! RFC 6960 4.2.2.2).
//!
//! The BR's extension table (7.1.2.8.2): authorityKeyIdentifier, extKeyUsage,
//! id-pkix-ocsp-nocheck and keyUsage MUST be present; basicConstraints MAY be; subjectKeyIdentifier
//! SHOULD be; authorityInformationAccess is NOT RECOMMENDED; nameConstraints, subjectAltName,
//! certificatePolicies and cRLDistributionPoints MUST NOT be.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_AD_OCSP, ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE,
    ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_KP_OCSP_SIGNING, ID_PE_AUTHORITY_INFO_ACCESS,
};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
use const_oid::db::rfc6962::CT_PRECERT_SCTS;
use x509_cert::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage,
    KeyUsage, KeyUsages, SubjectKeyIdentifier,
};

use super::Report;
use super::algorithm::oid_name;
use super::extensions::{KEY_USAGE_BITS, decode_ext, expect_critical, find, lint_duplicates};

/// The BR's extension table for OCSP responder certificates.
const TABLE: &str = "BR 7.1.2.8.2";

/// The longest lifetime strongroom gives a delegated responder certificate, in days.
///
/// BR 7.1.2.8.1 sets no upper bound on notAfter. A responder certificate carries
/// id-pkix-ocsp-nocheck, so it cannot be revoked in any way a client checks: RFC 6960 4.2.2.2.1
/// warns that a compromise of its key is as serious as that of the CA's CRL-signing key for the
/// certificate's whole validity, and suggests a very short lifetime renewed often. strongroom's
/// profile therefore caps it at 90 days.
pub const MAX_RESPONDER_DAYS: u64 = 90;

/// Extensions the profile may carry without a finding of their own.
const ALLOWED: &[ObjectIdentifier] = &[
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_EXT_KEY_USAGE,
    ID_PKIX_OCSP_NOCHECK,
    ID_CE_KEY_USAGE,
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_PE_AUTHORITY_INFO_ACCESS,
    CT_PRECERT_SCTS,
];

/// Extensions BR 7.1.2.8.2 forbids.
const FORBIDDEN: [(ObjectIdentifier, &str); 4] = [
    (ID_CE_NAME_CONSTRAINTS, "nameConstraints"),
    (ID_CE_SUBJECT_ALT_NAME, "subjectAltName"),
    (ID_CE_CERTIFICATE_POLICIES, "certificatePolicies"),
    (ID_CE_CRL_DISTRIBUTION_POINTS, "cRLDistributionPoints"),
];

/// Runs every check for a delegated OCSP responder certificate.
pub(super) fn lint(tbs: &TbsCertificate, report: &mut Report) {
    let exts: &[Extension] = tbs.extensions().map_or(&[], Vec::as_slice);
    lint_duplicates(exts, "cert.ext.duplicate", "certificate", report);
    lint_lifetime(tbs, report);
    lint_key_usage(exts, report);
    lint_eku(exts, report);
    lint_nocheck(exts, report);
    lint_aki(exts, report);
    lint_ski(exts, report);
    lint_basic_constraints(exts, report);
    lint_aia(exts, report);
    for (oid, name) in FORBIDDEN {
        if find(exts, oid).is_some() {
            report.error(
                "ocsp_responder.ext.forbidden",
                TABLE,
                format!("{name} MUST NOT be present in an OCSP responder certificate"),
            );
        }
    }
    for ext in exts {
        if !ALLOWED.contains(&ext.extn_id) && !FORBIDDEN.iter().any(|(o, _)| *o == ext.extn_id) {
            report.warning(
                "cert.ext.unexpected",
                "BR 7.1.2.11.5",
                format!(
                    "{} extension is outside the profile, which is NOT RECOMMENDED",
                    oid_name(&ext.extn_id)
                ),
            );
        }
    }
}

/// strongroom's cap on the lifetime (see [`MAX_RESPONDER_DAYS`]; BR 7.1.2.8.1 sets none).
fn lint_lifetime(tbs: &TbsCertificate, report: &mut Report) {
    let v = tbs.validity();
    let span = v
        .not_after
        .to_unix_duration()
        .saturating_sub(v.not_before.to_unix_duration())
        .as_secs()
        + 1;
    if span > MAX_RESPONDER_DAYS * 86_400 {
        report.error(
            "ocsp_responder.validity.too_long",
            "RFC 6960 4.2.2.2.1",
            format!(
                "validity of {} days is over strongroom's {MAX_RESPONDER_DAYS}-day limit for a \
                 responder certificate with id-pkix-ocsp-nocheck, which cannot be revoked",
                span.div_ceil(86_400)
            ),
        );
    }
}

/// BR 7.1.2.8.7: keyUsage is present and critical, digitalSignature set, no other bit.
fn lint_key_usage(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_CE_KEY_USAGE).is_none() {
        report.error(
            "ocsp_responder.key_usage.missing",
            TABLE,
            "keyUsage is missing".to_string(),
        );
        return;
    }
    let Some((ext, ku)) = decode_ext::<KeyUsage>(exts, ID_CE_KEY_USAGE, report) else {
        return;
    };
    expect_critical(
        ext,
        true,
        "keyUsage",
        "ocsp_responder.key_usage.not_critical",
        TABLE,
        report,
    );
    if !ku.0.contains(KeyUsages::DigitalSignature) {
        report.error(
            "ocsp_responder.key_usage.digital_signature_missing",
            "BR 7.1.2.8.7",
            "keyUsage lacks digitalSignature".to_string(),
        );
    }
    for (bit, name) in KEY_USAGE_BITS {
        if bit != KeyUsages::DigitalSignature && ku.0.contains(bit) {
            report.error(
                "ocsp_responder.key_usage.forbidden",
                "BR 7.1.2.8.7",
                format!("keyUsage sets {name}, which an OCSP responder certificate MUST NOT"),
            );
        }
    }
}

/// BR 7.1.2.8.5 and RFC 6960 4.2.2.2: extKeyUsage holds id-kp-OCSPSigning and nothing else.
fn lint_eku(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_CE_EXT_KEY_USAGE).is_none() {
        report.error(
            "ocsp_responder.eku.missing",
            TABLE,
            "extKeyUsage is missing".to_string(),
        );
        return;
    }
    let Some((_, eku)) = decode_ext::<ExtendedKeyUsage>(exts, ID_CE_EXT_KEY_USAGE, report) else {
        return;
    };
    if !eku.0.contains(&ID_KP_OCSP_SIGNING) {
        report.error(
            "ocsp_responder.eku.ocsp_signing_missing",
            "BR 7.1.2.8.5",
            "extKeyUsage lacks id-kp-OCSPSigning (RFC 6960 4.2.2.2)".to_string(),
        );
    }
    for oid in eku.0.iter().filter(|o| **o != ID_KP_OCSP_SIGNING) {
        report.error(
            "ocsp_responder.eku.forbidden",
            "BR 7.1.2.8.5",
            format!(
                "extKeyUsage holds {}; an OCSP responder certificate holds only id-kp-OCSPSigning",
                oid_name(oid)
            ),
        );
    }
}

/// BR 7.1.2.8.6 and RFC 6960 4.2.2.2.1: id-pkix-ocsp-nocheck is present, not critical, and its
/// value is NULL (`05 00`).
fn lint_nocheck(exts: &[Extension], report: &mut Report) {
    let Some(ext) = find(exts, ID_PKIX_OCSP_NOCHECK) else {
        report.error(
            "ocsp_responder.nocheck.missing",
            TABLE,
            "id-pkix-ocsp-nocheck is missing (BR 4.9.9)".to_string(),
        );
        return;
    };
    expect_critical(
        ext,
        false,
        "id-pkix-ocsp-nocheck",
        "ocsp_responder.nocheck.critical",
        TABLE,
        report,
    );
    if ext.extn_value.as_bytes() != [0x05, 0x00] {
        report.error(
            "ocsp_responder.nocheck.value",
            "BR 7.1.2.8.6",
            "id-pkix-ocsp-nocheck's value is not NULL (05 00)".to_string(),
        );
    }
}

/// BR 7.1.2.8.2 and 7.1.2.11.1: authorityKeyIdentifier is present, not critical, and holds only
/// a keyIdentifier.
fn lint_aki(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER).is_none() {
        report.error(
            "ocsp_responder.aki.missing",
            TABLE,
            "authorityKeyIdentifier is missing".to_string(),
        );
        return;
    }
    let Some((ext, aki)) =
        decode_ext::<AuthorityKeyIdentifier>(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER, report)
    else {
        return;
    };
    expect_critical(
        ext,
        false,
        "authorityKeyIdentifier",
        "ocsp_responder.aki.critical",
        "RFC 5280 4.2.1.1",
        report,
    );
    if aki
        .key_identifier
        .as_ref()
        .is_none_or(|k| k.as_bytes().is_empty())
        || aki.authority_cert_issuer.is_some()
        || aki.authority_cert_serial_number.is_some()
    {
        report.error(
            "ocsp_responder.aki.content",
            "BR 7.1.2.11.1",
            "authorityKeyIdentifier must hold a keyIdentifier and nothing else".to_string(),
        );
    }
}

/// BR 7.1.2.8.2: subjectKeyIdentifier SHOULD be present; RFC 5280 4.2.1.2: not critical.
fn lint_ski(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_CE_SUBJECT_KEY_IDENTIFIER).is_none() {
        report.warning(
            "ocsp_responder.ski.missing",
            TABLE,
            "subjectKeyIdentifier is missing, which it SHOULD NOT be".to_string(),
        );
        return;
    }
    if let Some((ext, ski)) =
        decode_ext::<SubjectKeyIdentifier>(exts, ID_CE_SUBJECT_KEY_IDENTIFIER, report)
    {
        expect_critical(
            ext,
            false,
            "subjectKeyIdentifier",
            "ocsp_responder.ski.critical",
            "RFC 5280 4.2.1.2",
            report,
        );
        if ski.0.as_bytes().is_empty() {
            report.error(
                "ocsp_responder.ski.empty",
                "RFC 5280 4.2.1.2",
                "subjectKeyIdentifier is empty".to_string(),
            );
        }
    }
}

/// BR 7.1.2.8.4: an OCSP responder is not a CA; basicConstraints, if present, is critical with
/// cA FALSE and no pathLenConstraint.
fn lint_basic_constraints(exts: &[Extension], report: &mut Report) {
    let Some((ext, bc)) = decode_ext::<BasicConstraints>(exts, ID_CE_BASIC_CONSTRAINTS, report)
    else {
        return;
    };
    expect_critical(
        ext,
        true,
        "basicConstraints",
        "ocsp_responder.basic_constraints.not_critical",
        TABLE,
        report,
    );
    if bc.ca || bc.path_len_constraint.is_some() {
        report.error(
            "ocsp_responder.basic_constraints.ca",
            "BR 7.1.2.8.4",
            "an OCSP responder certificate MUST NOT be a CA certificate (cA FALSE, no \
             pathLenConstraint)"
                .to_string(),
        );
    }
}

/// BR 7.1.2.8.3: authorityInformationAccess is NOT RECOMMENDED, and an id-ad-ocsp access method
/// in it SHOULD NOT be there; strongroom's profile refuses the latter (a responder's own status is
/// not checked: RFC 6960 4.2.2.2.1).
fn lint_aia(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_PE_AUTHORITY_INFO_ACCESS).is_none() {
        return;
    }
    report.warning(
        "ocsp_responder.aia.present",
        TABLE,
        "authorityInformationAccess is NOT RECOMMENDED in an OCSP responder certificate"
            .to_string(),
    );
    if let Some((_, aia)) =
        decode_ext::<AuthorityInfoAccessSyntax>(exts, ID_PE_AUTHORITY_INFO_ACCESS, report)
        && aia.0.iter().any(|ad| ad.access_method == ID_AD_OCSP)
    {
        report.error(
            "ocsp_responder.aia.ocsp",
            "BR 7.1.2.8.3",
            "authorityInformationAccess names an OCSP responder for a certificate that carries \
             id-pkix-ocsp-nocheck"
                .to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use const_oid::db::rfc5280::{ID_AD_OCSP, ID_KP_SERVER_AUTH};
    use der::asn1::{Ia5String, OctetString};
    use der::{Decode, Encode};
    use p256::pkcs8::EncodePublicKey;
    use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
    use x509_cert::builder::profile::BuilderProfile;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{AccessDescription, CrlDistributionPoints};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;

    use super::*;
    use crate::alg::SignatureAlgorithm;
    use crate::lint::{CertKind, lint_certificate};
    use crate::x509::{OcspResponderProfile, SignerInfo};

    /// strongroom's responder profile with the extension list changed by `edit`.
    struct Edited<F>(OcspResponderProfile, F);

    impl<F: Fn(&mut Vec<Extension>)> BuilderProfile for Edited<F> {
        fn get_issuer(&self, subject: &Name) -> Name {
            self.0.get_issuer(subject)
        }

        fn get_subject(&self) -> Name {
            self.0.get_subject()
        }

        fn build_extensions(
            &self,
            spk: SubjectPublicKeyInfoRef<'_>,
            issuer_spk: SubjectPublicKeyInfoRef<'_>,
            tbs: &TbsCertificate,
        ) -> x509_cert::builder::Result<Vec<Extension>> {
            let mut exts = self.0.build_extensions(spk, issuer_spk, tbs)?;
            (self.1)(&mut exts);
            Ok(exts)
        }
    }

    fn tbs(days: u32, edit: impl Fn(&mut Vec<Extension>)) -> TbsCertificate {
        let key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(
            key.verifying_key().to_public_key_der().unwrap().as_bytes(),
        )
        .unwrap();
        let name =
            |cn: &str| -> Name { format!("CN={cn},O=strongroom test,C=US").parse().unwrap() };
        let profile = OcspResponderProfile {
            issuer: name("Test CA"),
            subject: name("Test CA OCSP Responder"),
            ski: crate::x509::key_identifier(&spki),
            aki: vec![7; 20],
        };
        let signer = SignerInfo {
            spki: spki.clone(),
            alg: SignatureAlgorithm::EcdsaSha256,
        };
        let mut builder = CertificateBuilder::new(
            Edited(profile, edit),
            SerialNumber::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap(),
            crate::x509::validity(SystemTime::now() - Duration::from_secs(60), days).unwrap(),
            spki,
        )
        .unwrap();
        TbsCertificate::from_der(&builder.finalize(&signer).unwrap()).unwrap()
    }

    /// A change to the profile's extension list.
    type Edit = dyn Fn(&mut Vec<Extension>);

    fn errors(tbs: &TbsCertificate) -> Vec<&'static str> {
        lint_certificate(tbs, CertKind::OcspResponder)
            .errors()
            .map(|f| f.code)
            .collect()
    }

    fn ext<T: Encode + const_oid::AssociatedOid>(value: &T, critical: bool) -> Extension {
        Extension {
            extn_id: T::OID,
            critical,
            extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
        }
    }

    fn replace(exts: &mut [Extension], new: Extension) {
        let slot = exts.iter_mut().find(|e| e.extn_id == new.extn_id).unwrap();
        *slot = new;
    }

    #[test]
    fn strongrooms_profile_lints_clean_without_warnings() {
        let report = lint_certificate(&tbs(30, |_| {}), CertKind::OcspResponder);
        assert!(report.findings.is_empty(), "{report}");
        assert!(errors(&tbs(MAX_RESPONDER_DAYS as u32, |_| {})).is_empty());
    }

    #[test]
    fn each_br_7_1_2_8_rule_is_enforced() {
        assert_eq!(
            errors(&tbs(MAX_RESPONDER_DAYS as u32 + 1, |_| {})),
            ["ocsp_responder.validity.too_long"]
        );
        let cases: Vec<(&str, Box<Edit>)> = vec![
            (
                "ocsp_responder.nocheck.missing",
                Box::new(|e| e.retain(|x| x.extn_id != ID_PKIX_OCSP_NOCHECK)),
            ),
            (
                "ocsp_responder.eku.missing",
                Box::new(|e| e.retain(|x| x.extn_id != ID_CE_EXT_KEY_USAGE)),
            ),
            (
                "ocsp_responder.aki.missing",
                Box::new(|e| e.retain(|x| x.extn_id != ID_CE_AUTHORITY_KEY_IDENTIFIER)),
            ),
            (
                "ocsp_responder.key_usage.missing",
                Box::new(|e| e.retain(|x| x.extn_id != ID_CE_KEY_USAGE)),
            ),
            (
                "ocsp_responder.eku.forbidden",
                Box::new(|e| {
                    replace(
                        e,
                        ext(
                            &ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH]),
                            false,
                        ),
                    )
                }),
            ),
            (
                "ocsp_responder.key_usage.forbidden",
                Box::new(|e| {
                    replace(
                        e,
                        ext(
                            &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign),
                            true,
                        ),
                    )
                }),
            ),
            (
                "ocsp_responder.key_usage.not_critical",
                Box::new(|e| replace(e, ext(&KeyUsage(KeyUsages::DigitalSignature.into()), false))),
            ),
            (
                "ocsp_responder.basic_constraints.ca",
                Box::new(|e| {
                    e.push(ext(
                        &BasicConstraints {
                            ca: true,
                            path_len_constraint: None,
                        },
                        true,
                    ))
                }),
            ),
            (
                "ocsp_responder.ext.forbidden",
                Box::new(|e| e.push(ext(&CrlDistributionPoints(vec![]), false))),
            ),
            (
                "ocsp_responder.aia.ocsp",
                Box::new(|e| {
                    e.push(ext(
                        &AuthorityInfoAccessSyntax(vec![AccessDescription {
                            access_method: ID_AD_OCSP,
                            access_location: GeneralName::UniformResourceIdentifier(
                                Ia5String::new("http://o.example.com/").unwrap(),
                            ),
                        }]),
                        false,
                    ))
                }),
            ),
            (
                "ocsp_responder.nocheck.value",
                Box::new(|e| {
                    let nocheck = e
                        .iter_mut()
                        .find(|x| x.extn_id == ID_PKIX_OCSP_NOCHECK)
                        .unwrap();
                    nocheck.extn_value = OctetString::new(vec![0x30, 0x00]).unwrap();
                }),
            ),
        ];
        for (code, edit) in cases {
            assert_eq!(errors(&tbs(30, edit)), [code], "{code}");
        }
    }
}
