//! The signing service: HTTP/1.1 + JSON on a Unix socket.
//!
//! ```text
//!   accept ─▶ SO_PEERCRED ─▶ caller allowed? (403 before the body is read)
//!          ─▶ route ─▶ issue::issue / issue::finalize ─▶ Recorded ─▶ JSON
//! ```
//!
//! [`serve`] runs until `shutdown` completes, then stops accepting and lets requests in flight
//! finish (a signing already past policy is completed and recorded before the process exits).

pub mod metrics;
pub mod wire;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use serde_json::json;
use tokio::net::UnixListener;

use self::wire::{ApiError, FinalRequest, IssueRequest};
use crate::audit::Caller;
use crate::config::Config;
use crate::issue::{self, Pipeline};

/// The peer's credentials, from SO_PEERCRED at accept time.
#[derive(Clone, Copy, Debug)]
pub struct PeerCred {
    /// uid and gid, or `None` when the kernel did not say.
    pub caller: Option<Caller>,
}

impl Connected<IncomingStream<'_, UnixListener>> for PeerCred {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        PeerCred {
            caller: stream.io().peer_cred().ok().map(|c| Caller {
                uid: c.uid(),
                gid: c.gid(),
            }),
        }
    }
}

/// Opens everything the service needs: the PIN, the HSM session pool, the issuers' keys
/// (each checked against its certificate) and the audit store.
pub fn start(config: Config) -> Result<Arc<Pipeline>, String> {
    let pin = config
        .pin
        .read(&format!("user PIN for {}", config.token))
        .map_err(|e| format!("hsm.pin: {e}"))?;
    let hsm = crate::hsm::Hsm::open_pool(&config.module, &config.token, &pin, config.sessions)
        .map_err(|e| format!("hsm: {e}"))?;
    drop(pin);
    let issuers = config
        .issuers
        .iter()
        .map(|c| issue::Issuer::load(&hsm, c.clone()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let audit = crate::audit::AuditLog::open(&config.store)
        .map_err(|e| format!("audit store {}: {e}", config.store.display()))?;
    let crl_locks = issuers
        .iter()
        .map(|i| (i.config.name.clone(), tokio::sync::Mutex::new(())))
        .collect();
    Ok(Arc::new(Pipeline {
        hsm: Arc::new(hsm),
        crl_locks,
        issuers,
        config,
        audit,
        metrics: metrics::Metrics::default(),
    }))
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
            ApiError::new(
                StatusCode::FORBIDDEN,
                "caller.not_allowed",
                "",
                format!(
                    "uid {} / gid {} is not an allowed caller",
                    caller.uid, caller.gid
                ),
            )
            .into_response()
        }
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "caller.unknown",
            "",
            "no peer credentials",
        )
        .into_response(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                "",
                "the request body is over the configured limit",
            )
        } else {
            ApiError::bad_request("request.malformed", "", e.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "request.malformed",
            "",
            format!("invalid JSON request: {e}"),
        )
    })
}

async fn post_certificate(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let req: IssueRequest = parse(body).inspect_err(|e| p.metrics.rejected(&e.code))?;
    let recorded = issue::issue(p.clone(), caller, req).await?;
    let response = issue::response(&recorded)?;
    p.metrics.latency.observe(started.elapsed().as_secs_f64());
    Ok((StatusCode::CREATED, axum::Json(response)).into_response())
}

async fn post_final(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(serial): UrlPath<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let req: FinalRequest = parse(body).inspect_err(|e| p.metrics.rejected(&e.code))?;
    let recorded = issue::finalize(p.clone(), caller, &serial, &req.issuer, &req.sct_list).await?;
    Ok((StatusCode::CREATED, axum::Json(issue::response(&recorded)?)).into_response())
}

async fn post_crl(
    State(p): State<Arc<Pipeline>>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    // The body is parsed while it arrives, within max-crl-body-bytes (see revoke::read_request).
    let req = crate::revoke::read_request(&headers, body, p.config.max_crl_body_bytes)
        .await
        .inspect_err(|e| p.metrics.rejected(&e.code))?;
    let crl = crate::revoke::sign_crl(p.clone(), caller, req)
        .await
        .inspect_err(|e| p.metrics.rejected(&e.code))?;
    Ok(crl.into_response(crate::revoke::wants_der(&headers)))
}

async fn post_ocsp(
    State(p): State<Arc<Pipeline>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    use base64ct::{Base64, Encoding};
    let req: crate::revoke::OcspRequest =
        parse(body).inspect_err(|e| p.metrics.rejected(&e.code))?;
    let mut responses = crate::revoke::sign_ocsp(
        p.clone(),
        &req.issuer,
        &req.this_update,
        &req.next_update,
        &[req.status],
        false,
    )
    .await
    .inspect_err(|e| p.metrics.rejected(&e.code))?;
    let response = responses.pop().unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"response": Base64::encode_string(&response)})),
    )
        .into_response())
}

async fn post_ocsp_batch(
    State(p): State<Arc<Pipeline>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    use base64ct::{Base64, Encoding};
    let req: crate::revoke::OcspBatchRequest =
        parse(body).inspect_err(|e| p.metrics.rejected(&e.code))?;
    let responses = crate::revoke::sign_ocsp(
        p.clone(),
        &req.issuer,
        &req.this_update,
        &req.next_update,
        &req.statuses,
        true,
    )
    .await
    .inspect_err(|e| p.metrics.rejected(&e.code))?;
    let responses: Vec<String> = responses.iter().map(|r| Base64::encode_string(r)).collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"responses": responses})),
    )
        .into_response())
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
            })
        })
        .collect();
    let mut profiles: Vec<_> = p.config.profiles.values().collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    axum::Json(json!({"issuers": issuers, "profiles": profiles})).into_response()
}

async fn get_health(State(p): State<Arc<Pipeline>>) -> Response {
    let p2 = p.clone();
    let keys = tokio::task::spawn_blocking(move || {
        p2.issuers
            .iter()
            .map(|i| {
                (
                    i.config.name.clone(),
                    p2.hsm.find_key(&i.config.key).is_ok(),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let hsm_ok = !keys.is_empty() && keys.iter().all(|(_, ok)| *ok);
    let audit_ok = p.audit.check_writable().await.is_ok();
    let status = if hsm_ok && audit_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let keys: serde_json::Map<String, serde_json::Value> =
        keys.into_iter().map(|(n, ok)| (n, json!(ok))).collect();
    (
        status,
        axum::Json(json!({
            "hsm": {"reachable": hsm_ok, "logged_in": hsm_ok, "token": p.hsm.description().label, "keys_found": keys},
            "audit": {"writable": audit_ok},
        })),
    )
        .into_response()
}

async fn get_metrics(State(p): State<Arc<Pipeline>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        p.metrics.render(),
    )
        .into_response()
}

/// The router, with the caller check in front of every route.
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
        .route_layer(middleware::from_fn_with_state(p.clone(), authorize))
        .with_state(p)
}

/// Serves on `listener` until `shutdown` completes, then drains requests in flight.
pub async fn serve(
    listener: UnixListener,
    p: Arc<Pipeline>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(p).into_make_service_with_connect_info::<PeerCred>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Fails if a process answers on the socket path (another service is running there).
pub fn check_socket_free(path: &Path) -> Result<(), String> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!("{} is held by a running process", path.display()));
    }
    Ok(())
}

/// Binds the socket: removes a stale socket file (only if it is a socket no process answers
/// on), then sets the configured mode and group.
pub fn bind(config: &Config) -> Result<UnixListener, String> {
    let path = &config.socket;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; refusing to remove it",
                path.display()
            ));
        }
        check_socket_free(path)?;
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    set_mode(path, config.socket_mode, config.socket_gid)?;
    Ok(listener)
}

fn set_mode(path: &Path, mode: u32, gid: Option<u32>) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| format!("cannot set the group of {}: {e}", path.display()))?;
    }
    Ok(())
}
