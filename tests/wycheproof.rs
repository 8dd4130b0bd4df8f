//! Wycheproof signature-verification vectors run through strongroom's own verifier
//! (`strongroom::verify::VerifyingKey`), the code that checks every HSM signature before use.
//!
//! The vectors come from the `wycheproof` crate (0.7.0, C2SP/wycheproof data as of 2026-09-10).
//! Only the DER-encoded ECDSA sets are run: X.509 carries ECDSA signatures as the DER
//! `Ecdsa-Sig-Value` (RFC 3279 §2.2.3), never as IEEE P1363 r||s.
//!
//! Each vector's result must match: "valid" → `Ok`, "invalid" → `Err`. "acceptable" is decided per
//! flag in [`acceptable`]; an acceptable vector with a flag not decided there fails the test, so a
//! new kind of edge case in a future data release is looked at, not silently passed. Every set
//! asserts how many vectors it ran, so the test cannot pass vacuously.

use std::collections::BTreeMap;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::Decode;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use strongroom::verify::VerifyingKey;
use wycheproof::TestResult;

/// What a set produced: vectors run, and how many were accepted / refused.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    run: usize,
    accepted: usize,
    refused: usize,
}

/// The signature `AlgorithmIdentifier` as a certificate carries it: RSA with NULL parameters
/// (RFC 4055 §5), ECDSA with parameters absent (RFC 5758 §3.2).
fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    let rsa = [
        SHA_256_WITH_RSA_ENCRYPTION,
        SHA_384_WITH_RSA_ENCRYPTION,
        SHA_512_WITH_RSA_ENCRYPTION,
    ]
    .contains(&oid);
    AlgorithmIdentifierOwned {
        oid,
        parameters: rsa.then(|| der::asn1::Null.into()),
    }
}

/// The decision for an "acceptable" vector, by flag: `Some(true)` = must verify, `Some(false)` =
/// must be refused, `None` = undecided (the test fails and names the flag).
fn acceptable(flag: &str) -> Option<bool> {
    match flag {
        // RSA PKCS#1 v1.5 whose DigestInfo omits the NULL parameters of the hash
        // AlgorithmIdentifier. RFC 8017 §9.2 note 1 gives the one DER encoding per hash, with
        // NULL, and verification re-encodes and compares (§8.2.2 step 4): refused. A CA's own
        // HSM never produces it, so refusing costs nothing.
        "MissingNull" => Some(false),
        _ => None,
    }
}

/// Runs every vector of `groups` (SPKI DER, [(tcId, flags, result, msg, sig)]) under `oid`.
fn run<G, T>(
    name: &str,
    oid: ObjectIdentifier,
    groups: &[G],
    spki_der: impl Fn(&G) -> &[u8],
    tests: impl Fn(&G) -> &[T],
    vector: impl Fn(&T) -> (usize, Vec<String>, TestResult, &[u8], &[u8]),
) -> Tally {
    let alg = algorithm(oid);
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for group in groups {
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der(group));
        let key = spki
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|s| VerifyingKey::from_spki(s).map_err(|e| e.to_string()));
        for t in tests(group) {
            let (id, flags, result, msg, sig) = vector(t);
            tally.run += 1;
            let outcome = match &key {
                Ok(key) => key.verify(&alg, msg, sig).map_err(|e| e.to_string()),
                Err(e) => Err(format!("key refused: {e}")),
            };
            if outcome.is_ok() {
                tally.accepted += 1;
            } else {
                tally.refused += 1;
            }
            let expected = match result {
                TestResult::Valid => true,
                TestResult::Invalid => false,
                TestResult::Acceptable => {
                    let decided: Vec<Option<bool>> = flags.iter().map(|f| acceptable(f)).collect();
                    match decided.as_slice() {
                        [Some(d), rest @ ..] if rest.iter().all(|r| *r == Some(*d)) => *d,
                        _ => {
                            failures.push(format!(
                                "{name} tcId {id}: acceptable with undecided flags {flags:?}"
                            ));
                            continue;
                        }
                    }
                }
            };
            if outcome.is_ok() != expected {
                failures.push(format!(
                    "{name} tcId {id} ({result:?}, flags {flags:?}): got {outcome:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    tally
}

/// The ECDSA sets: (set, signature algorithm, vectors expected, of which valid).
#[test]
fn ecdsa_der_vectors_match() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let sets = [
        (TestName::EcdsaSecp256r1Sha256, ECDSA_WITH_SHA_256, 484, 174),
        (TestName::EcdsaSecp384r1Sha384, ECDSA_WITH_SHA_384, 504, 194),
        (TestName::EcdsaSecp384r1Sha256, ECDSA_WITH_SHA_256, 472, 162),
    ];
    let mut counts = BTreeMap::new();
    for (name, oid, expected, valid) in sets {
        let set = TestSet::load(name).expect("the crate's vectors parse");
        assert_eq!(set.number_of_tests, expected, "{name:?}: the data changed");
        let tally = run(
            &format!("{name:?}"),
            oid,
            &set.test_groups,
            |g| &g.der,
            |g| &g.tests,
            |t| {
                let flags = t.flags.iter().map(|f| format!("{f:?}")).collect();
                (t.tc_id, flags, t.result, &t.msg, &t.sig)
            },
        );
        assert_eq!(tally.run, expected, "{name:?}: vectors run");
        assert_eq!(tally.accepted, valid, "{name:?}: vectors accepted");
        let _ = counts.insert(format!("{name:?}"), tally);
    }
    println!("{counts:#?}");
}

/// The RSA PKCS#1 v1.5 sets: (set, signature algorithm, vectors expected, of which valid).
#[test]
fn rsa_pkcs1v15_vectors_match() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let sets = [
        (TestName::Rsa2048Sha256, SHA_256_WITH_RSA_ENCRYPTION, 259, 9),
        (TestName::Rsa2048Sha384, SHA_384_WITH_RSA_ENCRYPTION, 258, 7),
        (TestName::Rsa2048Sha512, SHA_512_WITH_RSA_ENCRYPTION, 259, 8),
        (TestName::Rsa3072Sha256, SHA_256_WITH_RSA_ENCRYPTION, 259, 8),
        (TestName::Rsa3072Sha384, SHA_384_WITH_RSA_ENCRYPTION, 259, 7),
        (TestName::Rsa3072Sha512, SHA_512_WITH_RSA_ENCRYPTION, 260, 8),
        (TestName::Rsa4096Sha256, SHA_256_WITH_RSA_ENCRYPTION, 258, 7),
        (TestName::Rsa4096Sha384, SHA_384_WITH_RSA_ENCRYPTION, 259, 7),
        (TestName::Rsa4096Sha512, SHA_512_WITH_RSA_ENCRYPTION, 259, 7),
    ];
    let mut counts = BTreeMap::new();
    for (name, oid, expected, valid) in sets {
        let set = TestSet::load(name).expect("the crate's vectors parse");
        assert_eq!(set.number_of_tests, expected, "{name:?}: the data changed");
        let tally = run(
            &format!("{name:?}"),
            oid,
            &set.test_groups,
            |g| &g.der,
            |g| &g.tests,
            |t| {
                let flags = t.flags.iter().map(|f| format!("{f:?}")).collect();
                (t.tc_id, flags, t.result, &t.msg, &t.sig)
            },
        );
        assert_eq!(tally.run, expected, "{name:?}: vectors run");
        assert_eq!(tally.accepted, valid, "{name:?}: vectors accepted");
        let _ = counts.insert(format!("{name:?}"), tally);
    }
    println!("{counts:#?}");
}
