//! `action = "self-sign-root"`: a root certificate (BR 7.1.2.1), self-signed with a key on the
//! token.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::name::Name;

use super::{Ctx, StepResult, key_json, signer};
use crate::alg::SignatureAlgorithm;
use crate::ceremony::script::{KeyRef, Plan, ScriptError, parse_ca_key_usage};
use crate::lint::CertKind;
use crate::x509::{self, RootProfile, SubjectName};

/// The action name in scripts.
pub(crate) const ACTION: &str = "self-sign-root";

/// BR 7.1.2.1.1: a root certificate is valid for at least 2922 and at most 9132 days.
pub const ROOT_VALIDITY_DAYS: std::ops::RangeInclusive<u32> = 2922..=9132;

/// The keyUsage of a root when the script gives none (BR 7.1.2.1.2).
const DEFAULT_KEY_USAGE: [&str; 2] = ["keyCertSign", "cRLSign"];

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The root key.
    key: KeyRef,
    /// Subject.
    subject: SubjectName,
    /// notBefore (RFC 3339); default: the start of the run.
    not_before: Option<String>,
    /// Validity in days (BR 7.1.2.1.1: 2922 to 9132).
    validity_days: u32,
    /// keyUsage names; default keyCertSign, cRLSign.
    key_usage: Option<Vec<String>>,
    /// extKeyUsage: must be absent or empty for a root (BR 7.1.2.1.2).
    extended_key_usage: Option<Vec<String>>,
    /// Signature algorithm; default from the key type.
    signature_algorithm: Option<String>,
    /// Where to write the certificate (PEM).
    pub(crate) certificate_out: PathBuf,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct SelfSignRoot {
    pub(crate) id: String,
    key: KeyRef,
    subject: Name,
    not_before: SystemTime,
    validity_days: u32,
    key_usage: KeyUsage,
    signature_algorithm: Option<SignatureAlgorithm>,
    certificate_out: PathBuf,
}

impl SelfSignRoot {
    /// Checks the root profile's fields and resolves the key, names, times and defaults.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let kt = plan.key_ref("key", &raw.key)?;
        let signature_algorithm =
            plan.algorithm("signature-algorithm", &raw.signature_algorithm, kt)?;
        raw.subject
            .validate()
            .map_err(|e| plan.err("subject", e.to_string()))?;
        if !ROOT_VALIDITY_DAYS.contains(&raw.validity_days) {
            return Err(plan.err(
                "validity-days",
                format!(
                    "{} is outside 2922..=9132 days for a root certificate (BR 7.1.2.1.1)",
                    raw.validity_days
                ),
            ));
        }
        let names = raw
            .key_usage
            .unwrap_or_else(|| DEFAULT_KEY_USAGE.map(String::from).to_vec());
        let key_usage = parse_ca_key_usage(&names).map_err(|e| plan.err("key-usage", e))?;
        if raw.extended_key_usage.is_some_and(|e| !e.is_empty()) {
            return Err(plan.err(
                "extended-key-usage",
                "a root certificate MUST NOT contain extKeyUsage (BR 7.1.2.1.2)",
            ));
        }
        let not_before = plan.start("not-before", &raw.not_before)?;
        plan.validity(not_before, raw.validity_days, None)?;
        Ok(SelfSignRoot {
            subject: raw
                .subject
                .to_name()
                .map_err(|e| plan.err("subject", e.to_string()))?,
            id: raw.id,
            key: raw.key,
            not_before,
            validity_days: raw.validity_days,
            key_usage,
            signature_algorithm,
            certificate_out: plan.path(&raw.certificate_out),
        })
    }

    /// The key this step signs with.
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        vec![("key", &self.key)]
    }

    /// Signs the root certificate (linted first, verified after) and writes it.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        let hsm = ctx.hsm()?;
        let key = ctx.key(&self.key)?;
        let signer = signer(&key, self.signature_algorithm)?;
        let profile = RootProfile {
            subject: self.subject.clone(),
            key_usage: self.key_usage,
            ski: x509::key_identifier(&key.spki),
        };
        let validity = x509::validity(self.not_before, self.validity_days)?;
        let signed = x509::sign_certificate(
            profile,
            ctx.serial()?,
            validity,
            key.spki.clone(),
            CertKind::Root,
            &signer,
            |tbs| hsm.sign(&key, signer.alg, tbs),
        )?;
        let key_details = key_json(&key, &hsm.description().label)?;
        ctx.finish_certificate(signed, &self.certificate_out, "key", key_details)
    }
}
