//! Revocation signing: sharded CRLs and OCSP responses for the certificates this service issued.
//!
//! ```text
//!   CrlRequest ─checks─▶ entries (issued here, right shard, times, reasons)
//!              ─number: last recorded + 1 (per issuer, under a lock)─▶ build, lint, sign, verify
//!              ─▶ audit (kind "crl": number, shard, entry count, SHA-256) ─▶ response
//! ```
//!
//! CRL numbers come from the audit store: one increasing sequence per issuer, shared by its
//! shards, so every shard's numbers strictly increase and nothing a restart or a replayed request
//! does can make them go back (RFC 5280 5.2.3, BR 7.2.2).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use base64ct::{Base64, Encoding};
use der::Decode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::serial_number::SerialNumber;

use crate::audit::{Caller, Entry, Recorded};
use crate::ceremony::script::parse_time;
use crate::issue::{Pipeline, audit_error, internal, shard_of};
use crate::service::wire::ApiError;
use crate::x509;

/// BR 4.9.7: a CRL for subscriber certificates has nextUpdate at most ten days after
/// thisUpdate.
pub const MAX_CRL_VALIDITY: Duration = Duration::from_secs(10 * 86_400);
/// The default nextUpdate − thisUpdate.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(7 * 86_400);
/// How far thisUpdate may lie in the past.
pub const MAX_THIS_UPDATE_BACKDATE: Duration = Duration::from_secs(3600);

/// `POST /v1/crls`.
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

/// The response.
#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct CrlResponse {
    /// The CRL number assigned.
    pub number: u64,
    /// Base64 DER.
    pub crl: String,
}

/// Reason codes BR 7.2.2 allows on a subscriber certificate's CRL entry; "unspecified" is
/// expressed by leaving the reasonCode out.
fn reason(name: &Option<String>, field: &str) -> Result<Option<CrlReason>, ApiError> {
    Ok(match name.as_deref() {
        None | Some("unspecified") => None,
        Some("keyCompromise") => Some(CrlReason::KeyCompromise),
        Some("affiliationChanged") => Some(CrlReason::AffiliationChanged),
        Some("superseded") => Some(CrlReason::Superseded),
        Some("cessationOfOperation") => Some(CrlReason::CessationOfOperation),
        Some("privilegeWithdrawn") => Some(CrlReason::PrivilegeWithdrawn),
        Some(other) => {
            return Err(ApiError::bad_request(
                "revocation.reason",
                field,
                format!(
                    "{other:?} is not allowed for a subscriber certificate: use keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified (BR 7.2.2)"
                ),
            ));
        }
    })
}

/// Checks, numbers, signs and records a CRL shard.
pub async fn sign_crl(
    p: Arc<Pipeline>,
    caller: Caller,
    req: CrlRequest,
) -> Result<(u64, Recorded), ApiError> {
    let issuer = p.issuer(&Some(req.issuer.clone()))?;
    let shards = issuer.config.crl_shards;
    if req.shard >= shards {
        return Err(ApiError::bad_request(
            "crl.shard.unknown",
            "shard",
            format!("issuer {:?} has shards 0..{shards}", issuer.config.name),
        ));
    }
    let now = SystemTime::now();
    let this_update = parse_time(&req.this_update)
        .map_err(|e| ApiError::bad_request("crl.this_update.malformed", "this_update", e))?;
    if this_update > now + Duration::from_secs(60) {
        return Err(ApiError::bad_request(
            "crl.this_update.future",
            "this_update",
            "thisUpdate is in the future",
        ));
    }
    if now.duration_since(this_update).unwrap_or_default() > MAX_THIS_UPDATE_BACKDATE {
        return Err(ApiError::bad_request(
            "crl.this_update.backdate",
            "this_update",
            "thisUpdate may lie at most one hour in the past",
        ));
    }
    let next_update = match &req.next_update {
        None => this_update + DEFAULT_CRL_VALIDITY,
        Some(t) => parse_time(t)
            .map_err(|e| ApiError::bad_request("crl.next_update.malformed", "next_update", e))?,
    };
    if next_update <= this_update
        || next_update.duration_since(this_update).unwrap_or_default() > MAX_CRL_VALIDITY
    {
        return Err(ApiError::bad_request(
            "crl.next_update.range",
            "next_update",
            "nextUpdate must be after thisUpdate and at most ten days later (BR 4.9.7)",
        ));
    }
    let name = issuer.config.name.clone();
    let allow_unknown = issuer.config.crl_allow_unknown_serials;
    let entries = {
        let p = p.clone();
        let name = name.clone();
        let entries = req.entries.clone();
        tokio::task::spawn_blocking(move || {
            check_entries(
                &p,
                &name,
                shards,
                req.shard,
                allow_unknown,
                &entries,
                this_update,
            )
        })
        .await
        .map_err(internal)??
    };
    p.audit.check_writable().await.map_err(audit_error)?;

    // One number sequence per issuer: take the lock, read the last number, sign, record.
    let _guard = p.crl_lock(&name).lock().await;
    let number = p
        .audit
        .last_crl_number(&name)
        .map_err(audit_error)?
        .unwrap_or(0)
        + 1;
    let shard_url = (shards > 1).then(|| issuer.crl_url_for_shard(req.shard));
    let hsm = p.hsm.clone();
    let signer_issuer = issuer.clone();
    let count = entries.len();
    let signed = tokio::task::spawn_blocking(move || {
        let contents = x509::CrlContents {
            number: &number.to_be_bytes(),
            this_update,
            next_update,
            revoked: &entries,
            kind: crate::lint::CrlKind::SubscriberCertificates,
            shard_url,
        };
        x509::sign_crl(
            &signer_issuer.config.certificate,
            &contents,
            &signer_issuer.signer,
            |tbs| hsm.sign(&signer_issuer.key, signer_issuer.signer.alg, tbs),
        )
    })
    .await
    .map_err(internal)?
    .map_err(|e| match e {
        x509::Error::Hsm(e) => crate::issue::hsm_error(e),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.crl",
            "",
            other.to_string(),
        ),
    })?;
    let summary = json!({
        "number": number,
        "shard": req.shard,
        "entries": count,
        "sha256": signed.sha256,
        "this_update": crate::ceremony::transcript::rfc3339(this_update),
        "next_update": crate::ceremony::transcript::rfc3339(next_update),
    });
    let recorded = p
        .audit
        .append(Entry::crl(
            name.as_str(),
            number,
            signed.der,
            caller,
            &summary,
        ))
        .await
        .map_err(audit_error)?;
    Ok((number, recorded))
}

/// Checks every entry: a hex serial this issuer issued (unless the issuer allows unknown
/// serials), in this shard, listed once, revoked after issuance and not after thisUpdate, with a
/// reason BR 7.2.2 allows.
fn check_entries(
    p: &Pipeline,
    issuer: &str,
    shards: u32,
    shard: u32,
    allow_unknown: bool,
    entries: &[CrlEntry],
    this_update: SystemTime,
) -> Result<Vec<x509::Revocation>, ApiError> {
    let mut out = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let field = |f: &str| format!("entries[{i}].{f}");
        let serial = hex::decode(&e.serial)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 20)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "crl.entry.serial.malformed",
                    &field("serial"),
                    "a serial is 1 to 20 bytes of hex",
                )
            })?;
        if !seen.insert(serial.clone()) {
            return Err(ApiError::bad_request(
                "crl.entry.serial.duplicate",
                &field("serial"),
                "listed twice (RFC 5280 5.1.2.6)",
            ));
        }
        if shard_of(&serial, shards) != shard {
            return Err(ApiError::bad_request(
                "crl.entry.shard",
                &field("serial"),
                format!(
                    "this serial belongs to shard {}, whose URL its certificate names",
                    shard_of(&serial, shards)
                ),
            ));
        }
        let revoked_at = parse_time(&e.revoked_at).map_err(|m| {
            ApiError::bad_request("crl.entry.revoked_at.malformed", &field("revoked_at"), m)
        })?;
        if revoked_at > this_update {
            return Err(ApiError::bad_request(
                "crl.entry.revoked_at.future",
                &field("revoked_at"),
                "after thisUpdate",
            ));
        }
        let issued = p
            .audit
            .find_certificate(issuer, &serial)
            .map_err(audit_error)?;
        match issued {
            Some(der) => {
                let cert = Certificate::from_der(&der).map_err(internal)?;
                if revoked_at
                    < cert
                        .tbs_certificate()
                        .validity()
                        .not_before
                        .to_system_time()
                {
                    return Err(ApiError::bad_request(
                        "crl.entry.revoked_at.before_issuance",
                        &field("revoked_at"),
                        "before the certificate's notBefore",
                    ));
                }
            }
            None if allow_unknown => {}
            None => {
                return Err(ApiError::bad_request(
                    "crl.entry.serial.unknown",
                    &field("serial"),
                    format!("issuer {issuer:?} issued no certificate with this serial"),
                ));
            }
        }
        out.push(x509::Revocation {
            serial: SerialNumber::new(&serial).map_err(|_| {
                ApiError::bad_request(
                    "crl.entry.serial.malformed",
                    &field("serial"),
                    "not a valid serial number",
                )
            })?,
            revoked_at,
            reason: reason(&e.reason, &field("reason"))?,
        });
    }
    Ok(out)
}

/// The response body for a recorded CRL.
pub fn response(number: u64, recorded: &Recorded) -> CrlResponse {
    CrlResponse {
        number,
        crl: Base64::encode_string(recorded.der().unwrap_or_default()),
    }
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

fn ocsp_error(e: crate::ocsp::Error) -> ApiError {
    match e {
        crate::ocsp::Error::Refused { code, field, rule } => {
            ApiError::bad_request(code, field, rule)
        }
        crate::ocsp::Error::Hsm(e) => crate::issue::hsm_error(e),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.ocsp",
            "",
            other.to_string(),
        ),
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
) -> Result<crate::ocsp::SingleResponseInput, ApiError> {
    let f = |name: &str| format!("{field}{name}");
    let serial = hex::decode(&s.serial)
        .ok()
        .filter(|b| !b.is_empty() && b.len() <= 20)
        .ok_or_else(|| {
            ApiError::bad_request(
                "ocsp.serial.malformed",
                &f("serial"),
                "a serial is 1 to 20 bytes of hex",
            )
        })?;
    let der = p
        .audit
        .find_certificate(issuer, &serial)
        .map_err(audit_error)?
        .ok_or_else(|| {
            ApiError::bad_request(
                "ocsp.serial.unknown",
                &f("serial"),
                format!("issuer {issuer:?} issued no certificate with this serial"),
            )
        })?;
    let cert = Certificate::from_der(&der).map_err(internal)?;
    let status = match s.status.as_str() {
        "good" => crate::ocsp::CertStatus::Good,
        "revoked" => {
            let at = s.revoked_at.as_deref().ok_or_else(|| {
                ApiError::bad_request(
                    "ocsp.revoked_at.missing",
                    &f("revoked_at"),
                    "a revoked status needs revoked_at",
                )
            })?;
            let revoked_at = parse_time(at).map_err(|e| {
                ApiError::bad_request("ocsp.revoked_at.malformed", &f("revoked_at"), e)
            })?;
            if revoked_at
                < cert
                    .tbs_certificate()
                    .validity()
                    .not_before
                    .to_system_time()
            {
                return Err(ApiError::bad_request(
                    "ocsp.revoked_at.before_issuance",
                    &f("revoked_at"),
                    "before the certificate's notBefore",
                ));
            }
            crate::ocsp::CertStatus::Revoked {
                revoked_at,
                reason: reason(&s.reason, &f("reason"))?,
            }
        }
        other => {
            return Err(ApiError::bad_request(
                "ocsp.status",
                &f("status"),
                format!("{other:?}: the status is \"good\" or \"revoked\""),
            ));
        }
    };
    Ok(crate::ocsp::SingleResponseInput {
        serial: SerialNumber::new(&serial).map_err(|_| {
            ApiError::bad_request(
                "ocsp.serial.malformed",
                &f("serial"),
                "not a valid serial number",
            )
        })?,
        status,
        this_update,
        next_update,
    })
}

fn window(this_update: &str, next_update: &str) -> Result<(SystemTime, SystemTime), ApiError> {
    Ok((
        parse_time(this_update)
            .map_err(|e| ApiError::bad_request("ocsp.this_update.malformed", "this_update", e))?,
        parse_time(next_update)
            .map_err(|e| ApiError::bad_request("ocsp.next_update.malformed", "next_update", e))?,
    ))
}

/// Signs OCSP responses for `statuses`, spreading them over the HSM session pool: one blocking
/// task per session, each signing its share in turn. All are checked before any is signed, and
/// the signed responses are recorded in the audit chain (one `ocsp` record for the request:
/// issuer, count, each serial and status with its response's SHA-256, the SHA-256 of all the
/// responses, the validity window and the signer) before they are returned with the
/// [`Recorded`] that proves it.
pub async fn sign_ocsp(
    p: Arc<Pipeline>,
    caller: Caller,
    issuer: &str,
    this_update: &str,
    next_update: &str,
    statuses: &[OcspStatus],
    batch: bool,
) -> Result<(Vec<Vec<u8>>, Recorded), ApiError> {
    if statuses.is_empty() {
        return Err(ApiError::bad_request(
            "ocsp.statuses.empty",
            "statuses",
            "a batch needs at least one status",
        ));
    }
    let issuer = p.issuer(&Some(issuer.to_string()))?;
    let (this_update, next_update) = window(this_update, next_update)?;
    let now = SystemTime::now();
    let mut inputs = Vec::with_capacity(statuses.len());
    for (i, s) in statuses.iter().enumerate() {
        let field = if batch {
            format!("statuses[{i}].")
        } else {
            String::new()
        };
        let input = ocsp_input(&p, &issuer.config.name, s, &field, this_update, next_update)?;
        issuer.responder.check(&input, now).map_err(ocsp_error)?;
        inputs.push(input);
    }
    p.audit.check_writable().await.map_err(audit_error)?;
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
    let workers = p.hsm.pool_size().max(1).min(inputs.len().max(1));
    let chunk = inputs.len().div_ceil(workers).max(1);
    let mut tasks = Vec::new();
    let mut rest = inputs;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let (hsm, issuer) = (p.hsm.clone(), issuer.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            part.iter()
                .map(|input| {
                    crate::ocsp::sign_response(&issuer.responder, input, now, |data| {
                        hsm.sign(&issuer.ocsp_key, issuer.responder.signer().alg, data)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut out = Vec::with_capacity(statuses.len());
    for t in tasks {
        out.extend(t.await.map_err(internal)?.map_err(ocsp_error)?);
    }
    let summary = ocsp_summary(&issuer, listed, &out, this_update, next_update, now)?;
    let recorded = p
        .audit
        .append(Entry::ocsp(issuer.config.name.as_str(), caller, &summary))
        .await
        .map_err(audit_error)?;
    Ok((out, recorded))
}

/// The audit summary of one OCSP request. `responses_sha256` is the SHA-256 of the responses'
/// DER concatenated in request order (each is a self-delimiting DER SEQUENCE).
fn ocsp_summary(
    issuer: &crate::issue::Issuer,
    mut listed: Vec<serde_json::Value>,
    responses: &[Vec<u8>],
    this_update: SystemTime,
    next_update: SystemTime,
    produced_at: SystemTime,
) -> Result<serde_json::Value, ApiError> {
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
    let rfc3339 = crate::ceremony::transcript::rfc3339;
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
