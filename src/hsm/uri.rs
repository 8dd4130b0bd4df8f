//! RFC 7512 PKCS#11 URIs naming a token and a key: `pkcs11:token=Root%20CA;object=root-2026`.
//! A string that is not one strongroom can use is refused with a [`UriError`].

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

/// Why a string is not a PKCS#11 URI that names one key (RFC 7512). The messages name the
/// attribute and the rule; they are what configuration and ceremony errors show after the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The string does not start with the `pkcs11:` scheme (RFC 7512 section 2.3).
    #[error("{input:?} is not a PKCS#11 URI (RFC 7512): it must start with \"pkcs11:\"")]
    Scheme {
        /// The whole string.
        input: String,
    },
    /// A path attribute is not `name=value` (RFC 7512 section 2.3, `pk11-path-attr`).
    #[error("PKCS#11 URI attribute {part:?} has no '=' (RFC 7512 2.3)")]
    NoValue {
        /// The attribute as written.
        part: String,
    },
    /// A percent-escape ends before its two hex digits (RFC 3986 section 2.1).
    #[error("truncated percent-escape in {value:?}")]
    TruncatedEscape {
        /// The attribute value.
        value: String,
    },
    /// A percent-escape is not two hex digits (RFC 3986 section 2.1).
    #[error("bad percent-escape %{escape} in {value:?}")]
    BadEscape {
        /// The two characters after the `%`.
        escape: String,
        /// The attribute value.
        value: String,
    },
    /// A text attribute (`token`, `serial`, `object`) is not UTF-8 once percent-decoded.
    #[error("PKCS#11 URI attribute {name} is not UTF-8")]
    NotUtf8 {
        /// The attribute name.
        name: String,
    },
    /// An RFC 7512 attribute strongroom does not select on (library, slot and token
    /// description attributes).
    #[error("PKCS#11 URI attribute {name} is not supported; select the token by token= or serial=")]
    Unsupported {
        /// The attribute name.
        name: String,
    },
    /// `slot-id`: refused, since slot ids change when tokens are initialised.
    #[error(
        "PKCS#11 URI attribute slot-id is refused: slot ids change when tokens are initialised; use token= or serial="
    )]
    SlotId,
    /// An attribute RFC 7512 section 2.3 does not define (or `type=` other than `private` or
    /// `public`).
    #[error("unknown PKCS#11 URI attribute {name:?} (RFC 7512 2.3)")]
    Unknown {
        /// The attribute name.
        name: String,
    },
    /// Neither `object=` nor `id=`: the URI names no key.
    #[error("PKCS#11 URI {uri:?} names no key: give object= (label) or id=")]
    NoKey {
        /// The whole string.
        uri: String,
    },
}

impl FromStr for KeyUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let rest = s.strip_prefix("pkcs11:").ok_or_else(|| UriError::Scheme {
            input: s.to_string(),
        })?;
        // Query attributes (after '?', e.g. pin-source) are not used to select a key.
        let path = rest.split('?').next().unwrap_or("");
        let mut uri = KeyUri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| UriError::NoValue {
                part: part.to_string(),
            })?;
            let bytes = percent_decode(value)?;
            let text = || {
                String::from_utf8(bytes.clone()).map_err(|_| UriError::NotUtf8 {
                    name: name.to_string(),
                })
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
                    return Err(UriError::Unsupported {
                        name: name.to_string(),
                    });
                }
                "slot-id" => return Err(UriError::SlotId),
                other => {
                    return Err(UriError::Unknown {
                        name: other.to_string(),
                    });
                }
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(UriError::NoKey { uri: s.to_string() });
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

fn percent_decode(value: &str) -> Result<Vec<u8>, UriError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .ok_or_else(|| UriError::TruncatedEscape {
                    value: value.to_string(),
                })?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| UriError::BadEscape {
                    escape: hex.to_string(),
                    value: value.to_string(),
                })?,
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
                .to_string()
                .contains("names no key")
        );
        assert!(
            "pkcs11:slot-id=0;object=k"
                .parse::<KeyUri>()
                .unwrap_err()
                .to_string()
                .contains("slot-id")
        );
        assert!("file:x".parse::<KeyUri>().is_err());
        assert!("pkcs11:object=%4".parse::<KeyUri>().is_err());
        assert!("pkcs11:colour=red;object=k".parse::<KeyUri>().is_err());
    }

    /// Each refusal is its own variant, and its message is the one configuration and ceremony
    /// errors have always shown after the field name.
    #[test]
    fn each_refusal_has_its_variant_and_message() {
        let cases: [(&str, UriError, &str); 9] = [
            (
                "file:x",
                UriError::Scheme {
                    input: "file:x".to_string(),
                },
                r#""file:x" is not a PKCS#11 URI (RFC 7512): it must start with "pkcs11:""#,
            ),
            (
                "pkcs11:object",
                UriError::NoValue {
                    part: "object".to_string(),
                },
                r#"PKCS#11 URI attribute "object" has no '=' (RFC 7512 2.3)"#,
            ),
            (
                "pkcs11:object=%4",
                UriError::TruncatedEscape {
                    value: "%4".to_string(),
                },
                r#"truncated percent-escape in "%4""#,
            ),
            (
                "pkcs11:object=a%zz",
                UriError::BadEscape {
                    escape: "zz".to_string(),
                    value: "a%zz".to_string(),
                },
                r#"bad percent-escape %zz in "a%zz""#,
            ),
            (
                "pkcs11:object=%ff",
                UriError::NotUtf8 {
                    name: "object".to_string(),
                },
                "PKCS#11 URI attribute object is not UTF-8",
            ),
            (
                "pkcs11:model=SoftHSM;object=k",
                UriError::Unsupported {
                    name: "model".to_string(),
                },
                "PKCS#11 URI attribute model is not supported; select the token by token= or serial=",
            ),
            (
                "pkcs11:slot-id=0;object=k",
                UriError::SlotId,
                "PKCS#11 URI attribute slot-id is refused: slot ids change when tokens are initialised; use token= or serial=",
            ),
            (
                "pkcs11:type=secret-key;object=k",
                UriError::Unknown {
                    name: "type".to_string(),
                },
                r#"unknown PKCS#11 URI attribute "type" (RFC 7512 2.3)"#,
            ),
            (
                "pkcs11:token=x",
                UriError::NoKey {
                    uri: "pkcs11:token=x".to_string(),
                },
                r#"PKCS#11 URI "pkcs11:token=x" names no key: give object= (label) or id="#,
            ),
        ];
        for (input, variant, message) in cases {
            let e = input.parse::<KeyUri>().unwrap_err();
            assert_eq!(e, variant, "{input}");
            assert_eq!(e.to_string(), message, "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        let uri: KeyUri = "pkcs11:token=Demo%20Token;object=a%3Bb".parse().unwrap();
        assert_eq!(uri.object.as_deref(), Some("a;b"));
        assert_eq!(uri.to_string().parse::<KeyUri>().unwrap(), uri);
    }
}
