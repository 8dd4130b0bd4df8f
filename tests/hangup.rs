//! Clients that hang up: once the HSM has been asked to sign, the signature is verified and
//! recorded whatever the client does, so after any run, once the service is quiet, the HSM
//! signature counters (`strongroom_hsm_signatures_total{kind}`) equal the records added to the
//! audit store, kind by kind. Each signing endpoint gets many raw Unix-socket clients that close
//! their connection at a random moment: right after the request head, or 0–30 ms after the whole
//! request. The records are read with the project's own reader (`audit::verify`, which walks
//! the chain) and, independently, with plain SQL on the store.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{self, Daemon, Rt};
use serde_json::{Value, json};

/// The kinds counted, in the order of the arrays below.
const KINDS: [&str; 4] = ["certificate", "precertificate", "crl", "ocsp"];

/// A small xorshift generator: the waits are random but reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("hangup seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// When a client closes its connection.
#[derive(Clone, Copy, Debug)]
enum Hangup {
    /// After the request head, before any of the body.
    AfterHead,
    /// This long after the whole request was sent.
    After(Duration),
}

/// Sends one request on a new connection and closes it without reading the answer.
fn hang_up(socket: &Path, path: &str, body: &[u8], how: Hangup) {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return;
    };
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: strongroom\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    match how {
        Hangup::AfterHead => {}
        Hangup::After(wait) => {
            if s.write_all(body).is_err() {
                return;
            }
            std::thread::sleep(wait);
        }
    }
    drop(s);
}

/// Sends every request from `threads` threads, each client hanging up at a random moment: one in
/// six right after the head, the others 0–30 ms after the whole request.
fn hammer(socket: &Path, requests: Vec<(String, Vec<u8>)>, threads: usize, rng: &mut Rng) {
    let mut plans: Vec<Vec<(String, Vec<u8>, Hangup)>> = vec![Vec::new(); threads];
    for (i, (path, body)) in requests.into_iter().enumerate() {
        let how = if rng.below(6) == 0 {
            Hangup::AfterHead
        } else {
            Hangup::After(Duration::from_millis(rng.below(31)))
        };
        plans[i % threads].push((path, body, how));
    }
    let workers: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let socket = socket.to_owned();
            std::thread::spawn(move || {
                for (path, body, how) in plan {
                    hang_up(&socket, &path, &body, how);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// The HSM signature counters, kind by kind.
fn signatures(rt: &Rt, socket: &Path) -> [u64; 4] {
    let (status, text) = rt.get_text(socket, "/metrics").unwrap();
    assert_eq!(status, 200, "{text}");
    KINDS.map(|k| {
        daemon::counter(
            &text,
            &format!("strongroom_hsm_signatures_total{{kind=\"{k}\"}}"),
        )
    })
}

/// The records in the audit store, kind by kind, read twice: through the project's chain walk
/// (`audit::verify`) and with plain SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Records {
    /// Records of each kind, as the chain walk counts them.
    chain: [u64; 4],
    /// Records of each kind, counted with SQL.
    sql: [u64; 4],
    /// Signed objects of each kind: one per record, but an `ocsp` record counts its responses.
    signed: [u64; 4],
}

fn records(store: &Path) -> Records {
    let summary = strongroom::audit::verify(store).unwrap();
    let chain = KINDS.map(|k| summary.kinds.get(k).copied().unwrap_or(0));
    let conn = rusqlite::Connection::open_with_flags(
        store,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let (mut sql, mut signed) = ([0u64; 4], [0u64; 4]);
    let mut stmt = conn
        .prepare("SELECT kind, summary FROM records ORDER BY seq")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let kind: String = row.get(0).unwrap();
        let Some(i) = KINDS.iter().position(|k| *k == kind) else {
            continue;
        };
        sql[i] += 1;
        signed[i] += if kind == "ocsp" {
            let summary: Value = serde_json::from_str(&row.get::<_, String>(1).unwrap()).unwrap();
            summary["count"].as_u64().unwrap()
        } else {
            1
        };
    }
    Records { chain, sql, signed }
}

/// Waits until the service is quiet (counters and records unchanged for 600 ms, or 2 s when they
/// differ, at most 30 s) and returns (signatures, signed objects recorded). The chain walk and
/// SQL must agree on the quiet store.
fn settle(rt: &Rt, d: &Daemon) -> ([u64; 4], [u64; 4]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    let mut since = Instant::now();
    let (signatures, records) = loop {
        let now = (signatures(rt, &d.socket()), records(&d.store()));
        if last == Some(now) {
            let quiet = if now.0 == now.1.signed { 600 } else { 2000 };
            if since.elapsed() >= Duration::from_millis(quiet) {
                break now;
            }
        } else {
            last = Some(now);
            since = Instant::now();
        }
        if Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        records.chain, records.sql,
        "the chain walk and SQL disagree"
    );
    (signatures, records.signed)
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn issue_body(name: &str, precertificate: bool) -> Value {
    json!({
        "profile": "tls-server",
        "public_key": daemon::subscriber_key(),
        "dns_names": [name],
        "precertificate": precertificate,
    })
}

/// Issues `n` certificates (or precertificates) normally; returns their serials.
fn issue(rt: &Rt, d: &Daemon, n: usize, precertificate: bool) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (status, reply) = rt
                .post(
                    &d.socket(),
                    "/v1/certificates",
                    &issue_body(&format!("setup{i}.example.com"), precertificate),
                )
                .unwrap();
            assert_eq!(status, 201, "{reply}");
            reply["serial"].as_str().unwrap().to_string()
        })
        .collect()
}

fn ocsp_window() -> (String, String) {
    let now = std::time::SystemTime::now();
    (
        strongroom::time::rfc3339(now),
        strongroom::time::rfc3339(now + Duration::from_secs(3 * 86_400)),
    )
}

/// Starts a service, runs `setup` (normal requests), then the hanging-up clients it returns,
/// waits until quiet and compares the counters with the records, kind by kind. `kind` is the
/// index in [`KINDS`] the endpoint signs: some of the hanging-up clients' requests must have
/// been signed, or the run proves nothing.
fn run(kind: usize, setup: impl FnOnce(&Rt, &Daemon) -> Vec<(String, Vec<u8>)>) {
    let dir = daemon::copy_demo(|c| c);
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    let mut rng = Rng::seeded();
    let requests = setup(&rt, &d);
    let (before, recorded_before) = settle(&rt, &d);
    assert_eq!(
        before, recorded_before,
        "normal requests: counters vs records"
    );
    let started = Instant::now();
    hammer(&d.socket(), requests, 8, &mut rng);
    let (signed, recorded) = settle(&rt, &d);
    println!(
        "{}: clients done in {:?}; HSM signatures {before:?} -> {signed:?}, records {recorded_before:?} -> {recorded:?}",
        KINDS[kind],
        started.elapsed()
    );
    for (i, k) in KINDS.iter().enumerate() {
        assert_eq!(
            signed[i] - before[i],
            recorded[i] - recorded_before[i],
            "{k}: HSM signatures vs records added while clients hung up \
             (signatures {before:?} -> {signed:?}, records {recorded_before:?} -> {recorded:?})"
        );
    }
    assert!(
        signed[kind] > before[kind],
        "no hanging-up client's request was signed: the run proves nothing"
    );
    // The service still answers normally afterwards.
    let (status, reply) = rt.get_text(&d.socket(), "/v1/health").unwrap();
    assert_eq!(status, 200, "{reply}");
    let (ok, report) = daemon::audit_verify(dir.path(), &d.store());
    assert!(ok, "{report}");
}

#[test]
fn certificates_are_recorded_when_clients_hang_up() {
    run(0, |_, _| {
        (0..80)
            .map(|i| {
                let body = issue_body(&format!("h{i}.example.com"), false);
                ("/v1/certificates".to_string(), json_bytes(&body))
            })
            .collect()
    });
}

#[test]
fn precertificates_are_recorded_when_clients_hang_up() {
    run(1, |_, _| {
        (0..80)
            .map(|i| {
                let body = issue_body(&format!("p{i}.example.com"), true);
                ("/v1/certificates".to_string(), json_bytes(&body))
            })
            .collect()
    });
}

#[test]
fn finals_are_recorded_when_clients_hang_up() {
    run(0, |rt, d| {
        let serials = issue(rt, d, 30, true);
        let body = json_bytes(&json!({"sct_list": common::sct_list_base64()}));
        // Two clients for each precertificate: at most one final each.
        serials
            .iter()
            .chain(&serials)
            .map(|s| (format!("/v1/certificates/{s}/final"), body.clone()))
            .collect()
    });
}

#[test]
fn crls_are_recorded_when_clients_hang_up() {
    run(2, |_, _| {
        let now = strongroom::time::now_rfc3339();
        (0..40u32)
            .map(|i| {
                let body =
                    json!({"issuer": "r10", "shard": i % 16, "this_update": now, "entries": []});
                ("/v1/crls".to_string(), json_bytes(&body))
            })
            .collect()
    });
}

#[test]
fn ocsp_responses_are_recorded_when_clients_hang_up() {
    run(3, |rt, d| {
        let serials = issue(rt, d, 4, false);
        let (now, later) = ocsp_window();
        (0..80)
            .map(|i| {
                let body = json!({"issuer": "r10", "serial": serials[i % 4], "status": "good", "this_update": now, "next_update": later});
                ("/v1/ocsp".to_string(), json_bytes(&body))
            })
            .collect()
    });
}

#[test]
fn ocsp_batches_are_recorded_when_clients_hang_up() {
    run(3, |rt, d| {
        let serials = issue(rt, d, 4, false);
        let (now, later) = ocsp_window();
        let statuses: Vec<Value> = serials
            .iter()
            .cycle()
            .take(12)
            .map(|s| json!({"serial": s, "status": "good"}))
            .collect();
        (0..40)
            .map(|_| {
                let body = json!({"issuer": "r10", "this_update": now, "next_update": later, "statuses": statuses});
                ("/v1/ocsp/batch".to_string(), json_bytes(&body))
            })
            .collect()
    });
}

/// Many concurrent `/final` calls for one precertificate: exactly one is signed and recorded;
/// the others get 409 without a signature (RFC 6962 3.1: one final certificate per
/// precertificate).
#[test]
fn concurrent_finals_for_one_precertificate_sign_once() {
    let dir = daemon::copy_demo(|c| c);
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    let serial = issue(&rt, &d, 1, true).remove(0);
    let body = json!({"sct_list": common::sct_list_base64()});
    let path = format!("/v1/certificates/{serial}/final");
    let replies: Vec<(u16, Value)> = rt.0.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (socket, path, body) = (d.socket(), path.clone(), body.clone());
                tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_secs(30), async {
                        let mut client = strongroom::client::Client::connect(&socket).await?;
                        let reply = client.request("POST", &path, Some(&body)).await?;
                        Ok::<_, String>((reply.status, reply.json().unwrap_or(Value::Null)))
                    })
                    .await
                    .map_err(|_| "no answer within 30 s".to_string())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap().unwrap());
        }
        out
    });
    let created = replies.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    for (status, reply) in replies.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{reply}");
        let code = reply["error"]["code"].as_str().unwrap();
        assert!(
            code == "request.serial.already_final" || code == "request.serial.final_in_progress",
            "{reply}"
        );
    }
    let (signed, recorded) = settle(&rt, &d);
    // One precertificate and one final, each signed once and recorded once.
    assert_eq!(signed, [1, 1, 0, 0], "HSM signatures");
    assert_eq!(recorded, [1, 1, 0, 0], "records");
}

/// SIGTERM while clients hang up: the service exits cleanly only after the detached signing work
/// is recorded. The counters it reports on exit equal the records in the store, kind by kind.
/// A large OCSP batch, whose client hangs up at once, is still being signed when SIGTERM comes.
#[test]
fn sigterm_waits_for_signing_whose_client_hung_up() {
    let dir = daemon::copy_demo(|c| c);
    let mut d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    let mut rng = Rng::seeded();
    let serials = issue(&rt, &d, 4, false);
    let (now, later) = ocsp_window();
    let statuses: Vec<Value> = serials
        .iter()
        .cycle()
        .take(4000)
        .map(|s| json!({"serial": s, "status": "good"}))
        .collect();
    let batch =
        json!({"issuer": "r10", "this_update": now, "next_update": later, "statuses": statuses});
    let socket = d.socket();
    let batch_client = std::thread::spawn(move || {
        hang_up(
            &socket,
            "/v1/ocsp/batch",
            &json_bytes(&batch),
            Hangup::After(Duration::from_millis(50)),
        );
    });
    // SIGTERM once the batch is being signed, while other clients come and hang up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while signatures(&rt, &d.socket())[3] == 0 {
        assert!(Instant::now() < deadline, "the batch was never signed");
        std::thread::sleep(Duration::from_millis(5));
    }
    batch_client.join().unwrap();
    let requests: Vec<_> = (0..160)
        .map(|i| {
            let body = issue_body(&format!("t{i}.example.com"), i % 2 == 0);
            ("/v1/certificates".to_string(), json_bytes(&body))
        })
        .collect();
    let socket = d.socket();
    let clients = std::thread::spawn(move || hammer(&socket, requests, 16, &mut rng));
    std::thread::sleep(Duration::from_millis(20));
    let status = d.term(Duration::from_secs(60));
    clients.join().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit after SIGTERM ({status:?}):\n{}",
        d.log()
    );
    let log = d.log();
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("strongroom: stopped; HSM signatures by kind: "))
        .unwrap_or_else(|| panic!("no final counts in the log:\n{log}"));
    let signed = KINDS.map(|k| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    let recorded = records(&d.store());
    println!("SIGTERM: HSM signatures {signed:?}, records {recorded:?}");
    assert_eq!(
        recorded.chain, recorded.sql,
        "the chain walk and SQL disagree"
    );
    assert_eq!(
        signed, recorded.signed,
        "HSM signatures vs records after SIGTERM"
    );
    assert_eq!(signed[3], 4000, "the whole batch is signed and recorded");
}
