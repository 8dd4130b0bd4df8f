//! Ceremony steps, one file per kind, shaped like commands: each has its script table (serde),
//! `parse` (check it and resolve it into typed values, with defaults applied once), `run` (the
//! HSM work and checks, against a `Ctx`) and the transcript record `run` returns. [`Step`]
//! only dispatches.

pub mod check_cross_signed;
pub mod generate_key;
pub mod make_csr;
pub mod self_sign_root;
pub mod sign_crl;
pub mod sign_cross_certificate;
pub mod sign_intermediate;
pub mod sign_ocsp_responder;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;

use super::script::{KeyRef, Plan, Produces, ScriptError};
use crate::alg::{KeyType, SignatureAlgorithm};
use crate::hsm::{Hsm, KeyHandle};
use crate::time::rfc3339;
use crate::x509::{self, SignerInfo};

/// Why a step failed. The runner wraps it with the step's number, action and id
/// ([`super::Error::Step`]); its text is what the transcript's `step-failed` event records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The step needs the HSM and the ceremony has none.
    #[error("this step needs the HSM")]
    NoHsm,
    /// An earlier step's output is not what this step needs.
    #[error("step {step:?} produced no {what}")]
    NoOutput {
        /// The earlier step's id.
        step: String,
        /// "key", "certificate" or "CSR".
        what: &'static str,
    },
    /// A key given by URI was not found at pre-flight.
    #[error("key {0} was not found")]
    KeyNotFound(String),
    /// A field's value breaks a rule, found while running the step.
    #[error("{field}: {rule}")]
    Field {
        /// The script field (or a path into it, like `revoked[0].reason`).
        field: String,
        /// The rule, with its source.
        rule: String,
    },
    /// A check that is not about one field failed.
    #[error("{0}")]
    Check(String),
    /// The returned cross-signed certificate differs from ours (`check-cross-signed`).
    #[error("the cross-signed certificate does not match: {differences}\n{report}")]
    CrossSignedMismatch {
        /// Every difference, joined.
        differences: String,
        /// The readable report of all checks.
        report: String,
    },
    /// The operator did not confirm a signing step (BR 4.3.1.1).
    #[error("{0}")]
    NotConfirmed(String),
    /// An output file could not be written.
    #[error("{0}")]
    Output(String),
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] crate::hsm::Error),
    /// Building, linting, signing or checking an object failed.
    #[error(transparent)]
    X509(#[from] x509::Error),
    /// DER encoding or decoding failed.
    #[error(transparent)]
    Der(#[from] der::Error),
    /// A transcript value could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A rule broken by `field`'s value.
    pub(crate) fn field(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Field {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// What a step returns: its output for later steps, and its transcript record (the `details` of
/// its `step` event).
pub(crate) type StepResult = Result<(Output, Value), Error>;

/// A resolved input: an earlier step's output (known only at run time), or a file read and
/// parsed when the script was checked.
#[derive(Debug, Clone)]
pub enum Input<T> {
    /// The output of the step with this id.
    Step(String),
    /// Read from a file when the script was parsed.
    Loaded(Box<T>),
}

/// One step as written in the script (`action = "..."` picks the kind).
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub(crate) enum RawStep {
    GenerateKey(generate_key::Raw),
    SelfSignRoot(self_sign_root::Raw),
    SignIntermediate(sign_intermediate::Raw),
    MakeCsr(make_csr::Raw),
    SignCrossCertificate(sign_cross_certificate::Raw),
    CheckCrossSigned(check_cross_signed::Raw),
    SignCrl(sign_crl::Raw),
    SignOcspResponder(sign_ocsp_responder::Raw),
}

impl RawStep {
    /// The step's id.
    pub(crate) fn id(&self) -> &str {
        match self {
            RawStep::GenerateKey(s) => &s.id,
            RawStep::SelfSignRoot(s) => &s.id,
            RawStep::SignIntermediate(s) => &s.id,
            RawStep::MakeCsr(s) => &s.id,
            RawStep::SignCrossCertificate(s) => &s.id,
            RawStep::CheckCrossSigned(s) => &s.id,
            RawStep::SignCrl(s) => &s.id,
            RawStep::SignOcspResponder(s) => &s.id,
        }
    }

    /// The action name as written in scripts.
    pub(crate) fn action(&self) -> &'static str {
        match self {
            RawStep::GenerateKey(_) => generate_key::ACTION,
            RawStep::SelfSignRoot(_) => self_sign_root::ACTION,
            RawStep::SignIntermediate(_) => sign_intermediate::ACTION,
            RawStep::MakeCsr(_) => make_csr::ACTION,
            RawStep::SignCrossCertificate(_) => sign_cross_certificate::ACTION,
            RawStep::CheckCrossSigned(_) => check_cross_signed::ACTION,
            RawStep::SignCrl(_) => sign_crl::ACTION,
            RawStep::SignOcspResponder(_) => sign_ocsp_responder::ACTION,
        }
    }

    /// Whether the step uses the HSM.
    pub(crate) fn needs_hsm(&self) -> bool {
        !matches!(self, RawStep::CheckCrossSigned(_))
    }

    /// The files the step writes, with the field naming each.
    pub(crate) fn outputs(&self) -> Vec<(&'static str, &Path)> {
        match self {
            RawStep::GenerateKey(s) => vec![("public-key-out", &s.public_key_out)],
            RawStep::SelfSignRoot(s) => vec![("certificate-out", &s.certificate_out)],
            RawStep::SignIntermediate(s) => vec![("certificate-out", &s.certificate_out)],
            RawStep::MakeCsr(s) => vec![("csr-out", &s.csr_out)],
            RawStep::SignCrossCertificate(s) => vec![("certificate-out", &s.certificate_out)],
            RawStep::CheckCrossSigned(_) => vec![],
            RawStep::SignCrl(s) => vec![("crl-out", &s.crl_out)],
            RawStep::SignOcspResponder(s) => vec![("certificate-out", &s.certificate_out)],
        }
    }

    /// Checks the step against the steps before it and resolves it.
    pub(crate) fn parse(self, plan: &mut Plan<'_>) -> Result<Step, ScriptError> {
        Ok(match self {
            RawStep::GenerateKey(s) => {
                Step::GenerateKey(generate_key::GenerateKey::parse(s, plan)?)
            }
            RawStep::SelfSignRoot(s) => {
                Step::SelfSignRoot(self_sign_root::SelfSignRoot::parse(s, plan)?)
            }
            RawStep::SignIntermediate(s) => {
                Step::SignIntermediate(sign_intermediate::SignIntermediate::parse(s, plan)?)
            }
            RawStep::MakeCsr(s) => Step::MakeCsr(make_csr::MakeCsr::parse(s, plan)?),
            RawStep::SignCrossCertificate(s) => Step::SignCrossCertificate(
                sign_cross_certificate::SignCrossCertificate::parse(s, plan)?,
            ),
            RawStep::CheckCrossSigned(s) => {
                Step::CheckCrossSigned(check_cross_signed::CheckCrossSigned::parse(s, plan)?)
            }
            RawStep::SignCrl(s) => Step::SignCrl(sign_crl::SignCrl::parse(s, plan)?),
            RawStep::SignOcspResponder(s) => {
                Step::SignOcspResponder(sign_ocsp_responder::SignOcspResponder::parse(s, plan)?)
            }
        })
    }
}

/// One checked and resolved step.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Generate a key pair in the HSM.
    GenerateKey(generate_key::GenerateKey),
    /// Self-sign a root certificate.
    SelfSignRoot(self_sign_root::SelfSignRoot),
    /// Sign a subordinate CA certificate with a root key.
    SignIntermediate(sign_intermediate::SignIntermediate),
    /// Make a PKCS#10 request for an existing CA certificate's subject and key.
    MakeCsr(make_csr::MakeCsr),
    /// Sign a cross-certificate for another CA's existing certificate.
    SignCrossCertificate(sign_cross_certificate::SignCrossCertificate),
    /// Check a cross-signed certificate that came back from the cross-signer.
    CheckCrossSigned(check_cross_signed::CheckCrossSigned),
    /// Sign a CRL.
    SignCrl(sign_crl::SignCrl),
    /// Sign a delegated OCSP responder certificate with an issuing CA's key.
    SignOcspResponder(sign_ocsp_responder::SignOcspResponder),
}

impl Step {
    /// The step's id.
    pub fn id(&self) -> &str {
        match self {
            Step::GenerateKey(s) => &s.id,
            Step::SelfSignRoot(s) => &s.id,
            Step::SignIntermediate(s) => &s.id,
            Step::MakeCsr(s) => &s.id,
            Step::SignCrossCertificate(s) => &s.id,
            Step::CheckCrossSigned(s) => &s.id,
            Step::SignCrl(s) => &s.id,
            Step::SignOcspResponder(s) => &s.id,
        }
    }

    /// The action name as written in scripts.
    pub fn action(&self) -> &'static str {
        match self {
            Step::GenerateKey(_) => generate_key::ACTION,
            Step::SelfSignRoot(_) => self_sign_root::ACTION,
            Step::SignIntermediate(_) => sign_intermediate::ACTION,
            Step::MakeCsr(_) => make_csr::ACTION,
            Step::SignCrossCertificate(_) => sign_cross_certificate::ACTION,
            Step::CheckCrossSigned(_) => check_cross_signed::ACTION,
            Step::SignCrl(_) => sign_crl::ACTION,
            Step::SignOcspResponder(_) => sign_ocsp_responder::ACTION,
        }
    }

    /// Whether the step makes a signature with a CA key (and so asks the operator first).
    pub fn signs(&self) -> bool {
        !matches!(self, Step::GenerateKey(_) | Step::CheckCrossSigned(_))
    }

    /// What later steps may refer to this step as.
    pub(crate) fn produces(&self) -> Produces {
        match self {
            Step::GenerateKey(_) => Produces::Key,
            Step::MakeCsr(_) => Produces::Csr,
            Step::CheckCrossSigned(_) | Step::SignCrl(_) => Produces::Nothing,
            Step::SelfSignRoot(_)
            | Step::SignIntermediate(_)
            | Step::SignCrossCertificate(_)
            | Step::SignOcspResponder(_) => Produces::Certificate,
        }
    }

    /// The type of the key the step generates, if it generates one.
    pub(crate) fn key_type(&self) -> Option<KeyType> {
        match self {
            Step::GenerateKey(s) => Some(s.key_type),
            _ => None,
        }
    }

    /// The label of the key the step will generate (pre-flight checks it is free on the token).
    pub(crate) fn new_label(&self) -> Option<&str> {
        match self {
            Step::GenerateKey(s) => Some(&s.label),
            _ => None,
        }
    }

    /// The keys the step signs with, by field (pre-flight looks up those given by URI).
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        match self {
            Step::GenerateKey(_) | Step::CheckCrossSigned(_) => vec![],
            Step::SelfSignRoot(s) => s.key_refs(),
            Step::SignIntermediate(s) => s.key_refs(),
            Step::MakeCsr(s) => s.key_refs(),
            Step::SignCrossCertificate(s) => s.key_refs(),
            Step::SignCrl(s) => s.key_refs(),
            Step::SignOcspResponder(s) => s.key_refs(),
        }
    }

    /// Runs the step: HSM work, checks, outputs; returns its output and transcript record.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        match self {
            Step::GenerateKey(s) => s.run(ctx),
            Step::SelfSignRoot(s) => s.run(ctx),
            Step::SignIntermediate(s) => s.run(ctx),
            Step::MakeCsr(s) => s.run(ctx),
            Step::SignCrossCertificate(s) => s.run(ctx),
            Step::CheckCrossSigned(s) => s.run(ctx),
            Step::SignCrl(s) => s.run(ctx),
            Step::SignOcspResponder(s) => s.run(ctx),
        }
    }
}

/// What a step produced, for later steps to refer to.
#[derive(Clone)]
pub(crate) enum Output {
    Key(KeyHandle),
    Certificate(Box<Certificate>),
    Csr(Box<CertReq>),
    Nothing,
}

/// An issuer ready to sign with, from [`Ctx::issuer`].
struct Issuer<'a> {
    hsm: &'a Hsm,
    key: KeyHandle,
    certificate: Certificate,
    signer: SignerInfo,
}

/// State shared by the steps of one run.
pub(crate) struct Ctx<'a> {
    pub(crate) hsm: Option<&'a Hsm>,
    pub(crate) started_at: SystemTime,
    pub(crate) outputs: HashMap<String, Output>,
    pub(crate) uri_keys: HashMap<String, KeyHandle>,
    pub(crate) written: Vec<(PathBuf, String)>,
}

impl<'a> Ctx<'a> {
    fn hsm(&self) -> Result<&'a Hsm, Error> {
        self.hsm.ok_or(Error::NoHsm)
    }

    fn key(&self, key: &KeyRef) -> Result<KeyHandle, Error> {
        match key {
            KeyRef::Step(s) => match self.outputs.get(s) {
                Some(Output::Key(k)) => Ok(k.clone()),
                _ => Err(Error::NoOutput {
                    step: s.clone(),
                    what: "key",
                }),
            },
            KeyRef::Uri(u) => self
                .uri_keys
                .get(u)
                .cloned()
                .ok_or_else(|| Error::KeyNotFound(u.clone())),
        }
    }

    fn certificate(&self, input: &Input<Certificate>) -> Result<Certificate, Error> {
        match input {
            Input::Step(s) => match self.outputs.get(s) {
                Some(Output::Certificate(c)) => Ok((**c).clone()),
                _ => Err(Error::NoOutput {
                    step: s.clone(),
                    what: "certificate",
                }),
            },
            Input::Loaded(c) => Ok((**c).clone()),
        }
    }

    /// What a step that signs under an issuer certificate needs, in the order every such step
    /// checks it: the HSM, the issuer key, the issuer certificate (which must certify that key)
    /// and the signer for the step's algorithm (the key type's default when the script gives
    /// none).
    fn issuer(
        &self,
        key: &KeyRef,
        certificate: &Input<Certificate>,
        alg: Option<SignatureAlgorithm>,
    ) -> Result<Issuer<'a>, Error> {
        let hsm = self.hsm()?;
        let key = self.key(key)?;
        let certificate = self.certificate(certificate)?;
        check_issuer_key(&key, &certificate)?;
        let signer = signer(&key, alg)?;
        Ok(Issuer {
            hsm,
            key,
            certificate,
            signer,
        })
    }

    fn csr(&self, input: &Input<CertReq>) -> Result<CertReq, Error> {
        match input {
            Input::Step(s) => match self.outputs.get(s) {
                Some(Output::Csr(c)) => Ok((**c).clone()),
                _ => Err(Error::NoOutput {
                    step: s.clone(),
                    what: "CSR",
                }),
            },
            Input::Loaded(c) => Ok((**c).clone()),
        }
    }

    /// A public key (`public-key`): a generate-key step's key (also returned, for the record),
    /// or the one read from a file.
    fn public_key(
        &self,
        input: &Input<SubjectPublicKeyInfoOwned>,
    ) -> Result<(SubjectPublicKeyInfoOwned, Option<KeyHandle>), Error> {
        match input {
            Input::Step(p) => match self.outputs.get(p) {
                Some(Output::Key(k)) => Ok((k.spki.clone(), Some(k.clone()))),
                _ => Err(Error::field(
                    "public-key",
                    format!("step {p:?} produced no key"),
                )),
            },
            Input::Loaded(k) => Ok(((**k).clone(), None)),
        }
    }

    /// Writes an output file (`path` already resolved against the ceremony directory):
    /// create-new (never overwrites), then fsync. Returns its transcript record.
    fn write(&mut self, path: &Path, contents: &str) -> Result<Value, Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Output(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                Error::Output(format!(
                    "cannot create {} (outputs are never overwritten): {e}",
                    path.display()
                ))
            })?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::Output(format!("cannot write {}: {e}", path.display())))?;
        let sha = hex::encode(Sha256::digest(contents.as_bytes()));
        self.written.push((path.to_path_buf(), sha.clone()));
        Ok(json!({"path": path.display().to_string(), "file_sha256": sha}))
    }

    /// Writes a signed certificate (PEM, create-new) and returns it with its transcript details:
    /// the certificate's facts, the signing key under `key_field`, and the output file.
    fn finish_certificate(
        &mut self,
        signed: x509::Signed<Certificate>,
        out: &Path,
        key_field: &str,
        key_details: Value,
    ) -> StepResult {
        let pem = x509::to_pem("CERTIFICATE", &signed.der)?;
        let file = self.write(out, &pem)?;
        let mut details = cert_json(&signed);
        details[key_field] = key_details;
        details["certificate_out"] = file;
        Ok((Output::Certificate(Box::new(signed.value)), details))
    }

    /// A serial number for a CA certificate: 0x01 followed by 128 bits from the HSM's RNG, so it
    /// is positive, non-zero, 17 octets (at most 20, RFC 5280 4.1.2.2) with at least 64 bits of
    /// CSPRNG output (BR 7.1).
    fn serial(&self) -> Result<SerialNumber, Error> {
        let mut bytes = vec![0x01];
        bytes.extend(self.hsm()?.random(16)?);
        Ok(SerialNumber::new(&bytes)?)
    }
}

/// The signer for `key`: the script's algorithm, or the key type's default; the key must be able
/// to sign with it (BR 7.1.3.2; checked here for keys given by URI, whose type the script does
/// not know).
fn signer(key: &KeyHandle, alg: Option<SignatureAlgorithm>) -> Result<SignerInfo, Error> {
    let alg = alg.unwrap_or_else(|| key.key_type.default_signature_algorithm());
    if !key.key_type.allows(alg) {
        return Err(Error::field(
            "signature-algorithm",
            format!("a {} key cannot sign with {alg} (BR 7.1.3.2)", key.key_type),
        ));
    }
    Ok(SignerInfo {
        spki: key.spki.clone(),
        alg,
    })
}

/// The issuer key must be the key certified by the issuer certificate.
fn check_issuer_key(key: &KeyHandle, cert: &Certificate) -> Result<(), Error> {
    if cert.tbs_certificate().subject_public_key_info() != &key.spki {
        return Err(Error::field(
            "issuer-key",
            format!(
                "key {:?} is not the key of the issuer certificate {}",
                key.label,
                cert.tbs_certificate().subject()
            ),
        ));
    }
    Ok(())
}

/// The issuer's subjectKeyIdentifier, for the authorityKeyIdentifier of what it signs
/// (RFC 5280 4.2.1.1). `who` names the issuer in the error.
fn issuer_ski(issuer: &Certificate, who: &str) -> Result<Vec<u8>, Error> {
    x509::subject_key_id(issuer)?.ok_or_else(|| {
        Error::field(
            "issuer-certificate",
            format!("{who} has no subjectKeyIdentifier"),
        )
    })
}

/// A signing step's validity must lie within its issuer's (RFC 5280 6.1.3).
fn check_nested(validity: &x509_cert::time::Validity, issuer: &Certificate) -> Result<(), Error> {
    let iv = issuer.tbs_certificate().validity();
    if validity.not_before.to_system_time() < iv.not_before.to_system_time()
        || validity.not_after.to_system_time() > iv.not_after.to_system_time()
    {
        return Err(Error::field(
            "validity-days",
            "the validity period must lie within the issuer's (RFC 5280 6.1.3)",
        ));
    }
    Ok(())
}

/// A key's transcript record.
fn key_json(key: &KeyHandle, token: &str) -> Result<Value, Error> {
    Ok(json!({
        "label": key.label,
        "id": hex::encode(&key.id),
        "uri": key.uri(token).to_string(),
        "key_type": key.key_type.to_string(),
        "spki_sha256": x509::spki_sha256(&key.spki)?,
    }))
}

/// A signed certificate's transcript record.
fn cert_json(cert: &x509::Signed<Certificate>) -> Value {
    let tbs = cert.value.tbs_certificate();
    json!({
        "serial": hex::encode(tbs.serial_number().as_bytes()),
        "subject": tbs.subject().to_string(),
        "issuer": tbs.issuer().to_string(),
        "not_before": rfc3339(tbs.validity().not_before.to_system_time()),
        "not_after": rfc3339(tbs.validity().not_after.to_system_time()),
        "spki_sha256": x509::spki_sha256(tbs.subject_public_key_info()).unwrap_or_default(),
        "signature_algorithm": SignatureAlgorithm::from_algorithm_identifier(cert.value.signature_algorithm())
            .map(|a| a.to_string()).unwrap_or_default(),
        "certificate_sha256": cert.sha256,
        "checks": [
            "TBS linted before signing: no errors",
            "signed TBS identical to the linted TBS",
            "signature verified in software with the issuer's public key",
        ],
    })
}

/// A certificate's extKeyUsage purposes, if it has the extension.
fn ekus_of(cert: &Certificate) -> Result<Option<Vec<const_oid::ObjectIdentifier>>, Error> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()?
        .map(|(_, e)| e.0))
}

/// A certificate's basicConstraints pathLenConstraint, if it has the extension.
fn path_len_of(cert: &Certificate) -> Result<Option<Option<u8>>, Error> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::BasicConstraints>()?
        .map(|(_, b)| b.path_len_constraint))
}
