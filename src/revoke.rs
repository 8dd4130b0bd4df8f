//! Revocation signing: sharded CRLs and OCSP responses for the certificates this service issued.
//!
//! ```text
//!   CrlRequest ─checks─▶ entries (issued here, right shard, times, reasons)
//!              ─number: last recorded + 1 (per issuer, under a lock)─▶ build, lint, sign, verify
//!              ─▶ audit (kind "crl": number, shard, entry count, SHA-256) ─▶ response
//! ```
//!
//! Large CRLs (a million entries) are read, checked, encoded and answered without holding the
//! request text or more than one copy of the CRL: see the `crl` submodule.
//!
//! CRL numbers come from the audit store: one increasing sequence per issuer, shared by its
//! shards, so every shard's numbers strictly increase and nothing a restart or a replayed request
//! does can make them go back (RFC 5280 5.2.3, BR 7.2.2).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Decode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::serial_number::SerialNumber;

use crate::audit::{Caller, Entry, Recorded};
use crate::issue::{Error, Pipeline, internal};
use crate::metrics::SignatureKind;
use crate::time::parse_time;

mod crl;

pub use self::crl::{CrlSubmission, PKIX_CRL, RecordedCrl, read_request, sign_crl, wants_der};

/// BR 4.9.7: a CRL for subscriber certificates has nextUpdate at most ten days after
/// thisUpdate.
pub const MAX_CRL_VALIDITY: Duration = Duration::from_secs(10 * 86_400);
/// The default nextUpdate − thisUpdate.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(7 * 86_400);
/// How far thisUpdate may lie in the past.
pub const MAX_THIS_UPDATE_BACKDATE: Duration = Duration::from_secs(3600);

/// `POST /v1/crls`: the shape of the request (read by [`read_request`], which parses the
/// entries as they arrive instead of deserialising this struct).
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CrlRequest {
    /// Issuer name.
    pub issuer: String,
    /// Shard number (0 for an issuer with one shard).
    #[serde(default)]
    pub shard: u32,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339; default thisUpdate + 7 days.
    #[serde(default)]
    pub next_update: Option<String>,
    /// The revoked certificates of this shard.
    #[serde(default)]
    pub entries: Vec<CrlEntry>,
}

/// One revoked certificate.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CrlEntry {
    /// Serial number, hex.
    pub serial: String,
    /// Revocation time, RFC 3339.
    pub revoked_at: String,
    /// RFC 5280 CRLReason name; omitted or "unspecified" leaves the reasonCode out.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The JSON response (written piece by piece by [`RecordedCrl::into_response`]).
#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct CrlResponse {
    /// The CRL number assigned.
    pub number: u64,
    /// Base64 DER.
    pub crl: String,
}

/// Reason codes BR 7.2.2 allows on a subscriber certificate's CRL entry; "unspecified" is
/// expressed by leaving the reasonCode out.
fn reason(name: &Option<String>, field: &str) -> Result<Option<CrlReason>, Error> {
    Ok(match name.as_deref() {
        None | Some("unspecified") => None,
        Some("keyCompromise") => Some(CrlReason::KeyCompromise),
        Some("affiliationChanged") => Some(CrlReason::AffiliationChanged),
        Some("superseded") => Some(CrlReason::Superseded),
        Some("cessationOfOperation") => Some(CrlReason::CessationOfOperation),
        Some("privilegeWithdrawn") => Some(CrlReason::PrivilegeWithdrawn),
        Some(other) => {
            return Err(Error::invalid(
                "revocation.reason",
                field,
                format!(
                    "{other:?} is not allowed for a subscriber certificate: use keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified (BR 7.2.2)"
                ),
            ));
        }
    })
}

/// `POST /v1/ocsp`: one response.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OcspRequest {
    /// Issuer name.
    pub issuer: String,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339.
    pub next_update: String,
    /// The certificate's status.
    #[serde(flatten)]
    pub status: OcspStatus,
}

/// `POST /v1/ocsp/batch`: many responses with one validity window (pre-signing).
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OcspBatchRequest {
    /// Issuer name.
    pub issuer: String,
    /// thisUpdate, RFC 3339.
    pub this_update: String,
    /// nextUpdate, RFC 3339.
    pub next_update: String,
    /// One status per certificate.
    pub statuses: Vec<OcspStatus>,
}

/// A certificate's status for an OCSP response.
#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct OcspStatus {
    /// Serial number, hex.
    pub serial: String,
    /// "good" or "revoked".
    pub status: String,
    /// Revocation time, RFC 3339 (revoked only).
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// CRLReason name (revoked only); omitted or "unspecified" leaves it out.
    #[serde(default)]
    pub reason: Option<String>,
}

fn ocsp_error(e: crate::ocsp::Error) -> Error {
    match e {
        crate::ocsp::Error::Refused { code, field, rule } => Error::invalid(code, field, rule),
        crate::ocsp::Error::Hsm(e) => Error::Hsm(e),
        other => Error::Internal {
            code: "internal.ocsp",
            message: other.to_string(),
        },
    }
}

/// Checks one status: a serial this issuer issued, and for a revoked one a time after
/// issuance and a reason BR 7.2.2 allows (applied to OCSP by BR 7.3).
fn ocsp_input(
    p: &Pipeline,
    issuer: &str,
    s: &OcspStatus,
    field: &str,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<crate::ocsp::SingleResponseInput, Error> {
    let f = |name: &str| format!("{field}{name}");
    let serial = hex::decode(&s.serial)
        .ok()
        .filter(|b| !b.is_empty() && b.len() <= 20)
        .ok_or_else(|| {
            Error::invalid(
                "ocsp.serial.malformed",
                f("serial"),
                "a serial is 1 to 20 bytes of hex",
            )
        })?;
    let der = p
        .audit
        .find_certificate(issuer, &serial)
        .map_err(Error::Audit)?
        .ok_or_else(|| {
            Error::invalid(
                "ocsp.serial.unknown",
                f("serial"),
                format!("issuer {issuer:?} issued no certificate with this serial"),
            )
        })?;
    let cert = Certificate::from_der(&der).map_err(internal)?;
    let status = match s.status.as_str() {
        "good" => crate::ocsp::CertStatus::Good,
        "revoked" => {
            let at = s.revoked_at.as_deref().ok_or_else(|| {
                Error::invalid(
                    "ocsp.revoked_at.missing",
                    f("revoked_at"),
                    "a revoked status needs revoked_at",
                )
            })?;
            let revoked_at = parse_time(at)
                .map_err(|e| Error::invalid("ocsp.revoked_at.malformed", f("revoked_at"), e))?;
            if revoked_at
                < cert
                    .tbs_certificate()
                    .validity()
                    .not_before
                    .to_system_time()
            {
                return Err(Error::invalid(
                    "ocsp.revoked_at.before_issuance",
                    f("revoked_at"),
                    "before the certificate's notBefore",
                ));
            }
            crate::ocsp::CertStatus::Revoked {
                revoked_at,
                reason: reason(&s.reason, &f("reason"))?,
            }
        }
        other => {
            return Err(Error::invalid(
                "ocsp.status",
                f("status"),
                format!("{other:?}: the status is \"good\" or \"revoked\""),
            ));
        }
    };
    Ok(crate::ocsp::SingleResponseInput {
        serial: SerialNumber::new(&serial).map_err(|_| {
            Error::invalid(
                "ocsp.serial.malformed",
                f("serial"),
                "not a valid serial number",
            )
        })?,
        status,
        this_update,
        next_update,
    })
}

fn window(this_update: &str, next_update: &str) -> Result<(SystemTime, SystemTime), Error> {
    Ok((
        parse_time(this_update)
            .map_err(|e| Error::invalid("ocsp.this_update.malformed", "this_update", e))?,
        parse_time(next_update)
            .map_err(|e| Error::invalid("ocsp.next_update.malformed", "next_update", e))?,
    ))
}

/// Signs OCSP responses for `statuses`, spreading them over the HSM session pool: two blocking
/// tasks per session, each signing its share in turn. All are checked before any is signed, and
/// the signed responses are recorded in the audit chain (one `ocsp` record for the request:
/// issuer, count, each serial and status with its response's SHA-256, the SHA-256 of all the
/// responses, the validity window and the signer) before they are returned with the
/// [`Recorded`] that proves it.
///
/// Runs detached from the caller ([`Pipeline::detach`]): dropping the returned future does not
/// cancel a signing or its record.
pub async fn sign_ocsp(
    p: Arc<Pipeline>,
    caller: Caller,
    issuer: String,
    this_update: String,
    next_update: String,
    statuses: Vec<OcspStatus>,
    batch: bool,
) -> Result<(Vec<Vec<u8>>, Recorded), Error> {
    p.clone()
        .detach(async move {
            sign_ocsp_attached(
                p,
                caller,
                &issuer,
                &this_update,
                &next_update,
                statuses,
                batch,
            )
            .await
        })
        .await
}

async fn sign_ocsp_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    issuer: &str,
    this_update: &str,
    next_update: &str,
    statuses: Vec<OcspStatus>,
    batch: bool,
) -> Result<(Vec<Vec<u8>>, Recorded), Error> {
    if statuses.is_empty() {
        return Err(Error::invalid(
            "ocsp.statuses.empty",
            "statuses",
            "a batch needs at least one status",
        ));
    }
    let issuer = p.issuer(&Some(issuer.to_string()))?;
    let (this_update, next_update) = window(this_update, next_update)?;
    let now = SystemTime::now();
    // Each status is a look-up in the audit store and a certificate to decode: blocking work,
    // kept off the tokio workers.
    let inputs = tokio::task::spawn_blocking({
        let (p, issuer) = (p.clone(), issuer.clone());
        move || {
            let mut inputs = Vec::with_capacity(statuses.len());
            for (i, s) in statuses.iter().enumerate() {
                let field = if batch {
                    format!("statuses[{i}].")
                } else {
                    String::new()
                };
                let input =
                    ocsp_input(&p, &issuer.config.name, s, &field, this_update, next_update)?;
                issuer.responder.check(&input, now).map_err(ocsp_error)?;
                inputs.push(input);
            }
            Ok::<_, Error>(inputs)
        }
    })
    .await
    .map_err(internal)??;
    p.audit.check_writable().await.map_err(Error::Audit)?;
    let listed: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| {
            json!({
                "serial": hex::encode(i.serial.as_bytes()),
                "status": match i.status {
                    crate::ocsp::CertStatus::Revoked { .. } => "revoked",
                    _ => "good",
                },
            })
        })
        .collect();
    // Two signing threads per HSM session: while one thread's signature is being made on the
    // session, the other builds its next response or verifies the signature it just got back,
    // so the session does not wait for our own work.
    let workers = (2 * p.hsm.pool_size()).max(1).min(inputs.len().max(1));
    let chunk = inputs.len().div_ceil(workers).max(1);
    let mut tasks = Vec::new();
    let mut rest = inputs;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let (hsm, issuer, metrics) = (p.hsm.clone(), issuer.clone(), p.metrics.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            part.iter()
                .map(|input| {
                    crate::ocsp::sign_response(&issuer.responder, input, now, |data| {
                        metrics.hsm_signature(SignatureKind::Ocsp);
                        hsm.sign(&issuer.ocsp_key, issuer.responder.signer().alg, data)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut out = Vec::with_capacity(listed.len());
    for t in tasks {
        out.extend(t.await.map_err(internal)?.map_err(ocsp_error)?);
    }
    let summary = ocsp_summary(&issuer, listed, &out, this_update, next_update, now)?;
    let recorded = p
        .audit
        .append(Entry::ocsp(issuer.config.name.as_str(), caller, &summary))
        .await
        .map_err(Error::Audit)?;
    Ok((out, recorded))
}

/// The audit summary of one OCSP request. `responses_sha256` is the SHA-256 of the responses'
/// DER concatenated in request order (each is a self-delimiting DER SEQUENCE).
fn ocsp_summary(
    issuer: &crate::issuer::Issuer,
    mut listed: Vec<serde_json::Value>,
    responses: &[Vec<u8>],
    this_update: SystemTime,
    next_update: SystemTime,
    produced_at: SystemTime,
) -> Result<serde_json::Value, Error> {
    use sha2::{Digest, Sha256};
    let mut all = Sha256::new();
    for (entry, der) in listed.iter_mut().zip(responses) {
        entry["sha256"] = json!(hex::encode(Sha256::digest(der)));
        all.update(der);
    }
    let responder = &issuer.responder;
    let signer = match responder.delegate() {
        None => json!({
            "kind": "issuer",
            "responder_id_key_sha1": hex::encode(responder.responder_key_hash()),
        }),
        Some(cert) => json!({
            "kind": "delegated",
            "responder_id_key_sha1": hex::encode(responder.responder_key_hash()),
            "certificate_sha256": hex::encode(Sha256::digest(
                der::Encode::to_der(cert).map_err(internal)?
            )),
            "serial": hex::encode(cert.tbs_certificate().serial_number().as_bytes()),
        }),
    };
    let rfc3339 = crate::time::rfc3339;
    Ok(json!({
        "count": responses.len(),
        "this_update": rfc3339(this_update),
        "next_update": rfc3339(next_update),
        "produced_at": rfc3339(produced_at),
        "signer": signer,
        "responses_sha256": hex::encode(all.finalize()),
        "responses": listed,
    }))
}
