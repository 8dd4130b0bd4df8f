//! The benchmarks live in their own binary, `strongroom-bench`: the appliance has no bench
//! command, and the raw measurement signs only with a key pair it generates and destroys.

mod common;

use std::process::Command;

use common::{Sandbox, hsm_table, strongroom_bin, text};
use serde_json::Value;

fn bench_bin() -> &'static str {
    env!("CARGO_BIN_EXE_strongroom-bench")
}

/// `strongroom --help` lists no bench command, and `strongroom bench ...` is refused: the
/// appliance's command line offers no unverified or unrecorded signing.
#[test]
fn the_appliance_has_no_bench_command() {
    let help = Command::new(strongroom_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success(), "{}", text(&help));
    let help = text(&help);
    assert!(help.contains("serve"), "{help}");
    assert!(!help.to_lowercase().contains("bench"), "{help}");

    for args in [
        &["bench", "raw", "--help"][..],
        &["bench", "issue", "--help"][..],
    ] {
        let out = Command::new(strongroom_bin()).args(args).output().unwrap();
        assert!(!out.status.success(), "strongroom {args:?}: {}", text(&out));
        assert!(
            text(&out).contains("unrecognized subcommand 'bench'"),
            "{}",
            text(&out)
        );
    }

    let help = Command::new(bench_bin()).arg("--help").output().unwrap();
    assert!(help.status.success(), "{}", text(&help));
    for command in ["issue", "raw", "crl", "soak"] {
        assert!(text(&help).contains(command), "{}", text(&help));
    }
}

/// `strongroom-bench raw` on a token that already holds a CA key: it signs with a key pair of
/// its own (of each type asked for; session objects, or token objects with `--token-object`),
/// and afterwards the token holds exactly the objects
/// it held before (the CA key pair, nothing labelled `strongroom-bench-raw`).
#[test]
fn bench_raw_signs_with_its_own_key_and_leaves_no_object_behind() {
    let sandbox = Sandbox::new(&["raw"]);
    let script = format!(
        "[ceremony]\nname = \"a CA key on the token\"\n\n{}\n[[step]]\nid = \"ca\"\naction = \"generate-key\"\nlabel = \"ca-key\"\nkey-type = \"ec-p256\"\npublic-key-out = \"ca.pub.pem\"\n",
        hsm_table("raw", &sandbox.pin_file)
    );
    let out = sandbox.ceremony("key.toml", &script);
    assert!(out.status.success(), "{}", text(&out));
    let before = sandbox.pkcs11_objects("raw");
    assert!(before.contains("ca-key"), "{before}");

    for (key_type, sessions, storage) in [
        ("ec-p256", "2", None),
        ("rsa-2048", "1", None),
        ("ec-p256", "1", Some("--token-object")),
    ] {
        let out = Command::new(bench_bin())
            .args(["raw", "--token", "raw", "--pin-file"])
            .arg(&sandbox.pin_file)
            .args(["--key-type", key_type, "--sessions", sessions])
            .args(["--seconds", "1"])
            .args(storage)
            .env("SOFTHSM2_CONF", &sandbox.conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{key_type}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["key_type"], key_type, "{report}");
        assert!(report["signatures"].as_u64().unwrap() > 0, "{report}");
        assert!(report["rate"].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            !text(&out).contains(common::TEST_PIN),
            "the PIN is in the output"
        );

        let after = sandbox.pkcs11_objects("raw");
        assert!(!after.contains("strongroom-bench-raw"), "{after}");
        assert_eq!(after, before, "the token's objects changed");
    }
}

/// A token that does not exist is an error naming it, not a hang or a silent zero.
#[test]
fn bench_raw_on_a_missing_token_fails_and_names_it() {
    let sandbox = Sandbox::new(&["present"]);
    let out = Command::new(bench_bin())
        .args(["raw", "--token", "absent", "--pin-file"])
        .arg(&sandbox.pin_file)
        .args(["--seconds", "1"])
        .env("SOFTHSM2_CONF", &sandbox.conf)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("absent"), "{}", text(&out));
}

/// The raw bench's key pair is made of session objects (`CKA_TOKEN` false): while it signs,
/// another process listing the token (pkcs11-tool) never sees it, as it would a token object.
#[test]
fn bench_raw_key_is_a_session_object_invisible_to_other_processes() {
    let sandbox = Sandbox::new(&["raw"]);
    let mut child = Command::new(bench_bin())
        .args(["raw", "--token", "raw", "--pin-file"])
        .arg(&sandbox.pin_file)
        .args(["--key-type", "ec-p256", "--sessions", "1", "--seconds", "4"])
        .env("SOFTHSM2_CONF", &sandbox.conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Listed until the child exits (at most a minute): the key exists from its generation, a
    // few milliseconds after start, to the end of the run. The first listing waits until the
    // child has opened the token: SoftHSM processes that open one token store at the same
    // moment occasionally fail.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let mut listings = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "bench raw did not finish"
        );
        let objects = sandbox.pkcs11_objects("raw");
        assert!(
            !objects.contains("strongroom-bench-raw"),
            "the bench's key is visible to another process: {objects}"
        );
        listings += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(listings > 5, "{listings} listings");
}
