//! The log entry format, version 1 (docs/TRANSPARENCY-LOG.md): encoding and a strict parser.
//!
//! ```text
//! u8        version      = 1
//! u8        type         (EntryType)
//! u64 (BE)  signing time, milliseconds since 1970-01-01T00:00:00Z
//! [32]      signing key identifier = SHA-256 of the signing key's SubjectPublicKeyInfo DER
//! ...       body: the signed object's DER (one certificate or CRL, nothing after it), or for
//!           an OCSP batch: u16 (BE) count ≥ 1, then count SHA-256 digests of DER responses
//! ```

use der::Decode;

/// The only entry format version this code writes and reads.
pub const VERSION: u8 = 1;

/// The largest entry: C2SP tlog-tiles entry bundles prefix each entry with a 2-byte length.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Bytes before the body: version, type, time, key identifier.
const HEADER_LEN: usize = 1 + 1 + 8 + 32;

/// What kind of signed object an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryType {
    /// An end-entity certificate (RFC 5280).
    Certificate = 1,
    /// A CT precertificate (RFC 6962 §3.1): a certificate with the poison extension.
    Precertificate = 2,
    /// The final certificate issued after its precertificate.
    FinalCertificate = 3,
    /// A certificate revocation list (RFC 5280 §5).
    Crl = 4,
    /// One OCSP request's responses, as the SHA-256 of each DER response (RFC 6960).
    OcspBatch = 5,
    /// The certificate of one of the service's issuers.
    IssuerCertificate = 6,
    /// A root certificate an issuer chains to.
    RootCertificate = 7,
    /// A cross-certificate for an issuer.
    CrossCertificate = 8,
}

impl EntryType {
    /// The type for its byte.
    ///
    /// # Errors
    /// [`EntryError`] for an unknown type byte.
    pub fn from_byte(b: u8) -> Result<Self, EntryError> {
        Ok(match b {
            1 => Self::Certificate,
            2 => Self::Precertificate,
            3 => Self::FinalCertificate,
            4 => Self::Crl,
            5 => Self::OcspBatch,
            6 => Self::IssuerCertificate,
            7 => Self::RootCertificate,
            8 => Self::CrossCertificate,
            _ => return Err(EntryError::new("type", format!("unknown entry type {b}"))),
        })
    }

    /// Whether the body is one X.509 certificate.
    pub fn is_certificate(self) -> bool {
        !matches!(self, Self::Crl | Self::OcspBatch)
    }
}

/// The signed object an entry records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// The DER of a certificate or CRL, exactly as signed.
    Der(Vec<u8>),
    /// SHA-256 of each DER OCSP response of one request.
    OcspResponseDigests(Vec<[u8; 32]>),
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What was signed.
    pub entry_type: EntryType,
    /// When it was signed, in milliseconds since the Unix epoch (UTC).
    pub signed_at_ms: u64,
    /// SHA-256 of the signing key's SubjectPublicKeyInfo DER.
    pub key_id: [u8; 32],
    /// The signed object (or its digests).
    pub body: Body,
}

/// An entry that does not follow the format: the field and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct EntryError {
    /// The field at fault.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: String,
}

impl EntryError {
    fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

impl Entry {
    /// The entry's bytes, the leaf data hashed into the log.
    ///
    /// # Errors
    /// [`EntryError`] when the body does not suit the type, fails to parse, or the entry is
    /// longer than [`MAX_ENTRY_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.push(VERSION);
        out.push(self.entry_type as u8);
        out.extend_from_slice(&self.signed_at_ms.to_be_bytes());
        out.extend_from_slice(&self.key_id);
        match (&self.body, self.entry_type) {
            (Body::OcspResponseDigests(d), EntryType::OcspBatch) => {
                let n = u16::try_from(d.len())
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        EntryError::new("body", "an OCSP batch holds 1 to 65535 digests")
                    })?;
                out.extend_from_slice(&n.to_be_bytes());
                for x in d {
                    out.extend_from_slice(x);
                }
            }
            (Body::Der(der), t) if t != EntryType::OcspBatch => {
                check_der(t, der)?;
                out.extend_from_slice(der);
            }
            _ => {
                return Err(EntryError::new(
                    "body",
                    "OCSP batches hold digests, every other type holds DER",
                ));
            }
        }
        if out.len() > MAX_ENTRY_LEN {
            return Err(EntryError::new(
                "body",
                format!(
                    "entry of {} bytes exceeds {MAX_ENTRY_LEN} (C2SP tlog-tiles 2-byte length)",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Parses an entry strictly: known version and type, a body that parses as its type,
    /// nothing after it.
    ///
    /// # Errors
    /// [`EntryError`] naming the field and the rule.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::new("entry", "longer than 65535 bytes"));
        }
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(EntryError::new("version", "entry is empty"));
        };
        if version != VERSION {
            return Err(EntryError::new(
                "version",
                format!("unknown entry version {version} (this reader knows {VERSION})"),
            ));
        }
        if bytes.len() < HEADER_LEN {
            return Err(EntryError::new(
                "header",
                format!(
                    "entry of {} bytes is shorter than its {HEADER_LEN}-byte header",
                    bytes.len()
                ),
            ));
        }
        let entry_type = EntryType::from_byte(rest[0])?;
        let mut t = [0u8; 8];
        t.copy_from_slice(&bytes[2..10]);
        let mut key_id = [0u8; 32];
        key_id.copy_from_slice(&bytes[10..HEADER_LEN]);
        let body = &bytes[HEADER_LEN..];
        let body = if entry_type == EntryType::OcspBatch {
            if body.len() < 2 {
                return Err(EntryError::new(
                    "body",
                    "OCSP batch without its digest count",
                ));
            }
            let n = usize::from(u16::from_be_bytes([body[0], body[1]]));
            if n == 0 {
                return Err(EntryError::new("body", "OCSP batch with no digest"));
            }
            let digests = &body[2..];
            if digests.len() != n * 32 {
                return Err(EntryError::new(
                    "body",
                    format!(
                        "OCSP batch announces {n} digests ({} bytes) but holds {} bytes",
                        n * 32,
                        digests.len()
                    ),
                ));
            }
            Body::OcspResponseDigests(
                digests
                    .chunks_exact(32)
                    .map(|c| {
                        let mut d = [0u8; 32];
                        d.copy_from_slice(c);
                        d
                    })
                    .collect(),
            )
        } else {
            check_der(entry_type, body)?;
            Body::Der(body.to_vec())
        };
        Ok(Self {
            entry_type,
            signed_at_ms: u64::from_be_bytes(t),
            key_id,
            body,
        })
    }
}

/// The body must be exactly one DER certificate (RFC 5280 §4.1) or CRL (RFC 5280 §5.1):
/// x509-cert's `from_der` rejects anything after it.
fn check_der(t: EntryType, der: &[u8]) -> Result<(), EntryError> {
    let r = if t == EntryType::Crl {
        <x509_cert::crl::CertificateList>::from_der(der).map(|_| ())
    } else {
        x509_cert::Certificate::from_der(der).map(|_| ())
    };
    r.map_err(|e| {
        let what = if t == EntryType::Crl {
            "CRL (RFC 5280 §5.1)"
        } else {
            "certificate (RFC 5280 §4.1)"
        };
        EntryError::new("body", format!("not one DER {what}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ocsp() -> Entry {
        Entry {
            entry_type: EntryType::OcspBatch,
            signed_at_ms: 1_700_000_000_123,
            key_id: [7; 32],
            body: Body::OcspResponseDigests(vec![[1; 32], [2; 32]]),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let b = ocsp().encode().unwrap();
        assert_eq!(b.len(), 42 + 2 + 64);
        assert_eq!(&b[..2], &[1, 5]);
        assert_eq!(&b[2..10], &1_700_000_000_123u64.to_be_bytes());
        assert_eq!(Entry::parse(&b).unwrap(), ocsp());
    }

    #[test]
    fn strict_parser_rejects_with_field_and_rule() {
        let good = ocsp().encode().unwrap();
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Entry::parse(&b).unwrap_err().field, "body");
        let mut b = good.clone();
        b[0] = 2;
        let e = Entry::parse(&b).unwrap_err();
        assert_eq!(e.field, "version");
        assert!(e.to_string().contains("unknown entry version 2"), "{e}");
        let mut b = good.clone();
        b[1] = 9;
        assert_eq!(
            Entry::parse(&b).unwrap_err().to_string(),
            "type: unknown entry type 9"
        );
        assert_eq!(Entry::parse(&good[..20]).unwrap_err().field, "header");
        assert_eq!(Entry::parse(&[]).unwrap_err().field, "version");
        // A certificate type whose body is not a certificate.
        let mut b = good.clone();
        b[1] = EntryType::Certificate as u8;
        assert!(Entry::parse(&b).unwrap_err().rule.contains("RFC 5280 §4.1"));
    }

    #[test]
    fn encode_refuses_mismatched_body() {
        let mut e = ocsp();
        e.body = Body::OcspResponseDigests(vec![]);
        assert!(e.encode().is_err());
        e.entry_type = EntryType::Crl;
        assert!(e.encode().is_err());
        e.body = Body::Der(vec![0x30, 0x00]);
        assert!(e.encode().unwrap_err().rule.contains("RFC 5280 §5.1"));
    }
}
