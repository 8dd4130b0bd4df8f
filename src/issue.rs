//! The issuance pipeline, top to bottom in one place:
//!
//! ```text
//!   IssueRequest ─policy─▶ Approved ─build, lint─▶ TBS ─HSM sign + software verify─▶ Signed
//!        │ (refusals are recorded too)                                                 │
//!        ▼                                                                             ▼
//!   issue::Error (refused)                              audit::append (fsync) ─▶ Recorded ─▶ response
//! ```
//!
//! [`Approved`] can only be made by [`approve`], which runs every policy check before any HSM
//! call; [`Recorded`] can only be made by the audit store after the record is durable, and the
//! service's handlers can only answer with a `Recorded`: no certificate leaves without a durable
//! record.

use std::sync::Arc;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
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
use crate::metrics::SignatureKind;
use crate::x509::{self, Ct, TlsServerProfile};

mod error;

pub use self::error::{BAD_SIGNATURE, Error};
pub(crate) use self::error::{internal, signing};
pub use crate::policy::{SERIAL_RANDOM_OCTETS, check_sct_list};

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
    pub metrics: crate::metrics::Metrics,
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

/// A certificate request, as `POST /v1/certificates` receives it.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Issuer name; default: the first configured issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Profile name.
    pub profile: String,
    /// Base64 SubjectPublicKeyInfo DER (exactly one of `public_key` and `csr`).
    #[serde(default)]
    pub public_key: Option<String>,
    /// PEM PKCS#10 request; its signature is checked and only its key is used.
    #[serde(default)]
    pub csr: Option<String>,
    /// dNSNames.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// IP addresses.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// notBefore, RFC 3339; at most the profile's backdate in the past, never in the future.
    #[serde(default)]
    pub not_before: Option<String>,
    /// Issue a CT precertificate (with the poison extension) instead of a certificate.
    #[serde(default)]
    pub precertificate: bool,
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
    pub fn issuer(&self, name: &Option<String>) -> Result<Arc<Issuer>, Error> {
        match name {
            None => Ok(self.issuers[0].clone()),
            Some(n) => self
                .issuers
                .iter()
                .find(|i| i.config.name == *n)
                .cloned()
                .ok_or_else(|| {
                    Error::invalid(
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
        work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
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

    fn profile(&self, name: &str) -> Result<&ProfileConfig, Error> {
        self.config.profiles.get(name).ok_or_else(|| {
            Error::invalid(
                "request.profile.unknown",
                "profile",
                format!("no profile named {name:?}"),
            )
        })
    }
}

/// Runs every policy check on a request; nothing here touches the HSM.
pub fn approve(p: &Pipeline, req: &IssueRequest) -> Result<Approved, Error> {
    let issuer = p.issuer(&req.issuer)?;
    let profile = p.profile(&req.profile)?;
    let policy = &p.config.policy;
    let spki = match (&req.public_key, &req.csr) {
        (Some(b64), None) => crate::policy::decode_spki(b64)?,
        (None, Some(pem)) => crate::policy::csr_public_key(pem)?,
        _ => {
            return Err(Error::invalid(
                "request.public_key.missing",
                "public_key",
                "give exactly one of public_key (base64 SPKI DER) and csr (PEM)",
            ));
        }
    };
    let key_type = crate::policy::check_key(&spki, policy)?;
    let names = crate::policy::check_names(&req.dns_names, &req.ip_addresses, policy)?;

    let requested = match &req.not_before {
        None => None,
        Some(t) => Some(
            crate::time::parse_time(t)
                .map_err(|e| Error::invalid("request.not_before.malformed", "not_before", e))?,
        ),
    };
    let (not_before, not_after) = crate::policy::validity_window(
        crate::time::now_seconds(),
        requested,
        profile.validity,
        profile.max_backdate,
        issuer.not_after,
    )?;
    let validity = crate::policy::encode_validity(not_before, not_after).map_err(internal)?;
    let mut random = [0u8; SERIAL_RANDOM_OCTETS];
    getrandom::fill(&mut random).map_err(|e| internal(format!("random serial: {e}")))?;
    let serial =
        crate::policy::serial_number(p.config.instance_prefix, &random).map_err(internal)?;

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

/// Runs a look-up in the audit store on the blocking pool. The look-up connection sits behind a
/// mutex that a CRL's or an OCSP batch's chunk of look-ups may hold for a while, and a tokio
/// worker must not wait on it.
pub(crate) async fn read_audit<T: Send + 'static>(
    p: &Arc<Pipeline>,
    read: impl FnOnce(&AuditLog) -> Result<T, audit::Error> + Send + 'static,
) -> Result<T, Error> {
    let p = Arc::clone(p);
    tokio::task::spawn_blocking(move || read(&p.audit))
        .await
        .map_err(internal)?
        .map_err(Error::Audit)
}

/// Issues a certificate or precertificate: policy, build, lint, sign, record. Refusals are
/// recorded too (best effort: a refusal is returned even if its record cannot be written).
///
/// The pipeline runs detached from the caller ([`Pipeline::detach`]): dropping the returned
/// future does not cancel a signing or its record.
pub async fn issue(p: Arc<Pipeline>, caller: Caller, req: IssueRequest) -> Result<Recorded, Error> {
    p.clone().detach(issue_attached(p, caller, req)).await
}

async fn issue_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    req: IssueRequest,
) -> Result<Recorded, Error> {
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
    p.audit.check_writable().await.map_err(Error::Audit)?;
    let issuer = approved.issuer.clone();
    // Fail fast while the HSM is unavailable: no build, no lint, no queueing.
    if let Err(e) = p.hsm.available() {
        p.metrics.hsm_errors.inc();
        return Err(refuse(
            &p,
            caller,
            Some(issuer.config.name.clone()),
            Error::Hsm(e),
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
    let cert = match signed.await {
        Ok(cert) => cert,
        Err(e) => {
            drop(announced);
            let e = signing(e);
            if e.code() == "hsm.unavailable" {
                p.metrics.hsm_errors.inc();
            }
            return Err(refuse(&p, caller, Some(issuer.config.name.clone()), e, summary).await);
        }
    };
    let entry = if precertificate {
        Entry::precertificate(issuer.config.name.as_str(), cert, caller, &summary)
    } else {
        Entry::certificate(issuer.config.name.as_str(), cert, caller, &summary)
    };
    let recorded = announced.append(entry).await.map_err(Error::Audit)?;
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
) -> Result<x509::SignedCert, x509::Error> {
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
    serial_hex: String,
    issuer: Option<String>,
    sct_list_b64: String,
) -> Result<Recorded, Error> {
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
) -> Result<FinalReservation, Error> {
    let key = (issuer.to_string(), serial.to_vec());
    let mut set = p
        .finals_in_progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !set.insert(key.clone()) {
        return Err(Error::FinalInProgress);
    }
    Ok(FinalReservation { p: p.clone(), key })
}

async fn finalize_attached(
    p: Arc<Pipeline>,
    caller: Caller,
    serial_hex: &str,
    issuer: &Option<String>,
    sct_list_b64: &str,
) -> Result<Recorded, Error> {
    let issuer = p.issuer(issuer)?;
    let serial = hex::decode(serial_hex).map_err(|_| {
        Error::invalid(
            "request.serial.malformed",
            "serial",
            "the serial must be hex",
        )
    })?;
    let sct_list = Base64::decode_vec(sct_list_b64.trim()).map_err(|_| {
        Error::invalid(
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
    let precert_der = precert_der.ok_or(Error::UnknownPrecertificate)?;
    if has_final {
        return Err(Error::AlreadyFinal);
    }
    p.audit.check_writable().await.map_err(Error::Audit)?;
    let precert: Certificate = der::Decode::from_der(&precert_der).map_err(internal)?;
    let tbs = x509::prepare_final(&precert, &sct_list).map_err(signing)?;
    // As in `issue`: the writer may hold its batch open for this record (withdrawn on error).
    let announced = p.audit.announce();
    let cert = sign_tbs(&p, &issuer, tbs, SignatureKind::Certificate)
        .await
        .map_err(signing)
        .inspect_err(|e| p.metrics.rejected(e.code()))?;
    let summary = json!({"final_of_precertificate": hex::encode(&serial)});
    let recorded = announced
        .append(Entry::certificate(name.as_str(), cert, caller, &summary))
        .await
        .map_err(|e| match e {
            audit::Error::DuplicateSerial { .. } => Error::AlreadyFinal,
            other => Error::Audit(other),
        })?;
    p.metrics.issued(&name, false);
    Ok(recorded)
}

/// Records a refusal (best effort) and counts it; returns the error to send.
async fn refuse(
    p: &Pipeline,
    caller: Caller,
    issuer: Option<String>,
    e: Error,
    summary: serde_json::Value,
) -> Error {
    let (code, message) = (e.code(), e.message());
    p.metrics.rejected(code);
    let field = (!e.field().is_empty()).then_some(e.field());
    let entry = Entry::refusal(issuer.as_deref(), code, field, &message, caller, &summary);
    if let Err(audit_err) = p.audit.append(entry).await {
        eprintln!("audit: could not record a refusal ({}): {audit_err}", code);
    }
    e
}
