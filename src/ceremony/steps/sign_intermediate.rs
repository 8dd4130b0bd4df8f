//! `action = "sign-intermediate"`: a TLS subordinate CA certificate (BR 7.1.2.10) signed with a
//! root key on the token.

use std::path::PathBuf;
use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use serde::Deserialize;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::name::Name;

use super::{Ctx, Error, Input, StepResult, check_nested, issuer_ski, key_json};
use crate::alg::SignatureAlgorithm;
use crate::ceremony::script::{
    InputRef, KeyRef, Plan, ScriptError, parse_ca_ekus, parse_ca_key_usage,
};
use crate::lint::CertKind;
use crate::x509::{self, CaProfile, SubjectName};

/// The action name in scripts.
pub(crate) const ACTION: &str = "sign-intermediate";

/// The keyUsage of a subordinate CA when the script gives none (BR 7.1.2.10.7).
const DEFAULT_KEY_USAGE: [&str; 3] = ["digitalSignature", "keyCertSign", "cRLSign"];

/// The extKeyUsage of a TLS subordinate CA when the script gives none (BR 7.1.2.10.6).
const DEFAULT_EKUS: [&str; 1] = ["serverAuth"];

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The issuing (root) key.
    issuer_key: KeyRef,
    /// The issuing root's certificate.
    issuer_certificate: InputRef,
    /// The subordinate CA's public key: a generate-key step or a PEM public key file.
    public_key: InputRef,
    /// Subject.
    subject: SubjectName,
    /// notBefore (RFC 3339); default: the start of the run.
    not_before: Option<String>,
    /// Validity in days; must end within the issuer's validity.
    validity_days: u32,
    /// keyUsage names; default digitalSignature, keyCertSign, cRLSign.
    key_usage: Option<Vec<String>>,
    /// extKeyUsage names; default serverAuth (BR 7.1.2.10.6).
    extended_key_usage: Option<Vec<String>>,
    /// pathLenConstraint; default 0.
    path_length: Option<u8>,
    /// certificatePolicies OIDs; default the DV reserved OID 2.23.140.1.2.1.
    policies: Option<Vec<String>>,
    /// The issuer's CRL URL (http://).
    crl_url: String,
    /// The issuer's certificate URL (http://), for AIA caIssuers.
    ca_issuers_url: String,
    /// Signature algorithm; default from the issuer key type.
    signature_algorithm: Option<String>,
    /// Where to write the certificate (PEM).
    pub(crate) certificate_out: PathBuf,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct SignIntermediate {
    pub(crate) id: String,
    issuer_key: KeyRef,
    issuer_certificate: Input<Certificate>,
    public_key: Input<SubjectPublicKeyInfoOwned>,
    subject: Name,
    not_before: SystemTime,
    validity_days: u32,
    key_usage: KeyUsage,
    ekus: Vec<ObjectIdentifier>,
    path_length: u8,
    policies: Vec<ObjectIdentifier>,
    crl_url: String,
    ca_issuers_url: String,
    signature_algorithm: Option<SignatureAlgorithm>,
    certificate_out: PathBuf,
}

impl SignIntermediate {
    /// Checks the subordinate CA profile's fields and resolves references and defaults.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let (signature_algorithm, issuer_certificate, issuer_period) = plan.issuer(
            &raw.issuer_key,
            &raw.signature_algorithm,
            &raw.issuer_certificate,
        )?;
        let public_key = plan.public_key_ref("public-key", &raw.public_key)?;
        raw.subject
            .validate()
            .map_err(|e| plan.err("subject", e.to_string()))?;
        let ku_names = raw
            .key_usage
            .unwrap_or_else(|| DEFAULT_KEY_USAGE.map(String::from).to_vec());
        let key_usage = parse_ca_key_usage(&ku_names).map_err(|e| plan.err("key-usage", e))?;
        let eku_names = raw
            .extended_key_usage
            .unwrap_or_else(|| DEFAULT_EKUS.map(String::from).to_vec());
        let ekus = parse_ca_ekus(&eku_names).map_err(|e| plan.err("extended-key-usage", e))?;
        let policies = plan.ca_links(&raw.policies, &raw.crl_url, &raw.ca_issuers_url)?;
        let not_before = plan.ca_validity(&raw.not_before, raw.validity_days, issuer_period)?;
        Ok(SignIntermediate {
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
            validity_days: raw.validity_days,
            key_usage,
            ekus,
            path_length: raw.path_length.unwrap_or(0),
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

    /// Signs the subordinate CA certificate (linted first, verified after) and writes it.
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
        let (subject_spki, _) = ctx.public_key(&self.public_key)?;
        crate::keycheck::check_public_key(&subject_spki, &crate::alg::KeyType::ALL)
            .map_err(|e| Error::field("public-key", e.to_string()))?;
        let profile = CaProfile {
            issuer: issuer.tbs_certificate().subject().clone(),
            subject: self.subject.clone(),
            key_usage: self.key_usage,
            ekus: self.ekus.clone(),
            path_len: Some(self.path_length),
            ski: x509::key_identifier(&subject_spki),
            aki: issuer_ski(&issuer, "the issuer")?,
            ca_issuers_url: self.ca_issuers_url.clone(),
            policies: self.policies.clone(),
            crl_url: self.crl_url.clone(),
        };
        let validity = x509::validity(self.not_before, self.validity_days)?;
        check_nested(&validity, &issuer)?;
        let signed = x509::sign_certificate(
            profile,
            ctx.serial()?,
            validity,
            subject_spki,
            CertKind::SubordinateCa,
            &signer,
            |tbs| hsm.sign(&key, signer.alg, tbs),
        )?;
        let key_details = key_json(&key, &hsm.description().label)?;
        ctx.finish_certificate(signed, &self.certificate_out, "issuer_key", key_details)
    }
}
