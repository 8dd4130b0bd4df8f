//! Offline verification of an audit store: walks the chain from record 1 and reports the first
//! broken link (`strongroom audit verify --store PATH`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use super::StoreError;
use super::chain::{Fields, GENESIS, check_link};
use super::store::check_header;

/// What [`verify`] found in a store whose chain is intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Number of records (the last seq).
    pub records: u64,
    /// The last record's link hash (32 zero bytes for an empty store). Compare it with a copy kept
    /// elsewhere to detect truncation, which the chain alone cannot show.
    pub head: [u8; 32],
    /// Number of records of each kind.
    pub kinds: BTreeMap<String, u64>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records, chain intact, head {}",
            self.records,
            hex::encode(self.head)
        )?;
        for (kind, n) in &self.kinds {
            write!(f, "\n    {kind}: {n}")?;
        }
        Ok(())
    }
}

/// How a link of the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Break {
    /// The record's seq is not one more than the previous one: the records in between were
    /// deleted (or the first record is not seq 1).
    Gap {
        /// The seq that should have come next.
        expected: u64,
    },
    /// The record's `prev_hash` is not the previous record's hash: a record before it was
    /// deleted, replaced or moved here from elsewhere.
    PrevHash,
    /// The record's stored hash is not the hash of its contents: it was edited.
    Hash,
    /// A column does not hold what the schema requires (type or size).
    Malformed {
        /// The column.
        column: &'static str,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Gap { expected } => write!(
                f,
                "expected record {expected} next: records are missing or out of order"
            ),
            Break::PrevHash => f.write_str(
                "prev_hash is not the previous record's hash: a record before it was deleted, \
                 replaced or reordered",
            ),
            Break::Hash => f.write_str("hash does not match the record's contents: it was edited"),
            Break::Malformed { column } => write!(f, "column {column} is malformed"),
        }
    }
}

/// Why a store did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The chain is broken at `seq`, the first record that does not verify.
    #[error("audit chain broken at record {seq}: {reason}")]
    Broken {
        /// The first record that does not verify.
        seq: u64,
        /// How.
        reason: Break,
    },
    /// The file is not an audit store of this schema version.
    #[error("not a strongroom audit store: {0}")]
    NotAStore(String),
    /// SQLite's own integrity check failed: the database file itself is damaged.
    #[error("database file is damaged: {0}")]
    Corrupt(String),
    /// The store could not be opened or read.
    #[error("cannot read audit store")]
    Read(#[source] StoreError),
}

/// The columns, in the order the row is read.
const SELECT: &str = "SELECT seq, time_ms, kind, issuer, serial, der, uid, gid, code, field, \
                      message, summary, prev_hash, hash FROM records ORDER BY seq";

/// Checks the audit store at `path`, read-only: every record's seq follows the previous one,
/// its `prev_hash` is the previous record's hash, and its hash is `SHA-256(prev_hash || canonical
/// bytes)` of its own columns. Safe to run while the service is writing (it reads one snapshot).
///
/// # Errors
///
/// [`VerifyError::Broken`] with the first record that does not verify, and why; the other
/// variants if the file cannot be read as an audit store.
pub fn verify(path: &Path) -> Result<Summary, VerifyError> {
    let read = |op| move |e| VerifyError::Read(StoreError::new(op, e));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read("open store"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(read("set busy timeout"))?;
    // One read transaction: the header, the integrity check and the walk see one snapshot.
    conn.execute_batch("BEGIN").map_err(read("begin read"))?;
    let header = |name| {
        conn.pragma_query_value(None, name, |row| row.get::<_, i32>(0))
            .map_err(read("read header"))
    };
    check_header(header("application_id")?, header("user_version")?)
        .map_err(|e| VerifyError::NotAStore(e.to_string()))?;
    let quick: String = conn
        .pragma_query_value(None, "quick_check", |row| row.get(0))
        .map_err(read("run quick_check"))?;
    if quick != "ok" {
        return Err(VerifyError::Corrupt(quick));
    }

    let mut stmt = conn.prepare(SELECT).map_err(read("read records"))?;
    let mut rows = stmt.query([]).map_err(read("read records"))?;
    let mut summary = Summary {
        records: 0,
        head: GENESIS,
        kinds: BTreeMap::new(),
    };
    while let Some(row) = rows.next().map_err(read("read records"))? {
        let expected = summary.records + 1;
        let seq = match row.get_ref(0).map_err(read("read records"))? {
            ValueRef::Integer(seq) => u64::try_from(seq).map_err(|_| VerifyError::Broken {
                seq: expected,
                reason: Break::Malformed { column: "seq" },
            })?,
            _ => {
                return Err(VerifyError::Broken {
                    seq: expected,
                    reason: Break::Malformed { column: "seq" },
                });
            }
        };
        let broken = |reason| VerifyError::Broken { seq, reason };
        if seq != expected {
            return Err(broken(Break::Gap { expected }));
        }
        let record = Columns::read(row).map_err(|column| broken(Break::Malformed { column }))?;
        check_link(
            expected,
            &summary.head,
            &record.fields,
            &record.prev_hash,
            &record.hash,
        )
        .map_err(broken)?;
        *summary
            .kinds
            .entry(record.fields.kind.to_owned())
            .or_default() += 1;
        summary.head = record.hash;
        summary.records = seq;
    }
    Ok(summary)
}

/// One row, borrowed from SQLite.
struct Columns<'a> {
    fields: Fields<'a>,
    prev_hash: [u8; 32],
    hash: [u8; 32],
}

impl<'a> Columns<'a> {
    /// Reads the row's columns strictly by type; the error names the first bad column.
    fn read(row: &'a Row<'_>) -> Result<Columns<'a>, &'static str> {
        const NAMES: [&str; 14] = [
            "seq",
            "time_ms",
            "kind",
            "issuer",
            "serial",
            "der",
            "uid",
            "gid",
            "code",
            "field",
            "message",
            "summary",
            "prev_hash",
            "hash",
        ];
        let value = |i: usize| row.get_ref(i).map_err(|_| NAMES[i]);
        let int = |i| match value(i)? {
            ValueRef::Integer(v) => Ok(v),
            _ => Err(NAMES[i]),
        };
        let blob = |i| match value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(v) => Ok(Some(v)),
            _ => Err(NAMES[i]),
        };
        let text = |i| match value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(v) => std::str::from_utf8(v).map(Some).map_err(|_| NAMES[i]),
            _ => Err(NAMES[i]),
        };
        let required = |i, v: Option<&'a str>| v.ok_or(NAMES[i]);
        let hash = |i| {
            blob(i)?
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or(NAMES[i])
        };
        let id = |i| u32::try_from(int(i)?).map_err(|_| NAMES[i]);
        Ok(Columns {
            fields: Fields {
                seq: u64::try_from(int(0)?).map_err(|_| NAMES[0])?,
                time_ms: int(1)?,
                kind: required(2, text(2)?)?,
                issuer: text(3)?,
                serial: blob(4)?,
                der: blob(5)?,
                uid: id(6)?,
                gid: id(7)?,
                code: text(8)?,
                field: text(9)?,
                message: text(10)?,
                summary: required(11, text(11)?)?,
            },
            prev_hash: hash(12)?,
            hash: hash(13)?,
        })
    }
}
