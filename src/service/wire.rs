//! The JSON bodies of the service's API, and the one place errors become HTTP statuses: this is
//! the only module that names a status code.
//!
//! Every error is `{"error": {"code", "field", "message"}}` with a stable `code`. Statuses: 400
//! for requests that break policy or are malformed, 403 for callers not allowed, 404 for unknown
//! serials, 408 for a body not sent in time, 409 for a second final certificate, 413 for bodies
//! over the limit, 500 for our own bugs (a lint finding on our own output), 503 when the HSM or
//! the audit store cannot be used. (hyper itself answers 431 to a request head over the limit.)

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::audit::Recorded;
use crate::issue;
pub use crate::issue::IssueRequest;
use crate::x509;

/// `POST /v1/certificates/{serial}/final`.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FinalRequest {
    /// Issuer name; default: the first configured issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Base64 of the TLS-encoded SignedCertificateTimestampList (RFC 6962 3.3).
    pub sct_list: String,
}

/// A signed certificate or precertificate.
#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct CertificateResponse {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Base64 DER.
    pub certificate: String,
    /// PEM.
    pub pem: String,
}

impl CertificateResponse {
    /// The response body for a recorded certificate.
    ///
    /// # Errors
    /// `internal` when the record holds no certificate or its DER does not decode.
    pub fn new(recorded: &Recorded) -> Result<Self, issue::Error> {
        let der = recorded
            .der()
            .ok_or_else(|| issue::internal("recorded entry has no certificate"))?;
        let (serial, validity) = x509::serial_and_validity(der).map_err(issue::internal)?;
        let certificate = Base64::encode_string(der);
        Ok(CertificateResponse {
            serial: hex::encode(serial.as_bytes()),
            not_before: crate::time::rfc3339(validity.not_before.to_system_time()),
            not_after: crate::time::rfc3339(validity.not_after.to_system_time()),
            pem: x509::pem_from_base64("CERTIFICATE", &certificate),
            certificate,
        })
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    field: &'a str,
    message: &'a str,
}

/// The HTTP status of each error: the one place the service chooses one.
///
/// 400: the request breaks policy, is malformed, or names nothing we have. 403: the caller is
/// not allowed. 404: no such precertificate. 408: the body did not arrive in time. 409: a final
/// certificate already exists or is being made. 413: the body is over the limit. 500: our own
/// bug (a lint finding on our own output, a signature that did not verify, any other HSM error of
/// one call). 503: the HSM or the audit store cannot be used; retry later.
fn status(e: &Error) -> StatusCode {
    let e = match e {
        Error::CallerNotAllowed(_) | Error::CallerUnknown => return StatusCode::FORBIDDEN,
        Error::BodyTimeout(_) => return StatusCode::REQUEST_TIMEOUT,
        Error::Issue(e) => e,
    };
    match e {
        issue::Error::Policy(_) | issue::Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        issue::Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        issue::Error::UnknownPrecertificate => StatusCode::NOT_FOUND,
        issue::Error::FinalInProgress | issue::Error::AlreadyFinal => StatusCode::CONFLICT,
        e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = self.message();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                field: self.field(),
                message: &message,
            },
        };
        (status(&self), Json(body)).into_response()
    }
}

/// A 201 Created carrying `body` (a JSON body, or headers and a body).
pub fn created(body: impl IntoResponse) -> Response {
    (StatusCode::CREATED, body).into_response()
}

/// The health answer: 200 when everything it checked is usable, 503 otherwise.
pub fn health(ok: bool, body: impl IntoResponse) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}
