//! `action = "sign-crl"`: an offline CRL (RFC 5280 5) of CA certificates, signed with the issuing
//! CA's key, its number larger than the previous CRL's.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use der::Encode;
use serde::Deserialize;
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::CrlReason;

use super::{Ctx, Error, Input, Output, StepResult, key_json};
use crate::ceremony::script::{
    InputRef, KeyRef, Plan, ScriptError, crl_number, parse_ca_crl_reason,
};
use crate::time::{parse_time, rfc3339};
use crate::x509;

/// The action name in scripts.
pub(crate) const ACTION: &str = "sign-crl";

/// BR 4.9.7: a CRL covering CA certificates has nextUpdate at most twelve months after
/// thisUpdate; strongroom counts that as 365 days.
pub const MAX_CA_CRL_DAYS: u32 = 365;

/// The step as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Raw {
    /// Step id.
    pub(crate) id: String,
    /// The issuing key.
    issuer_key: KeyRef,
    /// The issuer's certificate.
    issuer_certificate: InputRef,
    /// The CRL number (RFC 5280 5.2.3).
    crl_number: u64,
    /// The previous CRL of this issuer; the new number must be larger.
    previous_crl: Option<PathBuf>,
    /// thisUpdate (RFC 3339); default: the start of the run.
    this_update: Option<String>,
    /// nextUpdate − thisUpdate in days (BR 4.9.7: at most 365).
    next_update_days: u32,
    /// The revoked certificates.
    #[serde(default)]
    revoked: Vec<RawEntry>,
    /// Where to write the CRL (PEM).
    pub(crate) crl_out: PathBuf,
}

/// One CRL entry as written in the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEntry {
    /// The revoked certificate.
    certificate: InputRef,
    /// When it was revoked (RFC 3339); default: the start of the run.
    revoked_at: Option<String>,
    /// The RFC 5280 CRLReason name, e.g. "cessationOfOperation".
    reason: String,
}

/// One CRL entry, resolved.
#[derive(Debug)]
struct Entry {
    certificate: Input<Certificate>,
    revoked_at: SystemTime,
    reason: CrlReason,
    /// The reason as written, for the transcript.
    reason_name: String,
}

/// The step, checked and resolved.
#[derive(Debug)]
pub struct SignCrl {
    pub(crate) id: String,
    issuer_key: KeyRef,
    issuer_certificate: Input<Certificate>,
    crl_number: u64,
    this_update: SystemTime,
    next_update_days: u32,
    revoked: Vec<Entry>,
    crl_out: PathBuf,
}

impl SignCrl {
    /// Checks the CRL's number, lifetime and entries and resolves them.
    pub(crate) fn parse(raw: Raw, plan: &mut Plan<'_>) -> Result<Self, ScriptError> {
        let _ = plan.key_ref("issuer-key", &raw.issuer_key)?;
        let (issuer_certificate, _) =
            plan.cert_ref("issuer-certificate", &raw.issuer_certificate)?;
        if raw.next_update_days == 0 || raw.next_update_days > MAX_CA_CRL_DAYS {
            return Err(plan.err(
                "next-update-days",
                format!(
                    "{} is outside 1..=365: nextUpdate must be at most twelve months after thisUpdate (BR 4.9.7)",
                    raw.next_update_days
                ),
            ));
        }
        let this_update = plan.start("this-update", &raw.this_update)?;
        if let Some(prev) = &raw.previous_crl {
            let (crl, _) = x509::read_pem::<CertificateList>(&plan.path(prev), "X509 CRL")
                .map_err(|e| plan.err("previous-crl", e.to_string()))?;
            let previous = crl_number(&crl).map_err(|e| plan.err("previous-crl", e))?;
            if u128::from(raw.crl_number) <= previous {
                return Err(plan.err(
                    "crl-number",
                    format!(
                        "{} is not larger than the previous CRL's number {previous}: CRL numbers must strictly increase (RFC 5280 5.2.3)",
                        raw.crl_number
                    ),
                ));
            }
        }
        let mut revoked = Vec::with_capacity(raw.revoked.len());
        for (n, entry) in raw.revoked.into_iter().enumerate() {
            let (certificate, _) =
                plan.cert_ref(&format!("revoked[{n}].certificate"), &entry.certificate)?;
            let reason = parse_ca_crl_reason(&entry.reason)
                .map_err(|e| plan.err(&format!("revoked[{n}].reason"), e))?;
            let revoked_at = match &entry.revoked_at {
                Some(t) => {
                    parse_time(t).map_err(|e| plan.err(&format!("revoked[{n}].revoked-at"), e))?
                }
                None => plan.started_at,
            };
            revoked.push(Entry {
                certificate,
                revoked_at,
                reason,
                reason_name: entry.reason,
            });
        }
        Ok(SignCrl {
            crl_out: plan.path(&raw.crl_out),
            id: raw.id,
            issuer_key: raw.issuer_key,
            issuer_certificate,
            crl_number: raw.crl_number,
            this_update,
            next_update_days: raw.next_update_days,
            revoked,
        })
    }

    /// The key this step signs with.
    pub(crate) fn key_refs(&self) -> Vec<(&'static str, &KeyRef)> {
        vec![("issuer-key", &self.issuer_key)]
    }

    /// Checks each entry against the issuer, signs the CRL (linted first, verified after) and
    /// writes it.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> StepResult {
        let super::Issuer {
            hsm,
            key,
            certificate: issuer,
            signer,
        } = ctx.issuer(&self.issuer_key, &self.issuer_certificate, None)?;
        let this_update = self.this_update;
        let next_update =
            this_update + Duration::from_secs(u64::from(self.next_update_days) * 86_400);
        let issuer_name = issuer.tbs_certificate().subject().to_der()?;
        let mut entries = Vec::new();
        let mut listed = Vec::new();
        for (n, entry) in self.revoked.iter().enumerate() {
            let field = format!("revoked[{n}]");
            let cert = ctx.certificate(&entry.certificate)?;
            let tbs = cert.tbs_certificate();
            if tbs.issuer().to_der()? != issuer_name {
                return Err(Error::field(
                    format!("{field}.certificate"),
                    format!(
                        "{} was not issued by {}",
                        tbs.subject(),
                        issuer.tbs_certificate().subject()
                    ),
                ));
            }
            if crate::verify::verify_certificate(&cert, &key.spki).is_err() {
                return Err(Error::field(
                    format!("{field}.certificate"),
                    format!("{} is not signed by the issuer key", tbs.subject()),
                ));
            }
            let revoked_at = entry.revoked_at;
            if revoked_at > this_update {
                return Err(Error::field(
                    format!("{field}.revoked-at"),
                    "after thisUpdate; a CRL cannot list a future revocation",
                ));
            }
            if revoked_at < tbs.validity().not_before.to_system_time() {
                return Err(Error::field(
                    format!("{field}.revoked-at"),
                    "before the certificate's notBefore",
                ));
            }
            let serial = tbs.serial_number().clone();
            if entries
                .iter()
                .any(|e: &x509::Revocation| e.serial == serial)
            {
                return Err(Error::field(
                    field,
                    format!("serial {} is listed twice", hex::encode(serial.as_bytes())),
                ));
            }
            listed.push(json!({
                "serial": hex::encode(serial.as_bytes()),
                "subject": tbs.subject().to_string(),
                "revoked_at": rfc3339(revoked_at),
                "reason": entry.reason_name,
            }));
            entries.push(x509::Revocation {
                serial,
                revoked_at,
                reason: Some(entry.reason),
            });
        }
        let number = self.crl_number.to_be_bytes();
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
        })?;
        let file = ctx.write(&self.crl_out, &x509::to_pem("X509 CRL", &signed.der)?)?;
        let details = json!({
            "issuer": issuer.tbs_certificate().subject().to_string(),
            "crl_number": self.crl_number,
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
}
