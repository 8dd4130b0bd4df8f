//! The JSON bodies of the service's API, and the one place errors become HTTP statuses.
//!
//! Every error is `{"error": {"code", "field", "message"}}` with a stable `code`. Statuses: 400
//! for requests that break policy or are malformed, 403 for callers not allowed, 404 for unknown
//! serials, 408 for a body not sent in time, 409 for a second final certificate, 413 for bodies
//! over the limit, 500 for our own bugs (a lint finding on our own output), 503 when the HSM or
//! the audit store cannot be used. (hyper itself answers 431 to a request head over the limit.)

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/certificates`.
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

/// An API error: stable code, the request field it concerns, and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `policy.dns_name.public_suffix`.
    pub code: String,
    /// The request field, or "" when the error is not about one field.
    pub field: String,
    /// What is wrong and which rule says so.
    pub message: String,
}

impl ApiError {
    /// A 400 for a request that breaks policy or is malformed.
    pub fn bad_request(code: &str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, field, message)
    }

    /// Any status.
    pub fn new(status: StatusCode, code: &str, field: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<crate::policy::Error> for ApiError {
    fn from(e: crate::policy::Error) -> Self {
        ApiError::bad_request(e.code, &e.field, e.rule)
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, Deserialize)]
struct ErrorDetail {
    code: String,
    field: String,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                field: self.field,
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
