//! The signing service end to end: a real `strongroom serve` process on a real Unix socket,
//! backed by a copy of the demo's SoftHSM token store.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use common::daemon::copy_demo;
use common::*;
use der::Decode;
use serde_json::{Value, json};
use strongroom::client::Client;
use x509_cert::Certificate;

/// Subscriber keys made with openssl: (P-256 SPKI DER, RSA-2048 SPKI DER), and their PEM paths.
fn subscriber_keys() -> &'static [(String, Vec<u8>, PathBuf); 2] {
    static KEYS: OnceLock<[(String, Vec<u8>, PathBuf); 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("subscriber-keys");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let make = |name: &str, args: &[&str]| {
            let key = dir.join(format!("{name}.key"));
            let out = Command::new("openssl")
                .args(["genpkey", "-out"])
                .arg(&key)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let pubkey = dir.join(format!("{name}.pub.pem"));
            let out = Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&key)
                .arg("-out")
                .arg(&pubkey)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let (_, der) = strongroom::x509::read_pem::<spki::SubjectPublicKeyInfoOwned>(
                &pubkey,
                "PUBLIC KEY",
            )
            .unwrap();
            (Base64::encode_string(&der), der, pubkey)
        };
        [
            make(
                "p256",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
            make(
                "rsa2048",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
        ]
    })
}

/// A running service on its own copy of the demo (token store, certificates, config).
struct Service {
    dir: tempfile::TempDir,
    child: Child,
}

impl Service {
    /// Starts a service; `edit` may change the config text first.
    fn start(edit: impl FnOnce(String) -> String) -> Service {
        Service::spawn(Service::prepare(edit))
    }

    /// A copy of the demo with its own token store and an empty audit store; `edit` may change
    /// the config text.
    fn prepare(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
        copy_demo(edit)
    }

    /// Starts a service on an existing copy (for restarts).
    fn spawn(dir: tempfile::TempDir) -> Service {
        Service::spawn_with(dir, std::process::Stdio::null())
    }

    /// Starts a service on an existing copy, its stdout going to `stdout`.
    fn spawn_with(dir: tempfile::TempDir, stdout: std::process::Stdio) -> Service {
        let hsm = dir.path().join("hsm");
        let config = dir.path().join("service/strongroom.toml");
        let child = Command::new(strongroom_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("SOFTHSM2_CONF", hsm.join("softhsm2.conf"))
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let service = Service { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !service.socket().exists() {
            assert!(Instant::now() < deadline, "the service did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("service/strongroom.sock")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    async fn client(&self) -> Client {
        Client::connect(&self.socket()).await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let reply = self
            .client()
            .await
            .request("POST", path, Some(body))
            .await
            .unwrap();
        (reply.status, reply.json().unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let reply = self
            .client()
            .await
            .request("GET", path, None)
            .await
            .unwrap();
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    /// Issued-certificate count from /metrics.
    async fn issued(&self) -> u64 {
        let (_, metrics) = self.get("/metrics").await;
        metric_values(&metrics, "strongroom_issued_total").sum()
    }

    /// Stops the service with SIGTERM and returns its copy and everything it wrote to stderr.
    fn stop_with_stderr(mut self) -> (tempfile::TempDir, String) {
        use std::io::Read;
        let mut stderr = String::new();
        let mut pipe = self.child.stderr.take().unwrap();
        // Read stderr beside the wait, so a full pipe cannot hold the service up.
        let reader = std::thread::spawn(move || {
            let _ = pipe.read_to_string(&mut stderr).unwrap();
            stderr
        });
        let dir = self.stop();
        (dir, reader.join().unwrap())
    }

    /// SIGTERM, and a bounded wait for a clean exit.
    fn stop(mut self) -> tempfile::TempDir {
        let status = strongroom::child::terminate(&mut self.child, STOP).unwrap();
        assert!(
            status.success(),
            "the service did not stop cleanly: {status}"
        );
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

/// How long a service may take to stop after SIGTERM.
const STOP: Duration = Duration::from_secs(30);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = strongroom::child::wait_for(&mut self.child, Duration::from_secs(10));
    }
}

fn request(key: &str, names: &[&str]) -> Value {
    json!({"profile": "tls-server", "public_key": key, "dns_names": names})
}

fn write_pem(dir: &Path, name: &str, b64: &str) -> PathBuf {
    let der = Base64::decode_vec(b64).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        strongroom::x509::to_pem("CERTIFICATE", &der).unwrap(),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn issued_leaves_chain_to_both_roots_and_pass_pkilint() {
    let s = Service::start(|c| c);
    let [(p256, _, _), (rsa, _, _)] = subscriber_keys();
    let tmp = tempfile::tempdir().unwrap();
    for (issuer, key, root) in [
        ("r10", p256, "root-r1.pem"),
        ("e10", rsa, "root-e1.pem"),
        ("r10", rsa, "root-r1.pem"),
    ] {
        let mut body = request(key, &["www.example.com", "example.com"]);
        body["issuer"] = json!(issuer);
        let (status, reply) = s.post("/v1/certificates", &body).await;
        assert_eq!(status, 201, "{reply}");
        let leaf = write_pem(
            tmp.path(),
            &format!("{issuer}-leaf.pem"),
            reply["certificate"].as_str().unwrap(),
        );
        assert_eq!(
            std::fs::read_to_string(&leaf).unwrap(),
            reply["pem"].as_str().unwrap()
        );
        let int = s.path(if issuer == "r10" {
            "int-r10.pem"
        } else {
            "int-e10.pem"
        });
        openssl_verify(&s.path(root), Some(&int), &["-purpose", "sslserver"], &leaf).unwrap();
        assert_eq!(
            pkilint(
                "lint_cabf_serverauth_cert",
                &["-t", "DV-FINAL-CERTIFICATE"],
                &leaf
            ),
            Vec::<String>::new()
        );
        if issuer == "r10" {
            // Through the cross-signer's root, with the cross-certificate as the intermediate.
            openssl_verify(
                &s.path("cross/demotrust-root-x3.pem"),
                Some(&s.path("cross/int-r10-by-demotrust-x3.pem")),
                &[],
                &leaf,
            )
            .unwrap();
        }
        let cert = Certificate::from_der(
            &Base64::decode_vec(reply["certificate"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(cert.tbs_certificate().serial_number().as_bytes()),
            reply["serial"].as_str().unwrap()
        );
        assert_eq!(
            cert.tbs_certificate().serial_number().as_bytes()[0],
            1,
            "instance prefix"
        );
        assert_eq!(cert.tbs_certificate().serial_number().as_bytes().len(), 17);
    }
    // A precertificate lints as one.
    let mut body = request(p256, &["pre.example.com"]);
    body["precertificate"] = json!(true);
    let (status, reply) = s.post("/v1/certificates", &body).await;
    assert_eq!(status, 201, "{reply}");
    let pre = write_pem(
        tmp.path(),
        "pre.pem",
        reply["certificate"].as_str().unwrap(),
    );
    assert_eq!(
        pkilint(
            "lint_cabf_serverauth_cert",
            &["-t", "DV-PRE-CERTIFICATE"],
            &pre
        ),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_policy_rule_refuses_before_signing() {
    let s = Service::start(|c| {
        c + "\n[policy]\nblocked-names = [\".blocked.example.com\"]\nmax-names = 3\n"
    });
    let [(p256, p256_der, _), _] = subscriber_keys();
    let weak_fixture = |name: &str| {
        let pem = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap();
        let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        Base64::encode_string(&der)
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            request(p256, &["Example.com"]),
            "policy.dns_name.uppercase",
            "dns_names[0]",
        ),
        (
            request(p256, &["co.uk"]),
            "policy.dns_name.public_suffix",
            "dns_names[0]",
        ),
        (
            request(p256, &["printer.local"]),
            "policy.dns_name.internal",
            "dns_names[0]",
        ),
        (
            request(p256, &["*.com"]),
            "policy.dns_name.public_suffix",
            "dns_names[0]",
        ),
        (
            request(p256, &["foo.*.example.com"]),
            "policy.dns_name.wildcard",
            "dns_names[0]",
        ),
        (
            request(p256, &["-a.example.com"]),
            "policy.dns_name.hyphen",
            "dns_names[0]",
        ),
        (
            request(p256, &["a.example.com", "a.example.com"]),
            "policy.dns_name.duplicate",
            "dns_names[1]",
        ),
        (
            request(p256, &["x.blocked.example.com"]),
            "policy.dns_name.blocked",
            "dns_names[0]",
        ),
        (
            request(
                p256,
                &[
                    "a.example.com",
                    "b.example.com",
                    "c.example.com",
                    "d.example.com",
                ],
            ),
            "policy.names.too_many",
            "dns_names, ip_addresses",
        ),
        (
            request(p256, &[]),
            "policy.names.none",
            "dns_names, ip_addresses",
        ),
        (
            json!({"profile": "tls-server", "public_key": p256, "ip_addresses": ["10.1.2.3"]}),
            "policy.ip_address.not_public",
            "ip_addresses[0]",
        ),
        (
            request(&weak_fixture("spki-p521.pem"), &["example.com"]),
            "policy.key.type",
            "public_key",
        ),
        (
            request(&Base64::encode_string(&p256_der[..20]), &["example.com"]),
            "policy.key.malformed",
            "public_key",
        ),
        (
            json!({"profile": "nope", "public_key": p256, "dns_names": ["example.com"]}),
            "request.profile.unknown",
            "profile",
        ),
        (
            json!({"profile": "tls-server", "public_key": p256, "dns_names": ["example.com"], "not_before": "2020-01-01T00:00:00Z"}),
            "policy.validity.backdate",
            "not_before",
        ),
        (
            json!({"profile": "tls-server", "dns_names": ["example.com"]}),
            "request.public_key.missing",
            "public_key",
        ),
        (
            json!({"profile": "tls-server", "public_key": p256, "dns_names": ["example.com"], "extensions": []}),
            "request.malformed",
            "",
        ),
    ];
    let before = s.issued().await;
    for (body, code, field) in cases {
        let (status, reply) = s.post("/v1/certificates", &body).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: code, got {reply}");
        assert_eq!(reply["error"]["field"], field, "{body}: field, got {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(s.issued().await, before, "nothing may be signed");
    let (status, _) = s
        .post("/v1/certificates", &request(p256, &["ok.example.com"]))
        .await;
    assert_eq!(status, 201);
    assert_eq!(s.issued().await, before + 1);
}

/// The values of the metric lines that start with `prefix` (a name, and labels if given).
fn metric_values<'a>(metrics: &'a str, prefix: &'a str) -> impl Iterator<Item = u64> + 'a {
    metrics
        .lines()
        .filter(move |l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of the first metric line that starts with `prefix`, if there is one.
fn metric(metrics: &str, prefix: &str) -> Option<u64> {
    metric_values(metrics, prefix).next()
}

/// A profile the configuration accepts (at most 398 days) but the BR 6.3.2 schedule does not:
/// for a notBefore from 2026-03-15 a subscriber certificate may have at most 200 days (100 from
/// 2027-03-15, 47 from 2029-03-15). The policy stage takes the lifetime from the profile; the
/// lint of our own TBS refuses it: a 500, counted, recorded, and nothing signed. The service
/// warns about the profile when it starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_lint_finding_on_our_own_tbs_is_a_500_recorded_counted_and_unsigned() {
    let s = Service::start(|c| c + "\n[[profile]]\nname = \"too-long\"\nvalidity-hours = 6000\n");
    let [(p256, _, _), _] = subscriber_keys();
    let body =
        json!({"profile": "too-long", "public_key": p256, "dns_names": ["lint.example.com"]});
    let (status, reply) = s.post("/v1/certificates", &body).await;
    assert_eq!(status, 500, "{reply}");
    assert_eq!(reply["error"]["code"], "internal.lint", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("leaf.validity.too_long") && message.contains("BR 6.3.2"),
        "{message}"
    );
    let (_, metrics) = s.get("/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "strongroom_rejected_total{code=\"internal.lint\"}"
        ),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "strongroom_certificate_signatures_total"),
        Some(0),
        "nothing may be signed: {metrics}"
    );
    let store = s.path("service/audit.db");
    let (dir, stderr) = s.stop_with_stderr();
    // The operator was told at start.
    assert!(
        stderr.contains(
            "WARNING: profile \"too-long\": a lifetime of 6000 hours (250 days) is over the"
        ) && stderr.contains("BR 6.3.2")
            && stderr.contains("500 internal.lint"),
        "{stderr}"
    );
    // 160 hours is under every limit of the schedule (the shortest is 47 days).
    assert!(!stderr.contains("profile \"tls-server-short\""), "{stderr}");
    let conn = rusqlite::Connection::open(&store).unwrap();
    let rows: Vec<(String, Option<String>, Option<Vec<u8>>)> = conn
        .prepare(&format!(
            "SELECT kind, code, der FROM {} ORDER BY seq",
            audit_table(&store)
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [(
            "refusal".to_string(),
            Some("internal.lint".to_string()),
            None
        )],
        "one refusal record and no certificate"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn unlisted_caller_is_refused_and_socket_is_0660() {
    let s = Service::start(|c| {
        let uid_line = c
            .lines()
            .find(|l| l.starts_with("uid = "))
            .unwrap()
            .to_string();
        c.replace(&uid_line, "uid = 4242")
    });
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.socket()).unwrap().permissions().mode() & 0o777,
        0o660
    );
    let [(p256, _, _), _] = subscriber_keys();
    let (status, reply) = s
        .post("/v1/certificates", &request(p256, &["example.com"]))
        .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["error"]["code"], "caller.not_allowed");
    let (status, _) = s.get("/v1/health").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn precertificate_and_final_correspond_once() {
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut body = request(p256, &["ct.example.com", "www.ct.example.com"]);
    body["precertificate"] = json!(true);
    let (status, pre) = s.post("/v1/certificates", &body).await;
    assert_eq!(status, 201, "{pre}");
    let serial = pre["serial"].as_str().unwrap();
    // Two SCTs from made-up logs, TLS-encoded (RFC 6962 3.2, 3.3).
    let sct_list = sct_list(2);
    let final_body = json!({"sct_list": Base64::encode_string(&sct_list)});
    let (status, fin) = s
        .post(&format!("/v1/certificates/{serial}/final"), &final_body)
        .await;
    assert_eq!(status, 201, "{fin}");
    let pre =
        Certificate::from_der(&Base64::decode_vec(pre["certificate"].as_str().unwrap()).unwrap())
            .unwrap();
    let fin_cert =
        Certificate::from_der(&Base64::decode_vec(fin["certificate"].as_str().unwrap()).unwrap())
            .unwrap();
    let (p, f) = (pre.tbs_certificate(), fin_cert.tbs_certificate());
    assert_eq!(p.serial_number(), f.serial_number());
    assert_eq!(p.issuer(), f.issuer());
    assert_eq!(p.subject(), f.subject());
    assert_eq!(p.validity(), f.validity());
    assert_eq!(p.subject_public_key_info(), f.subject_public_key_info());
    let (pe, fe) = (p.extensions().unwrap(), f.extensions().unwrap());
    assert_eq!(pe.len(), fe.len());
    for (a, b) in pe.iter().zip(fe) {
        if a.extn_id == strongroom::x509::CT_POISON {
            assert_eq!(
                b.extn_id,
                strongroom::x509::CT_SCT_LIST,
                "the SCT list takes the poison's place"
            );
            assert!(!b.critical);
            let inner = der::asn1::OctetString::from_der(b.extn_value.as_bytes()).unwrap();
            assert_eq!(inner.as_bytes(), sct_list);
        } else {
            assert_eq!(
                a, b,
                "every other extension is byte-identical, in the same order"
            );
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let leaf = write_pem(
        tmp.path(),
        "final.pem",
        fin["certificate"].as_str().unwrap(),
    );
    openssl_verify(
        &s.path("root-r1.pem"),
        Some(&s.path("int-r10.pem")),
        &[],
        &leaf,
    )
    .unwrap();
    assert_eq!(
        pkilint(
            "lint_cabf_serverauth_cert",
            &["-t", "DV-FINAL-CERTIFICATE"],
            &leaf
        ),
        Vec::<String>::new()
    );
    // Once only.
    let (status, again) = s
        .post(&format!("/v1/certificates/{serial}/final"), &final_body)
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "request.serial.already_final");
    // Unknown serial, bad framing.
    let (status, _) = s.post("/v1/certificates/01ff/final", &final_body).await;
    assert_eq!(status, 404);
    let (status, bad) = s
        .post(
            &format!("/v1/certificates/{serial}/final"),
            &json!({"sct_list": Base64::encode_string(&[0, 9, 1])}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_requests_get_unique_serials_and_a_verifiable_audit_chain() {
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let socket = s.socket();
        let body = request(p256, &[&format!("host{i}.example.com")]);
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&socket).await.unwrap();
            let reply = client
                .request("POST", "/v1/certificates", Some(&body))
                .await
                .unwrap();
            assert_eq!(reply.status, 201);
            reply.json().unwrap()
        }));
    }
    let mut serials = std::collections::HashSet::new();
    let tmp = tempfile::tempdir().unwrap();
    for (i, t) in tasks.into_iter().enumerate() {
        let reply = t.await.unwrap();
        assert!(
            serials.insert(reply["serial"].as_str().unwrap().to_string()),
            "duplicate serial"
        );
        if i % 16 == 0 {
            let leaf = write_pem(
                tmp.path(),
                &format!("{i}.pem"),
                reply["certificate"].as_str().unwrap(),
            );
            openssl_verify(
                &s.path("root-r1.pem"),
                Some(&s.path("int-r10.pem")),
                &[],
                &leaf,
            )
            .unwrap();
        }
    }
    assert_eq!(serials.len(), 64);
    let (status, health) = s.get("/v1/health").await;
    assert_eq!(status, 200, "{health}");
    let (status, issuers) = s.get("/v1/issuers").await;
    assert_eq!(status, 200);
    assert!(issuers.contains("BEGIN CERTIFICATE") && issuers.contains("tls-server-short"));
    let (_, metrics) = s.get("/metrics").await;
    assert!(
        metrics.contains("strongroom_request_seconds_bucket"),
        "{metrics}"
    );
    // 64 concurrent certificates: at least one commit, never more commits than records.
    let commits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strongroom_audit_commits_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no audit commit count in {metrics}"));
    let dir = s.stop();
    let store = dir.path().join("service/audit.db");
    let out = Command::new(strongroom_bin())
        .args(["audit", "verify", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Every record was committed, at most one commit per record (group commit shares them).
    let records: u64 = text(&out)
        .split("audit chain verified: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no record count in {}", text(&out)));
    assert!(
        records >= 64 && (1..=records).contains(&commits),
        "{commits} commits for {records} records"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_catches_edited_deleted_and_reordered_records() {
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    for i in 0..4 {
        let (status, _) = s
            .post(
                "/v1/certificates",
                &request(p256, &[&format!("a{i}.example.com")]),
            )
            .await;
        assert_eq!(status, 201);
    }
    let dir = s.stop();
    let store = dir.path().join("service/audit.db");
    let verify = |path: &Path| {
        let out = Command::new(strongroom_bin())
            .args(["audit", "verify", "--store"])
            .arg(path)
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    assert!(verify(&store).0);
    let tamper = |name: &str, sql: &str| {
        let copy = dir.path().join(name);
        let _ = std::fs::copy(&store, &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        copy
    };
    let table = audit_table(&store);
    let edited = tamper(
        "edited.db",
        &format!("UPDATE {table} SET summary = '{{}}' WHERE seq = 2;"),
    );
    let (ok, msg) = verify(&edited);
    assert!(!ok && msg.contains('2'), "{msg}");
    let deleted = tamper("deleted.db", &format!("DELETE FROM {table} WHERE seq = 3;"));
    let (ok, msg) = verify(&deleted);
    assert!(!ok && msg.contains('3'), "{msg}");
    let reordered = tamper(
        "reordered.db",
        &format!(
            "UPDATE {table} SET seq = -1 WHERE seq = 2; UPDATE {table} SET seq = 2 WHERE seq = 3; UPDATE {table} SET seq = 3 WHERE seq = -1;"
        ),
    );
    let (ok, msg) = verify(&reordered);
    assert!(!ok && msg.contains('2'), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_and_records_requests_in_flight() {
    let mut s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let socket = s.socket();
        let body = request(p256, &[&format!("drain{i}.example.com")]);
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&socket).await.ok()?;
            let reply = client
                .request("POST", "/v1/certificates", Some(&body))
                .await
                .ok()?;
            Some(reply.status)
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    strongroom::child::signal(&s.child, rustix::process::Signal::TERM).unwrap();
    let mut issued = 0u64;
    for t in tasks {
        match t.await.unwrap() {
            Some(201) => issued += 1,
            Some(other) => panic!("a request in flight got {other}"),
            None => {} // not accepted before the listener closed
        }
    }
    let status = strongroom::child::wait_for(&mut s.child, STOP)
        .unwrap()
        .expect("the service exits after draining");
    assert!(
        status.success(),
        "the service must exit cleanly after draining: {status:?}"
    );
    assert!(issued > 0, "some requests were in flight");
    let out = Command::new(strongroom_bin())
        .args(["audit", "verify", "--store"])
        .arg(s.path("service/audit.db"))
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    // Exactly the certificates returned are recorded: no more (signed but never answered) and
    // no fewer (answered but lost).
    let recorded: Vec<u64> = report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("certificate: "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        recorded,
        [issued],
        "every certificate returned is recorded, and only those: {report}"
    );
}

#[test]
fn issue_client_and_root_refusal() {
    let s = Service::start(|c| c);
    let [(_, _, pem), _] = subscriber_keys();
    let out = Command::new(strongroom_bin())
        .args(["issue", "--socket"])
        .arg(s.socket())
        .args(["--dns-name", "cli.example.com", "--public-key"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let leaf = s.path("cli-leaf.pem");
    std::fs::write(&leaf, &out.stdout).unwrap();
    openssl_verify(
        &s.path("root-r1.pem"),
        Some(&s.path("int-r10.pem")),
        &[],
        &leaf,
    )
    .unwrap();
    // As root, a configuration without allow-root is refused.
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        skip("the allow-root refusal can only be shown as root");
    } else {
        let config = s.path("service/no-root.toml");
        let text_config = std::fs::read_to_string(s.path("service/strongroom.toml"))
            .unwrap()
            .replace("allow-root = true", "allow-root = false")
            .replace("strongroom.sock", "other.sock");
        std::fs::write(&config, text_config).unwrap();
        let out = Command::new(strongroom_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out).contains("refusing to run as root"),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_shards_verify_revoke_and_numbers_survive_a_restart() {
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut leaves = Vec::new();
    for i in 0..6 {
        let (status, reply) = s
            .post(
                "/v1/certificates",
                &request(p256, &[&format!("r{i}.example.com")]),
            )
            .await;
        assert_eq!(status, 201);
        leaves.push(reply);
    }
    let serial = leaves[0]["serial"].as_str().unwrap().to_string();
    let serial_bytes = hex::decode(&serial).unwrap();
    let shard = strongroom::issue::shard_of(&serial_bytes, 16);
    let now = || strongroom::time::now_rfc3339();
    let crl_request = |shard: u32, entries: Value| json!({"issuer": "r10", "shard": shard, "this_update": now(), "entries": entries});
    let entry = json!([{"serial": serial, "revoked_at": now(), "reason": "keyCompromise"}]);
    let (status, reply) = s.post("/v1/crls", &crl_request(shard, entry.clone())).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["number"], 1);
    let tmp = tempfile::tempdir().unwrap();
    let crl_der = Base64::decode_vec(reply["crl"].as_str().unwrap()).unwrap();
    let crl_path = tmp.path().join("shard.crl");
    std::fs::write(
        &crl_path,
        strongroom::x509::to_pem("X509 CRL", &crl_der).unwrap(),
    )
    .unwrap();
    // Independent checks: signature, pkilint's BR CRL lints, and revocation in path validation.
    let out = Command::new("openssl")
        .args([
            "crl",
            "-noout",
            "-verify",
            "-no-CApath",
            "-no-CAstore",
            "-in",
        ])
        .arg(&crl_path)
        .arg("-CAfile")
        .arg(s.path("int-r10.pem"))
        .output()
        .unwrap();
    assert!(text(&out).contains("verify OK"), "{}", text(&out));
    assert_eq!(
        pkilint("lint_crl", &["-t", "CRL", "-p", "BR"], &crl_path),
        Vec::<String>::new()
    );
    let leaf = write_pem(
        tmp.path(),
        "leaf.pem",
        leaves[0]["certificate"].as_str().unwrap(),
    );
    let crl_arg = crl_path.display().to_string();
    let revoked = openssl_verify(
        &s.path("root-r1.pem"),
        Some(&s.path("int-r10.pem")),
        &["-crl_check", "-CRLfile", &crl_arg],
        &leaf,
    );
    let revoked = revoked.unwrap_err();
    assert!(revoked.contains("certificate revoked"), "{revoked}");
    // The shard's issuingDistributionPoint is critical and names the URL its certificates carry.
    let crl: x509_cert::crl::CertificateList =
        x509_cert::crl::CertificateList::from_der(&crl_der).unwrap();
    let idp = crl
        .tbs_cert_list
        .crl_extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.28")
        .unwrap();
    assert!(idp.critical);
    let url = format!("http://r10.c.example.com/{shard}.crl");
    assert!(
        idp.extn_value
            .as_bytes()
            .windows(url.len())
            .any(|w| w == url.as_bytes())
    );
    let cert = Certificate::from_der(
        &Base64::decode_vec(leaves[0]["certificate"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let cert_der = der::Encode::to_der(&cert).unwrap();
    assert!(
        cert_der.windows(url.len()).any(|w| w == url.as_bytes()),
        "the certificate's CRLDP names its shard"
    );

    // Numbers increase per issuer, across shards, and across a restart.
    let (_, second) = s.post("/v1/crls", &crl_request(shard, entry.clone())).await;
    assert_eq!(second["number"], 2);
    let (_, other) = s
        .post("/v1/crls", &crl_request((shard + 1) % 16, json!([])))
        .await;
    assert_eq!(other["number"], 3, "{other}");
    let dir = s.stop();
    let s = Service::spawn(dir);
    let (status, after) = s.post("/v1/crls", &crl_request(shard, entry.clone())).await;
    assert_eq!(status, 201, "{after}");
    assert_eq!(after["number"], 4, "the CRL number survives a restart");

    // Refusals.
    let other_shard_serial = leaves
        .iter()
        .map(|l| l["serial"].as_str().unwrap().to_string())
        .find(|sn| strongroom::issue::shard_of(&hex::decode(sn).unwrap(), 16) != shard);
    let mut cases = vec![
        (
            crl_request(
                shard,
                json!([{"serial": format!("01{}{shard:08x}", "ff".repeat(12)), "revoked_at": now()}]),
            ),
            "crl.entry.serial.unknown",
        ),
        (
            crl_request(
                shard,
                json!([{"serial": serial, "revoked_at": "2030-01-01T00:00:00Z"}]),
            ),
            "crl.entry.revoked_at.future",
        ),
        (
            crl_request(
                shard,
                json!([{"serial": serial, "revoked_at": now(), "reason": "certificateHold"}]),
            ),
            "revocation.reason",
        ),
        (
            crl_request(
                shard,
                json!([{"serial": serial, "revoked_at": "2020-01-01T00:00:00Z"}]),
            ),
            "crl.entry.revoked_at.before_issuance",
        ),
        (crl_request(16, json!([])), "crl.shard.unknown"),
        (
            json!({"issuer": "r10", "shard": shard, "this_update": "2020-01-01T00:00:00Z", "entries": []}),
            "crl.this_update.backdate",
        ),
        (
            json!({"issuer": "r10", "shard": shard, "this_update": now(), "next_update": "2099-01-01T00:00:00Z", "entries": []}),
            "crl.next_update.range",
        ),
    ];
    if let Some(sn) = other_shard_serial {
        cases.push((
            crl_request(shard, json!([{"serial": sn, "revoked_at": now()}])),
            "crl.entry.shard",
        ));
    }
    for (body, code) in cases {
        let (status, reply) = s.post("/v1/crls", &body).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
    }
    // A CRL body larger than the certificate-request limit is accepted on /v1/crls only.
    let big: Vec<Value> = (0..3000)
        .map(|_| json!({"serial": serial, "revoked_at": now()}))
        .collect();
    let (status, reply) = s.post("/v1/crls", &crl_request(shard, json!(big))).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("crl.entry.serial.duplicate"))
    );
    let mut huge = request(p256, &["big.example.com"]);
    huge["dns_names"] = json!(vec!["x.example.com"; 5000]);
    let (status, reply) = s.post("/v1/certificates", &huge).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "request.too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsp_responses_verify_with_openssl_and_refuse_what_breaks_the_rules() {
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut serials = Vec::new();
    for i in 0..4 {
        let (status, reply) = s
            .post(
                "/v1/certificates",
                &request(p256, &[&format!("o{i}.example.com")]),
            )
            .await;
        assert_eq!(status, 201);
        serials.push(reply["serial"].as_str().unwrap().to_string());
    }
    let now = strongroom::time::now_rfc3339();
    let later =
        strongroom::time::rfc3339(std::time::SystemTime::now() + Duration::from_secs(3 * 86_400));
    let tmp = tempfile::tempdir().unwrap();
    let openssl_ocsp = |der: &[u8], serial: &str| {
        let path = tmp.path().join(format!("{serial}.der"));
        std::fs::write(&path, der).unwrap();
        let out = Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-resp_text", "-respin"])
            .arg(&path)
            .arg("-issuer")
            .arg(s.path("int-r10.pem"))
            .arg("-CAfile")
            .arg(s.path("root-r1.pem"))
            .args(["-serial", &format!("0x{serial}")])
            .output()
            .unwrap();
        text(&out)
    };
    let (status, good) = s
        .post("/v1/ocsp", &json!({"issuer": "r10", "serial": serials[0], "status": "good", "this_update": now, "next_update": later}))
        .await;
    assert_eq!(status, 201, "{good}");
    let report = openssl_ocsp(
        &Base64::decode_vec(good["response"].as_str().unwrap()).unwrap(),
        &serials[0],
    );
    assert!(
        report.contains("Response verify OK") && report.contains(": good"),
        "{report}"
    );
    let (status, revoked) = s
        .post(
            "/v1/ocsp",
            &json!({"issuer": "r10", "serial": serials[1], "status": "revoked", "revoked_at": now, "reason": "keyCompromise",
                    "this_update": now, "next_update": later}),
        )
        .await;
    assert_eq!(status, 201, "{revoked}");
    let report = openssl_ocsp(
        &Base64::decode_vec(revoked["response"].as_str().unwrap()).unwrap(),
        &serials[1],
    );
    assert!(
        report.contains("Response verify OK")
            && report.contains(": revoked")
            && report.contains("keyCompromise"),
        "{report}"
    );
    // A batch, signed across the session pool, each response for its own serial.
    let statuses: Vec<Value> = serials
        .iter()
        .map(|sn| json!({"serial": sn, "status": "good"}))
        .collect();
    let (status, batch) = s
        .post("/v1/ocsp/batch", &json!({"issuer": "r10", "this_update": now, "next_update": later, "statuses": statuses}))
        .await;
    assert_eq!(status, 201, "{batch}");
    for (response, serial) in batch["responses"].as_array().unwrap().iter().zip(&serials) {
        let report = openssl_ocsp(
            &Base64::decode_vec(response.as_str().unwrap()).unwrap(),
            serial,
        );
        assert!(
            report.contains("Response verify OK") && report.contains(": good"),
            "{report}"
        );
    }
    let too_long =
        strongroom::time::rfc3339(std::time::SystemTime::now() + Duration::from_secs(11 * 86_400));
    for (body, code) in [
        (
            json!({"issuer": "r10", "serial": "01ff", "status": "good", "this_update": now, "next_update": later}),
            "ocsp.serial.unknown",
        ),
        (
            json!({"issuer": "r10", "serial": serials[0], "status": "good", "this_update": now, "next_update": too_long}),
            "ocsp.validity.too_long",
        ),
        (
            json!({"issuer": "r10", "serial": serials[0], "status": "revoked", "revoked_at": now, "reason": "certificateHold",
                   "this_update": now, "next_update": later}),
            "revocation.reason",
        ),
    ] {
        let (status, reply) = s.post("/v1/ocsp", &body).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
    }
    // A batch is checked in order: the first bad status is the one named, with its index.
    let good = json!({"serial": serials[0], "status": "good"});
    let unknown = json!({"serial": "01ff", "status": "good"});
    let malformed = json!({"serial": "zz", "status": "good"});
    for (statuses, code, field) in [
        (
            json!([good, malformed]),
            "ocsp.serial.malformed",
            "statuses[1].serial",
        ),
        (
            json!([good, unknown, malformed]),
            "ocsp.serial.unknown",
            "statuses[1].serial",
        ),
        (
            json!([malformed, unknown]),
            "ocsp.serial.malformed",
            "statuses[0].serial",
        ),
    ] {
        let (status, reply) = s
            .post("/v1/ocsp/batch", &json!({"issuer": "r10", "this_update": now, "next_update": later, "statuses": statuses}))
            .await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply["error"]["field"], field, "{reply}");
    }
}

/// Copies the demo, edits its config, runs `strongroom serve`, and returns what it printed when it
/// refused to start (it must exit with an error, without binding the socket, within a minute).
fn start_refused(edit: impl FnOnce(String) -> String) -> String {
    let mut changed = false;
    let dir = copy_demo(|original| {
        let edited = edit(original.clone());
        changed = edited != original;
        edited
    });
    assert!(changed, "the edit changed nothing");
    common::daemon::serve_refused(dir.path())
}

/// The demo config's line that makes R10's OCSP responses signed by its delegated responder.
const R10_RESPONDER: &str = "ocsp-responder = { certificate = \"../ocsp-r10.pem\", key = \"pkcs11:token=strongroom-demo;object=demo-ocsp-r10\" }\n";

#[test]
fn a_responder_for_another_key_or_another_issuer_is_refused_at_start() {
    // The responder certificate is R10's, the key named is E10's.
    let msg = start_refused(|c| c.replace("object=demo-ocsp-r10\" }", "object=demo-int-e10\" }"));
    assert!(
        msg.contains("issuer \"r10\": ocsp-responder: the key pkcs11:token=strongroom-demo;object=demo-int-e10 is not the key of the responder certificate"),
        "{msg}"
    );
    // R10's responder (its own key, its own certificate) configured for E10, which did not issue it.
    let msg = start_refused(|c| {
        c.replace(R10_RESPONDER, "").replace(
            "crl-url-prefix = \"http://e10.c.example.com/\"\n",
            &format!("crl-url-prefix = \"http://e10.c.example.com/\"\n{R10_RESPONDER}"),
        )
    });
    assert!(
        msg.contains("issuer \"e10\": ocsp-responder: delegated responder certificate is not issued by the issuer (RFC 6960 4.2.2.2)"),
        "{msg}"
    );
    // R10's own certificate as its responder: right issuer name, but not signed by R10's key.
    let msg = start_refused(|c| {
        c.replace(
            R10_RESPONDER,
            "ocsp-responder = { certificate = \"../int-r10.pem\", key = \"pkcs11:token=strongroom-demo;object=demo-int-r10\" }\n",
        )
    });
    assert!(msg.contains("issuer \"r10\": ocsp-responder: delegated responder certificate is not issued by the issuer"), "{msg}");
    // A misspelt key under ocsp-responder is refused by name.
    let msg =
        start_refused(|c| c.replace("ocsp-responder = { certificate", "ocsp-responder = { cert"));
    assert!(msg.contains("unknown field `cert`"), "{msg}");
}

/// Runs `openssl ocsp` on a response: `-issuer ISSUER -CAfile ROOT`; returns its report.
fn openssl_ocsp(dir: &Path, der: &[u8], issuer: &Path, root: &Path, serial: &str) -> String {
    let path = dir.join(format!("{serial}-{}.der", der.len()));
    std::fs::write(&path, der).unwrap();
    let out = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-resp_text", "-respin"])
        .arg(&path)
        .arg("-issuer")
        .arg(issuer)
        .arg("-CAfile")
        .arg(root)
        .args(["-serial", &format!("0x{serial}")])
        .output()
        .unwrap();
    text(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn delegated_and_direct_ocsp_responses_verify_pass_pkilint_and_are_audited() {
    use sha2::{Digest, Sha256};
    let s = Service::start(|c| c);
    let [(p256, _, _), _] = subscriber_keys();
    let mut serials: std::collections::HashMap<&str, Vec<String>> = Default::default();
    for issuer in ["r10", "e10"] {
        for i in 0..3 {
            let mut body = request(p256, &[&format!("{issuer}-{i}.example.com")]);
            body["issuer"] = json!(issuer);
            let (status, reply) = s.post("/v1/certificates", &body).await;
            assert_eq!(status, 201, "{reply}");
            serials
                .entry(issuer)
                .or_default()
                .push(reply["serial"].as_str().unwrap().to_string());
        }
    }
    let now = strongroom::time::now_rfc3339();
    let later =
        strongroom::time::rfc3339(std::time::SystemTime::now() + Duration::from_secs(3 * 86_400));
    let tmp = tempfile::tempdir().unwrap();
    let responder_cert =
        strongroom::x509::read_pem::<Certificate>(&s.path("ocsp-r10.pem"), "CERTIFICATE")
            .unwrap()
            .0;
    let key_sha1 = |c: &Certificate| -> [u8; 20] {
        sha1::Sha1::digest(
            c.tbs_certificate()
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes(),
        )
        .into()
    };
    let mut batches = Vec::new();
    for (issuer, int, root) in [
        ("r10", "int-r10.pem", "root-r1.pem"),
        ("e10", "int-e10.pem", "root-e1.pem"),
    ] {
        let issuer_cert = strongroom::x509::read_pem::<Certificate>(&s.path(int), "CERTIFICATE")
            .unwrap()
            .0;
        let sn = &serials[issuer];
        // One revoked response on its own, then a batch of all three.
        let (status, single) = s
            .post(
                "/v1/ocsp",
                &json!({"issuer": issuer, "serial": sn[0], "status": "revoked", "revoked_at": now,
                        "reason": "superseded", "this_update": now, "next_update": later}),
            )
            .await;
        assert_eq!(status, 201, "{single}");
        let statuses: Vec<Value> = sn
            .iter()
            .map(|x| json!({"serial": x, "status": "good"}))
            .collect();
        let (status, batch) = s
            .post("/v1/ocsp/batch", &json!({"issuer": issuer, "this_update": now, "next_update": later, "statuses": statuses}))
            .await;
        assert_eq!(status, 201, "{batch}");
        let mut responses = vec![(
            Base64::decode_vec(single["response"].as_str().unwrap()).unwrap(),
            sn[0].clone(),
            "revoked",
        )];
        let batch: Vec<Vec<u8>> = batch["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Base64::decode_vec(r.as_str().unwrap()).unwrap())
            .collect();
        for (der, serial) in batch.iter().zip(sn) {
            responses.push((der.clone(), serial.clone(), "good"));
        }
        batches.push((issuer, batch));
        for (der, serial, status) in &responses {
            let report = openssl_ocsp(tmp.path(), der, &s.path(int), &s.path(root), serial);
            assert!(
                report.contains("Response verify OK") && report.contains(&format!(": {status}")),
                "{issuer} {serial}: {report}"
            );
            let decoded = strongroom::ocsp::decode_response(der).unwrap();
            if issuer == "r10" {
                // Delegated: responder ID by the responder's key, its certificate in `certs`,
                // signed by its key.
                assert_eq!(decoded.certs, vec![responder_cert.clone()]);
                assert_eq!(decoded.responder_key_hash, key_sha1(&responder_cert));
                decoded
                    .verify(responder_cert.tbs_certificate().subject_public_key_info())
                    .unwrap();
            } else {
                assert!(decoded.certs.is_empty());
                assert_eq!(decoded.responder_key_hash, key_sha1(&issuer_cert));
                decoded
                    .verify(issuer_cert.tbs_certificate().subject_public_key_info())
                    .unwrap();
            }
            let path = tmp.path().join("lint.der");
            std::fs::write(&path, der).unwrap();
            assert_eq!(
                pkilint("lint_ocsp_response", &[], &path),
                Vec::<String>::new(),
                "{issuer} {serial}"
            );
        }
    }
    // GET /v1/issuers names R10's delegated responder certificate, and none for E10.
    let (_, issuers) = s.get("/v1/issuers").await;
    let issuers: Value = serde_json::from_str(&issuers).unwrap();
    let responder_pem = std::fs::read_to_string(s.path("ocsp-r10.pem")).unwrap();
    for i in issuers["issuers"].as_array().unwrap() {
        match i["name"].as_str().unwrap() {
            "r10" => assert_eq!(i["ocsp_responder"], responder_pem.as_str()),
            _ => assert!(i["ocsp_responder"].is_null(), "{i}"),
        }
    }
    // The audit chain: one ocsp record per request (2 per issuer), each naming its serials,
    // statuses and signer, with the SHA-256 of exactly the responses returned.
    let dir = s.stop();
    let store = dir.path().join("service/audit.db");
    let out = Command::new(strongroom_bin())
        .args(["audit", "verify", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ocsp: 4"), "{}", text(&out));
    let conn = rusqlite::Connection::open(&store).unwrap();
    let table = audit_table(&store);
    let records: Vec<(String, String)> = conn
        .prepare(&format!(
            "SELECT issuer, summary FROM {table} WHERE kind = 'ocsp' ORDER BY seq"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(records.len(), 4);
    for (issuer, batch) in &batches {
        let (_, summary) = records.iter().filter(|(i, _)| i == issuer).nth(1).unwrap();
        let summary: Value = serde_json::from_str(summary).unwrap();
        assert_eq!(summary["count"], 3);
        let all: Vec<u8> = batch.iter().flatten().copied().collect();
        assert_eq!(
            summary["responses_sha256"],
            hex::encode(Sha256::digest(&all))
        );
        for ((entry, der), serial) in summary["responses"]
            .as_array()
            .unwrap()
            .iter()
            .zip(batch)
            .zip(&serials[issuer])
        {
            assert_eq!(entry["serial"], *serial);
            assert_eq!(entry["status"], "good");
            assert_eq!(entry["sha256"], hex::encode(Sha256::digest(der)));
        }
        let kind = if *issuer == "r10" {
            "delegated"
        } else {
            "issuer"
        };
        assert_eq!(summary["signer"]["kind"], kind, "{summary}");
    }
}

/// A request body of `n` entries for shard `shard` of 16, serials 01 + 12 bytes + (k·16 + shard).
fn crl_body(issuer: &str, shard: u32, n: u32) -> Vec<u8> {
    let now = strongroom::time::now_rfc3339();
    let mut text =
        format!(r#"{{"issuer":"{issuer}","shard":{shard},"this_update":"{now}","entries":["#);
    let reasons = [
        "",
        r#","reason":"keyCompromise""#,
        r#","reason":"superseded""#,
    ];
    for k in 0..n {
        if k > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"serial":"01{:024x}{:08x}","revoked_at":"{now}"{}}}"#,
            u128::from(k) * 0x1234_5678_9abc_def1,
            k * 16 + shard,
            reasons[(k % 3) as usize]
        ));
    }
    text.push_str("]}");
    text.into_bytes()
}

fn crl_rows(store: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>, String)> {
    let conn = rusqlite::Connection::open(store).unwrap();
    let mut stmt = conn
        .prepare("SELECT serial, der, summary FROM records WHERE kind = 'crl' ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// 100,000 entries (issuer configured with crl-allow-unknown-serials): the JSON response and the
/// DER one (Accept: application/pkix-crl) both pass `openssl crl -verify` with every entry
/// listed, and the audit record holds the number, shard, entry count and the DER's SHA-256.
/// `strongroom-bench crl` runs the same with a million entries.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_crl_streams_verifies_and_is_recorded_by_digest() {
    let s = Service::start(|c| {
        c.replace(
            "crl-url-prefix = \"http://e10.c.example.com/\"\n",
            "crl-url-prefix = \"http://e10.c.example.com/\"\ncrl-allow-unknown-serials = true\n",
        )
    });
    let n = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let verify = |der: &[u8], name: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, der).unwrap();
        let out = Command::new("openssl")
            .args([
                "crl",
                "-noout",
                "-verify",
                "-inform",
                "DER",
                "-no-CApath",
                "-no-CAstore",
                "-in",
            ])
            .arg(&path)
            .arg("-CAfile")
            .arg(s.path("int-e10.pem"))
            .output()
            .unwrap();
        assert!(text(&out).contains("verify OK"), "{}", text(&out));
        let out = Command::new("openssl")
            .args(["crl", "-noout", "-text", "-inform", "DER", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let listing = String::from_utf8_lossy(&out.stdout);
        assert_eq!(listing.matches("Serial Number:").count(), n as usize);
        assert_eq!(
            listing.matches("Key Compromise").count(),
            (0..n).filter(|k| k % 3 == 1).count()
        );
        assert!(
            listing.contains("http://e10.c.example.com/3.crl"),
            "the shard's IDP"
        );
    };
    let mut client = s.client().await;
    let reply = client
        .request_bytes(
            "POST",
            "/v1/crls",
            crl_body("e10", 3, n),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body[..200.min(reply.body.len())])
    );
    let json = reply.json().unwrap();
    assert_eq!(json["number"], 1);
    let der = Base64::decode_vec(json["crl"].as_str().unwrap()).unwrap();
    verify(&der, "large.crl");

    let reply = client
        .request_bytes(
            "POST",
            "/v1/crls",
            crl_body("e10", 3, n),
            "application/pkix-crl",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 201);
    verify(&reply.body, "large-der.crl");
    let number = <x509_cert::crl::CertificateList>::from_der(&reply.body)
        .unwrap()
        .tbs_cert_list
        .crl_extensions
        .unwrap()
        .into_iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.20")
        .unwrap();
    assert_eq!(number.extn_value.as_bytes(), [2, 1, 2], "cRLNumber 2");

    // The chain holds each CRL's digest and metadata, not its DER, and still verifies.
    let rows = crl_rows(&s.path("service/audit.db"));
    assert_eq!(rows.len(), 2);
    for ((serial, stored, summary), (number, der)) in
        rows.iter().zip([(1u64, &der), (2, &reply.body)])
    {
        assert_eq!(serial, &number.to_be_bytes().to_vec());
        assert_eq!(stored, &None);
        let summary: Value = serde_json::from_str(summary).unwrap();
        assert_eq!(summary["number"], number);
        assert_eq!(summary["shard"], 3);
        assert_eq!(summary["entries"], n);
        assert_eq!(
            summary["sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(der))
        );
    }
    let out = Command::new(strongroom_bin())
        .args(["audit", "verify", "--store"])
        .arg(s.path("service/audit.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A CRL body over max-crl-body-bytes gets 413 `request.too_large`, whether it announces its
/// length or arrives in chunks, and nothing is signed or recorded: the next CRL is number 1
/// (and passes pkilint's BR CRL lints); its DER answer names its number in `CRL-Number`.
#[tokio::test(flavor = "multi_thread")]
async fn a_crl_body_over_the_limit_is_refused_and_nothing_is_signed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Service::start(|c| {
        c.replace("[service]\n", "[service]\nmax-crl-body-bytes = 100000\n")
            .replace(
                "crl-url-prefix = \"http://e10.c.example.com/\"\n",
                "crl-url-prefix = \"http://e10.c.example.com/\"\ncrl-allow-unknown-serials = true\n",
            )
    });
    let big = crl_body("e10", 3, 2000);
    assert!(big.len() > 100_000);
    let reply = s
        .client()
        .await
        .request_bytes("POST", "/v1/crls", big.clone(), "application/json")
        .await
        .unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json().unwrap()["error"]["code"], "request.too_large");

    // Chunked, with no Content-Length: refused once the limit is crossed while reading.
    let mut stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    stream
        .write_all(b"POST /v1/crls HTTP/1.1\r\nhost: strongroom\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for piece in big.chunks(8192) {
        let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut response))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..got]);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#""code":"request.too_large""#),
        "{response}"
    );

    assert!(crl_rows(&s.path("service/audit.db")).is_empty());
    let reply = s
        .client()
        .await
        .request_bytes(
            "POST",
            "/v1/crls",
            crl_body("e10", 3, 1000),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 201);
    let json = reply.json().unwrap();
    assert_eq!(json["number"], 1, "nothing was signed before");
    // pkilint's BR CRL lints on the one-buffer encoder's output, with mixed reasons.
    let tmp = tempfile::tempdir().unwrap();
    let crl_path = tmp.path().join("thousand.crl");
    let der = Base64::decode_vec(json["crl"].as_str().unwrap()).unwrap();
    std::fs::write(
        &crl_path,
        strongroom::x509::to_pem("X509 CRL", &der).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pkilint("lint_crl", &["-t", "CRL", "-p", "BR"], &crl_path),
        Vec::<String>::new()
    );

    // The DER answer carries its number in a header.
    let body = crl_body("e10", 3, 10);
    let mut stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let head = format!(
        "POST /v1/crls HTTP/1.1\r\nhost: strongroom\r\ncontent-type: application/json\r\naccept: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(&[head.as_bytes(), &body].concat())
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 201"), "{headers}");
    assert!(
        headers.contains("content-type: application/pkix-crl"),
        "{headers}"
    );
    assert!(headers.contains("crl-number: 2"), "{headers}");
    let crl = <x509_cert::crl::CertificateList>::from_der(&response[split + 4..]).unwrap();
    assert_eq!(crl.tbs_cert_list.revoked_certificates.unwrap().len(), 10);
}

/// Every file under `dir`, except the token store and the PIN files under `hsm/` (SoftHSM's,
/// and the operator's input).
fn written_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).unwrap() {
            let path = e.unwrap().path();
            if path.file_name().is_some_and(|n| n == "hsm") {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// `/proc/PID/cmdline` and `/proc/PID/environ` of a live process.
fn argv_and_environ(pid: u32) -> Vec<u8> {
    let mut all = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!all.is_empty(), "process {pid} has exited");
    all.extend(std::fs::read(format!("/proc/{pid}/environ")).unwrap());
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pin_never_appears_in_output_errors_argv_or_files() {
    let dir = Service::prepare(|c| c);
    let pin = std::fs::read_to_string(dir.path().join("hsm/user-pin")).unwrap();
    let pin = pin.trim().to_string();
    let so_pin = std::fs::read_to_string(dir.path().join("hsm/so-pin")).unwrap();
    let so_pin = so_pin.trim().to_string();
    assert!(pin.len() >= 8, "a PIN distinctive enough to search for");

    // A wrong PIN at start: refused, and neither PIN is in what it prints.
    let wrong = "wrong-pin-5d0c81e2";
    std::fs::write(dir.path().join("hsm/wrong-pin"), wrong).unwrap();
    let config = dir.path().join("service/strongroom.toml");
    let good_config = std::fs::read_to_string(&config).unwrap();
    assert!(good_config.contains("../hsm/user-pin"));
    std::fs::write(
        &config,
        good_config.replace("../hsm/user-pin", "../hsm/wrong-pin"),
    )
    .unwrap();
    let out = Command::new(strongroom_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("SOFTHSM2_CONF", dir.path().join("hsm/softhsm2.conf"))
        .output()
        .unwrap();
    let refused = text(&out);
    assert!(!out.status.success(), "started with a wrong PIN: {refused}");
    assert!(
        refused.contains("PIN"),
        "the refusal names the PIN: {refused}"
    );
    for secret in [pin.as_str(), so_pin.as_str(), wrong] {
        assert!(
            !refused.contains(secret),
            "PIN in the wrong-PIN refusal: {refused}"
        );
    }
    std::fs::write(&config, good_config).unwrap();

    // The real service: argv and environment, responses to good and bad requests, its output.
    let mut s = Service::spawn_with(dir, std::process::Stdio::piped());
    let proc_text = argv_and_environ(s.child.id());
    assert!(contains(&proc_text, "serve"), "read the service's own argv");
    for secret in [&pin, &so_pin] {
        assert!(
            !contains(&proc_text, secret),
            "PIN in the service's argv or environment"
        );
    }
    let [(p256, _, _), _] = subscriber_keys();
    let mut replies = Vec::new();
    let (status, reply) = s
        .post("/v1/certificates", &request(p256, &["pin.example.com"]))
        .await;
    assert_eq!(status, 201, "{reply}");
    replies.push(reply);
    for body in [
        request(p256, &["localhost"]),
        request("AAAA", &["pin.example.com"]),
        json!({"profile": "tls-server", "public_key": p256, "dns_names": ["x.example.com"], "pin": pin}),
        json!({"profile": "no-such-profile", "public_key": p256, "dns_names": ["x.example.com"]}),
        json!({"issuer": "r10", "shard": 99, "this_update": "2026-01-01T00:00:00Z"}),
    ] {
        for path in ["/v1/certificates", "/v1/crls", "/v1/ocsp"] {
            let (status, reply) = s.post(path, &body).await;
            assert!(status >= 400, "{path} {body}: {status} {reply}");
            replies.push(reply);
        }
    }
    let (status, body) = s.get("/v1/certificates/00/final").await;
    assert!(status >= 400, "{status} {body}");
    let (_, metrics) = s.get("/metrics").await;
    let (_, issuers) = s.get("/v1/issuers").await;
    let replies = format!("{replies:?}{body}{metrics}{issuers}");
    // The request that carried the PIN as an unknown field is echoed nowhere.
    for secret in [&pin, &so_pin] {
        assert!(
            !replies.contains(secret.as_str()),
            "PIN in a response: {replies}"
        );
    }

    // Output under normal and failing requests, after a clean shutdown.
    let child = &mut s.child;
    use std::io::Read;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).unwrap();
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text).unwrap();
        text
    });
    let status = strongroom::child::terminate(child, STOP);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.unwrap().success(), "{stderr}");
    assert!(
        stderr.contains("serving on"),
        "captured the service's stderr: {stderr}"
    );
    for secret in [&pin, &so_pin] {
        assert!(!stdout.contains(secret.as_str()), "PIN on stdout: {stdout}");
        assert!(!stderr.contains(secret.as_str()), "PIN on stderr: {stderr}");
    }

    // Every file strongroom wrote: the audit store (and its WAL), demo outputs and config.
    let files = written_files(s.dir.path());
    assert!(
        files.iter().any(|f| f.ends_with("service/audit.db")),
        "{files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [&pin, &so_pin] {
            assert!(!contains(&bytes, secret), "PIN in {}", file.display());
        }
    }
}

/// The gid running this test can hand the socket to: any other gid as root, otherwise a
/// supplementary group other than our own.
fn other_gid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").unwrap();
    if me.uid() == 0 {
        return Some(4243);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("Groups:"))?
        .split_whitespace()
        .skip(1)
        .filter_map(|g| g.parse::<u32>().ok())
        .find(|g| *g != me.gid())
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_mode_and_group_are_as_configured() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(gid) = other_gid() else {
        skip("no group other than our own to give the socket to");
        return;
    };
    let s = Service::start(|c| {
        c.replace(
            "socket-mode = \"0660\"",
            &format!("socket-mode = \"0640\"\nsocket-gid = {gid}"),
        )
    });
    let meta = std::fs::metadata(s.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), gid);
    let (status, _) = s.get("/v1/health").await;
    assert_eq!(status, 200);
}

/// The nice value of each of a process's threads, by thread name (proc(5): field 19 of
/// `/proc/PID/task/TID/stat`).
fn thread_nice_values(pid: u32) -> Vec<(String, i32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        let (open, close) = (stat.find('(').unwrap(), stat.rfind(')').unwrap());
        let nice = stat[close + 2..].split_whitespace().nth(16).unwrap();
        threads.push((stat[open + 1..close].to_string(), nice.parse().unwrap()));
    }
    threads
}

#[tokio::test(flavor = "multi_thread")]
async fn request_threads_run_below_the_hsm_workers_and_the_audit_writer() {
    let s = Service::start(|c| c.replace("[service]", "[service]\nrequest-threads-nice = 7"));
    let [(p256, _, _), _] = subscriber_keys();
    let (status, reply) = s
        .post("/v1/certificates", &request(p256, &["nice.example.com"]))
        .await;
    assert_eq!(status, 201, "{reply}");
    let threads = thread_nice_values(s.child.id());
    let nice = |prefix: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, n)| *n)
            .collect()
    };
    let (requests, hsm, audit) = (nice("tokio-"), nice("hsm-"), nice("audit-writer"));
    assert!(
        !requests.is_empty() && !hsm.is_empty() && !audit.is_empty(),
        "{threads:?}"
    );
    // The main thread has the nice value the service was started with.
    let base = nice("strongroom")[0];
    assert!(hsm.iter().chain(&audit).all(|n| *n == base), "{threads:?}");
    if base < 7 {
        assert!(requests.iter().all(|n| *n == 7), "{threads:?}");
    }
}

/// Sends request headers announcing a 4 KiB body, never sends the body, and returns what came
/// back within `wait` (None: no complete response head).
async fn headers_only(socket: &Path, wait: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    stream
        .write_all(
            b"POST /v1/certificates HTTP/1.1\r\nhost: strongroom\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n",
        )
        .await
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(wait, async {
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_caller_gets_403_before_sending_its_body() {
    let refusing = Service::start(|c| {
        let uid_line = c
            .lines()
            .find(|l| l.starts_with("uid = "))
            .unwrap()
            .to_string();
        c.replace(&uid_line, "uid = 4242")
    });
    let allowed = Service::start(|c| c);
    // The unlisted caller is answered while its body is still outstanding.
    let reply = headers_only(&refusing.socket(), Duration::from_secs(10)).await;
    let reply = reply.expect("no response while the body was outstanding");
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    // An allowed caller sending the same headers is not answered until its body arrives: the
    // handler reads the body, so the 403 above really came before it.
    let reply = headers_only(&allowed.socket(), Duration::from_secs(2)).await;
    assert_eq!(
        reply, None,
        "an allowed caller was answered without its body"
    );
}

/// The benchmark runs end to end on its own throwaway token: raw and service phases alternate,
/// and the report's figures are consistent with each other (one second per phase: a smoke test,
/// not a measurement).
#[test]
fn bench_issue_reports_rounds_against_raw_phases_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strongroom-bench"))
        .args(["issue", "--issuer", "ec-p256", "--sessions", "1"])
        .args(["--clients", "2", "--seconds", "1", "--rounds", "2", "--out"])
        .arg(dir.path().join("bench"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout[stdout.rfind("\n{").unwrap()..]).unwrap();
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 2, "{report}");
    assert_eq!(report["errors"], 0);
    assert!(report["signed"].as_u64().unwrap() > 0, "{report}");
    let median = report["median_round"].as_u64().unwrap() as usize;
    assert_eq!(report["ratio"], ratios[median - 1], "{report}");
    let raw = report["raw_sign_per_second"].as_f64().unwrap();
    let rate = report["signed_per_second"].as_f64().unwrap();
    let ratio = report["ratio"].as_f64().unwrap();
    assert!(raw > 0.0 && (rate / raw - ratio).abs() < 0.01, "{report}");
    let commits = report["audit_commits"].as_u64().unwrap();
    assert!(
        (1..=report["signed"].as_u64().unwrap() + 1).contains(&commits),
        "{report}"
    );
    // The service's CPU by thread group: the session workers sign, the writer commits, the
    // request threads do the rest, and the groups add up to the process's total.
    let by_thread = report["service_cpu_us_per_signed_by_thread"]
        .as_object()
        .unwrap();
    let group = |k: &str| by_thread[k].as_f64().unwrap();
    for k in ["hsm_sessions", "audit_writer", "request_threads"] {
        assert!(group(k) > 0.0, "{k}: {report}");
    }
    let sum: f64 = by_thread.values().map(|v| v.as_f64().unwrap()).sum();
    let total = report["service_cpu_us_per_signed"].as_f64().unwrap();
    // Each figure is counted in clock ticks of 10 ms and rounded to 0.1 µs per certificate.
    let slack = 4.0 * 10_000.0 / report["signed"].as_f64().unwrap() + 0.5;
    assert!(
        (sum - total).abs() <= slack,
        "{sum} against {total}: {report}"
    );
}
