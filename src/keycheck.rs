//! Public-key quality checks for keys the HSM generates and keys in certificate requests.
//!
//! [`check_public_key`] takes a `SubjectPublicKeyInfo` and an allowed set of [`KeyType`]s and
//! either names the key's type or says which rule it breaks. The rules, in the order they are
//! applied:
//!
//! ```text
//! RSA  rsaEncryption, NULL parameters ─▶ modulus 2048/3072/4096 bits ─▶ type allowed?
//!      ─▶ e = 65537 ─▶ n odd, no prime factor below 752 ─▶ no ROCA fingerprint
//!      ─▶ not factored by 100 rounds of Fermat's method
//! EC   id-ecPublicKey, namedCurve P-256 or P-384 ─▶ type allowed?
//!      ─▶ uncompressed SEC1 point ─▶ on the curve and not the identity
//! ```
//!
//! It does not consult blocklists (Debian weak keys, known-compromised keys): those need data
//! sets and are not part of this module.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use der::Decode as _;
use rsa::BoxedUint;
use spki::SubjectPublicKeyInfoOwned;

use crate::verify::oid_display;

pub(crate) use crate::alg::KeyType;

/// The rule a public key breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Error {
    /// The key is neither RSA (`rsaEncryption`) nor EC (`id-ecPublicKey`).
    #[error("public key algorithm {} is not allowed: only rsaEncryption and id-ecPublicKey (BR §6.1.5)", oid_display(.0))]
    UnsupportedAlgorithm(ObjectIdentifier),

    /// `subjectPublicKey` is a BIT STRING with unused bits, so it holds no whole key.
    #[error("subjectPublicKey BIT STRING has unused bits (RFC 5280 §4.1.2.7)")]
    BitStringUnusedBits,

    /// The `rsaEncryption` parameters are not NULL.
    #[error("rsaEncryption parameters must be NULL (RFC 3279 §2.3.1, BR §7.1.3.1.1)")]
    RsaParametersNotNull,

    /// The RSA key does not decode as a PKCS#1 `RSAPublicKey`.
    #[error("RSAPublicKey is not a DER SEQUENCE of two positive INTEGERs (RFC 8017 §A.1.1)")]
    RsaMalformed,

    /// The modulus is not 2048, 3072 or 4096 bits long.
    #[error("RSA modulus of {bits} bits: only 2048, 3072 and 4096 are allowed (BR §6.1.5)")]
    RsaModulusSize {
        /// The modulus length found.
        bits: usize,
    },

    /// The public exponent is not 65537.
    #[error(
        "RSA public exponent {exponent} is not 65537 (BR §6.1.6 allows any odd e ≥ 3; strongroom requires 65537)"
    )]
    RsaExponent {
        /// The exponent found: in hexadecimal up to 64 bits, otherwise its length.
        exponent: String,
    },

    /// The modulus is even.
    #[error("RSA modulus is even (BR §6.1.6, NIST SP 800-89 §5.3.3)")]
    RsaModulusEven,

    /// The modulus has a prime factor below 752.
    #[error(
        "RSA modulus is divisible by the small prime {prime} (BR §6.1.6: no factors smaller than 752)"
    )]
    RsaSmallFactor {
        /// The smallest such factor.
        prime: u16,
    },

    /// The modulus carries the ROCA fingerprint of Infineon's flawed key generation.
    #[error(
        "RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be computed (BR §6.1.1.3(5)(2))"
    )]
    RsaRoca,

    /// Fermat's method factored the modulus: its two primes are too close together.
    #[error(
        "RSA modulus factored by Fermat's method in {rounds} round(s): its primes are too close (BR §6.1.1.3(5)(3))"
    )]
    RsaFermat {
        /// The round in which the factorisation succeeded (1-based).
        rounds: u32,
    },

    /// The `id-ecPublicKey` parameters are not a `namedCurve` OID.
    #[error(
        "id-ecPublicKey parameters must be a namedCurve OID; implicitCurve and specifiedCurve are forbidden (RFC 5480 §2.1.1)"
    )]
    EcParametersNotNamedCurve,

    /// The curve is not P-256 or P-384.
    #[error(
        "elliptic curve {} is not allowed: only P-256 and P-384 (BR §6.1.5, Mozilla Root Store Policy §5.1)",
        oid_display(.0)
    )]
    UnsupportedCurve(ObjectIdentifier),

    /// The EC point is not an uncompressed SEC1 point of the curve's length.
    #[error("EC public key is not an uncompressed point of {expected} bytes (RFC 5480 §2.2)")]
    EcPointNotUncompressed {
        /// The length an uncompressed point on this curve has.
        expected: usize,
    },

    /// The EC point fails public-key validation.
    #[error(
        "EC public key is not a point on the curve other than the identity (NIST SP 800-56A Rev. 3 §5.6.2.3.3, BR §6.1.6)"
    )]
    EcPointInvalid,

    /// The key is sound but its type is not in the allowed set.
    #[error("key type {found} is not allowed here (allowed: {})", list(.allowed))]
    NotAllowed {
        /// The key's type.
        found: KeyType,
        /// The allowed set that was given.
        allowed: Vec<KeyType>,
    },
}

/// Checks a public key against every rule above and returns its type.
///
/// Cheap structural checks come first; the arithmetic ones (small factors, ROCA, Fermat) run
/// only on an RSA key of an allowed type.
///
/// # Errors
/// The first rule the key breaks, as an [`Error`] variant that names the rule and its source.
pub(crate) fn check_public_key(
    spki: &SubjectPublicKeyInfoOwned,
    allowed: &[KeyType],
) -> Result<KeyType, Error> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or(Error::BitStringUnusedBits)?;
    match spki.algorithm.oid {
        RSA_ENCRYPTION => {
            // RFC 3279 §2.3.1 / BR §7.1.3.1.1: the parameters MUST be present and NULL.
            if !spki
                .algorithm
                .parameters
                .as_ref()
                .is_some_and(der::Any::is_null)
            {
                return Err(Error::RsaParametersNotNull);
            }
            check_rsa(key, allowed)
        }
        ID_EC_PUBLIC_KEY => {
            // RFC 5480 §2.1.1: ECParameters MUST be the namedCurve choice.
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or(Error::EcParametersNotNamedCurve)?;
            check_ec(curve, key, allowed)
        }
        other => Err(Error::UnsupportedAlgorithm(other)),
    }
}

fn ensure_allowed(found: KeyType, allowed: &[KeyType]) -> Result<KeyType, Error> {
    if allowed.contains(&found) {
        Ok(found)
    } else {
        Err(Error::NotAllowed {
            found,
            allowed: allowed.to_vec(),
        })
    }
}

/// The RSA rules; `der_key` is the PKCS#1 `RSAPublicKey`.
fn check_rsa(der_key: &[u8], allowed: &[KeyType]) -> Result<KeyType, Error> {
    let key = rsa::pkcs1::RsaPublicKeyRef::from_der(der_key).map_err(|_| Error::RsaMalformed)?;
    // DER INTEGER contents without the sign octet: `n` is big-endian with no leading zero.
    let n = key.modulus.as_bytes();
    let e = key.public_exponent.as_bytes();

    // BR §6.1.5: modulus at least 2048 bits and divisible by 8; strongroom narrows that to
    // exactly 2048, 3072 or 4096 bits.
    let bits = bit_length(n);
    let found = match bits {
        2048 => KeyType::Rsa2048,
        3072 => KeyType::Rsa3072,
        4096 => KeyType::Rsa4096,
        _ => return Err(Error::RsaModulusSize { bits }),
    };
    ensure_allowed(found, allowed)?;

    // BR §6.1.6: "the public exponent is an odd number equal to 3 or more"; strongroom
    // requires exactly 65537 (F4), as every mainstream key generator produces.
    if e != [0x01, 0x00, 0x01] {
        let exponent = match e.len() {
            0 => "0".to_owned(),
            1..=8 => format!("0x{}", hex::encode(e)),
            _ => format!("of {} bits", bit_length(e)),
        };
        return Err(Error::RsaExponent { exponent });
    }

    // BR §6.1.6 (from NIST SP 800-89 §5.3.3): "The modulus SHOULD also have the following
    // characteristics: an odd number, not the power of a prime, and have no factors smaller
    // than 752." As in Boulder's goodkey, we enforce the odd and small-factor parts.
    if n.last().is_none_or(|low| low & 1 == 0) {
        return Err(Error::RsaModulusEven);
    }
    let residues = small_prime_residues(n);
    if let Some(&(prime, _)) = residues.iter().find(|(_, r)| *r == 0) {
        return Err(Error::RsaSmallFactor { prime });
    }

    // BR §6.1.1.3(5)(2): reject keys that the ROCA detector (or an equivalent) flags.
    if has_roca_fingerprint(&residues) {
        return Err(Error::RsaRoca);
    }

    // BR §6.1.1.3(5)(3): reject keys "which can be factored within 100 rounds using Fermat's
    // factorization method" (close primes).
    if let Some(rounds) = fermat_factor(n, FERMAT_ROUNDS) {
        return Err(Error::RsaFermat { rounds });
    }

    Ok(found)
}

/// The EC rules for a key on `curve` whose `subjectPublicKey` holds `point`.
fn check_ec(curve: ObjectIdentifier, point: &[u8], allowed: &[KeyType]) -> Result<KeyType, Error> {
    // BR §6.1.5 allows P-256, P-384 and P-521; the Mozilla Root Store Policy §5.1 does not
    // allow P-521, so neither do we.
    let (found, field_len) = match curve {
        SECP_256_R_1 => (KeyType::EcP256, 32),
        SECP_384_R_1 => (KeyType::EcP384, 48),
        other => return Err(Error::UnsupportedCurve(other)),
    };
    ensure_allowed(found, allowed)?;

    // RFC 5480 §2.2: implementations MUST support the uncompressed form (0x04 || X || Y), and
    // the CA/B Forum and Mozilla profiles use only that form.
    let expected = 1 + 2 * field_len;
    if point.len() != expected || point.first() != Some(&0x04) {
        return Err(Error::EcPointNotUncompressed { expected });
    }

    // NIST SP 800-56A Rev. 3 §5.6.2.3.3 (full public-key validation): the point is not the
    // identity, its coordinates are field elements below p, and it satisfies the curve
    // equation. `from_sec1_bytes` checks all three; P-256 and P-384 have cofactor 1, so the
    // remaining step (n·Q = O) holds for every point on the curve.
    let valid = match found {
        KeyType::EcP256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        _ => p384::PublicKey::from_sec1_bytes(point).is_ok(),
    };
    if valid {
        Ok(found)
    } else {
        Err(Error::EcPointInvalid)
    }
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(&top) => be.len() * 8 - top.leading_zeros() as usize,
    }
}

/// The primes below 752 (`primes 2 752`), the bound of BR §6.1.6.
const SMALL_PRIMES: [u16; 133] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193,
    197, 199, 211, 223, 227, 229, 233, 239, 241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307,
    311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389, 397, 401, 409, 419, 421,
    431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499, 503, 509, 521, 523, 541, 547,
    557, 563, 569, 571, 577, 587, 593, 599, 601, 607, 613, 617, 619, 631, 641, 643, 647, 653, 659,
    661, 673, 677, 683, 691, 701, 709, 719, 727, 733, 739, 743, 751,
];

/// `n mod p` for each prime of [`SMALL_PRIMES`], in order.
fn small_prime_residues(n: &[u8]) -> [(u16, u16); SMALL_PRIMES.len()] {
    SMALL_PRIMES.map(|p| (p, rem_be_bytes(n, p)))
}

/// `n mod m` for a big-endian `n` and a small nonzero `m`.
fn rem_be_bytes(n: &[u8], m: u16) -> u16 {
    let m = u64::from(m);
    // Eight bytes at a time: r < m < 2^16, so (r << 64 | chunk) fits in a u128.
    let (head, tail) = n.split_at(n.len() % 8);
    let mut r = head
        .iter()
        .fold(0u64, |r, &b| ((r << 8) | u64::from(b)) % m);
    for chunk in tail.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let acc = (u128::from(r) << 64) | u128::from(u64::from_be_bytes(word));
        // The remainder is below m < 2^16: the narrowing casts are exact.
        r = (acc % u128::from(m)) as u64;
    }
    r as u16
}

/// The primes whose product is the ROCA detector's primorial `M` (all primes up to 167).
const ROCA_PRIMES: usize = 39;

/// ROCA (CVE-2017-15361) fingerprint test: is `n mod M` in the subgroup generated by 65537
/// in (Z/MZ)*, where `M` is the product of the primes up to 167?
///
/// Infineon's library built each prime as `k·M' + (65537^a mod M')` with `M | M'`, so a
/// modulus it made satisfies `n ≡ 65537^c (mod M)` for some `c`. This is the exact
/// discrete-log test of the crocs-muni `roca` detector (`DlogFprint`), computed prime by
/// prime: for each `p | M`, find `c_p = log_65537(n mod p)` in the cyclic group mod `p`
/// (order `o_p` of 65537 there, at most 166 steps); then a common `c` exists exactly when
/// every pair agrees modulo `gcd(o_p, o_q)` (the generalised Chinese remainder theorem).
/// The per-prime membership test alone is the older "marker" test of the roca detector and
/// Go's `rocacheck`; it has false positives that the consistency check removes.
fn has_roca_fingerprint(residues: &[(u16, u16); SMALL_PRIMES.len()]) -> bool {
    const G: u32 = 65537;
    // (discrete log, order of G) for each prime; p = 2 is trivial (G ≡ n ≡ 1) and skipped.
    let mut logs = [(0u32, 1u32); ROCA_PRIMES];
    for (slot, &(p, n_mod_p)) in logs.iter_mut().zip(residues.iter()).skip(1) {
        let (p, target) = (u32::from(p), u32::from(n_mod_p));
        let g = G % p;
        let mut power = 1u32;
        let mut log = None;
        let mut order = 0u32;
        loop {
            if power == target && log.is_none() {
                log = Some(order);
            }
            order += 1;
            power = power * g % p;
            if power == 1 {
                break;
            }
        }
        match log {
            Some(log) => *slot = (log, order),
            None => return false,
        }
    }
    logs.iter().enumerate().all(|(i, &(ci, oi))| {
        logs[..i]
            .iter()
            .all(|&(cj, oj)| (ci % gcd(oi, oj)) == (cj % gcd(oi, oj)))
    })
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Rounds of Fermat's method required by BR §6.1.1.3(5)(3).
const FERMAT_ROUNDS: u32 = 100;

/// Fermat's factorisation of the odd `n` (big-endian), as in Boulder's goodkey: with
/// `a = ceil(sqrt(n))`, look for `b² = a² − n` a perfect square, incrementing `a`. Returns the
/// round (1-based) in which `n = (a − b)(a + b)` was found, or `None` after `rounds` rounds.
///
/// Each round costs two additions; most non-squares are rejected by their residues mod 64, 63,
/// 65 and 11, so a real square root is taken about once per hundred rounds.
fn fermat_factor(n: &[u8], rounds: u32) -> Option<u32> {
    let n = BoxedUint::from_be_slice_vartime(n);
    let one = BoxedUint::one();
    let mut a = n.clone();
    if !a.floor_sqrt_assign_vartime() {
        a.wrapping_add_assign(&one);
    }
    // a² − n, computed modulo 2^precision: the true value stays far below n over the rounds,
    // so it is exact even if a² itself wraps.
    let mut b2 = a.wrapping_square().wrapping_sub(&n);
    for round in 1..=rounds {
        if could_be_square(&b2) && b2.checked_sqrt_vartime().is_some() {
            return Some(round);
        }
        // (a + 1)² − n = (a² − n) + a + (a + 1), updated in place.
        b2.wrapping_add_assign(&a);
        a.wrapping_add_assign(&one);
        b2.wrapping_add_assign(&a);
    }
    None
}

/// Quadratic-residue tables: `SQUARE_MOD_m[r]` is true when some square is `r` mod `m`.
const fn square_residues<const M: usize>() -> [bool; M] {
    let mut table = [false; M];
    let mut x = 0;
    while x < M {
        table[(x * x) % M] = true;
        x += 1;
    }
    table
}
const SQUARE_MOD_64: [bool; 64] = square_residues::<64>();
const SQUARE_MOD_63: [bool; 63] = square_residues::<63>();
const SQUARE_MOD_65: [bool; 65] = square_residues::<65>();
const SQUARE_MOD_11: [bool; 11] = square_residues::<11>();

/// False only when `x` is certainly not a perfect square.
fn could_be_square(x: &BoxedUint) -> bool {
    let limbs = x.as_limbs();
    let low = limbs.first().map_or(0, |l| u128::from(l.0));
    // 64 divides 2^(limb width), so the low limb decides x mod 64.
    if !SQUARE_MOD_64[(low % 64) as usize] {
        return false;
    }
    const M: u128 = 63 * 65 * 11;
    let limb_bits = 8 * core::mem::size_of_val(&limbs.first().map_or(0, |l| l.0)) as u32;
    let r = limbs
        .iter()
        .rev()
        .fold(0u128, |r, l| ((r << limb_bits) | u128::from(l.0)) % M) as usize;
    SQUARE_MOD_63[r % 63] && SQUARE_MOD_65[r % 65] && SQUARE_MOD_11[r % 11]
}

fn list(types: &[KeyType]) -> String {
    let names: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use der::asn1::{BitString, UintRef};
    use der::{DecodePem, Encode};
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::Certificate;

    use super::*;

    const ALL: [KeyType; 5] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
    ];

    fn cert_key(name: &str) -> SubjectPublicKeyInfoOwned {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reference-certs")
            .join(format!("{name}.pem"));
        Certificate::from_pem(std::fs::read(path).unwrap())
            .unwrap()
            .tbs_certificate()
            .subject_public_key_info()
            .clone()
    }

    fn fixture_key(name: &str) -> SubjectPublicKeyInfoOwned {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        SubjectPublicKeyInfoOwned::from_pem(std::fs::read(path).unwrap()).unwrap()
    }

    /// The (n, e) of an RSA SubjectPublicKeyInfo, big-endian without leading zeros.
    fn rsa_parts(spki: &SubjectPublicKeyInfoOwned) -> (Vec<u8>, Vec<u8>) {
        let key =
            rsa::pkcs1::RsaPublicKeyRef::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        (
            key.modulus.as_bytes().to_vec(),
            key.public_exponent.as_bytes().to_vec(),
        )
    }

    fn rsa_spki(n: &[u8], e: &[u8]) -> SubjectPublicKeyInfoOwned {
        let key = rsa::pkcs1::RsaPublicKey {
            modulus: UintRef::new(n).unwrap(),
            public_exponent: UintRef::new(e).unwrap(),
        };
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(der::Any::null()),
            },
            subject_public_key: BitString::from_bytes(&key.to_der().unwrap()).unwrap(),
        }
    }

    fn be_bytes(x: &BoxedUint) -> Vec<u8> {
        let bytes = x.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        bytes[skip..].to_vec()
    }

    #[test]
    fn isrg_root_x1_key_is_rsa_4096_and_only_when_allowed() {
        let x1 = cert_key("isrg-root-x1");
        assert_eq!(check_public_key(&x1, &ALL), Ok(KeyType::Rsa4096));
        assert_eq!(
            check_public_key(&x1, &[KeyType::Rsa4096]),
            Ok(KeyType::Rsa4096)
        );
        let err = check_public_key(&x1, &[KeyType::Rsa2048, KeyType::EcP384]).unwrap_err();
        assert_eq!(
            err,
            Error::NotAllowed {
                found: KeyType::Rsa4096,
                allowed: vec![KeyType::Rsa2048, KeyType::EcP384],
            }
        );
        assert_eq!(
            err.to_string(),
            "key type rsa-4096 is not allowed here (allowed: rsa-2048, ec-p384)"
        );
    }

    #[test]
    fn intermediate_keys_pass() {
        let r10 = cert_key("lets-encrypt-r10-signed-by-isrg-root-x1");
        assert_eq!(check_public_key(&r10, &ALL), Ok(KeyType::Rsa2048));
        let e5 = cert_key("lets-encrypt-e5-signed-by-isrg-root-x2");
        assert_eq!(
            check_public_key(&e5, &[KeyType::EcP384]),
            Ok(KeyType::EcP384)
        );
        assert!(matches!(
            check_public_key(&e5, &[KeyType::EcP256]),
            Err(Error::NotAllowed {
                found: KeyType::EcP384,
                ..
            })
        ));
    }

    #[test]
    fn p521_key_is_refused() {
        let err = check_public_key(&fixture_key("spki-p521.pem"), &ALL).unwrap_err();
        assert!(matches!(err, Error::UnsupportedCurve(_)), "{err:?}");
        assert!(err.to_string().contains("secp521r1"), "{err}");
    }

    #[test]
    fn rsa_1024_is_refused() {
        let err = check_public_key(&fixture_key("spki-rsa1024.pem"), &ALL).unwrap_err();
        assert_eq!(err, Error::RsaModulusSize { bits: 1024 });
    }

    #[test]
    fn exponent_3_is_refused() {
        let err = check_public_key(&fixture_key("spki-rsa2048-e3.pem"), &ALL).unwrap_err();
        assert_eq!(
            err,
            Error::RsaExponent {
                exponent: "0x03".into()
            }
        );
    }

    #[test]
    fn modulus_with_a_small_factor_is_refused() {
        // n' = n − (n mod 751), made odd by subtracting 751 if needed: divisible by 751, same
        // length as R10's modulus.
        let (n, e) = rsa_parts(&cert_key("lets-encrypt-r10-signed-by-isrg-root-x1"));
        let n = BoxedUint::from_be_slice_vartime(&n);
        let r = BoxedUint::from(u64::from(rem_be_bytes(&be_bytes(&n), 751)));
        let mut weak = n.wrapping_sub(&r);
        if be_bytes(&weak).last().unwrap() & 1 == 0 {
            weak = weak.wrapping_sub(BoxedUint::from(751u64));
        }
        let weak = be_bytes(&weak);
        let err = check_public_key(&rsa_spki(&weak, &e), &ALL).unwrap_err();
        let Error::RsaSmallFactor { prime } = err else {
            panic!("{err:?}")
        };
        assert!(prime <= 751);
        assert_eq!(rem_be_bytes(&weak, prime), 0);
    }

    #[test]
    fn even_modulus_is_refused() {
        let (mut n, e) = rsa_parts(&cert_key("isrg-root-x1"));
        *n.last_mut().unwrap() &= 0xfe;
        let err = check_public_key(&rsa_spki(&n, &e), &ALL).unwrap_err();
        assert_eq!(err, Error::RsaModulusEven);
    }

    #[test]
    fn fermat_weak_key_is_refused() {
        // p and q differ by about 2^516; Python's isqrt loop factors n in round 39 (see
        // tests/fixtures/README.md).
        let err = check_public_key(&fixture_key("spki-rsa2048-fermat-weak.pem"), &ALL).unwrap_err();
        assert_eq!(err, Error::RsaFermat { rounds: 39 });
        assert!(err.to_string().contains("BR §6.1.1.3(5)(3)"), "{err}");
    }

    #[test]
    fn fermat_finds_p_squared_and_close_primes_in_round_one() {
        // 1000003² and 1000003 · 1000033: factored at a = ceil(sqrt(n)).
        assert_eq!(
            fermat_factor(&1_000_006_000_009u64.to_be_bytes(), 100),
            Some(1)
        );
        assert_eq!(
            fermat_factor(&1_000_036_000_099u64.to_be_bytes(), 100),
            Some(1)
        );
        // 1000003 · 1999993: far apart, so not within 100 rounds.
        assert_eq!(
            fermat_factor(&1_999_998_999_979u64.to_be_bytes(), 100),
            None
        );
    }

    #[test]
    fn roca_vulnerable_key_is_refused() {
        let err = check_public_key(&fixture_key("roca-vulnerable-rsa2048.pem"), &ALL).unwrap_err();
        assert_eq!(err, Error::RsaRoca);
        assert!(err.to_string().contains("CVE-2017-15361"), "{err}");
    }

    #[test]
    fn roca_clean_key_from_the_same_test_set_passes() {
        let key = fixture_key("roca-clean-rsa2048.pem");
        assert_eq!(check_public_key(&key, &ALL), Ok(KeyType::Rsa2048));
    }

    #[test]
    fn roca_marker_only_moduli_are_not_fingerprinted() {
        // Moduli that pass the per-prime "marker" test but not the exact discrete-log test.
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/roca-marker-only-moduli.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let mut count = 0;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let n = hex::decode(if line.len() % 2 == 1 {
                format!("0{line}")
            } else {
                line.into()
            })
            .unwrap();
            let residues = small_prime_residues(&n);
            // Each residue is in the subgroup generated by 65537 (the marker test passes)...
            for &(p, r) in residues.iter().take(ROCA_PRIMES).skip(1) {
                let in_subgroup = (0..p).any(|k| {
                    (0..k).fold(1u32, |x, _| x * (65537 % u32::from(p)) % u32::from(p))
                        == u32::from(r)
                });
                assert!(in_subgroup, "marker test fails at p = {p}");
            }
            // ...but no single exponent explains them all.
            assert!(!has_roca_fingerprint(&residues));
            count += 1;
        }
        assert_eq!(count, 3);
    }

    #[test]
    fn point_not_on_the_curve_is_refused() {
        let mut e5 = cert_key("lets-encrypt-e5-signed-by-isrg-root-x2");
        let mut point = e5.subject_public_key.raw_bytes().to_vec();
        *point.last_mut().unwrap() ^= 1;
        e5.subject_public_key = BitString::from_bytes(&point).unwrap();
        let err = check_public_key(&e5, &ALL).unwrap_err();
        assert_eq!(err, Error::EcPointInvalid);
    }

    #[test]
    fn compressed_point_is_refused() {
        let mut e5 = cert_key("lets-encrypt-e5-signed-by-isrg-root-x2");
        let point = e5.subject_public_key.raw_bytes();
        let mut compressed = vec![0x02 | (point[96] & 1)];
        compressed.extend_from_slice(&point[1..49]);
        // The same key, compressed, is a valid point: only the encoding is refused.
        assert!(p384::PublicKey::from_sec1_bytes(&compressed).is_ok());
        e5.subject_public_key = BitString::from_bytes(&compressed).unwrap();
        let err = check_public_key(&e5, &ALL).unwrap_err();
        assert_eq!(err, Error::EcPointNotUncompressed { expected: 97 });
    }

    #[test]
    fn parameters_are_checked() {
        let mut x1 = cert_key("isrg-root-x1");
        x1.algorithm.parameters = None;
        assert_eq!(
            check_public_key(&x1, &ALL),
            Err(Error::RsaParametersNotNull)
        );

        let mut e5 = cert_key("lets-encrypt-e5-signed-by-isrg-root-x2");
        e5.algorithm.parameters = Some(der::Any::null());
        assert_eq!(
            check_public_key(&e5, &ALL),
            Err(Error::EcParametersNotNamedCurve)
        );
    }

    #[test]
    fn other_key_algorithms_are_refused() {
        let ed25519 = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(&[0; 32]).unwrap(),
        };
        let err = check_public_key(&ed25519, &ALL).unwrap_err();
        assert!(matches!(err, Error::UnsupportedAlgorithm(_)), "{err:?}");
        assert!(err.to_string().contains("1.3.101.112"), "{err}");
    }

    #[test]
    fn small_primes_are_exactly_the_primes_below_752() {
        let expected: Vec<u16> = (2..752u16)
            .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .collect();
        assert_eq!(SMALL_PRIMES.to_vec(), expected);
    }

    #[test]
    fn chunked_remainder_matches_bytewise_remainder() {
        let (n, _) = rsa_parts(&cert_key("isrg-root-x1"));
        for len in [n.len(), n.len() - 3, 5, 1] {
            let n = &n[..len];
            for &p in &SMALL_PRIMES {
                let bytewise = n
                    .iter()
                    .fold(0u32, |r, &b| (r * 256 + u32::from(b)) % u32::from(p));
                assert_eq!(
                    u32::from(rem_be_bytes(n, p)),
                    bytewise,
                    "len {len}, p = {p}"
                );
            }
        }
    }

    #[test]
    fn key_type_names() {
        let names: Vec<String> = ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384"]
        );
    }
}
