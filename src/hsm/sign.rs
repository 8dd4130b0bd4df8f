//! Signing: the message hashed in software, only the digest signed on the token, and every
//! signature verified against the key's public key before it is returned.

use cryptoki::mechanism::Mechanism;
use sha2::Digest;

use super::error::{Error, ck};
use super::key::KeyHandle;
use super::pool::{Hsm, Ops};
use crate::alg::SignatureAlgorithm;

impl Hsm {
    /// Signs `message` with `key` using `alg`, and verifies the signature in software against
    /// the key's public key before returning it: a signature that does not verify is an error.
    pub fn sign(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let signature = self.call(
            "C_Sign",
            self.inner.options.call_timeout,
            sign_job(key, alg, message)?,
        )?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }

    /// [`Hsm::sign`] for async callers (the signing service): the task waits for the session's
    /// worker without tying up a thread of its own, under the same deadline, and hashing and
    /// verification run on the caller's thread. Same checks, same errors.
    pub async fn sign_async(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let job = sign_job(key, alg, message)?;
        let signature = self
            .call_async("C_Sign", self.inner.options.call_timeout, job)
            .await?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }
}

/// A session worker's half of a signature of `message` with `key`: the algorithm checked and the
/// message hashed here, on the caller's thread, so that only the digest travels to the worker
/// and to the token, however large the message (a CRL of a million entries).
fn sign_job(
    key: &KeyHandle,
    alg: SignatureAlgorithm,
    message: &[u8],
) -> Result<impl FnOnce(&Ops<'_>) -> Result<Vec<u8>, Error> + Send + 'static, Error> {
    check_algorithm(key, alg)?;
    let (key, input) = (key.clone(), token_input(alg, message));
    Ok(move |o: &Ops<'_>| o.sign_input(&key, alg, &input))
}

/// The key type must allow the algorithm (BR 7.1.3.2).
fn check_algorithm(key: &KeyHandle, alg: SignatureAlgorithm) -> Result<(), Error> {
    if key.key_type.allows(alg) {
        Ok(())
    } else {
        Err(Error::Algorithm {
            label: key.label.clone(),
            key_type: key.key_type,
            alg,
        })
    }
}

/// DER prefixes of the DigestInfo for SHA-256, SHA-384 and SHA-512 (RFC 8017 9.2, note 1).
const DIGEST_INFO_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA384: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DIGEST_INFO_SHA512: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// What the token signs for `message` under `alg`: for RSA the DER DigestInfo of the message's
/// hash (EMSA-PKCS1-v1_5 step 2, RFC 8017 9.2), for ECDSA the bare hash (FIPS 186-4 6.4).
/// Hashing in software keeps large messages off the token and out of its memory.
pub(super) fn token_input(alg: SignatureAlgorithm, message: &[u8]) -> Vec<u8> {
    use sha2::{Sha256, Sha384, Sha512};
    match alg {
        SignatureAlgorithm::RsaPkcs1Sha256 => {
            [&DIGEST_INFO_SHA256[..], &Sha256::digest(message)].concat()
        }
        SignatureAlgorithm::RsaPkcs1Sha384 => {
            [&DIGEST_INFO_SHA384[..], &Sha384::digest(message)].concat()
        }
        SignatureAlgorithm::RsaPkcs1Sha512 => {
            [&DIGEST_INFO_SHA512[..], &Sha512::digest(message)].concat()
        }
        SignatureAlgorithm::EcdsaSha256 => Sha256::digest(message).to_vec(),
        SignatureAlgorithm::EcdsaSha384 => Sha384::digest(message).to_vec(),
    }
}

/// Verifies `signature` over `message` with the key's public key.
pub(super) fn verify_signature(
    key: &KeyHandle,
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    key.verifier
        .verify(&alg.algorithm_identifier(), message, signature)
        .map_err(|e| Error::BadSignature {
            label: key.label.clone(),
            reason: e.to_string(),
        })
}

impl Ops<'_> {
    /// Signs `message` with `key` using `alg`, and verifies the signature in software against
    /// the key's public key before returning it.
    pub(super) fn sign(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let signature = self.sign_only(key, alg, message)?;
        verify_signature(key, alg, message, &signature)?;
        Ok(signature)
    }

    /// Signs `message` with `key` using `alg`: [`token_input`] hashes it here, and the token
    /// signs only the digest.
    fn sign_only(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        check_algorithm(key, alg)?;
        self.sign_input(key, alg, &token_input(alg, message))
    }

    /// Signs what [`token_input`] made of a message. RSA: CKM_RSA_PKCS over the DigestInfo,
    /// which is RSASSA-PKCS1-v1_5 (RFC 8017 8.2; PKCS#11 v2.40 mechanisms 2.1.6). ECDSA:
    /// CKM_ECDSA over the digest, and the r||s the token returns becomes the DER
    /// `Ecdsa-Sig-Value` of RFC 5480 / RFC 3279 2.2.3.
    fn sign_input(
        &self,
        key: &KeyHandle,
        alg: SignatureAlgorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let bad = |reason: String| Error::BadSignature {
            label: key.label.clone(),
            reason,
        };
        let signature = match alg {
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPkcs1Sha512 => {
                self.raw_sign(&Mechanism::RsaPkcs, key, input)?
            }
            SignatureAlgorithm::EcdsaSha256 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, input)?;
                p256::ecdsa::Signature::from_slice(&rs)
                    .map_err(|e| bad(format!("CKM_ECDSA output is not r||s for P-256: {e}")))?
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
            SignatureAlgorithm::EcdsaSha384 => {
                let rs = self.raw_sign(&Mechanism::Ecdsa, key, input)?;
                p384::ecdsa::Signature::from_slice(&rs)
                    .map_err(|e| bad(format!("CKM_ECDSA output is not r||s for P-384: {e}")))?
                    .to_der()
                    .as_bytes()
                    .to_vec()
            }
        };
        Ok(signature)
    }

    fn raw_sign(
        &self,
        mechanism: &Mechanism<'_>,
        key: &KeyHandle,
        data: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.session
            .sign(mechanism, self.handle(key)?, data)
            .map_err(ck("C_Sign"))
    }
}

#[cfg(test)]
mod tests {
    use der::Encode;
    use der::asn1::OctetString;
    use spki::AlgorithmIdentifierOwned;

    use super::*;

    /// DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }
    /// (RFC 8017 9.2), encoded with `der` to check the fixed prefixes.
    #[derive(der::Sequence)]
    struct DigestInfo {
        algorithm: AlgorithmIdentifierOwned,
        digest: OctetString,
    }

    #[test]
    fn digest_info_prefixes_are_the_der_of_rfc_8017() {
        use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
        for (oid, alg, len) in [
            (ID_SHA_256, SignatureAlgorithm::RsaPkcs1Sha256, 32),
            (ID_SHA_384, SignatureAlgorithm::RsaPkcs1Sha384, 48),
            (ID_SHA_512, SignatureAlgorithm::RsaPkcs1Sha512, 64),
        ] {
            let input = token_input(alg, b"message");
            let digest = input[input.len() - len..].to_vec();
            let expected = DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid,
                    parameters: Some(der::asn1::Null.into()),
                },
                digest: OctetString::new(digest).unwrap(),
            }
            .to_der()
            .unwrap();
            assert_eq!(input, expected, "{alg}");
        }
        assert_eq!(
            token_input(SignatureAlgorithm::EcdsaSha384, b"message"),
            sha2::Sha384::digest(b"message").to_vec()
        );
    }
}
