//! Checks on algorithm identifiers and the subject public key (BR 6.1.5, 6.1.6, 7.1.3).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::UintRef;
use der::{Decode, Sequence};
use x509_cert::TbsCertificate;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::Report;

/// Smallest RSA modulus BR 6.1.5 allows, in bits.
const MIN_RSA_BITS: usize = 2048;

/// RSASSA-PKCS1-v1_5 signature algorithms of BR 7.1.3.2.1 that strongroom uses.
const RSA_SIGNATURES: [ObjectIdentifier; 3] = [
    SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
];

/// ECDSA signature algorithms of BR 7.1.3.2.2 that strongroom uses (P-256 and P-384 keys).
const ECDSA_SIGNATURES: [ObjectIdentifier; 2] = [ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384];

/// Every signature algorithm strongroom signs with.
const ALLOWED_SIGNATURES: [ObjectIdentifier; 5] = [
    SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
    ECDSA_WITH_SHA_256,
    ECDSA_WITH_SHA_384,
];

/// `RSAPublicKey` (RFC 8017 A.1.1), the content of an RSA `subjectPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// The key types strongroom's profiles issue for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum KeyType {
    /// rsaEncryption.
    Rsa,
    /// id-ecPublicKey on secp256r1.
    P256,
    /// id-ecPublicKey on secp384r1.
    P384,
}

/// Which structure a signature AlgorithmIdentifier belongs to, to pick the finding codes.
#[derive(Clone, Copy)]
pub(super) enum Signed {
    /// `tbsCertificate.signature`.
    Certificate,
    /// `tbsCertList.signature`.
    Crl,
}

/// BR 7.1.3.2: the signature AlgorithmIdentifier is one of sha256/384/512WithRSAEncryption with
/// NULL parameters (7.1.3.2.1) or ecdsa-with-SHA256/SHA384 with absent parameters (7.1.3.2.2).
/// RSASSA-PSS and ecdsa-with-SHA512 (P-521), which the BR also allow, are outside strongroom's
/// profiles and refused.
pub(super) fn lint_signature_algorithm(
    alg: &AlgorithmIdentifierOwned,
    signed: Signed,
    report: &mut Report,
) {
    let (code_alg, code_params, field) = match signed {
        Signed::Certificate => (
            "cert.signature.algorithm",
            "cert.signature.parameters",
            "tbsCertificate.signature",
        ),
        Signed::Crl => (
            "crl.signature.algorithm",
            "crl.signature.parameters",
            "tbsCertList.signature",
        ),
    };
    if RSA_SIGNATURES.contains(&alg.oid) {
        if !alg.parameters.as_ref().is_some_and(|p| p.is_null()) {
            report.error(
                code_params,
                "BR 7.1.3.2.1",
                format!("{field} {} must have NULL parameters", oid_name(&alg.oid)),
            );
        }
    } else if ECDSA_SIGNATURES.contains(&alg.oid) {
        if alg.parameters.is_some() {
            report.error(
                code_params,
                "BR 7.1.3.2.2",
                format!("{field} {} must have absent parameters", oid_name(&alg.oid)),
            );
        }
    } else {
        report.error(
            code_alg,
            "BR 7.1.3.2",
            format!(
                "{field} {} is not sha256/384/512WithRSAEncryption or ecdsa-with-SHA256/384",
                oid_name(&alg.oid)
            ),
        );
    }
}

/// BR 7.1.3.2.2 applied to a self-signed root, whose signing key is its own subject key: an RSA
/// key signs with RSA, a P-256 key with ecdsa-with-SHA256, a P-384 key with ecdsa-with-SHA384.
pub(super) fn lint_self_signed_algorithm(tbs: &TbsCertificate, report: &mut Report) {
    let Some(key) = key_type(&tbs.subject_public_key_info().algorithm) else {
        return; // reported as cert.spki.algorithm
    };
    let sig = tbs.signature().oid;
    if !ALLOWED_SIGNATURES.contains(&sig) {
        return; // reported as cert.signature.algorithm
    }
    let matches = match key {
        KeyType::Rsa => RSA_SIGNATURES.contains(&sig),
        KeyType::P256 => sig == ECDSA_WITH_SHA_256,
        KeyType::P384 => sig == ECDSA_WITH_SHA_384,
    };
    if !matches {
        report.error(
            "root.signature.key_mismatch",
            "BR 7.1.3.2",
            format!(
                "self-signed root with a {key:?} key cannot be signed with {}",
                oid_name(&sig)
            ),
        );
    }
}

/// Classifies an SPKI AlgorithmIdentifier, or `None` when it is not one BR 7.1.3.1 allows us.
pub(super) fn key_type(alg: &AlgorithmIdentifierOwned) -> Option<KeyType> {
    if alg.oid == RSA_ENCRYPTION {
        return alg
            .parameters
            .as_ref()
            .is_some_and(|p| p.is_null())
            .then_some(KeyType::Rsa);
    }
    if alg.oid == ID_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()?
            .decode_as::<ObjectIdentifier>()
            .ok()?;
        return match curve {
            c if c == SECP_256_R_1 => Some(KeyType::P256),
            c if c == SECP_384_R_1 => Some(KeyType::P384),
            _ => None,
        };
    }
    None
}

/// Lints the subjectPublicKeyInfo: algorithm encoding (BR 7.1.3.1), then the key itself
/// (BR 6.1.5, 6.1.6).
pub(super) fn lint_spki(spki: &SubjectPublicKeyInfoOwned, report: &mut Report) {
    let Some(key) = key_type(&spki.algorithm) else {
        report.error(
            "cert.spki.algorithm",
            "BR 7.1.3.1",
            format!(
                "subjectPublicKeyInfo algorithm {} is not rsaEncryption with NULL parameters or \
                 id-ecPublicKey with namedCurve P-256 or P-384",
                oid_name(&spki.algorithm.oid)
            ),
        );
        return;
    };
    let Some(bits) = spki.subject_public_key.as_bytes() else {
        report.error(
            "cert.spki.malformed",
            "RFC 5280 4.1.2.7",
            "subjectPublicKey BIT STRING has unused bits".to_string(),
        );
        return;
    };
    match key {
        KeyType::Rsa => lint_rsa_key(bits, report),
        KeyType::P256 => lint_ec_point(
            bits,
            key,
            p256::PublicKey::from_sec1_bytes(bits).is_ok(),
            report,
        ),
        KeyType::P384 => lint_ec_point(
            bits,
            key,
            p384::PublicKey::from_sec1_bytes(bits).is_ok(),
            report,
        ),
    }
}

/// BR 6.1.5: the RSA modulus is at least 2048 bits and its size in bits is divisible by 8.
/// BR 6.1.6: the public exponent is odd and at least 3, and SHOULD be in 2^16+1 ..= 2^256-1.
fn lint_rsa_key(bits: &[u8], report: &mut Report) {
    let Ok(key) = RsaPublicKey::from_der(bits) else {
        report.error(
            "cert.spki.malformed",
            "RFC 8017 A.1.1",
            "subjectPublicKey is not a DER RSAPublicKey".to_string(),
        );
        return;
    };
    let modulus_bits = bit_len(key.modulus.as_bytes());
    if modulus_bits < MIN_RSA_BITS || modulus_bits % 8 != 0 {
        report.error(
            "cert.spki.rsa.modulus_size",
            "BR 6.1.5",
            format!(
                "RSA modulus is {modulus_bits} bits, must be at least {MIN_RSA_BITS} and a \
                 multiple of 8"
            ),
        );
    }
    let e = key.public_exponent.as_bytes();
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let e_bits = bit_len(e);
    let at_least_3 = e_bits > 2 || (e_bits == 2 && e.last() == Some(&3));
    if !odd || !at_least_3 {
        report.error(
            "cert.spki.rsa.exponent",
            "BR 6.1.6",
            format!(
                "RSA public exponent 0x{} must be odd and at least 3",
                hex::encode(e)
            ),
        );
    } else if !(17..=256).contains(&e_bits) {
        // An odd exponent of 17 bits is at least 2^16+1; one of at most 256 bits is below 2^256.
        report.warning(
            "cert.spki.rsa.exponent_range",
            "BR 6.1.6",
            format!(
                "RSA public exponent 0x{} SHOULD be between 2^16+1 and 2^256-1",
                hex::encode(e)
            ),
        );
    }
}

/// RFC 5480 2.2: the EC point is an uncompressed SEC1 point (the only form strongroom issues for),
/// and BR 6.1.6: it is a valid point on the named curve.
fn lint_ec_point(bits: &[u8], key: KeyType, on_curve: bool, report: &mut Report) {
    if bits.first() != Some(&0x04) {
        report.error(
            "cert.spki.ec.point",
            "RFC 5480 2.2",
            format!("{key:?} public key is not an uncompressed point"),
        );
    } else if !on_curve {
        report.error(
            "cert.spki.ec.point",
            "BR 6.1.6",
            format!("{key:?} public key is not a valid point on the curve"),
        );
    }
}

/// Bit length of a big-endian unsigned integer with leading zero octets stripped.
fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(first) => be.len() * 8 - first.leading_zeros() as usize,
    }
}

/// A readable name for an OID: its name in const-oid's database, else the dotted form.
pub(super) fn oid_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map_or_else(|| oid.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, SECP_521_R_1,
        SHA_1_WITH_RSA_ENCRYPTION,
    };
    use der::asn1::{Any, BitString};
    use x509_cert::spki::AlgorithmIdentifierOwned;

    use crate::lint::test_support::*;
    use crate::lint::*;

    #[test]
    fn signature_algorithm_rules() {
        let sha1 = |t: &mut RawTbs| t.signature.oid = SHA_1_WITH_RSA_ENCRYPTION;
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            sha1,
            &["cert.signature.algorithm"],
        );
        let rsa_without_null = |t: &mut RawTbs| t.signature.parameters = None;
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            rsa_without_null,
            &["cert.signature.parameters"],
        );
        let ecdsa_with_null = |t: &mut RawTbs| t.signature.parameters = Some(Any::null());
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            ecdsa_with_null,
            &["cert.signature.parameters"],
        );
    }

    #[test]
    fn self_signed_root_hash_matches_its_curve() {
        let p384_signed_with_sha256 = |t: &mut RawTbs| t.signature.oid = ECDSA_WITH_SHA_256;
        assert_mutation(
            X2,
            CertKind::Root,
            p384_signed_with_sha256,
            &["root.signature.key_mismatch"],
        );
        let rsa_root_signed_with_ecdsa = |t: &mut RawTbs| {
            t.signature = AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_384,
                parameters: None,
            };
        };
        assert_mutation(
            X1,
            CertKind::Root,
            rsa_root_signed_with_ecdsa,
            &["root.signature.key_mismatch"],
        );
    }

    #[test]
    fn rsa_key_rules() {
        let cases: [(usize, &[u8], &[&str]); 6] = [
            (2048, &[1, 0, 1], &[]),
            (4096, &[1, 0, 1], &[]),
            (2047, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (2052, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (1024, &[1, 0, 1], &["cert.spki.rsa.modulus_size"]),
            (2048, &[1, 0, 0], &["cert.spki.rsa.exponent"]),
        ];
        for (bits, e, expected) in cases {
            assert_mutation(
                R10,
                CertKind::SubordinateCa,
                |t| t.spki = rsa_spki(bits, e),
                expected,
            );
        }
        // e = 3 is allowed but outside the SHOULD range.
        let tbs = mutate(&load(R10), |t| t.spki = rsa_spki(2048, &[3]));
        let report = lint_certificate(&tbs, CertKind::SubordinateCa);
        assert!(report.is_clean(), "{report}");
        assert!(report.contains("cert.spki.rsa.exponent_range"));
        let e1 = mutate(&load(R10), |t| t.spki = rsa_spki(2048, &[1]));
        assert_errors(
            &lint_certificate(&e1, CertKind::SubordinateCa),
            &["cert.spki.rsa.exponent"],
        );
    }

    #[test]
    fn rsa_key_needs_null_parameters() {
        assert_mutation(
            R10,
            CertKind::SubordinateCa,
            |t| t.spki.algorithm.parameters = None,
            &["cert.spki.algorithm"],
        );
    }

    #[test]
    fn ec_key_rules() {
        let p521 = |t: &mut RawTbs| {
            t.spki.algorithm.parameters = Some(Any::encode_from(&SECP_521_R_1).unwrap());
        };
        assert_mutation(E5, CertKind::SubordinateCa, p521, &["cert.spki.algorithm"]);
        let no_curve = |t: &mut RawTbs| t.spki.algorithm.parameters = None;
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            no_curve,
            &["cert.spki.algorithm"],
        );
        let off_curve = |t: &mut RawTbs| {
            let mut point = t.spki.subject_public_key.raw_bytes().to_vec();
            let last = point.len() - 1;
            point[last] ^= 1;
            t.spki.subject_public_key = BitString::from_bytes(&point).unwrap();
        };
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            off_curve,
            &["cert.spki.ec.point"],
        );
        let compressed = |t: &mut RawTbs| {
            let point = t.spki.subject_public_key.raw_bytes();
            let mut c = vec![0x02 | (point[96] & 1)];
            c.extend_from_slice(&point[1..49]);
            t.spki.subject_public_key = BitString::from_bytes(&c).unwrap();
        };
        assert_mutation(
            E5,
            CertKind::SubordinateCa,
            compressed,
            &["cert.spki.ec.point"],
        );
        assert_eq!(
            load(E5).subject_public_key_info().algorithm.oid,
            ID_EC_PUBLIC_KEY
        );
    }
}
