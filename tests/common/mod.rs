//! Shared test helpers: a throwaway SoftHSM store per test, the strongroom binary, and the
//! independent checkers (openssl, pkilint, pkcs11-tool). See tests/TOOLS.md for the checkers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod daemon;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A test (or part of one) that cannot run on this machine: elsewhere it says SKIPPED and why;
/// under CI (`CI=true`), which runs as root with every tool installed, that is a failure.
pub fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cannot run under CI: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// The strongroom binary built for these tests.
pub fn strongroom_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_strongroom"))
}

/// The SoftHSM PKCS#11 module.
pub fn module() -> PathBuf {
    strongroom::demo::softhsm_module().expect("SoftHSM is installed (softhsm-setup/install)")
}

/// A test's own SoftHSM store (directory + softhsm2.conf + PIN files) and ceremony directory.
/// Dropping it removes everything.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub conf: PathBuf,
    pub pin_file: PathBuf,
    pub so_pin_file: PathBuf,
    /// The ceremony directory (inputs, outputs, transcript).
    pub dir: PathBuf,
}

/// The user PIN every sandbox uses: a distinctive string, so tests can search output for it.
pub const TEST_PIN: &str = "pin-7f3a9c1e55d2";

impl Sandbox {
    /// A new store with the given tokens initialised.
    pub fn new(labels: &[&str]) -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let hsm = tmp.path().join("hsm");
        std::fs::create_dir_all(hsm.join("tokens")).unwrap();
        let conf = hsm.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                hsm.join("tokens").display()
            ),
        )
        .unwrap();
        let pin_file = hsm.join("user-pin");
        let so_pin_file = hsm.join("so-pin");
        std::fs::write(&pin_file, TEST_PIN).unwrap();
        std::fs::write(&so_pin_file, "so-pin-0c2b8e77").unwrap();
        let dir = tmp.path().join("ceremony");
        std::fs::create_dir_all(&dir).unwrap();
        let sandbox = Sandbox {
            tmp,
            conf,
            pin_file,
            so_pin_file,
            dir,
        };
        for label in labels {
            let out = sandbox.run(&[
                "hsm",
                "init-token",
                "--module",
                &module().display().to_string(),
                "--label",
                label,
                "--so-pin-file",
                &sandbox.so_pin_file.display().to_string(),
                "--pin-file",
                &sandbox.pin_file.display().to_string(),
            ]);
            assert!(
                out.status.success(),
                "init-token: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        sandbox
    }

    /// Runs strongroom with this sandbox's SOFTHSM2_CONF, in the ceremony directory.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(strongroom_bin())
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .env("STRONGROOM_TEST_PIN_FILE", &self.pin_file)
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }

    /// Writes a script into the sandbox (outside the ceremony directory) and runs it with --yes.
    pub fn ceremony(&self, name: &str, script: &str) -> Output {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, script).unwrap();
        self.run(&[
            "ceremony",
            "run",
            &path.display().to_string(),
            "--dir",
            &self.dir.display().to_string(),
            "--module",
            &module().display().to_string(),
            "--yes",
        ])
    }

    /// `pkcs11-tool --list-objects` output for a token (logged in; PIN through the environment).
    pub fn pkcs11_objects(&self, token: &str) -> String {
        let out = Command::new("pkcs11-tool")
            .args([
                "--module",
                &module().display().to_string(),
                "--token-label",
                token,
                "--login",
            ])
            .args(["--pin", "env:STRONGROOM_TEST_PIN", "--list-objects"])
            .env("SOFTHSM2_CONF", &self.conf)
            .env("STRONGROOM_TEST_PIN", TEST_PIN)
            .output()
            .expect("pkcs11-tool is installed (softhsm-setup/install)");
        assert!(
            out.status.success(),
            "pkcs11-tool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every file under the ceremony directory.
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        out.sort();
        out
    }
}

/// The script header for a sandbox token.
pub fn hsm_table(token: &str, pin_file: &Path) -> String {
    format!(
        "[hsm]\nmodule = \"{}\"\ntoken = \"{token}\"\npin = {{ file = \"{}\" }}\n",
        module().display(),
        pin_file.display()
    )
}

/// stdout + stderr as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `openssl verify -x509_strict` with an isolated trust store. Returns stdout+stderr on failure.
pub fn openssl_verify(
    ca: &Path,
    untrusted: Option<&Path>,
    extra: &[&str],
    cert: &Path,
) -> Result<String, String> {
    let mut cmd = Command::new("openssl");
    let _ = cmd
        .args([
            "verify",
            "-x509_strict",
            "-no-CApath",
            "-no-CAstore",
            "-CAfile",
        ])
        .arg(ca);
    if let Some(u) = untrusted {
        let _ = cmd.arg("-untrusted").arg(u);
    }
    let out = cmd.args(extra).arg(cert).output().unwrap();
    if out.status.success() {
        Ok(text(&out))
    } else {
        Err(text(&out))
    }
}

/// The repository's pkilint (installed by `softhsm-setup/install --test-tools`).
pub fn pkilint_bin(tool: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tools/venv/bin")
        .join(tool);
    assert!(
        path.exists(),
        "{} missing: run ./softhsm-setup/install --test-tools",
        path.display()
    );
    path
}

/// Runs a pkilint linter at threshold ERROR and returns the ERROR/FATAL findings (empty = clean).
pub fn pkilint(tool: &str, args: &[&str], file: &Path) -> Vec<String> {
    let out = Command::new(pkilint_bin(tool))
        .arg("lint")
        .args(args)
        .args(["-s", "ERROR", "-f", "JSON"])
        .arg(file)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("pkilint output is not JSON: {}", text(&out)));
    let findings: Vec<String> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["finding_descriptions"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| format!("{}: {}", r["node_path"], f))
        })
        .collect();
    assert!(
        out.status.success() || !findings.is_empty(),
        "pkilint failed: {}",
        text(&out)
    );
    findings
}

/// `n` made-up v1 SCTs (a fixed log id and an ECDSA-shaped signature) in a TLS-encoded
/// SignedCertificateTimestampList (RFC 6962 3.2, 3.3).
pub fn sct_list(n: usize) -> Vec<u8> {
    let mut sct = vec![0u8];
    sct.extend([7u8; 32]);
    sct.extend(1_764_000_000_000u64.to_be_bytes());
    sct.extend([0, 0, 4, 3, 0, 70, 0x30, 0x44, 0x02, 0x20]);
    sct.extend([0x11; 32]);
    sct.extend([0x02, 0x20]);
    sct.extend([0x22; 32]);
    let mut body = Vec::new();
    for _ in 0..n {
        body.extend((sct.len() as u16).to_be_bytes());
        body.extend(&sct);
    }
    let mut list = (body.len() as u16).to_be_bytes().to_vec();
    list.extend(body);
    list
}

/// One made-up SCT's list, base64 (as `/final` takes it).
pub fn sct_list_base64() -> String {
    <base64ct::Base64 as base64ct::Encoding>::encode_string(&sct_list(1))
}

/// The name of the audit store's record table (the one with the hash chain's `prev_hash`).
pub fn audit_table(store: &Path) -> String {
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.query_row(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%prev_hash%'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A ceremony script shipped in the repository (`ceremony/…`), parsed, so a test runs the real
/// script on its own token and changes only the fields it needs, instead of a copy of the text.
#[derive(Clone)]
pub struct ShippedScript(toml::Table);

impl ShippedScript {
    /// Loads `ceremony/<path>` from the repository.
    pub fn load(path: &str) -> ShippedScript {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("ceremony")
            .join(path);
        let text = std::fs::read_to_string(&file).unwrap();
        ShippedScript(toml::from_str(&text).unwrap())
    }

    /// Runs on a sandbox token: the `[hsm]` table becomes [`hsm_table`]'s.
    pub fn on_token(mut self, token: &str, pin_file: &Path) -> ShippedScript {
        let hsm: toml::Table = toml::from_str(&hsm_table(token, pin_file)).unwrap();
        let _ = self.0.insert("hsm".into(), hsm["hsm"].clone());
        self
    }

    /// Sets a field of the `[hsm]` table.
    pub fn hsm(mut self, field: &str, value: impl Into<toml::Value>) -> ShippedScript {
        let hsm = self.0.get_mut("hsm").unwrap().as_table_mut().unwrap();
        let _ = hsm.insert(field.into(), value.into());
        self
    }

    /// Keeps only the steps with these ids, in the script's order.
    pub fn only(mut self, ids: &[&str]) -> ShippedScript {
        let steps = self.0.get_mut("step").unwrap().as_array_mut().unwrap();
        steps.retain(|s| ids.contains(&s["id"].as_str().unwrap()));
        assert_eq!(steps.len(), ids.len(), "the script lacks one of {ids:?}");
        self
    }

    /// Sets (or adds) a field of the step with this id.
    pub fn set(mut self, id: &str, field: &str, value: impl Into<toml::Value>) -> ShippedScript {
        let _ = self.step(id).insert(field.into(), value.into());
        self
    }

    /// Sets (or adds) the fields of `fields`, a TOML fragment, in the step with this id.
    pub fn set_toml(mut self, id: &str, fields: &str) -> ShippedScript {
        let fields: toml::Table = toml::from_str(fields).unwrap();
        self.step(id).extend(fields);
        self
    }

    /// Removes a field of the step with this id.
    pub fn remove(mut self, id: &str, field: &str) -> ShippedScript {
        let _ = self.step(id).remove(field);
        self
    }

    fn step(&mut self, id: &str) -> &mut toml::Table {
        self.0["step"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|s| s["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no step {id:?}"))
            .as_table_mut()
            .unwrap()
    }

    /// The script's text (`[[step]]` tables last, so more steps can be appended as text).
    pub fn text(&self) -> String {
        toml::to_string(&self.0).unwrap()
    }
}

/// A `{ key = "value" }` inline table, for reference fields like `key = { step = "id" }`.
pub fn toml_ref(kind: &str, value: &str) -> toml::Value {
    let mut t = toml::Table::new();
    let _ = t.insert(kind.into(), value.into());
    toml::Value::Table(t)
}
