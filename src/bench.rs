//! `strongroom-bench`: the HSM's raw signing rate against full issuance over the socket,
//! measured in one run on the same throwaway token, and reported as a ratio (these machines are
//! noisy; the ratio is what is comparable between runs).
//!
//! Only the `strongroom-bench` binary calls this module; the appliance (`strongroom`) has no
//! bench command. The raw phases never touch an issuer key: they sign with a key pair of the
//! issuer's type that [`crate::hsm::raw::measure`] generates on the bench's throwaway token and
//! destroys.
//!
//! ```text
//!   setup: throwaway token, root + issuing CA of the chosen key type, service config
//!   raw:   child `strongroom-bench raw`: a token key pair of the issuer's type; one thread
//!          per session calling C_Sign for S seconds; the key pair destroyed
//!   issue: child `strongroom serve`; N concurrent clients POST /v1/certificates for S seconds
//!   raw:   again after each of R rounds of issue; a round's ratio is against the mean of
//!          the raw rates either side of it, and the report gives the median round
//!   report: both rates, ratio, p50/p99 latency, the service's peak RSS (VmHWM)
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::alg::KeyType;
use crate::demo::Throwaway;

mod crl;
mod http;

pub use self::crl::{CrlOptions, run_crl};

pub mod soak;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// A new directory for the token, certificates, config and audit store.
    pub out: PathBuf,
    /// The issuing CA's key type.
    pub issuer: KeyType,
    /// Concurrent clients.
    pub clients: usize,
    /// HSM sessions in the service's pool (and in the raw measurement, one thread each).
    pub sessions: usize,
    /// Seconds per measurement.
    pub seconds: u64,
    /// Service phases, each between two raw phases (the report gives the median round).
    pub rounds: usize,
    /// Settings of the service under test that differ from the configuration's defaults.
    pub tuning: Tuning,
    /// What the clients ask for.
    pub workload: Workload,
    /// The clients' thread's nice value (None: the service's request threads' value).
    pub clients_nice: Option<i32>,
}

impl Options {
    /// The service's request threads' nice value.
    fn request_threads_nice(&self) -> i32 {
        self.tuning
            .request_threads_nice
            .unwrap_or(crate::config::DEFAULT_REQUEST_THREADS_NICE)
    }

    /// The clients' nice value: by default the request threads', so that the load (which stands
    /// for the CA core, a program of its own) does not preempt the service it measures. At nice 0
    /// against request threads at 10, each client wake-up takes a core from a request thread at
    /// once.
    fn clients_nice(&self) -> i32 {
        self.clients_nice
            .unwrap_or_else(|| self.request_threads_nice())
    }
}

/// Service settings a bench can set (None: the configuration's default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// `service.request-threads-nice`.
    pub request_threads_nice: Option<i32>,
    /// `service.audit-commit-delay-us`.
    pub audit_commit_delay_us: Option<u64>,
}

/// What the clients ask the service for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Certificates, one per request.
    Issue,
    /// OCSP responses, this many per `/v1/ocsp/batch` request (pre-signing), for 64
    /// certificates issued first.
    OcspBatch(usize),
}

/// Sets up, measures and prints the report.
pub fn run(o: &Options) -> Result<(), String> {
    let t = Throwaway::create(&o.out, None, &["bench"])?;
    ceremony(&t, o.issuer)?;
    let config = write_config(&t, o.sessions, o.tuning)?;
    let config = config.as_path();

    // Raw and service phases alternate, starting and ending with raw: each round's ratio is
    // taken against the mean of the raw rates just before and just after it, so that a change
    // in the machine's speed (these machines are shared) moves both sides alike, and the
    // report gives the median round.
    let public_key = subscriber_key(&t)?;
    let mut raws = vec![measure_raw(&t, o)?];
    let mut rounds = Vec::new();
    for round in 1..=o.rounds {
        println!(
            "== {:?} over the socket: {} clients, {} s (round {round} of {})",
            o.workload, o.clients, o.seconds, o.rounds
        );
        rounds.push(measure_service(&t, config, &public_key, o)?);
        raws.push(measure_raw(&t, o)?);
    }
    let ratios: Vec<f64> = rounds
        .iter()
        .zip(raws.windows(2))
        .map(|(r, raw)| r.rate() / f64::midpoint(raw[0].rate, raw[1].rate))
        .collect();
    let median = {
        let mut order: Vec<usize> = (0..ratios.len()).collect();
        order.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
        order[order.len() / 2]
    };
    let (r, raw) = (&rounds[median], &raws[median..=median + 1]);
    let raw_rate = f64::midpoint(raw[0].rate, raw[1].rate);
    let mut latencies = r.load.latencies.clone();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    // One audit record per request (certificate, OCSP batch or refusal), plus the 64
    // certificates an OCSP run issues first.
    let setup = if let Workload::OcspBatch(_) = o.workload {
        64
    } else {
        0
    };
    let records = latencies.len() as u64 + r.load.failed + setup;
    let errors: u64 = rounds.iter().map(|r| r.load.failed).sum();
    // Each round's own figures, so that a trend across rounds (the audit store grows by every
    // round's records) shows in the report.
    let per_round: Vec<_> = rounds
        .iter()
        .zip(raws.windows(2))
        .zip(&ratios)
        .map(|((r, raw), ratio)| {
            let mut figures = json!({
                "ratio": round3(*ratio),
                "signed_per_second": round(r.rate()),
                "raw_sign_per_second_before": round(raw[0].rate),
                "raw_sign_per_second_after": round(raw[1].rate),
            });
            r.add_cpu_figures(&mut figures);
            figures
        })
        .collect();
    let mut report = json!({
        "issuer_key": o.issuer.to_string(),
        "sessions": o.sessions,
        "clients": o.clients,
        "seconds": o.seconds,
        "rounds": o.rounds,
        "request_threads_nice": o.request_threads_nice(),
        "clients_nice": o.clients_nice(),
        "audit_commit_delay_us": o
            .tuning
            .audit_commit_delay_us
            .unwrap_or(crate::config::DEFAULT_COMMIT_DELAY_US),
        "ratios": ratios.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        "median_round": median + 1,
        "raw_sign_per_second": round(raw_rate),
        "raw_sign_per_second_before": round(raw[0].rate),
        "raw_sign_per_second_after": round(raw[1].rate),
        "workload": format!("{:?}", o.workload),
        "signed_per_second": round(r.rate()),
        "ratio": round3(ratios[median]),
        "signed": r.load.ok,
        "errors": errors,
        "latency_ms_p50": round3(pct(0.50).as_secs_f64() * 1000.0),
        "latency_ms_p99": round3(pct(0.99).as_secs_f64() * 1000.0),
        "audit_commits": r.load.commits,
        "audit_records_per_commit": r.load.commits.map(|c| round(records as f64 / c.max(1) as f64)),
        "service_peak_rss_mib": r.peak_rss_kib.map(|k| round(k as f64 / 1024.0)),
        "raw_cpu_us_per_signature": round(f64::midpoint(raw[0].cpu_us, raw[1].cpu_us)),
        "machine_busy_fraction": round3((r.service_cpu + r.client_cpu) / r.load.elapsed / cores()),
    });
    r.add_cpu_figures(&mut report);
    report["per_round"] = json!(per_round);
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}

/// One service phase: the load and what the service used for it.
struct Round {
    load: Load,
    service_cpu: f64,
    /// The service's CPU seconds by thread group.
    by_thread: [(ThreadGroup, f64); 4],
    client_cpu: f64,
    peak_rss_kib: Option<u64>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.load.ok as f64 / self.load.elapsed
    }

    /// Adds the service's and the clients' CPU µs per signed certificate to a report object.
    fn add_cpu_figures(&self, report: &mut serde_json::Value) {
        let per = |cpu: f64| json!(round(cpu * 1e6 / self.load.ok.max(1) as f64));
        report["service_cpu_us_per_signed"] = per(self.service_cpu);
        report["service_cpu_us_per_signed_by_thread"] = self
            .by_thread
            .iter()
            .map(|(group, cpu)| (group.key().to_owned(), per(*cpu)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        report["client_cpu_us_per_signed"] = per(self.client_cpu);
    }
}

/// Starts the service, runs the clients for `o.seconds`, stops it.
fn measure_service(
    t: &Throwaway,
    config: &Path,
    public_key: &str,
    o: &Options,
) -> Result<Round, String> {
    let (mut service, socket) = start_service(t, config)?;
    let cpu_before = cpu_seconds(service.id()).unwrap_or_default();
    let threads_before = ThreadCpu::read(service.id());
    let client_cpu_before = cpu_seconds(std::process::id()).unwrap_or_default();
    let result = load(&socket, public_key.to_string(), o);
    let service_cpu = cpu_seconds(service.id()).unwrap_or_default() - cpu_before;
    let by_thread = ThreadCpu::read(service.id()).by_group(&threads_before, service_cpu);
    let client_cpu = cpu_seconds(std::process::id()).unwrap_or_default() - client_cpu_before;
    let peak_rss_kib = peak_rss_kib(service.id());
    let stopped = stop_child(&mut service, "the service");
    let load = result?;
    let _ = stopped?;
    Ok(Round {
        load,
        service_cpu,
        by_thread,
        client_cpu,
        peak_rss_kib,
    })
}

/// One raw measurement: signatures per second and CPU µs per signature.
struct Raw {
    rate: f64,
    cpu_us: f64,
}

/// Runs `strongroom-bench raw` on the bench's token for `o.seconds`, with a token key pair of
/// the issuer's type that it generates and destroys (never the issuer key), in a child process whose `SOFTHSM2_CONF` points
/// at the throwaway store (SoftHSM reads it once, at `C_Initialize`).
fn measure_raw(t: &Throwaway, o: &Options) -> Result<Raw, String> {
    println!(
        "\n== raw C_Sign rate: {} key of its own, {} sessions, one thread each, {} s",
        o.issuer, o.sessions, o.seconds
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(exe);
    let _ = command
        .args(["raw", "--module"])
        .arg(&t.module)
        .args(["--token", "bench", "--pin-file"])
        .arg(&t.user_pin)
        .args([
            "--key-type",
            &o.issuer.to_string(),
            "--sessions",
            &o.sessions.to_string(),
            "--seconds",
            &o.seconds.to_string(),
            // A token key, as the issuer's is, on the bench's own throwaway token: a SoftHSM token
            // key costs more per signature than a session key (the token checks its object file
            // on every use), so a session key would flatter the raw rate.
            "--token-object",
        ])
        .env("SOFTHSM2_CONF", &t.conf)
        .current_dir(&t.dir);
    // Key generation (RSA-4096 takes seconds on SoftHSM) and start-up on top of the run.
    let raw = run_bounded(command, Duration::from_secs(o.seconds + 120), "bench raw")?;
    if !raw.status.success() {
        return Err(format!(
            "bench raw failed: {}",
            String::from_utf8_lossy(&raw.stderr)
        ));
    }
    let raw: serde_json::Value =
        serde_json::from_slice(&raw.stdout).map_err(|e| format!("bench raw output: {e}"))?;
    Ok(Raw {
        rate: raw["rate"].as_f64().unwrap_or(0.0),
        cpu_us: raw["cpu_us_per_signature"].as_f64().unwrap_or(0.0),
    })
}

/// How long a child asked to stop (SIGTERM) may take before it is killed (SIGKILL); the
/// service finishes its requests in flight and closes the audit store in that time.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Stops a child: SIGTERM, then at most [`STOP_GRACE`] for it to exit; if it has not, SIGKILL
/// and at most 5 s more. A child that did not stop on SIGTERM is an error even when the kill
/// worked: the figures were taken from a process that did not shut down as it should.
fn stop_child(
    child: &mut std::process::Child,
    what: &str,
) -> Result<std::process::ExitStatus, String> {
    if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
        return Err(format!("{what} had already exited ({status})"));
    }
    crate::child::terminate(child, STOP_GRACE).map_err(|e| format!("{what}: {e}"))
}

/// Runs a command to completion, for at most `timeout`; kills it (and says so) if it takes
/// longer. Its output is small (a JSON line) and read once it has exited.
fn run_bounded(
    mut command: std::process::Command,
    timeout: Duration,
    what: &str,
) -> Result<std::process::Output, String> {
    use std::io::Read as _;
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let Some(status) = crate::child::wait_for(&mut child, timeout)? else {
        return Err(format!(
            "{what} did not finish within {} s; {}",
            timeout.as_secs(),
            crate::child::kill(&mut child)?
        ));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout).map_err(|e| e.to_string())?;
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_end(&mut stderr).map_err(|e| e.to_string())?;
    }
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where a service thread's CPU time is counted in the report, by the thread's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ThreadGroup {
    /// `hsm-S-N`: the workers that own the HSM sessions (the token's signing runs here).
    HsmSessions,
    /// `audit-writer` and `audit-checkpt`: SQLite inserts, commits, fsyncs and checkpoints.
    AuditWriter,
    /// `tokio-*`: HTTP, policy, TBS building and linting, software verification, responses.
    RequestThreads,
    /// Everything else, and threads that ended during the phase.
    Other,
}

impl ThreadGroup {
    const ALL: [ThreadGroup; 4] = [
        ThreadGroup::HsmSessions,
        ThreadGroup::AuditWriter,
        ThreadGroup::RequestThreads,
        ThreadGroup::Other,
    ];

    fn of(name: &str) -> ThreadGroup {
        if name == "audit-writer" || name == "audit-checkpt" {
            ThreadGroup::AuditWriter
        } else if name.starts_with("tokio-") {
            ThreadGroup::RequestThreads
        } else if name.starts_with("hsm-") && name != "hsm-supervisor" {
            ThreadGroup::HsmSessions
        } else {
            ThreadGroup::Other
        }
    }

    fn key(self) -> &'static str {
        match self {
            ThreadGroup::HsmSessions => "hsm_sessions",
            ThreadGroup::AuditWriter => "audit_writer",
            ThreadGroup::RequestThreads => "request_threads",
            ThreadGroup::Other => "other",
        }
    }
}

/// CPU seconds of a process's threads, by thread id (name and seconds).
#[derive(Debug)]
struct ThreadCpu(std::collections::BTreeMap<u32, (String, f64)>);

impl ThreadCpu {
    /// The process's threads as they are now (proc(5): `/proc/PID/task/TID/{comm,stat}`). A
    /// thread that ends while being read is left out.
    fn read(pid: u32) -> ThreadCpu {
        let mut threads = std::collections::BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return ThreadCpu(threads);
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let dir = task.path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if let Some(cpu) = stat_cpu_seconds(&dir.join("stat")) {
                let _ = threads.insert(tid, (name.trim_end().to_owned(), cpu));
            }
        }
        ThreadCpu(threads)
    }

    /// Each group's CPU seconds from `before` to `self`. A thread that ended in between is not
    /// in `self`, so its time is counted under `Other` as the rest of `total` (the process's CPU
    /// seconds over the same span, from `/proc/PID/stat`), and the groups add up to `total`.
    fn by_group(&self, before: &ThreadCpu, total: f64) -> [(ThreadGroup, f64); 4] {
        let mut counted = 0.0;
        ThreadGroup::ALL.map(|group| {
            let cpu: f64 = self
                .0
                .iter()
                .filter(|(_, (name, _))| ThreadGroup::of(name) == group)
                .map(|(tid, (_, now))| now - before.0.get(tid).map_or(0.0, |(_, then)| *then))
                .sum();
            counted += cpu;
            if group == ThreadGroup::Other {
                (group, cpu + (total - counted).max(0.0))
            } else {
                (group, cpu)
            }
        })
    }
}

/// User plus system CPU time a process has used so far, in seconds (proc(5): `/proc/PID/stat`
/// fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu_seconds(Path::new(&format!("/proc/{pid}/stat")))
}

/// User plus system CPU seconds from a process's or a thread's `stat` file.
fn stat_cpu_seconds(path: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A `/proc/PID/status` field given in kB (`VmRSS:`, `VmHWM:`), KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The process's current resident set (VmRSS), KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Starts `strongroom serve` on the throwaway store and waits (up to 30 s) for its socket.
fn start_service(t: &Throwaway, config: &Path) -> Result<(std::process::Child, PathBuf), String> {
    let mut service = t
        .command(&["serve", "--config", &config.display().to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let socket = t.dir.join("service/strongroom.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if let Some(status) = service.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the service exited before serving ({status})"));
        }
        if Instant::now() > deadline {
            return Err(match stop_child(&mut service, "the service") {
                Ok(_) => "the service did not start within 30 s; stopped it".to_string(),
                Err(e) => format!("the service did not start within 30 s; {e}"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((service, socket))
}

/// The benchmark subscriber's public key (made by the bench ceremony), as base64 SPKI DER.
fn subscriber_key(t: &Throwaway) -> Result<String, String> {
    let pem =
        std::fs::read_to_string(t.dir.join("subscriber.pub.pem")).map_err(|e| e.to_string())?;
    let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).map_err(|e| e.to_string())?;
    Ok(<base64ct::Base64 as base64ct::Encoding>::encode_string(
        &der,
    ))
}

/// The number of CPUs this process may run on.
fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// The service's peak resident set (VmHWM), KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// N clients, each on its own connection, issuing until the time is up. Returns (issued,
/// failed, elapsed seconds, latencies of the successful requests).
fn load(socket: &Path, public_key: String, o: &Options) -> Result<Load, String> {
    // On Linux a nice value belongs to a thread (setpriority(2)): the clients get a thread of
    // their own, so that the raw phases' threads, started later from this one, keep its value.
    let nice = o.clients_nice();
    std::thread::scope(|s| {
        s.spawn(|| {
            if nice != 0 {
                rustix::process::setpriority_process(None, nice)
                    .map_err(|e| format!("cannot set the clients' nice value to {nice}: {e}"))?;
            }
            drive(socket, public_key, o)
        })
        .join()
        .map_err(|_| "the clients' thread panicked".to_string())?
    })
}

/// [`load`] on the calling thread.
fn drive(socket: &Path, public_key: String, o: &Options) -> Result<Load, String> {
    // One thread drives every client: what they cost the machine matters here, not their
    // parallelism (the service they measure is the bottleneck).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut serials = Vec::new();
        if let Workload::OcspBatch(_) = o.workload {
            let mut client = crate::client::Client::connect(socket).await?;
            for i in 0..64 {
                let body = json!({"profile": "tls-server", "public_key": public_key, "dns_names": [format!("ocsp{i}.bench.example.com")]});
                let reply = client.request("POST", "/v1/certificates", Some(&body)).await?;
                serials.push(reply.json()?["serial"].as_str().unwrap_or_default().to_string());
            }
        }
        let serials = Arc::new(serials);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(o.seconds);
        let tasks: Vec<_> = (0..o.clients)
            .map(|c| {
                let (socket, key, serials, workload) = (socket.to_path_buf(), public_key.clone(), serials.clone(), o.workload);
                tokio::spawn(async move {
                    let mut connection = http::Connection::connect(&socket).await?;
                    let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
                    let mut i = 0u64;
                    // An issue request is the same but for its name, so its JSON is spliced (base64
                    // and these names need no escaping).
                    let issue_head = format!(r#"{{"profile":"tls-server","public_key":"{key}","dns_names":["c{c}-"#);
                    let mut body = Vec::with_capacity(1024);
                    while Instant::now() < deadline {
                        body.clear();
                        let (path, n) = match workload {
                            Workload::Issue => {
                                body.extend_from_slice(issue_head.as_bytes());
                                write!(body, r#"{i}.bench.example.com"]}}"#).map_err(|e| e.to_string())?;
                                ("/v1/certificates", 1)
                            }
                            Workload::OcspBatch(n) => {
                                let now = SystemTime::now();
                                let statuses: Vec<_> = (0..n)
                                    .map(|k| json!({"serial": serials[k % serials.len()], "status": "good"}))
                                    .collect();
                                let request = json!({
                                    "issuer": "bench",
                                    "this_update": crate::time::rfc3339(now),
                                    "next_update": crate::time::rfc3339(now + Duration::from_secs(3 * 86_400)),
                                    "statuses": statuses,
                                });
                                serde_json::to_writer(&mut body, &request).map_err(|e| e.to_string())?;
                                ("/v1/ocsp/batch", n as u64)
                            }
                        };
                        let t0 = Instant::now();
                        let status = connection.post(path, &body).await?;
                        if status == 201 {
                            ok += n;
                            latencies.push(t0.elapsed());
                        } else {
                            failed += 1;
                        }
                        i += 1;
                    }
                    Ok::<_, String>((ok, failed, latencies))
                })
            })
            .collect();
        let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
        for t in tasks {
            let (o, f, l) = t.await.map_err(|e| e.to_string())??;
            ok += o;
            failed += f;
            latencies.extend(l);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut client = crate::client::Client::connect(socket).await?;
        let metrics = client.request("GET", "/metrics", None).await?;
        let commits = String::from_utf8_lossy(&metrics.body)
            .lines()
            .find_map(|l| l.strip_prefix("strongroom_audit_commits_total ")?.parse().ok());
        Ok(Load { ok, failed, elapsed, latencies, commits })
    })
}

/// What [`load`] measured.
struct Load {
    ok: u64,
    failed: u64,
    elapsed: f64,
    latencies: Vec<Duration>,
    /// The service's audit commits since it started (from /metrics).
    commits: Option<u64>,
}

/// What `strongroom-bench raw` measures.
#[derive(Clone, Debug)]
pub struct RawOptions {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The token.
    pub token: crate::hsm::TokenSelector,
    /// The user PIN.
    pub pin: crate::secret::PinSource,
    /// The throwaway key pair's type.
    pub key_type: KeyType,
    /// Sessions, each signing from its own thread.
    pub sessions: usize,
    /// Seconds of signing.
    pub seconds: u64,
    /// Where the throwaway key pair lives.
    pub storage: crate::hsm::raw::Storage,
}

/// The raw signing rate, in this process: [`crate::hsm::raw::measure`] generates a session key
/// pair of its own on the token, signs 1 KiB messages (the size of a typical TBS certificate)
/// from one thread per session for `seconds`, and destroys the key pair. Prints one JSON line:
/// counts, rate and this process's CPU per signature. No issuer key is involved and no
/// signature leaves the HSM module.
pub fn raw(o: &RawOptions) -> Result<(), String> {
    let pin = o.pin.read("user PIN").map_err(|e| e.to_string())?;
    let cpu_before = cpu_seconds(std::process::id()).unwrap_or_default();
    let figures = crate::hsm::raw::measure(
        &o.module,
        &o.token,
        &pin,
        o.key_type,
        o.storage,
        o.sessions,
        Duration::from_secs(o.seconds),
    )
    .map_err(|e| e.to_string())?;
    let cpu = cpu_seconds(std::process::id()).unwrap_or_default() - cpu_before;
    let n = figures.signatures;
    println!(
        "{}",
        json!({
            "key_type": o.key_type.to_string(),
            "sessions": o.sessions,
            "signatures": n,
            "seconds": figures.seconds,
            "rate": figures.rate(),
            "keygen_seconds": round3(figures.keygen_seconds),
            "cpu_us_per_signature": round(cpu * 1e6 / n.max(1) as f64),
        })
    );
    Ok(())
}

/// Makes the bench's hierarchy on its token: the demo's ECDSA root and issuing CA (E1 and E10,
/// the shipped `ceremony/demo/` scripts) with the issuing key of the type under test, labelled
/// `bench-issuer` and written to `issuer.pem` for the service configuration, and a P-256
/// subscriber key pair (`subscriber.pub.pem`).
fn ceremony(t: &Throwaway, issuer: KeyType) -> Result<(), String> {
    use toml::{Table, Value};
    let parse = |text: &str| text.parse::<Table>().map_err(|e| e.to_string());
    let mut roots = parse(include_str!("../ceremony/demo/1-roots.toml"))?;
    let mut intermediates = parse(include_str!("../ceremony/demo/2-intermediates.toml"))?;
    for script in [&mut roots, &mut intermediates] {
        script["hsm"]["token"] = Value::from("bench");
    }
    let steps = |script: &mut Table, ids: &[&str]| -> Result<Vec<Value>, String> {
        let all = script["step"].as_array().cloned().unwrap_or_default();
        let kept: Vec<Value> = all
            .into_iter()
            .filter(|s| ids.contains(&s["id"].as_str().unwrap_or_default()))
            .collect();
        if kept.len() != ids.len() {
            return Err(format!("the demo scripts lack one of the steps {ids:?}"));
        }
        Ok(kept)
    };
    let root_steps = steps(&mut roots, &["root-e1-key", "root-e1"])?;
    roots["step"] = Value::Array(root_steps);
    let mut int_steps = steps(&mut intermediates, &["e10-key", "e10"])?;
    let mut subscriber = int_steps[0].clone();
    int_steps[0]["key-type"] = Value::from(issuer.to_string());
    int_steps[0]["label"] = Value::from("bench-issuer");
    int_steps[1]["issuer-key"]["uri"] = Value::from("pkcs11:token=bench;object=demo-root-e1");
    int_steps[1]["certificate-out"] = Value::from("issuer.pem");
    subscriber["id"] = Value::from("subscriber");
    subscriber["label"] = Value::from("bench-subscriber");
    subscriber["key-type"] = Value::from("ec-p256");
    subscriber["public-key-out"] = Value::from("subscriber.pub.pem");
    int_steps.push(subscriber);
    intermediates["step"] = Value::Array(int_steps);
    let text = |script: &Table| toml::to_string(script).map_err(|e| e.to_string());
    t.ceremony("bench-roots.toml", &text(&roots)?)?;
    t.ceremony("bench-issuer.toml", &text(&intermediates)?)
}

/// The service configuration for a bench, with `tuning`'s settings where they are given.
fn write_config(t: &Throwaway, sessions: usize, tuning: Tuning) -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| e.to_string())?
        .uid();
    let dir = t.dir.join("service");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let text = format!(
        r#"[service]
socket = "strongroom.sock"
allow-root = {root}
store = "audit.db"
instance-prefix = 1
{nice}
{delay}

[hsm]
module = "{module}"
token = "bench"
pin = {{ file = "../hsm/user-pin" }}
sessions = {sessions}

[[caller]]
name = "bench"
uid = {uid}

[[issuer]]
name = "bench"
certificate = "../issuer.pem"
key = "pkcs11:token=bench;object=bench-issuer"
ca-issuers-url = "http://i.example.com/"
crl-url-prefix = "http://c.example.com/"
crl-shards = 128

[[profile]]
name = "tls-server"
validity-hours = 2160
"#,
        root = uid == 0,
        nice = tuning
            .request_threads_nice
            .map(|n| format!("request-threads-nice = {n}"))
            .unwrap_or_default(),
        delay = tuning
            .audit_commit_delay_us
            .map(|us| format!("audit-commit-delay-us = {us}"))
            .unwrap_or_default(),
        module = t.module.display(),
        sessions = sessions,
    );
    let path = dir.join("strongroom.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}
