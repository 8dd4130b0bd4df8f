//! The SQLite side of the audit log: schema, connection settings, the writer thread that
//! group-commits appends, and the lookups.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::chain::GENESIS;
use super::{Entry, Error, Kind, MAX_BATCH, Recorded, Shared, StoreError};

/// `PRAGMA application_id` of an audit store: "STRA" (strongroom audit).
pub(crate) const APPLICATION_ID: i32 = 0x5354_5241;

/// `PRAGMA user_version`: the schema version this code writes and reads.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Size of the row a probe writes and removes: larger than a typical certificate record.
const PROBE_BYTES: i64 = 16 * 1024;

/// The schema, created in one transaction with the header fields that identify the file.
const SCHEMA: &str = "
CREATE TABLE records (
    seq       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    issuer    TEXT,
    serial    BLOB,
    der       BLOB,
    uid       INTEGER NOT NULL,
    gid       INTEGER NOT NULL,
    code      TEXT,
    field     TEXT,
    message   TEXT,
    summary   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (issuer, serial, kind)
) STRICT;
CREATE TABLE probe (filler BLOB NOT NULL) STRICT;
";

const INSERT: &str = "INSERT INTO records
    (seq, time_ms, kind, issuer, serial, der, uid, gid, code, field, message, summary, prev_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// A request to the writer thread.
pub(crate) enum Request {
    /// Record an entry and reply with its `Recorded`.
    Append {
        entry: Entry,
        reply: oneshot::Sender<Result<Recorded, Error>>,
    },
    /// Commit a probe transaction and reply whether it worked.
    Probe {
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Run a closure on the writer's connection, between batches or while collecting one.
    #[cfg(test)]
    Run(Box<dyn FnOnce(&Connection) + Send>),
}

/// Why the writer connection could not be opened.
pub(crate) enum OpenError {
    Sqlite(StoreError),
    NotAStore(String),
}

fn failed(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::new(op, e)
}

fn invalid(op: &'static str, what: String) -> StoreError {
    StoreError::new(op, std::io::Error::other(what))
}

/// Opens (creating if needed) the store for writing: WAL journal, `synchronous=FULL`, schema
/// checked or created.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    let sqlite = |op| move |e| OpenError::Sqlite(StoreError::new(op, e));
    let conn = Connection::open(path).map_err(sqlite("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite("set busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite("set WAL journal mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Sqlite(invalid(
            "set WAL journal mode",
            format!("journal mode is {mode}"),
        )));
    }
    // FULL: in WAL mode the WAL is fsynced at every commit, so a commit that returned survives a
    // power loss (NORMAL would only sync at checkpoints).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite("set synchronous=FULL"))?;

    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(sqlite("begin schema transaction"))?;
    let checked = check_or_create_schema(&conn);
    let outcome = match checked {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .map_err(sqlite("commit schema")),
        Err(e) => Err(e),
    };
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome.map(|()| conn)
}

fn check_or_create_schema(conn: &Connection) -> Result<(), OpenError> {
    let sqlite = |op| move |e| OpenError::Sqlite(StoreError::new(op, e));
    let header = |name| {
        conn.pragma_query_value(None, name, |row| row.get::<_, i32>(0))
            .map_err(sqlite("read header"))
    };
    let (app, version) = (header("application_id")?, header("user_version")?);
    if app == 0 && version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(sqlite("read schema"))?;
        if tables != 0 {
            return Err(OpenError::NotAStore(
                "the database already holds other tables".into(),
            ));
        }
        conn.execute_batch(SCHEMA)
            .map_err(sqlite("create schema"))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sqlite("write header"))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sqlite("write header"))?;
        return Ok(());
    }
    check_header(app, version).map_err(|e| OpenError::NotAStore(e.to_string()))
}

/// Why a database's header does not identify an audit store of this schema version; the
/// message completes "... is not a strongroom audit store: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderError {
    /// `PRAGMA application_id` is not [`APPLICATION_ID`].
    #[error("application_id is {0:#010x}")]
    ApplicationId(i32),
    /// `PRAGMA user_version` is not [`SCHEMA_VERSION`].
    #[error("schema version {0}, this program reads {SCHEMA_VERSION}")]
    SchemaVersion(i32),
}

/// Checks the header fields that identify an audit store of this schema version.
pub(crate) fn check_header(app: i32, version: i32) -> Result<(), HeaderError> {
    if app != APPLICATION_ID {
        return Err(HeaderError::ApplicationId(app));
    }
    if version != SCHEMA_VERSION {
        return Err(HeaderError::SchemaVersion(version));
    }
    Ok(())
}

/// Opens the lookup connection: an ordinary connection that refuses writes.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed("open lookup connection"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(failed("set busy timeout"))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(failed("set query_only"))?;
    Ok(conn)
}

/// WAL frames (pages) after which the checkpointer copies the WAL into the database: SQLite's
/// own auto-checkpoint size.
const CHECKPOINT_FRAMES: c_int = 1000;

/// WAL frames after which the writer checkpoints itself, as SQLite would by default: the
/// checkpointer has fallen far behind, or is not running.
const WRITER_CHECKPOINT_FRAMES: c_int = 16 * CHECKPOINT_FRAMES;

/// Opens the checkpointer's connection. `synchronous=FULL`, as the writer's: a checkpoint
/// syncs the WAL before it copies it and the database file after.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(failed("open checkpoint connection"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(failed("set busy timeout"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(failed("set synchronous=FULL"))?;
    Ok(conn)
}

/// Copies the WAL into the database file on its own thread, so that the writer's commits (and
/// the requests waiting on them) do not stop for a checkpoint. SQLite would otherwise run one
/// in the writer's commit every 1000 frames: several milliseconds of copying and an fsync of
/// the database file, during which nothing can commit. The writer wakes this thread after a
/// commit that leaves the WAL at [`CHECKPOINT_FRAMES`] or more. Its checkpoints are `PASSIVE`:
/// they copy what they can without waiting for the writer or for readers, and a commit that
/// still finds the WAL long wakes the thread again.
struct Checkpointer {
    thread: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            // At most 15 bytes: Linux keeps no more of a thread name (the bench reads it).
            .name("audit-checkpt".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park();
                        // A failure (such as SQLITE_BUSY while the writer checkpoints) is
                        // retried at the next wake-up: the WAL is still long then.
                        let _ = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
                    }
                }
            })?;
        Ok(Checkpointer { thread, stop })
    }

    /// Has the writer's connection wake the checkpointer after each commit that leaves the WAL
    /// long. This replaces SQLite's auto-checkpoint on that connection.
    fn attach(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let wake = self.thread.thread().clone();
        conn.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            if frames >= WRITER_CHECKPOINT_FRAMES {
                // The commit has happened whatever this returns; as SQLite's own hook does,
                // ignore a failed checkpoint (the next commit tries again).
                let _ = wal.checkpoint();
            } else if frames >= CHECKPOINT_FRAMES {
                wake.unpark();
            }
            Ok(())
        }))
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// What the writer has taken off the queue for its next transaction.
struct Batch {
    appends: Vec<(Entry, oneshot::Sender<Result<Recorded, Error>>)>,
    probes: Vec<oneshot::Sender<Result<(), Error>>>,
}

impl Batch {
    fn take(&mut self, request: Request, _conn: &Connection) {
        match request {
            Request::Append { entry, reply } => self.appends.push((entry, reply)),
            Request::Probe { reply } => self.probes.push(reply),
            #[cfg(test)]
            Request::Run(f) => f(_conn),
        }
    }

    /// Takes what is queued now, until the batch is full.
    fn drain(&mut self, queue: &mut mpsc::Receiver<Request>, conn: &Connection) {
        while self.appends.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(request) => self.take(request, conn),
                Err(_) => break,
            }
        }
    }
}

/// The writer thread: collects queued requests into batches and commits each batch once
/// (holding it open for announced entries up to the commit delay).
/// Returns when every `AuditLog` handle is gone and the queue is empty.
pub(crate) fn run_writer(
    mut conn: Connection,
    checkpoint: Connection,
    mut queue: mpsc::Receiver<Request>,
    shared: &Shared,
) {
    // Without the checkpointer, SQLite's auto-checkpoint stays on the writer's connection.
    let checkpointer = match Checkpointer::start(checkpoint) {
        Ok(c) if c.attach(&mut conn).is_ok() => Some(c),
        Ok(c) => {
            c.stop();
            None
        }
        Err(_) => None,
    };
    while let Some(first) = queue.blocking_recv() {
        let taken = Instant::now();
        let mut batch = Batch {
            appends: Vec::new(),
            probes: Vec::new(),
        };
        batch.take(first, &conn);
        batch.drain(&mut queue, &conn);
        // Commit delay: while entries are announced but not yet queued, hold the batch open (up
        // to the delay from its first entry) so that they share its fsync.
        while !batch.appends.is_empty()
            && batch.appends.len() < MAX_BATCH
            && shared.announced.load(Ordering::Acquire) > 0
        {
            let left = shared.commit_delay.saturating_sub(taken.elapsed());
            if left.is_zero() {
                break;
            }
            // Woken when the last announced entry is queued or withdrawn (or spuriously).
            std::thread::park_timeout(left);
            batch.drain(&mut queue, &conn);
        }
        let Batch { appends, probes } = batch;
        if appends.is_empty() && probes.is_empty() {
            continue;
        }
        let outcome = if appends.is_empty() {
            in_transaction(&conn, probe).map(|()| Vec::new())
        } else {
            let time_ms = super::now_ms();
            in_transaction(&conn, |conn| write_batch(conn, &appends, time_ms))
        };
        match outcome {
            Ok(results) => {
                shared.writable.store(true, Ordering::Release);
                if !appends.is_empty() {
                    let _ = shared.commits.fetch_add(1, Ordering::Relaxed);
                }
                for ((entry, reply), result) in appends.into_iter().zip(results) {
                    let _ = reply.send(result.map(|(seq, hash, time_ms)| Recorded {
                        seq,
                        hash,
                        time_ms,
                        entry,
                    }));
                }
                for reply in probes {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                shared.writable.store(false, Ordering::Release);
                for (_, reply) in appends {
                    let _ = reply.send(Err(Error::Unavailable(e.clone())));
                }
                for reply in probes {
                    let _ = reply.send(Err(Error::Unavailable(e.clone())));
                }
            }
        }
    }
    if let Some(c) = checkpointer {
        c.stop();
    }
}

/// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT`; on any failure, rolls back whatever is
/// left of the transaction.
fn in_transaction<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let outcome = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(failed("begin transaction"))
        .and_then(|()| body(conn))
        .and_then(|value| {
            conn.execute_batch("COMMIT")
                .map_err(failed("commit"))
                .map(|()| value)
        });
    // SQLite may already have rolled back (some I/O and full-disk errors do), or may leave the
    // transaction open (a busy COMMIT does).
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

/// What one append in a batch came to: its seq, hash and time, or why it was refused.
type Outcome = Result<(u64, [u8; 32], i64), Error>;

/// Inserts a batch, chaining each record to the one before. A duplicate serial refuses that
/// entry only (SQLite undoes the one failed statement); any other failure fails the batch.
fn write_batch<R>(
    conn: &Connection,
    appends: &[(Entry, R)],
    time_ms: i64,
) -> Result<Vec<Outcome>, StoreError> {
    let (mut seq, mut prev) = head(conn)?;
    let mut insert = conn
        .prepare_cached(INSERT)
        .map_err(failed("prepare insert"))?;
    let mut results = Vec::with_capacity(appends.len());
    for (entry, _) in appends {
        let next = seq + 1;
        let fields = entry.fields(next, time_ms);
        let hash = fields.link_hash(&prev);
        let inserted = insert.execute(params![
            to_i64(next)?,
            fields.time_ms,
            fields.kind,
            fields.issuer,
            fields.serial,
            fields.der,
            fields.uid,
            fields.gid,
            fields.code,
            fields.field,
            fields.message,
            fields.summary,
            &prev[..],
            &hash[..],
        ]);
        match inserted {
            Ok(_) => {
                results.push(Ok((next, hash, time_ms)));
                seq = next;
                prev = hash;
            }
            Err(e)
                if e.sqlite_error().map(|e| e.extended_code)
                    == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) =>
            {
                results.push(Err(Error::DuplicateSerial {
                    issuer: entry.issuer().unwrap_or_default().to_owned(),
                    serial_hex: hex::encode(entry.serial().unwrap_or_default()),
                    kind: entry.kind(),
                }));
            }
            Err(e) => return Err(StoreError::new("insert record", e)),
        }
    }
    Ok(results)
}

/// Writes and removes a row, so the commit has pages to write and fsync.
fn probe(conn: &Connection) -> Result<(), StoreError> {
    let _ = conn
        .execute(
            "INSERT INTO probe (filler) VALUES (zeroblob(?1))",
            [PROBE_BYTES],
        )
        .map_err(failed("write probe"))?;
    let _ = conn
        .execute("DELETE FROM probe", [])
        .map_err(failed("remove probe"))?;
    Ok(())
}

/// The last record's seq and hash, or `(0, GENESIS)` for an empty store. Read inside the write
/// transaction, so the chain continues from what is on disk, whatever happened before.
fn head(conn: &Connection) -> Result<(u64, [u8; 32]), StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(failed("read chain head"))?;
    let Some((seq, hash)) = row else {
        return Ok((0, GENESIS));
    };
    let seq = u64::try_from(seq)
        .map_err(|_| invalid("read chain head", format!("negative seq {seq}")))?;
    let hash = <[u8; 32]>::try_from(hash).map_err(|_| {
        invalid(
            "read chain head",
            format!("hash of record {seq} is not 32 bytes"),
        )
    })?;
    Ok((seq, hash))
}

fn to_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| invalid("insert record", format!("seq {seq} overflows")))
}

/// The DER of the record of `kind` that `issuer` has with `serial`.
pub(crate) fn find_der(
    conn: &Connection,
    issuer: &str,
    serial: &[u8],
    kind: Kind,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT der FROM records WHERE issuer = ?1 AND serial = ?2 AND kind = ?3")
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer, serial, kind.as_str()], |row| {
                row.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()
        })
        .map(Option::flatten)
        .map_err(failed("look up record"))
}

/// The largest `serial` among `issuer`'s records of `kind` (byte-wise, so fixed-width
/// big-endian numbers compare numerically).
pub(crate) fn max_serial(
    conn: &Connection,
    issuer: &str,
    kind: Kind,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT max(serial) FROM records WHERE issuer = ?1 AND kind = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![issuer, kind.as_str()], |row| {
                row.get::<_, Option<Vec<u8>>>(0)
            })
        })
        .map_err(failed("look up the last CRL number"))
}

/// Whether `issuer` has a record with `serial` (of `kind`, or of any kind).
pub(crate) fn exists(
    conn: &Connection,
    issuer: &str,
    serial: &[u8],
    kind: Option<Kind>,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM records
             WHERE issuer = ?1 AND serial = ?2 AND (?3 IS NULL OR kind = ?3))",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![issuer, serial, kind.map(Kind::as_str)], |row| {
            row.get(0)
        })
    })
    .map_err(failed("look up record"))
}

/// Looks up the certificates (final, else precertificate) an issuer issued, with one prepared
/// statement for many look-ups.
pub(crate) struct IssuedLookup<'c> {
    stmt: rusqlite::CachedStatement<'c>,
}

impl<'c> IssuedLookup<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, StoreError> {
        let stmt = conn
            .prepare_cached(
                "SELECT der FROM records WHERE issuer = ?1 AND serial = ?2
                     AND kind IN ('certificate', 'precertificate')
                     ORDER BY kind = 'precertificate' LIMIT 1",
            )
            .map_err(failed("look up record"))?;
        Ok(IssuedLookup { stmt })
    }

    /// Calls `f` with the DER `issuer` has with `serial`, borrowed from the row, or with `None`.
    pub(crate) fn with_der<R>(
        &mut self,
        issuer: &str,
        serial: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StoreError> {
        let mut rows = self
            .stmt
            .query(params![issuer, serial])
            .map_err(failed("look up record"))?;
        match rows.next().map_err(failed("look up record"))? {
            Some(row) => {
                let der = row
                    .get_ref(0)
                    .and_then(|v| v.as_blob_or_null().map_err(Into::into))
                    .map_err(failed("look up record"))?;
                Ok(f(der))
            }
            None => Ok(f(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_refusals_say_what_did_not_match() {
        assert_eq!(check_header(APPLICATION_ID, SCHEMA_VERSION), Ok(()));
        assert_eq!(
            check_header(0x1234, SCHEMA_VERSION)
                .unwrap_err()
                .to_string(),
            "application_id is 0x00001234"
        );
        assert_eq!(
            check_header(APPLICATION_ID, 7).unwrap_err().to_string(),
            format!("schema version 7, this program reads {SCHEMA_VERSION}")
        );
    }
}
