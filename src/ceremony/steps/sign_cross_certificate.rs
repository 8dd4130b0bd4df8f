//! `action = "sign-cross-certificate"`: a cross-certificate (BR 7.1.2.2) for another CA's
//! existing certificate, signed with our key: subject, public key, SKI, EKUs and path length come
//! from the existing certificate; a CSR from the subject CA proves possession of the key.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
use der::Encode;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::request::CertReq;

use super::{
    Ctx, Error, Input, StepResult, check_nested, ekus_of, issuer_ski, key_json, path_len_of,
};
use crate::alg::SignatureAlgorithm;
use crate::ceremony::script::{InputRef, KeyRef, Plan, ScriptError};
use crate::lint::CertKind;
use crate::time::rfc3339;
use crate::x509::{self, CaProfile};

/// The action name in scripts.
pub(crate) const ACTION: &str = "sign-cross-certificate";

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The cross-signer's key.
    issuer_key: KeyRef,
    /// The cross-signer's certificate.
    issuer_certificate: InputRef,
    /// The existing CA certificate being cross-certified: subject, SPKI, SKI, EKU and path length
    /// come from it.
    existing_certificate: InputRef,
    /// A PKCS#10 request from the subject CA (proof of possession); must match the certificate.
    csr: Option<InputRef>,
    /// notBefore (RFC 3339); default: the start of the run (BR 7.1.2.2.1 bounds it).
    not_before: Option<String>,
    /// Validity in days; must end within the cross-signer's validity.
    validity_days: u32,
    /// certificatePolicies OIDs; default the DV reserved OID.
    policies: Option<Vec<String>>,
    /// The cross-signer's CRL URL (http://).
    crl_url: String,
    /// The cross-signer's certificate URL (http://).
    ca_issuers_url: String,
    /// Signature algorithm; default from the issuer key type.
    signature_algorithm: Option<String>,
    /// Where to write the certificate (PEM).
    pub(crate) certificate_out: PathBuf,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct SignCrossCertificate {
    pub(crate) id: String,
    issuer_key: KeyRef,
    issuer_certificate: Input<Certificate>,
    existing_certificate: Input<Certificate>,
    csr: Option<Input<CertReq>>,
    not_before: SystemTime,
    validity_days: u32,
    policies: Vec<ObjectIdentifier>,
    crl_url: String,
    ca_issuers_url: String,
    signature_algorithm: Option<SignatureAlgorithm>,
    certificate_out: PathBuf,
}

impl SignCrossCertificate {
    /// Checks the fields the script chooses and resolves references and defaults; what comes
    /// from the existing certificate is checked when the step runs.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let (signature_algorithm, issuer_certificate, issuer_period) = plan.issuer(
            &raw.issuer_key,
            &raw.signature_algorithm,
            &raw.issuer_certificate,
        )?;
        let (existing_certificate, _) =
            plan.cert_ref("existing-certificate", &raw.existing_certificate)?;
        let csr = match &raw.csr {
            None => None,
            Some(c) => Some(plan.csr_ref("csr", c)?),
        };
        let policies = plan.ca_links(&raw.policies, &raw.crl_url, &raw.ca_issuers_url)?;
        let not_before = plan.ca_validity(&raw.not_before, raw.validity_days, issuer_period)?;
        Ok(SignCrossCertificate {
            certificate_out: plan.path(&raw.certificate_out),
            id: raw.id,
            issuer_key: raw.issuer_key,
            issuer_certificate,
            existing_certificate,
            csr,
            not_before,
            validity_days: raw.validity_days,
            policies,
            crl_url: raw.crl_url,
            ca_issuers_url: raw.ca_issuers_url,
            signature_algorithm,
        })
    }

    /// The key this step signs with.
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        vec![("issuer-key", &self.issuer_key)]
    }

    /// Checks the existing certificate (and CSR), signs the cross-certificate and writes it.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        let super::Issuer {
            hsm,
            key,
            certificate: issuer,
            signer,
        } = ctx.issuer(
            &self.issuer_key,
            &self.issuer_certificate,
            self.signature_algorithm,
        )?;
        let existing = ctx.certificate(&self.existing_certificate)?;
        let tbs = existing.tbs_certificate();
        let spki = tbs.subject_public_key_info().clone();
        let mut checks = Vec::new();
        // BR 7.1.2.2: same subject name and SPKI as the existing certificate; the CSR proves
        // possession of the key.
        if let Some(csr_ref) = &self.csr {
            let csr = ctx.csr(csr_ref)?;
            crate::verify::verify_csr(&csr)
                .map_err(|e| Error::field("csr", format!("proof of possession failed: {e}")))?;
            if csr.info.subject.to_der()? != tbs.subject().to_der()? {
                return Err(Error::field(
                    "csr",
                    "the request's subject is not byte-for-byte the existing certificate's subject (BR 7.1.2.2.2)",
                ));
            }
            if csr.info.public_key != spki {
                return Err(Error::field(
                    "csr",
                    "the request's public key is not the existing certificate's (BR 7.1.2.2)",
                ));
            }
            checks.push("CSR signature (proof of possession) verified; subject bytes and public key equal the existing certificate's");
        }
        let ski = x509::subject_key_id(&existing)?.ok_or_else(|| {
            Error::field(
                "existing-certificate",
                "has no subjectKeyIdentifier to copy (BR 7.1.2.11.4)",
            )
        })?;
        if !ski_matches(&ski, &spki) {
            return Err(Error::field(
                "existing-certificate",
                "its subjectKeyIdentifier is not derived from its public key (RFC 5280 4.2.1.2, RFC 7093)",
            ));
        }
        checks.push("subjectKeyIdentifier derives from the existing certificate's public key");
        // BR 7.1.2.2.5: a cross-certificate for a CA that is not ours is EKU-restricted; it carries
        // the same purposes as the existing certificate.
        let ekus = ekus_of(&existing)?.ok_or_else(|| {
            Error::field(
                "existing-certificate",
                "has no extKeyUsage; a cross-certificate for a third-party CA must be EKU-restricted (BR 7.1.2.2.5)",
            )
        })?;
        if !ekus.contains(&ID_KP_SERVER_AUTH) {
            return Err(Error::field(
                "existing-certificate",
                "its extKeyUsage lacks serverAuth (BR 7.1.2.2.5)",
            ));
        }
        let path_len = path_len_of(&existing)?
            .ok_or_else(|| Error::field("existing-certificate", "has no basicConstraints"))?;
        let ku = existing
            .tbs_certificate()
            .get_extension::<KeyUsage>()?
            .map(|(_, k)| k)
            .ok_or_else(|| Error::field("existing-certificate", "has no keyUsage"))?;
        // BR 7.1.2.2.1: notBefore no earlier than the earlier of (signing time − 1 day) and the
        // existing certificate's notBefore, and no later than the signing time.
        let signing_time = ctx.started_at;
        let not_before = self.not_before;
        let floor = std::cmp::min(
            signing_time - Duration::from_secs(86_400),
            tbs.validity().not_before.to_system_time(),
        );
        if not_before < floor || not_before > signing_time {
            return Err(Error::field(
                "not-before",
                format!(
                    "{} must lie between {} and the signing time {} (BR 7.1.2.2.1)",
                    rfc3339(not_before),
                    rfc3339(floor),
                    rfc3339(signing_time)
                ),
            ));
        }
        let validity = x509::validity(not_before, self.validity_days)?;
        check_nested(&validity, &issuer)?;
        let profile = CaProfile {
            issuer: issuer.tbs_certificate().subject().clone(),
            subject: tbs.subject().clone(),
            key_usage: ku,
            ekus,
            path_len,
            ski,
            aki: issuer_ski(&issuer, "the cross-signer")?,
            ca_issuers_url: self.ca_issuers_url.clone(),
            policies: self.policies.clone(),
            crl_url: self.crl_url.clone(),
        };
        let signed = x509::sign_certificate(
            profile,
            ctx.serial()?,
            validity,
            spki,
            CertKind::CrossCertificate,
            &signer,
            |t| hsm.sign(&key, signer.alg, t),
        )?;
        let key_details = key_json(&key, &hsm.description().label)?;
        let (output, mut details) =
            ctx.finish_certificate(signed, &self.certificate_out, "issuer_key", key_details)?;
        details["cross_checks"] = json!(checks);
        Ok((output, details))
    }
}

/// The key identifiers a subjectKeyIdentifier may have been derived with: RFC 5280 4.2.1.2
/// method 1 (SHA-1 of the subjectPublicKey) and RFC 7093 section 2 method 1 (leftmost 160 bits of
/// SHA-256).
fn ski_matches(ski: &[u8], spki: &spki::SubjectPublicKeyInfoOwned) -> bool {
    let bits = spki.subject_public_key.raw_bytes();
    ski == sha1::Sha1::digest(bits).as_slice() || ski == &Sha256::digest(bits)[..20]
}
