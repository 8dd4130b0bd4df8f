//! Distinguished names for CA certificates (RFC 5280 4.1.2.4, BR 7.1.4).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{COMMON_NAME, COUNTRY_NAME, ORGANIZATION_NAME};
use der::asn1::{Any, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// The subject of a CA certificate: country, organization and common name, the three attributes
/// BR 7.1.2.10.2 requires. Encoded one attribute per RDN in the order C, O, CN (BR 7.1.4.2),
/// countryName as PrintableString, the others as PrintableString when every character allows it
/// and UTF8String otherwise.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SubjectName {
    /// countryName: ISO 3166-1 alpha-2 code.
    pub country: String,
    /// organizationName.
    pub organization: String,
    /// commonName.
    pub common_name: String,
}

/// Why a [`SubjectName`] is refused; the message starts with the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// countryName is not two upper-case letters (BR 7.1.4.2, X.520 countryName).
    #[error(
        "country: {value:?} is not a two-letter upper-case ISO 3166-1 code (BR 7.1.4.2, X.520 countryName)"
    )]
    Country {
        /// The value given.
        value: String,
    },
    /// organizationName or commonName is empty or has leading or trailing spaces (BR 7.1.4.1).
    #[error("{field}: must be non-empty without leading or trailing spaces (BR 7.1.4.1)")]
    Blank {
        /// `organization` or `common-name`.
        field: &'static str,
    },
    /// organizationName or commonName is longer than its X.520 upper bound of 64 characters
    /// (RFC 5280 Appendix A.1).
    #[error("{field}: longer than 64 characters (RFC 5280 Appendix A.1 upper bounds)")]
    TooLong {
        /// `organization` or `common-name`.
        field: &'static str,
    },
}

impl SubjectName {
    /// Checks the values; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), NameError> {
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(NameError::Country {
                value: self.country.clone(),
            });
        }
        for (field, value) in [
            ("organization", &self.organization),
            ("common-name", &self.common_name),
        ] {
            if value.trim().is_empty() || value.trim() != value {
                return Err(NameError::Blank { field });
            }
            // X.520 upper bound: ub-organization-name and ub-common-name are 64 characters.
            if value.chars().count() > 64 {
                return Err(NameError::TooLong { field });
            }
        }
        Ok(())
    }

    /// The encoded Name.
    pub fn to_name(&self) -> Result<Name, der::Error> {
        let mut rdns = RdnSequence::default();
        for (oid, value, printable_only) in [
            (COUNTRY_NAME, &self.country, true),
            (ORGANIZATION_NAME, &self.organization, false),
            (COMMON_NAME, &self.common_name, false),
        ] {
            rdns.push(RelativeDistinguishedName::try_from(vec![atv(
                oid,
                value,
                printable_only,
            )?])?);
        }
        Name::from_der(&rdns.to_der()?)
    }
}

fn atv(
    oid: ObjectIdentifier,
    value: &str,
    printable_only: bool,
) -> Result<AttributeTypeAndValue, der::Error> {
    let value = match PrintableStringRef::new(value) {
        Ok(p) => Any::encode_from(&p)?,
        Err(e) if printable_only => return Err(e),
        Err(_) => Any::encode_from(&Utf8StringRef::new(value)?)?,
    };
    Ok(AttributeTypeAndValue { oid, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_isrg_root_x1() {
        // ISRG Root X1's subject: C=US, O=Internet Security Research Group, CN=ISRG Root X1, all
        // PrintableString.
        let name = SubjectName {
            country: "US".into(),
            organization: "Internet Security Research Group".into(),
            common_name: "ISRG Root X1".into(),
        };
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/reference-certs/isrg-root-x1.pem"),
        )
        .unwrap();
        use der::DecodePem;
        let cert = x509_cert::Certificate::from_pem(&pem).unwrap();
        assert_eq!(
            name.to_name().unwrap().to_der().unwrap(),
            cert.tbs_certificate().subject().to_der().unwrap()
        );
    }

    #[test]
    fn non_printable_characters_become_utf8() {
        let name = SubjectName {
            country: "DE".into(),
            organization: "Zertifizierungsstelle Müller & Co".into(),
            common_name: "Müller Root".into(),
        };
        use der::Tagged;
        let tags: Vec<der::Tag> = name
            .to_name()
            .unwrap()
            .iter()
            .map(|atv| atv.value.tag())
            .collect();
        assert_eq!(
            tags,
            [
                der::Tag::PrintableString,
                der::Tag::Utf8String,
                der::Tag::Utf8String
            ]
        );
    }

    #[test]
    fn validate_names_the_field() {
        let mut name = SubjectName {
            country: "usa".into(),
            organization: "X".into(),
            common_name: "Y".into(),
        };
        assert_eq!(
            name.validate().unwrap_err().to_string(),
            "country: \"usa\" is not a two-letter upper-case ISO 3166-1 code (BR 7.1.4.2, X.520 countryName)"
        );
        name.country = "US".into();
        name.common_name = " padded".into();
        assert_eq!(
            name.validate().unwrap_err().to_string(),
            "common-name: must be non-empty without leading or trailing spaces (BR 7.1.4.1)"
        );
        name.common_name = "Y".into();
        name.organization = "o".repeat(65);
        assert_eq!(
            name.validate().unwrap_err().to_string(),
            "organization: longer than 64 characters (RFC 5280 Appendix A.1 upper bounds)"
        );
        name.organization = "o".repeat(64);
        assert_eq!(name.validate(), Ok(()));
    }
}
