//! Checks only a subscriber (TLS server) certificate or its precertificate has: keyUsage by key
//! type (BR 7.1.2.7.11), subjectAltName and the commonName it backs (BR 7.1.2.7.12, 7.1.4.3), no
//! nameConstraints (BR 7.1.2.7.6), and the Certificate Transparency extensions (RFC 6962 3.1 and
//! 3.3, BR 7.1.2.9.1).
//!
//! The dNSName check is structural only (lower-case LDH labels, a wildcard only as the whole
//! leftmost label); whether a name may be issued for at all is the policy stage's decision.

use std::net::{Ipv4Addr, Ipv6Addr};

use const_oid::db::rfc5280::{ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME};
use const_oid::db::rfc6962::{CT_PRECERT_POISON, CT_PRECERT_SCTS};
use der::asn1::OctetString;
use x509_cert::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::algorithm::{self, KeyType};
use super::extensions::{KEY_USAGE_BITS, decode_ext, expect_critical, find, require, table};
use super::name::common_names;
use super::{CertKind, Report};

/// The DER of the poison extension's `extnValue` content: ASN.1 NULL (RFC 6962 3.1).
const POISON_VALUE: [u8; 2] = [0x05, 0x00];

/// Longest domain name in text form without the root's trailing dot (RFC 1035 2.3.4).
const MAX_DNS_NAME: usize = 253;

/// Longest domain label (RFC 1035 2.3.4).
const MAX_DNS_LABEL: usize = 63;

/// BR 7.1.2.7.6 (keyUsage SHOULD be present, critical; strongroom's profile always includes it)
/// and 7.1.2.7.11: digitalSignature is set (MUST for an ECC key; our profile requires it for RSA
/// as well), keyEncipherment only with an RSA key (MAY), and no other bit. The BR permit
/// dataEncipherment (RSA) and keyAgreement (ECC) as NOT RECOMMENDED; our profile refuses them.
pub(super) fn lint_key_usage(
    exts: &[Extension],
    spki: &SubjectPublicKeyInfoOwned,
    report: &mut Report,
) {
    let Some((ext, ku)) = require::<KeyUsage>(
        exts,
        ID_CE_KEY_USAGE,
        "keyUsage",
        "leaf.key_usage.missing",
        "BR 7.1.2.7.6",
        report,
    ) else {
        return;
    };
    expect_critical(
        ext,
        true,
        "keyUsage",
        "leaf.key_usage.not_critical",
        "BR 7.1.2.7.6",
        report,
    );
    if !ku.digital_signature() {
        report.error(
            "leaf.key_usage.digital_signature_missing",
            "BR 7.1.2.7.11",
            "keyUsage lacks digitalSignature".to_string(),
        );
    }
    let rsa = algorithm::key_type(&spki.algorithm) == Some(KeyType::Rsa);
    let key = if rsa { "an RSA" } else { "an ECC" };
    for (bit, name) in KEY_USAGE_BITS {
        let ours = matches!(bit, KeyUsages::DigitalSignature)
            || (rsa && matches!(bit, KeyUsages::KeyEncipherment));
        if ours || !ku.0.contains(bit) {
            continue;
        }
        let br_permits = if rsa {
            matches!(bit, KeyUsages::DataEncipherment)
        } else {
            matches!(bit, KeyUsages::KeyAgreement)
        };
        let why = if br_permits {
            "NOT RECOMMENDED, and strongroom's profile refuses it"
        } else {
            "not permitted"
        };
        report.error(
            "leaf.key_usage.forbidden",
            "BR 7.1.2.7.11",
            format!("keyUsage sets {name}, which for {key} key is {why}"),
        );
    }
}

/// The subscriber-only extension checks: nameConstraints MUST NOT be present (BR 7.1.2.7.6), then
/// subjectAltName and the subject commonName, then the CT extensions.
pub(super) fn lint_extensions(
    tbs: &TbsCertificate,
    exts: &[Extension],
    kind: CertKind,
    report: &mut Report,
) {
    if find(exts, ID_CE_NAME_CONSTRAINTS).is_some() {
        report.error(
            "leaf.name_constraints.present",
            table(kind),
            "subscriber certificate carries nameConstraints".to_string(),
        );
    }
    if let Some(san) = lint_san(tbs, exts, report) {
        lint_common_name(tbs, &san, report);
    }
    lint_ct(exts, kind, report);
}

/// BR 7.1.2.7.12: subjectAltName is present, holds at least one entry and only dNSName and
/// iPAddress entries, and is critical exactly when the subject is empty (RFC 5280 4.2.1.6).
/// RFC 5280 4.2.1.6: an iPAddress holds 4 (IPv4) or 16 (IPv6) octets. Returns the decoded
/// extension for the commonName check.
fn lint_san(
    tbs: &TbsCertificate,
    exts: &[Extension],
    report: &mut Report,
) -> Option<SubjectAltName> {
    let (ext, san) = require::<SubjectAltName>(
        exts,
        ID_CE_SUBJECT_ALT_NAME,
        "subjectAltName",
        "leaf.san.missing",
        "BR 7.1.2.7.12",
        report,
    )?;
    let empty_subject = tbs.subject().is_empty();
    if empty_subject && !ext.critical {
        report.error(
            "leaf.san.not_critical",
            "RFC 5280 4.2.1.6",
            "subject is empty but subjectAltName is not marked critical".to_string(),
        );
    } else if !empty_subject && ext.critical {
        report.error(
            "leaf.san.critical",
            "BR 7.1.2.7.12",
            "subjectAltName is marked critical although the subject is not empty".to_string(),
        );
    }
    if san.0.is_empty() {
        report.error(
            "leaf.san.empty",
            "BR 7.1.2.7.12",
            "subjectAltName holds no entry".to_string(),
        );
    }
    for (i, name) in san.0.iter().enumerate() {
        match name {
            GeneralName::DnsName(dns) => {
                if let Some(problem) = dns_name_problem(dns.as_str()) {
                    report.error(
                        "leaf.san.dns_name",
                        "BR 7.1.2.7.12",
                        format!("subjectAltName #{i} dNSName \"{dns}\" {problem}"),
                    );
                }
            }
            GeneralName::IpAddress(ip) => {
                let len = ip.as_bytes().len();
                if len != 4 && len != 16 {
                    report.error(
                        "leaf.san.ip_address",
                        "RFC 5280 4.2.1.6",
                        format!("subjectAltName #{i} iPAddress has {len} octets, must be 4 or 16"),
                    );
                }
            }
            other => report.error(
                "leaf.san.type",
                "BR 7.1.2.7.12",
                format!(
                    "subjectAltName #{i} is a {}; only dNSName and iPAddress are permitted",
                    general_name_type(other)
                ),
            ),
        }
    }
    Some(san)
}

/// What is structurally wrong with a dNSName (BR 7.1.2.7.12: a Fully-Qualified or Wildcard
/// Domain Name of P-Labels or Non-Reserved LDH Labels, without the root's trailing dot), or
/// `None`. strongroom's profile also requires lower case.
fn dns_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > MAX_DNS_NAME {
        return Some("is longer than 253 characters");
    }
    if name.ends_with('.') {
        return Some("ends with the root label's dot");
    }
    let fqdn = name.strip_prefix("*.").unwrap_or(name);
    if !fqdn.contains('.') {
        return Some("is not a fully-qualified domain name");
    }
    for label in fqdn.split('.') {
        if label.is_empty() {
            return Some("has an empty label");
        }
        if label.contains('*') {
            return Some("has a wildcard other than the whole leftmost label");
        }
        if label.len() > MAX_DNS_LABEL {
            return Some("has a label longer than 63 characters");
        }
        if label.bytes().any(|b| b.is_ascii_uppercase()) {
            return Some("is not in lower case");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some("has a character other than a letter, digit or hyphen");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label starting or ending with a hyphen");
        }
        if label.get(2..4) == Some("--") && !label.starts_with("xn--") {
            return Some("has a reserved LDH label (\"--\" in the third and fourth positions)");
        }
    }
    None
}

/// The ASN.1 name of a GeneralName's alternative, for findings.
fn general_name_type(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// BR 7.1.4.3: a subject commonName is one of the subjectAltName values: a character-for-character
/// copy of a dNSName, or an iPAddress in text form (IPv4 as RFC 3986 3.2.2, IPv6 as RFC 5952 4,
/// which is how `std::net` prints them).
fn lint_common_name(tbs: &TbsCertificate, san: &SubjectAltName, report: &mut Report) {
    for cn in common_names(tbs.subject()) {
        let found = san.0.iter().any(|name| match name {
            GeneralName::DnsName(dns) => dns.as_str() == cn,
            GeneralName::IpAddress(ip) => ip_text(ip.as_bytes()).is_some_and(|text| text == cn),
            _ => false,
        });
        if !found {
            report.error(
                "leaf.subject.cn_not_in_san",
                "BR 7.1.4.3",
                format!("subject commonName \"{cn}\" is not one of the subjectAltName values"),
            );
        }
    }
}

/// The text form of a 4- or 16-octet iPAddress.
fn ip_text(octets: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(Ipv4Addr::from(v4).to_string());
    }
    <[u8; 16]>::try_from(octets)
        .ok()
        .map(|v6| Ipv6Addr::from(v6).to_string())
}

/// RFC 6962 3.1 and BR 7.1.2.9.1: a precertificate carries the poison extension, critical, whose
/// value is ASN.1 NULL, and no SCT list. A certificate never carries the poison (clients refuse
/// it), and its SCT list (RFC 6962 3.3) is a non-critical OCTET STRING (BR 7.1.2.7.6).
fn lint_ct(exts: &[Extension], kind: CertKind, report: &mut Report) {
    let poison = find(exts, CT_PRECERT_POISON);
    let scts = find(exts, CT_PRECERT_SCTS);
    if kind == CertKind::Precertificate {
        match poison {
            Some(poison) => lint_poison(poison, report),
            None => report.error(
                "precert.poison.missing",
                "RFC 6962 3.1",
                "precertificate has no CT poison extension".to_string(),
            ),
        }
        if scts.is_some() {
            report.error(
                "precert.sct_present",
                "BR 7.1.2.9.1",
                "precertificate carries a signedCertificateTimestampList".to_string(),
            );
        }
        return;
    }
    if poison.is_some() {
        report.error(
            "leaf.poison.present",
            "RFC 6962 3.1",
            "certificate carries the CT poison extension, which only a precertificate may"
                .to_string(),
        );
    }
    if let Some(ext) = scts {
        expect_critical(
            ext,
            false,
            "signedCertificateTimestampList",
            "leaf.sct.critical",
            "BR 7.1.2.7.6",
            report,
        );
        // An undecodable value is reported as cert.ext.malformed.
        let _ = decode_ext::<OctetString>(exts, CT_PRECERT_SCTS, report);
    }
}

/// RFC 6962 3.1: the poison extension is critical and its value is ASN.1 NULL.
fn lint_poison(poison: &Extension, report: &mut Report) {
    if !poison.critical {
        report.error(
            "precert.poison.not_critical",
            "RFC 6962 3.1",
            "CT poison extension is not marked critical".to_string(),
        );
    }
    let value = poison.extn_value.as_bytes();
    if value != POISON_VALUE {
        report.error(
            "precert.poison.value",
            "RFC 6962 3.1",
            format!(
                "CT poison extension value is {}, must be ASN.1 NULL (0500)",
                hex::encode(value)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc5280::{ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME};
    use const_oid::db::rfc6962::{CT_PRECERT_POISON, CT_PRECERT_SCTS};
    use der::asn1::OctetString;
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{KeyUsages, SubjectAltName};

    use crate::lint::test_support::*;
    use crate::lint::*;

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
