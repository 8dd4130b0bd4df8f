//! The hash chain: the canonical byte encoding of one record and the link hash over it.
//!
//! The encoding is specified in the [`audit`](super) module documentation ("Hash chain"), where
//! auditors find it; this file implements it, and its tests pin it.

use sha2::{Digest, Sha256};

use super::verify::Break;

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

/// Checks one link of the chain: the record is number `expected_seq`, its `prev_hash` is `head`
/// (the previous record's hash, or [`GENESIS`]) and its `hash` is the link hash of its fields.
/// The first rule broken is returned.
pub(crate) fn check_link(
    expected_seq: u64,
    head: &[u8; 32],
    fields: &Fields<'_>,
    prev_hash: &[u8; 32],
    hash: &[u8; 32],
) -> Result<(), Break> {
    if fields.seq != expected_seq {
        return Err(Break::Gap {
            expected: expected_seq,
        });
    }
    if prev_hash != head {
        return Err(Break::PrevHash);
    }
    if fields.link_hash(prev_hash) != *hash {
        return Err(Break::Hash);
    }
    Ok(())
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

    /// A stored row: the record and its two hash columns.
    #[derive(Debug, Clone)]
    struct Row {
        record: Owned,
        prev_hash: [u8; 32],
        hash: [u8; 32],
    }

    /// Links records into a chain, numbering them 1, 2, ...
    fn chain(records: Vec<Owned>) -> Vec<Row> {
        let mut head = GENESIS;
        records
            .into_iter()
            .zip(1..)
            .map(|(mut record, seq)| {
                record.seq = seq;
                let hash = record.fields().link_hash(&head);
                let row = Row {
                    record,
                    prev_hash: head,
                    hash,
                };
                head = hash;
                row
            })
            .collect()
    }

    /// Walks a chain as `audit verify` does; the first break and its (1-based) position.
    fn walk(rows: &[Row]) -> Result<(), (usize, Break)> {
        let mut head = GENESIS;
        for (i, row) in rows.iter().enumerate() {
            check_link(
                i as u64 + 1,
                &head,
                &row.record.fields(),
                &row.prev_hash,
                &row.hash,
            )
            .map_err(|b| (i + 1, b))?;
            head = row.hash;
        }
        Ok(())
    }

    /// An ASCII-only record (so that a changed text byte is still text, as SQLite would hold it).
    fn ascii_owned() -> impl Strategy<Value = Owned> {
        owned().prop_map(|mut r| {
            let ascii = |s: &mut String| *s = s.chars().filter(char::is_ascii).collect();
            ascii(&mut r.kind);
            ascii(&mut r.summary);
            for s in [&mut r.issuer, &mut r.code, &mut r.field, &mut r.message]
                .into_iter()
                .flatten()
            {
                ascii(s);
            }
            r
        })
    }

    /// Changes one byte of one stored column of `row`: `pick` chooses the byte among all bytes
    /// of all columns (integers as their big-endian bytes, as hashed), `delta` is XORed in
    /// (1..=127, so ASCII stays ASCII). Returns false if the row has no byte at `pick`.
    fn flip(row: &mut Row, pick: usize, delta: u8) -> bool {
        fn bytes_of(v: &mut [u8], pick: &mut usize, delta: u8) -> bool {
            if *pick < v.len() {
                v[*pick] ^= delta;
                true
            } else {
                *pick -= v.len();
                false
            }
        }
        fn text_of(s: &mut String, pick: &mut usize, delta: u8) -> bool {
            let mut v = std::mem::take(s).into_bytes();
            let hit = bytes_of(&mut v, pick, delta);
            *s = String::from_utf8(v).expect("ASCII stays ASCII");
            hit
        }
        let mut pick = pick;
        let r = &mut row.record;
        let mut seq = r.seq.to_be_bytes();
        let mut time = r.time_ms.to_be_bytes();
        let mut uid = r.uid.to_be_bytes();
        let mut gid = r.gid.to_be_bytes();
        let hit = bytes_of(&mut seq, &mut pick, delta)
            || bytes_of(&mut time, &mut pick, delta)
            || text_of(&mut r.kind, &mut pick, delta)
            || r.issuer
                .as_mut()
                .is_some_and(|s| text_of(s, &mut pick, delta))
            || r.serial
                .as_mut()
                .is_some_and(|v| bytes_of(v, &mut pick, delta))
            || r.der
                .as_mut()
                .is_some_and(|v| bytes_of(v, &mut pick, delta))
            || bytes_of(&mut uid, &mut pick, delta)
            || bytes_of(&mut gid, &mut pick, delta)
            || r.code
                .as_mut()
                .is_some_and(|s| text_of(s, &mut pick, delta))
            || r.field
                .as_mut()
                .is_some_and(|s| text_of(s, &mut pick, delta))
            || r.message
                .as_mut()
                .is_some_and(|s| text_of(s, &mut pick, delta))
            || text_of(&mut r.summary, &mut pick, delta)
            || bytes_of(&mut row.prev_hash, &mut pick, delta)
            || bytes_of(&mut row.hash, &mut pick, delta);
        r.seq = u64::from_be_bytes(seq);
        r.time_ms = i64::from_be_bytes(time);
        r.uid = u32::from_be_bytes(uid);
        r.gid = u32::from_be_bytes(gid);
        hit
    }

    proptest! {
        #[test]
        fn an_intact_chain_verifies(records in proptest::collection::vec(ascii_owned(), 0..6)) {
            prop_assert_eq!(walk(&chain(records)), Ok(()));
        }

        // Any single-byte change to any stored column of any record breaks the chain at that
        // record (its hash no longer matches) or, for a changed hash column, at the next one
        // (or the head, which `audit verify` prints for comparison, differs).
        #[test]
        fn any_single_byte_change_breaks_the_chain(
            records in proptest::collection::vec(ascii_owned(), 1..6),
            which in any::<prop::sample::Index>(),
            pick in any::<prop::sample::Index>(),
            delta in 1u8..=127,
        ) {
            let rows = chain(records);
            let head = rows.last().expect("one record").hash;
            let i = which.index(rows.len());
            let mut changed = rows.clone();
            let r = &changed[i].record;
            let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
            let blob = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
            let total = 8 + 8 + r.kind.len() + text(&r.issuer) + blob(&r.serial) + blob(&r.der)
                + 4 + 4 + text(&r.code) + text(&r.field) + text(&r.message) + r.summary.len()
                + 32 + 32;
            prop_assert!(flip(&mut changed[i], pick.index(total), delta));
            let hash_changed = changed[i].hash != rows[i].hash;
            match walk(&changed) {
                Err((at, _)) => {
                    prop_assert!(at == i + 1 || (hash_changed && at == i + 2));
                }
                Ok(()) => {
                    // Only possible if the last record's hash column was changed: then the
                    // head no longer matches the one kept elsewhere.
                    prop_assert!(hash_changed && i + 1 == rows.len());
                    prop_assert_ne!(changed.last().expect("one record").hash, head);
                }
            }
        }

        #[test]
        fn any_reorder_is_detected(
            records in proptest::collection::vec(ascii_owned(), 2..7),
            a in any::<prop::sample::Index>(),
            b in any::<prop::sample::Index>(),
        ) {
            let rows = chain(records);
            let (a, b) = (a.index(rows.len()), b.index(rows.len()));
            prop_assume!(a != b);
            let mut swapped = rows.clone();
            swapped.swap(a, b);
            let (at, _) = walk(&swapped).expect_err("a reordered chain does not verify");
            prop_assert_eq!(at, a.min(b) + 1);
            // Renumbering the moved records does not help: their links no longer match.
            for (row, seq) in swapped.iter_mut().zip(1..) {
                row.record.seq = seq;
            }
            prop_assert!(walk(&swapped).is_err());
        }

        #[test]
        fn any_deletion_is_detected(
            records in proptest::collection::vec(ascii_owned(), 2..7),
            gone in any::<prop::sample::Index>(),
        ) {
            let mut rows = chain(records);
            let gone = gone.index(rows.len() - 1); // deleting the last is truncation: the head shows it
            let _ = rows.remove(gone);
            let (at, _) = walk(&rows).expect_err("a chain with a record removed does not verify");
            prop_assert_eq!(at, gone + 1);
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
