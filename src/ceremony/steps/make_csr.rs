//! `action = "make-csr"`: a PKCS#10 request (RFC 2986) carrying an existing CA certificate's
//! subject, byte for byte, and its key, for another CA to cross-sign.

use std::path::PathBuf;

use der::Encode;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::{Ctx, Error, Input, Output, StepResult, key_json, signer};
use crate::alg::SignatureAlgorithm;
use crate::ceremony::script::{InputRef, KeyRef, Plan, ScriptError};
use crate::x509;

/// The action name in scripts.
pub(crate) const ACTION: &str = "make-csr";

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The key to sign the request with; its public key must be the certificate's.
    key: KeyRef,
    /// The certificate whose subject the request carries, byte for byte.
    subject_from: InputRef,
    /// Signature algorithm; default from the key type.
    signature_algorithm: Option<String>,
    /// Where to write the request (PEM).
    pub(crate) csr_out: PathBuf,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct MakeCsr {
    pub(crate) id: String,
    key: KeyRef,
    subject_from: Input<Certificate>,
    signature_algorithm: Option<SignatureAlgorithm>,
    csr_out: PathBuf,
}

impl MakeCsr {
    /// Resolves the key and the certificate.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let kt = plan.key_ref("key", &raw.key)?;
        let signature_algorithm =
            plan.algorithm("signature-algorithm", &raw.signature_algorithm, kt)?;
        let (subject_from, _) = plan.cert_ref("subject-from", &raw.subject_from)?;
        Ok(MakeCsr {
            csr_out: plan.path(&raw.csr_out),
            id: raw.id,
            key: raw.key,
            subject_from,
            signature_algorithm,
        })
    }

    /// The key this step signs with.
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        vec![("key", &self.key)]
    }

    /// Signs the request (its self-signature verified after) and writes it.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        let hsm = ctx.hsm()?;
        let key = ctx.key(&self.key)?;
        let cert = ctx.certificate(&self.subject_from)?;
        if cert.tbs_certificate().subject_public_key_info() != &key.spki {
            return Err(Error::field(
                "key",
                format!(
                    "{:?} is not the key of the certificate {}; the request would not match it",
                    key.label,
                    cert.tbs_certificate().subject()
                ),
            ));
        }
        let signer = signer(&key, self.signature_algorithm)?;
        let subject = cert.tbs_certificate().subject();
        let signed = x509::sign_csr(subject, &signer, |info| hsm.sign(&key, signer.alg, info))?;
        let file = ctx.write(
            &self.csr_out,
            &x509::to_pem("CERTIFICATE REQUEST", &signed.der)?,
        )?;
        let details = json!({
            "subject": subject.to_string(),
            "subject_der_sha256": hex::encode(Sha256::digest(subject.to_der()?)),
            "key": key_json(&key, &hsm.description().label)?,
            "csr_sha256": signed.sha256,
            "attributes": "none (subject and public key only)",
            "checks": [
                "subject bytes identical to the certificate's subject",
                "public key identical to the certificate's public key",
                "request self-signature verified in software",
            ],
            "csr_out": file,
        });
        Ok((Output::Csr(Box::new(signed.value)), details))
    }
}
