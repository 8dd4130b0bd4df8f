//! A lying HSM: every kind of thing strongroom signs is refused, with nothing released or
//! recorded as issued, when the HSM returns a signature that does not verify.
//!
//! The HSM is SoftHSM behind `tests/fault-sign/fault_sign.c`, a PKCS#11 module built here with
//! `cc` into the test's temporary directory. It passes every call to SoftHSM, but while its
//! control file exists it flips a bit of each signature `C_Sign` returns. The service and the
//! ceremonies load it as their `module`; the control file is created and removed between
//! steps, so that what must be signed first (a precertificate, a root) is signed honestly.
//!
//! What each refusal must show:
//! - service (certificate, precertificate, final certificate, CRL, OCSP response, OCSP batch):
//!   a 500 with code `hsm.bad_signature`, no certificate/CRL/response in the body, no new
//!   record in the audit store but the refusals, and `strongroom_hsm_bad_signatures_total`
//!   counting each one;
//! - ceremony (root, intermediate, CSR, cross-certificate, CRL, OCSP responder certificate):
//!   a failed run naming the step and the bad signature, no output file, and the transcript
//!   ending with that step's `step-failed` event (no `ceremony-end`).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::{Daemon, Rt, copy_demo, counter, subscriber_key};
use common::*;
use serde_json::{Value, json};

/// The wrapper module's source.
const FAULT_SIGN_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fault-sign/fault_sign.c");

/// The message every refusal carries (hsm::Error::BadSignature).
const NOT_VERIFIED: &str = "the HSM's signature does not verify under the public key";

/// Prints `SKIPPED: why` and returns true, or fails under CI=true.
fn skip(why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cannot run under CI: {why}"
    );
    println!("SKIPPED: {why}");
    true
}

/// The lying module built for one test, and its switch.
struct Liar {
    _dir: tempfile::TempDir,
    module: PathBuf,
    control: PathBuf,
}

impl Liar {
    /// Builds the wrapper around SoftHSM; `Err(why)` when it cannot be built here.
    fn build() -> Result<Liar, String> {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("fault_sign.so");
        let control = dir.path().join("corrupt-signatures");
        let cflags = Command::new("pkg-config")
            .args(["--cflags", "p11-kit-1"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "-I/usr/include/p11-kit-1".into());
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
            .arg(&module)
            .args(cflags.split_whitespace())
            .arg(format!("-DREAL_MODULE=\"{}\"", common::module().display()))
            .arg(format!("-DFAULT_FILE=\"{}\"", control.display()))
            .arg(FAULT_SIGN_C)
            .arg("-ldl")
            .output()
            .map_err(|e| {
                format!("cc cannot run ({e}): install gcc (softhsm-setup/install --test-tools)")
            })?;
        if !out.status.success() {
            return Err(format!(
                "cannot build the fault-injecting PKCS#11 module (needs gcc and libp11-kit-dev: softhsm-setup/install --test-tools):\n{}",
                text(&out)
            ));
        }
        Ok(Liar {
            _dir: dir,
            module,
            control,
        })
    }

    /// From now on, every signature is corrupted (`true`) or passed through (`false`).
    fn lie(&self, on: bool) {
        if on {
            std::fs::write(&self.control, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.control);
        }
    }
}

/// The audit store's records by kind, as `(kind, count)` sorted by kind.
fn audit_kinds(store: &Path) -> Vec<(String, i64)> {
    let table = common::audit_table(store);
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.prepare(&format!(
        "SELECT kind, COUNT(*) FROM {table} GROUP BY kind ORDER BY kind"
    ))
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The count of `kind` in [`audit_kinds`].
fn kind_count(kinds: &[(String, i64)], kind: &str) -> i64 {
    kinds
        .iter()
        .find(|(k, _)| k == kind)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

/// A refusal for a bad signature: 500, `hsm.bad_signature`, the reason, and nothing signed.
fn assert_bad_signature(what: &str, status: u16, reply: &Value) {
    assert_eq!(status, 500, "{what}: {reply}");
    assert_eq!(
        reply["error"]["code"], "hsm.bad_signature",
        "{what}: {reply}"
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(NOT_VERIFIED), "{what}: {reply}");
    for field in ["certificate", "pem", "crl", "response", "responses"] {
        assert!(
            reply.get(field).is_none(),
            "{what} returned {field}: {reply}"
        );
    }
}

#[test]
fn service_refuses_every_signature_the_hsm_corrupts() {
    let liar = match Liar::build() {
        Ok(l) => l,
        Err(why) => {
            let _ = skip(&why);
            return;
        }
    };
    let real = format!("module = \"{}\"", module().display());
    let dir = copy_demo(|c| {
        assert!(c.contains(&real), "the demo config names SoftHSM: {c}");
        c.replace(&real, &format!("module = \"{}\"", liar.module.display()))
    });
    let daemon = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    let socket = daemon.socket();
    let key = subscriber_key();
    let now = strongroom::time::now_rfc3339();
    let later =
        strongroom::time::rfc3339(std::time::SystemTime::now() + Duration::from_secs(3 * 86_400));

    // Honest signatures first, through the same module: a certificate (for OCSP) and a
    // precertificate (for its final certificate).
    let body = |issuer: &str, names: &[&str], precertificate: bool| json!({"profile": "tls-server", "issuer": issuer, "public_key": key, "dns_names": names, "precertificate": precertificate});
    let cert_body = |names: &[&str], precertificate: bool| body("r10", names, precertificate);
    let mut good_serials = std::collections::HashMap::new();
    for issuer in ["r10", "e10"] {
        let (status, good) = rt
            .post(
                &socket,
                "/v1/certificates",
                &body(issuer, &["good.example.com"], false),
            )
            .unwrap();
        assert_eq!(status, 201, "{good}");
        let _ = good_serials.insert(issuer, good["serial"].as_str().unwrap().to_string());
    }
    let (status, pre) = rt
        .post(
            &socket,
            "/v1/certificates",
            &cert_body(&["ct.example.com"], true),
        )
        .unwrap();
    assert_eq!(status, 201, "{pre}");
    let pre_serial = pre["serial"].as_str().unwrap().to_string();
    let (status, metrics) = rt.get_text(&socket, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        counter(&metrics, "strongroom_hsm_bad_signatures_total"),
        0,
        "{metrics}"
    );
    let before = audit_kinds(&daemon.store());

    // Now the HSM lies.
    liar.lie(true);
    let ocsp = |issuer: &str| json!({"issuer": issuer, "serial": good_serials[issuer], "status": "good", "this_update": now, "next_update": later});
    let attempts: Vec<(&str, String, Value)> = vec![
        (
            "certificate",
            "/v1/certificates".into(),
            cert_body(&["lie.example.com"], false),
        ),
        (
            "precertificate",
            "/v1/certificates".into(),
            cert_body(&["lie-ct.example.com"], true),
        ),
        (
            "final certificate",
            format!("/v1/certificates/{pre_serial}/final"),
            json!({"issuer": "r10", "sct_list": common::sct_list_base64()}),
        ),
        (
            "CRL",
            "/v1/crls".into(),
            json!({"issuer": "r10", "shard": 0, "this_update": now, "entries": []}),
        ),
        // r10 answers through its delegated responder's key, e10 with its own key.
        ("OCSP response (delegated)", "/v1/ocsp".into(), ocsp("r10")),
        ("OCSP response (issuer key)", "/v1/ocsp".into(), ocsp("e10")),
        (
            "OCSP batch",
            "/v1/ocsp/batch".into(),
            json!({"issuer": "r10", "this_update": now, "next_update": later, "statuses": [{"serial": good_serials["r10"], "status": "good"}]}),
        ),
    ];
    // Every kind is tried before the test fails, so that a failure lists all the kinds let
    // through.
    let mut let_through = Vec::new();
    for (what, path, body) in &attempts {
        let (status, reply) = rt.post(&socket, path, body).unwrap();
        if std::panic::catch_unwind(|| assert_bad_signature(what, status, &reply)).is_err() {
            let_through.push(*what);
        }
    }
    assert!(
        let_through.is_empty(),
        "not refused as bad signatures: {let_through:?}"
    );
    let (_, metrics) = rt.get_text(&socket, "/metrics").unwrap();
    assert_eq!(
        counter(&metrics, "strongroom_hsm_bad_signatures_total"),
        attempts.len() as u64,
        "{metrics}"
    );

    // Nothing was recorded as issued: every kind but the refusals is as before.
    let after = audit_kinds(&daemon.store());
    for kind in ["certificate", "precertificate", "crl", "ocsp"] {
        assert_eq!(
            kind_count(&after, kind),
            kind_count(&before, kind),
            "{kind}: {before:?} -> {after:?}"
        );
    }

    // The HSM is honest again: the precertificate was not consumed, and everything signs.
    liar.lie(false);
    let (status, fin) = rt
        .post(
            &socket,
            &format!("/v1/certificates/{pre_serial}/final"),
            &json!({"issuer": "r10", "sct_list": common::sct_list_base64()}),
        )
        .unwrap();
    assert_eq!(status, 201, "{fin}");
    let (status, reply) = rt.post(&socket, "/v1/ocsp", &ocsp("r10")).unwrap();
    assert_eq!(status, 201, "{reply}");
    drop(daemon);
    let (ok, report) =
        common::daemon::audit_verify(dir.path(), &dir.path().join("service/audit.db"));
    assert!(ok, "{report}");
}

/// `strongroom ceremony run SCRIPT --module MODULE --yes` in the sandbox.
fn ceremony_with(s: &Sandbox, module: &Path, name: &str, script: &str) -> (bool, String) {
    let path = s.tmp.path().join(name);
    std::fs::write(&path, script).unwrap();
    let out = Command::new(strongroom_bin())
        .args(["ceremony", "run"])
        .arg(&path)
        .arg("--dir")
        .arg(&s.dir)
        .arg("--module")
        .arg(module)
        .arg("--yes")
        .env("SOFTHSM2_CONF", &s.conf)
        .current_dir(&s.dir)
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// The transcript's events, parsed.
fn transcript(s: &Sandbox) -> Vec<Value> {
    std::fs::read_to_string(s.dir.join("transcript.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ceremonies_refuse_every_signature_the_hsm_corrupts() {
    let liar = match Liar::build() {
        Ok(l) => l,
        Err(why) => {
            let _ = skip(&why);
            return;
        }
    };
    // The demo's token, so the shipped demo scripts' key URIs name it unchanged.
    let token = "strongroom-demo";
    let s = Sandbox::new(&[token]);
    let hsm = hsm_table(token, &s.pin_file);
    // Honest, from the shipped demo scripts: a P-256 root (R1) and intermediate (R10) with its
    // CSR, an RSA cross-signer (X3) and an OCSP key, all on the one token.
    let setup = [
        ShippedScript::load("demo/1-roots.toml")
            .only(&["root-r1-key", "root-r1"])
            .set("root-r1-key", "key-type", "ec-p256"),
        ShippedScript::load("demo/2-intermediates.toml")
            .only(&["r10-key", "r10"])
            .set("r10-key", "key-type", "ec-p256"),
        ShippedScript::load("demo/3-cross-sign-csr.toml"),
        ShippedScript::load("demo/4-cross-signer.toml").only(&["x3-key", "x3"]),
        ShippedScript::load("demo/7-ocsp-responder.toml").only(&["r10-ocsp-key"]),
    ];
    for (n, script) in setup.into_iter().enumerate() {
        let script = script.on_token(token, &s.pin_file).text();
        let (ok, out) = ceremony_with(&s, &liar.module, &format!("setup-{n}.toml"), &script);
        assert!(ok, "the honest run through the wrapper: {out}");
    }

    // Each signing step on its own, with the HSM lying: (action, output file, step body).
    let steps = [
        // Key generation signs a self-test challenge (src/hsm/keygen.rs, generate_key); a key
        // pair that fails it is destroyed (checked after the loop).
        (
            "generate-key",
            "k2.pub.pem",
            r#"label = "k2"
key-type = "ec-p256"
public-key-out = "k2.pub.pem""#,
        ),
        (
            "self-sign-root",
            "root-2.pem",
            r#"key = { uri = "pkcs11:object=demo-root-r1" }
subject = { country = "US", organization = "Test CA", common-name = "Test Root 2" }
validity-days = 3000
certificate-out = "root-2.pem""#,
        ),
        (
            "sign-intermediate",
            "int-2.pem",
            r#"issuer-key = { uri = "pkcs11:object=demo-root-r1" }
issuer-certificate = { file = "root-r1.pem" }
public-key = { file = "keys/int-r10.pub.pem" }
subject = { country = "US", organization = "Test CA", common-name = "Test Issuing CA 2" }
validity-days = 1000
crl-url = "http://c.example.com/"
ca-issuers-url = "http://i.example.com/"
certificate-out = "int-2.pem""#,
        ),
        (
            "make-csr",
            "int-2.csr",
            r#"key = { uri = "pkcs11:object=demo-int-r10" }
subject-from = { file = "int-r10.pem" }
csr-out = "int-2.csr""#,
        ),
        (
            "sign-cross-certificate",
            "cross.pem",
            r#"issuer-key = { uri = "pkcs11:object=demotrust-root-x3" }
issuer-certificate = { file = "cross/demotrust-root-x3.pem" }
existing-certificate = { file = "int-r10.pem" }
csr = { file = "cross/int-r10.csr" }
validity-days = 300
crl-url = "http://c.other.example.com/"
ca-issuers-url = "http://i.other.example.com/"
certificate-out = "cross.pem""#,
        ),
        (
            "sign-crl",
            "root.crl",
            r#"issuer-key = { uri = "pkcs11:object=demo-root-r1" }
issuer-certificate = { file = "root-r1.pem" }
crl-number = 1
next-update-days = 30
crl-out = "root.crl""#,
        ),
        (
            "sign-ocsp-responder",
            "ocsp.pem",
            r#"issuer-key = { uri = "pkcs11:object=demo-int-r10" }
issuer-certificate = { file = "int-r10.pem" }
public-key = { file = "keys/ocsp-r10.pub.pem" }
subject = { country = "US", organization = "Test CA", common-name = "Test OCSP" }
certificate-out = "ocsp.pem""#,
        ),
    ];
    // Every step is tried before the test fails, so that a failure lists all the steps let
    // through.
    let mut let_through = Vec::new();
    for (action, output, body) in steps {
        let script = format!(
            "[ceremony]\nname = \"lying {action}\"\n{hsm}\n[[step]]\nid = \"s\"\naction = \"{action}\"\n{body}\n"
        );
        let files = s.files();
        liar.lie(true);
        let (ok, out) = ceremony_with(&s, &liar.module, &format!("{action}.toml"), &script);
        liar.lie(false);
        let check = || {
            assert!(!ok, "{action} succeeded with a corrupted signature:\n{out}");
            assert!(
                out.contains(&format!("step 1 ({action} \"s\") failed")),
                "{action}: the error names the step:\n{out}"
            );
            assert!(
                out.contains(NOT_VERIFIED),
                "{action}: the error names the cause:\n{out}"
            );
            assert!(!out.contains(TEST_PIN), "{action}: the PIN leaked:\n{out}");
            assert!(
                !s.dir.join(output).exists(),
                "{action}: {output} was written"
            );
            // Only the transcript changed, and it ends with this step's failure.
            let written: Vec<_> = s
                .files()
                .into_iter()
                .filter(|f| !files.contains(f))
                .collect();
            assert!(written.is_empty(), "{action}: wrote {written:?}");
            let events = transcript(&s);
            let last = events.last().unwrap();
            assert_eq!(last["event"], "step-failed", "{action}: {last}");
            assert_eq!(last["action"], action, "{last}");
            assert!(
                last["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(NOT_VERIFIED),
                "{action}: {last}"
            );
            let start = events
                .iter()
                .rposition(|e| e["event"] == "ceremony-start")
                .unwrap();
            assert!(
                events[start..]
                    .iter()
                    .all(|e| e["event"] != "ceremony-end" && e["event"] != "step"),
                "{action}: a success was recorded: {:?}",
                &events[start..]
            );
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_err() {
            let_through.push(action);
        }
    }

    assert!(
        let_through.is_empty(),
        "not refused as bad signatures: {let_through:?}"
    );
    // The key pair whose self-test failed was destroyed, not left for a later script to name.
    let objects = s.pkcs11_objects(token);
    let labels: Vec<&str> = objects
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(str::trim)
        .collect();
    assert!(labels.contains(&"demo-root-r1"), "{objects}");
    assert!(
        !labels.contains(&"k2"),
        "the failed key pair is on the token:\n{objects}"
    );

    // The same steps sign once the HSM is honest: the failures were the lie, not the scripts.
    let honest = format!(
        "[ceremony]\nname = \"honest\"\n{hsm}\n[[step]]\nid = \"s\"\naction = \"sign-crl\"\n{}\n",
        steps[5].2
    );
    let (ok, out) = ceremony_with(&s, &liar.module, "honest.toml", &honest);
    assert!(ok, "{out}");
    assert!(s.dir.join("root.crl").exists());
}
