//! Certificate profiles: which extensions a CA certificate carries, in which order, and how
//! critical. A profile is a plain value; the caller never adds extensions of its own.
//!
//! The order follows the Let's Encrypt certificates we model (see the reference profiles):
//! roots as ISRG Root X1 (KU, BC, SKI); subordinate and cross-certified CAs as R10/E5 (KU, EKU,
//! BC, SKI, AKI, AIA, CP, CRLDP).

use const_oid::db::rfc5280::ID_AD_CA_ISSUERS;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier, certpolicy::PolicyInformation,
};
use x509_cert::name::Name;

/// Encodes one extension.
pub(crate) fn extension<T: Encode + AssociatedOid>(
    value: &T,
    critical: bool,
) -> der::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn uri(url: &str) -> der::Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

/// authorityKeyIdentifier with the keyIdentifier only (BR 7.1.2.11.1), non-critical.
fn authority_key_identifier(aki: &[u8]) -> der::Result<Extension> {
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

/// authorityInfoAccess with one id-ad-caIssuers HTTP URL (BR 7.1.2.7.7, 7.1.2.10.3).
fn ca_issuers(url: &str) -> der::Result<Extension> {
    extension(
        &AuthorityInfoAccessSyntax(vec![AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: uri(url)?,
        }]),
        false,
    )
}

/// cRLDistributionPoints with one fullName HTTP URL, no reasons, no cRLIssuer (BR 7.1.2.11.2).
fn crl_distribution_point(url: &str) -> der::Result<Extension> {
    extension(
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        }]),
        false,
    )
}

/// A self-signed root CA certificate (BR 7.1.2.1).
#[derive(Clone, Debug)]
pub struct RootProfile {
    /// Subject (and issuer) name.
    pub subject: Name,
    /// keyUsage bits; validated to be keyCertSign and cRLSign (plus digitalSignature at most).
    pub key_usage: x509_cert::ext::pkix::KeyUsage,
    /// subjectKeyIdentifier (RFC 7093 method 1).
    pub ski: Vec<u8>,
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
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
        Ok(vec![
            // BR 7.1.2.1.2: keyUsage MUST, critical; basicConstraints MUST, critical, cA true, no
            // pathLenConstraint (7.1.2.1.4); subjectKeyIdentifier MUST; no extKeyUsage.
            extension(&self.key_usage, true)?,
            extension(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
                true,
            )?,
            extension(
                &SubjectKeyIdentifier(OctetString::new(self.ski.clone())?),
                false,
            )?,
        ])
    }
}

/// A subordinate CA certificate issued by one of our roots (BR 7.1.2.6) or a cross-certified
/// subordinate CA certificate (BR 7.1.2.2). The two share one profile; a cross-certificate copies
/// its subject, SKI, EKU and path length from the existing certificate.
#[derive(Clone, Debug)]
pub struct CaProfile {
    /// The issuer's subject name, byte for byte (BR 7.1.4.1).
    pub issuer: Name,
    /// The subject name.
    pub subject: Name,
    /// keyUsage (BR 7.1.2.10.7).
    pub key_usage: KeyUsage,
    /// extKeyUsage purposes (BR 7.1.2.10.6 / 7.1.2.2.5).
    pub ekus: Vec<ObjectIdentifier>,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// subjectKeyIdentifier of the subject key.
    pub ski: Vec<u8>,
    /// authorityKeyIdentifier keyIdentifier: the issuer's subjectKeyIdentifier.
    pub aki: Vec<u8>,
    /// id-ad-caIssuers URL: where the issuer's certificate is published (BR 7.1.2.10.3).
    pub ca_issuers_url: String,
    /// Policy identifiers, the reserved CA/B Forum one first (BR 7.1.2.10.5).
    pub policies: Vec<ObjectIdentifier>,
    /// The issuer's CRL URL (BR 7.1.2.11.2).
    pub crl_url: String,
}

impl BuilderProfile for CaProfile {
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
        Ok(vec![
            extension(&self.key_usage, true)?,
            extension(&ExtendedKeyUsage(self.ekus.clone()), false)?,
            extension(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: self.path_len,
                },
                true,
            )?,
            extension(
                &SubjectKeyIdentifier(OctetString::new(self.ski.clone())?),
                false,
            )?,
            authority_key_identifier(&self.aki)?,
            ca_issuers(&self.ca_issuers_url)?,
            extension(
                &CertificatePolicies(
                    self.policies
                        .iter()
                        .map(|oid| PolicyInformation {
                            policy_identifier: *oid,
                            policy_qualifiers: None,
                        })
                        .collect(),
                ),
                false,
            )?,
            crl_distribution_point(&self.crl_url)?,
        ])
    }
}

/// A delegated OCSP responder certificate (BR 7.1.2.8, RFC 6960 4.2.2.2), issued by the CA whose
/// certificates' status it signs.
///
/// Extensions, in this order: keyUsage (critical, digitalSignature only, BR 7.1.2.8.7),
/// extKeyUsage (id-kp-OCSPSigning only, BR 7.1.2.8.5), id-pkix-ocsp-nocheck (NULL, not
/// critical, BR 7.1.2.8.6, RFC 6960 4.2.2.2.1), subjectKeyIdentifier (SHOULD, BR 7.1.2.8.2),
/// authorityKeyIdentifier (MUST, BR 7.1.2.11.1). No basicConstraints (MAY), no
/// authorityInformationAccess (NOT RECOMMENDED, BR 7.1.2.8.3), no certificatePolicies or
/// cRLDistributionPoints (MUST NOT, BR 7.1.2.8.2).
#[derive(Clone, Debug)]
pub struct OcspResponderProfile {
    /// The issuing CA's subject name, byte for byte (BR 7.1.2.8, 7.1.4.1).
    pub issuer: Name,
    /// The responder's subject (CA naming rules, BR 7.1.2.10.2).
    pub subject: Name,
    /// subjectKeyIdentifier of the responder key.
    pub ski: Vec<u8>,
    /// authorityKeyIdentifier keyIdentifier: the issuing CA's subjectKeyIdentifier.
    pub aki: Vec<u8>,
}

impl BuilderProfile for OcspResponderProfile {
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
        Ok(vec![
            extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
            extension(
                &ExtendedKeyUsage(vec![const_oid::db::rfc5912::ID_KP_OCSP_SIGNING]),
                false,
            )?,
            Extension {
                extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK,
                critical: false,
                extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
            },
            extension(
                &SubjectKeyIdentifier(OctetString::new(self.ski.clone())?),
                false,
            )?,
            authority_key_identifier(&self.aki)?,
        ])
    }
}

/// The keyUsage of a CA: keyCertSign and cRLSign, plus digitalSignature when asked (to sign
/// OCSP responses directly, BR 7.1.2.10.7).
pub fn ca_key_usage(digital_signature: bool) -> KeyUsage {
    let mut bits = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
    if digital_signature {
        bits |= KeyUsages::DigitalSignature;
    }
    KeyUsage(bits)
}

/// Certificate Transparency: what a subscriber certificate carries (RFC 6962 3.1, 3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ct {
    /// A precertificate: the critical poison extension (1.3.6.1.4.1.11129.2.4.3, value NULL).
    Poison,
    /// A final certificate with this TLS-encoded SignedCertificateTimestampList.
    Scts(Vec<u8>),
    /// Neither.
    None,
}

/// The CT precertificate poison extension's OID (RFC 6962 3.1).
pub const CT_POISON: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.3");
/// The SCT list extension's OID (RFC 6962 3.3).
pub const CT_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

impl Ct {
    /// The extension, if any.
    pub fn extension(&self) -> der::Result<Option<Extension>> {
        Ok(match self {
            Ct::Poison => Some(Extension {
                extn_id: CT_POISON,
                critical: true,
                extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
            }),
            Ct::Scts(list) => Some(Extension {
                extn_id: CT_SCT_LIST,
                critical: false,
                // The extension value is an OCTET STRING holding the TLS-encoded list (RFC 6962 3.3).
                extn_value: OctetString::new(OctetString::new(list.clone())?.to_der()?)?,
            }),
            Ct::None => None,
        })
    }
}

/// A TLS server (subscriber) certificate, BR 7.1.2.7, domain-validated.
///
/// Extensions, in this order: keyUsage (critical), extKeyUsage, basicConstraints (critical, cA
/// false), authorityKeyIdentifier, authorityInfoAccess, subjectAltName, certificatePolicies,
/// cRLDistributionPoints, and the CT poison or SCT list. No subjectKeyIdentifier (BR 7.1.2.7.6:
/// NOT RECOMMENDED).
#[derive(Clone, Debug)]
pub struct TlsServerProfile {
    /// The issuer's subject name, byte for byte.
    pub issuer: Name,
    /// The subject: a commonName equal to a SAN entry, or empty (BR 7.1.2.7.2).
    pub subject: Name,
    /// keyUsage: digitalSignature, plus keyEncipherment for RSA keys when the profile says so
    /// (BR 7.1.2.7.11).
    pub key_usage: KeyUsage,
    /// The SAN entries (BR 7.1.2.7.12).
    pub names: Vec<GeneralName>,
    /// The issuer's subjectKeyIdentifier.
    pub aki: Vec<u8>,
    /// The issuer certificate's URL.
    pub ca_issuers_url: String,
    /// The CRL shard that will list this certificate if it is revoked.
    pub crl_url: String,
    /// CT poison, SCT list or neither.
    pub ct: Ct,
}

impl BuilderProfile for TlsServerProfile {
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
        let mut extensions = vec![
            extension(&self.key_usage, true)?,
            extension(
                &ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH]),
                false,
            )?,
            extension(
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                true,
            )?,
            authority_key_identifier(&self.aki)?,
            ca_issuers(&self.ca_issuers_url)?,
            // RFC 5280 4.2.1.6: critical when the subject is empty.
            extension(
                &x509_cert::ext::pkix::SubjectAltName(self.names.clone()),
                self.subject.is_empty(),
            )?,
            extension(
                &CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: DOMAIN_VALIDATED,
                    policy_qualifiers: None,
                }]),
                false,
            )?,
            crl_distribution_point(&self.crl_url)?,
        ];
        if let Some(ct) = self.ct.extension()? {
            extensions.push(ct);
        }
        Ok(extensions)
    }
}

/// The CA/Browser Forum domain-validated policy identifier (BR 7.1.6.1).
pub const DOMAIN_VALIDATED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");
