//! Keys strongroom did not generate (imported by other PKCS#11 tools) are checked like keys it
//! generates before it signs with them (PKCS#11 v2.40 section 4.9): the service refuses to start
//! with an issuer or OCSP-delegate key that is extractable, not sensitive, or allowed to decrypt,
//! unwrap or derive, and a ceremony stops at its token check, before any signature. A good key
//! imported the same way is accepted, so the attribute check is what refuses the others.
//!
//! The keys are made with openssl and imported with the tools that can set each attribute on
//! SoftHSM 2.6.1 (its defaults for a created private key are CKA_SENSITIVE, CKA_SIGN,
//! CKA_DECRYPT and CKA_UNWRAP true):
//! - `softhsm2-util --import`: an EC key that is sensitive, not extractable and signs only (the
//!   good key; CKA_SIGN_RECOVER is true, SoftHSM's default, which grants an EC key nothing), and
//!   an RSA key, which it also makes CKA_DECRYPT and CKA_UNWRAP, refused for CKA_SIGN_RECOVER
//!   among them;
//! - OpenSC `pkcs11-tool --write-object --type privkey`: `--extractable`, `--usage-decrypt`,
//!   `--usage-derive`, `--usage-wrap` (CKA_UNWRAP);
//! - GnuTLS `p11tool --write --mark-decrypt`: CKA_SIGN false.
//!
//! None of them can write CKA_SENSITIVE false on SoftHSM (it defaults to true and no option sets
//! it false), so that rule is covered by the unit test of `KeyAttributes::use_violations`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Sandbox, TEST_PIN, daemon, hsm_table, module, text};

/// One imported key: its label (= the `object=` of its URI), the tool and options that made it,
/// and the rules its refusal must name (empty: accepted).
struct Imported {
    label: &'static str,
    id: &'static str,
    tool: Tool,
    expect: &'static [&'static str],
}

/// The tool (and its options) that imports a key.
#[derive(Clone, Copy)]
enum Tool {
    /// `softhsm2-util --import` (writes the public key too).
    SoftHsmUtil,
    /// `pkcs11-tool --write-object K --type privkey` with these options.
    OpenSc(&'static [&'static str]),
    /// `p11tool --write --load-privkey K` with these options.
    GnuTls(&'static [&'static str]),
}

const KEYS: &[Imported] = &[
    Imported {
        label: "imported-good",
        id: "a1",
        tool: Tool::SoftHsmUtil,
        expect: &[],
    },
    Imported {
        label: "imported-rsa-sign-recover",
        id: "a7",
        tool: Tool::SoftHsmUtil,
        expect: &["CKA_SIGN_RECOVER must be false"],
    },
    Imported {
        label: "imported-extractable",
        id: "a2",
        tool: Tool::OpenSc(&["--usage-sign", "--sensitive", "--extractable"]),
        expect: &["CKA_EXTRACTABLE must be false"],
    },
    Imported {
        label: "imported-decrypt",
        id: "a3",
        tool: Tool::OpenSc(&["--usage-sign", "--usage-decrypt", "--sensitive"]),
        expect: &["CKA_DECRYPT must be false"],
    },
    Imported {
        label: "imported-unwrap",
        id: "a4",
        tool: Tool::OpenSc(&["--usage-sign", "--usage-wrap", "--sensitive"]),
        expect: &["CKA_UNWRAP must be false"],
    },
    Imported {
        label: "imported-derive",
        id: "a5",
        tool: Tool::OpenSc(&["--usage-sign", "--usage-derive", "--sensitive"]),
        expect: &["CKA_DERIVE must be false"],
    },
    Imported {
        label: "imported-no-sign",
        id: "a6",
        tool: Tool::GnuTls(&["--mark-decrypt"]),
        expect: &["CKA_SIGN must be true"],
    },
];

/// Whether the import tools are installed; prints SKIPPED (or fails under CI=true) if not.
fn tools_present() -> bool {
    for (tool, arg) in [
        ("pkcs11-tool", "--help"),
        ("p11tool", "--version"),
        ("softhsm2-util", "--version"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{tool} is missing: run softhsm-setup/install"
            );
            eprintln!("SKIPPED: {tool} is not installed (softhsm-setup/install)");
            return false;
        }
    }
    true
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}

/// Makes a P-384 key (RSA-2048 if the label has "rsa") with openssl in `dir` and imports it (private and public key objects with
/// the same CKA_ID) into `token` of the SoftHSM store `conf`, whose user PIN is in `pin_file`.
fn import(dir: &Path, conf: &Path, token: &str, pin_file: &Path, key: &Imported) {
    let pin = std::fs::read_to_string(pin_file).unwrap();
    let pem = dir.join(format!("{}.pem", key.label));
    let der = dir.join(format!("{}.der", key.label));
    let public = dir.join(format!("{}.pub.der", key.label));
    let algorithm: &[&str] = if key.label.contains("rsa") {
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    } else {
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
    };
    run(Command::new("openssl")
        .arg("genpkey")
        .args(algorithm)
        .arg("-out")
        .arg(&pem));
    run(Command::new("openssl")
        .args(["pkey", "-outform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&der));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&public));
    let pkcs11_tool = |args: &[&str], file: &Path, kind: &str| {
        run(Command::new("pkcs11-tool")
            .args(["--module", &module().display().to_string()])
            .args([
                "--token-label",
                token,
                "--login",
                "--pin",
                "env:KEYS_TEST_PIN",
            ])
            .arg("--write-object")
            .arg(file)
            .args(["--type", kind, "--id", key.id, "--label", key.label])
            .args(args)
            .env("SOFTHSM2_CONF", conf)
            .env("KEYS_TEST_PIN", &pin));
    };
    match key.tool {
        Tool::SoftHsmUtil => {
            let pkcs8 = dir.join(format!("{}.p8.pem", key.label));
            run(Command::new("openssl")
                .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
                .arg(&pem)
                .arg("-out")
                .arg(&pkcs8));
            // softhsm2-util takes the PIN only on its command line (a throwaway test PIN).
            run(Command::new("softhsm2-util")
                .arg("--import")
                .arg(&pkcs8)
                .args(["--token", token, "--label", key.label, "--id", key.id])
                .args(["--pin", &pin])
                .env("SOFTHSM2_CONF", conf));
            return;
        }
        Tool::OpenSc(args) => pkcs11_tool(args, &der, "privkey"),
        Tool::GnuTls(args) => run(Command::new("p11tool")
            .args([
                "--provider",
                &module().display().to_string(),
                "--login",
                "--write",
            ])
            .arg(format!("pkcs11:token={token}"))
            .arg("--load-privkey")
            .arg(&pem)
            .args(["--label", key.label, "--id", key.id])
            .args(args)
            .env("SOFTHSM2_CONF", conf)
            .env("GNUTLS_PIN", &pin)),
    }
    pkcs11_tool(&[], &public, "pubkey");
}

/// The URI strongroom names a found key by: token, label and CKA_ID (RFC 7512).
fn uri(token: &str, key: &Imported) -> String {
    let id: String = hex::decode(key.id)
        .unwrap()
        .iter()
        .map(|b| format!("%{b:02x}"))
        .collect();
    format!("pkcs11:token={token};object={};id={id}", key.label)
}

/// Checks a refusal names every expected rule and the key's URI.
fn assert_names(msg: &str, token: &str, key: &Imported) {
    for rule in key.expect {
        assert!(
            msg.contains(&format!("key {}: ", uri(token, key))),
            "{}: the key's URI is not named:\n{msg}",
            key.label
        );
        assert!(
            msg.contains(rule),
            "{}: {rule} not named:\n{msg}",
            key.label
        );
    }
}

/// The demo's R10 issuer key and its delegated OCSP responder's key, as the config names them.
const R10_KEY: &str = "key = \"pkcs11:token=strongroom-demo;object=demo-int-r10\"";
const R10_OCSP_KEY: &str = "key = \"pkcs11:token=strongroom-demo;object=demo-ocsp-r10\"";

#[test]
fn the_service_refuses_to_start_with_an_issuer_or_responder_key_a_ca_must_not_use() {
    if !tools_present() {
        return;
    }
    let token = "strongroom-demo";
    let dir = daemon::copy_demo(|c| c);
    let hsm = dir.path().join("hsm");
    for key in KEYS {
        import(
            dir.path(),
            &hsm.join("softhsm2.conf"),
            token,
            &hsm.join("user-pin"),
            key,
        );
    }
    let config = dir.path().join("service/strongroom.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    assert!(original.contains(R10_KEY) && original.contains(R10_OCSP_KEY));
    for key in KEYS {
        let named = format!("key = \"pkcs11:token={token};object={}\"", key.label);
        std::fs::write(&config, original.replace(R10_KEY, &named)).unwrap();
        let msg = daemon::serve_refused(dir.path());
        if key.expect.is_empty() {
            // Found and accepted: the start fails only later, because the key is not the issuer
            // certificate's.
            assert!(!msg.contains("CKA_"), "{}: refused:\n{msg}", key.label);
            assert!(
                msg.contains("is not the key of the issuer certificate"),
                "{}:\n{msg}",
                key.label
            );
        } else {
            assert!(msg.contains("issuer \"r10\""), "{msg}");
            assert_names(&msg, token, key);
        }
    }
    // The delegated OCSP responder's key is checked the same way.
    let bad = &KEYS[1];
    let named = format!("key = \"pkcs11:token={token};object={}\"", bad.label);
    std::fs::write(&config, original.replace(R10_OCSP_KEY, &named)).unwrap();
    let msg = daemon::serve_refused(dir.path());
    assert!(msg.contains("ocsp-responder"), "{msg}");
    assert_names(&msg, token, bad);
}

#[test]
fn a_ceremony_stops_at_its_token_check_on_a_uri_key_a_ca_must_not_use() {
    if !tools_present() {
        return;
    }
    let token = "keys";
    let s = Sandbox::new(&[token]);
    for key in KEYS {
        import(s.tmp.path(), &s.conf, token, &s.pin_file, key);
    }
    let hsm = hsm_table(token, &s.pin_file);
    // The good key last: its ceremony runs and writes a transcript.
    for key in KEYS.iter().rev() {
        let out_file = format!("{}.pem", key.label);
        let script = format!(
            "[ceremony]\nname = \"imported\"\n{hsm}\n[[step]]\nid = \"root\"\naction = \"self-sign-root\"\nkey = {{ uri = \"pkcs11:object={}\" }}\nsubject = {{ country = \"US\", organization = \"Test CA\", common-name = \"Imported Root\" }}\nvalidity-days = 3000\ncertificate-out = \"{out_file}\"\n",
            key.label
        );
        let out = s.ceremony(&format!("{}.toml", key.label), &script);
        let msg = text(&out);
        let written = s.dir.join(&out_file);
        if key.expect.is_empty() {
            assert!(out.status.success(), "{}:\n{msg}", key.label);
            let verified = common::openssl_verify(&written, None, &[], &written);
            assert!(verified.is_ok(), "{verified:?}");
        } else {
            assert!(!out.status.success(), "{}: ran:\n{msg}", key.label);
            assert!(
                msg.contains("step 1 (self-sign-root \"root\"): key:"),
                "{}: not refused at the token check:\n{msg}",
                key.label
            );
            assert_names(&msg, token, key);
            assert!(
                !written.exists(),
                "{}: a certificate was written",
                key.label
            );
            assert!(
                !s.dir.join("transcript.jsonl").exists(),
                "{}: the ceremony started",
                key.label
            );
        }
        assert!(!msg.contains(TEST_PIN));
    }
}
