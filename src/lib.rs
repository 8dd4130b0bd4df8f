//! strongroom: an HSM-backed signing appliance for a public certificate authority.
pub mod alg;
pub mod audit;
pub mod bench;
pub mod ceremony;
pub mod child;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
#[expect(clippy::disallowed_types, reason = "the one module that talks PKCS#11")]
pub mod hsm;
pub mod issue;
pub mod issuer;
pub mod keycheck;
pub mod lint;
pub mod metrics;
pub mod ocsp;
pub mod policy;
pub mod revoke;
pub mod secret;
pub mod service;
pub mod time;
pub mod tlog;
pub mod verify;
pub mod x509;
