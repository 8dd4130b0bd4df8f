//! The issuance pipeline, top to bottom in one place:
//!
//! ```text
//!   IssueRequest ─policy─▶ Approved ─build, lint─▶ TBS ─HSM sign + software verify─▶ Signed
//!        │ (refusals are recorded too)                                                 │
//!        ▼                                                                             ▼
//!   ApiError (400/403/413)                              audit::append (fsync) ─▶ Recorded ─▶ response
//! ```
//!
//! [`Approved`] can only be made by [`approve`], which runs every policy check before any HSM
//! call; [`Recorded`] can only be made by the audit store after the record is durable, and the
//! service's handlers can only answer with a `Recorded`: no certificate leaves without a durable
//! record.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use base64ct::{Base64, Encoding};
use serde_json::json;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::audit::{self, AuditLog, Caller, Entry, Recorded};
use crate::config::{Config, ProfileConfig};
use crate::hsm::Hsm;
pub use crate::issuer::{Issuer, shard_of};
use crate::lint::CertKind;
use crate::service::metrics::SignatureKind;
use crate::service::wire::{ApiError, IssueRequest};
use crate::x509::{self, Ct, TlsServerProfile};

/// Everything the pipeline needs, shared by all requests.
pub struct Pipeline {
    /// The HSM session pool.
    pub hsm: Arc<Hsm>,
    /// The issuers, in configuration order (the first is the default).
    pub issuers: Vec<Arc<Issuer>>,
    /// The configuration.
    pub config: Config,
    /// The audit store.
    pub audit: AuditLog,
    /// Counters for `/metrics`.
    pub metrics: crate::service::metrics::Metrics,
    /// One lock per issuer, held while a CRL number is taken, used and recorded.
    pub crl_locks: std::collections::HashMap<String, tokio::sync::Mutex<()>>,
    /// Signing work running apart from the requests that started it (see [`Pipeline::detach`]).
    pub detached: Detached,
    /// The precertificates whose final certificate is being made (see [`finalize`]).
    pub finals_in_progress: std::sync::Mutex<std::collections::HashSet<(String, Vec<u8>)>>,
}

/// Counts the signing work detached from requests, so that shutdown can wait for it.
#[derive(Debug)]
pub struct Detached {
    running: tokio::sync::watch::Sender<usize>,
}

impl Default for Detached {
    fn default() -> Self {
        Detached {
            running: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// One detached task; dropped when the task ends, however it ends.
struct DetachedGuard(tokio::sync::watch::Sender<usize>);

impl Drop for DetachedGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Detached {
    fn enter(&self) -> DetachedGuard {
        self.running.send_modify(|n| *n += 1);
        DetachedGuard(self.running.clone())
    }

    /// How many detached tasks are running.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits until no detached task is running.
    pub async fn idle(&self) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// A precertificate's final certificate being made: the (issuer, serial) stays reserved until
/// this is dropped, after the final is durably recorded or the attempt failed.
struct FinalReservation {
    p: Arc<Pipeline>,
    key: (String, Vec<u8>),
}

impl Drop for FinalReservation {
    fn drop(&mut self) {
        let mut set = self
            .p
            .finals_in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = set.remove(&self.key);
    }
}

/// A request that passed every policy check. Only [`approve`] makes one.
pub struct Approved {
    issuer: Arc<Issuer>,
    profile: TlsServerProfile,
    serial: SerialNumber,
    validity: x509_cert::time::Validity,
    spki: SubjectPublicKeyInfoOwned,
    precertificate: bool,
    summary: serde_json::Value,
}

impl Pipeline {
    /// The named issuer, or the first.
    pub fn issuer(&self, name: &Option<String>) -> Result<Arc<Issuer>, ApiError> {
        match name {
            None => Ok(self.issuers[0].clone()),
            Some(n) => self
                .issuers
                .iter()
                .find(|i| i.config.name == *n)
                .cloned()
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "request.issuer.unknown",
                        "issuer",
                        format!("no issuer named {n:?}"),
                    )
                }),
        }
    }

    /// Runs `work` (a request's signing pipeline) on a task of its own and waits for it.
    ///
    /// A handler's future is dropped when its client hangs up; the work is not. Once the HSM has
    /// been asked to sign, the signature is verified and recorded (or the failure recorded)
    /// whatever the client does; the response is then simply not delivered. [`Detached::idle`]
    /// lets shutdown wait for such work before the process exits.
    pub async fn detach<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let guard = self.detached.enter();
        tokio::spawn(async move {
            let _guard = guard;
            work.await
        })
        .await
        .map_err(internal)?
    }

    /// The CRL-number lock of an issuer.
    pub fn crl_lock(&self, issuer: &str) -> &tokio::sync::Mutex<()> {
        static FALLBACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        self.crl_locks.get(issuer).unwrap_or(&FALLBACK)
    }

    fn profile(&self, name: &str) -> Result<&ProfileConfig, ApiError> {
        self.config.profiles.get(name).ok_or_else(|| {
            ApiError::bad_request(
                "request.profile.unknown",
                "profile",
                format!("no profile named {name:?}"),
            )
        })
    }
}

/// Runs every policy check on a request; nothing here touches the HSM.
pub fn approve(p: &Pipeline, req: &IssueRequest) -> Result<Approved, ApiError> {
    let issuer = p.issuer(&req.issuer)?;
    let profile = p.profile(&req.profile)?;
    let policy = &p.config.policy;
    let spki = match (&req.public_key, &req.csr) {
        (Some(b64), None) => crate::policy::decode_spki(b64)?,
        (None, Some(pem)) => crate::policy::csr_public_key(pem)?,
        _ => {
            return Err(ApiError::bad_request(
                "request.public_key.missing",
                "public_key",
                "give exactly one of public_key (base64 SPKI DER) and csr (PEM)",
            ));
        }
    };
    let key_type = crate::policy::check_key(&spki, policy)?;
    let names = crate::policy::check_names(&req.dns_names, &req.ip_addresses, policy)?;

    let requested =
        match &req.not_before {
            None => None,
            Some(t) => Some(crate::ceremony::script::parse_time(t).map_err(|e| {
                ApiError::bad_request("request.not_before.malformed", "not_before", e)
            })?),
        };
    let (not_before, not_after) = validity_window(
        crate::ceremony::now_seconds(),
        requested,
        profile.validity,
        profile.max_backdate,
        issuer.not_after,
    )?;
    let validity = encode_validity(not_before, not_after)?;
    let mut random = [0u8; SERIAL_RANDOM_OCTETS];
    getrandom::fill(&mut random).map_err(|e| internal(format!("random serial: {e}")))?;
    let serial = serial_number(p.config.instance_prefix, &random)?;

    let mut sans: Vec<GeneralName> = Vec::new();
    for d in &names.dns {
        sans.push(GeneralName::DnsName(
            der::asn1::Ia5String::new(d).map_err(internal)?,
        ));
    }
    for ip in &names.ips {
        sans.push(GeneralName::from(*ip));
    }
    // BR 7.1.2.7.2: a commonName, if present, is one of the SAN values; we use the first
    // dNSName when it fits in ub-common-name (64).
    let cn = names
        .dns
        .first()
        .filter(|d| profile.common_name && d.len() <= 64);
    let subject = match cn {
        Some(cn) => format!("CN={cn}")
            .parse::<x509_cert::name::Name>()
            .map_err(internal)?,
        None => x509_cert::name::Name::default(),
    };
    let mut key_usage = KeyUsages::DigitalSignature.into();
    if profile.rsa_key_encipherment && key_type.rsa_bits().is_some() {
        key_usage |= KeyUsages::KeyEncipherment;
    }
    let summary = json!({
        "profile": profile.name,
        "dns_names": names.dns,
        "ip_addresses": names.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "key_type": key_type.to_string(),
        "spki_sha256": x509::spki_sha256(&spki).map_err(internal)?,
        "precertificate": req.precertificate,
    });
    let profile = TlsServerProfile {
        issuer: issuer
            .config
            .certificate
            .tbs_certificate()
            .subject()
            .clone(),
        subject,
        key_usage: x509_cert::ext::pkix::KeyUsage(key_usage),
        names: sans,
        aki: issuer.ski.clone(),
        ca_issuers_url: issuer.config.ca_issuers_url.clone(),
        crl_url: issuer.crl_url(serial.as_bytes()),
        ct: if req.precertificate {
            Ct::Poison
        } else {
            Ct::None
        },
    };
    Ok(Approved {
        issuer,
        profile,
        serial,
        validity,
        spki,
        precertificate: req.precertificate,
        summary,
    })
}

/// Octets of CSPRNG output in a serial, after the instance prefix: 128 bits, twice BR 7.1's
/// minimum of 64.
pub const SERIAL_RANDOM_OCTETS: usize = 16;

/// A serial number: the instance prefix (1..=127) followed by [`SERIAL_RANDOM_OCTETS`] octets
/// from the CSPRNG, 17 octets in all. The prefix keeps the first bit clear, so the INTEGER is
/// positive and needs no leading zero octet; it is never zero-led, so the encoding is minimal
/// (RFC 5280 4.1.2.2: positive, at most 20 octets; BR 7.1: at least 64 bits of CSPRNG output).
///
/// # Errors
/// `internal` for a prefix outside 1..=127 (the configuration refuses those).
pub fn serial_number(
    prefix: u8,
    random: &[u8; SERIAL_RANDOM_OCTETS],
) -> Result<SerialNumber, ApiError> {
    if !(1..=127).contains(&prefix) {
        return Err(internal(format!(
            "instance prefix {prefix} is outside 1..=127 (RFC 5280 4.1.2.2)"
        )));
    }
    let mut octets = [prefix; 1 + SERIAL_RANDOM_OCTETS];
    octets[1..].copy_from_slice(random);
    SerialNumber::new(&octets).map_err(internal)
}

/// The validity window of a certificate (BR 7.1.2.7, 6.3.2): notBefore is `now`, or the
/// `requested` time when that is not in the future and at most `max_backdate` before `now`;
/// notAfter is notBefore + `validity` − 1 s, since both ends are inclusive (RFC 5280 4.1.2.5),
/// and never after the issuer's notAfter (RFC 5280 6.1.3).
///
/// # Errors
/// `policy.validity.future` / `policy.validity.backdate` (field `not_before`) or
/// `policy.validity.issuer_expiry` (field `profile`).
pub fn validity_window(
    now: SystemTime,
    requested: Option<SystemTime>,
    validity: Duration,
    max_backdate: Duration,
    issuer_not_after: SystemTime,
) -> Result<(SystemTime, SystemTime), ApiError> {
    let not_before = match requested {
        None => now,
        Some(t) if t > now => {
            return Err(ApiError::bad_request(
                "policy.validity.future",
                "not_before",
                "notBefore must not be in the future",
            ));
        }
        Some(t) if now.duration_since(t).unwrap_or_default() > max_backdate => {
            return Err(ApiError::bad_request(
                "policy.validity.backdate",
                "not_before",
                format!(
                    "notBefore may be backdated by at most {} seconds",
                    max_backdate.as_secs()
                ),
            ));
        }
        Some(t) => t,
    };
    let not_after = not_before
        .checked_add(validity)
        .and_then(|t| t.checked_sub(Duration::from_secs(1)))
        .filter(|t| *t <= issuer_not_after)
        .ok_or_else(|| {
            ApiError::bad_request(
                "policy.validity.issuer_expiry",
                "profile",
                "the certificate would outlive its issuer's certificate (RFC 5280 6.1.3)",
            )
        })?;
    Ok((not_before, not_after))
}

/// The DER `Validity` of a window: UTCTime through 2049, GeneralizedTime from 2050 on
/// (RFC 5280 4.1.2.5), whole seconds.
///
/// # Errors
/// `internal` for a time DER cannot encode (before 1970 or after 9999).
pub fn encode_validity(
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<x509_cert::time::Validity, ApiError> {
    let time = |t| {
        der::DateTime::from_system_time(t)
            .map(x509_cert::time::Time::from)
            .map_err(internal)
    };
    Ok(x509_cert::time::Validity::new(
        time(not_before)?,
        time(not_after)?,
    ))
}

/// A 500 for what can only be a bug or a broken invariant on our side.
pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "",
        e.to_string(),
    )
}

/// Maps a signing failure to the wire.
fn signing_error(e: x509::Error) -> ApiError {
    match e {
        x509::Error::Hsm(e) => hsm_error(e),
        x509::Error::Lint { report, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.lint",
            "",
            format!(
                "the certificate strongroom built fails its own lint; nothing was signed: {report}"
            ),
        ),
        other => internal(other),
    }
}

/// The error code of a signature from the HSM that did not verify under the key's public key.
pub(crate) const BAD_SIGNATURE: &str = "hsm.bad_signature";

/// An HSM failure on the wire: 503 `hsm.unavailable` when the HSM cannot be used (the
/// request can be retried later), 500 `hsm.bad_signature` when the HSM returned a signature that
/// does not verify (nothing was released or recorded as issued), 500 `hsm.error` for any other
/// error of this one call.
pub(crate) fn hsm_error(e: crate::hsm::Error) -> ApiError {
    if matches!(e, crate::hsm::Error::BadSignature { .. }) {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            BAD_SIGNATURE,
            "",
            e.to_string(),
        )
    } else if e.is_unavailable() || e.is_fatal() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "hsm.unavailable",
            "",
            e.to_string(),
        )
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "hsm.error",
            "",
            e.to_string(),
        )
    }
}

/// A 503: the audit store cannot be read or written, so nothing is signed or released.
pub(crate) fn audit_error(e: audit::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit.unavailable",
        "",
        format!("the audit store is unavailable; nothing is signed or released until it is: {e}"),
    )
}

/// Runs a look-up in the audit store on the blocking pool. The look-up connection sits behind a
/// mutex that a CRL's or an OCSP batch's chunk of look-ups may hold for a while, and a tokio
/// worker must not wait on it.
pub(crate) async fn read_audit<T: Send + 'static>(
    p: &Arc<Pipeline>,
    read: impl FnOnce(&AuditLog) -> Result<T, audit::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let p = Arc::clone(p);
    tokio::task::spawn_blocking(move || read(&p.audit))
        .await
        .map_err(internal)?
        .map_err(audit_error)
}

/// Issues a certificate or precertificate: policy, build, lint, sign, record. Refusals are
/// recorded too (best effort: a refusal is returned even if its record cannot be written).
///
/// The pipeline runs detached from the caller ([`Pipeline::detach`]): dropping the returned
/// future does not cancel a signing or its record.
pub async fn issue(
    p: Arc<Pipeline>,
    caller: Caller,
    req: IssueRequest,
) -> Result<Recorded, ApiError> {
    p.clone().detach(issue_attached(p, caller, req)).await
}

async fn issue_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    req: IssueRequest,
) -> Result<Recorded, ApiError> {
    let approved = match approve(&p, &req) {
        Ok(a) => a,
        Err(e) => {
            return Err(refuse(
                &p,
                caller,
                req.issuer.clone(),
                e,
                json!({"profile": req.profile}),
            )
            .await);
        }
    };
    // Fail closed: do not sign what could not be recorded.
    p.audit.check_writable().await.map_err(audit_error)?;
    let issuer = approved.issuer.clone();
    // Fail fast while the HSM is unavailable: no build, no lint, no queueing.
    if let Err(e) = p.hsm.available() {
        p.metrics.hsm_errors.inc();
        return Err(refuse(
            &p,
            caller,
            Some(issuer.config.name.clone()),
            hsm_error(e),
            approved.summary.clone(),
        )
        .await);
    }
    let kind = if approved.precertificate {
        CertKind::Precertificate
    } else {
        CertKind::Subscriber
    };
    let Approved {
        profile,
        serial,
        validity,
        spki,
        precertificate,
        summary,
        ..
    } = approved;
    let serial_bytes = serial.as_bytes().to_vec();
    // The record will follow the signature: let the audit writer hold its batch open for it.
    let announced = p.audit.announce();
    let signed = async {
        let tbs = x509::prepare_certificate(profile, serial, validity, spki, kind, &issuer.signer)?;
        let signed_kind = if precertificate {
            SignatureKind::Precertificate
        } else {
            SignatureKind::Certificate
        };
        sign_tbs(&p, &issuer, tbs, signed_kind).await
    };
    let der = match signed.await {
        Ok(der) => der,
        Err(e) => {
            drop(announced);
            let e = signing_error(e);
            if e.code == "hsm.unavailable" {
                p.metrics.hsm_errors.inc();
            }
            return Err(refuse(&p, caller, Some(issuer.config.name.clone()), e, summary).await);
        }
    };
    let entry = if precertificate {
        Entry::precertificate(
            issuer.config.name.as_str(),
            serial_bytes,
            der,
            caller,
            &summary,
        )
    } else {
        Entry::certificate(
            issuer.config.name.as_str(),
            serial_bytes,
            der,
            caller,
            &summary,
        )
    };
    let recorded = announced.append(entry).await.map_err(audit_error)?;
    p.metrics.issued(&issuer.config.name, precertificate);
    Ok(recorded)
}

/// Signs a built and linted TBS with the issuer's key (counted in the signature metric): a
/// session's worker signs while this task awaits, so no thread waits on the HSM for the request;
/// the signature is verified and the certificate assembled and checked here.
async fn sign_tbs(
    p: &Pipeline,
    issuer: &Issuer,
    tbs: x509::LintedTbs,
    kind: SignatureKind,
) -> Result<Vec<u8>, x509::Error> {
    let _ = p.metrics.certificate_signatures.inc();
    p.metrics.hsm_signature(kind);
    let signature = p
        .hsm
        .sign_async(&issuer.key, issuer.signer.alg, tbs.der())
        .await?;
    tbs.assemble(&signature, &issuer.signer)
}

/// Turns a stored precertificate into its final certificate, once (RFC 6962 3.1).
///
/// The (issuer, serial) is reserved before the audit store is asked whether a final exists and
/// stays reserved until the final is durably recorded or the attempt failed, so of concurrent
/// calls exactly one is signed; the others get 409 `request.serial.final_in_progress` (or
/// `request.serial.already_final` once it is recorded) without any HSM call. Runs detached from
/// the caller, as [`issue`] does.
pub async fn finalize(
    p: Arc<Pipeline>,
    caller: Caller,
    serial_hex: &str,
    issuer: &Option<String>,
    sct_list_b64: &str,
) -> Result<Recorded, ApiError> {
    let (serial_hex, issuer, sct_list_b64) = (
        serial_hex.to_string(),
        issuer.clone(),
        sct_list_b64.to_string(),
    );
    p.clone()
        .detach(
            async move { finalize_attached(p, caller, &serial_hex, &issuer, &sct_list_b64).await },
        )
        .await
}

/// Reserves the making of a precertificate's final certificate, or says one is being made.
fn reserve_final(
    p: &Arc<Pipeline>,
    issuer: &str,
    serial: &[u8],
) -> Result<FinalReservation, ApiError> {
    let key = (issuer.to_string(), serial.to_vec());
    let mut set = p
        .finals_in_progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !set.insert(key.clone()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "request.serial.final_in_progress",
            "serial",
            "the final certificate of this precertificate is being made by another request",
        ));
    }
    Ok(FinalReservation { p: p.clone(), key })
}

async fn finalize_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    serial_hex: &str,
    issuer: &Option<String>,
    sct_list_b64: &str,
) -> Result<Recorded, ApiError> {
    let issuer = p.issuer(issuer)?;
    let serial = hex::decode(serial_hex).map_err(|_| {
        ApiError::bad_request(
            "request.serial.malformed",
            "serial",
            "the serial must be hex",
        )
    })?;
    let sct_list = Base64::decode_vec(sct_list_b64.trim()).map_err(|_| {
        ApiError::bad_request(
            "request.sct_list.malformed",
            "sct_list",
            "sct_list must be base64",
        )
    })?;
    check_sct_list(&sct_list)?;
    let name = issuer.config.name.clone();
    // Held until this function returns: after the record is durable, or on any failure.
    let _reservation = reserve_final(&p, &name, &serial)?;
    let (precert_der, has_final) = read_audit(&p, {
        let (name, serial) = (name.clone(), serial.clone());
        move |audit| {
            let precert = audit.find_precertificate(&name, &serial)?;
            let has_final = audit.has_final(&name, &serial)?;
            Ok((precert, has_final))
        }
    })
    .await?;
    let precert_der = precert_der.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "request.serial.unknown",
            "serial",
            "no precertificate with this serial from this issuer",
        )
    })?;
    if has_final {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "request.serial.already_final",
            "serial",
            "this precertificate already has its final certificate",
        ));
    }
    p.audit.check_writable().await.map_err(audit_error)?;
    let precert: Certificate = der::Decode::from_der(&precert_der).map_err(internal)?;
    let tbs = x509::prepare_final(&precert, &sct_list).map_err(signing_error)?;
    // As in `issue`: the writer may hold its batch open for this record (withdrawn on error).
    let announced = p.audit.announce();
    let der = sign_tbs(&p, &issuer, tbs, SignatureKind::Certificate)
        .await
        .map_err(signing_error)
        .inspect_err(|e| p.metrics.rejected(&e.code))?;
    let summary = json!({"final_of_precertificate": hex::encode(&serial)});
    let recorded = announced
        .append(Entry::certificate(
            name.as_str(),
            serial.clone(),
            der,
            caller,
            &summary,
        ))
        .await
        .map_err(|e| match e {
            audit::Error::DuplicateSerial { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "request.serial.already_final",
                "serial",
                "this precertificate already has its final certificate",
            ),
            other => audit_error(other),
        })?;
    p.metrics.issued(&name, false);
    Ok(recorded)
}

/// Checks a TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3): a 2-byte total length,
/// then one or more 2-byte-length-prefixed SCTs, each a v1 SignedCertificateTimestamp (3.2):
/// version 0, a 32-byte log id, an 8-byte timestamp, length-prefixed extensions and a
/// digitally-signed struct (hash and signature algorithm, length-prefixed signature), with
/// nothing left over anywhere.
///
/// # Errors
/// `request.sct_list.malformed`, field `sct_list`, naming what does not parse.
pub fn check_sct_list(list: &[u8]) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(
            "request.sct_list.malformed",
            "sct_list",
            format!("{why} (RFC 6962 3.2, 3.3)"),
        )
    };
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        *rest = tail;
        Some(head)
    }
    fn vector<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = take(rest, 2)?;
        take(rest, usize::from(u16::from_be_bytes([len[0], len[1]])))
    }
    let mut rest = list;
    let mut scts = vector(&mut rest).ok_or_else(|| bad("truncated list"))?;
    if !rest.is_empty() || scts.is_empty() {
        return Err(bad("the list length does not match, or the list is empty"));
    }
    while !scts.is_empty() {
        let mut sct = vector(&mut scts).ok_or_else(|| bad("truncated SCT"))?;
        let version = take(&mut sct, 1).ok_or_else(|| bad("empty SCT"))?;
        if version != [0] {
            return Err(bad("only v1 SCTs are accepted"));
        }
        let parsed = take(&mut sct, 32)
            .and_then(|_log_id| take(&mut sct, 8))
            .and_then(|_timestamp| vector(&mut sct))
            .and_then(|_extensions| take(&mut sct, 2))
            .and_then(|_algorithms| vector(&mut sct));
        match parsed {
            Some(signature) if !signature.is_empty() && sct.is_empty() => {}
            _ => {
                return Err(bad(
                    "an SCT is truncated, has no signature, or has trailing bytes",
                ));
            }
        }
    }
    Ok(())
}

/// Records a refusal (best effort) and counts it; returns the error to send.
async fn refuse(
    p: &Pipeline,
    caller: Caller,
    issuer: Option<String>,
    e: ApiError,
    summary: serde_json::Value,
) -> ApiError {
    p.metrics.rejected(&e.code);
    let field = (!e.field.is_empty()).then_some(e.field.as_str());
    let entry = Entry::refusal(
        issuer.as_deref(),
        &e.code,
        field,
        &e.message,
        caller,
        &summary,
    );
    if let Err(audit_err) = p.audit.append(entry).await {
        eprintln!(
            "audit: could not record a refusal ({}): {audit_err}",
            e.code
        );
    }
    e
}

/// The response body for a recorded certificate.
pub fn response(
    recorded: &Recorded,
) -> Result<crate::service::wire::CertificateResponse, ApiError> {
    let der = recorded
        .der()
        .ok_or_else(|| internal("recorded entry has no certificate"))?;
    let (serial, validity) = x509::serial_and_validity(der).map_err(internal)?;
    let certificate = Base64::encode_string(der);
    Ok(crate::service::wire::CertificateResponse {
        serial: hex::encode(serial.as_bytes()),
        not_before: crate::ceremony::transcript::rfc3339(validity.not_before.to_system_time()),
        not_after: crate::ceremony::transcript::rfc3339(validity.not_after.to_system_time()),
        pem: x509::pem_from_base64("CERTIFICATE", &certificate),
        certificate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use der::{Decode as _, Encode as _};
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn secs(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    /// 1970 .. 9999-12-31, whole seconds: what DER times can carry.
    const LAST_DER_SECOND: u64 = 253_402_300_799;

    proptest! {
        // RFC 5280 4.1.2.2, BR 7.1: positive, 17 octets, the prefix first, minimal DER INTEGER.
        #[test]
        fn serials_are_positive_17_octets_prefix_first(
            prefix in 1u8..=127,
            random in any::<[u8; SERIAL_RANDOM_OCTETS]>(),
        ) {
            let serial = serial_number(prefix, &random).unwrap();
            let octets = serial.as_bytes();
            prop_assert_eq!(octets.len(), 17);
            prop_assert_eq!(octets[0], prefix);
            prop_assert_eq!(&octets[1..], &random[..]);
            let der = serial.to_der().unwrap();
            // INTEGER, short length, 17 content octets, first bit clear (positive), not zero-led.
            prop_assert_eq!(&der[..2], &[0x02, 17][..]);
            prop_assert!(der[2] & 0x80 == 0 && der[2] != 0);
            let back: SerialNumber = SerialNumber::from_der(&der).unwrap();
            prop_assert_eq!(back.as_bytes(), octets);
            prop_assert!(octets.len() <= 20);
        }

        #[test]
        fn serial_prefixes_outside_1_to_127_are_refused(
            prefix in prop_oneof![Just(0u8), 128u8..=255],
            random in any::<[u8; SERIAL_RANDOM_OCTETS]>(),
        ) {
            prop_assert_eq!(serial_number(prefix, &random).unwrap_err().code, "internal");
        }

        // BR 7.1.2.7, 6.3.2, RFC 5280 4.1.2.5 and 6.1.3.
        #[test]
        fn validity_window_rules(
            now in 86_400u64..4_000_000_000,
            back in proptest::option::of(-100_000i64..100_000),
            validity_s in 1u64..=398 * 86_400,
            max_backdate_s in 0u64..=86_400,
            issuer_slack in -1_000_000i64..100_000_000,
        ) {
            let now_t = secs(now);
            let requested = back.map(|b| secs(now.saturating_add_signed(-b)));
            let (validity, max_backdate) =
                (Duration::from_secs(validity_s), Duration::from_secs(max_backdate_s));
            let issuer_not_after = secs(now.saturating_add_signed(issuer_slack));
            let got = validity_window(now_t, requested, validity, max_backdate, issuer_not_after);
            let not_before = requested.unwrap_or(now_t);
            let not_after = not_before + validity - Duration::from_secs(1);
            match got {
                Ok((nb, na)) => {
                    prop_assert_eq!(nb, not_before);
                    prop_assert_eq!(na, not_after);
                    prop_assert!(nb <= now_t);
                    prop_assert!(now_t.duration_since(nb).unwrap() <= max_backdate);
                    prop_assert!(na <= issuer_not_after);
                    prop_assert_eq!(na.duration_since(nb).unwrap() + Duration::from_secs(1), validity);
                }
                Err(e) => {
                    let expected = if not_before > now_t {
                        "policy.validity.future"
                    } else if now_t.duration_since(not_before).unwrap() > max_backdate {
                        "policy.validity.backdate"
                    } else {
                        prop_assert!(not_after > issuer_not_after);
                        "policy.validity.issuer_expiry"
                    };
                    prop_assert_eq!(e.code.as_str(), expected);
                    prop_assert!(!e.field.is_empty());
                }
            }
        }

        // Whole seconds survive DER both ways; UTCTime through 2049, GeneralizedTime after.
        #[test]
        fn validity_round_trips_through_der(
            nb in 0u64..LAST_DER_SECOND,
            len in 0u64..400 * 86_400,
        ) {
            let (not_before, not_after) = (secs(nb), secs((nb + len).min(LAST_DER_SECOND)));
            let validity = encode_validity(not_before, not_after).unwrap();
            let der = validity.to_der().unwrap();
            let back: x509_cert::time::Validity = x509_cert::time::Validity::from_der(&der).unwrap();
            prop_assert_eq!(back.not_before.to_system_time(), not_before);
            prop_assert_eq!(back.not_after.to_system_time(), not_after);
            // 2050-01-01T00:00:00Z
            let utc = |t: &x509_cert::time::Time, s: u64| {
                matches!(t, x509_cert::time::Time::UtcTime(_)) == (s < 2_524_608_000)
            };
            prop_assert!(utc(&back.not_before, nb));
            prop_assert!(utc(&back.not_after, (nb + len).min(LAST_DER_SECOND)));
        }
    }

    #[test]
    fn validity_edges() {
        let day = Duration::from_secs(86_400);
        let now = secs(1_800_000_000);
        // The issuer's last second is allowed; one second more is not.
        let (_, na) =
            validity_window(now, None, day, day, now + day - Duration::from_secs(1)).unwrap();
        assert_eq!(na, now + day - Duration::from_secs(1));
        let err =
            validity_window(now, None, day, day, now + day - Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.code, "policy.validity.issuer_expiry");
        // Backdating exactly the limit is allowed; one second more is not.
        assert!(validity_window(now, Some(now - day), day, day, now + day).is_ok());
        let err = validity_window(
            now,
            Some(now - day - Duration::from_secs(1)),
            day,
            day,
            now + day,
        )
        .unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.field.as_str()),
            ("policy.validity.backdate", "not_before")
        );
        let err = validity_window(
            now,
            Some(now + Duration::from_secs(1)),
            day,
            day,
            now + day * 2,
        )
        .unwrap_err();
        assert_eq!(err.code, "policy.validity.future");
        // No overflow panic at the end of time.
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert!(validity_window(far, None, Duration::from_secs(u64::MAX / 2), day, far).is_err());
        assert_eq!(encode_validity(far, far).unwrap_err().code, "internal");
    }

    /// A v1 SCT with the given signature length, and the list around `n` of them.
    pub(crate) fn sct_list(n: usize, sig_len: usize) -> Vec<u8> {
        let mut sct = vec![0u8];
        sct.extend([7u8; 32]);
        sct.extend(1_700_000_000_000u64.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((sig_len as u16).to_be_bytes());
        sct.extend(vec![9u8; sig_len]);
        let mut body = Vec::new();
        for _ in 0..n {
            body.extend((sct.len() as u16).to_be_bytes());
            body.extend(&sct);
        }
        let mut list = (body.len() as u16).to_be_bytes().to_vec();
        list.extend(body);
        list
    }

    #[test]
    fn sct_list_structure() {
        assert!(check_sct_list(&sct_list(1, 70)).is_ok());
        assert!(check_sct_list(&sct_list(2, 71)).is_ok());
        assert!(check_sct_list(&sct_list(1, 0)).is_err(), "no signature");
        assert!(check_sct_list(&sct_list(0, 70)).is_err(), "empty list");
        let mut trailing = sct_list(1, 70);
        trailing.push(0);
        assert!(check_sct_list(&trailing).is_err());
        let mut v2 = sct_list(1, 70);
        v2[4] = 1;
        assert!(check_sct_list(&v2).is_err());
        assert!(
            check_sct_list(&[0, 4, 0, 2, 0xaa, 0xbb]).is_err(),
            "not an SCT"
        );
        assert!(check_sct_list(&[]).is_err());
    }
}
