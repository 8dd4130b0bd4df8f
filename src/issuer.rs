//! Issuers: each configured issuer's key found on the token and checked against its certificate,
//! its delegated OCSP responder, and the CRL shard a serial belongs to.
//!
//! ```text
//!   IssuerConfig ─find key on the token─▶ key = certificate's key? ─SKI─▶ Issuer
//!                                         (and the OCSP responder: RFC 6960 4.2.2.2)
//! ```
//!
//! Loading runs once, when the service starts; any failure stops the start.

use std::time::SystemTime;

use crate::config::IssuerConfig;
use crate::hsm::{Hsm, KeyHandle};
use crate::x509::{self, SignerInfo};

/// An issuer: its configuration, its key on the token and what the profiles need from it.
#[derive(Debug)]
pub struct Issuer {
    /// The configuration.
    pub config: IssuerConfig,
    /// The key on the token.
    pub key: KeyHandle,
    /// Public key and signature algorithm.
    pub signer: SignerInfo,
    /// The issuer's subjectKeyIdentifier (our certificates' AKI).
    pub ski: Vec<u8>,
    /// The issuer certificate's notAfter: nothing we issue outlives it.
    pub not_after: SystemTime,
    /// Signs OCSP responses about this issuer's certificates: with the issuer key itself, or
    /// with a delegated responder's key (RFC 6960 4.2.2.2) when the configuration names one.
    pub responder: crate::ocsp::Responder,
    /// The key OCSP responses are signed with (the issuer key or the delegated responder's).
    pub ocsp_key: KeyHandle,
}

/// Why an issuer (or its delegated OCSP responder) could not be loaded. Each message names the
/// issuer, except [`LoadError::Certificate`], whose DER error is reported as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The issuer's key is not on the token, or the token could not be asked.
    #[error("issuer {issuer:?}: {source}")]
    Key {
        /// The issuer's name.
        issuer: String,
        /// The HSM's error.
        source: crate::hsm::Error,
    },
    /// The key found is not the key the issuer certificate certifies.
    #[error("issuer {issuer:?}: the key {key} is not the key of the issuer certificate {subject}")]
    WrongKey {
        /// The issuer's name.
        issuer: String,
        /// The key's URI.
        key: String,
        /// The issuer certificate's subject.
        subject: String,
    },
    /// The issuer certificate's extensions do not decode.
    #[error(transparent)]
    Certificate(x509::Error),
    /// The issuer certificate has no subjectKeyIdentifier, which our AKI needs (RFC 5280
    /// 4.2.1.1).
    #[error("issuer {issuer:?}: the certificate has no subjectKeyIdentifier")]
    NoSubjectKeyId {
        /// The issuer's name.
        issuer: String,
    },
    /// The issuer cannot sign its own OCSP responses.
    #[error("issuer {issuer:?}: OCSP responder: {source}")]
    Responder {
        /// The issuer's name.
        issuer: String,
        /// Why.
        source: crate::ocsp::Error,
    },
    /// The delegated OCSP responder does not fit the issuer (RFC 6960 4.2.2.2, BR 7.1.2.8).
    #[error("issuer {issuer:?}: ocsp-responder: {why}")]
    Delegate {
        /// The issuer's name.
        issuer: String,
        /// What is wrong with the delegate.
        why: String,
    },
}

impl Issuer {
    /// Finds the issuer's key and checks it is the key of the issuer certificate.
    ///
    /// # Errors
    /// A [`LoadError`] naming the issuer and what does not fit.
    pub fn load(hsm: &Hsm, config: IssuerConfig) -> Result<Issuer, LoadError> {
        let key = hsm.find_key(&config.key).map_err(|source| LoadError::Key {
            issuer: config.name.clone(),
            source,
        })?;
        let tbs = config.certificate.tbs_certificate();
        if tbs.subject_public_key_info() != &key.spki {
            return Err(LoadError::WrongKey {
                issuer: config.name.clone(),
                key: config.key.to_string(),
                subject: tbs.subject().to_string(),
            });
        }
        let ski = x509::subject_key_id(&config.certificate)
            .map_err(LoadError::Certificate)?
            .ok_or_else(|| LoadError::NoSubjectKeyId {
                issuer: config.name.clone(),
            })?;
        let signer = SignerInfo {
            spki: key.spki.clone(),
            alg: key.key_type.default_signature_algorithm(),
        };
        let (responder, ocsp_key) = match &config.ocsp_responder {
            None => (
                crate::ocsp::Responder::new(&config.certificate, signer.clone(), None).map_err(
                    |source| LoadError::Responder {
                        issuer: config.name.clone(),
                        source,
                    },
                )?,
                key.clone(),
            ),
            Some(delegate) => load_delegate(hsm, &config, delegate)?,
        };
        Ok(Issuer {
            responder,
            ocsp_key,
            not_after: tbs.validity().not_after.to_system_time(),
            config,
            key,
            signer,
            ski,
        })
    }

    /// The CRL shard a serial belongs to, and its URL (the certificate's CRLDP).
    pub fn crl_url(&self, serial: &[u8]) -> String {
        self.crl_url_for_shard(shard_of(serial, self.config.crl_shards))
    }

    /// A shard's URL: the CRLDP of the certificates in it and its CRL's issuingDistributionPoint.
    pub fn crl_url_for_shard(&self, shard: u32) -> String {
        format!("{}{shard}.crl", self.config.crl_url_prefix)
    }
}

/// Finds a delegated OCSP responder's key and checks it against its certificate, and the
/// certificate against the issuer (RFC 6960 4.2.2.2, BR 7.1.2.8): the key is the certificate's,
/// the certificate is issued and signed by this issuer with AKI = the issuer's SKI, carries
/// id-kp-OCSPSigning and id-pkix-ocsp-nocheck, and is valid now. Any failure stops the start.
fn load_delegate(
    hsm: &Hsm,
    config: &IssuerConfig,
    delegate: &crate::config::OcspResponderConfig,
) -> Result<(crate::ocsp::Responder, KeyHandle), LoadError> {
    let fail = |why: String| LoadError::Delegate {
        issuer: config.name.clone(),
        why,
    };
    let key = hsm
        .find_key(&delegate.key)
        .map_err(|e| fail(e.to_string()))?;
    let tbs = delegate.certificate.tbs_certificate();
    if tbs.subject_public_key_info() != &key.spki {
        return Err(fail(format!(
            "the key {} is not the key of the responder certificate {}",
            delegate.key,
            tbs.subject()
        )));
    }
    let signer = SignerInfo {
        spki: key.spki.clone(),
        alg: key.key_type.default_signature_algorithm(),
    };
    let responder = crate::ocsp::Responder::new(
        &config.certificate,
        signer,
        Some(delegate.certificate.clone()),
    )
    .map_err(|e| match e {
        crate::ocsp::Error::Responder(why) => fail(why),
        other => fail(other.to_string()),
    })?;
    Ok((responder, key))
}

/// The shard of a serial: its last four bytes, big-endian, modulo the shard count.
pub fn shard_of(serial: &[u8], shards: u32) -> u32 {
    let tail = serial
        .iter()
        .rev()
        .take(4)
        .rev()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    tail % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_spread_serials() {
        assert_eq!(shard_of(&[0x01, 0, 0, 0, 5], 4), 1);
        assert_eq!(shard_of(&[0x01, 0xff, 0xff, 0xff, 0xff], 1), 0);
        assert!(shard_of(&[7; 17], 128) < 128);
    }
}
