//! Key types and signature algorithms strongroom supports, and their encodings.
//!
//! The set is deliberately small: what the CA/Browser Forum Baseline Requirements allow for CA
//! keys (BR 6.1.5: RSA of at least 2048 bits, ECDSA on P-256 or P-384; strongroom does not offer
//! P-521) and the signature algorithms of BR 7.1.3.2 with their fixed encodings.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SECP_256_R_1, SECP_384_R_1,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::Null;
use spki::AlgorithmIdentifierOwned;

/// A key type strongroom can generate in an HSM and sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA, 2048-bit modulus, e = 65537.
    Rsa2048,
    /// RSA, 3072-bit modulus, e = 65537.
    Rsa3072,
    /// RSA, 4096-bit modulus, e = 65537.
    Rsa4096,
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
}

impl KeyType {
    /// Every supported key type, in the order they are listed to users.
    pub const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
    ];

    /// The RSA modulus size in bits, or `None` for an EC key.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            KeyType::EcP256 | KeyType::EcP384 => None,
        }
    }

    /// The named curve's OID, or `None` for an RSA key.
    pub fn curve(self) -> Option<ObjectIdentifier> {
        match self {
            KeyType::EcP256 => Some(SECP_256_R_1),
            KeyType::EcP384 => Some(SECP_384_R_1),
            _ => None,
        }
    }

    /// The signature algorithm a key of this type signs with by default. For ECDSA the hash is
    /// tied to the curve (BR 7.1.3.2.2: P-256 with SHA-256, P-384 with SHA-384); RSA keys sign
    /// with SHA-256, as ISRG Root X1 (RSA-4096) does.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                SignatureAlgorithm::RsaPkcs1Sha256
            }
            KeyType::EcP256 => SignatureAlgorithm::EcdsaSha256,
            KeyType::EcP384 => SignatureAlgorithm::EcdsaSha384,
        }
    }

    /// Whether `alg` may be used with a key of this type (BR 7.1.3.2).
    pub fn allows(self, alg: SignatureAlgorithm) -> bool {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => alg.is_rsa(),
            KeyType::EcP256 => alg == SignatureAlgorithm::EcdsaSha256,
            KeyType::EcP384 => alg == SignatureAlgorithm::EcdsaSha384,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
        })
    }
}

/// A key type or signature algorithm name that is not one strongroom supports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not one of [`KeyType::ALL`] (BR 6.1.5); the message lists what is allowed.
    #[error(
        "unsupported key type {name:?}; allowed: {} (BR 6.1.5)",
        allowed_key_types()
    )]
    KeyType {
        /// The name as given.
        name: String,
    },
    /// Not the name of one of [`SignatureAlgorithm::ALL`] (BR 7.1.3.2).
    #[error("unknown signature algorithm {name:?} (BR 7.1.3.2)")]
    SignatureAlgorithm {
        /// The name as given.
        name: String,
    },
}

/// The names of [`KeyType::ALL`], comma-separated.
fn allowed_key_types() -> String {
    let allowed: Vec<String> = KeyType::ALL.iter().map(|k| k.to_string()).collect();
    allowed.join(", ")
}

impl FromStr for KeyType {
    type Err = ParseError;

    /// Parses `rsa-2048`, `rsa-3072`, `rsa-4096`, `ec-p256` or `ec-p384`; anything else (P-521,
    /// RSA-1024, ...) is refused with the list of what is allowed.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| ParseError::KeyType {
                name: s.to_string(),
            })
    }
}

/// A signature algorithm strongroom signs with (BR 7.1.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (sha256WithRSAEncryption).
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (sha384WithRSAEncryption).
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (sha512WithRSAEncryption).
    RsaPkcs1Sha512,
    /// ECDSA with SHA-256 (ecdsa-with-SHA256), for P-256 keys.
    EcdsaSha256,
    /// ECDSA with SHA-384 (ecdsa-with-SHA384), for P-384 keys.
    EcdsaSha384,
}

impl SignatureAlgorithm {
    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            SignatureAlgorithm::RsaPkcs1Sha256
                | SignatureAlgorithm::RsaPkcs1Sha384
                | SignatureAlgorithm::RsaPkcs1Sha512
        )
    }

    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPkcs1Sha384 => SHA_384_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPkcs1Sha512 => SHA_512_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::EcdsaSha256 => ECDSA_WITH_SHA_256,
            SignatureAlgorithm::EcdsaSha384 => ECDSA_WITH_SHA_384,
        }
    }

    /// The AlgorithmIdentifier, encoded as BR 7.1.3.2 fixes it: NULL parameters for RSA
    /// (7.1.3.2.1), absent parameters for ECDSA (7.1.3.2.2).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: if self.is_rsa() {
                Some(Null.into())
            } else {
                None
            },
        }
    }

    /// Every supported algorithm.
    pub const ALL: [SignatureAlgorithm; 5] = [
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha384,
        SignatureAlgorithm::RsaPkcs1Sha512,
        SignatureAlgorithm::EcdsaSha256,
        SignatureAlgorithm::EcdsaSha384,
    ];

    /// The algorithm named by an AlgorithmIdentifier, if it is one strongroom supports with the
    /// exact BR 7.1.3.2 encoding.
    pub fn from_algorithm_identifier(id: &AlgorithmIdentifierOwned) -> Option<Self> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.algorithm_identifier() == *id)
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = ParseError;

    /// Parses an algorithm by its RFC name, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA384`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|a| a.to_string() == s)
            .ok_or_else(|| ParseError::SignatureAlgorithm {
                name: s.to_string(),
            })
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => "sha256WithRSAEncryption",
            SignatureAlgorithm::RsaPkcs1Sha384 => "sha384WithRSAEncryption",
            SignatureAlgorithm::RsaPkcs1Sha512 => "sha512WithRSAEncryption",
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-with-SHA256",
            SignatureAlgorithm::EcdsaSha384 => "ecdsa-with-SHA384",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_round_trip_and_refuse_unsupported() {
        for k in KeyType::ALL {
            assert_eq!(k.to_string().parse::<KeyType>(), Ok(k));
        }
        let err = "ec-p521".parse::<KeyType>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unsupported key type \"ec-p521\"; allowed: rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384 (BR 6.1.5)"
        );
        assert!("rsa-1024".parse::<KeyType>().is_err());
    }

    #[test]
    fn signature_algorithms_round_trip_and_refuse_unknown() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(a.to_string().parse::<SignatureAlgorithm>(), Ok(a));
        }
        let err = "sha1WithRSAEncryption"
            .parse::<SignatureAlgorithm>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown signature algorithm \"sha1WithRSAEncryption\" (BR 7.1.3.2)"
        );
    }

    #[test]
    fn ecdsa_hash_is_tied_to_the_curve() {
        assert!(KeyType::EcP256.allows(SignatureAlgorithm::EcdsaSha256));
        assert!(!KeyType::EcP256.allows(SignatureAlgorithm::EcdsaSha384));
        assert!(!KeyType::EcP384.allows(SignatureAlgorithm::EcdsaSha256));
        assert!(KeyType::Rsa4096.allows(SignatureAlgorithm::RsaPkcs1Sha384));
        assert!(!KeyType::Rsa2048.allows(SignatureAlgorithm::EcdsaSha256));
    }

    #[test]
    fn algorithm_identifiers_have_the_fixed_encodings() {
        use der::Encode;
        // BR 7.1.3.2.1 and 7.1.3.2.2 give these exact bytes.
        let rsa = SignatureAlgorithm::RsaPkcs1Sha256.algorithm_identifier();
        assert_eq!(
            hex::encode(rsa.to_der().unwrap()),
            "300d06092a864886f70d01010b0500"
        );
        let ec = SignatureAlgorithm::EcdsaSha384.algorithm_identifier();
        assert_eq!(
            hex::encode(ec.to_der().unwrap()),
            "300a06082a8648ce3d040303"
        );
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&ec),
            Some(SignatureAlgorithm::EcdsaSha384)
        );
    }
}
