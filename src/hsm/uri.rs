//! RFC 7512 PKCS#11 URIs naming a token and a key: `pkcs11:token=Root%20CA;object=root-2026`.

use std::fmt;
use std::str::FromStr;

/// The parts of a PKCS#11 URI (RFC 7512 section 2.3) that strongroom uses to find a key. Every
/// attribute present must match; `object` (the label) or `id` must be given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `object`: the key label (CKA_LABEL).
    pub object: Option<String>,
    /// `id`: the key id (CKA_ID), percent-decoded bytes.
    pub id: Option<Vec<u8>>,
}

impl FromStr for KeyUri {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("pkcs11:").ok_or_else(|| {
            format!("{s:?} is not a PKCS#11 URI (RFC 7512): it must start with \"pkcs11:\"")
        })?;
        // Query attributes (after '?', e.g. pin-source) are not used to select a key.
        let path = rest.split('?').next().unwrap_or("");
        let mut uri = KeyUri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                format!("PKCS#11 URI attribute {part:?} has no '=' (RFC 7512 2.3)")
            })?;
            let bytes = percent_decode(value)?;
            let text = || {
                String::from_utf8(bytes.clone())
                    .map_err(|_| format!("PKCS#11 URI attribute {name} is not UTF-8"))
            };
            match name {
                "token" => uri.token = Some(text()?),
                "serial" => uri.serial = Some(text()?),
                "object" => uri.object = Some(text()?),
                "id" => uri.id = Some(bytes),
                // The key class is implied: strongroom looks for a private key and its public key.
                "type" if matches!(value, "private" | "public") => {}
                "manufacturer"
                | "model"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {
                    return Err(format!(
                        "PKCS#11 URI attribute {name} is not supported; select the token by token= or serial="
                    ));
                }
                "slot-id" => {
                    return Err(
                        "PKCS#11 URI attribute slot-id is refused: slot ids change when tokens are initialised; use token= or serial="
                            .to_string(),
                    );
                }
                other => {
                    return Err(format!(
                        "unknown PKCS#11 URI attribute {other:?} (RFC 7512 2.3)"
                    ));
                }
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(format!(
                "PKCS#11 URI {s:?} names no key: give object= (label) or id="
            ));
        }
        Ok(uri)
    }
}

impl fmt::Display for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={}", percent_encode(t.as_bytes())));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={}", percent_encode(s.as_bytes())));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", percent_encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            parts.push(format!("id={hex}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

fn percent_decode(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("truncated percent-escape in {value:?}"))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad percent-escape %{hex} in {value:?}"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7512_examples() {
        let uri: KeyUri = "pkcs11:token=Root%20CA;object=root-2026;type=private"
            .parse()
            .unwrap();
        assert_eq!(uri.token.as_deref(), Some("Root CA"));
        assert_eq!(uri.object.as_deref(), Some("root-2026"));
        let uri: KeyUri = "pkcs11:id=%01%a0".parse().unwrap();
        assert_eq!(uri.id, Some(vec![0x01, 0xa0]));
        assert_eq!(uri.to_string(), "pkcs11:id=%01%a0");
    }

    #[test]
    fn refuses_what_cannot_name_one_key() {
        assert!(
            "pkcs11:token=x"
                .parse::<KeyUri>()
                .unwrap_err()
                .contains("names no key")
        );
        assert!(
            "pkcs11:slot-id=0;object=k"
                .parse::<KeyUri>()
                .unwrap_err()
                .contains("slot-id")
        );
        assert!("file:x".parse::<KeyUri>().is_err());
        assert!("pkcs11:object=%4".parse::<KeyUri>().is_err());
        assert!("pkcs11:colour=red;object=k".parse::<KeyUri>().is_err());
    }

    #[test]
    fn display_round_trips() {
        let uri: KeyUri = "pkcs11:token=Demo%20Token;object=a%3Bb".parse().unwrap();
        assert_eq!(uri.object.as_deref(), Some("a;b"));
        assert_eq!(uri.to_string().parse::<KeyUri>().unwrap(), uri);
    }
}
