//! Checks on the encoding and content of a subject Name (BR 7.1.4), for a CA (BR 7.1.2.10.2) or a
//! Domain Validated subscriber (BR 7.1.2.7.2).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{
    COMMON_NAME, COUNTRY_NAME, DOMAIN_COMPONENT, GIVEN_NAME, LOCALITY_NAME, ORGANIZATION_NAME,
    ORGANIZATIONAL_UNIT_NAME, POSTAL_CODE, ST, STREET, SURNAME,
};
use der::asn1::PrintableStringRef;
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

use super::Report;

/// String types BR 7.1.4.2 allows for an attribute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// IA5String only.
    Ia5,
    /// PrintableString only.
    Printable,
    /// UTF8String or PrintableString.
    Utf8OrPrintable,
}

/// One row of BR 7.1.4.2's "Encoding and Order Requirements for Selected Attributes" table.
struct AttributeRule {
    oid: ObjectIdentifier,
    name: &'static str,
    encoding: Encoding,
    max_len: usize,
}

/// BR 7.1.4.2, in table order: attributes present in a subject MUST appear in this relative order.
const ORDERED_ATTRIBUTES: &[AttributeRule] = &[
    rule(DOMAIN_COMPONENT, "domainComponent", Encoding::Ia5, 63),
    rule(COUNTRY_NAME, "countryName", Encoding::Printable, 2),
    rule(ST, "stateOrProvinceName", Encoding::Utf8OrPrintable, 128),
    rule(
        LOCALITY_NAME,
        "localityName",
        Encoding::Utf8OrPrintable,
        128,
    ),
    rule(POSTAL_CODE, "postalCode", Encoding::Utf8OrPrintable, 40),
    rule(STREET, "streetAddress", Encoding::Utf8OrPrintable, 128),
    rule(
        ORGANIZATION_NAME,
        "organizationName",
        Encoding::Utf8OrPrintable,
        64,
    ),
    rule(SURNAME, "surname", Encoding::Utf8OrPrintable, 64),
    rule(GIVEN_NAME, "givenName", Encoding::Utf8OrPrintable, 64),
    rule(
        ORGANIZATIONAL_UNIT_NAME,
        "organizationalUnitName",
        Encoding::Utf8OrPrintable,
        64,
    ),
    rule(COMMON_NAME, "commonName", Encoding::Utf8OrPrintable, 64),
];

const fn rule(
    oid: ObjectIdentifier,
    name: &'static str,
    encoding: Encoding,
    max_len: usize,
) -> AttributeRule {
    AttributeRule {
        oid,
        name,
        encoding,
        max_len,
    }
}

/// BR 7.1.2.10.2: attributes a CA subject MAY carry besides the required ones.
const CA_OPTIONAL: &[ObjectIdentifier] = &[ST, LOCALITY_NAME, POSTAL_CODE, STREET];

/// BR 7.1.2.10.2: attributes a CA subject MUST carry.
const CA_REQUIRED: &[(ObjectIdentifier, &str)] = &[
    (COUNTRY_NAME, "countryName"),
    (ORGANIZATION_NAME, "organizationName"),
    (COMMON_NAME, "commonName"),
];

/// Lints a CA certificate's subject: encoding (BR 7.1.4.1, 7.1.4.2) and content (BR 7.1.2.10.2).
pub(super) fn lint_ca_subject(subject: &Name, report: &mut Report) {
    lint_encoding(subject, report);
    lint_ca_attributes(subject, report);
}

/// Lints a Domain Validated subscriber certificate's subject: encoding (BR 7.1.4.1, 7.1.4.2) and
/// content (BR 7.1.2.7.2). Whether a commonName is one of the subjectAltName values
/// (BR 7.1.4.3) is checked with the extension.
pub(super) fn lint_subscriber_subject(subject: &Name, report: &mut Report) {
    lint_encoding(subject, report);
    lint_subscriber_attributes(subject, report);
}

/// BR 7.1.4.1 and 7.1.4.2: how a subject is encoded, whatever the profile.
fn lint_encoding(subject: &Name, report: &mut Report) {
    lint_rdns_single_valued(subject, report);
    lint_attribute_order(subject, report);
    for atv in subject.iter() {
        lint_attribute_encoding(atv, report);
    }
}

/// The name BR 7.1.4.2's table gives an attribute, else its dotted OID.
fn attribute_name(oid: &ObjectIdentifier) -> String {
    ORDERED_ATTRIBUTES
        .iter()
        .find(|r| r.oid == *oid)
        .map_or_else(|| oid.to_string(), |r| r.name.to_string())
}

/// The text of every commonName in `subject`, for the attributes that hold valid UTF-8 (a wrong
/// string type is reported by the encoding checks).
pub(super) fn common_names(subject: &Name) -> Vec<&str> {
    subject
        .iter()
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
        .collect()
}

/// BR 7.1.4.1: each RelativeDistinguishedName MUST contain exactly one AttributeTypeAndValue.
fn lint_rdns_single_valued(subject: &Name, report: &mut Report) {
    for (i, rdn) in subject.iter_rdn().enumerate() {
        if rdn.len() != 1 {
            report.error(
                "cert.subject.rdn_not_single",
                "BR 7.1.4.1",
                format!(
                    "subject RDN #{i} holds {} attributes, exactly one is allowed",
                    rdn.len()
                ),
            );
        }
    }
}

/// BR 7.1.4.2: attributes listed in the table are encoded in the relative order of the table
/// (domainComponent, C, ST, L, postalCode, street, O, surname, givenName, OU, CN).
fn lint_attribute_order(subject: &Name, report: &mut Report) {
    let mut last: Option<&AttributeRule> = None;
    let mut last_index = 0;
    for atv in subject.iter() {
        let Some(index) = ORDERED_ATTRIBUTES.iter().position(|r| r.oid == atv.oid) else {
            continue;
        };
        if let Some(prev) = last
            && index < last_index
        {
            report.error(
                "cert.subject.order",
                "BR 7.1.4.2",
                format!(
                    "subject has {} after {}; the required order is C, ST, L, postalCode, \
                     streetAddress, O, OU, CN",
                    ORDERED_ATTRIBUTES[index].name, prev.name
                ),
            );
        }
        last = Some(&ORDERED_ATTRIBUTES[index]);
        last_index = index;
    }
}

/// BR 7.1.4.2: countryName is a two-letter PrintableString (ISO 3166-1 alpha-2), every other
/// attribute a UTF8String or PrintableString (domainComponent: IA5String), within the table's
/// maximum length and not empty.
fn lint_attribute_encoding(atv: &AttributeTypeAndValue, report: &mut Report) {
    let table = ORDERED_ATTRIBUTES.iter().find(|r| r.oid == atv.oid);
    let name = attribute_name(&atv.oid);
    let encoding = table.map_or(Encoding::Utf8OrPrintable, |r| r.encoding);
    let tag = atv.value.tag();
    let bytes = atv.value.value();

    let text: Option<String> = match (encoding, tag) {
        (Encoding::Ia5, Tag::Ia5String) => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        (Encoding::Printable | Encoding::Utf8OrPrintable, Tag::PrintableString) => {
            PrintableStringRef::new(bytes)
                .ok()
                .map(|s| s.as_str().to_string())
        }
        (Encoding::Utf8OrPrintable, Tag::Utf8String) => {
            std::str::from_utf8(bytes).ok().map(str::to_string)
        }
        _ => {
            let allowed = match encoding {
                Encoding::Ia5 => "IA5String",
                Encoding::Printable => "PrintableString",
                Encoding::Utf8OrPrintable => "UTF8String or PrintableString",
            };
            let code = if atv.oid == COUNTRY_NAME {
                "cert.subject.country"
            } else {
                "cert.subject.string_type"
            };
            report.error(
                code,
                "BR 7.1.4.2",
                format!("subject {name} is encoded as {tag}, must be {allowed}"),
            );
            return;
        }
    };
    let Some(text) = text else {
        report.error(
            "cert.subject.string_type",
            "BR 7.1.4.2",
            format!("subject {name} holds characters invalid for its {tag}"),
        );
        return;
    };

    if atv.oid == COUNTRY_NAME {
        if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_uppercase()) {
            report.error(
                "cert.subject.country",
                "BR 7.1.4.2",
                format!("subject countryName \"{text}\" is not a two-letter ISO 3166-1 code"),
            );
        }
        return;
    }
    if text.trim().is_empty() {
        report.error(
            "cert.subject.empty_value",
            "BR 7.1.4.2",
            format!("subject {name} is empty"),
        );
    }
    if let Some(rule) = table {
        let len = text.chars().count();
        if len > rule.max_len {
            report.error(
                "cert.subject.too_long",
                "BR 7.1.4.2",
                format!(
                    "subject {name} has {len} characters, at most {} are allowed",
                    rule.max_len
                ),
            );
        }
    }
}

/// BR 7.1.2.10.2: a CA subject MUST hold countryName, organizationName and commonName, MUST NOT
/// hold organizationalUnitName (Root and TLS subordinate CAs, BR 7.1.2.1 / 7.1.2.6), carries each
/// attribute at most once except streetAddress, and other attributes are NOT RECOMMENDED.
fn lint_ca_attributes(subject: &Name, report: &mut Report) {
    for (oid, name) in CA_REQUIRED {
        if !subject.iter().any(|atv| atv.oid == *oid) {
            report.error(
                "ca.subject.missing_attribute",
                "BR 7.1.2.10.2",
                format!("CA subject has no {name}"),
            );
        }
    }
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for atv in subject.iter() {
        let name = attribute_name(&atv.oid);
        if atv.oid == ORGANIZATIONAL_UNIT_NAME {
            report.error(
                "ca.subject.ou_present",
                "BR 7.1.2.10.2",
                "CA subject holds organizationalUnitName".to_string(),
            );
        } else if !CA_OPTIONAL.contains(&atv.oid) && !CA_REQUIRED.iter().any(|(o, _)| *o == atv.oid)
        {
            report.warning(
                "ca.subject.unexpected_attribute",
                "BR 7.1.2.10.2",
                format!("CA subject holds {name}, which is NOT RECOMMENDED"),
            );
        }
        if seen.contains(&atv.oid) && atv.oid != STREET {
            report.error(
                "ca.subject.duplicate_attribute",
                "BR 7.1.2.10.2",
                format!("CA subject holds {name} more than once"),
            );
        }
        seen.push(atv.oid);
    }
}

/// BR 7.1.2.7.2: a Domain Validated subject holds no attribute but countryName (MAY) and
/// commonName (NOT RECOMMENDED); strongroom's DV profile never sets countryName, so only
/// commonName is accepted, at most once (BR 7.1.4.1, 7.1.4.3: exactly one entry).
fn lint_subscriber_attributes(subject: &Name, report: &mut Report) {
    let mut common_names = 0;
    for atv in subject.iter() {
        if atv.oid == COMMON_NAME {
            common_names += 1;
            continue;
        }
        let name = attribute_name(&atv.oid);
        let why = if atv.oid == COUNTRY_NAME {
            "strongroom's DV profile does not include countryName"
        } else {
            "a Domain Validated subject MUST NOT hold it"
        };
        report.error(
            "leaf.subject.attribute",
            "BR 7.1.2.7.2",
            format!("subject holds {name}; {why}"),
        );
    }
    if common_names > 1 {
        report.error(
            "leaf.subject.cn_duplicate",
            "BR 7.1.4.1",
            format!("subject holds {common_names} commonName attributes, at most one is allowed"),
        );
    }
    if common_names > 0 {
        report.warning(
            "leaf.subject.cn_present",
            "BR 7.1.2.7.2",
            "subject holds commonName, which is NOT RECOMMENDED".to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc4519::{
        COMMON_NAME, COUNTRY_NAME, ORGANIZATION_NAME, ORGANIZATIONAL_UNIT_NAME,
    };
    use der::Tag;
    use x509_cert::attr::AttributeTypeAndValue;

    use crate::lint::test_support::*;
    use crate::lint::*;

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
}
