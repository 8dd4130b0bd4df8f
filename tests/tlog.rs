//! The transparency log end to end: write tiles, verify them, prove inclusion and consistency,
//! catch tampering, survive a killed writer, and be checked by Go's sumdb/tlog and sumdb/note.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use strongroom::tlog::{
    Body, Checkpoint, Entry, EntryType, Error, Source, VerifierKey, note, verify, writer,
};

const ORIGIN: &str = "log.strongroom.example/test";

/// A software Ed25519 log key, for tests only (the service's key lives in the HSM).
struct TestKey {
    pair: Ed25519KeyPair,
    vkey: VerifierKey,
}

impl TestKey {
    fn new(name: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let pk: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        Self {
            vkey: VerifierKey::new(name, pk).unwrap(),
            pair,
        }
    }

    fn signer(&self) -> impl FnOnce(&[u8]) -> Result<[u8; 64], Infallible> + '_ {
        |msg| Ok(self.pair.sign(msg).as_ref().try_into().unwrap())
    }
}

fn ocsp(i: u64) -> Entry {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&i.to_be_bytes());
    Entry {
        entry_type: EntryType::OcspBatch,
        signed_at_ms: 1_765_000_000_000 + i,
        key_id: [0x11; 32],
        body: Body::OcspResponseDigests(vec![d]),
    }
}

fn ocsps(r: std::ops::Range<u64>) -> impl Iterator<Item = Entry> {
    r.map(ocsp)
}

fn pem_der(path: &str) -> Vec<u8> {
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    pem_rfc7468::decode_vec(&text).unwrap().1
}

/// SHA-256 of the SPKI DER of the certificate at `path`: the entry format's key identifier.
fn key_id(path: &str) -> [u8; 32] {
    use der::{Decode, Encode};
    use sha2::Digest;
    let cert = x509_cert::Certificate::from_der(&pem_der(path)).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    sha2::Sha256::digest(spki).into()
}

/// An entry for the certificate or CRL at `path`, signed by the key of the certificate at `signer`.
fn der_entry(t: EntryType, path: &str, signer: &str) -> Entry {
    Entry {
        entry_type: t,
        signed_at_ms: 1_765_000_000_000,
        key_id: key_id(signer),
        body: Body::Der(pem_der(path)),
    }
}

const DST: &str = "tests/data/reference-certs/dst-root-ca-x3.pem";
const X1: &str = "tests/data/reference-certs/isrg-root-x1.pem";
const X1_CROSS: &str = "tests/data/reference-certs/isrg-root-x1-cross-signed-by-dst-root-ca-x3.pem";
const LE_X3: &str =
    "tests/data/reference-certs/lets-encrypt-authority-x3-signed-by-isrg-root-x1.pem";
const LE_X1: &str =
    "tests/data/reference-certs/lets-encrypt-authority-x1-signed-by-isrg-root-x1.pem";
const CRL_CA: &str = "tests/fixtures/crl-ca-p256.pem";
const CRL: &str = "tests/fixtures/crl-p256.pem";

fn append(
    dir: &Path,
    key: &TestKey,
    entries: impl IntoIterator<Item = Entry>,
) -> Result<Checkpoint, Error> {
    writer::append(dir, &key.vkey, entries, key.signer())
}

fn dir_source(dir: &Path) -> Source {
    Source::Dir(dir.to_path_buf())
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// A log of mixed entries, written in batches that cross bundle and tile boundaries.
fn mixed_log(dir: &Path, key: &TestKey) -> Vec<Vec<u8>> {
    let mut checkpoints = Vec::new();
    let batches: Vec<Vec<Entry>> = vec![
        vec![
            der_entry(EntryType::RootCertificate, DST, DST),
            der_entry(EntryType::RootCertificate, X1, X1),
            der_entry(EntryType::CrossCertificate, X1_CROSS, DST),
            der_entry(EntryType::IssuerCertificate, LE_X3, X1),
        ],
        ocsps(4..255).collect(),
        vec![der_entry(EntryType::RootCertificate, CRL_CA, CRL_CA)],
        ocsps(256..600).collect(),
        vec![
            der_entry(EntryType::Crl, CRL, CRL_CA),
            der_entry(EntryType::Certificate, LE_X1, X1),
        ],
        ocsps(602..777).collect(),
    ];
    for b in batches {
        let _ = append(dir, key, b).unwrap();
        checkpoints.push(std::fs::read(dir.join("checkpoint")).unwrap());
    }
    checkpoints
}

#[test]
fn round_trip_verify_prove_and_consistency() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let cps = mixed_log(tmp.path(), &key);
    let src = dir_source(tmp.path());
    let r = verify::verify(&src, &key.vkey).unwrap();
    assert_eq!(r.checkpoint.size, 777);
    assert_eq!(r.by_type["OcspBatch"], 770);
    assert_eq!(r.by_type["RootCertificate"], 3);
    assert_eq!(r.by_type["Crl"], 1);
    for i in [0, 1, 254, 255, 256, 511, 512, 600, 776] {
        let p = verify::prove_index(&src, &key.vkey, i).unwrap();
        assert_eq!(p.index, i);
    }
    assert!(verify::prove_index(&src, &key.vkey, 777).is_err());
    let der = pem_der(CRL_CA);
    assert_eq!(
        verify::prove_certificate(&src, &key.vkey, &der)
            .unwrap()
            .index,
        255
    );
    for (i, old) in cps.iter().enumerate() {
        for new in &cps[i..] {
            let _ = verify::consistency(&src, &key.vkey, old, new).unwrap();
        }
    }
    // Newer-to-older is refused, naming both sizes.
    let e = verify::consistency(&src, &key.vkey, &cps[3], &cps[1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("size 600") && e.contains("size 255"), "{e}");
    // The files are where C2SP tlog-tiles puts them.
    for f in [
        "tile/entries/000",
        "tile/entries/x000/003.p/9",
        "tile/0/003.p/9",
        "tile/1/000.p/3",
    ] {
        let f = f.replace("x000/", "");
        assert!(tmp.path().join(&f).is_file(), "{f}");
    }
}

#[test]
fn cli_verify_and_prove_by_certificate_file() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let _ = mixed_log(tmp.path(), &key);
    let dir = tmp.path().to_str().unwrap();
    let vkey = key.vkey.to_string();
    let out = Command::new(common::strongroom_bin())
        .args(["log", "verify", dir, "--key", &vkey])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tree_size 777"));
    let cert =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-certs/isrg-root-x1.pem");
    let out = Command::new(common::strongroom_bin())
        .args([
            "log",
            "prove",
            dir,
            "--key",
            &vkey,
            "--cert",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("index 1\n"));
    // A certificate that was never logged.
    let other =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference-certs/isrg-root-x2.pem");
    let out = Command::new(common::strongroom_bin())
        .args([
            "log",
            "prove",
            dir,
            "--key",
            &vkey,
            "--cert",
            other.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not among the 777 entries"));
}

#[test]
fn certificates_and_crls_must_be_signed_by_a_logged_issuer() {
    let key = TestKey::new(ORIGIN);
    let cases: Vec<(Vec<Entry>, &str)> = vec![
        // The issuer's key was never logged.
        (
            vec![der_entry(EntryType::IssuerCertificate, LE_X3, X1)],
            "entry 0: key_id: signing key",
        ),
        // A logged key that did not sign it.
        (
            vec![
                der_entry(EntryType::RootCertificate, DST, DST),
                der_entry(EntryType::Certificate, LE_X1, DST),
            ],
            "entry 1: body: certificate signature",
        ),
        // A CRL under another logged key.
        (
            vec![
                der_entry(EntryType::RootCertificate, X1, X1),
                der_entry(EntryType::Crl, CRL, X1),
            ],
            "entry 1: body: CRL signature",
        ),
        // A root entry must name its own key.
        (
            vec![der_entry(EntryType::RootCertificate, X1, DST)],
            "entry 0: key_id: a root certificate entry",
        ),
    ];
    for (entries, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let _ = append(tmp.path(), &key, entries).unwrap();
        let e = verify::verify(&dir_source(tmp.path()), &key.vkey)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "want {want:?}, got {e}");
    }
}

#[test]
fn edited_entry_bundle_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let _ = append(tmp.path(), &key, ocsps(0..300)).unwrap();
    // Byte 60 lies in entry 0's OCSP digest: the entry still parses, its hash changes.
    flip(&tmp.path().join("tile/entries/000"), 60);
    let e = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap_err();
    assert!(
        matches!(&e, Error::TileMismatch { path } if path == "tile/0/000"),
        "{e}"
    );
    // An entry edited into an unknown type is named by index.
    flip(&tmp.path().join("tile/entries/000"), 60);
    let p = tmp.path().join("tile/entries/001.p/44");
    let mut b = std::fs::read(&p).unwrap();
    b[3] = 0x63; // entry 256's type byte, after its 2-byte length and version
    std::fs::write(&p, b).unwrap();
    let e = verify::verify(&dir_source(tmp.path()), &key.vkey)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("entry 256: type: unknown entry type 99"),
        "{e}"
    );
}

#[test]
fn edited_hash_tile_is_caught_at_every_level() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let _ = append(tmp.path(), &key, ocsps(0..300)).unwrap();
    for tile in ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"] {
        let p = tmp.path().join(tile);
        flip(&p, 5);
        let e = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap_err();
        assert!(
            matches!(&e, Error::TileMismatch { path } if path == tile),
            "{tile}: {e}"
        );
        assert!(
            e.to_string()
                .contains("does not match the hashes recomputed"),
            "{e}"
        );
        flip(&p, 5);
    }
    let _ = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap();
}

#[test]
fn checkpoint_signed_by_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let other = TestKey::new(ORIGIN);
    let _ = append(tmp.path(), &other, ocsps(0..10)).unwrap();
    let e = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap_err();
    assert!(matches!(e, Error::Signature(_)), "{e}");
    assert!(
        e.to_string()
            .contains("no signature by log.strongroom.example/test+"),
        "{e}"
    );
    // The writer refuses to extend a log whose checkpoint it cannot verify.
    assert!(matches!(
        append(tmp.path(), &key, ocsps(10..11)),
        Err(Error::Signature(_))
    ));
    // A signature line of the right key ID over another body does not verify either.
    let note = std::fs::read_to_string(tmp.path().join("checkpoint")).unwrap();
    let forged = note.replacen("\n10\n", "\n11\n", 1);
    let e = note::open_checkpoint(forged.as_bytes(), &other.vkey).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
}

#[test]
fn checkpoint_larger_than_the_entries_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let cp = append(tmp.path(), &key, ocsps(0..300)).unwrap();
    // A validly signed checkpoint claiming entries that were never published.
    let big = Checkpoint { size: 310, ..cp };
    let note = note::sign_checkpoint(&big, &key.vkey, key.signer()).unwrap();
    std::fs::write(tmp.path().join("checkpoint"), note).unwrap();
    let e = verify::verify(&dir_source(tmp.path()), &key.vkey)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "tile/entries/001.p/54: missing, but the checkpoint's tree size 310 needs it"
    );
    // No checkpoint at all.
    std::fs::remove_file(tmp.path().join("checkpoint")).unwrap();
    let e = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap_err();
    assert_eq!(
        e.to_string(),
        "checkpoint: no checkpoint file is published there"
    );
}

#[test]
fn writer_refuses_to_sign_a_tree_inconsistent_with_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let cp = append(tmp.path(), &key, ocsps(0..300)).unwrap();
    // The last signed checkpoint says another root for the same size: the tiles fork from it.
    let mut root = cp.root;
    root[0] ^= 1;
    let forked = Checkpoint { root, ..cp };
    std::fs::write(
        tmp.path().join("checkpoint"),
        note::sign_checkpoint(&forked, &key.vkey, key.signer()).unwrap(),
    )
    .unwrap();
    let before = std::fs::read(tmp.path().join("checkpoint")).unwrap();
    let e = append(tmp.path(), &key, ocsps(300..400))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("tree of size 400 is not consistent with the checkpoint of size 300"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(tmp.path().join("checkpoint")).unwrap(),
        before,
        "checkpoint unchanged"
    );
}

#[test]
fn full_tiles_are_immutable() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let _ = append(tmp.path(), &key, ocsps(0..200)).unwrap();
    // A killed writer published full tiles for entries 200..256 and died before the checkpoint.
    let crashed = tempfile::tempdir().unwrap();
    let _ = append(crashed.path(), &key, ocsps(0..256)).unwrap();
    for f in ["tile/entries/000", "tile/0/000"] {
        std::fs::copy(crashed.path().join(f), tmp.path().join(f)).unwrap();
    }
    // Different entries at those indices would change the full tiles: refused.
    let e = append(tmp.path(), &key, ocsps(1000..1100)).unwrap_err();
    assert!(
        matches!(&e, Error::FullTileChanged { path } if path == "tile/entries/000"),
        "{e}"
    );
    // The same entries replay onto them; the full tiles are left untouched (same inode).
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(tmp.path().join("tile/0/000"))
        .unwrap()
        .ino();
    let cp = append(tmp.path(), &key, ocsps(200..300)).unwrap();
    assert_eq!(
        std::fs::metadata(tmp.path().join("tile/0/000"))
            .unwrap()
            .ino(),
        ino
    );
    assert_eq!(cp.size, 300);
    let _ = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap();
}

#[test]
fn writer_recovers_from_a_killed_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = TestKey::new(ORIGIN);
    let _ = append(d, &key, ocsps(0..100)).unwrap();
    // What a writer killed mid-batch leaves: half-written temporary files, and partial tiles for
    // a size no checkpoint covers (one garbage, at exactly the width the next batch produces).
    std::fs::write(d.join("tile/entries/.000.p.tmp"), b"half").unwrap();
    std::fs::create_dir_all(d.join("tile/0/000.p")).unwrap();
    std::fs::write(d.join("tile/0/000.p/.150.tmp"), b"half").unwrap();
    std::fs::write(d.join("tile/0/000.p/150"), vec![0xAA; 150 * 32]).unwrap();
    std::fs::write(d.join("tile/entries/000.p/150"), b"garbage").unwrap();
    std::fs::write(d.join("tile/entries/000.p/120"), b"garbage").unwrap();
    // The published log still verifies at its checkpoint.
    let _ = verify::verify(&dir_source(d), &key.vkey).unwrap();
    // The next batch replaces the partial tiles whole and the log verifies.
    let cp = append(d, &key, ocsps(100..150)).unwrap();
    assert_eq!(cp.size, 150);
    let _ = verify::verify(&dir_source(d), &key.vkey).unwrap();
    // A killed writer that left the checkpoint's own partial tile damaged is caught, not extended.
    flip(&d.join("tile/0/000.p/150"), 0);
    let e = append(d, &key, ocsps(150..160)).unwrap_err();
    assert!(
        matches!(&e, Error::TileMismatch { path } if path == "tile/0/000.p/150"),
        "{e}"
    );
}

/// A tiny static file server on loopback for the log directory: GET only, 404 when missing.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _ = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let resp = match std::fs::read(dir.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let mut v = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    v.extend_from_slice(&body);
                    v
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = s.write_all(&resp);
        }
    });
    format!("http://{addr}")
}

#[test]
fn verify_and_prove_over_http_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let cps = mixed_log(tmp.path(), &key);
    let url = serve(tmp.path().to_path_buf());
    let src = Source::parse(&url);
    assert!(matches!(src, Source::Http(_)));
    assert_eq!(
        verify::verify(&src, &key.vkey).unwrap().checkpoint.size,
        777
    );
    let _ = verify::prove_index(&src, &key.vkey, 300).unwrap();
    let _ = verify::consistency(&src, &key.vkey, &cps[0], &cps[5]).unwrap();
    let vkey = key.vkey.to_string();
    let out = Command::new(common::strongroom_bin())
        .args(["log", "prove", &url, "--key", &vkey, "--index", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    // Tampering is caught over HTTP too.
    flip(&tmp.path().join("tile/0/001"), 7);
    let e = verify::verify(&src, &key.vkey).unwrap_err();
    assert!(
        matches!(&e, Error::TileMismatch { path } if path == "tile/0/001"),
        "{e}"
    );
}

/// `go` and x/mod's sumdb packages in GOPATH mode, or why not.
fn go() -> Result<(), String> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Err("go not found (softhsm-setup/install --test-tools installs golang-go)".into());
    }
    if !Path::new("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog").is_dir() {
        return Err("golang.org/x/mod not found (softhsm-setup/install --test-tools installs golang-golang-x-mod-dev)".into());
    }
    Ok(())
}

fn tlogcheck(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = root.join("target/go-cache");
    let out = Command::new("go")
        .arg("run")
        .arg(root.join("tests/go/tlogcheck/main.go"))
        .args(args)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tlogcheck {args:?}: {}",
        common::text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn strongroom_out(args: &[&str], file: &Path) {
    let out = Command::new(common::strongroom_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", common::text(&out));
    std::fs::write(file, out.stdout).unwrap();
}

#[test]
fn go_sumdb_checks_signature_tree_hash_and_proofs() {
    if let Err(why) = go() {
        common::skip(&why);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let key = TestKey::new(ORIGIN);
    let cps = mixed_log(&log, &key);
    // Grow past one level-1 tile so Go's tile reader walks two levels.
    let _ = append(&log, &key, ocsps(777..66_000)).unwrap();
    let dir = log.to_str().unwrap();
    let vkey = key.vkey.to_string();
    assert_eq!(tlogcheck(&["tree", dir, &vkey]), "ok tree 66000\n");
    assert_eq!(tlogcheck(&["entries", dir, &vkey]), "ok entries 66000\n");
    let proof = tmp.path().join("proof");
    for i in ["0", "255", "256", "777", "65535", "65999"] {
        strongroom_out(&["log", "prove", dir, "--key", &vkey, "--index", i], &proof);
        assert_eq!(
            tlogcheck(&["inclusion", dir, &vkey, proof.to_str().unwrap()]),
            format!("ok inclusion {i} in 66000\n")
        );
    }
    let new = log.join("checkpoint");
    for (i, old) in cps.iter().enumerate() {
        let old_file = tmp.path().join(format!("old{i}"));
        std::fs::write(&old_file, old).unwrap();
        let (o, n) = (old_file.to_str().unwrap(), new.to_str().unwrap());
        strongroom_out(
            &["log", "consistency", o, n, "--log", dir, "--key", &vkey],
            &proof,
        );
        let got = tlogcheck(&["consistency", &vkey, o, n, proof.to_str().unwrap()]);
        assert!(got.starts_with("ok consistency"), "{got}");
    }
    // Go refuses what we refuse: a tampered proof, and a checkpoint under another key.
    let text = std::fs::read_to_string(&proof).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("proof "))
        .unwrap()
        .to_owned();
    let bad = text.replacen(&line, &format!("proof {}", "A".repeat(43) + "="), 1);
    std::fs::write(&proof, bad).unwrap();
    let out = Command::new("go")
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/tlogcheck/main.go"))
        .args([
            "consistency",
            &vkey,
            tmp.path().join("old0").to_str().unwrap(),
            new.to_str().unwrap(),
            proof.to_str().unwrap(),
        ])
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/go-cache"),
        )
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "Go accepted a tampered consistency proof"
    );
    let other = TestKey::new(ORIGIN).vkey.to_string();
    let out = Command::new("go")
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/tlogcheck/main.go"))
        .args(["tree", dir, &other])
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/go-cache"),
        )
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "Go accepted a checkpoint under another key"
    );
}

/// Builds a 1,000,000-entry log (small OCSP-batch entries) and times `verify`.
/// Run: cargo test --release --test tlog million -- --ignored --nocapture
#[test]
#[ignore = "builds a 1,000,000-entry log; run by hand for the figure"]
fn million_entry_log_verifies_in_under_10_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::new(ORIGIN);
    let t = std::time::Instant::now();
    let _ = append(tmp.path(), &key, ocsps(0..1_000_000)).unwrap();
    println!(
        "wrote 1,000,000 entries in {:.2?}; peak RSS so far {}",
        t.elapsed(),
        peak_rss()
    );
    let t = std::time::Instant::now();
    let r = verify::verify(&dir_source(tmp.path()), &key.vkey).unwrap();
    let took = t.elapsed();
    println!(
        "verified {} entries in {took:.2?}; peak RSS {}",
        r.checkpoint.size,
        peak_rss()
    );
    let t = std::time::Instant::now();
    let out = Command::new(common::strongroom_bin())
        .args([
            "log",
            "verify",
            tmp.path().to_str().unwrap(),
            "--key",
            &key.vkey.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    println!("strongroom log verify: {:.2?}", t.elapsed());
    assert!(took.as_secs_f64() < 10.0, "verify took {took:?}");
    // Writing and verifying hold the right edge of the tree, not the log: a few MiB.
    let kib: u64 = peak_rss().trim_end_matches(" kB").parse().unwrap();
    assert!(kib < 64 * 1024, "peak RSS {kib} kB");
}

/// This process's peak resident set size (VmHWM), as /proc reports it.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l["VmHWM:".len()..].trim().to_owned())
        .unwrap_or_default()
}
