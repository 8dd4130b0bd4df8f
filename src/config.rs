//! The signing service's configuration (`strongroom serve --config strongroom.toml`).
//!
//! [`RawConfig`] is what the TOML says (unknown keys are errors); [`Config`] is the checked
//! result, with every issuer's certificate loaded. Every key is documented in
//! docs/CONFIGURATION.md (the README's "Configuration" section lists the tables).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use x509_cert::Certificate;

use crate::hsm::{KeyUri, TokenSelector};
use crate::lint::SubscriberLimit;
use crate::policy::PolicyConfig;
use crate::secret::PinSource;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// `[service]`
    pub service: RawService,
    /// `[hsm]`
    pub hsm: RawHsm,
    /// `[[caller]]`: who may connect.
    #[serde(default, rename = "caller")]
    pub callers: Vec<CallerRule>,
    /// `[[issuer]]`
    #[serde(rename = "issuer")]
    pub issuers: Vec<RawIssuer>,
    /// `[[profile]]`
    #[serde(rename = "profile")]
    pub profiles: Vec<RawProfile>,
    /// `[policy]`
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// Default `service.audit-commit-delay-us`.
pub const DEFAULT_COMMIT_DELAY_US: u64 = 1000;

/// `service.request-threads-nice` when the configuration does not set it.
pub const DEFAULT_REQUEST_THREADS_NICE: i32 = 10;

/// `[service]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawService {
    /// The Unix socket path.
    pub socket: PathBuf,
    /// Socket file mode, octal string; default "0660".
    pub socket_mode: Option<String>,
    /// Group owning the socket (numeric gid); default: the service's own group.
    pub socket_gid: Option<u32>,
    /// Run even as root (uid 0). Default false.
    #[serde(default)]
    pub allow_root: bool,
    /// The audit store (SQLite file).
    pub store: PathBuf,
    /// The one-byte serial-number prefix of this instance (1..=127).
    pub instance_prefix: u8,
    /// Maximum request body, bytes; default 65536.
    pub max_body_bytes: Option<usize>,
    /// Maximum body of a `POST /v1/crls` request (and of `/v1/ocsp/batch`), bytes; default
    /// 256 MiB. A CRL request is read as it arrives and refused with 413 `request.too_large` as
    /// soon as it passes this (or at once when its Content-Length does); one with a million
    /// entries is about 100 MiB of JSON.
    pub max_crl_body_bytes: Option<usize>,
    /// Maximum size of a request's head (request line and headers), bytes; default 16384,
    /// at least 8192. Larger heads get 431.
    pub max_header_bytes: Option<usize>,
    /// Seconds a client has to send a whole request head, counted from when the connection is
    /// ready for it (accepted, or the previous response sent: an idle keep-alive connection is
    /// closed after the same time); default 10. Then the connection is closed.
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a client has to send a request's whole body once its head is read; default 30.
    /// Then it gets 408 `request.timeout`.
    pub body_timeout_seconds: Option<u64>,
    /// Connections served at once; default 256. Further connections wait in the socket's
    /// backlog until one closes.
    pub max_connections: Option<usize>,
    /// The nice value (0..=19, default 10) of the threads that handle requests (the async
    /// runtime's), so that on a machine where the token shares the CPU (SoftHSM) the HSM
    /// session workers and the audit writer, which keep the process's priority, go first.
    pub request_threads_nice: Option<i32>,
    /// Microseconds (0..=10000, default 1000) that the audit writer may hold a batch open for
    /// the records of certificates the HSM is signing, so that they share one fsync; 0 commits
    /// each batch at once. A batch is never held when no such record is on its way.
    pub audit_commit_delay_us: Option<u64>,
}

/// `[hsm]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawHsm {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// Token label.
    pub token: Option<String>,
    /// Token serial number.
    pub token_serial: Option<String>,
    /// Where the user PIN comes from (`{ file = ... }`, `{ env = ... }` or `{ prompt = true }`).
    pub pin: toml::Value,
    /// Logged-in sessions in the pool; default 2.
    pub sessions: Option<usize>,
    /// Deadline of every HSM call, in milliseconds (1..=600000); default 2000.
    pub call_timeout_ms: Option<u64>,
    /// SoftHSM only: the `softhsm2.conf` to use (strongroom restarts itself with
    /// `SOFTHSM2_CONF` set to it, since SoftHSM reads that variable once, at start).
    pub softhsm2_conf: Option<PathBuf>,
}

/// `[[caller]]`: a uid or gid allowed to use the socket (SO_PEERCRED).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CallerRule {
    /// A name for logs and audit records.
    pub name: String,
    /// The peer's uid, or
    pub uid: Option<u32>,
    /// the peer's gid.
    pub gid: Option<u32>,
}

/// `[[issuer]]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawIssuer {
    /// Name used in requests.
    pub name: String,
    /// The issuer certificate (PEM); relative to the config file.
    pub certificate: PathBuf,
    /// The issuer key on the token (RFC 7512 URI).
    pub key: String,
    /// The issuer certificate's URL (AIA caIssuers).
    pub ca_issuers_url: String,
    /// CRL URL prefix; a certificate's CRLDP is `{prefix}{shard}.crl`.
    pub crl_url_prefix: String,
    /// Number of CRL shards; default 1.
    pub crl_shards: Option<u32>,
    /// Accept CRL entries for serials this service has no record of; default false.
    #[serde(default)]
    pub crl_allow_unknown_serials: bool,
    /// Sign OCSP responses with a delegated responder (RFC 6960 4.2.2.2) instead of the issuer
    /// key; default: the issuer key signs them.
    pub ocsp_responder: Option<RawOcspResponder>,
}

/// `ocsp-responder = { certificate = "...", key = "pkcs11:..." }` in an `[[issuer]]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawOcspResponder {
    /// The delegated responder certificate (PEM), issued by this issuer; relative to the config
    /// file.
    pub certificate: PathBuf,
    /// The responder's key on the token (RFC 7512 URI).
    pub key: String,
}

/// A delegated OCSP responder: its certificate and key. Whether they fit the issuer is checked
/// when the service starts, with the key on the token (see `issuer::Issuer::load`).
#[derive(Clone, Debug)]
pub struct OcspResponderConfig {
    /// The responder certificate.
    pub certificate: Certificate,
    /// The key URI.
    pub key: KeyUri,
}

/// `[[profile]]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawProfile {
    /// Name used in requests.
    pub name: String,
    /// Certificate lifetime in hours (90 days = 2160).
    pub validity_hours: u64,
    /// Maximum backdating of notBefore, seconds (at most 3600); default 3600.
    pub max_backdate_seconds: Option<u64>,
    /// Add keyEncipherment for RSA keys (BR 7.1.2.7.11); default false.
    #[serde(default)]
    pub rsa_key_encipherment: bool,
    /// Put the first dNSName in the subject commonName when it fits; default true.
    pub common_name: Option<bool>,
}

/// A checked issuer.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Name used in requests.
    pub name: String,
    /// The issuer certificate.
    pub certificate: Certificate,
    /// Its PEM, for `GET /v1/issuers`.
    pub certificate_pem: String,
    /// The key URI.
    pub key: KeyUri,
    /// AIA caIssuers URL.
    pub ca_issuers_url: String,
    /// CRL URL prefix.
    pub crl_url_prefix: String,
    /// Number of CRL shards.
    pub crl_shards: u32,
    /// Accept CRL entries for unknown serials.
    pub crl_allow_unknown_serials: bool,
    /// The delegated OCSP responder, if responses are not signed by the issuer key.
    pub ocsp_responder: Option<OcspResponderConfig>,
}

/// A checked profile.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProfileConfig {
    /// Name used in requests.
    pub name: String,
    /// Certificate lifetime.
    pub validity: Duration,
    /// Maximum backdating of notBefore.
    pub max_backdate: Duration,
    /// keyEncipherment for RSA keys.
    pub rsa_key_encipherment: bool,
    /// commonName from the first dNSName.
    pub common_name: bool,
}

impl ProfileConfig {
    /// What an operator should be told at start about this profile's lifetime against the BR
    /// 6.3.2 schedule at `now`, if anything: over the limit in force (the lint refuses every
    /// certificate), else over the next limit (the lint will refuse them from its date).
    pub fn validity_warning(&self, now: std::time::SystemTime) -> Option<String> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let seconds = self.validity.as_secs();
        let over = |limit: SubscriberLimit, when: &str| {
            (!limit.allows(seconds)).then(|| {
                format!(
                    "profile {:?}: a lifetime of {} hours ({} days) is over the {} days BR 6.3.2 \
                     allows for a certificate issued {}; {when} every request for it is \
                     refused (500 internal.lint) and nothing is signed",
                    self.name,
                    seconds / 3600,
                    seconds.div_ceil(86_400),
                    limit.max_days,
                    limit.period,
                )
            })
        };
        over(SubscriberLimit::for_not_before(now), "now")
            .or_else(|| over(SubscriberLimit::next_after(now)?, "from then on"))
    }
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Socket path.
    pub socket: PathBuf,
    /// Socket mode bits.
    pub socket_mode: u32,
    /// Socket group.
    pub socket_gid: Option<u32>,
    /// Run as root.
    pub allow_root: bool,
    /// Audit store path.
    pub store: PathBuf,
    /// Serial prefix.
    pub instance_prefix: u8,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Body limit for CRL requests (`max-crl-body-bytes`).
    pub max_crl_body_bytes: usize,
    /// Request head limit.
    pub max_header_bytes: usize,
    /// Time to send a request head.
    pub header_timeout: Duration,
    /// Time to send a request body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Nice value of the request threads.
    pub request_threads_nice: i32,
    /// How long the audit writer may hold a batch open for announced records.
    pub audit_commit_delay: Duration,
    /// PKCS#11 module.
    pub module: PathBuf,
    /// Token.
    pub token: TokenSelector,
    /// PIN source.
    pub pin: PinSource,
    /// Session pool size.
    pub sessions: usize,
    /// Deadline of every HSM call: a call that takes longer marks the HSM unavailable.
    pub hsm_call_timeout: Duration,
    /// SoftHSM configuration file to run with, if any.
    pub softhsm2_conf: Option<PathBuf>,
    /// Allowed callers.
    pub callers: Vec<CallerRule>,
    /// Issuers by name, in file order.
    pub issuers: Vec<IssuerConfig>,
    /// Profiles by name.
    pub profiles: HashMap<String, ProfileConfig>,
    /// Issuance policy.
    pub policy: PolicyConfig,
}

/// Why a configuration file could not be used. Each message starts with the file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is not TOML of the configuration's shape (unknown key, wrong type, ...).
    #[error("{}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message.
        message: String,
    },
    /// A value breaks a rule: `message` starts with the key, e.g. `service.socket-mode: ...`.
    #[error("{}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key and the rule it breaks.
        message: String,
    },
}

/// Why [`Config::check`] refuses a configuration; [`Error::Invalid`] carries its text.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    /// A value breaks a rule.
    #[error("{key}: {rule}")]
    Rule {
        /// The key, e.g. `service.socket-mode` or `issuer[0].key`.
        key: String,
        /// The rule it breaks.
        rule: String,
    },
    /// An issuer certificate could not be encoded as PEM again.
    #[error(transparent)]
    Pem(crate::x509::Error),
}

/// An [`Invalid::Rule`].
fn invalid(key: impl Into<String>, rule: impl Into<String>) -> Invalid {
    Invalid::Rule {
        key: key.into(),
        rule: rule.into(),
    }
}

/// BR 7.1.2.7 and our rule: notBefore is backdated by at most one hour.
const MAX_BACKDATE: Duration = Duration::from_secs(3600);

impl Config {
    /// Reads and checks a configuration file. Relative paths are relative to its directory.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`] or [`Error::Invalid`], naming the file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::check(raw, base).map_err(|e| Error::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    fn check(raw: RawConfig, base: &Path) -> Result<Config, Invalid> {
        let rel = |p: &Path| crate::ceremony::script::resolve(base, p);
        let s = raw.service;
        let socket_mode = match &s.socket_mode {
            None => 0o660,
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| {
                    invalid(
                        "service.socket-mode",
                        format!("{m:?} is not an octal mode like \"0660\""),
                    )
                })?,
        };
        if socket_mode & 0o007 != 0 {
            return Err(invalid(
                "service.socket-mode",
                "must not give other users access (e.g. 0660)",
            ));
        }
        if !(1..=127).contains(&s.instance_prefix) {
            return Err(invalid(
                "service.instance-prefix",
                "must be 1..=127 so serials stay positive and non-zero-led (RFC 5280 4.1.2.2)",
            ));
        }
        let max_header_bytes = s.max_header_bytes.unwrap_or(16_384);
        if !(8192..=1 << 20).contains(&max_header_bytes) {
            return Err(invalid(
                "service.max-header-bytes",
                "must be 8192..=1048576",
            ));
        }
        let seconds = |v: Option<u64>, default: u64, key: &str| match v.unwrap_or(default) {
            0 => Err(invalid(format!("service.{key}"), "must be at least 1")),
            n => Ok(Duration::from_secs(n)),
        };
        let header_timeout = seconds(s.header_timeout_seconds, 10, "header-timeout-seconds")?;
        let body_timeout = seconds(s.body_timeout_seconds, 30, "body-timeout-seconds")?;
        let max_connections = s.max_connections.unwrap_or(256);
        if max_connections == 0 {
            return Err(invalid("service.max-connections", "must be at least 1"));
        }
        let request_threads_nice = s
            .request_threads_nice
            .unwrap_or(DEFAULT_REQUEST_THREADS_NICE);
        if !(0..=19).contains(&request_threads_nice) {
            return Err(invalid("service.request-threads-nice", "must be 0..=19"));
        }
        let audit_commit_delay_us = s.audit_commit_delay_us.unwrap_or(DEFAULT_COMMIT_DELAY_US);
        if audit_commit_delay_us > 10_000 {
            return Err(invalid(
                "service.audit-commit-delay-us",
                "must be 0..=10000",
            ));
        }
        let audit_commit_delay = Duration::from_micros(audit_commit_delay_us);
        let token = match (raw.hsm.token, raw.hsm.token_serial) {
            (Some(l), None) => TokenSelector::Label(l),
            (None, Some(sn)) => TokenSelector::Serial(sn),
            _ => {
                return Err(invalid(
                    "hsm.token",
                    "give exactly one of token (label) or token-serial",
                ));
            }
        };
        let pin = match raw.hsm.pin {
            toml::Value::String(_) | toml::Value::Integer(_) => {
                return Err(invalid(
                    "hsm.pin",
                    "a literal PIN is refused; use { file = \"...\" }, { env = \"NAME\" } or { prompt = true }",
                ));
            }
            other => {
                let source =
                    PinSource::deserialize(other).map_err(|e| invalid("hsm.pin", e.to_string()))?;
                match source {
                    PinSource::File(p) => PinSource::File(rel(&p)),
                    other => other,
                }
            }
        };
        if raw.callers.is_empty() {
            return Err(invalid(
                "caller",
                "no [[caller]] is allowed; the service would refuse everyone",
            ));
        }
        for (i, c) in raw.callers.iter().enumerate() {
            if c.uid.is_some() == c.gid.is_some() {
                return Err(invalid(
                    format!("caller[{i}]"),
                    "give exactly one of uid or gid",
                ));
            }
        }
        let hsm_call_timeout = match raw.hsm.call_timeout_ms {
            None => Duration::from_secs(2),
            Some(ms @ 1..=600_000) => Duration::from_millis(ms),
            Some(ms) => {
                return Err(invalid(
                    "hsm.call-timeout-ms",
                    format!("{ms} is outside 1..=600000 (milliseconds)"),
                ));
            }
        };
        if raw.issuers.is_empty() {
            return Err(invalid("issuer", "at least one [[issuer]] is needed"));
        }
        let mut issuers = Vec::new();
        for (i, r) in raw.issuers.into_iter().enumerate() {
            let field = |f: &str| format!("issuer[{i}].{f}");
            let path = rel(&r.certificate);
            let (certificate, der) = crate::x509::read_pem::<Certificate>(&path, "CERTIFICATE")
                .map_err(|e| invalid(field("certificate"), e.to_string()))?;
            let key = r
                .key
                .parse::<KeyUri>()
                .map_err(|e| invalid(field("key"), e.to_string()))?;
            for (f, url) in [
                ("ca-issuers-url", &r.ca_issuers_url),
                ("crl-url-prefix", &r.crl_url_prefix),
            ] {
                if !url.starts_with("http://") {
                    return Err(invalid(
                        field(f),
                        "must be an http:// URL (BR 7.1.2.7.7, 7.1.2.11.2)",
                    ));
                }
            }
            if issuers.iter().any(|x: &IssuerConfig| x.name == r.name) {
                return Err(invalid(
                    field("name"),
                    format!("{:?} is used twice", r.name),
                ));
            }
            let crl_shards = r.crl_shards.unwrap_or(1);
            if crl_shards == 0 {
                return Err(invalid(field("crl-shards"), "must be at least 1"));
            }
            let ocsp_responder = match r.ocsp_responder {
                None => None,
                Some(o) => Some(OcspResponderConfig {
                    certificate: crate::x509::read_pem::<Certificate>(
                        &rel(&o.certificate),
                        "CERTIFICATE",
                    )
                    .map_err(|e| invalid(field("ocsp-responder.certificate"), e.to_string()))?
                    .0,
                    key: o
                        .key
                        .parse::<KeyUri>()
                        .map_err(|e| invalid(field("ocsp-responder.key"), e.to_string()))?,
                }),
            };
            issuers.push(IssuerConfig {
                name: r.name,
                certificate_pem: crate::x509::to_pem("CERTIFICATE", &der).map_err(Invalid::Pem)?,
                certificate,
                key,
                ca_issuers_url: r.ca_issuers_url,
                crl_url_prefix: r.crl_url_prefix,
                crl_shards,
                crl_allow_unknown_serials: r.crl_allow_unknown_serials,
                ocsp_responder,
            });
        }
        let mut profiles = HashMap::new();
        for (i, p) in raw.profiles.into_iter().enumerate() {
            // BR 6.3.2 caps subscriber certificate lifetimes (398 days, falling to 47 by 2029);
            // the linter enforces the cap in force on each certificate's notBefore.
            if p.validity_hours == 0 || p.validity_hours > 398 * 24 {
                return Err(invalid(
                    format!("profile[{i}].validity-hours"),
                    "must be 1..=9552 (398 days, BR 6.3.2)",
                ));
            }
            let backdate = Duration::from_secs(p.max_backdate_seconds.unwrap_or(3600));
            if backdate > MAX_BACKDATE {
                return Err(invalid(
                    format!("profile[{i}].max-backdate-seconds"),
                    "at most 3600",
                ));
            }
            let config = ProfileConfig {
                name: p.name.clone(),
                validity: Duration::from_secs(p.validity_hours * 3600),
                max_backdate: backdate,
                rsa_key_encipherment: p.rsa_key_encipherment,
                common_name: p.common_name.unwrap_or(true),
            };
            if profiles.insert(p.name.clone(), config).is_some() {
                return Err(invalid(
                    format!("profile[{i}].name"),
                    format!("{:?} is used twice", p.name),
                ));
            }
        }
        if profiles.is_empty() {
            return Err(invalid("profile", "at least one [[profile]] is needed"));
        }
        Ok(Config {
            socket: rel(&s.socket),
            socket_mode,
            socket_gid: s.socket_gid,
            allow_root: s.allow_root,
            store: rel(&s.store),
            instance_prefix: s.instance_prefix,
            max_body_bytes: s.max_body_bytes.unwrap_or(65_536),
            max_crl_body_bytes: s.max_crl_body_bytes.unwrap_or(256 << 20),
            max_header_bytes,
            header_timeout,
            body_timeout,
            max_connections,
            request_threads_nice,
            audit_commit_delay,
            module: raw.hsm.module,
            token,
            pin,
            sessions: raw.hsm.sessions.unwrap_or(2).max(1),
            hsm_call_timeout,
            softhsm2_conf: raw.hsm.softhsm2_conf.as_deref().map(rel),
            callers: raw.callers,
            issuers,
            profiles,
            policy: raw.policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hsm_extra: &str) -> Result<Config, Invalid> {
        config_with("", hsm_extra)
    }

    fn config_with(service_extra: &str, hsm_extra: &str) -> Result<Config, Invalid> {
        let text = format!(
            r#"issuer = []

[service]
socket = "s.sock"
store = "audit.db"
instance-prefix = 1
{service_extra}

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token = "t"
pin = {{ env = "PIN" }}
{hsm_extra}

[[caller]]
name = "c"
uid = 1000

[[profile]]
name = "tls-server"
validity-hours = 2160
"#
        );
        let raw: RawConfig = toml::from_str(&text).unwrap();
        Config::check(raw, Path::new("/nonexistent"))
    }

    #[test]
    fn call_timeout_has_a_default_and_a_range() {
        // [hsm] is checked before the issuers (which this configuration lacks).
        for bad in ["call-timeout-ms = 0", "call-timeout-ms = 600001"] {
            let e = config(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with("hsm.call-timeout-ms: "), "{bad}: {e}");
        }
        for good in ["", "call-timeout-ms = 1", "call-timeout-ms = 600000"] {
            let e = config(good)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("issuer: at least one"), "{good}: {e}");
        }
    }

    #[test]
    fn refusals_name_the_key_and_the_rule() {
        for (service, hsm, want) in [
            (
                "socket-mode = \"0666\"",
                "",
                "service.socket-mode: must not give other users access (e.g. 0660)",
            ),
            (
                "socket-mode = \"9\"",
                "",
                "service.socket-mode: \"9\" is not an octal mode like \"0660\"",
            ),
            (
                "header-timeout-seconds = 0",
                "",
                "service.header-timeout-seconds: must be at least 1",
            ),
            (
                "",
                "token-serial = \"1\"",
                "hsm.token: give exactly one of token (label) or token-serial",
            ),
            (
                "",
                "call-timeout-ms = 0",
                "hsm.call-timeout-ms: 0 is outside 1..=600000 (milliseconds)",
            ),
            ("", "", "issuer: at least one [[issuer]] is needed"),
        ] {
            let e = config_with(service, hsm).err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some(want), "{service} {hsm}");
        }
    }

    #[test]
    fn request_threads_nice_has_a_default_and_a_range() {
        for bad in ["request-threads-nice = -1", "request-threads-nice = 20"] {
            let e = config_with(bad, "")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.starts_with("service.request-threads-nice: "),
                "{bad}: {e}"
            );
        }
        for good in ["", "request-threads-nice = 0", "request-threads-nice = 19"] {
            let e = config_with(good, "")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("issuer: at least one"), "{good}: {e}");
        }
    }

    #[test]
    fn audit_commit_delay_has_a_default_and_a_range() {
        let e = config_with("audit-commit-delay-us = 10001", "")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("service.audit-commit-delay-us: must be 0..=10000"),
            "{e}"
        );
        for good in [
            "",
            "audit-commit-delay-us = 0",
            "audit-commit-delay-us = 10000",
        ] {
            let e = config_with(good, "")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("issuer: at least one"), "{good}: {e}");
        }
    }

    #[test]
    fn profile_lifetimes_are_warned_against_the_br_schedule() {
        let profile = |days: u64| ProfileConfig {
            name: "p".into(),
            validity: Duration::from_secs(days * 86_400),
            max_backdate: MAX_BACKDATE,
            rsa_key_encipherment: false,
            common_name: true,
        };
        let at = |date: &str| {
            std::time::UNIX_EPOCH
                + Duration::from_secs(
                    date.parse::<der::DateTime>()
                        .unwrap()
                        .unix_duration()
                        .as_secs(),
                )
        };
        let dec_2026 = at("2026-12-02T00:00:00Z");
        // In force on 2026-12-02: 200 days; from 2027-03-15: 100.
        assert_eq!(profile(90).validity_warning(dec_2026), None);
        assert_eq!(profile(100).validity_warning(dec_2026), None);
        let next = profile(101).validity_warning(dec_2026);
        assert!(
            next.as_deref().unwrap_or_default().contains("over the 100 days BR 6.3.2 allows for a certificate issued from 2027-03-15; from then on"),
            "{next:?}"
        );
        let now = profile(250).validity_warning(dec_2026);
        assert!(
            now.as_deref().unwrap_or_default().contains("6000 hours (250 days) is over the 200 days BR 6.3.2 allows for a certificate issued from 2026-03-15; now"),
            "{now:?}"
        );
        assert!(
            profile(200)
                .validity_warning(at("2026-03-15T00:00:00Z"))
                .is_some()
        );
        assert!(
            profile(398)
                .validity_warning(at("2026-03-14T23:59:59Z"))
                .is_some()
        );
        assert_eq!(
            profile(47).validity_warning(at("2030-01-01T00:00:00Z")),
            None
        );
        assert!(
            profile(48)
                .validity_warning(at("2030-01-01T00:00:00Z"))
                .is_some()
        );
    }
}
