//! HSM faults for real: SoftHSM served by `p11-kit server` on a Unix socket (a remote HSM), and
//! `strongroom serve` using it through `p11-kit-client.so`. The server is killed (SIGKILL), stopped
//! (SIGSTOP) or brought back with a changed PIN while clients keep issuing.
//!
//! Everything here runs on std threads with bounded waits: each client request has a timeout, the
//! clients run their own current-thread runtimes, and every child process (the p11-kit server
//! with its per-connection children, and the service) is killed when its guard drops. Signals
//! are sent with rustix (no `kill` command), and every wait for a child process is bounded: a
//! child that does not exit in time fails the test, naming it.
//!
//! `STRONGROOM_FAULT_CYCLES=N` repeats the kill/restart cycle N times (default 1) and prints the
//! figures of each cycle.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use common::*;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::{Value, json};
use strongroom::client::Client;

/// Every client request is answered within this, or the test fails ("no hang").
const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// The p11-kit client module (package p11-kit-modules).
fn p11_kit_client() -> PathBuf {
    let known = [
        "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
        "/usr/lib/pkcs11/p11-kit-client.so",
    ];
    if let Some(p) = known.iter().map(PathBuf::from).find(|p| p.exists()) {
        return p;
    }
    let out = Command::new("dpkg")
        .args(["-L", "p11-kit-modules"])
        .output()
        .expect("dpkg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with("/p11-kit-client.so"))
        .map(PathBuf::from)
        .expect("p11-kit-client.so is installed (package p11-kit-modules)")
}

/// The pid of a child process, for rustix.
fn pid(child: &Child) -> Pid {
    Pid::from_child(child)
}

/// Sends `sig` to a whole process group (kill(2) with a negative pid). A group that is gone
/// already (ESRCH) is not an error: the signals sent here all mean "stop it".
fn signal_group(leader: &Child, sig: Signal) {
    match kill_process_group(pid(leader), sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => panic!("kill(-{}, {sig:?}): {e}", leader.id()),
    }
}

/// How long a child is given to exit once told to.
const EXIT_BOUND: Duration = Duration::from_secs(15);

/// Waits at most `within` for `child` to exit; an error names the process if it did not.
fn wait_bounded(child: &mut Child, what: &str, within: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return Err(format!(
                    "{what} (pid {}) did not exit within {within:?}",
                    child.id()
                ));
            }
            Err(e) => return Err(format!("waiting for {what} (pid {}): {e}", child.id())),
        }
    }
}

/// SIGKILL and a bounded wait, from a guard's `drop`: a child that survives is reported (and
/// fails the test unless it is failing already).
fn kill_in_drop(child: &mut Child, what: &str, group: bool) {
    if group {
        signal_group(child, Signal::KILL);
    }
    let _ = child.kill();
    if let Err(e) = wait_bounded(child, what, EXIT_BOUND) {
        eprintln!("could not stop {e}");
        if !std::thread::panicking() {
            panic!("could not stop {e}");
        }
    }
}

/// `p11-kit server` in the foreground, in its own process group (it forks a child per client
/// connection: the whole group is the HSM).
struct P11Server {
    child: Child,
}

impl P11Server {
    fn start(conf: &Path, socket: &Path, token: &str) -> P11Server {
        let _ = std::fs::remove_file(socket);
        let child = Command::new("p11-kit")
            .args(["server", "-f", "-n"])
            .arg(socket)
            .arg("--provider")
            .arg(module())
            .arg(format!("pkcs11:token={token}"))
            .env("SOFTHSM2_CONF", conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("p11-kit is installed");
        let server = P11Server { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "p11-kit server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn signal(&self, sig: Signal) {
        signal_group(&self.child, sig);
    }

    /// SIGKILL to the whole group: the HSM is gone. Its drop waits (bounded) for the leader.
    fn kill(self) {
        self.signal(Signal::KILL);
    }
}

impl Drop for P11Server {
    fn drop(&mut self) {
        kill_in_drop(&mut self.child, "p11-kit server", true);
    }
}

/// A SoftHSM token with a P-256 root and intermediate (made by a ceremony directly on SoftHSM),
/// served by p11-kit, and `strongroom serve` using it through p11-kit-client.so.
struct Rig {
    sandbox: Sandbox,
    p11_socket: PathBuf,
    server: Option<P11Server>,
    service: Option<Child>,
    stderr: PathBuf,
}

const TOKEN: &str = "faults";

impl Rig {
    fn new(call_timeout_ms: Option<u64>) -> Rig {
        let sandbox = Sandbox::new(&[TOKEN]);
        // The demo's ECDSA root and issuing CA (E1, E10), shipped in ceremony/demo/, with P-256
        // keys and the issuing key labelled for this rig.
        let roots = ShippedScript::load("demo/1-roots.toml")
            .on_token(TOKEN, &sandbox.pin_file)
            .only(&["root-e1-key", "root-e1"])
            .set("root-e1-key", "key-type", "ec-p256");
        let out = sandbox.ceremony("roots.toml", &roots.text());
        assert!(out.status.success(), "ceremony: {}", text(&out));
        let issuer_key = format!("pkcs11:token={TOKEN};object=demo-root-e1");
        let intermediates = ShippedScript::load("demo/2-intermediates.toml")
            .on_token(TOKEN, &sandbox.pin_file)
            .only(&["e10-key", "e10"])
            .set("e10-key", "key-type", "ec-p256")
            .set("e10-key", "label", "faults-int")
            .set("e10", "issuer-key", toml_ref("uri", &issuer_key));
        let out = sandbox.ceremony("intermediates.toml", &intermediates.text());
        assert!(out.status.success(), "ceremony: {}", text(&out));
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        let timeout = call_timeout_ms
            .map(|ms| format!("call-timeout-ms = {ms}\n"))
            .unwrap_or_default();
        let config = format!(
            r#"[service]
socket = "strongroom.sock"
allow-root = {root}
store = "audit.db"
instance-prefix = 1

[hsm]
module = "{module}"
token = "{TOKEN}"
pin = {{ file = "{pin}" }}
sessions = 2
{timeout}
[[caller]]
name = "test"
uid = {uid}

[[issuer]]
name = "f1"
certificate = "int-e10.pem"
key = "pkcs11:token={TOKEN};object=faults-int"
ca-issuers-url = "http://f1.i.example.com/"
crl-url-prefix = "http://f1.c.example.com/"

[[profile]]
name = "tls-server"
validity-hours = 2160
"#,
            root = uid == 0,
            module = p11_kit_client().display(),
            pin = sandbox.pin_file.display(),
        );
        std::fs::write(sandbox.dir.join("strongroom.toml"), config).unwrap();
        let p11_socket = sandbox.tmp.path().join("p11kit.sock");
        let stderr = sandbox.tmp.path().join("serve.stderr");
        let mut rig = Rig {
            sandbox,
            p11_socket,
            server: None,
            service: None,
            stderr,
        };
        rig.start_server();
        rig.start_service();
        rig
    }

    fn start_server(&mut self) {
        self.server = Some(P11Server::start(
            &self.sandbox.conf,
            &self.p11_socket,
            TOKEN,
        ));
    }

    fn kill_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.kill();
        }
    }

    fn server(&self) -> &P11Server {
        self.server.as_ref().unwrap()
    }

    fn start_service(&mut self) {
        let child = Command::new(strongroom_bin())
            .args(["serve", "--config"])
            .arg(self.sandbox.dir.join("strongroom.toml"))
            .env_remove("SOFTHSM2_CONF")
            .env(
                "P11_KIT_SERVER_ADDRESS",
                format!("unix:path={}", self.p11_socket.display()),
            )
            .stdout(Stdio::null())
            .stderr(File::create(&self.stderr).unwrap())
            .spawn()
            .unwrap();
        self.service = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket().exists() {
            if let Some(status) = self.service.as_mut().unwrap().try_wait().unwrap() {
                panic!("the service exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "the service did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn socket(&self) -> PathBuf {
        self.sandbox.dir.join("strongroom.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// One request on its own runtime, bounded by REQUEST_BOUND: (status, JSON body).
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        request(&self.socket(), method, path, body).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn health(&self) -> (u16, Value) {
        self.request("GET", "/v1/health", None)
    }

    fn metric(&self, name: &str) -> f64 {
        let rt = runtime();
        let socket = self.socket();
        let text = rt.block_on(async {
            let mut c = Client::connect(&socket).await.unwrap();
            let r = c.request("GET", "/metrics", None).await.unwrap();
            String::from_utf8_lossy(&r.body).into_owned()
        });
        text.lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
    }

    /// Polls /v1/health until `want` (bounded); returns the body and when it was seen.
    fn wait_health(&self, want: u16, within: Duration) -> (Value, Instant) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.health();
            if status == want {
                return (body, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "health did not become {want} within {within:?}: {body}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until health reports the outage declared (`state: "unavailable"`). A health check
    /// may say 503 earlier, while a probe it waited for has not answered yet (`reachable: false`,
    /// state still "healthy"): that is not yet the declared outage.
    fn wait_outage(&self, within: Duration) -> (Value, Instant) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.health();
            if status == 503 && body["hsm"]["state"] == "unavailable" {
                return (body, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "no outage declared within {within:?}: {body}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, bounded wait, then the service's stderr. A service that does not stop on SIGTERM
    /// in time is killed and fails the test.
    fn stop_service(&mut self) -> String {
        if let Some(mut child) = self.service.take() {
            kill_process(pid(&child), Signal::TERM).unwrap();
            if let Err(e) = wait_bounded(&mut child, "strongroom serve", EXIT_BOUND) {
                kill_in_drop(&mut child, "strongroom serve", false);
                panic!("SIGTERM did not stop the service: {e}\n{}", self.log());
            }
        }
        self.log()
    }

    fn audit_store(&self) -> PathBuf {
        self.sandbox.dir.join("audit.db")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut child) = self.service.take() {
            kill_in_drop(&mut child, "strongroom serve", false);
        }
        // The server guard kills its process group.
        self.server = None;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    request_within(socket, method, path, body, REQUEST_BOUND)
}

/// One request that waits at most `bound` for its answer; a client that gives up closes its
/// connection (the service sees the caller leave).
fn request_within(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
    bound: Duration,
) -> Result<(u16, Value), String> {
    runtime().block_on(async {
        let reply = tokio::time::timeout(bound, async {
            let mut c = Client::connect(socket).await?;
            c.request(method, path, body).await
        })
        .await
        .map_err(|_| format!("no answer within {bound:?}"))??;
        Ok((reply.status, reply.json()?))
    })
}

/// A subscriber public key (P-256, made with openssl), base64 SPKI DER.
fn subscriber_key(dir: &Path) -> String {
    let key = dir.join("leaf.key");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    Base64::encode_string(&out.stdout)
}

/// One client request as the load saw it.
#[derive(Clone, Debug)]
struct Sample {
    start: Instant,
    end: Instant,
    status: u16,
    code: String,
    message: String,
    der: Option<Vec<u8>>,
}

impl Sample {
    fn latency(&self) -> Duration {
        self.end - self.start
    }
}

/// `clients` threads issuing certificates back to back until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(socket: PathBuf, key: String, clients: usize) -> Load {
        Load::start_within(socket, key, clients, REQUEST_BOUND)
    }

    /// Clients that each wait at most `bound` for an answer, then give up and disconnect.
    fn start_within(socket: PathBuf, key: String, clients: usize, bound: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|t| {
                let (socket, key, stop, samples) =
                    (socket.clone(), key.clone(), stop.clone(), samples.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let body = json!({
                            "profile": "tls-server",
                            "public_key": key,
                            "dns_names": [format!("c{t}-{n}.example.com")],
                        });
                        let start = Instant::now();
                        let reply =
                            request_within(&socket, "POST", "/v1/certificates", Some(&body), bound);
                        let end = Instant::now();
                        let sample = match reply {
                            Ok((status, json)) => Sample {
                                start,
                                end,
                                status,
                                code: json["error"]["code"].as_str().unwrap_or("").to_string(),
                                message: json["error"]["message"]
                                    .as_str()
                                    .unwrap_or("")
                                    .to_string(),
                                der: json["certificate"]
                                    .as_str()
                                    .map(|b| Base64::decode_vec(b).unwrap()),
                            },
                            Err(e) => Sample {
                                start,
                                end,
                                status: 0,
                                code: String::new(),
                                message: e,
                                der: None,
                            },
                        };
                        samples.lock().unwrap().push(sample);
                    }
                })
            })
            .collect();
        Load {
            stop,
            samples,
            threads,
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// The first 201 that ended after `t`, waiting for it (bounded).
    fn first_success_after(&self, t: Instant, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let first = self
                .samples()
                .iter()
                .filter(|s| s.status == 201 && s.end > t)
                .map(|s| s.end)
                .min();
            if first.is_some() || Instant::now() > deadline {
                return first;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the clients; each finishes its request (bounded by REQUEST_BOUND).
    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            t.join().unwrap();
        }
        self.samples.lock().unwrap().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The checks every fault test ends with: every request was answered; every certificate a
/// client received verifies under the issuer (openssl) and is in the audit store; the audit chain
/// verifies.
fn check_outputs(rig: &Rig, samples: &[Sample]) {
    let hung: Vec<_> = samples.iter().filter(|s| s.status == 0).collect();
    assert!(hung.is_empty(), "requests without an answer: {hung:?}");
    let unexpected: Vec<_> = samples
        .iter()
        .filter(|s| s.status != 201 && !(s.status == 503 && s.code == "hsm.unavailable"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 201 or 503 hsm.unavailable: {unexpected:?}"
    );

    let certs: Vec<&Vec<u8>> = samples.iter().filter_map(|s| s.der.as_ref()).collect();
    assert!(!certs.is_empty());
    // In the audit store: every certificate a client received, byte for byte.
    let conn = rusqlite::Connection::open(rig.audit_store()).unwrap();
    let mut stmt = conn
        .prepare("SELECT der FROM records WHERE kind = 'certificate'")
        .unwrap();
    let stored: std::collections::HashSet<Vec<u8>> = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let missing = certs
        .iter()
        .filter(|c| !stored.contains(c.as_slice()))
        .count();
    assert_eq!(
        missing, 0,
        "certificates returned but not in the audit store"
    );

    // openssl verifies every returned certificate under the issuer, in batches.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = certs
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let path = dir.path().join(format!("leaf{i}.pem"));
            std::fs::write(&path, strongroom::x509::to_pem("CERTIFICATE", der).unwrap()).unwrap();
            path
        })
        .collect();
    for chunk in files.chunks(200) {
        let out = Command::new("openssl")
            .args([
                "verify",
                "-x509_strict",
                "-no-CApath",
                "-no-CAstore",
                "-CAfile",
            ])
            .arg(rig.sandbox.dir.join("root-e1.pem"))
            .arg("-untrusted")
            .arg(rig.sandbox.dir.join("int-e10.pem"))
            .args(chunk)
            .output()
            .unwrap();
        let report = text(&out);
        assert!(out.status.success(), "openssl verify: {report}");
        assert_eq!(
            report.matches(": OK").count(),
            chunk.len(),
            "openssl verify: {report}"
        );
    }

    let out = Command::new(strongroom_bin())
        .args(["audit", "verify", "--store"])
        .arg(rig.audit_store())
        .output()
        .unwrap();
    assert!(out.status.success(), "audit verify: {}", text(&out));
}

#[test]
fn sigkill_of_the_hsm_server_under_load_gives_quick_503s_and_recovers() {
    let cycles: usize = std::env::var("STRONGROOM_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut rig = Rig::new(None);
    let (body, _) = rig.wait_health(200, Duration::from_secs(10));
    assert_eq!(body["hsm"]["state"], "healthy", "{body}");
    let key = subscriber_key(rig.sandbox.tmp.path());
    let load = Load::start(rig.socket(), key, 4);
    let mut outage_503s: Vec<Duration> = Vec::new();
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut detections: Vec<Duration> = Vec::new();
    for cycle in 1..=cycles {
        assert!(
            load.first_success_after(Instant::now(), Duration::from_secs(10))
                .is_some(),
            "issuing before the outage: {}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(300));
        let killed = Instant::now();
        rig.kill_server();
        let (down, seen) = rig.wait_outage(Duration::from_secs(10));
        assert_eq!(down["hsm"]["reachable"], false, "{down}");
        detections.push(seen - killed);
        assert_eq!(rig.metric("strongroom_hsm_up"), 0.0);
        // The outage, under load.
        std::thread::sleep(Duration::from_millis(1500));
        let before_back = Instant::now();
        rig.start_server();
        let back = Instant::now();
        let first = load
            .first_success_after(back, Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "no issuance after the HSM came back: {}\n{}",
                    rig.health().1,
                    rig.log()
                )
            });
        let recovery = first - back;
        recoveries.push(recovery);
        let (up, _) = rig.wait_health(200, Duration::from_secs(10));
        assert_eq!(up["hsm"]["state"], "healthy", "{up}");
        assert_eq!(up["hsm"]["outages"], cycle as u64, "{up}");
        let during: Vec<Sample> = load
            .samples()
            .into_iter()
            .filter(|s| s.start > killed + Duration::from_millis(200) && s.end < before_back)
            .collect();
        assert!(
            during.iter().all(|s| s.status == 503),
            "requests during the outage: {during:?}"
        );
        assert!(!during.is_empty(), "the load ran during the outage");
        outage_503s.extend(during.iter().map(Sample::latency));
        println!(
            "cycle {cycle}: outage seen by /v1/health {:.0} ms after SIGKILL; {} requests got 503 during the outage; first certificate {:.0} ms after the server was back; health reported outage {} ms",
            ms(seen - killed),
            during.len(),
            ms(recovery),
            up["hsm"]["last_outage_ms"]
        );
    }
    let samples = load.finish();
    assert_eq!(rig.metric("strongroom_hsm_up"), 1.0);
    assert_eq!(rig.metric("strongroom_hsm_outages_total"), cycles as f64);
    check_outputs(&rig, &samples);
    let log = rig.stop_service();
    assert_eq!(
        log.matches("HSM outage:").count(),
        cycles,
        "the first error of each outage is logged once, not per request:\n{log}"
    );
    assert!(!log.contains(TEST_PIN));

    let all_503: Vec<Duration> = {
        let mut v: Vec<Duration> = samples
            .iter()
            .filter(|s| s.status == 503)
            .map(Sample::latency)
            .collect();
        v.sort();
        v
    };
    outage_503s.sort();
    recoveries.sort();
    let max_503 = all_503.last().copied().unwrap_or_default();
    println!(
        "HSM outage (SIGKILL of p11-kit server, 4 clients, {cycles} cycles): {} certificates, {} x 503; 503 latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; recovery (server back -> first certificate) p50 {:.0} ms, max {:.0} ms; detection max {:.0} ms",
        samples.iter().filter(|s| s.status == 201).count(),
        all_503.len(),
        ms(percentile(&all_503, 0.5)),
        ms(percentile(&all_503, 0.99)),
        ms(max_503),
        ms(percentile(&recoveries, 0.5)),
        ms(recoveries.last().copied().unwrap_or_default()),
        ms(detections.iter().max().copied().unwrap_or_default()),
    );
    println!(
        "recovery within the 2 s target in {} of {} cycles",
        recoveries
            .iter()
            .filter(|r| **r <= Duration::from_secs(2))
            .count(),
        recoveries.len()
    );
    // No hang: a generous bound (the default call deadline is 2 s), not a speed target.
    assert!(max_503 < Duration::from_secs(8), "a 503 took {max_503:?}");
}

#[test]
fn stopped_hsm_server_hits_the_call_deadline_then_recovers() {
    let mut rig = Rig::new(Some(500));
    rig.wait_health(200, Duration::from_secs(10));
    let key = subscriber_key(rig.sandbox.tmp.path());
    let load = Load::start(rig.socket(), key, 2);
    assert!(
        load.first_success_after(Instant::now(), Duration::from_secs(10))
            .is_some()
    );
    let stopped = Instant::now();
    rig.server().signal(Signal::STOP);
    // Calls hang inside the library; the deadline (500 ms) marks the HSM unavailable.
    let (down, seen) = rig.wait_outage(Duration::from_secs(10));
    let error = down["hsm"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("did not return within 500 ms"), "{down}");
    std::thread::sleep(Duration::from_millis(1500));
    let resumed = Instant::now();
    rig.server().signal(Signal::CONT);
    let first = load
        .first_success_after(resumed, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no issuance after SIGCONT: {}", rig.log()));
    rig.wait_health(200, Duration::from_secs(10));
    let samples = load.finish();
    let stuck: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status == 503 && s.message.contains("did not return within"))
        .collect();
    assert!(!stuck.is_empty(), "a request hit the deadline");
    let mut lat: Vec<Duration> = samples
        .iter()
        .filter(|s| s.start > stopped && s.end < resumed)
        .map(Sample::latency)
        .collect();
    lat.sort();
    let max = lat.last().copied().unwrap_or_default();
    check_outputs(&rig, &samples);
    let log = rig.stop_service();
    assert_eq!(log.matches("HSM outage:").count(), 1, "{log}");
    println!(
        "HSM stopped (SIGSTOP, call deadline 500 ms, 2 clients): unavailable seen {:.0} ms after SIGSTOP; {} requests while stopped, latency p50 {:.1} ms, max {:.1} ms; first certificate {:.0} ms after SIGCONT",
        ms(seen - stopped),
        lat.len(),
        ms(percentile(&lat, 0.5)),
        ms(max),
        ms(first - resumed)
    );
    // The deadline plus generous slack: no request waited for the stopped HSM.
    assert!(max < Duration::from_secs(4), "a request took {max:?}");
}

/// The call deadline of the abandoned-call tests.
const DEADLINE: Duration = Duration::from_millis(2000);
/// How long their clients wait before giving up: much less than the deadline.
const IMPATIENT: Duration = Duration::from_millis(300);
/// `/v1/health` answers within this, whatever the HSM does.
const HEALTH_BOUND: Duration = Duration::from_secs(1);

/// Stops the HSM server (SIGSTOP) while clients that wait only [`IMPATIENT`] keep asking and
/// disconnect: no caller waits for the stuck calls, so only the pool can notice them. Checks that
/// `/v1/health` answers within [`HEALTH_BOUND`] throughout and reports the outage within the
/// deadline plus 1 s, and that new requests then get 503 at once. Returns when the outage was
/// declared, counted from SIGSTOP.
fn stop_with_callers_gone(rig: &Rig) -> Duration {
    let key = subscriber_key(rig.sandbox.tmp.path());
    let load = Load::start_within(rig.socket(), key.clone(), 3, IMPATIENT);
    assert!(
        load.first_success_after(Instant::now(), Duration::from_secs(10))
            .is_some(),
        "issuing before the outage: {}",
        rig.log()
    );
    let stopped = Instant::now();
    rig.server().signal(Signal::STOP);
    let declared = loop {
        let asked = Instant::now();
        let (status, body) = request_within(&rig.socket(), "GET", "/v1/health", None, HEALTH_BOUND)
            .unwrap_or_else(|e| {
                panic!(
                    "/v1/health asked {:.0} ms after SIGSTOP: {e}\n{}",
                    ms(asked - stopped),
                    rig.log()
                )
            });
        if status == 503 && body["hsm"]["state"] == "unavailable" {
            let error = body["hsm"]["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!(
                    "did not return within {} ms",
                    DEADLINE.as_millis()
                )),
                "{body}"
            );
            assert_eq!(body["hsm"]["reachable"], false, "{body}");
            break Instant::now() - stopped;
        }
        assert!(
            asked - stopped < DEADLINE + Duration::from_secs(1),
            "the outage was not reported within the deadline plus 1 s: {body}\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let samples = load.finish();
    let gave_up = samples
        .iter()
        .filter(|s| s.status == 0 && s.start > stopped)
        .count();
    assert!(gave_up > 0, "the clients gave up on the stopped HSM");
    // Requests after the outage was declared: 503 at once, not after a deadline.
    let body =
        json!({"profile": "tls-server", "public_key": key, "dns_names": ["late.example.com"]});
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, reply) = request_within(
            &rig.socket(),
            "POST",
            "/v1/certificates",
            Some(&body),
            HEALTH_BOUND,
        )
        .unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, 503, "{reply}");
        assert_eq!(reply["error"]["code"], "hsm.unavailable", "{reply}");
    }
    println!(
        "HSM stopped (SIGSTOP, call deadline {} ms, 3 clients giving up after {} ms, {gave_up} gave up): outage reported by /v1/health {:.0} ms after SIGSTOP; then 5 requests got 503 in at most {:.1} ms",
        DEADLINE.as_millis(),
        IMPATIENT.as_millis(),
        ms(declared),
        ms(slowest)
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a 503 took {slowest:?}"
    );
    declared
}

/// Waits (bounded) until the service reports healthy and issues again; returns how long after
/// `since` health said 200 and the first certificate came back.
fn wait_recovered(rig: &Rig, since: Instant) -> (Duration, Duration) {
    let (up, healthy) = rig.wait_health(200, Duration::from_secs(20));
    assert_eq!(up["hsm"]["state"], "healthy", "{up}");
    assert_eq!(up["hsm"]["outages"], 1, "{up}");
    let key = subscriber_key(rig.sandbox.tmp.path());
    let body =
        json!({"profile": "tls-server", "public_key": key, "dns_names": ["back.example.com"]});
    let (status, reply) = rig.request("POST", "/v1/certificates", Some(&body));
    assert_eq!(status, 201, "{reply}\n{}", rig.log());
    (healthy - since, Instant::now() - since)
}

#[test]
fn abandoned_calls_on_a_stopped_hsm_mark_it_down_and_sigcont_recovers() {
    let mut rig = Rig::new(Some(DEADLINE.as_millis() as u64));
    rig.wait_health(200, Duration::from_secs(10));
    let declared = stop_with_callers_gone(&rig);
    let resumed = Instant::now();
    rig.server().signal(Signal::CONT);
    let (healthy, issued) = wait_recovered(&rig, resumed);
    println!(
        "abandoned calls, SIGCONT: outage declared {:.0} ms after SIGSTOP (deadline {} ms); recovered {:.0} ms after SIGCONT (health 200), first certificate after {:.0} ms",
        ms(declared),
        DEADLINE.as_millis(),
        ms(healthy),
        ms(issued)
    );
    let log = rig.stop_service();
    assert_eq!(log.matches("HSM outage:").count(), 1, "{log}");
}

#[test]
fn abandoned_calls_on_a_stopped_hsm_mark_it_down_and_a_server_restart_recovers() {
    let mut rig = Rig::new(Some(DEADLINE.as_millis() as u64));
    rig.wait_health(200, Duration::from_secs(10));
    let declared = stop_with_callers_gone(&rig);
    // The stopped server is killed (SIGKILL reaches stopped processes) and a new one started.
    let restarted = Instant::now();
    rig.kill_server();
    rig.start_server();
    let (healthy, issued) = wait_recovered(&rig, restarted);
    println!(
        "abandoned calls, server restart: outage declared {:.0} ms after SIGSTOP (deadline {} ms); recovered {:.0} ms after the restart began (health 200), first certificate after {:.0} ms",
        ms(declared),
        DEADLINE.as_millis(),
        ms(healthy),
        ms(issued)
    );
    let log = rig.stop_service();
    assert_eq!(log.matches("HSM outage:").count(), 1, "{log}");
}

#[test]
fn a_pin_refused_after_reconnecting_stops_recovery_without_retrying() {
    let mut rig = Rig::new(None);
    rig.wait_health(200, Duration::from_secs(10));
    let key = subscriber_key(rig.sandbox.tmp.path());
    let body =
        json!({"profile": "tls-server", "public_key": key, "dns_names": ["pin.example.com"]});
    let (status, reply) = rig.request("POST", "/v1/certificates", Some(&body));
    assert_eq!(status, 201, "{reply}");

    // The HSM goes away; meanwhile its user PIN is changed (directly on SoftHSM).
    rig.kill_server();
    let _ = rig.wait_outage(Duration::from_secs(10));
    let new_pin = "pin-changed-3e1f0a";
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module())
        .args(["--token-label", TOKEN, "--login", "--pin", "env:OLD_PIN"])
        .args(["--change-pin", "--new-pin", "env:NEW_PIN"])
        .env("SOFTHSM2_CONF", &rig.sandbox.conf)
        .env("OLD_PIN", TEST_PIN)
        .env("NEW_PIN", new_pin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkcs11-tool --change-pin: {}",
        text(&out)
    );
    rig.start_server();

    // Recovery logs in once with the old PIN, is refused, and stops.
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let (status, body) = rig.health();
        assert_eq!(status, 503, "{body}");
        if body["hsm"]["state"] == "failed" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "recovery did not stop: {body}\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(failed["hsm"]["pin_refusals"], 1, "{failed}");
    // Longer than several backoff periods (at most 1 s each): no second login attempt.
    std::thread::sleep(Duration::from_millis(3000));
    let (status, later) = rig.health();
    assert_eq!(status, 503);
    assert_eq!(later["hsm"]["state"], "failed", "{later}");
    assert_eq!(later["hsm"]["pin_refusals"], 1, "{later}");
    let (status, reply) = rig.request("POST", "/v1/certificates", Some(&body));
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "hsm.unavailable", "{reply}");

    let log = rig.stop_service();
    assert_eq!(log.matches("RECOVERY STOPPED").count(), 1, "{log}");
    assert!(!log.contains(TEST_PIN) && !log.contains(new_pin), "{log}");
    // The token is not locked: the new PIN still logs in.
    drop(rig.server.take());
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module())
        .args([
            "--token-label",
            TOKEN,
            "--login",
            "--pin",
            "env:NEW_PIN",
            "--list-objects",
        ])
        .env("SOFTHSM2_CONF", &rig.sandbox.conf)
        .env("NEW_PIN", new_pin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("faults-int"));
}
