//! Hostile and broken input at the socket: request heads over the size limit, clients that send
//! their head or body too slowly, and more connections than the service serves at once. Each
//! limit is set small in the service's configuration and driven with a raw Unix-socket client.
//! (The body-size limit, 413, and the number of names, `policy.names.too_many`, are tested in
//! tests/service.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{self, Daemon, Rt};
use serde_json::json;

/// A copy of the demo whose `[service]` table gets `keys` added.
fn service_with(keys: &str) -> tempfile::TempDir {
    daemon::copy_demo(|c| {
        c.replacen(
            "instance-prefix = 1\n",
            &format!("instance-prefix = 1\n{keys}\n"),
            1,
        )
    })
}

/// Reads until the end of a response head or EOF (bounded by `timeout`); returns what came.
fn read_response(stream: &mut UnixStream, timeout: Duration) -> String {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    // Read the body too when it says how long it is.
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if out.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no response and no close within {timeout:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn issue_body(name: &str) -> serde_json::Value {
    json!({"profile": "tls-server", "public_key": daemon::subscriber_key(), "dns_names": [name]})
}

fn metric(rt: &Rt, socket: &Path, name: &str) -> u64 {
    let (status, m) = rt.get_text(socket, "/metrics").unwrap();
    assert_eq!(status, 200);
    daemon::counter(&m, name)
}

#[test]
fn a_request_head_over_the_limit_gets_431() {
    let dir = service_with("max-header-bytes = 8192");
    let d = Daemon::start(dir.path(), &[]);
    let ask = |extra: &str| {
        let mut s = UnixStream::connect(d.socket()).unwrap();
        // The service may answer 431 and close while the head is still being written: a broken
        // pipe here is expected, and the answer is still there to read.
        if let Err(e) = write!(
            s,
            "GET /v1/issuers HTTP/1.1\r\nHost: strongroom\r\n{extra}Connection: close\r\n\r\n"
        ) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        read_response(&mut s, Duration::from_secs(30))
    };
    let ok = ask(&format!("X-Pad: {}\r\n", "a".repeat(4000)));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let big = ask(&format!("X-Pad: {}\r\n", "a".repeat(10_000)));
    assert!(big.starts_with("HTTP/1.1 431"), "one large header: {big}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = ask(&many);
    assert!(many.starts_with("HTTP/1.1 431"), "150 headers: {many}");
}

#[test]
fn a_slow_head_is_cut_off_while_others_are_served() {
    let dir = service_with("header-timeout-seconds = 1");
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    // A client trickles an endless head, one byte every 50 ms.
    let mut slow = UnixStream::connect(d.socket()).unwrap();
    slow.write_all(b"POST /v1/certificates HTTP/1.1\r\nHost: strongroom\r\nX-Slow: ")
        .unwrap();
    let mut writer = slow.try_clone().unwrap();
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_secs(30) {
            if writer.write_all(b"a").is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    });
    // Meanwhile the service answers others.
    let (status, reply) = rt
        .post(
            &d.socket(),
            "/v1/certificates",
            &issue_body("busy.example.com"),
        )
        .unwrap();
    assert_eq!(status, 201, "{reply}");
    // The slow client's connection is closed, with no request served.
    let got = read_response(&mut slow, Duration::from_secs(30));
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    let cut_after = trickle
        .join()
        .unwrap()
        .expect("the slow head was never cut off");
    assert!(
        cut_after >= Duration::from_millis(900),
        "cut after {cut_after:?}"
    );
    assert_eq!(
        metric(&rt, &d.socket(), "strongroom_certificate_signatures_total"),
        1
    );
}

#[test]
fn a_slow_body_gets_408_and_nothing_is_signed() {
    let dir = service_with("body-timeout-seconds = 1");
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    let body = serde_json::to_vec(&issue_body("slow.example.com")).unwrap();
    let mut slow = UnixStream::connect(d.socket()).unwrap();
    write!(
        slow,
        "POST /v1/certificates HTTP/1.1\r\nHost: strongroom\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The body comes one byte every 50 ms: it would take far longer than the second allowed.
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for b in body {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let got = read_response(&mut slow, Duration::from_secs(30));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.contains(r#""code":"request.timeout""#) && got.contains("body-timeout-seconds"),
        "{got}"
    );
    drop(slow);
    trickle.join().unwrap();
    assert_eq!(
        metric(&rt, &d.socket(), "strongroom_certificate_signatures_total"),
        0
    );
    // A client that sends its body in time is served.
    let (status, reply) = rt
        .post(
            &d.socket(),
            "/v1/certificates",
            &issue_body("fast.example.com"),
        )
        .unwrap();
    assert_eq!(status, 201, "{reply}");
}

#[test]
fn connections_over_the_cap_wait_until_a_slot_frees() {
    let dir = service_with("max-connections = 2\nheader-timeout-seconds = 60");
    let d = Daemon::start(dir.path(), &[]);
    let rt = Rt::new();
    // Two connections take both slots and send half a head.
    let mut held: Vec<UnixStream> = (0..2)
        .map(|_| {
            let mut s = UnixStream::connect(d.socket()).unwrap();
            s.write_all(b"GET /v1/issuers HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // A third waits: not refused, not served.
    let socket = d.socket();
    let third = rt.0.spawn(async move {
        let mut c = strongroom::client::Client::connect(&socket).await?;
        c.request("GET", "/v1/issuers", None)
            .await
            .map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!third.is_finished(), "a connection over the cap was served");
    // One held connection finishes its request and closes: the third is served.
    held[0]
        .write_all(b"Host: strongroom\r\nConnection: close\r\n\r\n")
        .unwrap();
    let first = read_response(&mut held[0], Duration::from_secs(30));
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    drop(held.remove(0));
    let status =
        rt.0.block_on(async { tokio::time::timeout(Duration::from_secs(30), third).await })
            .expect("served once a slot freed")
            .unwrap()
            .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn limits_out_of_range_are_refused_naming_the_key() {
    for (keys, expected) in [
        (
            "max-header-bytes = 100",
            "service.max-header-bytes: must be 8192..=1048576",
        ),
        (
            "max-connections = 0",
            "service.max-connections: must be at least 1",
        ),
        (
            "header-timeout-seconds = 0",
            "service.header-timeout-seconds: must be at least 1",
        ),
        (
            "body-timeout-seconds = 0",
            "service.body-timeout-seconds: must be at least 1",
        ),
    ] {
        let dir = service_with(keys);
        let config = dir
            .path()
            .join("service/strongroom.toml")
            .display()
            .to_string();
        let (status, out) = daemon::run_bounded(
            dir.path(),
            &["serve", "--config", &config],
            Duration::from_secs(60),
        );
        assert!(status.is_some_and(|s| !s.success()), "{keys}: {out}");
        assert!(out.contains(expected), "{keys}: {out}");
        assert!(
            !dir.path().join("service/audit.db").exists(),
            "{keys}: nothing created"
        );
    }
}
