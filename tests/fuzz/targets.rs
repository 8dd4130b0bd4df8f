//! The bodies of strongroom's fuzz targets, one function per target.
//!
//! Each takes arbitrary bytes, feeds them to the code that parses untrusted input and checks
//! that it answers with a value or an error that names its field and rule; a panic is a bug.
//! The libFuzzer binaries in `fuzz_targets/` call these, and so does strongroom's
//! `tests/fuzz_corpus.rs`, which runs them over the seed corpus in `seeds/` on every
//! `cargo test` (no libFuzzer needed there).
//!
//! | target | input | code under test |
//! |---|---|---|
//! | `request` | a JSON body | the service's request types, then SPKI/CSR decoding, key and name policy, times, SCT lists |
//! | `names` | lines of names (`ip:` marks an address) | `policy::check_names` |
//! | `csr` | DER bytes | `policy::csr_public_key` (as PEM) and `policy::decode_spki` (as base64), then `policy::check_key` |
//! | `script` | a TOML ceremony script | `ceremony::script::Script::parse` (validation only, no HSM) |

#![allow(dead_code, unreachable_pub)] // each fuzz binary uses one function

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64ct::{Base64, Encoding as _};
use strongroom::ceremony::script::Script;
use strongroom::policy::{self, PolicyConfig};
use strongroom::revoke::{CrlRequest, OcspBatchRequest, OcspRequest, OcspStatus};
use strongroom::service::wire::{FinalRequest, IssueRequest};
use strongroom::time::parse_time;

/// The policy the targets check against: the default, plus one blocked name and key so that
/// the blocklist paths run too.
fn config() -> &'static PolicyConfig {
    static CONFIG: OnceLock<PolicyConfig> = OnceLock::new();
    CONFIG.get_or_init(|| PolicyConfig {
        blocked_names: vec![".blocked.example.com".into()],
        blocked_keys: vec!["00".repeat(32)],
        ..PolicyConfig::default()
    })
}

/// A refusal must say which field and which rule.
fn named(e: &policy::Error) {
    assert!(!e.code.is_empty(), "policy error without a code: {e:?}");
    assert!(!e.field.is_empty(), "policy error without a field: {e:?}");
    assert!(!e.rule.is_empty(), "policy error without a rule: {e:?}");
}

fn time(s: &str) {
    if let Err(e) = parse_time(s) {
        assert!(e.contains("RFC 3339"), "time error without its rule: {e}");
    }
}

fn key(spki: &spki::SubjectPublicKeyInfoOwned) {
    if let Err(e) = policy::check_key(spki, config()) {
        named(&e);
    }
}

fn names_of(dns: &[String], ips: &[String]) {
    match policy::check_names(dns, ips, config()) {
        Ok(checked) => {
            // What passed is what was asked for, and passes again unchanged.
            assert_eq!(checked.dns.len(), dns.len());
            assert_eq!(checked.ips.len(), ips.len());
            let ips_again: Vec<String> = checked.ips.iter().map(|i| i.to_string()).collect();
            let again = policy::check_names(&checked.dns, &ips_again, config())
                .expect("accepted names are accepted again");
            assert_eq!(again, checked);
            for d in &checked.dns {
                assert!(d.len() <= 253 && d.is_ascii(), "accepted {d:?}");
            }
        }
        Err(e) => {
            named(&e);
            assert!(
                e.field.starts_with("dns_names") || e.field.starts_with("ip_addresses"),
                "names error about another field: {e:?}"
            );
        }
    }
}

fn statuses(list: &[OcspStatus]) {
    for s in list {
        if let Some(t) = &s.revoked_at {
            time(t);
        }
        let _ = hex::decode(&s.serial);
    }
}

/// `request`: a JSON body as the service receives it, decoded as each request type, then every
/// check that needs no HSM and no audit store.
pub fn request(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<IssueRequest>(data) {
        let spki = match (&req.public_key, &req.csr) {
            (Some(b64), _) => Some(policy::decode_spki(b64)),
            (None, Some(pem)) => Some(policy::csr_public_key(pem)),
            (None, None) => None,
        };
        match spki {
            Some(Ok(spki)) => key(&spki),
            Some(Err(e)) => named(&e),
            None => {}
        }
        names_of(&req.dns_names, &req.ip_addresses);
        if let Some(t) = &req.not_before {
            time(t);
        }
    }
    if let Ok(req) = serde_json::from_slice::<FinalRequest>(data) {
        if let Ok(list) = Base64::decode_vec(req.sct_list.trim()) {
            if let Err(e) = strongroom::issue::check_sct_list(&list) {
                named(&e);
            }
        }
    }
    if let Ok(req) = serde_json::from_slice::<CrlRequest>(data) {
        time(&req.this_update);
        if let Some(t) = &req.next_update {
            time(t);
        }
        for e in &req.entries {
            time(&e.revoked_at);
            let _ = hex::decode(&e.serial);
        }
    }
    if let Ok(req) = serde_json::from_slice::<OcspRequest>(data) {
        time(&req.this_update);
        time(&req.next_update);
        statuses(std::slice::from_ref(&req.status));
    }
    if let Ok(req) = serde_json::from_slice::<OcspBatchRequest>(data) {
        time(&req.this_update);
        time(&req.next_update);
        statuses(&req.statuses);
    }
}

/// `names`: one name a line; a line starting `ip:` is an iPAddress, any other a dNSName.
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for line in text.split('\n') {
        match line.strip_prefix("ip:") {
            Some(ip) => ips.push(ip.to_string()),
            None => dns.push(line.to_string()),
        }
    }
    names_of(&dns, &ips);
}

/// `csr`: DER bytes, tried as a PKCS#10 request (wrapped in PEM, as the `csr` field carries it)
/// and as a SubjectPublicKeyInfo (in base64, as the `public_key` field carries it).
pub fn csr(data: &[u8]) {
    if let Ok(pem) =
        pem_rfc7468::encode_string("CERTIFICATE REQUEST", pem_rfc7468::LineEnding::LF, data)
    {
        match policy::csr_public_key(&pem) {
            Ok(spki) => key(&spki),
            Err(e) => named(&e),
        }
    }
    match policy::decode_spki(&Base64::encode_string(data)) {
        Ok(spki) => key(&spki),
        Err(e) => named(&e),
    }
    // The same bytes as text: a PEM CSR given as is.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = policy::csr_public_key(text) {
            named(&e);
        }
    }
}

/// An empty directory that scripts are validated against: input files are missing and no
/// output exists.
fn ceremony_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("strongroom-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        dir
    })
}

/// `script`: a ceremony script, parsed and validated as `strongroom ceremony check` does;
/// nothing is written and no HSM is opened.
pub fn script(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    match Script::parse(text, ceremony_dir(), started) {
        Ok(script) => {
            for step in &script.steps {
                assert!(!step.id().is_empty());
            }
        }
        Err(e) => {
            assert!(!e.field().is_empty(), "script error without a field: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
