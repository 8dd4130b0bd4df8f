//! The hash chain: the canonical byte encoding of one record and the link hash over it.
//!
//! The encoding is specified in the [`audit`](super) module documentation ("Hash chain"), where
//! auditors find it; this file implements it, and its tests pin it.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record: 32 zero bytes.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// The domain and version tag that starts every record's canonical bytes.
pub(crate) const TAG: &[u8] = b"strongroom-audit-record-v1";

/// One record's hashed columns, borrowed: built by the writer from an entry and by the verifier
/// from a row, so both hash exactly the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub(crate) seq: u64,
    pub(crate) time_ms: i64,
    pub(crate) kind: &'a str,
    pub(crate) issuer: Option<&'a str>,
    pub(crate) serial: Option<&'a [u8]>,
    pub(crate) der: Option<&'a [u8]>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) code: Option<&'a str>,
    pub(crate) field: Option<&'a str>,
    pub(crate) message: Option<&'a str>,
    pub(crate) summary: &'a str,
}

impl Fields<'_> {
    /// The canonical bytes (see the module documentation).
    pub(crate) fn canonical_bytes(&self) -> Vec<u8> {
        let variable = [
            Some(self.kind.as_bytes()),
            self.issuer.map(str::as_bytes),
            self.serial,
            self.der,
            self.code.map(str::as_bytes),
            self.field.map(str::as_bytes),
            self.message.map(str::as_bytes),
            Some(self.summary.as_bytes()),
        ];
        let capacity = TAG.len()
            + 12 * 9
            + 2 * 8
            + 2 * 4
            + variable.iter().flatten().map(|v| v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(TAG);
        put(&mut out, Some(&self.seq.to_be_bytes()));
        put(&mut out, Some(&self.time_ms.to_be_bytes()));
        put(&mut out, Some(self.kind.as_bytes()));
        put(&mut out, self.issuer.map(str::as_bytes));
        put(&mut out, self.serial);
        put(&mut out, self.der);
        put(&mut out, Some(&self.uid.to_be_bytes()));
        put(&mut out, Some(&self.gid.to_be_bytes()));
        put(&mut out, self.code.map(str::as_bytes));
        put(&mut out, self.field.map(str::as_bytes));
        put(&mut out, self.message.map(str::as_bytes));
        put(&mut out, Some(self.summary.as_bytes()));
        out
    }

    /// The link hash: `SHA-256(prev_hash || canonical bytes)`.
    pub(crate) fn link_hash(&self, prev_hash: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash);
        hasher.update(self.canonical_bytes());
        hasher.finalize().into()
    }
}

/// Appends one framed field: `0x00`, or `0x01 || u64 BE length || bytes`.
fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned record, so proptest can generate them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        seq: u64,
        time_ms: i64,
        kind: String,
        issuer: Option<String>,
        serial: Option<Vec<u8>>,
        der: Option<Vec<u8>>,
        uid: u32,
        gid: u32,
        code: Option<String>,
        field: Option<String>,
        message: Option<String>,
        summary: String,
    }

    impl Owned {
        fn fields(&self) -> Fields<'_> {
            Fields {
                seq: self.seq,
                time_ms: self.time_ms,
                kind: &self.kind,
                issuer: self.issuer.as_deref(),
                serial: self.serial.as_deref(),
                der: self.der.as_deref(),
                uid: self.uid,
                gid: self.gid,
                code: self.code.as_deref(),
                field: self.field.as_deref(),
                message: self.message.as_deref(),
                summary: &self.summary,
            }
        }
    }

    /// Parses canonical bytes back into a record: a left inverse of `canonical_bytes`, which
    /// proves the encoding injective. Written from the documented format, not from `put`.
    fn decode(bytes: &[u8]) -> Option<Owned> {
        let mut rest = bytes.strip_prefix(TAG)?;
        let mut next = || -> Option<Option<Vec<u8>>> {
            let (&marker, tail) = rest.split_first()?;
            match marker {
                0 => {
                    rest = tail;
                    Some(None)
                }
                1 => {
                    let (len, tail) = tail.split_at_checked(8)?;
                    let len = usize::try_from(u64::from_be_bytes(len.try_into().ok()?)).ok()?;
                    let (value, tail) = tail.split_at_checked(len)?;
                    rest = tail;
                    Some(Some(value.to_vec()))
                }
                _ => None,
            }
        };
        let text = |v: Option<Vec<u8>>| v.map(String::from_utf8).transpose().ok();
        let seq = u64::from_be_bytes(next()??.try_into().ok()?);
        let time_ms = i64::from_be_bytes(next()??.try_into().ok()?);
        let kind = String::from_utf8(next()??).ok()?;
        let issuer = text(next()?)?;
        let serial = next()?;
        let der = next()?;
        let uid = u32::from_be_bytes(next()??.try_into().ok()?);
        let gid = u32::from_be_bytes(next()??.try_into().ok()?);
        let code = text(next()?)?;
        let field = text(next()?)?;
        let message = text(next()?)?;
        let summary = String::from_utf8(next()??).ok()?;
        rest.is_empty().then_some(Owned {
            seq,
            time_ms,
            kind,
            issuer,
            serial,
            der,
            uid,
            gid,
            code,
            field,
            message,
            summary,
        })
    }

    fn owned() -> impl Strategy<Value = Owned> {
        let text = || proptest::option::of(".{0,12}");
        let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24));
        (
            (
                any::<u64>(),
                any::<i64>(),
                ".{0,12}",
                text(),
                bytes(),
                bytes(),
            ),
            (
                any::<u32>(),
                any::<u32>(),
                text(),
                text(),
                text(),
                ".{0,24}",
            ),
        )
            .prop_map(
                |(
                    (seq, time_ms, kind, issuer, serial, der),
                    (uid, gid, code, field, message, summary),
                )| Owned {
                    seq,
                    time_ms,
                    kind,
                    issuer,
                    serial,
                    der,
                    uid,
                    gid,
                    code,
                    field,
                    message,
                    summary,
                },
            )
    }

    proptest! {
        #[test]
        fn canonical_bytes_decode_back(record in owned()) {
            prop_assert_eq!(decode(&record.fields().canonical_bytes()), Some(record));
        }

        #[test]
        fn different_records_hash_differently(a in owned(), b in owned()) {
            prop_assume!(a != b);
            prop_assert_ne!(a.fields().link_hash(&GENESIS), b.fields().link_hash(&GENESIS));
        }
    }

    fn sample() -> Owned {
        Owned {
            seq: 1,
            time_ms: 0,
            kind: "certificate".into(),
            issuer: Some("ab".into()),
            serial: Some(vec![0x63]),
            der: None,
            uid: 0,
            gid: 0,
            code: None,
            field: None,
            message: None,
            summary: "{}".into(),
        }
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_encoding() {
        let a = sample();
        // "ab" + [0x63] vs "a" + ['b', 0x63]: same concatenation, different framing.
        let b = Owned {
            issuer: Some("a".into()),
            serial: Some(vec![b'b', 0x63]),
            ..sample()
        };
        assert_ne!(a.fields().canonical_bytes(), b.fields().canonical_bytes());
        // Absent and empty are different values.
        let c = Owned {
            der: Some(Vec::new()),
            ..sample()
        };
        assert_ne!(a.fields().canonical_bytes(), c.fields().canonical_bytes());
    }

    #[test]
    fn the_previous_hash_is_part_of_the_link() {
        let a = sample();
        assert_ne!(
            a.fields().link_hash(&GENESIS),
            a.fields().link_hash(&[1; 32])
        );
    }

    #[test]
    fn encoding_is_pinned() {
        // A fixed vector, so a change to the encoding cannot pass unnoticed: old stores would stop
        // verifying. Recompute only together with a new TAG version.
        let bytes = sample().fields().canonical_bytes();
        let mut expected = TAG.to_vec();
        for field in [
            &b"\x01\0\0\0\0\0\0\0\x08\0\0\0\0\0\0\0\x01"[..],
            b"\x01\0\0\0\0\0\0\0\x08\0\0\0\0\0\0\0\0",
            b"\x01\0\0\0\0\0\0\0\x0bcertificate",
            b"\x01\0\0\0\0\0\0\0\x02ab",
            b"\x01\0\0\0\0\0\0\0\x01\x63",
            b"\0",
            b"\x01\0\0\0\0\0\0\0\x04\0\0\0\0",
            b"\x01\0\0\0\0\0\0\0\x04\0\0\0\0",
            b"\0",
            b"\0",
            b"\0",
            b"\x01\0\0\0\0\0\0\0\x02{}",
        ] {
            expected.extend_from_slice(field);
        }
        assert_eq!(bytes, expected);
        // SHA-256(32 zero bytes || expected), computed independently from the documented format.
        assert_eq!(
            hex::encode(sample().fields().link_hash(&GENESIS)),
            "d8da9c7504582c0cce92f1685f6b0681ee6260efbe9978add69fe8adc0858486"
        );
    }
}
