//! Checks on a to-be-signed CRL (RFC 5280 5, BR 4.9.7 and 7.2).

use std::collections::HashSet;

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use der::asn1::Int;
use der::{DateTime, Decode};
use x509_cert::Version;
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};

use super::algorithm::{self, Signed, oid_name};
use super::certificate::lint_time_encoding;
use super::extensions::{find, lint_duplicates};
use super::{CrlKind, Report};

/// BR 4.9.7: a CRL for subscriber certificates has nextUpdate at most ten days after thisUpdate.
const SUBSCRIBER_MAX_SECONDS: u64 = 10 * 86_400;

/// Longest CRLNumber RFC 5280 5.2.3 allows, in DER content octets.
const MAX_CRL_NUMBER_OCTETS: usize = 20;

/// Runs every CRL check.
pub(super) fn lint(tbs: &TbsCertList, kind: CrlKind, report: &mut Report) {
    lint_version(tbs, report);
    algorithm::lint_signature_algorithm(&tbs.signature, Signed::Crl, report);
    if tbs.issuer.is_empty() {
        report.error(
            "crl.issuer.empty",
            "RFC 5280 5.1.2.3",
            "issuer is an empty Name".to_string(),
        );
    }
    lint_update_times(tbs, kind, report);
    let exts: &[Extension] = tbs.crl_extensions.as_deref().unwrap_or(&[]);
    lint_duplicates(exts, "crl.ext.duplicate", "CRL", report);
    lint_crl_number(exts, report);
    lint_aki(exts, report);
    lint_other_extensions(exts, report);
    lint_entries(tbs.revoked_certificates.as_deref(), kind, report);
}

/// RFC 5280 5.1.2.1 and BR 7.2.1: CRLs are X.509 v2.
fn lint_version(tbs: &TbsCertList, report: &mut Report) {
    if tbs.version != Version::V2 {
        report.error(
            "crl.version.not_v2",
            "RFC 5280 5.1.2.1",
            format!("version is {:?}, must be v2", tbs.version),
        );
    }
}

/// RFC 5280 5.1.2.4 / 5.1.2.5: time encodings, and nextUpdate is present and later than
/// thisUpdate; BR 4.9.7: nextUpdate is at most 12 months after thisUpdate for a CRL covering CA
/// certificates, and at most 10 days for one covering subscriber certificates.
fn lint_update_times(tbs: &TbsCertList, kind: CrlKind, report: &mut Report) {
    lint_time_encoding(
        &tbs.this_update,
        "thisUpdate",
        "crl.time.encoding",
        "RFC 5280 5.1.2.4",
        report,
    );
    let Some(next_update) = &tbs.next_update else {
        report.error(
            "crl.next_update.missing",
            "RFC 5280 5.1.2.5",
            "nextUpdate is absent".to_string(),
        );
        return;
    };
    lint_time_encoding(
        next_update,
        "nextUpdate",
        "crl.time.encoding",
        "RFC 5280 5.1.2.5",
        report,
    );
    let this = tbs.this_update.to_unix_duration().as_secs();
    let next = next_update.to_unix_duration().as_secs();
    if next <= this {
        report.error(
            "crl.next_update.not_after_this_update",
            "RFC 5280 5.1.2.5",
            format!(
                "nextUpdate {next_update} is not later than thisUpdate {}",
                tbs.this_update
            ),
        );
        return;
    }
    let (limit, what) = match kind {
        CrlKind::CaCertificates => (
            twelve_months_after(tbs.this_update.to_date_time()),
            "12 months",
        ),
        CrlKind::SubscriberCertificates => (Some(this + SUBSCRIBER_MAX_SECONDS), "10 days"),
    };
    if limit.is_none_or(|limit| next > limit) {
        report.error(
            "crl.next_update.too_far",
            "BR 4.9.7",
            format!(
                "nextUpdate {next_update} is more than {what} after thisUpdate {}",
                tbs.this_update
            ),
        );
    }
}

/// The same instant one calendar year (12 months) later, in seconds since the Unix epoch; 29
/// February maps to 28 February. `None` when the result cannot be represented.
fn twelve_months_after(t: DateTime) -> Option<u64> {
    let day = if t.month() == 2 && t.day() == 29 {
        28
    } else {
        t.day()
    };
    DateTime::new(
        t.year().checked_add(1)?,
        t.month(),
        day,
        t.hour(),
        t.minutes(),
        t.seconds(),
    )
    .ok()
    .map(|d| d.unix_duration().as_secs())
}

/// RFC 5280 5.2.3 and BR 7.2.2: the CRL number extension is present, not critical, and a
/// non-negative INTEGER of at most 20 octets (less than 2^159).
fn lint_crl_number(exts: &[Extension], report: &mut Report) {
    let Some(ext) = find(exts, ID_CE_CRL_NUMBER) else {
        report.error(
            "crl.crl_number.missing",
            "RFC 5280 5.2.3",
            "cRLNumber extension is missing".to_string(),
        );
        return;
    };
    if ext.critical {
        report.error(
            "crl.crl_number.critical",
            "RFC 5280 5.2.3",
            "cRLNumber is marked critical".to_string(),
        );
    }
    let Ok(number) = Int::from_der(ext.extn_value.as_bytes()) else {
        report.error(
            "crl.ext.malformed",
            "RFC 5280 5.2.3",
            "cRLNumber is not a DER INTEGER".to_string(),
        );
        return;
    };
    let content = number.as_bytes();
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        report.error(
            "crl.crl_number.negative",
            "RFC 5280 5.2.3",
            "cRLNumber is negative".to_string(),
        );
    }
    if content.len() > MAX_CRL_NUMBER_OCTETS {
        report.error(
            "crl.crl_number.too_long",
            "RFC 5280 5.2.3",
            format!(
                "cRLNumber has {} octets, at most {MAX_CRL_NUMBER_OCTETS} are allowed",
                content.len()
            ),
        );
    }
}

/// RFC 5280 5.2.1 and BR 7.2.2 (referring to 7.1.2.11.1): authorityKeyIdentifier is present, not
/// critical, and carries a keyIdentifier.
fn lint_aki(exts: &[Extension], report: &mut Report) {
    let Some(ext) = find(exts, ID_CE_AUTHORITY_KEY_IDENTIFIER) else {
        report.error(
            "crl.aki.missing",
            "RFC 5280 5.2.1",
            "authorityKeyIdentifier is missing".to_string(),
        );
        return;
    };
    if ext.critical {
        report.error(
            "crl.aki.critical",
            "RFC 5280 4.2.1.1",
            "authorityKeyIdentifier is marked critical".to_string(),
        );
    }
    match AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes()) {
        Err(_) => report.error(
            "crl.ext.malformed",
            "RFC 5280 5.2.1",
            "authorityKeyIdentifier is not valid DER".to_string(),
        ),
        Ok(aki) if aki.key_identifier.is_none() => report.error(
            "crl.aki.key_id_missing",
            "BR 7.1.2.11.1",
            "authorityKeyIdentifier has no keyIdentifier".to_string(),
        ),
        Ok(_) => {}
    }
}

/// BR 7.2.2: issuingDistributionPoint, if present, is critical (RFC 5280 5.2.5); any CRL
/// extension other than authorityKeyIdentifier, cRLNumber and issuingDistributionPoint is NOT
/// RECOMMENDED.
fn lint_other_extensions(exts: &[Extension], report: &mut Report) {
    for ext in exts {
        if ext.extn_id == ID_CE_ISSUING_DISTRIBUTION_POINT {
            if !ext.critical {
                report.error(
                    "crl.idp.not_critical",
                    "RFC 5280 5.2.5",
                    "issuingDistributionPoint is not marked critical".to_string(),
                );
            }
        } else if ext.extn_id != ID_CE_AUTHORITY_KEY_IDENTIFIER && ext.extn_id != ID_CE_CRL_NUMBER {
            report.warning(
                "crl.ext.unexpected",
                "BR 7.2.2",
                format!(
                    "CRL extension {} is NOT RECOMMENDED",
                    oid_name(&ext.extn_id)
                ),
            );
        }
    }
}

/// RFC 5280 5.1.2.6: revokedCertificates is absent rather than empty, and lists each serial
/// once; then the checks on each entry.
fn lint_entries(entries: Option<&[RevokedCert]>, kind: CrlKind, report: &mut Report) {
    let Some(entries) = entries else {
        return;
    };
    if entries.is_empty() {
        report.error(
            "crl.revoked.empty",
            "RFC 5280 5.1.2.6",
            "revokedCertificates is present but empty; it MUST be absent".to_string(),
        );
    }
    let mut serials: HashSet<&[u8]> = HashSet::with_capacity(entries.len());
    for entry in entries {
        let serial = entry.serial_number.as_bytes();
        if !serials.insert(serial) {
            report.error(
                "crl.entry.serial_duplicate",
                "RFC 5280 5.1.2.6",
                format!("serial {} is listed more than once", entry.serial_number),
            );
        }
        lint_entry(entry, kind, report);
    }
}

/// One revoked-certificate entry: revocationDate encoding (RFC 5280 5.1.2.6), no duplicate
/// entry extension (RFC 5280 5.3), the reasonCode rules of BR 7.2.2 and RFC 5280 5.3.1, and no
/// entry extension other than reasonCode (BR 7.2.2: NOT RECOMMENDED).
///
/// Runs once without naming the serial and, only if that finds something, again with it: a CRL
/// with a million clean entries then formats no serial at all.
pub(super) fn lint_entry(entry: &RevokedCert, kind: CrlKind, report: &mut Report) {
    let mut quick = Report::default();
    lint_entry_as(entry, kind, None, &mut quick);
    if !quick.findings.is_empty() {
        lint_entry_as(entry, kind, Some(&entry.serial_number.to_string()), report);
    }
}

fn lint_entry_as(entry: &RevokedCert, kind: CrlKind, serial: Option<&str>, report: &mut Report) {
    let name = |what: &str| match serial {
        Some(serial) => format!("{what} {serial}"),
        None => String::new(),
    };
    let serial = serial.unwrap_or_default();
    lint_time_encoding(
        &entry.revocation_date,
        &name("revocationDate of serial"),
        "crl.time.encoding",
        "RFC 5280 5.1.2.6",
        report,
    );
    let exts: &[Extension] = entry.crl_entry_extensions.as_deref().unwrap_or(&[]);
    lint_duplicates(
        exts,
        "crl.entry.ext.duplicate",
        &name("entry for serial"),
        report,
    );
    for ext in exts {
        if ext.extn_id != ID_CE_CRL_REASONS {
            report.warning(
                "crl.entry.ext.unexpected",
                "BR 7.2.2",
                format!(
                    "entry for serial {serial} carries {}, which is NOT RECOMMENDED",
                    oid_name(&ext.extn_id)
                ),
            );
        }
    }
    match find(exts, ID_CE_CRL_REASONS) {
        None => {
            if kind == CrlKind::CaCertificates {
                report.error(
                    "crl.entry.reason.missing",
                    "BR 7.2.2",
                    format!("entry for CA certificate serial {serial} has no reasonCode"),
                );
            }
        }
        Some(ext) => lint_reason_code(ext, serial, kind, report),
    }
}

/// RFC 5280 5.3.1 and BR 7.2.2: reasonCode is a non-critical ENUMERATED CRLReason, never
/// unspecified (0: the extension is omitted instead) nor certificateHold (6); removeFromCRL (8)
/// belongs to delta CRLs and aACompromise (10) to attribute certificates, and cACompromise (2)
/// applies only to CA certificates.
fn lint_reason_code(ext: &Extension, serial: &str, kind: CrlKind, report: &mut Report) {
    if ext.critical {
        report.error(
            "crl.entry.reason.critical",
            "BR 7.2.2",
            format!("reasonCode of serial {serial} is marked critical"),
        );
    }
    let Ok(reason) = CrlReason::from_der(ext.extn_value.as_bytes()) else {
        report.error(
            "crl.entry.reason.malformed",
            "RFC 5280 5.3.1",
            format!("reasonCode of serial {serial} is not a DER ENUMERATED CRLReason"),
        );
        return;
    };
    let (code, why) = match reason {
        CrlReason::Unspecified => (
            "crl.entry.reason.unspecified",
            "unspecified (0): the reasonCode MUST be omitted instead",
        ),
        CrlReason::CertificateHold => (
            "crl.entry.reason.certificate_hold",
            "certificateHold (6), which MUST NOT be used",
        ),
        CrlReason::RemoveFromCRL | CrlReason::AaCompromise => (
            "crl.entry.reason.not_allowed",
            "a reason BR 7.2.2 does not allow",
        ),
        CrlReason::CaCompromise if kind == CrlKind::SubscriberCertificates => (
            "crl.entry.reason.not_allowed",
            "cACompromise, which applies only to CA certificates",
        ),
        _ => return,
    };
    report.error(
        code,
        "BR 7.2.2",
        format!("reasonCode of serial {serial} is {why}"),
    );
}

#[cfg(test)]
mod tests {
    use const_oid::ObjectIdentifier;
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS,
    };
    use const_oid::db::rfc5912::{
        ECDSA_WITH_SHA_384, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    };
    use der::asn1::{Int, OctetString};
    use x509_cert::Version;
    use x509_cert::crl::{RevokedCert, TbsCertList};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::AlgorithmIdentifierOwned;

    use crate::lint::test_support::*;
    use crate::lint::*;

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
}
