//! Checks on certificate extensions: the common rules (BR 7.1.2.10 for CAs, 7.1.2.11) and each
//! profile's extension table (BR 7.1.2.1.2, 7.1.2.6.1, 7.1.2.2.3, 7.1.2.7.6). The rules only a
//! subscriber certificate has live in `subscriber`.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE, ANY_POLICY, ID_AD_CA_ISSUERS, ID_AD_OCSP,
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_CERTIFICATE_POLICIES,
    ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING,
    ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
    ID_PE_AUTHORITY_INFO_ACCESS, ID_QT_CPS,
};
use const_oid::db::rfc6962::{CT_PRECERT_POISON, CT_PRECERT_SCTS, CT_PRECERT_SIGNING_CERT};
use der::Decode;
use der::asn1::Ia5StringRef;
use x509_cert::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};

use super::algorithm::oid_name;
use super::{CertKind, Report, subscriber};

/// The CA/Browser Forum reserved policy identifier for Domain Validated certificates
/// (BR 7.1.6.1).
const DOMAIN_VALIDATED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");

/// CA/Browser Forum reserved policy identifiers (BR 7.1.6.1): DV, OV, IV and EV.
const RESERVED_POLICIES: [ObjectIdentifier; 4] = [
    DOMAIN_VALIDATED,
    ObjectIdentifier::new_unwrap("2.23.140.1.2.2"),
    ObjectIdentifier::new_unwrap("2.23.140.1.2.3"),
    ObjectIdentifier::new_unwrap("2.23.140.1.1"),
];

/// Extensions a root may carry without a finding of their own (BR 7.1.2.1.2); EKU,
/// certificatePolicies and CRLDP are reported by their own checks.
const ROOT_EXTENSIONS: &[ObjectIdentifier] = &[
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_CE_EXT_KEY_USAGE,
    ID_CE_CERTIFICATE_POLICIES,
    ID_CE_CRL_DISTRIBUTION_POINTS,
    CT_PRECERT_SCTS,
];

/// Extensions a TLS subordinate or cross-certified CA may carry (BR 7.1.2.6.1, 7.1.2.2.3).
const SUBORDINATE_EXTENSIONS: &[ObjectIdentifier] = &[
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CERTIFICATE_POLICIES,
    ID_CE_CRL_DISTRIBUTION_POINTS,
    ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_CE_EXT_KEY_USAGE,
    ID_PE_AUTHORITY_INFO_ACCESS,
    ID_CE_NAME_CONSTRAINTS,
    CT_PRECERT_SCTS,
];

/// Extensions a subscriber certificate or precertificate may carry without a finding of their
/// own (BR 7.1.2.7.6, 7.1.2.9.1); subjectKeyIdentifier, nameConstraints, the SCT list and the
/// poison are reported by their own checks.
const SUBSCRIBER_EXTENSIONS: &[ObjectIdentifier] = &[
    ID_PE_AUTHORITY_INFO_ACCESS,
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_CERTIFICATE_POLICIES,
    ID_CE_EXT_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME,
    ID_CE_NAME_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_CRL_DISTRIBUTION_POINTS,
    CT_PRECERT_SCTS,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    CT_PRECERT_POISON,
];

/// The keyUsage bits of RFC 5280 4.2.1.3, with their names.
pub(super) const KEY_USAGE_BITS: [(KeyUsages, &str); 9] = [
    (KeyUsages::DigitalSignature, "digitalSignature"),
    (KeyUsages::NonRepudiation, "nonRepudiation"),
    (KeyUsages::KeyEncipherment, "keyEncipherment"),
    (KeyUsages::DataEncipherment, "dataEncipherment"),
    (KeyUsages::KeyAgreement, "keyAgreement"),
    (KeyUsages::KeyCertSign, "keyCertSign"),
    (KeyUsages::CRLSign, "cRLSign"),
    (KeyUsages::EncipherOnly, "encipherOnly"),
    (KeyUsages::DecipherOnly, "decipherOnly"),
];

/// The extension table of the profile `kind` follows, for presence and criticality findings. A
/// precertificate carries the extensions of its certificate (BR 7.1.2.9.1), so it follows the
/// subscriber table.
pub(super) fn table(kind: CertKind) -> &'static str {
    match kind {
        CertKind::Root => "BR 7.1.2.1.2",
        CertKind::SubordinateCa => "BR 7.1.2.6.1",
        CertKind::CrossCertificate => "BR 7.1.2.2.3",
        CertKind::Subscriber | CertKind::Precertificate => "BR 7.1.2.7.6",
        CertKind::OcspResponder => "BR 7.1.2.8.2",
    }
}

/// Picks a finding code by profile: `ca` for the CA profiles, `leaf` for the subscriber ones.
fn code(kind: CertKind, ca: &'static str, leaf: &'static str) -> &'static str {
    if kind.is_subscriber() { leaf } else { ca }
}

/// Runs every extension check for a certificate following profile `kind`.
pub(super) fn lint(tbs: &TbsCertificate, kind: CertKind, report: &mut Report) {
    let exts: &[Extension] = tbs.extensions().map_or(&[], Vec::as_slice);
    lint_duplicates(exts, "cert.ext.duplicate", "certificate", report);
    if kind.is_subscriber() {
        subscriber::lint_key_usage(exts, tbs.subject_public_key_info(), report);
    } else {
        lint_key_usage(exts, kind, report);
    }
    lint_basic_constraints(exts, kind, report);
    let ski = lint_ski(exts, kind, report);
    let aki = decode_ext::<AuthorityKeyIdentifier>(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER, report);
    if let Some((ext, aki)) = &aki {
        lint_aki_content(ext, aki, kind, report);
    }
    match kind {
        CertKind::Root => {
            // BR 7.1.2.1.2: authorityKeyIdentifier is RECOMMENDED in a root.
            if find(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER).is_none() {
                report.warning(
                    "root.aki.missing",
                    "BR 7.1.2.1.2",
                    "root has no authorityKeyIdentifier, which is RECOMMENDED".to_string(),
                );
            }
            if let Some((_, aki)) = &aki {
                lint_root_aki(aki, ski.as_ref(), report);
            }
            lint_root_forbidden(exts, report);
        }
        // Linted by `ocsp_responder` instead (see `lint_certificate`).
        CertKind::OcspResponder => {}
        CertKind::SubordinateCa
        | CertKind::CrossCertificate
        | CertKind::Subscriber
        | CertKind::Precertificate => {
            // BR 7.1.2.6.1 / 7.1.2.2.3 / 7.1.2.7.6: authorityKeyIdentifier MUST be present.
            if find(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER).is_none() {
                report.error(
                    code(kind, "subca.aki.missing", "leaf.aki.missing"),
                    table(kind),
                    "authorityKeyIdentifier is missing".to_string(),
                );
            }
            lint_eku(exts, kind, report);
            lint_policies(exts, kind, report);
            lint_crldp(exts, kind, report);
            lint_aia(exts, kind, report);
            if kind.is_subscriber() {
                subscriber::lint_extensions(tbs, exts, kind, report);
            } else {
                lint_name_constraints(exts, report);
            }
        }
    }
    lint_unexpected(exts, kind, report);
}

/// The first extension with this OID, if any.
pub(super) fn find(exts: &[Extension], oid: ObjectIdentifier) -> Option<&Extension> {
    exts.iter().find(|e| e.extn_id == oid)
}

/// Finds and decodes the extension `oid`; an undecodable value is reported as
/// `cert.ext.malformed` (RFC 5280 4.2: each extension value is the DER of its ASN.1 type).
pub(super) fn decode_ext<'a, T: Decode<'a>>(
    exts: &'a [Extension],
    oid: ObjectIdentifier,
    report: &mut Report,
) -> Option<(&'a Extension, T)> {
    let ext = find(exts, oid)?;
    match T::from_der(ext.extn_value.as_bytes()) {
        Ok(value) => Some((ext, value)),
        Err(_) => {
            report.error(
                "cert.ext.malformed",
                "RFC 5280 4.2",
                format!("{} extension value is not valid DER", oid_name(&oid)),
            );
            None
        }
    }
}

/// Like [`decode_ext`] for an extension the profile requires: its absence is reported as
/// `missing`, citing `rule`.
pub(super) fn require<'a, T: Decode<'a>>(
    exts: &'a [Extension],
    oid: ObjectIdentifier,
    name: &str,
    missing: &'static str,
    rule: &'static str,
    report: &mut Report,
) -> Option<(&'a Extension, T)> {
    if find(exts, oid).is_none() {
        report.error(missing, rule, format!("{name} is missing"));
        return None;
    }
    decode_ext(exts, oid, report)
}

/// Reports `code` when `ext` is not marked as `critical` as the profile's table requires.
pub(super) fn expect_critical(
    ext: &Extension,
    critical: bool,
    name: &str,
    code: &'static str,
    rule: &'static str,
    report: &mut Report,
) {
    if ext.critical != critical {
        let marked = if ext.critical {
            "marked critical"
        } else {
            "not marked critical"
        };
        report.error(code, rule, format!("{name} is {marked}"));
    }
}

/// RFC 5280 4.2 (certificates) and 5.2 / 5.3 (CRLs and CRL entries): a structure MUST NOT
/// include more than one instance of a particular extension.
pub(super) fn lint_duplicates(
    exts: &[Extension],
    code: &'static str,
    what: &str,
    report: &mut Report,
) {
    for (i, ext) in exts.iter().enumerate() {
        // Report each repeated OID once, at its second occurrence.
        let earlier = exts[..i]
            .iter()
            .filter(|e| e.extn_id == ext.extn_id)
            .count();
        if earlier == 1 {
            report.error(
                code,
                "RFC 5280 4.2",
                format!(
                    "{what} has more than one {} extension",
                    oid_name(&ext.extn_id)
                ),
            );
        }
    }
}

/// BR 7.1.2.10.7 (with the profile tables, which require it critical): keyUsage is present and
/// critical, keyCertSign and cRLSign are set, digitalSignature MAY be set, and nonRepudiation,
/// keyEncipherment, dataEncipherment, keyAgreement, encipherOnly and decipherOnly MUST NOT be.
fn lint_key_usage(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let Some((ext, ku)) = require::<KeyUsage>(
        exts,
        ID_CE_KEY_USAGE,
        "keyUsage",
        "ca.key_usage.missing",
        table(kind),
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        true,
        "keyUsage",
        "ca.key_usage.not_critical",
        table(kind),
        report,
    );
    if !ku.key_cert_sign() {
        report.error(
            "ca.key_usage.key_cert_sign_missing",
            "BR 7.1.2.10.7",
            "keyUsage lacks keyCertSign".to_string(),
        );
    }
    if !ku.crl_sign() {
        report.error(
            "ca.key_usage.crl_sign_missing",
            "BR 7.1.2.10.7",
            "keyUsage lacks cRLSign".to_string(),
        );
    }
    for (bit, name) in KEY_USAGE_BITS {
        let allowed = matches!(
            bit,
            KeyUsages::DigitalSignature | KeyUsages::KeyCertSign | KeyUsages::CRLSign
        );
        if !allowed && ku.0.contains(bit) {
            report.error(
                "ca.key_usage.forbidden",
                "BR 7.1.2.10.7",
                format!("keyUsage sets {name}, which a CA certificate MUST NOT"),
            );
        }
    }
}

/// BR 7.1.2.10.4 (and RFC 5280 4.2.1.9): basicConstraints is present and critical with cA TRUE;
/// for a root, BR 7.1.2.1.4: pathLenConstraint is NOT RECOMMENDED. For a subscriber,
/// BR 7.1.2.7.8: cA is FALSE and pathLenConstraint absent; the extension is critical when present
/// (BR 7.1.2.7.6), and strongroom's profile always includes it.
fn lint_basic_constraints(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let Some((ext, bc)) = require::<BasicConstraints>(
        exts,
        ID_CE_BASIC_CONSTRAINTS,
        "basicConstraints",
        code(
            kind,
            "ca.basic_constraints.missing",
            "leaf.basic_constraints.missing",
        ),
        table(kind),
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        true,
        "basicConstraints",
        code(
            kind,
            "ca.basic_constraints.not_critical",
            "leaf.basic_constraints.not_critical",
        ),
        table(kind),
        report,
    );
    if kind.is_subscriber() {
        if bc.ca {
            report.error(
                "leaf.basic_constraints.ca",
                "BR 7.1.2.7.8",
                "basicConstraints cA is TRUE in a subscriber certificate".to_string(),
            );
        }
        if let Some(len) = bc.path_len_constraint {
            report.error(
                "leaf.basic_constraints.path_len",
                "BR 7.1.2.7.8",
                format!("basicConstraints has pathLenConstraint {len}, which MUST NOT be present"),
            );
        }
        return;
    }
    if !bc.ca {
        report.error(
            "ca.basic_constraints.not_ca",
            "BR 7.1.2.10.4",
            "basicConstraints cA is not TRUE".to_string(),
        );
    }
    if kind == CertKind::Root
        && let Some(len) = bc.path_len_constraint
    {
        report.warning(
            "root.basic_constraints.path_len",
            "BR 7.1.2.1.4",
            format!("root basicConstraints has pathLenConstraint {len}, which is NOT RECOMMENDED"),
        );
    }
}

/// BR 7.1.2.11.4 with the profile tables: subjectKeyIdentifier is present in a CA certificate
/// and NOT RECOMMENDED in a subscriber certificate (BR 7.1.2.7.6); RFC 5280 4.2.1.2: it MUST NOT
/// be critical and holds a non-empty key identifier. Returns the key identifier.
fn lint_ski(exts: &[Extension], kind: CertKind, report: &mut Report) -> Option<Vec<u8>> {
    if kind.is_subscriber() {
        // Absence is no finding for a subscriber; once present, `missing` below cannot fire.
        find(exts, ID_CE_SUBJECT_KEY_IDENTIFIER)?;
        report.warning(
            "leaf.ski.present",
            table(kind),
            "subscriber certificate carries subjectKeyIdentifier, which is NOT RECOMMENDED"
                .to_string(),
        );
    }
    let (ext, ski) = require::<SubjectKeyIdentifier>(
        exts,
        ID_CE_SUBJECT_KEY_IDENTIFIER,
        "subjectKeyIdentifier",
        "ca.ski.missing",
        table(kind),
        report,
    )?;
    expect_critical(
        ext,
        false,
        "subjectKeyIdentifier",
        code(kind, "ca.ski.critical", "leaf.ski.critical"),
        "RFC 5280 4.2.1.2",
        report,
    );
    let id = ski.0.as_bytes().to_vec();
    if id.is_empty() {
        report.error(
            code(kind, "ca.ski.empty", "leaf.ski.empty"),
            "RFC 5280 4.2.1.2",
            "subjectKeyIdentifier is empty".to_string(),
        );
    }
    Some(id)
}

/// BR 7.1.2.11.1 / 7.1.2.1.3: an authorityKeyIdentifier holds keyIdentifier and neither
/// authorityCertIssuer nor authorityCertSerialNumber; RFC 5280 4.2.1.1: it MUST NOT be critical.
fn lint_aki_content(
    ext: &Extension,
    aki: &AuthorityKeyIdentifier,
    kind: CertKind,
    report: &mut Report,
) {
    expect_critical(
        ext,
        false,
        "authorityKeyIdentifier",
        code(kind, "ca.aki.critical", "leaf.aki.critical"),
        "RFC 5280 4.2.1.1",
        report,
    );
    if aki
        .key_identifier
        .as_ref()
        .is_none_or(|k| k.as_bytes().is_empty())
    {
        report.error(
            code(kind, "ca.aki.key_id_missing", "leaf.aki.key_id_missing"),
            "BR 7.1.2.11.1",
            "authorityKeyIdentifier has no keyIdentifier".to_string(),
        );
    }
    if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial_number.is_some() {
        report.error(
            code(
                kind,
                "ca.aki.issuer_serial_present",
                "leaf.aki.issuer_serial_present",
            ),
            "BR 7.1.2.11.1",
            "authorityKeyIdentifier holds authorityCertIssuer or authorityCertSerialNumber"
                .to_string(),
        );
    }
}

/// BR 7.1.2.1.3: a root's authorityKeyIdentifier, when present (RECOMMENDED by BR 7.1.2.1.2),
/// has a keyIdentifier equal to the root's subjectKeyIdentifier.
fn lint_root_aki(aki: &AuthorityKeyIdentifier, ski: Option<&Vec<u8>>, report: &mut Report) {
    if let (Some(key_id), Some(ski)) = (&aki.key_identifier, ski)
        && key_id.as_bytes() != ski.as_slice()
    {
        report.error(
            "root.aki.mismatch",
            "BR 7.1.2.1.3",
            format!(
                "authorityKeyIdentifier {} differs from subjectKeyIdentifier {}",
                hex::encode(key_id.as_bytes()),
                hex::encode(ski)
            ),
        );
    }
}

/// BR 7.1.2.1.2: a root MUST NOT carry extKeyUsage; certificatePolicies is NOT RECOMMENDED; and
/// cRLDistributionPoints, outside the table, is NOT RECOMMENDED (BR 7.1.2.11.5).
fn lint_root_forbidden(exts: &[Extension], report: &mut Report) {
    if find(exts, ID_CE_EXT_KEY_USAGE).is_some() {
        report.error(
            "root.eku.present",
            "BR 7.1.2.1.2",
            "root carries extKeyUsage".to_string(),
        );
    }
    if find(exts, ID_CE_CERTIFICATE_POLICIES).is_some() {
        report.warning(
            "root.policies.present",
            "BR 7.1.2.1.2",
            "root carries certificatePolicies, which is NOT RECOMMENDED".to_string(),
        );
    }
    if find(exts, ID_CE_CRL_DISTRIBUTION_POINTS).is_some() {
        report.warning(
            "root.crldp.present",
            "BR 7.1.2.1.2",
            "root carries cRLDistributionPoints, which it SHOULD NOT".to_string(),
        );
    }
}

/// BR 7.1.2.10.6 (TLS subordinate), 7.1.2.2.5 (restricted cross certificate) and 7.1.2.7.10
/// (subscriber): extKeyUsage is present and not critical, contains id-kp-serverAuth, MAY contain
/// id-kp-clientAuth, MUST NOT contain codeSigning, emailProtection, timeStamping, OCSPSigning,
/// anyExtendedKeyUsage or the Precertificate Signing Certificate purpose; any other purpose is
/// NOT RECOMMENDED, and strongroom's subscriber profile refuses it.
fn lint_eku(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let rule = match kind {
        CertKind::CrossCertificate => "BR 7.1.2.2.5",
        CertKind::Subscriber | CertKind::Precertificate => "BR 7.1.2.7.10",
        _ => "BR 7.1.2.10.6",
    };
    let Some((ext, eku)) = require::<ExtendedKeyUsage>(
        exts,
        ID_CE_EXT_KEY_USAGE,
        "extKeyUsage",
        code(kind, "subca.eku.missing", "leaf.eku.missing"),
        table(kind),
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        false,
        "extKeyUsage",
        code(kind, "subca.eku.critical", "leaf.eku.critical"),
        table(kind),
        report,
    );
    let forbidden_code = code(kind, "subca.eku.forbidden", "leaf.eku.forbidden");
    if !eku.0.contains(&ID_KP_SERVER_AUTH) {
        report.error(
            code(
                kind,
                "subca.eku.server_auth_missing",
                "leaf.eku.server_auth_missing",
            ),
            rule,
            "extKeyUsage lacks id-kp-serverAuth".to_string(),
        );
    }
    let forbidden = [
        ANY_EXTENDED_KEY_USAGE,
        ID_KP_CODE_SIGNING,
        ID_KP_EMAIL_PROTECTION,
        ID_KP_TIME_STAMPING,
        ID_KP_OCSP_SIGNING,
        CT_PRECERT_SIGNING_CERT,
    ];
    for purpose in &eku.0 {
        if forbidden.contains(purpose) {
            report.error(
                forbidden_code,
                rule,
                format!("extKeyUsage contains {}", oid_name(purpose)),
            );
        } else if *purpose == ID_KP_SERVER_AUTH || *purpose == ID_KP_CLIENT_AUTH {
            continue;
        } else if kind.is_subscriber() {
            report.error(
                forbidden_code,
                rule,
                format!(
                    "extKeyUsage contains {}; strongroom's subscriber profile allows only \
                     serverAuth and clientAuth",
                    oid_name(purpose)
                ),
            );
        } else {
            report.warning(
                "subca.eku.other",
                rule,
                format!(
                    "extKeyUsage contains {}, which is NOT RECOMMENDED",
                    oid_name(purpose)
                ),
            );
        }
    }
}

/// BR 7.1.2.10.5 (TLS subordinate), 7.1.2.2.6 (cross certificate, policy restricted) and
/// 7.1.2.7.9 (subscriber): certificatePolicies is present and not critical, holds no anyPolicy,
/// exactly one CA/B Forum reserved policy identifier, no policy OID twice (RFC 5280 4.2.1.4), and
/// policyQualifiers, NOT RECOMMENDED, are only id-qt-cps with an HTTP or HTTPS URL. A Domain
/// Validated subscriber's reserved identifier is 2.23.140.1.2.1 (BR 7.1.2.7.2).
fn lint_policies(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let rule = match kind {
        CertKind::CrossCertificate => "BR 7.1.2.2.6",
        CertKind::Subscriber | CertKind::Precertificate => "BR 7.1.2.7.9",
        _ => "BR 7.1.2.10.5",
    };
    let Some((ext, policies)) = require::<CertificatePolicies>(
        exts,
        ID_CE_CERTIFICATE_POLICIES,
        "certificatePolicies",
        code(kind, "subca.policies.missing", "leaf.policies.missing"),
        table(kind),
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        false,
        "certificatePolicies",
        code(kind, "subca.policies.critical", "leaf.policies.critical"),
        table(kind),
        report,
    );
    let reserved: Vec<_> = policies
        .0
        .iter()
        .map(|p| p.policy_identifier)
        .filter(|id| RESERVED_POLICIES.contains(id))
        .collect();
    if reserved.len() != 1 {
        report.error(
            code(
                kind,
                "subca.policies.reserved_count",
                "leaf.policies.reserved_count",
            ),
            rule,
            format!(
                "certificatePolicies holds {} CA/B Forum reserved policy identifiers, exactly \
                 one is required",
                reserved.len()
            ),
        );
    } else if kind.is_subscriber() && reserved[0] != DOMAIN_VALIDATED {
        report.error(
            "leaf.policies.not_dv",
            "BR 7.1.2.7.2",
            format!(
                "certificatePolicies asserts {}, but strongroom issues only Domain Validated \
                 ({DOMAIN_VALIDATED}) subscriber certificates",
                reserved[0]
            ),
        );
    }
    for (i, policy) in policies.0.iter().enumerate() {
        let id = &policy.policy_identifier;
        if *id == ANY_POLICY {
            report.error(
                code(
                    kind,
                    "subca.policies.any_policy",
                    "leaf.policies.any_policy",
                ),
                rule,
                "certificatePolicies contains anyPolicy".to_string(),
            );
        }
        if policies.0[..i].iter().any(|p| p.policy_identifier == *id) {
            report.error(
                code(kind, "subca.policies.duplicate", "leaf.policies.duplicate"),
                "RFC 5280 4.2.1.4",
                format!("certificatePolicies lists {id} more than once"),
            );
        }
        let Some(qualifiers) = &policy.policy_qualifiers else {
            continue;
        };
        report.warning(
            code(
                kind,
                "subca.policies.qualifier_present",
                "leaf.policies.qualifier_present",
            ),
            rule,
            format!("policy {id} carries policyQualifiers, which are NOT RECOMMENDED"),
        );
        for q in qualifiers {
            let url = q
                .qualifier
                .as_ref()
                .and_then(|any| any.decode_as::<Ia5StringRef<'_>>().ok())
                .map(|s| s.as_str().to_string());
            let ok = q.policy_qualifier_id == ID_QT_CPS
                && url
                    .as_deref()
                    .is_some_and(|u| is_url(u, "http://") || is_url(u, "https://"));
            if !ok {
                report.error(
                    code(kind, "subca.policies.qualifier", "leaf.policies.qualifier"),
                    rule,
                    format!(
                        "policy {id} has a qualifier other than id-qt-cps with an HTTP(S) URL ({})",
                        oid_name(&q.policy_qualifier_id)
                    ),
                );
            }
        }
    }
}

/// BR 7.1.2.11.2 with the profile tables: cRLDistributionPoints is present and not critical; each
/// DistributionPoint has a distributionPoint `fullName` made only of HTTP URIs (at least one),
/// and neither `reasons` nor `cRLIssuer`. A subscriber certificate MUST carry it only when its
/// AIA has no OCSP URL (BR 7.1.2.11.2); strongroom's subscriber profile always includes it.
fn lint_crldp(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let Some((ext, dps)) = require::<CrlDistributionPoints>(
        exts,
        ID_CE_CRL_DISTRIBUTION_POINTS,
        "cRLDistributionPoints",
        code(kind, "subca.crldp.missing", "leaf.crldp.missing"),
        table(kind),
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        false,
        "cRLDistributionPoints",
        code(kind, "subca.crldp.critical", "leaf.crldp.critical"),
        table(kind),
        report,
    );
    if dps.0.is_empty() {
        report.error(
            code(
                kind,
                "subca.crldp.distribution_point",
                "leaf.crldp.distribution_point",
            ),
            "BR 7.1.2.11.2",
            "cRLDistributionPoints holds no DistributionPoint".to_string(),
        );
    }
    for (i, dp) in dps.0.iter().enumerate() {
        lint_distribution_point(i, dp, kind, report);
    }
}

/// One DistributionPoint of BR 7.1.2.11.2.
fn lint_distribution_point(i: usize, dp: &DistributionPoint, kind: CertKind, report: &mut Report) {
    let uris_ok = match &dp.distribution_point {
        Some(DistributionPointName::FullName(names)) => {
            !names.is_empty()
                && names.iter().all(|n| {
                    matches!(n, GeneralName::UniformResourceIdentifier(u)
                        if is_url(u.as_str(), "http://"))
                })
        }
        _ => false,
    };
    if !uris_ok {
        report.error(
            code(
                kind,
                "subca.crldp.distribution_point",
                "leaf.crldp.distribution_point",
            ),
            "BR 7.1.2.11.2",
            format!("DistributionPoint #{i} is not a fullName of http:// URIs only"),
        );
    }
    if dp.reasons.is_some() {
        report.error(
            code(kind, "subca.crldp.reasons", "leaf.crldp.reasons"),
            "BR 7.1.2.11.2",
            format!("DistributionPoint #{i} has reasons"),
        );
    }
    if dp.crl_issuer.is_some() {
        report.error(
            code(kind, "subca.crldp.crl_issuer", "leaf.crldp.crl_issuer"),
            "BR 7.1.2.11.2",
            format!("DistributionPoint #{i} has cRLIssuer"),
        );
    }
}

/// BR 7.1.2.10.3 (CA) and 7.1.2.7.7 (subscriber) with the profile tables:
/// authorityInformationAccess SHOULD be present in a CA certificate and MUST be in a subscriber
/// certificate, is not critical (also RFC 5280 4.2.2.1), and holds only id-ad-ocsp and
/// id-ad-caIssuers descriptions whose accessLocation is an HTTP URI; a subscriber's SHOULD hold
/// id-ad-caIssuers.
fn lint_aia(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let rule = if kind.is_subscriber() {
        "BR 7.1.2.7.7"
    } else {
        "BR 7.1.2.10.3"
    };
    if find(exts, ID_PE_AUTHORITY_INFO_ACCESS).is_none() {
        if kind.is_subscriber() {
            report.error(
                "leaf.aia.missing",
                table(kind),
                "authorityInformationAccess is missing".to_string(),
            );
        } else {
            report.warning(
                "subca.aia.missing",
                table(kind),
                "authorityInformationAccess is missing, which it SHOULD NOT be".to_string(),
            );
        }
        return;
    }
    let Some((ext, aia)) =
        decode_ext::<AuthorityInfoAccessSyntax>(exts, ID_PE_AUTHORITY_INFO_ACCESS, report)
    else {
        return;
    };
    expect_critical(
        ext,
        false,
        "authorityInformationAccess",
        code(kind, "subca.aia.critical", "leaf.aia.critical"),
        table(kind),
        report,
    );
    if kind.is_subscriber() && !aia.0.iter().any(|ad| ad.access_method == ID_AD_CA_ISSUERS) {
        report.warning(
            "leaf.aia.ca_issuers_missing",
            rule,
            "authorityInformationAccess has no id-ad-caIssuers, which it SHOULD have".to_string(),
        );
    }
    if aia.0.is_empty() {
        report.error(
            "cert.ext.malformed",
            "RFC 5280 4.2.2.1",
            "authorityInformationAccess holds no AccessDescription".to_string(),
        );
    }
    for (i, ad) in aia.0.iter().enumerate() {
        if ad.access_method != ID_AD_OCSP && ad.access_method != ID_AD_CA_ISSUERS {
            report.error(
                code(kind, "subca.aia.method", "leaf.aia.method"),
                rule,
                format!(
                    "AccessDescription #{i} uses {}, only id-ad-ocsp and id-ad-caIssuers are allowed",
                    oid_name(&ad.access_method)
                ),
            );
        }
        let http = matches!(&ad.access_location,
            GeneralName::UniformResourceIdentifier(u) if is_url(u.as_str(), "http://"));
        if !http {
            report.error(
                code(kind, "subca.aia.location", "leaf.aia.location"),
                rule,
                format!("AccessDescription #{i} accessLocation is not an http:// URI"),
            );
        }
    }
}

/// BR 7.1.2.10.8: nameConstraints, if present, SHOULD be critical.
fn lint_name_constraints(exts: &[Extension], report: &mut Report) {
    if let Some(ext) = find(exts, ID_CE_NAME_CONSTRAINTS)
        && !ext.critical
    {
        report.warning(
            "subca.name_constraints.not_critical",
            "BR 7.1.2.10.8",
            "nameConstraints is not marked critical".to_string(),
        );
    }
}

/// BR 7.1.2.11.5: extensions outside the profile's table are NOT RECOMMENDED.
fn lint_unexpected(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let allowed = match kind {
        CertKind::Root => ROOT_EXTENSIONS,
        CertKind::SubordinateCa | CertKind::CrossCertificate => SUBORDINATE_EXTENSIONS,
        CertKind::Subscriber | CertKind::Precertificate => SUBSCRIBER_EXTENSIONS,
        CertKind::OcspResponder => return,
    };
    for ext in exts {
        if !allowed.contains(&ext.extn_id) {
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

/// `true` when `url` starts with `scheme` (ASCII case-insensitive) followed by a non-empty host.
fn is_url(url: &str, scheme: &str) -> bool {
    url.len() > scheme.len()
        && url.is_char_boundary(scheme.len())
        && url[..scheme.len()].eq_ignore_ascii_case(scheme)
        && !url[scheme.len()..].starts_with('/')
}

#[cfg(test)]
mod tests {
    use const_oid::ObjectIdentifier;
    use const_oid::db::rfc5280::{
        ANY_EXTENDED_KEY_USAGE, ANY_POLICY, ID_AD_CA_ISSUERS, ID_CE_AUTHORITY_KEY_IDENTIFIER,
        ID_CE_BASIC_CONSTRAINTS, ID_CE_CERTIFICATE_POLICIES, ID_CE_CRL_DISTRIBUTION_POINTS,
        ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_KEY_IDENTIFIER,
        ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_SERVER_AUTH, ID_PE_AUTHORITY_INFO_ACCESS,
        ID_QT_CPS, ID_QT_UNOTICE,
    };
    use const_oid::db::rfc6962::CT_PRECERT_SIGNING_CERT;
    use der::asn1::{Any, Ia5String, OctetString};
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
    use x509_cert::ext::pkix::constraints::NameConstraints;
    use x509_cert::ext::pkix::crl::dp::{DistributionPoint, Reasons};
    use x509_cert::ext::pkix::name::DistributionPointName;
    use x509_cert::ext::pkix::{
        AuthorityKeyIdentifier, CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage,
        KeyUsages,
    };
    use x509_cert::serial_number::SerialNumber;

    use crate::lint::test_support::*;
    use crate::lint::*;

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
}
