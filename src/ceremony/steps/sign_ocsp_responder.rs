//! `action = "sign-ocsp-responder"`: a delegated OCSP responder certificate (BR 7.1.2.8,
//! RFC 6960 4.2.2.2) for a key on the token, signed by the issuing CA whose certificates' status
//! it will sign.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::json;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::name::Name;

use super::{Ctx, Error, Input, StepResult, check_nested, issuer_ski, key_json};
use crate::alg::SignatureAlgorithm;
use crate::ceremony::script::{InputRef, KeyRef, Plan, ScriptError};
use crate::lint::CertKind;
use crate::time::rfc3339;
use crate::x509::{self, SignerInfo, SubjectName};

/// The action name in scripts.
pub(crate) const ACTION: &str = "sign-ocsp-responder";

/// BR 7.1.2.8.1 sets no maximum; strongroom's default lifetime of a delegated OCSP responder
/// certificate, in days (see [`crate::lint::MAX_RESPONDER_DAYS`] for the cap and why).
pub const DEFAULT_RESPONDER_DAYS: u32 = 30;

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The issuing CA's key.
    issuer_key: KeyRef,
    /// The issuing CA's certificate.
    issuer_certificate: InputRef,
    /// The responder's public key: a generate-key step or a PEM public key file.
    public_key: InputRef,
    /// Subject (CA naming rules, BR 7.1.2.10.2).
    subject: SubjectName,
    /// notBefore (RFC 3339); default: the start of the run. At most one day before it.
    not_before: Option<String>,
    /// Validity in days; default 30, at most 90 (strongroom's cap, RFC 6960 4.2.2.2.1).
    validity_days: Option<u32>,
    /// Signature algorithm; default from the issuer key type.
    signature_algorithm: Option<String>,
    /// Where to write the certificate (PEM).
    pub(crate) certificate_out: PathBuf,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct SignOcspResponder {
    pub(crate) id: String,
    issuer_key: KeyRef,
    issuer_certificate: Input<Certificate>,
    public_key: Input<SubjectPublicKeyInfoOwned>,
    subject: Name,
    not_before: SystemTime,
    validity_days: u32,
    signature_algorithm: Option<SignatureAlgorithm>,
    certificate_out: PathBuf,
}

impl SignOcspResponder {
    /// Checks the responder profile's fields and resolves references and defaults.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let (signature_algorithm, issuer_certificate, issuer_period) = plan.issuer(
            &raw.issuer_key,
            &raw.signature_algorithm,
            &raw.issuer_certificate,
        )?;
        let public_key = plan.public_key_ref("public-key", &raw.public_key)?;
        if matches!((&raw.public_key, &raw.issuer_key), (InputRef::Step(p), KeyRef::Step(k)) if p == k)
        {
            return Err(plan.err(
                "public-key",
                "the responder key must not be the issuing CA's key (RFC 6960 4.2.2.2: a delegated responder has its own key)",
            ));
        }
        raw.subject
            .validate()
            .map_err(|e| plan.err("subject", e.to_string()))?;
        let days = raw.validity_days.unwrap_or(DEFAULT_RESPONDER_DAYS);
        let max = crate::lint::MAX_RESPONDER_DAYS;
        if days == 0 || u64::from(days) > max {
            return Err(plan.err(
                "validity-days",
                format!(
                    "{days} is outside 1..={max}: BR 7.1.2.8.1 sets no maximum, but a responder certificate with id-pkix-ocsp-nocheck cannot be revoked, so strongroom keeps it short (RFC 6960 4.2.2.2.1)"
                ),
            ));
        }
        let not_before = plan.start("not-before", &raw.not_before)?;
        if not_before > plan.started_at
            || not_before + Duration::from_secs(86_400) < plan.started_at
        {
            return Err(plan.err(
                "not-before",
                "must lie between one day before the signing time and the signing time (BR 7.1.2.8.1)",
            ));
        }
        plan.validity(not_before, days, issuer_period)?;
        Ok(SignOcspResponder {
            subject: raw
                .subject
                .to_name()
                .map_err(|e| plan.err("subject", e.to_string()))?,
            certificate_out: plan.path(&raw.certificate_out),
            id: raw.id,
            issuer_key: raw.issuer_key,
            issuer_certificate,
            public_key,
            not_before,
            validity_days: days,
            signature_algorithm,
        })
    }

    /// The key this step signs with.
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        vec![("issuer-key", &self.issuer_key)]
    }

    /// Signs the responder certificate, then checks it the way the signing service will before
    /// using it ([`crate::ocsp::Responder::new`]: issued and signed by the issuer,
    /// id-kp-OCSPSigning, id-pkix-ocsp-nocheck), and writes it.
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
        let (responder_spki, responder_key) = ctx.public_key(&self.public_key)?;
        if responder_spki == key.spki {
            return Err(Error::field(
                "public-key",
                "the responder key must not be the issuing CA's key (RFC 6960 4.2.2.2)",
            ));
        }
        let responder_type =
            crate::keycheck::check_public_key(&responder_spki, &crate::alg::KeyType::ALL)
                .map_err(|e| Error::field("public-key", e.to_string()))?;
        let profile = x509::OcspResponderProfile {
            issuer: issuer.tbs_certificate().subject().clone(),
            subject: self.subject.clone(),
            ski: x509::key_identifier(&responder_spki),
            aki: issuer_ski(&issuer, "the issuer")?,
        };
        let not_before = self.not_before;
        let signing_time = ctx.started_at;
        if not_before > signing_time || not_before + Duration::from_secs(86_400) < signing_time {
            return Err(Error::field(
                "not-before",
                format!(
                    "{} must lie between one day before the signing time {} and it (BR 7.1.2.8.1)",
                    rfc3339(not_before),
                    rfc3339(signing_time)
                ),
            ));
        }
        let validity = x509::validity(not_before, self.validity_days)?;
        check_nested(&validity, &issuer)?;
        let signed = x509::sign_certificate(
            profile,
            ctx.serial()?,
            validity,
            responder_spki.clone(),
            CertKind::OcspResponder,
            &signer,
            |t| hsm.sign(&key, signer.alg, t),
        )?;
        // What the service checks at start, checked now: a certificate it would refuse is not
        // written.
        let responder_signer = SignerInfo {
            spki: responder_spki,
            alg: responder_type.default_signature_algorithm(),
        };
        let _ = crate::ocsp::Responder::new(&issuer, responder_signer, Some(signed.value.clone()))
            .map_err(|e| {
                Error::Check(format!(
                    "the signed responder certificate fails the service's checks: {e}"
                ))
            })?;
        let token = hsm.description().label.clone();
        let key_details = key_json(&key, &token)?;
        let (output, mut details) =
            ctx.finish_certificate(signed, &self.certificate_out, "issuer_key", key_details)?;
        if let Some(k) = &responder_key {
            details["responder_key"] = key_json(k, &token)?;
        }
        details["profile"] = json!(
            "OCSP responder (BR 7.1.2.8): keyUsage digitalSignature (critical), extKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck, SKI, AKI; no AIA, CRLDP or policies"
        );
        details["responder_checks"] = json!([
            "issued and signed by the issuing CA, authorityKeyIdentifier = its subjectKeyIdentifier",
            "extKeyUsage id-kp-OCSPSigning and id-pkix-ocsp-nocheck present (RFC 6960 4.2.2.2, BR 4.9.9)",
        ]);
        Ok((output, details))
    }
}
