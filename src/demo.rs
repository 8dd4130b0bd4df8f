//! `strongroom demo --out DIR`: the whole ceremony on throwaway SoftHSM tokens.
//!
//! The demo makes a SoftHSM configuration and two tokens under `DIR/hsm` (one for our CA, one for
//! a simulated cross-signer), writes the demo scripts to `DIR/scripts`, and runs each of them as
//! an operator would, with `strongroom ceremony run --yes`, in a child process whose
//! `SOFTHSM2_CONF` points at the throwaway tokens. PINs are random, kept in mode-0600 files, and
//! passed only as file paths.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

/// The demo scripts, in the order they run, with the token each uses.
pub const SCRIPTS: [(&str, &str); 7] = [
    (
        "1-roots.toml",
        include_str!("../ceremony/demo/1-roots.toml"),
    ),
    (
        "2-intermediates.toml",
        include_str!("../ceremony/demo/2-intermediates.toml"),
    ),
    (
        "3-cross-sign-csr.toml",
        include_str!("../ceremony/demo/3-cross-sign-csr.toml"),
    ),
    (
        "4-cross-signer.toml",
        include_str!("../ceremony/demo/4-cross-signer.toml"),
    ),
    (
        "5-check-cross-signed.toml",
        include_str!("../ceremony/demo/5-check-cross-signed.toml"),
    ),
    ("6-crl.toml", include_str!("../ceremony/demo/6-crl.toml")),
    (
        "7-ocsp-responder.toml",
        include_str!("../ceremony/demo/7-ocsp-responder.toml"),
    ),
];

/// Where SoftHSM's PKCS#11 module is on Debian and Ubuntu.
pub fn softhsm_module() -> Option<PathBuf> {
    let candidates = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ];
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A throwaway SoftHSM store under `DIR/hsm` (own `softhsm2.conf`, random PINs in mode-0600
/// files), and a way to run strongroom against it in a child process whose `SOFTHSM2_CONF`
/// points at it. Used by the demo and the benchmark.
pub struct Throwaway {
    /// The directory (canonical).
    pub dir: PathBuf,
    /// `DIR/hsm/softhsm2.conf`.
    pub conf: PathBuf,
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// `DIR/hsm/user-pin`.
    pub user_pin: PathBuf,
    exe: PathBuf,
}

impl Throwaway {
    /// Creates the store in `out` (which must not exist or be empty) with tokens `labels`.
    pub fn create(
        out: &Path,
        module: Option<PathBuf>,
        labels: &[&str],
    ) -> Result<Throwaway, String> {
        let module = module.or_else(softhsm_module).ok_or(
            "SoftHSM's libsofthsm2.so was not found; run softhsm-setup/install (or pass --module)",
        )?;
        if out.exists()
            && std::fs::read_dir(out)
                .map_err(|e| e.to_string())?
                .next()
                .is_some()
        {
            return Err(format!(
                "{} exists and is not empty; give a new directory",
                out.display()
            ));
        }
        std::fs::create_dir_all(out.join("hsm/tokens"))
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let dir = out.canonicalize().map_err(|e| e.to_string())?;
        let hsm_dir = dir.join("hsm");
        let conf = hsm_dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                hsm_dir.join("tokens").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let so_pin = hsm_dir.join("so-pin");
        let user_pin = hsm_dir.join("user-pin");
        write_random_pin(&so_pin)?;
        write_random_pin(&user_pin)?;
        let throwaway = Throwaway {
            dir,
            conf,
            module,
            user_pin,
            exe: appliance_exe()?,
        };
        for label in labels {
            println!("== initialising SoftHSM token {label:?}");
            throwaway.run(&[
                "hsm",
                "init-token",
                "--module",
                &throwaway.module.display().to_string(),
                "--label",
                label,
                "--so-pin-file",
                &so_pin.display().to_string(),
                "--pin-file",
                &throwaway.user_pin.display().to_string(),
            ])?;
        }
        Ok(throwaway)
    }

    /// A `strongroom` (the appliance's) command against this store, in its directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        let _ = command
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(&self.dir);
        command
    }

    /// Runs `strongroom ARGS` against this store and waits for success.
    /// The wait is bounded ([`STEP_LIMIT`]): a command still running then is stopped and reported.
    pub fn run(&self, args: &[&str]) -> Result<(), String> {
        let mut child = self
            .command(args)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let status = match crate::child::wait_for(&mut child, STEP_LIMIT)? {
            Some(status) => status,
            None => {
                let stopped = crate::child::terminate(&mut child, Duration::from_secs(10));
                return Err(format!(
                    "strongroom {} did not finish within {} s{}",
                    args.join(" "),
                    STEP_LIMIT.as_secs(),
                    stopped.err().map(|e| format!("; {e}")).unwrap_or_default()
                ));
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(format!("strongroom {} failed ({status})", args.join(" ")))
        }
    }

    /// Writes a ceremony script into `DIR/scripts` and runs it with `--yes`.
    pub fn ceremony(&self, name: &str, text: &str) -> Result<(), String> {
        let scripts = self.dir.join("scripts");
        std::fs::create_dir_all(&scripts).map_err(|e| e.to_string())?;
        let path = scripts.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        println!("\n== ceremony {name}");
        self.run(&[
            "ceremony",
            "run",
            &path.display().to_string(),
            "--dir",
            &self.dir.display().to_string(),
            "--module",
            &self.module.display().to_string(),
            "--yes",
        ])
    }
}

/// The appliance binary, `strongroom`: this executable when it is that one, else the one
/// beside it (`strongroom-bench` drives the appliance it is installed with).
fn appliance_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(exe.with_file_name("strongroom"))
}

/// Runs the demo into `out`, which must not exist or be empty.
pub fn run(out: &Path, module: Option<PathBuf>) -> Result<(), String> {
    let t = Throwaway::create(out, module, &["strongroom-demo", "cross-signer-demo"])?;
    for (name, text) in SCRIPTS {
        t.ceremony(name, text)?;
    }
    let out = t.dir.clone();
    let conf = t.conf.clone();
    let user_pin = t.user_pin.clone();
    let module_arg = t.module.display().to_string();
    let p = |rel: &str| out.join(rel).display().to_string();
    let serve_config = write_serve_config(&out, &module_arg)?;
    println!("\n== signing service: one TLS server certificate from E10 over the socket");
    let leaf = issue_leaf(&t, &serve_config, &out.join("leaf-www.pem"))?;
    let manifest = json!({
        "roots": {"root-r1": p("root-r1.pem"), "root-e1": p("root-e1.pem")},
        "intermediates": {
            "r10": {"certificate": p("int-r10.pem"), "issuer": "root-r1"},
            "e10": {"certificate": p("int-e10.pem"), "issuer": "root-e1"},
            "r9": {"certificate": p("int-r9.pem"), "issuer": "root-r1", "revoked_in": p("root-r1-crl-1.pem")},
        },
        "cross_sign": {
            "intermediate": "r10",
            "csr": p("cross/int-r10.csr"),
            "cross_signer_root": p("cross/demotrust-root-x3.pem"),
            "certificate": p("cross/int-r10-by-demotrust-x3.pem"),
        },
        "crl": p("root-r1-crl-1.pem"),
        "ocsp_responders": {"r10": {"certificate": p("ocsp-r10.pem"), "key": "pkcs11:token=strongroom-demo;object=demo-ocsp-r10"}},
        "transcript": p("transcript.jsonl"),
        "hsm": {
            "softhsm2_conf": conf.display().to_string(),
            "module": module_arg,
            "tokens": ["strongroom-demo", "cross-signer-demo"],
            "user_pin_file": user_pin.display().to_string(),
        },
        "scripts": p("scripts"),
        "serve_config": serve_config.display().to_string(),
        "leaf": {"certificate": leaf.display().to_string(), "issuer": "e10", "dns_name": LEAF_NAME},
    });
    let manifest_path = out.join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    println!("\n== demo complete: everything is in {}", out.display());
    println!("   manifest (roles → paths): {}", manifest_path.display());
    println!("   roots: {}, {}", p("root-r1.pem"), p("root-e1.pem"));
    println!(
        "   intermediates: {}, {}, {} (revoked)",
        p("int-r10.pem"),
        p("int-e10.pem"),
        p("int-r9.pem")
    );
    println!(
        "   cross-sign: request {} → {}",
        p("cross/int-r10.csr"),
        p("cross/int-r10-by-demotrust-x3.pem")
    );
    println!("   CRL: {}", p("root-r1-crl-1.pem"));
    println!("   OCSP responder for R10: {}", p("ocsp-r10.pem"));
    println!(
        "   TLS server certificate for {LEAF_NAME} from E10, issued by the service: {}",
        p("leaf-www.pem")
    );
    println!(
        "   transcript: {} (check it with: strongroom ceremony transcript {})",
        p("transcript.jsonl"),
        p("transcript.jsonl")
    );
    Ok(())
}

/// The name on the demo's TLS server certificate.
const LEAF_NAME: &str = "www.example.com";

/// The longest one `strongroom` command of the demo may run (a ceremony generating RSA-4096 keys
/// on a slow machine takes minutes).
pub const STEP_LIMIT: Duration = Duration::from_secs(900);

/// Runs the signing service on the demo's configuration, asks it over its socket for one TLS
/// server certificate from E10 (as the CA core would), writes it to `path` (PEM), and stops the
/// service with SIGTERM. The subscriber key is made here in software; its private half is
/// never written anywhere.
fn issue_leaf(t: &Throwaway, config: &Path, path: &Path) -> Result<PathBuf, String> {
    use base64ct::Encoding;
    use p256::pkcs8::EncodePublicKey;
    use zeroize::Zeroize;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("random subscriber key: {e}"))?;
    let key = p256::SecretKey::from_slice(&secret).map_err(|e| format!("subscriber key: {e}"));
    secret.zeroize();
    let spki = key?
        .public_key()
        .to_public_key_der()
        .map_err(|e| format!("subscriber key: {e}"))?;
    let public_key = base64ct::Base64::encode_string(spki.as_bytes());

    let mut service = t
        .command(&["serve", "--config", &config.display().to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the service: {e}"))?;
    let socket = config.with_file_name("strongroom.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        if let Ok(Some(status)) = service.try_wait() {
            return Err(format!("the service stopped at start ({status})"));
        }
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let body = json!({
                "issuer": "e10",
                "profile": "tls-server",
                "public_key": public_key,
                "dns_names": [LEAF_NAME],
            });
            let request = async {
                let mut client = crate::client::Client::connect(&socket).await?;
                client
                    .request("POST", "/v1/certificates", Some(&body))
                    .await
            };
            break rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), request)
                    .await
                    .unwrap_or_else(|_| Err("the service did not answer within 30 s".into()))
            });
        }
        if std::time::Instant::now() > deadline {
            let stopped = crate::child::terminate(&mut service, Duration::from_secs(10));
            return Err(format!(
                "the service did not open its socket within 30 s{}",
                stopped.err().map(|e| format!("; {e}")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SIGTERM: the service finishes what is in flight and exits (bounded: a service that does not
    // stop is killed and reported).
    let stopped = crate::child::terminate(&mut service, Duration::from_secs(30))?;
    let reply = reply?;
    let json = reply.json()?;
    if reply.status != 201 {
        return Err(format!("the service refused the demo certificate: {json}"));
    }
    if !stopped.success() {
        return Err(format!("the service did not stop cleanly ({stopped})"));
    }
    let pem = json["pem"]
        .as_str()
        .ok_or("the service's answer has no pem")?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// Writes `DIR/service/strongroom.toml`: a signing-service configuration for the demo's
/// intermediates R10 (RSA) and E10 (ECDSA), allowing the user who ran the demo. R10's OCSP
/// responses are signed by its delegated responder, E10's by E10's own key.
fn write_serve_config(out: &Path, module: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let dir = out.join("service");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let me = std::fs::metadata("/proc/self").map_err(|e| e.to_string())?;
    let uid = me.uid();
    let text = format!(
        r#"# Signing-service configuration for the demo's throwaway tokens.
# Every key is described in docs/CONFIGURATION.md.
[service]
socket = "strongroom.sock"
socket-mode = "0660"
allow-root = {allow_root}
store = "audit.db"
instance-prefix = 1

[hsm]
module = "{module}"
token = "strongroom-demo"
pin = {{ file = "../hsm/user-pin" }}
sessions = 2
softhsm2-conf = "../hsm/softhsm2.conf"

[[caller]]
name = "demo user"
uid = {uid}

[[issuer]]
name = "r10"
certificate = "../int-r10.pem"
key = "pkcs11:token=strongroom-demo;object=demo-int-r10"
ca-issuers-url = "http://r10.i.example.com/"
crl-url-prefix = "http://r10.c.example.com/"
crl-shards = 16
# R10's OCSP responses are signed by its delegated responder (ceremony 7-ocsp-responder.toml).
ocsp-responder = {{ certificate = "../ocsp-r10.pem", key = "pkcs11:token=strongroom-demo;object=demo-ocsp-r10" }}

[[issuer]]
name = "e10"
certificate = "../int-e10.pem"
key = "pkcs11:token=strongroom-demo;object=demo-int-e10"
ca-issuers-url = "http://e10.i.example.com/"
crl-url-prefix = "http://e10.c.example.com/"
crl-shards = 16

[[profile]]
name = "tls-server"
validity-hours = 2160

[[profile]]
name = "tls-server-short"
validity-hours = 160
"#,
        allow_root = uid == 0,
    );
    let path = dir.join("strongroom.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Writes a random 16-hex-digit PIN to a new mode-0600 file.
fn write_random_pin(path: &Path) -> Result<(), String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 8]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(bytes.as_mut()))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let pin = zeroize::Zeroizing::new(hex::encode(bytes.as_ref()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, pin.as_bytes()).map_err(|e| e.to_string())?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(())
}
