//! Running each step: HSM work, checks, outputs, and the transcript entry's details.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use const_oid::db::rfc5280::{ID_CE_EXT_KEY_USAGE, ID_KP_SERVER_AUTH};
use der::Encode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;

use super::script::{self, InputRef, KeyRef, Step, resolve};
use crate::alg::SignatureAlgorithm;
use crate::hsm::{Hsm, KeyHandle};
use crate::lint::CertKind;
use crate::time::rfc3339;
use crate::x509::{self, CaProfile, RootProfile, SignerInfo};

/// What a step produced, for later steps to refer to.
#[derive(Clone)]
pub(crate) enum Output {
    Key(KeyHandle),
    Certificate(Box<Certificate>),
    Csr(Box<CertReq>),
    Nothing,
}

/// State shared by the steps of one run.
pub(crate) struct Ctx<'a> {
    pub(crate) hsm: Option<&'a Hsm>,
    pub(crate) dir: PathBuf,
    pub(crate) started_at: SystemTime,
    pub(crate) outputs: HashMap<String, Output>,
    pub(crate) uri_keys: HashMap<String, KeyHandle>,
    pub(crate) written: Vec<(PathBuf, String)>,
}

type StepResult = Result<(Output, Value), String>;

impl<'a> Ctx<'a> {
    fn hsm(&self) -> Result<&'a Hsm, String> {
        self.hsm
            .ok_or_else(|| "this step needs the HSM".to_string())
    }

    fn key(&self, key: &KeyRef) -> Result<KeyHandle, String> {
        match key {
            KeyRef::Step(s) => match self.outputs.get(s) {
                Some(Output::Key(k)) => Ok(k.clone()),
                _ => Err(format!("step {s:?} produced no key")),
            },
            KeyRef::Uri(u) => self
                .uri_keys
                .get(u)
                .cloned()
                .ok_or_else(|| format!("key {u} was not found")),
        }
    }

    fn certificate(&self, input: &InputRef) -> Result<Certificate, String> {
        match input {
            InputRef::Step(s) => match self.outputs.get(s) {
                Some(Output::Certificate(c)) => Ok((**c).clone()),
                _ => Err(format!("step {s:?} produced no certificate")),
            },
            InputRef::File(f) => {
                x509::read_pem::<Certificate>(&resolve(&self.dir, f), "CERTIFICATE")
                    .map(|(c, _)| c)
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn csr(&self, input: &InputRef) -> Result<CertReq, String> {
        match input {
            InputRef::Step(s) => match self.outputs.get(s) {
                Some(Output::Csr(c)) => Ok((**c).clone()),
                _ => Err(format!("step {s:?} produced no CSR")),
            },
            InputRef::File(f) => {
                x509::read_pem::<CertReq>(&resolve(&self.dir, f), "CERTIFICATE REQUEST")
                    .map(|(c, _)| c)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Writes an output file: create-new (never overwrites), then fsync. Returns its SHA-256.
    fn write(&mut self, path: &Path, contents: &str) -> Result<Value, String> {
        let path = resolve(&self.dir, path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot create {} (outputs are never overwritten): {e}",
                    path.display()
                )
            })?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let sha = hex::encode(Sha256::digest(contents.as_bytes()));
        self.written.push((path.clone(), sha.clone()));
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
        let pem = x509::to_pem("CERTIFICATE", &signed.der).map_err(|e| e.to_string())?;
        let file = self.write(out, &pem)?;
        let mut details = cert_json(&signed);
        details[key_field] = key_details;
        details["certificate_out"] = file;
        Ok((Output::Certificate(Box::new(signed.value)), details))
    }

    /// A serial number for a CA certificate: 0x01 followed by 128 bits from the HSM's RNG, so it
    /// is positive, non-zero, 17 octets (at most 20, RFC 5280 4.1.2.2) with at least 64 bits of
    /// CSPRNG output (BR 7.1).
    fn serial(&self) -> Result<SerialNumber, String> {
        let mut bytes = vec![0x01];
        bytes.extend(self.hsm()?.random(16).map_err(|e| e.to_string())?);
        SerialNumber::new(&bytes).map_err(|e| e.to_string())
    }

    fn time(&self, value: &Option<String>) -> Result<SystemTime, String> {
        value
            .as_deref()
            .map(crate::time::parse_time)
            .unwrap_or(Ok(self.started_at))
    }
}

fn signer(key: &KeyHandle, alg: &Option<String>) -> Result<SignerInfo, String> {
    let alg = match alg {
        None => key.key_type.default_signature_algorithm(),
        Some(name) => name.parse::<SignatureAlgorithm>()?,
    };
    if !key.key_type.allows(alg) {
        return Err(format!(
            "signature-algorithm: a {} key cannot sign with {alg} (BR 7.1.3.2)",
            key.key_type
        ));
    }
    Ok(SignerInfo {
        spki: key.spki.clone(),
        alg,
    })
}

/// The issuer key must be the key certified by the issuer certificate.
fn check_issuer_key(key: &KeyHandle, cert: &Certificate) -> Result<(), String> {
    if cert.tbs_certificate().subject_public_key_info() != &key.spki {
        return Err(format!(
            "issuer-key: key {:?} is not the key of the issuer certificate {}",
            key.label,
            cert.tbs_certificate().subject()
        ));
    }
    Ok(())
}

fn key_json(key: &KeyHandle, token: &str) -> Result<Value, String> {
    Ok(json!({
        "label": key.label,
        "id": hex::encode(&key.id),
        "uri": key.uri(token).to_string(),
        "key_type": key.key_type.to_string(),
        "spki_sha256": x509::spki_sha256(&key.spki).map_err(|e| e.to_string())?,
    }))
}

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

/// Runs one step.
pub(crate) fn execute(step: &Step, ctx: &mut Ctx<'_>) -> StepResult {
    match step {
        Step::GenerateKey(s) => {
            let hsm = ctx.hsm()?;
            let key_type: crate::alg::KeyType = s.key_type.parse()?;
            let generated = hsm
                .generate_key(&s.label, key_type)
                .map_err(|e| e.to_string())?;
            let token = hsm.description().label.clone();
            let pem = x509::to_pem(
                "PUBLIC KEY",
                &generated.key.spki.to_der().map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let file = ctx.write(&s.public_key_out, &pem)?;
            let mut details = key_json(&generated.key, &token)?;
            details["attributes_read_back"] =
                serde_json::to_value(&generated.attributes).map_err(|e| e.to_string())?;
            details["checks"] = json!([
                "private key attributes read back: token, private, sensitive, always-sensitive, never-extractable, local, sign only (no decrypt, unwrap or derive)",
                "public key passed the key-quality checks",
                "self-test signature over a fresh challenge verified in software",
            ]);
            details["self_test_challenge_sha256"] = json!(generated.self_test_challenge_sha256);
            details["public_key_out"] = file;
            Ok((Output::Key(generated.key), details))
        }
        Step::SelfSignRoot(s) => {
            let hsm = ctx.hsm()?;
            let key = ctx.key(&s.key)?;
            let signer = signer(&key, &s.signature_algorithm)?;
            let subject = s.subject.to_name().map_err(|e| format!("subject: {e}"))?;
            let names = s
                .key_usage
                .clone()
                .unwrap_or_else(|| vec!["keyCertSign".into(), "cRLSign".into()]);
            let profile = RootProfile {
                subject,
                key_usage: key_usage(&names)?,
                ski: x509::key_identifier(&key.spki),
            };
            let validity = x509::validity(ctx.time(&s.not_before)?, s.validity_days)
                .map_err(|e| e.to_string())?;
            let signed = x509::sign_certificate(
                profile,
                ctx.serial()?,
                validity,
                key.spki.clone(),
                CertKind::Root,
                &signer,
                |tbs| hsm.sign(&key, signer.alg, tbs),
            )
            .map_err(|e| e.to_string())?;
            let key_details = key_json(&key, &hsm.description().label)?;
            ctx.finish_certificate(signed, &s.certificate_out, "key", key_details)
        }
        Step::SignIntermediate(s) => {
            let hsm = ctx.hsm()?;
            let key = ctx.key(&s.issuer_key)?;
            let issuer = ctx.certificate(&s.issuer_certificate)?;
            check_issuer_key(&key, &issuer)?;
            let signer = signer(&key, &s.signature_algorithm)?;
            let subject_spki = match &s.public_key {
                InputRef::Step(p) => match ctx.outputs.get(p) {
                    Some(Output::Key(k)) => k.spki.clone(),
                    _ => return Err(format!("public-key: step {p:?} produced no key")),
                },
                InputRef::File(f) => script::read_public_key(&resolve(&ctx.dir, f))?,
            };
            crate::keycheck::check_public_key(&subject_spki, &crate::alg::KeyType::ALL)
                .map_err(|e| format!("public-key: {e}"))?;
            let ku_names = s.key_usage.clone().unwrap_or_else(|| {
                vec![
                    "digitalSignature".into(),
                    "keyCertSign".into(),
                    "cRLSign".into(),
                ]
            });
            let profile = CaProfile {
                issuer: issuer.tbs_certificate().subject().clone(),
                subject: s.subject.to_name().map_err(|e| format!("subject: {e}"))?,
                key_usage: key_usage(&ku_names)?,
                ekus: script::parse_ca_ekus(
                    s.extended_key_usage
                        .as_deref()
                        .unwrap_or(&["serverAuth".into()]),
                )?,
                path_len: Some(s.path_length.unwrap_or(0)),
                ski: x509::key_identifier(&subject_spki),
                aki: x509::subject_key_id(&issuer)
                    .map_err(|e| e.to_string())?
                    .ok_or("issuer-certificate: the issuer has no subjectKeyIdentifier")?,
                ca_issuers_url: s.ca_issuers_url.clone(),
                policies: script::parse_policies(
                    s.policies
                        .as_deref()
                        .unwrap_or(&[script::RESERVED_POLICIES[0].into()]),
                )?,
                crl_url: s.crl_url.clone(),
            };
            let validity = x509::validity(ctx.time(&s.not_before)?, s.validity_days)
                .map_err(|e| e.to_string())?;
            check_nested(&validity, &issuer)?;
            let signed = x509::sign_certificate(
                profile,
                ctx.serial()?,
                validity,
                subject_spki,
                CertKind::SubordinateCa,
                &signer,
                |tbs| hsm.sign(&key, signer.alg, tbs),
            )
            .map_err(|e| e.to_string())?;
            let key_details = key_json(&key, &hsm.description().label)?;
            ctx.finish_certificate(signed, &s.certificate_out, "issuer_key", key_details)
        }
        Step::MakeCsr(s) => {
            let hsm = ctx.hsm()?;
            let key = ctx.key(&s.key)?;
            let cert = ctx.certificate(&s.subject_from)?;
            if cert.tbs_certificate().subject_public_key_info() != &key.spki {
                return Err(format!(
                    "key: {:?} is not the key of the certificate {}; the request would not match it",
                    key.label,
                    cert.tbs_certificate().subject()
                ));
            }
            let signer = signer(&key, &s.signature_algorithm)?;
            let subject = cert.tbs_certificate().subject();
            let signed = x509::sign_csr(subject, &signer, |info| hsm.sign(&key, signer.alg, info))
                .map_err(|e| e.to_string())?;
            let file = ctx.write(
                &s.csr_out,
                &x509::to_pem("CERTIFICATE REQUEST", &signed.der).map_err(|e| e.to_string())?,
            )?;
            let details = json!({
                "subject": subject.to_string(),
                "subject_der_sha256": hex::encode(Sha256::digest(subject.to_der().map_err(|e| e.to_string())?)),
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
        Step::SignCrossCertificate(s) => sign_cross(s, ctx),
        Step::CheckCrossSigned(s) => {
            let ours = ctx.certificate(&s.intermediate)?;
            let cross = ctx.certificate(&s.cross_signed)?;
            let root = ctx.certificate(&s.cross_signer_root)?;
            let (checks, differences) = compare_cross(&ours, &cross, &root)?;
            let details = json!({
                "intermediate": ours.tbs_certificate().subject().to_string(),
                "cross_signed_serial": hex::encode(cross.tbs_certificate().serial_number().as_bytes()),
                "cross_signer": root.tbs_certificate().subject().to_string(),
                "checks": checks,
                "differences": differences,
            });
            if !differences.is_empty() {
                return Err(format!(
                    "the cross-signed certificate does not match: {}\n{}",
                    differences.join("; "),
                    super::transcript::render_line(
                        &json!({"event": "check-cross-signed", "report": details}).to_string()
                    )
                ));
            }
            Ok((Output::Nothing, details))
        }
        Step::SignCrl(s) => sign_crl(s, ctx),
        Step::SignOcspResponder(s) => sign_ocsp_responder(s, ctx),
    }
}

fn key_usage(names: &[String]) -> Result<KeyUsage, String> {
    let mut digital_signature = false;
    for n in names {
        match n.as_str() {
            "digitalSignature" => digital_signature = true,
            "keyCertSign" | "cRLSign" => {}
            other => {
                return Err(format!(
                    "key-usage: {other:?} is not allowed for a CA (BR 7.1.2.10.7)"
                ));
            }
        }
    }
    Ok(x509::ca_key_usage(digital_signature))
}

fn check_nested(validity: &x509_cert::time::Validity, issuer: &Certificate) -> Result<(), String> {
    let iv = issuer.tbs_certificate().validity();
    if validity.not_before.to_system_time() < iv.not_before.to_system_time()
        || validity.not_after.to_system_time() > iv.not_after.to_system_time()
    {
        return Err(
            "validity-days: the validity period must lie within the issuer's (RFC 5280 6.1.3)"
                .into(),
        );
    }
    Ok(())
}

/// The key identifiers a subjectKeyIdentifier may have been derived with: RFC 5280 4.2.1.2
/// method 1 (SHA-1 of the subjectPublicKey) and RFC 7093 section 2 method 1 (leftmost 160 bits of
/// SHA-256).
fn ski_matches(ski: &[u8], spki: &spki::SubjectPublicKeyInfoOwned) -> bool {
    let bits = spki.subject_public_key.raw_bytes();
    ski == sha1::Sha1::digest(bits).as_slice() || ski == &Sha256::digest(bits)[..20]
}

fn ekus_of(cert: &Certificate) -> Result<Option<Vec<const_oid::ObjectIdentifier>>, String> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| e.to_string())?
        .map(|(_, e)| e.0))
}

fn path_len_of(cert: &Certificate) -> Result<Option<Option<u8>>, String> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .map_err(|e| e.to_string())?
        .map(|(_, b)| b.path_len_constraint))
}

fn sign_cross(s: &script::SignCrossCertificate, ctx: &mut Ctx<'_>) -> StepResult {
    let hsm = ctx.hsm()?;
    let key = ctx.key(&s.issuer_key)?;
    let issuer = ctx.certificate(&s.issuer_certificate)?;
    check_issuer_key(&key, &issuer)?;
    let signer = signer(&key, &s.signature_algorithm)?;
    let existing = ctx.certificate(&s.existing_certificate)?;
    let tbs = existing.tbs_certificate();
    let spki = tbs.subject_public_key_info().clone();
    let mut checks = Vec::new();
    // BR 7.1.2.2: same subject name and SPKI as the existing certificate; the CSR proves
    // possession of the key.
    if let Some(csr_ref) = &s.csr {
        let csr = ctx.csr(csr_ref)?;
        crate::verify::verify_csr(&csr)
            .map_err(|e| format!("csr: proof of possession failed: {e}"))?;
        if csr.info.subject.to_der().map_err(|e| e.to_string())?
            != tbs.subject().to_der().map_err(|e| e.to_string())?
        {
            return Err("csr: the request's subject is not byte-for-byte the existing certificate's subject (BR 7.1.2.2.2)".into());
        }
        if csr.info.public_key != spki {
            return Err(
                "csr: the request's public key is not the existing certificate's (BR 7.1.2.2)"
                    .into(),
            );
        }
        checks.push("CSR signature (proof of possession) verified; subject bytes and public key equal the existing certificate's");
    }
    let ski = x509::subject_key_id(&existing)
        .map_err(|e| e.to_string())?
        .ok_or("existing-certificate: has no subjectKeyIdentifier to copy (BR 7.1.2.11.4)")?;
    if !ski_matches(&ski, &spki) {
        return Err("existing-certificate: its subjectKeyIdentifier is not derived from its public key (RFC 5280 4.2.1.2, RFC 7093)".into());
    }
    checks.push("subjectKeyIdentifier derives from the existing certificate's public key");
    // BR 7.1.2.2.5: a cross-certificate for a CA that is not ours is EKU-restricted; it carries
    // the same purposes as the existing certificate.
    let ekus = ekus_of(&existing)?.ok_or(
        "existing-certificate: has no extKeyUsage; a cross-certificate for a third-party CA must be EKU-restricted (BR 7.1.2.2.5)",
    )?;
    if !ekus.contains(&ID_KP_SERVER_AUTH) {
        return Err("existing-certificate: its extKeyUsage lacks serverAuth (BR 7.1.2.2.5)".into());
    }
    let path_len =
        path_len_of(&existing)?.ok_or("existing-certificate: has no basicConstraints")?;
    let ku = existing
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| e.to_string())?
        .map(|(_, k)| k)
        .ok_or("existing-certificate: has no keyUsage")?;
    // BR 7.1.2.2.1: notBefore no earlier than the earlier of (signing time − 1 day) and the
    // existing certificate's notBefore, and no later than the signing time.
    let signing_time = ctx.started_at;
    let not_before = ctx.time(&s.not_before)?;
    let floor = std::cmp::min(
        signing_time - Duration::from_secs(86_400),
        tbs.validity().not_before.to_system_time(),
    );
    if not_before < floor || not_before > signing_time {
        return Err(format!(
            "not-before: {} must lie between {} and the signing time {} (BR 7.1.2.2.1)",
            rfc3339(not_before),
            rfc3339(floor),
            rfc3339(signing_time)
        ));
    }
    let validity = x509::validity(not_before, s.validity_days).map_err(|e| e.to_string())?;
    check_nested(&validity, &issuer)?;
    let profile = CaProfile {
        issuer: issuer.tbs_certificate().subject().clone(),
        subject: tbs.subject().clone(),
        key_usage: ku,
        ekus,
        path_len,
        ski,
        aki: x509::subject_key_id(&issuer)
            .map_err(|e| e.to_string())?
            .ok_or("issuer-certificate: the cross-signer has no subjectKeyIdentifier")?,
        ca_issuers_url: s.ca_issuers_url.clone(),
        policies: script::parse_policies(
            s.policies
                .as_deref()
                .unwrap_or(&[script::RESERVED_POLICIES[0].into()]),
        )?,
        crl_url: s.crl_url.clone(),
    };
    let signed = x509::sign_certificate(
        profile,
        ctx.serial()?,
        validity,
        spki,
        CertKind::CrossCertificate,
        &signer,
        |t| hsm.sign(&key, signer.alg, t),
    )
    .map_err(|e| e.to_string())?;
    let key_details = key_json(&key, &hsm.description().label)?;
    let (output, mut details) =
        ctx.finish_certificate(signed, &s.certificate_out, "issuer_key", key_details)?;
    details["cross_checks"] = json!(checks);
    Ok((output, details))
}

/// Compares our intermediate with the cross-signed certificate that came back, and checks the
/// latter chains to the cross-signer's root. Returns the checks made and every difference.
fn compare_cross(
    ours: &Certificate,
    cross: &Certificate,
    root: &Certificate,
) -> Result<(Vec<String>, Vec<String>), String> {
    let der = |n: &x509_cert::name::Name| n.to_der().map_err(|e| e.to_string());
    let (o, c, r) = (
        ours.tbs_certificate(),
        cross.tbs_certificate(),
        root.tbs_certificate(),
    );
    let mut checks = Vec::new();
    let mut diffs = Vec::new();
    let mut check = |name: &str, ok: bool, diff: String| {
        checks.push(format!(
            "{name}: {}",
            if ok { "equal/ok" } else { "DIFFERENT" }
        ));
        if !ok {
            diffs.push(diff);
        }
    };
    check(
        "subject bytes",
        der(o.subject())? == der(c.subject())?,
        format!(
            "subject: ours {} / cross-signed {}",
            o.subject(),
            c.subject()
        ),
    );
    check(
        "subjectPublicKeyInfo",
        o.subject_public_key_info() == c.subject_public_key_info(),
        "subjectPublicKeyInfo differs: the cross-signed certificate certifies another key".into(),
    );
    let (os, cs) = (
        x509::subject_key_id(ours).map_err(|e| e.to_string())?,
        x509::subject_key_id(cross).map_err(|e| e.to_string())?,
    );
    check(
        "subjectKeyIdentifier",
        os == cs,
        format!(
            "subjectKeyIdentifier: ours {:?} / cross-signed {:?}",
            os.map(hex::encode),
            cs.map(hex::encode)
        ),
    );
    let (oe, ce) = (ekus_of(ours)?, ekus_of(cross)?);
    check(
        "extKeyUsage",
        oe == ce,
        format!(
            "extKeyUsage: ours {oe:?} / cross-signed {ce:?} (BR 7.1.2.2.5: a third-party cross-sign must be EKU-restricted)"
        ),
    );
    let has_eku = c
        .extensions()
        .into_iter()
        .flatten()
        .any(|e| e.extn_id == ID_CE_EXT_KEY_USAGE);
    check(
        "extKeyUsage present in the cross-signed certificate",
        has_eku,
        "extKeyUsage missing from the cross-signed certificate (BR 7.1.2.2.5; the 2020-09-30 R3 cross-sign had to be re-issued for this)".into(),
    );
    let (op, cp) = (path_len_of(ours)?, path_len_of(cross)?);
    check(
        "pathLenConstraint",
        op == cp,
        format!("pathLenConstraint: ours {op:?} / cross-signed {cp:?}"),
    );
    check(
        "issuer name equals the cross-signer root's subject",
        der(c.issuer())? == der(r.subject())?,
        format!(
            "issuer {} is not the cross-signer root {}",
            c.issuer(),
            r.subject()
        ),
    );
    let aki = cross
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .map_err(|e| e.to_string())?
        .and_then(|(_, a)| a.key_identifier.map(|k| k.as_bytes().to_vec()));
    let root_ski = x509::subject_key_id(root).map_err(|e| e.to_string())?;
    check(
        "authorityKeyIdentifier equals the cross-signer root's subjectKeyIdentifier",
        aki.is_some() && aki == root_ski,
        "authorityKeyIdentifier does not match the cross-signer root's subjectKeyIdentifier".into(),
    );
    let sig = crate::verify::verify_certificate(cross, r.subject_public_key_info());
    check(
        "signature verifies under the cross-signer root's key",
        sig.is_ok(),
        format!(
            "signature: {}",
            sig.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    );
    let (cv, rv) = (c.validity(), r.validity());
    check(
        "validity within the cross-signer root's",
        cv.not_before.to_system_time() >= rv.not_before.to_system_time()
            && cv.not_after.to_system_time() <= rv.not_after.to_system_time(),
        "validity: the cross-signed certificate outlives or predates the cross-signer root".into(),
    );
    Ok((checks, diffs))
}

fn sign_crl(s: &script::SignCrl, ctx: &mut Ctx<'_>) -> StepResult {
    let hsm = ctx.hsm()?;
    let key = ctx.key(&s.issuer_key)?;
    let issuer = ctx.certificate(&s.issuer_certificate)?;
    check_issuer_key(&key, &issuer)?;
    let signer = signer(&key, &None)?;
    let this_update = ctx.time(&s.this_update)?;
    let next_update = this_update + Duration::from_secs(u64::from(s.next_update_days) * 86_400);
    let issuer_name = issuer
        .tbs_certificate()
        .subject()
        .to_der()
        .map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    let mut listed = Vec::new();
    for (n, entry) in s.revoked.iter().enumerate() {
        let field = format!("revoked[{n}]");
        let cert = ctx.certificate(&entry.certificate)?;
        let tbs = cert.tbs_certificate();
        if tbs.issuer().to_der().map_err(|e| e.to_string())? != issuer_name {
            return Err(format!(
                "{field}.certificate: {} was not issued by {}",
                tbs.subject(),
                issuer.tbs_certificate().subject()
            ));
        }
        if crate::verify::verify_certificate(&cert, &key.spki).is_err() {
            return Err(format!(
                "{field}.certificate: {} is not signed by the issuer key",
                tbs.subject()
            ));
        }
        let revoked_at = ctx.time(&entry.revoked_at)?;
        if revoked_at > this_update {
            return Err(format!(
                "{field}.revoked-at: after thisUpdate; a CRL cannot list a future revocation"
            ));
        }
        if revoked_at < tbs.validity().not_before.to_system_time() {
            return Err(format!(
                "{field}.revoked-at: before the certificate's notBefore"
            ));
        }
        let serial = tbs.serial_number().clone();
        if entries
            .iter()
            .any(|e: &x509::Revocation| e.serial == serial)
        {
            return Err(format!(
                "{field}: serial {} is listed twice",
                hex::encode(serial.as_bytes())
            ));
        }
        let reason = script::parse_ca_crl_reason(&entry.reason)
            .map_err(|e| format!("{field}.reason: {e}"))?;
        listed.push(json!({
            "serial": hex::encode(serial.as_bytes()),
            "subject": tbs.subject().to_string(),
            "revoked_at": rfc3339(revoked_at),
            "reason": entry.reason,
        }));
        entries.push(x509::Revocation {
            serial,
            revoked_at,
            reason: Some(reason),
        });
    }
    let number = s.crl_number.to_be_bytes();
    let first = number
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(number.len() - 1);
    let contents = x509::CrlContents {
        number: &number[first..],
        this_update,
        next_update,
        revoked: &entries,
        kind: crate::lint::CrlKind::CaCertificates,
        shard_url: None,
    };
    let signed = x509::sign_crl(&issuer, &contents, &signer, |t| {
        hsm.sign(&key, signer.alg, t)
    })
    .map_err(|e| e.to_string())?;
    let file = ctx.write(
        &s.crl_out,
        &x509::to_pem("X509 CRL", &signed.der).map_err(|e| e.to_string())?,
    )?;
    let details = json!({
        "issuer": issuer.tbs_certificate().subject().to_string(),
        "crl_number": s.crl_number,
        "this_update": rfc3339(this_update),
        "next_update": rfc3339(next_update),
        "revoked": listed,
        "crl_sha256": signed.sha256,
        "issuer_key": key_json(&key, &hsm.description().label)?,
        "checks": [
            "TBS linted before signing: no errors",
            "signed TBS identical to the linted TBS",
            "signature verified in software with the issuer's public key",
        ],
        "crl_out": file,
    });
    Ok((Output::Nothing, details))
}

/// Signs a delegated OCSP responder certificate (BR 7.1.2.8) for a key on the token with the
/// issuing CA's key, then checks it the way the signing service will before using it
/// ([`crate::ocsp::Responder::new`]: issued and signed by the issuer, id-kp-OCSPSigning,
/// id-pkix-ocsp-nocheck).
fn sign_ocsp_responder(s: &script::SignOcspResponder, ctx: &mut Ctx<'_>) -> StepResult {
    let hsm = ctx.hsm()?;
    let key = ctx.key(&s.issuer_key)?;
    let issuer = ctx.certificate(&s.issuer_certificate)?;
    check_issuer_key(&key, &issuer)?;
    let signer = signer(&key, &s.signature_algorithm)?;
    let (responder_spki, responder_key) = match &s.public_key {
        InputRef::Step(p) => match ctx.outputs.get(p) {
            Some(Output::Key(k)) => (k.spki.clone(), Some(k.clone())),
            _ => return Err(format!("public-key: step {p:?} produced no key")),
        },
        InputRef::File(f) => (script::read_public_key(&resolve(&ctx.dir, f))?, None),
    };
    if responder_spki == key.spki {
        return Err(
            "public-key: the responder key must not be the issuing CA's key (RFC 6960 4.2.2.2)"
                .into(),
        );
    }
    let responder_type =
        crate::keycheck::check_public_key(&responder_spki, &crate::alg::KeyType::ALL)
            .map_err(|e| format!("public-key: {e}"))?;
    let profile = x509::OcspResponderProfile {
        issuer: issuer.tbs_certificate().subject().clone(),
        subject: s.subject.to_name().map_err(|e| format!("subject: {e}"))?,
        ski: x509::key_identifier(&responder_spki),
        aki: x509::subject_key_id(&issuer)
            .map_err(|e| e.to_string())?
            .ok_or("issuer-certificate: the issuer has no subjectKeyIdentifier")?,
    };
    let not_before = ctx.time(&s.not_before)?;
    let signing_time = ctx.started_at;
    if not_before > signing_time || not_before + Duration::from_secs(86_400) < signing_time {
        return Err(format!(
            "not-before: {} must lie between one day before the signing time {} and it (BR 7.1.2.8.1)",
            rfc3339(not_before),
            rfc3339(signing_time)
        ));
    }
    let days = s.validity_days.unwrap_or(script::DEFAULT_RESPONDER_DAYS);
    let validity = x509::validity(not_before, days).map_err(|e| e.to_string())?;
    check_nested(&validity, &issuer)?;
    let signed = x509::sign_certificate(
        profile,
        ctx.serial()?,
        validity,
        responder_spki.clone(),
        CertKind::OcspResponder,
        &signer,
        |t| hsm.sign(&key, signer.alg, t),
    )
    .map_err(|e| e.to_string())?;
    // What the service checks at start, checked now: a certificate it would refuse is not
    // written.
    let responder_signer = SignerInfo {
        spki: responder_spki,
        alg: responder_type.default_signature_algorithm(),
    };
    let _ = crate::ocsp::Responder::new(&issuer, responder_signer, Some(signed.value.clone()))
        .map_err(|e| format!("the signed responder certificate fails the service's checks: {e}"))?;
    let token = hsm.description().label.clone();
    let key_details = key_json(&key, &token)?;
    let (output, mut details) =
        ctx.finish_certificate(signed, &s.certificate_out, "issuer_key", key_details)?;
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
