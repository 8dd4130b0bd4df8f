//! Issuance policy: the checks a request must pass before the HSM is asked to sign anything.
//!
//! ```text
//!  base64 SPKI ──decode_spki──┐
//!  PEM CSR ──csr_public_key───┴─▶ SubjectPublicKeyInfo ──check_key──▶ KeyType
//!  dns_names + ip_addresses ───────────────────────────check_names──▶ Names
//!  not_before + profile + issuer ─────────────────validity_window──▶ (notBefore, notAfter)
//!  instance prefix + CSPRNG octets ─────────────────serial_number──▶ SerialNumber
//!  base64 SCT list (final certificates) ───────────check_sct_list──▶ ()
//! ```
//!
//! Every function here is pure: no I/O, no clock (the caller passes `now`), no HSM. A refusal
//! is an [`Error`] carrying a stable [`Error::code`] (for the wire and for tests), the request
//! [`Error::field`] it is about (`dns_names[2]`), and the [`Error::rule`] broken, with its
//! source. The first rule broken is reported; a request with several problems is refused for
//! the first one found.
//!
//! | code | rule |
//! |---|---|
//! | `policy.names.none` | at least one dNSName or iPAddress (BR 7.1.2.7.12) |
//! | `policy.names.too_many` | at most [`PolicyConfig::max_names`] names |
//! | `policy.dns_name.empty` | a dNSName is not empty (RFC 5280 4.2.1.6) |
//! | `policy.dns_name.uppercase` | lower case only, so that names compare byte for byte |
//! | `policy.dns_name.too_long` | at most 253 octets (RFC 1035 2.3.4) |
//! | `policy.dns_name.trailing_dot` | no trailing dot (RFC 5280 4.2.1.6, RFC 1034 3.5 preferred name syntax) |
//! | `policy.dns_name.wildcard` | `*` only as the whole leftmost label (BR 1.6.1 "Wildcard Domain Name") |
//! | `policy.dns_name.label_length` | labels of 1 to 63 octets (RFC 1035 2.3.4) |
//! | `policy.dns_name.ldh` | letters, digits and hyphen only (RFC 5890 2.3.1) |
//! | `policy.dns_name.hyphen` | no hyphen first or last, no `--` at 3-4 except `xn--` (RFC 5891 4.2.3.1) |
//! | `policy.dns_name.idna` | an `xn--` label is a valid A-label (RFC 5890 2.3.2.1, RFC 5891 5.4): every code point PVALID under IDNA2008, or CONTEXTJ/CONTEXTO in its context (RFC 5892) |
//! | `policy.dns_name.ip_address` | an IP address is not a dNSName (BR 7.1.2.7.12) |
//! | `policy.dns_name.internal` | not under a special-use name such as `.local` or `.test` (BR 4.2.2) |
//! | `policy.dns_name.not_under_suffix` | ends in a TLD of the PSL's ICANN section (BR 1.6.1 "Internal Name") |
//! | `policy.dns_name.public_suffix` | not a public suffix, no wildcard directly over one (BR 3.2.2.6) |
//! | `policy.dns_name.blocked` | not on [`PolicyConfig::blocked_names`] |
//! | `policy.dns_name.duplicate` | each name once |
//! | `policy.ip_address.invalid` | parses as an IPv4 or IPv6 address |
//! | `policy.ip_address.not_public` | not a Reserved IP Address (BR 1.6.1, 4.2.2, 7.1.2.7.12) |
//! | `policy.ip_address.duplicate` | each address once |
//! | `policy.key.malformed` | the key decodes as a DER SubjectPublicKeyInfo of its algorithm |
//! | `policy.key.type` | RSA 2048/3072/4096 or EC P-256/P-384 (BR 6.1.5) |
//! | `policy.key.weak` | no known weakness: exponent, small factors, ROCA, Fermat, invalid point (BR 6.1.6, 6.1.1.3) |
//! | `policy.key.blocked` | not on [`PolicyConfig::blocked_keys`] (BR 6.1.1.3) |
//! | `policy.csr.malformed` | the CSR is a PEM `CERTIFICATE REQUEST` holding a DER PKCS#10 request |
//! | `policy.csr.signature` | the CSR's self-signature verifies (RFC 2986 3) |
//! | `policy.validity.future` | notBefore is not in the future (BR 7.1.2.7) |
//! | `policy.validity.backdate` | notBefore at most the profile's backdate in the past (BR 7.1.2.7) |
//! | `policy.validity.issuer_expiry` | no certificate outlives its issuer's (RFC 5280 6.1.3) |
//! | `request.sct_list.malformed` | a final certificate's SCT list parses (RFC 6962 3.2, 3.3) |
//! | `policy.config.invalid` | a blocklist entry is well formed (checked by [`PolicyConfig::validate`]) |
//!
//! What this module does not do: it does not check that the requester controls the names (that is
//! domain validation, done by the CA core before it asks us), does not look at the names inside a
//! CSR (the request's name lists are authoritative), and does not consult CAA.

mod idna2008;
mod keys;
mod names;
mod sct;
mod serial;
mod validity;

pub use keys::{check_key, csr_public_key, decode_spki};
pub use names::{Names, check_names};
pub use sct::check_sct_list;
pub use serial::{SERIAL_RANDOM_OCTETS, SerialError, serial_number};
pub use validity::{encode_validity, validity_window};

/// A policy refusal: which rule a request breaks, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
#[non_exhaustive]
pub struct Error {
    /// Stable identifier of the rule, e.g. `"policy.dns_name.public_suffix"`. Callers and tests
    /// match on it; it never changes for a given rule.
    pub code: &'static str,
    /// The request field the refusal is about, e.g. `"dns_names[2]"`, `"public_key"` or `"csr"`.
    pub field: String,
    /// The rule broken, in words, ending with its source, e.g.
    /// `"... is a public suffix ... (BR 3.2.2.6)"`.
    pub rule: String,
}

impl Error {
    pub(crate) fn new(
        code: &'static str,
        field: impl Into<String>,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            code,
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// The default for [`PolicyConfig::max_names`].
pub const DEFAULT_MAX_NAMES: usize = 100;

/// Operator-set policy: blocklists and limits, deserialised from the operator's configuration.
///
/// Every key is optional; a missing key takes its default. After loading, call
/// [`PolicyConfig::validate`]: a malformed blocklist entry would otherwise never match anything.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PolicyConfig {
    /// Names refused outright, in lower-case A-label form: `"example.com"` refuses exactly that
    /// name; `".example.com"` refuses `example.com` and every name under it. A wildcard is refused
    /// when it would cover a blocked name. (Optional; default empty.)
    pub blocked_names: Vec<String>,
    /// SHA-256 (hex, either case) of the DER `SubjectPublicKeyInfo` of keys that must never be
    /// certified, e.g. known-compromised keys (BR 6.1.1.3). (Optional; default empty.)
    pub blocked_keys: Vec<String>,
    /// The most names (dNSName plus iPAddress) one certificate may carry. (Optional; default
    /// [`DEFAULT_MAX_NAMES`].)
    pub max_names: usize,
}

impl Default for PolicyConfig {
    /// Empty blocklists and [`DEFAULT_MAX_NAMES`].
    fn default() -> Self {
        Self {
            blocked_names: Vec::new(),
            blocked_keys: Vec::new(),
            max_names: DEFAULT_MAX_NAMES,
        }
    }
}

impl PolicyConfig {
    /// Checks that every blocklist entry can match something: each blocked name is a lower-case
    /// LDH name (optionally with a leading `.`), each blocked key 64 hex digits, and
    /// `max_names` is at least 1.
    ///
    /// # Errors
    /// `policy.config.invalid`, naming the entry (`blocked-names[3]`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_names == 0 {
            return Err(Error::new(
                "policy.config.invalid",
                "max-names",
                "max-names must be at least 1",
            ));
        }
        for (i, entry) in self.blocked_names.iter().enumerate() {
            let name = entry.strip_prefix('.').unwrap_or(entry);
            let well_formed = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !well_formed {
                return Err(Error::new(
                    "policy.config.invalid",
                    format!("blocked-names[{i}]"),
                    "a blocked name is a lower-case LDH domain name, optionally with a leading \".\"",
                ));
            }
        }
        for (i, entry) in self.blocked_keys.iter().enumerate() {
            if !keys::is_sha256_hex(entry) {
                return Err(Error::new(
                    "policy.config.invalid",
                    format!("blocked-keys[{i}]"),
                    "a blocked key is the SHA-256 of its SubjectPublicKeyInfo DER, as 64 hex digits",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_kebab_case_keys() {
        let cfg: PolicyConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, PolicyConfig::default());
        assert_eq!(cfg.max_names, 100);

        let cfg: PolicyConfig = toml::from_str(
            "blocked-names = [\".example.net\"]\nblocked-keys = []\nmax-names = 5\n",
        )
        .unwrap();
        assert_eq!(cfg.blocked_names, [".example.net"]);
        assert_eq!(cfg.max_names, 5);
        cfg.validate().unwrap();
    }

    #[test]
    fn config_refuses_unknown_keys() {
        let err = toml::from_str::<PolicyConfig>("max_names = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn config_validate_names_the_bad_entry() {
        let cfg = PolicyConfig {
            blocked_names: vec!["ok.example.com".into(), "Bad.example.com".into()],
            ..PolicyConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("policy.config.invalid", "blocked-names[1]")
        );

        let cfg = PolicyConfig {
            blocked_keys: vec!["abcd".into()],
            ..PolicyConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("policy.config.invalid", "blocked-keys[0]")
        );

        let cfg = PolicyConfig {
            max_names: 0,
            ..PolicyConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().code, "policy.config.invalid");
    }

    #[test]
    fn error_displays_field_and_rule() {
        let err = Error::new("policy.x", "dns_names[2]", "some rule (BR 1.2.3)");
        assert_eq!(err.to_string(), "dns_names[2]: some rule (BR 1.2.3)");
    }
}
