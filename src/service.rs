//! The signing service: HTTP/1.1 + JSON on a Unix socket.
//!
//! ```text
//!   accept ─▶ SO_PEERCRED ─▶ caller allowed? (403 before the body is read)
//!          ─▶ route ─▶ issue::issue / issue::finalize ─▶ Recorded ─▶ JSON
//! ```
//!
//! [`serve`] runs until `shutdown` completes, then stops accepting and lets requests in flight
//! finish (a signing already past policy is completed and recorded before the process exits).

pub mod wire;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::UnixListener;

use self::wire::{FinalRequest, IssueRequest};
use crate::audit::{Caller, Entry};
use crate::config::Config;
use crate::issue::{self, Pipeline};
use crate::metrics;

/// The peer's credentials, from SO_PEERCRED at accept time (a request extension, as
/// `ConnectInfo<PeerCred>`).
#[derive(Clone, Copy, Debug)]
pub struct PeerCred {
    /// uid and gid, or `None` when the kernel did not say.
    pub caller: Option<Caller>,
}

/// Why the service answers a request with an error: the caller, the body's arrival, or the
/// signing pipeline. `wire` turns it into the HTTP answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's uid and gid are not allowed by the configuration (`caller.not_allowed`).
    #[error("uid {} / gid {} is not an allowed caller", .0.uid, .0.gid)]
    CallerNotAllowed(Caller),
    /// The kernel gave no peer credentials (`caller.unknown`).
    #[error("no peer credentials")]
    CallerUnknown,
    /// The body did not arrive within `service.body-timeout-seconds` (`request.timeout`).
    #[error("{0} (service.body-timeout-seconds)")]
    BodyTimeout(BodyTimeout),
    /// The request was refused or failed in the pipeline.
    #[error(transparent)]
    Issue(#[from] issue::Error),
}

impl Error {
    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Error::CallerNotAllowed(_) => "caller.not_allowed",
            Error::CallerUnknown => "caller.unknown",
            Error::BodyTimeout(_) => "request.timeout",
            Error::Issue(e) => e.code(),
        }
    }

    /// The request field the error concerns, or "".
    pub fn field(&self) -> &str {
        match self {
            Error::Issue(e) => e.field(),
            _ => "",
        }
    }

    /// What is wrong, and which rule says so.
    pub fn message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Error::Issue(e) => e.message(),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }
}

/// Why the service did not start. Every message names what failed and the file or setting
/// concerned; none carries the PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The user PIN could not be read.
    #[error("hsm.pin: {0}")]
    Pin(crate::secret::PinError),
    /// The token could not be opened or logged in to.
    #[error("hsm: {0}")]
    Hsm(crate::hsm::Error),
    /// An issuer's key or certificate does not fit.
    #[error(transparent)]
    Issuer(#[from] crate::issuer::LoadError),
    /// The audit store could not be opened.
    #[error("audit store {store}: {source}")]
    AuditOpen {
        /// The store's path.
        store: String,
        /// What failed.
        source: crate::audit::Error,
    },
    /// The audit store's chain could not be read.
    #[error("audit store {store}: {source}")]
    AuditVerify {
        /// The store's path.
        store: String,
        /// What failed.
        source: crate::audit::VerifyError,
    },
    /// The audit store's chain does not verify and the break was not accepted.
    #[error(
        "audit store {store}: {source}; refusing to start (check the store with `strongroom \
         audit verify`; to start anyway and record the break, pass --accept-broken-audit-chain)"
    )]
    BrokenChain {
        /// The store's path.
        store: String,
        /// Where and how the chain breaks.
        source: crate::audit::VerifyError,
    },
    /// The accepted chain break could not be recorded.
    #[error("cannot record the accepted chain break: {0}")]
    RecordBreak(crate::audit::Error),
    /// The socket could not be made ready.
    #[error(transparent)]
    Socket(#[from] SocketError),
}

/// Why the service's socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// A process answers on the socket path: another service is running there.
    #[error("{} is held by a running process", .0.display())]
    Held(std::path::PathBuf),
    /// Something other than a socket is at the path; it is left alone.
    #[error("{} exists and is not a socket; refusing to remove it", .0.display())]
    NotASocket(std::path::PathBuf),
    /// A file operation on the socket path failed.
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. "bind" or "set the mode of".
        what: &'static str,
        /// The socket path.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

fn socket_io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io { what, path, source }
}

/// What `strongroom serve` was told on its command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Start even if the audit store's chain does not verify (`--accept-broken-audit-chain`);
    /// the break accepted is recorded in the store as an `event` record.
    pub accept_broken_audit_chain: bool,
}

/// Opens everything the service needs: the PIN, the HSM session pool, the issuers' keys (each
/// checked against its certificate) and the audit store (its chain verified).
///
/// Refuses to start on a store whose chain does not verify unless
/// [`StartOptions::accept_broken_audit_chain`] is set; then, once everything else has opened,
/// it appends an `audit.chain.break_accepted` event naming the break, so the acceptance is itself
/// in the record.
pub fn start(config: Config, options: StartOptions) -> Result<Arc<Pipeline>, StartError> {
    let mut profiles: Vec<_> = config.profiles.values().collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    for warning in profiles
        .iter()
        .filter_map(|p| p.validity_warning(std::time::SystemTime::now()))
    {
        eprintln!("strongroom: WARNING: {warning}");
    }
    let pin = config
        .pin
        .read(&format!("user PIN for {}", config.token))
        .map_err(StartError::Pin)?;
    let hsm_options = crate::hsm::Options {
        call_timeout: config.hsm_call_timeout,
        ..crate::hsm::Options::default()
    };
    let hsm = crate::hsm::Hsm::open_with(
        &config.module,
        &config.token,
        &pin,
        config.sessions,
        hsm_options,
    )
    .map_err(StartError::Hsm)?;
    drop(pin);
    let issuers = config
        .issuers
        .iter()
        .map(|c| crate::issuer::Issuer::load(&hsm, c.clone()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let audit =
        crate::audit::AuditLog::open_with_commit_delay(&config.store, config.audit_commit_delay)
            .map_err(|source| StartError::AuditOpen {
                store: config.store.display().to_string(),
                source,
            })?;
    // The writer has opened the store (and replayed its WAL after a crash); check every link.
    let accepted = match crate::audit::verify(&config.store) {
        Ok(_) => None,
        Err(
            e @ (crate::audit::VerifyError::Broken { .. } | crate::audit::VerifyError::Corrupt(_)),
        ) => {
            if !options.accept_broken_audit_chain {
                return Err(StartError::BrokenChain {
                    store: config.store.display().to_string(),
                    source: e,
                });
            }
            Some(e)
        }
        Err(e) => {
            return Err(StartError::AuditVerify {
                store: config.store.display().to_string(),
                source: e,
            });
        }
    };
    if let Some(e) = accepted {
        record_accepted_break(&audit, &e)?;
    }
    let crl_locks = issuers
        .iter()
        .map(|i| (i.config.name.clone(), tokio::sync::Mutex::new(())))
        .collect();
    let metrics = metrics::Metrics::default();
    let m = metrics.clone();
    hsm.on_health_change(move |up| {
        let _ = m.hsm_up.set(i64::from(up));
        if !up {
            let _ = m.hsm_outages.inc();
        }
    });
    Ok(Arc::new(Pipeline {
        hsm: Arc::new(hsm),
        crl_locks,
        issuers,
        config,
        audit,
        metrics,
        detached: issue::Detached::default(),
        finals_in_progress: std::sync::Mutex::default(),
    }))
}

/// Appends the event that records a start on a broken chain, and says so on stderr.
fn record_accepted_break(
    audit: &crate::audit::AuditLog,
    e: &crate::audit::VerifyError,
) -> Result<(), StartError> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self")
        .map(|m| Caller {
            uid: m.uid(),
            gid: m.gid(),
        })
        .unwrap_or(Caller { uid: 0, gid: 0 });
    let summary = match e {
        crate::audit::VerifyError::Broken { seq, reason } => {
            json!({"broken_at": seq, "reason": reason.to_string()})
        }
        other => json!({"reason": other.to_string()}),
    };
    let message = format!(
        "the service was started with --accept-broken-audit-chain on a store whose chain does \
         not verify ({e}); records before this one cannot be trusted from the chain alone"
    );
    let recorded = audit
        .append_blocking(Entry::event(
            "audit.chain.break_accepted",
            &message,
            me,
            &summary,
        ))
        .map_err(StartError::RecordBreak)?;
    eprintln!(
        "strongroom: WARNING: AUDIT CHAIN BROKEN AND ACCEPTED: {e}; recorded as event {}",
        recorded.seq()
    );
    Ok(())
}

/// Whether the configuration allows this caller (deny by default).
pub fn allowed(config: &Config, caller: &Caller) -> bool {
    config
        .callers
        .iter()
        .any(|r| r.uid == Some(caller.uid) || r.gid == Some(caller.gid))
}

async fn authorize(
    State(p): State<Arc<Pipeline>>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    mut request: Request,
    next: Next,
) -> Response {
    match peer.caller {
        Some(caller) if allowed(&p.config, &caller) => {
            let _ = request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Some(caller) => {
            p.metrics.rejected("caller.not_allowed");
            Error::CallerNotAllowed(caller).into_response()
        }
        None => Error::CallerUnknown.into_response(),
    }
}

/// The error a request body gives when the client did not send it within
/// `service.body-timeout-seconds`.
#[derive(Debug)]
pub struct BodyTimeout(std::time::Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} seconds",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] once its deadline passes, however the client
/// paces its bytes.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: std::time::Duration,
}

impl axum::body::HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Gives the request body a deadline (`service.body-timeout-seconds`, counted from when the
/// head was read), so a client that sends its body slowly cannot hold a connection and a
/// handler; [`parse`] turns the deadline's error into 408 `request.timeout`.
async fn body_deadline(State(p): State<Arc<Pipeline>>, request: Request, next: Next) -> Response {
    let timeout = p.config.body_timeout;
    let request = request.map(|inner| {
        axum::body::Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        })
    });
    next.run(request).await
}

fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, Error> {
    use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
    let body = body.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(timeout) = err.downcast_ref::<BodyTimeout>() {
                return Error::BodyTimeout(BodyTimeout(timeout.0));
            }
            source = err.source();
        }
        if matches!(
            e,
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))
        ) {
            issue::Error::TooLarge {
                message: "the request body is over the configured limit",
            }
            .into()
        } else {
            issue::Error::invalid("request.malformed", "", e.body_text()).into()
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        issue::Error::invalid(
            "request.malformed",
            "",
            format!("invalid JSON request: {e}"),
        )
        .into()
    })
}

async fn post_certificate(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    let started = Instant::now();
    let req: IssueRequest = parse(body).inspect_err(|e| p.metrics.rejected(e.code()))?;
    let recorded = issue::issue(p.clone(), caller, req).await?;
    let response = wire::CertificateResponse::new(&recorded)?;
    p.metrics.latency.observe(started.elapsed().as_secs_f64());
    Ok(wire::created(axum::Json(response)))
}

async fn post_final(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(serial): UrlPath<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    let req: FinalRequest = parse(body).inspect_err(|e| p.metrics.rejected(e.code()))?;
    let recorded = issue::finalize(p.clone(), caller, serial, req.issuer, req.sct_list).await?;
    Ok(wire::created(axum::Json(wire::CertificateResponse::new(
        &recorded,
    )?)))
}

async fn post_crl(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Error> {
    // The body is parsed while it arrives, within max-crl-body-bytes (see revoke::read_request).
    let req = crate::revoke::read_request(&headers, body, p.config.max_crl_body_bytes)
        .await
        .inspect_err(|e| p.metrics.rejected(e.code()))?;
    let crl = crate::revoke::sign_crl(p.clone(), caller, req)
        .await
        .inspect_err(|e| p.metrics.rejected(e.code()))?;
    Ok(wire::created(
        crl.into_response(crate::revoke::wants_der(&headers)),
    ))
}

async fn post_ocsp(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    use base64ct::{Base64, Encoding};
    let req: crate::revoke::OcspRequest =
        parse(body).inspect_err(|e| p.metrics.rejected(e.code()))?;
    let (mut responses, _recorded) = crate::revoke::sign_ocsp(
        p.clone(),
        caller,
        req.issuer,
        req.this_update,
        req.next_update,
        vec![req.status],
        false,
    )
    .await
    .inspect_err(|e| p.metrics.rejected(e.code()))?;
    let response = responses.pop().unwrap_or_default();
    Ok(wire::created(axum::Json(
        json!({"response": Base64::encode_string(&response)}),
    )))
}

async fn post_ocsp_batch(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    use base64ct::{Base64, Encoding};
    let req: crate::revoke::OcspBatchRequest =
        parse(body).inspect_err(|e| p.metrics.rejected(e.code()))?;
    let (responses, _recorded) = crate::revoke::sign_ocsp(
        p.clone(),
        caller,
        req.issuer,
        req.this_update,
        req.next_update,
        req.statuses,
        true,
    )
    .await
    .inspect_err(|e| p.metrics.rejected(e.code()))?;
    let responses: Vec<String> = responses.iter().map(|r| Base64::encode_string(r)).collect();
    Ok(wire::created(axum::Json(json!({"responses": responses}))))
}

async fn get_issuers(State(p): State<Arc<Pipeline>>) -> Response {
    let issuers: Vec<_> = p
        .issuers
        .iter()
        .map(|i| {
            json!({
                "name": i.config.name,
                "certificate": i.config.certificate_pem,
                "key_type": i.key.key_type.to_string(),
                "signature_algorithm": i.signer.alg.to_string(),
                "crl_shards": i.config.crl_shards,
                "ocsp_responder": i.responder.delegate().map(|c| {
                    der::Encode::to_der(c)
                        .ok()
                        .and_then(|d| crate::x509::to_pem("CERTIFICATE", &d).ok())
                }),
            })
        })
        .collect();
    let mut profiles: Vec<_> = p.config.profiles.values().collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    axum::Json(json!({"issuers": issuers, "profiles": profiles})).into_response()
}

/// How long `/v1/health` waits for the HSM probe's answer.
const HEALTH_PROBE_BOUND: std::time::Duration = std::time::Duration::from_millis(500);

/// `/v1/health`: answers within [`HEALTH_PROBE_BOUND`] (plus the audit check) whatever the HSM
/// does. An HSM the pool has marked unavailable answers at once; a healthy one is probed, and a
/// probe that has not answered within the bound makes the answer 503 (`reachable: false`, and
/// `state` still "healthy" until the call deadline passes). The probe is not abandoned: the pool
/// holds it to the call deadline like any call, and declares the outage when that passes, which
/// the next health check reports as `state: "unavailable"`.
async fn get_health(State(p): State<Arc<Pipeline>>) -> Response {
    let probe = async {
        match tokio::time::timeout(HEALTH_PROBE_BOUND, p.hsm.probe_async()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "the HSM did not answer the health probe within {} ms; it is marked unavailable \
                 if the call is still running after its deadline of {} ms",
                HEALTH_PROBE_BOUND.as_millis(),
                p.hsm.options().call_timeout.as_millis()
            )),
        }
    };
    let (probe, audit) = tokio::join!(probe, p.audit.check_writable());
    let hsm_status = p.hsm.status();
    let hsm_ok = probe.is_ok() && hsm_status.healthy;
    let keys: serde_json::Map<String, serde_json::Value> = p
        .issuers
        .iter()
        .map(|i| (i.config.name.clone(), json!(hsm_ok)))
        .collect();
    let audit_ok = audit.is_ok();
    wire::health(
        hsm_ok && audit_ok,
        axum::Json(json!({
            "hsm": {
                "reachable": hsm_ok,
                "logged_in": hsm_ok,
                "token": p.hsm.description().label,
                "keys_found": keys,
                "state": hsm_status.state,
                "error": hsm_status.error.or(probe.err()),
                "unavailable_ms": hsm_status.unavailable_ms,
                "outages": hsm_status.outages,
                "recoveries": hsm_status.recoveries,
                "last_outage_ms": hsm_status.last_outage_ms,
                "reinitialisations": hsm_status.reinitialisations,
                "pin_refusals": hsm_status.pin_refusals,
                "recovery_attempts": hsm_status.recovery_attempts,
                "calls_in_flight_abandoned": hsm_status.calls_in_flight_abandoned,
            },
            "audit": {"writable": audit_ok},
        })),
    )
}

async fn get_metrics(State(p): State<Arc<Pipeline>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        p.metrics.render(p.audit.commits()),
    )
        .into_response()
}

/// The router, with the caller check in front of every route and a deadline on every body.
pub fn router(p: Arc<Pipeline>) -> Router {
    let limit = p.config.max_body_bytes;
    let crl_limit = p.config.max_crl_body_bytes;
    Router::new()
        .route("/v1/crls", post(post_crl))
        .route(
            "/v1/ocsp/batch",
            post(post_ocsp_batch).layer(DefaultBodyLimit::max(crl_limit)),
        )
        .route("/v1/ocsp", post(post_ocsp))
        .route("/v1/certificates", post(post_certificate))
        .route("/v1/certificates/{serial}/final", post(post_final))
        .route("/v1/issuers", get(get_issuers))
        .route("/v1/health", get(get_health))
        .route("/metrics", get(get_metrics))
        .route_layer(DefaultBodyLimit::max(limit))
        .route_layer(middleware::from_fn_with_state(p.clone(), body_deadline))
        .route_layer(middleware::from_fn_with_state(p.clone(), authorize))
        .with_state(p)
}

/// Serves on `listener` until `shutdown` completes, then drains requests in flight.
///
/// One task per connection, at most `service.max-connections` at once: a permit is taken before
/// `accept`, so connections over the cap wait in the socket's backlog until one closes. Each
/// connection's peer credentials are read (SO_PEERCRED) at accept time. hyper's HTTP/1 server
/// enforces the head limits: `max-header-bytes` (431 above it) and `header-timeout-seconds`
/// (counted from accept or from the previous response: the connection is closed when a whole
/// head has not arrived in time, so an idle keep-alive connection is closed after the same
/// time); `body_deadline` limits the time to send a body.
///
/// On shutdown the listener closes at once; each connection finishes the request it is serving
/// (a signing already past policy is completed and recorded) and then closes; then signing work
/// whose client has gone ([`Pipeline::detach`](crate::issue::Pipeline::detach)) is waited for.
pub async fn serve(
    listener: UnixListener,
    p: Arc<Pipeline>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let config = &p.config;
    let mut http = hyper::server::conn::http1::Builder::new();
    let _ = http
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let app = router(p.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    eprintln!("strongroom: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer = ConnectInfo(PeerCred {
            caller: stream.peer_cred().ok().map(|c| Caller {
                uid: c.uid(),
                gid: c.gid(),
            }),
        });
        let service = app.clone().map_request(move |mut request: Request<_>| {
            let _ = request.extensions_mut().insert(peer);
            request
        });
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        drop(tokio::spawn(async move {
            // A client that goes away or breaks the protocol only ends its own connection.
            let _ = connection.await;
            drop(slot);
        }));
    }
    drop(listener);
    graceful.shutdown().await;
    // Connections whose client hung up are gone, but their signing work may still run
    // detached: it is signed, verified and recorded before the process exits.
    p.detached.idle().await;
    eprintln!(
        "strongroom: stopped; HSM signatures by kind: {}",
        p.metrics.hsm_signatures_summary()
    );
    Ok(())
}

/// Fails if a process answers on the socket path (another service is running there).
pub fn check_socket_free(path: &Path) -> Result<(), SocketError> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(SocketError::Held(path.to_path_buf()));
    }
    Ok(())
}

/// Binds the socket: removes a stale socket file (only if it is a socket no process answers
/// on), then sets the configured mode and group.
pub fn bind(config: &Config) -> Result<UnixListener, SocketError> {
    let path = &config.socket;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SocketError::NotASocket(path.clone()));
        }
        check_socket_free(path)?;
        std::fs::remove_file(path).map_err(socket_io("remove stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(socket_io("bind", path))?;
    set_mode(path, config.socket_mode, config.socket_gid)?;
    Ok(listener)
}

fn set_mode(path: &Path, mode: u32, gid: Option<u32>) -> Result<(), SocketError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(socket_io("set the mode of", path))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(socket_io("set the group of", path))?;
    }
    Ok(())
}
