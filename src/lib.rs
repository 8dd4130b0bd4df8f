//! strongroom: an HSM-backed signing appliance for a public certificate authority.
//!
//! Two flows sign with a CA key, and both keep one order: build from a profile, lint, sign in
//! the HSM, verify in software, then write the output and its record.
//!
//! ```text
//! ceremony (strongroom ceremony run SCRIPT)
//!   script.toml ─ceremony::script (parse + plan, no HSM)─▶ Script ─pre-flight on the token─▶
//!   ceremony::steps, each: x509 build ─▶ lint ─▶ hsm sign ─▶ verify ─▶ output file (create-new)
//!                                                              ─▶ ceremony::transcript event
//!
//! signing service (strongroom serve --config FILE)
//!   Unix socket ─service (SO_PEERCRED, route)─▶ issue::approve ─policy─▶ Approved
//!   ─x509 build + lint─▶ LintedTbs ─hsm sign, verify─▶ SignedCert ─audit append (fsync)─▶
//!   Recorded ─▶ response; any error: stage error ─▶ issue::Error ─▶ service::wire (status)
//! ```
//!
//! CRLs and OCSP responses (`revoke`, `ocsp`) take the service's path with their own checks;
//! `tlog` is a transparency log read and checked by `strongroom log`. The module map, the
//! proof types, the error flow and where each rule lives are in `docs/ARCHITECTURE.md`.

// Entry point.

// The `strongroom` command line: ceremony, hsm, serve, issue, audit, log, demo.
pub mod cli;

// Flow 1: ceremonies.

// Ceremony scripts: parse and plan, one file per step, the hash-chained transcript.
pub mod ceremony;

// Flow 2: the signing service, in request order.

// The service's TOML configuration, checked whole at start.
pub mod config;
// The Unix-socket HTTP service; `service::wire` is the only place that chooses HTTP statuses.
pub mod service;
// The issuance pipeline (approve, sign, record) and `issue::Error`, which gathers stage errors.
pub mod issue;
// CRL and OCSP requests: their checks, CRL numbers, signing and records.
pub mod revoke;
// Configured issuers: key on the token, certificate, OCSP responder, CRL shards.
pub mod issuer;
// Issuance policy: names, keys, validity, serial numbers, SCT lists.
pub mod policy;
// Public-key quality: sizes, exponent, small factors, ROCA, Fermat, EC points.
pub(crate) mod keycheck;

// Shared by both flows: build, lint, sign, verify, record.

// Profiles, TBS building and assembly, the one CRL encoder.
pub mod x509;
// RFC 5280 / BR lints on every TBS certificate and CRL before it is signed.
pub mod lint;
// OCSP responses (RFC 6960): build, check, sign.
pub mod ocsp;
// PKCS#11: tokens, keys, the session pool and its deadlines, verify-after-sign.
#[expect(clippy::disallowed_types, reason = "the one module that talks PKCS#11")]
pub mod hsm;
// Software signature verification (AWS-LC) of everything the HSM signs.
pub mod verify;
// The hash-chained SQLite audit store and its offline check.
pub mod audit;
// The transparency log: entries, Merkle proofs, tiles, signed checkpoints.
pub mod tlog;
// The service's Prometheus counters, shared by the pipelines that count what they sign.
pub mod metrics;

// Support.

// Key types and signature algorithms with their fixed encodings.
pub mod alg;
// PINs and where they come from.
pub mod secret;
// RFC 3339 text, and the clock in the whole seconds X.509 carries.
pub mod time;
// The socket client behind `strongroom issue`, the benchmark and the tests.
pub mod client;
// Stopping the demo's and the benchmarks' child processes, with bounded waits.
pub mod child;
// `strongroom demo`: throwaway tokens, the ceremonies and a service configuration.
pub mod demo;
// `strongroom-bench`: raw HSM rate, issuance over the socket, large CRLs, soak.
pub mod bench;
