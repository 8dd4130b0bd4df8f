//! `strongroom-bench crl`: one CRL with N entries (a million by default) built, signed and
//! verified by the service over its socket, with the wall time, the CRL's size and the
//! service's peak RSS (VmHWM), and their ratio.
//!
//! ```text
//!   setup:   throwaway token, root + issuing CA, service config with crl-shards = 128 and
//!            crl-allow-unknown-serials (issuing a million certificates first would take hours)
//!   request: N entries whose serials all fall in one shard, reasons mixed, one POST /v1/crls
//!   report:  wall time of the request (sent → whole response read), the service's CPU time for
//!            it (less sensitive to a busy machine), CRL bytes, service VmRSS before and VmHWM
//!            after, VmHWM / CRL bytes; `openssl crl -verify` of the result
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64ct::{Base64, Encoding};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    ceremony, cpu_seconds, peak_rss_kib, round, round3, rss_kib, start_service, write_config,
};
use crate::alg::KeyType;
use crate::demo::Throwaway;

/// What to measure.
#[derive(Clone, Debug)]
pub struct CrlOptions {
    /// A new directory for the token, certificates, config and audit store.
    pub out: PathBuf,
    /// The issuing CA's key type.
    pub issuer: KeyType,
    /// Entries in the CRL.
    pub entries: usize,
    /// The shard every entry falls in (of 128).
    pub shard: u32,
}

const SHARDS: u32 = 128;

/// Reason names cycled through the entries (`None`: unspecified, no reasonCode).
const REASONS: [Option<&str>; 6] = [
    None,
    Some("keyCompromise"),
    Some("superseded"),
    Some("cessationOfOperation"),
    Some("affiliationChanged"),
    Some("privilegeWithdrawn"),
];

/// The request body, written straight as text: serial k is the instance prefix 01, twelve
/// bytes of SHA-256(k) and the four bytes k·128 + shard, so every serial is distinct, 17 bytes
/// long like the service's own, and in `shard`.
fn body(o: &CrlOptions, now: SystemTime) -> Result<Vec<u8>, String> {
    let rfc3339 = crate::time::rfc3339;
    let mut text = String::with_capacity(o.entries * 100 + 200);
    let _ = write!(
        text,
        r#"{{"issuer":"bench","shard":{},"this_update":"{}","entries":["#,
        o.shard,
        rfc3339(now)
    );
    for k in 0..o.entries {
        let tail = u32::try_from(k)
            .ok()
            .and_then(|k| k.checked_mul(SHARDS)?.checked_add(o.shard))
            .ok_or("too many entries for 4-byte serial tails")?;
        let hash = Sha256::digest((k as u64).to_be_bytes());
        let revoked_at = now - Duration::from_secs((k % 86_400) as u64);
        if k > 0 {
            text.push(',');
        }
        let _ = write!(
            text,
            r#"{{"serial":"01{}{tail:08x}","revoked_at":"{}""#,
            hex::encode(&hash[..12]),
            rfc3339(revoked_at)
        );
        if let Some(reason) = REASONS[k % REASONS.len()] {
            let _ = write!(text, r#","reason":"{reason}""#);
        }
        text.push('}');
    }
    text.push_str("]}");
    Ok(text.into_bytes())
}

/// Sets up, sends the one request, checks the CRL and prints the report.
pub fn run_crl(o: &CrlOptions) -> Result<(), String> {
    if o.shard >= SHARDS {
        return Err(format!("--shard must be below {SHARDS}"));
    }
    let t = Throwaway::create(&o.out, None, &["bench"])?;
    ceremony(&t, o.issuer)?;
    let config = write_config(&t, 2, super::Tuning::default())?;
    let text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
    std::fs::write(
        &config,
        text.replace(
            "crl-shards = 128\n",
            "crl-shards = 128\ncrl-allow-unknown-serials = true\n",
        ),
    )
    .map_err(|e| e.to_string())?;

    let now = SystemTime::now();
    let started = Instant::now();
    let body = body(o, now)?;
    println!(
        "\n== request: {} entries, {:.1} MiB of JSON (built in {:.1} s)",
        o.entries,
        body.len() as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    let (mut service, socket) = start_service(&t, &config)?;
    let idle_rss_kib = rss_kib(service.id());
    let cpu_before = cpu_seconds(service.id());
    let body_bytes = body.len();
    let result = send(&socket, body);
    let peak_rss_kib = peak_rss_kib(service.id());
    let cpu = cpu_seconds(service.id())
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let stopped = super::stop_child(&mut service, "the service");
    let (status, reply, elapsed) = result?;
    let _ = stopped?;
    if status != 201 {
        return Err(format!(
            "the service answered {status}: {}",
            String::from_utf8_lossy(&reply[..reply.len().min(2000)])
        ));
    }
    let reply: serde_json::Value =
        serde_json::from_slice(&reply).map_err(|e| format!("response: {e}"))?;
    let der = Base64::decode_vec(reply["crl"].as_str().unwrap_or_default())
        .map_err(|e| format!("response crl: {e}"))?;
    let crl_path = t.dir.join("bench.crl");
    std::fs::write(&crl_path, &der).map_err(|e| e.to_string())?;
    let listed = <x509_cert::crl::CertificateList as der::Decode>::from_der(&der)
        .map_err(|e| format!("the CRL does not parse: {e}"))?
        .tbs_cert_list
        .revoked_certificates
        .map_or(0, |r| r.len());
    if listed != o.entries {
        return Err(format!("the CRL lists {listed} entries, not {}", o.entries));
    }
    let verified = openssl_verify(&crl_path, &t.dir.join("issuer.pem"));
    let peak = peak_rss_kib.map(|k| k as f64 * 1024.0);
    let report = json!({
        "issuer_key": o.issuer.to_string(),
        "entries": o.entries,
        "request_mib": round(body_bytes as f64 / 1048576.0),
        "wall_seconds": round3(elapsed.as_secs_f64()),
        "service_cpu_seconds": cpu.map(round3),
        "crl_bytes": der.len(),
        "crl_mib": round(der.len() as f64 / 1048576.0),
        "service_idle_rss_mib": idle_rss_kib.map(|k| round(k as f64 / 1024.0)),
        "service_peak_rss_mib": peak_rss_kib.map(|k| round(k as f64 / 1024.0)),
        "peak_rss_per_crl_byte": peak.map(|p| round3(p / der.len() as f64)),
        "openssl_crl_verify": verified,
        "crl": crl_path.display().to_string(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    match verified {
        Some(false) => Err("openssl crl -verify rejected the CRL".into()),
        _ => Ok(()),
    }
}

/// `openssl crl -verify` of a DER CRL; `None` when openssl is not installed.
fn openssl_verify(crl: &std::path::Path, issuer: &std::path::Path) -> Option<bool> {
    let out = std::process::Command::new("openssl")
        .args(["crl", "-noout", "-verify", "-inform", "DER", "-in"])
        .arg(crl)
        .arg("-CAfile")
        .arg(issuer)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Some(out.status.success() && text.contains("verify OK"))
}

/// One POST over the socket; (status, body, time from sending to the last byte read).
fn send(socket: &std::path::Path, body: Vec<u8>) -> Result<(u16, Vec<u8>, Duration), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut client = crate::client::Client::connect(socket).await?;
        let started = Instant::now();
        let reply = client
            .request_bytes("POST", "/v1/crls", body, "application/json")
            .await?;
        Ok((reply.status, reply.body, started.elapsed()))
    })
}
