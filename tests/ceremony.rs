//! Ceremonies end to end on SoftHSM: the demo's outputs checked by independent tools, each step's
//! refusals, and the transcript.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use der::{DecodePem, Encode, Tagged};
use x509_cert::Certificate;

/// The demo, run once for this test binary into target/tmp.
fn demo() -> &'static (PathBuf, String) {
    static DEMO: OnceLock<(PathBuf, String)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ceremony-demo");
        let _ = std::fs::remove_dir_all(&out);
        let run = Command::new(strongroom_bin())
            .args(["demo", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "demo failed:\n{}", text(&run));
        (out, text(&run))
    })
}

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem(std::fs::read(path).unwrap()).unwrap()
}

fn reference(name: &str) -> Certificate {
    cert(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/reference-certs")
            .join(name),
    )
}

/// Every reference certificate is the published one: its SHA-256 (over the DER) is the one its
/// README lists, and the README lists every file.
#[test]
fn reference_certs_match_their_fingerprints() {
    use sha2::Digest;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-certs");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut listed = 0;
    for line in readme.lines() {
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        let [_, file, fingerprint, _] = cells[..] else {
            continue;
        };
        if !file.ends_with(".pem") {
            continue;
        }
        let der = reference(file).to_der().unwrap();
        assert_eq!(
            hex::encode_upper(sha2::Sha256::digest(&der)),
            fingerprint,
            "{file}"
        );
        listed += 1;
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("pem".as_ref()))
        .count();
    assert_eq!(
        listed, files,
        "the README lists every reference certificate"
    );
    assert!(listed >= 19);
}

#[test]
fn demo_outputs_verify_with_openssl() {
    let (d, _) = demo();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
    for key in [
        "roots",
        "intermediates",
        "cross_sign",
        "crl",
        "transcript",
        "leaf",
    ] {
        assert!(manifest.get(key).is_some(), "manifest lacks {key}");
    }
    let p = |rel: &str| d.join(rel);
    for root in ["root-r1.pem", "root-e1.pem", "cross/demotrust-root-x3.pem"] {
        openssl_verify(&p(root), None, &["-check_ss_sig"], &p(root)).unwrap();
    }
    openssl_verify(&p("root-r1.pem"), None, &[], &p("int-r10.pem")).unwrap();
    openssl_verify(&p("root-e1.pem"), None, &[], &p("int-e10.pem")).unwrap();
    // The TLS server certificate the demo asked the signing service for, through E10.
    openssl_verify(
        &p("root-e1.pem"),
        Some(&p("int-e10.pem")),
        &["-purpose", "sslserver"],
        &p("leaf-www.pem"),
    )
    .unwrap();
    // R10's delegated OCSP responder chains to the RSA root through R10, for OCSP signing.
    openssl_verify(
        &p("root-r1.pem"),
        Some(&p("int-r10.pem")),
        &["-purpose", "ocsphelper"],
        &p("ocsp-r10.pem"),
    )
    .unwrap();
    let responder = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "extendedKeyUsage,keyUsage,noCheck,crlDistributionPoints,authorityInfoAccess,certificatePolicies", "-in"])
        .arg(p("ocsp-r10.pem"))
        .output()
        .unwrap();
    let responder = text(&responder);
    assert!(
        responder.contains("OCSP Signing")
            && responder.contains("OCSP No Check")
            && responder.contains("critical\n    Digital Signature")
            && !responder.contains("CRL Distribution")
            && !responder.contains("Authority Information Access")
            && !responder.contains("Policies"),
        "{responder}"
    );
    // The intermediate R10 through both roots: ours, and the cross-signer's via the cross-certificate.
    openssl_verify(
        &p("cross/demotrust-root-x3.pem"),
        None,
        &[],
        &p("cross/int-r10-by-demotrust-x3.pem"),
    )
    .unwrap();
    assert!(
        openssl_verify(&p("root-e1.pem"), None, &[], &p("int-r10.pem")).is_err(),
        "wrong root must fail"
    );
    // The CRL: signature, and R9 is revoked while R10 is not.
    let crl = Command::new("openssl")
        .args([
            "crl",
            "-noout",
            "-verify",
            "-no-CApath",
            "-no-CAstore",
            "-in",
        ])
        .arg(p("root-r1-crl-1.pem"))
        .arg("-CAfile")
        .arg(p("root-r1.pem"))
        .output()
        .unwrap();
    assert!(text(&crl).contains("verify OK"), "{}", text(&crl));
    let crl_file = p("root-r1-crl-1.pem").display().to_string();
    let revoked = openssl_verify(
        &p("root-r1.pem"),
        None,
        &["-crl_check", "-CRLfile", &crl_file],
        &p("int-r9.pem"),
    );
    assert!(revoked.unwrap_err().contains("certificate revoked"));
    openssl_verify(
        &p("root-r1.pem"),
        None,
        &["-crl_check", "-CRLfile", &crl_file],
        &p("int-r10.pem"),
    )
    .unwrap();
    // The cross-sign request: valid self-signature; subject bytes and key are R10's; no attributes.
    let req = Command::new("openssl")
        .args(["req", "-noout", "-verify", "-in"])
        .arg(p("cross/int-r10.csr"))
        .output()
        .unwrap();
    assert!(
        req.status.success() && text(&req).contains("verify OK"),
        "{}",
        text(&req)
    );
    let (csr, _) = strongroom::x509::read_pem::<x509_cert::request::CertReq>(
        &p("cross/int-r10.csr"),
        "CERTIFICATE REQUEST",
    )
    .unwrap();
    let r10 = cert(&p("int-r10.pem"));
    assert_eq!(
        csr.info.subject.to_der().unwrap(),
        r10.tbs_certificate().subject().to_der().unwrap()
    );
    assert_eq!(
        &csr.info.public_key,
        r10.tbs_certificate().subject_public_key_info()
    );
    assert!(csr.info.attributes.is_empty());
}

#[test]
fn demo_outputs_pass_pkilint() {
    let (d, _) = demo();
    let p = |rel: &str| d.join(rel);
    let cert_lint = "lint_cabf_serverauth_cert";
    for root in ["root-r1.pem", "root-e1.pem", "cross/demotrust-root-x3.pem"] {
        assert_eq!(
            pkilint(cert_lint, &["-t", "ROOT-CA"], &p(root)),
            Vec::<String>::new(),
            "{root}"
        );
    }
    for int in ["int-r10.pem", "int-e10.pem", "int-r9.pem"] {
        assert_eq!(
            pkilint(cert_lint, &["-t", "INTERNAL-UNCONSTRAINED-TLS-CA"], &p(int)),
            Vec::<String>::new(),
            "{int}"
        );
    }
    assert_eq!(
        pkilint(
            cert_lint,
            &["-t", "EXTERNAL-CROSS-CA"],
            &p("cross/int-r10-by-demotrust-x3.pem")
        ),
        Vec::<String>::new()
    );
    // The delegated OCSP responder, with pkilint's BR 7.1.2.8 certificate type.
    assert_eq!(
        pkilint(cert_lint, &["-t", "OCSP-RESPONDER"], &p("ocsp-r10.pem")),
        Vec::<String>::new()
    );
    assert_eq!(
        pkilint(
            "lint_crl",
            &["-t", "ARL", "-p", "BR"],
            &p("root-r1-crl-1.pem")
        ),
        Vec::<String>::new()
    );
    for (issuer, subject) in [
        ("root-r1.pem", "int-r10.pem"),
        ("root-e1.pem", "int-e10.pem"),
        (
            "cross/demotrust-root-x3.pem",
            "cross/int-r10-by-demotrust-x3.pem",
        ),
        ("int-r10.pem", "ocsp-r10.pem"),
    ] {
        let out = Command::new(pkilint_bin("lint_pkix_signer_signee_cert_chain"))
            .args(["lint", "-s", "ERROR"])
            .arg(p(issuer))
            .arg(p(subject))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{issuer} -> {subject}: {}",
            text(&out)
        );
    }
}

/// (extension OID, critical) in order, and the subject's attribute string tags.
fn profile(c: &Certificate) -> (Vec<(String, bool)>, Vec<der::Tag>) {
    let exts = c
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .map(|e| (e.extn_id.to_string(), e.critical))
        .collect();
    let tags = c
        .tbs_certificate()
        .subject()
        .iter()
        .map(|atv| atv.value.tag())
        .collect();
    (exts, tags)
}

#[test]
fn profiles_match_isrg_and_lets_encrypt() {
    let (d, _) = demo();
    // Roots: same extensions, order and criticality as ISRG Root X1 and X2 (KU c, BC c, SKI);
    // subject C/O/CN all PrintableString.
    for (ours, theirs) in [
        ("root-r1.pem", "isrg-root-x1.pem"),
        ("root-e1.pem", "isrg-root-x2.pem"),
    ] {
        assert_eq!(
            profile(&cert(&d.join(ours))),
            profile(&reference(theirs)),
            "{ours} vs {theirs}"
        );
    }
    // Intermediates: as R10 and E5 (KU c, EKU, BC c, SKI, AKI, AIA, CP, CRLDP).
    for (ours, theirs) in [
        ("int-r10.pem", "lets-encrypt-r10-signed-by-isrg-root-x1.pem"),
        ("int-e10.pem", "lets-encrypt-e5-signed-by-isrg-root-x2.pem"),
        (
            "cross/int-r10-by-demotrust-x3.pem",
            "lets-encrypt-e5-cross-signed-by-isrg-root-x1.pem",
        ),
    ] {
        assert_eq!(
            profile(&cert(&d.join(ours))),
            profile(&reference(theirs)),
            "{ours} vs {theirs}"
        );
    }
    // Key usage bits and path length as in the references.
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
    let ku = |c: &Certificate| {
        c.tbs_certificate()
            .get_extension::<KeyUsage>()
            .unwrap()
            .unwrap()
            .1
    };
    let bc = |c: &Certificate| {
        c.tbs_certificate()
            .get_extension::<BasicConstraints>()
            .unwrap()
            .unwrap()
            .1
    };
    let r1 = cert(&d.join("root-r1.pem"));
    let x1 = reference("isrg-root-x1.pem");
    assert_eq!(ku(&r1), ku(&x1));
    assert_eq!(bc(&r1), bc(&x1));
    let r10 = cert(&d.join("int-r10.pem"));
    let le = reference("lets-encrypt-r10-signed-by-isrg-root-x1.pem");
    assert_eq!(ku(&r10), ku(&le));
    assert_eq!(bc(&r10), bc(&le));
}

#[test]
fn demo_keys_are_sensitive_never_extractable_sign_only() {
    let (d, _) = demo();
    let conf = d.join("hsm/softhsm2.conf");
    let pin = std::fs::read_to_string(d.join("hsm/user-pin")).unwrap();
    for token in ["strongroom-demo", "cross-signer-demo"] {
        let out = Command::new("pkcs11-tool")
            .args([
                "--module",
                &module().display().to_string(),
                "--token-label",
                token,
                "--login",
            ])
            .args([
                "--pin",
                "env:DEMO_PIN",
                "--list-objects",
                "--type",
                "privkey",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .env("DEMO_PIN", pin.trim())
            .output()
            .unwrap();
        let listing = text(&out);
        assert!(out.status.success(), "{listing}");
        let keys: Vec<&str> = listing.split("Private Key Object").skip(1).collect();
        assert_eq!(
            keys.len(),
            if token == "strongroom-demo" { 6 } else { 1 },
            "{listing}"
        );
        if token == "strongroom-demo" {
            // The signing service's issuer keys are among those checked below.
            let config = std::fs::read_to_string(d.join("service/strongroom.toml")).unwrap();
            let issuer_keys: Vec<&str> = config
                .lines()
                .filter_map(|l| l.strip_prefix("key = \"")?.split(";object=").nth(1))
                .map(|o| o.trim_end_matches('"'))
                .collect();
            assert_eq!(issuer_keys, ["demo-int-r10", "demo-int-e10"], "{config}");
            for label in issuer_keys {
                assert!(
                    keys.iter()
                        .any(|k| k.contains(&format!("label:      {label}\n"))),
                    "issuer key {label} not listed:\n{listing}"
                );
            }
        }
        for key in keys {
            assert!(
                key.contains("Usage:      sign\n"),
                "not sign-only (decrypt/unwrap/derive must be off):\n{key}"
            );
            for access in [
                "sensitive",
                "always sensitive",
                "never extractable",
                "local",
            ] {
                assert!(key.contains(access), "missing {access}:\n{key}");
            }
        }
    }
}

#[test]
fn transcript_chain_verifies_and_holds_no_pin() {
    let (d, output) = demo();
    let pin = std::fs::read_to_string(d.join("hsm/user-pin")).unwrap();
    let so_pin = std::fs::read_to_string(d.join("hsm/so-pin")).unwrap();
    let transcript = std::fs::read_to_string(d.join("transcript.jsonl")).unwrap();
    for secret in [pin.trim(), so_pin.trim()] {
        assert!(!transcript.contains(secret), "PIN in transcript");
        assert!(!output.contains(secret), "PIN in demo output");
    }
    let run = Command::new(strongroom_bin())
        .args(["ceremony", "transcript"])
        .arg(d.join("transcript.jsonl"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("transcript chain verified"));
    // What an auditor needs is there.
    for needle in [
        "script_sha256",
        "library_description",
        "spki_sha256",
        "certificate_sha256",
        "csr_sha256",
        "crl_sha256",
        "never_extractable",
        "serial",
        "not_after",
    ] {
        assert!(transcript.contains(needle), "transcript lacks {needle}");
    }
}

/// The shipped root ceremony (`ceremony/root.toml`) on a sandbox token, generating a key with
/// this label and type.
fn root_shipped(sandbox: &Sandbox, token: &str, label: &str, key_type: &str) -> ShippedScript {
    ShippedScript::load("root.toml")
        .on_token(token, &sandbox.pin_file)
        .set("root-key", "label", label)
        .set("root-key", "key-type", key_type)
}

/// [`root_shipped`]'s text, with the fields of `extra` (a TOML fragment) set in the root step.
fn root_script(sandbox: &Sandbox, token: &str, label: &str, key_type: &str, extra: &str) -> String {
    root_shipped(sandbox, token, label, key_type)
        .set_toml("root", extra)
        .text()
}

/// Runs a script that must be refused, and checks the error names `field` and `rule`, and that
/// nothing was written: no file in the ceremony directory, no object on the token.
fn assert_refused(sandbox: &Sandbox, token: &str, script: &str, field: &str, rule: &str) {
    let before = sandbox.files();
    let objects = sandbox.pkcs11_objects(token);
    let out = sandbox.ceremony("s.toml", script);
    let msg = text(&out);
    assert!(!out.status.success(), "should be refused:\n{msg}");
    assert!(msg.contains(field), "error should name {field:?}:\n{msg}");
    assert!(msg.contains(rule), "error should name {rule:?}:\n{msg}");
    assert!(msg.contains("nothing was done"), "{msg}");
    assert_eq!(sandbox.files(), before, "files were written");
    assert_eq!(sandbox.pkcs11_objects(token), objects, "the token changed");
    assert!(!msg.contains(TEST_PIN));
}

#[test]
fn refuses_bad_profiles_before_touching_the_hsm() {
    let s = Sandbox::new(&["refusals"]);
    let t = "refusals";
    // A delegated OCSP responder (BR 7.1.2.8) signed by the root made in the same script: too
    // long-lived, backdated more than a day, or certifying the issuer's own key.
    let responder = |extra: &str| {
        root_script(&s, t, "r", "ec-p256", "")
            + &format!(
                r#"
[[step]]
id = "ok"
action = "generate-key"
label = "ocsp"
key-type = "ec-p256"
public-key-out = "ocsp.pub.pem"

[[step]]
id = "ocsp"
action = "sign-ocsp-responder"
issuer-key = {{ step = "root-key" }}
issuer-certificate = {{ step = "root" }}
subject = {{ country = "US", organization = "Test CA", common-name = "Test OCSP" }}
certificate-out = "ocsp.pem"
{extra}
"#
            )
    };
    assert_refused(
        &s,
        t,
        &responder("public-key = { step = \"ok\" }\nvalidity-days = 91"),
        "validity-days",
        "RFC 6960 4.2.2.2.1",
    );
    assert_refused(
        &s,
        t,
        &responder("public-key = { step = \"ok\" }\nnot-before = \"2026-01-01T00:00:00Z\""),
        "not-before",
        "BR 7.1.2.8.1",
    );
    assert_refused(
        &s,
        t,
        &responder("public-key = { step = \"root-key\" }"),
        "public-key",
        "RFC 6960 4.2.2.2",
    );
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "r", "ec-p256", "validity-days = 10000"),
        "validity-days",
        "BR 7.1.2.1.1",
    );
    assert_refused(
        &s,
        t,
        &root_script(
            &s,
            t,
            "r",
            "ec-p256",
            "extended-key-usage = [\"serverAuth\"]",
        ),
        "extended-key-usage",
        "BR 7.1.2.1.2",
    );
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "r", "ec-p256", "key-usage = [\"cRLSign\"]"),
        "key-usage",
        "keyCertSign",
    );
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "r", "ec-p521", ""),
        "key-type",
        "BR 6.1.5",
    );
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "r", "rsa-1024", ""),
        "key-type",
        "unsupported",
    );
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "r", "ec-p256", "colour = \"red\""),
        "colour",
        "unknown field",
    );
    let literal = root_shipped(&s, t, "r", "ec-p256")
        .hsm("pin", "123456")
        .text();
    assert_refused(&s, t, &literal, "hsm.pin", "literal PIN is refused");
    assert!(
        !text(&s.ceremony("s.toml", &literal)).contains("123456"),
        "the literal PIN must not be echoed"
    );
}

#[test]
fn refuses_existing_label_and_existing_output() {
    let s = Sandbox::new(&["existing"]);
    let t = "existing";
    let out = s.ceremony("first.toml", &root_script(&s, t, "taken", "ec-p256", ""));
    assert!(out.status.success(), "{}", text(&out));
    // Same label again, outputs elsewhere: refused at pre-flight.
    let again = root_shipped(&s, t, "taken", "ec-p256")
        .set("root-key", "public-key-out", "b.pub.pem")
        .set("root", "certificate-out", "b.pem")
        .text();
    assert_refused(&s, t, &again, "label", "already exists");
    // New label, existing output file: refused at validation.
    assert_refused(
        &s,
        t,
        &root_script(&s, t, "fresh", "ec-p256", ""),
        "public-key-out",
        "exists already",
    );
}

#[test]
fn wrong_pin_is_reported_once_and_does_not_lock_the_token() {
    let s = Sandbox::new(&["pins"]);
    let wrong = s.tmp.path().join("wrong-pin");
    std::fs::write(&wrong, "not-the-pin").unwrap();
    let script = root_shipped(&s, "pins", "k1", "ec-p256")
        .hsm("pin", toml_ref("file", &wrong.display().to_string()))
        .text();
    for _ in 0..3 {
        let out = s.ceremony("s.toml", &script);
        assert!(!out.status.success());
        assert_eq!(
            text(&out).matches("refused the PIN").count(),
            1,
            "{}",
            text(&out)
        );
        assert!(!text(&out).contains("not-the-pin"));
        assert!(s.files().is_empty());
    }
    let out = s.ceremony("s.toml", &root_script(&s, "pins", "k1", "ec-p256", ""));
    assert!(
        out.status.success(),
        "the right PIN still works: {}",
        text(&out)
    );
}

#[test]
fn every_step_runs_on_one_token_and_checks_its_inputs() {
    // Root, intermediate, CSR, a cross-certificate by a second root, the check and a CRL, in one
    // token; then the refusals that depend on earlier outputs.
    let s = Sandbox::new(&["steps"]);
    let hsm = hsm_table("steps", &s.pin_file);
    let script = format!(
        r#"
[ceremony]
name = "all steps"
{hsm}
[[step]]
id = "rk"
action = "generate-key"
label = "root"
key-type = "ec-p384"
public-key-out = "root.pub.pem"

[[step]]
id = "root"
action = "self-sign-root"
key = {{ step = "rk" }}
subject = {{ country = "US", organization = "Test CA", common-name = "Test Root" }}
validity-days = 3000
certificate-out = "root.pem"

[[step]]
id = "ik"
action = "generate-key"
label = "int"
key-type = "ec-p256"
public-key-out = "int.pub.pem"

[[step]]
id = "int"
action = "sign-intermediate"
issuer-key = {{ step = "rk" }}
issuer-certificate = {{ step = "root" }}
public-key = {{ step = "ik" }}
subject = {{ country = "US", organization = "Test CA", common-name = "Test Issuing CA" }}
validity-days = 1000
crl-url = "http://c.example.com/"
ca-issuers-url = "http://i.example.com/"
certificate-out = "int.pem"

[[step]]
id = "csr"
action = "make-csr"
key = {{ step = "ik" }}
subject-from = {{ step = "int" }}
csr-out = "int.csr"

[[step]]
id = "xk"
action = "generate-key"
label = "other-root"
key-type = "rsa-2048"
public-key-out = "x.pub.pem"

[[step]]
id = "x"
action = "self-sign-root"
key = {{ step = "xk" }}
subject = {{ country = "DE", organization = "Other Trust", common-name = "Other Root" }}
validity-days = 3000
certificate-out = "x.pem"

[[step]]
id = "cross"
action = "sign-cross-certificate"
issuer-key = {{ step = "xk" }}
issuer-certificate = {{ step = "x" }}
existing-certificate = {{ step = "int" }}
csr = {{ step = "csr" }}
validity-days = 300
crl-url = "http://c.other.example.com/"
ca-issuers-url = "http://i.other.example.com/"
certificate-out = "cross.pem"

[[step]]
id = "check"
action = "check-cross-signed"
intermediate = {{ step = "int" }}
cross-signed = {{ step = "cross" }}
cross-signer-root = {{ step = "x" }}

[[step]]
id = "crl"
action = "sign-crl"
issuer-key = {{ step = "rk" }}
issuer-certificate = {{ step = "root" }}
crl-number = 5
next-update-days = 30
revoked = [ {{ certificate = {{ step = "int" }}, reason = "cessationOfOperation" }} ]
crl-out = "root.crl"
"#
    );
    let out = s.ceremony("all.toml", &script);
    assert!(out.status.success(), "{}", text(&out));
    let d = &s.dir;
    openssl_verify(&d.join("root.pem"), None, &[], &d.join("int.pem")).unwrap();
    openssl_verify(&d.join("x.pem"), None, &[], &d.join("cross.pem")).unwrap();

    // check-cross-signed reports every difference: the cross-certificate is not for "root".
    let check = "[ceremony]\nname = \"bad check\"\n[[step]]\nid = \"c\"\naction = \"check-cross-signed\"\nintermediate = { file = \"root.pem\" }\ncross-signed = { file = \"cross.pem\" }\ncross-signer-root = { file = \"root.pem\" }\n";
    let out = s.ceremony("check.toml", check);
    let msg = text(&out);
    assert!(!out.status.success());
    for diff in [
        "subject",
        "subjectPublicKeyInfo",
        "extKeyUsage",
        "signature",
        "issuer",
    ] {
        assert!(msg.contains(diff), "difference {diff} not reported:\n{msg}");
    }

    // A CRL number that does not increase is refused before signing.
    let crl = format!(
        "[ceremony]\nname = \"crl\"\n{hsm}\n[[step]]\nid = \"c\"\naction = \"sign-crl\"\nissuer-key = {{ uri = \"pkcs11:object=root\" }}\nissuer-certificate = {{ file = \"root.pem\" }}\ncrl-number = 5\nprevious-crl = \"root.crl\"\nnext-update-days = 30\ncrl-out = \"root-2.crl\"\n"
    );
    assert_refused(&s, "steps", &crl, "crl-number", "RFC 5280 5.2.3");
    // A CRL valid for more than 365 days is refused (BR 4.9.7).
    let long = crl
        .replace("crl-number = 5", "crl-number = 6")
        .replace("next-update-days = 30", "next-update-days = 400");
    assert_refused(&s, "steps", &long, "next-update-days", "BR 4.9.7");
    // An unspecified reason is refused for a CA certificate (BR 7.2.2).
    let unspecified = crl.replace("crl-number = 5", "crl-number = 6").replace(
        "crl-out",
        "revoked = [ { certificate = { file = \"int.pem\" }, reason = \"unspecified\" } ]\ncrl-out",
    );
    assert_refused(&s, "steps", &unspecified, "revoked[0].reason", "BR 7.2.2");
    // An intermediate outliving its root is refused.
    let long_int = script.replace("validity-days = 1000", "validity-days = 4000");
    let fresh = Sandbox::new(&["steps2"]);
    let long_int = long_int.replace(&hsm, &hsm_table("steps2", &fresh.pin_file));
    assert_refused(
        &fresh,
        "steps2",
        &long_int,
        "validity-days",
        "RFC 5280 6.1.3",
    );
}

#[test]
fn production_scripts_validate() {
    // Each production-shaped script is validated (no HSM, nothing written) in a directory that
    // holds just the inputs it names, taken from the demo's outputs.
    let (d, _) = demo();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremony");
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("root.toml", &[]),
        ("intermediate.toml", &[("root-r1.pem", "root-x1.pem")]),
        ("cross-sign-csr.toml", &[("int-r10.pem", "r1.pem")]),
        ("ocsp-responder.toml", &[("int-r10.pem", "r1.pem")]),
        (
            "check-cross-signed.toml",
            &[
                ("int-r10.pem", "r1.pem"),
                ("cross/int-r10-by-demotrust-x3.pem", "r1-cross-signed.pem"),
                ("cross/demotrust-root-x3.pem", "cross-signer-root.pem"),
            ],
        ),
        (
            "crl.toml",
            &[
                ("root-r1.pem", "root-x1.pem"),
                ("root-r1-crl-1.pem", "root-x1-crl-1.pem"),
                ("int-r9.pem", "r0.pem"),
            ],
        ),
    ];
    // The scripts carry the dates of a planned ceremony; the demo's certificates start when the
    // demo ran. Each fixed `not-before` moves to a day after now, inside the demo's validity.
    let tomorrow = strongroom::time::rfc3339(
        std::time::SystemTime::now() + std::time::Duration::from_secs(86_400),
    );
    let copies = tempfile::tempdir().unwrap();
    for (name, inputs) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in inputs {
            let _ = std::fs::copy(d.join(from), dir.path().join(to)).unwrap();
        }
        let script: String = std::fs::read_to_string(scripts.join(name))
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with("not-before = ") {
                    format!("not-before = \"{tomorrow}\"\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let script_path = copies.path().join(name);
        std::fs::write(&script_path, script).unwrap();
        let strongroom = |verb: &str| {
            Command::new(strongroom_bin())
                .args(["ceremony", verb])
                .arg(&script_path)
                .arg("--dir")
                .arg(dir.path())
                .output()
                .unwrap()
        };
        let out = strongroom("check");
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            inputs.len(),
            "check wrote something"
        );
        if name == "check-cross-signed.toml" {
            // No HSM needed: it runs, and passes on the demo's real files.
            let out = strongroom("run");
            assert!(out.status.success(), "{}", text(&out));
        }
    }
}

#[test]
fn the_pin_is_not_in_a_ceremony_s_argv_environment_output_or_files() {
    let s = Sandbox::new(&["argv"]);
    // An RSA-4096 key takes about a second to generate: long enough to read the live process.
    let script = root_script(&s, "argv", "argv-root", "rsa-4096", "");
    let path = s.tmp.path().join("argv.toml");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new(strongroom_bin())
        .args(["ceremony", "run"])
        .arg(&path)
        .arg("--dir")
        .arg(&s.dir)
        .arg("--module")
        .arg(module())
        .arg("--yes")
        .env("SOFTHSM2_CONF", &s.conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = 0;
    while child.try_wait().unwrap().is_none() {
        // Read as long as the process lives; a read racing its exit finds nothing.
        if let (Ok(cmdline), Ok(environ)) = (
            std::fs::read(format!("/proc/{pid}/cmdline")),
            std::fs::read(format!("/proc/{pid}/environ")),
        ) {
            if !cmdline.is_empty() {
                seen += 1;
                let all = [cmdline, environ].concat();
                assert!(
                    all.windows(8).any(|w| w == b"ceremony"),
                    "read the ceremony's argv"
                );
                assert!(
                    !all.windows(TEST_PIN.len())
                        .any(|w| w == TEST_PIN.as_bytes()),
                    "PIN in the ceremony's argv or environment"
                );
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(seen > 0, "never saw the ceremony process running");
    let out = child.wait_with_output().unwrap();
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(!output.contains(TEST_PIN), "PIN in the ceremony's output");
    let files = s.files();
    assert!(
        files.iter().any(|f| f.ends_with("transcript.jsonl")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("root-x1.pem")),
        "{files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(TEST_PIN.len())
                .any(|w| w == TEST_PIN.as_bytes()),
            "PIN in {}",
            file.display()
        );
    }
}
