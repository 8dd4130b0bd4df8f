//! The key to certify: decoded from the request, checked for quality, checked against the
//! blocklist (BR 6.1.1.3, 6.1.5, 6.1.6).
//!
//! ```text
//! base64 SPKI ─decode_spki──────────────────────────┐
//! PEM CSR ─csr_public_key─▶ decode ─▶ self-signature ┴─▶ SPKI ─check_key─▶ keycheck ─▶ blocklist ─▶ KeyType
//! ```
//!
//! The quality rules are [`crate::keycheck`]'s; this module maps its errors to policy codes.

use base64ct::{Base64, Encoding as _};
use der::{Decode as _, DecodePem as _};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::request::CertReq;

use super::{Error, PolicyConfig};
use crate::alg::KeyType;
use crate::keycheck;
use crate::verify;

/// The field a refusal about a bare public key names.
const KEY_FIELD: &str = "public_key";
/// The field a refusal about a CSR names.
const CSR_FIELD: &str = "csr";

/// Longest base64 SPKI accepted: an RSA-4096 SPKI is 550 octets (736 base64 characters), so
/// this leaves room for any key we accept and refuses absurd inputs before decoding them.
const MAX_SPKI_BASE64: usize = 4096;
/// Longest PEM CSR accepted. A CSR carrying many names is still far below this.
const MAX_CSR_PEM: usize = 64 * 1024;

/// Checks a public key before it is certified and returns its type.
///
/// First `keycheck::check_public_key` with every [`KeyType`] allowed, then the operator's
/// [`PolicyConfig::blocked_keys`] (SHA-256 of the DER `SubjectPublicKeyInfo`).
///
/// # Errors
/// Field `public_key`, and one of these codes:
/// - `policy.key.malformed`: the key's encoding is wrong for its algorithm;
/// - `policy.key.type`: not RSA 2048/3072/4096 or EC P-256/P-384 (BR 6.1.5);
/// - `policy.key.weak`: the key is of an allowed type but weak (BR 6.1.6, 6.1.1.3);
/// - `policy.key.blocked`: the key is on the blocklist (BR 6.1.1.3);
/// - `policy.config.invalid`: a blocklist entry is not 64 hex digits, so the blocklist cannot
///   be trusted (fails closed; [`PolicyConfig::validate`] catches this at load time).
pub fn check_key(spki: &SubjectPublicKeyInfoOwned, cfg: &PolicyConfig) -> Result<KeyType, Error> {
    let key_type = keycheck::check_public_key(spki, &KeyType::ALL)
        .map_err(|err| Error::new(key_code(&err), KEY_FIELD, err.to_string()))?;

    let digest = spki.fingerprint_bytes().map_err(|_| {
        Error::new(
            "policy.key.malformed",
            KEY_FIELD,
            "the SubjectPublicKeyInfo cannot be DER-encoded (RFC 5280 4.1.2.7)",
        )
    })?;
    let digest = hex::encode(digest);
    for (i, entry) in cfg.blocked_keys.iter().enumerate() {
        if !is_sha256_hex(entry) {
            return Err(Error::new(
                "policy.config.invalid",
                format!("blocked-keys[{i}]"),
                "a blocked key is the SHA-256 of its SubjectPublicKeyInfo DER, as 64 hex digits",
            ));
        }
        if entry.eq_ignore_ascii_case(&digest) {
            return Err(Error::new(
                "policy.key.blocked",
                KEY_FIELD,
                format!(
                    "the key (SPKI SHA-256 {digest}) is on the blocklist of keys that must not be certified, e.g. known compromised (BR 6.1.1.3)"
                ),
            ));
        }
    }
    Ok(key_type)
}

/// The policy code for a [`keycheck::Error`]. The match is exhaustive, so a new rule in
/// `keycheck` must be given a code here.
fn key_code(err: &keycheck::Error) -> &'static str {
    use keycheck::Error as K;
    match err {
        K::BitStringUnusedBits
        | K::RsaParametersNotNull
        | K::RsaMalformed
        | K::EcParametersNotNamedCurve
        | K::EcPointNotUncompressed { .. } => "policy.key.malformed",
        K::UnsupportedAlgorithm(_)
        | K::UnsupportedCurve(_)
        | K::RsaModulusSize { .. }
        | K::NotAllowed { .. } => "policy.key.type",
        K::RsaExponent { .. }
        | K::RsaModulusEven
        | K::RsaSmallFactor { .. }
        | K::RsaRoca
        | K::RsaFermat { .. }
        | K::EcPointInvalid => "policy.key.weak",
    }
}

/// Decodes a PEM certificate request, verifies its self-signature (proof of possession,
/// RFC 2986 3) and returns the public key it carries. Nothing else in the CSR is used: the
/// names to certify come from the request's own lists.
///
/// # Errors
/// Field `csr`, and one of these codes:
/// - `policy.csr.malformed`: not one PEM `CERTIFICATE REQUEST` block holding a DER PKCS#10
///   request;
/// - `policy.csr.signature`: the signature does not verify, or uses an algorithm strongroom
///   does not verify (BR 7.1.3.2);
/// - `policy.key.type` / `policy.key.malformed`: the CSR's key is of a type strongroom cannot
///   verify with, or does not decode, so possession cannot be proved.
pub fn csr_public_key(pem: &str) -> Result<SubjectPublicKeyInfoOwned, Error> {
    let malformed = |why: &str| {
        Error::new(
            "policy.csr.malformed",
            CSR_FIELD,
            format!(
                "{why}; expected one PEM \"CERTIFICATE REQUEST\" block holding a DER PKCS#10 request (RFC 7468 7, RFC 2986 4)"
            ),
        )
    };
    if pem.len() > MAX_CSR_PEM {
        return Err(malformed(&format!(
            "the CSR is {} bytes, longer than the {MAX_CSR_PEM} accepted",
            pem.len()
        )));
    }
    let csr = CertReq::from_pem(pem).map_err(|err| malformed(&format!("cannot decode: {err}")))?;
    verify::verify_csr(&csr).map_err(|err| {
        let code = match &err {
            verify::Error::UnsupportedKeyAlgorithm(_) | verify::Error::UnsupportedCurve(_) => {
                "policy.key.type"
            }
            verify::Error::MalformedKey { .. } => "policy.key.malformed",
            verify::Error::UnsupportedAlgorithm(_)
            | verify::Error::AlgorithmParameters { .. }
            | verify::Error::KeyAlgorithmMismatch { .. }
            | verify::Error::MalformedSignature(_)
            | verify::Error::AlgorithmFieldMismatch { .. }
            | verify::Error::Encode { .. }
            | verify::Error::BadSignature(_) => "policy.csr.signature",
        };
        Error::new(
            code,
            CSR_FIELD,
            format!(
                "the CSR's self-signature does not prove possession of its key: {err} (RFC 2986 3)"
            ),
        )
    })?;
    Ok(csr.info.public_key)
}

/// Decodes a `SubjectPublicKeyInfo` sent as base64 (RFC 4648 4, standard alphabet, with
/// padding, no line breaks or spaces) of its DER.
///
/// # Errors
/// `policy.key.malformed`, field `public_key`, when the text is not canonical base64 or the
/// bytes are not one DER `SubjectPublicKeyInfo`.
pub fn decode_spki(b64: &str) -> Result<SubjectPublicKeyInfoOwned, Error> {
    let malformed = |why: &str| {
        Error::new(
            "policy.key.malformed",
            KEY_FIELD,
            format!(
                "{why}; expected the base64 (RFC 4648 4) of a DER SubjectPublicKeyInfo (RFC 5280 4.1.2.7)"
            ),
        )
    };
    if b64.len() > MAX_SPKI_BASE64 {
        return Err(malformed(&format!(
            "the key is {} characters, longer than the {MAX_SPKI_BASE64} accepted",
            b64.len()
        )));
    }
    let der = Base64::decode_vec(b64).map_err(|_| malformed("not canonical base64"))?;
    SubjectPublicKeyInfoOwned::from_der(&der)
        .map_err(|err| malformed(&format!("not a DER SubjectPublicKeyInfo: {err}")))
}

/// Whether `entry` is a SHA-256 digest in hex: 64 hex digits, either case.
pub(super) fn is_sha256_hex(entry: &str) -> bool {
    entry.len() == 64 && entry.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use der::{DecodePem as _, Encode as _};
    use sha2::{Digest as _, Sha256};
    use x509_cert::Certificate;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn fixture_key(name: &str) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_pem(std::fs::read(fixture(name)).unwrap()).unwrap()
    }

    fn fixture_text(name: &str) -> String {
        std::fs::read_to_string(fixture(name)).unwrap()
    }

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

    fn b64(spki: &SubjectPublicKeyInfoOwned) -> String {
        Base64::encode_string(&spki.to_der().unwrap())
    }

    #[track_caller]
    fn key_code_of(spki: &SubjectPublicKeyInfoOwned) -> &'static str {
        let err = check_key(spki, &PolicyConfig::default()).unwrap_err();
        assert_eq!(err.field, "public_key");
        err.code
    }

    #[test]
    fn good_keys_pass_with_their_type() {
        let cfg = PolicyConfig::default();
        assert_eq!(
            check_key(&cert_key("isrg-root-x1"), &cfg),
            Ok(KeyType::Rsa4096)
        );
        assert_eq!(
            check_key(&cert_key("isrg-root-x2"), &cfg),
            Ok(KeyType::EcP384)
        );
        assert_eq!(
            check_key(&cert_key("lets-encrypt-r10-signed-by-isrg-root-x1"), &cfg),
            Ok(KeyType::Rsa2048)
        );
        assert_eq!(
            check_key(&fixture_key("roca-clean-rsa2048.pem"), &cfg),
            Ok(KeyType::Rsa2048)
        );
    }

    #[test]
    fn disallowed_key_types_are_refused_as_type() {
        assert_eq!(
            key_code_of(&fixture_key("spki-p521.pem")),
            "policy.key.type"
        );
        assert_eq!(
            key_code_of(&fixture_key("spki-rsa1024.pem")),
            "policy.key.type"
        );
    }

    #[test]
    fn weak_keys_are_refused_as_weak() {
        for name in [
            "spki-rsa2048-e3.pem",
            "spki-rsa2048-fermat-weak.pem",
            "roca-vulnerable-rsa2048.pem",
        ] {
            let err = check_key(&fixture_key(name), &PolicyConfig::default()).unwrap_err();
            assert_eq!(err.code, "policy.key.weak", "{name}");
            assert!(err.rule.contains("BR"), "{name}: {err}");
        }
        // A P-384 point moved off the curve: last byte of Y changed.
        let mut spki = cert_key("isrg-root-x2");
        let mut point = spki.subject_public_key.raw_bytes().to_vec();
        *point.last_mut().unwrap() ^= 0x01;
        spki.subject_public_key = der::asn1::BitString::from_bytes(&point).unwrap();
        assert_eq!(key_code_of(&spki), "policy.key.weak");
    }

    #[test]
    fn badly_encoded_key_is_refused_as_malformed() {
        // An RSA key whose parameters are absent instead of NULL.
        let mut spki = cert_key("isrg-root-x1");
        spki.algorithm.parameters = None;
        assert_eq!(key_code_of(&spki), "policy.key.malformed");
    }

    #[test]
    fn blocked_key_is_refused_in_either_case_of_hex() {
        let spki = cert_key("lets-encrypt-r10-signed-by-isrg-root-x1");
        let digest = hex::encode(Sha256::digest(spki.to_der().unwrap()));
        for entry in [digest.clone(), digest.to_ascii_uppercase()] {
            let cfg = PolicyConfig {
                blocked_keys: vec!["00".repeat(32), entry],
                ..PolicyConfig::default()
            };
            let err = check_key(&spki, &cfg).unwrap_err();
            assert_eq!(err.code, "policy.key.blocked");
            assert!(
                err.rule.contains(&digest) && err.rule.contains("BR 6.1.1.3"),
                "{err}"
            );
        }
        // Another key is not affected.
        let cfg = PolicyConfig {
            blocked_keys: vec![digest],
            ..PolicyConfig::default()
        };
        assert!(check_key(&cert_key("isrg-root-x1"), &cfg).is_ok());
    }

    #[test]
    fn malformed_blocklist_entry_fails_closed() {
        let cfg = PolicyConfig {
            blocked_keys: vec!["sha256:abcd".into()],
            ..PolicyConfig::default()
        };
        let err = check_key(&cert_key("isrg-root-x1"), &cfg).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("policy.config.invalid", "blocked-keys[0]")
        );
    }

    #[test]
    fn weak_key_is_refused_before_the_blocklist_is_read() {
        let cfg = PolicyConfig {
            blocked_keys: vec!["not hex".into()],
            ..PolicyConfig::default()
        };
        let err = check_key(&fixture_key("spki-rsa1024.pem"), &cfg).unwrap_err();
        assert_eq!(err.code, "policy.key.type");
    }

    #[test]
    fn base64_spki_round_trips() {
        let spki = cert_key("isrg-root-x2");
        assert_eq!(decode_spki(&b64(&spki)), Ok(spki));
    }

    #[test]
    fn bad_base64_or_der_is_malformed() {
        let good = b64(&cert_key("isrg-root-x2"));
        let url_safe = good.replace('+', "-").replace('/', "_");
        assert_ne!(url_safe, good, "fixture has no + or /");
        for input in [
            String::new(),
            "!!!!".to_owned(),
            format!(" {good}"),
            format!("{good}\n"),
            good[..good.len() - 1].to_owned(),
            // Unpadded.
            "MA".to_owned(),
            url_safe,
            // Valid base64 of bytes that are not an SPKI.
            "AAAA".to_owned(),
            // An SPKI followed by trailing garbage.
            Base64::encode_string(&[Base64::decode_vec(&good).unwrap(), vec![0]].concat()),
            "A".repeat(MAX_SPKI_BASE64 + 4),
        ] {
            let err = decode_spki(&input).unwrap_err();
            assert_eq!(
                (err.code, err.field.as_str()),
                ("policy.key.malformed", "public_key"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn csr_keys_are_returned_after_the_signature_verifies() {
        let spki = csr_public_key(&fixture_text("csr-rsa2048.pem")).unwrap();
        assert_eq!(
            check_key(&spki, &PolicyConfig::default()),
            Ok(KeyType::Rsa2048)
        );
        let spki = csr_public_key(&fixture_text("csr-p384.pem")).unwrap();
        assert_eq!(
            check_key(&spki, &PolicyConfig::default()),
            Ok(KeyType::EcP384)
        );
    }

    #[test]
    fn tampered_csr_is_refused_for_its_signature() {
        let pem = fixture_text("csr-p384.pem");
        let mut der = CertReq::from_pem(&pem).unwrap().to_der().unwrap();
        // Change one byte of the subject's common name, inside the signed part.
        let at = der.windows(8).position(|w| w == b"csr-p384").unwrap();
        der[at] ^= 0x01;
        let tampered =
            pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &der)
                .unwrap();
        let err = csr_public_key(&tampered).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("policy.csr.signature", "csr")
        );
        assert!(err.rule.contains("RFC 2986"), "{err}");
    }

    #[test]
    fn csr_with_a_key_we_cannot_verify_is_refused_for_its_key_type() {
        // Rename the P-384 key's curve to P-521 (secp384r1 ends 0x22, secp521r1 0x23).
        let mut der = CertReq::from_pem(fixture_text("csr-p384.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let at = der.windows(p384.len()).position(|w| w == p384).unwrap();
        der[at + p384.len() - 1] = 0x23;
        let pem =
            pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, &der)
                .unwrap();
        let err = csr_public_key(&pem).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("policy.key.type", "csr"));
    }

    #[test]
    fn malformed_csrs_are_refused() {
        let pem = fixture_text("csr-rsa2048.pem");
        let truncated = format!("{}\n-----END CERTIFICATE REQUEST-----\n", &pem[..200]);
        for input in [
            String::new(),
            "not pem".to_owned(),
            // Right content, wrong PEM label.
            pem.replace("CERTIFICATE REQUEST", "CERTIFICATE"),
            truncated,
            // A certificate is not a CSR.
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/reference-certs/isrg-root-x2.pem"),
            )
            .unwrap(),
            "A".repeat(MAX_CSR_PEM + 1),
        ] {
            let err = csr_public_key(&input).unwrap_err();
            assert_eq!(
                (err.code, err.field.as_str()),
                ("policy.csr.malformed", "csr")
            );
        }
    }
}
