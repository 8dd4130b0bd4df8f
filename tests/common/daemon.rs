//! A `strongroom serve` process on its own copy of the demo (token store, certificates,
//! configuration), driven from plain test threads: every wait on the child is bounded (poll
//! `try_wait` against a deadline) and the child is killed on drop, so a test that goes wrong
//! fails instead of hanging. Nothing here blocks inside an async runtime; tests call the async
//! client through [`Rt::post`] / [`Rt::get`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use strongroom::client::Client;

use super::{strongroom_bin, text};

/// The demo, run once for this test binary; every daemon copies it.
pub fn demo() -> &'static PathBuf {
    static DEMO: OnceLock<PathBuf> = OnceLock::new();
    DEMO.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}-demo", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&out);
        let run = Command::new(strongroom_bin())
            .args(["demo", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success(), "demo failed:\n{}", text(&run));
        out
    })
}

/// A P-256 subscriber key made with openssl: base64 SPKI DER.
pub fn subscriber_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let out = Command::new("openssl")
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-out"])
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
        use base64ct::Encoding;
        base64ct::Base64::encode_string(&out.stdout)
    })
}

/// A fresh copy of the demo with an empty audit store; `edit` may change the service config.
pub fn copy_demo(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", demo().display()))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let hsm = dir.path().join("hsm");
    std::fs::write(
        hsm.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            hsm.join("tokens").display()
        ),
    )
    .unwrap();
    let config = dir.path().join("service/strongroom.toml");
    for f in [
        "audit.db",
        "audit.db-wal",
        "audit.db-shm",
        "strongroom.sock",
    ] {
        let _ = std::fs::remove_file(dir.path().join("service").join(f));
    }
    std::fs::write(&config, edit(std::fs::read_to_string(&config).unwrap())).unwrap();
    dir
}

/// A running (or exited) `strongroom serve`.
pub struct Daemon {
    /// The demo copy it serves from.
    pub dir: PathBuf,
    child: Child,
    log: PathBuf,
}

/// How long a daemon may take to start answering on its socket.
pub const START: Duration = Duration::from_secs(30);

impl Daemon {
    /// Starts `strongroom serve --config DIR/service/strongroom.toml EXTRA...`, stderr appended to
    /// `DIR/serve.log`. Does not wait.
    pub fn spawn(dir: &Path, extra: &[&str]) -> Daemon {
        let log = dir.join("serve.log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(strongroom_bin())
            .args(["serve", "--config"])
            .arg(dir.join("service/strongroom.toml"))
            .args(extra)
            .env("SOFTHSM2_CONF", dir.join("hsm/softhsm2.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Daemon {
            dir: dir.to_owned(),
            child,
            log,
        }
    }

    /// Starts a daemon and waits until it answers on its socket.
    pub fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let mut d = Daemon::spawn(dir, extra);
        if let Err(e) = d.wait_ready(START) {
            panic!("{e}");
        }
        d
    }

    /// The socket path of the demo configuration.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("service/strongroom.sock")
    }

    /// The audit store of the demo configuration.
    pub fn store(&self) -> PathBuf {
        self.dir.join("service/audit.db")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon wrote to stderr (all runs in this directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a connection to the socket succeeds; fails if the process exits first or the
    /// deadline passes. A stale socket file left by a killed process does not count: connecting to
    /// it is refused.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "the service exited before serving ({status}):\n{}",
                    self.log()
                ));
            }
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the service did not start within {timeout:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL, then waits (bounded) for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "the service survived SIGKILL"
        );
    }

    /// SIGTERM, then waits at most `timeout` for a clean exit.
    pub fn term(&mut self, timeout: Duration) -> Option<ExitStatus> {
        strongroom::child::signal(&self.child, rustix::process::Signal::TERM).unwrap();
        self.wait_exit(timeout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.wait_exit(Duration::from_secs(10));
    }
}

/// Runs `strongroom ARGS` to completion with a deadline (killed when it passes) and returns
/// (exit status, or `None` on timeout; stdout + stderr).
pub fn run_bounded(dir: &Path, args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    let out = dir.join(format!("run-{}.log", std::process::id()));
    let file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new(strongroom_bin())
        .args(args)
        .env("SOFTHSM2_CONF", dir.join("hsm/softhsm2.conf"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            assert!(
                strongroom::child::wait_for(&mut child, Duration::from_secs(10))
                    .unwrap()
                    .is_some(),
                "strongroom {args:?} survived SIGKILL"
            );
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

/// `strongroom audit verify --store STORE`: (passed, report).
pub fn audit_verify(dir: &Path, store: &Path) -> (bool, String) {
    let store = store.display().to_string();
    let (status, report) = run_bounded(
        dir,
        &["audit", "verify", "--store", &store],
        Duration::from_secs(60),
    );
    (status.is_some_and(|s| s.success()), report)
}

/// A small multi-threaded runtime for the async socket client, driven from a plain test thread.
pub struct Rt(pub tokio::runtime::Runtime);

impl Rt {
    /// Two worker threads.
    pub fn new() -> Rt {
        Rt(tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap())
    }

    /// One request on a new connection, with a deadline.
    pub fn request(
        &self,
        socket: &Path,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        self.0.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                let mut client = Client::connect(socket).await?;
                let reply = client.request(method, path, body).await?;
                let json = reply.json().unwrap_or(Value::Null);
                Ok((reply.status, json))
            })
            .await
            .map_err(|_| format!("{method} {path}: no answer within 30 s"))?
        })
    }

    /// POST a JSON body.
    pub fn post(&self, socket: &Path, path: &str, body: &Value) -> Result<(u16, Value), String> {
        self.request(socket, "POST", path, Some(body))
    }

    /// GET; the body as text.
    pub fn get_text(&self, socket: &Path, path: &str) -> Result<(u16, String), String> {
        self.0.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                let mut client = Client::connect(socket).await?;
                let reply = client.request("GET", path, None).await?;
                Ok((
                    reply.status,
                    String::from_utf8_lossy(&reply.body).into_owned(),
                ))
            })
            .await
            .map_err(|_| format!("GET {path}: no answer within 30 s"))?
        })
    }
}

/// A sum of the Prometheus counter lines starting with `name` in a `/metrics` text.
pub fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Runs `strongroom serve` on the demo configuration in `dir`, which must refuse to start: it
/// exits non-zero within a minute and never binds its socket. Returns what it printed.
pub fn serve_refused(dir: &Path) -> String {
    let config = dir.join("service/strongroom.toml").display().to_string();
    let (status, out) = run_bounded(dir, &["serve", "--config", &config], START * 2);
    let status =
        status.unwrap_or_else(|| panic!("the service neither started nor refused:\n{out}"));
    assert!(!status.success(), "the service started: {out}");
    assert!(!dir.join("service/strongroom.sock").exists());
    out
}
