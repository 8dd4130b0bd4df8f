//! Why a signing request (certificate, final certificate, CRL or OCSP) was refused or failed.
//!
//! Each stage keeps its own error ([`crate::policy::Error`], the lint report, [`crate::hsm::Error`],
//! [`crate::audit::Error`]); [`Error`] gathers them with the request-level refusals. Each variant
//! has a stable [`Error::code`], the request [`Error::field`] it concerns and an
//! [`Error::message`] naming the rule: these go into refusal records, metrics and the wire
//! body. The HTTP status of each variant is chosen in one place, `service::wire`.

use std::borrow::Cow;

use crate::{audit, hsm, policy};

/// The error code of a signature from the HSM that did not verify under the key's public key.
pub const BAD_SIGNATURE: &str = "hsm.bad_signature";

/// A signing request refused or failed; nothing was signed, or what was signed was not released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request breaks issuance policy.
    #[error(transparent)]
    Policy(#[from] policy::Error),
    /// A request value is malformed, out of range, or names nothing configured (an issuer, a
    /// profile, a CRL shard, a serial we did not issue).
    #[error("{field}: {message}")]
    Invalid {
        /// Stable code, e.g. `request.issuer.unknown` or `crl.entry.serial.duplicate`.
        code: &'static str,
        /// The request field, or "" when the error is not about one field.
        field: String,
        /// What is wrong and which rule says so.
        message: String,
    },
    /// The request body is over the configured limit (`request.too_large`).
    #[error("{message}")]
    TooLarge {
        /// Which limit, in words.
        message: &'static str,
    },
    /// No precertificate with this serial from this issuer (`request.serial.unknown`).
    #[error("no precertificate with this serial from this issuer")]
    UnknownPrecertificate,
    /// Another request is making this precertificate's final certificate
    /// (`request.serial.final_in_progress`).
    #[error("the final certificate of this precertificate is being made by another request")]
    FinalInProgress,
    /// This precertificate already has its final certificate (`request.serial.already_final`).
    #[error("this precertificate already has its final certificate")]
    AlreadyFinal,
    /// The certificate we built fails our own lint; nothing was signed (`internal.lint`).
    #[error("the certificate strongroom built fails its own lint; nothing was signed: {report}")]
    Lint {
        /// The linter's report.
        report: String,
    },
    /// The HSM failed: `hsm.unavailable` when it cannot be used (retry later),
    /// [`BAD_SIGNATURE`] when its signature did not verify (nothing was released or recorded as
    /// issued), `hsm.error` for any other failure of the one call.
    #[error(transparent)]
    Hsm(#[from] hsm::Error),
    /// The audit store cannot be read or written, so nothing is signed or released
    /// (`audit.unavailable`).
    #[error("the audit store is unavailable; nothing is signed or released until it is: {0}")]
    Audit(#[from] audit::Error),
    /// A bug or a broken invariant on our side: `internal`, or `internal.crl` / `internal.ocsp`
    /// for a CRL or OCSP response that could not be built.
    #[error("{message}")]
    Internal {
        /// Stable code.
        code: &'static str,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// A malformed or unknown request value.
    pub(crate) fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable code, e.g. `policy.dns_name.public_suffix` or `hsm.unavailable`.
    pub fn code(&self) -> &str {
        match self {
            Error::Policy(e) => e.code,
            Error::Invalid { code, .. } | Error::Internal { code, .. } => code,
            Error::TooLarge { .. } => "request.too_large",
            Error::UnknownPrecertificate => "request.serial.unknown",
            Error::FinalInProgress => "request.serial.final_in_progress",
            Error::AlreadyFinal => "request.serial.already_final",
            Error::Lint { .. } => "internal.lint",
            Error::Hsm(hsm::Error::BadSignature { .. }) => BAD_SIGNATURE,
            Error::Hsm(e) if e.is_unavailable() || e.is_fatal() => "hsm.unavailable",
            Error::Hsm(_) => "hsm.error",
            Error::Audit(_) => "audit.unavailable",
        }
    }

    /// The request field the error concerns, or "" when it is not about one field.
    pub fn field(&self) -> &str {
        match self {
            Error::Policy(e) => &e.field,
            Error::Invalid { field, .. } => field,
            Error::UnknownPrecertificate | Error::FinalInProgress | Error::AlreadyFinal => "serial",
            _ => "",
        }
    }

    /// What is wrong, and which rule says so (without the field, which [`Error::field`] gives).
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            Error::Policy(e) => Cow::Borrowed(&e.rule),
            Error::Invalid { message, .. } | Error::Internal { message, .. } => {
                Cow::Borrowed(message)
            }
            other => Cow::Owned(other.to_string()),
        }
    }

    /// Whether a retry may succeed once the HSM or the audit store is back (`hsm.unavailable`,
    /// `audit.unavailable`).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Hsm(hsm::Error::BadSignature { .. }) => false,
            Error::Hsm(e) => e.is_unavailable() || e.is_fatal(),
            Error::Audit(_) => true,
            _ => false,
        }
    }
}

/// An `internal` error: what can only be a bug or a broken invariant on our side.
pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal {
        code: "internal",
        message: e.to_string(),
    }
}

/// A certificate's build, lint or signing failure: the HSM's error as it is, a lint finding as
/// `internal.lint`, anything else `internal`.
pub(crate) fn signing(e: crate::x509::Error) -> Error {
    match e {
        crate::x509::Error::Hsm(e) => Error::Hsm(e),
        crate::x509::Error::Lint { report, .. } => Error::Lint { report },
        other => internal(other),
    }
}
